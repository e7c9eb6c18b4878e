/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file-stream.c - the binary operations of the group "file" (file.h):
 * how va-proxy reads and writes guest files for its HTTP endpoints,
 * without base64 or XML (protocol 2; the contract is
 * common/filestream.h, the reasons docs/PROTOCOL.md section 8).
 *
 * The core hands each operation here after the RPC lists allowed the
 * methods it stands for (agent.h).  Paths are checked as va.file.*
 * checks them (file-roots.c: absolute, within the file roots, the last
 * component never followed when swapped), and a stream handle is a slot
 * of the same table (at most VA_FILE_MAX_HANDLES in all, idle ones
 * closed by the sweep), of a kind of its own: va.file.read cannot use
 * it, nor pread a handle of va.file.open.  It belongs to the session
 * that opened it; the first operation of a later session closes it (its
 * proxy went away).
 *
 * Reading: pread at the offset asked for (regular files and block
 * devices), or read in order (FIFOs, character devices: the offset is
 * then ignored).  A read fills its count unless the file ends (eof=1) or,
 * on a file opened non-blocking (pseudo filesystems, FIFOs, devices),
 * nothing more is there now.
 *
 * Writing: never into PATH itself.  open-write creates PATH.partial
 * beside it (a new file, O_EXCL and O_NOFOLLOW: a symlink or a file a
 * local user planted there is removed first, never written through) or,
 * to resume, reopens one that this agent made (a regular file of ours
 * with one link); an exclusive flock() keeps a second writer out.
 * Writes come in order and each lands in full, or the partial is cut back
 * to where it started and the handle refuses more: the partial is always
 * a clean prefix of what the client sent.  commit (after an optional
 * SHA-256 of the partial, hashed in slices like va.file.checksum) gives
 * it the mode and owner of the PATH it replaces (or the perm asked, or
 * 0600) and renames it onto PATH in the directory checked at the open.
 *
 * Logging: open, commit and close at info level (the audit, with the
 * bytes moved), each read and write at debug level (a transfer makes
 * thousands).
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "filestream.h"
#include "log.h"
#include "session.h"
#include "stuff.h"
#include "text.h"

/* The digits of a decimal uint64_t and a NUL. */
#define U64_DIGITS 21

/* ---- answers ---- */

static void
reply_ok(const struct va_binary_call *call, const struct va_param *params, size_t n,
	 uint8_t *body, size_t len)
{
	const struct va_msg m = {
		.content_type = VA_CONTENT_BINARY, .params = params, .nparams = n,
		.body = body, .len = len, .take = body != NULL,
	};
	int r = va_session_reply_msg(call->s, call->epoch, call->tag, &m);
	if (r < 0 && r != -ESTALE)
		va_log_warnx("%s %s: no answer: %s", call->op, call->tag, strerror(-r));
}

static void __attribute__((format(printf, 3, 4)))
reply_error(const struct va_binary_call *call, const char *kind, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	va_agent_reply_error(call->s, call->epoch, call->tag, kind, "%s", msg);
}

/* The kind of failure of an errno (filestream.h). */
static const char *
kind_of_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return VA_FS_E_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EROFS:
	case ELOOP:
	case ETXTBSY:
		return VA_FS_E_REFUSED;
	case EISDIR:
		return VA_FS_E_IS_DIR;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return VA_FS_E_NO_SPACE;
	case ENAMETOOLONG:
		return VA_FS_E_BAD_REQUEST;
	default:
		return VA_FS_E_FAILED;
	}
}

/* Answers a failed open (env's fault, why from file-roots.c). */
static void
reply_open_failed(const struct va_binary_call *call, xmlrpc_env *env, int why)
{
	const char *kind = why == VA_FILE_WHY_REFUSED ? VA_FS_E_REFUSED
			   : why == VA_FILE_WHY_PATH ? VA_FS_E_BAD_REQUEST
			   : why > 0 ? kind_of_errno(why) : VA_FS_E_FAILED;
	reply_error(call, kind, "%s", env->fault_string);
}

/* ---- parameters ---- */

/*
 * The path in the request's body: 1..PATH_MAX bytes of UTF-8 text
 * without control characters (the frame keeps a NUL after the body).
 * NULL after answering.
 */
static const char *
body_path(const struct va_binary_call *call)
{
	const struct va_frame *req = call->req;
	const char *why = NULL;

	if (req->body_len == 0 || req->body_len >= PATH_MAX) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "%s: the body must be a path of 1 to %d "
			    "bytes", call->op, PATH_MAX - 1);
		return NULL;
	}
	const char *p = (const char *)req->body;
	if (va_text_check(p, req->body_len, &why) != req->body_len) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "%s: the path is not text: %s", call->op,
			    why);
		return NULL;
	}
	for (size_t i = 0; i < req->body_len; i++) {
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
			reply_error(call, VA_FS_E_BAD_REQUEST, "%s: a control character in the "
				    "path", call->op);
			return NULL;
		}
	}
	return p;
}

/* A number parameter; def when absent; -1 after answering when malformed. */
static int
param_u64(const struct va_binary_call *call, const char *name, uint64_t def, uint64_t *out)
{
	int r = va_session_param_u64(call->req, name, out);

	if (r == -ENOENT) {
		*out = def;
		return 0;
	}
	if (r < 0) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "%s: the parameter %s is not a decimal "
			    "number", call->op, name);
		return -1;
	}
	return 0;
}

/*
 * The open stream handle of the parameter "handle", of kind (marked
 * used); NULL after answering.
 */
static struct va_file_handle *
param_stream(struct va_files *fs, const struct va_binary_call *call, enum va_file_kind kind)
{
	uint64_t id = 0;

	if (va_session_param_u64(call->req, VA_FS_HANDLE, &id) < 0) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "%s: no valid parameter handle", call->op);
		return NULL;
	}
	struct va_file_handle *h = va_file_find_stream(fs, id > INT_MAX ? 0 : (int64_t)id);
	if (!h || h->kind != kind || h->epoch != call->epoch) {
		reply_error(call, VA_FS_E_STALE, "%s: no open stream handle %" PRIu64 " of this "
			    "kind (closed, idle too long, or taken back)", call->op, id);
		return NULL;
	}
	h->last_used = va_agent_now_ms(fs->a);
	return h;
}

static void
put_u64(char *buf, uint64_t v)
{
	snprintf(buf, U64_DIGITS, "%" PRIu64, v);
}

static uint64_t
mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

static const char *
type_of(mode_t m)
{
	if (S_ISREG(m)) return "file";
	if (S_ISCHR(m)) return "char";
	if (S_ISBLK(m)) return "block";
	if (S_ISFIFO(m)) return "fifo";
	if (S_ISSOCK(m)) return "socket";
	return "unknown";
}

/* ---- stale handles ---- */

void
va_file_stream_drop_stale(struct va_files *fs, uint64_t epoch)
{
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		struct va_file_handle *h = &fs->handles[i];
		if (h->id == 0 || h->kind == VA_FILE_RPC || h->epoch == epoch || h->busy)
			continue;
		va_log_info("file stream: closing handle %d (%s) of an earlier session, after "
			    "%" PRIu64 " bytes", h->id, h->path, h->bytes);
		va_file_release(fs, h);
	}
}

/* ---- open-read, pread ---- */

static void
op_open_read(void *state, const struct va_binary_call *call)
{
	struct va_files *fs = state;
	xmlrpc_env env;
	int created = 0, why = 0;
	struct stat st;

	va_file_stream_drop_stale(fs, call->epoch);
	const char *path = body_path(call);
	if (!path)
		goto out;
	va_log_info("open-read %s", path);
	struct va_file_handle *h = va_file_new_handle(fs, "open-read");
	if (!h) {
		reply_error(call, VA_FS_E_BUSY, "open-read: all %d file handles are in use, each "
			    "used in the last %d s", VA_FILE_MAX_HANDLES, VA_FILE_RECLAIM_SECONDS);
		goto out;
	}
	xmlrpc_env_init(&env);
	int fd = va_file_open_path(&env, fs->a, "open-read", path, O_RDONLY, 0, &created, &why);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0) {
			va_file_fault_errno(&env, "open-read", path, errno);
			why = errno;
			close(fd);
		}
		reply_open_failed(call, &env, why);
		xmlrpc_env_clean(&env);
		va_file_release(fs, h);
		goto out;
	}
	xmlrpc_env_clean(&env);
	h->fd = fd;
	h->path = strdup(path);
	h->kind = VA_FILE_READ_STREAM;
	h->epoch = call->epoch;
	h->seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	h->last_used = va_agent_now_ms(fs->a);
	va_agent_sweep_at(fs->a, h->last_used + (uint64_t)VA_FILE_IDLE_SECONDS * 1000);

	/* A size only where it is what a read will find. */
	int sized = S_ISREG(st.st_mode) && !va_file_pseudo_fs(fd, NULL);
	char id[U64_DIGITS], ino[U64_DIGITS], mt[U64_DIGITS], size[U64_DIGITS];
	put_u64(id, (uint64_t)h->id);
	put_u64(ino, (uint64_t)st.st_ino);
	put_u64(mt, mtime_ns(&st));
	put_u64(size, (uint64_t)st.st_size);
	struct va_param p[5] = {
		{ VA_FS_HANDLE, id }, { VA_FS_INO, ino }, { VA_FS_MTIME, mt },
		{ VA_FS_TYPE, type_of(st.st_mode) }, { VA_FS_SIZE, size },
	};
	va_log_info("open-read %s -> handle %d (%s%s%s)", path, h->id, type_of(st.st_mode),
		    sized ? ", " : "", sized ? size : "");
	reply_ok(call, p, sized ? 5 : 4, NULL, 0);
out:
	va_frame_free(call->req);
}

/*
 * Reads up to count bytes into buf: at offset (seekable) or in order.
 * Returns the bytes read (*eof at the end), or -errno.
 */
static ssize_t
read_some(struct va_file_handle *h, uint8_t *buf, size_t count, uint64_t offset, int *eof)
{
	size_t got = 0;

	*eof = 0;
	while (got < count) {
		ssize_t r = h->seekable ? pread(h->fd, buf + got, count - got, (off_t)(offset + got))
					: read(h->fd, buf + got, count - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break; /* a non-blocking file with nothing more now */
		if (r < 0)
			return -errno;
		if (r == 0) {
			*eof = 1;
			break;
		}
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void
op_pread(void *state, const struct va_binary_call *call)
{
	struct va_files *fs = state;
	uint64_t offset = 0, count = 0;
	struct va_file_handle *h = param_stream(fs, call, VA_FILE_READ_STREAM);

	if (!h || param_u64(call, VA_FS_OFFSET, 0, &offset) < 0 ||
	    param_u64(call, VA_FS_COUNT, 0, &count) < 0)
		goto out;
	if (count > VA_FILE_MAX_CHUNK || offset > (uint64_t)INT64_MAX - count) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "pread: count %" PRIu64 " over the "
			    "maximum of %u bytes, or offset out of range", count, VA_FILE_MAX_CHUNK);
		goto out;
	}
	/*
	 * Room for the stuffing of random data (2 bytes in 256 escaped) past
	 * the count, so that the session's realloc before stuffing in place
	 * stays where it is (no copy).
	 */
	uint8_t *buf = malloc((size_t)count + (size_t)count / 64 + 64);
	if (!buf) {
		reply_error(call, VA_FS_E_FAILED, "pread: out of memory");
		goto out;
	}
	int eof = 0;
	ssize_t got = read_some(h, buf, (size_t)count, offset, &eof);
	if (got < 0) {
		free(buf);
		reply_error(call, kind_of_errno((int)-got), "pread: %s: %s", h->path,
			    strerror((int)-got));
		goto out;
	}
	/* What fits the caller's frame limit when stuffed (it asks again for the rest). */
	size_t peer = va_session_peer_max_frame(call->s);
	size_t n = peer ? va_stuff_fit(buf, (size_t)got, peer, NULL) : (size_t)got;
	if (n < (size_t)got)
		eof = 0;
	h->bytes += n;
	va_log_debug("pread %d %" PRIu64 " %" PRIu64 " -> %zu%s", h->id, offset, count, n,
		     eof ? " (end)" : "");
	const struct va_param p = { VA_FS_EOF, "1" };
	if (n == 0) {
		free(buf);
		buf = NULL;
	}
	reply_ok(call, &p, eof ? 1 : 0, buf, n);
out:
	va_frame_free(call->req);
}

/* ---- open-write, pwrite ---- */

/*
 * Opens the partial to start anew: whatever is at the name (an old
 * partial, a symlink, a file a local user planted) is removed, unless an
 * upload holds it, and a new file is made with O_EXCL.  The fd (O_RDWR:
 * commit may hash it), or -errno (-EBUSY: held).
 */
static int
partial_create(int dirfd, const char *partial)
{
	int old = openat(dirfd, partial, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (old >= 0) {
		struct stat st;
		int held = fstat(old, &st) == 0 && S_ISREG(st.st_mode) &&
			   flock(old, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(old);
		if (held)
			return -EBUSY;
	}
	if (unlinkat(dirfd, partial, 0) < 0 && errno != ENOENT)
		return -errno;
	int fd = openat(dirfd, partial, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd >= 0 ? fd : -errno;
}

/*
 * Opens the partial to resume at offset: it must be a regular file of
 * ours (owned by this process's user, one link: not one a local user
 * made or linked elsewhere) holding at least offset bytes; it is cut to
 * offset.  The fd, or -errno (-ERANGE with *size: shorter; -EPERM: not
 * ours).
 */
static int
partial_reopen(int dirfd, const char *partial, uint64_t offset, uint64_t *size)
{
	struct stat st;
	int fd = openat(dirfd, partial, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	*size = 0;
	if (fd < 0)
		return errno == ENOENT ? -ERANGE : -errno;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		return -EPERM;
	}
	*size = (uint64_t)st.st_size;
	if ((uint64_t)st.st_size < offset) {
		close(fd);
		return -ERANGE;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

static void
op_open_write(void *state, const struct va_binary_call *call)
{
	struct va_files *fs = state;
	xmlrpc_env env;
	uint64_t offset = 0, have = 0;
	char *base = NULL, *partial = NULL;
	int dirfd = -1, fd = -1, why = 0;
	struct stat st;

	va_file_stream_drop_stale(fs, call->epoch);
	const char *path = body_path(call);
	if (!path || param_u64(call, VA_FS_OFFSET, 0, &offset) < 0)
		goto out;
	const char *perm_s = va_session_param(call->req, VA_FS_PERM);
	unsigned long perm = 0;
	if (perm_s) {
		char *end;
		errno = 0;
		perm = strtoul(perm_s, &end, 8);
		if (errno || end == perm_s || *end || perm > 07777) {
			reply_error(call, VA_FS_E_BAD_REQUEST, "open-write: perm \"%s\" is not an "
				    "octal mode from 0 to 07777", perm_s);
			goto out;
		}
	}
	va_log_info("open-write %s at %" PRIu64, path, offset);
	xmlrpc_env_init(&env);
	dirfd = va_file_open_dir(&env, fs->a, "open-write", path, &base, &why);
	if (dirfd < 0) {
		reply_open_failed(call, &env, why);
		xmlrpc_env_clean(&env);
		goto out;
	}
	xmlrpc_env_clean(&env);
	partial = malloc(strlen(base) + sizeof(VA_FS_PARTIAL_SUFFIX));
	if (!partial) {
		reply_error(call, VA_FS_E_FAILED, "open-write: out of memory");
		goto out;
	}
	sprintf(partial, "%s%s", base, VA_FS_PARTIAL_SUFFIX);
	int exists = fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && S_ISDIR(st.st_mode)) {
		reply_error(call, VA_FS_E_IS_DIR, "open-write: %s is a directory", path);
		goto out;
	}
	fd = offset == 0 ? partial_create(dirfd, partial)
			 : partial_reopen(dirfd, partial, offset, &have);
	if (fd == -EBUSY || fd == -EPERM) {
		reply_error(call, VA_FS_E_CONFLICT, "open-write: %s%s %s", path,
			    VA_FS_PARTIAL_SUFFIX, fd == -EBUSY ? "is being written by another "
			    "upload" : "is not a partial upload of this agent");
		goto out;
	}
	if (fd == -ERANGE) {
		char sz[U64_DIGITS];
		put_u64(sz, have);
		const struct va_param p[2] = { { VA_FS_ERROR, VA_FS_E_RANGE }, { VA_FS_SIZE, sz } };
		char msg[512];
		int n = snprintf(msg, sizeof(msg), "open-write: %s%s holds %" PRIu64 " bytes: an "
				 "upload cannot resume at %" PRIu64, path, VA_FS_PARTIAL_SUFFIX,
				 have, offset);
		const struct va_msg m = {
			.content_type = VA_FS_CONTENT_ERROR, .params = p, .nparams = 2,
			.body = msg, .len = n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : 0,
		};
		va_log_warnx("request %s: %s", call->tag, msg);
		va_session_reply_msg(call->s, call->epoch, call->tag, &m);
		goto out;
	}
	if (fd < 0) {
		reply_error(call, kind_of_errno(-fd), "open-write: %s%s: %s", path,
			    VA_FS_PARTIAL_SUFFIX, strerror(-fd));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		reply_error(call, VA_FS_E_CONFLICT, "open-write: %s%s is being written by another "
			    "upload", path, VA_FS_PARTIAL_SUFFIX);
		goto out;
	}
	if (offset < have && ftruncate(fd, (off_t)offset) < 0) {
		reply_error(call, kind_of_errno(errno), "open-write: %s%s: %s", path,
			    VA_FS_PARTIAL_SUFFIX, strerror(errno));
		goto out;
	}
	struct va_file_handle *h = va_file_new_handle(fs, "open-write");
	if (!h) {
		reply_error(call, VA_FS_E_BUSY, "open-write: all %d file handles are in use, "
			    "each used in the last %d s", VA_FILE_MAX_HANDLES,
			    VA_FILE_RECLAIM_SECONDS);
		goto out;
	}
	h->fd = fd;
	h->dirfd = dirfd;
	h->path = strdup(path);
	h->name = base;
	h->partial = partial;
	fd = dirfd = -1;
	base = partial = NULL;
	h->kind = VA_FILE_WRITE_STREAM;
	h->epoch = call->epoch;
	h->size = offset;
	h->perm = (mode_t)perm;
	h->perm_set = perm_s != NULL;
	h->last_used = va_agent_now_ms(fs->a);
	va_agent_sweep_at(fs->a, h->last_used + (uint64_t)VA_FILE_IDLE_SECONDS * 1000);
	char id[U64_DIGITS], sz[U64_DIGITS];
	put_u64(id, (uint64_t)h->id);
	put_u64(sz, offset);
	const struct va_param p[3] = {
		{ VA_FS_HANDLE, id }, { VA_FS_SIZE, sz }, { VA_FS_EXISTS, "1" },
	};
	va_log_info("open-write %s -> handle %d (%s%s at %" PRIu64 ")", path, h->id, h->name,
		    VA_FS_PARTIAL_SUFFIX, offset);
	reply_ok(call, p, exists ? 3 : 2, NULL, 0);
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(base);
	free(partial);
	va_frame_free(call->req);
}

static void
op_pwrite(void *state, const struct va_binary_call *call)
{
	struct va_files *fs = state;
	uint64_t offset = 0;
	struct va_file_handle *h = param_stream(fs, call, VA_FILE_WRITE_STREAM);

	if (!h || param_u64(call, VA_FS_OFFSET, UINT64_MAX, &offset) < 0)
		goto out;
	if (h->failed || h->busy) {
		reply_error(call, VA_FS_E_FAILED, "pwrite: handle %d: %s", h->id, h->failed ?
			    "an earlier write failed" : "it is being committed");
		goto out;
	}
	if (offset != h->size) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "pwrite: handle %d is at %" PRIu64 ", not "
			    "%" PRIu64 " (writes come in order)", h->id, h->size, offset);
		goto out;
	}
	const uint8_t *p = call->req->body;
	size_t len = call->req->body_len, done = 0;
	while (done < len) {
		ssize_t w = pwrite(h->fd, p + done, len - done, (off_t)(offset + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			/* Back to a clean prefix: what a resume starts from. */
			if (ftruncate(h->fd, (off_t)offset) < 0)
				va_log_warn("pwrite: cutting %s%s back", h->path, VA_FS_PARTIAL_SUFFIX);
			h->failed = 1;
			reply_error(call, kind_of_errno(e), "pwrite: %s%s: %s", h->path,
				    VA_FS_PARTIAL_SUFFIX, strerror(e));
			goto out;
		}
		done += (size_t)w;
	}
	h->size += len;
	h->bytes += len;
	va_log_debug("pwrite %d %" PRIu64 " %zu", h->id, offset, len);
	reply_ok(call, NULL, 0, NULL, 0);
out:
	va_frame_free(call->req);
}

/* ---- commit ---- */

/* A commit waiting for its hash (the call's answer comes when it is done). */
struct commit {
	struct va_files *fs;
	int id;                 /* the handle's */
	va_session *s;
	uint64_t epoch;
	char tag[128];
	char op[8];
	int check;              /* compare with want */
	char want[65];
};

/*
 * Renames the partial of h onto its name and answers (sha256: the hex
 * digest to report, or NULL); releases h in every case.
 */
static void
commit_finish(struct va_files *fs, struct va_file_handle *h, const struct va_binary_call *call,
	      const char *sha256)
{
	struct stat old, st;
	int exists = fstatat(h->dirfd, h->name, &old, AT_SYMLINK_NOFOLLOW) == 0;

	if (exists && S_ISDIR(old.st_mode)) {
		reply_error(call, VA_FS_E_IS_DIR, "commit: %s is a directory now", h->path);
		va_file_release(fs, h);
		return;
	}
	/* The mode (and owner) of the file it replaces, else the perm asked, else 0600. */
	mode_t mode = h->perm_set ? h->perm : exists && S_ISREG(old.st_mode) ?
		      (old.st_mode & 07777) : 0600;
	if (fchmod(h->fd, mode) < 0)
		va_log_warn("commit: chmod %s%s", h->path, VA_FS_PARTIAL_SUFFIX);
	if (exists && S_ISREG(old.st_mode) && (old.st_uid != geteuid() || old.st_gid != getegid()) &&
	    fchown(h->fd, old.st_uid, old.st_gid) < 0)
		va_log_warn("commit: chown %s%s", h->path, VA_FS_PARTIAL_SUFFIX);
	if (renameat(h->dirfd, h->partial, h->dirfd, h->name) < 0) {
		int e = errno;
		reply_error(call, kind_of_errno(e), "commit: rename %s%s to %s: %s", h->path,
			    VA_FS_PARTIAL_SUFFIX, h->name, strerror(e));
		va_file_release(fs, h);
		return;
	}
	if (fstat(h->fd, &st) < 0)
		memset(&st, 0, sizeof(st));
	char ino[U64_DIGITS], mt[U64_DIGITS], size[U64_DIGITS];
	put_u64(ino, (uint64_t)st.st_ino);
	put_u64(mt, mtime_ns(&st));
	put_u64(size, (uint64_t)st.st_size);
	struct va_param p[5] = {
		{ VA_FS_INO, ino }, { VA_FS_MTIME, mt }, { VA_FS_SIZE, size },
	};
	size_t n = 3;
	if (!exists)
		p[n++] = (struct va_param){ VA_FS_CREATED, "1" };
	if (sha256)
		p[n++] = (struct va_param){ VA_FS_SHA256, sha256 };
	va_log_info("commit %s: handle %d, %" PRIu64 " bytes (%" PRIu64 " written now)%s%s",
		    h->path, h->id, h->size, h->bytes, exists ? "" : ", created",
		    sha256 ? ", SHA-256 checked" : "");
	reply_ok(call, p, n, NULL, 0);
	va_file_release(fs, h);
}

static void
commit_hashed(void *ctx, int err, const uint8_t *digest, const char *msg)
{
	struct commit *c = ctx;
	struct va_file_handle *h = va_file_find_stream(c->fs, c->id);
	const struct va_binary_call call = {
		.op = c->op, .req = NULL, .s = c->s, .epoch = c->epoch, .tag = c->tag,
	};

	if (!h) { /* cannot happen: a busy handle stays */
		free(c);
		return;
	}
	h->busy = 0;
	if (err == ECANCELED) {
		/* The session went (or the agent stops): nobody to answer. */
		va_log_info("commit %s: stopped, its session is gone", h->path);
		va_file_release(c->fs, h);
	} else if (err) {
		reply_error(&call, VA_FS_E_FAILED, "commit: hashing %s%s: %s", h->path,
			    VA_FS_PARTIAL_SUFFIX, msg ? msg : "failed");
		va_file_release(c->fs, h);
	} else {
		char hex[65];
		va_file_hex(digest, hex);
		if (c->check && strcmp(hex, c->want) != 0) {
			reply_error(&call, VA_FS_E_MISMATCH, "commit: the SHA-256 of %s%s is %s, "
				    "not %s: left as it is", h->path, VA_FS_PARTIAL_SUFFIX, hex,
				    c->want);
			va_file_release(c->fs, h);
		} else {
			commit_finish(c->fs, h, &call, hex);
		}
	}
	free(c);
}

static int
is_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void
op_commit(void *state, const struct va_binary_call *call)
{
	struct va_files *fs = state;
	uint64_t hash = 0;
	struct va_file_handle *h = param_stream(fs, call, VA_FILE_WRITE_STREAM);

	if (!h || param_u64(call, VA_FS_HASH, 0, &hash) < 0)
		goto out;
	const char *want = va_session_param(call->req, VA_FS_SHA256);
	if (want && !is_hex64(want)) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "commit: sha256 must be 64 lowercase hex "
			    "digits");
		goto out;
	}
	if (h->failed || h->busy) {
		reply_error(call, VA_FS_E_FAILED, "commit: handle %d: %s", h->id, h->failed ?
			    "a write failed" : "it is being committed");
		goto out;
	}
	if (!want && !hash) {
		commit_finish(fs, h, call, NULL);
		goto out;
	}
	struct commit *c = calloc(1, sizeof(*c));
	if (!c || strlen(call->tag) >= sizeof(c->tag)) {
		free(c);
		reply_error(call, VA_FS_E_FAILED, "commit: out of memory");
		goto out;
	}
	c->fs = fs;
	c->id = h->id;
	c->s = call->s;
	c->epoch = call->epoch;
	snprintf(c->tag, sizeof(c->tag), "%s", call->tag);
	snprintf(c->op, sizeof(c->op), "%s", VA_FS_OP_COMMIT);
	if (want) {
		c->check = 1;
		memcpy(c->want, want, 65);
	}
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	if (va_file_hash_start(&env, fs, call->s, call->epoch, h->fd, h->path, h->size,
			       commit_hashed, c) < 0) {
		reply_error(call, VA_FS_E_BUSY, "commit: %s", env.fault_string);
		free(c);
	} else {
		h->busy = 1; /* commit_hashed answers */
	}
	xmlrpc_env_clean(&env);
out:
	va_frame_free(call->req);
}

/* ---- close ---- */

static void
op_close(void *state, const struct va_binary_call *call)
{
	struct va_files *fs = state;
	uint64_t id = 0;

	if (va_session_param_u64(call->req, VA_FS_HANDLE, &id) < 0) {
		reply_error(call, VA_FS_E_BAD_REQUEST, "close: no valid parameter handle");
		goto out;
	}
	struct va_file_handle *h = va_file_find_stream(fs, id > INT_MAX ? 0 : (int64_t)id);
	if (h && !h->busy) {
		va_log_info("close handle %d (%s): %" PRIu64 " bytes %s%s", h->id, h->path,
			    h->bytes, h->kind == VA_FILE_READ_STREAM ? "read" : "written",
			    h->kind == VA_FILE_WRITE_STREAM ? ", the partial left for a resume" : "");
		va_file_release(fs, h);
	}
	/* Closing what is not open (any more) is no failure. */
	reply_ok(call, NULL, 0, NULL, 0);
out:
	va_frame_free(call->req);
}

/* ---- the table ---- */

static const char *const reading[] = { "va.file.open", "va.file.read", NULL };
static const char *const writing[] = { "va.file.open", "va.file.write", NULL };
static const char *const nothing[] = { NULL };

const struct va_binary_op va_file_binary_ops[VA_FILE_NBINARY_OPS] = {
	{ VA_FS_OP_OPEN_READ, reading, op_open_read },
	{ VA_FS_OP_PREAD, reading, op_pread },
	{ VA_FS_OP_OPEN_WRITE, writing, op_open_write },
	{ VA_FS_OP_PWRITE, writing, op_pwrite },
	{ VA_FS_OP_COMMIT, writing, op_commit },
	{ VA_FS_OP_CLOSE, nothing, op_close },
};
