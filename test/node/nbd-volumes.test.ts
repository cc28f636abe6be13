// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway's volume mode (peers/node/nbd/volumes.ts) with
// real clients (nbdinfo, qemu-img, qemu-io, nbdcopy) in front and a volume
// peer of the contract behind (test/node/fakevol.ts in a child process, on
// port 3): the export name is the volume, VOL@SNAP is read-only, the list
// names every volume, an unknown one is refused with the peer's text; a
// volume is opened (OPEN with the gateway's owner tag) while any of the
// gateway's connections uses it and closed after the last one, and a second
// gateway is refused naming the holder until then; snapshot and clone
// contents equal what was written before and after (qemu-img compare).
// Skips (loudly) without the tools; under CI=true that is a failure.
import { execFile } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment, Volumes } from '../../sys/node/ts/index'
import { NbdGateway } from '../../peers/node/nbd/server'
import { NbdClient } from '../../peers/node/nbd/client'
import { ROOT, TSX, skipCheck, start, startFixture, stop, uniqueSpec, within, type Child } from './helpers'

const run = promisify(execFile)
const TOOLS = ['nbdinfo', 'qemu-io', 'qemu-img', 'nbdcopy']
const MB = 1 << 20

async function have(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`])
    return true
  } catch {
    return false
  }
}

/** A tool's output (stdout and stderr) and exit code, never a rejection. */
async function out(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ text: string; code: number }> {
  try {
    const r = await run(cmd, args, env ? { env: { ...process.env, ...env } } : {})
    return { text: r.stdout + r.stderr, code: 0 }
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number }
    return { text: `${x.stdout ?? ''}${x.stderr ?? ''}`, code: typeof x.code === 'number' ? x.code : -1 }
  }
}

interface Env {
  dir: string
  seg: Segment
  peer: Child
  vols: Volumes
  gw: NbdGateway
  log: string[]
  sock: string
  uri: (v: string) => string
}

let env: Env | undefined

const V = suite('nbd gateway: volume mode')

V.before(async () => {
  const missing: string[] = []
  for (const t of TOOLS) if (!(await have(t))) missing.push(t)
  if (missing.length) {
    skipCheck(`${missing.join(', ')} missing`)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'xseg-nbdvol-'))
  const seg = await Segment.create(uniqueSpec('16:256:64K'), { destroyOnClose: true })
  const peer = startFixture('fakevol', [seg.config.spec, '3'])
  await peer.waitFor(/^ready/)
  const log: string[] = []
  const gw = new NbdGateway({ segment: seg, storagePort: 3, exports: [], volumes: { owner: 'gw-one' }, logger: (l, line) => {
    if (l !== 'debug') log.push(line)
  } })
  const sock = join(dir, 'nbd.sock')
  await gw.listen({ unix: sock })
  const vols = new Volumes(seg.bindDynamicPort(), 3)
  env = { dir, seg, peer, vols, gw, log, sock, uri: (v) => `nbd+unix:///${v}?socket=${sock}` }
})

V.after(async () => {
  if (!env) return
  await env.gw.close(1000).catch(() => undefined)
  await stop(env.peer)
  env.seg.close()
  rmSync(env.dir, { recursive: true, force: true })
  env = undefined
})

V('the export is the volume: sizes, read-only snapshots, the list, unknown names refused with the text', async () => {
  if (!env) return
  await env.vols.create('vol1', { size: 8 * MB, objectSize: 64 << 10 })
  await env.vols.snapshot('vol1', 'empty')
  const j = JSON.parse((await run('nbdinfo', ['--json', env.uri('vol1')])).stdout) as { exports: Record<string, unknown>[] }
  assert.is(j.exports[0]!['export-size'], 8 * MB)
  assert.is(j.exports[0]!['is_read_only'], false)
  const s = JSON.parse((await run('nbdinfo', ['--json', env.uri('vol1@empty')])).stdout) as typeof j
  assert.is(s.exports[0]!['is_read_only'], true)
  const list = (await run('nbdinfo', ['--list', '--json', env.uri('')])).stdout
  const names = (JSON.parse(list) as typeof j).exports.map((e) => e['export-name'])
  assert.equal(names, ['vol1', 'vol1@empty'])
  // libnbd shows the server's text in its debug lines.
  const unknown = await out('nbdinfo', [env.uri('nope')], { LIBNBD_DEBUG: '1' })
  assert.is.not(unknown.code, 0)
  assert.match(unknown.text, /nope does not exist/, unknown.text)
  const bad = await out('nbdinfo', [env.uri('a%2Fb')], { LIBNBD_DEBUG: '1' })
  assert.match(bad.text, /'a\/b' is not a volume name/, bad.text)
  // nbdinfo only asked (NBD_OPT_INFO / GO and gone): nothing is left open.
  await within(env.gw.volumes!.settle(), 5000, 'settle')
  assert.is((await env.vols.info('vol1')).openBy, null)
  const w = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 64k', env.uri('vol1@empty')])
  assert.is.not(w.code, 0, 'a snapshot is read-only')
})

V('open while used, closed after the last connection; a second gateway is refused naming the holder', async () => {
  if (!env) return
  const a = await NbdClient.connect({ unix: env.sock, export: 'vol1' })
  const b = await NbdClient.connect({ unix: env.sock, export: 'vol1' })
  const other = new NbdGateway({ segment: env.seg, storagePort: 3, exports: [], volumes: { owner: 'gw-two' }, logger: null })
  const sock2 = join(env.dir, 'two.sock')
  try {
    assert.is((await env.vols.info('vol1')).openBy, 'gw-one')
    await other.listen({ unix: sock2 })
    const refused = await out('nbdinfo', [`nbd+unix:///vol1?socket=${sock2}`], { LIBNBD_DEBUG: '1' })
    assert.is.not(refused.code, 0)
    assert.match(refused.text, /vol1 is open by gw-one/, refused.text)
    await a.write(0, Buffer.alloc(4096, 0x22))
    await a.disconnect()
    await within(env.gw.volumes!.settle(), 5000, 'settle')
    assert.is((await env.vols.info('vol1')).openBy, 'gw-one', 'still open for the second connection')
    assert.ok((await b.read(0, 4096)).equals(Buffer.alloc(4096, 0x22)))
    await b.disconnect()
    // The CLOSE is sent when the engine has finished with the connection.
    await within((async () => {
      while ((await env!.vols.info('vol1')).openBy !== null) await new Promise((r) => setTimeout(r, 20))
    })(), 10000, 'vol1 closed after the last connection')
    const j = JSON.parse((await run('nbdinfo', ['--json', `nbd+unix:///vol1?socket=${sock2}`])).stdout) as { exports: Record<string, unknown>[] }
    assert.is(j.exports[0]!['export-size'], 8 * MB, 'the other gateway opens it now')
  } finally {
    await a.disconnect().catch(() => undefined)
    await b.disconnect().catch(() => undefined)
    await other.close(1000)
  }
  await within((async () => {
    while ((await env!.vols.info('vol1')).openBy !== null) await new Promise((r) => setTimeout(r, 20))
  })(), 10000, 'vol1 closed by the other gateway')
})

V('write, snapshot, overwrite, clone: snapshot and clone read back what they froze (qemu-img compare)', async () => {
  if (!env) return
  const first = join(env.dir, 'first.img')
  const second = join(env.dir, 'second.img')
  const a = Buffer.alloc(8 * MB)
  randomFillSync(a, 0, 3 * MB) // the rest is a hole
  writeFileSync(first, a)
  const b = Buffer.from(a)
  randomFillSync(b, 2 * MB, 2 * MB)
  writeFileSync(second, b)
  await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', first, env.uri('vol1')])
  await env.vols.snapshot('vol1', 's1')
  await run('nbdcopy', ['--connections=2', second, env.uri('vol1')])
  await env.vols.clone('vol1@s1', 'vol2')
  await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 7M 64k', env.uri('vol2')])
  const c = Buffer.from(a)
  c.fill(0x33, 7 * MB, 7 * MB + (64 << 10))
  const third = join(env.dir, 'third.img')
  writeFileSync(third, c)
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', first, env.uri('vol1@s1')])
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', second, env.uri('vol1')])
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', third, env.uri('vol2')])
  const differ = await out('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', first, env.uri('vol1')])
  assert.is(differ.code, 1, 'the overwritten volume differs from the snapshot')
})

V('xseg nbd --volumes: serves any volume until SIGTERM, closing what it opened', async () => {
  if (!env) return
  const sock = join(env.dir, 'cli.sock')
  const cli = start(process.execPath, ['--require', TSX, join(ROOT, 'peers', 'node', 'cli', 'cli.ts'), 'nbd', env.seg.config.spec,
    '--storage-port', '3', '--unix', sock, '--volumes', '--owner', 'cli-gw'])
  try {
    await cli.waitFor(/^listening nbd\+unix:\/\/\/VOLUME\?socket=/, 20000)
    const c = await NbdClient.connect({ unix: sock, export: 'vol2' })
    assert.is((await env.vols.info('vol2')).openBy, 'cli-gw')
    await c.disconnect()
  } finally {
    assert.is(await stop(cli), 0, cli.stderr())
  }
  assert.is((await env.vols.info('vol2')).openBy, null)
  const usage = start(process.execPath, ['--require', TSX, join(ROOT, 'peers', 'node', 'cli', 'cli.ts'), 'nbd', env.seg.config.spec,
    '--storage-port', '3', '--unix', sock, '--owner', 'x'])
  assert.is(await usage.exited, 2)
})

V.run()
