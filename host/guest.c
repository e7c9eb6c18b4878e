/*
 * guest.c - the guests, their link thread, and the hand-over of calls
 * between the HTTP handler threads and that thread (see guest.h).
 *
 * A forwarded call: the handler thread puts a struct fwd (on its own
 * stack) on the queue, wakes the link thread through an eventfd and waits
 * on the fwd's condition variable.  The link thread gives the body to
 * va_session_call (which copies it into the frame) and, when the session
 * calls back, hands the response body over without copying it (it takes
 * the frame's body pointer) and signals.  The session guarantees that the
 * callback runs exactly once and in bounded time (call timeout, handshake
 * wait, peer gone, session freed), so the handler waits without a timeout
 * of its own, and the fwd outlives every use the link thread makes of it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "channel.h"
#include "events.h"
#include "faults.h"
#include "frame.h"
#include "guest.h"
#include "link.h"
#include "log.h"
#include "rpc.h"
#include "session.h"

/* What the link thread keeps for the other threads, under g->lock. */
struct guest_shared {
	int connected;           /* channel up */
	int established;         /* session ready */
	int answered;            /* hello or capabilities seen in this session */
	char session[24];
	char *agent_version;
	int protocol;
	xmlrpc_value *methods;   /* array of strings, or NULL */
	int64_t agent_max_frame;
	double last_seen;        /* unix time of the last frame from the agent; 0: never */
	uint64_t resets;
	uint64_t calls_forwarded;
	uint64_t calls_failed;
	uint64_t in_flight;
	uint64_t stale_responses;
	uint64_t unmatched_responses;
	uint64_t hellos;
	char *notice_mode;
	char *notice_reason;
	double notice_time;
	char *clip;
	size_t clip_len;
	uint64_t clip_serial;
	double clip_time;
};

struct va_guest {
	char *name;
	char *spec;

	/* Link thread only. */
	va_channel *ch;
	va_session *s;
	va_link *link;
	enum va_channel_state seen_state;
	uint64_t down_since_ms;
	uint64_t established_n;

	pthread_mutex_t lock;
	struct guest_shared sh;
};

struct fwd {
	struct fwd *next;
	struct va_guest *g;
	const char *method;
	const void *body;
	size_t len;
	int was_ready;            /* session ready when sent */
	uint64_t established_at;  /* g->established_n when sent */
	int done;
	struct va_call_result *res;
	pthread_cond_t cond;
};

static struct va_guest **guests;
static size_t nguests;

static struct va_guests_config config;
static xmlrpc_registry *host_registry;
static struct va_buf caps_call; /* the va.capabilities call the proxy makes */

static pthread_t link_thread;
static int link_running;
static int wake_fd = -1;

/* The queue, the stop flag and every fwd's done flag. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fwd *q_head, *q_tail;
static int stopping;

static double
wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

static int
clamp_int(uint64_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

/* ---- the guest table ---- */

int
va_guests_add(const char *name, const char *spec, char *err, size_t errlen)
{
	struct va_guest *g = calloc(1, sizeof(*g));
	struct va_guest **tab;
	int r;

	if (!g || !(g->name = strdup(name)) || !(g->spec = strdup(spec))) {
		r = -ENOMEM;
		snprintf(err, errlen, "guest %s: out of memory", name);
		goto fail;
	}
	r = va_channel_open(spec, &g->ch, err, errlen);
	if (r < 0)
		goto fail;
	tab = realloc(guests, (nguests + 1) * sizeof(*tab));
	if (!tab) {
		r = -ENOMEM;
		snprintf(err, errlen, "guest %s: out of memory", name);
		goto fail;
	}
	guests = tab;
	pthread_mutex_init(&g->lock, NULL);
	g->seen_state = VA_CHANNEL_DOWN;
	guests[nguests++] = g;
	return 0;
fail:
	if (g) {
		va_channel_free(g->ch);
		free(g->name);
		free(g->spec);
		free(g);
	}
	return r;
}

size_t
va_guests_count(void)
{
	return nguests;
}

struct va_guest *
va_guests_at(size_t i)
{
	return i < nguests ? guests[i] : NULL;
}

struct va_guest *
va_guests_find(const char *name)
{
	for (size_t i = 0; i < nguests; i++)
		if (!strcmp(guests[i]->name, name))
			return guests[i];
	return NULL;
}

const char *
va_guest_name(const struct va_guest *g)
{
	return g->name;
}

/* ---- the wake-up and the queue ---- */

static void
wake(void)
{
	uint64_t one = 1;
	ssize_t r;

	do
		r = write(wake_fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
	/* EAGAIN: the counter is full, so the thread wakes anyway. */
}

static void
fwd_finish(struct fwd *f)
{
	pthread_mutex_lock(&q_lock);
	f->done = 1;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&q_lock);
}

static void __attribute__((format(printf, 3, 4)))
fwd_fault(struct fwd *f, int code, const char *fmt, ...)
{
	va_list ap;

	f->res->fault = code;
	va_start(ap, fmt);
	vsnprintf(f->res->msg, sizeof(f->res->msg), fmt, ap);
	va_end(ap);
	va_log_warnx("%s: %s: %s", f->g->name, f->method, f->res->msg);
	fwd_finish(f);
}

/* ---- session callbacks (link thread) ---- */

static void
touch(struct va_guest *g)
{
	double now = wall_now();
	pthread_mutex_lock(&g->lock);
	g->sh.last_seen = now;
	pthread_mutex_unlock(&g->lock);
}

static void
fwd_done(void *opaque, int err, struct va_frame *resp)
{
	struct fwd *f = opaque;
	struct va_guest *g = f->g;
	unsigned timeout_s = config.call_timeout_ms / 1000;

	if (!err) {
		/* Hand the body over as it is. */
		f->res->body = resp->body;
		f->res->len = resp->body_len;
		resp->body = NULL;
		va_frame_free(resp);
		touch(g);
		va_log_debug("%s: %s answered (%zu bytes)", g->name, f->method, f->res->len);
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
			  "of guest %s or of the proxy (%zu bytes)", g->name, config.max_frame);
		return;
	case VA_SESSION_ERR_REFUSED:
		fwd_fault(f, VA_PROXY_FAULT_REFUSED,
			  "the agent of guest %s refused the call", g->name);
		return;
	case VA_SESSION_ERR_CLOSED:
	default:
		fwd_fault(f, VA_PROXY_FAULT_SHUTTING_DOWN, "the proxy is shutting down");
		return;
	}
}

static void
caps_done(void *opaque, int err, struct va_frame *resp)
{
	struct va_guest *g = opaque;
	xmlrpc_env env;
	xmlrpc_value *result = NULL;
	int fcode = 0;
	const char *fstr = NULL;

	if (err) {
		va_log_debug("%s: va.capabilities: %s", g->name, va_session_strerror(err));
		return;
	}
	touch(g);
	xmlrpc_env_init(&env);
	xmlrpc_parse_response2(&env, (const char *)resp->body, resp->body_len, &result,
			       &fcode, &fstr);
	if (env.fault_occurred) {
		va_log_warnx("%s: va.capabilities: bad response: %s", g->name, env.fault_string);
	} else if (fstr) {
		va_log_warnx("%s: va.capabilities: fault %d: %s", g->name, fcode, fstr);
		free((void *)fstr);
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
	double now = wall_now();

	g->established_n++;
	pthread_mutex_lock(&g->lock);
	g->sh.established = 1;
	g->sh.answered = 0;
	g->sh.last_seen = now;
	snprintf(g->sh.session, sizeof(g->sh.session), "%s", va_session_id(s));
	pthread_mutex_unlock(&g->lock);
	va_log_info("%s: session %s with the agent established", g->name, va_session_id(s));
	/* Learn what the agent offers even when it does not say hello. */
	int r = va_session_call(s, caps_call.data, caps_call.len, config.call_timeout_ms,
				va_now_ms(), caps_done, g);
	if (r < 0)
		va_log_warnx("%s: va.capabilities not sent: %s", g->name, strerror(-r));
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

static void
reply_fault(struct va_guest *g, va_session *s, uint64_t epoch, const char *tag, int code,
	    const char *msg)
{
	struct va_buf b = { 0 };

	if (va_rpc_serialize_fault(&b, code, msg) == 0)
		va_session_reply(s, epoch, tag, b.data, b.len);
	else
		va_log_errx("%s: cannot answer request %s: out of memory", g->name, tag);
	va_buf_free(&b);
}

/* A host.* call from the guest. */
static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag, struct va_frame *req)
{
	struct va_guest *g = opaque;
	struct va_host_call info = { g, req->body_len };
	xmlrpc_mem_block *out = NULL;
	xmlrpc_env env;

	touch(g);
	xmlrpc_env_init(&env);
	xmlrpc_registry_process_call2(&env, host_registry, (const char *)req->body,
				      req->body_len, &info, &out);
	if (env.fault_occurred) {
		/* Only the registry's own failures land here; method faults are in out. */
		reply_fault(g, s, epoch, tag, XMLRPC_INTERNAL_ERROR, env.fault_string);
	} else {
		int r = va_session_reply(s, epoch, tag, XMLRPC_MEMBLOCK_CONTENTS(char, out),
					 XMLRPC_MEMBLOCK_SIZE(char, out));
		if (r == -E2BIG)
			reply_fault(g, s, epoch, tag, XMLRPC_LIMIT_EXCEEDED_ERROR,
				    "response larger than the agent's frame limit");
		else if (r < 0 && r != -ESTALE)
			va_log_warnx("%s: reply to %s not sent: %s", g->name, tag, strerror(-r));
		XMLRPC_MEMBLOCK_FREE(char, out);
	}
	xmlrpc_env_clean(&env);
	va_frame_free(req);
}

static const struct va_session_ops session_ops = {
	.request = on_request,
	.established = on_established,
	.reset = on_reset,
};

/* ---- the link thread ---- */

static void
submit(struct fwd *f, uint64_t now)
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
	int r = va_session_call(g->s, f->body, f->len, config.call_timeout_ms, now, fwd_done, f);
	if (r == -E2BIG) {
		size_t peer = va_session_peer_max_frame(g->s);
		fwd_fault(f, VA_PROXY_FAULT_TOO_LARGE,
			  "the call (%zu bytes) is larger than the frame limit of %s (%zu bytes)",
			  f->len, peer && peer < config.max_frame ? "the agent" : "the proxy",
			  peer && peer < config.max_frame ? peer : config.max_frame);
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
	va_link_flush(g->link);
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
			va_events_post(g->name, cs == VA_CHANNEL_UP ? "connected" : "disconnected",
				       data);
			xmlrpc_DECREF(data);
		}
		xmlrpc_env_clean(&env);
	}
}

static void
drain_wake(void)
{
	uint64_t v;
	while (read(wake_fd, &v, sizeof(v)) > 0)
		;
}

static void *
link_main(void *arg)
{
	size_t maxfd = 1 + nguests * VA_LINK_MAX_POLLFDS;
	struct pollfd *pfd = calloc(maxfd, sizeof(*pfd));
	size_t *nfd = calloc(nguests, sizeof(*nfd));

	(void)arg;
	if (!pfd || !nfd)
		va_fatalx("link thread: out of memory");
	for (size_t i = 0; i < nguests; i++)
		guests[i]->down_since_ms = va_now_ms();

	for (;;) {
		pthread_mutex_lock(&q_lock);
		int stop = stopping;
		struct fwd *list = q_head;
		q_head = q_tail = NULL;
		pthread_mutex_unlock(&q_lock);
		if (stop) {
			/* va_guests_stop fails what is still queued. */
			break;
		}
		uint64_t now = va_now_ms();
		while (list) {
			struct fwd *f = list;
			list = f->next;
			submit(f, now);
		}

		int timeout = -1;
		size_t n = 1;
		pfd[0].fd = wake_fd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		for (size_t i = 0; i < nguests; i++) {
			nfd[i] = va_link_prepare(guests[i]->link, pfd + n, VA_LINK_MAX_POLLFDS,
						 &timeout);
			n += nfd[i];
		}
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			va_fatal("link thread: poll");
		if (pfd[0].revents)
			drain_wake();
		n = 1;
		for (size_t i = 0; i < nguests; i++) {
			va_link_dispatch(guests[i]->link, pfd + n, nfd[i]);
			n += nfd[i];
		}
		now = va_now_ms();
		for (size_t i = 0; i < nguests; i++)
			snapshot(guests[i], now);
	}

	/* Closing: every call in flight fails (VA_SESSION_ERR_CLOSED). */
	for (size_t i = 0; i < nguests; i++) {
		struct va_guest *g = guests[i];
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
	free(pfd);
	free(nfd);
	return NULL;
}

int
va_guests_start(const struct va_guests_config *cfg, xmlrpc_registry *reg)
{
	xmlrpc_env env;
	int r;

	config = *cfg;
	host_registry = reg;

	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_array_new(&env);
	if (!env.fault_occurred)
		va_rpc_serialize_call(&env, &caps_call, "va.capabilities", params);
	if (params)
		xmlrpc_DECREF(params);
	r = env.fault_occurred ? -ENOMEM : 0;
	xmlrpc_env_clean(&env);
	if (r < 0)
		return r;

	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wake_fd < 0)
		return -errno;
	for (size_t i = 0; i < nguests; i++) {
		struct va_guest *g = guests[i];
		char sname[VA_RPC_MAX_METHOD_NAME];
		snprintf(sname, sizeof(sname), "guest %s", g->name);
		struct va_session_config scfg = {
			.name = sname,
			.max_frame = cfg->max_frame,
			.ready_timeout_ms = VA_GUEST_READY_TIMEOUT_MS,
		};
		g->s = va_session_new(&scfg, &session_ops, g);
		if (!g->s || !(g->link = va_link_new(g->ch, g->s)))
			return -ENOMEM;
	}
	r = pthread_create(&link_thread, NULL, link_main, NULL);
	if (r)
		return -r;
	link_running = 1;
	return 0;
}

void
va_guests_stop(void)
{
	pthread_mutex_lock(&q_lock);
	stopping = 1;
	pthread_mutex_unlock(&q_lock);
	if (link_running) {
		wake();
		pthread_join(link_thread, NULL);
		link_running = 0;
	}
	/* Calls queued after the thread's last look: fail them. */
	pthread_mutex_lock(&q_lock);
	struct fwd *list = q_head;
	q_head = q_tail = NULL;
	pthread_mutex_unlock(&q_lock);
	while (list) {
		struct fwd *f = list;
		list = f->next;
		fwd_fault(f, VA_PROXY_FAULT_SHUTTING_DOWN, "the proxy is shutting down");
	}
	/* Guests never started (start failed half-way). */
	for (size_t i = 0; i < nguests; i++) {
		struct va_guest *g = guests[i];
		va_link_free(g->link);
		g->link = NULL;
		va_session_free(g->s);
		g->s = NULL;
		va_channel_free(g->ch);
		g->ch = NULL;
	}
}

void
va_guests_free(void)
{
	for (size_t i = 0; i < nguests; i++) {
		struct va_guest *g = guests[i];
		free(g->sh.agent_version);
		if (g->sh.methods)
			xmlrpc_DECREF(g->sh.methods);
		free(g->sh.notice_mode);
		free(g->sh.notice_reason);
		free(g->sh.clip);
		pthread_mutex_destroy(&g->lock);
		free(g->name);
		free(g->spec);
		free(g);
	}
	free(guests);
	guests = NULL;
	nguests = 0;
	va_buf_free(&caps_call);
	if (wake_fd >= 0)
		close(wake_fd);
	wake_fd = -1;
}

/* ---- calls from other threads ---- */

void
va_guest_call(struct va_guest *g, const char *method, const void *body, size_t len,
	      struct va_call_result *res)
{
	struct fwd f = {
		.g = g,
		.method = method,
		.body = body,
		.len = len,
		.res = res,
	};

	memset(res, 0, sizeof(*res));
	pthread_cond_init(&f.cond, NULL);
	pthread_mutex_lock(&q_lock);
	if (stopping) {
		pthread_mutex_unlock(&q_lock);
		res->fault = VA_PROXY_FAULT_SHUTTING_DOWN;
		snprintf(res->msg, sizeof(res->msg), "the proxy is shutting down");
		pthread_cond_destroy(&f.cond);
		return;
	}
	if (q_tail)
		q_tail->next = &f;
	else
		q_head = &f;
	q_tail = &f;
	pthread_mutex_unlock(&q_lock);
	wake();

	pthread_mutex_lock(&q_lock);
	while (!f.done)
		pthread_cond_wait(&f.cond, &q_lock);
	pthread_mutex_unlock(&q_lock);
	pthread_cond_destroy(&f.cond);
}

/* ---- what other threads read ---- */

static void
put(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_value *v)
{
	if (env->fault_occurred || !v)
		return;
	xmlrpc_struct_set_value(env, st, key, v);
	xmlrpc_DECREF(v);
}

xmlrpc_value *
va_guest_status(xmlrpc_env *env, struct va_guest *g)
{
	xmlrpc_value *st = xmlrpc_struct_new(env);
	if (env->fault_occurred)
		return NULL;

	pthread_mutex_lock(&g->lock);
	const struct guest_shared *sh = &g->sh;
	put(env, st, "guest", xmlrpc_string_new(env, g->name));
	put(env, st, "channel", xmlrpc_string_new(env, g->spec));
	put(env, st, "connected", xmlrpc_bool_new(env, sh->connected));
	put(env, st, "established", xmlrpc_bool_new(env, sh->established));
	put(env, st, "answered", xmlrpc_bool_new(env, sh->answered));
	put(env, st, "session", xmlrpc_string_new(env, sh->established ? sh->session : ""));
	put(env, st, "agent_version",
	    xmlrpc_string_new(env, sh->agent_version ? sh->agent_version : ""));
	put(env, st, "protocol", xmlrpc_int_new(env, sh->protocol));
	if (sh->methods) {
		xmlrpc_INCREF(sh->methods);
		put(env, st, "methods", sh->methods);
	} else {
		put(env, st, "methods", xmlrpc_array_new(env));
	}
	put(env, st, "agent_max_frame", xmlrpc_int_new(env, clamp_int((uint64_t)sh->agent_max_frame)));
	put(env, st, "last_seen", xmlrpc_double_new(env, sh->last_seen));
	put(env, st, "resets", xmlrpc_int_new(env, clamp_int(sh->resets)));
	put(env, st, "calls_forwarded", xmlrpc_int_new(env, clamp_int(sh->calls_forwarded)));
	put(env, st, "calls_failed", xmlrpc_int_new(env, clamp_int(sh->calls_failed)));
	put(env, st, "calls_in_flight", xmlrpc_int_new(env, clamp_int(sh->in_flight)));
	put(env, st, "stale_responses", xmlrpc_int_new(env, clamp_int(sh->stale_responses)));
	put(env, st, "unmatched_responses",
	    xmlrpc_int_new(env, clamp_int(sh->unmatched_responses)));
	put(env, st, "hellos", xmlrpc_int_new(env, clamp_int(sh->hellos)));
	put(env, st, "shutdown_notice",
	    xmlrpc_build_value(env, "{s:s,s:s,s:d}",
			       "mode", sh->notice_mode ? sh->notice_mode : "",
			       "reason", sh->notice_reason ? sh->notice_reason : "",
			       "time", sh->notice_time));
	pthread_mutex_unlock(&g->lock);
	if (env->fault_occurred) {
		xmlrpc_DECREF(st);
		return NULL;
	}
	return st;
}

xmlrpc_value *
va_guest_clipboard(xmlrpc_env *env, struct va_guest *g)
{
	pthread_mutex_lock(&g->lock);
	xmlrpc_value *text = xmlrpc_string_new_lp(env, g->sh.clip_len,
						  g->sh.clip ? g->sh.clip : "");
	xmlrpc_value *serial = env->fault_occurred ? NULL :
		xmlrpc_int_new(env, clamp_int(g->sh.clip_serial));
	double when = g->sh.clip_time;
	pthread_mutex_unlock(&g->lock);

	xmlrpc_value *v = env->fault_occurred ? NULL :
		xmlrpc_build_value(env, "{s:V,s:V,s:d}", "text", text, "serial", serial,
				   "time", when);
	if (text)
		xmlrpc_DECREF(text);
	if (serial)
		xmlrpc_DECREF(serial);
	return v;
}

xmlrpc_value *
va_guest_methods(xmlrpc_env *env, struct va_guest *g)
{
	xmlrpc_value *m;

	pthread_mutex_lock(&g->lock);
	m = g->sh.methods;
	if (m)
		xmlrpc_INCREF(m);
	pthread_mutex_unlock(&g->lock);
	return m ? m : xmlrpc_array_new(env);
}

/* ---- updates from the host.* methods (link thread) ---- */

/* Finds member key of st with type t (t2: another accepted type); faults otherwise. */
static xmlrpc_value *
member(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_type t, xmlrpc_type t2,
       const char *what, const char *source)
{
	xmlrpc_value *v = NULL;

	xmlrpc_struct_find_value(env, st, key, &v);
	if (env->fault_occurred)
		return NULL;
	if (!v) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "%s: member \"%s\" (%s) is missing", source, key, what);
		return NULL;
	}
	if (xmlrpc_value_type(v) != t && xmlrpc_value_type(v) != t2) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "%s: member \"%s\" must be %s", source, key, what);
		xmlrpc_DECREF(v);
		return NULL;
	}
	return v;
}

static int64_t
int_of(xmlrpc_env *env, xmlrpc_value *v)
{
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 x = 0;
		xmlrpc_read_i8(env, v, &x);
		return x;
	}
	int x = 0;
	xmlrpc_read_int(env, v, &x);
	return x;
}

void
va_guest_set_info(xmlrpc_env *env, struct va_guest *g, xmlrpc_value *info, const char *source)
{
	xmlrpc_value *ver = NULL, *proto = NULL, *methods = NULL, *maxf = NULL;
	const char *version = NULL;

	if (xmlrpc_value_type(info) != XMLRPC_TYPE_STRUCT) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "%s: expected a struct {version, protocol, methods, "
					       "max_frame}", source);
		return;
	}
	ver = member(env, info, "version", XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING, "a string",
		     source);
	if (!env->fault_occurred)
		proto = member(env, info, "protocol", XMLRPC_TYPE_INT, XMLRPC_TYPE_I8,
			       "an int", source);
	if (!env->fault_occurred)
		methods = member(env, info, "methods", XMLRPC_TYPE_ARRAY, XMLRPC_TYPE_ARRAY,
				 "an array of strings", source);
	if (!env->fault_occurred)
		maxf = member(env, info, "max_frame", XMLRPC_TYPE_INT, XMLRPC_TYPE_I8,
			      "an int", source);
	if (!env->fault_occurred) {
		int n = xmlrpc_array_size(env, methods);
		for (int i = 0; i < n && !env->fault_occurred; i++) {
			xmlrpc_value *item = NULL;
			xmlrpc_array_read_item(env, methods, i, &item);
			if (!env->fault_occurred && xmlrpc_value_type(item) != XMLRPC_TYPE_STRING)
				xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					"%s: member \"methods\" must be an array of strings", source);
			if (item)
				xmlrpc_DECREF(item);
		}
	}
	if (!env->fault_occurred)
		xmlrpc_read_string(env, ver, &version);
	int64_t protocol = env->fault_occurred ? 0 : int_of(env, proto);
	int64_t max_frame = env->fault_occurred ? 0 : int_of(env, maxf);
	if (!env->fault_occurred) {
		char *vcopy = strdup(version);
		pthread_mutex_lock(&g->lock);
		free(g->sh.agent_version);
		g->sh.agent_version = vcopy;
		g->sh.protocol = protocol > INT32_MAX || protocol < INT32_MIN ? 0 : (int)protocol;
		if (g->sh.methods)
			xmlrpc_DECREF(g->sh.methods);
		xmlrpc_INCREF(methods);
		g->sh.methods = methods;
		g->sh.agent_max_frame = max_frame;
		g->sh.answered = g->sh.established;
		if (!strcmp(source, "host.hello"))
			g->sh.hellos++;
		pthread_mutex_unlock(&g->lock);
		va_log_info("%s: agent %s (protocol %" PRId64 ", %d methods) from %s", g->name,
			    version, protocol, xmlrpc_array_size(env, methods), source);
	}
	if (version)
		free((void *)version);
	if (ver)
		xmlrpc_DECREF(ver);
	if (proto)
		xmlrpc_DECREF(proto);
	if (methods)
		xmlrpc_DECREF(methods);
	if (maxf)
		xmlrpc_DECREF(maxf);
}

uint64_t
va_guest_set_clipboard(struct va_guest *g, const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	uint64_t serial;

	if (!copy)
		return 0;
	memcpy(copy, text, len);
	copy[len] = '\0';
	pthread_mutex_lock(&g->lock);
	free(g->sh.clip);
	g->sh.clip = copy;
	g->sh.clip_len = len;
	g->sh.clip_time = wall_now();
	serial = ++g->sh.clip_serial;
	pthread_mutex_unlock(&g->lock);
	return serial;
}

void
va_guest_note_shutdown(struct va_guest *g, const char *mode, const char *reason)
{
	char *m = strdup(mode), *r = strdup(reason);

	pthread_mutex_lock(&g->lock);
	free(g->sh.notice_mode);
	free(g->sh.notice_reason);
	g->sh.notice_mode = m;
	g->sh.notice_reason = r;
	g->sh.notice_time = wall_now();
	pthread_mutex_unlock(&g->lock);
}
