// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/napi.cc - the engine's lifetime and its N-API functions (nbd_*), and
// the events it gives TypeScript.
#include "peers/node/nbd/engine/engine.h"

namespace xnode {
namespace nbd {

// The NBD error for an xseg reply's errno (only the protocol's eight values go on the wire).
uint32_t nbd_error_of(int e)
{
	switch (e) {
	case EPERM: case EACCES: case EROFS: return NBD_EPERM;
	case ENOMEM: case ENOBUFS: return NBD_ENOMEM;
	case EINVAL: case E2BIG: return NBD_EINVAL;
	case ENOSPC: case EDQUOT: case EFBIG: return NBD_ENOSPC;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}

void event(Engine *e, const char *kind, uint32_t id, const std::string &text, int fd)
{
	e->events.push_back(Event{ kind, id, text, fd });
}

// Deliver the queued events (after every C state change of a callback).
void flush_events(Engine *e)
{
	napi_env env = e->env;

	while (!e->events.empty() && e->fn_ref && !e->finalized) {
		std::vector<Event> evs;
		napi_handle_scope scope;
		napi_value fn, recv, argv[4], res;

		evs.swap(e->events);
		if (napi_open_handle_scope(env, &scope) != napi_ok)
			return;
		if (napi_get_reference_value(env, e->fn_ref, &fn) == napi_ok && fn &&
		    napi_get_global(env, &recv) == napi_ok) {
			for (const Event &ev : evs) {
				napi_status st;

				napi_create_string_utf8(env, ev.kind.c_str(), ev.kind.size(), &argv[0]);
				napi_create_uint32(env, ev.id, &argv[1]);
				napi_create_string_utf8(env, ev.text.c_str(), ev.text.size(), &argv[2]);
				napi_create_int32(env, ev.fd, &argv[3]);
				if (e->in_js_call)
					st = napi_call_function(env, recv, fn, 4, argv, &res);
				else
					st = napi_make_callback(env, nullptr, recv, fn, 4, argv, &res);
				if (st == napi_pending_exception) {
					napi_value ex;

					if (napi_get_and_clear_last_exception(env, &ex) == napi_ok)
						napi_fatal_exception(env, ex);
				}
			}
		}
		napi_close_handle_scope(env, scope);
	}
}

void on_port_closed(uv_handle_t *h)
{
	Engine *e = (Engine *)h->data;

	if (h == (uv_handle_t *)&e->poll)
		e->poll_open = false;
	else if (h == (uv_handle_t *)&e->timer)
		e->timer_open = false;
	else if (h == (uv_handle_t *)&e->prep)
		e->prep_open = false;
	else
		e->check_open = false;
	e->handles--;
	maybe_free_engine(e);
}

void maybe_free_engine(Engine *e)
{
	if (!e->closed || e->handles || !e->finalized)
		return;
	while (Cmd *c = e->free_cmds) {
		e->free_cmds = c->free_next;
		delete c;
	}
	delete e;
}

// Stop everything: connections dropped (no events), the port's poll closed.
void engine_close(Engine *e)
{
	if (e->closed)
		return;
	e->closed = true;
	std::vector<Conn *> all;

	for (auto &kv : e->conns)
		all.push_back(kv.second);
	for (Conn *c : all)
		conn_drop(c);
	// Requests still at the storage peer stay there (recycled when the port
	// is left); their commands are freed now, without them.
	for (size_t i = 0; i < e->slot.size(); i++) {
		Cmd *cmd = e->slot[i];
		xseg_request *req = xs_of(e) ? xseg_request_at(xs_of(e), (uint32_t)i) : nullptr;

		if (!cmd)
			continue;
		e->slot[i] = nullptr;
		if (cmd == ORPHAN)
			continue;
		for (xseg_request *&r : cmd->reqs)
			if (r == req)
				r = nullptr;
		cmd->pending--;
		if (cmd_ready(cmd))
			cmd_finish(cmd);
	}
	warm_release(e);
	sockets_close(e);
	for (Event &ev : e->events)
		if (ev.fd >= 0)
			close(ev.fd);	// an accepted connection TypeScript never got
	e->events.clear();
	if (e->announced && xs_of(e))
		xseg_cancel_wait(xs_of(e), e->port);
	e->announced = false;
	if (e->poll_open)
		uv_close((uv_handle_t *)&e->poll, on_port_closed);
	if (e->timer_open)
		uv_close((uv_handle_t *)&e->timer, on_port_closed);
	if (e->prep_open)
		uv_close((uv_handle_t *)&e->prep, on_port_closed);
	if (e->check_open)
		uv_close((uv_handle_t *)&e->check, on_port_closed);
	if (e->fn_ref) {
		if (!e->finalized)
			napi_delete_reference(e->env, e->fn_ref);
		e->fn_ref = nullptr;
	}
	if (e->seg_ref) {
		if (!e->finalized)
			napi_delete_reference(e->env, e->seg_ref);
		e->seg_ref = nullptr;
	}
	e->seg = nullptr;
}

void engine_finalize(napi_env env, void *data, void *hint)
{
	Engine *e = (Engine *)data;

	(void)env;
	(void)hint;
	e->finalized = true;
	if (!e->closed) {
		// The environment goes away: no JavaScript, no references to delete.
		e->fn_ref = nullptr;
		e->seg_ref = nullptr;
		engine_close(e);
	}
	maybe_free_engine(e);
}

const napi_type_tag ENGINE_TAG = { 0x6e62646661737431ull, 0x78736567656e6731ull };

Engine *engine_of(const Napi::CallbackInfo &info, const char *fn)
{
	napi_value v = info[0];
	bool ok = false;
	void *p = nullptr;

	if (info.Length() < 1 || napi_check_object_type_tag(info.Env(), v, &ENGINE_TAG, &ok) != napi_ok || !ok ||
	    napi_get_value_external(info.Env(), v, &p) != napi_ok || !p) {
		throw_errno(info.Env(), -EINVAL, fn, "argument 1 must be an NBD engine");
		return nullptr;
	}
	Engine *e = (Engine *)p;
	if (e->closed || !xs_of(e)) {
		throw_errno(info.Env(), -EBADF, fn, "the NBD engine is closed");
		return nullptr;
	}
	return e;
}

// ----------------------------------------------------------- the functions

// nbd_engine(handle, port, storagePort, maxBuf, maxRequest, maxInflight,
// spinUs, fn, timeoutMs, connBytes, totalBytes, connRequests, totalRequests)
// -> engine. @port must be bound by @handle (role client); the engine polls
// its FIFO from now on, so no TypeScript Port may watch it. timeoutMs 0: no
// request timeout; the caps as in docs/nbd.md (conn_over, get_req).
Napi::Value nbd_engine(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t port, storage, max_inflight, spin_us, timeout_ms, conn_reqs, total_reqs;
	uint64_t max_buf, max_request, conn_bytes, total_bytes;
	uv_loop_t *loop;
	int fd;

	if (!arg_seg(info, 0, "nbd_engine", &s) || !arg_u32(info, 1, "nbd_engine", &port) ||
	    !arg_u32(info, 2, "nbd_engine", &storage) || !arg_u64(info, 3, "nbd_engine", &max_buf) ||
	    !arg_u64(info, 4, "nbd_engine", &max_request) || !arg_u32(info, 5, "nbd_engine", &max_inflight) ||
	    !arg_u32(info, 6, "nbd_engine", &spin_us) || !arg_u32(info, 8, "nbd_engine", &timeout_ms) ||
	    !arg_u64(info, 9, "nbd_engine", &conn_bytes) || !arg_u64(info, 10, "nbd_engine", &total_bytes) ||
	    !arg_u32(info, 11, "nbd_engine", &conn_reqs) || !arg_u32(info, 12, "nbd_engine", &total_reqs))
		return env.Undefined();
	if (!info[7].IsFunction() || !max_buf || !max_inflight || !conn_bytes || !total_bytes || !conn_reqs ||
	    !total_reqs) {
		throw_errno(env, -EINVAL, "nbd_engine", "bad arguments");
		return env.Undefined();
	}
	if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
		throw_errno(env, -EINVAL, "nbd_engine", "no event loop");
		return env.Undefined();
	}
	fd = xseg_poll_fd(s->xs, port);
	if (fd < 0) {
		throw_errno(env, fd, "nbd_engine", "the port cannot be polled (bound here, posixfd?)");
		return env.Undefined();
	}
	Engine *e = new Engine();
	e->env = env;
	e->seg = s;
	e->port = port;
	e->storage = storage;
	e->max_buf = max_buf;
	e->max_request = max_request;
	e->max_inflight = max_inflight;
	e->spin_ns = (uint64_t)spin_us * 1000;
	e->timeout_ms = timeout_ms;
	e->conn_bytes = conn_bytes;
	e->total_bytes = total_bytes;
	e->conn_reqs = conn_reqs;
	e->total_reqs = total_reqs;
	// Warm buffers: enough for a few commands in flight, a sixteenth of what the engine may hold.
	e->warm_max = total_reqs / 16 < WARM_MAX ? total_reqs / 16 : WARM_MAX;
	e->fifo = fd;
	e->loop = loop;
	e->slot.assign(xseg_max_requests(s->xs), nullptr);	// by request index (growth included)
	e->slot_ms.assign(xseg_max_requests(s->xs), 0);
	napi_create_reference(env, info[0], 1, &e->seg_ref);
	napi_create_reference(env, info[7], 1, &e->fn_ref);
	// Not XSEG_FD_ALWAYS: the loop announces when it sleeps (on_prepare/on_check).
	xseg_posixfd_set_always(s->xs, port, 0);
	if (uv_poll_init(loop, &e->poll, fd) == 0) {
		e->poll.data = e;
		e->poll_open = true;
		e->handles++;
		uv_poll_start(&e->poll, UV_READABLE, on_port_poll);
		uv_unref((uv_handle_t *)&e->poll);	// the sockets keep the loop alive
	}
	if (uv_timer_init(loop, &e->timer) == 0) {
		// Looks for timed-out requests a few times per timeout (at most once a second).
		// Also gives the warm requests back after a tick without use (at most a second).
		uint64_t tick = timeout_ms ? timeout_ms / 4 : 1000;

		tick = tick < 5 ? 5 : tick > 1000 ? 1000 : tick;
		e->timer.data = e;
		e->timer_open = true;
		e->handles++;
		uv_timer_start(&e->timer, on_timer, tick, tick);
		uv_unref((uv_handle_t *)&e->timer);
	}
	if (uv_prepare_init(loop, &e->prep) == 0) {
		e->prep.data = e;
		e->prep_open = true;
		e->handles++;
		uv_prepare_start(&e->prep, on_prepare);
		uv_unref((uv_handle_t *)&e->prep);
	}
	if (uv_check_init(loop, &e->check) == 0) {
		e->check.data = e;
		e->check_open = true;
		e->handles++;
		uv_check_start(&e->check, on_check);
		uv_unref((uv_handle_t *)&e->check);
	}
	if (!e->poll_open || !e->timer_open || !e->prep_open || !e->check_open) {
		napi_value ext;

		// Cannot wait for replies: give up (the closes free it).
		napi_create_external(env, e, engine_finalize, nullptr, &ext);
		engine_close(e);
		throw_errno(env, -ENOMEM, "nbd_engine", "cannot start the engine's libuv handles");
		return env.Undefined();
	}
	napi_value ext;
	napi_create_external(env, e, engine_finalize, nullptr, &ext);
	napi_type_tag_object(env, ext, &ENGINE_TAG);
	return Napi::Value(env, ext);
}

// nbd_conn(engine, id, target, size, readonly, initial?, structured?, metaId?) -> undefined.
// Serves connection @id (accepted here, its handshake done: TypeScript
// stopped reading its dup and closes it) from now on; @initial holds the
// bytes TypeScript received after the handshake; @structured: the client
// negotiated structured replies; @metaId: the context id of base:allocation
// if the client selected it (BLOCK_STATUS is then allowed).
Napi::Value nbd_conn(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_conn");
	uint32_t id;
	uint64_t size;
	uv_loop_t *loop;

	if (!e || !arg_u32(info, 1, "nbd_conn", &id) || !arg_u64(info, 3, "nbd_conn", &size))
		return env.Undefined();
	if (!info[2].IsString() || e->conns.count(id) || !e->pending.count(id)) {
		throw_errno(env, -EINVAL, "nbd_conn", "bad target, or no connection in its handshake with this id");
		return env.Undefined();
	}
	std::string target = info[2].As<Napi::String>().Utf8Value();
	if (target.size() > XSEG_TARGET_MAX) {
		throw_errno(env, -ENAMETOOLONG, "nbd_conn", "the target is too long");
		return env.Undefined();
	}
	int dfd = pending_take(e, id);
	napi_get_uv_event_loop(env, &loop);
	Conn *c = new Conn();
	c->e = e;
	c->id = id;
	c->fd = dfd;
	c->target = target;
	c->size = size;
	c->readonly = info[4].ToBoolean().Value();
	c->structured = info.Length() > 6 && info[6].ToBoolean().Value();
	c->meta = c->structured && info.Length() > 7 && info[7].IsNumber();
	c->meta_id = c->meta ? info[7].As<Napi::Number>().Uint32Value() : 0;
	size_t initial = 0;
	if (info.Length() > 5 && info[5].IsBuffer())
		initial = info[5].As<Napi::Buffer<uint8_t>>().Length();
	c->rbuf.resize(initial > RBUF ? initial : RBUF);
	if (initial) {
		memcpy(c->rbuf.data(), info[5].As<Napi::Buffer<uint8_t>>().Data(), initial);
		c->rlen = initial;
	}
	if (uv_poll_init(loop, &c->poll, dfd) != 0) {
		close(dfd);
		delete c;
		throw_errno(env, -EIO, "nbd_conn", "uv_poll_init");
		return env.Undefined();
	}
	c->poll.data = c;
	c->poll_open = true;
	e->handles++;
	e->conns[id] = c;	// its poll keeps the loop alive, as a Node socket does
	bool prev = e->in_js_call;
	e->in_js_call = true;
	conn_input(c);
	if (!c->dead)
		conn_update_poll(c);
	engine_after(e);
	e->in_js_call = prev;
	return env.Undefined();
}

Conn *conn_arg(const Napi::CallbackInfo &info, Engine *e, const char *fn)
{
	uint32_t id;

	if (!arg_u32(info, 1, fn, &id))
		return nullptr;
	auto it = e->conns.find(id);
	return it == e->conns.end() ? nullptr : it->second;
}

// nbd_conn_shutdown(engine, id): new commands get ESHUTDOWN; 'end' once every reply is out.
Napi::Value nbd_conn_shutdown(const Napi::CallbackInfo &info)
{
	Engine *e = engine_of(info, "nbd_conn_shutdown");
	Conn *c = e ? conn_arg(info, e, "nbd_conn_shutdown") : nullptr;

	if (c) {
		bool prev = e->in_js_call;

		c->closing = true;
		e->in_js_call = true;
		conn_maybe_end(c);
		engine_after(e);
		e->in_js_call = prev;
	}
	return info.Env().Undefined();
}

// nbd_conn_close(engine, id): close connection @id now, without events: in
// its handshake, served, or lingering.
Napi::Value nbd_conn_close(const Napi::CallbackInfo &info)
{
	if (info.Length() < 1)
		return info.Env().Undefined();
	bool ok = false;
	void *p = nullptr;
	if (napi_check_object_type_tag(info.Env(), info[0], &ENGINE_TAG, &ok) != napi_ok || !ok ||
	    napi_get_value_external(info.Env(), info[0], &p) != napi_ok || !p)
		return info.Env().Undefined();
	Engine *e = (Engine *)p;
	if (e->closed)
		return info.Env().Undefined();
	Conn *c = conn_arg(info, e, "nbd_conn_close");
	if (c)
		conn_drop(c);
	else if (info.Length() > 1 && info[1].IsNumber()) {
		uint32_t id = info[1].As<Napi::Number>().Uint32Value();

		if (!pending_close(e, id))
			linger_stop(e, id);
	}
	return info.Env().Undefined();
}

// nbd_stats(engine) -> { commands, errors, bytesRead, bytesWritten, inflight, replies,
// timeouts, late, orphans, held, committed, copied, writeCopied, warm, warmHits, warmMisses, deferrals }
Napi::Value nbd_stats(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_stats");

	if (!e)
		return env.Undefined();
	Napi::Object o = Napi::Object::New(env);
	o.Set("commands", Napi::Number::New(env, (double)e->commands));
	o.Set("errors", Napi::Number::New(env, (double)e->errors));
	o.Set("bytesRead", Napi::Number::New(env, (double)e->bytes_read));
	o.Set("bytesWritten", Napi::Number::New(env, (double)e->bytes_written));
	o.Set("inflight", Napi::Number::New(env, (double)e->xinflight));
	o.Set("deferrals", Napi::Number::New(env, (double)e->deferrals));
	o.Set("replies", Napi::Number::New(env, (double)e->replies));
	o.Set("timeouts", Napi::Number::New(env, (double)e->timeouts));
	o.Set("late", Napi::Number::New(env, (double)e->late));
	o.Set("orphans", Napi::Number::New(env, (double)e->orphans));
	o.Set("held", Napi::Number::New(env, (double)e->held));
	o.Set("committed", Napi::Number::New(env, (double)e->committed));
	o.Set("copied", Napi::Number::New(env, (double)e->copied));
	o.Set("writeCopied", Napi::Number::New(env, (double)e->write_copied));
	o.Set("warm", Napi::Number::New(env, (double)e->warm.size()));
	o.Set("warmHits", Napi::Number::New(env, (double)e->warm_hits));
	o.Set("warmMisses", Napi::Number::New(env, (double)e->warm_misses));
	return o;
}

// nbd_engine_close(engine): drop every connection and stop polling the port
// (before the port is left). A closed engine's functions throw EBADF.
Napi::Value nbd_engine_close(const Napi::CallbackInfo &info)
{
	bool ok = false;
	void *p = nullptr;

	if (info.Length() >= 1 && napi_check_object_type_tag(info.Env(), info[0], &ENGINE_TAG, &ok) == napi_ok && ok &&
	    napi_get_value_external(info.Env(), info[0], &p) == napi_ok && p)
		engine_close((Engine *)p);
	return info.Env().Undefined();
}

}  // namespace nbd

void init_nbd_engine(Napi::Env env, Napi::Object exports)
{
	exports.Set("nbd_engine", Napi::Function::New(env, nbd::nbd_engine, "nbd_engine"));
	exports.Set("nbd_conn", Napi::Function::New(env, nbd::nbd_conn, "nbd_conn"));
	exports.Set("nbd_conn_shutdown", Napi::Function::New(env, nbd::nbd_conn_shutdown, "nbd_conn_shutdown"));
	exports.Set("nbd_conn_close", Napi::Function::New(env, nbd::nbd_conn_close, "nbd_conn_close"));
	exports.Set("nbd_conn_pair", Napi::Function::New(env, nbd::nbd_conn_pair, "nbd_conn_pair"));
	exports.Set("nbd_stats", Napi::Function::New(env, nbd::nbd_stats, "nbd_stats"));
	exports.Set("nbd_listen_unix", Napi::Function::New(env, nbd::nbd_listen_unix, "nbd_listen_unix"));
	exports.Set("nbd_listen_tcp", Napi::Function::New(env, nbd::nbd_listen_tcp, "nbd_listen_tcp"));
	exports.Set("nbd_listen_close", Napi::Function::New(env, nbd::nbd_listen_close, "nbd_listen_close"));
	exports.Set("nbd_engine_close", Napi::Function::New(env, nbd::nbd_engine_close, "nbd_engine_close"));
	exports.Set("nbd_ctl", Napi::Function::New(env, nbd::nbd_ctl, "nbd_ctl"));
}

}  // namespace xnode
