/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drivers/user/posixfd.c - the "posixfd" signaling driver: a named FIFO per
 * port, so that an event loop (libuv uv_poll, epoll) can wait on a port.
 *
 * Files: <base>/<segdir>/<portno>, a FIFO of mode 0600, where <base> is
 * $XSEG_FIFO_DIR (an absolute path) or /tmp/xseg-<euid>, and <segdir> is
 * "<segtype>.<id>": the segment type's name (every byte outside
 * [A-Za-z0-9._-], and a leading '.', written as %XX) and the segment's
 * identity in 16 hex digits (struct xseg_seg_ident: the same in every
 * process, different for every segment created). Not the name: names of
 * different types collide (posix:5, memfd:5, sysv:5), a memfd's name is a
 * descriptor number that differs between processes, and a segment
 * recreated under a name must not meet its predecessor's FIFOs. Both
 * directories are created 0700; an
 * existing one must be a real directory (not a symlink) owned by our euid
 * with no group/other bits, or join() fails with -EPERM.
 *
 * The owner creates the FIFO at bind (a stale one is unlinked first) and
 * keeps it open O_RDWR|O_NONBLOCK: it never reads EOF and never blocks.
 * wait_signal() polls it and drains it. A signaler writes one byte, only if
 * the signal area says a thread waits (or XSEG_FD_ALWAYS: an event loop
 * polls it), and at most one byte per wait (the pending flag), so with
 * nobody waiting a signal is a fence and two loads: no syscall.
 *
 * The signaler keeps its descriptor to each FIFO (at most MAX_CACHED_FDS,
 * then it opens and closes per signal) and reopens it when the area's FIFO
 * identity changes (a new bind). It opens the FIFO O_RDWR, not O_WRONLY:
 * a write-only descriptor would raise SIGPIPE in the signaler once the owner
 * is gone; with O_RDWR the byte just waits in a FIFO nobody reads.
 *
 * Limits: signaler and owner must have the same euid (the directory is
 * 0700). unbind() must not race with a wait on the same port.
 */
/*
 * GCC's ThreadSanitizer cannot model fences and refuses them (-Wtsan, an
 * error under -Werror). Our fences order atomics against atomics (the
 * waiter's announcement against the signaler's check), never plain data,
 * so TSan loses nothing it could check: silence the warning in TSan builds.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "../../xseg/xseg.h"
#include "drivers.h"
#include "posixfd.h"

#define MAX_CACHED_FDS	256	/* signal-side descriptors kept open per process */
#define SEGDIR_MAX	200	/* bytes of the escaped segment name before ~hash */

struct fd_ent {
	uint32_t port;
	uint32_t used;
	int rfd;		/* bound here: the owner's O_RDWR descriptor, else -1 */
	int wfd;		/* cached signal-side descriptor, else -1 */
	uint64_t fifo;		/* the area's FIFO identity @wfd was opened for */
	uint64_t dev, ino;	/* of the FIFO bound here (unlink only our own) */
};

struct posixfd_priv {
	struct xseg_sig_stats st;	/* first member: see signal_area.h */
	uint32_t euid;
	int segfd;			/* <base>/<segdir>, verified */
	pthread_rwlock_t lock;		/* protects the table and the descriptors in it */
	struct fd_ent *tab;		/* open addressing by port, never shrinks */
	uint32_t cap, count, nwfd;
};

#define W_READABLE 1u	/* struct xseg_armed.flags: sleep saw the FIFO readable */

/* ------------------------------------------------------------ directories */

static int plain_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/*
 * The directory name of segment @id (see the top of the file) into @out
 * (>= 80 bytes): the type, escaped, a '.', the identity in 16 hex digits.
 */
static int seg_dirname(const struct xseg_seg_ident *id, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s;
	size_t n = 0;

	if (!id || !id->type || !*id->type || strlen(id->type) >= XSEG_TYPE_LEN || !id->id)
		return -EINVAL;
	s = (const unsigned char *)id->type;
	for (size_t i = 0; s[i]; i++) {
		if (plain_byte(s[i]) && !(i == 0 && s[i] == '.')) {
			out[n++] = (char)s[i];
		} else {
			out[n++] = '%';
			out[n++] = hex[s[i] >> 4];
			out[n++] = hex[s[i] & 15];
		}
	}
	out[n++] = '.';
	for (int k = 60; k >= 0; k -= 4)
		out[n++] = hex[(id->id >> k) & 15];
	out[n] = 0;
	return 0;
}

/*
 * Open directory @name under @at, creating it 0700 if @create, and verify
 * it: a directory (not a symlink) owned by @euid with no group/other bits.
 * Returns the descriptor or -errno (-EPERM when verification fails).
 */
static int open_dir(int at, const char *name, uint32_t euid, int create)
{
	struct stat st;
	int fd, made = 0;

	if (create) {
		if (mkdirat(at, name, 0700) == 0)
			made = 1;
		else if (errno != EEXIST)
			return -errno;
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	/* Ours and fresh: undo what the umask took from 0700. */
	if (made && st.st_uid == euid && (st.st_mode & 07777) != 0700 && fchmod(fd, 0700) == 0)
		st.st_mode = (st.st_mode & ~07777u) | 0700;
	if (!S_ISDIR(st.st_mode) || st.st_uid != euid || (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* Open (and with @create make) <base> and <base>/<segdir>; returns the latter. */
static int open_segdir(const struct xseg_seg_ident *id, uint32_t euid, int create, int *basefd)
{
	char base[4096], sub[80];
	const char *env = getenv("XSEG_FIFO_DIR");
	int bfd, sfd, r;

	r = seg_dirname(id, sub);
	if (r < 0)
		return r;
	if (env && *env) {
		if (env[0] != '/')
			return -EINVAL;	/* every peer must resolve it alike */
		if (strlen(env) >= sizeof(base))
			return -ENAMETOOLONG;
		strcpy(base, env);
	} else {
		snprintf(base, sizeof(base), "/tmp/xseg-%u", euid);
	}
	bfd = open_dir(AT_FDCWD, base, euid, create);
	if (bfd < 0)
		return bfd;
	sfd = open_dir(bfd, sub, euid, create);
	if (basefd && sfd >= 0)
		*basefd = bfd;
	else
		close(bfd);
	return sfd;
}

static void fifo_name(uint32_t port, char *buf, size_t len)
{
	snprintf(buf, len, "%u", port);
}

/* ------------------------------------------------------------ the table */

static struct fd_ent *tab_find(struct posixfd_priv *pp, uint32_t port)
{
	uint32_t mask = pp->cap - 1, i = (port * 2654435761u) & mask;

	for (uint32_t k = 0; k < pp->cap; k++, i = (i + 1) & mask) {
		struct fd_ent *e = &pp->tab[i];

		if (!e->used)
			return NULL;
		if (e->port == port)
			return e;
	}
	return NULL;
}

/* Find or add @port's entry. Caller holds the write lock. NULL: no memory. */
static struct fd_ent *tab_insert(struct posixfd_priv *pp, uint32_t port)
{
	struct fd_ent *e = tab_find(pp, port);
	uint32_t mask, i;

	if (e)
		return e;
	if ((pp->count + 1) * 2 > pp->cap) {
		uint32_t ncap = pp->cap * 2;
		struct fd_ent *old = pp->tab, *nt = xseg_sys_alloc(ncap * sizeof(*nt));
		uint32_t ocap = pp->cap;

		if (!nt)
			return NULL;
		pp->tab = nt;
		pp->cap = ncap;
		for (uint32_t k = 0; k < ocap; k++) {
			if (!old[k].used)
				continue;
			mask = ncap - 1;
			for (i = (old[k].port * 2654435761u) & mask; nt[i].used; i = (i + 1) & mask)
				;
			nt[i] = old[k];
		}
		xseg_sys_free(old);
	}
	mask = pp->cap - 1;
	for (i = (port * 2654435761u) & mask; pp->tab[i].used; i = (i + 1) & mask)
		;
	e = &pp->tab[i];
	*e = (struct fd_ent){ .port = port, .used = 1, .rfd = -1, .wfd = -1 };
	pp->count++;
	return e;
}

/* The descriptor of @port if this process bound it, else -1. */
static int bound_fd(struct posixfd_priv *pp, uint32_t port)
{
	struct fd_ent *e;
	int fd;

	pthread_rwlock_rdlock(&pp->lock);
	e = tab_find(pp, port);
	fd = e ? e->rfd : -1;
	pthread_rwlock_unlock(&pp->lock);
	return fd;
}

/* ------------------------------------------------------------ signaling */

/* Open @port's FIFO for signaling: a FIFO of ours, checked before and after open. */
static int open_fifo(struct posixfd_priv *pp, uint32_t port)
{
	struct stat st, st2;
	char name[16];
	int fd;

	fifo_name(port, name, sizeof(name));
	stat_add(&pp->st.syscalls);
	if (fstatat(pp->segfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISFIFO(st.st_mode) || st.st_uid != pp->euid)
		return -EPERM;
	fd = openat(pp->segfd, name, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
		close(fd);
		return -EAGAIN;		/* replaced under us: the next signal retries */
	}
	return fd;
}

static int write_byte(struct posixfd_priv *pp, int fd)
{
	char c = 0;

	for (int i = 0; i < 4; i++) {
		stat_add(&pp->st.syscalls);
		if (write(fd, &c, 1) == 1) {
			stat_add(&pp->st.wakes);
			return 0;
		}
		if (errno == EAGAIN)
			return 0;	/* full: the reader has plenty to wake for */
		if (errno != EINTR)
			return -errno;
	}
	return -EINTR;
}

/* Write a wake-up byte to @port's FIFO (identity @fifo), opening it if need be. */
static int fifo_write(struct posixfd_priv *pp, uint32_t port, uint64_t fifo)
{
	struct fd_ent *e;
	int fd = -1, r, transient = 0;

	pthread_rwlock_rdlock(&pp->lock);
	e = tab_find(pp, port);
	if (e && e->rfd >= 0)
		fd = e->rfd;		/* bound by this process: write to our own FIFO */
	else if (e && e->wfd >= 0 && e->fifo == fifo)
		fd = e->wfd;
	if (fd >= 0) {
		r = write_byte(pp, fd);
		pthread_rwlock_unlock(&pp->lock);
		return r;
	}
	pthread_rwlock_unlock(&pp->lock);

	pthread_rwlock_wrlock(&pp->lock);
	e = tab_insert(pp, port);
	if (!e) {
		pthread_rwlock_unlock(&pp->lock);
		return -ENOMEM;
	}
	if (e->rfd >= 0) {
		fd = e->rfd;
	} else if (e->wfd >= 0 && e->fifo == fifo) {
		fd = e->wfd;
	} else {
		if (e->wfd >= 0) {	/* the owner bound a new FIFO */
			close(e->wfd);
			e->wfd = -1;
			pp->nwfd--;
		}
		fd = open_fifo(pp, port);
		if (fd < 0) {
			pthread_rwlock_unlock(&pp->lock);
			return fd;
		}
		if (pp->nwfd < MAX_CACHED_FDS) {
			e->wfd = fd;
			e->fifo = fifo;
			pp->nwfd++;
		} else {
			transient = 1;
		}
	}
	r = write_byte(pp, fd);
	if (transient)
		close(fd);
	pthread_rwlock_unlock(&pp->lock);
	return r;
}

/*
 * xseg_posixfd_drain - see posixfd.h. Bounded: at most 64 reads; a FIFO
 * refilled faster than that is reported drained (the next poll wakes again).
 */
int xseg_posixfd_drain(int fd)
{
	char buf[256];
	int total = 0;

	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? total : -errno;
		total += (int)n;
		if ((size_t)n < sizeof(buf))
			break;		/* short read: the FIFO is empty */
	}
	return total;
}

/* xseg_posixfd_set_always - see posixfd.h. */
int xseg_posixfd_set_always(struct xseg *xs, uint32_t portno, int on)
{
	struct xseg_sig_posixfd *a = xseg_port_signal_area(xs, portno);

	if (!a)
		return -EINVAL;
	/* seq_cst RMW: a signaler whose fence comes after this sees the flag and writes. */
	if (on)
		__atomic_fetch_or(&a->flags, XSEG_FD_ALWAYS, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&a->flags, ~XSEG_FD_ALWAYS, __ATOMIC_SEQ_CST);
	return 0;
}

/* xseg_posixfd_cleanup - see posixfd.h. */
int xseg_posixfd_cleanup(const struct xseg_seg_ident *id)
{
	uint32_t euid = (uint32_t)geteuid();
	char sub[80];
	struct dirent *de;
	int bfd = -1, sfd, dfd, r;
	DIR *d;

	r = seg_dirname(id, sub);
	if (r < 0)
		return r;
	sfd = open_segdir(id, euid, 0, &bfd);
	if (sfd == -ENOENT)
		return 0;
	if (sfd < 0)
		return sfd;
	dfd = dup(sfd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		r = -errno;
		if (dfd >= 0)
			close(dfd);
		goto out;
	}
	for (int i = 0; i < (1 << 20) && (de = readdir(d)); i++) {
		struct stat st;
		const char *c = de->d_name;

		while (*c >= '0' && *c <= '9')
			c++;
		if (c == de->d_name || *c)
			continue;	/* not a port number */
		if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode))
			unlinkat(sfd, de->d_name, 0);
	}
	closedir(d);
	r = unlinkat(bfd, sub, AT_REMOVEDIR) < 0 ? -errno : 0;
out:
	close(sfd);
	close(bfd);
	return r;
}

/* ------------------------------------------------------------ the driver */

static int posixfd_join(struct xseg *xs, void **priv)
{
	struct posixfd_priv *pp = xseg_sys_alloc(sizeof(*pp));
	struct xseg_seg_ident id;
	int r;

	if (!pp)
		return -ENOMEM;
	pp->euid = (uint32_t)geteuid();
	pp->cap = 16;
	pp->tab = xseg_sys_alloc(pp->cap * sizeof(*pp->tab));
	if (!pp->tab) {
		xseg_sys_free(pp);
		return -ENOMEM;
	}
	xseg_seg_ident(xs, &id);
	r = open_segdir(&id, pp->euid, 1, NULL);
	if (r < 0 || pthread_rwlock_init(&pp->lock, NULL) != 0) {
		if (r >= 0)
			close(r);
		xseg_sys_free(pp->tab);
		xseg_sys_free(pp);
		return r < 0 ? r : -ENOMEM;
	}
	pp->segfd = r;
	*priv = pp;
	return 0;
}

/* Forget the FIFO bound at @e: area first, then the file, then the descriptor. */
static void unbind_locked(struct posixfd_priv *pp, struct xseg_sig_posixfd *a, struct fd_ent *e)
{
	struct stat st;
	char name[16];

	if (a) {
		/* Release: a signaler that reads 0 stops writing; the rest is reset for the next owner. */
		xq_store_release(&a->fifo, 0);
		xq_store_relaxed(&a->flags, 0);
		xq_store_relaxed(&a->waiting, 0);
		xq_store_relaxed(&a->pending, 0);
	}
	fifo_name(e->port, name, sizeof(name));
	if (fstatat(pp->segfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (uint64_t)st.st_ino == e->ino && (uint64_t)st.st_dev == e->dev)
		unlinkat(pp->segfd, name, 0);
	close(e->rfd);
	e->rfd = -1;
}

static void posixfd_leave(struct xseg *xs, void *priv)
{
	struct posixfd_priv *pp = priv;

	if (!pp)
		return;
	for (uint32_t i = 0; i < pp->cap; i++) {
		struct fd_ent *e = &pp->tab[i];

		if (!e->used)
			continue;
		if (e->rfd >= 0)
			unbind_locked(pp, xseg_port_signal_area(xs, e->port), e);
		if (e->wfd >= 0)
			close(e->wfd);
	}
	close(pp->segfd);
	pthread_rwlock_destroy(&pp->lock);
	xseg_sys_free(pp->tab);
	xseg_sys_free(pp);
}

static int posixfd_bind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct posixfd_priv *pp = priv;
	struct xseg_sig_posixfd *a = xseg_port_signal_area(xs, portno);
	struct fd_ent *e;
	struct stat st;
	uint64_t gen, id;
	char name[16];
	int fd, r = 0;

	if (!a)
		return -EINVAL;
	fifo_name(portno, name, sizeof(name));
	pthread_rwlock_wrlock(&pp->lock);
	e = tab_insert(pp, portno);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	if (e->rfd >= 0) {
		r = -EBUSY;
		goto out;
	}
	/* A stale FIFO (a dead owner's) or anything else at our name goes. */
	if (unlinkat(pp->segfd, name, 0) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if (mkfifoat(pp->segfd, name, 0600) < 0) {
		r = -errno;
		goto out;
	}
	fd = openat(pp->segfd, name, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_uid != pp->euid ||
	    fchmod(fd, 0600) < 0) {
		close(fd);
		r = -EPERM;
		goto out;
	}
	e->rfd = fd;
	e->dev = (uint64_t)st.st_dev;
	e->ino = (uint64_t)st.st_ino;
	/* acq_rel FAA: only needs to make the new identity differ from the last. */
	gen = xq_faa(&a->gen, 1) + 1;
	id = (gen << 32) ^ (uint64_t)st.st_ino;
	xq_store_relaxed(&a->waiting, 0);
	xq_store_relaxed(&a->pending, 0);
	xq_store_relaxed(&a->flags, 0);
	/* Release: a signaler that reads the new identity finds the FIFO (and the reset) in place. */
	xq_store_release(&a->fifo, id ? id : 1);
out:
	pthread_rwlock_unlock(&pp->lock);
	return r;
}

static void posixfd_unbind(struct xseg *xs, void *priv, uint32_t portno)
{
	struct posixfd_priv *pp = priv;
	struct fd_ent *e;

	pthread_rwlock_wrlock(&pp->lock);
	e = tab_find(pp, portno);
	if (e && e->rfd >= 0)
		unbind_locked(pp, xseg_port_signal_area(xs, portno), e);
	pthread_rwlock_unlock(&pp->lock);
}

static int posixfd_signal(struct xseg *xs, void *priv, uint32_t portno)
{
	struct posixfd_priv *pp = priv;
	struct xseg_sig_posixfd *a = xseg_port_signal_area(xs, portno);
	uint64_t fifo;
	int claimed = 0, r;

	if (!a)
		return -EINVAL;
	/*
	 * Full fence between the caller's enqueue and our loads of the area:
	 * a waiter that counted itself after this fence (so we may read 0
	 * and write nothing) must see the enqueue in its re-check.
	 */
	xq_fence_seq_cst();
	/* Relaxed: ordered by the fence above. */
	if (!(xq_load_relaxed(&a->flags) & XSEG_FD_ALWAYS)) {
		/* Relaxed: ordered by the fence above. */
		if (xq_load_relaxed(&a->waiting) == 0)
			return 0;
		/*
		 * acq_rel exchange: the one who turns pending 0 -> 1 writes;
		 * a waiter whose clearing exchange reads our 1 must see the
		 * caller's enqueue even if our byte was coalesced away.
		 */
		if (__atomic_exchange_n(&a->pending, 1, __ATOMIC_ACQ_REL) != 0)
			return 0;
		claimed = 1;
	}
	/* Acquire: pairs with bind's release, so the FIFO it names exists. */
	fifo = xq_load_acquire(&a->fifo);
	r = fifo ? fifo_write(pp, portno, fifo) : -ENOENT;
	if (r < 0 && claimed)
		/* Release: give the claim back so the next signal tries to write. */
		xq_store_release(&a->pending, 0);
	return r;
}

static int posixfd_arm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct xseg_sig_posixfd *a = xseg_port_signal_area(xs, w->portno);

	(void)priv;
	if (!a)
		return -EINVAL;
	xseg_sig_count_up(&a->waiting, XSEG_SIGFD_SATURATED);
	/*
	 * acq_rel exchange: clear a pending flag whose byte may never come
	 * (a signaler that died); a byte that does come is a spurious wake.
	 */
	__atomic_exchange_n(&a->pending, 0, __ATOMIC_ACQ_REL);
	/*
	 * Full fence between our count and the caller's queue re-check: a
	 * signaler whose fence came later reads the count and writes a byte.
	 */
	xq_fence_seq_cst();
	return 0;
}

static int posixfd_sleep(struct xseg *xs, void *priv, struct xseg_armed *w, uint32_t n,
			 uint64_t timeout_us)
{
	struct posixfd_priv *pp = priv;
	struct pollfd local[16], *pfd = local;
	struct timespec ts, *tsp = NULL;
	int r, quiet = timeout_us == 0;

	for (uint32_t i = 0; i < n; i++) {
		struct xseg_sig_posixfd *a = xseg_port_signal_area(xs, w[i].portno);

		if (!a)
			return -EINVAL;
		/* Acquire: a set flag means a signal landed; disarm re-reads it. */
		if (!(xq_load_relaxed(&a->flags) & XSEG_FD_ALWAYS) && xq_load_acquire(&a->pending) == 0)
			continue;
		quiet = 0;
	}
	if (quiet)
		return -ETIMEDOUT;	/* polling and nothing signaled: no syscall */
	if (n > 16) {
		pfd = xseg_sys_alloc(sizeof(*pfd) * n);
		if (!pfd)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		pfd[i] = (struct pollfd){ .fd = bound_fd(pp, w[i].portno), .events = POLLIN };
		if (pfd[i].fd < 0) {
			r = -ENOENT;	/* not bound by this process */
			goto out;
		}
	}
	if (timeout_us != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_us / 1000000u);
		ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
		tsp = &ts;
	}
	stat_add(&pp->st.syscalls);
	r = ppoll(pfd, n, tsp, NULL);
	if (r > 0) {
		for (uint32_t i = 0; i < n; i++)
			if (pfd[i].revents & POLLIN)
				w[i].flags |= W_READABLE;
		r = 0;
	} else {
		r = r == 0 ? -ETIMEDOUT : -errno;
	}
out:
	if (pfd != local)
		xseg_sys_free(pfd);
	return r;
}

/*
 * disarm: count out, clear pending; drain the FIFO if a signal landed
 * (pending was set) or sleep saw it readable. 1 if a signal landed.
 */
static int posixfd_disarm(struct xseg *xs, void *priv, struct xseg_armed *w)
{
	struct posixfd_priv *pp = priv;
	struct xseg_sig_posixfd *a = xseg_port_signal_area(xs, w->portno);
	int signaled, fd;

	if (!a)
		return 0;
	xseg_sig_count_down(&a->waiting, XSEG_SIGFD_SATURATED);
	/*
	 * acq_rel exchange: if a signal set pending (and maybe skipped its
	 * write because another had), see what it enqueued before it.
	 */
	signaled = __atomic_exchange_n(&a->pending, 0, __ATOMIC_ACQ_REL) != 0;
	if (signaled || (w->flags & W_READABLE)) {
		fd = bound_fd(pp, w->portno);
		if (fd >= 0) {
			stat_add(&pp->st.syscalls);
			xseg_posixfd_drain(fd);
		}
	}
	return signaled;
}

static int posixfd_poll_fd(struct xseg *xs, void *priv, uint32_t portno)
{
	int fd = bound_fd(priv, portno);
	int r;

	if (fd < 0)
		return -ENOENT;
	r = xseg_posixfd_set_always(xs, portno, 1);
	return r < 0 ? r : fd;
}

/*
 * xseg_driver_posixfd - the "posixfd" peer type. Called only by the core
 * (xseg/), through the callbacks above: join before anything else (it
 * creates or verifies the FIFO directory), bind before arm or poll_fd on a
 * port, and every arm ended by exactly one disarm of the same thread. signal() may be called by
 * any process of the same euid for a port any process bound.
 */
static void posixfd_destroy(const struct xseg_seg_ident *id)
{
	int r = xseg_posixfd_cleanup(id);

	if (r && r != -ENOENT)
		xseg_sys_log(XSEG_LOG_WARN, "posixfd: cannot remove the FIFOs of %s:%s: %s",
			     id->type, id->name ? id->name : "?", strerror(-r));
}

XSEG_DRIVER(posixfd) = {
	.abi_size = sizeof(struct xseg_driver_ops),
	.version = 1,
	.name = "posixfd",
	.join = posixfd_join,
	.leave = posixfd_leave,
	.bind = posixfd_bind,
	.unbind = posixfd_unbind,
	.signal = posixfd_signal,
	.poll_fd = posixfd_poll_fd,
	.destroy_ident = posixfd_destroy,
	.arm = posixfd_arm,
	.sleep = posixfd_sleep,
	.disarm = posixfd_disarm,
};
