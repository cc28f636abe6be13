// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/size.ts - the one size grammar of every xseg tool, the
// TypeScript twin of xseg/xseg_size.h (docs/cli.md#sizes):
//
//   SIZE = DIGITS [K|M|G|T] [B|iB]    any case, powers of 1024, iB only after a unit
//
// 4096 = 4096B = 4k = 4K = 4KB = 4KiB; KB means 1024, never 1000. Decimal
// digits only (no sign, spaces, 0x or fraction); more than 64 bits is an
// error. test/xseg/size-vectors.txt holds the vectors both are tested with.

const SHIFT: Record<string, bigint> = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n }
const U64_MAX = (1n << 64n) - 1n

/** A SIZE's value in bytes, or why it is none: 'syntax' (not a size), 'range' (over 64 bits). */
export function parseSize(s: string): bigint | 'syntax' | 'range' {
  const m = /^([0-9]+)(?:([kmgt])(i?b)?|(b))?$/i.exec(s)
  if (!m) return 'syntax'
  const v = BigInt(m[1]!) << SHIFT[(m[2] ?? '').toLowerCase()]!
  return v > U64_MAX ? 'range' : v
}

/** What a size option accepts, for error messages. */
export const SIZE_HELP = 'a number with an optional unit K, M, G or T (powers of 1024), e.g. 4096, 4K, 64KiB, 1M'

