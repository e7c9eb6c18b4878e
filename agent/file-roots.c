/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file-roots.c - the paths of the group "file" (file.h): absolute, within
 * the file roots, opened without following a symlink swapped in late.
 *
 * File roots (config->file_roots): every path is resolved with realpath()
 * (symlinks and ".." included; for a file va.file.open may create, the
 * parent directory is resolved and the last component appended) and must
 * be one of the roots or under one.  The file is then opened relative to
 * the resolved parent directory, whose fd is checked against
 * /proc/self/fd, with O_NOFOLLOW on the last component, so a symlink
 * swapped in after the check cannot lead outside.
 *
 * Files are opened non-blocking (a FIFO or a device never stalls the
 * agent); directories are refused.  Only a regular file with a size
 * (st_size > 0) on a filesystem other than the pseudo ones (procfs,
 * sysfs, debugfs, tracefs, FUSE: see va_file_pseudo_fs()) is switched to
 * blocking I/O, the fast path for disk files: the pseudo ones have
 * "regular" files whose read blocks (/proc/kmsg, tracing's trace_pipe, a
 * FUSE file waiting on its daemon).  Created files get exactly the perm
 * asked, not masked by the umask; perm does not change an existing file.
 */
#include "config.h"
#include "text.h"

/* O_PATH, strndup; configure.ac has no AC_USE_SYSTEM_EXTENSIONS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "file.h"
#include "log.h"

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

static const char *const *
file_roots(struct va_agent *a)
{
	const struct va_agent_config *cfg = va_agent_config(a);
	return cfg ? (const char *const *)cfg->file_roots : NULL;
}

/* Is real (an absolute path without symlinks) one of the roots or under one? */
static int
in_roots(const char *const *roots, const char *real)
{
	for (size_t i = 0; roots[i]; i++) {
		size_t n = strlen(roots[i]);
		while (n > 1 && roots[i][n - 1] == '/')
			n--;
		if (n == 1 && roots[i][0] == '/')
			return 1;
		if (strncmp(real, roots[i], n) == 0 &&
		    (real[n] == '\0' || real[n] == '/'))
			return 1;
	}
	return 0;
}

static void
fault_outside(xmlrpc_env *env, const char *path, int *why)
{
	if (why)
		*why = VA_FILE_WHY_REFUSED;
	va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
	    "path %s is outside the allowed file roots", path);
}

/* va_file_fault_errno, and e into *why (may be NULL). */
static void
fault_errno(xmlrpc_env *env, const char *method, const char *path, int e, int *why)
{
	if (why)
		*why = e;
	va_file_fault_errno(env, method, path, e);
}

void
va_file_fault_errno(xmlrpc_env *env, const char *method, const char *path, int e)
{
	va_fault(env, XMLRPC_INTERNAL_ERROR,
	    "%s: %s: %s", method, path, strerror(e));
}

/* realpath(dirname(path)) + "/" + basename(path); NULL with errno set. */
static char *
real_parent_join(const char *path, const char **basep)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash + 1;
	char *dir, *rdir, *out;

	*basep = base;
	dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	if (!dir)
		return NULL;
	rdir = realpath(dir, NULL);
	int e = errno;
	free(dir);
	if (!rdir) {
		errno = e;
		return NULL;
	}
	size_t dl = strlen(rdir);
	out = malloc(dl + 1 + strlen(base) + 1);
	if (out)
		sprintf(out, "%s%s%s", rdir, strcmp(rdir, "/") == 0 ? "" : "/", base);
	free(rdir);
	if (!out)
		errno = ENOMEM;
	return out;
}

static int
is_dot_name(const char *base)
{
	return base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0;
}

/*
 * The real path of path, which must be within the roots.  may_create:
 * path may not exist yet (its parent must).  A malloc'd string, or NULL
 * with a fault.
 */
static char *
resolve(xmlrpc_env *env, const char *const *roots, const char *method,
	const char *path, int may_create, int *why)
{
	const char *base;
	char *real = realpath(path, NULL);

	if (!real) {
		int e = errno;
		char *joined = real_parent_join(path, &base);
		int pe = errno;
		if (joined && !is_dot_name(base) && !in_roots(roots, joined)) {
			/* Say "outside", not whether it exists. */
			fault_outside(env, path, why);
			free(joined);
			return NULL;
		}
		if (e != ENOENT || !may_create) {
			fault_errno(env, method, path, e, why);
			free(joined);
			return NULL;
		}
		if (is_dot_name(base)) {
			if (why)
				*why = VA_FILE_WHY_PATH;
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s: %s does not name a file", method, path);
			free(joined);
			return NULL;
		}
		if (!joined) {
			/* The parent directory is missing (or unreadable). */
			fault_errno(env, method, path, pe, why);
			return NULL;
		}
		real = joined;
	}
	if (!in_roots(roots, real)) {
		fault_outside(env, path, why);
		free(real);
		return NULL;
	}
	return real;
}

static int
check_absolute(xmlrpc_env *env, const char *method, const char *path, int *why)
{
	if (path[0] == '/')
		return 0;
	if (why)
		*why = VA_FILE_WHY_PATH;
	va_fault(env, XMLRPC_TYPE_ERROR,
	    "%s: path must be absolute: %s", method, path);
	return -1;
}

/*
 * Opens dir (a real path) as an O_PATH directory and checks, through
 * /proc/self/fd, that what it holds is still that path (no symlink was
 * swapped in along the way).  The fd, or -1 with a fault.
 */
static int
open_checked_dir(xmlrpc_env *env, const char *method, const char *path, const char *dir,
		 int *why)
{
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fault_errno(env, method, path, errno, why);
		return -1;
	}
	char proc[64], link[PATH_MAX + 1];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
	ssize_t n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0 || (link[n] = '\0', strcmp(link, dir) != 0)) {
		if (why)
			*why = VA_FILE_WHY_REFUSED;
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "%s: %s: %s", method, path, n < 0 ?
		    "cannot verify the directory (is /proc mounted?)" :
		    "the directory changed while it was opened");
		close(dfd);
		return -1;
	}
	return dfd;
}

/*
 * The name of the pseudo filesystem fd is on, or NULL for any other (or
 * when fstatfs fails).  Their "regular" files may block on read
 * (/proc/kmsg, trace_pipe, a FUSE daemon that does not answer): they
 * stay non-blocking.  *unstable (may be NULL) is set for the kernel's
 * own (procfs, sysfs, debugfs, tracefs), whose files have no stable
 * contents (/proc/kcore claims 128 TiB): va.file.checksum refuses those.
 * FUSE files hold real data (sshfs, ntfs-3g) and may be hashed.
 */
const char *
va_file_pseudo_fs(int fd, int *unstable)
{
	struct statfs sf;
	const char *name = NULL;
	int kernel = 1;

	if (fstatfs(fd, &sf) < 0)
		return NULL;
	switch ((uint32_t)sf.f_type) {
	case PROC_SUPER_MAGIC: name = "procfs"; break;
	case SYSFS_MAGIC: name = "sysfs"; break;
	case DEBUGFS_MAGIC: name = "debugfs"; break;
	case TRACEFS_MAGIC: name = "tracefs"; break;
	case FUSE_SUPER_MAGIC: name = "a FUSE filesystem"; kernel = 0; break;
	default: break;
	}
	if (unstable)
		*unstable = name && kernel;
	return name;
}

/*
 * openat() that reports whether it created the file, and then gives it
 * exactly perm.  Returns the fd or -1 with errno.
 */
static int
open_at(int dfd, const char *name, int flags, mode_t perm, int *created)
{
	int fd = -1;

	*created = 0;
	flags |= O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (!(flags & O_CREAT))
		return openat(dfd, name, flags);
	for (int tries = 0; tries < 3; tries++) {
		fd = openat(dfd, name, flags | O_EXCL, perm);
		if (fd >= 0) {
			*created = 1;
			if (fchmod(fd, perm) < 0)
				va_log_warn("fchmod %s", name);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		fd = openat(dfd, name, flags & ~O_CREAT);
		if (fd >= 0 || errno != ENOENT)
			return fd;
	}
	return fd;
}

int
va_file_open_path(xmlrpc_env *env, struct va_agent *a, const char *method,
	  const char *path, int flags, mode_t perm, int *created, int *why)
{
	const char *const *roots = file_roots(a);
	int fd, e;

	if (why)
		*why = 0;
	if (check_absolute(env, method, path, why) < 0)
		return -1;
	if (!roots) {
		fd = open_at(AT_FDCWD, path, flags, perm, created);
		if (fd < 0) {
			fault_errno(env, method, path, errno, why);
			return -1;
		}
	} else {
		char *real = resolve(env, roots, method, path, (flags & O_CREAT) != 0, why);
		if (!real)
			return -1;
		char *slash = strrchr(real, '/');
		const char *base = slash[1] ? slash + 1 : ".";
		char *dir = slash == real ? strdup("/") : strndup(real, (size_t)(slash - real));
		if (!dir) {
			free(real);
			va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", method);
			return -1;
		}
		/* The directory we hold must still be the one we checked. */
		int dfd = open_checked_dir(env, method, path, dir, why);
		if (dfd < 0) {
			free(dir);
			free(real);
			return -1;
		}
		fd = open_at(dfd, base, flags | O_NOFOLLOW, perm, created);
		e = errno;
		close(dfd);
		free(dir);
		free(real);
		if (fd < 0) {
			fault_errno(env, method, path, e, why);
			return -1;
		}
	}

	struct stat st;
	if (fstat(fd, &st) < 0) {
		fault_errno(env, method, path, errno, why);
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		fault_errno(env, method, path, EISDIR, why);
		close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode) && st.st_size > 0 && !va_file_pseudo_fs(fd, NULL)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	return fd;
}

int
va_file_open_dir(xmlrpc_env *env, struct va_agent *a, const char *method, const char *path,
		 char **basep, int *why)
{
	const char *const *roots = file_roots(a);

	*why = 0;
	*basep = NULL;
	if (check_absolute(env, method, path, why) < 0)
		return -1;
	const char *slash = strrchr(path, '/');
	if (is_dot_name(slash + 1)) {
		*why = VA_FILE_WHY_PATH;
		va_fault(env, XMLRPC_TYPE_ERROR, "%s: %s does not name a file", method, path);
		return -1;
	}
	char *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	char *base = strdup(slash + 1);
	char *real = NULL;
	int dfd = -1;
	if (!dir || !base) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", method);
		goto out;
	}
	if (roots) {
		/* The directory must be a root or under one: the file, and its
		 * partial beside it, are then inside. */
		real = resolve(env, roots, method, dir, 0, why);
	} else {
		real = realpath(dir, NULL);
		if (!real)
			fault_errno(env, method, path, errno, why);
	}
	if (!real)
		goto out;
	dfd = open_checked_dir(env, method, path, real, why);
out:
	free(real);
	free(dir);
	if (dfd >= 0)
		*basep = base;
	else
		free(base);
	return dfd;
}

char *
va_file_stat_target(xmlrpc_env *env, struct va_agent *a, const char *path)
{
	const char *const *roots = file_roots(a);
	char *real, *lpath;
	const char *base;

	if (check_absolute(env, "va.file.stat", path, NULL) < 0)
		return NULL;
	if (!roots) {
		char *copy = strdup(path);
		if (!copy)
			va_fault(env, XMLRPC_INTERNAL_ERROR, "va.file.stat: out of memory");
		return copy;
	}
	/* Where the path leads must be inside, and so must the link itself. */
	real = resolve(env, roots, "va.file.stat", path, 0, NULL);
	if (!real)
		return NULL;
	lpath = real_parent_join(path, &base);
	if (!lpath || is_dot_name(base)) {
		free(lpath);
		return real;
	}
	free(real);
	if (!in_roots(roots, lpath)) {
		fault_outside(env, path, NULL);
		free(lpath);
		return NULL;
	}
	return lpath;
}
