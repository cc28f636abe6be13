// SPDX-License-Identifier: BSD-2-Clause
/*
 * sys/kernel/segtype_heap.c - the "heap" segment type of the kernel domain:
 * kernel memory (kvzalloc) shared by the kernel peers (modules) of this
 * machine, the kernel counterpart of the user domain's process-private heap.
 *
 * A registry of up to HEAP_SLOTS names, each {mem, size, refs}, under a
 * mutex (create, map, unmap and destroy sleep: process context only).
 * create() allocates zeroed memory (one reference, the creator's mapping);
 * map() hands out the same memory and takes a reference; unmap() drops one.
 * destroy() removes the name at once; the memory stays until the last
 * unmap(). mode and gid do not apply. Segments left at module unload are
 * freed with a warning (their users are modules that depend on xseg.ko, so
 * they are gone by then).
 */
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include "../../xseg/xseg.h"
#include "kernel_internal.h"

#define HEAP_SLOTS	64

struct heap_seg {
	char name[XSEG_NAME_LEN];
	void *mem;		/* NULL: a free slot */
	uint64_t size;
	uint32_t refs;		/* mappings handed out and not yet unmapped */
	bool named;		/* false once destroyed: freed at the last unmap */
};

static DEFINE_MUTEX(heap_lock);
static struct heap_seg heap_segs[HEAP_SLOTS];

static int heap_fail(char *err, size_t errlen, int rc, const char *name, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "heap segment '%s': %s", name ? name : "(null)", why);
	return rc;
}

static int heap_check_name(const char *name, char *err, size_t errlen)
{
	if (!name || !*name || strnlen(name, XSEG_NAME_LEN) >= XSEG_NAME_LEN)
		return heap_fail(err, errlen, -EINVAL, name, "a heap segment name is 1 to 127 bytes");
	return 0;
}

/* The named slot of @name, or NULL. Under heap_lock. */
static struct heap_seg *heap_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < HEAP_SLOTS; i++)
		if (heap_segs[i].mem && heap_segs[i].named && !strcmp(heap_segs[i].name, name))
			return &heap_segs[i];
	return NULL;
}

static void heap_release(struct heap_seg *s)
{
	kvfree(s->mem);
	memset(s, 0, sizeof(*s));
}

static int heap_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
		       void **mem, char *err, size_t errlen)
{
	struct heap_seg *s = NULL;
	unsigned int i;
	void *p;
	int r;

	r = heap_check_name(name, err, errlen);
	if (r)
		return r;
	if (size < PAGE_SIZE || size % PAGE_SIZE || size > (1ull << 40))
		return heap_fail(err, errlen, -EINVAL, name,
				 "the size must be a multiple of the page size, at least one page");
	mutex_lock(&heap_lock);
	if (heap_find(name)) {
		mutex_unlock(&heap_lock);
		return heap_fail(err, errlen, -EEXIST, name, "already exists in the kernel");
	}
	for (i = 0; i < HEAP_SLOTS && !s; i++)
		if (!heap_segs[i].mem)
			s = &heap_segs[i];
	if (!s) {
		mutex_unlock(&heap_lock);
		return heap_fail(err, errlen, -ENOSPC, name, "too many kernel heap segments");
	}
	p = kvzalloc((size_t)size, GFP_KERNEL);
	if (!p) {
		mutex_unlock(&heap_lock);
		return heap_fail(err, errlen, -ENOMEM, name, "cannot allocate the memory");
	}
	strscpy(s->name, name, sizeof(s->name));
	s->mem = p;
	s->size = size;
	s->refs = 1;
	s->named = true;
	mutex_unlock(&heap_lock);
	*mem = p;
	return 0;
}

static int heap_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	struct heap_seg *s;
	int r = 0;

	r = heap_check_name(name, err, errlen);
	if (r)
		return r;
	mutex_lock(&heap_lock);
	s = heap_find(name);
	if (s && s->refs == U32_MAX) {
		r = -EMFILE;
	} else if (s) {
		s->refs++;
		*mem = s->mem;
		*size = s->size;
	}
	mutex_unlock(&heap_lock);
	if (!s)
		return heap_fail(err, errlen, -ENOENT, name, "does not exist in the kernel");
	if (r)
		return heap_fail(err, errlen, r, name, "mapped too many times");
	return 0;
}

static void heap_unmap(void *mem, uint64_t size)
{
	struct heap_seg *s = NULL;
	unsigned int i;

	if (!mem)
		return;
	mutex_lock(&heap_lock);
	for (i = 0; i < HEAP_SLOTS && !s; i++)
		if (heap_segs[i].mem == mem)
			s = &heap_segs[i];
	if (s && s->refs > 0 && --s->refs == 0 && !s->named)
		heap_release(s);
	mutex_unlock(&heap_lock);
	if (!s)
		pr_warn("xseg: heap segment unmap: %p (%llu bytes) is not a heap segment; ignored\n",
			mem, (unsigned long long)size);
}

static int heap_destroy(const char *name)
{
	struct heap_seg *s;

	if (heap_check_name(name, NULL, 0))
		return -EINVAL;
	mutex_lock(&heap_lock);
	s = heap_find(name);
	if (s) {
		s->named = false;
		if (!s->refs)
			heap_release(s);
	}
	mutex_unlock(&heap_lock);
	return s ? 0 : -ENOENT;
}

static int heap_list(void (*fn)(void *arg, const char *name), void *arg)
{
	char (*names)[XSEG_NAME_LEN];
	unsigned int i;
	int n = 0, k;

	names = kvmalloc_array(HEAP_SLOTS, sizeof(*names), GFP_KERNEL);
	if (!names)
		return -ENOMEM;
	mutex_lock(&heap_lock);
	for (i = 0; i < HEAP_SLOTS; i++)
		if (heap_segs[i].mem && heap_segs[i].named)
			memcpy(names[n++], heap_segs[i].name, XSEG_NAME_LEN);
	mutex_unlock(&heap_lock);
	for (k = 0; k < n; k++)
		fn(arg, names[k]);
	kvfree(names);
	return n;
}

void xseg_kernel_heap_cleanup(void)
{
	unsigned int i;

	mutex_lock(&heap_lock);
	for (i = 0; i < HEAP_SLOTS; i++) {
		if (!heap_segs[i].mem)
			continue;
		pr_warn("xseg: heap segment '%s' still %s at unload (%u mappings): freed\n",
			heap_segs[i].name, heap_segs[i].named ? "exists" : "mapped", heap_segs[i].refs);
		heap_release(&heap_segs[i]);
	}
	mutex_unlock(&heap_lock);
}

const struct xseg_segtype_ops xseg_segtype_heap = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "heap",
	.create = heap_create,
	.map = heap_map,
	.unmap = heap_unmap,
	.destroy = heap_destroy,
	.list = heap_list,
};
