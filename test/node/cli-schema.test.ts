// SPDX-License-Identifier: BSD-2-Clause
//
// Description: docs/cli.schema.json and the TypeScript types of the views the
// CLI prints agree field by field: the schema's $defs/port, segment, config,
// counters against PortView, segmentView()'s return type, SegmentConfig and
// PortInfo['counters'], read with the TypeScript compiler (a probe module
// that names the types; nested objects and arrays of objects compared too;
// the volume views and `xseg volume`'s document as well).
// A field in one and not in the other, or required in the schema and
// optional in TypeScript, fails naming it; the drift cases change one side
// (the schema in memory, the types through the probe) and must fail.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ts from 'typescript'
import { ROOT } from './helpers'

type Schema = { [k: string]: unknown }
const SCHEMA = JSON.parse(readFileSync(join(ROOT, 'docs/cli.schema.json'), 'utf8')) as Schema

/** The file under peers/node that declares PortView (wherever the CLI's files live). */
function viewsFile(): string {
  const walk = (dir: string): string | undefined => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e)
      if (statSync(p).isDirectory()) {
        const r = walk(p)
        if (r) return r
      } else if (p.endsWith('.ts') && readFileSync(p, 'utf8').includes('export interface PortView')) return p
    }
    return undefined
  }
  const f = walk(join(ROOT, 'peers/node'))
  if (!f) throw new Error('no peers/node file declares PortView')
  return f.replace(/\.ts$/, '')
}

/** schema $def name -> the TypeScript type it describes (a type expression of the probe). */
const PAIRS: Record<string, string> = {
  port: 'PortView',
  segment: 'ReturnType<typeof segmentView>',
  config: 'SegmentConfig',
  counters: "PortInfo['counters']",
  volumeInfo: 'VolumeInfo',
  volumeEntry: 'VolumeEntry',
  fsck: 'FsckResult',
  'cmd-volume': "VolumeDoc & { schemaVersion: 1; command: 'volume' }",
}

/** The TypeScript side: a probe module naming each type, compiled with the project's options. */
function tsTypes(pairs: Record<string, string>): { checker: ts.TypeChecker; types: Map<string, ts.Type> } {
  const dir = mkdtempSync(join(tmpdir(), 'xseg-schema-'))
  try {
    const probe = join(dir, 'probe.ts')
    writeFileSync(probe, [
      `import type { PortView, segmentView } from ${JSON.stringify(viewsFile())}`,
      `import type { FsckResult, PortInfo, SegmentConfig, VolumeEntry, VolumeInfo } from ${JSON.stringify(join(ROOT, 'sys/node/ts/index'))}`,
      `import type { VolumeDoc } from ${JSON.stringify(join(ROOT, 'peers/node/cli/cmd-volume'))}`,
      'export type Views = {',
      ...Object.entries(pairs).map(([k, t]) => `  ${JSON.stringify(k)}: ${t}`),
      '}',
      '',
    ].join('\n'))
    // The project's compiler options (tsconfig.json); only the probe's own
    // errors count here (npm run typecheck checks the rest).
    const cfg = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile)
    const opts = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT).options
    const program = ts.createProgram([probe], { ...opts, noEmit: true, skipLibCheck: true })
    const sf0 = program.getSourceFile(probe)!
    const errs = [...program.getSyntacticDiagnostics(sf0), ...program.getSemanticDiagnostics(sf0)]
    if (errs.length) throw new Error(ts.formatDiagnostics(errs, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }))
    const checker = program.getTypeChecker()
    const sf = program.getSourceFile(probe)!
    const sym = checker.getSymbolAtLocation((sf.statements.find(ts.isTypeAliasDeclaration) as ts.TypeAliasDeclaration).name)!
    const views = checker.getDeclaredTypeOfSymbol(sym)
    const types = new Map<string, ts.Type>()
    for (const p of views.getProperties()) types.set(p.name, checker.getTypeOfSymbol(p))
    return { checker, types }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The object (or array) branch of a schema node: $ref resolved, a null branch of oneOf/anyOf dropped. */
function resolve(s: Schema, root: Schema): Schema {
  for (let i = 0; i < 20; i++) {
    if (typeof s.$ref === 'string') {
      const target = (root.$defs as Record<string, Schema>)[s.$ref.replace('#/$defs/', '')]
      if (!target) throw new Error(`docs/cli.schema.json: no ${s.$ref}`)
      s = target
      continue
    }
    const alts = (s.oneOf ?? s.anyOf) as Schema[] | undefined
    if (alts) {
      const nonNull = alts.filter((a) => a.type !== 'null')
      if (nonNull.length === 1 && nonNull[0]) {
        s = nonNull[0]
        continue
      }
    }
    return s
  }
  return s
}

/** What differs between schema node @s and TypeScript type @t, at @path, one line each. */
function compare(checker: ts.TypeChecker, s: Schema, t: ts.Type, path: string, root: Schema, out: string[]): void {
  s = resolve(s, root)
  t = checker.getNonNullableType(t)
  if (s.properties && typeof s.properties === 'object') {
    if (t.isUnion() || !(t.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection))) {
      out.push(`${path}: an object in docs/cli.schema.json, ${checker.typeToString(t)} in the TypeScript type`)
      return
    }
    const props = s.properties as Record<string, Schema>
    const required = new Set((s.required as string[] | undefined) ?? [])
    const tsProps = new Map(t.getProperties().map((p) => [p.name, p]))
    for (const k of Object.keys(props)) {
      const p = tsProps.get(k)
      if (!p) {
        out.push(`${path}.${k}: in docs/cli.schema.json, not in the TypeScript type`)
        continue
      }
      if (required.has(k) && (p.flags & ts.SymbolFlags.Optional))
        out.push(`${path}.${k}: required in docs/cli.schema.json, optional in the TypeScript type`)
      compare(checker, props[k]!, checker.getTypeOfSymbol(p), `${path}.${k}`, root, out)
    }
    for (const k of tsProps.keys())
      if (!(k in props)) out.push(`${path}.${k}: in the TypeScript type, not in docs/cli.schema.json`)
  } else if (s.items && typeof s.items === 'object' && checker.isArrayType(t)) {
    const el = checker.getTypeArguments(t as ts.TypeReference)[0]
    if (el) compare(checker, s.items as Schema, el, `${path}[]`, root, out)
  }
}

function drift(schema: Schema, pairs: Record<string, string>): string[] {
  const { checker, types } = tsTypes(pairs)
  const out: string[] = []
  for (const [def, t] of types) {
    const node = (schema.$defs as Record<string, Schema>)[def]
    if (!node) out.push(`${def}: no $defs/${def} in docs/cli.schema.json`)
    else compare(checker, node, t, def, schema, out)
  }
  return out
}

test('the schema and the TypeScript views agree field by field', () => {
  assert.equal(drift(SCHEMA, PAIRS), [])
})

test('a field added to the schema only fails, naming it', () => {
  const s = structuredClone(SCHEMA) as Schema
  const port = (s.$defs as Record<string, Schema>).port!
  ;(port.properties as Record<string, unknown>).holder = { type: 'integer' }
  const nested = (s.$defs as Record<string, Schema>).counters!
  ;(nested.properties as Record<string, unknown>).frobbed = { type: 'integer' }
  const d = drift(s, PAIRS)
  assert.ok(d.includes('port.holder: in docs/cli.schema.json, not in the TypeScript type'), d.join('\n'))
  assert.ok(d.includes('port.counters.frobbed: in docs/cli.schema.json, not in the TypeScript type'), d.join('\n'))
})

test('a field added to or dropped from the TypeScript view only fails, naming it', () => {
  const d = drift(SCHEMA, { ...PAIRS, port: "PortView & { holder: number }", segment: "Omit<ReturnType<typeof segmentView>, 'serial'>" })
  assert.ok(d.includes('port.holder: in the TypeScript type, not in docs/cli.schema.json'), d.join('\n'))
  assert.ok(d.includes('segment.serial: in docs/cli.schema.json, not in the TypeScript type'), d.join('\n'))
  const d2 = drift(SCHEMA, { ...PAIRS, port: "Omit<PortView, 'uid'> & { uid?: number }" })
  assert.ok(d2.includes('port.uid: required in docs/cli.schema.json, optional in the TypeScript type'), d2.join('\n'))
  const d3 = drift(SCHEMA, { ...PAIRS, volumeInfo: "Omit<VolumeInfo, 'openBy'>", 'cmd-volume': PAIRS['cmd-volume'] + ' & { extra: string }' })
  assert.ok(d3.includes('volumeInfo.openBy: in docs/cli.schema.json, not in the TypeScript type'), d3.join('\n'))
  assert.ok(d3.includes('cmd-volume.extra: in the TypeScript type, not in docs/cli.schema.json'), d3.join('\n'))
})

test.run()
