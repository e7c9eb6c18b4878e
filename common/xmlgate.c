/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "text.h"
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

/* ---- the gate: one linear scan before xmlrpc-c parses ---- */

const struct va_xml_limits va_xml_limits_default = {
	.max_depth = VA_XML_MAX_DEPTH,
	.max_elements = VA_XML_MAX_ELEMENTS,
	.max_members = VA_XML_MAX_MEMBERS,
};

const struct va_xml_limits va_xml_limits_small = {
	.max_depth = VA_XML_MAX_DEPTH,
	.max_elements = VA_XML_SMALL_ELEMENTS,
	.max_members = VA_XML_SMALL_MEMBERS,
};

/* What a byte starts, in text (content, attribute values, CDATA, ...). */
enum { C_PLAIN, C_LT, C_AMP, C_HIGH, C_CTL };
static const uint8_t byte_class[256] = {
	[0x00 ... 0x08] = C_CTL, [0x0B ... 0x0C] = C_CTL, [0x0E ... 0x1F] = C_CTL,
	['<'] = C_LT, ['&'] = C_AMP, [0x80 ... 0xFF] = C_HIGH,
};

struct gate {
	const uint8_t *start, *p, *end;
	const struct va_xml_limits *lim;
	struct va_buf *out;     /* the rewritten body, once a rewrite was needed */
	const uint8_t *copied;  /* input before this is in out already */
	int rewriting;
	size_t depth, elements;
	size_t members[VA_XML_DEPTH_CAP + 1]; /* <member>s of the element open at each depth */
	char *why;
	size_t whylen;
};

static int __attribute__((format(printf, 2, 3)))
refuse(struct gate *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->why, g->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t
off(const struct gate *g, const uint8_t *at)
{
	return (size_t)(at - g->start);
}

/* Replaces input [a, b) by the escape of cp in the body xmlrpc-c will parse. */
static int
rewrite(struct gate *g, const uint8_t *a, const uint8_t *b, uint32_t cp)
{
	if (!g->rewriting) {
		g->rewriting = 1;
		g->out->len = 0;
		/* Escapes make the body at most ~3x longer, rarely: grow as needed. */
		if (va_buf_reserve(g->out, (size_t)(g->end - g->start) + 64) < 0)
			return refuse(g, "out of memory");
		g->copied = g->start;
	}
	if (va_buf_append(g->out, g->copied, (size_t)(a - g->copied)) < 0 ||
	    va_text_put_escape(g->out, cp) < 0)
		return refuse(g, "out of memory");
	g->copied = b;
	return 0;
}

/* One character at g->p of class C_HIGH or C_CTL: validate, and escape what the value form escapes. */
static int
high(struct gate *g)
{
	uint32_t cp;
	const char *why;
	size_t n = va_text_char(g->p, (size_t)(g->end - g->p), &cp, &why);

	if (!n)
		return refuse(g, "the XML holds %s at byte %zu", why, off(g, g->p));
	if (cp > 0xFFFF || cp == VA_TEXT_ESC_CP) {
		if (rewrite(g, g->p, g->p + n, cp) < 0)
			return -1;
	}
	g->p += n;
	return 0;
}

/* A reference at g->p ('&'): char references become characters xmlrpc-c keeps. */
static int
reference(struct gate *g)
{
	const uint8_t *a = g->p, *q = a + 1;
	const uint8_t *lim = g->end - a > 16 ? a + 16 : g->end;
	const uint8_t *semi = memchr(q, ';', (size_t)(lim - q));

	if (!semi)
		return refuse(g, "the XML holds a malformed reference at byte %zu", off(g, a));
	size_t n = (size_t)(semi - q);
	if (n > 0 && *q == '#') {
		uint32_t cp = 0;
		int hex = n > 1 && q[1] == 'x';
		size_t i = hex ? 2 : 1;
		if (i == n)
			return refuse(g, "the XML holds a malformed character reference at byte %zu",
				      off(g, a));
		for (; i < n; i++) {
			uint8_t c = q[i];
			uint32_t d;
			if (c >= '0' && c <= '9')
				d = (uint32_t)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				d = (uint32_t)(c - 'a' + 10);
			else if (hex && c >= 'A' && c <= 'F')
				d = (uint32_t)(c - 'A' + 10);
			else
				return refuse(g, "the XML holds a malformed character reference at "
					      "byte %zu", off(g, a));
			cp = cp * (hex ? 16 : 10) + d;
			if (cp > 0x10FFFF)
				break;
		}
		if (!va_text_xml_char(cp))
			return refuse(g, "the XML refers to a character XML cannot carry (%.*s) at "
				      "byte %zu", (int)(n + 2), (const char *)a, off(g, a));
		if ((cp == '\r' || cp > 0xFFFF || cp == VA_TEXT_ESC_CP) &&
		    rewrite(g, a, semi + 1, cp) < 0)
			return -1;
	} else {
		static const char *const names[] = { "lt", "gt", "amp", "quot", "apos" };
		int known = 0;
		for (size_t i = 0; i < 5 && !known; i++)
			known = strlen(names[i]) == n && memcmp(q, names[i], n) == 0;
		if (!known)
			return refuse(g, "the XML refers to an entity that is not defined (&%.*s;) "
				      "at byte %zu", (int)n, (const char *)q, off(g, a));
	}
	g->p = semi + 1;
	return 0;
}

/* Content, up to the next '<' or the end: references and characters checked. */
static int
text(struct gate *g)
{
	for (;;) {
		while (g->p < g->end && byte_class[*g->p] == C_PLAIN)
			g->p++;
		if (g->p >= g->end || *g->p == '<')
			return 0;
		if (*g->p == '&') {
			if (reference(g) < 0)
				return -1;
		} else if (high(g) < 0) {
			return -1;
		}
	}
}

/*
 * Up to and past stop (e.g. "]]>"): the inside of CDATA, a comment, a
 * processing instruction, a tag, a quoted attribute value.  refs: '&'
 * starts a reference (attribute values) or is plain (the others).
 */
static int
until(struct gate *g, const char *stop, int refs)
{
	size_t sl = strlen(stop);

	for (;;) {
		while (g->p < g->end && byte_class[*g->p] <= C_LT && *g->p != (uint8_t)stop[0])
			g->p++;
		if (g->p >= g->end)
			return refuse(g, "the XML ends inside markup");
		uint8_t c = *g->p;
		if (c == (uint8_t)stop[0]) {
			if ((size_t)(g->end - g->p) >= sl && memcmp(g->p, stop, sl) == 0) {
				g->p += sl;
				return 0;
			}
			g->p++;
			continue;
		}
		if (c == '&' && refs) {
			if (reference(g) < 0)
				return -1;
		} else if (c == '&') {
			g->p++;
		} else if (high(g) < 0) {
			return -1;
		}
	}
}

static int
name_is(const uint8_t *n, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(n, want, len) == 0;
}

static int
is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The XML declaration's encoding, if any, must be UTF-8 (or its subset ASCII). */
static int
check_declaration(struct gate *g, const uint8_t *a, const uint8_t *b)
{
	static const char key[] = "encoding";
	const uint8_t *p = a;

	while (b - p >= (ptrdiff_t)sizeof(key)) {
		const uint8_t *hit = memchr(p, 'e', (size_t)(b - p));
		if (!hit || b - hit < (ptrdiff_t)sizeof(key))
			return 0;
		if (memcmp(hit, key, sizeof(key) - 1) != 0) {
			p = hit + 1;
			continue;
		}
		p = hit + sizeof(key) - 1;
		while (p < b && (is_ws(*p) || *p == '='))
			p++;
		if (p >= b || (*p != '"' && *p != '\''))
			return 0;
		uint8_t q = *p++;
		const uint8_t *e = memchr(p, q, (size_t)(b - p));
		if (!e)
			return 0;
		size_t n = (size_t)(e - p);
		if ((n == 5 && strncasecmp((const char *)p, "utf-8", 5) == 0) ||
		    (n == 8 && strncasecmp((const char *)p, "us-ascii", 8) == 0))
			return 0;
		return refuse(g, "the XML declares the encoding \"%.*s\": only UTF-8 is accepted",
			      (int)(n > 40 ? 40 : n), (const char *)p);
	}
	return 0;
}

/* A start tag at g->p ('<' then a name). */
static int
start_tag(struct gate *g)
{
	const uint8_t *n = ++g->p;
	while (g->p < g->end && !is_ws(*g->p) && *g->p != '>' && *g->p != '/')
		g->p++;
	size_t nlen = (size_t)(g->p - n);

	if (++g->elements > g->lim->max_elements)
		return refuse(g, "the XML has more than %zu elements", g->lim->max_elements);
	if (name_is(n, nlen, "member") &&
	    ++g->members[g->depth] > g->lim->max_members)
		return refuse(g, "a struct in the XML has more than %zu members",
			      g->lim->max_members);
	/* Attributes: quoted values may hold '>' and references. */
	for (;;) {
		while (g->p < g->end && *g->p != '>' && *g->p != '"' && *g->p != '\'' &&
		       byte_class[*g->p] != C_HIGH && byte_class[*g->p] != C_CTL)
			g->p++;
		if (g->p >= g->end)
			return refuse(g, "the XML ends inside a tag");
		uint8_t c = *g->p;
		if (c == '>')
			break;
		if (c == '"' || c == '\'') {
			char q[2] = { (char)c, 0 };
			g->p++;
			if (until(g, q, 1) < 0)
				return -1;
			continue;
		}
		if (high(g) < 0)
			return -1;
	}
	int empty = g->p[-1] == '/';
	g->p++;
	if (!empty) {
		if (g->depth + 1 > g->lim->max_depth)
			return refuse(g, "the XML nests elements deeper than %zu", g->lim->max_depth);
		g->members[++g->depth] = 0;
	}
	return 0;
}

static int
markup(struct gate *g)
{
	const uint8_t *a = g->p;
	size_t left = (size_t)(g->end - a);

	if (left >= 2 && a[1] == '?') {
		g->p += 2;
		if (until(g, "?>", 0) < 0)
			return -1;
		if (left >= 5 && memcmp(a, "<?xml", 5) == 0 && (left == 5 || is_ws(a[5])))
			return check_declaration(g, a + 5, g->p);
		return 0;
	}
	if (left >= 4 && memcmp(a, "<!--", 4) == 0) {
		g->p += 4;
		return until(g, "-->", 0);
	}
	if (left >= 9 && memcmp(a, "<![CDATA[", 9) == 0) {
		g->p += 9;
		return until(g, "]]>", 0);
	}
	if (left >= 2 && a[1] == '!')
		return refuse(g, "XML with a document type declaration (DOCTYPE or ENTITY) is "
			      "refused");
	if (left >= 2 && a[1] == '/') {
		if (g->depth == 0)
			return refuse(g, "the XML has an end tag without a start tag at byte %zu",
				      off(g, a));
		g->depth--;
		g->p += 2;
		return until(g, ">", 0);
	}
	return start_tag(g);
}

int
va_xml_gate(const void *body, size_t len, const struct va_xml_limits *lim,
	    struct va_buf *scratch, const void **xml, size_t *xml_len, char *why, size_t whylen)
{
	struct gate g = {
		.start = body, .p = body, .end = (const uint8_t *)body + len,
		.lim = lim ? lim : &va_xml_limits_default, .out = scratch,
		.why = why, .whylen = whylen,
	};

	if (g.lim->max_depth > VA_XML_DEPTH_CAP)
		return refuse(&g, "internal: depth limit over %d", VA_XML_DEPTH_CAP);
	/* A byte-order mark may start UTF-8. */
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		g.p += 3;
	while (g.p < g.end) {
		if (text(&g) < 0)
			return -1;
		if (g.p < g.end && markup(&g) < 0)
			return -1;
	}
	if (g.rewriting) {
		if (va_buf_append(g.out, g.copied, (size_t)(g.end - g.copied)) < 0)
			return refuse(&g, "out of memory");
		*xml = g.out->data;
		*xml_len = g.out->len;
	} else {
		*xml = body;
		*xml_len = len;
	}
	return 0;
}

/* Runs the gate; env set (XMLRPC_PARSE_ERROR) when the body is refused. */
static int
gate(xmlrpc_env *env, const void *body, size_t len, const struct va_xml_limits *lim,
     struct va_buf *scratch, const void **xml, size_t *xml_len)
{
	char why[256];
	if (va_xml_gate(body, len, lim, scratch, xml, xml_len, why, sizeof(why)) < 0) {
		xmlrpc_env_set_fault(env, XMLRPC_PARSE_ERROR, why);
		return -1;
	}
	return 0;
}

void
va_rpc_parse_call(xmlrpc_env *env, const void *body, size_t len, char **name,
		  xmlrpc_value **params)
{
	const struct va_xml_limits *lim = NULL;
	const char *n = NULL;
	struct va_buf scratch = { 0 };
	const void *xml;
	size_t xml_len;

	*name = NULL;
	*params = NULL;
	if (gate(env, body, len, lim, &scratch, &xml, &xml_len) == 0) {
		xmlrpc_parse_call(env, xml, xml_len, &n, params);
		if (!env->fault_occurred)
			*name = (char *)n;
	}
	va_buf_free(&scratch);
}

void
va_rpc_parse_response(xmlrpc_env *env, const void *body, size_t len, xmlrpc_value **result,
		      int *fault_code, char **fault_string)
{
	va_rpc_parse_response_lim(env, body, len, NULL, result, fault_code, fault_string);
}

void
va_rpc_parse_response_lim(xmlrpc_env *env, const void *body, size_t len,
			  const struct va_xml_limits *lim, xmlrpc_value **result, int *fault_code,
			  char **fault_string)
{
	const char *fs = NULL;
	struct va_buf scratch = { 0 };
	const void *xml;
	size_t xml_len;

	*result = NULL;
	*fault_code = 0;
	*fault_string = NULL;
	if (gate(env, body, len, lim, &scratch, &xml, &xml_len) == 0) {
		xmlrpc_parse_response2(env, xml, xml_len, result, fault_code, &fs);
		/* The fault's text in raw UTF-8, as the caller will show it. */
		if (fs) {
			struct va_buf b = { 0 };
			size_t l;
			if (va_text_decode(fs, strlen(fs), &b) == 0 && va_buf_reserve(&b, 1) == 0) {
				*fault_string = (char *)va_buf_steal(&b, &l);
				free((void *)fs);
			} else {
				*fault_string = (char *)fs;
			}
			va_buf_free(&b);
		}
	}
	va_buf_free(&scratch);
}

void
va_rpc_process(xmlrpc_env *env, xmlrpc_registry *registry, const void *body, size_t len,
	       void *call_info, struct va_buf *out)
{
	va_rpc_process_lim(env, registry, body, len, NULL, call_info, out);
}

void
va_rpc_process_lim(xmlrpc_env *env, xmlrpc_registry *registry, const void *body, size_t len,
		   const struct va_xml_limits *lim, void *call_info, struct va_buf *out)
{
	xmlrpc_env e;
	xmlrpc_mem_block *mb = NULL;
	struct va_buf scratch = { 0 };
	const void *xml;
	size_t xml_len;

	xmlrpc_env_init(&e);
	if (gate(&e, body, len, lim, &scratch, &xml, &xml_len) == 0) {
		xmlrpc_registry_process_call2(&e, registry, xml, xml_len, call_info, &mb);
		/* Only a failure of the registry itself lands in e: faults of
		 * methods and of malformed calls are serialised into mb. */
		if (e.fault_occurred)
			e.fault_code = XMLRPC_INTERNAL_ERROR;
	}
	va_buf_free(&scratch);
	if (e.fault_occurred) {
		if (va_rpc_serialize_fault(out, e.fault_code, e.fault_string) < 0)
			xmlrpc_faultf(env, "out of memory");
	} else if (va_text_xml_out(XMLRPC_MEMBLOCK_CONTENTS(char, mb),
				   XMLRPC_MEMBLOCK_SIZE(char, mb), out) < 0) {
		xmlrpc_faultf(env, "out of memory");
	}
	if (mb)
		XMLRPC_MEMBLOCK_FREE(char, mb);
	xmlrpc_env_clean(&e);
}
