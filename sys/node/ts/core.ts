// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/core.ts - what a Segment shares with its Ports and Requests:
// the addon handle, the ArrayBuffer over the mapped segment, and whether it
// is closed. Internal: not exported by the package.
import { native, type Handle } from './binding.js'
import { xerror } from './errors.js'

export class Core {
  readonly h: Handle
  closed = false
  #ab: ArrayBuffer | undefined

  constructor(h: Handle) {
    this.h = h
  }

  /** The whole segment as an ArrayBuffer (zero-copy; detached at close). */
  ab(): ArrayBuffer {
    this.live()
    if (!this.#ab || this.#ab.byteLength === 0) this.#ab = native.seg_buffer(this.h)
    return this.#ab
  }

  /** Throw EBADF if the segment was closed. */
  live(): void {
    if (this.closed) throw xerror('EBADF', 'the segment is closed')
  }
}

/** A non-negative safe integer, or throw EINVAL naming @what. */
export function uint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(max)) return Number(v)
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw xerror('EINVAL', `${what} must be an integer between 0 and ${max}, not ${String(v)}`)
  return v
}

/** A 64-bit unsigned offset (number or bigint), or throw EINVAL. */
export function u64(v: unknown, what: string): number | bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v >= 1n << 64n) throw xerror('EINVAL', `${what} must be in [0, 2^64), not ${v}`)
    return v
  }
  return uint(v, what)
}
