/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * link.h - drives a session over a channel on the event loop.
 *
 * The link owns neither: it registers itself as the channel's state
 * callback (UP -> va_session_peer_up, DOWN -> va_session_peer_down) and
 * as the session's kick (session.h), puts the channel's fds and one
 * timer on the loop, moves bytes between them, and runs the session's
 * timers.  Calls and replies queued from anywhere (a callback of the
 * session, another fd's callback, a timer, posted work) are written in
 * the same pass of the loop, before it waits again; nobody has to flush.
 *
 * Back-pressure: what a read brings goes to the session at once, and no
 * more is read while the session holds input it stopped parsing (its
 * unwritten replies are over twice its frame limit) or its output is
 * that large, so a peer that sends requests without reading the answers
 * cannot make us queue answers without end.  Fairness: one read of at
 * most 256 KiB per link per pass of the loop, so one busy or hostile
 * peer cannot keep the loop from the others for long.
 */
#ifndef VA_LINK_H
#define VA_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "loop.h"
#include "session.h"

typedef struct va_link va_link;

/* NULL on allocation failure.  Starts at once (a channel UP already resets the session). */
va_link *va_link_new(va_loop *loop, va_channel *ch, va_session *s);
/* Takes the link off the loop and unregisters it; frees neither channel nor session. */
void va_link_free(va_link *l);
/* Writes what the channel takes now (the link also does it by itself). */
void va_link_flush(va_link *l);
/*
 * fn(opaque) runs after the link has handled an event of its channel or
 * a timer (bytes in, a state change, a session timeout), once per pass
 * at most: a place to look at the channel's and the session's state.
 * NULL removes it.
 */
void va_link_set_activity_cb(va_link *l, void (*fn)(void *opaque), void *opaque);

#endif
