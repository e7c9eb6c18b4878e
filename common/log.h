/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.h - logging for both daemons and the tools.
 *
 * In the foreground messages go to stderr; as a daemon to syslog
 * (facility LOG_DAEMON).  va_log_warn() and va_log_err() append
 * strerror(errno) of the errno at the time of the call; the *x variants
 * do not.  errno is preserved by every function here.  Thread-safe.
 *
 * Everything but debug messages is rate-limited per kind (per format
 * string): at most VA_LOG_BURST of a kind per VA_LOG_WINDOW_MS, then the
 * rest are counted and the next one that passes is preceded by
 * "N similar messages suppressed".  So whatever a peer makes a daemon
 * log, the log grows by a bounded amount.
 */
#define VA_LOG_BURST 20
#define VA_LOG_WINDOW_MS 10000
#ifndef VA_LOG_H
#define VA_LOG_H

#include <stdarg.h>

enum va_log_level {
	VA_LOG_ERROR = 0,
	VA_LOG_WARN = 1,
	VA_LOG_INFO = 2,
	VA_LOG_DEBUG = 3,
};

/* Changes the rate limit (tests); burst 0 logs nothing but debug. */
void va_log_set_rate_limit(unsigned burst, unsigned window_ms);

/* ident names the program in syslog and on stderr. */
void va_log_init(const char *ident, int use_syslog, enum va_log_level level);
void va_log_set_level(enum va_log_level level);
enum va_log_level va_log_get_level(void);
/* "error", "warn", "info" or "debug" -> level; -1 for anything else. */
int va_log_parse_level(const char *name);

void va_log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void va_log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void va_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void va_log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void va_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void va_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Holding: while held, messages are not written (a syslogd or a stderr
 * file on a frozen filesystem would block the daemon) but kept in memory,
 * the first VA_LOG_HOLD_MAX of them (each cut to VA_LOG_HOLD_LEN bytes);
 * releasing writes them in order, then how many were dropped.  Fatal
 * messages are written at once.  va-agent holds while filesystems are
 * frozen (agent/freeze.c).
 */
#define VA_LOG_HOLD_MAX 64
#define VA_LOG_HOLD_LEN 512
void va_log_hold(void);
void va_log_release(void);
int va_log_held(void);

/* The ident given to va_log_init() ("virtagent" before). */
const char *va_log_ident(void);

/*
 * Logs at error level and exits with status 1.  Before exit(), the fatal
 * hook (if set) gets the message as logged, without ident and level:
 * common/daemon.c uses it to hand the reason to the parent that waits
 * for a daemon's start.
 */
void va_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void va_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* One hook per process; NULL removes it.  It must not call va_fatal*(). */
void va_log_set_fatal_hook(void (*hook)(const char *msg));

#endif
