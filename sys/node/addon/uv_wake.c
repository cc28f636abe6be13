/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/node/addon/uv_wake.c - posixfd and segdev wake-ups through libuv (see uv_wake.h).
 * xseg_posixfd_drain reads a FIFO or an eventfd alike (an eventfd gives its
 * 8-byte count in one read, which clears it).
 *
 * Order on a wake-up: drain the FIFO first, then call JavaScript, which
 * looks at the queues. A signal that lands after the drain leaves a byte
 * (the port is XSEG_FD_ALWAYS) and the level-triggered poll fires again; a
 * signal before it was preceded by its enqueue, which the queue check sees.
 */
#include <errno.h>
#include <stdlib.h>
#include <uv.h>
#include "../../../xseg/xseg.h"
#include "../../../drivers/user/posixfd.h"
#include "uv_wake.h"

struct xseg_uv_wake {
	uv_poll_t poll;		/* first: the handle's memory is the watcher's */
	napi_env env;
	napi_ref fn;
	int fd;
	int stopped;
	void (*closed)(void *arg);
	void *arg;
};

static void call_js(struct xseg_uv_wake *w, int status)
{
	napi_env env = w->env;
	napi_handle_scope scope;
	napi_value fn, recv, argv[1], res;
	napi_status st;

	if (!w->fn || napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	if (napi_get_reference_value(env, w->fn, &fn) == napi_ok && fn &&
	    napi_get_global(env, &recv) == napi_ok &&
	    napi_create_int32(env, status, &argv[0]) == napi_ok) {
		/*
		 * make_callback (its receiver must be an object: the global one)
		 * runs the microtasks and nextTicks the call queued.
		 */
		st = napi_make_callback(env, NULL, recv, fn, 1, argv, &res);
		if (st == napi_pending_exception) {
			napi_value e;

			/* An exception thrown by the callback is the process's to see. */
			if (napi_get_and_clear_last_exception(env, &e) == napi_ok)
				napi_fatal_exception(env, e);
		}
	}
	napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct xseg_uv_wake *w = (struct xseg_uv_wake *)h;

	(void)events;
	if (status < 0) {
		uv_poll_stop(h);
		w->stopped = 1;
		call_js(w, status);
		return;
	}
	xseg_posixfd_drain(w->fd);
	call_js(w, 0);
}

struct xseg_uv_wake *xseg_uv_wake_start(napi_env env, struct xseg *xs, uint32_t portno,
					napi_value fn, void (*closed)(void *arg), void *arg,
					int *err)
{
	struct xseg_uv_wake *w;
	uv_loop_t *loop;
	int fd, r;

	if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
		*err = -EINVAL;
		return NULL;
	}
	fd = xseg_poll_fd(xs, portno);
	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		*err = -ENOMEM;
		return NULL;
	}
	w->env = env;
	w->fd = fd;
	w->closed = closed;
	w->arg = arg;
	if (napi_create_reference(env, fn, 1, &w->fn) != napi_ok) {
		free(w);
		*err = -EINVAL;
		return NULL;
	}
	r = uv_poll_init(loop, &w->poll, fd);
	if (r == 0) {
		r = uv_poll_start(&w->poll, UV_READABLE, on_poll);
		if (r < 0) {
			/* Initialized: libuv must close it; the close callback frees it. */
			w->stopped = 1;
			xseg_uv_wake_close(w, 1);
			*err = r;
			return NULL;
		}
	} else {
		napi_delete_reference(env, w->fn);
		free(w);
		*err = r;
		return NULL;
	}
	/* Idle ports do not keep the process alive. */
	uv_unref((uv_handle_t *)&w->poll);
	*err = 0;
	return w;
}

void xseg_uv_wake_ref(struct xseg_uv_wake *w, int on)
{
	if (on)
		uv_ref((uv_handle_t *)&w->poll);
	else
		uv_unref((uv_handle_t *)&w->poll);
}

static void on_closed(uv_handle_t *h)
{
	struct xseg_uv_wake *w = (struct xseg_uv_wake *)h;
	void (*closed)(void *) = w->closed;
	void *arg = w->arg;

	free(w);
	if (closed)
		closed(arg);
}

void xseg_uv_wake_close(struct xseg_uv_wake *w, int can_call_js)
{
	if (w->fn && can_call_js)
		napi_delete_reference(w->env, w->fn);
	w->fn = NULL;
	/* uv_close stops the poll and drops the fd from epoll now. */
	uv_close((uv_handle_t *)&w->poll, on_closed);
}
