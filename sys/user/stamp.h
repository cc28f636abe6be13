/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/stamp.h - internal to the user domain (not installed, not
 * exported by libxseg.so): which clock xseg_sys_stamp_ns (sys/domain.h)
 * reads in this process, for test/sys/stamp.
 */
#ifndef XSEG_SYS_USER_STAMP_H
#define XSEG_SYS_USER_STAMP_H

/* 1 if this process's stamps come from the TSC, 0 if from clock_gettime. */
int xseg_sys_stamp_tsc(void);

#endif
