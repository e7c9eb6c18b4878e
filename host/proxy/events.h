/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * events.h - the bounded queue of events that host scripts read with
 * proxy.events(since_id, timeout_s), a long poll.
 *
 * Events get ids 1, 2, 3... in the order they are posted (ids start again
 * at 1 when the proxy restarts).  The queue is bounded in events and in
 * bytes, and shared fairly: a guest's events may hold at most
 * VA_EVENTS_GUEST_BYTES (its oldest go first), and when the whole queue
 * is over VA_EVENTS_CAPACITY events or VA_EVENTS_TOTAL_BYTES, the oldest
 * event of the guest holding the most goes.  So a guest that floods
 * events only ever pushes out its own.  Events that go from the front of
 * the queue are told to a reader behind them by fault 1007 (as when the
 * queue is simply full); where a guest's events go from further in (other
 * guests' older events stay), the queue holds an event of type
 * "events.dropped" for that guest, data {count}, before its next event.  The
 * bytes of an event are what the guest sent for it (the call's XML, at
 * least VA_EVENTS_MIN_COST), or VA_EVENTS_VALUE_COST per value of its
 * data when that is more: xmlrpc-c holds ~250 bytes for each value, be it
 * an empty <value/> of 8 bytes, so counted by its XML alone a share of
 * 1 MiB held 30 MiB of values, and 16 guests half a GiB.  Counted so, the
 * values of the queue hold at most about twice its bytes (half of a
 * value's memory is counted: a small event, a clipboard note of four
 * values, costs no more than its XML).
 *
 * The queue is an object of its own (one per proxy, struct va_proxy's
 * events) with its own lock: every function but va_events_free may be
 * called from any thread.
 */
#ifndef VA_PROXY_EVENTS_H
#define VA_PROXY_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>

/* VA_EVENTS_MAX_PER_CALL and VA_EVENTS_MAX_WAIT_S, which vactl relies on. */
#include "contract.h"

#define VA_EVENTS_CAPACITY 1024
#define VA_EVENTS_GUEST_BYTES (1024u * 1024)
#define VA_EVENTS_TOTAL_BYTES (16u * 1024 * 1024)
#define VA_EVENTS_MIN_COST 256
#define VA_EVENTS_VALUE_COST 128

struct va_events;

/* An empty queue keeping the newest capacity events; NULL: no memory. */
struct va_events *va_events_new(size_t capacity);
/* After every waiter has returned (see va_events_shutdown).  NULL is fine. */
void va_events_free(struct va_events *q);

/*
 * Appends an event and wakes the waiters.  data is a struct (NULL: an
 * empty one); the queue takes its own reference.  cost is what the guest
 * sent for it, in bytes (see above).  Returns the event's id, or 0 when
 * it could not be stored (no memory, or larger than a guest's share;
 * logged).
 */
uint64_t va_events_post(struct va_events *q, const char *guest, const char *type,
			xmlrpc_value *data, size_t cost);

/*
 * proxy.events: a new array of the events with an id above since_id
 * (at most VA_EVENTS_MAX_PER_CALL), each a struct {id, time, guest, type,
 * data}.  When there is none, waits up to timeout_ms for one.  since_id
 * -1 means "from the newest event now" (only events posted from now on).
 * cancel (may be NULL): va_events_cancel(cancel) ends the wait early.
 * When events after since_id fell off the front of the queue, or since_id
 * is above the newest id, sets a VA_PROXY_FAULT_EVENTS_LOST fault that
 * names the ids available, and returns NULL (events a guest lost to its
 * share are told by its "events.dropped" event instead).
 */
xmlrpc_value *va_events_get(struct va_events *q, xmlrpc_env *env, int64_t since_id,
			    unsigned timeout_ms, const int *cancel);

/*
 * Sets *cancel (under the queue's lock) and wakes the waiters: the one
 * waiting with that flag returns what it has at once (see va_events_get).
 */
void va_events_cancel(struct va_events *q, int *cancel);

/* Wakes every waiter; waits that start later return at once. */
void va_events_shutdown(struct va_events *q);

#endif
