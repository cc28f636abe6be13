/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/node/addon/uv_wake.h - a port's wake-ups delivered by the Node event loop.
 *
 * A port this process bound with the "posixfd" peer type has a FIFO that
 * polls readable when the port is signaled (drivers/user/posixfd.h). A
 * xseg_uv_wake watches it with a libuv uv_poll on the loop of one Node
 * environment (the main thread or a worker) and, on every wake-up, drains the
 * FIFO and then calls a JavaScript function on that loop's thread, so the
 * function sees every request or reply queued before the signal. No other
 * thread and no thread-safe function is involved: uv_poll callbacks run on
 * the loop thread.
 *
 * The watcher starts unreferenced: it does not keep the event loop alive.
 * The caller references it while something waits on the port (a pending
 * reply, a running server) and unreferences it when idle.
 *
 * All functions are called on the environment's JavaScript thread.
 */
#ifndef XSEG_NODE_ADDON_UV_WAKE_H
#define XSEG_NODE_ADDON_UV_WAKE_H

#include <node_api.h>
#include <stdint.h>

struct xseg;
struct xseg_uv_wake;

/*
 * xseg_uv_wake_start - watch port @portno of @xs (bound by this process with
 * the posixfd peer type). @fn is called as fn(status) after each wake-up
 * (status 0, or a negative errno if polling failed; the watcher stops then).
 * @closed(@arg) runs once the watcher is fully closed (see close below).
 * Returns the watcher, or NULL with *@err set to a negative errno (-ENOTSUP
 * for a port of another peer type).
 */
struct xseg_uv_wake *xseg_uv_wake_start(napi_env env, struct xseg *xs, uint32_t portno,
					napi_value fn, void (*closed)(void *arg), void *arg,
					int *err);

/* xseg_uv_wake_ref - keep the event loop alive while the port waits (@on), or not. */
void xseg_uv_wake_ref(struct xseg_uv_wake *w, int on);

/*
 * xseg_uv_wake_close - stop watching at once (the FIFO may be closed right
 * after this returns) and free the watcher once libuv has closed it, which
 * calls the @closed callback given to start. @can_call_js: 0 during the
 * environment's teardown (the JavaScript reference is then left to Node).
 */
void xseg_uv_wake_close(struct xseg_uv_wake *w, int can_call_js);

#endif
