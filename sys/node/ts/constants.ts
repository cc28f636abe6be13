// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/constants.ts - request ops and flags (xseg/xseg_layout.h).
import { native } from './binding.js'

/** Request ops, in the order of enum xseg_op. */
export const OPS = [
  'ping', 'read', 'write', 'sync', 'truncate', 'delete', 'info', 'copy', 'clone', 'snapshot',
  'acquire', 'release', 'open', 'close', 'mapr', 'mapw', 'hash', 'create', 'rename', 'update',
  'flush', 'discard', 'write_zeroes',
] as const

export type OpName = (typeof OPS)[number]

/** Op numbers by name: Op.read === 1. */
export const Op: { readonly [K in OpName]: number } = Object.freeze(
  Object.fromEntries(OPS.map((name, i) => [name, i])) as { [K in OpName]: number },
)

/** Request flags (XF_*). */
export const Flag = Object.freeze({
  /** Durable before the reply. */
  fua: 1 << 0,
  /** Flush before serving. */
  flush: 1 << 1,
  /** No durability wanted. */
  nosync: 1 << 2,
} as const)

export type FlagName = keyof typeof Flag

/** Peer types a Node process can join with (sys/node/registry_node.c). */
export type PeerType = 'posixfd' | 'futex'

// The addon and this file must agree: a mismatch is a build of another version.
{
  const names = native.op_names()
  if (names.length !== OPS.length || names.some((n, i) => n !== OPS[i]))
    throw new Error(`xseg: the addon's ops (${names.join(',')}) differ from this module's`)
}

export function opName(n: number): OpName | `op${number}` {
  return OPS[n] ?? `op${n}`
}
