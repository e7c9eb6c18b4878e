/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * methods.c - helpers shared by the method groups; see methods.h.
 *
 * Faults set here:
 *   XMLRPC_TYPE_ERROR     wrong number or type of parameters, or a string
 *                         parameter holding a NUL
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

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

