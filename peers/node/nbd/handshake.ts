// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/handshake.ts - one NBD connection until it has chosen its
// export: the fixed newstyle handshake and the options (GO, INFO,
// EXPORT_NAME, LIST, ABORT, STRUCTURED_REPLY, LIST/SET_META_CONTEXT,
// STARTTLS), then the hand-off to the engine, which serves the transmission
// phase (peers/node/nbd/engine/); a TLS connection's engine side is a
// socketpair pumped to and from the TLS socket here.
//
// The engine accepted the connection and owns its descriptor; the handshake
// runs on a net.Socket over a dup() of it (net.Socket({ fd }), a public
// API). At the hand-off the socket stops reading, what it already received
// goes to the engine with the connection, and the dup is closed (closing one
// of two descriptors sends nothing to the client).
import * as net from 'node:net'
import * as tls from 'node:tls'
import * as P from './protocol.js'

const MAX_OPTION_LEN = 16384
const MAX_OPTIONS = 1024
/** Bytes a client may send ahead during negotiation. */
const MAX_AHEAD = 1 << 20
const EMPTY = Buffer.alloc(0)

export type NbdLogLevel = 'info' | 'warn' | 'error' | 'debug'

/** An export as a connection uses it: size known. */
export interface OpenExport {
  name: string
  target: string
  size: number
  readonly: boolean
  flags: number
}

/** What a connection needs of its gateway (NbdGateway). */
export interface HandshakeHost {
  readonly closing: boolean
  readonly handshakeTimeoutMs: number
  readonly maxRequest: number
  /** TLS offered or required (NBD_OPT_STARTTLS), or null. */
  readonly tls: { mode: 'on' | 'require'; context: tls.SecureContext } | null
  exportNames(): string[]
  /** A TLS connection: the engine's descriptor becomes a socketpair's end; the other end's fd. */
  _pair(c: Conn): number
  _log(level: NbdLogLevel, line: string): void
  _protocolError(): void
  _description(name: string): string | undefined
  /** The export @name, or why not; @conn: it chooses it (GO, EXPORT_NAME), not just asks (INFO). */
  _open(name: string, conn?: Conn): Promise<OpenExport | string>
  /** The exports NBD_OPT_LIST gives, with their descriptions. */
  _list(): Promise<{ name: string; description: string }[]>
  /** Serve connection @c with export @r in the engine; @rest: bytes received after the handshake. */
  _serve(c: Conn, r: OpenExport, rest: Buffer): void
  /** Close the engine's descriptor of @c (in its handshake, served or lingering). */
  _closeFd(c: Conn): void
  _shutdownServed(c: Conn): void
  _connClosed(c: Conn): void
}

class ProtocolError extends Error {}
class Closed extends Error {}

/** One client connection: the handshake here, then the engine. */
export class Conn {
  readonly gw: HandshakeHost
  readonly sock: net.Socket
  readonly id: number
  readonly peer: string
  /** negotiate: the handshake; handoff: waiting for its replies to be written; served: by the engine. */
  phase: 'negotiate' | 'handoff' | 'served' | 'closed' = 'negotiate'
  exp: OpenExport | null = null
  #inq: Buffer[] = []
  #inLen = 0
  #want = 0
  #wake: ((ok: boolean) => void) | null = null
  #noZeroes = false
  #gone = false
  #timer: NodeJS.Timeout | null = null
  /** After NBD_OPT_STARTTLS: the TLS socket over sock, which the handshake (and later the pump) uses. */
  #tls: tls.TLSSocket | null = null
  /** NBD_OPT_STRUCTURED_REPLY was negotiated: the engine replies in chunks. */
  structured = false
  /** The export whose base:allocation context NBD_OPT_SET_META_CONTEXT selected, if any. */
  #metaExport: string | undefined = undefined

  /** The context id of base:allocation for export @name, if the client selected it for that export. */
  metaIdFor(name: string): number | undefined {
    return this.structured && this.#metaExport !== undefined && this.#metaExport === name ? P.BASE_ALLOCATION_ID : undefined
  }

  /** Connection @id accepted by the engine; @fd is the dup the handshake reads and writes. */
  constructor(gw: HandshakeHost, id: number, fd: number) {
    this.gw = gw
    this.id = id
    this.sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true })
    const sock = this.sock
    this.peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'unix'
    sock.on('data', (d: Buffer) => this.#onData(d))
    sock.on('end', () => this.#onEnd())
    sock.on('error', (e: Error) => this.gw._log('debug', `${this.name}: ${e.message}`))
    sock.on('close', () => this.#onClose())
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
    this.gw._protocolError()
    this.gw._log('warn', `${this.name}: ${msg}; closing the connection`)
    this.destroy()
  }

  /** Close it now, wherever it is. */
  destroy(): void {
    if (this.closed) return
    const served = this.phase === 'served'
    this.phase = 'closed'
    this.#wakeReader(false)
    this.gw._closeFd(this)
    if (served) this.#finish()
    else this.sock.destroy() // 'close' ends it
  }

  /** The engine closed it (a protocol error, a failed socket, or the end after lingering). */
  engineGone(): void {
    this.phase = 'closed'
    this.#finish()
  }

  /** Shutting down: a handshake ends now; a served connection after what is in flight. */
  shutdown(): void {
    if (this.phase === 'served') this.gw._shutdownServed(this)
    else this.destroy()
  }

  /** What the handshake reads and writes: the TLS socket after STARTTLS, else the socket. */
  get #stream(): net.Socket {
    return this.#tls ?? this.sock
  }

  /** TLS is on (NBD_OPT_STARTTLS done). */
  get tlsActive(): boolean {
    return this.#tls !== null
  }

  #finish(): void {
    if (this.#gone) return
    this.#gone = true
    this.#tls?.destroy()
    this.gw._connClosed(this)
  }

  #onClose(): void {
    this.phase = 'closed'
    this.#wakeReader(false)
    this.gw._closeFd(this)
    this.#finish()
  }

  #onEnd(): void {
    // The client sent everything during negotiation: close. (Before the hand-off the engine sees the EOF itself.)
    if (this.phase === 'negotiate') {
      this.#wakeReader(false)
      this.#stream.end()
    }
  }

  #onData(d: Buffer): void {
    if (this.closed) return
    this.#inq.push(d)
    this.#inLen += d.length
    if (this.phase !== 'negotiate') return
    if (this.#inLen > MAX_AHEAD) {
      this.fatal(`more than ${MAX_AHEAD} bytes sent ahead during negotiation`)
      return
    }
    if (this.#wake && this.#inLen >= this.#want) this.#wakeReader(true)
  }

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
    if (this.phase === 'negotiate') this.#stream.write(b)
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
    this.#timer = t
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
    if (this.gw.tls?.mode === 'require' && !this.#tls && opt !== P.NBD_OPT_STARTTLS && opt !== P.NBD_OPT_ABORT) {
      if (opt === P.NBD_OPT_EXPORT_NAME) {
        // It cannot fail politely: close.
        this.gw._log('warn', `${this.name}: NBD_OPT_EXPORT_NAME without TLS, which this server requires; closing the connection`)
        this.destroy()
        return true
      }
      this.#optError(opt, P.NBD_REP_ERR_TLS_REQD, 'this server requires TLS: send NBD_OPT_STARTTLS first')
      return false
    }
    switch (opt) {
      case P.NBD_OPT_STARTTLS:
        if (!this.gw.tls) break
        if (data.length) return this.#invalid(opt, 'NBD_OPT_STARTTLS takes no data')
        if (this.#tls) return this.#invalid(opt, 'TLS is already on')
        if (this.#inLen) throw new ProtocolError('data sent after NBD_OPT_STARTTLS before its reply')
        this.#optReply(opt, P.NBD_REP_ACK)
        this.#startTls()
        return false
      case P.NBD_OPT_EXPORT_NAME: {
        const name = data.toString()
        const r = await this.gw._open(name, this)
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
        void this.#handOff(r)
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
        const r = await this.gw._open(name, opt === P.NBD_OPT_GO ? this : undefined)
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
          void this.#handOff(r)
          return true
        }
        return false
      }
      case P.NBD_OPT_LIST: {
        if (data.length) return this.#invalid(opt, 'NBD_OPT_LIST takes no data')
        const list = await this.gw._list()
        if (this.closed) return true
        for (const { name, description } of list) {
          // The name, then its description (what follows the name is for humans).
          const nb = Buffer.from(name)
          const db = Buffer.from(description.slice(0, P.NBD_MAX_STRING))
          const b = Buffer.allocUnsafe(4 + nb.length + db.length)
          b.writeUInt32BE(nb.length, 0)
          nb.copy(b, 4)
          db.copy(b, 4 + nb.length)
          this.#optReply(opt, P.NBD_REP_SERVER, b)
        }
        this.#optReply(opt, P.NBD_REP_ACK)
        return false
      }
      case P.NBD_OPT_STRUCTURED_REPLY:
        if (data.length) return this.#invalid(opt, 'NBD_OPT_STRUCTURED_REPLY takes no data')
        this.structured = true
        this.#optReply(opt, P.NBD_REP_ACK)
        return false
      case P.NBD_OPT_LIST_META_CONTEXT:
      case P.NBD_OPT_SET_META_CONTEXT:
        return this.#metaContext(opt, data)
      case P.NBD_OPT_ABORT:
        this.#optReply(opt, P.NBD_REP_ACK)
        this.phase = 'closed'
        this.#stream.end()
        return true
    }
    // STARTTLS without TLS configured, EXTENDED_HEADERS and the unknown.
    this.#optError(opt, P.NBD_REP_ERR_UNSUP, `option ${P.optionName(opt)} is not supported`)
    return false
  }

  /**
   * STARTTLS was acknowledged (in plaintext): from now on the handshake reads
   * and writes through a TLS socket over the connection. A client that does
   * not complete the TLS handshake (a plaintext one, a bad certificate) is
   * closed with one log line.
   */
  #startTls(): void {
    const raw = this.sock
    raw.removeAllListeners('data')
    raw.removeAllListeners('end')
    const t = new tls.TLSSocket(raw, { isServer: true, secureContext: this.gw.tls!.context })
    this.#tls = t
    t.on('data', (d: Buffer) => this.#onData(d))
    t.on('end', () => this.#onEnd())
    t.on('error', (e: Error) => {
      if (this.phase === 'negotiate') this.fatal(`TLS: ${e.message}`)
      else this.gw._log('debug', `${this.name}: TLS: ${e.message}`)
    })
    t.on('secure', () => this.gw._log('debug', `${this.name}: TLS ${t.getProtocol() ?? ''} established`))
  }

  /**
   * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: the one context
   * the gateway has is base:allocation. LIST answers the queries that name
   * it ('base:allocation', 'base:', or no query at all) with id 0; SET
   * (after structured replies) selects it for the export named, id
   * BASE_ALLOCATION_ID, and forgets an earlier selection.
   */
  #metaContext(opt: number, data: Buffer): boolean {
    const set = opt === P.NBD_OPT_SET_META_CONTEXT
    if (set && !this.structured) return this.#invalid(opt, 'NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first')
    if (data.length < 8) return this.#invalid(opt, 'the option is too short')
    const nlen = data.readUInt32BE(0)
    if (nlen > data.length - 8) return this.#invalid(opt, 'the name length is past the option')
    const name = data.toString('utf8', 4, 4 + nlen)
    const nq = data.readUInt32BE(4 + nlen)
    const queries: string[] = []
    let at = 8 + nlen
    for (let i = 0; i < nq; i++) {
      if (data.length - at < 4) return this.#invalid(opt, 'the queries do not fit the option')
      const ql = data.readUInt32BE(at)
      if (ql > data.length - at - 4) return this.#invalid(opt, 'the queries do not fit the option')
      queries.push(data.toString('utf8', at + 4, at + 4 + ql))
      at += 4 + ql
    }
    if (at !== data.length) return this.#invalid(opt, 'bytes after the queries')
    if (set) this.#metaExport = undefined
    const match = set ? queries.includes(P.BASE_ALLOCATION)
      : queries.length === 0 || queries.some((q) => q === P.BASE_ALLOCATION || q === 'base:')
    if (match) {
      const nb = Buffer.from(P.BASE_ALLOCATION)
      const b = Buffer.allocUnsafe(4 + nb.length)
      b.writeUInt32BE(set ? P.BASE_ALLOCATION_ID : 0, 0)
      nb.copy(b, 4)
      this.#optReply(opt, P.NBD_REP_META_CONTEXT, b)
      if (set) this.#metaExport = name
    }
    this.#optReply(opt, P.NBD_REP_ACK)
    return false
  }

  /**
   * The hand-off of a TLS connection: the engine serves one end of a
   * socketpair (nbd_conn_pair), and this pumps plaintext between the other
   * end and the TLS socket, both ways, with back-pressure (pipe). The
   * engine's FIN (after NBD_CMD_DISC) ends the TLS stream (close_notify); the
   * client's end ends the pair, so the engine's lingering and 'closed' work
   * as for any connection. Either side closing destroys the other.
   */
  #handOffTls(r: OpenExport, t: tls.TLSSocket): void {
    // The handshake's replies queued on t go out first: the pump writes after them.
    if (t.destroyed) return
    t.removeAllListeners('data')
    t.removeAllListeners('end')
    t.pause()
    for (let d = t.read() as Buffer | null; d !== null; d = t.read() as Buffer | null) this.#inq.push(d)
    const rest = this.#inq.length ? Buffer.concat(this.#inq) : EMPTY
    this.#inq = []
    this.#inLen = 0
    let inner: net.Socket
    try {
      inner = new net.Socket({ fd: this.gw._pair(this), readable: true, writable: true, allowHalfOpen: true })
    } catch (err) {
      this.gw._log('error', `${this.name}: no socketpair for the TLS connection (${(err as Error).message})`)
      this.destroy()
      return
    }
    // From here the engine's events end the connection: the TLS socket's 'close' only ends the pair.
    this.sock.removeAllListeners('close')
    this.phase = 'served'
    try {
      this.gw._serve(this, r, rest)
    } catch (err) {
      inner.destroy()
      this.gw._log('error', `${this.name}: the engine refused it (${(err as Error).message})`)
      this.destroy()
      return
    }
    inner.on('error', (e: Error) => this.gw._log('debug', `${this.name}: TLS pump: ${e.message}`))
    t.pipe(inner)
    inner.pipe(t)
    inner.on('close', () => {
      // The engine closed its end: let what is queued go out, then close.
      if (!t.destroyed) {
        t.end()
        setTimeout(() => t.destroy(), 5000).unref()
      }
    })
    t.on('close', () => inner.destroy())
  }

  #invalid(opt: number, msg: string): false {
    this.#optError(opt, P.NBD_REP_ERR_INVALID, msg)
    return false
  }

  /**
   * Export @r is chosen: once the handshake's replies are written, the
   * engine serves the connection; what was received after the handshake
   * goes with it.
   */
  async #handOff(r: OpenExport): Promise<void> {
    if (this.closed) return
    this.exp = r
    this.phase = 'handoff'
    if (this.#timer) clearTimeout(this.#timer)
    this.gw._log('debug', `${this.name}: transmission`)
    if (this.#tls) {
      this.#handOffTls(r, this.#tls)
      return
    }
    const sock = this.sock
    if (sock.writableLength > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          sock.off('drain', done)
          sock.off('close', done)
          resolve()
        }
        sock.on('drain', done)
        sock.on('close', done)
      })
    }
    if (this.phase !== 'handoff' || sock.destroyed) return
    // Stop reading; what the stream holds already is the engine's input.
    sock.removeAllListeners('data')
    sock.removeAllListeners('end')
    sock.removeAllListeners('close')
    sock.pause()
    for (let d = sock.read() as Buffer | null; d !== null; d = sock.read() as Buffer | null) this.#inq.push(d)
    const rest = this.#inq.length ? Buffer.concat(this.#inq) : EMPTY
    this.#inq = []
    this.#inLen = 0
    sock.destroy() // our dup only
    this.phase = 'served'
    try {
      this.gw._serve(this, r, rest)
    } catch (err) {
      this.gw._log('error', `${this.name}: the engine refused it (${(err as Error).message})`)
      this.destroy()
    }
  }
}
