/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "link.h"
#include "log.h"

/* Bytes read per read() call, and reads per dispatch before yielding. */
#define LINK_READ_CHUNK (256 * 1024)
#define LINK_READS_PER_DISPATCH 64
#define LINK_IOV_MAX 64
/*
 * Back-pressure: input is handed to the session in slices of at most
 * LINK_FEED_SLICE bytes, and no more is handed (nor read) while the
 * session's unwritten output is over twice its frame limit, so a peer
 * that sends requests without reading the answers cannot make us queue
 * answers without end.
 */
#define LINK_FEED_SLICE 1024

struct va_link {
	va_channel *ch;
	va_session *s;
	uint8_t *rbuf;
	size_t rpos, rlen; /* rbuf[rpos..rlen): read, not yet handed to the session */
};

uint64_t
va_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
link_state(void *opaque, enum va_channel_state st)
{
	va_link *l = opaque;

	l->rpos = l->rlen = 0; /* held input belongs to the old peer */
	if (st == VA_CHANNEL_UP) {
		va_log_info("%s: peer connected", va_channel_spec(l->ch));
		va_session_peer_up(l->s, va_now_ms());
	} else {
		va_log_info("%s: peer gone", va_channel_spec(l->ch));
		va_session_peer_down(l->s, va_now_ms());
	}
}

va_link *
va_link_new(va_channel *ch, va_session *s)
{
	va_link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->rbuf = malloc(LINK_READ_CHUNK);
	if (!l->rbuf) {
		free(l);
		return NULL;
	}
	l->ch = ch;
	l->s = s;
	va_channel_set_state_cb(ch, link_state, l);
	if (va_channel_state(ch) == VA_CHANNEL_UP)
		va_session_peer_up(s, va_now_ms());
	return l;
}

void
va_link_free(va_link *l)
{
	if (!l)
		return;
	va_channel_set_state_cb(l->ch, NULL, NULL);
	free(l->rbuf);
	free(l);
}

void
va_link_flush(va_link *l)
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
			return; /* would block: prepare asks for POLLOUT */
		va_session_output_consume(l->s, (size_t)w);
	}
}

static int
backed_up(const va_link *l)
{
	return va_session_output_pending(l->s) > 2 * va_session_max_frame(l->s);
}

/* Hands held input to the session while the output is not backed up. */
static void
feed(va_link *l)
{
	while (l->rpos < l->rlen && !backed_up(l)) {
		size_t n = l->rlen - l->rpos;
		if (n > LINK_FEED_SLICE)
			n = LINK_FEED_SLICE;
		l->rpos += n;
		va_session_input(l->s, l->rbuf + l->rpos - n, n, va_now_ms());
		/* Write replies as they are made. */
		va_link_flush(l);
	}
	if (l->rpos == l->rlen)
		l->rpos = l->rlen = 0;
}

size_t
va_link_prepare(va_link *l, struct pollfd *pfd, size_t max, int *timeout_ms)
{
	uint64_t now = va_now_ms();
	int want_write = va_session_output_pending(l->s) > 0;
	size_t n = va_channel_prepare(l->ch, pfd, max, want_write, now, timeout_ms);

	if (l->rlen || backed_up(l)) {
		/* Read nothing more until the held input is handed over;
		 * POLLHUP and POLLERR still come. */
		for (size_t i = 0; i < n; i++)
			pfd[i].events &= (short)~POLLIN;
		if (l->rlen && !backed_up(l))
			*timeout_ms = 0;
	}

	uint64_t dl = va_session_deadline(l->s);
	if (dl != UINT64_MAX) {
		uint64_t wait = dl > now ? dl - now : 0;
		if (wait > INT32_MAX)
			wait = INT32_MAX;
		if (*timeout_ms < 0 || (uint64_t)*timeout_ms > wait)
			*timeout_ms = (int)wait;
	}
	return n;
}

void
va_link_dispatch(va_link *l, const struct pollfd *pfd, size_t n)
{
	uint64_t now = va_now_ms();
	unsigned ev = va_channel_dispatch(l->ch, pfd, n, now);

	feed(l);
	if ((ev & VA_CHANNEL_READABLE) && !l->rlen && !backed_up(l)) {
		for (int i = 0; i < LINK_READS_PER_DISPATCH; i++) {
			ssize_t r = va_channel_read(l->ch, l->rbuf, LINK_READ_CHUNK);
			if (r < 0) {
				va_log_warn("%s: read", va_channel_spec(l->ch));
				break;
			}
			if (r == 0)
				break;
			l->rpos = 0;
			l->rlen = (size_t)r;
			feed(l);
			if (l->rlen || (size_t)r < LINK_READ_CHUNK)
				break;
		}
	}
	va_session_tick(l->s, va_now_ms());
	va_link_flush(l);
}
