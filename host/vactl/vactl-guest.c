/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-guest.c - the commands for the guest's operations (va.net.*,
 * va.time.*, va.os.info, va.users, va.fs.*, va.disks, va.cpu.*,
 * va.stats): each calls its method and prints the result readably (a
 * table, or "key: value" lines), or as JSON with --json.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "text.h"
#include "vactl.h"

/* ---- helpers ---- */

/*
 * The call's result, or NULL after reporting (exit code in *rc).  The
 * parameters are built by vactl_build_params (strings in the value form).
 */
static xmlrpc_value *
callv(struct vactl *v, int *rc, const char *what, const char *method, const char *fmt, ...)
{
	struct vactl_error err = { 0 };
	xmlrpc_env env;
	xmlrpc_value *params, *res = NULL;
	va_list ap;

	xmlrpc_env_init(&env);
	va_start(ap, fmt);
	params = vactl_build_params(&env, fmt, ap);
	va_end(ap);
	if (env.fault_occurred) {
		fprintf(stderr, "vactl: %s: %s\n", what, env.fault_string);
		*rc = VACTL_EXIT_FAULT;
	} else {
		res = vactl_call(v, method, params, &err);
		xmlrpc_DECREF(params);
		if (!res)
			*rc = vactl_report(v, what, &err);
	}
	xmlrpc_env_clean(&env);
	return res;
}

/* Item i of an array (a new reference), or NULL. */
static xmlrpc_value *
item(xmlrpc_value *arr, int i)
{
	xmlrpc_env env;
	xmlrpc_value *it = NULL;
	xmlrpc_env_init(&env);
	xmlrpc_array_read_item(&env, arr, (unsigned)i, &it);
	xmlrpc_env_clean(&env);
	return it;
}

static int
count(xmlrpc_value *arr)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	int n = xmlrpc_value_type(arr) == XMLRPC_TYPE_ARRAY ? xmlrpc_array_size(&env, arr) : 0;
	xmlrpc_env_clean(&env);
	return n < 0 ? 0 : n;
}

/* A member (a new reference), or NULL. */
static xmlrpc_value *
member(xmlrpc_value *st, const char *key)
{
	xmlrpc_env env;
	xmlrpc_value *m = NULL;
	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(st) == XMLRPC_TYPE_STRUCT)
		xmlrpc_struct_find_value(&env, st, key, &m);
	xmlrpc_env_clean(&env);
	return m;
}

static char *
str(xmlrpc_value *st, const char *key)
{
	char *s = vactl_member_string(st, key, NULL);
	return s ? s : strdup("");
}

/* A string item of an array as raw UTF-8 (malloc'd), or NULL. */
static char *
item_str(xmlrpc_value *arr, int i)
{
	xmlrpc_value *it = item(arr, i);
	xmlrpc_env env;
	char *s = NULL;

	if (!it)
		return NULL;
	xmlrpc_env_init(&env);
	va_text_read(&env, it, &s, NULL);
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(it);
	return s;
}

static int64_t
num(xmlrpc_value *st, const char *key)
{
	int64_t n = 0;
	vactl_member_int64(st, key, &n);
	return n;
}

static int
flag(xmlrpc_value *st, const char *key)
{
	int b = 0;
	vactl_member_bool(st, key, &b);
	return b;
}

/* "12.3G" (binary units) into buf. */
static const char *
human(int64_t bytes, char *buf, size_t size)
{
	static const char units[] = "BKMGTPE";
	double b = (double)bytes;
	int u = 0;
	while (b >= 1024 && u < 6) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRId64 "B", bytes);
	else
		snprintf(buf, size, "%.*f%c", b < 10 ? 1 : 0, b, units[u]);
	return buf;
}

/* Prints res as JSON or with fn, and drops it; returns 0. */
static int
show(struct vactl *v, xmlrpc_value *res, void (*fn)(xmlrpc_value *))
{
	if (v->json || !fn)
		vactl_print_result(v, res);
	else
		fn(res);
	xmlrpc_DECREF(res);
	return 0;
}

/* The subcommand (argv[optind]) or dflt; moves optind past it. */
static const char *
subcommand(int argc, char **argv, const char *dflt)
{
	if (optind < argc)
		return argv[optind++];
	return dflt;
}

static int
bad_sub(const char *cmd, const char *sub, const char *which)
{
	vactl_usage_error(cmd, "unknown subcommand \"%s\" (%s)", sub, which);
	return VACTL_EXIT_USAGE;
}

/* ---- net ---- */

static void
print_interfaces(xmlrpc_value *arr)
{
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i), *addrs = member(it, "addresses"), *st = member(it, "stats");
		char *name = str(it, "name"), *mac = str(it, "mac"), *oper = str(it, "operstate");
		char a[32], b[32];
		printf("%-12s %-4s %-14s mtu %-6" PRId64 " %s\n", name, flag(it, "up") ? "up" : "down",
		       oper, num(it, "mtu"), mac);
		for (int k = 0; addrs && k < count(addrs); k++) {
			xmlrpc_value *ad = item(addrs, k);
			char *fam = str(ad, "family"), *addr = str(ad, "address"), *scope = str(ad, "scope");
			printf("    %-5s %s/%" PRId64 " (%s)\n", strcmp(fam, "ipv6") ? "inet" : "inet6", addr,
			       num(ad, "prefix"), scope);
			free(fam);
			free(addr);
			free(scope);
			xmlrpc_DECREF(ad);
		}
		if (st)
			printf("    rx %s %" PRId64 " packets %" PRId64 " errors %" PRId64 " dropped; "
			       "tx %s %" PRId64 " packets %" PRId64 " errors %" PRId64 " dropped\n",
			       human(num(st, "rx_bytes"), a, sizeof(a)), num(st, "rx_packets"),
			       num(st, "rx_errors"), num(st, "rx_dropped"),
			       human(num(st, "tx_bytes"), b, sizeof(b)), num(st, "tx_packets"),
			       num(st, "tx_errors"), num(st, "tx_dropped"));
		free(name);
		free(mac);
		free(oper);
		if (addrs)
			xmlrpc_DECREF(addrs);
		if (st)
			xmlrpc_DECREF(st);
		xmlrpc_DECREF(it);
	}
}

static void
print_routes(xmlrpc_value *arr)
{
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i);
		char *dst = str(it, "destination"), *gw = str(it, "gateway"), *dev = str(it, "interface");
		char *proto = str(it, "protocol"), *type = str(it, "type"), *src = str(it, "source");
		int64_t prefix = num(it, "prefix");
		if (prefix == 0)
			printf("%s%s", strcmp(type, "unicast") ? type : "", strcmp(type, "unicast") ? " default" : "default");
		else
			printf("%s%s%s/%" PRId64, strcmp(type, "unicast") ? type : "",
			       strcmp(type, "unicast") ? " " : "", dst, prefix);
		if (*gw)
			printf(" via %s", gw);
		if (*dev)
			printf(" dev %s", dev);
		printf(" proto %s", proto);
		if (*src)
			printf(" src %s", src);
		printf(" metric %" PRId64, num(it, "metric"));
		if (num(it, "table") != 254)
			printf(" table %" PRId64, num(it, "table"));
		putchar('\n');
		free(dst);
		free(gw);
		free(dev);
		free(proto);
		free(type);
		free(src);
		xmlrpc_DECREF(it);
	}
}

static int
cmd_net(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 1);
	if (rc)
		return rc;
	const char *sub = subcommand(argc, argv, "interfaces");
	int routes = strcmp(sub, "routes") == 0;
	if (!routes && strcmp(sub, "interfaces") != 0)
		return bad_sub("net", sub, "interfaces or routes");
	if ((rc = vactl_ready(v)))
		return rc;
	xmlrpc_value *res = callv(v, &rc, routes ? "net routes" : "net interfaces",
				  routes ? "va.net.routes" : "va.net.interfaces", "()");
	return res ? show(v, res, routes ? print_routes : print_interfaces) : rc;
}

/* ---- time ---- */

static double
host_now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void
print_time(xmlrpc_value *st)
{
	char buf[64];
	int64_t ns = num(st, "ns");
	double t = (double)ns / 1e9, off = t - host_now();
	printf("guest clock:  %s.%03d (%" PRId64 " ns)\n", vactl_format_time(t, buf, sizeof(buf)),
	       (int)(ns / 1000000 % 1000), ns);
	printf("vs the host:  %+.3f s\n", off);
	int sync;
	if (vactl_member_bool(st, "synchronized", &sync) == 0)
		printf("synchronized: %s (max error %" PRId64 " us)\n", sync ? "yes" : "no",
		       num(st, "maxerror_us"));
	char *src = vactl_member_string(st, "source", NULL);
	if (src) {
		char *err = vactl_member_string(st, "rtc_error", NULL);
		printf("set from:     %s; RTC %s%s%s\n", strcmp(src, "rtc") ? "the host" : "the RTC",
		       flag(st, "rtc") ? "written" : "not written", err ? ": " : "", err ? err : "");
		free(err);
		free(src);
	}
}

static int
cmd_time(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 2);
	if (rc)
		return rc;
	const char *sub = subcommand(argc, argv, "get");
	xmlrpc_value *res;
	if (strcmp(sub, "get") == 0) {
		if (optind < argc) {
			vactl_usage_error("time", "too many arguments");
			return VACTL_EXIT_USAGE;
		}
		if ((rc = vactl_ready(v)))
			return rc;
		res = callv(v, &rc, "time get", "va.time.get", "()");
	} else if (strcmp(sub, "set") == 0) {
		const char *what = optind < argc ? argv[optind] : NULL;
		if (!what) {
			vactl_usage_error("time", "set: missing NS, now or rtc");
			return VACTL_EXIT_USAGE;
		}
		long long ns = 0;
		int from_rtc = strcmp(what, "rtc") == 0;
		if (strcmp(what, "now") == 0) {
			struct timeval tv;
			gettimeofday(&tv, NULL);
			ns = (long long)tv.tv_sec * 1000000000LL + (long long)tv.tv_usec * 1000LL;
		} else if (!from_rtc) {
			char *end;
			ns = strtoll(what, &end, 10);
			if (*what == '\0' || *end || ns < 0) {
				vactl_usage_error("time", "set: \"%s\" is not nanoseconds since 1970, now or rtc",
						  what);
				return VACTL_EXIT_USAGE;
			}
		}
		if ((rc = vactl_ready(v)))
			return rc;
		res = from_rtc ? callv(v, &rc, "time set", "va.time.set", "()")
			       : callv(v, &rc, "time set", "va.time.set", "(I)", (xmlrpc_int64)ns);
	} else {
		return bad_sub("time", sub, "get or set");
	}
	return res ? show(v, res, print_time) : rc;
}

static void
print_timezone(xmlrpc_value *st)
{
	char *name = str(st, "name"), *abbr = str(st, "abbreviation"), *src = str(st, "source");
	int64_t off = num(st, "offset_s");
	/* The guest's number: INT64_MIN has no llabs(). */
	uint64_t mag = off < 0 ? 0 - (uint64_t)off : (uint64_t)off;
	printf("%s (%s, UTC%c%02" PRIu64 ":%02d%s; from %s)\n", *name ? name : "?", abbr,
	       off < 0 ? '-' : '+', mag / 3600, (int)(mag % 3600 / 60),
	       flag(st, "dst") ? ", DST" : "", *src ? src : "?");
	free(name);
	free(abbr);
	free(src);
}

static int
cmd_timezone(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = vactl_ready(v)))
		return rc;
	xmlrpc_value *res = callv(v, &rc, "timezone", "va.timezone", "()");
	return res ? show(v, res, print_timezone) : rc;
}

/* ---- os, hostname, users ---- */

static int
cmd_plain(struct vactl *v, int argc, char **argv, const char *method)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = vactl_ready(v)))
		return rc;
	xmlrpc_value *res = callv(v, &rc, argv[0], method, "()");
	return res ? show(v, res, NULL) : rc;
}

static int
cmd_os(struct vactl *v, int argc, char **argv)
{
	return cmd_plain(v, argc, argv, "va.os.info");
}

static void
print_hostname(xmlrpc_value *st)
{
	char *h = str(st, "hostname");
	printf("%s\n", h);
	free(h);
}

static int
cmd_hostname(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = vactl_ready(v)))
		return rc;
	xmlrpc_value *res = callv(v, &rc, "hostname", "va.hostname", "()");
	return res ? show(v, res, print_hostname) : rc;
}

static void
print_users(xmlrpc_value *arr)
{
	if (count(arr) == 0) {
		printf("nobody is logged in\n");
		return;
	}
	printf("%-16s %-12s %-20s %-19s %s\n", "USER", "LINE", "HOST", "LOGIN", "PID");
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i);
		char *u = str(it, "user"), *l = str(it, "line"), *h = str(it, "host"), buf[64];
		double t = 0;
		vactl_member_double(it, "login_time", &t);
		printf("%-16s %-12s %-20s %-19s %" PRId64 "\n", u, l, *h ? h : "-",
		       vactl_format_time(t, buf, sizeof(buf)), num(it, "pid"));
		free(u);
		free(l);
		free(h);
		xmlrpc_DECREF(it);
	}
}

static int
cmd_users(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = vactl_ready(v)))
		return rc;
	xmlrpc_value *res = callv(v, &rc, "users", "va.users", "()");
	return res ? show(v, res, print_users) : rc;
}

/* ---- fs, disks ---- */

/* "serial@bus:pci" of a disks array, into buf. */
static const char *
disk_words(xmlrpc_value *disks, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; disks && i < count(disks) && o < size; i++) {
		xmlrpc_value *d = item(disks, i);
		char *name = str(d, "name"), *serial = str(d, "serial"), *bus = str(d, "bus");
		char *pci = str(d, "pci_address");
		int n = snprintf(buf + o, size - o, "%s%s%s%s%s%s%s%s", o ? "," : "", name,
				 *serial ? " serial=" : "", serial, *bus ? " bus=" : "", bus,
				 *pci ? " pci=" : "", pci);
		o += n > 0 ? (size_t)n : 0;
		free(name);
		free(serial);
		free(bus);
		free(pci);
		xmlrpc_DECREF(d);
	}
	return buf;
}

static void
print_fs(xmlrpc_value *arr)
{
	printf("%-24s %-8s %7s %7s %7s %4s  %s\n", "MOUNTPOINT", "TYPE", "SIZE", "USED", "AVAIL",
	       "USE%", "DISKS");
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i), *disks = member(it, "disks");
		char *mp = str(it, "mountpoint"), *type = str(it, "type"), *err = str(it, "error");
		char a[32], b[32], c[32], d[512];
		int64_t used = num(it, "used_bytes"), avail = num(it, "free_bytes");
		/* In double: the guest's numbers may add up past INT64_MAX. */
		double whole = (double)used + (double)avail;
		if (*err)
			printf("%-24s %-8s %s\n", mp, type, err);
		else
			printf("%-24s %-8s %7s %7s %7s %3.0f%%  %s\n", mp, type,
			       human(num(it, "total_bytes"), a, sizeof(a)), human(used, b, sizeof(b)),
			       human(avail, c, sizeof(c)),
			       whole != 0 ? ceil((double)used * 100 / whole) : 0.0,
			       disk_words(disks, d, sizeof(d)));
		free(mp);
		free(type);
		free(err);
		if (disks)
			xmlrpc_DECREF(disks);
		xmlrpc_DECREF(it);
	}
}

static void
print_paths_result(xmlrpc_value *st, const char *verb, const char *key)
{
	xmlrpc_value *mps = member(st, "mountpoints");
	printf("%" PRId64 " filesystems %s", num(st, key), verb);
	for (int i = 0; mps && i < count(mps); i++) {
		char *s = item_str(mps, i);
		if (s)
			printf("%s%s", i ? ", " : ": ", s);
		free(s);
	}
	putchar('\n');
	if (mps)
		xmlrpc_DECREF(mps);
}

static void
print_frozen(xmlrpc_value *st)
{
	print_paths_result(st, "frozen", "frozen");
}

static void
print_thawed(xmlrpc_value *st)
{
	print_paths_result(st, "thawed", "thawed");
}

static void
print_status(xmlrpc_value *st)
{
	char *status = str(st, "status"), buf[64];
	double since = 0;
	vactl_member_double(st, "since", &since);
	printf("%s", status);
	if (strcmp(status, "thawed")) {
		xmlrpc_value *mps = member(st, "mountpoints");
		printf(" since %s (%d filesystems)", vactl_format_time(since, buf, sizeof(buf)),
		       mps ? count(mps) : 0);
		if (num(st, "watchdog_s"))
			printf("; the watchdog thaws in %" PRId64 " s", num(st, "watchdog_s"));
		if (mps)
			xmlrpc_DECREF(mps);
	}
	putchar('\n');
	free(status);
}

static void
print_trim(xmlrpc_value *arr)
{
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i);
		char *mp = str(it, "mountpoint"), *err = str(it, "error"), buf[32];
		if (*err)
			printf("%s: %s\n", mp, err);
		else
			printf("%s: %s (%" PRId64 " bytes) trimmed\n", mp,
			       human(num(it, "trimmed_bytes"), buf, sizeof(buf)), num(it, "trimmed_bytes"));
		free(mp);
		free(err);
		xmlrpc_DECREF(it);
	}
}

/*
 * The remaining arguments (mount points) as an array of strings in the
 * value form (a new value), or NULL with *rc set: text XML cannot carry
 * is refused here, naming the argument (exit 2), rather than by the agent.
 */
static xmlrpc_value *
paths_array(const char *cmd, int argc, char **argv, int *rc)
{
	xmlrpc_env env;
	char why[160];

	for (int i = optind; i < argc; i++) {
		if (vactl_text_check(argv[i], strlen(argv[i]), why, sizeof(why)) < 0) {
			/* Not echoed: its bytes are what the terminal may not show either. */
			vactl_usage_error(cmd, "MOUNT %d: %s", i - optind + 1, why);
			*rc = VACTL_EXIT_USAGE;
			return NULL;
		}
	}
	xmlrpc_env_init(&env);
	xmlrpc_value *arr = xmlrpc_array_new(&env);
	for (int i = optind; i < argc && !env.fault_occurred; i++) {
		xmlrpc_value *s = va_text_value_z(&env, argv[i]);
		if (!env.fault_occurred) {
			xmlrpc_array_append_item(&env, arr, s);
			xmlrpc_DECREF(s);
		}
	}
	if (env.fault_occurred) {
		fprintf(stderr, "vactl: %s: %s\n", cmd, env.fault_string);
		if (arr)
			xmlrpc_DECREF(arr);
		arr = NULL;
		*rc = VACTL_EXIT_FAULT;
	}
	xmlrpc_env_clean(&env);
	return arr;
}

static int
cmd_fs(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, -1);
	if (rc)
		return rc;
	const char *sub = subcommand(argc, argv, "info");
	int rest = argc - optind;
	xmlrpc_value *res = NULL, *paths = NULL;
	void (*fn)(xmlrpc_value *) = NULL;
	const char *method;

	if (!strcmp(sub, "info") || !strcmp(sub, "freeze") || !strcmp(sub, "trim")) {
		if (rest && !(paths = paths_array("fs", argc, argv, &rc)))
			return rc;
		method = !strcmp(sub, "info") ? "va.fs.info" : !strcmp(sub, "freeze") ? "va.fs.freeze" :
			"va.fs.trim";
		fn = !strcmp(sub, "info") ? print_fs : !strcmp(sub, "freeze") ? print_frozen : print_trim;
	} else if (!strcmp(sub, "thaw") || !strcmp(sub, "status")) {
		if (rest) {
			vactl_usage_error("fs", "%s: too many arguments", sub);
			return VACTL_EXIT_USAGE;
		}
		method = !strcmp(sub, "thaw") ? "va.fs.thaw" : "va.fs.status";
		fn = !strcmp(sub, "thaw") ? print_thawed : print_status;
	} else {
		return bad_sub("fs", sub, "info, freeze, thaw, status or trim");
	}
	if ((rc = vactl_ready(v))) {
		if (paths)
			xmlrpc_DECREF(paths);
		return rc;
	}
	char what[32];
	snprintf(what, sizeof(what), "fs %s", sub);
	res = paths ? callv(v, &rc, what, method, "(A)", paths) : callv(v, &rc, what, method, "()");
	if (paths)
		xmlrpc_DECREF(paths);
	return res ? show(v, res, fn) : rc;
}

static void
print_disks(xmlrpc_value *arr)
{
	printf("%-10s %7s %-7s %-13s %-20s %s\n", "NAME", "SIZE", "BUS", "PCI", "SERIAL", "MOUNTED ON");
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i), *mps = member(it, "mountpoints");
		char *name = str(it, "name"), *bus = str(it, "bus"), *pci = str(it, "pci_address");
		char *serial = str(it, "serial"), buf[32];
		printf("%-10s %7s %-7s %-13s %-20s", name, human(num(it, "size_bytes"), buf, sizeof(buf)),
		       *bus ? bus : "-", *pci ? pci : "-", *serial ? serial : "-");
		for (int k = 0; mps && k < count(mps); k++) {
			char *s = item_str(mps, k);
			if (s)
				printf("%s%s", k ? ", " : " ", s);
			free(s);
		}
		putchar('\n');
		free(name);
		free(bus);
		free(pci);
		free(serial);
		if (mps)
			xmlrpc_DECREF(mps);
		xmlrpc_DECREF(it);
	}
}

static int
cmd_disks(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 0);
	if (rc || (rc = vactl_ready(v)))
		return rc;
	xmlrpc_value *res = callv(v, &rc, "disks", "va.disks", "()");
	return res ? show(v, res, print_disks) : rc;
}

/* ---- cpu, stats ---- */

static void
print_cpus(xmlrpc_value *arr)
{
	for (int i = 0; i < count(arr); i++) {
		xmlrpc_value *it = item(arr, i);
		printf("cpu%-4" PRId64 " %-8s%s\n", num(it, "cpu"), flag(it, "online") ? "online" : "offline",
		       flag(it, "can_offline") ? "" : " (cannot be taken offline)");
		xmlrpc_DECREF(it);
	}
}

static void
print_cpu_set(xmlrpc_value *st)
{
	printf("cpu%" PRId64 " is %s%s\n", num(st, "cpu"), flag(st, "online") ? "online" : "offline",
	       flag(st, "changed") ? "" : " (it was already)");
}

static int
cmd_cpu(struct vactl *v, int argc, char **argv)
{
	int rc = vactl_simple_cmd(v, argc, argv, 0, 3);
	if (rc)
		return rc;
	const char *sub = subcommand(argc, argv, "list");
	xmlrpc_value *res;
	if (!strcmp(sub, "list")) {
		if (optind < argc) {
			vactl_usage_error("cpu", "list: too many arguments");
			return VACTL_EXIT_USAGE;
		}
		if ((rc = vactl_ready(v)))
			return rc;
		res = callv(v, &rc, "cpu list", "va.cpu.list", "()");
		return res ? show(v, res, print_cpus) : rc;
	}
	if (strcmp(sub, "set"))
		return bad_sub("cpu", sub, "list or set");
	unsigned long cpu;
	const char *state = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (optind + 2 != argc || vactl_parse_ulong(argv[optind], 0, 65535, &cpu) < 0 || !state ||
	    (strcmp(state, "on") && strcmp(state, "off"))) {
		vactl_usage_error("cpu", "set: expected a CPU number and on or off");
		return VACTL_EXIT_USAGE;
	}
	if ((rc = vactl_ready(v)))
		return rc;
	res = callv(v, &rc, "cpu set", "va.cpu.set", "(ib)", (int)cpu,
		    (xmlrpc_bool)(strcmp(state, "on") == 0));
	return res ? show(v, res, print_cpu_set) : rc;
}

static int
cmd_stats(struct vactl *v, int argc, char **argv)
{
	return cmd_plain(v, argc, argv, "va.stats");
}

const struct vactl_command vactl_guest_commands[] = {
	{ "net", "net [interfaces | routes]\n"
	  "The guest's network interfaces with their addresses and counters\n"
	  "(va.net.interfaces, the default), or its routes (va.net.routes).\n", cmd_net },
	{ "time", "time [get | set NS|now|rtc]\n"
	  "  get          the guest's clock, how far it is from the host's, and whether\n"
	  "               it is synchronised (va.time.get)\n"
	  "  set NS       sets the guest's clock (and RTC) to NS nanoseconds since 1970;\n"
	  "  set now      to the host's clock; set rtc: from the guest's RTC\n"
	  "               (va.time.set: the agent must be started with\n"
	  "               --enable-rpcs va.time.set)\n", cmd_time },
	{ "timezone", "timezone\nThe guest's time zone and its offset from UTC (va.timezone).\n",
	  cmd_timezone },
	{ "os", "os\nThe guest's OS (os-release) and kernel (va.os.info).\n", cmd_os },
	{ "hostname", "hostname\nThe guest's host name (va.hostname).\n", cmd_hostname },
	{ "users", "users\nWho is logged in to the guest (va.users, from utmp).\n", cmd_users },
	{ "fs", "fs [info [MOUNT]... | freeze [MOUNT]... | thaw | status | trim [MOUNT]...]\n"
	  "  info         filesystems: size, use, and the disks under them with serial,\n"
	  "               bus and PCI address (va.fs.info; the default)\n"
	  "  freeze       freezes every local filesystem, or the MOUNTs (va.fs.freeze);\n"
	  "               until thaw the agent answers only ping, capabilities,\n"
	  "               fs status and fs thaw\n"
	  "  thaw         thaws them (va.fs.thaw)\n"
	  "  status       frozen or not, since when, the watchdog (va.fs.status)\n"
	  "  trim         discards unused blocks (va.fs.trim)\n", cmd_fs },
	{ "disks", "disks\nThe guest's disks: size, bus, PCI address, serial, partitions and\n"
	  "mounts (va.disks).\n", cmd_disks },
	{ "cpu", "cpu [list | set N on|off]\n"
	  "  list         the guest's CPUs, online or not (va.cpu.list; the default)\n"
	  "  set N on|off brings CPU N online or takes it offline (va.cpu.set; never 0)\n",
	  cmd_cpu },
	{ "stats", "stats\nLoad, CPU times, memory and disk I/O counters of the guest (va.stats).\n",
	  cmd_stats },
};

const size_t vactl_nguest_commands = sizeof(vactl_guest_commands) / sizeof(vactl_guest_commands[0]);
