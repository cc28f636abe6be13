// SPDX-License-Identifier: BSD-2-Clause
//
// Description: growable segments from Node: Segment.grow adds requests to a
// segment created with max_requests= (config.maxRequests, info() live
// counts), requests of the grown range are used by a port at once, a shrink
// below held requests reports done false with the count and finishes once
// they are put, ERANGE above the reserve; `xseg config SPEC --grow
// requests=N` (--json valid against docs/cli.schema.json), its error above
// max_requests naming it, and `xseg status` and `xseg top` showing live of reserved.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { Segment } from '../../sys/node/ts/index'
import { CLI, ROOT, uniqueSpec, xseg } from './helpers'

const schema = JSON.parse(readFileSync(join(ROOT, 'docs/cli.schema.json'), 'utf8')) as object
const ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: false })
const validate = ajv.compile(schema)

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn()
  } catch (e) {
    return (e as { code?: string }).code
  }
  return undefined
}

test('Segment.grow: grow, use, shrink past held requests, grow again', async () => {
  await using seg = await Segment.create(uniqueSpec('4:8:4K:0:12:max_requests=128'), { destroyOnClose: true })
  assert.is(seg.config.nrRequests, 8)
  assert.is(seg.config.maxRequests, 128)
  assert.match(seg.config.spec, /:max_requests=128/)
  assert.is(seg.info().live_requests, 8)
  assert.is(await codeOf(() => seg.grow(129)), 'ERANGE')
  assert.is(await codeOf(() => seg.grow(0)), 'EINVAL')

  const g = seg.grow(64)
  assert.equal([g.done, g.live_requests, g.live_chunks, g.added], [true, 64, 64, 112])
  assert.is(seg.info().live_requests, 64)
  assert.equal(seg.verify(), [])

  // Every one of the 64 is usable by a port at once.
  const port = seg.bindPort(1)
  const held = []
  for (let i = 0; i < 64; i++) held.push(port.request({ op: 'write', size: 4096 }))
  assert.is(await codeOf(() => port.request({ op: 'write', size: 4096 })), 'EAGAIN')

  // A shrink below held requests waits for them (done false, the count), nothing lost.
  const s = seg.grow(16)
  assert.equal([s.done, s.target, s.held, s.live_requests], [false, 16, 48, 64])
  assert.is(seg.info().grow_target, 16)
  for (const r of held) r.release()
  const d = seg.grow(16)
  assert.equal([d.done, d.live_requests, d.live_chunks], [true, 16, 16])
  assert.ok(d.bytes_released >= 48 * 4096, `released ${d.bytes_released}`)
  assert.equal(seg.verify(), [])
  assert.is(seg.grow(100).live_requests, 100)
  assert.equal(seg.verify(), [])
})

if (!existsSync(CLI)) {
  console.log('  skip: lib/node/cli.js missing (test/node/run builds it)')
} else {
  test('xseg config --grow and status', () => {
    const spec = uniqueSpec('4:8:4K:0:12:max_requests=64')
    assert.is(xseg('create', spec).code, 0)
    try {
      const r = xseg('config', spec, '--grow', 'requests=40', '--json')
      assert.is(r.code, 0, r.err)
      const doc = JSON.parse(r.out) as Record<string, any>
      assert.ok(validate(doc), ajv.errorsText(validate.errors))
      assert.equal([doc.grow.done, doc.grow.liveRequests, doc.grow.maxRequests], [true, 40, 64])
      assert.match(xseg('config', spec, '--grow', '20').out, /20 requests live \(20 chunks\) of 64 reserved/)

      const big = xseg('config', spec, '--grow', 'requests=65')
      assert.is(big.code, 1)
      assert.match(big.err, /above the segment's max_requests \(64\)/)
      assert.is(xseg('config', spec, '--grow', 'lots').code, 2)

      const st = xseg('status', spec, '--json')
      const sd = JSON.parse(st.out) as Record<string, any>
      assert.ok(validate(sd), ajv.errorsText(validate.errors))
      assert.equal(sd.segment.requests, { live: 20, liveChunks: 20, max: 64, target: 20 })
      assert.match(xseg('status', spec).out, /20 live of 64/)
      assert.match(xseg('top', spec, '--once', '-i', '0.1').out, /requests 20\/64/)
    } finally {
      xseg('destroy', spec)
    }
  })
}

test.run()
