/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-accounts.c - vactl password and vactl keys: a guest user's
 * password (va.user.set_password) and SSH authorized keys
 * (va.ssh.keys.*).  The password never comes from the command line
 * (other users see it in ps): it is asked on the terminal without echo,
 * or read as the first line of standard input, and wiped after the call.
 * The user, the password and the keys are raw UTF-8 built with
 * va_text_value (vactl_callf); text XML cannot carry is refused before
 * anything is sent (exit 2, saying which).  The keys printed are raw
 * UTF-8 (va_text_read).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "text.h"
#include "vactl.h"

#define PASSWORD_MAX 4096
#define KEYS_FILE_MAX (1024 * 1024)

/* Reads one line (without its newline) from fd into buf; its length, or -1. */
static ssize_t
read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || c == '\n')
			break;
		buf[n++] = c;
	}
	if (n + 1 >= size)
		return -1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

/* Asks on the terminal with echo off; the length, or -1. */
static ssize_t
ask(int tty, const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	ssize_t n;

	if (write(tty, prompt, strlen(prompt)) < 0 || tcgetattr(tty, &old) < 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(tty, TCSAFLUSH, &quiet) < 0)
		return -1;
	n = read_line(tty, buf, size);
	tcsetattr(tty, TCSAFLUSH, &old);
	return n;
}

static int
password_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	(void)arg;
	if (opt == 'c') {
		*(int *)ctx = 1;
		return 0;
	}
	vactl_usage_error(cmd, "unexpected option -%c", opt);
	return VACTL_EXIT_USAGE;
}

int
vactl_cmd_password(struct vactl *v, int argc, char **argv)
{
	static const struct option own[] = { { "crypted", no_argument, NULL, 'c' } };
	int crypted = 0, rc;
	char pw[PASSWORD_MAX + 2], again[PASSWORD_MAX + 2];
	ssize_t n;

	rc = vactl_parse_cmd(v, argc, argv, own, 1, "c", password_option, &crypted, 0);
	if (rc)
		return rc;
	if (argc - optind != 1) {
		vactl_usage_error("password", argc - optind < 1 ? "missing the user" :
				  "too many arguments (the password is never an argument)");
		return VACTL_EXIT_USAGE;
	}
	const char *user = argv[optind];
	char why[160];
	if (vactl_text_check(user, strlen(user), why, sizeof(why)) < 0) {
		vactl_usage_error("password", "USER: %s", why);
		return VACTL_EXIT_USAGE;
	}
	if (isatty(0)) {
		char prompt[256];
		snprintf(prompt, sizeof(prompt), "%s for %s in the guest: ",
			 crypted ? "Hash" : "New password", user);
		n = ask(0, prompt, pw, sizeof(pw));
		if (n > 0 && !crypted) {
			ssize_t m = ask(0, "Again: ", again, sizeof(again));
			int same = m == n && memcmp(pw, again, (size_t)n) == 0;
			explicit_bzero(again, sizeof(again));
			if (!same) {
				explicit_bzero(pw, sizeof(pw));
				fprintf(stderr, "vactl: password: the two do not match; nothing changed\n");
				return VACTL_EXIT_FAULT;
			}
		}
	} else {
		n = read_line(0, pw, sizeof(pw));
	}
	if (n <= 0) {
		explicit_bzero(pw, sizeof(pw));
		fprintf(stderr, "vactl: password: %s\n", n == 0 ? "empty password: nothing changed" :
			"cannot read the password (at most " VACTL_STR(PASSWORD_MAX) " bytes)");
		return VACTL_EXIT_FAULT;
	}
	/* Said here, without the password, rather than by the agent. */
	if (vactl_text_check(pw, (size_t)n, why, sizeof(why)) < 0) {
		explicit_bzero(pw, sizeof(pw));
		vactl_usage_error("password", "the password: %s (it is UTF-8 text that XML can "
				  "carry)", why);
		return VACTL_EXIT_USAGE;
	}
	if ((rc = vactl_setup(v)) || (rc = vactl_connect(v))) {
		explicit_bzero(pw, sizeof(pw));
		return rc;
	}
	struct vactl_error err = { 0 };
	xmlrpc_value *res = crypted ?
		vactl_callf(v, &err, "va.user.set_password", "(ssb)", user, pw, (xmlrpc_bool)1) :
		vactl_callf(v, &err, "va.user.set_password", "(ss)", user, pw);
	explicit_bzero(pw, sizeof(pw));
	if (!res)
		return vactl_report(v, "password", &err);
	xmlrpc_DECREF(res);
	printf("the password of %s in the guest is set\n", user);
	return 0;
}

/* Appends the key lines of path ("-": stdin) to arr. */
static int
add_key_file(xmlrpc_value *arr, const char *path)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	struct va_buf b = { 0 };
	int rc = 0;

	if (fd < 0) {
		fprintf(stderr, "vactl: keys: %s: %s\n", path, strerror(errno));
		return VACTL_EXIT_FAULT;
	}
	for (;;) {
		if (va_buf_reserve(&b, 65536) < 0) {
			fprintf(stderr, "vactl: keys: out of memory\n");
			rc = VACTL_EXIT_FAULT;
			break;
		}
		ssize_t r = read(fd, b.data + b.len, b.cap - b.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0) {
				fprintf(stderr, "vactl: keys: %s: %s\n", path, strerror(errno));
				rc = VACTL_EXIT_FAULT;
			}
			break;
		}
		b.len += (size_t)r;
		if (b.len > KEYS_FILE_MAX) {
			fprintf(stderr, "vactl: keys: %s is larger than 1 MiB\n", path);
			rc = VACTL_EXIT_FAULT;
			break;
		}
	}
	if (fd > 0)
		close(fd);
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	unsigned lineno = 0;
	for (size_t pos = 0; rc == 0 && pos < b.len && !env.fault_occurred;) {
		char *line = (char *)b.data + pos;
		char *nl = memchr(line, '\n', b.len - pos);
		size_t len = nl ? (size_t)(nl - line) : b.len - pos;
		pos += len + (nl ? 1 : 0);
		lineno++;
		while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
			len--;
		size_t lead = 0;
		while (lead < len && (line[lead] == ' ' || line[lead] == '\t'))
			lead++;
		if (lead >= len || line[lead] == '#')
			continue;
		char why[160];
		if (vactl_text_check(line, len, why, sizeof(why)) < 0) {
			vactl_usage_error("keys", "%s, line %u: %s", path, lineno, why);
			rc = VACTL_EXIT_USAGE;
			break;
		}
		xmlrpc_value *s = va_text_value(&env, line, len);
		if (!env.fault_occurred) {
			xmlrpc_array_append_item(&env, arr, s);
			xmlrpc_DECREF(s);
		}
	}
	if (env.fault_occurred) {
		fprintf(stderr, "vactl: keys: %s: %s\n", path, env.fault_string);
		rc = VACTL_EXIT_FAULT;
	}
	xmlrpc_env_clean(&env);
	va_buf_free(&b);
	return rc;
}

static int
no_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	(void)ctx;
	(void)arg;
	vactl_usage_error(cmd, "unexpected option -%c", opt);
	return VACTL_EXIT_USAGE;
}

int
vactl_cmd_keys(struct vactl *v, int argc, char **argv)
{
	static const char *const subs[] = { "get", "add", "remove", "set" };
	struct vactl_error err = { 0 };
	int rc = vactl_parse_cmd(v, argc, argv, NULL, 0, "", no_option, NULL, 0);
	int sub = -1;

	if (rc)
		return rc;
	for (int i = 0; optind < argc && i < 4; i++)
		if (strcmp(argv[optind], subs[i]) == 0)
			sub = i;
	if (sub < 0 || argc - optind < 2 || (sub == 0 && argc - optind != 2) ||
	    (sub > 0 && argc - optind < 3)) {
		vactl_usage_error("keys", "expected get USER, or add|remove|set USER FILE...");
		return VACTL_EXIT_USAGE;
	}
	const char *user = argv[optind + 1];
	char why[160];
	if (vactl_text_check(user, strlen(user), why, sizeof(why)) < 0) {
		vactl_usage_error("keys", "USER: %s", why);
		return VACTL_EXIT_USAGE;
	}
	char method[32];
	snprintf(method, sizeof(method), "va.ssh.keys.%s", subs[sub]);
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *keys = xmlrpc_array_new(&env);
	xmlrpc_env_clean(&env);
	if (!keys)
		return VACTL_EXIT_FAULT;
	for (int i = optind + 2; i < argc && rc == 0; i++)
		rc = add_key_file(keys, argv[i]);
	if (rc == 0)
		rc = vactl_setup(v);
	if (rc == 0)
		rc = vactl_connect(v);
	if (rc) {
		xmlrpc_DECREF(keys);
		return rc;
	}
	xmlrpc_value *res = sub == 0 ? vactl_callf(v, &err, method, "(s)", user) :
		vactl_callf(v, &err, method, "(sA)", user, keys);
	xmlrpc_DECREF(keys);
	if (!res)
		return vactl_report(v, "keys", &err);
	if (v->json) {
		vactl_print_json(stdout, res);
		putchar('\n');
	} else {
		xmlrpc_env_init(&env);
		int n = xmlrpc_array_size(&env, res);
		for (int i = 0; i < n && !env.fault_occurred; i++) {
			xmlrpc_value *k = NULL;
			char *s = NULL;
			size_t len = 0;
			xmlrpc_array_read_item(&env, res, i, &k);
			if (!env.fault_occurred)
				va_text_read(&env, k, &s, &len);
			if (!env.fault_occurred) {
				fwrite(s, 1, len, stdout);
				putchar('\n');
			}
			free(s);
			if (k)
				xmlrpc_DECREF(k);
		}
		xmlrpc_env_clean(&env);
	}
	xmlrpc_DECREF(res);
	return 0;
}
