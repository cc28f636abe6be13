# SPDX-License-Identifier: BSD-2-Clause
# xsegko: xseg.ko (xq/ and xseg/ built for the kernel) loads, its exports
# link, and xq_selftest.ko runs xq's checks, a two-thread stress and the
# segment core on a kernel heap segment inside the kernel; both unload.
. /scenarios/lib.sh
load xseg
[ -r /sys/module/xseg/parameters/instance ] || fail "no /sys/module/xseg/parameters/instance"
inst=$(cat /sys/module/xseg/parameters/instance)
[ "$inst" != 0 ] || fail "instance token is 0"
ok "xseg.ko loaded, instance $inst, $(nproc) CPUs"
load xq_selftest
kmsg_has 'xq_selftest: PASS' || fail "no 'xq_selftest: PASS' in the kernel log"
dmesg | grep 'xq_selftest:' | tail -3
unload xq_selftest
unload xseg
ok "unloaded"
