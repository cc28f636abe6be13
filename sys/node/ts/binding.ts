// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/binding.ts - loads the native addon (sys/node/addon/) and
// describes its flat API. Nothing here validates: the classes in segment.ts,
// port.ts and request.ts do, before they call the binding.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { F } from './consts.gen.js'

/** The opaque segment handle of the addon. */
export type Handle = { readonly __xsegHandle: unique symbol }

export interface NativeConfig {
  type: string
  name: string
  nr_ports: number
  dynports: number
  nr_requests: number
  /** The reserve a growable segment was laid out for (nr_requests when not growable). */
  max_requests: number
  request_size: number
  extra_size: number
  page_shift: number
  mode: number
  gid: number
  autorm: boolean
  /** Entries of the peer-type table (peer_types=, 16 by default). */
  peer_types: number
  buffers: { size: number; count: number }[]
  spec: string
  layout_size: number
}

/** seg_grow: where growth stands (done false: a shrink waits for held requests). */
export interface NativeGrow {
  done: boolean
  live_requests: number
  live_chunks: number
  max_requests: number
  target: number
  added: number
  held: number
  bytes_released: number
}

/** The header fields seg_info and seg_peek share. */
export interface NativeHeaderFields {
  config: NativeConfig
  size: number
  major: number
  minor: number
  uid: number
  gid: number
  mode: number
  creator_pid: number
  ctime_ns: bigint
  attached: number
  autorm: boolean
  destroyed: boolean
}

export interface NativeSegInfo extends NativeHeaderFields {
  serial: bigint
  recoveries: number
  queue_cap: number
  /** Growth: requests and default-class chunks live now, and the target of a shrink in progress (else live). */
  live_requests: number
  live_chunks: number
  grow_target: number
  /** The named entries of the peer-type table (config.peer_types entries in all). */
  peer_types: string[]
  /** Owner, group and mode of the file or shm object (null without one). */
  file: NativeOwner | null
}

/** seg_peek: a header's fields, read without joining (xseg_peek). */
export interface NativeSegPeek extends NativeHeaderFields {
  /** Live joined processes. */
  pids: number[]
}

export interface NativeOwner {
  uid: number
  gid: number
  mode: number
}

export interface NativePortInfo {
  port: number
  state: 'free' | 'bound' | 'recovering' | 'binding'
  pid: number
  gen: number
  alive: boolean
  uid: number
  peer_type: string | null
  dynamic: boolean
  flags: number
  redirect: number | null
  requests_queued: number
  replies_queued: number
  counters: {
    submitted: number
    accepted: number
    responded: number
    received: number
    failed: number
    reclaimed: number
    /** Serviced bytes of the replies the port sent (as a server) and received (as a client). */
    bytesResponded: number
    bytesReceived: number
  }
  /** Per-port quota (0: unlimited) and what the port's current bind holds. */
  quota: { max_requests: number; requests: number; max_buffer: number; buffer: number }
  latency_us_log2: number[]
}

export interface NativeRecovery {
  ports_freed: number
  requests_failed: number
  requests_freed: number
  buffers_freed: number
  holds_settled: number
}

/** The addon's exports (sys/node/addon/*.cc documents each function). */
export interface Binding {
  errno: Record<string, number>
  napi_version: number
  /** The class every addon error is built with (errors.ts registers XsegError). */
  set_error_class(cls: new (code: string, message: string, opts: { errno: number; syscall?: string }) => Error): void
  op_names(): string[]
  seg_parse(spec: string): NativeConfig
  seg_create(spec: string): void
  seg_create_memfd(spec: string): number
  memfd_send(sock: number, fd: number): void
  memfd_recv(sock: number): number
  seg_check_spec(h: Handle, spec: string): void
  seg_set_owner(type: string, name: string, set: string): NativeOwner
  seg_join(type: string, name: string, peertype: string): Handle
  seg_leave(h: Handle): void
  seg_destroy(h: Handle): void
  seg_destroy_name(type: string, name: string): void
  seg_list(type: string): string[]
  seg_peek(type: string, name: string): NativeSegPeek
  seg_buffer(h: Handle): ArrayBuffer
  seg_info(h: Handle): NativeSegInfo
  seg_recover(h: Handle): NativeRecovery
  seg_verify(h: Handle): string[]
  seg_grow(h: Handle, n: number): NativeGrow
  seg_set_spin(h: Handle, us: number): void
  port_bind(h: Handle, port: number, flags?: number): number
  port_leave(h: Handle, port: number): void
  port_watch(h: Handle, port: number, fn: (status: number) => void): void
  port_unwatch(h: Handle, port: number): void
  port_ref(h: Handle, port: number, on: boolean): void
  port_signal(h: Handle, port: number): void
  port_wait(h: Handle, port: number, timeoutUs: number | bigint): number
  port_redirect(h: Handle, port: number, to: number): void
  port_info(h: Handle, port: number): NativePortInfo
  req_get(h: Handle, src: number): number
  req_prep(h: Handle, idx: number, target: string | Buffer | undefined, datalen: number): void
  req_set_io(h: Handle, idx: number, op: number, flags: number, offset: number | bigint, size: number): void
  req_field(h: Handle, idx: number, field: Field): number | bigint
  req_set_field(h: Handle, idx: number, field: Field, value: number | bigint): void
  req_target(h: Handle, idx: number): string
  req_data(h: Handle, idx: number): number
  /** The port it was queued to (dst or dst's redirect; signaled unless signal is false), or -EAGAIN. */
  req_submit(h: Handle, idx: number, dst: number, signal?: boolean): number
  req_accept(h: Handle, port: number): number
  req_accept_batch(h: Handle, port: number, out: Int32Array): number
  req_receive(h: Handle, port: number): number
  req_receive_batch(h: Handle, port: number, out: Int32Array): number
  req_respond(h: Handle, idx: number, signal?: boolean): number
  req_fail(h: Handle, idx: number, errno: number, signal?: boolean): number
  req_forward(h: Handle, idx: number, via: number, dst: number, signal?: boolean): number
  req_pass(h: Handle, idx: number, via: number, dst: number, signal?: boolean): number
  req_readdress(h: Handle, idx: number, target: string | Buffer, offset: bigint | number, flags: number): void
  req_put(h: Handle, idx: number): void
  /** Batch tables (batch.cc): each returns how many rows from `first` it did. */
  batch_get(h: Handle, src: number, rows: Uint32Array, first: number, n: number, targets: readonly (string | Buffer)[]): number
  batch_submit(h: Handle, dst: number, rows: Uint32Array, first: number, n: number): number
  batch_receive(h: Handle, port: number, rows: Uint32Array, first: number, n: number): number
  batch_accept(h: Handle, port: number, rows: Uint32Array, first: number, n: number): number
  batch_respond(h: Handle, rows: Uint32Array, first: number, n: number): number
  batch_put(h: Handle, rows: Uint32Array, first: number, n: number): number
}

// Field ids (F), request state bits (XS_*) and port flags (XSEG_PORT_*) come
// from the C headers through consts.gen.ts (sys/node/gen-consts.mjs).
export { B, F, XS_FAILED, XS_LIFE_SHIFT, XS_SERVED, XSEG_PORT_ACCEPT, XSEG_PORT_RECEIVE } from './consts.gen.js'
export type Field = (typeof F)[keyof typeof F]

declare const __dirname: string | undefined

function here(): string {
  // CommonJS (tsup's .js output, tsx) has __dirname; ESM has import.meta.url.
  if (typeof __dirname === 'string') return __dirname
  return dirname(fileURLToPath(import.meta.url))
}

/** The package root: the nearest directory up from here with binding.gyp. */
export function packageRoot(): string {
  let dir = here()
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`xseg: cannot find the package root (binding.gyp) above ${here()}`)
    dir = up
  }
}

function load(): Binding {
  // Not the bare `require`: bundlers give ESM output a stub that throws.
  const req = createRequire(join(here(), 'binding.js'))
  const explicit = process.env.XSEG_ADDON
  if (explicit) return req(explicit) as Binding
  const gypBuild = req('node-gyp-build') as (root: string) => unknown
  return gypBuild(packageRoot()) as Binding
}

/** The loaded addon (one per process; its state is per environment). */
export const native: Binding = load()
