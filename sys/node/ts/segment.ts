// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/segment.ts - a shared-memory segment joined by this process
// (or this worker thread): create, join, ports, status, close.
//
//   await using seg = await Segment.create('posix:demo:16:1024:64K')
//   const server = seg.bindPort(1)
//   const client = seg.bindDynamicPort()
//
// A spec is `type:name:nr_ports:nr_requests:request_size:extra_size:page_shift`
// with optional `key=value` fields (docs/spec.md); a bad field throws EINVAL
// with a message that names it.
import { native, type NativeConfig, type NativeGrow, type NativeRecovery, type NativeSegInfo, type NativeSegPeek, XSEG_PORT_ACCEPT, XSEG_PORT_RECEIVE } from './binding.js'
import type { PeerType } from './constants.js'
import { Core, uint } from './core.js'
import { about, xerror, type XsegError } from './errors.js'
import { Port, type PortInfo } from './port.js'

// The words of the errors of seg_create, seg_join and port_bind that name
// the user's segment or port (errors.ts about()); undefined: the addon's.
const createText = (e: XsegError): string | undefined =>
  e.code === 'EEXIST' ? 'exists already' : undefined
const joinText = (e: XsegError): string | undefined =>
  e.code === 'ENOENT' ? 'does not exist' : undefined
const dynBindText = (e: XsegError): string | undefined =>
  e.code === 'ENOSPC' ? 'has no free dynamic port' : undefined
const bindText = (e: XsegError): string | undefined =>
  e.code === 'EBUSY' ? 'is bound by a live peer' :
  e.code === 'EALREADY' ? 'is bound here already' :
  e.code === 'EINVAL' ? 'is not a static port of the segment' : undefined

/** A parsed spec, every default filled in. */
export interface SegmentConfig {
  type: string
  name: string
  nrPorts: number
  /** Ports below this number are static (bindPort), the rest dynamic. */
  dynports: number
  nrRequests: number
  /** The reserve a growable segment is laid out for (max_requests=; else nrRequests). Request indices stay below it. */
  maxRequests: number
  requestSize: number
  extraSize: number
  pageShift: number
  mode: number
  gid: number
  autorm: boolean
  /** Entries of the peer-type table: how many different peer types may join (peer_types=). */
  peerTypes: number
  buffers: { size: number; count: number }[]
  /** The canonical spec string. */
  spec: string
  /** Bytes the segment takes. */
  layoutSize: number
}

export interface JoinOptions {
  /** The peer type (signaling driver) of this process's ports; default 'posixfd'. */
  peerType?: PeerType
  /**
   * While replies are awaited, how often (ms) to check that the peers they
   * went to are alive; a dead one is recovered, and its requests reject with
   * ECONNRESET. Default 1000; 0 turns the check off.
   */
  peerCheckMs?: number
  /**
   * Join as an observer (join and joinSync only): the segment is mapped and
   * checked, info(), portInfo(), verify() and recover() work, but this
   * process takes no entry of the peer-type table (so a segment whose table
   * is full can still be looked at), is not counted as attached, and cannot
   * bind a port (EPERM). What `xseg status`, `verify`, `top` and `metrics` use.
   */
  observe?: boolean
}

export interface CreateOptions extends JoinOptions {
  /** Destroy the segment (and its FIFO directory) when this handle closes. */
  destroyOnClose?: boolean
}

export interface BindOptions {
  /** Only accept requests (a server) or only receive replies (a client); default both. */
  role?: 'server' | 'client' | 'both'
}

export type SegmentInfo = NativeSegInfo

/** Segment.peek(): a header's fields, read without joining. */
export type SegmentPeek = Omit<NativeSegPeek, 'config'> & { config: SegmentConfig }
export type RecoveryStats = NativeRecovery
/** Segment.grow(): done false while a shrink waits for requests still held (call again). */
export type GrowStatus = NativeGrow

function config(c: NativeConfig): SegmentConfig {
  return {
    type: c.type,
    name: c.name,
    nrPorts: c.nr_ports,
    dynports: c.dynports,
    nrRequests: c.nr_requests,
    maxRequests: c.max_requests ?? c.nr_requests,
    requestSize: c.request_size,
    extraSize: c.extra_size,
    pageShift: c.page_shift,
    mode: c.mode,
    gid: c.gid,
    autorm: c.autorm,
    peerTypes: c.peer_types,
    buffers: c.buffers,
    spec: c.spec,
    layoutSize: c.layout_size,
  }
}

function specString(spec: unknown): string {
  if (typeof spec !== 'string') throw xerror('EINVAL', 'a spec must be a string')
  return spec
}

function peerType(opts: JoinOptions | undefined): PeerType {
  const t = opts?.peerType ?? 'posixfd'
  if (t !== 'posixfd' && t !== 'futex' && t !== 'segdev')
    throw xerror('EINVAL', `peer type '${String(t)}' is not available in Node (posixfd, futex or segdev)`)
  return t
}

function bindFlags(opts: BindOptions | undefined): number {
  switch (opts?.role ?? 'both') {
    case 'server':
      return XSEG_PORT_ACCEPT
    case 'client':
      return XSEG_PORT_RECEIVE
    case 'both':
      return XSEG_PORT_ACCEPT | XSEG_PORT_RECEIVE
    default:
      throw xerror('EINVAL', `role must be 'server', 'client' or 'both'`)
  }
}

/*
 * Segments of this thread still open. process.exit(), an uncaught exception
 * and a normal exit all emit 'exit' on the main thread, where the addon's
 * cleanup hook does not run: close them there, so their ports are left
 * rather than left to recovery. (Killed by a signal, recovery settles them.)
 */
const open = new Set<Segment>()
let exitHook = false

function track(seg: Segment): void {
  open.add(seg)
  if (!exitHook) {
    exitHook = true
    process.once('exit', () => {
      for (const s of [...open]) {
        try {
          s.close()
        } catch {
          // Exiting anyway.
        }
      }
    })
  }
}

export class Segment {
  /** The parsed spec of the segment as it was joined. */
  readonly config: SegmentConfig
  /** This process's peer type in the segment (unused by an observer). */
  readonly peerType: PeerType
  /** Joined with `observe: true`: looks, binds no port. */
  readonly observer: boolean
  /** See JoinOptions.peerCheckMs. */
  readonly peerCheckMs: number
  #core: Core
  #ports = new Map<number, Port>()
  #destroyOnClose: boolean

  private constructor(core: Core, cfg: SegmentConfig, type: PeerType, destroyOnClose: boolean, peerCheckMs: number,
    observer: boolean) {
    this.#core = core
    this.config = cfg
    this.peerType = type
    this.observer = observer
    this.peerCheckMs = peerCheckMs
    this.#destroyOnClose = destroyOnClose
  }

  /** Parse and check a spec without touching any segment. */
  static parseSpec(spec: string): SegmentConfig {
    return config(native.seg_parse(specString(spec)))
  }

  /**
   * Create the segment of @spec (EEXIST if its name is taken) and join it.
   * The Promise form is for symmetry with other resources: it is immediate.
   */
  static async create(spec: string, opts?: CreateOptions): Promise<Segment> {
    return Segment.createSync(spec, opts)
  }

  static createSync(spec: string, opts?: CreateOptions): Segment {
    if (opts?.observe) throw xerror('EINVAL', 'observe is for join: create joins the segment it makes as a peer')
    const type = peerType(opts)
    const cfg = Segment.parseSpec(spec)
    const check = uint(opts?.peerCheckMs ?? 1000, 'peerCheckMs', 2 ** 31 - 1)
    try {
      native.seg_create(cfg.spec)
    } catch (e) {
      throw about(e, `${cfg.type}:${cfg.name}`, createText)
    }
    try {
      return Segment.#join(cfg, type, opts?.destroyOnClose ?? false, check)
    } catch (e) {
      native.seg_destroy_name(cfg.type, cfg.name)
      throw e
    }
  }

  /**
   * Create the segment of @spec (EEXIST if its name is taken) without joining
   * it, like `xseg-tool create`: with autorm=1 it is removed when the last
   * peer that joins it leaves, not when this call returns. Returns the
   * config parsed from @spec.
   */
  static createDetached(spec: string): SegmentConfig {
    const cfg = Segment.parseSpec(spec)
    try {
      native.seg_create(cfg.spec)
    } catch (e) {
      throw about(e, `${cfg.type}:${cfg.name}`, createText)
    }
    return cfg
  }

  /**
   * Create a private segment of @spec's config (its type and name are
   * ignored) in a new memfd with no name anywhere, sealed against shrinking,
   * and return its file descriptor (close-on-exec). Join it here with
   * joinSync(`memfd:${fd}`); hand it to a child as one of spawn()'s stdio
   * entries (the child joins memfd:<its number>, e.g. memfd:3); or send it
   * over a connected Unix socket with sendMemfd(). The memory goes when the
   * last descriptor is closed (fs.closeSync) and the last peer has left.
   */
  static createMemfd(spec: string): number {
    return native.seg_create_memfd(specString(spec))
  }

  /** Send the descriptor @fd over the connected Unix socket @sock (SCM_RIGHTS). */
  static sendMemfd(sock: number, fd: number): void {
    native.memfd_send(sock, fd)
  }

  /**
   * Receive a descriptor sent with sendMemfd() or xseg_memfd_send() on the
   * Unix socket @sock (blocking, unless @sock is non-blocking: EAGAIN).
   */
  static recvMemfd(sock: number): number {
    return native.memfd_recv(sock)
  }

  /** Join an existing segment (only its type and name matter in @spec). */
  static async join(spec: string, opts?: JoinOptions): Promise<Segment> {
    return Segment.joinSync(spec, opts)
  }

  static joinSync(spec: string, opts?: JoinOptions): Segment {
    if (opts?.observe && opts.peerType !== undefined)
      throw xerror('EINVAL', 'observe and peerType exclude each other: an observer has no peer type')
    const type = peerType(opts)
    const cfg = Segment.parseSpec(spec)
    return Segment.#join(cfg, type, false, uint(opts?.peerCheckMs ?? 1000, 'peerCheckMs', 2 ** 31 - 1), opts?.observe === true)
  }

  static #join(cfg: SegmentConfig, type: PeerType, destroyOnClose: boolean, peerCheckMs: number, observer = false): Segment {
    let h
    try {
      h = native.seg_join(cfg.type, cfg.name, observer ? '' : type)
    } catch (e) {
      throw about(e, `${cfg.type}:${cfg.name}`, joinText)
    }
    const core = new Core(h)
    // The config the creator wrote, not the one this spec may have guessed.
    const joined = config(native.seg_info(h).config)
    const seg = new Segment(core, joined, type, destroyOnClose, peerCheckMs, observer)
    track(seg)
    return seg
  }

  /**
   * Destroy a segment by spec without joining it (like ipcrm); the core
   * removes its posixfd FIFO directory too. Peers still joined keep their
   * mapping.
   */
  static destroy(spec: string): void {
    const cfg = Segment.parseSpec(spec)
    native.seg_destroy_name(cfg.type, cfg.name)
  }

  /**
   * Change owner, group and mode of the live segment of @spec, in its file
   * and its header together (only its owner or root may): @set is
   * "mode=0660,group=G,owner=U", any of them, names or numbers. Returns the
   * file's owner, group and mode afterwards.
   */
  static setOwnerMode(spec: string, set: string): { uid: number; gid: number; mode: number } {
    const cfg = Segment.parseSpec(spec)
    return native.seg_set_owner(cfg.type, cfg.name, set)
  }

  /**
   * The header of segment @name of @type, read without joining it (no
   * attach, no recovery): config, size, creator, mode, creation time, attach
   * count, flags, live joined pids. Throws with `code` (EBADMSG: not an xseg
   * segment; EPROTO: another layout version; ENOENT, EACCES...).
   */
  static peek(type: string, name: string): SegmentPeek {
    const p = native.seg_peek(type, name)
    return { ...p, config: config(p.config) }
  }

  /** The names of the segments of @type ('posix' by default). */
  static list(type = 'posix'): string[] {
    return native.seg_list(type)
  }

  get name(): string {
    return this.config.name
  }

  get type(): string {
    return this.config.type
  }

  get closed(): boolean {
    return this.#core.closed
  }

  /** Bytes mapped. */
  get size(): number {
    return this.#core.ab().byteLength
  }

  /** Bind static port @n (below config.dynports). EBUSY if a live peer holds it. */
  bindPort(n: number, opts?: BindOptions): Port {
    this.#core.live()
    this.#notObserver()
    const want = uint(n, 'port', this.config.nrPorts - 1)
    let bound
    try {
      bound = native.port_bind(this.#core.h, want, bindFlags(opts))
    } catch (e) {
      throw about(e, `port ${want} of ${this.type}:${this.name}`, bindText)
    }
    return this.#bind(bound)
  }

  /** Bind the first free dynamic port. ENOSPC if none is free. */
  bindDynamicPort(opts?: BindOptions): Port {
    this.#core.live()
    this.#notObserver()
    let bound
    try {
      bound = native.port_bind(this.#core.h, -1, bindFlags(opts))
    } catch (e) {
      throw about(e, `${this.type}:${this.name}`, dynBindText)
    }
    return this.#bind(bound)
  }

  #notObserver(): void {
    if (this.observer)
      throw xerror('EPERM', `${this.type}:${this.name} was joined with observe: true: an observer cannot bind ports`)
  }

  #bind(n: number): Port {
    const p = new Port(this.#core, this, n)
    this.#ports.set(n, p)
    return p
  }

  /** The port @n this handle bound, if any. */
  port(n: number): Port | undefined {
    return this.#ports.get(n)
  }

  /** @internal */
  _portClosed(p: Port): void {
    if (this.#ports.get(p.number) === p) this.#ports.delete(p.number)
  }

  /** Wake the peer bound to port @n. ENOENT if nobody bound it. */
  signal(n: number): void {
    this.#core.live()
    native.port_signal(this.#core.h, uint(n, 'port', this.config.nrPorts - 1))
  }

  /** Header, creator, counters and peer types (a snapshot). */
  info(): SegmentInfo {
    this.#core.live()
    return native.seg_info(this.#core.h)
  }

  /** The state of port @n, bound by anybody (a snapshot). */
  portInfo(n: number): PortInfo {
    this.#core.live()
    return native.port_info(this.#core.h, uint(n, 'port', this.config.nrPorts - 1))
  }

  /** Settle the ports of dead peers (no waiting for other recoverers). EALREADY only in the rare case of docs/recovery.md. */
  recover(): RecoveryStats {
    this.#core.live()
    return native.seg_recover(this.#core.h)
  }

  /**
   * Create-or-open: throw EEXIST (naming each differing field both ways) if
   * this segment's config differs from a field @spec writes; fields @spec
   * leaves empty match anything (docs/spec.md).
   */
  checkSpec(spec: string): void {
    this.#core.live()
    native.seg_check_spec(this.#core.h, spec)
  }

  /**
   * Make @n requests (and as many default-class chunks) live in a growable
   * segment (max_requests=): more are usable by every peer at once; fewer
   * are parked as they come back free, and given back when none is held
   * (done false until then: call again). RangeError-like ERANGE above the
   * reserve, EALREADY while a recovery or another grow holds the lease.
   */
  grow(n: number): GrowStatus {
    this.#core.live()
    return native.seg_grow(this.#core.h, uint(n, 'requests', 0xFFFFFFFF))
  }

  /** Check consistency without changing anything: the problems found (none: []). */
  verify(): string[] {
    this.#core.live()
    return native.seg_verify(this.#core.h)
  }

  /** How long waitSync() polls before it sleeps, in microseconds. */
  setSpin(us: number): void {
    this.#core.live()
    native.seg_set_spin(this.#core.h, uint(us, 'spin', 0xffffffff))
  }

  /** Mark the segment destroyed and remove its name; it stays joined until close(). */
  destroy(): void {
    this.#core.live()
    native.seg_destroy(this.#core.h)
    this.#destroyOnClose = true
  }

  /**
   * Leave every port and the segment. Views of its memory (request data)
   * become empty; replies and servers still waiting end (ECANCELED / done).
   * Closing twice is harmless.
   */
  close(): void {
    if (this.#core.closed) return
    if (this.#destroyOnClose) {
      try {
        native.seg_destroy(this.#core.h)
      } catch {
        // Already destroyed by someone else.
      }
    }
    native.seg_leave(this.#core.h)
    this.#core.closed = true
    open.delete(this)
    for (const p of [...this.#ports.values()]) p._closed()
    this.#ports.clear()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }
}
