// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-submit.ts - `xseg submit` and `xseg bench`: requests from a
// dynamic port to a server port, WRITE carrying the pattern of
// peers/user/pattern.h and READ checked against it (--verify), with request
// rate and latency percentiles. Requests go as tables through the batched
// API (Port.submitBatch, replies()): up to --depth in flight, refilled with
// as many as came back, one crossing into the addon per table.
import { Segment, XsegError, pattern, opName, OPS, type Batch, type OpName } from '../../../sys/node/ts/index.js'
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
}

async function run(ctx: Context): Promise<number> {
  const bench = ctx.command === 'bench'
  const spec = needSpec(ctx)
  const o = ctx.opts
  const dst = num(o.port, '--port', -1)
  if (dst < 0) throw new Usage(`${ctx.command} needs -p PORT`)
  const op = (o.op ?? (bench ? 'read' : 'ping')) as OpName
  if (!OPS.includes(op)) throw new Usage(`--op: unknown op '${op}'`)
  const size = num(o.size, '--size', op === 'ping' ? 0 : 4096)
  const count = num(o.count, '--count', bench ? 10000 : 1)
  const depth = num(o.depth, '--depth', 1)
  const offset = num(o.offset, '--offset', 0)
  const timeout = num(o.timeout, '--timeout', 10000)
  const target = typeof o.target === 'string' ? o.target : 'target'
  if (count < 1 || depth < 1) throw new Usage('--count and --depth must be at least 1')
  const seed = pattern.seed(target)

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
  const submitted = new Float64Array(seg.config.nrRequests) // performance.now() by request index
  const targets = [target]
  const fill = (b: Batch, k: number): void => {
    for (let i = 0; i < k; i++) {
      const at = b.dataOffset(i)
      pattern.fill(b.bytes.subarray(at, at + size), seed, b.offset(i))
    }
  }
  const refill = (): void => {
    const m = Math.min(depth - (sent - done), count - sent)
    if (m <= 0) return
    table.clear()
    for (let i = 0; i < m; i++) table.add(op, offset + (sent + i) * size, op === 'info' ? 8 : size)
    const k = port.submitBatch(dst, table, { targets, fill: op === 'write' ? fill : undefined })
    const now = performance.now()
    for (let i = 0; i < k; i++) submitted[table.index(i)] = now
    sent += k
    if (sent === done) throw new XsegError('EAGAIN', 'no free request in the segment')
  }
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
      } else if (o.verify && op === 'read' && pattern.check(b.bytes.subarray(at, at + b.size(i)), seed, b.offset(i)) !== b.size(i)) {
        bad++
      }
    }
    done += b.length
    port.releaseBatch(b)
    if (done >= count) break
    refill()
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  lat.sort((a, b) => a - b)
  const pct = (q: number): number => percentile(lat, q)
  const latencyUs = { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: lat[lat.length - 1] ?? 0 }
  const doc = {
    port: dst, op, size, depth,
    requests: lat.length, failed, wrongData: bad, seconds: secs, iops: lat.length / secs, latencyUs,
    ...(infoSize !== undefined ? { targetSize: infoSize } : {}),
  }
  ctx.emit(doc, () =>
    (infoSize !== undefined && count === 1 ? `size ${infoSize}\n` : '') +
    `${lat.length} requests, ${failed} failed, ${bad} with wrong data\n` +
    (bench
      ? `${doc.iops.toFixed(0)} requests/s, latency us p50 ${latencyUs.p50.toFixed(1)} p90 ${latencyUs.p90.toFixed(1)} ` +
        `p99 ${latencyUs.p99.toFixed(1)} max ${latencyUs.max.toFixed(1)}\n`
      : ''))
  return failed || bad ? 1 : 0
}

const SUBMIT_OPTS = '-p PORT [--op OP] [--target T] [--offset N] [--size N] [-n COUNT] [--depth D] [--verify] [--timeout MS]'

export const submit: Command = {
  name: 'submit',
  usage: `submit SPEC ${SUBMIT_OPTS}\n` +
    '                             send requests (WRITE carries the pattern; --verify checks READ data) and wait for replies',
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
