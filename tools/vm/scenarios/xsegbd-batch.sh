# SPDX-License-Identifier: BSD-2-Clause
# xsegbd-batch: many requests in flight, doorbells and completions in
# batches. blkcheck's Linux AIO keeps 64 O_DIRECT 4K requests in flight,
# each batch submitted by one io_submit (blk-mq hands xsegbd a batch:
# bd->last, .commit_rqs), in a scattered order (no two merge); blockd
# (segdev wake-ups) serves them. Checked: every byte written comes back
# (through the device and in the backing file); no reply was found only by
# the timeout handler (rescued=0: no completion waited for a lost wake-up)
# and nothing timed out; the doorbells were batched (fewer than a quarter of
# the requests). Then blockd is killed under a stream of such batches: the
# writer gets EIO (nothing hangs), recovery frees the port, a new blockd
# serves the device, and the device's removal (which waits for every
# request) ends and every module unloads.
# vm-scenario-timeout: 180
. /scenarios/lib.sh
SPEC=segdev:bb:8:256:4K:0:12:buffers=128K*64,1M*16
SYS=/sys/kernel/xsegbd
load_xsegbd_stack
run xseg-tool create $SPEC
add() { xsegbd_add "$@"; }
# field NAME: a counter of xsegbd0 in the list
field() { sed -n "s/^xsegbd0 .* $1=\([0-9]*\).*/\1/p" $SYS/list; }

blockd -g $SPEC -p 1 -d segdev -f /tmp/backing --create-file --size 16M -q &
bd=$!
add segment=bb target=vol dst=1 qdepth=64 timeout=5
# A first 2 MiB: a lost completion shows here within a few timeouts, not only as a hang.
run blkcheck aio /dev/xsegbd0 write s1 2M 4K 64
[ "$(field timeouts)" = 0 ] && [ "$(field rescued)" = 0 ] ||
  fail "a completion waited for the timeout handler: $(cat $SYS/list)"
run blkcheck aio /dev/xsegbd0 write s1 16M 4K 64
run blkcheck aio /dev/xsegbd0 verify s1 16M 4K 64
run blkcheck verify /tmp/backing s1 16M
run blkcheck aio /dev/xsegbd0 randread x 8M 4K 32 >/dev/null
echo "counters: $(cat $SYS/list | grep -o 'completed=.*')"
completed=$(field completed) doorbells=$(field doorbells)
[ "$(field timeouts)" = 0 ] || fail "requests timed out: $(cat $SYS/list)"
[ "$(field rescued)" = 0 ] || fail "replies found only by the timeout handler (a lost wake-up): $(cat $SYS/list)"
[ "$(field failed)" = 0 ] || fail "requests failed: $(cat $SYS/list)"
[ "$completed" -ge 8192 ] || fail "only $completed requests completed: $(cat $SYS/list)"
[ $((doorbells * 4)) -le "$completed" ] ||
  fail "doorbells not batched: $doorbells doorbells for $completed requests"
ok "64 in flight: every byte back, no lost completion, $doorbells doorbells for $completed requests"

# blockd killed under batches of 64: the writer fails, nothing hangs
kill_blockd_under '^written' aio /dev/xsegbd0 stream s2 16M 4K 64
ok "blockd killed under batches: EIO, port recovered"

blockd -g $SPEC -p 1 -d segdev -f /tmp/backing -q &
bd=$!
i=0
until dd if=/dev/xsegbd0 of=/dev/null bs=4K count=1 iflag=direct 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "the device does not serve reads again"
  sleep 0.1
done
run blkcheck aio /dev/xsegbd0 write s3 8M 4K 64
run blkcheck aio /dev/xsegbd0 verify s3 8M 4K 64
ok "a new storage peer serves batches again"
echo 0 > $SYS/remove || fail "remove 0"
kill $bd
wait $bd
run xseg-tool destroy $SPEC
unload_xsegbd_stack
ok "unloaded"
