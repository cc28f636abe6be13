// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the `xseg` command (lib/node/cli.js): config/create/status/
// verify/destroy with --json, `xseg serve` answering `xseg submit --verify`
// and C xseg-tool, and exit status 2 on a usage error.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Segment } from '../../sys/node/ts/index'
import { ROOT, cPeer, start, stop, uniqueSpec, within } from './helpers'

const CLI = join(ROOT, 'lib/node/cli.js')

function xseg(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

if (!existsSync(CLI)) {
  console.log('  skip: lib/node/cli.js missing (test/node/run builds it)')
} else {
  test('config, create, status, verify, destroy; --json is versioned', () => {
    const spec = uniqueSpec('8:32:4K')
    const cfg = JSON.parse(xseg('config', spec, '--json').out) as { xseg: number; config: { nrPorts: number } }
    assert.is(cfg.xseg, 1)
    assert.is(cfg.config.nrPorts, 8)
    assert.is(xseg('create', spec).code, 0)
    assert.is(xseg('create', spec).code, 1, 'EEXIST')
    const st = JSON.parse(xseg('status', spec, '--json').out) as { segment: { config: { nr_requests: number } }; ports: unknown[] }
    assert.is(st.segment.config.nr_requests, 32)
    assert.equal(st.ports, [])
    assert.is(xseg('verify', spec).code, 0)
    assert.ok(xseg('list').out.split('\n').includes(Segment.parseSpec(spec).name))
    assert.is(xseg('destroy', spec).code, 0)
    assert.is(xseg('status', spec).code, 1)
    assert.is(xseg('bogus').code, 2)
    assert.is(xseg('submit', spec).code, 2, 'no -p')
    assert.is(xseg('config', 'posix:x:0').code, 1)
  })

  test('xseg serve answers xseg submit --verify and C xseg-tool', async () => {
    await using seg = await Segment.create(uniqueSpec('16:128:64K'), { destroyOnClose: true })
    const spec = seg.config.spec
    const server = start(process.execPath, [CLI, 'serve', spec, '-p', '1'])
    try {
      await within((async () => {
        while (seg.portInfo(1).state !== 'bound') await new Promise((r) => setTimeout(r, 10))
      })(), 10000, 'xseg serve to bind port 1')
      const r = xseg('submit', spec, '-p', '1', '--op', 'read', '--size', '8K', '-n', '200', '--depth', '4', '--verify', '--json')
      assert.is(r.code, 0, r.err)
      const doc = JSON.parse(r.out) as { requests: number; failed: number; wrong_data: number }
      assert.equal([doc.requests, doc.failed, doc.wrong_data], [200, 0, 0])
      const w = xseg('submit', spec, '-p', '1', '--op', 'write', '--size', '4096', '-n', '50')
      assert.is(w.code, 0, w.err)
      assert.match(xseg('submit', spec, '-p', '1', '--op', 'info').out, /size 1099511627776/)
      assert.is(xseg('submit', spec, '-p', '1', '--op', 'clone').code, 1)
      const tool = cPeer('xseg-tool')
      if (tool) {
        const c = start(tool, ['submit', spec, '-p', '1', '-d', 'posixfd', '--op', 'read', '--size', '4096', '-n', '100', '--verify'])
        assert.is(await within(c.exited, 20000, 'xseg-tool'), 0, c.stderr())
      }
    } finally {
      assert.is(await stop(server), 0, server.stderr())
    }
  })
}

test.run()
