/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/xseg_extents.h - the reply of a storage peer to MAPR (the allocation
 * of a range of its target): a list of extents in the request's data
 * buffer. Shared by blockd and xseg_blockd.ko (SEEK_DATA/SEEK_HOLE), vlmcd
 * and the NBD gateway's engine (NBD_CMD_BLOCK_STATUS, base:allocation). docs/peers.md,
 * "Request conventions of the storage peers", gives the rules.
 *
 * Request: offset, size (the range), a data buffer of data_len bytes.
 * Reply: serviced = 16 * n; the buffer holds n extents of 16 bytes, little
 * endian: length (8 bytes), flags (4 bytes, XSEG_EXTENT_*), 4 reserved
 * zero bytes. The extents are contiguous and in order from the request's
 * offset; together they cover at least one byte (when size > 0) and at most
 * size bytes: a peer may describe less than asked (its buffer is full, or
 * it stops early), the client asks again for the rest. A peer that cannot
 * tell fails the request EOPNOTSUPP; its client then takes the whole range
 * as allocated data (the safe answer).
 *
 * (mapperd answers MAPR of a volume with its own entries, struct xv_entry
 * in peers/user/volume.h; this format is the storage peers'.)
 */
#ifndef XSEG_EXTENTS_H
#define XSEG_EXTENTS_H

#ifdef __KERNEL__
#include <linux/types.h>	/* xseg_blockd.ko answers MAPR in this format too */
#include <linux/errno.h>
#else
#include <errno.h>
#include <stdint.h>
#endif

#define XSEG_EXTENT_SIZE	16u
#define XSEG_EXTENT_HOLE	(1u << 0)	/* not allocated (NBD_STATE_HOLE) */
#define XSEG_EXTENT_ZERO	(1u << 1)	/* reads as zeroes (NBD_STATE_ZERO) */

/* Store extent @i (@len bytes, @flags) in @buf. */
static inline void xseg_extent_put(uint8_t *buf, uint32_t i, uint64_t len, uint32_t flags)
{
	uint8_t *p = buf + (uint64_t)i * XSEG_EXTENT_SIZE;

	for (int k = 0; k < 8; k++)
		p[k] = (uint8_t)(len >> (8 * k));
	for (int k = 0; k < 4; k++)
		p[8 + k] = (uint8_t)(flags >> (8 * k));
	p[12] = p[13] = p[14] = p[15] = 0;
}

/* Read extent @i of @buf. */
static inline void xseg_extent_get(const uint8_t *buf, uint32_t i, uint64_t *len, uint32_t *flags)
{
	const uint8_t *p = buf + (uint64_t)i * XSEG_EXTENT_SIZE;
	uint64_t l = 0;
	uint32_t f = 0;

	for (int k = 7; k >= 0; k--)
		l = l << 8 | p[k];
	for (int k = 3; k >= 0; k--)
		f = f << 8 | p[8 + k];
	*len = l;
	*flags = f;
}

/*
 * xseg_extents_seek - a storage peer's extents of [@pos, @end) into @buf
 * (room for @max), from @seek, which looks for data (@hole 0: SEEK_DATA) or
 * a hole (@hole 1: SEEK_HOLE) from an offset and returns the offset found or
 * a negative errno: -ENXIO from a look for data means none from there on
 * (a hole to @end; also past the end of a file that shrank), -EINVAL or
 * -EOPNOTSUPP (a file system that cannot tell) makes the rest data. With
 * @seek NULL (a block device) the range is one data extent. Returns how many
 * extents were stored, or the negative errno of @seek. blockd (lseek) and
 * xseg_blockd.ko (vfs_llseek) answer MAPR with it.
 */
static inline int64_t xseg_extents_seek(uint8_t *buf, uint64_t max, uint64_t pos, uint64_t end,
					int64_t (*seek)(void *ctx, uint64_t pos, int hole), void *ctx)
{
	uint32_t n = 0;

	while (pos < end && n < max) {
		uint64_t next = end;
		uint32_t flags = 0;

		if (seek) {
			int64_t d = seek(ctx, pos, 0);

			if (d == -ENXIO) {
				flags = XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO;	/* no data from pos on */
			} else if (d < 0 && d != -EINVAL && d != -EOPNOTSUPP) {
				return d;
			} else if (d >= 0 && (uint64_t)d > pos) {
				flags = XSEG_EXTENT_HOLE | XSEG_EXTENT_ZERO;
				next = (uint64_t)d < end ? (uint64_t)d : end;
			} else if (d >= 0) {
				int64_t h = seek(ctx, pos, 1);

				if (h < 0)
					return h;
				if ((uint64_t)h > pos && (uint64_t)h < end)
					next = (uint64_t)h;
			}
		}
		xseg_extent_put(buf, n++, next - pos, flags);
		pos = next;
	}
	return n;
}

#endif
