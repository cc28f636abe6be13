// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/addon.h - the native addon's shared declarations.
//
// The addon is thin and flat: snake_case functions over an opaque segment
// handle, grouped by prefix (seg_*, port_*, req_*), each calling the C core
// (xseg/xseg.h) once. Requests are named by their index in the segment's
// request table. Validation, defaults, Promises and friendly errors live in
// TypeScript (sys/node/ts/); here every argument is still checked enough
// that a wrong call throws instead of crashing.
//
// Errors: a failing call throws an XsegError (the class sys/node/ts/errors.ts
// registers with set_error_class; a plain Error before that) whose `code` is
// the errno name ('EAGAIN', 'EPERM'...), `errno` the negative errno (as
// Node's system errors) and `syscall` the addon function; throw_errno builds
// every one of them. Expected conditions are values:
// "no free request", "nothing queued", "queue full" (see each function).
//
// Threads: every function runs on the JavaScript thread of the environment
// (main thread or worker) that created the handle; the module is
// context-aware and keeps its per-environment state in napi instance data.
#ifndef XSEG_NODE_ADDON_H
#define XSEG_NODE_ADDON_H

#define NAPI_DISABLE_CPP_EXCEPTIONS 1
#include <napi.h>
#include <stdint.h>


extern "C" {
#include "xseg/xseg.h"
#include "xseg/xseg_access.h"
#include "drivers/user/posixfd.h"
#include "sys/user/segtypes/owner.h"
#include "sys/node/addon/uv_wake.h"
}

namespace xnode {

struct Instance;

// One joined segment of one environment. Freed by the handle's finalizer
// only; seg_leave, port and cleanup paths just leave and clear `xs`.
struct Seg {
	struct xseg *xs;		// NULL once left
	Instance *inst;			// NULL once the environment is torn down
	napi_ref ab;			// weak: the external ArrayBuffer over the segment
	uint32_t nr_ports;
	struct xseg_uv_wake **wake;	// [nr_ports]: the posixfd watchers of bound ports
	Seg *prev, *next;		// the instance's list
};

// Per-environment state (napi instance data).
struct Instance {
	napi_env env;
	Seg *segs;			// joined segments of this environment
	uint32_t closing;		// watchers whose uv_close has not finished
	napi_async_cleanup_hook_handle hook;
	int tearing_down;
	napi_ref error_class;		// XsegError (set_error_class), or NULL
};

// Throw an XsegError for a negative errno from function @fn; @msg may be NULL.
void throw_errno(Napi::Env env, int neg_errno, const char *fn, const char *msg = nullptr);
const char *errno_name(int e);

// The Seg of a handle (left or not), or NULL if @v is not one.
Seg *handle_of(Napi::Value v);

// Argument helpers (a left handle is EBADF): on a bad argument they throw (code EINVAL) and return false.
bool arg_seg(const Napi::CallbackInfo &info, size_t i, const char *fn, Seg **out);
bool arg_u32(const Napi::CallbackInfo &info, size_t i, const char *fn, uint32_t *out);
bool arg_u64(const Napi::CallbackInfo &info, size_t i, const char *fn, uint64_t *out);
bool arg_req(const Napi::CallbackInfo &info, Seg *s, size_t i, const char *fn,
	     struct xseg_request **out);

// Stop the watchers of @s (all, or port @portno: XSEG_NO_PORT for all).
void seg_stop_wake(Seg *s, uint32_t portno, bool can_call_js);
// Leave: watchers, then the views (detached, if @env is given: JavaScript
// may still run), then the segment. @env NULL during teardown.
void seg_leave_all(Seg *s, napi_env env);
Napi::Value make_handle(Napi::Env env, Seg *s);
void watcher_closed(void *arg);

void init_seg(Napi::Env env, Napi::Object exports);
void init_port(Napi::Env env, Napi::Object exports);
void init_req(Napi::Env env, Napi::Object exports);
void init_batch(Napi::Env env, Napi::Object exports);
// The NBD gateway's engine (peers/node/nbd/engine/napi.cc).
void init_nbd_engine(Napi::Env env, Napi::Object exports);

}  // namespace xnode

#endif
