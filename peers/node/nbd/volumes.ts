// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/volumes.ts - the gateway's volume mode: an export name is a
// volume at vlmcd ('vol1', or 'vol1@snap', read-only), not a configured
// export. For a client choosing one (NBD_OPT_GO, NBD_OPT_EXPORT_NAME) the
// gateway asks its size (block INFO), then OPENs it with the gateway's owner
// tag ("ro=1" for a snapshot); connections of this gateway to one volume
// share that open (nbdcopy and qemu open several), and the last one to end
// CLOSEs it. A volume open elsewhere is refused with vlmcd's text, which
// names the holder. NBD_OPT_LIST lists the volumes (INFO '.list').
// Requests go from the gateway's own port; its engine sends the block ops.
import { hostname } from 'node:os'
import { readFileSync } from 'node:fs'
import type { Port, Request } from '../../../sys/node/ts/index.js'
import { Volumes, splitTarget } from '../../../sys/node/ts/volumes.js'

/** What a volume export is once its size is known. */
export interface VolumeOpen {
  size: number
  readonly: boolean
}

/** The start time of process @pid in clock ticks since boot (/proc/PID/stat field 22), or 0. */
function startTime(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // After the command's closing parenthesis: field 3 on.
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]) || 0
  } catch {
    return 0
  }
}

/** HOST:PID:STARTTIME:nbd - an owner tag whose liveness a peer on this host can check. */
export function gatewayOwner(): string {
  return `${hostname()}:${process.pid}:${startTime(process.pid)}:nbd`
}

interface Held {
  conns: number
  /** The OPEN (or the CLOSE) in flight; the next open or close waits for it. */
  busy: Promise<unknown>
  open: boolean
}

export class VolumeExports {
  readonly owner: string
  readonly dst: number
  #port: Port
  #vols: Volumes
  #timeoutMs: number
  #held = new Map<string, Held>()
  #log: (line: string) => void

  /** Volumes of the peer on port @dst (vlmcd), asked from @port. */
  constructor(port: Port, dst: number, opts: { owner?: string; timeoutMs: number; log: (line: string) => void }) {
    this.#port = port
    this.dst = dst
    this.owner = opts.owner ?? gatewayOwner()
    if (/[\n=]/.test(this.owner)) throw new TypeError(`NbdGateway: the owner tag '${this.owner}' has a newline or '='`)
    this.#timeoutMs = opts.timeoutMs
    this.#log = opts.log
    this.#vols = new Volumes(port, dst, { timeoutMs: opts.timeoutMs })
  }

  /** Volumes this gateway has open, with their connections. */
  opened(): Map<string, number> {
    const m = new Map<string, number>()
    for (const [t, h] of this.#held) if (h.open) m.set(t, h.conns)
    return m
  }

  /**
   * The size of volume @name (and whether it is read-only), or a one-line
   * reason (a bad name, vlmcd's text). With @open, the volume is also
   * opened for one more connection (release() it when the connection ends).
   */
  async get(name: string, open: boolean): Promise<VolumeOpen | string> {
    let snap: string | null
    try {
      snap = splitTarget(name).snapshot
    } catch (e) {
      return (e as Error).message.replace(/^EINVAL: /, '')
    }
    let size: number
    try {
      size = await this.#size(name)
    } catch (e) {
      return (e as Error).message
    }
    if (!open) return { size, readonly: snap !== null }
    const h = this.#held.get(name) ?? { conns: 0, busy: Promise.resolve(), open: false }
    this.#held.set(name, h)
    h.conns++
    const step = h.busy.then(async () => {
      if (h.open) return
      await this.#call('open', name, `owner=${this.owner}\n${snap !== null ? 'ro=1\n' : ''}`)
      h.open = true
      this.#log(`opened volume '${name}' as ${this.owner}`)
    })
    h.busy = step.catch(() => undefined)
    try {
      await step
    } catch (e) {
      this.#drop(name, h)
      return (e as Error).message
    }
    return { size, readonly: snap !== null }
  }

  /** A connection to volume @name ended: the last one CLOSEs it. */
  release(name: string): void {
    const h = this.#held.get(name)
    if (!h) return
    this.#drop(name, h)
  }

  #drop(name: string, h: Held): void {
    if (--h.conns > 0) return
    h.busy = h.busy.then(async () => {
      if (h.conns > 0 || !h.open) return
      try {
        await this.#call('close', name, `owner=${this.owner}\n`)
        this.#log(`closed volume '${name}'`)
      } catch (e) {
        this.#log(`closing volume '${name}': ${(e as Error).message}`)
      }
      h.open = false
    }).finally(() => {
      if (h.conns === 0 && !h.open && this.#held.get(name) === h) this.#held.delete(name)
    })
  }

  /** Every volume and snapshot, for NBD_OPT_LIST: name and a description. */
  async list(): Promise<{ name: string; description: string }[]> {
    const l = await this.#vols.ls()
    return l.map((e) => ({ name: e.name, description: `${e.kind}, ${e.size} bytes${e.parent ? `, clone of ${e.parent}` : ''}` }))
  }

  /** Resolves once every OPEN and CLOSE in flight (and any they started) is answered. */
  async settle(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const busy = [...this.#held.values()].map((h) => h.busy)
      await Promise.all(busy)
      const now = [...this.#held.values()].map((h) => h.busy)
      if (now.length === busy.length && now.every((x, j) => x === busy[j])) return
    }
  }

  /** Block INFO (8 bytes, the size little-endian, as blockd) of @name. */
  async #size(name: string): Promise<number> {
    const r = await this.#submit({ op: 'info', target: name, size: 8, dataLength: 4096, data: Buffer.alloc(9) }, name)
    try {
      if (r.failed) throw new Error(`${r.errorCode ?? 'EIO'}: ${this.#text(r) || 'INFO failed'}`)
      if (r.serviced < 8) throw new Error(`INFO serviced ${r.serviced} bytes, not 8`)
      const size = r.data.readBigUInt64LE(0)
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`size ${size} is too large`)
      return Number(size)
    } finally {
      r.release()
    }
  }

  async #call(op: 'open' | 'close', name: string, text: string): Promise<void> {
    const b = Buffer.from(text)
    // NUL-terminated too (the buffer may hold an earlier request's bytes).
    const r = await this.#submit({ op, target: name, size: b.length, dataLength: 4096, data: Buffer.concat([b, Buffer.alloc(1)]) }, name)
    try {
      if (r.failed) throw new Error(`${r.errorCode ?? 'EIO'}: ${this.#text(r) || `${op.toUpperCase()} failed`}`)
    } finally {
      r.release()
    }
  }

  #text(r: Request): string {
    const n = Math.min(r.serviced, r.data.length)
    return n > 0 ? r.data.toString('utf8', 0, n).trim() : ''
  }

  async #submit(opts: Parameters<Port['tryRequest']>[0], name: string): Promise<Request> {
    // The segment may be out of requests for a moment (busy connections): wait, up to the timeout.
    const until = Date.now() + this.#timeoutMs
    let req: Request | null = null
    for (;;) {
      try {
        req = this.#port.tryRequest(opts)
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOBUFS') throw e
      }
      if (req) break
      if (Date.now() >= until) throw new Error('EAGAIN: no free request in the segment')
      await new Promise((r) => setTimeout(r, 5))
    }
    try {
      return await req.submit(this.dst, { signal: AbortSignal.timeout(this.#timeoutMs) })
    } catch (e) {
      if (req.state === 'prepared') req.release()
      if ((e as { code?: string }).code === 'ABORT_ERR')
        throw new Error(`ETIMEDOUT: the volume peer on port ${this.dst} did not answer about '${name}' within ${this.#timeoutMs} ms`)
      throw e
    }
  }
}
