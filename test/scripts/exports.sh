#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: libxseg.so exports exactly the symbols listed in xseg/libxseg.map
# (no more, no fewer), and every xseg_*/xq_* function declared in the installed
# public headers is among them. Fails naming each symbol that is wrong.
set -eu
home=$(cd "$(dirname "$0")/../.." && pwd)
for t in nm gcc; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not found"; exit 77; }
done
tmp=$(mktemp -d /tmp/xseg-exports.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make -s -C "$home" install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
lib="$tmp/root/usr/lib/libxseg.so"
inc="$tmp/root/usr/include"
fail=0

# The names in the map's global: sections.
sed -n '/global:/,/local:/p' "$home/xseg/libxseg.map" |
  sed -n -E 's/^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*);.*/\1/p' | sort -u > "$tmp/map"
if grep -q '\*' <(sed -n '/global:/,/local:/p' "$home/xseg/libxseg.map"); then
  echo "xseg/libxseg.map: a wildcard in global: (list each export by name)"; fail=1
fi
# What the library exports (the version node itself is an absolute symbol).
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u > "$tmp/lib"
[ -s "$tmp/lib" ] || { echo "nm found no exports in $lib"; exit 1; }
for s in $(comm -13 "$tmp/map" "$tmp/lib"); do echo "exported but not in xseg/libxseg.map: $s"; fail=1; done
for s in $(comm -23 "$tmp/map" "$tmp/lib"); do echo "in xseg/libxseg.map but not exported: $s"; fail=1; done

# Every function the public headers declare (gcc -aux-info lists each
# declaration with its file; static inline ones are not extern).
( cd "$inc" && find xseg -name '*.h' | sort | sed 's/.*/#include <&>/' ) > "$tmp/all.c"
gcc -std=c11 -D_GNU_SOURCE -I"$inc" -aux-info "$tmp/aux" -c -o "$tmp/all.o" "$tmp/all.c"
grep -F "/* $inc/" "$tmp/aux" | grep ' extern ' |
  sed -n -E 's/.* \*\/ extern .*[ *]((xseg|xq)_[A-Za-z0-9_]+) \(.*/\1/p' | sort -u > "$tmp/decl"
[ -s "$tmp/decl" ] || { echo "found no function declarations in the installed headers"; exit 1; }
for s in $(comm -23 "$tmp/decl" "$tmp/lib"); do
  where=$(grep -F " $s (" "$tmp/aux" | sed -n -E 's|^/\* ([^ ]*):([0-9]+):.*|\1 \2|p' | head -1)
  file=$(realpath -m --relative-to="$inc/xseg" "${where% *}")
  echo "declared in a public header but not exported: $s ($file:${where##* })"
  fail=1
done
[ $fail = 0 ] || exit 1
echo "ok: $(wc -l < "$tmp/lib") exports match the map; $(wc -l < "$tmp/decl") declared functions all exported"
