/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl - the command-line client of va-proxy: asks a guest agent
 * questions, copies files in and out, sets and reads the clipboards,
 * follows the proxy's events, and calls any method.
 *
 * Exit codes: 0 success; 1 a fault from the guest or the proxy (or a
 * failed transfer), its message printed; 2 a bad command line; 3 the
 * proxy cannot be reached or used (connection refused, HTTP errors such
 * as 401, no answer within --timeout, an answer that is not XML-RPC).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "text.h"
#include "vactl.h"

/* Longest text "clipboard set -" reads (the agent's cap is 1 MiB). */
#define CLIP_STDIN_MAX (1024u * 1024)
/* Seconds one proxy.events long poll waits, by default. */
#define EVENTS_WAIT_DEFAULT_S 30
/* Seconds between attempts when events --follow lost the proxy. */
#define EVENTS_RETRY_S 2
/* Returned by parse_cmd when --help was printed. */
#define HELP_PRINTED 100

static const char usage_text[] =
	"usage: vactl [OPTION]... COMMAND [ARG]...\n"
	"The virtagent command-line client: talks to a guest agent through va-proxy.\n"
	"\n"
	"Commands:\n"
	"  ping                        check that the guest agent answers\n"
	"  info                        the guest's host name, OS, kernel, uptime, clock\n"
	"  capabilities                the agent's version, protocol and methods\n"
	"  status                      the proxy's view of the guest's link\n"
	"  shutdown [--mode M] [--delay S]   halt, power down or reboot the guest\n"
	"  dmesg [--max BYTES]         the tail of the guest's kernel log\n"
	"  clipboard get               the guest agent's clipboard\n"
	"  clipboard set TEXT|-        put TEXT (or standard input) on it\n"
	"  clipboard guest             what the guest copied last (kept by the proxy)\n"
	"  events [--follow]           the proxy's events (hello, clipboard, shutdown...)\n"
	"  push LOCAL REMOTE           copy a file to the guest\n"
	"  pull REMOTE LOCAL           copy a file from the guest\n"
	"  stat REMOTE                 size, type, mode and time of a guest file\n"
	"  exec [OPTION]... -- CMD [ARG]...  run CMD in the guest, stdin/stdout/stderr\n"
	"                              connected live; exits with CMD's status\n"
	"  password [--crypted] USER   set a guest user's password (read from the terminal\n"
	"                              or the first line of standard input)\n"
	"  keys get|add|remove|set USER [FILE]...  a guest user's SSH authorized keys\n"
	"  call METHOD [ARG]...        call any method; ARG is i:42, i8:42, s:text,\n"
	"                              b:true, d:1.5, n:, j:JSON, @FILE (base64), or text\n"
	"The guest's operations:\n"
	"  net [interfaces|routes]     interfaces with addresses and counters; routes\n"
	"  time [get|set NS|now|rtc]   the guest's clock; set it (opt-in in the agent)\n"
	"  timezone, os, hostname      the time zone; os-release and kernel; host name\n"
	"  users                       who is logged in\n"
	"  fs [info|freeze|thaw|status|trim] [MOUNT]...  filesystems and their disks;\n"
	"                              freeze and thaw them; discard unused blocks\n"
	"  disks                       disks with serial, bus and PCI address\n"
	"  cpu [list|set N on|off]     CPUs; take one offline or bring it online\n"
	"  stats                       load, CPU times, memory, disk I/O\n"
	"\n"
	"Options (also accepted after the command):\n"
	"  -u, --url URL        the proxy: http://[USER:SECRET@]HOST:PORT/RPC2 or\n"
	"                       unix:PATH (default $VA_URL, else " VA_PROXY_DEFAULT_URL ")\n"
	"  -g, --guest NAME     the guest, when the proxy serves several (URL/NAME)\n"
	"  -t, --timeout S      seconds to wait for each answer (default "
	VACTL_STR(VACTL_DEFAULT_TIMEOUT_S) "; 0: forever)\n"
	"  -j, --json           print results as JSON\n"
	"  -a, --auth-file FILE the proxy's secret (default " VA_PROXY_DEFAULT_AUTH_FILE ",\n"
	"                       when readable)\n"
	"  -v, --verbose        say more (fault codes)\n"
	"  -h, --help           this help; COMMAND --help for a command's\n"
	"  -V, --version        print the version\n"
	"\n"
	"Exit status: 0 success, 1 a fault from the guest or the proxy, 2 usage,\n"
	"3 the proxy cannot be reached.\n";

/* ---- helpers shared with vactl-transfer.c ---- */

static void
on_signal(int sig)
{
	(void)sig;
	vactl_interrupted = 1;
}

void
vactl_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

void
vactl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vactl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vactl %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
}

int
vactl_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
vactl_parse_size(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	else if (*end == 'g' || *end == 'G')
		shift = 30;
	if (shift) {
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* ---- option parsing ---- */

enum {
	OPT_URL = 'u',
	OPT_GUEST = 'g',
	OPT_TIMEOUT = 't',
	OPT_JSON = 'j',
	OPT_AUTH_FILE = 'a',
	OPT_VERBOSE = 'v',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
};

static const struct option common_opts[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "guest", required_argument, NULL, OPT_GUEST },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "auth-file", required_argument, NULL, OPT_AUTH_FILE },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
};
#define NCOMMON (sizeof(common_opts) / sizeof(common_opts[0]))
static const char common_short[] = "u:g:t:ja:vh";

/* Applies a common option; returns 0, or an exit code. */
static int
common_option(struct vactl *v, const char *cmd, int opt, const char *arg)
{
	unsigned long n;

	switch (opt) {
	case OPT_URL:
		v->url_opt = arg;
		return 0;
	case OPT_GUEST:
		v->guest = arg;
		return 0;
	case OPT_TIMEOUT:
		if (vactl_parse_ulong(arg, 0, 86400, &n) < 0) {
			vactl_usage_error(cmd, "--timeout: \"%s\" is not a number of seconds "
					  "(0 to 86400)", arg);
			return VACTL_EXIT_USAGE;
		}
		v->timeout_s = (unsigned)n;
		return 0;
	case OPT_JSON:
		v->json = 1;
		return 0;
	case OPT_AUTH_FILE:
		v->auth_file = arg;
		return 0;
	case OPT_VERBOSE:
		v->verbose = 1;
		return 0;
	}
	return VACTL_EXIT_USAGE;
}

typedef int cmd_option_fn(void *ctx, const char *cmd, int opt, const char *arg);

static const struct vactl_command *find_command(const char *name);

static void
print_command_help(const struct vactl_command *c)
{
	printf("usage: vactl [OPTION]... %s", c->usage);
	printf("\nCommon options: --url URL, --guest NAME, --timeout S, --json, "
	       "--auth-file FILE,\n--verbose (see vactl --help).\n");
}

/*
 * Parses a command's options: its own (own/own_short, handled by fn)
 * and the common ones.  in_order: stop at the first argument (call).
 * Returns 0 (arguments from optind), HELP_PRINTED, or an exit code.
 */
static int
parse_cmd(struct vactl *v, int argc, char **argv, const struct option *own, size_t nown,
	  const char *own_short, cmd_option_fn *fn, void *ctx, int in_order)
{
	struct option opts[24];
	char shorts[64];
	const char *cmd = argv[0];
	const struct vactl_command *c = find_command(cmd);
	int opt;

	if (nown + NCOMMON + 1 > sizeof(opts) / sizeof(opts[0]))
		return VACTL_EXIT_USAGE;
	if (nown)
		memcpy(opts, own, nown * sizeof(*own));
	memcpy(opts + nown, common_opts, sizeof(common_opts));
	memset(&opts[nown + NCOMMON], 0, sizeof(opts[0]));
	snprintf(shorts, sizeof(shorts), "%s%s%s", in_order ? "+" : "", own_short, common_short);

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (opt == '?' || opt == ':') {
			if (optopt)
				vactl_usage_error(cmd, "option -%c: %s", optopt,
						  strchr(shorts, optopt) ? "needs a value" :
						  "unknown option");
			else
				vactl_usage_error(cmd, "unknown option or missing value: %s",
						  argv[optind - 1]);
			return VACTL_EXIT_USAGE;
		}
		if (opt == OPT_HELP) {
			if (c)
				print_command_help(c);
			return HELP_PRINTED;
		}
		int r = strchr(common_short, opt) && !(own_short && strchr(own_short, opt)) ?
			common_option(v, cmd, opt, optarg) : fn(ctx, cmd, opt, optarg);
		if (r)
			return r;
	}
	return 0;
}

int
vactl_parse_cmd(struct vactl *v, int argc, char **argv, const struct option *own, size_t nown,
		const char *own_short, int (*fn)(void *ctx, const char *cmd, int opt, const char *arg),
		void *ctx, int in_order)
{
	return parse_cmd(v, argc, argv, own, nown, own_short, fn, ctx, in_order);
}

static int
no_own_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	(void)ctx;
	(void)arg;
	vactl_usage_error(cmd, "unexpected option -%c", opt);
	return VACTL_EXIT_USAGE;
}

/* Checks the number of arguments left; returns 0 or VACTL_EXIT_USAGE. */
static int
want_args(const char *cmd, int have, int min, int max)
{
	if (have < min) {
		vactl_usage_error(cmd, "missing argument");
		return VACTL_EXIT_USAGE;
	}
	if (max >= 0 && have > max) {
		vactl_usage_error(cmd, "too many arguments");
		return VACTL_EXIT_USAGE;
	}
	return 0;
}

/* Parses options and arguments of a command that has none of its own. */
static int
simple_cmd(struct vactl *v, int argc, char **argv, int min, int max)
{
	int r = parse_cmd(v, argc, argv, NULL, 0, "", no_own_option, NULL, 0);
	if (r)
		return r;
	return want_args(argv[0], argc - optind, min, max);
}

/* Sets the connection up (after the options are known). */
static int
ready(struct vactl *v)
{
	int r = vactl_setup(v);
	if (r)
		return r;
	return vactl_connect(v);
}

/* What the commands of vactl-guest.c use (vactl.h). */
int
vactl_simple_cmd(struct vactl *v, int argc, char **argv, int min, int max)
{
	return simple_cmd(v, argc, argv, min, max);
}

int
vactl_ready(struct vactl *v)
{
	return ready(v);
}

static xmlrpc_value *
empty_params(void)
{
	xmlrpc_env env;
	xmlrpc_value *a;

	xmlrpc_env_init(&env);
	a = xmlrpc_array_new(&env);
	if (env.fault_occurred)
		a = NULL;
	xmlrpc_env_clean(&env);
	return a;
}

/* Calls method with no parameters; NULL after reporting (exit code in *rc). */
static xmlrpc_value *
call0(struct vactl *v, const char *what, const char *method, int *rc)
{
	struct vactl_error err = { 0 };
	xmlrpc_value *p = empty_params(), *res;

	if (!p) {
		fprintf(stderr, "vactl: out of memory\n");
		*rc = VACTL_EXIT_FAULT;
		return NULL;
	}
	res = vactl_call(v, method, p, &err);
	xmlrpc_DECREF(p);
	if (!res)
		*rc = vactl_report(v, what, &err);
	return res;
}

static void
print_result(struct vactl *v, xmlrpc_value *res)
{
	if (v->json) {
		vactl_print_json(stdout, res);
		putchar('\n');
	} else {
		vactl_print_value(stdout, res);
	}
}

void
vactl_print_result(struct vactl *v, xmlrpc_value *res)
{
	print_result(v, res);
}

static double
now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* ---- commands ---- */

static int
cmd_ping(struct vactl *v, int argc, char **argv)
{
	int rc = simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = ready(v)))
		return rc;
	double t0 = now_s();
	xmlrpc_value *res = call0(v, "ping", "va.ping", &rc);
	if (!res)
		return rc;
	double ms = (now_s() - t0) * 1000.0;
	if (v->json)
		print_result(v, res);
	else
		printf("the guest agent answered in %.1f ms\n", ms);
	xmlrpc_DECREF(res);
	return 0;
}

static void
print_duration(int64_t s)
{
	if (s >= 86400)
		printf("%" PRId64 " d ", s / 86400);
	printf("%02d:%02d:%02d (%" PRId64 " s)", (int)(s % 86400 / 3600), (int)(s % 3600 / 60),
	       (int)(s % 60), s);
}

static void
print_string_member(const char *label, xmlrpc_value *st, const char *key)
{
	char *s = vactl_member_string(st, key, NULL);
	printf("%-14s %s\n", label, s ? s : "?");
	free(s);
}

static int
cmd_info(struct vactl *v, int argc, char **argv)
{
	int rc = simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = ready(v)))
		return rc;
	xmlrpc_value *res = call0(v, "info", "va.info", &rc);
	if (!res)
		return rc;
	if (v->json) {
		print_result(v, res);
	} else {
		int64_t up = 0, t = 0;
		char buf[64];
		print_string_member("hostname:", res, "hostname");
		print_string_member("os:", res, "os");
		print_string_member("kernel:", res, "kernel");
		print_string_member("arch:", res, "arch");
		printf("%-14s ", "uptime:");
		if (vactl_member_int64(res, "uptime", &up) == 0)
			print_duration(up);
		else
			printf("?");
		printf("\n%-14s ", "guest time:");
		if (vactl_member_int64(res, "time", &t) == 0) {
			/* The guest sends whole seconds: within 1 s is the same clock. */
			long off = lround((double)t - now_s());
			vactl_format_time((double)t, buf, sizeof(buf));
			if (off >= -1 && off <= 1)
				printf("%s (the host's clock agrees)", buf);
			else
				printf("%s (%+ld s from the host's clock)", buf, off);
		} else {
			printf("?");
		}
		printf("\n");
		print_string_member("agent version:", res, "agent_version");
	}
	xmlrpc_DECREF(res);
	return 0;
}

static int
cmd_capabilities(struct vactl *v, int argc, char **argv)
{
	int rc = simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = ready(v)))
		return rc;
	xmlrpc_value *res = call0(v, "capabilities", "va.capabilities", &rc);
	if (!res)
		return rc;
	print_result(v, res);
	xmlrpc_DECREF(res);
	return 0;
}

static int
cmd_status(struct vactl *v, int argc, char **argv)
{
	int rc = simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = ready(v)))
		return rc;
	xmlrpc_value *res = call0(v, "status", "proxy.status", &rc);
	if (!res)
		return rc;
	print_result(v, res);
	xmlrpc_DECREF(res);
	return 0;
}

struct shutdown_opts {
	const char *mode;
	unsigned long delay;
};

static int
shutdown_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	struct shutdown_opts *o = ctx;

	if (opt == 'm') {
		if (strcmp(arg, "halt") && strcmp(arg, "powerdown") && strcmp(arg, "reboot")) {
			vactl_usage_error(cmd, "--mode: \"%s\" is not halt, powerdown or reboot", arg);
			return VACTL_EXIT_USAGE;
		}
		o->mode = arg;
		return 0;
	}
	if (opt == 'd') {
		if (vactl_parse_ulong(arg, 0, 3600, &o->delay) < 0) {
			vactl_usage_error(cmd, "--delay: \"%s\" is not a number of seconds "
					  "(0 to 3600)", arg);
			return VACTL_EXIT_USAGE;
		}
		return 0;
	}
	return no_own_option(ctx, cmd, opt, arg);
}

static int
cmd_shutdown(struct vactl *v, int argc, char **argv)
{
	static const struct option own[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "delay", required_argument, NULL, 'd' },
	};
	struct shutdown_opts o = { "powerdown", 0 };
	struct vactl_error err = { 0 };
	int rc = parse_cmd(v, argc, argv, own, 2, "m:d:", shutdown_option, &o, 0);

	if (rc || (rc = want_args(argv[0], argc - optind, 0, 0)) || (rc = ready(v)))
		return rc;
	xmlrpc_value *res = vactl_callf(v, &err, "va.shutdown", "(si)", o.mode, (int)o.delay);
	if (!res)
		return vactl_report(v, "shutdown", &err);
	if (v->json)
		print_result(v, res);
	else if (o.delay)
		printf("the guest agent will %s the guest in %lu s\n", o.mode, o.delay);
	else
		printf("the guest agent is going to %s the guest now\n", o.mode);
	xmlrpc_DECREF(res);
	return 0;
}

static int
dmesg_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	uint64_t *max = ctx;

	if (opt == 'm') {
		if (vactl_parse_size(arg, max) < 0 || *max == 0 || *max > INT32_MAX) {
			vactl_usage_error(cmd, "--max: \"%s\" is not a positive number of bytes", arg);
			return VACTL_EXIT_USAGE;
		}
		return 0;
	}
	return no_own_option(ctx, cmd, opt, arg);
}

/* Prints a string result as it is (raw UTF-8, no newline added), or as JSON. */
static void
print_text(struct vactl *v, xmlrpc_value *res, const char *key)
{
	xmlrpc_env env;
	char *s = NULL;
	size_t len = 0;

	if (v->json) {
		print_result(v, res);
		return;
	}
	xmlrpc_env_init(&env);
	if (key) {
		s = vactl_member_string(res, key, &len);
	} else {
		va_text_read(&env, res, &s, &len);
		if (env.fault_occurred)
			s = NULL;
	}
	if (s)
		fwrite(s, 1, len, stdout);
	free(s);
	xmlrpc_env_clean(&env);
}

static int
cmd_dmesg(struct vactl *v, int argc, char **argv)
{
	static const struct option own[] = {
		{ "max", required_argument, NULL, 'm' },
	};
	uint64_t max = 0;
	struct vactl_error err = { 0 };
	xmlrpc_value *res;
	int rc = parse_cmd(v, argc, argv, own, 1, "m:", dmesg_option, &max, 0);

	if (rc || (rc = want_args(argv[0], argc - optind, 0, 0)) || (rc = ready(v)))
		return rc;
	if (max)
		res = vactl_callf(v, &err, "va.dmesg", "(i)", (int)max);
	else
		res = vactl_callf(v, &err, "va.dmesg", "()");
	if (!res)
		return vactl_report(v, "dmesg", &err);
	print_text(v, res, NULL);
	xmlrpc_DECREF(res);
	return 0;
}

/* Reads all of standard input, at most max bytes; NULL with *too_big or errno. */
static char *
read_stdin(size_t max, size_t *len, int *too_big)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);

	*too_big = 0;
	while (buf) {
		if (n == cap) {
			if (cap > max)
				break;
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(0, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (r == 0) {
			if (n > max)
				break;
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		n += (size_t)r;
	}
	if (buf && n > max)
		*too_big = 1;
	free(buf);
	return NULL;
}

static int
cmd_clipboard(struct vactl *v, int argc, char **argv)
{
	struct vactl_error err = { 0 };
	xmlrpc_value *res = NULL;
	int rc = parse_cmd(v, argc, argv, NULL, 0, "", no_own_option, NULL, 0);

	if (rc)
		return rc;
	const char *sub = optind < argc ? argv[optind] : NULL;
	int nargs = argc - optind - 1;
	if (!sub) {
		vactl_usage_error("clipboard", "missing subcommand: get, set or guest");
		return VACTL_EXIT_USAGE;
	}
	if (!strcmp(sub, "get") || !strcmp(sub, "guest")) {
		if ((rc = want_args("clipboard", nargs, 0, 0)) || (rc = ready(v)))
			return rc;
		int guest = !strcmp(sub, "guest");
		res = call0(v, guest ? "clipboard guest" : "clipboard get",
			    guest ? "proxy.clipboard.get" : "va.clipboard.get", &rc);
		if (!res)
			return rc;
		int64_t serial = -1;
		if (!v->json && vactl_member_int64(res, "serial", &serial) == 0 && serial == 0)
			fprintf(stderr, "vactl: %s\n", guest ? "the guest has not copied anything yet" :
				"the guest agent's clipboard is empty");
		print_text(v, res, "text");
		xmlrpc_DECREF(res);
		return 0;
	}
	if (!strcmp(sub, "set")) {
		if ((rc = want_args("clipboard", nargs, 1, 1)))
			return rc;
		const char *text = argv[optind + 1];
		char *input = NULL;
		size_t len = strlen(text);
		if (!strcmp(text, "-")) {
			int too_big = 0;
			input = read_stdin(CLIP_STDIN_MAX, &len, &too_big);
			if (!input) {
				fprintf(stderr, "vactl: clipboard set: %s\n", too_big ?
					"standard input holds more than the clipboard's 1 MiB" :
					"cannot read standard input");
				return VACTL_EXIT_FAULT;
			}
			text = input;
		}
		/* Refused here, saying where, rather than by the agent. */
		char why[160];
		if (vactl_text_check(text, len, why, sizeof(why)) < 0) {
			vactl_usage_error("clipboard set", "%s: %s (the clipboard takes UTF-8 text "
					  "that XML can carry)", input ? "standard input" : "TEXT",
					  why);
			free(input);
			return VACTL_EXIT_USAGE;
		}
		if ((rc = ready(v))) {
			free(input);
			return rc;
		}
		res = vactl_callf(v, &err, "va.clipboard.set", "(s#)", text, len);
		free(input);
		if (!res)
			return vactl_report(v, "clipboard set", &err);
		if (v->json) {
			print_result(v, res);
		} else {
			int64_t serial = 0;
			vactl_value_int64(res, &serial);
			printf("the guest agent's clipboard is set (serial %" PRId64 ")\n", serial);
		}
		xmlrpc_DECREF(res);
		return 0;
	}
	vactl_usage_error("clipboard", "unknown subcommand \"%s\": get, set or guest", sub);
	return VACTL_EXIT_USAGE;
}

static int
cmd_stat(struct vactl *v, int argc, char **argv)
{
	struct vactl_error err = { 0 };
	int rc = simple_cmd(v, argc, argv, 1, 1);

	if (rc)
		return rc;
	const char *path = argv[optind];
	char why[160];
	if (vactl_text_check(path, strlen(path), why, sizeof(why)) < 0) {
		vactl_usage_error("stat", "REMOTE: %s", why);
		return VACTL_EXIT_USAGE;
	}
	if ((rc = ready(v)))
		return rc;
	xmlrpc_value *res = vactl_callf(v, &err, "va.file.stat", "(s)", path);
	if (!res)
		return vactl_report(v, "stat", &err);
	if (v->json) {
		print_result(v, res);
	} else {
		int64_t size = 0, mode = 0, mtime = 0;
		char *type = vactl_member_string(res, "type", NULL);
		char buf[64];
		vactl_member_int64(res, "size", &size);
		vactl_member_int64(res, "mode", &mode);
		vactl_member_int64(res, "mtime", &mtime);
		printf("path:  %s\ntype:  %s\nsize:  %" PRId64 "\nmode:  %04" PRIo64 "\n"
		       "mtime: %s (%" PRId64 ")\n", path, type ? type : "?", size, (uint64_t)mode,
		       vactl_format_time((double)mtime, buf, sizeof(buf)), mtime);
		free(type);
	}
	xmlrpc_DECREF(res);
	return 0;
}

static int
cmd_call(struct vactl *v, int argc, char **argv)
{
	struct vactl_error err = { 0 };
	xmlrpc_env env;
	int rc = parse_cmd(v, argc, argv, NULL, 0, "", no_own_option, NULL, 1);

	if (rc || (rc = want_args("call", argc - optind, 1, -1)))
		return rc;
	const char *method = argv[optind];
	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_array_new(&env);
	if (env.fault_occurred) {
		xmlrpc_env_clean(&env);
		return VACTL_EXIT_FAULT;
	}
	for (int i = optind + 1; i < argc; i++) {
		char msg[512];
		xmlrpc_value *a = vactl_parse_arg(argv[i], msg, sizeof(msg));
		if (!a) {
			vactl_usage_error("call", "argument %d: %s", i - optind, msg);
			xmlrpc_DECREF(params);
			xmlrpc_env_clean(&env);
			return VACTL_EXIT_USAGE;
		}
		xmlrpc_array_append_item(&env, params, a);
		xmlrpc_DECREF(a);
	}
	xmlrpc_env_clean(&env);
	if ((rc = ready(v))) {
		xmlrpc_DECREF(params);
		return rc;
	}
	xmlrpc_value *res = vactl_call(v, method, params, &err);
	xmlrpc_DECREF(params);
	if (!res)
		return vactl_report(v, method, &err);
	print_result(v, res);
	xmlrpc_DECREF(res);
	return 0;
}

/* ---- events ---- */

struct events_opts {
	int follow;
	int have_since;
	int64_t since;
	unsigned long wait;
};

static int
events_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	struct events_opts *o = ctx;
	unsigned long n;

	switch (opt) {
	case 'f':
		o->follow = 1;
		return 0;
	case 's': {
		char *end;
		errno = 0;
		long long s = strtoll(arg, &end, 10);
		if (errno || end == arg || *end || s < -1) {
			vactl_usage_error(cmd, "--since: \"%s\" is not an event id (or -1)", arg);
			return VACTL_EXIT_USAGE;
		}
		o->since = s;
		o->have_since = 1;
		return 0;
	}
	case 'w':
		if (vactl_parse_ulong(arg, 1, VA_EVENTS_MAX_WAIT_S, &n) < 0) {
			vactl_usage_error(cmd, "--wait: \"%s\" is not a number of seconds (1 to %d)",
					  arg, VA_EVENTS_MAX_WAIT_S);
			return VACTL_EXIT_USAGE;
		}
		o->wait = n;
		return 0;
	}
	return no_own_option(ctx, cmd, opt, arg);
}

/* A word safe to print bare in "key=value". */
static int
bare_word(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '"' || s[i] == '\\' || s[i] == '=' ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

static void
print_event_data(xmlrpc_value *data)
{
	xmlrpc_env env;

	if (xmlrpc_value_type(data) != XMLRPC_TYPE_STRUCT) {
		putchar(' ');
		vactl_print_json(stdout, data);
		return;
	}
	xmlrpc_env_init(&env);
	int n = xmlrpc_struct_size(&env, data);
	for (int i = 0; i < n && !env.fault_occurred; i++) {
		xmlrpc_value *key = NULL, *val = NULL;
		char *k = NULL;
		size_t klen = 0;
		xmlrpc_struct_read_member(&env, data, (unsigned)i, &key, &val);
		if (env.fault_occurred)
			break;
		va_text_read(&env, key, &k, &klen);
		if (!env.fault_occurred) {
			putchar(' ');
			fwrite(k, 1, klen, stdout);
			putchar('=');
			char *s = NULL;
			size_t len = 0;
			if (xmlrpc_value_type(val) == XMLRPC_TYPE_STRING) {
				va_text_read(&env, val, &s, &len);
				if (!env.fault_occurred && bare_word(s, len))
					fwrite(s, 1, len, stdout);
				else if (!env.fault_occurred)
					vactl_json_string(stdout, s, len);
				free(s);
			} else {
				vactl_print_json(stdout, val);
			}
			free(k);
		}
		xmlrpc_DECREF(key);
		xmlrpc_DECREF(val);
	}
	xmlrpc_env_clean(&env);
}

/* Prints the events of arr; returns the newest id seen (or since). */
static int64_t
print_events(struct vactl *v, xmlrpc_value *arr, int64_t since, int quiet)
{
	xmlrpc_env env;

	xmlrpc_env_init(&env);
	int n = xmlrpc_array_size(&env, arr);
	for (int i = 0; i < n && !env.fault_occurred; i++) {
		xmlrpc_value *e = NULL;
		int64_t id = 0;
		double t = 0;
		xmlrpc_array_read_item(&env, arr, i, &e);
		if (env.fault_occurred)
			break;
		if (vactl_member_int64(e, "id", &id) == 0 && id > since)
			since = id;
		if (!quiet) {
			if (v->json) {
				vactl_print_json(stdout, e);
				putchar('\n');
			} else {
				char buf[64];
				char *guest = vactl_member_string(e, "guest", NULL);
				char *type = vactl_member_string(e, "type", NULL);
				xmlrpc_value *data = NULL;
				vactl_member_double(e, "time", &t);
				printf("#%" PRId64 " %s.%03d %s %s", id,
				       vactl_format_time(t, buf, sizeof(buf)),
				       (int)(fmod(t, 1.0) * 1000), guest ? guest : "?",
				       type ? type : "?");
				xmlrpc_struct_find_value(&env, e, "data", &data);
				if (!env.fault_occurred && data) {
					print_event_data(data);
					xmlrpc_DECREF(data);
				}
				putchar('\n');
				free(guest);
				free(type);
			}
		}
		xmlrpc_DECREF(e);
	}
	xmlrpc_env_clean(&env);
	fflush(stdout);
	return since;
}

/*
 * The proxy says which events it still has in its fault: "... the oldest
 * event kept is N ..." (VA_PROXY_EVENTS_OLDEST_KEPT).  Returns N - 1 to
 * read on from, or -2 when the words are not there.
 */
static int64_t
lost_resume_point(const struct vactl_error *err)
{
	static const char words[] = VA_PROXY_EVENTS_OLDEST_KEPT;
	const char *p = strstr(err->msg, words);

	if (!p)
		return -2;
	long long n = strtoll(p + strlen(words), NULL, 10);
	return n > 0 ? n - 1 : -2;
}

/*
 * One proxy.events call.  Handles the queue's "lost" faults by warning
 * and moving *since on; returns the array, or NULL with err set.
 */
static xmlrpc_value *
fetch_events(struct vactl *v, int64_t *since, unsigned wait_s, struct vactl_error *err)
{
	for (int tries = 0; tries < 3; tries++) {
		xmlrpc_value *res = *since > INT32_MAX ?
			vactl_callf(v, err, "proxy.events", "(Ii)", (xmlrpc_int64)*since, (int)wait_s) :
			vactl_callf(v, err, "proxy.events", "(ii)", (int)*since, (int)wait_s);
		if (res) {
			if (xmlrpc_value_type(res) == XMLRPC_TYPE_ARRAY)
				return res;
			xmlrpc_DECREF(res);
			err->kind = VACTL_ERR_PROTOCOL;
			snprintf(err->msg, sizeof(err->msg), "proxy.events did not answer an array");
			return NULL;
		}
		if (err->kind != VACTL_ERR_FAULT || err->code != VA_PROXY_FAULT_EVENTS_LOST)
			return NULL;
		int64_t resume = lost_resume_point(err);
		if (resume >= 0 && resume > *since) {
			fprintf(stderr, "vactl: events %" PRId64 " to %" PRId64 " were lost (the "
				"proxy keeps a bounded queue)\n", *since + 1, resume);
			*since = resume;
		} else if (strstr(err->msg, VA_PROXY_EVENTS_RESTARTED)) {
			fprintf(stderr, "vactl: the proxy restarted; reading its events from "
				"the start\n");
			*since = 0;
		} else {
			return NULL;
		}
	}
	return NULL;
}

static int
cmd_events(struct vactl *v, int argc, char **argv)
{
	static const struct option own[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "since", required_argument, NULL, 's' },
		{ "wait", required_argument, NULL, 'w' },
	};
	struct events_opts o = { 0, 0, 0, EVENTS_WAIT_DEFAULT_S };
	struct vactl_error err = { 0 };
	xmlrpc_value *res;
	int rc = parse_cmd(v, argc, argv, own, 3, "fs:w:", events_option, &o, 0);

	if (rc || (rc = want_args(argv[0], argc - optind, 0, 0)))
		return rc;
	if (o.follow)
		v->extra_wait_ms = (unsigned)o.wait * 1000;
	if ((rc = ready(v)))
		return rc;
	int64_t since = o.have_since ? o.since : 0;

	if (!o.follow || !o.have_since) {
		/* What the queue holds (printed unless following from now on). */
		int quiet = o.follow;
		for (;;) {
			res = fetch_events(v, &since, 0, &err);
			if (!res)
				return vactl_report(v, "events", &err);
			xmlrpc_env env;
			xmlrpc_env_init(&env);
			int n = xmlrpc_array_size(&env, res);
			xmlrpc_env_clean(&env);
			since = print_events(v, res, since, quiet);
			xmlrpc_DECREF(res);
			if (n < VA_EVENTS_MAX_PER_CALL)
				break;
		}
		if (!o.follow)
			return 0;
	}
	int down = 0;
	for (;;) {
		res = fetch_events(v, &since, (unsigned)o.wait, &err);
		if (res) {
			if (down)
				fprintf(stderr, "vactl: events: the proxy answers again\n");
			down = 0;
			since = print_events(v, res, since, 0);
			xmlrpc_DECREF(res);
			continue;
		}
		if (err.kind == VACTL_ERR_FAULT || err.kind == VACTL_ERR_LOCAL)
			return vactl_report(v, "events", &err);
		/* The proxy went away or restarts: keep trying, like tail -F. */
		if (!down)
			vactl_report(v, "events (retrying)", &err);
		down = 1;
		sleep(EVENTS_RETRY_S);
	}
}

int
vactl_parse_xfer_options(struct vactl *v, int argc, char **argv, int push,
			 int (*fn)(void *, const char *, int, const char *), void *ctx)
{
	static const struct option own[] = {
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "no-stream", no_argument, NULL, 'S' }, /* long only: 'S' is not in the shorts */
		{ "mode", required_argument, NULL, 'm' },
	};
	static const struct option pull_own[] = {
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "no-stream", no_argument, NULL, 'S' },
		{ "continue", no_argument, NULL, 'C' }, /* long only, as --no-stream */
	};
	if (!push)
		return parse_cmd(v, argc, argv, pull_own, 4, "c:J:", fn, ctx, 0);
	return parse_cmd(v, argc, argv, own, 4, "c:J:m:", fn, ctx, 0);
}

/* ---- the table, help and main ---- */

static int cmd_help(struct vactl *v, int argc, char **argv);

static const struct vactl_command commands[] = {
	{ "ping", "ping\nAsks the guest agent for va.ping and says how long the answer took.\n",
	  cmd_ping },
	{ "info", "info\nThe guest's host name, OS, kernel, architecture, uptime and clock "
	  "(va.info).\n", cmd_info },
	{ "capabilities", "capabilities\nThe agent's version, protocol, enabled methods and "
	  "largest frame\n(va.capabilities).\n", cmd_capabilities },
	{ "status", "status\nThe proxy's view of the guest's link: connected, handshake, agent "
	  "version,\ncounters (proxy.status).\n", cmd_status },
	{ "shutdown", "shutdown [--mode halt|powerdown|reboot] [--delay S]\n"
	  "Asks the guest agent to shut the guest down (va.shutdown).\n"
	  "  -m, --mode MODE   halt, powerdown (default) or reboot\n"
	  "  -d, --delay S     wait S seconds first (0 to 3600; default 0)\n", cmd_shutdown },
	{ "dmesg", "dmesg [--max BYTES]\nPrints the tail of the guest's kernel log (va.dmesg).\n"
	  "  -m, --max BYTES   at most BYTES (K and M suffixes; default 64K, at most 1M)\n",
	  cmd_dmesg },
	{ "clipboard", "clipboard get | set TEXT|- | guest\n"
	  "  get          prints the guest agent's clipboard as it is (va.clipboard.get)\n"
	  "  set TEXT     puts TEXT on it; \"-\" reads the text from standard input\n"
	  "               (va.clipboard.set; UTF-8 text, at most 1 MiB)\n"
	  "  guest        prints what the guest copied last, as the proxy keeps it\n"
	  "               (proxy.clipboard.get)\n", cmd_clipboard },
	{ "events", "events [--follow] [--since ID] [--wait S]\n"
	  "Prints the proxy's events, one a line: #ID TIME GUEST TYPE key=value...\n"
	  "(with --json, one JSON object a line).\n"
	  "  -f, --follow      keep printing new events as they come (long polls);\n"
	  "                    without --since, only events from now on\n"
	  "  -s, --since ID    start after event ID (-1: from now on)\n"
	  "  -w, --wait S      seconds each long poll waits (1 to " VACTL_STR(VA_EVENTS_MAX_WAIT_S)
	  "; default " VACTL_STR(EVENTS_WAIT_DEFAULT_S) ")\n",
	  cmd_events },
	{ "push", "push [--no-stream] [--chunk-size BYTES] [--jobs N] [--mode OCTAL] LOCAL REMOTE\n"
	  "Copies the local file LOCAL (\"-\": standard input) to REMOTE in the guest (an\n"
	  "absolute path; a directory gets LOCAL's name), then checks the SHA-256 of\n"
	  "both.  The bytes go as one stream through the proxy's file endpoint (PUT\n"
	  "/guests/NAME/files/REMOTE): the guest writes REMOTE.partial and renames it\n"
	  "when whole.  With an older proxy or agent, or --no-stream, they go as\n"
	  "XML-RPC calls (va.file.write) in chunks with several in flight.  A progress\n"
	  "bar shows on a terminal.\n"
	  "      --no-stream         the XML-RPC calls (implied by --chunk-size, --jobs)\n"
	  "  -c, --chunk-size BYTES  bytes per call (K and M suffixes; default 1M, at\n"
	  "                          most 8M, the agent's limit)\n"
	  "  -J, --jobs N            calls in flight (1 to 16; default 8)\n"
	  "  -m, --mode OCTAL        permissions of a file created in the guest (default:\n"
	  "                          LOCAL's, 0600 for standard input)\n"
	  "On failure REMOTE is unchanged and REMOTE.partial holds what arrived (the\n"
	  "stream), or REMOTE may be left incomplete (the XML-RPC calls).\n",
	  vactl_cmd_push },
	{ "pull", "pull [--continue] [--no-stream] [--chunk-size BYTES] [--jobs N] REMOTE LOCAL\n"
	  "Copies the guest file REMOTE to LOCAL (\"-\": standard output; a directory gets\n"
	  "REMOTE's name), then checks the SHA-256.  The bytes come as one stream from\n"
	  "the proxy's file endpoint (GET /guests/NAME/files/REMOTE), or with an older\n"
	  "proxy or agent, or --no-stream, as XML-RPC calls in chunks with several in\n"
	  "flight.  LOCAL is written under a temporary name and renamed at the end: a\n"
	  "failed pull leaves nothing behind.  A progress bar shows on a terminal.\n"
	  "      --continue          LOCAL holds the start of REMOTE (a cut download):\n"
	  "                          when va.file.checksum of that many bytes of REMOTE\n"
	  "                          agrees, only the rest is pulled and appended to LOCAL\n"
	  "                          (kept if that fails); otherwise REMOTE is pulled whole\n"
	  "      --no-stream         the XML-RPC calls (implied by --chunk-size, --jobs)\n"
	  "  -c, --chunk-size BYTES  bytes per call (default 1M, at most 8M)\n"
	  "  -J, --jobs N            calls in flight (1 to 16; default 8)\n", vactl_cmd_pull },
	{ "stat", "stat REMOTE\nSize, type, permissions and modification time of a guest file "
	  "(va.file.stat).\n", cmd_stat },
	{ "exec", "exec [--user U] [--timeout S] [--tty] [--cwd DIR] [--env NAME=VALUE]... -- CMD [ARG]...\n"
	  "Runs CMD in the guest (va.exec.start; the agent needs --enable-exec) with vactl's\n"
	  "standard input, output and error connected live, like ssh: no shell unless CMD is\n"
	  "one; a bare CMD is looked up in the guest's PATH.  Exits with CMD's exit code,\n"
	  "128 + N when signal N killed it, 255 when vactl failed.  SIGINT (Ctrl-C), SIGQUIT,\n"
	  "SIGTERM and SIGHUP are sent on to CMD's process group.\n"
	  "  -U, --user U      run as the guest user U\n"
	  "  -t, --timeout S   kill CMD's process group after S seconds (the answer timeout\n"
	  "                    is then the global option: vactl --timeout S exec ...)\n"
	  "  -T, --tty         a pseudo-terminal in the guest, the local terminal in raw\n"
	  "                    mode (interactive shells: vactl exec --tty -- sh -i)\n"
	  "  -C, --cwd DIR     the working directory (default: the user's home, or /)\n"
	  "  -e, --env N=V     set a variable in CMD's environment (repeatable)\n", vactl_cmd_exec },
	{ "password", "password [--crypted] USER\n"
	  "Sets the password of the guest user USER (va.user.set_password; the agent needs\n"
	  "--enable-accounts).  The password is read from the terminal (asked twice, not\n"
	  "shown) or, when standard input is not a terminal, its first line; never from\n"
	  "the command line.\n"
	  "  -c, --crypted     the input is a crypt(3) hash, written as it is\n",
	  vactl_cmd_password },
	{ "keys", "keys get USER | keys add|remove|set USER FILE...\n"
	  "The SSH keys in ~USER/.ssh/authorized_keys in the guest (va.ssh.keys.*; the agent\n"
	  "needs --enable-accounts).  FILE holds keys one a line (a .pub file; \"-\" reads\n"
	  "standard input); empty lines and # comments are skipped.  Prints the keys the\n"
	  "file holds afterwards.\n"
	  "  get      print the keys\n"
	  "  add      add the keys that are not there yet\n"
	  "  remove   remove these keys\n"
	  "  set      replace every key with these\n", vactl_cmd_keys },
	{ "call", "call METHOD [ARG]...\n"
	  "Calls any method and prints its result (readably, or as JSON with --json).\n"
	  "Each ARG is typed by a prefix:\n"
	  "  i:42  int        i8:42  64-bit int   d:1.5  double     b:true  boolean\n"
	  "  s:TEXT  string   n:  nil             j:JSON  array/struct from JSON\n"
	  "  @FILE   base64 of the file's bytes\n"
	  "Anything else is a string.\n", cmd_call },
	{ "help", "help [COMMAND]\nPrints the help of vactl or of a command.\n", cmd_help },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct vactl_command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	for (size_t i = 0; i < vactl_nguest_commands; i++)
		if (!strcmp(vactl_guest_commands[i].name, name))
			return &vactl_guest_commands[i];
	return NULL;
}

static int
cmd_help(struct vactl *v, int argc, char **argv)
{
	(void)v;
	if (argc < 2) {
		fputs(usage_text, stdout);
		return 0;
	}
	const struct vactl_command *c = find_command(argv[1]);
	if (!c) {
		vactl_usage_error(NULL, "unknown command \"%s\"", argv[1]);
		return VACTL_EXIT_USAGE;
	}
	print_command_help(c);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, OPT_URL },
		{ "guest", required_argument, NULL, OPT_GUEST },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "auth-file", required_argument, NULL, OPT_AUTH_FILE },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct vactl v;
	int opt, rc;

	memset(&v, 0, sizeof(v));
	v.timeout_s = VACTL_DEFAULT_TIMEOUT_S;
	v.url_opt = getenv("VA_URL");
	if (!v.url_opt || !*v.url_opt)
		v.url_opt = VA_PROXY_DEFAULT_URL;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+u:g:t:ja:vhV", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("vactl (virtagent) %s\n", PACKAGE_VERSION);
			return 0;
		case '?':
			if (optopt)
				vactl_usage_error(NULL, "option -%c: unknown, or needs a value", optopt);
			else
				vactl_usage_error(NULL, "unknown option or missing value: %s",
						  argv[optind - 1]);
			return VACTL_EXIT_USAGE;
		default:
			if ((rc = common_option(&v, NULL, opt, optarg)))
				return rc;
		}
	}
	if (optind >= argc) {
		vactl_usage_error(NULL, "missing command");
		return VACTL_EXIT_USAGE;
	}
	const struct vactl_command *c = find_command(argv[optind]);
	if (!c) {
		vactl_usage_error(NULL, "unknown command \"%s\"", argv[optind]);
		return VACTL_EXIT_USAGE;
	}
	rc = c->run(&v, argc - optind, argv + optind);
	if (rc == HELP_PRINTED)
		rc = 0;
	vactl_cleanup(&v);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "vactl: cannot write the output: %s\n", strerror(errno));
		rc = VACTL_EXIT_FAULT;
	}
	return rc;
}
