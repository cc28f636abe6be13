// SPDX-License-Identifier: BSD-2-Clause
//
// Description: TypeScript against the C peers of the user domain (built by
// `make user`), each in its own process:
//   - a TS client against C patternd -d posixfd: XSEG_NODE_COUNT (default
//     100000) requests, READ data verified against peers/user/pattern.h and
//     WRITE data checked by patternd; INFO; an unsupported op;
//   - C xseg-tool submit against a TS server: as many READs verified by the
//     C side and WRITEs checked by the TS side;
//   - a TS server SIGKILLed with the C client's requests in flight: after
//     `xseg-tool recover` the C client gets failed replies (ECONNRESET);
//   - a TS client SIGKILLed mid-run against patternd: `xseg-tool recover`
//     frees its port and requests, and patternd keeps serving;
//   - a TS client whose server dies (requests queued, or accepted) gets its
//     Promises rejected with ECONNRESET, not a hang.
// Skipped (with a line saying so) when the C peers are not built.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Segment, pattern, type Request } from '../../sys/node/ts/index'
import { servePattern } from '../../peers/node/patternd'
import { codeOf, cPeer, start, startFixture, stop, uniqueSpec, within } from './helpers'

const patternd = cPeer('patternd')
const tool = cPeer('xseg-tool')
/** Requests per bulk direction; XSEG_NODE_COUNT makes it smaller (or larger). */
const COUNT = Number(process.env.XSEG_NODE_COUNT ?? 100000)

async function until(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  await within((async () => {
    while (!cond()) await new Promise((r) => setTimeout(r, 5))
  })(), ms, what)
}

function xsegTool(...args: string[]): string {
  return execFileSync(tool!, args, { encoding: 'utf8', timeout: 30000 })
}

if (!patternd || !tool) {
  console.log('  skip: lib/user/bin/patternd or xseg-tool missing (run make user)')
} else {
  test(`TS client -> C patternd over posixfd: ${COUNT} requests, data verified both ways`, async () => {
    await using seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
    const d = start(patternd, ['-g', seg.config.spec, '-p', '1', '-d', 'posixfd'])
    try {
      await until('patternd to bind port 1', () => seg.portInfo(1).state === 'bound')
      assert.is(seg.portInfo(1).peer_type, 'posixfd')
      const port = seg.bindDynamicPort()
      const target = 'vol-c'
      const seed = pattern.seed(target)
      let next = 0
      let reads = 0
      let writes = 0
      // Each index: a read (verified here) or a write (verified by patternd), sizes 512..2048, unaligned.
      const worker = async (): Promise<void> => {
        while (next < COUNT) {
          const i = next++
          const size = 512 + (i % 4) * 512
          const off = BigInt(i) * 2048n + 3n
          if (i % 2 === 0) {
            const r = await port.request({ op: 'read', target, offset: off, size }).submit(1)
            assert.ok(r.ok, r.errorCode)
            assert.is(r.serviced, size)
            assert.is(pattern.check(r.data.subarray(0, size), seed, off), size, `read ${i}`)
            r.release()
            reads++
          } else {
            const w = port.request({ op: 'write', target, offset: off, size })
            pattern.fill(w.data.subarray(0, size), seed, off)
            const wr = await w.submit(1)
            assert.ok(wr.ok, `write ${i}: ${wr.errorCode}`)
            wr.release()
            writes++
          }
        }
      }
      await within(Promise.all(Array.from({ length: 16 }, worker)), 300000, 'the replies')
      assert.is(reads + writes, COUNT)
      assert.is(port.info().counters.received, COUNT)

      const info = await port.request({ op: 'info', target, size: 8 }).submit(1)
      assert.ok(info.ok)
      assert.is(info.data.readBigUInt64LE(0), 1n << 40n)
      info.release()
      const bad = port.request({ op: 'write', target, offset: 0, size: 64, data: Buffer.alloc(64, 1) })
      const br = await bad.submit(1)
      assert.is(br.errorCode, 'EILSEQ')
      br.release()
      const un = await port.request({ op: 'clone', target }).submit(1)
      assert.is(un.errorCode, 'ENOTSUP')
      un.release()
      assert.equal(seg.verify(), [])
    } finally {
      await stop(d)
    }
  })

  test(`C xseg-tool client -> TS server: ${COUNT} reads verified by C, ${COUNT} writes verified by TS`, async () => {
    await using seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
    const port = seg.bindPort(1)
    const ac = new AbortController()
    let served = 0
    let wrong = 0
    const serving = port.serve(
      (req: Request) => {
        served++
        try {
          servePattern(req)
        } catch (e) {
          if ((e as { code?: string }).code === 'EILSEQ') wrong++
          throw e
        }
      },
      { signal: ac.signal },
    )
    const run = (args: string[]) => {
      const c = start(tool, ['submit', seg.config.spec, '-p', '1', '-d', 'posixfd', '-w', '300000', ...args])
      return within(c.exited, 300000, 'xseg-tool').then((code) => ({ code, out: c.lines.join('\n'), err: c.stderr() }))
    }
    const reads = await run(['--op', 'read', '--size', '1024', '-n', String(COUNT), '--depth', '16', '--verify'])
    assert.is(reads.code, 0, reads.err)
    assert.match(reads.out, new RegExp(`^${COUNT} requests, 0 failed, 0 with wrong data`, 'm'))
    const writes = await run(['--op', 'write', '--size', '1024', '-n', String(COUNT), '--depth', '16', '--offset', '12345'])
    assert.is(writes.code, 0, writes.err)
    assert.match(writes.out, new RegExp(`^${COUNT} requests, 0 failed`, 'm'))
    assert.is(wrong, 0, 'the C client wrote the pattern')
    const big = await run(['--op', 'write', '--size', '65536', '-n', '50', '--depth', '4'])
    assert.is(big.code, 0, big.err)
    const info = await run(['--op', 'info'])
    assert.match(info.out, /size 1099511627776/)
    const un = await run(['--op', 'rename'])
    assert.is(un.code, 1, 'an unsupported op fails')
    assert.match(un.err, /not supported/)
    ac.abort()
    await serving
    assert.is(served, 2 * COUNT + 52)
  })

  test('a TS server SIGKILLed with C requests in flight: recover fails them back to the C client', async () => {
    await using seg = await Segment.create(uniqueSpec('16:64:4K'), { destroyOnClose: true })
    const spec = seg.config.spec
    const server = startFixture('server', [spec, '1', 'join'])
    await server.waitFor(/^ready/)
    const client = start(tool, ['submit', spec, '-p', '1', '-d', 'posixfd', '--op', 'read', '--size', '4096',
      '-n', '100000000', '--depth', '8', '-w', '60000'])
    try {
      await until('the C client to get going', () => seg.portInfo(1).counters.accepted > 500)
      server.kill('SIGKILL')
      assert.is(await server.exited, 'SIGKILL')
      // The client keeps its 8 requests in flight to the dead port, and waits.
      await until('the client to stall on the dead server', () => {
        const p = seg.portInfo(1)
        return !p.alive && p.requests_queued + p.counters.accepted - p.counters.responded === 8
      })
      assert.is(client.proc.exitCode, null, 'the client waits (until recovery or its timeout)')
      const out = xsegTool('recover', spec)
      assert.match(out, /^1 ports freed, \d+ requests failed back/)
      assert.is(await within(client.exited, 20000, 'the C client to get its failed replies'), 1)
      assert.match(client.stderr(), /failed: .*(ECONNRESET|Connection reset by peer)/, client.stderr())
      assert.match(client.stderr(), /port 1 of \S+ is not bound/, 'then nobody serves port 1')
      assert.is(seg.portInfo(1).state, 'free')
      assert.equal(seg.verify(), [])
      assert.match(xsegTool('verify', spec), /^0 problems/m)
    } finally {
      await stop(client)
      await stop(server)
    }
  })

  test('a TS client SIGKILLed mid-run: xseg-tool recover frees its port and requests, patternd serves on', async () => {
    await using seg = await Segment.create(uniqueSpec('16:64:4K'), { destroyOnClose: true })
    const spec = seg.config.spec
    const d = start(patternd, ['-g', spec, '-p', '1', '-d', 'posixfd'])
    try {
      await until('patternd to bind port 1', () => seg.portInfo(1).state === 'bound')
      const client = startFixture('client', [spec, '1', '100000000', '4096', '8'])
      await until('the TS client to get going', () => seg.portInfo(1).counters.responded > 1000)
      client.kill('SIGKILL')
      assert.is(await client.exited, 'SIGKILL')
      const dead = [...Array(16).keys()].map((i) => seg.portInfo(i)).filter((p) => p.state === 'bound' && !p.alive)
      assert.is(dead.length, 1, 'the client port is dead')
      assert.match(xsegTool('recover', spec), /^1 ports freed/)
      assert.is(seg.portInfo(dead[0]!.port).state, 'free')
      assert.equal(seg.verify(), [])
      // Every request is back, and patternd answers as before.
      const c = seg.bindDynamicPort()
      const all: Request[] = []
      for (let r = c.tryRequest({}); r; r = c.tryRequest({})) all.push(r)
      assert.is(all.length, 64)
      for (const r of all) r.release()
      const r = await within(c.request({ op: 'read', target: 't', size: 4096 }).submit(1), 5000, 'patternd')
      assert.ok(r.ok)
      assert.is(pattern.check(r.data.subarray(0, 4096), pattern.seed('t'), 0), 4096)
      r.release()
    } finally {
      assert.is(await stop(d), 0, d.stderr())
    }
  })

  test('a TS client whose server dies gets ECONNRESET rejections, not a hang', async () => {
    await using seg = await Segment.create(uniqueSpec('16:64:4K'), { destroyOnClose: true, peerCheckMs: 50 })
    const spec = seg.config.spec
    const client = seg.bindDynamicPort()

    // 1. Requests queued to a C server that is stopped, then killed.
    const d = start(patternd, ['-g', spec, '-p', '1', '-d', 'posixfd'])
    await until('patternd to bind port 1', () => seg.portInfo(1).state === 'bound')
    d.kill('SIGSTOP')
    // kill() only sends it: wait until patternd is really stopped, or a
    // spinning patternd takes the requests first.
    await until('patternd to stop', () => /^\d+ \(.*\) T /.test(readFileSync(`/proc/${d.proc.pid}/stat`, 'utf8')))
    const queued = Array.from({ length: 8 }, (_, i) =>
      codeOf(() => client.request({ op: 'read', target: 'x', offset: i * 4096, size: 4096 }).submit(1)))
    await until('the requests to be queued', () => seg.portInfo(1).requests_queued === 8)
    d.kill('SIGKILL')
    assert.is(await d.exited, 'SIGKILL')
    assert.equal(await within(Promise.all(queued), 10000, 'the rejections'), Array(8).fill('ECONNRESET'))

    // 2. Requests accepted by a TS server (held, never answered), which is killed.
    const s = startFixture('server', [spec, '2', 'join', 'hold'])
    await s.waitFor(/^ready/)
    const held = Array.from({ length: 5 }, () => codeOf(() => client.request({ op: 'ping' }).submit(2)))
    await s.waitFor(/^held 5/)
    s.kill('SIGKILL')
    assert.equal(await within(Promise.all(held), 10000, 'the rejections'), Array(5).fill('ECONNRESET'))

    // The requests are back (released by the rejections), nothing is left over.
    const late = client.request({ op: 'ping' })
    assert.is(await codeOf(() => late.submit(1)), 'ENOENT', 'nobody serves port 1 now')
    late.release()
    assert.equal(seg.verify(), [])
    const all: Request[] = []
    for (let r = client.tryRequest({}); r; r = client.tryRequest({})) all.push(r)
    assert.is(all.length, 64)
    for (const r of all) r.release()
  })
}

test.run()
