// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/errors.ts - errors cross boundaries as codes. The addon throws
// Errors whose `code` is the errno name ('EAGAIN', 'EPERM'...); the
// TypeScript layer throws the same kind (XsegError) for what it validates,
// and 'ABORT_ERR' (name 'AbortError') when an AbortSignal ends a wait.
import { native } from './binding.js'

const byNumber = new Map<number, string>()
for (const [name, n] of Object.entries(native.errno)) if (!byNumber.has(n)) byNumber.set(n, name)

/** The errno name of a positive errno number ('E' + n when unknown). */
export function errnoName(n: number): string {
  return byNumber.get(Math.abs(n)) ?? `E${Math.abs(n)}`
}

/** The errno number of a name ('EIO' -> 5), or undefined. */
export function errnoNumber(code: string): number | undefined {
  return native.errno[code]
}

export class XsegError extends Error {
  /** The errno name, e.g. 'EAGAIN', or 'ABORT_ERR'. */
  readonly code: string
  /** The negative errno (as Node's system errors), when there is one. */
  readonly errno?: number

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options)
    this.name = code === 'ABORT_ERR' ? 'AbortError' : 'XsegError'
    this.code = code
    const n = native.errno[code]
    if (n !== undefined) this.errno = -n
  }
}

/** An error with @code (an errno name) and @message. */
export function xerror(code: string, message: string): XsegError {
  return new XsegError(code, message)
}

/** The AbortError for @signal (its reason is the cause). */
export function abortError(signal: AbortSignal): XsegError {
  return new XsegError('ABORT_ERR', 'the operation was aborted', { cause: signal.reason })
}
