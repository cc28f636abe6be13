// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway under bad input and failures. Raw sockets send
// malformed handshakes and requests (bad magic, oversized option, unknown
// client flags, unknown command, truncated header, an impossible WRITE):
// each closes only its own connection, with one log line, while another
// connection keeps working. Unknown and unsupported options get
// NBD_REP_ERR_UNSUP. The storage peer (blockd) is SIGKILLed under I/O: the
// client gets EIO, not a hang, and I/O works again once blockd is back.
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient, type NbdError } from '../../peers/node/nbd/client'
import * as P from '../../peers/node/nbd/protocol'
import { NbdGateway } from '../../peers/node/nbd/server'
import { within } from './helpers'
import { bound, haveBlockd, nbdEnv, nbdTeardown, startBlockd, type NbdEnv } from './nbd-env'
import { Raw } from './nbd-raw'

const SIZE = 8 << 20

let env: NbdEnv | undefined

function setup(): Promise<NbdEnv> {
  return nbdEnv({ size: SIZE, segment: '16:128:64K', exports: [{ name: 'disk' }] })
}

const F = suite('nbd gateway faults')
let good: NbdClient | undefined

F.before(async () => {
  if (!haveBlockd()) return
  env = await setup()
  good = await NbdClient.connect({ unix: env.sock, export: 'disk' })
})

F.after(async () => {
  if (good) await good.disconnect().catch(() => undefined)
  await nbdTeardown(env)
})

/** The good connection still reads and writes. */
async function goodStillWorks(tag: number): Promise<void> {
  const data = Buffer.alloc(4096, tag)
  await good!.write(tag * 4096, data)
  assert.ok((await good!.read(tag * 4096, 4096)).equals(data), 'the other connection still works')
}

/** One log line about the bad connection, naming the problem. */
function logged(re: RegExp): void {
  const hits = env!.log.filter((l) => re.test(l))
  assert.is(hits.length, 1, `one log line matching ${re}: ${JSON.stringify(env!.log)}`)
  assert.match(hits[0]!, /closing the connection/)
}

F('bad option magic closes that connection only', async () => {
  if (!env) return
  const r = new Raw(env.sock)
  await r.hello()
  r.send(Buffer.from('IHAVEOPX\0\0\0\x07\0\0\0\0', 'latin1'))
  await r.closedWithin('bad option magic')
  logged(/bad option magic/)
  await goodStillWorks(1)
})

F('an oversized option closes that connection', async () => {
  if (!env) return
  const r = new Raw(env.sock)
  await r.hello()
  r.option(P.NBD_OPT_GO, Buffer.alloc(0), 64 << 20)
  await r.closedWithin('oversized option')
  logged(/option go of 67108864 bytes/)
  await goodStillWorks(2)
})

F('unknown client flags close that connection', async () => {
  if (!env) return
  const r = new Raw(env.sock)
  await r.hello(0x80000001)
  await r.closedWithin('client flags')
  logged(/unknown client flags 0x80000001/)
  await goodStillWorks(3)
})

F('unknown and unsupported options: NBD_REP_ERR_UNSUP; bad ones ERR_INVALID; then GO works', async () => {
  if (!env) return
  const r = new Raw(env.sock)
  await r.hello()
  for (const opt of [99, P.NBD_OPT_STARTTLS, P.NBD_OPT_EXTENDED_HEADERS]) {
    r.option(opt, opt === 99 ? Buffer.from('some data') : Buffer.alloc(0))
    const rep = await r.reply()
    assert.is(rep.opt, opt)
    assert.is(rep.type, P.NBD_REP_ERR_UNSUP, `option ${opt}`)
  }
  r.option(P.NBD_OPT_LIST, Buffer.from('x'))
  assert.is((await r.reply()).type, P.NBD_REP_ERR_INVALID)
  r.option(P.NBD_OPT_GO, Buffer.from([0, 0, 0, 9, 1])) // name length past the option
  assert.is((await r.reply()).type, P.NBD_REP_ERR_INVALID)
  const nb = Buffer.from('nope')
  const d = Buffer.alloc(10)
  d.writeUInt32BE(4, 0)
  nb.copy(d, 4)
  r.option(P.NBD_OPT_GO, d)
  const unk = await r.reply()
  assert.is(unk.type, P.NBD_REP_ERR_UNKNOWN)
  assert.match(unk.data.toString(), /no such export/)
  await r.go('disk')
  // Transmission: a read, then a soft disconnect.
  r.send(r.request(P.NBD_CMD_READ, 0, 512))
  const h = await r.take(16)
  assert.is(h.readUInt32BE(0), P.NBD_SIMPLE_REPLY_MAGIC)
  assert.is(h.readUInt32BE(4), 0)
  assert.is(h.readUInt32BE(12), 7)
  await r.take(512)
  // BLOCK_STATUS without a metadata context, and DF (not offered), get EINVAL (no payload follows them).
  r.send(r.request(P.NBD_CMD_BLOCK_STATUS, 0, 512))
  assert.is((await r.take(16)).readUInt32BE(4), P.NBD_EINVAL)
  r.send(r.request(P.NBD_CMD_READ, 0, 512, P.NBD_CMD_FLAG_DF))
  assert.is((await r.take(16)).readUInt32BE(4), P.NBD_EINVAL)
  r.send(r.request(P.NBD_CMD_DISC, 0, 0))
  await r.closedWithin('disconnect')
  assert.is(env.log.filter((l) => /closing/.test(l)).length, 3, JSON.stringify(env.log))
})

F('bad request magic, unknown command, truncated header, impossible WRITE: closed, one line each', async () => {
  if (!env) return
  const cases: [string, (r: Raw) => void, RegExp][] = [
    ['bad request magic', (r) => r.send(r.request(P.NBD_CMD_READ, 0, 512, 0, 0x12345678)), /bad request magic 0x12345678/],
    ['unknown command', (r) => r.send(r.request(42, 0, 512)), /unknown command 42/],
    ['truncated header', (r) => r.s.end(r.request(P.NBD_CMD_READ, 0, 512).subarray(0, 10)), /truncated request header \(10 of 28 bytes\)/],
    ['impossible write', (r) => r.send(r.request(P.NBD_CMD_WRITE, 0, 0xffffffff)), /NBD_CMD_WRITE of 4294967295 bytes/],
    ['truncated payload', (r) => r.s.end(Buffer.concat([r.request(P.NBD_CMD_WRITE, 0, 4096), Buffer.alloc(100)])), /truncated WRITE payload/],
  ]
  let tag = 10
  for (const [what, send, re] of cases) {
    const r = new Raw(env.sock)
    await r.hello()
    await r.go()
    send(r)
    await r.closedWithin(what)
    logged(re)
    await goodStillWorks(tag++)
  }
  // A write past the end gets ENOSPC after its payload; the connection goes on.
  const r = new Raw(env.sock)
  await r.hello()
  await r.go()
  r.send(Buffer.concat([r.request(P.NBD_CMD_WRITE, SIZE - 100, 4096), Buffer.alloc(4096, 1), r.request(P.NBD_CMD_READ, 0, 16)]))
  const h1 = await r.take(16)
  assert.is(h1.readUInt32BE(4), P.NBD_ENOSPC)
  const h2 = await r.take(16)
  assert.is(h2.readUInt32BE(4), 0)
  await r.take(16)
  r.s.destroy()
})

F('a client that never chooses an export is closed after the handshake timeout', async () => {
  if (!env) return
  const log: string[] = []
  const gw = new NbdGateway({ segment: env.seg, storagePort: 1, exports: [{ name: 'disk' }], handshakeTimeoutMs: 300,
    logger: (level, line) => { if (level !== 'debug') log.push(line) } })
  const sock = join(env.dir, 'slow.sock')
  try {
    await gw.listen({ unix: sock })
    const r = new Raw(sock)
    await r.hello()
    await r.closedWithin('handshake timeout')
    assert.match(log.join('\n'), /no export chosen within 300 ms; closing the connection/)
  } finally {
    await gw.close(1000)
  }
  await goodStillWorks(21)
})

F('the storage peer dies under I/O: EIO, not a hang; I/O works again when it is back', async () => {
  if (!env) return
  const c = await NbdClient.connect({ unix: env.sock, export: 'disk' })
  try {
    let stopIo = false
    const errors: string[] = []
    let done = 0
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stopIo; i++) {
        try {
          await c.read(((w * 997 + i * 131) % 2000) * 4096, 4096)
          done++
        } catch (e) {
          errors.push((e as NbdError).code)
          return
        }
      }
    }
    const io = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)))
    while (done < 200) await new Promise((r) => setTimeout(r, 5))
    env.d.kill('SIGKILL')
    await env.d.exited
    // Every worker ends with an error: replies in flight fail back, new ones find nobody.
    await within(io, 15000, 'the reads in flight to a dead storage peer to fail')
    stopIo = true
    assert.is(errors.length, 8)
    for (const e of errors) assert.is(e, 'EIO')
    assert.is(c.inflight, 0)
    // blockd back on the same port: the same connection works again.
    env.d = startBlockd(env.seg, env.file)
    await bound(env.seg, 1)
    const data = Buffer.alloc(8192, 0x42)
    await c.write(65536, data)
    assert.ok((await c.read(65536, 8192)).equals(data))
    // And a new connection (OPT_GO asks blockd for the size).
    const c2 = await NbdClient.connect({ unix: env.sock, export: 'disk' })
    assert.is(c2.size, SIZE)
    await c2.disconnect()
  } finally {
    await c.disconnect()
  }
  await goodStillWorks(20)
})

F.run()
