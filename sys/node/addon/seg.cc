// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/seg.cc - seg_*: spec strings, create, join, leave, destroy,
// the segment's memory as an ArrayBuffer, status, recovery and verification.
#include <errno.h>
#include <string.h>
#include <string>
#include <vector>
#include "addon.h"
#include "sys/user/segtypes/xseg_memfd.h"

namespace xnode {

static bool arg_str(const Napi::CallbackInfo &info, size_t i, const char *fn, std::string *out)
{
	if (!info[i].IsString()) {
		std::string m = "argument " + std::to_string(i + 1) + " must be a string";
		throw_errno(info.Env(), -EINVAL, fn, m.c_str());
		return false;
	}
	*out = info[i].As<Napi::String>().Utf8Value();
	if (out->find('\0') != std::string::npos) {
		throw_errno(info.Env(), -EINVAL, fn, "strings may not contain NUL");
		return false;
	}
	return true;
}

static bool parse(const Napi::CallbackInfo &info, const char *fn, struct xseg_config *cfg)
{
	std::string spec;
	char err[256] = "";

	if (!arg_str(info, 0, fn, &spec))
		return false;
	int r = xseg_parse_spec(spec.c_str(), cfg, err, sizeof(err));
	if (r == 0)
		r = xseg_check_config(cfg, err, sizeof(err));
	if (r) {
		throw_errno(info.Env(), r, fn, err);
		return false;
	}
	return true;
}

static std::string format_spec(const struct xseg_config *cfg)
{
	char buf[1024];
	int n = xseg_format_spec(cfg, buf, sizeof(buf));

	return n > 0 && (size_t)n < sizeof(buf) ? std::string(buf, (size_t)n) : std::string();
}

static Napi::Object config_object(Napi::Env env, const struct xseg_config *c)
{
	Napi::Object o = Napi::Object::New(env);

	o.Set("type", c->type);
	o.Set("name", c->name);
	o.Set("nr_ports", c->nr_ports);
	o.Set("dynports", c->dynports);
	o.Set("nr_requests", c->nr_requests);
	o.Set("max_requests", c->max_requests ? c->max_requests : c->nr_requests);
	o.Set("request_size", (double)c->request_size);
	o.Set("extra_size", (double)c->extra_size);
	o.Set("page_shift", c->page_shift);
	o.Set("mode", c->mode);
	o.Set("gid", c->gid);
	o.Set("autorm", c->autorm != 0);
	o.Set("peer_types", c->peer_types ? c->peer_types : XSEG_PEER_TYPES_DEFAULT);
	Napi::Array classes = Napi::Array::New(env, c->nr_classes);
	for (uint32_t i = 0; i < c->nr_classes && i < XSEG_MAX_BUF_CLASSES - 1; i++) {
		Napi::Object k = Napi::Object::New(env);

		k.Set("size", (double)c->classes[i].size);
		k.Set("count", c->classes[i].count);
		classes.Set(i, k);
	}
	o.Set("buffers", classes);
	o.Set("spec", format_spec(c));
	o.Set("layout_size", (double)xseg_layout_size(c));
	return o;
}

// seg_parse(spec) -> the config with every default filled in; throws EINVAL
// with a message naming the bad field.
static Napi::Value seg_parse(const Napi::CallbackInfo &info)
{
	struct xseg_config cfg;

	if (!parse(info, "seg_parse", &cfg))
		return info.Env().Undefined();
	return config_object(info.Env(), &cfg);
}

// seg_create(spec) -> undefined. Creates exclusively (EEXIST), does not join.
static Napi::Value seg_create(const Napi::CallbackInfo &info)
{
	struct xseg_config cfg;
	char err[256] = "";

	if (!parse(info, "seg_create", &cfg))
		return info.Env().Undefined();
	int r = xseg_create(&cfg, err, sizeof(err));
	if (r)
		throw_errno(info.Env(), r, "seg_create", err);
	return info.Env().Undefined();
}

// seg_create_memfd(spec) -> fd: a private segment of @spec's config in a new
// sealed memfd (its type and name are ignored), close-on-exec; join it as
// memfd:<fd>, hand it to a child in spawn()'s stdio, or send it with memfd_send.
static Napi::Value seg_create_memfd(const Napi::CallbackInfo &info)
{
	struct xseg_config cfg;
	char err[512] = "";

	if (!parse(info, "seg_create_memfd", &cfg))
		return info.Env().Undefined();
	int fd = xseg_create_memfd(&cfg, err, sizeof(err));
	if (fd < 0) {
		throw_errno(info.Env(), fd, "seg_create_memfd", err);
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), fd);
}

static bool arg_fd(const Napi::CallbackInfo &info, size_t i, const char *fn, int *out)
{
	if (!info[i].IsNumber()) {
		std::string m = "argument " + std::to_string(i + 1) + " must be a file descriptor";
		throw_errno(info.Env(), -EINVAL, fn, m.c_str());
		return false;
	}
	double d = info[i].As<Napi::Number>().DoubleValue();
	if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int)d) {
		std::string m = "argument " + std::to_string(i + 1) + " must be a file descriptor";
		throw_errno(info.Env(), -EINVAL, fn, m.c_str());
		return false;
	}
	*out = (int)d;
	return true;
}

// memfd_send(sock, fd) -> undefined: @fd over the connected Unix socket @sock
// (SCM_RIGHTS). Blocks only as long as the socket's send buffer is full.
static Napi::Value memfd_send(const Napi::CallbackInfo &info)
{
	int sock, fd;

	if (!arg_fd(info, 0, "memfd_send", &sock) || !arg_fd(info, 1, "memfd_send", &fd))
		return info.Env().Undefined();
	int r = xseg_memfd_send(sock, fd);
	if (r)
		throw_errno(info.Env(), r, "memfd_send", nullptr);
	return info.Env().Undefined();
}

// memfd_recv(sock) -> fd received on the Unix socket @sock (close-on-exec);
// blocks until a message arrives unless @sock is non-blocking (EAGAIN).
static Napi::Value memfd_recv(const Napi::CallbackInfo &info)
{
	char err[256] = "";
	int sock;

	if (!arg_fd(info, 0, "memfd_recv", &sock))
		return info.Env().Undefined();
	int fd = xseg_memfd_recv(sock, err, sizeof(err));
	if (fd < 0) {
		throw_errno(info.Env(), fd, "memfd_recv", err[0] ? err : nullptr);
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), fd);
}

// seg_join(type, name, peertype) -> handle; peertype '' joins as an observer.
static Napi::Value seg_join(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string type, name, peertype;
	char err[256] = "";
	int e = 0;
	Instance *inst = env.GetInstanceData<Instance>();

	if (!arg_str(info, 0, "seg_join", &type) || !arg_str(info, 1, "seg_join", &name) ||
	    !arg_str(info, 2, "seg_join", &peertype))
		return env.Undefined();
	if (!inst || inst->tearing_down) {
		throw_errno(env, -ESHUTDOWN, "seg_join", "the environment is shutting down");
		return env.Undefined();
	}
	// An empty peer type joins as an observer (xseg_join with NULL: no port, no entry).
	struct xseg *xs = xseg_join(type.c_str(), name.c_str(), peertype.empty() ? nullptr : peertype.c_str(),
				    nullptr, nullptr, &e, err, sizeof(err));
	if (!xs) {
		throw_errno(env, e ? e : -EINVAL, "seg_join", err);
		return env.Undefined();
	}
	Seg *s = new Seg();
	s->xs = xs;
	s->inst = inst;
	s->nr_ports = xseg_config(xs)->nr_ports;
	s->wake = new struct xseg_uv_wake *[s->nr_ports]();
	s->next = inst->segs;
	if (s->next)
		s->next->prev = s;
	inst->segs = s;
	return make_handle(env, s);
}

// seg_leave(handle) -> undefined. Stops the watchers, detaches every view of
// the segment's memory (they read as empty), leaves the ports and the segment.
// A closed handle is not an error here.
static Napi::Value seg_leave(const Napi::CallbackInfo &info)
{
	Seg *s = handle_of(info[0]);

	if (!s)
		throw_errno(info.Env(), -EINVAL, "seg_leave", "argument 1 must be a segment handle");
	else
		seg_leave_all(s, info.Env());
	return info.Env().Undefined();
}

// seg_destroy(handle) -> undefined: mark destroyed, remove the name.
static Napi::Value seg_destroy(const Napi::CallbackInfo &info)
{
	Seg *s;

	if (!arg_seg(info, 0, "seg_destroy", &s))
		return info.Env().Undefined();
	int r = xseg_destroy(s->xs);
	if (r)
		throw_errno(info.Env(), r, "seg_destroy");
	return info.Env().Undefined();
}

// seg_check_spec(handle, spec) -> undefined: throws EEXIST naming the fields
// of the joined segment that differ from those @spec wrote (create-or-open).
static Napi::Value seg_check_spec(const Napi::CallbackInfo &info)
{
	struct xseg_config want;
	std::string spec;
	char err[512] = "";
	uint32_t given = 0;
	Seg *s;

	if (!arg_seg(info, 0, "seg_check_spec", &s) || !arg_str(info, 1, "seg_check_spec", &spec))
		return info.Env().Undefined();
	int r = xseg_parse_spec_given(spec.c_str(), &want, &given, err, sizeof(err));
	if (r == 0)
		r = xseg_config_mismatch(xseg_config(s->xs), &want, given, err, sizeof(err));
	if (r)
		throw_errno(info.Env(), r, "seg_check_spec", err);
	return info.Env().Undefined();
}

// seg_destroy_name(type, name) -> undefined, without joining (like ipcrm).
static Napi::Value seg_destroy_name(const Napi::CallbackInfo &info)
{
	std::string type, name;

	if (!arg_str(info, 0, "seg_destroy_name", &type) || !arg_str(info, 1, "seg_destroy_name", &name))
		return info.Env().Undefined();
	char err[512] = "";
	int r = xseg_destroy_name_err(type.c_str(), name.c_str(), err, sizeof(err));
	if (r)
		throw_errno(info.Env(), r, "seg_destroy_name", err[0] ? err : nullptr);
	return info.Env().Undefined();
}

// seg_list(type) -> names of the segments of @type (throws ENOTSUP if the
// type cannot list).
static void list_one(void *arg, const char *name)
{
	static_cast<std::vector<std::string> *>(arg)->push_back(name);
}

static Napi::Value seg_list(const Napi::CallbackInfo &info)
{
	std::string type;
	std::vector<std::string> names;

	if (!arg_str(info, 0, "seg_list", &type))
		return info.Env().Undefined();
	const struct xseg_segtype_ops *st = xseg_find_segtype(type.c_str());
	if (!st || !st->list) {
		throw_errno(info.Env(), st ? -ENOTSUP : -EINVAL, "seg_list",
			    st ? "this segment type cannot list its segments" : "no such segment type");
		return info.Env().Undefined();
	}
	int r = st->list(list_one, &names);
	if (r < 0) {
		throw_errno(info.Env(), r, "seg_list");
		return info.Env().Undefined();
	}
	Napi::Array a = Napi::Array::New(info.Env(), names.size());
	for (size_t i = 0; i < names.size(); i++)
		a.Set((uint32_t)i, names[i]);
	return a;
}

// seg_peek(type, name) -> what xseg_peek() copies out of the header, without
// joining (for `xseg list`); throws its -errno with its message.
static Napi::Value seg_peek(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string type, name;
	struct xseg_peek pk;
	char err[256] = "";

	if (!arg_str(info, 0, "seg_peek", &type) || !arg_str(info, 1, "seg_peek", &name))
		return env.Undefined();
	int r = xseg_peek(type.c_str(), name.c_str(), &pk, err, sizeof(err));
	if (r) {
		throw_errno(env, r, "seg_peek", err[0] ? err : nullptr);
		return env.Undefined();
	}
	Napi::Object o = Napi::Object::New(env);
	o.Set("config", config_object(env, &pk.cfg));
	o.Set("size", (double)pk.size);
	o.Set("major", pk.major);
	o.Set("minor", pk.minor);
	o.Set("uid", pk.uid);
	o.Set("gid", pk.gid);
	o.Set("mode", pk.mode);
	o.Set("creator_pid", pk.creator_pid);
	o.Set("ctime_ns", Napi::BigInt::New(env, pk.ctime_ns));
	o.Set("attached", (double)pk.attached);
	o.Set("autorm", (pk.flags & XSEG_F_AUTORM) != 0);
	o.Set("destroyed", (pk.flags & XSEG_F_DESTROYED) != 0);
	Napi::Array pids = Napi::Array::New(env, pk.nr_pids);
	for (uint32_t i = 0; i < pk.nr_pids; i++)
		pids.Set(i, pk.pids[i]);
	o.Set("pids", pids);
	return o;
}

// seg_buffer(handle) -> an ArrayBuffer over the whole mapped segment, never
// a copy. The same one while it lives; detached by seg_leave.
static Napi::Value seg_buffer(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	napi_value ab = nullptr;

	if (!arg_seg(info, 0, "seg_buffer", &s))
		return env.Undefined();
	if (s->ab && napi_get_reference_value(env, s->ab, &ab) == napi_ok && ab)
		return Napi::Value(env, ab);
	if (napi_create_external_arraybuffer(env, xseg_base(s->xs), (size_t)xseg_size(s->xs), nullptr,
					     nullptr, &ab) != napi_ok) {
		throw_errno(env, -ENOMEM, "seg_buffer", "cannot create an external ArrayBuffer");
		return env.Undefined();
	}
	if (s->ab)
		napi_delete_reference(env, s->ab);
	s->ab = nullptr;
	napi_create_reference(env, ab, 0, &s->ab);	// weak: the views keep it alive
	return Napi::Value(env, ab);
}

// seg_info(handle) -> config, size, version, creator and counters of the header.
static Napi::Value seg_info(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;

	if (!arg_seg(info, 0, "seg_info", &s))
		return env.Undefined();
	struct xseg_header *h = xseg_header(s->xs);
	Napi::Object o = Napi::Object::New(env);
	o.Set("config", config_object(env, xseg_config(s->xs)));
	o.Set("size", (double)xseg_size(s->xs));
	o.Set("major", h->major);
	o.Set("minor", h->minor);
	o.Set("uid", h->uid);
	o.Set("gid", h->gid);
	o.Set("mode", h->mode);
	o.Set("creator_pid", h->creator_pid);
	o.Set("ctime_ns", Napi::BigInt::New(env, (uint64_t)h->ctime_ns));
	o.Set("attached", (double)xa_load_rlx64(&h->attached));
	uint64_t flags = xa_load_rlx64(&h->flags);
	o.Set("autorm", (flags & XSEG_F_AUTORM) != 0);
	o.Set("destroyed", (flags & XSEG_F_DESTROYED) != 0);
	o.Set("serial", Napi::BigInt::New(env, (uint64_t)xa_load_rlx64(&h->serial)));
	o.Set("recoveries", (double)xa_load_rlx64(&h->recoveries));
	o.Set("queue_cap", h->queue_cap);
	{
		struct xseg_grow_status gs;

		xseg_grow_status(s->xs, &gs);
		o.Set("live_requests", gs.live_requests);
		o.Set("live_chunks", gs.live_chunks);
		o.Set("grow_target", gs.target);
	}
	Napi::Array types = Napi::Array::New(env);
	for (uint32_t i = 0, n = 0; i < xseg_peer_type_count(s->xs); i++) {
		char name[XSEG_TYPE_LEN];
		if (xseg_peer_type_name(s->xs, i, name, sizeof(name)) == 0)
			types.Set(n++, name);
	}
	o.Set("peer_types", types);
	// What the file system says (status reports the truth; null if no file).
	uint32_t fu, fg, fm;
	if (xseg_real_owner(xseg_config(s->xs)->type, xseg_segname(s->xs), &fu, &fg, &fm) == 0) {
		Napi::Object f = Napi::Object::New(env);
		f.Set("uid", fu);
		f.Set("gid", fg);
		f.Set("mode", fm);
		o.Set("file", f);
	} else {
		o.Set("file", env.Null());
	}
	return o;
}

// seg_set_owner(type, name, set) -> {uid, gid, mode} of the file after the
// change; @set is "mode=0660,group=G,owner=U" (any of them; names or numbers).
static Napi::Value seg_set_owner(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string type, name, set;
	char err[512] = "";
	uint32_t uid, gid, mode;

	if (!arg_str(info, 0, "seg_set_owner", &type) || !arg_str(info, 1, "seg_set_owner", &name) ||
	    !arg_str(info, 2, "seg_set_owner", &set))
		return env.Undefined();
	int r = xseg_parse_owner_set(set.c_str(), &uid, &gid, &mode, err, sizeof(err));
	if (r == 0)
		r = xseg_set_owner_mode(type.c_str(), name.c_str(), uid, gid, mode, err, sizeof(err));
	if (r == 0)
		r = xseg_real_owner(type.c_str(), name.c_str(), &uid, &gid, &mode);
	if (r) {
		throw_errno(env, r, "seg_set_owner", err[0] ? err : nullptr);
		return env.Undefined();
	}
	Napi::Object o = Napi::Object::New(env);
	o.Set("uid", uid);
	o.Set("gid", gid);
	o.Set("mode", mode);
	return o;
}

// seg_recover(handle) -> recovery stats; throws EALREADY if another recovers.
static Napi::Value seg_recover(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Seg *s;
	struct xseg_recovery_stats st = {};

	if (!arg_seg(info, 0, "seg_recover", &s))
		return env.Undefined();
	int r = xseg_recover(s->xs, &st);
	if (r) {
		throw_errno(env, r, "seg_recover");
		return env.Undefined();
	}
	Napi::Object o = Napi::Object::New(env);
	o.Set("ports_freed", st.ports_freed);
	o.Set("requests_failed", st.requests_failed);
	o.Set("requests_freed", st.requests_freed);
	o.Set("buffers_freed", st.buffers_freed);
	o.Set("holds_settled", st.holds_settled);
	return o;
}

// seg_grow(handle, n) -> growth status; done false while a shrink waits for held requests.
static Napi::Value seg_grow(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct xseg_grow_status gs = {};
	uint32_t n;
	Seg *s;

	if (!arg_seg(info, 0, "seg_grow", &s) || !arg_u32(info, 1, "seg_grow", &n))
		return env.Undefined();
	int r = xseg_grow(s->xs, n, &gs);
	if (r == -ERANGE) {
		throw_errno(env, r, ("seg_grow: " + std::to_string(n) + " requests is above the segment's max_requests (" +
				     std::to_string(gs.max_requests) + ")").c_str());
		return env.Undefined();
	}
	if (r && r != -EBUSY) {
		throw_errno(env, r, r == -EALREADY ? "seg_grow: a recovery or another grow holds the lease (retry)" :
				    "seg_grow");
		return env.Undefined();
	}
	Napi::Object o = Napi::Object::New(env);
	o.Set("done", r == 0);
	o.Set("live_requests", gs.live_requests);
	o.Set("live_chunks", gs.live_chunks);
	o.Set("max_requests", gs.max_requests);
	o.Set("target", gs.target);
	o.Set("added", gs.added);
	o.Set("held", gs.held);
	o.Set("bytes_released", (double)gs.bytes_released);
	return o;
}

// seg_verify(handle) -> the problems found, one line each (empty: consistent).
static void verify_line(void *arg, const char *line)
{
	static_cast<std::vector<std::string> *>(arg)->push_back(line);
}

static Napi::Value seg_verify(const Napi::CallbackInfo &info)
{
	Seg *s;
	std::vector<std::string> lines;

	if (!arg_seg(info, 0, "seg_verify", &s))
		return info.Env().Undefined();
	int n = xseg_verify(s->xs, verify_line, &lines);
	if (n > 0 && lines.empty())
		lines.push_back(std::to_string(n) + " problems");
	Napi::Array a = Napi::Array::New(info.Env(), lines.size());
	for (size_t i = 0; i < lines.size(); i++)
		a.Set((uint32_t)i, lines[i]);
	return a;
}

// seg_set_spin(handle, us) -> undefined: the spin of port_wait before it sleeps.
static Napi::Value seg_set_spin(const Napi::CallbackInfo &info)
{
	Seg *s;
	uint32_t us;

	if (arg_seg(info, 0, "seg_set_spin", &s) && arg_u32(info, 1, "seg_set_spin", &us))
		xseg_set_spin_us(s->xs, us);
	return info.Env().Undefined();
}

// op_name(op) / op_from_name(name): the core's op names (lowercase).
static Napi::Value op_names(const Napi::CallbackInfo &info)
{
	Napi::Array a = Napi::Array::New(info.Env(), X_OP_COUNT);

	for (uint32_t i = 0; i < X_OP_COUNT; i++) {
		const char *n = xseg_op_name(i);
		a.Set(i, n ? n : "");
	}
	return a;
}

void init_seg(Napi::Env env, Napi::Object exports)
{
	exports.Set("seg_parse", Napi::Function::New(env, seg_parse, "seg_parse"));
	exports.Set("seg_create", Napi::Function::New(env, seg_create, "seg_create"));
	exports.Set("seg_create_memfd", Napi::Function::New(env, seg_create_memfd, "seg_create_memfd"));
	exports.Set("memfd_send", Napi::Function::New(env, memfd_send, "memfd_send"));
	exports.Set("memfd_recv", Napi::Function::New(env, memfd_recv, "memfd_recv"));
	exports.Set("seg_set_owner", Napi::Function::New(env, seg_set_owner, "seg_set_owner"));
	exports.Set("seg_check_spec", Napi::Function::New(env, seg_check_spec, "seg_check_spec"));
	exports.Set("seg_join", Napi::Function::New(env, seg_join, "seg_join"));
	exports.Set("seg_leave", Napi::Function::New(env, seg_leave, "seg_leave"));
	exports.Set("seg_destroy", Napi::Function::New(env, seg_destroy, "seg_destroy"));
	exports.Set("seg_destroy_name", Napi::Function::New(env, seg_destroy_name, "seg_destroy_name"));
	exports.Set("seg_list", Napi::Function::New(env, seg_list, "seg_list"));
	exports.Set("seg_buffer", Napi::Function::New(env, seg_buffer, "seg_buffer"));
	exports.Set("seg_info", Napi::Function::New(env, seg_info, "seg_info"));
	exports.Set("seg_peek", Napi::Function::New(env, seg_peek, "seg_peek"));
	exports.Set("seg_recover", Napi::Function::New(env, seg_recover, "seg_recover"));
	exports.Set("seg_verify", Napi::Function::New(env, seg_verify, "seg_verify"));
	exports.Set("seg_grow", Napi::Function::New(env, seg_grow, "seg_grow"));
	exports.Set("seg_set_spin", Napi::Function::New(env, seg_set_spin, "seg_set_spin"));
	exports.Set("op_names", Napi::Function::New(env, op_names, "op_names"));
}

}  // namespace xnode
