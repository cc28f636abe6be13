// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/request.ts - a request slot of the segment held by this
// process, through its life:
//
//   client: port.request() -> 'prepared' -> submit(dst) -> 'submitted'
//           -> (reply) 'received' -> release() -> 'released'
//   server: port.accept() -> 'accepted' -> respond() | fail() -> 'responded'
//                                        -> forward(dst) -> 'forwarded'
//                                           -> (reply) 'accepted' -> respond()...
//                                        -> pass(dst) -> 'passed' (dst answers
//                                           the client; no reply comes back)
//
// Fields and data are readable and writable while this process holds the
// request ('prepared', 'received', 'accepted'); `data` is a Buffer view into
// the segment (zero-copy), valid until the request leaves this process.
import { F, XS_FAILED, XS_SERVED, native } from './binding.js'
import { Flag, Op, opName, type FlagName, type OpName } from './constants.js'
import { type Core, u64, uint } from './core.js'
import { about, errnoName, errnoNumber, xerror, XsegError } from './errors.js'
import type { Port } from './port.js'

export type RequestState =
  | 'prepared'
  | 'submitted'
  | 'received'
  | 'accepted'
  | 'forwarded'
  | 'passed'
  | 'responded'
  | 'released'

export interface WaitOptions {
  /** Stop waiting (the Promise rejects with code 'ABORT_ERR'). */
  signal?: AbortSignal
}

/** What a client sets on a new request (Port.request). */
export interface RequestOptions {
  /** The op, by name or number (default 'ping'). */
  op?: OpName | number
  /** The target name (at most 256 bytes as UTF-8). */
  target?: string | Buffer
  /** Byte offset in the target (default 0). */
  offset?: number | bigint
  /** Bytes to read or write (default: the data length). */
  size?: number
  /** XF_* flags: a number or names (['fua']). */
  flags?: number | readonly FlagName[]
  /** Bytes copied into the request's buffer (for writes). */
  data?: Uint8Array
  /** Size of the request's data buffer (default: data's length, else size). */
  dataLength?: number
  /** An opaque value of the requester's, returned with the reply. */
  cookie?: bigint | number
}

/** Turn flag names or a number into XF_* bits; EINVAL on an unknown name. */
export function flagBits(flags: number | readonly FlagName[] | undefined): number {
  if (flags === undefined) return 0
  if (typeof flags === 'number') return uint(flags, 'flags', 0xffffffff)
  let bits = 0
  for (const f of flags) {
    const b = (Flag as Record<string, number>)[f]
    if (b === undefined) throw xerror('EINVAL', `unknown request flag '${String(f)}'`)
    bits |= b
  }
  return bits
}

/** An op name or number as its number; EINVAL if unknown. */
export function opCode(op: OpName | number | undefined): number {
  if (op === undefined) return Op.ping
  if (typeof op === 'number') return uint(op, 'op', 0xffffffff)
  const n = (Op as Record<string, number>)[op]
  if (n === undefined) throw xerror('EINVAL', `unknown op '${String(op)}'`)
  return n
}

const HELD: readonly RequestState[] = ['prepared', 'received', 'accepted']

export class Request {
  /** The request's index in the segment's request table. */
  readonly index: number
  /** The port of this process that holds it (client or server side). */
  readonly port: Port
  #core: Core
  #state: RequestState
  #data: Buffer | undefined

  /** @internal */
  constructor(core: Core, port: Port, index: number, state: RequestState) {
    this.#core = core
    this.port = port
    this.index = index
    this.#state = state
  }

  /** Where it is in its life (see the top of request.ts). */
  get state(): RequestState {
    return this.#state
  }

  /** @internal Moves it to @state; the data view is dropped when it leaves us. */
  _setState(state: RequestState): void {
    this.#state = state
    if (!HELD.includes(state)) this.#data = undefined
  }

  #held(what: string): void {
    this.#core.live()
    if (!HELD.includes(this.#state))
      throw xerror('EPERM', `cannot ${what} a request that is ${this.#state}`)
  }

  #get(f: (typeof F)[keyof typeof F], what: string): number | bigint {
    this.#held(`read ${what} of`)
    return native.req_field(this.#core.h, this.index, f)
  }

  #set(f: (typeof F)[keyof typeof F], v: number | bigint, what: string): void {
    this.#held(`set ${what} of`)
    native.req_set_field(this.#core.h, this.index, f, v)
  }

  get op(): OpName | `op${number}` {
    return opName(this.opCode)
  }
  set op(v: OpName | number) {
    this.#set(F.Op, opCode(v), 'the op')
  }
  /** The op's number. */
  get opCode(): number {
    return this.#get(F.Op, 'the op') as number
  }

  /** XF_* bits (see Flag). */
  get flags(): number {
    return this.#get(F.Flags, 'the flags') as number
  }
  set flags(v: number | readonly FlagName[]) {
    this.#set(F.Flags, flagBits(v), 'the flags')
  }

  get offset(): bigint {
    return this.#get(F.Offset, 'the offset') as bigint
  }
  set offset(v: number | bigint) {
    this.#set(F.Offset, u64(v, 'offset'), 'the offset')
  }

  get size(): number {
    return this.#get(F.Size, 'the size') as number
  }
  set size(v: number) {
    this.#set(F.Size, uint(v, 'size'), 'the size')
  }

  /** Bytes the server handled (set by the server, read by the client). */
  get serviced(): number {
    return this.#get(F.Serviced, 'serviced') as number
  }
  set serviced(v: number) {
    this.#set(F.Serviced, uint(v, 'serviced'), 'serviced')
  }

  get cookie(): bigint {
    return this.#get(F.Cookie, 'the cookie') as bigint
  }
  set cookie(v: number | bigint) {
    this.#set(F.Cookie, u64(v, 'cookie'), 'the cookie')
  }

  /** Unique per get (a header counter). */
  get serial(): bigint {
    return this.#get(F.Serial, 'the serial') as bigint
  }

  /** The client port, and the port it was submitted to. */
  get src(): number {
    return this.#get(F.Src, 'the source') as number
  }
  get dst(): number {
    return this.#get(F.Dst, 'the destination') as number
  }

  get target(): string {
    this.#held('read the target of')
    return native.req_target(this.#core.h, this.index)
  }

  /** The data buffer: a Buffer view into the segment, never a copy. */
  get data(): Buffer {
    this.#held('read the data of')
    if (!this.#data || this.#data.buffer.byteLength === 0) {
      const off = native.req_data(this.#core.h, this.index)
      const len = native.req_field(this.#core.h, this.index, F.DataLen) as number
      // Buffer.from bounds-checks against the segment: a hostile data_len cannot reach past it.
      this.#data = off < 0 ? Buffer.alloc(0) : Buffer.from(this.#core.ab(), off, len)
    }
    return this.#data
  }

  /** Served and not failed. */
  get ok(): boolean {
    const st = this.#get(F.State, 'the state') as number
    return (st & XS_SERVED) !== 0 && (st & XS_FAILED) === 0
  }

  get failed(): boolean {
    return ((this.#get(F.State, 'the state') as number) & XS_FAILED) !== 0
  }

  /** The errno of a failed reply (positive), or 0. */
  get errno(): number {
    return this.failed ? (this.#get(F.Error, 'the error') as number) : 0
  }

  /** The errno name of a failed reply ('EILSEQ'...), or undefined. */
  get errorCode(): string | undefined {
    const e = this.errno
    return e ? errnoName(e) : undefined
  }

  /** Throw an XsegError with the reply's code if it failed; else return it. */
  check(): this {
    const code = this.errorCode
    if (code) throw new XsegError(code, `${this.op} of '${this.target}' failed`)
    return this
  }

  // ------------------------------------------------------------- client

  /**
   * Submit to port @dst and wait for the reply: resolves with this request,
   * now 'received' (look at ok / errorCode, then release()). Rejects with
   * EAGAIN when @dst's queue is full, ENOENT when nobody bound @dst,
   * ABORT_ERR on abort (the reply is then released when it comes).
   */
  submit(dst: number, opts?: WaitOptions): Promise<this> {
    try {
      this.port._checkLoopable()
      if (!this.#submit(dst, 'submit')) throw xerror('EAGAIN', `the queue of port ${dst} is full`)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.reply(opts)
  }

  /** Submit without waiting: false when @dst's queue is full. Then await reply(). */
  trySubmit(dst: number): boolean {
    return this.#submit(dst, 'submit')
  }

  #submit(dst: number, what: string): boolean {
    this.#core.live()
    if (this.#state !== 'prepared' && this.#state !== 'received')
      throw xerror('EPERM', `cannot ${what} a request that is ${this.#state}`)
    dst = uint(dst, 'the destination port', 0xfffffffe)
    try {
      return this.port._submit(this, dst)
    } catch (e) {
      const seg = this.port.segment
      throw about(e, `port ${dst} of ${seg.type}:${seg.name}`, (x) =>
        x.code === 'ENOENT' ? 'is not bound' : x.code === 'EINVAL' ? 'is not a port of the segment' : undefined)
    }
  }

  /** Wait for the reply of a submitted request (after trySubmit). */
  reply(opts?: WaitOptions): Promise<this> {
    if (this.#state !== 'submitted' && this.#state !== 'forwarded')
      return Promise.reject(xerror('EPERM', `no reply to wait for: the request is ${this.#state}`))
    return this.port._reply(this, opts?.signal) as Promise<this>
  }

  /** Give the request and its buffer back (client side). EPERM if not held. */
  release(): void {
    this.#core.live()
    if (this.#state !== 'prepared' && this.#state !== 'received')
      throw xerror('EPERM', `cannot release a request that is ${this.#state}`)
    native.req_put(this.#core.h, this.index)
    this._setState('released')
  }

  // ------------------------------------------------------------- server

  /** Reply served (server side), optionally setting `serviced` first. */
  respond(opts?: { serviced?: number }): void {
    this.#held('respond to')
    if (this.#state !== 'accepted') throw xerror('EPERM', `cannot respond to a request that is ${this.#state}`)
    if (opts?.serviced !== undefined) this.serviced = opts.serviced
    native.req_respond(this.#core.h, this.index)
    this._setState('responded')
  }

  /** Reply failed with @error: an errno name ('EIO') or a positive number. */
  fail(error: string | number = 'EIO'): void {
    this.#held('fail')
    if (this.#state !== 'accepted') throw xerror('EPERM', `cannot fail a request that is ${this.#state}`)
    const n = typeof error === 'number' ? uint(error, 'errno', 4095) : errnoNumber(error)
    if (!n) throw xerror('EINVAL', `unknown errno name '${String(error)}'`)
    native.req_fail(this.#core.h, this.index, n)
    this._setState('responded')
  }

  /**
   * Pass an accepted request on to port @dst with no return hop (xseg_pass):
   * @dst's reply goes where this port's would have gone (the client, or the
   * hop before this one) and never comes back here; the request is no longer
   * this process's ('passed'). With `readdress`, the next hop sees that
   * target, offset and flags, and the one the reply goes to sees the ones
   * it sent again (xseg_readdress; once per request, EBUSY after, ENOSPC if
   * both targets do not fit in 240 bytes). Throws EAGAIN (queue full),
   * ENOENT (nobody serves @dst); the request is then still 'accepted' (and
   * already readdressed: retry with pass(dst) alone).
   */
  pass(dst: number, readdress?: { target: string | Buffer; offset?: bigint | number; flags?: number | readonly FlagName[] }): void {
    this.#held('pass')
    if (this.#state !== 'accepted') throw xerror('EPERM', `cannot pass a request that is ${this.#state}`)
    const to = uint(dst, 'the destination port', 0xfffffffe)
    if (readdress) {
      const t = readdress.target
      if (typeof t !== 'string' && !Buffer.isBuffer(t)) throw xerror('EINVAL', 'the target must be a string or a Buffer')
      native.req_readdress(this.#core.h, this.index, t, u64(readdress.offset ?? 0n, 'offset'), flagBits(readdress.flags))
    }
    const r = native.req_pass(this.#core.h, this.index, this.port.number, to)
    if (r < 0) throw xerror('EAGAIN', `the queue of port ${dst} is full`)
    this._setState('passed')
  }

  /**
   * Pass an accepted request on to port @dst; resolves when its reply comes
   * back through this port (the request is 'accepted' again: respond() to
   * send it on to the client). Rejects with EAGAIN (queue full), ENOSPC
   * (the return path is full: the segment's max_hops, 4 unless its spec says), ENOENT.
   */
  forward(dst: number, opts?: WaitOptions): Promise<this> {
    try {
      this.#held('forward')
      if (this.#state !== 'accepted') throw xerror('EPERM', `cannot forward a request that is ${this.#state}`)
      this.port._checkLoopable()
      this.port._forward(this, uint(dst, 'the destination port', 0xfffffffe))
    } catch (e) {
      return Promise.reject(e)
    }
    return this.reply(opts)
  }
}
