/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/kernel/kernel_internal.h - what the files of xseg.ko share (not
 * exported).
 */
#ifndef XSEG_SYS_KERNEL_INTERNAL_H
#define XSEG_SYS_KERNEL_INTERNAL_H

/* xseg/segtype_heap.c: free the heap segments left at unload (warns). */
void xseg__heap_cleanup(void);

#endif
