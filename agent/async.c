/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * async.c - methods answered when their work on a thread ends (async.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"
#include "buf.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "text.h"
#include "xmlgate.h"

struct call {
	const struct va_async_method *m;
	void *job;
	va_session *s;
	uint64_t epoch;
	char *tag;
};

void
va_async_answer(va_session *s, uint64_t epoch, const char *tag, xmlrpc_env *env, xmlrpc_value *res)
{
	struct va_buf out = { 0 };

	if (!env->fault_occurred)
		va_rpc_serialize_response(env, &out, res);
	if (env->fault_occurred) {
		out.len = 0;
		if (va_rpc_serialize_fault(&out, env->fault_code, env->fault_string) < 0) {
			va_log_warnx("request %s: out of memory, no reply", tag);
			va_buf_free(&out);
			return;
		}
	}
	va_rpc_reply(s, epoch, tag, out.data, out.len);
	va_buf_free(&out);
}

static void
call_free(void *opaque)
{
	struct call *c = opaque;

	c->m->free(c->job);
	free(c->tag);
	free(c);
}

static void
call_work(void *opaque)
{
	struct call *c = opaque;
	c->m->work(c->job);
}

static void
call_done(void *opaque)
{
	struct call *c = opaque;
	xmlrpc_env env;

	xmlrpc_env_init(&env);
	xmlrpc_value *res = c->m->finish(&env, c->job);
	va_async_answer(c->s, c->epoch, c->tag, &env, res);
	if (res)
		xmlrpc_DECREF(res);
	xmlrpc_env_clean(&env);
	call_free(c);
}

int
va_async_start(struct va_jobs *jobs, const struct va_async_method *m, void *state,
	       const struct va_call *call)
{
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL;

	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, call->body, call->len, &name, &params);
	free(name);
	if (env.fault_occurred) {
		xmlrpc_env_clean(&env);
		return 0;
	}
	void *job = m->prepare(&env, state, params);
	xmlrpc_DECREF(params);
	struct call *c = job ? calloc(1, sizeof(*c)) : NULL;
	if (c)
		c->tag = strdup(call->tag);
	if (job && (!c || !c->tag)) {
		va_fault(&env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", m->name);
	} else if (job) {
		c->m = m;
		c->job = job;
		c->s = call->s;
		c->epoch = call->epoch;
		int r = va_jobs_run(jobs, call_work, call_done, call_free, c);
		if (r == 0) {
			xmlrpc_env_clean(&env);
			return 1;
		}
		if (r == -EBUSY)
			va_fault(&env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "%s: busy: the agent runs as many blocking jobs as it may at once; "
			    "try again when one has finished", m->name);
		else
			va_fault(&env, XMLRPC_INTERNAL_ERROR,
			    "%s: cannot start a thread: %s", m->name, strerror(-r));
	}
	va_async_answer(call->s, call->epoch, call->tag, &env, NULL);
	if (c) {
		free(c->tag);
		free(c);
	}
	if (job)
		m->free(job);
	xmlrpc_env_clean(&env);
	return 1;
}

xmlrpc_value *
va_async_inline(xmlrpc_env *env, const struct va_async_method *m, void *state,
		xmlrpc_value *params)
{
	void *job = m->prepare(env, state, params);
	if (!job)
		return NULL;
	m->work(job);
	xmlrpc_value *res = m->finish(env, job);
	m->free(job);
	return res;
}
