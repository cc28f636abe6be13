// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/constants.ts - request ops and flags. Their numbers come from
// xseg/xseg_layout.h through consts.gen.ts (sys/node/gen-consts.mjs).
import { native } from './binding.js'
import { OPS, XF } from './consts.gen.js'

/** Request ops, in the order of enum xseg_op. */
export { OPS }

export type OpName = (typeof OPS)[number]

/** Op numbers by name: Op.read === 1. */
export const Op: { readonly [K in OpName]: number } = Object.freeze(
  Object.fromEntries(OPS.map((name, i) => [name, i])) as { [K in OpName]: number },
)

/** Request flags (XF_*): fua - durable before the reply; flush - flush before
 *  serving; nosync - no durability wanted. */
export const Flag: Readonly<typeof XF> = Object.freeze({ ...XF })

export type FlagName = keyof typeof Flag

/** Peer types a Node process can join with (sys/node/builtins.h). */
export type PeerType = 'posixfd' | 'futex' | 'segdev'

// The addon and this file must agree: a mismatch is a build of another version.
{
  const names = native.op_names()
  if (names.length !== OPS.length || names.some((n, i) => n !== OPS[i]))
    throw new Error(`xseg: the addon's ops (${names.join(',')}) differ from this module's`)
}

export function opName(n: number): OpName | `op${number}` {
  return OPS[n] ?? `op${n}`
}
