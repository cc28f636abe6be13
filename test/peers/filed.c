/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: filed as a child process on a temporary directory: CREATE
 * (exclusive, sized), WRITE (creates, extends; FUA), READ (short at the end,
 * 0 past it), INFO, TRUNCATE, DELETE, COPY and RENAME (contents checked in
 * the directory), then the object store conformance suite
 * (test/peers/objects.h: every op through requests, HASH against SHA-256
 * vectors, ACQUIRE/RELEASE naming the holder, XF_FORCE, 48 requests in
 * flight, data and locks surviving a restart and a SIGKILL of filed),
 * FLUSH/SYNC, DISCARD/WRITE_ZEROES,
 * unknown ops (EOPNOTSUPP), name validation ("../x", "a/b", ".", "..",
 * empty, control characters, over-long: EINVAL, and nothing created outside
 * the directory), symlinks in the directory are not followed, leftover
 * temporary files are removed at start, a second filed on the same
 * directory is refused, and client threads working on their own objects
 * concurrently. All of it three times: DIR on tmpfs (READ/WRITE served on
 * filed's dispatch thread), on /tmp (cached reads on the dispatch thread,
 * RESOLVE_CACHED + RWF_NOWAIT) and with --no-inline (everything on the pool).
 * The dispatch thread's fd cache: a name deleted, renamed over, copied over
 * or renamed away and written again is served from its new file, and on
 * tmpfs 100 READ/WRITE of one object hit the cache at least 99 times, on
 * the dispatch thread and (--no-inline) on the I/O pool; none kept with
 * --no-fd-cache (filed's -v log at exit).
 */
#include <dirent.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include "objects.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static const char *store;
static const char *extra;	/* "--no-inline" or NULL */
static pid_t filed_pid;

static pid_t start_filed(uint32_t port)
{
	char ports[16];
	const char *args[] = { "-q", "-g", spec, "-p", ports, "--dir", store, extra, NULL };
	pid_t pid;

	snprintf(ports, sizeof(ports), "%u", port);
	pid = tp_start("filed", args);
	tp_wait_bound(xs, port, pid);
	return pid;
}

/* The suite's restart: SIGTERM (exit 0) or SIGKILL, and a new filed on the same directory. */
static void restart_filed(int crash)
{
	if (crash)
		CHECK(kill(filed_pid, SIGKILL) == 0 && tp_wait(filed_pid) == 128 + SIGKILL);
	else
		CHECK(tp_stop(filed_pid) == 0);
	filed_pid = start_filed(1);
}

/* A request on object @name; @in (NUL-terminated string or NULL) as data; reply data into @out. */
static int req(uint32_t op, const char *name, uint64_t off, uint64_t size, const char *in,
	       void *out, uint64_t out_len, uint64_t *serviced)
{
	struct tp_req r = { .op = op, .target = name, .offset = off, .size = size,
			    .in = in, .in_len = in ? strlen(in) : 0, .buf_len = out_len,
			    .out = out, .out_len = out_len };

	if (name && !*name) {		/* an empty name */
		r.target = NULL;
	}
	tp_do(xs, me, 1, &r);
	if (serviced)
		*serviced = r.serviced;
	return r.error;
}

static int put(const char *name, uint64_t off, const char *s)
{
	uint64_t sv = 0;
	int e = req(X_WRITE, name, off, strlen(s), s, NULL, 0, &sv);

	if (!e)
		CHECK(sv == strlen(s));
	return e;
}

static int64_t size_of(const char *name)
{
	uint8_t b[8];
	uint64_t v = 0;
	int e = req(X_INFO, name, 0, 8, NULL, b, 8, NULL);

	if (e)
		return -e;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* The content of DIR/name, or NULL if there is no such file. */
static char *content(const char *name, uint64_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", store, name);
	if (access(path, F_OK))
		return NULL;
	return (char *)tp_slurp(path, len);
}

static void test_objects(void)
{
	char buf[4096];
	uint64_t sv, len;
	char *c;
	struct stat st;

	/* CREATE: exclusive, sized. */
	CHECK(req(X_CREATE, "a", 0, 100, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_CREATE, "a", 0, 0, NULL, NULL, 0, NULL) == EEXIST);
	CHECK(size_of("a") == 100);
	c = content("a", &len);
	CHECK(c && len == 100 && tp_all_zero((uint8_t *)c, 100));
	free(c);
	/* WRITE in place, then past the end (extends). */
	CHECK(put("a", 0, "hello world") == 0);
	CHECK(size_of("a") == 100);
	CHECK(put("a", 200, "tail") == 0);
	CHECK(size_of("a") == 204);
	c = content("a", &len);
	CHECK(c && len == 204 && !memcmp(c, "hello world", 11) && !memcmp(c + 200, "tail", 4));
	free(c);
	/* FUA and pre-flush writes. */
	{
		struct tp_req r = { .op = X_WRITE, .flags = XF_FUA | XF_FLUSH, .target = "a", .offset = 6,
				    .size = 5, .in = "WORLD", .in_len = 5 };

		CHECK(tp_do(xs, me, 1, &r) == 0 && r.serviced == 5);
	}
	/* READ: whole, short at the end, nothing past it. */
	CHECK(req(X_READ, "a", 0, 11, NULL, buf, 11, &sv) == 0 && sv == 11);
	CHECK(!memcmp(buf, "hello WORLD", 11));
	CHECK(req(X_READ, "a", 200, 4096, NULL, buf, 4096, &sv) == 0 && sv == 4);
	CHECK(!memcmp(buf, "tail", 4));
	CHECK(req(X_READ, "a", 204, 100, NULL, buf, 100, &sv) == 0 && sv == 0);
	CHECK(req(X_READ, "a", 1 << 20, 100, NULL, buf, 100, &sv) == 0 && sv == 0);
	CHECK(req(X_READ, "a", 0, 8192, NULL, buf, 4096, &sv) == EINVAL);	/* buffer too small */
	/* WRITE creates a missing object. */
	CHECK(put("new", 3, "xyz") == 0);
	CHECK(size_of("new") == 6);
	/* Missing objects. */
	CHECK(req(X_READ, "nothere", 0, 10, NULL, buf, 10, NULL) == ENOENT);
	CHECK(size_of("nothere") == -ENOENT);
	CHECK(req(X_TRUNCATE, "nothere", 5, 0, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(req(X_HASH, "nothere", 0, 64, NULL, buf, 64, NULL) == ENOENT);
	/* TRUNCATE both ways. */
	CHECK(req(X_TRUNCATE, "new", 2, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(size_of("new") == 2);
	CHECK(req(X_TRUNCATE, "new", 4096, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(size_of("new") == 4096);
	/* DELETE. */
	CHECK(req(X_DELETE, "new", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(!content("new", &len));
	CHECK(req(X_DELETE, "new", 0, 0, NULL, NULL, 0, NULL) == ENOENT);
	/* FLUSH/SYNC of one object and of the whole store. */
	CHECK(req(X_FLUSH, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_SYNC, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_SYNC, "", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_FLUSH, "", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_FLUSH, "nothere", 0, 0, NULL, NULL, 0, NULL) == ENOENT);
	/* COMMIT: a durable barrier of an object (data, metadata, name) or the store. */
	CHECK(req(X_COMMIT, "a", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_COMMIT, "", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_COMMIT, "nothere", 0, 0, NULL, NULL, 0, NULL) == ENOENT);
	CHECK(req(X_PING, "", 0, 0, NULL, NULL, 0, NULL) == 0);
	/* DISCARD and WRITE_ZEROES within the object; the size never changes. */
	CHECK(put("z", 0, "0123456789abcdef") == 0);
	CHECK(req(X_DISCARD, "z", 2, 3, NULL, NULL, 0, &sv) == 0 && sv == 3);
	CHECK(req(X_WRITE_ZEROES, "z", 10, 100, NULL, NULL, 0, &sv) == 0 && sv == 6);
	CHECK(size_of("z") == 16);
	c = content("z", &len);
	CHECK(c && len == 16 && !memcmp(c, "01\0\0\0" "56789\0\0\0\0\0\0", 16));
	free(c);
	/* Unknown ops. */
	CHECK(req(X_CLONE, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	CHECK(req(X_SNAPSHOT, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	CHECK(req(X_OP_COUNT + 5, "a", 0, 0, NULL, NULL, 0, NULL) == EOPNOTSUPP);
	(void)st;
}

static void test_copy_rename(void)
{
	uint64_t sv, len;
	char *c;

	CHECK(put("src", 0, "copy me, please") == 0);
	CHECK(req(X_COPY, "dst", 0, 3, "src", NULL, 0, &sv) == 0 && sv == 15);
	c = content("dst", &len);
	CHECK(c && len == 15 && !memcmp(c, "copy me, please", 15));
	free(c);
	/* A copy replaces an existing destination. */
	CHECK(put("other", 0, "x") == 0);
	CHECK(req(X_COPY, "other", 0, 3, "src", NULL, 0, NULL) == 0);
	CHECK(size_of("other") == 15);
	CHECK(req(X_COPY, "dst2", 0, 7, "missing", NULL, 0, NULL) == ENOENT);
	CHECK(!content("dst2", &len));
	CHECK(req(X_COPY, "dst2", 0, 4, "../x", NULL, 0, NULL) == EINVAL);
	CHECK(req(X_COPY, "dst2", 0, 0, NULL, NULL, 0, NULL) == EINVAL);	/* no source name */
	/* RENAME: atomic, replaces. */
	CHECK(req(X_RENAME, "dst", 0, 7, "renamed", NULL, 0, NULL) == 0);
	CHECK(!content("dst", &len));
	c = content("renamed", &len);
	CHECK(c && len == 15);
	free(c);
	CHECK(req(X_RENAME, "renamed", 0, 5, "other", NULL, 0, NULL) == 0);
	CHECK(size_of("other") == 15 && size_of("renamed") == -ENOENT);
	CHECK(req(X_RENAME, "renamed", 0, 3, "abc", NULL, 0, NULL) == ENOENT);
	CHECK(req(X_RENAME, "other", 0, 3, "a/b", NULL, 0, NULL) == EINVAL);
	CHECK(req(X_RENAME, "other", 0, 2, "..", NULL, 0, NULL) == EINVAL);
}

/* Read all of object @name (at most 64 bytes) through filed; its length, or -errno. */
static int64_t get(const char *name, char out[64])
{
	uint64_t sv = 0;
	int e = req(X_READ, name, 0, 64, NULL, out, 64, &sv);

	return e ? -e : (int64_t)sv;
}

/*
 * The dispatch thread's fd cache: a name that was deleted, renamed over,
 * copied over or renamed away and written again is served from the file it
 * names now, never from an fd still open on the old one.
 */
static void test_fd_cache(void)
{
	char b[64];

	CHECK(put("fc", 0, "aaaa") == 0);
	CHECK(get("fc", b) == 4 && !memcmp(b, "aaaa", 4));	/* open (and kept) */
	CHECK(req(X_DELETE, "fc", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(get("fc", b) == -ENOENT);
	CHECK(put("fc", 0, "bb") == 0);				/* a new file, not the unlinked one */
	CHECK(get("fc", b) == 2 && !memcmp(b, "bb", 2));
	CHECK(put("fc2", 0, "cccccc") == 0);
	CHECK(get("fc2", b) == 6);
	CHECK(req(X_RENAME, "fc2", 0, 2, "fc", NULL, 0, NULL) == 0);	/* fc2 over fc */
	CHECK(get("fc", b) == 6 && !memcmp(b, "cccccc", 6));
	CHECK(get("fc2", b) == -ENOENT);
	CHECK(put("fc2", 0, "d") == 0);
	CHECK(get("fc2", b) == 1 && get("fc", b) == 6);
	CHECK(req(X_COPY, "fc", 0, 3, "fc2", NULL, 0, NULL) == 0);	/* fc2 copied over fc */
	CHECK(get("fc", b) == 1 && b[0] == 'd');
	CHECK(put("fc", 1, "e") == 0);
	CHECK(get("fc", b) == 2 && !memcmp(b, "de", 2) && get("fc2", b) == 1);
	CHECK(req(X_DELETE, "fc", 0, 0, NULL, NULL, 0, NULL) == 0);
	CHECK(req(X_DELETE, "fc2", 0, 0, NULL, NULL, 0, NULL) == 0);
	/* Removed by hand while its fd is cached, then CREATEd: the new (empty) file is read. */
	{
		char path[PATH_MAX];

		CHECK(put("fh", 0, "gggg") == 0);
		CHECK(get("fh", b) == 4);
		snprintf(path, sizeof(path), "%s/fh", store);
		CHECK(unlink(path) == 0);
		CHECK(req(X_CREATE, "fh", 0, 0, NULL, NULL, 0, NULL) == 0);
		CHECKF(get("fh", b) == 0, "read of a CREATEd object gave the removed file's bytes");
		CHECK(req(X_DELETE, "fh", 0, 0, NULL, NULL, 0, NULL) == 0);
		/* The same with a COPY to the removed name (a new name to filed). */
		CHECK(put("fz", 0, "zz") == 0 && put("fk", 0, "kkkk") == 0);
		CHECK(get("fk", b) == 4);
		snprintf(path, sizeof(path), "%s/fk", store);
		CHECK(unlink(path) == 0);
		CHECK(req(X_COPY, "fk", 0, 2, "fz", NULL, 0, NULL) == 0);
		CHECKF(get("fk", b) == 2 && !memcmp(b, "zz", 2), "read of a COPY's new object gave the removed file's bytes");
		CHECK(req(X_DELETE, "fk", 0, 0, NULL, NULL, 0, NULL) == 0);
		CHECK(req(X_DELETE, "fz", 0, 0, NULL, NULL, 0, NULL) == 0);
	}
}

/*
 * On tmpfs: 100 READ/WRITE of one object are one open (counted by filed at
 * exit, -v: "fd cache: H hits, M misses"; on the dispatch thread also the
 * 200 reads of fd_cache_many's 100 objects), on the dispatch thread and on
 * the I/O pool (--no-inline: its 8 threads, each its own cache, so the
 * first request of each misses: at most 8 of 100); with --no-fd-cache none
 * is kept.
 */
static const char *hits_dir;

/* Write objects PREFIX000.. (@n of them, 8 bytes each), then read them back @passes - 1 times. */
static void write_read_objects(char prefix, int n, int passes)
{
	char name[16], in[16] = "", out[8];

	for (int pass = 0; pass < passes; pass++)
		for (int i = 0; i < n; i++) {
			struct tp_req q = { .op = pass ? X_READ : X_WRITE, .target = name, .size = 8, .in = in,
					    .in_len = pass ? 0 : 8, .buf_len = 8, .out = out, .out_len = 8 };

			snprintf(name, sizeof(name), "%c%03d", prefix, i);
			snprintf(in, sizeof(in), "%c%05d", prefix, i);
			CHECK(tp_do(xs, me, 2, &q) == 0 && q.serviced == 8);
			CHECKF(!pass || !memcmp(out, in, 7), "%s read back '%.7s'", name, out);
		}
}

/*
 * On filed at port 2 (the dispatch thread's cache): 100 objects written,
 * then each read twice: every read is a hit (any 128 objects stay open
 * together; test_fd_cache_hits counts the hits); then 300 objects, more
 * than the cache holds, written and read back: each read gets its own
 * object's bytes whatever was closed to make room.
 */
static void fd_cache_many(void)
{
	write_read_objects('m', 100, 3);
	write_read_objects('e', 300, 2);
}

/*
 * CREATEs of other objects between reads of 100 objects written before do
 * not close them: a CREATE makes stale only the cached fds of names in its
 * bucket of the names' generations (1 of 1024), so most of the 100 reads
 * still hit (test_fd_cache_hits: at least 80 of them; the objects are
 * written again first, 100 misses). (Each CREATE
 * dropped the whole cache before: every read missed.)
 */
static void fd_cache_creates(void)
{
	char name[16], out[8];

	write_read_objects('m', 100, 1);	/* open again (fd_cache_many's 'e' objects pushed them out) */
	for (int i = 0; i < 100; i++) {
		struct tp_req c = { .op = X_CREATE, .target = name, .size = 0 };
		struct tp_req r = { .op = X_READ, .target = name, .size = 8, .buf_len = 8, .out = out, .out_len = 8 };

		snprintf(name, sizeof(name), "n%03d", i);
		CHECK(tp_do(xs, me, 2, &c) == 0);
		snprintf(name, sizeof(name), "m%03d", i);
		CHECK(tp_do(xs, me, 2, &r) == 0 && r.serviced == 8 && !memcmp(out, "m", 1));
	}
}

static void test_fd_cache_hits(void)
{
	const char *dir = hits_dir;
	char sub[PATH_MAX], log[PATH_MAX], ports[16], *text;
	uint64_t hits, len;
	const char *p;

	/* k = 0: the dispatch thread's cache; 1: --no-fd-cache; 2: the I/O pool's (--no-inline). */
	for (int k = 0; k < 3; k++) {
		const char *args[] = { "-v", "-g", spec, "-p", ports, "--dir", sub,
				       k == 1 ? "--no-fd-cache" : k == 2 ? "--no-inline" : NULL, NULL };
		int saved = dup(2), fd;
		pid_t pid;

		snprintf(sub, sizeof(sub), "%s-hits%d", dir, k);
		snprintf(log, sizeof(log), "%s", tp_path(k == 1 ? "filed-nocache.log" : k ? "filed-pool.log" : "filed-cache.log"));
		snprintf(ports, sizeof(ports), "%u", 2u);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
		close(fd);
		pid = tp_start("filed", args);
		CHECK(dup2(saved, 2) == 2);
		close(saved);
		tp_wait_bound(xs, 2, pid);
		for (int i = 0; i < 50; i++) {
			struct tp_req w = { .op = X_WRITE, .target = "obj", .offset = (uint64_t)i * 8, .size = 8,
					    .in = "01234567", .in_len = 8, .buf_len = 8 };
			struct tp_req r = { .op = X_READ, .target = "obj", .offset = 0, .size = 8, .buf_len = 8 };

			CHECK(tp_do(xs, me, 2, &w) == 0);
			CHECK(tp_do(xs, me, 2, &r) == 0 && r.serviced == 8);
		}
		if (k == 0) {
			fd_cache_many();
			fd_cache_creates();
		}
		CHECK(tp_stop(pid) == 0);
		text = (char *)tp_slurp(log, &len);
		CHECK(text);
		text[len] = 0;	/* tp_slurp leaves room for it */
		p = strstr(text, "fd cache: ");
		if (k == 1) {
			CHECKF(!p, "--no-fd-cache logged a cache:\n%s", text);
		} else {
			CHECKF(p, "no 'fd cache:' line in filed's log:\n%s", text);
			hits = strtoull(p + strlen("fd cache: "), NULL, 10);
			CHECKF(hits >= (k ? 92u : 99u + 200u + 80u), "%" PRIu64 " hits of 100 requests on one object%s",
			       hits, k ? " (I/O pool)" : " and 300 reads of 100 objects written before, 100 of them "
				     "after CREATEs of others (the dispatch thread)");
		}
		free(text);
	}
}

/* Names in the test's temp dir (outside the store). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	CHECK(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_names(void)
{
	const char *bad[] = { "../x", "a/b", ".", "..", "/etc/passwd", "x\ny", "tab\there", "del\x7f",
			      "../../tmp/escape", "a/" };
	const uint32_t ops[] = { X_WRITE, X_CREATE, X_READ, X_INFO, X_DELETE, X_TRUNCATE, X_HASH,
				 X_ACQUIRE, X_COPY, X_RENAME };
	int outside = count_entries(tp_path("")), inside = count_entries(store);
	char h[64], longname[XSEG_TARGET_MAX + 1];
	struct tp_req r256 = { .op = X_WRITE, .target = longname, .size = 1, .in = "x", .in_len = 1 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			CHECKF(req(ops[k], bad[i], 0, 1, "x", h, 64, NULL) == EINVAL, "op %s name '%s'",
			       xseg_op_name(ops[k]), bad[i]);
	/* Empty. */
	CHECK(req(X_WRITE, "", 0, 1, "x", NULL, 0, NULL) == EINVAL);
	CHECK(req(X_INFO, "", 0, 8, NULL, h, 8, NULL) == EINVAL);
	/* A NUL inside the name. */
	{
		struct tp_req r = { .op = X_WRITE, .target = "ab\0cd", .target_len = 5, .size = 1, .in = "x",
				    .in_len = 1 };

		CHECK(tp_do(xs, me, 1, &r) == EINVAL);
	}
	/*
	 * The longest name a directory holds (255) is fine; 256 (XSEG_TARGET_MAX)
	 * and a target_len beyond what a request holds (a hostile client) are not.
	 */
	memset(longname, 'n', XSEG_TARGET_MAX);
	longname[XSEG_TARGET_MAX] = 0;
	CHECK(tp_do(xs, me, 1, &r256) == EINVAL);
	longname[NAME_MAX] = 0;
	CHECK(put(longname, 0, "long") == 0);
	CHECK(size_of(longname) == 4);
	{
		struct tp_req r = { .op = X_WRITE, .target = "x", .size = 1, .in = "x", .in_len = 1,
				    .force = 1, .force_tlen = XSEG_TARGET_MAX + 1 };

		CHECK(tp_do(xs, me, 1, &r) == EINVAL);
		r.force_tlen = 0xFFFFFFFFu;
		CHECK(tp_do(xs, me, 1, &r) == EINVAL);
	}
	CHECK(count_entries(tp_path("")) == outside);
	CHECK(count_entries(store) == inside + 1);		/* only the long name */
	CHECK(req(X_DELETE, longname, 0, 0, NULL, NULL, 0, NULL) == 0);
	/* A symlink planted in the store is not followed. */
	{
		char link[512], target[512];
		uint64_t len;
		char *c;
		int fd;

		snprintf(target, sizeof(target), "%s", tp_path("outside.txt"));
		fd = open(target, O_CREAT | O_WRONLY, 0644);
		CHECK(fd >= 0 && write(fd, "secret", 6) == 6);
		close(fd);
		snprintf(link, sizeof(link), "%s/link", store);
		CHECK(symlink(target, link) == 0);
		CHECK(req(X_READ, "link", 0, 6, NULL, h, 6, NULL) == EINVAL);
		CHECK(put("link", 0, "overwritten") == EINVAL);
		CHECK(req(X_TRUNCATE, "link", 0, 0, NULL, NULL, 0, NULL) == EINVAL);
		CHECK(req(X_DELETE, "link", 0, 0, NULL, NULL, 0, NULL) == EINVAL);
		c = (char *)tp_slurp(target, &len);
		CHECK(len == 6 && !memcmp(c, "secret", 6));
		free(c);
		unlink(link);
	}
}

struct worker {
	uint32_t id, port;
	int errors;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint32_t port = w->port;
	char name[32], data[256], back[256];

	for (int i = 0; i < 100; i++) {
		struct tp_req r = { .op = X_WRITE, .target = name, .offset = (uint64_t)i * 256, .size = 256,
				    .in = data, .in_len = 256 };

		snprintf(name, sizeof(name), "w%u-%d", w->id, i % 10);
		memset(data, 'A' + (int)w->id, sizeof(data));
		data[0] = (char)i;
		if (tp_do(xs, (uint32_t)port, 1, &r))
			w->errors++;
		r = (struct tp_req){ .op = X_READ, .target = name, .offset = (uint64_t)i * 256, .size = 256,
				     .buf_len = 256, .out = back, .out_len = 256 };
		if (tp_do(xs, (uint32_t)port, 1, &r) || r.serviced != 256 || memcmp(back, data, 256))
			w->errors++;
	}
	return NULL;
}

static void test_concurrent(void)
{
	enum { T = 4 };
	pthread_t th[T];
	struct worker w[T];

	for (uint32_t i = 0; i < T; i++) {
		int port = xseg_bind_port(xs, XSEG_ANY_PORT, 0);	/* here: binds are not thread-safe */

		CHECK(port >= 0);
		w[i] = (struct worker){ .id = i, .port = (uint32_t)port };
		CHECK(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
	}
	for (uint32_t i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK(xseg_leave_port(xs, w[i].port) == 0);
		CHECKF(!w[i].errors, "worker %u: %d errors", i, w[i].errors);
	}
	CHECK(size_of("w3-9") == 100 * 256);
}

/* The whole test on a fresh directory @dir, with filed's extra argument @arg (or NULL). */
static void run_store(const char *dir, const char *arg)
{
	pid_t pid, second;
	char leftover[512];
	int fd;

	store = dir;
	extra = arg;
	printf("# filed on %s%s%s\n", store, arg ? " " : "", arg ? arg : "");
	/* A temporary file a crashed filed left behind: removed at start. */
	CHECK(mkdir(store, 0755) == 0);
	snprintf(leftover, sizeof(leftover), "%s/\001copy.1.1", store);
	fd = open(leftover, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0);
	close(fd);
	pid = filed_pid = start_filed(1);
	CHECK(access(leftover, F_OK) != 0);
	RUN(test_objects);
	RUN(test_copy_rename);
	RUN(test_names);
	RUN(test_concurrent);
	RUN(test_fd_cache);
	/* The object store conformance suite (test/peers/objects.h), as radosd runs it. */
	os_xs = xs;
	os_me = me;
	os_dst = 1;
	os_restart = restart_filed;
	os_suite();
	pid = filed_pid;
	/* A second filed on the same directory is refused; bad usage exits 2. */
	{
		const char *args[] = { "-q", "-g", spec, "-p", "2", "--dir", store, NULL };
		const char *nodir[] = { "-g", spec, NULL };

		second = tp_start("filed", args);
		CHECK(tp_wait(second) == 1);
		CHECK(tp_wait(tp_start("filed", nodir)) == 2);
	}
	CHECK(tp_stop(pid) == 0);
}

static char shm_dir[64], disk_dir[PATH_MAX], pool_dir[PATH_MAX];

/* Remove our directory in /dev/shm (made by mkdtemp below, so provably ours). */
static void shm_cleanup(void)
{
	char cmd[128];

	if (shm_dir[0] && !strncmp(shm_dir, "/dev/shm/xseg-filed-", 20)) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", shm_dir);
		if (system(cmd)) { /* nothing more to do */ }
	}
}

int main(void)
{
	struct statfs sf;
	int fd;

	xt_watchdog(300);
	cfg = tx_create("posix:%s:16:256:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	fd = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(fd >= 0);
	me = (uint32_t)fd;
	/* In memory: READ and WRITE on filed's dispatch thread. */
	snprintf(shm_dir, sizeof(shm_dir), "/dev/shm/xseg-filed-XXXXXX");
	if (mkdtemp(shm_dir)) {
		static char dir[128];

		atexit(shm_cleanup);
		snprintf(dir, sizeof(dir), "%s/store", shm_dir);
		CHECK(statfs(shm_dir, &sf) == 0);
		if (sf.f_type != TMPFS_MAGIC)
			printf("# %s is not tmpfs: filed serves it as any file system\n", shm_dir);
		run_store(dir, NULL);
		hits_dir = dir;
		RUN(test_fd_cache_hits);
	} else {
		shm_dir[0] = 0;
		CHECKF(!getenv("CI") || strcmp(getenv("CI"), "true"), "no /dev/shm: %s", strerror(errno));
		printf("# no /dev/shm (%s): the in-memory run is skipped\n", strerror(errno));
	}
	/* A disk file system (or whatever /tmp is): cached reads inline. */
	snprintf(disk_dir, sizeof(disk_dir), "%s", tp_path("store"));
	run_store(disk_dir, NULL);
	/* Everything on the I/O pool. */
	snprintf(pool_dir, sizeof(pool_dir), "%s", tp_path("store-pool"));
	run_store(pool_dir, "--no-inline");
	xseg_leave(xs);
	return 0;
}
