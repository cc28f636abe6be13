// SPDX-License-Identifier: BSD-2-Clause
//
// test/node/nbd-env.ts - the pipeline the NBD tests run against: a file of
// @size bytes behind C blockd on port 1 of a new segment, and an NbdGateway
// in the test's process on a unix socket (and TCP if asked), its log lines
// (debug excepted) collected.
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Segment, type Request } from '../../sys/node/ts/index'
import { NbdGateway, type NbdExport, type NbdGatewayOptions } from '../../peers/node/nbd/server'
import type { Test } from 'uvu'
import { cPeer, skipCheck, start, stop, uniqueSpec, type Child } from './helpers'

export const blockd = cPeer('blockd')

export interface NbdEnv {
  dir: string
  file: string
  sock: string
  seg: Segment
  d: Child
  gw: NbdGateway
  log: string[]
  uri: (exp?: string) => string
}

export function startBlockd(seg: Segment, file: string): Child {
  return start(blockd!, ['-g', seg.config.spec, '-p', '1', '-d', 'posixfd', '--file', file, '-q'])
}

/** Resolves once a live peer has bound @port. */
export async function bound(seg: Segment, port: number, ms = 10000): Promise<void> {
  const until = Date.now() + ms
  while (!(seg.portInfo(port).state === 'bound' && seg.portInfo(port).alive)) {
    if (Date.now() > until) throw new Error(`nobody bound port ${port}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export async function nbdEnv(o: { size: number, segment: string, exports: NbdExport[], tcp?: boolean,
  gw?: Partial<NbdGatewayOptions> }): Promise<NbdEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-nbd-'))
  const file = join(dir, 'disk.img')
  writeFileSync(file, Buffer.alloc(0))
  truncateSync(file, o.size)
  const seg = await Segment.create(uniqueSpec(o.segment), { destroyOnClose: true })
  const d = startBlockd(seg, file)
  await bound(seg, 1)
  const log: string[] = []
  const gw = new NbdGateway({
    segment: seg,
    storagePort: 1,
    exports: o.exports,
    logger: (level, line) => {
      if (level !== 'debug') log.push(line)
    },
    ...o.gw,
  })
  const sock = join(dir, 'nbd.sock')
  await gw.listen(o.tcp ? { unix: sock, tcp: '127.0.0.1:0' } : { unix: sock })
  return { dir, file, sock, seg, d, gw, log, uri: (exp = 'disk') => `nbd+unix:///${exp}?socket=${sock}` }
}

export async function nbdTeardown(e: NbdEnv | undefined): Promise<void> {
  if (!e) return
  await e.gw.close(1000).catch(() => undefined)
  e.d.kill('SIGCONT') // a test may have stopped it
  await stop(e.d)
  e.seg.close()
  rmSync(e.dir, { recursive: true, force: true })
}

/**
 * Whether C blockd is built. If not, says the suite is skipped, and throws
 * under CI=true (where a skip is a failure).
 */
export function haveBlockd(): boolean {
  if (blockd) return true
  skipCheck('lib/user/bin/blockd missing (make user)')
  return false
}

/**
 * One NbdEnv for the suite @s: made with nbdEnv(@o) before its tests and torn
 * down after them. Returns the getter of the env, undefined when blockd is not
 * built (the tests then return: a skip).
 */
export function nbdSuiteEnv(s: Test, o: Parameters<typeof nbdEnv>[0]): () => NbdEnv | undefined {
  let env: NbdEnv | undefined
  s.before(async () => {
    if (haveBlockd()) env = await nbdEnv(o)
  })
  s.after(async () => {
    await nbdTeardown(env)
    env = undefined
  })
  return () => env
}

/** Requests (with a @buf buffer) free in @seg right now: taken until none is left, then given back. */
export function freeRequests(seg: Segment, buf = 64 << 10): number {
  const p = seg.bindDynamicPort({ role: 'client' })
  const got: Request[] = []
  try {
    for (;;) {
      const r = p.tryRequest({ op: 'read', target: 'count', size: buf, dataLength: buf })
      if (!r) break
      got.push(r)
    }
  } finally {
    for (const r of got) r.release()
    p.close()
  }
  return got.length
}
