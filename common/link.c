/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * link.c - a session over a channel, on the loop (see link.h).
 *
 * The channel is a state machine that says what it wants polled
 * (va_channel_prepare) and takes what happened (va_channel_dispatch);
 * sync() turns the first into loop registrations and one timer, and the
 * loop's callbacks turn events back into dispatch calls.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "link.h"
#include "log.h"

/*
 * Bytes read per read() call, and reads per dispatch before the loop
 * serves others: what one peer's bytes can cost the loop in a pass is
 * bounded (256 KiB of the worst input, all 0xFF, parses in ~5 ms; frames
 * parse at memory speed).  A busy channel is readable again at once, so
 * a stream loses little.
 */
#define LINK_READ_CHUNK (256 * 1024)
#define LINK_READS_PER_DISPATCH 1
#define LINK_IOV_MAX 64

struct reg {
	int fd;          /* -1: none */
	unsigned events;
	unsigned gen;    /* va_channel_generation when registered */
};

struct va_link {
	va_loop *loop;
	va_channel *ch;
	va_session *s;
	uint8_t *rbuf;     /* what one read() brings, handed to the session at once */
	va_loop_timer *timer;

	/* What the last sync put on the loop, and the revents gathered for
	 * dispatch (prepare's pollfds, matched by position). */
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	size_t npfd;
	unsigned pfd_gen;
	struct reg reg[VA_CHANNEL_MAX_POLLFDS];

	void (*activity)(void *opaque);
	void *activity_opaque;
};

static void sync_loop(va_link *l);

static void
link_state(void *opaque, enum va_channel_state st)
{
	va_link *l = opaque;

	if (st == VA_CHANNEL_UP) {
		va_log_info("%s: peer connected", va_channel_spec(l->ch));
		va_session_peer_up(l->s, va_now_ms());
	} else {
		va_log_info("%s: peer gone", va_channel_spec(l->ch));
		va_session_peer_down(l->s, va_now_ms());
	}
}

static void
write_out(va_link *l)
{
	struct iovec iov[LINK_IOV_MAX];

	while (va_channel_state(l->ch) == VA_CHANNEL_UP) {
		size_t n = va_session_output_iov(l->s, iov, LINK_IOV_MAX);
		if (n == 0)
			return;
		ssize_t w = va_channel_writev(l->ch, iov, (int)n);
		if (w < 0) {
			va_log_warn("%s: write", va_channel_spec(l->ch));
			return;
		}
		if (w == 0)
			return; /* would block: sync asks for POLLOUT */
		va_session_output_consume(l->s, (size_t)w);
	}
}

void
va_link_flush(va_link *l)
{
	write_out(l);
	sync_loop(l);
}

/*
 * Back-pressure: nothing more is read while the session holds input it
 * has not parsed (it stops parsing once its unwritten replies pass twice
 * its frame limit, session.h) or while its output is that large anyway,
 * so a peer that sends requests without reading the answers cannot make
 * us queue answers, or hold input, without end.
 */
static int
backed_up(const va_link *l)
{
	return va_session_input_held(l->s) > 0 ||
	       va_session_output_pending(l->s) > 2 * va_session_max_frame(l->s);
}


static void
fd_cb(void *opaque, int fd, unsigned revents)
{
	va_link *l = opaque;

	for (size_t i = 0; i < l->npfd; i++)
		if (l->pfd[i].fd == fd)
			l->pfd[i].revents |= (short)revents;
	/* The dispatch runs from the timer, at the end of this pass: one
	 * for both fds when both are ready. */
	va_loop_timer_soon(l->timer);
}

/* Runs the channel (events gathered by fd_cb, its timer), the held
 * input, reads, the session's timers, and writes. */
static void
run(void *opaque)
{
	va_link *l = opaque;
	uint64_t now = va_now_ms();
	unsigned ev = va_channel_dispatch(l->ch, l->pfd, l->npfd, now);

	for (size_t i = 0; i < l->npfd; i++)
		l->pfd[i].revents = 0;
	for (int i = 0; (ev & VA_CHANNEL_READABLE) && !backed_up(l) &&
			i < LINK_READS_PER_DISPATCH; i++) {
		ssize_t r = va_channel_read(l->ch, l->rbuf, LINK_READ_CHUNK);
		if (r < 0) {
			va_log_warn("%s: read", va_channel_spec(l->ch));
			break;
		}
		if (r == 0)
			break;
		va_session_input(l->s, l->rbuf, (size_t)r, va_now_ms());
		/* Write replies as they are made. */
		write_out(l);
		if ((size_t)r < LINK_READ_CHUNK)
			break;
	}
	va_session_tick(l->s, va_now_ms());
	write_out(l);
	sync_loop(l);
	if (l->activity)
		l->activity(l->activity_opaque);
}

static void
kick(void *opaque)
{
	va_link *l = opaque;
	va_loop_timer_soon(l->timer);
}

static void
reg_clear(va_link *l, struct reg *r)
{
	if (r->fd >= 0)
		va_loop_fd_clear(l->loop, r->fd);
	r->fd = -1;
	r->events = 0;
}

/*
 * Makes the loop poll what the channel wants now, and arms the timer for
 * the earliest of the channel's timer and the session's deadline (which
 * is "now" when the session holds input it can parse again).
 */
static void
sync_loop(va_link *l)
{
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	uint64_t now = va_now_ms();
	int timeout = -1;
	int want_write = va_session_output_pending(l->s) > 0;
	size_t n = va_channel_prepare(l->ch, pfd, VA_CHANNEL_MAX_POLLFDS, want_write, now,
				      &timeout);
	unsigned gen = va_channel_generation(l->ch);

	if (backed_up(l)) {
		/* Read nothing more until the output drains (the session's
		 * deadline is then "now" for its held input); POLLHUP and
		 * POLLERR still come while POLLOUT is asked. */
		for (size_t i = 0; i < n; i++)
			pfd[i].events &= (short)~POLLIN;
	}
	/* Off the loop: what is registered and no longer wanted, or whose
	 * number now names another file. */
	for (size_t k = 0; k < VA_CHANNEL_MAX_POLLFDS; k++) {
		struct reg *r = &l->reg[k];
		int keep = 0;
		for (size_t i = 0; i < n && r->fd >= 0; i++)
			keep = keep || pfd[i].fd == r->fd;
		if (r->fd >= 0 && (!keep || r->gen != gen))
			reg_clear(l, r);
	}
	for (size_t i = 0; i < n; i++) {
		struct reg *r = NULL, *spare = NULL;
		for (size_t k = 0; k < VA_CHANNEL_MAX_POLLFDS; k++) {
			if (l->reg[k].fd == pfd[i].fd)
				r = &l->reg[k];
			else if (l->reg[k].fd < 0 && !spare)
				spare = &l->reg[k];
		}
		/* An fd with events 0 stays registered but out of the wait:
		 * POLLHUP alone must not wake us (see loop.h). */
		unsigned want = (unsigned)pfd[i].events & (POLLIN | POLLOUT);
		if (!r) {
			r = spare;
			if (va_loop_fd_set(l->loop, pfd[i].fd, want, fd_cb, l) < 0) {
				va_log_warn("%s: cannot poll", va_channel_spec(l->ch));
				continue;
			}
			r->fd = pfd[i].fd;
			r->events = want;
			r->gen = gen;
		} else if (r->events != want) {
			if (va_loop_fd_events(l->loop, r->fd, want) < 0)
				va_log_warn("%s: cannot poll", va_channel_spec(l->ch));
			r->events = want;
		}
	}
	/* Dispatch matches revents to what prepare handed out last; keep
	 * what fd_cb gathered for an fd that is still the same file. */
	for (size_t i = 0; i < n; i++) {
		short rev = 0;
		for (size_t j = 0; j < l->npfd && l->pfd_gen == gen; j++)
			if (l->pfd[j].fd == pfd[i].fd)
				rev = l->pfd[j].revents;
		pfd[i].revents = rev;
	}
	for (size_t i = 0; i < n; i++)
		l->pfd[i] = pfd[i];
	l->npfd = n;
	l->pfd_gen = gen;

	uint64_t due = timeout < 0 ? UINT64_MAX : now + (uint64_t)timeout;
	uint64_t dl = va_session_deadline(l->s);
	if (dl < due)
		due = dl;
	if (due == UINT64_MAX)
		va_loop_timer_stop(l->timer);
	else if (va_loop_timer_due(l->timer) != due)
		va_loop_timer_at(l->timer, due);
}

va_link *
va_link_new(va_loop *loop, va_channel *ch, va_session *s)
{
	va_link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->rbuf = malloc(LINK_READ_CHUNK);
	l->timer = va_loop_timer_new(loop, run, l);
	if (!l->rbuf || !l->timer) {
		va_loop_timer_free(l->timer);
		free(l->rbuf);
		free(l);
		return NULL;
	}
	for (size_t k = 0; k < VA_CHANNEL_MAX_POLLFDS; k++)
		l->reg[k].fd = -1;
	l->loop = loop;
	l->ch = ch;
	l->s = s;
	va_channel_set_state_cb(ch, link_state, l);
	va_session_set_kick(s, kick, l);
	if (va_channel_state(ch) == VA_CHANNEL_UP)
		va_session_peer_up(s, va_now_ms());
	sync_loop(l);
	return l;
}

void
va_link_free(va_link *l)
{
	if (!l)
		return;
	for (size_t k = 0; k < VA_CHANNEL_MAX_POLLFDS; k++)
		reg_clear(l, &l->reg[k]);
	va_loop_timer_free(l->timer);
	va_channel_set_state_cb(l->ch, NULL, NULL);
	va_session_set_kick(l->s, NULL, NULL);
	free(l->rbuf);
	free(l);
}

void
va_link_set_activity_cb(va_link *l, void (*fn)(void *opaque), void *opaque)
{
	l->activity = fn;
	l->activity_opaque = opaque;
}
