// SPDX-License-Identifier: BSD-2-Clause
//
// Description: `xseg list` shows what ipcs -m shows (name, type, size, owner,
// mode, attached peers and their pids, created) for each posix or sysv
// segment, read
// without joining: listing leaves the attach count as it was. `xseg list
// file DIR` finds the xseg segment files of a directory and nothing else: a
// symlink to a segment is not followed, a FIFO is not opened (no hang), a
// plain file is not listed. Short specs: a bare name and named keys work in
// the Node CLI as in C (xseg/spec.c is shared). `xseg top`'s text fits a
// terminal's width: columns are dropped (least needed first) until every
// line fits, and the program of each port is shown.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Segment } from '../../sys/node/ts/index'
import { CLI, RUN_NONCE, RUN_TAG, xseg } from './helpers'
import { render, snapshot } from '../../peers/node/cli/top'

function xjson(...args: string[]): { code: number | null; doc: Record<string, any> } {
  const r = xseg(...args, '--json')
  return { code: r.code, doc: JSON.parse(r.out) as Record<string, any> }
}

if (!existsSync(CLI)) {
  console.log('  skip: lib/node/cli.js missing (test/node/run builds it)')
} else {
  test('list: the columns of ipcs -m, read without joining', () => {
    const name = `xl${RUN_TAG}`
    using seg = Segment.createSync(`${name},ports=4,requests=8,buffer=4K,mode=0640`, { destroyOnClose: true })
    const before = seg.info().attached
    const r = xjson('list')
    assert.is(r.code, 0)
    const i = r.doc.segments.indexOf(name)
    assert.ok(i >= 0, `${name} listed`)
    const d = r.doc.details[i]
    assert.equal([d.name, d.type, d.size, d.mode, d.uid, d.error], [name, 'posix', seg.info().size, 0o640, process.getuid!(), null])
    assert.ok(d.attached >= 1 && d.pids.includes(process.pid), JSON.stringify(d))
    assert.ok(Math.abs(Date.parse(d.created) - Date.now()) < 3600e3, d.created)
    assert.is(seg.info().attached, before, 'listing joined nobody')
    const row = xseg('list').out.split('\n').find((l) => l.split(/\s+/)[0] === name)
    assert.ok(row, 'a text row')
    assert.match(row!, new RegExp(`^${name}\\s+posix\\s+\\S+\\s+\\S+\\s+0640\\s+\\d+\\s+(\\d+,)*${process.pid}`))
    assert.match(xseg('list').out.split('\n')[0]!, /^name\s+type\s+size\s+owner\s+mode\s+attached\s+pids\s+created$/)
  })

  test('list sysv: the same columns for a System V segment', () => {
    const key = '0x7e' + (RUN_NONCE & 0xffffff).toString(16).padStart(6, '0')
    using seg = Segment.createSync(`sysv:${key}:2:4:4K`, { destroyOnClose: true })
    const r = xjson('list', 'sysv')
    const d = (r.doc.details as { name: string }[]).find((e) => e.name === key) as Record<string, any> | undefined
    assert.ok(d, `${key} among ${JSON.stringify(r.doc.segments)}`)
    assert.equal([d!.type, d!.size, d!.mode, d!.error], ['sysv', seg.info().size, 0o600, null])
    assert.ok(d!.pids.includes(process.pid))
  })

  test('list file DIR: segment files only; symlinks not followed, FIFOs not opened', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xseg-listfile-'))
    const other = mkdtempSync(join(tmpdir(), 'xseg-listfile-out-'))
    try {
      const segPath = join(dir, 'a.seg')
      Segment.createSync(`file:${segPath}:2:4:4K`).close()
      const outside = join(other, 'b.seg')
      Segment.createSync(`file:${outside}:2:4:4K`).close()
      symlinkSync(outside, join(dir, 'link-out'))
      symlinkSync(segPath, join(dir, 'link-in'))
      writeFileSync(join(dir, 'plain'), Buffer.alloc(8192, 1), { mode: 0o600 })
      writeFileSync(join(dir, 'small'), 'x')
      execFileSync('mkfifo', [join(dir, 'fifo')])
      const r = xjson('list', 'file', dir)
      assert.is(r.code, 0)
      assert.equal(r.doc.segments, [segPath])
      assert.equal([r.doc.details[0].type, r.doc.details[0].error, r.doc.details[0].attached], ['file', null, 0])
      assert.match(xseg('list', 'file', dir).out, new RegExp(`${segPath.replace(/[.]/g, '\\.')}\\s+file\\s`))
      const u = xseg('list', 'file')
      assert.is(u.code, 2)
      assert.match(u.err, /list file needs a DIR/)
      assert.is(xjson('list', 'file', join(dir, 'nosuch')).doc.error.code, 'ENOENT')
    } finally {
      for (const f of [join(dir, 'a.seg'), join(other, 'b.seg')]) {
        try {
          Segment.destroy(`file:${f}`)
        } catch {
          // not created: nothing to remove
        }
      }
      rmSync(dir, { recursive: true, force: true })
      rmSync(other, { recursive: true, force: true })
    }
  })

  test('top: the text fits the terminal, the program is named', () => {
    using seg = Segment.createSync(`xw${RUN_TAG},ports=4,requests=8,buffer=4K`, { destroyOnClose: true })
    seg.bindPort(1) // left when the segment closes
    const sample = () => ({ t: process.hrtime.bigint(), ports: [0, 1, 2, 3].map((i) => seg.portInfo(i)) })
    const a = sample()
    const snap = snapshot(seg, a, sample(), false)
    const wide = render(snap, new Date())
    assert.match(wide, /port\s+state\s+type\s+pid\s+program\s+alive/)
    assert.match(wide, /\bresponded\b/)
    for (const width of [100, 72, 50, 30]) {
      const text = render(snap, new Date(), width)
      for (const l of text.split('\n')) assert.ok(l.length <= width, `${width}: '${l}' (${l.length})`)
      assert.match(text, /^\s*port\b/m, `${width}: the port column stays`)
    }
    const mid = render(snap, new Date(), 72)
    assert.not.match(mid, /\bresponded\b/, 'the least needed columns go first')
    assert.match(mid, /\bprogram\b/)
  })

  test('short specs: a bare name and named keys', () => {
    const name = `xs${RUN_TAG}`
    const c = xjson('create', `${name},ports=4,requests=8,buffer=4K`)
    try {
      assert.is(c.code, 0)
      assert.is(c.doc.created, `posix:${name}:4:8:4K:0:12`)
      assert.is(xjson('status', name).doc.segment.config.nrPorts, 4)
      assert.is(xjson('config', `posix:${name},dynports=0,ports=2`).doc.config.spec, `posix:${name}:2:256:64K:0:12:dynports=0`)
      assert.is(xjson('config', `${name},ports=2,ports=3`).doc.error.code, 'EINVAL')
    } finally {
      xseg('destroy', name)
    }
  })
}

test.run()
