// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/batch.ts - many requests per crossing of the JavaScript/native
// boundary. A Batch is a reusable table of rows (a Uint32Array, B.Row words
// per request; the words are enum xnode_batch_word in
// sys/node/addon/fields.h): the client fills rows and submits them all with
// one Port.submitBatch(); replies come back as rows (state, error, serviced,
// cookie...) from Port.receiveBatch() or `for await (const b of
// port.replies())`; a server takes rows with Port.acceptBatch() or
// `port.requests()` and answers them all with Port.respondBatch(). Nothing
// is allocated per request: no Request objects, no Promises, the table is
// reused, and each batch signals its destination once.
import { B, XS_FAILED, XS_SERVED, native } from './binding.js'
import { type Core, u64, uint } from './core.js'
import { errnoName, errnoNumber, xerror } from './errors.js'
import { flagBits, opCode } from './request.js'
import type { FlagName, OpName } from './constants.js'

// The row's words as plain constants: hot loops read them without going
// through a module's export bindings (getters under CommonJS).
const ROW: number = B.Row
const W_INDEX: number = B.Index
const W_OP: number = B.Op
const W_FLAGS: number = B.Flags
const W_STATE: number = B.State
const W_ERROR: number = B.Error
const W_SIZE: number = B.Size
const W_DATA_LEN: number = B.DataLen
const W_SERVICED: number = B.Serviced
const W_OFFSET: number = B.Offset
const W_COOKIE: number = B.Cookie
const W_DATA: number = B.Data
const W_TARGET: number = B.Target
const W_PORT: number = B.Port
const addon = native
const SERVED: number = XS_SERVED
const FAILED: number = XS_FAILED
const TWO32 = 4294967296

/** A table of request rows (see the top of batch.ts). Make one with Port.batch(). */
export class Batch {
  /** How many rows it can hold. */
  readonly capacity: number
  /** The rows, B.Row words each: the native side reads and writes them. */
  readonly rows: Uint32Array
  /** Rows in use, from row 0. */
  length = 0
  /** @internal */
  readonly _core: Core
  #bytes: Uint8Array | undefined

  /** @internal */
  constructor(core: Core, capacity: number) {
    this._core = core
    this.capacity = capacity
    this.rows = new Uint32Array(capacity * ROW)
  }

  /** Forget every row (their requests must have been submitted, released or answered). */
  clear(): this {
    this.length = 0
    return this
  }

  /**
   * Append a request row for Port.submitBatch() and return its number.
   * @op a name or number; @offset bytes (number or bigint); @size bytes;
   * @dataLength the buffer to get (default @size); @target an index into
   * submitBatch's `targets` (default 0). Throws EINVAL on a bad value and
   * ENOSPC when the table is full.
   */
  add(op: OpName | number, offset: number | bigint, size: number,
    opts?: { cookie?: number | bigint; dataLength?: number; flags?: number | readonly FlagName[]; target?: number }): number {
    const i = this.length
    if (i >= this.capacity) throw xerror('ENOSPC', `the batch is full (${this.capacity} rows)`)
    const r = i * ROW
    const rows = this.rows
    const sz = isU32(size) ? size : uint(size, 'size', 0xffffffff)
    const opn = isU32(op) ? op : opCode(op)
    const off = typeof offset === 'number' && offset >= 0 && Number.isSafeInteger(offset) ? offset : u64(offset, 'offset')
    const flags = opts?.flags === undefined ? 0 : flagBits(opts.flags)
    const dlen = opts?.dataLength === undefined ? sz : uint(opts.dataLength, 'dataLength', 0xffffffff)
    const target = opts?.target === undefined ? 0 : uint(opts.target, 'target', 0xffffffff)
    const cookie = opts?.cookie === undefined ? 0 : u64(opts.cookie, 'cookie')
    rows[r + W_OP] = opn
    rows[r + W_FLAGS] = flags
    rows[r + W_SIZE] = sz
    rows[r + W_DATA_LEN] = dlen
    rows[r + W_TARGET] = target
    put64(rows, r + W_OFFSET, off)
    put64(rows, r + W_COOKIE, cookie)
    rows[r + W_STATE] = 0
    rows[r + W_ERROR] = 0
    rows[r + W_SERVICED] = 0
    this.length = i + 1
    return i
  }

  /** The request index of row @i in the segment's request table. */
  index(i: number): number {
    return this.rows[i * ROW + W_INDEX]!
  }
  opCode(i: number): number {
    return this.rows[i * ROW + W_OP]!
  }
  flags(i: number): number {
    return this.rows[i * ROW + W_FLAGS]!
  }
  size(i: number): number {
    return this.rows[i * ROW + W_SIZE]!
  }
  dataLength(i: number): number {
    return this.rows[i * ROW + W_DATA_LEN]!
  }
  /** Bytes served (a reply's; a server sets it with respond()). */
  serviced(i: number): number {
    return this.rows[i * ROW + W_SERVICED]!
  }
  /** The offset as a number (exact below 2^53). */
  offset(i: number): number {
    const r = i * ROW + W_OFFSET
    return this.rows[r + 1]! * TWO32 + this.rows[r]!
  }
  offsetBig(i: number): bigint {
    const r = i * ROW + W_OFFSET
    return (BigInt(this.rows[r + 1]!) << 32n) | BigInt(this.rows[r]!)
  }
  /** The cookie as a number (exact below 2^53). */
  cookie(i: number): number {
    const r = i * ROW + W_COOKIE
    return this.rows[r + 1]! * TWO32 + this.rows[r]!
  }
  cookieBig(i: number): bigint {
    const r = i * ROW + W_COOKIE
    return (BigInt(this.rows[r + 1]!) << 32n) | BigInt(this.rows[r]!)
  }
  /** A reply or accepted row: the client port it came from. */
  src(i: number): number {
    return this.rows[i * ROW + W_PORT]!
  }

  /** A reply row: served and not failed. */
  ok(i: number): boolean {
    const st = this.rows[i * ROW + W_STATE]!
    return (st & SERVED) !== 0 && (st & FAILED) === 0
  }
  /** A reply row: failed (see errno). */
  failed(i: number): boolean {
    return (this.rows[i * ROW + W_STATE]! & FAILED) !== 0
  }
  /** A reply row: the errno of a failure (positive), or 0. */
  errno(i: number): number {
    return this.failed(i) ? this.rows[i * ROW + W_ERROR]! : 0
  }
  /** A reply row: the errno name of a failure ('ECONNRESET'...), or undefined. */
  errorCode(i: number): string | undefined {
    const e = this.errno(i)
    return e ? errnoName(e) : undefined
  }

  /** Row @i's target name (a reply's or an accepted request's; one native call and a string). */
  target(i: number): string {
    return addon.req_target(this._core.h, this.index(i))
  }

  /** The whole segment as bytes: row @i's data is at dataOffset(i), dataLength(i) long. */
  get bytes(): Uint8Array {
    if (!this.#bytes || this.#bytes.byteLength === 0) this.#bytes = new Uint8Array(this._core.ab())
    return this.#bytes
  }
  /** The byte offset of row @i's data in `bytes`, or -1 if it has no buffer. */
  dataOffset(i: number): number {
    const r = i * ROW + W_DATA
    if (this.rows[r] === 0xffffffff && this.rows[r + 1] === 0xffffffff) return -1
    return this.rows[r + 1]! * TWO32 + this.rows[r]!
  }
  /** Row @i's data buffer: a Buffer view into the segment (one object; bytes + dataOffset make none). */
  data(i: number): Buffer {
    const off = this.dataOffset(i)
    return off < 0 ? Buffer.alloc(0) : Buffer.from(this._core.ab(), off, this.dataLength(i))
  }

  /** Server: answer row @i as served, @serviced bytes (Port.respondBatch sends it). */
  respond(i: number, serviced = 0): void {
    const r = i * ROW
    this.rows[r + W_SERVICED] = uint(serviced, 'serviced', 0xffffffff)
    this.rows[r + W_ERROR] = 0
  }
  /** Server: answer row @i as failed with @code (an errno name or positive number). */
  fail(i: number, code: string | number = 'EIO'): void {
    const n = typeof code === 'number' ? uint(code, 'errno', 4095) : errnoNumber(code)
    if (!n) throw xerror('EINVAL', `unknown errno name '${String(code)}'`)
    this.rows[i * ROW + W_ERROR] = n
  }
}

/** A whole number in [0, 2^32): the common case, checked without a call. */
function isU32(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= 0xffffffff && Math.floor(v) === v
}

function put64(rows: Uint32Array, w: number, v: number | bigint): void {
  if (typeof v === 'number') {
    rows[w] = v >>> 0
    rows[w + 1] = Math.floor(v / TWO32)
  } else {
    rows[w] = Number(v & 0xffffffffn)
    rows[w + 1] = Number(v >> 32n)
  }
}

const NO_TARGET: readonly string[] = ['']

/**
 * @internal A port's client-side batch bookkeeping: which requests went out
 * through submitBatch (a byte per request), how many are in flight, the
 * ports they went to (for the dead-peer check), and the inbox of reply rows
 * taken from the queue but not yet handed out.
 */
export class BatchClient {
  readonly owned: Uint8Array
  inflight = 0
  readonly dsts = new Set<number>()
  inbox: Batch
  spare: Batch | undefined
  readonly #core: Core
  readonly #max: number

  constructor(core: Core, nrRequests: number) {
    this.#core = core
    this.#max = nrRequests
    this.owned = new Uint8Array(nrRequests)
    this.inbox = new Batch(core, Math.min(256, nrRequests))
  }

  submit(port: number, dst: number, batch: Batch, targets: readonly (string | Buffer)[] | undefined,
    fill: ((b: Batch, n: number) => void) | undefined): number {
    const h = this.#core.h
    const n = batch.length
    if (n === 0) return 0
    const k = addon.batch_get(h, port, batch.rows, 0, n, targets ?? NO_TARGET)
    if (k === 0) return 0
    let s: number
    try {
      if (fill) fill(batch, k)
      s = addon.batch_submit(h, dst, batch.rows, 0, k)
    } catch (e) {
      addon.batch_put(h, batch.rows, 0, k)
      throw e
    }
    if (s < k) addon.batch_put(h, batch.rows, s, k - s)
    const rows = batch.rows
    const owned = this.owned
    for (let i = 0; i < s; i++) owned[rows[i * ROW + W_INDEX]!] = 1
    this.inflight += s
    this.dsts.add(dst)
    return s
  }

  /** Take every reply queued to @port: ours into the inbox, the others to @other. */
  receive(port: number, other: (idx: number) => void): void {
    const h = this.#core.h
    for (;;) {
      let box = this.inbox
      if (box.length === box.capacity) box = this.#grow()
      const room = box.capacity - box.length
      if (room === 0) return // cannot happen either
      const first = box.length
      const k = addon.batch_receive(h, port, box.rows, first, room)
      const rows = box.rows
      let w = first
      for (let j = first; j < first + k; j++) {
        const idx = rows[j * ROW + W_INDEX]!
        if (this.owned[idx]) {
          this.owned[idx] = 0
          this.inflight--
          if (w !== j) rows.copyWithin(w * ROW, j * ROW, (j + 1) * ROW)
          w++
        } else {
          other(idx)
        }
      }
      box.length = w
      if (this.inflight === 0) this.dsts.clear()
      if (k < room) return
    }
  }

  /** The inbox, handed out whole; an empty table takes its place. */
  take(): Batch {
    const out = this.inbox
    const next = this.spare ?? new Batch(this.#core, out.capacity)
    next.length = 0
    this.spare = undefined
    this.inbox = next
    return out
  }

  /** Move up to @into.capacity rows of the inbox into @into; returns how many. */
  moveTo(into: Batch): number {
    const box = this.inbox
    const m = Math.min(box.length, into.capacity)
    if (m > 0) {
      into.rows.set(box.rows.subarray(0, m * ROW))
      box.rows.copyWithin(0, m * ROW, box.length * ROW)
      box.length -= m
    }
    into.length = m
    return m
  }

  #grow(): Batch {
    const old = this.inbox
    if (old.capacity >= this.#max) return old // cannot happen: each row is a request we hold
    const box = new Batch(this.#core, Math.min(this.#max, old.capacity * 2))
    box.rows.set(old.rows)
    box.length = old.length
    this.inbox = box
    return box
  }

  /** The port closed: nothing is in flight any more. */
  reset(): void {
    this.owned.fill(0)
    this.inflight = 0
    this.dsts.clear()
    this.inbox.length = 0
  }
}
