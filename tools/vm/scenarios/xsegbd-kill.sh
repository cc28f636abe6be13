# SPDX-License-Identifier: BSD-2-Clause
# xsegbd-kill: a storage peer that stops answering never hangs the kernel.
# blockd stopped (SIGSTOP) under I/O: the requests fail with EIO after the
# device's timeout, and I/O works again once it continues. blockd killed
# (SIGKILL) under an endless stream of writes, after it served 256 of them:
# the writer gets EIO after the timeout,
# recovery frees the dead peer's port, new I/O fails at once, and a new
# blockd on the same port serves the device again. Then the device is
# removed and every module unloads.
. /scenarios/lib.sh
SPEC=segdev:bk:8:128:4K:0:12:buffers=128K*32
SYS=/sys/kernel/xsegbd
load_xsegbd_stack
run xseg-tool create $SPEC
add() { xsegbd_add "$@"; }
# wait_bound: until a read of the device works (blockd bound its port again)
wait_read() {
  i=0
  until dd if=/dev/xsegbd0 of=/dev/null bs=4K count=1 iflag=direct 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the device does not serve reads again"
    sleep 0.1
  done
}

blockd -g $SPEC -p 1 -d posix -f /tmp/backing --create-file --size 16M -q &
bd=$!
add segment=bk target=vol dst=1 timeout=3
run blkcheck write /dev/xsegbd0 s1 4M

# stopped: reads fail with EIO after the timeout, then work again
kill -STOP $bd
refuse dd if=/dev/xsegbd0 of=/dev/null bs=4K count=1 skip=7 iflag=direct 2>/dev/null
kill -CONT $bd
wait_read
run blkcheck verify /dev/xsegbd0 s1 4M
grep -q 'timeouts=[1-9]' $SYS/list || fail "no timeout counted: $(cat $SYS/list)"
ok "a stopped storage peer: EIO after the timeout, then service again"

# killed under writes: the writer fails, nothing hangs. The writer never
# stops on its own (blkcheck stream) and reports every 64 completed O_DIRECT
# writes; blockd is killed only after it has served 256 of them, so it is
# provably busy, and the writer can only end with an error.
kill_blockd_under '^written 256$' stream /dev/xsegbd0 s2 16M 4K 64
# with nobody on the port, I/O fails at once
refuse dd if=/dev/xsegbd0 of=/dev/null bs=4K count=1 iflag=direct 2>/dev/null
ok "a killed storage peer: EIO, port recovered"

# a new blockd on the same port serves the device again
blockd -g $SPEC -p 1 -d segdev -f /tmp/backing -q &
bd=$!
wait_read
run blkcheck write /dev/xsegbd0 s3 2M 64K
run blkcheck verify /dev/xsegbd0 s3 2M
run blkcheck verify /tmp/backing s3 2M
ok "a new storage peer serves the device"
echo 0 > $SYS/remove || fail "remove 0"
kill $bd
wait $bd
run xseg-tool destroy $SPEC
unload_xsegbd_stack
ok "unloaded"
