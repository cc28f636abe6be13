// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway's engine owns its sockets (it listens,
// accepts and keeps each connection's descriptor; the handshake runs on a
// net.Socket over a dup). Connections served to their end, handshakes
// abandoned and a gateway close leave no descriptor behind and no
// connection counted; bytes a client sends right after the handshake, in
// the same write, reach the engine; TCP works and an address in use is an
// error naming it. No storage peer is needed: the export has a size, and a
// READ without a storage peer fails with an NBD error (a reply all the same).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient } from '../../peers/node/nbd/client'
import { NbdGateway } from '../../peers/node/nbd/server'
import { Segment } from '../../sys/node/ts/index'
import { uniqueSpec } from './helpers'

const S = suite('nbd gateway: the engine\'s sockets')
let seg: Segment | undefined
let dir = ''

S.before(async () => {
  seg = await Segment.create(uniqueSpec('16:128:64K'), { destroyOnClose: true })
  dir = mkdtempSync(join(tmpdir(), 'xseg-nbd-sockets-'))
})

S.after(() => {
  seg?.close()
  seg = undefined
  rmSync(dir, { recursive: true, force: true })
})

function gateway(): NbdGateway {
  return new NbdGateway({ segment: seg!, storagePort: 1, exports: [{ name: 'disk', size: 1 << 20 }], logger: null, requestTimeoutMs: 2000 })
}

const fds = (): number => readdirSync('/proc/self/fd').length
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function until(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`) // a hang guard only
    await sleep(10)
  }
}

S('served connections, abandoned handshakes and close leave no descriptor behind', async () => {
  const gw = gateway()
  const sock = join(dir, 'a.sock')
  try {
    await gw.listen({ unix: sock })
    const before = fds()
    for (let round = 0; round < 3; round++) {
      const cs = await Promise.all(Array.from({ length: 10 }, () => NbdClient.connect({ unix: sock, export: 'disk' })))
      assert.is(gw.stats().connections, 10)
      await Promise.all(cs.map((c) => c.disconnect()))
      // Clients that leave during the handshake.
      for (let i = 0; i < 5; i++) {
        const s = net.connect(sock)
        await new Promise((r) => s.once('data', r))
        s.destroy()
      }
      await until('every connection to close', () => gw.stats().connections === 0)
      assert.ok(fds() <= before, `round ${round}: ${fds() - before} descriptors more than before`)
    }
    // Some still open (served and in the handshake) when the gateway closes.
    const open = await Promise.all(Array.from({ length: 4 }, () => NbdClient.connect({ unix: sock, export: 'disk' })))
    const half = net.connect(sock)
    const ended = new Promise<void>((r) => half.on('close', () => r()))
    half.on('error', () => undefined)
    await new Promise((r) => half.once('data', r))
    await gw.close(2000)
    await ended
    for (const c of open) await c.disconnect().catch(() => undefined)
    assert.ok(fds() <= before - 1, `${fds() - before + 1} descriptors left after close`)
  } finally {
    await gw.close()
  }
})

S('bytes sent in the same write as the handshake\'s last option reach the engine', async () => {
  const gw = gateway()
  const sock = join(dir, 'b.sock')
  try {
    await gw.listen({ unix: sock })
    const name = Buffer.from('disk')
    const b = Buffer.alloc(4 + 16 + name.length + 28)
    b.writeUInt32BE(3, 0) // FIXED_NEWSTYLE | NO_ZEROES
    b.writeBigUInt64BE(0x49484156454f5054n, 4) // IHAVEOPT
    b.writeUInt32BE(1, 12) // NBD_OPT_EXPORT_NAME
    b.writeUInt32BE(name.length, 16)
    name.copy(b, 20)
    const r = 20 + name.length
    b.writeUInt32BE(0x25609513, r) // request magic
    b.writeUInt16BE(0, r + 4)
    b.writeUInt16BE(0, r + 6) // NBD_CMD_READ
    b.writeBigUInt64BE(0x1122334455667788n, r + 8) // the handle
    b.writeBigUInt64BE(0n, r + 16)
    b.writeUInt32BE(4096, r + 24)
    const c = net.connect(sock)
    c.on('error', () => undefined)
    let got = Buffer.alloc(0)
    const want = 18 + 10 + 16
    const done = new Promise<void>((resolve) => c.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length >= want) resolve()
    }))
    c.once('data', () => c.write(b))
    let guard: NodeJS.Timeout | undefined
    const hang = new Promise<never>((_, reject) => {
      guard = setTimeout(() => reject(new Error(`no reply to the READ after 10 s (got ${got.length} bytes)`)), 10000) // a hang guard only
    })
    try {
      await Promise.race([done, hang])
    } finally {
      clearTimeout(guard)
      c.destroy()
    }
    const rep = got.subarray(28)
    assert.is(rep.readUInt32BE(0), 0x67446698, 'a simple reply')
    assert.is(rep.readBigUInt64BE(8), 0x1122334455667788n, 'to the READ sent with the option')
  } finally {
    await gw.close()
  }
})

S('TCP: the hello arrives; an address in use is an error naming it', async () => {
  const gw = gateway()
  const gw2 = gateway()
  try {
    const a = await gw.listen({ tcp: '127.0.0.1:0' })
    assert.ok(a.tcp && a.tcp.port > 0)
    const hello = await new Promise<Buffer>((resolve) => {
      const c = net.connect(a.tcp!.port, a.tcp!.host)
      c.once('data', (d: Buffer) => {
        c.destroy()
        resolve(d)
      })
    })
    assert.is(hello.subarray(0, 8).toString(), 'NBDMAGIC')
    const err = await gw2.listen({ tcp: a.tcp! }).then(() => null, (e: Error & { code?: string }) => e)
    assert.ok(err, 'a second listen on the same address fails')
    assert.is(err!.code, 'EADDRINUSE')
    assert.match(err!.message, `127.0.0.1:${a.tcp!.port}`)
  } finally {
    await gw2.close()
    await gw.close()
  }
})

S.run()
