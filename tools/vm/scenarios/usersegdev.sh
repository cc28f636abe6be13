# SPDX-License-Identifier: BSD-2-Clause
# usersegdev: user peers (static, libxseg) create a segment of type segdev
# (the draft user-side segment type over /dev/segdev) and exchange requests
# through it, every reply byte checked, with the posix, posixfd and futex
# drivers (futex: segdev memory is shmem pages, which give a shared futex a key);
# and with the segdev driver (drivers/user/segdev.c: eventfds registered with
# /dev/segdev, woken through the doorbell, which segdev routes to the eventfd
# when no kernel peer serves it); the segment verifies clean and is
# destroyed. A shared FUTEX_WAIT on a segdev mapping must work (futex-probe).
. /scenarios/lib.sh
load segdev
run xseg-segdev 3000 posix
run xseg-segdev 3000 posixfd
run xseg-segdev 3000 segdev
run xseg-segdev futex-probe
run xseg-segdev 3000 futex
unload segdev
