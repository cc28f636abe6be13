#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: blockd links statically (the kernel test VM packs static
# programs into its initramfs): built with cc -static from peers/user/blockd.c,
# peer.c and lib/user/libxseg.a, the binary has no dynamic section, and it
# serves INFO, WRITE and READ (checked with cmp) to xseg-tool. Children are
# killed by pid; the segment and temporary directory removed on every exit.
set -u
. "$(dirname "$0")/lib.sh"
cc=${CC:-cc}
command -v "$cc" >/dev/null || skip "no C compiler ($cc)"
[ -e "$home/lib/user/libxseg.a" ] && [ -x "$bin/xseg-tool" ] || skip "lib/user is not built (make user)"
ts_tmp xseg-peers-static
spec="posix:pstatic$tag:8:64:64K:0:12"
specs+=("$spec")

"$cc" -static -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$home" -pthread -o "$tmp/blockd" \
  "$home/peers/user/blockd.c" "$home/peers/user/peer.c" "$home/lib/user/libxseg.a" -lrt -ldl -lpthread \
  >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log"; fail "static link of blockd"; }
# A static executable has no PT_INTERP/DYNAMIC; ldd says so.
if command -v readelf >/dev/null; then
  readelf -l "$tmp/blockd" | grep -q INTERP && fail "blockd is dynamically linked"
fi

"$bin/xseg-tool" create "$spec" || fail "create $spec"
"$tmp/blockd" -q -g "$spec" -p 1 --file "$tmp/vol.img" --size 256K --create-file &
pid=$!
pids+=("$pid")
for _ in $(seq 1 500); do
  "$bin/xseg-tool" status "$spec" 2>/dev/null | awk '$1 == 1 && $2 == "bound" { f = 1 } END { exit !f }' && break
  sleep 0.02
done
"$bin/xseg-tool" submit "$spec" -p 1 -o info | grep -qx "size 262144" || fail "INFO from the static blockd"
head -c 4096 /dev/urandom > "$tmp/w"
"$bin/xseg-tool" submit "$spec" -p 1 -o write -O 8K --data-file "$tmp/w" >/dev/null || fail "WRITE"
"$bin/xseg-tool" submit "$spec" -p 1 -o read -O 8K -s 4K --out "$tmp/r" >/dev/null || fail "READ"
cmp "$tmp/w" "$tmp/r" || fail "READ returned other data"
kill -TERM "$pid"
wait "$pid" || fail "static blockd exited $? on SIGTERM"
pids=()
echo "ok"
