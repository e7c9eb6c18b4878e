/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-int.h - what guest.c (the guest table, and what other threads
 * read of a guest) and guest-link.c (a guest's I/O on the loop thread, and
 * forwarded calls) share.  Other files use guest.h.
 */
#ifndef VA_PROXY_GUEST_INT_H
#define VA_PROXY_GUEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <xmlrpc-c/base.h>

#include "buf.h"
#include "channel.h"
#include "guest.h"
#include "link.h"
#include "session.h"

struct va_guests {
	struct va_proxy *px;
	/*
	 * v[0..n): the guests, each with the table's reference.  Changed on
	 * the loop thread under lock; the loop thread reads it without.
	 */
	pthread_mutex_t lock;
	struct va_guest **v;
	size_t n, cap;
	/*
	 * The same guests by name (open addressing, linear probing; NULL: a
	 * free slot): nslots is a power of two, 2 x cap, so a name is found
	 * without a strcmp per guest on every request.  Loop thread only,
	 * rebuilt whenever v changes.
	 */
	struct va_guest **slots;
	size_t nslots;
	struct va_buf caps_call; /* the va.capabilities call made to every new session */
};

/* What the loop thread keeps for the other threads, under g->lock. */
struct guest_shared {
	int connected;           /* channel up */
	int established;         /* session ready */
	int answered;            /* hello or capabilities seen in this session */
	char session[24];
	char *agent_version;
	int protocol;
	xmlrpc_value *methods;   /* array of strings, or NULL */
	int64_t agent_max_frame;
	double last_seen;        /* unix time of the last frame from the agent; 0: never */
	uint64_t resets;
	uint64_t calls_forwarded;
	uint64_t calls_failed;
	uint64_t in_flight;
	uint64_t stale_responses;
	uint64_t unmatched_responses;
	uint64_t hellos;
	char *notice_mode;
	char *notice_reason;
	double notice_time;
	char *clip;
	size_t clip_len;
	uint64_t clip_serial;
	double clip_time;
};

struct va_guest {
	struct va_proxy *px;
	atomic_uint refs;
	char *name;
	char *spec;

	/*
	 * The guest's I/O (guest-link.c), the loop thread's only: all NULL
	 * once the guest was removed (gone).
	 */
	va_channel *ch;
	va_session *s;
	va_link *link;
	int gone;
	/* Forwarded calls not finished yet, and their bodies' bytes (bounded). */
	size_t fwd_calls;
	size_t fwd_bytes;
	size_t streams;          /* file transfers running (files.c) */
	enum va_channel_state seen_state;
	uint64_t down_since_ms;
	uint64_t established_n;
	int hostwork_busy;       /* a large host.* call is off the loop (hostwork.h) */
	uint64_t caps_sent_ms;   /* the last va.capabilities query; 0: none yet */
	va_loop_timer *caps_timer; /* a query that waits for its interval */

	pthread_mutex_t lock;
	struct guest_shared sh;
};

/*
 * guest-link.c: makes g's session and link on the loop (its channel is
 * open); returns 0 or -ENOMEM.  Then closes them, and the channel: calls
 * in flight fail, the copy says "not connected".  Loop thread.
 */
int va_guest_io_open(struct va_guest *g);
void va_guest_io_close(struct va_guest *g);

/* Unix time in seconds, to the millisecond. */
static inline double
va_guest_wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

#endif
