/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * channel.c - the byte stream to the peer: virtio-serial, isa-serial,
 * unix (connect) and unix-listen, driven by the caller's poll() loop.
 *
 * One timer per channel is enough: each kind needs at most one pending
 * deadline at a time (virtio: the next HUP check; isa: the first UP or
 * the end of a HUP back-off; unix: the next connect or the connect
 * timeout; unix-listen: the end of an accept back-off).  State changes
 * made outside dispatch (read, writev) have no clock, so a timer is
 * armed with a delay and gets its deadline from the next prepare or
 * dispatch.
 */
#include "config.h"

/* accept4(), IOV_MAX; configure.ac has no AC_USE_SYSTEM_EXTENSIONS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define CONNECT_TIMEOUT_MS 2000
#define ACCEPT_BACKOFF_MS 100
#define ACCEPTS_PER_DISPATCH 16
#define LISTEN_BACKLOG 4
#define ERR_SPEC_MAX 128 /* longest part of a spec quoted in a message */
#define ERR_KIND_MAX 32	 /* longest part of an unknown kind quoted */
#define DEFAULT_SPEED B115200 /* channel.h: BAUD defaults to 115200 */

#define KINDS_HELP \
	"virtio-serial:PATH, isa-serial:PATH[,BAUD], unix:PATH or unix-listen:PATH"

enum timer_state {
	TIMER_OFF,
	TIMER_NOW,     /* due at the next dispatch */
	TIMER_PENDING, /* due delay_ms after the next prepare/dispatch */
	TIMER_SET,     /* due at due_ms */
};

struct va_channel {
	enum va_channel_kind kind;
	enum va_channel_state state;
	char *spec;
	char *path;
	speed_t speed;

	int fd;		 /* device, connected socket or accepted peer; -1 if none */
	unsigned fd_gen; /* changes whenever fd does */
	int listen_fd;	 /* unix-listen only */
	bool listen_paused; /* accept failed for lack of resources: wait */
	bool connecting;    /* unix: connect() in progress on fd */
	bool hup_seen;	    /* POLLHUP came with POLLIN: let the caller drain */
	bool tty_hup;	    /* isa: fd left out of poll() until the timer */
	int last_connect_errno;

	bool sock_created; /* unix-listen: our socket file, to unlink */
	dev_t sock_dev;
	ino_t sock_ino;

	unsigned backoff_ms; /* unix: delay before the next connect */

	struct {
		enum timer_state st;
		unsigned delay_ms;
		uint64_t due_ms;
	} timer;

	/* What the last prepare put in the poll set, to match in dispatch. */
	int polled_fd;
	unsigned polled_gen;
	bool polled_listen;

	va_channel_state_cb cb;
	void *opaque;
};

static const struct {
	const char *name;
	enum va_channel_kind kind;
} kinds[] = {
	{ "virtio-serial", VA_CHANNEL_VIRTIO_SERIAL },
	{ "isa-serial", VA_CHANNEL_ISA_SERIAL },
	{ "unix", VA_CHANNEL_UNIX },
	{ "unix-listen", VA_CHANNEL_UNIX_LISTEN },
};

static const struct {
	unsigned long rate;
	speed_t code;
} bauds[] = {
	{ 9600, B9600 },
	{ 19200, B19200 },
	{ 38400, B38400 },
	{ 57600, B57600 },
	{ 115200, B115200 },
	{ 230400, B230400 },
#ifdef B460800
	{ 460800, B460800 },
#endif
#ifdef B500000
	{ 500000, B500000 },
#endif
#ifdef B576000
	{ 576000, B576000 },
#endif
#ifdef B921600
	{ 921600, B921600 },
#endif
#ifdef B1000000
	{ 1000000, B1000000 },
#endif
#ifdef B1152000
	{ 1152000, B1152000 },
#endif
#ifdef B1500000
	{ 1500000, B1500000 },
#endif
#ifdef B2000000
	{ 2000000, B2000000 },
#endif
#ifdef B2500000
	{ 2500000, B2500000 },
#endif
#ifdef B3000000
	{ 3000000, B3000000 },
#endif
#ifdef B3500000
	{ 3500000, B3500000 },
#endif
#ifdef B4000000
	{ 4000000, B4000000 },
#endif
};

/*
 * Writes "channel 'SPEC': CAUSE" into err (SPEC cut after ERR_SPEC_MAX
 * bytes so that the cause always fits) and returns -e.
 */
static int __attribute__((format(printf, 5, 6)))
fail(char *err, size_t errlen, const char *spec, int e, const char *fmt, ...)
{
	if (err && errlen > 0) {
		size_t sl = spec ? strlen(spec) : 0;
		int n = snprintf(err, errlen, "channel '%.*s%s': ",
				 (int)(sl > ERR_SPEC_MAX ? ERR_SPEC_MAX : sl),
				 spec ? spec : "", sl > ERR_SPEC_MAX ? "..." : "");
		if (n >= 0 && (size_t)n < errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -e;
}

/* ---- timer ---- */

static void
timer_off(va_channel *ch)
{
	ch->timer.st = TIMER_OFF;
}

static void
timer_now(va_channel *ch)
{
	ch->timer.st = TIMER_NOW;
}

static void
timer_arm(va_channel *ch, unsigned delay_ms)
{
	ch->timer.st = TIMER_PENDING;
	ch->timer.delay_ms = delay_ms;
}

static void
timer_sync(va_channel *ch, uint64_t now_ms)
{
	if (ch->timer.st == TIMER_PENDING) {
		ch->timer.due_ms = now_ms + ch->timer.delay_ms;
		ch->timer.st = TIMER_SET;
	}
}

static bool
timer_expired(va_channel *ch, uint64_t now_ms)
{
	timer_sync(ch, now_ms);
	return ch->timer.st == TIMER_NOW ||
	       (ch->timer.st == TIMER_SET && now_ms >= ch->timer.due_ms);
}

static void
timer_lower_timeout(va_channel *ch, uint64_t now_ms, int *timeout_ms)
{
	int t;

	timer_sync(ch, now_ms);
	switch (ch->timer.st) {
	case TIMER_NOW:
		t = 0;
		break;
	case TIMER_SET:
		if (ch->timer.due_ms <= now_ms)
			t = 0;
		else if (ch->timer.due_ms - now_ms > INT_MAX)
			t = INT_MAX;
		else
			t = (int)(ch->timer.due_ms - now_ms);
		break;
	default:
		return;
	}
	if (*timeout_ms < 0 || t < *timeout_ms)
		*timeout_ms = t;
}

/* ---- state ---- */

static bool
is_socket(const va_channel *ch)
{
	return ch->kind == VA_CHANNEL_UNIX || ch->kind == VA_CHANNEL_UNIX_LISTEN;
}

/* Reports a transition; the same state twice in a row is no transition. */
static void
set_state(va_channel *ch, enum va_channel_state st, const char *why)
{
	if (ch->state == st)
		return;
	ch->state = st;
	if (st == VA_CHANNEL_UP)
		va_log_info("channel %s: peer up", ch->spec);
	else
		va_log_info("channel %s: peer down (%s)", ch->spec, why);
	if (ch->cb)
		ch->cb(ch->opaque, st);
}

static void
close_fd(va_channel *ch)
{
	int saved = errno;

	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
	ch->fd_gen++;
	ch->connecting = false;
	ch->hup_seen = false;
	errno = saved;
}

static void
install_fd(va_channel *ch, int fd)
{
	ch->fd = fd;
	ch->fd_gen++;
	ch->hup_seen = false;
}

static void
schedule_connect(va_channel *ch)
{
	timer_arm(ch, ch->backoff_ms);
	ch->backoff_ms = ch->backoff_ms >= RECONNECT_MAX_MS / 2 ? RECONNECT_MAX_MS
								: ch->backoff_ms * 2;
}

/* The peer is gone (or never was): release what belongs to it. */
static void
go_down(va_channel *ch, const char *why)
{
	switch (ch->kind) {
	case VA_CHANNEL_VIRTIO_SERIAL:
		/* The port stays open; see virtio_hup_check(). */
		ch->hup_seen = false;
		timer_arm(ch, VA_CHANNEL_HUP_CHECK_MS);
		break;
	case VA_CHANNEL_UNIX:
		close_fd(ch);
		schedule_connect(ch);
		break;
	case VA_CHANNEL_UNIX_LISTEN:
		close_fd(ch);
		break;
	case VA_CHANNEL_ISA_SERIAL:
		return; /* never DOWN */
	}
	set_state(ch, VA_CHANNEL_DOWN, why);
}

/*
 * A tty whose other end is gone (a pty whose master closed; a real
 * serial port does not do this) reports POLLHUP at once, every time,
 * and read() returns 0 or EIO.  isa-serial has no DOWN state, so keep
 * the fd out of poll() and look again every VA_CHANNEL_HUP_CHECK_MS,
 * as for virtio-serial, instead of spinning.
 */
static void
tty_hup(va_channel *ch)
{
	if (!ch->tty_hup)
		va_log_debug("channel %s: hangup on the tty, backing off", ch->spec);
	ch->tty_hup = true;
	timer_arm(ch, VA_CHANNEL_HUP_CHECK_MS);
}

/* poll(fd, POLLOUT, 0) without the caller's loop; returns revents or -1. */
static int
poll_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT, .revents = 0 };
	int r;

	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : p.revents;
}

/* ---- spec parsing ---- */

static int
parse_baud(const char *s, const char *spec, speed_t *speed, char *err, size_t errlen)
{
	unsigned long v = 0;
	size_t len = strlen(s);

	if (len == 0)
		return fail(err, errlen, spec, EINVAL,
			    "empty baud rate after ',' (use e.g. 115200)");
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > 100000000UL) {
			v = 0; /* not a number, or far above any rate */
			break;
		}
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	for (size_t i = 0; v != 0 && i < sizeof(bauds) / sizeof(bauds[0]); i++) {
		if (bauds[i].rate == v) {
			*speed = bauds[i].code;
			return 0;
		}
	}
	return fail(err, errlen, spec, EINVAL,
		    "unknown baud rate '%.*s' (use a standard rate from 9600 to %lu, e.g. 115200)",
		    (int)(len > ERR_KIND_MAX ? ERR_KIND_MAX : len), s,
		    bauds[sizeof(bauds) / sizeof(bauds[0]) - 1].rate);
}

static int
parse_spec(va_channel *ch, const char *spec, char *err, size_t errlen)
{
	const char *colon = strchr(spec, ':');
	const char *path, *end;
	size_t i, klen, plen;

	if (!colon)
		return fail(err, errlen, spec, EINVAL,
			    "missing ':' (expected " KINDS_HELP ")");
	klen = (size_t)(colon - spec);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == klen &&
		    memcmp(kinds[i].name, spec, klen) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		return fail(err, errlen, spec, EINVAL,
			    "unknown channel kind '%.*s' (expected " KINDS_HELP ")",
			    (int)(klen > ERR_KIND_MAX ? ERR_KIND_MAX : klen), spec);
	ch->kind = kinds[i].kind;

	path = colon + 1;
	end = path + strlen(path);
	if (ch->kind == VA_CHANNEL_ISA_SERIAL) {
		const char *comma = strrchr(path, ',');

		ch->speed = DEFAULT_SPEED;
		if (comma) {
			int r = parse_baud(comma + 1, spec, &ch->speed, err, errlen);
			if (r < 0)
				return r;
			end = comma;
		}
	}
	plen = (size_t)(end - path);
	if (plen == 0)
		return fail(err, errlen, spec, EINVAL, "empty path after '%s:'",
			    kinds[i].name);
	if (is_socket(ch)) {
		struct sockaddr_un sun;
		if (plen >= sizeof(sun.sun_path))
			return fail(err, errlen, spec, EINVAL,
				    "socket path is %zu bytes long, the limit is %zu",
				    plen, sizeof(sun.sun_path) - 1);
	}
	ch->path = strndup(path, plen);
	if (!ch->path)
		return fail(err, errlen, spec, ENOMEM, "out of memory");
	return 0;
}

static void
fill_addr(const va_channel *ch, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* parse_spec() checked that it fits with its NUL. */
	memcpy(sun->sun_path, ch->path, strlen(ch->path) + 1);
}

/* ---- open, per kind ---- */

static int
open_virtio(va_channel *ch, char *err, size_t errlen)
{
	/* O_NOCTTY: harmless on a port, and keeps a tty given by mistake
	 * from becoming our controlling terminal. */
	int fd = open(ch->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		return fail(err, errlen, ch->spec, e, "cannot open %s: %s%s", ch->path,
			    strerror(e),
			    e == ENOENT ? " (is the virtio_console module loaded and the "
					  "virtserialport configured in QEMU?)"
			    : e == EBUSY ? " (is another agent using the port?)"
					 : "");
	}
	install_fd(ch, fd);
	/* DOWN until the first dispatch has looked for a host. */
	timer_now(ch);
	return 0;
}

static int
open_isa(va_channel *ch, char *err, size_t errlen)
{
	struct termios t, chk;
	int fd, e, r;

	fd = open(ch->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return fail(err, errlen, ch->spec, e, "cannot open %s: %s", ch->path,
			    strerror(e));
	}
	if (!isatty(fd)) {
		e = errno == EBADF ? EBADF : ENOTTY;
		close(fd);
		return fail(err, errlen, ch->spec, e, "%s is not a terminal", ch->path);
	}
	if (tcgetattr(fd, &t) < 0) {
		e = errno;
		close(fd);
		return fail(err, errlen, ch->spec, e, "cannot read the settings of %s: %s",
			    ch->path, strerror(e));
	}
	/* Raw: no echo, no canonical mode, no CR/LF translation either way,
	 * 8 bits, no software or hardware flow control. */
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
#ifdef CRTSCTS
	t.c_cflag &= ~(tcflag_t)CRTSCTS;
#endif
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, ch->speed) < 0 || cfsetospeed(&t, ch->speed) < 0) {
		e = errno;
		close(fd);
		return fail(err, errlen, ch->spec, e, "cannot set the speed of %s: %s",
			    ch->path, strerror(e));
	}
	do
		r = tcsetattr(fd, TCSANOW, &t);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		e = errno;
		close(fd);
		return fail(err, errlen, ch->spec, e, "cannot set raw mode on %s: %s",
			    ch->path, strerror(e));
	}
	/* tcsetattr() succeeds when any change took: check the ones we need. */
	if (tcgetattr(fd, &chk) < 0 || (chk.c_lflag & (ICANON | ECHO | ISIG)) ||
	    (chk.c_iflag & (ICRNL | INLCR | IGNCR | IXON)) || (chk.c_oflag & OPOST) ||
	    chk.c_cc[VMIN] != 1 || chk.c_cc[VTIME] != 0) {
		close(fd);
		return fail(err, errlen, ch->spec, EIO, "%s did not accept raw mode",
			    ch->path);
	}
	/* Drop whatever a previous user left in either direction. */
	if (tcflush(fd, TCIOFLUSH) < 0)
		va_log_warn("channel %s: tcflush", ch->spec);
	install_fd(ch, fd);
	timer_now(ch); /* UP at the first dispatch */
	return 0;
}

static int
open_unix(va_channel *ch)
{
	/* Nothing can fail yet: the first dispatch connects, and retries. */
	ch->backoff_ms = RECONNECT_MIN_MS;
	timer_now(ch);
	return 0;
}

/*
 * Removes a socket file left by a process that died (nobody accepts on
 * it); refuses to take over a socket that somebody listens on, or a
 * path that is not a socket.
 */
static int
remove_stale_socket(va_channel *ch, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int s, r, e;

	if (lstat(ch->path, &st) < 0) {
		e = errno;
		if (e == ENOENT)
			return 0;
		return fail(err, errlen, ch->spec, e, "cannot look at %s: %s", ch->path,
			    strerror(e));
	}
	if (!S_ISSOCK(st.st_mode))
		return fail(err, errlen, ch->spec, EEXIST,
			    "%s exists and is not a socket; not removing it", ch->path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		e = errno;
		return fail(err, errlen, ch->spec, e, "socket: %s", strerror(e));
	}
	fill_addr(ch, &sun);
	r = connect(s, (struct sockaddr *)&sun, sizeof(sun));
	e = r < 0 ? errno : 0;
	close(s);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS || e == EINTR)
		return fail(err, errlen, ch->spec, EADDRINUSE,
			    "another process is listening on %s", ch->path);
	if (unlink(ch->path) < 0 && errno != ENOENT) {
		e = errno;
		return fail(err, errlen, ch->spec, e, "cannot remove the stale socket %s: %s",
			    ch->path, strerror(e));
	}
	va_log_debug("channel %s: removed a stale socket file", ch->spec);
	return 0;
}

static int
open_listen(va_channel *ch, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int r, e;

	r = remove_stale_socket(ch, err, errlen);
	if (r < 0)
		return r;
	ch->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ch->listen_fd < 0) {
		e = errno;
		return fail(err, errlen, ch->spec, e, "socket: %s", strerror(e));
	}
	fill_addr(ch, &sun);
	if (bind(ch->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		e = errno;
		return fail(err, errlen, ch->spec, e, "cannot bind %s: %s", ch->path,
			    strerror(e));
	}
	/* Remember which file is ours, so that free never removes another's. */
	if (lstat(ch->path, &st) == 0) {
		ch->sock_created = true;
		ch->sock_dev = st.st_dev;
		ch->sock_ino = st.st_ino;
	}
	if (listen(ch->listen_fd, LISTEN_BACKLOG) < 0) {
		e = errno;
		return fail(err, errlen, ch->spec, e, "cannot listen on %s: %s", ch->path,
			    strerror(e));
	}
	return 0;
}

int
va_channel_open(const char *spec, va_channel **out, char *err, size_t errlen)
{
	va_channel *ch;
	int r;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!out)
		return fail(err, errlen, spec, EINVAL, "no place for the channel");
	*out = NULL;
	if (!spec)
		return fail(err, errlen, "", EINVAL, "no channel spec (expected " KINDS_HELP ")");

	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return fail(err, errlen, spec, ENOMEM, "out of memory");
	ch->fd = -1;
	ch->listen_fd = -1;
	ch->polled_fd = -1;
	ch->state = VA_CHANNEL_DOWN;
	ch->backoff_ms = RECONNECT_MIN_MS;
	ch->spec = strdup(spec);
	if (!ch->spec) {
		free(ch);
		return fail(err, errlen, spec, ENOMEM, "out of memory");
	}

	r = parse_spec(ch, spec, err, errlen);
	if (r == 0) {
		switch (ch->kind) {
		case VA_CHANNEL_VIRTIO_SERIAL:
			r = open_virtio(ch, err, errlen);
			break;
		case VA_CHANNEL_ISA_SERIAL:
			r = open_isa(ch, err, errlen);
			break;
		case VA_CHANNEL_UNIX:
			r = open_unix(ch);
			break;
		case VA_CHANNEL_UNIX_LISTEN:
			r = open_listen(ch, err, errlen);
			break;
		}
	}
	if (r < 0) {
		va_channel_free(ch);
		return r;
	}
	*out = ch;
	return 0;
}

void
va_channel_free(va_channel *ch)
{
	int saved = errno;
	struct stat st;

	if (!ch)
		return;
	close_fd(ch);
	if (ch->sock_created && lstat(ch->path, &st) == 0 && st.st_dev == ch->sock_dev &&
	    st.st_ino == ch->sock_ino && unlink(ch->path) < 0)
		va_log_warn("channel %s: cannot remove %s", ch->spec, ch->path);
	if (ch->listen_fd >= 0)
		close(ch->listen_fd);
	free(ch->path);
	free(ch->spec);
	free(ch);
	errno = saved;
}

void
va_channel_set_state_cb(va_channel *ch, va_channel_state_cb cb, void *opaque)
{
	if (!ch)
		return;
	ch->cb = cb;
	ch->opaque = opaque;
}

enum va_channel_kind
va_channel_kind(const va_channel *ch)
{
	return ch->kind;
}

const char *
va_channel_spec(const va_channel *ch)
{
	return ch->spec;
}

enum va_channel_state
va_channel_state(const va_channel *ch)
{
	return ch->state;
}

unsigned
va_channel_generation(const va_channel *ch)
{
	return ch->fd_gen;
}

/* ---- the loop ---- */

/* Whether the data fd belongs in the poll set now. */
static bool
poll_data_fd(const va_channel *ch)
{
	if (ch->fd < 0)
		return false;
	switch (ch->kind) {
	case VA_CHANNEL_VIRTIO_SERIAL:
		/* While DOWN the port reports POLLHUP even for events == 0:
		 * leaving it in would wake poll() at once, forever. */
		return ch->state == VA_CHANNEL_UP;
	case VA_CHANNEL_ISA_SERIAL:
		return ch->state == VA_CHANNEL_UP && !ch->tty_hup;
	case VA_CHANNEL_UNIX:
	case VA_CHANNEL_UNIX_LISTEN:
		return true;
	}
	return false;
}

size_t
va_channel_prepare(va_channel *ch, struct pollfd *pfd, size_t max, int want_write,
		   uint64_t now_ms, int *timeout_ms)
{
	size_t n = 0;

	if (!ch)
		return 0;
	ch->polled_fd = -1;
	ch->polled_listen = false;
	if (pfd && n < max && poll_data_fd(ch)) {
		pfd[n].fd = ch->fd;
		if (ch->connecting)
			pfd[n].events = POLLOUT;
		else
			pfd[n].events = POLLIN | (want_write ? POLLOUT : 0);
		pfd[n].revents = 0;
		ch->polled_fd = ch->fd;
		ch->polled_gen = ch->fd_gen;
		n++;
	}
	if (pfd && n < max && ch->listen_fd >= 0 && !ch->listen_paused) {
		pfd[n].fd = ch->listen_fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		ch->polled_listen = true;
		n++;
	}
	if (timeout_ms)
		timer_lower_timeout(ch, now_ms, timeout_ms);
	return n;
}

/*
 * revents of a connected data fd (virtio UP, unix, unix-listen peer).
 * POLLHUP alone means the peer is gone.  POLLHUP with POLLIN may come
 * with the peer's last bytes: report READABLE once so that the caller
 * can drain them (read() returns 0 at the end and turns the channel
 * DOWN); if it comes again, go DOWN without waiting for the caller.
 */
static unsigned
data_revents(va_channel *ch, short rev)
{
	unsigned flags = 0;

	if (rev & (POLLERR | POLLNVAL)) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (is_socket(ch) && (rev & POLLERR) &&
		    getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
			va_log_debug("channel %s: %s", ch->spec, strerror(soerr));
		go_down(ch, rev & POLLNVAL ? "fd not open" : "error on the connection");
		return 0;
	}
	if (rev & POLLHUP) {
		if ((rev & POLLIN) && !ch->hup_seen) {
			ch->hup_seen = true;
			return VA_CHANNEL_READABLE;
		}
		go_down(ch, "hangup");
		return 0;
	}
	ch->hup_seen = false;
	if (rev & POLLIN)
		flags |= VA_CHANNEL_READABLE;
	if (rev & POLLOUT)
		flags |= VA_CHANNEL_WRITABLE;
	return flags;
}

/*
 * virtio-serial while DOWN.  Why: with no host process on the chardev,
 * the port reports POLLIN|POLLHUP at once on every poll() (even with
 * events == 0), read() returns 0 and write() fails with EAGAIN.  A loop
 * that kept the fd in its poll set would spin a whole CPU; so the fd
 * stays out, and every VA_CHANNEL_HUP_CHECK_MS this looks once with a
 * zero timeout.  No POLLHUP means a host process holds the chardev now.
 * (A disconnect followed by a quick reconnect can go unseen: the
 * session's reset handshake copes with that.)
 */
static unsigned
virtio_hup_check(va_channel *ch)
{
	unsigned flags = 0;
	int rev = poll_now(ch->fd);

	if (rev < 0 || (rev & (POLLHUP | POLLERR | POLLNVAL))) {
		if (rev < 0)
			va_log_warn("channel %s: poll", ch->spec);
		timer_arm(ch, VA_CHANNEL_HUP_CHECK_MS);
		return 0;
	}
	timer_off(ch);
	ch->hup_seen = false;
	set_state(ch, VA_CHANNEL_UP, NULL);
	if (ch->state == VA_CHANNEL_UP) {
		if (rev & POLLIN)
			flags |= VA_CHANNEL_READABLE;
		if (rev & POLLOUT)
			flags |= VA_CHANNEL_WRITABLE;
	}
	return flags;
}

static void
unix_connected(va_channel *ch)
{
	ch->connecting = false;
	ch->backoff_ms = RECONNECT_MIN_MS;
	ch->last_connect_errno = 0;
	timer_off(ch);
	set_state(ch, VA_CHANNEL_UP, NULL);
}

static void
unix_connect_failed(va_channel *ch, int e)
{
	close_fd(ch);
	va_log_debug("channel %s: connect: %s; retrying in %u ms", ch->spec, strerror(e),
		     ch->backoff_ms);
	/* Nobody listening yet is the normal case: warn only about other
	 * causes, once each. */
	if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != ch->last_connect_errno)
		va_log_warnx("channel %s: cannot connect to %s: %s (will keep trying)",
			     ch->spec, ch->path, strerror(e));
	ch->last_connect_errno = e;
	schedule_connect(ch);
}

static void
unix_try_connect(va_channel *ch)
{
	struct sockaddr_un sun;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		unix_connect_failed(ch, errno);
		return;
	}
	install_fd(ch, fd);
	fill_addr(ch, &sun);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (r == 0) {
		unix_connected(ch);
	} else if (errno == EINPROGRESS || errno == EINTR) {
		/* EINTR: the connect goes on in the background, as EINPROGRESS. */
		ch->connecting = true;
		timer_arm(ch, CONNECT_TIMEOUT_MS);
	} else {
		unix_connect_failed(ch, errno);
	}
}

static void
unix_finish_connect(va_channel *ch, short rev)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == 0 && (rev & (POLLHUP | POLLERR | POLLNVAL)))
		soerr = ECONNRESET;
	if (soerr)
		unix_connect_failed(ch, soerr);
	else
		unix_connected(ch);
}

static void
listen_pause(va_channel *ch)
{
	ch->listen_paused = true;
	timer_arm(ch, ACCEPT_BACKOFF_MS);
}

static void
listen_accept(va_channel *ch)
{
	for (int i = 0; i < ACCEPTS_PER_DISPATCH; i++) {
		int fd = accept4(ch->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* EMFILE and friends: the connection stays queued and
			 * the listen fd readable; wait instead of spinning. */
			va_log_warn("channel %s: accept", ch->spec);
			listen_pause(ch);
			return;
		}
		if (ch->fd >= 0) {
			close_fd(ch);
			set_state(ch, VA_CHANNEL_DOWN, "replaced by a new connection");
		}
		install_fd(ch, fd);
		set_state(ch, VA_CHANNEL_UP, NULL);
	}
}

unsigned
va_channel_dispatch(va_channel *ch, const struct pollfd *pfd, size_t n, uint64_t now_ms)
{
	unsigned flags = 0;
	short rev = 0, lrev = 0;

	if (!ch)
		return 0;
	/* Only revents for the fds that prepare handed out, and only if the
	 * fd has not been replaced since (a number may be reused). */
	for (size_t i = 0; pfd && i < n; i++) {
		if (pfd[i].fd < 0)
			continue;
		if (ch->polled_fd >= 0 && pfd[i].fd == ch->polled_fd &&
		    ch->polled_fd == ch->fd && ch->polled_gen == ch->fd_gen)
			rev |= pfd[i].revents;
		else if (ch->polled_listen && pfd[i].fd == ch->listen_fd)
			lrev |= pfd[i].revents;
	}

	switch (ch->kind) {
	case VA_CHANNEL_VIRTIO_SERIAL:
		if (ch->state == VA_CHANNEL_UP && rev)
			flags |= data_revents(ch, rev);
		else if (ch->state == VA_CHANNEL_DOWN && timer_expired(ch, now_ms))
			flags |= virtio_hup_check(ch);
		break;

	case VA_CHANNEL_ISA_SERIAL:
		if (timer_expired(ch, now_ms)) {
			timer_off(ch);
			if (ch->tty_hup) {
				int r = poll_now(ch->fd);
				if (r < 0 || (r & (POLLHUP | POLLERR | POLLNVAL)))
					tty_hup(ch);
				else
					ch->tty_hup = false;
			}
			set_state(ch, VA_CHANNEL_UP, NULL);
		}
		if (rev & POLLIN)
			flags |= VA_CHANNEL_READABLE;
		if (rev & POLLOUT)
			flags |= VA_CHANNEL_WRITABLE;
		if (rev & (POLLHUP | POLLERR | POLLNVAL))
			tty_hup(ch);
		break;

	case VA_CHANNEL_UNIX:
		if (ch->connecting) {
			if (rev)
				unix_finish_connect(ch, rev);
			else if (timer_expired(ch, now_ms))
				unix_connect_failed(ch, ETIMEDOUT);
		} else if (ch->fd >= 0) {
			if (rev)
				flags |= data_revents(ch, rev);
		} else if (timer_expired(ch, now_ms)) {
			timer_off(ch);
			unix_try_connect(ch);
		}
		break;

	case VA_CHANNEL_UNIX_LISTEN:
		if (ch->fd >= 0 && rev)
			flags |= data_revents(ch, rev);
		if (ch->listen_paused && timer_expired(ch, now_ms)) {
			timer_off(ch);
			ch->listen_paused = false;
		}
		if (lrev & POLLIN) {
			listen_accept(ch);
		} else if (lrev & (POLLERR | POLLHUP | POLLNVAL)) {
			va_log_warnx("channel %s: error on the listening socket", ch->spec);
			listen_pause(ch);
		}
		break;
	}
	if (ch->state != VA_CHANNEL_UP)
		flags = 0;
	return flags;
}

ssize_t
va_channel_read(va_channel *ch, void *buf, size_t len)
{
	ssize_t r;

	if (!ch || (!buf && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	/* read(fd, buf, 0) returns 0, which would look like EOF. */
	if (len == 0 || ch->state != VA_CHANNEL_UP || ch->fd < 0 || ch->connecting)
		return 0;
	for (;;) {
		r = read(ch->fd, buf, len);
		if (r > 0)
			return r;
		if (r == 0) {
			if (ch->kind == VA_CHANNEL_ISA_SERIAL)
				tty_hup(ch);
			else
				go_down(ch, "end of file");
			return 0;
		}
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return 0;
		case EIO:
			if (ch->kind != VA_CHANNEL_ISA_SERIAL)
				return -1;
			tty_hup(ch); /* the pty's master is gone */
			return 0;
		case ECONNRESET:
		case EPIPE:
			if (!is_socket(ch))
				return -1;
			go_down(ch, strerror(errno));
			return 0;
		default:
			return -1;
		}
	}
}

ssize_t
va_channel_writev(va_channel *ch, const struct iovec *iov, int iovcnt)
{
	ssize_t r;
	bool any = false;

	if (!ch || iovcnt < 0 || (iovcnt > 0 && !iov)) {
		errno = EINVAL;
		return -1;
	}
	if (ch->state != VA_CHANNEL_UP || ch->fd < 0 || ch->connecting)
		return 0;
	if (iovcnt > IOV_MAX)
		iovcnt = IOV_MAX; /* a short write, as the caller must expect */
	for (int i = 0; i < iovcnt; i++)
		any = any || iov[i].iov_len > 0;
	if (!any)
		return 0;
	for (;;) {
		if (is_socket(ch)) {
			/* MSG_NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE. */
			struct msghdr msg;
			memset(&msg, 0, sizeof(msg));
			msg.msg_iov = (struct iovec *)(uintptr_t)iov;
			msg.msg_iovlen = (size_t)iovcnt;
			r = sendmsg(ch->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			r = writev(ch->fd, iov, iovcnt);
		}
		if (r >= 0)
			return r;
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return 0;
		case EPIPE:
		case ECONNRESET:
		case ENOTCONN:
			if (ch->kind == VA_CHANNEL_ISA_SERIAL) {
				tty_hup(ch);
				return 0;
			}
			go_down(ch, strerror(errno));
			return 0;
		case EIO:
			if (ch->kind != VA_CHANNEL_ISA_SERIAL)
				return -1;
			tty_hup(ch);
			return 0;
		default:
			return -1;
		}
	}
}
