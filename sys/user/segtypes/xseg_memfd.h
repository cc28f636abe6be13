/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/xseg_memfd.h - private segments: the "memfd" segment type
 * (user and node domains). A memfd segment has no name in any namespace: it
 * is an open file descriptor, shared with children across fork/exec and with
 * other processes over a Unix socket (SCM_RIGHTS). Its segment name, in
 * "memfd:N", is the descriptor's number in the process that joins. The
 * memory goes when the last descriptor and the last mapping are gone:
 * nothing to clean up. See docs/segtypes.md.
 */
#ifndef XSEG_SEGTYPES_USER_MEMFD_H
#define XSEG_SEGTYPES_USER_MEMFD_H

#include <stddef.h>
#include "../../../xseg/xseg.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * xseg_create_memfd - create a segment of @cfg (its type and name are
 * ignored: the segment is "memfd:<the fd>") in a new memfd, sized, given
 * @cfg's mode and group, formatted, and sealed against shrinking
 * (F_SEAL_SHRINK, then F_SEAL_SEAL). Returns the descriptor (close-on-exec:
 * to hand it to a program you exec, dup2() it in the child, which clears the
 * flag, or clear FD_CLOEXEC) or a negative errno with @err naming what was
 * wrong. Join it with xseg_join("memfd", "<fd>", ...).
 */
int xseg_create_memfd(const struct xseg_config *cfg, char *err, size_t errlen);

/*
 * xseg_memfd_send - send the descriptor @fd over the connected Unix socket
 * @sock (SCM_RIGHTS, with one byte of data). Returns 0 or a negative errno.
 */
int xseg_memfd_send(int sock, int fd);

/*
 * xseg_memfd_recv - receive one descriptor sent by xseg_memfd_send() on @sock
 * (blocking unless @sock is non-blocking); it arrives close-on-exec. Returns
 * the descriptor or a negative errno (-EPROTO, + @err, when the message
 * carried no descriptor or more than one: extra ones are closed).
 */
int xseg_memfd_recv(int sock, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
