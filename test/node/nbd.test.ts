// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the NBD gateway (peers/node/nbd/) driven by real NBD clients
// from Debian (nbdinfo, qemu-io, qemu-img, nbdcopy) and by its own client,
// with C blockd serving a temp file behind it on a posix segment: sizes and
// flags, export lists, patterns written and read back, flush/trim/zeroes seen
// in the backing file, images copied in and out byte for byte, several
// connections at once, the `xseg nbd` command. Skips (loudly) without
// blockd or the tools; under CI=true that is a failure.
import { execFile } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { NbdClient, NbdError } from '../../peers/node/nbd/client'
import { ROOT, TSX, start, stop, within } from './helpers'
import { blockd, nbdEnv, nbdTeardown, type NbdEnv } from './nbd-env'

const run = promisify(execFile)
const TOOLS = ['nbdinfo', 'qemu-io', 'qemu-img', 'nbdcopy']

async function have(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`])
    return true
  } catch {
    return false
  }
}

const SIZE = 16 << 20

/** Run a tool; its output (stdout and stderr) and exit code, never a rejection. */
async function out(cmd: string, args: string[]): Promise<{ text: string; code: number }> {
  try {
    const r = await run(cmd, args)
    return { text: r.stdout + r.stderr, code: 0 }
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number }
    return { text: `${x.stdout ?? ''}${x.stderr ?? ''}`, code: typeof x.code === 'number' ? x.code : -1 }
  }
}

let env: NbdEnv | undefined

/** A file behind blockd on port 1 of a new segment, and a gateway in this process. */
function setup(): Promise<NbdEnv> {
  return nbdEnv({
    size: SIZE,
    segment: '16:256:64K',
    exports: [
      { name: 'disk', description: 'the test disk' },
      { name: 'ro', target: 'disk', readonly: true },
      { name: 'fixed', target: 'disk', size: 1 << 20 },
    ],
    tcp: true,
  })
}

/** @n bytes of the backing file at @off. */
function backing(e: NbdEnv, off: number, n: number): Buffer {
  const fd = openSync(e.file, 'r')
  try {
    const b = Buffer.alloc(n)
    readSync(fd, b, 0, n, off)
    return b
  } finally {
    closeSync(fd)
  }
}

function allBytes(b: Buffer, v: number): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== v) return false
  return true
}

const Nbd = suite('nbd gateway')

Nbd.before(async () => {
  const missing: string[] = []
  if (!blockd) missing.push('lib/user/bin/blockd (make user)')
  for (const t of TOOLS) if (!(await have(t))) missing.push(t)
  if (missing.length) {
    console.log(`  skip: ${missing.join(', ')} missing`)
    if (process.env.CI === 'true') throw new Error(`CI: ${missing.join(', ')} missing`)
    return
  }
  env = await setup()
})

Nbd.after(async () => {
  await nbdTeardown(env)
  env = undefined
})

Nbd('nbdinfo: size, flags, block sizes; --list names every export', async () => {
  if (!env) return
  const { stdout } = await run('nbdinfo', ['--json', env.uri()])
  const j = JSON.parse(stdout) as { protocol: string; exports: Record<string, unknown>[] }
  assert.is(j.protocol, 'newstyle-fixed')
  const x = j.exports[0]!
  assert.is(x['export-name'], 'disk')
  assert.is(x['export-size'], SIZE)
  assert.is(x.is_read_only, false)
  for (const k of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_multi_conn']) assert.is(x[k], true, k)
  assert.is(x.block_size_minimum, 1)
  assert.is(x.block_size_preferred, 4096)
  assert.is(x.block_size_maximum, env.gw.maxRequest)
  const ro = JSON.parse((await run('nbdinfo', ['--json', env.uri('ro')])).stdout) as typeof j
  assert.is(ro.exports[0]!.is_read_only, true)
  const fixed = JSON.parse((await run('nbdinfo', ['--json', env.uri('fixed')])).stdout) as typeof j
  assert.is(fixed.exports[0]!['export-size'], 1 << 20)
  const list = (await run('nbdinfo', ['--list', '--json', env.uri('')])).stdout
  const names = (JSON.parse(list) as typeof j).exports.map((e) => e['export-name'])
  assert.equal(names, ['disk', 'ro', 'fixed'])
  assert.match(list, /the test disk/)
  // TCP too, and the default export '' is the first one.
  const tcp = env.gw.addresses.tcp!
  const t = JSON.parse((await run('nbdinfo', ['--json', `nbd://127.0.0.1:${tcp.port}/`])).stdout) as typeof j
  assert.is(t.exports[0]!['export-size'], SIZE)
})

Nbd('qemu-io: patterns written and read back; flush, discard, write -z honoured in the file', async () => {
  if (!env) return
  const q = async (...cmds: string[]): Promise<{ stdout: string }> =>
    ({ stdout: (await out('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), env!.uri()])).text })
  const w = await q('write -P 0xab 0 1M', 'write -P 0xcd 1M 64k', 'flush', 'read -P 0xab 0 1M', 'read -P 0xcd 1M 64k')
  assert.not.match(w.stdout, /Pattern verification failed|error/i)
  assert.ok(allBytes(backing(env, 0, 1 << 20), 0xab), 'the file holds 0xab')
  assert.ok(allBytes(backing(env, 1 << 20, 65536), 0xcd), 'the file holds 0xcd')
  // FUA writes, unaligned ones, and a wrong pattern that must be caught.
  const f = await q('write -f -P 0x11 3000 5000', 'read -P 0x11 3000 5000', 'read -P 0xab 0 3000', 'read -P 0xab 8000 4192')
  assert.not.match(f.stdout, /Pattern verification failed|error/i)
  assert.ok(allBytes(backing(env, 3000, 5000), 0x11))
  const bad = await q('read -P 0x99 0 4k')
  assert.match(bad.stdout, /Pattern verification failed/)
  // Discard and write_zeroes read back as zeroes, in the file too.
  const z = await q('discard 0 64k', 'write -z 64k 64k', 'flush', 'read -P 0 0 128k', 'read -P 0xab 128k 64k')
  assert.not.match(z.stdout, /Pattern verification failed|error/i)
  assert.ok(allBytes(backing(env, 0, 128 << 10), 0), 'discarded and zeroed ranges are zero in the file')
  assert.ok(allBytes(backing(env, 128 << 10, 64 << 10), 0xab), 'the rest is untouched')
  // write -z with no unmap (NO_HOLE) as well.
  const nz = await q('write -P 0x77 256k 64k', 'write -z 256k 32k', 'read -P 0 256k 32k', 'read -P 0x77 288k 32k')
  assert.not.match(nz.stdout, /Pattern verification failed|error/i)
  // Past the end: an error for that command, the connection lives on.
  const end = await q(`read 16M 4k`, 'read -P 0xab 128k 4k')
  assert.match(end.stdout, /read failed|Input\/output error|Invalid argument|out of bounds|beyond/i)
  // The read-only export refuses writes.
  const ro = await out('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', env.uri('ro')])
  assert.match(ro.text, /read-only|Operation not permitted|permission/i)
})

Nbd('qemu-img convert and nbdcopy copy an image in and out byte for byte', async () => {
  if (!env) return
  const img = join(env.dir, 'src.img')
  const src = Buffer.alloc(4 << 20)
  randomFillSync(src)
  src.fill(0, 1 << 20, 2 << 20) // a zero run (qemu-img may send it as write_zeroes)
  writeFileSync(img, src)
  await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', img, env.uri()])
  assert.ok(backing(env, 0, src.length).equals(src), 'qemu-img wrote the image into the file')
  const out = join(env.dir, 'out.img')
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', env.uri(), out])
  await run('cmp', ['-n', String(src.length), img, out])
  // nbdcopy, with requests in flight on several connections.
  randomFillSync(src)
  writeFileSync(img, src)
  await run('nbdcopy', ['--connections=2', '--requests=16', img, env.uri()])
  assert.ok(backing(env, 0, src.length).equals(src), 'nbdcopy wrote the image into the file')
  const out2 = join(env.dir, 'out2.img')
  await run('nbdcopy', [env.uri(), out2])
  await run('cmp', ['-n', String(src.length), img, out2])
  assert.is(readFileSync(out2).length, SIZE)
})

Nbd('several connections at once, many commands in flight on each, all verified', async () => {
  if (!env) return
  const N = 4
  const clients = await Promise.all(Array.from({ length: N }, () => NbdClient.connect({ unix: env!.sock, export: 'disk' })))
  try {
    assert.is(clients[0]!.size, SIZE)
    assert.equal(clients[0]!.blockSize, { minimum: 1, preferred: 4096, maximum: env.gw.maxRequest })
    const base = 8 << 20
    const one = async (c: NbdClient, ci: number): Promise<void> => {
      const ops: Promise<void>[] = []
      for (let i = 0; i < 64; i++) {
        const off = base + (ci * 64 + i) * 8192
        const len = 512 + ((i * 977) % 7680)
        const data = Buffer.alloc(len, (ci * 64 + i) & 0xff)
        ops.push(c.write(off, data, { fua: i % 8 === 0 }).then(async () => {
          const back = await c.read(off, len)
          assert.ok(back.equals(data), `client ${ci} op ${i}`)
        }))
      }
      await Promise.all(ops)
    }
    // And a qemu-io alongside them.
    const qio = run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 12M 2M', '-c', 'read -P 0x5a 12M 2M', env.uri()])
    await within(Promise.all(clients.map(one)), 30000, 'clients')
    assert.not.match((await qio).stdout, /verification failed/)
    // Larger than one segment buffer (64K): split into several xseg requests.
    const big = Buffer.alloc(1 << 20)
    randomFillSync(big)
    await clients[0]!.write(4 << 20, big)
    assert.ok((await clients[1]!.read(4 << 20, big.length)).equals(big))
    await clients[2]!.flush()
    assert.ok(backing(env, 4 << 20, big.length).equals(big))
    // Trim and write_zeroes through the client.
    await clients[0]!.trim(4 << 20, 65536)
    await clients[0]!.writeZeroes((4 << 20) + 65536, 4096, { noHole: true })
    const z = await clients[3]!.read(4 << 20, 65536 + 4096)
    assert.ok(allBytes(z, 0))
  } finally {
    await Promise.all(clients.map((c) => c.disconnect()))
  }
  const until = Date.now() + 5000
  while (env.gw.stats().connections && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  assert.is(env.gw.stats().connections, 0)
})

Nbd('the client: errors as codes', async () => {
  if (!env) return
  assert.equal(await NbdClient.list({ unix: env.sock }), ['disk', 'ro', 'fixed'])
  const err = await NbdClient.connect({ unix: env.sock, export: 'nope' }).catch((e: NbdError) => e)
  assert.instance(err, NbdError)
  assert.is((err as NbdError).code, 'ENOENT')
  const ro = await NbdClient.connect({ unix: env.sock, export: 'ro' })
  try {
    assert.ok(ro.readonly)
    assert.is(await ro.write(0, Buffer.alloc(512)).catch((e: NbdError) => e.code), 'EPERM')
    assert.is(await ro.read(SIZE - 10, 20).catch((e: NbdError) => e.code), 'EINVAL')
    assert.is(await ro.read(0, 32 << 20).catch((e: NbdError) => e.code), 'EOVERFLOW')
    assert.is((await ro.read(SIZE - 10, 10)).length, 10)
  } finally {
    await ro.disconnect()
  }
})

Nbd('xseg nbd: the command serves until SIGTERM', async () => {
  if (!env) return
  const sock = join(env.dir, 'cli.sock')
  const cli = start(process.execPath, ['--require', TSX, join(ROOT, 'peers', 'node', 'cli', 'cli.ts'), 'nbd', env.seg.config.spec,
    '--storage-port', '1', '--unix', sock, '--export', 'vol=disk,size=1M,description=from the cli'])
  try {
    await cli.waitFor(/^listening nbd\+unix:\/\/\/vol\?socket=/, 20000)
    const j = JSON.parse((await run('nbdinfo', ['--json', `nbd+unix:///vol?socket=${sock}`])).stdout) as { exports: Record<string, unknown>[] }
    assert.is(j.exports[0]!['export-size'], 1 << 20)
  } finally {
    assert.is(await stop(cli), 0, cli.stderr())
  }
  const usage = start(process.execPath, ['--require', TSX, join(ROOT, 'peers', 'node', 'cli', 'cli.ts'), 'nbd', env.seg.config.spec, '--unix', sock])
  assert.is(await usage.exited, 2)
})

Nbd.run()
