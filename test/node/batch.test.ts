// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the batched API (sys/node/ts/batch.ts, sys/node/addon/batch.cc)
// - tables of mixed ops and sizes with data verified both ways; a batch
// larger than the free requests submits what it can and says how many;
// errors per row, and first-row errors that throw and hold nothing; replies
// out of order, next to per-request submits (and receiveSync) on the same
// port; a batched server in another process SIGKILLed while it holds a
// batch (recovery fails the rows back with ECONNRESET); a batched client
// against C patternd; misuse gives codes. After each test every request is
// free again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Op, Segment, pattern, type Batch, type Port } from '../../sys/node/ts/index'
import { cPeer, codeOf, skipCheck, start, startFixture, stop, uniqueSpec, within } from './helpers'

/** Collect @n reply rows from @port's replies(): cookie -> [ok, errorCode, serviced, the read data's check]. */
async function collect(port: Port, n: number, check?: (b: Batch, i: number) => boolean):
Promise<Map<number, { ok: boolean; code: string | undefined; serviced: number; good: boolean }>> {
  const got = new Map<number, { ok: boolean; code: string | undefined; serviced: number; good: boolean }>()
  if (n === 0) return got
  for await (const b of port.replies()) {
    for (let i = 0; i < b.length; i++) {
      assert.not.ok(got.has(b.cookie(i)), `cookie ${b.cookie(i)} came back twice`)
      got.set(b.cookie(i), { ok: b.ok(i), code: b.errorCode(i), serviced: b.serviced(i), good: check ? check(b, i) : true })
    }
    if (got.size >= n) break
  }
  return got
}

/** Every request of @seg is free: a table of all of them submits whole (and is released). */
async function allFree(seg: Segment, port: Port, dst: number): Promise<void> {
  const n = seg.config.nrRequests
  const t = port.batch(n)
  for (let i = 0; i < n; i++) t.add('ping', 0, 0, { cookie: i })
  assert.is(port.submitBatch(dst, t), n, 'every request is free again')
  assert.is((await collect(port, n)).size, n)
}

/** A batched pattern server in this process (as fixtures/batch-server.ts). */
function serveHere(port: Port, signal: AbortSignal): Promise<void> {
  return (async () => {
    try {
      for await (const b of port.requests({ signal })) {
        for (let i = 0; i < b.length; i++) {
          const op = b.opCode(i)
          if (b.target(i) === 'errors' && b.cookie(i) % 3 === 1) b.fail(i, b.cookie(i) % 2 ? 'EILSEQ' : 'ENOSPC')
          else if (op === Op.read || op === Op.write) {
            const off = b.dataOffset(i)
            const view = b.bytes.subarray(off, off + b.size(i))
            const seed = pattern.seed(b.target(i))
            if (op === Op.read) pattern.fill(view, seed, b.offsetBig(i))
            else if (pattern.check(view, seed, b.offsetBig(i)) !== view.length) {
              b.fail(i, 'EILSEQ')
              continue
            }
            b.respond(i, view.length)
          }
        }
      }
    } catch (e) {
      if ((e as { code?: string }).code !== 'ABORT_ERR') throw e
    }
  })()
}

test('tables of mixed ops and sizes: reads verified here, writes by the server, cookies and targets per row', async () => {
  await using seg = await Segment.create(uniqueSpec('8:256:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const ac = new AbortController()
  const serving = serveHere(server, ac.signal)
  const c = seg.bindDynamicPort()
  const targets = ['vol-a', 'vol-b']
  const t = c.batch(100)
  for (let round = 0; round < 5; round++) {
    t.clear()
    for (let i = 0; i < 100; i++) {
      const size = [0, 1, 511, 4096, 12345, 65536][(i + round) % 6]!
      const op = i % 3 === 0 ? 'write' : i % 3 === 1 ? 'read' : 'ping'
      t.add(op, BigInt(i) * 70000n + 3n, size, { cookie: round * 1000 + i, target: i % 2 })
    }
    // Writes: the pattern of their target, written in place before the table goes.
    const n = c.submitBatch(1, t, {
      targets,
      fill: (b, k) => {
        for (let i = 0; i < k; i++) {
          if (b.opCode(i) !== Op.write) continue
          const off = b.dataOffset(i)
          pattern.fill(b.bytes.subarray(off, off + b.size(i)), pattern.seed(targets[i % 2]!), b.offsetBig(i))
        }
      },
    })
    assert.is(n, 100)
    const got = await within(collect(c, n, (b, i) => {
      if (b.opCode(i) !== Op.read) return true
      const off = b.dataOffset(i)
      return pattern.check(b.bytes.subarray(off, off + b.serviced(i)), pattern.seed(targets[b.cookie(i) % 2]!), b.offsetBig(i)) === b.serviced(i)
    }), 20000, 'the replies')
    for (let i = 0; i < 100; i++) {
      const r = got.get(round * 1000 + i)!
      const size = [0, 1, 511, 4096, 12345, 65536][(i + round) % 6]!
      assert.ok(r.ok, `row ${i}: ${r.code}`)
      assert.is(r.serviced, i % 3 === 2 ? 0 : size, `row ${i} serviced`)
      assert.ok(r.good, `row ${i}: the data read is the pattern`)
    }
  }
  await allFree(seg, c, 1)
  ac.abort()
  await serving
})

test('a batch larger than the free requests submits what it can and returns how many', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const c = seg.bindDynamicPort()
  const t = c.batch(40)
  for (let i = 0; i < 40; i++) t.add('ping', 0, 0, { cookie: i })
  assert.is(c.submitBatch(1, t), 16, 'the 16 requests the segment has')
  for (let i = 0; i < 16; i++) assert.is(t.index(i) < 16, true)
  assert.is(c.submitBatch(1, t), 0, 'none free: 0, not an error')
  // The server answers them; the rest of the table goes once they are released.
  const s = server.batch(64)
  assert.is(server.acceptBatch(s), 16)
  server.respondBatch(s)
  const r = c.batch(64)
  assert.is(c.receiveBatch(r), 16)
  c.releaseBatch(r)
  assert.is(c.submitBatch(1, t), 16)
  assert.is(server.acceptBatch(s), 16)
  server.respondBatch(s)
  assert.is(c.receiveBatch(r), 16)
  c.releaseBatch(r)
  // No buffer class that large: the first row throws E2BIG, a later one ends the batch there.
  t.clear()
  t.add('read', 0, 1 << 20)
  assert.is(await codeOf(() => c.submitBatch(1, t)), 'E2BIG')
  t.clear()
  t.add('read', 0, 4096, { cookie: 1 })
  t.add('read', 0, 1 << 20, { cookie: 2 })
  assert.is(c.submitBatch(1, t), 1, 'the row before the one that cannot be')
  assert.is(server.acceptBatch(s), 1)
  server.respondBatch(s)
  assert.is(c.receiveBatch(r), 1)
  c.releaseBatch(r)
  const ac = new AbortController()
  const serving = serveHere(server, ac.signal)
  await allFree(seg, c, 1)
  ac.abort()
  await serving
})

test('errors per row; a first row that cannot go throws and holds nothing', async () => {
  await using seg = await Segment.create(uniqueSpec('8:64:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const ac = new AbortController()
  const serving = serveHere(server, ac.signal)
  const c = seg.bindDynamicPort()
  const t = c.batch(60)
  for (let i = 0; i < 60; i++) t.add(i % 2 ? 'read' : 'write', i * 4096, 4096, { cookie: i })
  // Target 'errors': every third row fails, EILSEQ or ENOSPC; the writes of
  // the others carry zeros, not the pattern: EILSEQ from the check.
  const n = c.submitBatch(1, t, { targets: ['errors'] })
  assert.is(n, 60)
  const got = await within(collect(c, n), 20000, 'the replies')
  for (let i = 0; i < 60; i++) {
    const r = got.get(i)!
    const want = i % 3 === 1 ? (i % 2 ? 'EILSEQ' : 'ENOSPC') : i % 2 ? undefined : 'EILSEQ'
    assert.is(r.code, want, `row ${i}`)
    assert.is(r.ok, want === undefined, `row ${i} ok`)
  }
  // Nobody bound port 5: ENOENT, and the requests taken for the table are back.
  assert.is(await codeOf(() => c.submitBatch(5, t)), 'ENOENT')
  t.clear()
  t.add('ping', 0, 0)
  assert.is(await codeOf(() => c.submitBatch(1, t, { targets: ['x'.repeat(257)] })), 'ENAMETOOLONG')
  t.clear()
  t.add('ping', 0, 0, { target: 7 })
  assert.is(await codeOf(() => c.submitBatch(1, t)), 'EINVAL', 'a target the array lacks')
  await allFree(seg, c, 1)
  ac.abort()
  await serving
})

test('replies out of order, next to per-request submits on the same port', async () => {
  await using seg = await Segment.create(uniqueSpec('8:128:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const c = seg.bindDynamicPort()
  const t = c.batch(50)
  for (let i = 0; i < 50; i++) t.add('read', i * 512, 512, { cookie: i })
  assert.is(c.submitBatch(1, t, { targets: ['ooo'] }), 50)
  const single = c.request({ op: 'read', target: 'ooo', offset: 0n, size: 512, cookie: 999 }).submit(1)
  // The server takes all 51 and answers them last first, one at a time.
  const held = []
  for (let r = server.acceptSync(); r; r = server.acceptSync()) held.push(r)
  assert.is(held.length, 51)
  for (const r of held.reverse()) {
    pattern.fill(r.data.subarray(0, r.size), pattern.seed(r.target), r.offset)
    r.respond({ serviced: r.size })
  }
  const got = await within(collect(c, 50, (b, i) => {
    const off = b.dataOffset(i)
    return pattern.check(b.bytes.subarray(off, off + 512), pattern.seed('ooo'), b.offsetBig(i)) === 512
  }), 10000, 'the replies')
  assert.equal([...got.keys()], Array.from({ length: 50 }, (_, i) => 49 - i), 'in the order they were answered')
  for (const r of got.values()) assert.ok(r.ok && r.good && r.serviced === 512)
  const one = await within(single, 10000, 'the per-request reply')
  assert.is(one.cookie, 999n, 'the per-request submit got its own reply')
  assert.ok(one.ok)
  one.release()
  const ac = new AbortController()
  const serving = serveHere(server, ac.signal)
  await allFree(seg, c, 1)
  ac.abort()
  await serving
})

test('receiveSync() next to batches: each reply goes to the API that submitted it', async () => {
  await using seg = await Segment.create(uniqueSpec('8:32:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const c = seg.bindDynamicPort()
  const t = c.batch(8)
  for (let i = 0; i < 8; i++) t.add('ping', 0, 0, { cookie: i })
  assert.is(c.submitBatch(1, t), 8)
  const one = c.request({ op: 'ping', cookie: 99 })
  assert.ok(one.trySubmit(1))
  const s = server.batch(16)
  assert.is(server.acceptBatch(s), 9)
  server.respondBatch(s)
  const r = c.receiveSync()
  assert.ok(r === one, 'the per-request reply, not a batched one')
  assert.is(r!.cookie, 99n)
  r!.release()
  assert.is(c.receiveSync(), null, 'the batched replies are not for receiveSync')
  const got = c.batch(16)
  assert.is(c.receiveBatch(got), 8)
  assert.equal(Array.from({ length: 8 }, (_, i) => got.cookie(i)).sort(), [0, 1, 2, 3, 4, 5, 6, 7])
  c.releaseBatch(got)
  const ac = new AbortController()
  const serving = serveHere(server, ac.signal)
  await allFree(seg, c, 1)
  ac.abort()
  await serving
})

test('a batched server SIGKILLed holding a batch: the rows come back failed with ECONNRESET', async () => {
  const spec = uniqueSpec('8:64:64K')
  await using seg = await Segment.create(spec, { destroyOnClose: true, peerCheckMs: 50 })
  const server = startFixture('batch-server', [spec, '1', 'hold'])
  try {
    await server.waitFor(/^ready/)
    const c = seg.bindDynamicPort()
    const t = c.batch(20)
    for (let i = 0; i < 20; i++) t.add('read', i * 4096, 4096, { cookie: i })
    assert.is(c.submitBatch(1, t, { targets: ['killed'] }), 20)
    await server.waitFor(/^held 20$/)
    server.kill('SIGKILL')
    await server.exited
    const got = await within(collect(c, 20), 10000, 'the rows failed back by recovery')
    assert.is(got.size, 20)
    for (const r of got.values()) assert.is(r.code, 'ECONNRESET')
    // Recovery gave the port back; a new server serves the same client.
    const again = startFixture('batch-server', [spec, '1'])
    try {
      await again.waitFor(/^ready/)
      await allFree(seg, c, 1)
    } finally {
      await stop(again)
    }
  } finally {
    await stop(server)
  }
})

const patternd = cPeer('patternd')
test('a batched TS client against C patternd: reads verified, writes checked by patternd', async () => {
  if (!patternd) return skipCheck('lib/user/bin/patternd missing (make user)')
  const spec = uniqueSpec('8:256:64K')
  await using seg = await Segment.create(spec, { destroyOnClose: true })
  const d = start(patternd, ['-g', spec, '-p', '1', '-d', 'posixfd', '-q'])
  try {
    await within((async () => {
      while (seg.portInfo(1).state !== 'bound') await new Promise((r) => setTimeout(r, 10))
    })(), 10000, 'patternd to bind port 1')
    const c = seg.bindDynamicPort()
    const t = c.batch(64)
    let total = 0
    for (let round = 0; round < 20; round++) {
      t.clear()
      for (let i = 0; i < 64; i++) t.add(i % 2 ? 'read' : 'write', (round * 64 + i) * 1000, 512 + 97 * i, { cookie: round * 64 + i })
      const n = c.submitBatch(1, t, {
        targets: ['cvol'],
        fill: (b, k) => {
          for (let i = 0; i < k; i += 2) {
            const off = b.dataOffset(i)
            pattern.fill(b.bytes.subarray(off, off + b.size(i)), pattern.seed('cvol'), b.offsetBig(i))
          }
        },
      })
      assert.is(n, 64)
      const got = await within(collect(c, n, (b, i) => {
        const off = b.dataOffset(i)
        return b.opCode(i) !== Op.read ||
          pattern.check(b.bytes.subarray(off, off + b.serviced(i)), pattern.seed('cvol'), b.offsetBig(i)) === b.size(i)
      }), 20000, 'patternd replies')
      for (const [k, r] of got) assert.ok(r.ok && r.good && r.serviced === 512 + 97 * (k % 64), `cookie ${k}: ${r.code}`)
      total += got.size
    }
    assert.is(total, 20 * 64)
  } finally {
    await stop(d)
  }
})

test('misuse: codes, never a crash', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:64K'), { destroyOnClose: true })
  await using other = await Segment.create(uniqueSpec('8:16:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const c = seg.bindDynamicPort()
  const t = c.batch(2)
  assert.is(await codeOf(() => t.add('nope' as 'ping', 0, 0)), 'EINVAL', 'an unknown op')
  assert.is(await codeOf(() => t.add('ping', -1, 0)), 'EINVAL', 'a negative offset')
  assert.is(await codeOf(() => t.add('ping', 0, 2 ** 32)), 'EINVAL', 'a size past 32 bits')
  assert.is(t.length, 0, 'rows that failed are not added')
  t.add('ping', 0, 0)
  t.add('ping', 0, 0)
  assert.is(await codeOf(() => t.add('ping', 0, 0)), 'ENOSPC', 'past the capacity')
  assert.is(await codeOf(() => c.batch(0)), 'EINVAL', 'no rows')
  assert.is(await codeOf(() => other.bindDynamicPort().submitBatch(1, t)), 'EINVAL', "another segment's table")
  // Rows that are not accepted here cannot be answered; rows not ours cannot be released.
  assert.is(await codeOf(() => server.respondBatch(t)), 'EPERM')
  t.length = 1
  t.rows[0] = 3
  assert.is(await codeOf(() => c.releaseBatch(t)), 'EPERM')
  c.close()
  assert.is(await codeOf(() => c.submitBatch(1, t)), 'EBADF')
  assert.is((await c.replies().next()).done, true, 'a closed port ends replies()')
})

test.run()
