// SPDX-License-Identifier: BSD-2-Clause
//
// Description: bench/chart.mjs (make charts) renders results files to SVG:
// each chart parses as an SVG document (Python's XML parser), names every
// line of its results file, has one bar per ratio and one goal tick per
// ratio that has a goal (xq: the rte MP/MC column; xseg: every judged pair,
// at the file's own goalRatio), and the ratio values as labels. A file of an
// unknown benchmark, or with a ratio that is not a positive number, fails
// naming the file and what was wrong.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { ROOT, skipCheck } from './helpers'

const test = suite('chart')
const CHART = join(ROOT, 'bench', 'chart.mjs')
const PY = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import xml.etree.ElementTree'], { timeout: 30000 }).status === 0)

// What an SVG holds, read by a real XML parser: the root, every text, and
// the element count of each vega mark group (by its name_marks class).
const READ_SVG = `
import json, sys, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
texts = [''.join(t.itertext()) for t in root.iter('{http://www.w3.org/2000/svg}text')]
marks = {}
for g in root.iter('{http://www.w3.org/2000/svg}g'):
    cls = g.get('class', '').split()
    if 'role-mark' in cls:
        marks[cls[-1]] = len(list(g))
print(json.dumps({'root': root.tag, 'texts': texts, 'marks': marks}))
`

interface Svg { root: string, texts: string[], marks: Record<string, number> }

function render(files: string[], out: string): { code: number | null, out: string, err: string } {
  const r = spawnSync(process.execPath, [CHART, '-o', out, ...files], { encoding: 'utf8', timeout: 120000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

function readSvg(path: string): Svg | null {
  if (!PY) return null
  const r = spawnSync(PY, ['-c', READ_SVG, path], { encoding: 'utf8', timeout: 60000 })
  assert.is(r.status, 0, `${path} does not parse as XML: ${r.stderr}`)
  return JSON.parse(r.stdout) as Svg
}

test('xq.json and xseg.json: SVG documents with every line, a bar per ratio, the goals as ticks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-chart-'))
  try {
    const r = render([join(ROOT, 'bench/results/xq.json'), join(ROOT, 'bench/results/xseg.json')], dir)
    assert.is(r.code, 0, r.err)
    assert.match(r.out, /chart .*xq\.svg/)
    const xqDoc = JSON.parse(readFileSync(join(ROOT, 'bench/results/xq.json'), 'utf8')) as
      { rows: { label: string, ratios: Record<string, number> }[] }
    const svg = readSvg(join(dir, 'xq.svg'))
    if (!svg) return skipCheck('python3 (to parse the SVG)')
    assert.is(svg.root, '{http://www.w3.org/2000/svg}svg')
    const text = svg.texts.join('\n')
    for (const row of xqDoc.rows) {
      assert.ok(svg.texts.some((t) => t.startsWith(row.label)), `the line '${row.label}' is named`)
      for (const v of Object.values(row.ratios)) assert.ok(svg.texts.includes(`${v}x`), `the ratio ${v} of '${row.label}' is shown`)
    }
    const nRatios = xqDoc.rows.reduce((n, row) => n + Object.keys(row.ratios).length, 0)
    assert.is(svg.marks.ratio_marks, nRatios, 'one bar per ratio')
    assert.is(svg.marks.goal_marks, xqDoc.rows.length, 'one goal tick per row (xq/rte MP/MC >= 1)')
    assert.match(text, /rte_ring MP\/MC/)
    assert.match(text, /the goal/)
    // xseg.json: times (lower is better) at its own goalRatio, on every judged pair.
    const xsegDoc = JSON.parse(readFileSync(join(ROOT, 'bench/results/xseg.json'), 'utf8')) as
      { latency: { ratios: { withinGoal?: boolean }[] }[] }
    const xs = readSvg(join(dir, 'xseg.svg'))!
    const pairs = xsegDoc.latency.flatMap((l) => l.ratios)
    assert.is(xs.marks.ratio_marks, pairs.length)
    assert.is(xs.marks.goal_marks, pairs.filter((p) => 'withinGoal' in p).length)
    assert.ok(xs.texts.some((t) => /xseg futex, across CPUs \(time\) vs futex wait\/wake/.test(t)))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('every committed results file renders (make charts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-chart-'))
  try {
    const r = render([], dir)
    assert.is(r.code, 0, r.err)
    const made = r.out.trim().split('\n')
    assert.ok(made.length >= 7, `a chart per results file: ${r.out}`)
    for (const l of made) {
      const svg = readSvg(l.replace(/^chart /, ''))
      if (!svg) return skipCheck('python3 (to parse the SVG)')
      assert.is(svg.root, '{http://www.w3.org/2000/svg}svg')
      assert.ok(svg.marks.ratio_marks! > 0, `${l}: bars`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a results file it cannot draw fails naming the file and why', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-chart-'))
  try {
    writeFileSync(join(dir, 'odd.json'), JSON.stringify({ benchmark: 'odd', rows: [] }))
    const r = render([join(dir, 'odd.json')], dir)
    assert.is(r.code, 1)
    assert.match(r.err, /odd\.json: unknown benchmark 'odd' \(known: xq, xseg, node/)
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ benchmark: 'kernel', rows: [{ test: 'read 1M', threads: 1, unit: 'MB/s', ratio: 'fast' }] }))
    const b = render([join(dir, 'bad.json')], dir)
    assert.is(b.code, 1)
    assert.match(b.err, /bad\.json: 'read 1M, 1 thread \(MB\/s\)' against 'loop device': ratio fast is not a positive number/)
    assert.match(render(['--bogus'], dir).err, /unknown option '--bogus'/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
