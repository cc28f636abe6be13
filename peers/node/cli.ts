#!/usr/bin/env node
// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli.ts - `xseg`, the command line of the node domain (docs/cli.md).
//
//   xseg create SPEC            xseg destroy SPEC          xseg list [TYPE]
//   xseg status SPEC            xseg recover SPEC          xseg verify SPEC
//   xseg config SPEC            xseg submit SPEC -p PORT [...]
//   xseg serve SPEC -p PORT     xseg bench SPEC -p PORT [...]
//
// --json prints one JSON document ({"xseg": 1, ...}: a versioned contract).
// Exit status: 0 success, 1 failure, 2 usage.
import { setMaxListeners } from 'node:events'
import { parseArgs } from 'node:util'
import { Segment, pattern, OPS, type OpName, type PortInfo, type Request } from '../../sys/node/ts/index.js'
import { servePattern } from './patternd.js'

const JSON_VERSION = 1

class Usage extends Error {}

const USAGE = `usage: xseg COMMAND [options]
  create SPEC                 create a segment (--peer-type for later joins is per peer)
  destroy SPEC                mark it destroyed, remove its name and FIFO directory
  list [TYPE]                 segments of a type (default posix)
  status SPEC                 header, ports, queues, counters
  recover SPEC                settle the ports of dead peers
  verify SPEC                 consistency check (exit 1 on problems)
  config SPEC                 the spec parsed, every default filled in
  submit SPEC -p PORT [--op OP] [--target T] [--offset N] [--size N]
              [-n COUNT] [--depth D] [--verify] [--timeout MS]
                              send requests (WRITE carries the pattern; --verify
                              checks READ data against it) and wait for replies
  serve SPEC -p PORT          serve the pattern (as patternd) until SIGINT/SIGTERM
  bench SPEC -p PORT [--op OP] [--size N] [-n COUNT] [--depth D]
                              requests per second and latency percentiles
options: --json   one JSON document on stdout
         --peer-type posixfd|futex   (default posixfd)`

function out(json: boolean, doc: Record<string, unknown>, text: () => string): void {
  if (json) process.stdout.write(JSON.stringify({ xseg: JSON_VERSION, ...doc }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n')
  else process.stdout.write(text())
}

function num(v: string | undefined, what: string, def: number): number {
  if (v === undefined) return def
  const m = /^(\d+)([KMG]?)$/.exec(v)
  if (!m) throw new Usage(`${what}: '${v}' is not a number`)
  const shift = { '': 0, K: 10, M: 20, G: 30 }[m[2] as '' | 'K' | 'M' | 'G']
  return Number(m[1]) * 2 ** shift
}

function need(spec: string | undefined): string {
  if (!spec) throw new Usage('a SPEC is needed')
  return spec
}

async function main(argv: string[]): Promise<number> {
  const { values: o, positionals: pos } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      'peer-type': { type: 'string', default: 'posixfd' },
      port: { type: 'string', short: 'p' },
      op: { type: 'string', short: 'o' },
      target: { type: 'string', short: 'T', default: 'target' },
      offset: { type: 'string', short: 'O' },
      size: { type: 'string', short: 's' },
      count: { type: 'string', short: 'n' },
      depth: { type: 'string', short: 'D' },
      verify: { type: 'boolean', short: 'V', default: false },
      timeout: { type: 'string', short: 'w' },
    },
  })
  if (o.help) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  const [cmd, arg] = pos
  const json = o.json ?? false
  const peerType = o['peer-type'] as 'posixfd' | 'futex'
  switch (cmd) {
    case 'create': {
      const cfg = Segment.parseSpec(need(arg))
      const seg = await Segment.create(cfg.spec, { peerType })
      seg.close()
      out(json, { created: cfg.spec }, () => `created ${cfg.spec}\n`)
      return 0
    }
    case 'destroy': {
      Segment.destroy(need(arg))
      out(json, { destroyed: Segment.parseSpec(arg!).name }, () => '')
      return 0
    }
    case 'list': {
      const names = Segment.list(arg ?? 'posix')
      out(json, { type: arg ?? 'posix', segments: names }, () => names.map((n) => n + '\n').join(''))
      return 0
    }
    case 'config': {
      const cfg = Segment.parseSpec(need(arg))
      out(json, { config: cfg }, () => Object.entries(cfg).map(([k, v]) => `${k.padEnd(12)} ${JSON.stringify(v)}\n`).join(''))
      return 0
    }
    case 'status':
      return status(need(arg), json, peerType)
    case 'recover': {
      using seg = Segment.joinSync(need(arg), { peerType })
      const st = seg.recover()
      out(json, { recovery: st }, () =>
        `${st.ports_freed} ports freed, ${st.requests_failed} requests failed back, ${st.requests_freed} requests freed, ` +
        `${st.buffers_freed} buffers freed, ${st.holds_settled} queue moves settled\n`)
      return 0
    }
    case 'verify': {
      using seg = Segment.joinSync(need(arg), { peerType })
      const problems = seg.verify()
      out(json, { problems }, () => problems.map((l) => `  ${l}\n`).join('') + `${problems.length} problem${problems.length === 1 ? '' : 's'}\n`)
      return problems.length ? 1 : 0
    }
    case 'submit':
    case 'bench':
      return submit(cmd, need(arg), o, json, peerType)
    case 'serve':
      return serve(need(arg), num(o.port, '--port', -1), peerType)
    default:
      throw new Usage(cmd ? `unknown command '${cmd}'` : 'a COMMAND is needed')
  }
}

function status(spec: string, json: boolean, peerType: 'posixfd' | 'futex'): number {
  using seg = Segment.joinSync(spec, { peerType })
  const info = seg.info()
  const ports: PortInfo[] = []
  for (let i = 0; i < seg.config.nrPorts; i++) {
    const p = seg.portInfo(i)
    if (p.state === 'free' && !p.requests_queued && !p.replies_queued && !p.counters.submitted && !p.counters.accepted) continue
    ports.push(p)
  }
  out(json, { segment: info, ports }, () => {
    const lines = [
      `segment   ${info.config.spec}`,
      `version   ${info.major}.${info.minor}`,
      `size      ${info.size} bytes`,
      `creator   uid ${info.uid} pid ${info.creator_pid}, mode ${info.mode.toString(8).padStart(4, '0')}`,
      `requests  ${info.config.nr_requests} (queue capacity ${info.queue_cap}), serial ${info.serial}, recoveries ${info.recoveries}`,
      `peer types ${info.peer_types.join(', ') || '-'}`,
      'port  state      type     pid      alive    reqq   repq  submitted   accepted  responded   received   failed',
    ]
    for (const p of ports) {
      const state = p.state === 'bound' && !p.alive ? 'dead' : p.state
      lines.push(
        `${String(p.port).padEnd(5)} ${state.padEnd(10)} ${(p.peer_type ?? '-').padEnd(8)} ${String(p.pid).padEnd(8)} ` +
        `${(p.state === 'free' ? '-' : p.alive ? 'yes' : 'no').padEnd(6)} ${String(p.requests_queued).padStart(6)} ` +
        `${String(p.replies_queued).padStart(6)} ${String(p.counters.submitted).padStart(10)} ${String(p.counters.accepted).padStart(10)} ` +
        `${String(p.counters.responded).padStart(10)} ${String(p.counters.received).padStart(10)} ${String(p.counters.failed).padStart(8)}`)
    }
    return lines.join('\n') + '\n'
  })
  return 0
}

interface SubmitArgs {
  port?: string
  op?: string
  target?: string
  offset?: string
  size?: string
  count?: string
  depth?: string
  verify?: boolean
  timeout?: string
}

async function submit(cmd: 'submit' | 'bench', spec: string, o: SubmitArgs, json: boolean,
                      peerType: 'posixfd' | 'futex'): Promise<number> {
  const dst = num(o.port, '--port', -1)
  if (dst < 0) throw new Usage(`${cmd} needs -p PORT`)
  const op = (o.op ?? (cmd === 'bench' ? 'read' : 'ping')) as OpName
  if (!OPS.includes(op)) throw new Usage(`--op: unknown op '${op}'`)
  const size = num(o.size, '--size', op === 'ping' ? 0 : 4096)
  const count = num(o.count, '--count', cmd === 'bench' ? 10000 : 1)
  const depth = num(o.depth, '--depth', 1)
  const offset = num(o.offset, '--offset', 0)
  const timeout = num(o.timeout, '--timeout', 10000)
  const target = o.target ?? 'target'
  if (count < 1 || depth < 1) throw new Usage('counts must be at least 1')
  const seed = pattern.seed(target)

  using seg = Segment.joinSync(spec, { peerType })
  const port = seg.bindDynamicPort()
  const signal = AbortSignal.timeout(timeout)
  setMaxListeners(depth + 8, signal) // one listener per request in flight
  const lat: number[] = []
  let sent = 0
  let failed = 0
  let bad = 0
  let infoSize: number | undefined
  const t0 = process.hrtime.bigint()

  const one = async (): Promise<void> => {
    while (sent < count) {
      const off = offset + sent++ * size
      const req = port.request({ op, target, offset: off, size: op === 'info' ? 8 : size })
      if (op === 'write') pattern.fill(req.data.subarray(0, size), seed, off)
      const t = process.hrtime.bigint()
      const r: Request = await req.submit(dst, { signal })
      lat.push(Number(process.hrtime.bigint() - t) / 1000)
      if (r.failed) {
        if (++failed <= 5) process.stderr.write(`xseg: ${r.op} at ${r.offset} failed: ${r.errorCode}\n`)
      } else if (op === 'info') {
        infoSize = Number(r.data.readBigUInt64LE(0))
      } else if (o.verify && op === 'read' && pattern.check(r.data.subarray(0, r.size), seed, off) !== r.size) {
        bad++
      }
      r.release()
    }
  }
  await Promise.all(Array.from({ length: Math.min(depth, count) }, one))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  lat.sort((a, b) => a - b)
  const pct = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0
  const doc = {
    requests: lat.length, failed, wrong_data: bad, seconds: secs, iops: lat.length / secs,
    latency_us: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: lat[lat.length - 1] ?? 0 },
    ...(infoSize !== undefined ? { size: infoSize } : {}),
  }
  out(json, doc, () =>
    (infoSize !== undefined && count === 1 ? `size ${infoSize}\n` : '') +
    `${lat.length} requests, ${failed} failed, ${bad} with wrong data\n` +
    (cmd === 'bench'
      ? `${doc.iops.toFixed(0)} requests/s, latency us p50 ${pct(0.5).toFixed(1)} p90 ${pct(0.9).toFixed(1)} ` +
        `p99 ${pct(0.99).toFixed(1)} max ${doc.latency_us.max.toFixed(1)}\n`
      : ''))
  return failed || bad ? 1 : 0
}

async function serve(spec: string, portNo: number, peerType: 'posixfd' | 'futex'): Promise<number> {
  if (portNo < 0) throw new Usage('serve needs -p PORT')
  const seg = Segment.joinSync(spec, { peerType })
  const port = seg.bindPort(portNo)
  const ac = new AbortController()
  const stop = (): void => ac.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  process.stderr.write(`xseg: serving port ${portNo} of ${seg.name}\n`)
  await port.serve((req) => servePattern(req), { signal: ac.signal })
  seg.close()
  return 0
}

const isMain = typeof require !== 'undefined' && typeof module !== 'undefined' ? require.main === module : true
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (e: unknown) => {
      if (e instanceof Usage || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
        process.stderr.write(`xseg: ${(e as Error).message}\n${USAGE}\n`)
        process.exitCode = 2
      } else {
        process.stderr.write(`xseg: ${(e as Error).message}\n`)
        process.exitCode = 1
      }
    },
  )
}
