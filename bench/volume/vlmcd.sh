#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/volume/vlmcd.sh - xseg-bench through vlmcd (-> mapperd -> filed) against
# the same workload straight to filed, in one invocation; prints a table of
# IOPS and ratios (vlmcd / filed) and, with --json FILE, writes it there.
#
#   [TMPDIR=DIR] bench/volume/vlmcd.sh [--time SECS] [--json FILE]
#
# filed's store is made in $TMPDIR (/tmp if unset): on tmpfs filed serves
# writes inline, elsewhere on its I/O pool.
#
# Every target is written in full first, so neither side reads holes or
# makes objects writable during the runs: what is measured is the extra hop.
# "vol" has 4M objects (every request lies in one object: forwarded in
# place, no copy); "v64k" has 64K objects, so a 1M request is 16 object
# requests with the data copied (the cost of splitting).
set -u
home=$(cd "$(dirname "$0")/../.." && pwd)
bin=$home/lib/user/bin
secs=2
json=
while [ $# -gt 0 ]; do
  case $1 in
    --time) secs=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--time SECS] [--json FILE]" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/lib.sh"
bench_chain vlb 64:512:64K:0:12:dynports=48:buffers=1M*128
bench_bg vlmcd -q -g "$spec" -p 3 --mapper 2 --storage 1
sleep 0.3
tool() { "$bin/xseg-tool" submit "$spec" "$@" >/dev/null 2>&1; }
tool -p 1 -T ob -o create -s 64M || { echo "cannot create the object"; exit 1; }
tool -p 3 -T vol -o create --data $'size=64M\n' || { echo "cannot create vol"; exit 1; }
tool -p 3 -T v64k -o create --data $'size=64M\nobject_size=65536\n' || { echo "cannot create v64k"; exit 1; }
for t in "1 ob" "3 vol" "3 v64k"; do
  set -- $t
  "$bin/xseg-bench" -g "$spec" --dst "$1" --target "$2" --op write --bs 1M --depth 4 -n 64 --pattern seq \
    --range 64M >/dev/null || { echo "prefill of $2 failed"; exit 1; }
done
iops() {	# dst target op bs depth pattern
  "$bin/xseg-bench" -g "$spec" --dst "$1" --target "$2" --op "$3" --bs "$4" --depth "$5" --pattern "$6" \
    --range 64M --time "$secs" --json | sed -n 's/.*"iops": \([0-9.]*\).*/\1/p'
}
rows=()
printf '%-24s %12s %12s %7s\n' workload filed vlmcd ratio
for w in "randread 4K 1 rand read" "randread 4K 32 rand read" "randwrite 4K 1 rand write" \
         "randwrite 4K 32 rand write" "seqread 1M 4 seq read" "seqwrite 1M 4 seq write"; do
  set -- $w
  name="$1 $2 QD$3"
  a=$(iops 1 ob "$5" "$2" "$3" "$4")
  b=$(iops 3 vol "$5" "$2" "$3" "$4")
  r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
  printf '%-24s %12.0f %12.0f %7s\n' "$name" "$a" "$b" "$r"
  rows+=("{\"workload\": \"$name\", \"filedIops\": $a, \"vlmcdIops\": $b, \"ratio\": $r}")
  if [ "$2" = 1M ]; then
    c=$(iops 3 v64k "$5" "$2" "$3" "$4")
    r=$(awk -v a="$a" -v b="$c" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
    printf '%-24s %12.0f %12.0f %7s\n' "$name (64K objects)" "$a" "$c" "$r"
    rows+=("{\"workload\": \"$name, 64K objects (split, copied)\", \"filedIops\": $a, \"vlmcdIops\": $c, \"ratio\": $r}")
  fi
done
if [ -n "$json" ]; then
  {
    echo '{ "schemaVersion": 1, "tool": "bench/volume/vlmcd.sh", "seconds": '"$secs"', "rows": ['
    for i in "${!rows[@]}"; do
      sep=,; [ "$i" = $((${#rows[@]} - 1)) ] && sep=
      echo "  ${rows[$i]}$sep"
    done
    echo '] }'
  } >"$json"
fi
