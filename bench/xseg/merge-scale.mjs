#!/usr/bin/env node
// SPDX-License-Identifier: BSD-2-Clause
// bench/xseg/merge-scale.mjs SRC DST - put the "scale" object of SRC (an
// xsegbench -p g result) into DST (results/xseg.json), keeping DST's other
// parts; DST becomes a copy of SRC if it does not exist. make -C bench run-scale.
import fs from 'node:fs'

const [src, dst] = process.argv.slice(2)
if (!src || !dst) {
  console.error('usage: merge-scale.mjs SRC.json DST.json')
  process.exit(2)
}
const from = JSON.parse(fs.readFileSync(src, 'utf8'))
if (!from.scale) {
  console.error(`merge-scale: ${src} has no "scale" part (run xsegbench with -p g)`)
  process.exit(1)
}
let out = from
try {
  out = JSON.parse(fs.readFileSync(dst, 'utf8'))
  out.scale = from.scale
} catch (e) {
  if (e.code !== 'ENOENT') throw new Error(`merge-scale: ${dst}: ${e.message}`)
}
// Two-space indent, but arrays of numbers and strings on one line (as xsegbench writes them).
const text = JSON.stringify(out, null, 2).replace(/\[\s*([^[\]{}]*?)\s*\]/g,
  (m, inner) => '[' + inner.split(/,\s*/).join(', ') + ']')
fs.writeFileSync(`${dst}.tmp`, text + '\n')
fs.renameSync(`${dst}.tmp`, dst)
console.log(`merged the scale part into ${dst}`)
