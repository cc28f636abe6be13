// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the packed package as a user gets it - `npm pack`, install
// the tarball into a fresh project offline (its dependencies from the npm
// cache; npm does not run a dependency's install script, so the addon must
// load from the shipped prebuilds), then require it from CommonJS, import it
// from ESM, and run its `xseg` bin. Needs lib/node/ (tsup) and prebuilds/
// (prebuildify), which test/node/run makes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, uniqueSpec } from './helpers'

const built = existsSync(join(ROOT, 'lib/node/index.js')) && existsSync(join(ROOT, 'lib/node/index.mjs')) &&
  existsSync(join(ROOT, 'prebuilds')) && readdirSync(join(ROOT, 'prebuilds')).length > 0

const USE = (spec: string) => `
  const seg = Segment.createSync(${JSON.stringify(spec)}, { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const ac = new AbortController()
  const done = server.serve((req) => { req.data.write('pong'); req.serviced = 4 }, { signal: ac.signal })
  client.request({ op: 'read', size: 4 }).submit(1).then(async (r) => {
    process.stdout.write(['reply', r.ok, r.data.subarray(0, r.serviced).toString(), typeof pattern.fill].join(' ') + '\\n')
    r.release(); ac.abort(); await done; seg.close()
  })
`

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 })
}

if (!built) {
  console.log('  skip: lib/node or prebuilds/ missing (test/node/run builds them)')
} else {
  test('npm pack -> install offline -> require (CJS), import (ESM), bin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xseg-pack-'))
    try {
      const tgz = run('npm', ['pack', '--silent', '--pack-destination', dir], ROOT).trim().split('\n').pop()!
      assert.match(tgz, /^xseg-.*\.tgz$/)
      const listing = run('tar', ['tzf', join(dir, tgz)], dir)
      for (const f of ['package/lib/node/index.js', 'package/lib/node/index.mjs', 'package/lib/node/index.d.ts',
        'package/lib/node/cli.js', 'package/binding.gyp', 'package/xseg/xseg.h', 'package/sys/node/addon/addon.cc'])
        assert.ok(listing.includes(f), `${f} is packed`)
      assert.match(listing, /package\/prebuilds\/linux-x64\/.*\.node/)
      assert.not.match(listing, /package\/(test|bench|node_modules|build)\//)

      const proj = join(dir, 'proj')
      rmSync(proj, { recursive: true, force: true })
      execFileSync('mkdir', [proj])
      writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
      run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], proj)
      assert.not.ok(existsSync(join(proj, 'node_modules/xseg/build')), 'no source build happened')

      writeFileSync(join(proj, 'use.cjs'), `const { Segment, pattern } = require('xseg')\n${USE(uniqueSpec('8:16:4K'))}`)
      writeFileSync(join(proj, 'use.mjs'), `import { Segment, pattern } from 'xseg'\n${USE(uniqueSpec('8:16:4K'))}`)
      assert.is(run(process.execPath, ['use.cjs'], proj).trim(), 'reply true pong function')
      assert.is(run(process.execPath, ['use.mjs'], proj).trim(), 'reply true pong function')
      const cfg = JSON.parse(run(join(proj, 'node_modules/.bin/xseg'), ['config', 'posix:abc', '--json'], proj)) as
        { xseg: number; config: { name: string } }
      assert.is(cfg.xseg, 1)
      assert.is(cfg.config.name, 'abc')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test.run()
