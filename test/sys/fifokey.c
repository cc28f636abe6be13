/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the posixfd driver keeps its FIFOs per segment, not per
 * name: posix:N, memfd:N and posix:0xK, sysv:0xK (same names, other types)
 * bound with posixfd each get their own FIFO; destroying the memfd and the
 * sysv segment leaves the posix ones' FIFOs where they were, still woken
 * by a signal; a segment recreated under its name does not meet the old
 * one's FIFOs. The FIFO directory is <base>/<type>.<id> (xseg_seg_ident).
 */
#include "segtest.h"
#include "sys/user/segtypes/xseg_memfd.h"
#include "drivers/user/posixfd.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/ipc.h>
#include <sys/shm.h>

static char tmpdir[64];
static char err[512];
static char posix_n[16], posix_k[16];	/* the posix names we created ("" if none) */
static key_t sysv_k;			/* the sysv key we created (0 if none) */

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	if (posix_n[0])
		xseg_destroy_name("posix", posix_n);
	if (posix_k[0])
		xseg_destroy_name("posix", posix_k);
	if (sysv_k) {
		int id = shmget(sysv_k, 0, 0);

		if (id >= 0)
			xseg_destroy_name("sysv", posix_k);
	}
	remove_tree(tmpdir);
	remove_run_segments();
}

static int create(const char *type, const char *name)
{
	struct xseg_config cfg;
	char spec[64];

	snprintf(spec, sizeof(spec), "%s:%s:4:16:4K", type, name);
	CHECKF(xseg_parse_spec(spec, &cfg, err, sizeof(err)) == 0, "%s", err);
	return xseg_create(&cfg, err, sizeof(err));
}

static struct xseg *join(const char *type, const char *name)
{
	struct xseg *xs;
	int e = 0;

	xs = xseg_join(type, name, "posixfd", NULL, NULL, &e, err, sizeof(err));
	CHECKF(xs, "join %s:%s: %d %s", type, name, e, err);
	return xs;
}

/* Bind port 1 of @xs; its poll fd. */
static int bind1(struct xseg *xs)
{
	int fd;

	CHECK(xseg_bind_port(xs, 1, 0) == 1);
	fd = xseg_poll_fd(xs, 1);
	CHECKF(fd >= 0, "poll_fd: %d", fd);
	return fd;
}

/* Is the FIFO at <base>/<type>.<id>/1 of @xs the one @fd has open? */
static bool own_fifo(struct xseg *xs, int fd)
{
	struct xseg_seg_ident id;
	char path[256];
	struct stat a, b;

	xseg_seg_ident(xs, &id);
	snprintf(path, sizeof(path), "%s/%s.%016llx/1", tmpdir, id.type, (unsigned long long)id.id);
	if (stat(path, &a) || fstat(fd, &b))
		return false;
	return S_ISFIFO(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Does a signal to port 1 of @type:@name, from another process (which
 * opens the FIFO by its path, as every signaler but the owner does), reach
 * @fd?
 */
static bool woken(const char *type, const char *name, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	pid_t pid;

	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		int e = 0;
		struct xseg *xs = xseg_join(type, name, "posixfd", NULL, NULL, &e, err,
					    sizeof(err));

		if (!xs)
			_exit(2);
		e = xseg_signal(xs, 1);
		xseg_leave(xs);
		_exit(e ? 3 : 0);
	}
	CHECKF(child_status(pid) == 0, "signaler of %s:%s", type, name);
	if (poll(&p, 1, 5000) != 1)	/* hang guard only */
		return false;
	return xseg_posixfd_drain(fd) > 0;
}

int main(void)
{
	struct xseg *px, *mx, *pk, *sk, *again;
	struct xseg_config cfg;
	struct xseg_seg_ident a, b;
	int pfd, mfd, pkfd, skfd, fd, n = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	segtest_start();
	atexit(cleanup);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xseg-fifokey-XXXXXX");
	CHECK(mkdtemp(tmpdir));
	CHECK(setenv("XSEG_FIFO_DIR", tmpdir, 1) == 0);

	/* N: a free descriptor number whose posix name we could create. */
	for (int i = 0; i < 400 && n < 0; i++) {
		int c = 300 + (int)((getpid() + i) % 600);

		snprintf(posix_n, sizeof(posix_n), "%d", c);
		if (fcntl(c, F_GETFD) < 0 && create("posix", posix_n) == 0)
			n = c;
		else
			posix_n[0] = 0;
	}
	CHECKF(n >= 0, "no free descriptor number with a free posix name: %s", err);
	CHECKF(xseg_parse_spec("memfd:x:4:16:4K", &cfg, err, sizeof(err)) == 0, "%s", err);
	fd = xseg_create_memfd(&cfg, err, sizeof(err));
	CHECKF(fd >= 0, "%d %s", fd, err);
	CHECK(dup2(fd, n) == n);
	close(fd);

	/* 0xK: a key free as a sysv key and as a posix name. */
	for (int i = 0; i < 400 && !sysv_k; i++) {
		key_t k = (key_t)(0x58460000u | ((uint32_t)(getpid() + i) & 0xFFFFu));

		snprintf(posix_k, sizeof(posix_k), "0x%08x", (unsigned int)k);
		if (create("posix", posix_k) != 0) {
			posix_k[0] = 0;
			continue;
		}
		if (create("sysv", posix_k) == 0) {
			sysv_k = k;
		} else {
			xseg_destroy_name("posix", posix_k);
			posix_k[0] = 0;
		}
	}
	CHECKF(sysv_k, "no free sysv key: %s", err);

	char mname[16];

	snprintf(mname, sizeof(mname), "%d", n);
	px = join("posix", posix_n);
	mx = join("memfd", mname);
	pk = join("posix", posix_k);
	sk = join("sysv", posix_k);
	xseg_seg_ident(px, &a);
	xseg_seg_ident(mx, &b);
	CHECK(!strcmp(a.type, "posix") && !strcmp(b.type, "memfd") && a.id != b.id);
	pfd = bind1(px);
	mfd = bind1(mx);
	pkfd = bind1(pk);
	skfd = bind1(sk);
	CHECKF(woken("posix", posix_n, pfd), "posix:%s lost its FIFO to memfd:%s's bind",
	       posix_n, mname);
	CHECKF(woken("posix", posix_k, pkfd), "posix:%s lost its FIFO to sysv:%s's bind",
	       posix_k, posix_k);
	CHECK(woken("memfd", mname, mfd) && woken("sysv", posix_k, skfd));
	CHECK(own_fifo(px, pfd) && own_fifo(mx, mfd) && own_fifo(pk, pkfd) && own_fifo(sk, skfd));

	/* Destroying the memfd and the sysv segment leaves the posix FIFOs alone. */
	CHECK(xseg_leave_port(mx, 1) == 0 && xseg_leave_port(sk, 1) == 0);
	CHECKF(xseg_destroy(mx) == 0, "destroy memfd:%s", mname);
	CHECKF(xseg_destroy(sk) == 0, "destroy sysv:%s", posix_k);
	sysv_k = 0;
	xseg_leave(mx);
	xseg_leave(sk);
	close(n);
	CHECKF(woken("posix", posix_n, pfd), "destroying memfd:%s removed posix:%s's FIFO",
	       mname, posix_n);
	CHECKF(woken("posix", posix_k, pkfd), "destroying sysv:%s removed posix:%s's FIFO",
	       posix_k, posix_k);
	CHECK(own_fifo(px, pfd) && own_fifo(pk, pkfd));

	/* posix:N recreated: another identity, another directory; the old one goes. */
	xseg_leave(pk);
	CHECK(xseg_destroy(px) == 0);
	xseg_leave(px);
	CHECK(create("posix", posix_n) == 0);
	again = join("posix", posix_n);
	xseg_seg_ident(again, &b);
	CHECK(b.id != a.id);
	{
		char old[256];

		snprintf(old, sizeof(old), "%s/posix.%016llx", tmpdir, (unsigned long long)a.id);
		CHECKF(access(old, F_OK) < 0 && errno == ENOENT, "%s survived its destroy", old);
	}
	fd = bind1(again);
	CHECK(own_fifo(again, fd) && woken("posix", posix_n, fd));
	CHECK(xseg_destroy(again) == 0);
	xseg_leave(again);
	posix_n[0] = 0;
	CHECK(xseg_destroy_name("posix", posix_k) == 0);
	posix_k[0] = 0;
	printf("ok\n");
	return 0;
}
