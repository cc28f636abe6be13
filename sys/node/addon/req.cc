// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/req.cc - req_*: the request life cycle, by request index.
//
//   client: req_get -> req_prep -> req_set_io -> req_submit (+ signal)
//   server:              req_accept -> serve -> req_respond | req_fail | req_forward (+ signal)
//   client: req_receive -> read the fields and the data -> req_put
//
// Expected conditions are values: req_get/req_accept/req_receive return -1
// when there is nothing (EAGAIN), req_submit returns -EAGAIN when the
// destination's queue is full. Everything else throws.
#include <errno.h>
#include <string.h>
#include "addon.h"
#include "fields.h"

namespace xnode {

static bool signal_arg(const Napi::CallbackInfo &info, size_t i)
{
	return info.Length() <= i || info[i].IsUndefined() || info[i].ToBoolean().Value();
}

// req_get(handle, src) -> a free request's index (prepared, held by client
// port @src), or -1 when none is free.
static Napi::Value req_get(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t src;

	if (!arg_seg(info, 0, "req_get", &s) || !arg_u32(info, 1, "req_get", &src))
		return info.Env().Undefined();
	struct xseg_request *req = xseg_get_request(s->xs, src);
	if (!req) {
		if (errno == EAGAIN)
			return Napi::Number::New(info.Env(), -1);
		throw_errno(info.Env(), -errno, "req_get");
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), xseg_request_index(s->xs, req));
}

// A target argument (info[@i]): a string (UTF-8) or a Buffer, at most
// XSEG_TARGET_MAX bytes; undefined or null is an empty one when @optional.
// Points *@t at @tbuf (a string, copied) or at the Buffer's bytes. false
// (thrown) on a bad one.
static bool arg_target(const Napi::CallbackInfo &info, size_t i, const char *what, bool optional,
		       char (&tbuf)[XSEG_TARGET_MAX + 1], const char **t, size_t *tlen)
{
	*t = tbuf;
	*tlen = 0;
	if (info[i].IsString()) {
		size_t full = 0;

		if (napi_get_value_string_utf8(info.Env(), info[i], nullptr, 0, &full) != napi_ok ||
		    full > XSEG_TARGET_MAX) {
			throw_errno(info.Env(), -ENAMETOOLONG, what, "the target is longer than 256 bytes");
			return false;
		}
		napi_get_value_string_utf8(info.Env(), info[i], tbuf, XSEG_TARGET_MAX + 1, tlen);
	} else if (info[i].IsBuffer()) {
		Napi::Buffer<char> b = info[i].As<Napi::Buffer<char>>();

		*t = b.Data();
		*tlen = b.Length();
	} else if (!optional || (!info[i].IsUndefined() && !info[i].IsNull())) {
		throw_errno(info.Env(), -EINVAL, what, "the target must be a string or a Buffer");
		return false;
	}
	if (*tlen > XSEG_TARGET_MAX) {
		throw_errno(info.Env(), -ENAMETOOLONG, what, "the target is longer than 256 bytes");
		return false;
	}
	return true;
}

// req_prep(handle, idx, target, datalen) -> undefined: set the target (a
// string, UTF-8, or a Buffer; at most 256 bytes) and give the request a data
// buffer of @datalen bytes. Throws E2BIG (no buffer class that large),
// ENOBUFS (all in use), ENAMETOOLONG, EPERM (not ours to prepare).
static Napi::Value req_prep(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;
	uint64_t datalen;
	char tbuf[XSEG_TARGET_MAX + 1];
	const char *t = tbuf;
	size_t tlen = 0;

	if (!arg_seg(info, 0, "req_prep", &s) || !arg_req(info, s, 1, "req_prep", &req) ||
	    !arg_u64(info, 3, "req_prep", &datalen))
		return info.Env().Undefined();
	if (!arg_target(info, 2, "req_prep", true, tbuf, &t, &tlen))
		return info.Env().Undefined();
	int r = xseg_prep_request(s->xs, req, t, (uint32_t)tlen, datalen);
	if (r < 0)
		throw_errno(info.Env(), r, "req_prep");
	return info.Env().Undefined();
}

// req_set_io(handle, idx, op, flags, offset, size) -> undefined: the four
// fields a client sets before submit, in one call.
static Napi::Value req_set_io(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;
	uint32_t op, flags;
	uint64_t offset, size;

	if (!arg_seg(info, 0, "req_set_io", &s) || !arg_req(info, s, 1, "req_set_io", &req) ||
	    !arg_u32(info, 2, "req_set_io", &op) || !arg_u32(info, 3, "req_set_io", &flags) ||
	    !arg_u64(info, 4, "req_set_io", &offset) || !arg_u64(info, 5, "req_set_io", &size))
		return info.Env().Undefined();
	req->op = op;
	req->flags = flags;
	req->offset = offset;
	req->size = size;
	return info.Env().Undefined();
}

// req_field(handle, idx, field) -> the field's value: a number, or a bigint
// for offset, serial, cookie and the timestamps (64-bit values). Read from
// shared memory: the holder's view while it holds the request.
static Napi::Value req_field(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	struct xseg_request *req;
	uint32_t f;

	if (!arg_seg(info, 0, "req_field", &s) || !arg_req(info, s, 1, "req_field", &req) ||
	    !arg_u32(info, 2, "req_field", &f))
		return env.Undefined();
	switch (f) {
	case F_OP: return Napi::Number::New(env, req->op);
	case F_FLAGS: return Napi::Number::New(env, req->flags);
	case F_STATE: return Napi::Number::New(env, xseg__req_state(req));
	case F_ERROR: return Napi::Number::New(env, req->error);
	case F_OFFSET: return Napi::BigInt::New(env, (uint64_t)req->offset);
	case F_SIZE: return Napi::Number::New(env, (double)req->size);
	case F_SERVICED: return Napi::Number::New(env, (double)req->serviced);
	case F_DATA_LEN: return Napi::Number::New(env, (double)req->data_len);
	case F_SRC: return Napi::Number::New(env, req->src_port);
	case F_DST: return Napi::Number::New(env, req->dst_port);
	case F_EFFECTIVE_DST: return Napi::Number::New(env, req->effective_dst);
	case F_SERIAL: return Napi::BigInt::New(env, (uint64_t)req->serial);
	case F_COOKIE: return Napi::BigInt::New(env, (uint64_t)req->cookie);
	case F_TARGET_LEN: return Napi::Number::New(env, req->target_len);
	case F_TS_SUBMIT: return Napi::BigInt::New(env, (uint64_t)req->ts_submit);
	case F_TS_ACCEPT: return Napi::BigInt::New(env, (uint64_t)req->ts_accept);
	case F_TS_RESPOND: return Napi::BigInt::New(env, (uint64_t)req->ts_respond);
	case F_PATH_LEN: return Napi::Number::New(env, req->path_len);
	default:
		throw_errno(env, -EINVAL, "req_field", "no such field");
		return env.Undefined();
	}
}

// req_set_field(handle, idx, field, value) -> undefined. Settable: op,
// flags, error, offset, size, serviced, cookie, and state's XS_SERVED and
// XS_FAILED bits (the life-cycle bits are the core's).
static Napi::Value req_set_field(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	struct xseg_request *req;
	uint32_t f;
	uint64_t v;

	if (!arg_seg(info, 0, "req_set_field", &s) || !arg_req(info, s, 1, "req_set_field", &req) ||
	    !arg_u32(info, 2, "req_set_field", &f) || !arg_u64(info, 3, "req_set_field", &v))
		return env.Undefined();
	switch (f) {
	case F_OP: case F_FLAGS: case F_ERROR: case F_STATE:
		if (v > UINT32_MAX || (f == F_ERROR && v > INT32_MAX)) {
			throw_errno(env, -EINVAL, "req_set_field", "the value must fit 32 bits");
			return env.Undefined();
		}
		break;
	}
	switch (f) {
	case F_OP: req->op = (uint32_t)v; break;
	case F_FLAGS: req->flags = (uint32_t)v; break;
	case F_ERROR: req->error = (int32_t)v; break;
	case F_OFFSET: req->offset = v; break;
	case F_SIZE: req->size = v; break;
	case F_SERVICED: req->serviced = v; break;
	case F_COOKIE: req->cookie = v; break;
	case F_STATE: {
		uint32_t bits = (uint32_t)v & (XS_SERVED | XS_FAILED);

		xseg__req_result(req, bits);
		break;
	}
	default:
		throw_errno(env, -EINVAL, "req_set_field", "the field cannot be set");
	}
	return env.Undefined();
}

// req_target(handle, idx) -> the target name as a string (UTF-8).
static Napi::Value req_target(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;

	if (!arg_seg(info, 0, "req_target", &s) || !arg_req(info, s, 1, "req_target", &req))
		return info.Env().Undefined();
	uint32_t n = xa_load_rlx32(&req->target_len);
	const char *t = xseg_req_target(s->xs, req);
	if (!t || n > XSEG_TARGET_MAX)
		n = 0;
	return Napi::String::New(info.Env(), t ? t : "", n);
}

// req_data(handle, idx) -> the byte offset of the request's data buffer in
// the segment (see seg_buffer), or -1 if it has none. Its length is the
// data_len field; a view is Buffer.from(seg_buffer(h), offset, data_len).
static Napi::Value req_data(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;

	if (!arg_seg(info, 0, "req_data", &s) || !arg_req(info, s, 1, "req_data", &req))
		return info.Env().Undefined();
	char *d = static_cast<char *>(xseg_req_data(s->xs, req));
	if (!d)
		return Napi::Number::New(info.Env(), -1);
	return Napi::Number::New(info.Env(), (double)(d - static_cast<char *>(xseg_base(s->xs))));
}

// req_submit(handle, idx, dst, signal = true) -> the port the request was
// queued to (>= 0: @dst or the port its redirect named at that moment, read
// once inside xseg_submit), or -EAGAIN when that port's queue is full.
// Signals that port unless @signal is false; then the caller signals the
// returned port, never @dst. Throws ENOENT (nobody bound it), EPERM (not
// ours), EINVAL.
static Napi::Value req_submit(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;
	uint32_t dst;

	if (!arg_seg(info, 0, "req_submit", &s) || !arg_req(info, s, 1, "req_submit", &req) ||
	    !arg_u32(info, 2, "req_submit", &dst))
		return info.Env().Undefined();
	int r = signal_arg(info, 3) ? xseg_submit_signal(s->xs, req, dst) : xseg_submit(s->xs, req, dst);
	if (r == -EAGAIN)
		return Napi::Number::New(info.Env(), r);
	if (r < 0) {
		throw_errno(info.Env(), r, "req_submit");
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), r);
}

// Take requests from a port's queue: one (-> index or -1) or a batch into
// an Int32Array (-> how many).
typedef struct xseg_request *(*take_fn)(struct xseg *, uint32_t);

static Napi::Value take_one(const Napi::CallbackInfo &info, take_fn take, const char *fn)
{
	Seg *s;
	uint32_t port;

	if (!arg_seg(info, 0, fn, &s) || !arg_u32(info, 1, fn, &port))
		return info.Env().Undefined();
	struct xseg_request *req = take(s->xs, port);
	if (!req) {
		if (errno == EAGAIN)
			return Napi::Number::New(info.Env(), -1);
		throw_errno(info.Env(), -errno, fn);
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), xseg_request_index(s->xs, req));
}

static Napi::Value take_batch(const Napi::CallbackInfo &info, take_fn take, const char *fn)
{
	Seg *s;
	uint32_t port, n = 0;

	if (!arg_seg(info, 0, fn, &s) || !arg_u32(info, 1, fn, &port))
		return info.Env().Undefined();
	if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
		throw_errno(info.Env(), -EINVAL, fn, "argument 3 must be an Int32Array");
		return info.Env().Undefined();
	}
	Napi::Int32Array out = info[2].As<Napi::Int32Array>();
	size_t cap = out.ElementLength();
	int32_t *v = out.Data();
	while (n < cap) {
		struct xseg_request *req = take(s->xs, port);

		if (!req) {
			if (errno != EAGAIN && n == 0) {
				throw_errno(info.Env(), -errno, fn);
				return info.Env().Undefined();
			}
			break;
		}
		v[n++] = xseg_request_index(s->xs, req);
	}
	return Napi::Number::New(info.Env(), n);
}

// req_accept(handle, port) -> the oldest request queued to @port, or -1.
static Napi::Value req_accept(const Napi::CallbackInfo &info)
{
	return take_one(info, xseg_accept, "req_accept");
}

// req_accept_batch(handle, port, Int32Array) -> how many indices were written.
static Napi::Value req_accept_batch(const Napi::CallbackInfo &info)
{
	return take_batch(info, xseg_accept, "req_accept_batch");
}

// req_receive(handle, port) -> the oldest reply queued to client @port, or -1.
static Napi::Value req_receive(const Napi::CallbackInfo &info)
{
	return take_one(info, xseg_receive, "req_receive");
}

// req_receive_batch(handle, port, Int32Array) -> how many indices were written.
static Napi::Value req_receive_batch(const Napi::CallbackInfo &info)
{
	return take_batch(info, xseg_receive, "req_receive_batch");
}

// req_respond(handle, idx, signal = true) -> the port the reply went to.
// Marks the request served (XS_SERVED) and sends it back along its return
// path, then signals that port unless @signal is false.
static Napi::Value req_respond(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;

	if (!arg_seg(info, 0, "req_respond", &s) || !arg_req(info, s, 1, "req_respond", &req))
		return info.Env().Undefined();
	uint32_t st = xseg__req_state(req);
	if (!(st & (XS_SERVED | XS_FAILED)))
		xa_or_acqrel32(&req->state, XS_SERVED);
	int r = xseg_respond(s->xs, req);
	if (r < 0) {
		throw_errno(info.Env(), r, "req_respond");
		return info.Env().Undefined();
	}
	if (signal_arg(info, 2))
		xseg_signal(s->xs, (uint32_t)r);
	return Napi::Number::New(info.Env(), r);
}

// req_fail(handle, idx, errno, signal = true) -> the port the reply went to.
// @errno is positive (EIO if 0).
static Napi::Value req_fail(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;
	uint32_t e;

	if (!arg_seg(info, 0, "req_fail", &s) || !arg_req(info, s, 1, "req_fail", &req) ||
	    !arg_u32(info, 2, "req_fail", &e))
		return info.Env().Undefined();
	int r = xseg_fail(s->xs, req, e > 0 && e < 4096 ? (int)e : EIO);
	if (r < 0) {
		throw_errno(info.Env(), r, "req_fail");
		return info.Env().Undefined();
	}
	if (signal_arg(info, 3))
		xseg_signal(s->xs, (uint32_t)r);
	return Napi::Number::New(info.Env(), r);
}

// Send an accepted request on from @via to @dst with @move (xseg_forward or
// xseg_pass); signal @dst unless told not to. -EAGAIN is returned, other
// errors thrown.
typedef int (*move_fn)(struct xseg *, struct xseg_request *, uint32_t, uint32_t);
static Napi::Value req_move(const Napi::CallbackInfo &info, const char *what, move_fn move)
{
	Seg *s;
	struct xseg_request *req;
	uint32_t via, dst;

	if (!arg_seg(info, 0, what, &s) || !arg_req(info, s, 1, what, &req) ||
	    !arg_u32(info, 2, what, &via) || !arg_u32(info, 3, what, &dst))
		return info.Env().Undefined();
	int r = move(s->xs, req, via, dst);
	if (r == -EAGAIN)
		return Napi::Number::New(info.Env(), r);
	if (r < 0) {
		throw_errno(info.Env(), r, what);
		return info.Env().Undefined();
	}
	if (signal_arg(info, 4))
		xseg_signal(s->xs, (uint32_t)r);
	return Napi::Number::New(info.Env(), r);
}

// req_forward(handle, idx, via, dst, signal = true) -> the port it went to.
// Passes an accepted request on; its reply comes back to @via first.
static Napi::Value req_forward(const Napi::CallbackInfo &info)
{
	return req_move(info, "req_forward", xseg_forward);
}

// req_pass(handle, idx, via, dst, signal = true) -> the port it went to.
// Passes an accepted request on with no return hop: @dst's reply goes where
// @via's would have gone (xseg_pass); the request is not @via's any more.
static Napi::Value req_pass(const Napi::CallbackInfo &info)
{
	return req_move(info, "req_pass", xseg_pass);
}

// req_readdress(handle, idx, target, offset, flags) -> undefined: point an
// accepted request at @target (string or Buffer) and @offset for the next
// hop, the current ones kept in it and put back on the way past this hop
// (xseg_readdress).
static Napi::Value req_readdress(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;
	char tbuf[XSEG_TARGET_MAX + 1];
	const char *t = tbuf;
	size_t tlen = 0;
	uint64_t offset;
	uint32_t flags;

	if (!arg_seg(info, 0, "req_readdress", &s) || !arg_req(info, s, 1, "req_readdress", &req) ||
	    !arg_u64(info, 3, "req_readdress", &offset) || !arg_u32(info, 4, "req_readdress", &flags))
		return info.Env().Undefined();
	if (!arg_target(info, 2, "req_readdress", false, tbuf, &t, &tlen))
		return info.Env().Undefined();
	int r = xseg_readdress(s->xs, req, t, (uint32_t)tlen, offset, flags);
	if (r < 0)
		throw_errno(info.Env(), r, "req_readdress");
	return info.Env().Undefined();
}

// req_put(handle, idx) -> undefined: give a request (prepared or received)
// and its buffer back. Throws EPERM if this process does not hold it (a
// double release).
static Napi::Value req_put(const Napi::CallbackInfo &info)
{
	Seg *s;
	struct xseg_request *req;

	if (!arg_seg(info, 0, "req_put", &s) || !arg_req(info, s, 1, "req_put", &req))
		return info.Env().Undefined();
	int r = xseg_put_request(s->xs, req);
	if (r < 0)
		throw_errno(info.Env(), r, "req_put");
	return info.Env().Undefined();
}

void init_req(Napi::Env env, Napi::Object exports)
{
	exports.Set("req_get", Napi::Function::New(env, req_get, "req_get"));
	exports.Set("req_prep", Napi::Function::New(env, req_prep, "req_prep"));
	exports.Set("req_set_io", Napi::Function::New(env, req_set_io, "req_set_io"));
	exports.Set("req_field", Napi::Function::New(env, req_field, "req_field"));
	exports.Set("req_set_field", Napi::Function::New(env, req_set_field, "req_set_field"));
	exports.Set("req_target", Napi::Function::New(env, req_target, "req_target"));
	exports.Set("req_data", Napi::Function::New(env, req_data, "req_data"));
	exports.Set("req_submit", Napi::Function::New(env, req_submit, "req_submit"));
	exports.Set("req_accept", Napi::Function::New(env, req_accept, "req_accept"));
	exports.Set("req_accept_batch", Napi::Function::New(env, req_accept_batch, "req_accept_batch"));
	exports.Set("req_receive", Napi::Function::New(env, req_receive, "req_receive"));
	exports.Set("req_receive_batch", Napi::Function::New(env, req_receive_batch, "req_receive_batch"));
	exports.Set("req_respond", Napi::Function::New(env, req_respond, "req_respond"));
	exports.Set("req_fail", Napi::Function::New(env, req_fail, "req_fail"));
	exports.Set("req_forward", Napi::Function::New(env, req_forward, "req_forward"));
	exports.Set("req_pass", Napi::Function::New(env, req_pass, "req_pass"));
	exports.Set("req_readdress", Napi::Function::New(env, req_readdress, "req_readdress"));
	exports.Set("req_put", Napi::Function::New(env, req_put, "req_put"));
}

}  // namespace xnode
