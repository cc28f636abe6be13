/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/xseg/xsb.h - the xseg request benchmark: what the harness (main.c)
 * shares with the two processes of a run (xs.c: xseg client and server;
 * raw.c: the raw wake-up mechanisms it is compared with).
 *
 * Every run forks a server and a client. They meet in a struct xsb_run that
 * the harness maps MAP_SHARED before the fork: configuration, a start
 * barrier, the raw mechanisms' shared words and descriptors, and the results
 * (one latency sample per round trip, or a completion count).
 */
#ifndef BENCH_XSEG_XSB_H
#define BENCH_XSEG_XSB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define XSB_MAX_SAMPLES	200000u		/* round trips recorded per run */
#define XSB_MAX_DEPTH	128u		/* requests in flight (throughput) */
#define XSB_WAIT_US	200000u		/* xseg_wait / raw wait timeout: 200 ms */
#define XSB_NO_REPLY_NS	1000000000ull	/* no reply for this long: FAIL */
#define XSB_FLOOR_SLOTS	256u		/* floor rings: room for XSB_MAX_DEPTH + the close record */
#define XSB_FLOOR_BYTES	(20u << 10)	/* per ring: rte_ring_get_memsize_elem(64, 256) fits */

enum xsb_role { XSB_SERVER, XSB_CLIENT };

/* How a side waits for work. */
enum xsb_wait {
	/*
	 * Sleep at once, no polling. xseg: the race-free sleep itself
	 * (xseg_prepare_wait -> accept/receive -> xseg_wait_signal), with
	 * xseg_set_spin_us(0); raw: the blocking syscall.
	 */
	XSB_SLEEP,
	/* xseg: xseg_wait() with xseg_set_spin_us(0) (it still polls a little first). */
	XSB_WAIT0,
	/* xseg: xseg_wait() with the default spin (XSEG_SPIN_US_DEFAULT). */
	XSB_ADAPTIVE,
	/* Poll without ever sleeping. */
	XSB_BUSY,
};

struct xsb_run;

struct xsb_mech {
	const char *key;	/* JSON key */
	const char *label;	/* table row */
	const char *driver;	/* xseg peer type, or NULL for a raw mechanism */
	enum xsb_wait wait;
	int sigio_blocked;	/* xseg posix: keep SIGIO blocked for the whole run */
	int no_timing;		/* xseg: bind both ports with XSEG_PORT_NO_TIMING */
	/* Each runs in its own process and returns normally when the run is over. */
	void (*server)(struct xsb_run *run);
	void (*client)(struct xsb_run *run);
};

/* Lives in a MAP_SHARED mapping, one for the whole invocation, reset per run. */
struct xsb_run {
	/* Configuration, written by the harness before the fork. */
	const struct xsb_mech *mech;
	char segname[64];		/* the posix segment */
	uint32_t warmup;		/* round trips run before the first sample */
	uint32_t rounds;		/* round trips to record (latency) */
	uint32_t depth;			/* requests in flight; 0 = latency run */
	uint64_t max_ns;		/* a run ends after this long (samples so far count) */
	int fds[4];			/* raw: pipe / eventfd descriptors, made per run */

	/* Synchronisation. */
	pthread_barrier_t start;	/* process-shared, 2 */
	int32_t pid[2];			/* by role */
	int stop;			/* the client is done (atomic) */
	uint32_t progress;		/* round trips done, for the alarm message */

	/* The raw mechanisms' words, one cache line each. */
	_Alignas(64) uint32_t req_word;
	_Alignas(64) uint32_t rep_word;
	_Alignas(64) char err[2][256];	/* by role: why a child failed */
	_Alignas(128) unsigned char floor_mem[2][XSB_FLOOR_BYTES];	/* floor.c: request and reply rings */

	/* Results, written by the client. */
	uint64_t t_first, t_last;	/* latency: start of the first sample, end of the last */
	uint64_t elapsed_ns;		/* throughput: the measured time ... */
	uint64_t completed;		/* ... and the replies received in it */
	uint32_t nsamples;
	uint32_t samples[XSB_MAX_SAMPLES];	/* ns per round trip */
};

/* Clock (CLOCK_MONOTONIC) in ns. */
uint64_t xsb_now_ns(void);

/* In a child: record the message in run->err[role], print it, _exit(1). */
void xsb_fail(struct xsb_run *run, int role, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* Meet the other process; returns when both are ready. */
void xsb_meet(struct xsb_run *run, int role);

/* Client side of a latency run: store a sample, say whether the run goes on. */
static inline int xsb_record(struct xsb_run *run, uint32_t i, uint64_t t0, uint64_t t1,
			     uint64_t start)
{
	__atomic_store_n(&run->progress, i + 1, __ATOMIC_RELAXED);
	if (i < run->warmup)
		return 1;
	if (!run->nsamples)
		run->t_first = t0;
	run->t_last = t1;
	run->samples[run->nsamples++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
	return run->nsamples < run->rounds && t1 - start < run->max_ns;
}

static inline void xsb_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
/* scale.c: how cost grows (-p g) */
#include <stdio.h>
void xsb_scale(unsigned reps, double tsecs, int verbose, int pinned);
void xsb_scale_print(void);
void xsb_scale_json(FILE *f);
void xsb_scale_cleanup(void);

#endif
}

static inline int xsb_stopped(struct xsb_run *run)
{
	return __atomic_load_n(&run->stop, __ATOMIC_ACQUIRE);
}

/* xs.c */
void xsb_xseg_server(struct xsb_run *run);
void xsb_xseg_client(struct xsb_run *run);

/* floor.c */
int xsb_floor_init(struct xsb_run *run, char *err, size_t errlen);
void xsb_floor_server(struct xsb_run *run);
void xsb_floor_client(struct xsb_run *run);

/* raw.c */
void xsb_pipe_server(struct xsb_run *run);
void xsb_pipe_client(struct xsb_run *run);
void xsb_pipe_poll_server(struct xsb_run *run);
void xsb_pipe_poll_client(struct xsb_run *run);
void xsb_eventfd_server(struct xsb_run *run);
void xsb_eventfd_client(struct xsb_run *run);
void xsb_futex_server(struct xsb_run *run);
void xsb_futex_client(struct xsb_run *run);
void xsb_sigio_server(struct xsb_run *run);
void xsb_sigio_client(struct xsb_run *run);
void xsb_spin_server(struct xsb_run *run);
void xsb_spin_client(struct xsb_run *run);

/* scale.c: how cost grows (-p g) */
#include <stdio.h>
void xsb_scale(unsigned reps, double tsecs, int verbose, int pinned);
void xsb_scale_print(void);
void xsb_scale_json(FILE *f);
void xsb_scale_cleanup(void);

#endif
