/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-text.c - the strings vactl sends: checked, and built in the value
 * form of common/text.h.
 *
 * Every string vactl puts into a call (a word of "call", the clipboard's
 * text, a guest path, a string of vactl_callf or of a j: JSON argument)
 * becomes an xmlrpc_value through va_text_value() (or, inside JSON,
 * through the same escapes), so that every character of every plane,
 * and CR, reaches the guest as it was typed.  Text that XML cannot carry
 * (invalid or overlong UTF-8, surrogates, U+FFFE/U+FFFF, control
 * characters but tab, LF and CR, NUL) is refused before anything is sent,
 * with the byte where it goes wrong.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlrpc-c/base.h>

#include "buf.h"
#include "text.h"
#include "vactl.h"

int
vactl_text_check(const char *s, size_t len, char *msg, size_t msglen)
{
	const char *why = NULL;
	size_t at = va_text_check(s, len, &why);

	if (at == len)
		return 0;
	snprintf(msg, msglen, "%s at byte %zu", why, at);
	return -1;
}

/* ---- j: JSON arguments ---- */

static int
hex4(const char *p, const char *end, uint32_t *out)
{
	uint32_t v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Appends cp, inside a JSON string, as xmlrpc-c is to read it: the value form. */
static int
put_json_char(struct va_buf *out, uint32_t cp)
{
	if (cp == '\r' || cp > 0xFFFF || cp == VA_TEXT_ESC_CP)
		return va_text_put_escape(out, cp);
	switch (cp) {
	case '"': return va_buf_append_str(out, "\\\"");
	case '\\': return va_buf_append_str(out, "\\\\");
	case '\n': return va_buf_append_str(out, "\\n");
	case '\t': return va_buf_append_str(out, "\\t");
	default: return va_text_put_utf8(out, cp);
	}
}

/*
 * One JSON string literal at *pp (just after its '"'), rewritten into out
 * with its closing '"'.  Returns 1 when rewritten, 0 when it is not a
 * well-formed literal (left to xmlrpc-c's parser to say why), -1 with
 * *bad and *why when it holds text XML cannot carry, -ENOMEM.
 */
static int
json_string(const char **pp, const char *end, struct va_buf *out, const char **bad,
	    const char **why)
{
	const char *p = *pp;

	while (p < end) {
		const char *at = p;
		uint32_t cp;
		if (*p == '"') {
			if (va_buf_append(out, "\"", 1) < 0)
				return -ENOMEM;
			*pp = p + 1;
			return 1;
		}
		if (*p == '\\') {
			if (end - p < 2)
				return 0;
			switch (p[1]) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if (hex4(p + 2, end, &cp) < 0)
					return 0;
				p += 4;
				break;
			default:
				return 0;
			}
			p += 2;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				/* A high surrogate: only with a low one after it. */
				uint32_t lo;
				if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
				    hex4(p + 2, end, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					p += 6;
				}
			}
			if (cp >= 0xD800 && cp <= 0xDFFF) {
				*bad = at;
				*why = "a UTF-16 surrogate without its pair";
				return -1;
			}
			if (!va_text_xml_char(cp)) {
				*bad = at;
				*why = cp == 0 ? "a NUL character" : cp < 0x20 ?
				       "a control character XML cannot carry" :
				       "U+FFFE or U+FFFF, which are not characters";
				return -1;
			}
		} else {
			size_t n = va_text_char((const uint8_t *)p, (size_t)(end - p), &cp, why);
			if (!n) {
				*bad = at;
				return -1;
			}
			p += n;
		}
		if (put_json_char(out, cp) < 0)
			return -ENOMEM;
	}
	return 0; /* no closing quote */
}

int
vactl_json_text_form(const char *s, size_t len, struct va_buf *out, size_t *bad_at,
		     const char **why)
{
	const char *p = s, *end = s + len;

	while (p < end) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (!q)
			q = end;
		if (va_buf_append(out, p, (size_t)(q - p)) < 0)
			return -ENOMEM;
		if (q == end)
			break;
		const char *lit = q + 1, *bad = NULL;
		size_t mark = out->len;
		if (va_buf_append(out, "\"", 1) < 0)
			return -ENOMEM;
		int r = json_string(&lit, end, out, &bad, why);
		if (r < 0 && r != -1)
			return r;
		if (r == -1) {
			*bad_at = (size_t)(bad - s);
			return -EILSEQ;
		}
		if (r == 0) {
			/* Malformed: the rest as it was, for xmlrpc-c to explain. */
			out->len = mark;
			return va_buf_append(out, q, (size_t)(end - q)) < 0 ? -ENOMEM : 0;
		}
		p = lit;
	}
	return 0;
}

/* ---- vactl_callf's parameters ---- */

/* The codes build_one knows; a format with others goes to xmlrpc-c whole. */
#define KNOWN_CODES "ibdIs#6nASV(){}:,"

static xmlrpc_value *build_one(xmlrpc_env *env, const char **fp, va_list *ap);

static xmlrpc_value *
build_array(xmlrpc_env *env, const char **fp, va_list *ap)
{
	xmlrpc_value *a = xmlrpc_array_new(env);

	while (!env->fault_occurred && **fp != ')') {
		if (!**fp) {
			va_fault(env, XMLRPC_TYPE_ERROR, "format: an array without its ')'");
			break;
		}
		xmlrpc_value *item = build_one(env, fp, ap);
		if (item) {
			xmlrpc_array_append_item(env, a, item);
			xmlrpc_DECREF(item);
		}
	}
	if (env->fault_occurred) {
		if (a)
			xmlrpc_DECREF(a);
		return NULL;
	}
	(*fp)++;
	return a;
}

static xmlrpc_value *
build_struct(xmlrpc_env *env, const char **fp, va_list *ap)
{
	xmlrpc_value *st = xmlrpc_struct_new(env);

	while (!env->fault_occurred && **fp != '}') {
		xmlrpc_value *key = build_one(env, fp, ap), *val = NULL;
		if (!env->fault_occurred && xmlrpc_value_type(key) != XMLRPC_TYPE_STRING)
			va_fault(env, XMLRPC_TYPE_ERROR, "format: a struct's key must be a string");
		if (!env->fault_occurred && **fp != ':')
			va_fault(env, XMLRPC_TYPE_ERROR, "format: a struct's key without its ':'");
		else if (!env->fault_occurred)
			(*fp)++;
		if (!env->fault_occurred)
			val = build_one(env, fp, ap);
		if (!env->fault_occurred)
			xmlrpc_struct_set_value_v(env, st, key, val);
		if (key)
			xmlrpc_DECREF(key);
		if (val)
			xmlrpc_DECREF(val);
		if (!env->fault_occurred && **fp == ',')
			(*fp)++;
		else if (!env->fault_occurred && **fp != '}')
			va_fault(env, XMLRPC_TYPE_ERROR, "format: a struct without its '}'");
	}
	if (env->fault_occurred) {
		if (st)
			xmlrpc_DECREF(st);
		return NULL;
	}
	(*fp)++;
	return st;
}

static xmlrpc_value *
build_one(xmlrpc_env *env, const char **fp, va_list *ap)
{
	char c = *(*fp)++;

	switch (c) {
	case 'i':
		return xmlrpc_int_new(env, va_arg(*ap, int));
	case 'b':
		return xmlrpc_bool_new(env, (xmlrpc_bool)va_arg(*ap, int));
	case 'd':
		return xmlrpc_double_new(env, va_arg(*ap, double));
	case 'I':
		return xmlrpc_i8_new(env, va_arg(*ap, xmlrpc_int64));
	case 's': {
		const char *s = va_arg(*ap, const char *);
		size_t len;
		if (**fp == '#') {
			(*fp)++;
			len = va_arg(*ap, size_t);
		} else {
			len = strlen(s);
		}
		return va_text_value(env, s, len);
	}
	case '6': {
		const unsigned char *d = va_arg(*ap, const unsigned char *);
		size_t len = va_arg(*ap, size_t);
		return xmlrpc_base64_new(env, len, d);
	}
	case 'n':
		return xmlrpc_nil_new(env);
	case 'A':
	case 'S':
	case 'V': {
		xmlrpc_value *v = va_arg(*ap, xmlrpc_value *);
		if ((c == 'A' && xmlrpc_value_type(v) != XMLRPC_TYPE_ARRAY) ||
		    (c == 'S' && xmlrpc_value_type(v) != XMLRPC_TYPE_STRUCT)) {
			va_fault(env, XMLRPC_TYPE_ERROR, "format: '%c' given a value of another type", c);
			return NULL;
		}
		xmlrpc_INCREF(v);
		return v;
	}
	case '(':
		return build_array(env, fp, ap);
	case '{':
		return build_struct(env, fp, ap);
	default:
		va_fault(env, XMLRPC_TYPE_ERROR, "format: unexpected '%c'", c ? c : '0');
		(*fp)--;
		return NULL;
	}
}

xmlrpc_value *
vactl_build_params(xmlrpc_env *env, const char *format, va_list ap)
{
	xmlrpc_value *v = NULL;

	if (strspn(format, KNOWN_CODES) != strlen(format)) {
		/* Codes vactl does not build itself: xmlrpc-c's own rules. */
		const char *tail = NULL;
		xmlrpc_build_value_va(env, format, ap, &v, &tail);
	} else {
		const char *f = format;
		va_list aq;
		va_copy(aq, ap);
		v = build_one(env, &f, &aq);
		va_end(aq);
		if (!env->fault_occurred && *f)
			va_fault(env, XMLRPC_TYPE_ERROR, "format: \"%s\" left over", f);
	}
	if (!env->fault_occurred && xmlrpc_value_type(v) != XMLRPC_TYPE_ARRAY)
		va_fault(env, XMLRPC_TYPE_ERROR, "format: the parameters must be an array, \"(...)\"");
	if (env->fault_occurred && v) {
		xmlrpc_DECREF(v);
		v = NULL;
	}
	return v;
}
