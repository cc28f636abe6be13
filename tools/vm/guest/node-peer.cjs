// SPDX-License-Identifier: BSD-2-Clause
// tools/vm/guest/node-peer.cjs - a Node peer for the VM scenarios
// (scenarios/matrix.sh): the xseg package (lib/node, the addon) on a segdev
// segment with the segdev peer type, as a server or a client, in one of two
// styles:
//   callback  the main thread: libuv polls the port's eventfd (xseg_poll_fd)
//             and the Port's serve() / submit() Promises run on each wake-up;
//   sleep     a worker thread blocks in port.waitSync() (the segdev driver's
//             ppoll) and uses acceptSync() / trySubmit() / receiveSync().
//
//   node node-peer.cjs serve SEG PORT STYLE           until SIGTERM
//   node node-peer.cjs client SEG PORT DST COUNT STYLE SIZE
//
// The data pattern is the kernel peer's (xseg_kpeer.ko, xseg-kpeer.c):
// byte at position p = (p >> 9) * 31 + p * 7 + 3 (mod 256). A client checks
// every byte of every reply; 8 requests in flight; a client with no reply for
// 30 s (a hang guard: a lost wake-up) fails.
'use strict'
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
const { Segment } = require(process.env.XSEG_NODE_PKG || '/xseg/lib/node/index.js')

const WINDOW = 8
const GUARD_MS = 30000

function die(msg) {
  process.stderr.write(`node-peer: ${msg}\n`)
  process.exit(1)
}

function fill(buf, off, len) {
  for (let i = 0; i < len; i++) {
    const p = off + i
    buf[i] = (Math.floor(p / 512) * 31 + p * 7 + 3) & 0xff
  }
}

function check(req, size) {
  if (!req.ok || req.serviced !== size)
    throw new Error(`reply at ${req.offset}: ok ${req.ok} errno ${req.errno} serviced ${req.serviced}`)
  const off = Number(req.offset)
  const d = req.data
  for (let i = 0; i < size; i++) {
    const p = off + i
    const want = (Math.floor(p / 512) * 31 + p * 7 + 3) & 0xff
    if (d[i] !== want) throw new Error(`reply at ${off}: byte ${i} is ${d[i]}, want ${want}`)
  }
}

function serveOne(req) {
  if (req.op !== 'read' || req.size > req.data.length) {
    req.fail('EOPNOTSUPP')
    return
  }
  fill(req.data, Number(req.offset), req.size)
  req.respond({ serviced: req.size })
}

function join(seg) {
  return Segment.joinSync(`segdev:${seg}`, { peerType: 'segdev' })
}

// ---------------------------------------------------------------- sleep style (worker)

function workerMain() {
  const a = workerData
  const seg = join(a.seg)
  const port = seg.bindPort(a.port)
  const stop = new Int32Array(a.stop)
  if (a.role === 'serve') {
    let served = 0
    let wakes = 0
    parentPort.postMessage({ ready: true })
    while (Atomics.load(stop, 0) === 0) {
      let req
      while ((req = port.acceptSync())) {
        serveOne(req)
        served++
      }
      // 1 s: only so that a stop between the check and the sleep is seen.
      if (port.waitSync(1000)) wakes++ // (a wake-up that finds work)
    }
    port.close()
    seg.close()
    parentPort.postMessage({ done: `served ${served} requests on port ${a.port} (${wakes} wake-ups)` })
    return
  }
  const t0 = Date.now()
  let sent = 0
  let done = 0
  let last = t0
  while (done < a.count) {
    while (sent < a.count && sent - done < WINDOW) {
      const req = port.tryRequest({ op: 'read', target: 'kpeer', offset: BigInt(sent * a.size), size: a.size })
      if (!req) break
      if (!req.trySubmit(a.dst)) {
        req.release()
        break
      }
      sent++
    }
    let got = 0
    let r
    while ((r = port.receiveSync())) {
      check(r, a.size)
      r.release()
      done++
      got++
    }
    if (got > 0) last = Date.now()
    // waitSync() is false on a timeout and on a wake-up whose work an
    // earlier look already took (a stale eventfd count): only time tells.
    if (got === 0 && done < a.count && !port.waitSync(GUARD_MS) && Date.now() - last > GUARD_MS) {
      const i = port.info()
      throw new Error(`no wake-up for ${GUARD_MS / 1000} s (${sent} sent, ${done} done, ${i.replies_queued} replies queued): a lost wake-up`)
    }
  }
  port.close()
  seg.close()
  parentPort.postMessage({ done: `${done} requests to port ${a.dst} (node, sleep) checked in ${((Date.now() - t0) / 1000).toFixed(2)} s` })
}

function runWorker(data) {
  const stop = new SharedArrayBuffer(4)
  const w = new Worker(__filename, { workerData: { ...data, stop } })
  w.on('message', (m) => {
    if (m.ready) console.log(`serving port ${data.port} of ${data.seg} (node, sleep)`)
    if (m.done) console.log(m.done)
  })
  w.on('error', (e) => die(e.stack || String(e)))
  w.on('exit', (code) => {
    if (code !== 0) die(`the worker exited ${code}`)
  })
  process.on('SIGTERM', () => Atomics.store(new Int32Array(stop), 0, 1))
}

// ---------------------------------------------------------------- callback style (main thread)

async function serveLoop(a) {
  const seg = join(a.seg)
  const port = seg.bindPort(a.port)
  const ac = new AbortController()
  let served = 0
  process.on('SIGTERM', () => ac.abort())
  const p = port.serve((req) => {
    serveOne(req)
    served++
  }, { signal: ac.signal })
  console.log(`serving port ${a.port} of ${a.seg} (node, callback)`)
  await p
  port.close()
  seg.close()
  console.log(`served ${served} requests on port ${a.port}`)
}

async function clientLoop(a) {
  const seg = join(a.seg)
  const port = seg.bindPort(a.port)
  const t0 = Date.now()
  let sent = 0
  let done = 0
  let last = Date.now()
  const guard = setInterval(() => {
    if (Date.now() - last > GUARD_MS) die(`no reply for ${GUARD_MS / 1000} s (${sent} sent, ${done} done): a lost wake-up`)
  }, 1000)
  const one = async (i) => {
    const req = port.request({ op: 'read', target: 'kpeer', offset: BigInt(i * a.size), size: a.size })
    const r = await req.submit(a.dst)
    check(r, a.size)
    r.release()
    done++
    last = Date.now()
  }
  const lane = async () => {
    while (sent < a.count) await one(sent++)
  }
  await Promise.all(Array.from({ length: WINDOW }, lane))
  clearInterval(guard)
  port.close()
  seg.close()
  console.log(`${done} requests to port ${a.dst} (node, callback) checked in ${((Date.now() - t0) / 1000).toFixed(2)} s`)
}

// ---------------------------------------------------------------- main

function main() {
  const [cmd, seg, portS, ...rest] = process.argv.slice(2)
  const port = Number(portS)
  if (cmd === 'serve' && rest.length === 1) {
    const style = rest[0]
    if (style === 'sleep') return runWorker({ role: 'serve', seg, port })
    if (style === 'callback') return serveLoop({ seg, port })
  } else if (cmd === 'client' && rest.length === 4) {
    const [dstS, countS, style, sizeS] = rest
    const a = { role: 'client', seg, port, dst: Number(dstS), count: Number(countS), size: Number(sizeS) }
    if (style === 'sleep') return runWorker(a)
    if (style === 'callback') return clientLoop(a)
  }
  die('usage: node-peer.cjs serve SEG PORT callback|sleep | client SEG PORT DST COUNT callback|sleep SIZE')
}

if (isMainThread) {
  Promise.resolve(main()).catch((e) => die(e.stack || String(e)))
} else {
  try {
    workerMain()
  } catch (e) {
    process.stderr.write(`node-peer (worker): ${e.stack || e}\n`)
    process.exit(1)
  }
}
