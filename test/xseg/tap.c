/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: `xseg-tool tap` between a client and patternd: it binds
 * port 2, forwards what comes to it on to port 1 and relays the replies,
 * printing one line per request (serial, op, target, offset, size, client,
 * result), so the client gets patternd's data through it; with -n it stops
 * after that many replies and exits 0. A tap whose destination nobody bound
 * fails each request back (ENOENT) with a line saying so, and SIGTERM stops
 * it. Without a built xseg-tool it skips (a failure under CI=true).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include "procs.h"

static char tool[2200], outpath[64];
static pid_t tap_pid, main_pid;

/* Even when a CHECK fails: no tap left running, no output file left. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	if (tap_pid > 0) {
		kill(tap_pid, SIGKILL);
		waitpid(tap_pid, NULL, 0);
	}
	if (outpath[0])
		unlink(outpath);
}

/* Start `xseg-tool tap SPEC -p 2 --to DST [-n N]`, its stdout in outpath. */
static pid_t start_tap(const struct xseg_config *cfg, const char *dst, const char *n)
{
	char spec[256];
	pid_t pid;

	snprintf(spec, sizeof(spec), "%s:%s", cfg->type, cfg->name);
	fflush(stdout);
	pid = xt_fork();
	if (pid == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		if (n)
			execl(tool, "xseg-tool", "tap", spec, "-p", "2", "--to", dst, "-n", n,
			      (char *)NULL);
		else
			execl(tool, "xseg-tool", "tap", spec, "-p", "2", "--to", dst, (char *)NULL);
		_exit(127);
	}
	tap_pid = pid;
	return pid;
}

static int reap(pid_t pid)
{
	int st = 0;

	for (int i = 0; i < 20000; i++) {	/* hang guard only */
		if (waitpid(pid, &st, WNOHANG) == pid) {
			tap_pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static void read_out(char *out, size_t len)
{
	FILE *f = fopen(outpath, "r");
	size_t n = f ? fread(out, 1, len - 1, f) : 0;

	out[n] = 0;
	if (f)
		fclose(f);
}

/* Submit one READ of @size at @off to port 2 from port 0; wait for it; its error. */
static int one_read(struct xseg *xs, uint64_t off, uint64_t size, uint64_t *serviced)
{
	struct xseg_request *r = xseg_get_request(xs, 0), *got = NULL;
	int e;

	CHECK(r && xseg_prep_request(xs, r, "tapped", 6, size) == 0);
	r->op = X_READ;
	r->offset = off;
	r->size = size;
	CHECK(xseg_submit(xs, r, 2) == 2 && xseg_signal(xs, 2) == 0);
	for (int i = 0; i < 200 && !(got = xseg_receive(xs, 0)); i++)
		xseg_wait(xs, 0, 100000);	/* hang guard: 20 s */
	CHECK(got == r);
	e = (__atomic_load_n(&got->state, __ATOMIC_ACQUIRE) & XS_FAILED) ? got->error : 0;
	*serviced = got->serviced;
	CHECK(xseg_put_request(xs, got) == 0);
	return e;
}

int main(void)
{
	struct xseg_config cfg;
	struct xseg *xs;
	char out[8192], want[128];
	uint64_t sv = 0;
	pid_t srv, tap;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!tx_bin_path("xseg-tool", tool, sizeof(tool))) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true")) {
			fprintf(stderr, "FAIL: xseg-tool is not built; CI=true does not allow a skip\n");
			return 1;
		}
		xt_skip("xseg-tool is not built");
	}
	main_pid = getpid();
	snprintf(outpath, sizeof(outpath), "/tmp/xseg-tap-%d.out", (int)getpid());
	atexit(cleanup);
	cfg = tx_create("posix:%s:8:64:4K:0:12:dynports=8");
	srv = tx_patternd(&cfg, 1, "futex", NULL);
	xs = tx_join(&cfg, "futex");
	CHECK(xseg_bind_port(xs, 0, 0) == 0);
	tx_wait_bound(xs, 1);

	/* Through the tap to patternd: 4 reads, 4 lines, then it exits. */
	tap = start_tap(&cfg, "1", "4");
	tx_wait_bound(xs, 2);
	for (uint64_t i = 0; i < 4; i++) {
		CHECK(one_read(xs, i * 4096, 512, &sv) == 0);
		CHECK(sv == 512);
	}
	CHECK(reap(tap) == 0);
	read_out(out, sizeof(out));
	for (uint64_t i = 0; i < 4; i++) {
		snprintf(want, sizeof(want), " read tapped offset %" PRIu64 " size 512 from 0 via 2: "
			 "ok serviced 512", i * 4096);
		CHECKF(strstr(out, want), "no '%s' in:\n%s", want, out);
	}
	CHECK(xseg_port(xs, 2)->cnt.accepted >= 4);	/* really went through the tap */

	/* Nobody on port 3: failed back, said so; SIGTERM stops the tap. */
	tap = start_tap(&cfg, "3", NULL);
	tx_wait_bound(xs, 2);
	CHECK(one_read(xs, 0, 512, &sv) == ENOENT);
	CHECK(kill(tap, SIGTERM) == 0 && reap(tap) == 0);
	read_out(out, sizeof(out));
	CHECKF(strstr(out, "request to port 2 not forwarded to 3: ENOENT"), "%s", out);

	tx_stop(srv);
	xseg_leave(xs);
	printf("ok\n");
	return 0;
}
