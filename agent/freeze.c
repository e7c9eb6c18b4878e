/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * freeze.c - the group "freeze": va.fs.freeze, va.fs.thaw, va.fs.status,
 * the watchdog, and the gate that makes the agent refuse calls while
 * filesystems are frozen.
 *
 * States: thawed -> freezing -> frozen -> thawing -> thawed.  From
 * "freezing" on, the core's gate (va_agent_set_gate) refuses every
 * method but va.ping, va.capabilities, va.fs.status and va.fs.thaw, with
 * a fault that names the freeze: a call that writes (va.file.write,
 * va.file.open with O_CREAT...) would block the agent's only loop on a
 * frozen filesystem.  The agent's log is held meanwhile (common/log.h):
 * a syslogd writing to a frozen /var/log would block it too.  Nothing
 * else the agent writes lives on a filesystem it freezes: the pidfile
 * and the state file below are in /run (tmpfs, which cannot be frozen),
 * and the filesystem holding the state file is never frozen.
 *
 * FIFREEZE runs in mount order (/proc/self/mountinfo), FITHAW in the
 * reverse order, on a thread of the group's jobs; a failed FIFREEZE
 * thaws what this call froze and answers a fault.  EBUSY (frozen
 * already, by someone else or as another mount of the same filesystem)
 * is skipped: what the agent did not freeze it does not thaw.  EINVAL
 * from FITHAW (not frozen: thawed by someone else) counts as thawed.
 *
 * The state file (--freeze-state, default /run/va-agent.frozen) is
 * written before the first FIFREEZE and removed after the last FITHAW,
 * so that an agent restarted meanwhile comes up frozen (gate, held log,
 * watchdog) and can thaw.  Its lines: "virtagent-freeze 1", "since
 * UNIX", "deadline UNIX" (0: no watchdog) and "mount PATH" per frozen
 * filesystem, in freeze order, with bytes below 0x21, above 0x7e and
 * the backslash written as \ooo.  A state file that does not parse
 * makes the agent thaw every local filesystem at once (FITHAW of one
 * that is not frozen does nothing).
 *
 * The watchdog: --freeze-timeout seconds (default 600; 0: none) after a
 * freeze, the agent thaws by itself and sends the host the event
 * fs.thawed {reason: "watchdog", mountpoints, frozen_s, timeout_s}.
 * qemu-ga never thaws by itself on Linux; a host that dies between
 * freeze and thaw would leave the guest frozen until it is powered off.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong parameters
 *   XMLRPC_INDEX_ERROR          a mountpoint that is not one, or holds
 *                               the state file
 *   XMLRPC_REQUEST_REFUSED_ERROR (the gate) a method while frozen
 *   XMLRPC_LIMIT_EXCEEDED_ERROR va.fs.thaw while a freeze or a thaw is
 *                               running
 *   XMLRPC_INTERNAL_ERROR       FIFREEZE or FITHAW failed (the message
 *                               names the mountpoint and the error), the
 *                               state file cannot be written, no thread
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include "async.h"
#include "events.h"
#include "freeze.h"
#include "groups.h"
#include "jobs.h"
#include "log.h"
#include "methods.h"
#include "mounts.h"
#include "text.h"
#include "xmlgate.h"

#define MAX_FROZEN 256
#define STATE_MAX_BYTES (256u * 1024)
#define STATE_MAGIC "virtagent-freeze 1"
#define RETRY_MS 1000

enum fstate { THAWED, FREEZING, FROZEN, THAWING };
static const char *const state_names[] = { "thawed", "freezing", "frozen", "thawing" };

struct freeze {
	struct va_agent *a;
	struct va_jobs *jobs;
	enum fstate st;
	char **paths;          /* frozen (or being frozen), in freeze order */
	size_t n;
	int64_t since;         /* unix seconds */
	int64_t deadline;      /* unix seconds of the watchdog; 0: none */
	va_loop_timer *watchdog;
};

/* ---- the state file -------------------------------------------------------------- */

static const char *
state_path(struct freeze *fz)
{
	const char *p = va_agent_config(fz->a)->freeze_state;
	return p && p[0] ? p : NULL;
}

int
va_freeze_state_write(const char *path, int64_t since, int64_t deadline, char *const *paths,
		      size_t n)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%s\nsince %" PRId64 "\ndeadline %" PRId64 "\n", STATE_MAGIC, since, deadline);
	for (size_t i = 0; i < n; i++) {
		fputs("mount ", f);
		for (const unsigned char *p = (const unsigned char *)paths[i]; *p; p++) {
			if (*p < 0x21 || *p > 0x7e || *p == '\\')
				fprintf(f, "\\%03o", *p);
			else
				fputc(*p, f);
		}
		fputc('\n', f);
	}
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

/* Undoes \ooo in place. */
static void
unescape(char *s)
{
	char *o = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7' && (s[1] != '0' || s[2] != '0' || s[3] != '0')) {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

void
va_freeze_state_clear(struct va_freeze_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->paths[i]);
	free(st->paths);
	memset(st, 0, sizeof(*st));
}

int
va_freeze_state_parse(const char *text, size_t len, struct va_freeze_state *st)
{
	memset(st, 0, sizeof(*st));
	if (memchr(text, '\0', len))
		return -EBADMSG;
	char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	int r = 0, have_magic = 0, have_since = 0, have_deadline = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		long long v;
		char extra;
		if (!have_magic) {
			have_magic = strcmp(line, STATE_MAGIC) == 0;
			if (!have_magic)
				r = -EBADMSG;
		} else if (sscanf(line, "since %lld%c", &v, &extra) == 1) {
			st->since = v;
			have_since = 1;
		} else if (sscanf(line, "deadline %lld%c", &v, &extra) == 1) {
			st->deadline = v;
			have_deadline = 1;
		} else if (strncmp(line, "mount ", 6) == 0 && line[6] == '/' && st->n < MAX_FROZEN) {
			char **nv = realloc(st->paths, (st->n + 1) * sizeof(char *));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			st->paths = nv;
			unescape(line + 6);
			if (!(st->paths[st->n] = strdup(line + 6)))
				r = -ENOMEM;
			else
				st->n++;
		} else {
			r = -EBADMSG;
		}
	}
	free(copy);
	if (r == 0 && (!have_magic || !have_since || !have_deadline))
		r = -EBADMSG;
	if (r < 0)
		va_freeze_state_clear(st);
	return r;
}

/* Writes fz's state, or removes the file when thawed.  0 or -errno. */
static int
save(struct freeze *fz)
{
	const char *p = state_path(fz);
	if (!p)
		return 0;
	if (fz->st == THAWED) {
		if (unlink(p) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	return va_freeze_state_write(p, fz->since, fz->deadline, fz->paths, fz->n);
}

/* ---- the jobs ------------------------------------------------------------------------ */

enum op { OP_FREEZE, OP_THAW };

struct fz_job {
	struct freeze *fz;     /* only finish (the loop thread) touches it */
	enum op op;
	char **paths;          /* copies, in freeze order */
	size_t n;
	int *err;              /* per path: 0, or errno */
	int *skipped;          /* FIFREEZE's EBUSY: not ours */
	size_t failed_at;      /* OP_FREEZE: the first failure (n: none) */
	/* The call to answer; NULL tag: none (the watchdog, the start). */
	va_session *s;
	uint64_t epoch;
	char *tag;
	const char *reason;    /* of a thaw without a call */
};

static void
fz_job_free(void *opaque)
{
	struct fz_job *j = opaque;
	for (size_t i = 0; i < j->n; i++)
		free(j->paths[i]);
	free(j->paths);
	free(j->err);
	free(j->skipped);
	free(j->tag);
	free(j);
}

static struct fz_job *
fz_job_new(struct freeze *fz, enum op op, char *const *paths, size_t n)
{
	struct fz_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->fz = fz;
	j->op = op;
	j->failed_at = n;
	j->paths = calloc(n + 1, sizeof(char *));
	j->err = calloc(n + 1, sizeof(int));
	j->skipped = calloc(n + 1, sizeof(int));
	for (size_t i = 0; j->paths && i < n; i++) {
		if (!(j->paths[i] = strdup(paths[i])))
			break;
		j->n = i + 1;
	}
	if (!j->paths || !j->err || !j->skipped || j->n != n) {
		fz_job_free(j);
		return NULL;
	}
	return j;
}

/* FIFREEZE or FITHAW of path: 0 or errno. */
static int
fs_ioctl(const char *path, unsigned long req)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno;
	int arg = 0; /* FIFREEZE and FITHAW take none; a valid pointer keeps valgrind quiet */
	int r = ioctl(fd, req, &arg) < 0 ? errno : 0;
	close(fd);
	return r;
}

static void
fz_work(void *opaque)
{
	struct fz_job *j = opaque;

	if (j->op == OP_THAW) {
		for (size_t i = j->n; i-- > 0;) {
			j->err[i] = fs_ioctl(j->paths[i], FITHAW);
			if (j->err[i] == EINVAL)
				j->err[i] = 0; /* not frozen: thawed by someone else */
		}
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		j->err[i] = fs_ioctl(j->paths[i], FIFREEZE);
		if (j->err[i] == EBUSY) {
			j->err[i] = 0;
			j->skipped[i] = 1;
		} else if (j->err[i]) {
			j->failed_at = i;
			/* Undo this call's freezes, last first. */
			for (size_t k = i; k-- > 0;)
				if (!j->skipped[k])
					fs_ioctl(j->paths[k], FITHAW);
			return;
		}
	}
}

static void
answer(struct fz_job *j, xmlrpc_env *env, xmlrpc_value *res)
{
	if (j->tag)
		va_async_answer(j->s, j->epoch, j->tag, env, res);
}

static xmlrpc_value *
paths_value(xmlrpc_env *env, char *const *paths, size_t n, const int *skip)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);
	for (size_t i = 0; i < n && !env->fault_occurred; i++)
		if (!skip || !skip[i])
			va_append(env, arr, va_text_value_lossy(env, paths[i], strlen(paths[i]), NULL));
	return arr;
}

static void set_thawed(struct freeze *fz);
static void arm_watchdog(struct freeze *fz);

/* The end of a freeze (loop thread): the new state, and the answer (NULL: a fault in env). */
static xmlrpc_value *
freeze_finish(xmlrpc_env *env, struct fz_job *j)
{
	struct freeze *fz = j->fz;

	if (j->failed_at < j->n) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.fs.freeze: %s: FIFREEZE: %s; nothing is frozen", j->paths[j->failed_at],
		    strerror(j->err[j->failed_at]));
		set_thawed(fz);
		va_log_errx("%s", env->fault_string);
		return NULL;
	}
	/* What is frozen: the paths not skipped (fz->paths is in j's order). */
	size_t k = 0;
	for (size_t i = 0; i < fz->n; i++) {
		if (j->skipped[i]) {
			va_log_warnx("va.fs.freeze: %s was frozen already (not by this call): left "
				     "as it is", fz->paths[i]);
			free(fz->paths[i]);
		} else {
			fz->paths[k++] = fz->paths[i];
		}
	}
	fz->n = k;
	if (k == 0) {
		set_thawed(fz);
	} else {
		fz->st = FROZEN;
		int r = save(fz);
		if (r < 0)
			va_log_errx("va.fs.freeze: cannot update the freeze state file: %s", strerror(-r));
		arm_watchdog(fz);
	}
	va_log_info("va.fs.freeze: %zu filesystems frozen", k);
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_int(env, st, "frozen", (int64_t)k);
	va_set_value(env, st, "mountpoints", paths_value(env, j->paths, j->n, j->skipped));
	return va_result(env, st);
}

/* The end of a thaw (loop thread): the new state, the event of the watchdog, the answer. */
static xmlrpc_value *
thaw_finish(xmlrpc_env *env, struct fz_job *j)
{
	struct freeze *fz = j->fz;
	size_t thawed = 0, left = 0;
	char failed[512] = "";

	for (size_t i = 0; i < j->n; i++) {
		if (j->err[i] == 0) {
			thawed++;
			continue;
		}
		size_t o = strlen(failed);
		snprintf(failed + o, sizeof(failed) - o, "%s%s: %s", o ? "; " : "", j->paths[i],
			 strerror(j->err[i]));
		/* Still frozen: kept (in order) for the next va.fs.thaw.  left <= i,
		 * and fz->paths holds the same paths as j->paths. */
		char *keep = fz->paths[i];
		fz->paths[i] = NULL;
		free(fz->paths[left]);
		fz->paths[left++] = keep;
	}
	for (size_t i = left; i < fz->n; i++) {
		free(fz->paths[i]);
		fz->paths[i] = NULL;
	}
	int64_t frozen_s = (int64_t)time(NULL) - fz->since;
	fz->n = left;
	if (left == 0) {
		set_thawed(fz);
	} else {
		fz->st = FROZEN;
		save(fz);
		arm_watchdog(fz);
	}
	va_log_info("va.fs.thaw%s%s: %zu filesystems thawed%s%s", j->reason ? " by the " : "",
		    j->reason ? j->reason : "", thawed, left ? ", still frozen: " : "", failed);
	if (j->reason && strcmp(j->reason, "watchdog") == 0) {
		xmlrpc_env e2;
		xmlrpc_env_init(&e2);
		xmlrpc_value *d = xmlrpc_struct_new(&e2);
		va_set_text_z(&e2, d, "reason", j->reason);
		va_set_value(&e2, d, "mountpoints", paths_value(&e2, j->paths, j->n, j->err));
		va_set_int(&e2, d, "frozen_s", frozen_s);
		va_set_int(&e2, d, "timeout_s", va_agent_config(fz->a)->freeze_timeout);
		if (left)
			va_set_text_z(&e2, d, "error", failed);
		if (!e2.fault_occurred)
			va_event(fz->a, "fs.thawed", d);
		if (d)
			xmlrpc_DECREF(d);
		xmlrpc_env_clean(&e2);
	}
	if (left) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.fs.thaw: FITHAW failed, still frozen: %s", failed);
		return NULL;
	}
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_int(env, st, "thawed", (int64_t)thawed);
	va_set_value(env, st, "mountpoints", paths_value(env, j->paths, j->n, NULL));
	return va_result(env, st);
}

static xmlrpc_value *
fz_finish(xmlrpc_env *env, struct fz_job *j)
{
	return j->op == OP_FREEZE ? freeze_finish(env, j) : thaw_finish(env, j);
}

/* The job's end on the loop thread: the state, and the answer to the call, if any. */
static void
fz_done(void *opaque)
{
	struct fz_job *j = opaque;
	xmlrpc_env env;

	xmlrpc_env_init(&env);
	xmlrpc_value *res = fz_finish(&env, j);
	answer(j, &env, res);
	if (res)
		xmlrpc_DECREF(res);
	xmlrpc_env_clean(&env);
	fz_job_free(j);
}

/* Runs j now, on this thread (the registry's methods): its answer. */
static xmlrpc_value *
fz_inline(xmlrpc_env *env, struct fz_job *j)
{
	fz_work(j);
	xmlrpc_value *res = fz_finish(env, j);
	fz_job_free(j);
	return res;
}

/* ---- states ----------------------------------------------------------------------- */

static void
set_thawed(struct freeze *fz)
{
	for (size_t i = 0; i < fz->n; i++)
		free(fz->paths[i]);
	free(fz->paths);
	fz->paths = NULL;
	fz->n = 0;
	fz->st = THAWED;
	fz->since = 0;
	fz->deadline = 0;
	va_loop_timer_stop(fz->watchdog);
	int r = save(fz);
	/* The log may go to the filesystems again. */
	va_log_release();
	if (r < 0)
		va_log_errx("cannot remove the freeze state file %s: %s", state_path(fz), strerror(-r));
}

/* The wall clock in milliseconds (the deadline is in the state file's unix seconds). */
static int64_t
real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
arm_watchdog(struct freeze *fz)
{
	if (fz->deadline <= 0) {
		va_loop_timer_stop(fz->watchdog);
		return;
	}
	/* To the millisecond: whole seconds here made it fire up to 1 s early. */
	int64_t left = fz->deadline * 1000 - real_ms();
	va_loop_timer_in(fz->watchdog, left > 0 ? (uint64_t)left : 0);
}

/*
 * Starts a thaw of what is frozen: 0, or -errno (the state stays).
 * With inline_res, runs it now and puts the answer there (NULL: env's fault).
 */
static int
start_thaw(struct freeze *fz, const struct va_call *call, const char *reason, xmlrpc_env *env,
	   xmlrpc_value **inline_res)
{
	struct fz_job *j = fz_job_new(fz, OP_THAW, fz->paths, fz->n);
	if (!j)
		return -ENOMEM;
	if (call) {
		j->s = call->s;
		j->epoch = call->epoch;
		if (!(j->tag = strdup(call->tag))) {
			fz_job_free(j);
			return -ENOMEM;
		}
	}
	j->reason = reason;
	fz->st = THAWING;
	if (inline_res) {
		*inline_res = fz_inline(env, j);
		return 0;
	}
	int r = va_jobs_run(fz->jobs, fz_work, fz_done, fz_job_free, j);
	if (r < 0) {
		fz->st = FROZEN;
		fz_job_free(j);
		return r;
	}
	return 0;
}

static void
on_watchdog(void *opaque)
{
	struct freeze *fz = opaque;

	if (fz->st != FROZEN)
		return;
	va_log_warnx("the filesystems have been frozen for %" PRId64 " s: the watchdog thaws them "
		     "(--freeze-timeout)", (int64_t)time(NULL) - fz->since);
	int r = start_thaw(fz, NULL, "watchdog", NULL, NULL);
	if (r < 0) {
		va_log_errx("the watchdog cannot thaw yet (%s): again in %d ms", strerror(-r), RETRY_MS);
		va_loop_timer_in(fz->watchdog, RETRY_MS);
	}
}

/* The core's gate (agent.h): what a frozen guest still serves. */
static int
gate(void *arg, const char *method, xmlrpc_env *env)
{
	static const char *const served[] = {
		"va.ping", "va.capabilities", "va.fs.status", "va.fs.thaw",
	};
	struct freeze *fz = arg;

	if (fz->st == THAWED)
		return 0;
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		if (strcmp(method, served[i]) == 0)
			return 0;
	char wd[64] = "";
	if (fz->deadline > 0)
		snprintf(wd, sizeof(wd), " (or the watchdog, in %" PRId64 " s)",
			 fz->deadline - (int64_t)time(NULL));
	va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
	    "%s is refused: the guest's filesystems are %s (va.fs.freeze, %zu filesystems, since "
	    "%" PRId64 " s); only va.ping, va.capabilities, va.fs.status and va.fs.thaw are "
	    "served until va.fs.thaw%s", method, state_names[fz->st], fz->n,
	    (int64_t)time(NULL) - fz->since, wd);
	return 1;
}

/* ---- the methods ------------------------------------------------------------------- */

/* The filesystem of the state file's directory (never frozen): its st_dev, or 0. */
static dev_t
state_dev(struct freeze *fz)
{
	const char *p = state_path(fz);
	char dir[4096];
	struct stat st;

	if (!p || (size_t)snprintf(dir, sizeof(dir), "%s", p) >= sizeof(dir))
		return 0;
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	return stat(dir, &st) == 0 ? st.st_dev : 0;
}

/*
 * The mountpoints to freeze: those named (checked), or every local disk
 * mounted read-write but the one of the state file.  A new array in
 * *out (n entries), or -1 with a fault.
 */
static int
select_freeze(xmlrpc_env *env, struct freeze *fz, char **named, size_t nnamed, char ***out,
	      size_t *n)
{
	struct va_mounts m;
	int r = va_mounts_read(&m);
	dev_t sdev = state_dev(fz);

	if (r < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.fs.freeze: the mount table: %s", strerror(-r));
		va_mounts_free(&m);
		return -1;
	}
	char **v = calloc(m.n + nnamed + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; v && i < m.n && !env->fault_occurred; i++) {
		const struct va_mount *mt = &m.v[i];
		int ours = 0;
		if (named) {
			for (size_t q = 0; q < nnamed; q++)
				if (strcmp(named[q], mt->mountpoint) == 0 && va_mounts_find(&m, named[q]) == mt)
					ours = 1;
			for (size_t q = 0; ours && q < k; q++)
				if (strcmp(v[q], mt->mountpoint) == 0)
					ours = 0;
		} else {
			ours = va_mounts_writable_disk(&m, i);
		}
		if (!ours)
			continue;
		if (sdev && major(sdev) == mt->major && minor(sdev) == mt->minor) {
			if (named)
				va_fault(env, XMLRPC_INDEX_ERROR,
				    "va.fs.freeze: %s holds the agent's freeze state file %s: not frozen "
				    "(give --freeze-state a path on tmpfs)", mt->mountpoint, state_path(fz));
			continue;
		}
		if (!(v[k++] = strdup(mt->mountpoint)))
			va_fault(env, XMLRPC_INTERNAL_ERROR, "va.fs.freeze: out of memory");
	}
	for (size_t q = 0; named && q < nnamed && !env->fault_occurred; q++)
		if (!va_mounts_find(&m, named[q]))
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "va.fs.freeze: %s is not a mount point", named[q]);
	if (!v)
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.fs.freeze: out of memory");
	va_mounts_free(&m);
	if (env->fault_occurred || k > MAX_FROZEN) {
		if (!env->fault_occurred)
			va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "va.fs.freeze: more than %d filesystems", MAX_FROZEN);
		for (size_t i = 0; v && i < k; i++)
			free(v[i]);
		free(v);
		return -1;
	}
	*out = v;
	*n = k;
	return 0;
}

/* Parameter 0 of va.fs.freeze: the named mountpoints, or NULL (none given). */
static char **
freeze_params(xmlrpc_env *env, xmlrpc_value *params, size_t *n)
{
	static const char usage[] = "va.fs.freeze: expected ([array of string mountpoints])";
	int np = va_params_count(env, params, 0, 1, usage);

	*n = 0;
	return np == 1 ? va_param_strings(env, params, 0, usage, MAX_FROZEN, n) : NULL;
}

/*
 * va.fs.freeze: checks, selects, enters "freezing" (gate, held log,
 * state file) and starts the job, which answers call when it ends
 * (*started set).  Otherwise a fault in env, or nothing to freeze.  With
 * inline_res, runs the job now and puts its answer there.
 */
static void
freeze_start(xmlrpc_env *env, struct freeze *fz, xmlrpc_value *params, const struct va_call *call,
	     int *started, xmlrpc_value **inline_res)
{
	size_t nnamed = 0, n = 0;
	char **sel = NULL;

	*started = 0;
	char **named = freeze_params(env, params, &nnamed);
	if (env->fault_occurred)
		return;
	va_log_info("va.fs.freeze%s", named ? " (named mountpoints)" : "");
	if (fz->st != THAWED) {
		/* The gate refuses it first; this is for a call that bypassed it. */
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "va.fs.freeze: the filesystems are %s already", state_names[fz->st]);
		goto out;
	}
	if (select_freeze(env, fz, named, named ? nnamed : 0, &sel, &n) < 0)
		goto out;
	if (n == 0) {
		free(sel);
		sel = NULL;
		goto out; /* nothing to freeze: {frozen: 0} */
	}
	struct fz_job *j = fz_job_new(fz, OP_FREEZE, sel, n);
	if (j && call) {
		j->s = call->s;
		j->epoch = call->epoch;
		j->tag = strdup(call->tag);
	}
	if (!j || (call && !j->tag)) {
		if (j)
			fz_job_free(j);
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.fs.freeze: out of memory");
		goto out;
	}
	/* "freezing" before the first FIFREEZE: from now on nothing may write. */
	fz->paths = sel;
	fz->n = n;
	sel = NULL;
	int64_t t_ms = real_ms();
	fz->since = t_ms / 1000;
	unsigned timeout = va_agent_config(fz->a)->freeze_timeout;
	/* Rounded up to the second: the watchdog never thaws before the timeout. */
	fz->deadline = timeout ? (t_ms + (int64_t)timeout * 1000 + 999) / 1000 : 0;
	fz->st = FREEZING;
	int r = save(fz);
	if (r < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.fs.freeze: cannot write the freeze state file %s: %s; nothing is frozen",
		    state_path(fz), strerror(-r));
		fz_job_free(j);
		set_thawed(fz);
		goto out;
	}
	va_log_info("va.fs.freeze: freezing %zu filesystems; the log is held until they thaw", n);
	va_log_hold();
	if (inline_res) {
		*inline_res = fz_inline(env, j);
		*started = 1;
		goto out;
	}
	r = va_jobs_run(fz->jobs, fz_work, fz_done, fz_job_free, j);
	if (r < 0) {
		fz_job_free(j);
		set_thawed(fz);
		va_fault(env, r == -EBUSY ? XMLRPC_LIMIT_EXCEEDED_ERROR :
		    XMLRPC_INTERNAL_ERROR, "va.fs.freeze: cannot start: %s; nothing is frozen",
		    strerror(-r));
		goto out;
	}
	*started = 1;
out:
	for (size_t i = 0; sel && i < n; i++)
		free(sel[i]);
	free(sel);
	va_strings_free(named);
}

static xmlrpc_value *
nothing_frozen(xmlrpc_env *env)
{
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_int(env, st, "frozen", 0);
	va_set_value(env, st, "mountpoints", xmlrpc_array_new(env));
	return va_result(env, st);
}

/* va.fs.thaw's checks: 1 when a thaw may start, 0 with the answer in env/res. */
static int
thaw_check(xmlrpc_env *env, struct freeze *fz, xmlrpc_value *params, xmlrpc_value **res)
{
	*res = NULL;
	if (va_params_none(env, params, "va.fs.thaw") < 0)
		return 0;
	if (fz->st == FREEZING || fz->st == THAWING) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.fs.thaw: busy: the filesystems are %s; call again when that is done "
		    "(va.fs.status)", state_names[fz->st]);
		return 0;
	}
	if (fz->st == THAWED) {
		*res = xmlrpc_struct_new(env);
		va_set_int(env, *res, "thawed", 0);
		va_set_value(env, *res, "mountpoints", xmlrpc_array_new(env));
		return 0;
	}
	return 1;
}

/*
 * The registry's methods: the same, the ioctls run on the loop thread
 * (what introspection describes; the interceptor runs them on a thread).
 */
static xmlrpc_value *
method_freeze(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct freeze *fz = va_group_state(server_info);
	xmlrpc_value *res = NULL;
	int started;

	(void)call_info;
	freeze_start(env, fz, params, NULL, &started, &res);
	if (env->fault_occurred)
		return NULL;
	return started ? res : nothing_frozen(env);
}

static xmlrpc_value *
method_thaw(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct freeze *fz = va_group_state(server_info);
	xmlrpc_value *res;

	(void)call_info;
	if (!thaw_check(env, fz, params, &res))
		return env->fault_occurred ? NULL : res;
	int r = start_thaw(fz, NULL, NULL, env, &res);
	if (r < 0)
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.fs.thaw: cannot start: %s", strerror(-r));
	return res;
}

static xmlrpc_value *
method_status(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct freeze *fz = va_group_state(server_info);

	(void)call_info;
	if (va_params_none(env, params, "va.fs.status") < 0)
		return NULL;
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text_z(env, st, "status", state_names[fz->st]);
	va_set_value(env, st, "mountpoints", paths_value(env, fz->paths, fz->n, NULL));
	va_set_double(env, st, "since", (double)fz->since);
	int64_t left = fz->deadline > 0 && fz->st != THAWED ? fz->deadline - (int64_t)time(NULL) : 0;
	va_set_int(env, st, "watchdog_s", left > 0 ? left : 0);
	return va_result(env, st);
}

static int
freeze_intercept(void *state, const struct va_call *call)
{
	struct freeze *fz = state;
	int is_freeze = strcmp(call->method, "va.fs.freeze") == 0;

	if (!is_freeze && strcmp(call->method, "va.fs.thaw") != 0)
		return 0;
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL, *res = NULL;
	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, call->body, call->len, &name, &params);
	free(name);
	if (env.fault_occurred) {
		xmlrpc_env_clean(&env);
		return 0; /* the registry says what is wrong */
	}
	int started = 0;
	if (is_freeze) {
		freeze_start(&env, fz, params, call, &started, NULL);
		if (!started && !env.fault_occurred)
			res = nothing_frozen(&env);
	} else if (thaw_check(&env, fz, params, &res)) {
		int r = start_thaw(fz, call, NULL, NULL, NULL);
		if (r == 0)
			started = 1;
		else
			va_fault(&env, XMLRPC_INTERNAL_ERROR,
			    "va.fs.thaw: cannot start: %s", strerror(-r));
	}
	if (!started)
		va_async_answer(call->s, call->epoch, call->tag, &env, res);
	if (res)
		xmlrpc_DECREF(res);
	xmlrpc_DECREF(params);
	xmlrpc_env_clean(&env);
	return 1;
}

/* ---- life --------------------------------------------------------------------------- */

/* At start: a state file left by an agent that stopped while frozen. */
static void
restore(struct freeze *fz)
{
	const char *p = state_path(fz);
	size_t len = 0;
	char *text = p ? va_read_file(p, STATE_MAX_BYTES, &len, NULL) : NULL;
	struct va_freeze_state st;

	if (!text)
		return;
	int r = va_freeze_state_parse(text, len, &st);
	free(text);
	fz->st = FROZEN;
	va_log_hold();
	if (r < 0) {
		/* What is frozen is unknown: thaw every local filesystem now. */
		struct va_mounts m;
		va_log_errx("the freeze state file %s does not parse: thawing every local "
			    "filesystem", p);
		if (va_mounts_read(&m) == 0) {
			fz->paths = calloc(m.n + 1, sizeof(char *));
			for (size_t i = 0; fz->paths && i < m.n && fz->n < MAX_FROZEN; i++)
				if (va_mounts_writable_disk(&m, i) && (fz->paths[fz->n] = strdup(m.v[i].mountpoint)))
					fz->n++;
		}
		va_mounts_free(&m);
		fz->since = (int64_t)time(NULL);
		fz->deadline = fz->since;
	} else {
		fz->paths = st.paths;
		fz->n = st.n;
		fz->since = st.since;
		fz->deadline = st.deadline;
		va_log_warnx("the agent starts with %zu filesystems frozen since %" PRId64 " s (%s): "
			     "only va.ping, va.capabilities, va.fs.status and va.fs.thaw are served; "
			     "the watchdog thaws %s", st.n, (int64_t)time(NULL) - st.since, p,
			     st.deadline ? "at the deadline" : "never (--freeze-timeout 0)");
	}
	arm_watchdog(fz);
}

static int
freeze_init(struct va_agent *a, void **state)
{
	struct freeze *fz = calloc(1, sizeof(*fz));

	if (!fz)
		return -1;
	*state = fz;
	fz->a = a;
	fz->jobs = va_jobs_new(va_agent_loop(a), 2);
	fz->watchdog = va_loop_timer_new(va_agent_loop(a), on_watchdog, fz);
	if (!fz->jobs || !fz->watchdog)
		return -1;
	va_agent_set_gate(a, gate, fz);
	restore(fz);
	return 0;
}

static void
freeze_cleanup(void *state)
{
	struct freeze *fz = state;

	/* Frozen filesystems stay frozen, and the state file says so: the next
	 * agent (or the watchdog of the next) thaws them. */
	if (fz->st != THAWED)
		va_log_warnx("stopping with %zu filesystems %s (state in %s)", fz->n,
			     state_names[fz->st], state_path(fz) ? state_path(fz) : "no file");
	va_agent_set_gate(fz->a, NULL, NULL);
	va_jobs_free(fz->jobs);
	va_loop_timer_free(fz->watchdog);
	for (size_t i = 0; i < fz->n; i++)
		free(fz->paths[i]);
	free(fz->paths);
	free(fz);
}

static const struct xmlrpc_method_info3 freeze_methods[] = {
	{
		.methodName = "va.fs.freeze",
		.methodFunction = method_freeze,
		.signatureString = "S:,S:A",
		.help = "va.fs.freeze([array mountpoints]) -> struct {frozen: int, mountpoints}. "
			"Changes the guest: freezes (FIFREEZE, in mount order) every local "
			"filesystem mounted read-write, or those named. Until va.fs.thaw (or the "
			"watchdog, --freeze-timeout) the agent serves only va.ping, "
			"va.capabilities, va.fs.status and va.fs.thaw.",
	},
	{
		.methodName = "va.fs.thaw",
		.methodFunction = method_thaw,
		.signatureString = "S:",
		.help = "va.fs.thaw() -> struct {thawed: int, mountpoints}. Changes the guest: "
			"thaws (FITHAW, in reverse order) what va.fs.freeze froze.",
	},
	{
		.methodName = "va.fs.status",
		.methodFunction = method_status,
		.signatureString = "S:",
		.help = "va.fs.status() -> struct {status (thawed, freezing, frozen, thawing), "
			"mountpoints, since: double (unix time of the freeze), watchdog_s: int "
			"(seconds until the watchdog thaws; 0: none)}.",
	},
};

const struct va_method_group va_group_freeze = {
	.name = "freeze",
	VA_GROUP_METHODS(freeze_methods),
	.init = freeze_init,
	.cleanup = freeze_cleanup,
	.intercept = freeze_intercept,
};
