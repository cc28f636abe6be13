// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/batch.cc - batch_*: many requests per call, over a table
// of rows that TypeScript reuses (sys/node/ts/batch.ts). One call crosses
// the JavaScript/native boundary for a whole batch, and the destination is
// signaled once per batch instead of once per request.
//
// A table is a Uint32Array of rows of BATCH_ROW words (fields.h: B_*):
//
//   word  0 index     the request's index (out of batch_get/receive/accept)
//         1 op        2 flags     3 state (XS_* bits, out)   4 error (errno)
//         5 size      6 data_len  7 serviced
//         8 offset lo 9 offset hi 10 cookie lo  11 cookie hi
//        12 data lo  13 data hi   (byte offset of the data in seg_buffer, out)
//        14 target   (batch_get: its index in the targets array)
//        15 port     (out: receive/accept the source port)
//
// Each function works on rows [first, first + n) of the table and returns
// how many rows it did, from `first` on, in order. Running out ("no free
// request", "no buffer", "queue full", "nothing queued") stops a batch and
// is a count, never an error. Any other error of the first row throws; of a
// later row it stops the batch there (the next call meets it on that row).
#include <errno.h>
#include <string.h>
#include "addon.h"
#include "fields.h"

namespace xnode {

// The rows [first, first + n) of argument @i, or NULL (thrown EINVAL).
static uint32_t *arg_rows(const Napi::CallbackInfo &info, size_t i, const char *fn,
			  uint32_t *first, uint32_t *n)
{
	if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
		throw_errno(info.Env(), -EINVAL, fn, "the rows must be a Uint32Array");
		return nullptr;
	}
	if (!arg_u32(info, i + 1, fn, first) || !arg_u32(info, i + 2, fn, n))
		return nullptr;
	Napi::Uint32Array a = info[i].As<Napi::Uint32Array>();
	size_t rows = a.ElementLength() / BATCH_ROW;
	if (*first > rows || *n > rows - *first) {
		throw_errno(info.Env(), -EINVAL, fn, "the rows reach past the end of the table");
		return nullptr;
	}
	return a.Data() + (size_t)*first * BATCH_ROW;
}

static uint64_t get64(const uint32_t *r, int w)
{
	return (uint64_t)r[w] | ((uint64_t)r[w + 1] << 32);
}

static void set64(uint32_t *r, int w, uint64_t v)
{
	r[w] = (uint32_t)v;
	r[w + 1] = (uint32_t)(v >> 32);
}

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

// Fill row @r from request @req (what a receiver or acceptor reads).
static void fill_row(struct xseg *xs, uint32_t *r, struct xseg_request *req)
{
	char *d = static_cast<char *>(xseg_req_data(xs, req));

	r[B_INDEX] = (uint32_t)xseg_request_index(xs, req);
	r[B_OP] = req->op;
	r[B_FLAGS] = req->flags;
	r[B_STATE] = xseg__req_state(req);
	r[B_ERROR] = (uint32_t)req->error;
	r[B_SIZE] = clamp32(req->size);
	r[B_DATA_LEN] = clamp32(req->data_len);
	r[B_SERVICED] = clamp32(req->serviced);
	set64(r, B_OFFSET, req->offset);
	set64(r, B_COOKIE, req->cookie);
	set64(r, B_DATA, d ? (uint64_t)(d - static_cast<char *>(xseg_base(xs))) : UINT64_MAX);
	r[B_TARGET] = 0;
	r[B_PORT] = req->src_port;
}

// One target of the targets array, as bytes in @buf (at most 256).
static bool target_of(const Napi::CallbackInfo &info, Napi::Array targets, uint32_t t,
		      char *buf, const char **p, size_t *len)
{
	if (t >= targets.Length()) {
		throw_errno(info.Env(), -EINVAL, "batch_get", "a row names a target the array does not have");
		return false;
	}
	Napi::Value v = targets[t];
	if (v.IsString()) {
		size_t full = 0;

		if (napi_get_value_string_utf8(info.Env(), v, nullptr, 0, &full) != napi_ok ||
		    full > XSEG_TARGET_MAX) {
			throw_errno(info.Env(), -ENAMETOOLONG, "batch_get", "the target is longer than 256 bytes");
			return false;
		}
		napi_get_value_string_utf8(info.Env(), v, buf, XSEG_TARGET_MAX + 1, len);
		*p = buf;
		return true;
	}
	if (v.IsBuffer()) {
		Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
		if (b.Length() > XSEG_TARGET_MAX) {
			throw_errno(info.Env(), -ENAMETOOLONG, "batch_get", "the target is longer than 256 bytes");
			return false;
		}
		*p = b.Data();
		*len = b.Length();
		return true;
	}
	throw_errno(info.Env(), -EINVAL, "batch_get", "a target must be a string or a Buffer");
	return false;
}

// batch_get(handle, src, rows, first, n, targets) -> k: takes k free
// requests for client port @src and prepares each from its row (target,
// op, flags, offset, size, cookie, a data buffer of data_len bytes); writes
// index and data into the row. Stops early (k < n) when no request (EAGAIN)
// or no buffer (ENOBUFS) is free. Throws for the first row: E2BIG (no
// buffer class that large), ENAMETOOLONG, EINVAL (a target index the array
// lacks), EPERM. The requests are the caller's until batch_submit or
// batch_put.
static Napi::Value batch_get(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t src, first, n, k;
	uint32_t *rows;
	char tbuf[XSEG_TARGET_MAX + 1];
	const char *t = nullptr;
	size_t tlen = 0;
	uint32_t cached = UINT32_MAX;

	if (!arg_seg(info, 0, "batch_get", &s) || !arg_u32(info, 1, "batch_get", &src) ||
	    !(rows = arg_rows(info, 2, "batch_get", &first, &n)))
		return env.Undefined();
	if (!info[5].IsArray()) {
		throw_errno(env, -EINVAL, "batch_get", "the targets must be an array");
		return env.Undefined();
	}
	Napi::Array targets = info[5].As<Napi::Array>();
	for (k = 0; k < n; k++) {
		uint32_t *r = rows + (size_t)k * BATCH_ROW;

		// Rows of one batch usually share a target: convert it once.
		if (r[B_TARGET] != cached) {
			if (!target_of(info, targets, r[B_TARGET], tbuf, &t, &tlen)) {
				if (k == 0)
					return env.Undefined();
				env.GetAndClearPendingException();
				break;
			}
			cached = r[B_TARGET];
		}
		struct xseg_request *req = xseg_get_request(s->xs, src);
		if (!req) {
			if (errno == EAGAIN)
				break;
			if (k == 0) {
				throw_errno(env, -errno, "batch_get");
				return env.Undefined();
			}
			break;
		}
		int e = xseg_prep_request(s->xs, req, t, (uint32_t)tlen, r[B_DATA_LEN]);
		if (e < 0) {
			xseg_put_request(s->xs, req);
			if (e == -ENOBUFS)
				break;
			if (k == 0) {
				throw_errno(env, e, "batch_get");
				return env.Undefined();
			}
			break;
		}
		req->op = r[B_OP];
		req->flags = r[B_FLAGS];
		req->offset = get64(r, B_OFFSET);
		req->size = r[B_SIZE];
		req->cookie = get64(r, B_COOKIE);
		char *d = static_cast<char *>(xseg_req_data(s->xs, req));
		r[B_INDEX] = (uint32_t)xseg_request_index(s->xs, req);
		set64(r, B_DATA, d ? (uint64_t)(d - static_cast<char *>(xseg_base(s->xs))) : UINT64_MAX);
	}
	return Napi::Number::New(env, k);
}

// Signals each port in @ports[0..n) once.
static void signal_all(struct xseg *xs, const uint32_t *ports, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		xseg_signal(xs, ports[i]);
}

// Remembers port @p in @ports (at most @cap; a full list signals at once).
static void note_port(struct xseg *xs, uint32_t *ports, unsigned *n, unsigned cap, uint32_t p)
{
	for (unsigned i = 0; i < *n; i++)
		if (ports[i] == p)
			return;
	if (*n == cap) {
		signal_all(xs, ports, *n);
		*n = 0;
	}
	ports[(*n)++] = p;
}

enum { SIGNAL_SET = 16 };

// batch_submit(handle, dst, rows, first, n) -> k: submits the requests of
// the rows (from batch_get, prepared, the caller's) to port @dst, then
// signals each port they were queued to (@dst, or its redirect) once.
// Stops at a full queue (-EAGAIN). Throws for the first row: ENOENT
// (nobody bound @dst), EPERM (not the caller's), EINVAL.
static Napi::Value batch_submit(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t dst, first, n, k;
	uint32_t *rows;
	uint32_t ports[SIGNAL_SET];
	unsigned np = 0;
	int err = 0;

	if (!arg_seg(info, 0, "batch_submit", &s) || !arg_u32(info, 1, "batch_submit", &dst) ||
	    !(rows = arg_rows(info, 2, "batch_submit", &first, &n)))
		return env.Undefined();
	for (k = 0; k < n; k++) {
		struct xseg_request *req = xseg_request_at(s->xs, rows[(size_t)k * BATCH_ROW + B_INDEX]);
		int r;

		if (!req) {
			err = -EINVAL;
			break;
		}
		r = xseg_submit(s->xs, req, dst);
		if (r < 0) {
			if (r != -EAGAIN)
				err = r;
			break;
		}
		note_port(s->xs, ports, &np, SIGNAL_SET, (uint32_t)r);
	}
	signal_all(s->xs, ports, np);
	if (k == 0 && err) {
		throw_errno(env, err, "batch_submit", err == -EINVAL ? "no such request index" : nullptr);
		return env.Undefined();
	}
	return Napi::Number::New(env, k);
}

typedef struct xseg_request *(*take_fn)(struct xseg *, uint32_t);

static Napi::Value take_rows(const Napi::CallbackInfo &info, take_fn take, const char *fn, bool accepting)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t port, first, n, k;
	uint32_t *rows;

	if (!arg_seg(info, 0, fn, &s) || !arg_u32(info, 1, fn, &port) ||
	    !(rows = arg_rows(info, 2, fn, &first, &n)))
		return env.Undefined();
	for (k = 0; k < n; k++) {
		struct xseg_request *req = take(s->xs, port);

		if (!req) {
			if (errno != EAGAIN && k == 0) {
				throw_errno(env, -errno, fn);
				return env.Undefined();
			}
			break;
		}
		uint32_t *r = rows + (size_t)k * BATCH_ROW;

		fill_row(s->xs, r, req);
		if (accepting) {
			// The answer's words: served, nothing yet (batch_respond reads them).
			r[B_ERROR] = 0;
			r[B_SERVICED] = 0;
		}
	}
	return Napi::Number::New(env, k);
}

// batch_receive(handle, port, rows, first, n) -> k: takes up to @n replies
// queued to client port @port and fills a row for each (state, error,
// serviced, cookie...: the outcome of each request, row by row).
static Napi::Value batch_receive(const Napi::CallbackInfo &info)
{
	return take_rows(info, xseg_receive, "batch_receive", false);
}

// batch_accept(handle, port, rows, first, n) -> k: takes up to @n requests
// queued to server port @port and fills a row for each, its error and
// serviced words 0 (the answer batch_respond gives unless they are set).
static Napi::Value batch_accept(const Napi::CallbackInfo &info)
{
	return take_rows(info, xseg_accept, "batch_accept", true);
}

// batch_respond(handle, rows, first, n) -> k: answers the accepted requests
// of the rows: a row whose error word is non-zero fails with that errno
// (EIO if above 4095), any other is served with the row's serviced. Then
// signals each port the replies went to once. Throws for the first row
// (EPERM: not accepted here; EINVAL); a later failing row stops the batch.
static Napi::Value batch_respond(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t first, n, k;
	uint32_t *rows;
	uint32_t ports[SIGNAL_SET];
	unsigned np = 0;
	int err = 0;

	if (!arg_seg(info, 0, "batch_respond", &s) || !(rows = arg_rows(info, 1, "batch_respond", &first, &n)))
		return env.Undefined();
	for (k = 0; k < n; k++) {
		const uint32_t *r = rows + (size_t)k * BATCH_ROW;
		struct xseg_request *req = xseg_request_at(s->xs, r[B_INDEX]);
		int p;

		if (!req) {
			err = -EINVAL;
			break;
		}
		if (r[B_ERROR]) {
			p = xseg_fail(s->xs, req, r[B_ERROR] < 4096 ? (int)r[B_ERROR] : EIO);
		} else {
			uint32_t st = xseg__req_state(req);

			// Not accepted: leave its fields alone (xseg_respond would say EPERM).
			if (xseg__life(req) != XS_ACCEPTED) {
				err = -EPERM;
				break;
			}
			req->serviced = r[B_SERVICED];
			if (!(st & (XS_SERVED | XS_FAILED)))
				xa_or_acqrel32(&req->state, XS_SERVED);
			p = xseg_respond(s->xs, req);
		}
		if (p < 0) {
			err = p;
			break;
		}
		note_port(s->xs, ports, &np, SIGNAL_SET, (uint32_t)p);
	}
	signal_all(s->xs, ports, np);
	if (k == 0 && err) {
		throw_errno(env, err, "batch_respond");
		return env.Undefined();
	}
	return Napi::Number::New(env, k);
}

// batch_put(handle, rows, first, n) -> k: gives the requests of the rows
// (received or prepared, the caller's) and their buffers back. Puts every
// row it can; throws EPERM after the loop if one was not the caller's.
static Napi::Value batch_put(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	uint32_t first, n, k = 0;
	uint32_t *rows;
	int err = 0;

	if (!arg_seg(info, 0, "batch_put", &s) || !(rows = arg_rows(info, 1, "batch_put", &first, &n)))
		return env.Undefined();
	for (uint32_t i = 0; i < n; i++) {
		struct xseg_request *req = xseg_request_at(s->xs, rows[(size_t)i * BATCH_ROW + B_INDEX]);
		int r = req ? xseg_put_request(s->xs, req) : -EINVAL;

		if (r < 0)
			err = err ? err : r;
		else
			k++;
	}
	if (err) {
		throw_errno(env, err, "batch_put");
		return env.Undefined();
	}
	return Napi::Number::New(env, k);
}

void init_batch(Napi::Env env, Napi::Object exports)
{
	exports.Set("batch_get", Napi::Function::New(env, batch_get, "batch_get"));
	exports.Set("batch_submit", Napi::Function::New(env, batch_submit, "batch_submit"));
	exports.Set("batch_receive", Napi::Function::New(env, batch_receive, "batch_receive"));
	exports.Set("batch_accept", Napi::Function::New(env, batch_accept, "batch_accept"));
	exports.Set("batch_respond", Napi::Function::New(env, batch_respond, "batch_respond"));
	exports.Set("batch_put", Napi::Function::New(env, batch_put, "batch_put"));
}

}  // namespace xnode
