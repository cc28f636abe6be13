// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/listen.ts - the gateway's addresses: making way for a unix
// socket (only a stale socket is replaced), removing it at close (only if
// it is still ours), and parsing a TCP address. The sockets themselves are
// created by the engine (peers/node/nbd/engine/sockets.cc).
import { lstatSync, type Stats, unlinkSync } from 'node:fs'
import * as net from 'node:net'
import { xerror } from '../../../sys/node/ts/errors.js'

/** What the file at a path is, for error messages. */
function fileKind(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link'
  if (st.isDirectory()) return 'a directory'
  if (st.isFile()) return 'a regular file'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device'
  return 'not a socket'
}

/**
 * Make way for a unix socket at @path: nothing there is fine; a socket
 * nobody listens on (stale) is removed; anything else (a live socket, a
 * regular file, a directory, a symlink, whatever it points to) is refused
 * and left alone.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let st: Stats
  try {
    st = lstatSync(path)
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return
    throw e
  }
  if (!st.isSocket()) {
    throw xerror('EEXIST', `NbdGateway: ${path} exists and is ${fileKind(st)}, not a stale socket: not replacing it`)
  }
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(path)
    const t = setTimeout(() => {
      s.destroy()
      resolve(true) // no refusal: somebody is there
    }, 1000)
    s.once('connect', () => {
      clearTimeout(t)
      s.destroy()
      resolve(true)
    })
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t)
      resolve(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT')
    })
  })
  if (live) throw xerror('EADDRINUSE', `NbdGateway: ${path}: a server listens on this socket: not replacing it`)
  // The same file we looked at (not swapped in between): remove it.
  let now: Stats
  try {
    now = lstatSync(path)
  } catch {
    return
  }
  if (now.isSocket() && now.dev === st.dev && now.ino === st.ino) unlinkSync(path)
  else throw xerror('EEXIST', `NbdGateway: ${path} changed while it was checked: not replacing it`)
}

/** The identity of the socket file at @path (to remove it at close only if it is still that one). */
export function socketId(path: string): { dev: number; ino: number } {
  const st = lstatSync(path)
  return { dev: st.dev, ino: st.ino }
}

/** Remove the socket at @path if it is still the one @id names. */
export function removeOwnSocket(path: string, id: { dev: number; ino: number }): void {
  let st: Stats | null = null
  try {
    st = lstatSync(path)
  } catch {
    // Gone already.
  }
  if (st && st.isSocket() && st.dev === id.dev && st.ino === id.ino) {
    try {
      unlinkSync(path)
    } catch {
      // Gone already.
    }
  }
}

/** 'HOST:PORT', 'PORT', [v6]:PORT or { host, port }: host (default 127.0.0.1) and port. */
export function parseTcp(tcp: string | number | { host?: string; port: number }): { host: string; port: number } {
  let host = '127.0.0.1'
  let port: number
  if (typeof tcp === 'object') {
    host = tcp.host ?? host
    port = tcp.port
  } else {
    const s = String(tcp)
    const i = s.lastIndexOf(':')
    if (i >= 0) {
      host = s.slice(0, i).replace(/^\[(.*)\]$/, '$1') || host
      port = Number(s.slice(i + 1))
    } else port = Number(s)
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw xerror('EINVAL', `NbdGateway: bad TCP port in '${String(tcp)}'`)
  return { host, port }
}
