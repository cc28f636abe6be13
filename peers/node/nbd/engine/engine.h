// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/engine.h - the NBD gateway's engine: its state and
// the functions its files share (docs/nbd.md, "The engine").
//
//   socket --read--> 28-byte headers parsed in a persistent buffer; WRITE
//   payloads copied (or read) straight into the requests' segment buffers
//   --> xseg_submit to the storage port (or its redirect), one signal per batch
//   port FIFO readable --> xseg_receive every reply --> 16-byte reply headers
//   and READ data straight from the segment buffers, one writev per batch
//   --> requests put back once written.
//
// One engine per gateway: it joined the segment with its own handle, owns
// one client port (its FIFO is polled here, not by a TypeScript Port), the
// listening sockets and every connection's descriptor (sockets.cc), and
// serves the transmission phase of any number of connections once
// TypeScript has run their handshake. Nothing is allocated per request once
// warm (commands come from a free list). Everything runs on the loop thread
// of the environment.
//
// Wake-ups: the engine's port is not XSEG_FD_ALWAYS. The loop announces
// itself as a waiter (xseg_prepare_wait) in a uv_prepare callback, right
// before it may block in epoll, looks at the reply queue once more, and ends
// the wait (xseg_cancel_wait) in a uv_check callback after epoll. So the
// storage peer writes a FIFO byte only for a reply that lands while the loop
// sleeps (or is about to); replies that come while the loop works, or while
// the engine spins for them (--spin-us), cost it no syscall and cost the
// gateway no wake-up and no drain.
//
// Events for TypeScript, fn(kind, id, text, fd), are queued while C state
// changes and delivered at the end of each callback: 'accept' (a new
// connection: fd is a dup for its handshake), 'fatal' (a protocol error:
// the connection is closed, text says why), 'end' (every reply is out after
// NBD_CMD_DISC, EOF or shutdown: the engine lingers until the client's EOF),
// 'closed' (it did), 'gone' (the socket failed), 'error' (a listener),
// 'debug' (a failed request).
//
// docs/nbd.md gives the rules: checks, errors, splitting into maxBuf chunks,
// back-pressure, the request timeout, and the log texts.
#ifndef XNODE_NBD_ENGINE_H
#define XNODE_NBD_ENGINE_H
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include <string>
#include <unordered_map>
#include <vector>
#include "sys/node/addon/addon.h"
#include "xseg/xseg_extents.h"

namespace xnode {
namespace nbd {

enum {
	NBD_CMD_READ = 0, NBD_CMD_WRITE = 1, NBD_CMD_DISC = 2, NBD_CMD_FLUSH = 3, NBD_CMD_TRIM = 4,
	NBD_CMD_CACHE = 5, NBD_CMD_WRITE_ZEROES = 6, NBD_CMD_BLOCK_STATUS = 7, NBD_CMD_RESIZE = 8,
};
enum { FLAG_FUA = 1, FLAG_NO_HOLE = 2, FLAG_REQ_ONE = 8, FLAG_FAST_ZERO = 16 };
// Structured replies (NBD_OPT_STRUCTURED_REPLY): one chunk per command, NBD_REPLY_FLAG_DONE.
enum {
	REPLY_TYPE_NONE = 0, REPLY_TYPE_OFFSET_DATA = 1, REPLY_TYPE_BLOCK_STATUS = 5,
	REPLY_TYPE_ERROR = 32769, REPLY_FLAG_DONE = 1,
};
const uint32_t STRUCTURED_REPLY_MAGIC = 0x668e33ef;
const uint32_t REP_MAX = 28;		// the longest reply header: OFFSET_DATA's chunk header and offset
enum {
	NBD_EPERM = 1, NBD_EIO = 5, NBD_ENOMEM = 12, NBD_EINVAL = 22, NBD_ENOSPC = 28,
	NBD_EOVERFLOW = 75, NBD_ENOTSUP = 95, NBD_ESHUTDOWN = 108,
};
const uint32_t REQUEST_MAGIC = 0x25609513;
const uint32_t SIMPLE_REPLY_MAGIC = 0x67446698;
const uint32_t REQ_SIZE = 28, REP_SIZE = 16;
const uint64_t MAX_DISCARD = 32u << 20;		// a refused WRITE's payload read and dropped
const size_t RBUF = 256u << 10;
// After a WRITE of BIG_WRITE bytes or more, the next read into the read buffer
// takes at most SMALL_READ bytes: the next command's header, and little of a
// big payload, which is then read straight into its segment buffer
// (conn_read) instead of being copied there from the read buffer.
const uint32_t BIG_WRITE = 64u << 10;
const size_t SMALL_READ = 4096;
const int IOV_CAP = 1024;
const uint32_t WARM_MAX = 16;		// warm requests kept at most (put_req)
const uint32_t DEFER_MIN = 8;		// unanswered commands of a connection that defer its input (socket.cc)

struct Conn;

// An NBD command in progress: one or more chunk requests to the storage port.
struct Cmd {
	Conn *conn;
	uint8_t handle[8];
	uint16_t type, flags;
	uint32_t op, xflags;
	uint64_t offset;
	uint32_t length, next, pending, error;
	bool zero_fill, done, is_read;
	uint64_t start_ms;			// uv_now() when its header came (the request timeout of a blocked command)
	std::vector<xseg_request *> reqs;	// READ: the chunks in order (NULL once put)
	uint8_t *copy;				// READ: its data copied out of the segment (a slow reader), or NULL
	uint64_t commit;			// READ: its bytes in the committed counts
	xseg_request *fill;			// WRITE: the chunk being filled
	uint8_t *fill_data;
	uint32_t fill_len, filled;
	uint8_t rep[REP_MAX];			// the reply's header (simple, or a structured chunk's)
	uint32_t rep_len;
	bool is_map;				// BLOCK_STATUS: its MAPR reply becomes body
	bool is_zcheck;				// WRITE_ZEROES with FAST_ZERO: a MAPR that must find the range zero
	std::vector<uint8_t> body;		// BLOCK_STATUS: the context id and descriptors, after rep
	Cmd *out_next;				// the connection's reply queue
	Cmd *free_next;
};

struct Engine;

struct Conn {
	Engine *e;
	uint32_t id;
	int fd;
	uv_poll_t poll;
	int poll_events;
	bool poll_open, dead, ended;
	std::string target;
	uint64_t size;
	bool readonly;
	bool structured;		// NBD_OPT_STRUCTURED_REPLY negotiated: replies are chunks
	bool meta;			// base:allocation selected (NBD_OPT_SET_META_CONTEXT): BLOCK_STATUS allowed
	uint32_t meta_id;		// its context id
	std::vector<uint8_t> rbuf;
	size_t rpos, rlen;
	uint8_t hdr[REQ_SIZE];
	uint32_t hdr_len;
	Cmd *cur;			// a WRITE whose payload is arriving
	bool big_write;			// the last command parsed was a WRITE of BIG_WRITE or more
	uint64_t discard;		// payload bytes to drop (a refused WRITE)
	Cmd *blocked;			// a command waiting for a free request
	bool stalled, disc, eof, closing;
	bool full;			// stopped reading: its unread replies reached a cap (in e->full)
	uint32_t inflight;		// commands not yet replied
	uint32_t out_count;		// replies queued, not yet written
	uint64_t committed;		// READ bytes admitted and not yet written (in flight or queued)
	uint32_t held;			// segment requests its commands hold
	uint32_t cmds;			// Cmd objects that point here (freed when 0 and dead)
	Cmd *out_head, *out_tail;	// replies to write, in order
	uint32_t out_skip;		// bytes of out_head already written
	uint64_t out_bytes;		// bytes queued in the reply queue
	bool dirty;			// replies queued since the last flush
	bool wblocked;			// the socket did not take all the replies: waiting for POLLOUT
	bool linger;			// ended cleanly: once the poll is closed, linger on fd (sockets.cc)
	uint32_t at_peer;		// its requests submitted to the storage peer and not yet back
	bool deferred;			// input read as replies come back, not polled (conn_drained)
	bool read_queued;		// in e->undefer: its socket is read at the end of the callback
};

struct Event {
	std::string kind;
	uint32_t id;
	std::string text;
	int fd;				// 'accept': the handshake's descriptor (a dup), else -1
};

struct Listener;
struct Linger;

struct Engine {
	napi_env env;
	napi_ref seg_ref, fn_ref;
	Seg *seg;
	uint32_t port, storage;
	uint64_t max_buf, max_request;
	uint32_t max_inflight;
	uint64_t spin_ns;
	uint64_t timeout_ms;		// a request without a reply this long fails its command (EIO); 0: never
	uint64_t conn_bytes, total_bytes;	// caps on committed READ bytes: one connection, all
	uint32_t conn_reqs, total_reqs;	// caps on segment requests held: one connection, all
	uint64_t committed;		// the connections' committed bytes
	uint64_t copied;		// bytes of READ data copied out of the segment (held on the heap)
	uint64_t write_copied;		// WRITE payload bytes copied from a read buffer into the segment
	uint32_t held;			// segment requests held (orphans and warm ones included)
	std::vector<xseg_request *> warm;	// replied requests kept with their maxBuf buffers, most recent last
	uint32_t warm_max;		// at most this many (0: none kept)
	bool warm_used;			// one was taken since the last timer tick
	bool shrinking;			// the segment is shrinking (seen at the last tick): none kept warm
	uint64_t warm_hits, warm_misses;	// data chunks that got a warm buffer, or a free one from the segment
	uint32_t orphans;		// timed-out requests still at the storage peer
	bool stuck;			// a request timed out and no reply came since: no waiting for requests
	uv_timer_t timer;
	bool timer_open;
	uv_loop_t *loop;
	uv_poll_t poll;
	uv_prepare_t prep;
	uv_check_t check;
	int fifo;
	bool poll_open, prep_open, check_open, closed, finalized;
	bool announced;			// between prepare_wait (uv_prepare) and cancel_wait (uv_check)
	bool polled;			// the FIFO polled readable since the last uv_check
	uint32_t handles;		// uv handles not yet closed
	std::vector<Cmd *> slot;	// request index -> the command it is a chunk of (ORPHAN: timed out)
	std::vector<uint64_t> slot_ms;	// request index -> uv_now() when it was submitted
	std::unordered_map<uint32_t, uint32_t> ctl;	// request index -> id of a control request (control.cc)
	uint32_t next_ctl;
	std::unordered_map<uint32_t, Conn *> conns;
	uint32_t next_id;		// of listeners and connections
	std::unordered_map<uint32_t, Listener *> listeners;
	std::unordered_map<uint32_t, int> pending;	// connection id -> its descriptor, during the handshake
	std::unordered_map<uint32_t, Linger *> lingers;	// ended connections waiting for the client's EOF
	std::vector<Conn *> stalled;
	std::vector<Conn *> full;	// connections that stopped reading at a reply cap
	bool freed_bytes;		// committed bytes went down: look at the full connections
	bool reclaimed;			// reclaim() ran in this callback
	std::vector<Conn *> dirty;
	std::vector<Conn *> undefer;	// deferred connections to read at the end of the callback (engine_after)
	Cmd *free_cmds;
	Cmd *owner;			// a command that gets the next free request first
	bool need_signal;
	uint32_t signal_to;	// the port the batch's last request was queued to
	std::vector<Event> events;
	uint64_t xinflight, replies, commands, errors, bytes_read, bytes_written, timeouts, late;
	uint64_t deferrals;		// times a connection's input was deferred (conn_drained)
	bool in_js_call;		// events go out with napi_call_function
	iovec iov[IOV_CAP];
};


inline struct xseg *xs_of(Engine *e)
{
	return e->seg ? e->seg->xs : nullptr;
}

inline void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

// Stands in the slot table for a request whose command timed out: its late reply is put back.
inline Cmd orphan_cmd;
inline Cmd *const ORPHAN = &orphan_cmd;

// The functions of the engine's files (each documented where it is defined).
uint32_t nbd_error_of(int e);
void event(Engine *e, const char *kind, uint32_t id, const std::string &text, int fd = -1);
void flush_events(Engine *e);
Cmd *cmd_new(Conn *c);
void put_req(Cmd *cmd, xseg_request *req);
void warm_release(Engine *e);
void cmd_free(Cmd *cmd);
void mark_dirty(Conn *c);
void mark_stalled(Conn *c);
bool conn_over(Conn *c);
void mark_full(Conn *c);
void cmd_finish(Cmd *cmd);
uint64_t reply_bytes(const Cmd *cmd);
uint32_t map_done(Cmd *cmd, xseg_request *req, uint32_t err);
uint32_t zero_check(Cmd *cmd, xseg_request *req, uint32_t err);
bool cmd_ready(Cmd *cmd);
void chunk_done(Cmd *cmd, xseg_request *req, uint32_t err);
xseg_request *get_req(Cmd *cmd, uint64_t offset, uint64_t size, uint64_t datalen);
void submit(Cmd *cmd, xseg_request *req);
void submit_chunks(Conn *c, Cmd *cmd);
void command(Conn *c, const uint8_t *b);
void write_fail(Conn *c, Cmd *cmd);
bool write_chunk(Conn *c, Cmd *cmd);
bool write_filled(Conn *c, Cmd *cmd);
void conn_input(Conn *c);
void on_conn_closed(uv_handle_t *h);
void conn_drop(Conn *c);
void conn_maybe_free(Conn *c);
void conn_fatal(Conn *c, const char *msg);
void conn_maybe_end(Conn *c);
void conn_check_eof(Conn *c);
void conn_copy_out(Conn *c);
void reclaim(Engine *e);
bool pressure(Conn *c);
void conn_flush(Conn *c);
void conn_update_poll(Conn *c);
void conn_resume(Conn *c);
void conn_unfull(Conn *c);
void conn_read(Conn *c);
void conn_peer_done(Conn *c);
void conn_check_deferred(Conn *c);
bool spin(Engine *e);
void on_conn_poll(uv_poll_t *h, int status, int events);
void process_replies(Engine *e);
void on_port_poll(uv_poll_t *h, int status, int events);
void on_prepare(uv_prepare_t *h);
void on_check(uv_check_t *h);
void engine_after(Engine *e);
void time_out(Engine *e, Cmd *cmd);
void on_timer(uv_timer_t *h);
void on_port_closed(uv_handle_t *h);
void maybe_free_engine(Engine *e);
void engine_close(Engine *e);
void engine_finalize(napi_env env, void *data, void *hint);
Engine *engine_of(const Napi::CallbackInfo &info, const char *fn);
Napi::Value nbd_engine(const Napi::CallbackInfo &info);
Napi::Value nbd_conn(const Napi::CallbackInfo &info);
Conn *conn_arg(const Napi::CallbackInfo &info, Engine *e, const char *fn);
Napi::Value nbd_conn_shutdown(const Napi::CallbackInfo &info);
Napi::Value nbd_conn_close(const Napi::CallbackInfo &info);
Napi::Value nbd_stats(const Napi::CallbackInfo &info);
Napi::Value nbd_engine_close(const Napi::CallbackInfo &info);

// control.cc
bool ctl_reply(Engine *e, int idx, xseg_request *req);
Napi::Value nbd_ctl(const Napi::CallbackInfo &info);

// sockets.cc
int pending_take(Engine *e, uint32_t id);
bool pending_close(Engine *e, uint32_t id);
void linger_start(Engine *e, uint32_t id, int fd);
bool linger_stop(Engine *e, uint32_t id);
void sockets_close(Engine *e);
Napi::Value nbd_listen_unix(const Napi::CallbackInfo &info);
Napi::Value nbd_listen_tcp(const Napi::CallbackInfo &info);
Napi::Value nbd_listen_close(const Napi::CallbackInfo &info);
Napi::Value nbd_conn_pair(const Napi::CallbackInfo &info);

}  // namespace nbd

// The nbd_* functions of the addon (napi.cc).
void init_nbd_engine(Napi::Env env, Napi::Object exports);

}  // namespace xnode

#endif
