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
 *                    value trees (the hot path of every transfer)
 * Everything here is for those four files, except va_file_close_all (the
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

struct va_file_handle {
	int id;             /* 0 = free slot */
	int fd;
	uint64_t last_used; /* va_agent_now_ms() */
	char *path;         /* for the log */
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

/* The open handle id, or NULL (not marked used). */
struct va_file_handle *va_file_find(struct va_files *fs, int64_t id);
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
 * Opens path (absolute) within the file roots, if any.  Refuses
 * directories.  The fd stays non-blocking, except for a regular file
 * with a size that is not on a pseudo filesystem.  *created says whether
 * O_CREAT made it (then with exactly perm).  Returns the fd, or -1 with
 * a fault (method names the caller in its text).
 */
int va_file_open_path(xmlrpc_env *env, struct va_agent *a, const char *method,
		      const char *path, int flags, mode_t perm, int *created);
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

/* The registry's va.file.checksum: hashes in one go (serverInfo: the group). */
xmlrpc_value *va_file_method_checksum(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
				      void *call_info);
/* The interceptor's: takes call (va.file.checksum) and answers it, now or when hashed; 1. */
int va_file_checksum_start(struct va_files *fs, const struct va_call *call);
/* Drops every job, unanswered. */
void va_file_checksum_stop_all(struct va_files *fs);

/* ---- file-fast.c ---- */

/*
 * call is va.file.read or va.file.write: answers it and returns 1 when
 * it is in the usual shape, else returns 0 having done nothing.
 */
int va_file_fast(struct va_files *fs, const struct va_call *call);

#endif
