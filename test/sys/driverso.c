/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: a driver loaded at run time as xseg_<name>.so, and the extra
 * area shared between processes. lib/user/test-drivers/xseg_tcount.so (the
 * "tcount" peer type, test/sys/so/xseg_tcount.c) is found through
 * $XSEG_DRIVER_PATH and through the "xseg" folder beside libxseg.so, with
 * LD_LIBRARY_PATH unset; it is not found elsewhere (a clear join error); a
 * copy that others may write, or in a directory others may write, is refused.
 * A server process of that peer type and a posixfd client exchange 2,000
 * checked requests; the client's process signals the server's port through
 * the loaded driver, whose counter in the extra area the other process reads.
 * The extra area carries data both ways between processes.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include "xtest.h"
#include "sys/segtest.h"

#define NREQ	2000
#define XSIZE	4096

static char drvdir[PATH_MAX / 2];	/* lib/user/test-drivers */
static char tmpdir[PATH_MAX / 2];	/* this run's scratch folder */

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	remove_tree(tmpdir);
}

/* A child that joins @name as @peer: its xseg_join errno (0: joined). */
static int join_errno(const char *name, const char *peer)
{
	pid_t pid = xt_fork();

	if (pid == 0) {
		char e[256];
		int err = 0;
		struct xseg *xs = xseg_join("posix", name, peer, NULL, NULL, &err, e, sizeof(e));

		if (xs)
			xseg_leave(xs);
		else
			fprintf(stderr, "  join as %s: %s\n", peer, e);
		_exit(err < 0 ? -err : err);
	}
	return child_status(pid);
}

static void make_extra_seg(const char *name)
{
	struct xseg_config cfg;
	char spec[256], e[512];

	snprintf(spec, sizeof(spec), "posix:%s:4:64:4K:%d", name, XSIZE);
	CHECKF(xseg_parse_spec(spec, &cfg, e, sizeof(e)) == 0, "%s", e);
	CHECKF(xseg_create(&cfg, e, sizeof(e)) == 0, "%s", e);
}

/* Only where the loader looks: not found anywhere else, with a clear error. */
static void test_not_found(void)
{
	const char *name = pname("nf");

	make_extra_seg(name);
	unsetenv("XSEG_DRIVER_PATH");
	CHECK(join_errno(name, "tcount") != 0);
	/* LD_LIBRARY_PATH is not a search path of drivers */
	setenv("LD_LIBRARY_PATH", drvdir, 1);
	CHECK(join_errno(name, "tcount") != 0);
	unsetenv("LD_LIBRARY_PATH");
	/* relative entries are ignored */
	CHECK(chdir(drvdir) == 0);
	setenv("XSEG_DRIVER_PATH", ".", 1);
	CHECK(join_errno(name, "tcount") != 0);
	CHECK(chdir("/") == 0);
	setenv("XSEG_DRIVER_PATH", drvdir, 1);
	CHECK(join_errno(name, "tcount") == 0);
	unsetenv("XSEG_DRIVER_PATH");
	CHECK(xseg_destroy_name("posix", name) == 0);
}

/* A driver others may change is not loaded, nor one from a folder others may write. */
static void test_refused(void)
{
	const char *name = pname("rf");
	char from[PATH_MAX + 32], d1[PATH_MAX], d2[PATH_MAX], path[PATH_MAX + 32], list[2 * PATH_MAX + 4];

	make_extra_seg(name);
	snprintf(from, sizeof(from), "%s/xseg_tcount.so", drvdir);
	snprintf(d1, sizeof(d1), "%s/grpw", tmpdir);
	snprintf(d2, sizeof(d2), "%s/openw", tmpdir);
	CHECK(mkdir(d1, 0755) == 0 && mkdir(d2, 0755) == 0 && chmod(d2, 0777) == 0);
	snprintf(path, sizeof(path), "%s/xseg_tcount.so", d1);
	copy_file(from, path, 0664);
	setenv("XSEG_DRIVER_PATH", d1, 1);
	CHECK(join_errno(name, "tcount") != 0);
	CHECK(chmod(path, 0644) == 0);		/* the same file, now only ours to write */
	CHECK(join_errno(name, "tcount") == 0);
	snprintf(path, sizeof(path), "%s/xseg_tcount.so", d2);
	copy_file(from, path, 0644);
	setenv("XSEG_DRIVER_PATH", d2, 1);
	CHECK(join_errno(name, "tcount") != 0);
	/* the refused folder first, a good one next: the good one is used */
	snprintf(list, sizeof(list), "%s:%s", d2, drvdir);
	setenv("XSEG_DRIVER_PATH", list, 1);
	CHECK(join_errno(name, "tcount") == 0);
	unsetenv("XSEG_DRIVER_PATH");
	CHECK(xseg_destroy_name("posix", name) == 0);
}

/* The folder "xseg" beside libxseg.so, without any environment. */
static void test_beside_lib(void)
{
	const char *name = pname("bl");
	char dir[PATH_MAX], from[PATH_MAX + 32], to[PATH_MAX + 32];
	int rc;

	make_extra_seg(name);
	snprintf(dir, sizeof(dir), "%s", drvdir);
	*strrchr(dir, '/') = 0;			/* lib/user/test-drivers -> lib/user */
	strcat(dir, "/xseg");
	snprintf(from, sizeof(from), "%s/xseg_tcount.so", drvdir);
	snprintf(to, sizeof(to), "%s/xseg_tcount.so", dir);
	if (mkdir(dir, 0755)) {			/* there already: not ours, leave it alone */
		printf("  %s: %s: not testing the folder beside libxseg\n", dir, strerror(errno));
		CHECK(errno == EEXIST);
		CHECK(xseg_destroy_name("posix", name) == 0);
		return;
	}
	copy_file(from, to, 0644);
	unsetenv("XSEG_DRIVER_PATH");
	rc = join_errno(name, "tcount");
	unlink(to);
	rmdir(dir);
	CHECK(rc == 0);
	CHECK(xseg_destroy_name("posix", name) == 0);
}

/* The server: tcount peer on port 1, polling (tcount cannot sleep), checks and answers. */
static void serve(const char *name)
{
	char e[256];
	int err = 0, served = 0, r;
	struct xseg *xs = xseg_join("posix", name, "tcount", NULL, NULL, &err, e, sizeof(e));
	uint64_t size = 0;
	uint8_t *x;

	if (!xs) {
		fprintf(stderr, "server join: %s\n", e);
		_exit(2);
	}
	x = xseg_extra(xs, &size);
	if (!x || size != XSIZE || x[100] != 0x5a)	/* the client's mark */
		_exit(3);
	x[200] = 0xa5;				/* ours, for the client to see */
	if (xseg_bind_port(xs, 1, 0) < 0)
		_exit(4);
	while (served < NREQ) {
		struct xseg_request *req = xseg_accept(xs, 1);
		uint8_t *d;

		if (!req) {
			usleep(50);
			continue;
		}
		d = xseg_req_data(xs, req);
		for (uint64_t i = 0; i < req->size; i++)
			d[i] = (uint8_t)(req->offset + i);
		req->serviced = req->size;
		req->state |= XS_SERVED;
		r = xseg_respond(xs, req);
		if (r < 0)
			_exit(5);
		xseg_signal(xs, (uint32_t)r);
		served++;
	}
	xseg_leave(xs);
	_exit(0);
}

static void test_exchange(void)
{
	const char *name = pname("ex");
	char e[256];
	int err = 0;
	struct xseg *xs;
	uint64_t size = 0, *counts;
	uint8_t *x;
	pid_t srv;
	int done = 0, bad = 0, cport;

	make_extra_seg(name);
	setenv("XSEG_DRIVER_PATH", drvdir, 1);
	xs = xseg_join("posix", name, "posixfd", NULL, NULL, &err, e, sizeof(e));
	CHECKF(xs, "%s", e);
	x = xseg_extra(xs, &size);
	CHECK(x && size == XSIZE);
	counts = (uint64_t *)x;
	x[100] = 0x5a;
	srv = xt_fork();
	if (srv == 0)
		serve(name);
	cport = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECKF(cport >= 0, "bind: %s", strerror(-cport));
	for (int i = 0; i < 1000 && xseg_signal(xs, 1) == -ENOENT; i++)
		usleep(10000);		/* until the server bound port 1 */
	for (int i = 0; i < NREQ; i++) {
		struct xseg_request *req = xseg_get_request(xs, (uint32_t)cport), *rep;
		uint8_t *d;

		CHECK(req);
		CHECK(xseg_prep_request(xs, req, "t", 1, 512) == 0);
		req->op = X_READ;
		req->offset = (uint64_t)i * 7;
		req->size = 512;
		CHECK(xseg_submit_signal(xs, req, 1) == 1);
		while (!(rep = xseg_receive(xs, (uint32_t)cport)))
			CHECK(xseg_wait(xs, (uint32_t)cport, 5000000) >= 0);
		d = xseg_req_data(xs, rep);
		for (uint64_t j = 0; j < rep->size; j++)
			bad += d[j] != (uint8_t)(rep->offset + j);
		done += rep->serviced == 512;
		CHECK(xseg_put_request(xs, rep) == 0);
	}
	CHECK(child_status(srv) == 0);
	CHECKF(done == NREQ && bad == 0, "%d served, %d wrong bytes", done, bad);
	CHECK(x[200] == 0xa5);			/* the server's mark */
	/* the client's process called the loaded driver's signal for port 1 */
	printf("  %d requests, %" PRIu64 " signals through xseg_tcount.so\n", NREQ,
	       __atomic_load_n(&counts[1], __ATOMIC_RELAXED));
	CHECK(__atomic_load_n(&counts[1], __ATOMIC_RELAXED) >= 1);
	xseg_leave(xs);
	unsetenv("XSEG_DRIVER_PATH");
	CHECK(xseg_destroy_name("posix", name) == 0);
}

int main(void)
{
	char self[PATH_MAX / 4];
	ssize_t n;

	xt_watchdog(120);
	segtest_start();
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = 0;
	for (int i = 0; i < 3; i++)
		*strrchr(self, '/') = 0;	/* lib/user/test/sys/driverso -> lib/user */
	snprintf(drvdir, sizeof(drvdir), "%s/test-drivers", self);
	CHECKF(access(drvdir, R_OK) == 0, "%s is not built", drvdir);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xseg-drvso-%d", (int)getpid());
	CHECK(mkdir(tmpdir, 0700) == 0);
	atexit(cleanup);
	unsetenv("LD_LIBRARY_PATH");
	RUN(test_not_found);
	RUN(test_refused);
	RUN(test_beside_lib);
	RUN(test_exchange);
	return 0;
}
