// SPDX-License-Identifier: BSD-2-Clause
//
// bench/lib/procs.ts - what the NBD benchmarks (bench/pipeline/run.ts,
// bench/volume/run.ts) share: the fio workloads and one fio run through its
// nbd engine, and the servers they start and stop (every child is kept in
// `children`, so that the benchmark's exit handler can stop what is left).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync, readdirSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'

/**
 * A fio workload. @cpus (a CPU list, e.g. '0'): fio and every process of the
 * server run on those CPUs only (pinCpus), the placement in which no request
 * crosses CPUs; without it the scheduler places them.
 */
export interface Workload { name: string, rw: string, bs: string, depth: number, cpus?: string }

/**
 * @w again as a row of its own whose processes all run on @cpus: at depth 1
 * every hop of a request wakes the next process, and whether that wake-up
 * crosses CPUs can decide the figure more than the software does (on a VM,
 * waking an idle vCPU can cost tens of microseconds).
 */
export function onCpus(w: Workload, list: string): Workload {
  return { ...w, name: `${w.name} on CPU ${list}`, cpus: list }
}

/**
 * @loads, each followed by its onCpus(w, @cpu) twin when its name holds one
 * of the comma-separated @oneCpu (the benchmarks' --one-cpu and --cpu).
 */
export function withOneCpu(loads: Workload[], oneCpu: string, cpu: string): Workload[] {
  const which = oneCpu.split(',').filter((o) => o)
  if (!/^\d+$/.test(cpu)) throw new Error(`--cpu: '${cpu}' is not a CPU number`)
  if (Number(cpu) >= cpus().length) throw new Error(`--cpu: this machine has CPUs 0-${cpus().length - 1}, not ${cpu}`)
  return loads.flatMap((w) => (which.some((o) => w.name.toLowerCase().includes(o.toLowerCase())) ? [w, onCpus(w, cpu)] : [w]))
}

/** A CPU list ('0,2-3') as its CPUs, sorted and comma-separated ('0,2,3'). */
function cpuSet(list: string): string {
  const out = new Set<number>()
  for (const part of list.split(',').filter((p) => p)) {
    const [a, b] = part.split('-').map(Number)
    for (let c = a!; c <= (b ?? a!); c++) out.add(c)
  }
  return [...out].sort((x, y) => x - y).join(',')
}

/** The CPU list a process or thread may run on (its /proc status), e.g. '0-1'; null once it is gone. */
function allowedCpus(proc: string): string | null {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`${proc}/status`, 'utf8'))?.[1] ?? null
  } catch { return null }
}

/**
 * Run every thread of each of @pids on the CPUs of @list. Returns the CPUs
 * every thread was then found on (read back from /proc, not assumed) and the
 * function that puts back each process's former CPU list (a process gone
 * meanwhile is skipped). Throws, with every process put back, if a thread is
 * found elsewhere.
 */
export function pinCpus(pids: number[], list: string): { ranOn: string, restore: () => void } {
  const before = pids.map((pid) => [pid, allowedCpus(`/proc/${pid}`)] as const)
  const restore = (): void => {
    for (const [pid, was] of before) if (was) spawnSync('taskset', ['-a', '-c', '-p', was, String(pid)], { stdio: 'ignore' })
  }
  const found = new Set<string>()
  try {
    for (const [pid] of before) {
      run('taskset', ['-a', '-c', '-p', list, String(pid)])
      // Every thread, checked: a figure labelled 'on CPU N' must be one.
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const got = allowedCpus(`/proc/${pid}/task/${tid}`)
        if (got === null) continue	// a worker thread that ended meanwhile (qemu-nbd's come and go)
        if (cpuSet(got) !== cpuSet(list)) throw new Error(`taskset: thread ${tid} of ${pid} runs on CPUs ${got}, not ${list}`)
        found.add(cpuSet(got))
      }
    }
  } catch (e) {
    restore()
    throw e
  }
  return { ranOn: [...found].join(' '), restore }
}

/** 4K random read and write at depth 1 and 32, 1M sequential at depth 4. */
export const WORKLOADS: Workload[] = [
  { name: '4K randread QD1', rw: 'randread', bs: '4k', depth: 1 },
  { name: '4K randread QD32', rw: 'randread', bs: '4k', depth: 32 },
  { name: '4K randwrite QD1', rw: 'randwrite', bs: '4k', depth: 1 },
  { name: '4K randwrite QD32', rw: 'randwrite', bs: '4k', depth: 32 },
  { name: '1M seq read QD4', rw: 'read', bs: '1m', depth: 4 },
  { name: '1M seq write QD4', rw: 'write', bs: '1m', depth: 4 },
]

export interface Result {
  iops: number, mbps: number, p50us: number, p99us: number, meanus: number
  /** Server CPU time (user + system, every process and thread of the server) per I/O, in microseconds. */
  cpuUsPerIo?: number
  /** cpuUsPerIo of each server process, in the order of the server's pids() */
  cpuUsPerIoEach?: number[]
  /** The server's CPU time over the wall time of the fio run: how many CPUs it kept busy. */
  cpus?: number
  /** With Workload.cpus: the CPUs every thread of the server was found on (/proc) before the run. */
  ranOn?: string
}

/**
 * A server a benchmark drives: up() gives the NBD URI of its export; pids()
 * the processes that serve it (for their CPU time), once it is up.
 */
export interface Server { name: string, up: () => Promise<string>, down: () => Promise<void>, pids?: () => number[] }

/** The clock ticks per second of /proc/PID/stat's times (getconf CLK_TCK; 100 on Linux). */
let clkTck = 0
function ticksPerSecond(): number {
  if (!clkTck) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    clkTck = Number(r.stdout) > 0 ? Number(r.stdout) : 100
  }
  return clkTck
}

/** utime + stime of @pids (every thread of each; a process that is gone counts 0), in seconds. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12])
    } catch { /* exited */ }
  }
  return ticks / ticksPerSecond()
}

/** The processes this benchmark started. */
export const children: ChildProcess[] = []

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Throw unless @cmd is on the PATH, naming the Debian package that has it. */
export function need(cmd: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0)
    throw new Error(`${cmd} is missing (Debian package ${pkg}; run tools/install-deps bench as root)`)
}

/** Wait (15 s at most) until @child made @path; throw if it exits first. */
export async function waitFor(path: string, what: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (existsSync(path)) return
    if (child.exitCode !== null) throw new Error(`${what} exited with status ${child.exitCode} before listening`)
    await sleep(50)
  }
  throw new Error(`${what} did not create ${path} in 15 s`)
}

/** Start @cmd in the background; its stderr is printed if it fails on its own. */
export function start(cmd: string, args: string[], log: string): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  c.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  c.on('exit', (code, sig) => {
    if (code !== 0 && sig !== 'SIGTERM' && sig !== 'SIGINT' && code !== null) process.stderr.write(`${log}: exited ${code}\n${err}`)
    // BENCH_CHILD_LOG=FILE keeps every child's stderr, for a run that failed.
    if (process.env.BENCH_CHILD_LOG && err)
      appendFileSync(process.env.BENCH_CHILD_LOG, `--- ${log} (pid ${c.pid}, ${code ?? sig}):\n${err}`)
  })
  children.push(c)
  return c
}

/** SIGTERM @c and wait for it (SIGKILL after 5 s). */
export async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const done = new Promise<void>((r) => c.once('exit', () => r()))
  c.kill('SIGTERM')
  await Promise.race([done, sleep(5000).then(() => { c.kill('SIGKILL') })])
}

/** Stop every child still running, and wait for each (before a normal exit). */
export async function stopEvery(): Promise<void> {
  await Promise.all(children.map((c) => stop(c)))
}

/** SIGTERM every child still running (for the exit handler: no waiting). */
export function stopAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
}

/** Run @cmd to its end; its stdout, or an error with its output. */
export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`)
  return r.stdout
}

/**
 * One fio run of @w through its nbd engine on @uri over the first @size
 * bytes, @runtime seconds after a 1 s ramp; fio's JSON goes to @dir. @pids:
 * every process of the server (their CPU time is measured; with @w.cpus
 * they run on those CPUs for the run, fio too).
 */
export function fio(uri: string, w: Workload, runtime: number, size: string, dir: string, pids: number[] = []): Result {
  const pin = w.cpus ? pinCpus(pids, w.cpus) : undefined
  try {
    const r = fioOnce(uri, w, runtime, size, dir, pids)
    return pin ? { ...r, ranOn: pin.ranOn } : r
  } finally {
    pin?.restore()
  }
}

function fioOnce(uri: string, w: Workload, runtime: number, size: string, dir: string, pids: number[]): Result {
  const out = join(dir, 'fio.json')
  const each0 = pids.map((p) => cpuSeconds([p]))
  const t0 = process.hrtime.bigint()
  const argv = ['fio', '--ioengine=nbd', `--uri=${uri}`, '--name=bench', `--rw=${w.rw}`, `--bs=${w.bs}`,
    `--iodepth=${w.depth}`, `--size=${size}`, '--time_based', `--runtime=${runtime}`, '--ramp_time=1',
    '--randrepeat=0', '--norandommap', '--output-format=json', `--output=${out}`]
  const r = w.cpus ? spawnSync('taskset', ['-c', w.cpus, ...argv], { encoding: 'utf8' }) : spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const each = pids.map((p, i) => cpuSeconds([p]) - (each0[i] ?? 0))
  const cpu = each.reduce((a, b) => a + b, 0)
  if (r.status !== 0) throw new Error(`fio ${w.name} on ${uri}: ${r.stderr || r.stdout}`)
  const job = JSON.parse(readFileSync(out, 'utf8')).jobs[0]
  const d = w.rw.includes('read') ? job.read : job.write
  const pct = d.clat_ns.percentile ?? {}
  const res: Result = {
    iops: d.iops,
    mbps: d.bw_bytes / 1e6,
    p50us: (pct['50.000000'] ?? 0) / 1000,
    p99us: (pct['99.000000'] ?? 0) / 1000,
    meanus: d.clat_ns.mean / 1000,
  }
  if (pids.length) {
    // fio counts the I/O of its runtime, not of the ramp (or of its start and
    // end, when a spinning server still burns CPU): the I/O over the whole
    // wall time is estimated at the measured rate for ramp + runtime.
    const ios = d.iops * (runtime + 1)
    res.cpuUsPerIo = ios > 0 ? (cpu * 1e6) / ios : 0
    res.cpuUsPerIoEach = each.map((c) => (ios > 0 ? (c * 1e6) / ios : 0))
    res.cpus = wall > 0 ? cpu / wall : 0
  }
  return res
}
