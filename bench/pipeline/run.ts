// SPDX-License-Identifier: BSD-2-Clause
//
// bench/pipeline/run.ts - the block pipeline against other NBD servers, in
// one invocation, on the same tmpfs file, driven by the same client (fio's
// nbd engine):
//
//   xseg      the NBD gateway (peers/node/nbd) -> blockd, one posix segment
//   nbdkit    nbdkit's file plugin
//   qemu-nbd  qemu-nbd on the raw file
//   nbdkit-xseg  nbdkit with our plugin (peers/user/nbdkit) -> blockd, the
//             same segment; only the 4K random reads (PLUGIN_WORKLOADS), its
//             ratio against nbdkit's file plugin and our gateway
//
// Workloads: 4K random read and write at queue depth 1 and 32, 1M
// sequential read and write at depth 4. Each (workload, server) pair runs
// ROUNDS times, interleaved across servers so that drift of the machine
// hits all of them alike (every other round in reverse order: A,B,B,A); the best round is kept (noise on a shared machine
// only ever slows a run down). Prints a table and writes
// bench/results/pipeline.json with IOPS, MB/s, latency percentiles and the
// ratios xseg/nbdkit and xseg/qemu-nbd.
//
//   xseg-base the same pipeline from another build (--baseline ROOT: a tree
//             with lib/node/cli.js and lib/user/bin/blockd built, e.g. main's),
//             for A/B runs: its rounds interleave with xseg's, and a second
//             table gives the medians of both and their ratios
//
//   tsx bench/pipeline/run.ts [--runtime S] [--rounds N] [--size 256M] [--only WORKLOAD,...]
//       [--servers xseg,nbdkit,...] [--baseline ROOT] [--one-cpu WORKLOAD,...] [--cpu N]
//
// --one-cpu (default QD1): those workloads run again as rows '... on CPU N'
// with fio and every process of each server on CPU --cpu only (taskset; see
// bench/lib/procs.ts onCpus, docs/nbd.md#performance); '' runs none.
import { spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { WORKLOADS, fio as fioRun, need, start, stop, stopAll, stopEvery, waitFor, withOneCpu, type Result, type Server, type Workload } from '../lib/procs'

const ROOT = resolve(__dirname, '../..')

// The workloads the plugin runs (its own lines, next to the gateway's).
const PLUGIN_WORKLOADS = new Set(['4K randread QD1', '4K randread QD32'])

const { values: opt } = parseArgs({
  options: {
    runtime: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    size: { type: 'string', default: '256M' },
    only: { type: 'string' },
    servers: { type: 'string', default: 'xseg,nbdkit,qemu-nbd,nbdkit-xseg' },
    out: { type: 'string', default: join(ROOT, 'bench/results/pipeline.json') },
    baseline: { type: 'string' },
    'one-cpu': { type: 'string', default: 'QD1' },
    cpu: { type: 'string', default: '0' },
  },
})

const work = mkdtempSync(join(tmpdir(), 'xseg-pipebench-'))
const shm = mkdtempSync('/dev/shm/xseg-pipebench-')
const image = join(shm, 'volume.img')
const segName = `pipebench${process.pid}`
const spec = `posix:${segName}:8:256:1M:0:12`

function cleanup(): void {
  stopAll()
  spawnSync(process.execPath, [join(ROOT, 'lib/node/cli.js'), 'destroy', spec], { stdio: 'ignore' })
  rmSync(work, { recursive: true, force: true })
  rmSync(shm, { recursive: true, force: true })
}
process.on('exit', cleanup)
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130))

function nbdkit(): Server {
  const sock = join(work, 'nbdkit.sock')
  let c: ChildProcess | undefined
  return {
    name: 'nbdkit',
    async up() {
      c = start('nbdkit', ['--exit-with-parent', '-f', '-U', sock, 'file', `file=${image}`], 'nbdkit')
      await waitFor(sock, 'nbdkit', c)
      return `nbd+unix:///?socket=${sock}`
    },
    async down() { if (c) await stop(c); rmSync(sock, { force: true }) },
    pids: () => (c?.pid ? [c.pid] : []),
  }
}

function qemuNbd(): Server {
  const sock = join(work, 'qemu-nbd.sock')
  let c: ChildProcess | undefined
  return {
    name: 'qemu-nbd',
    async up() {
      c = start('qemu-nbd', ['-f', 'raw', '-k', sock, '--persistent', '--shared=8', '--cache=writeback', '--aio=threads', image], 'qemu-nbd')
      await waitFor(sock, 'qemu-nbd', c)
      return `nbd+unix:///?socket=${sock}`
    },
    async down() { if (c) await stop(c); rmSync(sock, { force: true }) },
    pids: () => (c?.pid ? [c.pid] : []),
  }
}

function xseg(root = ROOT, name = 'xseg'): Server {
  const sock = join(work, `${name}.sock`)
  const cli = join(root, 'lib/node/cli.js')
  let blockd: ChildProcess | undefined
  let gw: ChildProcess | undefined
  return {
    name,
    async up() {
      const r = spawnSync(process.execPath, [cli, 'create', spec], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`xseg create ${spec}: ${r.stderr}`)
      blockd = start(join(root, 'lib/user/bin/blockd'), ['-g', spec, '-p', '1', '-d', 'posixfd', '--file', image], 'blockd')
      gw = start(process.execPath, [cli, 'nbd', spec, '--storage-port', '1', '--unix', sock, '--export', 'disk'], 'xseg nbd')
      await waitFor(sock, 'xseg nbd', gw)
      return `nbd+unix:///?socket=${sock}`
    },
    async down() {
      if (gw) await stop(gw)
      if (blockd) await stop(blockd)
      spawnSync(process.execPath, [cli, 'destroy', spec], { stdio: 'ignore' })
      rmSync(sock, { force: true })
    },
    pids: () => [gw?.pid, blockd?.pid].filter((x): x is number => !!x),
  }
}

function nbdkitXseg(): Server {
  const sock = join(work, 'nbdkit-xseg.sock')
  const tool = join(ROOT, 'lib/user/bin/xseg-tool')
  let blockd: ChildProcess | undefined
  let c: ChildProcess | undefined
  return {
    name: 'nbdkit-xseg',
    async up() {
      const r = spawnSync(tool, ['create', spec], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`xseg create ${spec}: ${r.stderr}`)
      blockd = start(join(ROOT, 'lib/user/bin/blockd'), ['-g', spec, '-p', '1', '-d', 'futex', '--file', image], 'blockd')
      c = start('nbdkit', ['--exit-with-parent', '-f', '-U', sock, join(ROOT, 'lib/user/nbdkit/nbdkit-xseg-plugin.so'),
        `segment=${spec}`, 'port=1'], 'nbdkit-xseg')
      await waitFor(sock, 'nbdkit-xseg', c)
      return `nbd+unix:///?socket=${sock}`
    },
    async down() {
      if (c) await stop(c)
      if (blockd) await stop(blockd)
      spawnSync(tool, ['destroy', spec], { stdio: 'ignore' })
      rmSync(sock, { force: true })
    },
    pids: () => [c?.pid, blockd?.pid].filter((x): x is number => !!x),
  }
}

function fio(uri: string, w: Workload, runtime: number, size: string, pids: number[]): Result {
  return fioRun(uri, w, runtime, size, work, pids)
}

async function main(): Promise<void> {
  need('fio', 'fio'); need('nbdkit', 'nbdkit'); need('qemu-nbd', 'qemu-utils')
  const base = opt.baseline ? resolve(opt.baseline) : null
  const names = opt.servers!.split(',')
  if (base && !names.includes('xseg-base')) names.splice(names.indexOf('xseg') + 1, 0, 'xseg-base')
  if (names.includes('xseg-base')) {
    if (!base) throw new Error('--servers xseg-base needs --baseline ROOT')
    for (const f of ['lib/node/cli.js', 'lib/user/bin/blockd'])
      if (!existsSync(join(base, f))) throw new Error(`--baseline: ${join(base, f)} is missing: run make user node there`)
  }
  const needs = [...(names.includes('xseg') ? ['lib/node/cli.js', 'lib/user/bin/blockd'] : []),
    ...(names.includes('nbdkit-xseg') ? ['lib/user/bin/blockd', 'lib/user/bin/xseg-tool', 'lib/user/nbdkit/nbdkit-xseg-plugin.so'] : [])]
  for (const f of needs) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run make user node`)
  }
  const runtime = Number(opt.runtime)
  const rounds = Number(opt.rounds)
  const only = opt.only ? opt.only.split(',') : null
  const loads = withOneCpu(WORKLOADS.filter((w) => !only || only.some((o) => w.name.toLowerCase().includes(o.toLowerCase()))),
    opt['one-cpu']!, opt.cpu!)
  // The volume: written once in full, so that reads hit real pages.
  const fill = spawnSync('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', `count=${parseInt(opt.size!)}`, 'status=none'])
  if (fill.status !== 0) throw new Error(`dd: cannot write ${image}`)
  const all: Record<string, () => Server> = {
    xseg: () => xseg(), 'xseg-base': () => xseg(base!, 'xseg-base'), nbdkit, 'qemu-nbd': qemuNbd, 'nbdkit-xseg': nbdkitXseg,
  }
  for (const s of names) if (!all[s]) throw new Error(`--servers: unknown server '${s}'`)
  const servers = names.map((s) => all[s]!())
  const best = new Map<string, Result>()
  const every = new Map<string, Result[]>()	// every round, for the medians of the A/B table
  const runs = (w: Workload): Server[] => servers.filter((s) => s.name !== 'nbdkit-xseg' || PLUGIN_WORKLOADS.has(w.name))
  const total = loads.reduce((t, w) => t + runs(w).length, 0) * rounds
  let n = 0
  for (const w of loads) {
    for (let round = 0; round < rounds; round++) {
      // Every other round in reverse order: no server always runs first (or right after another's teardown).
      for (const s of round % 2 ? [...runs(w)].reverse() : runs(w)) {
        n++
        if (process.stderr.isTTY) process.stderr.write(`\r[${n}/${total}] ${w.name.padEnd(18)} ${s.name.padEnd(9)} round ${round + 1}   `)
        const uri = await s.up()
        try {
          const r = fio(uri, w, runtime, opt.size!, s.pids ? s.pids() : [])
          const key = `${w.name}|${s.name}`
          every.set(key, [...(every.get(key) ?? []), r])
          const prev = best.get(key)
          if (!prev || r.iops > prev.iops) best.set(key, r)
        } finally {
          await s.down()
        }
      }
    }
  }
  if (process.stderr.isTTY) process.stderr.write("\n")
  const rows = loads.map((w) => {
    const g = (s: string): Result | undefined => best.get(`${w.name}|${s}`)
    const x = g('xseg'), k = g('nbdkit'), q = g('qemu-nbd'), p = g('nbdkit-xseg')
    return {
      workload: w.name, rw: w.rw, bs: w.bs, depth: w.depth, ...(w.cpus ? { onCpus: w.cpus } : {}),
      xseg: x, nbdkit: k, qemuNbd: q, nbdkitXseg: p,
      ratioNbdkit: x && k ? x.iops / k.iops : null, ratioQemuNbd: x && q ? x.iops / q.iops : null,
      // p99 latency and server CPU time per I/O, xseg over nbdkit (lower is better)
      p99Nbdkit: x && k && k.p99us ? x.p99us / k.p99us : null,
      cpuPerIoNbdkit: x?.cpuUsPerIo && k?.cpuUsPerIo ? x.cpuUsPerIo / k.cpuUsPerIo : null,
      // the plugin against nbdkit's own file plugin (same nbdkit, same file), and our gateway against the plugin
      ratioPluginNbdkit: p && k ? p.iops / k.iops : null, ratioXsegPlugin: x && p ? x.iops / p.iops : null,
    }
  })
  const f1 = (v: number): string => v.toFixed(1)
  const line = (c: string[]): string => c.map((v, i) => (i === 0 ? v.padEnd(26) : v.padStart(10))).join(' ')
  console.log(line(['workload', 'xseg IOPS', 'nbdkit', 'qemu-nbd', 'xseg p50us', 'nbdkit p50', 'x/nbdkit', 'x/qemu-nbd',
    'p99 x/nbdk', 'xseg cpuus', 'nbdkit cpu', 'cpu x/nbdk']))
  for (const r of rows) {
    const iops = (v: Result | undefined): string => (v ? v.iops.toFixed(0) : '-')
    const p50 = (v: Result | undefined): string => (v ? f1(v.p50us) : '-')
    const cpu = (v: Result | undefined): string => (v?.cpuUsPerIo !== undefined ? f1(v.cpuUsPerIo) : '-')
    const ratio = (v: number | null): string => (v === null ? '-' : v.toFixed(2) + 'x')
    console.log(line([r.workload, iops(r.xseg), iops(r.nbdkit), iops(r.qemuNbd),
      p50(r.xseg), p50(r.nbdkit), ratio(r.ratioNbdkit), ratio(r.ratioQemuNbd),
      ratio(r.p99Nbdkit), cpu(r.xseg), cpu(r.nbdkit), ratio(r.cpuPerIoNbdkit)]))
  }
  console.log('cpuus: server CPU time (user + system, all its processes) per I/O, microseconds')
  const withPlugin = rows.filter((r) => r.nbdkitXseg)
  if (withPlugin.length) {
    console.log('')
    console.log(line(['nbdkit plugin', 'plugin IOPS', 'nbdkit', 'xseg IOPS', 'plugin p50', 'p/nbdkit', 'x/plugin']))
    for (const r of withPlugin) {
      const ratio = (v: number | null): string => (v === null ? '-' : v.toFixed(2) + 'x')
      console.log(line([r.workload, r.nbdkitXseg!.iops.toFixed(0), r.nbdkit ? r.nbdkit.iops.toFixed(0) : '-',
        r.xseg ? r.xseg.iops.toFixed(0) : '-', f1(r.nbdkitXseg!.p50us), ratio(r.ratioPluginNbdkit), ratio(r.ratioXsegPlugin)]))
    }
  }
  const median = (v: number[]): number => {
    const a = [...v].sort((x, y) => x - y)
    return a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2
  }
  const ab = names.includes('xseg-base') ? loads.map((w) => {
    const m = (s: string, f: (r: Result) => number): number | null => {
      const rs = every.get(`${w.name}|${s}`)
      return rs?.length ? median(rs.map(f)) : null
    }
    const iops = m('xseg', (r) => r.iops), biops = m('xseg-base', (r) => r.iops)
    const p99 = m('xseg', (r) => r.p99us), bp99 = m('xseg-base', (r) => r.p99us)
    const cpu = m('xseg', (r) => r.cpuUsPerIo ?? 0), bcpu = m('xseg-base', (r) => r.cpuUsPerIo ?? 0)
    return {
      workload: w.name, rounds, iops, baseIops: biops, p99us: p99, baseP99us: bp99, cpuUsPerIo: cpu, baseCpuUsPerIo: bcpu,
      ratioIops: iops && biops ? iops / biops : null, ratioP99: p99 && bp99 ? p99 / bp99 : null, ratioCpu: cpu && bcpu ? cpu / bcpu : null,
    }
  }) : null
  if (ab) {
    const ratio = (v: number | null): string => (v === null ? '-' : v.toFixed(2) + 'x')
    const num = (v: number | null, d = 0): string => (v === null ? '-' : v.toFixed(d))
    console.log('')
    console.log(`A/B: this tree against --baseline ${base}, medians of ${rounds} interleaved rounds`)
    console.log(line(['workload', 'xseg IOPS', 'base IOPS', 'x/base', 'xseg p99us', 'base p99us', 'p99 x/base', 'xseg cpuus', 'base cpuus', 'cpu x/base']))
    for (const r of ab) {
      console.log(line([r.workload, num(r.iops), num(r.baseIops), ratio(r.ratioIops), num(r.p99us), num(r.baseP99us),
        ratio(r.ratioP99), num(r.cpuUsPerIo, 1), num(r.baseCpuUsPerIo, 1), ratio(r.ratioCpu)]))
    }
  }
  const doc = {
    schemaVersion: 1,
    benchmark: 'pipeline',
    date: new Date().toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, load1: (await import('node:os')).loadavg()[0] },
    client: 'fio --ioengine=nbd (unix socket), best of rounds',
    cpu: 'cpuUsPerIo: user + system CPU time of the server processes (xseg: gateway + blockd; nbdkit-xseg: nbdkit + blockd) from /proc/PID/stat over the fio run, over the I/O of ramp + runtime at the measured rate; cpus: that CPU time over the wall time',
    runtimeSeconds: runtime, rounds, size: opt.size, segment: spec,
    rows,
    ...(ab ? { baseline: base, ab } : {}),
  }
  writeFileSync(opt.out!, JSON.stringify(doc, null, 2) + '\n')
  console.log(`wrote ${opt.out}`)
}

// Its servers are stopped and waited for before it exits (the exit handler can only signal them).
main().then(() => stopEvery().then(() => process.exit(0)), (e: unknown) => {
  console.error(`pipeline bench: ${e instanceof Error ? e.message : String(e)}`)
  return stopEvery().then(() => process.exit(1))
})
