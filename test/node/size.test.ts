// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the one size grammar in TypeScript (peers/node/cli/size.ts)
// gives, for every line of test/xseg/size-vectors.txt, what the C one
// (xseg/xseg_size.h, test/xseg/size.c) gives: the value, 'syntax' or
// 'range'; and a CLI option takes it (num() of cli/cmd.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseSize } from '../../peers/node/cli/size'
import { Usage, num } from '../../peers/node/cli/cmd'
import { ROOT } from './helpers'

const vectors = readFileSync(join(ROOT, 'test/xseg/size-vectors.txt'), 'utf8')
  .split('\n')
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => {
    const tab = l.indexOf('\t')
    assert.ok(tab > 0, `no tab in '${l}'`)
    return [l.slice(0, tab), l.slice(tab + 1)] as const
  })

test('every vector gives what the C parser gives', () => {
  assert.ok(vectors.length >= 40, `only ${vectors.length} vectors`)
  for (const [want, input] of vectors) {
    const got = parseSize(input)
    assert.is(String(got), want, `'${input}'`)
  }
})

test('a CLI option takes the grammar and names itself when it is wrong', () => {
  assert.is(num('64KiB', '--size', 0), 65536)
  assert.is(num('1T', '--size', 0), 2 ** 40)
  assert.is(num(undefined, '--size', 7), 7)
  assert.throws(() => num('4Q', '--size', 0), (e: Error) => e instanceof Usage && /--size: '4Q'/.test(e.message))
  assert.throws(() => num('18446744073709551615', '--size', 0), (e: Error) => e instanceof Usage && /too large/.test(e.message))
})

test.run()
