/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtypes/sysv.c - the "sysv" segment type: System V shared memory
 * (shmget/shmat/shmctl), the segment a key names. Visible to `ipcs -m`,
 * removable by `ipcrm`.
 *
 * A name is a key, "0x" and 1 to 8 hex digits (not 0, IPC_PRIVATE), or an
 * absolute path, turned into a key as ftok(path, 'x') does (the path must
 * exist; its inode and device make the key).
 *
 * create: shmget(IPC_CREAT|IPC_EXCL, mode) - the final mode, no umask - then
 * the group through IPC_SET. map: IPC_STAT, the owner/mode/size check every
 * type makes (xseg_segtype_check_owner), shmat. destroy: IPC_RMID, SysV's own
 * removal - the key is free at once, the memory goes when the last peer
 * detaches. Before destroy or an owner change touches anything, the segment
 * is attached read-only and checked (magic, type, creator): another
 * program's segment under the key is never attached writable, changed or
 * removed. Owner and mode follow IPC_STAT/IPC_SET.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>
#include "../../../sys/domain.h"
#include "../../../xseg/xseg_layout.h"
#include "segtype.h"

/* The proj id of ftok() for path names. */
#define SYSV_PROJ_ID	'x'

/* The key @name names, or -EINVAL (+ @err). */
static int sysv_key(const char *name, key_t *key, char *err, size_t errlen)
{
	const char *n = name ? name : "(null)";

	if (name && name[0] == '0' && (name[1] == 'x' || name[1] == 'X')) {
		const char *h = name + 2;
		size_t len = strlen(h);
		unsigned long v;
		char *end;

		if (len >= 1 && len <= 8 && isxdigit((unsigned char)h[0])) {
			v = strtoul(h, &end, 16);
			if (!*end && v) {
				*key = (key_t)(uint32_t)v;
				return 0;
			}
		}
	} else if (name && name[0] == '/') {
		key_t k = ftok(name, SYSV_PROJ_ID);

		if (k == (key_t)-1)
			return xseg_segtype_fail(err, errlen, errno == ENOENT ? -ENOENT : -errno,
						 "sysv", name, "cannot turn the path into a key "
						 "(ftok, proj id 'x')");
		*key = k;
		return 0;
	}
	return xseg_segtype_fail(err, errlen, -EINVAL, "sysv", n,
				 "a sysv segment is named by a key, 0x1 to 0xffffffff, or by an "
				 "absolute path (ftok, proj id 'x')");
}

/* The shmid of the segment @name names; 0 <= id, or a negative errno (+ @err). */
static int sysv_id(const char *name, key_t *keyp, char *err, size_t errlen)
{
	key_t key;
	int id, r;

	r = sysv_key(name, &key, err, errlen);
	if (r)
		return r;
	id = shmget(key, 0, 0);
	if (id < 0) {
		r = -errno;
		if (r == -ENOENT)
			return xseg_segtype_fail(err, errlen, r, "sysv", name,
						 "does not exist (no key 0x%08x)", (unsigned int)key);
		return xseg_segtype_fail(err, errlen, r, "sysv", name, "cannot look up key 0x%08x",
					 (unsigned int)key);
	}
	if (keyp)
		*keyp = key;
	return id;
}

static int sysv_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
		       void **mem, char *err, size_t errlen)
{
	struct shmid_ds ds;
	key_t key;
	void *p;
	int id, r;

	r = sysv_key(name, &key, err, errlen);
	if (!r)
		r = xseg_segtype_check_create("sysv", name, size, mode, err, errlen);
	if (r)
		return r;
	id = shmget(key, (size_t)size, IPC_CREAT | IPC_EXCL | (int)(mode & 0777));
	if (id < 0) {
		r = -errno;
		if (r == -EEXIST)
			return xseg_segtype_fail(err, errlen, r, "sysv", name,
						 "already exists (key 0x%08x)", (unsigned int)key);
		if (r == -EINVAL || r == -ENOSPC)
			return xseg_segtype_fail(err, errlen, r, "sysv", name,
						 "%llu bytes exceed the system's SysV limits "
						 "(kernel.shmmax, shmall, shmmni)",
						 (unsigned long long)size);
		return xseg_segtype_fail(err, errlen, r, "sysv", name,
					 "cannot create key 0x%08x", (unsigned int)key);
	}
	if (gid >= 0) {
		if (shmctl(id, IPC_STAT, &ds) < 0) {
			r = xseg_segtype_fail(err, errlen, -errno, "sysv", name, "cannot examine it");
			goto rm;
		}
		ds.shm_perm.gid = (gid_t)gid;
		if (shmctl(id, IPC_SET, &ds) < 0) {
			r = xseg_segtype_fail(err, errlen, -errno, "sysv", name,
					      "cannot give it group %d", (int)gid);
			goto rm;
		}
	}
	p = shmat(id, NULL, 0);
	if (p == (void *)-1) {
		r = xseg_segtype_fail(err, errlen, -errno, "sysv", name, "cannot attach it");
		goto rm;
	}
	*mem = p;
	return 0;
rm:
	shmctl(id, IPC_RMID, NULL);	/* exclusively ours (IPC_EXCL) */
	return r;
}

static int sysv_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	struct shmid_ds ds;
	void *p;
	int id, r;

	id = sysv_id(name, NULL, err, errlen);
	if (id < 0)
		return id;
	if (shmctl(id, IPC_STAT, &ds) < 0) {
		r = -errno;
		if (r == -EACCES)
			return xseg_segtype_fail(err, errlen, r, "sysv", name,
						 "its mode does not admit us (uid %u gid %u)",
						 (unsigned int)geteuid(), (unsigned int)getegid());
		return xseg_segtype_fail(err, errlen, r, "sysv", name, "cannot examine it");
	}
	r = xseg_segtype_check_owner("sysv", name, (uint32_t)ds.shm_perm.uid,
				     (uint32_t)ds.shm_perm.gid, (uint32_t)(ds.shm_perm.mode & 0777),
				     (uint64_t)ds.shm_segsz, err, errlen);
	if (r)
		return r;
	p = shmat(id, NULL, 0);
	if (p == (void *)-1)
		return xseg_segtype_fail(err, errlen, -errno, "sysv", name, "cannot attach it");
	*mem = p;
	*size = (uint64_t)ds.shm_segsz;
	return 0;
}

static void sysv_unmap(void *mem, uint64_t size)
{
	(void)size;
	if (mem)
		shmdt(mem);
}

static int sysv_destroy(const char *name)
{
	int id = sysv_id(name, NULL, NULL, 0);

	if (id < 0)
		return id;
	return shmctl(id, IPC_RMID, NULL) < 0 ? -errno : 0;
}

/* "sysv:<name> <reason>" (the core adds what was left alone) */
static int refuse(char *err, size_t errlen, int rc, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int refuse(char *err, size_t errlen, int rc, const char *name, const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	if (!err || !errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "sysv:%s %s", name, reason);
	return rc;
}

/*
 * The segment @name names, examined before anything touches it: IPC_STAT,
 * no "other" bits, at least a page, attached read-only (*@ro). Returns the
 * shmid with *@ds and *@key set, or a negative errno (+ @err).
 */
static int sysv_open_checked(const char *name, key_t *key, struct shmid_ds *ds, void **ro,
			     char *err, size_t errlen)
{
	int id, r;

	r = sysv_key(name, key, err, errlen);
	if (r)
		return r;
	id = shmget(*key, 0, 0);
	if (id < 0) {
		r = -errno;
		if (r == -ENOENT)
			return refuse(err, errlen, r, name, "does not exist (no key 0x%08x)",
				      (unsigned int)*key);
		return refuse(err, errlen, r, name, "cannot be looked up: %s", strerror(-r));
	}
	if (shmctl(id, IPC_STAT, ds) < 0) {
		r = -errno;
		return refuse(err, errlen, r, name, "cannot be examined by us (uid %u): %s",
			      (unsigned int)geteuid(), strerror(-r));
	}
	if (ds->shm_perm.mode & 07)
		return refuse(err, errlen, -EPERM, name, "(key 0x%08x, shmid %d) has mode %04o "
			      "(owner uid %u), which grants access to others: not an xseg "
			      "segment of ours", (unsigned int)*key, id,
			      (unsigned int)(ds->shm_perm.mode & 0777),
			      (unsigned int)ds->shm_perm.uid);
	if (ds->shm_segsz < XSEG_SEGTYPE_MIN_SIZE)
		return refuse(err, errlen, -EBADMSG, name, "(key 0x%08x, shmid %d) is not an xseg "
			      "segment (%zu bytes)", (unsigned int)*key, id,
			      (size_t)ds->shm_segsz);
	*ro = shmat(id, NULL, SHM_RDONLY);
	if (*ro == (void *)-1) {
		r = -errno;
		return refuse(err, errlen, r, name, "(key 0x%08x) cannot be attached by us "
			      "(uid %u): %s", (unsigned int)*key, (unsigned int)geteuid(),
			      strerror(-r));
	}
	return id;
}

/*
 * After the check: attach @id writable, for the commit, and make sure it is
 * still the segment under @key (a removal meanwhile turns its key to 0).
 */
static int sysv_attach_rw(int id, key_t key, const char *name, void **rw, char *err,
			  size_t errlen)
{
	struct shmid_ds now;
	int r;

	*rw = shmat(id, NULL, 0);
	if (*rw == (void *)-1) {
		r = -errno;
		return refuse(err, errlen, r, name, "cannot be attached writable by us: %s",
			      strerror(-r));
	}
	if (shmctl(id, IPC_STAT, &now) < 0 || now.shm_perm.__key != key) {
		shmdt(*rw);
		return refuse(err, errlen, -EBUSY, name, "was removed while we checked it");
	}
	return 0;
}

/*
 * sysv_checked - what destroy and set_owner both do first: open @name
 * read-only, let the core's @check look at it, then attach it writable.
 * Returns the id (>= 0) with @ds set and @ro and @rw both attached (the
 * caller detaches both), or a negative errno with nothing attached.
 */
static int sysv_checked(const char *name, xseg_segtype_check_fn check, void *arg,
			struct shmid_ds *ds, void **ro, void **rw, char *err, size_t errlen)
{
	key_t key;
	int id, r;

	id = sysv_open_checked(name, &key, ds, ro, err, errlen);
	if (id < 0)
		return id;
	r = check(*ro, (uint64_t)ds->shm_segsz, (uint32_t)ds->shm_perm.uid, arg, err, errlen);
	if (!r)
		r = sysv_attach_rw(id, key, name, rw, err, errlen);
	if (r) {
		shmdt(*ro);
		return r;
	}
	return id;
}

static int sysv_destroy_checked(const char *name, xseg_segtype_check_fn check,
				xseg_segtype_commit_fn commit, void *arg, char *err, size_t errlen)
{
	struct shmid_ds ds;
	void *ro, *rw;
	int id, r;

	id = sysv_checked(name, check, arg, &ds, &ro, &rw, err, errlen);
	if (id < 0)
		return id;
	r = 0;
	if (shmctl(id, IPC_RMID, NULL) < 0)
		r = refuse(err, errlen, -errno, name, "cannot be removed by us: %s",
			   strerror(errno));
	else
		commit(rw, (uint32_t)ds.shm_perm.uid, (uint32_t)ds.shm_perm.gid,
		       (uint32_t)(ds.shm_perm.mode & 0777), arg);
	shmdt(rw);
	shmdt(ro);
	return r;
}

static int sysv_set_owner_checked(const char *name, xseg_segtype_check_fn check,
				  xseg_segtype_commit_fn commit, void *arg, uint32_t uid,
				  uint32_t gid, uint32_t mode, char *err, size_t errlen)
{
	struct shmid_ds ds;
	void *ro, *rw;
	int id, r;

	id = sysv_checked(name, check, arg, &ds, &ro, &rw, err, errlen);
	if (id < 0)
		return id;
	r = 0;
	if (uid != (uint32_t)-1)
		ds.shm_perm.uid = (uid_t)uid;
	if (gid != (uint32_t)-1)
		ds.shm_perm.gid = (gid_t)gid;
	if (mode != (uint32_t)-1)
		ds.shm_perm.mode = (unsigned short)((ds.shm_perm.mode & ~0777u) |
						    (mode & 0777));
	if (shmctl(id, IPC_SET, &ds) < 0) {
		r = -errno;
		if (err && errlen)
			snprintf(err, errlen, "sysv:%s: cannot set owner/group/mode%s: %s",
				 name, r == -EPERM ? " (only its owner, its creator or "
				 "root may)" : "", strerror(-r));
	} else if (shmctl(id, IPC_STAT, &ds) == 0) {
		commit(rw, (uint32_t)ds.shm_perm.uid, (uint32_t)ds.shm_perm.gid,
		       (uint32_t)(ds.shm_perm.mode & 0777), arg);
	}
	shmdt(rw);
	shmdt(ro);
	return r;
}

static int sysv_owner(const char *name, uint32_t *uid, uint32_t *gid, uint32_t *mode)
{
	struct shmid_ds ds;
	int id = sysv_id(name, NULL, NULL, 0);

	if (id < 0)
		return id;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return -errno;
	*uid = (uint32_t)ds.shm_perm.uid;
	*gid = (uint32_t)ds.shm_perm.gid;
	*mode = (uint32_t)(ds.shm_perm.mode & 0777);
	return 0;
}

/*
 * Is the SysV segment @id an xseg segment of type sysv? Only segments we may
 * map (xseg_segtype_check_owner) are attached, read-only, to look.
 */
static int sysv_is_ours(int id)
{
	struct shmid_ds ds;
	const struct xseg_header *h;
	int yes;

	if (shmctl(id, IPC_STAT, &ds) < 0 ||
	    xseg_segtype_check_owner("sysv", "", (uint32_t)ds.shm_perm.uid,
				     (uint32_t)ds.shm_perm.gid, (uint32_t)(ds.shm_perm.mode & 0777),
				     (uint64_t)ds.shm_segsz, NULL, 0) ||
	    ds.shm_segsz < sizeof(*h))
		return 0;
	h = shmat(id, NULL, SHM_RDONLY);
	if (h == (void *)-1)
		return 0;
	yes = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == XSEG_MAGIC &&
	      !strncmp(h->cfg.type, "sysv", sizeof(h->cfg.type)) &&
	      !(__atomic_load_n(&h->flags, __ATOMIC_ACQUIRE) & XSEG_F_DESTROYED);
	shmdt(h);
	return yes;
}

/*
 * Report every key of /proc/sysvipc/shm (what `ipcs -m` reads) that is an
 * xseg sysv segment we may map, as "0x%08x"; returns how many.
 */
static int sysv_list(void (*fn)(void *arg, const char *name), void *arg)
{
	char line[512], name[16];
	FILE *f;
	int n = 0;

	f = fopen("/proc/sysvipc/shm", "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {	/* the column titles */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		long long key;
		int id;

		if (sscanf(line, "%lld %d", &key, &id) != 2 || !key)
			continue;
		if (!sysv_is_ours(id))
			continue;
		snprintf(name, sizeof(name), "0x%08x", (unsigned int)(uint32_t)key);
		fn(arg, name);
		n++;
	}
	fclose(f);
	return n;
}

/* The "sysv" segment type (System V shm, named by a key). Registered by the core. */
XSEG_SEGTYPE(sysv) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "sysv",
	.create = sysv_create,
	.map = sysv_map,
	.unmap = sysv_unmap,
	.destroy = sysv_destroy,
	.list = sysv_list,
	.destroy_checked = sysv_destroy_checked,
	.set_owner_checked = sysv_set_owner_checked,
	.owner = sysv_owner,
};
