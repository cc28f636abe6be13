// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway shares the segment fairly between
// connections. 100 raw clients pipeline 1 MiB READs and never read a reply
// (a 256-request segment of 64K buffers: without the reply caps and the
// copy-out, one of them alone holds every request). Meanwhile another client
// runs a verified read/write workload and gets every reply, and new
// connections complete their handshake. It prints the gateway's RSS and the
// segment requests in use with the 100 clients connected.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as net from 'node:net'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient } from '../../peers/node/nbd/client'
import * as P from '../../peers/node/nbd/protocol'
import { within } from './helpers'
import { freeRequests, nbdSuiteEnv } from './nbd-env'

const SIZE = 64 << 20
const SLOW = 100
const READS = 64
const MIB = 1 << 20

/** A client that negotiates, sends @n 1 MiB READs and then never reads. */
async function slowClient(path: string, n: number): Promise<net.Socket> {
  const s = net.connect(path)
  s.on('error', () => undefined)
  let buf = Buffer.alloc(0)
  let wake: (() => void) | null = null
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d])
    wake?.()
  }
  s.on('data', onData)
  const take = async (k: number): Promise<Buffer> => {
    while (buf.length < k) await within(new Promise<void>((r) => { wake = r }), 10000, 'the handshake')
    const b = buf.subarray(0, k)
    buf = buf.subarray(k)
    return b
  }
  await take(18)
  const flags = Buffer.alloc(4)
  flags.writeUInt32BE(P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES)
  s.write(flags)
  const name = Buffer.from('disk')
  const opt = Buffer.alloc(16 + 4 + name.length + 2)
  opt.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 0)
  opt.writeUInt32BE(P.NBD_OPT_GO, 8)
  opt.writeUInt32BE(4 + name.length + 2, 12)
  opt.writeUInt32BE(name.length, 16)
  name.copy(opt, 20)
  s.write(opt)
  for (;;) {
    const h = await take(20)
    const len = h.readUInt32BE(16)
    if (len) await take(len)
    const type = h.readUInt32BE(12)
    if (type === P.NBD_REP_ACK) break
    assert.is(type, P.NBD_REP_INFO, `GO: reply type 0x${type.toString(16)}`)
  }
  // Never read again: the socket stops taking data once its buffers are full.
  s.off('data', onData)
  s.pause()
  const reqs = Buffer.alloc(28 * n)
  for (let i = 0; i < n; i++) {
    const o = i * 28
    reqs.writeUInt32BE(P.NBD_REQUEST_MAGIC, o)
    reqs.writeUInt16BE(P.NBD_CMD_READ, o + 6)
    reqs.writeUInt32BE(i, o + 12)
    reqs.writeBigUInt64BE(BigInt((i % (SIZE / MIB)) * MIB), o + 16)
    reqs.writeUInt32BE(MIB, o + 24)
  }
  s.write(reqs)
  return s
}

function rssKiB(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
}

const S = suite('nbd gateway: slow readers')
const env = nbdSuiteEnv(S, { size: SIZE, segment: '16:256:64K', exports: [{ name: 'disk' }] })

S(`${SLOW} clients that never read their replies do not starve a verified workload or new connections`, async () => {
  const e = env()
  if (!e) return
  const slow: net.Socket[] = []
  const fast = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  try {
    const rss0 = rssKiB()
    for (let i = 0; i < SLOW; i++) slow.push(await within(slowClient(e.sock, READS), 15000, `slow client ${i}`))
    // Let the gateway take what it takes of their requests.
    await new Promise((r) => setTimeout(r, 500))

    // A verified workload at full speed: 8 streams of write, read back, compare, each in its own region.
    let ops = 0
    const stream = async (k: number): Promise<void> => {
      const base = SIZE / 2 + k * (2 * MIB)
      for (let i = 0; i < 40; i++) {
        const len = (1 + (i % 16)) * 4096
        const off = base + ((i * 37) % 64) * 4096
        const data = randomBytes(len)
        await fast.write(off, data)
        const back = await fast.read(off, len)
        assert.ok(back.equals(data), `stream ${k} op ${i}: read back what was written`)
        ops += 2
      }
    }
    let maxHeld = 0
    const sample = setInterval(() => {
      maxHeld = Math.max(maxHeld, e.gw.engineStats()?.held ?? 0)
    }, 5)
    try {
      await within(Promise.all(Array.from({ length: 8 }, (_, k) => stream(k))), 60000, 'the verified workload beside the slow readers')
    } finally {
      clearInterval(sample)
    }
    assert.is(ops, 8 * 40 * 2)

    // New connections still complete the handshake (an INFO request) and are served.
    for (let i = 0; i < 3; i++) {
      const c = await within(NbdClient.connect({ unix: e.sock, export: 'disk', timeoutMs: 15000 }), 20000, `new connection ${i}`)
      assert.is((await within(c.read(0, 4096), 20000, 'a read on a new connection')).length, 4096)
      await c.disconnect()
    }

    // What the slow readers hold: the gateway's memory and the segment's requests.
    const st = e.gw.engineStats()
    const free = freeRequests(e.seg)
    const rss = rssKiB()
    const total = e.seg.config.nrRequests
    console.log(`  ${SLOW} slow readers: gateway VmRSS ${(rss / 1024).toFixed(0)} MiB (${(rss0 / 1024).toFixed(0)} MiB before), ` +
      `segment requests free ${free}/${total}` +
      (st ? `, engine holds ${st.held} requests (at most ${maxHeld} seen during the workload), ` +
        `${(st.committed / MIB).toFixed(0)} MiB committed, ` +
        `${(st.copied / MIB).toFixed(0)} MiB copied out` : '') +
      `; caps ${e.gw.maxReplyBytes / MIB} MiB per connection, ${e.gw.maxReplyTotal / MIB} MiB in all, ` +
      `${e.gw.maxConnRequests} requests per connection, ${e.gw.maxTotalRequests} in all`)
    assert.ok(free >= total - e.gw.maxTotalRequests, `${free} requests free`)
    if (st) {
      assert.ok(st.held <= e.gw.maxTotalRequests, `the engine holds ${st.held} requests`)
      // All together: at most the total cap plus one command (1 MiB here) per connection.
      assert.ok(st.committed <= e.gw.maxReplyTotal + (SLOW + 4) * MIB, `${st.committed} bytes committed`)
    }
  } finally {
    for (const s of slow) s.destroy()
    await fast.disconnect().catch(() => undefined)
  }
  // Once they are gone, everything is given back.
  const st = e.gw.engineStats()
  if (st) {
    await within((async () => {
      while (e.gw.engineStats()!.held || e.gw.engineStats()!.committed) await new Promise((r) => setTimeout(r, 20))
    })(), 15000, 'the slow readers\' requests and bytes given back')
  }
  assert.is(freeRequests(e.seg), e.seg.config.nrRequests)
})

S.run()
