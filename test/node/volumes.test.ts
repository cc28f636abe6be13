// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the Volumes API (sys/node/ts/volumes.ts) against a peer
// speaking peers/user/volume.h (test/node/fakevol.ts, in this process):
// every operation's request (op, target, text payload) and typed result,
// errors as codes with the peer's text, arguments refused before anything
// is sent (naming what is wrong), and its limits equal to volume.h's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Segment, Volumes, VolumeError, splitTarget, validVolumeName } from '../../sys/node/ts/index'
import * as V from '../../sys/node/ts/volumes'
import { fakeVolumes, type FakeVolumes } from './fakevol'
import { ROOT, codeOf, uniqueSpec } from './helpers'

let seg: Segment
let fake: FakeVolumes
let vols: Volumes
const ac = new AbortController()

test.before(async () => {
  seg = await Segment.create(uniqueSpec('8:64:64K'), { destroyOnClose: true })
  const server = seg.bindPort(3)
  fake = fakeVolumes()
  void server.serve((r) => fake.handle(r), { signal: ac.signal })
  vols = new Volumes(seg.bindDynamicPort(), 3, { timeoutMs: 10000 })
})

test.after(() => {
  ac.abort()
  seg.close()
})

test('the limits are those of peers/user/volume.h', () => {
  const h = readFileSync(join(ROOT, 'peers/user/volume.h'), 'utf8')
  const def = (name: string): string => {
    const m = new RegExp(`#define ${name}\\s+(\\S.*?)\\s*(/\\*.*)?$`, 'm').exec(h)
    if (!m) throw new Error(`volume.h has no ${name}`)
    return m[1]!
  }
  const num = (e: string): number => {
    const m = /^\((\d+)u << (\d+)\)$/.exec(e) ?? /^(\d+)u$/.exec(e)
    if (!m) throw new Error(`cannot read '${e}'`)
    return Number(m[1]) * 2 ** Number(m[2] ?? 0)
  }
  assert.is(V.XV_NAME_MAX, num(def('XV_NAME_MAX')))
  assert.is(V.XV_OBJECT_SIZE_DEFAULT, num(def('XV_OBJECT_SIZE_DEFAULT')))
  assert.is(V.XV_OBJECT_SIZE_MIN, num(def('XV_OBJECT_SIZE_MIN')))
  assert.is(V.XV_OBJECT_SIZE_MAX, num(def('XV_OBJECT_SIZE_MAX')))
  assert.is(JSON.stringify(V.XV_T_LIST), def('XV_T_LIST'))
  assert.is(JSON.stringify(V.XV_T_FSCK), def('XV_T_FSCK'))
  assert.is(JSON.stringify(V.XV_T_STATS), def('XV_T_STATS'))
})

test('names as xv_valid_name and xv_split_target take them', () => {
  for (const ok of ['vol1', 'a', 'A_b.c-d', '0', 'x'.repeat(96)]) assert.ok(validVolumeName(ok), ok)
  for (const bad of ['', '.list', '-x', 'a b', 'a/b', 'a@b', 'é', 'x'.repeat(97)]) assert.not.ok(validVolumeName(bad), bad)
  assert.equal(splitTarget('vol1@snap'), { volume: 'vol1', snapshot: 'snap' })
  assert.equal(splitTarget('vol1'), { volume: 'vol1', snapshot: null })
  for (const bad of ['vol1@', '@s', 'vol1@s@t', 'v/1']) {
    try {
      splitTarget(bad)
      assert.unreachable(bad)
    } catch (e) {
      assert.is((e as VolumeError).code, 'EINVAL')
      assert.match((e as Error).message, /is not a (volume|snapshot) name/)
    }
  }
})

test('create, snapshot, clone, resize, info, ls, rm: requests and typed results', async () => {
  fake.log.length = 0
  await vols.create('vol1', { size: 1 << 20, objectSize: 64 << 10 })
  await vols.snapshot('vol1', 'snap1')
  await vols.clone('vol1@snap1', 'vol2', { size: 2 << 20 })
  await vols.resize('vol1', 4 << 20)
  assert.equal(fake.log, ['create vol1', 'snapshot vol1', 'clone vol1@snap1', 'update vol1'])
  const i = await vols.info('vol1')
  assert.equal(i, {
    name: 'vol1', kind: 'volume', size: 4 << 20, objectSize: 64 << 10, parent: null, snapshots: ['snap1'], clones: [],
    objects: 0, bytes: 0, openBy: null, id: i.id, version: 1, readers: [],
  })
  const c = await vols.info('vol2')
  assert.is(c.parent, 'vol1@snap1')
  assert.is(c.size, 2 << 20)
  assert.equal((await vols.info('vol1@snap1')).clones, ['vol2'])
  assert.equal(await vols.ls(), [
    { name: 'vol1', kind: 'volume', size: 4 << 20, parent: null },
    { name: 'vol1@snap1', kind: 'snapshot', size: 1 << 20, parent: null },
    { name: 'vol2', kind: 'volume', size: 2 << 20, parent: 'vol1@snap1' },
  ])
  await vols.rm('vol2')
  await vols.rm('vol1@snap1')
  await vols.rm('vol1')
  assert.equal(await vols.ls(), [])
})

test("a failed request throws the code with the peer's text", async () => {
  await vols.create('held', { size: 1 << 20 })
  await vols.snapshot('held', 's')
  await vols.clone('held@s', 'dep')
  try {
    await vols.rm('held@s')
    assert.unreachable()
  } catch (e) {
    assert.instance(e, VolumeError)
    const v = e as VolumeError
    assert.is(v.code, 'EBUSY')
    assert.is(v.peerMessage, 'held@s has clones: dep')
    assert.is(v.message, 'EBUSY: delete held@s: held@s has clones: dep')
  }
  assert.is(await codeOf(() => vols.info('nope')), 'ENOENT')
  assert.is(await codeOf(() => vols.create('held', { size: 1 << 20 })), 'EEXIST')
  assert.is(await codeOf(() => vols.resize('held', 512)), 'EINVAL')
  await vols.rm('dep')
  await vols.rm('held@s')
  await vols.rm('held')
})

test('bad arguments are refused before sending, naming what is wrong', async () => {
  fake.log.length = 0
  const bad: [() => Promise<unknown>, RegExp][] = [
    [() => vols.create('a@b', { size: 1 << 20 }), /names a snapshot/],
    [() => vols.create('.x', { size: 1 << 20 }), /'.x' is not a volume name/],
    [() => vols.create('a', { size: 1000 }), /size: 1000 is not a positive multiple of 512/],
    [() => vols.create('a', { size: 1 << 20, objectSize: 3 << 20 }), /object size 3145728 is not a power of two/],
    [() => vols.clone('a', 'b'), /is not VOL@SNAP/],
    [() => vols.clone('a@s', 'b@c'), /cannot be a snapshot/],
    [() => vols.snapshot('a@s', 't'), /is a snapshot already/],
    [() => vols.resize('a@s', 1 << 20), /snapshots never change/],
  ]
  for (const [f, re] of bad) {
    try {
      await f()
      assert.unreachable(String(re))
    } catch (e) {
      assert.is((e as VolumeError).code, 'EINVAL', String(re))
      assert.match((e as Error).message, re)
    }
  }
  assert.equal(fake.log, [], 'nothing was sent')
})

test('fsck: counts, and repair sends DELETE .fsck', async () => {
  fake.log.length = 0
  assert.equal(await vols.fsck(), { objects: 0, named: 0, leaked: 0, leakedObjects: [], repaired: false })
  assert.equal(await vols.fsck({ repair: true }), { objects: 0, named: 0, leaked: 0, leakedObjects: [], repaired: true })
  assert.equal(fake.log, ['info .fsck', 'delete .fsck'])
  assert.equal(V.parseKeyValues('objects=3\nnamed=1\nleaked=2\nleaked=xv1.d.a\nleaked=xv1.d.b\n', ['leaked']),
    { objects: '3', named: '1', leaked: ['2', 'xv1.d.a', 'xv1.d.b'] })
})

test('a peer that does not serve volumes: ENOTSUP (EOPNOTSUPP), said so', async () => {
  const other = seg.bindPort(2)
  const ac2 = new AbortController()
  void other.serve((r) => r.fail(95), { signal: ac2.signal })
  try {
    await new Volumes(vols.port, 2).ls()
    assert.unreachable()
  } catch (e) {
    assert.is((e as VolumeError).code, 'ENOTSUP', String(e)) // errno 95's name here
    assert.match((e as Error).message, /does not serve volumes/)
  } finally {
    ac2.abort()
  }
})

test('nobody on the port: ENOENT, said so', async () => {
  try {
    await new Volumes(vols.port, 1).ls()
    assert.unreachable()
  } catch (e) {
    assert.is((e as VolumeError).code, 'ENOENT')
    assert.match((e as Error).message, /no peer serves port 1/)
  }
})

test.run()
