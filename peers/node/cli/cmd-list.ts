// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cmd-list.ts - `xseg list [TYPE]` and `xseg list file DIR`:
// the segments of a type with what `ipcs -m` shows (name, type, size, owner,
// mode, attached peers, created), read from each header without joining
// (Segment.peek: no attach, no recovery). `list file DIR` scans a directory
// for xseg segment files: regular files only (a symbolic link is never
// followed), each opened read-only in intent, nothing written.
import { lstatSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Segment } from '../../../sys/node/ts/index.js'
import { type Command, Usage, table } from './cmd.js'

/** One row of `xseg list` (docs/cli.schema.json#/$defs/cmd-list details). */
export interface ListEntry {
  name: string
  type: string
  size: number | null
  uid: number | null
  owner: string | null
  mode: number | null
  attached: number | null
  pids: number[]
  created: string | null
  /** Why the header could not be read (EACCES, EBADMSG...), else null. */
  error: string | null
}

/** uid -> user name from /etc/passwd (numbers stay numbers when unknown). */
function users(): Map<number, string> {
  const m = new Map<number, string>()
  try {
    for (const l of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = l.split(':')
      if (f.length > 2 && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]!)
    }
  } catch {
    // no passwd file: numbers only
  }
  return m
}

function entry(type: string, name: string, names: Map<number, string>): ListEntry {
  try {
    const p = Segment.peek(type, name)
    return {
      name, type, size: p.size, uid: p.uid, owner: names.get(p.uid) ?? String(p.uid), mode: p.mode,
      attached: p.attached, pids: [...new Set(p.pids)], // a process may join twice
      created: new Date(Number(p.ctime_ns / 1000000n)).toISOString(), error: null,
    }
  } catch (e) {
    const code = (e as { code?: unknown }).code
    return {
      name, type, size: null, uid: null, owner: null, mode: null, attached: null, pids: [], created: null,
      error: typeof code === 'string' ? code : 'EIO',
    }
  }
}

/** The regular files of @dir that are xseg segments of type file (symlinks, FIFOs... skipped). */
function scanDir(dir: string, names: Map<number, string>): ListEntry[] {
  let ents
  try {
    ents = readdirSync(dir, { withFileTypes: true })
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw Object.assign(new Error(`list file ${dir}: ${err.message}`), { code: err.code ?? 'EIO' })
  }
  const out: ListEntry[] = []
  for (const d of ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!d.isFile()) continue // a symlink is not followed, a FIFO never opened
    let size = 0
    try {
      size = lstatSync(join(dir, d.name)).size
    } catch {
      continue // gone meanwhile
    }
    if (size < 4096) continue // smaller than a header page: not a segment
    const e = entry('file', join(dir, d.name), names)
    if (e.error === 'EBADMSG') continue // not an xseg segment
    out.push(e)
  }
  return out
}

function human(n: number): string {
  for (const [s, u] of [[40, 'T'], [30, 'G'], [20, 'M'], [10, 'K']] as const)
    if (n >= 2 ** s) return `${(n / 2 ** s).toFixed(n % 2 ** s ? 1 : 0)}${u}`
  return String(n)
}

function localTime(iso: string): string {
  const d = new Date(iso)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`
}

export const list: Command = {
  name: 'list',
  usage: 'list [TYPE] | list file DIR   segments of a type (default posix) as ipcs -m shows them: name,\n' +
    '                             size, owner, mode, attached peers (pids), created; file: the segment\n' +
    '                             files in DIR (regular files only, symlinks never followed)',
  run(ctx) {
    const type = ctx.args[0] ?? 'posix'
    const dir = ctx.args[1]
    if (type === 'file' && dir === undefined) throw new Usage('list file needs a DIR to scan (list file DIR)')
    if (type !== 'file' && dir !== undefined) throw new Usage(`list: unexpected argument '${dir}'`)
    if (ctx.args.length > 2) throw new Usage(`list: unexpected argument '${ctx.args[2]}'`)
    const names = users()
    const details = type === 'file' ? scanDir(dir!, names) : Segment.list(type).map((n) => entry(type, n, names))
    ctx.emit({ type, segments: details.map((d) => d.name), details }, () =>
      details.length === 0 ? '' : table(['name', 'type', 'size', 'owner', 'mode', 'attached', 'pids', 'created'],
        details.map((d) => d.error !== null
          ? [d.name, d.type, '-', '-', '-', '-', d.error, '-']
          : [d.name, d.type, human(d.size!), d.owner!, d.mode!.toString(8).padStart(4, '0'), d.attached!,
              d.pids.length ? d.pids.join(',') : '-', localTime(d.created!)]),
        [2, 5]))
    return 0
  },
}
