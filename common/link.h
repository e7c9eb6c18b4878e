/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * link.h - drives a session over a channel inside a poll() loop.
 *
 * The link owns neither: it registers itself as the channel's state
 * callback (UP -> va_session_peer_up, DOWN -> va_session_peer_down),
 * moves bytes between them and runs the session's timers.  A loop does:
 *
 *     n = va_link_prepare(l, pfd, max, &timeout);
 *     poll(pfd, n, timeout);
 *     va_link_dispatch(l, pfd, n);
 *
 * After calls or replies made outside dispatch, va_link_flush() writes
 * what it can at once (the next prepare asks for POLLOUT otherwise).
 */
#ifndef VA_LINK_H
#define VA_LINK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "session.h"

#define VA_LINK_MAX_POLLFDS VA_CHANNEL_MAX_POLLFDS

typedef struct va_link va_link;

/* Monotonic clock in milliseconds. */
uint64_t va_now_ms(void);

va_link *va_link_new(va_channel *ch, va_session *s);
/* Unregisters from the channel; frees neither channel nor session. */
void va_link_free(va_link *l);
size_t va_link_prepare(va_link *l, struct pollfd *pfd, size_t max, int *timeout_ms);
void va_link_dispatch(va_link *l, const struct pollfd *pfd, size_t n);
void va_link_flush(va_link *l);

#endif
