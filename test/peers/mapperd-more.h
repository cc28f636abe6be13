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
	int pfd[2];
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
	CHECK(pipe(pfd) == 0);
	child = xt_fork();
	if (child == 0) {
		xvf_owner_tag(tag, sizeof(tag), "test-child");
		if (write(pfd[1], tag, strlen(tag) + 1) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	CHECK(read(pfd[0], tag, sizeof(tag)) > 0);
	close(pfd[0]);
	close(pfd[1]);
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
	MG(X_CLOSE, "ov@s", "owner=x\n", 0);
	MG(X_CLOSE, "ov", "owner=w\n", 0);
	CHECK(open_vol("nothere", "owner=w\n", &o) == ENOENT);
	MG(X_DELETE, "ov@s", NULL, 0);
	MG(X_DELETE, "ov", NULL, 0);
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
static void test_corrupt(void) {}
static void test_crash(void) {}
