/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/xseg_layout.h - the shared-memory layout of an xseg segment.
 *
 * This is the memory every peer maps: C processes, kernel modules and Node.
 * Fixed-width fields, offsets from the segment start (never pointers), no
 * libc. Everything read from here is untrusted: the core copies values out
 * once and bounds-checks them before use (xseg/segment.c, xseg_verify()).
 *
 *   0            header (one page): identity, version, config, region table
 *   types_off    struct xseg_peer_type[nr_peer_types]  (peer_types=, 16 by default)
 *   ports_off    struct xseg_port[nr_ports]
 *   reqs_off     struct xseg_request[max_requests]   (every region sized for the maximum)
 *   gens_off     uint64_t gen[nr_indices]           (xq_track ownership words: claim count + tag)
 *   holds_off    struct xq_hold[nr_ports * XSEG_PORT_HOLDS + 3]  (+3: recovery)
 *   queues_off   xq: free requests; per port: request queue, reply queue;
 *                per buffer class: free chunks
 *   bufs_off     buffer chunks, class after class, page aligned
 *   extra_off    the users' extra area
 *
 * Index space: requests are indices 0 .. nr_requests-1; the chunks of buffer
 * class c are indices cls[c].first .. cls[c].first + cls[c].count - 1. One
 * xq_track (one ownership-word array, one hold table) covers all of them.
 * A growable segment (max_requests > nr_requests) lays everything out for
 * max_requests; the header's live words say how many circulate.
 */
#ifndef XSEG_LAYOUT_H
#define XSEG_LAYOUT_H

#include "../xq/xq_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XSEG_MAGIC		0x4745535847455358ull	/* "XSEGSEGX" */
#define XSEG_BYTE_ORDER		0x01020304u
#define XSEG_VERSION_MAJOR	4u	/* 2: gen[] words are xq ownership words (claim count + tag);
					 * 3: request and port fields grouped by cache line;
					 * 4: the peer-type table is a region sized by peer_types=;
					 *    growable segments (cfg.max_requests, header live/retire words);
					 *    its queues are xq layout 2 (slot of position p is p mod nslots) */
#define XSEG_VERSION_MINOR	0u
#define XSEG_HEADER_SIZE	4096u

#define XSEG_TYPE_LEN		16u	/* segment type and peer type names, with NUL */
#define XSEG_NAME_LEN		128u	/* segment name, with NUL */
#define XSEG_PEER_TYPES_DEFAULT	16u	/* peer_types= when the spec says nothing */
#define XSEG_PEER_TYPES_MAX	128u	/* peer_types= at most */
#define XSEG_MAX_BUF_CLASSES	4u
#define XSEG_PORT_HOLDS		8u	/* concurrent queue operations per port */
#define XSEG_TARGET_MAX		256u	/* target name bytes, inline in the request */
#define XSEG_PATH_MAX		16u	/* forwarding hops a request can remember (inline) */
#define XSEG_PATH_DEFAULT	4u	/* max_hops= when the spec says nothing */
#define XSEG_SIGNAL_AREA	64u	/* per port, owned by the port's driver */
#define XSEG_LAT_BUCKETS	32u	/* latency histogram: bucket b counts [2^b, 2^(b+1)) us */
#define XSEG_NO_PORT		0xFFFFFFFFu
#define XSEG_MAX_PEERS		128u	/* processes joined at once */
#define XSEG_MAX_TYPE_QUOTAS	4u	/* quota_types= entries: per-peer-type quota defaults */

/* Header flags. */
#define XSEG_F_AUTORM		(1ull << 0)	/* destroy when the last peer leaves */
#define XSEG_F_DESTROYED	(1ull << 1)	/* marked for destroy: joins refused */

struct xseg_buf_class {
	uint64_t size;		/* bytes per chunk, a multiple of the page size */
	uint32_t count;		/* chunks */
	uint32_t first;		/* first index of the class in the index space */
	uint64_t data_off;	/* segment offset of chunk 0 */
	uint64_t queue_off;	/* segment offset of the free-chunk xq */
};

/* The configuration, as parsed from a spec string (see xseg_parse_spec). */
struct xseg_config {
	char type[XSEG_TYPE_LEN];	/* segment type: posix, file, heap, segdev */
	char name[XSEG_NAME_LEN];	/* segment name (a path for type file) */
	uint32_t nr_ports;
	uint32_t dynports;		/* ports >= dynports are dynamic */
	uint32_t nr_requests;
	uint32_t page_shift;
	uint64_t request_size;		/* chunk size of the default buffer class */
	uint64_t extra_size;
	uint32_t mode;			/* final permission bits, e.g. 0600 */
	int32_t gid;			/* group to give the segment, or -1 */
	uint32_t autorm;		/* 0 or 1 */
	uint32_t nr_classes;		/* extra buffer classes from buffers= */
	struct { uint64_t size; uint32_t count; uint32_t pad; } classes[XSEG_MAX_BUF_CLASSES - 1];
	/* Per-port quotas every bind starts with (0: unlimited); see struct xseg_port. */
	uint32_t quota_requests;	/* requests a port may hold at once */
	uint32_t huge;			/* 0 or 1: backed by 2 MiB huge pages (posix, memfd) */
	uint64_t quota_buffer;		/* bytes of buffer chunks its requests may hold */
	/*
	 * Per-peer-type defaults (quota_types=): a port bound by a process of
	 * that peer type starts with these instead of the two above. Entries
	 * past nr_type_quotas are zero; names are NUL-terminated.
	 */
	uint32_t nr_type_quotas;
	uint32_t max_hops;		/* forwarding hops per request, 1..XSEG_PATH_MAX (0: 4) */
	struct xseg_type_quota {
		char type[XSEG_TYPE_LEN];	/* a peer type (driver) name */
		uint32_t requests;		/* as quota_requests, 0 unlimited */
		uint32_t pad;
		uint64_t buffer;		/* as quota_buffer, 0 unlimited */
	} type_quotas[XSEG_MAX_TYPE_QUOTAS];
	uint32_t peer_types;		/* entries of the peer-type table, 1..XSEG_PEER_TYPES_MAX (0: 16) */
	uint32_t cfg_pad;
	/*
	 * Growth (xseg/grow.c): the layout reserves max_requests requests and
	 * default-class chunks (0: nr_requests, no growth); nr_requests of
	 * them are live at create. See docs/segment.md, "Growing a segment".
	 */
	uint32_t max_requests;
	uint32_t grow_pad;
};

#define XSEG_HUGE_PAGE		(2ull << 20)	/* huge=1: the object is a multiple of it */

struct xseg_counters {
	uint64_t submitted;	/* requests this port submitted */
	uint64_t accepted;	/* requests this port accepted to serve */
	uint64_t responded;	/* replies this port sent */
	uint64_t received;	/* replies this port received */
	uint64_t failed;	/* replies this port received with the failed bit */
	uint64_t reclaimed;	/* requests recovery took back from this port */
};

struct xseg_header {
	uint64_t magic;
	uint32_t byte_order;
	uint16_t major, minor;
	uint64_t features;
	/* Sizes of the shared structs as the creator compiled them. */
	uint32_t header_size, port_size, request_size, hold_size;
	uint64_t size;			/* bytes of the whole segment */
	struct xseg_config cfg;
	/* Region table. */
	uint64_t ports_off, reqs_off, gens_off, holds_off, queues_off, bufs_off, extra_off;
	uint64_t free_queue_off;	/* xq of free request indices */
	uint64_t queue_size;		/* bytes of each port queue */
	uint32_t queue_cap;		/* capacity of every request/reply queue */
	uint32_t nr_indices;		/* requests + all chunks */
	uint32_t nr_holds;
	uint32_t nr_classes;		/* buffer classes, the default one included */
	struct xseg_buf_class cls[XSEG_MAX_BUF_CLASSES];
	uint64_t types_off;		/* the peer-type table, struct xseg_peer_type[nr_peer_types] */
	uint32_t nr_peer_types;		/* the config's peer_types (its default filled in) */
	uint32_t types_pad;
	/* Creator and lifetime. */
	uint32_t uid, gid, mode, creator_pid;
	uint64_t ctime_ns;		/* CLOCK_REALTIME at creation */
	uint64_t attached;		/* live peers joined now (atomic; recovery forgets dead ones) */
	uint64_t flags;			/* XSEG_F_* (atomic) */
	uint64_t serial;		/* request serials (atomic FAA) */
	uint64_t recovery;		/* recovery lease: pid | (start & 0xFFFFFFFF) << 32, or 0 (atomic) */
	uint64_t recoveries;		/* times recovery freed a dead port (atomic) */
	/* Joined processes: pid | start << 32... two words each, claimed by CAS on pid. */
	struct { uint64_t pid; uint64_t start; } peers[XSEG_MAX_PEERS];
	/*
	 * Growth (xseg/grow.c). The regions are laid out for cfg.max_requests;
	 * these words say how much of the reserve is in use. live: indices
	 * 0..live-1 of the kind circulate (requests; chunks of class c, counted
	 * from cls[c].first). retire: 0, or a shrink in progress: an index at
	 * or above it that comes back free is parked (kept out of every queue).
	 * Written only under the recovery lease (atomic); peers read them.
	 */
	uint64_t live_requests;
	uint64_t retire_requests;
	uint64_t live_chunks[XSEG_MAX_BUF_CLASSES];
	uint64_t retire_chunks[XSEG_MAX_BUF_CLASSES];
};

XSEG_STATIC_ASSERT(sizeof(struct xseg_header) <= XSEG_HEADER_SIZE,
		   "the header must fit the first page, which every peer maps first");

/*
 * A peer-type (driver) table entry, in the region at types_off: claimed by
 * CAS on the word (0 free -> 1 naming), then named and published (2 named).
 * A port's peer_type is an index into this table; only join and the tools
 * read it (a request round trip never does).
 */
struct xseg_peer_type {
	uint64_t word;			/* 0 free, 1 naming, 2 named (atomic) */
	char name[XSEG_TYPE_LEN];	/* NUL-terminated once named (untrusted: copy and terminate) */
	uint64_t spare;
};

XSEG_STATIC_ASSERT(sizeof(struct xseg_peer_type) == 32, "peer-type entries are 32 bytes in every domain");

/*
 * Port owner word, changed only by CAS:
 *   bits 0..31 pid, bits 32..61 generation, bits 62..63 state.
 * The generation changes on every bind, so a reused pid or a stale handle
 * never matches a live owner.
 */
#define XSEG_PORT_FREE		0ull
#define XSEG_PORT_BOUND		1ull
#define XSEG_PORT_RECOVERING	2ull	/* a recoverer is settling a dead owner */
#define XSEG_PORT_BINDING	3ull	/* a binder is filling in owner details */
#define XSEG_OWNER(st, gen, pid) (((uint64_t)(st) << 62) | (((uint64_t)(gen) & 0x3FFFFFFFull) << 32) | (uint32_t)(pid))
#define XSEG_OWNER_STATE(w)	((w) >> 62)
#define XSEG_OWNER_GEN(w)	((uint32_t)(((w) >> 32) & 0x3FFFFFFFull))
#define XSEG_OWNER_PID(w)	((uint32_t)(w))

/* Port flags. */
#define XSEG_PORT_ACCEPT	(1u << 0)	/* takes requests */
#define XSEG_PORT_RECEIVE	(1u << 1)	/* takes replies */
#define XSEG_PORT_NO_TIMING	(1u << 2)	/* takes no timestamps (see docs/segment.md) */
#define XSEG_PORT_SERVICE_TIMING (1u << 3)	/* as a server, stamps ts_accept and ts_respond */

/*
 * A port, 7 cache lines. Grouped by who writes: line 0 changes on bind and
 * admin calls only, so every peer that submits here keeps it cached; line 1
 * is the driver's (the owner arms, senders read it); line 2 and the
 * histogram are written by the owner only (counters, latency).
 */
struct xseg_port {
	/* line 0: read by every sender, written at bind */
	uint64_t owner;			/* XSEG_OWNER(...) (CAS) */
	uint64_t owner_start;		/* owner's process start time (domain ticks) */
	uint32_t owner_uid;
	uint32_t peer_type;		/* index into the peer-type table (types_off) */
	uint32_t flags;			/* XSEG_PORT_ACCEPT | _RECEIVE | _NO_TIMING | _SERVICE_TIMING */
	uint32_t redirect;		/* admin redirect: submits go here instead, or XSEG_NO_PORT */
	uint64_t rq_off;		/* request queue (xq) */
	uint64_t pq_off;		/* reply queue (xq) */
	/*
	 * Quota (xseg/quota.c): limits set at bind from the config, or by the
	 * owner (xseg_set_port_quota), 0 unlimited. Read-mostly, so on the
	 * senders' line; the usage words are on the owner's line below.
	 */
	uint32_t quota_requests;	/* requests held at once (get_request .. put) */
	uint32_t quota_pad;
	uint64_t quota_buffer;		/* bytes of buffer chunks its requests hold */
	/* line 1: the driver's */
	uint8_t signal[XSEG_SIGNAL_AREA];	/* the driver's (futex word, waiter id...) */
	/* line 2: the owner's counters */
	struct xseg_counters cnt;
	/*
	 * Quota usage: XSEG_USE(bind generation, amount), charged by the port's
	 * own calls and given back by whoever frees its requests (a word of an
	 * older generation is left alone: the port was rebound and started at 0).
	 */
	uint64_t use_requests;		/* XSEG_USE(gen, requests) (atomic) */
	uint64_t use_buffer;		/* XSEG_USE(gen, pages of buffer) (atomic) */
	/* lines 3..6 */
	uint64_t lat[XSEG_LAT_BUCKETS];	/* submit -> receive latency of its requests */
	/*
	 * line 7: the owner's byte counts, for rates (xseg top's MiB/s): the
	 * serviced bytes as the replies say (informative, like every counter).
	 * Written only by the port's owner, so no other CPU pulls the line.
	 */
	uint64_t bytes_responded;	/* serviced bytes of the replies this port sent */
	uint64_t bytes_received;	/* serviced bytes of the replies this port received */
	uint64_t spare7[6];
};

/* A usage word: the 30-bit bind generation above a 34-bit amount. */
#define XSEG_USE(gen, n)	((((uint64_t)(gen) & 0x3FFFFFFFull) << 34) | ((uint64_t)(n) & XSEG_USE_MAX))
#define XSEG_USE_MAX		0x3FFFFFFFFull
#define XSEG_USE_GEN(w)		((uint32_t)((w) >> 34))
#define XSEG_USE_N(w)		((w) & XSEG_USE_MAX)

XSEG_STATIC_ASSERT(sizeof(struct xseg_port) % 64 == 0,
		   "ports are cache-line multiples so neighbours do not share lines");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xseg_port, signal) == 64 &&
		   __builtin_offsetof(struct xseg_port, cnt) == 128 &&
		   __builtin_offsetof(struct xseg_port, lat) == 192 &&
		   __builtin_offsetof(struct xseg_port, bytes_responded) == 448 && sizeof(struct xseg_port) == 512,
		   "a port's lines: senders' line, driver's line, owner's lines");

/* Request state bits. */
#define XS_SERVED	(1u << 0)
#define XS_FAILED	(1u << 1)
/* Lifecycle (bits 8..15). */
#define XS_LIFE_SHIFT	8
#define XS_FREE		0u
#define XS_PREPARED	1u	/* held by its client */
#define XS_SUBMITTED	2u	/* in a request queue */
#define XS_ACCEPTED	3u	/* held by a server */
#define XS_RESPONDED	4u	/* in a reply queue */
#define XS_RECEIVED	5u	/* back with its client */
/*
 * Quota bits (xseg/quota.c): what the request is charged to its client's
 * quota. Set only when the port had a limit of that kind when it was taken,
 * so an unlimited port never touches its usage word; cleared when given back.
 */
#define XS_Q_REQUEST	(1u << 16)	/* one request charged (get_request .. free) */
#define XS_Q_BUFFER	(1u << 17)	/* its buffer chunk charged (prep .. release) */

/* Ops (the xseg family). */
enum xseg_op {
	X_PING = 0, X_READ, X_WRITE, X_SYNC, X_TRUNCATE, X_DELETE, X_INFO, X_COPY,
	X_CLONE, X_SNAPSHOT, X_ACQUIRE, X_RELEASE, X_OPEN, X_CLOSE, X_MAPR, X_MAPW,
	X_HASH, X_CREATE, X_RENAME, X_UPDATE, X_FLUSH, X_DISCARD, X_WRITE_ZEROES,
	X_COMMIT,	/* a durable barrier of a target (docs/peers.md); appended, never renumber */
	X_LIST,		/* the names of the objects with a prefix, in order (docs/peers.md); appended */
	X_OP_COUNT
};

/* Request flags. */
#define XF_FUA		(1u << 0)	/* durable before the reply */
#define XF_FLUSH	(1u << 1)	/* flush before serving */
#define XF_NOSYNC	(1u << 2)	/* no durability wanted */
#define XF_FORCE	(1u << 3)	/* ACQUIRE/RELEASE: take or drop a lock another owner holds */
#define XF_ZEROFILL	(1u << 4)	/* READ: zeroes past the object's end; serviced is the full size */
/* The core's own: a hop rewrote target/offset/flags (xseg_readdress); clients never set it. */
#define XF_READDRESSED	(1u << 31)

/*
 * Holder word: the port a request is with or heading to, with that port's
 * bind generation: the client while it prepares or reads the result, the
 * destination while queued to it, the server while serving, the port a reply
 * is heading to while queued. Recovery settles requests held by dead ports.
 */
#define XSEG_HOLDER(port, gen)	(((uint64_t)(port) << 32) | (uint32_t)(gen))
#define XSEG_HOLDER_NONE	0xFFFFFFFFFFFFFFFFull

/*
 * A request, 512 bytes. A round trip writes lines 0 and 1 only (both sides
 * touch them, so every other line a round trip touched would cross between
 * the client's and the server's CPU twice more); the target name and the
 * forwarding path follow.
 */
struct xseg_request {
	/* line 0 */
	uint64_t serial;		/* unique per get_request */
	uint64_t holder;		/* XSEG_HOLDER(port, port gen) or NONE */
	uint32_t op, flags;
	uint32_t state;			/* XS_SERVED/XS_FAILED | life << XS_LIFE_SHIFT */
	int32_t error;			/* errno of a failed reply (positive) */
	uint64_t offset, size, serviced;
	uint32_t src_port, src_gen;	/* the client and its bind generation */
	/* line 1 */
	uint32_t dst_port;		/* where it was submitted */
	uint32_t effective_dst;		/* after redirect */
	uint32_t transit_port;		/* the port holding it while forwarded */
	uint32_t path_len;
	uint32_t buf_index;		/* chunk index in the index space, or XSEG_NO_BUF */
	uint32_t target_len;
	uint64_t data_len;		/* bytes of the chunk in use */
	/*
	 * ns, domain monotonic clock; 0 when not taken: ts_submit by a client
	 * port not bound with XSEG_PORT_NO_TIMING, ts_accept and ts_respond by
	 * a server port bound with XSEG_PORT_SERVICE_TIMING.
	 */
	uint64_t ts_submit, ts_accept, ts_respond;
	uint64_t cookie;		/* the requester's */
	/* lines 2.. */
	char target[XSEG_TARGET_MAX];
	/* return path: XSEG_HOLDER(hop port, hop gen); the segment's max_hops are used */
	uint64_t path[XSEG_PATH_MAX];
};
#define XSEG_NO_BUF 0xFFFFFFFFu

XSEG_STATIC_ASSERT(sizeof(struct xseg_request) == 512,
		   "requests are 512 bytes in every domain");
XSEG_STATIC_ASSERT(__builtin_offsetof(struct xseg_request, dst_port) == 64 &&
		   __builtin_offsetof(struct xseg_request, cookie) == 120,
		   "the fields a round trip writes fill lines 0 and 1");

#ifdef __cplusplus
}
#endif

#endif
