/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-channel.c - CUnit tests for common/channel.c.
 *
 * Real fds only: unix sockets in a fresh mkdtemp directory, pty pairs
 * for isa-serial and for the virtio-serial HUP logic (a pty slave whose
 * master is closed reports POLLHUP at once, every time, as a
 * virtio-serial port without a host does).  Every wait is a poll loop
 * with a deadline; nothing sleeps blindly.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "channel.h"
#include "log.h"

#include "cunit-main.h"

#define MAX_LOG 64
#define MAX_CH 4

static char tmpdir[96]; /* made by main() */
static bool verbose; /* VA_TEST_VERBOSE=1: debug logs and measurements */

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *
tmp_path(const char *name)
{
	static char paths[8][128];
	static int next;
	char *p = paths[next++ % 8];
	snprintf(p, sizeof(paths[0]), "%s/%s", tmpdir, name);
	return p;
}

/* ---- a channel under test, with what it saw ---- */

struct tch {
	va_channel *ch;
	enum va_channel_state log[MAX_LOG];
	int nlog;
	bool repeat; /* the same state reported twice in a row */
	struct va_buf in;  /* bytes read */
	struct va_buf out; /* bytes still to write */
	int read_errs;
	unsigned dispatches;
	bool no_read; /* a caller that does not read when told READABLE */
};

static void
state_cb(void *opaque, enum va_channel_state st)
{
	struct tch *t = opaque;
	enum va_channel_state prev = t->nlog ? t->log[t->nlog - 1] : VA_CHANNEL_DOWN;

	if (st == prev)
		t->repeat = true;
	if (t->nlog < MAX_LOG)
		t->log[t->nlog++] = st;
}

static int
tch_open(struct tch *t, const char *spec)
{
	char err[256];
	int r;

	memset(t, 0, sizeof(*t));
	r = va_channel_open(spec, &t->ch, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "\n  open %s: %s\n", spec, err);
		return r;
	}
	va_channel_set_state_cb(t->ch, state_cb, t);
	return 0;
}

static void
tch_close(struct tch *t)
{
	va_channel_free(t->ch);
	t->ch = NULL;
	va_buf_free(&t->in);
	va_buf_free(&t->out);
}

static bool
is_up(const struct tch *t)
{
	return t->ch && va_channel_state(t->ch) == VA_CHANNEL_UP;
}

static void
drain(struct tch *t)
{
	for (;;) {
		if (va_buf_reserve(&t->in, 4096) < 0)
			return;
		ssize_t r = va_channel_read(t->ch, t->in.data + t->in.len, 4096);
		if (r < 0)
			t->read_errs++;
		if (r <= 0)
			return;
		t->in.len += (size_t)r;
	}
}

/* Writes with two iovecs, so that writev sees more than one. */
static void
flush(struct tch *t)
{
	while (t->out.len > 0) {
		size_t half = t->out.len / 2;
		struct iovec iov[2] = {
			{ t->out.data, half },
			{ t->out.data + half, t->out.len - half },
		};
		ssize_t r = va_channel_writev(t->ch, iov, 2);
		if (r <= 0)
			return;
		va_buf_consume(&t->out, (size_t)r);
	}
}

/*
 * One turn of a caller's loop over several channels: prepare, poll (at
 * most until end, and at most cap_ms when cap_ms >= 0), dispatch, read
 * what is readable, write what is pending.
 */
static void
loop_once(struct tch **ts, size_t n, uint64_t end, int cap_ms)
{
	struct pollfd pfd[MAX_CH * VA_CHANNEL_MAX_POLLFDS];
	size_t cnt[MAX_CH], k = 0;
	int timeout = cap_ms;
	uint64_t now = now_ms();

	for (size_t i = 0; i < n; i++) {
		flush(ts[i]);
		cnt[i] = va_channel_prepare(ts[i]->ch, pfd + k, VA_CHANNEL_MAX_POLLFDS,
					    ts[i]->out.len > 0, now, &timeout);
		k += cnt[i];
	}
	uint64_t left = end > now ? end - now : 0;
	if (timeout < 0 || (uint64_t)timeout > left)
		timeout = (int)left;
	if (poll(pfd, k, timeout) < 0 && errno != EINTR)
		CU_FAIL("poll");
	now = now_ms();
	k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned f = va_channel_dispatch(ts[i]->ch, pfd + k, cnt[i], now);
		k += cnt[i];
		ts[i]->dispatches++;
		if ((f & VA_CHANNEL_READABLE) && !ts[i]->no_read)
			drain(ts[i]);
		flush(ts[i]);
	}
}

/* Runs the loop until cond holds or ms pass; evaluates to cond. */
#define RUN_UNTIL(ts, n, ms, cond)                                  \
	({                                                          \
		uint64_t end_ = now_ms() + (ms);                    \
		bool ok_;                                           \
		while (!(ok_ = (cond)) && now_ms() < end_)          \
			loop_once((ts), (n), end_, 20);             \
		ok_;                                                \
	})

/* ---- plain sockets and ptys ---- */

static int
client_connect(const char *path)
{
	int fd = va_test_unix_connect(path);

	if (fd < 0) {
		perror("client connect");
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Non-blocking read of all that waits on fd into b; true at EOF. */
static bool
pull(int fd, struct va_buf *b)
{
	for (;;) {
		if (va_buf_reserve(b, 4096) < 0)
			return false;
		ssize_t r = read(fd, b->data + b->len, 4096);
		if (r == 0)
			return true;
		if (r < 0)
			return errno == EIO; /* a pty master whose slave closed */
		b->len += (size_t)r;
	}
}

static bool
buf_is(const struct va_buf *b, const void *data, size_t len)
{
	return b->len == len && memcmp(b->data, data, len) == 0;
}

static int
open_pty(char *slave, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, slave, len) != 0) {
		perror("pty");
		if (m >= 0)
			close(m);
		return -1;
	}
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	return m;
}

/* ---- spec parsing ---- */

static void
expect_open_error(const char *spec, int want, const char *needle)
{
	char err[256];
	va_channel *ch = (va_channel *)(uintptr_t)1;
	int r = va_channel_open(spec, &ch, err, sizeof(err));

	CU_ASSERT_EQUAL(r, -want);
	CU_ASSERT_PTR_NULL(ch);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
	if (r != -want || !strstr(err, needle))
		fprintf(stderr, "\n  spec '%.60s': r=%d err='%s' (wanted %d, '%s')\n",
			spec ? spec : "(null)", r, err, -want, needle);
	va_channel_free(r == 0 ? ch : NULL);
}

static void
test_spec_errors(void)
{
	char spec[512], path[200];

	expect_open_error(NULL, EINVAL, "no channel spec");
	expect_open_error("", EINVAL, "missing ':'");
	expect_open_error("virtio-serial", EINVAL, "missing ':'");
	expect_open_error("/dev/ttyS1", EINVAL, "missing ':'");
	expect_open_error("tcp:127.0.0.1:4444", EINVAL, "unknown channel kind 'tcp'");
	expect_open_error("UNIX:/tmp/x", EINVAL, "unknown channel kind 'UNIX'");
	expect_open_error("unix-listenx:/tmp/x", EINVAL, "unknown channel kind");
	expect_open_error(":/tmp/x", EINVAL, "unknown channel kind ''");
	expect_open_error("virtio-serial:", EINVAL, "empty path");
	expect_open_error("isa-serial:", EINVAL, "empty path");
	expect_open_error("isa-serial:,9600", EINVAL, "empty path");
	expect_open_error("unix:", EINVAL, "empty path");
	expect_open_error("unix-listen:", EINVAL, "empty path");
	expect_open_error("isa-serial:/dev/ttyS1,1234", EINVAL, "unknown baud rate '1234'");
	expect_open_error("isa-serial:/dev/ttyS1,0", EINVAL, "unknown baud rate '0'");
	expect_open_error("isa-serial:/dev/ttyS1,115200x", EINVAL, "unknown baud rate");
	expect_open_error("isa-serial:/dev/ttyS1,-9600", EINVAL, "unknown baud rate");
	expect_open_error("isa-serial:/dev/ttyS1,4000001", EINVAL, "unknown baud rate");
	expect_open_error("isa-serial:/dev/ttyS1,99999999999999999999999", EINVAL,
			  "unknown baud rate");
	expect_open_error("isa-serial:/dev/ttyS1,", EINVAL, "empty baud rate");

	/* sun_path holds 107 bytes and the NUL. */
	struct sockaddr_un sun;
	size_t lim = sizeof(sun.sun_path) - 1;
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[lim + 1] = '\0';
	snprintf(spec, sizeof(spec), "unix:%s", path);
	expect_open_error(spec, EINVAL, "the limit is 107");
	snprintf(spec, sizeof(spec), "unix-listen:%s", path);
	expect_open_error(spec, EINVAL, "socket path is 108 bytes long");
	/* Exactly at the limit is fine (unix: does not fail without a peer). */
	path[lim] = '\0';
	snprintf(spec, sizeof(spec), "unix:%s", path);
	va_channel *ch = NULL;
	char err[256];
	CU_ASSERT_EQUAL(va_channel_open(spec, &ch, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(ch);
	if (ch) {
		CU_ASSERT_EQUAL(va_channel_kind(ch), VA_CHANNEL_UNIX);
		CU_ASSERT_STRING_EQUAL(va_channel_spec(ch), spec);
		CU_ASSERT_EQUAL(va_channel_state(ch), VA_CHANNEL_DOWN);
	}
	va_channel_free(ch);

	/* A huge spec: the message is cut, the cause still shows. */
	size_t big = 100000;
	char *huge = malloc(big + 1);
	CU_ASSERT_FATAL(huge != NULL);
	memset(huge, 'x', big);
	huge[big] = '\0';
	expect_open_error(huge, EINVAL, "missing ':'");
	memcpy(huge, "unix:", 5);
	expect_open_error(huge, EINVAL, "the limit is 107");
	free(huge);

	/* Tiny or no error buffer. */
	char small[8];
	ch = NULL;
	CU_ASSERT_EQUAL(va_channel_open("nope", &ch, small, sizeof(small)), -EINVAL);
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	CU_ASSERT_EQUAL(va_channel_open("nope", &ch, NULL, 0), -EINVAL);
	CU_ASSERT_PTR_NULL(ch);
	CU_ASSERT_EQUAL(va_channel_open("unix:/x", NULL, err, sizeof(err)), -EINVAL);
}

/* ---- unix-listen with plain clients ---- */

static void
test_listen_client(void)
{
	const char *path = tmp_path("l1.sock");
	char spec[160];
	struct tch t;
	struct tch *ts[] = { &t };
	struct va_buf got = { 0 };
	struct stat st;
	bool eof = false;

	snprintf(spec, sizeof(spec), "unix-listen:%s", path);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	CU_ASSERT_EQUAL(va_channel_kind(t.ch), VA_CHANNEL_UNIX_LISTEN);
	CU_ASSERT(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(va_channel_state(t.ch), VA_CHANNEL_DOWN);
	/* The listen fd is polled even while nobody is connected. */
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	int timeout = -1;
	CU_ASSERT_EQUAL(va_channel_prepare(t.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, now_ms(),
					   &timeout), 1);
	CU_ASSERT_EQUAL(timeout, -1);

	int c = client_connect(path);
	CU_ASSERT_FATAL(c >= 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, is_up(&t)));
	CU_ASSERT_EQUAL(t.nlog, 1);

	static const char ping[] = "ping\r\n\xff\x00 end";
	CU_ASSERT_EQUAL(write(c, ping, sizeof(ping)), (ssize_t)sizeof(ping));
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, t.in.len >= sizeof(ping)));
	CU_ASSERT(buf_is(&t.in, ping, sizeof(ping)));

	static const char pong[] = "\xffpong\r\n";
	va_buf_append(&t.out, pong, sizeof(pong));
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, (pull(c, &got), got.len >= sizeof(pong))));
	CU_ASSERT(buf_is(&got, pong, sizeof(pong)));

	close(c);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, !is_up(&t)));
	CU_ASSERT_EQUAL(t.nlog, 2);
	CU_ASSERT_FALSE(t.repeat);
	CU_ASSERT_EQUAL(t.read_errs, 0);

	/* Down: nothing to read, nothing accepted, no error. */
	char b[4];
	struct iovec iov = { (void *)"abc", 3 };
	CU_ASSERT_EQUAL(va_channel_read(t.ch, b, sizeof(b)), 0);
	CU_ASSERT_EQUAL(va_channel_writev(t.ch, &iov, 1), 0);

	/* A new client after the first left: UP again. */
	c = client_connect(path);
	CU_ASSERT_FATAL(c >= 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, is_up(&t)));
	CU_ASSERT_EQUAL(t.nlog, 3);

	/* free closes the peer and removes the socket file. */
	tch_close(&t);
	CU_ASSERT(lstat(path, &st) < 0 && errno == ENOENT);
	va_buf_free(&got);
	uint64_t end = now_ms() + 2000;
	while (!eof && now_ms() < end) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		poll(&p, 1, 50);
		eof = pull(c, &got);
	}
	CU_ASSERT(eof);
	close(c);
	va_buf_free(&got);
}

static void
test_listen_replace(void)
{
	const char *path = tmp_path("l2.sock");
	char spec[160];
	struct tch t;
	struct tch *ts[] = { &t };
	struct va_buf got1 = { 0 }, got2 = { 0 };
	bool eof1 = false;

	snprintf(spec, sizeof(spec), "unix-listen:%s", path);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	int c1 = client_connect(path);
	CU_ASSERT_FATAL(c1 >= 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, is_up(&t)));

	int c2 = client_connect(path);
	CU_ASSERT_FATAL(c2 >= 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, t.nlog >= 3));
	CU_ASSERT_EQUAL(t.nlog, 3);
	CU_ASSERT_EQUAL(t.log[0], VA_CHANNEL_UP);
	CU_ASSERT_EQUAL(t.log[1], VA_CHANNEL_DOWN);
	CU_ASSERT_EQUAL(t.log[2], VA_CHANNEL_UP);
	CU_ASSERT(is_up(&t));

	va_buf_append_str(&t.out, "after");
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000,
			    (eof1 = eof1 || pull(c1, &got1), pull(c2, &got2),
			     got2.len >= 5 && eof1)));
	CU_ASSERT(buf_is(&got2, "after", 5));
	CU_ASSERT(eof1);
	CU_ASSERT_EQUAL(got1.len, 0);

	/* And the new peer's bytes arrive. */
	CU_ASSERT_EQUAL(write(c2, "x", 1), 1);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, t.in.len >= 1));
	CU_ASSERT(buf_is(&t.in, "x", 1));
	CU_ASSERT_FALSE(t.repeat);

	close(c1);
	close(c2);
	tch_close(&t);
	va_buf_free(&got1);
	va_buf_free(&got2);
}

/* A write to a peer that left: 0 and DOWN, never SIGPIPE (left at its
 * default here, so it would kill the test). */
static void
test_listen_epipe(void)
{
	const char *path = tmp_path("l3.sock");
	char spec[160];
	struct tch t;
	struct tch *ts[] = { &t };
	struct iovec iov = { (void *)"data", 4 };

	snprintf(spec, sizeof(spec), "unix-listen:%s", path);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	int c = client_connect(path);
	CU_ASSERT_FATAL(c >= 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, is_up(&t)));
	close(c);
	/* No dispatch in between: writev itself finds out. */
	CU_ASSERT_EQUAL(va_channel_writev(t.ch, &iov, 1), 0);
	CU_ASSERT_EQUAL(va_channel_state(t.ch), VA_CHANNEL_DOWN);
	CU_ASSERT_EQUAL(t.nlog, 2);
	CU_ASSERT_EQUAL(va_channel_writev(t.ch, &iov, 1), 0);
	CU_ASSERT_EQUAL(t.nlog, 2);

	/* EOF seen by read() without dispatch also turns it DOWN. */
	c = client_connect(path);
	CU_ASSERT_FATAL(c >= 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, is_up(&t)));
	close(c);
	char b[8];
	CU_ASSERT_EQUAL(va_channel_read(t.ch, b, sizeof(b)), 0);
	CU_ASSERT_EQUAL(va_channel_state(t.ch), VA_CHANNEL_DOWN);
	CU_ASSERT_EQUAL(t.nlog, 4);
	CU_ASSERT_FALSE(t.repeat);

	/* Bad arguments. */
	CU_ASSERT_EQUAL(va_channel_writev(t.ch, &iov, -1), -1);
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_EQUAL(va_channel_read(t.ch, NULL, 4), -1);
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_EQUAL(va_channel_read(t.ch, b, 0), 0);
	tch_close(&t);
}

static void
test_listen_socket_file(void)
{
	char spec[160];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	va_channel *ch = NULL;
	char err[256];
	int fd;

	/* A stale socket file (bound, nobody listening) is replaced. */
	const char *stale = tmp_path("stale.sock");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", stale);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	snprintf(spec, sizeof(spec), "unix-listen:%s", stale);
	CU_ASSERT_EQUAL(va_channel_open(spec, &ch, err, sizeof(err)), 0);
	va_channel_free(ch);
	CU_ASSERT(lstat(stale, &st) < 0);

	/* A live one is left alone. */
	const char *live = tmp_path("live.sock");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", live);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CU_ASSERT_FATAL(listen(fd, 4) == 0);
	snprintf(spec, sizeof(spec), "unix-listen:%s", live);
	expect_open_error(spec, EADDRINUSE, "another process is listening");
	CU_ASSERT(lstat(live, &st) == 0 && S_ISSOCK(st.st_mode));
	close(fd);
	unlink(live);

	/* A file that is not a socket is never removed. */
	const char *reg = tmp_path("regular");
	fd = open(reg, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	snprintf(spec, sizeof(spec), "unix-listen:%s", reg);
	expect_open_error(spec, EEXIST, "not a socket");
	CU_ASSERT(lstat(reg, &st) == 0 && S_ISREG(st.st_mode));
	unlink(reg);

	/* A directory that does not exist: the bind error is named. */
	snprintf(spec, sizeof(spec), "unix-listen:%s/nodir/x.sock", tmpdir);
	expect_open_error(spec, ENOENT, "cannot bind");

	/* free removes only its own file, not one that replaced it. */
	const char *mine = tmp_path("mine.sock");
	snprintf(spec, sizeof(spec), "unix-listen:%s", mine);
	CU_ASSERT_FATAL(va_channel_open(spec, &ch, err, sizeof(err)) == 0);
	unlink(mine);
	fd = open(mine, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	va_channel_free(ch);
	CU_ASSERT(lstat(mine, &st) == 0 && S_ISREG(st.st_mode));
	unlink(mine);
}

/* ---- unix connect to unix-listen ---- */

static void
test_unix_pair(void)
{
	const char *path = tmp_path("p1.sock");
	char lspec[160], cspec[160];
	struct tch l, c;
	struct tch *ts[] = { &l, &c };

	snprintf(lspec, sizeof(lspec), "unix-listen:%s", path);
	snprintf(cspec, sizeof(cspec), "unix:%s", path);
	CU_ASSERT_FATAL(tch_open(&l, lspec) == 0);
	CU_ASSERT_FATAL(tch_open(&c, cspec) == 0);
	CU_ASSERT_EQUAL(va_channel_kind(c.ch), VA_CHANNEL_UNIX);

	/* The first prepare asks for an immediate dispatch. */
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	int timeout = -1;
	va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, now_ms(), &timeout);
	CU_ASSERT_EQUAL(timeout, 0);

	CU_ASSERT(RUN_UNTIL(ts, 2, 2000, is_up(&l) && is_up(&c)));
	CU_ASSERT_EQUAL(l.nlog, 1);
	CU_ASSERT_EQUAL(c.nlog, 1);

	va_buf_append_str(&c.out, "hello\r\n");
	CU_ASSERT(RUN_UNTIL(ts, 2, 2000, l.in.len >= 7));
	CU_ASSERT(buf_is(&l.in, "hello\r\n", 7));
	va_buf_append_str(&l.out, "\xffworld");
	CU_ASSERT(RUN_UNTIL(ts, 2, 2000, c.in.len >= 6));
	CU_ASSERT(buf_is(&c.in, "\xffworld", 6));

	/* 4 MiB each way at once: partial writes, EAGAIN, POLLOUT. */
	size_t big = 4u << 20;
	uint8_t *pat = malloc(big);
	CU_ASSERT_FATAL(pat != NULL);
	for (size_t i = 0; i < big; i++)
		pat[i] = (uint8_t)(i * 7 + (i >> 13));
	va_buf_free(&l.in);
	va_buf_free(&c.in);
	va_buf_append(&c.out, pat, big);
	va_buf_append(&l.out, pat, big);
	CU_ASSERT(RUN_UNTIL(ts, 2, 5000, l.in.len >= big && c.in.len >= big));
	CU_ASSERT(buf_is(&l.in, pat, big));
	CU_ASSERT(buf_is(&c.in, pat, big));
	free(pat);
	CU_ASSERT_EQUAL(l.nlog, 1);
	CU_ASSERT_EQUAL(c.nlog, 1);
	CU_ASSERT_EQUAL(l.read_errs + c.read_errs, 0);

	tch_close(&c);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, !is_up(&l)));
	tch_close(&l);
}

static void
test_unix_connect_first(void)
{
	const char *path = tmp_path("p2.sock");
	char lspec[160], cspec[160];
	struct tch l, c;
	struct tch *ts[] = { &c, &l };

	snprintf(lspec, sizeof(lspec), "unix-listen:%s", path);
	snprintf(cspec, sizeof(cspec), "unix:%s", path);
	CU_ASSERT_FATAL(tch_open(&c, cspec) == 0);

	/* Nobody listens: DOWN, retrying with backoff, not spinning. */
	uint64_t end = now_ms() + 350;
	while (now_ms() < end)
		loop_once(ts, 1, end, -1);
	CU_ASSERT_EQUAL(va_channel_state(c.ch), VA_CHANNEL_DOWN);
	CU_ASSERT_EQUAL(c.nlog, 0);
	CU_ASSERT(c.dispatches <= 8);
	if (verbose)
		fprintf(stderr, "\n  %u turns in 350 ms while nobody listens\n", c.dispatches);

	uint64_t t0 = now_ms();
	CU_ASSERT_FATAL(tch_open(&l, lspec) == 0);
	CU_ASSERT(RUN_UNTIL(ts, 2, 2500, is_up(&l) && is_up(&c)));
	uint64_t took = now_ms() - t0;
	CU_ASSERT(took <= 1200);
	if (took > 1200 || verbose)
		fprintf(stderr, "\n  connector came up after %llu ms\n",
			(unsigned long long)took);

	va_buf_append_str(&l.out, "hi");
	CU_ASSERT(RUN_UNTIL(ts, 2, 2000, c.in.len >= 2));
	CU_ASSERT(buf_is(&c.in, "hi", 2));
	tch_close(&l);
	tch_close(&c);
}

static void
test_unix_listener_gone(void)
{
	const char *path = tmp_path("p3.sock");
	char lspec[160], cspec[160];
	struct tch l, c;
	struct tch *ts[] = { &c, &l };

	snprintf(lspec, sizeof(lspec), "unix-listen:%s", path);
	snprintf(cspec, sizeof(cspec), "unix:%s", path);
	CU_ASSERT_FATAL(tch_open(&l, lspec) == 0);
	CU_ASSERT_FATAL(tch_open(&c, cspec) == 0);
	CU_ASSERT(RUN_UNTIL(ts, 2, 2000, is_up(&l) && is_up(&c)));

	tch_close(&l);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, !is_up(&c)));
	CU_ASSERT_EQUAL(c.nlog, 2);
	/* Writing while down is accepted as 0 bytes. */
	struct iovec iov = { (void *)"z", 1 };
	CU_ASSERT_EQUAL(va_channel_writev(c.ch, &iov, 1), 0);
	/* Let a couple of connects fail first. */
	uint64_t end = now_ms() + 250;
	while (now_ms() < end)
		loop_once(ts, 1, end, -1);
	CU_ASSERT_FALSE(is_up(&c));

	CU_ASSERT_FATAL(tch_open(&l, lspec) == 0);
	CU_ASSERT(RUN_UNTIL(ts, 2, 2500, is_up(&l) && is_up(&c)));
	CU_ASSERT_EQUAL(c.nlog, 3);
	CU_ASSERT_FALSE(c.repeat);

	va_buf_append_str(&c.out, "again");
	CU_ASSERT(RUN_UNTIL(ts, 2, 2000, l.in.len >= 5));
	CU_ASSERT(buf_is(&l.in, "again", 5));
	tch_close(&c);
	tch_close(&l);
}

/*
 * The reconnect schedule, on a clock of our own (prepare and dispatch
 * take the time from the caller): 100 ms doubling to 2 s, back to
 * 100 ms after a connection.
 */
static void
test_unix_backoff(void)
{
	const char *path = tmp_path("p4.sock");
	static const int want[] = { 100, 200, 400, 800, 1600, 2000, 2000 };
	char lspec[160], cspec[160];
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	struct tch l, c;
	uint64_t t = 5000;
	int timeout;

	snprintf(lspec, sizeof(lspec), "unix-listen:%s", path);
	snprintf(cspec, sizeof(cspec), "unix:%s", path);
	CU_ASSERT_FATAL(tch_open(&c, cspec) == 0);
	timeout = -1;
	CU_ASSERT_EQUAL(va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, t, &timeout), 0);
	CU_ASSERT_EQUAL(timeout, 0);
	CU_ASSERT_EQUAL(va_channel_dispatch(c.ch, pfd, 0, t), 0); /* ENOENT */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		timeout = -1;
		CU_ASSERT_EQUAL(va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, t,
						   &timeout), 0);
		CU_ASSERT_EQUAL(timeout, want[i]);
		/* Early: the deadline holds. */
		va_channel_dispatch(c.ch, pfd, 0, t + (uint64_t)want[i] - 1);
		timeout = 5000; /* lowered, never raised */
		va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0,
				   t + (uint64_t)want[i] - 1, &timeout);
		CU_ASSERT_EQUAL(timeout, 1);
		t += (uint64_t)want[i];
		va_channel_dispatch(c.ch, pfd, 0, t);
	}
	CU_ASSERT_EQUAL(c.nlog, 0);

	/* A listener: the next attempt connects. */
	CU_ASSERT_FATAL(tch_open(&l, lspec) == 0);
	timeout = -1;
	va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, t, &timeout);
	CU_ASSERT_EQUAL(timeout, 2000);
	t += 2000;
	va_channel_dispatch(c.ch, pfd, 0, t);
	CU_ASSERT(is_up(&c));

	/* The listener goes: DOWN, and the first retry is 100 ms away. */
	tch_close(&l);
	size_t n = va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, t, &timeout);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(poll(pfd, n, 2000), 1);
	va_channel_dispatch(c.ch, pfd, n, t);
	if (is_up(&c)) /* POLLIN|POLLHUP: READABLE first, then read() sees EOF */
		drain(&c);
	CU_ASSERT_FALSE(is_up(&c));
	CU_ASSERT_EQUAL(c.nlog, 2);
	timeout = -1;
	CU_ASSERT_EQUAL(va_channel_prepare(c.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, t, &timeout), 0);
	CU_ASSERT_EQUAL(timeout, 100);
	tch_close(&c);
}

/* ---- isa-serial on a pty ---- */

static void
check_raw(const char *slave, speed_t speed)
{
	struct termios t;
	int fd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(tcgetattr(fd, &t) == 0);
	CU_ASSERT_EQUAL(t.c_lflag & (ECHO | ECHONL | ICANON | ISIG | IEXTEN), 0);
	CU_ASSERT_EQUAL(t.c_iflag & (ICRNL | INLCR | IGNCR | ISTRIP | IXON), 0);
	CU_ASSERT_EQUAL(t.c_oflag & OPOST, 0);
	CU_ASSERT_EQUAL(t.c_cflag & CSIZE, CS8);
	CU_ASSERT(t.c_cflag & CLOCAL);
	CU_ASSERT(t.c_cflag & CREAD);
	CU_ASSERT_EQUAL(t.c_cc[VMIN], 1);
	CU_ASSERT_EQUAL(t.c_cc[VTIME], 0);
	CU_ASSERT_EQUAL(cfgetospeed(&t), speed);
	CU_ASSERT_EQUAL(cfgetispeed(&t), speed);
	close(fd);
}

static void
test_isa_pty(void)
{
	char slave[128], spec[160];
	struct tch t;
	struct tch *ts[] = { &t };
	struct va_buf got = { 0 };
	int m = open_pty(slave, sizeof(slave));

	CU_ASSERT_FATAL(m >= 0);
	snprintf(spec, sizeof(spec), "isa-serial:%s", slave);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	CU_ASSERT_EQUAL(va_channel_kind(t.ch), VA_CHANNEL_ISA_SERIAL);
	check_raw(slave, B115200);

	/* DOWN until the first dispatch, which comes at once. */
	CU_ASSERT_EQUAL(va_channel_state(t.ch), VA_CHANNEL_DOWN);
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	int timeout = -1;
	va_channel_prepare(t.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, now_ms(), &timeout);
	CU_ASSERT_EQUAL(timeout, 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 1000, is_up(&t)));
	CU_ASSERT_EQUAL(t.nlog, 1);

	/* Host -> guest: CR, LF, 0xFF, NUL, ^C, ^D arrive as sent. */
	static const char in[] = "a\r\nb\xff\n\r\x03\x04z";
	CU_ASSERT_EQUAL(write(m, in, sizeof(in)), (ssize_t)sizeof(in));
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, t.in.len >= sizeof(in)));
	CU_ASSERT(buf_is(&t.in, in, sizeof(in)));

	/* Guest -> host: no LF -> CRLF, and no echo of the input above
	 * (it would arrive first). */
	static const char out[] = "x\r\n\xffy\n\n";
	va_buf_append(&t.out, out, sizeof(out));
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, (pull(m, &got), got.len >= sizeof(out))));
	CU_ASSERT(buf_is(&got, out, sizeof(out)));

	tch_close(&t);
	close(m);
	va_buf_free(&got);

	/* An explicit baud rate. */
	m = open_pty(slave, sizeof(slave));
	CU_ASSERT_FATAL(m >= 0);
	snprintf(spec, sizeof(spec), "isa-serial:%s,9600", slave);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	check_raw(slave, B9600);
	tch_close(&t);
	close(m);

	/* Not a terminal. */
	expect_open_error("isa-serial:/dev/null", ENOTTY, "not a terminal");
	snprintf(spec, sizeof(spec), "isa-serial:%s/nonexistent", tmpdir);
	expect_open_error(spec, ENOENT, "No such file");
}

/* Counts the turns of a loop that waits only as long as prepare says. */
static unsigned
count_turns(struct tch *t, int ms, size_t *max_fds, int *max_timeout)
{
	struct tch *ts[] = { t };
	uint64_t end = now_ms() + (uint64_t)ms;
	unsigned before = t->dispatches;

	*max_fds = 0;
	*max_timeout = 0;
	while (now_ms() < end) {
		struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
		int timeout = -1;
		size_t n = va_channel_prepare(t->ch, pfd, VA_CHANNEL_MAX_POLLFDS, 1, now_ms(),
					      &timeout);
		if (n > *max_fds)
			*max_fds = n;
		if (timeout > *max_timeout)
			*max_timeout = timeout;
		loop_once(ts, 1, end, -1);
	}
	if (verbose)
		fprintf(stderr, "\n  %u turns in %d ms, at most %zu fds, timeouts <= %d ms\n",
			t->dispatches - before, ms, *max_fds, *max_timeout);
	return t->dispatches - before;
}

/* A pty whose master closed reports POLLHUP at once, every time:
 * isa-serial stays UP and backs off instead of spinning. */
static void
test_isa_hup_nospin(void)
{
	char slave[128], spec[160];
	struct tch t;
	struct tch *ts[] = { &t };
	size_t max_fds;
	int max_timeout;
	int m = open_pty(slave, sizeof(slave));

	CU_ASSERT_FATAL(m >= 0);
	snprintf(spec, sizeof(spec), "isa-serial:%s", slave);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	CU_ASSERT(RUN_UNTIL(ts, 1, 1000, is_up(&t)));
	close(m);

	/* About one turn per check, whether the caller reads or not (first
	 * without: POLLHUP alone must keep the loop from spinning). */
	t.no_read = true;
	unsigned turns = count_turns(&t, 400, &max_fds, &max_timeout);
	CU_ASSERT(turns <= 7);
	if (turns > 7)
		fprintf(stderr, "\n  %u turns in 400 ms without reading\n", turns);
	CU_ASSERT(max_timeout <= VA_CHANNEL_HUP_CHECK_MS);
	t.no_read = false;
	turns = count_turns(&t, 400, &max_fds, &max_timeout);
	CU_ASSERT(turns <= 7);
	if (turns > 7)
		fprintf(stderr, "\n  %u turns in 400 ms\n", turns);
	CU_ASSERT(is_up(&t));
	CU_ASSERT_EQUAL(t.nlog, 1);
	CU_ASSERT(max_timeout <= VA_CHANNEL_HUP_CHECK_MS);
	/* Writes are dropped quietly (0), not errors. */
	struct iovec iov = { (void *)"q", 1 };
	CU_ASSERT(va_channel_writev(t.ch, &iov, 1) >= 0);
	tch_close(&t);
}

/* ---- virtio-serial ---- */

static void
test_virtio_open_errors(void)
{
	char spec[160];

	expect_open_error("virtio-serial:/nonexistent/vport0p1", ENOENT, "/nonexistent/vport0p1");
	expect_open_error("virtio-serial:/nonexistent/vport0p1", ENOENT,
			  "No such file or directory");
	snprintf(spec, sizeof(spec), "virtio-serial:%s", tmpdir);
	expect_open_error(spec, EISDIR, "cannot open");
}

/*
 * The DOWN logic on a stand-in: a pty slave opened as virtio-serial.
 * With the master open it looks like a port with a host (POLLOUT, no
 * POLLHUP); once the master closes, like a port without one (POLLHUP at
 * once, every time).
 */
static void
test_virtio_hup_nospin(void)
{
	char slave[128], spec[160];
	struct tch t;
	struct tch *ts[] = { &t };
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	int timeout = -1;
	size_t max_fds;
	int max_timeout;
	int m = open_pty(slave, sizeof(slave));

	CU_ASSERT_FATAL(m >= 0);
	snprintf(spec, sizeof(spec), "virtio-serial:%s", slave);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	CU_ASSERT_EQUAL(va_channel_kind(t.ch), VA_CHANNEL_VIRTIO_SERIAL);

	/* Starts DOWN, fd out of the poll set, first check at once. */
	CU_ASSERT_EQUAL(va_channel_state(t.ch), VA_CHANNEL_DOWN);
	CU_ASSERT_EQUAL(va_channel_prepare(t.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 1, now_ms(),
					   &timeout), 0);
	CU_ASSERT_EQUAL(timeout, 0);
	va_channel_dispatch(t.ch, pfd, 0, now_ms());
	CU_ASSERT(is_up(&t));
	CU_ASSERT_EQUAL(t.nlog, 1);
	timeout = -1;
	CU_ASSERT_EQUAL(va_channel_prepare(t.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 0, now_ms(),
					   &timeout), 1);
	CU_ASSERT_EQUAL(pfd[0].events, POLLIN);
	CU_ASSERT_EQUAL(timeout, -1);

	/* (The pty is still cooked here: a line is readable after its \n.) */
	CU_ASSERT_EQUAL(write(m, "abc\n", 4), 4);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, t.in.len >= 4));
	CU_ASSERT(buf_is(&t.in, "abc\n", 4));

	/* The "host" goes away. */
	close(m);
	CU_ASSERT(RUN_UNTIL(ts, 1, 2000, !is_up(&t)));
	CU_ASSERT_EQUAL(t.nlog, 2);

	/* While DOWN: never in the poll set, a timer of at most the check
	 * interval, about one turn per check, no second DOWN. */
	timeout = -1;
	CU_ASSERT_EQUAL(va_channel_prepare(t.ch, pfd, VA_CHANNEL_MAX_POLLFDS, 1, now_ms(),
					   &timeout), 0);
	CU_ASSERT(timeout > 0 && timeout <= VA_CHANNEL_HUP_CHECK_MS);
	unsigned turns = count_turns(&t, 500, &max_fds, &max_timeout);
	CU_ASSERT(turns >= 3 && turns <= 8);
	if (turns < 3 || turns > 8)
		fprintf(stderr, "\n  %u turns in 500 ms\n", turns);
	CU_ASSERT_EQUAL(max_fds, 0);
	CU_ASSERT(max_timeout <= VA_CHANNEL_HUP_CHECK_MS);
	CU_ASSERT_EQUAL(t.nlog, 2);
	CU_ASSERT_FALSE(t.repeat);
	char b[4];
	struct iovec iov = { (void *)"q", 1 };
	CU_ASSERT_EQUAL(va_channel_read(t.ch, b, sizeof(b)), 0);
	CU_ASSERT_EQUAL(va_channel_writev(t.ch, &iov, 1), 0);
	tch_close(&t);

	/* No "host" from the start: stays DOWN without a callback, and
	 * without spinning. */
	m = open_pty(slave, sizeof(slave));
	CU_ASSERT_FATAL(m >= 0);
	snprintf(spec, sizeof(spec), "virtio-serial:%s", slave);
	CU_ASSERT_FATAL(tch_open(&t, spec) == 0);
	close(m);
	turns = count_turns(&t, 500, &max_fds, &max_timeout);
	CU_ASSERT(turns <= 8);
	CU_ASSERT_EQUAL(max_fds, 0);
	CU_ASSERT_EQUAL(t.nlog, 0);
	CU_ASSERT_EQUAL(va_channel_state(t.ch), VA_CHANNEL_DOWN);
	tch_close(&t);
}

static int fds_at_start;

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Every test closed what it opened, and so did the channel. */
static void
test_no_fd_leak(void)
{
	CU_ASSERT_EQUAL(count_fds(), fds_at_start);
}

static const struct va_test tests[] = {
	{ "spec errors", test_spec_errors },
	{ "unix-listen + client", test_listen_client },
	{ "unix-listen replaces its peer", test_listen_replace },
	{ "unix-listen EPIPE/EOF outside dispatch", test_listen_epipe },
	{ "unix-listen socket file", test_listen_socket_file },
	{ "unix <-> unix-listen", test_unix_pair },
	{ "unix before its listener", test_unix_connect_first },
	{ "unix: listener gone and back", test_unix_listener_gone },
	{ "unix: reconnect backoff", test_unix_backoff },
	{ "isa-serial on a pty", test_isa_pty },
	{ "isa-serial hangup: no spin", test_isa_hup_nospin },
	{ "virtio-serial open errors", test_virtio_open_errors },
	{ "virtio-serial DOWN: no spin", test_virtio_hup_nospin },
	{ "no fd leaked", test_no_fd_leak },
};

int
main(void)
{
	verbose = getenv("VA_TEST_VERBOSE") != NULL;
	va_log_init("test-channel", 0, verbose ? VA_LOG_DEBUG : VA_LOG_WARN);
	if (va_test_mkdtemp(tmpdir, sizeof(tmpdir), "va-chan-") < 0) {
		perror("mkdtemp");
		return 1;
	}
	fds_at_start = count_fds();
	int status = va_test_run("channel", VA_TESTS(tests));
	if (rmdir(tmpdir) < 0)
		fprintf(stderr, "rmdir %s: %s\n", tmpdir, strerror(errno));
	return status;
}
