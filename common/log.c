/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "virtagent";
static int log_syslog;
static enum va_log_level log_level = VA_LOG_INFO;
static void (*fatal_hook)(const char *msg);

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
va_log_init(const char *ident, int use_syslog, enum va_log_level level)
{
	log_ident = ident;
	log_level = level;
	if (log_syslog && !use_syslog)
		closelog();
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
va_log_set_level(enum va_log_level level)
{
	log_level = level;
}

enum va_log_level
va_log_get_level(void)
{
	return log_level;
}

const char *
va_log_ident(void)
{
	return log_ident;
}

void
va_log_set_fatal_hook(void (*hook)(const char *msg))
{
	fatal_hook = hook;
}

int
va_log_parse_level(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (name && strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * A message is one line: control characters (but tab) become '?'.  Much
 * of what is logged comes from a peer (a guest's event name or shutdown
 * reason, an agent's error text, a fault string), and a newline in it
 * would write a line of the peer's choosing ("va-proxy: error: ...") into
 * the log, an escape sequence would drive the terminal that shows it.
 */
static void
one_line(char *msg)
{
	for (unsigned char *p = (unsigned char *)msg; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			*p = '?';
}

static void
format_msg(char *msg, size_t size, int saved_errno, int with_errno, const char *fmt, va_list ap)
{
	int n = vsnprintf(msg, size, fmt, ap);
	if (n < 0)
		n = 0;
	if (with_errno && (size_t)n < size)
		snprintf(msg + n, size - (size_t)n, ": %s", strerror(saved_errno));
	one_line(msg);
}

/* Held messages (va_log_hold), under hold_lock. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static int hold_on;
static unsigned hold_n;
static unsigned long hold_dropped;
static struct {
	enum va_log_level level;
	char msg[VA_LOG_HOLD_LEN];
} hold_msgs[VA_LOG_HOLD_MAX];

static void
emit_now(enum va_log_level level, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	if (log_syslog)
		syslog(prio[level], "%s", msg);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, level_names[level], msg);
}

/* Writes msg, or keeps it while held; 1 when kept (or dropped). */
static int
hold_msg(enum va_log_level level, const char *msg)
{
	int held;

	pthread_mutex_lock(&hold_lock);
	held = hold_on;
	if (held && hold_n < VA_LOG_HOLD_MAX) {
		hold_msgs[hold_n].level = level;
		snprintf(hold_msgs[hold_n].msg, VA_LOG_HOLD_LEN, "%s", msg);
		hold_n++;
	} else if (held) {
		hold_dropped++;
	}
	pthread_mutex_unlock(&hold_lock);
	return held;
}

static void
emit(enum va_log_level level, const char *msg)
{
	if (!hold_msg(level, msg))
		emit_now(level, msg);
}

void
va_log_hold(void)
{
	pthread_mutex_lock(&hold_lock);
	hold_on = 1;
	pthread_mutex_unlock(&hold_lock);
}

int
va_log_held(void)
{
	pthread_mutex_lock(&hold_lock);
	int on = hold_on;
	pthread_mutex_unlock(&hold_lock);
	return on;
}

void
va_log_release(void)
{
	pthread_mutex_lock(&hold_lock);
	/* Written under the lock, so that they stay in order and before
	 * what other threads log next. */
	for (unsigned i = 0; i < hold_n; i++)
		emit_now(hold_msgs[i].level, hold_msgs[i].msg);
	if (hold_dropped) {
		char note[128];
		snprintf(note, sizeof(note), "%lu more messages were not logged while logging was held",
			 hold_dropped);
		emit_now(VA_LOG_WARN, note);
	}
	hold_n = 0;
	hold_dropped = 0;
	hold_on = 0;
	pthread_mutex_unlock(&hold_lock);
}

/*
 * Rate limiting, per kind of message (its format string): at most
 * VA_LOG_BURST messages of a kind per VA_LOG_WINDOW_MS; the rest are
 * counted, and the next message of that kind after the window says how
 * many were suppressed.  A peer that can make us log (a guest's reset
 * storm, a flood of refused HTTP requests) cannot fill the disk.  The
 * table is small and keyed by the format's address: kinds beyond it
 * share slots, which only makes limiting stricter.
 */
#define RL_SLOTS 256

static struct rl_slot {
	const char *fmt;
	uint64_t window_start;
	unsigned count;
	unsigned long suppressed;
} rl_table[RL_SLOTS];
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned rl_burst = VA_LOG_BURST;
static uint64_t rl_window = VA_LOG_WINDOW_MS;

void
va_log_set_rate_limit(unsigned burst, unsigned window_ms)
{
	pthread_mutex_lock(&rl_lock);
	rl_burst = burst;
	rl_window = window_ms;
	memset(rl_table, 0, sizeof(rl_table));
	pthread_mutex_unlock(&rl_lock);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 1 when a message of this kind may be logged now; *suppressed: how many were not since. */
static int
rl_admit(const char *fmt, unsigned long *suppressed)
{
	uintptr_t h = (uintptr_t)fmt;
	struct rl_slot *s = &rl_table[(h >> 4 ^ h >> 12) % RL_SLOTS];
	uint64_t now = mono_ms();
	int ok;

	*suppressed = 0;
	pthread_mutex_lock(&rl_lock);
	if (s->fmt != fmt || now - s->window_start >= rl_window) {
		*suppressed = s->fmt == fmt ? s->suppressed : 0;
		s->fmt = fmt;
		s->window_start = now;
		s->count = 0;
		s->suppressed = 0;
	}
	ok = s->count < rl_burst;
	if (ok)
		s->count++;
	else
		s->suppressed++;
	pthread_mutex_unlock(&rl_lock);
	return ok;
}

static void
vlog(enum va_log_level level, int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	char msg[2048];
	unsigned long suppressed = 0;

	if (level > log_level) {
		errno = saved;
		return;
	}
	/* Debug output is asked for by whoever runs the daemon: not limited. */
	if (level < VA_LOG_DEBUG && !rl_admit(fmt, &suppressed)) {
		errno = saved;
		return;
	}
	if (suppressed) {
		char note[160];
		snprintf(note, sizeof(note), "%lu similar messages suppressed (\"%.80s\")",
			 suppressed, fmt);
		emit(level, note);
	}
	format_msg(msg, sizeof(msg), saved, with_errno, fmt, ap);
	emit(level, msg);
	errno = saved;
}

/* Error level is never filtered out (VA_LOG_ERROR is the lowest level). */
static void __attribute__((noreturn))
vfatal(int with_errno, const char *fmt, va_list ap)
{
	char msg[2048];

	format_msg(msg, sizeof(msg), errno, with_errno, fmt, ap);
	va_log_release(); /* what was held first, then why the daemon exits */
	emit_now(VA_LOG_ERROR, msg);
	if (fatal_hook) {
		void (*hook)(const char *) = fatal_hook;
		fatal_hook = NULL; /* once, even if the hook ends up here again */
		hook(msg);
	}
	exit(1);
}

#define DEFINE_LOG(name, level, with_errno)       \
	void name(const char *fmt, ...)           \
	{                                         \
		va_list ap;                       \
		va_start(ap, fmt);                \
		vlog(level, with_errno, fmt, ap); \
		va_end(ap);                       \
	}

DEFINE_LOG(va_log_err, VA_LOG_ERROR, 1)
DEFINE_LOG(va_log_errx, VA_LOG_ERROR, 0)
DEFINE_LOG(va_log_warn, VA_LOG_WARN, 1)
DEFINE_LOG(va_log_warnx, VA_LOG_WARN, 0)
DEFINE_LOG(va_log_info, VA_LOG_INFO, 0)
DEFINE_LOG(va_log_debug, VA_LOG_DEBUG, 0)

void
va_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfatal(1, fmt, ap);
	va_end(ap); /* not reached */
}

void
va_fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfatal(0, fmt, ap);
	va_end(ap); /* not reached */
}
