/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs.c - the group "fs": va.fs.info, va.disks and va.fs.trim.
 *
 * The mount table is mounts.c's, the disks disks.c's (sysfs, read on the
 * loop: the kernel answers from memory).  What may block runs on threads
 * of the group's jobs (jobs.h, async.h): statvfs of every mount for
 * va.fs.info, FITRIM for va.fs.trim.  statvfs of a filesystem that is
 * not on a local disk (NFS, CIFS, FUSE...) can hang for as long as its
 * server does: it runs on a helper thread of its own that the job waits
 * STATVFS_WAIT_MS for; a mount that does not answer by then is reported
 * with an error, and is skipped at once (same error) while that helper
 * still waits, so that a dead server costs one thread, not one per call.
 *
 * va.fs.trim changes the guest (discards unused blocks): on by default,
 * listed in docs/METHODS.md among the methods that change the guest.
 *
 * Text: mount points, sources and types are the kernel's bytes, reported
 * as methods.h says (U+FFFD, NAME_raw).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong parameters
 *   XMLRPC_INDEX_ERROR          a mountpoint that is not one, a negative
 *                               minimum
 *   XMLRPC_LIMIT_EXCEEDED_ERROR MAX_JOBS jobs run already
 *   XMLRPC_INTERNAL_ERROR       mountinfo cannot be read, no thread, out
 *                               of memory
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <linux/fs.h>

#include "async.h"
#include "disks.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "mounts.h"
#include "text.h"

#define MAX_JOBS 4
#define STATVFS_WAIT_MS 5000
/* Helpers waiting on filesystems that do not answer, at most. */
#define MAX_STUCK 16
#define MAX_LISTED 256 /* mountpoints a call may name */

/* The mounts whose statvfs helper is still waiting: shared with the helpers. */
struct stuck {
	pthread_mutex_t mu;
	unsigned refs;
	char *paths[MAX_STUCK];
};

struct fs {
	struct va_agent *a;
	struct va_jobs *jobs;
	struct stuck *stuck;
};

static void
stuck_unref(struct stuck *sk)
{
	pthread_mutex_lock(&sk->mu);
	int last = --sk->refs == 0;
	pthread_mutex_unlock(&sk->mu);
	if (last) {
		for (int i = 0; i < MAX_STUCK; i++)
			free(sk->paths[i]);
		pthread_mutex_destroy(&sk->mu);
		free(sk);
	}
}

/* One statvfs on a helper thread. */
struct stv {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs, done, abandoned, err;
	struct statvfs st;
	struct stuck *sk;
	char path[];
};

static void
stv_unref(struct stv *v)
{
	pthread_mutex_lock(&v->mu);
	int last = --v->refs == 0;
	pthread_mutex_unlock(&v->mu);
	if (last) {
		pthread_cond_destroy(&v->cv);
		pthread_mutex_destroy(&v->mu);
		stuck_unref(v->sk);
		free(v);
	}
}

static void *
stv_main(void *opaque)
{
	struct stv *v = opaque;
	struct statvfs st;
	int err = statvfs(v->path, &st) < 0 ? errno : 0;

	pthread_mutex_lock(&v->mu);
	v->st = st;
	v->err = err;
	v->done = 1;
	if (v->abandoned) {
		/* It answered after all: no longer stuck. */
		pthread_mutex_lock(&v->sk->mu);
		for (int i = 0; i < MAX_STUCK; i++)
			if (v->sk->paths[i] && strcmp(v->sk->paths[i], v->path) == 0) {
				free(v->sk->paths[i]);
				v->sk->paths[i] = NULL;
				break;
			}
		pthread_mutex_unlock(&v->sk->mu);
	}
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
	stv_unref(v);
	return NULL;
}

/*
 * statvfs of a filesystem that may not answer: 0, -errno, or -ETIMEDOUT
 * (no answer within STATVFS_WAIT_MS, or a helper still waits on it).
 */
static int
timed_statvfs(struct stuck *sk, const char *path, struct statvfs *out)
{
	pthread_mutex_lock(&sk->mu);
	int slot = -1;
	for (int i = 0; i < MAX_STUCK; i++) {
		if (sk->paths[i] && strcmp(sk->paths[i], path) == 0) {
			pthread_mutex_unlock(&sk->mu);
			return -ETIMEDOUT;
		}
		if (!sk->paths[i] && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		pthread_mutex_unlock(&sk->mu);
		return -ETIMEDOUT; /* too many helpers wait already */
	}
	sk->refs++;
	pthread_mutex_unlock(&sk->mu);

	size_t n = strlen(path);
	struct stv *v = calloc(1, sizeof(*v) + n + 1);
	if (!v) {
		stuck_unref(sk);
		return -ENOMEM;
	}
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	v->refs = 2;
	v->sk = sk;
	memcpy(v->path, path, n + 1);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	int r = pthread_create(&t, &attr, stv_main, v);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		v->refs = 1;
		stv_unref(v);
		return -r;
	}
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += STATVFS_WAIT_MS / 1000;
	end.tv_nsec += (STATVFS_WAIT_MS % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&v->mu);
	while (!v->done && pthread_cond_timedwait(&v->cv, &v->mu, &end) != ETIMEDOUT)
		;
	if (v->done) {
		r = v->err ? -v->err : 0;
		*out = v->st;
	} else {
		r = -ETIMEDOUT;
		v->abandoned = 1;
		pthread_mutex_lock(&sk->mu);
		for (int i = 0; i < MAX_STUCK; i++)
			if (!sk->paths[i]) {
				sk->paths[i] = strdup(path);
				break;
			}
		pthread_mutex_unlock(&sk->mu);
	}
	pthread_mutex_unlock(&v->mu);
	stv_unref(v);
	return r;
}

/* ---- selecting mounts -------------------------------------------------------- */

struct entry {
	char *mountpoint, *type, *source;
	unsigned major, minor;
	int readonly, local;
	int err;                 /* of the work: 0, or an errno */
	struct statvfs st;       /* va.fs.info */
	uint64_t trimmed;        /* va.fs.trim */
};

struct fs_job {
	struct fs *fs;
	struct stuck *stuck;     /* a reference (fs.info) */
	struct entry *v;
	size_t n;
	uint64_t minimum;        /* va.fs.trim */
};

static void
job_free(void *opaque)
{
	struct fs_job *j = opaque;

	for (size_t i = 0; i < j->n; i++) {
		free(j->v[i].mountpoint);
		free(j->v[i].type);
		free(j->v[i].source);
	}
	free(j->v);
	if (j->stuck)
		stuck_unref(j->stuck);
	free(j);
}

static int
add_entry(struct fs_job *j, const struct va_mount *mt)
{
	struct entry *e = &j->v[j->n];
	memset(e, 0, sizeof(*e));
	e->mountpoint = strdup(mt->mountpoint);
	e->type = strdup(mt->type);
	e->source = strdup(mt->source);
	e->major = mt->major;
	e->minor = mt->minor;
	e->readonly = mt->readonly;
	e->local = va_mount_local_disk(mt);
	j->n++;
	return e->mountpoint && e->type && e->source ? 0 : -1;
}

/*
 * A job for the mounts named (paths, n of them) or, when paths is NULL,
 * for those that want(mt) takes; NULL with a fault.
 */
static struct fs_job *
select_mounts(xmlrpc_env *env, struct fs *fs, const char *method, char **paths, size_t n,
	      int (*want)(const struct va_mounts *m, size_t i))
{
	struct va_mounts m;
	struct fs_job *j = calloc(1, sizeof(*j));
	int r = va_mounts_read(&m);

	if (r < 0 || !j) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: the mount table: %s",
		    method, strerror(r < 0 ? -r : ENOMEM));
		va_mounts_free(&m);
		free(j);
		return NULL;
	}
	j->fs = fs;
	j->v = calloc((paths ? n : m.n) + 1, sizeof(*j->v));
	for (size_t i = 0; j->v && paths && i < n && !env->fault_occurred; i++) {
		const struct va_mount *mt = va_mounts_find(&m, paths[i]);
		int dup = 0;
		for (size_t k = 0; mt && k < j->n; k++)
			dup |= strcmp(j->v[k].mountpoint, mt->mountpoint) == 0;
		if (!mt)
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "%s: %s is not a mount point", method, paths[i]);
		else if (!dup && add_entry(j, mt) < 0)
			va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", method);
	}
	for (size_t i = 0; j->v && !paths && i < m.n && !env->fault_occurred; i++)
		if (want(&m, i) && add_entry(j, &m.v[i]) < 0)
			va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", method);
	if (!j->v)
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", method);
	va_mounts_free(&m);
	if (env->fault_occurred) {
		job_free(j);
		return NULL;
	}
	return j;
}

/* va.fs.info's mounts: every one with data (not proc, sysfs...), not hidden. */
static int
want_info(const struct va_mounts *m, size_t i)
{
	return !va_mount_pseudo(&m->v[i]) && !va_mounts_hidden(m, i);
}

/* ---- va.fs.info ------------------------------------------------------------------ */

static void *
info_prepare(xmlrpc_env *env, void *state, xmlrpc_value *params)
{
	static const char usage[] = "va.fs.info: expected ([array of string mountpoints])";
	struct fs *fs = state;
	char **paths = NULL;
	size_t n = 0;

	int np = va_params_count(env, params, 0, 1, usage);
	if (np < 0)
		return NULL;
	if (np == 1 && !(paths = va_param_strings(env, params, 0, usage, MAX_LISTED, &n)))
		return NULL;
	va_log_info("va.fs.info%s", paths ? " (named mountpoints)" : "");
	struct fs_job *j = select_mounts(env, fs, "va.fs.info", paths, n, want_info);
	va_strings_free(paths);
	if (j) {
		pthread_mutex_lock(&fs->stuck->mu);
		fs->stuck->refs++;
		pthread_mutex_unlock(&fs->stuck->mu);
		j->stuck = fs->stuck;
	}
	return j;
}

static void
info_work(void *opaque)
{
	struct fs_job *j = opaque;

	for (size_t i = 0; i < j->n; i++) {
		struct entry *e = &j->v[i];
		if (e->local)
			e->err = statvfs(e->mountpoint, &e->st) < 0 ? errno : 0;
		else
			e->err = -timed_statvfs(j->stuck, e->mountpoint, &e->st);
	}
}

static xmlrpc_value *
info_finish(xmlrpc_env *env, void *opaque)
{
	struct fs_job *j = opaque;
	xmlrpc_value *arr = xmlrpc_array_new(env);

	for (size_t i = 0; i < j->n && !env->fault_occurred; i++) {
		struct entry *e = &j->v[i];
		xmlrpc_value *st = xmlrpc_struct_new(env);
		va_set_text_z(env, st, "mountpoint", e->mountpoint);
		va_set_text_z(env, st, "type", e->type);
		va_set_text_z(env, st, "device", e->source);
		va_set_bool(env, st, "readonly", e->readonly);
		if (e->err == 0) {
			const struct statvfs *s = &e->st;
			uint64_t bs = s->f_frsize ? s->f_frsize : s->f_bsize;
			va_set_i8(env, st, "total_bytes", (int64_t)(s->f_blocks * bs));
			va_set_i8(env, st, "used_bytes", (int64_t)((s->f_blocks - s->f_bfree) * bs));
			va_set_i8(env, st, "free_bytes", (int64_t)(s->f_bavail * bs));
			va_set_i8(env, st, "total_inodes", (int64_t)s->f_files);
			va_set_i8(env, st, "used_inodes", (int64_t)(s->f_files - s->f_ffree));
			va_set_i8(env, st, "free_inodes", (int64_t)s->f_favail);
		} else {
			char why[128];
			snprintf(why, sizeof(why), "%s", e->err == ETIMEDOUT ?
				 "statvfs did not return (the filesystem does not answer)" :
				 strerror(e->err));
			va_set_text_z(env, st, "error", why);
		}
		if (!env->fault_occurred)
			va_set_value(env, st, "disks", va_disks_of(env, "", e->major, e->minor));
		va_append(env, arr, st);
	}
	return va_result(env, arr);
}

static const struct va_async_method fs_info = {
	.name = "va.fs.info",
	.prepare = info_prepare,
	.work = info_work,
	.finish = info_finish,
	.free = job_free,
};

/* ---- va.fs.trim --------------------------------------------------------------------- */

static void *
trim_prepare(xmlrpc_env *env, void *state, xmlrpc_value *params)
{
	static const char usage[] =
		"va.fs.trim: expected ([array of string mountpoints[, i8 minimum_bytes]])";
	struct fs *fs = state;
	char **paths = NULL;
	size_t n = 0;
	int64_t minimum = 0;

	int np = va_params_count(env, params, 0, 2, usage);
	if (np < 0)
		return NULL;
	if (np >= 1) {
		/* An empty array: every mount, as without it. */
		if (!(paths = va_param_strings(env, params, 0, usage, MAX_LISTED, &n)))
			return NULL;
		if (n == 0) {
			va_strings_free(paths);
			paths = NULL;
		}
	}
	if (np == 2)
		va_param_int64(env, params, 1, usage, &minimum);
	if (!env->fault_occurred && minimum < 0)
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.fs.trim: minimum_bytes %" PRId64 " is negative", minimum);
	if (env->fault_occurred) {
		va_strings_free(paths);
		return NULL;
	}
	va_log_info("va.fs.trim%s minimum %" PRId64, paths ? " (named mountpoints)" : "", minimum);
	struct fs_job *j = select_mounts(env, fs, "va.fs.trim", paths, n, va_mounts_writable_disk);
	va_strings_free(paths);
	if (j)
		j->minimum = (uint64_t)minimum;
	return j;
}

static void
trim_work(void *opaque)
{
	struct fs_job *j = opaque;

	for (size_t i = 0; i < j->n; i++) {
		struct entry *e = &j->v[i];
		int fd = open(e->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			e->err = errno;
			continue;
		}
		struct fstrim_range range = { .start = 0, .len = UINT64_MAX, .minlen = j->minimum };
		if (ioctl(fd, FITRIM, &range) < 0)
			e->err = errno;
		else
			e->trimmed = range.len;
		close(fd);
	}
}

static xmlrpc_value *
trim_finish(xmlrpc_env *env, void *opaque)
{
	struct fs_job *j = opaque;
	xmlrpc_value *arr = xmlrpc_array_new(env);
	uint64_t total = 0;

	for (size_t i = 0; i < j->n && !env->fault_occurred; i++) {
		struct entry *e = &j->v[i];
		xmlrpc_value *st = xmlrpc_struct_new(env);
		va_set_text_z(env, st, "mountpoint", e->mountpoint);
		va_set_i8(env, st, "trimmed_bytes", (int64_t)e->trimmed);
		if (e->err)
			va_set_text_z(env, st, "error", strerror(e->err));
		va_append(env, arr, st);
		total += e->trimmed;
	}
	va_log_info("va.fs.trim: %" PRIu64 " bytes trimmed on %zu filesystems", total, j->n);
	return va_result(env, arr);
}

static const struct va_async_method fs_trim = {
	.name = "va.fs.trim",
	.prepare = trim_prepare,
	.work = trim_work,
	.finish = trim_finish,
	.free = job_free,
};

/* ---- the registry's methods, the interceptor ------------------------------------------ */

static xmlrpc_value *
method_fs_info(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	(void)call_info;
	return va_async_inline(env, &fs_info, va_group_state(server_info), params);
}

static xmlrpc_value *
method_fs_trim(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	(void)call_info;
	return va_async_inline(env, &fs_trim, va_group_state(server_info), params);
}

static xmlrpc_value *
method_disks(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct va_mounts m;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.disks") < 0)
		return NULL;
	int r = va_mounts_read(&m);
	if (r < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.disks: the mount table: %s", strerror(-r));
		va_mounts_free(&m);
		return NULL;
	}
	xmlrpc_value *res = va_disks_list(env, "", &m);
	va_mounts_free(&m);
	return res;
}

static int
fs_intercept(void *state, const struct va_call *call)
{
	struct fs *fs = state;

	if (strcmp(call->method, "va.fs.info") == 0)
		return va_async_start(fs->jobs, &fs_info, fs, call);
	if (strcmp(call->method, "va.fs.trim") == 0)
		return va_async_start(fs->jobs, &fs_trim, fs, call);
	return 0;
}

static int
fs_init(struct va_agent *a, void **state)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -1;
	*state = fs;
	fs->a = a;
	fs->jobs = va_jobs_new(va_agent_loop(a), MAX_JOBS);
	fs->stuck = calloc(1, sizeof(*fs->stuck));
	if (!fs->jobs || !fs->stuck)
		return -1;
	pthread_mutex_init(&fs->stuck->mu, NULL);
	fs->stuck->refs = 1;
	return 0;
}

static void
fs_cleanup(void *state)
{
	struct fs *fs = state;

	va_jobs_free(fs->jobs);
	if (fs->stuck)
		stuck_unref(fs->stuck);
	free(fs);
}

static const struct xmlrpc_method_info3 fs_methods[] = {
	{
		.methodName = "va.fs.info",
		.methodFunction = method_fs_info,
		.signatureString = "A:,A:A",
		.help = "va.fs.info([array mountpoints]) -> array of struct {mountpoint, type, "
			"device, readonly, total_bytes, used_bytes, free_bytes, total_inodes, "
			"used_inodes, free_inodes (i8), [error], disks: array of {name, path, "
			"size_bytes, serial, bus, pci_address, model, vendor, removable, readonly, "
			"rotational}}: every mounted filesystem but the kernel's pseudo ones, or "
			"those named.",
	},
	{
		.methodName = "va.disks",
		.methodFunction = method_disks,
		.signatureString = "A:",
		.help = "va.disks() -> array of struct {name, path, size_bytes, serial, bus, "
			"pci_address, model, vendor, removable, readonly, rotational, partitions: "
			"[{name, path, size_bytes, start_sector}], slaves: [names], mountpoints: "
			"[paths]}: the block devices of sysfs but RAM disks and empty loop devices.",
	},
	{
		.methodName = "va.fs.trim",
		.methodFunction = method_fs_trim,
		.signatureString = "A:,A:A,A:AI,A:Ai",
		.help = "va.fs.trim([array mountpoints[, i8 minimum_bytes]]) -> array of struct "
			"{mountpoint, trimmed_bytes (i8), [error]}. Changes the guest: discards the "
			"unused blocks (FITRIM) of every local filesystem mounted read-write, or of "
			"those named, in the background.",
	},
};

const struct va_method_group va_group_fs = {
	.name = "fs",
	VA_GROUP_METHODS(fs_methods),
	.init = fs_init,
	.cleanup = fs_cleanup,
	.intercept = fs_intercept,
};
