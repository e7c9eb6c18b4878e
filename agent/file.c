/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - va.file.{open,read,write,seek,close,stat,checksum} and the
 * table of open file handles.
 *
 * Limits (see agent.h): a read count and a write's decoded data are at
 * most VA_FILE_MAX_CHUNK bytes; at most VA_FILE_MAX_HANDLES handles are
 * open; a handle unused for VA_FILE_IDLE_SECONDS is closed by
 * va_file_sweep().  A read never allocates more than the count asked,
 * nor more than what is left of a regular file (plus one byte to see the
 * end).
 *
 * Handles are positive ints from a counter that starts at a random value
 * and never hands out a number that is still open; numbers of closed
 * handles are not reused until the counter wraps at INT_MAX.
 *
 * Paths must be absolute.  Files are opened non-blocking (a FIFO or a
 * device never stalls the agent: a read that would block returns what it
 * has, even nothing, with eof false); directories are refused.  Only a
 * regular file with a size (st_size > 0) on a filesystem other than the
 * pseudo ones (procfs, sysfs, debugfs, tracefs, FUSE: see pseudo_fs())
 * is switched to blocking I/O, the fast path for disk files: the pseudo
 * ones have "regular" files whose read blocks (/proc/kmsg, tracing's
 * trace_pipe, a FUSE file waiting on its daemon).  Created files get mode
 * 0600, or exactly the perm given to va.file.open (0..0777, not masked by
 * the umask); perm does not change an existing file.
 *
 * File roots (config->file_roots): every path is resolved with realpath()
 * (symlinks and ".." included; for a file va.file.open may create, the
 * parent directory is resolved and the last component appended) and must
 * be one of the roots or under one.  The file is then opened relative to
 * the resolved parent directory, whose fd is checked against
 * /proc/self/fd, with O_NOFOLLOW on the last component, so a symlink
 * swapped in after the check cannot lead outside.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong number or type of parameters, a bad
 *                               mode or whence, a relative path
 *   XMLRPC_INDEX_ERROR          unknown file handle, a negative count, perm
 *                               out of range
 *   XMLRPC_LIMIT_EXCEEDED_ERROR count or data above VA_FILE_MAX_CHUNK, all
 *                               handles in use, VA_FILE_MAX_CHECKSUMS
 *                               checksums already running
 *   XMLRPC_REQUEST_REFUSED_ERROR the path is outside the file roots
 *   XMLRPC_INTERNAL_ERROR       a system call failed (the message carries
 *                               strerror), or out of memory
 */
#include "config.h"

/* O_PATH, strndup, getrandom; configure.ac has no AC_USE_SYSTEM_EXTENSIONS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>
#include <nettle/sha2.h>

#include "b64.h"
#include "xmlscan.h"
#include "buf.h"
#include "log.h"
#include "methods.h"
#include "rpc.h"
#include "serve.h"
#include "xmlgate.h"
#include "session.h"

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

#define CHECKSUM_CHUNK (1024 * 1024)   /* one read() of va.file.checksum */
#define CHECKSUM_SLICE (4 * 1024 * 1024) /* hashed per turn of the loop */
#define READ_FIRST (64 * 1024) /* first buffer of a read whose size is unknown */
#define DEFAULT_PERM 0600

struct handle {
	int id;             /* 0 = free slot */
	int fd;
	uint64_t last_used; /* va_agent_now_ms() */
	char *path;         /* for the log */
};

static struct handle handles[VA_FILE_MAX_HANDLES];
static int next_id;

/* ---- handles ---- */

static int
new_id(void)
{
	if (next_id == 0) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
		next_id = 1 + (int)(r % (1u << 30));
	}
	for (;;) {
		int id = next_id, used = 0;
		next_id = next_id == INT_MAX ? 1 : next_id + 1;
		for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
			if (handles[i].id == id)
				used = 1;
		if (!used)
			return id;
	}
}

static struct handle *
free_slot(void)
{
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		if (handles[i].id == 0)
			return &handles[i];
	return NULL;
}

static void
release(struct handle *h)
{
	free(h->path);
	memset(h, 0, sizeof(*h));
	h->fd = -1;
#ifdef M_TRIM_THRESHOLD
	/* The last handle closed: give the transfer's buffers back (see
	 * va_methods_file_register), so an idle agent stays small. */
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		if (handles[i].id != 0)
			return;
	malloc_trim(0);
#endif
}

/* Parameter i as a handle that is open; faults otherwise.  Marks it used. */
static struct handle *
param_handle(xmlrpc_env *env, xmlrpc_value *params, int i, const char *usage)
{
	int64_t id = 0;

	va_param_int64(env, params, i, usage, &id);
	if (env->fault_occurred)
		return NULL;
	for (int k = 0; id > 0 && id <= INT_MAX && k < VA_FILE_MAX_HANDLES; k++) {
		if (handles[k].id == (int)id) {
			handles[k].last_used = va_agent_now_ms();
			return &handles[k];
		}
	}
	xmlrpc_env_set_fault_formatted(env, XMLRPC_INDEX_ERROR,
	    "unknown file handle %" PRId64, id);
	return NULL;
}

uint64_t
va_file_sweep(uint64_t now_ms)
{
	const uint64_t idle = (uint64_t)VA_FILE_IDLE_SECONDS * 1000;
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		struct handle *h = &handles[i];
		if (h->id == 0)
			continue;
		if (now_ms >= h->last_used && now_ms - h->last_used >= idle) {
			va_log_info("va.file: closing handle %d (%s), idle for %d s",
			    h->id, h->path, VA_FILE_IDLE_SECONDS);
			close(h->fd);
			release(h);
		} else if (h->last_used + idle < next) {
			next = h->last_used + idle;
		}
	}
	return next;
}

static void checksum_stop_all(void);

void
va_file_close_all(void)
{
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		if (handles[i].id != 0) {
			close(handles[i].fd);
			release(&handles[i]);
		}
	}
	checksum_stop_all();
}

/* ---- paths and file roots ---- */

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
fault_outside(xmlrpc_env *env, const char *path)
{
	xmlrpc_env_set_fault_formatted(env, XMLRPC_REQUEST_REFUSED_ERROR,
	    "path %s is outside the allowed file roots", path);
}

static void
fault_errno(xmlrpc_env *env, const char *method, const char *path, int e)
{
	xmlrpc_env_set_fault_formatted(env, XMLRPC_INTERNAL_ERROR,
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
	const char *path, int may_create)
{
	const char *base;
	char *real = realpath(path, NULL);

	if (!real) {
		int e = errno;
		char *joined = real_parent_join(path, &base);
		int pe = errno;
		if (joined && !is_dot_name(base) && !in_roots(roots, joined)) {
			/* Say "outside", not whether it exists. */
			fault_outside(env, path);
			free(joined);
			return NULL;
		}
		if (e != ENOENT || !may_create) {
			fault_errno(env, method, path, e);
			free(joined);
			return NULL;
		}
		if (is_dot_name(base)) {
			xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
			    "%s: %s does not name a file", method, path);
			free(joined);
			return NULL;
		}
		if (!joined) {
			/* The parent directory is missing (or unreadable). */
			fault_errno(env, method, path, pe);
			return NULL;
		}
		real = joined;
	}
	if (!in_roots(roots, real)) {
		fault_outside(env, path);
		free(real);
		return NULL;
	}
	return real;
}

static int
check_absolute(xmlrpc_env *env, const char *method, const char *path)
{
	if (path[0] == '/')
		return 0;
	xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
	    "%s: path must be absolute: %s", method, path);
	return -1;
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
static const char *
pseudo_fs(int fd, int *unstable)
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

/*
 * Opens path (absolute) within the file roots, if any.  Refuses
 * directories.  The fd stays non-blocking, except for a regular file
 * with a size that is not on a pseudo filesystem (see the top of the
 * file).  Returns the fd, or -1 with a fault.
 */
static int
open_path(xmlrpc_env *env, struct va_agent *a, const char *method,
	  const char *path, int flags, mode_t perm, int *created)
{
	const char *const *roots = file_roots(a);
	int fd, e;

	if (check_absolute(env, method, path) < 0)
		return -1;
	if (!roots) {
		fd = open_at(AT_FDCWD, path, flags, perm, created);
		if (fd < 0) {
			fault_errno(env, method, path, errno);
			return -1;
		}
	} else {
		char *real = resolve(env, roots, method, path, (flags & O_CREAT) != 0);
		if (!real)
			return -1;
		char *slash = strrchr(real, '/');
		const char *base = slash[1] ? slash + 1 : ".";
		char *dir = slash == real ? strdup("/") : strndup(real, (size_t)(slash - real));
		if (!dir) {
			free(real);
			xmlrpc_faultf(env, "%s: out of memory", method);
			return -1;
		}
		int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			fault_errno(env, method, path, errno);
			free(dir);
			free(real);
			return -1;
		}
		/* The directory we hold must still be the one we checked. */
		char proc[64], link[PATH_MAX + 1];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
		ssize_t n = readlink(proc, link, sizeof(link) - 1);
		if (n < 0 || (link[n] = '\0', strcmp(link, dir) != 0)) {
			xmlrpc_env_set_fault_formatted(env, XMLRPC_REQUEST_REFUSED_ERROR,
			    "%s: %s: %s", method, path, n < 0 ?
			    "cannot verify the directory (is /proc mounted?)" :
			    "the directory changed while it was opened");
			close(dfd);
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
			fault_errno(env, method, path, e);
			return -1;
		}
	}

	struct stat st;
	if (fstat(fd, &st) < 0) {
		fault_errno(env, method, path, errno);
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		fault_errno(env, method, path, EISDIR);
		close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode) && st.st_size > 0 && !pseudo_fs(fd, NULL)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	return fd;
}

/* fopen-style mode -> open flags; -1 if malformed. */
static int
parse_mode(const char *mode, int *flags)
{
	int plus = 0, bin = 0;

	for (const char *p = mode + (mode[0] ? 1 : 0); *p; p++) {
		if (*p == '+' && !plus)
			plus = 1;
		else if (*p == 'b' && !bin)
			bin = 1;
		else
			return -1;
	}
	switch (mode[0]) {
	case 'r':
		*flags = plus ? O_RDWR : O_RDONLY;
		return 0;
	case 'w':
		*flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
		return 0;
	case 'a':
		*flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
		return 0;
	default:
		return -1;
	}
}

/* ---- methods ---- */

static xmlrpc_value *
method_file_open(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		 void *call_info)
{
	static const char usage[] =
	    "va.file.open: expected (string path, string mode[, int perm])";
	struct va_agent *a = server_info;
	char *path = NULL, *mode = NULL;
	int64_t perm = DEFAULT_PERM;
	int flags = 0, created = 0, n, fd;
	struct handle *h;
	xmlrpc_value *res = NULL;

	(void)call_info;
	n = va_params_count(env, params, 2, 3, usage);
	if (n < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &path, NULL);
	if (!env->fault_occurred)
		va_param_string(env, params, 1, usage, &mode, NULL);
	if (!env->fault_occurred && n == 3)
		va_param_int64(env, params, 2, usage, &perm);
	if (env->fault_occurred)
		goto out;
	va_log_info("va.file.open %s %s", path, mode);
	if (parse_mode(mode, &flags) < 0) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "va.file.open: bad mode \"%s\" (r, r+, w, w+, a or a+, "
		    "optionally with b)", mode);
		goto out;
	}
	if (perm < 0 || perm > 0777) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_INDEX_ERROR,
		    "va.file.open: perm %#" PRIo64 " is out of range (0 to 0777)",
		    (uint64_t)perm);
		goto out;
	}
	h = free_slot();
	if (!h) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.file.open: too many open file handles (at most %d); "
		    "close some", VA_FILE_MAX_HANDLES);
		goto out;
	}
	fd = open_path(env, a, "va.file.open", path, flags, (mode_t)perm, &created);
	if (fd < 0)
		goto out;
	h->fd = fd;
	h->path = path;
	path = NULL;
	h->last_used = va_agent_now_ms();
	h->id = new_id();
	res = xmlrpc_int_new(env, h->id);
	if (env->fault_occurred) {
		close(h->fd);
		release(h);
		goto out;
	}
	va_log_info("va.file.open %s -> handle %d%s", h->path, h->id,
	    created ? " (created)" : "");
out:
	free(path);
	free(mode);
	return res;
}

/*
 * va.file.read's parameters, checked: the open handle and the count
 * (0..VA_FILE_MAX_CHUNK).  NULL with a fault.  Shared by the registry's
 * method and the fast path (va_file_fast_call), so both refuse alike.
 */
static struct handle *
read_params(xmlrpc_env *env, xmlrpc_value *params, size_t *countp)
{
	static const char usage[] = "va.file.read: expected (int handle, int count)";
	struct handle *h;
	int64_t count = 0;

	if (va_params_count(env, params, 2, 2, usage) < 0)
		return NULL;
	h = param_handle(env, params, 0, usage);
	if (!h)
		return NULL;
	va_param_int64(env, params, 1, usage, &count);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.read %d %" PRId64, h->id, count);
	if (count < 0) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_INDEX_ERROR,
		    "va.file.read: count %" PRId64 " is negative", count);
		return NULL;
	}
	if ((uint64_t)count > VA_FILE_MAX_CHUNK) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.file.read: count %" PRId64 " exceeds the maximum of %u "
		    "bytes per call", count, VA_FILE_MAX_CHUNK);
		return NULL;
	}
	*countp = (size_t)count;
	return h;
}

/*
 * Reads up to count bytes at h's position into a new buffer (the caller
 * frees it): *gotp bytes, *eofp when the end was reached.  NULL with a
 * fault.  On a non-blocking fd (a FIFO, a device, a file of a pseudo
 * filesystem) a read that would block ends the call with what it has,
 * possibly nothing, and eof false.  A regular file with a size gets a buffer of what is left (plus
 * one byte to see the end in the same call); a file whose size is not
 * known (procfs says 0, a FIFO, a device) one of READ_FIRST bytes that
 * doubles as it fills, up to count.
 */
static unsigned char *
read_chunk(xmlrpc_env *env, struct handle *h, size_t count, size_t *gotp, int *eofp)
{
	size_t cap, got = 0;
	int eof = 0, sized = 0;
	struct stat st;

	if (fstat(h->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		off_t pos = lseek(h->fd, 0, SEEK_CUR);
		if (pos >= 0) {
			uint64_t left = st.st_size > pos ? (uint64_t)(st.st_size - pos) : 0;
			cap = left + 1 < count ? (size_t)left + 1 : count;
			sized = 1;
		}
	}
	if (!sized)
		cap = count > READ_FIRST ? READ_FIRST : count;
	unsigned char *buf = malloc(cap ? cap : 1);
	if (!buf) {
		xmlrpc_faultf(env, "va.file.read: out of memory");
		return NULL;
	}
	for (;;) {
		if (got == cap) {
			if (cap == count || sized)
				break;
			cap = cap > count / 2 ? count : cap * 2;
			unsigned char *nb = realloc(buf, cap);
			if (!nb) {
				xmlrpc_faultf(env, "va.file.read: out of memory");
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		ssize_t r = read(h->fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0) {
			fault_errno(env, "va.file.read", h->path, errno);
			free(buf);
			return NULL;
		}
		if (r == 0) {
			eof = 1;
			break;
		}
		got += (size_t)r;
	}
	*gotp = got;
	*eofp = eof;
	return buf;
}

static xmlrpc_value *
method_file_read(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		 void *call_info)
{
	struct handle *h;
	size_t count = 0, got = 0;
	int eof = 0;

	(void)server_info;
	(void)call_info;
	h = read_params(env, params, &count);
	if (!h)
		return NULL;
	unsigned char *buf = read_chunk(env, h, count, &got, &eof);
	if (!buf)
		return NULL;
	xmlrpc_value *res = xmlrpc_build_value(env, "{s:6,s:i,s:b}",
	    "data", buf, got, "count", (int)got, "eof", (xmlrpc_bool)eof);
	free(buf);
	return env->fault_occurred ? NULL : res;
}

/*
 * Writes len bytes at h's position; returns how many were taken (fewer
 * when a non-blocking file would block), or -1 with a fault.
 */
static ssize_t
write_chunk(xmlrpc_env *env, struct handle *h, const unsigned char *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(h->fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0) {
			fault_errno(env, "va.file.write", h->path, errno);
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static xmlrpc_value *
method_file_write(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		  void *call_info)
{
	static const char usage[] = "va.file.write: expected (int handle, base64 data)";
	struct handle *h;
	xmlrpc_value *v;
	const unsigned char *data = NULL;
	size_t len = 0;

	(void)server_info;
	(void)call_info;
	if (va_params_count(env, params, 2, 2, usage) < 0)
		return NULL;
	h = param_handle(env, params, 0, usage);
	if (!h)
		return NULL;
	v = va_param_typed(env, params, 1, usage, XMLRPC_TYPE_BASE64, XMLRPC_TYPE_BASE64);
	if (!v)
		return NULL;
	xmlrpc_read_base64_size(env, v, &len);
	if (env->fault_occurred) {
		xmlrpc_DECREF(v);
		return NULL;
	}
	va_log_info("va.file.write %d %zu bytes", h->id, len);
	if (len > VA_FILE_MAX_CHUNK) {
		xmlrpc_DECREF(v);
		xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.file.write: %zu bytes of data exceed the maximum of %u "
		    "bytes per call", len, VA_FILE_MAX_CHUNK);
		return NULL;
	}
	xmlrpc_read_base64(env, v, &len, &data);
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return NULL;
	ssize_t done = write_chunk(env, h, data, len);
	free((void *)data);
	if (done < 0)
		return NULL;
	return xmlrpc_int_new(env, (int)done);
}

static xmlrpc_value *
method_file_seek(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		 void *call_info)
{
	static const char usage[] = "va.file.seek: expected (int handle, int offset, "
	    "int whence (0, 1, 2) or string whence (\"set\", \"cur\", \"end\"))";
	struct handle *h;
	int64_t offset = 0, wn = -1;
	int whence = -1;
	xmlrpc_value *w;

	(void)server_info;
	(void)call_info;
	if (va_params_count(env, params, 3, 3, usage) < 0)
		return NULL;
	h = param_handle(env, params, 0, usage);
	if (!h)
		return NULL;
	va_param_int64(env, params, 1, usage, &offset);
	if (env->fault_occurred)
		return NULL;
	w = va_param_typed(env, params, 2, usage, XMLRPC_TYPE_INT, XMLRPC_TYPE_STRING);
	if (!w)
		return NULL;
	if (xmlrpc_value_type(w) == XMLRPC_TYPE_INT) {
		int i = -1;
		xmlrpc_read_int(env, w, &i);
		wn = i;
		whence = wn == 0 ? SEEK_SET : wn == 1 ? SEEK_CUR : wn == 2 ? SEEK_END : -1;
	} else {
		const char *s = NULL;
		xmlrpc_read_string(env, w, &s);
		if (!env->fault_occurred) {
			whence = strcasecmp(s, "set") == 0 ? SEEK_SET :
			    strcasecmp(s, "cur") == 0 ? SEEK_CUR :
			    strcasecmp(s, "end") == 0 ? SEEK_END : -1;
			free((void *)s);
		}
	}
	xmlrpc_DECREF(w);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.seek %d %" PRId64 " %d", h->id, offset, whence);
	if (whence < 0) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "va.file.seek: bad whence; expected 0, 1, 2, \"set\", \"cur\" or \"end\"");
		return NULL;
	}
	off_t pos = lseek(h->fd, (off_t)offset, whence);
	if (pos < 0) {
		fault_errno(env, "va.file.seek", h->path, errno);
		return NULL;
	}
	return xmlrpc_i8_new(env, (xmlrpc_int64)pos);
}

static xmlrpc_value *
method_file_close(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		  void *call_info)
{
	static const char usage[] = "va.file.close: expected (int handle)";
	struct handle *h;

	(void)server_info;
	(void)call_info;
	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	h = param_handle(env, params, 0, usage);
	if (!h)
		return NULL;
	va_log_info("va.file.close %d (%s)", h->id, h->path);
	int r = close(h->fd), e = errno;
	if (r < 0 && e != EINTR) {
		/* The handle is gone either way; report what close said. */
		fault_errno(env, "va.file.close", h->path, e);
		release(h);
		return NULL;
	}
	release(h);
	return xmlrpc_bool_new(env, 1);
}

static const char *
type_of(mode_t m)
{
	if (S_ISREG(m)) return "file";
	if (S_ISDIR(m)) return "dir";
	if (S_ISLNK(m)) return "link";
	if (S_ISCHR(m)) return "char";
	if (S_ISBLK(m)) return "block";
	if (S_ISFIFO(m)) return "fifo";
	if (S_ISSOCK(m)) return "socket";
	return "unknown";
}

static xmlrpc_value *
method_file_stat(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		 void *call_info)
{
	static const char usage[] = "va.file.stat: expected (string path)";
	struct va_agent *a = server_info;
	const char *const *roots = file_roots(a);
	char *path = NULL, *real = NULL, *lpath = NULL;
	const char *target;
	struct stat st;
	xmlrpc_value *res = NULL;

	(void)call_info;
	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &path, NULL);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.stat %s", path);
	if (check_absolute(env, "va.file.stat", path) < 0)
		goto out;
	target = path;
	if (roots) {
		/* Where the path leads must be inside, and so must the link itself. */
		const char *base;
		real = resolve(env, roots, "va.file.stat", path, 0);
		if (!real)
			goto out;
		target = real;
		lpath = real_parent_join(path, &base);
		if (lpath && !is_dot_name(base)) {
			if (!in_roots(roots, lpath)) {
				fault_outside(env, path);
				goto out;
			}
			target = lpath;
		}
	}
	if (lstat(target, &st) < 0) {
		fault_errno(env, "va.file.stat", path, errno);
		goto out;
	}
	res = xmlrpc_build_value(env, "{s:I,s:i,s:I,s:s}",
	    "size", (xmlrpc_int64)st.st_size,
	    "mode", (int)(st.st_mode & 07777),
	    "mtime", (xmlrpc_int64)st.st_mtime,
	    "type", type_of(st.st_mode));
	if (env->fault_occurred)
		res = NULL;
out:
	free(lpath);
	free(real);
	free(path);
	return res;
}

/* ---- va.file.checksum ----
 *
 * A checksum reads the whole file, which can take a minute (a 20 GB
 * file) on the agent's only thread.  So va-agent answers it later
 * (va_file_checksum_call, called by main.c before the registry): the
 * call is checked and the file opened at once, then hashed
 * CHECKSUM_SLICE bytes per turn of the loop from a deferred function,
 * every other call being served in between, and the reply sent when the
 * end is reached.  At most VA_FILE_MAX_CHECKSUMS run at once; a job whose
 * session was reset since its request is dropped (at its next slice, or
 * when a new checksum call comes), and va_file_close_all() drops them
 * all.  The registry's method (method_file_checksum) does the same
 * checks and hashes in one go: it is what xmlrpc-c's introspection
 * describes, and what runs when the interception does not apply.
 */

struct checksum {
	struct checksum *next;
	unsigned id;             /* the deferred function's argument */
	struct va_agent *a;
	va_session *s;           /* NULL: the registry's run */
	uint64_t epoch;
	char *tag;
	char *path;
	int fd;
	uint64_t bytes;          /* hashed so far */
	uint64_t started;        /* va_agent_now_ms() */
	struct sha256_ctx ctx;
	unsigned char *buf;      /* CHECKSUM_CHUNK bytes */
};

static struct checksum *checksums;
static unsigned checksum_ids;

/* The parameter (a malloc'd path), or NULL with a fault; logs the call. */
static char *
checksum_params(xmlrpc_env *env, xmlrpc_value *params)
{
	static const char usage[] = "va.file.checksum: expected (string path)";
	char *path = NULL;

	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &path, NULL);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.checksum %s", path);
	return path;
}

/*
 * Opens path for hashing: a regular file (a device or a FIFO could be
 * endless) not on a pseudo filesystem.  The fd, or -1 with a fault.
 */
static int
checksum_open(xmlrpc_env *env, struct va_agent *a, const char *path)
{
	int created;
	struct stat st;
	const char *fs;
	int fd = open_path(env, a, "va.file.checksum", path, O_RDONLY, 0, &created);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "va.file.checksum: %s is not a regular file", path);
		close(fd);
		return -1;
	}
	int unstable = 0;
	if ((fs = pseudo_fs(fd, &unstable)) != NULL && unstable) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "va.file.checksum: %s is on %s, not a file with stable contents",
		    path, fs);
		close(fd);
		return -1;
	}
	return fd;
}

/* Fills c for path (checked and opened).  0, or -1 with a fault. */
static int
checksum_init(xmlrpc_env *env, struct checksum *c, struct va_agent *a, char *path)
{
	c->fd = -1;
	c->path = path;
	c->a = a;
	c->started = va_agent_now_ms();
	c->buf = malloc(CHECKSUM_CHUNK);
	if (!c->buf) {
		xmlrpc_faultf(env, "va.file.checksum: out of memory");
		return -1;
	}
	c->fd = checksum_open(env, a, path);
	if (c->fd < 0)
		return -1;
	sha256_init(&c->ctx);
	return 0;
}

static void
checksum_release(struct checksum *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->path);
	free(c->tag);
}

/*
 * Hashes up to limit more bytes (in reads of CHECKSUM_CHUNK): 1 at the
 * end of the file, 0 when there is more, -1 with a fault.
 */
static int
checksum_step(xmlrpc_env *env, struct checksum *c, uint64_t limit)
{
	uint64_t n = 0;

	while (n < limit) {
		ssize_t r = read(c->fd, c->buf, CHECKSUM_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* EAGAIN too: a file that would block has no stable contents. */
			fault_errno(env, "va.file.checksum", c->path, errno);
			return -1;
		}
		if (r == 0)
			return 1;
		sha256_update(&c->ctx, (size_t)r, c->buf);
		n += (uint64_t)r;
		c->bytes += (uint64_t)r;
	}
	return 0;
}

/* The digest as the method's result: a string of 64 lowercase hex digits. */
static xmlrpc_value *
checksum_result(xmlrpc_env *env, struct checksum *c)
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	char hex[2 * SHA256_DIGEST_SIZE + 1];

	sha256_digest(&c->ctx, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	va_log_info("va.file.checksum %s: %" PRIu64 " bytes in %" PRIu64 " ms", c->path,
	    c->bytes, va_agent_now_ms() - c->started);
	xmlrpc_value *res = xmlrpc_string_new(env, hex);
	return env->fault_occurred ? NULL : res;
}

static xmlrpc_value *
method_file_checksum(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	struct checksum c = { .fd = -1 };
	xmlrpc_value *res = NULL;
	int r;

	(void)call_info;
	char *path = checksum_params(env, params);
	if (!path)
		return NULL;
	if (checksum_init(env, &c, server_info, path) == 0) {
		while ((r = checksum_step(env, &c, UINT64_MAX)) == 0)
			;
		if (r > 0)
			res = checksum_result(env, &c);
	}
	checksum_release(&c);
	return res;
}

/* Answers c's request: the result, or the fault in env. */
static void
checksum_reply(struct checksum *c, xmlrpc_env *env, xmlrpc_value *res)
{
	struct va_buf out = { 0 };

	if (!env->fault_occurred)
		va_rpc_serialize_response(env, &out, res);
	if (env->fault_occurred) {
		out.len = 0;
		if (va_rpc_serialize_fault(&out, env->fault_code, env->fault_string) < 0) {
			va_log_warnx("request %s: out of memory, no reply", c->tag);
			va_buf_free(&out);
			return;
		}
	}
	va_rpc_reply(c->s, c->epoch, c->tag, out.data, out.len);
	va_buf_free(&out);
}

static void
checksum_unlink(struct checksum *c)
{
	for (struct checksum **pp = &checksums; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	checksum_release(c);
	free(c);
}

/* Drops the jobs of an earlier session: nobody waits for their answer. */
static void
checksum_drop_stale(void)
{
	struct checksum *c = checksums, *next;

	for (; c; c = next) {
		next = c->next;
		if (va_session_epoch(c->s) != c->epoch) {
			va_log_info("va.file.checksum %s: the session was reset, stopped after %" PRIu64
			    " bytes", c->path, c->bytes);
			checksum_unlink(c);
		}
	}
}

/* Drops every job, unanswered (the agent is stopping). */
static void
checksum_stop_all(void)
{
	while (checksums) {
		va_log_info("va.file.checksum %s: stopped after %" PRIu64 " bytes, unanswered",
		    checksums->path, checksums->bytes);
		checksum_unlink(checksums);
	}
}

/* The deferred function of a job: one slice, then again or the reply. */
static void
checksum_slice(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct checksum *c;
	xmlrpc_env env;
	xmlrpc_value *res = NULL;

	checksum_drop_stale();
	for (c = checksums; c && c->id != id; c = c->next)
		;
	if (!c)
		return; /* dropped meanwhile */
	xmlrpc_env_init(&env);
	int r = checksum_step(&env, c, CHECKSUM_SLICE);
	if (r == 0) {
		if (va_agent_defer(c->a, 0, checksum_slice, arg) == 0) {
			xmlrpc_env_clean(&env);
			return;
		}
		xmlrpc_faultf(&env, "va.file.checksum: out of memory");
	}
	if (r > 0)
		res = checksum_result(&env, c);
	checksum_reply(c, &env, res);
	if (res)
		xmlrpc_DECREF(res);
	xmlrpc_env_clean(&env);
	checksum_unlink(c);
}

int
va_file_checksum_call(struct va_agent *a, struct va_session *s, uint64_t epoch, const char *tag,
		      const uint8_t *body, size_t len)
{
	char name[VA_RPC_MAX_METHOD_NAME + 1];
	xmlrpc_env env;
	char *mname = NULL;
	xmlrpc_value *params = NULL;
	struct checksum *c;
	char *path;
	unsigned running = 0;

	if (va_rpc_method_name(body, len, name) < 0 || strcmp(name, "va.file.checksum") != 0)
		return 0;
	/* A method the RPC lists disable is refused (and logged) by the registry. */
	if (!va_agent_method_enabled(a, name))
		return 0;
	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, body, len, &mname, &params);
	if (env.fault_occurred) {
		/* Malformed: the registry says so. */
		xmlrpc_env_clean(&env);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->tag = strdup(tag);
	if (!c || !c->tag) {
		/* A fault, not the registry's method: that one would hash the
		 * whole file on the loop in one go. */
		struct checksum tmp = { .s = s, .epoch = epoch, .tag = (char *)tag };
		free(c ? c->tag : NULL);
		free(c);
		xmlrpc_DECREF(params);
		free(mname);
		xmlrpc_faultf(&env, "va.file.checksum: out of memory");
		checksum_reply(&tmp, &env, NULL);
		xmlrpc_env_clean(&env);
		return 1;
	}
	c->fd = -1;
	c->s = s;
	c->epoch = epoch;
	path = checksum_params(&env, params);
	if (path) {
		checksum_drop_stale();
		for (struct checksum *k = checksums; k; k = k->next)
			running++;
		if (running >= VA_FILE_MAX_CHECKSUMS) {
			va_log_warnx("va.file.checksum %s: refused, %u checksums are running", path,
			    running);
			xmlrpc_env_set_fault_formatted(&env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "va.file.checksum: busy: %u checksums are running (at most %d at once); "
			    "try again when one has finished", running, VA_FILE_MAX_CHECKSUMS);
			free(path);
		} else if (checksum_init(&env, c, a, path) == 0) {
			c->id = ++checksum_ids;
			if (va_agent_defer(a, 0, checksum_slice, (void *)(uintptr_t)c->id) == 0) {
				c->next = checksums;
				checksums = c;
				c = NULL; /* running: checksum_slice answers */
			} else {
				xmlrpc_faultf(&env, "va.file.checksum: out of memory");
			}
		}
	}
	if (c) {
		/* A fault, answered now. */
		checksum_reply(c, &env, NULL);
		checksum_release(c);
		free(c);
	}
	if (params)
		xmlrpc_DECREF(params);
	free(mname);
	xmlrpc_env_clean(&env);
	return 1;
}

/* ---- the fast path of va.file.read and va.file.write ----
 *
 * Every byte of a file transfer passes through these two methods, and
 * xmlrpc-c's generic path costs far more than the I/O: a va.file.read
 * result is built as a value, serialised by xmlrpc-c (its base64 coder
 * runs at ~0.5 GB/s, its serialiser at ~150 MB/s), and a va.file.write
 * call's megabyte of base64 is parsed into a value tree and decoded
 * (~95 MB/s).  va_file_fast_call answers the common, well-formed calls
 * itself, with the same checks, faults and log lines, and a response
 * byte for byte like the registry's:
 *   - va.file.read: the (small) call is parsed by xmlrpc-c and checked by
 *     the method's own read_params(); the data is base64-encoded straight
 *     into the response (common/b64.h).
 *   - va.file.write: the call is matched against the exact shape XML-RPC
 *     clients send (see scan_write_call), and the base64 decoded straight
 *     into the buffer that is written.
 * Anything else (another shape, comments, entities, a bad handle, an
 * invalid base64, too much data) is left to the registry (return 0)
 * before any side effect, so its faults stay the registry's own.
 */

static const char response_head[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n";
static const char response_tail[] = "</params>\r\n</methodResponse>\r\n";

/* A fault response into out; 1 (answered), or 0 when out of memory. */
static int
fast_fault(xmlrpc_env *env, struct va_buf *out)
{
	out->len = 0;
	return va_rpc_serialize_fault(out, env->fault_code, env->fault_string) == 0;
}

static int
fast_read(const uint8_t *body, size_t len, struct va_buf *out)
{
	static const char head[] =
		"<param><value><struct>\r\n<member><name>data</name>\r\n<value><base64>\r\n";
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL;
	unsigned char *buf = NULL;
	size_t count = 0, got = 0;
	int eof = 0, answered = 0;
	char tail[256];

	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, body, len, &name, &params);
	if (env.fault_occurred)
		goto out; /* malformed: the registry says so */
	struct handle *h = read_params(&env, params, &count);
	if (h)
		buf = read_chunk(&env, h, count, &got, &eof);
	if (!buf) {
		answered = fast_fault(&env, out);
		goto out;
	}
	int n = snprintf(tail, sizeof(tail),
		"</base64></value></member>\r\n<member><name>count</name>\r\n"
		"<value><i4>%d</i4></value></member>\r\n<member><name>eof</name>\r\n"
		"<value><boolean>%d</boolean></value></member>\r\n"
		"</struct></value></param>\r\n", (int)got, eof);
	size_t need = sizeof(response_head) - 1 + sizeof(head) - 1 + va_b64_encoded_size(got) +
		      (size_t)n + sizeof(response_tail) - 1;
	if (va_buf_reserve(out, need) < 0)
		goto out; /* the registry will not do better: it fails the same */
	va_buf_append_str(out, response_head);
	va_buf_append_str(out, head);
	out->len += va_b64_encode_lines(buf, got, (char *)out->data + out->len);
	va_buf_append(out, tail, (size_t)n);
	va_buf_append_str(out, response_tail);
	answered = 1;
out:
	free(buf);
	if (params)
		xmlrpc_DECREF(params);
	free((void *)name);
	xmlrpc_env_clean(&env);
	return answered;
}

/*
 * Matches exactly this shape, as Python's xmlrpc.client, xmlrpc-c and
 * vactl write it (white space allowed only between elements, not inside
 * <value>):
 *   [<?xml ...?>] <methodCall> <methodName>va.file.write</methodName>
 *   <params> <param><value><int|i4|i8>ID</...></value></param>
 *   <param><value><base64>TEXT</base64></value></param> </params>
 *   </methodCall>
 * and hands back the handle id and the base64 text (not checked yet).
 */
static int
scan_write_call(const uint8_t *body, size_t len, int64_t *id, const char **b64, size_t *b64len)
{
	struct va_scan s = { (const char *)body, (const char *)body + len };

	va_scan_ws(&s);
	if (s.end - s.p >= 5 && memcmp(s.p, "<?xml", 5) == 0) {
		/* The declaration: printable ASCII up to "?>", in the first 256 bytes. */
		const char *q = s.p + 5;
		while (q + 1 < s.end && q - s.p < 256 && !(q[0] == '?' && q[1] == '>')) {
			if (*q < 0x20 || *q > 0x7e || *q == '<' || *q == '>')
				return -1;
			q++;
		}
		if (q + 1 >= s.end || q[0] != '?')
			return -1;
		s.p = q + 2;
	}
	if (va_scan_lit(&s, "<methodCall>") || va_scan_lit(&s, "<methodName>") ||
	    va_scan_tight(&s, "va.file.write</methodName>") || va_scan_lit(&s, "<params>") ||
	    va_scan_lit(&s, "<param>") || va_scan_lit(&s, "<value>"))
		return -1;
	const char *close;
	int64_t lo, hi;
	if (!va_scan_tight(&s, "<int>")) {
		close = "</int>";
		lo = INT32_MIN;
		hi = INT32_MAX;
	} else if (!va_scan_tight(&s, "<i4>")) {
		close = "</i4>";
		lo = INT32_MIN;
		hi = INT32_MAX;
	} else if (!va_scan_tight(&s, "<i8>")) {
		close = "</i8>";
		lo = INT64_MIN;
		hi = INT64_MAX;
	} else {
		return -1;
	}
	/* Plain decimal digits only: a sign, spaces or 20 digits go to xmlrpc-c. */
	int64_t v = 0;
	int digits = 0;
	while (s.p < s.end && *s.p >= '0' && *s.p <= '9' && digits < 18) {
		v = v * 10 + (*s.p - '0');
		s.p++;
		digits++;
	}
	if (digits == 0 || v < lo || v > hi)
		return -1;
	if (va_scan_tight(&s, close) || va_scan_tight(&s, "</value>") || va_scan_lit(&s, "</param>") ||
	    va_scan_lit(&s, "<param>") || va_scan_lit(&s, "<value>") || va_scan_tight(&s, "<base64>"))
		return -1;
	const char *text = s.p;
	const char *lt = memchr(s.p, '<', (size_t)(s.end - s.p));
	if (!lt)
		return -1;
	s.p = lt;
	if (va_scan_tight(&s, "</base64>") || va_scan_tight(&s, "</value>") || va_scan_lit(&s, "</param>") ||
	    va_scan_lit(&s, "</params>") || va_scan_lit(&s, "</methodCall>"))
		return -1;
	va_scan_ws(&s);
	if (s.p != s.end)
		return -1;
	*id = v;
	*b64 = text;
	*b64len = (size_t)(lt - text);
	return 0;
}

static struct handle *
find_handle(int64_t id)
{
	for (int k = 0; id > 0 && id <= INT_MAX && k < VA_FILE_MAX_HANDLES; k++)
		if (handles[k].id == (int)id)
			return &handles[k];
	return NULL;
}

static int
fast_write(const uint8_t *body, size_t len, struct va_buf *out)
{
	int64_t id;
	const char *text;
	size_t tlen;
	struct va_b64_dec dec;
	xmlrpc_env env;
	char result[160];

	if (scan_write_call(body, len, &id, &text, &tlen) < 0)
		return 0;
	struct handle *h = find_handle(id);
	if (!h)
		return 0; /* the registry's "unknown file handle" */
	/* At most 3 bytes per 4 characters; more than the limit: the registry's fault. */
	size_t cap = tlen / 4 * 3 + 3;
	if (cap > VA_FILE_MAX_CHUNK + 3)
		cap = VA_FILE_MAX_CHUNK + 3;
	unsigned char *data = malloc(cap);
	if (!data)
		return 0;
	va_b64_dec_init(&dec, data, cap);
	if (va_b64_dec_feed(&dec, text, tlen) < 0 || va_b64_dec_finish(&dec) < 0 ||
	    dec.len > VA_FILE_MAX_CHUNK) {
		free(data);
		return 0;
	}
	h->last_used = va_agent_now_ms();
	va_log_info("va.file.write %d %zu bytes", h->id, dec.len);
	xmlrpc_env_init(&env);
	ssize_t done = write_chunk(&env, h, data, dec.len);
	free(data);
	int answered;
	if (done < 0) {
		answered = fast_fault(&env, out);
	} else {
		snprintf(result, sizeof(result), "%s<param><value><i4>%d</i4></value></param>\r\n%s",
			 response_head, (int)done, response_tail);
		answered = va_buf_append_str(out, result) == 0;
	}
	xmlrpc_env_clean(&env);
	return answered;
}

int
va_file_fast_call(struct va_agent *a, const uint8_t *body, size_t len, struct va_buf *out)
{
	char name[VA_RPC_MAX_METHOD_NAME + 1];

	if (va_rpc_method_name(body, len, name) < 0)
		return 0;
	/* A method the RPC lists disable is refused (and logged) by the registry. */
	if (!strcmp(name, "va.file.read"))
		return va_agent_method_enabled(a, name) && fast_read(body, len, out);
	if (!strcmp(name, "va.file.write"))
		return va_agent_method_enabled(a, name) && fast_write(body, len, out);
	return 0;
}

static const struct xmlrpc_method_info3 file_methods[] = {
	{
		.methodName = "va.file.open",
		.methodFunction = method_file_open,
		.signatureString = "i:ss,i:ssi",
		.help = "va.file.open(string path, string mode[, int perm]) -> "
			"int handle. path must be absolute. mode as fopen: r, "
			"r+, w, w+, a, a+ (a b is allowed and ignored). A file "
			"created here gets mode perm (0 to 0777, default 0600, "
			"not masked by the umask). At most 64 handles are open "
			"at once; a handle unused for 300 s is closed. With "
			"--file-root, the real path (symlinks and .. resolved) "
			"must be inside a root.",
	},
	{
		.methodName = "va.file.read",
		.methodFunction = method_file_read,
		.signatureString = "S:ii",
		.help = "va.file.read(int handle, int count) -> struct {data: "
			"base64, count: int, eof: boolean}. Reads up to count "
			"bytes (0 to 8388608). eof is true when the end of the "
			"file was reached. On a FIFO, a device or a file of a "
			"pseudo filesystem (procfs, sysfs, debugfs, tracefs, "
			"FUSE), returns what is available without waiting: "
			"fewer bytes than asked, even none, with eof false.",
	},
	{
		.methodName = "va.file.write",
		.methodFunction = method_file_write,
		.signatureString = "i:i6",
		.help = "va.file.write(int handle, base64 data) -> int bytes "
			"written. data is at most 8388608 bytes (decoded).",
	},
	{
		.methodName = "va.file.seek",
		.methodFunction = method_file_seek,
		.signatureString = "I:iii,I:iIi,I:iis,I:iIs",
		.help = "va.file.seek(int handle, int|i8 offset, whence) -> i8 "
			"new position. whence is 0, 1, 2 or \"set\", \"cur\", "
			"\"end\" (from the start, the current position, the "
			"end).",
	},
	{
		.methodName = "va.file.close",
		.methodFunction = method_file_close,
		.signatureString = "b:i",
		.help = "va.file.close(int handle) -> true. Closes the handle.",
	},
	{
		.methodName = "va.file.stat",
		.methodFunction = method_file_stat,
		.signatureString = "S:s",
		.help = "va.file.stat(string path) -> struct {size: i8, mode: "
			"int (permission bits), mtime: i8 (unix seconds), type: "
			"string (file, dir, link, char, block, fifo, socket)}. "
			"A symlink is described itself, not its target.",
	},
	{
		.methodName = "va.file.checksum",
		.methodFunction = method_file_checksum,
		.signatureString = "s:s",
		.help = "va.file.checksum(string path) -> string: the SHA-256 "
			"of a regular file, 64 lowercase hex digits. Files of "
			"the kernel's pseudo filesystems (procfs, sysfs, "
			"debugfs, tracefs) are refused. Hashed 4 MiB at a time, other calls "
			"being served in between; at most 4 at once (more: "
			"busy fault).",
	},
};

void
va_methods_file_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a)
{
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
	/*
	 * Each chunk of a transfer allocates and frees megabytes (the data,
	 * the response, its frame), and glibc gave them back to the kernel
	 * each time (munmap, heap trimming) and faulted them in again, zeroed:
	 * ~20% of the agent's CPU time in a pull.  Up to the frame limit they
	 * stay in the heap now; release() trims it when the last handle
	 * closes.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
#endif
	va_methods_add(env, r, a, file_methods,
	    sizeof(file_methods) / sizeof(file_methods[0]));
}
