// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/bench-nbd.ts - `xseg bench NBD-URI`: drive a running pipeline
// through its front, the NBD export (nbd/client.ts), with a progress bar
// and a summary table (or one JSON document).
//
//   xseg bench 'nbd+unix:///vol?socket=/tmp/xseg.sock' --op randread --size 4K --depth 32 --time 10
//   xseg bench nbd://127.0.0.1:10809/vol --op write -n 10000 --verify
//
// Ops: read, write, randread, randwrite, randrw (half each). --verify with a
// write op reads every block back afterwards and checks it; with a read op
// it checks what an earlier `--op write --verify --seed S` wrote.
import { SingleBar } from 'cli-progress'
import { NbdClient } from '../nbd/client.js'
import { type Context, Usage, blockFill, num, percentile, seconds } from './cmd.js'

const OPS = ['read', 'write', 'randread', 'randwrite', 'randrw'] as const
type BenchOp = (typeof OPS)[number]

export function isNbdUri(s: string | undefined): boolean {
  return !!s && /^nbd(\+unix|\+tcp)?:\/\//.test(s)
}

/** nbd+unix:///EXPORT?socket=PATH and nbd[+tcp]://HOST[:PORT]/EXPORT. */
export function parseNbdUri(uri: string): { unix?: string, host?: string, port?: number, export: string } {
  let u: URL
  try {
    u = new URL(uri)
  } catch {
    throw new Usage(`'${uri}' is not an NBD URI (nbd+unix:///EXPORT?socket=PATH or nbd://HOST[:PORT]/EXPORT)`)
  }
  const exp = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (u.protocol === 'nbd+unix:') {
    const socket = u.searchParams.get('socket')
    if (!socket) throw new Usage(`'${uri}': an nbd+unix URI needs ?socket=PATH`)
    return { unix: socket, export: exp }
  }
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 10809, export: exp }
}

export async function benchNbd(ctx: Context, uri: string): Promise<number> {
  const o = ctx.opts
  const op = (o.op ?? 'randread') as BenchOp
  if (!OPS.includes(op)) throw new Usage(`--op: '${String(o.op)}' is not one of ${OPS.join(', ')} (for an NBD URI)`)
  const bs = num(o.size, '--size', 4096)
  if (bs < 512 || bs % 512) throw new Usage('--size: a multiple of 512')
  const depth = num(o.depth, '--depth', 32)
  if (depth < 1 || depth > 1024) throw new Usage('--depth: 1 to 1024')
  const count = o.count === undefined ? Infinity : num(o.count, '--count', 0)
  const secs = o.time === undefined ? (count === Infinity ? 10 : Infinity) : seconds(o.time, '--time', 10)
  const seed = num(o.seed, '--seed', 1)
  const verify = o.verify === true
  const addr = parseNbdUri(uri)
  const c = await NbdClient.connect({ ...addr })
  const size = Number(c.size)
  const range = Math.min(num(o.range, '--range', size), size)
  const blocks = Math.floor(range / bs)
  if (blocks < 1) throw new Usage(`--range/--size: the export (${size} bytes) holds no block of ${bs}`)
  if (c.readonly && op !== 'read' && op !== 'randread') throw Object.assign(new Error(`export '${addr.export}' is read-only`), { code: 'EROFS' })

  const bar = ctx.json || !process.stderr.isTTY ? null
    : new SingleBar({ format: `${op} ${bs}B QD${depth} {bar} {percentage}% | {iops} IOPS | {mibs} MiB/s`, hideCursor: true, stream: process.stderr })
  bar?.start(count !== Infinity ? count : Math.round(secs * 10), 0, { iops: 0, mibs: 0 })
  const lat: number[] = []
  let errors = 0
  let seq = 0
  let done = 0
  const written = verify ? new Set<number>() : null
  const t0 = process.hrtime.bigint()
  const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9
  const tick = setInterval(() => {
    const s = elapsed()
    bar?.update(count !== Infinity ? done : Math.min(Math.round(s * 10), Math.round(secs * 10)),
      { iops: Math.round(done / s), mibs: (done * bs / 2 ** 20 / s).toFixed(0) })
  }, 200)
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(bs)
    while (seq < count && elapsed() < secs) {
      const n = seq++
      const rand = op.startsWith('rand')
      const blk = rand ? Math.floor(Math.random() * blocks) : n % blocks
      const write = op === 'write' || op === 'randwrite' || (op === 'randrw' && Math.random() < 0.5)
      const off = blk * bs
      const t = process.hrtime.bigint()
      try {
        if (write) {
          blockFill(buf, off, seed)
          await c.write(off, buf)
          written?.add(blk)
        } else {
          const d = await c.read(off, bs)
          if (verify) {
            blockFill(buf, off, seed)
            if (!d.equals(buf)) errors++
          }
        }
        lat.push(Number(process.hrtime.bigint() - t) / 1000)
      } catch (e) {
        errors++
        if (errors <= 5 && !ctx.json) process.stderr.write(`xseg bench: ${write ? 'write' : 'read'} at ${off}: ${(e as Error).message}\n`)
        if ((e as { nbdError?: number }).nbdError === 0) break // the connection is gone
      }
      done++
    }
  }
  try {
    await Promise.all(Array.from({ length: depth }, worker))
  } finally {
    clearInterval(tick)
    bar?.update(count !== Infinity ? done : Math.round(secs * 10))
    bar?.stop()
  }
  const wall = elapsed()
  let mismatches = 0
  if (written && written.size) {
    const list = [...written]
    let i = 0
    const check = async (): Promise<void> => {
      const want = Buffer.allocUnsafe(bs)
      while (i < list.length) {
        const off = list[i++]! * bs
        blockFill(want, off, seed)
        if (!(await c.read(off, bs)).equals(want)) mismatches++
      }
    }
    await Promise.all(Array.from({ length: depth }, check))
  }
  await c.disconnect().catch(() => c.close())
  lat.sort((a, b) => a - b)
  const pct = (q: number): number => +percentile(lat, q).toFixed(1)
  const doc = {
    uri, export: addr.export, op, blockSize: bs, depth, seconds: +wall.toFixed(3), requests: lat.length, errors,
    mismatches, verified: verify ? (written ? written.size : lat.length) : 0,
    iops: +(lat.length / wall).toFixed(0), mibPerSecond: +(lat.length * bs / 2 ** 20 / wall).toFixed(1),
    latencyUs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), max: +(lat[lat.length - 1] ?? 0).toFixed(1) },
  }
  ctx.emit(doc, () => {
    const rows: [string, string][] = [
      ['export', `${addr.export || "''"} (${size} bytes), ${op} ${bs} B, depth ${depth}`],
      ['requests', `${doc.requests} in ${doc.seconds} s, ${errors} errors${verify ? `, ${mismatches} mismatches` : ''}`],
      ['throughput', `${doc.iops} IOPS, ${doc.mibPerSecond} MiB/s`],
      ['latency us', `p50 ${doc.latencyUs.p50}  p90 ${doc.latencyUs.p90}  p99 ${doc.latencyUs.p99}  p99.9 ${doc.latencyUs.p999}  max ${doc.latencyUs.max}`],
    ]
    return rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join('')
  })
  return errors || mismatches ? 1 : 0
}
