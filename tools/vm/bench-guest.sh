# SPDX-License-Identifier: BSD-2-Clause
# bench-guest.sh - the guest side of tools/vm/bench (not a check scenario):
# the same backing file on the guest's tmpfs served by the loop device, by
# xsegbd + blockd, and by the kernel's own NBD client (nbd.ko, Debian's
# nbd-client) on the NBD gateway (xseg nbd, Node, in the guest, over a unix
# socket) in front of the same blockd, measured with blkcheck bench
# (O_DIRECT): sequential 1M reads and writes (one thread) and random 4K reads
# and writes (4 threads), alternating the devices, BENCH_REPS times. Prints
# one line per run:
#   BENCH <rep> <loop|xsegbd|nbd> <test> <MB/s> MB/s <IOPS> IOPS
# vm-node
# vm-hostbin: /usr/bin/node
# vm-hostbin: /usr/sbin/nbd-client
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
echo "BENCHCFG driver=$DRIVER reps=$REPS cpus=$(nproc) spec=$SPEC"
rep=1
while [ $rep -le $REPS ]; do
  for t in "read 1M 96M 1" "write 1M 96M 1" "randread 4K 12M 4" "randwrite 4K 12M 4"; do
    for dev in loop0 xsegbd0 nbd0; do
      r=$(blkcheck bench /dev/$dev $t) || fail "bench /dev/$dev $t"
      echo "BENCH $rep ${dev%0} $(echo $t | cut -d' ' -f1,2) $r"
    done
  done
  rep=$((rep + 1))
done
run nbd-client -d /dev/nbd0
kill $gw; wait $gw
echo 0 > /sys/kernel/xsegbd/remove
kill $bd; wait $bd
losetup -d /dev/loop0
ok "bench done"
