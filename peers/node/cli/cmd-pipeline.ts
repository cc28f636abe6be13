// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-pipeline.ts - the pipeline commands: `xseg serve CONFIG`
// (serve.ts, docs/serve.md) and `xseg demo` (demo.ts).
import { type Command, Usage, num } from './cmd.js'
import { runDemo } from './demo.js'
import { serveCommand } from './serve.js'
import { parseListen } from './metrics.js'

export const serve: Command = {
  name: 'serve',
  usage: 'serve CONFIG [--quiet] [--metrics HOST:PORT]\n' +
    '                             run the pipeline of a TOML file (peers, NBD exports), supervised,\n' +
    '                             until SIGINT/SIGTERM (docs/serve.md); --json: log lines on stderr\n' +
    '                             as JSON lines, a summary document on stdout at exit; --metrics:\n' +
    '                             an OpenMetrics endpoint at http://HOST:PORT/metrics',
  options: { quiet: { type: 'boolean', short: 'q' }, metrics: { type: 'string' } },
  async run(ctx) {
    const file = ctx.args[0]
    if (!file) throw new Usage('serve needs a CONFIG file (docs/serve.md)')
    if (ctx.args.length > 1) throw new Usage(`serve: unexpected argument '${ctx.args[1]}'`)
    const metrics = ctx.opts.metrics as string | undefined
    if (metrics !== undefined) {
      try {
        parseListen(metrics, '--metrics')
      } catch (e) {
        throw new Usage((e as Error).message)
      }
    }
    const sum = await serveCommand(file, { json: ctx.json, quiet: ctx.opts.quiet === true, ...(metrics !== undefined ? { metrics } : {}) })
    const n = Object.values(sum.restarts).reduce((a, b) => a + b, 0)
    ctx.emit({ ...sum }, () => `stopped; ${n} restart${n === 1 ? '' : 's'}\n`)
    return 0
  },
}

export const demo: Command = {
  name: 'demo',
  usage: 'demo [--size N] [--depth D] [-v]\n' +
    '                             blockd and the NBD gateway on a temporary volume: a verified\n' +
    '                             workload and a failover through them, then a results table',
  options: {
    size: { type: 'string', short: 's' },
    depth: { type: 'string', short: 'D' },
    verbose: { type: 'boolean', short: 'v' },
  },
  async run(ctx) {
    if (ctx.args.length) throw new Usage(`demo: unexpected argument '${ctx.args[0]}'`)
    const size = num(ctx.opts.size, '--size', 256 << 20)
    if (size < 1 << 20 || size % 4096) throw new Usage('--size: at least 1M, a multiple of 4K')
    const depth = num(ctx.opts.depth, '--depth', 16)
    if (depth < 1 || depth > 128) throw new Usage('--depth: 1 to 128')
    return runDemo({ size, depth, json: ctx.json, verbose: ctx.opts.verbose === true, progress: !ctx.json && process.stdout.isTTY === true })
  },
}
