// SPDX-License-Identifier: BSD-2-Clause
//
// Description: `xseg serve` with a [volumes] table (peers/node/cli/serve.ts):
// config errors name the key; the chain is started in order (the storage
// peer, mapperd with --storage, vlmcd with --mapper and --storage) and
// supervised like any peer, and [nbd] volumes = true serves volumes at
// vlmcd. The running case uses stand-ins for mapperd and vlmcd (the
// contract's in-memory peer, test/node/fakevol.ts) through mapper-program
// and composer-program: vlmcd killed with SIGKILL is restarted, and a
// volume created afterwards is served through the gateway.
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment, Volumes } from '../../sys/node/ts/index'
import { ConfigError, parseServeConfig } from '../../peers/node/cli/serve'
import { FIXTURES, ROOT, TSX, cPeer, skipCheck, start, stop, uniqueSpec, within } from './helpers'

const run = promisify(execFile)
const CLI = join(ROOT, 'lib', 'node', 'cli.js')
const patternd = cPeer('patternd')
const test = suite('serve: volumes')

function configError(text: string, re: RegExp): void {
  try {
    parseServeConfig(text, 'p.toml')
  } catch (e) {
    assert.instance(e, ConfigError)
    assert.match((e as Error).message, re)
    return
  }
  assert.unreachable(`accepted: ${text}`)
}

const SEG = '[segment]\nspec = "posix:a:16:64:64K"\n'
const STORE = '[[peer]]\nname = "store"\nprogram = "sh"\nport = 1\n'

test('[volumes] config: the chain as peers in order; errors name the key', () => {
  const cfg = parseServeConfig(SEG + STORE + '[volumes]\nstorage-port = 1\nmapper-port = 2\ncomposer-port = 3\n' +
    'mapper-program = "sh"\ncomposer-program = "sh"\ncomposer-args = ["--cache", "64M"]\n' +
    '[nbd]\nvolumes = true\nunix = "/tmp/x.sock"\n', 'p.toml')
  assert.equal(cfg.peers.map((p) => [p.name, p.port, p.args]), [
    ['store', 1, []],
    ['mapperd', 2, ['--storage', '1']],
    ['vlmcd', 3, ['--mapper', '2', '--storage', '1', '--cache', '64M']],
  ])
  assert.equal(cfg.volumes, { storagePort: 1, mapperPort: 2, composerPort: 3 })
  assert.is(cfg.nbd!.storagePort, 3, "the gateway's storage port is vlmcd's")
  assert.is(cfg.nbd!.volumes, true)
  assert.equal(cfg.nbd!.exports, [])
  const V = '[volumes]\nmapper-program = "sh"\ncomposer-program = "sh"\n'
  configError(SEG + STORE + V + 'storage-port = 4\nmapper-port = 2\ncomposer-port = 3\n', /volumes\.storage-port: no \[\[peer\]\] is on port 4/)
  configError(SEG + STORE + V + 'storage-port = 1\nmapper-port = 1\ncomposer-port = 3\n', /volumes\.mapper-port: port 1 is already used by peer 'store'/)
  configError(SEG + STORE + V + 'storage-port = 1\nmapper-port = 2\ncomposer-port = 30\n', /volumes\.composer-port: 30 is not below the segment's 16 ports/)
  configError(SEG + STORE + V + 'storage-port = 1\nmapper-port = 2\ncomposer-port = 3\ncache = 1\n', /volumes: unknown key 'cache'/)
  configError(SEG + STORE + '[volumes]\nstorage-port = 1\nmapper-port = 2\ncomposer-port = 3\nmapper-program = "no-such-mapper-xyz"\n',
    /volumes\.mapper-program: 'no-such-mapper-xyz' not found/)
  configError(SEG + STORE + '[nbd]\nvolumes = true\nunix = "/tmp/x"\n', /nbd\.volumes: needs a \[volumes\] table/)
})

test('serve runs the chain, restarts vlmcd killed with SIGKILL, and the gateway serves volumes', async () => {
  if (!patternd) {
    skipCheck('lib/user/bin/patternd missing (make user)')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'xseg-serve-vol-'))
  const spec = uniqueSpec('16:256:64K')
  const stand = join(dir, 'fakevol.sh')
  writeFileSync(stand, `#!/bin/sh\nexec "${process.execPath}" --require "${TSX}" "${join(FIXTURES, 'fakevol.ts')}" "$@"\n`)
  chmodSync(stand, 0o755)
  const sock = join(dir, 'nbd.sock')
  const toml = join(dir, 'p.toml')
  writeFileSync(toml, `[segment]\nspec = "${spec}"\n[[peer]]\nname = "store"\nprogram = "${patternd}"\nport = 1\n` +
    `[volumes]\nstorage-port = 1\nmapper-port = 2\ncomposer-port = 3\nmapper-program = "${stand}"\ncomposer-program = "${stand}"\n` +
    `[nbd]\nvolumes = true\nunix = "${sock}"\n`)
  const srv = start(process.execPath, [CLI, 'serve', toml])
  let seg: Segment | undefined
  try {
    await within((async () => {
      while (!/listening nbd\+unix:\/\/\/VOLUME/.test(srv.stderr())) {
        if (srv.proc.exitCode !== null) throw new Error(srv.stderr())
        await new Promise((r) => setTimeout(r, 50))
      }
    })(), 30000, 'serve starts the chain')
    const log = srv.stderr()
    assert.ok(log.indexOf('started store') < log.indexOf('started mapperd') && log.indexOf('started mapperd') < log.indexOf('started vlmcd'), log)
    assert.match(log, /\[mapperd\] args --storage 1/, log)
    assert.match(log, /\[vlmcd\] args --mapper 2 --storage 1/)
    const victim = Number(/started vlmcd \(pid (\d+)\)/.exec(log)![1])
    process.kill(victim, 'SIGKILL')
    await within((async () => {
      while ((srv.stderr().match(/started vlmcd/g) ?? []).length < 2) await new Promise((r) => setTimeout(r, 50))
    })(), 20000, 'serve restarts vlmcd')
    seg = Segment.joinSync(spec)
    const port = seg.bindDynamicPort()
    const vols = new Volumes(port, 3)
    // Until the restarted stand-in has bound port 3, a request may fail: try again.
    await within((async () => {
      for (;;) {
        try {
          await vols.create('vol1', { size: 4 << 20 })
          return
        } catch {
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    })(), 20000, 'create at the restarted vlmcd')
    const size = await run('nbdinfo', ['--size', `nbd+unix:///vol1?socket=${sock}`]).catch((e: Error) => e)
    if (size instanceof Error) {
      if ((size as { code?: unknown }).code === 'ENOENT') skipCheck('nbdinfo missing')
      else throw size
    } else assert.is(size.stdout.trim(), String(4 << 20))
    seg.close()
    seg = undefined
    assert.is(await stop(srv, 20000), 0, srv.stderr())
    // Stopped clients first: the gateway, vlmcd, mapperd, then the storage peer.
    const l = srv.stderr()
    const at = (n: string): number => l.indexOf(`stopped ${n}`)
    assert.ok(at('nbd') >= 0 && at('nbd') < at('vlmcd') && at('vlmcd') < at('mapperd') && at('mapperd') < at('store'), l)
  } finally {
    seg?.close()
    await stop(srv, 20000)
    try { Segment.destroy(spec) } catch { /* gone already */ }
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
