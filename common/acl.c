/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

struct entry {
	char *name;  /* exact name, or the prefix with its final '.' */
	size_t len;
	int prefix;
};

struct va_acl {
	struct entry *e;
	size_t n;
};

static int
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

static int
is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void
va_acl_free(va_acl *acl)
{
	if (!acl)
		return;
	for (size_t i = 0; i < acl->n; i++)
		free(acl->e[i].name);
	free(acl->e);
	free(acl);
}

/* Checks one entry's syntax: 0, or -1 with why. */
static int
entry_syntax(const char *p, size_t n, int *prefix, const char **why)
{
	*prefix = n >= 2 && p[n - 1] == '*' && p[n - 2] == '.';
	size_t body = *prefix ? n - 1 : n; /* the prefix keeps its '.' */
	if (n > VA_ACL_MAX_NAME) {
		*why = "longer than a method name may be";
		return -1;
	}
	if (body == 0 || (*prefix && body == 1)) {
		*why = "a wildcard needs a prefix (\"va.file.*\")";
		return -1;
	}
	for (size_t i = 0; i < body; i++) {
		if (!name_char(p[i])) {
			*why = p[i] == '*' ? "'*' only as the last part, after a '.' (\"va.file.*\")"
					   : "not a method name (letters, digits, '_', '-', '.')";
			return -1;
		}
		if (p[i] == '.' && (i == 0 || p[i - 1] == '.') ) {
			*why = "an empty part between dots";
			return -1;
		}
	}
	if (!*prefix && p[body - 1] == '.') {
		*why = "ends with '.' (for every method under it, write \"NAME.*\")";
		return -1;
	}
	return 0;
}

va_acl *
va_acl_parse(const char *list, va_acl_known_fn *known, void *opaque, char *err, size_t errlen)
{
	va_acl *acl = calloc(1, sizeof(*acl));
	const char *p = list ? list : "";

	if (!acl) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (;;) {
		while (*p && is_sep(*p))
			p++;
		if (!*p)
			break;
		size_t n = 0;
		while (p[n] && !is_sep(p[n]))
			n++;
		int prefix;
		const char *why;
		if (entry_syntax(p, n, &prefix, &why) < 0) {
			snprintf(err, errlen, "\"%.*s\": %s", (int)(n > 64 ? 64 : n), p, why);
			goto fail;
		}
		if (acl->n == VA_ACL_MAX_ENTRIES) {
			snprintf(err, errlen, "more than %d entries", VA_ACL_MAX_ENTRIES);
			goto fail;
		}
		struct entry *e = realloc(acl->e, (acl->n + 1) * sizeof(*e));
		if (!e) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		acl->e = e;
		e = &acl->e[acl->n];
		e->len = prefix ? n - 1 : n;
		e->prefix = prefix;
		e->name = strndup(p, e->len);
		if (!e->name) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		acl->n++;
		if (known && !known(e->name, prefix, opaque)) {
			snprintf(err, errlen, "\"%.*s\": %s", (int)n, p,
				 prefix ? "no method has that prefix" : "no such method");
			goto fail;
		}
		p += n;
	}
	return acl;
fail:
	va_acl_free(acl);
	return NULL;
}

size_t
va_acl_count(const va_acl *acl)
{
	return acl ? acl->n : 0;
}

int
va_acl_match(const va_acl *acl, const char *name)
{
	if (!acl)
		return 0;
	for (size_t i = 0; i < acl->n; i++) {
		const struct entry *e = &acl->e[i];
		if (e->prefix ? strncmp(name, e->name, e->len) == 0 && name[e->len]
			      : strcmp(name, e->name) == 0)
			return 1;
	}
	return 0;
}

void
va_acl_describe(const va_acl *acl, char *out, size_t outlen)
{
	size_t at = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; acl && i < acl->n; i++) {
		int w = snprintf(out + at, outlen - at, "%s%s%s", i ? ", " : "", acl->e[i].name,
				 acl->e[i].prefix ? "*" : "");
		if (w < 0 || (size_t)w >= outlen - at) {
			if (outlen >= 4)
				memcpy(out + outlen - 4, "...", 4);
			return;
		}
		at += (size_t)w;
	}
}

int
va_acl_known_in_table(const char *name, int prefix, void *opaque)
{
	const char *const *t = opaque;
	size_t n = strlen(name);

	for (size_t i = 0; t && t[i]; i++)
		if (prefix ? strncmp(t[i], name, n) == 0 : strcmp(t[i], name) == 0)
			return 1;
	return 0;
}
