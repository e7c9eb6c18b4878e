/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "xmlgate.h"

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
va_xml_gate_check(const void *body, size_t len, const char **why)
{
	const char *end = (const char *)body + len;

	/* XML never holds U+0000: a NUL byte means UTF-16 or UTF-32, where
	 * the markup below would go unseen (and "<!DOCTYPE" with it). */
	if (memchr(body, '\0', len)) {
		*why = "the body is not UTF-8 XML (it holds a NUL byte)";
		return -1;
	}
	/* A DOCTYPE can only come in the prolog, before the root element. */
	const char *p = skip_prolog(body, end);
	if (p && p[1] == '!') {
		*why = "XML with a document type declaration (DOCTYPE or ENTITY) is refused";
		return -1;
	}
	return 0; /* the root element, or not XML at all: xmlrpc-c says so */
}

static int
gate(xmlrpc_env *env, const void *body, size_t len)
{
	const char *why;
	if (va_xml_gate_check(body, len, &why) < 0) {
		xmlrpc_env_set_fault(env, XMLRPC_PARSE_ERROR, why);
		return -1;
	}
	return 0;
}

void
va_rpc_parse_call(xmlrpc_env *env, const void *body, size_t len, char **name,
		  xmlrpc_value **params)
{
	const char *n = NULL;

	*name = NULL;
	*params = NULL;
	if (gate(env, body, len) < 0)
		return;
	xmlrpc_parse_call(env, body, len, &n, params);
	if (!env->fault_occurred)
		*name = (char *)n;
}

void
va_rpc_parse_response(xmlrpc_env *env, const void *body, size_t len, xmlrpc_value **result,
		      int *fault_code, char **fault_string)
{
	const char *fs = NULL;

	*result = NULL;
	*fault_code = 0;
	*fault_string = NULL;
	if (gate(env, body, len) < 0)
		return;
	xmlrpc_parse_response2(env, body, len, result, fault_code, &fs);
	*fault_string = (char *)fs;
}

void
va_rpc_process(xmlrpc_env *env, xmlrpc_registry *registry, const void *body, size_t len,
	       void *call_info, struct va_buf *out)
{
	xmlrpc_env e;
	xmlrpc_mem_block *mb = NULL;

	xmlrpc_env_init(&e);
	if (gate(&e, body, len) == 0) {
		xmlrpc_registry_process_call2(&e, registry, body, len, call_info, &mb);
		/* Only a failure of the registry itself lands in e: faults of
		 * methods and of malformed calls are serialised into mb. */
		if (e.fault_occurred)
			e.fault_code = XMLRPC_INTERNAL_ERROR;
	}
	if (e.fault_occurred) {
		if (va_rpc_serialize_fault(out, e.fault_code, e.fault_string) < 0)
			xmlrpc_faultf(env, "out of memory");
	} else if (va_buf_append(out, XMLRPC_MEMBLOCK_CONTENTS(char, mb),
				 XMLRPC_MEMBLOCK_SIZE(char, mb)) < 0) {
		xmlrpc_faultf(env, "out of memory");
	}
	if (mb)
		XMLRPC_MEMBLOCK_FREE(char, mb);
	xmlrpc_env_clean(&e);
}
