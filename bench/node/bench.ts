// SPDX-License-Identifier: BSD-2-Clause
//
// bench/node/bench.ts - the node domain's benchmark (bench/node/run runs it;
// bench/node/README.md explains it). Round trips from this Node process to
// another process, one in flight, by:
//
//   xseg_ts_c        the xseg TS API -> C patternd -d posixfd (PING; patternd spins 20 us, then sleeps)
//   xseg_ts_c_spin0  the same, patternd --spin-us 0 (it always sleeps: two sleeping sides)
//   xseg_ts_ts       the xseg TS API -> a TS server in another Node process (posixfd both sides)
//   xseg_tsb_c       the batched TS API (Port.submitBatch, replies()) -> C patternd -d posixfd
//   xseg_tsb_c_sboff the same, patternd --spin-batches off (it sleeps after every batch: before 2026-12-06)
//   xseg_tsb_tsb     the batched TS API -> a batched TS server (port.requests()) in another Node process
//   raw_eventfd      two eventfds polled by libuv (uv_poll) in two Node processes (evfd.c)
//   pipe             two pipes between two Node processes (net.Socket over the child's stdio)
//   unix_socket      a Unix stream socket between two Node processes
//   ipc              the child_process IPC channel
//
// and throughput with DEPTH requests in flight (xseg_ts_c, the three batched
// rows, unix_socket, pipe). Every round trip awaits a Promise resolved from the wake-up
// callback, as xseg's submit() does. Repetition r of every row runs before
// repetition r+1 of any (rotated), so load from elsewhere hits rows alike;
// the result of a row is the median over repetitions of each run's median.
//
//   bench.ts [-r REPS] [-n ROUND_TRIPS] [-T REQUESTS] [-D DEPTH] [--spin US] [-o FILE] [--no-pin]
//
// --spin: how long the batched rows poll before sleeping (replies() and
// requests() spinUs, both sides; default 20, as C patternd's default).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Op, Segment, type Batch, type Port } from '../../sys/node/ts/index'

const ROOT = join(__dirname, '..', '..')
const PEER = join(__dirname, 'peer.ts')
const TSX = require.resolve('tsx/cjs')
const PATTERND = join(ROOT, 'lib/user/bin/patternd')
const EVFD = join(ROOT, 'bench/build/node/evfd.node')

const { values: o } = parseArgs({
  options: {
    reps: { type: 'string', short: 'r', default: '5' },
    n: { type: 'string', short: 'n', default: '5000' },
    T: { type: 'string', short: 'T', default: '20000' },
    depth: { type: 'string', short: 'D', default: '64' },
    out: { type: 'string', short: 'o' },
    'no-pin': { type: 'boolean', default: false },
    spin: { type: 'string', default: '20' },
  },
})
const REPS = Number(o.reps)
const N = Number(o.n)
const WARM = Math.max(100, Math.floor(N / 10))
const TN = Number(o.T)
const DEPTH = Number(o.depth)
const SPIN = Number(o.spin)
const PIN = !o['no-pin'] && cpus().length >= 2 && existsSync('/usr/bin/taskset')

if (PIN && !process.env.XSEG_BENCH_PINNED) {
  // This process on CPU 0, every far side on CPU 1 (as bench/xseg does).
  const r = spawnSync('/usr/bin/taskset', ['-c', '0', process.execPath, ...process.execArgv, __filename, ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, XSEG_BENCH_PINNED: '1' } })
  process.exit(r.status ?? 1)
}

interface Ev {
  open(): number
  watch(fd: number, fn: () => void): void
  post(fd: number): void
  unwatch(fd: number): void
}

/** A far side: send n units, be told of k units echoed back. */
interface Channel {
  send(n: number): void
  onRecv: (k: number) => void
  close(): Promise<void>
}

/** A running row: its round trips one at a time, or its throughput. */
interface Session {
  latency(n: number): Promise<Float64Array>
  throughput(total: number, depth: number): Promise<number>
  close(): Promise<void>
}

function far(args: string[], extra: ('pipe' | 'ipc' | number)[] = []): ChildProcess {
  const argv = [process.execPath, '--require', TSX, PEER, ...args]
  const [cmd, ...rest] = PIN ? ['/usr/bin/taskset', '-c', '1', ...argv] : argv
  return spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'inherit', ...extra] })
}

function ready(c: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: c.stdout! })
    rl.once('line', () => {
      rl.close()
      resolve()
    })
    c.once('exit', (code) => reject(new Error(`the far side exited (${code}) before it was ready`)))
  })
}

async function ended(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const t = setTimeout(() => c.kill('SIGKILL'), 3000)
  await new Promise((r) => c.once('exit', r))
  clearTimeout(t)
}

function channelSession(ch: Channel): Session {
  return {
    async latency(n) {
      const lat = new Float64Array(n)
      let wake: (() => void) | undefined
      ch.onRecv = () => wake!()
      for (let i = 0; i < n; i++) {
        const t = process.hrtime.bigint()
        await new Promise<void>((r) => {
          wake = r
          ch.send(1)
        })
        lat[i] = Number(process.hrtime.bigint() - t) / 1000
      }
      return lat
    },
    throughput(total, depth) {
      return new Promise<number>((resolve) => {
        let sent = Math.min(depth, total)
        let done = 0
        const t0 = process.hrtime.bigint()
        ch.onRecv = (k) => {
          done += k
          if (done >= total) return resolve(total / (Number(process.hrtime.bigint() - t0) / 1e9))
          const m = Math.min(k, total - sent)
          if (m > 0) {
            sent += m
            ch.send(m)
          }
        }
        ch.send(sent)
      })
    },
    close: () => ch.close(),
  }
}

/** A stream (pipe, socket): a unit is a byte. */
function streamChannel(write: (b: Buffer) => void, on: (fn: (d: Buffer) => void) => void, close: () => Promise<void>): Channel {
  const ones = Buffer.alloc(65536, 1)
  const ch: Channel = {
    send: (n) => write(ones.subarray(0, n)),
    onRecv: () => {},
    close,
  }
  on((d) => ch.onRecv(d.length))
  return ch
}

const rows: { key: string; label: string; start: () => Promise<Session> }[] = []

async function xsegSession(server: (spec: string) => ChildProcess): Promise<Session> {
  const seg = Segment.createSync(`posix:xseg-nodebench-${process.pid}:4:512:4K`, { destroyOnClose: true })
  const c = server(seg.config.spec)
  const until = Date.now() + 20000
  while (seg.portInfo(1).state !== 'bound') {
    if (Date.now() > until || c.exitCode !== null) throw new Error('the xseg server did not bind port 1')
    await new Promise((r) => setTimeout(r, 5))
  }
  const port: Port = seg.bindDynamicPort()
  return {
    async latency(n) {
      const lat = new Float64Array(n)
      for (let i = 0; i < n; i++) {
        const t = process.hrtime.bigint()
        ;(await port.request({ op: 'ping' }).submit(1)).release()
        lat[i] = Number(process.hrtime.bigint() - t) / 1000
      }
      return lat
    },
    async throughput(total, depth) {
      let sent = 0
      const t0 = process.hrtime.bigint()
      const loop = async (): Promise<void> => {
        while (sent < total) {
          sent++
          ;(await port.request({ op: 'ping' }).submit(1)).release()
        }
      }
      await Promise.all(Array.from({ length: depth }, loop))
      return total / (Number(process.hrtime.bigint() - t0) / 1e9)
    },
    async close() {
      c.stdin!.end()
      c.kill('SIGTERM')
      await ended(c)
      seg.close()
    },
  }
}

/**
 * The batched API: one table of DEPTH rows refilled with as many pings as
 * replies came back, one submitBatch() per refill, the replies a table at a
 * time from one replies() iterator (no Request objects, no Promise per request).
 */
async function batchedSession(server: (spec: string) => ChildProcess): Promise<Session> {
  const seg = Segment.createSync(`posix:xseg-nodebench-${process.pid}:4:512:4K`, { destroyOnClose: true })
  const c = server(seg.config.spec)
  const until = Date.now() + 20000
  while (seg.portInfo(1).state !== 'bound') {
    if (Date.now() > until || c.exitCode !== null) throw new Error('the xseg server did not bind port 1')
    await new Promise((r) => setTimeout(r, 5))
  }
  const port: Port = seg.bindDynamicPort()
  const table: Batch = port.batch(Math.max(DEPTH, 1))
  const replies = port.replies({ spinUs: SPIN })
  const submit = (m: number): number => {
    table.clear()
    for (let i = 0; i < m; i++) table.add(Op.ping, 0, 0)
    const s = port.submitBatch(1, table)
    if (s !== m) throw new Error(`submitBatch took ${s} of ${m}`)
    return s
  }
  const next = async (): Promise<number> => {
    const r = await replies.next()
    if (r.done) throw new Error('the port closed')
    return r.value.length
  }
  return {
    async latency(n) {
      const lat = new Float64Array(n)
      for (let i = 0; i < n; i++) {
        const t = process.hrtime.bigint()
        submit(1)
        await next()
        lat[i] = Number(process.hrtime.bigint() - t) / 1000
      }
      return lat
    },
    async throughput(total, depth) {
      let sent = 0
      let done = 0
      const t0 = process.hrtime.bigint()
      sent += submit(Math.min(depth, total))
      while (done < total) {
        const k = await next()
        done += k
        const m = Math.min(k, total - sent)
        if (m > 0) sent += submit(m)
      }
      return total / (Number(process.hrtime.bigint() - t0) / 1e9)
    },
    async close() {
      await replies.return!()
      c.stdin!.end()
      c.kill('SIGTERM')
      await ended(c)
      seg.close()
    },
  }
}

function patternd(extra: string[]) {
  return (spec: string): ChildProcess => {
    const argv = [PATTERND, '-g', spec, '-p', '1', '-d', 'posixfd', '-q', ...extra]
    const [cmd, ...rest] = PIN ? ['/usr/bin/taskset', '-c', '1', ...argv] : argv
    return spawn(cmd!, rest, { stdio: ['pipe', 'ignore', 'inherit'] })
  }
}

rows.push({ key: 'xseg_ts_c', label: 'xseg TS -> C patternd (posixfd)', start: () => xsegSession(patternd([])) })
rows.push({ key: 'xseg_ts_c_spin0', label: 'xseg TS -> C patternd, spin 0', start: () => xsegSession(patternd(['--spin-us', '0'])) })
rows.push({
  key: 'xseg_ts_ts', label: 'xseg TS -> TS (posixfd)',
  start: () => xsegSession((spec) => {
    const c = far(['xseg', spec, '1'])
    c.stdout!.resume()
    return c
  }),
})
rows.push({ key: 'xseg_tsb_c', label: 'xseg TS batched -> C patternd', start: () => batchedSession(patternd([])) })
rows.push({
  key: 'xseg_tsb_c_sboff', label: 'xseg TS batched -> C, --spin-batches off',
  start: () => batchedSession(patternd(['--spin-batches', 'off'])),
})
rows.push({
  key: 'xseg_tsb_tsb', label: 'xseg TS batched <-> TS batched',
  start: () => batchedSession((spec) => {
    const c = far(['xsegbatch', spec, '1', String(SPIN)])
    c.stdout!.resume()
    return c
  }),
})
rows.push({
  key: 'raw_eventfd', label: 'eventfd + uv_poll, Node <-> Node',
  async start() {
    const ev = require(EVFD) as Ev
    const mine = ev.open()
    const theirs = ev.open()
    const c = far(['eventfd'], [theirs, mine])
    await ready(c)
    const ch: Channel = {
      send: () => ev.post(theirs),
      onRecv: () => {},
      async close() {
        c.stdin!.end()
        await ended(c)
        ev.unwatch(mine)
        require('node:fs').closeSync(theirs)
      },
    }
    ev.watch(mine, () => ch.onRecv(1))
    return channelSession(ch)
  },
})
rows.push({
  key: 'pipe', label: 'pipe, Node <-> Node',
  async start() {
    const c = far(['pipe'])
    return channelSession(streamChannel((b) => c.stdin!.write(b), (fn) => c.stdout!.on('data', fn), async () => {
      c.stdin!.end()
      await ended(c)
    }))
  },
})
rows.push({
  key: 'unix_socket', label: 'Unix socket, Node <-> Node',
  async start() {
    const dir = mkdtempSync(join(tmpdir(), 'xseg-nodebench-'))
    const path = join(dir, 'sock')
    const c = far(['unix', path])
    await ready(c)
    const s = connect(path)
    s.setNoDelay(true)
    await new Promise((r) => s.once('connect', r))
    return channelSession(streamChannel((b) => s.write(b), (fn) => s.on('data', fn), async () => {
      s.destroy()
      c.stdin!.end()
      await ended(c)
      rmSync(dir, { recursive: true, force: true })
    }))
  },
})
rows.push({
  key: 'ipc', label: 'child_process IPC',
  async start() {
    const c = far(['ipc'], ['ipc'])
    await ready(c)
    const ch: Channel = {
      send: (n) => {
        for (let i = 0; i < n; i++) c.send(1)
      },
      onRecv: () => {},
      async close() {
        c.stdin!.end()
        c.disconnect()
        await ended(c)
      },
    }
    c.on('message', () => ch.onRecv(1))
    return channelSession(ch)
  },
})

const THROUGHPUT = ['xseg_ts_c', 'xseg_tsb_c', 'xseg_tsb_c_sboff', 'xseg_tsb_tsb', 'unix_socket', 'pipe']

const median = (a: ArrayLike<number>): number => {
  const s = Array.from(a).sort((x, y) => x - y)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const pct = (a: Float64Array, q: number): number => {
  const s = Float64Array.from(a).sort()
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000

async function main(): Promise<void> {
  if (!existsSync(PATTERND)) throw new Error(`${PATTERND} is missing: make user`)
  if (!existsSync(EVFD)) throw new Error(`${EVFD} is missing: bench/node/run builds it`)
  const t0 = Date.now()
  const lat: Record<string, { median: number[]; p99: number[] }> = {}
  const thr: Record<string, number[]> = {}
  for (const r of rows) lat[r.key] = { median: [], p99: [] }
  for (const k of THROUGHPUT) thr[k] = []
  process.stderr.write(`node bench: ${rows.length} latency rows x ${REPS} runs of ${N} round trips, ` +
    `${THROUGHPUT.length} throughput rows (${TN} requests, ${DEPTH} in flight)${PIN ? ', pinned: near CPU 0, far CPU 1' : ''}\n`)
  for (let rep = 0; rep < REPS; rep++) {
    for (let j = 0; j < rows.length; j++) {
      const row = rows[(j + rep) % rows.length]!
      const s = await row.start()
      try {
        await s.latency(WARM)
        const l = await s.latency(N)
        lat[row.key]!.median.push(r3(median(l)))
        lat[row.key]!.p99.push(r3(pct(l, 0.99)))
        if (THROUGHPUT.includes(row.key)) {
          await s.throughput(Math.min(TN, 2000), DEPTH)
          thr[row.key]!.push(Math.round(await s.throughput(TN, DEPTH)))
        }
      } finally {
        await s.close()
      }
    }
    process.stderr.write(`  repetition ${rep + 1}/${REPS} done\n`)
  }

  const latency = rows.map((r) => ({
    mechanism: r.key, label: r.label, unit: 'us',
    median: r3(median(lat[r.key]!.median)), p99: r3(median(lat[r.key]!.p99)),
    samples: lat[r.key]!,
  }))
  const throughput = THROUGHPUT.map((k) => ({
    mechanism: k, label: rows.find((r) => r.key === k)!.label, depth: DEPTH, unit: 'requests/s',
    median: Math.round(median(thr[k]!)), samples: thr[k]!,
  }))
  const m = (k: string): number => latency.find((l) => l.mechanism === k)!.median
  const paired = (a: string, b: string): number =>
    r3(median(lat[a]!.median.map((x, i) => x / lat[b]!.median[i]!)))
  const ratios = {
    xsegOverRawEventfd: r3(m('xseg_ts_c') / m('raw_eventfd')),
    xsegOverPipe: r3(m('xseg_ts_c') / m('pipe')),
    unixSocketOverXseg: r3(m('unix_socket') / m('xseg_ts_c')),
    xsegSpin0OverRawEventfd: r3(m('xseg_ts_c_spin0') / m('raw_eventfd')),
    xsegTsTsOverRawEventfd: r3(m('xseg_ts_ts') / m('raw_eventfd')),
    unixSocketOverXsegSpin0: r3(m('unix_socket') / m('xseg_ts_c_spin0')),
    pairedXsegOverRawEventfd: paired('xseg_ts_c', 'raw_eventfd'),
    pairedUnixSocketOverXseg: paired('unix_socket', 'xseg_ts_c'),
    throughputXsegOverUnixSocket: r3(median(thr.xseg_ts_c!) / median(thr.unix_socket!)),
    throughputBatchedCOverUnixSocket: r3(median(thr.xseg_tsb_c!) / median(thr.unix_socket!)),
    throughputBatchedTsOverUnixSocket: r3(median(thr.xseg_tsb_tsb!) / median(thr.unix_socket!)),
    pairedThroughputBatchedCOverUnixSocket: r3(median(thr.xseg_tsb_c!.map((x, i) => x / thr.unix_socket![i]!))),
    pairedThroughputBatchedTsOverUnixSocket: r3(median(thr.xseg_tsb_tsb!.map((x, i) => x / thr.unix_socket![i]!))),
    pairedThroughputBatchedCOverSpinBatchesOff: r3(median(thr.xseg_tsb_c!.map((x, i) => x / thr.xseg_tsb_c_sboff![i]!))),
    batchedCLatencyOverXsegTsC: r3(m('xseg_tsb_c') / m('xseg_ts_c')),
  }
  const goals = {
    xsegWithinOfRawEventfd: 1.5,
    xsegFasterThanUnixSocket: 2,
    met: ratios.xsegOverRawEventfd <= 1.5 && ratios.unixSocketOverXseg >= 2,
    batchedThroughputOverUnixSocket: 2,
    batchedMet: ratios.pairedThroughputBatchedCOverUnixSocket >= 2 && ratios.pairedThroughputBatchedTsOverUnixSocket >= 2,
  }
  const model = cpus()[0]?.model ?? 'unknown'
  const doc = {
    schemaVersion: 1, benchmark: 'node', date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: { cpus: cpus().length, model, node: process.versions.node, pinned: PIN, loadavg1: r3(loadavg()[0]!) },
    config: { repetitions: REPS, roundTripsPerRun: N, warmupRoundTrips: WARM, throughputRequests: TN, depth: DEPTH, batchedSpinUs: SPIN,
      statistic: 'median of per-run medians', seconds: Math.round((Date.now() - t0) / 100) / 10 },
    latency, throughput, ratios, goals,
  }
  const w = Math.max(...rows.map((r) => r.label.length))
  let out = `\nround trip, one in flight (us; median of ${REPS} runs of ${N})\n` +
    `  ${'mechanism'.padEnd(w)}  ${'median'.padStart(8)}  ${'p99'.padStart(8)}  ${'vs xseg'.padStart(8)}\n`
  for (const l of latency)
    out += `  ${l.label.padEnd(w)}  ${l.median.toFixed(1).padStart(8)}  ${l.p99.toFixed(1).padStart(8)}  ` +
      `${(l.median / m('xseg_ts_c')).toFixed(2).padStart(7)}x\n`
  out += `\nthroughput, ${DEPTH} in flight (requests/s; median of ${REPS})\n`
  for (const t of throughput) out += `  ${t.label.padEnd(w)}  ${String(t.median).padStart(8)}\n`
  out += `batched/unix socket at ${DEPTH} in flight (paired): TS->C ${ratios.pairedThroughputBatchedCOverUnixSocket}, ` +
    `TS<->TS ${ratios.pairedThroughputBatchedTsOverUnixSocket} (goal >= 2): ${goals.batchedMet ? 'met' : 'NOT met'}\n` +
    `batched TS->C, patternd spinning after batches / not (--spin-batches off), paired: ${ratios.pairedThroughputBatchedCOverSpinBatchesOff}\n`
  out += `\nxseg/raw eventfd ${ratios.xsegOverRawEventfd} (goal <= 1.5), xseg/pipe ${ratios.xsegOverPipe}, ` +
    `unix socket/xseg ${ratios.unixSocketOverXseg} (goal >= 2): goals ${goals.met ? 'met' : 'NOT met'}\n` +
    `with patternd always sleeping (spin 0): xseg/raw eventfd ${ratios.xsegSpin0OverRawEventfd}, ` +
    `unix socket/xseg ${ratios.unixSocketOverXsegSpin0}; load average ${doc.machine.loadavg1}\n`
  process.stdout.write(out)
  if (o.out) {
    writeFileSync(o.out + '.tmp', JSON.stringify(doc, null, 1) + '\n')
    require('node:fs').renameSync(o.out + '.tmp', o.out)
    process.stdout.write(`wrote ${o.out}\n`)
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench/node: ${(e as Error).stack ?? String(e)}\n`)
    process.exit(1)
  },
)
