# SPDX-License-Identifier: BSD-2-Clause
# bench-guest.sh - the guest side of tools/vm/bench (not a check scenario):
# the same backing file on the guest's tmpfs served by the loop device, by
# xsegbd + blockd, by xsegbd + xseg_blockd.ko (blockd in the kernel, device
# "kblockd"), and by the kernel's own NBD client (nbd.ko, Debian's
# nbd-client) on the NBD gateway (xseg nbd, Node, in the guest, over a unix
# socket) in front of the same blockd, measured with blkcheck (O_DIRECT):
# sequential 1M reads and writes (one thread), random 4K reads and writes
# (4 threads, each one request at a time) and random 4K reads and writes
# with 32 in flight (one thread, Linux AIO, batches of 32 per io_submit),
# alternating the devices, BENCH_REPS times. With BENCH_BASE=1 the modules
# of a baseline build (/lib/xseg-base) are measured too, as device "base":
# every repetition loads each module set in turn (base, then this build),
# runs every test on the loop device and on that xsegbd, and unloads it (no
# NBD then). Prints one line per run:
#   BENCH <rep> <loop|xsegbd|kblockd|nbd|base> <test> <bs> <MB/s> MB/s <IOPS> IOPS
# vm-node
# vm-hostbin: /usr/bin/node
# vm-hostbin: /usr/sbin/nbd-client
. /scenarios/lib.sh
REPS=${BENCH_REPS:-3}
DRIVER=${BENCH_DRIVER:-segdev}
BASE=${BENCH_BASE:-0}
BLOCKD_ARGS=${BENCH_BLOCKD_ARGS:-}
SPEC=segdev:bench:8:256:4K:0:12:buffers=128K*64,1M*32
K=${XSEG_VM_KMOD:-/lib/kmod}
NEW=$M
# name, blkcheck arguments after the device
TESTS="read_1M:bench read 1M 96M 1
write_1M:bench write 1M 96M 1
randread_4K:bench randread 4K 12M 4
randwrite_4K:bench randwrite 4K 12M 4
randread-qd32_4K:aio randread x 12M 4K 32
randwrite-qd32_4K:aio randwrite x 12M 4K 32"

# up DIR: load the modules of DIR, serve the file with blockd, add /dev/xsegbd0.
up() {
  M=$1
  load_xsegbd_stack
  run xseg-tool create $SPEC
  blockd -g $SPEC -p 1 -d $DRIVER -f /tmp/bench.img -q $BLOCKD_ARGS &
  bd=$!
  xsegbd_add segment=bench target=img dst=1 qdepth=64
}
down() {
  echo "BENCHSTAT $1 $(grep -o 'completed=.*' /sys/kernel/xsegbd/list)"
  echo 0 > /sys/kernel/xsegbd/remove || fail "remove xsegbd0"
  kill $bd; wait $bd
  run xseg-tool destroy $SPEC
  unload_xsegbd_stack
}
# one REP DEV LABEL: every test on /dev/loop0 and on DEV (LABEL in the output)
one() {
  echo "$TESTS" | while IFS=: read -r name args; do
    for dev in loop0 $2; do
      label=${dev%0}; [ $dev = loop0 ] || label=$3
      r=$(blkcheck ${args%% *} /dev/$dev ${args#* }) || fail "blkcheck ${args%% *} /dev/$dev ${args#* }"
      echo "BENCH $1 $label $(echo $name | tr _ ' ') $r"
    done
  done || exit 1
}

insmod $K/loop.ko || fail "insmod loop.ko"
run blkcheck write /tmp/bench.img fill 128M
i=0
until [ -b /dev/loop0 ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "no /dev/loop0"; sleep 0.1; done
run losetup /dev/loop0 /tmp/bench.img
echo "BENCHCFG driver=$DRIVER reps=$REPS base=$BASE cpus=$(nproc) spec=$SPEC"
if [ "$BASE" = 1 ]; then
  [ -e /lib/xseg-base/xsegbd.ko ] || fail "no baseline modules in /lib/xseg-base"
  rep=1
  while [ $rep -le $REPS ]; do
    up /lib/xseg-base
    one $rep xsegbd0 base
    down base
    up $NEW
    one $rep xsegbd0 xsegbd
    down xsegbd
    rep=$((rep + 1))
  done
  losetup -d /dev/loop0
  ok "bench done"
  exit 0
fi
up $NEW
# blockd in the kernel (xseg_blockd.ko) serving the same file on port 2, as /dev/xsegbd1.
load xseg_blockd
echo "segment=bench port=2 file=/tmp/bench.img" > /sys/kernel/xseg_blockd/add ||
  fail "xseg_blockd add"
xsegbd_add segment=bench target=img dst=2 qdepth=64
# The NBD gateway in front of the same blockd (port 1), and the kernel's NBD client on it.
insmod $K/nbd.ko nbds_max=1 || fail "insmod nbd.ko"
node /xseg/lib/node/cli.js nbd $SPEC -p 1 --unix /tmp/nbd.sock --export img -q &
gw=$!
i=0
until [ -S /tmp/nbd.sock ]; do
  i=$((i + 1)); [ $i -lt 300 ] || fail "the NBD gateway did not listen"
  kill -0 $gw 2>/dev/null || fail "the NBD gateway exited"
  sleep 0.1
done
run nbd-client -N img -unix /tmp/nbd.sock /dev/nbd0 -b 4096
rep=1
while [ $rep -le $REPS ]; do
  echo "$TESTS" | while IFS=: read -r name args; do
    for dev in loop0 xsegbd0 xsegbd1 nbd0; do
      r=$(blkcheck ${args%% *} /dev/$dev ${args#* }) || fail "blkcheck ${args%% *} /dev/$dev ${args#* }"
      label=${dev%0}; [ $dev = xsegbd1 ] && label=kblockd
      echo "BENCH $rep $label $(echo $name | tr _ ' ') $r"
    done
  done || exit 1
  rep=$((rep + 1))
done
run nbd-client -d /dev/nbd0
kill $gw; wait $gw
echo 1 > /sys/kernel/xsegbd/remove || fail "remove xsegbd1"
echo 0 > /sys/kernel/xseg_blockd/remove || fail "remove the xseg_blockd export"
unload xseg_blockd
down xsegbd
losetup -d /dev/loop0
ok "bench done"
