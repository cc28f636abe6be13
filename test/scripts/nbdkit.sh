#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the nbdkit plugin (peers/user/nbdkit) in front of blockd,
# driven by real NBD clients under `nbdkit --run`: nbdinfo sees the size and
# the flags the plugin declares; qemu-img convert writes a random reference
# image through it (blockd's file then equals the reference byte for byte)
# and qemu-img compare reads it back equal; nbdcopy copies the export out
# (equal) and a second image in (the file equals it); qemu-io's write -z and
# discard leave zeros; a write larger than the segment's buffers is split and
# lands whole. make install puts it in nbdkit's plugin folder, and nbdkit sees
# it as parallel. Then blockd is stopped with reads in flight and killed: the
# client gets an error (recovery fails the requests back), not a hang, and a
# read after the kill fails at once. Children are killed by pid; the segment
# and the temporary folder are removed on every exit path.
set -u
. "$(dirname "$0")/lib.sh"
plugin=$home/lib/user/nbdkit/nbdkit-xseg-plugin.so
need_cmds nbdkit nbdinfo nbdcopy qemu-img qemu-io cmp
need_bins blockd xseg-tool
[ -f "$plugin" ] || skip "$plugin not built (needs nbdkit-plugin-dev: tools/install-deps check)"

ts_tmp xseg-nbdkit /dev/shm
spec="posix:nbdk$tag:16:64:256K:0:12"
specs+=("$spec")
fail() { echo "FAIL: $*"; [ -s "$tmp/nbdkit.log" ] && tail -n 20 "$tmp/nbdkit.log"; exit 1; }

wait_bound() {
  for _ in $(seq 1 500); do
    "$bin/xseg-tool" status "$spec" 2>/dev/null | awk -v p="$1" '$1 == p && $2 == "bound" { f = 1 } END { exit !f }' && return 0
    sleep 0.02
  done
  fail "nobody bound port $1"
}

# nbdkit with the plugin on a private socket, running "$@" with $uri set;
# --exit-with-parent: nbdkit never outlives this test. timeout: a hang guard.
through() {
  timeout 120 nbdkit --exit-with-parent -U - "$plugin" segment="$spec" port=1 \
    --run "$*" 2>>"$tmp/nbdkit.log"
}

size=$((24 * 1024 * 1024))
"$bin/xseg-tool" create "$spec" || fail "create $spec"
"$bin/blockd" -q -g "$spec" -p 1 --file "$tmp/vol.img" --size $size --create-file & pids+=($!)
blockd=$!
wait_bound 1
head -c $size /dev/urandom > "$tmp/ref1"
head -c $size /dev/urandom > "$tmp/ref2"

echo "# make install, and what nbdkit sees"
make -s -C "$home" install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null || fail "make install"
installed=$(find "$tmp/root/usr/lib" -path '*/nbdkit/plugins/nbdkit-xseg-plugin.so')
[ -n "$installed" ] || fail "make install did not put nbdkit-xseg-plugin.so in an nbdkit/plugins folder"
want=$(pkg-config --variable=plugindir nbdkit 2>/dev/null)
[ -z "$want" ] || [ "$installed" = "$tmp/root$want/nbdkit-xseg-plugin.so" ] ||
  fail "installed as ${installed#"$tmp/root"}, not in nbdkit's plugin folder $want"
nbdkit --dump-plugin "$installed" > "$tmp/dump" || fail "nbdkit --dump-plugin"
for want in name=xseg thread_model=parallel has_after_fork=1; do
  grep -qx "$want" "$tmp/dump" || fail "nbdkit --dump-plugin: no $want"
done

echo "# nbdinfo"
through 'nbdinfo --json "$uri"' > "$tmp/info.json" || fail "nbdinfo"
for want in "\"export-size\": $size" '"can_flush": true' '"can_fua": true' '"can_trim": true' \
            '"can_zero": true' '"can_multi_conn": true' '"is_read_only": false' '"can_fast_zero": false'; do
  grep -q "$want" "$tmp/info.json" || fail "nbdinfo: no '$want' in $(cat "$tmp/info.json")"
done

echo "# qemu-img convert and compare"
through "qemu-img convert -n -f raw -O raw '$tmp/ref1' \"\$uri\"" || fail "qemu-img convert"
cmp "$tmp/ref1" "$tmp/vol.img" || fail "after qemu-img convert, blockd's file differs from the reference"
through "qemu-img compare -f raw -F raw '$tmp/ref1' \"\$uri\"" || fail "qemu-img compare"
# compare must see a difference too (it really reads through the plugin).
if through "qemu-img compare -q -f raw -F raw '$tmp/ref2' \"\$uri\""; then fail "qemu-img compare found no difference"; fi

echo "# nbdcopy out and in"
through "nbdcopy \"\$uri\" '$tmp/out'" || fail "nbdcopy out"
cmp "$tmp/ref1" "$tmp/out" || fail "nbdcopy out: differs from the reference"
through "nbdcopy --flush '$tmp/ref2' \"\$uri\"" || fail "nbdcopy in"
cmp "$tmp/ref2" "$tmp/vol.img" || fail "nbdcopy in: blockd's file differs from the reference"

echo "# zero, discard, a write larger than a buffer"
through "qemu-io -f raw -c 'write -z 1M 3M' -c 'discard 8M 2M' -c 'write -P 0x5a 12M 4M' -c flush \"\$uri\"" \
  > "$tmp/qio" || fail "qemu-io"
grep -qi "error\|failed" "$tmp/qio" && fail "qemu-io: $(cat "$tmp/qio")"
cmp -n $((3 * 1048576)) -i $((1048576)):0 "$tmp/vol.img" /dev/zero || fail "write -z: not zeros"
cmp -n $((2 * 1048576)) -i $((8 * 1048576)):0 "$tmp/vol.img" /dev/zero || fail "discard: not zeros"
head -c $((4 * 1048576)) /dev/zero | tr '\0' '\132' > "$tmp/5a"
cmp -n $((4 * 1048576)) -i $((12 * 1048576)):0 "$tmp/vol.img" "$tmp/5a" || fail "4M write (16 pieces): wrong data"
cmp -n 1048576 "$tmp/vol.img" "$tmp/ref2" || fail "the first MiB changed"

echo "# the storage peer killed under the plugin"
# timeout=0: no request timeout, so only recovery can end the wait.
timeout 120 nbdkit --exit-with-parent -U "$tmp/sock" -f "$plugin" segment="$spec" port=1 timeout=0 \
  2>>"$tmp/nbdkit.log" & nbdkit=$!
pids+=($nbdkit)
for _ in $(seq 1 250); do [ -S "$tmp/sock" ] && break; sleep 0.02; done
[ -S "$tmp/sock" ] || fail "nbdkit did not listen"
uri="nbd+unix:///?socket=$tmp/sock"
# The client connects (the handshake asks blockd the size), sleeps 2 s, then
# reads; blockd is stopped meanwhile, so the read waits in its queue, and
# then killed.
timeout 30 qemu-io -f raw -c 'sleep 2000' -c 'read 2M 64k' "$uri" > "$tmp/qio2" 2>&1 &
reader=$!
pids+=($reader)
sleep 1
kill -STOP "$blockd"
sleep 2
kill -KILL "$blockd"
{ wait "$blockd"; } 2>/dev/null
wait "$reader"; rc=$?
[ "$rc" = 124 ] && fail "a read in flight when blockd died hung (qemu-io killed by the guard)"
grep -q "read failed: Input/output error" "$tmp/qio2" ||
  fail "a read in flight when blockd died did not fail with EIO: $(cat "$tmp/qio2")"
timeout 30 qemu-io -f raw -c 'read 0 4k' "$uri" > "$tmp/qio3" 2>&1; rc=$?
[ "$rc" = 124 ] && fail "a read after blockd died hung"
grep -qi "error\|failed\|could not\|can't" "$tmp/qio3" || fail "a read after blockd died did not fail: $(cat "$tmp/qio3")"
# nbdkit still stops on SIGTERM: the plugin's cleanup (reply thread, leave) ends.
kill -TERM $nbdkit
for _ in $(seq 1 100); do kill -0 $nbdkit 2>/dev/null || break; sleep 0.1; done
kill -0 $nbdkit 2>/dev/null && fail "nbdkit did not exit within 10 s of SIGTERM"
echo "ok"
