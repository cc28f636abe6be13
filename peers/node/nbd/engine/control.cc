// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/control.cc - requests of the gateway itself sent from
// the engine's port (not a connection's commands): OPEN, INFO and CLOSE of a
// volume (peers/node/nbd/volumes.ts). vlmcd takes the port that opened a
// volume as its holder, and the engine's port is the one whose READs and
// WRITEs it then serves, so the opens must come from it. A reply becomes a
// 'ctl' event: id, a text, and the errno in place of fd. The text is the
// failed reply's message, or (served) the hex of its first 64 data bytes.
#include "peers/node/nbd/engine/engine.h"

namespace xnode {
namespace nbd {

// The reply of control request index @idx, if it is one: an event, the request given back. True if it was.
bool ctl_reply(Engine *e, int idx, xseg_request *req)
{
	auto it = e->ctl.find((uint32_t)idx);

	if (it == e->ctl.end())
		return false;
	uint32_t id = it->second;
	e->ctl.erase(it);
	struct xseg *xs = xs_of(e);
	uint32_t state = __atomic_load_n(&req->state, __ATOMIC_ACQUIRE);
	int err = 0;
	std::string text;

	if (state & XS_FAILED)
		err = req->error > 0 && req->error < 4096 ? (int)req->error : EIO;
	else if (!(state & XS_SERVED))
		err = EIO;
	if (!err && req->serviced) {
		uint64_t cap = 0;
		const uint8_t *data = (const uint8_t *)xseg_req_buffer(xs, req, &cap);
		uint64_t n = req->serviced < cap ? req->serviced : cap;
		static const char hex[] = "0123456789abcdef";

		for (uint64_t i = 0; data && i < n && i < 64; i++) {
			text += hex[data[i] >> 4];
			text += hex[data[i] & 15];
		}
	} else if (err && req->serviced) {
		// The peer's message (volume.h): bounded by the buffer, one line.
		uint64_t cap = 0;
		char *data = (char *)xseg_req_buffer(xs, req, &cap);
		uint64_t n = req->serviced < cap ? req->serviced : cap;

		if (data && n) {
			if (n > 1024)
				n = 1024;
			text.assign(data, n);
			for (char &ch : text)
				if ((unsigned char)ch < 0x20)
					ch = ' ';
		}
	}
	xseg_put_request(xs, req);
	event(e, "ctl", id, text, err);
	return true;
}

// nbd_ctl(engine, op, target, text, size?) -> id. Sends request @op (a
// number) on @target with the text @text (NUL-terminated in a zeroed 4 KiB
// buffer; size: its length, or @size) from the engine's port to the storage
// port; its reply comes as the event ('ctl', id, text, errno). Throws
// EAGAIN when no request is free, ENOENT when nobody is bound to the
// storage port.
Napi::Value nbd_ctl(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_ctl");
	uint32_t op;

	if (!e)
		return env.Undefined();
	if (info.Length() < 4 || !info[1].IsNumber() || !info[2].IsString() || !info[3].IsString()) {
		throw_errno(env, -EINVAL, "nbd_ctl", "(engine, op, target, text)");
		return env.Undefined();
	}
	op = info[1].As<Napi::Number>().Uint32Value();
	std::string target = info[2].As<Napi::String>().Utf8Value();
	std::string text = info[3].As<Napi::String>().Utf8Value();
	const uint64_t cap = 4096;
	if (target.size() > XSEG_TARGET_MAX || text.size() + 1 > cap) {
		throw_errno(env, -EINVAL, "nbd_ctl", "the target or the text is too long");
		return env.Undefined();
	}
	struct xseg *xs = xs_of(e);
	xseg_request *req = xseg_get_request(xs, e->port);
	if (!req) {
		throw_errno(env, -EAGAIN, "nbd_ctl", "no free request in the segment");
		return env.Undefined();
	}
	int r = xseg_prep_request(xs, req, target.data(), (uint32_t)target.size(), cap);
	uint64_t have = 0;
	char *data = r < 0 ? nullptr : (char *)xseg_req_buffer(xs, req, &have);
	int idx = xseg_request_index(xs, req);
	if (r < 0 || !data || have < cap || idx < 0) {
		xseg_put_request(xs, req);
		throw_errno(env, r < 0 ? r : -ENOBUFS, "nbd_ctl", "no data buffer");
		return env.Undefined();
	}
	memset(data, 0, cap);
	memcpy(data, text.data(), text.size());
	req->op = op;
	req->flags = 0;
	req->offset = 0;
	req->size = info.Length() > 4 && info[4].IsNumber() ? std::min<uint64_t>(info[4].As<Napi::Number>().Uint32Value(), cap) : text.size();
	uint32_t id = ++e->next_ctl;
	e->ctl[(uint32_t)idx] = id;
	r = xseg_submit(xs, req, e->storage);
	if (r < 0) {
		e->ctl.erase((uint32_t)idx);
		xseg_put_request(xs, req);
		throw_errno(env, r, "nbd_ctl", "cannot submit to the storage port");
		return env.Undefined();
	}
	xseg_signal(xs, (uint32_t)r);
	return Napi::Number::New(env, id);
}

}  // namespace nbd
}  // namespace xnode
