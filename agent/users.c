/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * users.c - the group "users": va.users, the logged-in users from utmp,
 * and with --events users the events user.login and user.logout.
 *
 * utmp (_PATH_UTMP, /var/run/utmp) is read as records of struct utmpx,
 * at most VA_USERS_MAX_BYTES, not with getutxent(): glibc's utmp
 * functions wait for a lock up to 10 s, with alarm(), which the loop
 * cannot afford.  A record of type USER_PROCESS is a session.
 *
 * Events: inotify watches utmp (and its directory, for a utmp that is
 * created or replaced); a change is read 100 ms later (login writes
 * utmp several times) and compared with what the group saw before: a
 * new session is a user.login, a session gone a user.logout.  No
 * polling.  At most MAX_TRACKED sessions are compared.
 *
 * Text: user, line and host are the bytes of the record (not
 * necessarily NUL-terminated, not necessarily UTF-8): reported as
 * methods.h says (U+FFFD, NAME_raw).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR     parameters given
 *   XMLRPC_INTERNAL_ERROR utmp cannot be read (other than missing: no
 *                         users), out of memory
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <paths.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <utmpx.h>

#include "events.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"
#include "users.h"

#define MAX_TRACKED 1024
#define SETTLE_MS 100

struct users {
	struct va_agent *a;
	int fd;               /* inotify, -1: no events */
	int wd_file, wd_dir;
	va_loop_timer *settle;
	struct utmpx *seen;   /* the sessions seen last (MAX_TRACKED) */
	size_t nseen;
};

static int
is_session(const struct utmpx *u)
{
	return u->ut_type == USER_PROCESS && u->ut_user[0];
}

static xmlrpc_value *
session_value(xmlrpc_env *env, const struct utmpx *u)
{
	xmlrpc_value *st = xmlrpc_struct_new(env);

	va_set_text(env, st, "user", u->ut_user, strnlen(u->ut_user, sizeof(u->ut_user)));
	va_set_text(env, st, "line", u->ut_line, strnlen(u->ut_line, sizeof(u->ut_line)));
	va_set_text(env, st, "host", u->ut_host, strnlen(u->ut_host, sizeof(u->ut_host)));
	va_set_double(env, st, "login_time",
		      (double)u->ut_tv.tv_sec + (double)u->ut_tv.tv_usec / 1e6);
	va_set_int(env, st, "pid", u->ut_pid);
	return va_result(env, st);
}

xmlrpc_value *
va_users_parse(xmlrpc_env *env, const void *utmp, size_t len)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);

	for (size_t off = 0; !env->fault_occurred && len - off >= sizeof(struct utmpx);
	     off += sizeof(struct utmpx)) {
		struct utmpx u;
		memcpy(&u, (const char *)utmp + off, sizeof(u));
		if (is_session(&u))
			va_append(env, arr, session_value(env, &u));
	}
	return va_result(env, arr);
}

/* utmp's bytes (NULL and *len 0 when there is no utmp), or NULL with errno. */
static char *
read_utmp(size_t *len, int *missing)
{
	char *buf = va_read_file(_PATH_UTMP, VA_USERS_MAX_BYTES, len, NULL);

	*missing = !buf && errno == ENOENT;
	if (*missing)
		*len = 0;
	return buf;
}

static xmlrpc_value *
method_users(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	size_t len = 0;
	int missing;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.users") < 0)
		return NULL;
	char *buf = read_utmp(&len, &missing);
	if (!buf && !missing) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.users: %s: %s", _PATH_UTMP, strerror(errno));
		return NULL;
	}
	xmlrpc_value *res = va_users_parse(env, buf ? buf : "", len);
	free(buf);
	return res;
}

/* ---- events ---- */

static int
same_session(const struct utmpx *a, const struct utmpx *b)
{
	return a->ut_pid == b->ut_pid && a->ut_tv.tv_sec == b->ut_tv.tv_sec &&
	       a->ut_tv.tv_usec == b->ut_tv.tv_usec &&
	       strncmp(a->ut_line, b->ut_line, sizeof(a->ut_line)) == 0 &&
	       strncmp(a->ut_user, b->ut_user, sizeof(a->ut_user)) == 0;
}

static int
in_list(const struct utmpx *list, size_t n, const struct utmpx *u)
{
	for (size_t i = 0; i < n; i++)
		if (same_session(&list[i], u))
			return 1;
	return 0;
}

static void
send_session(struct users *us, const char *name, const struct utmpx *u)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *d = session_value(&env, u);
	if (d) {
		va_event(us->a, name, d);
		xmlrpc_DECREF(d);
	}
	xmlrpc_env_clean(&env);
}

/* Reads utmp and sends what changed since the last look (when send). */
static void
compare(struct users *us, int send)
{
	size_t len = 0, n = 0;
	int missing;
	char *buf = read_utmp(&len, &missing);
	struct utmpx *now = calloc(MAX_TRACKED, sizeof(*now));

	if ((!buf && !missing) || !now) {
		va_log_warnx("user events: cannot read %s: %s", _PATH_UTMP, strerror(errno));
		free(buf);
		free(now);
		return;
	}
	for (size_t off = 0; len - off >= sizeof(struct utmpx) && n < MAX_TRACKED;
	     off += sizeof(struct utmpx)) {
		memcpy(&now[n], buf + off, sizeof(now[n]));
		if (is_session(&now[n]))
			n++;
	}
	free(buf);
	if (send) {
		for (size_t i = 0; i < us->nseen; i++)
			if (!in_list(now, n, &us->seen[i]))
				send_session(us, "user.logout", &us->seen[i]);
		for (size_t i = 0; i < n; i++)
			if (!in_list(us->seen, us->nseen, &now[i]))
				send_session(us, "user.login", &now[i]);
	}
	free(us->seen);
	us->seen = now;
	us->nseen = n;
}

static void
watch_file(struct users *us)
{
	if (us->wd_file >= 0)
		return;
	us->wd_file = inotify_add_watch(us->fd, _PATH_UTMP,
					IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
}

static void
settled(void *opaque)
{
	struct users *us = opaque;

	watch_file(us);
	compare(us, 1);
}

static void
on_inotify(void *opaque, int fd, unsigned revents)
{
	struct users *us = opaque;
	/* Aligned as inotify_event wants. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char base[] = _PATH_UTMP;
	const char *name = basename(base);
	int changed = 0;

	(void)revents;
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
			const struct inotify_event *e = (const void *)(buf + off);
			if (e->wd == us->wd_file) {
				changed = 1;
				if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
					us->wd_file = -1;
			} else if (e->wd == us->wd_dir && e->len && strcmp(e->name, name) == 0) {
				changed = 1; /* created or replaced: watch the new file */
				if (us->wd_file >= 0)
					inotify_rm_watch(us->fd, us->wd_file);
				us->wd_file = -1;
			}
			off += sizeof(*e) + e->len;
		}
	}
	if (changed && !va_loop_timer_armed(us->settle))
		va_loop_timer_in(us->settle, SETTLE_MS);
}

static int
users_init(struct va_agent *a, void **state)
{
	struct users *us = calloc(1, sizeof(*us));

	if (!us)
		return -1;
	us->a = a;
	us->fd = us->wd_file = us->wd_dir = -1;
	*state = us;
	if (!(va_agent_config(a)->events & VA_EVENTS_USERS))
		return 0;
	us->settle = va_loop_timer_new(va_agent_loop(a), settled, us);
	if (!us->settle)
		return -1;
	us->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (us->fd < 0) {
		va_log_warnx("user events: inotify: %s; no user.* events", strerror(errno));
		return 0;
	}
	char dir[] = _PATH_UTMP;
	us->wd_dir = inotify_add_watch(us->fd, dirname(dir), IN_CREATE | IN_MOVED_TO);
	watch_file(us);
	if (us->wd_dir < 0 && us->wd_file < 0)
		va_log_warnx("user events: cannot watch %s: %s; no user.* events", _PATH_UTMP,
			     strerror(errno));
	if (va_loop_fd_set(va_agent_loop(a), us->fd, POLLIN, on_inotify, us) < 0)
		return -1;
	compare(us, 0);
	return 0;
}

static void
users_cleanup(void *state)
{
	struct users *us = state;

	if (us->fd >= 0) {
		va_loop_fd_clear(va_agent_loop(us->a), us->fd);
		close(us->fd);
	}
	va_loop_timer_free(us->settle);
	free(us->seen);
	free(us);
}

static const struct xmlrpc_method_info3 users_methods[] = {
	{
		.methodName = "va.users",
		.methodFunction = method_users,
		.signatureString = "A:",
		.help = "va.users() -> array of struct {user, line (the terminal), host (of a "
			"remote login, or empty), login_time: double (unix time), pid: int}: "
			"the users logged in, from utmp.",
	},
};

const struct va_method_group va_group_users = {
	.name = "users",
	VA_GROUP_METHODS(users_methods),
	.init = users_init,
	.cleanup = users_cleanup,
};
