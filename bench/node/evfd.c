/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/node/evfd.c - the raw baseline of the Node benchmark: an eventfd
 * polled by libuv (uv_poll on the environment's loop), as xseg's posixfd
 * wake-ups are (sys/node/addon/uv_wake.c): readable -> drain -> call JS with
 * napi_make_callback. Not part of the package; bench/node/run builds it
 * into bench/build/node/evfd.node.
 *
 *   open() -> fd            an eventfd (non-blocking; the child gets it as a stdio fd)
 *   watch(fd, fn)           fn() on the loop thread at each wake-up (keeps the loop alive)
 *   post(fd)                add 1 (wakes the watcher)
 *   unwatch(fd)             stop watching (and close the fd)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#define MAX_W 64

struct w {
	uv_poll_t poll;
	napi_env env;
	napi_ref fn;
	int fd;
};

static struct w *ws[MAX_W];

static napi_value throw_errno(napi_env env, const char *what)
{
	napi_throw_error(env, NULL, what);
	return NULL;
}

static int arg_int(napi_env env, napi_callback_info info, size_t n, napi_value *argv, int32_t *out)
{
	size_t argc = n;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n)
		return -1;
	return napi_get_value_int32(env, argv[0], out) == napi_ok ? 0 : -1;
}

static napi_value ev_open(napi_env env, napi_callback_info info)
{
	napi_value r;
	int fd = eventfd(0, EFD_NONBLOCK);

	(void)info;
	if (fd < 0)
		return throw_errno(env, "eventfd failed");
	napi_create_int32(env, fd, &r);
	return r;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct w *w = (struct w *)h;
	napi_handle_scope scope;
	napi_value fn, recv, res;
	uint64_t v;

	(void)events;
	if (status < 0)
		return;
	while (read(w->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
	if (napi_open_handle_scope(w->env, &scope) != napi_ok)
		return;
	if (napi_get_reference_value(w->env, w->fn, &fn) == napi_ok && napi_get_global(w->env, &recv) == napi_ok)
		napi_make_callback(w->env, NULL, recv, fn, 0, NULL, &res);
	napi_close_handle_scope(w->env, scope);
}

static napi_value ev_watch(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct uv_loop_s *loop;
	struct w *w;
	int32_t fd;

	if (arg_int(env, info, 2, argv, &fd) || fd < 0 || fd >= MAX_W || ws[fd])
		return throw_errno(env, "watch(fd, fn): bad arguments");
	if (napi_get_uv_event_loop(env, &loop) != napi_ok)
		return throw_errno(env, "no loop");
	w = calloc(1, sizeof(*w));
	if (!w)
		return throw_errno(env, "out of memory");
	w->env = env;
	w->fd = fd;
	napi_create_reference(env, argv[1], 1, &w->fn);
	if (uv_poll_init(loop, &w->poll, fd) || uv_poll_start(&w->poll, UV_READABLE, on_poll)) {
		free(w);
		return throw_errno(env, "uv_poll failed");
	}
	ws[fd] = w;
	return NULL;
}

static void on_close(uv_handle_t *h)
{
	free(h);
}

static napi_value ev_unwatch(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	int32_t fd;
	struct w *w;

	if (arg_int(env, info, 1, argv, &fd) || fd < 0 || fd >= MAX_W || !ws[fd])
		return throw_errno(env, "unwatch(fd): not watched");
	w = ws[fd];
	ws[fd] = NULL;
	uv_poll_stop(&w->poll);
	napi_delete_reference(env, w->fn);
	uv_close((uv_handle_t *)&w->poll, on_close);
	close(fd);
	return NULL;
}

static napi_value ev_post(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	uint64_t one = 1;
	int32_t fd;

	if (arg_int(env, info, 1, argv, &fd))
		return throw_errno(env, "post(fd): bad argument");
	if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one) && errno != EAGAIN)
		return throw_errno(env, "eventfd write failed");
	return NULL;
}

static napi_value init(napi_env env, napi_value exports)
{
	napi_property_descriptor d[] = {
		{ "open", NULL, ev_open, NULL, NULL, NULL, napi_default, NULL },
		{ "watch", NULL, ev_watch, NULL, NULL, NULL, napi_default, NULL },
		{ "unwatch", NULL, ev_unwatch, NULL, NULL, NULL, napi_default, NULL },
		{ "post", NULL, ev_post, NULL, NULL, NULL, napi_default, NULL },
	};

	napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
