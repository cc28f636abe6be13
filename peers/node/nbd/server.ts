// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/server.ts - the NBD gateway: an NBD server (fixed newstyle
// handshake, simple or structured replies, block status, TLS) whose exports
// are targets of a storage peer on an xseg port. Each NBD command becomes
// one or more xseg requests.
//
// The gateway is a Node peer with a native part, its engine:
//
//   engine (C, peers/node/nbd/engine/): listens, accepts, owns every
//     connection's descriptor, serves the transmission phase (requests
//     parsed, submitted, replies written), the request timeout, the caps;
//   handshake.ts: one connection until it has chosen its export;
//   engine.ts: the bridge to the engine (its functions and events);
//   listen.ts: the unix socket path's safety, TCP addresses;
//   this file: NbdGateway, options, connections, export sizes (INFO),
//     the storage peer's health, closing.
//
// Malformed input closes that connection only, with one log line.
// docs/nbd.md describes the options, the protocol coverage and the limits.
import { lookup } from 'node:dns/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as tls from 'node:tls'
import { Op, Segment, type Port, type Request } from '../../../sys/node/ts/index.js'
import { XsegError, xerror } from '../../../sys/node/ts/errors.js'
import { Engine, type NbdEngineStats } from './engine.js'
import { Conn, type HandshakeHost, type NbdLogLevel, type OpenExport } from './handshake.js'
import { parseTcp, removeOwnSocket, removeStaleSocket, socketId } from './listen.js'
import * as P from './protocol.js'
import { VolumeExports } from './volumes.js'

export type { NbdEngineStats } from './engine.js'
export type { NbdLogLevel } from './handshake.js'

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
  /**
   * Volume mode (peers/node/nbd/volumes.ts): @storagePort is vlmcd, and any
   * export name that is not in @exports names a volume ('vol1') or a
   * snapshot ('vol1@snap', read-only), opened with @volumes.owner (default
   * HOST:PID:STARTTIME:nbd) while clients use it. @exports may be empty.
   */
  volumes?: boolean | { owner?: string }
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
   * TLS (NBD_OPT_STARTTLS) with x509 certificates: 'on' offers it, 'require'
   * refuses every option but STARTTLS and ABORT before it (NBD_REP_ERR_TLS_REQD).
   * @certificates: a directory with server-cert.pem and server-key.pem (the
   * names nbdkit's --tls-certificates and qemu's tls-creds-x509 use).
   */
  tls?: { mode: 'off' | 'on' | 'require'; certificates?: string }
}

/** The TLS of a gateway: its mode and server credentials. */
export interface NbdTls {
  mode: 'on' | 'require'
  context: tls.SecureContext
}

/** The TLS credentials in directory @dir (server-cert.pem, server-key.pem); throws naming what is wrong. */
export function tlsContext(dir: string): tls.SecureContext {
  const read = (f: string): Buffer => {
    try {
      return readFileSync(join(dir, f))
    } catch (e) {
      throw xerror('EINVAL', `NbdGateway: TLS certificates: cannot read ${join(dir, f)}: ${(e as Error).message}`)
    }
  }
  const cert = read('server-cert.pem')
  const key = read('server-key.pem')
  try {
    return tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' })
  } catch (e) {
    throw xerror('EINVAL', `NbdGateway: TLS certificates in ${dir}: ${(e as Error).message}`)
  }
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
function defaultLogger(level: NbdLogLevel, line: string): void {
  if (level !== 'debug') process.stderr.write(`xseg nbd: ${line}\n`)
}

/**
 * The NBD gateway. Construct it, then listen(); close() ends it. It binds one
 * client port in the segment (INFO requests, recovery) and its engine another
 * (the transmission phase); every command goes to @storagePort.
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
  /** TLS offered ('on') or required, with its credentials; null: none. */
  readonly tls: NbdTls | null = null
  readonly segment: Segment
  readonly port: Port
  closing = false
  #stats: NbdStats = { connections: 0, connectionsTotal: 0, commands: 0, errors: 0, bytesRead: 0, bytesWritten: 0, protocolErrors: 0 }
  #ownSegment: boolean
  #exports: Map<string, NbdExport>
  #log: NbdLogger
  #infoTimeout: number
  #addresses: NbdAddresses = {}
  #conns = new Map<number, Conn>()
  /** INFO requests submitted and not answered yet. */
  #xinflight = 0
  #health: NodeJS.Timeout | null = null
  #lastReplies = 0
  #engine: Engine
  #listeners: number[] = []
  /** The unix socket this gateway created (removed at close if still there). */
  #unixId: { dev: number; ino: number } | null = null
  /** Volume mode: the volumes of the peer on storagePort; the volume each connection has open. */
  readonly volumes: VolumeExports | null = null
  #connVolume = new Map<number, string>()

  constructor(opts: NbdGatewayOptions) {
    if (!opts || typeof opts !== 'object') throw xerror('EINVAL', 'NbdGateway: options are required')
    if (!Number.isInteger(opts.storagePort) || opts.storagePort < 0) throw xerror('EINVAL', 'NbdGateway: storagePort must be a port number')
    if (!Array.isArray(opts.exports) || (opts.exports.length === 0 && !opts.volumes))
      throw xerror('EINVAL', 'NbdGateway: at least one export is required (or volume mode)')
    this.#exports = new Map()
    for (const e of opts.exports) {
      if (typeof e.name !== 'string' || Buffer.byteLength(e.name) > P.NBD_MAX_STRING)
        throw xerror('EINVAL', `NbdGateway: export name '${String(e.name)}' is not a string of at most 4096 bytes`)
      if (this.#exports.has(e.name)) throw xerror('EINVAL', `NbdGateway: export '${e.name}' given twice`)
      const target = e.target ?? e.name
      if (Buffer.byteLength(target) > 256) throw xerror('EINVAL', `NbdGateway: target '${target}' is longer than 256 bytes`)
      if (e.size !== undefined && !(BigInt(e.size) >= 0n && BigInt(e.size) <= BigInt(Number.MAX_SAFE_INTEGER)))
        throw xerror('EINVAL', `NbdGateway: export '${e.name}' has a bad size`)
      this.#exports.set(e.name, { ...e, target })
    }
    this.storagePort = opts.storagePort
    this.#log = opts.logger === null ? () => {} : (opts.logger ?? defaultLogger)
    this.#infoTimeout = opts.infoTimeoutMs ?? 5000
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 30000
    if (opts.tls !== undefined) {
      const t = opts.tls
      if (!t || typeof t !== 'object' || !['off', 'on', 'require'].includes(t.mode))
        throw xerror('EINVAL', `NbdGateway: tls.mode must be 'off', 'on' or 'require'`)
      if (t.mode !== 'off') {
        if (typeof t.certificates !== 'string' || !t.certificates)
          throw xerror('EINVAL', `NbdGateway: tls '${t.mode}' needs tls.certificates, a directory with server-cert.pem and server-key.pem`)
        this.tls = { mode: t.mode, context: tlsContext(t.certificates) }
      }
    }
    const count = (v: number | undefined, what: string, def: number, min: number, max: number): number => {
      if (v === undefined) return def
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        throw xerror('EINVAL', `NbdGateway: ${what} must be an integer from ${min} to ${max} (got ${String(v)})`)
      return v
    }
    this.maxInflight = count(opts.maxInflight, 'maxInflight', 128, 1, 65536)
    this.requestTimeoutMs = count(opts.requestTimeoutMs, 'requestTimeoutMs', 30000, 0, 86400000)
    if (opts.infoTimeoutMs !== undefined) count(opts.infoTimeoutMs, 'infoTimeoutMs', 0, 1, 86400000)
    if (opts.handshakeTimeoutMs !== undefined) count(opts.handshakeTimeoutMs, 'handshakeTimeoutMs', 0, 1, 86400000)
    if (opts.spinUs !== undefined) count(opts.spinUs, 'spinUs', 0, 0, 1000000)
    this.#ownSegment = typeof opts.segment === 'string'
    this.segment = typeof opts.segment === 'string' ? Segment.joinSync(opts.segment, { peerType: 'posixfd' }) : opts.segment
    try {
      if (this.segment.peerType !== 'posixfd') throw xerror('EINVAL', 'NbdGateway: the segment must be joined with the posixfd peer type')
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
        throw xerror('EINVAL', `NbdGateway: maxRequest must be a multiple of 4096 from 4096 to ${0xfffff000} (got ${String(max)})`)
      this.maxRequest = max
      const need = Math.ceil(max / maxBuf)
      this.maxReplyBytes = count(opts.maxReplyBytes, 'maxReplyBytes', Math.max(8 << 20, max), 4096, 2 ** 40)
      this.maxReplyTotal = count(opts.maxReplyTotal, 'maxReplyTotal', Math.max(64 << 20, this.maxReplyBytes), 4096, 2 ** 44)
      // A command's chunks must fit what one connection and all may hold, or it could never complete.
      this.maxTotalRequests = cfg.nrRequests - Math.max(1, Math.floor(cfg.nrRequests / 16))
      if (need > this.maxTotalRequests)
        throw xerror('EINVAL', `NbdGateway: maxRequest ${max} needs ${need} requests, the segment gives the gateway ${this.maxTotalRequests}`)
      this.maxConnRequests = count(opts.maxConnRequests, 'maxConnRequests',
        Math.min(this.maxTotalRequests, Math.max(need, Math.floor(cfg.nrRequests / 4))), need, cfg.nrRequests)
      this.port = opts.port === undefined ? this.segment.bindDynamicPort({ role: 'client' }) : this.segment.bindPort(opts.port, { role: 'client' })
    } catch (e) {
      if (this.#ownSegment) this.segment.close()
      throw e
    }
    let engine: Engine | undefined
    try {
      this.#engine = engine = new Engine(this.segment, {
        storagePort: this.storagePort, maxBuf: this.maxBuf, maxRequest: this.maxRequest, maxInflight: this.maxInflight,
        spinUs: Number(opts.spinUs ?? 0), requestTimeoutMs: this.requestTimeoutMs, maxReplyBytes: this.maxReplyBytes,
        maxReplyTotal: this.maxReplyTotal, maxConnRequests: this.maxConnRequests, maxTotalRequests: this.maxTotalRequests,
      }, (kind, id, text, fd) => this.#onEngine(kind, id, text, fd))
      if (opts.volumes) {
        this.volumes = new VolumeExports(this.port, this.storagePort, {
          ctl: (op, target, text, size) => this.#engine.ctl(Op[op], target, text, this.#infoTimeout, size),
          owner: typeof opts.volumes === 'object' ? opts.volumes.owner : undefined,
          timeoutMs: this.#infoTimeout,
          log: (line) => this.#log('info', line),
        })
      }
    } catch (e) {
      engine?.close()
      this.port.close()
      if (this.#ownSegment) this.segment.close()
      throw e
    }
  }

  /** The engine's counters (null once closed). */
  engineStats(): NbdEngineStats | null {
    return this.#engine.stats()
  }

  /** The engine's port (the transmission phase's requests come from it), or -1 once closed. */
  get enginePort(): number {
    return this.#engine.closed ? -1 : this.#engine.port
  }

  #onEngine(kind: string, id: number, text: string, fd: number): void {
    if (kind === 'accept') {
      this.#accept(id, fd)
      return
    }
    if (kind === 'error') {
      this.#log('error', text)
      return
    }
    const c = this.#conns.get(id)
    if (!c) return
    switch (kind) {
      case 'fatal':
        // The engine closed it already.
        this.#stats.protocolErrors++
        this.#log('warn', `${c.name}: ${text}; closing the connection`)
        c.engineGone()
        break
      case 'end':
        // Every reply is out: the engine waits for the client's EOF ('closed').
        break
      case 'closed':
        c.engineGone()
        break
      case 'gone':
        this.#log('debug', `${c.name}: ${text}`)
        c.engineGone()
        break
      default:
        this.#log('debug', `${c.name}: ${text}`)
    }
  }

  #accept(id: number, fd: number): void {
    let c: Conn
    try {
      // A HandshakeHost, checked here: not with `implements`, whose @internal
      // members the published .d.ts strips (users' tsc would reject it).
      c = new Conn(this satisfies HandshakeHost, id, fd)
    } catch (e) {
      this.#log('error', `connection ${id}: ${(e as Error).message}`)
      this.#engine.closeConn(id)
      return
    }
    if (this.closing) {
      c.destroy()
      return
    }
    this.#conns.set(id, c)
    this.#stats.connectionsTotal++
    this.#log('debug', `${c.name}: connected`)
    void c.negotiate()
  }

  /** Start listening on a unix socket and/or TCP; resolves with the addresses. */
  async listen(opts: NbdListenOptions): Promise<NbdAddresses> {
    if (this.closing) throw xerror('ESHUTDOWN', 'NbdGateway: closed')
    if (!opts.unix && opts.tcp === undefined) throw xerror('EINVAL', 'NbdGateway: listen needs unix and/or tcp')
    if (opts.unix) {
      const path = opts.unix
      if (this.#unixId) throw xerror('EINVAL', 'NbdGateway: it listens on a unix socket already')
      if (Buffer.byteLength(path) > 107) throw xerror('ENAMETOOLONG', `NbdGateway: unix socket path ${path} is too long`)
      await removeStaleSocket(path)
      // The engine binds @path itself: EADDRINUSE if anything appeared there meanwhile.
      let lid: number
      try {
        lid = this.#engine.listenUnix(path)
      } catch (e) {
        throw new XsegError((e as { code?: string }).code ?? 'EIO', `NbdGateway: cannot create the socket ${path}: ${(e as Error).message}`,
          { cause: e, errno: (e as { errno?: number }).errno })
      }
      this.#listeners.push(lid)
      // Removed at close only if it is still this socket (same inode).
      this.#unixId = socketId(path)
      this.#addresses.unix = path
    }
    if (opts.tcp !== undefined) {
      const { host, port } = parseTcp(opts.tcp)
      const { address } = await lookup(host)
      if (this.closing) throw xerror('ESHUTDOWN', 'NbdGateway: closed')
      const l = this.#engine.listenTcp(address, port)
      this.#listeners.push(l.id)
      this.#addresses.tcp = { host: l.address, port: l.port }
    }
    if (!this.#health) {
      this.#health = setInterval(() => this.#checkStorage(), 1000)
      this.#health.unref()
    }
    return this.addresses
  }

  get addresses(): NbdAddresses {
    return { ...this.#addresses }
  }

  /** Export names, as NBD_OPT_LIST gives them. */
  exportNames(): string[] {
    return [...this.#exports.keys()]
  }

  stats(): NbdStats {
    const s = { ...this.#stats, connections: this.#conns.size }
    const f = this.#engine.stats()
    if (f) {
      s.commands += f.commands
      s.errors += f.errors
      s.bytesRead += f.bytesRead
      s.bytesWritten += f.bytesWritten
    }
    return s
  }

  /**
   * Stop: no new connections; connections in negotiation close, commands
   * already received finish (new ones get ESHUTDOWN), then each connection
   * closes. After @graceMs the rest are cut. The ports are left, and the
   * segment closed if the gateway joined it.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.#health) clearInterval(this.#health)
    this.#health = null
    for (const id of this.#listeners) this.#engine.closeListener(id)
    this.#listeners = []
    for (const c of [...this.#conns.values()]) c.shutdown()
    const until = Date.now() + graceMs
    while (this.#conns.size && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    for (const c of [...this.#conns.values()]) c.destroy()
    this.#conns.clear()
    // The volumes this gateway opened are closed (CLOSE answered, a failed one tried once more) before its port goes.
    if (this.volumes) await this.volumes.finish()
    // Its counters stay in the gateway's.
    const f = this.#engine.stats()
    if (f) {
      this.#stats.commands += f.commands
      this.#stats.errors += f.errors
      this.#stats.bytesRead += f.bytesRead
      this.#stats.bytesWritten += f.bytesWritten
    }
    this.#engine.close()
    this.port.close()
    if (this.#ownSegment) this.segment.close()
    const path = this.#addresses.unix
    const id = this.#unixId
    this.#unixId = null
    if (path && id) removeOwnSocket(path, id)
  }

  // ------------------------------------------------------- for the connections

  /** @internal */
  _log(level: NbdLogLevel, line: string): void {
    this.#log(level, line)
  }

  /** @internal */
  _protocolError(): void {
    this.#stats.protocolErrors++
  }

  /** @internal */
  _description(name: string): string | undefined {
    return this.#exports.get(name)?.description
  }

  /** @internal */
  _serve(c: Conn, r: OpenExport, rest: Buffer): void {
    this.#engine.serve(c.id, r.target, r.size, r.readonly, rest, c.structured, c.metaIdFor(r.name))
  }

  /** @internal */
  _pair(c: Conn): number {
    return this.#engine.pair(c.id)
  }

  /** @internal */
  _closeFd(c: Conn): void {
    this.#engine.closeConn(c.id)
  }

  /** @internal */
  _shutdownServed(c: Conn): void {
    this.#engine.shutdown(c.id)
  }

  /** @internal */
  _connClosed(c: Conn): void {
    if (this.#conns.get(c.id) === c) this.#conns.delete(c.id)
    const vol = this.#connVolume.get(c.id)
    if (vol !== undefined) {
      this.#connVolume.delete(c.id)
      this.volumes!.release(vol)
    }
    this.#log('debug', `${c.name}: closed`)
  }

  /** @internal The exports for NBD_OPT_LIST: the configured ones, then (volume mode) the volumes. */
  async _list(): Promise<{ name: string; description: string }[]> {
    const out = [...this.#exports.values()].map((e) => ({ name: e.name, description: e.description ?? '' }))
    if (this.volumes) {
      try {
        for (const v of await this.volumes.list()) if (!this.#exports.has(v.name)) out.push(v)
      } catch (err) {
        this.#log('warn', `listing the volumes of port ${this.storagePort}: ${(err as Error).message}`)
      }
    }
    return out
  }

  /**
   * @internal The export @name with its size, or why not. '' is the first
   * export. @conn: the connection that chooses it (GO, EXPORT_NAME); a
   * volume is opened for it until it ends. Without: a question (NBD_OPT_INFO).
   */
  async _open(name: string, conn?: Conn): Promise<OpenExport | string> {
    let e = this.#exports.get(name)
    if (!e && name === '' && !this.volumes) e = this.#exports.values().next().value
    if (!e && this.volumes) return this.#openVolume(name, conn)
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
    let flags = P.NBD_FLAG_HAS_FLAGS | P.NBD_FLAG_SEND_FLUSH | P.NBD_FLAG_CAN_MULTI_CONN | P.NBD_FLAG_SEND_CACHE
    if (e.readonly) flags |= P.NBD_FLAG_READ_ONLY
    else flags |= P.NBD_FLAG_SEND_FUA | P.NBD_FLAG_SEND_TRIM | P.NBD_FLAG_SEND_WRITE_ZEROES | P.NBD_FLAG_SEND_FAST_ZERO
    return { name: e.name, target: e.target!, size, readonly: !!e.readonly, flags }
  }

  async #openVolume(name: string, conn?: Conn): Promise<OpenExport | string> {
    if (name === '') return 'no default export: name a volume (nbd+unix:///VOLUME?socket=...)'
    const r = await this.volumes!.get(name, conn !== undefined)
    if (typeof r === 'string') return r
    if (conn) {
      if (conn.closed || this.closing) {
        // It went away while the volume was being opened.
        this.volumes!.release(name)
        return 'the connection closed'
      }
      this.#connVolume.set(conn.id, name)
    }
    let flags = P.NBD_FLAG_HAS_FLAGS | P.NBD_FLAG_SEND_FLUSH | P.NBD_FLAG_CAN_MULTI_CONN | P.NBD_FLAG_SEND_CACHE
    if (r.readonly) flags |= P.NBD_FLAG_READ_ONLY
    else flags |= P.NBD_FLAG_SEND_FUA | P.NBD_FLAG_SEND_TRIM | P.NBD_FLAG_SEND_WRITE_ZEROES | P.NBD_FLAG_SEND_FAST_ZERO
    return { name, target: name, size: r.size, readonly: r.readonly, flags }
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
      if (Date.now() >= until || this.closing) throw xerror('EAGAIN', 'no free request in the segment')
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
   * Once a second while requests are in flight and no reply came (to the engine): if the
   * storage peer died, recover its port, so that its requests fail back
   * (ECONNRESET, sent on as EIO) instead of hanging.
   */
  #checkStorage(): void {
    const f = this.#engine.stats()
    if (!f) return
    const replies = f.replies
    const inflight = this.#xinflight + f.inflight
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
