/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a C peer serving several ports with one dispatch thread
 * sleeps on all of them at once. patternd serves ports 1-6 with no spin
 * (--spin-us 0), once per sleeping driver (futex, posix, posixfd): while it
 * is idle every one of its ports shows it as a waiter in its signal area
 * (before, it slept on the first port only and polled the others every
 * millisecond), and a request submitted and signaled to any one of them is
 * served, in an order that starts with the last port.
 */
#include "peers.h"
#include "xseg/signal_area.h"

#define FIRST	1
#define LAST	6
#define CLIENT	0

static struct xseg_config cfg;

/* Does @port's signal area show a waiter of process @pid, as @driver records one? */
static int asleep_on(struct xseg *xs, const char *driver, uint32_t port, pid_t pid)
{
	void *a = xseg_port_signal_area(xs, port);

	if (!strcmp(driver, "futex"))
		return __atomic_load_n(&((struct xseg_sig_futex *)a)->waiters, __ATOMIC_ACQUIRE) != 0;
	if (!strcmp(driver, "posix"))
		return XSEG_SIGP_PID(__atomic_load_n(&((struct xseg_sig_posix *)a)->waiter,
						     __ATOMIC_ACQUIRE)) == (uint32_t)pid;
	return __atomic_load_n(&((struct xseg_sig_posixfd *)a)->waiting, __ATOMIC_ACQUIRE) != 0;
}

/* Wait (10 s at most: a hang guard) until the idle peer sleeps on every one of its ports. */
static void await_asleep(struct xseg *xs, const char *driver, pid_t pid)
{
	uint64_t t0 = xt_now_ns();

	for (uint32_t port = FIRST; port <= LAST; port++)
		while (!asleep_on(xs, driver, port, pid)) {
			CHECKF(xt_now_ns() - t0 < 10000000000ull,
			       "%s: the idle peer does not sleep on port %u (ports %u-%u)", driver, port,
			       FIRST, LAST);
			usleep(1000);
		}
}

static void one(const char *driver)
{
	const uint32_t order[] = { 6, 2, 5, 3, 1, 4, 6 };
	char spec[512], ports[32];
	const char *args[] = { "-q", "-g", spec, "-p", ports, "-d", driver, "--spin-us", "0", NULL };
	struct xseg *xs;
	pid_t pid;

	cfg = tx_create("posix:%s:16:64:64K:0:12:dynports=8");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	snprintf(ports, sizeof(ports), "%u-%u", FIRST, LAST);
	xs = tx_join(&cfg, "futex");
	CHECK(xseg_bind_port(xs, CLIENT, 0) == CLIENT);
	pid = tp_start("patternd", args);
	for (uint32_t port = FIRST; port <= LAST; port++)
		tp_wait_bound(xs, port, pid);
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		uint8_t buf[4096];
		struct tp_req r = { .op = X_READ, .target = "multiport", .size = sizeof(buf),
				    .buf_len = sizeof(buf), .out = buf, .out_len = sizeof(buf) };

		await_asleep(xs, driver, pid);
		CHECKF(tp_do(xs, CLIENT, order[i], &r) == 0, "%s: read on port %u: %d", driver, order[i],
		       r.error);
		CHECK(r.serviced == sizeof(buf));
	}
	CHECK(tp_stop(pid) == 0);
	xseg_leave(xs);
}

static void test_multiport_futex(void) { one("futex"); }
static void test_multiport_posix(void) { one("posix"); }
static void test_multiport_posixfd(void) { one("posixfd"); }

int main(void)
{
	RUN(test_multiport_futex);
	RUN(test_multiport_posix);
	RUN(test_multiport_posixfd);
	return 0;
}
