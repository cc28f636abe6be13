// SPDX-License-Identifier: BSD-2-Clause
//
// bench/volume/run.ts - volumes against their baselines, in one invocation,
// everything on tmpfs (/dev/shm), driven by the same client (fio's nbd
// engine through a unix socket):
//
//   fresh     gateway (volume mode) -> vlmcd -> mapperd -> filed: a new
//             volume for every run: reads of holes (no storage request),
//             every first write to an object creates it
//   volume    the same chain, a volume written in full once, so reads hit
//             objects and writes land in objects it owns
//   clone     the same chain, a fresh clone of that volume's snapshot for
//             every run: reads of shared objects, and every first write to
//             an object is a copy-on-write (COPY at filed, map update)
//   blockd    gateway -> blockd on a raw file: the cost of the extra hops
//   sparse    (only with --servers) gateway -> blockd on a new sparse file
//             per run: what a fresh volume's first writes into never
//             written pages cost a raw file (columns sparse, fr/sparse)
//   qcow2     qemu-nbd on a fresh qcow2 overlay (qemu-img create -b) of a
//             base image written in full: what users pick for snapshots
//             today; its first writes allocate clusters in the overlay
//
// Workloads: 4K random read and write at queue depth 1 and 32, 1M
// sequential read and write at depth 4. Each (workload, server) runs ROUNDS
// times, interleaved across servers; the best round is kept. Prints a table
// and writes bench/results/volumes.json with IOPS, MB/s, latency and the
// ratios of fresh, volume and clone to blockd and to qcow2.
//
//   tsx bench/volume/run.ts [--runtime S] [--rounds N] [--size 256M] [--only WORKLOAD,...]
//                            [--servers fresh,volume,clone,blockd,qcow2] [--object-size 4M]
//                            [--base-bin DIR] [--one-cpu WORKLOAD,...] [--cpu N]
//
// --one-cpu (default QD1): the workloads whose names hold one of these run a
// second time as rows '... on CPU N' in which fio and every process of each
// server run on CPU --cpu only (taskset): at depth 1 a request wakes each
// process of its path in turn, and whether those wake-ups cross CPUs moves
// every server's figure, and the ratios, more than the software does
// (docs/volumes.md#where-the-processes-run-at-qd1). --one-cpu '' runs none.
//
// --base-bin DIR (a lib/user/bin of another build, e.g. main's) adds the
// server "base": the volume line on a second chain (filed, mapperd, vlmcd
// of DIR on ports 5-7, its own store, the same segment and gateway), run
// interleaved with the others: an A/B of a change in one invocation
// (columns base and vol/base).
import { spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Segment, Volumes } from '../../sys/node/ts/index'
import { WORKLOADS, fio as fioRun, need, run, sleep, start, stop, stopAll, stopEvery, waitFor, withOneCpu, type Result, type Server, type Workload } from '../lib/procs'

const ROOT = resolve(__dirname, '../..')
const CLI = join(ROOT, 'lib/node/cli.js')
const BIN = join(ROOT, 'lib/user/bin')

const { values: opt } = parseArgs({
  options: {
    runtime: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    size: { type: 'string', default: '256M' },
    'object-size': { type: 'string', default: '4M' },
    only: { type: 'string' },
    'one-cpu': { type: 'string', default: 'QD1' },
    cpu: { type: 'string', default: '0' },
    servers: { type: 'string', default: 'fresh,volume,clone,blockd,qcow2' },
    out: { type: 'string', default: join(ROOT, 'bench/results/volumes.json') },
    'base-bin': { type: 'string' },
  },
})

const MB = 1 << 20
const sizeMB = parseInt(opt.size!)
const objectSize = parseInt(opt['object-size']!) * MB
const shm = mkdtempSync('/dev/shm/xseg-volbench-')
const raw = join(shm, 'raw.img')
// One segment for every xseg server: the same buffers for blockd and the chain.
// With --base-bin a second chain needs dynamic ports of its own (mapperd binds one per I/O thread).
const spec = `posix:volbench${process.pid}:${opt['base-bin'] ? 96 : 64}:1024:64K:0:12:dynports=48:buffers=1M*64`
let seg: Segment | undefined

function cleanup(): void {
  stopAll()
  seg?.close()
  spawnSync(process.execPath, [CLI, 'destroy', spec], { stdio: 'ignore' })
  rmSync(shm, { recursive: true, force: true })
}
process.on('exit', cleanup)
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130))

async function bound(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const p = seg!.portInfo(port)
    if (p.state === 'bound' && p.alive) return
    await sleep(50)
  }
  throw new Error(`nobody bound port ${port} in 15 s`)
}

/** The gateway on @port's peer: a process of its own, as users run it. */
async function gateway(name: string, storagePort: number, args: string[]): Promise<{ uri: (e: string) => string, c: ChildProcess, sock: string }> {
  const sock = join(shm, `${name}.sock`)
  const c = start(process.execPath, [CLI, 'nbd', spec, '--storage-port', String(storagePort), '--unix', sock, '-q', ...args], `xseg nbd (${name})`)
  await waitFor(sock, `xseg nbd (${name})`, c)
  return { uri: (e) => `nbd+unix:///${e}?socket=${sock}`, c, sock }
}

function blockd(name = 'blockd'): Server {
  let d: ChildProcess | undefined
  let gw: Awaited<ReturnType<typeof gateway>> | undefined
  const sparse = join(shm, 'sparse.img')
  return {
    name,
    async up() {
      let file = raw
      if (name === 'sparse') {
        // A new file of the volume's size with no page written, as a fresh volume's objects are.
        rmSync(sparse, { force: true })
        writeFileSync(sparse, '')
        truncateSync(sparse, sizeMB * MB)
        file = sparse
      }
      d = start(join(BIN, 'blockd'), ['-g', spec, '-p', '4', '-d', 'posixfd', '--file', file], 'blockd')
      await bound(4)
      gw = await gateway('blockd', 4, ['--export', 'disk'])
      return gw.uri('disk')
    },
    async down() {
      if (gw) await stop(gw.c)
      if (d) await stop(d)
      rmSync(join(shm, 'blockd.sock'), { force: true })
      rmSync(sparse, { force: true })
    },
    pids: () => [gw?.c.pid, d?.pid].filter((x): x is number => !!x),
  }
}

/**
 * A chain (filed <- mapperd <- vlmcd of @bin, on ports @first..@first+2),
 * started once; volume 'base' written in full and its snapshot.
 */
interface Chain { vols: Volumes, pids: number[], port: number }
const chains = new Map<string, Promise<Chain>>()
function chainOf(bin: string, first: number, store: string): Promise<Chain> {
  let c = chains.get(store)
  if (!c) {
    c = (async () => {
      const fp = String(first), mp = String(first + 1), vp = String(first + 2)
      const f = start(join(bin, 'filed'), ['-g', spec, '-p', fp, '-d', 'posixfd', '-q', '--dir', join(shm, store)], 'filed')
      await bound(first)
      const m = start(join(bin, 'mapperd'), ['-g', spec, '-p', mp, '-d', 'posixfd', '-q', '--storage', fp], 'mapperd')
      await bound(first + 1)
      const l = start(join(bin, 'vlmcd'), ['-g', spec, '-p', vp, '-d', 'posixfd', '-q', '--mapper', mp, '--storage', fp], 'vlmcd')
      await bound(first + 2)
      const pids = [f, m, l].map((x) => x.pid).filter((x): x is number => !!x)
      const v = new Volumes(seg!.bindDynamicPort(), first + 2, { timeoutMs: 60000 })
      await v.create('base', { size: sizeMB * MB, objectSize })
      const gw = await gateway('fill', first + 2, ['--volumes'])
      run('nbdcopy', ['--connections=2', raw, gw.uri('base')])
      await stop(gw.c)
      rmSync(gw.sock, { force: true })
      await v.snapshot('base', 'snap')
      return { vols: v, pids, port: first + 2 }
    })()
    chains.set(store, c)
  }
  return c
}
const chainPids: number[] = []
let vols: Volumes | undefined
async function chain(): Promise<Volumes> {
  const c = await chainOf(BIN, 1, 'objects')
  if (!chainPids.length) chainPids.push(...c.pids)
  vols = c.vols
  return c.vols
}

function volume(name = 'volume', bin = BIN, first = 1, store = 'objects'): Server {
  let gw: Awaited<ReturnType<typeof gateway>> | undefined
  let pids: number[] = []
  return {
    name,
    async up() {
      const c = await chainOf(bin, first, store)
      pids = c.pids
      gw = await gateway(name, c.port, ['--volumes'])
      return gw.uri('base')
    },
    async down() {
      if (gw) await stop(gw.c)
      rmSync(join(shm, `${name}.sock`), { force: true })
    },
    pids: () => [gw?.c.pid, ...pids].filter((x): x is number => !!x),
  }
}

let fresh = 0
function freshVolume(): Server {
  let gw: Awaited<ReturnType<typeof gateway>> | undefined
  let name = ''
  return {
    name: 'fresh',
    async up() {
      const v = await chain()
      name = `fresh${++fresh}`
      await v.create(name, { size: sizeMB * MB, objectSize })
      gw = await gateway('fresh', 3, ['--volumes'])
      return gw.uri(name)
    },
    async down() {
      if (gw) await stop(gw.c)
      rmSync(join(shm, 'fresh.sock'), { force: true })
      if (name) await vols!.rm(name)
    },
    pids: () => [gw?.c.pid, ...chainPids].filter((x): x is number => !!x),
  }
}

let clones = 0
function clone(): Server {
  let gw: Awaited<ReturnType<typeof gateway>> | undefined
  let name = ''
  return {
    name: 'clone',
    async up() {
      const v = await chain()
      name = `clone${++clones}`
      await v.clone('base@snap', name)
      gw = await gateway('clone', 3, ['--volumes'])
      return gw.uri(name)
    },
    async down() {
      if (gw) await stop(gw.c)
      rmSync(join(shm, 'clone.sock'), { force: true })
      if (name) await vols!.rm(name)
    },
    pids: () => [gw?.c.pid, ...chainPids].filter((x): x is number => !!x),
  }
}

function qcow2(): Server {
  const sock = join(shm, 'qemu-nbd.sock')
  const base = join(shm, 'base.qcow2')
  const overlay = join(shm, 'overlay.qcow2')
  let c: ChildProcess | undefined
  return {
    name: 'qcow2',
    async up() {
      if (!existsSync(base)) run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, base])
      rmSync(overlay, { force: true })
      run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay])
      c = start('qemu-nbd', ['-f', 'qcow2', '-k', sock, '--persistent', '--shared=8', '--cache=writeback', '--aio=threads', overlay], 'qemu-nbd')
      await waitFor(sock, 'qemu-nbd', c)
      return `nbd+unix:///?socket=${sock}`
    },
    async down() {
      if (c) await stop(c)
      rmSync(sock, { force: true })
    },
    pids: () => (c?.pid ? [c.pid] : []),
  }
}

function fio(uri: string, w: Workload, runtime: number, pids: number[]): Result {
  return fioRun(uri, w, runtime, opt.size!, shm, pids)
}

async function main(): Promise<void> {
  need('fio', 'fio'); need('qemu-nbd', 'qemu-utils'); need('qemu-img', 'qemu-utils'); need('nbdcopy', 'libnbd-bin')
  for (const f of ['lib/node/cli.js', 'lib/user/bin/blockd', 'lib/user/bin/filed', 'lib/user/bin/mapperd', 'lib/user/bin/vlmcd'])
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run make user node`)
  const runtime = Number(opt.runtime)
  const rounds = Number(opt.rounds)
  const only = opt.only ? opt.only.split(',') : null
  const picked = WORKLOADS.filter((w) => !only || only.some((o) => w.name.toLowerCase().includes(o.toLowerCase())))
  const loads = withOneCpu(picked, opt['one-cpu']!, opt.cpu!)
  // The data: written once in full, so that reads hit real pages (and objects).
  const fill = spawnSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${sizeMB}`, 'status=none'])
  if (fill.status !== 0) throw new Error(`dd: cannot write ${raw}`)
  seg = Segment.createSync(spec, { peerType: 'posixfd' })
  const all: Record<string, () => Server> = { fresh: freshVolume, volume: () => volume(), clone, blockd: () => blockd(), sparse: () => blockd('sparse'), qcow2 }
  if (opt['base-bin']) all.base = () => volume('base', resolve(opt['base-bin']!), 5, 'objects-base')
  const names = opt.servers!.split(',')
  for (const s of names) if (!all[s]) throw new Error(`--servers: unknown server '${s}'`)
  const servers = names.map((s) => all[s]!())
  const best = new Map<string, Result>()
  const every = new Map<string, Result[]>()	// each round's, in order (the A/B's per-round ratios)
  const total = loads.length * servers.length * rounds
  let n = 0
  for (const w of loads) {
    for (let round = 0; round < rounds; round++) {
      // A,B then B,A: what runs first in a round (a warmer page cache, a quieter moment) alternates.
      for (const s of round % 2 ? [...servers].reverse() : servers) {
        n++
        if (process.stderr.isTTY) process.stderr.write(`\r[${n}/${total}] ${w.name.padEnd(18)} ${s.name.padEnd(7)} round ${round + 1}   `)
        const uri = await s.up()
        try {
          const r = fio(uri, w, runtime, s.pids ? s.pids() : [])
          const key = `${w.name}|${s.name}`
          const prev = best.get(key)
          if (!prev || r.iops > prev.iops) best.set(key, r)
          every.set(key, [...(every.get(key) ?? []), r])
        } finally {
          await s.down()
        }
      }
    }
  }
  if (process.stderr.isTTY) process.stderr.write('\n')
  const ratio = (a?: Result, b?: Result): number | null => (a && b ? +(a.iops / b.iops).toFixed(3) : null)
  const rows = loads.map((w) => {
    const g = (s: string): Result | undefined => best.get(`${w.name}|${s}`)
    const f = g('fresh'), v = g('volume'), c = g('clone'), b = g('blockd'), q = g('qcow2'), a = g('base'), sp = g('sparse')
    return {
      workload: w.name, rw: w.rw, bs: w.bs, depth: w.depth, ...(w.cpus ? { onCpus: w.cpus } : {}), fresh: f, volume: v, clone: c, blockd: b, qcow2: q,
      ...(a ? { base: a, volumeVsBase: ratio(v, a), baseVsBlockd: ratio(a, b) } : {}),
      ...(sp ? { sparse: sp, freshVsSparse: ratio(f, sp), sparseVsBlockd: ratio(sp, b) } : {}),
      freshVsBlockd: ratio(f, b), volumeVsBlockd: ratio(v, b), cloneVsBlockd: ratio(c, b),
      freshVsQcow2: ratio(f, q), volumeVsQcow2: ratio(v, q), cloneVsQcow2: ratio(c, q),
    }
  })
  const line = (c: string[]): string => c.map((v, i) => (i === 0 ? v.padEnd(26) : v.padStart(9))).join(' ')
  console.log(line(['workload', 'fresh', 'volume', 'clone', 'blockd', 'qcow2', 'fr/blk', 'vol/blk', 'cl/blk', 'fr/qcow', 'vol/qcow', 'cl/qcow']))
  for (const r of rows) {
    const iops = (x?: Result): string => (x ? x.iops.toFixed(0) : '-')
    const x = (v: number | null): string => (v === null ? '-' : v.toFixed(2) + 'x')
    console.log(line([r.workload, iops(r.fresh), iops(r.volume), iops(r.clone), iops(r.blockd), iops(r.qcow2),
      x(r.freshVsBlockd), x(r.volumeVsBlockd), x(r.cloneVsBlockd), x(r.freshVsQcow2), x(r.volumeVsQcow2), x(r.cloneVsQcow2)]))
  }
  if (names.includes('sparse')) {
    console.log('')
    console.log('blockd on a new sparse file (sparse) against its full one, and the fresh volume against it')
    console.log(line(['workload', 'sparse', 'blockd', 'sp/blk', 'fr/sparse']))
    for (const r of rows) {
      const x = (v?: number | null): string => (v === null || v === undefined ? '-' : v.toFixed(2) + 'x')
      console.log(line([r.workload, r.sparse ? r.sparse.iops.toFixed(0) : '-', r.blockd ? r.blockd.iops.toFixed(0) : '-',
        x(r.sparseVsBlockd), x(r.freshVsSparse)]))
    }
  }
  if (opt['base-bin']) {
    console.log('')
    console.log(`A/B: volume (this build) against base (${opt['base-bin']}), the same chain of another build`)
    console.log(line(['workload', 'volume', 'base', 'vol/base', 'vol/blk', 'base/blk', 'cpu vol', 'cpu base']))
    for (const r of rows) {
      const x = (v?: number | null): string => (v === null || v === undefined ? '-' : v.toFixed(2) + 'x')
      const c = (x?: Result): string => (x?.cpuUsPerIo !== undefined ? x.cpuUsPerIo.toFixed(1) : '-')
      console.log(line([r.workload, r.volume ? r.volume.iops.toFixed(0) : '-', r.base ? r.base.iops.toFixed(0) : '-',
        x(r.volumeVsBase), x(r.volumeVsBlockd), x(r.baseVsBlockd), c(r.volume), c(r.base)]))
      // Round k of volume against round k of base (run back to back): the ratios, and their median.
      const vs = every.get(`${r.workload}|volume`) ?? [], bs = every.get(`${r.workload}|base`) ?? []
      const rs = vs.map((v, i) => (bs[i] ? v.iops / bs[i]!.iops : NaN)).filter((q) => !Number.isNaN(q))
      const sorted = [...rs].sort((a, b) => a - b)
      const med = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : NaN
      console.log(`  per round vol/base: ${rs.map((q) => q.toFixed(2)).join(' ')}  (median ${med.toFixed(2)}, ${rs.length} rounds)`)
      ;(r as Record<string, unknown>).volumeVsBaseRounds = rs.map((q) => +q.toFixed(3))
    }
  }
  console.log('')
  console.log('server CPU time per I/O (user + system of every server process), microseconds')
  console.log(line(['workload', 'fresh', 'volume', 'clone', 'blockd', 'qcow2']))
  for (const r of rows) {
    const c = (x?: Result): string => (x?.cpuUsPerIo !== undefined ? x.cpuUsPerIo.toFixed(1) : '-')
    console.log(line([r.workload, c(r.fresh), c(r.volume), c(r.clone), c(r.blockd), c(r.qcow2)]))
  }
  console.log('')
  console.log('the same, per process: volume (gateway filed mapperd vlmcd), blockd (gateway blockd)')
  for (const r of rows) {
    const e = (x?: Result): string => (x?.cpuUsPerIoEach ? x.cpuUsPerIoEach.map((v) => v.toFixed(1)).join(' ') : '-')
    console.log(`${r.workload.padEnd(26)}  volume: ${e(r.volume)}   blockd: ${e(r.blockd)}`)
  }
  const doc = {
    schemaVersion: 1,
    benchmark: 'volumes',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, load1: loadavg()[0] },
    client: 'fio --ioengine=nbd (unix socket), best of rounds; IOPS',
    placement: `rows '... on CPU ${opt.cpu}': fio and every process of the server on that CPU (taskset -a); the others: where the scheduler puts them`,
    cpu: 'cpuUsPerIo: user + system CPU time of the server processes (chain: gateway + vlmcd + mapperd + filed; blockd: gateway + blockd; qcow2: qemu-nbd) from /proc/PID/stat over the fio run, over the I/O of ramp + runtime at the measured rate; cpus: that CPU time over the wall time',
    runtimeSeconds: runtime, rounds, size: opt.size, objectSize, segment: spec,
    servers: {
      fresh: 'xseg nbd --volumes -> vlmcd -> mapperd -> filed (tmpfs), a new volume per run (reads of holes)',
      volume: 'xseg nbd --volumes -> vlmcd -> mapperd -> filed (tmpfs), a volume written in full',
      clone: 'the same chain, a fresh clone of its snapshot per run (first writes copy-on-write)',
      blockd: 'xseg nbd -> blockd on a raw tmpfs file',
      ...(names.includes('sparse') ? { sparse: 'xseg nbd -> blockd on a new sparse tmpfs file per run' } : {}),
      qcow2: 'qemu-nbd --cache=writeback --aio=threads on a fresh qcow2 overlay of a full qcow2 base (tmpfs)',
    },
    rows,
  }
  writeFileSync(opt.out!, JSON.stringify(doc, null, 2) + '\n')
  console.log(`wrote ${opt.out}`)
}

// Its servers are stopped and waited for before it exits (the exit handler can only signal them).
main().then(() => stopEvery().then(() => process.exit(0)), (e: unknown) => {
  console.error(`volumes bench: ${e instanceof Error ? e.message : String(e)}`)
  return stopEvery().then(() => process.exit(1))
})
