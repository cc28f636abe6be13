// SPDX-License-Identifier: BSD-2-Clause
//
// Description: `xseg nbd` usage errors and the gateway's unix socket path.
// Every numeric option refuses 0 (where it makes no sense), negative
// numbers, non-numbers and absurdly large values, and an empty export name,
// with exit status 2 and, with --json, one JSON error document (code USAGE).
// listen({ unix }) replaces only a stale socket: a regular file, a
// directory, a symbolic link and a socket somebody listens on are refused
// with a clear error and left alone; close() removes only the socket the
// gateway created (the same inode).
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdGateway } from '../../peers/node/nbd/server'
import { ConfigError, parseServeConfig } from '../../peers/node/cli/serve'
import { Segment, XsegError } from '../../sys/node/ts/index'
import { ROOT, TSX, uniqueSpec } from './helpers'

const CLI = existsSync(join(ROOT, 'lib', 'node', 'cli.js')) ? [join(ROOT, 'lib', 'node', 'cli.js')]
  : ['--require', TSX, join(ROOT, 'peers', 'node', 'cli', 'cli.ts')]

const U = suite('xseg nbd: usage errors')
let seg: Segment | undefined
let dir = ''

U.before(async () => {
  seg = await Segment.create(uniqueSpec('16:128:64K'), { destroyOnClose: true })
  dir = mkdtempSync(join(tmpdir(), 'xseg-nbd-cli-'))
})

U.after(() => {
  seg?.close()
  seg = undefined
  rmSync(dir, { recursive: true, force: true })
})

function nbd(args: string[], json = false): { status: number | null; stdout: string; stderr: string } {
  const sock = join(dir, 'never.sock')
  const r = spawnSync(process.execPath, [...CLI, 'nbd', seg!.config.spec, ...(json ? ['--json'] : []), '--unix', sock, ...args],
    { encoding: 'utf8', timeout: 30000 })
  // A usage error never gets as far as listening.
  assert.not.ok(existsSync(sock), `${args.join(' ')}: no socket`)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const base = ['--storage-port', '1', '--export', 'disk']
const bad: [string, string[]][] = [
  ['--max-inflight 0', ['--max-inflight', '0']],
  ['--max-inflight negative', ['--max-inflight=-1']],
  ['--max-inflight not a number', ['--max-inflight', 'many']],
  ['--max-inflight huge', ['--max-inflight', '99999999999999999999']],
  ['--storage-port negative', ['--storage-port=-1']],
  ['--storage-port past the ports', ['--storage-port', '16']],
  ['--storage-port huge', ['--storage-port', '4G']],
  ['--bind-port past the ports', ['--bind-port', '99999']],
  ['--port and --storage-port both', ['--port', '1']],
  ['--bind-port not a number', ['--bind-port', '1.5']],
  ['--max-request 0', ['--max-request', '0']],
  ['--max-request not a multiple of 4096', ['--max-request', '5000']],
  ['--max-request huge', ['--max-request', '8G']],
  ['--max-request more than the segment holds', ['--max-request', '1G']],
  ['--spin-us negative', ['--spin-us=-5']],
  ['--spin-us huge', ['--spin-us', '1G']],
  ['--request-timeout negative', ['--request-timeout=-1']],
  ['--request-timeout not a number', ['--request-timeout', 'soon']],
  ['--request-timeout huge', ['--request-timeout', '1e9']],
  ['--request-timeout too long', ['--request-timeout', '864000']],
  ['--request-timeout below a millisecond', ['--request-timeout', '0.0001']],
  ['--max-reply-bytes 0', ['--max-reply-bytes', '0']],
  ['--max-reply-total tiny', ['--max-reply-total', '10']],
  ['--max-conn-requests 0', ['--max-conn-requests', '0']],
  ['--max-conn-requests below one command', ['--max-conn-requests', '1']],
  ['--export empty', ['--export', '']],
  ['--export empty name', ['--export', '=disk']],
  ['--export empty name with attributes', ['--export', ',readonly']],
  ['--tls not a mode', ['--tls', 'maybe']],
  ['--tls=on without certificates', ['--tls=on']],
  ['--tls-certificates without --tls', ['--tls-certificates', '/tmp']],
  ['--tls=require, no certificates in the directory', ['--tls=require', '--tls-certificates', '/nonexistent/xseg-certs']],
]

U('bad numbers and empty export names are usage errors (exit 2, a JSON error document)', () => {
  const failed: string[] = []
  for (const [what, args] of bad) {
    // The later option wins for single ones: the bad value comes after the good base.
    const r = nbd([...base, ...args], true)
    if (r.status !== 2) {
      failed.push(`${what}: exit ${r.status} (${r.stderr.trim().split('\n')[0]})`)
      continue
    }
    let doc: { command?: string; error?: { code?: string; message?: string } } = {}
    try {
      doc = JSON.parse(r.stdout) as typeof doc
    } catch {
      failed.push(`${what}: stdout is not one JSON document: ${r.stdout}`)
      continue
    }
    if (doc.command !== 'nbd' || doc.error?.code !== 'USAGE' || !doc.error.message) failed.push(`${what}: ${r.stdout}`)
  }
  assert.equal(failed, [])
  // Without --json: the message names the option on stderr.
  const r = nbd([...base, '--max-inflight', '0'])
  assert.is(r.status, 2)
  assert.match(r.stderr, /--max-inflight: '0' is not from 1 to/)
  const e = nbd(['--storage-port', '1', '--export', ''])
  assert.is(e.status, 2)
  assert.match(e.stderr, /an empty NAME/)
})

U('good values are accepted by the gateway', () => {
  const gw = new NbdGateway({
    segment: seg!, storagePort: 1, exports: [{ name: 'disk', size: 1 << 20 }], logger: null,
    maxInflight: 1, requestTimeoutMs: 0, maxReplyBytes: 4096, maxReplyTotal: 4096, spinUs: 0,
  })
  assert.is(gw.requestTimeoutMs, 0)
  void gw.close()
  const d = new NbdGateway({ segment: seg!, storagePort: 1, exports: [{ name: 'disk', size: 1 << 20 }], logger: null })
  assert.is(d.requestTimeoutMs, 30000)
  assert.is(d.maxInflight, 128)
  void d.close()
  for (const o of [{ maxInflight: 0 }, { maxInflight: 1.5 }, { requestTimeoutMs: -1 }, { maxReplyBytes: 0 }, { maxConnRequests: 0 }, { spinUs: -1 }]) {
    assert.throws(() => new NbdGateway({ segment: seg!, storagePort: 1, exports: [{ name: 'disk' }], logger: null, ...o }),
      (err: Error) => err instanceof XsegError && err.code === 'EINVAL', JSON.stringify(o))
  }
})

U('serve: an empty [[nbd.export]] name is a config error (xseg nbd refuses it)', () => {
  assert.throws(() => parseServeConfig('[segment]\nspec = "posix:a:16:64:64K"\n[nbd]\nstorage-port = 1\nunix = "/tmp/x.sock"\n' +
    '[[nbd.export]]\nname = ""\n', 'p.toml'), (e: Error) => e instanceof ConfigError && /nbd\.export\[0\]\.name: must not be empty/.test(e.message))
})

U('serve: [nbd] request-timeout in seconds, checked', () => {
  const toml = (v: string): string => '[segment]\nspec = "posix:a:16:64:64K"\n[nbd]\nstorage-port = 1\nunix = "/tmp/x.sock"\n' +
    `request-timeout = ${v}\n[[nbd.export]]\nname = "vol"\n`
  assert.is(parseServeConfig(toml('2.5'), 'p.toml').nbd!.requestTimeout, 2.5)
  assert.is(parseServeConfig(toml('0'), 'p.toml').nbd!.requestTimeout, 0)
  for (const v of ['-1', '"soon"', '100000', '0.0001']) {
    assert.throws(() => parseServeConfig(toml(v), 'p.toml'),
      (e: Error) => e instanceof ConfigError && /p\.toml: nbd\.request-timeout: must be a number of seconds/.test(e.message), v)
  }
})

U.run()

const L = suite('nbd gateway: the unix socket path')
let lseg: Segment | undefined
let ldir = ''

L.before(async () => {
  lseg = await Segment.create(uniqueSpec('16:128:64K'), { destroyOnClose: true })
  ldir = mkdtempSync(join(tmpdir(), 'xseg-nbd-sock-'))
})

L.after(() => {
  lseg?.close()
  lseg = undefined
  rmSync(ldir, { recursive: true, force: true })
})

function gateway(): NbdGateway {
  return new NbdGateway({ segment: lseg!, storagePort: 1, exports: [{ name: 'disk', size: 1 << 20 }], logger: null })
}

async function refused(path: string, re: RegExp): Promise<void> {
  const gw = gateway()
  try {
    const err = await gw.listen({ unix: path }).then(() => null, (e: Error) => e)
    assert.ok(err, `listen on ${path} must fail`)
    assert.match(err!.message, re)
    assert.match(err!.message, new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  } finally {
    await gw.close()
  }
}

L('a regular file, a directory, a symlink and a live socket are refused and left alone', async () => {
  const file = join(ldir, 'file.sock')
  writeFileSync(file, 'precious')
  await refused(file, /is a regular file, not a stale socket/)
  assert.is(readFileSync(file, 'utf8'), 'precious')

  const d = join(ldir, 'dir.sock')
  mkdirSync(d)
  await refused(d, /is a directory/)
  assert.ok(lstatSync(d).isDirectory())

  const link = join(ldir, 'link.sock')
  symlinkSync(file, link)
  await refused(link, /is a symbolic link/)
  assert.is(readlinkSync(link), file)
  assert.is(readFileSync(file, 'utf8'), 'precious')

  // A socket somebody listens on is not stale.
  const live = join(ldir, 'live.sock')
  const srv = net.createServer((s) => {
    s.on('error', () => undefined) // the gateway's probe goes away at once
    s.end('hello')
  })
  await new Promise<void>((r) => srv.listen(live, () => r()))
  try {
    await refused(live, /a server listens on this socket/)
    const got = await new Promise<string>((r) => {
      const c = net.connect(live)
      let b = ''
      c.on('data', (x) => { b += String(x) })
      c.on('close', () => r(b))
    })
    assert.is(got, 'hello')
  } finally {
    await new Promise<void>((r) => srv.close(() => r()))
  }
})

L('a stale socket is replaced; close removes only the socket the gateway created', async () => {
  // A stale socket: its server closed while the file had another name (so nothing unlinked it).
  const path = join(ldir, 'stale.sock')
  const moved = join(ldir, 'moved.sock')
  const srv = net.createServer()
  await new Promise<void>((r) => srv.listen(moved, () => r()))
  renameSync(moved, path)
  await new Promise<void>((r) => srv.close(() => r()))
  assert.ok(lstatSync(path).isSocket(), 'a stale socket file is there')

  const gw = gateway()
  await gw.listen({ unix: path })
  assert.ok(lstatSync(path).isSocket())
  await gw.close()
  assert.not.ok(existsSync(path), 'its own socket is removed at close')

  // Replaced by somebody else while the gateway runs: left alone at close.
  const gw2 = gateway()
  await gw2.listen({ unix: path })
  unlinkSync(path)
  writeFileSync(path, 'not yours')
  await gw2.close()
  assert.is(readFileSync(path, 'utf8'), 'not yours')
  // The private directories the sockets were made in are gone too.
  assert.equal(readdirSync(ldir).filter((n) => n.startsWith('.nbd')), [])
})

L.run()
