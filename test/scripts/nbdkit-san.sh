#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the nbdkit plugin as the sanitizer builds make it
# (lib/user-asan, lib/user-tsan: make asan tsan), loaded by nbdkit started
# with the sanitizer's runtime preloaded, in front of blockd: nbdcopy in and
# out over 4 connections of 16 requests each (many nbdkit threads on the one
# port and the reply thread), qemu-io's zero and discard, then blockd killed
# with a read in flight (the recovery path). The data is verified, and
# nbdkit's log must hold no AddressSanitizer, UndefinedBehaviorSanitizer,
# LeakSanitizer or ThreadSanitizer report. Skips a sanitizer whose build is
# absent (under CI=true, with CHECK_SAN, both must be there).
set -u
. "$(dirname "$0")/lib.sh"
need_cmds nbdkit nbdcopy qemu-io cmp
need_bins blockd xseg-tool
sans=()
for san in asan tsan; do
  [ -f "$home/lib/user-$san/nbdkit/nbdkit-xseg-plugin.so" ] && sans+=("$san")
done
[ ${#sans[@]} -gt 0 ] || skip "no sanitizer build of the plugin (make asan tsan)"

ts_tmp xseg-nbdkit-san /dev/shm
spec="posix:nbds$tag:16:64:256K:0:12"
specs+=("$spec")
fail() {
  echo "FAIL: $*"
  # The sanitizer's report, if nbdkit died of one.
  cat "$tmp"/nbdkit-*.log 2>/dev/null | grep -E -A 20 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:' | head -n 40
  exit 1
}

size=$((16 * 1024 * 1024))
head -c $size /dev/urandom > "$tmp/ref"
"$bin/xseg-tool" create "$spec" || fail "create $spec"

for san in "${sans[@]}"; do
  echo "# $san"
  case $san in
    asan) rt="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)"
          opts="ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1" ;;
          # (nbdkit itself leaks a little at exit: only leaks through the
          # plugin count, below.)
    tsan) rt=$(${CC:-cc} -print-file-name=libtsan.so); opts="TSAN_OPTIONS=halt_on_error=0" ;;
  esac
  for f in $rt; do [ -f "$f" ] || fail "$san runtime $f not found"; done
  rm -f "$tmp/vol.img" "$tmp/out" "$tmp/sock"
  "$bin/blockd" -q -g "$spec" -p 1 --file "$tmp/vol.img" --size $size --create-file & blockd=$!
  pids+=($blockd)
  # Only nbdkit gets the runtime; the clients run without it.
  env LD_PRELOAD="$rt" $opts timeout 120 nbdkit -f -U "$tmp/sock" \
    "$home/lib/user-$san/nbdkit/nbdkit-xseg-plugin.so" segment="$spec" port=1 timeout=0 \
    2> "$tmp/nbdkit-$san.log" &
  nbdkit=$!
  pids+=($nbdkit)
  for _ in $(seq 1 300); do [ -S "$tmp/sock" ] && break; sleep 0.05; done
  [ -S "$tmp/sock" ] || fail "$san: nbdkit did not listen: $(tail -n 5 "$tmp/nbdkit-$san.log")"
  uri="nbd+unix:///?socket=$tmp/sock"
  timeout 120 nbdcopy --connections=4 --requests=16 "$tmp/ref" "$uri" || fail "$san: nbdcopy in"
  timeout 120 nbdcopy --connections=4 --requests=16 "$uri" "$tmp/out" || fail "$san: nbdcopy out"
  cmp "$tmp/ref" "$tmp/out" || fail "$san: the copy out differs"
  timeout 60 qemu-io -f raw -c 'write -z 0 1M' -c 'discard 1M 1M' -c flush "$uri" > "$tmp/qio" 2>&1 ||
    fail "$san: qemu-io: $(cat "$tmp/qio")"
  cmp -n $((2 * 1048576)) "$tmp/vol.img" /dev/zero || fail "$san: zero/discard: not zeros"
  # A read in flight when blockd dies: failed back by recovery.
  timeout 60 qemu-io -f raw -c 'sleep 1500' -c 'read 4M 64k' "$uri" > "$tmp/qio2" 2>&1 &
  reader=$!
  sleep 0.8
  kill -STOP $blockd
  sleep 1.5
  kill -KILL $blockd
  { wait $blockd; } 2>/dev/null
  wait $reader
  grep -q "read failed" "$tmp/qio2" || fail "$san: a read in flight when blockd died: $(cat "$tmp/qio2")"
  # nbdkit -f exits on SIGTERM, and the leak check runs then. (It hung in
  # libp11-kit's destructor on glibc's locale lock while the plugin called
  # strerror() in its threads; the plugin prints errno names instead.)
  kill -TERM $nbdkit
  for _ in $(seq 1 100); do kill -0 $nbdkit 2>/dev/null || break; sleep 0.1; done
  if kill -0 $nbdkit 2>/dev/null; then
    pkill -KILL -P $nbdkit
    fail "$san: nbdkit did not exit within 10 s of SIGTERM"
  fi
  wait $nbdkit
  "$bin/xseg-tool" recover "$spec" >/dev/null
  if grep -E -q 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/nbdkit-$san.log"; then
    grep -E -A 20 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/nbdkit-$san.log" | head -n 60
    fail "$san: a sanitizer report in nbdkit with the plugin"
  fi
  # A leak whose stack passes through the plugin (or libxseg inside it).
  if awk '/^(Direct|Indirect) leak/ { blk = $0; next } blk != "" && /^$/ { if (blk ~ /xseg/) bad = 1; blk = ""; next }
          blk != "" { blk = blk "\n" $0 } END { if (blk ~ /xseg/) bad = 1; exit !bad }' "$tmp/nbdkit-$san.log"; then
    grep -A 20 'leak of' "$tmp/nbdkit-$san.log" | head -n 60
    fail "$san: memory leaked through the plugin"
  fi
done
echo "ok: ${sans[*]}"
