/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * core.c - the guest agent's core: struct va_agent, the method groups and
 * their state, the session with the host, the dispatch of its requests,
 * and the services the groups use.  See agent.h.
 */
#include "config.h"
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "acl.h"
#include "agent.h"
#include "buf.h"
#include "link.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "children.h"
#include "filestream.h"
#include "xmlgate.h"

/* How long host.* calls from the agent wait for an answer. */
#define HOST_CALL_TIMEOUT_MS 10000
/* How long va_agent_stop waits for the shutdown notice to be answered. */
#define STOP_GRACE_MS 2000

struct va_group {
	const struct va_method_group *desc;
	void *state;
	struct va_agent *a;
};

struct deferred {
	struct deferred *next, *prev; /* on a's list, oldest first */
	struct va_agent *a;
	va_loop_timer *timer;
	unsigned delay_ms;
	void (*fn)(void *arg);
	void *arg;
};

struct va_agent {
	const struct va_agent_config *cfg; /* the daemon's */
	va_loop *loop;                     /* the daemon's */
	va_channel *ch;                    /* NULL until va_agent_connect */
	va_link *link;
	va_session *s;
	xmlrpc_registry *reg;
	struct va_group *groups;
	size_t ngroups;
	struct deferred *deferred_first, *deferred_last;
	size_t ndeferred;
	va_loop_timer *sweep;
	struct va_children *children;
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	int stopping;
	int notice_pending; /* host.shutdown_notice calls not answered yet */
	va_acl *allow, *block, *enable; /* the RPC lists in force */
	va_agent_gate_fn *gate;         /* va_agent_set_gate */
	void *gate_arg;
};

/* ---- groups ------------------------------------------------------------- */

struct va_agent *
va_group_agent(const struct va_group *g)
{
	return g->a;
}

void *
va_group_state(const struct va_group *g)
{
	return g->state;
}

void *
va_agent_group_state(struct va_agent *a, const struct va_method_group *desc)
{
	for (size_t i = 0; i < a->ngroups; i++)
		if (a->groups[i].desc == desc)
			return a->groups[i].state;
	return NULL;
}

/* ---- services for the method groups ------------------------------------------ */

const struct va_agent_config *
va_agent_config(struct va_agent *a)
{
	return a->cfg;
}

va_loop *
va_agent_loop(struct va_agent *a)
{
	return a->loop;
}

struct va_children *
va_agent_children(struct va_agent *a)
{
	return a->children;
}

uint64_t
va_agent_now_ms(struct va_agent *a)
{
	return a->clock ? a->clock(a->clock_arg) : va_now_ms();
}

/* The group method name belongs to, and whether it is an opt-in method of it. */
static const struct va_method_group *
opt_in_group(struct va_agent *a, const char *name)
{
	for (size_t i = 0; i < a->ngroups; i++) {
		const struct va_method_group *g = a->groups[i].desc;
		for (size_t k = 0; g->opt_in && g->opt_in[k]; k++)
			if (strcmp(g->opt_in[k], name) == 0)
				return g;
	}
	return NULL;
}

/* The allow and block lists alone (the opt-in lists are the caller's). */
static int
listed_enabled(struct va_agent *a, const char *name)
{
	if (va_acl_count(a->allow) && !va_acl_match(a->allow, name))
		return 0;
	if (va_acl_match(a->block, name))
		return 0;
	return 1;
}

int
va_agent_method_enabled(struct va_agent *a, const char *name)
{
	/* qemu-ga's semantics: an allow list enables only what it names,
	 * a block list disables what it names; both may be given.  Opt-in
	 * methods need --enable-rpcs on top. */
	if (opt_in_group(a, name) && !va_acl_match(a->enable, name))
		return 0;
	return listed_enabled(a, name);
}

/*
 * The introspection and multicall methods xmlrpc-c adds to every registry.
 * system.shutdown is left out: the agent sets no shutdown function, so it
 * only ever answers a fault (va.shutdown is the agent's way).
 */
static const char *const system_names[] = {
	"system.listMethods",
	"system.methodExist",
	"system.methodHelp",
	"system.methodSignature",
	"system.multicall",
	"system.capabilities",
	"system.getCapabilities",
};

static void
append_if_enabled(xmlrpc_env *env, xmlrpc_value *arr, struct va_agent *a, const char *name)
{
	if (!va_agent_method_enabled(a, name))
		return;
	xmlrpc_value *s = xmlrpc_string_new(env, name); /* text-ok: a registered method name, ASCII */
	if (env->fault_occurred)
		return;
	xmlrpc_array_append_item(env, arr, s);
	xmlrpc_DECREF(s);
}

xmlrpc_value *
va_agent_methods_enabled(xmlrpc_env *env, struct va_agent *a)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);

	if (env->fault_occurred)
		return NULL;
	for (size_t i = 0; i < a->ngroups && !env->fault_occurred; i++) {
		const struct va_method_group *g = a->groups[i].desc;
		for (size_t k = 0; k < g->nmethods && !env->fault_occurred; k++)
			append_if_enabled(env, arr, a, g->methods[k].methodName);
	}
	for (size_t i = 0; i < sizeof(system_names) / sizeof(system_names[0]) &&
	     !env->fault_occurred; i++)
		append_if_enabled(env, arr, a, system_names[i]);
	if (env->fault_occurred) {
		xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

struct host_call {
	struct va_agent *a;
	char method[64];
	int is_notice;
};

static void
host_call_done(void *opaque, int err, struct va_frame *resp)
{
	struct host_call *hc = opaque;

	if (err)
		va_log_warnx("%s: %s", hc->method, va_session_strerror(err));
	else
		va_log_debug("%s: answered", hc->method);
	if (hc->is_notice)
		hc->a->notice_pending--;
	va_frame_free(resp);
	free(hc);
}

void
va_agent_call_host(struct va_agent *a, const char *method, xmlrpc_value *params)
{
	xmlrpc_env env;
	struct va_buf body = { 0 };
	struct host_call *hc = calloc(1, sizeof(*hc));

	if (!hc)
		return;
	hc->a = a;
	snprintf(hc->method, sizeof(hc->method), "%s", method);
	hc->is_notice = strcmp(method, "host.shutdown_notice") == 0;
	xmlrpc_env_init(&env);
	va_rpc_serialize_call(&env, &body, method, params);
	int r = env.fault_occurred ? -EINVAL
		: va_session_call(a->s, body.data, body.len, HOST_CALL_TIMEOUT_MS,
				  va_now_ms(), host_call_done, hc);
	if (r < 0) {
		va_log_warnx("%s: not sent: %s", method,
			     env.fault_occurred ? env.fault_string : strerror(-r));
		free(hc);
	} else if (hc->is_notice) {
		a->notice_pending++;
	}
	va_buf_free(&body);
	xmlrpc_env_clean(&env);
}

void
va_agent_call_hostf(struct va_agent *a, const char *method, const char *fmt, ...)
{
	xmlrpc_env env;
	xmlrpc_value *params = NULL;
	const char *tail = NULL;
	va_list ap;

	xmlrpc_env_init(&env);
	va_start(ap, fmt);
	xmlrpc_build_value_va(&env, fmt, ap, &params, &tail);
	va_end(ap);
	if (!env.fault_occurred) {
		va_agent_call_host(a, method, params);
		xmlrpc_DECREF(params);
	} else {
		va_log_errx("%s not sent: %s", method, env.fault_string);
	}
	xmlrpc_env_clean(&env);
}

/* ---- deferred functions ------------------------------------------------------ */

static void
deferred_free(struct deferred *d)
{
	struct va_agent *a = d->a;

	if (d->prev)
		d->prev->next = d->next;
	else
		a->deferred_first = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		a->deferred_last = d->prev;
	a->ndeferred--;
	va_loop_timer_free(d->timer);
	free(d);
}

static void
deferred_run(void *opaque)
{
	struct deferred *d = opaque;
	void (*fn)(void *) = d->fn;
	void *arg = d->arg;

	deferred_free(d);
	fn(arg);
}

int
va_agent_defer(struct va_agent *a, unsigned delay_ms, void (*fn)(void *arg), void *arg)
{
	if (a->ndeferred >= VA_AGENT_MAX_DEFERRED)
		return -1;
	/* A timer of the loop: what fn defers in turn, even with delay 0,
	 * runs in a later pass, after the loop polled for I/O (loop.h). */
	struct deferred *d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	d->timer = va_loop_timer_new(a->loop, deferred_run, d);
	if (!d->timer) {
		free(d);
		return -1;
	}
	d->a = a;
	d->delay_ms = delay_ms;
	d->fn = fn;
	d->arg = arg;
	d->prev = a->deferred_last;
	if (d->prev)
		d->prev->next = d;
	else
		a->deferred_first = d;
	a->deferred_last = d;
	a->ndeferred++;
	va_loop_timer_in(d->timer, delay_ms);
	return 0;
}

size_t
va_agent_deferred(struct va_agent *a)
{
	return a->ndeferred;
}

int
va_agent_run_deferred(struct va_agent *a, unsigned *delay_ms)
{
	struct deferred *d = a->deferred_first;

	if (!d)
		return -1;
	*delay_ms = d->delay_ms;
	deferred_run(d);
	return 0;
}

/* ---- sweeps -------------------------------------------------------------------- */

uint64_t
va_agent_sweep(struct va_agent *a)
{
	uint64_t now = va_agent_now_ms(a), next = UINT64_MAX;

	for (size_t i = 0; i < a->ngroups; i++) {
		const struct va_group *g = &a->groups[i];
		if (g->desc->sweep) {
			uint64_t t = g->desc->sweep(g->state, now);
			if (t < next)
				next = t;
		}
	}
	return next;
}

static void
sweep_due(void *opaque)
{
	struct va_agent *a = opaque;
	uint64_t next = va_agent_sweep(a);

	if (next != UINT64_MAX)
		va_loop_timer_at(a->sweep, next);
}

void
va_agent_set_gate(struct va_agent *a, va_agent_gate_fn *fn, void *arg)
{
	a->gate = fn;
	a->gate_arg = arg;
}

void
va_agent_sweep_at(struct va_agent *a, uint64_t due_ms)
{
	if (due_ms < va_loop_timer_due(a->sweep))
		va_loop_timer_at(a->sweep, due_ms);
}

/* ---- refusals and the registry ----------------------------------------------------- */

/*
 * The one decision on a method name: 1 (logged, fault in env) when the
 * call is refused, else 0.
 */
static int
refuse(struct va_agent *a, const char *name, xmlrpc_env *env)
{
	/*
	 * system.multicall would let one small request make the agent build
	 * any number of large results (40 reads of 8 MiB in 5 KiB) before
	 * the frame limit refuses the whole: make the calls one by one.
	 */
	if (strcmp(name, "system.multicall") == 0) {
		va_log_warnx("system.multicall refused");
		va_fault(env, XMLRPC_NO_SUCH_METHOD_ERROR,
					       "system.multicall is not available: make the calls "
					       "one by one");
		return 1;
	}
	const struct va_method_group *og = opt_in_group(a, name);
	if (og && !va_acl_match(a->enable, name)) {
		va_log_warnx("%s: refused, an opt-in method not enabled", name);
		if (og->opt_in_how)
			va_fault(env, XMLRPC_NO_SUCH_METHOD_ERROR,
						       "method %s is off on this guest: it changes "
						       "the guest and is enabled by %s", name,
						       og->opt_in_how);
		else
			va_fault(env, XMLRPC_NO_SUCH_METHOD_ERROR,
						       "method %s is off on this guest: it changes "
						       "the guest and is enabled by --enable-rpcs %s "
						       "(enable-rpcs = %s in va-agent.conf)", name, name,
						       name);
		return 1;
	}
	/* va_agent_method_enabled without looking for og again: an opt-in
	 * method that got here is enabled. */
	if (!listed_enabled(a, name)) {
		va_log_warnx("%s: refused, disabled by the RPC lists", name);
		va_fault(env, XMLRPC_NO_SUCH_METHOD_ERROR,
					       "method %s is disabled on this guest", name);
		return 1;
	}
	/* The gate (frozen filesystems, agent.h) last: a disabled method
	 * says so whatever the gate would. */
	if (a->gate && a->gate(a->gate_arg, name, env)) {
		va_log_warnx("%s: refused by the gate: %s", name, env->fault_string);
		return 1;
	}
	return 0;
}

/* acl.h's known(): a method of a group, or one of xmlrpc-c's system.*. */
static int
known_method(const char *name, int prefix, void *opaque)
{
	struct va_agent *a = opaque;
	size_t n = strlen(name);

	for (size_t i = 0; i < a->ngroups; i++) {
		const struct va_method_group *g = a->groups[i].desc;
		for (size_t k = 0; k < g->nmethods; k++) {
			const char *m = g->methods[k].methodName;
			if (prefix ? strncmp(m, name, n) == 0 : strcmp(m, name) == 0)
				return 1;
		}
	}
	for (size_t i = 0; i < sizeof(system_names) / sizeof(system_names[0]); i++)
		if (prefix ? strncmp(system_names[i], name, n) == 0
			   : strcmp(system_names[i], name) == 0)
			return 1;
	return 0;
}

int
va_agent_set_lists(struct va_agent *a, const struct va_agent_config *cfg, char *err,
		   size_t errlen)
{
	static const char *const what[] = { "--allow-rpcs", "--block-rpcs", "--enable-rpcs" };
	const char *lists[] = { cfg->allow_rpcs, cfg->block_rpcs, cfg->enable_rpcs };
	va_acl *acl[3] = { NULL, NULL, NULL };
	char why[256];

	for (int i = 0; i < 3; i++) {
		acl[i] = va_acl_parse(lists[i], known_method, a, why, sizeof(why));
		if (!acl[i]) {
			snprintf(err, errlen, "%s: %s", what[i], why);
			for (int k = 0; k < i; k++)
				va_acl_free(acl[k]);
			return -1;
		}
	}
	va_acl_free(a->allow);
	va_acl_free(a->block);
	va_acl_free(a->enable);
	a->allow = acl[0];
	a->block = acl[1];
	a->enable = acl[2];
	char d[3][512];
	for (int i = 0; i < 3; i++)
		va_acl_describe(acl[i], d[i], sizeof(d[i]));
	if (va_acl_count(acl[0]) + va_acl_count(acl[1]) + va_acl_count(acl[2]) > 0)
		va_log_info("RPC lists: allow %s; block %s; opt-in methods enabled %s",
		    va_acl_count(acl[0]) ? d[0] : "(every method)",
		    va_acl_count(acl[1]) ? d[1] : "(none)",
		    va_acl_count(acl[2]) ? d[2] : "(none)");
	return 0;
}

/*
 * xmlrpc-c runs this before every method of the registry, also each one
 * inside system.multicall: nothing the registry runs escapes the lists,
 * whoever hands it a call.
 */
static void
preinvoke(xmlrpc_env *env, const char *name, xmlrpc_value *params, void *opaque)
{
	(void)params;
	refuse(opaque, name, env);
}

xmlrpc_registry *
va_agent_registry_build(xmlrpc_env *env, struct va_agent *a)
{
	xmlrpc_registry *r = xmlrpc_registry_new(env);

	if (env->fault_occurred)
		return NULL;
	xmlrpc_registry_set_preinvoke_method(env, r, preinvoke, a);
	for (size_t i = 0; i < a->ngroups && !env->fault_occurred; i++) {
		const struct va_method_group *g = a->groups[i].desc;
		for (size_t k = 0; k < g->nmethods && !env->fault_occurred; k++) {
			struct xmlrpc_method_info3 mi = g->methods[k];
			mi.serverInfo = &a->groups[i];
			xmlrpc_registry_add_method3(env, r, &mi);
		}
	}
	if (env->fault_occurred) {
		xmlrpc_registry_free(r);
		return NULL;
	}
	return r;
}

xmlrpc_registry *
va_agent_registry(struct va_agent *a)
{
	return a->reg;
}

va_session *
va_agent_session(struct va_agent *a)
{
	return a->s;
}

void
va_agent_set_clock(struct va_agent *a, uint64_t (*now)(void *arg), void *arg)
{
	a->clock = now;
	a->clock_arg = arg;
}

/* ---- the session ---------------------------------------------------------------- */

/*
 * A group's method of that name, as the registry has it (its serverInfo
 * is the group, *g); NULL for a name of no group (xmlrpc-c's system.*).
 */
static const struct xmlrpc_method_info3 *
find_method(struct va_agent *a, const char *name, const struct va_group **g)
{
	for (size_t i = 0; i < a->ngroups; i++) {
		const struct va_method_group *d = a->groups[i].desc;
		for (size_t k = 0; k < d->nmethods; k++) {
			if (strcmp(d->methods[k].methodName, name) == 0) {
				*g = &a->groups[i];
				return &d->methods[k];
			}
		}
	}
	return NULL;
}

void
va_agent_reply_error(va_session *s, uint64_t epoch, const char *tag, const char *kind,
		     const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	va_log_warnx("request %s: %s: %s", tag, kind, msg);
	const struct va_param p = { VA_FS_ERROR, kind };
	const struct va_msg m = {
		.content_type = VA_FS_CONTENT_ERROR, .params = &p, .nparams = 1,
		.body = msg, .len = (size_t)n,
	};
	int r = va_session_reply_msg(s, epoch, tag, &m);
	if (r < 0 && r != -ESTALE)
		va_log_warnx("request %s: the error was not sent: %s", tag, strerror(-r));
}

/*
 * A binary request: its operation, found in the groups' tables, runs when
 * the RPC lists allow every method it stands for (see agent.h).
 */
static void
on_binary(struct va_agent *a, va_session *s, uint64_t epoch, const char *tag,
	  struct va_frame *req)
{
	const char *op = va_session_param(req, VA_FS_OP);

	for (size_t i = 0; op && i < a->ngroups; i++) {
		const struct va_group *g = &a->groups[i];
		for (size_t k = 0; k < g->desc->nbinary_ops; k++) {
			const struct va_binary_op *bo = &g->desc->binary_ops[k];
			if (strcmp(bo->op, op) != 0)
				continue;
			for (size_t m = 0; bo->methods && bo->methods[m]; m++) {
				xmlrpc_env env;
				xmlrpc_env_init(&env);
				int refused = refuse(a, bo->methods[m], &env);
				if (refused)
					va_agent_reply_error(s, epoch, tag, VA_FS_E_DISABLED, "%s",
							     env.fault_string);
				xmlrpc_env_clean(&env);
				if (refused) {
					va_frame_free(req);
					return;
				}
			}
			const struct va_binary_call call = {
				.op = bo->op, .req = req, .s = s, .epoch = epoch, .tag = tag,
			};
			bo->handler(g->state, &call);
			return;
		}
	}
	va_agent_reply_error(s, epoch, tag, VA_FS_E_BAD_REQUEST,
			     op ? "unknown binary operation \"%.64s\"" : "%s",
			     op ? op : "a binary request without the parameter \"op\"");
	va_frame_free(req);
}

static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
	   struct va_frame *req)
{
	struct va_agent *a = opaque;
	char name[VA_RPC_MAX_METHOD_NAME + 1] = "";

	if (va_session_is_binary(req)) {
		on_binary(a, s, epoch, tag, req);
		return;
	}
	va_log_debug("request %s (%zu bytes)", tag, req->body_len);
	const char *why;
	if (va_xml_gate_check(req->body, req->body_len, &why) < 0) {
		va_log_warnx("request %s: %s", tag, why);
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_PARSE_ERROR, why);
		va_frame_free(req);
		return;
	}
	/* A body whose name cannot be read this way goes to the registry,
	 * whose parser says what is wrong (and whose preinvoke refuses). */
	if (va_rpc_method_name(req->body, req->body_len, name) == 0) {
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		if (refuse(a, name, &env)) {
			va_rpc_reply_fault(s, epoch, tag, env.fault_code, env.fault_string);
			xmlrpc_env_clean(&env);
			va_frame_free(req);
			return;
		}
		xmlrpc_env_clean(&env);
		const struct va_call call = {
			.method = name, .body = req->body, .len = req->body_len,
			.s = s, .epoch = epoch, .tag = tag,
		};
		for (size_t i = 0; i < a->ngroups; i++) {
			const struct va_group *g = &a->groups[i];
			if (g->desc->intercept && g->desc->intercept(g->state, &call)) {
				va_frame_free(req);
				return;
			}
		}
	}
	const struct va_group *g = NULL;
	const struct xmlrpc_method_info3 *mi = name[0] ? find_method(a, name, &g) : NULL;
	if (mi)
		va_rpc_serve_method(s, epoch, tag, req, a->reg, mi, (void *)g, NULL);
	else
		va_rpc_serve(s, epoch, tag, req, a->reg, NULL);
}

static void
send_hello(struct va_agent *a)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *methods = va_agent_methods_enabled(&env, a);
	if (methods) {
		va_agent_call_hostf(a, "host.hello", "({s:s,s:i,s:V,s:i})",
			"version", PACKAGE_VERSION, "protocol", VA_AGENT_PROTOCOL,
			"methods", methods, "max_frame", (int)a->cfg->max_frame);
		xmlrpc_DECREF(methods);
	} else {
		va_log_errx("host.hello not sent: %s", env.fault_string);
	}
	xmlrpc_env_clean(&env);
}

static void
on_established(void *opaque, va_session *s)
{
	struct va_agent *a = opaque;
	va_log_info("session %s with the host established", va_session_id(s));
	if (!a->stopping)
		send_hello(a);
}

static void
on_reset(void *opaque, va_session *s, int by_peer)
{
	(void)opaque;
	(void)s;
	va_log_info("session reset (%s)", by_peer ? "by the host" : "by the agent");
}

static const struct va_session_ops session_ops = {
	.request = on_request,
	.established = on_established,
	.reset = on_reset,
};

/* ---- life ------------------------------------------------------------------------ */

struct va_agent *
va_agent_new(va_loop *loop, const struct va_agent_config *cfg,
	     const struct va_method_group *const *groups, size_t ngroups,
	     char *err, size_t errlen)
{
	struct va_agent *a = calloc(1, sizeof(*a));

	snprintf(err, errlen, "out of memory");
	if (!a)
		return NULL;
	a->cfg = cfg;
	a->loop = loop;
	a->groups = calloc(ngroups ? ngroups : 1, sizeof(*a->groups));
	a->children = va_children_new();
	a->sweep = va_loop_timer_new(loop, sweep_due, a);
	if (!a->groups || !a->children || !a->sweep)
		goto fail;
	for (size_t i = 0; i < ngroups; i++) {
		struct va_group *g = &a->groups[i];
		g->desc = groups[i];
		g->a = a;
		if (g->desc->init && g->desc->init(a, &g->state) < 0) {
			snprintf(err, errlen, "method group %s: cannot start", g->desc->name);
			goto fail;
		}
		a->ngroups = i + 1;
	}
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	a->reg = va_agent_registry_build(&env, a);
	if (!a->reg)
		snprintf(err, errlen, "registry: %s", env.fault_string);
	xmlrpc_env_clean(&env);
	if (!a->reg)
		goto fail;
	if (va_agent_set_lists(a, cfg, err, errlen) < 0)
		goto fail;
	struct va_session_config scfg = { .name = "host", .max_frame = cfg->max_frame };
	a->s = va_session_new(&scfg, &session_ops, a);
	if (!a->s) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return a;
fail:
	va_agent_free(a);
	return NULL;
}

int
va_agent_connect(struct va_agent *a, va_channel *ch)
{
	a->ch = ch;
	a->link = va_link_new(a->loop, ch, a->s);
	return a->link ? 0 : -1;
}

void
va_agent_stop(struct va_agent *a)
{
	a->stopping = 1;
	va_log_info("SIGTERM: stopping");
	if (va_session_is_ready(a->s))
		va_agent_call_hostf(a, "host.shutdown_notice", "(ss)", "stop",
				    "the agent was stopped (SIGTERM)");
	/* Wait (bounded) for the notice's answer and for queued output. */
	uint64_t end = va_now_ms() + STOP_GRACE_MS;
	while (a->ch && va_now_ms() < end &&
	       (a->notice_pending > 0 || va_session_output_pending(a->s) > 0) &&
	       va_channel_state(a->ch) == VA_CHANNEL_UP)
		va_loop_run_once(a->loop, 50);
}

void
va_agent_free(struct va_agent *a)
{
	if (!a)
		return;
	va_link_free(a->link);
	va_session_free(a->s);
	va_channel_free(a->ch);
	while (a->deferred_first)
		deferred_free(a->deferred_first);
	for (size_t i = 0; i < a->ngroups; i++)
		if (a->groups[i].desc->cleanup)
			a->groups[i].desc->cleanup(a->groups[i].state);
	va_loop_timer_free(a->sweep);
	va_children_free(a->children);
	if (a->reg)
		xmlrpc_registry_free(a->reg);
	va_acl_free(a->allow);
	va_acl_free(a->block);
	va_acl_free(a->enable);
	free(a->groups);
	free(a);
}
