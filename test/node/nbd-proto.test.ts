// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the parts of the NBD protocol beyond simple replies, against
// the gateway and blockd on a sparse temp file: structured replies
// (OFFSET_DATA, NONE, ERROR chunks), NBD_CMD_BLOCK_STATUS with
// base:allocation (holes from blockd's SEEK_DATA/SEEK_HOLE, seen by
// `nbdinfo --map` and `qemu-img map`), nbdcopy skipping the holes (the
// gateway's READ bytes counted), NBD_CMD_CACHE, the meta context options,
// and every advertised transmission flag exercised. Skips without blockd or
// the tools; under CI=true that is a failure.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient } from '../../peers/node/nbd/client'
import * as P from '../../peers/node/nbd/protocol'
import { skipCheck } from './helpers'
import { haveBlockd, nbdEnv, nbdTeardown, type NbdEnv } from './nbd-env'
import { Raw } from './nbd-raw'

const run = promisify(execFile)
const SIZE = 16 << 20
const MB = 1 << 20
const TOOLS = ['nbdinfo', 'qemu-img', 'nbdcopy', 'cmp']

let env: NbdEnv | undefined
const T = suite('nbd protocol: structured replies, block status, cache')

T.before(async () => {
  if (!haveBlockd()) return
  for (const t of TOOLS) {
    try {
      await run('sh', ['-c', `command -v ${t}`])
    } catch {
      skipCheck(`${t} missing`)
      return
    }
  }
  env = await nbdEnv({ size: SIZE, segment: '16:256:64K', exports: [{ name: 'disk' }, { name: 'ro', target: 'disk', readonly: true }] })
  // Data at [0, 1M) and [8M, 8M+64K); the rest of the file stays a hole.
  const c = await NbdClient.connect({ unix: env.sock, export: 'disk' })
  await c.write(0, Buffer.alloc(MB, 7))
  await c.write(8 * MB, Buffer.alloc(64 << 10, 9))
  await c.flush()
  await c.disconnect()
})

T.after(async () => {
  await nbdTeardown(env)
  env = undefined
})

const DATA = [
  { offset: 0, length: MB, type: 0 },
  { offset: MB, length: 7 * MB, type: 3 },
  { offset: 8 * MB, length: 64 << 10, type: 0 },
  { offset: 8 * MB + (64 << 10), length: 8 * MB - (64 << 10), type: 3 },
]

T('nbdinfo: structured replies, base:allocation, can_cache; --map gives the holes', async () => {
  if (!env) return
  const j = JSON.parse((await run('nbdinfo', ['--json', env.uri()])).stdout) as { structured: boolean; exports: Record<string, unknown>[] }
  assert.is(j.structured, true)
  const x = j.exports[0]!
  assert.equal(x.contexts, ['base:allocation'])
  assert.is(x.can_cache, true)
  assert.is(x.can_fast_zero, true)
  await run('nbdinfo', ['--can', 'cache', env.uri()]) // exit 0: it can
  const map = JSON.parse((await run('nbdinfo', ['--map', '--json', env.uri()])).stdout) as { offset: number; length: number; type: number }[]
  assert.equal(map.map(({ offset, length, type }) => ({ offset, length, type })), DATA)
})

T('qemu-img map: data where written, zero holes elsewhere', async () => {
  if (!env) return
  const m = JSON.parse((await run('qemu-img', ['map', '--output=json', '-f', 'raw', env.uri()])).stdout) as
    { start: number; length: number; data: boolean; zero: boolean }[]
  assert.equal(m.map(({ start, length, data, zero }) => ({ start, length, data, zero })),
    DATA.map((d) => ({ start: d.offset, length: d.length, data: d.type === 0, zero: d.type === 3 })))
})

T('nbdcopy skips the holes: the same bytes, a fraction of the READs', async () => {
  if (!env) return
  const out = join(env.dir, 'copy.img')
  const before = env.gw.stats().bytesRead
  await run('nbdcopy', [env.uri(), out])
  const read = env.gw.stats().bytesRead - before
  console.log(`  nbdcopy of the 16 MiB export: ${read} bytes of READs served`)
  await run('cmp', [env.file, out]) // exit 0: identical
  // 1 MiB + 64 KiB of data (nbdcopy reads in 256 KiB requests): at most 2 MiB of the 16 read.
  assert.ok(read >= MB + (64 << 10) && read <= 2 * MB, `READ bytes served for the copy: ${read}`)
})

/** A raw connection that negotiated structured replies and base:allocation for @name, in transmission. */
async function structured(name = 'disk'): Promise<Raw> {
  const r = new Raw(env!.sock)
  await r.hello()
  r.option(P.NBD_OPT_STRUCTURED_REPLY)
  assert.is((await r.reply()).type, P.NBD_REP_ACK)
  r.option(P.NBD_OPT_SET_META_CONTEXT, metaQuery(name, ['other:thing', P.BASE_ALLOCATION]))
  const m = await r.reply()
  assert.is(m.type, P.NBD_REP_META_CONTEXT)
  assert.is(m.data.readUInt32BE(0), P.BASE_ALLOCATION_ID)
  assert.is(m.data.subarray(4).toString(), P.BASE_ALLOCATION)
  assert.is((await r.reply()).type, P.NBD_REP_ACK)
  await r.go(name)
  return r
}

function metaQuery(name: string, queries: string[]): Buffer {
  const parts = [Buffer.alloc(4), Buffer.from(name), Buffer.alloc(4)]
  parts[0]!.writeUInt32BE(Buffer.byteLength(name), 0)
  parts[2]!.writeUInt32BE(queries.length, 0)
  for (const q of queries) {
    const l = Buffer.alloc(4)
    l.writeUInt32BE(Buffer.byteLength(q), 0)
    parts.push(l, Buffer.from(q))
  }
  return Buffer.concat(parts)
}

/** One structured reply chunk: flags, type, handle, payload. */
async function chunk(r: Raw): Promise<{ flags: number; type: number; handle: number; data: Buffer }> {
  const h = await r.take(20)
  assert.is(h.readUInt32BE(0), P.NBD_STRUCTURED_REPLY_MAGIC, 'structured reply magic')
  const len = h.readUInt32BE(16)
  return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), handle: h.readUInt32BE(12), data: len ? await r.take(len) : Buffer.alloc(0) }
}

/** The one chunk of a command's reply: DONE set; the type asserted. */
async function only(r: Raw, type: number, what: string): Promise<Buffer> {
  const c = await chunk(r)
  assert.is(c.flags, P.NBD_REPLY_FLAG_DONE, `${what}: one chunk, DONE`)
  assert.is(c.type, type, `${what}: chunk type ${c.type} ${type === P.NBD_REPLY_TYPE_ERROR ? '' : c.type === P.NBD_REPLY_TYPE_ERROR ? `(error ${c.data.readUInt32BE(0)})` : ''}`)
  assert.is(c.handle, 7)
  return c.data
}

T('meta context options: LIST answers base:allocation, SET needs structured replies first', async () => {
  if (!env) return
  const r = new Raw(env.sock)
  await r.hello()
  for (const q of [[], ['base:'], [P.BASE_ALLOCATION]]) {
    r.option(P.NBD_OPT_LIST_META_CONTEXT, metaQuery('disk', q))
    const m = await r.reply()
    assert.is(m.type, P.NBD_REP_META_CONTEXT, JSON.stringify(q))
    assert.is(m.data.readUInt32BE(0), 0)
    assert.is(m.data.subarray(4).toString(), P.BASE_ALLOCATION)
    assert.is((await r.reply()).type, P.NBD_REP_ACK)
  }
  r.option(P.NBD_OPT_LIST_META_CONTEXT, metaQuery('disk', ['qemu:dirty-bitmap:x']))
  assert.is((await r.reply()).type, P.NBD_REP_ACK, 'an unknown context: nothing, then ACK')
  r.option(P.NBD_OPT_SET_META_CONTEXT, metaQuery('disk', [P.BASE_ALLOCATION]))
  assert.is((await r.reply()).type, P.NBD_REP_ERR_INVALID)
  r.option(P.NBD_OPT_STRUCTURED_REPLY, Buffer.from('x'))
  assert.is((await r.reply()).type, P.NBD_REP_ERR_INVALID)
  r.option(P.NBD_OPT_LIST_META_CONTEXT, Buffer.from([0, 0, 0, 9, 1]))
  assert.is((await r.reply()).type, P.NBD_REP_ERR_INVALID)
  r.option(P.NBD_OPT_ABORT)
  await r.closedWithin('abort')
})

T('structured replies: OFFSET_DATA, NONE, ERROR; BLOCK_STATUS (REQ_ONE too); CACHE', async () => {
  if (!env) return
  const r = await structured()
  r.send(r.request(P.NBD_CMD_READ, MB - 4096, 8192))
  const d = await only(r, P.NBD_REPLY_TYPE_OFFSET_DATA, 'READ')
  assert.is(d.length, 8 + 8192)
  assert.is(Number(d.readBigUInt64BE(0)), MB - 4096)
  assert.ok(d.subarray(8, 8 + 4096).equals(Buffer.alloc(4096, 7)) && d.subarray(8 + 4096).equals(Buffer.alloc(4096)))
  r.send(r.request(P.NBD_CMD_READ, SIZE - 512, 1024))
  const err = await only(r, P.NBD_REPLY_TYPE_ERROR, 'READ past the end')
  assert.is(err.readUInt32BE(0), P.NBD_EINVAL)
  assert.is(err.readUInt16BE(4), 0)
  r.send(r.request(P.NBD_CMD_BLOCK_STATUS, 0, SIZE))
  const bs = await only(r, P.NBD_REPLY_TYPE_BLOCK_STATUS, 'BLOCK_STATUS')
  assert.is(bs.readUInt32BE(0), P.BASE_ALLOCATION_ID)
  const desc = []
  for (let at = 4; at < bs.length; at += 8) desc.push({ length: bs.readUInt32BE(at), type: bs.readUInt32BE(at + 4) })
  assert.equal(desc, DATA.map(({ length, type }) => ({ length, type })))
  r.send(r.request(P.NBD_CMD_BLOCK_STATUS, 512 << 10, 8 * MB, P.NBD_CMD_FLAG_REQ_ONE))
  const one = await only(r, P.NBD_REPLY_TYPE_BLOCK_STATUS, 'BLOCK_STATUS REQ_ONE')
  assert.is(one.length, 12)
  assert.is(one.readUInt32BE(4), 512 << 10)
  assert.is(one.readUInt32BE(8), 0)
  r.send(r.request(P.NBD_CMD_BLOCK_STATUS, SIZE - 4096, 8192))
  assert.is((await only(r, P.NBD_REPLY_TYPE_ERROR, 'BLOCK_STATUS past the end')).readUInt32BE(0), P.NBD_EINVAL)
  const before = env.gw.stats().bytesRead
  r.send(r.request(P.NBD_CMD_CACHE, 0, 2 * MB))
  assert.is((await only(r, P.NBD_REPLY_TYPE_NONE, 'CACHE')).length, 0)
  assert.is(env.gw.stats().bytesRead, before, 'CACHE sends no data')
  r.send(r.request(P.NBD_CMD_CACHE, SIZE, 1))
  assert.is((await only(r, P.NBD_REPLY_TYPE_ERROR, 'CACHE past the end')).readUInt32BE(0), P.NBD_EINVAL)
  r.send(r.request(P.NBD_CMD_DISC, 0, 0))
  await r.closedWithin('disconnect')
})

T('every advertised flag is honoured, the others refused (EINVAL)', async () => {
  if (!env) return
  const r = await structured()
  const flags = (JSON.parse((await run('nbdinfo', ['--json', env.uri()])).stdout) as { exports: Record<string, unknown>[] }).exports[0]!
  // Advertised: FLUSH, FUA, TRIM, WRITE_ZEROES (NO_HOLE), CACHE, multi-conn; each works here.
  for (const k of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_cache', 'can_multi_conn', 'can_fast_zero']) assert.is(flags[k], true, k)
  const w = r.request(P.NBD_CMD_WRITE, 12 * MB, 4096, P.NBD_CMD_FLAG_FUA)
  r.send(Buffer.concat([w, Buffer.alloc(4096, 5)]))
  await only(r, P.NBD_REPLY_TYPE_NONE, 'WRITE FUA')
  const cmds: [number, number, number, number, string][] = [
    [P.NBD_CMD_FLUSH, 0, 0, 0, 'FLUSH'],
    [P.NBD_CMD_TRIM, 12 * MB, 4096, P.NBD_CMD_FLAG_FUA, 'TRIM FUA'],
    [P.NBD_CMD_WRITE_ZEROES, 12 * MB, 8192, P.NBD_CMD_FLAG_NO_HOLE, 'WRITE_ZEROES NO_HOLE'],
    [P.NBD_CMD_WRITE_ZEROES, 13 * MB, 8192, P.NBD_CMD_FLAG_FUA, 'WRITE_ZEROES FUA'],
    [P.NBD_CMD_CACHE, 0, 4096, 0, 'CACHE'],
    [P.NBD_CMD_WRITE_ZEROES, 14 * MB, MB, P.NBD_CMD_FLAG_FAST_ZERO, 'WRITE_ZEROES FAST_ZERO on a hole'],
  ]
  for (const [type, off, len, fl, what] of cmds) {
    r.send(r.request(type, off, len, fl))
    await only(r, P.NBD_REPLY_TYPE_NONE, what)
  }
  r.send(r.request(P.NBD_CMD_READ, 12 * MB, 8192))
  assert.ok((await only(r, P.NBD_REPLY_TYPE_OFFSET_DATA, 'READ')).subarray(8).equals(Buffer.alloc(8192)))
  // Fast zero where zeroing would take work: ENOTSUP at once, nothing changed.
  const slow: [number, number, number, string][] = [
    [0, 4096, P.NBD_CMD_FLAG_FAST_ZERO, 'on data'],
    [7 * MB, 2 * MB, P.NBD_CMD_FLAG_FAST_ZERO, 'on a hole and data'],
    [14 * MB, MB, P.NBD_CMD_FLAG_FAST_ZERO | P.NBD_CMD_FLAG_NO_HOLE, 'with NO_HOLE'],
    [14 * MB, MB, P.NBD_CMD_FLAG_FAST_ZERO | P.NBD_CMD_FLAG_FUA, 'with FUA'],
  ]
  for (const [off, len, fl, what] of slow) {
    r.send(r.request(P.NBD_CMD_WRITE_ZEROES, off, len, fl))
    assert.is((await only(r, P.NBD_REPLY_TYPE_ERROR, `FAST_ZERO ${what}`)).readUInt32BE(0), P.NBD_ENOTSUP, what)
  }
  r.send(r.request(P.NBD_CMD_READ, 0, 4096))
  assert.ok((await only(r, P.NBD_REPLY_TYPE_OFFSET_DATA, 'READ')).subarray(8).equals(Buffer.alloc(4096, 7)), 'data not zeroed')
  // Not advertised: DF, RESIZE.
  const refused: [number, number, string][] = [
    [P.NBD_CMD_READ, P.NBD_CMD_FLAG_DF, 'READ DF'],
    [P.NBD_CMD_CACHE, P.NBD_CMD_FLAG_FUA, 'CACHE FUA'],
    [P.NBD_CMD_RESIZE, 0, 'RESIZE'],
  ]
  for (const [type, fl, what] of refused) {
    r.send(r.request(type, 0, 4096, fl))
    assert.is((await only(r, P.NBD_REPLY_TYPE_ERROR, what)).readUInt32BE(0), P.NBD_EINVAL, what)
  }
  r.send(r.request(P.NBD_CMD_DISC, 0, 0))
  await r.closedWithin('disconnect')
  // The read-only export: CACHE and BLOCK_STATUS, no writes.
  const ro = await structured('ro')
  ro.send(ro.request(P.NBD_CMD_BLOCK_STATUS, 0, MB))
  await only(ro, P.NBD_REPLY_TYPE_BLOCK_STATUS, 'BLOCK_STATUS on ro')
  ro.send(ro.request(P.NBD_CMD_TRIM, 0, 4096))
  assert.is((await only(ro, P.NBD_REPLY_TYPE_ERROR, 'TRIM on ro')).readUInt32BE(0), P.NBD_EPERM)
  ro.send(ro.request(P.NBD_CMD_DISC, 0, 0))
  await ro.closedWithin('disconnect')
})

T.run()
