/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.h - the group "file" (va.file.*), in four files by concern:
 *   file.c           the group: its state (struct va_files: the table of
 *                    open handles, the running checksums), the methods
 *                    open, read, write, seek, close, stat, the idle sweep
 *                    and the interceptor that hands calls to the two below
 *   file-roots.c     paths: absolute, within the file roots, opened
 *                    without following a swapped symlink; pseudo
 *                    filesystems
 *   file-checksum.c  va.file.checksum: hashed in slices on the loop, or in
 *                    one go by the registry's method
 *   file-fast.c      va.file.read and va.file.write without xmlrpc-c's
 *                    value trees (the hot path of every XML-RPC transfer)
 *   file-stream.c    the binary operations of protocol 2 (filestream.h):
 *                    va-proxy's GET and PUT of guest files
 * Everything here is for those five files, except va_file_close_all (the
 * tests).  Functions that take an xmlrpc_env set a fault on failure and
 * leave it untouched on success.
 */
#ifndef VA_AGENT_FILE_H
#define VA_AGENT_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <xmlrpc-c/base.h>

#include "agent.h"

/* What a handle is for. */
enum va_file_kind {
	VA_FILE_RPC = 0,      /* va.file.open's: the XML-RPC methods use it */
	VA_FILE_READ_STREAM,  /* open-read's (file-stream.c) */
	VA_FILE_WRITE_STREAM, /* open-write's: writes PATH.partial */
};

struct va_file_handle {
	int id;             /* 0 = free slot */
	int fd;
	uint64_t last_used; /* va_agent_now_ms() */
	char *path;         /* for the log */
	/* Streams (file-stream.c); 0, -1 and NULL for va.file.open's. */
	enum va_file_kind kind;
	uint64_t epoch;     /* the session that opened it: closed after a reset */
	int seekable;       /* read: pread at the offset; else read in order */
	int dirfd;          /* write: PATH's directory (O_PATH), for the rename */
	char *name;         /* write: PATH's last component in dirfd */
	char *partial;      /* write: name + VA_FS_PARTIAL_SUFFIX */
	uint64_t size;      /* write: bytes in the partial (a clean prefix) */
	uint64_t bytes;     /* read or written through the handle (the log) */
	int failed;         /* write: a write failed; only close may follow */
	int busy;           /* write: hashed for a commit: neither swept nor reclaimed */
	mode_t perm;        /* write: the mode to give, when perm_set */
	int perm_set;
};

struct va_checksum;

/* The group's state. */
struct va_files {
	struct va_agent *a;
	struct va_file_handle handles[VA_FILE_MAX_HANDLES];
	int next_id;                   /* of the next handle; 0: not drawn yet */
	/* Handles taken back by va.file.open (a ring): their owners' faults. */
	struct {
		int id;
		uint64_t idle_ms;
	} reclaimed[VA_FILE_RECLAIMED_MEMORY];
	unsigned nreclaimed;
	struct va_checksum *checksums; /* the jobs running (file-checksum.c) */
};

/* Closes every handle and drops the checksums still running (unanswered). */
void va_file_close_all(struct va_agent *a);

/* ---- file.c: handles and chunks, shared with the fast path ---- */

/* The open handle id of va.file.open, or NULL (not marked used). */
struct va_file_handle *va_file_find(struct va_files *fs, int64_t id);
/* The open stream handle id, or NULL (not marked used). */
struct va_file_handle *va_file_find_stream(struct va_files *fs, int64_t id);
/*
 * A free slot for a new handle (taking back an idle one if every slot is
 * in use, see file.c), with its id drawn; NULL when none can be had (the
 * fault is the caller's).  The caller fills fd and path and marks it
 * used, or gives it back with va_file_release.
 */
struct va_file_handle *va_file_new_handle(struct va_files *fs, const char *method);
/* Closes h's descriptors and frees the slot. */
void va_file_release(struct va_files *fs, struct va_file_handle *h);
/*
 * va.file.read's parameters, checked: the open handle (marked used) and
 * the count (0..VA_FILE_MAX_CHUNK); logs the call.  NULL with a fault.
 * The registry's method and the fast path both use it, so both refuse
 * alike.
 */
struct va_file_handle *va_file_read_params(xmlrpc_env *env, struct va_files *fs,
					   xmlrpc_value *params, size_t *countp);
/*
 * Reads up to count bytes at h's position into a new buffer (the caller
 * frees it): *gotp bytes, *eofp when the end was reached.  NULL with a
 * fault.
 */
unsigned char *va_file_read_chunk(xmlrpc_env *env, struct va_file_handle *h, size_t count,
				  size_t *gotp, int *eofp);
/*
 * Writes len bytes at h's position; returns how many were taken (fewer
 * when a non-blocking file would block), or -1 with a fault.
 */
ssize_t va_file_write_chunk(xmlrpc_env *env, struct va_file_handle *h,
			    const unsigned char *data, size_t len);

/* ---- file-roots.c: paths ---- */

/*
 * Why an open failed, beyond its fault (the why of the functions below):
 * the errno of the system call that failed (> 0), or one of these.
 */
#define VA_FILE_WHY_REFUSED (-1) /* outside the file roots, or a directory swapped */
#define VA_FILE_WHY_PATH (-2)    /* not an absolute path, or no file name */
/*
 * Opens path (absolute) within the file roots, if any.  Refuses
 * directories.  The fd stays non-blocking, except for a regular file
 * with a size that is not on a pseudo filesystem.  *created says whether
 * O_CREAT made it (then with exactly perm).  Returns the fd, or -1 with
 * a fault (method names the caller in its text) and *why set (why may be
 * NULL).
 */
int va_file_open_path(xmlrpc_env *env, struct va_agent *a, const char *method,
		      const char *path, int flags, mode_t perm, int *created, int *why);
/*
 * The directory of path (absolute, naming a file): an O_PATH fd of it,
 * resolved (symlinks and "..") and within the file roots, checked as
 * va_file_open_path checks its own, and in *basep the last component of
 * path (malloc'ed).  For a file opened and renamed relative to it, with
 * O_NOFOLLOW.  Returns the fd, or -1 with a fault and *why set.
 */
int va_file_open_dir(xmlrpc_env *env, struct va_agent *a, const char *method, const char *path,
		     char **basep, int *why);
/*
 * What va.file.stat lstat()s for path (absolute): path itself, or with
 * file roots, the link itself when both it and what it leads to are
 * inside.  A malloc'd string, or NULL with a fault.
 */
char *va_file_stat_target(xmlrpc_env *env, struct va_agent *a, const char *path);
/*
 * The name of the pseudo filesystem fd is on, or NULL; *unstable (may be
 * NULL) is set for the kernel's own, whose files have no stable contents.
 */
const char *va_file_pseudo_fs(int fd, int *unstable);
/* Fault XMLRPC_INTERNAL_ERROR "method: path: strerror(e)". */
void va_file_fault_errno(xmlrpc_env *env, const char *method, const char *path, int e);

/* ---- file-checksum.c ---- */

/*
 * A hash job ended: err 0 with digest (32 bytes); ECANCELED (dropped: its
 * session was reset, or the agent stops; nobody to answer); EIO with
 * msg (a read failed, the file ended early).
 */
typedef void va_file_hash_done_fn(void *ctx, int err, const uint8_t *digest, const char *msg);
/*
 * Hashes the first length bytes of fd (UINT64_MAX: to its end; pread, so
 * its position does not matter) in slices on the loop, as va.file.checksum
 * does, counting as one of its jobs; fd stays the caller's and must stay
 * open until done has run.  done runs once, from the loop, never from
 * inside this call (but dropping stale jobs here may run theirs).
 * Returns 0, or -1 with a fault (busy, no memory).
 */
int va_file_hash_start(xmlrpc_env *env, struct va_files *fs, va_session *s, uint64_t epoch, int fd,
		       const char *path, uint64_t length, va_file_hash_done_fn *done, void *ctx);
/* 0 when fd is a file va.file.checksum hashes (regular, stable); else -1 with a fault. */
int va_file_hashable(xmlrpc_env *env, int fd, const char *path);
/* 64 lowercase hex digits and a NUL. */
void va_file_hex(const uint8_t digest[32], char hex[65]);

/* The registry's va.file.checksum: hashes in one go (serverInfo: the group). */
xmlrpc_value *va_file_method_checksum(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
				      void *call_info);
/* The interceptor's: takes call (va.file.checksum) and answers it, now or when hashed; 1. */
int va_file_checksum_start(struct va_files *fs, const struct va_call *call);
/* Drops every job, unanswered. */
void va_file_checksum_stop_all(struct va_files *fs);

/* ---- file-stream.c ---- */

/* The group's binary operations (filestream.h). */
#define VA_FILE_NBINARY_OPS 6
extern const struct va_binary_op va_file_binary_ops[VA_FILE_NBINARY_OPS];
/*
 * Closes the stream handles of sessions other than epoch (their
 * proxy is gone: nobody will use them).
 */
void va_file_stream_drop_stale(struct va_files *fs, uint64_t epoch);

/* ---- file-fast.c ---- */

/*
 * call is va.file.read or va.file.write: answers it and returns 1 when
 * it is in the usual shape, else returns 0 having done nothing.
 */
int va_file_fast(struct va_files *fs, const struct va_call *call);

#endif
