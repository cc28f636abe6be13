// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/addon.cc - module registration, per-environment state,
// errors and argument helpers of the xseg addon (see addon.h).
#include <errno.h>
#include <string.h>
#include <string>
#include "addon.h"

namespace xnode {

// ------------------------------------------------------------------ errors

#define XNODE_ERRNOS(X)                                                                  \
	X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) X(EBADF) X(EAGAIN) \
	X(ENOMEM) X(EACCES) X(EFAULT) X(EBUSY) X(EEXIST) X(EXDEV) X(ENODEV) X(ENOTDIR)   \
	X(EISDIR) X(EINVAL) X(ENFILE) X(EMFILE) X(EFBIG) X(ENOSPC) X(ESPIPE) X(EROFS)    \
	X(EMLINK) X(EPIPE) X(EDOM) X(ERANGE) X(EDEADLK) X(ENAMETOOLONG) X(ENOLCK)        \
	X(ENOSYS) X(ENOTEMPTY) X(ELOOP) X(ENOMSG) X(EIDRM) X(ENODATA) X(ETIME)           \
	X(ENOLINK) X(EPROTO) X(EBADMSG) X(EOVERFLOW) X(EILSEQ) X(EUSERS) X(ENOTSUP)      \
	X(EADDRINUSE) X(ENETDOWN) X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS) X(EISCONN)    \
	X(ENOTCONN) X(ESHUTDOWN) X(ETIMEDOUT) X(ECONNREFUSED) X(EHOSTDOWN) X(EALREADY)   \
	X(EINPROGRESS) X(ESTALE) X(EDQUOT) X(ECANCELED) X(EOWNERDEAD) X(ENOTRECOVERABLE)

const char *errno_name(int e)
{
	if (e < 0)
		e = -e;
	switch (e) {
#define XNODE_CASE(n) case n: return #n;
	XNODE_ERRNOS(XNODE_CASE)
#undef XNODE_CASE
	default: return nullptr;
	}
}

void throw_errno(Napi::Env env, int neg_errno, const char *fn, const char *msg)
{
	int e = neg_errno < 0 ? -neg_errno : neg_errno;
	const char *name = errno_name(e);
	std::string code = name ? name : "E" + std::to_string(e);
	std::string text = msg && *msg ? msg : strerror(e);
	Instance *inst = env.GetInstanceData<Instance>();
	napi_value cls = nullptr;

	if (fn)
		text += std::string(", ") + fn;
	// new XsegError(code, text, { errno, syscall }): the one error class of
	// the API (sys/node/ts/errors.ts), built here for every addon failure.
	if (inst && inst->error_class &&
	    napi_get_reference_value(env, inst->error_class, &cls) == napi_ok && cls) {
		Napi::Object opts = Napi::Object::New(env);

		opts.Set("errno", Napi::Number::New(env, -e));
		if (fn)
			opts.Set("syscall", Napi::String::New(env, fn));
		Napi::Object err = Napi::Function(env, cls).New(
			{ Napi::String::New(env, code), Napi::String::New(env, text), opts });
		if (!env.IsExceptionPending())
			Napi::Error(env, err).ThrowAsJavaScriptException();
		return;
	}
	Napi::Error err = Napi::Error::New(env, code + ": " + text);
	err.Value().Set("code", Napi::String::New(env, code));
	err.Value().Set("errno", Napi::Number::New(env, -e));
	if (fn)
		err.Value().Set("syscall", Napi::String::New(env, fn));
	err.ThrowAsJavaScriptException();
}

// set_error_class(XsegError): the class throw_errno builds its errors with.
static Napi::Value set_error_class(const Napi::CallbackInfo &info)
{
	Instance *inst = info.Env().GetInstanceData<Instance>();

	if (!info[0].IsFunction()) {
		throw_errno(info.Env(), -EINVAL, "set_error_class", "argument 1 must be a class");
		return info.Env().Undefined();
	}
	if (inst) {
		if (inst->error_class)
			napi_delete_reference(info.Env(), inst->error_class);
		napi_create_reference(info.Env(), info[0], 1, &inst->error_class);
	}
	return info.Env().Undefined();
}

// ------------------------------------------------------------- arguments

static const napi_type_tag seg_tag = { 0x78736567686e646cull, 0x9d1c5be2a4f3e077ull };


Seg *handle_of(Napi::Value v)
{
	if (!v.IsExternal())
		return nullptr;
	Napi::External<Seg> ext = v.As<Napi::External<Seg>>();
	return ext.CheckTypeTag(&seg_tag) ? ext.Data() : nullptr;
}

bool arg_seg(const Napi::CallbackInfo &info, size_t i, const char *fn, Seg **out)
{
	Seg *s = handle_of(info[i]);

	if (!s) {
		throw_errno(info.Env(), -EINVAL, fn, "argument 1 must be a segment handle");
		return false;
	}
	if (!s->xs) {
		throw_errno(info.Env(), -EBADF, fn, "the segment handle is closed");
		return false;
	}
	*out = s;
	return true;
}

bool arg_u32(const Napi::CallbackInfo &info, size_t i, const char *fn, uint32_t *out)
{
	Napi::Value v = info[i];

	if (v.IsNumber()) {
		double d = v.As<Napi::Number>().DoubleValue();

		if (d >= 0 && d <= 4294967295.0 && d == (double)(uint32_t)d) {
			*out = (uint32_t)d;
			return true;
		}
	}
	std::string m = "argument " + std::to_string(i + 1) + " must be an integer in [0, 2^32)";
	throw_errno(info.Env(), -EINVAL, fn, m.c_str());
	return false;
}

bool arg_u64(const Napi::CallbackInfo &info, size_t i, const char *fn, uint64_t *out)
{
	Napi::Value v = info[i];

	if (v.IsNumber()) {
		double d = v.As<Napi::Number>().DoubleValue();

		if (d >= 0 && d <= 9007199254740991.0 && d == (double)(uint64_t)d) {
			*out = (uint64_t)d;
			return true;
		}
	} else if (v.IsBigInt()) {
		bool lossless = false;
		uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);

		if (lossless) {
			*out = u;
			return true;
		}
	}
	std::string m = "argument " + std::to_string(i + 1) +
			" must be a safe integer or a bigint in [0, 2^64)";
	throw_errno(info.Env(), -EINVAL, fn, m.c_str());
	return false;
}

bool arg_req(const Napi::CallbackInfo &info, Seg *s, size_t i, const char *fn,
	     struct xseg_request **out)
{
	uint32_t idx;
	struct xseg_request *req;

	if (!arg_u32(info, i, fn, &idx))
		return false;
	req = xseg_request_at(s->xs, idx);
	if (!req) {
		throw_errno(info.Env(), -EINVAL, fn, "no such request index");
		return false;
	}
	*out = req;
	return true;
}

// ------------------------------------------------- watchers and teardown

void watcher_closed(void *arg)
{
	Instance *inst = static_cast<Instance *>(arg);

	if (--inst->closing == 0 && inst->tearing_down && inst->hook) {
		napi_async_cleanup_hook_handle h = inst->hook;

		inst->hook = nullptr;
		napi_remove_async_cleanup_hook(h);
	}
}

void seg_stop_wake(Seg *s, uint32_t portno, bool can_call_js)
{
	if (!s->wake)
		return;
	for (uint32_t p = 0; p < s->nr_ports; p++) {
		if ((portno != XSEG_NO_PORT && p != portno) || !s->wake[p])
			continue;
		if (s->inst)
			s->inst->closing++;
		xseg_uv_wake_close(s->wake[p], can_call_js);
		s->wake[p] = nullptr;
	}
}

// Leave the segment (watchers first: their FIFOs close with the ports).
void seg_leave_all(Seg *s, napi_env env)
{
	if (!s->xs)
		return;
	seg_stop_wake(s, XSEG_NO_PORT, env != nullptr);
	if (env && s->ab) {
		napi_value ab;

		// Views into the segment become empty rather than dangling.
		if (napi_get_reference_value(env, s->ab, &ab) == napi_ok && ab)
			napi_detach_arraybuffer(env, ab);
	}
	xseg_leave(s->xs);
	s->xs = nullptr;
	if (s->inst) {
		Instance *inst = s->inst;

		if (s->prev)
			s->prev->next = s->next;
		else
			inst->segs = s->next;
		if (s->next)
			s->next->prev = s->prev;
		s->prev = s->next = nullptr;
		s->inst = nullptr;
	}
}

// The environment goes away (worker exit, process exit): leave everything.
static void on_teardown(napi_async_cleanup_hook_handle handle, void *arg)
{
	Instance *inst = static_cast<Instance *>(arg);

	inst->hook = handle;
	inst->tearing_down = 1;
	while (inst->segs)
		seg_leave_all(inst->segs, nullptr);	// unlinks it
	if (inst->closing == 0) {
		inst->hook = nullptr;
		napi_remove_async_cleanup_hook(handle);
	}
}

static void free_instance(napi_env env, void *data, void *hint)
{
	Instance *inst = static_cast<Instance *>(data);

	if (inst->error_class)
		napi_delete_reference(env, inst->error_class);
	delete inst;
}

static void seg_finalize(napi_env env, Seg *s)
{
	// A handle dropped without seg_leave: leave now (no JavaScript runs
	// any more if the environment is being torn down).
	if (s->xs)
		seg_leave_all(s, s->inst ? env : nullptr);
	if (s->ab)
		napi_delete_reference(env, s->ab);
	delete[] s->wake;
	delete s;
}

Napi::Value make_handle(Napi::Env env, Seg *s)
{
	Napi::External<Seg> ext = Napi::External<Seg>::New(env, s, seg_finalize);

	ext.TypeTag(&seg_tag);
	return ext;
}

// ------------------------------------------------------------------ init

Napi::Object Init(Napi::Env env, Napi::Object exports);
Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	Instance *inst = new Instance();
	Napi::Object errnos = Napi::Object::New(env);

	inst->env = env;
	if (napi_set_instance_data(env, inst, free_instance, nullptr) != napi_ok) {
		delete inst;
		return exports;
	}
	napi_add_async_cleanup_hook(env, on_teardown, inst, nullptr);
#define XNODE_SET(n) errnos.Set(#n, Napi::Number::New(env, n));
	XNODE_ERRNOS(XNODE_SET)
#undef XNODE_SET
	exports.Set("errno", errnos);
	exports.Set("napi_version", Napi::Number::New(env, NAPI_VERSION));
	exports.Set("set_error_class", Napi::Function::New(env, set_error_class, "set_error_class"));
	init_seg(env, exports);
	init_port(env, exports);
	init_req(env, exports);
	init_batch(env, exports);
	init_nbd_engine(env, exports);
	return exports;
}

}  // namespace xnode

static Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	return xnode::Init(env, exports);
}

NODE_API_MODULE(xseg, Init)
