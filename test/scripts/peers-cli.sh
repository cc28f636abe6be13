#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: blockd and filed driven through `xseg-tool submit` only, as a
# shell user would: INFO, WRITE --data-file / READ --out (compared with cmp
# and with the file itself), FUA, FLUSH, DISCARD reads back zeros, TRUNCATE,
# MAPR (one line per extent),
# errors by name (ENOSPC, EOPNOTSUPP, EINVAL, EEXIST, EBUSY, EPERM) with exit
# status 1; filed's CREATE, short READ, HASH (SHA-256 of "abc"), COPY,
# RENAME, ACQUIRE/RELEASE and DELETE. Children are killed by pid and the
# segment and temporary directory removed on every exit path.
set -u
. "$(dirname "$0")/lib.sh"
need_bins blockd filed xseg-tool
ts_tmp xseg-peers-cli
spec="posix:pcli$tag:16:256:64K:0:12"
specs+=("$spec")
tool() { "$bin/xseg-tool" submit "$spec" "$@"; }

# Expect a request to fail with errno name $1: exit status 1 and the name on stderr.
expect_err() {
  local want=$1; shift
  local out rc
  out=$(tool "$@" 2>&1); rc=$?
  [ "$rc" = 1 ] || fail "'$*' exited $rc, expected 1 ($want): $out"
  grep -q "failed: $want " <<<"$out" || fail "'$*' did not fail with $want: $out"
}

# Wait until port $1 is bound (xseg-tool status shows it).
wait_bound() {
  for _ in $(seq 1 500); do
    "$bin/xseg-tool" status "$spec" 2>/dev/null | awk -v p="$1" '$1 == p && $2 == "bound" { f = 1 } END { exit !f }' && return 0
    sleep 0.02
  done
  fail "nobody bound port $1"
}

"$bin/xseg-tool" create "$spec" || fail "create $spec"
"$bin/blockd" -q -g "$spec" -p 1 --file "$tmp/vol.img" --size 1M --create-file & pids+=($!)
mkdir "$tmp/store"
"$bin/filed" -q -g "$spec" -p 2 --dir "$tmp/store" & pids+=($!)
wait_bound 1
wait_bound 2

echo "# blockd"
tool -p 1 -T vol -o info | grep -qx "size 1048576" || fail "INFO"
head -c 65536 /dev/urandom > "$tmp/w"
tool -p 1 -T vol -o write -O 128K --data-file "$tmp/w" >/dev/null || fail "WRITE --data-file"
tool -p 1 -T vol -o read -O 128K -s 64K --out "$tmp/r" | grep -qx "serviced 65536" || fail "READ"
cmp "$tmp/w" "$tmp/r" || fail "READ returned other data"
cmp <(dd if="$tmp/vol.img" bs=64K skip=2 count=1 2>/dev/null) "$tmp/w" || fail "the file holds other data"
tool -p 1 -T vol -o write -O 0 --data "durable" --flags fua >/dev/null || fail "WRITE --flags fua"
[ "$(head -c 7 "$tmp/vol.img")" = durable ] || fail "FUA write not in the file"
tool -p 1 -T vol -o flush >/dev/null || fail "FLUSH"
tool -p 1 -T vol -o write -O 4096 --data "after a flush" --flags flush >/dev/null || fail "WRITE --flags flush"
tool -p 1 -T vol -o discard -O 128K -s 32K >/dev/null || fail "DISCARD"
tool -p 1 -T vol -o read -O 128K -s 64K --out "$tmp/r" >/dev/null || fail "READ after DISCARD"
cmp <(head -c 32768 /dev/zero) <(head -c 32768 "$tmp/r") || fail "discarded range is not zeros"
cmp <(tail -c 32768 "$tmp/w") <(tail -c 32768 "$tmp/r") || fail "DISCARD went past its range"
tool -p 1 -T vol -o write_zeroes -O 160K -s 32K >/dev/null || fail "WRITE_ZEROES"
tool -p 1 -T vol -o read -O 160K -s 32K --out - 2>/dev/null | cmp - <(head -c 32768 /dev/zero) ||
  fail "WRITE_ZEROES range is not zeros (or --out - mixed the report into the data)"
expect_err ENOSPC -p 1 -T vol -o read -O 1M -s 4096
expect_err ENOSPC -p 1 -T vol -o write -O 1020K -s 8K
expect_err EOPNOTSUPP -p 1 -T vol -o clone
tool -p 1 -T vol -o truncate -O 2M -s 0 >/dev/null || fail "TRUNCATE"
tool -p 1 -T vol -o info | grep -qx "size 2097152" || fail "INFO after TRUNCATE"
[ "$(stat -c %s "$tmp/vol.img")" = 2097152 ] || fail "file size after TRUNCATE"
tool -p 1 -T vol -o read -O 1M -s 4096 >/dev/null || fail "READ in the grown part"
out=$(tool -p 1 -T vol -o mapr -O 0 -s 2M) || fail "MAPR"
grep -qx "extent 0 [0-9]* data" <<<"$out" || fail "MAPR: no data extent at 0 (written): $out"
grep -qx "extent [0-9]* [0-9]* hole,zero" <<<"$out" || fail "MAPR: no hole (the grown part): $out"
grep "^extent" <<<"$out" | tail -1 | awk '$1 == "extent" && $2 + $3 == 2097152 { f = 1 } END { exit !f }' ||
  fail "MAPR: the extents do not end at 2M: $out"

echo "# filed"
tool -p 2 -T greeting -o write --data "hello" >/dev/null || fail "filed WRITE"
[ "$(cat "$tmp/store/greeting")" = hello ] || fail "object file content"
out=$(tool -p 2 -T greeting -o read -s 100 --out "$tmp/g") || fail "filed READ"
grep -qx "serviced 5" <<<"$out" || fail "short READ serviced: $out"
[ "$(head -c 5 "$tmp/g")" = hello ] || fail "filed READ data"
tool -p 2 -T greeting -o info | grep -qx "size 5" || fail "filed INFO"
tool -p 2 -T abc -o write --data "abc" >/dev/null || fail "filed WRITE abc"
tool -p 2 -T abc -o hash | grep -qx "hash ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" ||
  fail "filed HASH"
if command -v sha256sum >/dev/null; then
  tool -p 2 -T greeting -o hash | grep -qx "hash $(printf hello | sha256sum | cut -d' ' -f1)" ||
    fail "filed HASH differs from sha256sum"
fi
tool -p 2 -T sized -o create -s 4096 >/dev/null || fail "filed CREATE"
[ "$(stat -c %s "$tmp/store/sized")" = 4096 ] || fail "CREATE size"
expect_err EEXIST -p 2 -T sized -o create -s 0
tool -p 2 -T copy -o copy --data greeting >/dev/null || fail "filed COPY"
[ "$(cat "$tmp/store/copy")" = hello ] || fail "COPY content"
tool -p 2 -T copy -o rename --data moved >/dev/null || fail "filed RENAME"
[ ! -e "$tmp/store/copy" ] && [ "$(cat "$tmp/store/moved")" = hello ] || fail "RENAME result"
tool -p 2 -T vol -o acquire --data alice >/dev/null || fail "ACQUIRE"
expect_err EBUSY -p 2 -T vol -o acquire --data bob
expect_err EPERM -p 2 -T vol -o release --data bob
tool -p 2 -T vol -o release --data alice >/dev/null || fail "RELEASE"
expect_err ENOENT -p 2 -T vol -o release --data alice
tool -p 2 -T moved -o delete >/dev/null || fail "DELETE"
[ ! -e "$tmp/store/moved" ] || fail "DELETE left the file"
expect_err ENOENT -p 2 -T moved -o read -s 10
expect_err EINVAL -p 2 -T ../escape -o write --data x
expect_err EINVAL -p 2 -T a/b -o write --data x
expect_err EINVAL -p 2 -T .. -o info
[ ! -e "$tmp/escape" ] || fail "a write escaped the store"
expect_err EOPNOTSUPP -p 2 -T greeting -o snapshot

# Clean stops.
for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" || fail "a peer exited $? on SIGTERM"; done
pids=()
echo "ok"
