// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the packed package as a user gets it - `npm pack`, install
// the tarball into a fresh project with `npm install` (its dependencies
// resolved from the registry's metadata as a user's install resolves them;
// --prefer-offline takes what the npm cache has and fetches the rest, so a
// fresh machine whose cache holds only the lockfile install's tarballs
// works too), check that no source build happened (the addon must load
// from the shipped prebuilds), then run the quick start of docs/node.md
// as written (ESM) and from CommonJS, a servePool() with a handler module,
// and the `xseg` bin. Needs lib/node/ (tsup) and prebuilds/
// (prebuildify), which test/node/run makes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, uniqueSpec } from './helpers'

const built = existsSync(join(ROOT, 'lib/node/index.js')) && existsSync(join(ROOT, 'lib/node/index.mjs')) &&
  existsSync(join(ROOT, 'prebuilds')) && readdirSync(join(ROOT, 'prebuilds')).length > 0

/**
 * The quick start of docs/node.md, exactly as written there (the ```js block
 * after `<!-- quickstart -->`), as ESM; and as CommonJS, the way that page
 * says to: require() for the import, the rest inside an async function.
 */
function quickstart(): { esm: string; cjs: string } {
  const md = readFileSync(join(ROOT, 'docs/node.md'), 'utf8')
  const m = /<!-- quickstart -->\s*```js\n([\s\S]*?)```/.exec(md)
  if (!m) throw new Error('docs/node.md has no <!-- quickstart --> js block')
  const esm = m[1]!
  const imp = /^import \{([^}]+)\} from 'xseg'\n/m
  assert.match(esm, imp, 'the example imports from xseg')
  const cjs = esm.replace(imp, "const {$1} = require('xseg')\n;(async () => {\n") + '})()\n'
  return { esm, cjs }
}

/** A handler module for servePool, as a user would write one (CommonJS). */
const HANDLER = `exports.handler = (req) => { req.data.write('pool'); req.serviced = 4 }\n`
const POOL = (spec: string) => `
const { Segment, servePool } = require('xseg')
;(async () => {
  const seg = Segment.createSync(${JSON.stringify(spec)}, { destroyOnClose: true })
  const pool = await servePool({ spec: seg.config.spec, port: 1, workers: 2, module: __dirname + '/handler.cjs' })
  const c = seg.bindDynamicPort()
  const out = []
  for (const p of pool.ports) {
    const r = await c.request({ op: 'read', size: 4 }).submit(p)
    out.push(r.data.subarray(0, r.serviced).toString())
    r.release()
  }
  await pool.close()
  seg.close()
  console.log(out.join(' '))
})()
`

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 })
}

if (!built) {
  console.log('  skip: lib/node or prebuilds/ missing (test/node/run builds them)')
} else {
  test('npm pack -> npm install -> require (CJS), import (ESM), bin', () => {
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
      run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], proj)
      assert.not.ok(existsSync(join(proj, 'node_modules/xseg/build')), 'no source build happened')

      const q = quickstart()
      writeFileSync(join(proj, 'quickstart.mjs'), q.esm)
      writeFileSync(join(proj, 'quickstart.cjs'), q.cjs)
      assert.is(run(process.execPath, ['quickstart.mjs'], proj).trim(), 'true 4096 true', 'the docs example, ESM')
      assert.is(run(process.execPath, ['quickstart.cjs'], proj).trim(), 'true 4096 true', 'the docs example, CommonJS')
      writeFileSync(join(proj, 'handler.cjs'), HANDLER)
      writeFileSync(join(proj, 'pool.cjs'), POOL(uniqueSpec('8:16:4K')))
      assert.is(run(process.execPath, ['pool.cjs'], proj).trim(), 'pool pool', 'servePool from the installed package')
      const cfg = JSON.parse(run(join(proj, 'node_modules/.bin/xseg'), ['config', 'posix:abc', '--json'], proj)) as
        { schemaVersion: number; config: { name: string } }
      assert.is(cfg.schemaVersion, 1)
      assert.is(cfg.config.name, 'abc')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test.run()
