// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the `xseg` command (lib/node/cli.js) and its JSON contract:
// every command's --json output (errors included) is checked against
// docs/cli.schema.json with ajv; exit status 0/1/2; status shows ports
// bound, dead (a SIGKILLed C peer) and free again after recover; `xseg pattern`
// answers `xseg submit --verify`, `xseg bench` and C xseg-tool; `xseg top`
// as one JSON snapshot (rates and latency from live traffic), as text
// snapshots when stdout is not a terminal, and on a terminal (script(1)
// gives it a pty) where q quits and the screen is restored.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { Segment } from '../../sys/node/ts/index'
import { CLI, ROOT, cPeer, skipCheck, start, stop, uniqueSpec, within, xseg } from './helpers'

const schema = JSON.parse(readFileSync(join(ROOT, 'docs/cli.schema.json'), 'utf8')) as object
const ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: false })
const validate = ajv.compile(schema)

/** Run with --json: exactly one document on stdout, valid against the schema, of @command. */
function xjson(command: string | null, ...args: string[]): { code: number | null; doc: Record<string, any> } {
  const r = xseg(...args, '--json')
  const lines = r.out.trimEnd().split('\n')
  assert.is(lines.length, 1, `one JSON document from ${args.join(' ')}: ${r.out}${r.err}`)
  const doc = JSON.parse(lines[0]!) as Record<string, any>
  assert.ok(validate(doc), `${args.join(' ')}: ${ajv.errorsText(validate.errors)}\n${r.out}`)
  assert.is(doc.schemaVersion, 1)
  assert.is(doc.command, command)
  return { code: r.code, doc }
}

async function until(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  await within((async () => {
    while (!cond()) await new Promise((r) => setTimeout(r, 10))
  })(), ms, what)
}

if (!existsSync(CLI)) {
  console.log('  skip: lib/node/cli.js missing (test/node/run builds it)')
} else {
  test('--version, config, create, list, status, verify, destroy: documents and exit codes', () => {
    const v = xjson('version', '--version')
    assert.is(v.code, 0)
    assert.is(v.doc.version, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version)
    assert.match(xseg('--version').out, /^xseg \d+\.\d+\.\d+ /)

    const spec = uniqueSpec('8:32:4K')
    const name = Segment.parseSpec(spec).name
    const cfg = xjson('config', 'config', spec)
    assert.is(cfg.doc.config.nrPorts, 8)
    assert.is(cfg.doc.config.dynports, 4)
    assert.match(xseg('config', spec).out, /nrRequests\s+32/)
    const c = xjson('create', 'create', spec)
    assert.is(c.code, 0)
    assert.is(c.doc.config.name, name)
    const again = xjson('create', 'create', spec)
    assert.is(again.code, 1)
    assert.is(again.doc.error.code, 'EEXIST')
    assert.ok(xjson('list', 'list').doc.segments.includes(name))
    assert.ok(xseg('list').out.split('\n').some((l) => l.split(/\s+/)[0] === name))
    const st = xjson('status', 'status', spec)
    assert.is(st.doc.segment.config.nrRequests, 32)
    assert.is(st.doc.segment.name, name)
    assert.equal(st.doc.ports, [])
    const all = xjson('status', 'status', spec, '--all')
    assert.is(all.doc.ports.length, 8)
    assert.ok(all.doc.ports.every((p: { state: string; pid: unknown }) => p.state === 'free' && p.pid === null))
    assert.match(xseg('status', spec).out, /no port in use/)
    assert.is(st.doc.segment.config.peerTypes, 16)
    assert.match(xseg('status', spec).out, /peer types\s+\S.* \(\d+ of 16 entries\)/)
    // status, verify and top look as observers: a full peer-type table does not stop them.
    const one = uniqueSpec('8:32:4K:0:12:peer_types=1')
    assert.is(xjson('create', 'create', one).code, 0)
    {
      using full = Segment.joinSync(one, { peerType: 'futex' })
      assert.equal(full.info().peer_types, ['futex'])
      const fst = xjson('status', 'status', one)
      assert.equal([fst.code, fst.doc.segment.peerTypes, fst.doc.segment.attached], [0, ['futex'], 1])
      assert.equal(xjson('verify', 'verify', one).doc.ok, true)
      assert.match(xseg('top', one, '-n', '1').out, /peer types|port/)
      const rec = xjson('recover', 'recover', one) // recover joins as a peer (posixfd): refused, naming the table
      assert.equal([rec.code, rec.doc.error.code], [1, 'ENOSPC'])
    }
    assert.is(xjson('destroy', 'destroy', one).code, 0)
    const big = uniqueSpec('8:32:4K:0:12:peer_types=128')
    assert.is(xjson('config', 'config', big).doc.config.peerTypes, 128)
    assert.match(xseg('config', big).out, /peerTypes\s+128/)
    const ver = xjson('verify', 'verify', spec)
    assert.equal([ver.code, ver.doc.ok, ver.doc.problems], [0, true, []])
    const rec = xjson('recover', 'recover', spec)
    assert.is(rec.doc.recovery.portsFreed, 0)
    const d = xjson('destroy', 'destroy', spec)
    assert.equal([d.code, d.doc.destroyed], [0, name])
    const gone = xjson('status', 'status', spec)
    assert.equal([gone.code, gone.doc.error.code], [1, 'ENOENT'])
    assert.is(xseg('status', spec).code, 1)
  })

  test('usage errors: exit 2, code USAGE, also as JSON', () => {
    for (const args of [['bogus'], [], ['submit', 'posix:x'], ['status'], ['status', 'posix:x', '--nope'],
      ['status', 'posix:x', 'extra'], ['submit', 'posix:x', '-p', 'one'], ['top', 'posix:x', '-i', '0'],
      ['list', '--peer-type', 'posix']]) {
      assert.is(xseg(...args).code, 2, args.join(' '))
      const r = xjson(args[0] ?? null, ...args)
      assert.is(r.code, 2, args.join(' '))
      assert.is(r.doc.error.code, 'USAGE', args.join(' '))
    }
    // A usage error shows that command's usage (submit's lists the ops), never the whole help.
    const unknown = xseg('bogus').err
    assert.match(unknown, /commands: create, destroy/)
    assert.not.match(unknown, /common options/)
    const badOp = xseg('submit', 'posix:x', '-p', '1', '--op', 'erase').err
    assert.match(badOp, /unknown op 'erase' \(ops: ping read write/)
    assert.match(badOp, /usage: xseg submit SPEC -p PORT/)
    assert.not.match(badOp, /usage: xseg COMMAND|common options/)
    assert.match(xseg('--help').out, /usage: xseg COMMAND/)
    assert.is(xseg('--help').code, 0)
    const bad = xjson('config', 'config', 'posix:x:0')
    assert.equal([bad.code, bad.doc.error.code], [1, 'EINVAL'])
  })

  test('status: bound, dead (SIGKILLed C peer), free after recover', async () => {
    const patternd = cPeer('patternd')
    if (!patternd) {
      skipCheck('lib/user/bin/patternd missing (make user)')
      return
    }
    await using seg = await Segment.create(uniqueSpec('8:32:4K'), { destroyOnClose: true })
    const spec = seg.config.spec
    const d = start(patternd, ['-g', spec, '-p', '2', '-d', 'posixfd'])
    try {
      await until('patternd to bind port 2', () => seg.portInfo(2).state === 'bound')
      const live = xjson('status', 'status', spec).doc.ports as { port: number; state: string; pid: number; alive: boolean; peerType: string }[]
      assert.equal(live.map((p) => [p.port, p.state, p.pid, p.alive, p.peerType]), [[2, 'bound', d.proc.pid, true, 'posixfd']])
      assert.match(xseg('status', spec).out, new RegExp(`\\n\\s*2\\s+bound\\s+posixfd\\s+${d.proc.pid}\\s+yes`))
      d.kill('SIGKILL')
      await d.exited
      const dead = xjson('status', 'status', spec).doc.ports as { state: string; alive: boolean }[]
      assert.equal(dead.map((p) => [p.state, p.alive]), [['dead', false]])
      assert.match(xseg('status', spec).out, /\n\s*2\s+dead\s+posixfd\s+\d+\s+no/)
      const rec = xjson('recover', 'recover', spec)
      assert.is(rec.doc.recovery.portsFreed, 1)
      const after = xjson('status', 'status', spec).doc.ports as { state: string }[]
      assert.ok(after.every((p) => p.state === 'free'))
      assert.is(xjson('verify', 'verify', spec).doc.ok, true)
    } finally {
      await stop(d)
    }
  })

  test('xseg pattern answers xseg submit --verify, bench and C xseg-tool', async () => {
    await using seg = await Segment.create(uniqueSpec('16:128:64K'), { destroyOnClose: true })
    const spec = seg.config.spec
    const server = start(process.execPath, [CLI, 'pattern', spec, '-p', '1', '--json'])
    try {
      await until('xseg pattern to bind port 1', () => seg.portInfo(1).state === 'bound')
      const r = xjson('submit', 'submit', spec, '-p', '1', '--op', 'read', '--size', '8K', '-n', '200', '--depth', '4', '--verify')
      assert.is(r.code, 0)
      assert.equal([r.doc.requests, r.doc.failed, r.doc.wrongData], [200, 0, 0])
      const w = xseg('submit', spec, '-p', '1', '--op', 'write', '--size', '4096', '-n', '50')
      assert.is(w.code, 0, w.err)
      assert.match(w.out, /50 requests, 0 failed, 0 with wrong data/)
      assert.match(xseg('submit', spec, '-p', '1', '--op', 'info').out, /size 1099511627776/)
      assert.is(xjson('submit', 'submit', spec, '-p', '1', '--op', 'info').doc.targetSize, 2 ** 40)
      const un = xjson('submit', 'submit', spec, '-p', '1', '--op', 'clone')
      assert.equal([un.code, un.doc.failed], [1, 1])
      const b = xjson('bench', 'bench', spec, '-p', '1', '--op', 'ping', '-n', '500', '--depth', '8')
      assert.equal([b.code, b.doc.requests, b.doc.failed], [0, 500, 0])
      assert.ok(b.doc.iops > 0 && b.doc.latencyUs.p50 > 0)
      const nobody = xjson('submit', 'submit', spec, '-p', '3')
      assert.equal([nobody.code, nobody.doc.error.code], [1, 'ENOENT'])
      const tool = cPeer('xseg-tool')
      if (tool) {
        const c = start(tool, ['submit', spec, '-p', '1', '-d', 'posixfd', '--op', 'read', '--size', '4096', '-n', '100', '--verify'])
        assert.is(await within(c.exited, 20000, 'xseg-tool'), 0, c.stderr())
      }
    } finally {
      assert.is(await stop(server), 0, server.stderr())
    }
    const doc = JSON.parse(server.lines.join('\n')) as Record<string, unknown>
    assert.ok(validate(doc), ajv.errorsText(validate.errors))
    assert.is(doc.served, 200 + 50 + 1 + 1 + 1 + 500 + 100)
  })

  test('xseg top: a JSON snapshot of live traffic, text snapshots, a terminal view that q quits', async () => {
    await using seg = await Segment.create(uniqueSpec('16:128:4K'), { destroyOnClose: true })
    const spec = seg.config.spec
    const server = seg.bindPort(1)
    const ac = new AbortController()
    const serving = server.serve(() => {}, { signal: ac.signal })
    const client = seg.bindDynamicPort()
    let stopLoad = false
    const load = (async () => {
      while (!stopLoad) (await client.request({ op: 'ping' }).submit(1)).release()
    })()
    try {
      // The CLI runs in a child while this process keeps the traffic going.
      const runAsync = (args: string[]) => {
        const c = start(process.execPath, [CLI, ...args])
        return within(c.exited, 20000, `xseg ${args.join(' ')}`).then((code) => ({ code, out: c.lines.join('\n') + '\n', err: c.stderr() }))
      }
      const j = await runAsync(['top', spec, '-i', '0.3', '--json'])
      assert.is(j.code, 0, j.err)
      const doc = JSON.parse(j.out) as Record<string, any>
      assert.ok(validate(doc), ajv.errorsText(validate.errors))
      assert.is(doc.command, 'top')
      const ports = doc.ports as { port: number; state: string; pid: number; alive: boolean; rates: { submitted: number; accepted: number; responded: number; received: number }; latencyUs: { p50: number; samples: number } | null }[]
      const s = ports.find((p) => p.port === 1)!
      const c = ports.find((p) => p.port === client.number)!
      assert.equal([s.state, s.pid, s.alive], ['bound', process.pid, true])
      assert.ok(s.rates.accepted > 0 && s.rates.responded > 0, JSON.stringify(s.rates))
      assert.ok(c.rates.submitted > 0 && c.rates.received > 0, JSON.stringify(c.rates))
      assert.ok(c.latencyUs !== null && c.latencyUs.samples > 0 && c.latencyUs.p50 > 0, JSON.stringify(c.latencyUs))
      assert.is(s.latencyUs, null, 'a server port receives no replies')
      const comm = readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim()
      assert.is((s as unknown as { program: string }).program, comm, 'the port names its program')
      assert.ok((doc.peers as { pid: number; program: string }[]).some((p) => p.pid === process.pid && p.program === comm),
        JSON.stringify(doc.peers))

      const t = await runAsync(['top', spec, '-i', '0.2', '-n', '2'])
      assert.is(t.code, 0, t.err)
      assert.is(t.out.match(/^xseg top - /gm)?.length, 2, t.out)
      assert.match(t.out, /\n\s*1\s+bound\s+posixfd\s+\d+\s+\S+\s+yes/)
      assert.match(t.out, new RegExp(`\\npeers: (.*, )?${process.pid} `), 'the attached peers are listed')
      assert.not.match(t.out, /\x1b\[/, 'no terminal control sequences when stdout is not a terminal')
    } finally {
      stopLoad = true
      await load
      ac.abort()
      await serving
    }

    // On a terminal: script(1) gives `xseg top` a pty; 'q' on it quits, and the
    // alternate screen and the cursor are restored.
    if (!existsSync('/usr/bin/script')) {
      skipCheck('the terminal view (no script(1))')
      return
    }
    const tty = start('/usr/bin/script', ['-qfec', `${process.execPath} ${CLI} top ${spec} -i 0.1`, '/dev/null'])
    await tty.waitFor(/xseg top - /, 10000).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    tty.proc.stdin!.write('q')
    assert.is(await within(tty.exited, 10000, 'top to quit on q'), 0, tty.stderr())
    const screen = tty.lines.join('\n')
    assert.match(screen, /\x1b\[\?1049h/, 'it used the alternate screen')
    assert.match(screen, /\x1b\[\?25h\x1b\[\?1049l/, 'and restored the terminal')
  })
}

test.run()
