# SPDX-License-Identifier: BSD-2-Clause
# kblockd: xseg_blockd.ko, blockd in the kernel, serves files on the guest's
# tmpfs to xsegbd devices (kernel -> kernel: no user process on the I/O
# path) and to user clients of the same segment: a device is written and
# read back with O_DIRECT (1M, 4K, and 32 in flight with Linux AIO), checked
# in the backing file; a discard leaves zeroes; two exports serve two files
# on two ports at once; a user client's read of the device's data, and its
# bad requests (past the end, an op blockd does not serve, another target)
# get their errors; a quoted path with blanks is served; TRUNCATE grows and shrinks the file (also under a stream of
# writes) and MAPR shows its holes; ro=1 refuses writes and TRUNCATE; bad adds are refused with their
# messages; removing an export logs what it served; the module unloads while
# its segment lives on.
. /scenarios/lib.sh
SPEC=segdev:kb:8:256:4K:0:12:buffers=128K*64,1M*16
SYS=/sys/kernel/xsegbd
KB=/sys/kernel/xseg_blockd
load_xsegbd_stack
load xseg_blockd
[ -w $KB/add ] || fail "no $KB/add"
run xseg-tool create $SPEC
run blkcheck write /tmp/kb.img init 32M 1M
run blkcheck write /tmp/kb2.img other 8M 1M

# kadd ARGS...: add an export.
kadd() { echo "$*" > $KB/add || fail "xseg_blockd add '$*' failed"; }

# --- bad adds ----------------------------------------------------------------
# bad_add LINE [MESSAGE]: an add of LINE is refused, and the kernel log has MESSAGE.
bad_add() {
  refuse sh -c "echo '$1' > $KB/add" 2>/dev/null
  [ -z "${2:-}" ] || kmsg_has "$2" || fail "add '$1': no '$2' in the kernel log"
}
bad_add 'segment=kb port=1' "xseg_blockd: add: segment=, port= and file= are required"
bad_add 'segment=kb port=1 file=/tmp/nope' "xseg_blockd: cannot open '/tmp/nope': -ENOENT"
bad_add 'segment=nope port=1 file=/tmp/kb.img' "xseg_blockd: cannot join segdev segment 'nope'"
bad_add 'segment=kb port=1 file=/tmp' "xseg_blockd: cannot open '/tmp': -EISDIR"
bad_add 'segment=kb port=1 file=/dev/null' "xseg_blockd: '/dev/null' is not a regular file or a block device"
bad_add 'segment=kb port=1 file=/tmp/kb.img bogus=1' "xseg_blockd: add: unknown key 'bogus'"
bad_add 'segment=kb port=x file=/tmp/kb.img' "xseg_blockd: add: bad value 'x' for port"
bad_add 'segment=kb port=1 file="/tmp/kb.img' "xseg_blockd: add: the value of file has no closing quote"
bad_add 'segment=kb port=1 file="/tmp/kb.img"x' "xseg_blockd: add: the value of file has no closing quote (or text right after it)"
refuse sh -c "echo 5 > $KB/remove" 2>/dev/null
[ -z "$(cat $KB/list)" ] || fail "exports left: $(cat $KB/list)"
ok "bad adds refused"

# --- through xsegbd ------------------------------------------------------------
kadd segment=kb port=1 file=/tmp/kb.img target=img
kmsg_has "xseg_blockd0: serving '/tmp/kb.img' (33554432 bytes) on port 1 of 'kb' as target img" ||
  fail "no serving line: $(dmesg | grep xseg_blockd | tail -2)"
grep -q '^0 segment=kb port=1 file=/tmp/kb.img size=33554432 target=img ro=0 ' $KB/list || fail "list: $(cat $KB/list)"
bad_add 'segment=kb port=1 file=/tmp/kb2.img' "xseg_blockd: segment 'kb': cannot bind port 1"   # taken
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

# --- a second export at once ---------------------------------------------------------
kadd segment=kb port=2 file=/tmp/kb2.img
xsegbd_add segment=kb target=any dst=2
expect_eq 8388608 blockdev --getsize64 /dev/xsegbd1
run blkcheck verify /dev/xsegbd1 other 8M 64K
run blkcheck write /dev/xsegbd1 k4 8M 4K
run blkcheck verify /dev/xsegbd0 k3 1M 4K   # the first is untouched (1M..2M was discarded)
run blkcheck verify /tmp/kb2.img k4 8M
echo 1 > $SYS/remove || fail "remove xsegbd1"
echo 1 > $KB/remove || fail "remove export 1"
kmsg_has 'xseg_blockd1: removed, served [1-9][0-9]* requests, failed 1 ' ||
  fail "the counts of export 1: $(dmesg | grep 'xseg_blockd1: removed' | tail -1)"   # (xsegbd's OPEN)
ok "two exports, two files, two ports"

# --- a path with blanks, quoted --------------------------------------------------------
cp /tmp/kb2.img "/tmp/k b.img"
kadd segment=kb port=2 'file="/tmp/k b.img"' ro=1
grep -q '^1 segment=kb port=2 file="/tmp/k b.img" size=8388608 ' $KB/list || fail "list of a quoted path: $(cat $KB/list)"
xseg-tool submit $SPEC -p 2 -o read -T any -O 0 -s 4K --out /tmp/kbq || fail "a read of the quoted path's export"
dd if="/tmp/k b.img" of=/tmp/kbq2 bs=4K count=1 2>/dev/null
cmp /tmp/kbq /tmp/kbq2 || fail "the quoted path's export read other bytes"
echo 1 > $KB/remove || fail "remove the quoted path's export"
rm -f "/tmp/k b.img"
ok "a path with blanks in quotes"

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

# --- TRUNCATE and MAPR ---------------------------------------------------------------
# The file grows to 48M (the mapped device keeps its 32M), a write lands past the
# old end, MAPR of the grown part shows that page as data between two holes, and
# the file shrinks back: a read there is then past the end.
run xseg-tool submit $SPEC -p 1 -o truncate -T img -O 48M
kmsg_has "xseg_blockd0: truncated '/tmp/kb.img' to 50331648 bytes" || fail "no truncate line in the kernel log"
expect_eq 50331648 stat -c %s /tmp/kb.img
xseg-tool submit $SPEC -p 1 -o info -T img > /tmp/info || fail "user INFO after TRUNCATE"
grep -qx 'size 50331648' /tmp/info || fail "INFO after TRUNCATE: $(cat /tmp/info)"
run xseg-tool submit $SPEC -p 1 -o write -T img -O 40M -s 4K --data-file /tmp/first
xseg-tool submit $SPEC -p 1 -o mapr -T img -O 32M -s 16M > /tmp/map || fail "MAPR"
for e in 'extent 33554432 8388608 hole,zero' 'extent 41943040 4096 data' 'extent 41947136 8384512 hole,zero'; do
  grep -qx "$e" /tmp/map || fail "MAPR of the grown part has no '$e': $(cat /tmp/map)"
done
run xseg-tool submit $SPEC -p 1 -o truncate -T img -O 32M
expect_eq 33554432 stat -c %s /tmp/kb.img
refuse xseg-tool submit $SPEC -p 1 -o read -T img -O 40M -s 4K 2>/tmp/e5
grep -q ENOSPC /tmp/e5 || fail "a read past the end after the shrink: $(cat /tmp/e5)"
ok "TRUNCATE grows and shrinks the file, MAPR shows its holes"

# TRUNCATEs while the device writes: a write waits for each resize, none fails.
# The writer rewrites [0, 2M) with one pattern; once it has done so whole, nine
# resizes run under it, it goes on writing after them, and then holds that pattern.
writer_under '^written 512$' "TRUNCATEs ran under it" stream /dev/xsegbd0 t1 2M 4K 64
for mb in 33 34 35 36 37 38 39 40 32; do
  run xseg-tool submit $SPEC -p 1 -o truncate -T img -O ${mb}M
done
last=$(tail -1 w.out); tries=0
until [ "$(tail -1 w.out)" != "$last" ]; do
  kill -0 $wr 2>/dev/null || fail "the writer failed under TRUNCATEs: $(cat w.err)"
  tries=$((tries + 1))
  [ $tries -lt 600 ] || fail "the writer made no progress after the TRUNCATEs (hang guard)"
  sleep 0.1
done
kill $wr; wait $wr 2>/dev/null
[ ! -s w.err ] || fail "the writer under TRUNCATEs: $(cat w.err)"
expect_eq 33554432 stat -c %s /tmp/kb.img
run blkcheck verify /dev/xsegbd0 t1 2M 64K
# put back what the sections below expect there: k3 in [0, 1M), 1M..2M discarded
run blkcheck write /dev/xsegbd0 k3 1M 4K
run blkdiscard -o 1048576 -l 1048576 /dev/xsegbd0
ok "TRUNCATEs under a stream of writes: every write served, the data intact"

echo 0 > $SYS/remove || fail "remove 0"
echo 0 > $KB/remove || fail "remove export 0"
kmsg_has 'xseg_blockd0: removed, served [1-9][0-9]* requests, failed [3-9] ' ||
  fail "the counts of export 0: $(dmesg | grep 'xseg_blockd0: removed' | tail -1)"

# --- read-only -----------------------------------------------------------------
kadd segment=kb port=1 file=/tmp/kb.img ro=1
xsegbd_add segment=kb target=img dst=1
run blkcheck verify /dev/xsegbd0 k3 1M 4K   # (1M..2M was discarded)
refuse dd if=/dev/zero of=/dev/xsegbd0 bs=4K count=1 oflag=direct 2>/dev/null
refuse xseg-tool submit $SPEC -p 1 -o write -T img -s 4K --data-file /tmp/first 2>/tmp/e4
grep -q EROFS /tmp/e4 || fail "a write to ro=1: $(cat /tmp/e4)"
refuse xseg-tool submit $SPEC -p 1 -o truncate -T img -O 16M 2>/tmp/e6
grep -q EROFS /tmp/e6 || fail "a TRUNCATE of ro=1: $(cat /tmp/e6)"
expect_eq 33554432 stat -c %s /tmp/kb.img
echo 0 > $SYS/remove || fail "remove 0 (ro)"
ok "ro=1: reads served, writes refused EROFS"

# --- an export removed under writes --------------------------------------------
# The writer never stops on its own (blkcheck stream) and reports every 64
# completed O_DIRECT writes; the export is removed once it has served 256 of
# them. The writer must fail with EIO (nothing hangs), I/O fails while nobody
# serves the port, and a new export of the file serves the device again.
echo 0 > $KB/remove || fail "remove the ro=1 export"
kadd segment=kb port=1 file=/tmp/kb.img
xsegbd_add segment=kb target=img dst=1 timeout=3
writer_under '^written 256$' "the export was removed" stream /dev/xsegbd0 s5 8M 4K 64
echo 0 > $KB/remove || fail "remove export 0 under writes"
writer_fails "its export was removed under it"
refuse dd if=/dev/xsegbd0 of=/dev/null bs=4K count=1 iflag=direct 2>/dev/null
kadd segment=kb port=1 file=/tmp/kb.img
tries=0
until dd if=/dev/xsegbd0 of=/dev/null bs=4K count=1 iflag=direct 2>/dev/null; do
  tries=$((tries + 1))
  [ $tries -lt 100 ] || fail "the new export does not serve the device"
  sleep 0.1
done
run blkcheck write /dev/xsegbd0 s6 2M 64K
run blkcheck verify /dev/xsegbd0 s6 2M
run blkcheck verify /tmp/kb.img s6 2M
echo 0 > $SYS/remove || fail "remove 0 (after the new export)"
ok "an export removed under writes: EIO, then a new export serves the device"

# an export still there at unload (the new one) is removed by it
unload xseg_blockd
[ "$(dmesg | sed -n '/xseg-vm: begin /,$p' | grep -c 'xseg_blockd0: removed')" = 4 ] ||
  fail "unload did not remove the export left: $(dmesg | grep 'xseg_blockd0: removed')"
kmsg_has 'xseg_blockd: unloaded' || fail "no unload line"
run xseg-tool verify $SPEC
run xseg-tool destroy $SPEC
unload_xsegbd_stack
ok "unloaded"
