/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * methods.c - helpers shared by the method groups; see methods.h.
 *
 * Faults set here:
 *   XMLRPC_TYPE_ERROR     wrong number or type of parameters, or a string
 *                         parameter holding a NUL
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "methods.h"
#include "text.h"

/* ---- parameters ---- */

static const char *
type_name(xmlrpc_type t)
{
	switch (t) {
	case XMLRPC_TYPE_INT: return "int";
	case XMLRPC_TYPE_BOOL: return "boolean";
	case XMLRPC_TYPE_DOUBLE: return "double";
	case XMLRPC_TYPE_DATETIME: return "dateTime.iso8601";
	case XMLRPC_TYPE_STRING: return "string";
	case XMLRPC_TYPE_BASE64: return "base64";
	case XMLRPC_TYPE_ARRAY: return "array";
	case XMLRPC_TYPE_STRUCT: return "struct";
	case XMLRPC_TYPE_NIL: return "nil";
	case XMLRPC_TYPE_I8: return "i8";
	default: return "unknown type";
	}
}

int
va_params_count(xmlrpc_env *env, xmlrpc_value *params, int min, int max,
		const char *usage)
{
	int n = xmlrpc_array_size(env, params);

	if (env->fault_occurred)
		return -1;
	if (n < min || n > max) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "%s; got %d parameter%s", usage, n, n == 1 ? "" : "s");
		return -1;
	}
	return n;
}

int
va_params_none(xmlrpc_env *env, xmlrpc_value *params, const char *method)
{
	char usage[128];

	snprintf(usage, sizeof(usage), "%s: expected no parameters", method);
	if (va_params_count(env, params, 0, 0, usage) < 0)
		return -1;
	va_log_info("%s", method);
	return 0;
}

char **
va_param_strings(xmlrpc_env *env, xmlrpc_value *params, int i, const char *usage, size_t max,
		 size_t *n)
{
	xmlrpc_value *arr = va_param_typed(env, params, i, usage, XMLRPC_TYPE_ARRAY,
					   XMLRPC_TYPE_ARRAY);
	char **v = NULL;

	if (!arr)
		return NULL;
	int cnt = xmlrpc_array_size(env, arr);
	if (!env->fault_occurred && (size_t)cnt > max)
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "%s; at most %zu strings in parameter %d", usage, max, i + 1);
	else if (!env->fault_occurred && !(v = calloc((size_t)cnt + 1, sizeof(char *))))
		va_fault(env, XMLRPC_INTERNAL_ERROR, "out of memory");
	for (int k = 0; v && k < cnt && !env->fault_occurred; k++) {
		xmlrpc_value *it = NULL;
		size_t len = 0;
		xmlrpc_array_read_item(env, arr, (unsigned)k, &it);
		if (env->fault_occurred)
			break;
		if (xmlrpc_value_type(it) != XMLRPC_TYPE_STRING)
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s; item %d of parameter %d is not a string", usage, k + 1, i + 1);
		else
			va_text_read(env, it, &v[k], &len);
		if (!env->fault_occurred && memchr(v[k], '\0', len))
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s; item %d of parameter %d holds a NUL character", usage, k + 1, i + 1);
		xmlrpc_DECREF(it);
	}
	xmlrpc_DECREF(arr);
	if (env->fault_occurred) {
		va_strings_free(v);
		return NULL;
	}
	*n = (size_t)cnt;
	return v;
}

void
va_strings_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

xmlrpc_value *
va_param_typed(xmlrpc_env *env, xmlrpc_value *params, int i,
	      const char *usage, xmlrpc_type a, xmlrpc_type b)
{
	xmlrpc_value *v = NULL;

	xmlrpc_array_read_item(env, params, (unsigned)i, &v);
	if (env->fault_occurred)
		return NULL;
	xmlrpc_type t = xmlrpc_value_type(v);
	if (t != a && t != b) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "%s; parameter %d is a%s %s", usage, i + 1,
		    (t == XMLRPC_TYPE_INT || t == XMLRPC_TYPE_I8 ||
		     t == XMLRPC_TYPE_ARRAY) ? "n" : "", type_name(t));
		xmlrpc_DECREF(v);
		return NULL;
	}
	return v;
}

void
va_param_int64(xmlrpc_env *env, xmlrpc_value *params, int i,
	       const char *usage, int64_t *out)
{
	xmlrpc_value *v = va_param_typed(env, params, i, usage,
	    XMLRPC_TYPE_INT, XMLRPC_TYPE_I8);

	if (!v)
		return;
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		int n = 0;
		xmlrpc_read_int(env, v, &n);
		*out = n;
	} else {
		xmlrpc_int64 n = 0;
		xmlrpc_read_i8(env, v, &n);
		*out = n;
	}
	xmlrpc_DECREF(v);
}

void
va_param_string(xmlrpc_env *env, xmlrpc_value *params, int i,
		const char *usage, char **out, size_t *len)
{
	xmlrpc_value *v = va_param_typed(env, params, i, usage,
	    XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING);
	char *s = NULL;
	size_t n = 0;

	if (!v)
		return;
	/* The raw text (common/text.h): every character the client sent. */
	va_text_read(env, v, &s, &n);
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return;
	if (memchr(s, '\0', n)) {
		free(s);
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "%s; parameter %d holds a NUL character", usage, i + 1);
		return;
	}
	*out = s;
	if (len)
		*len = n;
}

xmlrpc_value *
va_int_value(xmlrpc_env *env, int64_t v)
{
	if (v >= INT32_MIN && v <= INT32_MAX)
		return xmlrpc_int_new(env, (int)v);
	return xmlrpc_i8_new(env, v);
}

/* ---- guest data into results ---- */

xmlrpc_value *
va_text_value_lossy(xmlrpc_env *env, const char *s, size_t len, int *replaced)
{
	static const char fffd[] = "\xEF\xBF\xBD";
	const uint8_t *p = (const uint8_t *)s;
	struct va_buf b = { 0 };
	size_t i = 0;
	int rep = 0, err = 0;

	while (i < len && !err) {
		uint32_t cp;
		const char *why;
		size_t n = p[i] >= 0x20 && p[i] < 0x80 ? 1 : va_text_char(p + i, len - i, &cp, &why);
		if (n) {
			err = va_buf_append(&b, p + i, n);
			i += n;
		} else {
			/* One U+FFFD per byte that starts no character. */
			err = va_buf_append(&b, fffd, 3);
			rep = 1;
			i++;
		}
	}
	xmlrpc_value *v = NULL;
	if (err)
		va_fault(env, XMLRPC_INTERNAL_ERROR, "out of memory");
	else
		v = va_text_value(env, b.data ? (const char *)b.data : "", b.len);
	va_buf_free(&b);
	if (replaced)
		*replaced = rep;
	return v;
}

void
va_set_value(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_value *v)
{
	if (!env->fault_occurred && v)
		xmlrpc_struct_set_value(env, st, key, v);
	if (v)
		xmlrpc_DECREF(v);
}

void
va_set_text(xmlrpc_env *env, xmlrpc_value *st, const char *key, const char *s, size_t len)
{
	int replaced = 0;

	if (env->fault_occurred)
		return;
	va_set_value(env, st, key, va_text_value_lossy(env, s, len, &replaced));
	if (replaced && !env->fault_occurred) {
		char raw[128];
		snprintf(raw, sizeof(raw), "%s_raw", key);
		va_set_value(env, st, raw, xmlrpc_base64_new(env, len, (const unsigned char *)s));
	}
}

void
va_set_text_z(xmlrpc_env *env, xmlrpc_value *st, const char *key, const char *s)
{
	if (s)
		va_set_text(env, st, key, s, strlen(s));
}

void
va_set_int(xmlrpc_env *env, xmlrpc_value *st, const char *key, int64_t v)
{
	if (!env->fault_occurred)
		va_set_value(env, st, key, va_int_value(env, v));
}

void
va_set_i8(xmlrpc_env *env, xmlrpc_value *st, const char *key, int64_t v)
{
	if (!env->fault_occurred)
		va_set_value(env, st, key, xmlrpc_i8_new(env, v));
}

void
va_set_bool(xmlrpc_env *env, xmlrpc_value *st, const char *key, int v)
{
	if (!env->fault_occurred)
		va_set_value(env, st, key, xmlrpc_bool_new(env, v != 0));
}

void
va_set_double(xmlrpc_env *env, xmlrpc_value *st, const char *key, double v)
{
	if (!env->fault_occurred)
		va_set_value(env, st, key, xmlrpc_double_new(env, v));
}

xmlrpc_value *
va_result(xmlrpc_env *env, xmlrpc_value *v)
{
	if (env->fault_occurred && v) {
		xmlrpc_DECREF(v);
		v = NULL;
	}
	return env->fault_occurred ? NULL : v;
}

void
va_append(xmlrpc_env *env, xmlrpc_value *arr, xmlrpc_value *v)
{
	if (!env->fault_occurred && v)
		xmlrpc_array_append_item(env, arr, v);
	if (v)
		xmlrpc_DECREF(v);
}

/* ---- small files ---- */

char *
va_read_file(const char *path, size_t max, size_t *len, int *cut)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	size_t n = 0, cap = max < 4096 ? max : 4096;
	char *buf;

	if (cut)
		*cut = 0;
	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			if (cap == max) {
				/* One more byte says whether the file goes on. */
				char c;
				ssize_t r;
				do
					r = read(fd, &c, 1);
				while (r < 0 && errno == EINTR);
				if (r > 0 && cut)
					*cut = 1;
				break;
			}
			size_t ncap = cap > max / 2 ? max : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	int e = errno;
	close(fd);
	errno = e;
	if (!buf)
		return NULL;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}
