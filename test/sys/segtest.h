/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test/sys/segtest.h - what the segment-type tests share: a run prefix for
 * every segment name they make, and the removal of those segments (and of a
 * folder tree) at exit of the test process, even when a CHECK fails.
 */
#ifndef TEST_SYS_SEGTEST_H
#define TEST_SYS_SEGTEST_H

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include "xtest.h"

static pid_t main_pid;
static char prefix[64];		/* "xt-<pid>-": every posix and heap name of this run */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

/* Remove /dev/shm/xseg.<prefix>* (test process only, not its children). */
static void remove_run_segments(void)
{
	struct dirent *de;
	char path[512];
	DIR *d;

	if (getpid() != main_pid)
		return;
	d = opendir("/dev/shm");
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "xseg.", 5) && !strncmp(de->d_name + 5, prefix, strlen(prefix))) {
			snprintf(path, sizeof(path), "/dev/shm/%s", de->d_name);
			unlink(path);
		}
	closedir(d);
}

/* Remove the folder tree @dir, if set. */
static inline void remove_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
