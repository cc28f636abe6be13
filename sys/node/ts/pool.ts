// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/ts/pool.ts - sleeping peers in worker threads: servePool() starts
// N worker threads; each joins the segment with the futex peer type, binds
// one port (the pool serves ports port .. port+N-1, or the listed ones) and
// serves it with the handler a module exports, sleeping in waitSync()
// between requests. The main thread only starts and stops them: it never
// blocks. (A port is served by exactly one thread, as in the C peers.)
//
//   const pool = await servePool({ spec, port: 1, workers: 4, module: './handler.js' })
//   ... clients submit to ports 1..4 (pool.ports) ...
//   await pool.close()
//
// The handler module exports `handler` (or a default export): a Handler as
// for Port.serve(): respond()/fail() the request, or return (responded) or
// throw (failed with the error's code, else EIO); it may be async.
import { createRequire } from 'node:module'
import { isAbsolute, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker, isMainThread, parentPort } from 'node:worker_threads'
import { uint } from './core.js'
import { errnoNumber, xerror, XsegError } from './errors.js'
import type { Handler } from './port.js'
import { Segment } from './segment.js'

declare const __filename: string | undefined

export interface PoolOptions {
  /** The segment (it must exist). */
  spec: string
  /** The first port: the workers serve port, port+1, ... (or give `ports`). */
  port?: number
  /** The ports to serve, one worker each (instead of port + workers). */
  ports?: number[]
  /** How many workers (default 1; with `ports`: one per port). */
  workers?: number
  /** Path or file URL of the module exporting `handler` (or a default export). */
  module: string
  /** Spin this long (us) before sleeping (Segment.setSpin; default: the library's). */
  spinUs?: number
  /** Node options for the workers (e.g. ['--require', 'tsx/cjs'] for a TypeScript module). */
  execArgv?: string[]
}

export interface PoolStats {
  /** Requests each worker answered, by port. */
  served: Record<number, number>
}

export interface Pool {
  /** The ports served, one per worker. */
  readonly ports: readonly number[]
  /** The worker threads (for their resource limits, events...). */
  readonly workers: readonly Worker[]
  /** Stop the workers (they answer what they hold, leave their ports and exit). */
  close(): Promise<PoolStats>
  [Symbol.asyncDispose](): Promise<void>
}

interface Boot {
  __xsegPool: 1
  spec: string
  port: number
  module: string
  spinUs: number | undefined
  control: SharedArrayBuffer
}

type Msg = { ready: true } | { error: { code: string; message: string } } | { served: number }

/** This module's own file: the workers load it to run poolWorker(). */
function self(): string {
  if (typeof __filename === 'string') return __filename
  throw xerror('ENOENT', 'servePool cannot find its own module file')
}

const BOOT = `
const { workerData } = require('node:worker_threads')
const file = workerData.lib
const run = (m) => m._poolWorker(workerData.boot)
if (file.endsWith('.mjs')) import(require('node:url').pathToFileURL(file).href).then(run)
else run(require(file))
`

/**
 * Start a pool of worker threads serving ports with the handler of a module
 * (see the top of pool.ts). Resolves once every worker has bound its port;
 * rejects (and stops the others) if one cannot: EBUSY, ENOENT, or the
 * module's load error.
 */
export async function servePool(opts: PoolOptions): Promise<Pool> {
  if (typeof opts?.spec !== 'string') throw xerror('EINVAL', 'servePool needs a spec')
  if (typeof opts.module !== 'string' || !opts.module) throw xerror('EINVAL', 'servePool needs a handler module')
  let ports: number[]
  if (opts.ports) {
    ports = opts.ports.map((p) => uint(p, 'port'))
    if (opts.workers !== undefined && opts.workers !== ports.length)
      throw xerror('EINVAL', 'workers must match the number of ports')
  } else {
    const n = uint(opts.workers ?? 1, 'workers', 1024)
    const first = uint(opts.port, 'port')
    ports = Array.from({ length: n }, (_, i) => first + i)
  }
  if (!ports.length) throw xerror('EINVAL', 'a pool needs at least one worker')
  if (new Set(ports).size !== ports.length) throw xerror('EINVAL', 'a port can be served by one worker only')
  const spinUs = opts.spinUs === undefined ? undefined : uint(opts.spinUs, 'spinUs', 0xffffffff)
  const mod = opts.module.startsWith('file:') || isAbsolute(opts.module) ? opts.module : resolve(opts.module)
  // One word per worker: 1 asks it to stop.
  const control = new SharedArrayBuffer(4 * ports.length)
  const stopWords = new Int32Array(control)

  // The main thread joins too, only to wake the workers when it stops them.
  const seg = Segment.joinSync(opts.spec, { peerCheckMs: 0 })
  const served: Record<number, number> = {}
  const workers: Worker[] = []
  const exited: Promise<void>[] = []
  const ready: Promise<void>[] = []
  for (const [i, port] of ports.entries()) {
    const boot: Boot = { __xsegPool: 1, spec: opts.spec, port, module: mod, spinUs, control }
    const w = new Worker(BOOT, {
      eval: true,
      workerData: { lib: self(), boot: { ...boot, index: i } },
      execArgv: opts.execArgv ?? [],
    })
    workers.push(w)
    let failed: XsegError | undefined
    ready.push(new Promise<void>((res, rej) => {
      w.on('message', (m: Msg) => {
        if ('ready' in m) res()
        else if ('error' in m) {
          failed = new XsegError(m.error.code, m.error.message)
          rej(failed)
        } else if ('served' in m) served[port] = m.served
      })
      w.on('error', (e) => rej(e))
      w.on('exit', (code) => rej(failed ?? xerror('ECHILD', `the worker for port ${port} exited (${code}) before it was ready`)))
    }))
    exited.push(new Promise<void>((res) => w.on('exit', () => res())))
  }

  let closing: Promise<PoolStats> | undefined
  const close = (): Promise<PoolStats> => {
    closing ??= (async () => {
      for (const [i, port] of ports.entries()) {
        Atomics.store(stopWords, i, 1)
        try {
          seg.signal(port)
        } catch {
          // Not bound (any more): the worker is leaving anyway.
        }
      }
      await Promise.all(exited)
      seg.close()
      return { served }
    })()
    return closing
  }
  try {
    await Promise.all(ready)
  } catch (e) {
    await close()
    throw e
  }
  return {
    ports,
    workers,
    close,
    async [Symbol.asyncDispose]() {
      await close()
    },
  }
}

/** The body of a pool worker, which servePool starts: not for direct use. */
export async function _poolWorker(boot: Boot & { index: number }): Promise<void> {
  if (isMainThread || !parentPort) throw xerror('EPERM', '_poolWorker runs in a pool worker only')
  const post = (m: Msg): void => parentPort!.postMessage(m)
  const stop = new Int32Array(boot.control)
  let seg: Segment | undefined
  let served = 0
  try {
    const url = boot.module.startsWith('file:') ? boot.module : pathToFileURL(boot.module).href
    let m: { handler?: unknown; default?: unknown }
    try {
      m = createRequire(self())(fileURLToPath(url)) as typeof m
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw e
      m = (await import(url)) as typeof m
    }
    const d = m.default as { handler?: unknown } | undefined
    const handler = (m.handler ?? d?.handler ?? m.default) as Handler
    if (typeof handler !== 'function') throw xerror('EINVAL', `${boot.module} exports no handler function`)
    seg = Segment.joinSync(boot.spec, { peerType: 'futex', peerCheckMs: 0 })
    if (boot.spinUs !== undefined) seg.setSpin(boot.spinUs)
    const port = seg.bindPort(boot.port, { role: 'server' })
    post({ ready: true })
    while (Atomics.load(stop, boot.index) === 0) {
      const req = port.acceptSync()
      if (!req) {
        port.waitSync(1000)
        continue
      }
      served++
      try {
        const r = handler(req)
        if (r && typeof (r as Promise<void>).then === 'function') await r
        if (req.state === 'accepted') req.respond()
      } catch (e) {
        if (req.state === 'accepted') {
          const code = (e as { code?: unknown } | null)?.code
          req.fail((typeof code === 'string' && errnoNumber(code)) || 'EIO')
        }
      }
    }
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown }
    post({ error: { code: typeof err.code === 'string' ? err.code : 'EIO', message: String(err.message ?? e) } })
  } finally {
    seg?.close()
    post({ served })
  }
}
