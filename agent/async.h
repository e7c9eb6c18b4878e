/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * async.h - methods whose work may block (FIFREEZE, FITRIM, statvfs,
 * CPU hotplug), answered later: the group's interceptor hands the call
 * to va_async_start, which checks it on the loop thread, runs the work
 * on a thread of its own (jobs.h), and answers from the loop when it
 * ends.  The registry's method of the same name (what introspection
 * describes, and what runs when the interception does not apply: a body
 * that does not parse) runs the same three steps in one go with
 * va_async_inline.
 *
 * An answer for a session that was reset since the call is dropped
 * (serve.h); the work is done all the same.
 */
#ifndef VA_AGENT_ASYNC_H
#define VA_AGENT_ASYNC_H

#include <xmlrpc-c/base.h>

#include "agent.h"
#include "jobs.h"

struct va_async_method {
	const char *name;
	/*
	 * Loop thread: checks params (logging the call) and returns the
	 * job's argument, or NULL with a fault in env.  state is the group's.
	 */
	void *(*prepare)(xmlrpc_env *env, void *state, xmlrpc_value *params);
	/* A thread of its own: the blocking part.  Nothing of the loop's. */
	void (*work)(void *job);
	/* Loop thread: the result, or NULL with a fault in env. */
	xmlrpc_value *(*finish)(xmlrpc_env *env, void *job);
	/* Frees the job (any thread: plain memory only). */
	void (*free)(void *job);
};

/*
 * Takes call (the interceptor's): 1, having answered it now (a fault) or
 * started its work; 0 when its body does not parse (the registry says
 * what is wrong).
 */
int va_async_start(struct va_jobs *jobs, const struct va_async_method *m, void *state,
		   const struct va_call *call);
/*
 * Answers the request (s, epoch, tag) with res, or with env's fault when
 * set (a fault of its own when even that cannot be serialised).  Loop
 * thread.
 */
void va_async_answer(va_session *s, uint64_t epoch, const char *tag, xmlrpc_env *env,
		     xmlrpc_value *res);
/* The registry's method: the three steps in one go, on the loop thread. */
xmlrpc_value *va_async_inline(xmlrpc_env *env, const struct va_async_method *m, void *state,
			      xmlrpc_value *params);

#endif
