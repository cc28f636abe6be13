#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the units of the core (xseg/*.c) call each other without a
# circle: for each file, the functions it calls that another xseg/*.c
# defines make an edge "caller -> callee"; the graph must sort
# topologically (tsort). Prints the graph; on a circle, names the files in
# it. hold.c (owners and holds) is the bottom the others stand on.
# Usage: core-graph.sh [tree] (default: this tree).
set -eu
home=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v tsort >/dev/null || { echo "SKIP: tsort not found"; exit 77; }
cd "$home"
tmp=$(mktemp -d /tmp/xseg-core-graph.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Definitions: a line that starts with a type and names xseg_*( at its end.
for f in xseg/*.c; do
  u=$(basename "$f" .c)
  grep -oE '^[A-Za-z_][A-Za-z0-9_ *]*[ *](xseg_[A-Za-z0-9_]+)\(' "$f" |
    grep -oE 'xseg_[A-Za-z0-9_]+\($' | tr -d '(' | sed "s/\$/ $u/"
done | sort -u > "$tmp/defs"
[ -s "$tmp/defs" ] || { echo "found no function definitions in $home/xseg"; exit 1; }

for f in xseg/*.c; do
  u=$(basename "$f" .c)
  grep -oE '\bxseg_[A-Za-z0-9_]+\(' "$f" | tr -d '(' | sort -u |
    awk -v u="$u" 'NR == FNR { def[$1] = $2; next } ($1 in def) && def[$1] != u { print u, def[$1], $1 }' \
      "$tmp/defs" - 
done > "$tmp/calls"

awk '{ k = $1 " -> " $2; fn[k] = fn[k] (fn[k] ? "," : "") $3 } END { for (k in fn) print k ": " fn[k] }' \
  "$tmp/calls" | sort
if ! awk '{ print $1, $2 }' "$tmp/calls" | sort -u | tsort > /dev/null 2> "$tmp/loop"; then
  echo "the core's units call each other in a circle:"
  sed -n 's/^tsort: //p' "$tmp/loop"
  exit 1
fi
echo "no circle among $(ls xseg/*.c | wc -l) core units"
