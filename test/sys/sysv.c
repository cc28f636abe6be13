/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the sysv segment type against the real System V IPC and
 * util-linux's ipcs/ipcrm, across processes: a segment created by key shows
 * in `ipcs -m` with its mode and size, a forked peer shares its memory,
 * create is exclusive; a path name is the key ftok(path, 'x') gives; destroy
 * (xseg-tool destroy) frees the key at once while a joined peer keeps
 * working, and the memory goes when that peer exits; `ipcrm -M` removes one;
 * `xseg-tool config --set mode=0660` changes the IPC mode and the header
 * together; list shows ours only; another program's segment under a key is
 * never removed, changed or written (0600: checked read-only and refused
 * with -EBADMSG naming the key; 0666: refused without being attached).
 */
#include "segtest.h"
#include "sys/user/segtypes/segtype.h"
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include "xseg/xseg_layout.h"

#define NKEYS 16

static key_t keys[NKEYS];
static char tmpdir[64];
static char err[512];
static char out[8192];
static const struct xseg_segtype_ops *ops = &xseg_segtype_sysv;

/* Remove what this run created (creator pid: us) under its keys; the tmp dir. */
static void cleanup(void)
{
	struct shmid_ds ds;
	char path[128];

	if (getpid() != main_pid)
		return;
	for (int i = 0; i < NKEYS; i++) {
		int id = shmget(keys[i], 0, 0);

		if (id >= 0 && shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_cpid == main_pid)
			shmctl(id, IPC_RMID, NULL);
	}
	if (tmpdir[0]) {
		snprintf(path, sizeof(path), "%s/seg", tmpdir);
		for (int i = 0; i < 2; i++) {
			key_t k = ftok(path, 'x');
			int id = k == -1 ? -1 : shmget(k, 0, 0);

			if (id >= 0 && shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_cpid == main_pid)
				shmctl(id, IPC_RMID, NULL);
		}
	}
	remove_tree(tmpdir);
	remove_run_segments();
}

/* "0x%08x" of key @i of this run. */
static const char *kname(int i)
{
	static char buf[8][16];
	static unsigned int next;
	char *b = buf[next++ % 8];

	snprintf(b, 16, "0x%08x", (unsigned int)keys[i]);
	return b;
}

/* Run a shell command line; its output in out. Returns its exit code. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *f;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	CHECK(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The line of `ipcs -m` for key @k ("" if none). */
static const char *ipcs_line(key_t k)
{
	static char line[256];
	char want[16], *p, *nl;

	snprintf(want, sizeof(want), "0x%08x ", (unsigned int)k);
	line[0] = 0;
	CHECK(sh("ipcs -m") == 0);
	p = strstr(out, want);
	if (!p)
		return line;
	nl = strchr(p, '\n');
	snprintf(line, sizeof(line), "%.*s", nl ? (int)(nl - p) : (int)strlen(p), p);
	return line;
}

/* Is shmid @id in /proc/sysvipc/shm (even marked for removal)? */
static bool id_alive(int id)
{
	struct shmid_ds ds;

	return shmctl(id, IPC_STAT, &ds) == 0;
}

static void make_key_seg(int i)
{
	make_seg("sysv", kname(i));
}

static void test_names(void)
{
	static const char *const bad[] = { "0x0", "0x", "0x123456789", "abc", "0xzz", "12",
					   "0x-1" };
	char path[128];
	struct xseg_config cfg;
	void *mem;
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECKF(ops->create(bad[i], 16384, 0600, -1, &mem, err, sizeof(err)) == -EINVAL,
		       "%s", bad[i]);
		CHECKF(strstr(err, "named by a key"), "%s: %s", bad[i], err);
	}
	/* A path: the key ftok(path, 'x') gives, as ipcs shows it. */
	snprintf(path, sizeof(path), "%s/seg", tmpdir);
	CHECK(ops->create(path, 16384, 0600, -1, &mem, err, sizeof(err)) == -ENOENT);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(out, sizeof(out), "sysv:%s:4:16:4K", path);
	CHECKF(xseg_parse_spec(out, &cfg, err, sizeof(err)) == 0, "%s", err);
	CHECKF(xseg_create(&cfg, err, sizeof(err)) == 0, "%s", err);
	CHECKF(strstr(ipcs_line(ftok(path, 'x')), " 600 "), "%s", ipcs_line(ftok(path, 'x')));
	CHECKF(xseg_destroy_name_err("sysv", path, err, sizeof(err)) == 0, "%s", err);
	CHECK(!ipcs_line(ftok(path, 'x'))[0]);
}

static void test_shared(void)
{
	uint64_t size;
	void *mem;
	unsigned char *p;
	pid_t pid;

	make_key_seg(0);
	CHECKF(strstr(ipcs_line(keys[0]), " 600 "), "ipcs: '%s'", ipcs_line(keys[0]));
	CHECK(ops->create(kname(0), 16384, 0600, -1, &mem, err, sizeof(err)) == -EEXIST);
	CHECKF(strstr(err, kname(0)) || strstr(err, "already exists"), "%s", err);
	CHECKF(ops->map(kname(0), &mem, &size, err, sizeof(err)) == 0, "%s", err);
	p = mem;
	pid = xt_fork();
	if (pid == 0) {
		void *m;
		uint64_t s;

		if (ops->map(kname(0), &m, &s, err, sizeof(err)) || s != size)
			_exit(2);
		((unsigned char *)m)[s - 1] = 0x5a;
		ops->unmap(m, s);
		_exit(0);
	}
	CHECK(child_status(pid) == 0);
	CHECK(p[size - 1] == 0x5a);
	{
		char want[32];

		snprintf(want, sizeof(want), " %llu ", (unsigned long long)size);
		CHECKF(strstr(ipcs_line(keys[0]), want), "ipcs: '%s', size %llu",
		       ipcs_line(keys[0]), (unsigned long long)size);
	}
	ops->unmap(mem, size);
}

/* Destroy frees the key; a joined peer keeps the memory until it leaves. */
static void test_destroy_last_detach(void)
{
	int ready[2], go[2], id, e;
	struct xseg *xs;
	char c;
	pid_t pid;

	make_key_seg(1);
	id = shmget(keys[1], 0, 0);
	CHECK(id >= 0);
	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	pid = xt_fork();
	if (pid == 0) {
		struct xseg *j = xseg_join("sysv", kname(1), "posix", NULL, NULL, &e, err,
					   sizeof(err));
		unsigned char *b;

		if (!j)
			_exit(2);
		b = xseg_base(j);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		/* Destroyed: still our memory, marked, and writable. */
		if (!(xseg_header(j)->flags & XSEG_F_DESTROYED))
			_exit(4);
		b[xseg_size(j) - 1] = 7;
		if (b[xseg_size(j) - 1] != 7)
			_exit(5);
		xseg_leave(j);
		_exit(0);
	}
	CHECK(read(ready[0], &c, 1) == 1);
	segtest_find_tool();
	{
		char spec[64];

		snprintf(spec, sizeof(spec), "sysv:%s", kname(1));
		CHECKF(run_tool(false, out, sizeof(out), "destroy", spec, NULL, NULL) == 0, "%s",
		       out);
	}
	CHECKF(!ipcs_line(keys[1])[0], "still listed under its key: %s", ipcs_line(keys[1]));
	CHECK(id_alive(id));		/* marked, held by the peer */
	CHECK(sh("ipcs -m -i %d", id) == 0);
	CHECKF(strstr(out, "mode=01600"), "ipcs -m -i (SHM_DEST, 01000, is set): %s", out);
	{
		struct shmid_ds ds;

		CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST) &&
		      ds.shm_nattch == 1);
	}
	xs = xseg_join("sysv", kname(1), "posix", NULL, NULL, &e, err, sizeof(err));
	CHECK(!xs && e == -ENOENT);
	CHECK(write(go[1], "g", 1) == 1);
	CHECK(child_status(pid) == 0);
	CHECK(!id_alive(id));		/* the last peer detached: gone */
	close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
}

static void test_ipcrm(void)
{
	void *mem;
	uint64_t size;

	make_key_seg(2);
	CHECK(ipcs_line(keys[2])[0]);
	CHECKF(sh("ipcrm -M %s 2>&1", kname(2)) == 0, "%s", out);
	CHECK(!ipcs_line(keys[2])[0]);
	CHECK(ops->map(kname(2), &mem, &size, err, sizeof(err)) == -ENOENT);
	CHECKF(strstr(err, "does not exist"), "%s", err);
}

static void test_owner_mode(void)
{
	uint32_t uid, gid, mode;
	struct xseg *xs;
	int e;

	make_key_seg(3);
	segtest_find_tool();
	{
		char spec[64];

		snprintf(spec, sizeof(spec), "sysv:%s", kname(3));
		CHECKF(run_tool(false, out, sizeof(out), "config", spec, "--set", "mode=0660") == 0,
		       "%s", out);
	}
	CHECKF(strstr(ipcs_line(keys[3]), " 660 "), "%s", ipcs_line(keys[3]));
	CHECK(xseg_real_owner("sysv", kname(3), &uid, &gid, &mode) == 0);
	CHECK(mode == 0660 && uid == geteuid());
	xs = xseg_join("sysv", kname(3), "posix", NULL, NULL, &e, err, sizeof(err));
	CHECKF(xs, "%s", err);
	CHECK(xseg_header(xs)->mode == 0660 && xseg_header(xs)->uid == geteuid());
	xseg_leave(xs);
	/* A mode beyond 0770 is refused before anything changes. */
	CHECK(xseg_set_owner_mode("sysv", kname(3), (uint32_t)-1, (uint32_t)-1, 0666, err,
				  sizeof(err)) == -EINVAL);
	CHECK(strstr(ipcs_line(keys[3]), " 660 "));
}

struct seen { const char *name; int found; };

static void list_cb(void *arg, const char *name)
{
	struct seen *s = arg;

	if (!strcmp(name, s->name))
		s->found++;
}

static int listed(const char *name)
{
	struct seen s = { name, 0 };

	CHECK(ops->list(list_cb, &s) >= 0);
	return s.found;
}

/* Another program's segments under a key: never written, changed or removed. */
static void test_foreign(void)
{
	struct shmid_ds ds;
	unsigned char *p, *q;
	struct xseg *xs;
	void *mem;
	uint64_t size;
	int id, id2, e;

	id = shmget(keys[4], 16384, IPC_CREAT | IPC_EXCL | 0600);
	CHECK(id >= 0);
	p = shmat(id, NULL, 0);
	CHECK(p != (void *)-1);
	memset(p, 0xa5, 16384);
	CHECK(!listed(kname(4)));
	err[0] = 0;
	CHECK(xseg_destroy_name_err("sysv", kname(4), err, sizeof(err)) == -EBADMSG);
	CHECKF(strstr(err, kname(4)) && strstr(err, "not removed"), "%s", err);
	CHECK(xseg_set_owner_mode("sysv", kname(4), (uint32_t)-1, (uint32_t)-1, 0660, err,
				  sizeof(err)) == -EBADMSG);
	CHECKF(strstr(err, "not changed"), "%s", err);
	xs = xseg_join("sysv", kname(4), "posix", NULL, NULL, &e, err, sizeof(err));
	CHECK(!xs && e == -EBADMSG);
	CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0600);
	CHECK(shmget(keys[4], 0, 0) == id);
	for (int i = 0; i < 16384; i++)
		CHECKF(p[i] == 0xa5, "byte %d changed to %#x", i, p[i]);
	CHECK(ds.shm_nattch == 1);		/* only our own attach is left */
	shmdt(p);

	/* World-accessible: refused before anything attaches it. */
	id2 = shmget(keys[5], 16384, IPC_CREAT | IPC_EXCL | 0666);
	CHECK(id2 >= 0);
	CHECK(xseg_destroy_name_err("sysv", kname(5), err, sizeof(err)) == -EPERM);
	CHECKF(strstr(err, kname(5)) && strstr(err, "others"), "%s", err);
	CHECK(ops->map(kname(5), &mem, &size, err, sizeof(err)) == -EPERM);
	CHECK(shmctl(id2, IPC_STAT, &ds) == 0 && ds.shm_atime == 0 && ds.shm_nattch == 0);
	/* ipcrm is how its owner removes it. */
	CHECK(sh("ipcrm -m %d 2>&1", id2) == 0);
	CHECK(sh("ipcrm -m %d 2>&1", id) == 0);
	(void)q;
}

static void test_list(void)
{
	make_key_seg(6);
	CHECK(listed(kname(6)) == 1);
	CHECK(xseg_destroy_name_err("sysv", kname(6), err, sizeof(err)) == 0);
	CHECK(!listed(kname(6)));
	segtest_find_tool();
	make_key_seg(7);
	CHECK(run_tool(false, out, sizeof(out), "list", "sysv", NULL, NULL) == 0);
	CHECKF(strstr(out, kname(7)), "%s", out);
}

int main(void)
{
	unsigned int base;

	xt_watchdog(120);
	segtest_start();
	if (access("/usr/bin/ipcs", X_OK) && access("/bin/ipcs", X_OK))
		segtest_need(false, "ipcs and ipcrm (util-linux) are not installed");
	base = 0x5e000000u | ((xt_nonce() & 0xfffffu) << 4);	/* not the pid: see xt_nonce */
	for (int i = 0; i < NKEYS; i++)
		keys[i] = (key_t)(base + (unsigned int)i);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xseg-sysv.XXXXXX");
	CHECK(mkdtemp(tmpdir));
	atexit(cleanup);
	RUN(test_names);
	RUN(test_shared);
	RUN(test_destroy_last_detach);
	RUN(test_ipcrm);
	RUN(test_owner_mode);
	RUN(test_foreign);
	RUN(test_list);
	return 0;
}
