/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-serve.h - answering a session's incoming call with an xmlrpc-c
 * registry: the request callback that test-link, test-agent-e2e and
 * demo-sessions share.
 */
#ifndef VA_RPC_SERVE_H
#define VA_RPC_SERVE_H

#include <stdint.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "frame.h"
#include "session.h"

/*
 * Runs the call in req through reg (call_info is handed to the method)
 * and sends the answer with va_session_reply(s, epoch, tag, ...): a
 * method's fault is an answer too.  Only when xmlrpc-c cannot process the
 * call at all does it stay unanswered.  Frees req in every case.
 */
void rpc_serve(xmlrpc_registry *reg, void *call_info, va_session *s, uint64_t epoch,
	       const char *tag, struct va_frame *req);

#endif
