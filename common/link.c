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

struct va_link {
	va_channel *ch;
	va_session *s;
	uint8_t *rbuf;
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

size_t
va_link_prepare(va_link *l, struct pollfd *pfd, size_t max, int *timeout_ms)
{
	uint64_t now = va_now_ms();
	int want_write = va_session_output_pending(l->s) > 0;
	size_t n = va_channel_prepare(l->ch, pfd, max, want_write, now, timeout_ms);

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

	if (ev & VA_CHANNEL_READABLE) {
		for (int i = 0; i < LINK_READS_PER_DISPATCH; i++) {
			ssize_t r = va_channel_read(l->ch, l->rbuf, LINK_READ_CHUNK);
			if (r < 0) {
				va_log_warn("%s: read", va_channel_spec(l->ch));
				break;
			}
			if (r == 0)
				break;
			va_session_input(l->s, l->rbuf, (size_t)r, va_now_ms());
			/* Write replies as they are made, so a long burst of
			 * input does not pile up output. */
			va_link_flush(l);
			if ((size_t)r < LINK_READ_CHUNK)
				break;
		}
	}
	va_session_tick(l->s, va_now_ms());
	va_link_flush(l);
}
