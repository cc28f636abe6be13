/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Description: the memfd segment type: xseg_create_memfd() makes a sealed
 * (F_SEAL_SHRINK, F_SEAL_SEAL), close-on-exec memfd with the requested mode
 * and no name in /dev/shm or anywhere else; a child that execs (the fd
 * dup2'd to a chosen number) joins memfd:N and writes what the parent reads;
 * a process started before the segment existed, which inherited nothing,
 * receives it over a Unix socket (SCM_RIGHTS) and joins it; shrinking is
 * refused, growing the seals too; map refuses an unsealed memfd, a /dev/shm
 * file, a closed descriptor; create refuses a used memfd; destroy marks it
 * (new joins -EIDRM) and removes nothing; xseg-tool create --send and
 * xseg-tool recv --exec hand a segment over.
 */
#include "segtest.h"
#include "sys/user/segtypes/segtype.h"
#include "sys/user/segtypes/xseg_memfd.h"
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

static char tmpdir[64];
static char self[PATH_MAX];	/* this program, which the children exec */
static char err[512];
static const struct xseg_segtype_ops *ops = &xseg_segtype_memfd;

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	remove_run_segments();
	remove_tree(tmpdir);
}

static int new_seg(void)
{
	struct xseg_config cfg;
	int fd;

	CHECKF(xseg_parse_spec("memfd:x:4:16:4K:mode=0640", &cfg, err, sizeof(err)) == 0, "%s",
	       err);
	fd = xseg_create_memfd(&cfg, err, sizeof(err));
	CHECKF(fd >= 0, "%d %s", fd, err);
	return fd;
}

static const char *num(int fd)
{
	static char b[4][16];
	static unsigned int next;
	char *p = b[next++ % 4];

	snprintf(p, 16, "%d", fd);
	return p;
}

/* The child side: join memfd:@name, write @mark in the last byte, leave. */
static int child_join(const char *name, int mark)
{
	struct xseg *xs;
	int e;

	xs = xseg_join("memfd", name, "futex", NULL, NULL, &e, err, sizeof(err));
	if (!xs) {
		fprintf(stderr, "child: join memfd:%s: %s\n", name, err);
		return 2;
	}
	((unsigned char *)xseg_base(xs))[xseg_size(xs) - 1] = (unsigned char)mark;
	xseg_leave(xs);
	return 0;
}

/* The child side: connect to @path, receive the fd, join it. */
static int child_recv(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, fd;

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < 500 && connect(s, (struct sockaddr *)&sa, sizeof(sa)); i++)
		usleep(10000);
	fd = xseg_memfd_recv(s, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "child: recv: %s\n", err);
		return 3;
	}
	return child_join(num(fd), 0x6b);
}

static void test_create(void)
{
	struct stat st, sh;
	char link[128], path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd, seals;
	ssize_t n;

	fd = new_seg();
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	seals = fcntl(fd, F_GET_SEALS);
	CHECK(seals == (F_SEAL_SHRINK | F_SEAL_SEAL));
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_size >= 4096);
	/* No name: /proc says memfd, and /dev/shm has no entry of that inode. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	CHECK(n > 0);
	path[n] = 0;
	CHECKF(!strncmp(path, "/memfd:", 7) && strstr(path, "(deleted)"), "%s", path);
	d = opendir("/dev/shm");
	CHECK(d);
	while ((de = readdir(d))) {
		snprintf(path, sizeof(path), "/dev/shm/%s", de->d_name);
		if (lstat(path, &sh) == 0)
			CHECKF(sh.st_ino != st.st_ino || sh.st_dev != st.st_dev, "%s", path);
	}
	closedir(d);
	CHECK(close(fd) == 0);
}

static void test_sealed(void)
{
	struct stat st;
	int fd;

	fd = new_seg();
	CHECK(fstat(fd, &st) == 0);
	CHECK(ftruncate(fd, st.st_size - 4096) < 0 && errno == EPERM);
	CHECK(ftruncate(fd, 0) < 0 && errno == EPERM);
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM);
	CHECK(fstat(fd, &st) == 0 && st.st_size >= 4096);
	CHECK(child_join(num(fd), 1) == 0);
	close(fd);
}

static void test_refusals(void)
{
	uint64_t size;
	void *mem;
	int fd, sfd;

	/* An unsealed memfd is not a segment; nor is a /dev/shm file. */
	fd = memfd_create("plain", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && ftruncate(fd, 16384) == 0 && fchmod(fd, 0600) == 0);
	CHECK(ops->map(num(fd), &mem, &size, err, sizeof(err)) == -EPERM);
	CHECKF(strstr(err, "not sealed"), "%s", err);
	/* create wants an empty one. */
	CHECK(ops->create(num(fd), 16384, 0600, -1, &mem, err, sizeof(err)) == -EINVAL);
	close(fd);
	make_seg("posix", pname("m"));
	snprintf(err, sizeof(err), "/dev/shm/xseg.%s", pname("m"));
	sfd = open(err, O_RDWR | O_CLOEXEC);
	CHECK(sfd >= 0);
	CHECK(ops->map(num(sfd), &mem, &size, err, sizeof(err)) == -EPERM);
	close(sfd);
	CHECK(ops->map(num(sfd), &mem, &size, err, sizeof(err)) == -ENOENT);
	CHECK(ops->map("x", &mem, &size, err, sizeof(err)) == -EINVAL);
	CHECK(ops->create("x", 16384, 0600, -1, &mem, err, sizeof(err)) == -EINVAL);
	CHECKF(strstr(err, "xseg_create_memfd()"), "%s", err);
	CHECK(ops->map("-1", &mem, &size, err, sizeof(err)) == -EINVAL);
}

static void test_fork_exec(void)
{
	unsigned char *p;
	struct stat st;
	pid_t pid;
	int fd;

	fd = new_seg();
	CHECK(fstat(fd, &st) == 0);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	pid = xt_fork();
	if (pid == 0) {
		/* dup2 clears close-on-exec on the new number, so the exec keeps it. */
		if (dup2(fd, 100) != 100)
			_exit(5);
		execl(self, self, "--join", "100", (char *)NULL);
		_exit(127);
	}
	CHECK(child_status(pid) == 0);
	CHECK(p[st.st_size - 1] == 0x42);
	munmap(p, (size_t)st.st_size);
	close(fd);
}

static void test_scm_rights(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned char *p;
	struct stat st;
	pid_t pid;
	int ls, cs, fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", tmpdir);
	/* The receiver starts before the segment exists: it can inherit nothing. */
	pid = xt_fork();
	if (pid == 0) {
		execl(self, self, "--recv", sa.sun_path, (char *)NULL);
		_exit(127);
	}
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 1) == 0);
	fd = new_seg();
	cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	CHECK(cs >= 0);
	CHECK(xseg_memfd_send(cs, fd) == 0);
	CHECK(child_status(pid) == 0);
	CHECK(fstat(fd, &st) == 0);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && p[st.st_size - 1] == 0x6b);
	munmap(p, (size_t)st.st_size);
	close(cs);
	close(ls);
	close(fd);
}

static void test_recv_without_fd(void)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(write(sv[0], "X", 1) == 1);
	CHECK(xseg_memfd_recv(sv[1], err, sizeof(err)) == -EPROTO);
	CHECKF(strstr(err, "one descriptor"), "%s", err);
	close(sv[0]);
	CHECK(xseg_memfd_recv(sv[1], err, sizeof(err)) == -ENOTCONN);
	close(sv[1]);
}

/* Listen on @tmpdir/@tag; returns the socket, its path in @sa. */
static int listen_on(const char *tag, struct sockaddr_un *sa)
{
	int ls;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", tmpdir, tag);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(ls >= 0 && bind(ls, (struct sockaddr *)sa, sizeof(*sa)) == 0 && listen(ls, 1) == 0);
	return ls;
}

/*
 * The CLI: `xseg-tool create memfd:... --send SOCKET` hands us a segment;
 * we hand it to `xseg-tool recv SOCKET --exec CMD`, whose CMD joins
 * memfd:$XSEG_MEMFD and writes what we read.
 */
static void test_tool(void)
{
	struct sockaddr_un sa, sb;
	unsigned char *p;
	struct stat st;
	int ls, cs, fd, sock;
	pid_t pid;

	segtest_find_tool();
	ls = listen_on("tool-send", &sa);
	pid = xt_fork();
	if (pid == 0) {
		execl(tool, "xseg-tool", "create", "memfd:x:4:16:4K", "--send", sa.sun_path,
		      (char *)NULL);
		_exit(127);
	}
	cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	CHECK(cs >= 0);
	fd = xseg_memfd_recv(cs, err, sizeof(err));
	CHECKF(fd >= 0, "%s", err);
	CHECK(child_status(pid) == 0);
	close(cs);
	close(ls);
	CHECK(child_join(num(fd), 0x11) == 0);
	/* Hand it on to recv, which runs us with $XSEG_MEMFD. */
	snprintf(sb.sun_path, sizeof(sb.sun_path), "%s/tool-recv", tmpdir);
	pid = xt_fork();
	if (pid == 0) {
		execl(tool, "xseg-tool", "recv", sb.sun_path, "--exec", self, "--join-env",
		      (char *)NULL);
		_exit(127);
	}
	sb.sun_family = AF_UNIX;
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(sock >= 0);
	for (int i = 0; i < 500 && connect(sock, (struct sockaddr *)&sb, sizeof(sb)); i++)
		usleep(10000);
	CHECK(xseg_memfd_send(sock, fd) == 0);
	close(sock);
	CHECK(child_status(pid) == 0);
	CHECK(access(sb.sun_path, F_OK) < 0);	/* recv removed its socket */
	CHECK(fstat(fd, &st) == 0);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && p[st.st_size - 1] == 0x42);
	munmap(p, (size_t)st.st_size);
	close(fd);
}

static void test_destroy(void)
{
	struct xseg *xs;
	int fd, e;

	fd = new_seg();
	CHECKF(xseg_destroy_name_err("memfd", num(fd), err, sizeof(err)) == 0, "%s", err);
	xs = xseg_join("memfd", num(fd), "futex", NULL, NULL, &e, err, sizeof(err));
	CHECK(!xs && e == -EIDRM);
	close(fd);
}

int main(int argc, char **argv)
{
	ssize_t n;

	if (argc == 3 && !strcmp(argv[1], "--join"))
		return child_join(argv[2], 0x42);
	if (argc == 2 && !strcmp(argv[1], "--join-env"))
		return getenv("XSEG_MEMFD") ? child_join(getenv("XSEG_MEMFD"), 0x42) : 4;
	if (argc == 3 && !strcmp(argv[1], "--recv"))
		return child_recv(argv[2]);
	xt_watchdog(120);
	segtest_start();
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = 0;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xseg-memfd.XXXXXX");
	CHECK(mkdtemp(tmpdir));
	atexit(cleanup);
	RUN(test_create);
	RUN(test_sealed);
	RUN(test_refusals);
	RUN(test_fork_exec);
	RUN(test_scm_rights);
	RUN(test_recv_without_fd);
	RUN(test_tool);
	RUN(test_destroy);
	return 0;
}
