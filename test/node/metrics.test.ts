// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the OpenMetrics endpoint (peers/node/cli/metrics.ts): `xseg
// metrics SPEC --listen 127.0.0.1:0` on a segment with a pattern server and
// traffic, scraped over HTTP in both formats: the Prometheus text passes
// `promtool check metrics`, the OpenMetrics text passes the strict parser of
// python3-prometheus-client (which refuses, e.g., a histogram with _count and
// no _sum, or buckets out of order); the counters, the latency histogram and
// the queue gauges move with the traffic between two scrapes. `xseg serve
// --metrics` with patternd under it: the scrape names the peer as its
// program, and after patternd is killed the restart counter reads 1.
// Usage and config errors name what was wrong.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Segment } from '../../sys/node/ts/index'
import { ConfigError, parseServeConfig } from '../../peers/node/cli/serve'
import { OPENMETRICS_TYPE, PROMETHEUS_TYPE, parseListen } from '../../peers/node/cli/metrics'
import { CLI, cPeer, skipCheck, start, stop, uniqueSpec, within, xseg } from './helpers'

const test = suite('metrics')
const patternd = cPeer('patternd')

/** A scrape's samples: `name{labels}` -> value (labels as printed). */
type Samples = Map<string, number>

function samples(text: string): Samples {
  const m: Samples = new Map()
  for (const l of text.split('\n')) {
    if (!l || l.startsWith('#')) continue
    const i = l.lastIndexOf(' ')
    m.set(l.slice(0, i), Number(l.slice(i + 1)))
  }
  return m
}

/** The value of the one sample of @name whose labels include every @want (k="v"). */
function value(s: Samples, name: string, want: Record<string, string | number>): number {
  const hits = [...s].filter(([k]) => k.startsWith(name + '{') &&
    Object.entries(want).every(([lk, lv]) => k.includes(`${lk}="${lv}"`)))
  assert.is(hits.length, 1, `one sample ${name} ${JSON.stringify(want)}: ${hits.map((h) => h[0]).join(' | ')}`)
  return hits[0]![1]
}

/** `promtool check metrics` on @text: its complaints ('' when clean), or null without promtool. */
function promtool(text: string): string | null {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60000 })
  if (r.error) return null
  return r.status === 0 ? '' : `exit ${r.status}: ${r.stdout}${r.stderr}`
}

/** A python3 with prometheus_client (Debian: python3-prometheus-client), or null. */
const PY = ['/usr/bin/python3', 'python3'].find((p) =>
  spawnSync(p, ['-c', 'import prometheus_client.openmetrics.parser'], { timeout: 30000 }).status === 0) ?? null

/** The strict OpenMetrics parser on @text: '' when it parses, else its error. */
function openmetricsCheck(text: string): string | null {
  if (!PY) return null
  const r = spawnSync(PY, ['-c', 'import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as f\n' +
    'fams = list(f(sys.stdin.read()))\nprint(len(fams))'], { input: text, encoding: 'utf8', timeout: 60000 })
  return r.status === 0 ? '' : r.stderr.trim().split('\n').pop()!
}

/** Both checkers on a scrape pair; a missing checker skips (a failure under CI=true). */
function validate(prom: string, om: string): void {
  const p = promtool(prom)
  if (p === null) skipCheck('promtool (Debian prometheus; tools/install-deps check)')
  else assert.is(p, '', `promtool check metrics: ${p}`)
  const o = openmetricsCheck(om)
  if (o === null) skipCheck('python3-prometheus-client (tools/install-deps check)')
  else assert.is(o, '', `OpenMetrics parser: ${o}`)
}

async function scrape(url: string, openmetrics: boolean): Promise<{ type: string, text: string }> {
  const r = await fetch(url, { headers: openmetrics ? { accept: 'application/openmetrics-text; version=1.0.0,text/plain;q=0.5' } : {} })
  assert.is(r.status, 200)
  return { type: r.headers.get('content-type') ?? '', text: await r.text() }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

test('xseg metrics --listen: both formats check clean, counters and histogram move with traffic', async () => {
  const spec = uniqueSpec('16:64:64K')
  assert.is(xseg('create', spec).code, 0)
  const pat = start(process.execPath, [CLI, 'pattern', spec, '-p', '1'])
  const met = start(process.execPath, [CLI, 'metrics', spec, '--listen', '127.0.0.1:0'])
  try {
    const url = (await met.waitFor(/^listening http:/, 20000)).split(' ')[1]!
    await within((async () => { while (!/serving port 1/.test(pat.stderr())) await sleep(50) })(), 20000, 'pattern server')
    const seg = `posix:${spec.split(':')[1]}`
    const before = await scrape(url, false)
    assert.is(before.type, PROMETHEUS_TYPE)
    const b = samples(before.text)
    const acc0 = value(b, 'xseg_port_requests_accepted_total', { segment: seg, port: 1 })
    const bytes0 = value(b, 'xseg_port_responded_bytes_total', { segment: seg, port: 1 })
    assert.is(value(b, 'xseg_port_peer_alive', { port: 1 }), 1)
    // Traffic: 300 reads from a dynamic port of xseg submit.
    const sub = xseg('submit', spec, '-p', '1', '--op', 'read', '--size', '4096', '-n', '300', '--depth', '8')
    assert.is(sub.code, 0, sub.err)
    const after = await scrape(url, false)
    const om = await scrape(url, true)
    assert.is(om.type, OPENMETRICS_TYPE)
    assert.ok(om.text.endsWith('# EOF\n'))
    assert.match(om.text, /^# UNIT xseg_port_request_latency_seconds seconds$/m)
    assert.match(om.text, /^# TYPE xseg_port_requests_submitted counter$/m)
    assert.match(after.text, /^# TYPE xseg_port_requests_submitted_total counter$/m)
    validate(after.text, om.text)
    const a = samples(after.text)
    assert.is(value(a, 'xseg_port_requests_accepted_total', { port: 1 }) - acc0, 300, 'the server port accepted the 300')
    assert.is(value(a, 'xseg_port_requests_responded_total', { port: 1 }) - acc0, 300)
    assert.is(value(a, 'xseg_port_requests_accepted_total', { port: 1, program: 'node', peer_type: 'posixfd' }) - acc0, 300,
      'labelled with its program and peer type')
    // The client's port (freed since): submitted, received and its histogram.
    const client = [...a].find(([k, v]) => k.startsWith('xseg_port_requests_received_total{') && v === 300)
    assert.ok(client, 'a client port received 300 replies')
    const port = /port="(\d+)"/.exec(client[0])![1]!
    assert.is(value(a, 'xseg_port_requests_submitted_total', { port }), 300)
    assert.is(value(a, 'xseg_port_requests_failed_total', { port }), 0)
    assert.is(value(a, 'xseg_port_request_latency_seconds_bucket', { port, le: '+Inf' }), 300, 'every reply in the histogram')
    // Bytes: 300 reads of 4096 served and received (the counters behind xseg top's MiB/s).
    assert.is(value(a, 'xseg_port_received_bytes_total', { port }), 300 * 4096, 'the client received 300 x 4 KiB')
    assert.is(value(a, 'xseg_port_responded_bytes_total', { port: 1 }) - bytes0, 300 * 4096, 'the server sent 300 x 4 KiB')
    assert.match(om.text, /^# UNIT xseg_port_received_bytes bytes$/m)
    const les = [...a].filter(([k]) => k.startsWith('xseg_port_request_latency_seconds_bucket{') && k.includes(`port="${port}"`))
    assert.is(les.length, 32, 'one bucket per core bucket')
    for (let i = 1; i < les.length; i++) assert.ok(les[i]![1] >= les[i - 1]![1], 'cumulative')
    assert.ok(les.some(([k]) => k.includes('le="0.000002"')), 'the first bound is 2 us in seconds')
    // Queue gauges: requests to a port whose owner (this test) never accepts wait in its queue.
    using mine = Segment.joinSync(spec, { peerCheckMs: 0 })
    const idle = mine.bindPort(3)
    const nobody = spawnSync(process.execPath, [CLI, 'submit', spec, '-p', '3', '-n', '5', '--depth', '5', '--timeout', '300'], { encoding: 'utf8', timeout: 60000 })
    assert.is.not(nobody.status, 0, 'nobody serves port 3: the submit times out')
    const q = samples((await scrape(url, false)).text)
    assert.is(value(q, 'xseg_port_queued_requests', { port: 3 }), 5, 'the 5 requests wait at port 3')
    assert.is(value(q, 'xseg_port_queued_replies', { port: 3 }), 0)
    idle.close()
    // Other paths and methods.
    assert.is((await fetch(url.replace('/metrics', '/'))).status, 404)
    assert.is((await fetch(url, { method: 'POST' })).status, 405)
    met.kill('SIGTERM')
    assert.is(await within(met.exited, 20000, 'metrics exit'), 0)
  } finally {
    await stop(met)
    await stop(pat)
    try { Segment.destroy(spec) } catch { /* gone */ }
  }
})

test('xseg metrics --once: OpenMetrics on stdout, --format text for promtool', () => {
  const spec = uniqueSpec('8:32:64K')
  assert.is(xseg('create', spec).code, 0)
  try {
    const om = xseg('metrics', spec, '--once')
    assert.is(om.code, 0, om.err)
    assert.ok(om.out.endsWith('# EOF\n'))
    const text = xseg('metrics', spec, '--once', '--format', 'text')
    assert.is(text.code, 0, text.err)
    assert.not.match(text.out, /# EOF/)
    // metrics looks as an observer: it does not count itself, only real peers.
    assert.match(text.out, /^xseg_segment_attached_peers\{segment="posix:[^"]+"\} 0$/m)
    {
      using peer = Segment.joinSync(spec)
      assert.ok(!peer.observer)
      const one = xseg('metrics', spec, '--once', '--format', 'text')
      assert.match(one.out, /^xseg_segment_attached_peers\{segment="posix:[^"]+"\} 1$/m)
    }
    validate(text.out, om.out)
  } finally {
    Segment.destroy(spec)
  }
})

test('usage and config errors name what was wrong', () => {
  const spec = uniqueSpec('8:32:64K')
  const r = xseg('metrics', spec)
  assert.is(r.code, 2)
  assert.match(r.err, /one of --listen HOST:PORT and --once/)
  const bad = xseg('metrics', spec, '--listen', 'localhost')
  assert.is(bad.code, 2)
  assert.match(bad.err, /--listen: 'localhost' is not HOST:PORT/)
  assert.match(xseg('metrics', spec, '--once', '--format', 'json').err, /--format: 'json' is not openmetrics or text/)
  assert.match(xseg('serve', 'x.toml', '--metrics', '1.2.3.4').err, /--metrics: '1.2.3.4' is not HOST:PORT/)
  const missing = xseg('metrics', spec, '--once')
  assert.is(missing.code, 1, 'no such segment')
  assert.equal(parseListen('[::1]:9464', 'x'), { host: '::1', port: 9464 })
  assert.throws(() => parseListen('127.0.0.1:70000', 'x'), /is not HOST:PORT/)
  const base = '[segment]\nspec = "posix:a:16:64:64K"\n[[peer]]\nprogram = "sh"\nport = 1\n'
  assert.is(parseServeConfig(base + '[metrics]\nlisten = "127.0.0.1:9464"\n', 'p.toml').metricsListen, '127.0.0.1:9464')
  for (const [text, re] of [
    [base + '[metrics]\nlisten = "9464"\n', /p\.toml: metrics\.listen: '9464' is not HOST:PORT/],
    [base + '[metrics]\nlisen = "127.0.0.1:1"\n', /p\.toml: metrics: unknown key 'lisen'/],
    ['metrics = 1\n' + base, /p\.toml: metrics: must be a table/],
  ] as const) {
    assert.throws(() => parseServeConfig(text, 'p.toml'), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message))
  }
})

test('xseg serve --metrics: the peer is named, a killed peer counts one restart', async () => {
  if (!patternd) {
    skipCheck('lib/user/bin/patternd (make user)')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'xseg-metrics-serve-'))
  const spec = uniqueSpec('16:64:64K')
  writeFileSync(join(dir, 'p.toml'), `[segment]\nspec = "${spec}"\n\n[[peer]]\nname = "pat"\nprogram = "patternd"\nport = 1\n`)
  const srv = start(process.execPath, [CLI, 'serve', join(dir, 'p.toml'), '--metrics', '127.0.0.1:0'])
  try {
    await within((async () => { while (!/ready:/.test(srv.stderr())) await sleep(50) })(), 20000, 'serve ready')
    const url = /metrics on (http:\S+)/.exec(srv.stderr())![1]!
    const sub = xseg('submit', spec, '-p', '1', '-n', '50')
    assert.is(sub.code, 0, sub.err)
    const s1 = await scrape(url, false)
    const om1 = await scrape(url, true)
    validate(s1.text, om1.text)
    const a = samples(s1.text)
    assert.ok(value(a, 'xseg_port_requests_responded_total', { port: 1, program: 'pat' }) >= 50, 'served by pat')
    assert.is(value(a, 'xseg_serve_restarts_total', { peer: 'pat' }), 0)
    assert.is(value(a, 'xseg_serve_child_up', { peer: 'pat' }), 1)
    const pid = Number(/started pat \(pid (\d+)\)/.exec(srv.stderr())![1])
    process.kill(pid, 'SIGKILL')
    let restarts = 0
    await within((async () => {
      while (restarts < 1) {
        restarts = value(samples((await scrape(url, false)).text), 'xseg_serve_restarts_total', { peer: 'pat' })
        await sleep(100)
      }
    })(), 30000, 'the restart counter moves')
    assert.is(restarts, 1)
    const s2 = samples((await scrape(url, false)).text)
    assert.is(value(s2, 'xseg_serve_child_up', { peer: 'pat' }), 1, 'pat runs again')
    assert.is(value(s2, 'xseg_segment_recoveries_total', {}) >= 1, true, 'recovery settled the dead port')
    srv.kill('SIGTERM')
    assert.is(await within(srv.exited, 20000, 'serve exit'), 0)
  } finally {
    await stop(srv)
    try { Segment.destroy(spec) } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
