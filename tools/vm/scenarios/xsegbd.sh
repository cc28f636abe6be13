# SPDX-License-Identifier: BSD-2-Clause
# xsegbd: block devices of xsegbd.ko served by user storage peers over a
# segdev segment. patternd (posix wake-ups) backs a read-only device whose
# every byte is checked; blockd over a file in the guest (segdev wake-ups:
# eventfds) backs a device that is written and read back with O_DIRECT,
# checked in the backing file too, formatted ext2 (busybox mke2fs; the guest
# kernel mounts it with ext4.ko), mounted, filled, unmounted, mounted again
# from a new device and checked; bad add requests are refused; the devices
# go away and every module unloads.
. /scenarios/lib.sh
SPEC=segdev:bd:8:256:4K:0:12:buffers=128K*64,1M*16
SYS=/sys/kernel/xsegbd
load_xsegbd_stack
[ -w $SYS/add ] || fail "no $SYS/add"
run xseg-tool create $SPEC

# add ARGS...: add a device, retrying while the storage peer starts.
add() { xsegbd_add "$@"; }
# stop PID: SIGTERM a peer and wait for it.
stop() { kill "$1" && wait "$1"; }

# --- patternd: reads of a known pattern ------------------------------------
patternd -g $SPEC -p 1 -d posix -s 48M -q &
pd=$!
add segment=bd target=pat dst=1 timeout=10
[ -b /dev/xsegbd0 ] || fail "no /dev/xsegbd0"
expect_eq 50331648 blockdev --getsize64 /dev/xsegbd0
grep -q 'xsegbd0 segment=bd target=pat src=[0-9]* dst=1 size=50331648' $SYS/list || fail "list: $(cat $SYS/list)"
run blkcheck verify /dev/xsegbd0 pat 48M 1M
run blkcheck verify /dev/xsegbd0 pat 2M 4K
# buffered reads through the page cache, and dd
dd if=/dev/xsegbd0 of=/tmp/head bs=64K count=16 2>/dev/null || fail "dd from xsegbd0"
run blkcheck verify /tmp/head pat 1M
rm -f /tmp/head
# patternd refuses writes of other data: the write fails with an error
refuse dd if=/dev/zero of=/dev/xsegbd0 bs=4K count=1 oflag=direct 2>/dev/null
echo 0 > $SYS/remove || fail "remove 0"
[ ! -e /dev/xsegbd0 ] || fail "/dev/xsegbd0 still there after remove"
stop $pd
ok "patternd: 48M read and checked"

# --- bad requests -----------------------------------------------------------
refuse sh -c "echo 'segment=bd target=x' > $SYS/add" 2>/dev/null
refuse sh -c "echo 'segment=nope target=x dst=1' > $SYS/add" 2>/dev/null
refuse sh -c "echo 'segment=bd target=x dst=1 bogus=1' > $SYS/add" 2>/dev/null
refuse sh -c "echo 'segment=bd target=x dst=1 timeout=1' > $SYS/add" 2>/dev/null  # nobody on port 1
refuse sh -c "echo 7 > $SYS/remove" 2>/dev/null
[ -z "$(cat $SYS/list)" ] || fail "devices left: $(cat $SYS/list)"
ok "bad adds refused"

# --- blockd over a file -----------------------------------------------------
blockd -g $SPEC -p 1 -d segdev -f /tmp/backing --create-file --size 32M -q &
bd=$!
add segment=bd target=vol dst=1 qdepth=32
expect_eq 33554432 blockdev --getsize64 /dev/xsegbd0
run blkcheck write /dev/xsegbd0 seed1 32M 1M
run blkcheck verify /dev/xsegbd0 seed1 32M 128K
run blkcheck write /dev/xsegbd0 seed2 1M 4K
run blkcheck verify /dev/xsegbd0 seed2 1M 64K
run blkcheck verify /tmp/backing seed2 1M
dd if=/dev/xsegbd0 of=/tmp/tail bs=1M skip=1 count=31 iflag=direct 2>/dev/null || fail "dd read"
dd if=/tmp/backing of=/tmp/tail2 bs=1M skip=1 count=31 2>/dev/null
cmp /tmp/tail /tmp/tail2 || fail "the device and its backing file differ"
rm -f /tmp/tail /tmp/tail2
ok "blockd: written, read back, in the backing file"

# --- a filesystem -----------------------------------------------------------
K=${XSEG_VM_KMOD:-/lib/kmod}
for m in crc16 crc32c_generic mbcache jbd2 ext4; do insmod $K/$m.ko || fail "insmod $m.ko"; done
mke2fs -q /dev/xsegbd0 >/dev/null 2>&1 || fail "mke2fs /dev/xsegbd0"
mkdir -p /mnt
run mount -t ext2 /dev/xsegbd0 /mnt
dd if=/dev/urandom of=/mnt/big bs=1M count=8 2>/dev/null || fail "write /mnt/big"
mkdir /mnt/dir
i=0
while [ $i -lt 50 ]; do echo "file $i" > /mnt/dir/f$i; i=$((i + 1)); done
sum=$(md5sum /mnt/big | cut -d' ' -f1)
run umount /mnt
echo 0 > $SYS/remove || fail "remove 0 (after umount)"
# a new device on the same storage: the files are there
add segment=bd target=vol dst=1
run mount -t ext2 -o ro /dev/xsegbd0 /mnt
expect_eq "$sum" sh -c "md5sum /mnt/big | cut -d' ' -f1"
expect_eq "file 49" cat /mnt/dir/f49
expect_eq 50 sh -c "ls /mnt/dir | wc -l"
# removing a device in use is refused
refuse sh -c "echo 0 > $SYS/remove" 2>/dev/null
run umount /mnt
echo 0 > $SYS/remove || fail "remove 0"
ok "ext2 on /dev/xsegbd0: files survive umount, remove and a new device"
stop $bd
grep -q '' $SYS/list && fail "devices left: $(cat $SYS/list)"
run xseg-tool verify $SPEC
run xseg-tool destroy $SPEC
for m in ext4 jbd2 mbcache crc32c_generic crc16; do rmmod $m || fail "rmmod $m"; done
unload_xsegbd_stack
ok "unloaded"
