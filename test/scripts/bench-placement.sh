#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the NBD benchmarks' one-CPU rows (bench/lib/procs.ts onCpus,
# pinCpus): a short run of bench/volume/run.ts (the written volume and
# gateway -> blockd, 4K random writes at depth 1) gives the row as placed by
# the scheduler and the row "... on CPU 0", each with IOPS of both servers in
# its JSON (pinCpus checks every thread of every server process, so a row
# that was not on CPU 0 fails the run); a CPU the machine lacks (--cpu 99) is
# refused by name; neither run leaves a segment, a process or a folder.
# Not a speed test: it asserts what the rows are, not what they measure.
set -u
. "$(dirname "$0")/lib.sh"
need_cmds fio nbdcopy qemu-nbd qemu-img taskset
need_bins blockd filed mapperd vlmcd
# The gateway and tsx: the node domain, built if missing or stale (as test/node/run does).
"$home/sys/node/build" >/dev/null
case $? in
  0) ;;
  77) skip "no Node.js or npm for the gateway" ;;
  *) fail "sys/node/build failed" ;;
esac
tsx=$home/node_modules/.bin/tsx
[ -x "$tsx" ] || fail "$tsx missing after sys/node/build"
ts_tmp xseg-bench-placement
before=$(ls -d /dev/shm/xseg-volbench-* 2>/dev/null | sort)

# In a session of its own, so that whatever it leaves running can be found.
setsid --wait "$tsx" "$home/bench/volume/run.ts" --only "randwrite QD1" --servers volume,blockd --rounds 1 \
	--runtime 1 --size 64M --out "$tmp/v.json" >"$tmp/out" 2>&1 &
sid=$!
wait $sid; rc=$?
out=$(cat "$tmp/out")
[ "$rc" = 0 ] || fail "bench/volume/run.ts exited $rc: $out"
# The bench waits for its servers; zombies its exit handed to init do not count.
left=$(ps -s "$sid" -o pid=,stat= | awk '$2 !~ /^Z/ { print $1 }')
[ -z "$left" ] || { pids+=($left); fail "left running: $(ps -o pid,stat,args -s "$sid")"; }
node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
  const rows = Object.fromEntries(d.rows.map((r) => [r.workload, r]))
  const placed = rows["4K randwrite QD1"], pinned = rows["4K randwrite QD1 on CPU 0"]
  if (!placed || !pinned) throw new Error("rows: " + Object.keys(rows).join(", "))
  if (placed.onCpus !== undefined || pinned.onCpus !== "0") throw new Error("onCpus: " + placed.onCpus + " / " + pinned.onCpus)
  for (const r of [placed, pinned]) for (const s of ["volume", "blockd"])
    if (!(r[s] && r[s].iops > 0)) throw new Error(r.workload + ": no IOPS for " + s)
  for (const s of ["volume", "blockd"])
    if (pinned[s].ranOn !== "0" || placed[s].ranOn !== undefined) throw new Error(s + ": ranOn " + pinned[s].ranOn + " / " + placed[s].ranOn)
  if (!(pinned.volumeVsBlockd > 0)) throw new Error("no ratio in the one-CPU row")
' "$tmp/v.json" || fail "the JSON lacks the rows: $out"
grep -q "^4K randwrite QD1 on CPU 0 " <<<"$out" || fail "no one-CPU row in the table: $out"

out=$("$tsx" "$home/bench/volume/run.ts" --only "randwrite QD1" --servers blockd --rounds 1 --runtime 1 \
	--size 64M --cpu 99 --out "$tmp/bad.json" 2>&1) && fail "--cpu 99 was taken: $out"
grep -q -- "--cpu: this machine has CPUs 0-$(($(nproc --all) - 1)), not 99" <<<"$out" || fail "--cpu 99: $out"
[ ! -e "$tmp/bad.json" ] || fail "--cpu 99 wrote results"

after=$(ls -d /dev/shm/xseg-volbench-* 2>/dev/null | sort)
[ "$before" = "$after" ] || fail "left in /dev/shm: $after"
echo "PASS: one-CPU rows (volume and blockd), --cpu 99 refused, nothing left"
