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
static void test_one_copy(void) {}
static void test_corrupt(void) {}
static void test_crash(void) {}
