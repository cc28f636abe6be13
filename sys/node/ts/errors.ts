// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/errors.ts - one error class, XsegError, for every failure the
// API throws or rejects with. The addon builds its errors with it
// (set_error_class below; throw_errno in sys/node/addon/addon.cc), the
// TypeScript layer throws it for what it validates, and 'ABORT_ERR' (name
// 'AbortError') when an AbortSignal ends a wait. Its fields follow Node's
// system errors: `code` the errno name, `errno` the errno negated (ENOENT is
// -2, as fs errors have it), `syscall` the addon function that failed.
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

export interface XsegErrorOptions {
  cause?: unknown
  /** The errno, negative as Node's (default: from the code's name). */
  errno?: number
  /** The addon function that failed. */
  syscall?: string
}

const BRAND = Symbol.for('xseg.XsegError')

export class XsegError extends Error {
  /**
   * `e instanceof XsegError` holds for the XsegErrors of every copy of this
   * module in the process (the CommonJS and the ESM build, the CLI's bundle):
   * the addon builds its errors with one of them only.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    if (this !== XsegError) return Function.prototype[Symbol.hasInstance].call(this, v)
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true
  }

  /** The errno name, e.g. 'EAGAIN', or 'ABORT_ERR'. */
  readonly code: string
  /** The errno negated (as Node's system errors: ENOENT is -2), when there is one. */
  readonly errno?: number
  /** The addon function that failed (for errors of the native layer). */
  readonly syscall?: string

  constructor(code: string, message: string, options?: XsegErrorOptions) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = code === 'ABORT_ERR' ? 'AbortError' : 'XsegError'
    this.code = code
    Object.defineProperty(this, BRAND, { value: true })
    const n = options?.errno ?? (native.errno[code] === undefined ? undefined : -native.errno[code]!)
    if (n !== undefined) this.errno = -Math.abs(n)
    if (options?.syscall !== undefined) this.syscall = options.syscall
  }
}

// The addon throws XsegErrors from now on (throw_errno in addon.cc).
native.set_error_class(XsegError)

/**
 * @e again, its message naming the user's object @what ("port 3 of
 * posix:demo"): "<what> <text(e)>", or "<what>: <the addon's words>" when
 * @text has none for it; same code, errno and syscall, @e is the cause.
 * Anything but an XsegError is returned as it is.
 */
export function about(e: unknown, what: string, text?: (e: XsegError) => string | undefined): unknown {
  if (!(e instanceof XsegError)) return e
  const t = text?.(e)
  const msg = t === undefined ? `${what}: ${e.message.slice(e.code.length + 2)}` : `${what} ${t} (${e.syscall ?? 'xseg'})`
  return new XsegError(e.code, msg, { cause: e, errno: e.errno, syscall: e.syscall })
}

/** An error with @code (an errno name) and @message. */
export function xerror(code: string, message: string): XsegError {
  return new XsegError(code, message)
}

/** The AbortError for @signal (its reason is the cause). */
export function abortError(signal: AbortSignal): XsegError {
  return new XsegError('ABORT_ERR', 'the operation was aborted', { cause: signal.reason })
}
