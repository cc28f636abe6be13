// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd.ts - what every `xseg` command shares: the Command shape
// that cli.ts dispatches on, the Context a command runs with, usage errors,
// the JSON contract (docs/cli.md, docs/cli.schema.json), number parsing and
// text tables. A new command is a module that exports a Command, plus one
// line in cli.ts's COMMANDS.
import type { ParseArgsConfig } from 'node:util'
import type { PeerType } from '../../../sys/node/ts/index.js'
import { SIZE_HELP, parseSize } from './size.js'

/** The version of the JSON documents (`schemaVersion`); a later one only adds keys. */
export const SCHEMA_VERSION = 1

/** A command line error: exit status 2, JSON error code 'USAGE'. */
export class Usage extends Error {
  readonly code = 'USAGE'
}

export type Options = NonNullable<ParseArgsConfig['options']>

export interface Context {
  /** The command's name, as typed. */
  command: string
  /** The positional arguments after the command. */
  args: string[]
  /** Its options, parsed (the common ones included). */
  opts: Record<string, string | boolean | undefined>
  /** --json: print exactly one JSON document (emit) and nothing else on stdout. */
  json: boolean
  peerType: PeerType
  /**
   * Print the command's result: with --json, @doc as one JSON document
   * ({schemaVersion, command, ...doc}); otherwise text() on stdout.
   */
  emit(doc: Record<string, unknown>, text: () => string): void
}

export interface Command {
  name: string
  /** Usage lines: the synopsis first, then what it does (indented). */
  usage: string
  /** Its options, beyond the common --json, --help, --peer-type. */
  options?: Options
  run(ctx: Context): number | Promise<number>
}

/** A JSON document of the contract: bigints become decimal strings. */
export function jsonDoc(command: string | null, doc: Record<string, unknown>): string {
  return JSON.stringify({ schemaVersion: SCHEMA_VERSION, command, ...doc },
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n'
}

/**
 * A non-negative integer option (a size, a count, a port): a SIZE of the one
 * grammar (size.ts: 4096, 4K, 64KiB, 1M...), or @def when absent. Usage error
 * naming @what otherwise, or when it passes Number.MAX_SAFE_INTEGER.
 */
export function num(v: string | boolean | undefined, what: string, def: number): number {
  if (v === undefined) return def
  const r = typeof v === 'string' ? parseSize(v) : 'syntax'
  if (r === 'syntax') throw new Usage(`${what}: '${String(v)}' is not a number (${SIZE_HELP})`)
  if (r === 'range' || r > BigInt(Number.MAX_SAFE_INTEGER)) throw new Usage(`${what}: '${String(v)}' is too large`)
  return Number(r)
}

/** The @q quantile (0..1) of @sorted (ascending), 0 when it is empty. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0
}

/**
 * blockFill - the content of [off, off + buf.length) of a volume written
 * with @seed: every 512-byte sector holds its byte offset and the seed in
 * its first 16 bytes (so a misplaced or stale write shows) and a filler
 * byte derived from both. Seed 0 is all zeroes (a trimmed range).
 * `xseg demo` and `xseg bench --verify` write and check it.
 */
export function blockFill(buf: Buffer, off: number, seed: number): void {
  if (seed === 0) {
    buf.fill(0)
    return
  }
  for (let b = 0; b < buf.length; b += 512) {
    const n = Math.min(512, buf.length - b)
    buf.fill((off + b + seed) & 0xff, b, b + n)
    if (n >= 16) {
      buf.writeDoubleLE(off + b, b)
      buf.writeDoubleLE(seed, b + 8)
    }
  }
}

/** A positive decimal number of seconds (0.5, 2), or @def when absent. */
export function seconds(v: string | boolean | undefined, what: string, def: number): number {
  if (v === undefined) return def
  const n = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN
  if (!(n > 0)) throw new Usage(`${what}: '${String(v)}' is not a positive number of seconds`)
  return n
}

/** The SPEC argument, or a usage error. */
export function needSpec(ctx: Context): string {
  const spec = ctx.args[0]
  if (!spec) throw new Usage(`${ctx.command} needs a SPEC`)
  if (ctx.args.length > 1) throw new Usage(`${ctx.command}: unexpected argument '${ctx.args[1]}'`)
  return spec
}

/**
 * A text table: @head and @rows of cells, columns padded to their widest
 * cell; columns listed in @right are right-aligned (numbers).
 */
export function table(head: string[], rows: (string | number)[][], right: number[] = []): string {
  const cells = [head, ...rows.map((r) => r.map(String))]
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells
    .map((r) => r.map((c, i) => (right.includes(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd())
    .join('\n') + '\n'
}
