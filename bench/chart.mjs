#!/usr/bin/env node
// SPDX-License-Identifier: BSD-2-Clause
//
// bench/chart.mjs - draw each benchmark results file (bench/results/*.json) as
// an SVG chart next to it (bench/results/NAME.svg): per line of the
// benchmark, its ratio against each of its anchors (the baselines measured in
// the same run) as a bar from 1 (even) on a log scale, and the goal, where the
// project set one, as a black tick on that bar. `make charts` runs it; `make
// bench` runs it at its end.
//
//   node bench/chart.mjs [-o DIR] [FILE.json ...]
//     FILE  results files (default: every bench/results/*.json)
//     -o    where the .svg files go (default: beside each FILE)
//
// Rendered with vega-lite (compiled to a vega spec) and vega's headless
// view.toSVG(): no browser, no canvas. Each file format has an adapter below
// (chosen by the file's "benchmark" field) turning it into points
//   { line, anchor, ratio, goal?, better: 'higher'|'lower' }
// The goals are those the docs state (cited at each adapter); a results file
// that records its own goal (xseg.json goalRatio, node.json goals) is used
// as it says.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import * as vegaLite from 'vega-lite'

const HERE = dirname(fileURLToPath(import.meta.url))
const RESULTS = join(HERE, 'results')

const lowerNote = ' (time)'
const r3 = (x) => Math.round(x * 1000) / 1000

/** bench/README.md: xq at least as fast as rte MP/MC on every row. */
function xq(d) {
  const names = { rte_ring_mpmc: 'rte_ring MP/MC', rte_ring_spsc: 'rte_ring SP/SC', boost: 'boost lockfree', spinlock: 'spinlock queue' }
  return d.rows.flatMap((row) => Object.entries(row.ratios).map(([k, ratio]) => {
    const anchor = k.split('/')[1]
    return { line: `${row.label} (${row.unit})`, anchor: names[anchor] ?? anchor, ratio, better: 'higher', ...(anchor === 'rte_ring_mpmc' ? { goal: 1 } : {}) }
  }))
}

/** bench/README.md: xseg round trip / raw round trip at most the pair's goal (1.25 sleeping, 2 busy-polled; older files: config.goalRatio on the pairs they judge, withinGoal). */
function xseg(d) {
  const goal = d.config?.goalRatio
  return d.latency.flatMap((pl) => {
    const label = (m) => pl.rows.find((r) => r.mechanism === m)?.label ?? m
    const where = pl.placement === 'same_cpu' ? 'one CPU' : 'across CPUs'
    return pl.ratios.map((p) => ({
      line: `${label(p.xseg)}, ${where}${lowerNote}`, anchor: label(p.raw), ratio: p.ratio, better: 'lower',
      ...(p.goal !== undefined ? { goal: p.goal } : goal !== undefined && 'withinGoal' in p ? { goal } : {}),
    }))
  })
}

/** bench/node/README.md: xseg / raw eventfd at most goals.xsegWithinOfRawEventfd, Unix socket / xseg at least goals.xsegFasterThanUnixSocket. */
function node(d) {
  const r = d.ratios, g = d.goals ?? {}
  const rt = 'TS -> C round trip'
  const pts = [
    { line: `${rt}${lowerNote}`, anchor: 'raw eventfd ping-pong', ratio: r.xsegOverRawEventfd, better: 'lower', goal: g.xsegWithinOfRawEventfd },
    { line: `${rt}${lowerNote}`, anchor: 'raw pipe ping-pong', ratio: r.xsegOverPipe, better: 'lower' },
    { line: `${rt}, spin 0${lowerNote}`, anchor: 'raw eventfd ping-pong', ratio: r.xsegSpin0OverRawEventfd, better: 'lower', goal: g.xsegWithinOfRawEventfd },
    { line: `TS -> TS round trip${lowerNote}`, anchor: 'raw eventfd ping-pong', ratio: r.xsegTsTsOverRawEventfd, better: 'lower' },
    // Unix socket time over xseg time: higher is better for xseg.
    { line: `${rt}: speed-up`, anchor: 'Unix socket, Node <-> Node', ratio: r.unixSocketOverXseg, better: 'higher', goal: g.xsegFasterThanUnixSocket },
    { line: `${rt}, spin 0: speed-up`, anchor: 'Unix socket, Node <-> Node', ratio: r.unixSocketOverXsegSpin0, better: 'higher' },
    { line: 'TS -> C throughput (requests/s)', anchor: 'Unix socket, Node <-> Node', ratio: r.throughputXsegOverUnixSocket, better: 'higher' },
  ]
  return pts.filter((p) => typeof p.ratio === 'number').map((p) => (p.goal === undefined ? (({ goal, ...q }) => q)(p) : p))
}

/** docs/kernel.md: xsegbd at least 0.8x the loop device (on blockd, and on xseg_blockd.ko). */
function kernel(d) {
  return d.rows.flatMap((row) => [
    { line: `${row.test}, ${row.threads} thread${row.threads === 1 ? '' : 's'} (${row.unit})`, anchor: 'loop device', ratio: row.ratio, better: 'higher', goal: 0.8 },
    // xsegbd on blockd in the kernel (xseg_blockd.ko): the same goal.
    ...(row.ratioKblockd === undefined ? [] : [
      { line: `${row.test}, ${row.threads} thread${row.threads === 1 ? '' : 's'}: xsegbd -> xseg_blockd.ko`, anchor: 'loop device', ratio: row.ratioKblockd, better: 'higher', goal: 0.8 },
    ]),
    // The kernel's NBD client on the gateway (no goal stated: a row to compare with).
    ...(row.ratioNbd === undefined ? [] : [
      { line: `${row.test}, ${row.threads} thread${row.threads === 1 ? '' : 's'}: nbd.ko -> gateway`, anchor: 'loop device', ratio: row.ratioNbd, better: 'higher' },
    ]),
  ])
}

/**
 * The NBD pipeline (docs/nbd.md; issue 15): at least 1.0x nbdkit's file plugin
 * on every line, with a p99 at most 1.2x nbdkit's; the server CPU time per I/O
 * against nbdkit's is shown without a goal (a spinning peer buys latency with it).
 */
function pipeline(d) {
  return d.rows.flatMap((row) => [
    { line: `${row.workload}: gateway -> blockd`, anchor: 'nbdkit file plugin', ratio: row.ratioNbdkit, better: 'higher', goal: 1 },
    { line: `${row.workload}: gateway -> blockd p99${lowerNote}`, anchor: 'nbdkit file plugin', ratio: row.p99Nbdkit, better: 'lower', goal: 1.2 },
    { line: `${row.workload}: gateway -> blockd CPU per I/O${lowerNote}`, anchor: 'nbdkit file plugin', ratio: row.cpuPerIoNbdkit, better: 'lower' },
    { line: `${row.workload}: gateway -> blockd`, anchor: 'qemu-nbd', ratio: row.ratioQemuNbd, better: 'higher' },
    { line: `${row.workload}: nbdkit xseg plugin -> blockd`, anchor: 'nbdkit file plugin', ratio: row.ratioPluginNbdkit, better: 'higher' },
  ].filter((p) => typeof p.ratio === 'number'))
}

/** README.md (radosd): at least 1.0x librbd on every line; none against qemu-nbd. */
function rados(d) {
  return d.rows.flatMap((row) => [
    { line: `${row.workload}: gateway -> radosd --stripe 4M`, anchor: 'librbd (fio rbd)', ratio: row.ratio_xseg_librbd, better: 'higher', goal: 1 },
    { line: `${row.workload}: gateway -> radosd --stripe 4M`, anchor: 'qemu-nbd on rbd:', ratio: row.ratio_xseg_qemunbd, better: 'higher' },
    { line: `${row.workload}: gateway -> radosd, one object`, anchor: 'librbd (fio rbd)', ratio: row.ratio_object_librbd, better: 'higher', goal: 1 },
    { line: `${row.workload}: volume (vlmcd -> mapperd -> radosd)`, anchor: 'librbd (fio rbd)', ratio: row.ratio_volume_librbd, better: 'higher', goal: 1 },
    { line: `${row.workload}: volume (vlmcd -> mapperd -> radosd)`, anchor: 'qemu-nbd on rbd:', ratio: row.ratio_volume_qemunbd, better: 'higher' },
  ].filter((p) => typeof p.ratio === 'number'))
}

/**
 * README.md (volumes): against gateway -> blockd at least 0.8x for 4K at QD32
 * and 0.7x at QD1 (none stated for 1M); against qemu-nbd on qcow2 at least 1.5x.
 */
function volumes(d) {
  return d.rows.flatMap((row) => {
    const blockdGoal = /^4K .*QD32$/.test(row.workload) ? 0.8 : /QD1( on CPU \d+)?$/.test(row.workload) ? 0.7 : undefined
    return ['fresh', 'volume', 'clone'].flatMap((kind) => [
      { line: `${row.workload}: ${kind}`, anchor: 'gateway -> blockd', ratio: row[`${kind}VsBlockd`], better: 'higher', ...(blockdGoal ? { goal: blockdGoal } : {}) },
      { line: `${row.workload}: ${kind}`, anchor: 'qemu-nbd qcow2', ratio: row[`${kind}VsQcow2`], better: 'higher', goal: 1.5 },
    ])
  }).filter((p) => typeof p.ratio === 'number')
}

const ADAPTERS = { xq, xseg, node, kernel, pipeline, rados, volumes }

const TITLES = {
  xq: 'xq: queue operations against other queues',
  xseg: 'xseg: request round trips against raw wake-ups',
  node: 'node: the TypeScript API against plain Node IPC',
  kernel: 'kernel: xsegbd against the loop device (in the VM)',
  pipeline: 'pipeline: the NBD gateway against other NBD servers',
  rados: 'rados: the gateway on Ceph against librbd and qemu-nbd',
  volumes: 'volumes: the volume chain against blockd and qcow2',
}

/** The points of a results document (throws naming what it does not know). */
export function points(doc, what = 'results') {
  const adapt = ADAPTERS[doc?.benchmark]
  if (!adapt) throw new Error(`${what}: unknown benchmark '${doc?.benchmark}' (known: ${Object.keys(ADAPTERS).join(', ')})`)
  const pts = adapt(doc)
  if (!pts.length) throw new Error(`${what}: no ratios in it`)
  for (const p of pts) {
    if (!(p.ratio > 0)) throw new Error(`${what}: '${p.line}' against '${p.anchor}': ratio ${p.ratio} is not a positive number`)
  }
  return pts
}

/** The vega-lite spec of @doc's chart. */
export function chartSpec(doc, what) {
  const pts = points(doc, what).map((p) => ({ ...p, ratio: r3(p.ratio), labelAt: Math.max(p.ratio, 1), label: `${r3(p.ratio)}x` }))
  // Every line against the same anchors: one row per line, a bar per anchor
  // in it; otherwise one row per line and anchor.
  const lines = [...new Set(pts.map((p) => p.line))]
  const anchors = [...new Set(pts.map((p) => p.anchor))]
  const grouped = lines.every((l) => pts.filter((p) => p.line === l).length === anchors.length)
  if (!grouped) for (const p of pts) p.row = `${p.line} vs ${p.anchor}`
  const lower = pts.some((p) => p.better === 'lower')
  const ratios = pts.flatMap((p) => [p.ratio, p.goal ?? 1])
  const lo = Math.min(0.5, ...ratios) / 1.15
  const hi = Math.max(2, ...ratios) * 1.6 // room for the labels
  const goals = pts.some((p) => p.goal !== undefined)
  const load = doc.machine?.load1 ?? doc.machine?.loadavg1 ?? doc.machine?.otherLoad
  const x = { field: 'ratio', type: 'quantitative', scale: { type: 'log', domain: [lo, hi] }, title: 'ratio: the line / the anchor (log scale, 1 = even)' }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: TITLES[doc.benchmark] ?? doc.benchmark,
      subtitle: [
        `${String(doc.date ?? '').slice(0, 16).replace('T', ' ')} UTC, ${doc.machine?.cpus ?? '?'} CPUs${load !== undefined ? `, load ${Math.round(load * 100) / 100}` : ''}: ` +
          'baselines from the same run; compare within a chart only',
        (lower ? 'lines marked (time) compare times: lower is better; the others rates: higher is better. ' : 'higher is better. ') +
          (goals ? 'Black tick: the goal (at least; at most for times)' : 'No goal is set for these lines'),
      ],
      anchor: 'start',
    },
    data: { values: pts },
    width: 460,
    height: { step: grouped ? 4 + 7 * anchors.length : 12 },
    config: { axis: { labelLimit: 700 }, legend: { labelLimit: 300 }, font: 'sans-serif' },
    encoding: grouped
      ? { y: { field: 'line', type: 'nominal', sort: null, title: null }, yOffset: { field: 'anchor', type: 'nominal', sort: null } }
      : { y: { field: 'row', type: 'nominal', sort: null, title: null } },
    layer: [
      { name: 'ratio', mark: { type: 'bar' }, encoding: { x, x2: { datum: 1 }, color: { field: 'anchor', type: 'nominal', sort: null, title: 'against', legend: { orient: 'bottom', columns: 2 } } } },
      { name: 'even', mark: { type: 'rule', color: '#999', strokeDash: [3, 3] }, encoding: { x: { datum: 1, type: 'quantitative' }, y: null, ...(grouped ? { yOffset: null } : {}) } },
      { name: 'value', mark: { type: 'text', align: 'left', dx: 3, fontSize: 9 }, encoding: { x: { field: 'labelAt', type: 'quantitative' }, text: { field: 'label' } } },
      ...(goals ? [{
        name: 'goal',
        transform: [{ filter: 'isValid(datum.goal)' }],
        mark: { type: 'tick', color: '#000', thickness: 3 },
        encoding: { x: { field: 'goal', type: 'quantitative' } },
      }] : []),
    ],
  }
}

/** @doc's chart as an SVG document. */
export async function renderSvg(doc, what) {
  const spec = vegaLite.compile(chartSpec(doc, what)).spec
  const view = new vega.View(vega.parse(spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

async function main(argv) {
  let out
  const files = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-o') out = argv[++i]
    else if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write('usage: node bench/chart.mjs [-o DIR] [FILE.json ...]\n')
      return 0
    } else if (argv[i].startsWith('-')) throw new Error(`unknown option '${argv[i]}' (usage: node bench/chart.mjs [-o DIR] [FILE.json ...])`)
    else files.push(argv[i])
  }
  if (out === '' || (argv.includes('-o') && out === undefined)) throw new Error('-o needs a DIR')
  if (!files.length) for (const f of readdirSync(RESULTS).sort()) if (f.endsWith('.json')) files.push(join(RESULTS, f))
  for (const f of files) {
    const doc = JSON.parse(readFileSync(f, 'utf8'))
    const svg = await renderSvg(doc, f)
    const dest = join(out ?? dirname(resolve(f)), basename(f).replace(/\.json$/, '') + '.svg')
    writeFileSync(dest, svg + '\n')
    process.stdout.write(`chart ${dest}\n`)
  }
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((c) => { process.exitCode = c }, (e) => {
    process.stderr.write(`bench/chart.mjs: ${e.message}\n`)
    process.exitCode = 1
  })
}
