/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * info.c - va.ping, va.echo, va.capabilities, va.info: the group "info"
 * (no state of its own).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR     wrong number or type of parameters
 *   XMLRPC_INTERNAL_ERROR the system would not say (uname failed), or
 *                         out of memory
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

/* os-release files are a few hundred bytes; anything past this is ignored. */
#define OS_RELEASE_MAX 65536

static xmlrpc_value *
method_ping(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
	    void *call_info)
{
	(void)server_info;
	(void)call_info;
	if (va_params_count(env, params, 0, 0, "va.ping: expected no parameters") < 0)
		return NULL;
	va_log_info("va.ping");
	return xmlrpc_bool_new(env, 1);
}

static xmlrpc_value *
method_echo(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
	    void *call_info)
{
	(void)server_info;
	(void)call_info;
	va_log_info("va.echo (%d parameters)", xmlrpc_array_size(env, params));
	xmlrpc_INCREF(params);
	return params;
}

static xmlrpc_value *
method_capabilities(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		    void *call_info)
{
	struct va_agent *a = va_group_agent(server_info);
	const struct va_agent_config *cfg = va_agent_config(a);
	xmlrpc_value *methods = NULL, *res = NULL;

	(void)call_info;
	if (va_params_count(env, params, 0, 0,
	    "va.capabilities: expected no parameters") < 0)
		return NULL;
	va_log_info("va.capabilities");
	methods = va_agent_methods_enabled(env, a);
	if (env->fault_occurred)
		return NULL;
	res = xmlrpc_build_value(env, "{s:s,s:i,s:A}",
	    "version", PACKAGE_VERSION,
	    "protocol", VA_AGENT_PROTOCOL,
	    "methods", methods);
	xmlrpc_DECREF(methods);
	if (env->fault_occurred)
		return NULL;
	xmlrpc_value *mf = va_int_value(env, cfg ? (int64_t)cfg->max_frame : 0);
	if (!env->fault_occurred) {
		xmlrpc_struct_set_value(env, res, "max_frame", mf);
		xmlrpc_DECREF(mf);
	}
	if (env->fault_occurred) {
		xmlrpc_DECREF(res);
		return NULL;
	}
	return res;
}

/*
 * Undoes shell quoting of one os-release value (the text after "KEY="
 * up to the end of the line): "..." (backslash escapes $ ` " \), '...'
 * (literal), or unquoted (backslash escapes the next character).  Returns
 * a malloc'd string or NULL when malformed (unterminated quote).
 */
static char *
unquote(const char *p, const char *end)
{
	char *out = malloc((size_t)(end - p) + 1);
	size_t n = 0;
	char q = 0;

	if (!out)
		return NULL;
	while (p < end) {
		char c = *p++;
		if (q == '\'') {
			if (c == '\'')
				q = 0;
			else
				out[n++] = c;
		} else if (q == '"') {
			if (c == '"')
				q = 0;
			else if (c == '\\' && p < end && strchr("$`\"\\", *p))
				out[n++] = *p++;
			else
				out[n++] = c;
		} else if (c == '"' || c == '\'') {
			q = c;
		} else if (c == '\\' && p < end) {
			out[n++] = *p++;
		} else if (c == '#' && (n == 0 || out[n - 1] == ' ' ||
			   out[n - 1] == '\t')) {
			break; /* a comment after the value */
		} else {
			out[n++] = c;
		}
	}
	if (q) {
		free(out);
		return NULL;
	}
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = '\0';
	return out;
}

char *
va_os_release_value(const char *text, size_t len, const char *key)
{
	const char *p = text, *end = text + len;
	size_t klen = strlen(key);
	char *best = NULL;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *s = p;
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		if ((size_t)(eol - s) > klen && memcmp(s, key, klen) == 0 && s[klen] == '=') {
			/* The last assignment wins, as when the shell sources it. */
			free(best);
			best = unquote(s + klen + 1, eol);
		}
		p = eol < end ? eol + 1 : end;
	}
	return best;
}

char *
va_os_release_pretty_name(const char *text, size_t len)
{
	char *best = va_os_release_value(text, len, "PRETTY_NAME");

	if (best && best[0] == '\0') {
		free(best);
		best = NULL;
	}
	return best;
}

/* PRETTY_NAME from /etc/os-release (or /usr/lib/os-release), or "Linux". */
static char *
os_pretty_name(void)
{
	static const char *const paths[] = { "/etc/os-release", "/usr/lib/os-release" };
	char *name = NULL;

	for (size_t i = 0; i < 2 && !name; i++) {
		size_t len = 0;
		char *text = va_read_file(paths[i], OS_RELEASE_MAX, &len, NULL);
		if (text) {
			name = va_os_release_pretty_name(text, len);
			free(text);
		}
	}
	if (!name)
		name = strdup("Linux");
	return name;
}

static void
set_string(xmlrpc_env *env, xmlrpc_value *st, const char *key, char *s)
{
	if (env->fault_occurred)
		return;
	va_text_sanitize(s, strlen(s));
	xmlrpc_value *v = va_text_value_z(env, s);
	if (env->fault_occurred)
		return;
	xmlrpc_struct_set_value(env, st, key, v);
	xmlrpc_DECREF(v);
}

static void
set_value(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_value *v)
{
	if (env->fault_occurred) {
		if (v)
			xmlrpc_DECREF(v);
		return;
	}
	xmlrpc_struct_set_value(env, st, key, v);
	xmlrpc_DECREF(v);
}

static xmlrpc_value *
method_info(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
	    void *call_info)
{
	struct utsname u;
	struct sysinfo si;
	char version[] = PACKAGE_VERSION;
	int64_t uptime = 0;

	(void)server_info;
	(void)call_info;
	if (va_params_count(env, params, 0, 0, "va.info: expected no parameters") < 0)
		return NULL;
	va_log_info("va.info");
	if (uname(&u) < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.info: uname: %s", strerror(errno));
		return NULL;
	}
	if (sysinfo(&si) == 0)
		uptime = si.uptime;
	char *os = os_pretty_name();
	if (!os) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.info: out of memory");
		return NULL;
	}
	xmlrpc_value *res = xmlrpc_struct_new(env);
	if (env->fault_occurred) {
		free(os);
		return NULL;
	}
	set_string(env, res, "hostname", u.nodename);
	set_string(env, res, "os", os);
	set_string(env, res, "kernel", u.release);
	set_string(env, res, "arch", u.machine);
	set_value(env, res, "uptime", env->fault_occurred ? NULL :
	    va_int_value(env, uptime));
	set_value(env, res, "time", env->fault_occurred ? NULL :
	    xmlrpc_i8_new(env, (xmlrpc_int64)time(NULL)));
	set_string(env, res, "agent_version", version);
	free(os);
	if (env->fault_occurred) {
		xmlrpc_DECREF(res);
		return NULL;
	}
	return res;
}

static const struct xmlrpc_method_info3 info_methods[] = {
	{
		.methodName = "va.ping",
		.methodFunction = method_ping,
		.signatureString = "b:",
		.help = "va.ping() -> true. Answers as soon as the agent serves "
			"calls; use it to check that the agent is alive.",
	},
	{
		.methodName = "va.echo",
		.methodFunction = method_echo,
		.signatureString = "?",
		.help = "va.echo(...) -> array. Returns an array of its "
			"parameters exactly as received (any number, any "
			"XML-RPC types, nested), for testing the channel.",
	},
	{
		.methodName = "va.capabilities",
		.methodFunction = method_capabilities,
		.signatureString = "S:",
		.help = "va.capabilities() -> struct {version: string (agent "
			"version), protocol: int (channel protocol version), "
			"methods: array of string (the methods this agent "
			"serves, after --allow-rpcs/--block-rpcs), max_frame: "
			"int (largest frame in bytes)}.",
	},
	{
		.methodName = "va.info",
		.methodFunction = method_info,
		.signatureString = "S:",
		.help = "va.info() -> struct {hostname: string, os: string "
			"(PRETTY_NAME of /etc/os-release, \"Linux\" when "
			"absent), kernel: string (uname release), arch: string "
			"(uname machine), uptime: int (seconds since boot), "
			"time: i8 (guest clock, unix seconds), agent_version: "
			"string}.",
	},
};

const struct va_method_group va_group_info = {
	.name = "info",
	VA_GROUP_METHODS(info_methods),
};
