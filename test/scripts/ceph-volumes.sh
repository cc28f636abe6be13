#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the volume chain on a real one-node Ceph cluster
# (tools/ceph/cluster): radosd (port 1) <- mapperd (2) <- vlmcd (3), the NBD
# gateway in volume mode in front, real clients. A 64 MiB volume of 1 MiB
# objects (so a volume is 64 RADOS objects, not one): qemu-img convert of an
# image with a hole into it and qemu-img compare; a snapshot; an overwrite
# (qemu-io, the same writes on the expected raw image); a clone of the
# snapshot, written too; then the snapshot, the volume and the clone are
# each compared byte for byte with their expected images (qemu-img compare,
# and nbdcopy of the clone out + cmp); `xseg volume fsck` finds no leaked
# object. Then radosd is SIGKILLed while nbdcopy writes a new volume
# through the chain: the copy fails (no hang: a hang guard turns one into a
# failure), `xseg-tool recover` frees its port, radosd is restarted on it,
# a second copy compares identical and fsck is clean again.
#
# Teardown on every exit path: an EXIT trap stops the children (by pid),
# destroys the segment, stops and removes the cluster and the temporary
# directory; a guardian process (in its own session, reading a pipe only
# this shell holds) does the same if the shell is killed without its trap
# (SIGKILL, the runner's timeout -k).
set -u
home=$(cd "$(dirname "$0")/../.." && pwd)
bin=$home/lib/user/bin
cli=$home/lib/node/cli.js
skip() {
  echo "SKIP: $*"
  [ "${CI:-}" = true ] && exit 1
  exit 77
}
for t in ceph-mon ceph-osd nbdcopy qemu-img qemu-io node cmp; do
  command -v $t >/dev/null || skip "$t is not installed (tools/install-deps check)"
done
for b in radosd mapperd vlmcd xseg-tool; do
  [ -x "$bin/$b" ] || skip "$bin/$b is not built (make user; radosd needs librados-dev)"
done
# The gateway and `xseg volume`: the node domain, built if missing or stale.
"$home/sys/node/build" >/dev/null
case $? in
  0) ;;
  77) skip "no Node.js or npm for the gateway" ;;
  *) echo "FAIL: sys/node/build failed"; exit 1 ;;
esac

t_start=$(date +%s)
tmp=$(mktemp -d /tmp/xseg-ceph-vol.XXXXXX)
cluster=$tmp/cluster
spec="posix:cvol$$-$RANDOM$RANDOM:64:1024:64K:0:12:dynports=48:buffers=1M*32"
sock=$tmp/nbd.sock
uri() { echo "nbd+unix:///$1?socket=$sock"; }
# Every child we start, by pid, also in $tmp/pids for the guardian.
declare -A pid=()
copy_pid=""
remember() { echo "$1" >>"$tmp/pids"; }

# Kill pid $1 if it is provably ours: its command line names our segment or temp dir.
kill_ours() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -e "$spec" -e "$tmp" && kill "${2:--TERM}" "$1" 2>/dev/null
}

cleanup() {
  local p
  for p in $copy_pid "${pid[@]}"; do kill_ours "$p"; done
  for p in $copy_pid "${pid[@]}"; do wait "$p" 2>/dev/null; done
  "$bin/xseg-tool" destroy "$spec" >/dev/null 2>&1
  [ -f "$cluster/.xseg-ceph-cluster" ] && "$home/tools/ceph/cluster" stop "$cluster" --rm
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
fail() {
  echo "FAIL: $*"
  [ -f "$tmp/gw.err" ] && { echo "the gateway's log:"; tail -n 20 "$tmp/gw.err"; }
  exit 1
}
step() { echo "# [$(( $(date +%s) - t_start )) s] $*"; }

# The guardian: its stdin is a pipe whose only writer is this shell's fd 9
# (every long-lived child is started with 9>&-). EOF = this shell is gone.
exec 9> >(setsid bash -c '
  trap "" TERM INT HUP
  cat >/dev/null
  tmp=$1 spec=$2 bin=$3 home=$4
  [ -d "$tmp" ] || exit 0
  for p in $(cat "$tmp/pids" 2>/dev/null); do
    tr "\0" " " <"/proc/$p/cmdline" 2>/dev/null | grep -qF -e "$spec" -e "$tmp" && kill -KILL "$p" 2>/dev/null
  done
  "$bin/xseg-tool" destroy "$spec" >/dev/null 2>&1
  [ -f "$tmp/cluster/.xseg-ceph-cluster" ] && "$home/tools/ceph/cluster" stop "$tmp/cluster" --rm >/dev/null 2>&1
  rm -rf "$tmp"
' guardian "$tmp" "$spec" "$bin" "$home" >/dev/null 2>&1)

wait_bound() {
  for _ in $(seq 1 500); do
    "$bin/xseg-tool" status "$spec" 2>/dev/null | awk -v p="$1" '$1 == p && $2 == "bound" { f = 1 } END { exit !f }' && return 0
    sleep 0.02
  done
  fail "nobody bound port $1"
}

start_peer() {	# name port args...
  local name=$1 port=$2
  shift 2
  "$bin/$name" -q -g "$spec" -p "$port" "$@" 9>&- & pid[$name]=$!
  remember "${pid[$name]}"
  wait_bound "$port"
}

vol() { node "$cli" volume "$@" -g "$spec" -p 3 --timeout 30000 9>&-; }

# qemu-io commands $3.. on volume $1 (through the gateway) and on $2, its expected raw image.
both() {
  local v=$1 f=$2 args=() c out
  shift 2
  for c in "$@"; do args+=(-c "$c"); done
  out=$(qemu-io -f raw "${args[@]}" "$(uri "$v")" 2>&1) || fail "qemu-io on $v: $out"
  ! grep -qiE 'failed|error' <<<"$out" || fail "qemu-io on $v: $out"
  out=$(qemu-io -f raw "${args[@]}" "$f" 2>&1) || fail "qemu-io on $f: $out"
}

same() {	# raw file, export
  qemu-img compare -q -f raw -F raw "$1" "$(uri "$2")" || fail "$2 differs from $(basename "$1")"
}

fsck_clean() {
  local j
  j=$(vol fsck --json) || fail "fsck: $j"
  grep -qE '"leaked": *0[,}]' <<<"$j" || fail "fsck ($1) found leaked objects: $j"
}

conf=$("$home/tools/ceph/cluster" start "$cluster" 9>&-) || fail "the cluster did not start"
step "the cluster is up"
"$bin/xseg-tool" create "$spec" >/dev/null || fail "create $spec"
start_peer radosd 1 --conf "$conf" --timeout 10
start_peer mapperd 2 --storage 1
start_peer vlmcd 3 --mapper 2 --storage 1
node "$cli" nbd "$spec" --storage-port 3 --unix "$sock" --volumes --owner "ceph-vol-$$" \
  --request-timeout 15 >"$tmp/gw.out" 2>"$tmp/gw.err" 9>&- & pid[gw]=$!
remember "${pid[gw]}"
for _ in $(seq 1 500); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || fail "the gateway did not listen: $(cat "$tmp/gw.err")"

step "qemu-img convert into a volume of 64 objects on RADOS, compared"
vol create vol1 --size 64M --object-size 1M >/dev/null || fail "create vol1"
# 40 MiB of random data, then 24 MiB never written (holes at the end of the volume).
head -c 40M /dev/urandom >"$tmp/a.img"
truncate -s 64M "$tmp/a.img"
qemu-img convert -n -f raw -O raw "$tmp/a.img" "$(uri vol1)" || fail "qemu-img convert into vol1"
same "$tmp/a.img" vol1
objs=$(vol info vol1 --json | sed -n 's/.*"objects": *\([0-9]*\).*/\1/p')
echo "vol1 owns $objs objects"
[ "${objs:-0}" -ge 40 ] || fail "vol1 should own at least 40 objects, has '$objs'"

step "snapshot, overwrite, clone; each compared with its expected image"
vol snapshot vol1 s1 >/dev/null || fail "snapshot vol1 s1"
cp "$tmp/a.img" "$tmp/b.img"
head -c 6M /dev/urandom >"$tmp/ov.img"
both vol1 "$tmp/b.img" "write -s $tmp/ov.img 3M 6M" "write -P 0xa5 20M 1M" "write -P 0x5a 62M 64k" \
  "write -z 30M 2M"
vol clone vol1@s1 vol2 >/dev/null || fail "clone vol1@s1 vol2"
cp "$tmp/a.img" "$tmp/c.img"
both vol2 "$tmp/c.img" "write -P 0xc1 1M 4k" "write -P 0xc2 10M 2M" "write -P 0xc3 50M 1M"
same "$tmp/a.img" vol1@s1
same "$tmp/b.img" vol1
same "$tmp/c.img" vol2
qemu-img compare -q -f raw -F raw "$tmp/a.img" "$(uri vol1)" && fail "vol1 still equals its snapshot"
nbdcopy --connections=2 "$(uri vol2)" "$tmp/vol2.out" || fail "nbdcopy vol2 out"
cmp "$tmp/c.img" "$tmp/vol2.out" || fail "nbdcopy of vol2 differs from c.img"
nbdcopy "$(uri vol1@s1)" "$tmp/s1.out" || fail "nbdcopy vol1@s1 out"
cmp "$tmp/a.img" "$tmp/s1.out" || fail "nbdcopy of vol1@s1 differs from a.img"
rm -f "$tmp/vol2.out" "$tmp/s1.out" "$tmp/ov.img"
fsck_clean "after the snapshot and the clone"

step "radosd SIGKILLed during a copy through the chain, recovered, restarted"
vol create vol3 --size 96M --object-size 1M >/dev/null || fail "create vol3"
head -c 96M /dev/urandom >"$tmp/d.img"
# What radosd's port has accepted so far (xseg-tool status: column 9).
accepted() { "$bin/xseg-tool" status "$spec" 2>/dev/null | awk '$1 == 1 && $9 ~ /^[0-9]+$/ { n = $9 } END { print n + 0 }'; }
a0=$(accepted)
# The hang guard: a copy that has not ended in 120 s is a failure (124).
timeout 120 nbdcopy --connections=1 --requests=4 "$tmp/d.img" "$(uri vol3)" 2>"$tmp/copy.err" 9>&- & copy_pid=$!
remember "$copy_pid"
# Kill it once the copy is under way at radosd (16 requests, a few MiB, of some 200).
for _ in $(seq 1 1000); do
  [ $(( $(accepted) - a0 )) -ge 16 ] && break
  kill -0 "$copy_pid" 2>/dev/null || break
  sleep 0.01
done
kill -0 "$copy_pid" 2>/dev/null || fail "the copy ended before radosd was killed: $(head -c 300 "$tmp/copy.err")"
echo "radosd killed after $(( $(accepted) - a0 )) requests of the copy"
kill -KILL "${pid[radosd]}"
wait "${pid[radosd]}" 2>/dev/null
unset 'pid[radosd]'
"$bin/xseg-tool" recover "$spec" >/dev/null || fail "recover"
start_peer radosd 1 --conf "$conf" --timeout 10
step "radosd restarted"
wait "$copy_pid"
rc=$?
copy_pid=""
echo "the interrupted copy exited $rc: $(head -c 300 "$tmp/copy.err")"
[ $rc = 124 ] && fail "the copy hung after radosd was killed"
[ $rc != 0 ] || fail "the copy succeeded although radosd was killed under it"
step "the copy ended"
# Its CLOSE may have come while radosd was down ("cannot release its lock":
# the gateway's log); the next open and close by the same gateway settle it.
echo "vol3 after it: $(vol info vol3 --json | grep -oE '"openBy": *[^,]*')"
timeout 120 nbdcopy "$tmp/d.img" "$(uri vol3)" 9>&- || fail "nbdcopy into vol3 after the restart"
same "$tmp/d.img" vol3
step "the second copy compared"
for _ in $(seq 1 50); do
  o=$(vol info vol3 --json | grep -oE '"openBy": *[^,]*')
  [[ $o =~ null ]] && break
  sleep 0.2
done
[[ $o =~ null ]] || fail "vol3 is still open after the second copy ended: $o"
same "$tmp/b.img" vol1
same "$tmp/a.img" vol1@s1
same "$tmp/c.img" vol2
fsck_clean "after radosd was killed"
echo "ok ($(( $(date +%s) - t_start )) s)"
