/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/node/builtins.h - the node domain's built-in segment types and
 * drivers, one line each, as in sys/user/builtins.h. The node domain is the
 * user domain's code compiled into the Node addon; sys/node/addon/sources.js
 * compiles the drivers listed here (and no other), because an addon must not
 * change process-wide state it does not own:
 *   - no "posix" driver: joining or signaling with it installs a SIGIO
 *     handler in the whole Node process. Node peers use "posixfd" (polled by
 *     libuv on the main thread) and "futex" (worker threads); they cannot
 *     signal a port bound with the posix peer type (-ENOTSUP).
 *   - "segdev" (segdev segments only, shared with kernel peers): no signal
 *     handler, only /dev/segdev and eventfds; its poll_fd (the eventfd) is
 *     watched by libuv like posixfd's FIFO, and worker threads block in
 *     ppoll through port.waitSync().
 *   - no loading of xseg_<name>.so drivers (sys/user/loader.c).
 * Read more than once: no include guard.
 */
XSEG_BUILTIN_SEGTYPE(posix)
XSEG_BUILTIN_SEGTYPE(file)
XSEG_BUILTIN_SEGTYPE(heap)
XSEG_BUILTIN_SEGTYPE(segdev)
XSEG_BUILTIN_SEGTYPE(sysv)
XSEG_BUILTIN_SEGTYPE(memfd)
XSEG_BUILTIN_DRIVER(posixfd)
XSEG_BUILTIN_DRIVER(futex)
XSEG_BUILTIN_DRIVER(segdev)
