// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway with TLS (NBD_OPT_STARTTLS, x509): a CA and a
// server certificate made with openssl for the test (as nbdkit's tests do
// with certtool); with --tls=require, nbdinfo (unix and TCP), qemu-io and
// qemu-img with a tls-creds-x509 object, and nbdcopy read and write through
// TLS, byte for byte; a plaintext client is refused (NBD_REP_ERR_TLS_REQD,
// EXPORT_NAME closed), and so is a client that does not trust the CA;
// --tls=on serves both. Skips without the tools; under CI=true that is a
// failure.
import { execFile } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import * as P from '../../peers/node/nbd/protocol'
import { parseServeConfig } from '../../peers/node/cli/serve'
import { NbdGateway } from '../../peers/node/nbd/server'
import { RUN_TAG, skipCheck, start, within } from './helpers'
import { haveBlockd, nbdEnv, nbdTeardown, type NbdEnv } from './nbd-env'
import { Raw } from './nbd-raw'

const run = promisify(execFile)
const MB = 1 << 20
const CLI = join(__dirname, '../../lib/node/cli.js')
const SIZE = 16 * MB
const TOOLS = ['openssl', 'nbdinfo', 'nbdcopy', 'qemu-img', 'qemu-io', 'cmp']

/** A tool's output and exit code, never a rejection. */
async function out(cmd: string, args: string[]): Promise<{ text: string; code: number }> {
  try {
    const r = await run(cmd, args, { maxBuffer: 16 << 20 })
    return { text: r.stdout + r.stderr, code: 0 }
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number }
    return { text: `${x.stdout ?? ''}${x.stderr ?? ''}`, code: typeof x.code === 'number' ? x.code : -1 }
  }
}

/** A CA in @dir/ca (ca-cert.pem), a server certificate for localhost signed by it in @dir (server-*.pem, ca-cert.pem). */
async function makeCerts(dir: string, name: string): Promise<string> {
  const d = join(dir, name)
  mkdirSync(d)
  const o = (args: string[]): Promise<unknown> => run('openssl', args, { cwd: d })
  await o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2',
    '-subj', `/CN=xseg test CA ${name}`])
  await o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost'])
  writeFileSync(join(d, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  await o(['x509', '-req', '-in', 'server.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
    '-out', 'server-cert.pem', '-days', '2', '-extfile', 'ext.cnf'])
  return d
}

let env: NbdEnv | undefined
let certs = ''
let other = ''
const T = suite('nbd gateway: TLS')

T.before(async () => {
  if (!haveBlockd()) return
  for (const t of TOOLS) {
    if ((await out('sh', ['-c', `command -v ${t}`])).code !== 0) {
      skipCheck(`${t} missing`)
      return
    }
  }
  // The certificates go in the env's temp dir: the env's plaintext gateway is replaced by one requiring TLS.
  env = await nbdEnv({ size: SIZE, segment: '16:256:64K', exports: [{ name: 'disk' }], tcp: true })
  certs = await makeCerts(env.dir, 'pki')
  other = await makeCerts(env.dir, 'other')
  await env.gw.close()
  env.gw = new NbdGateway({ segment: env.seg, storagePort: 1, exports: [{ name: 'disk' }],
    logger: (level, line) => {
      if (level !== 'debug') env!.log.push(line)
    }, tls: { mode: 'require', certificates: certs } })
  await env.gw.listen({ unix: env.sock, tcp: '127.0.0.1:0' })
})

T.after(async () => {
  await nbdTeardown(env)
  env = undefined
})

const tlsUri = (e: NbdEnv): string => `nbds+unix:///disk?socket=${e.sock}&tls-certificates=${certs}`
const tcpUri = (e: NbdEnv): string => `nbds://localhost:${e.gw.addresses.tcp!.port}/disk?tls-certificates=${certs}`

T('nbdinfo over TLS (unix and TCP): TLS, structured replies, the size', async () => {
  if (!env) return
  for (const uri of [tlsUri(env), tcpUri(env)]) {
    const r = await out('nbdinfo', ['--json', uri])
    assert.is(r.code, 0, r.text)
    const j = JSON.parse(r.text) as { TLS: boolean; structured: boolean; exports: Record<string, unknown>[] }
    assert.is(j.TLS, true)
    assert.is(j.structured, true)
    assert.is(j.exports[0]!['export-size'], SIZE)
  }
  assert.is((await out('nbdinfo', ['--is', 'tls', tlsUri(env)])).code, 0)
})

T('data through TLS: qemu-img convert in with tls-creds, nbdcopy out, the same bytes; qemu-io patterns', async () => {
  if (!env) return
  const img = join(env.dir, 'in.img')
  const a = Buffer.alloc(4 * MB)
  randomFillSync(a, 0, 3 * MB)
  writeFileSync(img, a)
  const creds = `tls-creds-x509,id=tls0,dir=${certs},endpoint=client`
  const target = `driver=nbd,host=localhost,port=${env.gw.addresses.tcp!.port},export=disk,tls-creds=tls0`
  const c = await out('qemu-img', ['convert', '-n', '--object', creds, '-f', 'raw', '--target-image-opts', img, target])
  assert.is(c.code, 0, c.text)
  const q = await out('qemu-io', ['--object', creds, '--image-opts', target, '-c', 'write -P 0x5a 8M 1M',
    '-c', 'read -P 0x5a 8M 1M', '-c', 'aio_flush'])
  assert.is(q.code, 0, q.text)
  assert.not.match(q.text, /fail|mismatch/i, q.text)
  const copy = join(env.dir, 'out.img')
  const n = await out('nbdcopy', ['--connections=2', tlsUri(env), copy])
  assert.is(n.code, 0, n.text)
  assert.is((await out('cmp', [env.file, copy])).code, 0, 'the backing file and the copy through TLS')
  assert.is((await out('cmp', ['-n', String(4 * MB), img, copy])).code, 0, 'what qemu-img wrote through TLS')
})

T('--tls=require: a plaintext client is refused; so is one that does not trust the CA', async () => {
  if (!env) return
  const plain = await out('nbdinfo', [`nbd+unix:///disk?socket=${env.sock}`])
  assert.is.not(plain.code, 0, plain.text)
  // Over TCP (libnbd verifies the server's certificate against the host name; on a unix socket it has none).
  const untrusted = await out('nbdinfo', [`nbds://localhost:${env.gw.addresses.tcp!.port}/disk?tls-certificates=${other}`])
  assert.is.not(untrusted.code, 0, untrusted.text)
  assert.match(untrusted.text, /certificate verification/)
  const r = new Raw(env.sock)
  await r.hello()
  r.option(P.NBD_OPT_LIST)
  assert.is((await r.reply()).type, P.NBD_REP_ERR_TLS_REQD)
  const d = Buffer.alloc(10)
  d.writeUInt32BE(4, 0)
  Buffer.from('disk').copy(d, 4)
  r.option(P.NBD_OPT_GO, d)
  const go = await r.reply()
  assert.is(go.type, P.NBD_REP_ERR_TLS_REQD)
  assert.match(go.data.toString(), /requires TLS/)
  r.option(P.NBD_OPT_STARTTLS, Buffer.from('x'))
  assert.is((await r.reply()).type, P.NBD_REP_ERR_INVALID)
  r.option(P.NBD_OPT_EXPORT_NAME, Buffer.from('disk'))
  await r.closedWithin('EXPORT_NAME without TLS')
  assert.ok(env.log.some((l) => /EXPORT_NAME without TLS/.test(l)), JSON.stringify(env.log))
})

T('--tls=on serves plaintext and TLS clients; no TLS configured: STARTTLS is NBD_REP_ERR_UNSUP', async () => {
  if (!env) return
  const sock = join(env.dir, 'on.sock')
  const gw = new NbdGateway({ segment: env.seg, storagePort: 1, exports: [{ name: 'disk' }], logger: null,
    tls: { mode: 'on', certificates: certs } })
  try {
    await gw.listen({ unix: sock })
    const p = JSON.parse((await run('nbdinfo', ['--json', `nbd+unix:///disk?socket=${sock}`])).stdout) as { TLS: boolean }
    assert.is(p.TLS, false)
    const t = JSON.parse((await run('nbdinfo', ['--json', `nbds+unix:///disk?socket=${sock}&tls-certificates=${certs}`])).stdout) as { TLS: boolean }
    assert.is(t.TLS, true)
  } finally {
    await gw.close()
  }
  const sock2 = join(env.dir, 'off.sock')
  const off = new NbdGateway({ segment: env.seg, storagePort: 1, exports: [{ name: 'disk' }], logger: null })
  try {
    await off.listen({ unix: sock2 })
    const r = new Raw(sock2)
    await r.hello()
    r.option(P.NBD_OPT_STARTTLS)
    assert.is((await r.reply()).type, P.NBD_REP_ERR_UNSUP)
    r.option(P.NBD_OPT_ABORT)
    await r.closedWithin('abort')
  } finally {
    await off.close()
  }
})

T('bad TLS options: XsegErrors (EINVAL) naming what is wrong', () => {
  if (!env) return
  const mk = (tls: unknown): (() => unknown) => () => new NbdGateway({ segment: env!.seg, storagePort: 1, exports: [{ name: 'disk' }],
    tls: tls as { mode: 'on' } })
  assert.throws(mk({ mode: 'maybe' }), /tls.mode must be/)
  assert.throws(mk({ mode: 'on' }), /needs tls.certificates/)
  assert.throws(mk({ mode: 'require', certificates: join(env.dir, 'nothing') }), /cannot read .*server-cert.pem/)
})

T('serve: [nbd] tls = "require" with tls-certificates: the gateway it starts requires TLS', async () => {
  if (!env) return
  const dir = join(env.dir, 'serve')
  mkdirSync(dir)
  const sock = join(dir, 'nbd.sock')
  writeFileSync(join(dir, 'vol.img'), Buffer.alloc(0))
  truncateSync(join(dir, 'vol.img'), MB)
  writeFileSync(join(dir, 'p.toml'), `[segment]
spec = "posix:tlsserve${RUN_TAG}:16:64:64K"

[[peer]]
name = "store"
program = "blockd"
port = 1
args = ["--file", ${JSON.stringify(join(dir, 'vol.img'))}]

[nbd]
storage-port = 1
unix = "nbd.sock"
tls = "require"
tls-certificates = ${JSON.stringify(certs)}

[[nbd.export]]
name = "vol"
`)
  const srv = start(process.execPath, [CLI, 'serve', join(dir, 'p.toml')])
  try {
    await within((async () => { while (!/ready:/.test(srv.stderr())) await new Promise((r) => setTimeout(r, 50)) })(), 30000, 'serve ready').catch((e: Error) => { throw new Error(`${e.message}: ${srv.stderr()}`) })
    const tlsInfo = await out('nbdinfo', ['--json', `nbds+unix:///vol?socket=${sock}&tls-certificates=${certs}`])
    assert.is(tlsInfo.code, 0, tlsInfo.text)
    assert.is((JSON.parse(tlsInfo.text) as { TLS: boolean }).TLS, true)
    const plain = await out('nbdinfo', ['--size', `nbd+unix:///vol?socket=${sock}`])
    assert.is.not(plain.code, 0, `a plaintext client was served: ${plain.text}`)
  } finally {
    srv.kill('SIGTERM')
    await within(srv.exited, 20000, 'serve exits')
  }
  // A bad [nbd] tls table is refused before anything starts, naming the key.
  const toml = (t: string): string => '[segment]\nspec = "posix:a:16:64:64K"\n[nbd]\nstorage-port = 1\nunix = "/tmp/x.sock"\n' +
    `${t}\n[[nbd.export]]\nname = "vol"\n`
  assert.throws(() => parseServeConfig(toml('tls = "maybe"'), 'p.toml'), /p\.toml: nbd\.tls: 'maybe' is not/)
  assert.throws(() => parseServeConfig(toml('tls = "on"'), 'p.toml'), /p\.toml: nbd\.tls-certificates: tls = "on" needs/)
  assert.throws(() => parseServeConfig(toml('tls-certificates = "/x"'), 'p.toml'), /nbd\.tls-certificates: is for tls/)
  assert.is(parseServeConfig(toml('tls = "on"\ntls-certificates = "c"'), '/etc/xseg/p.toml').nbd!.tlsCertificates, '/etc/xseg/c')
})

T.run()
