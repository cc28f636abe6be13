// SPDX-License-Identifier: BSD-2-Clause
//
// Description: misuse of the TypeScript API ends in errors with codes,
// never a crash or a hang: wrong specs, wrong arguments, closed segments and
// ports, double release and other out-of-order request calls, oversized
// data, dead or missing peers. The test process surviving each call is part
// of the check; the segment verifies clean afterwards.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment, pattern, XsegError } from '../../sys/node/ts/index'
import { codeOf, uniqueSpec, within } from './helpers'

test('wrong specs: EINVAL naming the field; missing segments: ENOENT', async () => {
  for (const spec of ['', 'bogus:x', 'posix:x:0', 'posix:x:8:0', 'posix:x:8:16:3K', 'posix:x:8:16:4K:0:99',
    'posix:x:8:16:4K:0:12:mode=abc', 'posix:x:8:16:4K:0:12:nosuchkey=1', 'posix:' + 'n'.repeat(300)]) {
    assert.is(await codeOf(() => Segment.parseSpec(spec)), 'EINVAL', spec)
    assert.is(await codeOf(() => Segment.create(spec)), 'EINVAL', spec)
  }
  for (const bad of [undefined, 42, {}, null]) assert.is(await codeOf(() => Segment.parseSpec(bad as unknown as string)), 'EINVAL')
  const e = await Segment.create('posix:x:0').catch((err: unknown) => err)
  assert.instance(e, Error)
  assert.match((e as Error).message, /nr_ports/i, 'the message names the field')
  assert.is(await codeOf(() => Segment.join(uniqueSpec())), 'ENOENT')
  assert.is(await codeOf(() => Segment.destroy(uniqueSpec())), 'ENOENT')
  assert.is(await codeOf(() => Segment.join(uniqueSpec(), { peerType: 'posix' as 'futex' })), 'EINVAL')
  assert.is(await codeOf(() => Segment.join(uniqueSpec(), { peerCheckMs: -1 })), 'EINVAL')
  {
    // The segdev driver is built in (issue 16) and joins segdev segments only.
    const spec = uniqueSpec('8:16:4K')
    await using seg = await Segment.create(spec, { destroyOnClose: true })
    assert.is(await codeOf(() => Segment.join(spec, { peerType: 'segdev' })), 'ENOTSUP', seg.name)
  }
  assert.is(await codeOf(() => Segment.list('nosuchtype')), 'EINVAL')
})

test('wrong arguments: EINVAL, ENAMETOOLONG, E2BIG, ENOENT', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const c = seg.bindDynamicPort()
  for (const n of [-1, 8, 99, 1.5, NaN, '1' as unknown as number]) assert.is(await codeOf(() => seg.bindPort(n)), 'EINVAL', String(n))
  assert.is(await codeOf(() => seg.bindPort(5)), 'EINVAL', 'a dynamic port by number')
  assert.is(await codeOf(() => seg.portInfo(8)), 'EINVAL')
  assert.is(await codeOf(() => seg.signal(3)), 'ENOENT', 'nobody bound it')
  assert.is(await codeOf(() => seg.bindPort(1, { role: 'both-ish' as 'both' })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ op: 'nope' as 'ping' })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ op: -1 })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ flags: ['nope' as 'fua'] })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ offset: 2n ** 64n })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ size: -5 })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ data: 'text' as unknown as Uint8Array })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ data: Buffer.alloc(100), dataLength: 10 })), 'EINVAL')
  assert.is(await codeOf(() => c.request({ target: 'x'.repeat(257) })), 'ENAMETOOLONG')
  // Oversized data: larger than the largest buffer class of the segment.
  assert.is(await codeOf(() => c.request({ size: 4097 })), 'E2BIG')
  assert.is(await codeOf(() => c.request({ data: Buffer.alloc(1 << 20) })), 'E2BIG')
  const r = c.request({ op: 'ping' })
  assert.is(await codeOf(() => r.submit(7)), 'ENOENT', 'nobody serves port 7')
  assert.is(await codeOf(() => r.submit(8)), 'EINVAL', 'no port 8')
  assert.is(await codeOf(() => r.submit(-1)), 'EINVAL')
  r.release()
  assert.equal(seg.verify(), [])
})

test('out of order: double release, respond twice, fields in flight, forward of a client request: EPERM', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const s = seg.bindPort(1)
  const c = seg.bindDynamicPort()
  const r = c.request({ op: 'read', size: 16 })
  assert.is(await codeOf(() => r.respond()), 'EPERM', 'a client cannot respond')
  assert.is(await codeOf(() => r.fail('EIO')), 'EPERM')
  assert.is(await codeOf(() => r.forward(1)), 'EPERM')
  assert.is(await codeOf(() => r.reply()), 'EPERM', 'nothing submitted')
  const pending = r.submit(1)
  assert.is(await codeOf(() => r.data), 'EPERM', 'in flight: not ours to read')
  assert.is(await codeOf(() => r.size), 'EPERM')
  assert.is(await codeOf(() => r.release()), 'EPERM', 'in flight: not ours to release')
  assert.is(await codeOf(() => r.submit(1)), 'EPERM', 'submitted twice')
  const req = s.acceptSync()!
  assert.is(await codeOf(() => req.release()), 'EPERM', 'a server does not release')
  req.respond({ serviced: 16 })
  assert.is(await codeOf(() => req.respond()), 'EPERM', 'responded twice')
  assert.is(await codeOf(() => req.fail('EIO')), 'EPERM')
  assert.is(await codeOf(() => req.data), 'EPERM', 'gone back to the client')
  const got = await within(pending, 5000, 'the reply')
  assert.is(got.serviced, 16)
  got.release()
  assert.is(await codeOf(() => got.release()), 'EPERM', 'double release')
  assert.is(await codeOf(() => got.data), 'EPERM')
  const f = c.request({})
  const fp = f.submit(1)
  const a = s.acceptSync()!
  assert.is(await codeOf(() => a.fail('ENOTANERRNO')), 'EINVAL')
  assert.is(await codeOf(() => a.fail(0)), 'EINVAL')
  a.fail('EROFS')
  const fr = await fp
  assert.is(fr.errorCode, 'EROFS')
  assert.is(await codeOf(() => fr.check()), 'EROFS')
  fr.release()
  assert.equal(seg.verify(), [])
})

test('closed segments and ports: EBADF or ECANCELED, never a crash', async () => {
  const seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const s = seg.bindPort(1)
  const c = seg.bindDynamicPort()
  const waiting = c.request({}).submit(1)
  const iter = s.accept()
  s.close()
  assert.is(await within(codeOf(() => waiting), 5000, 'the waiter'), 'ECONNRESET', 'its server left before answering')
  assert.equal(await iter.next(), { done: true, value: undefined }, 'the iterator of a closed port ends')
  assert.is(await codeOf(() => s.acceptSync()), 'EBADF')
  assert.is(await codeOf(() => s.waitSync(0)), 'EBADF')
  s.close() // twice: harmless
  const held = c.request({ size: 8 })
  const inflight = (() => {
    seg.bindPort(2)
    return c.request({}).submit(2)
  })()
  seg.close()
  seg.close() // twice: harmless
  assert.is(await within(codeOf(() => inflight), 5000, 'the waiter'), 'ECANCELED')
  for (const fn of [() => seg.bindDynamicPort(), () => seg.info(), () => seg.recover(), () => seg.verify(),
    () => seg.signal(1), () => seg.setSpin(1), () => seg.destroy(), () => c.request({}), () => held.data,
    () => held.release(), () => held.submit(1), () => c.info(), () => c.redirect(1)])
    assert.is(await codeOf(fn), 'EBADF', fn.toString())
  assert.is(await codeOf(() => Segment.join(seg.config.spec)), 'ENOENT', 'destroyed on close')
})

test('pattern helpers refuse what they cannot do: EINVAL', async () => {
  const s = pattern.seed('t')
  assert.is(await codeOf(() => pattern.fill('x' as unknown as Buffer, s, 0)), 'EINVAL')
  assert.is(await codeOf(() => pattern.check(Buffer.alloc(1), {} as typeof s, 0)), 'EINVAL')
  assert.is(await codeOf(() => pattern.fill(Buffer.alloc(1), s, -1)), 'EINVAL')
  assert.is(await codeOf(() => pattern.fill(Buffer.alloc(1), s, '0' as unknown as number)), 'EINVAL')
  assert.is(await codeOf(() => pattern.seed(5 as unknown as string)), 'EINVAL')
})

test.run()
