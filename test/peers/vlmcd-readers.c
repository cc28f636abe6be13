/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: readers of snapshots and read-only volumes through vlmcd,
 * across a vlmcd restart (vlmcd -> mapperd -> filed, each a child). A
 * client OPENs a snapshot (owner=GW1) and reads it; vlmcd is SIGKILLed and
 * started again; a DELETE of the snapshot through the new vlmcd is refused
 * EBUSY naming the reader (its pin, a reader lock of the client's process
 * at mapperd, outlived vlmcd), and mapperd refuses it too; INFO lists the
 * reader; the reader's CLOSE through the new vlmcd drops the pin and the
 * DELETE goes through. A reader in another process that is killed without
 * a CLOSE pins nothing once it is gone (mapperd breaks its dead lock). A
 * reader that only reads (no OPEN, as xsegbd) in a process that is killed:
 * vlmcd notices by itself and closes the snapshot at mapperd, so mapperd,
 * asked directly, names no reader within seconds (no DELETE needed). INFO
 * of a volume lists its ro=1 readers (readers=), in mapperd's reply and
 * through vlmcd.
 */
#include "chain.h"

#define KB 1024ull
#define OBJ (64 * KB)

static pid_t pids[4];


static pid_t start(const char *name, uint32_t port)
{
	return chain_start(name, port, NULL);
}

/* A request from @from to @dst; the reply's data (or error text) NUL-terminated in @msg (4096 bytes). */
static int rq(struct xseg *x, uint32_t from, uint32_t dst, uint32_t op, const char *target, const char *text,
	      uint64_t size, char *msg)
{
	static char buf[4096];
	uint64_t tl = text ? strlen(text) : 0;
	struct tp_req r = { .op = op, .target = target, .size = text ? tl : size, .in = text, .in_len = tl,
			    .buf_len = sizeof(buf), .out = buf, .out_len = sizeof(buf) - 1 };
	int e = tp_do(x, from, dst, &r);

	if (msg) {
		memcpy(msg, buf, sizeof(buf));
		msg[r.serviced < 4096 ? r.serviced : 4095] = 0;
	}
	return e;
}

/* The value of @key in INFO @target's reply at @dst (into @out). */
static void info_key(uint32_t dst, const char *target, const char *key, char *out, size_t n)
{
	char msg[4096], pat[64];
	const char *p, *e;
	int r = rq(xs, me, dst, X_INFO, target, NULL, 0, msg);

	CHECKF(r == 0, "INFO %s: %s '%s'", target, strerror(r), msg);
	snprintf(pat, sizeof(pat), "\n%s=", key);
	p = strstr(msg, pat);
	CHECKF(p, "no %s in INFO %s:\n%s", key, target, msg);
	p += strlen(pat);
	e = strchr(p, '\n');
	snprintf(out, n, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
}

static void restart_vlmcd(void)
{
	CHECK(kill(pids[P_VLMCD], SIGKILL) == 0);
	CHECK(tp_wait(pids[P_VLMCD]) == 128 + SIGKILL);
	pids[P_VLMCD] = start("vlmcd", P_VLMCD);
}

/* A snapshot reader's pin outlives vlmcd: DELETE refused naming it until its CLOSE. */
static void test_pin_survives_restart(void)
{
	char msg[4096], v[1024];
	int e;

	CHECK(rq(xs, me, P_VLMCD, X_CREATE, "pv", "size=1M\nobject_size=65536\n", 0, msg) == 0);
	{
		struct tp_req w = { .op = X_WRITE, .target = "pv", .size = 5, .in = "hello", .in_len = 5 };

		CHECK(tp_do(xs, me, P_VLMCD, &w) == 0);
	}
	CHECK(rq(xs, me, P_VLMCD, X_SNAPSHOT, "pv", "name=s\n", 0, msg) == 0);
	e = rq(xs, me2, P_VLMCD, X_OPEN, "pv@s", "owner=GW1\n", 0, msg);
	CHECKF(e == 0, "OPEN pv@s: %s '%s'", strerror(e), msg);
	CHECK(rq(xs, me2, P_VLMCD, X_READ, "pv@s", NULL, 64, msg) == 0 && !memcmp(msg, "hello", 5));
	info_key(P_MAPPER, "pv@s", "readers", v, sizeof(v));
	CHECKF(strstr(v, ":vlmcd-pin:GW1"), "INFO pv@s readers=%s", v);

	restart_vlmcd();
	e = rq(xs, me, P_VLMCD, X_DELETE, "pv@s", NULL, 0, msg);
	CHECKF(e == EBUSY && strstr(msg, "pv@s is open (read-only) by ") && strstr(msg, ":vlmcd-pin:GW1"),
	       "DELETE through a restarted vlmcd: %s '%s'", strerror(e), msg);
	e = rq(xs, me, P_MAPPER, X_DELETE, "pv@s", NULL, 0, msg);
	CHECKF(e == EBUSY && strstr(msg, ":vlmcd-pin:GW1"), "DELETE at mapperd: %s '%s'", strerror(e), msg);
	info_key(P_VLMCD, "pv@s", "open_by", v, sizeof(v));
	CHECKF(strstr(v, ":vlmcd-pin:GW1"), "INFO pv@s open_by=%s", v);
	/* The reader goes on reading through the new vlmcd, then CLOSEs: the pin is dropped. */
	CHECK(rq(xs, me2, P_VLMCD, X_READ, "pv@s", NULL, 64, msg) == 0 && !memcmp(msg, "hello", 5));
	e = rq(xs, me2, P_VLMCD, X_CLOSE, "pv@s", "owner=GW1\n", 0, msg);
	CHECKF(e == 0, "CLOSE pv@s: %s '%s'", strerror(e), msg);
	e = rq(xs, me, P_VLMCD, X_DELETE, "pv@s", NULL, 0, msg);
	CHECKF(e == 0, "DELETE after the CLOSE: %s '%s'", strerror(e), msg);
}

/*
 * A reader in a process of its own: it sends @op for @target (with @text, or
 * reading @size bytes that must start "hello") from a port of its own, then
 * waits to be killed. Returns once its request was answered.
 */
static pid_t reader_child(uint32_t op, const char *target, const char *text, uint64_t size)
{
	int fds[2];
	pid_t child;
	char c = 0;

	CHECK(pipe(fds) == 0);
	child = xt_fork();
	if (child == 0) {
		struct xseg *x = tx_join(&cfg, "futex");
		int r = xseg_bind_port(x, XSEG_ANY_PORT, 0);
		char m[4096];

		close(fds[0]);
		if (r < 0 || rq(x, (uint32_t)r, P_VLMCD, op, target, text, size, m) ||
		    (op == X_READ && memcmp(m, "hello", 5)))
			_exit(1);
		c = 1;
		if (write(fds[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	CHECK(read(fds[0], &c, 1) == 1 && c == 1);
	close(fds[0]);
	return child;
}

/* A reader process killed without a CLOSE: its pin is a dead holder's, broken by the DELETE. */
static void test_dead_reader(void)
{
	char msg[4096];
	int e;
	pid_t child;

	CHECK(rq(xs, me, P_VLMCD, X_SNAPSHOT, "pv", "name=t\n", 0, msg) == 0);
	child = reader_child(X_OPEN, "pv@t", "owner=GW2\n", 0);
	restart_vlmcd();
	e = rq(xs, me, P_VLMCD, X_DELETE, "pv@t", NULL, 0, msg);
	CHECKF(e == EBUSY && strstr(msg, ":vlmcd-pin:GW2"), "DELETE while the reader lives: %s '%s'", strerror(e),
	       msg);
	CHECK(kill(child, SIGKILL) == 0);
	CHECK(waitpid(child, NULL, 0) == child);
	xseg_recover(xs, NULL);	/* its port */
	e = rq(xs, me, P_VLMCD, X_DELETE, "pv@t", NULL, 0, msg);
	CHECKF(e == 0, "DELETE once the reader is dead: %s '%s'", strerror(e), msg);
}

/*
 * A reader that only reads (xsegbd: no OPEN, no CLOSE) in a process that is
 * killed: vlmcd notices its port is gone by itself (no DELETE through it)
 * and closes the snapshot at mapperd, so mapperd no longer names vlmcd.
 */
static void test_idle_reader_gone(void)
{
	char msg[4096], v[1024];
	pid_t child;
	uint64_t t0;

	CHECK(rq(xs, me, P_VLMCD, X_SNAPSHOT, "pv", "name=u\n", 0, msg) == 0);
	child = reader_child(X_READ, "pv@u", NULL, 64);
	info_key(P_MAPPER, "pv@u", "readers", v, sizeof(v));
	CHECKF(strstr(v, ":vlmcd"), "readers while the reader lives: '%s'", v);
	CHECK(kill(child, SIGKILL) == 0);
	CHECK(waitpid(child, NULL, 0) == child);
	for (t0 = xt_now_ns();; usleep(50000)) {
		info_key(P_MAPPER, "pv@u", "readers", v, sizeof(v));
		if (!strcmp(v, "-"))
			break;
		CHECKF(xt_now_ns() - t0 < 20000000000ull, "20 s after the reader died mapperd still names '%s'", v);
	}
	CHECK(rq(xs, me, P_MAPPER, X_DELETE, "pv@u", NULL, 0, msg) == 0);
}

/* INFO of a volume lists its ro=1 readers, at mapperd and through vlmcd. */
static void test_info_readers(void)
{
	char msg[4096], v[1024];
	int e;

	CHECK(rq(xs, me, P_VLMCD, X_CREATE, "rv", "size=1M\nobject_size=65536\n", 0, msg) == 0);
	info_key(P_VLMCD, "rv", "readers", v, sizeof(v));
	CHECKF(!strcmp(v, "-"), "readers of a volume nobody opened: '%s'", v);
	e = rq(xs, me, P_MAPPER, X_OPEN, "rv", "owner=alice\nro=1\n", 0, msg);
	CHECKF(e == 0, "OPEN ro=1 at mapperd: %s '%s'", strerror(e), msg);
	e = rq(xs, me, P_MAPPER, X_OPEN, "rv", "owner=bob\nro=1\n", 0, msg);
	CHECKF(e == 0, "OPEN ro=1 at mapperd: %s '%s'", strerror(e), msg);
	info_key(P_MAPPER, "rv", "readers", v, sizeof(v));
	CHECKF(!strcmp(v, "alice,bob"), "readers at mapperd: '%s'", v);
	info_key(P_VLMCD, "rv", "open_by", v, sizeof(v));
	CHECKF(!strcmp(v, "-"), "open_by of a volume only read: '%s'", v);
	CHECK(rq(xs, me, P_MAPPER, X_CLOSE, "rv", "owner=alice\n", 0, msg) == 0);
	/* Through vlmcd: an ro=1 OPEN by a client. */
	e = rq(xs, me2, P_VLMCD, X_OPEN, "rv", "owner=GW3\nro=1\n", 0, msg);
	CHECKF(e == 0, "OPEN ro=1 through vlmcd: %s '%s'", strerror(e), msg);
	info_key(P_VLMCD, "rv", "readers", v, sizeof(v));
	CHECKF(strstr(v, "bob") && strstr(v, ":vlmcd:GW3") && !strstr(v, "alice"), "readers: '%s'", v);
	CHECK(rq(xs, me2, P_VLMCD, X_CLOSE, "rv", "owner=GW3\n", 0, msg) == 0);
	CHECK(rq(xs, me, P_MAPPER, X_CLOSE, "rv", "owner=bob\n", 0, msg) == 0);
	info_key(P_VLMCD, "rv", "readers", v, sizeof(v));
	CHECKF(!strcmp(v, "-"), "readers after the CLOSEs: '%s'", v);
}

int main(void)
{
	xt_watchdog(120);
	chain_setup("posix:%s:64:512:64K:0:12:dynports=48:buffers=256K*16");
	pids[P_FILED] = start("filed", P_FILED);
	pids[P_MAPPER] = start("mapperd", P_MAPPER);
	pids[P_VLMCD] = start("vlmcd", P_VLMCD);
	RUN(test_pin_survives_restart);
	RUN(test_dead_reader);
	RUN(test_idle_reader_gone);
	RUN(test_info_readers);
	for (int i = P_VLMCD; i >= P_FILED; i--)
		CHECK(tp_stop(pids[i]) == 0);
	xseg_leave(xs);
	return 0;
}
