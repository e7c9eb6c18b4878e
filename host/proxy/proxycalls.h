/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxycalls.h - the methods va-proxy serves itself to host scripts:
 *
 *   proxy.status()                  -> struct: the routed guest's link state
 *   proxy.clipboard.get()           -> struct {text, serial, time}: what the
 *                                      guest copied last (serial 0: nothing yet)
 *   proxy.events(since_id[, timeout_s]) -> array of {id, time, guest, type, data}
 *   proxy.guests()                  -> array of {guest, channel, connected, answered}
 *
 * plus xmlrpc-c's system.methodHelp and system.methodSignature for
 * these.  Each call runs on a thread of its own (forward.c), with a struct
 * va_proxy_call as callInfo.
 */
#ifndef VA_PROXY_PROXYCALLS_H
#define VA_PROXY_PROXYCALLS_H

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

struct va_guest;
struct va_proxy;

struct va_proxy_call {
	struct va_proxy *proxy;      /* its guests and events */
	struct va_guest *guest;      /* the guest the URL routes to (the call holds a reference) */
	const int *cancel;           /* proxy.events: see va_events_cancel */
};

/* A new registry of the proxy.* methods; NULL with env set on failure. */
xmlrpc_registry *va_proxycalls_registry(xmlrpc_env *env);

/* The names of the methods the proxy serves itself, NULL-terminated. */
extern const char *const va_proxycalls_names[];

#endif
