/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/segtype_heap.c - the "heap" segment type: process-private memory
 * for peers that are threads of one process (tests, embedded servers).
 *
 * An in-process registry of up to HEAP_SLOTS names, each {mem, size, refs}.
 * create() maps zeroed anonymous private memory (one reference, the
 * creator's mapping); map() hands out the same memory and takes a reference;
 * unmap() drops one. destroy() removes the name at once, but the memory stays
 * until its last unmap(). mode and gid are meaningless here and ignored.
 * A forked child inherits a copy of the registry and copy-on-write copies of
 * the memory: nothing is shared with the parent after fork().
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "../domain.h"
#include "segtype.h"

#define HEAP_SLOTS	64

struct heap_seg {
	char name[XSEG_NAME_LEN];
	void *mem;		/* NULL: a free slot */
	uint64_t size;
	uint32_t refs;		/* mappings handed out and not yet unmapped */
	bool named;		/* false once destroyed: freed at the last unmap */
};

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap_seg heap_segs[HEAP_SLOTS];

static int heap_check_name(const char *name, char *err, size_t errlen)
{
	if (!name || !*name || strlen(name) >= XSEG_NAME_LEN)
		return xseg_segtype_fail(err, errlen, -EINVAL, "heap", name ? name : "(null)",
					 "a heap segment name is 1 to %u bytes",
					 XSEG_NAME_LEN - 1);
	return 0;
}

/* The named slot of @name, or NULL. Under heap_lock. */
static struct heap_seg *heap_find(const char *name)
{
	for (unsigned int i = 0; i < HEAP_SLOTS; i++)
		if (heap_segs[i].mem && heap_segs[i].named && !strcmp(heap_segs[i].name, name))
			return &heap_segs[i];
	return NULL;
}

/* Free @s's memory and its slot. Under heap_lock. */
static void heap_release(struct heap_seg *s)
{
	munmap(s->mem, (size_t)s->size);
	memset(s, 0, sizeof(*s));
}

static int heap_create(const char *name, uint64_t size, uint32_t mode, int32_t gid,
		       void **mem, char *err, size_t errlen)
{
	struct heap_seg *s = NULL;
	void *p;
	int r;

	(void)mode;	/* meaningless for process-private memory */
	(void)gid;
	r = heap_check_name(name, err, errlen);
	if (!r)	/* the size rules of every type; mode and gid do not apply */
		r = xseg_segtype_check_create("heap", name, size, 0600, err, errlen);
	if (r)
		return r;
	pthread_mutex_lock(&heap_lock);
	if (heap_find(name)) {
		pthread_mutex_unlock(&heap_lock);
		return xseg_segtype_fail(err, errlen, -EEXIST, "heap", name,
					 "already exists in this process");
	}
	for (unsigned int i = 0; i < HEAP_SLOTS && !s; i++)
		if (!heap_segs[i].mem)
			s = &heap_segs[i];
	if (!s) {
		pthread_mutex_unlock(&heap_lock);
		return xseg_segtype_fail(err, errlen, -ENOSPC, "heap", name,
					 "the process already has %u heap segments (live or "
					 "still mapped)", HEAP_SLOTS);
	}
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		pthread_mutex_unlock(&heap_lock);
		return xseg_segtype_fail(err, errlen, r, "heap", name,
					 "cannot allocate %llu bytes", (unsigned long long)size);
	}
	strcpy(s->name, name);
	s->mem = p;
	s->size = size;
	s->refs = 1;
	s->named = true;
	pthread_mutex_unlock(&heap_lock);
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
	pthread_mutex_lock(&heap_lock);
	s = heap_find(name);
	if (s && s->refs == UINT32_MAX)
		r = -EMFILE;
	else if (s) {
		s->refs++;
		*mem = s->mem;
		*size = s->size;
	}
	pthread_mutex_unlock(&heap_lock);
	if (!s)
		return xseg_segtype_fail(err, errlen, -ENOENT, "heap", name,
					 "does not exist in this process (heap segments are "
					 "process-private)");
	if (r)
		return xseg_segtype_fail(err, errlen, r, "heap", name, "mapped too many times");
	return 0;
}

static void heap_unmap(void *mem, uint64_t size)
{
	struct heap_seg *s = NULL;

	if (!mem)
		return;
	pthread_mutex_lock(&heap_lock);
	for (unsigned int i = 0; i < HEAP_SLOTS && !s; i++)
		if (heap_segs[i].mem == mem)
			s = &heap_segs[i];
	if (s && s->refs > 0 && --s->refs == 0 && !s->named)
		heap_release(s);
	pthread_mutex_unlock(&heap_lock);
	if (!s)
		xseg_sys_log(XSEG_LOG_WARN, "heap segment unmap: %p (%llu bytes) is not a "
			     "heap segment; ignored", mem, (unsigned long long)size);
}

static int heap_destroy(const char *name)
{
	struct heap_seg *s;

	if (heap_check_name(name, NULL, 0))
		return -EINVAL;
	pthread_mutex_lock(&heap_lock);
	s = heap_find(name);
	if (s) {
		s->named = false;
		if (!s->refs)
			heap_release(s);
	}
	pthread_mutex_unlock(&heap_lock);
	return s ? 0 : -ENOENT;
}

/* Report the live names; @fn runs without the lock (it may call us). */
static int heap_list(void (*fn)(void *arg, const char *name), void *arg)
{
	char (*names)[XSEG_NAME_LEN];
	int n = 0;

	names = malloc(sizeof(*names) * HEAP_SLOTS);
	if (!names)
		return -ENOMEM;
	pthread_mutex_lock(&heap_lock);
	for (unsigned int i = 0; i < HEAP_SLOTS; i++)
		if (heap_segs[i].mem && heap_segs[i].named)
			memcpy(names[n++], heap_segs[i].name, XSEG_NAME_LEN);
	pthread_mutex_unlock(&heap_lock);
	for (int i = 0; i < n; i++)
		fn(arg, names[i]);
	free(names);
	return n;
}

/* The "heap" segment type (process-private, threads only). Registered by the core. */
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
