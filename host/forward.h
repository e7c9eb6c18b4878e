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
 *     guest's response untouched, or a fault of faults.h.
 */
#ifndef VA_PROXY_FORWARD_H
#define VA_PROXY_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/server.h>

struct va_guest;

struct va_reply {
	int status;               /* HTTP status: 200, or 400 for a body that is no call */
	const char *content_type; /* "text/xml" or "text/plain; charset=utf-8" */
	uint8_t *body;            /* malloc'ed; the caller frees it */
	size_t len;
};

/* proxy_registry: the proxy.* methods (kept, not owned). */
void va_forward_init(xmlrpc_registry *proxy_registry);
/*
 * Sets the block list (comma list; "NAME.*" blocks everything under
 * NAME.).  Any thread.  Returns 0 or -ENOMEM (the old list stays).
 */
int va_forward_set_block_list(const char *list);
/* 1 when the block list names method. */
int va_forward_blocked(const char *method);
void va_forward_cleanup(void);

/* Handles one call for guest g; fills out (never fails: faults are replies). */
void va_forward_handle(struct va_guest *g, const uint8_t *body, size_t len,
		       struct va_reply *out);

#endif
