// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/top.ts - `xseg top SPEC`: a live view of a segment. Every
// interval it reads the header and every port (state, owner and whether it
// is alive, queue depths, counters, latency histogram) and shows, per port,
// the request rates (counter deltas per second) and latency percentiles of
// the replies received in the interval, estimated from the port's log2
// histogram (xseg_layout.h: bucket b counts [2^b, 2^(b+1)) us, submit ->
// receive, recorded by the client port).
//
// On a terminal it redraws in the alternate screen until q or Ctrl-C, then
// restores the terminal. When stdout is not a terminal it prints a snapshot
// per interval (until -n COUNT or SIGINT/SIGTERM). --once (implied by
// --json) prints one snapshot, taken one interval after the first look.
import { readFileSync } from 'node:fs'
import { Segment, type PortInfo } from '../../../sys/node/ts/index.js'
import { type Command, type Context, Usage, needSpec, num, seconds, table } from './cmd.js'
import { type PortView, observe, portInUse, portView, quotaCells, segmentView } from './cmd-segment.js'

interface Sample {
  t: bigint
  ports: PortInfo[]
}

type Counters = PortInfo['counters']

export interface Percentiles {
  /** Replies the percentiles come from. */
  samples: number
  p50: number
  p90: number
  p99: number
}

export interface TopPort extends PortView {
  /** The owner's program: /proc/PID/comm (null: free, or gone). */
  program: string | null
  /** Per second over the interval, from the counters. */
  rates: Counters
  /** Of the replies this port received in the interval (null: none). */
  latencyUs: Percentiles | null
}

/** Estimated percentiles of a log2 histogram (linear within a bucket), or null if empty. */
export function percentiles(hist: number[]): Percentiles | null {
  const total = hist.reduce((a, b) => a + b, 0)
  if (total <= 0) return null
  const at = (q: number): number => {
    const want = q * total
    let acc = 0
    for (let b = 0; b < hist.length; b++) {
      const n = hist[b]!
      if (n > 0 && acc + n >= want) {
        const lo = b === 0 ? 0 : 2 ** b
        const hi = 2 ** (b + 1)
        return Math.round((lo + ((want - acc) / n) * (hi - lo)) * 10) / 10
      }
      acc += n
    }
    return 2 ** hist.length
  }
  return { samples: total, p50: at(0.5), p90: at(0.9), p99: at(0.99) }
}

/** The program of @pid as the kernel names it (/proc/PID/comm), or null. */
export function programOf(pid: number | null): string | null {
  if (pid === null || pid <= 0) return null
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || null
  } catch {
    return null
  }
}

/** The live processes joined to @seg, with their programs (from its header, without joining again). */
function peersOf(seg: Segment): { pid: number; program: string | null }[] {
  try {
    return [...new Set(Segment.peek(seg.type, seg.name).pids)].map((pid) => ({ pid, program: programOf(pid) }))
  } catch {
    return []
  }
}

function sample(seg: Segment): Sample {
  const ports: PortInfo[] = []
  for (let i = 0; i < seg.config.nrPorts; i++) ports.push(seg.portInfo(i))
  return { t: process.hrtime.bigint(), ports }
}

/** One snapshot: @cur, with rates and latencies against @prev. */
export function snapshot(seg: Segment, prev: Sample, cur: Sample, all: boolean) {
  const dt = Number(cur.t - prev.t) / 1e9 || 1
  const ports: TopPort[] = []
  for (const [i, p] of cur.ports.entries()) {
    const q = prev.ports[i]!
    if (!all && !portInUse(p)) continue
    // A port bound anew (another generation) starts from its own counters.
    const same = q.gen === p.gen
    const rate = (k: keyof Counters): number =>
      Math.max(0, Math.round(((p.counters[k] - (same ? q.counters[k] : 0)) / dt) * 10) / 10)
    const view = portView(p)
    ports.push({
      ...view,
      program: view.alive ? programOf(view.pid) : null,
      rates: {
        submitted: rate('submitted'), accepted: rate('accepted'), responded: rate('responded'),
        received: rate('received'), failed: rate('failed'), reclaimed: rate('reclaimed'),
        bytesResponded: rate('bytesResponded'), bytesReceived: rate('bytesReceived'),
      },
      latencyUs: percentiles(p.latency_us_log2.map((n, b) => Math.max(0, n - (same ? q.latency_us_log2[b]! : 0)))),
    })
  }
  return {
    segment: segmentView(seg.info(), seg.config), intervalSeconds: Math.round(dt * 1000) / 1000,
    peers: peersOf(seg), ports,
  }
}

type Snapshot = ReturnType<typeof snapshot>

/** Columns dropped, in this order, until the table fits the terminal. */
const DROP = ['responded', 'submitted', 'buf/quota', 'held/quota', 'p90us', 'alive', 'type', 'repq', 'fail/s', 'p99us', 'acc/s', 'resp/s', 'state']

/**
 * The text of @s. @width (a terminal's columns): drop the least needed
 * columns (DROP) until every line fits, and cut what still does not.
 */
export function render(s: Snapshot, clock = new Date(), width = Infinity): string {
  const seg = s.segment
  const peers = s.peers.map((p) => `${p.pid}${p.program ? ' ' + p.program : ''}`).join(', ')
  const fit = (l: string): string => (l.length > width ? l.slice(0, Math.max(0, width - 1)) + '>' : l)
  const head = fit(`xseg top - ${seg.type}:${seg.name}  ${clock.toTimeString().slice(0, 8)}  ` +
    `${seg.attached} peers  serial ${seg.serial}  recoveries ${seg.recoveries}` +
    (seg.requests.max > seg.config.nrRequests || seg.requests.live !== seg.config.nrRequests
      ? `  requests ${seg.requests.live}/${seg.requests.max}${seg.requests.target < seg.requests.live ? ` (shrinking to ${seg.requests.target})` : ''}` : '') +
    `${seg.destroyed ? '  DESTROYED' : ''}  (every ${s.intervalSeconds}s)`) + '\n' +
    (peers ? fit(`peers: ${peers}`) + '\n' : '')
  if (!s.ports.length) return head + 'no port in use\n'
  const f = (n: number): string => (n >= 10000 ? Math.round(n).toString() : n.toFixed(1).replace(/\.0$/, ''))
  const cols = ['port', 'state', 'type', 'pid', 'program', 'alive', 'reqq', 'repq', 'held/quota', 'buf/quota', 'MiB/s', 'sub/s', 'acc/s', 'resp/s', 'recv/s',
    'fail/s', 'p50us', 'p90us', 'p99us', 'submitted', 'responded']
  const rows = s.ports.map((p) => [
    p.port, p.state, p.peerType ?? '-', p.pid ?? '-', p.program ?? '-', p.alive === null ? '-' : p.alive ? 'yes' : 'no',
    p.requestsQueued, p.repliesQueued, ...quotaCells(p.quota),
    f((p.rates.bytesResponded + p.rates.bytesReceived) / 1048576), f(p.rates.submitted), f(p.rates.accepted), f(p.rates.responded),
    f(p.rates.received), f(p.rates.failed),
    p.latencyUs ? f(p.latencyUs.p50) : '-', p.latencyUs ? f(p.latencyUs.p90) : '-', p.latencyUs ? f(p.latencyUs.p99) : '-',
    p.counters.submitted, p.counters.responded,
  ])
  const left = new Set(['state', 'type', 'program', 'alive'])
  let keep = cols.map((_, i) => i)
  const draw = (): string => table(keep.map((i) => cols[i]!), rows.map((r) => keep.map((i) => r[i]!)),
    keep.map((c, j) => (left.has(cols[c]!) ? -1 : j)).filter((j) => j >= 0))
  let text = draw()
  for (const d of DROP) {
    if (Math.max(...text.split('\n').map((l) => l.length)) <= width) break
    keep = keep.filter((i) => cols[i] !== d)
    text = draw()
  }
  return head + text.split('\n').map((l) => (l ? fit(l) : l)).join('\n')
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done(): void {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })

async function run(ctx: Context): Promise<number> {
  const spec = needSpec(ctx)
  const interval = seconds(ctx.opts.interval, '--interval', 1)
  const count = num(ctx.opts.count, '--count', 0)
  const once = ctx.json || ctx.opts.once === true
  if (ctx.json && ctx.opts.once !== true && ctx.opts.count !== undefined && count !== 1)
    throw new Usage('top --json prints one snapshot: -n must be 1')
  const all = ctx.opts.all === true
  using seg = observe(spec)

  const ac = new AbortController()
  const stop = (): void => ac.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const tty = !once && process.stdout.isTTY === true
  const input = process.stdin
  const restore = (): void => {
    if (!tty) return
    process.stdout.write('\x1b[?25h\x1b[?1049l') // cursor back, main screen back
    if (input.isTTY) input.setRawMode(false)
    input.pause()
  }
  try {
    if (tty) {
      process.stdout.write('\x1b[?1049h\x1b[?25l') // alternate screen, no cursor
      process.once('exit', restore) // whatever happens, the terminal comes back
      if (input.isTTY) {
        input.setRawMode(true)
        input.on('data', (d: Buffer) => {
          const k = d.toString()
          if (k === 'q' || k === 'Q' || k === '\x03' || k === '\x1b') stop()
        })
        input.resume()
      }
    }
    let prev = sample(seg)
    for (let n = 0; !ac.signal.aborted; n++) {
      await sleep(interval * 1000, ac.signal)
      if (ac.signal.aborted && n > 0) break
      const cur = sample(seg)
      const snap = snapshot(seg, prev, cur, all)
      prev = cur
      if (once) {
        ctx.emit(snap, () => render(snap))
        break
      }
      if (tty) process.stdout.write('\x1b[H\x1b[2J' + render(snap, new Date(), process.stdout.columns || 80) + '\n(q or Ctrl-C quits)')
      else process.stdout.write((n ? '\n' : '') + render(snap))
      if (count && n + 1 >= count) break
    }
  } finally {
    restore()
    process.removeListener('exit', restore)
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
  }
  return 0
}

export const top: Command = {
  name: 'top',
  usage: 'top SPEC [-i SECONDS] [-n COUNT] [--once] [--all]\n' +
    '                             live view: ports, owners, queues, request rates, latency (q quits)',
  options: {
    interval: { type: 'string', short: 'i' },
    count: { type: 'string', short: 'n' },
    once: { type: 'boolean' },
    all: { type: 'boolean', short: 'a' },
  },
  run,
}
