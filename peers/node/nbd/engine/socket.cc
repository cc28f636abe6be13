// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/socket.cc - a connection's socket: reading requests, writing replies
// (one writev per batch), copying a slow reader's data out, spinning.
#include <sys/socket.h>
#include "peers/node/nbd/engine/engine.h"

namespace xnode {
namespace nbd {

void conn_update_poll(Conn *c);
static void conn_read_later(Conn *c);

void on_conn_closed(uv_handle_t *h)
{
	Conn *c = (Conn *)h->data;
	Engine *e = c->e;

	if (c->fd >= 0 && c->linger && !e->closed)
		linger_start(e, c->id, c->fd);
	else if (c->fd >= 0)
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
	for (size_t i = 0; i < e->undefer.size(); i++)
		if (e->undefer[i] == c)
			e->undefer[i--] = e->undefer.back(), e->undefer.pop_back();
	c->full = false;
	c->deferred = c->read_queued = false;
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
		// Every reply is out: FIN, then linger until the client's EOF (sockets.cc).
		shutdown(c->fd, SHUT_WR);
		c->linger = true;
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
			// The header, a BLOCK_STATUS body, then the data of a READ, chunk by chunk.
			size_t len = cmd->rep_len;

			if (skip < len) {
				e->iov[n].iov_base = cmd->rep + skip;
				e->iov[n].iov_len = len - skip;
				total += len - skip;
				n++;
				skip = 0;
			} else {
				skip -= len;
			}
			if (!cmd->body.empty()) {
				if (skip >= cmd->body.size()) {
					skip -= cmd->body.size();
				} else {
					if (n >= IOV_CAP)
						break;
					e->iov[n].iov_base = cmd->body.data() + skip;
					e->iov[n].iov_len = cmd->body.size() - skip;
					total += cmd->body.size() - skip;
					skip = 0;
					n++;
				}
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
			size_t len = reply_bytes(cmd);

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
	if (!c->stalled && !c->full && !c->eof && !c->disc && !c->deferred)
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

// Read what the connection has sent, notice its end, and poll for what it waits on.
static void conn_go_on(Conn *c)
{
	conn_input(c);
	if (c->dead)
		return;
	if (c->deferred)
		conn_read_later(c);	// not polled: the socket may hold more
	if (!c->stalled && !c->full && c->eof)
		conn_check_eof(c);
	conn_update_poll(c);
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
	conn_go_on(c);
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
	conn_go_on(c);
}

void engine_after(Engine *e);

/*
 * Deferred input. A client that keeps many commands in flight sends each new
 * one as it reads a reply (fio's nbd engine does), so its input trickles in
 * a command or two at a time, and polling for it woke the loop and cost an
 * epoll_wait and a read every few commands (4K writes at QD32: 0.55
 * epoll_waits and 0.43 reads per command, against 0.16 and 0.09 for 4K
 * reads, whose replies keep the loop busy while the input gathers:
 * docs/nbd.md, Performance). So once the socket is drained with DEFER_MIN
 * or more of the connection's commands unanswered and some of its requests
 * at the storage peer (whose replies are sure to come, or to time out), it
 * is no longer polled: it is read once per batch of replies (conn_peer_done,
 * then engine_after), and the client's sends wake nobody. A command sent
 * meanwhile waits at most until the next reply. The connection polls again
 * once a read finds it drained with nothing at the peer (a client at low
 * depth never defers, even with commands of many chunks).
 */
static void conn_read_later(Conn *c)
{
	if (!c->read_queued && !c->dead) {
		c->read_queued = true;
		c->e->undefer.push_back(c);
	}
}

static void conn_drained(Conn *c)
{
	if (c->deferred) {
		if (!c->at_peer)
			c->deferred = false;	// nothing to come back: poll again (conn_update_poll)
	} else if (c->inflight >= DEFER_MIN && c->at_peer && !c->dead && !c->eof && !c->disc) {
		c->deferred = true;
		c->e->deferrals++;
	}
}

// A request of @c came back from the storage peer (or timed out): read deferred input now.
void conn_peer_done(Conn *c)
{
	if (c->at_peer)
		c->at_peer--;
	if (c->deferred)
		conn_read_later(c);
}

// A deferred connection with nothing at the peer (not expected): read it, which ends the deferral.
void conn_check_deferred(Conn *c)
{
	if (c->deferred && !c->at_peer)
		conn_read_later(c);
}

// Read from the socket: into the chunk being filled when nothing is buffered, else the buffer.
void conn_read(Conn *c)
{
	int round;

	for (round = 0; round < 8 && !c->dead && !c->stalled && !c->full && !c->eof; round++) {
		Cmd *cur = c->cur;
		ssize_t n;

		// A big WRITE whose payload is arriving and whose next chunk has no
		// request yet (its header was the last thing parsed, or a chunk was just
		// filled): take the request now, so the payload is read straight into
		// its buffer. (A small one's is read with the commands after it.)
		if (c->big_write && cur && !c->discard && c->rpos == c->rlen && !cur->fill && !write_chunk(c, cur))
			continue;	// stalled (the loop ends) or failed (its payload is dropped)
		// The rest of a chunk straight into its buffer, unless it is a small
		// one's few bytes, which are read with what follows them (a big
		// WRITE's are not: the read after it is small anyway).
		if (cur && !c->discard && c->rpos == c->rlen && cur->fill_data && cur->filled < cur->fill_len &&
		    (cur->fill_len - cur->filled >= 4096 || c->big_write)) {
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

			// Big WRITEs come one after another: read the next header (and
			// a little), and the rest of its payload straight into its buffer.
			if (c->big_write && space > SMALL_READ)
				space = SMALL_READ;

			n = read(c->fd, c->rbuf.data() + c->rlen, space);
			if (n > 0) {
				c->rlen += (size_t)n;
				conn_input(c);
				if ((size_t)n < space) {
					conn_drained(c);	// most likely: the loop polls again, or defers
					return;
				}
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
		} else {
			conn_drained(c);
		}
		return;
	}
	if (round == 8 && c->deferred)
		conn_read_later(c);	// not drained, and not polled: go on at the end of the callback
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

}  // namespace nbd
}  // namespace xnode
