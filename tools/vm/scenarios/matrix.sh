# SPDX-License-Identifier: BSD-2-Clause
# matrix: every ordered pair (client cell -> server cell) of the peer styles
# {user C, kernel, Node} x {sleeping, callback} exchanges $COUNT verified
# requests over one segdev segment (the segdev peer type in every domain):
#   user sleep       xseg_prepare_wait / xseg_wait_signal (ppoll on an eventfd)
#   user callback    an event loop polls xseg_poll_fd's eventfd (tools/vm/guest/xseg-kpeer.c)
#   kernel sleep     a kernel thread blocks in xseg_wait_signal (xseg_kpeer.ko mode=sleep)
#   kernel callback  the wakeup callback, in atomic context (mode=callback)
#   node sleep       a worker thread blocks in port.waitSync() (tools/vm/guest/node-peer.cjs)
#   node callback    the main thread; libuv polls the port's eventfd (serve(), submit())
# Nobody polls: every reply travels by a wake-up, and a client with no reply
# for 30 s (a lost wake-up) fails. Prints the matrix; every cell must pass.
# XSEG_MATRIX_COUNT (on the host: tools/vm/run passes it) is the requests per
# cell, 10 000 by default: 77 s of VM time on an idle 2-vCPU machine, 370 s
# on one loaded by other jobs (docs/kernel.md, "The peer matrix").
# XSEG_MATRIX_CELLS chooses a subset of the cells (all by default).
# vm-scenario-timeout: 900
# vm-node
# vm-hostbin: /usr/bin/node
. /scenarios/lib.sh
COUNT=${XSEG_MATRIX_COUNT:-10000}
SIZE=1024
SEG=mx
CELLS=${XSEG_MATRIX_CELLS:-"user:sleep user:callback kernel:sleep kernel:callback node:sleep node:callback"}
NODE=$(command -v node || echo /usr/bin/node)
case $CELLS in
*node:*) [ -x "$NODE" ] || fail "no node in the guest (tools/vm/run copies it for a '# vm-hostbin: /usr/bin/node' line)" ;;
esac
load xseg
load segdev
load xseg_segdev
run xseg-kpeer create $SEG

# Ports (static 0-7): servers: user 1, kernel 2, node 4; clients: user 0,
# kernel 3, node 5.
: > matrix.txt
srv_pid=""
cleanup() {
	[ -n "$srv_pid" ] && kill $srv_pid 2>/dev/null && wait $srv_pid
	[ -n "$srv_pid" ] && echo "the server said: $(cat serve.out 2>&1)"
	for m in xseg_kpeer xseg_segdev segdev xseg; do rmmod $m 2>/dev/null; done
}
trap cleanup EXIT

# start_server DOMAIN STYLE: a user or Node server in the background.
start_server() {
	rm -f serve.out
	case $1 in
	user) xseg-kpeer serve $SEG 1 segdev "$([ $2 = callback ] && echo loop || echo sleep)" > serve.out 2>&1 & ;;
	node) "$NODE" /xseg/node-peer.cjs serve $SEG 4 $2 > serve.out 2>&1 & ;;
	esac
	srv_pid=$!
	i=0
	until grep -q serving serve.out 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "the $1 server did not start: $(cat serve.out 2>&1)"
		kill -0 $srv_pid 2>/dev/null || fail "the $1 server exited: $(cat serve.out 2>&1)"
		sleep 0.1
	done
}
stop_server() {
	kill $srv_pid
	wait $srv_pid || fail "the server exited $?: $(cat serve.out)"
	cat serve.out
	srv_pid=""
}
# client DOMAIN STYLE DST: a user or Node client sending $COUNT requests to DST.
client() {
	case $1 in
	user) run xseg-kpeer client $SEG 0 $3 $COUNT segdev "$([ $2 = callback ] && echo loop || echo sleep)" $SIZE ;;
	node) run "$NODE" /xseg/node-peer.cjs client $SEG 5 $3 $COUNT $2 $SIZE ;;
	esac
}

# cell CLIENT SERVER: run one pair, append "client server result" to matrix.txt.
cell() {
	c=$1 s=$2
	cdom=${c%%:*} cst=${c#*:} sdom=${s%%:*} sst=${s#*:}
	t0=$(date +%s)
	echo "--- $c -> $s: $COUNT requests of $SIZE bytes"
	case $sdom in
	user) dst=1 ;;
	kernel) dst=2 ;;
	node) dst=4 ;;
	esac
	[ $sdom = kernel ] || start_server $sdom $sst
	case $cdom:$sdom in
	kernel:kernel)
		load xseg_kpeer seg=$SEG port=2 mode=$sst cport=3 cmode=$cst peer=2 count=$COUNT size=$SIZE
		unload xseg_kpeer ;;
	kernel:*)
		# The module's server (port 2) idles; its client (port 3) sends to the server.
		load xseg_kpeer seg=$SEG port=2 mode=callback cport=3 cmode=$cst peer=$dst count=$COUNT size=$SIZE
		unload xseg_kpeer ;;
	*:kernel)
		load xseg_kpeer seg=$SEG port=2 mode=$sst count=0
		client $cdom $cst $dst
		unload xseg_kpeer ;;
	*)
		client $cdom $cst $dst ;;
	esac
	[ $sdom = kernel ] || stop_server
	# insmod may retry a failed init (busybox falls back from finit_module
	# to init_module): a cell passes only if the module never failed.
	bad=$(dmesg | grep -E 'xseg_kpeer: (no reply|[0-9]+ good|reply at|submit|bind|join|.* thread on port)' | head -3)
	[ -z "$bad" ] || fail "$c -> $s: the kernel peer failed: $bad"
	[ $cdom = kernel ] && dmesg | grep 'xseg_kpeer: PASS' | tail -1 | sed 's/; serving.*//'
	echo "$c $s ok $(( $(date +%s) - t0 ))s" >> matrix.txt
}

ncells=0
for s in $CELLS; do
	for c in $CELLS; do
		cell $c $s
		ncells=$((ncells + 1))
	done
done
trap - EXIT

n=$(grep -c ' ok ' matrix.txt)
[ "$n" = $ncells ] || fail "only $n of $ncells cells passed"
run xseg-kpeer verify $SEG
run xseg-kpeer destroy $SEG
unload xseg_segdev
unload segdev
unload xseg
# The matrix: rows are clients, columns servers; each cell says whether
# $COUNT verified requests went client -> server and how long they took.
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
ok "$ncells cells, $COUNT requests each"
