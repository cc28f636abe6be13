#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: one registration mechanism. Every segment type and driver is
# defined with XSEG_SEGTYPE(name) / XSEG_DRIVER(name) (no hand-written
# xseg_segtype_<name> / xseg_driver_<name> definitions), each line of a
# domain's list sys/<domain>/builtins.h names one that the domain compiles,
# and every user-domain segment type and driver is in the user list.
# Fails naming what is wrong. Usage: builtins.sh [tree] (default: this tree).
set -eu
home=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$home"
fail=0
bad() { echo "$*"; fail=1; }

srcs=$(ls xseg/segtype_heap.c sys/*/segtypes/*.c drivers/*/*.c drivers/*/*/*.c 2>/dev/null || true)
[ -n "$srcs" ] || { echo "no segment type or driver sources under $home"; exit 1; }
for f in $srcs; do
  grep -n -E '^(static[[:space:]]+)?const struct xseg_(segtype|driver)_ops[[:space:]]+[A-Za-z_0-9]+[[:space:]]*=' "$f" |
    sed "s|^|$f:|; s|\$| (define it with XSEG_SEGTYPE(name) or XSEG_DRIVER(name))|" | while read -r l; do echo "$l"; done
done > /tmp/xseg-builtins.$$
if [ -s /tmp/xseg-builtins.$$ ]; then cat /tmp/xseg-builtins.$$; fail=1; fi
rm -f /tmp/xseg-builtins.$$

defined() {	# kind name dirs... -> 0 if one of the files defines it
  local kind=$1 name=$2; shift 2
  grep -l -E "^XSEG_$kind\\($name\\)" "$@" >/dev/null 2>&1
}
for d in user node kernel; do
  list=sys/$d/builtins.h
  [ -e "$list" ] || { bad "$list: missing"; continue; }
  case $d in
    kernel) st="xseg/segtype_heap.c"; dr="" ;;
    *)      st="xseg/segtype_heap.c sys/user/segtypes/*.c"; dr="drivers/user/*.c" ;;
  esac
  n=0
  for s in $(sed -n -E 's/^XSEG_BUILTIN_SEGTYPE\(([a-z0-9_]+)\)$/\1/p' "$list"); do
    n=$((n + 1))
    # shellcheck disable=SC2086
    defined SEGTYPE "$s" $st || bad "$list: segment type '$s' is not defined (XSEG_SEGTYPE($s)) in $st"
  done
  for s in $(sed -n -E 's/^XSEG_BUILTIN_DRIVER\(([a-z0-9_]+)\)$/\1/p' "$list"); do
    n=$((n + 1))
    # shellcheck disable=SC2086
    [ -n "$dr" ] && defined DRIVER "$s" $dr || bad "$list: driver '$s' is not defined (XSEG_DRIVER($s)) in ${dr:-this domain}"
  done
  other=$(grep -v -E '^(XSEG_BUILTIN_(SEGTYPE|DRIVER)\([a-z0-9_]+\))?$' "$list" | grep -v -E '^ ?(/\*|\*)' || true)
  [ -z "$other" ] || bad "$list: not a list line: $other"
  [ $n -gt 0 ] || bad "$list: lists nothing"
done
# The user domain builds every user segment type and driver in: each is listed.
for f in xseg/segtype_heap.c sys/user/segtypes/*.c drivers/user/*.c; do
  [ -e "$f" ] || continue
  for k in SEGTYPE DRIVER; do
    for s in $(sed -n -E "s/^XSEG_$k\\(([a-z0-9_]+)\\).*/\\1/p" "$f"); do
      grep -qx "XSEG_BUILTIN_$k($s)" sys/user/builtins.h || bad "$f: XSEG_$k($s) is not listed in sys/user/builtins.h"
    done
  done
done
[ $fail = 0 ] || exit 1
echo "ok: every segment type and driver is defined with its macro and each list line names one"
