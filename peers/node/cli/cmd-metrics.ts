// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-metrics.ts - `xseg metrics SPEC --listen HOST:PORT | --once`:
// the counters, queue depths and latency histograms of a live segment for
// Prometheus (metrics.ts): served over HTTP at /metrics until SIGINT/SIGTERM,
// or printed once (OpenMetrics, or --format text: the Prometheus text format).
import { type Command, Usage, needSpec } from './cmd.js'
import { parseListen, renderMetrics, serveMetrics } from './metrics.js'
import { observe } from './cmd-segment.js'

export const metrics: Command = {
  name: 'metrics',
  usage: 'metrics SPEC --listen HOST:PORT | --once [--format openmetrics|text]\n' +
    '                             the segment\'s counters, queue depths and latency histograms for\n' +
    '                             Prometheus: served at http://HOST:PORT/metrics, or printed once',
  options: {
    listen: { type: 'string', short: 'l' },
    once: { type: 'boolean' },
    format: { type: 'string' },
  },
  async run(ctx) {
    const spec = needSpec(ctx)
    if (ctx.json) throw new Usage('metrics prints the OpenMetrics or Prometheus text format, not JSON (drop --json)')
    const listen = ctx.opts.listen as string | undefined
    const once = ctx.opts.once === true
    if (once === (listen !== undefined)) throw new Usage('metrics needs one of --listen HOST:PORT and --once')
    const format = (ctx.opts.format ?? 'openmetrics') as string
    if (format !== 'openmetrics' && format !== 'text') throw new Usage(`--format: '${format}' is not openmetrics or text`)
    if (!once && ctx.opts.format !== undefined) throw new Usage('--format goes with --once (the endpoint answers in the format the scraper\'s Accept header asks for)')
    if (listen !== undefined) {
      try {
        parseListen(listen, '--listen')
      } catch (e) {
        throw new Usage((e as Error).message)
      }
    }
    using seg = observe(spec)
    if (once) {
      process.stdout.write(renderMetrics(seg, format === 'openmetrics'))
      return 0
    }
    const srv = await serveMetrics(listen!, (om) => renderMetrics(seg, om))
    process.stdout.write(`listening ${srv.url}\n`)
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await srv.close()
    return 0
  },
}
