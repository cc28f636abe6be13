# SPDX-License-Identifier: BSD-2-Clause
# tools/vm/guest/lib.sh - helpers for the scenarios (sourced in the guest as
# /scenarios/lib.sh; busybox sh). A scenario exits 0 to pass.
M=${XSEG_VM_MODULES:-/lib/xseg}

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok $*"; }

# run CMD...: run it and fail the scenario if it fails.
run() { "$@" || fail "'$*' exited $?"; }

# refuse CMD...: fail the scenario if CMD succeeds.
refuse() { if "$@"; then fail "'$*' succeeded but should have failed"; fi; }

# expect_eq WANT CMD...: CMD's output must be WANT.
expect_eq() {
  want=$1; shift
  got=$("$@") || fail "'$*' exited $?"
  [ "$got" = "$want" ] || fail "'$*' printed '$got', want '$want'"
}

# kmsg_has PATTERN: the kernel log (since this scenario began) has PATTERN.
kmsg_has() { dmesg | sed -n "/xseg-vm: begin /,\$p" | grep -q -- "$1"; }

# load NAME [PARAM=VALUE...]: insmod $M/NAME.ko.
load() { m=$1; shift; insmod "$M/$m.ko" "$@" || fail "insmod $m.ko $* failed"; }
# unload NAME: rmmod NAME. A file of a process that was just killed may still
# hold the module for a moment (the last fput of a mapping can be deferred to
# another task's way back to user space, e.g. a /proc reader's): up to 5 s.
unload() {
	local tries=0	# local: the scenarios have their own n, i...
	until rmmod "$1" 2>/dev/null; do
		tries=$((tries + 1))
		[ $tries -lt 50 ] || { rmmod "$1"; fail "rmmod $1 failed (in use after 5 s: $(cat /sys/module/$1/refcnt 2>/dev/null) references)"; }
		sleep 0.1
	done
}

# The modules of an xsegbd device in load order; unload_xsegbd_stack unloads
# them in reverse.
XSEGBD_STACK="xseg segdev xseg_segdev xseg_posix xsegbd"
load_xsegbd_stack() { for mod_ in $XSEGBD_STACK; do load $mod_; done; }
unload_xsegbd_stack() {
	for mod_ in xsegbd xseg_posix xseg_segdev segdev xseg; do unload $mod_; done
}

# xsegbd_add ARGS...: add an xsegbd device (ARGS as /sys/kernel/xsegbd/add
# takes them), retrying for up to 10 s while its storage peer starts.
xsegbd_add() {
	local tries=0
	until echo "$*" > /sys/kernel/xsegbd/add 2>/dev/null; do
		tries=$((tries + 1))
		[ $tries -lt 100 ] || fail "xsegbd add '$*' failed"
		sleep 0.1
	done
}

# writer_under WAIT_RE WHAT BLKCHECK_ARGS...: start `blkcheck ARGS` (a writer
# that does not end on its own) into w.out/w.err (its pid in $wr), and wait
# until w.out has a line matching WAIT_RE: the server provably busy. WHAT
# names what is to happen to the server next (for the messages).
writer_under() {
	local want=$1 what=$2 tries=0
	shift 2
	blkcheck "$@" > w.out 2> w.err &
	wr=$!
	until grep -q "$want" w.out; do
		kill -0 $wr 2>/dev/null || fail "the writer ended before $what: $(cat w.err)"
		tries=$((tries + 1))
		[ $tries -lt 600 ] || fail "the writer was not served before $what (hang guard): $(tail -1 w.out)"
		sleep 0.1
	done
}

# writer_fails WHAT: the writer of writer_under must fail with EIO, not hang.
writer_fails() {
	wait $wr && fail "the writer succeeded although $1"
	grep -q 'Input/output error' w.err || fail "the writer did not see EIO: $(cat w.err)"
}

# kill_blockd_under WAIT_RE BLKCHECK_ARGS...: run `blkcheck ARGS` (a writer
# that does not end on its own) into w.out/w.err, SIGKILL blockd ($bd) once
# w.out has a line matching WAIT_RE (blockd provably busy); the writer must
# then fail with EIO, not hang, and recovery must free blockd's port.
kill_blockd_under() {
	local want=$1 tries=0
	shift
	writer_under "$want" "blockd was killed" "$@"
	kill -9 $bd
	wait $bd
	writer_fails "blockd was killed under it"
	echo "writer: $(tail -1 w.out) before the kill; $(cat w.err)"
	# recovery of the dead port runs when the timed-out requests are failed
	tries=0
	until kmsg_has 'recovery freed 1 dead port'; do
		tries=$((tries + 1))
		[ $tries -lt 100 ] || fail "recovery did not free blockd's port"
		sleep 0.1
	done
}
