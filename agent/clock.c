/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clock.c - the group "time" (no state of its own): va.time.get,
 * va.time.set and va.timezone.
 *
 * va.time.set changes the guest's clock: it is an opt-in method (off
 * unless --enable-rpcs names it).  Given a time (ns as an int or i8, or
 * seconds as a double, for clients that cannot send an i8: Python's
 * xmlrpc.client) it sets the system clock
 * (clock_settime) and then the RTC (RTC_SET_TIME, in UTC, as QEMU's
 * -rtc base=utc and every Linux guest of a hypervisor keep it); without
 * ns it reads the RTC and sets the system clock from it (what hwclock
 * --hctosys does after a migration or a resume).  An RTC that cannot be
 * written after the system clock was set is not a fault: the answer
 * says so (rtc: false, rtc_error).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR     wrong number or type of parameters
 *   XMLRPC_INDEX_ERROR    ns before 1970 or after 2262 (what an i8 of
 *                         nanoseconds holds), or before the RTC's range
 *   XMLRPC_INTERNAL_ERROR clock_settime failed (EPERM without
 *                         CAP_SYS_TIME), no RTC to read from, adjtimex
 *                         failed
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include <linux/rtc.h>

#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

#define NS INT64_C(1000000000)
/* /etc/timezone and the /etc/localtime link are a line. */
#define TZ_FILE_MAX 256

static const char *const rtc_paths[] = { "/dev/rtc0", "/dev/rtc" };

static int
rtc_open(int flags, const char **path)
{
	int fd = -1, err = ENOENT;

	for (size_t i = 0; i < sizeof(rtc_paths) / sizeof(rtc_paths[0]) && fd < 0; i++) {
		fd = open(rtc_paths[i], flags | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT)
			err = errno;
		*path = rtc_paths[i];
	}
	if (fd < 0)
		errno = err;
	return fd;
}

/* The RTC as unix seconds: 0, or -errno. */
static int
rtc_read(int64_t *secs, const char **path)
{
	struct rtc_time rt;
	struct tm tm;
	int fd = rtc_open(O_RDONLY, path);

	if (fd < 0)
		return -errno;
	memset(&rt, 0, sizeof(rt));
	int r = ioctl(fd, RTC_RD_TIME, &rt);
	int e = errno;
	close(fd);
	if (r < 0)
		return -e;
	memset(&tm, 0, sizeof(tm));
	tm.tm_sec = rt.tm_sec;
	tm.tm_min = rt.tm_min;
	tm.tm_hour = rt.tm_hour;
	tm.tm_mday = rt.tm_mday;
	tm.tm_mon = rt.tm_mon;
	tm.tm_year = rt.tm_year;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -ERANGE;
	*secs = (int64_t)t;
	return 0;
}

/* Writes secs (UTC) to the RTC: 0, or -errno. */
static int
rtc_write(int64_t secs, const char **path)
{
	struct rtc_time rt;
	struct tm tm;
	time_t t = (time_t)secs;
	int fd;

	if (!gmtime_r(&t, &tm))
		return -ERANGE;
	fd = rtc_open(O_RDONLY, path);
	if (fd < 0)
		return -errno;
	memset(&rt, 0, sizeof(rt));
	rt.tm_sec = tm.tm_sec;
	rt.tm_min = tm.tm_min;
	rt.tm_hour = tm.tm_hour;
	rt.tm_mday = tm.tm_mday;
	rt.tm_mon = tm.tm_mon;
	rt.tm_year = tm.tm_year;
	int r = ioctl(fd, RTC_SET_TIME, &rt);
	int e = errno;
	close(fd);
	return r < 0 ? -e : 0;
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static xmlrpc_value *
method_time_get(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct timex tx;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.time.get") < 0)
		return NULL;
	memset(&tx, 0, sizeof(tx));
	/* modes 0: reads the kernel's NTP state, changes nothing. */
	int state = adjtimex(&tx);
	int64_t ns = now_ns();
	if (state < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.time.get: adjtimex: %s", strerror(errno));
		return NULL;
	}
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_i8(env, st, "ns", ns);
	/* What ntpd, chrony and systemd-timesyncd tell the kernel. */
	va_set_bool(env, st, "synchronized", state != TIME_ERROR && !(tx.status & STA_UNSYNC));
	va_set_i8(env, st, "maxerror_us", tx.maxerror);
	va_set_i8(env, st, "esterror_us", tx.esterror);
	return va_result(env, st);
}

static xmlrpc_value *
method_time_set(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] = "va.time.set: expected ([i8 ns | double seconds])";
	int64_t ns = 0, secs = 0;
	const char *rtc = NULL;
	int have_ns, r;
	char why[160] = "";

	(void)server_info;
	(void)call_info;
	have_ns = va_params_count(env, params, 0, 1, usage);
	if (have_ns < 0)
		return NULL;
	if (have_ns) {
		xmlrpc_value *v = va_param_typed(env, params, 0, usage, XMLRPC_TYPE_DOUBLE,
						 XMLRPC_TYPE_DOUBLE);
		if (v) {
			/* Seconds as a double: what a client without i8 sends
			 * (Python's xmlrpc.client refuses ints past 2^31). */
			double d = 0;
			xmlrpc_read_double(env, v, &d);
			xmlrpc_DECREF(v);
			if (!env->fault_occurred && !(d >= 0 && d < 9.2e9)) {
				va_fault(env, XMLRPC_INDEX_ERROR,
				    "va.time.set: %g seconds is out of range (1970 to 2262)", d);
				return NULL;
			}
			ns = (int64_t)(d * 1e9);
		} else {
			xmlrpc_env_clean(env);
			xmlrpc_env_init(env);
			va_param_int64(env, params, 0, usage, &ns);
		}
		if (env->fault_occurred)
			return NULL;
		va_log_info("va.time.set %" PRId64, ns);
		if (ns < 0) {
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "va.time.set: ns %" PRId64 " is before 1970", ns);
			return NULL;
		}
	} else {
		va_log_info("va.time.set (from the RTC)");
		r = rtc_read(&secs, &rtc);
		if (r < 0) {
			va_fault(env, XMLRPC_INTERNAL_ERROR,
			    "va.time.set: cannot read the RTC (%s): %s", rtc, strerror(-r));
			return NULL;
		}
		ns = secs * NS;
	}
	struct timespec ts = { .tv_sec = (time_t)(ns / NS), .tv_nsec = (long)(ns % NS) };
	if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
		va_fault(env, errno == EINVAL ? XMLRPC_INDEX_ERROR :
		    XMLRPC_INTERNAL_ERROR, "va.time.set: clock_settime: %s", strerror(errno));
		return NULL;
	}
	int rtc_ok = 1;
	if (have_ns) {
		/* The RTC keeps whole seconds: round to the nearest. */
		r = rtc_write((ns + NS / 2) / NS, &rtc);
		if (r < 0) {
			rtc_ok = 0;
			snprintf(why, sizeof(why), "%s: %s", rtc, strerror(-r));
			va_log_warnx("va.time.set: the system clock is set, the RTC not: %s", why);
		}
	}
	va_log_info("va.time.set: the clock is now %" PRId64 ".%09" PRId64 "%s", ns / NS, ns % NS,
		    have_ns ? (rtc_ok ? ", and the RTC" : "") : " (from the RTC)");
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_i8(env, st, "ns", ns);
	va_set_text_z(env, st, "source", have_ns ? "host" : "rtc");
	va_set_bool(env, st, "rtc", rtc_ok);
	if (!rtc_ok)
		va_set_text_z(env, st, "rtc_error", why);
	return va_result(env, st);
}

/*
 * The zone's name: /etc/timezone (Debian), else the target of the
 * /etc/localtime link below a zoneinfo directory, else $TZ, else "UTC"
 * when /etc/localtime is missing too.  *source says which.  A malloc'd
 * string or NULL ("" source: unknown).
 */
static char *
zone_name(const char **source)
{
	char *s = va_read_file("/etc/timezone", TZ_FILE_MAX, NULL, NULL);
	char link[PATH_MAX];

	if (s) {
		s[strcspn(s, "\n")] = '\0';
		if (s[0]) {
			*source = "/etc/timezone";
			return s;
		}
		free(s);
	}
	ssize_t n = readlink("/etc/localtime", link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		const char *z = strstr(link, "zoneinfo/");
		if (z) {
			*source = "/etc/localtime";
			return strdup(z + strlen("zoneinfo/"));
		}
	}
	const char *tz = getenv("TZ");
	if (tz && tz[0]) {
		*source = "TZ";
		return strdup(tz[0] == ':' ? tz + 1 : tz);
	}
	if (access("/etc/localtime", F_OK) < 0) {
		*source = "default";
		return strdup("UTC");
	}
	*source = "";
	return NULL;
}

static xmlrpc_value *
method_timezone(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct tm tm;
	const char *source = "";

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.timezone") < 0)
		return NULL;
	/* Reads /etc/localtime (or $TZ) again: a change since start counts. */
	tzset();
	time_t now = time(NULL);
	if (!localtime_r(&now, &tm)) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.timezone: localtime: %s", strerror(errno));
		return NULL;
	}
	char *name = zone_name(&source);
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text_z(env, st, "name", name ? name : "");
	va_set_text_z(env, st, "source", source);
	va_set_text_z(env, st, "abbreviation", tm.tm_zone ? tm.tm_zone : "");
	va_set_int(env, st, "offset_s", tm.tm_gmtoff);
	va_set_bool(env, st, "dst", tm.tm_isdst > 0);
	free(name);
	return va_result(env, st);
}

static const struct xmlrpc_method_info3 time_methods[] = {
	{
		.methodName = "va.time.get",
		.methodFunction = method_time_get,
		.signatureString = "S:",
		.help = "va.time.get() -> struct {ns: i8 (the guest's clock, nanoseconds since "
			"1970), synchronized: boolean (an NTP client says the clock is "
			"synchronised: adjtimex), maxerror_us, esterror_us: i8}.",
	},
	{
		.methodName = "va.time.set",
		.methodFunction = method_time_set,
		.signatureString = "S:,S:I,S:i,S:d",
		.help = "va.time.set([i8 ns | double seconds]) -> struct {ns, source (host, "
			"rtc), rtc: boolean, [rtc_error]}. Changes the guest: off unless "
			"--enable-rpcs va.time.set. With a time (nanoseconds since 1970, or "
			"seconds as a double), sets the system clock to it and then the RTC "
			"(UTC); without, sets the system clock from the RTC.",
	},
	{
		.methodName = "va.timezone",
		.methodFunction = method_timezone,
		.signatureString = "S:",
		.help = "va.timezone() -> struct {name (e.g. Europe/Paris), source "
			"(/etc/timezone, /etc/localtime, TZ, default), abbreviation (CET), "
			"offset_s: int (east of UTC, now), dst: boolean}.",
	},
};

static const char *const time_opt_in[] = { "va.time.set", NULL };

const struct va_method_group va_group_time = {
	.name = "time",
	VA_GROUP_METHODS(time_methods),
	.opt_in = time_opt_in,
};
