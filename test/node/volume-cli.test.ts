// SPDX-License-Identifier: BSD-2-Clause
//
// Description: `xseg volume` (peers/node/cli/cmd-volume.ts) against a volume
// peer of the contract (test/node/fakevol.ts in a child process): every
// action's --json document is valid against docs/cli.schema.json and says
// what was done, the text output names it, a refused request exits 1 with
// the peer's text (EBUSY naming the dependants), and usage errors exit 2
// naming the argument - before any segment is joined.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { Segment } from '../../sys/node/ts/index'
import { CLI, ROOT, startFixture, stop, uniqueSpec, xseg, type Child } from './helpers'

const schema = JSON.parse(readFileSync(join(ROOT, 'docs/cli.schema.json'), 'utf8')) as object
const ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: false })
const validate = ajv.compile(schema)

let seg: Segment
let peer: Child
let common: string[]

function xjson(...args: string[]): { code: number | null; doc: Record<string, any> } {
  const r = xseg('volume', ...args, ...common, '--json')
  const lines = r.out.trimEnd().split('\n')
  assert.is(lines.length, 1, `one JSON document from ${args.join(' ')}: ${r.out}${r.err}`)
  const doc = JSON.parse(lines[0]!) as Record<string, any>
  assert.ok(validate(doc), `${args.join(' ')}: ${ajv.errorsText(validate.errors)}\n${r.out}`)
  assert.is(doc.command, 'volume')
  return { code: r.code, doc }
}

if (!existsSync(CLI)) {
  console.log('  skip: lib/node/cli.js missing (test/node/run builds it)')
} else {
  test.before(async () => {
    seg = await Segment.create(uniqueSpec('8:64:64K'), { destroyOnClose: true })
    peer = startFixture('fakevol', [seg.config.spec, '3'])
    await peer.waitFor(/^ready/)
    common = ['-g', seg.config.spec, '-p', '3']
  })

  test.after(async () => {
    if (peer) await stop(peer)
    seg?.close()
  })

  test('create, snapshot, clone, resize, info, ls, rm: documents and text', () => {
    const c = xjson('create', 'vol1', '--size', '1G', '--object-size', '64K')
    assert.is(c.code, 0)
    assert.equal({ action: c.doc.action, target: c.doc.target, size: c.doc.volume.size, os: c.doc.volume.objectSize },
      { action: 'create', target: 'vol1', size: 2 ** 30, os: 65536 })
    const s = xjson('snapshot', 'vol1', 'monday')
    assert.is(s.doc.volume.kind, 'snapshot')
    assert.is(s.doc.target, 'vol1@monday')
    const k = xjson('clone', 'vol1@monday', 'vol2', '--size', '2G')
    assert.is(k.doc.volume.parent, 'vol1@monday')
    assert.is(k.doc.volume.size, 2 ** 31)
    assert.is(xjson('resize', 'vol1', '3G').doc.volume.size, 3 * 2 ** 30)
    const i = xjson('info', 'vol1')
    assert.equal(i.doc.volume.snapshots, ['monday'])
    assert.equal(i.doc.volume.readers, [])
    assert.match(xseg('volume', 'info', 'vol1', ...common).out, /\nreaders\s+-\n/)
    const l = xjson('ls')
    assert.equal(l.doc.volumes.map((e: { name: string }) => e.name), ['vol1', 'vol1@monday', 'vol2'])
    const text = xseg('volume', 'ls', ...common)
    assert.is(text.code, 0)
    assert.match(text.out, /^name\s+kind\s+size\s+parent\n/)
    assert.match(text.out, /vol2\s+volume\s+2G\s+vol1@monday/)
    assert.match(xseg('volume', 'info', 'vol2', ...common).out, /parent\s+vol1@monday/)
    const f = xjson('fsck', '--repair')
    assert.equal(f.doc.fsck, { objects: 0, named: 0, leaked: 0, leakedObjects: [], repaired: true })
  })

  test("rm refused while clones depend on it: exit 1, the peer's text", () => {
    const r = xjson('rm', 'vol1@monday')
    assert.is(r.code, 1)
    assert.is(r.doc.error.code, 'EBUSY')
    assert.match(r.doc.error.message, /vol1@monday has clones: vol2/)
    const t = xseg('volume', 'rm', 'vol1@monday', ...common)
    assert.is(t.code, 1)
    assert.match(t.err, /xseg: EBUSY: delete vol1@monday: vol1@monday has clones: vol2/)
    assert.is(xjson('info', 'nope').doc.error.code, 'ENOENT')
    for (const v of ['vol2', 'vol1@monday', 'vol1']) assert.is(xjson('rm', v).code, 0, v)
    assert.equal(xjson('ls').doc.volumes, [])
  })

  test('usage errors exit 2 naming what is wrong', () => {
    const cases: [string[], RegExp][] = [
      [['create', 'v'], /--size is required/],
      [['create', 'v', '--size', '10Q'], /--size: '10Q' is not a size/],
      [['frob'], /unknown action 'frob'/],
      [['snapshot', 'v'], /needs VOL SNAP/],
      [['ls', 'x'], /unexpected argument 'x'/],
      [['info', 'v', '--repair'], /--repair is not an option of it/],
    ]
    for (const [args, re] of cases) {
      const r = xjson(...args)
      assert.is(r.code, 2, args.join(' '))
      assert.is(r.doc.error.code, 'USAGE')
      assert.match(r.doc.error.message, re)
    }
    const noSeg = xseg('volume', 'ls', '-p', '3', '--json')
    assert.is(noSeg.code, 2)
    assert.match(noSeg.out, /needs -g SPEC/)
    const bad = xjson('create', '.x', '--size', '1M')
    assert.is(bad.code, 1)
    assert.is(bad.doc.error.code, 'EINVAL')
    assert.match(bad.doc.error.message, /'.x' is not a volume name/)
  })

  test.run()
}
