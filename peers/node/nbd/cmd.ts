// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/cmd.ts - `xseg nbd SPEC --storage-port N [--unix PATH]
// [--tcp HOST:PORT] --export NAME[=TARGET][,size=N][,readonly][,description=TEXT]...
// [--volumes [--owner TAG]]`:
// run the NBD gateway (server.ts) until SIGINT/SIGTERM. docs/nbd.md.
import { Segment, XsegError } from '../../../sys/node/ts/index.js'
import { type Command, type Context, Usage, num } from '../cli/cmd.js'
import { type NbdExport, NbdGateway, type NbdLogLevel } from './server.js'

/** Parse one --export value: NAME[=TARGET][,size=N][,readonly][,description=TEXT]. */
export function parseExport(v: string): NbdExport {
  const [head, ...attrs] = v.split(',')
  const eq = head!.indexOf('=')
  const name = eq < 0 ? head! : head!.slice(0, eq)
  if (!name) throw new Usage(`--export '${v}': an empty NAME (NAME[=TARGET][,size=N][,readonly][,description=TEXT])`)
  const e: NbdExport = { name }
  if (eq >= 0) {
    e.target = head!.slice(eq + 1)
    if (!e.target) throw new Usage(`--export '${v}': an empty TARGET`)
  }
  for (const a of attrs) {
    const i = a.indexOf('=')
    const k = i < 0 ? a : a.slice(0, i)
    const val = i < 0 ? undefined : a.slice(i + 1)
    if (k === 'size' && val !== undefined) e.size = num(val, `--export ${name}: size`, 0)
    else if ((k === 'readonly' || k === 'ro') && val === undefined) e.readonly = true
    else if (k === 'description' && val !== undefined) e.description = val
    else throw new Usage(`--export '${v}': unknown attribute '${a}' (size=N, readonly, description=TEXT)`)
  }
  return e
}

/** A whole number option from @min to @max (K/M/G suffixes as num()), or @def when not given. */
export function bounded(v: string | boolean | undefined, what: string, def: number, min: number, max: number): number {
  if (v === undefined) return def
  const n = num(v, what, def)
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Usage(`${what}: '${String(v)}' is not from ${min} to ${max}`)
  return n
}

/** --request-timeout SECONDS (decimals allowed; 0: none) in milliseconds. */
export function seconds(v: string | boolean | undefined, what: string): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^\d+(\.\d+)?$/.test(v)) throw new Usage(`${what}: '${String(v)}' is not a number of seconds`)
  const ms = Math.round(Number(v) * 1000)
  if (!(ms <= 86400000) || (ms === 0 && Number(v) !== 0)) throw new Usage(`${what}: '${v}' is not from 0.001 to 86400 seconds (or 0: none)`)
  return ms
}

function strings(v: unknown): string[] {
  if (v === undefined) return []
  return Array.isArray(v) ? v.map(String) : [String(v)]
}

export const nbd: Command = {
  name: 'nbd',
  usage: 'nbd SPEC -p N [--unix PATH] [--tcp HOST:PORT] [--bind-port N] [-v]\n' +
    '    --export NAME[=TARGET][,size=N][,readonly][,description=TEXT] ... | --volumes [--owner TAG]\n' +
    '    [--request-timeout SECONDS] [--max-inflight N] [--max-request N] [--max-reply-bytes N]\n' +
    '    [--max-reply-total N] [--max-conn-requests N] [--spin-us N]\n' +
    '    [--tls=off|on|require --tls-certificates DIR]\n' +
    '                             an NBD server for targets of the storage peer on port N\n' +
    '                             (docs/nbd.md), until SIGINT/SIGTERM; --volumes: N is vlmcd and an\n' +
    '                             export name is a volume (VOL, or VOL@SNAP read-only; docs/volumes.md)',
  options: {
    // -p/--port: the port requests go to, as in submit and bench (docs/cli.md#vocabulary);
    // --storage-port is its older spelling; --bind-port: the gateway's own port.
    'storage-port': { type: 'string', short: 'P' },
    port: { type: 'string', short: 'p' },
    'bind-port': { type: 'string' },
    unix: { type: 'string', short: 'u' },
    tcp: { type: 'string', short: 't' },
    export: { type: 'string', short: 'e', multiple: true },
    'max-inflight': { type: 'string' },
    'max-request': { type: 'string' },
    'spin-us': { type: 'string' },
    'request-timeout': { type: 'string' },
    'max-reply-bytes': { type: 'string' },
    'max-reply-total': { type: 'string' },
    'max-conn-requests': { type: 'string' },
    volumes: { type: 'boolean' },
    owner: { type: 'string' },
    tls: { type: 'string' },
    'tls-certificates': { type: 'string' },
    verbose: { type: 'boolean', short: 'v' },
    quiet: { type: 'boolean', short: 'q' },
  },
  async run(ctx: Context) {
    const spec = ctx.args[0]
    if (!spec) throw new Usage('nbd needs a SPEC')
    if (ctx.args.length > 1) throw new Usage(`nbd: unexpected argument '${ctx.args[1]}'`)
    if (ctx.opts.port !== undefined && ctx.opts['storage-port'] !== undefined)
      throw new Usage('-p/--port and --storage-port are one option (the storage peer\'s port): give one')
    const spName = ctx.opts.port !== undefined ? '--port' : '--storage-port'
    const spArg = ctx.opts.port ?? ctx.opts['storage-port']
    if (spArg === undefined) throw new Usage('nbd needs -p N (the storage peer\'s port)')
    const storagePort = bounded(spArg, spName, -1, 0, 0xfffffffe)
    const port = ctx.opts['bind-port'] === undefined ? undefined : bounded(ctx.opts['bind-port'], '--bind-port', 0, 0, 0xfffffffe)
    const maxInflight = bounded(ctx.opts['max-inflight'], '--max-inflight', 128, 1, 65536)
    const maxRequest = ctx.opts['max-request'] === undefined ? undefined : bounded(ctx.opts['max-request'], '--max-request', 0, 4096, 0xfffff000)
    if (maxRequest !== undefined && maxRequest % 4096) throw new Usage(`--max-request: '${String(ctx.opts['max-request'])}' is not a multiple of 4096`)
    const spinUs = bounded(ctx.opts['spin-us'], '--spin-us', 0, 0, 1000000)
    const requestTimeoutMs = seconds(ctx.opts['request-timeout'], '--request-timeout')
    const maxReplyBytes = ctx.opts['max-reply-bytes'] === undefined ? undefined : bounded(ctx.opts['max-reply-bytes'], '--max-reply-bytes', 0, 4096, 2 ** 40)
    const maxReplyTotal = ctx.opts['max-reply-total'] === undefined ? undefined : bounded(ctx.opts['max-reply-total'], '--max-reply-total', 0, 4096, 2 ** 44)
    const maxConnRequests = ctx.opts['max-conn-requests'] === undefined ? undefined : bounded(ctx.opts['max-conn-requests'], '--max-conn-requests', 0, 1, 0xffffffff)
    if (ctx.opts.unix === '') throw new Usage("--unix: '' is not a path")
    if (ctx.opts.tcp === '') throw new Usage("--tcp: '' is not HOST:PORT")
    const unix = ctx.opts.unix as string | undefined
    const tcp = ctx.opts.tcp as string | undefined
    if (!unix && !tcp) throw new Usage('nbd needs --unix PATH and/or --tcp HOST:PORT')
    const exports = strings((ctx.opts as Record<string, unknown>).export).map(parseExport)
    const volumes = ctx.opts.volumes === true
    if (ctx.opts.owner !== undefined && !volumes) throw new Usage('--owner is for --volumes')
    if (typeof ctx.opts.owner === 'string' && (!ctx.opts.owner || /[\n=]/.test(ctx.opts.owner)))
      throw new Usage(`--owner: '${ctx.opts.owner}' is not a tag (not empty, no newline or '=')`)
    if (!exports.length && !volumes) throw new Usage('nbd needs at least one --export NAME[=TARGET] (or --volumes)')
    const tlsMode = (ctx.opts.tls ?? 'off') as string
    if (!['off', 'on', 'require'].includes(tlsMode)) throw new Usage(`--tls: '${tlsMode}' is not off, on or require`)
    const certs = ctx.opts['tls-certificates'] as string | undefined
    if (certs !== undefined && !certs) throw new Usage("--tls-certificates: '' is not a directory")
    if (tlsMode !== 'off' && certs === undefined)
      throw new Usage(`--tls=${tlsMode} needs --tls-certificates DIR (server-cert.pem, server-key.pem)`)
    if (tlsMode === 'off' && certs !== undefined) throw new Usage('--tls-certificates is for --tls=on or --tls=require')
    const verbose = ctx.opts.verbose === true
    const quiet = ctx.opts.quiet === true
    const logger = (level: NbdLogLevel, line: string): void => {
      if (level === 'debug' ? verbose : !quiet || level === 'error') process.stderr.write(`xseg nbd: ${line}\n`)
    }
    if (ctx.peerType !== 'posixfd') throw new Usage('nbd runs on the event loop: --peer-type posixfd')
    const seg = Segment.joinSync(spec, { peerType: 'posixfd' })
    let gw: NbdGateway
    try {
      const nrPorts = seg.config.nrPorts
      if (storagePort >= nrPorts) throw new Usage(`${spName}: ${storagePort} is not below the segment's ${nrPorts} ports`)
      if (port !== undefined && port >= nrPorts) throw new Usage(`--bind-port: ${port} is not below the segment's ${nrPorts} ports`)
      gw = new NbdGateway({
        segment: seg,
        storagePort,
        port,
        exports,
        volumes: volumes ? { owner: ctx.opts.owner as string | undefined } : undefined,
        logger,
        maxInflight,
        maxRequest,
        spinUs,
        requestTimeoutMs,
        maxReplyBytes,
        maxReplyTotal,
        maxConnRequests,
        tls: { mode: tlsMode as 'off' | 'on' | 'require', certificates: certs },
      })
    } catch (e) {
      seg.close()
      // Bad options: EINVAL from the constructor's checks (no syscall: not the addon's).
      if (e instanceof XsegError && e.code === 'EINVAL' && e.syscall === undefined)
        throw new Usage(e.message.replace(/^EINVAL: NbdGateway: /, ''))
      throw e
    }
    const done = new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    try {
      const a = await gw.listen({ unix, tcp })
      if (!ctx.json) {
        // One line per way in, as URIs (nbdinfo, qemu-img and fio take them); nbds when TLS is required.
        const lines: string[] = []
        const sc = tlsMode === 'require' ? 'nbds' : 'nbd'
        // Volume mode: any volume's name in place of VOLUME.
        for (const en of [...exports.map((e) => encodeURIComponent(e.name)), ...(volumes ? ['VOLUME'] : [])]) {
          if (a.unix) lines.push(`${sc}+unix:///${en}?socket=${a.unix}`)
          if (a.tcp) lines.push(`${sc}://${a.tcp.host.includes(':') ? `[${a.tcp.host}]` : a.tcp.host}:${a.tcp.port}/${en}`)
        }
        process.stdout.write(lines.map((l) => `listening ${l}\n`).join(''))
      }
      logger('info', `port ${gw.port.number} of ${seg.name} -> storage port ${storagePort}, ` +
        `max block ${gw.maxRequest} bytes (buffers ${gw.maxBuf})`)
      await done
    } finally {
      await gw.close()
      seg.close()
    }
    const st = gw.stats()
    ctx.emit({ addresses: gw.addresses, stats: st }, () => '')
    return 0
  },
}
