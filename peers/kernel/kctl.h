/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peers/kernel/kctl.h - what the kernel peers' control files share
 * (xsegbd's /sys/kernel/xsegbd, xseg_blockd's /sys/kernel/xseg_blockd):
 * a folder of add/remove/list attributes under /sys/kernel, and the
 * "key=value ..." lines that add takes. Header-only: each module includes
 * it once.
 */
#ifndef XSEG_PEERS_KERNEL_KCTL_H
#define XSEG_PEERS_KERNEL_KCTL_H

#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/string.h>
#include <linux/printk.h>

/*
 * kctl_next - the next "key=value" of the line *@s (words split at blanks;
 * *@s moves past it): 1 with *@key and *@val (NUL-terminated in place), 0 at
 * the end, -EINVAL for a word without '=' ("@who: add: 'WORD' is not
 * key=value" in the log) or a quoted value without its closing quote ("the
 * value of KEY has no closing quote ..."). A value
 * in double quotes, key="a b", may hold blanks (a file path); the quotes are
 * not part of it, and it cannot hold a double quote itself.
 */
static inline int kctl_next(char **s, char **key, char **val, const char *who)
{
	char *p = *s, *v, *end;

	if (!p)
		return 0;
	p += strspn(p, " \t\n");
	if (!*p) {
		*s = NULL;
		return 0;
	}
	end = p + strcspn(p, " \t\n=");
	if (*end != '=') {
		*end = 0;	/* (a blank, or the end: the word alone) */
		pr_err("%s: add: '%s' is not key=value\n", who, p);
		return -EINVAL;
	}
	*end = 0;
	v = end + 1;
	if (*v == '"') {
		char *q = strchr(++v, '"');

		if (!q || (q[1] && !strchr(" \t\n", q[1]))) {
			pr_err("%s: add: the value of %s has no closing quote (or text right after it)\n", who, p);
			return -EINVAL;
		}
		*q = 0;
		*s = q[1] ? q + 2 : NULL;
	} else {
		end = v + strcspn(v, " \t\n");
		*s = *end ? end + 1 : NULL;
		*end = 0;
	}
	*key = p;
	*val = v;
	return 1;
}

/* kctl_create - /sys/kernel/@name with the attributes of @group: the kobject, or NULL (*@err set). */
static inline struct kobject *kctl_create(const char *name, const struct attribute_group *group, int *err)
{
	struct kobject *k = kobject_create_and_add(name, kernel_kobj);

	*err = -ENOMEM;
	if (!k)
		return NULL;
	*err = sysfs_create_group(k, group);
	if (*err) {
		kobject_put(k);
		return NULL;
	}
	return k;
}

/* kctl_remove - the folder of kctl_create gone; no store of it runs after this returns. */
static inline void kctl_remove(struct kobject *k, const struct attribute_group *group)
{
	sysfs_remove_group(k, group);
	kobject_put(k);
}

#endif
