// SPDX-License-Identifier: BSD-2-Clause
//
// Description: `xseg serve` and `xseg demo` (peers/node/cli/serve.ts, demo.ts):
// config errors name the file and key; a served pipeline (blockd + the NBD
// gateway) answers nbdinfo and qemu-io; blockd killed with SIGKILL under
// load: the client's writes in flight fail with NBD errors (no hang), serve
// recovers the segment and restarts blockd, later I/O succeeds and every
// acknowledged write is intact; SIGTERM stops everything and destroys the
// segment; `xseg demo --json` runs its verified workload and failover, and
// its volume scene (snapshot and clone verified).
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Ajv2020 from 'ajv/dist/2020'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment } from '../../sys/node/ts/index'
import { NbdClient, NbdError } from '../../peers/node/nbd/client'
import { ConfigError, parseServeConfig } from '../../peers/node/cli/serve'
import { ROOT, cPeer, start, stop, uniqueSpec, within } from './helpers'

const run = promisify(execFile)
const CLI = join(ROOT, 'lib', 'node', 'cli.js')
const blockd = cPeer('blockd')
const test = suite('serve')
const ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: false })
const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'docs/cli.schema.json'), 'utf8')) as object)

function ciFail(what: string): boolean {
  if (process.env.CI === 'true') throw new Error(`${what} is missing under CI=true`)
  console.log(`  SKIP: ${what} is missing`)
  return true
}

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

test('config errors name the file and the key', () => {
  configError('[segment]\nspec = "posix:a:16:64:64K"\n[[peer]]\nprogram = "blockd"\nport = 20\n', /p\.toml: peer\[0\]\.port: 20 is not below the segment's 16 ports/)
  configError('[segment]\nspec = "posix:a:0:64:64K"\n', /p\.toml: segment\.spec: .*nr_ports/)
  configError('[segment]\nspec = "posix:a:16:64:64K"\n[[peer]]\nprogram = "no-such-peer-xyz"\nport = 1\n', /peer\[0\]\.program: 'no-such-peer-xyz' not found/)
  configError('[segment]\nspec = "posix:a:16:64:64K"\n[[peer]]\nprogram = "sh"\nport = 1\nrestrat = "never"\n', /peer\[0\]: unknown key 'restrat'/)
  configError('[segment]\nspec = "posix:a:16:64:64K"\n[[peer]]\nprogram = "sh"\nport = 1\n[[peer]]\nprogram = "ls"\nport = 1\n', /peer\[1\]\.port: port 1 is already used by peer 'sh'/)
  configError('[segment]\nspec = "posix:a:16:64:64K"\n[nbd]\nstorage-port = 1\nunix = "/tmp/x"\n', /nbd\.export: at least one/)
  configError('[segment]\nspec = "posix:a:16:64:64K"\n[nbd]\nstorage-port = 1\n[[nbd.export]]\nname = "a"\n', /nbd: needs unix/)
  configError('[segment]\nspec = "posix:a:16:64:64K"\n', /nothing to serve/)
  configError('[segment\n', /p\.toml: /)
  configError('[[peer]]\nprogram = "sh"\nport = 1\n', /a \[segment\] table is required/)
})

test('xseg serve: a missing or bad config exits 1 with the reason, nothing started', async () => {
  const r = await run(process.execPath, [CLI, 'serve', '/nonexistent/p.toml']).catch((e: { code: number, stderr: string }) => e)
  assert.is((r as { code: number }).code, 1)
  assert.match((r as { stderr: string }).stderr, /nonexistent\/p\.toml: no such file/)
})

test('serve: pipeline answers real clients; blockd killed under load is restarted; acknowledged data intact; SIGTERM cleans up', async () => {
  if (!blockd && ciFail('lib/user/bin/blockd (make user)')) return
  const dir = mkdtempSync(join(tmpdir(), 'xseg-serve-test-'))
  const spec = uniqueSpec('16:64:256K')
  const sock = join(dir, 'nbd.sock')
  const vol = join(dir, 'vol.img')
  const SIZE = 32 << 20
  writeFileSync(vol, '')
  truncateSync(vol, SIZE)
  writeFileSync(join(dir, 'p.toml'), `
[segment]
spec = "${spec}"

[[peer]]
name = "store"
program = "blockd"
port = 1
args = ["--file", "vol.img"]

[nbd]
storage-port = 1
unix = "nbd.sock"

[[nbd.export]]
name = "vol"
description = "test volume"
`.replace('"vol.img"', JSON.stringify(vol)))
  const srv = start(process.execPath, [CLI, 'serve', '--json', join(dir, 'p.toml')])
  let client: NbdClient | undefined
  try {
    await within((async () => { while (!/ready:/.test(srv.stderr())) await new Promise((r) => setTimeout(r, 50)) })(), 20000, 'serve ready')
    assert.ok(existsSync(sock))
    // A real client: size and export.
    const info = await run('nbdinfo', ['--size', `nbd+unix:///vol?socket=${sock}`]).catch((e: Error) => e)
    if (info instanceof Error) {
      if (!ciFail('nbdinfo (libnbd-bin)')) throw info
    } else {
      assert.is(info.stdout.trim(), String(SIZE))
    }
    // Writes before the kill, acknowledged with FUA.
    client = await NbdClient.connect({ unix: sock, export: 'vol' })
    const c = client
    const block = (i: number, gen: number): Buffer => Buffer.alloc(4096, (i * 7 + gen) & 0xff)
    for (let i = 0; i < 256; i++) await c.write(i * 4096, block(i, 1), { fua: true })
    // Load, then SIGKILL the storage peer: in-flight writes fail, nothing hangs.
    const pidLine = /started store \(pid (\d+)\)/.exec(srv.stderr())
    assert.ok(pidLine, 'serve logs the pid of the peer it started')
    const victim = Number(pidLine![1])
    const acked = new Set<number>()
    let failed = 0
    const load = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 256 + w; i < 2048; i += 16) {
        try {
          await c.write(i * 4096, block(i, 1), { fua: true })
          acked.add(i)
        } catch (e) {
          assert.instance(e, NbdError)
          assert.ok((e as NbdError).nbdError > 0, `an NBD error reply, not a broken connection: ${(e as Error).message}`)
          failed++
        }
        if (i === 256 + 16 * 20 + w && w === 0) process.kill(victim, 'SIGKILL')
      }
    })
    await within(Promise.all(load), 60000, 'writes during the kill')
    // serve restarted it; later I/O succeeds.
    await within((async () => { while (!/restarting store/.test(srv.stderr()) || (srv.stderr().match(/started store/g) ?? []).length < 2) await new Promise((r) => setTimeout(r, 50)) })(), 20000, 'serve restarts blockd')
    assert.match(srv.stderr(), /store \(pid \d+\) was killed by SIGKILL/)
    assert.match(srv.stderr(), /recovery: \d+ ports freed/)
    let later = false
    for (let t = 0; t < 200 && !later; t++) {
      try {
        await c.write(4096 * 4000, block(4000, 2))
        later = true
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    assert.ok(later, 'a write succeeds after the restart')
    // Every acknowledged write is intact.
    for (let i = 0; i < 2048; i++) {
      if (i >= 256 && !acked.has(i)) continue
      const d = await c.read(i * 4096, 4096)
      assert.ok(d.equals(block(i, 1)), `block ${i} (acknowledged) is intact`)
    }
    console.log(`    ${acked.size} writes acknowledged during the kill window, ${failed} failed with NBD errors`)
    // xseg bench drives the running pipeline through its export, verified.
    const uri = `nbd+unix:///vol?socket=${sock}`
    const b = await run(process.execPath, [CLI, 'bench', uri, '--op', 'randwrite', '-n', '3000', '--depth', '16',
      '--range', '8M', '--verify', '--seed', '7', '--json'])
    const bdoc = JSON.parse(b.stdout) as { requests: number, errors: number, mismatches: number, verified: number }
    assert.ok(validate(bdoc), ajv.errorsText(validate.errors))
    assert.is(bdoc.requests, 3000)
    assert.is(bdoc.errors + bdoc.mismatches, 0)
    assert.ok(bdoc.verified > 0)
    const rb = await run(process.execPath, [CLI, 'bench', uri, '--op', 'randread', '-n', '2000', '--range', '64K', '--verify', '--seed', '99'])
      .catch((e: { code: number, stdout: string }) => e)
    assert.is((rb as { code?: number }).code, 1, 'reads checked against a seed never written fail')
    assert.match((rb as { stdout: string }).stdout, /errors/)
    await c.disconnect()
    client = undefined
    // SIGTERM: clean stop, segment destroyed.
    srv.kill('SIGTERM')
    assert.is(await within(srv.exited, 20000, 'serve exit'), 0)
    // --json: log lines on stderr as JSON, one summary document on stdout.
    for (const l of srv.stderr().trim().split('\n')) assert.ok(typeof (JSON.parse(l) as { log: string }).log === 'string', l)
    assert.is(srv.lines.length, 1, `one document on stdout: ${srv.lines.join('|')}`)
    const sum = JSON.parse(srv.lines[0]!) as { command: string, restarts: Record<string, number> }
    assert.ok(validate(sum), ajv.errorsText(validate.errors))
    assert.is(sum.command, 'serve')
    assert.ok(sum.restarts.store! >= 1, 'the restart of store is counted')
    assert.is(sum.restarts.nbd, 0)
    assert.throws(() => Segment.joinSync(spec), 'the segment is gone')
  } finally {
    client?.close()
    await stop(srv)
    try { Segment.destroy(spec) } catch { /* already gone */ }
    rmSync(dir, { recursive: true, force: true })
  }
})

test('xseg nbd --json: one document with the addresses and the counters when it stops', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-nbd-json-'))
  const spec = uniqueSpec('8:64:64K')
  await run(process.execPath, [CLI, 'create', spec])
  const sock = join(dir, 'g.sock')
  const gw = start(process.execPath, [CLI, 'nbd', spec, '--storage-port', '1', '--unix', sock, '--export', 'a', '--json'])
  try {
    await within((async () => { while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20)) })(), 20000, 'the gateway socket')
    gw.kill('SIGTERM')
    assert.is(await within(gw.exited, 20000, 'nbd exit'), 0)
    assert.is(gw.lines.length, 1, gw.lines.join('|'))
    const doc = JSON.parse(gw.lines[0]!) as { addresses: { unix?: string } }
    assert.ok(validate(doc), ajv.errorsText(validate.errors))
    assert.is(doc.addresses.unix, sock)
  } finally {
    await stop(gw)
    try { Segment.destroy(spec) } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true })
  }
})

test('xseg demo --json: the verified workload and the failover pass', async () => {
  if (!blockd && ciFail('lib/user/bin/blockd (make user)')) return
  const r = await run(process.execPath, [CLI, 'demo', '--json', '--size', '32M'], { timeout: 120000 })
  const doc = JSON.parse(r.stdout) as { schemaVersion: number, ok: boolean, phases: { phase: string, errors: number, requests: number }[] }
  assert.ok(validate(doc), ajv.errorsText(validate.errors))
  assert.ok(doc.ok)
  const phases = doc.phases.map((p) => p.phase)
  for (const p of ['write', 'flush', 'verify', 'trim+zero', 'check', 'failover', 'verify 2']) assert.ok(phases.includes(p), `phase ${p}`)
  // The volume scene (demo-volumes.ts), on filed <- mapperd <- vlmcd.
  for (const p of ['vol create', 'vol write', 'snapshot', 'vol overwrite', 'clone', 'clone write', 'verify snap', 'verify clone', 'verify vol'])
    assert.ok(phases.includes(p), `phase ${p}`)
  assert.ok(doc.phases.every((p) => p.requests > 0))
})

test.run()
