// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-serve.ts - `xseg pattern SPEC -p PORT`: serve a port with the
// pattern (peers/node/patternd.ts, as C patternd does) until SIGINT/SIGTERM.
import { Segment } from '../../../sys/node/ts/index.js'
import { type Command, Usage, needSpec, num } from './cmd.js'
import { servePattern } from '../patternd.js'

export const pattern: Command = {
  name: 'pattern',
  usage: 'pattern SPEC -p PORT [-s|--size SIZE]\n' +
    '                             serve the pattern (as patternd; INFO reports SIZE, default 1T) until SIGINT/SIGTERM',
  options: { port: { type: 'string', short: 'p' }, size: { type: 'string', short: 's' } },
  async run(ctx) {
    const spec = needSpec(ctx)
    const portNo = num(ctx.opts.port, '--port', -1)
    if (portNo < 0) throw new Usage('pattern needs -p PORT')
    const targetSize = num(ctx.opts.size, '--size', 2 ** 40)
    const seg = Segment.joinSync(spec, { peerType: ctx.peerType })
    const port = seg.bindPort(portNo)
    const ac = new AbortController()
    const stop = (): void => ac.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    process.stderr.write(`xseg: serving port ${portNo} of ${seg.name}\n`)
    let served = 0
    await port.serve((req) => {
      served++
      servePattern(req, targetSize)
    }, { signal: ac.signal })
    seg.close()
    ctx.emit({ port: portNo, served }, () => `served ${served} requests\n`)
    return 0
  },
}
