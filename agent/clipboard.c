/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clipboard.c - the group "clipboard": the agent's clipboard buffer (its
 * state, struct va_clipboard; clipboard.h is what others use of it),
 * va.clipboard.get and va.clipboard.set.
 *
 * The buffer holds text only: valid UTF-8 without NUL or control
 * characters other than tab, LF and CR (what XML carries, common/text.h:
 * emoji and CR included), at most VA_CLIPBOARD_MAX bytes: whatever is
 * stored can always be sent.  Every store gets the next serial (1, 2,
 * ...); serial 0 with origin "none" means nothing was stored yet.
 *
 * A store from the guest (origin "guest", va-clip copy) is sent to the
 * host with host.clipboard.set(text).  A store from the host
 * (va.clipboard.set) is also kept apart as "the last text the host set"
 * for va-clip paste, and, when config->clip_copy_command is set, that
 * command is started with the text on stdin (not waited for, see children.h;
 * at most CLIP_BRIDGE_CHILDREN at once, more are skipped with a warning).
 * When config->clip_paste_command is set, va.clipboard.get first runs it
 * (at most CLIP_PASTE_TIMEOUT_MS; this blocks the loop that long at
 * worst) and, when the desktop's text differs from the buffer, stores it
 * as a guest copy (so the host is told, as for va-clip copy).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong number or type of parameters; a
 *                               control character in the text
 *   XMLRPC_INVALID_UTF8_ERROR   the text is not valid UTF-8
 *   XMLRPC_LIMIT_EXCEEDED_ERROR the text is over VA_CLIPBOARD_MAX bytes
 *   XMLRPC_INTERNAL_ERROR       out of memory
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clipboard.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"
#include "children.h"

#define CLIP_BRIDGE_CHILDREN 4
/* How long va.clipboard.get waits for the desktop paste command. */
#define CLIP_PASTE_TIMEOUT_MS 2000

struct clip {
	char *text; /* NUL-terminated, len bytes */
	size_t len;
	uint64_t serial;
	const char *origin;
};

struct va_clipboard {
	struct clip now;  /* the clipboard */
	struct clip host; /* the last text the host set */
	uint64_t serial;  /* of the last store */
};

static void
clip_set(struct clip *c, char *text, size_t len, uint64_t serial, const char *origin)
{
	free(c->text);
	c->text = text;
	c->len = len;
	c->serial = serial;
	c->origin = origin;
}

static char *
dup_text(const char *text, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, text, len);
		s[len] = '\0';
	}
	return s;
}

uint64_t
va_clipboard_store(struct va_agent *a, const char *text, size_t len, const char *origin)
{
	struct va_clipboard *cb = va_agent_group_state(a, &va_group_clipboard);
	int from_host;
	char *copy, *host_copy = NULL;

	if (!cb)
		return 0;
	if (strcmp(origin, "host") == 0)
		from_host = 1;
	else if (strcmp(origin, "guest") == 0)
		from_host = 0;
	else
		return 0;
	const char *why;
	if (len > VA_CLIPBOARD_MAX || va_text_check(text, len, &why) != len)
		return 0;
	copy = dup_text(text, len);
	if (from_host && copy)
		host_copy = dup_text(text, len);
	if (!copy || (from_host && !host_copy)) {
		free(copy);
		free(host_copy);
		return 0;
	}
	uint64_t serial = ++cb->serial;
	clip_set(&cb->now, copy, len, serial, from_host ? "host" : "guest");

	if (from_host) {
		clip_set(&cb->host, host_copy, len, serial, "host");
		const struct va_agent_config *cfg = va_agent_config(a);
		if (cfg->clip_copy_command && cfg->clip_copy_command[0]) {
			pid_t pid = va_children_spawn(va_agent_children(a), cfg->clip_copy_command,
			    NULL, text, len, CLIP_BRIDGE_CHILDREN);
			if (pid < 0)
				va_log_warnx("clipboard copy command not started: %s",
				    strerror((int)-pid));
		}
	} else {
		/* Not "(s#)": xmlrpc-c's own string would refuse an emoji and
		 * turn CR into LF (common/text.h). */
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		xmlrpc_value *t = va_text_value(&env, text, len);
		if (t) {
			va_agent_call_hostf(a, "host.clipboard.set", "(V)", t);
			xmlrpc_DECREF(t);
		} else {
			va_log_errx("host.clipboard.set not sent: %s", env.fault_string);
		}
		xmlrpc_env_clean(&env);
	}
	return serial;
}

static void
view_of(const struct clip *c, struct va_clip_view *v)
{
	int full = c && c->text;
	v->text = full ? c->text : "";
	v->len = full ? c->len : 0;
	v->serial = full ? c->serial : 0;
	v->origin = full ? c->origin : "none";
}

void
va_clipboard_view(struct va_agent *a, struct va_clip_view *v)
{
	struct va_clipboard *cb = va_agent_group_state(a, &va_group_clipboard);
	view_of(cb ? &cb->now : NULL, v);
}

void
va_clipboard_view_host(struct va_agent *a, struct va_clip_view *v)
{
	struct va_clipboard *cb = va_agent_group_state(a, &va_group_clipboard);
	view_of(cb ? &cb->host : NULL, v);
}

static void
clear(struct va_clipboard *cb)
{
	clip_set(&cb->now, NULL, 0, 0, NULL);
	clip_set(&cb->host, NULL, 0, 0, NULL);
}

void
va_clipboard_clear(struct va_agent *a)
{
	struct va_clipboard *cb = va_agent_group_state(a, &va_group_clipboard);
	if (cb)
		clear(cb);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Runs the desktop paste command and reads what it prints (at most
 * VA_CLIPBOARD_MAX bytes, at most CLIP_PASTE_TIMEOUT_MS).  Returns a
 * malloc'd text and its length, or NULL (logged) when the command fails,
 * times out or prints too much.
 */
static char *
read_desktop(const char *cmd, size_t *lenp)
{
	int pfd[2];
	char *buf = NULL;
	size_t len = 0;
	int ok = 0;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		va_log_warn("clipboard paste command: pipe");
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		va_log_warn("clipboard paste command: fork");
		close(pfd[0]);
		close(pfd[1]);
		return NULL;
	}
	if (pid == 0) {
		/* Its own process group, so a timeout kills what it started. */
		setpgid(0, 0);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	buf = malloc(VA_CLIPBOARD_MAX + 1);
	uint64_t end = mono_ms() + CLIP_PASTE_TIMEOUT_MS;
	while (buf) {
		uint64_t now = mono_ms();
		if (now >= end) {
			va_log_warnx("clipboard paste command: no end after %d ms, killed",
				     CLIP_PASTE_TIMEOUT_MS);
			break;
		}
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int r = poll(&p, 1, (int)(end - now));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		ssize_t n = read(pfd[0], buf + len, VA_CLIPBOARD_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = n == 0;
			break;
		}
		len += (size_t)n;
		if (len > VA_CLIPBOARD_MAX) {
			va_log_warnx("clipboard paste command: more than %u bytes", VA_CLIPBOARD_MAX);
			break;
		}
	}
	close(pfd[0]);
	/* A command may close its output and go on running: wait for its
	 * end only until the deadline, then kill its whole group. */
	int status = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && ok && mono_ms() < end)
		poll(NULL, 0, 10);
	if (w == 0) {
		if (ok)
			va_log_warnx("clipboard paste command: still running after %d ms, killed",
				     CLIP_PASTE_TIMEOUT_MS);
		ok = 0;
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (ok && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		va_log_warnx("clipboard paste command failed (status %d)", status);
		ok = 0;
	}
	if (!ok) {
		free(buf);
		return NULL;
	}
	*lenp = len;
	return buf;
}

/* Takes the desktop's text into the buffer when it changed there. */
static void
sync_from_desktop(struct va_agent *a)
{
	const struct va_agent_config *cfg = va_agent_config(a);
	struct va_clip_view v;
	size_t len;

	if (!cfg->clip_paste_command || !cfg->clip_paste_command[0])
		return;
	char *text = read_desktop(cfg->clip_paste_command, &len);
	if (!text)
		return;
	va_clipboard_view(a, &v);
	if ((len != v.len || memcmp(text, v.text, len) != 0) &&
	    va_clipboard_store(a, text, len, "guest") == 0)
		va_log_warnx("clipboard paste command: text refused (not valid UTF-8 "
			     "that XML-RPC can carry)");
	free(text);
}

static xmlrpc_value *
method_clipboard_get(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	struct va_agent *a = va_group_agent(server_info);
	struct va_clip_view v;

	(void)call_info;
	if (va_params_count(env, params, 0, 0,
	    "va.clipboard.get: expected no parameters") < 0)
		return NULL;
	sync_from_desktop(a);
	va_clipboard_view(a, &v);
	va_log_info("va.clipboard.get (serial %" PRIu64 ", %zu bytes)", v.serial, v.len);
	xmlrpc_value *text = va_text_value(env, v.text, v.len);
	if (env->fault_occurred)
		return NULL;
	xmlrpc_value *serial = va_int_value(env, (int64_t)v.serial);
	if (env->fault_occurred) {
		xmlrpc_DECREF(text);
		return NULL;
	}
	xmlrpc_value *res = xmlrpc_build_value(env, "{s:V,s:V,s:s}",
	    "text", text, "serial", serial, "origin", v.origin);
	xmlrpc_DECREF(text);
	xmlrpc_DECREF(serial);
	return env->fault_occurred ? NULL : res;
}

static xmlrpc_value *
method_clipboard_set(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	static const char usage[] = "va.clipboard.set: expected (string text)";
	struct va_agent *a = va_group_agent(server_info);
	char *text = NULL;
	size_t len = 0, bad;
	xmlrpc_value *res = NULL;

	(void)call_info;
	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &text, &len);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.clipboard.set (%zu bytes)", len);
	if (len > VA_CLIPBOARD_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.clipboard.set: %zu bytes of text exceed the maximum of %u",
		    len, VA_CLIPBOARD_MAX);
		goto out;
	}
	/* What the gate let through is text XML carries; check all the same,
	 * for callers that are not the gate (the control socket has its own). */
	const char *why;
	bad = va_text_check(text, len, &why);
	if (bad != len) {
		va_fault(env, XMLRPC_INVALID_UTF8_ERROR,
		    "va.clipboard.set: the text holds %s at byte %zu", why, bad);
		goto out;
	}
	uint64_t serial = va_clipboard_store(a, text, len, "host");
	if (serial == 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.clipboard.set: out of memory");
		goto out;
	}
	res = va_int_value(env, (int64_t)serial);
	if (env->fault_occurred)
		res = NULL;
out:
	free(text);
	return res;
}

static const struct xmlrpc_method_info3 clipboard_methods[] = {
	{
		.methodName = "va.clipboard.get",
		.methodFunction = method_clipboard_get,
		.signatureString = "S:",
		.help = "va.clipboard.get() -> struct {text: string, serial: "
			"int, origin: string}. The agent's clipboard: the text, "
			"its serial (incremented by every store, 0 if empty) and "
			"who stored it (\"host\", \"guest\", or \"none\" if "
			"empty).",
	},
	{
		.methodName = "va.clipboard.set",
		.methodFunction = method_clipboard_set,
		.signatureString = "i:s",
		.help = "va.clipboard.set(string text) -> int serial. Stores "
			"text in the agent's clipboard (origin \"host\"), where "
			"va-clip paste finds it. Text only: valid UTF-8 up to "
			"U+FFFF, no control characters but tab, LF and CR, at "
			"most 1048576 bytes.",
	},
};

static int
clipboard_init(struct va_agent *a, void **state)
{
	struct va_clipboard *cb = calloc(1, sizeof(*cb));

	(void)a;
	if (!cb)
		return -1;
	*state = cb;
	return 0;
}

static void
clipboard_cleanup(void *state)
{
	struct va_clipboard *cb = state;
	if (cb)
		clear(cb);
	free(cb);
}

const struct va_method_group va_group_clipboard = {
	.name = "clipboard",
	VA_GROUP_METHODS(clipboard_methods),
	.init = clipboard_init,
	.cleanup = clipboard_cleanup,
};
