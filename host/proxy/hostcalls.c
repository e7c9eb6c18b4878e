/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hostcalls.c - the host.* methods the guests call (see hostcalls.h).  The
 * guest a call comes from, and through it the proxy, is the callInfo.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"
#include "hostcalls.h"
#include "log.h"
#include "rpc.h"
#include "text.h"

/* Longest host.event name. */
#define EVENT_NAME_MAX 128

/*
 * Parameter i of params, which must have type t (or t2); faults with the
 * method's usage line otherwise.  The caller owns the returned reference.
 */
static xmlrpc_value *
param(xmlrpc_env *env, xmlrpc_value *params, int i, xmlrpc_type t, xmlrpc_type t2,
      const char *usage)
{
	xmlrpc_value *v = NULL;

	if (xmlrpc_array_size(env, params) <= i) {
		if (!env->fault_occurred)
			va_fault(env, XMLRPC_INDEX_ERROR,
						       "expected %s", usage);
		return NULL;
	}
	xmlrpc_array_read_item(env, params, i, &v);
	if (env->fault_occurred)
		return NULL;
	if (xmlrpc_value_type(v) != t && xmlrpc_value_type(v) != t2) {
		xmlrpc_DECREF(v);
		va_fault(env, XMLRPC_TYPE_ERROR, "expected %s", usage);
		return NULL;
	}
	return v;
}

static struct va_guest *
guest_of(void *call_info)
{
	return ((struct va_host_call *)call_info)->guest;
}

static xmlrpc_value *
method_ping(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	(void)params;
	(void)server_info;
	(void)call_info;
	return xmlrpc_bool_new(env, 1);
}

static xmlrpc_value *
method_hello(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] =
		"host.hello(struct {version, protocol, methods, max_frame})";
	struct va_guest *g = guest_of(call_info);

	(void)server_info;
	xmlrpc_value *info = param(env, params, 0, XMLRPC_TYPE_STRUCT, XMLRPC_TYPE_STRUCT, usage);
	if (!info)
		return NULL;
	va_guest_set_info(env, g, info, "host.hello");
	if (!env->fault_occurred) {
		/* The event holds the four known members (checked and capped
		 * by va_guest_set_info), not whatever else the guest sent. */
		xmlrpc_value *v[4] = { NULL, NULL, NULL, NULL };
		static const char *const keys[4] = { "version", "protocol", "methods",
						      "max_frame" };
		for (int i = 0; i < 4 && !env->fault_occurred; i++)
			xmlrpc_struct_find_value(env, info, keys[i], &v[i]);
		xmlrpc_value *clean = env->fault_occurred ? NULL
			: xmlrpc_build_value(env, "{s:V,s:V,s:V,s:V}", keys[0], v[0], keys[1],
					     v[1], keys[2], v[2], keys[3], v[3]);
		if (clean) {
			va_guest_post_event(g, "hello", clean, ((struct va_host_call *)call_info)->body_len);
			xmlrpc_DECREF(clean);
		}
		for (int i = 0; i < 4; i++)
			if (v[i])
				xmlrpc_DECREF(v[i]);
	}
	if (env->fault_occurred)
		va_log_warnx("%s: bad host.hello: %s", va_guest_name(g), env->fault_string);
	xmlrpc_DECREF(info);
	return env->fault_occurred ? NULL : xmlrpc_bool_new(env, 1);
}

static xmlrpc_value *
method_clipboard_set(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	struct va_guest *g = guest_of(call_info);
	char *text = NULL;
	size_t len = 0;
	xmlrpc_value *result = NULL;

	(void)server_info;
	xmlrpc_value *v = param(env, params, 0, XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING,
				"host.clipboard.set(string text)");
	if (!v)
		return NULL;
	/* The raw text (common/text.h): its length is the agent's measure too. */
	va_text_read(env, v, &text, &len);
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return NULL;
	if (len > VA_GUEST_CLIPBOARD_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "host.clipboard.set: text of %zu bytes is over the "
					       "limit of %u bytes", len, VA_GUEST_CLIPBOARD_MAX);
		goto out;
	}
	uint64_t serial = va_guest_set_clipboard(g, text, len);
	if (!serial) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "host.clipboard.set: out of memory");
		goto out;
	}
	va_log_info("%s: guest copied %zu bytes to the clipboard (serial %" PRIu64 ")",
		    va_guest_name(g), len, serial);
	int iserial = serial > INT32_MAX ? INT32_MAX : (int)serial;
	xmlrpc_value *tv = len <= VA_EVENT_CLIP_TEXT_MAX ? va_text_value(env, text, len) : NULL;
	xmlrpc_value *data = env->fault_occurred ? NULL : tv
		? xmlrpc_build_value(env, "{s:i,s:i,s:V}", "serial", iserial, "length",
				     (int)len, "text", tv)
		: xmlrpc_build_value(env, "{s:i,s:i}", "serial", iserial, "length", (int)len);
	if (tv)
		xmlrpc_DECREF(tv);
	if (!env->fault_occurred) {
		va_guest_post_event(g, "clipboard", data, ((struct va_host_call *)call_info)->body_len);
		xmlrpc_DECREF(data);
		result = xmlrpc_int_new(env, iserial);
	}
out:
	free(text);
	return result;
}

static xmlrpc_value *
method_shutdown_notice(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		       void *call_info)
{
	static const char usage[] = "host.shutdown_notice(string mode, string reason)";
	struct va_guest *g = guest_of(call_info);
	const char *mode = NULL, *reason = NULL;
	xmlrpc_value *data = NULL, *result = NULL;
	char delay_reason[48] = "";

	(void)server_info;
	xmlrpc_value *m = param(env, params, 0, XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING, usage);
	if (!m)
		return NULL;
	xmlrpc_read_string(env, m, &mode);
	xmlrpc_DECREF(m);
	if (env->fault_occurred)
		return NULL;
	if (strlen(mode) > VA_HOST_MODE_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "host.shutdown_notice: mode longer than %u bytes",
					       VA_HOST_MODE_MAX);
		goto out;
	}

	/* The reason; older agents send (mode, delay_s) instead. */
	int64_t delay = -1;
	if (xmlrpc_array_size(env, params) >= 2) {
		xmlrpc_value *r = NULL;
		xmlrpc_array_read_item(env, params, 1, &r);
		if (env->fault_occurred)
			goto out;
		xmlrpc_type t = xmlrpc_value_type(r);
		if (t == XMLRPC_TYPE_STRING) {
			xmlrpc_read_string(env, r, &reason);
		} else if (t == XMLRPC_TYPE_INT) {
			int d = 0;
			xmlrpc_read_int(env, r, &d);
			delay = d;
		} else if (t == XMLRPC_TYPE_I8) {
			xmlrpc_int64 d = 0;
			xmlrpc_read_i8(env, r, &d);
			delay = d;
		} else {
			va_fault(env, XMLRPC_TYPE_ERROR, "expected %s", usage);
		}
		xmlrpc_DECREF(r);
		if (env->fault_occurred)
			goto out;
	}
	if (reason && strlen(reason) > VA_HOST_REASON_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "host.shutdown_notice: reason longer than %u bytes",
					       VA_HOST_REASON_MAX);
		goto out;
	}
	if (delay >= 0)
		snprintf(delay_reason, sizeof(delay_reason), "in %" PRId64 " s", delay);
	const char *why = reason ? reason : delay_reason;

	va_log_info("%s: shutdown notice: %s%s%s", va_guest_name(g), mode, *why ? ", " : "", why);
	va_guest_note_shutdown(g, mode, why);
	if (delay >= 0)
		data = xmlrpc_build_value(env, "{s:s,s:s,s:i}", "mode", mode, "reason", why,
					  "delay", delay > INT32_MAX ? INT32_MAX : (int)delay);
	else
		data = xmlrpc_build_value(env, "{s:s,s:s}", "mode", mode, "reason", why);
	if (!env->fault_occurred) {
		va_guest_post_event(g, "shutdown", data, ((struct va_host_call *)call_info)->body_len);
		xmlrpc_DECREF(data);
		result = xmlrpc_bool_new(env, 1);
	}
out:
	free((void *)mode);
	if (reason)
		free((void *)reason);
	return result;
}

static xmlrpc_value *
method_event(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] = "host.event(string name, struct data)";
	struct va_host_call *hc = call_info;
	struct va_guest *g = hc->guest;
	const char *name = NULL;
	xmlrpc_value *data = NULL, *ev = NULL, *result = NULL;

	(void)server_info;
	if (hc->body_len > VA_HOST_EVENT_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "host.event: call of %zu bytes is over the limit of "
					       "%u bytes", hc->body_len, VA_HOST_EVENT_MAX);
		return NULL;
	}
	xmlrpc_value *n = param(env, params, 0, XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING, usage);
	if (!n)
		return NULL;
	xmlrpc_read_string(env, n, &name);
	xmlrpc_DECREF(n);
	if (env->fault_occurred)
		return NULL;
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > EVENT_NAME_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "host.event: the name must have 1 to %d bytes",
					       EVENT_NAME_MAX);
		goto out;
	}
	data = param(env, params, 1, XMLRPC_TYPE_STRUCT, XMLRPC_TYPE_STRUCT, usage);
	if (!data)
		goto out;
	ev = xmlrpc_build_value(env, "{s:s,s:V}", "name", name, "data", data);
	if (env->fault_occurred)
		goto out;
	va_log_info("%s: event %s", va_guest_name(g), name);
	va_guest_post_event(g, "event", ev, hc->body_len);
	result = xmlrpc_bool_new(env, 1);
out:
	if (ev)
		xmlrpc_DECREF(ev);
	if (data)
		xmlrpc_DECREF(data);
	free((void *)name);
	return result;
}

static const struct xmlrpc_method_info3 methods[] = {
	{ .methodName = "host.ping", .methodFunction = method_ping,
	  .signatureString = "b:",
	  .help = "Returns true: the host proxy is there." },
	{ .methodName = "host.hello", .methodFunction = method_hello,
	  .signatureString = "b:S",
	  .help = "The agent says who it is after each handshake: struct {version (string), "
		  "protocol (int), methods (array of strings), max_frame (int)}." },
	{ .methodName = "host.clipboard.set", .methodFunction = method_clipboard_set,
	  .signatureString = "i:s",
	  .help = "The guest copied text (at most 1 MiB of UTF-8): host scripts read it with "
		  "proxy.clipboard.get.  Returns the proxy's clipboard serial." },
	{ .methodName = "host.shutdown_notice", .methodFunction = method_shutdown_notice,
	  .signatureString = "b:ss",
	  .help = "The guest is about to shut down, reboot or stop its agent: mode and reason." },
	{ .methodName = "host.event", .methodFunction = method_event,
	  .signatureString = "b:sS",
	  .help = "A custom event from the guest: a name and a struct of data (at most "
		  "64 KiB), passed on to host scripts through proxy.events." },
};

xmlrpc_registry *
va_hostcalls_registry(xmlrpc_env *env)
{
	return va_rpc_registry_new(env, methods, sizeof(methods) / sizeof(methods[0]));
}
