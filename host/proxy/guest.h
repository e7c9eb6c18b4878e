/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest.h - the guests one va-proxy serves: the guest table of a proxy
 * (px->guests), and each guest.
 *
 * Each guest has a channel, a session and a link (common/), all driven by
 * the proxy's loop thread together with the HTTP server (proxy.h), which
 * is the only thread that ever touches a channel, session or link:
 * forwarded calls are started on it (va_guest_forward) and answered on
 * it.  Other threads (proxy.* methods) read what the loop knows about a
 * guest from a copy it keeps under the guest's lock (va_guest_status,
 * ...), and hand work back to the loop with va_proxy_post.
 *
 * That copy is refreshed after every event of the guest's link (bytes
 * in, a change of the channel's state, a timer of the session: a call
 * timed out, a handshake did not come) and after every forwarded call
 * is sent.  Nothing refreshes it on a clock: nothing else changes what
 * it counts, and an idle proxy does not wake.
 *
 * The table: guests are added and removed on the loop thread (before the
 * loop runs: by the thread that will start it) while others run, and
 * looked up there by name.  Other threads take a list of references
 * (va_guests_list).  A guest is reference-counted: the table holds one,
 * and so does whoever keeps a guest beyond the callback that found it (a
 * request waiting for its body, a proxy.* call on its worker thread).  A
 * guest removed closes its channel at once: its calls in flight fail
 * (VA_PROXY_FAULT_NOT_CONNECTED, or VA_PROXY_FAULT_SHUTTING_DOWN when
 * the whole proxy stops) and later ones are refused, while what holds a
 * reference can still read it; it is freed with the last reference.
 * Forwarded calls hold none: they end before their guest's channel
 * closes.
 *
 * Requests the guests make (host.* methods) are run on the loop thread
 * through px->host_reg; their method functions get a struct
 * va_host_call as callInfo and may call the va_guest_set_* functions
 * below.
 */
#ifndef VA_PROXY_GUEST_H
#define VA_PROXY_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "frame.h"
#include "session.h"

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
/*
 * va.capabilities, which the proxy asks at every new session: at most
 * once per this interval (a guest that resets in a loop cannot make it
 * ask and parse again and again), and an answer of at most this size.
 */
#define VA_GUEST_CAPS_INTERVAL_MS 2000
#define VA_GUEST_CAPS_MAX (256u * 1024)
/* Largest clipboard text the proxy keeps (the agent's cap too). */
#define VA_GUEST_CLIPBOARD_MAX (1024u * 1024)

struct va_guest;
struct va_guests;
struct va_proxy;

/* What a host.* method function gets as callInfo. */
struct va_host_call {
	struct va_guest *guest;
	size_t body_len; /* the request's XML size */
};

/* ---- the table ---- */

/* An empty table for px (px->guests); NULL: no memory. */
struct va_guests *va_guests_new(struct va_proxy *px);
/* After va_guests_remove_all.  NULL is fine. */
void va_guests_free(struct va_guests *t);

/*
 * Adds a guest: opens its channel and puts its session and link on the
 * loop (loop thread).  Returns 0, or -errno with a message in err (-EEXIST:
 * a guest of that name is there already).
 */
int va_guests_add(struct va_proxy *px, const char *name, const char *spec, char *err,
		  size_t errlen);
/* Takes g out of the table and closes its channel (loop thread; see above). */
void va_guests_remove(struct va_proxy *px, struct va_guest *g);
/* Removes every guest (loop thread; at the stop). */
void va_guests_remove_all(struct va_proxy *px);

/* Loop thread: the table as it is now (no reference taken). */
size_t va_guests_count(struct va_proxy *px);
struct va_guest *va_guests_at(struct va_proxy *px, size_t i);
/* NULL when there is no guest of that name. */
struct va_guest *va_guests_find(struct va_proxy *px, const char *name);

/*
 * Any thread: the guests now, in the table's order, each with a
 * reference; *n is their number.  NULL when there are none or no memory
 * (then *n is 0).  Give it back with va_guests_list_free.
 */
struct va_guest **va_guests_list(struct va_proxy *px, size_t *n);
void va_guests_list_free(struct va_guest **list, size_t n);

/* Any thread, for a guest one holds. */
void va_guest_ref(struct va_guest *g);
void va_guest_unref(struct va_guest *g);
const char *va_guest_name(const struct va_guest *g);
/* The channel spec it was added with. */
const char *va_guest_spec(const struct va_guest *g);

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
 * too large, guest removed, shutting down), within the call timeout plus
 * the handshake wait.  method is for messages only.  Loop thread only.
 */
void va_guest_forward(struct va_guest *g, const char *method, const void *body, size_t len,
		      va_guest_done_fn *done, void *ctx);

/*
 * Binary calls (protocol 2; files.c's file streams).  The outcome: fault
 * 0 with resp (the callee's: va_frame_free it, or take its body), or a
 * VA_PROXY_FAULT_* code, or VA_GUEST_OLD_AGENT (the agent speaks protocol
 * 1: it has no binary calls), with msg in plain words and resp NULL.
 */
#define VA_GUEST_OLD_AGENT (-1)
typedef void va_guest_bin_fn(void *ctx, int fault, const char *msg, struct va_frame *resp);
/*
 * Sends m (session.h; its body taken when m->take, also on failure) to
 * the agent, waiting at most timeout_ms for the answer (and, before that,
 * VA_GUEST_READY_TIMEOUT_MS for a handshake).  Returns 0, and done runs
 * exactly once, later, on the loop thread; or a fault code as above with
 * msg filled (done never runs).  Loop thread only.  These calls are not
 * counted in VA_GUEST_MAX_CALLS: their callers bound what they keep in
 * flight themselves.
 */
int va_guest_call_binary(struct va_guest *g, const struct va_msg *m, unsigned timeout_ms,
			 va_guest_bin_fn *done, void *ctx, char *msg, size_t msglen);
/* The agent's frame limit as it announced it (0: not known yet).  Loop thread. */
size_t va_guest_peer_max_frame(struct va_guest *g);
/*
 * Counts a file transfer of g in (0), or refuses it (-1) when max run
 * already; va_guest_stream_end counts it out.  Loop thread.
 */
int va_guest_stream_begin(struct va_guest *g, size_t max);
void va_guest_stream_end(struct va_guest *g);

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
/*
 * Posts an event of the guest to its proxy's queue (events.h); cost is
 * what the guest sent for it in bytes (0 for the proxy's own events).
 */
void va_guest_post_event(struct va_guest *g, const char *type, xmlrpc_value *data,
			 size_t cost);

#endif
