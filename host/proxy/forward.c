/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * forward.c - what va-proxy does with a call from a host script (see
 * forward.h).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "buf.h"
#include "events.h"
#include "contract.h"
#include "forward.h"
#include "guest.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "proxycalls.h"
#include "rpc.h"
#include "xmlgate.h"

/* Largest system.methodHelp/Signature call parsed here to route it. */
#define ASK_MAX 4096

struct local_job;

struct va_forward {
	struct va_proxy *px;
	/* The worker threads that run proxy.* calls (see va_forward_handle). */
	pthread_mutex_t local_lock;
	pthread_cond_t local_cond;     /* local_running went down */
	unsigned local_running;
	struct local_job *jobs;        /* the jobs running, for va_forward_cancel */
	pthread_rwlock_t block_lock;
	va_acl *block;                 /* --block-rpcs (common/acl.h); NULL: none */
};

struct va_forward *
va_forward_new(struct va_proxy *px)
{
	struct va_forward *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->px = px;
	pthread_mutex_init(&f->local_lock, NULL);
	pthread_cond_init(&f->local_cond, NULL);
	pthread_rwlock_init(&f->block_lock, NULL);
	return f;
}

void
va_forward_free(struct va_forward *f)
{
	if (!f)
		return;
	va_acl_free(f->block);
	pthread_rwlock_destroy(&f->block_lock);
	pthread_cond_destroy(&f->local_cond);
	pthread_mutex_destroy(&f->local_lock);
	free(f);
}

/*
 * acl.h's known(): the proxy cannot know the guests' methods (agents of
 * other versions serve others), so a name must be in a namespace it
 * serves or forwards: va.* (the guests'), proxy.* and system.*.
 */
static int
known_namespace(const char *name, int prefix, void *opaque)
{
	static const char *const ns[] = { "va.", "proxy.", "system." };

	(void)prefix;
	(void)opaque;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		if (strncmp(name, ns[i], strlen(ns[i])) == 0)
			return 1;
	return 0;
}

int
va_forward_set_block_list(struct va_forward *f, const char *list, char *err, size_t errlen)
{
	char why[256];
	va_acl *acl = va_acl_parse(list, known_namespace, NULL, why, sizeof(why));

	if (!acl) {
		snprintf(err, errlen, "--block-rpcs: %s", why);
		return -1;
	}
	if (va_acl_count(acl)) {
		char d[512];
		va_acl_describe(acl, d, sizeof(d));
		va_log_info("RPC list: blocked by the proxy: %s", d);
	}
	pthread_rwlock_wrlock(&f->block_lock);
	va_acl_free(f->block);
	f->block = acl;
	pthread_rwlock_unlock(&f->block_lock);
	return 0;
}

int
va_forward_blocked(struct va_forward *f, const char *method)
{
	pthread_rwlock_rdlock(&f->block_lock);
	int hit = va_acl_match(f->block, method);
	pthread_rwlock_unlock(&f->block_lock);
	return hit;
}

/* ---- replies ---- */

static void
reply_text(struct va_reply *out, int status, const char *msg)
{
	size_t n = strlen(msg);

	out->status = status;
	out->content_type = "text/plain; charset=utf-8";
	out->body = malloc(n + 2);
	if (!out->body) {
		out->len = 0;
		return;
	}
	memcpy(out->body, msg, n);
	out->body[n] = '\n';
	out->body[n + 1] = '\0';
	out->len = n + 1;
}

static void
reply_xml(struct va_reply *out, struct va_buf *b)
{
	out->status = 200;
	out->content_type = "text/xml";
	out->body = va_buf_steal(b, &out->len);
	if (!out->body)
		reply_text(out, 500, "out of memory");
}

static void
reply_fault(struct va_reply *out, int code, const char *msg)
{
	struct va_buf b = { 0 };

	if (va_rpc_serialize_fault(&b, code, msg) < 0) {
		va_buf_free(&b);
		reply_text(out, 500, "out of memory");
		return;
	}
	reply_xml(out, &b);
}

static void
reply_value(struct va_reply *out, xmlrpc_env *env, xmlrpc_value *v)
{
	struct va_buf b = { 0 };

	if (!env->fault_occurred)
		va_rpc_serialize_response(env, &b, v);
	if (env->fault_occurred) {
		va_buf_free(&b);
		reply_fault(out, env->fault_code, env->fault_string);
		return;
	}
	reply_xml(out, &b);
}

/* ---- local methods ---- */

static int
in_array(xmlrpc_env *env, xmlrpc_value *arr, const char *name)
{
	int n = xmlrpc_array_size(env, arr);
	for (int i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *item = NULL;
		const char *s = NULL;
		xmlrpc_array_read_item(env, arr, i, &item);
		if (!env->fault_occurred)
			xmlrpc_read_string(env, item, &s);
		int same = s && !strcmp(s, name);
		if (s)
			free((void *)s);
		if (item)
			xmlrpc_DECREF(item);
		if (same)
			return 1;
	}
	return 0;
}

static void
add_name(struct va_forward *f, xmlrpc_env *env, xmlrpc_value *arr, const char *name)
{
	/* system.multicall is refused (see va_forward_handle): do not offer it. */
	if (env->fault_occurred || va_forward_blocked(f, name) ||
	    !strcmp(name, "system.multicall") || in_array(env, arr, name))
		return;
	xmlrpc_value *s = xmlrpc_string_new(env, name);
	if (!env->fault_occurred) {
		xmlrpc_array_append_item(env, arr, s);
		xmlrpc_DECREF(s);
	}
}

/* system.listMethods: the proxy's methods, then the guest's. */
static void
list_methods(struct va_forward *f, struct va_guest *g, struct va_reply *out)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *arr = xmlrpc_array_new(&env);
	for (size_t i = 0; va_proxycalls_names[i]; i++)
		add_name(f, &env, arr, va_proxycalls_names[i]);
	xmlrpc_value *gm = env.fault_occurred ? NULL : va_guest_methods(&env, g);
	int n = gm ? xmlrpc_array_size(&env, gm) : 0;
	for (int i = 0; i < n && !env.fault_occurred; i++) {
		xmlrpc_value *item = NULL;
		const char *s = NULL;
		xmlrpc_array_read_item(&env, gm, i, &item);
		if (!env.fault_occurred)
			xmlrpc_read_string(&env, item, &s);
		if (!env.fault_occurred)
			add_name(f, &env, arr, s);
		if (s)
			free((void *)s);
		if (item)
			xmlrpc_DECREF(item);
	}
	reply_value(out, &env, arr);
	if (gm)
		xmlrpc_DECREF(gm);
	if (arr)
		xmlrpc_DECREF(arr);
	xmlrpc_env_clean(&env);
}

/* system.methodHelp/Signature: about a proxy method (1) or a guest's (0)? */
static int
asks_about_proxy(const uint8_t *body, size_t len)
{
	xmlrpc_env env;
	char *name = NULL;
	const char *about = NULL;
	xmlrpc_value *params = NULL, *p0 = NULL;
	int local = 1; /* malformed calls get the registry's own fault */

	/* Runs on the loop thread: a real methodHelp call is small, and a
	 * large one is the agent's to parse, not this thread's. */
	if (len > ASK_MAX)
		return 0;
	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, body, len, &name, &params);
	if (!env.fault_occurred && xmlrpc_array_size(&env, params) == 1) {
		xmlrpc_array_read_item(&env, params, 0, &p0);
		if (!env.fault_occurred && xmlrpc_value_type(p0) == XMLRPC_TYPE_STRING)
			xmlrpc_read_string(&env, p0, &about);
		if (about)
			local = !strncmp(about, "proxy.", 6);
	}
	if (about)
		free((void *)about);
	if (p0)
		xmlrpc_DECREF(p0);
	if (params)
		xmlrpc_DECREF(params);
	free(name);
	xmlrpc_env_clean(&env);
	return local;
}

static void
run_local(struct va_forward *f, struct va_guest *g, const uint8_t *body, size_t len,
	  const int *cancel, struct va_reply *out)
{
	struct va_proxy_call info = { f->px, g, cancel };
	xmlrpc_env env;
	struct va_buf b = { 0 };

	xmlrpc_env_init(&env);
	va_rpc_process(&env, f->px->proxy_reg, body, len, &info, &b);
	if (env.fault_occurred) {
		va_buf_free(&b);
		reply_text(out, 500, "out of memory");
	} else {
		reply_xml(out, &b);
	}
	xmlrpc_env_clean(&env);
}

/* ---- proxy.* calls, on threads of their own ---- */

struct local_job {
	struct va_forward *f;
	struct va_guest *g;         /* a reference of the job's */
	uint8_t *body;
	size_t len;
	va_reply_fn *done;
	void *ctx;
	struct va_reply rep;
	int cancel;                 /* see va_events_cancel */
	struct local_job *next;     /* on f->jobs, under local_lock, while it runs */
};

/* Back on the loop thread. */
static void
local_finish(void *arg)
{
	struct local_job *j = arg;

	j->done(j->ctx, &j->rep);
	free(j);
}

static void *
local_main(void *arg)
{
	struct local_job *j = arg;
	struct va_forward *f = j->f;

	pthread_setname_np(pthread_self(), "va-proxycall");

	run_local(f, j->g, j->body, j->len, &j->cancel, &j->rep);
	free(j->body);
	j->body = NULL;
	va_guest_unref(j->g);
	j->g = NULL;
	if (!j->rep.body)
		reply_text(&j->rep, 500, "out of memory");
	pthread_mutex_lock(&f->local_lock);
	for (struct local_job **pp = &f->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	pthread_mutex_unlock(&f->local_lock);
	va_proxy_post(f->px, local_finish, j); /* j is the loop's from here on */
	pthread_mutex_lock(&f->local_lock);
	f->local_running--;
	pthread_cond_broadcast(&f->local_cond);
	pthread_mutex_unlock(&f->local_lock);
	return NULL;
}

/*
 * proxy.* methods may wait (proxy.events is a long poll), so they run on
 * a thread each, never on the loop thread that serves every guest and
 * client.
 */
static void
run_local_async(struct va_forward *f, struct va_guest *g, uint8_t *body, size_t len,
		va_reply_fn *done, void *ctx)
{
	struct local_job *j = calloc(1, sizeof(*j));
	struct va_reply rep = { 0 };
	pthread_attr_t attr;
	pthread_t t;

	pthread_mutex_lock(&f->local_lock);
	int full = f->local_running >= VA_FORWARD_MAX_LOCAL;
	if (!full && j)
		f->local_running++;
	pthread_mutex_unlock(&f->local_lock);
	if (!j || full) {
		free(j);
		free(body);
		reply_fault(&rep, full ? VA_PROXY_FAULT_BUSY : VA_PROXY_FAULT_INTERNAL,
			    full ? "too many proxy.* calls at once (at most 64): try again later"
				 : "out of memory");
		done(ctx, &rep);
		return;
	}
	va_guest_ref(g);
	*j = (struct local_job){ .f = f, .g = g, .body = body, .len = len, .done = done,
				 .ctx = ctx };
	pthread_mutex_lock(&f->local_lock);
	j->next = f->jobs;
	f->jobs = j;
	pthread_mutex_unlock(&f->local_lock);
	int r = pthread_attr_init(&attr);
	if (!r)
		r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!r)
		r = pthread_create(&t, &attr, local_main, j);
	pthread_attr_destroy(&attr);
	if (r) {
		pthread_mutex_lock(&f->local_lock);
		f->local_running--;
		f->jobs = j->next; /* nothing was pushed since: the loop thread pushes */
		pthread_mutex_unlock(&f->local_lock);
		va_guest_unref(g);
		free(j);
		free(body);
		va_log_errx("cannot start a thread for a proxy.* call: %s", strerror(r));
		reply_fault(&rep, VA_PROXY_FAULT_INTERNAL, "the proxy cannot start a thread now");
		done(ctx, &rep);
	}
}

void
va_forward_cancel(struct va_forward *f, void *ctx)
{
	pthread_mutex_lock(&f->local_lock);
	for (struct local_job *j = f->jobs; j; j = j->next) {
		if (j->ctx == ctx) {
			/* Only proxy.events waits; the others end soon anyway. */
			va_events_cancel(f->px->events, &j->cancel);
			break;
		}
	}
	pthread_mutex_unlock(&f->local_lock);
}

int
va_forward_wait_local(struct va_forward *f, unsigned timeout_ms)
{
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->local_lock);
	while (f->local_running > 0 && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&f->local_cond, &f->local_lock, &deadline);
	r = f->local_running > 0 ? -1 : 0;
	pthread_mutex_unlock(&f->local_lock);
	return r;
}

/* ---- forwarded calls ---- */

struct fwd_ctx {
	va_reply_fn *done;
	void *ctx;
};

static void
forwarded(void *opaque, struct va_call_result *res)
{
	struct fwd_ctx *fc = opaque;
	struct va_reply rep = { 0 };

	if (res->fault) {
		reply_fault(&rep, res->fault, res->msg);
	} else {
		rep.status = 200;
		rep.content_type = "text/xml";
		rep.body = res->body;
		rep.len = res->len;
		res->body = NULL;
	}
	fc->done(fc->ctx, &rep);
	free(fc);
}

/* ---- the entry point ---- */

static void
finish(va_reply_fn *done, void *ctx, struct va_reply *rep)
{
	if (!rep->body)
		reply_text(rep, 500, "out of memory");
	done(ctx, rep);
}

void
va_forward_handle(struct va_forward *f, struct va_guest *g, uint8_t *body, size_t len,
		  va_reply_fn *done, void *ctx)
{
	char name[VA_RPC_MAX_METHOD_NAME + 1];
	char msg[VA_RPC_MAX_METHOD_NAME + 128];
	struct va_reply rep = { 0 };
	const char *why;

	if (memchr(body, 0xFF, len)) {
		reply_text(&rep, 400, "the body contains the byte 0xFF: an XML-RPC body is UTF-8 text");
		goto answer;
	}
	if (va_xml_gate_check(body, len, &why) < 0) {
		va_log_warnx("%s: call refused: %s", va_guest_name(g), why);
		reply_fault(&rep, XMLRPC_PARSE_ERROR, why);
		goto answer;
	}
	if (va_rpc_method_name(body, len, name) < 0) {
		reply_text(&rep, 400, "the body is not an XML-RPC methodCall with a valid methodName");
		goto answer;
	}
	if (va_forward_blocked(f, name)) {
		snprintf(msg, sizeof(msg), "method %s is blocked by the proxy (--block-rpcs)", name);
		va_log_info("%s: %s refused: blocked", va_guest_name(g), name);
		reply_fault(&rep, VA_PROXY_FAULT_BLOCKED, msg);
		goto answer;
	}
	if (!strcmp(name, "system.multicall")) {
		reply_fault(&rep, VA_PROXY_FAULT_BLOCKED,
			    "system.multicall is not available through the proxy: make the calls "
			    "one by one");
		goto answer;
	}
	if (!strcmp(name, "system.listMethods")) {
		list_methods(f, g, &rep);
		goto answer;
	}
	int local = !strncmp(name, "proxy.", 6);
	if (!strcmp(name, "system.methodHelp") || !strcmp(name, "system.methodSignature"))
		local = asks_about_proxy(body, len);
	if (local) {
		va_log_debug("%s: %s (proxy)", va_guest_name(g), name);
		run_local_async(f, g, body, len, done, ctx);
		return;
	}

	struct fwd_ctx *fc = malloc(sizeof(*fc));
	if (!fc) {
		reply_text(&rep, 500, "out of memory");
		goto answer;
	}
	fc->done = done;
	fc->ctx = ctx;
	/* The session copies the body into its frame before this returns. */
	va_guest_forward(g, name, body, len, forwarded, fc);
	free(body);
	return;
answer:
	free(body);
	finish(done, ctx, &rep);
}
