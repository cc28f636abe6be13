// SPDX-License-Identifier: BSD-2-Clause
//
// test/node/fakevol.ts - an in-memory stand-in for vlmcd, speaking the
// protocol of peers/user/volume.h (management ops with text payloads and
// error texts, OPEN/CLOSE, block ops on NAME and NAME@SNAP), for the tests
// of what a user touches (Volumes, `xseg volume`, the gateway's volume
// mode) that do not need the real chain. It is a reference of the contract,
// not of vlmcd: the real-chain tests run the same clients on vlmcd. It
// counts object reads that reach "storage" (a thin read counts none).
import type { Request } from '../../sys/node/ts/index'

interface Vol {
  name: string
  kind: 'volume' | 'snapshot'
  size: number
  objectSize: number
  parent: string | null
  objects: Map<number, Buffer>
  snapshots: string[]
  clones: string[]
  openBy: string | null
  id: number
}

export interface FakeVolumes {
  handle(req: Request): void
  vols: Map<string, Vol>
  /** Object reads that hit stored data (holes count none). */
  storageReads: number
  /** Every request op seen, in order (management and OPEN/CLOSE only). */
  log: string[]
}

/** A fake volume peer: pass handle to port.serve(). */
export function fakeVolumes(): FakeVolumes {
  const vols = new Map<string, Vol>()
  let ids = 0
  const fv: FakeVolumes = { handle, vols, storageReads: 0, log: [] }

  class Fail extends Error {
    constructor(readonly code: string, msg: string) {
      super(msg)
    }
  }

  function kv(req: Request): Map<string, string> {
    const text = req.data.toString('utf8', 0, Math.min(req.size, req.data.length))
    const m = new Map<string, string>()
    for (const l of text.split('\n')) {
      if (!l) continue
      const i = l.indexOf('=')
      if (i <= 0) throw new Fail('EINVAL', `'${l}' is not key=value`)
      m.set(l.slice(0, i), l.slice(i + 1))
    }
    return m
  }

  function only(m: Map<string, string>, keys: string[]): void {
    for (const k of m.keys()) if (!keys.includes(k)) throw new Fail('EINVAL', `unknown key '${k}'`)
  }

  function get(name: string): Vol {
    const v = vols.get(name)
    if (!v) throw new Fail('ENOENT', `${name} does not exist`)
    return v
  }

  function reply(req: Request, text: string): void {
    const b = Buffer.from(text)
    const n = Math.min(b.length, req.data.length)
    b.copy(req.data, 0, 0, n)
    req.respond({ serviced: n })
  }

  function rw(req: Request, v: Vol, write: boolean, zero: boolean): void {
    const off = Number(req.offset)
    const size = req.size
    if (off + size > v.size) throw new Fail('ENOSPC', `${req.target}: ${off}+${size} is past the end (${v.size})`)
    for (let p = 0; p < size;) {
      const idx = Math.floor((off + p) / v.objectSize)
      const within = (off + p) % v.objectSize
      const n = Math.min(size - p, v.objectSize - within)
      let o = v.objects.get(idx)
      if (write) {
        if (zero && n === v.objectSize) v.objects.delete(idx)
        else {
          // Copy-on-write: objects are shared by reference with snapshots.
          const fresh = Buffer.alloc(v.objectSize)
          if (o) o.copy(fresh)
          o = fresh
          v.objects.set(idx, o)
          if (zero) o.fill(0, within, within + n)
          else req.data.copy(o, within, p, p + n)
        }
      } else if (o) {
        fv.storageReads++
        o.copy(req.data, p, within, within + n)
      } else req.data.fill(0, p, p + n)
      p += n
    }
    req.respond({ serviced: size })
  }

  function handle(req: Request): void {
    try {
      serve(req)
    } catch (e) {
      if (!(e instanceof Fail)) throw e
      const b = Buffer.from(e.message)
      const n = Math.min(b.length, req.data.length)
      b.copy(req.data, 0, 0, n)
      req.serviced = n
      req.fail(e.code)
    }
  }

  function serve(req: Request): void {
    const t = req.target
    const op = req.op
    if (op !== 'read' && op !== 'write' && op !== 'flush' && op !== 'sync') fv.log.push(`${op} ${t}`)
    if (t === '.list' && op === 'info') {
      return reply(req, [...vols.values()].map((v) => `${v.name}\t${v.kind}\t${v.size}\t${v.parent ?? '-'}\n`).join(''))
    }
    if (t === '.fsck' && (op === 'info' || op === 'delete')) return reply(req, 'objects=0\nnamed=0\nleaked=0\n')
    const at = t.indexOf('@')
    const base = at < 0 ? t : t.slice(0, at)
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(base) || (at >= 0 && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(t.slice(at + 1))))
      throw new Fail('EINVAL', `'${t}' is not a volume name`)
    switch (op) {
      case 'create': {
        const m = kv(req)
        only(m, ['size', 'object_size'])
        if (at >= 0) throw new Fail('EINVAL', `${t}: create a volume, not a snapshot`)
        if (vols.has(t)) throw new Fail('EEXIST', `${t} exists`)
        const size = Number(m.get('size'))
        if (!(size > 0)) throw new Fail('EINVAL', 'size= is required')
        vols.set(t, { name: t, kind: 'volume', size, objectSize: Number(m.get('object_size') ?? 4 << 20), parent: null,
          objects: new Map(), snapshots: [], clones: [], openBy: null, id: ++ids })
        return req.respond()
      }
      case 'snapshot': {
        const m = kv(req)
        only(m, ['name'])
        const v = get(t)
        const name = `${t}@${m.get('name')}`
        if (vols.has(name)) throw new Fail('EEXIST', `${name} exists`)
        vols.set(name, { ...v, name, kind: 'snapshot', objects: new Map(v.objects), snapshots: [], clones: [], openBy: null, id: ++ids })
        v.snapshots.push(m.get('name')!)
        return req.respond()
      }
      case 'clone': {
        const m = kv(req)
        only(m, ['name', 'size'])
        const s = get(t)
        if (s.kind !== 'snapshot') throw new Fail('EINVAL', `${t} is not a snapshot`)
        const name = m.get('name')!
        if (vols.has(name)) throw new Fail('EEXIST', `${name} exists`)
        vols.set(name, { ...s, name, kind: 'volume', size: Number(m.get('size') ?? s.size), parent: t, objects: new Map(s.objects),
          snapshots: [], clones: [], openBy: null, id: ++ids })
        s.clones.push(name)
        return req.respond()
      }
      case 'update': {
        const m = kv(req)
        only(m, ['size'])
        const v = get(t)
        if (v.kind === 'snapshot') throw new Fail('EROFS', `${t} is a snapshot`)
        const size = Number(m.get('size'))
        if (size < v.size) throw new Fail('EINVAL', `${t}: ${size} is smaller than ${v.size} (grow only)`)
        v.size = size
        return req.respond()
      }
      case 'delete': {
        const v = get(t)
        if (v.clones.length) throw new Fail('EBUSY', `${t} has clones: ${v.clones.join(', ')}`)
        if (v.snapshots.length) throw new Fail('EBUSY', `${t} has snapshots: ${v.snapshots.map((s) => `${t}@${s}`).join(', ')}`)
        if (v.openBy) throw new Fail('EBUSY', `${t} is open by ${v.openBy}`)
        vols.delete(t)
        if (at >= 0) {
          const p = vols.get(base)
          if (p) p.snapshots = p.snapshots.filter((s) => s !== t.slice(at + 1))
        }
        if (v.parent) {
          const p = vols.get(v.parent)
          if (p) p.clones = p.clones.filter((c) => c !== t)
        }
        return req.respond()
      }
      case 'info': {
        const v = get(t)
        // The block INFO (size 8: the size, as blockd) or the management one (size 0: key=value lines).
        if (req.size === 8) {
          req.data.writeBigUInt64LE(BigInt(v.size), 0)
          return req.respond({ serviced: 8 })
        }
        let bytes = 0
        for (const o of v.objects.values()) bytes += o.length
        return reply(req, `name=${v.name}\nkind=${v.kind}\nsize=${v.size}\nobject_size=${v.objectSize}\nparent=${v.parent ?? '-'}\n` +
          `snapshots=${v.snapshots.join(',')}\nclones=${v.clones.join(',')}\nobjects=${v.objects.size}\nbytes=${bytes}\n` +
          `open_by=${v.openBy ?? '-'}\nid=${v.id}\nversion=1\nreaders=-\n`)
      }
      case 'open': {
        const m = kv(req)
        only(m, ['owner', 'ro', 'force'])
        const v = get(t)
        const owner = m.get('owner') ?? `port ${req.src}`
        if (v.kind === 'volume') {
          if (v.openBy && v.openBy !== owner) throw new Fail('EBUSY', `${t} is open by ${v.openBy}`)
          v.openBy = owner
        }
        return req.respond()
      }
      case 'close': {
        const m = kv(req)
        const v = get(t)
        const owner = m.get('owner') ?? `port ${req.src}`
        if (v.kind === 'volume') {
          if (v.openBy !== owner) throw new Fail('EPERM', `${t} is not open by ${owner}`)
          v.openBy = null
        }
        return req.respond()
      }
      case 'read':
        return rw(req, get(t), false, false)
      case 'write':
      case 'write_zeroes':
      case 'discard': {
        const v = get(t)
        if (v.kind === 'snapshot') throw new Fail('EROFS', `${t} is a snapshot (read-only)`)
        return rw(req, v, true, op !== 'write')
      }
      case 'flush':
      case 'sync':
        get(t)
        return req.respond()
      default:
        throw new Fail('ENOTSUP', `${op} is not a volume op`)
    }
  }
  return fv
}
