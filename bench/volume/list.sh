#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/volume/list.sh - mapperd's fsck and DELETE of a 10 GiB volume of 4M
# objects (2,560 indices) holding 40 objects, with filed's LIST (A) and
# without (B: mapperd's hook XSEG_MAPPERD_FAULT=list-unsupported, the
# probing path a storage peer without LIST gets: an INFO or a DELETE per
# index). Two stores side by side (each its own segment, filed and mapperd,
# on /dev/shm), rounds interleaved A, B, A, B; prints each round's
# milliseconds and the median ratios B/A.
#
#   bench/volume/list.sh [--rounds N]
set -u
home=$(cd "$(dirname "$0")/../.." && pwd)
bin=$home/lib/user/bin
rounds=5
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N]" >&2; exit 2 ;;
  esac
done
for b in filed mapperd xseg-tool; do
  [ -x "$bin/$b" ] || { echo "SKIP: $bin/$b is not built (make user)"; exit 77; }
done
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=/tmp
tmp=$(mktemp -d "$base/xseg-list-bench.XXXXXX")
pids=()
specs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for s in "${specs[@]}"; do "$bin/xseg-tool" destroy "$s" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_bound() {	# SPEC PORT
  for _ in $(seq 500); do
    "$bin/xseg-tool" submit "$1" -p "$2" -o ping >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "port $2 of $1 never answered" >&2
  exit 1
}
start_store() {	# NAME HOOK
  local spec="posix:lsb$$$1:64:512:64K:0:12:dynports=48"
  specs+=("$spec")
  "$bin/xseg-tool" create "$spec" >/dev/null || exit 1
  mkdir "$tmp/$1"
  "$bin/filed" -q -g "$spec" -p 1 --dir "$tmp/$1" & pids+=($!)
  wait_bound "$spec" 1
  XSEG_MAPPERD_FAULT=$2 "$bin/mapperd" -q -g "$spec" -p 2 --storage 1 2>/dev/null & pids+=($!)
  wait_bound "$spec" 2
  eval "spec_$1=\$spec"
}
head -c 8192 /dev/zero >"$tmp/zero"	# INFO's reply buffer (xseg-tool gives INFO 8 bytes otherwise)
start_store A ""
start_store B list-unsupported
sub() { "$bin/xseg-tool" submit "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
declare -A fsck del
for r in $(seq "$rounds"); do
  for side in A B; do
    eval "spec=\$spec_$side"
    sub "$spec" -p 2 -o create -T lv --data 'size=10G'
    for i in $(seq 0 39); do
      sub "$spec" -p 2 -o mapw -T lv -O $((i * 64))M -s 1 --data "$(printf '%064d' 0)"
    done
    t=$(date +%s%N); sub "$spec" -p 2 -o info -T .fsck --data-file "$tmp/zero"; fsck[$side,$r]=$(ms "$t")
    t=$(date +%s%N); sub "$spec" -p 2 -o delete -T lv; del[$side,$r]=$(ms "$t")
  done
  printf 'round %d: fsck A %5d ms  B %5d ms   delete A %5d ms  B %5d ms\n' "$r" "${fsck[A,$r]}" \
    "${fsck[B,$r]}" "${del[A,$r]}" "${del[B,$r]}"
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for what in fsck del; do
  a=$(for r in $(seq "$rounds"); do eval "echo \${$what[A,$r]}"; done | median)
  b=$(for r in $(seq "$rounds"); do eval "echo \${$what[B,$r]}"; done | median)
  printf '%-6s median: with LIST %s ms, probing %s ms, ratio probing/LIST %.1fx (%d rounds)\n' \
    "$what" "$a" "$b" "$(echo "$b $a" | awk '{print ($2 > 0 ? $1 / $2 : 0)}')" "$rounds"
done
