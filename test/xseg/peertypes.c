/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the peer-type table sized from the config (peer_types=,
 * docs/segment.md "Peer types"). A segment with peer_types=128 takes 128
 * different peer types (drivers registered by this test under the names
 * t000..t128), names each in its entry, signals through the driver of the
 * last entry, and refuses the 129th type with -ENOSPC and a message naming
 * the limit and the key; peer_types=1 takes exactly one; the default is 16;
 * create-or-open names a differing peer_types= like any other key; xseg-tool
 * status lists only the named entries, eight to a line, and still works on a
 * full table (it joins as an observer, with no peer type, which is tested too).
 */
#include "common.h"

#define NTYPES	((int)XSEG_PEER_TYPES_MAX + 1)	/* one more than fits */

static char names[NTYPES][XSEG_TYPE_LEN];
static struct xseg_driver_ops ops[NTYPES];
static uint64_t signals[NTYPES];	/* by driver */
static char err[512];

static int t_join(struct xseg *xs, void **priv)
{
	(void)xs;
	*priv = NULL;
	return 0;
}

static void t_leave(struct xseg *xs, void *priv)
{
	(void)xs; (void)priv;
}

static int t_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	(void)xs; (void)priv; (void)portno;
	return 0;
}

static void t_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	(void)xs; (void)priv; (void)portno;
}

/* Which driver ran: its index is the number in its name. */
static int t_signal_of(int i)
{
	signals[i]++;
	return 0;
}

#define T_SIGNAL(i) static int t_signal_##i(struct xseg *xs, void *priv, uint32_t p) \
	{ (void)xs; (void)priv; (void)p; return t_signal_of(i); }
T_SIGNAL(0)
T_SIGNAL(127)

static int t_signal_other(struct xseg *xs, void *priv, uint32_t p)
{
	(void)xs; (void)priv; (void)p;
	return t_signal_of(NTYPES - 1);	/* not expected to run */
}

static void make_drivers(void)
{
	for (int i = 0; i < NTYPES; i++) {
		snprintf(names[i], sizeof(names[i]), "t%03d", i);
		ops[i] = (struct xseg_driver_ops){
			.abi_size = sizeof(struct xseg_driver_ops), .version = 1, .name = names[i],
			.join = t_join, .leave = t_leave, .bind = t_bind, .unbind = t_unbind,
			.signal = i == 0 ? t_signal_0 : i == 127 ? t_signal_127 : t_signal_other,
		};
	}
}

static struct xseg *join_as(const struct xseg_config *cfg, int i)
{
	CHECKF(xseg_register_driver(&ops[i]) == 0, "register %s", names[i]);
	return tx_join(cfg, names[i]);
}

static void done_with(struct xseg *xs, int i)
{
	CHECK(xseg_leave(xs) == 0);
	CHECKF(xseg_unregister_driver(&ops[i]) == 0, "unregister %s", names[i]);
}

static void verify_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "verify: %s\n", line);
	CHECK(!"xseg_verify found a problem");
}

static void test_128_types(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:peer_types=128");
	struct xseg *xs, *last, *first;
	char name[XSEG_TYPE_LEN];
	int e = 0;

	CHECK(cfg.peer_types == 128);
	/* One type after another: each names the next entry (the process registry holds 16 drivers). */
	for (int i = 0; i < 127; i++) {
		xs = join_as(&cfg, i);
		CHECKF(xseg_peer_type_count(xs) == 128, "%u", xseg_peer_type_count(xs));
		done_with(xs, i);
	}
	last = join_as(&cfg, 127);		/* entry 127, kept: its port signals through it */
	CHECK(xseg_bind_port(last, 0, 0) == 0);
	CHECK(xseg_port(last, 0)->peer_type == 127);
	for (uint32_t i = 0; i < 128; i++) {
		CHECKF(xseg_peer_type_name(last, i, name, sizeof(name)) == 0, "entry %u", i);
		CHECKF(!strcmp(name, names[i]), "entry %u is '%s', not '%s'", i, name, names[i]);
	}
	CHECK(xseg_peer_type_name(last, 128, name, sizeof(name)) == -ERANGE && !name[0]);
	CHECK(xseg_peer_type_name(last, 0xFFFFFFFFu, name, sizeof(name)) == -ERANGE);
	/* A short buffer still gets a terminated (cut) name. */
	CHECK(xseg_peer_type_name(last, 5, name, 3) == 0 && !strcmp(name, "t0"));
	/* Another peer (type t000, entry 0) signals port 0: it joins t127's driver by the table. */
	first = join_as(&cfg, 0);
	CHECK(xseg_signal(first, 0) == 0);
	CHECKF(signals[127] == 1 && signals[NTYPES - 1] == 0, "%llu %llu",
	       (unsigned long long)signals[127], (unsigned long long)signals[NTYPES - 1]);
	CHECK(xseg_verify(first, verify_line, NULL) == 0);
	/* The 129th type: refused, naming the limit and the key to raise it. */
	CHECK(xseg_register_driver(&ops[128]) == 0);
	xs = xseg_join(cfg.type, cfg.name, names[128], NULL, NULL, &e, err, sizeof(err));
	CHECKF(!xs && e == -ENOSPC, "join as the 129th type: %p %d %s", (void *)xs, e, err);
	CHECKF(strstr(err, "peer-type table is full") && strstr(err, "peer_types=128") &&
	       strstr(err, "larger peer_types=") && strstr(err, "up to 128"), "%s", err);
	printf("  129th type: %s\n", err);
	CHECK(xseg_unregister_driver(&ops[128]) == 0);
	/* Known types still join. */
	xs = tx_join(&cfg, names[0]);
	CHECK(xseg_leave(xs) == 0);
	CHECK(xseg_leave_port(last, 0) == 0);
	CHECK(xseg_leave(last) == 0);
	CHECK(xseg_unregister_driver(&ops[127]) == 0);
	done_with(first, 0);
}

static void test_one_type(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:peer_types=1");
	struct xseg *xs, *again;
	char name[XSEG_TYPE_LEN];
	int e = 0;

	xs = tx_join(&cfg, "posixfd");
	CHECK(xseg_peer_type_count(xs) == 1);
	CHECK(xseg_peer_type_name(xs, 0, name, sizeof(name)) == 0 && !strcmp(name, "posixfd"));
	CHECK(xseg_peer_type_name(xs, 1, name, sizeof(name)) == -ERANGE);
	CHECK(xseg_bind_port(xs, 0, 0) == 0);
	again = tx_join(&cfg, "posixfd");	/* the same type: the same entry */
	CHECK(xseg_signal(again, 0) == 0);
	CHECK(xseg_leave(again) == 0);
	CHECK(!xseg_join(cfg.type, cfg.name, "futex", NULL, NULL, &e, err, sizeof(err)));
	CHECKF(e == -ENOSPC && strstr(err, "peer_types=1 ") && strstr(err, "larger peer_types="), "%d %s",
	       e, err);
	CHECK(xseg_leave_port(xs, 0) == 0);
	CHECK(xseg_leave(xs) == 0);
}

static void test_default(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12");
	struct xseg_config c128 = cfg;
	struct xseg *xs;
	char name[XSEG_TYPE_LEN];

	CHECK(cfg.peer_types == XSEG_PEER_TYPES_DEFAULT);
	xs = tx_join(&cfg, "posixfd");
	CHECK(xseg_peer_type_count(xs) == 16);
	CHECK(xseg_peer_type_name(xs, 0, name, sizeof(name)) == 0 && !strcmp(name, "posixfd"));
	CHECK(xseg_peer_type_name(xs, 1, name, sizeof(name)) == -ENOENT && !name[0]);
	CHECK(xseg_peer_type_name(xs, 16, name, sizeof(name)) == -ERANGE);
	CHECK(xseg_peer_type_name(xs, 0, NULL, 16) == -EINVAL && xseg_peer_type_name(NULL, 0, name, 16) == -EINVAL);
	CHECK(xseg_peer_type_count(NULL) == 0);
	/* The table takes 32 bytes an entry: 128 entries cost (128 - 16) * 32 more, rounded to a page. */
	c128.peer_types = 128;
	CHECKF(xseg_layout_size(&c128) >= xseg_layout_size(&cfg) + 112 * 32, "%llu %llu",
	       (unsigned long long)xseg_layout_size(&c128), (unsigned long long)xseg_layout_size(&cfg));
	CHECK(xseg_leave(xs) == 0);
}

/* Run xseg-tool @cmd on @cfg's segment into @out; its exit status. */
static int tool_run(const struct xseg_config *cfg, const char *cmd, char *out, size_t size)
{
	char tool[4096], line[4400];
	size_t n;
	FILE *f;

	CHECKF(tx_bin_path("xseg-tool", tool, sizeof(tool)), "xseg-tool is not built (make user)");
	snprintf(line, sizeof(line), "'%s' %s '%s:%s' 2>&1", tool, cmd, cfg->type, cfg->name);
	f = popen(line, "r");
	CHECK(f);
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	return pclose(f);
}

/*
 * xseg-tool status on a segment of many types: only the named entries, eight to a
 * line after a count; the tool looks as an observer, so it adds no entry of its
 * own, and it still looks once the table is full (a tool that joins as a peer,
 * recover, is refused there, naming the table).
 */
static void test_status_many(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:peer_types=48");
	char out[8192], *p;
	int lines = 0;

	for (int i = 0; i < 39; i++)
		done_with(join_as(&cfg, i), i);
	CHECKF(tool_run(&cfg, "status", out, sizeof(out)) == 0, "%s", out);
	printf("%s", out);
	p = strstr(out, "types     39 of 48 entries named\n");
	CHECKF(p, "%s", out);
	CHECKF(strstr(p, "\n          0 t000, 1 t001, 2 t002, 3 t003, 4 t004, 5 t005, 6 t006, 7 t007\n"), "%s", p);
	CHECKF(strstr(p, ", 37 t037, 38 t038\n"), "%s", p);
	for (p = strchr(p, '\n'); p && !strncmp(p, "\n          ", 11); p = strchr(p + 1, '\n'))
		lines++;
	CHECKF(lines == 5, "%d lines of names", lines);

	for (int i = 39; i < 48; i++)
		done_with(join_as(&cfg, i), i);
	CHECKF(tool_run(&cfg, "status", out, sizeof(out)) == 0, "status of a full table: %s", out);
	CHECKF(strstr(out, "types     48 of 48 entries named\n") && strstr(out, ", 47 t047\n"), "%s", out);
	CHECKF(tool_run(&cfg, "verify", out, sizeof(out)) == 0 && strstr(out, "0 problems"), "%s", out);
	CHECKF(tool_run(&cfg, "recover", out, sizeof(out)) != 0 && strstr(out, "peer-type table is full"), "%s", out);
}

/*
 * A join with no peer type (an observer): reads a segment whose table is
 * full, takes no entry, is not counted as attached, cannot bind, and its
 * leave does not remove an autorm segment that no peer holds.
 */
static void test_observer(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:peer_types=1:autorm=1");
	struct xseg *peer, *obs, *obs2;
	char name[XSEG_TYPE_LEN];
	uint64_t attached;
	int e = 0;

	peer = join_as(&cfg, 0);
	CHECK(xseg_bind_port(peer, 0, 0) == 0);
	attached = __atomic_load_n(&xseg_header(peer)->attached, __ATOMIC_ACQUIRE);
	/* The table is full: another type is refused, an observer is not. */
	CHECK(!xseg_join(cfg.type, cfg.name, "futex", NULL, NULL, &e, err, sizeof(err)) && e == -ENOSPC);
	obs = xseg_join(cfg.type, cfg.name, NULL, NULL, NULL, &e, err, sizeof(err));
	CHECKF(obs && e == 0, "observer join: %d %s", e, err);
	CHECK(__atomic_load_n(&xseg_header(obs)->attached, __ATOMIC_ACQUIRE) == attached);
	CHECK(xseg_peer_type_count(obs) == 1);
	CHECK(xseg_peer_type_name(obs, 0, name, sizeof(name)) == 0 && !strcmp(name, names[0]));
	CHECK(xseg_bind_port(obs, 1, 0) == -EPERM && xseg_bind_port(obs, XSEG_ANY_PORT, 0) == -EPERM);
	CHECK(xseg_verify(obs, verify_line, NULL) == 0);
	CHECK(xseg_leave(obs) == 0);

	/* The last peer leaves (autorm): the segment goes, an observer's leave does not decide it. */
	obs2 = xseg_join(cfg.type, cfg.name, NULL, NULL, NULL, &e, err, sizeof(err));
	CHECKF(obs2, "%d %s", e, err);
	CHECK(xseg_leave_port(peer, 0) == 0);
	done_with(peer, 0);
	CHECK(xseg_leave(obs2) == 0);
	CHECK(!xseg_join(cfg.type, cfg.name, NULL, NULL, NULL, &e, err, sizeof(err)) && e == -ENOENT);
}

/* Create-or-open: a spec that writes another peer_types= is refused, one that writes none is not. */
static void test_mismatch(void)
{
	struct xseg_config cfg = tx_create("posix:%s:4:8:4K:0:12:peer_types=32");
	struct xseg_config want;
	struct xseg *xs = tx_join(&cfg, "posixfd");
	char spec[300];
	uint32_t given = 0;

	snprintf(spec, sizeof(spec), "posix:%s:peer_types=64", cfg.name);
	CHECK(xseg_parse_spec_given(spec, &want, &given, err, sizeof(err)) == 0);
	CHECK(given & XSEG_GIVEN_PEER_TYPES);
	CHECK(xseg_config_mismatch(xseg_config(xs), &want, given, err, sizeof(err)) == -EEXIST);
	CHECKF(strstr(err, "exists with peer_types=32; the spec asks 64"), "%s", err);
	snprintf(spec, sizeof(spec), "posix:%s:peer_types=32", cfg.name);
	CHECK(xseg_parse_spec_given(spec, &want, &given, err, sizeof(err)) == 0);
	CHECK(xseg_config_mismatch(xseg_config(xs), &want, given, err, sizeof(err)) == 0);
	snprintf(spec, sizeof(spec), "posix:%s", cfg.name);	/* the default, not written: matches */
	CHECK(xseg_parse_spec_given(spec, &want, &given, err, sizeof(err)) == 0);
	CHECK(!(given & XSEG_GIVEN_PEER_TYPES));
	CHECK(xseg_config_mismatch(xseg_config(xs), &want, given, err, sizeof(err)) == 0);
	snprintf(spec, sizeof(spec), "posix:%s:peer_types=16", cfg.name);	/* the default, written */
	CHECK(xseg_parse_spec_given(spec, &want, &given, err, sizeof(err)) == 0);
	CHECK(xseg_config_mismatch(xseg_config(xs), &want, given, err, sizeof(err)) == -EEXIST);
	CHECKF(strstr(err, "peer_types=32; the spec asks 16"), "%s", err);
	CHECK(xseg_leave(xs) == 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	xt_watchdog(120);
	make_drivers();
	RUN(test_default);
	RUN(test_one_type);
	RUN(test_mismatch);
	RUN(test_status_many);
	RUN(test_observer);
	RUN(test_128_types);
	return 0;
}
