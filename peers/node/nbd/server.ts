// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/server.ts - the NBD gateway: an NBD server (fixed newstyle
// handshake, simple replies) whose exports are targets of a storage peer on
// an xseg port. Each NBD command becomes one or more xseg requests:
//
//   socket data -> parse 28-byte headers (WRITE payloads go straight into the
//   requests' segment buffers) -> submit to the storage port -> replies come
//   back in any order -> 16-byte reply header + READ data written from the
//   segment buffer (one corked writev per tick) -> requests released.
//
// Many commands are in flight per connection and many connections share one
// xseg port. Malformed input closes that connection only, with one log line.
// docs/nbd.md describes the options, the protocol coverage and the limits.
//
// The hot path: once a connection has chosen its export, the addon's NBD
// engine (sys/node/addon/nbdfast.cc) serves its transmission phase in C on
// the event loop (same rules, same log texts), on its own client port; this
// file keeps the handshake, the options, logging and control, and serves the
// transmission phase itself only where the engine is not available
// (`fast: false`, an addon without it, a socket without a descriptor).
import { linkSync, lstatSync, mkdtempSync, rmdirSync, type Stats, unlinkSync } from 'node:fs'
import * as net from 'node:net'
import { dirname, join } from 'node:path'
import { Segment, type Port, type Request } from '../../../sys/node/ts/index.js'
import { native, type Handle } from '../../../sys/node/ts/binding.js'
import * as P from './protocol.js'

/** The addon's NBD engine (sys/node/addon/nbdfast.cc documents each function). */
type Engine = { readonly __nbdEngine: unique symbol }
interface NbdFastBinding {
  nbd_engine?: (h: Handle, port: number, storagePort: number, maxBuf: number, maxRequest: number,
    maxInflight: number, spinUs: number, fn: (kind: string, id: number, text: string) => void,
    timeoutMs: number, connBytes: number, totalBytes: number, connRequests: number, totalRequests: number) => Engine
  nbd_conn: (e: Engine, id: number, fd: number, target: string, size: number, readonly: boolean, initial?: Buffer) => void
  nbd_conn_shutdown: (e: Engine, id: number) => void
  nbd_conn_close: (e: Engine, id: number) => void
  nbd_stats: (e: Engine) => NbdEngineStats
  nbd_engine_close: (e: Engine) => void
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
  /** Segment requests the engine holds. */
  held: number
  /** READ bytes admitted and not yet written to their sockets. */
  committed: number
  /** READ data copied out of the segment for slow readers (bytes on the heap). */
  copied: number
}
const fastNative = native as unknown as NbdFastBinding
const XSEG_PORT_RECEIVE = 2

/** The parts of Node's stream handle the hand-over to the engine uses. */
interface StreamHandle {
  fd?: number
  reading?: boolean
  readStop?: () => number
  readStart?: () => number
}

/** One export: an NBD name for a target of the storage peer. */
export interface NbdExport {
  /** The NBD export name. */
  name: string
  /** The xseg target (default: the name). */
  target?: string
  /** Size in bytes; default: asked from the storage peer (INFO) at each OPT_GO. */
  size?: number | bigint
  /** Refuse writes (EPERM) and advertise NBD_FLAG_READ_ONLY. */
  readonly?: boolean
  /** Shown by `nbdinfo --list` (NBD_INFO_DESCRIPTION). */
  description?: string
}

export type NbdLogLevel = 'info' | 'warn' | 'error' | 'debug'
/** Receives one line per event; the default writes info and above to stderr. */
export type NbdLogger = (level: NbdLogLevel, line: string) => void

export interface NbdGatewayOptions {
  /** A joined posixfd Segment (the caller keeps it), or a spec to join (the gateway closes it). */
  segment: Segment | string
  /** The port of the storage peer (blockd). */
  storagePort: number
  /** The gateway's own port: a static port number; default a dynamic one. */
  port?: number
  exports: NbdExport[]
  /** null: silent. */
  logger?: NbdLogger | null
  /** Commands per connection whose replies are not written yet before it stops reading (default 128). */
  maxInflight?: number
  /**
   * A storage request without a reply this long fails its NBD command with
   * EIO (the late reply is dropped); 0: wait forever. Default 30000, the
   * Linux kernel NBD client's default.
   */
  requestTimeoutMs?: number
  /**
   * READ bytes one connection may have in flight or unread (its replies not
   * yet taken by the client) before it stops reading commands. Default
   * max(8 MiB, maxRequest).
   */
  maxReplyBytes?: number
  /**
   * The same for all connections together; each connection's part is at most
   * an equal share of it. Default max(64 MiB, maxReplyBytes).
   */
  maxReplyTotal?: number
  /**
   * Segment requests one connection may hold. Default max(a quarter of the
   * segment's requests, the chunks of the largest command); at least the
   * latter.
   */
  maxConnRequests?: number
  /**
   * Largest READ/WRITE accepted, advertised as the maximum block size. Larger
   * ones than a segment buffer are split. Default: what the segment can hold
   * for one command (a quarter of its requests, half of its largest buffer
   * class), at most 32 MiB.
   */
  maxRequest?: number
  /** How long an INFO (export size) may take at OPT_GO, in ms (default 5000). */
  infoTimeoutMs?: number
  /** How long a client may take to choose an export, in ms (default 30000). */
  handshakeTimeoutMs?: number
  /**
   * While replies are awaited, poll for them from the event loop this many
   * microseconds after the last one came before sleeping until the storage
   * peer's wake-up (default 0: always sleep).
   */
  spinUs?: number
  /**
   * Serve the transmission phase in the addon's C engine (default true,
   * unless XSEG_NBD_FAST=0 is in the environment); false: in TypeScript
   * (slower; for comparison and tests).
   */
  fast?: boolean
}

export interface NbdListenOptions {
  /** A unix socket path (a stale socket file there is replaced). */
  unix?: string
  /** 'HOST:PORT', 'PORT', or { host, port } (port 0: any free port). */
  tcp?: string | number | { host?: string; port: number }
}

export interface NbdAddresses {
  unix?: string
  tcp?: { host: string; port: number }
}

export interface NbdStats {
  connections: number
  connectionsTotal: number
  commands: number
  errors: number
  bytesRead: number
  bytesWritten: number
  protocolErrors: number
}

const MAX_OPTION_LEN = 16384
const MAX_OPTIONS = 1024
/** Bytes a client may send ahead during negotiation. */
const MAX_AHEAD = 1 << 20
/** Bytes of a refused WRITE payload read and dropped; a longer one closes the connection. */
const MAX_DISCARD = 32 << 20
const EMPTY = Buffer.alloc(0)
const ZEROES = Buffer.alloc(124)

const KNOWN_CMD_FLAGS = P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_NO_HOLE | P.NBD_CMD_FLAG_DF | P.NBD_CMD_FLAG_REQ_ONE |
  P.NBD_CMD_FLAG_FAST_ZERO | P.NBD_CMD_FLAG_PAYLOAD_LEN
/** Command flags each command accepts (FUA is harmless on any). */
const ALLOWED_FLAGS: Record<number, number> = {
  [P.NBD_CMD_READ]: P.NBD_CMD_FLAG_FUA,
  [P.NBD_CMD_WRITE]: P.NBD_CMD_FLAG_FUA,
  [P.NBD_CMD_FLUSH]: P.NBD_CMD_FLAG_FUA,
  [P.NBD_CMD_TRIM]: P.NBD_CMD_FLAG_FUA,
  [P.NBD_CMD_WRITE_ZEROES]: P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_NO_HOLE,
}

const XF_FUA = 1

/** An export as a connection uses it: size known. */
interface OpenExport {
  name: string
  target: string
  size: number
  readonly: boolean
  flags: number
}

class ProtocolError extends Error {}
class Closed extends Error {}

function defaultLogger(level: NbdLogLevel, line: string): void {
  if (level !== 'debug') process.stderr.write(`xseg nbd: ${line}\n`)
}

/**
 * An NBD command in progress: one or more chunk requests to the storage port.
 * READ chunks are held (their data is the reply) until the reply is written.
 */
class Cmd {
  readonly conn: Conn
  readonly type: number
  readonly flags: number
  readonly hHi: number
  readonly hLo: number
  readonly offset: number
  readonly length: number
  /** Xseg op of the chunks, and its XF flags. */
  op: 'read' | 'write' | 'flush' | 'discard' | 'write_zeroes' = 'read'
  xflags = 0
  /** READ: the chunks in order. */
  reqs: Request[] | null = null
  /** Bytes of the command allocated to chunks so far. */
  next = 0
  /** Chunks submitted whose replies have not come. */
  pending = 0
  /** The first error (an NBD error value), 0 if none. */
  error = 0
  /** WRITE: the chunk being filled from the socket, and how much of it is. */
  fill: Request | null = null
  fillData: Buffer = EMPTY
  filled = 0
  /** WRITE_ZEROES with NO_HOLE: written as WRITEs of zeroes. */
  zeroFill = false
  done = false
  /** READ: its bytes in the committed counts (until its reply is written). */
  commit = 0

  constructor(conn: Conn, type: number, flags: number, hHi: number, hLo: number, offset: number, length: number) {
    this.conn = conn
    this.type = type
    this.flags = flags
    this.hHi = hHi
    this.hLo = hLo
    this.offset = offset
    this.length = length
  }
}

let connSeq = 0

/** One client connection: negotiation, then transmission. */
class Conn {
  readonly gw: NbdGateway
  readonly sock: net.Socket
  readonly id = ++connSeq
  readonly peer: string
  phase: 'negotiate' | 'transmit' | 'closed' = 'negotiate'
  exp: OpenExport | null = null
  target = ''

  // Negotiation: an async reader over the chunks received.
  #inq: Buffer[] = []
  #inLen = 0
  #want = 0
  #wake: ((ok: boolean) => void) | null = null
  #noZeroes = false

  // Transmission.
  #hdr = Buffer.alloc(P.REQUEST_SIZE)
  #hdrLen = 0
  /** A WRITE whose payload is arriving. */
  #cur: Cmd | null = null
  /** Payload bytes to read and drop (a refused WRITE). */
  #discard = 0
  /** A command that could not get a request: retried on a kick. */
  #blocked: Cmd | null = null
  /** Input not parsed yet (kept while stalled). */
  #rest: Buffer | null = null
  #stalled = false
  /** NBD_CMD_DISC came: close once every reply is out. */
  #disc = false
  /** The client closed its side (EOF). */
  #eof = false
  /** The gateway is closing: close once every reply is out. */
  #closing = false
  inflight = 0
  /** Replies to write at the end of this tick. */
  #out: Cmd[] = []
  #flushQueued = false
  #parts: Buffer[] = []
  /** Replies given to the socket and not yet written, and the READ bytes committed (docs/nbd.md). */
  #unwritten = 0
  #committed = 0
  /** Served by the C engine since the handshake. */
  fast = false

  constructor(gw: NbdGateway, sock: net.Socket) {
    this.gw = gw
    this.sock = sock
    this.peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'unix'
    sock.setNoDelay(true)
    sock.on('data', (d: Buffer) => this.#onData(d))
    sock.on('end', () => this.#onEnd())
    sock.on('error', (e: Error) => this.gw._log('debug', `${this.name}: ${e.message}`))
    sock.on('close', () => this.#onClose())
    sock.on('drain', () => {
      if (this.#stalled) this.gw._kick()
    })
  }

  get name(): string {
    return `connection ${this.id} (${this.peer}${this.exp ? `, export '${this.exp.name}'` : ''})`
  }

  get closed(): boolean {
    return this.phase === 'closed'
  }

  /** Close the connection for a protocol violation, with one log line. */
  fatal(msg: string): void {
    if (this.closed) return
    this.gw._stats.protocolErrors++
    this.gw._log('warn', `${this.name}: ${msg}; closing the connection`)
    this.destroy()
  }

  destroy(): void {
    if (this.closed) return
    this.phase = 'closed'
    if (this.fast) this.gw._fastClose(this)
    this.sock.destroy() // what it held is released at 'close'
  }

  /** The engine wrote every reply and is done (DISC, EOF, shutdown): end the socket. */
  fastEnd(): void {
    if (this.closed) return
    this.phase = 'closed'
    // Read again (and drop) until the client's EOF, so the socket closes by itself.
    // The stream still counts the read it had started: restart the handle's reads.
    const h = (this.sock as unknown as { _handle?: StreamHandle })._handle
    if (h && h.reading === false && typeof h.readStart === 'function') {
      h.reading = true
      h.readStart()
    }
    this.sock.resume()
    this.sock.end()
  }

  #onClose(): void {
    this.phase = 'closed'
    if (this.fast) this.gw._fastClose(this)
    this.#release()
    this.gw._connClosed(this)
  }

  /** Give back what a closed connection holds (late replies are dropped as they come). */
  #release(): void {
    this.gw._committed -= this.#committed
    this.#committed = 0
    for (const c of this.#out) if (c.reqs) releaseAll(c.reqs)
    this.#out.length = 0
    const cur = this.#cur
    if (cur?.fill) {
      release(cur.fill)
      cur.fill = null
    }
    this.#cur = null
    if (this.#blocked?.reqs) releaseAll(this.#blocked.reqs)
    this.#blocked = null
    this.#rest = null
    this.gw._unstall(this)
  }

  #onEnd(): void {
    // The client sent everything: finish what is in flight, then close.
    if (this.phase === 'negotiate') {
      this.#wakeReader(false)
      this.sock.end()
      return
    }
    this.#eof = true
    if (!this.#stalled) this.#checkEof()
  }

  /** At EOF with nothing left to parse: a partial request is a truncated one. */
  #checkEof(): void {
    if (this.closed) return
    if (this.#hdrLen || this.#cur || this.#discard) {
      this.fatal(this.#hdrLen ? `truncated request header (${this.#hdrLen} of ${P.REQUEST_SIZE} bytes)` : 'truncated WRITE payload')
      return
    }
    this.#maybeEnd()
  }

  #onData(d: Buffer): void {
    if (this.closed) return
    if (this.phase === 'negotiate') {
      this.#inq.push(d)
      this.#inLen += d.length
      if (this.#inLen > MAX_AHEAD) {
        this.fatal(`more than ${MAX_AHEAD} bytes sent ahead during negotiation`)
        return
      }
      if (this.#wake && this.#inLen >= this.#want) this.#wakeReader(true)
      return
    }
    if (this.#stalled || this.#rest) {
      // Only when data was already in flight to us as we paused.
      this.#rest = this.#rest ? Buffer.concat([this.#rest, d]) : d
      return
    }
    this.#parse(d, 0)
  }

  // ---------------------------------------------------------------- negotiation

  #wakeReader(ok: boolean): void {
    const w = this.#wake
    this.#wake = null
    w?.(ok)
  }

  /** The next @n bytes from the client; rejects (Closed) if it goes away. */
  async #read(n: number): Promise<Buffer> {
    if (this.#inLen < n) {
      this.#want = n
      const ok = await new Promise<boolean>((resolve) => {
        this.#wake = resolve
      })
      if (!ok || this.closed || this.#inLen < n) throw new Closed()
    }
    let out: Buffer
    const first = this.#inq[0]!
    if (first.length >= n) {
      out = first.subarray(0, n)
      if (first.length === n) this.#inq.shift()
      else this.#inq[0] = first.subarray(n)
    } else {
      out = Buffer.allocUnsafe(n)
      let got = 0
      while (got < n) {
        const c = this.#inq[0]!
        const take = Math.min(c.length, n - got)
        c.copy(out, got, 0, take)
        got += take
        if (take === c.length) this.#inq.shift()
        else this.#inq[0] = c.subarray(take)
      }
    }
    this.#inLen -= n
    return out
  }

  #send(b: Buffer): void {
    if (!this.closed) this.sock.write(b)
  }

  #optReply(opt: number, type: number, data: Buffer = EMPTY): void {
    const h = Buffer.allocUnsafe(20 + data.length)
    h.writeBigUInt64BE(P.NBD_REP_MAGIC, 0)
    h.writeUInt32BE(opt, 8)
    h.writeUInt32BE(type, 12)
    h.writeUInt32BE(data.length, 16)
    data.copy(h, 20)
    this.#send(h)
  }

  #optError(opt: number, type: number, msg: string): void {
    this.#optReply(opt, type, Buffer.from(msg.slice(0, P.NBD_MAX_STRING)))
  }

  /** The handshake: options until an export is chosen (or the client leaves). */
  async negotiate(): Promise<void> {
    const t = setTimeout(() => {
      if (this.phase === 'negotiate') this.fatal(`no export chosen within ${this.gw.handshakeTimeoutMs} ms`)
    }, this.gw.handshakeTimeoutMs)
    t.unref()
    this.sock.once('close', () => clearTimeout(t))
    try {
      const hello = Buffer.allocUnsafe(18)
      hello.writeBigUInt64BE(P.NBD_MAGIC, 0)
      hello.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 8)
      hello.writeUInt16BE(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES, 16)
      this.#send(hello)
      const cf = (await this.#read(4)).readUInt32BE(0)
      if (cf & ~(P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES))
        throw new ProtocolError(`unknown client flags 0x${cf.toString(16)}`)
      this.#noZeroes = (cf & P.NBD_FLAG_C_NO_ZEROES) !== 0
      for (let n = 0; ; n++) {
        if (n >= MAX_OPTIONS) throw new ProtocolError(`more than ${MAX_OPTIONS} options`)
        const h = await this.#read(16)
        if (h.readBigUInt64BE(0) !== P.NBD_OPTS_MAGIC)
          throw new ProtocolError(`bad option magic 0x${h.readBigUInt64BE(0).toString(16)}`)
        const opt = h.readUInt32BE(8)
        const len = h.readUInt32BE(12)
        if (len > MAX_OPTION_LEN)
          throw new ProtocolError(`option ${P.optionName(opt)} of ${len} bytes (at most ${MAX_OPTION_LEN})`)
        const data = len ? Buffer.from(await this.#read(len)) : EMPTY
        if (this.closed) return
        if (await this.#option(opt, data)) return
      }
    } catch (e) {
      if (e instanceof Closed || this.closed) return
      if (e instanceof ProtocolError) this.fatal(e.message)
      else {
        this.gw._log('error', `${this.name}: ${(e as Error).message}`)
        this.destroy()
      }
    }
  }

  /** Handle one option; true when negotiation is over. */
  async #option(opt: number, data: Buffer): Promise<boolean> {
    if (this.gw.closing && opt !== P.NBD_OPT_ABORT) {
      if (opt === P.NBD_OPT_EXPORT_NAME) {
        this.destroy()
        return true
      }
      this.#optError(opt, P.NBD_REP_ERR_SHUTDOWN, 'the server is shutting down')
      return false
    }
    switch (opt) {
      case P.NBD_OPT_EXPORT_NAME: {
        const name = data.toString()
        const r = await this.gw._open(name)
        if (typeof r === 'string') {
          // This option cannot fail politely: the protocol says close.
          this.gw._log('warn', `${this.name}: export '${name}': ${r}; closing the connection`)
          this.destroy()
          return true
        }
        const b = Buffer.alloc(this.#noZeroes ? 10 : 134)
        b.writeBigUInt64BE(BigInt(r.size), 0)
        b.writeUInt16BE(r.flags, 8)
        this.#send(b)
        this.#transmit(r)
        return true
      }
      case P.NBD_OPT_INFO:
      case P.NBD_OPT_GO: {
        if (data.length < 6) return this.#invalid(opt, 'the option is too short')
        const nlen = data.readUInt32BE(0)
        if (nlen > data.length - 6) return this.#invalid(opt, 'the name length is past the option')
        const name = data.toString('utf8', 4, 4 + nlen)
        const nreq = data.readUInt16BE(4 + nlen)
        if (data.length !== 6 + nlen + 2 * nreq) return this.#invalid(opt, 'the information requests do not fit the option')
        const wants = new Set<number>()
        for (let i = 0; i < nreq; i++) wants.add(data.readUInt16BE(6 + nlen + 2 * i))
        const r = await this.gw._open(name)
        if (this.closed) return true
        if (typeof r === 'string') {
          this.#optError(opt, P.NBD_REP_ERR_UNKNOWN, `export '${name}': ${r}`)
          return false
        }
        const ex = Buffer.allocUnsafe(12)
        ex.writeUInt16BE(P.NBD_INFO_EXPORT, 0)
        ex.writeBigUInt64BE(BigInt(r.size), 2)
        ex.writeUInt16BE(r.flags, 10)
        this.#optReply(opt, P.NBD_REP_INFO, ex)
        if (wants.has(P.NBD_INFO_NAME)) {
          const nb = Buffer.from(r.name)
          const b = Buffer.allocUnsafe(2 + nb.length)
          b.writeUInt16BE(P.NBD_INFO_NAME, 0)
          nb.copy(b, 2)
          this.#optReply(opt, P.NBD_REP_INFO, b)
        }
        const desc = this.gw._description(r.name)
        if (wants.has(P.NBD_INFO_DESCRIPTION) && desc) {
          const db = Buffer.from(desc.slice(0, P.NBD_MAX_STRING))
          const b = Buffer.allocUnsafe(2 + db.length)
          b.writeUInt16BE(P.NBD_INFO_DESCRIPTION, 0)
          db.copy(b, 2)
          this.#optReply(opt, P.NBD_REP_INFO, b)
        }
        // Always sent (the protocol allows it unasked): clients keep within the maximum.
        const bs = Buffer.allocUnsafe(14)
        bs.writeUInt16BE(P.NBD_INFO_BLOCK_SIZE, 0)
        bs.writeUInt32BE(1, 2)
        bs.writeUInt32BE(4096, 6)
        bs.writeUInt32BE(this.gw.maxRequest, 10)
        this.#optReply(opt, P.NBD_REP_INFO, bs)
        this.#optReply(opt, P.NBD_REP_ACK)
        if (opt === P.NBD_OPT_GO) {
          this.#transmit(r)
          return true
        }
        return false
      }
      case P.NBD_OPT_LIST: {
        if (data.length) return this.#invalid(opt, 'NBD_OPT_LIST takes no data')
        for (const name of this.gw.exportNames()) {
          // The name, then its description (what follows the name is for humans).
          const nb = Buffer.from(name)
          const db = Buffer.from((this.gw._description(name) ?? '').slice(0, P.NBD_MAX_STRING))
          const b = Buffer.allocUnsafe(4 + nb.length + db.length)
          b.writeUInt32BE(nb.length, 0)
          nb.copy(b, 4)
          db.copy(b, 4 + nb.length)
          this.#optReply(opt, P.NBD_REP_SERVER, b)
        }
        this.#optReply(opt, P.NBD_REP_ACK)
        return false
      }
      case P.NBD_OPT_ABORT:
        this.#optReply(opt, P.NBD_REP_ACK)
        this.phase = 'closed'
        this.sock.end()
        return true
      default:
        // STARTTLS, STRUCTURED_REPLY, META_CONTEXT, EXTENDED_HEADERS and the unknown.
        this.#optError(opt, P.NBD_REP_ERR_UNSUP, `option ${P.optionName(opt)} is not supported`)
        return false
    }
  }

  #invalid(opt: number, msg: string): false {
    this.#optError(opt, P.NBD_REP_ERR_INVALID, msg)
    return false
  }

  /** Enter transmission with export @r; bytes already received are commands. */
  #transmit(r: OpenExport): void {
    this.exp = r
    this.target = r.target
    this.phase = 'transmit'
    this.gw._log('debug', `${this.name}: transmission`)
    const rest = this.#inq.length ? Buffer.concat(this.#inq) : null
    this.#inq = []
    this.#inLen = 0
    if (this.gw._fastConn(this, r, rest)) {
      this.fast = true
      return
    }
    if (rest && rest.length) this.#parse(rest, 0)
  }

  // --------------------------------------------------------------- transmission

  /** Parse commands from @buf at @pos; stops (keeping the rest) when stalled. */
  #parse(buf: Buffer, pos: number): void {
    const len = buf.length
    while (pos < len && !this.closed) {
      if (this.#discard) {
        const n = Math.min(this.#discard, len - pos)
        this.#discard -= n
        pos += n
        continue
      }
      const cur = this.#cur
      if (cur) {
        pos = this.#fillWrite(cur, buf, pos)
        if (this.#stalled) break
        continue
      }
      if (this.#disc) {
        this.fatal('data after NBD_CMD_DISC')
        return
      }
      if (this.#over()) {
        this.#stall()
        break
      }
      if (this.#hdrLen || len - pos < P.REQUEST_SIZE) {
        const n = Math.min(P.REQUEST_SIZE - this.#hdrLen, len - pos)
        buf.copy(this.#hdr, this.#hdrLen, pos, pos + n)
        this.#hdrLen += n
        pos += n
        if (this.#hdrLen < P.REQUEST_SIZE) break
        this.#hdrLen = 0
        this.#command(this.#hdr, 0)
      } else {
        this.#command(buf, pos)
        pos += P.REQUEST_SIZE
      }
      if (this.#stalled) break
    }
    if (this.#stalled && pos < len) this.#rest = buf.subarray(pos)
  }

  /**
   * Whether to stop reading commands: too many not written yet, or too many
   * READ bytes committed (in flight or unread) here (maxReplyBytes, at most
   * an equal share of maxReplyTotal) or in all connections. With nothing
   * committed, one more (no connection starves). As conn_over in nbdfast.cc.
   */
  #over(): boolean {
    const gw = this.gw
    if (this.inflight + this.#out.length + this.#unwritten >= gw.maxInflight) return true
    if (!this.#committed) return false
    const part = Math.min(gw.maxReplyBytes, Math.floor(gw.maxReplyTotal / gw._connCount()))
    return this.#committed >= part || gw._committed >= gw.maxReplyTotal
  }

  #commit(n: number): void {
    this.#committed += n
    this.gw._committed += n
  }

  /** One 28-byte request header at @b[@o]. */
  #command(b: Buffer, o: number): void {
    const magic = b.readUInt32BE(o)
    if (magic !== P.NBD_REQUEST_MAGIC) {
      this.fatal(`bad request magic 0x${magic.toString(16)}`)
      return
    }
    const flags = b.readUInt16BE(o + 4)
    const type = b.readUInt16BE(o + 6)
    const hHi = b.readUInt32BE(o + 8)
    const hLo = b.readUInt32BE(o + 12)
    const offHi = b.readUInt32BE(o + 16)
    const offLo = b.readUInt32BE(o + 20)
    const length = b.readUInt32BE(o + 24)
    // Offsets past 2^53 are past every export: keep them past it as a number.
    const offset = offHi >= 0x200000 ? Number.MAX_SAFE_INTEGER : offHi * 0x100000000 + offLo
    const exp = this.exp!
    const gw = this.gw

    if (type === P.NBD_CMD_DISC) {
      this.#disc = true
      this.gw._log('debug', `${this.name}: NBD_CMD_DISC`)
      this.#maybeEnd()
      return
    }
    if (type > P.NBD_CMD_RESIZE) {
      this.fatal(`unknown command ${type}`)
      return
    }
    // FLUSH has no range (the fields are reserved).
    const flush = type === P.NBD_CMD_FLUSH
    const cmd = new Cmd(this, type, flags, hHi, hLo, flush ? 0 : offset, flush ? 0 : length)
    this.inflight++
    gw._stats.commands++
    const isWrite = type === P.NBD_CMD_WRITE
    // A refused WRITE still sends its payload: read and drop it.
    const refuse = (err: number): void => {
      if (isWrite) {
        if (length > MAX_DISCARD) {
          this.fatal(`NBD_CMD_WRITE of ${length} bytes (at most ${gw.maxRequest})`)
          return
        }
        this.#discard = length
      }
      cmd.error = err
      this.#finish(cmd)
    }
    if (gw.closing) return refuse(P.NBD_ESHUTDOWN)
    const allowed = ALLOWED_FLAGS[type]
    if (allowed === undefined) return refuse(P.NBD_EINVAL) // CACHE, BLOCK_STATUS, RESIZE: not offered
    if (flags & ~allowed || flags & ~KNOWN_CMD_FLAGS) return refuse(P.NBD_EINVAL)
    if (flags & P.NBD_CMD_FLAG_FUA) cmd.xflags = XF_FUA
    switch (type) {
      case P.NBD_CMD_READ:
        if (length > gw.maxRequest) return refuse(P.NBD_EOVERFLOW)
        if (offset > exp.size || length > exp.size - offset) return refuse(P.NBD_EINVAL)
        cmd.op = 'read'
        if (length === 0) return this.#finish(cmd)
        cmd.commit = length
        this.#commit(length)
        cmd.reqs = []
        this.#submitChunks(cmd)
        return
      case P.NBD_CMD_WRITE:
        if (exp.readonly) return refuse(P.NBD_EPERM)
        if (length > gw.maxRequest) return refuse(P.NBD_EOVERFLOW)
        if (offset > exp.size || length > exp.size - offset) return refuse(P.NBD_ENOSPC)
        cmd.op = 'write'
        if (length === 0) return this.#finish(cmd)
        this.#cur = cmd
        return
      case P.NBD_CMD_FLUSH:
        cmd.op = 'flush'
        this.#submitChunks(cmd)
        return
      case P.NBD_CMD_TRIM:
      case P.NBD_CMD_WRITE_ZEROES:
        if (exp.readonly) return refuse(P.NBD_EPERM)
        if (offset > exp.size || length > exp.size - offset) return refuse(P.NBD_ENOSPC)
        if (length === 0) return this.#finish(cmd)
        if (type === P.NBD_CMD_TRIM) cmd.op = 'discard'
        else if (flags & P.NBD_CMD_FLAG_NO_HOLE) {
          // The storage peer may punch holes for write_zeroes: write real zeroes.
          cmd.op = 'write'
          cmd.zeroFill = true
        } else cmd.op = 'write_zeroes'
        this.#submitChunks(cmd)
        return
    }
  }

  /**
   * Get and submit the chunk requests of a command that needs no payload
   * (READ, FLUSH, TRIM, WRITE_ZEROES); stalls when the segment has no free
   * request, to go on at the next kick.
   */
  #submitChunks(cmd: Cmd): void {
    const gw = this.gw
    const whole = cmd.op === 'flush' || cmd.op === 'discard' || cmd.op === 'write_zeroes'
    do {
      const size = whole ? cmd.length - cmd.next : Math.min(gw.maxBuf, cmd.length - cmd.next)
      const req = gw._get(cmd, cmd.op, this.target, cmd.offset + cmd.next, size, whole ? 0 : size)
      if (!req && gw._stuck) {
        // A request timed out and nothing came back since: fail now, do not wait.
        if (!cmd.error) cmd.error = P.NBD_EIO
        cmd.next = cmd.length
        if (cmd.pending === 0) this.#finish(cmd)
        return
      }
      if (!req) {
        this.#blocked = cmd
        this.#stall()
        return
      }
      if (cmd.zeroFill) req.data.fill(0, 0, size)
      cmd.next += size
      if (cmd.reqs) cmd.reqs.push(req)
      cmd.pending++
      gw._submit(cmd, req)
    } while (cmd.next < cmd.length)
  }

  /** Copy WRITE payload from @buf[@pos] into the command's chunks; returns the new position. */
  #fillWrite(cmd: Cmd, buf: Buffer, pos: number): number {
    const gw = this.gw
    while (pos < buf.length) {
      if (!cmd.fill) {
        const size = Math.min(gw.maxBuf, cmd.length - cmd.next)
        const req = gw._get(cmd, 'write', this.target, cmd.offset + cmd.next, size, size)
        if (!req && gw._stuck) {
          // As above; the rest of its payload is read and dropped.
          if (!cmd.error) cmd.error = P.NBD_EIO
          this.#discard += cmd.length - cmd.next
          cmd.next = cmd.length
          this.#cur = null
          if (cmd.pending === 0) this.#finish(cmd)
          return pos
        }
        if (!req) {
          this.#stall()
          return pos
        }
        cmd.fill = req
        cmd.fillData = req.data
        cmd.filled = 0
        cmd.next += size
      }
      const want = cmd.fillData.length - cmd.filled
      const n = Math.min(want, buf.length - pos)
      buf.copy(cmd.fillData, cmd.filled, pos, pos + n)
      cmd.filled += n
      pos += n
      if (cmd.filled === cmd.fillData.length) {
        const req = cmd.fill
        cmd.fill = null
        cmd.fillData = EMPTY
        cmd.pending++
        gw._submit(cmd, req)
        if (cmd.next === cmd.length) {
          this.#cur = null
          return pos
        }
      }
    }
    return pos
  }

  #stall(): void {
    if (this.#stalled) return
    this.#stalled = true
    this.sock.pause()
    this.gw._stall(this)
  }

  /** Go on after a stall (the gateway's kick): retry the blocked command, then the input. */
  resume(): void {
    if (this.closed || !this.#stalled) return
    this.#stalled = false
    const b = this.#blocked
    if (b) {
      this.#blocked = null
      this.#submitChunks(b)
      if (this.#stalled) return
    }
    const rest = this.#rest
    this.#rest = null
    if (rest) this.#parse(rest, 0)
    if (this.#stalled || this.closed) return
    if (this.#eof) this.#checkEof()
    else this.sock.resume()
  }

  /** A chunk's reply came (or its submit failed): @err is 0 or an NBD error. */
  chunkDone(cmd: Cmd, req: Request | null, err: number): void {
    cmd.pending--
    if (err && !cmd.error) cmd.error = err
    if (req && !cmd.reqs) release(req) // READ chunks stay for the reply
    if (cmd.pending === 0 && cmd.fill === null && cmd.next === cmd.length && this.#blocked !== cmd && this.#cur !== cmd)
      this.#finish(cmd)
  }

  /** The command is over: queue its reply. */
  #finish(cmd: Cmd): void {
    if (cmd.done) return
    cmd.done = true
    this.inflight--
    if (this.closed) {
      if (cmd.reqs) releaseAll(cmd.reqs)
      return
    }
    if (cmd.error && cmd.commit) {
      // No data in the reply.
      this.#commit(-cmd.commit)
      cmd.commit = 0
    }
    const gw = this.gw
    if (cmd.error) {
      gw._stats.errors++
      if (cmd.reqs) {
        releaseAll(cmd.reqs)
        cmd.reqs = null
      }
    } else if (cmd.type === P.NBD_CMD_READ) gw._stats.bytesRead += cmd.length
    else if (cmd.type === P.NBD_CMD_WRITE) gw._stats.bytesWritten += cmd.length
    this.#out.push(cmd)
    if (!this.#flushQueued) {
      this.#flushQueued = true
      process.nextTick(flushConn, this)
    }
    if (this.#stalled && !this.#blocked) gw._kick()
  }

  /** Write the replies of this tick: one corked writev. */
  flush(): void {
    this.#flushQueued = false
    const out = this.#out
    const n = out.length
    if (!n || this.closed) return
    const sock = this.sock
    const hdrs = Buffer.allocUnsafe(P.SIMPLE_REPLY_SIZE * n)
    const parts = this.#parts
    let commit = 0
    for (let i = 0; i < n; i++) {
      const c = out[i]!
      const o = i * P.SIMPLE_REPLY_SIZE
      hdrs.writeUInt32BE(P.NBD_SIMPLE_REPLY_MAGIC, o)
      hdrs.writeUInt32BE(c.error, o + 4)
      hdrs.writeUInt32BE(c.hHi, o + 8)
      hdrs.writeUInt32BE(c.hLo, o + 12)
      const reqs = c.reqs
      if (reqs && !c.error) {
        // Header and data go out as neighbours of one writev.
        parts.push(hdrs.subarray(o, o + P.SIMPLE_REPLY_SIZE))
        // The data is copied out and the requests go back at once, so that a
        // client that does not read its replies holds no segment buffers (the
        // reply caps bound the copies: #over).
        let left = c.length
        for (const r of reqs) {
          const d = r.data
          const take = Math.min(left, d.length)
          left -= take
          parts.push(Buffer.from(d.subarray(0, take)))
        }
        releaseAll(reqs)
        commit += c.commit
        c.commit = 0
      } else if (parts.length && parts[parts.length - 1]!.buffer === hdrs.buffer &&
                 parts[parts.length - 1]!.byteOffset + parts[parts.length - 1]!.length === hdrs.byteOffset + o) {
        // Consecutive bare headers: one buffer.
        const last = parts[parts.length - 1]!
        parts[parts.length - 1] = hdrs.subarray(last.byteOffset - hdrs.byteOffset, o + P.SIMPLE_REPLY_SIZE)
      } else parts.push(hdrs.subarray(o, o + P.SIMPLE_REPLY_SIZE))
    }
    out.length = 0
    const np = parts.length
    if (np > 1) sock.cork()
    for (let i = 0; i < np - 1; i++) sock.write(parts[i]!)
    this.#unwritten += n
    sock.write(parts[np - 1]!, () => {
      // Written (or the socket failed; #release settled the counts).
      if (this.closed) return
      this.#unwritten -= n
      this.#commit(-commit)
      this.gw._kick()
    })
    if (np > 1) sock.uncork()
    parts.length = 0
    this.#maybeEnd()
  }

  /** After NBD_CMD_DISC, EOF or shutdown: close once every reply is out. */
  #maybeEnd(): void {
    if (this.closed || this.inflight || this.#out.length || this.#flushQueued) return
    if (this.#disc || this.#closing || (this.#eof && !this.#rest && !this.#stalled)) {
      // What the socket still writes is released at 'close'.
      this.phase = 'closed'
      this.sock.end()
    }
  }

  /** Shutting down: stop after what is in flight. */
  shutdown(): void {
    if (this.phase === 'negotiate') {
      this.destroy()
      return
    }
    if (this.fast) {
      this.gw._fastShutdown(this)
      return
    }
    this.#closing = true
    this.#maybeEnd()
  }
}

/** What the file at a path is, for error messages. */
function fileKind(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link'
  if (st.isDirectory()) return 'a directory'
  if (st.isFile()) return 'a regular file'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device'
  return 'not a socket'
}

/**
 * Make way for a unix socket at @path: nothing there is fine; a socket
 * nobody listens on (stale) is removed; anything else (a live socket, a
 * regular file, a directory, a symlink, whatever it points to) is refused
 * and left alone.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st: Stats
  try {
    st = lstatSync(path)
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return
    throw e
  }
  if (!st.isSocket()) {
    throw Object.assign(new Error(`NbdGateway: ${path} exists and is ${fileKind(st)}, not a stale socket: not replacing it`),
      { code: 'EEXIST' })
  }
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(path)
    const t = setTimeout(() => {
      s.destroy()
      resolve(true) // no refusal: somebody is there
    }, 1000)
    s.once('connect', () => {
      clearTimeout(t)
      s.destroy()
      resolve(true)
    })
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t)
      resolve(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT')
    })
  })
  if (live) throw Object.assign(new Error(`NbdGateway: ${path}: a server listens on this socket: not replacing it`), { code: 'EADDRINUSE' })
  // The same file we looked at (not swapped in between): remove it.
  let now: Stats
  try {
    now = lstatSync(path)
  } catch {
    return
  }
  if (now.isSocket() && now.dev === st.dev && now.ino === st.ino) unlinkSync(path)
  else throw Object.assign(new Error(`NbdGateway: ${path} changed while it was checked: not replacing it`), { code: 'EEXIST' })
}

function spinOnce(gw: NbdGateway): void {
  gw._spin()
}

function flushConn(c: Conn): void {
  c.flush()
}

function release(r: Request): void {
  if (r.state === 'prepared' || r.state === 'received') r.release()
}

function releaseAll(reqs: Request[]): void {
  for (const r of reqs) release(r)
  reqs.length = 0
}

/**
 * The NBD gateway. Construct it, then listen(); close() ends it. It binds one
 * client port in the segment and submits every command to @storagePort.
 *
 *   const gw = new NbdGateway({ segment: seg, storagePort: 1, exports: [{ name: 'vol1' }] })
 *   await gw.listen({ unix: '/tmp/nbd.sock' })
 *   ...
 *   await gw.close()
 */
export class NbdGateway {
  readonly storagePort: number
  readonly maxInflight: number
  readonly requestTimeoutMs: number
  readonly maxReplyBytes: number
  readonly maxReplyTotal: number
  readonly maxConnRequests: number
  /** Segment requests all connections together may hold (the rest is for handshakes and other peers). */
  readonly maxTotalRequests: number
  /** The largest data buffer of the segment: READ/WRITE chunks are this size. */
  readonly maxBuf: number
  /** The maximum block size advertised. */
  readonly maxRequest: number
  readonly handshakeTimeoutMs: number
  readonly segment: Segment
  readonly port: Port
  closing = false
  /** @internal READ bytes the connections committed (TypeScript path). */
  _committed = 0
  /** @internal A request timed out and no reply came since (TypeScript path). */
  _stuck = false
  /** @internal */
  _stats: NbdStats = { connections: 0, connectionsTotal: 0, commands: 0, errors: 0, bytesRead: 0, bytesWritten: 0, protocolErrors: 0 }
  #ownSegment: boolean
  #exports: Map<string, NbdExport>
  #log: NbdLogger
  #infoTimeout: number
  #servers: net.Server[] = []
  #addresses: NbdAddresses = {}
  #conns = new Set<Conn>()
  #stalled = new Set<Conn>()
  #kickQueued = false
  #retry: NodeJS.Timeout | null = null
  /** Xseg requests submitted and not answered yet. */
  #xinflight = 0
  #health: NodeJS.Timeout | null = null
  #lastReplies = 0
  #replies = 0
  /** A command that could not get all of its chunks has the next free request. */
  #owner: Cmd | null = null
  #spinNs: bigint
  #spinning = false
  #spinSince = 0n
  /** The C engine: its own handle on the segment, its client port, the connections it serves. */
  #engine: Engine | null = null
  #engineH: Handle | null = null
  #enginePort = -1
  #fastConns = new Map<number, Conn>()
  /** The unix socket this gateway created (removed at close if still there). */
  #unixId: { dev: number; ino: number } | null = null
  /** The private directory the listening socket was created in (libuv unlinks that name at close). */
  #unixTmp: string | null = null

  constructor(opts: NbdGatewayOptions) {
    if (!opts || typeof opts !== 'object') throw new TypeError('NbdGateway: options are required')
    if (!Number.isInteger(opts.storagePort) || opts.storagePort < 0) throw new TypeError('NbdGateway: storagePort must be a port number')
    if (!Array.isArray(opts.exports) || opts.exports.length === 0) throw new TypeError('NbdGateway: at least one export is required')
    this.#exports = new Map()
    for (const e of opts.exports) {
      if (typeof e.name !== 'string' || Buffer.byteLength(e.name) > P.NBD_MAX_STRING)
        throw new TypeError(`NbdGateway: export name '${String(e.name)}' is not a string of at most 4096 bytes`)
      if (this.#exports.has(e.name)) throw new TypeError(`NbdGateway: export '${e.name}' given twice`)
      const target = e.target ?? e.name
      if (Buffer.byteLength(target) > 256) throw new TypeError(`NbdGateway: target '${target}' is longer than 256 bytes`)
      if (e.size !== undefined && !(BigInt(e.size) >= 0n && BigInt(e.size) <= BigInt(Number.MAX_SAFE_INTEGER)))
        throw new TypeError(`NbdGateway: export '${e.name}' has a bad size`)
      this.#exports.set(e.name, { ...e, target })
    }
    this.storagePort = opts.storagePort
    this.#log = opts.logger === null ? () => {} : (opts.logger ?? defaultLogger)
    this.#infoTimeout = opts.infoTimeoutMs ?? 5000
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 30000
    const count = (v: number | undefined, what: string, def: number, min: number, max: number): number => {
      if (v === undefined) return def
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        throw new TypeError(`NbdGateway: ${what} must be an integer from ${min} to ${max} (got ${String(v)})`)
      return v
    }
    this.maxInflight = count(opts.maxInflight, 'maxInflight', 128, 1, 65536)
    this.requestTimeoutMs = count(opts.requestTimeoutMs, 'requestTimeoutMs', 30000, 0, 86400000)
    if (opts.infoTimeoutMs !== undefined) count(opts.infoTimeoutMs, 'infoTimeoutMs', 0, 1, 86400000)
    if (opts.handshakeTimeoutMs !== undefined) count(opts.handshakeTimeoutMs, 'handshakeTimeoutMs', 0, 1, 86400000)
    if (opts.spinUs !== undefined) count(opts.spinUs, 'spinUs', 0, 0, 1000000)
    this.#spinNs = BigInt(Math.round((opts.spinUs ?? 0) * 1000))
    this.#ownSegment = typeof opts.segment === 'string'
    this.segment = typeof opts.segment === 'string' ? Segment.joinSync(opts.segment, { peerType: 'posixfd' }) : opts.segment
    try {
      if (this.segment.peerType !== 'posixfd') throw new TypeError('NbdGateway: the segment must be joined with the posixfd peer type')
      const cfg = this.segment.config
      let maxBuf = cfg.requestSize
      let maxCount = cfg.nrRequests
      for (const b of cfg.buffers) {
        if (b.size > maxBuf) {
          maxBuf = b.size
          maxCount = b.count
        }
      }
      this.maxBuf = maxBuf
      const chunks = Math.max(1, Math.min(Math.floor(cfg.nrRequests / 4), Math.floor(maxCount / 2)))
      const def = Math.min(32 << 20, maxBuf * chunks)
      const max = opts.maxRequest ?? def
      if (!Number.isInteger(max) || max < 4096 || max > 0xffffffff || max % 4096)
        throw new TypeError(`NbdGateway: maxRequest must be a multiple of 4096 from 4096 to ${0xfffff000} (got ${String(max)})`)
      this.maxRequest = max
      const need = Math.ceil(max / maxBuf)
      this.maxReplyBytes = count(opts.maxReplyBytes, 'maxReplyBytes', Math.max(8 << 20, max), 4096, 2 ** 40)
      this.maxReplyTotal = count(opts.maxReplyTotal, 'maxReplyTotal', Math.max(64 << 20, this.maxReplyBytes), 4096, 2 ** 44)
      // A command's chunks must fit what one connection and all may hold, or it could never complete.
      this.maxTotalRequests = cfg.nrRequests - Math.max(1, Math.floor(cfg.nrRequests / 16))
      if (need > this.maxTotalRequests)
        throw new TypeError(`NbdGateway: maxRequest ${max} needs ${need} requests, the segment gives the gateway ${this.maxTotalRequests}`)
      this.maxConnRequests = count(opts.maxConnRequests, 'maxConnRequests',
        Math.min(this.maxTotalRequests, Math.max(need, Math.floor(cfg.nrRequests / 4))), need, cfg.nrRequests)
      this.port = opts.port === undefined ? this.segment.bindDynamicPort({ role: 'client' }) : this.segment.bindPort(opts.port, { role: 'client' })
    } catch (e) {
      if (this.#ownSegment) this.segment.close()
      throw e
    }
    // XSEG_NBD_FAST=0 in the environment: the TypeScript path (to compare, and to test it).
    const fast = opts.fast ?? process.env.XSEG_NBD_FAST !== '0'
    if (fast && typeof fastNative.nbd_engine === 'function') {
      try {
        this.#startEngine(Number(opts.spinUs ?? 0))
      } catch (e) {
        this.#stopEngine()
        this.#log('debug', `the C engine is not available (${(e as Error).message}); serving in TypeScript`)
      }
    }
  }

  /** Join the segment again for the engine, bind its client port, start it. */
  #startEngine(spinUs: number): void {
    const cfg = this.segment.config
    this.#engineH = native.seg_join(cfg.type, cfg.name, 'posixfd')
    this.#enginePort = native.port_bind(this.#engineH, -1, XSEG_PORT_RECEIVE)
    this.#engine = fastNative.nbd_engine!(this.#engineH, this.#enginePort, this.storagePort, this.maxBuf, this.maxRequest,
      this.maxInflight, Math.max(0, Math.round(spinUs)), (kind, id, text) => this.#onEngine(kind, id, text),
      this.requestTimeoutMs, this.maxReplyBytes, this.maxReplyTotal, this.maxConnRequests, this.maxTotalRequests)
  }

  #stopEngine(): void {
    if (this.#engine) {
      // Its counters stay in the gateway's.
      const f = fastNative.nbd_stats(this.#engine)
      this._stats.commands += f.commands
      this._stats.errors += f.errors
      this._stats.bytesRead += f.bytesRead
      this._stats.bytesWritten += f.bytesWritten
      fastNative.nbd_engine_close(this.#engine)
    }
    this.#engine = null
    if (this.#engineH) {
      try {
        if (this.#enginePort >= 0) native.port_leave(this.#engineH, this.#enginePort)
      } catch {
        // Left already.
      }
      try {
        native.seg_leave(this.#engineH)
      } catch {
        // Left already.
      }
    }
    this.#engineH = null
    this.#enginePort = -1
  }

  /** The C engine's counters, or null when it does not serve (tests, diagnostics). */
  engineStats(): NbdEngineStats | null {
    return this.#engine ? fastNative.nbd_stats(this.#engine) : null
  }

  /** The engine's port (the transmission phase's requests come from it), or -1. */
  get enginePort(): number {
    return this.#enginePort
  }

  #onEngine(kind: string, id: number, text: string): void {
    const c = this.#fastConns.get(id)
    if (!c) return
    switch (kind) {
      case 'fatal':
        this.#fastConns.delete(id)
        c.fatal(text)
        break
      case 'end':
        this.#fastConns.delete(id)
        c.fastEnd()
        break
      case 'gone':
        this.#fastConns.delete(id)
        this.#log('debug', `${c.name}: ${text}`)
        c.destroy()
        break
      default:
        this.#log('debug', `${c.name}: ${text}`)
    }
  }

  /**
   * @internal Hand connection @c (export @r chosen) to the engine, with the
   * bytes @rest already received; false if it cannot take it.
   */
  _fastConn(c: Conn, r: OpenExport, rest: Buffer | null): boolean {
    const e = this.#engine
    const h = (c.sock as unknown as { _handle?: StreamHandle })._handle
    if (!e || !h || typeof h.fd !== 'number' || h.fd < 0 || typeof h.readStop !== 'function') return false
    // The handshake's replies must be out before the engine writes; data must not sit in the stream.
    if (c.sock.writableLength > 0 || c.sock.readableLength > 0 || c.sock.destroyed) return false
    // Node stops reading the socket: from now on the engine reads it.
    c.sock.pause()
    if (h.reading !== false) {
      h.reading = false
      h.readStop()
    }
    try {
      fastNative.nbd_conn(e, c.id, h.fd, r.target, r.size, r.readonly, rest && rest.length ? rest : undefined)
    } catch (err) {
      this.#log('debug', `${c.name}: the C engine refused it (${(err as Error).message})`)
      c.sock.resume()
      return false
    }
    this.#fastConns.set(c.id, c)
    return true
  }

  /** @internal The engine stops serving @c now (its socket is going away). */
  _fastClose(c: Conn): void {
    this.#fastConns.delete(c.id)
    if (this.#engine) fastNative.nbd_conn_close(this.#engine, c.id)
  }

  /** @internal Gateway closing: @c's new commands get ESHUTDOWN, then it ends. */
  _fastShutdown(c: Conn): void {
    if (this.#engine) fastNative.nbd_conn_shutdown(this.#engine, c.id)
  }

  /** Start listening on a unix socket and/or TCP; resolves with the addresses. */
  async listen(opts: NbdListenOptions): Promise<NbdAddresses> {
    if (this.closing) throw new Error('NbdGateway: closed')
    if (!opts.unix && opts.tcp === undefined) throw new TypeError('NbdGateway: listen needs unix and/or tcp')
    if (opts.unix) {
      const path = opts.unix
      if (this.#unixId) throw new TypeError('NbdGateway: it listens on a unix socket already')
      await removeStaleSocket(path)
      // libuv unlinks a listening socket's path when it closes, whatever is
      // there by then: listen in a private directory and hard-link the socket
      // into place (EEXIST if anything appeared there meanwhile), so that the
      // gateway removes @path itself, and only if it is still its socket.
      const tmpDir = mkdtempSync(join(dirname(path), '.nbd'))
      const tmp = join(tmpDir, 's')
      let srv: net.Server | null = null
      try {
        if (Buffer.byteLength(tmp) > 107) throw new Error(`NbdGateway: unix socket path ${path} is too long`)
        srv = await this.#serve((s) => s.listen(tmp))
        try {
          linkSync(tmp, path)
        } catch (e) {
          throw Object.assign(new Error(`NbdGateway: cannot create the socket ${path}: ${(e as Error).message}`),
            { code: (e as { code?: string }).code })
        }
        unlinkSync(tmp)
      } catch (e) {
        if (srv) {
          this.#servers = this.#servers.filter((x) => x !== srv)
          await new Promise<void>((r) => srv!.close(() => r()))
        }
        try {
          rmdirSync(tmpDir)
        } catch {
          // Not empty: left for a human.
        }
        throw e
      }
      // Removed at close only if it is still this socket (same inode).
      const st = lstatSync(path)
      this.#unixId = { dev: st.dev, ino: st.ino }
      this.#unixTmp = tmpDir
      this.#addresses.unix = path
    }
    if (opts.tcp !== undefined) {
      let host = '127.0.0.1'
      let port: number
      if (typeof opts.tcp === 'object') {
        host = opts.tcp.host ?? host
        port = opts.tcp.port
      } else {
        const s = String(opts.tcp)
        const i = s.lastIndexOf(':')
        if (i >= 0) {
          host = s.slice(0, i).replace(/^\[(.*)\]$/, '$1') || host
          port = Number(s.slice(i + 1))
        } else port = Number(s)
      }
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`NbdGateway: bad TCP port in '${String(opts.tcp)}'`)
      const srv = await this.#serve((s) => s.listen(port, host))
      const a = srv.address() as net.AddressInfo
      this.#addresses.tcp = { host: a.address, port: a.port }
    }
    if (!this.#health) {
      this.#health = setInterval(() => this.#checkStorage(), 1000)
      this.#health.unref()
    }
    return this.addresses
  }

  #serve(start: (s: net.Server) => void): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => this.#accept(sock))
      srv.once('error', reject)
      srv.once('listening', () => {
        srv.off('error', reject)
        srv.on('error', (e) => this.#log('error', `listener: ${e.message}`))
        this.#servers.push(srv)
        resolve(srv)
      })
      start(srv)
    })
  }

  get addresses(): NbdAddresses {
    return { ...this.#addresses }
  }

  /** Export names, as NBD_OPT_LIST gives them. */
  exportNames(): string[] {
    return [...this.#exports.keys()]
  }

  stats(): NbdStats {
    const s = { ...this._stats, connections: this.#conns.size }
    if (this.#engine) {
      const f = fastNative.nbd_stats(this.#engine)
      s.commands += f.commands
      s.errors += f.errors
      s.bytesRead += f.bytesRead
      s.bytesWritten += f.bytesWritten
    }
    return s
  }

  #accept(sock: net.Socket): void {
    if (this.closing) {
      sock.destroy()
      return
    }
    const c = new Conn(this, sock)
    this.#conns.add(c)
    this._stats.connectionsTotal++
    this.#log('debug', `${c.name}: connected`)
    void c.negotiate()
  }

  /**
   * Stop: no new connections; connections in negotiation close, commands
   * already received finish (new ones get ESHUTDOWN), then each connection
   * closes. After @graceMs the rest are cut. The port is left, and the
   * segment closed if the gateway joined it.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.#health) clearInterval(this.#health)
    this.#health = null
    // A server's close callback waits for its connections: shut them down first.
    const listening = Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
    this.#servers = []
    for (const c of this.#conns) c.shutdown()
    const until = Date.now() + graceMs
    while (this.#conns.size && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    for (const c of this.#conns) c.destroy()
    this.#conns.clear()
    await listening
    if (this.#retry) clearTimeout(this.#retry)
    this.#stopEngine()
    this.port.close()
    if (this.#ownSegment) this.segment.close()
    if (this.#unixTmp) {
      try {
        rmdirSync(this.#unixTmp)
      } catch {
        // Gone already.
      }
      this.#unixTmp = null
    }
    const path = this.#addresses.unix
    const id = this.#unixId
    this.#unixId = null
    if (path && id) {
      let st: Stats | null = null
      try {
        st = lstatSync(path)
      } catch {
        // Gone already.
      }
      if (st && st.isSocket() && st.dev === id.dev && st.ino === id.ino) {
        try {
          unlinkSync(path)
        } catch {
          // Gone already.
        }
      }
    }
  }

  // --------------------------------------------------------------- for Conn

  /** @internal */
  _log(level: NbdLogLevel, line: string): void {
    this.#log(level, line)
  }

  /** @internal */
  _description(name: string): string | undefined {
    return this.#exports.get(name)?.description
  }

  /** @internal The export @name with its size, or why not. '' is the first export. */
  async _open(name: string): Promise<OpenExport | string> {
    let e = this.#exports.get(name)
    if (!e && name === '') e = this.#exports.values().next().value
    if (!e) return 'no such export'
    let size: number
    if (e.size !== undefined) size = Number(e.size)
    else {
      try {
        size = await this.#info(e.target!)
      } catch (err) {
        return `the storage peer on port ${this.storagePort} did not give the size of '${e.target}': ${(err as Error).message}`
      }
    }
    let flags = P.NBD_FLAG_HAS_FLAGS | P.NBD_FLAG_SEND_FLUSH | P.NBD_FLAG_CAN_MULTI_CONN
    if (e.readonly) flags |= P.NBD_FLAG_READ_ONLY
    else flags |= P.NBD_FLAG_SEND_FUA | P.NBD_FLAG_SEND_TRIM | P.NBD_FLAG_SEND_WRITE_ZEROES
    return { name: e.name, target: e.target!, size, readonly: !!e.readonly, flags }
  }

  async #info(target: string): Promise<number> {
    // The segment may be out of requests for a moment (busy connections): wait, up to the INFO timeout.
    const until = Date.now() + this.#infoTimeout
    let req: Request | null = null
    for (;;) {
      try {
        req = this.port.tryRequest({ op: 'info', target, size: 8, dataLength: 8 })
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOBUFS') throw e
      }
      if (req) break
      if (Date.now() >= until || this.closing) throw Object.assign(new Error('EAGAIN: no free request in the segment'), { code: 'EAGAIN' })
      await new Promise((r) => setTimeout(r, 5))
    }
    this.#xinflight++
    let r: Request
    try {
      r = await req.submit(this.storagePort, { signal: AbortSignal.timeout(this.#infoTimeout) })
    } catch (e) {
      if (req.state === 'prepared') req.release()
      throw e
    } finally {
      this.#xinflight--
    }
    try {
      if (!r.ok) throw new Error(r.errorCode ?? 'failed')
      if (r.serviced < 8) throw new Error(`INFO serviced ${r.serviced} bytes, not 8`)
      const size = r.data.readBigUInt64LE(0)
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`size ${size} is too large`)
      return Number(size)
    } finally {
      r.release()
    }
  }

  /**
   * @internal A request for a chunk of @cmd, or null when the segment has
   * none free (or another command waits for one first).
   */
  _get(cmd: Cmd, op: string, target: string, offset: number, size: number, dataLength: number): Request | null {
    if (this.#owner && this.#owner !== cmd) {
      if (this.#owner.done || this.#owner.conn.closed) this.#owner = null
      else return null
    }
    let req: Request | null
    try {
      req = this.port.tryRequest({ op: op as 'read', target, offset, size, dataLength, flags: cmd.xflags })
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOBUFS') throw e
      req = null
    }
    if (!req) {
      this.#owner = cmd
      return null
    }
    if (this.#owner === cmd) this.#owner = null
    return req
  }

  /** @internal Submit chunk @req of @cmd to the storage port. */
  _submit(cmd: Cmd, req: Request): void {
    this.#xinflight++
    if (this.#spinNs && !this.#spinning) {
      this.#spinning = true
      this.#spinSince = process.hrtime.bigint()
      setImmediate(spinOnce, this)
    }
    const to = this.requestTimeoutMs
    req.submit(this.storagePort, to ? { signal: AbortSignal.timeout(to) } : undefined).then(
      (r) => {
        this.#xinflight--
        this.#replies++
        this._stuck = false
        if (this.#spinning) this.#spinSince = process.hrtime.bigint()
        const c = cmd.conn
        if (c.closed) {
          release(r)
          if (cmd.reqs) releaseAll(cmd.reqs) // its READ chunks that came before
          this.#freed()
          return
        }
        let err = 0
        if (!r.ok) err = P.nbdErrorOf(r.errorCode)
        else if (cmd.op === 'read' && r.serviced !== r.size) err = P.NBD_EIO
        if (err) {
          this.#log('debug', `${c.name}: ${cmd.op} of ${r.size} at ${r.offset}: ${r.errorCode ?? `serviced ${r.serviced}`}`)
          if (cmd.reqs) {
            // The command fails: its READ data is not needed.
            release(r)
            this.#freed()
          }
        }
        c.chunkDone(cmd, r, err)
        if (!cmd.reqs) this.#freed()
      },
      (e: unknown) => {
        this.#xinflight--
        // Not submitted (ENOENT: nobody bound the storage port) or cancelled.
        release(req)
        this.#freed()
        const code = (e as { code?: string }).code
        if (code === 'ABORT_ERR') {
          // The request timeout: the port releases the late reply when it comes.
          this._stuck = true
          this.#log('debug', `${cmd.conn.name}: ${cmd.op} of ${cmd.length} at ${cmd.offset}: no reply from the storage port ` +
            `within ${to / 1000} s; failed with EIO`)
        } else this.#log('debug', `${cmd.conn.name}: ${cmd.op}: ${code ?? String(e)}`)
        cmd.conn.chunkDone(cmd, null, P.NBD_EIO)
      },
    )
  }

  /** @internal Poll the port for replies, once per loop turn, while they are awaited. */
  _spin(): void {
    if (this.closing || !this.#xinflight || process.hrtime.bigint() - this.#spinSince > this.#spinNs) {
      this.#spinning = false
      return
    }
    this.port.receiveSync() // hands replies to their waiters
    setImmediate(spinOnce, this)
  }

  /** A request went back to the segment: stalled connections may go on. */
  #freed(): void {
    if (this.#stalled.size) this._kick()
  }

  /** @internal */
  _stall(c: Conn): void {
    this.#stalled.add(c)
    // Nothing of ours will free a request: look again soon (other peers may).
    if (this.#xinflight === 0 && !this.#retry) {
      this.#retry = setTimeout(() => {
        this.#retry = null
        this._kick()
      }, 2)
    }
  }

  /** @internal */
  _unstall(c: Conn): void {
    this.#stalled.delete(c)
  }

  /** @internal Let stalled connections try again (at setImmediate: never re-entrant). */
  _kick(): void {
    if (this.#kickQueued || !this.#stalled.size) return
    this.#kickQueued = true
    setImmediate(() => {
      this.#kickQueued = false
      const all = [...this.#stalled]
      this.#stalled.clear()
      // The command that owns the next request goes first.
      const owner = this.#owner?.conn
      if (owner && all.includes(owner)) owner.resume()
      for (const c of all) if (c !== owner) c.resume()
    })
  }

  /** @internal */
  _connCount(): number {
    return Math.max(1, this.#conns.size)
  }

  /** @internal */
  _connClosed(c: Conn): void {
    this.#conns.delete(c)
    this.#stalled.delete(c)
    if (this.#owner?.conn === c) this.#owner = null
    this.#log('debug', `${c.name}: closed`)
    if (this.#stalled.size) this._kick()
  }

  /**
   * Once a second while requests are in flight and no reply came: if the
   * storage peer died, recover its port, so that its requests fail back
   * (ECONNRESET, sent on as EIO) instead of hanging.
   */
  #checkStorage(): void {
    let replies = this.#replies
    let inflight = this.#xinflight
    if (this.#engine) {
      const f = fastNative.nbd_stats(this.#engine)
      replies += f.replies
      inflight += f.inflight
    }
    const quiet = replies === this.#lastReplies
    this.#lastReplies = replies
    if (!inflight || !quiet || this.segment.closed) return
    try {
      const p = this.segment.portInfo(this.storagePort)
      if (p.state === 'bound' && !p.alive) {
        const st = this.segment.recover()
        this.#log('warn', `the storage peer on port ${this.storagePort} (pid ${p.pid}) died: ` +
          `${st.requests_failed} requests failed back`)
      }
    } catch (e) {
      if ((e as { code?: string }).code !== 'EALREADY') this.#log('error', `recovery: ${(e as Error).message}`)
    }
  }
}
