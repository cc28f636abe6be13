// SPDX-License-Identifier: BSD-2-Clause
//
// bench/node/peer.ts - the far side of bench/node/bench.ts, one Node process
// per run: it echoes whatever the near side sends, by one mechanism.
//
//   peer.ts eventfd            watch fd 3 (uv_poll, bench/build/node/evfd.node), post fd 4
//   peer.ts pipe               echo stdin to stdout (libuv pipes)
//   peer.ts unix PATH          a Unix stream socket server at PATH, echoing
//   peer.ts ipc                echo child_process IPC messages
//   peer.ts xseg SPEC PORT     serve PORT of SPEC with the xseg TS API (posixfd), answering at once
//   peer.ts xsegbatch SPEC PORT [SPIN_US]  the same with the batched API: port.requests(), a table
//                              at a time, polling SPIN_US (default 0) before sleeping
//
// Prints "ready" on stdout (except in pipe mode, where stdout is the echo),
// and exits when stdin ends (its parent is gone or done).
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Segment } from '../../sys/node/ts/index'

const [mode, a1, a2, a3] = process.argv.slice(2)
const ready = (): void => {
  if (mode !== 'pipe') process.stdout.write('ready\n')
}
const onEnd = (fn: () => void): void => {
  process.stdin.on('end', fn).on('close', fn)
  if (mode !== 'pipe') process.stdin.resume()
}

switch (mode) {
  case 'eventfd': {
    const ev = require(join(__dirname, '../build/node/evfd.node')) as {
      watch(fd: number, fn: () => void): void
      post(fd: number): void
      unwatch(fd: number): void
    }
    ev.watch(3, () => ev.post(4))
    onEnd(() => process.exit(0))
    ready()
    break
  }
  case 'pipe':
    process.stdin.on('data', (d: Buffer) => process.stdout.write(d))
    process.stdin.on('end', () => process.exit(0))
    break
  case 'unix': {
    const srv = createServer((s) => {
      s.setNoDelay(true)
      s.on('data', (d) => s.write(d))
      s.on('error', () => {})
    })
    srv.listen(a1!, ready)
    onEnd(() => process.exit(0))
    break
  }
  case 'ipc':
    process.on('message', (m) => process.send!(m))
    onEnd(() => process.exit(0))
    ready()
    break
  case 'xseg': {
    const seg = Segment.joinSync(a1!)
    const port = seg.bindPort(Number(a2))
    const ac = new AbortController()
    void port.serve(() => {}, { signal: ac.signal, concurrency: 256 }).then(() => {
      seg.close()
      process.exit(0)
    })
    onEnd(() => ac.abort())
    ready()
    break
  }
  case 'xsegbatch': {
    const seg = Segment.joinSync(a1!)
    const port = seg.bindPort(Number(a2))
    const ac = new AbortController()
    const serve = async (): Promise<void> => {
      try {
        // Every row is answered served (serviced 0) by the next iteration.
        for await (const b of port.requests({ signal: ac.signal, batch: 256, spinUs: Number(a3 ?? 0) })) void b
      } catch {
        // AbortError: stdin ended
      }
    }
    void serve().then(() => {
      seg.close()
      process.exit(0)
    })
    onEnd(() => ac.abort())
    ready()
    break
  }
  default:
    process.stderr.write(`peer.ts: unknown mode '${mode}'\n`)
    process.exit(2)
}
