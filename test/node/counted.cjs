// SPDX-License-Identifier: BSD-2-Clause
//
// test/node/counted.cjs - uvu's runner with one result line per test, for
// tools/run-tests: runs the test files of DIR matching PATTERN (as `uvu DIR
// PATTERN` does; test/node/run preloads tsx) and, besides uvu's own output,
// prints on a line of its own
//   PASS <file> › [<suite> › ]<test>     FAIL …     SKIP …
// for every test() (test.skip() is a SKIP), and "SKIP <file> (no tests)" for
// a file that registers none. uvu's exit status stays as it is: a failing
// hook or a crash fails the run even when every test printed PASS.
//
//   node -r tsx/cjs test/node/counted.cjs DIR [PATTERN]
'use strict'
const { relative } = require('node:path')

globalThis.UVU_DEFER = 1
const uvu = require('uvu')
const { parse } = require('uvu/parse')

let file = ''
const registered = new Map()
// On a line of its own: uvu prints its dots without newlines.
const line = (s) => process.stdout.write(`\n${s.replace(/\s*\n\s*/g, ' ')}\n`)

function counted(t, suiteName) {
  const tag = (name) => `${file} › ${suiteName ? `${suiteName} › ` : ''}${name}`
  const wrap = (name, fn) => {
    const label = tag(name)
    registered.set(file, (registered.get(file) || 0) + 1)
    return async (ctx) => {
      try {
        await fn(ctx)
      } catch (err) {
        line(`FAIL ${label}`)
        throw err
      }
      line(`PASS ${label}`)
    }
  }
  const c = (name, fn) => t(name, wrap(name, fn))
  c.only = (name, fn) => t.only(name, wrap(name, fn))
  c.skip = (name) => {
    registered.set(file, (registered.get(file) || 0) + 1)
    line(`SKIP ${tag(name)} (test.skip)`)
    return t.skip(name)
  }
  c.before = t.before
  c.after = t.after
  c.run = t.run
  return c
}

const origSuite = uvu.suite
uvu.suite = (name, state) => counted(origSuite(name, state), name)
uvu.test = counted(uvu.test, '')

;(async () => {
  const [dir, pattern] = process.argv.slice(2)
  if (!dir) {
    console.error('usage: node -r tsx/cjs test/node/counted.cjs DIR [PATTERN]')
    process.exit(2)
  }
  const ctx = await parse(dir, pattern, {})
  if (!ctx.suites.length) {
    console.error(`counted: no test file in ${dir} matches ${pattern}`)
    process.exit(1)
  }
  ctx.suites.forEach((s, idx) => {
    file = relative(ctx.dir, s.file)
    globalThis.UVU_QUEUE.push([s.name])
    globalThis.UVU_INDEX = idx
    require(s.file)
    if (!registered.get(file)) line(`SKIP ${file} (no tests)`)
  })
  file = ''
  await uvu.exec()
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
