/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int
va_conf_str(const struct va_conf_spec *spec, char **dst, const char *val)
{
	char *p = strdup(val);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", spec->prog);
		return -1;
	}
	free(*dst);
	*dst = p;
	return 0;
}

int
va_conf_uint(const char *val, unsigned long long min, unsigned long long max,
	     unsigned long long *out)
{
	char *end;

	if (!val || !*val || *val == '-' || *val == '+' || *val == ' ')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(val, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
va_conf_flag(const struct va_conf_spec *spec, const char *val, const char *key,
	     const char *where, int *out)
{
	if (!val || !strcmp(val, "yes") || !strcmp(val, "true") || !strcmp(val, "1"))
		*out = 1;
	else if (!strcmp(val, "no") || !strcmp(val, "false") || !strcmp(val, "0"))
		*out = 0;
	else {
		fprintf(stderr, "%s: %s%s: expected yes or no, not \"%s\"\n", spec->prog, where,
			key, val);
		return -1;
	}
	return 0;
}

static char *
trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
va_conf_read_file(const struct va_conf_spec *spec, void *cfg, const char *path,
		  int must_exist)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: config file %s: %s\n", spec->prog, path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		char where[PATH_MAX + 32];
		lineno++;
		snprintf(where, sizeof(where), "%s:%d: ", path, lineno);
		char *s = trim(line);
		if (*s == '#' || *s == '\0')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "%s: %sexpected \"key = value\"\n", spec->prog, where);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		const struct option *o;
		for (o = spec->opts; o->name; o++)
			if (!strcmp(o->name, key))
				break;
		if (!o->name || o->val == 'f' || o->val == 'h' || o->val == 'V') {
			fprintf(stderr, "%s: %sunknown setting \"%s\"\n", spec->prog, where, key);
			rc = -1;
			break;
		}
		if (spec->apply(cfg, o->val, val, where) < 0) {
			rc = -1;
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static int
is_flag(const struct va_conf_spec *spec, int opt)
{
	for (const struct option *o = spec->opts; o->name; o++)
		if (o->val == opt)
			return o->has_arg == no_argument;
	return 0;
}

enum va_conf_result
va_conf_load(const struct va_conf_spec *spec, void *cfg, int argc, char **argv)
{
	const char *file = NULL;
	int explicit_file = 0, opt;

	/* First pass: --help, --version and --config only. */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, spec->short_opts, spec->opts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(spec->usage, stdout);
			return VA_CONF_EXIT_OK;
		}
		if (opt == 'V') {
			printf("%s (virtagent) %s\n", spec->prog, PACKAGE_VERSION);
			return VA_CONF_EXIT_OK;
		}
		if (opt == 'f') {
			file = optarg;
			explicit_file = 1;
		}
	}
	if (!file)
		file = spec->default_file;
	if (spec->apply(cfg, 'f', file, "") < 0 ||
	    va_conf_read_file(spec, cfg, file, explicit_file) < 0)
		return VA_CONF_ERROR;

	/* Second pass: the command line wins; its repeatable options
	 * replace the file's. */
	char replaced[256] = { 0 };
	optind = 0;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, spec->short_opts, spec->opts, NULL)) != -1) {
		if (opt == '?') {
			fprintf(stderr, "Try '%s --help'.\n", spec->prog);
			return VA_CONF_ERROR;
		}
		if (opt > 0 && opt < 256 && spec->replaces && strchr(spec->replaces, opt) &&
		    !replaced[opt]++ && spec->reset)
			spec->reset(cfg, opt);
		if (spec->apply(cfg, opt, is_flag(spec, opt) ? NULL : optarg, "") < 0)
			return VA_CONF_ERROR;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\nTry '%s --help'.\n", spec->prog,
			argv[optind], spec->prog);
		return VA_CONF_ERROR;
	}
	return VA_CONF_OK;
}
