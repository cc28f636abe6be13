/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xseg/segtype_heap.c - the "heap" segment type, the same in every domain:
 * memory that is not shared with other processes, for peers that are threads
 * of one process (user space, Node worker threads) or modules of one kernel.
 *
 * A registry of up to HEAP_SLOTS names, each {mem, size, refs}, under the
 * domain's registry lock (it may sleep: process context only in the kernel).
 * create() allocates zeroed memory (one reference, the creator's mapping);
 * map() hands out the same memory and takes a reference; unmap() drops one.
 * destroy() removes the name at once; the memory stays until the last
 * unmap(). mode and gid do not apply. In user space a forked child inherits
 * a copy of the registry and copy-on-write copies of the memory: nothing is
 * shared with the parent after fork().
 */
#include "xseg_internal.h"

#define HEAP_SLOTS	64
#define HEAP_MAX_SIZE	(1ull << 40)

struct heap_seg {
	char name[XSEG_NAME_LEN];
	void *mem;		/* NULL: a free slot */
	uint64_t size;
	uint32_t refs;		/* mappings handed out and not yet unmapped */
	bool named;		/* false once destroyed: freed at the last unmap */
};

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

/* The named slot of @name, or NULL. Under the registry lock. */
static struct heap_seg *heap_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < HEAP_SLOTS; i++)
		if (heap_segs[i].mem && heap_segs[i].named && !strcmp(heap_segs[i].name, name))
			return &heap_segs[i];
	return NULL;
}

/* Free @s's memory and its slot. Under the registry lock. */
static void heap_release(struct heap_seg *s)
{
	xseg_sys_heap_free(s->mem, s->size);
	xseg_memset(s, 0, sizeof(*s));
}

static int heap_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
		       void **mem, char *err, size_t errlen)
{
	uint64_t page = xseg_sys_page_size();
	struct heap_seg *s = NULL;
	unsigned int i;
	void *p;
	int r;

	(void)mode;
	(void)gid;
	r = heap_check_name(name, err, errlen);
	if (r)
		return r;
	if (size < page || size % page || size > HEAP_MAX_SIZE)
		return heap_fail(err, errlen, -EINVAL, name,
				 "the size must be a multiple of the page size, at least one page");
	xseg_sys_registry_lock();
	if (heap_find(name)) {
		xseg_sys_registry_unlock();
		return heap_fail(err, errlen, -EEXIST, name, "already exists");
	}
	for (i = 0; i < HEAP_SLOTS && !s; i++)
		if (!heap_segs[i].mem)
			s = &heap_segs[i];
	if (!s) {
		xseg_sys_registry_unlock();
		return heap_fail(err, errlen, -ENOSPC, name, "too many heap segments");
	}
	p = xseg_sys_heap_alloc(size);
	if (!p) {
		xseg_sys_registry_unlock();
		return heap_fail(err, errlen, -ENOMEM, name, "cannot allocate the memory");
	}
	xseg_memcpy(s->name, name, strnlen(name, XSEG_NAME_LEN - 1));
	s->mem = p;
	s->size = size;
	s->refs = 1;
	s->named = true;
	xseg_sys_registry_unlock();
	*mem = p;
	return 0;
}

static int heap_map(const char *name, void **mem, uint64_t *size, char *err, size_t errlen)
{
	struct heap_seg *s;
	int r;

	r = heap_check_name(name, err, errlen);
	if (r)
		return r;
	xseg_sys_registry_lock();
	s = heap_find(name);
	if (s && s->refs == 0xFFFFFFFFu) {
		r = -EMFILE;
	} else if (s) {
		s->refs++;
		*mem = s->mem;
		*size = s->size;
	}
	xseg_sys_registry_unlock();
	if (!s)
		return heap_fail(err, errlen, -ENOENT, name, "does not exist");
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
	xseg_sys_registry_lock();
	for (i = 0; i < HEAP_SLOTS && !s; i++)
		if (heap_segs[i].mem == mem)
			s = &heap_segs[i];
	if (s && s->refs > 0 && --s->refs == 0 && !s->named)
		heap_release(s);
	xseg_sys_registry_unlock();
	if (!s)
		xseg_sys_log(XSEG_LOG_WARN, "heap segment unmap: %p (%llu bytes) is not a heap segment; ignored",
			     mem, (unsigned long long)size);
}

static int heap_destroy(const char *name)
{
	struct heap_seg *s;

	if (heap_check_name(name, NULL, 0))
		return -EINVAL;
	xseg_sys_registry_lock();
	s = heap_find(name);
	if (s) {
		s->named = false;
		if (!s->refs)
			heap_release(s);
	}
	xseg_sys_registry_unlock();
	return s ? 0 : -ENOENT;
}

/* The names are copied out first, so @fn never runs under the lock. */
static int heap_list(void (*fn)(void *arg, const char *name), void *arg)
{
	char (*names)[XSEG_NAME_LEN] = xseg_sys_alloc(HEAP_SLOTS * sizeof(*names));
	unsigned int i;
	int n = 0, k;

	if (!names)
		return -ENOMEM;
	xseg_sys_registry_lock();
	for (i = 0; i < HEAP_SLOTS; i++)
		if (heap_segs[i].mem && heap_segs[i].named)
			xseg_memcpy(names[n++], heap_segs[i].name, XSEG_NAME_LEN);
	xseg_sys_registry_unlock();
	for (k = 0; k < n; k++)
		fn(arg, names[k]);
	xseg_sys_free(names);
	return n;
}

/*
 * xseg__heap_cleanup - free every heap segment still there (the kernel
 * domain calls it when xseg.ko unloads; its users, modules that depend on
 * xseg.ko, are gone by then). Warns about each.
 */
void xseg__heap_cleanup(void)
{
	unsigned int i;

	xseg_sys_registry_lock();
	for (i = 0; i < HEAP_SLOTS; i++) {
		if (!heap_segs[i].mem)
			continue;
		xseg_sys_log(XSEG_LOG_WARN, "heap segment '%s' still %s at unload (%u mappings): freed",
			     heap_segs[i].name, heap_segs[i].named ? "exists" : "mapped", heap_segs[i].refs);
		heap_release(&heap_segs[i]);
	}
	xseg_sys_registry_unlock();
}

XSEG_SEGTYPE(heap) = {
	.abi_size = sizeof(struct xseg_segtype_ops),
	.version = 1,
	.name = "heap",
	.create = heap_create,
	.map = heap_map,
	.unmap = heap_unmap,
	.destroy = heap_destroy,
	.list = heap_list,
};
