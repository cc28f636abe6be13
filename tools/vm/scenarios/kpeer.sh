# SPDX-License-Identifier: BSD-2-Clause
# kpeer: a kernel peer (xseg_kpeer.ko, a callback peer of the segdev type in
# xseg_segdev.ko) and user peers exchange requests in both directions over a
# segdev segment, every byte checked, with the user peers of each wake-up
# type: posix (the kernel wakes them with SIGIO, xseg_posix.ko) and segdev
# (an eventfd). User -> kernel wake-ups always ring the /dev/segdev doorbell.
# The user peers never spin, so every reply travels by a wake-up.
. /scenarios/lib.sh
load xseg
load segdev
load xseg_segdev
load xseg_posix
run xseg-kpeer create kp
n=0
for drv in posix segdev; do
  n=$((n + 1))
  xseg-kpeer serve kp 1 $drv > serve.out 2>&1 &
  srv=$!
  i=0
  until grep -q serving serve.out; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the user server did not start: $(cat serve.out)"
    sleep 0.1
  done
  # kernel -> user: 2000 requests, checked in the kernel
  load xseg_kpeer seg=kp port=2 peer=1 count=2000
  [ "$(dmesg | grep -c 'xseg_kpeer: PASS')" = $n ] || fail "no 'xseg_kpeer: PASS' for $drv"
  # user -> kernel: 2000 requests, checked in user space
  run xseg-kpeer client kp 3 2 2000 $drv
  kill $srv
  wait $srv || fail "the $drv server exited $?: $(cat serve.out)"
  cat serve.out
  unload xseg_kpeer
  ok "kernel <-> user ($drv)"
done
dmesg | grep 'xseg_kpeer: done' | tail -2
run xseg-kpeer verify kp
run xseg-kpeer destroy kp
unload xseg_posix
kmsg_has 'xseg_posix: unloaded ([1-9][0-9]* SIGIO sent, 0 refused)' ||
  fail "xseg_posix sent no SIGIO or refused some: $(dmesg | grep 'xseg_posix: unloaded')"
unload xseg_segdev
unload segdev
unload xseg
ok "unloaded"
