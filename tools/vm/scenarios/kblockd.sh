# SPDX-License-Identifier: BSD-2-Clause
# kblockd: xseg_blockd.ko, blockd in the kernel, serves a file on the guest's
# tmpfs to an xsegbd device (kernel -> kernel: no user process on the I/O
# path) and to user clients of the same segment: the device is written and
# read back with O_DIRECT (1M, 4K, and 32 in flight with Linux AIO), checked
# in the backing file; FLUSH and a discard go through; a user client's read
# of the device's data, and its bad requests (past the end, a buffer too
# small, an op blockd does not serve, another target) get their errors;
# ro=1 refuses writes; a missing file or port refuses the load; the module
# unloads while its segment lives on, having served what it counted.
. /scenarios/lib.sh
SPEC=segdev:kb:8:256:4K:0:12:buffers=128K*64,1M*16
SYS=/sys/kernel/xsegbd
load_xsegbd_stack
run xseg-tool create $SPEC
run blkcheck write /tmp/kb.img init 32M 1M

# --- bad loads ---------------------------------------------------------------
refuse insmod $M/xseg_blockd.ko seg=kb port=1 2>/dev/null
refuse insmod $M/xseg_blockd.ko seg=kb port=1 file=/tmp/nope 2>/dev/null
refuse insmod $M/xseg_blockd.ko seg=nope port=1 file=/tmp/kb.img 2>/dev/null
refuse insmod $M/xseg_blockd.ko seg=kb port=1 file=/tmp 2>/dev/null
kmsg_has "xseg_blockd: cannot open '/tmp': -EISDIR" || fail "no message for a directory"
refuse insmod $M/xseg_blockd.ko seg=kb port=1 file=/dev/null 2>/dev/null
kmsg_has "xseg_blockd: '/dev/null' is not a regular file or a block device" || fail "no message for a character device"
ok "bad loads refused"

# --- through xsegbd ------------------------------------------------------------
load xseg_blockd seg=kb port=1 file=/tmp/kb.img target=img
kmsg_has "xseg_blockd: serving '/tmp/kb.img' (33554432 bytes) on port 1 of 'kb' as target img" ||
  fail "no serving line: $(dmesg | grep xseg_blockd | tail -2)"
xsegbd_add segment=kb target=img dst=1 qdepth=32
expect_eq 33554432 blockdev --getsize64 /dev/xsegbd0
run blkcheck write /dev/xsegbd0 k1 32M 1M
run blkcheck verify /dev/xsegbd0 k1 32M 128K
run blkcheck write /dev/xsegbd0 k2 2M 4K
run blkcheck verify /dev/xsegbd0 k2 2M 64K
run blkcheck aio /dev/xsegbd0 write k3 4M 4K 32
run blkcheck aio /dev/xsegbd0 verify k3 4M 4K 32
run blkcheck verify /tmp/kb.img k3 4M
sync
run blkdiscard -o 1048576 -l 1048576 /dev/xsegbd0
expect_eq 0 sh -c "dd if=/tmp/kb.img bs=1M skip=1 count=1 2>/dev/null | tr -d '\\000' | wc -c"
ok "xsegbd on xseg_blockd: written, read back, in the backing file, discarded"

# --- user clients of the same port -----------------------------------------------
xseg-tool submit $SPEC -p 1 -o info -T img > /tmp/info || fail "user INFO"
grep -qx 'size 33554432' /tmp/info || fail "user INFO: $(cat /tmp/info)"
xseg-tool submit $SPEC -p 1 -o read -T img -O 0 -s 4K --out /tmp/first || fail "user read"
dd if=/tmp/kb.img of=/tmp/first2 bs=4K count=1 2>/dev/null
cmp /tmp/first /tmp/first2 || fail "a user client read other bytes than the file holds"
refuse xseg-tool submit $SPEC -p 1 -o read -T img -O 32M -s 4K 2>/tmp/e1
grep -q ENOSPC /tmp/e1 || fail "a read past the end: $(cat /tmp/e1)"
refuse xseg-tool submit $SPEC -p 1 -o read -T other -s 4K 2>/tmp/e2
grep -q ENOENT /tmp/e2 || fail "a read of another target: $(cat /tmp/e2)"
refuse xseg-tool submit $SPEC -p 1 -o hash -T img -s 4K 2>/tmp/e3
grep -q EOPNOTSUPP /tmp/e3 || fail "an op it does not serve: $(cat /tmp/e3)"
run xseg-tool submit $SPEC -p 1 -o flush -T img
ok "user clients: info, read, errors, flush"

echo 0 > $SYS/remove || fail "remove 0"
unload xseg_blockd
kmsg_has 'xseg_blockd: done, served [1-9][0-9]* requests, failed [3-9] ' ||
  fail "the counts at unload: $(dmesg | grep 'xseg_blockd: done' | tail -1)"

# --- read-only -----------------------------------------------------------------
load xseg_blockd seg=kb port=1 file=/tmp/kb.img ro=1
xsegbd_add segment=kb target=img dst=1
run blkcheck verify /dev/xsegbd0 k3 1M 4K   # (1M..2M was discarded)
refuse dd if=/dev/zero of=/dev/xsegbd0 bs=4K count=1 oflag=direct 2>/dev/null
refuse xseg-tool submit $SPEC -p 1 -o write -T img -s 4K --data-file /tmp/first 2>/tmp/e4
grep -q EROFS /tmp/e4 || fail "a write to ro=1: $(cat /tmp/e4)"
echo 0 > $SYS/remove || fail "remove 0 (ro)"
unload xseg_blockd
ok "ro=1: reads served, writes refused EROFS"

run xseg-tool verify $SPEC
run xseg-tool destroy $SPEC
unload_xsegbd_stack
ok "unloaded"
