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
