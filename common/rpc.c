/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "rpc.h"

/* Room for the envelope around the largest body a frame may carry. */
#define RPC_XML_SLACK (64 * 1024)

void
va_rpc_init(size_t max_frame)
{
	size_t limit = max_frame + RPC_XML_SLACK;
	if (limit < XMLRPC_XML_SIZE_LIMIT_DEFAULT)
		limit = XMLRPC_XML_SIZE_LIMIT_DEFAULT;
	xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, limit);
}

static const char *
find(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);
	while ((size_t)(end - p) >= n) {
		const char *hit = memchr(p, needle[0], (size_t)(end - p) - n + 1);
		if (!hit)
			return NULL;
		if (memcmp(hit, needle, n) == 0)
			return hit;
		p = hit + 1;
	}
	return NULL;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
	       c == '/' || c == '-';
}

/*
 * Skips the prolog: white space, the XML declaration, processing
 * instructions and comments.  Returns where the next markup starts ("<"
 * of the root element, or of a "<!" declaration), or NULL when the body
 * ends first or is not markup.
 */
static const char *
skip_prolog(const char *p, const char *end)
{
	for (;;) {
		while (p < end && is_space(*p))
			p++;
		if (end - p < 2 || *p != '<')
			return NULL;
		if (p[1] == '?') { /* XML declaration or processing instruction */
			const char *e = find(p + 2, end, "?>");
			if (!e)
				return NULL;
			p = e + 2;
		} else if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			const char *e = find(p + 4, end, "-->");
			if (!e)
				return NULL;
			p = e + 3;
		} else {
			return p;
		}
	}
}

static int
literal(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return -1;
	*p += n;
	return 0;
}

int
va_rpc_method_name(const void *body, size_t len, char *name)
{
	const char *p = body, *end = p + len;

	/*
	 * The shape every XML-RPC client sends, and nothing looser: the
	 * root <methodCall>, then (after white space only) <methodName>.
	 * A name found anywhere else (say inside a comment, which xmlrpc-c
	 * skips) would let a call pass the proxy's block list under a
	 * name that is not the one xmlrpc-c runs.
	 */
	p = skip_prolog(p, end);
	if (!p || literal(&p, end, "<methodCall>") < 0)
		return -1;
	while (p < end && is_space(*p))
		p++;
	if (literal(&p, end, "<methodName>") < 0)
		return -1;
	while (p < end && is_space(*p))
		p++;
	const char *s = p;
	while (p < end && is_name_char(*p) && p - s <= VA_RPC_MAX_METHOD_NAME)
		p++;
	size_t n = (size_t)(p - s);
	while (p < end && is_space(*p))
		p++;
	if (n == 0 || n > VA_RPC_MAX_METHOD_NAME || literal(&p, end, "</methodName>") < 0)
		return -1;
	memcpy(name, s, n);
	name[n] = '\0';
	return 0;
}

int
va_rpc_check_prolog(const void *body, size_t len, const char **why)
{
	const char *end = (const char *)body + len;

	/* XML never holds U+0000: a NUL byte means UTF-16 or UTF-32, where
	 * the markup below would go unseen (and "<!DOCTYPE" with it). */
	if (memchr(body, '\0', len)) {
		*why = "the body is not UTF-8 XML (it holds a NUL byte)";
		return -1;
	}
	const char *p = skip_prolog(body, end);
	if (p && p[1] == '!') {
		*why = "XML with a document type declaration (DOCTYPE or ENTITY) is refused";
		return -1;
	}
	return 0; /* the root element, or not XML at all: xmlrpc-c says so */
}

xmlrpc_registry *
va_rpc_registry_new(xmlrpc_env *env, const struct xmlrpc_method_info3 *methods, size_t n)
{
	xmlrpc_registry *r = xmlrpc_registry_new(env);
	if (env->fault_occurred)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		xmlrpc_registry_add_method3(env, r, &methods[i]);
		if (env->fault_occurred) {
			xmlrpc_registry_free(r);
			return NULL;
		}
	}
	return r;
}

static void
append_block(xmlrpc_env *env, struct va_buf *out, xmlrpc_mem_block *mb)
{
	if (va_buf_append(out, XMLRPC_MEMBLOCK_CONTENTS(char, mb),
			  XMLRPC_MEMBLOCK_SIZE(char, mb)) < 0)
		xmlrpc_faultf(env, "out of memory");
}

void
va_rpc_serialize_call(xmlrpc_env *env, struct va_buf *out, const char *method,
		      xmlrpc_value *params)
{
	xmlrpc_mem_block *mb = XMLRPC_MEMBLOCK_NEW(char, env, 0);
	if (env->fault_occurred)
		return;
	xmlrpc_serialize_call2(env, mb, method, params, xmlrpc_dialect_i8);
	if (!env->fault_occurred)
		append_block(env, out, mb);
	XMLRPC_MEMBLOCK_FREE(char, mb);
}

void
va_rpc_serialize_response(xmlrpc_env *env, struct va_buf *out, xmlrpc_value *result)
{
	xmlrpc_mem_block *mb = XMLRPC_MEMBLOCK_NEW(char, env, 0);
	if (env->fault_occurred)
		return;
	xmlrpc_serialize_response2(env, mb, result, xmlrpc_dialect_i8);
	if (!env->fault_occurred)
		append_block(env, out, mb);
	XMLRPC_MEMBLOCK_FREE(char, mb);
}

int
va_rpc_serialize_fault(struct va_buf *out, int code, const char *msg)
{
	xmlrpc_env env, fault;
	int r = 0;

	xmlrpc_env_init(&env);
	xmlrpc_env_init(&fault);
	xmlrpc_env_set_fault(&fault, code, msg);
	xmlrpc_mem_block *mb = XMLRPC_MEMBLOCK_NEW(char, &env, 0);
	if (!env.fault_occurred) {
		xmlrpc_serialize_fault(&env, mb, &fault);
		if (!env.fault_occurred)
			append_block(&env, out, mb);
		XMLRPC_MEMBLOCK_FREE(char, mb);
	}
	if (env.fault_occurred)
		r = -ENOMEM;
	xmlrpc_env_clean(&fault);
	xmlrpc_env_clean(&env);
	return r;
}
