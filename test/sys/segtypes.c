/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the posix, file and heap segment types on their own (no core),
 * as an ordinary user: create and EEXIST, memory shared both ways with a
 * forked child (posix, file) or a thread (heap; a forked child gets a private
 * copy), the exact requested mode under umask 077, destroy then ENOENT, list;
 * map refusing a truncated segment (EBADMSG), a symlink, a world-accessible
 * segment and a FIFO (EPERM); create refusing bad names, sizes and modes;
 * heap references outliving destroy and the 64-name registry limit.
 * Root-only cases (other users, ENOSPC on a small tmpfs) are in perms.c.
 */
#include "segtest.h"
#include "sys/user/segtypes/segtype.h"
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>

#define KIB 1024ull

static char tmpdir[64];
static uint32_t page;
static char err[512];

/* At exit of the test process (not of its children): remove all we made. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	remove_tree(tmpdir);
}

/* The name of segment @tag of type @ops for this run. */
static const char *segname(const struct xseg_segtype_ops *ops, const char *tag)
{
	static char buf[8][256];
	static unsigned int next;
	char *b = buf[next++ % 8];

	if (!strcmp(ops->name, "file"))
		snprintf(b, 256, "%s/%s", tmpdir, tag);
	else
		snprintf(b, 256, "%s%s", prefix, tag);
	return b;
}

/* The file behind an fd-backed segment. */
static const char *segpath(const struct xseg_segtype_ops *ops, const char *name)
{
	static char buf[4][512];
	static unsigned int next;
	char *b = buf[next++ % 4];

	if (!strcmp(ops->name, "posix"))
		snprintf(b, 512, "/dev/shm/xseg.%s", name);
	else
		snprintf(b, 512, "%s", name);
	return b;
}

struct seen { const char *name; int found; };

static void list_cb(void *arg, const char *name)
{
	struct seen *s = arg;

	if (!strcmp(name, s->name))
		s->found++;
}

static int listed(const struct xseg_segtype_ops *ops, const char *name)
{
	struct seen s = { name, 0 };

	CHECK(ops->list(list_cb, &s) >= 0);
	return s.found;
}

static int wait_word(volatile uint64_t *w, uint64_t v)
{
	uint64_t end = xt_now_ns() + 10ull * 1000000000ull;

	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != v)
		if (xt_now_ns() > end)
			return 0;
	return 1;
}

/*
 * The life of an fd-backed segment: create under umask 077 with mode 0660,
 * EEXIST, writes seen both ways with a forked child, list, destroy, ENOENT.
 */
static void lifecycle_fd(const struct xseg_segtype_ops *ops)
{
	const char *name = segname(ops, "life");
	uint64_t size = 64 * KIB, msize;
	volatile uint64_t *w;
	void *mem, *mem2;
	struct stat st;
	mode_t old;
	pid_t pid;
	int rc;

	old = umask(077);
	rc = ops->create(name, size, 0660, (int32_t)getegid(), &mem, err, sizeof(err));
	umask(old);
	CHECKF(rc == 0, "%d %s", rc, err);
	CHECK(stat(segpath(ops, name), &st) == 0);
	CHECKF((st.st_mode & 07777) == 0660, "mode %o", (unsigned int)st.st_mode);
	CHECK(st.st_uid == geteuid() && st.st_gid == getegid());
	CHECK((uint64_t)st.st_size == size);

	rc = ops->create(name, size, 0660, -1, &mem2, err, sizeof(err));
	CHECKF(rc == -EEXIST, "%d", rc);
	CHECKF(strstr(err, name) && strstr(err, "exists"), "%s", err);
	printf("  %s\n", err);

	w = mem;
	CHECK(w[0] == 0 && w[size / 8 - 1] == 0);	/* zero-filled */
	w[0] = 0x1234;
	w[size / 8 - 1] = 0x5678;
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		volatile uint64_t *c;

		if (ops->map(name, &mem2, &msize, err, sizeof(err)) || msize != size)
			_exit(2);
		c = mem2;
		if (c[0] != 0x1234 || c[size / 8 - 1] != 0x5678)
			_exit(3);
		__atomic_store_n(&c[1], 0xabcd, __ATOMIC_RELEASE);
		if (!wait_word(&c[2], 0x9999))
			_exit(4);
		ops->unmap(mem2, msize);
		_exit(0);
	}
	CHECK(wait_word(&w[1], 0xabcd));		/* child -> parent */
	__atomic_store_n(&w[2], 0x9999, __ATOMIC_RELEASE);	/* parent -> child */
	rc = child_status(pid);
	CHECKF(rc == 0, "child exit %d", rc);

	/* A second mapping in this process sees the same memory. */
	CHECK(ops->map(name, &mem2, &msize, err, sizeof(err)) == 0 && msize == size);
	CHECK(((volatile uint64_t *)mem2)[1] == 0xabcd);
	ops->unmap(mem2, msize);

	if (ops->list)
		CHECK(listed(ops, name) == 1);
	CHECK(ops->destroy(name) == 0);
	CHECK(w[0] == 0x1234);				/* our mapping outlives the name */
	ops->unmap(mem, size);
	rc = ops->map(name, &mem2, &msize, err, sizeof(err));
	CHECKF(rc == -ENOENT, "%d", rc);
	CHECKF(strstr(err, name), "%s", err);
	printf("  %s\n", err);
	CHECK(ops->destroy(name) == -ENOENT);
	if (ops->list)
		CHECK(listed(ops, name) == 0);
}

static void test_posix_lifecycle(void)
{
	lifecycle_fd(&xseg_segtype_posix);
}

static void test_file_lifecycle(void)
{
	CHECK(xseg_segtype_file.list == NULL);
	lifecycle_fd(&xseg_segtype_file);
}

/* The ops fields every type must have. */
static void test_ops(void)
{
	const struct xseg_segtype_ops *all[] = {
		&xseg_segtype_posix, &xseg_segtype_file, &xseg_segtype_heap,
	};

	for (unsigned int i = 0; i < 3; i++) {
		CHECK(all[i]->abi_size == sizeof(struct xseg_segtype_ops));
		CHECK(all[i]->version == 1);
		CHECK(all[i]->create && all[i]->map && all[i]->unmap && all[i]->destroy);
	}
	CHECK(!strcmp(xseg_segtype_posix.name, "posix"));
	CHECK(!strcmp(xseg_segtype_file.name, "file"));
	CHECK(!strcmp(xseg_segtype_heap.name, "heap"));
}

/* Create a segment and let go of the mapping. */
static void make(const struct xseg_segtype_ops *ops, const char *name, uint32_t mode)
{
	void *mem;
	int rc = ops->create(name, 16 * KIB, mode, -1, &mem, err, sizeof(err));

	CHECKF(rc == 0, "%d %s", rc, err);
	ops->unmap(mem, 16 * KIB);
}

static void expect_map(const struct xseg_segtype_ops *ops, const char *name, int want,
		       const char *words)
{
	uint64_t size;
	void *mem;
	int rc = ops->map(name, &mem, &size, err, sizeof(err));

	if (rc == 0)
		ops->unmap(mem, size);
	CHECKF(rc == want, "%s map '%s': %d, want %d (%s)", ops->name, name, rc, want, err);
	if (!want)
		return;
	CHECKF(strstr(err, name) && strstr(err, words), "'%s' lacks '%s'", err, words);
	printf("  %s\n", err);
}

/* map() refuses what a hostile or broken party may leave behind. */
static void refusals_fd(const struct xseg_segtype_ops *ops)
{
	const char *a = segname(ops, "a"), *b = segname(ops, "b");
	void *mem;
	int rc;

	/* Truncated: shorter than a page, or not page-sized. */
	make(ops, a, 0600);
	CHECK(truncate(segpath(ops, a), 100) == 0);
	expect_map(ops, a, -EBADMSG, "truncated");
	CHECK(truncate(segpath(ops, a), page + 100) == 0);
	expect_map(ops, a, -EBADMSG, "truncated");
	CHECK(truncate(segpath(ops, a), 16 * KIB) == 0);
	expect_map(ops, a, 0, "");

	/* A symlink to a good segment: refused by map, EEXIST for create. */
	CHECK(symlink(segpath(ops, a), segpath(ops, b)) == 0);
	expect_map(ops, b, -EPERM, "symbolic link");
	rc = ops->create(b, 16 * KIB, 0600, -1, &mem, err, sizeof(err));
	CHECKF(rc == -EEXIST, "%d", rc);
	CHECK(unlink(segpath(ops, b)) == 0);

	/* Anything for "other": squatted or tampered with. */
	CHECK(chmod(segpath(ops, a), 0666) == 0);
	expect_map(ops, a, -EPERM, "others");
	CHECK(chmod(segpath(ops, a), 0604) == 0);
	expect_map(ops, a, -EPERM, "others");
	CHECK(chmod(segpath(ops, a), 0600) == 0);
	CHECK(ops->destroy(a) == 0);

	/* Not a regular file. */
	CHECK(mkfifo(segpath(ops, a), 0600) == 0);
	expect_map(ops, a, -EPERM, "regular");
	CHECK(unlink(segpath(ops, a)) == 0);
}

static void test_posix_refusals(void)
{
	refusals_fd(&xseg_segtype_posix);
}

static void test_file_refusals(void)
{
	refusals_fd(&xseg_segtype_file);
}

static void expect_create(const struct xseg_segtype_ops *ops, const char *name, uint64_t size,
			  uint32_t mode, int want)
{
	void *mem;
	int rc = ops->create(name, size, mode, -1, &mem, err, sizeof(err));

	if (rc == 0)
		ops->unmap(mem, size);
	CHECKF(rc == want, "%s create '%s' size %llu mode %o: %d, want %d (%s)", ops->name,
	       name, (unsigned long long)size, mode, rc, want, err);
	if (want)
		printf("  %s\n", err);
}

/* create() refuses bad arguments before touching anything. */
static void test_bad_args(void)
{
	const struct xseg_segtype_ops *p = &xseg_segtype_posix, *f = &xseg_segtype_file;
	const struct xseg_segtype_ops *h = &xseg_segtype_heap;
	const char *n = segname(p, "args"), *fn = segname(f, "args");
	char longname[300];
	struct stat st;

	expect_create(p, "a/b", 16 * KIB, 0600, -EINVAL);
	expect_create(p, "", 16 * KIB, 0600, -EINVAL);
	expect_create(p, "..", 16 * KIB, 0600, -EINVAL);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	expect_create(p, longname, 16 * KIB, 0600, -EINVAL);
	expect_create(h, longname, 16 * KIB, 0600, -EINVAL);
	expect_create(h, "", 16 * KIB, 0600, -EINVAL);
	expect_create(f, "", 16 * KIB, 0600, -EINVAL);
	for (unsigned int i = 0; i < 3; i++) {
		const struct xseg_segtype_ops *o = i == 0 ? p : i == 1 ? f : h;
		const char *nm = i == 1 ? fn : n;

		expect_create(o, nm, 0, 0600, -EINVAL);
		expect_create(o, nm, 100, 0600, -EINVAL);
		expect_create(o, nm, page + 1, 0600, -EINVAL);
		expect_create(o, nm, 1ull << 63, 0600, -EINVAL);
	}
	expect_create(p, n, 16 * KIB, 0666, -EINVAL);		/* others */
	expect_create(p, n, 16 * KIB, 04600, -EINVAL);		/* setuid */
	expect_create(p, n, 16 * KIB, 0060, -EINVAL);		/* owner without rw */
	expect_create(f, fn, 16 * KIB, 0606, -EINVAL);
	CHECK(stat(segpath(p, n), &st) < 0 && errno == ENOENT);	/* nothing left behind */
	CHECK(stat(fn, &st) < 0 && errno == ENOENT);
	expect_create(f, "/nonexistent-xseg-dir/x", 16 * KIB, 0600, -ENOENT);
	CHECK(strstr(err, "directory"));
	CHECK(p->destroy("a/b") == -EINVAL && h->destroy("") == -EINVAL && f->destroy("") == -EINVAL);
	/* heap ignores mode and gid */
	expect_create(h, n, 16 * KIB, 0, 0);
	CHECK(h->destroy(n) == 0);
	expect_create(h, n, 16 * KIB, 0777, 0);
	CHECK(h->destroy(n) == 0);
}

/* The final mode is exactly the requested one, whatever the umask. */
static void test_mode_umask(void)
{
	const struct xseg_segtype_ops *types[] = { &xseg_segtype_posix, &xseg_segtype_file };
	const uint32_t modes[] = { 0600, 0640, 0660, 0770 };

	for (unsigned int t = 0; t < 2; t++)
		for (unsigned int m = 0; m < 4; m++) {
			const char *name = segname(types[t], "mode");
			struct stat st;
			mode_t old = umask(0777);

			make(types[t], name, modes[m]);
			umask(old);
			CHECK(stat(segpath(types[t], name), &st) == 0);
			CHECKF((st.st_mode & 07777) == modes[m], "%s: %o for %o", types[t]->name,
			       (unsigned int)(st.st_mode & 07777), modes[m]);
			CHECK(types[t]->destroy(name) == 0);
		}
}

struct heap_arg { const char *name; int rc; };

static void *heap_thread(void *p)
{
	struct heap_arg *a = p;
	volatile uint64_t *c;
	uint64_t size;
	void *mem;

	a->rc = xseg_segtype_heap.map(a->name, &mem, &size, NULL, 0);
	if (a->rc)
		return NULL;
	c = mem;
	if (c[0] != 0x1234)
		a->rc = 3;
	__atomic_store_n(&c[1], 0xabcd, __ATOMIC_RELEASE);
	if (!wait_word(&c[2], 0x9999))
		a->rc = 4;
	xseg_segtype_heap.unmap(mem, size);
	return NULL;
}

/* A mapping of the heap type is still mapped (msync works on it). */
static int mapped(void *p)
{
	return msync(p, page, MS_ASYNC) == 0;
}

static void test_heap(void)
{
	const struct xseg_segtype_ops *h = &xseg_segtype_heap;
	const char *name = segname(h, "life");
	uint64_t size = 64 * KIB, msize;
	struct heap_arg a = { name, -1 };
	volatile uint64_t *w;
	void *mem, *mem2, *mem3;
	pthread_t th;
	pid_t pid;
	int rc;

	CHECK(h->create(name, size, 0660, -1, &mem, err, sizeof(err)) == 0);
	rc = h->create(name, size, 0660, -1, &mem2, err, sizeof(err));
	CHECKF(rc == -EEXIST && strstr(err, name), "%d %s", rc, err);
	printf("  %s\n", err);
	CHECK(listed(h, name) == 1);
	w = mem;
	CHECK(w[0] == 0 && w[size / 8 - 1] == 0);
	w[0] = 0x1234;

	/* A thread shares it both ways. */
	CHECK(pthread_create(&th, NULL, heap_thread, &a) == 0);
	CHECK(wait_word(&w[1], 0xabcd));
	__atomic_store_n(&w[2], 0x9999, __ATOMIC_RELEASE);
	CHECK(pthread_join(th, NULL) == 0);
	CHECKF(a.rc == 0, "thread %d", a.rc);

	/* A forked child gets its own copy: process-private. */
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		volatile uint64_t *c;

		if (h->map(name, &mem2, &msize, NULL, 0) || mem2 != mem || msize != size)
			_exit(2);
		c = mem2;
		if (c[0] != 0x1234)
			_exit(3);
		c[5] = 77;
		_exit(0);
	}
	CHECK(child_status(pid) == 0);
	CHECK(w[5] == 0);

	/* destroy removes the name; the memory lives until the last unmap. */
	CHECK(h->map(name, &mem2, &msize, err, sizeof(err)) == 0 && mem2 == mem);
	CHECK(h->destroy(name) == 0);
	CHECK(h->destroy(name) == -ENOENT);
	CHECK(listed(h, name) == 0);
	rc = h->map(name, &mem3, &msize, err, sizeof(err));
	CHECKF(rc == -ENOENT && strstr(err, name), "%d %s", rc, err);
	printf("  %s\n", err);
	CHECK(w[0] == 0x1234);
	/* The name is free again: a new, zeroed segment. */
	CHECK(h->create(name, size, 0600, -1, &mem3, err, sizeof(err)) == 0);
	CHECK(mem3 != mem && ((uint64_t *)mem3)[0] == 0);
	h->unmap(mem, size);
	CHECK(mapped(mem));			/* one reference left */
	h->unmap(mem2, size);
	CHECK(!mapped(mem));			/* freed at the last unmap */
	h->unmap(mem3, size);
	CHECK(mapped(mem3));			/* named: kept with no mapping */
	CHECK(h->map(name, &mem2, &msize, err, sizeof(err)) == 0 && mem2 == mem3);
	h->unmap(mem2, msize);
	CHECK(h->destroy(name) == 0);
	CHECK(!mapped(mem3));			/* unmapped and destroyed: freed */
}

/* 64 names at most; a slot comes back with the last unmap of a destroyed one. */
static void test_heap_full(void)
{
	const struct xseg_segtype_ops *h = &xseg_segtype_heap;
	char names[65][96];
	void *mem, *kept;
	uint64_t sz;
	int rc;

	for (unsigned int i = 0; i < 65; i++)
		snprintf(names[i], sizeof(names[i]), "%sfull-%u", prefix, i);
	for (unsigned int i = 0; i < 64; i++) {
		CHECK(h->create(names[i], 4 * KIB, 0600, -1, &mem, err, sizeof(err)) == 0);
		h->unmap(mem, 4 * KIB);
	}
	rc = h->create(names[64], 4 * KIB, 0600, -1, &mem, err, sizeof(err));
	CHECKF(rc == -ENOSPC && strstr(err, names[64]), "%d %s", rc, err);
	printf("  %s\n", err);
	/* A destroyed but mapped segment still holds its slot. */
	CHECK(h->map(names[0], &kept, &sz, NULL, 0) == 0);
	CHECK(h->destroy(names[0]) == 0);
	CHECK(h->create(names[64], 4 * KIB, 0600, -1, &mem, NULL, 0) == -ENOSPC);
	h->unmap(kept, sz);
	CHECK(h->create(names[64], 4 * KIB, 0600, -1, &mem, NULL, 0) == 0);
	h->unmap(mem, 4 * KIB);
	for (unsigned int i = 1; i < 65; i++)
		CHECK(h->destroy(names[i]) == 0);
	CHECK(h->list(list_cb, &(struct seen){ names[1], 0 }) == 0);
	h->unmap(&rc, 8);		/* not a heap segment: ignored, logged */
}

int main(void)
{
	main_pid = getpid();
	page = (uint32_t)sysconf(_SC_PAGESIZE);
	snprintf(prefix, sizeof(prefix), "xt-%s-", xt_tag());
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xseg-segtypes.XXXXXX");
	CHECK(mkdtemp(tmpdir));
	atexit(cleanup);
	xt_watchdog(60);

	RUN(test_ops);
	RUN(test_posix_lifecycle);
	RUN(test_file_lifecycle);
	RUN(test_mode_umask);
	RUN(test_posix_refusals);
	RUN(test_file_refusals);
	RUN(test_bad_args);
	RUN(test_heap);
	RUN(test_heap_full);
	return 0;
}
