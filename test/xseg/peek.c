/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: xseg_peek() reads a segment's header without joining it: the
 * config, size, creator, mode, creation time and attach count are the
 * header's; peeking never changes the attach count; a joined process is
 * listed among the pids while it is joined and not after it left; a file
 * that is not an xseg segment is -EBADMSG with a message naming it, a
 * missing one -ENOENT, an unknown type -ENOENT.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include "xtest.h"
#include "xseg/xseg.h"
#include "common.h"

static void test_peek_fields(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:mode=0640");
	struct xseg_peek pk, again;
	char err[256];
	struct xseg *xs;
	bool found = false;

	CHECKF(xseg_peek(cfg.type, cfg.name, &pk, err, sizeof(err)) == 0, "%s", err);
	CHECK(!strcmp(pk.cfg.name, cfg.name) && !strcmp(pk.cfg.type, "posix"));
	CHECK(pk.cfg.nr_ports == 4 && pk.cfg.nr_requests == 8 && pk.cfg.request_size == 4096);
	CHECK(pk.mode == 0640 && pk.uid == (uint32_t)getuid() && pk.creator_pid == (uint32_t)getpid());
	CHECK(pk.size >= XSEG_HEADER_SIZE && pk.ctime_ns > 0);
	CHECK(pk.major == XSEG_VERSION_MAJOR);
	CHECKF(pk.attached == 0 && pk.nr_pids == 0, "attached %llu, %u pids",
	       (unsigned long long)pk.attached, pk.nr_pids);
	xs = tx_join(&cfg, "posix");
	CHECK(xseg_peek(cfg.type, cfg.name, &pk, err, sizeof(err)) == 0);
	CHECK(xseg_peek(cfg.type, cfg.name, &again, err, sizeof(err)) == 0);
	CHECKF(pk.attached == 1 && again.attached == 1, "peeking changed the count: %llu, %llu",
	       (unsigned long long)pk.attached, (unsigned long long)again.attached);
	for (uint32_t i = 0; i < pk.nr_pids; i++)
		found |= pk.pids[i] == (uint32_t)getpid();
	CHECK(found);
	xseg_leave(xs);
	CHECK(xseg_peek(cfg.type, cfg.name, &pk, err, sizeof(err)) == 0);
	CHECK(pk.attached == 0 && pk.nr_pids == 0);
}

static void test_peek_refusals(void)
{
	char path[128], err[256];
	struct xseg_peek pk;
	char page[8192];
	int fd;

	snprintf(path, sizeof(path), "/tmp/xseg-peek-%d", (int)getpid());
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	memset(page, 'x', sizeof(page));
	CHECK(write(fd, page, sizeof(page)) == (ssize_t)sizeof(page));
	close(fd);
	err[0] = 0;
	int r = xseg_peek("file", path, &pk, err, sizeof(err));
	unlink(path);
	CHECKF(r == -EBADMSG && strstr(err, path) && strstr(err, "not an xseg segment"), "%d %s", r, err);
	CHECK(xseg_peek("posix", "xseg-peek-nosuch-segment", &pk, err, sizeof(err)) == -ENOENT);
	CHECK(xseg_peek("nosuchtype", "x", &pk, err, sizeof(err)) == -ENOENT);
	CHECK(xseg_peek("posix", NULL, &pk, err, sizeof(err)) == -EINVAL);
}

int main(void)
{
	RUN(test_peek_fields);
	RUN(test_peek_refusals);
	return 0;
}
