// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/port.cc - port_*: bind and leave ports, watch them from the
// event loop (posixfd + libuv, sys/node/addon/uv_wake.h), signal them, wait on
// them (worker threads only: it blocks), and read their state.
#include <errno.h>
#include <string.h>
#include "addon.h"

namespace xnode {

static bool arg_port(const Napi::CallbackInfo &info, Seg *s, size_t i, const char *fn, uint32_t *out)
{
	if (!arg_u32(info, i, fn, out))
		return false;
	if (*out >= s->nr_ports) {
		throw_errno(info.Env(), -EINVAL, fn, "no such port");
		return false;
	}
	return true;
}

// port_bind(handle, port, flags) -> the port bound. port -1: the first free
// dynamic port. flags: XSEG_PORT_ACCEPT | XSEG_PORT_RECEIVE bits (0: both).
// Throws EBUSY (a live peer holds it), ENOSPC (no dynamic port free), EINVAL.
static Napi::Value port_bind(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port = XSEG_ANY_PORT, flags = 0;

	if (!arg_seg(info, 0, "port_bind", &s))
		return info.Env().Undefined();
	if (!(info[1].IsNumber() && info[1].As<Napi::Number>().DoubleValue() == -1) &&
	    !arg_port(info, s, 1, "port_bind", &port))
		return info.Env().Undefined();
	if (info.Length() > 2 && !info[2].IsUndefined() && !arg_u32(info, 2, "port_bind", &flags))
		return info.Env().Undefined();
	int r = xseg_bind_port(s->xs, port, flags);
	if (r < 0) {
		throw_errno(info.Env(), r, "port_bind");
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), r);
}

// port_leave(handle, port) -> undefined. Stops the port's watcher first;
// requests still queued to it fail back to their clients.
static Napi::Value port_leave(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port;

	if (!arg_seg(info, 0, "port_leave", &s) || !arg_port(info, s, 1, "port_leave", &port))
		return info.Env().Undefined();
	seg_stop_wake(s, port, true);
	int r = xseg_leave_port(s->xs, port);
	if (r < 0)
		throw_errno(info.Env(), r, "port_leave");
	return info.Env().Undefined();
}

// port_watch(handle, port, fn) -> undefined. Calls fn(status) on the loop
// thread after each wake-up of the port (posixfd or segdev peer type: ENOTSUP
// otherwise). The watcher starts unreferenced (see port_ref).
static Napi::Value port_watch(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port;
	int err = 0;

	if (!arg_seg(info, 0, "port_watch", &s) || !arg_port(info, s, 1, "port_watch", &port))
		return info.Env().Undefined();
	if (!info[2].IsFunction()) {
		throw_errno(info.Env(), -EINVAL, "port_watch", "argument 3 must be a function");
		return info.Env().Undefined();
	}
	if (s->wake[port]) {
		throw_errno(info.Env(), -EBUSY, "port_watch", "the port is already watched");
		return info.Env().Undefined();
	}
	s->wake[port] = xseg_uv_wake_start(info.Env(), s->xs, port, info[2], watcher_closed, s->inst, &err);
	if (!s->wake[port])
		throw_errno(info.Env(), err, "port_watch",
			    err == -ENOTSUP ? "only ports of the posixfd or segdev peer type can be watched" : nullptr);
	return info.Env().Undefined();
}

// port_unwatch(handle, port) -> undefined (no watcher: nothing to do).
static Napi::Value port_unwatch(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port;

	if (arg_seg(info, 0, "port_unwatch", &s) && arg_port(info, s, 1, "port_unwatch", &port))
		seg_stop_wake(s, port, true);
	return info.Env().Undefined();
}

// port_ref(handle, port, on) -> undefined: whether the port's watcher keeps
// the event loop alive (something waits on it) or not (idle).
static Napi::Value port_ref(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port;

	if (!arg_seg(info, 0, "port_ref", &s) || !arg_port(info, s, 1, "port_ref", &port))
		return info.Env().Undefined();
	if (!s->wake[port]) {
		throw_errno(info.Env(), -ENOENT, "port_ref", "the port is not watched");
		return info.Env().Undefined();
	}
	xseg_uv_wake_ref(s->wake[port], info[2].ToBoolean().Value());
	return info.Env().Undefined();
}

// port_signal(handle, port) -> undefined: wake the peer bound to the port.
// Throws ENOENT (nobody bound it), ENOTSUP (no driver for its peer type here).
static Napi::Value port_signal(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port;

	if (!arg_seg(info, 0, "port_signal", &s) || !arg_port(info, s, 1, "port_signal", &port))
		return info.Env().Undefined();
	int r = xseg_signal(s->xs, port);
	if (r < 0)
		throw_errno(info.Env(), r, "port_signal");
	return info.Env().Undefined();
}

// port_wait(handle, port, timeout_us) -> 1 work is queued, 0 timed out.
// Blocks the calling thread (spin, then sleep through the driver): for
// worker threads (futex peers), never the main thread. timeout -1: forever.
static Napi::Value port_wait(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port;
	uint64_t timeout = UINT64_MAX;

	if (!arg_seg(info, 0, "port_wait", &s) || !arg_port(info, s, 1, "port_wait", &port))
		return info.Env().Undefined();
	if (!(info[2].IsNumber() && info[2].As<Napi::Number>().DoubleValue() == -1) &&
	    !arg_u64(info, 2, "port_wait", &timeout))
		return info.Env().Undefined();
	int r = xseg_wait(s->xs, port, timeout);
	if (r < 0) {
		throw_errno(info.Env(), r, "port_wait");
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), r);
}

// port_redirect(handle, port, to) -> undefined: submits to @port go to @to
// (-1: no redirect).
static Napi::Value port_redirect(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t port, to = XSEG_NO_PORT;

	if (!arg_seg(info, 0, "port_redirect", &s) || !arg_port(info, s, 1, "port_redirect", &port))
		return info.Env().Undefined();
	if (!(info[2].IsNumber() && info[2].As<Napi::Number>().DoubleValue() == -1) &&
	    !arg_port(info, s, 2, "port_redirect", &to))
		return info.Env().Undefined();
	int r = xseg_set_redirect(s->xs, port, to);
	if (r < 0)
		throw_errno(info.Env(), r, "port_redirect");
	return info.Env().Undefined();
}

// Queue lengths through the queues join validated (never offsets re-read from
// the segment, which a hostile peer may change between two reads).
static uint32_t queued(struct xseg *xs, uint32_t port, int replies)
{
	uint32_t rq = 0, pq = 0;

	xseg_port_depths(xs, port, &rq, &pq);
	return replies ? pq : rq;
}

// port_info(handle, port) -> the port's state, owner, peer type, queue
// lengths and counters (a snapshot of shared memory: informative only).
static Napi::Value port_info(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t port;

	if (!arg_seg(info, 0, "port_info", &s) || !arg_port(info, s, 1, "port_info", &port))
		return env.Undefined();
	struct xseg_port *p = xseg_port(s->xs, port);
	uint64_t w = xseg__owner(p);
	uint32_t st = (uint32_t)XSEG_OWNER_STATE(w), pt = xa_load_rlx32(&p->peer_type);
	static const char *const states[] = { "free", "bound", "recovering", "binding" };
	Napi::Object o = Napi::Object::New(env);

	o.Set("port", port);
	o.Set("state", states[st & 3]);
	o.Set("pid", XSEG_OWNER_PID(w));
	o.Set("gen", XSEG_OWNER_GEN(w));
	o.Set("alive", st == XSEG_PORT_BOUND &&
			       xseg_sys_alive(XSEG_OWNER_PID(w), xa_load_rlx64(&p->owner_start)));
	o.Set("uid", p->owner_uid);
	char name[XSEG_TYPE_LEN];
	if (st != XSEG_PORT_FREE && xseg_peer_type_name(s->xs, pt, name, sizeof(name)) == 0) {
		o.Set("peer_type", name);
	} else {
		o.Set("peer_type", env.Null());
	}
	o.Set("dynamic", port >= xseg_config(s->xs)->dynports);
	o.Set("flags", p->flags);
	uint32_t redir = xa_load_rlx32(&p->redirect);
	o.Set("redirect", redir == XSEG_NO_PORT ? Napi::Value(env.Null()) : Napi::Number::New(env, redir));
	o.Set("requests_queued", queued(s->xs, port, 0));
	o.Set("replies_queued", queued(s->xs, port, 1));
	Napi::Object c = Napi::Object::New(env);
	c.Set("submitted", (double)xseg__counter(&p->cnt.submitted));
	c.Set("accepted", (double)xseg__counter(&p->cnt.accepted));
	c.Set("responded", (double)xseg__counter(&p->cnt.responded));
	c.Set("received", (double)xseg__counter(&p->cnt.received));
	c.Set("failed", (double)xseg__counter(&p->cnt.failed));
	c.Set("reclaimed", (double)xseg__counter(&p->cnt.reclaimed));
	c.Set("bytesResponded", (double)xseg__counter(&p->bytes_responded));
	c.Set("bytesReceived", (double)xseg__counter(&p->bytes_received));
	o.Set("counters", c);
	struct xseg_quota qu;
	Napi::Object q = Napi::Object::New(env);
	xseg_port_quota(s->xs, port, &qu);
	q.Set("max_requests", qu.max_requests);
	q.Set("requests", qu.requests);
	q.Set("max_buffer", (double)qu.max_buffer);
	q.Set("buffer", (double)qu.buffer);
	o.Set("quota", q);
	Napi::Array lat = Napi::Array::New(env, XSEG_LAT_BUCKETS);
	for (uint32_t b = 0; b < XSEG_LAT_BUCKETS; b++)
		lat.Set(b, (double)xseg__counter(&p->lat[b]));
	o.Set("latency_us_log2", lat);
	return o;
}

void init_port(Napi::Env env, Napi::Object exports)
{
	exports.Set("port_bind", Napi::Function::New(env, port_bind, "port_bind"));
	exports.Set("port_leave", Napi::Function::New(env, port_leave, "port_leave"));
	exports.Set("port_watch", Napi::Function::New(env, port_watch, "port_watch"));
	exports.Set("port_unwatch", Napi::Function::New(env, port_unwatch, "port_unwatch"));
	exports.Set("port_ref", Napi::Function::New(env, port_ref, "port_ref"));
	exports.Set("port_signal", Napi::Function::New(env, port_signal, "port_signal"));
	exports.Set("port_wait", Napi::Function::New(env, port_wait, "port_wait"));
	exports.Set("port_redirect", Napi::Function::New(env, port_redirect, "port_redirect"));
	exports.Set("port_info", Napi::Function::New(env, port_info, "port_info"));
}

}  // namespace xnode
