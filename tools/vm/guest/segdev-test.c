// SPDX-License-Identifier: BSD-2-Clause
/*
 * tools/vm/guest/segdev-test.c - a static test program for /dev/segdev, run
 * in the test VM by tools/vm/scenarios/segdev.sh.
 *
 *   segdev-test create NAME SIZE       create a segment
 *   segdev-test destroy NAME           destroy it
 *   segdev-test size NAME              print its size (opens it)
 *   segdev-test put NAME OFF STRING    map it and write STRING at OFF
 *   segdev-test get NAME OFF LEN       map it and print LEN bytes at OFF ('.' for NUL)
 *   segdev-test pingpong NAME ROUNDS   two processes, each opening and mapping
 *                                      the segment itself, pass a token back
 *                                      and forth through it ROUNDS times
 *   segdev-test destroy-mapped NAME    destroy while mapped: the mapping stays
 *                                      usable, the name is gone and can be reused
 *   segdev-test bad                    malformed requests are refused with the
 *                                      documented errors
 *   segdev-test doorbell NAME PORT     ring PORT by write() and by ioctl with an
 *                                      eventfd registered for PORT; expects the
 *                                      kernel callback (segdev_echo.ko) to echo
 *                                      each ring to the eventfd
 * Exit 0 on success, 1 with a message on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sys/kernel/segdev/segdev.h"

#define DEV "/dev/segdev"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("segdev-test: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CHECK(c) do { if (!(c)) die("%s:%d: %s (errno %d %s)", __FILE__, __LINE__, #c, errno, strerror(errno)); } while (0)
/* EXPECT_ERR(call, E): call must fail with errno E. */
#define EXPECT_ERR(call, e) do { \
	errno = 0; \
	long r_ = (long)(call); \
	if (r_ != -1 || errno != (e)) \
		die("%s:%d: %s returned %ld errno %d (%s), want -1 errno %d (%s)", __FILE__, __LINE__, \
		    #call, r_, errno, strerror(errno), (e), strerror(e)); \
	} while (0)

static int dev_open(void)
{
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s", DEV, strerror(errno));
	return fd;
}

static void fill(struct segdev_req *r, const char *name, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->size = size;
}

/* Open @name on a new fd; returns the fd and its size. */
static int seg_open(const char *name, uint64_t *size)
{
	struct segdev_req r;
	int fd = dev_open();

	fill(&r, name, 0);
	if (ioctl(fd, SEGDEV_IOC_OPEN, &r))
		die("open segment '%s': %s", name, strerror(errno));
	if (size)
		*size = r.size;
	return fd;
}

static void *seg_map(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	return p;
}

static int cmd_create(const char *name, uint64_t size)
{
	struct segdev_req r;
	int fd = dev_open();

	fill(&r, name, size);
	if (ioctl(fd, SEGDEV_IOC_CREATE, &r))
		die("create '%s' (%llu bytes): %s", name, (unsigned long long)size, strerror(errno));
	close(fd);
	return 0;
}

static int cmd_destroy(const char *name)
{
	struct segdev_req r;
	int fd = dev_open();

	fill(&r, name, 0);
	if (ioctl(fd, SEGDEV_IOC_DESTROY, &r))
		die("destroy '%s': %s", name, strerror(errno));
	close(fd);
	return 0;
}

static int cmd_size(const char *name)
{
	uint64_t size, size2 = 0;
	int fd = seg_open(name, &size);

	CHECK(ioctl(fd, SEGDEV_IOC_SIZE, &size2) == 0);
	CHECK(size == size2);
	printf("%llu\n", (unsigned long long)size);
	close(fd);
	return 0;
}

static int cmd_put(const char *name, uint64_t off, const char *s)
{
	uint64_t size;
	int fd = seg_open(name, &size);
	char *p;

	if (off + strlen(s) > size)
		die("offset %llu + %zu is past the end (%llu)", (unsigned long long)off, strlen(s),
		    (unsigned long long)size);
	p = seg_map(fd, size);
	memcpy(p + off, s, strlen(s));
	munmap(p, size);
	close(fd);
	return 0;
}

static int cmd_get(const char *name, uint64_t off, uint64_t len)
{
	uint64_t size, i;
	int fd = seg_open(name, &size);
	char *p;

	if (off + len > size)
		die("range past the end");
	p = seg_map(fd, size);
	for (i = 0; i < len; i++)
		putchar(p[off + i] ? p[off + i] : '.');
	putchar('\n');
	munmap(p, size);
	close(fd);
	return 0;
}

static void spin_until(volatile uint64_t *w, uint64_t v)
{
	struct timespec t0, t;
	unsigned n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != v) {
		if (++n % 1024 == 0) {
			sched_yield();
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec > 20)
				die("timed out waiting for %llu (at %llu)", (unsigned long long)v,
				    (unsigned long long)*w);
		}
	}
}

/*
 * Two processes that each open and map the segment themselves (the child
 * execs nothing, but shares no mapping with the parent: it maps after fork).
 * Word 0 is the token: odd values are the parent's turn to see, even the
 * child's. Word 1..: a data block each side writes and the other checks.
 */
static int cmd_pingpong(const char *name, unsigned rounds)
{
	pid_t pid;
	int st;

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		uint64_t size;
		int fd = seg_open(name, &size);
		volatile uint64_t *w = seg_map(fd, size);
		unsigned i;

		for (i = 0; i < rounds; i++) {
			spin_until(&w[0], 2 * i + 1);		/* parent wrote its turn */
			if (w[8] != 0xA000 + i)
				die("child: round %u: parent data %llx", i, (unsigned long long)w[8]);
			w[16] = 0xB000 + i;
			__atomic_store_n(&w[0], 2 * i + 2, __ATOMIC_RELEASE);
		}
		_exit(0);
	} else {
		uint64_t size;
		int fd = seg_open(name, &size);
		volatile uint64_t *w = seg_map(fd, size);
		unsigned i;

		w[0] = 0;
		for (i = 0; i < rounds; i++) {
			w[8] = 0xA000 + i;
			__atomic_store_n(&w[0], 2 * i + 1, __ATOMIC_RELEASE);
			spin_until(&w[0], 2 * i + 2);
			if (w[16] != 0xB000 + i)
				die("parent: round %u: child data %llx", i, (unsigned long long)w[16]);
		}
		CHECK(waitpid(pid, &st, 0) == pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("child failed (status %#x)", st);
		munmap((void *)w, size);
		close(fd);
	}
	printf("pingpong: %u rounds between two processes\n", rounds);
	return 0;
}

static int cmd_destroy_mapped(const char *name)
{
	struct segdev_req r;
	uint64_t size;
	char *p, *q;
	int fd, fd2;

	cmd_create(name, 3 * 4096);
	fd = seg_open(name, &size);
	CHECK(size == 3 * 4096);
	p = seg_map(fd, size);
	close(fd);				/* the mapping alone keeps it */
	strcpy(p + 5000, "still here");
	cmd_destroy(name);
	CHECK(!strcmp(p + 5000, "still here"));	/* memory stays while mapped */
	p[12287] = 'x';				/* last byte still writable */
	fd = dev_open();
	fill(&r, name, 0);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_OPEN, &r), ENOENT);	/* the name is gone */
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_DESTROY, &r), ENOENT);
	close(fd);
	cmd_create(name, 4096);			/* the name can be reused: new, zeroed memory */
	fd2 = seg_open(name, &size);
	CHECK(size == 4096);
	q = seg_map(fd2, size);
	CHECK(q[0] == 0 && q[5000 % 4096] == 0);
	CHECK(q != p);
	CHECK(!strcmp(p + 5000, "still here"));	/* the old one is untouched */
	munmap(p, 3 * 4096);			/* the old memory is freed now */
	munmap(q, size);
	close(fd2);
	cmd_destroy(name);
	printf("destroy-mapped: ok\n");
	return 0;
}

/* An address that is never mapped (hidden from the compiler's checks). */
static void *volatile bad_ptr = (void *)8;

static int cmd_bad(void)
{
	struct segdev_req r;
	struct segdev_eventfd e;
	uint64_t size;
	uint32_t port = 1;
	int fd = dev_open(), fd2, efd;
	void *p;

	/* Nothing selected yet. */
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_SIZE, &size), ENXIO);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_RING, &port), ENXIO);
	EXPECT_ERR(write(fd, &port, 4), ENXIO);
	EXPECT_ERR((long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == (long)MAP_FAILED ? -1 : 0, ENXIO);
	/* Unknown ioctl, bad pointers. */
	EXPECT_ERR(ioctl(fd, _IO(SEGDEV_IOC_MAGIC, 99)), ENOTTY);
	EXPECT_ERR(ioctl(fd, 0x1234), ENOTTY);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, bad_ptr), EFAULT);
	/* Bad names. */
	fill(&r, "", 4096);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	fill(&r, "a/b", 4096);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	fill(&r, "sp ace", 4096);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	fill(&r, "x", 4096);
	memset(r.name, 'n', sizeof(r.name));	/* not NUL-terminated */
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	/* Bad sizes and fields. */
	fill(&r, "bad", 0);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	fill(&r, "bad", 4095);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	fill(&r, "bad", 1ull << 50);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	fill(&r, "bad", 4096);
	r.flags = 1;
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EINVAL);
	/* Missing segments. */
	fill(&r, "missing", 0);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_OPEN, &r), ENOENT);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_DESTROY, &r), ENOENT);
	/* A good one, then misuse of it. */
	fill(&r, "bad", 8192);
	CHECK(ioctl(fd, SEGDEV_IOC_CREATE, &r) == 0);
	EXPECT_ERR(ioctl(fd, SEGDEV_IOC_CREATE, &r), EBUSY);	/* this fd has one */
	fd2 = dev_open();
	EXPECT_ERR(ioctl(fd2, SEGDEV_IOC_CREATE, &r), EEXIST);	/* the name exists */
	CHECK(ioctl(fd2, SEGDEV_IOC_OPEN, &r) == 0 && r.size == 8192);
	EXPECT_ERR(ioctl(fd2, SEGDEV_IOC_OPEN, &r), EBUSY);	/* once per fd */
	CHECK(ioctl(fd2, SEGDEV_IOC_SIZE, &size) == 0 && size == 8192);
	EXPECT_ERR((long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd2, 0) == (long)MAP_FAILED ? -1 : 0, EINVAL);
	EXPECT_ERR((long)mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd2, 0) == (long)MAP_FAILED ? -1 : 0, EINVAL);
	EXPECT_ERR((long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, 2 * 4096) == (long)MAP_FAILED ? -1 : 0, EINVAL);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, 4096);	/* the second page alone */
	CHECK(p != MAP_FAILED);
	/* Growing the mapping is refused (VM_DONTEXPAND). */
	CHECK(mremap(p, 4096, 8192, 0) == MAP_FAILED);
	munmap(p, 4096);
	/* Doorbell with no kernel callback; bad lengths. */
	EXPECT_ERR(ioctl(fd2, SEGDEV_IOC_RING, &port), ENXIO);
	EXPECT_ERR(write(fd2, &port, 4), ENXIO);
	EXPECT_ERR(write(fd2, &port, 3), EINVAL);
	EXPECT_ERR(write(fd2, &port, 0), EINVAL);
	EXPECT_ERR(write(fd2, bad_ptr, 4), EFAULT);
	/* eventfd registration: bad port, not an eventfd, bad fd. */
	efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	e.port = SEGDEV_MAX_PORTS;
	e.fd = efd;
	EXPECT_ERR(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e), EINVAL);
	e.port = 3;
	e.fd = fd;			/* /dev/segdev is not an eventfd */
	EXPECT_ERR(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e), EINVAL);
	e.fd = -5;
	EXPECT_ERR(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e), EBADF);
	e.fd = efd;
	CHECK(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e) == 0);
	CHECK(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e) == 0);		/* replacing is fine */
	e.fd = -1;
	CHECK(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e) == 0);		/* and removing */
	CHECK(ioctl(fd2, SEGDEV_IOC_EVENTFD, &e) == 0);		/* twice too */
	close(efd);
	/* read is not an operation of segdev */
	EXPECT_ERR(read(fd2, &size, 8), EINVAL);
	CHECK(ioctl(fd, SEGDEV_IOC_DESTROY, &r) == 0);
	close(fd);
	close(fd2);
	printf("bad: every malformed request refused\n");
	return 0;
}

static int cmd_doorbell(const char *name, uint32_t port)
{
	struct segdev_eventfd e;
	uint64_t size, v = 0;
	uint32_t ports[3] = { port, port, port };
	struct pollfd pfd;
	int fd = seg_open(name, &size);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	CHECK(efd >= 0);
	e.port = port;
	e.fd = efd;
	CHECK(ioctl(fd, SEGDEV_IOC_EVENTFD, &e) == 0);
	CHECK(write(fd, ports, sizeof(ports)) == sizeof(ports));	/* three rings */
	CHECK(ioctl(fd, SEGDEV_IOC_RING, &port) == 0);		/* and one more */
	pfd.fd = efd;
	pfd.events = POLLIN;
	CHECK(poll(&pfd, 1, 5000) == 1);
	CHECK(read(efd, &v, 8) == 8);
	if (v != 4)
		die("eventfd counted %llu rings, want 4", (unsigned long long)v);
	/* A ring of another port reaches the callback but not our eventfd. */
	port++;
	CHECK(write(fd, &port, 4) == 4);
	EXPECT_ERR(read(efd, &v, 8), EAGAIN);
	close(efd);
	close(fd);
	printf("doorbell: 4 rings echoed to the eventfd of port %u\n", port - 1);
	return 0;
}

static void usage(void)
{
	fputs("usage: segdev-test create NAME SIZE | destroy NAME | size NAME | put NAME OFF STR |\n"
	      "       get NAME OFF LEN | pingpong NAME ROUNDS | destroy-mapped NAME | bad |\n"
	      "       doorbell NAME PORT\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(c, "create") && argc == 4)
		return cmd_create(argv[2], strtoull(argv[3], NULL, 0));
	if (!strcmp(c, "destroy") && argc == 3)
		return cmd_destroy(argv[2]);
	if (!strcmp(c, "size") && argc == 3)
		return cmd_size(argv[2]);
	if (!strcmp(c, "put") && argc == 5)
		return cmd_put(argv[2], strtoull(argv[3], NULL, 0), argv[4]);
	if (!strcmp(c, "get") && argc == 5)
		return cmd_get(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (!strcmp(c, "pingpong") && argc == 4)
		return cmd_pingpong(argv[2], (unsigned)strtoul(argv[3], NULL, 0));
	if (!strcmp(c, "destroy-mapped") && argc == 3)
		return cmd_destroy_mapped(argv[2]);
	if (!strcmp(c, "bad") && argc == 2)
		return cmd_bad();
	if (!strcmp(c, "doorbell") && argc == 4)
		return cmd_doorbell(argv[2], (uint32_t)strtoul(argv[3], NULL, 0));
	usage();
	return 2;
}
