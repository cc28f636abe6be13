#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the npm package as a user gets it. `npm pack` of a clean copy
# of the tree (the files git knows in the working tree, changes included; no
# lib/, prebuilds/ or build/, so `prepack` must build what ships), with an npm
# cache inside the test's temp dir. The tarball's file list: LICENSE, the npm
# README (sys/node/README.npm.md), lib/node, a libc-tagged prebuild, the
# sources a source build needs, the docs --help names; no test/, bench/,
# tools/, build/. Installed into a fresh project (`npm install TARBALL`, the
# dependencies from the registry): no source build happened; require() from
# CommonJS and import from ESM with a request through a Port pair, the
# failures as XsegError, NbdGateway and Pipeline at the root, servePool with
# a handler module, the README's
# quick start as written, `npx xseg --version`, and the types of both
# builds (tsc, NodeNext). Then prebuilds/ removed from the installed package
# and `npm rebuild xseg` (the install script: node-gyp-build -> node-gyp
# rebuild) builds the addon from the shipped sources and the same checks
# pass. About 2 minutes on an idle 2-CPU machine (two addon builds).
set -eu
for t in node npm git tar; do
	command -v $t >/dev/null || { echo "SKIP: $t not found"; [ "${CI:-}" = true ] && exit 1; exit 77; }
done
home=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/xseg-npm-pack.XXXXXX)
tag=$(basename "$tmp" | tr -c 'a-zA-Z0-9\n' '-')
src=$tmp/src proj=$tmp/proj
export npm_config_cache=$tmp/npm-cache npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# node-gyp builds against the running Node's headers when they are here (as sys/node/build).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ] && [ "$(command -v node)" = /usr/bin/node ]; then
	export npm_config_nodedir=/usr
fi
segs=()	# the segments the smoke programs may leave behind if they fail
cleanup() {
	local cli=$proj/node_modules/xseg/lib/node/cli.js
	if [ -f "$cli" ] && [ -e "$proj/node_modules/xseg/prebuilds" -o -e "$proj/node_modules/xseg/build/Release/xseg.node" ]; then
		for s in "${segs[@]}"; do
			node "$cli" destroy "posix:$s" >/dev/null 2>&1 || true
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. The clean copy: what git tracks or would track (changes included, deleted files not).
mkdir -p "$src"
(cd "$home" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done |
	tar --null -T - -cf -) | tar -C "$src" -xf -
for d in prebuilds build lib/node/index.js lib/node/cli.js; do
	[ ! -e "$src/$d" ] || fail "the clean copy has $d"
done
# Its dev dependencies: the tree's node_modules (read only: links, one per
# package; the lock stamp a real file, so sys/node/build runs no npm ci here
# and nothing can write through to the tree); without one, prepack installs them.
if [ -d "$home/node_modules/tsup" ] && [ -d "$home/node_modules/prebuildify" ]; then
	mkdir "$src/node_modules"
	for e in "$home"/node_modules/* "$home"/node_modules/.bin; do
		ln -s "$e" "$src/node_modules/$(basename "$e")"
	done
	cp "$home/node_modules/.package-lock.json" "$src/node_modules/.package-lock.json"
fi

# 2. npm pack: prepack builds lib/node and the prebuild, swaps the README in.
start=$(date +%s)
(cd "$src" && npm pack --loglevel=warn --pack-destination "$tmp" >"$tmp/pack.out" 2>"$tmp/pack.err") ||
	{ cat "$tmp/pack.out" "$tmp/pack.err"; fail "npm pack"; }
tgz=$tmp/$(tail -n 1 "$tmp/pack.out")
[ -f "$tgz" ] || fail "npm pack printed no tarball name: $(cat "$tmp/pack.out")"
echo "npm pack: $(basename "$tgz"), $(($(date +%s) - start)) s"
cmp -s "$src/README.md" "$home/README.md" || fail "postpack did not put the repository's README.md back"
[ ! -e "$src/lib/node/README.repo.md" ] || fail "postpack left lib/node/README.repo.md"

# 3. What the tarball holds.
tar tzf "$tgz" | sed 's|^package/||' | sort >"$tmp/files"
must=(package.json LICENSE README.md binding.gyp lib/node/index.js lib/node/index.mjs lib/node/index.d.ts
	lib/node/index.d.mts lib/node/cli.js sys/node/addon/addon.cc sys/node/addon/sources.js sys/node/builtins.h
	peers/node/nbd/engine/napi.cc xseg/xseg.h xq/xq.h sys/domain.h docs/node.md docs/cli.md
	docs/cli.schema.json docs/nbd.md docs/serve.md)
for f in "${must[@]}"; do
	grep -qx "$f" "$tmp/files" || fail "the tarball lacks $f"
done
libc=glibc
[ -f /etc/alpine-release ] && libc=musl
grep -qE "^prebuilds/linux-[a-z0-9]+/[^/]*\\.$libc\\.node$" "$tmp/files" ||
	fail "no $libc-tagged prebuild in the tarball: $(grep prebuilds "$tmp/files" | tr '\n' ' ')"
bad=$(grep -E '^(test|bench|tools|build|node_modules|lib/user|envsetup|\.git)/|^lib/node/(build\.log|README)|\.o$' "$tmp/files" || true)
[ -z "$bad" ] || fail "the tarball holds what it must not: $(echo "$bad" | head -n 5 | tr '\n' ' ')"
tar xzf "$tgz" -O package/README.md | cmp -s - "$home/sys/node/README.npm.md" ||
	fail "the tarball's README.md is not sys/node/README.npm.md"
tar xzf "$tgz" -O package/LICENSE | grep -q 'BSD 2-Clause' || fail "LICENSE is not the BSD-2-Clause text"
tar xzf "$tgz" -O package/package.json | node -e '
	const p = JSON.parse(require("fs").readFileSync(0, "utf8"))
	if (p.private) throw new Error("package.json is private")
	if (p.license !== "BSD-2-Clause") throw new Error("license " + p.license)'
echo "tarball: $(wc -l <"$tmp/files") files, $(du -k "$tgz" | cut -f1) KiB"

# 4. A fresh project installs it (dependencies from the registry).
mkdir -p "$proj"
echo '{ "name": "consumer", "version": "1.0.0", "private": true }' >"$proj/package.json"
if ! (cd "$proj" && npm install --loglevel=error "$tgz" >"$tmp/install.log" 2>&1); then
	if grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH' "$tmp/install.log"; then
		echo "SKIP: the npm registry is unreachable: $(grep -m1 -E 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH' "$tmp/install.log")"
		[ "${CI:-}" = true ] && exit 1
		exit 77
	fi
	cat "$tmp/install.log"
	fail "npm install of the tarball"
fi
[ ! -e "$proj/node_modules/xseg/build" ] || fail "installing built the addon from source although a prebuild fits"

# The README's quick start as written (ESM), and the smoke programs.
tar xzf "$tgz" -O package/README.md | node -e '
	const md = require("fs").readFileSync(0, "utf8")
	const m = /## Quick start[\s\S]*?```js\n([\s\S]*?)```/.exec(md)
	if (!m) throw new Error("README.md has no quick start js block")
	process.stdout.write(m[1])' >"$proj/quickstart.mjs"
# docs/node.md shows the same program (comments aside).
node -e '
	const fs = require("fs")
	const code = (text) => text.split("\n").filter((l) => !/^\s*\/\//.test(l)).join("\n")
	const m = /<!-- quickstart -->\s*```js\n([\s\S]*?)```/.exec(fs.readFileSync(process.argv[1], "utf8"))
	if (!m) throw new Error("docs/node.md has no <!-- quickstart --> js block")
	const a = code(m[1]), b = code(fs.readFileSync(process.argv[2], "utf8"))
	if (a !== b) { console.error("FAIL: the quick starts of docs/node.md and the npm README differ"); process.exit(1) }' \
	"$home/docs/node.md" "$proj/quickstart.mjs" || exit 1
cat >"$proj/smoke.cjs" <<'JS'
const x = require('xseg')
const name = process.argv[2]
for (const k of ['Segment', 'Port', 'Request', 'XsegError', 'NbdGateway', 'NbdClient', 'NbdError', 'Pipeline',
  'loadServeConfig', 'parseServeConfig', 'servePool']) if (typeof x[k] !== 'function') throw new Error(`require('xseg').${k} is ${typeof x[k]}`)
;(async () => {
  const seg = await x.Segment.create(`posix:${name}:8:16:4K`, { destroyOnClose: true })
  const server = seg.bindPort(1)
  const client = seg.bindDynamicPort()
  const reply = client.request({ op: 'read', target: 't', size: 5 }).submit(1)
  const req = server.acceptSync() ?? (await server.accept().next()).value
  req.data.write('hello'); req.serviced = 5; req.respond()
  const r = await reply
  const got = r.data.subarray(0, r.serviced).toString(); r.release()
  let err
  try { seg.bindPort(1) } catch (e) { err = e }
  const bad = err instanceof x.XsegError && err.code === 'EALREADY' && err.errno < 0 && err.syscall === 'port_bind'
  seg.close()
  // servePool: worker threads serving ports, a handler module as a user writes one.
  const pseg = x.Segment.createSync(`posix:${name}p:8:16:4K`, { destroyOnClose: true })
  const pool = await x.servePool({ spec: pseg.config.spec, port: 1, workers: 2, module: __dirname + '/handler.cjs' })
  const c = pseg.bindDynamicPort()
  const out = []
  for (const p of pool.ports) {
    const pr = await c.request({ op: 'read', size: 4 }).submit(p)
    out.push(pr.data.subarray(0, pr.serviced).toString())
    pr.release()
  }
  await pool.close()
  pseg.close()
  console.log('cjs', got, bad, out.join(','))
})().catch((e) => { console.error(e); process.exit(1) })
JS
echo "exports.handler = (req) => { req.data.write('pool'); req.serviced = 4 }" >"$proj/handler.cjs"
cat >"$proj/smoke.mjs" <<'JS'
import { Segment, XsegError, NbdGateway, Pipeline } from 'xseg'
const seg = await Segment.create(`posix:${process.argv[2]}:8:16:4K`, { destroyOnClose: true })
const server = seg.bindPort(1)
const stop = new AbortController()
const serving = server.serve((req) => { req.data.write('world'); req.serviced = 5 }, { signal: stop.signal })
const r = await seg.bindDynamicPort().request({ op: 'read', size: 5 }).submit(1)
const got = r.data.subarray(0, r.serviced).toString()
r.release()
stop.abort()
await serving
seg.close()
const e = await Segment.join(`posix:${process.argv[2]}`).catch((err) => err)
console.log('esm', got, e instanceof XsegError && e.code === 'ENOENT' && e.syscall === 'seg_join', typeof NbdGateway, typeof Pipeline)
JS
cat >"$proj/types.mts" <<'TS'
import { Segment, XsegError, NbdGateway, NbdClient, Pipeline, loadServeConfig, type NbdGatewayOptions, type ServeConfig } from 'xseg'
const s: Promise<Segment> = Segment.join('posix:x')
const o: Partial<NbdGatewayOptions> = { storagePort: 1 }
const f: (file: string) => ServeConfig = loadServeConfig
const e: XsegError = new XsegError('EIO', 'x')
const code: string = e.code, errno: number | undefined = e.errno, sc: string | undefined = e.syscall
export { s, o, f, code, errno, sc, NbdGateway, NbdClient, Pipeline }
TS
cat >"$proj/types.cts" <<'TS'
import xseg = require('xseg')
const s: Promise<xseg.Segment> = xseg.Segment.join('posix:x')
const o: Partial<xseg.NbdGatewayOptions> = { storagePort: 1 }
const e: xseg.XsegError = new xseg.XsegError('EIO', 'x')
const errno: number | undefined = e.errno, sc: string | undefined = e.syscall
export { s, o, errno, sc }
const g: typeof xseg.NbdGateway = xseg.NbdGateway
const p: typeof xseg.Pipeline = xseg.Pipeline
void g; void p
TS

smoke() {	# $1: how the addon was built
	local n=0 out pid
	for prog in smoke.cjs smoke.mjs; do
		n=$((n + 1))
		segs+=("$tag$n" "$tag${n}p")
		out=$(cd "$proj" && node "$prog" "$tag$n") || fail "$prog ($1)"
		case "$prog:$out" in
		smoke.cjs:"cjs hello true pool,pool") ;;
		smoke.mjs:"esm world true function function") ;;
		*) fail "$prog ($1) printed: $out" ;;
		esac
	done
	(cd "$proj" && exec node quickstart.mjs >"$tmp/qs.out") &
	pid=$!
	segs+=("quickstart-$pid")
	wait $pid || fail "the README's quick start ($1)"
	[ "$(cat "$tmp/qs.out")" = "true 4096 true" ] || fail "the README's quick start ($1) printed: $(cat "$tmp/qs.out")"
	out=$(cd "$proj" && npx --no-install xseg --version) || fail "npx xseg --version ($1)"
	[[ $out == "xseg $(node -p "require('$proj/node_modules/xseg/package.json').version")"* ]] ||
		fail "npx xseg --version printed: $out"
	echo "smoke ($1): CJS, ESM, quick start, npx xseg --version: ok"
}
smoke prebuild

# The declarations of both builds, as a user's TypeScript (NodeNext) sees them.
tsc=$home/node_modules/.bin/tsc
if [ -x "$tsc" ] && [ -d "$home/node_modules/@types/node" ]; then
	"$tsc" --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 \
		--typeRoots "$home/node_modules/@types" --types node "$proj/types.mts" "$proj/types.cts" ||
		fail "the package's types (ESM .d.mts and CJS .d.ts) do not check"
	echo "types: ESM and CJS declarations check"
else
	echo "types: not checked (no typescript in $home/node_modules)"
	[ "${CI:-}" = true ] && fail "CI: typescript missing"
fi

# 5. No prebuild fits: the install script builds the addon from the sources.
rm -rf "$proj/node_modules/xseg/prebuilds"
start=$(date +%s)
(cd "$proj" && npm rebuild xseg --foreground-scripts >"$tmp/rebuild.log" 2>&1) ||
	{ tail -n 40 "$tmp/rebuild.log"; fail "npm rebuild xseg (the source build)"; }
[ -f "$proj/node_modules/xseg/build/Release/xseg.node" ] ||
	{ tail -n 20 "$tmp/rebuild.log"; fail "npm rebuild xseg built no build/Release/xseg.node"; }
echo "source build: $(($(date +%s) - start)) s"
smoke "source build"
echo "ok"
