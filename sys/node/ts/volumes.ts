// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/volumes.ts - thin volumes, snapshots and clones for Node: the
// management requests of peers/user/volume.h (CREATE, SNAPSHOT, CLONE,
// UPDATE, DELETE, INFO, the '.list' and '.fsck' targets) sent from a port
// to vlmcd (or straight to mapperd), their text payloads built and parsed,
// results typed, failures thrown as VolumeError carrying the peer's text.
//
//   using seg = Segment.joinSync(spec)
//   const port = seg.bindDynamicPort()
//   const vols = new Volumes(port, 3)            // vlmcd on port 3
//   await vols.create('vol1', { size: 10 * 2 ** 30 })
//   await vols.snapshot('vol1', 'monday')
//   await vols.clone('vol1@monday', 'vol2')
//   (await vols.info('vol2')).parent             // 'vol1@monday'
//
// docs/volumes.md describes the operations; docs/api.md the API.
import type { Port } from './port.js'
import type { Request } from './request.js'
import { XsegError, xerror } from './errors.js'

/* The limits of peers/user/volume.h (test/node/volumes.test.ts checks them against it). */
export const XV_NAME_MAX = 96
export const XV_OBJECT_SIZE_DEFAULT = 4 << 20
export const XV_OBJECT_SIZE_MIN = 64 << 10
export const XV_OBJECT_SIZE_MAX = 64 << 20
export const XV_T_LIST = '.list'
export const XV_T_FSCK = '.fsck'
export const XV_T_STATS = '.stats'

/** A volume or snapshot name: 1..96 bytes of [A-Za-z0-9_.-], not starting with '.' or '-' (xv_valid_name). */
export function validVolumeName(s: string): boolean {
  return Buffer.byteLength(s) <= XV_NAME_MAX && /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(s)
}

/** Split 'VOL' or 'VOL@SNAP' (xv_split_target); EINVAL naming what is wrong. */
export function splitTarget(t: string): { volume: string; snapshot: string | null } {
  if (typeof t !== 'string') throw xerror('EINVAL', `a volume name must be a string, not ${typeof t}`)
  const at = t.indexOf('@')
  const volume = at < 0 ? t : t.slice(0, at)
  const snapshot = at < 0 ? null : t.slice(at + 1)
  if (!validVolumeName(volume))
    throw xerror('EINVAL', `'${volume}' is not a volume name (1 to ${XV_NAME_MAX} of A-Z a-z 0-9 _ . -, not starting with . or -)`)
  if (snapshot !== null && !validVolumeName(snapshot))
    throw xerror('EINVAL', `'${snapshot}' is not a snapshot name (1 to ${XV_NAME_MAX} of A-Z a-z 0-9 _ . -, not starting with . or -)`)
  return { volume, snapshot }
}

/** A failed volume request: code is the errno name, peerMessage the peer's own text (if it sent one). */
export class VolumeError extends XsegError {
  readonly op: string
  readonly target: string
  readonly peerMessage: string | undefined

  constructor(code: string, op: string, target: string, peerMessage: string | undefined) {
    super(code, `${op} ${target}: ${peerMessage ?? describe(code)}`)
    this.name = 'VolumeError'
    this.op = op
    this.target = target
    this.peerMessage = peerMessage
  }
}

function describe(code: string): string {
  const known: Record<string, string> = {
    ENOENT: 'no such volume or snapshot', EEXIST: 'the name is taken', EBUSY: 'in use',
    EINVAL: 'invalid argument', EROFS: 'read-only', ENOTSUP: 'the peer does not serve volumes (is it vlmcd or mapperd?)',
    ENOSPC: 'no space left', EIO: 'I/O error',
  }
  return known[code] ?? 'failed'
}

export type VolumeKind = 'volume' | 'snapshot'

/** INFO of one volume or snapshot (XV_INFO_KEYS). */
export interface VolumeInfo {
  name: string
  kind: VolumeKind
  size: number
  objectSize: number
  /** 'VOL@SNAP' this clone started from, or null. */
  parent: string | null
  /** Its snapshots' names (a volume's; empty for a snapshot). */
  snapshots: string[]
  /** Volumes cloned from it (a snapshot's). */
  clones: string[]
  /** Objects it owns at the storage peer. */
  objects: number
  /** Bytes they hold. */
  bytes: number
  /** Who has it open, or null. */
  openBy: string | null
  /** Its id at the mapper (a 64-bit number, in decimal). */
  id: string
  /** Its map's format version. */
  version: number
  /** Who holds a reader lock: ro=1 opens of a volume, a snapshot's readers (its openBy too). */
  readers: string[]
}

/** One line of ls(). */
export interface VolumeEntry {
  name: string
  kind: VolumeKind
  size: number
  parent: string | null
}

/** What fsck() found (and removed, with repair). */
export interface FsckResult {
  /** Objects the storage peer holds under the volume prefix. */
  objects: number
  /** Those a map or header names. */
  named: number
  /** Those nothing names. */
  leaked: number
  /** Their names (as many as the reply could hold). */
  leakedObjects: string[]
  /** true when they were removed (repair). */
  repaired: boolean
}

export interface VolumesOptions {
  /** Hang guard of one request, in ms (default 30000). */
  timeoutMs?: number
}

/** Parse "key=value\n" lines (text of a reply); repeated keys collect in @multi. */
export function parseKeyValues(text: string, multi: string[] = []): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const line of text.split('\n')) {
    if (!line) continue
    const eq = line.indexOf('=')
    if (eq <= 0) throw xerror('EPROTO', `the peer's reply has a line that is not key=value: '${line.slice(0, 80)}'`)
    const k = line.slice(0, eq)
    const v = line.slice(eq + 1)
    if (multi.includes(k)) ((out[k] ??= []) as string[]).push(v)
    else out[k] = v
  }
  return out
}

function count(v: string | string[] | undefined, key: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n)) throw xerror('EPROTO', `the peer's reply has ${key}=${String(v)}, not a whole number`)
  return n
}

function list(v: string | string[] | undefined): string[] {
  if (typeof v !== 'string' || v === '' || v === '-') return []
  return v.split(',').filter((s) => s !== '')
}

function kind(v: string | undefined, what: string): VolumeKind {
  if (v === 'volume' || v === 'snapshot') return v
  throw xerror('EPROTO', `the peer's reply has kind=${String(v)} for ${what} (volume or snapshot)`)
}

/** A size argument: a positive whole number of bytes, a multiple of 512. */
function sizeArg(v: number | bigint, what: string): bigint {
  const n = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n
  if (n <= 0n || n % 512n) throw xerror('EINVAL', `${what}: ${String(v)} is not a positive multiple of 512 bytes`)
  return n
}

/**
 * The volume operations of peers/user/volume.h, sent from @port (a client
 * port of this process) to the volume peer on port @dst: vlmcd, or mapperd.
 * Each method sends one request and resolves with its typed result, or
 * rejects with a VolumeError (code: the errno name, peerMessage: the
 * peer's text) - or an XsegError ('EINVAL') for an argument it can tell is
 * wrong before sending. Callable from the thread that owns @port.
 */
export class Volumes {
  readonly port: Port
  readonly dst: number
  readonly timeoutMs: number

  constructor(port: Port, dst: number, opts: VolumesOptions = {}) {
    if (!Number.isInteger(dst) || dst < 0) throw xerror('EINVAL', `the volume peer's port must be a port number, not ${String(dst)}`)
    this.port = port
    this.dst = dst
    this.timeoutMs = opts.timeoutMs ?? 30000
  }

  /** CREATE @name of @opts.size bytes (objects of @opts.objectSize, default 4 MiB). */
  async create(name: string, opts: { size: number | bigint; objectSize?: number }): Promise<void> {
    const { volume, snapshot } = splitTarget(name)
    if (snapshot !== null) throw xerror('EINVAL', `create: '${name}' names a snapshot (use snapshot VOL SNAP)`)
    const size = sizeArg(opts.size, 'size')
    let text = `size=${size}\n`
    if (opts.objectSize !== undefined) {
      const o = opts.objectSize
      if (!Number.isInteger(o) || o < XV_OBJECT_SIZE_MIN || o > XV_OBJECT_SIZE_MAX || (o & (o - 1)) !== 0)
        throw xerror('EINVAL', `object size ${String(o)} is not a power of two from 64K to 64M`)
      text += `object_size=${o}\n`
    }
    await this.#call('create', volume, text)
  }

  /** SNAPSHOT of @volume named @snap (read-only, frozen now). */
  async snapshot(volume: string, snap: string): Promise<void> {
    const t = splitTarget(volume)
    if (t.snapshot !== null) throw xerror('EINVAL', `snapshot: '${volume}' is a snapshot already`)
    splitTarget(snap)
    if (snap.includes('@')) throw xerror('EINVAL', `snapshot: '${snap}' is not a snapshot name`)
    await this.#call('snapshot', t.volume, `name=${snap}\n`)
  }

  /** CLONE of snapshot @source ('VOL@SNAP') as the new volume @name (optionally larger: @opts.size). */
  async clone(source: string, name: string, opts: { size?: number | bigint } = {}): Promise<void> {
    const s = splitTarget(source)
    if (s.snapshot === null) throw xerror('EINVAL', `clone: '${source}' is not VOL@SNAP (clone a snapshot)`)
    const n = splitTarget(name)
    if (n.snapshot !== null) throw xerror('EINVAL', `clone: the new volume '${name}' cannot be a snapshot`)
    let text = `name=${name}\n`
    if (opts.size !== undefined) text += `size=${sizeArg(opts.size, 'size')}\n`
    await this.#call('clone', source, text)
  }

  /** UPDATE @name to @size bytes (grow only: EINVAL to shrink). */
  async resize(name: string, size: number | bigint): Promise<void> {
    const t = splitTarget(name)
    if (t.snapshot !== null) throw xerror('EINVAL', `resize: '${name}' is a snapshot (snapshots never change)`)
    await this.#call('update', name, `size=${sizeArg(size, 'size')}\n`)
  }

  /** DELETE @name ('VOL' or 'VOL@SNAP'); EBUSY naming the dependants or the opener. */
  async rm(name: string): Promise<void> {
    splitTarget(name)
    await this.#call('delete', name, '')
  }

  /** INFO of @name ('VOL' or 'VOL@SNAP'). */
  async info(name: string): Promise<VolumeInfo> {
    splitTarget(name)
    const kv = parseKeyValues(await this.#call('info', name, '', true))
    const s = (k: string): string | undefined => (typeof kv[k] === 'string' ? kv[k] : undefined)
    const parent = s('parent')
    const openBy = s('open_by')
    return {
      name: s('name') ?? name,
      kind: kind(s('kind'), name),
      size: count(kv.size, 'size'),
      objectSize: count(kv.object_size, 'object_size'),
      parent: parent === undefined || parent === '' || parent === '-' ? null : parent,
      snapshots: list(kv.snapshots),
      clones: list(kv.clones),
      objects: count(kv.objects, 'objects'),
      bytes: count(kv.bytes, 'bytes'),
      openBy: openBy === undefined || openBy === '' || openBy === '-' ? null : openBy,
      id: s('id') ?? '',
      version: kv.version === undefined ? 0 : count(kv.version, 'version'),
      readers: list(kv.readers),
    }
  }

  /** Every volume and snapshot, as the peer lists them. */
  async ls(): Promise<VolumeEntry[]> {
    const text = await this.#call('info', XV_T_LIST, '', true)
    const out: VolumeEntry[] = []
    for (const line of text.split('\n')) {
      if (!line) continue
      const f = line.split('\t')
      if (f.length !== 4) throw xerror('EPROTO', `the peer's list has a line that is not NAME<tab>KIND<tab>SIZE<tab>PARENT: '${line.slice(0, 80)}'`)
      out.push({ name: f[0]!, kind: kind(f[1], f[0]!), size: count(f[2], 'size'), parent: f[3] === '-' || f[3] === '' ? null : f[3]! })
    }
    return out
  }

  /** Objects at the storage peer that no map names; @opts.repair removes them. */
  async fsck(opts: { repair?: boolean } = {}): Promise<FsckResult> {
    const repair = opts.repair === true
    const kv = parseKeyValues(await this.#call(repair ? 'delete' : 'info', XV_T_FSCK, '', true), ['leaked'])
    // 'leaked' is the count first, then one line per leaked object.
    const leakedLines = (kv.leaked ?? []) as string[]
    if (!leakedLines.length) throw xerror('EPROTO', "the peer's fsck reply has no leaked=N line")
    return {
      objects: count(kv.objects, 'objects'),
      named: count(kv.named, 'named'),
      leaked: count(leakedLines[0], 'leaked'),
      leakedObjects: leakedLines.slice(1),
      repaired: repair,
    }
  }

  /** vlmcd's counters (INFO '.stats': ops, hole_reads, storage_reads, mapr, mapw, ...); ENOENT or ENOTSUP from mapperd. */
  async stats(): Promise<Record<string, number>> {
    const kv = parseKeyValues(await this.#call('info', XV_T_STATS, '', true))
    const out: Record<string, number> = {}
    for (const [k, v] of Object.entries(kv)) out[k] = count(v, k)
    return out
  }

  /** The largest data buffer this port's segment gives one request (replies to INFO are as long as fits). */
  #replyRoom(): number {
    const cfg = this.port.segment.config
    let max = cfg.requestSize
    for (const b of cfg.buffers) max = Math.max(max, b.size)
    return Math.min(max, 1 << 20)
  }

  /** Send @op on @target with the text @text; resolves with the reply's text (if @reply). */
  async #call(op: 'create' | 'snapshot' | 'clone' | 'update' | 'delete' | 'info', target: string, text: string,
    reply = false): Promise<string> {
    const payload = Buffer.from(text)
    // Room for the reply's text, or a failed reply's message.
    const room = Math.max(payload.length, reply ? this.#replyRoom() : 4096)
    const req: Request = this.port.request({ op, target, size: payload.length, dataLength: room })
    if (payload.length) req.data.set(payload)
    // The text ends at size bytes or at a NUL (volume.h): the buffer may hold an earlier request's bytes.
    if (room > payload.length) req.data[payload.length] = 0
    let r: Request
    try {
      r = await req.submit(this.dst, { signal: AbortSignal.timeout(this.timeoutMs) })
    } catch (e) {
      if (req.state === 'prepared') req.release()
      const code = (e as { code?: string }).code
      if (code === 'ABORT_ERR')
        throw new VolumeError('ETIMEDOUT', op, target, `no reply from port ${this.dst} within ${this.timeoutMs} ms`)
      if (code === 'ENOENT')
        throw new VolumeError('ENOENT', op, target, `no peer serves port ${this.dst} (is vlmcd or mapperd running there?)`)
      throw e
    }
    try {
      const n = Math.min(r.serviced, r.data.length)
      const out = n > 0 ? r.data.toString('utf8', 0, n) : ''
      if (r.failed) throw new VolumeError(r.errorCode ?? 'EIO', op, target, out.trim() || undefined)
      return out
    } finally {
      r.release()
    }
  }
}
