// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/serve.ts - `xseg serve CONFIG`: a pipeline from a small TOML
// file (a segment, its peers, NBD exports), supervised.
//
// The supervisor creates (or joins) the segment, starts every peer as a child
// process on its port and waits until the port is bound by that child, then
// starts the NBD gateway (`xseg nbd`, also a child). When a child dies, it
// runs recovery on the segment (the dead peer's requests fail back to their
// clients, its port is freed) and restarts it, with a backoff that grows
// while it keeps dying. SIGINT/SIGTERM stop the gateway first, then the
// peers (SIGTERM, SIGKILL after a grace period), and destroy the segment if
// the supervisor created it and the config asks for it. docs/serve.md
// documents the file.
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { Segment } from '../../../sys/node/ts/index.js'
import { packageRoot } from '../../../sys/node/ts/binding.js'
import { parseListen, renderMetrics, serveMetrics } from './metrics.js'
import { XsegError, xerror } from '../../../sys/node/ts/errors.js'

/** The package root (the directory with binding.gyp), from lib/node/cli.js or from the source. */
export const ROOT = packageRoot()

export type Restart = 'always' | 'on-failure' | 'never'

export interface PeerConfig {
  name: string
  program: string // resolved path
  port: number
  driver: string
  args: string[]
  restart: Restart
}

export interface ExportConfig {
  name: string
  target: string
  readonly: boolean
  description?: string
}

export interface NbdConfig {
  storagePort: number
  /** Volume mode (xseg nbd --volumes): export names are volumes at vlmcd on storagePort. */
  volumes?: boolean
  unix?: string
  tcp?: string
  driver: string
  exports: ExportConfig[]
  restart: Restart
  /** Seconds (xseg nbd --request-timeout); default the gateway's. */
  requestTimeout?: number
  /** TLS (xseg nbd --tls, --tls-certificates): 'off' (default), 'on' or 'require'. */
  tls?: 'off' | 'on' | 'require'
  tlsCertificates?: string
}

/** The volume chain of [volumes]: storage peer <- mapperd <- vlmcd (both added to peers). */
export interface VolumesConfig {
  storagePort: number
  mapperPort: number
  composerPort: number
}

export interface ServeConfig {
  spec: string
  volumes?: VolumesConfig
  create: boolean
  destroyOnExit: boolean
  peers: PeerConfig[]
  nbd?: NbdConfig
  stopGraceMs: number
  /** [metrics] listen: HOST:PORT of the OpenMetrics endpoint (metrics.ts). */
  metricsListen?: string
}

/** A bad serve config: an XsegError with code EINVAL, its message naming the file and key. */
export class ConfigError extends XsegError {
  constructor(message: string) {
    super('EINVAL', message)
    this.name = 'ConfigError'
  }
}

type Table = Record<string, unknown>

/** Where a program name resolves: a path (relative to the config), lib/user/bin, then PATH. */
export function resolveProgram(program: string, base: string): string | null {
  if (program.includes('/')) {
    const p = isAbsolute(program) ? program : resolve(base, program)
    return existsSync(p) ? p : null
  }
  const dirs = [join(ROOT, 'lib/user/bin'), ...(process.env.PATH ?? '').split(delimiter)]
  for (const d of dirs) {
    const p = join(d, program)
    try {
      if (statSync(p).isFile()) return p
    } catch {
      // not here
    }
  }
  return null
}

function check(cond: boolean, where: string, msg: string): asserts cond {
  if (!cond) throw new ConfigError(`${where}: ${msg}`)
}

function str(t: Table, key: string, where: string, def?: string): string {
  const v = t[key] ?? def
  check(typeof v === 'string', `${where}.${key}`, v === undefined ? 'is required' : `must be a string, not ${JSON.stringify(v)}`)
  return v
}

function int(t: Table, key: string, where: string, def?: number): number {
  const v = t[key] ?? def
  check(typeof v === 'number' && Number.isInteger(v) && v >= 0, `${where}.${key}`,
    v === undefined ? 'is required' : `must be a non-negative integer, not ${JSON.stringify(v)}`)
  return v
}

function bool(t: Table, key: string, where: string, def: boolean): boolean {
  const v = t[key] ?? def
  check(typeof v === 'boolean', `${where}.${key}`, `must be true or false, not ${JSON.stringify(v)}`)
  return v
}

function restart(t: Table, where: string): Restart {
  const v = str(t, 'restart', where, 'always')
  check(v === 'always' || v === 'on-failure' || v === 'never', `${where}.restart`, `must be always, on-failure or never, not '${v}'`)
  return v
}

function known(t: Table, keys: string[], where: string): void {
  for (const k of Object.keys(t)) check(keys.includes(k), where, `unknown key '${k}' (known: ${keys.join(', ')})`)
}

/**
 * Parse and validate a serve config. @file names it in errors and anchors
 * relative paths. Every error names the file and the key.
 */
export function parseServeConfig(text: string, file: string): ServeConfig {
  let doc: Table
  try {
    doc = parseToml(text) as Table
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message.split('\n')[0]}`)
  }
  const base = dirname(resolve(file))
  known(doc, ['segment', 'peer', 'volumes', 'nbd', 'metrics'], file)
  const seg = doc.segment as Table | undefined
  check(typeof seg === 'object' && seg !== null && !Array.isArray(seg), `${file}: segment`, 'a [segment] table is required')
  known(seg, ['spec', 'create', 'destroy-on-exit', 'stop-grace-ms'], `${file}: segment`)
  const spec = str(seg, 'spec', `${file}: segment`)
  try {
    Segment.parseSpec(spec)
  } catch (e) {
    throw new ConfigError(`${file}: segment.spec: ${(e as Error).message}`)
  }
  const cfg: ServeConfig = {
    spec,
    create: bool(seg, 'create', `${file}: segment`, true),
    destroyOnExit: bool(seg, 'destroy-on-exit', `${file}: segment`, true),
    stopGraceMs: int(seg, 'stop-grace-ms', `${file}: segment`, 10000),
    peers: [],
  }
  const nrPorts = Segment.parseSpec(spec).nrPorts
  const peers = (doc.peer ?? []) as unknown
  check(Array.isArray(peers), `${file}: peer`, 'must be an array of tables ([[peer]])')
  const ports = new Map<number, string>()
  peers.forEach((p: unknown, i: number) => {
    const where = `${file}: peer[${i}]`
    check(typeof p === 'object' && p !== null && !Array.isArray(p), where, 'must be a table')
    const t = p as Table
    known(t, ['name', 'program', 'port', 'driver', 'args', 'restart'], where)
    const program = str(t, 'program', where)
    const name = str(t, 'name', where, program.split('/').pop())
    const port = int(t, 'port', where)
    check(port < nrPorts, `${where}.port`, `${port} is not below the segment's ${nrPorts} ports`)
    check(!ports.has(port), `${where}.port`, `port ${port} is already used by peer '${ports.get(port)}'`)
    ports.set(port, name)
    const args = t.args ?? []
    check(Array.isArray(args) && args.every((a) => typeof a === 'string'), `${where}.args`, 'must be an array of strings')
    const path = resolveProgram(program, base)
    check(path !== null, `${where}.program`, `'${program}' not found (looked in ${join(ROOT, 'lib/user/bin')} and PATH; run make)`)
    check(!cfg.peers.some((q) => q.name === name), `${where}.name`, `'${name}' names two peers`)
    cfg.peers.push({ name, program: path, port, driver: str(t, 'driver', where, 'posixfd'), args: args as string[], restart: restart(t, where) })
  })
  if (doc.volumes !== undefined) {
    // The chain: the storage peer is a [[peer]]; mapperd and vlmcd are added after it, supervised the same way.
    const where = `${file}: volumes`
    check(typeof doc.volumes === 'object' && doc.volumes !== null && !Array.isArray(doc.volumes), where, 'must be a table')
    const t = doc.volumes as Table
    known(t, ['storage-port', 'mapper-port', 'composer-port', 'mapper-program', 'composer-program', 'mapper-args',
      'composer-args', 'driver', 'restart'], where)
    const storagePort = int(t, 'storage-port', where)
    check(ports.has(storagePort), `${where}.storage-port`, `no [[peer]] is on port ${storagePort} (the storage peer: filed, radosd)`)
    const v: VolumesConfig = { storagePort, mapperPort: int(t, 'mapper-port', where), composerPort: int(t, 'composer-port', where) }
    const driver = str(t, 'driver', where, 'posixfd')
    const rs = restart(t, where)
    for (const [role, name, port, args] of [
      ['mapper', 'mapperd', v.mapperPort, ['--storage', String(storagePort)]],
      ['composer', 'vlmcd', v.composerPort, ['--mapper', String(v.mapperPort), '--storage', String(storagePort)]],
    ] as const) {
      const key = `${role}-port`
      check(port < nrPorts, `${where}.${key}`, `${port} is not below the segment's ${nrPorts} ports`)
      check(!ports.has(port), `${where}.${key}`, `port ${port} is already used by peer '${ports.get(port)}'`)
      ports.set(port, name)
      const program = str(t, `${role}-program`, where, name)
      const path = resolveProgram(program, base)
      check(path !== null, `${where}.${role}-program`, `'${program}' not found (looked in ${join(ROOT, 'lib/user/bin')} and PATH; run make)`)
      const extra = t[`${role}-args`] ?? []
      check(Array.isArray(extra) && extra.every((a) => typeof a === 'string'), `${where}.${role}-args`, 'must be an array of strings')
      check(!cfg.peers.some((q) => q.name === name), where, `'${name}' is also the name of a [[peer]]`)
      cfg.peers.push({ name, program: path, port, driver, args: [...args, ...(extra as string[])], restart: rs })
    }
    cfg.volumes = v
  }
  if (doc.nbd !== undefined) {
    const where = `${file}: nbd`
    check(typeof doc.nbd === 'object' && doc.nbd !== null && !Array.isArray(doc.nbd), where, 'must be a table')
    const t = doc.nbd as Table
    known(t, ['storage-port', 'unix', 'tcp', 'driver', 'export', 'restart', 'request-timeout', 'volumes', 'tls', 'tls-certificates'], where)
    const tls = t.tls === undefined ? 'off' : str(t, 'tls', where)
    check(tls === 'off' || tls === 'on' || tls === 'require', `${where}.tls`, `'${tls}' is not "off", "on" or "require"`)
    const certs = t['tls-certificates'] === undefined ? undefined : str(t, 'tls-certificates', where)
    check(tls === 'off' || certs !== undefined, `${where}.tls-certificates`,
      `tls = "${tls}" needs tls-certificates = "DIR" (server-cert.pem, server-key.pem)`)
    check(tls !== 'off' || certs === undefined, `${where}.tls-certificates`, 'is for tls = "on" or "require"')
    const volumes = bool(t, 'volumes', where, false)
    check(!volumes || cfg.volumes !== undefined || t['storage-port'] !== undefined, `${where}.volumes`,
      'needs a [volumes] table (or storage-port = the port of vlmcd)')
    const rt = t['request-timeout']
    check(rt === undefined || (typeof rt === 'number' && Number.isFinite(rt) && (rt === 0 || rt >= 0.001) && rt <= 86400),
      `${where}.request-timeout`, 'must be a number of seconds from 0 (none) to 86400')
    const storagePort = int(t, 'storage-port', where, volumes ? cfg.volumes?.composerPort : undefined)
    check(storagePort < nrPorts, `${where}.storage-port`, `${storagePort} is not below the segment's ${nrPorts} ports`)
    const unix = t.unix === undefined ? undefined : str(t, 'unix', where)
    const tcp = t.tcp === undefined ? undefined : str(t, 'tcp', where)
    check(unix !== undefined || tcp !== undefined, where, 'needs unix = "PATH" or tcp = "HOST:PORT" (or both)')
    if (tcp !== undefined) check(/^[^\s]*:\d{1,5}$/.test(tcp), `${where}.tcp`, `'${tcp}' is not HOST:PORT`)
    const exps = (t.export ?? []) as unknown
    check(Array.isArray(exps) && (exps.length > 0 || volumes), `${where}.export`, 'at least one [[nbd.export]] is required (or volumes = true)')
    const names = new Set<string>()
    const exports = exps.map((e: unknown, i: number): ExportConfig => {
      const w = `${where}.export[${i}]`
      check(typeof e === 'object' && e !== null && !Array.isArray(e), w, 'must be a table')
      const et = e as Table
      known(et, ['name', 'target', 'readonly', 'description'], w)
      const name = str(et, 'name', w)
      check(name !== '', `${w}.name`, 'must not be empty (a client asking for the empty name gets the first export)')
      check(!names.has(name), `${w}.name`, `'${name}' is exported twice`)
      names.add(name)
      const description = et.description === undefined ? undefined : str(et, 'description', w)
      check(!description?.includes(','), `${w}.description`, 'must not contain a comma')
      return { name, target: str(et, 'target', w, name || 'volume'), readonly: bool(et, 'readonly', w, false), ...(description !== undefined ? { description } : {}) }
    })
    cfg.nbd = {
      storagePort,
      volumes,
      ...(unix !== undefined ? { unix: isAbsolute(unix) ? unix : resolve(base, unix) } : {}),
      ...(tcp !== undefined ? { tcp } : {}),
      driver: str(t, 'driver', where, 'posixfd'),
      exports,
      restart: restart(t, where),
      ...(rt !== undefined ? { requestTimeout: rt as number } : {}),
      ...(tls !== 'off' ? { tls: tls as 'on' | 'require', tlsCertificates: isAbsolute(certs!) ? certs! : resolve(base, certs!) } : {}),
    }
  }
  if (doc.metrics !== undefined) {
    const where = `${file}: metrics`
    check(typeof doc.metrics === 'object' && doc.metrics !== null && !Array.isArray(doc.metrics), where, 'must be a table')
    const t = doc.metrics as Table
    known(t, ['listen'], where)
    const listen = str(t, 'listen', where)
    try {
      parseListen(listen, `${where}.listen`)
    } catch (e) {
      throw new ConfigError((e as Error).message)
    }
    cfg.metricsListen = listen
  }
  check(cfg.peers.length > 0 || cfg.nbd !== undefined, file, 'nothing to serve: no [[peer]] and no [nbd]')
  return cfg
}

export function loadServeConfig(file: string): ServeConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`)
  }
  return parseServeConfig(text, file)
}

/** One supervised child: a peer or the gateway. */
interface Child {
  name: string
  port: number | null // the port it binds (waited for), or null
  argv: string[]
  restart: Restart
  proc?: ChildProcess
  starts: number
  lastStart: number
  backoffMs: number
  timer?: NodeJS.Timeout
  listening: number // `listening URI` lines the gateway printed since its start
}

export interface PipelineEvents {
  log: [line: string]
  exit: [name: string, code: number | null, signal: NodeJS.Signals | null]
  restart: [name: string, pid: number]
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * A running pipeline. `start()` resolves once every peer has bound its port
 * and the gateway listens; `stop()` tears everything down. Events: 'log'
 * (one line), 'exit' (a child died), 'restart' (a child was restarted).
 */
export class Pipeline extends EventEmitter<PipelineEvents> {
  readonly config: ServeConfig
  #seg: Segment | null = null
  #created = false
  #children: Child[] = []
  #stopping = false
  #monitor?: NodeJS.Timeout

  constructor(cfg: ServeConfig) {
    super()
    this.config = cfg
  }

  get segment(): Segment {
    if (!this.#seg) throw xerror('EBADF', 'the pipeline is not running')
    return this.#seg
  }

  /** pid of a child by name (peer name or 'nbd'), if it runs. */
  pid(name: string): number | undefined {
    return this.#children.find((c) => c.name === name)?.proc?.pid
  }

  #log(line: string): void {
    this.emit('log', line)
  }

  async start(): Promise<void> {
    const cfg = this.config
    try {
      if (cfg.create) {
        try {
          this.#seg = Segment.createSync(cfg.spec, { peerType: 'posixfd' })
          this.#created = true
          this.#log(`created segment ${this.#seg.config.spec}`)
        } catch (e) {
          if ((e as { code?: string }).code !== 'EEXIST') throw e
        }
      }
      if (!this.#seg) {
        this.#seg = Segment.joinSync(cfg.spec, { peerType: 'posixfd' })
        // Create-or-open: an existing segment must be what the spec asks.
        if (cfg.create) {
          try {
            this.#seg.checkSpec(cfg.spec)
          } catch (e) {
            this.#seg.close()
            this.#seg = null
            throw e
          }
        }
        this.#log(`joined segment ${this.#seg.config.spec}`)
        const st = this.#seg.recover()
        if (st.ports_freed) this.#log(`recovered ${st.ports_freed} ports of dead peers left in the segment`)
      }
      for (const p of cfg.peers) {
        this.#children.push({
          name: p.name, port: p.port, restart: p.restart, starts: 0, lastStart: 0, backoffMs: 200, listening: 0,
          argv: [p.program, '-g', this.#seg.config.spec, '-p', String(p.port), '-d', p.driver, ...p.args],
        })
      }
      if (cfg.nbd) {
        const n = cfg.nbd
        const cli = join(ROOT, 'lib/node/cli.js')
        const argv = [process.execPath, cli, 'nbd', this.#seg.config.spec, '--storage-port', String(n.storagePort), '--peer-type', n.driver]
        if (n.unix) argv.push('--unix', n.unix)
        if (n.tcp) argv.push('--tcp', n.tcp)
        if (n.requestTimeout !== undefined) argv.push('--request-timeout', String(n.requestTimeout))
        if (n.volumes) argv.push('--volumes')
        if (n.tls) argv.push(`--tls=${n.tls}`, '--tls-certificates', n.tlsCertificates!)
        for (const e of n.exports) {
          // NAME[=TARGET][,readonly][,description=TEXT] (peers/node/nbd/cmd.ts)
          argv.push('--export', `${e.name}=${e.target}${e.readonly ? ',readonly' : ''}` +
            (e.description ? `,description=${e.description}` : ''))
        }
        this.#children.push({ name: 'nbd', port: null, restart: n.restart, starts: 0, lastStart: 0, backoffMs: 200, listening: 0, argv })
      }
      for (const c of this.#children) await this.#spawn(c)
      // Catch peers that die between the exit event and a restart, and
      // requests of dead clients: the same recovery the C peers run.
      this.#monitor = setInterval(() => this.#recover(false), 1000)
      this.#monitor.unref()
    } catch (e) {
      await this.stop()
      throw e
    }
  }

  #recover(logAlways: boolean): void {
    if (!this.#seg || this.#seg.closed) return
    try {
      const st = this.#seg.recover()
      if (logAlways || st.ports_freed || st.requests_failed) {
        this.#log(`recovery: ${st.ports_freed} ports freed, ${st.requests_failed} requests failed back to their clients, ` +
          `${st.requests_freed} requests freed`)
      }
    } catch (e) {
      this.#log(`recovery failed: ${(e as Error).message}`)
    }
  }

  async #spawn(c: Child): Promise<void> {
    c.starts++
    c.lastStart = Date.now()
    c.listening = 0
    // Children's output becomes log lines: stdout stays the supervisor's own.
    const proc = spawn(c.argv[0]!, c.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    c.proc = proc
    let tail = ''
    proc.stdout!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue
        if (line.startsWith('listening ')) c.listening++
        this.#log(`[${c.name}] ${line}`)
      }
    })
    proc.stderr!.on('data', (d: Buffer) => {
      const text = d.toString()
      tail = (tail + text).slice(-2000)
      for (const line of text.split('\n')) if (line) this.#log(`[${c.name}] ${line}`)
    })
    const started = new Promise<void>((res, rej) => {
      proc.once('error', (e: NodeJS.ErrnoException) => rej(new XsegError(e.code ?? 'EIO', `${c.name}: cannot start ${c.argv[0]}: ${e.message}`, { cause: e })))
      proc.once('spawn', () => res())
    })
    proc.once('exit', (code, signal) => this.#exited(c, proc, code, signal, tail))
    await started
    this.#log(`started ${c.name} (pid ${proc.pid}): ${c.argv.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`)
    await this.#ready(c, proc)
  }

  async #ready(c: Child, proc: ChildProcess): Promise<void> {
    const seg = this.#seg!
    const deadline = Date.now() + 15000
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw xerror('ECHILD', `${c.name} exited (${proc.exitCode ?? proc.signalCode}) before it was ready`)
      }
      if (c.port !== null) {
        const info = seg.portInfo(c.port)
        if (info.state === 'bound' && info.pid === proc.pid) return
      } else if (this.config.nbd) {
        // The gateway prints one `listening URI` line per address once it listens
        // (a socket file left by an earlier run proves nothing).
        const n = this.config.nbd
        if (c.listening >= (n.unix ? 1 : 0) + (n.tcp ? 1 : 0)) return
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL')
        throw xerror('ETIMEDOUT', `${c.name} was not ready within 15 s`)
      }
      await sleep(20)
    }
  }

  #exited(c: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null, tail: string): void {
    if (c.proc !== proc) return
    c.proc = undefined
    this.emit('exit', c.name, code, signal)
    if (this.#stopping) return
    this.#log(`${c.name} (pid ${proc.pid}) ${signal ? `was killed by ${signal}` : `exited with status ${code}`}` +
      (tail && code ? `; its last words: ${tail.trim().split('\n').pop()}` : ''))
    if (c.port !== null) this.#recover(true)
    const again = c.restart === 'always' || (c.restart === 'on-failure' && (code !== 0 || signal !== null))
    if (!again) return
    // Back off while it keeps dying; reset after a minute of health.
    if (Date.now() - c.lastStart > 60000) c.backoffMs = 200
    const wait = c.backoffMs
    c.backoffMs = Math.min(c.backoffMs * 2, 10000)
    this.#log(`restarting ${c.name} in ${wait} ms`)
    c.timer = setTimeout(() => {
      c.timer = undefined
      if (this.#stopping) return
      this.#spawn(c).then(
        () => this.emit('restart', c.name, c.proc!.pid!),
        (e: unknown) => this.#log(`restart of ${c.name} failed: ${(e as Error).message}`),
      )
    }, wait)
  }

  /** Stop the gateway, then the peers; leave (and destroy) the segment. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    if (this.#monitor) clearInterval(this.#monitor)
    for (const c of this.#children) if (c.timer) clearTimeout(c.timer)
    // The gateway first: its clients see the export go away, not I/O errors.
    // Then the peers in the reverse of their start order, so that a peer that
    // sends to another (vlmcd to mapperd to the storage peer) drains first.
    const order = [...this.#children].reverse().sort((a, b) => (a.port === null ? 0 : 1) - (b.port === null ? 0 : 1))
    for (const c of order) await this.#stopChild(c)
    if (this.#seg) {
      this.#recover(false)
      const seg = this.#seg
      this.#seg = null
      seg.close()
      if (this.#created && this.config.destroyOnExit) {
        try {
          Segment.destroy(this.config.spec)
          this.#log(`destroyed segment ${seg.config.spec}`)
        } catch (e) {
          this.#log(`destroy failed: ${(e as Error).message}`)
        }
      }
    }
  }

  async #stopChild(c: Child): Promise<void> {
    const proc = c.proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const gone = new Promise<void>((r) => proc.once('exit', () => r()))
    proc.kill('SIGTERM')
    const t = setTimeout(() => {
      this.#log(`${c.name} (pid ${proc.pid}) did not stop within ${this.config.stopGraceMs} ms: SIGKILL`)
      proc.kill('SIGKILL')
    }, this.config.stopGraceMs)
    await gone
    clearTimeout(t)
    this.#log(`stopped ${c.name}`)
  }
}

export interface ServeSummary {
  config: string
  segment: string
  /** Restarts per child (peer names, 'nbd'). */
  restarts: Record<string, number>
  stopped: true
}

/** `xseg serve CONFIG`: run until SIGINT/SIGTERM; what happened. */
export async function serveCommand(file: string, opts: { json: boolean, quiet: boolean, metrics?: string }): Promise<ServeSummary> {
  const cfg = loadServeConfig(file)
  if (opts.metrics !== undefined) {
    parseListen(opts.metrics, '--metrics')
    cfg.metricsListen = opts.metrics
  }
  const p = new Pipeline(cfg)
  const restarts: Record<string, number> = Object.fromEntries([...cfg.peers.map((q) => q.name), ...(cfg.nbd ? ['nbd'] : [])].map((n) => [n, 0]))
  p.on('restart', (name) => { restarts[name] = (restarts[name] ?? 0) + 1 })
  p.on('log', (line) => {
    if (opts.quiet) return
    const ts = new Date().toISOString()
    process.stderr.write(opts.json ? JSON.stringify({ schemaVersion: 1, time: ts, log: line }) + '\n' : `${ts} xseg serve: ${line}\n`)
  })
  const done = new Promise<void>((res) => {
    process.once('SIGINT', res)
    process.once('SIGTERM', res)
  })
  await p.start()
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined
  if (cfg.metricsListen !== undefined) {
    // The children by pid for the program label; the supervisor's restarts.
    const names = Object.keys(restarts)
    const extra = () => ({
      programOf: (pid: number) => names.find((n) => p.pid(n) === pid),
      restarts,
      up: Object.fromEntries(names.map((n) => [n, p.pid(n) !== undefined])),
    })
    try {
      metrics = await serveMetrics(cfg.metricsListen, (om) => renderMetrics(p.segment, om, extra()))
    } catch (e) {
      await p.stop()
      throw Object.assign(new Error(`metrics on ${cfg.metricsListen}: ${(e as Error).message}`), { code: (e as { code?: string }).code })
    }
    p.emit('log', `metrics on ${metrics.url}`)
  }
  p.emit('log', `ready: ${cfg.peers.map((q) => `${q.name} on port ${q.port}`).join(', ')}` +
    (cfg.nbd ? `${cfg.peers.length ? ', ' : ''}nbd on ${[cfg.nbd.unix, cfg.nbd.tcp].filter(Boolean).join(' and ')}` : ''))
  await done
  p.emit('log', 'stopping')
  await metrics?.close()
  const segment = p.segment.config.spec
  await p.stop()
  return { config: file, segment, restarts, stopped: true }
}
