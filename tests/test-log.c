/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-log.c - the log's rate limit (common/log.c): a flood of one kind
 * of message is cut to the burst, the next window says how many were
 * suppressed, other kinds and debug output are not affected; held
 * messages (va_log_hold) wait for the release; a message is one line.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "cunit-main.h"

#include "log.h"
#include "loop.h"

/* Runs fn with stderr sent to a file; returns what was written (malloc'ed). */
static char *
capture(void (*fn)(void))
{
	char path[] = "/tmp/va-log-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(2);
	fflush(stderr);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	size_t len = (size_t)lseek(fd, 0, SEEK_END);
	char *s = calloc(1, len + 1);
	pread(fd, s, len, 0);
	close(fd);
	unlink(path);
	return s;
}

static unsigned
count(const char *s, const char *needle)
{
	unsigned n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void
flood(void)
{
	for (int i = 0; i < 1000; i++)
		va_log_warnx("peer %d sent garbage", i);
	va_log_warnx("another kind of message");
	for (int i = 0; i < 50; i++)
		va_log_debug("debug %d", i);
}

static void
after_window(void)
{
	usleep(250 * 1000);
	va_log_warnx("peer %d sent garbage", 1000);
}

static void
test_flood(void)
{
	va_log_init("test-log", 0, VA_LOG_DEBUG);
	va_log_set_rate_limit(20, 200);
	char *out = capture(flood);
	CU_ASSERT_EQUAL(count(out, "sent garbage"), 20);
	CU_ASSERT_EQUAL(count(out, "another kind"), 1);
	CU_ASSERT_EQUAL(count(out, "debug: debug"), 50);
	CU_ASSERT_EQUAL(count(out, "suppressed"), 0);
	free(out);
	out = capture(after_window);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "980 similar messages suppressed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "peer 1000 sent garbage"));
	free(out);
	va_log_set_rate_limit(VA_LOG_BURST, VA_LOG_WINDOW_MS);
}

/* Bytes logged by a flood stay bounded: a million lines of one kind. */
static void
million(void)
{
	for (int i = 0; i < 1000000; i++)
		va_log_warnx("guest %s: reset storm %d", "vm1", i);
}

static void
test_volume(void)
{
	va_log_init("test-log", 0, VA_LOG_INFO);
	char *out = capture(million);
	CU_ASSERT(strlen(out) < 4096);
	CU_ASSERT_EQUAL(count(out, "reset storm"), VA_LOG_BURST);
	free(out);
}

/* Held messages (va_log_hold) are written at the release, in order, the excess counted. */
static off_t written_while_held = -1;

static void
hold_then_release(void)
{
	va_log_hold();
	CU_ASSERT_TRUE(va_log_held());
	for (int i = 0; i < VA_LOG_HOLD_MAX + 10; i++)
		va_log_info("held %d", i);
	fflush(stderr);
	written_while_held = lseek(2, 0, SEEK_END);
	va_log_release();
	CU_ASSERT_FALSE(va_log_held());
	va_log_info("after the release");
}

static void
test_hold(void)
{
	va_log_init("test-log", 0, VA_LOG_INFO);
	va_log_set_rate_limit(1000, VA_LOG_WINDOW_MS);
	char *out = capture(hold_then_release);
	CU_ASSERT_EQUAL(written_while_held, 0);
	CU_ASSERT_EQUAL(count(out, "held "), VA_LOG_HOLD_MAX);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "held 0\n"));
	CU_ASSERT_PTR_NULL(strstr(out, "held 64\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "10 more messages were not logged while logging was held"));
	/* In order: the held ones, then the note, then what came after. */
	const char *a = strstr(out, "held 63"), *b = strstr(out, "10 more"), *c = strstr(out, "after the release");
	CU_ASSERT(a && b && c && a < b && b < c);
	free(out);
	va_log_set_rate_limit(VA_LOG_BURST, VA_LOG_WINDOW_MS);
}

static void
peer_words(void)
{
	va_log_info("evil: event %s", "line\nva-proxy: error: forged\r\x1b[31mred\x7f\ttab");
}

/* A peer's words with a newline cannot write a line of their own. */
static void
test_one_line(void)
{
	va_log_init("test-log", 0, VA_LOG_INFO);
	char *out = capture(peer_words);
	CU_ASSERT_EQUAL(count(out, "\n"), 1);
	CU_ASSERT_PTR_NULL(strstr(out, "\nva-proxy"));
	CU_ASSERT_PTR_NULL(strchr(out, 0x1b));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "line?va-proxy: error: forged??[31mred?\ttab\n"));
	free(out);
}

static const struct va_test tests[] = {
	{ "a message is one line (control characters of a peer's words: ?)", test_one_line },
	{ "a flood of one kind is cut to the burst", test_flood },
	{ "a million lines of one kind: a few KiB", test_volume },
	{ "held messages wait for the release", test_hold },
};

int
main(void)
{
	return va_test_run("log", VA_TESTS(tests));
}
