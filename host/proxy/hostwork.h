/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hostwork.h - the guests' large host.* calls, parsed and run off the
 * loop thread.
 *
 * The loop thread serves every guest and every HTTP client: a guest's
 * body that costs more than a few milliseconds to parse (a 1 MiB
 * clipboard text written as 4 MiB of "&lt;": ~25 ms in xmlrpc-c) must
 * not hold it.  Calls over VA_HOSTWORK_INLINE_MAX bytes go to one worker
 * thread of the proxy's, which parses them (through the gate, with the
 * small limits) and runs the method; the answer is sent on the loop
 * thread (posted), to the session the call came from, unless it was reset
 * since (va_rpc_reply drops it) or the guest was removed.  A guest has at
 * most one such call waiting or running (more: a "busy" fault at once),
 * and the proxy at most VA_HOSTWORK_QUEUE.  Only methods safe off the
 * loop thread may get there: host.clipboard.set (the one large call;
 * host.hello, host.shutdown_notice and host.event are capped far below
 * the threshold, hostcalls.h).
 */
#ifndef VA_PROXY_HOSTWORK_H
#define VA_PROXY_HOSTWORK_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "session.h"

#define VA_HOSTWORK_INLINE_MAX (64u * 1024)
#define VA_HOSTWORK_QUEUE 64

struct va_proxy;
struct va_guest;
struct va_hostwork;

/* NULL: no memory.  The thread starts with the first call. */
struct va_hostwork *va_hostwork_new(struct va_proxy *px);
/*
 * Loop thread: takes req (owned from here on, also on failure) of g's
 * session s, tagged tag in epoch.  Returns 0, or -EBUSY / -ENOMEM (the
 * caller answers with a fault; req is freed).
 */
int va_hostwork_submit(struct va_hostwork *w, struct va_guest *g, va_session *s, uint64_t epoch,
		       const char *tag, struct va_frame *req);
/* Ends the thread after the call it runs (the queued ones are dropped, unanswered). */
void va_hostwork_stop(struct va_hostwork *w);
/* After va_hostwork_stop.  NULL is fine. */
void va_hostwork_free(struct va_hostwork *w);

#endif
