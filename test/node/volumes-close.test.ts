// SPDX-License-Identifier: BSD-2-Clause
//
// Description: the gateway's CLOSE of a volume when the storage peer is down
// (test/node/volume-env.ts: C filed <- mapperd <- vlmcd, the gateway in the
// test's process). An NBD client has volume 'cv' open; filed is stopped;
// the client disconnects, so the gateway's CLOSE fails (ECONNREFUSED: the
// lock is at filed) and is retried in the background; filed is started
// again; the retry lands, and another gateway opens the volume without
// force. Then a snapshot read through the gateway pins it against rm until
// its client disconnects; and a gateway that closes while its CLOSE still
// fails tries once more and logs it. Skips (loudly) without the peers.
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { VolumeError } from '../../sys/node/ts/index'
import { NbdGateway } from '../../peers/node/nbd/server'
import { NbdClient } from '../../peers/node/nbd/client'
import { stop, within } from './helpers'
import { bound } from './nbd-env'
import { haveChain, startChainPeer, volumeEnv, volumeTeardown, type VolumeEnv } from './volume-env'

const MB = 1 << 20
let env: VolumeEnv | undefined
const S = suite('volume close retried')

S.before(async () => {
  if (!haveChain()) return
  env = await volumeEnv()
})

S.after(async () => {
  await volumeTeardown(env)
  env = undefined
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

S('a CLOSE that fails while the storage peer is down is retried until it lands; another gateway then opens the volume', async () => {
  if (!env) return
  const e = env
  await e.vols.create('cv', { size: 8 * MB, objectSize: MB })
  const c = await NbdClient.connect({ unix: e.sock, export: 'cv' })
  await c.write(0, Buffer.alloc(4096, 0x5a))
  assert.match((await e.vols.info('cv')).openBy ?? '', /test-gw/)
  await stop(e.peers.filed)
  await c.disconnect()
  await within((async () => {
    while (!e.log.some((l) => /closing volume 'cv': ECONNREFUSED.*trying again/.test(l))) await sleep(20)
  })(), 20000, 'the failed CLOSE logged')
  assert.ok(e.gw.volumes!.unclosed().has('cv'), 'the CLOSE is being retried')
  e.peers.filed = startChainPeer(e, 'filed')
  await bound(e.seg, 1)
  await within((async () => {
    while (!e.log.some((l) => /closed volume 'cv' \(after \d+ failed tries\)/.test(l))) await sleep(20)
  })(), 30000, 'the retried CLOSE landed')
  assert.is(e.gw.volumes!.unclosed().size, 0)
  assert.is((await e.vols.info('cv')).openBy, null)
  const other = new NbdGateway({ segment: e.seg, storagePort: 3, exports: [], volumes: { owner: 'other-gw' }, logger: null })
  try {
    await other.listen({ unix: join(e.dir, 'other.sock') })
    const c2 = await NbdClient.connect({ unix: join(e.dir, 'other.sock'), export: 'cv' })
    const b = await c2.read(0, 4096)
    assert.ok(b.every((x) => x === 0x5a))
    assert.match((await e.vols.info('cv')).openBy ?? '', /other-gw/)
    await c2.disconnect()
  } finally {
    await other.close(1000)
  }
})

S('a snapshot read through the gateway cannot be removed until its client is gone', async () => {
  if (!env) return
  const e = env
  await e.vols.snapshot('cv', 'mon')
  const c = await NbdClient.connect({ unix: e.sock, export: 'cv@mon' })
  assert.ok((await c.read(0, 4096)).every((x) => x === 0x5a))
  let err: unknown
  try {
    await e.vols.rm('cv@mon')
  } catch (x) {
    err = x
  }
  assert.instance(err, VolumeError)
  assert.is((err as VolumeError).code, 'EBUSY')
  assert.match((err as VolumeError).peerMessage ?? '', /cv@mon is open by test-gw/)
  await c.disconnect()
  await within((async () => {
    for (;;) {
      try {
        await e.vols.rm('cv@mon')
        return
      } catch (x) {
        if ((x as VolumeError).code !== 'EBUSY') throw x
        await sleep(20)
      }
    }
  })(), 10000, 'rm once the reader is gone')
  await e.vols.rm('cv')
})

S('a gateway that closes while a CLOSE is still failing tries it once more and logs it', async () => {
  if (!env) return
  const e = env
  const log: string[] = []
  const g = new NbdGateway({ segment: e.seg, storagePort: 3, exports: [], volumes: { owner: 'third-gw' },
    logger: (_l, line) => log.push(line) })
  const sock = join(e.dir, 'third.sock')
  await g.listen({ unix: sock })
  await e.vols.create('cx', { size: 8 * MB, objectSize: MB })
  const c = await NbdClient.connect({ unix: sock, export: 'cx' })
  await stop(e.peers.filed)
  try {
    await c.disconnect()
    await within((async () => {
      while (!log.some((l) => /closing volume 'cx': ECONNREFUSED.*trying again/.test(l))) await sleep(20)
    })(), 20000, 'the failed CLOSE logged')
    await g.close(1000)
    assert.ok(log.some((l) => /closing volume 'cx': ECONNREFUSED.*not retried: the gateway is closing/.test(l)), log.join('\n'))
  } finally {
    await g.close(1000)
    e.peers.filed = startChainPeer(e, 'filed')
    await bound(e.seg, 1)
  }
  // Its lock stays (a live tag of this process): force=1 is the way out, as documented.
  assert.match((await e.vols.info('cx')).openBy ?? '', /third-gw/)
})

S.run()
