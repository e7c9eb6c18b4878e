/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * events.h - guest events for the host: host.event(name, {time, details})
 * calls that the proxy posts to proxy.events (docs/METHODS.md, "Guest
 * events").  The groups that watch the guest (net.c, fs-watch.c, oom.c,
 * users.c) send them through va_event(); the group "events" (events.c)
 * keeps the rate limit.
 *
 * Bounds: at most VA_EVENT_BURST events of one name per
 * VA_EVENT_WINDOW_MS; the others are dropped and counted, and the next
 * one of that name that goes out carries "dropped": N in its data.  An
 * event when no session with the host is up is dropped (logged at debug
 * level): the host learns the state from the methods when it connects.
 */
#ifndef VA_AGENT_EVENTS_H
#define VA_AGENT_EVENTS_H

#include <xmlrpc-c/base.h>

#include "agent.h"

#define VA_EVENT_BURST 20
#define VA_EVENT_WINDOW_MS 10000

/*
 * Sends host.event(name, {time: double (the guest's clock, unix
 * seconds), details: details}) now.  details is a struct (the caller
 * keeps its reference).  Nothing happens when a has no group "events".
 */
void va_event(struct va_agent *a, const char *name, xmlrpc_value *details);

/* A new empty struct for details, or NULL (logged). */
xmlrpc_value *va_event_details(xmlrpc_env *env);

#endif
