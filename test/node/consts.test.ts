// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the constants TypeScript shares with C have one source, the C
// headers: sys/node/ts/consts.gen.ts is what sys/node/gen-consts.mjs makes
// of xseg/xseg_layout.h and sys/node/addon/fields.h, and a change on one side
// only (a header's constant, a field added to fields.h, a hand edit of the
// generated module) fails, naming the constant. The drift cases run on
// copies in a temporary directory; the tree is never touched.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ROOT } from './helpers'
import { Flag, OPS, Op } from '../../sys/node/ts/index'
import { F, XS_FAILED, XS_SERVED } from '../../sys/node/ts/binding'

const GEN = join(ROOT, 'sys/node/gen-consts.mjs')
const FILES = ['xseg/xseg_layout.h', 'sys/node/addon/fields.h', 'sys/node/ts/consts.gen.ts']

function check(root: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [GEN, '--check', '--root', root], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stderr: r.stderr }
}

/** A copy of the three files with @edit applied to one of them; the check's result. */
function drift(file: string, edit: (text: string) => string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-consts-'))
  try {
    for (const f of FILES) {
      mkdirSync(join(dir, dirname(f)), { recursive: true })
      copyFileSync(join(ROOT, f), join(dir, f))
    }
    const before = readFileSync(join(dir, file), 'utf8')
    const after = edit(before)
    assert.is.not(after, before, `the edit of ${file} changed nothing`)
    writeFileSync(join(dir, file), after)
    return check(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('the committed consts.gen.ts is what the C headers say', () => {
  const r = check(ROOT)
  assert.is(r.status, 0, r.stderr)
})

test('the TypeScript API uses the generated numbers', () => {
  assert.is(Op.read, 1)
  assert.is(OPS[Op.write_zeroes], 'write_zeroes')
  assert.equal({ ...Flag }, { fua: 1, flush: 2, nosync: 4, force: 8, zerofill: 16, readdressed: 2 ** 31 })
  assert.is(XS_SERVED | XS_FAILED, 3)
  assert.is(F.Op, 0)
})

test('a header constant changed on the C side only fails, naming it', () => {
  const r = drift('xseg/xseg_layout.h', (t) => t.replace(/#define XF_FLUSH\s+\(1u << 1\)/, '#define XF_FLUSH\t(1u << 5)'))
  assert.is(r.status, 1)
  assert.match(r.stderr, /XF_FLUSH: 32 \(\.flush\) in the headers, 2 \(\.flush\) in sys\/node\/ts\/consts\.gen\.ts/)
})

test('an op added to enum xseg_op only fails, naming it', () => {
  const r = drift('xseg/xseg_layout.h', (t) => t.replace('X_WRITE_ZEROES,', 'X_WRITE_ZEROES, X_FROB,'))
  assert.is(r.status, 1)
  assert.match(r.stderr, /X_FROB: in the headers \(23 \('frob'\)\), missing from/)
})

test('a field id added to fields.h only fails, naming it', () => {
  const r = drift('sys/node/addon/fields.h', (t) => t.replace('F_PATH_LEN, F_COUNT', 'F_PATH_LEN, F_HOLDER, F_COUNT'))
  assert.is(r.status, 1)
  assert.match(r.stderr, /F_HOLDER: in the headers \(18 \(\.Holder\)\), missing from/)
})

test('a hand edit of the generated module fails, naming the constant', () => {
  const r = drift('sys/node/ts/consts.gen.ts', (t) => t.replace('export const XS_FAILED = 2', 'export const XS_FAILED = 3'))
  assert.is(r.status, 1)
  assert.match(r.stderr, /XS_FAILED: 2 in the headers, 3 in sys\/node\/ts\/consts\.gen\.ts/)
  const r2 = drift('sys/node/ts/consts.gen.ts', (t) => t.replace('  PathLen: 17, // F_PATH_LEN\n', ''))
  assert.is(r2.status, 1)
  assert.match(r2.stderr, /F_PATH_LEN: in the headers \(17 \(\.PathLen\)\), missing from/)
})

test('a header the generator cannot read is an error naming it, not a guess', () => {
  const r = drift('xseg/xseg_layout.h', (t) => t.replace(/#define XF_NOSYNC\s+\(1u << 2\)/, '#define XF_NOSYNC\tsome_function(2)'))
  assert.is(r.status, 1)
  assert.match(r.stderr, /xseg\/xseg_layout\.h: #define XF_NOSYNC some_function\(2\): not an integer expression/)
})

test.run()
