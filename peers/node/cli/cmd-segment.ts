// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-segment.ts - the `xseg` commands that manage a segment:
// create, destroy, config, status, recover, verify (list: cmd-list.ts); and the JSON
// views of a segment and of a port that status and top print.
import { Segment, XsegError, type PortInfo, type SegmentInfo } from '../../../sys/node/ts/index.js'
import { type Command, type Context, Usage, needSpec, table } from './cmd.js'
import { XSEG_PORT_ACCEPT, XSEG_PORT_RECEIVE } from '../../../sys/node/ts/consts.gen.js'

/** A port as status and top show it (docs/cli.schema.json#/$defs/port). */
export interface PortView {
  port: number
  /** 'dead': bound by a process that is gone (recovery frees it). */
  state: 'free' | 'bound' | 'dead' | 'recovering' | 'binding'
  dynamic: boolean
  peerType: string | null
  pid: number | null
  alive: boolean | null
  uid: number | null
  generation: number
  accept: boolean
  receive: boolean
  redirect: number | null
  requestsQueued: number
  repliesQueued: number
  counters: PortInfo['counters']
  /** Requests and buffer bytes held against the port's quota (max 0: unlimited). */
  quota: { requests: number; maxRequests: number; buffer: number; maxBuffer: number }
  /** Bucket b counts replies received after [2^b, 2^(b+1)) us (submit -> receive). */
  latencyUsLog2: number[]
}

export function portView(p: PortInfo): PortView {
  const free = p.state === 'free'
  return {
    port: p.port,
    state: p.state === 'bound' && !p.alive ? 'dead' : p.state,
    dynamic: p.dynamic,
    peerType: free ? null : p.peer_type,
    pid: free ? null : p.pid,
    alive: free ? null : p.alive,
    uid: free ? null : p.uid,
    generation: p.gen,
    accept: (p.flags & XSEG_PORT_ACCEPT) !== 0,
    receive: (p.flags & XSEG_PORT_RECEIVE) !== 0,
    redirect: p.redirect,
    requestsQueued: p.requests_queued,
    repliesQueued: p.replies_queued,
    counters: p.counters,
    quota: { requests: p.quota.requests, maxRequests: p.quota.max_requests, buffer: p.quota.buffer, maxBuffer: p.quota.max_buffer },
    latencyUsLog2: p.latency_us_log2,
  }
}

/**
 * Join @spec to look only (status, verify, top, metrics): as an observer, so
 * the command adds no entry to the peer-type table, works on a segment whose
 * table is full, and is not counted among the attached peers it shows.
 */
export function observe(spec: string): Segment {
  return Segment.joinSync(spec, { observe: true, peerCheckMs: 0 })
}

/** A port worth showing: in use, or with something queued or counted. */
export function portInUse(p: PortInfo): boolean {
  const c = p.counters
  return p.state !== 'free' || p.requests_queued > 0 || p.replies_queued > 0 ||
    c.submitted + c.accepted + c.responded + c.received + c.failed + c.reclaimed > 0
}

/** The segment as status and top show it (docs/cli.schema.json#/$defs/segment). */
export function segmentView(info: SegmentInfo, cfg: Segment['config']) {
  return {
    spec: cfg.spec,
    type: cfg.type,
    name: cfg.name,
    version: { major: info.major, minor: info.minor },
    size: info.size,
    uid: info.uid,
    gid: info.gid,
    mode: info.mode,
    creatorPid: info.creator_pid,
    created: new Date(Number(info.ctime_ns / 1000000n)).toISOString(),
    attached: info.attached,
    autorm: info.autorm,
    destroyed: info.destroyed,
    serial: info.serial.toString(),
    recoveries: info.recoveries,
    queueCapacity: info.queue_cap,
    requests: { live: info.live_requests, liveChunks: info.live_chunks, max: cfg.maxRequests, target: info.grow_target },
    peerTypes: info.peer_types,
    config: cfg,
    // The file's real owner and mode; ownerMismatch when the header disagrees.
    file: info.file,
    ownerMismatch: info.file !== null &&
      (info.file.uid !== info.uid || info.file.gid !== info.gid || info.file.mode !== info.mode),
  }
}

export const create: Command = {
  name: 'create',
  usage: 'create SPEC                  create a segment (EEXIST if the name is taken)',
  run(ctx) {
    // Create only: a creator that never joined is not a peer whose leave
    // could remove an autorm=1 segment (xseg-tool create does the same).
    const cfg = Segment.createDetached(needSpec(ctx))
    ctx.emit({ created: cfg.spec, config: cfg }, () => `created ${cfg.spec}\n`)
    return 0
  },
}

export const destroy: Command = {
  name: 'destroy',
  usage: 'destroy SPEC                 mark it destroyed, remove its name and FIFO directory',
  run(ctx) {
    const cfg = Segment.parseSpec(needSpec(ctx))
    Segment.destroy(cfg.spec)
    ctx.emit({ destroyed: cfg.name, type: cfg.type }, () => `destroyed ${cfg.type}:${cfg.name}\n`)
    return 0
  },
}

/** config --grow requests=N [--wait]: Segment.grow until done (--wait) or once. */
async function grow(ctx: Context, spec: string, what: string, wait: boolean): Promise<number> {
  const m = /^(?:requests=)?([0-9]+)$/.exec(what)
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 0xFFFFFFFF) throw new Usage(`--grow: '${what}' is not requests=N (N >= 1)`)
  const n = Number(m[1])
  using seg = Segment.joinSync(spec, { peerType: ctx.peerType, peerCheckMs: 0 })
  if (n > seg.config.maxRequests) {
    throw new XsegError('ERANGE', `--grow: ${n} requests is above the segment's max_requests (${seg.config.maxRequests})` +
      (seg.config.maxRequests === seg.config.nrRequests ? '; create it with max_requests= to make it growable' : ''))
  }
  let st
  for (;;) {
    try {
      st = seg.grow(n)
    } catch (e) {
      if ((e as XsegError).code !== 'EALREADY') throw e
      await new Promise((r) => setTimeout(r, 100))
      continue
    }
    if (st.done || !wait) break
    await new Promise((r) => setTimeout(r, 100))
  }
  const g = {
    done: st.done, liveRequests: st.live_requests, liveChunks: st.live_chunks, maxRequests: st.max_requests,
    target: st.target, added: st.added, held: st.held, bytesReleased: st.bytes_released,
  }
  ctx.emit({ config: seg.config, grow: g }, () => st.done
    ? `${seg.config.type}:${seg.config.name}: ${g.liveRequests} requests live (${g.liveChunks} chunks) of ${g.maxRequests} reserved; ` +
      `${g.added} added, ${g.bytesReleased} bytes given back\n`
    : `${seg.config.type}:${seg.config.name}: shrinking to ${g.target}: ${g.held} requests or chunks above it still held ` +
      `(parked as they come back; run again, or --wait)\n`)
  return st.done ? 0 : 1
}

export const config: Command = {
  name: 'config',
  usage: 'config SPEC [--set mode=0NNN,group=G,owner=U] [--grow requests=N [--wait]]\n' +
    '                               the spec parsed, every default filled in (joins nothing);\n' +
    '                               --set: owner, group and mode of the live segment;\n' +
    '                               --grow: make N requests live (up to max_requests=); a shrink\n' +
    '                               parks what comes back free (exit 1 while some are held; --wait)',
  options: { set: { type: 'string' }, grow: { type: 'string' }, wait: { type: 'boolean' } },
  async run(ctx) {
    const cfg = Segment.parseSpec(needSpec(ctx))
    if (typeof ctx.opts.grow === 'string') return grow(ctx, cfg.spec, ctx.opts.grow, ctx.opts.wait === true)
    if (ctx.opts.wait) throw new Usage('--wait goes with --grow')
    if (typeof ctx.opts.set === 'string') {
      const owner = Segment.setOwnerMode(cfg.spec, ctx.opts.set)
      ctx.emit({ config: cfg, owner }, () =>
        `${cfg.type}:${cfg.name}: owner uid ${owner.uid} gid ${owner.gid} mode ${owner.mode.toString(8).padStart(4, '0')}\n`)
      return 0
    }
    ctx.emit({ config: cfg }, () =>
      table(['field', 'value'], Object.entries(cfg).map(([k, v]) => [k, JSON.stringify(v)])))
    return 0
  },
}

export const status: Command = {
  name: 'status',
  usage: 'status SPEC [--all]          header, peer types, ports (state, owner, queues, counters)',
  options: { all: { type: 'boolean', short: 'a' } },
  run(ctx) {
    using seg = observe(needSpec(ctx))
    const info = seg.info()
    const ports: PortView[] = []
    for (let i = 0; i < seg.config.nrPorts; i++) {
      const p = seg.portInfo(i)
      if (ctx.opts.all || portInUse(p)) ports.push(portView(p))
    }
    const segment = segmentView(info, seg.config)
    ctx.emit({ segment, ports }, () => {
      const head = table(['', ''], [
        ['segment', segment.spec],
        ['version', `${info.major}.${info.minor}`],
        ['size', `${info.size} bytes`],
        ['creator', `uid ${info.uid} pid ${info.creator_pid}, mode ${info.mode.toString(8).padStart(4, '0')}, ${segment.created}`],
        ...(info.file ? [['file', `uid ${info.file.uid} gid ${info.file.gid} mode ${info.file.mode.toString(8).padStart(4, '0')}` +
          (segment.ownerMismatch ? ` (MISMATCH: the header says uid ${info.uid} gid ${info.gid} mode ${info.mode.toString(8).padStart(4, '0')})` : '')]] : []),
        ['attached', `${info.attached} peers${info.destroyed ? ', destroyed' : ''}${info.autorm ? ', auto-remove' : ''}`],
        ['requests', `${info.live_requests} live of ${seg.config.maxRequests}` +
          (info.grow_target < info.live_requests ? `, shrinking to ${info.grow_target}` : '') +
          ` (queue capacity ${info.queue_cap}), serial ${info.serial}, recoveries ${info.recoveries}`],
        ['peer types', `${info.peer_types.join(', ') || '-'} (${info.peer_types.length} of ${seg.config.peerTypes} entries)`],
      ]).split('\n').slice(1).join('\n')
      return head + '\n' + portTable(ports)
    })
    return 0
  },
}

/** Usage against quota: "3/4", "3/-" (unlimited); bytes in K/M/G. */
export function quotaCells(q: PortView['quota']): [string, string] {
  const sz = (n: number): string =>
    n >= 2 ** 30 && n % 2 ** 30 === 0 ? `${n / 2 ** 30}G` : n >= 2 ** 20 && n % 2 ** 20 === 0 ? `${n / 2 ** 20}M`
      : n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : `${n}`
  return [`${q.requests}/${q.maxRequests || '-'}`, `${sz(q.buffer)}/${q.maxBuffer ? sz(q.maxBuffer) : '-'}`]
}

/** The ports as a text table (status). */
export function portTable(ports: PortView[]): string {
  if (!ports.length) return 'no port in use\n'
  return table(
    ['port', 'state', 'type', 'pid', 'alive', 'reqq', 'repq', 'held/quota', 'buf/quota', 'submitted', 'accepted', 'responded',
      'received', 'failed', 'reclaimed'],
    ports.map((p) => [
      p.port, p.state, p.peerType ?? '-', p.pid ?? '-', p.alive === null ? '-' : p.alive ? 'yes' : 'no',
      p.requestsQueued, p.repliesQueued, ...quotaCells(p.quota), p.counters.submitted, p.counters.accepted,
      p.counters.responded, p.counters.received, p.counters.failed, p.counters.reclaimed,
    ]),
    [0, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
  )
}

export const recover: Command = {
  name: 'recover',
  usage: 'recover SPEC                 settle the ports of dead peers',
  run(ctx) {
    using seg = Segment.joinSync(needSpec(ctx), { peerType: ctx.peerType, peerCheckMs: 0 })
    const st = seg.recover()
    const recovery = {
      portsFreed: st.ports_freed,
      requestsFailed: st.requests_failed,
      requestsFreed: st.requests_freed,
      buffersFreed: st.buffers_freed,
      holdsSettled: st.holds_settled,
    }
    ctx.emit({ recovery }, () =>
      `${st.ports_freed} ports freed, ${st.requests_failed} requests failed back, ${st.requests_freed} requests freed, ` +
      `${st.buffers_freed} buffers freed, ${st.holds_settled} queue moves settled\n`)
    return 0
  },
}

export const verify: Command = {
  name: 'verify',
  usage: 'verify SPEC                  consistency check (exit 1 on problems)',
  run(ctx) {
    using seg = observe(needSpec(ctx))
    const problems = seg.verify()
    ctx.emit({ ok: problems.length === 0, problems }, () =>
      problems.map((l) => `  ${l}\n`).join('') + `${problems.length} problem${problems.length === 1 ? '' : 's'}\n`)
    return problems.length ? 1 : 0
  },
}
