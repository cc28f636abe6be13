// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/volumes.ts - the gateway's volume mode: an export name is a
// volume at vlmcd ('vol1', or 'vol1@snap', read-only), not a configured
// export. For a client choosing one (NBD_OPT_GO, NBD_OPT_EXPORT_NAME) the
// gateway OPENs it with the gateway's owner tag ("ro=1" for a snapshot),
// then asks its size (block INFO); connections of this gateway to one
// volume share that open (nbdcopy and qemu open several), and the last one
// to end CLOSEs it. These three go from the engine's port (engine/control.cc):
// vlmcd holds a volume for the port that opened it, and serves the block ops
// of that port only. A volume open elsewhere is refused with vlmcd's text,
// which names the holder. A question (NBD_OPT_INFO) and NBD_OPT_LIST are
// management INFOs from the gateway's own port (they open nothing).
//
// A CLOSE that fails because a peer down the chain is away (the storage peer
// holds the lock: ECONNREFUSED, ECONNRESET, EIO, ...) would leave the volume
// open by this gateway, whose process is alive, so nobody else could open it
// without force=1: it is retried in the background, 0.1 s and then up to 5 s
// apart, until it lands, the volume is opened here again (the lock is ours
// again) or the gateway closes (which tries once more and logs the outcome).
import { hostname } from 'node:os'
import { readFileSync } from 'node:fs'
import type { OpName, Port } from '../../../sys/node/ts/index.js'
import { errnoName, xerror } from '../../../sys/node/ts/errors.js'
import { type VolumeError, Volumes, splitTarget } from '../../../sys/node/ts/volumes.js'
import type { CtlReply } from './engine.js'

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
  /** A failed CLOSE's next try, and how many failed. */
  retry?: NodeJS.Timeout
  failed: number
}

/** Errors of a CLOSE that mean "a peer is away or gave up for now", worth trying again. */
const CLOSE_RETRY = new Set(['ECONNREFUSED', 'ECONNRESET', 'EIO', 'ETIMEDOUT', 'EAGAIN', 'ENOBUFS', 'ESHUTDOWN', 'EPIPE'])
/** The first retry's delay and the longest, ms. */
export const CLOSE_RETRY_MS = [100, 5000] as const

/** Sends a control request from the engine's port (Engine.ctl). */
export type CtlFn = (op: OpName, target: string, text: string, size?: number) => Promise<CtlReply>

export class VolumeExports {
  readonly owner: string
  readonly dst: number
  #ctl: CtlFn
  #vols: Volumes
  #held = new Map<string, Held>()
  #log: (line: string) => void
  #ending = false

  /** Volumes of the peer on port @dst (vlmcd): questions from @port, opens through @ctl. */
  constructor(port: Port, dst: number, opts: { ctl: CtlFn; owner?: string; timeoutMs: number; log: (line: string) => void }) {
    this.dst = dst
    this.owner = opts.owner ?? gatewayOwner()
    if (/[\n=]/.test(this.owner)) throw xerror('EINVAL', `NbdGateway: the owner tag '${this.owner}' has a newline or '='`)
    this.#ctl = opts.ctl
    this.#log = opts.log
    this.#vols = new Volumes(port, dst, { timeoutMs: opts.timeoutMs })
  }

  /** Volumes this gateway has open, with their connections. */
  opened(): Map<string, number> {
    const m = new Map<string, number>()
    for (const [t, h] of this.#held) if (h.open) m.set(t, h.conns)
    return m
  }

  /** Volumes whose CLOSE failed and is being retried, with the failed tries. */
  unclosed(): Map<string, number> {
    const m = new Map<string, number>()
    for (const [t, h] of this.#held) if (h.retry) m.set(t, h.failed)
    return m
  }

  /**
   * The size of volume @name (and whether it is read-only), or a one-line
   * reason (a bad name, vlmcd's text). With @open, the volume is opened for
   * one more connection (release() it when the connection ends) and its
   * size asked by that opener; without, asked with a management INFO.
   */
  async get(name: string, open: boolean): Promise<VolumeOpen | string> {
    let snap: string | null
    try {
      snap = splitTarget(name).snapshot
    } catch (e) {
      return (e as Error).message.replace(/^EINVAL: /, '')
    }
    if (!open) {
      try {
        const i = await this.#vols.info(name)
        return { size: i.size, readonly: i.kind === 'snapshot' }
      } catch (e) {
        const v = e as VolumeError
        return v.peerMessage ? `${v.code}: ${v.peerMessage}` : v.message
      }
    }
    const h: Held = this.#held.get(name) ?? { conns: 0, busy: Promise.resolve(), open: false, failed: 0 }
    this.#held.set(name, h)
    h.conns++
    // Opened again: a CLOSE still being retried is not needed (the OPEN below takes the lock as ours).
    this.#stopRetry(h)
    const step = h.busy.then(async () => {
      if (h.open) return
      await this.#call('open', name, `owner=${this.owner}\n${snap !== null ? 'ro=1\n' : ''}`)
      h.open = true
      this.#log(`opened volume '${name}' as ${this.owner}`)
    })
    h.busy = step.catch(() => undefined)
    try {
      await step
      // The size now (a resize changes it), asked by the holder.
      const hex = await this.#call('info', name, '', 8)
      const b = Buffer.from(hex, 'hex')
      if (b.length < 8) throw new Error(`INFO of '${name}' served ${b.length} bytes, not 8`)
      const size = b.readBigUInt64LE(0)
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`size ${size} is too large`)
      return { size: Number(size), readonly: snap !== null }
    } catch (e) {
      this.#drop(name, h)
      return (e as Error).message
    }
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
      h.open = false
      await this.#close(name, h)
    }).finally(() => this.#forget(name, h))
  }

  #forget(name: string, h: Held): void {
    if (h.conns === 0 && !h.open && !h.retry && this.#held.get(name) === h) this.#held.delete(name)
  }

  #stopRetry(h: Held): void {
    if (h.retry) clearTimeout(h.retry)
    h.retry = undefined
    h.failed = 0
  }

  /** One CLOSE of @name; a failure worth retrying schedules the next try (in @h's order). */
  async #close(name: string, h: Held): Promise<void> {
    try {
      await this.#call('close', name, `owner=${this.owner}\n`)
      this.#log(h.failed ? `closed volume '${name}' (after ${h.failed} failed tries)` : `closed volume '${name}'`)
      h.failed = 0
    } catch (e) {
      const msg = (e as Error).message
      const code = /^([A-Z0-9]+):/.exec(msg)?.[1] ?? ''
      h.failed++
      if (!CLOSE_RETRY.has(code) || this.#ending) {
        this.#log(`closing volume '${name}': ${msg}${this.#ending && CLOSE_RETRY.has(code) ? ' (not retried: the gateway is closing; the lock stays until its owner is found dead or force=1)' : ''}`)
        h.failed = 0
        return
      }
      const delay = Math.min(CLOSE_RETRY_MS[0] * 2 ** (h.failed - 1), CLOSE_RETRY_MS[1])
      // The first failure and then every tenth: a peer away for long does not flood the log.
      if (h.failed === 1 || h.failed % 10 === 0) this.#log(`closing volume '${name}': ${msg}; trying again (${h.failed} failed, next in ${delay} ms)`)
      h.retry = setTimeout(() => {
        h.retry = undefined
        h.busy = h.busy.then(async () => {
          if (h.conns > 0 || h.open || this.#ending) return
          await this.#close(name, h)
        }).finally(() => this.#forget(name, h))
      }, delay)
      h.retry.unref()
    }
  }

  /**
   * The gateway is closing: CLOSEs still being retried are tried once more
   * now (each outcome logged), and no more after that.
   */
  async finish(): Promise<void> {
    await this.settle()
    this.#ending = true
    const left = [...this.#held].filter(([, h]) => h.retry)
    for (const [name, h] of left) {
      clearTimeout(h.retry)
      h.retry = undefined
      h.busy = h.busy.then(() => this.#close(name, h)).finally(() => this.#forget(name, h))
    }
    await this.settle()
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

  /** @op from the engine's port; resolves with the served data's hex, or throws 'ECODE: text'. */
  async #call(op: OpName, name: string, text: string, size?: number): Promise<string> {
    let r: CtlReply
    try {
      r = await this.#ctl(op, name, text, size)
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code === 'ENOENT') throw new Error(`ENOENT: no peer serves port ${this.dst} (is vlmcd running?)`)
      throw e
    }
    if (r.errno) throw new Error(`${errnoName(r.errno)}: ${r.text || `${op.toUpperCase()} failed`}`)
    return r.text
  }
}
