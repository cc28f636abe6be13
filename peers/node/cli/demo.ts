// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/demo.ts - `xseg demo`, the README's main job: a block pipeline
// on a fresh machine, end to end.
//
// It creates a posix shared-memory segment and a temporary volume file,
// starts blockd on port 1 and the NBD gateway on a unix socket under the
// supervisor of `xseg serve` (serve.ts), and drives a verified workload
// through the gateway with the NBD client (nbd/client.ts):
//
//   write     the volume's first part in extents of 4K-256K, random order
//   flush
//   verify    every byte read back and compared
//   trim      trim and write-zeroes on some extents; they must read as zeroes
//   failover  a second generation of writes; blockd is killed (SIGKILL) in
//             the middle: the writes in flight fail, the supervisor recovers
//             the segment and restarts blockd, the failed writes are retried,
//             and every acknowledged byte is read back and checked
//
// then the volume scene (demo-volumes.ts: create, write, snapshot, overwrite,
// clone, every snapshot and clone byte verified) on the chain filed <-
// mapperd <- vlmcd, prints a table and tears everything down. Exit status 0
// only if every byte checked out.
import { SingleBar } from 'cli-progress'
import { mkdtempSync, openSync, closeSync, ftruncateSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { blockFill, percentile } from './cmd.js'
import { NbdClient, NbdError } from '../nbd/client.js'
import { Pipeline, resolveProgram, type ServeConfig } from './serve.js'
import { volumeScene } from './demo-volumes.js'

export interface DemoOptions {
  /** Volume size in bytes (default 256 MiB); the workload covers half of it. */
  size: number
  /** Requests in flight (default 16). */
  depth: number
  /** Progress bars (default: when stdout is a terminal). */
  progress: boolean
  /** Supervisor log lines on stderr. */
  verbose: boolean
  json: boolean
}

export interface Extent { off: number, len: number, gen: number }

export interface PhaseResult {
  phase: string
  requests: number
  bytes: number
  seconds: number
  errors: number
  lat: number[]
  note: string
}

const BLOCK = 4096
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The offset of the first byte of @buf that differs from blockFill(@gen), or -1. */
export function mismatch(buf: Buffer, off: number, gen: number, scratch: Buffer): number {
  const want = scratch.subarray(0, buf.length)
  blockFill(want, off, gen)
  if (want.equals(buf)) return -1
  for (let i = 0; i < buf.length; i++) if (buf[i] !== want[i]) return off + i
  return -1
}

/** Extents of 4K..256K covering [0, bytes), in random order. */
export function extents(bytes: number): Extent[] {
  const out: Extent[] = []
  for (let off = 0; off < bytes;) {
    const len = Math.min(bytes - off, BLOCK * (1 + Math.floor(Math.random() * 64)))
    out.push({ off, len, gen: 0 })
    off += len
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

function pct(lat: number[], q: number): number {
  return percentile([...lat].sort((x, y) => x - y), q)
}

/** Run @work(item) for every item with @depth in flight; progress in bytes. */
export async function pool<T>(items: T[], depth: number, bytes: (t: T) => number, bar: Bar,
                       work: (t: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const t = items[next++]!
      await work(t)
      bar.tick(bytes(t))
    }
  }
  await Promise.all(Array.from({ length: Math.min(depth, items.length) }, worker))
}

/** A progress bar on a terminal, nothing elsewhere. */
export class Bar {
  #bar: SingleBar | null = null
  constructor(on: boolean, title: string, total: number) {
    if (!on) return
    this.#bar = new SingleBar({
      format: `${title.padEnd(9)} {bar} {percentage}% | {value}/{total} MiB | {speed} MiB/s`,
      barCompleteChar: '#', barIncompleteChar: '.', hideCursor: true, clearOnComplete: false, stream: process.stdout,
    })
    this.#bar.start(Math.round(total / 2 ** 20), 0, { speed: '0' })
    this.#t0 = process.hrtime.bigint()
  }

  #done = 0
  #t0 = 0n
  tick(bytes: number): void {
    this.#done += bytes
    if (!this.#bar) return
    const s = Number(process.hrtime.bigint() - this.#t0) / 1e9
    this.#bar.update(Math.round(this.#done / 2 ** 20), { speed: (this.#done / 2 ** 20 / Math.max(s, 1e-3)).toFixed(0) })
  }

  stop(): void {
    this.#bar?.stop()
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const blockd = resolveProgram('blockd', process.cwd())
  if (!blockd) throw Object.assign(new Error('blockd is not built: run `make demo` (or make user) first'), { code: 'ENOENT' })
  const dir = mkdtempSync(join(tmpdir(), 'xseg-demo-'))
  const volume = join(dir, 'volume.img')
  const sock = join(dir, 'nbd.sock')
  const fd = openSync(volume, 'w')
  ftruncateSync(fd, o.size)
  closeSync(fd)
  const spec = `posix:xseg-demo-${process.pid}:8:128:256K:0:12`
  const cfg: ServeConfig = {
    spec, create: true, destroyOnExit: true, stopGraceMs: 10000,
    peers: [{ name: 'blockd', program: blockd, port: 1, driver: 'posixfd', args: ['--file', volume], restart: 'always' }],
    nbd: { storagePort: 1, unix: sock, driver: 'posixfd', restart: 'always', exports: [{ name: 'demo', target: 'demo', readonly: false }] },
  }
  const say = (s: string): void => { if (!o.json) process.stdout.write(s + '\n') }
  const pipe = new Pipeline(cfg)
  const events: string[] = []
  pipe.on('log', (line) => {
    if (o.verbose) process.stderr.write(`  serve: ${line}\n`)
    events.push(line)
  })
  // Interrupted: stop the peers and remove the segment and the volume anyway.
  const interrupted = (sig: NodeJS.Signals): void => {
    process.stderr.write(`xseg demo: ${sig}, stopping the pipeline\n`)
    void pipe.stop().finally(() => {
      rmSync(dir, { recursive: true, force: true })
      process.exit(130)
    })
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  const results: PhaseResult[] = []
  let client: NbdClient | null = null
  let ok = false
  try {
    say(`xseg demo: segment ${spec}`)
    say(`           volume ${volume} (${o.size / 2 ** 20} MiB), NBD on ${sock}, export 'demo'`)
    await pipe.start()
    say(`           blockd pid ${pipe.pid('blockd')} on port 1, gateway pid ${pipe.pid('nbd')}`)
    client = await NbdClient.connect({ unix: sock, export: 'demo' })
    if (BigInt(client.size) !== BigInt(o.size)) throw new Error(`the export reports ${client.size} bytes, the volume has ${o.size}`)
    const c = client
    const region = Math.floor(o.size / 2 / BLOCK) * BLOCK
    const ext = extents(region)
    const scratch = Buffer.alloc(256 * 1024)
    let wrong = -1

    const phase = async (name: string, items: Extent[], bytes: (e: Extent) => number,
                         op: (e: Extent, r: PhaseResult) => Promise<void>, note = ''): Promise<PhaseResult> => {
      const total = items.reduce((s, e) => s + bytes(e), 0)
      const r: PhaseResult = { phase: name, requests: 0, bytes: 0, seconds: 0, errors: 0, lat: [], note }
      const bar = new Bar(o.progress, name, total)
      const t0 = process.hrtime.bigint()
      try {
        await pool(items, o.depth, bytes, bar, async (e) => {
          const t = process.hrtime.bigint()
          await op(e, r)
          r.lat.push(Number(process.hrtime.bigint() - t) / 1000)
          r.requests++
          r.bytes += bytes(e)
        })
      } finally {
        bar.stop()
      }
      r.seconds = Number(process.hrtime.bigint() - t0) / 1e9
      results.push(r)
      if (!o.progress) say(`  ${name.padEnd(9)} ${r.requests} requests, ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.seconds.toFixed(2)} s`)
      return r
    }
    const verify = async (name: string): Promise<void> => {
      await phase(name, ext, (e) => e.len, async (e) => {
        const data = await c.read(e.off, e.len)
        const bad = mismatch(data, e.off, e.gen, scratch)
        if (bad >= 0 && wrong < 0) wrong = bad
      })
      if (wrong >= 0) throw new Error(`${name}: the byte at offset ${wrong} is not what was written`)
    }

    // 1. Write, flush, verify.
    await phase('write', ext, (e) => e.len, async (e) => {
      const buf = Buffer.allocUnsafe(e.len)
      blockFill(buf, e.off, 1)
      await c.write(e.off, buf)
      e.gen = 1
    })
    const tf = process.hrtime.bigint()
    await c.flush()
    results.push({ phase: 'flush', requests: 1, bytes: 0, seconds: Number(process.hrtime.bigint() - tf) / 1e9, errors: 0, lat: [Number(process.hrtime.bigint() - tf) / 1000], note: '' })
    await verify('verify')

    // 2. Trim and write-zeroes a few extents: they read back as zeroes.
    const some = ext.slice(0, Math.min(64, ext.length))
    await phase('trim+zero', some, (e) => e.len, async (e) => {
      if (e.off % 2) await c.trim(e.off, e.len)
      else await c.writeZeroes(e.off, e.len)
      e.gen = 0
    })
    await phase('check', some, (e) => e.len, async (e) => {
      const data = await c.read(e.off, e.len)
      const bad = mismatch(data, e.off, 0, scratch)
      if (bad >= 0 && wrong < 0) wrong = bad
    })
    if (wrong >= 0) throw new Error(`trim/write-zeroes: the byte at offset ${wrong} is not zero`)

    // 3. Failover: generation 2 over everything; kill blockd a third of the
    // way; retry what failed until the restarted blockd takes it.
    const victim = pipe.pid('blockd')!
    const restarted = new Promise<number>((res) => pipe.once('restart', (_n, pid) => {
      tBack = process.hrtime.bigint()
      res(pid)
    }))
    let killedAt = 0
    let failedWrites = 0
    let tKill = 0n
    let tBack = 0n
    const killAfter = Math.floor(ext.length / 3)
    let done = 0
    await phase('failover', ext, (e) => e.len, async (e) => {
      const buf = Buffer.allocUnsafe(e.len)
      blockFill(buf, e.off, 2)
      for (let attempt = 0; ; attempt++) {
        try {
          await c.write(e.off, buf, { fua: true })
          break
        } catch (err) {
          if (!(err instanceof NbdError) || err.nbdError === 0 || attempt > 200) throw err
          failedWrites++
          await sleep(50)
        }
      }
      e.gen = 2
      if (++done === killAfter) {
        killedAt = done
        tKill = process.hrtime.bigint()
        process.kill(victim, 'SIGKILL')
      }
    }, 'blockd SIGKILLed mid-run')
    let timer: NodeJS.Timeout | undefined
    const newPid = await Promise.race([restarted, new Promise<number>((res) => { timer = setTimeout(() => res(0), 20000) })])
    clearTimeout(timer)
    if (!newPid) throw new Error('blockd was not restarted within 20 s')
    await verify('verify 2')
    ok = true
    const failover = results.find((r) => r.phase === 'failover')!
    failover.errors = failedWrites
    failover.note = `blockd (pid ${victim}) killed after ${killedAt} writes; restarted as pid ${newPid}; ` +
      `${failedWrites} writes failed with an NBD error and were retried` +
      (tBack > tKill && tKill ? `; blockd was serving again ${(Number(tBack - tKill) / 1e6).toFixed(0)} ms after the kill` : '')
  } finally {
    try {
      if (client) await client.disconnect().catch(() => client?.close())
    } finally {
      await pipe.stop()
      rmSync(dir, { recursive: true, force: true })
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
    }
  }
  // The volume scene: a volume, its snapshot and a clone, through the gateway.
  if (ok) {
    ok = false
    await volumeScene(o, say, results)
    ok = true
  }
  const rows = results.map((r) => ({
    phase: r.phase, requests: r.requests, MiB: +(r.bytes / 2 ** 20).toFixed(1), seconds: +r.seconds.toFixed(3),
    MiBps: r.seconds ? +(r.bytes / 2 ** 20 / r.seconds).toFixed(1) : 0,
    p50us: +pct(r.lat, 0.5).toFixed(0), p99us: +pct(r.lat, 0.99).toFixed(0), errors: r.errors, note: r.note,
  }))
  if (o.json) {
    process.stdout.write(JSON.stringify({ schemaVersion: 1, command: 'demo', ok, spec, size: o.size, depth: o.depth, phases: rows }) + '\n')
  } else {
    const head = ['phase', 'requests', 'MiB', 'seconds', 'MiB/s', 'p50 us', 'p99 us', 'errors']
    const cells = rows.map((r) => [r.phase, String(r.requests), r.MiB.toFixed(1), r.seconds.toFixed(2), r.MiBps.toFixed(1), String(r.p50us), String(r.p99us), String(r.errors)])
    const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
    const line = (c: string[]): string => c.map((v, i) => (i ? v.padStart(w[i]!) : v.padEnd(w[i]!))).join('  ')
    say('')
    say(line(head))
    for (const c of cells) say(line(c))
    for (const r of rows) if (r.note) say(`\n${r.phase}: ${r.note}`)
    say(`\nevery byte read back matched what was acknowledged (the snapshot's and the clone's too); pipelines stopped and segments destroyed`)
  }
  return ok ? 0 : 1
}
