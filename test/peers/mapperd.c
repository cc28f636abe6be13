/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: mapperd over filed, both as child processes on one segment:
 * every management op (CREATE, SNAPSHOT, CLONE, UPDATE, DELETE, INFO with
 * XV_INFO_KEYS, .list) and its errors with their messages; MAPR/MAPW/DISCARD
 * (holes, writable, shared, copy-on-write keeps the snapshot's bytes, discard
 * frees only what the volume owns, EROFS on snapshots, ranges past the end);
 * OPEN/CLOSE (exclusive, the holder named, shared read-only snapshots, a dead
 * owner's lock broken, force=1; a storage peer answering the lock op with
 * EPERM is reported as that, never as "open by"); one COPY for many concurrent MAPW of one
 * object; a corrupted map entry, header or registry record gives EIO naming
 * it and nothing else is lost; and mapperd SIGKILLed >= 50 times during
 * MAPW/snapshot/clone streams: every acknowledged change is there after each
 * restart, snapshots never change, and fsck finds exactly the objects no map
 * names (checked against the store's directory) and removes them.
 */
#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include "peers.h"
#include "../../peers/user/xclient.h"
#include "../../peers/user/xvformat.h"

static struct xseg_config cfg;
static char spec[512];
static struct xseg *xs;
static uint32_t me;
static const char *store;
static pid_t filed_pid, mapperd_pid;
static const char *filed_log;

#define FILED 1
#define MAPPERD 2

/* mapperd, quiet; or with option @opt (--cache, --cache-mb) set to @val and its log (-v) in @log. */
static pid_t start_mapperd_with(const char *opt, const char *val, const char *log)
{
	const char *args[] = { "-q", "-g", spec, "-p", "2", "--storage", "1", NULL, NULL, NULL };
	int saved = -1;
	pid_t pid;

	if (opt) {
		args[0] = "-v";
		args[7] = opt;
		args[8] = val;
		saved = dup(2);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		CHECK(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
		close(fd);
	}
	pid = tp_start("mapperd", args);
	if (saved >= 0) {
		CHECK(dup2(saved, 2) == 2);
		close(saved);
	}
	tp_wait_bound(xs, MAPPERD, pid);
	return pid;
}

static pid_t start_mapperd(void)
{
	return start_mapperd_with(NULL, NULL, NULL);
}

static void restart_mapperd(void)
{
	CHECK(tp_stop(mapperd_pid) == 0);
	mapperd_pid = start_mapperd();
}

/* A request to @port; @text as data; the reply's data in @out (NUL-terminated), its error returned. */
static int call(uint32_t port, uint32_t op, const char *target, uint64_t off, uint64_t size, const char *text,
		char *out, size_t out_len)
{
	char buf[8192];
	struct tp_req r = { .op = op, .target = target, .offset = off, .size = size, .in = text,
			    .in_len = text ? strlen(text) : 0, .buf_len = sizeof(buf) - 1, .out = buf,
			    .out_len = sizeof(buf) - 1 };

	if (text && !size)
		r.size = strlen(text);
	tp_do(xs, me, port, &r);
	if (out) {
		size_t n = r.serviced < out_len - 1 ? (size_t)r.serviced : out_len - 1;

		memcpy(out, buf, n);
		out[n] = 0;
	}
	return r.error;
}

/* A management request to mapperd; the reply's text (or failure message) in a static buffer. */
static char reply[8192];
static int mg(uint32_t op, const char *target, const char *text)
{
	return call(MAPPERD, op, target, 0, 0, text, reply, sizeof(reply));
}

#define MG(op, target, text, err) do { \
	int e_ = mg(op, target, text); \
	CHECKF(e_ == (err), "%s %s: %s (expected %s): '%s'", xseg_op_name(op), target, strerror(e_), \
	       strerror(err), reply); \
	} while (0)

/* The reply text contains @s. */
#define SAYS(s) CHECKF(strstr(reply, s), "'%s' does not say '%s'", reply, s)

/* A map op: the entries of [off, off+size) into @e (at most @max). Returns the error. */
static int mapop(uint32_t op, const char *target, uint64_t off, uint64_t size, struct xv_map_entry *e, uint32_t max,
		 uint32_t *count)
{
	uint8_t buf[8192];
	struct xv_map_reply *rep = (struct xv_map_reply *)buf;
	struct tp_req r = { .op = op, .target = target, .offset = off, .size = size, .buf_len = sizeof(buf),
			    .out = buf, .out_len = sizeof(buf) };

	tp_do(xs, me, MAPPERD, &r);
	if (r.error) {
		size_t n = r.serviced < sizeof(reply) - 1 ? (size_t)r.serviced : sizeof(reply) - 1;

		memcpy(reply, buf, n);
		reply[n] = 0;
		return r.error;
	}
	CHECK(rep->magic == XV_MAP_MAGIC);
	CHECK(r.serviced == sizeof(*rep) + rep->count * sizeof(struct xv_map_entry));
	if (count)
		*count = rep->count;
	for (uint32_t i = 0; i < rep->count && i < max; i++)
		e[i] = rep->entry[i];
	return 0;
}

/* The map entry of object @i of @target. */
static struct xv_map_entry entry_of(const char *target, uint32_t osz, uint64_t i)
{
	struct xv_map_entry e;
	uint32_t n = 0;
	int r = mapop(X_MAPR, target, i * osz, 1, &e, 1, &n);

	CHECKF(r == 0 && n == 1, "MAPR %s object %" PRIu64 ": %s '%s'", target, i, strerror(r), reply);
	return e;
}

/* Path of a store object. */
static const char *obj_path(const char *name)
{
	static char b[4][PATH_MAX];
	static int k;
	char *p = b[k++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", store, name);
	return p;
}

static const char *data_path(uint64_t owner, uint64_t i)
{
	char n[64];

	xv_data_name(n, sizeof(n), owner, i);
	return obj_path(n);
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Write @s at offset 0 of data object (@owner, @i) through filed, as vlmcd would. */
static void put_data(uint64_t owner, uint64_t i, const char *s)
{
	char n[64];

	xv_data_name(n, sizeof(n), owner, i);
	CHECK(call(FILED, X_WRITE, n, 0, strlen(s), s, NULL, 0) == 0);
}

static int data_is(uint64_t owner, uint64_t i, const char *s)
{
	char n[64], got[128];
	int r;

	xv_data_name(n, sizeof(n), owner, i);
	r = call(FILED, X_READ, n, 0, strlen(s), NULL, got, sizeof(got));
	return r == 0 && !memcmp(got, s, strlen(s));
}

/* The value of @key in INFO @target. */
static uint64_t info_u64(const char *target, const char *key)
{
	char k[64], *p;

	MG(X_INFO, target, NULL, 0);
	snprintf(k, sizeof(k), "\n%s=", key);
	p = strstr(reply, k);
	CHECKF(p, "INFO %s has no %s: '%s'", target, key, reply);
	return strtoull(p + strlen(k), NULL, 10);
}

static void test_manage(void)
{
	char keys[256], *tok, *save, *p;

	/* CREATE and its errors. */
	MG(X_CREATE, "vol1", "size=10M\nobject_size=1M\n", 0);
	MG(X_CREATE, "vol1", "size=10M\n", EEXIST);
	SAYS("vol1 exists");
	MG(X_CREATE, "../x", "size=1M\n", EINVAL);
	SAYS("'../x' is not a volume or snapshot name");
	MG(X_CREATE, ".hidden", "size=1M\n", EINVAL);
	MG(X_CREATE, "a@b", "size=1M\n", EINVAL);
	SAYS("CREATE takes a volume name");
	MG(X_CREATE, "vol2", "size=1M\ncolour=blue\n", EINVAL);
	SAYS("unknown key 'colour'");
	MG(X_CREATE, "vol2", "", EINVAL);
	SAYS("needs size=");
	MG(X_CREATE, "vol2", "size=lots\n", EINVAL);
	SAYS("size=lots is not a size");
	MG(X_CREATE, "vol2", "size=1M\nobject_size=1000\n", EINVAL);
	SAYS("object_size=1000 is not a power of two");
	MG(X_CREATE, "vol2", "size 1M\n", EINVAL);
	SAYS("is not a key=value line");
	MG(X_INFO, "vol2", NULL, ENOENT);
	SAYS("no volume or snapshot named vol2");
	/* INFO: the keys of XV_INFO_KEYS, in order. */
	MG(X_INFO, "vol1", NULL, 0);
	snprintf(keys, sizeof(keys), "%s", XV_INFO_KEYS);
	p = reply;
	for (tok = strtok_r(keys, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		size_t n = strlen(tok);

		CHECKF(!strncmp(p, tok, n) && p[n] == '=', "INFO: expected key %s at '%.40s'", tok, p);
		p = strchr(p, '\n');
		CHECK(p);
		p++;
	}
	CHECK(*p == 0);
	SAYS("name=vol1\nkind=volume\nsize=10485760\nobject_size=1048576\nparent=-\n");
	SAYS("objects=0\nbytes=0\nopen_by=-\n");
	/* UPDATE: grow only. */
	MG(X_UPDATE, "vol1", "size=12M\n", 0);
	CHECK(info_u64("vol1", "size") == 12u << 20);
	MG(X_UPDATE, "vol1", "size=11M\n", EINVAL);
	SAYS("only grow");
	MG(X_UPDATE, "nothere", "size=11M\n", ENOENT);
	/* SNAPSHOT. */
	MG(X_SNAPSHOT, "vol1", "name=s1\n", 0);
	MG(X_SNAPSHOT, "vol1", "name=s1\n", EEXIST);
	SAYS("vol1@s1 exists");
	MG(X_SNAPSHOT, "vol1", "name=-bad\n", EINVAL);
	SAYS("snapshot name '-bad' is not a valid name");
	MG(X_SNAPSHOT, "vol1@s1", "name=s2\n", EINVAL);
	MG(X_SNAPSHOT, "vol1@nope", "name=s2\n", ENOENT);
	MG(X_UPDATE, "vol1@s1", "size=20M\n", EROFS);
	MG(X_INFO, "vol1@s1", NULL, 0);
	SAYS("name=vol1@s1\nkind=snapshot\nsize=12582912\nobject_size=1048576\nparent=vol1\n");
	MG(X_INFO, "vol1", NULL, 0);
	SAYS("snapshots=vol1@s1\n");
	/* CLONE: of snapshots only, grow only. */
	MG(X_CLONE, "vol1@s1", "name=c1\n", 0);
	MG(X_CLONE, "vol1@s1", "name=c1\n", EEXIST);
	MG(X_CLONE, "vol1", "name=c2\n", EINVAL);
	SAYS("CLONE takes a snapshot");
	MG(X_CLONE, "vol1@s1", "name=c2\nsize=1M\n", EINVAL);
	SAYS("clones only grow");
	MG(X_CLONE, "vol1@s1", "name=c2\nsize=20M\n", 0);
	CHECK(info_u64("c2", "size") == 20u << 20);
	MG(X_INFO, "c1", NULL, 0);
	SAYS("kind=volume\nsize=12582912\nobject_size=1048576\nparent=vol1@s1\n");
	MG(X_INFO, "vol1@s1", NULL, 0);
	SAYS("clones=c1,c2\n");
	/* .list */
	MG(X_INFO, XV_T_LIST, NULL, 0);
	SAYS("vol1\tvolume\t12582912\t-\n");
	SAYS("vol1@s1\tsnapshot\t12582912\tvol1\n");
	SAYS("c1\tvolume\t12582912\tvol1@s1\n");
	SAYS("c2\tvolume\t20971520\tvol1@s1\n");
	/* DELETE: refused while clones depend on it or snapshots exist, naming them. */
	MG(X_DELETE, "vol1@s1", NULL, EBUSY);
	SAYS("vol1@s1 has clones that depend on it: c1,c2");
	MG(X_DELETE, "vol1", NULL, EBUSY);
	SAYS("vol1 has snapshots: vol1@s1");
	MG(X_DELETE, "c1", NULL, 0);
	MG(X_DELETE, "c2", NULL, 0);
	MG(X_DELETE, "c2", NULL, ENOENT);
	MG(X_DELETE, "vol1@s1", NULL, 0);
	MG(X_DELETE, "vol1", NULL, 0);
	MG(X_INFO, "vol1", NULL, ENOENT);
	MG(X_INFO, XV_T_LIST, NULL, 0);
	CHECKF(reply[0] == 0, "list after deleting everything: '%s'", reply);
	/* Unknown ops. */
	MG(X_COPY, "vol1", NULL, EOPNOTSUPP);
	/* The names survive a restart; a fresh store has nothing left. */
	MG(X_CREATE, "keep", "size=1M\nobject_size=64K\n", 0);
	restart_mapperd();
	CHECK(info_u64("keep", "size") == 1u << 20);
	MG(X_DELETE, "keep", NULL, 0);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("objects=0\nnamed=0\nleaked=0\n");
	/* One mapperd per store: a second one is refused (exit 1); usage errors exit 2. */
	{
		const char *args[] = { "-q", "-g", spec, "-p", "3", "--storage", "1", NULL };
		const char *nostorage[] = { "-q", "-g", spec, "-p", "3", NULL };
		const char *badport[] = { "-q", "-g", spec, "-p", "3", "--storage", "1K", NULL };

		pid_t second = tp_start("mapperd", args);
		int st = -1;

		for (int i = 0; i < 2000 && waitpid(second, &st, WNOHANG) == 0; i++)	/* a hang guard */
			usleep(10000);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a second mapperd on the store was not refused");
		tp_forget(second);
		CHECK(tp_wait(tp_start("mapperd", nostorage)) == 2);
		CHECK(tp_wait(tp_start("mapperd", badport)) == 2);
	}
	MG(X_INFO, XV_T_LIST, NULL, 0);		/* the first one still serves */
}

static void test_map(void)
{
	struct xv_map_entry e[16];
	uint32_t n;
	uint64_t d0, d1;

	MG(X_CREATE, "m", "size=4M\nobject_size=1M\n", 0);
	/* Fresh: every object a hole; nothing stored. */
	CHECK(mapop(X_MAPR, "m", 0, 4 << 20, e, 16, &n) == 0 && n == 4);
	for (int i = 0; i < 4; i++)
		CHECK(e[i].owner == 0 && e[i].flags == XV_E_HOLE);
	CHECK(mapop(X_MAPR, "m", 1, 0, e, 16, &n) == 0 && n == 0);
	CHECK(mapop(X_MAPR, "m", 4 << 20, 1, e, 16, &n) == EINVAL);
	SAYS("past the end");
	CHECK(mapop(X_MAPW, "m", 3 << 20, (1 << 20) + 1, e, 16, &n) == EINVAL);
	CHECK(mapop(X_MAPR, "m@x", 0, 1, e, 16, &n) == ENOENT);
	CHECK(mapop(X_MAPR, "bad/name", 0, 1, e, 16, &n) == EINVAL);
	/* MAPW of bytes in objects 1 and 2: both get objects of the volume's data id. */
	CHECK(mapop(X_MAPW, "m", (1 << 20) + 5, 1 << 20, e, 16, &n) == 0 && n == 2);
	d0 = e[0].owner;
	CHECK(d0 && e[0].flags == XV_E_WRITABLE && e[1].owner == d0 && e[1].flags == XV_E_WRITABLE);
	CHECK(exists(data_path(d0, 1)) && exists(data_path(d0, 2)) && !exists(data_path(d0, 0)));
	CHECK(info_u64("m", "objects") == 2 && info_u64("m", "bytes") == 2u << 20);
	put_data(d0, 1, "one-before-snapshot");
	/* A second MAPW changes nothing. */
	CHECK(mapop(X_MAPW, "m", 1 << 20, 1, e, 16, &n) == 0 && n == 1 && e[0].owner == d0);
	/* Snapshot: every entry shared; the snapshot is read-only. */
	MG(X_SNAPSHOT, "m", "name=s\n", 0);
	CHECK(mapop(X_MAPR, "m", 0, 4 << 20, e, 16, &n) == 0 && n == 4);
	CHECK(e[0].flags == XV_E_HOLE && e[1].owner == d0 && e[1].flags == XV_E_SHARED);
	CHECK(mapop(X_MAPR, "m@s", 0, 4 << 20, e, 16, &n) == 0 && n == 4);
	CHECK(e[1].owner == d0 && e[1].flags == XV_E_SHARED && e[3].flags == XV_E_HOLE);
	CHECK(mapop(X_MAPW, "m@s", 0, 1, e, 16, &n) == EROFS);
	SAYS("m@s is a snapshot: read-only");
	CHECK(mapop(X_DISCARD, "m@s", 0, 1 << 20, e, 16, &n) == EROFS);
	/* Copy-on-write: the copy holds the snapshot's bytes; the snapshot keeps its object. */
	CHECK(mapop(X_MAPW, "m", 1 << 20, 10, e, 16, &n) == 0 && n == 1);
	d1 = e[0].owner;
	CHECK(d1 != d0 && e[0].flags == XV_E_WRITABLE);
	CHECK(data_is(d1, 1, "one-before-snapshot"));
	put_data(d1, 1, "one-after-snapshot!");
	CHECK(data_is(d0, 1, "one-before-snapshot"));
	CHECK(entry_of("m@s", 1 << 20, 1).owner == d0);
	/* DISCARD: only whole objects; the volume's own object is deleted, a shared one kept. */
	CHECK(mapop(X_DISCARD, "m", 1 << 20, (1 << 20) - 1, e, 16, &n) == 0 && n == 1 && e[0].owner == d1);
	CHECK(mapop(X_DISCARD, "m", 1 << 20, (1 << 20) + 5, e, 16, &n) == 0 && n == 2);
	CHECK(e[0].flags == XV_E_HOLE && e[1].owner == d0 && e[1].flags == XV_E_SHARED);
	CHECK(!exists(data_path(d1, 1)) && exists(data_path(d0, 1)) && exists(data_path(d0, 2)));
	CHECK(entry_of("m@s", 1 << 20, 2).owner == d0);
	/* DISCARD to the end covers the last (partial) object too. */
	MG(X_CREATE, "odd", "size=100K\nobject_size=64K\n", 0);
	CHECK(mapop(X_MAPW, "odd", 0, 100 << 10, e, 16, &n) == 0 && n == 2);
	CHECK(mapop(X_DISCARD, "odd", 64 << 10, 36 << 10, e, 16, &n) == 0 && e[0].flags == XV_E_HOLE);
	/* A clone shares every object of its snapshot and copies on its first write. */
	MG(X_CLONE, "m@s", "name=mc\n", 0);
	CHECK(entry_of("mc", 1 << 20, 2).owner == d0 && entry_of("mc", 1 << 20, 2).flags == XV_E_SHARED);
	CHECK(mapop(X_MAPW, "mc", 1 << 20, 1, e, 16, &n) == 0 && e[0].owner != d0 && e[0].owner != d1);
	CHECK(data_is(e[0].owner, 1, "one-before-snapshot"));
	/* Everything survives a restart. */
	restart_mapperd();
	CHECK(entry_of("m@s", 1 << 20, 1).owner == d0 && entry_of("m", 1 << 20, 1).flags == XV_E_HOLE);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("leaked=0\n");
	/* Growing adds holes. */
	MG(X_UPDATE, "m", "size=6M\n", 0);
	CHECK(mapop(X_MAPR, "m", 4 << 20, 2 << 20, e, 16, &n) == 0 && n == 2 && e[1].flags == XV_E_HOLE);
	CHECK(mapop(X_MAPW, "m", 5 << 20, 1, e, 16, &n) == 0 && e[0].flags == XV_E_WRITABLE);
	/* Deleting the snapshot's dependants, then it: its objects go. */
	MG(X_DELETE, "mc", NULL, 0);
	MG(X_DELETE, "m@s", NULL, 0);
	CHECK(!exists(data_path(d0, 1)));
	CHECK(exists(data_path(d0, 2)));	/* m still names object 2 */
	CHECK(entry_of("m", 1 << 20, 2).owner == d0);
	MG(X_DELETE, "m", NULL, 0);
	MG(X_DELETE, "odd", NULL, 0);
	CHECK(!exists(data_path(d0, 2)));
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("objects=0\nnamed=0\nleaked=0\n");
}

#include "mapperd-more.h"
#include "mapperd-fault.h"
#include "mapperd-list.h"

int main(void)
{
	int fd;

	xt_watchdog(600);
	cfg = tx_create("posix:%s:64:512:64K:0:12");
	xseg_format_spec(&cfg, spec, sizeof(spec));
	xs = tx_join(&cfg, "futex");
	fd = xseg_bind_port(xs, XSEG_ANY_PORT, 0);
	CHECK(fd >= 0);
	me = (uint32_t)fd;
	store = strdup(tp_path("store"));
	filed_log = strdup(tp_path("filed.log"));
	filed_pid = start_filed();
	mapperd_pid = start_mapperd();
	RUN(test_manage);
	RUN(test_map);
	RUN(test_open);
	RUN(test_lock_refused);
	RUN(test_one_copy);
	RUN(test_corrupt);
	RUN(test_cache);
	RUN(test_snapshot_fault);
	RUN(test_list_op);
	RUN(test_list_use);
	RUN(test_storage_down);
	RUN(test_crash);
	CHECK(tp_stop(mapperd_pid) == 0);
	CHECK(tp_stop(filed_pid) == 0);
	xseg_leave(xs);
	return 0;
}
