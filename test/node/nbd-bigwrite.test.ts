// SPDX-License-Identifier: BSD-2-Clause
//
// Description: big WRITE payloads go from the socket straight into segment
// buffers (docs/nbd.md, The engine). The engine reads a connection's socket
// into its read buffer (256 KiB) and copies what it parsed there into the
// segment; a WRITE's payload is read straight into the buffer of its chunk's
// request when nothing else is buffered. After a WRITE of 64 KiB or more the
// next read into the read buffer takes at most 4 KiB (the next header and a
// little), and each chunk's request is taken before its payload is read, so
// pipelined 1 MiB WRITEs are copied only where a header and a payload share a
// read; small commands after them are parsed as before; every byte reads back.
import { randomBytes } from 'node:crypto'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient } from '../../peers/node/nbd/client'
import { within } from './helpers'
import { nbdSuiteEnv } from './nbd-env'

const SIZE = 32 << 20
const MIB = 1 << 20
const RBUF = 256 << 10		// the engine's read buffer (engine.h)
const SMALL_READ = 4096		// its read after a big WRITE (engine.h)

const S = suite('nbd gateway: big WRITE payloads')
// 64K chunks: a 1 MiB WRITE is 16 requests, each taken just before its payload is read.
const env = nbdSuiteEnv(S, { size: SIZE, segment: '16:512:64K', exports: [{ name: 'disk' }] })

S('16 pipelined 1 MiB WRITEs: at most one read buffer plus 4 KiB a command copied; every byte reads back', async () => {
  const e = env()
  if (!e) return
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  const N = 16
  try {
    const data = Array.from({ length: N }, () => randomBytes(MIB))
    const c0 = e.gw.engineStats()!.writeCopied
    await within(Promise.all(data.map((d, i) => c.write(i * MIB, d))), 60000, 'the pipelined writes')
    const copied = e.gw.engineStats()!.writeCopied - c0
    console.log(`  ${copied} of ${N * MIB} payload bytes copied from the read buffer`)
    // The first command may find a whole read buffer of its payload (nothing big came before it).
    assert.ok(copied <= RBUF + N * SMALL_READ, `${copied} bytes copied, at most ${RBUF + N * SMALL_READ} expected`)
    for (let i = 0; i < N; i++) assert.ok((await c.read(i * MIB, MIB)).equals(data[i]!), `MiB ${i} read back`)
  } finally {
    await c.disconnect()
  }
})

S('big and small commands pipelined together are all parsed and served', async () => {
  const e = env()
  if (!e) return
  const c = await NbdClient.connect({ unix: e.sock, export: 'disk' })
  try {
    // Sizes around the 64 KiB threshold and the 4 KiB read, odd ones included.
    const sizes = [MIB, 4096, 64 << 10, 512, MIB + 4096, (64 << 10) - 512, 100, 3 * MIB, 4096, 8192, 65 << 10, 1]
    const at: number[] = []
    let off = 0
    for (const n of sizes) {
      at.push(off)
      off += Math.ceil((n + 1) / 4096) * 4096
    }
    assert.ok(off <= SIZE)
    const data = sizes.map((n) => randomBytes(n))
    // Twice: the writes, reads of what was written and more writes all in flight together.
    await within(Promise.all(data.map((d, i) => c.write(at[i]!, d))), 60000, 'the mixed writes')
    const again = data.map((d) => randomBytes(d.length))
    const got = await within(Promise.all([
      ...data.map((d, i) => c.read(at[i]!, d.length)),
      ...again.map((d, i) => c.write(at[i]! + SIZE / 2, d)),
    ]), 60000, 'reads and writes together')
    for (let i = 0; i < sizes.length; i++) assert.ok((got[i] as Buffer).equals(data[i]!), `command ${i} (${sizes[i]} bytes) read back`)
    for (let i = 0; i < sizes.length; i++) {
      assert.ok((await c.read(at[i]! + SIZE / 2, again[i]!.length)).equals(again[i]!), `second write ${i} (${sizes[i]} bytes) read back`)
    }
  } finally {
    await c.disconnect()
  }
})

S.run()
