/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * serve.h - an xmlrpc-c registry served over a session: what va-agent
 * does with the host's calls, va-proxy with its guests' host.* calls,
 * and the tests with either.
 */
#ifndef VA_SERVE_H
#define VA_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/server.h>

#include "frame.h"
#include "session.h"

/*
 * Answers the request req (the callee owns it and frees it) with the
 * registry, through the gate (xmlgate.h): a refused or malformed body,
 * a method's fault and a response are all answered (va_rpc_reply).
 * call_info is the methods' callInfo.  Loop thread.
 */
void va_rpc_serve(va_session *s, uint64_t epoch, const char *tag, struct va_frame *req,
		  xmlrpc_registry *registry, void *call_info);
/* The same with the gate's limits lim (xmlgate.h; NULL: the default). */
struct va_xml_limits;
void va_rpc_serve_lim(va_session *s, uint64_t epoch, const char *tag, struct va_frame *req,
		      xmlrpc_registry *registry, const struct va_xml_limits *lim,
		      void *call_info);

/*
 * Like va_rpc_serve, for a request whose method the caller has looked
 * up already (mi, registered in registry with serverInfo server_info) and
 * allowed (the registry's preinvoke function is not run again).  When the
 * body is a call of exactly that method without parameters, in the shape
 * XML-RPC clients send (see va_rpc_call_is_bare), the method runs at once
 * with an empty parameter array, and its result or fault is answered byte
 * for byte as the registry answers it; any other body goes to
 * va_rpc_serve.  The registry's parser would only build the empty array:
 * for a call such as va.ping it was most of the agent's work (a new
 * expat parser, seeded with srand(), and a tree of elements per call).
 */
void va_rpc_serve_method(va_session *s, uint64_t epoch, const char *tag, struct va_frame *req,
			 xmlrpc_registry *registry, const struct xmlrpc_method_info3 *mi,
			 void *server_info, void *call_info);

/*
 * 1 when body is an XML-RPC call of method name with no parameters, in
 * exactly this shape, else 0:
 *   an XML declaration <?xml version="1.0"?> (either quotes, optionally
 *   with encoding="UTF-8") at the very start, or none;
 *   <methodCall>, <methodName>name</methodName> (no white space inside),
 *   then <params></params> or nothing, then </methodCall>, with only
 *   white space (space, tab, CR, LF) between the tags and after them.
 * xmlrpc-c parses such a body into name and an empty array, and the gate
 * (xmlgate.h) has nothing to refuse or rewrite in it.
 */
int va_rpc_call_is_bare(const void *body, size_t len, const char *name);

/*
 * Answers the request tagged tag of epoch with body.  A body over the
 * peer's frame limit is answered with a small fault instead
 * (XMLRPC_LIMIT_EXCEEDED_ERROR, "the response of N bytes is larger than
 * the frame limit ..."); an answer to a request of an earlier session is
 * dropped (logged).  Returns what va_session_reply returned for the
 * body (0, -ESTALE, -E2BIG, ...).
 */
int va_rpc_reply(va_session *s, uint64_t epoch, const char *tag, const void *body, size_t len);
/* Answers with a fault (code, msg). */
void va_rpc_reply_fault(va_session *s, uint64_t epoch, const char *tag, int code,
			const char *msg);

#endif
