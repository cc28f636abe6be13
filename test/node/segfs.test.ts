// SPDX-License-Identifier: BSD-2-Clause
//
// Description: segment names as hostile input, through the `xseg` CLI and
// the C xseg-tool: `xseg destroy` of a plain file, a FIFO, a symlink to a
// segment and a posix name holding junk leaves them in place and exits 1
// (the same C check as xseg-tool), a real segment goes with exit 0;
// `create ...:autorm=1` of either CLI leaves the segment in place until the
// last peer that joined it leaves; create-or-open (a C peer's --create,
// serve's create = true) refuses an existing segment whose config differs
// from a field the spec writes, naming the fields, and opens it otherwise;
// `xseg config --set mode=,group=` changes a live segment so that nobody
// (a child with uid/gid 65534; root only) is refused before and admitted
// after, may not change it itself, and status --json (schema-valid) reports
// the file's real mode and flags a chmod behind the header's back.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { Segment } from '../../sys/node/ts/index'
import { Pipeline } from '../../peers/node/cli/serve'
import { CLI, ROOT, cPeer, uniqueSpec, xseg, type Run } from './helpers'

const ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: false })
const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'docs/cli.schema.json'), 'utf8')) as object)

function ctool(...args: string[]): Run {
  const r = spawnSync(cPeer('xseg-tool')!, args, { encoding: 'utf8', timeout: 60000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

function gone(spec: string): void {
  try {
    Segment.destroy(spec)
  } catch {
    /* already gone */
  }
}

if (!existsSync(CLI) || !cPeer('xseg-tool')) {
  console.log('  skip: lib/node/cli.js or xseg-tool missing (test/node/run builds them)')
} else {
  test('xseg destroy refuses what is not a segment of ours; exit 1, the entry survives', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xseg-segfs-'))
    try {
      const plain = join(dir, 'v.txt')
      writeFileSync(plain, 'data\n')
      const junk = join(dir, 'junk')
      writeFileSync(junk, Buffer.alloc(8192))
      chmodSync(junk, 0o600)
      const seg = join(dir, 'seg')
      assert.is(xseg('create', `file:${seg}:4:16:4K`).code, 0)
      const link = join(dir, 'link')
      symlinkSync(seg, link)
      const fifo = join(dir, 'fifo')
      assert.is(spawnSync('mkfifo', [fifo]).status, 0)
      for (const p of [plain, junk, link, fifo]) {
        const r = xseg('destroy', `file:${p}`)
        assert.is(r.code, 1, `xseg destroy file:${p}: ${r.out}${r.err}`)
        assert.match(r.err, /not removed/)
        assert.ok(lstatSync(p), `${p} survives`)
        const j = xseg('destroy', `file:${p}`, '--json')
        assert.is(j.code, 1)
        assert.match(JSON.parse(j.out).error.message, /not removed/)
        assert.is(ctool('destroy', `file:${p}`).code, 1)
        assert.ok(lstatSync(p), `${p} survives xseg-tool`)
      }
      assert.match(xseg('destroy', `file:${junk}`).err, /no xseg magic/)
      assert.ok(existsSync(seg), 'the symlink target survives')
      assert.is(xseg('destroy', `file:${seg}`).code, 0)
      assert.not.ok(existsSync(seg))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('xseg destroy of a posix name holding junk leaves it; a real segment goes', () => {
    const spec = uniqueSpec('4:16:4K')
    const name = Segment.parseSpec(spec).name
    const shm = `/dev/shm/xseg.${name}`
    writeFileSync(shm, Buffer.alloc(8192), { mode: 0o600 })
    try {
      const r = xseg('destroy', spec)
      assert.is(r.code, 1, r.out + r.err)
      assert.match(r.err, /no xseg magic/)
      assert.ok(existsSync(shm))
    } finally {
      rmSync(shm, { force: true })
    }
    assert.is(xseg('create', spec).code, 0)
    assert.is(xseg('destroy', spec).code, 0)
    assert.not.ok(existsSync(shm))
    gone(spec)
  })

  test('autorm=1: both CLIs create without removing; the last peer that joined removes it', () => {
    for (const create of [(sp: string) => xseg('create', sp), (sp: string) => ctool('create', sp)]) {
      const spec = uniqueSpec('4:16:4K:0:12:autorm=1')
      const shm = `/dev/shm/xseg.${Segment.parseSpec(spec).name}`
      try {
        const r = create(spec)
        assert.is(r.code, 0, r.out + r.err)
        assert.ok(existsSync(shm), `${spec} exists after create`)
        const a = Segment.joinSync(spec)
        const b = Segment.joinSync(spec)
        a.close()
        assert.ok(existsSync(shm), 'a peer is still joined')
        b.close()
        assert.not.ok(existsSync(shm), 'the last peer that joined removed it')
      } finally {
        gone(spec)
      }
    }
  })

  test('create-or-open: a C peer --create and serve refuse a segment of another config', async () => {
    const spec = uniqueSpec('8:32:64K')
    const name = Segment.parseSpec(spec).name
    const big = `posix:${name}:64:1024:1M`
    try {
      assert.is(ctool('create', spec).code, 0)
      const r = spawnSync(cPeer('patternd')!, ['-g', big, '-p', '1', '--create'], { encoding: 'utf8', timeout: 20000 })
      assert.is(r.status, 1, r.stdout + r.stderr)
      assert.match(r.stderr, `posix:${name} exists with nr_ports=8, nr_requests=32, request_size=64K; the spec asks 64, 1024, 1M`)
      const pipe = new Pipeline({
        spec: big, create: true, destroyOnExit: true, stopGraceMs: 1000,
        peers: [{ name: 'p', program: cPeer('patternd')!, port: 1, driver: 'posixfd', args: [], restart: 'never' }],
      })
      let code = ''
      let msg = ''
      try {
        await pipe.start()
      } catch (e) {
        code = (e as { code: string }).code
        msg = (e as Error).message
      }
      assert.is(code, 'EEXIST', msg)
      assert.match(msg, 'exists with nr_ports=8, nr_requests=32, request_size=64K; the spec asks 64, 1024, 1M')
      assert.ok(existsSync(`/dev/shm/xseg.${name}`), 'serve left the existing segment alone')
      // A spec that leaves the fields empty, or writes the same values, opens it.
      for (const ok of [`posix:${name}`, `posix:${name}:8::64K`]) {
        const p = spawnSync(cPeer('patternd')!, ['-g', ok, '-p', '1', '--create'], { encoding: 'utf8', timeout: 1500 })
        assert.not.match(p.stderr, /exists with/, `${ok}: ${p.stderr}`)
        assert.is((p.error as NodeJS.ErrnoException | undefined)?.code, 'ETIMEDOUT', `${ok} served until the timeout: ${p.stderr}`)
      }
      const seg = Segment.joinSync(`posix:${name}`)
      try {
        seg.checkSpec(`posix:${name}::32`)
        assert.throws(() => seg.checkSpec(`posix:${name}:8:32:64K:0:12:mode=0660`), /exists with mode=0600; the spec asks 0660/)
      } finally {
        seg.close()
      }
    } finally {
      gone(spec)
    }
  })

  test('owner and mode of a live segment: nobody refused, then admitted by group, never allowed to change it', () => {
    if (process.getuid?.() !== 0) {
      if (process.env.CI === 'true') throw new Error('needs root under CI=true')
      console.log('  SKIP: needs root (a child as nobody)')
      return
    }
    const nobody = { uid: 65534, gid: 65534 }
    const asNobody = (...args: string[]): Run => {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60000, ...nobody })
      return { code: r.status, out: r.stdout, err: r.stderr }
    }
    const doc = (r: Run, command: string): Record<string, any> => {
      const d = JSON.parse(r.out) as Record<string, any>
      assert.ok(validate(d), `${command}: ${ajv.errorsText(validate.errors)}\n${r.out}`)
      assert.is(d.command, command)
      return d
    }
    const spec = uniqueSpec('4:16:4K')
    const name = Segment.parseSpec(spec).name
    try {
      assert.is(xseg('create', spec).code, 0)
      let r = asNobody('status', spec, '--json')
      assert.is(r.code, 1, r.out + r.err)
      assert.is(doc(r, 'status').error.code, 'EACCES')
      r = asNobody('config', spec, '--set', `mode=0660,group=${nobody.gid}`, '--json')
      assert.is(r.code, 1, r.out + r.err)
      assert.match(doc(r, 'config').error.message, /not changed/)
      r = xseg('config', spec, '--set', `mode=0660,group=${nobody.gid}`, '--json')
      assert.is(r.code, 0, r.out + r.err)
      assert.equal(doc(r, 'config').owner, { uid: 0, gid: nobody.gid, mode: 0o660 })
      r = asNobody('status', spec, '--json')
      assert.is(r.code, 0, r.out + r.err)
      const st = doc(r, 'status').segment
      assert.equal(st.file, { uid: 0, gid: nobody.gid, mode: 0o660 })
      assert.is(st.mode, 0o660)
      assert.is(st.gid, nobody.gid)
      assert.is(st.ownerMismatch, false)
      r = asNobody('config', spec, '--set', 'mode=0600', '--json')
      assert.is(r.code, 1, r.out + r.err)
      assert.is(doc(r, 'config').error.code, 'EPERM')
      chmodSync(`/dev/shm/xseg.${name}`, 0o640)
      r = xseg('status', spec, '--json')
      const after = doc(r, 'status').segment
      assert.is(after.file.mode, 0o640)
      assert.is(after.mode, 0o660)
      assert.is(after.ownerMismatch, true)
      assert.match(xseg('status', spec).out, /mode 0640 \(MISMATCH: the header says uid 0 gid \d+ mode 0660\)/)
    } finally {
      gone(spec)
    }
  })

  test.run()
}
