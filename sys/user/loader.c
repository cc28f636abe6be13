/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys/user/loader.c - the user domain's loader of drivers that are not built
 * in: xseg_<name>.so, exporting xseg_driver_<name> (see XSEG_DRIVER() in
 * xseg/xseg.h). The built-ins are listed in sys/user/builtins.h.
 *
 * Where a driver is looked for, in this order (docs/drivers.md, "Drivers
 * loaded at run time"):
 *   1. each directory of $XSEG_DRIVER_PATH (colon-separated, absolute
 *      directories; ignored in set-user-ID and set-group-ID programs);
 *   2. XSEG_DRIVER_DIR, fixed at build time ($(PREFIX)/$(LIBDIR)/xseg, where
 *      a driver package installs its .so);
 *   3. the folder "xseg" beside the object libxseg lives in (the directory of
 *      libxseg.so, or of the program that linked libxseg.a): lib/user/xseg/
 *      in the tree.
 * dlopen gets a full path, so neither LD_LIBRARY_PATH nor ld.so.cache is
 * consulted. Code is loaded only from a regular file owned by root or by
 * us, that neither the group nor others may write, in a directory others
 * may not write: anything else is refused, with a warning naming it.
 *
 * The node domain (XSEG_DOMAIN_NODE: this code compiled into the Node addon)
 * loads nothing: an addon must not bring unknown code into the Node process.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../xseg/xseg_internal.h"

#ifdef XSEG_DOMAIN_NODE
const struct xseg_driver_ops *xseg__load_driver(const char *name)
{
	(void)name;
	return NULL;
}
#else
#ifndef XSEG_DRIVER_DIR
#define XSEG_DRIVER_DIR "/usr/local/lib/xseg"
#endif

/* May code be loaded from @path (in directory @dir)? 0, or a reason. */
static const char *untrusted(const char *dir, const char *path)
{
	struct stat d, f;
	uid_t me = geteuid();

	if (stat(dir, &d) || !S_ISDIR(d.st_mode))
		return "no such directory";
	if ((d.st_mode & S_IWOTH) && !(d.st_mode & S_ISVTX))
		return "its directory is writable by others";
	if (stat(path, &f))
		return "";	/* not there: look on, quietly */
	if (!S_ISREG(f.st_mode))
		return "not a regular file";
	if (f.st_uid != 0 && f.st_uid != me)
		return "owned by another user";
	if (f.st_mode & (S_IWGRP | S_IWOTH))
		return "writable by its group or others";
	return NULL;
}

/* Try @dir/xseg_<name>.so: the ops, or NULL (and a log line if refused). */
static const struct xseg_driver_ops *try_dir(const char *dir, size_t dlen, const char *name)
{
	char d[PATH_MAX], path[PATH_MAX], sym[64];
	const struct xseg_driver_ops *ops;
	const char *why;
	void *h;

	if (!dlen || dir[0] != '/' || dlen >= sizeof(d))
		return NULL;	/* relative entries are ignored: they depend on the cwd */
	memcpy(d, dir, dlen);
	d[dlen] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/xseg_%s.so", d, name) >= sizeof(path))
		return NULL;
	why = untrusted(d, path);
	if (why) {
		if (*why && strcmp(why, "no such directory"))
			xseg_sys_log(XSEG_LOG_WARN, "driver '%s': not loading %s: %s", name, path, why);
		return NULL;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		xseg_sys_log(XSEG_LOG_WARN, "driver '%s': %s", name, dlerror());
		return NULL;
	}
	snprintf(sym, sizeof(sym), "xseg_driver_%s", name);
	ops = dlsym(h, sym);
	if (!ops || ops->abi_size < __builtin_offsetof(struct xseg_driver_ops, join) || !ops->name ||
	    strcmp(ops->name, name)) {
		xseg_sys_log(XSEG_LOG_WARN, "driver '%s': %s has no valid %s", name, path, sym);
		dlclose(h);
		return NULL;
	}
	xseg_sys_log(XSEG_LOG_INFO, "driver '%s': loaded %s", name, path);
	return ops;	/* stays loaded for the life of the process */
}

const struct xseg_driver_ops *xseg__load_driver(const char *name)
{
	const struct xseg_driver_ops *ops = NULL;
	const char *env, *c, *colon;
	char self[PATH_MAX];
	Dl_info info;

	for (c = name; *c; c++)		/* a name, not a path */
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return NULL;
	if (c - name > 32)
		return NULL;
	env = secure_getenv("XSEG_DRIVER_PATH");
	for (c = env; c && *c && !ops; c = colon ? colon + 1 : NULL) {
		colon = strchr(c, ':');
		ops = try_dir(c, colon ? (size_t)(colon - c) : strlen(c), name);
	}
	if (!ops)
		ops = try_dir(XSEG_DRIVER_DIR, strlen(XSEG_DRIVER_DIR), name);
	if (!ops && dladdr((void *)xseg__load_driver, &info) && info.dli_fname &&
	    realpath(info.dli_fname, self)) {
		char *slash = strrchr(self, '/');

		if (slash && (size_t)(slash - self) + sizeof("/xseg") <= sizeof(self)) {
			strcpy(slash, "/xseg");
			ops = try_dir(self, strlen(self), name);
		}
	}
	if (!ops)
		xseg_sys_log(XSEG_LOG_INFO, "driver '%s': no xseg_%s.so in $XSEG_DRIVER_PATH, %s "
			     "or beside libxseg", name, name, XSEG_DRIVER_DIR);
	return ops;
}
#endif
