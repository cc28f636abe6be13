// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/replies.cc - the engine's port: the storage peer's replies taken
// (poll, prepare/check wake-ups), the end of each callback, the request timeout.
#include "peers/node/nbd/engine/engine.h"

namespace xnode {
namespace nbd {

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

		if (!cmd && !e->ctl.empty() && ctl_reply(e, idx, req))
			continue;	// the gateway's own OPEN or CLOSE

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
		conn_peer_done(cmd->conn);
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
		if (!e->undefer.empty()) {
			std::vector<Conn *> u;

			// Deferred input (socket.cc): read it now, before the signal.
			u.swap(e->undefer);
			for (Conn *c : u) {
				c->read_queued = false;
				if (c->dead)
					continue;
				conn_read(c);
				// A connection with replies to write gets its poll set by their flush, below.
				if (!c->dead && !c->dirty)
					conn_update_poll(c);
			}
		}
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
		if (!e->stalled.empty() || e->need_signal || !e->dirty.empty() || !e->undefer.empty() ||
		    (e->freed_bytes && !e->full.empty()))
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
		 xseg_op_name(cmd->op), cmd->length, (unsigned long long)cmd->offset, (double)e->timeout_ms / 1e3);
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
		conn_peer_done(c);
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

	if (!xs || e->closed)
		return;
	// Warm requests unused for a whole tick go back to the segment; all of them while it shrinks.
	struct xseg_grow_status g;

	e->shrinking = xseg_grow_status(xs, &g) == 0 && g.target < g.live_requests;
	if ((!e->warm_used || e->shrinking) && !e->warm.empty())
		warm_release(e);
	e->warm_used = false;
	// Input deferred with no request at the peer to end it (socket.cc): not expected, never left so.
	for (auto &kv : e->conns)
		if (!kv.second->dead)
			conn_check_deferred(kv.second);
	if (!e->timeout_ms) {
		if (!e->undefer.empty())
			engine_after(e);
		return;
	}
	now = uv_now(e->loop);
	if (e->xinflight > e->orphans) {
		for (size_t i = 0; i < e->slot.size(); i++) {
			Cmd *cmd = e->slot[i];

			if (cmd && cmd != ORPHAN && now - e->slot_ms[i] >= e->timeout_ms)
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
			if (now - b->start_ms >= e->timeout_ms) {
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
			if (!cur->fill && c->stalled && now - cur->start_ms >= e->timeout_ms) {
				e->timeouts++;
				if (e->owner == cur)
					e->owner = nullptr;
				write_fail(c, cur);
			}
		}
	}
	engine_after(e);
}

}  // namespace nbd
}  // namespace xnode
