// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine.ts - the bridge to the gateway's native engine
// (peers/node/nbd/engine/*.cc, built into the addon): its own handle on the
// segment and client port, the listening sockets and connections it owns,
// the transmission phase it serves, and the events it gives back.
import { native, XSEG_PORT_RECEIVE, type Handle } from '../../../sys/node/ts/binding.js'
import type { Segment } from '../../../sys/node/ts/index.js'

type EngineRef = { readonly __nbdEngine: unique symbol }

/** An engine event: kind, connection (or listener) id, text, descriptor ('accept'). */
export type EngineEventFn = (kind: string, id: number, text: string, fd: number) => void

/** The addon's nbd_* functions (peers/node/nbd/engine/napi.cc and sockets.cc document each). */
interface NbdBinding {
  nbd_engine: (h: Handle, port: number, storagePort: number, maxBuf: number, maxRequest: number,
    maxInflight: number, spinUs: number, fn: EngineEventFn,
    timeoutMs: number, connBytes: number, totalBytes: number, connRequests: number, totalRequests: number) => EngineRef
  nbd_listen_unix: (e: EngineRef, path: string) => number
  nbd_listen_tcp: (e: EngineRef, address: string, port: number) => { id: number; address: string; port: number }
  nbd_listen_close: (e: EngineRef, id: number) => void
  nbd_conn: (e: EngineRef, id: number, target: string, size: number, readonly: boolean, initial?: Buffer,
    structured?: boolean, metaId?: number) => void
  nbd_conn_shutdown: (e: EngineRef, id: number) => void
  nbd_conn_close: (e: EngineRef, id: number) => void
  nbd_conn_pair: (e: EngineRef, id: number) => number
  nbd_stats: (e: EngineRef) => NbdEngineStats
  nbd_engine_close: (e: EngineRef) => void
  nbd_ctl: (e: EngineRef, op: number, target: string, text: string, size?: number) => number
}
const nb = native as unknown as NbdBinding

/** The reply of a control request: errno (0: served) and a text. */
export interface CtlReply {
  errno: number
  text: string
}

/** The engine's counters (nbd_stats). */
export interface NbdEngineStats {
  commands: number
  errors: number
  bytesRead: number
  bytesWritten: number
  /** Requests submitted and not answered (timed-out ones included). */
  inflight: number
  replies: number
  /** Commands failed by the request timeout. */
  timeouts: number
  /** Late replies of timed-out requests (put back). */
  late: number
  /** Timed-out requests still at the storage peer. */
  orphans: number
  /** Segment requests the engine holds (the warm ones included). */
  held: number
  /** READ bytes admitted and not yet written to their sockets. */
  committed: number
  /** READ data copied out of the segment for slow readers (bytes on the heap). */
  copied: number
  /**
   * WRITE payload bytes copied from the connection's read buffer into segment
   * buffers (the rest is read from the socket straight into them).
   */
  writeCopied: number
  /** Replied READ/WRITE requests kept with their buffers for the next chunks (given back after a second unused). */
  warm: number
  /** Data chunks that reused a warm request's buffer, and those that took a free one from the segment. */
  warmHits: number
  warmMisses: number
  /** Times a connection stopped polling its socket, to read it as replies come (8 or more of its commands unanswered). */
  deferrals: number
}

export interface EngineOptions {
  storagePort: number
  maxBuf: number
  maxRequest: number
  maxInflight: number
  spinUs: number
  requestTimeoutMs: number
  maxReplyBytes: number
  maxReplyTotal: number
  maxConnRequests: number
  maxTotalRequests: number
}

/**
 * One engine per gateway. It joins the segment again (its own handle) and
 * binds a dynamic client port whose FIFO it polls itself.
 */
export class Engine {
  #ref: EngineRef | null
  #h: Handle | null
  readonly port: number
  /** Control requests (ctl) waiting for their reply event. */
  #ctl = new Map<number, (r: CtlReply) => void>()

  constructor(segment: Segment, o: EngineOptions, userFn: EngineEventFn) {
    const fn: EngineEventFn = (kind, id, text, fd) => {
      if (kind !== 'ctl') return userFn(kind, id, text, fd)
      const done = this.#ctl.get(id)
      this.#ctl.delete(id)
      done?.({ errno: fd, text })
    }
    if (typeof nb.nbd_engine !== 'function' || typeof nb.nbd_listen_unix !== 'function')
      throw new Error('NbdGateway: the addon has no NBD engine (rebuild it: make node)')
    const cfg = segment.config
    const h = native.seg_join(cfg.type, cfg.name, 'posixfd')
    let port = -1
    try {
      port = native.port_bind(h, -1, XSEG_PORT_RECEIVE)
      this.#ref = nb.nbd_engine(h, port, o.storagePort, o.maxBuf, o.maxRequest, o.maxInflight,
        Math.max(0, Math.round(o.spinUs)), fn, o.requestTimeoutMs, o.maxReplyBytes, o.maxReplyTotal,
        o.maxConnRequests, o.maxTotalRequests)
    } catch (e) {
      leave(h, port)
      throw e
    }
    this.#h = h
    this.port = port
  }

  get closed(): boolean {
    return this.#ref === null
  }

  #e(): EngineRef {
    if (!this.#ref) throw Object.assign(new Error('NbdGateway: the engine is closed'), { code: 'EBADF' })
    return this.#ref
  }

  /** Listen on the unix socket @path (nothing may be there); the listener's id. */
  listenUnix(path: string): number {
    return nb.nbd_listen_unix(this.#e(), path)
  }

  /** Listen on TCP at the numeric @address, @port (0: any free one). */
  listenTcp(address: string, port: number): { id: number; address: string; port: number } {
    return nb.nbd_listen_tcp(this.#e(), address, port)
  }

  closeListener(id: number): void {
    if (this.#ref) nb.nbd_listen_close(this.#ref, id)
  }

  /**
   * Serve connection @id (its handshake done) from now on; @initial: bytes
   * received after it; @structured: structured replies negotiated; @metaId:
   * the context id of base:allocation when selected (BLOCK_STATUS allowed).
   */
  serve(id: number, target: string, size: number, readonly: boolean, initial?: Buffer,
    structured = false, metaId?: number): void {
    nb.nbd_conn(this.#e(), id, target, size, readonly, initial && initial.length ? initial : undefined,
      structured, metaId)
  }

  /** New commands of @id get ESHUTDOWN; 'end' once every reply is out. */
  shutdown(id: number): void {
    if (this.#ref) nb.nbd_conn_shutdown(this.#ref, id)
  }

  /**
   * A TLS connection in its handshake: the engine's descriptor of it becomes
   * one end of a socketpair; returns the other end (TypeScript pumps it to
   * and from its TLS socket).
   */
  pair(id: number): number {
    return nb.nbd_conn_pair(this.#e(), id)
  }

  /** Close connection @id now (handshake, served or lingering), without events. */
  closeConn(id: number): void {
    if (this.#ref) nb.nbd_conn_close(this.#ref, id)
  }

  /**
   * Send @op on @target with @text (size: its length, or @size) from the
   * engine's port to the storage port (control.cc); resolves with the
   * reply: errno (0: served) and text (the peer's message, or the hex of
   * the served data's first 64 bytes). After @timeoutMs, resolves with
   * ETIMEDOUT (a late reply is dropped).
   */
  ctl(op: number, target: string, text: string, timeoutMs: number, size?: number): Promise<CtlReply> {
    const id = nb.nbd_ctl(this.#e(), op, target, text, size)
    return new Promise<CtlReply>((resolve) => {
      const t = setTimeout(() => {
        this.#ctl.delete(id)
        resolve({ errno: 110, text: `no reply within ${timeoutMs} ms` })
      }, timeoutMs)
      this.#ctl.set(id, (r) => {
        clearTimeout(t)
        resolve(r)
      })
    })
  }

  stats(): NbdEngineStats | null {
    return this.#ref ? nb.nbd_stats(this.#ref) : null
  }

  /** Close every socket, stop polling the port, leave it and the segment. */
  close(): void {
    for (const done of this.#ctl.values()) done({ errno: 108, text: 'the gateway closed' }) // ESHUTDOWN
    this.#ctl.clear()
    if (this.#ref) nb.nbd_engine_close(this.#ref)
    this.#ref = null
    if (this.#h) leave(this.#h, this.port)
    this.#h = null
  }
}

function leave(h: Handle, port: number): void {
  try {
    if (port >= 0) native.port_leave(h, port)
  } catch {
    // Left already.
  }
  try {
    native.seg_leave(h)
  } catch {
    // Left already.
  }
}
