// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD engine's deferred input (docs/nbd.md, Performance). A
// connection with 8 or more requests at the storage peer stops polling its
// socket and reads it once per batch of replies. A client that keeps 32
// commands in flight and sends a new one per reply (as fio does) gets its
// input deferred, every command is answered and every write reads back;
// afterwards commands at depth 1 are answered (the connection polls again).
// With the storage peer stopped while the input is deferred, the request
// timeout fails the commands in flight, and the commands sent meanwhile are
// still read and answered (EIO), then served again after SIGCONT.
import { randomBytes } from 'node:crypto'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient, type NbdError } from '../../peers/node/nbd/client'
import { procState, until, within } from './helpers'
import { nbdSuiteEnv } from './nbd-env'

const SIZE = 16 << 20
const BLOCK = 4096
const BLOCKS = SIZE / BLOCK

/** @total commands (@run(i) sends command i), @depth in flight: a new one sent as each is answered. */
async function keepInFlight(c: NbdClient, depth: number, total: number, run: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < total) await run(next++)
  }
  await Promise.all(Array.from({ length: depth }, lane))
}

const S = suite('nbd gateway: deferred input')
const env = nbdSuiteEnv(S, { size: SIZE, segment: '16:256:64K', exports: [{ name: 'disk' }], gw: { requestTimeoutMs: 1000 } })

S('32 commands in flight, one sent per reply: input deferred, every write reads back; then depth 1 is served', async () => {
  const e = env()
  if (!e) return
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  try {
    const d0 = e.gw.engineStats()!.deferrals
    const N = 3000
    const block = Array.from({ length: N }, (_, i) => (i * 7919) % BLOCKS)	// distinct blocks
    const data = Array.from({ length: N }, () => randomBytes(BLOCK))
    await within(keepInFlight(c, 32, N, (i) => c.write(block[i]! * BLOCK, data[i]!)), 60000, 'the writes at depth 32')
    const got: Buffer[] = []
    await within(keepInFlight(c, 32, N, async (i) => { got[i] = await c.read(block[i]! * BLOCK, BLOCK) }), 60000, 'the reads at depth 32')
    for (let i = 0; i < N; i++) assert.ok(got[i]!.equals(data[i]!), `block ${block[i]} read back`)
    const deferrals = e.gw.engineStats()!.deferrals - d0
    console.log(`  ${deferrals} deferrals over ${2 * N} commands at depth 32`)
    assert.ok(deferrals > 0, 'the input was deferred')
    // Depth 1 afterwards: nothing at the peer, so the socket is polled again and each command is answered.
    for (let i = 0; i < 50; i++) {
      const d = randomBytes(BLOCK)
      await within(c.write(i * BLOCK, d), 10000, `write ${i} at depth 1`)
      assert.ok((await within(c.read(i * BLOCK, BLOCK), 10000, `read ${i} at depth 1`)).equals(d))
    }
  } finally {
    await c.disconnect()
  }
})

S('storage peer stopped while the input is deferred: commands in flight time out, those sent meanwhile are answered', async () => {
  const e = env()
  if (!e) return
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  let stopped = false
  try {
    // Deep traffic first, so the connection defers its input.
    const d0 = e.gw.engineStats()!.deferrals
    await keepInFlight(c, 32, 1000, (i) => c.write((i % BLOCKS) * BLOCK, randomBytes(BLOCK)))
    assert.ok(e.gw.engineStats()!.deferrals > d0, 'deferred')
    e.d.kill('SIGSTOP')
    stopped = true
    await until(() => procState(e.d.proc.pid!) === 'T', 10000, 'blockd stopped')
    // 32 in flight at the stopped peer (the input deferred once it was drained), then 16 more sent.
    const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (err: NbdError) => err.code)
    const first = Array.from({ length: 32 }, (_, i) => code(c.write(i * BLOCK, randomBytes(BLOCK))))
    await new Promise((r) => setTimeout(r, 100))
    const more = Array.from({ length: 16 }, (_, i) => code(c.read((64 + i) * BLOCK, BLOCK)))
    const codes = await within(Promise.all([...first, ...more]), 30000, 'every command answered while the peer is stopped')
    assert.equal(codes, Array(48).fill('EIO'))
    e.d.kill('SIGCONT')
    stopped = false
    const d = randomBytes(BLOCK)
    await within((async () => {
      for (;;) {
        if (await c.write(0, d).then(() => true, () => false)) return
        await new Promise((r) => setTimeout(r, 50))
      }
    })(), 30000, 'a write after SIGCONT')
    assert.ok((await c.read(0, BLOCK)).equals(d))
    await keepInFlight(c, 32, 500, (i) => c.write((i % BLOCKS) * BLOCK, randomBytes(BLOCK)))
  } finally {
    if (stopped) e.d.kill('SIGCONT')
    // A command never answered (the bug this test is for) would keep disconnect() waiting.
    await within(c.disconnect(), 15000, 'the disconnect').catch(() => undefined)
  }
})

S.run()
