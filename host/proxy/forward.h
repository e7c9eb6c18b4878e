/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * forward.h - what va-proxy does with a call from a host script.
 *
 * It reads only the method name of the body (va_rpc_method_name) and:
 *   - refuses it with fault VA_PROXY_FAULT_BLOCKED when --block-rpcs
 *     names it (or system.multicall, which would run calls past the list);
 *   - answers system.listMethods itself: the proxy's methods and the
 *     guest's (as the agent announced them), without the blocked ones;
 *   - runs proxy.* (and system.methodHelp/Signature about proxy.*
 *     methods) in its own registry;
 *   - forwards everything else to the guest untouched, and returns the
 *     guest's response untouched, or a fault of contract.h.
 *
 * Its state (struct va_forward, one per proxy: px->fwd) is the block
 * list, under a lock of its own, and the worker threads of proxy.* calls
 * with their count, under another.
 */
#ifndef VA_PROXY_FORWARD_H
#define VA_PROXY_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/server.h>

struct va_guest;
struct va_proxy;
struct va_forward;

struct va_reply {
	int status;               /* HTTP status: 200, or 400 for a body that is no call */
	const char *content_type; /* "text/xml" or "text/plain; charset=utf-8" */
	uint8_t *body;            /* malloc'ed; the caller frees it */
	size_t len;
};

/*
 * The forwarder of px, whose proxy_reg (the proxy.* methods), events and
 * loop it uses (kept, not owned), with an empty block list.  NULL: no
 * memory.
 */
struct va_forward *va_forward_new(struct va_proxy *px);
/* After va_forward_wait_local said no proxy.* call runs.  NULL is fine. */
void va_forward_free(struct va_forward *f);
/*
 * Sets the block list: common/acl.h's syntax (names and "NAME.*"
 * wildcards, commas or white space), the same as va-agent's; names must
 * be in the va., proxy. or system. namespace.  Logs the list in force.
 * Any thread.  Returns 0, or -1 with the reason in err (the old list
 * stays).
 */
int va_forward_set_block_list(struct va_forward *f, const char *list, char *err,
			      size_t errlen);
/* 1 when the block list names method.  Any thread. */
int va_forward_blocked(struct va_forward *f, const char *method);

/* Gets an answer (out->body is the callee's), on the loop thread. */
typedef void va_reply_fn(void *ctx, struct va_reply *rep);

/* proxy.* calls running at once, at most. */
#define VA_FORWARD_MAX_LOCAL 64

/*
 * Handles one call for guest g, on the loop thread (guest.h): body
 * (malloc'ed, a NUL after len) is taken over.  done(ctx, reply) runs
 * exactly once, on the loop thread: during this call (refusals and
 * answers the proxy has at hand), when the guest answers, or after a
 * proxy.* method ran on a thread of its own (they may wait: proxy.events).
 * Never fails: faults are replies.  g is not kept beyond the call (a
 * proxy.* call takes a reference of its own).
 */
void va_forward_handle(struct va_forward *f, struct va_guest *g, uint8_t *body, size_t len,
		       va_reply_fn *done, void *ctx);
/*
 * The client of the call given ctx went away (loop thread): a proxy.*
 * method still waiting for it (proxy.events) returns at once, so that
 * abandoned long polls do not hold the threads.  Forwarded calls run on.
 */
void va_forward_cancel(struct va_forward *f, void *ctx);
/*
 * Waits up to timeout_ms for the proxy.* calls still running (any thread
 * but the loop's).  Returns 0 when none is left, -1 otherwise.  Their
 * answers are posted to the loop (va_loop_post); after the loop thread
 * ended, whoever runs the loop then runs them.
 */
int va_forward_wait_local(struct va_forward *f, unsigned timeout_ms);

#endif
