/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest.h - the guests one va-proxy serves.
 *
 * Each guest has a channel, a session and a link (common/).  One thread,
 * the loop thread, drives all of them on one va_loop together with the
 * HTTP server (httpd.c), and it is the only thread that ever touches a
 * channel, session or link: forwarded calls are started on it
 * (va_guest_forward) and answered on it.  Other threads (proxy.* methods)
 * read what the loop knows about a guest from a copy it keeps up to date
 * under a lock (va_guest_status, ...), and hand work back to the loop
 * with va_guests_post.
 *
 * Requests the guests make (host.* methods) are run on the loop thread
 * through the registry given to va_guests_start(); their method
 * functions get a struct va_host_call as callInfo and may call the
 * va_guest_set_* functions below.
 */
#ifndef VA_PROXY_GUEST_H
#define VA_PROXY_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "loop.h"

/* How long a call waits for a channel that is down, before failing. */
#define VA_GUEST_DOWN_GRACE_MS 1000
/* How long a call waits for the agent's handshake (session ready_timeout_ms). */
#define VA_GUEST_READY_TIMEOUT_MS 3000
/*
 * Forwarded calls not finished yet, per guest: at most this many, and
 * bodies of at most VA_GUEST_BACKLOG_FRAMES x max_frame bytes in all;
 * more get VA_PROXY_FAULT_BUSY at once (a stalled guest must not make the
 * proxy keep whatever clients send it).
 */
#define VA_GUEST_MAX_CALLS 1024
#define VA_GUEST_BACKLOG_FRAMES 8
/* Largest clipboard text the proxy keeps (the agent's cap too). */
#define VA_GUEST_CLIPBOARD_MAX (1024u * 1024)

struct va_guest;

struct va_guests_config {
	unsigned call_timeout_ms;
	size_t max_frame;
};

/* What a host.* method function gets as callInfo. */
struct va_host_call {
	struct va_guest *guest;
	size_t body_len; /* the request's XML size */
};

/*
 * Adds a guest and opens its channel (before va_guests_start).  Returns
 * 0, or -errno with a message in err.
 */
int va_guests_add(const char *name, const char *spec, char *err, size_t errlen);
size_t va_guests_count(void);
struct va_guest *va_guests_at(size_t i);
/* NULL when there is no guest of that name. */
struct va_guest *va_guests_find(const char *name);
const char *va_guest_name(const struct va_guest *g);

/* The loop the loop thread runs (made at the first call; NULL: no memory). */
va_loop *va_guests_loop(void);

/*
 * Starts the loop thread.  host_registry (kept, not owned) serves the
 * guests' requests.  Returns 0 or -errno.
 */
int va_guests_start(const struct va_guests_config *cfg, xmlrpc_registry *host_registry);
/*
 * Stops the loop thread: calls in flight fail with
 * VA_PROXY_FAULT_SHUTTING_DOWN (their answers written on the loop thread
 * before it ends), channels are closed.  The guests stay readable until
 * va_guests_free().  Work posted later waits for va_guests_run_posted.
 */
void va_guests_stop(void);
/*
 * Runs fn(arg) on the loop thread, soon (any thread).  After
 * va_guests_stop, only va_guests_run_posted runs it.
 */
void va_guests_post(void (*fn)(void *), void *arg);
/* Runs what was posted and not run yet, on the calling thread (after the stop). */
void va_guests_run_posted(void);
/* After va_guests_stop(), when no other thread uses a guest any more. */
void va_guests_free(void);

struct va_call_result {
	uint8_t *body;  /* the guest's XML-RPC response, malloc'ed (NUL after len); caller frees */
	size_t len;
	int fault;      /* 0 when body is set; else a VA_PROXY_FAULT_* code */
	char msg[512];  /* the fault's message, in plain words */
};

/* Gets the outcome of a forwarded call; res->body may be taken (set it to NULL). */
typedef void va_guest_done_fn(void *ctx, struct va_call_result *res);

/*
 * Forwards an XML-RPC call body (as it is; no reference is kept after
 * the return) to the guest.  done(ctx, res) runs exactly once on the
 * loop thread, maybe before this returns: with the guest's response, or
 * a fault (channel not connected, agent not answering, timeout, lost,
 * too large, shutting down), within the call timeout plus the handshake
 * wait.  method is for messages only.  Loop thread only.
 */
void va_guest_forward(struct va_guest *g, const char *method, const void *body, size_t len,
		      va_guest_done_fn *done, void *ctx);

/* proxy.status: a new struct describing the guest's link (see docs/PROXY-FAULTS.md). */
xmlrpc_value *va_guest_status(xmlrpc_env *env, struct va_guest *g);
/* proxy.clipboard.get: a new struct {text, serial}; serial 0: nothing copied yet. */
xmlrpc_value *va_guest_clipboard(xmlrpc_env *env, struct va_guest *g);
/* A new array of the methods the agent announced (empty when not known yet). */
xmlrpc_value *va_guest_methods(xmlrpc_env *env, struct va_guest *g);

/* ---- for the host.* methods (loop thread) ---- */

/*
 * Takes the agent's self-description (host.hello's struct or the result
 * of va.capabilities): version (string), protocol (int), methods (array
 * of strings), max_frame (int).  Sets a type fault when one is missing or
 * of another type; other members are ignored.
 */
void va_guest_set_info(xmlrpc_env *env, struct va_guest *g, xmlrpc_value *info,
		       const char *source);
/* Stores what the guest copied; returns the new serial (1, 2, ...), 0 on no memory. */
uint64_t va_guest_set_clipboard(struct va_guest *g, const char *text, size_t len);
/* Remembers the guest's last shutdown notice. */
void va_guest_note_shutdown(struct va_guest *g, const char *mode, const char *reason);

#endif
