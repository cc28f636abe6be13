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
}

/** Sends a control request from the engine's port (Engine.ctl). */
export type CtlFn = (op: OpName, target: string, text: string, size?: number) => Promise<CtlReply>

export class VolumeExports {
  readonly owner: string
  readonly dst: number
  #ctl: CtlFn
  #vols: Volumes
  #held = new Map<string, Held>()
  #log: (line: string) => void

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
