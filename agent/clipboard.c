/*
 * clipboard.c - the agent's clipboard buffer, va.clipboard.get and
 * va.clipboard.set.
 *
 * The buffer holds text only: valid UTF-8 without NUL or control
 * characters other than tab, LF and CR, and without characters above
 * U+FFFF, which xmlrpc-c 1.33 cannot carry (see va_utf8_check), at most
 * VA_CLIPBOARD_MAX bytes: whatever is stored can always be sent.  Every store gets the next serial (1, 2,
 * ...); serial 0 with origin "none" means nothing was stored yet.
 *
 * A store from the guest (origin "guest", va-clip copy) is sent to the
 * host with host.clipboard.set(text).  A store from the host
 * (va.clipboard.set) is also kept apart as "the last text the host set"
 * for va-clip paste, and, when config->clip_copy_command is set, that
 * command is started with the text on stdin (not waited for; at most
 * CLIP_BRIDGE_CHILDREN at once, more are skipped with a warning).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong number or type of parameters; a
 *                               control character in the text
 *   XMLRPC_INVALID_UTF8_ERROR   the text is not valid UTF-8
 *   XMLRPC_LIMIT_EXCEEDED_ERROR the text is over VA_CLIPBOARD_MAX bytes
 *   XMLRPC_INTERNAL_ERROR       out of memory
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "methods.h"

#define CLIP_BRIDGE_CHILDREN 4

struct clip {
	char *text; /* NUL-terminated, len bytes */
	size_t len;
	uint64_t serial;
	const char *origin;
};

static struct clip clip_now;  /* the clipboard */
static struct clip clip_host; /* the last text the host set */
static uint64_t clip_serial;

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
	int from_host;
	char *copy, *host_copy = NULL;

	if (strcmp(origin, "host") == 0)
		from_host = 1;
	else if (strcmp(origin, "guest") == 0)
		from_host = 0;
	else
		return 0;
	if (len > VA_CLIPBOARD_MAX || va_utf8_check(text, len, 1) != len)
		return 0;
	copy = dup_text(text, len);
	if (from_host && copy)
		host_copy = dup_text(text, len);
	if (!copy || (from_host && !host_copy)) {
		free(copy);
		free(host_copy);
		return 0;
	}
	uint64_t serial = ++clip_serial;
	clip_set(&clip_now, copy, len, serial, from_host ? "host" : "guest");

	if (from_host) {
		clip_set(&clip_host, host_copy, len, serial, "host");
		const struct va_agent_config *cfg = va_agent_config(a);
		if (cfg && cfg->clip_copy_command && cfg->clip_copy_command[0]) {
			pid_t pid = va_methods_spawn(cfg->clip_copy_command, NULL,
			    text, len, CLIP_BRIDGE_CHILDREN);
			if (pid < 0)
				va_log_warnx("clipboard copy command not started: %s",
				    strerror((int)-pid));
		}
	} else {
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		xmlrpc_value *params = xmlrpc_array_new(&env);
		xmlrpc_value *t = env.fault_occurred ? NULL :
		    xmlrpc_string_new_lp(&env, len, text);
		if (!env.fault_occurred)
			xmlrpc_array_append_item(&env, params, t);
		if (!env.fault_occurred)
			va_agent_call_host(a, "host.clipboard.set", params);
		else
			va_log_errx("host.clipboard.set not sent: %s", env.fault_string);
		if (t)
			xmlrpc_DECREF(t);
		if (params)
			xmlrpc_DECREF(params);
		xmlrpc_env_clean(&env);
	}
	return serial;
}

static void
view_of(const struct clip *c, struct va_clip_view *v)
{
	v->text = c->text ? c->text : "";
	v->len = c->text ? c->len : 0;
	v->serial = c->text ? c->serial : 0;
	v->origin = c->text ? c->origin : "none";
}

void
va_clipboard_view(struct va_clip_view *v)
{
	view_of(&clip_now, v);
}

void
va_clipboard_view_host(struct va_clip_view *v)
{
	view_of(&clip_host, v);
}

void
va_clipboard_free(void)
{
	clip_set(&clip_now, NULL, 0, 0, NULL);
	clip_set(&clip_host, NULL, 0, 0, NULL);
}

static xmlrpc_value *
method_clipboard_get(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	struct va_clip_view v;

	(void)server_info;
	(void)call_info;
	if (va_params_count(env, params, 0, 0,
	    "va.clipboard.get: expected no parameters") < 0)
		return NULL;
	va_clipboard_view(&v);
	va_log_info("va.clipboard.get (serial %" PRIu64 ", %zu bytes)", v.serial, v.len);
	xmlrpc_value *text = xmlrpc_string_new_lp(env, v.len, v.text);
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
	struct va_agent *a = server_info;
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
		xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.clipboard.set: %zu bytes of text exceed the maximum of %u",
		    len, VA_CLIPBOARD_MAX);
		goto out;
	}
	bad = va_utf8_check(text, len, 1);
	if (bad != len) {
		unsigned char c = (unsigned char)text[bad];
		if (c < 0x20)
			xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
			    "va.clipboard.set: text holds control character 0x%02x "
			    "at byte %zu", c, bad);
		else if (va_utf8_check(text + bad, len - bad, 0) >= 4)
			xmlrpc_env_set_fault_formatted(env, XMLRPC_INVALID_UTF8_ERROR,
			    "va.clipboard.set: text holds a character above U+FFFF "
			    "(byte %zu), which XML-RPC here cannot carry", bad);
		else
			xmlrpc_env_set_fault_formatted(env, XMLRPC_INVALID_UTF8_ERROR,
			    "va.clipboard.set: text is not valid UTF-8 (byte %zu)", bad);
		goto out;
	}
	uint64_t serial = va_clipboard_store(a, text, len, "host");
	if (serial == 0) {
		xmlrpc_faultf(env, "va.clipboard.set: out of memory");
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

void
va_methods_clipboard_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a)
{
	va_methods_add(env, r, a, clipboard_methods,
	    sizeof(clipboard_methods) / sizeof(clipboard_methods[0]));
}
