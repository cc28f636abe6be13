#!/usr/bin/env node
// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/cli/cli.ts - `xseg`, the command line of the node domain (docs/cli.md).
//
//   xseg COMMAND [ARGS] [--json] [--peer-type posixfd|futex]
//   xseg --version | --help
//
// Each command is a module exporting a Command (peers/node/cmd.ts); COMMANDS
// below is the dispatch table: a new command is one import and one entry.
// --json prints exactly one JSON document on stdout, errors included
// ({"schemaVersion": 1, "command": ..., "error": {"code", "message"}}), as
// docs/cli.schema.json describes. Exit status: 0 success, 1 failure, 2 usage.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type PeerType } from '../../../sys/node/ts/index.js'
import { packageRoot, native } from '../../../sys/node/ts/binding.js'
import { type Command, type Context, type Options, Usage, jsonDoc } from './cmd.js'
import { config, create, destroy, recover, status, verify } from './cmd-segment.js'
import { list } from './cmd-list.js'
import { bench, submit } from './cmd-submit.js'
import { pattern } from './cmd-serve.js'
import { demo, serve } from './cmd-pipeline.js'
import { top } from './top.js'
import { metrics } from './cmd-metrics.js'
import { nbd } from '../nbd/cmd.js'
import { volume } from './cmd-volume.js'

/** The commands, in the order `xseg --help` lists them. */
const COMMANDS: Command[] = [create, destroy, list, status, top, metrics, recover, verify, config, submit, bench, pattern, serve, demo, nbd, volume]

const COMMON: Options = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'peer-type': { type: 'string' },
}

function usage(): string {
  return 'usage: xseg COMMAND [options]\n' +
    COMMANDS.map((c) => '  ' + c.usage.replace(/\n/g, '\n  ') + '\n').join('') +
    'common options:\n' +
    '  --json                       print one JSON document (schemaVersion 1; docs/cli.md)\n' +
    '  --peer-type posixfd|futex    the peer type to join with (default posixfd)\n' +
    '  -h, --help                   this text; xseg --version: the versions\n'
}

/**
 * What a usage error prints after its message: the command's own usage
 * (its valid values included), or, without a known command, the list of
 * commands, never the whole help.
 */
function usageOf(cmd: Command | undefined): string {
  if (cmd) return `usage: xseg ${cmd.usage}\n(xseg ${cmd.name} --help; exit status 2: a usage error)\n`
  return `commands: ${COMMANDS.map((c) => c.name).join(', ')}\n(xseg --help lists them with their options)\n`
}

function version(): Record<string, unknown> {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name: string; version: string }
  return { package: pkg.name, version: pkg.version, node: process.versions.node, napiVersion: native.napi_version }
}

/** Run `xseg @argv`; resolves with the exit status. Prints the result (and errors). */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json')
  let name: string | null = null
  let cmd: Command | undefined
  try {
    // Leading common flags, then the command.
    let i = 0
    while (i < argv.length && /^(--json|--help|-h|--version)$/.test(argv[i]!)) i++
    if (argv.slice(0, i).includes('--version')) {
      const v = version()
      process.stdout.write(json ? jsonDoc('version', v) : `xseg ${String(v.version)} (node ${String(v.node)}, N-API ${String(v.napiVersion)})\n`)
      return 0
    }
    const cmdName = argv[i]
    if (cmdName === undefined || argv.slice(0, i).some((a) => a === '--help' || a === '-h')) {
      if (cmdName === undefined && !argv.slice(0, i).some((a) => a === '--help' || a === '-h'))
        throw new Usage('a COMMAND is needed')
      process.stdout.write(usage())
      return 0
    }
    name = cmdName
    const found = COMMANDS.find((c) => c.name === cmdName)
    if (!found) throw new Usage(`unknown command '${cmdName}'`)
    cmd = found
    const { values, positionals } = parseArgs({
      args: argv.slice(i + 1).filter((a) => a !== '--json'),
      allowPositionals: true,
      strict: true,
      options: { ...COMMON, ...found.options },
    })
    if (values.help) {
      process.stdout.write(`usage: xseg ${found.usage}\n`)
      return 0
    }
    const peerType = (values['peer-type'] ?? 'posixfd') as string
    if (peerType !== 'posixfd' && peerType !== 'futex') throw new Usage(`--peer-type: '${peerType}' is not posixfd or futex`)
    const ctx: Context = {
      command: found.name,
      args: positionals,
      opts: values as Context['opts'],
      json,
      peerType: peerType as PeerType,
      emit(doc, text) {
        process.stdout.write(json ? jsonDoc(found.name, doc) : text())
      },
    }
    return await found.run(ctx)
  } catch (e) {
    const err = e as Error & { code?: unknown }
    const isUsage = e instanceof Usage || (typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS'))
    const code = isUsage ? 'USAGE' : typeof err.code === 'string' ? err.code : 'EIO'
    if (json) process.stdout.write(jsonDoc(name, { error: { code, message: String(err.message) } }))
    else process.stderr.write(`xseg: ${String(err.message)}\n${isUsage ? usageOf(cmd) : ''}`)
    return isUsage ? 2 : 1
  }
}

const isMain = typeof require !== 'undefined' && typeof module !== 'undefined' ? require.main === module : true
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (e: unknown) => {
      process.stderr.write(`xseg: ${String(e)}\n`)
      process.exitCode = 1
    },
  )
}
