# SPDX-License-Identifier: BSD-2-Clause
# matrix: every ordered pair (client cell -> server cell) of the peer styles
# {user C, kernel} x {sleeping, callback} exchanges $COUNT verified requests
# over one segdev segment (the segdev peer type in both domains):
#   user sleep     xseg_prepare_wait / xseg_wait_signal (ppoll on an eventfd)
#   user callback  an event loop polls xseg_poll_fd's eventfd (tools/vm/guest/xseg-kpeer.c)
#   kernel sleep   a kernel thread blocks in xseg_wait_signal (xseg_kpeer.ko mode=sleep)
#   kernel callback  the wakeup callback, in atomic context (mode=callback)
# Nobody polls: every reply travels by a wake-up, and a client with no reply
# for 30 s (a lost wake-up) fails. Prints the matrix; every cell must pass.
# Node peers are not in the guest (docs/kernel.md, "The peer matrix").
# vm-scenario-timeout: 420
. /scenarios/lib.sh
COUNT=${XSEG_MATRIX_COUNT:-10000}
SIZE=1024
SEG=mx
load xseg
load segdev
load xseg_segdev
run xseg-kpeer create $SEG

# Ports (the segment's static ports are 0-3): a user server on 1, the kernel
# server on 2, a user client on 0, a kernel client on 3.
CELLS="user:sleep user:callback kernel:sleep kernel:callback"
style() { [ "$1" = callback ] && echo loop || echo sleep; }
: > matrix.txt

srv_pid=""
start_user_server() {
	xseg-kpeer serve $SEG 1 segdev "$(style $1)" > serve.out 2>&1 &
	srv_pid=$!
	i=0
	until grep -q serving serve.out; do
		i=$((i + 1)); [ $i -lt 100 ] || fail "the user server did not start: $(cat serve.out)"
		sleep 0.1
	done
}
stop_user_server() {
	kill $srv_pid
	wait $srv_pid || fail "the user server exited $?: $(cat serve.out)"
	cat serve.out
	srv_pid=""
}
cleanup() {
	[ -n "$srv_pid" ] && kill $srv_pid 2>/dev/null && wait $srv_pid
	for m in xseg_kpeer xseg_segdev segdev xseg; do rmmod $m 2>/dev/null; done
}
trap cleanup EXIT

# cell CLIENT SERVER: run one pair, append "client server result" to matrix.txt.
cell() {
	c=$1 s=$2
	cdom=${c%%:*} cst=${c#*:} sdom=${s%%:*} sst=${s#*:}
	t0=$(date +%s)
	echo "--- $c -> $s: $COUNT requests of $SIZE bytes"
	if [ $sdom = user ]; then
		start_user_server $sst
		dst=1
	fi
	case $cdom:$sdom in
	user:user)
		run xseg-kpeer client $SEG 0 1 $COUNT segdev "$(style $cst)" $SIZE ;;
	user:kernel)
		load xseg_kpeer seg=$SEG port=2 mode=$sst count=0
		run xseg-kpeer client $SEG 0 2 $COUNT segdev "$(style $cst)" $SIZE
		unload xseg_kpeer ;;
	kernel:user)
		# The module's server (port 2) idles; its client (port 3) sends to the user server.
		load xseg_kpeer seg=$SEG port=2 mode=callback cport=3 cmode=$cst peer=1 count=$COUNT size=$SIZE
		unload xseg_kpeer ;;
	kernel:kernel)
		load xseg_kpeer seg=$SEG port=2 mode=$sst cport=3 cmode=$cst peer=2 count=$COUNT size=$SIZE
		unload xseg_kpeer ;;
	esac
	[ $sdom = user ] && stop_user_server
	[ $cdom = kernel ] && dmesg | grep 'xseg_kpeer: PASS' | tail -1
	echo "$c $s ok $(( $(date +%s) - t0 ))s" >> matrix.txt
}

for s in $CELLS; do
	for c in $CELLS; do
		cell $c $s
	done
done
trap - EXIT

n=$(grep -c ' ok ' matrix.txt)
[ "$n" = 16 ] || fail "only $n of 16 cells passed"
run xseg-kpeer verify $SEG
run xseg-kpeer destroy $SEG
unload xseg_segdev
unload segdev
unload xseg
# The matrix: rows are clients, columns servers; each cell says how many
# verified requests went client -> server and how long they took.
echo "matrix ($COUNT verified requests of $SIZE bytes per cell; client \\ server)"
printf '%-16s' 'client \ server'
for s in $CELLS; do printf ' %-16s' "$s"; done
echo
for c in $CELLS; do
	printf '%-16s' "$c"
	for s in $CELLS; do
		r=$(grep "^$c $s " matrix.txt | cut -d' ' -f3-)
		printf ' %-16s' "${r:-missing}"
	done
	echo
done
ok "16 cells, $COUNT requests each"
