// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/client.ts - a small NBD client: connect over a unix socket
// or TCP, fixed newstyle handshake with NBD_OPT_GO (NBD_OPT_EXPORT_NAME if
// the server has no GO), then read/write/flush/trim/writeZeroes as Promises
// with many commands in flight, simple replies only.
//
//   const c = await NbdClient.connect({ unix: '/tmp/nbd.sock', export: 'vol1' })
//   await c.write(0, Buffer.alloc(4096, 0xab), { fua: true })
//   const data = await c.read(0, 4096)
//   await c.disconnect()
import * as net from 'node:net'
import { XsegError } from '../../../sys/node/ts/errors.js'
import * as P from './protocol.js'

export interface NbdAddress {
  /** A unix socket path. */
  unix?: string
  /** TCP host (default 127.0.0.1) and port. */
  host?: string
  port?: number
}

export interface NbdConnectOptions extends NbdAddress {
  /** The export name (default ''). */
  export?: string
  /** Give up connecting and negotiating after this long (default 10000 ms). */
  timeoutMs?: number
}

export interface NbdBlockSize {
  minimum: number
  preferred: number
  maximum: number
}

/**
 * A failed command (code: the NBD error name, 'EIO'...) or a broken
 * connection ('ECONNRESET'): an XsegError (errno negative, as Node's) whose
 * nbdError is the NBD error value, 0 for a broken connection.
 */
export class NbdError extends XsegError {
  /** The NBD error value (a positive errno) of a failed command, 0 for connection errors. */
  readonly nbdError: number
  constructor(code: string, nbdError: number, message: string) {
    super(code, message, { errno: nbdError ? -nbdError : undefined })
    this.name = 'NbdError'
    this.nbdError = nbdError
  }
}

interface Pending {
  type: number
  length: number
  resolve: (b: Buffer | undefined) => void
  reject: (e: Error) => void
}

/** Reads exact byte counts from a socket during the handshake. */
class Handshake {
  #q: Buffer[] = []
  #len = 0
  #waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null
  #err: Error | null = null
  readonly sock: net.Socket
  readonly onData = (d: Buffer): void => {
    this.#q.push(d)
    this.#len += d.length
    this.#pump()
  }
  readonly onEnd = (): void => this.fail(new NbdError('ECONNRESET', 0, 'the server closed the connection'))

  constructor(sock: net.Socket) {
    this.sock = sock
    sock.on('data', this.onData)
    sock.on('end', this.onEnd)
  }

  fail(e: Error): void {
    this.#err = e
    const w = this.#waiter
    this.#waiter = null
    w?.reject(e)
  }

  #pump(): void {
    const w = this.#waiter
    if (!w || this.#len < w.n) return
    this.#waiter = null
    w.resolve(this.#take(w.n))
  }

  #take(n: number): Buffer {
    const all = this.#q.length === 1 ? this.#q[0]! : Buffer.concat(this.#q)
    this.#q = n < all.length ? [all.subarray(n)] : []
    this.#len -= n
    return all.subarray(0, n)
  }

  read(n: number): Promise<Buffer> {
    if (this.#len >= n) return Promise.resolve(this.#take(n))
    if (this.#err) return Promise.reject(this.#err)
    return new Promise((resolve, reject) => {
      this.#waiter = { n, resolve, reject }
    })
  }

  /** Stop reading for the handshake; what is left over. */
  detach(): Buffer {
    this.sock.off('data', this.onData)
    this.sock.off('end', this.onEnd)
    const rest = this.#q.length ? Buffer.concat(this.#q) : Buffer.alloc(0)
    this.#q = []
    this.#len = 0
    return rest
  }
}

/** A socket error as an NbdError (its code, e.g. ECONNREFUSED; nbdError 0). */
function netError(e: NodeJS.ErrnoException, what: string): NbdError {
  const err = new NbdError(e.code ?? 'ECONNRESET', 0, `${what}: ${e.message}`)
  Object.defineProperty(err, 'cause', { value: e, configurable: true, writable: true })
  return err
}

function connectSocket(a: NbdAddress, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = a.unix ? net.connect(a.unix) : net.connect(a.port ?? 10809, a.host ?? '127.0.0.1')
    const t = setTimeout(() => {
      sock.destroy()
      reject(new NbdError('ETIMEDOUT', 0, 'connecting timed out'))
    }, timeoutMs)
    sock.once('connect', () => {
      clearTimeout(t)
      sock.off('error', reject)
      sock.setNoDelay(true)
      resolve(sock)
    })
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t)
      const where = a.unix ?? `${a.host ?? '127.0.0.1'}:${a.port ?? 10809}`
      reject(netError(e, `cannot connect to ${where}`))
    })
  })
}

/** The server's greeting; returns whether NO_ZEROES was agreed. */
async function greet(h: Handshake): Promise<boolean> {
  const g = await h.read(18)
  if (g.readBigUInt64BE(0) !== P.NBD_MAGIC) throw new NbdError('EPROTO', 0, 'not an NBD server (bad magic)')
  if (g.readBigUInt64BE(8) !== P.NBD_OPTS_MAGIC) throw new NbdError('EPROTO', 0, 'not a newstyle NBD server')
  const sf = g.readUInt16BE(16)
  if (!(sf & P.NBD_FLAG_FIXED_NEWSTYLE)) throw new NbdError('EPROTO', 0, 'the server does not do fixed newstyle')
  const noZeroes = (sf & P.NBD_FLAG_NO_ZEROES) !== 0
  const cf = Buffer.allocUnsafe(4)
  cf.writeUInt32BE(P.NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? P.NBD_FLAG_C_NO_ZEROES : 0), 0)
  h.sock.write(cf)
  return noZeroes
}

function sendOption(sock: net.Socket, opt: number, data: Buffer = Buffer.alloc(0)): void {
  const b = Buffer.allocUnsafe(16 + data.length)
  b.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 0)
  b.writeUInt32BE(opt, 8)
  b.writeUInt32BE(data.length, 12)
  data.copy(b, 16)
  sock.write(b)
}

async function optReply(h: Handshake, opt: number): Promise<{ type: number; data: Buffer }> {
  const r = await h.read(20)
  if (r.readBigUInt64BE(0) !== P.NBD_REP_MAGIC) throw new NbdError('EPROTO', 0, 'bad option reply magic')
  if (r.readUInt32BE(8) !== opt) throw new NbdError('EPROTO', 0, `a reply to option ${r.readUInt32BE(8)}, not ${opt}`)
  const type = r.readUInt32BE(12)
  const len = r.readUInt32BE(16)
  if (len > 1 << 20) throw new NbdError('EPROTO', 0, `option reply of ${len} bytes`)
  const data = len ? Buffer.from(await h.read(len)) : Buffer.alloc(0)
  return { type, data }
}

function optError(type: number, data: Buffer, what: string): NbdError {
  const names: Record<number, string> = {
    [P.NBD_REP_ERR_UNSUP]: 'unsupported', [P.NBD_REP_ERR_POLICY]: 'refused by policy', [P.NBD_REP_ERR_INVALID]: 'invalid',
    [P.NBD_REP_ERR_UNKNOWN]: 'unknown export', [P.NBD_REP_ERR_SHUTDOWN]: 'server shutting down',
  }
  const msg = data.length ? `: ${data.toString()}` : ''
  return new NbdError(type === P.NBD_REP_ERR_UNKNOWN ? 'ENOENT' : 'EPROTO', 0, `${what}: ${names[type] ?? `error 0x${type.toString(16)}`}${msg}`)
}

export class NbdClient {
  readonly exportName: string
  /** Export size in bytes. */
  readonly size: number
  /** Transmission flags (P.NBD_FLAG_*). */
  readonly flags: number
  readonly blockSize: NbdBlockSize | undefined
  readonly description: string | undefined
  #sock: net.Socket
  #pending = new Map<number, Pending>()
  #seq = 0
  #err: Error | null = null
  #closed = false
  // Reply parsing.
  #hdr = Buffer.alloc(P.SIMPLE_REPLY_SIZE)
  #hdrLen = 0
  #read: { p: Pending; buf: Buffer; got: number } | null = null
  #closedP: Promise<void>

  private constructor(sock: net.Socket, name: string, size: number, flags: number, bs: NbdBlockSize | undefined,
                      desc: string | undefined, rest: Buffer) {
    this.#sock = sock
    this.exportName = name
    this.size = size
    this.flags = flags
    this.blockSize = bs
    this.description = desc
    this.#closedP = new Promise((resolve) => sock.once('close', () => resolve()))
    sock.on('data', (d: Buffer) => this.#onData(d))
    sock.on('end', () => this.#fail(new NbdError('ECONNRESET', 0, 'the server closed the connection')))
    sock.on('error', (e: Error) => this.#fail(new NbdError('ECONNRESET', 0, e.message)))
    sock.on('close', () => this.#fail(new NbdError('ECONNRESET', 0, 'the connection closed')))
    if (rest.length) this.#onData(rest)
  }

  /** Connect and negotiate export @opts.export; rejects with an NbdError. */
  static async connect(opts: NbdConnectOptions): Promise<NbdClient> {
    const timeoutMs = opts.timeoutMs ?? 10000
    const sock = await connectSocket(opts, timeoutMs)
    const h = new Handshake(sock)
    const t = setTimeout(() => h.fail(new NbdError('ETIMEDOUT', 0, 'the handshake timed out')), timeoutMs)
    sock.on('error', (e) => h.fail(netError(e, 'the connection failed')))
    try {
      const noZeroes = await greet(h)
      const name = opts.export ?? ''
      const nb = Buffer.from(name)
      const infos = [P.NBD_INFO_NAME, P.NBD_INFO_DESCRIPTION, P.NBD_INFO_BLOCK_SIZE]
      const d = Buffer.allocUnsafe(4 + nb.length + 2 + 2 * infos.length)
      d.writeUInt32BE(nb.length, 0)
      nb.copy(d, 4)
      d.writeUInt16BE(infos.length, 4 + nb.length)
      infos.forEach((t, i) => d.writeUInt16BE(t, 6 + nb.length + 2 * i))
      sendOption(sock, P.NBD_OPT_GO, d)
      let size = -1
      let flags = 0
      let bs: NbdBlockSize | undefined
      let desc: string | undefined
      let canon = name
      for (;;) {
        const r = await optReply(h, P.NBD_OPT_GO)
        if (r.type === P.NBD_REP_ACK) break
        if (r.type === P.NBD_REP_ERR_UNSUP) {
          // An old server: EXPORT_NAME cannot report errors; the server closes instead.
          sendOption(sock, P.NBD_OPT_EXPORT_NAME, nb)
          const e = await h.read(10)
          size = Number(e.readBigUInt64BE(0))
          flags = e.readUInt16BE(8)
          if (!noZeroes) await h.read(124)
          break
        }
        if (r.type & P.NBD_REP_FLAG_ERROR) throw optError(r.type, r.data, `export '${name}'`)
        if (r.type !== P.NBD_REP_INFO || r.data.length < 2) continue
        const it = r.data.readUInt16BE(0)
        if (it === P.NBD_INFO_EXPORT && r.data.length >= 12) {
          size = Number(r.data.readBigUInt64BE(2))
          flags = r.data.readUInt16BE(10)
        } else if (it === P.NBD_INFO_NAME) canon = r.data.toString('utf8', 2)
        else if (it === P.NBD_INFO_DESCRIPTION) desc = r.data.toString('utf8', 2)
        else if (it === P.NBD_INFO_BLOCK_SIZE && r.data.length >= 14)
          bs = { minimum: r.data.readUInt32BE(2), preferred: r.data.readUInt32BE(6), maximum: r.data.readUInt32BE(10) }
      }
      if (size < 0) throw new NbdError('EPROTO', 0, 'the server did not send NBD_INFO_EXPORT')
      clearTimeout(t)
      sock.removeAllListeners('error')
      return new NbdClient(sock, canon, size, flags, bs, desc, h.detach())
    } catch (e) {
      clearTimeout(t)
      sock.destroy()
      throw e
    }
  }

  /** The export names the server lists (NBD_OPT_LIST), then NBD_OPT_ABORT. */
  static async list(addr: NbdAddress & { timeoutMs?: number }): Promise<string[]> {
    const timeoutMs = addr.timeoutMs ?? 10000
    const sock = await connectSocket(addr, timeoutMs)
    const h = new Handshake(sock)
    const t = setTimeout(() => h.fail(new NbdError('ETIMEDOUT', 0, 'listing timed out')), timeoutMs)
    sock.on('error', (e) => h.fail(netError(e, 'the connection failed')))
    try {
      await greet(h)
      sendOption(sock, P.NBD_OPT_LIST)
      const names: string[] = []
      for (;;) {
        const r = await optReply(h, P.NBD_OPT_LIST)
        if (r.type === P.NBD_REP_ACK) break
        if (r.type & P.NBD_REP_FLAG_ERROR) throw optError(r.type, r.data, 'NBD_OPT_LIST')
        if (r.type === P.NBD_REP_SERVER && r.data.length >= 4) {
          const n = r.data.readUInt32BE(0)
          names.push(r.data.toString('utf8', 4, 4 + n))
        }
      }
      sendOption(sock, P.NBD_OPT_ABORT)
      await optReply(h, P.NBD_OPT_ABORT).catch(() => undefined) // servers may just close
      return names
    } finally {
      clearTimeout(t)
      sock.destroy()
    }
  }

  /** Commands sent and not answered yet. */
  get inflight(): number {
    return this.#pending.size
  }

  get readonly(): boolean {
    return (this.flags & P.NBD_FLAG_READ_ONLY) !== 0
  }

  /** Read @length bytes at @offset. */
  read(offset: number | bigint, length: number): Promise<Buffer> {
    return this.#cmd(P.NBD_CMD_READ, 0, offset, length) as Promise<Buffer>
  }

  /** Write @data at @offset; @opts.fua: durable before the reply. */
  async write(offset: number | bigint, data: Uint8Array, opts?: { fua?: boolean }): Promise<void> {
    await this.#cmd(P.NBD_CMD_WRITE, opts?.fua ? P.NBD_CMD_FLAG_FUA : 0, offset, data.length, data)
  }

  async flush(): Promise<void> {
    await this.#cmd(P.NBD_CMD_FLUSH, 0, 0, 0)
  }

  /** Discard a range (reads as zeroes after it, with the xseg storage peers). */
  async trim(offset: number | bigint, length: number, opts?: { fua?: boolean }): Promise<void> {
    await this.#cmd(P.NBD_CMD_TRIM, opts?.fua ? P.NBD_CMD_FLAG_FUA : 0, offset, length)
  }

  /** Zero a range; @opts.noHole: keep it allocated. */
  async writeZeroes(offset: number | bigint, length: number, opts?: { fua?: boolean; noHole?: boolean }): Promise<void> {
    const f = (opts?.fua ? P.NBD_CMD_FLAG_FUA : 0) | (opts?.noHole ? P.NBD_CMD_FLAG_NO_HOLE : 0)
    await this.#cmd(P.NBD_CMD_WRITE_ZEROES, f, offset, length)
  }

  /**
   * Send a raw command (tests, tools): @type and @flags as they go on the
   * wire, @data as the payload. Resolves with the READ data.
   */
  command(type: number, flags: number, offset: number | bigint, length: number, data?: Uint8Array): Promise<Buffer | undefined> {
    return this.#cmd(type, flags, offset, length, data)
  }

  #cmd(type: number, flags: number, offset: number | bigint, length: number, data?: Uint8Array): Promise<Buffer | undefined> {
    if (this.#err) return Promise.reject(this.#err)
    if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) return Promise.reject(new NbdError('EINVAL', 0, `bad length ${length}`))
    const handle = ++this.#seq
    const h = Buffer.allocUnsafe(P.REQUEST_SIZE)
    h.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0)
    h.writeUInt16BE(flags, 4)
    h.writeUInt16BE(type, 6)
    h.writeUInt32BE(Math.floor(handle / 0x100000000), 8)
    h.writeUInt32BE(handle >>> 0, 12)
    h.writeBigUInt64BE(BigInt(offset), 16)
    h.writeUInt32BE(length, 24)
    return new Promise((resolve, reject) => {
      this.#pending.set(handle, { type, length, resolve, reject })
      if (data && data.length) {
        this.#sock.cork()
        this.#sock.write(h)
        this.#sock.write(data)
        this.#sock.uncork()
      } else this.#sock.write(h)
    })
  }

  #onData(d: Buffer): void {
    let pos = 0
    while (pos < d.length) {
      const rd = this.#read
      if (rd) {
        const n = Math.min(rd.buf.length - rd.got, d.length - pos)
        d.copy(rd.buf, rd.got, pos, pos + n)
        rd.got += n
        pos += n
        if (rd.got === rd.buf.length) {
          this.#read = null
          rd.p.resolve(rd.buf)
        }
        continue
      }
      const n = Math.min(P.SIMPLE_REPLY_SIZE - this.#hdrLen, d.length - pos)
      d.copy(this.#hdr, this.#hdrLen, pos, pos + n)
      this.#hdrLen += n
      pos += n
      if (this.#hdrLen < P.SIMPLE_REPLY_SIZE) return
      this.#hdrLen = 0
      const hd = this.#hdr
      const magic = hd.readUInt32BE(0)
      if (magic !== P.NBD_SIMPLE_REPLY_MAGIC) {
        this.#fail(new NbdError('EPROTO', 0, `bad reply magic 0x${magic.toString(16)}`))
        this.#sock.destroy()
        return
      }
      const err = hd.readUInt32BE(4)
      const handle = hd.readUInt32BE(8) * 0x100000000 + hd.readUInt32BE(12)
      const p = this.#pending.get(handle)
      if (!p) {
        this.#fail(new NbdError('EPROTO', 0, `a reply to unknown handle ${handle}`))
        this.#sock.destroy()
        return
      }
      this.#pending.delete(handle)
      if (err) p.reject(new NbdError(P.nbdErrorName(err), err, `NBD_CMD_${P.commandName(p.type).toUpperCase()} failed`))
      else if (p.type === P.NBD_CMD_READ && p.length) this.#read = { p, buf: Buffer.allocUnsafe(p.length), got: 0 }
      else p.resolve(p.type === P.NBD_CMD_READ ? Buffer.alloc(0) : undefined)
    }
  }

  #fail(e: Error): void {
    if (!this.#err) this.#err = e
    const rd = this.#read
    this.#read = null
    rd?.p.reject(this.#err)
    for (const p of this.#pending.values()) p.reject(this.#err)
    this.#pending.clear()
  }

  /** Wait for the commands in flight, send NBD_CMD_DISC and close. */
  async disconnect(): Promise<void> {
    if (this.#closed) return this.#closedP
    this.#closed = true
    await Promise.allSettled([...this.#pending.values()].map((p) => new Promise<void>((r) => {
      const { resolve, reject } = p
      p.resolve = (b) => { resolve(b); r() }
      p.reject = (e) => { reject(e); r() }
    })))
    if (!this.#err) {
      const h = Buffer.alloc(P.REQUEST_SIZE)
      h.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0)
      h.writeUInt16BE(P.NBD_CMD_DISC, 6)
      this.#err = new NbdError('ESHUTDOWN', 0, 'disconnected')
      this.#sock.end(h)
    } else this.#sock.destroy()
    const t = setTimeout(() => this.#sock.destroy(), 5000)
    await this.#closedP
    clearTimeout(t)
  }

  /** Close at once; commands in flight reject with ECONNRESET. */
  close(): void {
    this.#closed = true
    this.#fail(new NbdError('ECONNRESET', 0, 'closed'))
    this.#sock.destroy()
  }
}
