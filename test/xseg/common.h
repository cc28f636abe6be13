/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/xseg/common.h - helpers of the core tests: unique segment names that
 * are removed at exit (even when a CHECK fails), join/bind shortcuts.
 */
#ifndef TEST_XSEG_COMMON_H
#define TEST_XSEG_COMMON_H

#include <sys/mman.h>
#include "xtest.h"
#include "xseg/xseg.h"

#define TX_MAX 512
static char tx_names[TX_MAX][XSEG_NAME_LEN];
static char tx_types[TX_MAX][XSEG_TYPE_LEN];
static int tx_count;
static pid_t tx_owner;

/*
 * Remove a segment this test created (tx_create: exclusive, a name with our
 * run's xt_tag()), even one a scenario corrupted on purpose, which destroy rightly
 * refuses: then a posix one is removed by its shm name.
 */
static inline void tx_remove(const char *type, const char *name)
{
	char shm[XSEG_NAME_LEN + 8];
	int r = xseg_destroy_name(type, name);

	if (r && r != -ENOENT && !strcmp(type, "posix")) {
		snprintf(shm, sizeof(shm), "/xseg.%s", name);
		shm_unlink(shm);
	}
}

static void tx_cleanup(void)
{
	if (getpid() != tx_owner)
		return;
	for (int i = 0; i < tx_count; i++)
		tx_remove(tx_types[i], tx_names[i]);
}

/* Create a segment from @spec_fmt (with %s for a unique name). Returns its config. */
static inline struct xseg_config tx_create(const char *spec_fmt)
{
	static int seq;
	char name[64], spec[256], err[256] = "";
	struct xseg_config cfg;
	int r;

	CHECKF(tx_count < TX_MAX, "more than %d segments: raise TX_MAX", TX_MAX);
	snprintf(name, sizeof(name), "xt%s-%d", xt_tag(), seq++);
	snprintf(spec, sizeof(spec), spec_fmt, name);
	r = xseg_parse_spec(spec, &cfg, err, sizeof(err));
	CHECKF(r == 0, "parse '%s': %s", spec, err);
	r = xseg_create(&cfg, err, sizeof(err));
	CHECKF(r == 0, "create '%s': %d %s", spec, r, err);
	if (!tx_owner) {
		tx_owner = getpid();
		atexit(tx_cleanup);
	}
	{
		snprintf(tx_names[tx_count], XSEG_NAME_LEN, "%s", cfg.name);
		snprintf(tx_types[tx_count], XSEG_TYPE_LEN, "%s", cfg.type);
		tx_count++;
	}
	return cfg;
}

static inline struct xseg *tx_join(const struct xseg_config *cfg, const char *driver)
{
	char err[256] = "";
	int e = 0;
	struct xseg *xs = xseg_join(cfg->type, cfg->name, driver, NULL, NULL, &e, err, sizeof(err));

	CHECKF(xs, "join %s with %s: %d %s", cfg->name, driver, e, err);
	return xs;
}

/* Count requests in the free queue (quiescent segments only). */
static inline uint32_t tx_free_requests(struct xseg *xs)
{
	struct xseg_header *h = xseg_header(xs);
	struct xq q;

	CHECK(xq_attach(&q, (char *)xseg_base(xs) + h->free_queue_off, h->queue_size,
			h->cfg.nr_requests) == 0);
	return xq_count(&q);
}

/*
 * lib/user[-san]/test-tools/@name (a test tool: xseg-corrupt) or
 * lib/user[-san]/bin/@name (a peer) next to this test binary
 * (lib/.../test/xseg/x): false if not built. The test tools first, so that a
 * stale program of the same name left in bin/ by an older build cannot
 * shadow the tool built now.
 */
static inline bool tx_bin_path(const char *name, char *path, size_t len)
{
	char self[2048];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return false;
	self[n] = 0;
	for (int i = 0; i < 3; i++) {
		char *p = strrchr(self, '/');

		if (p)
			*p = 0;
	}
	snprintf(path, len, "%s/test-tools/%s", self, name);
	if (access(path, X_OK) == 0)
		return true;
	snprintf(path, len, "%s/bin/%s", self, name);
	return access(path, X_OK) == 0;
}

static inline void tx_print_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "verify: %s\n", line);
}

#endif
