# SPDX-License-Identifier: BSD-2-Clause
# xsegbd-volume: xsegbd.ko maps volumes of vlmcd (filed <- mapperd <- vlmcd
# in the guest, segdev segment). target=vol1 OPENs the volume for the
# device's port at add and CLOSEs it at remove; target=vol1@s1 is a
# read-only disk of the snapshot, pinned by the device (DELETE refused, also
# by a restarted vlmcd); a second device on vol1 is refused while the first
# holds it, and accepted after its remove. Data: written through
# /dev/xsegbd0, snapshot taken while it is mapped, overwritten, and the
# snapshot's device reads the bytes of before. A pin whose device was
# removed while vlmcd was down is judged dead by mapperd and broken at the
# next DELETE. Needs the peers in the guest
# (tools/vm/run: XSEG_VM_PEERS has filed mapperd vlmcd by default).
. /scenarios/lib.sh
for p in filed mapperd vlmcd xseg-tool; do
  command -v $p >/dev/null || fail "$p is not in the guest (XSEG_VM_PEERS)"
done
SPEC=segdev:vb:64:512:64K:0:12:dynports=48:buffers=1M*16
SYS=/sys/kernel/xsegbd
load_xsegbd_stack
run xseg-tool create $SPEC
filed -g $SPEC -p 1 -d segdev --dir /tmp/objects -q &
fd=$!
mapperd -g $SPEC -p 2 -d segdev --storage 1 -q 2>/tmp/mapperd.log &
md=$!
vlmcd -g $SPEC -p 3 -d segdev --mapper 2 --storage 1 -q &
vd=$!

# mgmt OP TARGET TEXT: a management request to vlmcd with a text payload.
mgmt() {
  printf '%s\n' "$3" > /tmp/mgmt.txt
  i=0
  until xseg-tool submit $SPEC -p 3 -d posix -o "$1" -T "$2" --data-file /tmp/mgmt.txt >/tmp/mgmt.out 2>&1; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "$1 $2 '$3': $(cat /tmp/mgmt.out)"
    sleep 0.1
  done
}
add() { echo "$*" > $SYS/add || fail "add '$*' failed"; }
stop() { kill "$1" && wait "$1"; }

mgmt create vol1 size=33554432
add segment=vb target=vol1 dst=3 qdepth=32
expect_eq 33554432 blockdev --getsize64 /dev/xsegbd0
kmsg_has "xsegbd0: segment 'vb' target 'vol1'.*opened" || fail "xsegbd0 did not open vol1: $(dmesg | tail -3)"
run blkcheck write /dev/xsegbd0 seed1 32M 1M
run blkcheck verify /dev/xsegbd0 seed1 32M 128K
ok "a volume mapped, written and read back"

# Exclusive: a second device on vol1 is refused (EBUSY) while xsegbd0 holds it.
refuse sh -c "echo 'segment=vb target=vol1 dst=3 timeout=5' > $SYS/add" 2>/dev/null
kmsg_has "of target 'vol1' failed: -16 vol1 is open by" || fail "the refusal does not name the holder: $(dmesg | tail -3)"
ok "a second device on vol1 refused, naming the holder"

# A snapshot while mapped, then overwrite; the snapshot's device is read-only and unchanged.
mgmt snapshot vol1 name=s1
run blkcheck write /dev/xsegbd0 seed2 4M 4K
run blkcheck verify /dev/xsegbd0 seed2 4M 64K
add segment=vb target=vol1@s1 dst=3
expect_eq 1 blockdev --getro /dev/xsegbd1
run blkcheck verify /dev/xsegbd1 seed1 32M 1M
refuse dd if=/dev/zero of=/dev/xsegbd1 bs=4K count=1 oflag=direct 2>/dev/null
ok "snapshot: read-only, the bytes of before the overwrite"

# The snapshot's device pins it (a reader lock at mapperd named after the
# device's kernel port): DELETE is refused while it is mapped, also by a
# vlmcd restarted since the device opened it, which knows nothing of it.
# delete_snap WHAT [SNAP]: DELETE SNAP (vol1@s1) through vlmcd (retried while vlmcd starts); its stderr in /tmp/del.out.
delete_snap() {
  snap=${2:-vol1@s1}
  i=0
  while :; do
    xseg-tool submit $SPEC -p 3 -d posix -o delete -T $snap >/tmp/del.out 2>&1 && return 0
    grep -q "ECONNREFUSED\|ECONNRESET\|is not bound" /tmp/del.out || return 1
    i=$((i + 1)); [ $i -lt 50 ] || fail "DELETE $snap ($1): $(cat /tmp/del.out)"
    sleep 0.1
  done
}
delete_snap "mapped" && fail "DELETE of vol1@s1 went through while /dev/xsegbd1 maps it"
grep -q EBUSY /tmp/del.out || fail "DELETE of mapped vol1@s1: $(cat /tmp/del.out)"
kill -9 $vd; wait $vd 2>/dev/null
vlmcd -g $SPEC -p 3 -d segdev --mapper 2 --storage 1 -q &
vd=$!
delete_snap "vlmcd restarted" && fail "DELETE of vol1@s1 through a restarted vlmcd went through while /dev/xsegbd1 maps it"
grep -q "EBUSY.*vol1@s1 is open (read-only) by .*:kport\.[0-9]*\.[0-9]*\.segdev\.vb:[0-9]*:vlmcd-pin:kernel" /tmp/del.out ||
  fail "the refusal does not name the device's pin: $(cat /tmp/del.out)"
run blkcheck verify /dev/xsegbd1 seed1 32M 1M
echo 1 > $SYS/remove || fail "remove 1"
delete_snap "unmapped" || fail "DELETE of vol1@s1 after its device was removed: $(cat /tmp/del.out)"
ok "a mapped snapshot is pinned by its device, across a vlmcd restart; its remove unpins it"

# A device removed while vlmcd is down: its CLOSE reaches nobody (recovery
# fails it back to the device's port, which is gone), so its pin stays at
# mapperd. A DELETE then judges the kernel port the pin names: no longer
# bound by that generation, so the pin is broken (logged) and DELETE goes
# through. The same DELETE was refused while the device was there.
mgmt snapshot vol1 name=s2
add segment=vb target=vol1@s2 dst=3 timeout=3
run blkcheck verify /dev/xsegbd1 seed2 4M 1M
delete_snap "mapped" vol1@s2 && fail "DELETE of vol1@s2 went through while /dev/xsegbd1 maps it"
grep -q "EBUSY" /tmp/del.out || fail "DELETE of mapped vol1@s2: $(cat /tmp/del.out)"
kill -9 $vd; wait $vd 2>/dev/null
echo 1 > $SYS/remove || fail "remove 1 while vlmcd is down"
kmsg_has "CLOSE of target 'vol1@s2' failed" || fail "the device's CLOSE did not fail with vlmcd down: $(dmesg | tail -3)"
vlmcd -g $SPEC -p 3 -d segdev --mapper 2 --storage 1 -q &
vd=$!
delete_snap "its device removed while vlmcd was down" vol1@s2 ||
  fail "DELETE of vol1@s2 after its device was removed while vlmcd was down: $(cat /tmp/del.out)"
grep -q "broke the reader lock of .*:kport\.[0-9]*\.[0-9]*\.segdev\.vb:[0-9]*:vlmcd-pin:kernel (its process is gone)" /tmp/mapperd.log ||
  fail "mapperd did not judge the removed device's pin dead: $(tail -5 /tmp/mapperd.log)"
ok "a pin left by a device removed while vlmcd was down is judged dead and broken"

# remove CLOSEs: another device may open vol1 now, and sees the overwrite.
echo 0 > $SYS/remove || fail "remove 0"
add segment=vb target=vol1 dst=3
run blkcheck verify /dev/xsegbd0 seed2 4M 1M
echo 0 > $SYS/remove || fail "remove 0 (again)"
ok "remove closed vol1: a new device opened it"

stop $vd
stop $md
stop $fd
grep -q '' $SYS/list && fail "devices left: $(cat $SYS/list)"
run xseg-tool destroy $SPEC
unload_xsegbd_stack
ok "unloaded"
