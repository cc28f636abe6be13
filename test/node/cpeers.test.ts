// SPDX-License-Identifier: BSD-2-Clause
//
// Description: TypeScript against the C peers of the user domain (built by
// `make user`): a TS client against patternd (READ data verified against
// peers/user/pattern.h, WRITE verified by patternd, INFO, an unsupported
// op), and xseg-tool's C client against a TS server of the same pattern.
// Skipped (with a line saying so) when the C peers are not built.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment, pattern, type Request } from '../../sys/node/ts/index'
import { servePattern } from '../../peers/node/patternd'
import { cPeer, start, stop, uniqueSpec, within } from './helpers'

const patternd = cPeer('patternd')
const tool = cPeer('xseg-tool')

async function boundBy(seg: Segment, port: number, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (seg.portInfo(port).state !== 'bound') {
    if (Date.now() > until) throw new Error(`nobody bound port ${port}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

if (!patternd || !tool) {
  console.log('  skip: lib/user/bin/patternd or xseg-tool missing (run make user)')
} else {
  test('TS client -> C patternd over posixfd: reads verified, writes checked', async () => {
    await using seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
    const d = start(patternd, ['-g', seg.config.spec, '-p', '1', '-d', 'posixfd'])
    try {
      await boundBy(seg, 1)
      assert.is(seg.portInfo(1).peer_type, 'posixfd')
      const port = seg.bindDynamicPort()
      const target = 'vol-c'
      const seed = pattern.seed(target)
      const one = async (i: number, size: number): Promise<void> => {
        const off = BigInt(i) * BigInt(size) + 3n // unaligned on purpose
        const r = await port.request({ op: 'read', target, offset: off, size }).submit(1)
        assert.ok(r.ok, r.errorCode)
        assert.is(r.serviced, size)
        assert.is(pattern.check(r.data.subarray(0, size), seed, off), size, `read ${i}`)
        r.release()
        const w = port.request({ op: 'write', target, offset: off, size })
        pattern.fill(w.data.subarray(0, size), seed, off)
        const wr = await w.submit(1)
        assert.ok(wr.ok, `write ${i}: ${wr.errorCode}`)
        wr.release()
      }
      await within(Promise.all(Array.from({ length: 64 }, (_, i) => one(i, 512 + i * 1000))), 20000, 'replies')

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

      // Round-trip time, TS -> C -> TS, one request at a time (reported, not asserted).
      const N = 2000
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < N; i++) (await port.request({ op: 'ping' }).submit(1)).release()
      const us = Number(process.hrtime.bigint() - t0) / 1000 / N
      console.log(`  TS -> C patternd ping round trip over posixfd: ${us.toFixed(1)} us (mean of ${N})`)
    } finally {
      await stop(d)
    }
  })

  test('C xseg-tool client -> TS server: pattern reads verified by the C side', async () => {
    await using seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
    const port = seg.bindPort(1)
    const ac = new AbortController()
    let served = 0
    const serving = port.serve(
      (req: Request) => {
        served++
        servePattern(req)
      },
      { signal: ac.signal },
    )
    const run = (args: string[]) => {
      const c = start(tool, ['submit', seg.config.spec, '-p', '1', '-d', 'posixfd', ...args])
      return within(c.exited, 20000, 'xseg-tool').then((code) => ({ code, out: c.lines.join('\n'), err: c.stderr() }))
    }
    const reads = await run(['--op', 'read', '--size', '4096', '-n', '500', '--depth', '8', '--verify'])
    assert.is(reads.code, 0, reads.err)
    assert.match(reads.out, /500 requests, 0 failed, 0 with wrong data/)
    const writes = await run(['--op', 'write', '--size', '65536', '-n', '50', '--depth', '4', '--offset', '12345'])
    assert.is(writes.code, 0, writes.err)
    assert.match(writes.out, /50 requests, 0 failed/)
    const info = await run(['--op', 'info'])
    assert.match(info.out, /size 1099511627776/)
    const un = await run(['--op', 'rename'])
    assert.is(un.code, 1, 'an unsupported op fails')
    assert.match(un.err, /not supported/)
    ac.abort()
    await serving
    assert.is(served, 552)
  })
}

test.run()
