/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/peers/mapperd-fault.h - part of test/peers/mapperd.c (included once):
 * a SNAPSHOT whose commit (the volume's header with the new data id) fails
 * while the storage peer stays up, through mapperd's test hook
 * XSEG_MAPPERD_FAULT: not landed, the snapshot is rolled back (no record, no
 * header or map object left, fsck clean) and the volume serves on as before;
 * landed but reported failed, the snapshot is finished. Either way a second
 * snapshot works and everything survives a restart.
 */

/* Headers (xv1.h.*) and maps (xv1.m.*) in the store's directory. */
static int store_count(const char *prefix)
{
	DIR *d = opendir(store);
	struct dirent *e;
	int n = 0;

	CHECK(d);
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix)) && !strchr(e->d_name + strlen(prefix), '.');
	closedir(d);
	return n;
}

/* Records in .list. */
static int list_count(void)
{
	int n = 0;

	MG(X_INFO, XV_T_LIST, NULL, 0);
	for (const char *p = reply; (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

static void restart_mapperd_fault(const char *what)
{
	CHECK(tp_stop(mapperd_pid) == 0);
	if (what)
		CHECK(setenv("XSEG_MAPPERD_FAULT", what, 1) == 0);
	mapperd_pid = start_mapperd();
	CHECK(unsetenv("XSEG_MAPPERD_FAULT") == 0);
}

static void fault_clean(void)
{
	int recs = list_count();

	CHECKF(store_count("xv1.h.") == recs && store_count("xv1.m.") == recs,
	       "%d records, %d headers, %d maps in the store", recs, store_count("xv1.h."), store_count("xv1.m."));
	MG(X_INFO, XV_T_FSCK, NULL, 0);
	SAYS("\nleaked=0\n");
}

static void test_snapshot_fault(void)
{
	struct xv_map_entry e[4];
	uint32_t n;
	uint64_t d0, ver;

	MG(X_CREATE, "fv", "size=256K\nobject_size=64K\n", 0);
	CHECK(mapop(X_MAPW, "fv", 1 << 16, 10, e, 4, &n) == 0 && n == 1);
	d0 = e[0].owner;
	put_data(d0, 1, "before-the-snapshot");
	ver = info_u64("fv", "version");
	/* The commit fails and did not land: rolled back, nothing half made is left. */
	restart_mapperd_fault("snapshot-commit");
	MG(X_SNAPSHOT, "fv", "name=s\n", EIO);
	SAYS("fv@s: cannot write its map or header");
	MG(X_INFO, "fv@s", NULL, ENOENT);
	MG(X_INFO, "fv", NULL, 0);
	SAYS("\nsnapshots=-\n");
	CHECK(info_u64("fv", "version") == ver);
	fault_clean();
	/* The volume serves as before: its objects are still its own (no copy), new ones are made. */
	CHECK(mapop(X_MAPW, "fv", 1 << 16, 10, e, 4, &n) == 0 && e[0].owner == d0 && e[0].flags == XV_E_WRITABLE);
	CHECK(mapop(X_MAPW, "fv", 2 << 16, 10, e, 4, &n) == 0 && e[0].owner == d0);
	CHECK(data_is(d0, 1, "before-the-snapshot"));
	/* The hook fired once: the next snapshot works and copies on write. */
	MG(X_SNAPSHOT, "fv", "name=s\n", 0);
	CHECK(mapop(X_MAPW, "fv", 1 << 16, 10, e, 4, &n) == 0 && e[0].owner != d0);
	CHECK(data_is(e[0].owner, 1, "before-the-snapshot"));
	CHECK(entry_of("fv@s", 1 << 16, 1).owner == d0);
	fault_clean();
	/* The commit landed but its reply said it failed: the snapshot is finished. */
	restart_mapperd_fault("snapshot-commit-landed");
	MG(X_SNAPSHOT, "fv", "name=t\n", 0);
	MG(X_INFO, "fv@t", NULL, 0);
	SAYS("kind=snapshot");
	CHECK(mapop(X_MAPW, "fv", 2 << 16, 10, e, 4, &n) == 0 && e[0].owner != d0);
	CHECK(entry_of("fv@t", 1 << 16, 2).owner == d0);
	fault_clean();
	/* All of it survives a restart. */
	restart_mapperd_fault(NULL);
	MG(X_INFO, "fv", NULL, 0);
	SAYS("\nsnapshots=fv@s,fv@t\n");
	fault_clean();
	MG(X_DELETE, "fv@s", NULL, 0);
	MG(X_DELETE, "fv@t", NULL, 0);
	MG(X_DELETE, "fv", NULL, 0);
	fault_clean();
}
