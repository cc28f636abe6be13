// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway with a storage peer that is alive but stopped
// (SIGSTOP). With a 1 s request timeout, READs and WRITEs in flight on one
// connection fail with EIO instead of waiting forever; the gateway keeps
// serving (a second connection completes its handshake, and its commands
// fail with EIO too, never hang); after SIGCONT the late replies are put back
// (the segment's free request count returns to its idle value: nothing
// leaked, nothing put twice) and new commands on both connections succeed.
import { randomBytes } from 'node:crypto'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient, type NbdError } from '../../peers/node/nbd/client'
import { procState, until, within } from './helpers'
import { freeRequests, nbdSuiteEnv } from './nbd-env'

const SIZE = 8 << 20
const BUF = 64 << 10

const S = suite('nbd gateway: a stopped storage peer')
const env = nbdSuiteEnv(S, {
  size: SIZE, segment: '16:128:64K',
  exports: [{ name: 'disk' }, { name: 'fixed', target: 'disk', size: SIZE }],
  gw: { requestTimeoutMs: 1000 },
})

S('SIGSTOP: commands fail with EIO after the timeout, other connections are served, SIGCONT recovers without a leak', async () => {
  const e = env()
  if (!e) return
  const a = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  let b: NbdClient | undefined
  let stopped = false
  try {
    const before = randomBytes(4 * BUF)
    await a.write(0, before)
    assert.equal(await a.read(0, before.length), before)
    // The engine keeps the buffers of the last chunks warm for a tick (250 ms here): idle is once it gave them back.
    await until(() => !e.gw.engineStats() || e.gw.engineStats()!.held === 0, 15000, 'the warm requests given back')
    const idle = freeRequests(e.seg)
    assert.ok(idle > 64, `${idle} requests free when idle`)

    e.d.kill('SIGSTOP')
    stopped = true
    // kill() returns before the peer stops (it may still take a request): wait for state T.
    await until(() => procState(e.d.proc.pid!) === 'T', 10000, 'blockd stopped')
    // Reads and writes in flight on one connection: each fails with EIO (the hang guard is generous).
    const cmds: Promise<string>[] = []
    for (let i = 0; i < 8; i++) {
      cmds.push(a.read(i * BUF, BUF).then(() => 'ok', (err: NbdError) => err.code))
      cmds.push(a.write(SIZE / 2 + i * BUF, randomBytes(BUF)).then(() => 'ok', (err: NbdError) => err.code))
    }
    const codes = await within(Promise.all(cmds), 30000, 'the commands to the stopped peer to fail')
    assert.equal(codes, Array(16).fill('EIO'))

    // The gateway still serves: a second connection (a fixed-size export: no INFO) negotiates,
    // and its commands fail with EIO too rather than hang.
    b = await within(NbdClient.connect({ unix: e.sock, export: 'fixed' }), 15000, 'a new connection while the peer is stopped')
    const bc = await within(b.read(0, 4096).then(() => 'ok', (err: NbdError) => err.code), 30000, 'a read on the second connection')
    assert.is(bc, 'EIO')
    const fast = e.gw.engineStats()
    if (fast) assert.ok(fast.timeouts >= 1, `timeouts ${fast.timeouts}`)

    e.d.kill('SIGCONT')
    stopped = false
    // New commands succeed on both connections once the peer runs again.
    const data = randomBytes(2 * BUF)
    await within((async () => {
      for (;;) {
        const r = await a.write(BUF, data).then(() => true, () => false)
        if (r) return
        await new Promise((res) => setTimeout(res, 50))
      }
    })(), 30000, 'a write after SIGCONT')
    assert.equal(await a.read(BUF, data.length), data)
    assert.equal(await b.read(BUF, data.length), data)
    assert.equal(await b.read(0, BUF), before.subarray(0, BUF))

    // Every late reply was put back exactly once: the free count is the idle one again.
    if (fast) await until(() => e.gw.engineStats()!.orphans === 0 && e.gw.engineStats()!.held === 0, 15000, 'the late replies')
    await until(() => freeRequests(e.seg) === idle, 15000, `the free request count back at ${idle} (now ${freeRequests(e.seg)})`)
    const st = e.gw.engineStats()
    if (st) {
      assert.is(st.orphans, 0)
      assert.ok(st.late >= 1, `late replies ${st.late}`)
      console.log(`  stopped peer: ${st.timeouts} commands timed out, ${st.late} late replies put back, ${idle} requests free before and after`)
    }
  } finally {
    if (stopped) e.d.kill('SIGCONT')
    await b?.disconnect().catch(() => undefined)
    await a.disconnect().catch(() => undefined)
  }
})

S.run()
