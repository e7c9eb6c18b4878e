/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * text.c - the value form of strings (see text.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* The longest escape: ESC (3 bytes), 6 hex digits, ';'. */
#define ESC_MAX_HEX 6

int
va_text_xml_char(uint32_t cp)
{
	return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
	       (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

size_t
va_text_char(const uint8_t *s, size_t len, uint32_t *cp, const char **why)
{
	uint8_t c = s[0];
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
			*why = c ? "a control character XML cannot carry" : "a NUL byte";
			return 0;
		}
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
	} else {
		*why = c == 0xC0 || c == 0xC1 ? "an overlong UTF-8 form" : "invalid UTF-8";
		return 0;
	}
	if (len < n) {
		*why = "a UTF-8 sequence cut short";
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*why = "invalid UTF-8";
			return 0;
		}
		v = v << 6 | (s[i] & 0x3F);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000)) {
		*why = "an overlong UTF-8 form";
		return 0;
	}
	if (v >= 0xD800 && v <= 0xDFFF) {
		*why = "a UTF-16 surrogate";
		return 0;
	}
	if (v > 0x10FFFF) {
		*why = "a code point above U+10FFFF";
		return 0;
	}
	if (v == 0xFFFE || v == 0xFFFF) {
		*why = "U+FFFE or U+FFFF, which are not characters";
		return 0;
	}
	*cp = v;
	return n;
}

int
va_text_put_utf8(struct va_buf *out, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xC0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xE0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xF0 | cp >> 18);
		b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		b[3] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return va_buf_append(out, b, n);
}

int
va_text_put_escape(struct va_buf *out, uint32_t cp)
{
	char b[16];
	int n = snprintf(b, sizeof(b), VA_TEXT_ESC "%X;", (unsigned)cp);
	return va_buf_append(out, b, (size_t)n);
}

/* Characters that the value form escapes. */
static int
escaped(uint32_t cp)
{
	return cp == '\r' || cp > 0xFFFF || cp == VA_TEXT_ESC_CP;
}

size_t
va_text_check(const char *s, size_t len, const char **why)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = va_text_char(p + i, len - i, &cp, why);
		if (!n)
			return i;
		i += n;
	}
	return len;
}

size_t
va_text_sanitize(char *s, size_t len)
{
	uint8_t *p = (uint8_t *)s;
	size_t i = 0;
	uint32_t cp;
	const char *why;

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = va_text_char(p + i, len - i, &cp, &why);
		if (!n) {
			p[i++] = '?';
			continue;
		}
		i += n;
	}
	return len;
}

int
va_text_encode(const char *s, size_t len, struct va_buf *out, size_t *bad_at, const char **why)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, from = 0;
	uint32_t cp;

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = va_text_char(p + i, len - i, &cp, why);
		if (!n) {
			*bad_at = i;
			return -EILSEQ;
		}
		if (escaped(cp)) {
			if (va_buf_append(out, p + from, i - from) < 0 ||
			    va_text_put_escape(out, cp) < 0)
				return -ENOMEM;
			from = i + n;
		}
		i += n;
	}
	return va_buf_append(out, p + from, len - from) < 0 ? -ENOMEM : 0;
}

/*
 * Reads an escape's code point at s (just after ESC), up to end.
 * Returns the bytes after ESC that it takes (hex digits and ';'), or 0
 * when it is not a well-formed escape of a character the form escapes.
 */
static size_t
escape_at(const uint8_t *s, const uint8_t *end, uint32_t *cp)
{
	uint32_t v = 0;
	size_t i = 0;

	while (s + i < end && i < ESC_MAX_HEX) {
		uint8_t c = s[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			v = v << 4 | (uint32_t)(c - 'A' + 10);
		else
			break;
		i++;
	}
	if (i == 0 || s + i >= end || s[i] != ';' || !escaped(v) || v > 0x10FFFF)
		return 0;
	*cp = v;
	return i + 1;
}

static const uint8_t *
find_esc(const uint8_t *p, const uint8_t *end)
{
	while (end - p >= 3) {
		const uint8_t *hit = memchr(p, 0xEE, (size_t)(end - p) - 2);
		if (!hit)
			return NULL;
		if (hit[1] == 0x80 && hit[2] == 0x80)
			return hit;
		p = hit + 1;
	}
	return NULL;
}

int
va_text_has_escape(const void *xml, size_t len)
{
	const uint8_t *p = xml;
	return find_esc(p, p + len) != NULL;
}

/* Undoes the escapes of s into out; CR as cr_text (its length crlen). */
static int
unescape(const void *s, size_t len, struct va_buf *out, const char *cr_text, size_t crlen)
{
	const uint8_t *p = s, *end = p + len, *from = p;

	for (;;) {
		const uint8_t *e = find_esc(p, end);
		if (!e)
			break;
		uint32_t cp;
		size_t n = escape_at(e + 3, end, &cp);
		if (!n) {
			p = e + 3; /* not an escape: copied as it is */
			continue;
		}
		if (va_buf_append(out, from, (size_t)(e - from)) < 0)
			return -ENOMEM;
		int r = cp == '\r' ? va_buf_append(out, cr_text, crlen) : va_text_put_utf8(out, cp);
		if (r < 0)
			return -ENOMEM;
		p = from = e + 3 + n;
	}
	return va_buf_append(out, from, (size_t)(end - from)) < 0 ? -ENOMEM : 0;
}

int
va_text_decode(const char *s, size_t len, struct va_buf *out)
{
	return unescape(s, len, out, "\r", 1);
}

int
va_text_xml_out(const void *xml, size_t len, struct va_buf *out)
{
	return unescape(xml, len, out, "&#13;", 5);
}

void
va_fault(xmlrpc_env *env, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	struct va_buf b = { 0 };
	size_t bad;
	const char *why;

	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n;
	/* A cut may split the last character: the sanitizer makes it '?'. */
	va_text_sanitize(msg, len);
	if (va_text_encode(msg, len, &b, &bad, &why) == 0 && va_buf_append(&b, "", 1) == 0)
		xmlrpc_env_set_fault(env, code, (const char *)b.data);
	else
		xmlrpc_env_set_fault(env, code, msg);
	va_buf_free(&b);
}

xmlrpc_value *
va_text_value(xmlrpc_env *env, const char *s, size_t len)
{
	struct va_buf b = { 0 };
	size_t bad = 0;
	const char *why = NULL;
	xmlrpc_value *v = NULL;

	int r = va_text_encode(s, len, &b, &bad, &why);
	if (r == -EILSEQ)
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "the text cannot be sent: %s at byte %zu", why, bad);
	else if (r < 0)
		xmlrpc_faultf(env, "out of memory");
	else
		v = xmlrpc_string_new_lp(env, b.len, b.data ? (const char *)b.data : "");
	va_buf_free(&b);
	return v;
}

xmlrpc_value *
va_text_value_z(xmlrpc_env *env, const char *s)
{
	return va_text_value(env, s, strlen(s));
}

void
va_text_read(xmlrpc_env *env, xmlrpc_value *v, char **out, size_t *len)
{
	const char *s = NULL;
	size_t n = 0;
	struct va_buf b = { 0 };

	*out = NULL;
	if (len)
		*len = 0;
	if (xmlrpc_value_type(v) != XMLRPC_TYPE_STRING) {
		xmlrpc_env_set_fault(env, XMLRPC_TYPE_ERROR, "expected a string");
		return;
	}
	/* _lp: the length is kept (an escaped CR is not a NUL) */
	xmlrpc_read_string_lp(env, v, &n, &s);
	if (env->fault_occurred)
		return;
	if (va_text_decode(s, n, &b) < 0 || va_buf_reserve(&b, 1) < 0) {
		xmlrpc_faultf(env, "out of memory");
	} else {
		size_t l = b.len;
		*out = (char *)va_buf_steal(&b, &l);
		if (!*out)
			xmlrpc_faultf(env, "out of memory");
		else if (len)
			*len = l;
	}
	va_buf_free(&b);
	free((void *)s);
}
