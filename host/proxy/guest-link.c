/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest-link.c - a guest's I/O on the proxy's loop thread: its channel,
 * session and link (see guest.h), what the loop thread copies of them
 * for the other threads, and forwarded calls.
 *
 * A forwarded call is one pass of this thread: the HTTP server hands the
 * request to forward.c, which calls va_guest_forward; the session copies
 * the body into a frame and the link writes what the channel takes at
 * once.  When the agent's answer comes, the session calls back here
 * (fwd_done), the body is handed over without a copy, and the callback
 * writes it to the HTTP client.  No other thread is woken for it.
 *
 * Why one thread: with a thread per HTTP connection (xmlrpc-c's Abyss)
 * each call woke three threads of the proxy, and on a 2-CPU machine the
 * context switches were half of the proxy's time (perf: finish_task_switch
 * and wake-ups).  Work that may wait (proxy.* methods: proxy.events is a
 * long poll) runs on threads of its own (forward.c) and comes back
 * through va_proxy_post.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "channel.h"
#include "contract.h"
#include "frame.h"
#include "guest-int.h"
#include "guest.h"
#include "hostcalls.h"
#include "hostwork.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "rpc.h"
#include "serve.h"
#include "xmlgate.h"
#include "session.h"

struct fwd {
	struct va_guest *g;
	char method[VA_RPC_MAX_METHOD_NAME + 1];
	size_t len;
	int was_ready;            /* session ready when sent */
	uint64_t established_at;  /* g->established_n when sent */
	va_guest_done_fn *done;
	void *ctx;
	int counted;              /* in g->fwd_calls and g->fwd_bytes */
	struct va_call_result res;
};

static void
fwd_finish(struct fwd *f)
{
	if (f->counted) {
		f->g->fwd_calls--;
		f->g->fwd_bytes -= f->len;
	}
	f->done(f->ctx, &f->res);
	free(f->res.body);
	free(f);
}

static void __attribute__((format(printf, 3, 4)))
fwd_fault(struct fwd *f, int code, const char *fmt, ...)
{
	va_list ap;

	f->res.fault = code;
	va_start(ap, fmt);
	vsnprintf(f->res.msg, sizeof(f->res.msg), fmt, ap);
	va_end(ap);
	va_log_warnx("%s: %s: %s", f->g->name, f->method, f->res.msg);
	fwd_finish(f);
}

/* ---- session callbacks (loop thread) ---- */

static void
touch(struct va_guest *g)
{
	double now = va_guest_wall_now();
	pthread_mutex_lock(&g->lock);
	g->sh.last_seen = now;
	pthread_mutex_unlock(&g->lock);
}

/* The guest's session closed, or is closed: the proxy stops, or the guest was removed. */
static void
fwd_gone(struct fwd *f)
{
	if (!f->g->gone || va_loop_stopping(f->g->px->loop))
		fwd_fault(f, VA_PROXY_FAULT_SHUTTING_DOWN, "the proxy is shutting down");
	else
		fwd_fault(f, VA_PROXY_FAULT_NOT_CONNECTED,
			  "guest %s was removed from the proxy", f->g->name);
}

static void
fwd_done(void *opaque, int err, struct va_frame *resp)
{
	struct fwd *f = opaque;
	struct va_guest *g = f->g;
	unsigned timeout_s = g->px->call_timeout_ms / 1000;

	const char *why;
	if (!err && va_xml_gate_check(resp->body, resp->body_len, &why) < 0) {
		/* Host clients built on xmlrpc-c would expand its entities. */
		va_log_warnx("%s: %s: answer refused: %s", g->name, f->method, why);
		va_frame_free(resp);
		fwd_fault(f, VA_PROXY_FAULT_REFUSED,
			  "the answer of the agent of guest %s was refused: %s", g->name, why);
		return;
	}
	if (!err) {
		/* Hand the body over as it is. */
		f->res.body = resp->body;
		f->res.len = resp->body_len;
		resp->body = NULL;
		va_frame_free(resp);
		touch(g);
		va_log_debug("%s: %s answered (%zu bytes)", g->name, f->method, f->res.len);
		fwd_finish(f);
		return;
	}
	int sent = f->was_ready || g->established_n != f->established_at;
	switch (err) {
	case VA_SESSION_ERR_NOT_READY:
		if (va_channel_state(g->ch) == VA_CHANNEL_UP)
			fwd_fault(f, VA_PROXY_FAULT_NOT_ANSWERING,
				  "the agent of guest %s is not answering: its channel is connected "
				  "but the agent did not complete the handshake within %u s "
				  "(is va-agent running in the guest?)",
				  g->name, VA_GUEST_READY_TIMEOUT_MS / 1000);
		else
			fwd_fault(f, VA_PROXY_FAULT_NOT_CONNECTED,
				  "the channel of guest %s (%s) is not connected", g->name, g->spec);
		return;
	case VA_SESSION_ERR_PEER_GONE:
		if (sent)
			fwd_fault(f, VA_PROXY_FAULT_LOST,
				  "the channel of guest %s closed while the call was in flight; "
				  "its answer is lost, and it may or may not have run", g->name);
		else
			fwd_fault(f, VA_PROXY_FAULT_NOT_CONNECTED,
				  "the channel of guest %s (%s) is not connected", g->name, g->spec);
		return;
	case VA_SESSION_ERR_RESET:
		fwd_fault(f, VA_PROXY_FAULT_LOST,
			  "the session with the agent of guest %s was reset while the call was "
			  "in flight (the agent restarted or resynchronised); its answer is lost, "
			  "and it may or may not have run", g->name);
		return;
	case VA_SESSION_ERR_TIMEOUT:
		fwd_fault(f, VA_PROXY_FAULT_TIMEOUT,
			  "the agent of guest %s did not answer within the call timeout of %u s; "
			  "the proxy reset the session", g->name, timeout_s ? timeout_s : 1);
		return;
	case VA_SESSION_ERR_TOO_LARGE:
		fwd_fault(f, VA_PROXY_FAULT_TOO_LARGE,
			  "the call or its response is larger than the frame limit of the agent "
			  "of guest %s or of the proxy (%zu bytes)", g->name, g->px->max_frame);
		return;
	case VA_SESSION_ERR_REFUSED:
		fwd_fault(f, VA_PROXY_FAULT_REFUSED,
			  "the agent of guest %s refused the call", g->name);
		return;
	case VA_SESSION_ERR_CLOSED:
	default:
		fwd_gone(f);
		return;
	}
}

static void caps_done(void *opaque, int err, struct va_frame *resp);

/* Sends va.capabilities in the current session. */
static void
ask_caps(struct va_guest *g)
{
	const struct va_buf *caps = &g->px->guests->caps_call;

	g->caps_sent_ms = va_now_ms();
	int r = va_session_call(g->s, caps->data, caps->len, g->px->call_timeout_ms, va_now_ms(),
				caps_done, g);
	if (r < 0)
		va_log_warnx("%s: va.capabilities not sent: %s", g->name, strerror(-r));
}

/* The capabilities query that waited for its interval. */
static void
caps_due(void *opaque)
{
	struct va_guest *g = opaque;

	if (!g->gone && g->s && va_session_is_ready(g->s))
		ask_caps(g);
}

static void
caps_done(void *opaque, int err, struct va_frame *resp)
{
	struct va_guest *g = opaque;
	xmlrpc_env env;
	xmlrpc_value *result = NULL;
	int fcode = 0;
	char *fstr = NULL;

	if (err) {
		va_log_debug("%s: va.capabilities: %s", g->name, va_session_strerror(err));
		return;
	}
	touch(g);
	xmlrpc_env_init(&env);
	/* The guest's answer is parsed on this thread: small, and with the
	 * gate's small limits (xmlgate.h), it costs a few milliseconds at most. */
	if (resp->body_len > VA_GUEST_CAPS_MAX)
		xmlrpc_env_set_fault_formatted(&env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "%zu bytes, over the %u bytes taken", resp->body_len,
					       VA_GUEST_CAPS_MAX);
	else
		va_rpc_parse_response_lim(&env, resp->body, resp->body_len, &va_xml_limits_small,
					  &result, &fcode, &fstr);
	if (env.fault_occurred) {
		/* Refused before parsing (it would stall this thread, which
		 * serves every guest), or not a response. */
		va_log_warnx("%s: va.capabilities: bad response: %s", g->name, env.fault_string);
	} else if (fstr) {
		va_log_warnx("%s: va.capabilities: fault %d: %s", g->name, fcode, fstr);
		free(fstr);
	} else {
		va_guest_set_info(&env, g, result, "va.capabilities");
		if (env.fault_occurred)
			va_log_warnx("%s: va.capabilities: %s", g->name, env.fault_string);
		xmlrpc_DECREF(result);
	}
	xmlrpc_env_clean(&env);
	va_frame_free(resp);
}

static void
on_established(void *opaque, va_session *s)
{
	struct va_guest *g = opaque;
	double now = va_guest_wall_now();

	g->established_n++;
	pthread_mutex_lock(&g->lock);
	g->sh.established = 1;
	g->sh.answered = 0;
	g->sh.last_seen = now;
	snprintf(g->sh.session, sizeof(g->sh.session), "%s", va_session_id(s));
	pthread_mutex_unlock(&g->lock);
	va_log_info("%s: session %s with the agent established", g->name, va_session_id(s));
	/*
	 * Learn what the agent offers even when it does not say hello; at
	 * most once per VA_GUEST_CAPS_INTERVAL_MS, so that a guest resetting
	 * in a loop cannot make us ask (and parse) again and again: a query
	 * due meanwhile waits for the interval (caps_due).
	 */
	uint64_t now_ms = va_now_ms();
	if (g->caps_sent_ms && now_ms - g->caps_sent_ms < VA_GUEST_CAPS_INTERVAL_MS)
		va_loop_timer_at(g->caps_timer, g->caps_sent_ms + VA_GUEST_CAPS_INTERVAL_MS);
	else
		ask_caps(g);
}

static void
on_reset(void *opaque, va_session *s, int by_peer)
{
	struct va_guest *g = opaque;

	(void)s;
	pthread_mutex_lock(&g->lock);
	g->sh.established = 0;
	g->sh.answered = 0;
	pthread_mutex_unlock(&g->lock);
	va_log_debug("%s: session reset (%s)", g->name, by_peer ? "by the agent" : "by the proxy");
}

/* A host.* call from the guest. */
static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag, struct va_frame *req)
{
	struct va_guest *g = opaque;
	struct va_host_call info = { g, req->body_len };

	touch(g);
	/* This thread serves every guest: no huge body may fill the host's
	 * memory with value trees, and the gate's small limits keep what it
	 * parses cheap (xmlgate.h). */
	char name[VA_RPC_MAX_METHOD_NAME + 1];
	const char *why = NULL;
	if (req->body_len > VA_HOST_BODY_MAX)
		why = "the request is larger than host.* methods take";
	else if (req->body_len > VA_HOSTWORK_INLINE_MAX &&
		 (va_rpc_method_name(req->body, req->body_len, name) < 0 ||
		  strcmp(name, "host.clipboard.set") != 0))
		why = "the request is larger than that host.* method takes";
	if (why) {
		va_log_warnx("%s: request %s refused: %s", g->name, tag, why);
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_LIMIT_EXCEEDED_ERROR, why);
		va_frame_free(req);
		return;
	}
	/* A large clipboard text is parsed off this thread (hostwork.h). */
	if (req->body_len > VA_HOSTWORK_INLINE_MAX) {
		int r = va_hostwork_submit(g->px->hostwork, g, s, epoch, tag, req);
		if (r < 0) {
			va_log_warnx("%s: request %s refused: %s", g->name, tag,
				     r == -EBUSY ? "a large call of this guest is still running"
						 : "out of memory");
			va_rpc_reply_fault(s, epoch, tag, XMLRPC_LIMIT_EXCEEDED_ERROR,
					   r == -EBUSY ? "busy: a large host.* call of this guest is "
							 "still being handled; try again"
						       : "out of memory");
		}
		return;
	}
	va_rpc_serve_lim(s, epoch, tag, req, g->px->host_reg, &va_xml_limits_small, &info);
}

static const struct va_session_ops session_ops = {
	.request = on_request,
	.established = on_established,
	.reset = on_reset,
};

/* ---- the loop thread ---- */

static void snapshot(struct va_guest *g, uint64_t now);

static void
submit(struct fwd *f, const void *body, uint64_t now)
{
	struct va_guest *g = f->g;

	if (g->seen_state == VA_CHANNEL_DOWN && va_channel_state(g->ch) == VA_CHANNEL_DOWN &&
	    now - g->down_since_ms >= VA_GUEST_DOWN_GRACE_MS) {
		fwd_fault(f, VA_PROXY_FAULT_NOT_CONNECTED,
			  "the channel of guest %s (%s) is not connected (is the VM running, "
			  "with its chardev at that path?)", g->name, g->spec);
		return;
	}
	f->was_ready = va_session_is_ready(g->s);
	f->established_at = g->established_n;
	size_t max = g->px->max_frame;
	int r = va_session_call(g->s, body, f->len, g->px->call_timeout_ms, now, fwd_done, f);
	if (r == -E2BIG) {
		size_t peer = va_session_peer_max_frame(g->s);
		fwd_fault(f, VA_PROXY_FAULT_TOO_LARGE,
			  "the call (%zu bytes) is larger than the frame limit of %s (%zu bytes)",
			  f->len, peer && peer < max ? "the agent" : "the proxy",
			  peer && peer < max ? peer : max);
		return;
	}
	if (r < 0) {
		fwd_fault(f, r == -ESHUTDOWN ? VA_PROXY_FAULT_SHUTTING_DOWN : VA_PROXY_FAULT_INTERNAL,
			  "the call could not be sent: %s", strerror(-r));
		return;
	}
	pthread_mutex_lock(&g->lock);
	g->sh.calls_forwarded++;
	pthread_mutex_unlock(&g->lock);
	va_log_debug("%s: %s forwarded (%zu bytes)", g->name, f->method, f->len);
	snapshot(g, now);
}

/* Copies what the other threads may read; posts link events. */
static void
snapshot(struct va_guest *g, uint64_t now)
{
	struct va_session_stats st;
	enum va_channel_state cs = va_channel_state(g->ch);
	int changed = cs != g->seen_state;

	if (changed) {
		g->seen_state = cs;
		if (cs == VA_CHANNEL_DOWN)
			g->down_since_ms = now;
	}
	va_session_stats(g->s, &st);
	pthread_mutex_lock(&g->lock);
	g->sh.connected = cs == VA_CHANNEL_UP;
	g->sh.established = va_session_is_ready(g->s);
	if (!g->sh.established)
		g->sh.answered = 0;
	g->sh.resets = st.resets_sent + st.resets_received;
	g->sh.calls_failed = st.calls_failed;
	g->sh.in_flight = va_session_calls_in_flight(g->s);
	g->sh.stale_responses = st.stale_responses;
	g->sh.unmatched_responses = st.unmatched_responses;
	pthread_mutex_unlock(&g->lock);

	if (changed) {
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		xmlrpc_value *data = xmlrpc_build_value(&env, "{s:s}", "channel", g->spec);
		if (!env.fault_occurred) {
			va_guest_post_event(g, cs == VA_CHANNEL_UP ? "connected" : "disconnected",
					    data, 0);
			xmlrpc_DECREF(data);
		}
		xmlrpc_env_clean(&env);
	}
}

static void
on_activity(void *opaque)
{
	snapshot(opaque, va_now_ms());
}

int
va_guest_io_open(struct va_guest *g)
{
	char sname[VA_RPC_MAX_METHOD_NAME];

	snprintf(sname, sizeof(sname), "guest %s", g->name);
	struct va_session_config scfg = {
		.name = sname,
		.max_frame = g->px->max_frame,
		.ready_timeout_ms = VA_GUEST_READY_TIMEOUT_MS,
	};
	g->down_since_ms = va_now_ms();
	g->s = va_session_new(&scfg, &session_ops, g);
	g->caps_timer = va_loop_timer_new(g->px->loop, caps_due, g);
	if (!g->s || !g->caps_timer || !(g->link = va_link_new(g->px->loop, g->ch, g->s)))
		return -ENOMEM;
	va_link_set_activity_cb(g->link, on_activity, g);
	return 0;
}

void
va_guest_io_close(struct va_guest *g)
{
	/* Every call in flight fails (VA_SESSION_ERR_CLOSED: fwd_gone). */
	g->gone = 1;
	va_loop_timer_free(g->caps_timer);
	g->caps_timer = NULL;
	va_link_free(g->link);
	g->link = NULL;
	va_session_free(g->s);
	g->s = NULL;
	va_channel_free(g->ch);
	g->ch = NULL;
	pthread_mutex_lock(&g->lock);
	g->sh.connected = g->sh.established = g->sh.answered = 0;
	g->sh.in_flight = 0;
	pthread_mutex_unlock(&g->lock);
}

/* ---- forwarded calls ---- */

void
va_guest_forward(struct va_guest *g, const char *method, const void *body, size_t len,
		 va_guest_done_fn *done, void *ctx)
{
	struct fwd *f = calloc(1, sizeof(*f));

	if (!f) {
		struct va_call_result res = { .fault = VA_PROXY_FAULT_INTERNAL };
		snprintf(res.msg, sizeof(res.msg), "out of memory");
		done(ctx, &res);
		return;
	}
	f->g = g;
	size_t ml = strnlen(method, sizeof(f->method) - 1);
	memcpy(f->method, method, ml); /* f is zeroed: NUL-terminated */
	f->len = len;
	f->done = done;
	f->ctx = ctx;
	if (va_loop_stopping(g->px->loop) || g->gone) {
		fwd_gone(f);
		return;
	}
	size_t budget = VA_GUEST_BACKLOG_FRAMES * g->px->max_frame;
	if (g->fwd_calls >= VA_GUEST_MAX_CALLS ||
	    (g->fwd_calls > 0 && g->fwd_bytes + len > budget)) {
		fwd_fault(f, VA_PROXY_FAULT_BUSY,
			  "guest %s has %zu calls (%zu bytes) of the proxy unanswered already, "
			  "the most it takes (%u calls, %zu bytes): try again when they are "
			  "answered", g->name, g->fwd_calls, g->fwd_bytes, VA_GUEST_MAX_CALLS,
			  budget);
		return;
	}
	f->counted = 1;
	g->fwd_calls++;
	g->fwd_bytes += len;
	/* Sends it (or fails it: done has run then). */
	submit(f, body, va_now_ms());
	if (va_channel_state(g->ch) != g->seen_state)
		snapshot(g, va_now_ms()); /* the write found the peer gone: say so now */
}

/* ---- binary calls (files.c) ---- */

struct bcall {
	struct va_guest *g;
	int was_ready;            /* session ready when sent */
	uint64_t established_at;  /* g->established_n when sent */
	va_guest_bin_fn *done;
	void *ctx;
};

static void
bcall_done(void *opaque, int err, struct va_frame *resp)
{
	struct bcall *b = opaque;
	struct va_guest *g = b->g;
	va_guest_bin_fn *done = b->done;
	void *ctx = b->ctx;
	int sent = b->was_ready || g->established_n != b->established_at;
	char msg[256];
	int fault = 0;

	free(b);
	if (!err) {
		touch(g);
		done(ctx, 0, NULL, resp);
		return;
	}
	switch (err) {
	case VA_SESSION_ERR_NOT_READY:
		fault = g->ch && va_channel_state(g->ch) == VA_CHANNEL_UP ?
			VA_PROXY_FAULT_NOT_ANSWERING : VA_PROXY_FAULT_NOT_CONNECTED;
		snprintf(msg, sizeof(msg), fault == VA_PROXY_FAULT_NOT_ANSWERING ?
			 "the agent of guest %s is not answering (no handshake within %u s)" :
			 "the channel of guest %s is not connected", g->name,
			 VA_GUEST_READY_TIMEOUT_MS / 1000);
		break;
	case VA_SESSION_ERR_PEER_GONE:
		fault = sent ? VA_PROXY_FAULT_LOST : VA_PROXY_FAULT_NOT_CONNECTED;
		snprintf(msg, sizeof(msg), "the channel of guest %s closed", g->name);
		break;
	case VA_SESSION_ERR_RESET:
		fault = VA_PROXY_FAULT_LOST;
		snprintf(msg, sizeof(msg), "the session with the agent of guest %s was reset",
			 g->name);
		break;
	case VA_SESSION_ERR_TIMEOUT:
		fault = VA_PROXY_FAULT_TIMEOUT;
		snprintf(msg, sizeof(msg), "the agent of guest %s did not answer in time; the "
			 "proxy reset the session", g->name);
		break;
	case VA_SESSION_ERR_TOO_LARGE:
		fault = VA_PROXY_FAULT_TOO_LARGE;
		snprintf(msg, sizeof(msg), "the agent of guest %s refused a frame as too large",
			 g->name);
		break;
	case VA_SESSION_ERR_PROTOCOL:
		fault = VA_GUEST_OLD_AGENT;
		snprintf(msg, sizeof(msg), "the agent of guest %s speaks protocol 1 (an older "
			 "va-agent), which has no file streams", g->name);
		break;
	case VA_SESSION_ERR_REFUSED:
		fault = VA_PROXY_FAULT_REFUSED;
		snprintf(msg, sizeof(msg), "the agent of guest %s refused the call", g->name);
		break;
	default:
		fault = g->gone && !va_loop_stopping(g->px->loop) ? VA_PROXY_FAULT_NOT_CONNECTED
								  : VA_PROXY_FAULT_SHUTTING_DOWN;
		snprintf(msg, sizeof(msg), fault == VA_PROXY_FAULT_NOT_CONNECTED ?
			 "guest %s was removed from the proxy" : "the proxy is shutting down",
			 g->name);
		break;
	}
	done(ctx, fault, msg, NULL);
}

int
va_guest_call_binary(struct va_guest *g, const struct va_msg *m, unsigned timeout_ms,
		     va_guest_bin_fn *done, void *ctx, char *msg, size_t msglen)
{
	uint64_t now = va_now_ms();
	int fault = 0;

	if (va_loop_stopping(g->px->loop) || g->gone) {
		fault = g->gone && !va_loop_stopping(g->px->loop) ? VA_PROXY_FAULT_NOT_CONNECTED
								  : VA_PROXY_FAULT_SHUTTING_DOWN;
		snprintf(msg, msglen, fault == VA_PROXY_FAULT_NOT_CONNECTED ?
			 "guest %s was removed from the proxy" : "the proxy is shutting down",
			 g->name);
	} else if (g->seen_state == VA_CHANNEL_DOWN &&
		   va_channel_state(g->ch) == VA_CHANNEL_DOWN &&
		   now - g->down_since_ms >= VA_GUEST_DOWN_GRACE_MS) {
		fault = VA_PROXY_FAULT_NOT_CONNECTED;
		snprintf(msg, msglen, "the channel of guest %s (%s) is not connected", g->name,
			 g->spec);
	}
	struct bcall *b = fault ? NULL : calloc(1, sizeof(*b));
	if (!fault && !b) {
		fault = VA_PROXY_FAULT_INTERNAL;
		snprintf(msg, msglen, "out of memory");
	}
	if (fault) {
		if (m->take)
			free((void *)m->body);
		return fault;
	}
	b->g = g;
	b->done = done;
	b->ctx = ctx;
	b->was_ready = va_session_is_ready(g->s);
	b->established_at = g->established_n;
	int r = va_session_call_msg(g->s, m, timeout_ms, now, bcall_done, b);
	if (r < 0) {
		free(b);
		if (r == -EPROTO) {
			snprintf(msg, msglen, "the agent of guest %s speaks protocol 1 (an older "
				 "va-agent), which has no file streams", g->name);
			return VA_GUEST_OLD_AGENT;
		}
		snprintf(msg, msglen, "the call to guest %s could not be sent: %s", g->name,
			 r == -E2BIG ? "larger than the frame limit" : strerror(-r));
		return r == -ESHUTDOWN ? VA_PROXY_FAULT_SHUTTING_DOWN :
		       r == -E2BIG ? VA_PROXY_FAULT_TOO_LARGE : VA_PROXY_FAULT_INTERNAL;
	}
	return 0;
}

size_t
va_guest_peer_max_frame(struct va_guest *g)
{
	return g->s ? va_session_peer_max_frame(g->s) : 0;
}

int
va_guest_stream_begin(struct va_guest *g, size_t max)
{
	if (g->streams >= max)
		return -1;
	g->streams++;
	return 0;
}

void
va_guest_stream_end(struct va_guest *g)
{
	if (g->streams > 0)
		g->streams--;
}
