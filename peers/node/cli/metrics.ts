// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/metrics.ts - a segment's counters as OpenMetrics (or the
// Prometheus text format), and the HTTP endpoint that serves them: used by
// `xseg metrics SPEC` (cmd-metrics.ts) and by `xseg serve`'s [metrics]
// table (serve.ts). docs/serve.md#metrics lists the metrics.
//
// Every scrape reads the segment anew (the header and every port: owner,
// queue depths, counters, the latency histogram the core keeps per port),
// so the numbers are the segment's own, whoever moved them.
//
// Written here rather than with prom-client: its metrics are kept in the
// process and moved by inc()/observe(), while these are read from shared
// memory at scrape time (counters that restart when a port is bound anew,
// power-of-two bucket counts given as they are), and its histogram always
// prints a _sum, which the core does not keep (see renderMetrics).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { PortInfo, Segment } from '../../../sys/node/ts/index.js'
import { portInUse } from './cmd-segment.js'
import { programOf } from './top.js'

export const OPENMETRICS_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'
export const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** What a scrape shows beside the segment: the supervisor's view (serve). */
export interface MetricsExtra {
  /** A program name for a pid (serve's peer names); default: /proc/PID/comm. */
  programOf?(pid: number): string | undefined
  /** Restarts per supervised child (peer names, 'nbd'). */
  restarts?: Record<string, number>
  /** Whether each supervised child runs now. */
  up?: Record<string, boolean>
}

type Labels = Record<string, string | number>

interface Family {
  name: string
  type: 'counter' | 'gauge' | 'histogram'
  unit?: string
  help: string
  /** Labels as printed between the braces (labelText), once per label set. */
  samples: { suffix: string, labels: string, value: number }[]
}

/** A label value, escaped as both formats want (backslash, quote, newline). */
function esc(v: string | number): string {
  return String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function labelText(l: Labels): string {
  return Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`).join(',')
}

function num(v: number): string {
  return v === Infinity ? '+Inf' : String(v)
}

const COUNTERS: [Exclude<keyof PortInfo['counters'], 'bytesResponded' | 'bytesReceived'>, string][] = [
  ['submitted', 'Requests the port submitted (as a client).'],
  ['accepted', 'Requests the port accepted from its request queue (as a server).'],
  ['responded', 'Replies the port sent back (as a server).'],
  ['received', 'Replies the port received (as a client).'],
  ['failed', 'Replies the port received that had failed.'],
  ['reclaimed', 'Requests of the port that recovery reclaimed from a dead peer.'],
]

/** Upper bound in seconds of core bucket @b (xseg_layout.h: [2^b, 2^(b+1)) us; the last is open). */
export function bucketBound(b: number, buckets: number): number {
  return b === buckets - 1 ? Infinity : 2 ** (b + 1) / 1e6
}

function families(seg: Segment, extra: MetricsExtra): Family[] {
  const info = seg.info()
  const segName = `${seg.config.type}:${seg.config.name}`
  const segLabel = labelText({ segment: segName })
  const comms = new Map<number, string>() // one /proc read per pid and scrape
  const fam = (name: string, type: Family['type'], help: string, unit?: string): Family =>
    ({ name, type, help, samples: [], ...(unit ? { unit } : {}) })
  const out: Family[] = []
  const attached = fam('xseg_segment_attached_peers', 'gauge', 'Processes joined to the segment.')
  attached.samples.push({ suffix: '', labels: segLabel, value: info.attached })
  const recov = fam('xseg_segment_recoveries', 'counter', 'Ports of dead peers settled by recovery since the segment was created.')
  recov.samples.push({ suffix: '_total', labels: segLabel, value: info.recoveries })
  out.push(attached, recov)

  const counters = COUNTERS.map(([k, help]) => fam(`xseg_port_requests_${k}`, 'counter',
    help + ' Counted since the segment was created, across the port\'s owners.'))
  const reqq = fam('xseg_port_queued_requests', 'gauge', 'Requests waiting in the port\'s request queue.')
  const repq = fam('xseg_port_queued_replies', 'gauge', 'Replies waiting in the port\'s reply queue.')
  const up = fam('xseg_port_peer_alive', 'gauge', 'Whether the process that bound the port lives (1) or died (0, until recovery frees the port).')
  const lat = fam('xseg_port_request_latency_seconds', 'histogram',
    'Submit-to-receive time of the requests the port sent, as received (power-of-two microsecond buckets of the core; it keeps no sum).',
    'seconds')
  const bytesOut = fam('xseg_port_responded_bytes', 'counter', 'Serviced bytes of the replies the port sent (as a server), as the replies say.', 'bytes')
  const bytesIn = fam('xseg_port_received_bytes', 'counter', 'Serviced bytes of the replies the port received (as a client), as the replies say.', 'bytes')
  for (let i = 0; i < seg.config.nrPorts; i++) {
    const p = seg.portInfo(i)
    if (!portInUse(p)) continue
    const free = p.state === 'free'
    let program = ''
    if (!free) {
      program = extra.programOf?.(p.pid) ?? comms.get(p.pid) ?? programOf(p.pid) ?? ''
      comms.set(p.pid, program)
    }
    const labels = labelText({ segment: segName, port: p.port, peer_type: free ? '' : (p.peer_type ?? ''), program })
    COUNTERS.forEach(([k], j) => counters[j]!.samples.push({ suffix: '_total', labels, value: p.counters[k] }))
    bytesOut.samples.push({ suffix: '_total', labels, value: p.counters.bytesResponded })
    bytesIn.samples.push({ suffix: '_total', labels, value: p.counters.bytesReceived })
    reqq.samples.push({ suffix: '', labels, value: p.requests_queued })
    repq.samples.push({ suffix: '', labels, value: p.replies_queued })
    if (!free) up.samples.push({ suffix: '', labels, value: p.alive ? 1 : 0 })
    // Cumulative buckets; the last core bucket (>= 2^31 us) is +Inf. No _sum,
    // so no _count either (OpenMetrics: _count only with _sum); the +Inf
    // bucket is the count.
    const h = p.latency_us_log2
    let acc = 0
    h.forEach((n, b) => {
      acc += n
      lat.samples.push({ suffix: '_bucket', labels: `${labels},le="${num(bucketBound(b, h.length))}"`, value: acc })
    })
  }
  out.push(...counters, bytesOut, bytesIn, reqq, repq, up, lat)
  if (extra.restarts) {
    const r = fam('xseg_serve_restarts', 'counter', 'Times xseg serve restarted a supervised child (a peer or the NBD gateway) after it died.')
    for (const [peer, n] of Object.entries(extra.restarts)) r.samples.push({ suffix: '_total', labels: `${segLabel},${labelText({ peer })}`, value: n })
    out.push(r)
  }
  if (extra.up) {
    const u = fam('xseg_serve_child_up', 'gauge', 'Whether a supervised child (a peer or the NBD gateway) runs now.')
    for (const [peer, on] of Object.entries(extra.up)) u.samples.push({ suffix: '', labels: `${segLabel},${labelText({ peer })}`, value: on ? 1 : 0 })
    out.push(u)
  }
  return out
}

/**
 * The exposition of @seg: OpenMetrics 1.0 (@openmetrics: `# UNIT`, counter
 * families named without `_total`, `# EOF`) or the Prometheus text format
 * 0.0.4 (counter families named with `_total`). Histograms carry only their
 * `le` buckets: the core counts per bucket and keeps no sum of latencies, and
 * OpenMetrics allows a histogram without _sum only without _count too.
 */
export function renderMetrics(seg: Segment, openmetrics: boolean, extra: MetricsExtra = {}): string {
  const out: string[] = []
  for (const f of families(seg, extra)) {
    const name = !openmetrics && f.type === 'counter' ? f.name + '_total' : f.name
    if (openmetrics) {
      out.push(`# TYPE ${name} ${f.type}`)
      if (f.unit) out.push(`# UNIT ${name} ${f.unit}`)
      out.push(`# HELP ${name} ${f.help}`)
    } else {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`)
    }
    for (const x of f.samples) out.push(`${f.name}${x.suffix}${x.labels ? `{${x.labels}}` : ''} ${num(x.value)}`)
  }
  if (openmetrics) out.push('# EOF')
  return out.join('\n') + '\n'
}

/** HOST:PORT ([v6]:PORT too), port 0 for any free one. */
export function parseListen(s: string, what: string): { host: string, port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw Object.assign(new Error(`${what}: '${s}' is not HOST:PORT (e.g. 127.0.0.1:9464)`), { code: 'EINVAL' })
  return { host: m[1] ?? m[2]!, port }
}

/** Whether a scraper asked for OpenMetrics (its Accept header names it). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return /application\/openmetrics-text/i.test(accept ?? '')
}

export interface MetricsServer {
  server: Server
  /** http://HOST:PORT/metrics, with the port the system chose for port 0. */
  url: string
  close(): Promise<void>
}

/**
 * Serve `GET /metrics` on @listen (HOST:PORT): @render(openmetrics) per
 * scrape, OpenMetrics when the Accept header asks for it, the Prometheus
 * text format otherwise. Resolves once it listens.
 */
export async function serveMetrics(listen: string, render: (openmetrics: boolean) => string): Promise<MetricsServer> {
  const { host, port } = parseListen(listen, 'metrics listen address')
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET and HEAD\n')
      return
    }
    const om = wantsOpenMetrics(req.headers.accept)
    let body: string
    try {
      body = render(om)
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`cannot read the segment: ${(e as Error).message}\n`)
      return
    }
    res.writeHead(200, { 'content-type': om ? OPENMETRICS_TYPE : PROMETHEUS_TYPE, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.removeListener('error', reject)
      resolve()
    })
  })
  const a = server.address() as AddressInfo
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`
  return {
    server,
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
