// SPDX-License-Identifier: BSD-2-Clause
//
// test/node/helpers.ts - fixtures shared by the node domain's tests: unique
// segment specs, child processes that die with their parent and report each
// step on stdout, and the C peers built by `make user`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const ROOT = join(__dirname, '..', '..')
export const FIXTURES = join(__dirname, 'fixtures')
export const C_BIN = join(ROOT, 'lib', 'user', 'bin')
/** The TypeScript loader for child processes and workers (CommonJS hook). */
export const TSX = require.resolve('tsx/cjs')

/**
 * RUN_TAG, "<pid>-<RUN_NONCE in 8 hex>": the tag of every name (and RUN_NONCE
 * of every SysV key) this run makes. The pid alone is
 * not enough: pids come round again within one `make check`, and a segment
 * an earlier run left behind (a SIGKILL no exit handler survives) would then
 * collide with a new test's create.
 */
export const RUN_NONCE = randomBytes(4).readUInt32LE(0)
export const RUN_TAG = `${process.pid}-${RUN_NONCE.toString(16).padStart(8, '0')}`

let seq = 0
const specs = new Set<string>()

/**
 * A spec with a name no other test (or run) uses. The names carry RUN_TAG,
 * so whatever segment of these a test leaves (a failed assertion, a stop
 * from outside) is provably ours and is destroyed when the process exits.
 */
export function uniqueSpec(rest = '16:256:64K', type = 'posix'): string {
  const spec = `${type}:xseg-node-${RUN_TAG}-${++seq}:${rest}`
  specs.add(spec)
  return spec
}

/** The `xseg` command, built by `make node`. */
export const CLI = join(ROOT, 'lib', 'node', 'cli.js')

/** How a command run to its end went: exit code (null if killed), stdout, stderr. */
export interface Run {
  code: number | null
  out: string
  err: string
}

/** Run `xseg ...@args` to its end (60 s hang guard). */
export function xseg(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

/** The path of C peer @name, or undefined if it is not built. */
/**
 * A check a test cannot run here: says so, and throws under CI=true (where
 * a skip is a failure), so a missing tool never passes silently there.
 */
export function skipCheck(why: string): void {
  console.log(`  skip: ${why}`)
  if (process.env.CI === 'true') throw new Error(`CI: ${why}`)
}

export function cPeer(name: string): string | undefined {
  const p = join(C_BIN, name)
  return existsSync(p) ? p : undefined
}

export interface Child {
  proc: ChildProcess
  /** Lines the child printed on stdout, in order. */
  lines: string[]
  /** Resolves with the first stdout line matching @re (rejects on exit first). */
  waitFor(re: RegExp, ms?: number): Promise<string>
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>
  /** What it wrote on stderr. */
  stderr(): string
  kill(sig?: NodeJS.Signals): void
}

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  if (specs.size === 0) return
  // Loaded only here: a test that made a spec has loaded the addon already.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Segment } = require('../../sys/node/ts/index') as typeof import('../../sys/node/ts/index')
  for (const spec of specs) {
    try {
      Segment.destroy(spec)
    } catch {
      // gone already (the test destroyed it), or never created
    }
  }
})
// The runner's timeout sends SIGTERM (SIGKILL 5 s later), Ctrl-C SIGINT:
// exit through the 'exit' handlers above, so children and segments go too.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    process.stderr.write(`FAIL: stopped by ${sig}; cleaning up\n`)
    process.exit(1)
  })
}

/**
 * Start @cmd with @args. Its stdin is a pipe that the parent never closes: a
 * fixture exits when it reads EOF, so it dies with its parent.
 */
export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  children.add(proc)
  const lines: string[] = []
  let err = ''
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l)
    for (const w of [...waiters]) {
      if (w.re.test(l)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(l)
      }
    }
  })
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, sig) => {
      children.delete(proc)
      resolve(code ?? sig ?? -1)
    })
  })
  return {
    proc,
    lines,
    exited,
    stderr: () => err,
    kill: (sig = 'SIGTERM') => {
      proc.kill(sig)
    },
    waitFor(re: RegExp, ms = 10000): Promise<string> {
      const seen = lines.find((l) => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} from ${cmd}; stderr: ${err}`)), ms)
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(t)
            resolve(l)
          },
        })
        void exited.then((code) => {
          clearTimeout(t)
          reject(new Error(`${cmd} exited (${code}) before printing ${re}; stderr: ${err}`))
        })
      })
    },
  }
}

/** Run TypeScript fixture @name (test/node/fixtures/@name.ts) in a child Node. */
export function startFixture(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return start(process.execPath, ['--require', TSX, join(FIXTURES, `${name}.ts`), ...args], env)
}

/** Stop @c (SIGTERM, then SIGKILL after @ms) and wait for it. */
export async function stop(c: Child, ms = 3000): Promise<number | string> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return c.exited
  c.kill('SIGTERM')
  const t = setTimeout(() => c.kill('SIGKILL'), ms)
  const r = await c.exited
  clearTimeout(t)
  return r
}

/** Reject after @ms with @what, so a hung wait fails the test instead of the run. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)
    }),
  ])
}

/** The state letter of process @pid (R, S, T...), from /proc; '?' if it is gone. */
export function procState(pid: number): string {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?'
  } catch {
    return '?'
  }
}

/** Poll @cond every 20 ms until it holds; fail with @what after @ms. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  await within((async () => {
    while (!cond()) await new Promise((r) => setTimeout(r, 20))
  })(), ms, what)
}

/** The code of what @fn throws (or of the rejection of what it returns). */
export async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn()
  } catch (e) {
    return (e as { code?: string }).code ?? `no code: ${String(e)}`
  }
  return undefined
}
