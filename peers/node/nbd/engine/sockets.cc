// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/engine/sockets.cc - the gateway's sockets, owned here from
// the start: listening (a unix socket or TCP), accepting, the descriptors of
// connections in their handshake, and the end of a connection (lingering).
//
// Node never owns a data socket. A connection accepted here gets an id and
// stays in e->pending while TypeScript runs the handshake on a dup() of it
// (the 'accept' event carries that dup, which TypeScript wraps in a
// net.Socket({ fd }), a public API); nbd_conn() then serves the original
// here, and TypeScript closes its dup (a close() of one of two descriptors
// sends nothing to the client).
//
// After NBD_CMD_DISC, EOF or shutdown, once every reply is out, the engine
// shuts its side down (FIN) and lingers: it reads and drops whatever the
// client still sends until its EOF, so that the close never resets data
// the client has not read yet; then 'closed'.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "peers/node/nbd/engine/engine.h"

namespace xnode {
namespace nbd {

struct Listener {
	Engine *e;
	uint32_t id;
	int fd;
	uv_poll_t poll;
};

struct Linger {
	Engine *e;
	uint32_t id;
	int fd;
	uv_poll_t poll;
};

void on_listener_closed(uv_handle_t *h)
{
	Listener *l = (Listener *)h->data;
	Engine *e = l->e;

	close(l->fd);
	delete l;
	e->handles--;
	maybe_free_engine(e);
}

void listener_close(Listener *l)
{
	l->e->listeners.erase(l->id);
	uv_close((uv_handle_t *)&l->poll, on_listener_closed);
}

void on_listener_poll(uv_poll_t *h, int status, int events)
{
	Listener *l = (Listener *)h->data;
	Engine *e = l->e;
	char msg[128];

	(void)events;
	if (e->closed)
		return;
	if (status < 0) {
		snprintf(msg, sizeof(msg), "listener: %s", uv_strerror(status));
		event(e, "error", l->id, msg);
		flush_events(e);
		return;
	}
	// A few per wake-up: other work gets its turn; the poll is level-triggered.
	for (int n = 0; n < 64; n++) {
		int fd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				snprintf(msg, sizeof(msg), "listener: accept: %s", strerror(errno));
				event(e, "error", l->id, msg);
			}
			break;
		}
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));	// fails harmlessly on a unix socket
		int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

		if (dfd < 0) {
			snprintf(msg, sizeof(msg), "listener: dup: %s", strerror(errno));
			event(e, "error", l->id, msg);
			close(fd);
			break;
		}
		uint32_t id = ++e->next_id;

		e->pending[id] = fd;
		event(e, "accept", id, "", dfd);
	}
	flush_events(e);
}

// A listening socket of @family at @addr, polled from now on; its id or -errno.
int listen_on(Engine *e, int family, const sockaddr *addr, socklen_t len)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	if (family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, addr, len) < 0 || listen(fd, 511) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	Listener *l = new Listener();
	l->e = e;
	l->fd = fd;
	if (uv_poll_init(e->loop, &l->poll, fd) != 0) {
		close(fd);
		delete l;
		return -EIO;
	}
	l->id = ++e->next_id;
	l->poll.data = l;
	e->handles++;
	e->listeners[l->id] = l;
	uv_poll_start(&l->poll, UV_READABLE, on_listener_poll);	// keeps the loop alive, as a net.Server does
	return (int)l->id;
}

// Close the descriptor of connection @id if it is in its handshake; false if it is not.
bool pending_close(Engine *e, uint32_t id)
{
	auto it = e->pending.find(id);

	if (it == e->pending.end())
		return false;
	close(it->second);
	e->pending.erase(it);
	return true;
}

// The descriptor of connection @id, taken out of the handshake table, or -1.
int pending_take(Engine *e, uint32_t id)
{
	auto it = e->pending.find(id);
	int fd;

	if (it == e->pending.end())
		return -1;
	fd = it->second;
	e->pending.erase(it);
	return fd;
}

/*
 * nbd_conn_pair(engine, id) -> fd. For a connection whose handshake switched
 * to TLS (NBD_OPT_STARTTLS): TypeScript terminates TLS on its dup of the
 * client's descriptor, so the engine must serve plaintext from elsewhere.
 * The engine's own descriptor of the client is closed (the dup keeps the
 * connection) and replaced by one end of a new socketpair; the other end is
 * returned, for TypeScript to pump to and from its TLS socket. The engine
 * then serves (nbd_conn), lingers and closes its end as any connection's.
 */
Napi::Value nbd_conn_pair(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_conn_pair");
	uint32_t id;
	int sv[2];

	if (!e || !arg_u32(info, 1, "nbd_conn_pair", &id))
		return env.Undefined();
	auto it = e->pending.find(id);
	if (it == e->pending.end()) {
		throw_errno(env, -EINVAL, "nbd_conn_pair", "no connection in its handshake with this id");
		return env.Undefined();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		throw_errno(env, -errno, "nbd_conn_pair", "socketpair");
		return env.Undefined();
	}
	close(it->second);
	it->second = sv[0];
	return Napi::Number::New(env, sv[1]);
}

// ----------------------------------------------------------- lingering

void on_linger_closed(uv_handle_t *h)
{
	Linger *g = (Linger *)h->data;
	Engine *e = g->e;

	close(g->fd);
	delete g;
	e->handles--;
	maybe_free_engine(e);
}

void linger_close(Linger *g, bool tell)
{
	Engine *e = g->e;

	e->lingers.erase(g->id);
	if (tell)
		event(e, "closed", g->id, "");
	uv_close((uv_handle_t *)&g->poll, on_linger_closed);
}

void on_linger_poll(uv_poll_t *h, int status, int events)
{
	Linger *g = (Linger *)h->data;
	Engine *e = g->e;
	uint8_t buf[16384];

	(void)events;
	if (e->closed)
		return;
	// A bounded number of reads per wake-up (the poll is level-triggered): a flood cannot hold the loop.
	for (int i = 0; i < 64; i++) {
		ssize_t n = status < 0 ? -1 : read(g->fd, buf, sizeof(buf));

		if (n > 0)
			continue;
		if (n < 0 && status >= 0 && errno == EINTR)
			continue;
		if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		linger_close(g, true);	// EOF or an error: over
		break;
	}
	flush_events(e);
}

// Connection @id sent every reply and shut its side down: drop what the client sends until its EOF, then close @fd.
void linger_start(Engine *e, uint32_t id, int fd)
{
	Linger *g = new Linger();

	g->e = e;
	g->id = id;
	g->fd = fd;
	if (e->closed || uv_poll_init(e->loop, &g->poll, fd) != 0) {
		close(fd);
		delete g;
		if (!e->closed) {
			event(e, "closed", id, "");
			flush_events(e);
		}
		return;
	}
	g->poll.data = g;
	e->handles++;
	e->lingers[id] = g;
	uv_poll_start(&g->poll, UV_READABLE, on_linger_poll);
}

// Stop lingering on connection @id now (no event); false if it does not linger.
bool linger_stop(Engine *e, uint32_t id)
{
	auto it = e->lingers.find(id);

	if (it == e->lingers.end())
		return false;
	linger_close(it->second, false);
	return true;
}

// Close every listener, handshake descriptor and lingering connection (the engine closes).
void sockets_close(Engine *e)
{
	std::vector<Listener *> ls;
	std::vector<Linger *> gs;

	for (auto &kv : e->listeners)
		ls.push_back(kv.second);
	for (Listener *l : ls)
		listener_close(l);
	for (auto &kv : e->lingers)
		gs.push_back(kv.second);
	for (Linger *g : gs)
		linger_close(g, false);
	for (auto &kv : e->pending)
		close(kv.second);
	e->pending.clear();
}

// ----------------------------------------------------------- the functions

// nbd_listen_unix(engine, path) -> listener id. Binds @path (which must not
// exist: TypeScript removed a stale socket first) and listens.
Napi::Value nbd_listen_unix(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_listen_unix");
	sockaddr_un sun;

	if (!e)
		return env.Undefined();
	if (info.Length() < 2 || !info[1].IsString()) {
		throw_errno(env, -EINVAL, "nbd_listen_unix", "argument 2 must be a path");
		return env.Undefined();
	}
	std::string path = info[1].As<Napi::String>().Utf8Value();
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof(sun.sun_path) || path.find('\0') != std::string::npos) {
		throw_errno(env, -ENAMETOOLONG, "nbd_listen_unix", "the socket path is empty or too long");
		return env.Undefined();
	}
	memcpy(sun.sun_path, path.data(), path.size());
	int r = listen_on(e, AF_UNIX, (const sockaddr *)&sun, (socklen_t)sizeof(sun));
	if (r < 0) {
		std::string what = "cannot listen on " + path + ": " + strerror(-r);

		throw_errno(env, r, "nbd_listen_unix", what.c_str());
		return env.Undefined();
	}
	return Napi::Number::New(env, r);
}

// nbd_listen_tcp(engine, address, port) -> { id, address, port }. @address is
// a numeric IPv4 or IPv6 address (TypeScript resolves names); port 0: any free one.
Napi::Value nbd_listen_tcp(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Engine *e = engine_of(info, "nbd_listen_tcp");
	uint32_t port;
	sockaddr_storage ss;
	socklen_t len;
	char text[INET6_ADDRSTRLEN];

	if (!e || !arg_u32(info, 2, "nbd_listen_tcp", &port))
		return env.Undefined();
	if (!info[1].IsString() || port > 65535) {
		throw_errno(env, -EINVAL, "nbd_listen_tcp", "bad address or port");
		return env.Undefined();
	}
	std::string host = info[1].As<Napi::String>().Utf8Value();
	memset(&ss, 0, sizeof(ss));
	sockaddr_in *in4 = (sockaddr_in *)&ss;
	sockaddr_in6 *in6 = (sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		len = sizeof(*in6);
	} else {
		throw_errno(env, -EINVAL, "nbd_listen_tcp", "the address is not a numeric IPv4 or IPv6 address");
		return env.Undefined();
	}
	int r = listen_on(e, ss.ss_family, (const sockaddr *)&ss, len);
	if (r < 0) {
		std::string what = "cannot listen on " + host + ":" + std::to_string(port) + ": " + strerror(-r);

		throw_errno(env, r, "nbd_listen_tcp", what.c_str());
		return env.Undefined();
	}
	Listener *l = e->listeners[(uint32_t)r];
	len = sizeof(ss);
	getsockname(l->fd, (sockaddr *)&ss, &len);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, text, sizeof(text));
		port = ntohs(in4->sin_port);
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
		port = ntohs(in6->sin6_port);
	}
	Napi::Object o = Napi::Object::New(env);
	o.Set("id", Napi::Number::New(env, r));
	o.Set("address", Napi::String::New(env, text));
	o.Set("port", Napi::Number::New(env, port));
	return o;
}

// nbd_listen_close(engine, id): stop listening (the descriptor is closed; a unix socket's path stays).
Napi::Value nbd_listen_close(const Napi::CallbackInfo &info)
{
	Engine *e = engine_of(info, "nbd_listen_close");
	uint32_t id;

	if (!e || !arg_u32(info, 1, "nbd_listen_close", &id))
		return info.Env().Undefined();
	auto it = e->listeners.find(id);
	if (it != e->listeners.end())
		listener_close(it->second);
	return info.Env().Undefined();
}

}  // namespace nbd
}  // namespace xnode
