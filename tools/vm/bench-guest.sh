# SPDX-License-Identifier: BSD-2-Clause
# bench-guest.sh - the guest side of tools/vm/bench (not a check scenario):
# the same backing file on the guest's tmpfs served by the loop device and by
# xsegbd + blockd, measured with blkcheck bench (O_DIRECT): sequential 1M
# reads and writes (one thread) and random 4K reads and writes (4 threads),
# alternating the devices, BENCH_REPS times. Prints one line per run:
#   BENCH <rep> <loop|xsegbd> <test> <MB/s> MB/s <IOPS> IOPS
. /scenarios/lib.sh
REPS=${BENCH_REPS:-3}
DRIVER=${BENCH_DRIVER:-segdev}
BLOCKD_ARGS=${BENCH_BLOCKD_ARGS:-}
SPEC=segdev:bench:8:256:4K:0:12:buffers=128K*64,1M*32
K=${XSEG_VM_KMOD:-/lib/kmod}
load xseg
load segdev
load xseg_segdev
load xseg_posix
load xsegbd
insmod $K/loop.ko || fail "insmod loop.ko"
run blkcheck write /tmp/bench.img fill 128M
i=0
until [ -b /dev/loop0 ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "no /dev/loop0"; sleep 0.1; done
run losetup /dev/loop0 /tmp/bench.img
run xseg-tool create $SPEC
blockd -g $SPEC -p 1 -d $DRIVER -f /tmp/bench.img -q $BLOCKD_ARGS &
bd=$!
i=0
until echo "segment=bench target=img dst=1 qdepth=64" > /sys/kernel/xsegbd/add 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "xsegbd add failed"; sleep 0.1
done
echo "BENCHCFG driver=$DRIVER reps=$REPS cpus=$(nproc) spec=$SPEC"
rep=1
while [ $rep -le $REPS ]; do
  for t in "read 1M 96M 1" "write 1M 96M 1" "randread 4K 12M 4" "randwrite 4K 12M 4"; do
    for dev in loop0 xsegbd0; do
      r=$(blkcheck bench /dev/$dev $t) || fail "bench /dev/$dev $t"
      echo "BENCH $rep ${dev%0} $(echo $t | cut -d' ' -f1,2) $r"
    done
  done
  rep=$((rep + 1))
done
echo 0 > /sys/kernel/xsegbd/remove
kill $bd; wait $bd
losetup -d /dev/loop0
ok "bench done"
