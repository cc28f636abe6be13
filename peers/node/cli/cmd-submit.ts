// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-submit.ts - `xseg submit` and `xseg bench`: requests from a
// dynamic port to a server port, WRITE carrying the pattern of
// peers/user/pattern.h (or --data) and READ checked against it (--verify), with
// request rate and latency percentiles. Requests go as tables through the
// batched API (Port.submitBatch, replies()): up to --depth in flight, refilled
// with as many as came back, one crossing into the addon per table.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'
import { SingleBar } from 'cli-progress'
import { Segment, XsegError, pattern, opName, OPS, Flag as XF, type Batch, type OpName } from '../../../sys/node/ts/index.js'
import { benchNbd, isNbdUri } from './bench-nbd.js'
import { type Command, type Context, type Options, Usage, needSpec, num, percentile } from './cmd.js'

const options: Options = {
  port: { type: 'string', short: 'p' },
  op: { type: 'string', short: 'o' },
  target: { type: 'string', short: 'T' },
  offset: { type: 'string', short: 'O' },
  size: { type: 'string', short: 's' },
  count: { type: 'string', short: 'n' },
  depth: { type: 'string', short: 'D' },
  verify: { type: 'boolean', short: 'V' },
  timeout: { type: 'string', short: 'w' },
  flags: { type: 'string', short: 'F' },
  data: { type: 'string' },
  'data-file': { type: 'string' },
  out: { type: 'string' },
}

/** --flags: names (fua,flush,nosync,force) or a number. */
function flagsOf(v: string | boolean | undefined): number {
  if (v === undefined) return 0
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v)
  let f = 0
  for (const n of String(v).split(',')) {
    const bit = (XF as Record<string, number>)[n]
    if (bit === undefined) throw new Usage(`--flags: '${n}' is not one of ${Object.keys(XF).join(', ')} (or a number)`)
    f |= bit
  }
  return f
}

async function run(ctx: Context): Promise<number> {
  const bench = ctx.command === 'bench'
  const spec = needSpec(ctx)
  const o = ctx.opts
  const dst = num(o.port, '--port', -1)
  if (dst < 0) throw new Usage(`${ctx.command} needs -p PORT`)
  const op = (o.op ?? (bench ? 'read' : 'ping')) as OpName
  if (!OPS.includes(op)) throw new Usage(`--op: unknown op '${op}' (ops: ${OPS.join(' ')})`)
  const size = num(o.size, '--size', op === 'ping' ? 0 : 4096)
  const count = num(o.count, '--count', bench ? 10000 : 1)
  const depth = num(o.depth, '--depth', 1)
  const offset = num(o.offset, '--offset', 0)
  const timeout = num(o.timeout, '--timeout', 10000)
  const target = typeof o.target === 'string' ? o.target : 'target'
  if (count < 1 || depth < 1) throw new Usage('--count and --depth must be at least 1')
  const seed = pattern.seed(target)
  const flags = flagsOf(o.flags)
  if (o.data !== undefined && o['data-file'] !== undefined) throw new Usage('--data and --data-file: give one')
  let data: Buffer | undefined
  if (typeof o.data === 'string') data = Buffer.from(o.data)
  else if (typeof o['data-file'] === 'string') {
    try {
      data = readFileSync(o['data-file'])
    } catch (e) {
      const err = e as NodeJS.ErrnoException
      throw Object.assign(new Error(`--data-file ${o['data-file']}: ${err.message}`), { code: err.code ?? 'EIO' })
    }
  }
  // The data says how much, unless --size does.
  const reqSize = data && o.size === undefined ? data.length : size
  if (data && data.length > reqSize) throw new Usage(`--data: ${data.length} bytes do not fit --size ${reqSize}`)
  const outPath = typeof o.out === 'string' ? o.out : undefined
  if (outPath === '-' && ctx.json) throw new Usage('--out - and --json both want stdout: give one')
  const outFd = outPath === undefined ? undefined : outPath === '-' ? 1 : openSync(outPath, 'w', 0o644)

  const bar = ctx.json || !process.stderr.isTTY || count < 1000 ? null
    : new SingleBar({ format: `${op} {bar} {percentage}% | {value}/{total} requests`, hideCursor: true, stream: process.stderr })
  using seg = Segment.joinSync(spec, { peerType: ctx.peerType })
  const port = seg.bindDynamicPort()
  const signal = AbortSignal.timeout(timeout)
  const lat: number[] = []
  let sent = 0
  let done = 0
  let failed = 0
  let bad = 0
  let infoSize: number | undefined
  const t0 = process.hrtime.bigint()

  // Up to @depth requests in flight, refilled a table at a time.
  const table = port.batch(Math.min(depth, count))
  const submitted = new Float64Array(seg.config.maxRequests) // performance.now() by request index
  const targets = [target]
  const fill = (b: Batch, k: number): void => {
    for (let i = 0; i < k; i++) {
      const at = b.dataOffset(i)
      if (data) b.bytes.set(data, at)
      else pattern.fill(b.bytes.subarray(at, at + reqSize), seed, b.offset(i))
    }
  }
  const dataLength = data ? Math.max(reqSize, data.length) : undefined
  const refill = (): void => {
    const m = Math.min(depth - (sent - done), count - sent)
    if (m <= 0) return
    table.clear()
    for (let i = 0; i < m; i++) {
      table.add(op, offset + (sent + i) * reqSize, op === 'info' ? 8 : reqSize,
        dataLength === undefined ? { flags } : { flags, dataLength })
    }
    let k: number
    try {
      k = port.submitBatch(dst, table, { targets, fill: op === 'write' || data ? fill : undefined })
    } catch (e) {
      // Name the user's objects, not the call that failed.
      const code = (e as { code?: unknown }).code
      const where = `port ${dst} of ${seg.type}:${seg.name}`
      if (code === 'ENOENT') throw new XsegError('ENOENT', `${where} is not bound (no peer serves it)`)
      if (code === 'EINVAL' && dst >= seg.config.nrPorts)
        throw new XsegError('EINVAL', `${where} does not exist (ports 0..${seg.config.nrPorts - 1})`)
      throw e
    }
    const now = performance.now()
    for (let i = 0; i < k; i++) submitted[table.index(i)] = now
    sent += k
    if (sent === done) throw new XsegError('EAGAIN', 'no free request in the segment')
  }
  bar?.start(count, 0)
  try {
    refill()
    for await (const b of port.replies({ signal })) {
      const now = performance.now()
      for (let i = 0; i < b.length; i++) {
        lat.push((now - submitted[b.index(i)]!) * 1000)
        const at = b.dataOffset(i)
        if (b.failed(i)) {
          if (++failed <= 5 && !ctx.json) process.stderr.write(`xseg: ${opName(b.opCode(i))} at ${b.offset(i)} failed: ${b.errorCode(i)}\n`)
        } else if (op === 'info') {
          infoSize = Number(Buffer.from(b.bytes.buffer, b.bytes.byteOffset + at, 8).readBigUInt64LE(0))
        } else if (outFd !== undefined && op !== 'write') {
          writeSync(outFd, b.bytes, at, Math.min(b.serviced(i), b.dataLength(i)))
        } else if (o.verify && op === 'read' && pattern.check(b.bytes.subarray(at, at + b.size(i)), seed, b.offset(i)) !== b.size(i)) {
          bad++
        }
      }
      done += b.length
      bar?.increment(b.length)
      port.releaseBatch(b)
      if (done >= count) break
      refill()
    }
  } finally {
    bar?.stop()
    if (outFd !== undefined && outFd !== 1) closeSync(outFd)
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  lat.sort((a, b) => a - b)
  const pct = (q: number): number => percentile(lat, q)
  const latencyUs = { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: lat[lat.length - 1] ?? 0 }
  const doc = {
    port: dst, op, size: reqSize, depth,
    requests: lat.length, failed, wrongData: bad, seconds: secs, iops: lat.length / secs, latencyUs,
    ...(infoSize !== undefined ? { targetSize: infoSize } : {}),
  }
  const emit = outFd === 1 ? (text: () => string): void => void process.stderr.write(text()) : (text: () => string): void => ctx.emit(doc, text)
  emit(() =>
    (infoSize !== undefined && count === 1 ? `size ${infoSize}\n` : '') +
    `${lat.length} requests, ${failed} failed, ${bad} with wrong data\n` +
    (bench
      ? `${doc.iops.toFixed(0)} requests/s, latency us p50 ${latencyUs.p50.toFixed(1)} p90 ${latencyUs.p90.toFixed(1)} ` +
        `p99 ${latencyUs.p99.toFixed(1)} max ${latencyUs.max.toFixed(1)}\n`
      : ''))
  return failed || bad ? 1 : 0
}

const SUBMIT_OPTS = '-p PORT [--op OP] [--target T] [--offset N] [--size N] [-n COUNT] [--depth D] [--verify] [--timeout MS]\n' +
  '        [-F|--flags fua,flush,nosync] [--data STRING | --data-file FILE] [--out FILE|-]'

export const submit: Command = {
  name: 'submit',
  usage: `submit SPEC ${SUBMIT_OPTS}\n` +
    '                             send requests (WRITE carries the pattern; --verify checks READ data) and wait for replies\n' +
    `                             OP: ${OPS.join(' ')} (default ping)`,
  options,
  run,
}

export const bench: Command = {
  name: 'bench',
  usage: `bench SPEC ${SUBMIT_OPTS}\n` +
    '                             as submit (default 10000 READs of 4K); requests/s and latency percentiles\n' +
    '  bench NBD-URI [--op read|write|randread|randwrite|randrw] [--size BS] [--depth D]\n' +
    '        [-n COUNT | --time S] [--range N] [--verify] [--seed S]\n' +
    '                             drive a running pipeline through its NBD export: progress bar, summary',
  options: { ...options, time: { type: 'string', short: 't' }, range: { type: 'string' }, seed: { type: 'string' } },
  run: (ctx) => (isNbdUri(ctx.args[0]) ? benchNbd(ctx, ctx.args[0]!) : run(ctx)),
}
