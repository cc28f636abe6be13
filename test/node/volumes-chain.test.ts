// SPDX-License-Identifier: BSD-2-Clause
//
// Description: volumes for users on the real chain - C filed <- mapperd <-
// vlmcd, the NBD gateway in volume mode in front (test/node/volume-env.ts) -
// driven by real clients: qemu-img convert/compare, nbdcopy, qemu-io
// patterns and fio with verify= on a volume, its snapshot and a clone (fio
// --verify_only on the snapshot and the clone after the volume was
// overwritten, and failing on the volume itself); the
// same history applied to a qcow2 backing chain (qemu-img create -b) and
// every snapshot and clone equal byte for byte to its qcow2 twin;
// exclusivity (a second gateway refused naming the holder, then let in after
// the close); resize seen by clients; rm refused while a clone depends on a
// snapshot; discard freeing whole objects (INFO objects); thin reads (a
// never-written range read: not one request reaches the storage peer's
// port); block status from the map (nbdinfo --map, qemu-img map: a thin
// volume's holes, a clone's objects shared with its parent as data, nbdcopy
// reading only the data). Skips (loudly) without the peers or the tools.
import { execFile } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { VolumeError, Volumes } from '../../sys/node/ts/index'
import { NbdGateway } from '../../peers/node/nbd/server'
import { NbdClient } from '../../peers/node/nbd/client'
import { skipCheck, within } from './helpers'
import { haveChain, volumeEnv, volumeTeardown, type VolumeEnv } from './volume-env'

const run = promisify(execFile)
const TOOLS = ['qemu-img', 'qemu-io', 'nbdcopy', 'nbdinfo', 'fio']
const MB = 1 << 20
const SIZE = 32 * MB
const OBJ = 1 * MB

async function have(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`])
    return true
  } catch {
    return false
  }
}

/** A tool's output and exit code, never a rejection. */
async function out(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ text: string; code: number }> {
  try {
    // In the env's temp dir: fio leaves verify state files in its working directory.
    const r = await run(cmd, args, { maxBuffer: 16 << 20, cwd: cwdDir(), ...(env ? { env: { ...process.env, ...env } } : {}) })
    return { text: r.stdout + r.stderr, code: 0 }
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number }
    return { text: `${x.stdout ?? ''}${x.stderr ?? ''}`, code: typeof x.code === 'number' ? x.code : -1 }
  }
}

/** qemu-img compare of @a (qcow2 or raw file) with export @b; asserts identical. */
async function same(env: VolumeEnv, file: string, fmt: string, exp: string): Promise<void> {
  const r = await out('qemu-img', ['compare', '-f', fmt, '-F', 'raw', file, env.uri(exp)])
  assert.is(r.code, 0, `${file} vs ${exp}: ${r.text}`)
}

/** The same qemu-io commands on the volume (through the gateway) and on its qcow2 twin. */
async function both(env: VolumeEnv, exp: string, qcow: string, cmds: string[]): Promise<void> {
  const args = cmds.flatMap((c) => ['-c', c])
  const a = await out('qemu-io', ['-f', 'raw', ...args, env.uri(exp)])
  assert.is(a.code, 0, `qemu-io on ${exp}: ${a.text}`)
  assert.not.match(a.text, /failed|error/i, a.text)
  const b = await out('qemu-io', ['-f', 'qcow2', ...args, qcow])
  assert.is(b.code, 0, `qemu-io on ${qcow}: ${b.text}`)
}

let env: VolumeEnv | undefined
const cwdDir = (): string | undefined => env?.dir
const V = suite('volumes on the chain')

V.before(async () => {
  const missing: string[] = []
  for (const t of TOOLS) if (!(await have(t))) missing.push(t)
  if (missing.length) {
    skipCheck(`${missing.join(', ')} missing`)
    return
  }
  if (!haveChain()) return
  env = await volumeEnv()
})

V.after(async () => {
  await volumeTeardown(env)
  env = undefined
})

V('qemu-img, nbdcopy, qemu-io and fio verify on a volume, a snapshot and a clone, each equal to its qcow2 twin', async () => {
  if (!env) return
  const e = env
  const q = (n: string): string => join(e.dir, `${n}.qcow2`)
  // The data: 6 MiB of random bytes at 1 MiB, the rest never written.
  const img = join(e.dir, 'a.img')
  const a = Buffer.alloc(SIZE)
  randomFillSync(a, MB, 6 * MB)
  writeFileSync(img, a)
  await e.vols.create('vol1', { size: SIZE, objectSize: OBJ })
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', q('s1'), String(SIZE)])
  // Into both: qemu-img convert (the volume), qemu-img convert (the twin).
  await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', img, e.uri('vol1')])
  await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'qcow2', img, q('s1')])
  await both(e, 'vol1', q('s1'), ['write -P 0xa1 20M 3M', 'write -z 2M 1M', 'write -P 0xa2 30M 512'])
  await same(e, q('s1'), 'qcow2', 'vol1')
  // The snapshot freezes it; the volume goes on in vol1.qcow2 on top of s1.qcow2.
  await e.vols.snapshot('vol1', 's1')
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', q('s1'), '-F', 'qcow2', q('vol1')])
  await both(e, 'vol1', q('vol1'), ['write -P 0xb1 1M 64k', 'write -P 0xb2 5M 1M', 'discard 20M 1M', 'write -P 0xb3 31M 1M'])
  // Clone from the snapshot: its twin is another overlay on s1.qcow2.
  await e.vols.clone('vol1@s1', 'vol2')
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', q('s1'), '-F', 'qcow2', q('vol2')])
  await both(e, 'vol2', q('vol2'), ['write -P 0xc1 1M 4k', 'write -P 0xc2 10M 2M', 'write -z 3M 1M'])
  // nbdcopy the clone out and back onto the same data (several connections, one open).
  const out2 = join(e.dir, 'vol2.raw')
  await run('nbdcopy', ['--connections=2', e.uri('vol2'), out2])
  await run('nbdcopy', ['--connections=2', '--requests=8', out2, e.uri('vol2')])
  // fio with verify on the clone; the twin gets the same bytes by copying the range over.
  const fio = await out('fio', ['--name=v', '--ioengine=nbd', `--uri=${e.uri('vol2')}`, '--rw=randwrite', '--bs=4k',
    '--offset=16M', '--size=4M', '--verify=crc32c', '--verify_fatal=1', '--iodepth=8', '--randrepeat=1', '--output-format=terse'])
  assert.is(fio.code, 0, fio.text)
  // fio's blocks carry times: the twin gets that range's bytes, read back through the gateway.
  const frag = join(e.dir, 'fio.raw')
  const fc = await NbdClient.connect({ unix: e.sock, export: 'vol2' })
  writeFileSync(frag, await fc.read(16 * MB, 4 * MB))
  await fc.disconnect()
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -s ${frag} 16M 4M`, q('vol2')])
  // Every one equals its twin; the snapshot still equals what it froze.
  await same(e, q('s1'), 'qcow2', 'vol1@s1')
  await same(e, q('vol1'), 'qcow2', 'vol1')
  await same(e, q('vol2'), 'qcow2', 'vol2')
  // And they differ where they should.
  assert.is((await out('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', q('s1'), e.uri('vol1')])).code, 1)
  // The snapshot is read-only to clients.
  const w = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', e.uri('vol1@s1')])
  assert.is.not(w.code, 0, `a write to the snapshot: ${w.text}`)
  // fio verify of a snapshot's content: write nothing, verify what the volume had (read-only pass).
  const ro = await out('fio', ['--name=r', '--ioengine=nbd', `--uri=${e.uri('vol1@s1')}`, '--rw=read', '--bs=1M',
    '--size=8M', '--readonly', '--output-format=terse'])
  assert.is(ro.code, 0, ro.text)
})

V('fio verify: written on a volume, verified (verify_only) on its snapshot and a clone after the volume was overwritten', async () => {
  if (!env) return
  const e = env
  const job = (uri: string, extra: string[]): string[] => ['--name=fv', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite',
    '--bs=4k', '--size=8M', '--verify=crc32c', '--verify_fatal=1', '--iodepth=16', '--randrepeat=1', '--randseed=1234',
    '--output-format=terse', ...extra]
  await e.vols.create('fv', { size: 16 * MB, objectSize: OBJ })
  const w = await out('fio', job(e.uri('fv'), []))
  assert.is(w.code, 0, w.text)
  await e.vols.snapshot('fv', 'a')
  await e.vols.clone('fv@a', 'fvc')
  // The volume overwritten in the same range with other data.
  const o = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 8M', e.uri('fv')])
  assert.is(o.code, 0, o.text)
  for (const t of ['fv@a', 'fvc']) {
    const v = await out('fio', job(e.uri(t), ['--verify_only']))
    assert.is(v.code, 0, `verify_only on ${t}: ${v.text}`)
  }
  // And on the overwritten volume the same check fails: it looks.
  const bad = await out('fio', job(e.uri('fv'), ['--verify_only']))
  assert.is.not(bad.code, 0, 'verify_only on the overwritten volume must fail')
})

V('exclusive: a second gateway is refused naming the holder, and opens it after the close', async () => {
  if (!env) return
  const e = env
  const c = await NbdClient.connect({ unix: e.sock, export: 'vol1' })
  const other = new NbdGateway({ segment: e.seg, storagePort: 3, exports: [], volumes: { owner: 'other-gw' }, logger: null })
  const sock2 = join(e.dir, 'other.sock')
  try {
    await other.listen({ unix: sock2 })
    const r = await out('nbdinfo', [`nbd+unix:///vol1?socket=${sock2}`], { LIBNBD_DEBUG: '1' })
    assert.is.not(r.code, 0)
    assert.match(r.text, /vol1 is open by .*test-gw/, r.text)
    assert.match((await e.vols.info('vol1')).openBy ?? '', /test-gw/)
    await c.disconnect()
    await within((async () => {
      while ((await e.vols.info('vol1')).openBy !== null) await new Promise((res) => setTimeout(res, 20))
    })(), 10000, 'vol1 closed after its last connection')
    const again = await out('nbdinfo', ['--size', `nbd+unix:///vol1?socket=${sock2}`])
    assert.is(again.code, 0, again.text)
    assert.is(again.text.trim(), String(SIZE))
  } finally {
    await c.disconnect().catch(() => undefined)
    await other.close(1000)
  }
})

V('resize is seen by the next client; rm refused while a clone depends on the snapshot', async () => {
  if (!env) return
  const e = env
  await e.vols.resize('vol2', 2 * SIZE)
  assert.is((await out('nbdinfo', ['--size', e.uri('vol2')])).text.trim(), String(2 * SIZE))
  const w = await out('qemu-io', ['-f', 'raw', '-c', `write -P 0x5e ${2 * SIZE - 4096} 4k`, '-c', `read -P 0x5e ${2 * SIZE - 4096} 4k`, e.uri('vol2')])
  assert.is(w.code, 0, w.text)
  assert.not.match(w.text, /fail/i, w.text)
  // Asked of vlmcd (which has seen vol1@s1 opened by the gateway) and of mapperd.
  for (const port of [3, 2]) {
    let err: unknown
    try {
      await new Volumes(e.vols.port, port).rm('vol1@s1')
    } catch (x) {
      err = x
    }
    assert.instance(err, VolumeError, `port ${port}`)
    assert.is((err as VolumeError).code, 'EBUSY')
    assert.match((err as VolumeError).peerMessage ?? '', /vol2/)
  }
  assert.equal((await e.vols.info('vol1@s1')).clones, ['vol2'])
})

V('discard frees whole objects; a never-written range is read without one request to the storage peer', async () => {
  if (!env) return
  const e = env
  await e.vols.create('thin', { size: 16 * MB, objectSize: OBJ })
  const w = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4M', '-c', 'read -P 0x11 0 4M', e.uri('thin')])
  assert.is(w.code, 0, w.text)
  assert.is((await e.vols.info('thin')).objects, 4)
  const d = await out('qemu-io', ['-f', 'raw', '-c', 'discard 1M 2M', '-c', 'read -P 0 1M 2M', '-c', 'read -P 0x11 0 1M', e.uri('thin')])
  assert.is(d.code, 0, d.text)
  assert.not.match(d.text, /fail|mismatch/i, d.text)
  assert.is((await e.vols.info('thin')).objects, 2, 'two whole objects were released')
  // Thin reads: keep one connection open (its map cached), then read 8 MiB never written.
  const c = await NbdClient.connect({ unix: e.sock, export: 'thin' })
  try {
    await c.read(0, 4096)
    const before = e.seg.portInfo(1).counters.accepted
    const stats0 = await e.vols.stats()
    const z = await c.read(8 * MB, 8 * MB)
    assert.ok(z.equals(Buffer.alloc(8 * MB)), 'zeroes')
    const stats1 = await e.vols.stats()
    assert.is(e.seg.portInfo(1).counters.accepted, before, 'not one request reached the storage peer')
    assert.is(stats1.storage_reads, stats0.storage_reads)
    assert.ok(stats1.hole_reads! > stats0.hole_reads!, 'vlmcd counted hole reads')
  } finally {
    await c.disconnect()
  }
})

/** nbdinfo --map of export @exp as [offset, length, type] (type 3: hole, reads as zeroes; 0: data). */
async function nbdMap(e: VolumeEnv, exp: string): Promise<number[][]> {
  const r = await out('nbdinfo', ['--map', '--json', e.uri(exp)])
  assert.is(r.code, 0, r.text)
  return (JSON.parse(r.text) as { offset: number; length: number; type: number }[]).map((x) => [x.offset, x.length, x.type])
}

V("block status from the map: a thin volume's holes, a clone's shared objects are data; nbdcopy reads only data", async () => {
  if (!env) return
  const e = env
  await e.vols.create('bs', { size: 8 * MB, objectSize: OBJ })
  const w = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 0x21 2097252 4k', e.uri('bs')])
  assert.is(w.code, 0, w.text)
  assert.equal(await nbdMap(e, 'bs'), [[0, 2 * MB, 3], [2 * MB, MB, 0], [3 * MB, 5 * MB, 3]])
  await e.vols.snapshot('bs', 's')
  await e.vols.clone('bs@s', 'bsc')
  const c = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 0x22 5M 4k', e.uri('bsc')])
  assert.is(c.code, 0, c.text)
  const want = [[0, 2 * MB, 3], [2 * MB, MB, 0], [3 * MB, 2 * MB, 3], [5 * MB, MB, 0], [6 * MB, 2 * MB, 3]]
  assert.equal(await nbdMap(e, 'bsc'), want)
  assert.equal(await nbdMap(e, 'bs@s'), [[0, 2 * MB, 3], [2 * MB, MB, 0], [3 * MB, 5 * MB, 3]])
  const m = await out('qemu-img', ['map', '--output=json', '-f', 'raw', e.uri('bsc')])
  assert.is(m.code, 0, m.text)
  const qm = (JSON.parse(m.text) as { start: number; length: number; data: boolean; zero: boolean }[])
  assert.equal(qm.map((x) => [x.start, x.length, x.data, x.zero]), want.map(([o, l, t]) => [o, l, t === 0, t === 3]))
  // nbdcopy of the clone: the same bytes, and only the data objects read.
  const copy = join(e.dir, 'bsc.raw')
  const stats0 = await e.vols.stats()
  await run('nbdcopy', [e.uri('bsc'), copy])
  const stats1 = await e.vols.stats()
  const reads = stats1.storage_reads! - stats0.storage_reads!
  const holes = stats1.hole_reads! - stats0.hole_reads!
  console.log(`  nbdcopy of the 8 MiB clone: ${reads} reads reached the storage peer, ${holes} hole reads at vlmcd`)
  // nbdcopy read only the two data objects: vlmcd was never asked to read a hole (it would answer zeroes itself).
  assert.ok(reads >= 2, `storage reads for the copy: ${reads}`)
  assert.is(holes, 0, 'hole reads at vlmcd for the copy (without block status nbdcopy reads the 6 MiB of holes too)')
  const back = await out('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copy, e.uri('bsc')])
  assert.is(back.code, 0, back.text)
})

V.run()
