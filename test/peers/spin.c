/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the peer framework's spin gives way on a crowded machine
 * (peers/user/peer.c, crowded()): blockd -v serves requests that come one
 * at a time with its spin long enough to catch each, reading a stand-in for
 * /proc/pressure/cpu (XSEG_PEER_PRESSURE) that this test writes. While the
 * stall total stays put (a calm machine) it spins after every request and
 * never declines; while the total grows as fast as the clock (tasks waited
 * for a CPU all the time) it declines almost every spin. The counts come
 * from the log line blockd prints at exit. patternd spins after bursts of
 * several requests too (--spin-batches, its default): sent bursts of 8 with
 * gaps longer than its spin, it logs spins after bursts, and with
 * --spin-batches off it logs none.
 */
#include <pthread.h>
#include "peers.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static const char *pressure;
static int grow_stop;

/* Write the stand-in: PSI's format, the "some" line's total @us (fixed width, so rewrites never shrink it). */
static void write_pressure(uint64_t us)
{
	char buf[160];
	int fd = open(pressure, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int n = snprintf(buf, sizeof(buf),
			 "some avg10=0.00 avg60=0.00 avg300=0.00 total=%020llu\n"
			 "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", (unsigned long long)us);

	CHECK(fd >= 0);
	CHECK(pwrite(fd, buf, (size_t)n, 0) == n);
	close(fd);
}

/* The crowded machine: some task always waits, so the total grows with the clock. */
static void *grow(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&grow_stop, __ATOMIC_RELAXED)) {
		write_pressure(xt_now_ns() / 1000);
		usleep(1000);
	}
	return NULL;
}

/* What a peer logged at exit: spins run, declined (crowded), and run after a burst of several. */
struct spin_counts {
	uint64_t spins, skips, batch_spins;
	int batch_logged;		/* the line had the count of spins after bursts */
};

/* Run @name -v (@args) with the stand-in pressure, let @client send, stop it and read its counts. */
static void run_logged(const char *name, const char *const *args, void (*client)(void), struct spin_counts *c)
{
	const char *log = tp_path("peer.log");
	char line[512];
	int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), found = 0;
	FILE *f;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	CHECK(saved >= 0 && fd >= 0);
	CHECK(setenv("XSEG_PEER_PRESSURE", pressure, 1) == 0);
	CHECK(dup2(fd, 2) == 2);	/* the peer's stderr: the log */
	pid = tp_start(name, args);
	CHECK(dup2(saved, 2) == 2);
	close(saved);
	close(fd);
	unsetenv("XSEG_PEER_PRESSURE");
	tp_wait_bound(xs, 1, pid);
	client();
	CHECK(tp_stop(pid) == 0);
	f = fopen(log, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		const char *s = strstr(line, "]: "), *t;

		if (s && sscanf(s + 3, "%llu spins, %llu not spun", &a, &b) == 2) {
			c->spins = a;
			c->skips = b;
			found = 1;
			t = strstr(s, "; ");
			if (t && sscanf(t + 2, "%llu spins after a burst", &a) == 1) {
				c->batch_spins = a;
				c->batch_logged = 1;
			}
		}
	}
	fclose(f);
	CHECKF(found, "%s logged no spin counts (%s)", name, log);
	printf("# %s: %llu spins (%llu after bursts), %llu not spun\n", name, (unsigned long long)c->spins,
	       (unsigned long long)c->batch_spins, (unsigned long long)c->skips);
}

/* 300 reads 1 ms apart, one at a time. */
static void reads_one_by_one(void)
{
	uint8_t buf[4096];

	for (int i = 0; i < 300; i++) {
		struct tp_req r = { .op = X_READ, .target = "vol", .offset = (uint64_t)(i % 256) * 4096,
				    .size = 4096, .buf_len = 4096, .out = buf, .out_len = 4096 };

		CHECK(tp_do(xs, me, 1, &r) == 0);
		usleep(1000);
	}
}

/* Run blockd -v with the stand-in, 300 reads 1 ms apart; its "N spins, M not spun" counts. */
static void serve_some(uint64_t *spins, uint64_t *skips)
{
	const char *file = tp_path("vol");
	const char *args[] = { "-v", "-g", spec, "-p", "1", "--file", file, "--size", "1M", "--create-file",
			       "--spin-us", "5000", NULL };
	struct spin_counts c;

	run_logged("blockd", args, reads_one_by_one, &c);
	*spins = c.spins;
	*skips = c.skips;
}

static void test_calm(void)
{
	uint64_t spins = 0, skips = 0;

	write_pressure(1000);	/* never grows: nothing ever waited for a CPU */
	serve_some(&spins, &skips);
	CHECKF(skips == 0, "a calm machine: %llu spins declined", (unsigned long long)skips);
	/* Each request comes within the spin, unless the test itself was descheduled (a loaded CI). */
	CHECKF(spins >= 30, "a calm machine: only %llu spins for 300 requests", (unsigned long long)spins);
}

static void test_crowded(void)
{
	uint64_t spins = 0, skips = 0;
	pthread_t th;

	write_pressure(xt_now_ns() / 1000);
	CHECK(pthread_create(&th, NULL, grow, NULL) == 0);
	serve_some(&spins, &skips);
	__atomic_store_n(&grow_stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	/* Until the second look at the pressure (20 ms) it still spins. */
	CHECKF(skips >= 100 && spins <= skips / 4, "a crowded machine: %llu spins declined, %llu spun",
	       (unsigned long long)skips, (unsigned long long)spins);
}

#define BURST 8
#define BURSTS 48

/*
 * BURSTS bursts of BURST pings: all queued before one signal (so the
 * sleeping peer takes the whole burst in one round), every reply awaited,
 * then a 3 ms gap, far longer than the peer's 50 us spin: a spin after a
 * burst never catches the next one, and the peer is asleep when it comes.
 */
static void bursts(void)
{
	struct xseg_request *req[BURST];

	for (int b = 0; b < BURSTS; b++) {
		uint64_t t0 = xt_now_ns();
		int got = 0;

		for (int i = 0; i < BURST; i++) {
			req[i] = xseg_get_request(xs, me);
			CHECK(req[i]);
			CHECK(xseg_prep_request(xs, req[i], "t", 1, 0) == 0);
			req[i]->op = X_PING;
			CHECK(xseg_submit(xs, req[i], 1) == 1);
		}
		CHECK(xseg_signal(xs, 1) == 0);
		while (got < BURST) {
			struct xseg_request *r = xseg_receive(xs, me);

			if (!r) {
				CHECKF(xt_now_ns() - t0 < 20000000000ull, "burst %d: %d replies of %d in 20 s", b, got, BURST);
				xseg_wait(xs, me, 100000);
				continue;
			}
			CHECK(r->state & XS_SERVED);
			CHECK(xseg_put_request(xs, r) == 0);
			got++;
		}
		usleep(3000);
	}
}

/* patternd spins after bursts of several requests (by default), and not with --spin-batches off. */
static void test_batches(void)
{
	const char *on[] = { "-v", "-g", spec, "-p", "1", "--spin-us", "50", NULL };
	const char *off[] = { "-v", "-g", spec, "-p", "1", "--spin-us", "50", "--spin-batches", "off", NULL };
	struct spin_counts c;

	write_pressure(1000);	/* calm */
	run_logged("patternd", on, bursts, &c);
	CHECKF(c.batch_logged, "patternd logged no count of spins after bursts");
	CHECK(c.skips == 0);
	/* One spin after a burst that found nothing turns spinning off; it probes every 8th idle period. */
	CHECKF(c.batch_spins >= BURSTS / 8 / 2, "only %llu spins after %d bursts of %d",
	       (unsigned long long)c.batch_spins, BURSTS, BURST);
	run_logged("patternd", off, bursts, &c);
	CHECKF(c.batch_logged, "patternd logged no count of spins after bursts");
	CHECKF(c.batch_spins == 0, "%llu spins after bursts with --spin-batches off", (unsigned long long)c.batch_spins);
}

int main(void)
{
	int port;

	xt_watchdog(120);
	cfg = tx_create("posix:%s:8:64:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(port >= 0 && port != 1);
	me = (uint32_t)port;
	pressure = tp_path("pressure");
	RUN(test_calm);
	RUN(test_crowded);
	RUN(test_batches);
	xseg_leave(xs);
	return 0;
}
