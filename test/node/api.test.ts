// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the TypeScript API in one process - specs, segments, ports,
// the request life cycle (every op and flag), zero-copy data, servers as an
// async iterator and as a callback, forwarding, AbortSignal, a full queue,
// and misuse (codes, not messages).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Flag, OPS, Segment, XsegError, pattern, type Request } from '../../sys/node/ts/index'
import { codeOf, uniqueSpec, within } from './helpers'

test('parseSpec fills the defaults and names a bad field', async () => {
  const c = Segment.parseSpec('posix:abc')
  assert.is(c.type, 'posix')
  assert.is(c.name, 'abc')
  assert.ok(c.nrPorts > 0 && c.nrRequests > 0)
  assert.is(Segment.parseSpec(c.spec).spec, c.spec, 'the canonical spec round-trips')
  assert.is(await codeOf(() => Segment.parseSpec('posix:x:0')), 'EINVAL')
  assert.is(await codeOf(() => Segment.create('posix:x:nope')), 'EINVAL')
  try {
    Segment.parseSpec('posix:x:0')
  } catch (e) {
    assert.instance(e, Error)
    assert.is((e as XsegError).errno, -22)
  }
  assert.is(await codeOf(() => Segment.parseSpec(42 as unknown as string)), 'EINVAL')
})

test('create, join, info, close; EEXIST; join after destroy fails', async () => {
  const spec = uniqueSpec('8:64:4K')
  const a = await Segment.create(spec)
  assert.is(a.peerType, 'posixfd')
  assert.is(await codeOf(() => Segment.create(spec)), 'EEXIST')
  const b = await Segment.join(spec, { peerType: 'futex' })
  assert.is(b.config.nrRequests, 64)
  assert.ok(b.info().peer_types.includes('posixfd'))
  assert.ok(Segment.list().includes(a.name))
  b.close()
  b.close() // harmless
  a.destroy()
  assert.is(await codeOf(() => Segment.join(spec)), 'ENOENT')
  a.close()
  assert.is(await codeOf(() => Segment.join(spec, { peerType: 'posix' as 'futex' })), 'EINVAL')
})

test('peer_types= sizes the peer-type table; a type past it is refused (ENOSPC)', async () => {
  assert.is(Segment.parseSpec('posix:x').peerTypes, 16)
  assert.is(Segment.parseSpec('posix:x:peer_types=128').peerTypes, 128)
  assert.is(await codeOf(() => Segment.parseSpec('posix:x:peer_types=129')), 'EINVAL')
  await using a = await Segment.create(uniqueSpec('8:64:4K:0:12:peer_types=1'), { destroyOnClose: true })
  assert.is(a.config.peerTypes, 1)
  assert.is(a.info().config.peer_types, 1)
  assert.equal(a.info().peer_types, ['posixfd'])
  let msg = ''
  try {
    await Segment.join(a.config.spec, { peerType: 'futex' })
  } catch (e) {
    assert.is((e as XsegError).code, 'ENOSPC')
    msg = (e as Error).message
  }
  assert.match(msg, 'peer-type table is full')
  assert.match(msg, 'peer_types=1 ')
  const b = await Segment.join(a.config.spec) // the same type: the same entry
  b.close()

  // An observer looks at the full table: no entry, not attached, no port.
  const attached = a.info().attached
  assert.is(await codeOf(() => Segment.join(a.config.spec, { observe: true, peerType: 'futex' })), 'EINVAL')
  assert.is(await codeOf(() => Segment.create(uniqueSpec('8:64:4K'), { observe: true })), 'EINVAL')
  const o = await Segment.join(a.config.spec, { observe: true })
  try {
    assert.ok(o.observer && !a.observer)
    assert.equal(o.info().peer_types, ['posixfd'])
    assert.is(o.info().attached, attached)
    assert.equal(o.verify(), [])
    let bind = ''
    try {
      o.bindDynamicPort()
    } catch (e) {
      bind = `${(e as XsegError).code} ${(e as Error).message}`
    }
    assert.match(bind, /^EPERM .*observe: true/)
    assert.is(await codeOf(() => o.bindPort(0)), 'EPERM')
  } finally {
    o.close()
  }
})

test('a closed segment throws EBADF; its data views become empty', async () => {
  const seg = await Segment.create(uniqueSpec('8:64:4K'), { destroyOnClose: true })
  const port = seg.bindDynamicPort()
  const req = port.request({ op: 'write', size: 100 })
  const view = req.data
  assert.is(view.length, 100)
  seg.close()
  assert.ok(seg.closed && port.closed)
  assert.is(view.length, 0, 'detached, not dangling')
  assert.is(await codeOf(() => port.request({})), 'EBADF')
  assert.is(await codeOf(() => seg.bindPort(1)), 'EBADF')
  assert.is(await codeOf(() => req.data), 'EBADF')
  assert.is(await codeOf(() => req.release()), 'EBADF')
  assert.is(await codeOf(() => seg.info()), 'EBADF')
})

test('ports: static and dynamic, EBUSY, EINVAL, close', async () => {
  await using seg = await Segment.create(uniqueSpec('8:64:4K'), { destroyOnClose: true })
  const s = seg.bindPort(1)
  assert.not.ok(s.dynamic)
  assert.is(await codeOf(() => seg.bindPort(1)), 'EALREADY', 'bound by us already (EBUSY from another process)')
  assert.is(await codeOf(() => seg.bindPort(99)), 'EINVAL')
  assert.is(await codeOf(() => seg.bindPort(-1)), 'EINVAL')
  const d = seg.bindDynamicPort()
  assert.ok(d.dynamic)
  assert.is(seg.port(d.number), d)
  assert.is(s.info().state, 'bound')
  assert.is(s.info().peer_type, 'posixfd')
  s.close()
  assert.is(seg.portInfo(1).state, 'free')
  assert.is(await codeOf(() => s.acceptSync()), 'EBADF')
  assert.is(seg.bindPort(1).number, 1, 'a closed port can be bound again')
})

test('request life cycle: fields, zero-copy data, reply, double release EPERM', async () => {
  await using seg = await Segment.create(uniqueSpec('8:64:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const req = client.request({
    op: 'write', target: 'vol1', offset: 1n << 40n, size: 5, flags: ['fua', 'flush'],
    data: Buffer.from('hello'), dataLength: 4096, cookie: 77n,
  })
  assert.is(req.state, 'prepared')
  assert.is(req.op, 'write')
  assert.is(req.flags, Flag.fua | Flag.flush)
  assert.is(req.offset, 1n << 40n)
  assert.is(req.size, 5)
  assert.is(req.target, 'vol1')
  assert.is(req.data.length, 4096)
  assert.is(req.data.subarray(0, 5).toString(), 'hello')
  assert.is(req.cookie, 77n)
  const reply = within(req.submit(1), 5000, 'the reply')
  assert.is(req.state, 'submitted')
  assert.is(await codeOf(() => req.data), 'EPERM', 'no data access while in flight')

  const got = await within(server.accept().next(), 5000, 'accept')
  const sreq = got.value as Request
  assert.is(sreq.state, 'accepted')
  assert.is(sreq.index, req.index)
  assert.is(sreq.target, 'vol1')
  assert.is(sreq.offset, 1n << 40n)
  assert.is(sreq.flags, Flag.fua | Flag.flush)
  assert.is(sreq.src, client.number)
  assert.is(sreq.data.subarray(0, 5).toString(), 'hello')
  sreq.data.write('HELLO') // the client sees it: the same memory
  sreq.respond({ serviced: 5 })
  assert.is(sreq.state, 'responded')
  assert.is(await codeOf(() => sreq.respond()), 'EPERM')

  const r = await reply
  assert.is(r, req)
  assert.is(r.state, 'received')
  assert.ok(r.ok)
  assert.is(r.serviced, 5)
  assert.is(r.cookie, 77n)
  assert.is(r.data.subarray(0, 5).toString(), 'HELLO')
  assert.is(r.errorCode, undefined)
  r.release()
  assert.is(r.state, 'released')
  assert.is(await codeOf(() => r.release()), 'EPERM', 'double release')
  assert.is(await codeOf(() => r.submit(1)), 'EPERM')
})

test('every op and flag crosses; failures carry their errno code', async () => {
  await using seg = await Segment.create(uniqueSpec('8:64:4K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const ac = new AbortController()
  const seen: string[] = []
  const served = server.serve(
    (req) => {
      seen.push(`${req.op}:${req.flags}`)
      if (req.op === 'hash') throw Object.assign(new Error('no'), { code: 'ENOTSUP' })
      if (req.op === 'delete') req.fail('ENOENT')
      if (req.op === 'copy') throw new Error('no code: EIO')
    },
    { signal: ac.signal },
  )
  for (const [i, op] of OPS.entries()) {
    const r = await within(client.request({ op, flags: i % 8, target: op }).submit(1), 5000, op)
    if (op === 'hash') assert.is(r.errorCode, 'ENOTSUP')
    else if (op === 'delete') assert.is(r.errorCode, 'ENOENT')
    else if (op === 'copy') assert.is(r.errorCode, 'EIO')
    else assert.ok(r.ok, op)
    if (!r.ok) {
      assert.ok(r.failed)
      const e = await codeOf(() => r.check())
      assert.is(e, r.errorCode)
    }
    r.release()
  }
  assert.equal(seen, OPS.map((op, i) => `${op}:${i % 8}`))
  ac.abort()
  await served
  assert.is(await codeOf(() => client.request({ op: 'bogus' as 'ping' })), 'EINVAL')
  assert.is(await codeOf(() => client.request({ flags: ['bogus' as 'fua'] })), 'EINVAL')
  assert.is(await codeOf(() => client.request({ target: 'x'.repeat(257) })), 'ENAMETOOLONG')
  assert.is(await codeOf(() => client.request({ size: 1 << 20 })), 'E2BIG')
  assert.is(await codeOf(() => client.request({ offset: -1 })), 'EINVAL')
})

test('server as for-await: pattern reads at depth', async () => {
  await using seg = await Segment.create(uniqueSpec('8:128:64K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const ac = new AbortController()
  const loop = (async () => {
    let n = 0
    try {
      for await (const req of server.accept({ signal: ac.signal })) {
        pattern.fill(req.data.subarray(0, req.size), pattern.seed(req.target), req.offset)
        req.respond({ serviced: req.size })
        n++
      }
    } catch (e) {
      assert.is((e as XsegError).code, 'ABORT_ERR')
    }
    return n
  })()
  const seed = pattern.seed('t1')
  const replies = await within(
    Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        client.request({ op: 'read', target: 't1', offset: i * 65536, size: 65536 }).submit(1)),
    ),
    10000,
    'replies',
  )
  for (const [i, r] of replies.entries()) {
    assert.is(pattern.check(r.data, seed, i * 65536), 65536)
    r.release()
  }
  ac.abort()
  assert.is(await loop, 100)
})

test('forward: a request passes through a middle port and back', async () => {
  await using seg = await Segment.create(uniqueSpec('8:64:4K'), { destroyOnClose: true })
  const back = seg.bindPort(2)
  const middle = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const ac = new AbortController()
  const s2 = back.serve((req) => req.respond({ serviced: 42 }), { signal: ac.signal })
  const s1 = middle.serve(
    async (req) => {
      const r = await req.forward(2)
      assert.is(r.state, 'accepted')
      assert.is(r.serviced, 42)
      r.serviced = 43
      r.respond()
    },
    { signal: ac.signal },
  )
  const r = await within(client.request({ op: 'info', target: 'x', size: 8 }).submit(1), 5000, 'forwarded reply')
  assert.ok(r.ok)
  assert.is(r.serviced, 43)
  r.release()
  ac.abort()
  await Promise.all([s1, s2])
})

test('pass: the next hop answers the client directly, which sees what it sent', async () => {
  await using seg = await Segment.create(uniqueSpec('8:64:4K'), { destroyOnClose: true })
  const back = seg.bindPort(2)
  const middle = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const ac = new AbortController()
  const seen: string[] = []
  const s2 = back.serve(
    (req) => {
      seen.push(`${req.target}@${req.offset}`)
      req.respond({ serviced: 42 })
    },
    { signal: ac.signal },
  )
  const s1 = middle.serve(
    (req) => {
      req.pass(2, { target: 'object-1', offset: 1000n + req.offset })
      assert.is(req.state, 'passed')
      assert.throws(() => req.pass(2), (e: unknown) => (e as XsegError).code === 'EPERM')
    },
    { signal: ac.signal },
  )
  const r = await within(client.request({ op: 'info', target: 'vol', offset: 7, size: 8, flags: ['fua'] }).submit(1), 5000, 'passed reply')
  assert.ok(r.ok)
  assert.is(r.serviced, 42)
  assert.is(r.target, 'vol')
  assert.is(r.offset, 7n)
  assert.is(r.flags, Flag.fua)
  assert.equal(seen, ['object-1@1007'])
  r.release()
  // Not accepted here: refused.
  const p = client.request({ op: 'ping' })
  assert.is(await codeOf(() => p.pass(2)), 'EPERM')
  p.release()
  ac.abort()
  await Promise.all([s1, s2])
  // The middle passed one (counted as responded: it is done with it) and got no reply back.
  assert.equal([seg.portInfo(1).counters.responded, seg.portInfo(1).counters.received], [1, 0])
})

test('trySubmit + reply(); queues hold every request, so trySubmit is true in a sound segment', async () => {
  await using seg = await Segment.create(uniqueSpec('8:128:4K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const cap = seg.info().queue_cap
  assert.ok(cap >= seg.config.nrRequests)
  const sent: Request[] = []
  for (let r = client.tryRequest({ op: 'ping' }); r; r = client.tryRequest({ op: 'ping' })) {
    assert.ok(r.trySubmit(1))
    sent.push(r)
  }
  assert.is(sent.length, 128)
  assert.is(seg.portInfo(1).requests_queued, 128)
  assert.is(await codeOf(() => sent[0]!.trySubmit(1)), 'EPERM', 'already submitted')
  const ac = new AbortController()
  const done = server.serve(() => {}, { signal: ac.signal, concurrency: 7 })
  const replies = await within(Promise.all(sent.map((r) => r.reply())), 5000, 'replies')
  for (const r of replies) r.release()
  assert.is(await codeOf(() => sent[0]!.reply()), 'EPERM', 'no reply coming')
  ac.abort()
  await done
})

test('no peer on the destination: ENOENT; tryRequest null when none is free', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const client = seg.bindDynamicPort()
  const r = client.request({})
  assert.is(await codeOf(() => r.submit(3)), 'ENOENT')
  const held: Request[] = [r]
  for (;;) {
    const q = client.tryRequest({})
    if (!q) break
    held.push(q)
  }
  assert.is(held.length, 16)
  assert.is(await codeOf(() => client.request({})), 'EAGAIN')
  for (const q of held) q.release()
})

test('AbortSignal ends a wait for a reply; the late reply is released', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const ac = new AbortController()
  const p = client.request({ op: 'ping' }).submit(1, { signal: ac.signal })
  ac.abort(new Error('enough'))
  assert.is(await codeOf(() => p), 'ABORT_ERR')
  assert.is(await codeOf(() => client.request({}).submit(1, { signal: AbortSignal.abort() })), 'ABORT_ERR')
  // Serve them now: the replies come back to nobody and go back to the free list.
  const ac2 = new AbortController()
  const done = server.serve(() => {}, { signal: ac2.signal })
  const r = await within(client.request({ op: 'ping' }).submit(1), 5000, 'a later reply')
  r.release()
  ac2.abort()
  await done
  await new Promise((res) => setTimeout(res, 50))
  // Everything is back: 16 free requests again.
  const all: Request[] = []
  for (let q = client.tryRequest({}); q; q = client.tryRequest({})) all.push(q)
  assert.ok(all.length >= 15, `${all.length} requests free`)
  for (const q of all) q.release()
  // An abort on accept() throws AbortError.
  const ac3 = new AbortController()
  const it = server.accept({ signal: ac3.signal })
  const next = it.next()
  ac3.abort()
  assert.is(await codeOf(() => next), 'ABORT_ERR')
})

test('closing a port ends its servers and rejects its awaited replies', async () => {
  const seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const it = server.accept()
  const next = it.next()
  server.close()
  assert.equal(await within(next, 2000, 'the iterator ends'), { done: true, value: undefined })
  seg.bindPort(1) // somebody else, who never answers
  const p = client.request({ op: 'ping' }).submit(1)
  client.close()
  assert.is(await codeOf(() => p), 'ECANCELED')
  seg.close()
})

test.run()
