/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: radosd on a real one-node Ceph cluster (tools/ceph/cluster).
 * A cluster nobody answers for makes radosd exit 1 (bounded by
 * --connect-timeout); a missing pool exits 1, bad usage 2. Then the object
 * store conformance suite (test/peers/objects.h) that filed passes, and
 * radosd specifics: two radosd processes exclude each other through the
 * RADOS lock (a tag's lock taken through one is its owner's through the
 * other too), and a namespace hides objects of another. Faults under load
 * (depth 16, every write a distinct object with its own content): radosd
 * SIGKILLed and restarted on its port, and the OSD stopped and restarted.
 * Invariants: every request gets exactly one reply (none lost, none
 * duplicated), the failures while the OSD is down are EIO (after
 * --timeout; nothing hangs), every acknowledged write reads back intact
 * afterwards, and a failed one left either nothing or its whole content.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "ceph.h"
#include "../peers/objects.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static const char *conf;
static pid_t radosd_pid;
static const char *op_timeout = "10";	/* radosd --timeout: the OSD outage test lowers it */

static pid_t start_radosd(uint32_t port, const char *const *extra)
{
	char ports[16];
	const char *args[32] = { "-q", "-g", spec, "-p", ports, "--conf", conf, "--timeout", op_timeout };
	int n = 9;
	pid_t pid;

	snprintf(ports, sizeof(ports), "%u", port);
	while (extra && *extra)
		args[n++] = *extra++;
	args[n] = NULL;
	pid = tp_start("radosd", args);
	tp_wait_bound(xs, port, pid);
	return pid;
}

/* The suite's restart: SIGTERM (exit 0) or SIGKILL, recovery of the port, a new radosd. */
static void restart_radosd(int crash)
{
	if (crash) {
		CHECK(kill(radosd_pid, SIGKILL) == 0 && tp_wait(radosd_pid) == 128 + SIGKILL);
		CHECK(xseg_recover(xs, NULL) == 0);
	} else {
		CHECK(tp_stop(radosd_pid) == 0);
	}
	radosd_pid = start_radosd(1, NULL);
}

/* Exit status of radosd with @args (after -g SPEC), which must end by itself. */
static int radosd_exit(const char *const *args)
{
	const char *all[32] = { "-q", "-g", spec };
	int n = 3;

	while (*args)
		all[n++] = *args++;
	all[n] = NULL;
	return tp_wait(tp_start("radosd", all));
}

static void test_start_errors(void)
{
	char fake[PATH_MAX], keyring[PATH_MAX];
	FILE *f;

	/* A conf naming a monitor nobody answers for (a port we hold bound and never accept on). */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&a, &al) == 0);
	snprintf(keyring, sizeof(keyring), "%s", tp_path("fake.keyring"));
	f = fopen(keyring, "w");
	CHECK(f);
	fprintf(f, "[client.admin]\n\tkey = AQBHNLJmAAAAABAAzs2YchmSGRO5k2lUZ7sGJg==\n");
	fclose(f);
	snprintf(fake, sizeof(fake), "%s", tp_path("fake.conf"));
	f = fopen(fake, "w");
	CHECK(f);
	fprintf(f, "[global]\nmon host = [v2:127.0.0.1:%u]\nms bind msgr1 = false\n"
		"log to stderr = false\nerr to stderr = false\n[client]\nkeyring = %s\n",
		(unsigned)ntohs(a.sin_port), keyring);
	fclose(f);
	{
		const char *args[] = { "-p", "3", "--conf", fake, "--connect-timeout", "1", NULL };

		CHECK(radosd_exit(args) == 1);
	}
	close(s);
	{
		const char *nofile[] = { "-p", "3", "--conf", tp_path("no-such.conf"), NULL };
		const char *badt[] = { "-p", "3", "--conf", fake, "--timeout", "0", NULL };
		const char *badname[] = { "-p", "3", "--conf", fake, "--name", "nodot", NULL };

		CHECK(radosd_exit(nofile) == 1);
		CHECK(radosd_exit(badt) == 2);
		CHECK(radosd_exit(badname) == 1);
	}
}

static void test_no_pool(void)
{
	const char *args[] = { "-p", "3", "--conf", conf, "--pool", "no-such-pool", "--connect-timeout", "20",
			       NULL };

	CHECK(radosd_exit(args) == 1);
}

/* Two radosd (two clients of the cluster, as on two machines) share the locks; namespaces. */
static void test_two_peers(void)
{
	const char *ns[] = { "--namespace", "other-ns", NULL };
	pid_t second = start_radosd(2, NULL), third = start_radosd(3, ns);
	char h[300];
	uint64_t sv;

	os_dst = 1;
	CHECK(os_lk(X_ACQUIRE, "shared", "A", 0, h, &sv) == 0);
	os_dst = 2;
	CHECK(os_lk(X_ACQUIRE, "shared", "B", 0, h, &sv) == EBUSY && !strcmp(h, "A"));
	CHECK(os_lk(X_ACQUIRE, "shared", "A", 0, h, &sv) == 0);	/* the owner, through the other peer */
	os_dst = 1;
	CHECK(os_lk(X_ACQUIRE, "shared", "B", 0, h, &sv) == EBUSY && !strcmp(h, "A"));
	CHECK(os_lk(X_RELEASE, "shared", "A", 0, h, &sv) == 0);
	os_dst = 2;
	CHECK(os_lk(X_ACQUIRE, "shared", "B", 0, h, &sv) == 0);
	CHECK(os_lk(X_RELEASE, "shared", "B", 0, h, &sv) == 0);
	/* A namespace: the same name is another object. */
	os_dst = 1;
	CHECK(os_put("ns-obj", 0, "default namespace") == 0);
	os_dst = 3;
	CHECK(os_size("ns-obj") == -ENOENT);
	CHECK(os_put("ns-obj", 0, "other") == 0);
	os_dst = 1;
	CHECK(os_is("ns-obj", "default namespace", 17));
	CHECK(os_req(X_DELETE, "ns-obj", 0, 0, NULL, NULL, 0, NULL) == 0);
	os_dst = 3;
	CHECK(os_req(X_DELETE, "ns-obj", 0, 0, NULL, NULL, 0, NULL) == 0);
	os_dst = 1;
	CHECK(tp_stop(second) == 0);
	CHECK(tp_stop(third) == 0);
}

/*
 * The load of the fault tests: writes of BS bytes, each to its own object
 * "load-SEQ" with content from SEQ, DEPTH in flight, until @total were
 * replied. @fault runs once when @at replies came (with requests in flight)
 * and returns; @during (if set) is called after every reply until it
 * returns 0. Each request's reply is counted by its cookie.
 */
enum { DEPTH = 16, BS = 4096, MAXSEQ = 4096 };
static uint8_t replied[MAXSEQ];
static int result[MAXSEQ];		/* 0 acknowledged, else the errno */

static void fill(uint8_t *d, uint64_t seq)
{
	for (int k = 0; k < BS; k++)
		d[k] = (uint8_t)(seq * 131 + (uint64_t)k * 7 + (k >> 8));
}

static uint32_t load(uint32_t total, uint32_t at, void (*fault)(void), int (*during)(uint32_t seq, int err))
{
	uint32_t next = 0, done = 0, inflight = 0, busy = 1;
	uint64_t last = xt_now_ns();

	memset(replied, 0, sizeof(replied));
	CHECK(total <= MAXSEQ);
	while (done < next || next < total) {
		struct xseg_request *r;

		while (inflight < DEPTH && next < total) {
			char name[64];
			int q;

			r = xseg_get_request(xs, me);
			CHECK(r);
			snprintf(name, sizeof(name), "%sload-%u", os_prefix, next);
			CHECK(xseg_prep_request(xs, r, name, (uint32_t)strlen(name), BS) == 0);
			r->op = X_WRITE;
			r->size = BS;
			r->cookie = next;
			fill(xseg_req_data(xs, r), next);
			q = xseg_submit(xs, r, 1);
			if (q < 0) {
				/* Nobody serves the port this moment (a restart): try again soon. */
				CHECK(q == -ENOENT || q == -EAGAIN);
				CHECK(xseg_put_request(xs, r) == 0);
				break;
			}
			xseg_signal(xs, (uint32_t)q);
			next++;
			inflight++;
		}
		r = xseg_receive(xs, me);
		if (!r) {
			CHECKF(xt_now_ns() - last < 60000000000ull, "no reply for 60 s: %u in flight (a hang)",
			       inflight);
			xseg_wait(xs, me, 20000);
			if (!inflight)
				usleep(10000);
			continue;
		}
		last = xt_now_ns();
		CHECK(r->cookie < next);
		CHECKF(!replied[r->cookie], "a second reply to request %" PRIu64, r->cookie);
		replied[r->cookie] = 1;
		result[r->cookie] = r->state & XS_FAILED ? r->error : 0;
		if (!(r->state & XS_FAILED))
			CHECK((r->state & XS_SERVED) && r->serviced == BS);
		if (during && busy)
			busy = during((uint32_t)r->cookie, result[r->cookie]);
		CHECK(xseg_put_request(xs, r) == 0);
		inflight--;
		if (++done == at && fault)
			fault();
	}
	for (uint32_t i = 0; i < total; i++)
		CHECKF(replied[i], "request %u never replied", i);
	return done;
}

/* After a fault: every acknowledged write intact, every failed one all or nothing. */
static void verify_load(uint32_t total, uint32_t *acked, uint32_t *failed)
{
	static uint8_t want[BS], got[BS];

	*acked = *failed = 0;
	for (uint32_t i = 0; i < total; i++) {
		char name[32];
		uint64_t sv = 0;
		int e;

		snprintf(name, sizeof(name), "load-%u", i);
		fill(want, i);
		memset(got, 0, sizeof(got));
		e = os_req(X_READ, name, 0, BS, NULL, got, BS, &sv);
		if (result[i] == 0) {
			(*acked)++;
			CHECKF(e == 0 && sv == BS && !memcmp(got, want, BS), "acknowledged write %u: %d, %" PRIu64
			       " bytes%s", i, e, sv, e || sv != BS ? "" : ", different content");
		} else {
			(*failed)++;
			CHECKF(e == ENOENT || (e == 0 && sv == BS && !memcmp(got, want, BS)),
			       "failed write %u (%d) left %d, %" PRIu64 " bytes", i, result[i], e, sv);
		}
		if (e == 0)
			CHECK(os_req(X_DELETE, name, 0, 0, NULL, NULL, 0, NULL) == 0);
	}
}

static void kill_radosd(void)
{
	restart_radosd(1);
}

/* Writes per fault test (XSEG_CEPH_LOAD; a tenth, at least 160, under a sanitizer). */
static uint32_t load_total(void)
{
	long n = xt_env_long("XSEG_CEPH_LOAD", 600);

	return (uint32_t)(n < 10 * DEPTH ? 10 * DEPTH : n > MAXSEQ ? MAXSEQ : n);
}

static void test_kill_under_load(void)
{
	uint32_t total = load_total(), acked, failed, n = load(total, total / 3, kill_radosd, NULL);

	verify_load(n, &acked, &failed);
	printf("radosd SIGKILLed at reply %u of %u: %u acknowledged, %u failed back\n", total / 3, total, acked,
	       failed);
	CHECK(acked >= total / 3);
}

static int osd_down, eio_seen;

static void stop_osd(void)
{
	CHECK(tc_cluster("osd-stop", NULL) == 0);
	osd_down = 1;
}

/* While the OSD is down every failure is EIO; once DEPTH of them came, the OSD restarts. */
static int watch_outage(uint32_t seq, int err)
{
	(void)seq;
	if (!osd_down)
		return 1;
	if (err) {
		CHECKF(err == EIO, "a request failed with %d (%s) while the OSD was down, not EIO", err,
		       strerror(err));
		if (++eio_seen == DEPTH) {
			CHECK(tc_cluster("osd-start", NULL) == 0);
			osd_down = 0;
			return 0;
		}
	}
	return 1;
}

static void test_osd_stop_under_load(void)
{
	uint32_t acked, failed, n;

	/* Requests to a stopped OSD fail after --timeout: 2 s keeps the outage short. */
	op_timeout = "2";
	restart_radosd(0);
	n = load(load_total(), load_total() / 4, stop_osd, watch_outage);

	CHECK(!osd_down && eio_seen >= DEPTH);
	verify_load(n, &acked, &failed);
	printf("OSD stopped at reply %u of %u: %u acknowledged, %u failed with EIO\n", n / 4, n, acked, failed);
	CHECK(failed >= DEPTH && acked >= n / 4);
}

int main(void)
{
	int fd;

	xt_watchdog(280);
	tc_require("radosd");
	cfg = tx_create("posix:%s:16:256:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	fd = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(fd >= 0);
	me = (uint32_t)fd;
	RUN(test_start_errors);
	conf = tc_start();
	RUN(test_no_pool);
	radosd_pid = start_radosd(1, NULL);
	os_xs = xs;
	os_me = me;
	os_dst = 1;
	os_restart = restart_radosd;
	os_suite();
	RUN(test_two_peers);
	RUN(test_kill_under_load);
	RUN(test_osd_stop_under_load);
	CHECK(tp_stop(radosd_pid) == 0);
	xseg_leave(xs);
	return 0;
}
