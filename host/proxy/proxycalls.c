/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxycalls.c - the proxy.* methods host scripts call (see
 * proxycalls.h), on the worker threads of forward.c.  The proxy and the
 * guest they are about come in the callInfo.
 */
#include "config.h"

#include <stdint.h>

#include "events.h"
#include "guest.h"
#include "proxy.h"
#include "proxycalls.h"
#include "rpc.h"

const char *const va_proxycalls_names[] = {
	"proxy.status", "proxy.clipboard.get", "proxy.events", "proxy.guests",
	"system.listMethods", "system.methodHelp", "system.methodSignature",
	NULL,
};

static struct va_guest *
guest_of(void *call_info)
{
	return ((struct va_proxy_call *)call_info)->guest;
}

/* Faults unless params has between min and max items. */
static int
count_ok(xmlrpc_env *env, xmlrpc_value *params, int min, int max, const char *usage)
{
	int n = xmlrpc_array_size(env, params);
	if (env->fault_occurred)
		return 0;
	if (n < min || n > max) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_INDEX_ERROR, "expected %s", usage);
		return 0;
	}
	return 1;
}

static xmlrpc_value *
method_status(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	(void)server_info;
	if (!count_ok(env, params, 0, 0, "proxy.status()"))
		return NULL;
	return va_guest_status(env, guest_of(call_info));
}

static xmlrpc_value *
method_clipboard_get(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		     void *call_info)
{
	(void)server_info;
	if (!count_ok(env, params, 0, 0, "proxy.clipboard.get()"))
		return NULL;
	return va_guest_clipboard(env, guest_of(call_info));
}

static xmlrpc_value *
method_events(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] = "proxy.events(int since_id[, int or double timeout_s])";
	xmlrpc_value *v = NULL;
	int64_t since = 0;
	double timeout_s = 0;

	const struct va_proxy_call *info = call_info;

	(void)server_info;
	if (!count_ok(env, params, 1, 2, usage))
		return NULL;
	xmlrpc_array_read_item(env, params, 0, &v);
	if (env->fault_occurred)
		return NULL;
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		int x;
		xmlrpc_read_int(env, v, &x);
		since = x;
	} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 x;
		xmlrpc_read_i8(env, v, &x);
		since = x;
	} else {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR, "expected %s", usage);
	}
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return NULL;
	if (since < -1) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "proxy.events: since_id must be -1 or more");
		return NULL;
	}

	if (xmlrpc_array_size(env, params) == 2) {
		xmlrpc_array_read_item(env, params, 1, &v);
		if (env->fault_occurred)
			return NULL;
		if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
			int x;
			xmlrpc_read_int(env, v, &x);
			timeout_s = x;
		} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_I8) {
			xmlrpc_int64 x;
			xmlrpc_read_i8(env, v, &x);
			timeout_s = (double)x;
		} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_DOUBLE) {
			xmlrpc_read_double(env, v, &timeout_s);
		} else {
			xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR, "expected %s", usage);
		}
		xmlrpc_DECREF(v);
		if (env->fault_occurred)
			return NULL;
		if (!(timeout_s >= 0)) {
			xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
						       "proxy.events: timeout_s must be 0 or more");
			return NULL;
		}
	}
	if (timeout_s > VA_EVENTS_MAX_WAIT_S)
		timeout_s = VA_EVENTS_MAX_WAIT_S;
	return va_events_get(info->proxy->events, env, since, (unsigned)(timeout_s * 1000.0),
			     info->cancel);
}

static xmlrpc_value *
method_guests(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	const struct va_proxy_call *info = call_info;
	size_t n;

	(void)server_info;
	if (!count_ok(env, params, 0, 0, "proxy.guests()"))
		return NULL;
	struct va_guest **list = va_guests_list(info->proxy, &n);
	xmlrpc_value *arr = xmlrpc_array_new(env);
	for (size_t i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *st = va_guest_status(env, list[i]);
		xmlrpc_value *item = NULL, *name = NULL, *ch = NULL, *con = NULL, *ans = NULL;
		if (!env->fault_occurred)
			xmlrpc_struct_find_value(env, st, "guest", &name);
		if (!env->fault_occurred)
			xmlrpc_struct_find_value(env, st, "channel", &ch);
		if (!env->fault_occurred)
			xmlrpc_struct_find_value(env, st, "connected", &con);
		if (!env->fault_occurred)
			xmlrpc_struct_find_value(env, st, "answered", &ans);
		if (!env->fault_occurred)
			item = xmlrpc_build_value(env, "{s:V,s:V,s:V,s:V}", "guest", name,
						  "channel", ch, "connected", con, "answered", ans);
		if (!env->fault_occurred)
			xmlrpc_array_append_item(env, arr, item);
		xmlrpc_value *all[] = { item, name, ch, con, ans, st };
		for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
			if (all[k])
				xmlrpc_DECREF(all[k]);
	}
	va_guests_list_free(list, n);
	if (env->fault_occurred) {
		if (arr)
			xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

static const struct xmlrpc_method_info3 methods[] = {
	{ .methodName = "proxy.status", .methodFunction = method_status,
	  .signatureString = "S:",
	  .help = "The link to the guest this URL routes to: guest, channel, connected, "
		  "established, answered, session, agent_version, protocol, methods, "
		  "agent_max_frame, last_seen, resets, calls_forwarded, calls_failed, "
		  "calls_in_flight, stale_responses, unmatched_responses, hellos, "
		  "shutdown_notice {mode, reason, time}." },
	{ .methodName = "proxy.clipboard.get", .methodFunction = method_clipboard_get,
	  .signatureString = "S:",
	  .help = "What the guest copied last (va-clip copy): struct {text, serial, time}; "
		  "serial 0 when the guest copied nothing yet." },
	{ .methodName = "proxy.events", .methodFunction = method_events,
	  .signatureString = "A:i,A:ii,A:id",
	  .help = "Events after since_id (-1: only new ones), waiting up to timeout_s "
		  "(at most 300) when there is none: array of {id, time, guest, type, data}; "
		  "type is hello, shutdown, clipboard, event, connected or disconnected.  "
		  "Fault 1007 when events after since_id fell off the bounded queue." },
	{ .methodName = "proxy.guests", .methodFunction = method_guests,
	  .signatureString = "A:",
	  .help = "Every guest of this proxy: array of {guest, channel, connected, answered}." },
};

xmlrpc_registry *
va_proxycalls_registry(xmlrpc_env *env)
{
	return va_rpc_registry_new(env, methods, sizeof(methods) / sizeof(methods[0]));
}
