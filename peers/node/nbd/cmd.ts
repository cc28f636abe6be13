// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/cmd.ts - `xseg nbd SPEC --storage-port N [--unix PATH]
// [--tcp HOST:PORT] --export NAME[=TARGET][,size=N][,readonly][,description=TEXT]...`:
// run the NBD gateway (server.ts) until SIGINT/SIGTERM. docs/nbd.md.
import { Segment } from '../../../sys/node/ts/index.js'
import { type Command, type Context, Usage, num } from '../cmd.js'
import { type NbdExport, NbdGateway, type NbdLogLevel } from './server.js'

/** Parse one --export value: NAME[=TARGET][,size=N][,readonly][,description=TEXT]. */
export function parseExport(v: string): NbdExport {
  const [head, ...attrs] = v.split(',')
  const eq = head!.indexOf('=')
  const name = eq < 0 ? head! : head!.slice(0, eq)
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

function strings(v: unknown): string[] {
  if (v === undefined) return []
  return Array.isArray(v) ? v.map(String) : [String(v)]
}

export const nbd: Command = {
  name: 'nbd',
  usage: 'nbd SPEC --storage-port N [--unix PATH] [--tcp HOST:PORT] [--port N] [-v]\n' +
    '    --export NAME[=TARGET][,size=N][,readonly][,description=TEXT] ...\n' +
    '                             an NBD server for targets of the storage peer on port N\n' +
    '                             (docs/nbd.md), until SIGINT/SIGTERM',
  options: {
    'storage-port': { type: 'string', short: 'P' },
    port: { type: 'string', short: 'p' },
    unix: { type: 'string', short: 'u' },
    tcp: { type: 'string', short: 't' },
    export: { type: 'string', short: 'e', multiple: true },
    'max-inflight': { type: 'string' },
    'max-request': { type: 'string' },
    'spin-us': { type: 'string' },
    verbose: { type: 'boolean', short: 'v' },
    quiet: { type: 'boolean', short: 'q' },
  },
  async run(ctx: Context) {
    const spec = ctx.args[0]
    if (!spec) throw new Usage('nbd needs a SPEC')
    if (ctx.args.length > 1) throw new Usage(`nbd: unexpected argument '${ctx.args[1]}'`)
    const storagePort = num(ctx.opts['storage-port'], '--storage-port', -1)
    if (storagePort < 0) throw new Usage('nbd needs --storage-port N')
    const unix = ctx.opts.unix as string | undefined
    const tcp = ctx.opts.tcp as string | undefined
    if (!unix && !tcp) throw new Usage('nbd needs --unix PATH and/or --tcp HOST:PORT')
    const exports = strings((ctx.opts as Record<string, unknown>).export).map(parseExport)
    if (!exports.length) throw new Usage('nbd needs at least one --export NAME[=TARGET]')
    const verbose = ctx.opts.verbose === true
    const quiet = ctx.opts.quiet === true
    const logger = (level: NbdLogLevel, line: string): void => {
      if (level === 'debug' ? verbose : !quiet || level === 'error') process.stderr.write(`xseg nbd: ${line}\n`)
    }
    if (ctx.peerType !== 'posixfd') throw new Usage('nbd runs on the event loop: --peer-type posixfd')
    const seg = Segment.joinSync(spec, { peerType: 'posixfd' })
    let gw: NbdGateway
    try {
      gw = new NbdGateway({
        segment: seg,
        storagePort,
        port: ctx.opts.port === undefined ? undefined : num(ctx.opts.port, '--port', 0),
        exports,
        logger,
        maxInflight: ctx.opts['max-inflight'] === undefined ? undefined : num(ctx.opts['max-inflight'], '--max-inflight', 0),
        maxRequest: ctx.opts['max-request'] === undefined ? undefined : num(ctx.opts['max-request'], '--max-request', 0),
        spinUs: num(ctx.opts['spin-us'], '--spin-us', 0),
      })
    } catch (e) {
      seg.close()
      if (e instanceof TypeError) throw new Usage(e.message.replace(/^NbdGateway: /, ''))
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
        // One line per way in, as URIs (nbdinfo, qemu-img and fio take them).
        const lines: string[] = []
        for (const e of exports) {
          const en = encodeURIComponent(e.name)
          if (a.unix) lines.push(`nbd+unix:///${en}?socket=${a.unix}`)
          if (a.tcp) lines.push(`nbd://${a.tcp.host.includes(':') ? `[${a.tcp.host}]` : a.tcp.host}:${a.tcp.port}/${en}`)
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
