#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/volume/pass.sh - one-object READs through vlmcd passed to filed (no
# return hop, the default) against the same reads taking the return hop
# (vlmcd --no-pass), in one invocation, interleaved A,B,A,B: two vlmcds on one
# filed and mapperd, each with its own fully written 64M volume of 4M objects
# (odd rounds run A first, even rounds B).
# Prints, per round and workload, IOPS of both and their ratio (pass/no-pass),
# each vlmcd's voluntary context switches per read (/proc/PID/task/*/status) and
# the CPU time per read (/proc/PID/stat, user + system) of vlmcd and of vlmcd +
# filed, then the median ratio per workload.
#
#   bench/volume/pass.sh [--time SECS] [--rounds N] [--spin-us N]
#
# --spin-us is given to both vlmcds (their poll before sleeping; default the
# framework's, 100).
set -u
home=$(cd "$(dirname "$0")/../.." && pwd)
bin=$home/lib/user/bin
secs=2
rounds=3
spin=()
while [ $# -gt 0 ]; do
  case $1 in
    --time) secs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --spin-us) spin=(--spin-us "$2"); shift 2 ;;
    *) echo "usage: $0 [--time SECS] [--rounds N] [--spin-us N]" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/lib.sh"
bench_chain vpb 64:512:64K:0:12:dynports=48:buffers=1M*64
bench_bg vlmcd -q -g "$spec" -p 3 --mapper 2 --storage 1 --no-pass "${spin[@]}"
hop=$bg
bench_bg vlmcd -q -g "$spec" -p 4 --mapper 2 --storage 1 "${spin[@]}"
pass=$bg
sleep 0.3
tool() { "$bin/xseg-tool" submit "$spec" "$@" >/dev/null 2>&1; }
for t in "3 va" "4 vb"; do
  set -- $t
  tool -p "$1" -T "$2" -o create --data $'size=64M\n' || { echo "cannot create $2"; exit 1; }
  "$bin/xseg-bench" -g "$spec" --dst "$1" --target "$2" --op write --bs 1M --depth 4 -n 64 --pattern seq \
    --range 64M >/dev/null || { echo "prefill of $2 failed"; exit 1; }
done
vcsw() {	# pid: voluntary context switches of all its threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'
}
ticks() {	# pid...: user + system clock ticks of those processes
  for p in "$@"; do sed 's/.*) //' /proc/"$p"/stat; done | awk '{ s += $12 + $13 } END { print s + 0 }'
}
hz=$(getconf CLK_TCK)
run() {		# dst target depth pid -> "iops csw_per_read vlmcd_cpu_us_per_read chain_cpu_us_per_read"
  local c0 c1 v0 v1 f0 f1 out
  c0=$(vcsw "$4"); v0=$(ticks "$4"); f0=$(ticks "$filed" "$4")
  out=$("$bin/xseg-bench" -g "$spec" --dst "$1" --target "$2" --op read --bs 4K --depth "$3" --pattern rand \
    --range 64M --time "$secs" --json)
  c1=$(vcsw "$4"); v1=$(ticks "$4"); f1=$(ticks "$filed" "$4")
  echo "$out" | awk -v c=$((c1 - c0)) -v v=$((v1 - v0)) -v f=$((f1 - f0)) -v hz="$hz" \
    '/"requests"/ { gsub(/,/, ""); n = $2 } /"iops"/ { gsub(/,/, ""); i = $2 }
    END { if (n > 0) printf "%.0f %.2f %.1f %.1f\n", i, c / n, v * 1e6 / hz / n, f * 1e6 / hz / n; else print "0 0 0 0" }'
}
printf '%-5s %-14s | %8s %6s %6s %6s | %8s %6s %6s %6s | %5s\n' round workload no-pass csw/rd vlmcd chain pass \
  csw/rd vlmcd chain ratio
echo "(IOPS; vlmcd's voluntary context switches per read; CPU us per read of vlmcd, and of vlmcd + filed)"
declare -A ratios
for r in $(seq 1 "$rounds"); do
  for qd in 1 32; do
    # A,B in odd rounds and B,A in even ones: neither side always runs first.
    if [ $((r % 2)) = 1 ]; then
      read -r ia ca ua ka < <(run 3 va "$qd" "$hop")
      read -r ib cb ub kb < <(run 4 vb "$qd" "$pass")
    else
      read -r ib cb ub kb < <(run 4 vb "$qd" "$pass")
      read -r ia ca ua ka < <(run 3 va "$qd" "$hop")
    fi
    ratio=$(awk -v a="$ia" -v b="$ib" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
    ratios[$qd]="${ratios[$qd]:-} $ratio"
    printf '%-5s %-14s | %8s %6s %6s %6s | %8s %6s %6s %6s | %5s\n' "$r" "randread QD$qd" "$ia" "$ca" "$ua" "$ka" \
      "$ib" "$cb" "$ub" "$kb" "$ratio"
  done
done
for qd in 1 32; do
  echo "randread 4K QD$qd: pass/no-pass IOPS ratios${ratios[$qd]} (median $(tr ' ' '\n' <<<"${ratios[$qd]}" | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'))"
done
