// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-volume.ts - `xseg volume ACTION ...`: thin volumes,
// snapshots and clones, through the Volumes API (sys/node/ts/volumes.ts) to
// vlmcd's port (or mapperd's) in a segment (docs/volumes.md):
//
//   xseg volume create NAME --size 10G [--object-size 4M]
//   xseg volume snapshot VOL SNAP | clone VOL@SNAP NEW [--size N] | resize VOL SIZE
//   xseg volume rm VOL[@SNAP] | ls | info VOL[@SNAP] | fsck [--repair]
//   common: -g SPEC (or $XSEG_SPEC)  -p PORT (or $XSEG_VOLUME_PORT)  [--timeout MS]
import { Segment, Volumes, type FsckResult, type VolumeEntry, type VolumeInfo } from '../../../sys/node/ts/index.js'
import { type Command, type Context, Usage, num, table } from './cmd.js'
import { SIZE_HELP, parseSize } from './size.js'

const ACTIONS = ['create', 'snapshot', 'clone', 'resize', 'rm', 'ls', 'info', 'fsck'] as const
type Action = (typeof ACTIONS)[number]

/** What `xseg volume --json` prints besides schemaVersion and command (docs/cli.schema.json#/$defs/cmd-volume). */
export interface VolumeDoc {
  action: Action
  port: number
  /** The volume or snapshot acted on (not for ls, fsck). */
  target?: string
  /** Its INFO: after create, snapshot (the snapshot's), clone (the new volume's), resize; and info. */
  volume?: VolumeInfo
  /** ls. */
  volumes?: VolumeEntry[]
  /** fsck. */
  fsck?: FsckResult
}

/** A size argument (the one grammar of size.ts: 10G, 64KiB...), positive. */
function bytes(v: string | boolean | undefined, what: string): number {
  if (typeof v !== 'string') throw new Usage(`${what} is required (e.g. 10G)`)
  if (typeof parseSize(v) !== 'bigint') throw new Usage(`${what}: '${v}' is not a size (${SIZE_HELP})`)
  const n = num(v, what, 0)
  if (n <= 0) throw new Usage(`${what}: '${v}' is not a positive size`)
  return n
}

function args(ctx: Context, action: Action, names: string[]): string[] {
  const a = ctx.args.slice(1)
  if (a.length < names.length) throw new Usage(`volume ${action} needs ${names.join(' ')}`)
  if (a.length > names.length) throw new Usage(`volume ${action}: unexpected argument '${a[names.length]}'`)
  return a
}

function human(n: number): string {
  for (const [s, u] of [[40, 'T'], [30, 'G'], [20, 'M'], [10, 'K']] as const)
    if (n >= 2 ** s && n % 2 ** s === 0) return `${n / 2 ** s}${u}`
  return String(n)
}

function infoText(v: VolumeInfo): string {
  return table(['', ''], [
    ['name', v.name],
    ['kind', v.kind],
    ['size', `${human(v.size)} (${v.size} bytes)`],
    ['object size', human(v.objectSize)],
    ['parent', v.parent ?? '-'],
    ['snapshots', v.snapshots.join(', ') || '-'],
    ['clones', v.clones.join(', ') || '-'],
    ['objects', `${v.objects} (${v.bytes} bytes)`],
    ['open by', v.openBy ?? '-'],
    ['readers', v.readers.join(', ') || '-'],
    ['id', `${v.id}, map version ${v.version}`],
  ]).split('\n').slice(1).join('\n')
}

async function run(ctx: Context): Promise<number> {
  const action = ctx.args[0] as Action | undefined
  if (!action) throw new Usage(`volume needs an action: ${ACTIONS.join(', ')}`)
  if (!ACTIONS.includes(action)) throw new Usage(`volume: unknown action '${action}' (${ACTIONS.join(', ')})`)
  const o = ctx.opts
  const spec = (o.segment as string | undefined) ?? process.env.XSEG_SPEC
  if (!spec) throw new Usage('volume needs -g SPEC (or XSEG_SPEC in the environment): the segment of the volume peer')
  const portArg = (o.port as string | undefined) ?? process.env.XSEG_VOLUME_PORT
  if (portArg === undefined) throw new Usage("volume needs -p PORT (or XSEG_VOLUME_PORT): vlmcd's port (or mapperd's)")
  const port = num(portArg, '--port', -1)
  const timeoutMs = num(o.timeout, '--timeout', 30000)
  if (timeoutMs < 1) throw new Usage('--timeout must be at least 1 ms')
  for (const [k, acts] of [['size', ['create', 'clone']], ['object-size', ['create']], ['repair', ['fsck']]] as const)
    if (o[k] !== undefined && !(acts as readonly string[]).includes(action)) throw new Usage(`volume ${action}: --${k} is not an option of it`)

  // Arguments are checked before the segment is joined.
  let todo: (v: Volumes) => Promise<Omit<VolumeDoc, 'action' | 'port'>>
  switch (action) {
    case 'create': {
      const [name] = args(ctx, action, ['NAME'])
      const size = bytes(o.size, '--size')
      const objectSize = o['object-size'] === undefined ? undefined : bytes(o['object-size'], '--object-size')
      todo = async (v) => {
        await v.create(name!, { size, objectSize })
        return { target: name!, volume: await v.info(name!) }
      }
      break
    }
    case 'snapshot': {
      const [vol, snap] = args(ctx, action, ['VOL', 'SNAP'])
      todo = async (v) => {
        await v.snapshot(vol!, snap!)
        return { target: `${vol}@${snap}`, volume: await v.info(`${vol}@${snap}`) }
      }
      break
    }
    case 'clone': {
      const [src, name] = args(ctx, action, ['VOL@SNAP', 'NEW'])
      const size = o.size === undefined ? undefined : bytes(o.size, '--size')
      todo = async (v) => {
        await v.clone(src!, name!, { size })
        return { target: name!, volume: await v.info(name!) }
      }
      break
    }
    case 'resize': {
      const [name, s] = args(ctx, action, ['VOL', 'SIZE'])
      const size = bytes(s, 'SIZE')
      todo = async (v) => {
        await v.resize(name!, size)
        return { target: name!, volume: await v.info(name!) }
      }
      break
    }
    case 'rm': {
      const [name] = args(ctx, action, ['VOL[@SNAP]'])
      todo = async (v) => {
        await v.rm(name!)
        return { target: name! }
      }
      break
    }
    case 'info': {
      const [name] = args(ctx, action, ['VOL[@SNAP]'])
      todo = async (v) => ({ target: name!, volume: await v.info(name!) })
      break
    }
    case 'ls':
      args(ctx, action, [])
      todo = async (v) => ({ volumes: await v.ls() })
      break
    case 'fsck':
      args(ctx, action, [])
      todo = async (v) => ({ fsck: await v.fsck({ repair: o.repair === true }) })
      break
  }

  using seg = Segment.joinSync(spec, { peerType: ctx.peerType })
  if (port >= seg.config.nrPorts) throw new Usage(`--port: ${port} is not below the segment's ${seg.config.nrPorts} ports`)
  const vols = new Volumes(seg.bindDynamicPort(), port, { timeoutMs })
  const doc: VolumeDoc = { action, port, ...(await todo(vols)) }
  ctx.emit({ ...doc }, () => {
    switch (action) {
      case 'ls':
        return doc.volumes!.length
          ? table(['name', 'kind', 'size', 'parent'], doc.volumes!.map((e) => [e.name, e.kind, human(e.size), e.parent ?? '-']))
          : 'no volumes\n'
      case 'fsck': {
        const f = doc.fsck!
        return `${f.objects} objects, ${f.named} named by a map, ${f.leaked} leaked` +
          (f.repaired ? ' (removed)' : f.leaked ? ' (xseg volume fsck --repair removes them)' : '') + '\n' +
          f.leakedObjects.map((n) => `  ${n}\n`).join('')
      }
      case 'rm':
        return `removed ${doc.target}\n`
      case 'info':
        return infoText(doc.volume!)
      default:
        return `${action === 'resize' ? 'resized' : action === 'create' ? 'created' : action === 'snapshot' ? 'took snapshot' : 'cloned'} ` +
          `${doc.target}: ${human(doc.volume!.size)}${doc.volume!.parent ? `, from ${doc.volume!.parent}` : ''}\n`
    }
  })
  return 0
}

export const volume: Command = {
  name: 'volume',
  usage: 'volume create NAME --size N [--object-size N] | snapshot VOL SNAP | clone VOL@SNAP NEW [--size N]\n' +
    '       | resize VOL SIZE | rm VOL[@SNAP] | ls | info VOL[@SNAP] | fsck [--repair]\n' +
    '       -g SPEC -p PORT [--timeout MS]\n' +
    "                             thin volumes, snapshots and clones at vlmcd's port (or mapperd's)\n" +
    '                             in segment SPEC ($XSEG_SPEC, $XSEG_VOLUME_PORT; docs/volumes.md)',
  options: {
    segment: { type: 'string', short: 'g' },
    port: { type: 'string', short: 'p' },
    size: { type: 'string', short: 's' },
    'object-size': { type: 'string' },
    repair: { type: 'boolean' },
    timeout: { type: 'string', short: 'w' },
  },
  run,
}
