/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/xseg.h - the public API of the segment core.
 *
 * A peer joins a segment with a peer type (its signaling driver), binds ports
 * and moves requests through lock-free queues:
 *
 *   client: get_request -> prep -> submit(dst) + signal(dst)
 *   server:                  accept -> serve -> respond + signal(src)
 *   client: receive -> read the result -> put_request
 *
 * Every function returns 0 or a value on success and a negative errno on
 * failure, unless it says otherwise. All may be called from any thread; a
 * struct xseg handle may be shared by the threads of one process.
 *
 * Context, per function below: "Domains" names where it is built (user:
 * libxseg; kernel: xseg.ko, process context only; node: the addon, which
 * links the user library). The data path (get, prep, submit, accept,
 * respond, forward, receive, put, signal, the handle's view) never sleeps
 * and never waits for another peer (lock-free xq steps, CAS retries).
 * What may block: create, join, leave and the destroy/owner calls
 * (file-system calls, mmap, memory allocation; in the kernel GFP_KERNEL and
 * the registry mutex); bind and leave_port (a yield loop on the recovery
 * lease, up to 5 s per try, only for a port whose hold records were all
 * busy or that a dead recoverer left); xseg_recover (the same lease wait,
 * per such port); and the waits (xseg_wait_signal, xseg_wait: up to their
 * timeout). Lifecycles, step by step: docs/lifecycle.md.
 */
#ifndef XSEG_H
#define XSEG_H

#include "xseg_layout.h"
#include "../xq/xq.h"

#ifdef __cplusplus
extern "C" {
#endif

struct xseg;
struct xseg_driver;
struct xseg_segtype;

/* ---------------------------------------------------------- the library */

/*
 * xseg_initialize - register the domain's built-in segment types and drivers
 * now. Optional: every lookup does it on first use; call it to have it done
 * before threads start. Idempotent. Returns 0. Domains: user, kernel (a
 * module's init), node. Does not sleep, but a second thread calling it while
 * the first registers yields until that is done (start-up only).
 */
int xseg_initialize(void);

/*
 * xseg_finalize - unregister the built-ins (a kernel module calls it before
 * it unloads). No handle may be in use. xseg_initialize() may follow.
 * Domains: user, kernel (a module's exit), node. Does not sleep.
 */
void xseg_finalize(void);

/* ------------------------------------------------------------ spec strings */

/*
 * xseg_config_defaults - fill @cfg with the documented defaults:
 * posix:xseg:16:256:64K:0:12, dynports=8, mode=0600, no group, autorm=0.
 * Any domain; pure (no shared state), does not sleep.
 */
void xseg_config_defaults(struct xseg_config *cfg);

/*
 * xseg_parse_spec - parse "type:name:nr_ports:nr_requests:request_size:
 * extra_size:page_shift[:key=value...]" into @cfg. Empty or missing fields
 * take the defaults; sizes accept K, M, G (powers of 1024). Keys: dynports,
 * mode (octal), group (name or gid), autorm (0/1/yes/no/true/false), buffers
 * (SIZE*COUNT[,SIZE*COUNT...], extra buffer classes), quota_requests and
 * quota_buffer (a SIZE, a multiple of the page) - the per-port quotas every
 * bind starts with, 0 unlimited (see struct xseg_quota), huge (0/1: 2 MiB
 * huge pages, posix and memfd only; docs/segtypes.md). On error returns
 * -EINVAL and writes to @err (if not NULL) a message naming the field, e.g.
 * "nr_ports: '0' must be between 1 and 4096". Any domain; does not sleep,
 * except that a group given by name is looked up in the group database
 * (user and node: getgrnam_r, which may read files or ask NSS; the kernel
 * has none and takes gids by number only).
 */
int xseg_parse_spec(const char *spec, struct xseg_config *cfg, char *err, size_t errlen);

/*
 * xseg_parse_spec_given - xseg_parse_spec(), and *@given (if not NULL) gets
 * one XSEG_GIVEN_* bit per field the spec wrote (a non-empty positional
 * field, a key); the others took their defaults.
 */
#define XSEG_GIVEN_TYPE		(1u << 0)
#define XSEG_GIVEN_NAME		(1u << 1)
#define XSEG_GIVEN_NR_PORTS	(1u << 2)
#define XSEG_GIVEN_NR_REQUESTS	(1u << 3)
#define XSEG_GIVEN_REQUEST_SIZE	(1u << 4)
#define XSEG_GIVEN_EXTRA_SIZE	(1u << 5)
#define XSEG_GIVEN_PAGE_SHIFT	(1u << 6)
#define XSEG_GIVEN_DYNPORTS	(1u << 8)
#define XSEG_GIVEN_MODE		(1u << 9)
#define XSEG_GIVEN_GROUP	(1u << 10)
#define XSEG_GIVEN_AUTORM	(1u << 11)
#define XSEG_GIVEN_BUFFERS	(1u << 12)
#define XSEG_GIVEN_QUOTA_REQUESTS (1u << 13)
#define XSEG_GIVEN_QUOTA_BUFFER	(1u << 14)
#define XSEG_GIVEN_HUGE		(1u << 15)
#define XSEG_GIVEN_QUOTA_TYPES	(1u << 16)
#define XSEG_GIVEN_MAX_HOPS	(1u << 17)
#define XSEG_GIVEN_PEER_TYPES	(1u << 18)
#define XSEG_GIVEN_MAX_REQUESTS	(1u << 19)
int xseg_parse_spec_given(const char *spec, struct xseg_config *cfg, uint32_t *given,
			  char *err, size_t errlen);

/*
 * xseg_format_spec - write the canonical spec of @cfg (every positional field,
 * the keys that differ from the defaults) to @buf. Returns the length it
 * needs (like snprintf); parse(format(cfg)) == cfg. Any domain; pure, does
 * not sleep.
 */
int xseg_format_spec(const struct xseg_config *cfg, char *buf, size_t len);

/*
 * xseg_check_config - validate a config (ranges, sizes that fit). 0, or
 * -EINVAL + @err. Any domain; pure, does not sleep.
 */
int xseg_check_config(const struct xseg_config *cfg, char *err, size_t errlen);

/*
 * xseg_layout_size - bytes a segment of @cfg needs, or 0 if @cfg is invalid.
 * Any domain; pure, does not sleep.
 */
uint64_t xseg_layout_size(const struct xseg_config *cfg);

/* ----------------------------------------------------- segments and peers */

/*
 * xseg_create - create a segment exclusively (-EEXIST if the name is taken),
 * sized and laid out for @cfg, with its final mode and group set. Does not
 * join: xseg_join() follows. Returns 0 or -errno; @err gets a message on
 * failure. Domains: user, node (posix, file, heap), kernel (segdev). May
 * block: creates and sizes the object (open, posix_fallocate, fchmod,
 * fchown; a full /dev/shm is -ENOSPC here) or allocates it (heap: the
 * registry mutex; segdev: vmalloc).
 */
int xseg_create(const struct xseg_config *cfg, char *err, size_t errlen);

/*
 * Called by a callback driver when one of the process's ports is signaled:
 * kernel peers only (the kernel's segdev and posix drivers call it). In user
 * space and Node a callback-style peer polls xseg_poll_fd() in its event loop
 * instead, and xseg_join refuses a non-NULL @wakeup there (-EINVAL).
 */
typedef void (*xseg_wakeup_fn)(struct xseg *xs, uint32_t portno, void *arg);

/*
 * xseg_join - map and validate the segment @segname of type @segtype, and
 * register as a peer of type @peertype (a driver name: "posix", "posixfd",
 * "futex"...). @wakeup, if set, is called by callback drivers (kernel only:
 * -EINVAL in user space and Node, see xseg_wakeup_fn). Refuses a
 * segment of another major version (-EPROTO, naming both versions), a
 * segment marked for destroy (-EIDRM), a corrupt one (-EBADMSG) and one whose
 * owner or mode does not admit us (-EACCES, -EPERM). Returns the handle and
 * sets *@errp to 0, or returns NULL with *@errp set; @err gets a message.
 * Domains: user, kernel, node. May block: it maps the segment (open, fstat,
 * mmap; heap takes the registry mutex), allocates the handle (GFP_KERNEL in
 * the kernel), may load a driver (xseg_<name>.so, dlopen) and runs the
 * driver's join (e.g. opens an eventfd or socket). Does not bind a port:
 * xseg_bind_port() follows; xseg_leave() ends it.
 * A NULL @peertype joins as an observer: the segment is mapped and checked
 * as for any join, but the observer takes no entry of the peer-type table
 * (so it can look at a segment whose table is full), is not counted as
 * attached, never triggers autorm at its leave, and cannot bind a port
 * (-EPERM). For tools that only read: `xseg status`, `verify`, `top`,
 * `metrics`. Unlike xseg_peek() it sees the ports and requests, and the
 * calls that settle dead peers (xseg_recover) still work through it.
 */
struct xseg *xseg_join(const char *segtype, const char *segname, const char *peertype,
		       xseg_wakeup_fn wakeup, void *arg, int *errp, char *err, size_t errlen);

/*
 * xseg_config_mismatch - does the config @have of an existing segment (its
 * header's, e.g. xseg_config() of a handle) agree with @want, parsed from a
 * spec that wrote the fields @given (XSEG_GIVEN_*)? Fields the spec wrote
 * must be equal; fields it left at their defaults match anything. Returns 0,
 * or -EEXIST with @err naming every differing field both ways ("posix:vol
 * exists with nr_ports=8, nr_requests=32, request_size=64K; the spec asks
 * 64, 1024, 1M"). For create-or-open: create, on -EEXIST join, then check.
 * Any domain; pure, does not sleep.
 */
int xseg_config_mismatch(const struct xseg_config *have, const struct xseg_config *want,
			 uint32_t given, char *err, size_t errlen);

/* What xseg_peek() copies out of a segment's header. */
#define XSEG_PEEK_PIDS 32u
struct xseg_peek {
	struct xseg_config cfg;		/* type and name NUL-terminated */
	uint64_t size;			/* bytes of the whole segment */
	uint64_t ctime_ns;		/* CLOCK_REALTIME at creation */
	uint64_t attached;		/* the header's count of joined peers */
	uint64_t flags;			/* XSEG_F_AUTORM, XSEG_F_DESTROYED */
	uint32_t uid, gid, mode, creator_pid;
	uint32_t major, minor;		/* segment layout version */
	uint32_t nr_pids;		/* live joined processes (at most XSEG_PEEK_PIDS) */
	uint32_t pids[XSEG_PEEK_PIDS];
};

/*
 * xseg_peek - look at segment @name of segment type @type without joining
 * it: map it (the type checks owner and mode as for a join), check it is a
 * whole xseg segment of that type and layout version, copy the header's
 * config, size, creator, mode, creation time, attach count, flags and the
 * live joined pids into @out, unmap. Writes nothing to the segment (no
 * attach, no recovery). Returns 0, or -errno with a message in @err
 * (-EBADMSG: not an xseg segment; -EPROTO: another layout version; the
 * type's map() errors: -ENOENT, -EACCES, -EPERM...). Domains: user, node.
 * May block on the type's file-system calls.
 */
int xseg_peek(const char *type, const char *name, struct xseg_peek *out, char *err, size_t errlen);

/*
 * xseg_leave - leave the ports this handle bound (xseg_leave_port() each),
 * leave the drivers, unmap, free the handle. When the segment has autorm and
 * this was the last peer, destroys it as xseg_destroy_name_err() would (a
 * refusal is logged, not returned). Returns 0. Domains: user, kernel, node.
 * May block: each port's leave may wait on the recovery lease (see
 * xseg_leave_port), plus munmap and, with autorm, the destroy's file-system
 * calls. The handle must not be used afterwards, by any thread.
 */
int xseg_leave(struct xseg *xs);

/*
 * xseg_destroy - mark the segment destroyed (new joins fail with -EIDRM) and
 * remove its name (through the same proof as xseg_destroy_name_err()); peers
 * already joined keep their mapping until they leave. The handle stays valid:
 * xseg_leave() still follows. Returns 0 or the proof's -errno. Domains:
 * user, kernel, node. May block on file-system calls (open, fstat, mmap,
 * unlink) and on the drivers' destroy (removing what they made for the name).
 */
int xseg_destroy(struct xseg *xs);

/*
 * xseg_destroy_name - destroy by name without joining (like ipcrm), with no
 * message; see xseg_destroy_name_err(). Same returns and context.
 */
int xseg_destroy_name(const char *segtype, const char *segname);

/*
 * xseg_destroy_name_err - destroy the segment @segtype:@segname without
 * joining it, only if it provably is an xseg segment of this type that the
 * caller may destroy: a regular file (never a symlink, FIFO, device or
 * directory) carrying the xseg magic, this byte order and major version, a
 * size that matches, this segment type in its header, a header creator uid
 * equal to the file's owner, and the caller being that owner or root. The
 * check and the removal go through one open file, and the name is removed
 * only if it still refers to the object checked. Removes the name, then
 * marks the header destroyed (a join that mapped it meanwhile gets -EIDRM)
 * and removes what the drivers made for it. Returns 0; -ENOENT; -EPERM (not a regular
 * file, not ours); -EBADMSG (not an xseg segment: no magic, other byte
 * order, size mismatch, another segment type); -EPROTO (another major
 * version); -EBUSY (the name changed while we checked); @err gets "<type>:
 * <name> is not an xseg segment (no xseg magic); not removed" and the like.
 * Domains: user, node (and kernel for segdev, which proves through map()).
 * Blocks on file-system calls only (open O_NOFOLLOW, fstat, mmap, unlinkat);
 * no lease, no wait.
 */
int xseg_destroy_name_err(const char *segtype, const char *segname, char *err, size_t errlen);

/*
 * xseg_set_owner_mode - give the segment @segtype:@segname owner @uid, group
 * @gid and mode @mode (each (uint32_t)-1 to keep it), in the file or shm
 * object (fchown/fchmod on one open file of the verified segment, as
 * xseg_destroy_name_err() verifies it) and in the header together, so that
 * status reports it and a joiner's owner/mode check admits whom it now
 * grants. Only the owner or root may; changing the owner takes root, a
 * group must be one of the owner's (the kernel's rules). @mode must give
 * the owner rw and nothing beyond 0770. Returns 0, -EINVAL (a bad mode),
 * -EPERM, -ENOTSUP (a type without it: heap, segdev) or what destroy's
 * check returns; @err names what was refused. User and node domains; blocks
 * on file-system calls only (open, fstat, mmap, fchown, fchmod).
 */
int xseg_set_owner_mode(const char *segtype, const char *segname, uint32_t uid, uint32_t gid,
			uint32_t mode, char *err, size_t errlen);

/*
 * xseg_real_owner - the owner, group and permission bits of the file or shm
 * object behind @segtype:@segname as the file system has them (not the
 * header's copy). 0, -ENOENT, -ENOTSUP (no file behind it). User and node
 * domains; one stat() of the file.
 */
int xseg_real_owner(const char *segtype, const char *segname, uint32_t *uid, uint32_t *gid,
		    uint32_t *mode);

/*
 * The handle's view: the process-local config copy (validated at join), the
 * shared header, the mapping's base and size, the extra area (and its size).
 * Any domain; plain reads, never sleep; valid until xseg_leave().
 * The extra area (extra_size bytes of the spec, zeroed at create, NULL when
 * 0) is the applications' own: every peer of the segment sees the same bytes
 * (test/sys/driverso.c passes data both ways through it); the core never
 * reads or writes it, so its layout and any locking are the users' contract.
 */
const struct xseg_config *xseg_config(const struct xseg *xs);
struct xseg_header *xseg_header(struct xseg *xs);
void *xseg_base(struct xseg *xs);
uint64_t xseg_size(const struct xseg *xs);
void *xseg_extra(struct xseg *xs, uint64_t *size);

/* ------------------------------------------------------------------ ports */

#define XSEG_ANY_PORT XSEG_NO_PORT

/*
 * xseg_bind_port - bind @portno (a static port, < dynports) or, with
 * XSEG_ANY_PORT, the first free dynamic port, for this process. Runs
 * recovery of the port first if its owner is dead. Returns the port number,
 * -EBUSY if a live peer holds it, -ENOSPC if no dynamic port is free,
 * -EINVAL if @portno is out of range or a dynamic one (bind those by
 * XSEG_ANY_PORT), -EALREADY if this process has bound it already; a driver's
 * bind error. @flags: XSEG_PORT_ACCEPT, XSEG_PORT_RECEIVE (neither means
 * both), XSEG_PORT_NO_TIMING (take no timestamps and keep no latency
 * histogram) and XSEG_PORT_SERVICE_TIMING (as a server, also stamp
 * ts_accept and ts_respond; not with XSEG_PORT_NO_TIMING): see
 * docs/segment.md, "What a request costs". After
 * xseg_join(); before get_request/accept/receive on the port. -EPERM for an
 * observer (a join with a NULL peer type).
 * Domains: user, kernel, node. May block: if the port's owner is dead it is
 * settled first (see xseg_recover), without the lease unless every hold
 * record of the port was busy or a dead recoverer left it; then it yields
 * on the lease for up to 5 s. Up to 4 tries per port, so a static port may
 * wait up to about 20 s before -EBUSY; XSEG_ANY_PORT tries each dynamic port
 * in turn. Reads /proc for liveness (user). Also runs the driver's bind.
 */
int xseg_bind_port(struct xseg *xs, uint32_t portno, uint32_t flags);

/*
 * xseg_leave_port - unbind a port this process bound; its queued requests
 * fail back to their clients (ECONNRESET, signaled), the requests it held go
 * back to the free list, replies queued to it are freed. Returns 0, -EINVAL,
 * -EPERM (not bound by us), -EIO (not settled: every hold record was busy
 * and the lease stayed taken for 5 s; the port stays RECOVERING by this
 * process, which can neither retry nor rebind it, and a recovery settles it
 * after this process has exited). Domains: user, kernel, node. May block: it settles the
 * port itself (marks it RECOVERING) without the lease, except when every
 * hold record of the port is busy; then it yields on the lease for up to
 * 5 s. Runs the driver's unbind first. Requests of this port still with the
 * caller must not be used after it.
 */
int xseg_leave_port(struct xseg *xs, uint32_t portno);

/*
 * xseg_port - the shared port struct, if @portno is valid (else NULL). Its
 * fields are written by other peers: read, do not trust. Any domain; never
 * sleeps.
 */
struct xseg_port *xseg_port(struct xseg *xs, uint32_t portno);

/*
 * xseg_port_depths - how many requests are queued to @portno and how many
 * replies wait for it (a snapshot), through the queues validated at join.
 * 0 or -EINVAL. Any domain; never sleeps.
 */
int xseg_port_depths(struct xseg *xs, uint32_t portno, uint32_t *requests, uint32_t *replies);

/*
 * The peer-type table (docs/segment.md, "Peer types"): peer_types= entries
 * (16 unless the spec says), each free or naming one peer type (a driver);
 * a port's peer_type is an index into it. xseg_peer_type_count() is the
 * entry count validated at join. xseg_peer_type_name() copies entry @i's
 * name into @name (at most @len bytes, NUL-terminated; XSEG_TYPE_LEN is
 * enough): 0, -ENOENT (the entry is free or being named), -ERANGE (@i is
 * past the count: a corrupt port's index lands here), -EBADMSG (a named
 * entry whose name is empty or has a byte that is not printable ASCII
 * without blanks: a corrupt table; @name is left empty), -EINVAL. The only way
 * to read the table: it is shared, so every name is copied and terminated.
 * Any domain; never sleep.
 */
uint32_t xseg_peer_type_count(const struct xseg *xs);
int xseg_peer_type_name(struct xseg *xs, uint32_t i, char *name, size_t len);

/*
 * xseg_set_redirect - requests submitted to @portno go to @to (XSEG_NO_PORT:
 * none). 0, or -EINVAL (out of range, or @to == @portno). An admin call: any
 * process joined may set it, whether or not it bound the port. Any domain;
 * one store, never sleeps.
 */
int xseg_set_redirect(struct xseg *xs, uint32_t portno, uint32_t to);

/*
 * Per-port quotas (docs/segment.md): a port may hold at most max_requests
 * requests at once (from get_request until they are freed) and
 * max_buffer bytes of buffer chunks on them; 0 is unlimited. Past either,
 * xseg_get_request fails with errno EDQUOT and xseg_prep_request with
 * -EDQUOT. Every bind starts with the segment's defaults (spec keys
 * quota_requests=, quota_buffer=) and no usage.
 */
struct xseg_quota {
	uint32_t max_requests, requests;	/* limit (0: none) and requests held now */
	uint64_t max_buffer, buffer;		/* limit in bytes (0: none) and bytes held now */
};

/*
 * xseg_set_port_quota - set the limits of @portno, which this process bound
 * (right after xseg_bind_port, before its first request, to override the
 * segment's defaults). Lowering a limit under the usage takes nothing back:
 * the port just gets no more until it is under. 0, -EINVAL, -EPERM (not
 * ours). Any domain; never sleeps.
 */
int xseg_set_port_quota(struct xseg *xs, uint32_t portno, uint32_t max_requests,
			uint64_t max_buffer);

/*
 * xseg_port_quota - the limits and usage of @portno (usage 0 unless it is
 * bound), a snapshot of values peers write. 0 or -EINVAL. Any domain.
 */
int xseg_port_quota(struct xseg *xs, uint32_t portno, struct xseg_quota *q);

/* --------------------------------------------------------------- requests */

/*
 * xseg_get_request - take a free request for the client port @src (bound by
 * this process). Returns it (life PREPARED, no buffer) or NULL with errno
 * EAGAIN when none is free (or every hold record of the port is in use by
 * the process's other threads); errno EPERM if @src is not bound by us.
 * Then xseg_prep_request(), submit; xseg_put_request() gives it back.
 * Any domain; never sleeps (a dequeue from the free list).
 */
struct xseg_request *xseg_get_request(struct xseg *xs, uint32_t src);

/*
 * xseg_prep_request - set the target name (@tlen bytes, at most
 * XSEG_TARGET_MAX) and give the request a data buffer of @datalen bytes from
 * the smallest buffer class that fits. -E2BIG if no class is that large,
 * -ENOBUFS if every chunk of the fitting classes is in use, -ENAMETOOLONG
 * for @tlen, -EPERM if @req is not a PREPARED request of ours. A buffer it
 * has is kept if it fits, else released first. After get_request (or receive, to resubmit); before
 * submit. Any domain; never sleeps (a dequeue from a buffer class pool).
 */
int xseg_prep_request(struct xseg *xs, struct xseg_request *req,
		      const char *target, uint32_t tlen, uint64_t datalen);

/*
 * The request's target (not NUL-terminated; target_len bytes) and data, or
 * NULL if out of range. Any domain; never sleep. A server should prefer
 * xseg_req_buffer(), whose range a hostile client cannot move.
 */
char *xseg_req_target(struct xseg *xs, struct xseg_request *req);
void *xseg_req_data(struct xseg *xs, struct xseg_request *req);

/*
 * xseg_req_buffer - the request's data chunk and, in *@capacity, the chunk's
 * size, both from one read of the request's buffer index: a server may use
 * [data, data + capacity) whatever a hostile client later writes to
 * data_len or buf_index (the range always lies inside the segment's buffer
 * area). NULL and capacity 0 without a buffer. Any domain; never sleeps.
 */
void *xseg_req_buffer(struct xseg *xs, struct xseg_request *req, uint64_t *capacity);

/*
 * xseg_submit - queue a prepared request to @dst, or to the port @dst's
 * redirect names at this moment (read once, inside the call). Returns the
 * port it was queued to (>= 0): the caller signals THAT port
 * (xseg_signal(xs, returned)), never @dst, which a concurrent
 * xseg_set_redirect may make a different one; or use xseg_submit_signal().
 * -ENOENT if no live peer has bound the port, -EPERM if it was bound without
 * XSEG_PORT_ACCEPT (or @req is not ours/prepared), -EAGAIN if its queue is
 * full. After prep_request; then signal, and later xseg_receive().
 * Does not sleep; any domain.
 */
int xseg_submit(struct xseg *xs, struct xseg_request *req, uint32_t dst);

/*
 * xseg_submit_signal - xseg_submit() and then xseg_signal() of the port the
 * request was queued to. Returns that port (>= 0; the request is queued even
 * if the signal failed, e.g. -ENOTSUP for a peer type this process has no
 * driver for) or xseg_submit's -errno (not queued; the request is still
 * ours). Never blocks (the driver's signal is a futex wake, a FIFO or
 * eventfd write, or a kill); any domain.
 */
int xseg_submit_signal(struct xseg *xs, struct xseg_request *req, uint32_t dst);

/*
 * xseg_accept - take the oldest request queued to @portno (bound by this
 * process). Returns NULL with errno EAGAIN when there is none; a request
 * left in the queue in another state is dropped as corrupt, not returned.
 * Then serve it and xseg_respond()/xseg_fail()/xseg_forward() it. Any
 * domain; never sleeps: to wait for one, see xseg_wait().
 */
struct xseg_request *xseg_accept(struct xseg *xs, uint32_t portno);

/*
 * xseg_respond - send an accepted request back along its return path (to the
 * forwarding peer or to its client). Set req->state's XS_SERVED or
 * XS_FAILED (with req->error) first, or use xseg_fail(). The caller then
 * signals the port it went to (returned, >= 0). If the client is gone
 * (its port free or rebound) or its reply queue is full (corrupt), the
 * request is freed instead and 0 is returned (not the server's error).
 * -EPERM if @req is not an accepted request of ours, -EAGAIN if every hold
 * record of the port is in use by the process's other threads. The request
 * must not be touched after success. Any domain; never sleeps.
 */
int xseg_respond(struct xseg *xs, struct xseg_request *req);

/*
 * xseg_fail - mark @req failed with @error (positive errno) and respond.
 * Returns what xseg_respond() returns; same context.
 */
int xseg_fail(struct xseg *xs, struct xseg_request *req, int error);

/*
 * xseg_forward - pass an accepted request on to @dst, remembering this port
 * in its return path so that @dst's reply comes back here first. Returns the
 * port it went to (signal it); -ENOSPC if the path is full (the segment's
 * max_hops=, 4 by default), else what xseg_submit() returns. @req must be accepted on @via. Any domain; never
 * sleeps.
 */
int xseg_forward(struct xseg *xs, struct xseg_request *req, uint32_t via, uint32_t dst);

/*
 * xseg_pass - pass an accepted request on to @dst with no return hop: its
 * reply goes where it would have gone had @via answered it (the previous
 * forwarding hop, else the client), never back to @via. @via's hold ends as
 * with xseg_respond(): it must not touch the request after success. Quotas
 * stay charged to the client and the return path (max_hops) does not grow;
 * @via's port counts it as responded (it is done with it, so accepted minus
 * responded is still what the port has in hand). If @dst dies, recovery fails the request back to that same place. Returns
 * the port it went to (signal it), -EPERM if @req is not accepted on @via
 * (a port of this process), else what xseg_submit() returns (then it is
 * still @via's). Any domain; never sleeps.
 */
int xseg_pass(struct xseg *xs, struct xseg_request *req, uint32_t via, uint32_t dst);

/*
 * xseg_readdress - point a request accepted on a port of ours at @target
 * (@tlen bytes), @offset and @flags for the next hop, keeping the target,
 * offset and flags it has now inside the request: the core puts them back
 * when the reply goes on past this hop (to the hop before it or the client,
 * from xseg_respond() or from recovery), so whoever sent the request sees
 * it as it sent it. Meant for xseg_pass(); with xseg_forward() this hop
 * still sees the rewritten fields on the way back. The size is not kept.
 * Sets XF_READDRESSED in req->flags. 0; -EPERM if @req is not accepted by a
 * port of ours; -EBUSY if it was readdressed already (once per request);
 * -ENOSPC if both targets do not fit in the request's XSEG_TARGET_MAX bytes
 * with the kept fields (16 bytes). Any domain; never sleeps.
 */
int xseg_readdress(struct xseg *xs, struct xseg_request *req, const char *target, uint32_t tlen,
		   uint64_t offset, uint32_t flags);

/*
 * xseg_receive - take the oldest reply queued to client port @portno. A reply
 * for a request submitted by an earlier owner of the port is recycled, not
 * returned. NULL with errno EAGAIN when there is none. Then read the result
 * and xseg_put_request() it (or prep and submit it again). Any domain;
 * never sleeps: to wait for one, see xseg_wait().
 */
struct xseg_request *xseg_receive(struct xseg *xs, uint32_t portno);

/*
 * xseg_put_request - give a request (and its buffer) back to the free lists.
 * 0, -EINVAL if @req is not in the table, or -EPERM if it is not ours to
 * give (not held by a port of this process, or in a queue). Any domain; never sleeps.
 */
int xseg_put_request(struct xseg *xs, struct xseg_request *req);

/*
 * Index <-> pointer, validated: NULL / -EINVAL when out of the table; op
 * names ("read", ...) <-> X_* codes (NULL / -EINVAL when unknown). Any
 * domain; pure, never sleep.
 */
struct xseg_request *xseg_request_at(struct xseg *xs, uint32_t index);
int xseg_request_index(struct xseg *xs, const struct xseg_request *req);

const char *xseg_op_name(uint32_t op);
int xseg_op_from_name(const char *name);

/* -------------------------------------------------------------- signaling */

/*
 * xseg_signal - wake the peer bound to @portno, with the driver of that
 * port's peer type. Never blocks. -ENOENT if nobody has bound it, -ENOTSUP if
 * this process has no driver of that type. Call it after submit, respond,
 * forward, with the port they returned. Any domain.
 */
int xseg_signal(struct xseg *xs, uint32_t portno);

/*
 * The race-free sleep: prepare_wait(port) -> check the queues -> either
 * cancel_wait(port) (work found) or wait_signal(port, timeout). A signal that
 * arrives after prepare_wait is not lost. wait_signal returns 0 when
 * signaled, -ETIMEDOUT, or -EINTR. Only on a port this process bound.
 * -EPERM on a port this process has not bound, -ENOTSUP if its driver
 * cannot wait. prepare_wait and cancel_wait never sleep; wait_signal SLEEPS,
 * up to @timeout_us (the driver's futex wait, poll or sigtimedwait; in the
 * kernel, the segdev driver's waitqueue). Any domain. In the kernel a
 * handle's port has one prepared wait at a time (one waiting thread per
 * port), a callback peer's ports cannot wait (-EINVAL), and kthread_stop()
 * ends a kernel thread's wait with -EINTR.
 */
int xseg_prepare_wait(struct xseg *xs, uint32_t portno);
int xseg_cancel_wait(struct xseg *xs, uint32_t portno);
int xseg_wait_signal(struct xseg *xs, uint32_t portno, uint64_t timeout_us);

/*
 * A thread may have waits prepared on any number of its ports (on several
 * handles too). xseg_wait_signal_any sleeps on @n of them at once: each of
 * @ports must have been prepared by this thread (-EINVAL otherwise, and
 * nothing is ended); it sleeps until a signal lands on any of them or
 * @timeout_us passes, and ends all @n waits. Returns 0 (signaled, possibly
 * spuriously), -ETIMEDOUT, -EINTR, or -EPERM/-ENOTSUP as wait_signal.
 * SLEEPS up to @timeout_us. Any domain (the kernel: see above).
 */
int xseg_wait_signal_any(struct xseg *xs, const uint32_t *ports, uint32_t n,
			 uint64_t timeout_us);

/*
 * xseg_wait - the adaptive wait: poll @portno's request and reply queues for
 * up to the handle's spin time (xseg_set_spin_us, default XSEG_SPIN_US_DEFAULT)
 * and then sleep through the driver until signaled or @timeout_us passes.
 * Returns 1 if work is queued, 0 on timeout, or a negative errno. SLEEPS up
 * to @timeout_us (after spinning up to spin_us). Any domain (a kernel
 * callback peer gets -EINVAL after the spin: its wakeup serves it).
 * xseg_set_spin_us sets the handle's spin (0: never
 * spin) and never sleeps.
 */
int xseg_wait(struct xseg *xs, uint32_t portno, uint64_t timeout_us);

/*
 * xseg_wait_any - xseg_wait on @n ports of this process at once (a peer that
 * serves several): polls all their queues for the spin time, then prepares
 * a wait on each, re-checks, and sleeps until a signal to any of them or
 * @timeout_us. Returns 1 if work is queued to any of them, 0 on timeout, or
 * a negative errno (-EINVAL for n == 0, -EPERM for a port not ours). SLEEPS
 * up to @timeout_us; any domain. Allocates only for n > 16 (8 in the kernel).
 */
int xseg_wait_any(struct xseg *xs, const uint32_t *ports, uint32_t n, uint64_t timeout_us);
void xseg_set_spin_us(struct xseg *xs, uint32_t spin_us);
#define XSEG_SPIN_US_DEFAULT 20u

/*
 * xseg_poll_fd - a file descriptor an event loop can poll for @portno, or
 * -ENOTSUP (drivers without one: futex, posix; posixfd and segdev have one),
 * -EPERM if the port is not ours. User and node domains; never sleeps.
 * After bind; the fd belongs to the driver (do not close it).
 */
int xseg_poll_fd(struct xseg *xs, uint32_t portno);

/* ---------------------------------------------------------------- recovery */

struct xseg_recovery_stats {
	uint32_t ports_freed;		/* dead owners whose ports were freed */
	uint32_t requests_failed;	/* in-flight requests failed back to live clients */
	uint32_t requests_freed;	/* orphaned requests returned to the free list */
	uint32_t buffers_freed;		/* orphaned buffer chunks returned */
	uint32_t holds_settled;		/* queue operations a dead peer left half done */
	uint32_t lease_busy;		/* 1: another live recoverer holds the lease, so the
					 * shared sweeps (see below) were left to it */
};

/*
 * xseg_recover - find ports whose owner is dead (pid + start time; zombies
 * are dead), fail their in-flight requests back to live clients with
 * ECONNRESET, return orphaned requests and buffers, reset queues whose
 * counters are corrupt, and free the ports. Each dead port is claimed by a
 * CAS on its owner word, so concurrent recoverers settle different ports and
 * none waits for another (a stopped one included). The shared sweeps (what a
 * dead recoverer left, requests queued to free ports, indices stranded in
 * the free lists) need the recovery lease: if a live process holds it they
 * are left to it and st->lease_busy is set. Idempotent. Returns 0, or
 * -EALREADY when a dead port could not be settled now (every hold record of
 * it was busy and the lease stayed taken for 5 s: retry). May spin-wait
 * (yield) but never sleeps on a signal. @st may be NULL. Domains: user,
 * kernel, node; reads /proc for liveness (user). Blocks only in that lease
 * wait (up to 5 s per such port); otherwise its work is bounded by the
 * segment's size. Peers call it about once a second when idle.
 */
int xseg_recover(struct xseg *xs, struct xseg_recovery_stats *st);

/* ------------------------------------------------------------------ growth */

struct xseg_grow_status {
	uint32_t live_requests;		/* requests circulating now */
	uint32_t live_chunks;		/* default-class chunks circulating now */
	uint32_t max_requests;		/* the reserve (max_requests=, else nr_requests) */
	uint32_t target;		/* live, or the target of a shrink still in progress */
	uint32_t added;			/* requests and chunks this call added */
	uint32_t held;			/* shrink: requests and chunks above the target still held */
	uint64_t bytes_released;	/* shrink: memory this call gave back to the system */
};

/*
 * xseg_grow - make @nr_requests requests (and as many default-class buffer
 * chunks) live in a growable segment (spec key max_requests=): growing adds
 * them to the free lists, one at a time; every peer uses them at once
 * (nothing moves, nobody remaps). Shrinking parks the requests and chunks
 * above @nr_requests as they come back free and gives their memory back
 * when none is held; while some still are it returns -EBUSY with st->held
 * (nothing waits: call again to continue; growing is refused while a shrink
 * is pending). Under the recovery lease: a grower or shrinker killed at any
 * point leaves at most one index in a recovery hold, which the next
 * xseg_grow or xseg_recover settles (no index lost or duplicated); growth
 * then continues from the live count. Returns 0 (live == @nr_requests),
 * -EINVAL (@nr_requests 0), -ERANGE (above max_requests), -EALREADY (a live
 * process holds the lease: a recovery or another grow; retry), -EBUSY (see
 * above), -EIO (a queue refused an index: corrupt). @st may be NULL; it is
 * filled on every return but -EINVAL. Domains: user, node (the kernel links
 * it, but segdev segments cannot be growable). Bounded work: the reserve's
 * size; reads /proc for the lease holder's liveness (user).
 */
int xseg_grow(struct xseg *xs, uint32_t nr_requests, struct xseg_grow_status *st);

/*
 * xseg_max_requests - the request index bound: max_requests= of a growable
 * segment (every request index a peer can meet is below it), else
 * nr_requests. Size per-request tables with it. Any domain; never blocks.
 */
uint32_t xseg_max_requests(struct xseg *xs);

/* xseg_grow_status - live, reserved and target counts (no lease, read only). 0 or -EINVAL. */
int xseg_grow_status(struct xseg *xs, struct xseg_grow_status *st);

/*
 * xseg_reset_port - reset the queues of port @portno whose head/tail
 * counters a peer corrupted (xseg_verify reports them; a port in that state
 * gets no requests or replies), as a bind or recovery of the port would:
 * every request found in them is failed back to its live client with
 * ECONNRESET (a reply in the reply queue is freed: its client, even a live
 * one, gets no reply for it), and the queues start empty. Returns the
 * number of queues reset (1 or 2), 0 if both are in order (nothing done),
 * -EINVAL (bad port or flags), -EBUSY (a live process owns the port and
 * @flags lacks XSEG_RESET_FORCE), -EAGAIN (the port is being bound or
 * recovered by a live process, which resets it itself), -EALREADY (the
 * recovery lease stayed taken for 5 s). A free port is claimed for the
 * reset and freed again; a dead owner's port is recovered and freed.
 * With XSEG_RESET_FORCE a live owner's queues are reset under it: it may
 * take a request in the same moment (then it serves it and the reset does
 * not fail it back: one of the two, never both), and a request submitted to
 * the port while the reset runs can be lost from its queue (its client gets
 * no reply; xseg-tool requests lists it as submitted). Stop the port's
 * clients first if you can. @st (may be NULL) counts what was settled.
 */
#define XSEG_RESET_FORCE	(1u << 0)
int xseg_reset_port(struct xseg *xs, uint32_t portno, uint32_t flags, struct xseg_recovery_stats *st);

/*
 * xseg_verify - check a segment's consistency without changing it: header,
 * region table, ports, requests, queues. Writes one line per problem to @out
 * (if not NULL) and returns the number of problems. Any domain; reads only,
 * never sleeps (its time grows with the segment). A snapshot: run it on a
 * quiet segment, or expect in-flight moves to show.
 */
int xseg_verify(struct xseg *xs, void (*out)(void *arg, const char *line), void *arg);

/* ---------------------------------------------------- drivers and types */

/*
 * One wait a thread prepared on one of its ports, as the core keeps it for
 * the driver's arm, sleep and disarm callbacks. @note and @flags are the
 * driver's (0 before arm).
 */
struct xseg_armed {
	uint32_t portno;
	uint32_t flags;			/* set by sleep() for disarm() */
	uint64_t note;			/* set by arm(): what it stored or read */
};

/*
 * A segment's identity, for drivers that make things per segment (the
 * posixfd driver's FIFO directory): @type the segment type's name, @name the
 * name this process knows it by (for memfd a descriptor number, different
 * in each process), @id a 64-bit number the same in every process and
 * different for every segment created (derived from the header's creator
 * pid and creation time, so a segment recreated under the same name
 * has another). See xseg_seg_ident().
 */
struct xseg_seg_ident {
	const char *type;
	const char *name;
	uint64_t id;
};

/*
 * A signaling driver (peer type). Defined with XSEG_DRIVER(name) (below) in
 * the domain's driver folder and listed in the domain's built-ins, or loaded
 * as xseg_<name>.so exporting `xseg_driver_<name>` (XSEG_DRIVER defines that
 * symbol), or registered by a kernel module at load. Fields are only ever
 * appended; abi_size tells how many the driver knows. Callbacks that are
 * NULL get the core's defaults.
 */
struct xseg_driver_ops {
	uint32_t abi_size;
	uint32_t version;
	const char *name;
	/* A process joins: set up per-process state in *priv. */
	int (*join)(struct xseg *xs, void **priv);
	void (*leave)(struct xseg *xs, void *priv);
	/* This process binds/unbinds a port of this driver's type. */
	int (*bind)(struct xseg *xs, void *priv, uint32_t portno);
	void (*unbind)(struct xseg *xs, void *priv, uint32_t portno);
	/* Wake the port (bound by any process, of this driver's type). */
	int (*signal)(struct xseg *xs, void *priv, uint32_t portno);
	/*
	 * The slots of version 1's prepare_wait, cancel_wait and wait_signal,
	 * with which each driver kept the waits its threads prepared. The core
	 * keeps them now (arm, sleep and disarm below): a driver that fills
	 * these slots is refused at registration (-EINVAL).
	 */
	void *retired_wait[3];
	int (*poll_fd)(struct xseg *xs, void *priv, uint32_t portno);
	/* The segment @segname is being destroyed: remove what the driver made for it. */
	void (*destroy)(const char *segname);
	/*
	 * Waiting (appended). The core (xseg/signal.c) keeps the waits each
	 * thread prepared, on any number of its ports, and calls these for
	 * them, always from the thread that prepared them; every arm is ended
	 * by exactly one disarm. All three are set, or none (the driver cannot
	 * wait: xseg_wait_signal gives -ENOTSUP).
	 *   arm      announce the calling thread as a waiter of @w->portno (a
	 *            port this process bound) in its signal area, then a full
	 *            fence (the waiter's half of the race-free sleep). May note
	 *            what it stored or read in @w->note.
	 *   sleep    until a signal lands on one of the @n armed waits @w (all
	 *            ports of @xs) or @timeout_us passes (0: poll, UINT64_MAX:
	 *            forever): 0 (maybe signaled), -ETIMEDOUT, -EINTR or -errno.
	 *            The waits stay armed; it may set bits in @w[i].flags for
	 *            disarm (for instance "woke on this one").
	 *   disarm   withdraw the announcement and take what a signal to it
	 *            left (a pending SIGIO, FIFO bytes): 1 if a signal landed on
	 *            it since arm, else 0. Never sleeps.
	 */
	int (*arm)(struct xseg *xs, void *priv, struct xseg_armed *w);
	int (*sleep)(struct xseg *xs, void *priv, struct xseg_armed *w, uint32_t n,
		     uint64_t timeout_us);
	int (*disarm)(struct xseg *xs, void *priv, struct xseg_armed *w);
	/*
	 * Appended: the segment @id is being destroyed (it replaces destroy,
	 * which is not called for a driver that has this one). Key what the
	 * driver makes per segment by @id->type and @id->id, never by the name
	 * alone: names of different types collide (posix:5, memfd:5, sysv:5)
	 * and a memfd's name is a descriptor number of one process.
	 */
	void (*destroy_ident)(const struct xseg_seg_ident *id);
};

/*
 * XSEG_CREATE_HUGE - set in the @mode the core passes to a segment type's
 * create() when the config asks for huge=1: back the segment with 2 MiB huge
 * pages (@size is then a multiple of XSEG_HUGE_PAGE), or fail saying why. A
 * type that cannot must refuse it (the core asks only posix and memfd).
 */
#define XSEG_CREATE_HUGE	(1u << 30)

/*
 * XSEG_CREATE_SPARSE - set in create()'s @mode for a growable segment
 * (max_requests=) of a type that stores it in a file or shm object (posix,
 * file, memfd): size the object but do not allocate its storage; the core
 * allocates the live ranges itself (xseg_sys_populate) and growth the rest
 * as it makes it live, so the reserve costs nothing. Types that allocate
 * lazily anyway never see it.
 */
#define XSEG_CREATE_SPARSE	(1u << 29)

/*
 * A segment type: how memory is obtained. @size is the layout size;
 * map() returns the mapping and its size, after checking owner and mode.
 */
struct xseg_segtype_ops {
	uint32_t abi_size;
	uint32_t version;
	const char *name;
	int (*create)(const char *name, uint64_t size, uint32_t mode, int32_t gid,
		      void **mem, char *err, size_t errlen);
	int (*map)(const char *name, void **mem, uint64_t *size, char *err, size_t errlen);
	void (*unmap)(void *mem, uint64_t size);
	int (*destroy)(const char *name);
	/* Optional: list the segments of this type (name per call), for `xseg list`. */
	int (*list)(void (*fn)(void *arg, const char *name), void *arg);
	/*
	 * Optional (appended; abi_size tells whether a type has it): remove the
	 * name @name only if it is provably the segment @check accepts. The type
	 * opens the object without following links and without opening anything
	 * but a regular file, maps it through that one open file and calls
	 * @check(mem, size, owner_uid, arg, err, errlen) with owner_uid the
	 * object's real owner; it removes the name only if @check returned 0 and
	 * only if the name still refers to the object it checked, and then calls
	 * @commit(mem, uid, gid, mode, arg) (the core marks it destroyed). Returns 0,
	 * @check's error or a negative errno, with a message in @err. Types
	 * without names in a file system (heap, segdev) leave it NULL: the core
	 * then checks through map() and calls destroy().
	 */
	int (*destroy_checked)(const char *name,
			       int (*check)(void *mem, uint64_t size, uint32_t owner_uid, void *arg,
					    char *err, size_t errlen),
			       void (*commit)(void *mem, uint32_t uid, uint32_t gid, uint32_t mode,
					      void *arg),
			       void *arg, char *err, size_t errlen);
	/*
	 * Optional (appended): give the object @name owner @uid, group @gid and
	 * mode @mode (each (uint32_t)-1: unchanged) only if @check accepts it,
	 * opened and mapped as destroy_checked() does; fchown/fchmod on that
	 * open file, then @commit(mem, uid, gid, mode, arg) with the file's new
	 * owner, group and mode. Returns 0, @check's error or a negative errno.
	 */
	int (*set_owner_checked)(const char *name,
				 int (*check)(void *mem, uint64_t size, uint32_t owner_uid,
					      void *arg, char *err, size_t errlen),
				 void (*commit)(void *mem, uint32_t uid, uint32_t gid,
						uint32_t mode, void *arg),
				 void *arg, uint32_t uid, uint32_t gid, uint32_t mode,
				 char *err, size_t errlen);
	/* Optional (appended): the real owner, group and permission bits of @name. */
	int (*owner)(const char *name, uint32_t *uid, uint32_t *gid, uint32_t *mode);
};

/*
 * XSEG_DRIVER(name), XSEG_SEGTYPE(name) - define a driver or a segment type
 * under the one symbol the core knows it by, xseg_driver_<name> or
 * xseg_segtype_<name>; its .name must be "<name>":
 *
 *     XSEG_DRIVER(futex) = { .abi_size = sizeof(struct xseg_driver_ops), .name = "futex", ... };
 *
 * A built-in is then one line of its domain's list, sys/<domain>/builtins.h
 * (XSEG_BUILTIN_DRIVER(futex), XSEG_BUILTIN_SEGTYPE(posix)), which
 * xseg/registry.c registers before the first lookup; a driver outside the
 * list is found as xseg_<name>.so by that symbol (user domain), and a kernel
 * module registers its own at load with xseg_register_driver() and
 * xseg_register_segtype().
 */
#define XSEG_DRIVER(name)	const struct xseg_driver_ops xseg_driver_##name
#define XSEG_SEGTYPE(name)	const struct xseg_segtype_ops xseg_segtype_##name

/*
 * Registration: 0, -EEXIST (the name is taken), -ENOSPC (table full), -EINVAL.
 * find: the ops or NULL; find_driver may load xseg_<name>.so (user, node:
 * dlopen, file-system calls). Any domain; never sleep otherwise.
 */
int xseg_register_driver(const struct xseg_driver_ops *ops);
int xseg_register_segtype(const struct xseg_segtype_ops *ops);
/* Remove a registration (before a kernel module unloads); 0 or -ENOENT. */
int xseg_unregister_driver(const struct xseg_driver_ops *ops);
int xseg_unregister_segtype(const struct xseg_segtype_ops *ops);
const struct xseg_driver_ops *xseg_find_driver(const char *name);
const struct xseg_segtype_ops *xseg_find_segtype(const char *name);

/*
 * Driver helpers: the port's 64-byte signal area (NULL if @portno is out of
 * range) and the segment's name. Any domain; never sleep.
 */
void *xseg_port_signal_area(struct xseg *xs, uint32_t portno);
const char *xseg_segname(const struct xseg *xs);
/* The identity of the segment @xs (see struct xseg_seg_ident); strings live as long as @xs. */
void xseg_seg_ident(const struct xseg *xs, struct xseg_seg_ident *out);

#ifdef __cplusplus
}
#endif

#endif
