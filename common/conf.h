/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf.h - settings from defaults, a config file and the command line,
 * in that order (the command line wins), for both daemons.
 *
 * The config file has "key = value" lines; '#' starts a comment; keys
 * are the long option names without "--" (not config, help, version).
 * A flag (an option without an argument) takes yes/no, true/false or
 * 1/0 in the file.  Errors name the file and line.
 *
 * The program supplies its getopt_long table and one apply function;
 * this file does the rest: --help and --version, --config FILE (or the
 * default file when it exists), the file, then the command line.  An
 * option listed in 'replaces' (a repeatable one: guests, listeners, file
 * roots) given on the command line replaces what the file gave: the
 * program's reset function runs before its first command-line use.
 */
#ifndef VA_CONF_H
#define VA_CONF_H

#include <getopt.h>

enum va_conf_result {
	VA_CONF_OK,
	VA_CONF_EXIT_OK, /* --help or --version printed */
	VA_CONF_ERROR,   /* the reason printed on stderr */
};

struct va_conf_spec {
	const char *prog;          /* "va-agent": prefixes every message */
	const char *usage;         /* the --help text */
	const struct option *opts; /* with 'f' config, 'h' help, 'V' version */
	const char *short_opts;
	const char *default_file;  /* read when it exists and no --config is given */
	const char *replaces;      /* option values (chars) that the command line replaces */
	/*
	 * Applies one setting.  val is NULL for a flag given on the command
	 * line; where is "" or "FILE:LINE: " for messages.  Returns 0, or -1
	 * after printing why on stderr.
	 */
	int (*apply)(void *cfg, int opt, const char *val, const char *where);
	/* Forgets the file's values of a 'replaces' option. */
	void (*reset)(void *cfg, int opt);
};

/*
 * Loads the settings into cfg (already holding the defaults).  The path
 * of the file read (or that would have been) is applied as option 'f'
 * before anything else, so the program can keep it.
 */
enum va_conf_result va_conf_load(const struct va_conf_spec *spec, void *cfg,
				 int argc, char **argv);
/*
 * Reads one file of settings into cfg.  A missing file is fine unless
 * must_exist.  Returns 0 or -1 (reason on stderr).
 */
int va_conf_read_file(const struct va_conf_spec *spec, void *cfg, const char *path,
		      int must_exist);

/* A flag's value: NULL (given on the command line), yes/true/1, no/false/0. */
int va_conf_flag(const struct va_conf_spec *spec, const char *val, const char *key,
		 const char *where, int *out);
/* A decimal number within [min, max]; -1 for anything else (no message). */
int va_conf_uint(const char *val, unsigned long long min, unsigned long long max,
		 unsigned long long *out);
/* Replaces *dst with a copy of val; -1 (message) when out of memory. */
int va_conf_str(const struct va_conf_spec *spec, char **dst, const char *val);

#endif
