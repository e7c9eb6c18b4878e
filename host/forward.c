#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "faults.h"
#include "forward.h"
#include "guest.h"
#include "log.h"
#include "proxycalls.h"
#include "rpc.h"

static xmlrpc_registry *registry;
static pthread_rwlock_t block_lock = PTHREAD_RWLOCK_INITIALIZER;
static char *block_list;

void
va_forward_init(xmlrpc_registry *proxy_registry)
{
	registry = proxy_registry;
}

int
va_forward_set_block_list(const char *list)
{
	char *copy = NULL;

	if (list && *list && !(copy = strdup(list)))
		return -ENOMEM;
	pthread_rwlock_wrlock(&block_lock);
	free(block_list);
	block_list = copy;
	pthread_rwlock_unlock(&block_lock);
	return 0;
}

void
va_forward_cleanup(void)
{
	va_forward_set_block_list(NULL);
}

static int
entry_matches(const char *entry, size_t n, const char *method)
{
	/* "va.file.*" blocks "va.file.read" (and everything else under va.file.). */
	if (n >= 2 && entry[n - 2] == '.' && entry[n - 1] == '*')
		return strncmp(method, entry, n - 1) == 0;
	return strlen(method) == n && strncmp(method, entry, n) == 0;
}

int
va_forward_blocked(const char *method)
{
	int hit = 0;

	pthread_rwlock_rdlock(&block_lock);
	for (const char *p = block_list; p && *p && !hit;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ", \t");
		if (n)
			hit = entry_matches(p, n, method);
		p += n;
	}
	pthread_rwlock_unlock(&block_lock);
	return hit;
}

/* ---- replies ---- */

static void
reply_text(struct va_reply *out, int status, const char *msg)
{
	size_t n = strlen(msg);

	out->status = status;
	out->content_type = "text/plain; charset=utf-8";
	out->body = malloc(n + 2);
	if (!out->body) {
		out->len = 0;
		return;
	}
	memcpy(out->body, msg, n);
	out->body[n] = '\n';
	out->body[n + 1] = '\0';
	out->len = n + 1;
}

static void
reply_xml(struct va_reply *out, struct va_buf *b)
{
	out->status = 200;
	out->content_type = "text/xml";
	out->body = va_buf_steal(b, &out->len);
	if (!out->body)
		reply_text(out, 500, "out of memory");
}

static void
reply_fault(struct va_reply *out, int code, const char *msg)
{
	struct va_buf b = { 0 };

	if (va_rpc_serialize_fault(&b, code, msg) < 0) {
		va_buf_free(&b);
		reply_text(out, 500, "out of memory");
		return;
	}
	reply_xml(out, &b);
}

static void
reply_value(struct va_reply *out, xmlrpc_env *env, xmlrpc_value *v)
{
	struct va_buf b = { 0 };

	if (!env->fault_occurred)
		va_rpc_serialize_response(env, &b, v);
	if (env->fault_occurred) {
		va_buf_free(&b);
		reply_fault(out, env->fault_code, env->fault_string);
		return;
	}
	reply_xml(out, &b);
}

/* ---- local methods ---- */

static int
in_array(xmlrpc_env *env, xmlrpc_value *arr, const char *name)
{
	int n = xmlrpc_array_size(env, arr);
	for (int i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *item = NULL;
		const char *s = NULL;
		xmlrpc_array_read_item(env, arr, i, &item);
		if (!env->fault_occurred)
			xmlrpc_read_string(env, item, &s);
		int same = s && !strcmp(s, name);
		if (s)
			free((void *)s);
		if (item)
			xmlrpc_DECREF(item);
		if (same)
			return 1;
	}
	return 0;
}

static void
add_name(xmlrpc_env *env, xmlrpc_value *arr, const char *name)
{
	/* system.multicall is refused (see va_forward_handle): do not offer it. */
	if (env->fault_occurred || va_forward_blocked(name) || !strcmp(name, "system.multicall") ||
	    in_array(env, arr, name))
		return;
	xmlrpc_value *s = xmlrpc_string_new(env, name);
	if (!env->fault_occurred) {
		xmlrpc_array_append_item(env, arr, s);
		xmlrpc_DECREF(s);
	}
}

/* system.listMethods: the proxy's methods, then the guest's. */
static void
list_methods(struct va_guest *g, struct va_reply *out)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *arr = xmlrpc_array_new(&env);
	for (size_t i = 0; va_proxycalls_names[i]; i++)
		add_name(&env, arr, va_proxycalls_names[i]);
	xmlrpc_value *gm = env.fault_occurred ? NULL : va_guest_methods(&env, g);
	int n = gm ? xmlrpc_array_size(&env, gm) : 0;
	for (int i = 0; i < n && !env.fault_occurred; i++) {
		xmlrpc_value *item = NULL;
		const char *s = NULL;
		xmlrpc_array_read_item(&env, gm, i, &item);
		if (!env.fault_occurred)
			xmlrpc_read_string(&env, item, &s);
		if (!env.fault_occurred)
			add_name(&env, arr, s);
		if (s)
			free((void *)s);
		if (item)
			xmlrpc_DECREF(item);
	}
	reply_value(out, &env, arr);
	if (gm)
		xmlrpc_DECREF(gm);
	if (arr)
		xmlrpc_DECREF(arr);
	xmlrpc_env_clean(&env);
}

/* system.methodHelp/Signature: about a proxy method (1) or a guest's (0)? */
static int
asks_about_proxy(const uint8_t *body, size_t len)
{
	xmlrpc_env env;
	const char *name = NULL, *about = NULL;
	xmlrpc_value *params = NULL, *p0 = NULL;
	int local = 1; /* malformed calls get the registry's own fault */

	xmlrpc_env_init(&env);
	xmlrpc_parse_call(&env, (const char *)body, len, &name, &params);
	if (!env.fault_occurred && xmlrpc_array_size(&env, params) == 1) {
		xmlrpc_array_read_item(&env, params, 0, &p0);
		if (!env.fault_occurred && xmlrpc_value_type(p0) == XMLRPC_TYPE_STRING)
			xmlrpc_read_string(&env, p0, &about);
		if (about)
			local = !strncmp(about, "proxy.", 6);
	}
	if (about)
		free((void *)about);
	if (p0)
		xmlrpc_DECREF(p0);
	if (params)
		xmlrpc_DECREF(params);
	if (name)
		free((void *)name);
	xmlrpc_env_clean(&env);
	return local;
}

static void
run_local(struct va_guest *g, const uint8_t *body, size_t len, struct va_reply *out)
{
	struct va_proxy_call info = { g };
	xmlrpc_mem_block *mb = NULL;
	xmlrpc_env env;
	struct va_buf b = { 0 };

	xmlrpc_env_init(&env);
	xmlrpc_registry_process_call2(&env, registry, (const char *)body, len, &info, &mb);
	if (env.fault_occurred) {
		reply_fault(out, env.fault_code, env.fault_string);
	} else {
		if (va_buf_append(&b, XMLRPC_MEMBLOCK_CONTENTS(char, mb),
				  XMLRPC_MEMBLOCK_SIZE(char, mb)) < 0) {
			va_buf_free(&b);
			reply_text(out, 500, "out of memory");
		} else {
			reply_xml(out, &b);
		}
		XMLRPC_MEMBLOCK_FREE(char, mb);
	}
	xmlrpc_env_clean(&env);
}

/* ---- the entry point ---- */

void
va_forward_handle(struct va_guest *g, const uint8_t *body, size_t len, struct va_reply *out)
{
	char name[VA_RPC_MAX_METHOD_NAME + 1];
	char msg[VA_RPC_MAX_METHOD_NAME + 128];

	memset(out, 0, sizeof(*out));
	if (memchr(body, 0xFF, len)) {
		reply_text(out, 400, "the body contains the byte 0xFF: an XML-RPC body is UTF-8 text");
		return;
	}
	const char *why;
	if (va_rpc_check_prolog(body, len, &why) < 0) {
		va_log_warnx("%s: call refused: %s", va_guest_name(g), why);
		reply_fault(out, XMLRPC_PARSE_ERROR, why);
		return;
	}
	if (va_rpc_method_name(body, len, name) < 0) {
		reply_text(out, 400, "the body is not an XML-RPC methodCall with a valid methodName");
		return;
	}
	if (va_forward_blocked(name)) {
		snprintf(msg, sizeof(msg), "method %s is blocked by the proxy (--block-rpcs)", name);
		va_log_info("%s: %s refused: blocked", va_guest_name(g), name);
		reply_fault(out, VA_PROXY_FAULT_BLOCKED, msg);
		return;
	}
	if (!strcmp(name, "system.multicall")) {
		reply_fault(out, VA_PROXY_FAULT_BLOCKED,
			    "system.multicall is not available through the proxy: make the calls "
			    "one by one");
		return;
	}
	if (!strcmp(name, "system.listMethods")) {
		list_methods(g, out);
		return;
	}
	int local = !strncmp(name, "proxy.", 6);
	if (!strcmp(name, "system.methodHelp") || !strcmp(name, "system.methodSignature"))
		local = asks_about_proxy(body, len);
	if (local) {
		va_log_debug("%s: %s (proxy)", va_guest_name(g), name);
		run_local(g, body, len, out);
		return;
	}

	struct va_call_result res;
	va_guest_call(g, name, body, len, &res);
	if (res.fault) {
		reply_fault(out, res.fault, res.msg);
		return;
	}
	out->status = 200;
	out->content_type = "text/xml";
	out->body = res.body;
	out->len = res.len;
}
