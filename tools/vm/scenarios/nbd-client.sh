# SPDX-License-Identifier: BSD-2-Clause
# nbd-client: the kernel's own NBD client (nbd.ko, configured by Debian's
# nbd-client) on the NBD gateway of the host (nbd-client.host: blockd over a
# 64 MiB file behind `xseg nbd`, reached over qemu's user network). The
# device is written and read back with O_DIRECT, every byte checked; blockd
# is SIGKILLed under writes, which then fail with an error (the gateway's
# request timeout) and never hang; blockd restarted, the device works again;
# then it is formatted ext2 (busybox mke2fs; mounted with ext4.ko), mounted,
# filled, unmounted, reconnected, mounted again and checked; and
# disconnected.
# vm-hostbin: /usr/sbin/nbd-client
. /scenarios/lib.sh
K=${XSEG_VM_KMOD:-/lib/kmod}
for m in e1000 nbd crc16 crc32c_generic mbcache jbd2 ext4; do
  case $m in nbd) a=nbds_max=2 ;; *) a= ;; esac
  insmod $K/$m.ko $a || fail "insmod $m.ko"
done
i=0
until ip link set eth0 up 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 50 ] || fail "no eth0"; sleep 0.1
done
run ip addr add 10.0.2.15/24 dev eth0
# ctl PORT WANT: ask the host side (10.0.2.101:PORT) and check its answer.
ctl() {
  got=$(echo go | nc 10.0.2.101 "$1" 2>&1)
  [ "$got" = "$2" ] || fail "host side: asked $1, got '$got', want '$2'"
}
connect() { run nbd-client -N disk 10.0.2.100 10809 /dev/nbd0 -b 4096 -t 20; }
disconnect() { run nbd-client -d /dev/nbd0; }

connect
expect_eq 67108864 blockdev --getsize64 /dev/nbd0
run blkcheck write /dev/nbd0 nbd0 4M 64K
run blkcheck verify /dev/nbd0 nbd0 4M 64K
ok "4 MiB written and checked through /dev/nbd0 ($(cut -d" " -f1 /proc/uptime) s)"

# --- blockd killed under writes: errors, no hang ------------------------------
( n=0
  while dd if=/dev/zero of=/dev/nbd0 bs=64K count=1 seek=$((256 + n % 512)) oflag=direct 2>/dev/null; do
    n=$((n + 1))
    [ $n -lt 200000 ] || exit 3
  done
  exit 0 ) &
w=$!
sleep 1
kill -0 $w 2>/dev/null || fail "the writer loop stopped before blockd was killed"
ctl 1 killed
wait $w
rc=$?
[ $rc = 0 ] || fail "the writer loop ended with $rc, not on a failed write"
ok "blockd killed under writes: a write failed with an error ($(cut -d" " -f1 /proc/uptime) s)"
ctl 2 started
i=0
until dd if=/dev/zero of=/dev/nbd0 bs=64K count=1 seek=300 oflag=direct 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 30 ] || fail "writes still fail after blockd restarted"; sleep 1
done
run blkcheck verify /dev/nbd0 nbd0 4M 64K	# below the region the writer loop wrote
ok "blockd restarted: writes work, earlier data intact ($(cut -d" " -f1 /proc/uptime) s)"

# --- a file system ------------------------------------------------------------
mke2fs -q -b 4096 /dev/nbd0 >/dev/null 2>&1 || fail "mke2fs /dev/nbd0"
mkdir -p /mnt
run mount -t ext2 /dev/nbd0 /mnt
run blkcheck write /mnt/f1 f1 4M 64K
run cp /bin/busybox /mnt/bb
sum=$(md5sum /bin/busybox | cut -d' ' -f1)
run umount /mnt
disconnect
connect
run mount -t ext2 -o ro /dev/nbd0 /mnt
run blkcheck verify /mnt/f1 f1 4M 64K
expect_eq "$sum" sh -c "md5sum /mnt/bb | cut -d' ' -f1"
run umount /mnt
disconnect
ok "ext2 on /dev/nbd0: written, remounted after a reconnect, checked ($(cut -d" " -f1 /proc/uptime) s)"
