/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-value.c - XML-RPC values for people and for scripts: the typed
 * arguments of "vactl call", and results printed readably or as JSON.
 * Strings go in through va_text_value (vactl-text.c) and come out
 * through va_text_read: raw UTF-8 on both sides, the value form of
 * common/text.h in between.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xmlrpc-c/json.h>

#include "b64.h"
#include "buf.h"
#include "text.h"
#include "vactl.h"

/* Largest file an @FILE argument may name. */
#define ARG_FILE_MAX (64u * 1024 * 1024)
/* Base64 values up to this many bytes are shown; larger ones are summed up. */
#define SHOW_BASE64_MAX 48

/* ---- arguments ---- */

static unsigned char *
read_whole_file(const char *path, size_t *len, char *msg, size_t msglen)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > ARG_FILE_MAX) {
		snprintf(msg, msglen, "%s: larger than %u bytes (use push for files)", path,
			 ARG_FILE_MAX);
		close(fd);
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			if (ncap > ARG_FILE_MAX + 1)
				ncap = ARG_FILE_MAX + 1;
			if (ncap == cap) {
				snprintf(msg, msglen, "%s: larger than %u bytes", path, ARG_FILE_MAX);
				goto fail;
			}
			unsigned char *nb = realloc(buf, ncap);
			if (!nb) {
				snprintf(msg, msglen, "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(msg, msglen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

static int
parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/*
 * A string value of the raw text s, which starts at byte skip of the word
 * typed; NULL with msg saying what cannot be sent, where in the word.
 */
static xmlrpc_value *
new_string(xmlrpc_env *env, const char *s, size_t skip, char *msg, size_t msglen)
{
	const char *why = NULL;
	size_t len = strlen(s), at = va_text_check(s, len, &why);

	if (at != len) {
		snprintf(msg, msglen, "%s at byte %zu", why, skip + at);
		return NULL;
	}
	return va_text_value(env, s, len);
}

/* A j: word's JSON, its strings in the value form; NULL with msg. */
static xmlrpc_value *
new_json(xmlrpc_env *env, const char *word, char *msg, size_t msglen)
{
	struct va_buf b = { 0 };
	size_t at = 0;
	const char *why = NULL;
	xmlrpc_value *v = NULL;
	int r = vactl_json_text_form(word + 2, strlen(word + 2), &b, &at, &why);

	if (r == -EILSEQ)
		snprintf(msg, msglen, "%s at byte %zu", why, 2 + at);
	else if (r < 0 || va_buf_append(&b, "", 1) < 0)
		snprintf(msg, msglen, "out of memory");
	else
		v = xmlrpc_parse_json(env, (const char *)b.data);
	va_buf_free(&b);
	return v;
}

xmlrpc_value *
vactl_parse_arg(const char *word, char *msg, size_t msglen)
{
	xmlrpc_env env;
	xmlrpc_value *v = NULL;
	char *end;

	xmlrpc_env_init(&env);
	if (strncmp(word, "i:", 2) == 0) {
		errno = 0;
		long long n = strtoll(word + 2, &end, 0);
		if (errno || end == word + 2 || *end || n < INT32_MIN || n > INT32_MAX)
			snprintf(msg, msglen, "\"%s\": i: takes an integer from %d to %d (i8: "
				 "for larger ones)", word, INT32_MIN, INT32_MAX);
		else
			v = xmlrpc_int_new(&env, (int)n);
	} else if (strncmp(word, "i8:", 3) == 0) {
		errno = 0;
		long long n = strtoll(word + 3, &end, 0);
		if (errno || end == word + 3 || *end)
			snprintf(msg, msglen, "\"%s\": i8: takes a 64-bit integer", word);
		else
			v = xmlrpc_i8_new(&env, (xmlrpc_int64)n);
	} else if (strncmp(word, "s:", 2) == 0) {
		v = new_string(&env, word + 2, 2, msg, msglen);
	} else if (strncmp(word, "b:", 2) == 0) {
		int b;
		if (parse_bool(word + 2, &b) < 0)
			snprintf(msg, msglen, "\"%s\": b: takes true or false", word);
		else
			v = xmlrpc_bool_new(&env, b);
	} else if (strncmp(word, "d:", 2) == 0) {
		errno = 0;
		double d = strtod(word + 2, &end);
		if (errno || end == word + 2 || *end || !isfinite(d))
			snprintf(msg, msglen, "\"%s\": d: takes a finite number", word);
		else
			v = xmlrpc_double_new(&env, d);
	} else if (strcmp(word, "n:") == 0) {
		v = xmlrpc_nil_new(&env);
	} else if (strncmp(word, "j:", 2) == 0) {
		v = new_json(&env, word, msg, msglen);
		if (env.fault_occurred) {
			snprintf(msg, msglen, "\"%s\": not JSON: %s", word, env.fault_string);
			xmlrpc_env_clean(&env);
			return NULL;
		}
	} else if (word[0] == '@' && word[1]) {
		size_t len = 0;
		unsigned char *data = read_whole_file(word + 1, &len, msg, msglen);
		if (data) {
			v = xmlrpc_base64_new(&env, len, data);
			free(data);
		}
	} else {
		v = new_string(&env, word, 0, msg, msglen);
	}
	if (env.fault_occurred) {
		snprintf(msg, msglen, "\"%s\": %s", word, env.fault_string);
		v = NULL;
	}
	xmlrpc_env_clean(&env);
	return v;
}

/* ---- struct members ---- */

static xmlrpc_value *
member(xmlrpc_value *st, const char *key)
{
	xmlrpc_env env;
	xmlrpc_value *m = NULL;

	if (!st || xmlrpc_value_type(st) != XMLRPC_TYPE_STRUCT)
		return NULL;
	xmlrpc_env_init(&env);
	xmlrpc_struct_find_value(&env, st, key, &m);
	if (env.fault_occurred)
		m = NULL;
	xmlrpc_env_clean(&env);
	return m;
}

int
vactl_value_int64(xmlrpc_value *m, int64_t *out)
{
	xmlrpc_env env;
	int rc = -1;

	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(m) == XMLRPC_TYPE_INT) {
		int i = 0;
		xmlrpc_read_int(&env, m, &i);
		*out = i;
		rc = env.fault_occurred ? -1 : 0;
	} else if (xmlrpc_value_type(m) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 i = 0;
		xmlrpc_read_i8(&env, m, &i);
		*out = i;
		rc = env.fault_occurred ? -1 : 0;
	}
	xmlrpc_env_clean(&env);
	return rc;
}

int
vactl_member_int64(xmlrpc_value *st, const char *key, int64_t *out)
{
	xmlrpc_value *m = member(st, key);
	int rc;

	if (!m)
		return -1;
	rc = vactl_value_int64(m, out);
	xmlrpc_DECREF(m);
	return rc;
}

int
vactl_member_bool(xmlrpc_value *st, const char *key, int *out)
{
	xmlrpc_env env;
	xmlrpc_value *m = member(st, key);
	int rc = -1;

	if (!m)
		return -1;
	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(m) == XMLRPC_TYPE_BOOL) {
		xmlrpc_bool b = 0;
		xmlrpc_read_bool(&env, m, &b);
		*out = b ? 1 : 0;
		rc = env.fault_occurred ? -1 : 0;
	}
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(m);
	return rc;
}

int
vactl_member_double(xmlrpc_value *st, const char *key, double *out)
{
	xmlrpc_env env;
	xmlrpc_value *m = member(st, key);
	int rc = -1;

	if (!m)
		return -1;
	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(m) == XMLRPC_TYPE_DOUBLE) {
		xmlrpc_read_double(&env, m, out);
		rc = env.fault_occurred ? -1 : 0;
	}
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(m);
	if (rc < 0) {
		int64_t i;
		if (vactl_member_int64(st, key, &i) == 0) {
			*out = (double)i;
			rc = 0;
		}
	}
	return rc;
}

char *
vactl_member_string(xmlrpc_value *st, const char *key, size_t *len)
{
	xmlrpc_env env;
	xmlrpc_value *m = member(st, key);
	char *s = NULL;
	size_t n = 0;

	if (!m)
		return NULL;
	xmlrpc_env_init(&env);
	va_text_read(&env, m, &s, &n);
	if (env.fault_occurred)
		s = NULL;
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(m);
	if (s && len)
		*len = n;
	return s;
}

const char *
vactl_format_time(double t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!isfinite(t) || !localtime_r(&tt, &tm) ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%.3f", t);
	return buf;
}

/* ---- printing ---- */

/* data as one unbroken base64 word (what JSON and a reader want). */
static void
print_base64_text(FILE *f, const unsigned char *data, size_t len)
{
	/* The shared coder writes lines of VA_B64_LINE characters (whole
	 * groups of 3 bytes), each ended by "\r\n": encode a line's worth at
	 * a time and print it without the end. */
	enum { LINE_BYTES = VA_B64_LINE / 4 * 3 };
	char line[VA_B64_LINE + 2];

	for (size_t off = 0; off < len; off += LINE_BYTES) {
		size_t n = len - off < LINE_BYTES ? len - off : LINE_BYTES;
		size_t chars = va_b64_encode_lines(data + off, n, line);
		fwrite(line, 1, chars - 2, f);
	}
}

void
vactl_json_string(FILE *f, const char *s, size_t len)
{
	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				putc(c, f);
		}
	}
	putc('"', f);
}

/*
 * One scalar, as text (json 0) or as JSON (json 1).  Returns 0, or -1 if
 * v is an array or a struct.
 */
static int
print_scalar(FILE *f, xmlrpc_value *v, int json)
{
	xmlrpc_env env;
	int rc = 0;

	xmlrpc_env_init(&env);
	switch (xmlrpc_value_type(v)) {
	case XMLRPC_TYPE_INT: {
		int i = 0;
		xmlrpc_read_int(&env, v, &i);
		fprintf(f, "%d", i);
		break;
	}
	case XMLRPC_TYPE_I8: {
		xmlrpc_int64 i = 0;
		xmlrpc_read_i8(&env, v, &i);
		fprintf(f, "%" PRId64, (int64_t)i);
		break;
	}
	case XMLRPC_TYPE_BOOL: {
		xmlrpc_bool b = 0;
		xmlrpc_read_bool(&env, v, &b);
		fputs(b ? "true" : "false", f);
		break;
	}
	case XMLRPC_TYPE_DOUBLE: {
		double d = 0;
		xmlrpc_read_double(&env, v, &d);
		if (json && !isfinite(d)) {
			fputs("null", f);
		} else {
			/* The shortest form that reads back as the same number. */
			char buf[40];
			for (int prec = 15; prec <= 17; prec++) {
				snprintf(buf, sizeof(buf), "%.*g", prec, d);
				if (strtod(buf, NULL) == d)
					break;
			}
			fputs(buf, f);
		}
		break;
	}
	case XMLRPC_TYPE_STRING: {
		char *s = NULL;
		size_t len = 0;
		va_text_read(&env, v, &s, &len);
		if (env.fault_occurred)
			break;
		/* A line break would break the line-per-item layout. */
		if (json || memchr(s, '\n', len) || memchr(s, '\r', len) || len == 0)
			vactl_json_string(f, s, len);
		else
			fwrite(s, 1, len, f);
		free(s);
		break;
	}
	case XMLRPC_TYPE_BASE64: {
		const unsigned char *data = NULL;
		size_t len = 0;
		xmlrpc_read_base64(&env, v, &len, &data);
		if (env.fault_occurred)
			break;
		if (json) {
			putc('"', f);
			print_base64_text(f, data, len);
			putc('"', f);
		} else if (len <= SHOW_BASE64_MAX) {
			fputs("base64:", f);
			print_base64_text(f, data, len);
		} else {
			fprintf(f, "<%zu bytes of base64 data; --json shows them>", len);
		}
		free((void *)data);
		break;
	}
	case XMLRPC_TYPE_DATETIME: {
		const char *s = NULL;
		xmlrpc_read_datetime_str(&env, v, &s);
		if (env.fault_occurred)
			break;
		if (json)
			vactl_json_string(f, s, strlen(s));
		else
			fputs(s, f);
		free((void *)s);
		break;
	}
	case XMLRPC_TYPE_NIL:
		fputs(json ? "null" : "nil", f);
		break;
	default:
		rc = -1;
	}
	if (env.fault_occurred)
		fprintf(f, json ? "null" : "<unreadable: %s>", env.fault_string);
	xmlrpc_env_clean(&env);
	return rc;
}

void
vactl_print_json(FILE *f, xmlrpc_value *v)
{
	xmlrpc_env env;
	xmlrpc_type t = xmlrpc_value_type(v);

	xmlrpc_env_init(&env);
	if (t == XMLRPC_TYPE_ARRAY) {
		int n = xmlrpc_array_size(&env, v);
		putc('[', f);
		for (int i = 0; i < n && !env.fault_occurred; i++) {
			xmlrpc_value *item = NULL;
			xmlrpc_array_read_item(&env, v, i, &item);
			if (env.fault_occurred)
				break;
			if (i)
				fputs(", ", f);
			vactl_print_json(f, item);
			xmlrpc_DECREF(item);
		}
		putc(']', f);
	} else if (t == XMLRPC_TYPE_STRUCT) {
		int n = xmlrpc_struct_size(&env, v);
		putc('{', f);
		for (int i = 0; i < n && !env.fault_occurred; i++) {
			xmlrpc_value *key = NULL, *val = NULL;
			xmlrpc_struct_read_member(&env, v, (unsigned)i, &key, &val);
			if (env.fault_occurred)
				break;
			if (i)
				fputs(", ", f);
			print_scalar(f, key, 1);
			fputs(": ", f);
			vactl_print_json(f, val);
			xmlrpc_DECREF(key);
			xmlrpc_DECREF(val);
		}
		putc('}', f);
	} else {
		print_scalar(f, v, 1);
	}
	xmlrpc_env_clean(&env);
}

static int
is_composite(xmlrpc_value *v)
{
	xmlrpc_type t = xmlrpc_value_type(v);
	return t == XMLRPC_TYPE_ARRAY || t == XMLRPC_TYPE_STRUCT;
}

static int
composite_size(xmlrpc_value *v)
{
	xmlrpc_env env;
	int n;

	xmlrpc_env_init(&env);
	n = xmlrpc_value_type(v) == XMLRPC_TYPE_ARRAY ? xmlrpc_array_size(&env, v) :
	    xmlrpc_struct_size(&env, v);
	if (env.fault_occurred)
		n = 0;
	xmlrpc_env_clean(&env);
	return n;
}

static void print_nested(FILE *f, xmlrpc_value *v, int indent);

/* "key: value" or "key:" and the nested lines below; keys padded to width. */
static void
print_member(FILE *f, const char *key, size_t klen, int width, xmlrpc_value *val, int indent)
{
	fprintf(f, "%*s", indent, "");
	fwrite(key, 1, klen, f);
	putc(':', f);
	if (is_composite(val) && composite_size(val) > 0) {
		putc('\n', f);
		print_nested(f, val, indent + 2);
		return;
	}
	int pad = width - (int)klen + 1;
	fprintf(f, "%*s", pad > 1 ? pad : 1, "");
	if (is_composite(val))
		fputs(xmlrpc_value_type(val) == XMLRPC_TYPE_ARRAY ? "[]" : "{}", f);
	else
		print_scalar(f, val, 0);
	putc('\n', f);
}

static void
print_nested(FILE *f, xmlrpc_value *v, int indent)
{
	xmlrpc_env env;
	int n = composite_size(v);

	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_ARRAY) {
		for (int i = 0; i < n && !env.fault_occurred; i++) {
			xmlrpc_value *item = NULL;
			xmlrpc_array_read_item(&env, v, i, &item);
			if (env.fault_occurred)
				break;
			if (is_composite(item) && composite_size(item) > 0) {
				fprintf(f, "%*s-\n", indent, "");
				print_nested(f, item, indent + 2);
			} else {
				fprintf(f, "%*s- ", indent, "");
				if (is_composite(item))
					fputs(xmlrpc_value_type(item) == XMLRPC_TYPE_ARRAY ? "[]" : "{}", f);
				else
					print_scalar(f, item, 0);
				putc('\n', f);
			}
			xmlrpc_DECREF(item);
		}
	} else {
		int width = 0;
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < n && !env.fault_occurred; i++) {
				xmlrpc_value *key = NULL, *val = NULL;
				char *k = NULL;
				size_t klen = 0;
				xmlrpc_struct_read_member(&env, v, (unsigned)i, &key, &val);
				if (env.fault_occurred)
					break;
				va_text_read(&env, key, &k, &klen);
				if (!env.fault_occurred) {
					if (pass == 0 && (int)klen > width && !is_composite(val))
						width = (int)klen;
					if (pass == 1)
						print_member(f, k, klen, width, val, indent);
					free(k);
				}
				xmlrpc_DECREF(key);
				xmlrpc_DECREF(val);
			}
		}
	}
	if (env.fault_occurred)
		fprintf(f, "%*s<unreadable: %s>\n", indent, "", env.fault_string);
	xmlrpc_env_clean(&env);
}

void
vactl_print_value(FILE *f, xmlrpc_value *v)
{
	if (is_composite(v)) {
		if (composite_size(v) == 0)
			fputs(xmlrpc_value_type(v) == XMLRPC_TYPE_ARRAY ? "[]\n" : "{}\n", f);
		else
			print_nested(f, v, 0);
		return;
	}
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_STRING) {
		/* A string alone is printed as it is. */
		xmlrpc_env env;
		char *s = NULL;
		size_t len = 0;
		xmlrpc_env_init(&env);
		va_text_read(&env, v, &s, &len);
		if (!env.fault_occurred) {
			fwrite(s, 1, len, f);
			if (len == 0 || s[len - 1] != '\n')
				putc('\n', f);
			free(s);
		}
		xmlrpc_env_clean(&env);
		return;
	}
	print_scalar(f, v, 0);
	putc('\n', f);
}
