// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway's TypeScript data path passes the same tests
// as the C engine (nbdfast) that serves by default: nbd.test.ts,
// nbd-faults.test.ts, nbd-stuck.test.ts and nbd-slow.test.ts run again in a
// child uvu with XSEG_NBD_FAST=0, so a change that breaks the fallback path
// fails make check too.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ROOT } from './helpers'

test('nbd, nbd-faults, nbd-stuck and nbd-slow pass on the TypeScript path (XSEG_NBD_FAST=0)', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/uvu/bin.js'), '--no-color', '-r', 'tsx/cjs', 'test/node', '(nbd|nbd-faults|nbd-stuck|nbd-slow)\\.test\\.ts$'],
    { cwd: ROOT, env: { ...process.env, XSEG_NBD_FAST: '0', NO_COLOR: '1' }, encoding: 'utf8', timeout: 240000 })
  const out = `${r.stdout}${r.stderr}`
  assert.is(r.status, 0, out.slice(-3000))
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0)
  assert.ok(total >= 15, `the NBD tests ran (${total})`)
  assert.is(Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? -1), total)
})

test.run()
