// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/nbdfast.cc - the NBD gateway's hot path in C, driven by
// libuv: the transmission phase of NBD connections (peers/node/nbd/server.ts
// keeps the handshake, the options, logging and control in TypeScript).
//
//   socket --read--> 28-byte headers parsed in a persistent buffer; WRITE
//   payloads copied (or read) straight into the requests' segment buffers
//   --> xseg_submit to the storage port (or its redirect), one signal per batch
//   port FIFO readable --> xseg_receive every reply --> 16-byte reply headers
//   and READ data straight from the segment buffers, one writev per batch
//   --> requests put back once written.
//
// One engine per gateway: it joined the segment with its own handle, owns
// one client port (its FIFO is polled here, not by the TypeScript Port) and
// serves any number of connections, each a dup() of a socket TypeScript
// negotiated. Nothing is allocated per request once warm (commands come
// from a free list). Everything runs on the loop thread of the environment.
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
// Events for TypeScript, fn(kind, connId, text), are queued while C state
// changes and delivered at the end of each callback: 'fatal' (a protocol
// error: close the connection, text says why), 'end' (every reply is out
// after NBD_CMD_DISC, EOF or shutdown: end the socket), 'gone' (the socket
// failed), 'debug' (a failed request).
//
// The rules follow the TypeScript path (docs/nbd.md): the same checks,
// errors, splitting into maxBuf chunks, back-pressure and log texts.
#include <errno.h>
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
#include "addon.h"

namespace xnode {
namespace {

enum {
	NBD_CMD_READ = 0, NBD_CMD_WRITE = 1, NBD_CMD_DISC = 2, NBD_CMD_FLUSH = 3, NBD_CMD_TRIM = 4,
	NBD_CMD_WRITE_ZEROES = 6, NBD_CMD_RESIZE = 8,
};
enum { FLAG_FUA = 1, FLAG_NO_HOLE = 2 };
enum {
	NBD_EPERM = 1, NBD_EIO = 5, NBD_ENOMEM = 12, NBD_EINVAL = 22, NBD_ENOSPC = 28,
	NBD_EOVERFLOW = 75, NBD_ENOTSUP = 95, NBD_ESHUTDOWN = 108,
};
const uint32_t REQUEST_MAGIC = 0x25609513;
const uint32_t SIMPLE_REPLY_MAGIC = 0x67446698;
const uint32_t REQ_SIZE = 28, REP_SIZE = 16;
const uint64_t MAX_DISCARD = 32u << 20;		// a refused WRITE's payload read and dropped
const size_t RBUF = 256u << 10;
const int IOV_CAP = 1024;

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
	uint64_t start_ns;			// when its header came (the request timeout of a blocked command)
	std::vector<xseg_request *> reqs;	// READ: the chunks in order (NULL once put)
	uint8_t *copy;				// READ: its data copied out of the segment (a slow reader), or NULL
	uint64_t commit;			// READ: its bytes in the committed counts
	xseg_request *fill;			// WRITE: the chunk being filled
	uint8_t *fill_data;
	uint32_t fill_len, filled;
	uint8_t rep[REP_SIZE];
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
	std::vector<uint8_t> rbuf;
	size_t rpos, rlen;
	uint8_t hdr[REQ_SIZE];
	uint32_t hdr_len;
	Cmd *cur;			// a WRITE whose payload is arriving
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
};

struct Event {
	std::string kind;
	uint32_t id;
	std::string text;
};

struct Engine {
	napi_env env;
	napi_ref seg_ref, fn_ref;
	Seg *seg;
	uint32_t port, storage;
	uint64_t max_buf, max_request;
	uint32_t max_inflight;
	uint64_t spin_ns;
	uint64_t timeout_ns;		// a request without a reply this long fails its command (EIO); 0: never
	uint64_t conn_bytes, total_bytes;	// caps on committed READ bytes: one connection, all
	uint32_t conn_reqs, total_reqs;	// caps on segment requests held: one connection, all
	uint64_t committed;		// the connections' committed bytes
	uint64_t copied;		// bytes of READ data copied out of the segment (held on the heap)
	uint32_t held;			// segment requests held (orphans included)
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
	std::vector<uint64_t> slot_ns;	// request index -> when it was submitted
	std::unordered_map<uint32_t, Conn *> conns;
	std::vector<Conn *> stalled;
	std::vector<Conn *> full;	// connections that stopped reading at a reply cap
	bool freed_bytes;		// committed bytes went down: look at the full connections
	bool reclaimed;			// reclaim() ran in this callback
	std::vector<Conn *> dirty;
	Cmd *free_cmds;
	Cmd *owner;			// a command that gets the next free request first
	bool need_signal;
	uint32_t signal_to;	// the port the batch's last request was queued to
	std::vector<Event> events;
	uint64_t xinflight, replies, commands, errors, bytes_read, bytes_written, timeouts, late;
	bool in_js_call;		// events go out with napi_call_function
	iovec iov[IOV_CAP];
};

struct xseg *xs_of(Engine *e)
{
	return e->seg ? e->seg->xs : nullptr;
}

void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

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

void event(Engine *e, const char *kind, uint32_t id, const std::string &text)
{
	e->events.push_back(Event{ kind, id, text });
}

// Deliver the queued events (after every C state change of a callback).
void flush_events(Engine *e)
{
	napi_env env = e->env;

	while (!e->events.empty() && e->fn_ref && !e->finalized) {
		std::vector<Event> evs;
		napi_handle_scope scope;
		napi_value fn, recv, argv[3], res;

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
				if (e->in_js_call)
					st = napi_call_function(env, recv, fn, 3, argv, &res);
				else
					st = napi_make_callback(env, nullptr, recv, fn, 3, argv, &res);
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

void maybe_free_engine(Engine *e);
void conn_flush(Conn *c);
void conn_copy_out(Conn *c);
void reclaim(Engine *e);
void conn_input(Conn *c);
void submit_chunks(Conn *c, Cmd *cmd);
void conn_maybe_end(Conn *c);

// ------------------------------------------------------------------ commands

Cmd *cmd_new(Conn *c)
{
	Engine *e = c->e;
	Cmd *cmd = e->free_cmds;

	if (cmd)
		e->free_cmds = cmd->free_next;
	else
		cmd = new Cmd();
	cmd->conn = c;
	cmd->type = cmd->flags = 0;
	cmd->op = cmd->xflags = 0;
	cmd->offset = 0;
	cmd->length = cmd->next = cmd->pending = cmd->error = 0;
	cmd->zero_fill = cmd->done = cmd->is_read = false;
	cmd->start_ns = xseg_sys_now_ns();
	cmd->reqs.clear();
	cmd->copy = nullptr;
	cmd->commit = 0;
	cmd->fill = nullptr;
	cmd->fill_data = nullptr;
	cmd->fill_len = cmd->filled = 0;
	cmd->out_next = cmd->free_next = nullptr;
	c->cmds++;
	return cmd;
}

// Stands in the slot table for a request whose command timed out: its late reply is put back.
Cmd orphan_cmd;
Cmd *const ORPHAN = &orphan_cmd;

// Give back a request that @cmd holds.
void put_req(Cmd *cmd, xseg_request *req)
{
	Engine *e = cmd->conn->e;
	struct xseg *xs = xs_of(e);

	if (!req)
		return;
	if (cmd->conn->held)
		cmd->conn->held--;
	if (e->held)
		e->held--;
	if (xs)
		xseg_put_request(xs, req);
}

void conn_maybe_free(Conn *c);

// Give a finished (or abandoned) command back, with the requests it holds.
void cmd_free(Cmd *cmd)
{
	Conn *c = cmd->conn;
	Engine *e = c->e;

	for (xseg_request *r : cmd->reqs)
		put_req(cmd, r);
	cmd->reqs.clear();
	if (cmd->fill)
		put_req(cmd, cmd->fill);
	cmd->fill = nullptr;
	if (cmd->copy) {
		free(cmd->copy);
		cmd->copy = nullptr;
		e->copied -= cmd->length;
	}
	if (cmd->commit) {
		c->committed -= cmd->commit;
		e->committed -= cmd->commit;
		cmd->commit = 0;
	}
	e->freed_bytes = true;
	if (e->owner == cmd)
		e->owner = nullptr;
	cmd->free_next = e->free_cmds;
	e->free_cmds = cmd;
	c->cmds--;
	conn_maybe_free(c);
}

void mark_dirty(Conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->e->dirty.push_back(c);
	}
}

void mark_stalled(Conn *c)
{
	if (c->stalled)
		return;
	c->stalled = true;
	c->e->stalled.push_back(c);
}

/*
 * Whether @c must stop reading commands: its commands not yet written
 * (in flight or queued) reach max_inflight, or its committed READ bytes
 * (in flight or queued) reach its part (conn_bytes, at most an equal share
 * of total_bytes), or all connections' reach total_bytes. A connection with
 * nothing committed may always send one more command, so that none starves:
 * all together commit at most total_bytes plus one command each.
 */
bool conn_over(Conn *c)
{
	Engine *e = c->e;
	uint64_t n = e->conns.size() ? e->conns.size() : 1;
	uint64_t part = e->total_bytes / n < e->conn_bytes ? e->total_bytes / n : e->conn_bytes;

	if (c->inflight + c->out_count >= e->max_inflight)
		return true;
	if (!c->committed)
		return false;
	return c->committed >= part || e->committed >= e->total_bytes;
}

void mark_full(Conn *c)
{
	if (c->full)
		return;
	c->full = true;
	c->e->full.push_back(c);
}

// The command is over: queue its reply.
void cmd_finish(Cmd *cmd)
{
	Conn *c = cmd->conn;
	Engine *e = c->e;

	if (cmd->done)
		return;
	cmd->done = true;
	c->inflight--;
	if (c->dead) {
		cmd_free(cmd);
		return;
	}
	if (cmd->error) {
		e->errors++;
		for (xseg_request *&r : cmd->reqs) {
			put_req(cmd, r);
			r = nullptr;
		}
		cmd->reqs.clear();
	} else if (cmd->type == NBD_CMD_READ) {
		e->bytes_read += cmd->length;
	} else if (cmd->type == NBD_CMD_WRITE) {
		e->bytes_written += cmd->length;
	}
	be32(cmd->rep, SIMPLE_REPLY_MAGIC);
	be32(cmd->rep + 4, cmd->error);
	memcpy(cmd->rep + 8, cmd->handle, 8);
	if (c->out_tail)
		c->out_tail->out_next = cmd;
	else
		c->out_head = cmd;
	c->out_tail = cmd;
	c->out_count++;
	c->out_bytes += REP_SIZE + (cmd->is_read && !cmd->error ? cmd->length : 0);
	mark_dirty(c);
}

bool cmd_ready(Cmd *cmd)
{
	Conn *c = cmd->conn;

	return cmd->pending == 0 && cmd->fill == nullptr && cmd->next == cmd->length &&
	       c->blocked != cmd && c->cur != cmd;
}

// A chunk's reply came (or its submit failed): @err is 0 or an NBD error.
void chunk_done(Cmd *cmd, xseg_request *req, uint32_t err)
{
	cmd->pending--;
	if (err && !cmd->error)
		cmd->error = err;
	if (req && (!cmd->is_read || cmd->error || cmd->conn->dead)) {
		// Not kept for a reply: give it back now.
		for (xseg_request *&r : cmd->reqs)
			if (r == req)
				r = nullptr;
		put_req(cmd, req);
	}
	if (cmd_ready(cmd))
		cmd_finish(cmd);
}

/*
 * A request for a chunk of @cmd, or NULL when the segment has none free (or
 * another command waits for one first: a command that got only part of its
 * chunks takes the next free request, so big commands cannot starve one
 * another into a deadlock).
 */
xseg_request *get_req(Cmd *cmd, uint64_t offset, uint64_t size, uint64_t datalen)
{
	Conn *c = cmd->conn;
	Engine *e = c->e;
	struct xseg *xs = xs_of(e);
	xseg_request *req;

	if (!xs)
		return nullptr;
	// Fair sharing: one connection holds at most its share (its own come back) ...
	if (c->held >= e->conn_reqs && c->wblocked)
		conn_copy_out(c);	// replies its client does not read: let their requests go
	if (c->held >= e->conn_reqs)
		return nullptr;
	if (e->owner && e->owner != cmd) {
		if (e->owner->done || e->owner->conn->dead)
			e->owner = nullptr;
		else
			return nullptr;
	}
	// ... and all of them leave some for the handshakes and the segment's other peers.
	req = e->held < e->total_reqs ? xseg_get_request(xs, e->port) : nullptr;
	if (!req && !e->reclaimed) {
		// Slow readers may sit on requests: copy their replies out, once per callback.
		reclaim(e);
		req = e->held < e->total_reqs ? xseg_get_request(xs, e->port) : nullptr;
	}
	if (req && xseg_prep_request(xs, req, c->target.data(), (uint32_t)c->target.size(), datalen) < 0) {
		xseg_put_request(xs, req);
		req = nullptr;
	}
	if (!req) {
		e->owner = cmd;
		return nullptr;
	}
	if (e->owner == cmd)
		e->owner = nullptr;
	c->held++;
	e->held++;
	req->op = cmd->op;
	req->flags = cmd->xflags;
	req->offset = offset;
	req->size = size;
	return req;
}

// Submit chunk @req of @cmd to the storage port (signalled once per batch).
void submit(Cmd *cmd, xseg_request *req)
{
	Engine *e = cmd->conn->e;
	struct xseg *xs = xs_of(e);
	int idx = xs ? xseg_request_index(xs, req) : -1;
	int r;

	cmd->pending++;
	if (idx < 0 || (uint32_t)idx >= e->slot.size()) {
		r = -EINVAL;
	} else {
		e->slot[idx] = cmd;
		r = xseg_submit(xs, req, e->storage);
		if (r < 0)
			e->slot[idx] = nullptr;
		else if (e->need_signal && e->signal_to != (uint32_t)r)
			xseg_signal(xs, e->signal_to);	// a redirect changed mid-batch
	}
	if (r < 0) {
		// Not submitted (ENOENT: nobody bound the storage port).
		char msg[128];

		snprintf(msg, sizeof(msg), "%s: %s", xseg_op_name(cmd->op), errno_name(-r));
		event(e, "debug", cmd->conn->id, msg);
		for (xseg_request *&q : cmd->reqs)
			if (q == req)
				q = nullptr;
		put_req(cmd, req);
		chunk_done(cmd, nullptr, NBD_EIO);
		return;
	}
	e->slot_ns[idx] = xseg_sys_now_ns();	// the request timeout counts from here
	e->xinflight++;
	e->need_signal = true;
	e->signal_to = (uint32_t)r;	// where it was queued: storage or its redirect
}

/*
 * Get and submit the chunks of a command that needs no payload (READ,
 * FLUSH, TRIM, WRITE_ZEROES); stalls when the segment has no free request.
 */
void submit_chunks(Conn *c, Cmd *cmd)
{
	Engine *e = c->e;
	bool whole = cmd->op == X_FLUSH || cmd->op == X_DISCARD || cmd->op == X_WRITE_ZEROES;

	do {
		uint64_t left = cmd->length - cmd->next;
		uint64_t size = whole ? left : (left < e->max_buf ? left : e->max_buf);
		xseg_request *req = get_req(cmd, cmd->offset + cmd->next, size, whole ? 0 : size);

		if (!req && e->stuck) {
			// A request timed out and nothing came back since: fail now, do not wait.
			if (!cmd->error)
				cmd->error = NBD_EIO;
			cmd->next = cmd->length;
			if (cmd_ready(cmd))
				cmd_finish(cmd);
			return;
		}
		if (!req) {
			c->blocked = cmd;
			mark_stalled(c);
			return;
		}
		if (cmd->zero_fill) {
			uint64_t cap;
			void *d = xseg_req_buffer(xs_of(e), req, &cap);

			if (d)
				memset(d, 0, size < cap ? size : cap);
		}
		cmd->next += (uint32_t)size;
		if (cmd->is_read)
			cmd->reqs.push_back(req);
		submit(cmd, req);
	} while (cmd->next < cmd->length && !c->dead);
}

void conn_fatal(Conn *c, const char *msg);

// One 28-byte request header.
void command(Conn *c, const uint8_t *b)
{
	Engine *e = c->e;
	uint32_t magic = rd32(b);
	uint16_t flags = rd16(b + 4), type = rd16(b + 6);
	uint64_t offset = (uint64_t)rd32(b + 16) << 32 | rd32(b + 20);
	uint32_t length = rd32(b + 24);
	uint32_t allowed, err = 0;
	char msg[160];
	Cmd *cmd;

	if (magic != REQUEST_MAGIC) {
		snprintf(msg, sizeof(msg), "bad request magic 0x%x", magic);
		conn_fatal(c, msg);
		return;
	}
	if (type == NBD_CMD_DISC) {
		c->disc = true;
		event(e, "debug", c->id, "NBD_CMD_DISC");
		conn_maybe_end(c);
		return;
	}
	if (type > NBD_CMD_RESIZE) {
		snprintf(msg, sizeof(msg), "unknown command %u", type);
		conn_fatal(c, msg);
		return;
	}
	cmd = cmd_new(c);
	cmd->type = type;
	cmd->flags = flags;
	memcpy(cmd->handle, b + 8, 8);
	// FLUSH has no range (the fields are reserved).
	cmd->offset = type == NBD_CMD_FLUSH ? 0 : offset;
	cmd->length = type == NBD_CMD_FLUSH ? 0 : length;
	c->inflight++;
	e->commands++;
	switch (type) {
	case NBD_CMD_READ: case NBD_CMD_WRITE: case NBD_CMD_FLUSH: case NBD_CMD_TRIM:
		allowed = FLAG_FUA;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed = FLAG_FUA | FLAG_NO_HOLE;
		break;
	default:
		allowed = 0;	// CACHE, BLOCK_STATUS, RESIZE: not offered
		err = NBD_EINVAL;
	}
	if (c->closing)
		err = NBD_ESHUTDOWN;
	else if (!err && (flags & ~allowed))
		err = NBD_EINVAL;
	cmd->xflags = (flags & FLAG_FUA) ? XF_FUA : 0;
	bool range = offset <= c->size && length <= c->size - offset;
	if (!err) {
		switch (type) {
		case NBD_CMD_READ:
			if (length > e->max_request)
				err = NBD_EOVERFLOW;
			else if (!range)
				err = NBD_EINVAL;
			break;
		case NBD_CMD_WRITE:
			if (c->readonly)
				err = NBD_EPERM;
			else if (length > e->max_request)
				err = NBD_EOVERFLOW;
			else if (!range)
				err = NBD_ENOSPC;
			break;
		case NBD_CMD_TRIM:
		case NBD_CMD_WRITE_ZEROES:
			if (c->readonly)
				err = NBD_EPERM;
			else if (!range)
				err = NBD_ENOSPC;
			break;
		}
	}
	if (err) {
		// A refused WRITE still sends its payload: read and drop it.
		if (type == NBD_CMD_WRITE) {
			if (length > MAX_DISCARD) {
				snprintf(msg, sizeof(msg), "NBD_CMD_WRITE of %u bytes (at most %llu)", length,
					 (unsigned long long)e->max_request);
				cmd->done = true;
				c->inflight--;
				cmd_free(cmd);
				conn_fatal(c, msg);
				return;
			}
			c->discard = length;
		}
		cmd->error = err;
		cmd_finish(cmd);
		return;
	}
	switch (type) {
	case NBD_CMD_READ:
		cmd->op = X_READ;
		cmd->is_read = true;
		if (!length) {
			cmd_finish(cmd);
			return;
		}
		cmd->commit = length;
		c->committed += length;
		e->committed += length;
		submit_chunks(c, cmd);
		return;
	case NBD_CMD_WRITE:
		cmd->op = X_WRITE;
		if (!length) {
			cmd_finish(cmd);
			return;
		}
		c->cur = cmd;
		return;
	case NBD_CMD_FLUSH:
		cmd->op = X_FLUSH;
		submit_chunks(c, cmd);
		return;
	default:	// TRIM, WRITE_ZEROES
		if (!length) {
			cmd_finish(cmd);
			return;
		}
		if (type == NBD_CMD_TRIM) {
			cmd->op = X_DISCARD;
		} else if (flags & FLAG_NO_HOLE) {
			// The storage peer may punch holes for write_zeroes: write real zeroes.
			cmd->op = X_WRITE;
			cmd->zero_fill = true;
		} else {
			cmd->op = X_WRITE_ZEROES;
		}
		submit_chunks(c, cmd);
	}
}

// The WRITE being received fails (EIO) before all its chunks are submitted: its payload is dropped.
void write_fail(Conn *c, Cmd *cmd)
{
	if (!cmd->error)
		cmd->error = NBD_EIO;
	c->discard += cmd->length - cmd->next;
	cmd->next = cmd->length;
	c->cur = nullptr;
	if (cmd_ready(cmd))
		cmd_finish(cmd);
}

// The next chunk of the WRITE being received, if it has none; false when stalled (or failed: c->cur is NULL).
bool write_chunk(Conn *c, Cmd *cmd)
{
	Engine *e = c->e;
	uint64_t left, size, cap;
	xseg_request *req;

	if (cmd->fill)
		return true;
	left = cmd->length - cmd->next;
	size = left < e->max_buf ? left : e->max_buf;
	req = get_req(cmd, cmd->offset + cmd->next, size, size);
	if (!req && e->stuck) {
		// A request timed out and nothing came back since: fail now, drop the rest of the payload.
		write_fail(c, cmd);
		return false;
	}
	if (!req) {
		mark_stalled(c);
		return false;
	}
	cmd->fill = req;
	cmd->fill_data = (uint8_t *)xseg_req_buffer(xs_of(e), req, &cap);
	cmd->fill_len = (uint32_t)(size < cap ? size : cap);
	cmd->filled = 0;
	cmd->next += (uint32_t)size;
	return true;
}

// The chunk being filled is full: submit it. Returns true when the WRITE has all its payload.
bool write_filled(Conn *c, Cmd *cmd)
{
	xseg_request *req = cmd->fill;

	cmd->fill = nullptr;
	cmd->fill_data = nullptr;
	submit(cmd, req);
	if (cmd->next == cmd->length) {
		c->cur = nullptr;
		if (cmd_ready(cmd))
			cmd_finish(cmd);
		return true;
	}
	return false;
}

// Parse what the read buffer holds; stops (keeping the rest) when stalled.
void conn_input(Conn *c)
{
	while (!c->dead && !c->stalled && !c->full && c->rpos < c->rlen) {
		uint8_t *p = c->rbuf.data() + c->rpos;
		size_t avail = c->rlen - c->rpos;

		if (c->discard) {
			size_t n = c->discard < avail ? (size_t)c->discard : avail;

			c->discard -= n;
			c->rpos += n;
			continue;
		}
		if (Cmd *cur = c->cur) {
			if (!write_chunk(c, cur)) {
				if (!c->cur)
					continue;	// failed: its payload is dropped
				break;
			}
			size_t n = cur->fill_len - cur->filled;

			if (n > avail)
				n = avail;
			if (cur->fill_data)
				memcpy(cur->fill_data + cur->filled, p, n);
			cur->filled += (uint32_t)n;
			c->rpos += n;
			if (cur->filled == cur->fill_len)
				write_filled(c, cur);
			continue;
		}
		if (c->disc) {
			conn_fatal(c, "data after NBD_CMD_DISC");
			return;
		}
		if (conn_over(c)) {
			mark_full(c);
			break;
		}
		if (c->hdr_len || avail < REQ_SIZE) {
			size_t n = REQ_SIZE - c->hdr_len;

			if (n > avail)
				n = avail;
			memcpy(c->hdr + c->hdr_len, p, n);
			c->hdr_len += (uint32_t)n;
			c->rpos += n;
			if (c->hdr_len < REQ_SIZE)
				break;
			c->hdr_len = 0;
			command(c, c->hdr);
		} else {
			c->rpos += REQ_SIZE;
			command(c, p);
		}
	}
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
}

// ----------------------------------------------------------- the socket

void conn_update_poll(Conn *c);

void on_conn_closed(uv_handle_t *h)
{
	Conn *c = (Conn *)h->data;
	Engine *e = c->e;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->poll_open = false;
	e->handles--;
	conn_maybe_free(c);
	maybe_free_engine(e);
}

// Stop serving @c: its poll and descriptor go; commands in flight are freed as their replies come.
void conn_drop(Conn *c)
{
	Engine *e = c->e;

	if (c->dead)
		return;
	c->dead = true;
	e->conns.erase(c->id);
	// Not looked at again: it may be freed before the next callback.
	for (size_t i = 0; i < e->stalled.size(); i++)
		if (e->stalled[i] == c)
			e->stalled[i--] = e->stalled.back(), e->stalled.pop_back();
	for (size_t i = 0; i < e->dirty.size(); i++)
		if (e->dirty[i] == c)
			e->dirty[i--] = e->dirty.back(), e->dirty.pop_back();
	for (size_t i = 0; i < e->full.size(); i++)
		if (e->full[i] == c)
			e->full[i--] = e->full.back(), e->full.pop_back();
	c->full = false;
	while (Cmd *cmd = c->out_head) {
		c->out_head = cmd->out_next;
		cmd_free(cmd);
	}
	c->out_tail = nullptr;
	c->out_bytes = 0;
	if (Cmd *cur = c->cur) {
		c->cur = nullptr;
		if (cur->fill) {
			put_req(cur, cur->fill);
			cur->fill = nullptr;
		}
		cur->next = cur->length;
		if (cmd_ready(cur))
			cmd_finish(cur);
	}
	if (Cmd *b = c->blocked) {
		c->blocked = nullptr;
		b->next = b->length;
		if (cmd_ready(b))
			cmd_finish(b);
	}
	if (c->poll_open)
		uv_close((uv_handle_t *)&c->poll, on_conn_closed);
	else
		conn_maybe_free(c);
}

void conn_maybe_free(Conn *c)
{
	if (c->dead && c->cmds == 0 && !c->poll_open)
		delete c;
}

// Close the connection for a protocol violation.
void conn_fatal(Conn *c, const char *msg)
{
	if (c->dead)
		return;
	event(c->e, "fatal", c->id, msg);
	conn_drop(c);
}

// After NBD_CMD_DISC, EOF or shutdown: end once every reply is out.
void conn_maybe_end(Conn *c)
{
	if (c->dead || c->inflight || c->out_head)
		return;
	if (c->disc || c->closing || (c->eof && c->rpos == c->rlen && !c->stalled && !c->full)) {
		event(c->e, "end", c->id, "");
		conn_drop(c);
	}
}

// At EOF with nothing left to parse: a partial request is a truncated one.
void conn_check_eof(Conn *c)
{
	char msg[96];

	if (c->dead)
		return;
	if (c->hdr_len) {
		snprintf(msg, sizeof(msg), "truncated request header (%u of %u bytes)", c->hdr_len, REQ_SIZE);
		conn_fatal(c, msg);
	} else if (c->cur || c->discard) {
		conn_fatal(c, "truncated WRITE payload");
	} else {
		conn_maybe_end(c);
	}
}

/*
 * The socket is full (a slow reader) and requests are wanted: copy the READ
 * data of the queued replies out of the segment and give their requests
 * back at once, so a client that does not read its replies holds no segment
 * buffers (the reply caps bound the copies: conn_over). Not done while
 * requests are plentiful: a fast reader's replies go out of the segment
 * without a copy.
 */
void conn_copy_out(Conn *c)
{
	Engine *e = c->e;

	for (Cmd *cmd = c->out_head; cmd; cmd = cmd->out_next) {
		if (!cmd->is_read || cmd->error || cmd->copy || cmd->reqs.empty())
			continue;
		uint8_t *copy = (uint8_t *)malloc(cmd->length);
		uint64_t left = cmd->length, at = 0;

		if (!copy)
			return;	// they keep their requests
		for (xseg_request *r : cmd->reqs) {
			uint64_t cap = 0;
			uint8_t *d = r ? (uint8_t *)xseg_req_buffer(xs_of(e), r, &cap) : nullptr;
			uint64_t take = left < e->max_buf ? left : e->max_buf;

			if (!d || cap < take) {
				free(copy);
				return;	// conn_flush reports it
			}
			memcpy(copy + at, d, take);
			at += take;
			left -= take;
		}
		for (xseg_request *&r : cmd->reqs) {
			put_req(cmd, r);
			r = nullptr;
		}
		cmd->reqs.clear();
		cmd->copy = copy;
		e->copied += cmd->length;
	}
}

// Copy out the replies of every connection waiting for POLLOUT (no request is free).
void reclaim(Engine *e)
{
	e->reclaimed = true;
	for (auto &kv : e->conns)
		if (kv.second->wblocked && !kv.second->dead)
			conn_copy_out(kv.second);
}

// Under pressure (half of a share or of all requests held): copy out at once.
bool pressure(Conn *c)
{
	return c->held > c->e->conn_reqs / 2 || c->e->held > c->e->total_reqs / 2;
}

// Write queued replies: headers and READ data from the segment, one writev per batch.
void conn_flush(Conn *c)
{
	Engine *e = c->e;

	c->dirty = false;
	c->wblocked = false;
	while (!c->dead && c->out_head) {
		int n = 0;
		size_t skip = c->out_skip, total = 0;

		for (Cmd *cmd = c->out_head; cmd && n < IOV_CAP - 1; cmd = cmd->out_next) {
			// The header, then the data of a READ, chunk by chunk.
			size_t len = REP_SIZE;

			if (skip < len) {
				e->iov[n].iov_base = cmd->rep + skip;
				e->iov[n].iov_len = len - skip;
				total += len - skip;
				n++;
				skip = 0;
			} else {
				skip -= len;
			}
			if (!cmd->is_read || cmd->error)
				continue;
			if (cmd->copy) {
				if (skip >= cmd->length) {
					skip -= cmd->length;
					continue;
				}
				if (n >= IOV_CAP)
					break;
				e->iov[n].iov_base = cmd->copy + skip;
				e->iov[n].iov_len = cmd->length - skip;
				total += cmd->length - skip;
				skip = 0;
				n++;
				continue;
			}
			uint64_t left = cmd->length;
			for (xseg_request *r : cmd->reqs) {
				uint64_t cap = 0;
				uint8_t *d = r ? (uint8_t *)xseg_req_buffer(xs_of(e), r, &cap) : nullptr;
				uint64_t take = left < e->max_buf ? left : e->max_buf;

				left -= take;
				if (skip >= take) {
					skip -= take;
					continue;
				}
				if (n >= IOV_CAP)
					break;
				// A chunk always holds what it asked for; never read past it.
				if (!d || cap < take) {
					conn_fatal(c, "a READ chunk lost its buffer");
					return;
				}
				e->iov[n].iov_base = d + skip;
				e->iov[n].iov_len = take - skip;
				total += take - skip;
				skip = 0;
				n++;
			}
		}
		ssize_t w = writev(c->fd, e->iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->wblocked = true;
				if (pressure(c))
					conn_copy_out(c);
				break;
			}
			event(e, "gone", c->id, strerror(errno));
			conn_drop(c);
			return;
		}
		// Retire what was written completely.
		size_t done = (size_t)w + c->out_skip;
		while (Cmd *cmd = c->out_head) {
			size_t len = REP_SIZE + (cmd->is_read && !cmd->error ? cmd->length : 0);

			if (done < len)
				break;
			done -= len;
			c->out_bytes -= len;
			c->out_count--;
			c->out_head = cmd->out_next;
			if (!c->out_head)
				c->out_tail = nullptr;
			cmd_free(cmd);
		}
		c->out_skip = (uint32_t)done;
		if ((size_t)w < total) {
			c->wblocked = true;
			if (pressure(c))
				conn_copy_out(c);
			break;	// the socket is full: wait for POLLOUT
		}
	}
	if (c->dead)
		return;
	conn_maybe_end(c);
	if (!c->dead)
		conn_update_poll(c);
}

void on_conn_poll(uv_poll_t *h, int status, int events);

void conn_update_poll(Conn *c)
{
	int want = 0;

	if (c->dead || !c->poll_open)
		return;
	if (!c->stalled && !c->full && !c->eof && !c->disc)
		want |= UV_READABLE;
	if (c->out_head)
		want |= UV_WRITABLE;
	if (want == c->poll_events)
		return;
	c->poll_events = want;
	if (want)
		uv_poll_start(&c->poll, want, on_conn_poll);
	else
		uv_poll_stop(&c->poll);
}

// Go on after a stall: retry the blocked command, then the input.
void conn_resume(Conn *c)
{
	if (c->dead || !c->stalled)
		return;
	c->stalled = false;
	if (Cmd *b = c->blocked) {
		c->blocked = nullptr;
		submit_chunks(c, b);
		if (c->stalled || c->dead)
			return;
		if (cmd_ready(b))
			cmd_finish(b);
	}
	conn_input(c);
	if (c->dead)
		return;
	if (!c->stalled && !c->full && c->eof)
		conn_check_eof(c);
	conn_update_poll(c);
}

// Go on after a reply cap was reached, if it no longer is.
void conn_unfull(Conn *c)
{
	if (c->dead || !c->full || conn_over(c))
		return;
	for (size_t i = 0; i < c->e->full.size(); i++)
		if (c->e->full[i] == c)
			c->e->full[i--] = c->e->full.back(), c->e->full.pop_back();
	c->full = false;
	conn_input(c);
	if (c->dead)
		return;
	if (!c->stalled && !c->full && c->eof)
		conn_check_eof(c);
	conn_update_poll(c);
}

void engine_after(Engine *e);

// Read from the socket: into the chunk being filled when nothing is buffered, else the buffer.
void conn_read(Conn *c)
{
	for (int round = 0; round < 8 && !c->dead && !c->stalled && !c->full && !c->eof; round++) {
		Cmd *cur = c->cur;
		ssize_t n;

		if (cur && !c->discard && c->rpos == c->rlen && cur->fill_data && cur->filled < cur->fill_len &&
		    cur->fill_len - cur->filled >= 4096) {
			n = read(c->fd, cur->fill_data + cur->filled, cur->fill_len - cur->filled);
			if (n > 0) {
				cur->filled += (uint32_t)n;
				if (cur->filled == cur->fill_len)
					write_filled(c, cur);
				continue;
			}
		} else {
			if (c->rpos && c->rlen == c->rbuf.size()) {
				memmove(c->rbuf.data(), c->rbuf.data() + c->rpos, c->rlen - c->rpos);
				c->rlen -= c->rpos;
				c->rpos = 0;
			}
			if (c->rlen == c->rbuf.size())
				return;	// full and unparsed: stalled
			size_t space = c->rbuf.size() - c->rlen;

			n = read(c->fd, c->rbuf.data() + c->rlen, space);
			if (n > 0) {
				c->rlen += (size_t)n;
				conn_input(c);
				if ((size_t)n < space)
					return;	// drained, most likely: the loop polls again
				continue;
			}
		}
		if (n == 0) {
			c->eof = true;
			if (!c->stalled && !c->full)
				conn_check_eof(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			event(c->e, "gone", c->id, strerror(errno));
			conn_drop(c);
		}
		return;
	}
}

void process_replies(Engine *e);

/*
 * --spin-us: instead of going back to the loop (and sleeping), poll for up
 * to spin_ns for the next thing to do: a reply in the port's queue (taken
 * here, true) or an event the loop would wake for, e.g. the client's next
 * request (false: the callback returns and the loop handles it at once,
 * without sleeping). Without the spin each of them costs a wake-up, tens of
 * microseconds on a virtual machine; with it the loop thread stays busy.
 */
bool spin(Engine *e)
{
	struct xseg *xs = xs_of(e);
	uint64_t start;
	int backend;

	if (!e->spin_ns || !xs || e->conns.empty())
		return false;
	backend = uv_backend_fd(e->loop);
	start = xseg_sys_now_ns();
	for (uint32_t i = 1;; i++) {
		uint32_t reqs = 0, reps = 0;

		if (xseg_port_depths(xs, e->port, &reqs, &reps) == 0 && reps) {
			process_replies(e);
			return true;
		}
		if (i % 16 == 0) {
			struct epoll_event ev;

			// Level-triggered: what is ready stays ready for the loop's own epoll_wait.
			if (backend >= 0 && epoll_wait(backend, &ev, 1, 0) > 0)
				return false;
			if (xseg_sys_now_ns() - start >= e->spin_ns)
				return false;
		}
	}
}

void on_conn_poll(uv_poll_t *h, int status, int events)
{
	Conn *c = (Conn *)h->data;
	Engine *e = c->e;

	if (!xs_of(e) || e->closed)
		return;
	if (status < 0) {
		event(e, "gone", c->id, uv_strerror(status));
		conn_drop(c);
	} else {
		if (events & UV_WRITABLE)
			conn_flush(c);
		if ((events & UV_READABLE) && !c->dead)
			conn_read(c);
		if (!c->dead)
			conn_update_poll(c);
	}
	engine_after(e);
}

// ----------------------------------------------------------- the port

// Take every reply queued to the engine's port and hand it to its command.
void process_replies(Engine *e)
{
	struct xseg *xs = xs_of(e);
	xseg_request *req;

	if (!xs)
		return;
	while ((req = xseg_receive(xs, e->port))) {
		int idx = xseg_request_index(xs, req);
		Cmd *cmd = idx >= 0 && (uint32_t)idx < e->slot.size() ? e->slot[idx] : nullptr;
		uint32_t err = 0;

		if (!cmd) {
			xseg_put_request(xs, req);	// not ours (an earlier owner's): give it back
			continue;
		}
		e->slot[idx] = nullptr;
		e->xinflight--;
		e->replies++;
		e->stuck = false;	// the storage peer answers again
		if (cmd == ORPHAN) {
			// The late reply of a timed-out request: its command failed already.
			e->orphans--;
			e->late++;
			if (e->held)
				e->held--;
			xseg_put_request(xs, req);
			continue;
		}
		uint32_t state = __atomic_load_n(&req->state, __ATOMIC_ACQUIRE);
		if (state & XS_FAILED)
			err = nbd_error_of(req->error);
		else if (!(state & XS_SERVED))
			err = NBD_EIO;
		else if (cmd->op == X_READ && req->serviced != req->size)
			err = NBD_EIO;
		if (err && !cmd->conn->dead) {
			char msg[160];

			snprintf(msg, sizeof(msg), "%s of %llu at %llu: %s", xseg_op_name(cmd->op),
				 (unsigned long long)req->size, (unsigned long long)req->offset,
				 (state & XS_FAILED) ? errno_name(req->error) : "not served in full");
			event(e, "debug", cmd->conn->id, msg);
		}
		chunk_done(cmd, req, err);
	}
}

void on_port_poll(uv_poll_t *h, int status, int events)
{
	Engine *e = (Engine *)h->data;

	(void)events;
	if (!xs_of(e) || e->closed)
		return;
	if (status < 0) {
		uv_poll_stop(h);
		return;
	}
	e->polled = true;	// drained in on_check (once)
	process_replies(e);
	engine_after(e);
}

// Before the loop may block: announce the wait, then look at the queue once more.
void on_prepare(uv_prepare_t *h)
{
	Engine *e = (Engine *)h->data;
	struct xseg *xs = xs_of(e);
	uint32_t reqs = 0, reps = 0;

	if (!xs || e->closed || e->announced)
		return;
	if (xseg_prepare_wait(xs, e->port) != 0)
		return;
	e->announced = true;
	// A reply queued before the announcement sent no byte: take it now.
	if (xseg_port_depths(xs, e->port, &reqs, &reps) == 0 && reps) {
		process_replies(e);
		engine_after(e);
	}
}

// After epoll: end the wait; drain the FIFO once if it woke us.
void on_check(uv_check_t *h)
{
	Engine *e = (Engine *)h->data;
	struct xseg *xs = xs_of(e);
	struct xseg_sig_posixfd *a;
	bool pending = false;

	if (!xs || e->closed)
		return;
	if (e->announced) {
		a = (struct xseg_sig_posixfd *)xseg_port_signal_area(xs, e->port);
		// A set pending flag makes cancel_wait drain; else drain here what woke us.
		pending = a && __atomic_load_n(&a->pending, __ATOMIC_ACQUIRE) != 0;
		xseg_cancel_wait(xs, e->port);
		e->announced = false;
	}
	if (e->polled && !pending)
		xseg_posixfd_drain(e->fifo);
	e->polled = false;
}

/*
 * The end of every callback: resume stalled connections, one signal for
 * every request submitted in it, replies out (one writev per connection),
 * then the events for TypeScript.
 */
void engine_after(Engine *e)
{
	struct xseg *xs = xs_of(e);

	e->reclaimed = false;
	for (int pass = 0; pass < 4 && xs; pass++) {
		if (e->freed_bytes && !e->full.empty()) {
			std::vector<Conn *> f = e->full;

			e->freed_bytes = false;
			for (Conn *c : f)
				conn_unfull(c);
		}
		e->freed_bytes = false;
		if (!e->stalled.empty()) {
			std::vector<Conn *> st;

			st.swap(e->stalled);
			// The command that owns the next request goes first.
			Conn *first = e->owner && !e->owner->conn->dead ? e->owner->conn : nullptr;
			if (first)
				for (Conn *c : st)
					if (c == first)
						conn_resume(c);
			for (Conn *c : st)
				if (c != first)
					conn_resume(c);
		}
		if (e->need_signal) {
			e->need_signal = false;
			xseg_signal(xs, e->signal_to);
		}
		std::vector<Conn *> d;

		d.swap(e->dirty);
		for (Conn *c : d)
			if (!c->dead)
				conn_flush(c);
		if (!e->stalled.empty() || e->need_signal || !e->dirty.empty() || (e->freed_bytes && !e->full.empty()))
			continue;
		flush_events(e);
		if (!spin(e))
			break;
		pass = 0;	// replies taken while spinning: another round
		xs = xs_of(e);
	}
	// Connections a reply cap stopped, freed in the last round: nothing else may wake them.
	if (xs && e->freed_bytes && !e->full.empty()) {
		std::vector<Conn *> f = e->full;

		e->freed_bytes = false;
		for (Conn *c : f)
			conn_unfull(c);
		if (e->need_signal) {
			e->need_signal = false;
			xseg_signal(xs, e->storage);
		}
		std::vector<Conn *> d;

		d.swap(e->dirty);
		for (Conn *c : d)
			if (!c->dead)
				conn_flush(c);
	}
	e->reclaimed = false;
	flush_events(e);
}

// ----------------------------------------------------------- the request timeout

// @cmd's requests at the storage peer got no reply in time: fail it (EIO); late replies are put back.
void time_out(Engine *e, Cmd *cmd)
{
	struct xseg *xs = xs_of(e);
	Conn *c = cmd->conn;
	char msg[160];

	snprintf(msg, sizeof(msg), "%s of %u at %llu: no reply from the storage port within %.3g s; failed with EIO",
		 xseg_op_name(cmd->op), cmd->length, (unsigned long long)cmd->offset, (double)e->timeout_ns / 1e9);
	for (size_t i = 0; i < e->slot.size(); i++) {
		if (e->slot[i] != cmd)
			continue;
		xseg_request *req = xseg_request_at(xs, (uint32_t)i);

		e->slot[i] = ORPHAN;
		e->orphans++;
		for (xseg_request *&r : cmd->reqs)
			if (r == req)
				r = nullptr;
		if (c->held)
			c->held--;	// still in e->held until its reply comes
		cmd->pending--;
	}
	if (!cmd->error)
		cmd->error = NBD_EIO;
	e->timeouts++;
	e->stuck = true;
	if (!c->dead)
		event(e, "debug", c->id, msg);
	if (cmd_ready(cmd))
		cmd_finish(cmd);
}

void on_timer(uv_timer_t *h)
{
	Engine *e = (Engine *)h->data;
	struct xseg *xs = xs_of(e);
	uint64_t now;

	if (!xs || e->closed || !e->timeout_ns)
		return;
	now = xseg_sys_now_ns();
	if (e->xinflight > e->orphans) {
		for (size_t i = 0; i < e->slot.size(); i++) {
			Cmd *cmd = e->slot[i];

			if (cmd && cmd != ORPHAN && now - e->slot_ns[i] >= e->timeout_ns)
				time_out(e, cmd);
		}
	}
	// Commands that wait for a request (the segment's are at a stuck peer): fail them too.
	std::vector<Conn *> all;

	for (auto &kv : e->conns)
		all.push_back(kv.second);
	for (Conn *c : all) {
		if (c->dead)
			continue;
		if (Cmd *b = c->blocked) {
			if (now - b->start_ns >= e->timeout_ns) {
				c->blocked = nullptr;
				if (!b->error)
					b->error = NBD_EIO;
				b->next = b->length;
				e->timeouts++;
				if (e->owner == b)
					e->owner = nullptr;
				if (cmd_ready(b))
					cmd_finish(b);
			}
		}
		if (Cmd *cur = c->cur) {
			if (!cur->fill && c->stalled && now - cur->start_ns >= e->timeout_ns) {
				e->timeouts++;
				if (e->owner == cur)
					e->owner = nullptr;
				write_fail(c, cur);
			}
		}
	}
	engine_after(e);
}

// ----------------------------------------------------------- lifetime

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
	e->timeout_ns = (uint64_t)timeout_ms * 1000000;
	e->conn_bytes = conn_bytes;
	e->total_bytes = total_bytes;
	e->conn_reqs = conn_reqs;
	e->total_reqs = total_reqs;
	e->fifo = fd;
	e->loop = loop;
	e->slot.assign(xseg_config(s->xs)->nr_requests, nullptr);
	e->slot_ns.assign(xseg_config(s->xs)->nr_requests, 0);
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
		uint64_t tick = timeout_ms / 4;

		tick = tick < 5 ? 5 : tick > 1000 ? 1000 : tick;
		e->timer.data = e;
		e->timer_open = true;
		e->handles++;
		if (timeout_ms)
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

// nbd_conn(engine, id, fd, target, size, readonly, initial?) -> undefined.
// Serves the connection from now on, on a dup() of @fd (TypeScript stopped
// reading it); @initial holds bytes already received after the handshake.
Napi::Value nbd_conn(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_conn");
	uint32_t id, fd;
	uint64_t size;
	uv_loop_t *loop;

	if (!e || !arg_u32(info, 1, "nbd_conn", &id) || !arg_u32(info, 2, "nbd_conn", &fd) ||
	    !arg_u64(info, 4, "nbd_conn", &size))
		return env.Undefined();
	if (!info[3].IsString() || e->conns.count(id)) {
		throw_errno(env, -EINVAL, "nbd_conn", "bad target or connection id");
		return env.Undefined();
	}
	std::string target = info[3].As<Napi::String>().Utf8Value();
	if (target.size() > XSEG_TARGET_MAX) {
		throw_errno(env, -ENAMETOOLONG, "nbd_conn", "the target is too long");
		return env.Undefined();
	}
	int dfd = dup((int)fd);
	if (dfd < 0) {
		throw_errno(env, -errno, "nbd_conn", "dup");
		return env.Undefined();
	}
	napi_get_uv_event_loop(env, &loop);
	Conn *c = new Conn();
	c->e = e;
	c->id = id;
	c->fd = dfd;
	c->target = target;
	c->size = size;
	c->readonly = info[5].ToBoolean().Value();
	size_t initial = 0;
	if (info.Length() > 6 && info[6].IsBuffer())
		initial = info[6].As<Napi::Buffer<uint8_t>>().Length();
	c->rbuf.resize(initial > RBUF ? initial : RBUF);
	if (initial) {
		memcpy(c->rbuf.data(), info[6].As<Napi::Buffer<uint8_t>>().Data(), initial);
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
	uv_unref((uv_handle_t *)&c->poll);	// the Node socket keeps the loop alive
	e->conns[id] = c;
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

// nbd_conn_close(engine, id): stop serving it now, without events (the socket is going away).
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
	return info.Env().Undefined();
}

// nbd_stats(engine) -> { commands, errors, bytesRead, bytesWritten, inflight, replies,
// timeouts, late, orphans, held, committed, copied }
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
	o.Set("replies", Napi::Number::New(env, (double)e->replies));
	o.Set("timeouts", Napi::Number::New(env, (double)e->timeouts));
	o.Set("late", Napi::Number::New(env, (double)e->late));
	o.Set("orphans", Napi::Number::New(env, (double)e->orphans));
	o.Set("held", Napi::Number::New(env, (double)e->held));
	o.Set("committed", Napi::Number::New(env, (double)e->committed));
	o.Set("copied", Napi::Number::New(env, (double)e->copied));
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

}  // namespace

void init_nbdfast(Napi::Env env, Napi::Object exports)
{
	exports.Set("nbd_engine", Napi::Function::New(env, nbd_engine, "nbd_engine"));
	exports.Set("nbd_conn", Napi::Function::New(env, nbd_conn, "nbd_conn"));
	exports.Set("nbd_conn_shutdown", Napi::Function::New(env, nbd_conn_shutdown, "nbd_conn_shutdown"));
	exports.Set("nbd_conn_close", Napi::Function::New(env, nbd_conn_close, "nbd_conn_close"));
	exports.Set("nbd_stats", Napi::Function::New(env, nbd_stats, "nbd_stats"));
	exports.Set("nbd_engine_close", Napi::Function::New(env, nbd_engine_close, "nbd_engine_close"));
}

}  // namespace xnode
