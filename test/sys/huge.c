/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: huge=1 segments (2 MiB pages). The test reserves 6 huge pages
 * (/proc/sys/vm/nr_hugepages, as root; it gives back what it added at exit)
 * and skips, saying why, only if the kernel refuses the reservation. memfd:
 * xseg_create_memfd() makes an MFD_HUGETLB memfd, a whole number of huge
 * pages, used through requests and buffers. posix: in a private hugetlbfs
 * mount named by $XSEG_HUGE_DIR, found by join, list, a non-huge create of
 * the same name (EEXIST) and destroy. A segment larger than the free huge
 * pages fails at create with a message saying so, leaving nothing; huge=1
 * on a file segment is refused naming the key.
 */
#include "segtest.h"
#include "sys/user/segtypes/xseg_memfd.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#define NR_HUGE	6
#define HUGETLBFS_MAGIC_ 0x958458f6

static char hugedir[64], err[512];
static long added;		/* huge pages we reserved, given back at exit */

static long nr_hugepages(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static bool set_nr_hugepages(long v)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

static long huge_free(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	if (hugedir[0]) {
		char path[128];

		snprintf(path, sizeof(path), "%s/xseg.%sbig", hugedir, prefix);
		unlink(path);
		snprintf(path, sizeof(path), "%s/xseg.%sh", hugedir, prefix);
		unlink(path);
		umount2(hugedir, MNT_DETACH);
		rmdir(hugedir);
	}
	if (added) {
		long cur = nr_hugepages();

		/* Others may have changed it meanwhile: take back only ours. */
		set_nr_hugepages(cur > added ? cur - added : 0);
	}
}

static int create_spec(const char *spec)
{
	struct xseg_config cfg;
	int r = xseg_parse_spec(spec, &cfg, err, sizeof(err));

	CHECKF(r == 0, "%s: %s", spec, err);
	return xseg_create(&cfg, err, sizeof(err));
}

/* Requests with buffers work on @xs: write through one, read it back. */
static void use(struct xseg *xs)
{
	struct xseg_request *r;
	uint64_t cap = 0;
	uint8_t *d;

	CHECK(xseg_bind_port(xs, 0, 0) == 0);
	r = xseg_get_request(xs, 0);
	CHECK(r && xseg_prep_request(xs, r, "t", 1, 4096) == 0);
	d = xseg_req_buffer(xs, r, &cap);
	CHECK(d && cap >= 4096);
	memset(d, 0x5a, 4096);
	CHECK(d[4095] == 0x5a);
	CHECK(xseg_put_request(xs, r) == 0);
}

static void test_memfd(void)
{
	struct xseg_config cfg;
	struct statfs sfs;
	struct stat st;
	struct xseg *xs;
	char name[16];
	long before = huge_free();
	int fd, e = 0;

	CHECKF(xseg_parse_spec("memfd:x:4:16:4K:huge=1", &cfg, err, sizeof(err)) == 0, "%s", err);
	fd = xseg_create_memfd(&cfg, err, sizeof(err));
	CHECKF(fd >= 0, "huge pages were reserved, yet: %d %s", fd, err);
	CHECK(fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC_);
	CHECK(fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size % (2 << 20) == 0);
	CHECKF(huge_free() <= before - st.st_size / (2 << 20), "free %ld -> %ld", before,
	       huge_free());
	snprintf(name, sizeof(name), "%d", fd);
	xs = xseg_join("memfd", name, "posix", NULL, NULL, &e, err, sizeof(err));
	CHECKF(xs, "%d %s", e, err);
	CHECK(xseg_config(xs)->huge == 1);
	use(xs);
	CHECK(xseg_destroy(xs) == 0);
	xseg_leave(xs);
	close(fd);
	CHECK(huge_free() == before);
	printf("  memfd: %lld MiB of huge pages, used and given back\n",
	       (long long)(st.st_size >> 20));
}

static void test_posix(void)
{
	const char *h = pname("h"), *big = pname("big");
	char spec[256], path[256];
	struct xseg *xs;
	struct stat st;
	int e = 0, r;

	snprintf(hugedir, sizeof(hugedir), "/tmp/xseg-huge.XXXXXX");
	CHECK(mkdtemp(hugedir));
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("hugetlbfs", hugedir, "hugetlbfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0) {
		rmdir(hugedir);
		segtest_need(false, "no private hugetlbfs mount (unshare/mount refused)");
	}
	CHECK(setenv("XSEG_HUGE_DIR", hugedir, 1) == 0);
	snprintf(spec, sizeof(spec), "posix:%s:4:16:4K:0:12:huge=1", h);
	r = create_spec(spec);
	CHECKF(r == 0, "huge pages were reserved, yet: %d %s", r, err);
	snprintf(path, sizeof(path), "%s/xseg.%s", hugedir, h);
	CHECK(stat(path, &st) == 0 && st.st_size % (2 << 20) == 0);
	snprintf(path, sizeof(path), "/dev/shm/xseg.%s", h);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	xs = xseg_join("posix", h, "posix", NULL, NULL, &e, err, sizeof(err));
	CHECKF(xs, "%d %s", e, err);
	use(xs);
	xseg_leave(xs);
	/* The name is taken for a plain create too. */
	snprintf(spec, sizeof(spec), "posix:%s:4:16:4K", h);
	r = create_spec(spec);
	CHECKF(r == -EEXIST && strstr(err, "huge pages"), "%d %s", r, err);
	/* Larger than the free huge pages: refused at once, saying so, nothing left. */
	snprintf(spec, sizeof(spec), "posix:%s:4:16:4K:0:12:huge=1:buffers=1M*64", big);
	r = create_spec(spec);
	CHECKF(r == -ENOSPC && strstr(err, "not enough free huge pages"), "%d %s", r, err);
	printf("  %s\n", err);
	snprintf(path, sizeof(path), "%s/xseg.%s", hugedir, big);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	CHECKF(xseg_destroy_name_err("posix", h, err, sizeof(err)) == 0, "%s", err);
	snprintf(path, sizeof(path), "%s/xseg.%s", hugedir, h);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
}

static void test_refused(void)
{
	char spec[256];
	int r;

	snprintf(spec, sizeof(spec), "file:/tmp/%shuge:4:16:4K:0:12:huge=1", prefix);
	r = create_spec(spec);
	CHECKF(r == -EINVAL && strstr(err, "huge"), "%d %s", r, err);
	CHECK(xseg_parse_spec("posix:x:huge=2", &(struct xseg_config){ 0 }, err, sizeof(err)) ==
	      -EINVAL && !strncmp(err, "huge: ", 6));
}

int main(void)
{
	long old, now;

	setvbuf(stdout, NULL, _IOLBF, 0);
	segtest_start();
	atexit(cleanup);
	RUN(test_refused);
	segtest_need(geteuid() == 0, "reserving huge pages needs root");
	old = nr_hugepages();
	if (old < 0 || !set_nr_hugepages(old + NR_HUGE))
		segtest_need(false, "the kernel refused to reserve huge pages "
			     "(/proc/sys/vm/nr_hugepages)");
	now = nr_hugepages();
	added = now > old ? now - old : 0;
	if (added < NR_HUGE || huge_free() < NR_HUGE)
		segtest_need(false, "the kernel reserved fewer huge pages than asked (memory "
			     "too fragmented?)");
	RUN(test_memfd);
	RUN(test_posix);
	return 0;
}
