/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/xvformat.h - mapperd's objects at the storage peer: the
 * registry, a header and a map per volume or snapshot. docs/volumes.md has
 * the picture; data objects are named by volume.h's xv_data_name().
 *
 * All integers are little-endian (stored as the host's: x86-64, arm64).
 * Every record carries a CRC-32C, so a corrupted object is reported, never
 * trusted: a bad registry record, header or map entry gives EIO naming it.
 * Header-only (base.mk links each .c of peers/user as a program); tests use
 * it to look at and corrupt what mapperd wrote.
 */
#ifndef XSEG_PEERS_XVFORMAT_H
#define XSEG_PEERS_XVFORMAT_H

#include <assert.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "volume.h"

/* Object names. */
#define XVF_REGISTRY		"xv1.registry"
#define XVF_REGISTRY_NEW	"xv1.registry.new"	/* written, then renamed over the registry */
static inline void xvf_header_name(char *b, size_t n, uint64_t id)
{
	snprintf(b, n, "xv1.h.%016" PRIx64, id);
}
static inline void xvf_map_name(char *b, size_t n, uint64_t id)
{
	snprintf(b, n, "xv1.m.%016" PRIx64, id);
}
/* The lock a mapperd holds while it serves the store (one mapperd per store). */
#define XVF_STORE_LOCK		"xv1.mapperd"
/* The lock OPEN takes (ACQUIRE/RELEASE name) for volume @id. */
static inline void xvf_lock_name(char *b, size_t n, uint64_t id)
{
	snprintf(b, n, "xv1.l.%016" PRIx64, id);
}

/*
 * The shared locks of read-only opens (a snapshot, or ro=1): reader slot @k
 * (0..XVF_READERS-1) of volume or snapshot @id. Each reader holds one slot
 * with its owner tag, so several read at once; DELETE is refused while a
 * live reader holds any.
 */
#define XVF_READERS 32u
static inline void xvf_reader_lock_name(char *b, size_t n, uint64_t id, uint32_t k)
{
	snprintf(b, n, "xv1.r.%016" PRIx64 ".%02u", id, k);
}

/* CRC-32C (Castagnoli), bitwise: records are small. */
static inline uint32_t xvf_crc(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

#define XVF_FULLNAME_MAX (2 * XV_NAME_MAX + 1)	/* NAME@SNAP */

enum { XVF_KIND_VOLUME = 1, XVF_KIND_SNAPSHOT = 2 };
enum {
	XVF_ST_READY = 1,	/* usable */
	XVF_ST_CREATING = 2,	/* ids reserved, objects being written: finished or rolled back at start */
	XVF_ST_DELETING = 3,	/* name gone; its objects are being removed (or kept while others name them) */
};

/*
 * The registry: one object, a head and count records. Replaced whole:
 * written as XVF_REGISTRY_NEW (FUA) and renamed over XVF_REGISTRY (FUA),
 * so a crash leaves the old or the new one.
 */
#define XVF_REG_MAGIC 0x3167657276317876ull	/* "vx1vreg1" */
struct xvf_reg_head {
	uint64_t magic;
	uint32_t version;		/* XV_VERSION */
	uint32_t count;			/* records that follow */
	uint64_t next_id;		/* ids (and data ids) below it were handed out */
	uint64_t generation;		/* +1 per rewrite */
	uint32_t rec_size;		/* sizeof(struct xvf_reg_rec) */
	uint8_t reserved[24];
	uint32_t crc;			/* of the bytes before it */
};
static_assert(sizeof(struct xvf_reg_head) == 64, "registry head");

struct xvf_reg_rec {
	char name[XVF_FULLNAME_MAX + 1 + 6];	/* NUL-padded "NAME" or "NAME@SNAP"; "" when deleting */
	uint8_t kind, state;
	uint64_t id;			/* header and map are named by it */
	uint64_t aux;			/* CREATING snapshot: the volume's next data id */
	uint64_t vol;			/* CREATING snapshot: the volume's id */
	uint8_t reserved[20];
	uint32_t crc;			/* of the bytes before it */
};
static_assert(sizeof(struct xvf_reg_rec) == 256, "registry record");

/* The header of a volume or snapshot: one object, rewritten in place (FUA). */
#define XVF_HDR_MAGIC 0x3172646876317876ull	/* "vx1vhdr1" */
struct xvf_header {
	uint64_t magic;
	uint32_t version;		/* XV_VERSION */
	uint32_t kind;
	uint64_t id;
	uint64_t data_id;		/* owner id of the objects it writes (a snapshot's: frozen) */
	uint64_t parent;		/* a snapshot: its volume's id; a clone: its snapshot's id; 0 */
	uint64_t size;			/* bytes */
	uint32_t object_size;
	uint32_t flags;
	uint64_t hversion;		/* +1 per rewrite */
	uint64_t ctime;			/* seconds since the epoch */
	char name[XVF_FULLNAME_MAX + 1 + 6];	/* as created (for fsck and humans) */
	uint8_t reserved[44];
	uint32_t crc;
};
static_assert(sizeof(struct xvf_header) == 320, "header");

/*
 * The map: a head, then one 16-byte entry per object index at
 * XVF_MAP_HEAD + 16 * index. An all-zero entry is a hole, so a map is
 * created and grown by sizing it (zeroes); it is never shorter than its
 * volume needs, and entries it lacks are corrupt, not holes.
 */
#define XVF_MAP_MAGIC 0x3170616d76317876ull	/* "vx1vmap1" */
#define XVF_MAP_HEAD 64u
struct xvf_map_head {
	uint64_t magic;
	uint32_t version;
	uint32_t entry_size;		/* 16 */
	uint64_t id;			/* whose map */
	uint8_t reserved[36];
	uint32_t crc;
};
static_assert(sizeof(struct xvf_map_head) == XVF_MAP_HEAD, "map head");

#define XVF_ME_TAG 0x31656d76u		/* "vme1" */
struct xvf_map_entry {
	uint64_t owner;			/* data id that owns the object; 0: hole */
	uint32_t tag;			/* XVF_ME_TAG, or 0 for a hole */
	uint32_t crc;			/* of index and owner; 0 for a hole */
};
static_assert(sizeof(struct xvf_map_entry) == 16, "map entry");

static inline uint32_t xvf_entry_crc(uint64_t index, uint64_t owner)
{
	uint64_t v[2] = { index, owner };

	return xvf_crc(0, v, sizeof(v));
}

static inline struct xvf_map_entry xvf_entry(uint64_t index, uint64_t owner)
{
	struct xvf_map_entry e = { 0, 0, 0 };

	if (owner) {
		e.owner = owner;
		e.tag = XVF_ME_TAG;
		e.crc = xvf_entry_crc(index, owner);
	}
	return e;
}

/* The owner @e names at @index; -1 if the entry is corrupt. */
static inline int xvf_entry_check(const struct xvf_map_entry *e, uint64_t index, uint64_t *owner)
{
	if (!e->owner && !e->tag && !e->crc) {
		*owner = 0;
		return 0;
	}
	if (e->tag != XVF_ME_TAG || !e->owner || e->crc != xvf_entry_crc(index, e->owner))
		return -1;
	*owner = e->owner;
	return 0;
}

#define XVF_SEAL(s) ((s)->crc = xvf_crc(0, (s), offsetof(__typeof__(*(s)), crc)))
#define XVF_SEALED(s) ((s)->crc == xvf_crc(0, (s), offsetof(__typeof__(*(s)), crc)))

static inline uint64_t xvf_nobj(uint64_t size, uint32_t object_size)
{
	return (size + object_size - 1) / object_size;
}

/*
 * Owner tags (OPEN's owner=TAG, the lock's holder): "HOST:PID:STARTTIME:REST"
 * where STARTTIME is field 22 of /proc/PID/stat (clock ticks since boot), so
 * that a holder on this host whose process is gone, or whose pid now names
 * another process, is provably dead. Tags of another form are never judged.
 */
static inline unsigned long long xvf_proc_start(long pid)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *rp;
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	rp = strrchr(buf, ')');		/* the command may hold spaces and ')' */
	if (!rp)
		return 0;
	/* Fields after the command start at 3 (state); starttime is 22. */
	for (int field = 2; field < 22 && rp; field++)
		rp = strchr(rp + 1, ' ');
	if (rp)
		v = strtoull(rp + 1, NULL, 10);
	return v;
}

/* xvf_owner_tag - this process's tag with @rest ("vlmcd", "port 7"...). */
static inline void xvf_owner_tag(char *b, size_t n, const char *rest)
{
	char host[64] = "localhost";

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	snprintf(b, n, "%s:%ld:%llu:%s", host, (long)getpid(), xvf_proc_start((long)getpid()), rest);
}

/*
 * xvf_owner_dead - is the holder tagged @tag (@len bytes) provably dead: on
 * this host, and its pid gone or started at another time? 1 or 0.
 */
static inline int xvf_owner_dead(const char *tag, size_t len)
{
	char t[300], host[64] = "";
	char *pid_s, *st_s, *end;
	long pid;
	unsigned long long st;

	if (len >= sizeof(t))
		return 0;
	memcpy(t, tag, len);
	t[len] = 0;
	pid_s = strchr(t, ':');
	if (!pid_s)
		return 0;
	*pid_s++ = 0;
	st_s = strchr(pid_s, ':');
	if (!st_s)
		return 0;
	*st_s++ = 0;
	gethostname(host, sizeof(host) - 1);
	if (strcmp(t, host))
		return 0;		/* another host: not ours to judge */
	pid = strtol(pid_s, &end, 10);
	if (*end || pid <= 0)
		return 0;
	st = strtoull(st_s, &end, 10);
	if (*end != ':' && *end)
		return 0;
	if (kill((pid_t)pid, 0) && errno == ESRCH)
		return 1;
	return xvf_proc_start(pid) != st;
}

#endif
