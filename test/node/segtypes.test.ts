// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the sysv and memfd segment types through the Node API:
// a sysv segment created, joined, listed (Segment.list('sysv')), its mode
// changed (setOwnerMode: IPC_SET, and the header follows) and destroyed;
// a private memfd segment (Segment.createMemfd) joined here as memfd:<fd>,
// handed to a child through spawn()'s stdio (the C xseg-tool reads its
// status as memfd:3), sent over a Unix socket to `xseg-tool recv --exec`
// (sendMemfd) and received from `xseg-tool create memfd:... --send`
// (recvMemfd), with the bytes one side writes seen by the other.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Segment } from '../../sys/node/ts/index'
import { cPeer, RUN_NONCE } from './helpers'

const tool = cPeer('xseg-tool')

/** The raw descriptor of a connected net.Socket (Unix only; libuv's pipe handle). */
function fdOf(s: Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('no descriptor on the socket')
  return fd
}

function exited(p: ReturnType<typeof spawn>): Promise<{ code: number | null; out: string }> {
  let out = ''
  p.stdout?.on('data', (b: Buffer) => (out += b.toString()))
  p.stderr?.on('data', (b: Buffer) => (out += b.toString()))
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, out })))
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

test('sysv: create, join, list, setOwnerMode, destroy', () => {
  const key = `0x5f${((RUN_NONCE & 0xfffff) << 2).toString(16).padStart(6, '0').slice(-6)}`
  const spec = `sysv:${key}:4:16:4K`
  const seg = Segment.createSync(spec, { peerType: 'futex' })
  try {
    assert.equal(seg.type, 'sysv')
    assert.ok(Segment.list('sysv').includes(key), `list: ${Segment.list('sysv').join(' ')}`)
    const o = Segment.setOwnerMode(spec, 'mode=0660')
    assert.is(o.mode, 0o660)
    assert.is(seg.info().mode, 0o660)
  } finally {
    seg.close()
    Segment.destroy(spec)
  }
  assert.not.ok(Segment.list('sysv').includes(key))
})

test('memfd: createMemfd, join here, a spawned child reads it as memfd:3', () => {
  const fd = Segment.createMemfd('memfd:x:4:16:4K')
  try {
    const seg = Segment.joinSync(`memfd:${fd}`, { peerType: 'futex' })
    assert.is(seg.type, 'memfd')
    seg.close()
    if (!tool) return
    const r = spawnSync(tool, ['status', 'memfd:3'], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8' })
    assert.is(r.status, 0, r.stderr)
    assert.match(r.stdout, /size\s+\d+ bytes/)
  } finally {
    closeSync(fd)
  }
})

test('memfd: sendMemfd to xseg-tool recv, recvMemfd from xseg-tool create --send', async () => {
  if (!tool) return
  const dir = mkdtempSync(join(tmpdir(), 'xseg-memfd-node-'))
  const children: ReturnType<typeof spawn>[] = []
  try {
    // Node sends: recv runs status on what it got.
    const fd = Segment.createMemfd('memfd:x:4:16:4K')
    const sock = join(dir, 'recv')
    const child = spawn(tool, ['recv', sock, '--exec', 'sh', '-c', '"$0" status memfd:$XSEG_MEMFD', tool])
    children.push(child)
    const done = exited(child)
    let conn: Socket | undefined
    for (let i = 0; i < 200 && !conn; i++) {
      conn = await new Promise<Socket | undefined>((resolve) => {
        const c = createConnection(sock)
        c.once('connect', () => resolve(c))
        c.once('error', () => resolve(undefined))
      })
      if (!conn) await sleep(20)
    }
    assert.ok(conn, 'xseg-tool recv never listened')
    Segment.sendMemfd(fdOf(conn!), fd)
    conn!.destroy()
    closeSync(fd)
    const r = await done
    assert.is(r.code, 0, r.out)
    assert.match(r.out, /segment\s+memfd:/)

    // Node receives: xseg-tool create --send connects to us.
    const path = join(dir, 'send')
    const got = new Promise<Socket>((resolve) => {
      // pauseOnConnect: libuv must not read the connection (a plain read
      // would take the byte and drop the descriptor riding on it).
      const srv = createServer({ pauseOnConnect: true }, (c) => {
        srv.close()
        resolve(c)
      })
      srv.listen(path)
    })
    await new Promise((r) => setTimeout(r, 50))
    const sender = spawn(tool, ['create', 'memfd:y:4:16:4K', '--send', path])
    children.push(sender)
    const sent = exited(sender)
    const c = await got
    let rfd = -1
    for (let i = 0; i < 500 && rfd < 0; i++) {
      try {
        rfd = Segment.recvMemfd(fdOf(c))
      } catch (e) {
        if ((e as { code?: string }).code !== 'EAGAIN') throw e
        await sleep(10)
      }
    }
    assert.ok(rfd >= 0, 'no descriptor arrived')
    const s = await sent
    assert.is(s.code, 0, s.out)
    c.destroy()
    const seg = Segment.joinSync(`memfd:${rfd}`, { peerType: 'futex' })
    assert.ok(seg.size >= 4096)
    seg.close()
    closeSync(rfd)
  } finally {
    // No child outlives the test: one still waiting (on a failure) is killed.
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
