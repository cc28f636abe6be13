/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/user/volume.h - the volume protocol: what vlmcd, mapperd and their
 * clients (the NBD gateway, xsegbd, the `xseg volume` CLI) say to each other,
 * and the names mapperd gives objects at the storage peer. docs/volumes.md
 * is the prose and the picture; this header is the contract.
 *
 *   client --(block ops on "vol", OPEN/CLOSE, management)--> vlmcd
 *   vlmcd  --(MAPR/MAPW/DISCARD, OPEN/CLOSE, management)---> mapperd
 *   vlmcd  --(READ/WRITE/FLUSH/... of data objects)---------> storage peer
 *   mapperd --(READ/WRITE/COPY/DELETE/ACQUIRE/... )---------> storage peer
 *
 * Header-only (base.mk links each .c of peers/user as a program).
 *
 * Targets. A volume is named by NAME, a snapshot by NAME@SNAP, both matching
 * xv_valid_name(). Names starting with '.' are reserved for requests about
 * the store as a whole (XV_T_LIST, XV_T_FSCK).
 *
 * Text payloads. Management requests and replies carry "key=value\n" lines
 * in the request's data (UTF-8, no NUL; unknown keys are an error naming the
 * key); size = the text's length (size 0 or past data_len: the data up to
 * its first NUL). A failed reply may carry a message: when req->serviced > 0 on a
 * failed reply, data[0..serviced) is a one-line UTF-8 text saying what was
 * wrong (e.g. "vol1 is open by vlmcd@host:1234/port 7"), which clients show
 * next to strerror(error).
 *
 * Block ops to vlmcd (target NAME or NAME@SNAP, the latter read-only):
 *   READ, WRITE (XF_FUA, XF_FLUSH honoured end to end), FLUSH/SYNC,
 *   DISCARD, WRITE_ZEROES: offset/size in bytes of the volume.
 *   INFO: size = 8 and data >= 8 bytes, reply serviced = 8, the size
 *     little-endian (as blockd), so the gateway's INFO works unchanged. An
 *     INFO to vlmcd with any other size is the management INFO (below).
 *   INFO XV_T_STATS: vlmcd's counters (ops, forwarded, hole_reads,
 *     storage_reads, mapr, mapw, cache_bytes, ...), "key=value\n" lines.
 *   OPEN: data "owner=TAG\n" (optional; default: the client's port and
 *     generation) and "ro=1\n" (optional). Exclusive: a second opener gets
 *     EBUSY with a message naming the holder. Snapshots open read-only and
 *     shared. A volume is also opened implicitly by the first block op of a
 *     client when nobody holds it (a restarted vlmcd continues this way).
 *   CLOSE: the opener (same owner) closes.
 * Management ops (to vlmcd, which forwards them to mapperd after quiescing
 * the volume when it has it open; or straight to mapperd):
 *   CREATE   NAME        data: size=BYTES\n [object_size=BYTES\n]
 *   SNAPSHOT NAME        data: name=SNAP\n
 *   CLONE    NAME@SNAP   data: name=NEW\n [size=BYTES\n]
 *   UPDATE   NAME        data: size=BYTES\n (grow only; EINVAL to shrink)
 *   DELETE   NAME | NAME@SNAP   (EBUSY with the dependants named while clones
 *                        depend on it, or while it is open, read-only too)
 *   INFO     NAME | NAME@SNAP   reply: key=value lines (XV_INFO_KEYS)
 *   INFO     XV_T_LIST   reply: one line per volume or snapshot:
 *                        "NAME\tKIND\tSIZE\tPARENT\n" (PARENT "-" if none)
 *   INFO     XV_T_FSCK   reply: "objects=N\nnamed=N\nleaked=N\n" then
 *                        "leaked=OBJECT\n" per leaked object (as many as fit)
 *   DELETE   XV_T_FSCK   the same, removing the leaked objects
 * Map ops (vlmcd to mapperd; target NAME or NAME@SNAP):
 *   MAPR     offset/size: a byte range of the volume; reply data: struct
 *            xv_map_reply with the entries of the objects it overlaps (as
 *            many as fit; count says how many).
 *   MAPW     the same range, made writable: every shared object is copied
 *            (COPY at the storage peer) and every hole gets an empty object
 *            (CREATE), and the map names them durably, before the reply.
 *            Two MAPW for one object at once do one copy.
 *   DISCARD  whole objects inside the range become holes (the map first,
 *            durably; then objects the volume owns are deleted); reply as
 *            MAPR for the range. Partial objects are left to vlmcd.
 *   OPEN     data "owner=TAG\n" ["ro=1\n"] ["force=1\n"]; reply data: struct
 *            xv_open_reply. The lock is taken at the storage peer (ACQUIRE
 *            with the owner tag) so it outlives mapperd; a lock whose owner
 *            is provably dead (same host, pid gone or restarted) is broken
 *            with a log line; force=1 breaks any (XF_FORCE at the storage).
 *            Read-only opens (snapshots, ro=1) are shared: each reader
 *            holds a reader lock, and DELETE is refused (EBUSY, naming
 *            them) while a live reader holds one.
 *   CLOSE    data "owner=TAG\n": releases the owner's writer lock and
 *            every reader lock it holds.
 */
#ifndef XSEG_PEERS_VOLUME_H
#define XSEG_PEERS_VOLUME_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define XV_VERSION		1u
#define XV_NAME_MAX		96u		/* bytes of a volume or snapshot name */
#define XV_OBJECT_SIZE_DEFAULT	(4u << 20)
#define XV_OBJECT_SIZE_MIN	(64u << 10)
#define XV_OBJECT_SIZE_MAX	(64u << 20)	/* power of two between MIN and MAX */

/* Reserved targets. */
#define XV_T_LIST	".list"
#define XV_T_FSCK	".fsck"
#define XV_T_STATS	".stats"	/* INFO to vlmcd: its counters, "key=value\n" lines */

/* The keys of INFO NAME, in this order. */
/* open_by: a volume's writer (or "-"), a snapshot's readers; readers: who holds a reader lock (ro=1, snapshots). */
#define XV_INFO_KEYS "name kind size object_size parent snapshots clones objects bytes open_by id version readers"

/*
 * Object names at the storage peer. Data objects are named by the id of the
 * volume generation that wrote them (its "data id") and the object index, so
 * a name never needs to be stored in full: a map entry is the owner id.
 * mapperd's own objects (headers, maps, the registry) start with "xv1." too;
 * their layout is mapperd's (docs/volumes.md).
 */
#define XV_DATA_PREFIX	"xv1.d."
/* @v as 16 lowercase hex digits at @out (no NUL), a byte (two digits) at a time. */
static inline void xv_hex16(char *out, uint64_t v)
{
	static const char pairs[513] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
		"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
		"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
		"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
		"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

	for (int i = 7; i >= 0; i--, v >>= 8)
		memcpy(out + 2 * i, pairs + 2 * (v & 0xff), 2);
}

static inline int xv_data_name(char *buf, size_t len, uint64_t owner, uint64_t index)
{
	/* By hand: vlmcd names an object per request, and snprintf showed in its profile. */
	const size_t pre = sizeof(XV_DATA_PREFIX) - 1, n = pre + 33;

	if (len <= n)
		return snprintf(buf, len, XV_DATA_PREFIX "%016" PRIx64 ".%016" PRIx64, owner, index);
	memcpy(buf, XV_DATA_PREFIX, pre);
	xv_hex16(buf + pre, owner);
	buf[pre + 16] = '.';
	xv_hex16(buf + pre + 17, index);
	buf[n] = 0;
	return (int)n;
}

/* Map entries as MAPR/MAPW/DISCARD replies give them. */
#define XV_E_HOLE	(1u << 0)	/* no object: reads are zeroes, storage is not asked */
#define XV_E_WRITABLE	(1u << 1)	/* owned by this volume's data id: write in place */
#define XV_E_SHARED	(1u << 2)	/* owned by a snapshot or parent: MAPW before writing */

struct xv_map_entry {
	uint64_t owner;			/* data id of the object's owner; 0 for a hole */
	uint32_t flags;			/* XV_E_* */
	uint32_t pad;
};

#define XV_MAP_MAGIC 0x3170616d76787578ull	/* "xuxvmap1" */

struct xv_map_reply {
	uint64_t magic;			/* XV_MAP_MAGIC */
	uint64_t first;			/* index of entry[0] */
	uint32_t count;			/* entries that follow */
	uint32_t object_size;
	uint64_t size;			/* the volume's size in bytes */
	struct xv_map_entry entry[];
};

#define XV_OPEN_MAGIC 0x316e65706f767875ull	/* "uxvopen1" */
#define XV_OPEN_RO	(1u << 0)

struct xv_open_reply {
	uint64_t magic;			/* XV_OPEN_MAGIC */
	uint64_t size;
	uint64_t id;			/* the volume's (or snapshot's) id */
	uint64_t data_id;		/* owner id its writes create objects under; 0 if read-only */
	uint32_t object_size;
	uint32_t flags;			/* XV_OPEN_* */
};

/*
 * xv_valid_name - @s (@len bytes, untrusted) is a volume or snapshot name:
 * 1..XV_NAME_MAX bytes of [A-Za-z0-9_.-], not starting with '.' or '-'.
 */
static inline int xv_valid_name(const char *s, size_t len)
{
	if (len < 1 || len > XV_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/*
 * xv_split_target - split target @t (@len bytes, untrusted) into a volume
 * name and an optional snapshot name (after one '@'), both checked. Returns
 * 0, or -1 if either part is not a valid name.
 */
static inline int xv_split_target(const char *t, size_t len, char vol[XV_NAME_MAX + 1],
				  char snap[XV_NAME_MAX + 1])
{
	const char *at = memchr(t, '@', len);
	size_t vlen = at ? (size_t)(at - t) : len;

	snap[0] = 0;
	if (!xv_valid_name(t, vlen))
		return -1;
	memcpy(vol, t, vlen);
	vol[vlen] = 0;
	if (at) {
		size_t slen = len - vlen - 1;

		if (!xv_valid_name(at + 1, slen))
			return -1;
		memcpy(snap, at + 1, slen);
		snap[slen] = 0;
	}
	return 0;
}

#endif
