/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/kernel/segdev/segdev.h - the interface of /dev/segdev (segdev.ko), for
 * user programs and kernel modules alike.
 *
 * /dev/segdev exports named segments of kernel memory (shmem pages, zeroed, resident)
 * that user processes map with mmap() and kernel modules reach through the
 * functions at the end. Several segments exist at once; each is reference
 * counted (the name, every fd that selected it, every mapping, every kernel
 * user), so destroying one that is still mapped only removes its name: the
 * memory goes with the last reference.
 *
 * User side, on an fd of /dev/segdev:
 *   ioctl(SEGDEV_IOC_CREATE, &req)   create req.name of req.size bytes (a page
 *                                    multiple) and select it for this fd;
 *                                    -EEXIST if the name exists
 *   ioctl(SEGDEV_IOC_OPEN, &req)     select an existing segment; req.size out
 *   ioctl(SEGDEV_IOC_SIZE, &u64)     the size of the selected segment
 *   ioctl(SEGDEV_IOC_DESTROY, &req)  remove req.name (owner or CAP_SYS_ADMIN)
 *   mmap(fd, MAP_SHARED)             map the selected segment (offset 0..size)
 *   write(fd, u32 ports[], 4 * n)    doorbell: call the kernel callback that
 *   ioctl(SEGDEV_IOC_RING, &u32)     serves the selected segment, once per port;
 *                                    without a callback, signal the port's
 *                                    eventfd; -ENXIO if neither is registered
 *   ioctl(SEGDEV_IOC_EVENTFD, &efd)  kernel -> user wake-ups: the eventfd efd.fd
 *                                    is signaled when a kernel peer notifies
 *                                    efd.port; efd.fd = -1 removes it. A
 *                                    registration lasts until this fd closes.
 * An fd selects one segment, once (-EBUSY after). The selected segment's
 * owner (the creator's uid) or CAP_SYS_ADMIN may select and destroy it.
 */
#ifndef XSEG_SEGDEV_H
#define XSEG_SEGDEV_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define SEGDEV_NAME_LEN		128	/* with the NUL, = XSEG_NAME_LEN */
#define SEGDEV_MAX_PORTS	65536u	/* doorbell / eventfd port numbers are < this */

struct segdev_req {
	char name[SEGDEV_NAME_LEN];	/* NUL-terminated */
	__u64 size;			/* CREATE: in; OPEN: out */
	__u32 flags;			/* 0 */
	__u32 pad;			/* 0 */
};

struct segdev_eventfd {
	__u32 port;			/* < SEGDEV_MAX_PORTS */
	__s32 fd;			/* an eventfd, or -1 to remove */
};

#define SEGDEV_IOC_MAGIC	0xE5
#define SEGDEV_IOC_CREATE	_IOWR(SEGDEV_IOC_MAGIC, 1, struct segdev_req)
#define SEGDEV_IOC_OPEN		_IOWR(SEGDEV_IOC_MAGIC, 2, struct segdev_req)
#define SEGDEV_IOC_SIZE		_IOR(SEGDEV_IOC_MAGIC, 3, __u64)
#define SEGDEV_IOC_DESTROY	_IOW(SEGDEV_IOC_MAGIC, 4, struct segdev_req)
#define SEGDEV_IOC_RING		_IOW(SEGDEV_IOC_MAGIC, 5, __u32)
#define SEGDEV_IOC_EVENTFD	_IOW(SEGDEV_IOC_MAGIC, 6, struct segdev_eventfd)

#ifdef __KERNEL__
#include <linux/uidgid.h>
/*
 * Kernel side (EXPORT_SYMBOL_GPL). Every function may sleep unless it says
 * otherwise.
 */
struct segdev_seg;

/* segdev_create - create @name (@size bytes, a page multiple, zeroed) owned by root. */
int segdev_create(const char *name, u64 size);
/* segdev_destroy - remove @name (the memory stays while referenced). */
int segdev_destroy(const char *name);
/* segdev_get - a reference to @name, or an ERR_PTR (-ENOENT). */
struct segdev_seg *segdev_get(const char *name);
/* segdev_put - drop a reference from segdev_get(). */
void segdev_put(struct segdev_seg *seg);
void *segdev_mem(struct segdev_seg *seg);
u64 segdev_size(struct segdev_seg *seg);
/* segdev_owner - the euid that created the segment (root for segdev_create). */
kuid_t segdev_owner(struct segdev_seg *seg);
const char *segdev_name(struct segdev_seg *seg);

/*
 * segdev_set_doorbell - @fn(@arg, port) serves the doorbell of @seg from now
 * on. @fn is called in atomic context (under rcu_read_lock, from the
 * writer's process context) and must not sleep. -EBUSY if another callback is
 * registered. segdev_clear_doorbell() removes it and returns after every
 * call of it has finished.
 */
int segdev_set_doorbell(struct segdev_seg *seg, void (*fn)(void *arg, u32 port), void *arg);
void segdev_clear_doorbell(struct segdev_seg *seg);

/*
 * segdev_notify - signal the eventfd registered for @port of @seg. Returns 0,
 * or -ENOENT if none is registered. Never sleeps: any context.
 */
int segdev_notify(struct segdev_seg *seg, u32 port);
#endif

#endif
