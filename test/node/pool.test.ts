// SPDX-License-Identifier: BSD-2-Clause
//
// Description: servePool() - worker threads that join with the futex peer
// type and each serve a port with a handler module, sleeping in waitSync
// between requests, while the main thread is a posixfd client: data
// verified on every port, async handlers, thrown codes, close() leaving the
// ports; a pool that cannot start (a port taken, a missing module) rejects
// with a code and leaves nothing bound.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { Segment, pattern, servePool } from '../../sys/node/ts/index'
import { FIXTURES, TSX, codeOf, uniqueSpec, within } from './helpers'

const MODULE = join(FIXTURES, 'pool-handler.ts')
const execArgv = ['--require', TSX]

test('a pool of 3 futex workers serves ports 1-3 for a posixfd client', async () => {
  await using seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
  const pool = await within(servePool({ spec: seg.config.spec, port: 1, workers: 3, module: MODULE, execArgv }), 20000, 'the pool')
  assert.equal(pool.ports, [1, 2, 3])
  for (const p of pool.ports) {
    const info = seg.portInfo(p)
    assert.equal([info.state, info.peer_type, info.pid, info.alive], ['bound', 'futex', process.pid, true])
  }
  const client = seg.bindDynamicPort()
  const seed = pattern.seed('pool')
  const N = 600
  let next = 0
  const run = async (): Promise<void> => {
    while (next < N) {
      const i = next++
      const r = await client.request({ op: 'read', target: 'pool', offset: i * 4096, size: 4096 }).submit(1 + (i % 3))
      assert.ok(r.ok, r.errorCode)
      assert.is(pattern.check(r.data.subarray(0, 4096), seed, i * 4096), 4096)
      r.release()
    }
  }
  await within(Promise.all(Array.from({ length: 8 }, run)), 30000, 'the replies')
  for (const p of pool.ports) {
    const h = await client.request({ op: 'hash' }).submit(p)
    assert.equal([h.ok, h.serviced], [true, p], 'an async handler, on the worker of its port')
    h.release()
    const e = await client.request({ op: 'rename' }).submit(p)
    assert.is(e.errorCode, 'EROFS')
    e.release()
  }
  const stats = await within(pool.close(), 10000, 'the pool to close')
  assert.equal(stats.served, { 1: N / 3 + 2, 2: N / 3 + 2, 3: N / 3 + 2 })
  for (const p of pool.ports) assert.is(seg.portInfo(p).state, 'free')
  assert.equal(seg.verify(), [])
})

test('a pool that cannot start rejects with a code and leaves no port bound', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const taken = seg.bindPort(2)
  assert.is(await codeOf(() => servePool({ spec: seg.config.spec, port: 1, workers: 2, module: MODULE, execArgv })), 'EBUSY')
  assert.is(seg.portInfo(1).state, 'free', 'the worker that did bind left')
  taken.close()
  assert.is(await codeOf(() => servePool({ spec: seg.config.spec, port: 1, module: join(FIXTURES, 'nope.js'), execArgv })),
    'MODULE_NOT_FOUND')
  assert.is(await codeOf(() => servePool({ spec: seg.config.spec, ports: [1, 1], module: MODULE })), 'EINVAL')
  assert.is(await codeOf(() => servePool({ spec: 'posix:xseg-no-such-seg', port: 1, module: MODULE })), 'ENOENT')
  assert.equal([seg.portInfo(1).state, seg.portInfo(2).state], ['free', 'free'])
})

test.run()
