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
 * When config->clip_paste_command is set, va.clipboard.get asks the
 * desktop first: the group's interceptor hands the call to
 * clipboard-paste.c, which starts the command without waiting for it
 * (its output read on the loop, at most VA_CLIPBOARD_PASTE_MS, every
 * other call served meanwhile) and answers when it ends; when the desktop's
 * text differs from the buffer, it is stored as a guest copy first (so
 * the host is told, as for va-clip copy).  One run at a time; a get that
 * comes while one runs waits for its answer (clipboard-paste.h).  The
 * registry's va.clipboard.get (what introspection describes, and what
 * runs for a call the interceptor does not see: a body whose method name
 * is not in the exact shape the core reads, agent.h) cannot wait: it
 * answers the buffer as it is, without the desktop.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong number or type of parameters; a
 *                               control character in the text
 *   XMLRPC_INVALID_UTF8_ERROR   the text is not valid UTF-8
 *   XMLRPC_LIMIT_EXCEEDED_ERROR the text is over VA_CLIPBOARD_MAX bytes
 *   XMLRPC_INTERNAL_ERROR       out of memory
 *   XMLRPC_LIMIT_EXCEEDED_ERROR va.clipboard.get: VA_CLIPBOARD_PASTE_WAITERS
 *                               calls wait for the paste command already
 * A paste command that fails is no fault: it is logged, and the buffer
 * is answered as it was.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clipboard.h"
#include "clipboard-paste.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"
#include "children.h"
#include "xmlgate.h"

#define CLIP_BRIDGE_CHILDREN 4

struct clip {
	char *text; /* NUL-terminated, len bytes */
	size_t len;
	uint64_t serial;
	const char *origin;
};

struct va_clipboard {
	struct va_agent *a;
	struct clip now;  /* the clipboard */
	struct clip host; /* the last text the host set */
	uint64_t serial;  /* of the last store */
	struct va_clip_paste *paste; /* the paste bridge (clipboard-paste.h) */
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

xmlrpc_value *
va_clipboard_result(xmlrpc_env *env, struct va_agent *a)
{
	struct va_clip_view v;

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

/* The registry's: the buffer as it is (it cannot wait for the desktop, see the top). */
static xmlrpc_value *
method_clipboard_get(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	(void)call_info;
	if (va_params_count(env, params, 0, 0,
	    "va.clipboard.get: expected no parameters") < 0)
		return NULL;
	return va_clipboard_result(env, va_group_agent(server_info));
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

/*
 * The interceptor: va.clipboard.get while a paste command is set, to be
 * answered when the command ended.  A malformed call, or one with
 * parameters, is the registry's (its fault, word for word).
 */
static int
clipboard_intercept(void *state, const struct va_call *call)
{
	struct va_clipboard *cb = state;
	const struct va_agent_config *cfg = va_agent_config(cb->a);
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL;
	int taken = 0;

	if (strcmp(call->method, "va.clipboard.get") != 0 || !cfg->clip_paste_command ||
	    !cfg->clip_paste_command[0])
		return 0;
	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, call->body, call->len, &name, &params);
	if (!env.fault_occurred && xmlrpc_array_size(&env, params) == 0 && !env.fault_occurred) {
		va_clip_paste_take(cb->paste, call, cfg->clip_paste_command);
		taken = 1;
	}
	if (params)
		xmlrpc_DECREF(params);
	free(name);
	xmlrpc_env_clean(&env);
	return taken;
}

static int
clipboard_init(struct va_agent *a, void **state)
{
	struct va_clipboard *cb = calloc(1, sizeof(*cb));

	if (!cb)
		return -1;
	cb->a = a;
	cb->paste = va_clip_paste_new(a);
	if (!cb->paste) {
		free(cb);
		return -1;
	}
	*state = cb;
	return 0;
}

static void
clipboard_cleanup(void *state)
{
	struct va_clipboard *cb = state;
	if (!cb)
		return;
	/* First: a run's callers are dropped, never answered from a half-freed group. */
	va_clip_paste_free(cb->paste);
	clear(cb);
	free(cb);
}

const struct va_method_group va_group_clipboard = {
	.name = "clipboard",
	VA_GROUP_METHODS(clipboard_methods),
	.init = clipboard_init,
	.cleanup = clipboard_cleanup,
	.intercept = clipboard_intercept,
};
