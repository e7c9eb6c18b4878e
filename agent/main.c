/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * va-agent: the virtagent guest agent.  Lifecycle (options, config,
 * daemonizing, signals), the event loop, and the glue between the
 * session with the host and the xmlrpc-c registry of va.* methods.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "agent.h"
#include "channel.h"
#include "control.h"
#include "daemon.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "options.h"
#include "rpc.h"
#include "serve.h"
#include "xmlgate.h"
#include "session.h"

/* How long host.* calls from the agent wait for an answer. */
#define HOST_CALL_TIMEOUT_MS 10000
/* How long SIGTERM waits for the shutdown notice to be answered. */
#define STOP_GRACE_MS 2000

struct deferred {
	struct deferred *next, **prev; /* on a->deferred, to free at exit */
	va_loop_timer *timer;
	void (*fn)(void *arg);
	void *arg;
};

struct va_agent {
	struct va_agent_config cfg;
	int argc;
	char **argv;
	va_loop *loop;
	va_channel *ch;
	va_session *s;
	va_link *link;
	struct va_control *control;
	xmlrpc_registry *reg;
	struct deferred *deferred;
	va_loop_timer *sweep;
	int stopping;
	int notice_pending;
};

static struct va_agent agent;

/* ---- services for the method groups (agent.h) ------------------------ */

const struct va_agent_config *
va_agent_config(struct va_agent *a)
{
	return &a->cfg;
}

static int
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;
	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		if ((size_t)(e - p) == n && strncmp(p, name, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}

int
va_agent_method_enabled(struct va_agent *a, const char *name)
{
	/* qemu-ga's semantics: an allow list enables only what it names,
	 * a block list disables what it names; both may be given. */
	if (a->cfg.allow_rpcs && *a->cfg.allow_rpcs && !in_list(a->cfg.allow_rpcs, name))
		return 0;
	if (a->cfg.block_rpcs && in_list(a->cfg.block_rpcs, name))
		return 0;
	return 1;
}

uint64_t
va_agent_now_ms(void)
{
	return va_now_ms();
}

struct host_call {
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
		agent.notice_pending--;
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

static void
deferred_free(struct deferred *d)
{
	*d->prev = d->next;
	if (d->next)
		d->next->prev = d->prev;
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
	d->fn = fn;
	d->arg = arg;
	d->next = a->deferred;
	if (d->next)
		d->next->prev = &d->next;
	d->prev = &a->deferred;
	a->deferred = d;
	va_loop_timer_in(d->timer, delay_ms);
	return 0;
}

/* ---- the session ----------------------------------------------------- */

static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
	   struct va_frame *req)
{
	struct va_agent *a = opaque;

	va_log_debug("request %s (%zu bytes)", tag, req->body_len);
	const char *why;
	if (va_xml_gate_check(req->body, req->body_len, &why) < 0) {
		va_log_warnx("request %s: %s", tag, why);
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_PARSE_ERROR, why);
		va_frame_free(req);
		return;
	}
	/* File chunks skip xmlrpc-c's value trees (see file.c's fast path). */
	struct va_buf fast = { 0 };
	if (va_file_fast_call(a, req->body, req->body_len, &fast)) {
		va_rpc_reply(s, epoch, tag, fast.data, fast.len);
		va_buf_free(&fast);
		va_frame_free(req);
		return;
	}
	va_buf_free(&fast);
	/* A checksum is answered later, hashed in slices (file.c). */
	if (va_file_checksum_call(a, s, epoch, tag, req->body, req->body_len)) {
		va_frame_free(req);
		return;
	}
	va_rpc_serve(s, epoch, tag, req, a->reg, NULL);
}

static void
send_hello(struct va_agent *a)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *methods = va_methods_enabled(&env, a);
	xmlrpc_value *info = xmlrpc_build_value(&env, "{s:s,s:i,s:V,s:i}",
		"version", PACKAGE_VERSION, "protocol", VA_AGENT_PROTOCOL,
		"methods", methods, "max_frame", (int)a->cfg.max_frame);
	xmlrpc_value *params = xmlrpc_build_value(&env, "(V)", info);
	if (!env.fault_occurred)
		va_agent_call_host(a, "host.hello", params);
	else
		va_log_warnx("host.hello: %s", env.fault_string);
	if (params)
		xmlrpc_DECREF(params);
	if (info)
		xmlrpc_DECREF(info);
	if (methods)
		xmlrpc_DECREF(methods);
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

/* ---- lifecycle ------------------------------------------------------- */

static void
on_term(void *opaque)
{
	struct va_agent *a = opaque;
	va_loop_stop(a->loop);
}

static void reload_config(struct va_agent *a);

static void
on_hup(void *opaque)
{
	reload_config(opaque);
}

static void
on_chld(void *opaque)
{
	(void)opaque;
	va_methods_reap();
}

static void
setup_signals(struct va_agent *a)
{
	if (va_loop_signal(a->loop, SIGTERM, on_term, a) < 0 ||
	    va_loop_signal(a->loop, SIGINT, on_term, a) < 0 ||
	    va_loop_signal(a->loop, SIGHUP, on_hup, a) < 0 ||
	    va_loop_signal(a->loop, SIGCHLD, on_chld, a) < 0)
		va_fatal("signals");
	signal(SIGPIPE, SIG_IGN);
}

static void
reload_config(struct va_agent *a)
{
	struct va_agent_config fresh;

	if (va_agent_config_load(&fresh, a->argc, a->argv) != VA_CONF_OK) {
		va_log_errx("SIGHUP: config %s not reloaded (errors above); keeping the old settings",
			    a->cfg.config_file);
		va_agent_config_free(&fresh);
		return;
	}
	if (strcmp(fresh.channel, a->cfg.channel) || strcmp(fresh.control, a->cfg.control) ||
	    fresh.max_frame != a->cfg.max_frame)
		va_log_warnx("SIGHUP: channel, control socket and max-frame change only at restart");
	/* Keep what is bound at start; take the rest. */
#define SWAP(f) do { __typeof__(a->cfg.f) t = a->cfg.f; a->cfg.f = fresh.f; fresh.f = t; } while (0)
	SWAP(allow_rpcs);
	SWAP(block_rpcs);
	SWAP(file_roots);
	SWAP(nfile_roots);
	SWAP(shutdown_command);
	SWAP(clip_copy_command);
	SWAP(clip_paste_command);
	SWAP(log_level);
#undef SWAP
	va_log_set_level((enum va_log_level)a->cfg.log_level);
	va_agent_config_free(&fresh);
	va_log_info("SIGHUP: configuration reloaded from %s", a->cfg.config_file);
}

/*
 * Runs before every method, also each one inside system.multicall, so
 * the RPC lists cannot be bypassed that way.
 */
static void
check_enabled(xmlrpc_env *env, const char *name, xmlrpc_value *params, void *opaque)
{
	(void)params;
	/*
	 * system.multicall would let one small request make the agent build
	 * any number of large results (40 reads of 8 MiB in 5 KiB) before
	 * the frame limit refuses the whole: make the calls one by one.
	 */
	if (strcmp(name, "system.multicall") == 0) {
		va_log_warnx("system.multicall refused");
		xmlrpc_env_set_fault_formatted(env, XMLRPC_NO_SUCH_METHOD_ERROR,
					       "system.multicall is not available: make the calls "
					       "one by one");
		return;
	}
	if (!va_agent_method_enabled(opaque, name)) {
		va_log_warnx("%s: refused, disabled by the RPC lists", name);
		xmlrpc_env_set_fault_formatted(env, XMLRPC_NO_SUCH_METHOD_ERROR,
					       "method %s is disabled on this guest", name);
	}
}

static void
build_registry(struct va_agent *a)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	a->reg = xmlrpc_registry_new(&env);
	if (!env.fault_occurred)
		xmlrpc_registry_set_preinvoke_method(&env, a->reg, check_enabled, a);
	if (!env.fault_occurred)
		va_methods_info_register(&env, a->reg, a);
	if (!env.fault_occurred)
		va_methods_file_register(&env, a->reg, a);
	if (!env.fault_occurred)
		va_methods_clipboard_register(&env, a->reg, a);
	if (!env.fault_occurred)
		va_methods_dmesg_register(&env, a->reg, a);
	if (!env.fault_occurred)
		va_methods_shutdown_register(&env, a->reg, a);
	if (env.fault_occurred)
		va_fatalx("registry: %s", env.fault_string);
	xmlrpc_env_clean(&env);
}

/* Closes the file handles idle for too long; again when the next one is due. */
static void
sweep(void *opaque)
{
	struct va_agent *a = opaque;
	uint64_t next = va_file_sweep(va_now_ms());
	if (next == UINT64_MAX)
		next = va_now_ms() + VA_FILE_IDLE_SECONDS * 1000u;
	va_loop_timer_at(a->sweep, next);
}

static void
stop(struct va_agent *a)
{
	a->stopping = 1;
	va_log_info("SIGTERM: stopping");
	if (va_session_is_ready(a->s)) {
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		xmlrpc_value *p = xmlrpc_build_value(&env, "(ss)", "stop",
						     "the agent was stopped (SIGTERM)");
		if (!env.fault_occurred) {
			va_agent_call_host(a, "host.shutdown_notice", p);
			xmlrpc_DECREF(p);
		}
		xmlrpc_env_clean(&env);
	}
	/* Wait (bounded) for the notice's answer and for queued output. */
	uint64_t end = va_now_ms() + STOP_GRACE_MS;
	while (va_now_ms() < end &&
	       (a->notice_pending > 0 || va_session_output_pending(a->s) > 0) &&
	       va_channel_state(a->ch) == VA_CHANNEL_UP)
		va_loop_run_once(a->loop, 50);
}

int
main(int argc, char **argv)
{
	struct va_agent *a = &agent;
	char err[512];

	switch (va_agent_config_load(&a->cfg, argc, argv)) {
	case VA_CONF_OK: break;
	case VA_CONF_EXIT_OK: va_agent_config_free(&a->cfg); return 0;
	default: va_agent_config_free(&a->cfg); return 2;
	}
	a->argc = argc;
	a->argv = argv;
	va_log_init("va-agent", 0, (enum va_log_level)a->cfg.log_level);
	/*
	 * With --daemonize, the command that started us waits from here
	 * until va_daemon_ready() (exit 0) or a fatal error (exit 1, the
	 * reason on its stderr); see common/daemon.h.  Messages go to that
	 * stderr until va_daemon_detach(), which switches to syslog only
	 * then (va_daemon_begin() closes every inherited fd first, so no
	 * syslog fd is closed under glibc's feet).
	 */
	if (a->cfg.daemonize)
		va_daemon_begin();
	/* First, so that a second instance stops before touching anything. */
	if (a->cfg.pidfile)
		va_pidfile_create(a->cfg.pidfile);
	a->loop = va_loop_new();
	if (!a->loop)
		va_fatal("event loop");
	setup_signals(a);
	va_rpc_init(a->cfg.max_frame);
	build_registry(a);

	if (va_channel_open(a->cfg.channel, &a->ch, err, sizeof(err)) < 0)
		va_fatalx("%s", err);
	struct va_session_config scfg = { .name = "host", .max_frame = a->cfg.max_frame };
	a->s = va_session_new(&scfg, &session_ops, a);
	a->sweep = va_loop_timer_new(a->loop, sweep, a);
	if (!a->s || !a->sweep || !(a->link = va_link_new(a->loop, a->ch, a->s)))
		va_fatalx("out of memory");
	va_loop_timer_in(a->sweep, VA_FILE_IDLE_SECONDS * 1000u);
	if (a->cfg.control && *a->cfg.control) {
		a->control = va_control_open(a->cfg.control, a->loop, a);
		if (!a->control) {
			/* Leave no channel socket (unix-listen:) behind. */
			va_link_free(a->link);
			va_session_free(a->s);
			va_channel_free(a->ch);
			va_fatalx("cannot open the control socket %s (use --control none to run without)",
				  a->cfg.control);
		}
	}
	/*
	 * Ready: the channel is open (for virtio-serial and isa-serial the
	 * device is open; a host need not be connected yet: the session
	 * resets when one comes), the control socket is bound, the pidfile
	 * is locked and written.  A missing port is a fatal error above,
	 * not something to wait for: udev and va-agent.service start the
	 * agent when the port appears.
	 */
	if (a->cfg.daemonize)
		va_daemon_detach();
	va_log_info("va-agent %s serving on %s", PACKAGE_VERSION, a->cfg.channel);
	va_daemon_ready();

	if (va_loop_run(a->loop) < 0)
		va_fatal("event loop");
	stop(a);

	va_link_free(a->link);
	va_session_free(a->s);
	va_channel_free(a->ch);
	va_control_free(a->control);
	va_file_close_all();
	va_clipboard_free();
	while (a->deferred)
		deferred_free(a->deferred);
	va_loop_timer_free(a->sweep);
	va_loop_free(a->loop);
	xmlrpc_registry_free(a->reg);
	va_pidfile_remove();
	va_log_info("stopped");
	va_agent_config_free(&a->cfg);
	return 0;
}
