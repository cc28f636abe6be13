// SPDX-License-Identifier: BSD-2-Clause
//
// Description: one error class. Failures of Segment.create/join, bindPort,
// submit and a raw port call are XsegErrors (the addon builds them, not
// only the TypeScript layer) with `code` the errno name, `errno` negative
// as Node's system errors (the same number os.constants.errno has),
// `syscall` the addon function, and a message that names the user's
// segment or port.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { NbdClient, NbdError, NbdGateway, Segment, XsegError } from '../../sys/node/ts/index'
import { uniqueSpec } from './helpers'

async function failure(fn: () => unknown): Promise<XsegError> {
  try {
    await fn()
  } catch (e) {
    assert.instance(e, XsegError, `${String(e)} is an XsegError`)
    assert.instance(e, Error)
    return e as XsegError
  }
  throw new Error('it did not fail')
}

function fields(e: XsegError, code: keyof typeof constants.errno, syscall: string, names: RegExp): void {
  assert.is(e.name, 'XsegError')
  assert.is(e.code, code)
  assert.is(e.errno, -constants.errno[code], `errno of ${code} is negative, as Node's`)
  assert.is(e.syscall, syscall)
  assert.ok(e.message.startsWith(`${code}: `), e.message)
  assert.match(e.message, names, 'the message names the object')
}

test('create and join', async () => {
  const spec = uniqueSpec('8:16:4K')
  const name = spec.split(':').slice(0, 2).join(':')
  fields(await failure(() => Segment.join(spec)), 'ENOENT', 'seg_join', new RegExp(`^ENOENT: ${name} does not exist`))
  await using seg = await Segment.create(spec, { destroyOnClose: true })
  fields(await failure(() => Segment.create(spec)), 'EEXIST', 'seg_create', new RegExp(`^EEXIST: ${name} exists already`))
  fields(await failure(() => Segment.createDetached(spec)), 'EEXIST', 'seg_create', new RegExp(name))
  assert.is(seg.name, name.split(':')[1])
})

test('bind and submit', async () => {
  const spec = uniqueSpec('8:16:4K:0:12:dynports=4')
  const name = spec.split(':').slice(0, 2).join(':')
  await using seg = await Segment.create(spec, { destroyOnClose: true })
  const p = seg.bindPort(1)
  fields(await failure(() => seg.bindPort(1)), 'EALREADY', 'port_bind', new RegExp(`^EALREADY: port 1 of ${name} is bound here already`))
  fields(await failure(() => seg.bindPort(5)), 'EINVAL', 'port_bind', new RegExp(`^EINVAL: port 5 of ${name} is not a static port`))
  const c = seg.bindDynamicPort()
  const dyn = [c]
  for (let i = 0; i < 16; i++) {
    try {
      dyn.push(seg.bindDynamicPort())
    } catch (e) {
      fields(e as XsegError, 'ENOSPC', 'port_bind', new RegExp(`^ENOSPC: ${name} has no free dynamic port`))
      break
    }
  }
  assert.ok(dyn.length < 16, 'the dynamic ports ran out')
  const r = c.request({ op: 'read', size: 4 })
  fields(await failure(() => r.submit(3)), 'ENOENT', 'req_submit', new RegExp(`^ENOENT: port 3 of ${name} is not bound`))
  r.release()
  // A call the TypeScript layer does not wrap: still the addon's XsegError.
  fields(await failure(() => seg.signal(3)), 'ENOENT', 'port_signal', /port_signal/)
  p.close()
})

test('what the TypeScript layer validates: XsegError with errno, no syscall', async () => {
  const e = await failure(() => Segment.parseSpec('posix:x:0'))
  assert.is(e.code, 'EINVAL')
  assert.is(e.errno, -constants.errno.EINVAL)
})

test('the NBD classes: bad gateway options, a client that cannot connect', async () => {
  await using seg = await Segment.create(uniqueSpec('8:16:4K'), { destroyOnClose: true })
  const e = await failure(() => new NbdGateway({ segment: seg, storagePort: -1, exports: [{ name: 'd' }], logger: null }))
  assert.is(e.code, 'EINVAL')
  assert.is(e.errno, -constants.errno.EINVAL)
  assert.match(e.message, /storagePort/)
  const sock = join(tmpdir(), `xseg-errors-${process.pid}-none.sock`) // never created
  const c = await failure(() => NbdClient.connect({ unix: sock, export: 'd', timeoutMs: 10000 }))
  assert.instance(c, NbdError)
  assert.is(c.code, 'ENOENT')
  assert.is(c.errno, -constants.errno.ENOENT)
  assert.is((c as NbdError).nbdError, 0, 'no NBD reply: a connection error')
  assert.ok(c.message.includes(sock), c.message)
})

test.run()
