/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/peers/mapperd-list.h - part of test/peers/mapperd.c (included once):
 * filed's LIST (a prefix, the name to list after, pages of whole names in
 * byte order; never lock files; bad prefixes refused) and mapperd using it:
 * fsck and DELETE of a volume of 2,560 indices with 6 objects find the
 * objects with a few LISTs instead of an INFO or DELETE per index (counted
 * at filed's port), and give the same answers as the probing path, which a
 * storage peer without LIST still gets (the hook list-unsupported).
 */

/* Requests filed has accepted so far. */
static uint64_t filed_accepted(void)
{
	return __atomic_load_n(&xseg_port(xs, FILED)->cnt.accepted, __ATOMIC_ACQUIRE);
}

/* LIST @prefix after @after with a buffer of @buf bytes; the names (reply text) in reply[]. */
static int list_call(const char *prefix, const char *after, uint64_t buf)
{
	char out[8192];
	struct tp_req r = { .op = X_LIST, .target = prefix, .target_len = 0, .size = strlen(after), .in = after,
			    .in_len = strlen(after), .buf_len = buf, .out = out, .out_len = sizeof(out) - 1 };

	tp_do(xs, me, FILED, &r);
	memcpy(reply, out, r.serviced < sizeof(out) ? (size_t)r.serviced : 0);
	reply[r.serviced < sizeof(out) ? r.serviced : 0] = 0;
	return r.error;
}

static void test_list_op(void)
{
	char lock[64], all[8192] = "", after[300] = "";

	put_data(0x77, 2, "b");
	put_data(0x77, 0, "a");
	put_data(0x77, 10, "c");
	put_data(0x78, 0, "other");
	xvf_lock_name(lock, sizeof(lock), 0x77);
	CHECK(call(FILED, X_ACQUIRE, lock, 0, 5, "owner", NULL, 0) == 0);
	CHECK(list_call("xv1.d.0000000000000077.", "", 4096) == 0);
	CHECKF(!strcmp(reply, "xv1.d.0000000000000077.0000000000000000\nxv1.d.0000000000000077.0000000000000002\n"
		       "xv1.d.0000000000000077.000000000000000a\n"), "LIST: '%s'", reply);
	CHECK(list_call("xv1.d.0000000000000077.", "xv1.d.0000000000000077.0000000000000000", 4096) == 0);
	CHECKF(!strncmp(reply, "xv1.d.0000000000000077.0000000000000002\n", 40), "LIST after: '%s'", reply);
	CHECK(list_call("xv1.d.0000000000000077.", "xv1.d.0000000000000077.000000000000000a", 4096) == 0);
	CHECK(reply[0] == 0);
	CHECK(list_call("nothing-has-this-prefix", "", 4096) == 0 && reply[0] == 0);
	/* Pages of whole names: a 300-byte buffer holds seven names of 40 bytes. */
	for (int pages = 0;; pages++) {
		CHECK(pages < 100);
		CHECK(list_call("xv1.d.00000000000000", after, 300) == 0);
		if (!reply[0])
			break;
		CHECK(reply[strlen(reply) - 1] == '\n');
		strcat(all, reply);
		*strrchr(reply, '\n') = 0;
		snprintf(after, sizeof(after), "%s", strrchr(reply, '\n') ? strrchr(reply, '\n') + 1 : reply);
	}
	CHECKF(strstr(all, "xv1.d.0000000000000077.000000000000000a\nxv1.d.0000000000000078.0000000000000000\n"),
	       "paged: '%s'", all);
	/* Everything, and no lock file or temporary among it. */
	CHECK(list_call("", "", 8000) == 0);
	CHECK(strstr(reply, "xv1.registry\n") && !strstr(reply, "lock") && !strchr(reply, '\001'));
	/* Bad input. */
	CHECK(list_call("a/b", "", 4096) == EINVAL);
	CHECK(list_call("xv1.", "", 100) == EINVAL);		/* cannot hold a name */
	CHECK(call(FILED, X_RELEASE, lock, 0, 5, "owner", NULL, 0) == 0);
	for (uint64_t i = 0; i <= 10; i++)
		unlink(data_path(0x77, i));
	unlink(data_path(0x78, 0));
}

/* fsck and delete of a 10 GiB volume of 4M objects (2,560 indices) holding 6; leaks at 2 more indices. */
static void list_round(const char *hook, uint64_t *fsck_reqs, uint64_t *delete_reqs)
{
	struct xv_map_entry e[4];
	uint32_t n;
	uint64_t d, a;

	restart_mapperd_fault(hook);
	MG(X_CREATE, "lv", "size=10G\n", 0);
	for (uint64_t i = 0; i < 6; i++)
		CHECK(mapop(X_MAPW, "lv", (i * 400) << 22, 1, e, 4, &n) == 0);
	d = e[0].owner;
	put_data(d, 7, "leak");
	put_data(d, 2559, "leak");
	a = filed_accepted();
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	*fsck_reqs = filed_accepted() - a;
	SAYS("objects=8\nnamed=6\nleaked=2\n");
	SAYS("leaked=xv1.d.");
	MG(X_DELETE, XV_T_FSCK, NULL, 0);
	SAYS("leaked=2\n");
	CHECK(!exists(data_path(d, 7)) && !exists(data_path(d, 2559)) && exists(data_path(d, 400)));
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("objects=6\nnamed=6\nleaked=0\n");
	put_data(d, 9, "leak");		/* DELETE finds an object its map never named too */
	a = filed_accepted();
	MG(X_DELETE, "lv", NULL, 0);
	*delete_reqs = filed_accepted() - a;
	for (uint64_t i = 0; i < 2560; i += 400)
		CHECK(!exists(data_path(d, i)));
	CHECK(!exists(data_path(d, 9)));
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("objects=0\nnamed=0\nleaked=0\n");
}

static void test_list_use(void)
{
	uint64_t f1, d1, f0, d0;

	list_round(NULL, &f1, &d1);
	list_round("list-unsupported", &f0, &d0);
	restart_mapperd_fault(NULL);
	printf("fsck: %" PRIu64 " requests at filed with LIST, %" PRIu64 " without; delete: %" PRIu64 " and %" PRIu64 "\n",
	       f1, f0, d1, d0);
	CHECKF(f1 < 200 && d1 < 200, "with LIST: fsck %" PRIu64 ", delete %" PRIu64 " requests", f1, d1);
	CHECKF(f0 > 2500 && d0 > 2500, "without LIST: fsck %" PRIu64 ", delete %" PRIu64 " requests", f0, d0);
}
