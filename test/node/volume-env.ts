// SPDX-License-Identifier: BSD-2-Clause
//
// test/node/volume-env.ts - the real volume chain for the tests: C filed
// (port 1, objects in a temp dir) <- mapperd (port 2) <- vlmcd (port 3) on
// a new segment, a Volumes client, and an NbdGateway in volume mode in the
// test's process on a unix socket. Everything is torn down by
// volumeTeardown(), which also removes the temp dir.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Segment, Volumes } from '../../sys/node/ts/index'
import { NbdGateway } from '../../peers/node/nbd/server'
import { cPeer, skipCheck, start, stop, uniqueSpec, type Child } from './helpers'
import { bound } from './nbd-env'

export const CHAIN = ['filed', 'mapperd', 'vlmcd'] as const

export interface VolumeEnv {
  dir: string
  seg: Segment
  peers: Record<(typeof CHAIN)[number], Child>
  vols: Volumes
  gw: NbdGateway
  sock: string
  log: string[]
  uri: (exp: string) => string
}

/** Whether filed, mapperd and vlmcd are built; says so (a failure under CI=true) when not. */
export function haveChain(): boolean {
  const missing = CHAIN.filter((p) => !cPeer(p))
  if (!missing.length) return true
  skipCheck(`${missing.join(', ')} missing (make user)`)
  return false
}

/** Start peer @name of the chain on its port (1, 2, 3). */
export function startChainPeer(e: { seg: Segment; dir: string }, name: (typeof CHAIN)[number]): Child {
  const spec = e.seg.config.spec
  const common = ['-g', spec, '-d', 'posixfd', '-q']
  switch (name) {
    case 'filed':
      return start(cPeer('filed')!, [...common, '-p', '1', '--dir', join(e.dir, 'objects')])
    case 'mapperd':
      return start(cPeer('mapperd')!, [...common, '-p', '2', '--storage', '1'])
    case 'vlmcd':
      return start(cPeer('vlmcd')!, [...common, '-p', '3', '--mapper', '2', '--storage', '1'])
  }
}

export async function volumeEnv(o: { owner?: string } = {}): Promise<VolumeEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-vol-'))
  // Dynamic ports for mapperd's workers and the clients; 1 MiB buffers for 1 MiB I/O.
  const seg = await Segment.create(uniqueSpec('64:1024:64K:0:12:dynports=48:buffers=1M*32'), { destroyOnClose: true })
  const peers = {} as VolumeEnv['peers']
  for (const [i, p] of CHAIN.entries()) {
    peers[p] = startChainPeer({ seg, dir }, p)
    await bound(seg, i + 1)
  }
  const log: string[] = []
  const gw = new NbdGateway({ segment: seg, storagePort: 3, exports: [], volumes: { owner: o.owner ?? 'test-gw' },
    logger: (l, line) => {
      if (l !== 'debug') log.push(line)
    } })
  const sock = join(dir, 'nbd.sock')
  await gw.listen({ unix: sock })
  const vols = new Volumes(seg.bindDynamicPort(), 3, { timeoutMs: 30000 })
  return { dir, seg, peers, vols, gw, sock, log, uri: (v) => `nbd+unix:///${v}?socket=${sock}` }
}

export async function volumeTeardown(e: VolumeEnv | undefined): Promise<void> {
  if (!e) return
  await e.gw.close(1000).catch(() => undefined)
  for (const p of [...CHAIN].reverse()) if (e.peers[p]) await stop(e.peers[p])
  e.seg.close()
  rmSync(e.dir, { recursive: true, force: true })
}
