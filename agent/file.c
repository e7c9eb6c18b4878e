/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - the group "file": va.file.{open,read,write,seek,close,stat,
 * checksum}, its state (struct va_files: the table of open file handles
 * and the running checksums) and its interceptor.  file.h says which of
 * its four files does what: the paths and file roots are in
 * file-roots.c, va.file.checksum in file-checksum.c, the fast path of
 * va.file.read and va.file.write in file-fast.c.
 *
 * Limits (see agent-limits.h): a read count and a write's decoded data
 * are at most VA_FILE_MAX_CHUNK bytes; at most VA_FILE_MAX_HANDLES
 * handles are open; a handle unused for VA_FILE_IDLE_SECONDS is closed by
 * the group's sweep.  A read never allocates more than the count asked,
 * nor more than what is left of a regular file (plus one byte to see the
 * end).
 *
 * Handles are positive ints from a counter that starts at a random value
 * and never hands out a number that is still open; numbers of closed
 * handles are not reused until the counter wraps at INT_MAX.
 *
 * Paths must be absolute.  A read of a FIFO, a device or a file of a
 * pseudo filesystem that would block returns what it has, even nothing,
 * with eof false (file-roots.c opens those non-blocking).  Created files
 * get mode 0600, or exactly the perm given to va.file.open (0..0777, not
 * masked by the umask); perm does not change an existing file.
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

/* getrandom; configure.ac has no AC_USE_SYSTEM_EXTENSIONS. */
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
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

#define READ_FIRST (64 * 1024) /* first buffer of a read whose size is unknown */
#define DEFAULT_PERM 0600

/* ---- handles ---- */

static int
new_id(struct va_files *fs)
{
	if (fs->next_id == 0) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
		fs->next_id = 1 + (int)(r % (1u << 30));
	}
	for (;;) {
		int id = fs->next_id, used = 0;
		fs->next_id = fs->next_id == INT_MAX ? 1 : fs->next_id + 1;
		for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
			if (fs->handles[i].id == id)
				used = 1;
		if (!used)
			return id;
	}
}

static struct va_file_handle *
free_slot(struct va_files *fs)
{
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		if (fs->handles[i].id == 0)
			return &fs->handles[i];
	return NULL;
}

void
va_file_release(struct va_files *fs, struct va_file_handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	if (h->dirfd >= 0)
		close(h->dirfd);
	free(h->path);
	free(h->name);
	free(h->partial);
	memset(h, 0, sizeof(*h));
	h->fd = -1;
	h->dirfd = -1;
#ifdef M_TRIM_THRESHOLD
	/* The last handle closed: give the transfer's buffers back (see
	 * file_init), so an idle agent stays small. */
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		if (fs->handles[i].id != 0)
			return;
	malloc_trim(0);
#endif
}

static struct va_file_handle *
find_kind(struct va_files *fs, int64_t id, int stream)
{
	for (int k = 0; id > 0 && id <= INT_MAX && k < VA_FILE_MAX_HANDLES; k++)
		if (fs->handles[k].id == (int)id)
			return (fs->handles[k].kind != VA_FILE_RPC) == stream ? &fs->handles[k] : NULL;
	return NULL;
}

struct va_file_handle *
va_file_find(struct va_files *fs, int64_t id)
{
	return find_kind(fs, id, 0);
}

struct va_file_handle *
va_file_find_stream(struct va_files *fs, int64_t id)
{
	return find_kind(fs, id, 1);
}

/* Parameter i as a handle that is open; faults otherwise.  Marks it used. */
static struct va_file_handle *
param_handle(xmlrpc_env *env, struct va_files *fs, xmlrpc_value *params, int i,
	     const char *usage)
{
	int64_t id = 0;

	va_param_int64(env, params, i, usage, &id);
	if (env->fault_occurred)
		return NULL;
	struct va_file_handle *h = va_file_find(fs, id);
	if (h) {
		h->last_used = va_agent_now_ms(fs->a);
		return h;
	}
	for (unsigned k = 0; k < VA_FILE_RECLAIMED_MEMORY; k++) {
		if (fs->reclaimed[k].id != 0 && fs->reclaimed[k].id == id) {
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "file handle %" PRId64 " was closed by the agent: it was idle for "
			    "%" PRIu64 " s when all %d handles were in use and another "
			    "va.file.open needed one", id, fs->reclaimed[k].idle_ms / 1000,
			    VA_FILE_MAX_HANDLES);
			return NULL;
		}
	}
	va_fault(env, XMLRPC_INDEX_ERROR,
	    "unknown file handle %" PRId64, id);
	return NULL;
}

/*
 * No free slot: closes the least recently used handle idle for at least
 * VA_FILE_RECLAIM_SECONDS and returns its slot, or NULL when every
 * handle was used more recently (then the caller refuses).
 */
static struct va_file_handle *
reclaim(struct va_files *fs)
{
	uint64_t now = va_agent_now_ms(fs->a);
	struct va_file_handle *lru = NULL;

	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		struct va_file_handle *h = &fs->handles[i];
		if (h->id != 0 && !h->busy && (!lru || h->last_used < lru->last_used))
			lru = h;
	}
	if (!lru || now < lru->last_used ||
	    now - lru->last_used < (uint64_t)VA_FILE_RECLAIM_SECONDS * 1000)
		return NULL;
	unsigned k = fs->nreclaimed++ % VA_FILE_RECLAIMED_MEMORY;
	fs->reclaimed[k].id = lru->id;
	fs->reclaimed[k].idle_ms = now - lru->last_used;
	va_log_warnx("va.file.open: all %d handles in use: closing handle %d (%s), idle for "
		     "%" PRIu64 " s", VA_FILE_MAX_HANDLES, lru->id, lru->path,
		     (now - lru->last_used) / 1000);
	va_file_release(fs, lru);
	return lru;
}

struct va_file_handle *
va_file_new_handle(struct va_files *fs, const char *method)
{
	struct va_file_handle *h = free_slot(fs);

	(void)method;
	if (!h)
		h = reclaim(fs);
	if (h)
		h->id = new_id(fs);
	return h;
}

/* The group's sweep: closes the handles idle for VA_FILE_IDLE_SECONDS. */
static uint64_t
file_sweep(void *state, uint64_t now_ms)
{
	struct va_files *fs = state;
	const uint64_t idle = (uint64_t)VA_FILE_IDLE_SECONDS * 1000;
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		struct va_file_handle *h = &fs->handles[i];
		if (h->id == 0)
			continue;
		if (h->busy) {
			if (now_ms + idle < next)
				next = now_ms + idle;
		} else if (now_ms >= h->last_used && now_ms - h->last_used >= idle) {
			va_log_info("va.file: closing handle %d (%s), idle for %d s",
			    h->id, h->path, VA_FILE_IDLE_SECONDS);
			va_file_release(fs, h);
		} else if (h->last_used + idle < next) {
			next = h->last_used + idle;
		}
	}
	return next;
}

static void
close_all(struct va_files *fs)
{
	/* The jobs first: a commit's hash still uses its handle. */
	va_file_checksum_stop_all(fs);
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		if (fs->handles[i].id != 0)
			va_file_release(fs, &fs->handles[i]);
}

void
va_file_close_all(struct va_agent *a)
{
	struct va_files *fs = va_agent_group_state(a, &va_group_file);
	if (fs)
		close_all(fs);
}

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
	struct va_files *fs = va_group_state(server_info);
	char *path = NULL, *mode = NULL;
	int64_t perm = DEFAULT_PERM;
	int flags = 0, created = 0, n, fd;
	struct va_file_handle *h;
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
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.file.open: bad mode \"%s\" (r, r+, w, w+, a or a+, "
		    "optionally with b)", mode);
		goto out;
	}
	if (perm < 0 || perm > 0777) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.file.open: perm %#" PRIo64 " is out of range (0 to 0777)",
		    (uint64_t)perm);
		goto out;
	}
	h = va_file_new_handle(fs, "va.file.open");
	if (!h) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.file.open: too many open file handles (at most %d), each used in the "
		    "last %d s; close some", VA_FILE_MAX_HANDLES, VA_FILE_RECLAIM_SECONDS);
		goto out;
	}
	fd = va_file_open_path(env, fs->a, "va.file.open", path, flags, (mode_t)perm, &created,
			       NULL);
	if (fd < 0) {
		va_file_release(fs, h);
		goto out;
	}
	h->fd = fd;
	h->path = path;
	path = NULL;
	h->last_used = va_agent_now_ms(fs->a);
	res = xmlrpc_int_new(env, h->id);
	if (env->fault_occurred) {
		va_file_release(fs, h);
		goto out;
	}
	va_agent_sweep_at(fs->a, h->last_used + (uint64_t)VA_FILE_IDLE_SECONDS * 1000);
	va_log_info("va.file.open %s -> handle %d%s", h->path, h->id,
	    created ? " (created)" : "");
out:
	free(path);
	free(mode);
	return res;
}

/* See file.h. */
struct va_file_handle *
va_file_read_params(xmlrpc_env *env, struct va_files *fs, xmlrpc_value *params, size_t *countp)
{
	static const char usage[] = "va.file.read: expected (int handle, int count)";
	struct va_file_handle *h;
	int64_t count = 0;

	if (va_params_count(env, params, 2, 2, usage) < 0)
		return NULL;
	h = param_handle(env, fs, params, 0, usage);
	if (!h)
		return NULL;
	va_param_int64(env, params, 1, usage, &count);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.read %d %" PRId64, h->id, count);
	if (count < 0) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.file.read: count %" PRId64 " is negative", count);
		return NULL;
	}
	if ((uint64_t)count > VA_FILE_MAX_CHUNK) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
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
unsigned char *
va_file_read_chunk(xmlrpc_env *env, struct va_file_handle *h, size_t count, size_t *gotp,
		   int *eofp)
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
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.file.read: out of memory");
		return NULL;
	}
	for (;;) {
		if (got == cap) {
			if (cap == count || sized)
				break;
			cap = cap > count / 2 ? count : cap * 2;
			unsigned char *nb = realloc(buf, cap);
			if (!nb) {
				va_fault(env, XMLRPC_INTERNAL_ERROR, "va.file.read: out of memory");
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
			va_file_fault_errno(env, "va.file.read", h->path, errno);
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
	struct va_file_handle *h;
	size_t count = 0, got = 0;
	int eof = 0;

	(void)call_info;
	h = va_file_read_params(env, va_group_state(server_info), params, &count);
	if (!h)
		return NULL;
	unsigned char *buf = va_file_read_chunk(env, h, count, &got, &eof);
	if (!buf)
		return NULL;
	xmlrpc_value *res = xmlrpc_build_value(env, "{s:6,s:i,s:b}",
	    "data", buf, got, "count", (int)got, "eof", (xmlrpc_bool)eof);
	free(buf);
	return env->fault_occurred ? NULL : res;
}

ssize_t
va_file_write_chunk(xmlrpc_env *env, struct va_file_handle *h, const unsigned char *data,
		    size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(h->fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0) {
			va_file_fault_errno(env, "va.file.write", h->path, errno);
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
	struct va_file_handle *h;
	xmlrpc_value *v;
	const unsigned char *data = NULL;
	size_t len = 0;

	(void)call_info;
	if (va_params_count(env, params, 2, 2, usage) < 0)
		return NULL;
	h = param_handle(env, va_group_state(server_info), params, 0, usage);
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
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.file.write: %zu bytes of data exceed the maximum of %u "
		    "bytes per call", len, VA_FILE_MAX_CHUNK);
		return NULL;
	}
	xmlrpc_read_base64(env, v, &len, &data);
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return NULL;
	ssize_t done = va_file_write_chunk(env, h, data, len);
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
	struct va_file_handle *h;
	int64_t offset = 0, wn = -1;
	int whence = -1;
	xmlrpc_value *w;

	(void)call_info;
	if (va_params_count(env, params, 3, 3, usage) < 0)
		return NULL;
	h = param_handle(env, va_group_state(server_info), params, 0, usage);
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
		char *s = NULL;
		va_text_read(env, w, &s, NULL);
		if (!env->fault_occurred) {
			whence = strcasecmp(s, "set") == 0 ? SEEK_SET :
			    strcasecmp(s, "cur") == 0 ? SEEK_CUR :
			    strcasecmp(s, "end") == 0 ? SEEK_END : -1;
			free(s);
		}
	}
	xmlrpc_DECREF(w);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.seek %d %" PRId64 " %d", h->id, offset, whence);
	if (whence < 0) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.file.seek: bad whence; expected 0, 1, 2, \"set\", \"cur\" or \"end\"");
		return NULL;
	}
	off_t pos = lseek(h->fd, (off_t)offset, whence);
	if (pos < 0) {
		va_file_fault_errno(env, "va.file.seek", h->path, errno);
		return NULL;
	}
	return xmlrpc_i8_new(env, (xmlrpc_int64)pos);
}

static xmlrpc_value *
method_file_close(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		  void *call_info)
{
	static const char usage[] = "va.file.close: expected (int handle)";
	struct va_files *fs = va_group_state(server_info);
	struct va_file_handle *h;

	(void)call_info;
	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	h = param_handle(env, fs, params, 0, usage);
	if (!h)
		return NULL;
	va_log_info("va.file.close %d (%s)", h->id, h->path);
	int r = close(h->fd), e = errno;
	h->fd = -1;
	if (r < 0 && e != EINTR) {
		/* The handle is gone either way; report what close said. */
		va_file_fault_errno(env, "va.file.close", h->path, e);
		va_file_release(fs, h);
		return NULL;
	}
	va_file_release(fs, h);
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
	struct va_files *fs = va_group_state(server_info);
	char *path = NULL, *target = NULL;
	struct stat st;
	xmlrpc_value *res = NULL;

	(void)call_info;
	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &path, NULL);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.stat %s", path);
	target = va_file_stat_target(env, fs->a, path);
	if (!target)
		goto out;
	if (lstat(target, &st) < 0) {
		va_file_fault_errno(env, "va.file.stat", path, errno);
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
	free(target);
	free(path);
	return res;
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
		.methodFunction = va_file_method_checksum,
		.signatureString = "s:s",
		.help = "va.file.checksum(string path) -> string: the SHA-256 "
			"of a regular file, 64 lowercase hex digits. Files of "
			"the kernel's pseudo filesystems (procfs, sysfs, "
			"debugfs, tracefs) are refused. Hashed 4 MiB at a time, other calls "
			"being served in between; at most 4 at once (more: "
			"busy fault).",
	},
};

/* The interceptor: the calls answered before the registry. */
static int
file_intercept(void *state, const struct va_call *call)
{
	if (strcmp(call->method, "va.file.read") == 0 || strcmp(call->method, "va.file.write") == 0)
		return va_file_fast(state, call);
	if (strcmp(call->method, "va.file.checksum") == 0)
		return va_file_checksum_start(state, call);
	return 0;
}

static int
file_init(struct va_agent *a, void **state)
{
	struct va_files *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -1;
	fs->a = a;
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		fs->handles[i].fd = fs->handles[i].dirfd = -1;
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
	*state = fs;
	return 0;
}

static void
file_cleanup(void *state)
{
	close_all(state);
	free(state);
}

const struct va_method_group va_group_file = {
	.name = "file",
	VA_GROUP_METHODS(file_methods),
	.init = file_init,
	.cleanup = file_cleanup,
	.intercept = file_intercept,
	.sweep = file_sweep,
	.binary_ops = va_file_binary_ops,
	.nbinary_ops = VA_FILE_NBINARY_OPS,
};
