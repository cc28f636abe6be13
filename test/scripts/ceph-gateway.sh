#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the NBD gateway over radosd on a real one-node Ceph cluster
# (tools/ceph/cluster), with real NBD clients: a 96 MiB RADOS object made by
# CREATE is exported; nbdcopy writes a random image and qemu-img compare
# finds it identical; radosd is SIGKILLed while nbdcopy writes a second
# 96 MiB image, recovered (xseg-tool recover) and restarted on its port: the copy
# ends (an error or success, never a hang), a second copy succeeds and
# compares identical; then the OSD is stopped during a copy (radosd
# --timeout 2): the copy ends with EIO (or succeeds), never hangs, and after
# the OSD is started again a copy compares identical. The
# cluster, the children (by pid), the segment and the temporary directory
# are removed on every exit path. Last, a striped target (radosd --stripe
# 1M, a partial last stripe) through its own gateway: an image with a hole
# copied and compared; another copied over it, then NBD WRITE_ZEROES across
# stripes (three whole stripe objects removed, part of a fourth zeroed),
# compared; the first copied back, compared, its size unchanged.
set -u
home=$(cd "$(dirname "$0")/../.." && pwd)
bin=$home/lib/user/bin
skip() {
  echo "SKIP: $*"
  [ "${CI:-}" = true ] && exit 1
  exit 77
}
for t in ceph-mon ceph-osd nbdcopy qemu-img qemu-io node; do
  command -v $t >/dev/null || skip "$t is not installed (tools/install-deps check)"
done
for b in radosd xseg-tool; do
  [ -x "$bin/$b" ] || skip "$bin/$b is not built (make user; radosd needs librados-dev)"
done
# The gateway: the node domain, built if missing or stale (as test/node/run does).
"$home/sys/node/build" >/dev/null
case $? in
  0) ;;
  77) skip "no Node.js or npm for the gateway" ;;
  *) echo "FAIL: sys/node/build failed"; exit 1 ;;
esac

tmp=$(mktemp -d /tmp/xseg-ceph-gw.XXXXXX)
cluster=$tmp/cluster
spec="posix:cgw$$-$RANDOM$RANDOM:16:256:1M:0:12"
sock=$tmp/nbd.sock
uri="nbd+unix:///disk?socket=$sock"
radosd_pid="" gw_pid="" copy_pid="" sradosd_pid="" sgw_pid=""
cleanup() {
  for p in $copy_pid $gw_pid $radosd_pid $sgw_pid $sradosd_pid; do kill "$p" 2>/dev/null; done
  for p in $copy_pid $gw_pid $radosd_pid $sgw_pid $sradosd_pid; do wait "$p" 2>/dev/null; done
  "$bin/xseg-tool" destroy "$spec" >/dev/null 2>&1
  [ -d "$cluster" ] && "$home/tools/ceph/cluster" stop "$cluster" --rm
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
fail() { echo "FAIL: $*"; exit 1; }

wait_bound() {
  for _ in $(seq 1 500); do
    "$bin/xseg-tool" status "$spec" 2>/dev/null | awk -v p="$1" '$1 == p && $2 == "bound" { f = 1 } END { exit !f }' && return 0
    sleep 0.02
  done
  fail "nobody bound port $1"
}

start_radosd() {
  "$bin/radosd" -q -g "$spec" -p 1 --conf "$conf" --timeout "${1:-10}" & radosd_pid=$!
  wait_bound 1
}

conf=$("$home/tools/ceph/cluster" start "$cluster") || fail "the cluster did not start"
"$bin/xseg-tool" create "$spec" || fail "create $spec"
start_radosd
"$bin/xseg-tool" submit "$spec" -p 1 -T disk -o create -s 96M >/dev/null || fail "CREATE disk"
node "$home/lib/node/cli.js" nbd "$spec" --storage-port 1 --unix "$sock" --export disk \
  --request-timeout 15 -q >"$tmp/gw.out" 2>"$tmp/gw.err" & gw_pid=$!
for _ in $(seq 1 500); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || fail "the gateway did not listen: $(cat "$tmp/gw.err")"

echo "# a copy through gateway -> radosd, compared"
head -c 96M /dev/urandom >"$tmp/a.img"
t0=$(date +%s%N); nbdcopy "$tmp/a.img" "$uri" || fail "nbdcopy a.img"; echo "96 MiB copied in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
qemu-img compare -q -f raw -F raw "$tmp/a.img" "$uri" || fail "a.img differs after the copy"
"$bin/xseg-tool" submit "$spec" -p 1 -T disk -o info | grep -qx "size 100663296" || fail "the object's size changed"

echo "# radosd SIGKILLed during a copy, recovered, restarted"
head -c 96M /dev/urandom >"$tmp/b.img"
nbdcopy --connections=1 --requests=4 "$tmp/b.img" "$uri" 2>"$tmp/copy.err" & copy_pid=$!
sleep 0.1
kill -KILL "$radosd_pid"
wait "$radosd_pid" 2>/dev/null
radosd_pid=""
"$bin/xseg-tool" recover "$spec" >/dev/null || fail "recover"
start_radosd
wait "$copy_pid"
echo "the interrupted copy exited $?: $(head -c 300 "$tmp/copy.err")"
copy_pid=""
nbdcopy "$tmp/b.img" "$uri" || fail "nbdcopy b.img after the restart"
qemu-img compare -q -f raw -F raw "$tmp/b.img" "$uri" || fail "the disk differs after the restart"

echo "# the OSD stopped during a copy (radosd --timeout 2), started again"
kill "$radosd_pid"; wait "$radosd_pid"; radosd_pid=""
start_radosd 2
nbdcopy --connections=1 --requests=4 "$tmp/a.img" "$uri" 2>"$tmp/copy.err" & copy_pid=$!
sleep 0.1
"$home/tools/ceph/cluster" osd-stop "$cluster" || fail "osd-stop"
wait "$copy_pid"
rc=$?
copy_pid=""
echo "the copy during the outage exited $rc: $(head -c 300 "$tmp/copy.err")"
[ $rc = 0 ] || grep -q "Input/output error" "$tmp/copy.err" || fail "the copy failed otherwise than with EIO"
"$home/tools/ceph/cluster" osd-start "$cluster" || fail "osd-start"
nbdcopy "$tmp/a.img" "$uri" || fail "nbdcopy a.img after the outage"
qemu-img compare -q -f raw -F raw "$tmp/a.img" "$uri" || fail "the disk differs after the outage"

echo "# a striped target (radosd --stripe 1M): 40.5 MiB with holes, copied and compared"
"$bin/radosd" -q -g "$spec" -p 2 --conf "$conf" --stripe 1M & sradosd_pid=$!
wait_bound 2
"$bin/xseg-tool" submit "$spec" -p 2 -T sdisk -o create -s 42467328 >/dev/null || fail "CREATE sdisk"
node "$home/lib/node/cli.js" nbd "$spec" --storage-port 2 --unix "$tmp/s.sock" --export sdisk \
  --request-timeout 15 -q >/dev/null 2>"$tmp/sgw.err" & sgw_pid=$!
for _ in $(seq 1 500); do [ -S "$tmp/s.sock" ] && break; sleep 0.02; done
[ -S "$tmp/s.sock" ] || fail "the striped gateway did not listen: $(cat "$tmp/sgw.err")"
suri="nbd+unix:///sdisk?socket=$tmp/s.sock"
# Data, a 3.25 MiB hole across stripes, data to the (partial) last stripe.
{ head -c 10M /dev/urandom; head -c 3407872 /dev/zero; head -c 28573696 /dev/urandom; } >"$tmp/s.img"
[ "$(stat -c %s "$tmp/s.img")" = 42467328 ] || fail "s.img is not 42467328 bytes"
nbdcopy "$tmp/s.img" "$suri" || fail "nbdcopy s.img to the striped target"
qemu-img compare -q -f raw -F raw "$tmp/s.img" "$suri" || fail "the striped target differs"
# Another image over it, then NBD WRITE_ZEROES across stripes (qemu-io write -z -u:
# holes allowed, so the gateway sends WRITE_ZEROES, not zeroes as data): three whole
# stripe objects go, a part of a fourth is zeroed.
head -c 42467328 /dev/urandom >"$tmp/s2.img"
nbdcopy "$tmp/s2.img" "$suri" || fail "nbdcopy s2.img over the striped target"
stripes() { rados -c "$conf" -p xseg ls | grep -c $'^\x03sdisk\.'; }
[ "$(stripes)" = 41 ] || fail "$(stripes) stripe objects, not 41"
qemu-io -f raw -c "write -z -u 10485760 3407872" "$suri" >/dev/null || fail "qemu-io write -z -u"
cp "$tmp/s2.img" "$tmp/s3.img"
dd if=/dev/zero of="$tmp/s3.img" bs=4096 seek=2560 count=832 conv=notrunc status=none
qemu-img compare -q -f raw -F raw "$tmp/s3.img" "$suri" || fail "the striped target differs after WRITE_ZEROES"
[ "$(stripes)" = 38 ] || fail "$(stripes) stripe objects after zeroing three whole stripes, not 38"
nbdcopy "$tmp/s.img" "$suri" || fail "nbdcopy s.img back"
qemu-img compare -q -f raw -F raw "$tmp/s.img" "$suri" || fail "the striped target differs after a copy over it"
"$bin/xseg-tool" submit "$spec" -p 2 -T sdisk -o info | grep -qx "size 42467328" || fail "the striped size changed"
echo "ok"
