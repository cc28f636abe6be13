// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD engine's warm buffers (docs/nbd.md, Performance). The
// requests of replied READs and WRITEs are kept with their buffers and the
// next chunks reuse them, most recent first, instead of taking the
// segment's least recently used buffer (a cold one); the data stays right
// (every buffer reused holds another command's data first), and an idle
// engine gives them all back to the segment, and so does a busy one while
// the segment shrinks (a shrink waits for the requests above its target).
import { randomBytes } from 'node:crypto'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient } from '../../peers/node/nbd/client'
import { within } from './helpers'
import { freeRequests, nbdSuiteEnv } from './nbd-env'
import type { Request } from '../../sys/node/ts/index'

const SIZE = 16 << 20
const MIB = 1 << 20
const BUF = 64 << 10

const S = suite('nbd gateway: warm buffers')
// 512 requests: the engine may keep 16 warm, the chunks of one 1 MiB command.
const env = nbdSuiteEnv(S, { size: SIZE, segment: '16:512:64K', exports: [{ name: 'disk' }] })

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  await within((async () => {
    while (!cond()) await new Promise((r) => setTimeout(r, 20))
  })(), ms, what)
}

S('1 MiB commands one after another reuse the last buffers; the data is right; idle, they go back', async () => {
  const e = env()
  if (!e) return
  const st0 = e.gw.engineStats()!
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  const N = 8
  const data: Buffer[] = []
  try {
    // Writes, then reads in another order: each reused buffer held another command's data before.
    for (let i = 0; i < N; i++) {
      data.push(randomBytes(MIB))
      await c.write(i * MIB, data[i]!)
    }
    for (const i of [3, 0, 7, 1, 6, 2, 5, 4]) assert.ok((await c.read(i * MIB, MIB)).equals(data[i]!), `MiB ${i} read back`)
    // A short READ after long ones: a reused buffer of 64K holds only its own 4 KiB.
    assert.ok((await c.read(MIB + 4096, 4096)).equals(data[1]!.subarray(4096, 8192)), 'a 4 KiB read back')
    const st = e.gw.engineStats()!
    const hits = st.warmHits - st0.warmHits, misses = st.warmMisses - st0.warmMisses
    const chunks = 2 * N * (MIB / BUF) + 1
    console.log(`  warm buffers: ${hits} of ${chunks} chunks reused one, ${misses} took a free one; ${st.warm} warm now`)
    assert.is(hits + misses, chunks)
    // Only the first command finds none warm (the hang guard of a timer tick aside: allow a few more).
    assert.ok(hits >= chunks / 2, `${hits} warm hits of ${chunks}`)
    assert.ok(st.warm > 0 && st.warm <= 16, `${st.warm} warm`)
    assert.ok(st.held >= st.warm, `held ${st.held} counts the warm ones`)
  } finally {
    await c.disconnect()
  }
  // Idle: a timer tick (at most a second) without use gives them back, and the segment has all its requests.
  await until(() => e.gw.engineStats()!.warm === 0 && e.gw.engineStats()!.held === 0, 15000, 'the warm requests given back')
  assert.is(freeRequests(e.seg), e.seg.config.nrRequests)
})

S('closing the gateway gives the warm requests back', async () => {
  const e = env()
  if (!e) return
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  try {
    await c.read(0, MIB)
    assert.ok(e.gw.engineStats()!.warm > 0, 'warm after a read')
  } finally {
    await c.disconnect()
  }
  await e.gw.close()
  assert.is(freeRequests(e.seg), e.seg.config.nrRequests)
})

S.run()

const G = suite('nbd gateway: warm buffers and a shrinking segment')
// A growable segment: 128 requests live of 128; the engine keeps 7 warm.
const genv = nbdSuiteEnv(G, { size: SIZE, segment: '16:128:64K:0:12:max_requests=128', exports: [{ name: 'disk' }] })

G('a shrink completes while a client keeps the engine busy (the warm requests go back at the next tick)', async () => {
  const e = genv()
  if (!e) return
  // Requests 0..99 held here while the engine starts: its warm ones are then above the shrink's target.
  const p = e.seg.bindDynamicPort({ role: 'client' })
  const held: Request[] = []
  for (let i = 0; i < 100; i++) {
    const r = p.tryRequest({ op: 'read', target: 'held', size: BUF, dataLength: BUF })
    if (!r) break
    held.push(r)
  }
  assert.is(held.length, 100)
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  let stop = false, reads = 0
  let failed: unknown = null
  // 1 MiB READs back to back: the engine is never idle for a tick, so only the shrink gives the warm ones back.
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      await c.read((i % 8) * MIB, MIB)
      reads++
    }
  })().catch((err: unknown) => { failed = err })
  try {
    await until(() => reads >= 4 || failed !== null, 15000, 'the first reads')
    assert.ok(e.gw.engineStats()!.warmHits > 0, 'warm buffers in use')
    for (const r of held.splice(0)) r.release()
    p.close()
    // Shrink to 16: the warm requests are above it (the warm set of a steady workload stays the same).
    let done = false
    const until0 = Date.now() + 10000
    while (!done && Date.now() < until0 && failed === null) {
      done = e.seg.grow(16).done
      if (!done) await new Promise((r) => setTimeout(r, 50))
    }
    const busy = reads
    await until(() => reads > busy + 2 || failed !== null, 15000, 'reads after the shrink')
    assert.is(failed, null)
    assert.ok(done, `the shrink to 16 done while the client reads (${e.seg.info().live_requests} live)`)
  } finally {
    for (const r of held) r.release()
    if (held.length) p.close()
    stop = true
    await loop
    await c.disconnect()
  }
  assert.is(e.seg.grow(128).live_requests, 128)
})

G.run()
