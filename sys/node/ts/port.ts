// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/port.ts - a port this process bound: a client (requests,
// replies), a server (accept, serve), or both.
//
// Wake-ups: a port of the posixfd (or segdev) peer type is watched by libuv
// (the addon's port_watch): each wake-up drains the FIFO (the eventfd) and calls #wake, which takes the
// replies queued to the port (resolving the submit() Promises) and tells the
// servers waiting on it. The watcher keeps the event loop alive only while a
// reply or a server waits on the port.
//
// Worker threads may instead join with the futex (or segdev) peer type and
// block in waitSync(); the main thread never blocks.
import { isMainThread } from 'node:worker_threads'
import { F, XS_FAILED, native, type NativePortInfo } from './binding.js'
import { Batch, BatchClient } from './batch.js'
import { type Core, u64, uint } from './core.js'
import { abortError, errnoNumber, xerror, type XsegError } from './errors.js'
import { flagBits, opCode, Request, type RequestOptions, type WaitOptions } from './request.js'
import type { Segment } from './segment.js'

/** A submitted (or forwarded) request of this port, until its reply is taken. */
interface Pending {
  req: Request
  /** The port it went to (to notice when that peer dies). */
  dst: number
  /** Set by reply(): who waits. */
  waiter?: { resolve: (r: Request) => void; reject: (e: unknown) => void; unlisten?: () => void }
  /** The reply came before anybody waited. */
  arrived: boolean
  /** The waiter gave up (abort): release the reply when it comes. */
  abandoned: boolean
}

export interface ServeOptions extends WaitOptions {
  /** Requests served at once (accepted and not yet answered); default 64. */
  concurrency?: number
}

/**
 * A request handler: respond() / fail() / forward() the request, or return
 * (then it is responded served) or throw (then it fails with the error's
 * errno `code`, else EIO). May be async.
 */
export type Handler = (req: Request) => void | Promise<void>

export type PortInfo = NativePortInfo

/** Options of Port.replies() and Port.requests(). */
export interface SpinOptions extends WaitOptions {
  /** Poll the queue this many microseconds before sleeping (default 0: sleep at once). */
  spinUs?: number
}

/** Call @look until it is true or @us microseconds passed; its last answer. */
function spinFor(us: number, look: () => boolean): boolean {
  const end = performance.now() + us / 1000
  do {
    if (look()) return true
  } while (performance.now() < end)
  return false
}

const BATCH = 64
const ECONNRESET = errnoNumber('ECONNRESET')!

export class Port {
  /** The port number. */
  readonly number: number
  readonly segment: Segment
  #core: Core
  #closed = false
  #pending = new Map<number, Pending>()
  #waiting = 0 // pending entries not abandoned
  #listeners = new Set<() => void>()
  #watching = false
  #refd = false
  #batch = new Int32Array(BATCH)
  #watchdog: NodeJS.Timeout | undefined
  #b: BatchClient | undefined // made by the first submitBatch

  /** @internal */
  constructor(core: Core, segment: Segment, number: number) {
    this.#core = core
    this.segment = segment
    this.number = number
  }

  /** A dynamic port (bound with bindDynamicPort) rather than a static one. */
  get dynamic(): boolean {
    return this.number >= this.segment.config.dynports
  }

  get closed(): boolean {
    return this.#closed || this.#core.closed
  }

  #live(): void {
    this.#core.live()
    if (this.#closed) throw xerror('EBADF', `port ${this.number} is closed`)
  }

  // -------------------------------------------------------------- client

  /**
   * A new request from this (client) port, prepared with @opts. Throws
   * EAGAIN when no request is free, ENOBUFS when no data buffer is, E2BIG
   * when no buffer class is large enough.
   */
  request(opts: RequestOptions = {}): Request {
    const r = this.tryRequest(opts)
    if (!r) throw xerror('EAGAIN', 'no free request in the segment')
    return r
  }

  /** As request(), but null when no request is free. */
  tryRequest(opts: RequestOptions = {}): Request | null {
    this.#live()
    const op = opCode(opts.op)
    const flags = flagBits(opts.flags)
    const offset = u64(opts.offset ?? 0, 'offset')
    const data = opts.data
    if (data !== undefined && !(data instanceof Uint8Array)) throw xerror('EINVAL', 'data must be a Uint8Array')
    const size = uint(opts.size ?? data?.length ?? opts.dataLength ?? 0, 'size')
    const dataLength = uint(opts.dataLength ?? data?.length ?? size, 'dataLength')
    if (data && data.length > dataLength) throw xerror('EINVAL', 'data is longer than dataLength')
    const target = opts.target ?? ''
    if (typeof target !== 'string' && !Buffer.isBuffer(target)) throw xerror('EINVAL', 'target must be a string or a Buffer')
    if (Buffer.byteLength(target) > 256) throw xerror('ENAMETOOLONG', 'the target is longer than 256 bytes')
    const cookie = opts.cookie === undefined ? undefined : u64(opts.cookie, 'cookie')

    const h = this.#core.h
    const idx = native.req_get(h, this.number)
    if (idx < 0) return null
    const req = new Request(this.#core, this, idx, 'prepared')
    try {
      native.req_prep(h, idx, target, dataLength)
      native.req_set_io(h, idx, op, flags, offset, size)
      if (cookie !== undefined) native.req_set_field(h, idx, F.Cookie, cookie)
      if (data && data.length) req.data.set(data)
    } catch (e) {
      req.release()
      throw e
    }
    return req
  }

  /** @internal Throw ENOTSUP unless replies can be awaited here (before submitting). */
  _checkLoopable(): void {
    if (!this.#loopable) throw this.#notLoopable()
  }

  /**
   * @internal Submit @req to @dst; false when the queue is full. The addon
   * signals the port the request was queued to (dst's redirect, if any).
   */
  _submit(req: Request, dst: number): boolean {
    this.#watch() // before the reply can come: no wake-up may be lost
    const r = native.req_submit(this.#core.h, req.index, dst)
    if (r < 0) return false
    req._setState('submitted')
    this.#pending.set(req.index, { req, dst, arrived: false, abandoned: false })
    return true
  }

  /** @internal Forward accepted @req (held by this port) to @dst. */
  _forward(req: Request, dst: number): void {
    this.#watch()
    const r = native.req_forward(this.#core.h, req.index, this.number, dst)
    if (r < 0) throw xerror('EAGAIN', `the queue of port ${dst} is full`)
    req._setState('forwarded')
    this.#pending.set(req.index, { req, dst, arrived: false, abandoned: false })
  }

  /** @internal The reply of submitted or forwarded @req. */
  _reply(req: Request, signal?: AbortSignal): Promise<Request> {
    const p = this.#pending.get(req.index)
    if (!p || p.req !== req) return Promise.reject(xerror('EPERM', 'this port has no reply coming for the request'))
    if (p.waiter) return Promise.reject(xerror('EBUSY', 'somebody already waits for this reply'))
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (!p.arrived) this.#receive()
    if (!p.arrived && !this.#loopable) return Promise.reject(this.#notLoopable())
    if (p.arrived) {
      this.#pending.delete(req.index)
      req._setState(req.state === 'forwarded' ? 'accepted' : 'received')
      const gone = this.#peerGone(p)
      return gone ? Promise.reject(gone) : Promise.resolve(req)
    }
    return new Promise<Request>((resolve, reject) => {
      p.waiter = { resolve, reject }
      if (signal) {
        const onAbort = (): void => {
          // The reply still comes: #arrived releases it then.
          p.abandoned = true
          p.waiter = undefined
          this.#waiting--
          this.#ref()
          reject(abortError(signal))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        p.waiter.unlisten = () => signal.removeEventListener('abort', onAbort)
      }
      this.#waiting++
      this.#ref()
    })
  }

  /** Take every reply queued to the port and hand each to its waiter. */
  #receive(): void {
    const h = this.#core.h
    if (this.#b) {
      this.#b.receive(this.number, this.#other)
      return
    }
    for (;;) {
      const n = native.req_receive_batch(h, this.number, this.#batch)
      for (let i = 0; i < n; i++) this.#arrived(this.#batch[i]!)
      if (n < BATCH) return
    }
  }

  #other = (idx: number): void => this.#arrived(idx)

  #arrived(idx: number): void {
    const p = this.#pending.get(idx)
    if (!p) {
      // Nobody submitted it through this module: give it back.
      this.#orphan(idx)
      return
    }
    const forwarded = p.req.state === 'forwarded'
    if (p.abandoned) {
      this.#pending.delete(idx)
      p.req._setState(forwarded ? 'accepted' : 'received')
      if (forwarded) native.req_fail(this.#core.h, idx, errnoNumber('ECANCELED')!)
      else native.req_put(this.#core.h, idx)
      p.req._setState(forwarded ? 'responded' : 'released')
      return
    }
    if (!p.waiter) {
      p.arrived = true // handed over (and its state moved) by _reply or receiveSync
      return
    }
    this.#pending.delete(idx)
    p.req._setState(forwarded ? 'accepted' : 'received')
    p.waiter.unlisten?.()
    this.#waiting--
    this.#ref()
    const gone = this.#peerGone(p)
    if (gone) p.waiter.reject(gone)
    else p.waiter.resolve(p.req)
  }

  /**
   * A reply that failed with ECONNRESET was failed back by recovery (or by a
   * hop that left): the peer serving it went away. That is an error, not a
   * reply: the request is released (a forwarded one stays accepted, for the
   * handler to fail) and the waiter gets an XsegError with code ECONNRESET.
   */
  #peerGone(p: Pending): XsegError | undefined {
    const h = this.#core.h
    const idx = p.req.index
    if (!((native.req_field(h, idx, F.State) as number) & XS_FAILED)) return undefined
    if ((native.req_field(h, idx, F.Error) as number) !== ECONNRESET) return undefined
    if (p.req.state === 'received') p.req.release()
    return xerror('ECONNRESET', `the peer serving port ${p.dst} went away before replying`)
  }

  /**
   * While replies are awaited, look every peerCheckMs at the ports they
   * went to: if one's owner died (or left), run recovery, which fails its
   * requests back here (ECONNRESET), so no waiter hangs on a dead peer.
   */
  #checkPeers(): void {
    const batched = this.#b !== undefined && this.#b.inflight > 0
    if (this.closed || (this.#waiting === 0 && !batched)) {
      this.#ref() // nothing to watch: stop the timer
      return
    }
    const h = this.#core.h
    const seen = new Set<number>()
    let dead = false
    if (batched) for (const d of this.#b!.dsts) if (this.#gone(d)) dead = true
    for (const p of this.#pending.values()) {
      if (!p.waiter || seen.has(p.dst)) continue
      seen.add(p.dst)
      if (this.#gone(p.dst)) {
        dead = true
        break
      }
    }
    if (!dead) return
    try {
      native.seg_recover(h)
    } catch {
      // EALREADY: another peer is recovering; its work reaches us the same way.
    }
    this.#receive()
    // Rows failed back to batched requests: wake whoever waits in replies().
    if (this.#b && this.#b.inbox.length) for (const fn of [...this.#listeners]) fn()
  }

  /** Is the peer of port @dst (or of its redirect) dead, or the port left? */
  #gone(dst: number): boolean {
    const h = this.#core.h
    try {
      const info = native.port_info(h, dst)
      if (info.state === 'free' || (info.state === 'bound' && !info.alive)) return true
      if (info.redirect !== null) {
        const via = native.port_info(h, info.redirect)
        if (via.state === 'free' || (via.state === 'bound' && !via.alive)) return true
      }
      return false
    } catch {
      return true
    }
  }

  #orphan(idx: number): void {
    const h = this.#core.h
    const src = native.req_field(h, idx, F.Src) as number
    if (src === this.number) native.req_put(h, idx)
    else native.req_fail(h, idx, errnoNumber('ECANCELED')!)
  }

  // -------------------------------------------------------------- server

  /**
   * The requests submitted to this port, as they come:
   * `for await (const req of port.accept()) { ...; req.respond() }`.
   * Throws an AbortError when @opts.signal aborts; ends when the port or
   * segment closes.
   */
  accept(opts?: WaitOptions): AsyncIterableIterator<Request> {
    const signal = opts?.signal
    let done = false
    const next = async (): Promise<IteratorResult<Request, undefined>> => {
      for (;;) {
        if (done || this.closed) return { done: true, value: undefined }
        if (signal?.aborted) throw abortError(signal)
        if (!this.#loopable) throw this.#notLoopable()
        this.#watch() // before looking: a request queued from now on wakes us
        const req = this.acceptSync()
        if (req) return { done: false, value: req }
        await this.#nextWake(signal)
      }
    }
    return {
      next,
      return: async () => {
        done = true
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }

  /** Accept one request without waiting, or null. */
  acceptSync(): Request | null {
    this.#live()
    const idx = native.req_accept(this.#core.h, this.number)
    return idx < 0 ? null : new Request(this.#core, this, idx, 'accepted')
  }

  /** Resolves at the port's next wake-up. */
  #nextWake(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#listeners.delete(fn)
        this.#ref()
        reject(abortError(signal!))
      }
      const fn = (): void => {
        this.#listeners.delete(fn)
        signal?.removeEventListener('abort', onAbort)
        this.#ref()
        resolve() // the caller looks again (and sees a closed port)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#listeners.add(fn)
      this.#ref()
    })
  }

  /**
   * Serve the port with @handler until @opts.signal aborts or the port
   * closes; resolves once the requests in hand are answered.
   */
  serve(handler: Handler, opts: ServeOptions = {}): Promise<void> {
    const signal = opts.signal
    const limit = uint(opts.concurrency ?? 64, 'concurrency', 1 << 20)
    if (limit < 1) return Promise.reject(xerror('EINVAL', 'concurrency must be at least 1'))
    try {
      this.#live()
      if (!this.#loopable) throw this.#notLoopable()
    } catch (e) {
      return Promise.reject(e)
    }
    if (signal?.aborted) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const h = this.#core.h
      const batch = new Int32Array(Math.min(limit, BATCH))
      let inflight = 0
      let stopped = false
      let failure: unknown

      const finish = (): void => {
        if (inflight === 0) {
          if (failure) reject(failure)
          else resolve()
        }
      }
      const stop = (): void => {
        if (stopped) return
        stopped = true
        this.#listeners.delete(pump)
        signal?.removeEventListener('abort', stop)
        this.#ref()
        finish()
      }
      const answer = (req: Request, err?: unknown): void => {
        if (req.state === 'accepted' && !this.closed) {
          if (err === undefined) req.respond()
          else {
            const code = (err as { code?: unknown } | null)?.code
            req.fail((typeof code === 'string' && errnoNumber(code)) || 'EIO')
          }
        }
        inflight--
        if (stopped) finish()
        else if (inflight === limit - 1) pump()
      }
      const run = (req: Request): void => {
        let r: void | Promise<void>
        try {
          r = handler(req)
        } catch (e) {
          answer(req, e)
          return
        }
        if (r && typeof (r as Promise<void>).then === 'function')
          (r as Promise<void>).then(
            () => answer(req),
            (e: unknown) => answer(req, e ?? new Error('rejected')),
          )
        else answer(req)
      }
      const pump = (): void => {
        if (stopped) return
        if (this.closed) {
          stop()
          return
        }
        while (inflight < limit) {
          const want = Math.min(limit - inflight, batch.length)
          let n: number
          try {
            n = native.req_accept_batch(h, this.number, want === batch.length ? batch : batch.subarray(0, want))
          } catch (e) {
            failure = e
            stop()
            return
          }
          for (let i = 0; i < n; i++) {
            inflight++
            run(new Request(this.#core, this, batch[i]!, 'accepted'))
          }
          if (n < want) break
        }
      }

      signal?.addEventListener('abort', stop, { once: true })
      try {
        this.#watch()
      } catch (e) {
        reject(e)
        return
      }
      this.#listeners.add(pump)
      this.#ref()
      pump()
    })
  }

  // ------------------------------------------------------------ batches

  /**
   * A reusable table of @capacity request rows for this port's segment
   * (see batch.ts): fill it with add() and submitBatch(), or pass it to
   * receiveBatch() / acceptBatch().
   */
  batch(capacity = 64): Batch {
    this.#live()
    const n = uint(capacity, 'capacity', 1 << 20)
    if (n < 1) throw xerror('EINVAL', 'a batch needs at least 1 row')
    return new Batch(this.#core, n)
  }

  #ours(batch: Batch): void {
    if (!(batch instanceof Batch) || batch._core !== this.#core) throw xerror('EINVAL', 'the batch is not of this segment')
  }

  /**
   * Submit the rows of @batch to port @dst in one call, signaling it once.
   * Returns how many rows, from row 0, were submitted: fewer than
   * `batch.length` when the segment has no free request (or buffer) for the
   * rest, 0 when none is free; never EAGAIN. The rows not submitted hold no
   * request. Each submitted row has its `index` (and `dataOffset`); its reply
   * comes back as a row of receiveBatch() / replies(). `opts.targets`: the
   * target names a row's `target` indexes (default: one, ''); `opts.fill(b,
   * n)`: called after the first n rows got their buffers and before they
   * are submitted, to write their data (`b.bytes` at `b.dataOffset(i)`).
   * Throws (and submits nothing) when the first row cannot be: ENOENT
   * (nobody bound @dst), E2BIG (no buffer class that large), ENAMETOOLONG,
   * EINVAL.
   */
  submitBatch(dst: number, batch: Batch,
    opts?: { targets?: readonly (string | Buffer)[]; fill?: (b: Batch, n: number) => void }): number {
    this.#live()
    this.#ours(batch)
    dst = uint(dst, 'the destination port', 0xfffffffe)
    if (!this.#b) this.#b = new BatchClient(this.#core, this.segment.config.maxRequests)
    this.#watch() // before any reply can come
    const n = this.#b.submit(this.number, dst, batch, opts?.targets, opts?.fill)
    if (n > 0) this.#ref() // the dead-peer check, while they are in flight
    return n
  }

  /**
   * Move the replies of submitBatch() requests that have come into @batch
   * (up to its capacity) without waiting; returns how many (batch.length).
   * Their requests are the caller's until releaseBatch(@batch).
   */
  receiveBatch(batch: Batch): number {
    this.#live()
    this.#ours(batch)
    if (!this.#b) return (batch.length = 0)
    this.#receive()
    return this.#b.moveTo(batch)
  }

  /** Give back the requests of every row of @batch (received replies); empties it. */
  releaseBatch(batch: Batch): void {
    this.#live()
    this.#ours(batch)
    const n = batch.length
    batch.length = 0
    if (n) native.batch_put(this.#core.h, batch.rows, 0, n)
  }

  /**
   * The replies of submitBatch() requests, a table at a time:
   * `for await (const b of port.replies()) for (let i = 0; i < b.length; i++) ...`.
   * A table is valid until the next iteration, which releases its requests
   * (so copy out what you keep). It waits while nothing has come, ends when
   * the port closes, and throws an AbortError when @opts.signal aborts.
   * @opts.spinUs: poll the queue that many microseconds before sleeping
   * (default 0; it blocks the event loop meanwhile, and saves the wake-up
   * when the reply comes within it).
   */
  replies(opts?: SpinOptions): AsyncIterableIterator<Batch> {
    const signal = opts?.signal
    const spin = uint(opts?.spinUs ?? 0, 'spinUs', 1e6)
    const look = (): boolean => {
      this.#receive()
      return this.#b!.inbox.length > 0
    }
    let done = false
    let held: Batch | undefined
    const drop = (): void => {
      if (!held) return
      if (held.length && !this.closed) native.batch_put(this.#core.h, held.rows, 0, held.length)
      held.length = 0
      if (this.#b) this.#b.spare = held
      held = undefined
    }
    const next = async (): Promise<IteratorResult<Batch, undefined>> => {
      drop()
      for (;;) {
        if (done || this.closed) return { done: true, value: undefined }
        if (signal?.aborted) throw abortError(signal)
        if (this.#b && (look() || (spin > 0 && this.#b.inflight > 0 && spinFor(spin, look)))) {
          held = this.#b.take()
          return { done: false, value: held }
        }
        if (!this.#loopable) throw this.#notLoopable()
        this.#watch()
        await this.#nextWake(signal)
      }
    }
    return {
      next,
      return: async () => {
        done = true
        drop()
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }

  /**
   * Accept up to `batch.capacity` requests queued to this (server) port
   * into @batch without waiting; returns how many (batch.length). Answer
   * each row with batch.respond(i, serviced) or batch.fail(i, code), then
   * respondBatch(@batch).
   */
  acceptBatch(batch: Batch): number {
    this.#live()
    this.#ours(batch)
    const n = native.batch_accept(this.#core.h, this.number, batch.rows, 0, batch.capacity)
    batch.length = n
    return n
  }

  /**
   * Answer every row of @batch (accepted here) in one call, signaling each
   * client port once: a row marked fail() fails with its code, any other is
   * served with its serviced (0 unless respond() set it). Empties the batch.
   * A row that cannot be answered (EPERM: not accepted here) throws after
   * the rows before it were answered.
   */
  respondBatch(batch: Batch): void {
    this.#live()
    this.#ours(batch)
    const n = batch.length
    let k = 0
    try {
      while (k < n) k += native.batch_respond(this.#core.h, batch.rows, k, n - k)
    } finally {
      batch.length = 0
    }
  }

  /**
   * The requests submitted to this port, a table at a time (at most
   * @opts.batch rows, default 64): `for await (const b of port.requests())`.
   * Mark rows with b.respond(i, serviced) / b.fail(i, code); the next
   * iteration answers the whole table (unmarked rows: served, serviced 0).
   * Ends when the port closes; throws an AbortError when @opts.signal
   * aborts (the table in hand is answered first). @opts.spinUs: as for
   * replies().
   */
  requests(opts?: SpinOptions & { batch?: number }): AsyncIterableIterator<Batch> {
    const signal = opts?.signal
    const spin = uint(opts?.spinUs ?? 0, 'spinUs', 1e6)
    const table = this.batch(opts?.batch ?? 64)
    const look = (): boolean => this.acceptBatch(table) > 0
    let done = false
    const answer = (): void => {
      if (table.length && !this.closed) this.respondBatch(table)
      table.length = 0
    }
    const next = async (): Promise<IteratorResult<Batch, undefined>> => {
      answer()
      for (;;) {
        if (done || this.closed) return { done: true, value: undefined }
        if (signal?.aborted) throw abortError(signal)
        if (!this.#loopable) throw this.#notLoopable()
        this.#watch() // before looking: a request queued from now on wakes us
        if (look() || (spin > 0 && spinFor(spin, look))) return { done: false, value: table }
        await this.#nextWake(signal)
      }
    }
    return {
      next,
      return: async () => {
        done = true
        answer()
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }

  // ---------------------------------------------------- worker threads

  /**
   * Block until a request or reply is queued to the port, or @timeoutMs
   * passes (-1: forever); true if work is queued. Spins briefly first. For
   * worker threads (e.g. joined with the futex peer type): throws EPERM on
   * the main thread, which must never block.
   */
  waitSync(timeoutMs = -1): boolean {
    this.#live()
    if (isMainThread) throw xerror('EPERM', 'waitSync would block the main thread; use a worker')
    const us = timeoutMs < 0 ? -1 : Math.round(uint(timeoutMs, 'timeout') * 1000)
    return native.port_wait(this.#core.h, this.number, us) === 1
  }

  /** Take one reply without waiting, or null (worker-style clients). */
  receiveSync(): Request | null {
    this.#live()
    // A port that submitted batches sorts what comes: their rows to the
    // inbox (receiveBatch), the others to their Requests (found just below).
    if (this.#b) this.#receive()
    for (const p of this.#pending.values()) {
      if (p.arrived) {
        this.#pending.delete(p.req.index)
        p.req._setState(p.req.state === 'forwarded' ? 'accepted' : 'received')
        return p.req
      }
    }
    if (this.#b) return null
    for (;;) {
      const idx = native.req_receive(this.#core.h, this.number)
      if (idx < 0) return null
      const p = this.#pending.get(idx)
      if (!p) {
        const forwarded = (native.req_field(this.#core.h, idx, F.Src) as number) !== this.number
        return new Request(this.#core, this, idx, forwarded ? 'accepted' : 'received')
      }
      if (p.waiter || p.abandoned) {
        this.#arrived(idx) // somebody awaits it (or nobody wants it): theirs
        continue
      }
      this.#pending.delete(idx)
      p.req._setState(p.req.state === 'forwarded' ? 'accepted' : 'received')
      return p.req
    }
  }

  // ---------------------------------------------------------- the rest

  /** Wake this port's peer (e.g. a server told to look at its queue again). */
  signal(): void {
    this.#live()
    native.port_signal(this.#core.h, this.number)
  }

  /** Submits to this port go to port @to instead (null: no redirect). */
  redirect(to: number | null): void {
    this.#live()
    native.port_redirect(this.#core.h, this.number, to === null ? -1 : uint(to, 'port', 0xfffffffe))
  }

  /** State, owner, queue lengths and counters (a snapshot). */
  info(): PortInfo {
    this.#live()
    return native.port_info(this.#core.h, this.number)
  }

  /**
   * Leave the port: requests still queued to it fail back to their clients,
   * replies still awaited here reject with ECANCELED, servers stop.
   */
  close(): void {
    if (this.#closed) return
    if (!this.#core.closed) {
      if (this.#watching) native.port_unwatch(this.#core.h, this.number)
      this.#watching = false
      native.port_leave(this.#core.h, this.number)
    }
    this._closed()
  }

  /** @internal The port is gone (closed, or its segment is): settle every waiter. */
  _closed(): void {
    this.#closed = true
    this.#watching = false
    this.#refd = false
    if (this.#watchdog) clearInterval(this.#watchdog)
    this.#watchdog = undefined
    const err = xerror('ECANCELED', `port ${this.number} was closed`)
    for (const p of this.#pending.values()) {
      p.waiter?.unlisten?.()
      p.req._setState('released')
      p.waiter?.reject(err)
    }
    this.#pending.clear()
    this.#waiting = 0
    this.#b?.reset()
    for (const fn of [...this.#listeners]) fn()
    this.#listeners.clear()
    this.segment._portClosed(this)
  }

  // ------------------------------------------------------------ waking

  /** Can this port wait from the event loop (Promises)? posixfd and segdev ports can (a polled fd). */
  get #loopable(): boolean {
    return this.segment.peerType === 'posixfd' || this.segment.peerType === 'segdev'
  }

  #notLoopable(): Error {
    return xerror('ENOTSUP', `a ${this.segment.peerType} port cannot wait from the event loop: ` +
      'join with the posixfd (or, on segdev segments, segdev) peer type, or use waitSync()/acceptSync()/receiveSync() in a worker')
  }

  /** Start the port's watcher (if it can have one: posixfd, segdev) before looking at its queues. */
  #watch(): void {
    if (this.#watching || !this.#loopable) return
    this.#live()
    native.port_watch(this.#core.h, this.number, (status: number) => this.#wake(status))
    this.#watching = true
  }

  #wake(status: number): void {
    if (this.closed) return
    if (status < 0) {
      const err = xerror('EIO', `polling port ${this.number} failed (${status})`)
      native.port_unwatch(this.#core.h, this.number)
      this.#watching = false
      this.#refd = false
      for (const p of this.#pending.values()) {
        p.waiter?.unlisten?.()
        p.waiter?.reject(err)
      }
      this.#pending.clear()
      this.#waiting = 0
    } else if (this.#pending.size || this.#b?.inflight) {
      this.#receive()
    }
    for (const fn of [...this.#listeners]) fn()
  }

  /** Keep the event loop alive exactly while something waits on the port. */
  #ref(): void {
    const want = this.#watching && !this.closed && (this.#waiting > 0 || this.#listeners.size > 0)
    if (want !== this.#refd) {
      native.port_ref(this.#core.h, this.number, want)
      this.#refd = want
    }
    const check = this.segment.peerCheckMs
    // Batched requests in flight are watched whether or not replies() waits
    // now: it waits a moment at a time, and the timer is not remade per wake.
    const batched = this.#b !== undefined && this.#b.inflight > 0
    if ((this.#waiting > 0 || batched) && !this.closed && check > 0) {
      if (!this.#watchdog) this.#watchdog = setInterval(() => this.#checkPeers(), check).unref()
    } else if (this.#watchdog) {
      clearInterval(this.#watchdog)
      this.#watchdog = undefined
    }
  }
}
