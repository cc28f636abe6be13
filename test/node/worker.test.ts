// SPDX-License-Identifier: BSD-2-Clause
//
// Description: worker threads - a worker joins with the futex peer type and
// serves with blocking waits while the main thread is a posixfd client; a
// worker that ends without close() has its ports left by the addon's
// cleanup hook; the main thread refuses to block (waitSync: EPERM).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Worker } from 'node:worker_threads'
import { join } from 'node:path'
import { Segment, pattern } from '../../sys/node/ts/index'
import { servePattern } from '../../peers/node/patternd'
import { FIXTURES, TSX, codeOf, uniqueSpec, within } from './helpers'

function startWorker(spec: string, port: number, leak = false) {
  const stop = new SharedArrayBuffer(4)
  const w = new Worker(join(FIXTURES, 'worker.ts'), {
    workerData: { spec, port, stop, leak },
    execArgv: ['--require', TSX],
  })
  const msgs: unknown[] = []
  const ready = new Promise<void>((resolve, reject) => {
    w.on('message', (m: { ready?: boolean }) => {
      msgs.push(m)
      if (m.ready) resolve()
    })
    w.on('error', reject)
  })
  const exited = new Promise<number>((resolve) => w.on('exit', resolve))
  const finish = (): void => {
    Atomics.store(new Int32Array(stop), 0, 1)
  }
  return { w, ready, exited, finish, msgs }
}

test('a futex worker serves a posixfd client on the main thread', async () => {
  await using seg = await Segment.create(uniqueSpec('16:128:64K'), { destroyOnClose: true })
  const wk = startWorker(seg.config.spec, 1)
  await within(wk.ready, 10000, 'the worker')
  assert.is(seg.portInfo(1).peer_type, 'futex')
  const port = seg.bindDynamicPort()
  const seed = pattern.seed('w')
  const replies = await within(
    Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        port.request({ op: 'read', target: 'w', offset: i * 4096, size: 4096 }).submit(1)),
    ),
    10000,
    'replies from the worker',
  )
  for (const [i, r] of replies.entries()) {
    assert.ok(r.ok, r.errorCode)
    assert.is(pattern.check(r.data, seed, i * 4096), 4096)
    r.release()
  }
  wk.finish()
  assert.is(await within(wk.exited, 5000, 'the worker to exit'), 0)
  assert.equal(wk.msgs.at(-1), { served: 100 })
  assert.is(seg.portInfo(1).state, 'free')
})

test('a worker that exits without close() leaves its ports', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const wk = startWorker(seg.config.spec, 2, true)
  await within(wk.ready, 10000, 'the worker')
  assert.is(seg.portInfo(2).state, 'bound')
  wk.finish()
  assert.is(await within(wk.exited, 5000, 'the worker to exit'), 0)
  assert.is(seg.portInfo(2).state, 'free', 'the cleanup hook left it')
  // The same process can bind it again at once: nothing is left half-owned.
  seg.bindPort(2).close()
})

test('a futex worker client (trySubmit, waitSync, receiveSync) against a server here', async () => {
  await using seg = await Segment.create(uniqueSpec('16:64:4K'), { destroyOnClose: true })
  const ac = new AbortController()
  const serving = seg.bindPort(1).serve((req) => servePattern(req), { signal: ac.signal })
  const w = new Worker(join(FIXTURES, 'worker-client.ts'), {
    workerData: { spec: seg.config.spec, dst: 1, count: 300 },
    execArgv: ['--require', TSX],
  })
  const res = await within(new Promise((resolve, reject) => {
    w.on('message', resolve)
    w.on('error', reject)
  }), 20000, 'the worker client')
  assert.equal(res, { ok: 300, bad: 0, notLoopable: 'ENOTSUP' })
  ac.abort()
  await serving
})

test('the main thread never blocks: waitSync throws EPERM', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const p = seg.bindPort(1)
  assert.is(await codeOf(() => p.waitSync(0)), 'EPERM')
})

test.run()
