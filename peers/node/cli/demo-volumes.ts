// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/demo-volumes.ts - the volume scene of `xseg demo`: the
// chain filed <- mapperd <- vlmcd and the gateway in volume mode under the
// serve supervisor (a [volumes] pipeline), and through it:
//
//   vol create     a thin volume (Volumes.create)
//   vol write      generation 1 over its first part, random extents
//   snapshot       vol@snap1
//   vol overwrite  generation 2 over every other extent (first writes copy)
//   clone          clone1 from vol@snap1
//   clone write    generation 3 over a few extents of the clone
//   verify snap    every byte of the snapshot is generation 1
//   verify clone   generation 1, with the clone's own writes
//   verify vol     generations 1 and 2 where they were written
//
// Each is a row of the demo's table; a wrong byte stops the demo.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Segment, Volumes } from '../../../sys/node/ts/index.js'
import { NbdClient } from '../nbd/client.js'
import { blockFill } from './cmd.js'
import { Pipeline, resolveProgram, type ServeConfig } from './serve.js'
import { type DemoOptions, type Extent, type PhaseResult, Bar, extents, mismatch, pool } from './demo.js'

export async function volumeScene(o: DemoOptions, say: (s: string) => void, results: PhaseResult[]): Promise<void> {
  const names = ['filed', 'mapperd', 'vlmcd']
  const [filed, mapperd, vlmcd] = names.map((p) => resolveProgram(p, process.cwd()))
  const missing = names.filter((_, i) => ![filed, mapperd, vlmcd][i])
  if (missing.length || !filed || !mapperd || !vlmcd) throw Object.assign(new Error(`${missing.join(', ')} not built: run \`make demo\` (or make user) first`), { code: 'ENOENT' })
  const dir = mkdtempSync(join(tmpdir(), 'xseg-demo-vol-'))
  const sock = join(dir, 'nbd.sock')
  const spec = `posix:xseg-demo-vol-${process.pid}:64:512:64K:0:12:dynports=48`
  const cfg: ServeConfig = {
    spec, create: true, destroyOnExit: true, stopGraceMs: 10000,
    peers: [
      { name: 'filed', program: filed, port: 1, driver: 'posixfd', args: ['--dir', join(dir, 'objects')], restart: 'always' },
      { name: 'mapperd', program: mapperd, port: 2, driver: 'posixfd', args: ['--storage', '1'], restart: 'always' },
      { name: 'vlmcd', program: vlmcd, port: 3, driver: 'posixfd', args: ['--mapper', '2', '--storage', '1'], restart: 'always' },
    ],
    volumes: { storagePort: 1, mapperPort: 2, composerPort: 3 },
    nbd: { storagePort: 3, volumes: true, unix: sock, driver: 'posixfd', restart: 'always', exports: [] },
  }
  const pipe = new Pipeline(cfg)
  pipe.on('log', (line) => {
    if (o.verbose) process.stderr.write(`  serve: ${line}\n`)
  })
  const size = Math.max(16 << 20, Math.floor(o.size / 4 / (1 << 20)) * (1 << 20))
  const region = size / 2
  const scratch = Buffer.alloc(256 * 1024)
  let seg: Segment | undefined
  const clients: NbdClient[] = []
  try {
    say(`\nvolume scene: filed <- mapperd <- vlmcd on ${spec}, volumes over NBD on ${sock}`)
    await pipe.start()
    seg = Segment.joinSync(spec)
    const vols = new Volumes(seg.bindDynamicPort(), 3)
    const connect = async (name: string): Promise<NbdClient> => {
      const c = await NbdClient.connect({ unix: sock, export: name })
      clients.push(c)
      return c
    }
    const step = async (name: string, f: () => Promise<void>, note = ''): Promise<void> => {
      const t0 = process.hrtime.bigint()
      await f()
      const us = Number(process.hrtime.bigint() - t0) / 1000
      results.push({ phase: name, requests: 1, bytes: 0, seconds: us / 1e6, errors: 0, lat: [us], note })
      if (!o.progress) say(`  ${name.padEnd(13)} ${(us / 1000).toFixed(1)} ms`)
    }
    const phase = async (name: string, items: Extent[], op: (e: Extent) => Promise<void>, note = ''): Promise<void> => {
      const r: PhaseResult = { phase: name, requests: 0, bytes: 0, seconds: 0, errors: 0, lat: [], note }
      const bar = new Bar(o.progress, name, items.reduce((s, e) => s + e.len, 0))
      const t0 = process.hrtime.bigint()
      try {
        await pool(items, o.depth, (e) => e.len, bar, async (e) => {
          const t = process.hrtime.bigint()
          await op(e)
          r.lat.push(Number(process.hrtime.bigint() - t) / 1000)
          r.requests++
          r.bytes += e.len
        })
      } finally {
        bar.stop()
      }
      r.seconds = Number(process.hrtime.bigint() - t0) / 1e9
      results.push(r)
      if (!o.progress) say(`  ${name.padEnd(13)} ${r.requests} requests, ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.seconds.toFixed(2)} s`)
    }
    const write = (c: NbdClient, gen: number) => async (e: Extent): Promise<void> => {
      const buf = Buffer.allocUnsafe(e.len)
      // Seeds differ per generation: a block of the wrong generation shows.
      blockFillGen(buf, e.off, gen)
      await c.write(e.off, buf)
    }
    const check = (c: NbdClient, what: string, gen: (e: Extent) => number) => async (e: Extent): Promise<void> => {
      const data = await c.read(e.off, e.len)
      const bad = mismatch(data, e.off, seedOf(gen(e)), scratch)
      if (bad >= 0) throw new Error(`${what}: the byte at offset ${bad} is not generation ${gen(e)}`)
    }

    await step('vol create', () => vols.create('vol', { size, objectSize: 1 << 20 }), `${size / 2 ** 20} MiB in 1 MiB objects, thin: none stored yet`)
    const v = await connect('vol')
    const ext = extents(region)
    const gens = new Map<Extent, number>()
    await phase('vol write', ext, async (e) => {
      await write(v, 1)(e)
      gens.set(e, 1)
    })
    await v.flush()
    await step('snapshot', () => vols.snapshot('vol', 'snap1'), 'vol@snap1, read-only')
    const over = ext.filter((_, i) => i % 2 === 0)
    await phase('vol overwrite', over, async (e) => {
      await write(v, 2)(e)
      gens.set(e, 2)
    }, 'first writes to objects shared with the snapshot copy them')
    await v.flush()
    await step('clone', () => vols.clone('vol@snap1', 'clone1'), 'clone1 from vol@snap1, sharing every object')
    const k = await connect('clone1')
    const own = ext.filter((_, i) => i % 7 === 3)
    await phase('clone write', own, write(k, 3))
    await k.flush()
    const s = await connect('vol@snap1')
    await phase('verify snap', ext, check(s, 'the snapshot', () => 1), 'every byte as it was at the snapshot')
    const ownSet = new Set(own)
    await phase('verify clone', ext, check(k, 'the clone', (e) => (ownSet.has(e) ? 3 : 1)), "the snapshot's bytes and its own writes")
    await phase('verify vol', ext, check(v, 'the volume', (e) => gens.get(e)!), 'generations 1 and 2')
    const i = await vols.info('clone1')
    const vi = await vols.info('vol')
    results[results.length - 1]!.note += `; vol maps ${vi.objects} objects (${vi.bytes / 2 ** 20} MiB written since the snapshot), ` +
      `clone1 ${i.objects} (${i.bytes / 2 ** 20} MiB its own)`
  } finally {
    for (const c of clients) await c.disconnect().catch(() => c.close())
    seg?.close()
    await pipe.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The seed of generation @gen (blockFill's; 0 would be zeroes). */
function seedOf(gen: number): number {
  return 100 + gen
}

function blockFillGen(buf: Buffer, off: number, gen: number): void {
  blockFill(buf, off, seedOf(gen))
}
