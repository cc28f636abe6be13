// SPDX-License-Identifier: BSD-2-Clause
//
// test/node/nbd-raw.ts - a raw NBD connection for the tests that speak the
// protocol byte by byte (nbd-faults, nbd-proto): options, option replies,
// request headers, and everything received.
import * as net from 'node:net'
import * as assert from 'uvu/assert'
import * as P from '../../peers/node/nbd/protocol'
import { within } from './helpers'

/** A raw connection: everything it receives, and when it closes. */
export class Raw {
  readonly s: net.Socket
  buf = Buffer.alloc(0)
  closed: Promise<void>
  #waiters: (() => void)[] = []

  constructor(path: string) {
    this.s = net.connect(path)
    this.s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      for (const w of this.#waiters.splice(0)) w()
    })
    this.s.on('error', () => undefined)
    this.closed = new Promise((r) => this.s.once('close', () => r()))
  }

  /** The next @n bytes received. */
  async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      await within(new Promise<void>((r) => this.#waiters.push(r)), 5000, `${n} bytes from the gateway`)
    }
    const b = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return b
  }

  send(b: Buffer): void {
    this.s.write(b)
  }

  /** Greeting in, client flags out. */
  async hello(flags = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES): Promise<void> {
    const g = await this.take(18)
    assert.is(g.readBigUInt64BE(0), P.NBD_MAGIC)
    const b = Buffer.alloc(4)
    b.writeUInt32BE(flags, 0)
    this.send(b)
  }

  option(opt: number, data: Buffer = Buffer.alloc(0), len = data.length): void {
    const b = Buffer.alloc(16)
    b.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 0)
    b.writeUInt32BE(opt, 8)
    b.writeUInt32BE(len, 12)
    this.send(Buffer.concat([b, data]))
  }

  /** One option reply: its type and data. */
  async reply(): Promise<{ opt: number; type: number; data: Buffer }> {
    const h = await this.take(20)
    assert.is(h.readBigUInt64BE(0), P.NBD_REP_MAGIC)
    const len = h.readUInt32BE(16)
    return { opt: h.readUInt32BE(8), type: h.readUInt32BE(12), data: len ? await this.take(len) : Buffer.alloc(0) }
  }

  /** NBD_OPT_GO for @name: into transmission. */
  async go(name = 'disk'): Promise<void> {
    const nb = Buffer.from(name)
    const d = Buffer.alloc(4 + nb.length + 2)
    d.writeUInt32BE(nb.length, 0)
    nb.copy(d, 4)
    this.option(P.NBD_OPT_GO, d)
    for (;;) {
      const r = await this.reply()
      if (r.type === P.NBD_REP_ACK) return
      assert.is(r.type, P.NBD_REP_INFO, `GO: reply type 0x${r.type.toString(16)}`)
    }
  }

  request(type: number, offset: number, length: number, flags = 0, magic = P.NBD_REQUEST_MAGIC): Buffer {
    const b = Buffer.alloc(28)
    b.writeUInt32BE(magic, 0)
    b.writeUInt16BE(flags, 4)
    b.writeUInt16BE(type, 6)
    b.writeUInt32BE(7, 12)
    b.writeBigUInt64BE(BigInt(offset), 16)
    b.writeUInt32BE(length, 24)
    return b
  }

  async closedWithin(what: string): Promise<void> {
    await within(this.closed, 5000, `the gateway closing the connection (${what})`)
  }
}
