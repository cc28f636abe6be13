// SPDX-License-Identifier: BSD-2-Clause
//
// Description: TypeScript peers in separate Node processes - a TS client
// against a TS server in a child and the reverse, a port held by another
// process (EBUSY), a process that goes idle and exits by itself leaving its
// ports (the cleanup hook), and a client killed with SIGKILL mid-run whose
// port recovery frees.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment, pattern, type Request } from '../../sys/node/ts/index'
import { servePattern } from '../../peers/node/patternd'
import { codeOf, startFixture, stop, uniqueSpec, within } from './helpers'

test('TS client -> TS server in another process, with data verified', async () => {
  const spec = uniqueSpec('16:256:64K')
  const server = startFixture('server', [spec, '1', 'create'])
  try {
    await server.waitFor(/^ready/)
    await using seg = await Segment.join(spec)
    assert.is(await codeOf(() => seg.bindPort(1)), 'EBUSY', 'a live peer in another process holds it')
    const port = seg.bindDynamicPort()
    const seed = pattern.seed('vol-a')
    const N = 200
    let next = 0
    const run = async (): Promise<void> => {
      while (next < N) {
        const off = BigInt(next++) * 4096n
        const r = await port.request({ op: 'read', target: 'vol-a', offset: off, size: 4096 }).submit(1)
        assert.ok(r.ok, r.errorCode)
        assert.is(r.serviced, 4096)
        assert.is(pattern.check(r.data.subarray(0, 4096), seed, off), 4096)
        r.release()
        const w = port.request({ op: 'write', target: 'vol-a', offset: off, size: 4096 })
        pattern.fill(w.data, seed, off)
        const wr = await w.submit(1)
        assert.ok(wr.ok, wr.errorCode)
        wr.release()
      }
    }
    await within(Promise.all([run(), run(), run(), run()]), 20000, 'the replies')
    // Wrong data is refused by the server: EILSEQ comes back as a value.
    const bad = port.request({ op: 'write', target: 'vol-a', offset: 0, size: 16, data: Buffer.alloc(16, 0xaa) })
    const br = await within(bad.submit(1), 5000, 'the EILSEQ reply')
    assert.is(br.errorCode, 'EILSEQ')
    br.release()
  } finally {
    assert.is(await stop(server), 0)
  }
  assert.match(server.lines.join('\n'), /stopped 401/)
})

test('TS client in another process -> TS server here', async () => {
  await using seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
  const port = seg.bindPort(1)
  const ac = new AbortController()
  const serving = port.serve((req) => servePattern(req), { signal: ac.signal })
  const client = startFixture('client', [seg.config.spec, '1', '100', '8192', '4'])
  const line = await client.waitFor(/^(result|error)/, 20000)
  assert.is(await client.exited, 0, client.stderr())
  const res = JSON.parse(line.slice('result '.length)) as Record<string, unknown>
  assert.equal(res, { reads: 100, writes: 100, bad: 0, failed: 0, unsupported: 'ENOTSUP' })
  ac.abort()
  await serving
  assert.is(port.info().counters.accepted, 201)
})

test('an idle process exits by itself and leaves its ports (cleanup hook)', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const child = startFixture('idle', [seg.config.spec])
  const replied = await child.waitFor(/^replied/)
  const port = Number(replied.split(' ')[1])
  assert.is(await within(child.exited, 10000, 'the idle process to exit'), 0, child.stderr())
  assert.is(seg.portInfo(1).state, 'free', 'the server port was left, not left behind')
  assert.is(seg.portInfo(port).state, 'free', 'the client port too')
  assert.equal(seg.verify(), [])
})

test('process.exit() and an uncaught exception leave the ports too', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  for (const [how, code] of [['exit', 3], ['throw', 1]] as const) {
    const child = startFixture('exit', [seg.config.spec, how])
    await child.waitFor(/^bound/)
    assert.is(await within(child.exited, 10000, `the ${how} child`), code)
    assert.is(seg.portInfo(1).state, 'free', `after ${how}`)
  }
})

test('a client killed with SIGKILL mid-run: recovery frees its port and requests', async () => {
  await using seg = await Segment.create(uniqueSpec('16:64:4K'), { destroyOnClose: true })
  const server = seg.bindPort(1)
  // A server that holds on to requests for a while, so the kill lands mid-flight.
  const held: Request[] = []
  const ac = new AbortController()
  const serving = server.serve(
    (req) =>
      new Promise<void>((resolve) => {
        held.push(req)
        setTimeout(resolve, 20)
      }),
    { signal: ac.signal },
  )
  const client = startFixture('client', [seg.config.spec, '1', '100000', '4096', '8'])
  await within(
    (async () => {
      while (held.length < 20) await new Promise((r) => setTimeout(r, 5))
    })(),
    10000,
    'requests from the client',
  )
  client.kill('SIGKILL')
  assert.is(await client.exited, 'SIGKILL')
  ac.abort()
  await within(serving, 5000, 'the server to finish its requests')
  const st = seg.recover()
  assert.is(st.ports_freed, 1, JSON.stringify(st))
  assert.equal(seg.verify(), [])
  // Every request is back: all 64 can be taken again.
  const c = seg.bindDynamicPort()
  const all: Request[] = []
  for (let r = c.tryRequest({}); r; r = c.tryRequest({})) all.push(r)
  assert.is(all.length, 64)
  for (const r of all) r.release()
})

test.run()
