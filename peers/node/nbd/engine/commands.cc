// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/commands.cc - the commands: a request header parsed and checked, its chunks
// taken from the segment and submitted, its reply queued (caps, stalls, WRITE
// payloads).
#include "peers/node/nbd/engine/engine.h"

namespace xnode {
namespace nbd {

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
	cmd->zero_fill = cmd->done = cmd->is_read = cmd->is_map = cmd->is_zcheck = false;
	cmd->rep_len = REP_SIZE;
	cmd->body.clear();
	cmd->start_ms = uv_now(e->loop);
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


/*
 * Give back a request that @cmd holds. A data chunk with a maxBuf buffer is
 * kept warm instead (up to warm_max, still counted in e->held): the next
 * data chunk reuses the most recent one, whose buffer the last copies left
 * in the CPUs' caches. The segment's free lists are queues, so a buffer
 * from there is the one used longest ago (with 256 buffers of 1 MiB, every
 * copy into or out of it missed the caches: docs/nbd.md, Performance).
 * The warm ones go back after a timer tick without use, and at the first
 * tick of a shrink of the segment, which waits for them (on_timer).
 */
void put_req(Cmd *cmd, xseg_request *req)
{
	Engine *e = cmd->conn->e;
	struct xseg *xs = xs_of(e);
	uint64_t cap = 0;

	if (!req)
		return;
	if (cmd->conn->held)
		cmd->conn->held--;
	if (xs && !e->closed && !e->shrinking && e->warm.size() < e->warm_max && (cmd->op == X_READ || cmd->op == X_WRITE) &&
	    xseg_req_buffer(xs, req, &cap) && cap == e->max_buf &&
	    (__atomic_load_n(&req->state, __ATOMIC_ACQUIRE) >> XS_LIFE_SHIFT & 0xFFu) == XS_RECEIVED) {
		e->warm.push_back(req);
		return;
	}
	if (e->held)
		e->held--;
	if (xs)
		xseg_put_request(xs, req);
}

// Give every warm request back to the segment.
void warm_release(Engine *e)
{
	struct xseg *xs = xs_of(e);

	for (xseg_request *req : e->warm) {
		if (e->held)
			e->held--;
		if (xs)
			xseg_put_request(xs, req);
	}
	e->warm.clear();
}

// A warm request for a data chunk of @datalen bytes (already counted in e->held), or NULL.
static xseg_request *warm_take(Engine *e, const Conn *c, uint64_t datalen)
{
	xseg_request *req;

	if (e->warm.empty() || !datalen || datalen > e->max_buf || c->target.size() > XSEG_TARGET_MAX)
		return nullptr;
	req = e->warm.back();
	e->warm.pop_back();
	e->warm_used = true;
	e->warm_hits++;
	// As xseg_prep_request would for a PREPARED one: the target, the length of its buffer in use.
	memcpy(req->target, c->target.data(), c->target.size());
	req->target_len = (uint32_t)c->target.size();
	req->data_len = datalen;
	req->serviced = 0;
	return req;
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

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/*
 * The reply's header in cmd->rep: a simple reply, or (structured replies
 * negotiated) the one chunk of the command, NBD_REPLY_FLAG_DONE set: ERROR
 * (no message), OFFSET_DATA for a READ's data, BLOCK_STATUS (its body
 * follows), else NONE.
 */
static void reply_header(Cmd *cmd)
{
	Conn *c = cmd->conn;
	uint8_t *r = cmd->rep;
	uint16_t type;
	uint64_t len;

	if (!c->structured) {
		be32(r, SIMPLE_REPLY_MAGIC);
		be32(r + 4, cmd->error);
		memcpy(r + 8, cmd->handle, 8);
		cmd->rep_len = REP_SIZE;
		return;
	}
	if (cmd->error) {
		cmd->body.clear();
		type = REPLY_TYPE_ERROR;
		len = 6;
		be32(r + 20, cmd->error);
		r[24] = r[25] = 0;	// no message
	} else if (cmd->is_read && cmd->length) {
		type = REPLY_TYPE_OFFSET_DATA;
		len = 8 + (uint64_t)cmd->length;
		be64(r + 20, cmd->offset);
	} else if (cmd->is_map) {
		type = REPLY_TYPE_BLOCK_STATUS;
		len = cmd->body.size();
	} else {
		type = REPLY_TYPE_NONE;
		len = 0;
	}
	be32(r, STRUCTURED_REPLY_MAGIC);
	r[4] = 0;
	r[5] = REPLY_FLAG_DONE;
	r[6] = (uint8_t)(type >> 8);
	r[7] = (uint8_t)type;
	memcpy(r + 8, cmd->handle, 8);
	be32(r + 16, (uint32_t)len);
	cmd->rep_len = 20 + (type == REPLY_TYPE_ERROR ? 6 : type == REPLY_TYPE_OFFSET_DATA ? 8 : 0);
}

/*
 * The MAPR reply of a BLOCK_STATUS (xseg/xseg_extents.h) as base:allocation
 * descriptors in cmd->body: the context id, then (length, flags) pairs,
 * adjacent extents of the same flags merged, clipped to the command's range,
 * only the first with NBD_CMD_FLAG_REQ_ONE. A storage peer that cannot tell
 * (ENOTSUP) gets the whole range as allocated data. Returns the command's error.
 */
uint32_t map_done(Cmd *cmd, xseg_request *req, uint32_t err)
{
	Engine *e = cmd->conn->e;
	uint64_t cap = 0, at = 0, n;
	const uint8_t *d;
	uint32_t last = 0;
	std::vector<uint8_t> &b = cmd->body;

	b.resize(4);
	be32(b.data(), cmd->conn->meta_id);
	if (err == NBD_ENOTSUP) {
		b.resize(12);
		be32(b.data() + 4, cmd->length);
		be32(b.data() + 8, 0);
		return 0;
	}
	if (err)
		return err;
	d = (const uint8_t *)xseg_req_buffer(xs_of(e), req, &cap);
	n = req->serviced / XSEG_EXTENT_SIZE;
	if (!d)
		n = 0;
	if (n > cap / XSEG_EXTENT_SIZE)
		n = cap / XSEG_EXTENT_SIZE;
	for (uint64_t i = 0; i < n && at < cmd->length; i++) {
		uint64_t len;
		uint32_t fl;

		xseg_extent_get(d, (uint32_t)i, &len, &fl);
		if (!len)
			break;
		if (len > cmd->length - at)
			len = cmd->length - at;
		fl &= XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO;
		if (b.size() > 4 && fl == last) {
			uint8_t *p = b.data() + b.size() - 8;

			be32(p, rd32(p) + (uint32_t)len);
		} else {
			if (b.size() > 4 && (cmd->flags & FLAG_REQ_ONE))
				break;
			b.resize(b.size() + 8);
			be32(b.data() + b.size() - 8, (uint32_t)len);
			be32(b.data() + b.size() - 4, fl);
			last = fl;
		}
		at += len;
	}
	if (b.size() == 4) {
		event(e, "debug", cmd->conn->id, "mapr: the storage peer answered no extent");
		b.clear();
		return NBD_EIO;
	}
	return 0;
}

/*
 * A fast zero (WRITE_ZEROES with NBD_CMD_FLAG_FAST_ZERO): zeroing is cheap
 * only where nothing has to be done, so it succeeds when the storage peer's
 * MAPR shows the whole range already reading as zeroes (XSEG_EXTENT_ZERO),
 * and fails ENOTSUP at once otherwise (data in the range, a reply covering
 * less than the range, a peer that cannot tell, any failure): the client
 * then zeroes the slow way. Returns the command's error.
 */
uint32_t zero_check(Cmd *cmd, xseg_request *req, uint32_t err)
{
	Engine *e = cmd->conn->e;
	uint64_t cap = 0, at = 0, n;
	const uint8_t *d;

	if (err)
		return NBD_ENOTSUP;
	d = (const uint8_t *)xseg_req_buffer(xs_of(e), req, &cap);
	n = d ? req->serviced / XSEG_EXTENT_SIZE : 0;
	if (n > cap / XSEG_EXTENT_SIZE)
		n = cap / XSEG_EXTENT_SIZE;
	for (uint64_t i = 0; i < n && at < cmd->length; i++) {
		uint64_t len;
		uint32_t fl;

		xseg_extent_get(d, (uint32_t)i, &len, &fl);
		if (!len || !(fl & XSEG_EXTENT_ZERO))
			break;
		at += len;
	}
	return at >= cmd->length ? 0 : NBD_ENOTSUP;
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
	reply_header(cmd);
	if (c->out_tail)
		c->out_tail->out_next = cmd;
	else
		c->out_head = cmd;
	c->out_tail = cmd;
	c->out_count++;
	c->out_bytes += reply_bytes(cmd);
	mark_dirty(c);
}

// The bytes of @cmd's reply: its header, a BLOCK_STATUS body, a READ's data.
uint64_t reply_bytes(const Cmd *cmd)
{
	return cmd->rep_len + cmd->body.size() + (cmd->is_read && !cmd->error ? cmd->length : 0);
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
	if (cmd->is_map && req)
		err = map_done(cmd, req, err);
	else if (cmd->is_zcheck && req)
		err = zero_check(cmd, req, err);
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

// A free request from the segment, prepared for a chunk of @datalen bytes, or NULL.
static xseg_request *fresh_req(Engine *e, const Conn *c, uint64_t datalen)
{
	struct xseg *xs = xs_of(e);
	// All connections together leave some for the handshakes and the segment's other peers.
	xseg_request *req = e->held < e->total_reqs ? xseg_get_request(xs, e->port) : nullptr;

	if (req && xseg_prep_request(xs, req, c->target.data(), (uint32_t)c->target.size(), datalen) < 0) {
		xseg_put_request(xs, req);
		req = nullptr;
	}
	if (req) {
		e->held++;
		if (datalen)
			e->warm_misses++;
	}
	return req;
}

/*
 * A request for a chunk of @cmd, or NULL when the segment has none free (or
 * another command waits for one first: a command that got only part of its
 * chunks takes the next free request, so big commands cannot starve one
 * another into a deadlock). A data chunk takes a warm request first.
 */
xseg_request *get_req(Cmd *cmd, uint64_t offset, uint64_t size, uint64_t datalen)
{
	Conn *c = cmd->conn;
	Engine *e = c->e;
	xseg_request *req;

	if (!xs_of(e))
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
	// ... and all of them some for the others (fresh_req); a warm buffer first.
	req = warm_take(e, c, datalen);
	if (!req)
		req = fresh_req(e, c, datalen);
	if (!req && !e->reclaimed) {
		// Slow readers may sit on requests: copy their replies out, once per callback.
		reclaim(e);
		req = warm_take(e, c, datalen);
		if (!req)
			req = fresh_req(e, c, datalen);
	}
	if (!req) {
		e->owner = cmd;
		return nullptr;
	}
	if (e->owner == cmd)
		e->owner = nullptr;
	c->held++;
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
	e->slot_ms[idx] = uv_now(e->loop);	// the request timeout counts from here (the loop's cached clock: no clock read per request)
	e->xinflight++;
	cmd->conn->at_peer++;
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
	bool whole = cmd->op == X_FLUSH || cmd->op == X_DISCARD || cmd->op == X_WRITE_ZEROES || cmd->op == X_MAPR;
	// MAPR: room for 4096 extents (or what one buffer holds).
	uint64_t map_len = e->max_buf < 65536 ? e->max_buf : 65536;

	do {
		uint64_t left = cmd->length - cmd->next;
		uint64_t size = whole ? left : (left < e->max_buf ? left : e->max_buf);
		xseg_request *req = get_req(cmd, cmd->offset + cmd->next, size,
					    cmd->op == X_MAPR ? map_len : whole ? 0 : size);

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
	c->big_write = false;	// until a WRITE of BIG_WRITE or more is accepted (below)
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
		allowed = FLAG_FUA | FLAG_NO_HOLE | FLAG_FAST_ZERO;
		break;
	case NBD_CMD_CACHE:
		allowed = 0;
		break;
	case NBD_CMD_BLOCK_STATUS:
		allowed = FLAG_REQ_ONE;
		if (!c->structured || !c->meta)
			err = NBD_EINVAL;	// no metadata context negotiated
		break;
	default:
		allowed = 0;	// RESIZE: not offered
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
		case NBD_CMD_CACHE:
			if (!range)
				err = NBD_EINVAL;
			break;
		case NBD_CMD_BLOCK_STATUS:
			if (!range || !length)
				err = NBD_EINVAL;
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
		c->big_write = length >= BIG_WRITE;
		return;
	case NBD_CMD_FLUSH:
		cmd->op = X_FLUSH;
		submit_chunks(c, cmd);
		return;
	case NBD_CMD_CACHE:
		// READs whose data is dropped: the storage peer reads the range into its cache.
		cmd->op = X_READ;
		if (!length) {
			cmd_finish(cmd);
			return;
		}
		submit_chunks(c, cmd);
		return;
	case NBD_CMD_BLOCK_STATUS:
		cmd->op = X_MAPR;
		cmd->is_map = true;
		submit_chunks(c, cmd);
		return;
	default:	// TRIM, WRITE_ZEROES
		if (!length) {
			cmd_finish(cmd);
			return;
		}
		if (type == NBD_CMD_TRIM) {
			cmd->op = X_DISCARD;
		} else if (flags & FLAG_FAST_ZERO) {
			// Fast only if there is nothing to do; NO_HOLE (allocate) or FUA never are.
			if (flags & (FLAG_NO_HOLE | FLAG_FUA)) {
				cmd->error = NBD_ENOTSUP;
				cmd_finish(cmd);
				return;
			}
			cmd->op = X_MAPR;
			cmd->is_zcheck = true;
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
			if (cur->fill_data) {
				memcpy(cur->fill_data + cur->filled, p, n);
				c->e->write_copied += n;
			}
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

}  // namespace nbd
}  // namespace xnode
