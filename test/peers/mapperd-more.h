/* SPDX-License-Identifier: BSD-2-Clause */
/* test/peers/mapperd-more.h - the rest of test/peers/mapperd.c (one program). */

/* filed with its log (-v -v: one line per COPY) in filed_log. */
static pid_t start_filed(void)
{
	const char *args[] = { "-v", "-v", "-g", spec, "-p", "1", "--dir", store, NULL };
	int saved = dup(2), fd = open(filed_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	pid_t pid;

	CHECK(saved >= 0 && fd >= 0);
	CHECK(dup2(fd, 2) == 2);
	pid = tp_start("filed", args);
	CHECK(dup2(saved, 2) == 2);
	close(fd);
	close(saved);
	tp_wait_bound(xs, FILED, pid);
	return pid;
}

/* OPEN @target with @text; the reply struct in *@o. */
/* A child that waits for its kill: its owner tag (xvf_owner_tag, as @who) in @tag. */
static pid_t tag_holder(const char *who, char *tag, size_t len)
{
	int pfd[2];
	pid_t child;

	CHECK(pipe(pfd) == 0);
	child = xt_fork();
	if (child == 0) {
		xvf_owner_tag(tag, len, who);
		if (write(pfd[1], tag, strlen(tag) + 1) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	CHECK(read(pfd[0], tag, len) > 0);
	close(pfd[0]);
	close(pfd[1]);
	return child;
}

static int open_vol(const char *target, const char *text, struct xv_open_reply *o)
{
	char buf[512];
	struct tp_req r = { .op = X_OPEN, .target = target, .size = strlen(text), .in = text,
			    .in_len = strlen(text), .buf_len = sizeof(buf), .out = buf, .out_len = sizeof(buf) };

	tp_do(xs, me, MAPPERD, &r);
	if (r.error) {
		size_t n = r.serviced < sizeof(reply) - 1 ? (size_t)r.serviced : sizeof(reply) - 1;

		memcpy(reply, buf, n);
		reply[n] = 0;
	} else {
		CHECK(r.serviced == sizeof(*o));
		memcpy(o, buf, sizeof(*o));
		CHECK(o->magic == XV_OPEN_MAGIC);
	}
	return r.error;
}

static void test_open(void)
{
	struct xv_open_reply o;
	char tag[256], text[300];
	pid_t child;

	MG(X_CREATE, "ov", "size=3M\nobject_size=1M\n", 0);
	CHECK(open_vol("ov", "owner=alice\n", &o) == 0);
	CHECK(o.size == 3u << 20 && o.object_size == 1u << 20 && o.data_id && !(o.flags & XV_OPEN_RO));
	CHECK(o.id == info_u64("ov", "id"));
	CHECK(open_vol("ov", "owner=alice\n", &o) == 0);		/* the same owner again */
	CHECK(open_vol("ov", "owner=bob\n", &o) == EBUSY);
	SAYS("ov is open by alice");
	MG(X_INFO, "ov", NULL, 0);
	SAYS("\nopen_by=alice\n");
	MG(X_DELETE, "ov", NULL, EBUSY);
	SAYS("ov is open by alice");
	MG(X_CLOSE, "ov", "owner=bob\n", EPERM);
	SAYS("ov is open by alice, not by bob");
	MG(X_OPEN, "ov", "owner=bob\nmode=rw\n", EINVAL);
	SAYS("unknown key 'mode'");
	/* The lock is at the storage peer: it outlives mapperd. */
	restart_mapperd();
	CHECK(open_vol("ov", "owner=bob\n", &o) == EBUSY);
	MG(X_CLOSE, "ov", "owner=alice\n", 0);
	MG(X_CLOSE, "ov", "owner=alice\n", 0);			/* closing twice is fine */
	CHECK(open_vol("ov", "owner=bob\n", &o) == 0);
	/* force=1 breaks any lock. */
	CHECK(open_vol("ov", "owner=carol\nforce=1\n", &o) == 0);
	CHECK(open_vol("ov", "owner=bob\n", &o) == EBUSY);
	SAYS("open by carol");
	MG(X_CLOSE, "ov", "owner=carol\n", 0);
	/* A holder on this host whose process is gone is broken (a live one is not). */
	child = tag_holder("test-child", tag, sizeof(tag));
	snprintf(text, sizeof(text), "owner=%s\n", tag);
	CHECK(open_vol("ov", text, &o) == 0);
	CHECK(open_vol("ov", "owner=dave\n", &o) == EBUSY);		/* alive: refused */
	SAYS(tag);
	CHECK(kill(child, SIGKILL) == 0 && waitpid(child, NULL, 0) == child);
	CHECK(open_vol("ov", "owner=dave\n", &o) == 0);		/* dead: broken */
	MG(X_INFO, "ov", NULL, 0);
	SAYS("\nopen_by=dave\n");
	{	/* Tags of another host or another form are never judged dead. */
		CHECK(!xvf_owner_dead("elsewhere:1:1:x", 15));
		CHECK(!xvf_owner_dead("dave", 4));
	}
	MG(X_CLOSE, "ov", "owner=dave\n", 0);
	/* Snapshots open shared and read-only; so does ro=1. */
	MG(X_SNAPSHOT, "ov", "name=s\n", 0);
	CHECK(open_vol("ov@s", "owner=x\n", &o) == 0 && (o.flags & XV_OPEN_RO) && o.data_id == 0);
	CHECK(open_vol("ov@s", "owner=y\n", &o) == 0 && (o.flags & XV_OPEN_RO));
	CHECK(open_vol("ov", "owner=r1\nro=1\n", &o) == 0 && (o.flags & XV_OPEN_RO));
	CHECK(open_vol("ov", "owner=w\n", &o) == 0 && !(o.flags & XV_OPEN_RO));
	/* Readers hold shared reader locks: DELETE is refused naming them, until they close or die. */
	MG(X_DELETE, "ov@s", NULL, EBUSY);
	SAYS("ov@s is open (read-only) by x,y");
	MG(X_INFO, "ov@s", NULL, 0);
	SAYS("\nopen_by=x,y\n");
	MG(X_CLOSE, "ov@s", "owner=x\n", 0);
	MG(X_CLOSE, "ov@s", "owner=x\n", 0);			/* closing twice is fine */
	MG(X_DELETE, "ov@s", NULL, EBUSY);
	SAYS("ov@s is open (read-only) by y");
	MG(X_CLOSE, "ov", "owner=w\n", 0);
	CHECK(open_vol("nothere", "owner=w\n", &o) == ENOENT);
	/* A reader whose process is gone is no reader. */
	child = tag_holder("test-reader", tag, sizeof(tag));
	snprintf(text, sizeof(text), "owner=%s\n", tag);
	CHECK(open_vol("ov@s", text, &o) == 0 && (o.flags & XV_OPEN_RO));
	MG(X_CLOSE, "ov@s", "owner=y\n", 0);
	MG(X_DELETE, "ov@s", NULL, EBUSY);
	SAYS(tag);
	CHECK(kill(child, SIGKILL) == 0 && waitpid(child, NULL, 0) == child);
	/* 32 readers at most; force=1 takes a slot from one of them. */
	for (int i = 0; i < (int)XVF_READERS; i++) {
		snprintf(text, sizeof(text), "owner=reader%d\n", i);
		CHECK(open_vol("ov@s", text, &o) == 0);
	}
	CHECK(open_vol("ov@s", "owner=one-too-many\n", &o) == EBUSY);
	SAYS("ov@s has 32 readers already");
	CHECK(open_vol("ov@s", "owner=one-too-many\nforce=1\n", &o) == 0);
	for (int i = 0; i < (int)XVF_READERS; i++) {
		snprintf(text, sizeof(text), "owner=reader%d\n", i);
		MG(X_CLOSE, "ov@s", text, 0);
	}
	MG(X_DELETE, "ov@s", NULL, EBUSY);
	SAYS("by one-too-many");
	MG(X_CLOSE, "ov@s", "owner=one-too-many\n", 0);
	MG(X_DELETE, "ov@s", NULL, 0);
	/* ro=1 on a volume is a reader too; its owner's CLOSE drops it. */
	MG(X_DELETE, "ov", NULL, EBUSY);
	SAYS("ov is open (read-only) by r1");
	MG(X_CLOSE, "ov", "owner=r1\n", 0);
	MG(X_DELETE, "ov", NULL, 0);
	/* A lock left by a dead process (e.g. a killed mapperd's own probe) is not an open: DELETE breaks it. */
	MG(X_CREATE, "pv", "size=1M\n", 0);
	child = tag_holder("mapperd-probe", tag, sizeof(tag));
	{
		char lock[64];

		xvf_lock_name(lock, sizeof(lock), info_u64("pv", "id"));
		CHECK(call(FILED, X_ACQUIRE, lock, 0, strlen(tag), tag, NULL, 0) == 0);
	}
	MG(X_DELETE, "pv", NULL, EBUSY);		/* alive: an open */
	SAYS(tag);
	CHECK(kill(child, SIGKILL) == 0 && waitpid(child, NULL, 0) == child);
	MG(X_DELETE, "pv", NULL, 0);
}
/* How many COPY to data object (@owner, @i) filed has logged ("copied SRC to DST"). */
static int copies_to(uint64_t owner, uint64_t i)
{
	char dst[64], pat[80], line[512];
	FILE *f = fopen(filed_log, "r");
	int n = 0;

	CHECK(f);
	xv_data_name(dst, sizeof(dst), owner, i);
	snprintf(pat, sizeof(pat), " to %s (", dst);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "copied ") && strstr(line, pat);
	fclose(f);
	return n;
}

#define OC_THREADS 6
static pthread_barrier_t oc_barrier;
static uint64_t oc_index, oc_owner[OC_THREADS];
static int oc_err[OC_THREADS];

static void *oc_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct xc c;
	uint8_t buf[256];
	struct xc_call k = { .op = X_MAPW, .target = "oc", .buf_len = sizeof(buf), .out = buf, .out_len = sizeof(buf) };
	struct xv_map_reply *rep = (struct xv_map_reply *)buf;

	CHECK(xc_bind(&c, xs, MAPPERD) == 0);
	k.offset = oc_index * (1u << 20) + (uint64_t)t * 1000;
	k.size = 100;
	pthread_barrier_wait(&oc_barrier);
	oc_err[t] = xc_do(&c, &k);
	if (!oc_err[t])
		oc_owner[t] = rep->entry[0].owner;
	xc_unbind(&c);
	return NULL;
}

/*
 * The store's directory immutable (FS_IMMUTABLE_FL): filed answers every
 * ACQUIRE with EPERM (its lock file cannot be made): a storage peer's error
 * on the lock op, and the one errno mapperd's "held" once equalled (EPERM is
 * 1; LOCK_HELD is now -1). mapperd must report it, never read it as "open by":
 * INFO says the lock could not be looked at, OPEN, SNAPSHOT and DELETE fail
 * with EPERM saying why, and the volume is untouched once the directory is
 * writable again. The flag is cleared at exit whichever way the test ends.
 */
static int imm_fd = -1;

static int store_immutable(int on)
{
	int flags;

	if (imm_fd < 0 || ioctl(imm_fd, FS_IOC_GETFLAGS, &flags))
		return -1;
	flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
	return ioctl(imm_fd, FS_IOC_SETFLAGS, &flags);
}

static void store_immutable_off(void)
{
	if (imm_fd >= 0)
		store_immutable(0);
}

static void test_lock_refused(void)
{
	struct xv_open_reply o;
	struct xv_map_entry e[2];
	uint32_t n;
	uint64_t id;

	MG(X_CREATE, "lk", "size=2M\nobject_size=1M\n", 0);
	CHECK(mapop(X_MAPW, "lk", 0, 1, e, 2, &n) == 0 && n == 1);
	id = info_u64("lk", "id");
	CHECK((imm_fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	atexit(store_immutable_off);
	if (store_immutable(1)) {
		const char *ci = getenv("CI");

		CHECKF(!ci || strcmp(ci, "true"), "cannot make %s immutable (%s): the test needs root "
		       "(CAP_LINUX_IMMUTABLE) and a file system with the flag", store, strerror(errno));
		printf("SKIP test_lock_refused (cannot make the store immutable: %s; needs root)\n", strerror(errno));
		return;
	}
	MG(X_INFO, "lk", NULL, 0);
	SAYS("\nopen_by=? (its lock: Operation not permitted)\n");
	CHECK(open_vol("lk", "owner=alice\n", &o) == EPERM);
	SAYS("lk: cannot take its lock: Operation not permitted");
	MG(X_SNAPSHOT, "lk", "name=s\n", EPERM);
	SAYS("lk: cannot look at its lock: Operation not permitted");
	MG(X_DELETE, "lk", NULL, EPERM);
	SAYS("cannot look at its");
	CHECKF(!strstr(reply, "open by"), "DELETE: '%s'", reply);
	CHECK(store_immutable(0) == 0);
	/* Nothing changed: the same volume, not open, and everything works again. */
	CHECK(info_u64("lk", "id") == id);
	MG(X_INFO, "lk", NULL, 0);
	SAYS("\nopen_by=-\n");
	CHECK(open_vol("lk", "owner=alice\n", &o) == 0 && o.id == id);
	MG(X_CLOSE, "lk", "owner=alice\n", 0);
	MG(X_SNAPSHOT, "lk", "name=s\n", 0);
	MG(X_DELETE, "lk@s", NULL, 0);
	MG(X_DELETE, "lk", NULL, 0);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("\nleaked=0\n");
}

static void test_one_copy(void)
{
	struct xv_map_entry e[8];
	uint32_t n;
	uint64_t d0, d1 = 0;
	char s[32];

	MG(X_CREATE, "oc", "size=8M\nobject_size=1M\n", 0);
	CHECK(mapop(X_MAPW, "oc", 0, 8 << 20, e, 8, &n) == 0 && n == 8);
	d0 = e[0].owner;
	for (int i = 0; i < 8; i++) {
		snprintf(s, sizeof(s), "object %d", i);
		put_data(d0, (uint64_t)i, s);
	}
	MG(X_SNAPSHOT, "oc", "name=s\n", 0);
	/* Six MAPW of one shared object at once, for each object: one COPY each. */
	for (oc_index = 0; oc_index < 8; oc_index++) {
		pthread_t th[OC_THREADS];

		CHECK(pthread_barrier_init(&oc_barrier, NULL, OC_THREADS) == 0);
		for (int t = 0; t < OC_THREADS; t++)
			CHECK(pthread_create(&th[t], NULL, oc_thread, (void *)(intptr_t)t) == 0);
		for (int t = 0; t < OC_THREADS; t++)
			CHECK(pthread_join(th[t], NULL) == 0);
		pthread_barrier_destroy(&oc_barrier);
		for (int t = 0; t < OC_THREADS; t++) {
			CHECKF(oc_err[t] == 0, "MAPW %d: %s", t, strerror(oc_err[t]));
			CHECK(oc_owner[t] != d0 && oc_owner[t] == oc_owner[0]);
		}
		d1 = oc_owner[0];
		snprintf(s, sizeof(s), "object %d", (int)oc_index);
		CHECK(data_is(d1, oc_index, s));
		CHECKF(copies_to(d1, oc_index) == 1, "object %" PRIu64 " was copied %d times", oc_index,
		       copies_to(d1, oc_index));
	}
	MG(X_DELETE, "oc@s", NULL, 0);
	MG(X_DELETE, "oc", NULL, 0);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("objects=0\nnamed=0\nleaked=0\n");
}
/* Flip the bits of byte @off of store object @name (twice: restored). */
static void flip(const char *name, uint64_t off)
{
	int fd = open(obj_path(name), O_RDWR);
	uint8_t b;

	CHECKF(fd >= 0, "open %s: %s", obj_path(name), strerror(errno));
	CHECK(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= 0xff;
	CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
	close(fd);
}

/* The offset of @name's record in the registry object. */
static uint64_t reg_rec_off(const char *name)
{
	uint64_t len;
	uint8_t *b = tp_slurp(obj_path(XVF_REGISTRY), &len);
	uint64_t off = 0;

	for (uint64_t o = sizeof(struct xvf_reg_head); o + sizeof(struct xvf_reg_rec) <= len; o += sizeof(struct xvf_reg_rec))
		if (!strcmp((char *)b + o, name))
			off = o;
	free(b);
	CHECKF(off, "no record of %s in the registry", name);
	return off;
}

/* Everything of "good" and of objects 0, 1 of "bad" reads as it was written. */
static void check_intact(uint64_t dg, uint64_t db)
{
	CHECK(entry_of("good", 1 << 16, 0).owner == dg && data_is(dg, 0, "good 0"));
	CHECK(entry_of("good", 1 << 16, 3).owner == dg && data_is(dg, 3, "good 3"));
	CHECK(data_is(db, 0, "bad 0") && data_is(db, 2, "bad 2"));
}

static void test_corrupt(void)
{
	struct xv_map_entry e[8];
	uint32_t n;
	uint64_t dg, db, idb;
	char hname[64], mname[64], rname[64];

	MG(X_CREATE, "good", "size=256K\nobject_size=64K\n", 0);
	MG(X_CREATE, "bad", "size=256K\nobject_size=64K\n", 0);
	CHECK(mapop(X_MAPW, "good", 0, 256 << 10, e, 8, &n) == 0 && n == 4);
	dg = e[0].owner;
	CHECK(mapop(X_MAPW, "bad", 0, 256 << 10, e, 8, &n) == 0 && n == 4);
	db = e[0].owner;
	put_data(dg, 0, "good 0");
	put_data(dg, 3, "good 3");
	put_data(db, 0, "bad 0");
	put_data(db, 2, "bad 2");
	idb = info_u64("bad", "id");
	xvf_header_name(hname, sizeof(hname), idb);
	xvf_map_name(mname, sizeof(mname), idb);
	snprintf(rname, sizeof(rname), "%s", XVF_REGISTRY);

	/* One map entry: requests touching it fail naming it; the rest serves. */
	flip(mname, XVF_MAP_HEAD + 2 * 16 + 1);	/* a byte of its owner */
	restart_mapperd();
	CHECK(mapop(X_MAPR, "bad", 2 << 16, 1, e, 8, &n) == EIO);
	SAYS("bad: entry 2 of its map (xv1.m.");
	SAYS(") is corrupt");
	CHECK(mapop(X_MAPW, "bad", 0, 256 << 10, e, 8, &n) == EIO);
	CHECK(mapop(X_DISCARD, "bad", 2 << 16, 1 << 16, e, 8, &n) == EIO);
	CHECK(mapop(X_MAPR, "bad", 0, 2 << 16, e, 8, &n) == 0 && n == 2 && e[0].owner == db);
	MG(X_INFO, XV_T_FSCK, NULL, EIO);
	SAYS("entry 2 of the map of bad is corrupt");
	MG(X_DELETE, XV_T_FSCK, NULL, EIO);
	check_intact(dg, db);
	flip(mname, XVF_MAP_HEAD + 2 * 16 + 1);	/* a byte of its owner */
	restart_mapperd();
	CHECK(entry_of("bad", 1 << 16, 2).owner == db);

	/* A map cut short: the entries it lost are corrupt, not holes. */
	{
		uint64_t len;
		uint8_t *whole = tp_slurp(obj_path(mname), &len);

		CHECK(len == XVF_MAP_HEAD + 4 * 16);
		CHECK(truncate(obj_path(mname), (off_t)len - 24) == 0);
		restart_mapperd();
		CHECK(mapop(X_MAPR, "bad", 2 << 16, 2 << 16, e, 8, &n) == EIO);
		SAYS("bad: entry 2 of its map");
		CHECK(mapop(X_MAPR, "bad", 0, 2 << 16, e, 8, &n) == 0 && n == 2 && e[1].owner == db);
		{
			int fd = open(obj_path(mname), O_WRONLY);

			CHECK(fd >= 0 && pwrite(fd, whole, len, 0) == (ssize_t)len);
			close(fd);
		}
		free(whole);
	}

	/* The map's head. */
	flip(mname, 3);
	restart_mapperd();
	CHECK(mapop(X_MAPR, "bad", 0, 1, e, 8, &n) == EIO);
	SAYS("the map xv1.m.");
	SAYS("of bad is corrupt (its head has a bad magic)");
	check_intact(dg, db);
	flip(mname, 3);

	/* The header. */
	flip(hname, 40);
	restart_mapperd();
	CHECK(mapop(X_MAPR, "bad", 0, 1, e, 8, &n) == EIO);
	SAYS("the header xv1.h.");
	SAYS("is corrupt (checksum mismatch)");
	MG(X_INFO, "bad", NULL, EIO);
	MG(X_SNAPSHOT, "bad", "name=x\n", EIO);
	MG(X_INFO, XV_T_FSCK, NULL, EIO);
	MG(X_INFO, XV_T_LIST, NULL, 0);
	SAYS("bad\tvolume\t?\t?\n");
	SAYS("good\tvolume\t262144\t-\n");
	check_intact(dg, db);
	flip(hname, 40);

	/* A registry record: the others serve; nothing is changed until it is repaired. */
	flip(rname, reg_rec_off("bad") + 200);
	restart_mapperd();
	CHECK(mapop(X_MAPR, "bad", 0, 1, e, 8, &n) == EIO);
	SAYS("no sound record names bad: the registry xv1.registry is corrupt (record ");
	SAYS("fails its checksum)");
	MG(X_CREATE, "new", "size=1M\n", EIO);
	SAYS("nothing is changed until it is repaired");
	MG(X_DELETE, "good", NULL, EIO);
	MG(X_INFO, XV_T_FSCK, NULL, EIO);
	check_intact(dg, db);
	CHECK(mapop(X_MAPW, "good", 0, 1, e, 8, &n) == 0 && e[0].owner == dg);
	flip(rname, reg_rec_off("bad") + 200);
	/* The registry's head: nothing serves, nothing is lost. */
	flip(rname, 20);
	restart_mapperd();
	CHECK(mapop(X_MAPR, "good", 0, 1, e, 8, &n) == EIO);
	SAYS("the registry xv1.registry is corrupt (its head fails its checksum)");
	MG(X_CREATE, "new", "size=1M\n", EIO);
	flip(rname, 20);

	/* Repaired: all as it was. */
	restart_mapperd();
	check_intact(dg, db);
	CHECK(entry_of("bad", 1 << 16, 2).owner == db && entry_of("bad", 1 << 16, 1).owner == db);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("objects=8\nnamed=8\nleaked=0\n");
	MG(X_DELETE, "good", NULL, 0);
	MG(X_DELETE, "bad", NULL, 0);
}
/* The storage peer gone: changes fail (ECONNREFUSED), and a mapperd started meanwhile waits for it, never taking its absence for an empty store. */
static void test_storage_down(void)
{
	MG(X_CREATE, "sd1", "size=1M\nobject_size=64K\n", 0);
	CHECK(tp_stop(filed_pid) == 0);
	MG(X_CREATE, "sd2", "size=1M\nobject_size=64K\n", ECONNREFUSED);
	SAYS("cannot write the registry");
	CHECK(tp_stop(mapperd_pid) == 0);
	{
		const char *args[] = { "-q", "-g", spec, "-p", "2", "--storage", "1", NULL };

		mapperd_pid = tp_start("mapperd", args);
		tp_wait_bound(xs, MAPPERD, mapperd_pid);
	}
	usleep(300000);			/* it waits for the storage peer */
	/* Meanwhile what it is sent fails at once, saying why, instead of waiting in its queue. */
	MG(X_INFO, "sd1", NULL, ECONNREFUSED);
	SAYS("the storage peer on port 1 is not running");
	filed_pid = start_filed();
	MG(X_INFO, "sd1", NULL, 0);
	MG(X_INFO, "sd2", NULL, ENOENT);
	MG(X_CREATE, "sd2", "size=1M\nobject_size=64K\n", 0);
	MG(X_DELETE, "sd1", NULL, 0);
	MG(X_DELETE, "sd2", NULL, 0);
}

/* Does file @path have a line containing @s? */
static int log_has(const char *path, const char *s)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int hit = 0;

	if (!f)
		return 0;
	while (!hit && fgets(line, sizeof(line), f))
		hit = strstr(line, s) != NULL;
	fclose(f);
	return hit;
}

/*
 * With --cache 1K (SIZE, as vlmcd's --cache) no map of 600 entries stays
 * cached once not in use: each is dropped and read again. The old spelling
 * --cache-mb N still works, with a warning.
 */
static void cache_round(const char *opt, const char *val, const char *log)
{
	const char *names[3] = { "ca", "cb", "cc" };
	struct xv_map_entry e[4];
	uint64_t own[3];
	uint32_t n;
	char text[64];

	CHECK(tp_stop(mapperd_pid) == 0);
	mapperd_pid = start_mapperd_with(opt, val, log);
	snprintf(text, sizeof(text), "size=%" PRIu64 "\nobject_size=64K\n", (uint64_t)600 << 16);
	for (int k = 0; k < 3; k++) {
		MG(X_CREATE, names[k], text, 0);
		CHECK(mapop(X_MAPW, names[k], (uint64_t)(7 + k) << 16, 1, e, 4, &n) == 0 && n == 1);
		own[k] = e[0].owner;
	}
	for (int round = 0; round < 3; round++)
		for (int k = 0; k < 3; k++) {
			CHECK(entry_of(names[k], 1 << 16, 7 + (uint64_t)k).owner == own[k]);
			CHECK(entry_of(names[k], 1 << 16, 599).flags == XV_E_HOLE);
			CHECK(mapop(X_MAPW, names[k], (uint64_t)(7 + k) << 16, 1, e, 4, &n) == 0 && e[0].owner == own[k]);
		}
	CHECKF(log_has(log, "cache: dropped the map of ca (600 entries)"), "%s %s: no map was dropped (%s)", opt,
	       val, log);
	for (int k = 0; k < 3; k++)
		MG(X_DELETE, names[k], NULL, 0);
}

static void test_cache(void)
{
	const char *log = tp_path("mapperd-cache.log");
	const char *old = tp_path("mapperd-cache-mb.log");

	cache_round("--cache", "1K", log);
	CHECKF(!log_has(log, "deprecated"), "--cache warned (%s)", log);
	cache_round("--cache-mb", "0", old);
	CHECKF(log_has(old, "--cache-mb N is deprecated: say --cache 0M"), "no warning for --cache-mb (%s)", old);
	restart_mapperd();
}

/* ---------------------------------------------------------------- crashes */

#define CR_OBJ 16u		/* objects per volume */
#define CR_OSZ (64u << 10)
#define CR_MAX 96		/* volumes, snapshots and clones */

struct cr_ent {
	char name[64];
	int snap;
	int acked;		/* acknowledged; else its op's outcome is unknown (it may exist) */
	uint32_t marker[CR_OBJ];	/* last acknowledged write per object; 0: none (zeroes) */
	int seen;		/* snapshots: owners recorded */
	uint64_t owner[CR_OBJ];
	int deps;		/* snapshots (of a volume) or clones (of a snapshot) tried */
	int gone, maybe_gone;	/* deleted (acknowledged), or its DELETE was cut by a kill */
};

static struct cr_ent cr[CR_MAX];
static int cr_n;
static pthread_mutex_t cr_mu = PTHREAD_MUTEX_INITIALIZER;	/* the client holds it per op */
static int cr_stop;		/* atomic */
static uint64_t cr_acked_mapw, cr_acked_snap, cr_acked_clone, cr_acked_delete, cr_unknown;

/* A mapperd call from the client thread: 0/errno, or -1 when mapperd died under it (outcome unknown). */
static int cr_call(struct xc *c, struct xc_call *k)
{
	int r = xc_do(c, k);

	if (r == ECONNREFUSED || r == ECONNRESET || r == EPIPE || r == ESHUTDOWN) {
		if (r == ECONNREFUSED)
			usleep(1000);	/* nobody on the port: mapperd is being restarted */
		cr_unknown++;
		return -1;
	}
	return r;
}

static void *cr_client(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg, seq = 0;
	struct xc c;
	uint8_t buf[512];

	CHECK(xc_bind(&c, xs, MAPPERD) == 0);
	while (!__atomic_load_n(&cr_stop, __ATOMIC_RELAXED)) {
		uint64_t pick = xt_rand(&seed) % 100;
		int vols[CR_MAX], snaps[CR_MAX], dels[CR_MAX], nv = 0, ns = 0, nd = 0, r;

		pthread_mutex_lock(&cr_mu);
		for (int k = 0; k < cr_n; k++) {
			if (!cr[k].acked || cr[k].gone || cr[k].maybe_gone)
				continue;
			if (!cr[k].snap)
				vols[nv++] = k;
			else
				snaps[ns++] = k;
			if (k >= 2 && !cr[k].deps)	/* the first two volumes stay */
				dels[nd++] = k;
		}
		if (pick >= 80 && pick < 84 && nd) {
			struct cr_ent *e = &cr[dels[xt_rand(&seed) % (uint64_t)nd]];
			struct xc_call k = { .op = X_DELETE, .target = e->name, .buf_len = 256 };

			r = cr_call(&c, &k);
			CHECKF(r <= 0, "DELETE %s: %s '%s'", e->name, strerror(r), k.msg);
			e->gone = r == 0;
			e->maybe_gone = r < 0;
			cr_acked_delete += r == 0;
		} else if (pick < 84 || cr_n >= CR_MAX - 1 || (pick >= 94 && !ns)) {
			struct cr_ent *v = &cr[vols[xt_rand(&seed) % (uint64_t)nv]];
			uint64_t i = xt_rand(&seed) % CR_OBJ;
			struct xc_call k = { .op = X_MAPW, .target = v->name, .offset = i * CR_OSZ + 7, .size = 10,
					     .buf_len = sizeof(buf), .out = buf, .out_len = sizeof(buf) };
			struct xv_map_reply *rep = (struct xv_map_reply *)buf;

			r = cr_call(&c, &k);
			if (r == 0) {
				char m[32];

				CHECK(rep->count == 1 && rep->entry[0].flags == XV_E_WRITABLE);
				snprintf(m, sizeof(m), "M%" PRIu64 ".", ++seq);
				put_data(rep->entry[0].owner, i, m);
				v->marker[i] = (uint32_t)seq;
				cr_acked_mapw++;
			} else {
				CHECKF(r < 0, "MAPW %s: %s '%s'", v->name, strerror(r), k.msg);
			}
		} else {
			int from = pick < 94 ? vols[xt_rand(&seed) % (uint64_t)nv] : snaps[xt_rand(&seed) % (uint64_t)ns];
			struct cr_ent *e = &cr[cr_n];
			char text[96], target[64];
			struct xc_call k = { .op = pick < 94 ? X_SNAPSHOT : X_CLONE, .target = target, .in = text,
					     .buf_len = 256 };

			snprintf(target, sizeof(target), "%s", cr[from].name);
			cr[from].deps++;
			memset(e, 0, sizeof(*e));
			memcpy(e->marker, cr[from].marker, sizeof(e->marker));
			e->snap = k.op == X_SNAPSHOT;
			if (e->snap) {
				snprintf(text, sizeof(text), "name=s%d\n", cr_n);
				snprintf(e->name, sizeof(e->name), "%.40s@s%d", target, cr_n);
			} else {
				snprintf(text, sizeof(text), "name=k%d\n", cr_n);
				snprintf(e->name, sizeof(e->name), "k%d", cr_n);
			}
			k.in_len = k.size = strlen(text);
			cr_n++;
			r = cr_call(&c, &k);
			CHECKF(r <= 0, "%s %s: %s '%s'", xseg_op_name(k.op), target, strerror(r), k.msg);
			e->acked = r == 0;
			if (r == 0)
				*(e->snap ? &cr_acked_snap : &cr_acked_clone) += 1;
		}
		pthread_mutex_unlock(&cr_mu);
	}
	xc_unbind(&c);
	return NULL;
}

/* Check every entity against mapperd (the client paused). */
static void cr_verify(void)
{
	for (int k = 0; k < cr_n; k++) {
		struct cr_ent *e = &cr[k];
		struct xv_map_entry m[CR_OBJ];
		uint32_t n;
		int r = mapop(X_MAPR, e->name, 0, CR_OBJ * CR_OSZ, m, CR_OBJ, &n);

		if (e->gone) {
			CHECKF(r == ENOENT, "MAPR %s, deleted: %s '%s'", e->name, strerror(r), reply);
			continue;
		}
		if ((!e->acked || e->maybe_gone) && r == ENOENT) {
			e->gone = e->maybe_gone;	/* deleted, or never made: fine */
			continue;
		}
		e->maybe_gone = 0;		/* it exists: that DELETE did not happen */
		CHECKF(r == 0 && n == CR_OBJ, "MAPR %s: %s '%s'", e->name, strerror(r), reply);
		e->acked = 1;			/* it exists: from now on it must */
		for (uint32_t i = 0; i < CR_OBJ; i++) {
			char want[32];

			if (e->snap && e->seen)
				CHECKF(m[i].owner == e->owner[i], "snapshot %s changed at object %u", e->name, i);
			if (!e->marker[i]) {
				CHECK(m[i].owner == 0 || data_is(m[i].owner, i, "\0\0\0\0\0\0\0\0"));
				continue;
			}
			snprintf(want, sizeof(want), "M%u.", e->marker[i]);
			CHECKF(m[i].owner, "%s object %u: a hole, but write %s was acknowledged", e->name, i, want);
			CHECKF(data_is(m[i].owner, i, want), "%s object %u: not write %s", e->name, i, want);
		}
		if (e->snap && !e->seen) {
			for (uint32_t i = 0; i < CR_OBJ; i++)
				e->owner[i] = m[i].owner;
			e->seen = 1;
		}
	}
}

/* Data objects in the store's directory, and those the maps of .list name; leaked = the difference. */
static int cr_expected_leaks(char leaked[][64], int max, int *files)
{
	DIR *d = opendir(store);
	struct dirent *de;
	int nl = 0;
	char list[8192], *save, *line;

	*files = 0;
	MG(X_INFO, XV_T_LIST, NULL, 0);
	snprintf(list, sizeof(list), "%s", reply);
	CHECK(d);
	while ((de = readdir(d))) {
		uint64_t owner, idx;
		int named = 0;
		char copy[8192];

		if (strncmp(de->d_name, XV_DATA_PREFIX, strlen(XV_DATA_PREFIX)))
			continue;
		(*files)++;
		CHECK(sscanf(de->d_name + strlen(XV_DATA_PREFIX), "%16" SCNx64 ".%16" SCNx64, &owner, &idx) == 2);
		snprintf(copy, sizeof(copy), "%s", list);
		for (line = strtok_r(copy, "\n", &save); line && !named; line = strtok_r(NULL, "\n", &save)) {
			char name[128];

			snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, "\t"), line);
			named = idx < CR_OBJ && entry_of(name, CR_OSZ, idx).owner == owner;
		}
		if (!named) {
			CHECK(nl < max);
			snprintf(leaked[nl++], 64, "%.60s", de->d_name);
		}
	}
	closedir(d);
	return nl;
}

static void test_crash(void)
{
	long kills = xt_env_long("XSEG_MAPPERD_KILLS", 600) / 10;	/* 60; 6 in sanitizer builds */
	uint64_t seed = xt_seed();
	static char leaked[256][64];
	int nleak, files;
	pthread_t th;
	char want[64];

	if (kills < 50 && !getenv("XSEG_MAPPERD_KILLS"))
		kills = 50;		/* the brief's floor, sanitized or not */
	for (int k = 0; k < 2; k++) {
		snprintf(cr[k].name, sizeof(cr[k].name), "cv%d", k);
		MG(X_CREATE, cr[k].name, "size=1M\nobject_size=64K\n", 0);
		cr[k].acked = 1;
	}
	cr_n = 2;
	CHECK(pthread_create(&th, NULL, cr_client, (void *)(uintptr_t)(seed | 1)) == 0);
	for (long k = 1; k <= kills; k++) {
		usleep((useconds_t)(1000 + xt_rand(&seed) % 25000));
		CHECK(kill(mapperd_pid, SIGKILL) == 0);
		CHECK(tp_wait(mapperd_pid) == 128 + SIGKILL);
		mapperd_pid = start_mapperd();
		if (k % 10 == 0) {
			pthread_mutex_lock(&cr_mu);
			cr_verify();
			pthread_mutex_unlock(&cr_mu);
		}
	}
	/*
	 * The client goes on, without kills, until what the checks below need
	 * has been acknowledged at least once: under load the kills can cut
	 * every snapshot of the loop (a liveness check, not a race to win).
	 */
	for (uint64_t t0 = xt_now_ns();;) {
		int enough;

		pthread_mutex_lock(&cr_mu);
		enough = cr_acked_mapw > 20 && cr_acked_snap > 0;
		pthread_mutex_unlock(&cr_mu);
		if (enough)
			break;
		CHECKF(xt_now_ns() - t0 < 120000000000ull, "no snapshot acknowledged in 120 s after the kills (%" PRIu64
		       " MAPW)", cr_acked_mapw);
		usleep(10000);
	}
	__atomic_store_n(&cr_stop, 1, __ATOMIC_RELAXED);
	CHECK(pthread_join(th, NULL) == 0);
	restart_mapperd();
	cr_verify();
	printf("%ld kills: %" PRIu64 " MAPW, %" PRIu64 " snapshots, %" PRIu64 " clones acknowledged, "
	       "%" PRIu64 " deletes, %" PRIu64 " requests cut by a kill\n", kills, cr_acked_mapw, cr_acked_snap, cr_acked_clone,
	       cr_acked_delete, cr_unknown);
	CHECK(cr_acked_mapw > 20 && cr_acked_snap > 0);
	/* fsck names exactly the objects no map names, and removes them. */
	nleak = cr_expected_leaks(leaked, 256, &files);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	snprintf(want, sizeof(want), "objects=%d\nnamed=%d\nleaked=%d\n", files, files - nleak, nleak);
	CHECKF(!strncmp(reply, want, strlen(want)), "fsck says '%.80s', the directory '%s'", reply, want);
	for (int k = 0; k < nleak; k++) {
		char line[96];

		snprintf(line, sizeof(line), "leaked=%.60s\n", leaked[k]);
		SAYS(line);
	}
	printf("fsck: %d objects, %d leaked\n", files, nleak);
	MG(X_DELETE, XV_T_FSCK, NULL, 0);
	CHECKF(!strncmp(reply, want, strlen(want)), "fsck says '%.80s', the directory '%s'", reply, want);
	CHECK(cr_expected_leaks(leaked, 256, &files) == 0);
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	snprintf(want, sizeof(want), "objects=%d\nnamed=%d\nleaked=0\n", files, files);
	CHECKF(!strcmp(reply, want), "fsck after removing: '%s', expected '%s'", reply, want);
	cr_verify();
}
