# SPDX-License-Identifier: BSD-2-Clause
# segdev: /dev/segdev end to end. Segments are created, mapped by separate
# static processes that see each other's writes, refused when malformed,
# destroyed while mapped, re-created under the same name; the doorbell
# reaches a kernel callback (segdev_echo.ko) that wakes user space through an
# eventfd; everything unloads.
. /scenarios/lib.sh
load segdev
[ -c /dev/segdev ] || fail "no /dev/segdev after insmod"
ok "/dev/segdev is $(ls -l /dev/segdev | awk '{print $1, $5, $6}')"

run segdev-test create s1 65536
expect_eq 65536 segdev-test size s1
# two separate processes: one writes and exits, the next one reads
run segdev-test put s1 100 hello
run segdev-test put s1 65530 edge!!
expect_eq hello segdev-test get s1 100 5
expect_eq 'edge!!' segdev-test get s1 65530 6
expect_eq '.....' segdev-test get s1 200 5
# and two live processes, each with its own mapping, in lock step
run segdev-test pingpong s1 2000
# several segments at once
run segdev-test create s2 4096
run segdev-test put s2 0 other
expect_eq other segdev-test get s2 0 5
expect_eq hello segdev-test get s1 100 5
refuse segdev-test create s1 4096 2>/dev/null
ok "several segments"

run segdev-test bad
run segdev-test destroy-mapped s3

# the doorbell: user -> kernel callback -> eventfd -> user
load segdev_echo seg=s1
run segdev-test doorbell s1 7
unload segdev_echo
kmsg_has 'segdev_echo: done, 5 rings' || fail "segdev_echo did not count 5 rings"

# destroy, then the name is gone; re-create and it is new, zeroed memory
run segdev-test destroy s1
refuse segdev-test size s1 2>/dev/null
run segdev-test create s1 8192
expect_eq 8192 segdev-test size s1
expect_eq '.....' segdev-test get s1 100 5
run segdev-test destroy s1
run segdev-test destroy s2

# a segment mapped by a process that is killed: the mapping goes with it
run segdev-test create s4 4096
segdev-test pingpong s4 100000000 >/dev/null 2>&1 &
sleep 1
killall -9 segdev-test 2>/dev/null
wait
run segdev-test destroy s4
unload segdev
[ ! -e /dev/segdev ] || fail "/dev/segdev still there after rmmod"
ok "unloaded"
