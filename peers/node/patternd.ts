// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/patternd.ts - the Node counterpart of peers/user/patternd.c: a
// request handler whose every target holds the fixed pattern of
// peers/user/pattern.h. READ returns it, WRITE succeeds only with data equal
// to it (EILSEQ otherwise), INFO reports the target size, PING, SYNC and
// FLUSH succeed, everything else fails with ENOTSUP. `xseg serve` runs it.
import { pattern, type Request } from '../../sys/node/ts/index.js'

function fail(code: string, message: string): never {
  throw Object.assign(new Error(message), { code })
}

/** Serve the pattern of peers/user/pattern.h, as patternd does. */
export function servePattern(req: Request, targetSize = 2 ** 40): void {
  const s = pattern.seed(req.target)
  switch (req.op) {
    case 'ping':
    case 'sync':
    case 'flush':
      return
    case 'info':
      if (req.data.length < 8) fail('EINVAL', 'no room for the size')
      req.data.writeBigUInt64LE(BigInt(targetSize), 0)
      req.serviced = 8
      return
    case 'read':
    case 'write': {
      const size = req.size
      const off = req.offset
      if (size > req.data.length) fail('EINVAL', 'the buffer cannot hold what was asked')
      if (off > BigInt(targetSize) || BigInt(size) > BigInt(targetSize) - off)
        fail('ENOSPC', 'past the end of the target')
      const view = req.data.subarray(0, size)
      if (req.op === 'read') pattern.fill(view, s, off)
      else if (pattern.check(view, s, off) !== size) fail('EILSEQ', 'the data differs from the pattern')
      req.serviced = size
      return
    }
    default:
      fail('ENOTSUP', `${req.op} is not supported`)
  }
}

