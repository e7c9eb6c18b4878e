/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tests of va-proxy's context and guest table (host/proxy/proxy.c,
 * guest.c): real proxies (va_proxy_new, each with its loop thread and its
 * HTTP server on a unix socket) in one process, and test agents: sessions
 * over unix-listen channels on a loop thread of their own, serving
 * test.name (the agent's name) and va.ping, and keeping test.hold calls
 * unanswered until a test lets them go.  The tests talk HTTP to the
 * proxies over real sockets.
 *
 * What they show: two proxies share nothing; a guest removed while the
 * proxy runs fails its own calls in flight and leaves the other guests'
 * sessions and calls alone; a request or a proxy.* call that holds a
 * guest while it goes still ends cleanly; a guest added again is served;
 * the guests the sources want (va_proxy_set_guests: the config at a
 * reload, libvirt) change the table without touching a guest that stays.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "cunit-main.h"
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "channel.h"
#include "guest.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "xmlgate.h"

#define MAX_FRAME (1024u * 1024)
#define MAX_HELD 4

static void
msleep(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- running something on a loop's thread, and waiting for it ---- */

struct job {
	void (*fn)(void *);
	void *arg;
	int done;
};

static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cv = PTHREAD_COND_INITIALIZER;

static void
job_run(void *opaque)
{
	struct job *j = opaque;

	j->fn(j->arg);
	pthread_mutex_lock(&job_mu);
	j->done = 1;
	pthread_cond_broadcast(&job_cv);
	pthread_mutex_unlock(&job_mu);
}

static void
run_on(va_loop *l, void (*fn)(void *), void *arg)
{
	struct job j = { fn, arg, 0 };

	if (va_loop_post(l, job_run, &j) < 0)
		abort();
	pthread_mutex_lock(&job_mu);
	while (!j.done)
		pthread_cond_wait(&job_cv, &job_mu);
	pthread_mutex_unlock(&job_mu);
}

static void
nothing(void *arg)
{
	(void)arg;
}

/* ---- the test agents ---- */

struct agent {
	char name[16];
	char spec[128];   /* the proxy's side of its channel: unix:PATH */
	va_channel *ch;
	va_session *s;
	va_link *l;
	/* On the agents' thread. */
	size_t nheld;
	uint64_t held_epoch[MAX_HELD];
	char held_tag[MAX_HELD][64];
};

static struct {
	va_loop *loop;
	pthread_t th;
	xmlrpc_registry *reg;
	char dir[64];
	struct agent a, b, c;
} A;

static xmlrpc_value *
m_name(xmlrpc_env *env, xmlrpc_value *params, void *srv, void *call_info)
{
	(void)params;
	(void)srv;
	return xmlrpc_string_new(env, ((struct agent *)call_info)->name);
}

static xmlrpc_value *
m_ping(xmlrpc_env *env, xmlrpc_value *params, void *srv, void *call_info)
{
	(void)params;
	(void)srv;
	(void)call_info;
	return xmlrpc_bool_new(env, 1);
}

static void
agent_request(void *opaque, va_session *s, uint64_t epoch, const char *tag, struct va_frame *req)
{
	struct agent *ag = opaque;
	char name[VA_RPC_MAX_METHOD_NAME + 1];

	if (va_rpc_method_name(req->body, req->body_len, name) == 0 &&
	    !strcmp(name, "test.hold") && ag->nheld < MAX_HELD) {
		ag->held_epoch[ag->nheld] = epoch;
		snprintf(ag->held_tag[ag->nheld], sizeof(ag->held_tag[0]), "%s", tag);
		ag->nheld++;
		va_frame_free(req);
		return;
	}
	va_rpc_serve(s, epoch, tag, req, A.reg, ag);
}

static const struct va_session_ops agent_ops = { .request = agent_request };

static void
agent_open(void *arg)
{
	struct agent *ag = arg;
	char spec[160], err[256];
	struct va_session_config cfg = { .name = ag->name, .max_frame = MAX_FRAME };

	snprintf(spec, sizeof(spec), "unix-listen:%s/%s.sock", A.dir, ag->name);
	snprintf(ag->spec, sizeof(ag->spec), "unix:%s/%s.sock", A.dir, ag->name);
	if (va_channel_open(spec, &ag->ch, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	ag->s = va_session_new(&cfg, &agent_ops, ag);
	ag->l = ag->s ? va_link_new(A.loop, ag->ch, ag->s) : NULL;
	if (!ag->l)
		abort();
}

static void
agent_close(void *arg)
{
	struct agent *ag = arg;

	va_link_free(ag->l);
	va_session_free(ag->s);
	va_channel_free(ag->ch);
	ag->l = NULL;
	ag->s = NULL;
	ag->ch = NULL;
}

/* Answers the calls held: true. */
static void
agent_answer_held(void *arg)
{
	struct agent *ag = arg;
	xmlrpc_env env;
	struct va_buf b = { 0 };

	xmlrpc_env_init(&env);
	xmlrpc_value *v = xmlrpc_bool_new(&env, 1);
	va_rpc_serialize_response(&env, &b, v);
	xmlrpc_DECREF(v);
	for (size_t i = 0; i < ag->nheld && !env.fault_occurred; i++)
		va_rpc_reply(ag->s, ag->held_epoch[i], ag->held_tag[i], b.data, b.len);
	ag->nheld = 0;
	va_buf_free(&b);
	xmlrpc_env_clean(&env);
}

static void
agent_forget_held(void *arg)
{
	((struct agent *)arg)->nheld = 0;
}

struct held_query {
	struct agent *ag;
	size_t n;
};

static void
get_nheld(void *arg)
{
	struct held_query *q = arg;
	q->n = q->ag->nheld;
}

static size_t
agent_held(struct agent *ag)
{
	struct held_query q = { ag, 0 };
	run_on(A.loop, get_nheld, &q);
	return q.n;
}

static int
wait_held(struct agent *ag, size_t n)
{
	for (int i = 0; i < 500; i++) {
		if (agent_held(ag) == n)
			return 1;
		msleep(10);
	}
	return 0;
}

static void *
agents_main(void *arg)
{
	(void)arg;
	if (va_loop_run(A.loop) < 0)
		abort();
	return NULL;
}

static int
agents_start(void)
{
	xmlrpc_env env;

	snprintf(A.dir, sizeof(A.dir), "/tmp/test-proxy.XXXXXX");
	if (!mkdtemp(A.dir) || !(A.loop = va_loop_new()))
		return -1;
	xmlrpc_env_init(&env);
	A.reg = xmlrpc_registry_new(&env);
	xmlrpc_registry_add_method2(&env, A.reg, "test.name", m_name, "s:", "name", NULL);
	xmlrpc_registry_add_method2(&env, A.reg, "va.ping", m_ping, "b:", "ping", NULL);
	int bad = env.fault_occurred;
	xmlrpc_env_clean(&env);
	if (bad)
		return -1;
	snprintf(A.a.name, sizeof(A.a.name), "a");
	snprintf(A.b.name, sizeof(A.b.name), "b");
	snprintf(A.c.name, sizeof(A.c.name), "c");
	/* Opened before the thread runs the loop: this thread is its thread until then. */
	agent_open(&A.a);
	agent_open(&A.b);
	agent_open(&A.c);
	return pthread_create(&A.th, NULL, agents_main, NULL) ? -1 : 0;
}

static void
agents_stop_fn(void *arg)
{
	(void)arg;
	agent_close(&A.a);
	agent_close(&A.b);
	agent_close(&A.c);
	va_loop_stop(A.loop);
}

static void
agents_stop(void)
{
	run_on(A.loop, agents_stop_fn, NULL);
	pthread_join(A.th, NULL);
	va_loop_free(A.loop);
	xmlrpc_registry_free(A.reg);
	rmdir(A.dir);
}

/* ---- the proxies ---- */

struct tproxy {
	struct va_proxy *px;
	struct va_proxy_config cfg; /* kept while px lives */
	struct va_proxy_guest_opt g[3];
	char *listens[1];
	char names[3][16];
	char specs[3][128];
	char listen[160];
	char sock[100];
};

static int
tproxy_start(struct tproxy *t, const char *tag, struct agent *const *ags, size_t n)
{
	char err[512];

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		snprintf(t->names[i], sizeof(t->names[i]), "%s", ags[i]->name);
		snprintf(t->specs[i], sizeof(t->specs[i]), "%s", ags[i]->spec);
		t->g[i].name = t->names[i];
		t->g[i].spec = t->specs[i];
	}
	snprintf(t->sock, sizeof(t->sock), "%s/proxy-%s.sock", A.dir, tag);
	snprintf(t->listen, sizeof(t->listen), "unix:%s", t->sock);
	t->listens[0] = t->listen;
	t->cfg = (struct va_proxy_config){
		.guests = t->g, .nguests = n, .listens = t->listens, .nlistens = 1,
		.call_timeout_s = 30, .max_frame = MAX_FRAME,
	};
	t->px = va_proxy_new(&t->cfg, NULL, err, sizeof(err));
	if (!t->px) {
		fprintf(stderr, "va_proxy_new: %s\n", err);
		return -1;
	}
	return va_proxy_start(t->px, err, sizeof(err)) < 0 ? -1 : 0;
}

/* Stops and frees t's proxy; 0, or -1 when the stop was not clean (then it is not freed). */
static int
tproxy_stop(struct tproxy *t)
{
	if (!t->px)
		return 0;
	if (va_proxy_stop(t->px, 5000) < 0)
		return -1;
	va_proxy_free(t->px);
	t->px = NULL;
	return 0;
}

/* ---- an HTTP client ---- */

static int
http_open(const struct tproxy *t)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->sock);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The XML of a call of method with params (XML of <param>s, may be ""). */
static char *
call_xml(const char *method, const char *params)
{
	char *s = NULL;
	if (asprintf(&s, "<?xml version=\"1.0\"?><methodCall><methodName>%s</methodName>"
		     "<params>%s</params></methodCall>", method, params) < 0)
		abort();
	return s;
}

static int
http_post(int fd, const char *path, const char *method, const char *params)
{
	char head[256];
	char *body = call_xml(method, params);
	int hl = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: x\r\n"
			  "Content-Length: %zu\r\n\r\n", path, strlen(body));
	int r = send_all(fd, head, (size_t)hl) < 0 || send_all(fd, body, strlen(body)) < 0 ? -1 : 0;
	free(body);
	return r;
}

/* Reads one answer: its status, and its body (malloc'ed); 0 or -1. */
static int
http_read(int fd, int *status, char **body, unsigned timeout_ms)
{
	char buf[65536];
	size_t len = 0;
	long clen = -1;
	char *end = NULL;
	uint64_t deadline = va_now_ms() + timeout_ms;

	*body = NULL;
	buf[0] = '\0';
	for (;;) {
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strstr(buf, "Content-Length: ");
			if (sscanf(buf, "HTTP/1.1 %d", status) != 1 || !cl || cl > end)
				return -1;
			clen = strtol(cl + 16, NULL, 10);
		}
		if (end && len - (size_t)(end + 4 - buf) >= (size_t)clen)
			break;
		uint64_t now = va_now_ms();
		if (now >= deadline || len + 1 >= sizeof(buf))
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			continue;
		ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
	}
	*body = strndup(end + 4, (size_t)clen);
	return 0;
}

/* One call on a connection of its own: the status, and the body (malloc'ed). */
static int
call(const struct tproxy *t, const char *path, const char *method, const char *params,
     char **body)
{
	int status = 0, fd = http_open(t);

	*body = NULL;
	if (fd < 0 || http_post(fd, path, method, params) < 0 ||
	    http_read(fd, &status, body, 10000) < 0)
		status = -1;
	if (fd >= 0)
		close(fd);
	return status;
}

/* Reads an answer on fd that must be fault 1001 naming the guest's removal, and closes fd. */
static void
check_removed(int fd)
{
	char *body;
	int status;

	CU_ASSERT_EQUAL_FATAL(http_read(fd, &status, &body, 2000), 0);
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, ">1001<"));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "removed"));
	free(body);
	close(fd);
}

/* 1 when a call answers 200 and its body has want. */
static int
answers(const struct tproxy *t, const char *path, const char *method, const char *want)
{
	char *body;
	int ok = call(t, path, method, "", &body) == 200 && body && strstr(body, want);
	free(body);
	return ok;
}

/* Until a call to path answers 200 with want (the session is up), at most 10 s. */
static int
wait_answers(const struct tproxy *t, const char *path, const char *method, const char *want)
{
	for (int i = 0; i < 200; i++) {
		if (answers(t, path, method, want))
			return 1;
		msleep(50);
	}
	return 0;
}

/* The text of struct member name in an XML-RPC answer (first one), or "". */
static void
member(const char *xml, const char *name, char *out, size_t outlen)
{
	char key[64];
	snprintf(key, sizeof(key), "<name>%s</name>", name);
	const char *p = xml ? strstr(xml, key) : NULL;
	out[0] = '\0';
	if (!p || !(p = strstr(p, "<value>")))
		return;
	p += 7;
	while (*p == '<') { /* the type's tag, if any */
		const char *gt = strchr(p, '>');
		if (!gt)
			return;
		p = gt + 1;
	}
	size_t n = strcspn(p, "<");
	snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), p);
}

static size_t
count_of(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* ---- changing a proxy's table on its loop thread ---- */

struct table_op {
	struct va_proxy *px;
	const char *name;
	const char *spec;
	int r;
};

static void
remove_fn(void *arg)
{
	struct table_op *op = arg;
	struct va_guest *g = va_guests_find(op->px, op->name);
	op->r = g ? 0 : -1;
	if (g)
		va_guests_remove(op->px, g);
}

static void
add_fn(void *arg)
{
	struct table_op *op = arg;
	char err[256];
	op->r = va_guests_add(op->px, op->name, op->spec, err, sizeof(err));
}

static int
guest_remove(struct tproxy *t, const char *name)
{
	struct table_op op = { t->px, name, NULL, 0 };
	run_on(t->px->loop, remove_fn, &op);
	return op.r;
}

static int
guest_add(struct tproxy *t, const char *name, const char *spec)
{
	struct table_op op = { t->px, name, spec, 0 };
	run_on(t->px->loop, add_fn, &op);
	return op.r;
}

/* ---- the tests ---- */

static struct tproxy P1, P2;

static void
test_two_proxies(void)
{
	struct agent *ab[] = { &A.a, &A.b }, *c[] = { &A.c };
	char *body;

	CU_ASSERT_EQUAL_FATAL(tproxy_start(&P1, "one", ab, 2), 0);
	CU_ASSERT_EQUAL_FATAL(tproxy_start(&P2, "two", c, 1), 0);
	CU_ASSERT(wait_answers(&P1, "/RPC2/a", "test.name", "<string>a</string>"));
	CU_ASSERT(wait_answers(&P1, "/RPC2/b", "test.name", "<string>b</string>"));
	CU_ASSERT(wait_answers(&P2, "/RPC2", "test.name", "<string>c</string>"));
	/* Each knows its own guests only. */
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/c", "va.ping", "", &body), 404);
	free(body);
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/a", "proxy.guests", "", &body), 200);
	CU_ASSERT_EQUAL(count_of(body, "<name>guest</name>"), 2);
	free(body);
	CU_ASSERT_EQUAL(call(&P2, "/RPC2", "proxy.guests", "", &body), 200);
	CU_ASSERT_EQUAL(count_of(body, "<name>guest</name>"), 1);
	CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "<string>c</string>"));
	free(body);
	CU_ASSERT_EQUAL(tproxy_stop(&P2), 0);
	/* The other one goes on. */
	CU_ASSERT(answers(&P1, "/RPC2/b", "va.ping", "<boolean>1</boolean>"));
}

static void
test_remove_in_flight(void)
{
	char *body, sess0[64], sess1[64], resets0[16], resets1[16];
	int status;

	CU_ASSERT_PTR_NOT_NULL_FATAL(P1.px);
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/b", "proxy.status", "", &body), 200);
	member(body, "session", sess0, sizeof(sess0));
	member(body, "resets", resets0, sizeof(resets0));
	free(body);
	CU_ASSERT(sess0[0] != '\0');

	/* A call in flight to each guest. */
	int fa = http_open(&P1), fb = http_open(&P1);
	CU_ASSERT_FATAL(fa >= 0 && fb >= 0);
	CU_ASSERT_EQUAL(http_post(fa, "/RPC2/a", "test.hold", ""), 0);
	CU_ASSERT_EQUAL(http_post(fb, "/RPC2/b", "test.hold", ""), 0);
	CU_ASSERT_FATAL(wait_held(&A.a, 1) && wait_held(&A.b, 1));

	CU_ASSERT_EQUAL(guest_remove(&P1, "a"), 0);
	check_removed(fa); /* a's call fails at once */
	run_on(A.loop, agent_forget_held, &A.a);
	/* b's goes on, in the same session. */
	run_on(A.loop, agent_answer_held, &A.b);
	CU_ASSERT_EQUAL_FATAL(http_read(fb, &status, &body, 2000), 0);
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "<boolean>1</boolean>"));
	free(body);
	close(fb);
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/b", "proxy.status", "", &body), 200);
	member(body, "session", sess1, sizeof(sess1));
	member(body, "resets", resets1, sizeof(resets1));
	free(body);
	CU_ASSERT_STRING_EQUAL(sess1, sess0);
	CU_ASSERT_STRING_EQUAL(resets1, resets0);

	/* a is not there any more. */
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/a", "va.ping", "", &body), 404);
	CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "the guests are: b"));
	free(body);
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/b", "proxy.guests", "", &body), 200);
	CU_ASSERT_EQUAL(count_of(body, "<name>guest</name>"), 1);
	free(body);
	CU_ASSERT_EQUAL(guest_remove(&P1, "a"), -1);

	/* Added again: served again. */
	CU_ASSERT_EQUAL(guest_add(&P1, "a", A.a.spec), 0);
	CU_ASSERT_EQUAL(guest_add(&P1, "a", A.a.spec), -EEXIST);
	CU_ASSERT(wait_answers(&P1, "/RPC2/a", "test.name", "<string>a</string>"));
	CU_ASSERT(answers(&P1, "/RPC2/b", "test.name", "<string>b</string>"));
}

/* A request waiting for its body holds the guest it was routed to, which goes. */
static void
test_remove_routed(void)
{
	char *body, *xml = call_xml("va.ping", "");
	char head[256];
	int status;

	CU_ASSERT_PTR_NOT_NULL_FATAL(P1.px);
	CU_ASSERT(wait_answers(&P1, "/RPC2/a", "va.ping", "<boolean>1</boolean>"));
	/* A connection the server has taken already, then half a request for a. */
	int fd = http_open(&P1);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(http_post(fd, "/RPC2/b", "va.ping", ""), 0);
	CU_ASSERT_EQUAL_FATAL(http_read(fd, &status, &body, 2000), 0);
	free(body);
	int hl = snprintf(head, sizeof(head), "POST /RPC2/a HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
			  strlen(xml));
	CU_ASSERT_EQUAL(send_all(fd, head, (size_t)hl), 0);
	CU_ASSERT_EQUAL(send_all(fd, xml, 10), 0);
	/* Two passes of its loop: the head was read and routed in the first at the latest. */
	run_on(P1.px->loop, nothing, NULL);
	run_on(P1.px->loop, nothing, NULL);

	CU_ASSERT_EQUAL(guest_remove(&P1, "a"), 0);
	CU_ASSERT_EQUAL(send_all(fd, xml + 10, strlen(xml) - 10), 0);
	check_removed(fd);
	free(xml);
	CU_ASSERT(answers(&P1, "/RPC2/b", "va.ping", "<boolean>1</boolean>"));
	CU_ASSERT_EQUAL(guest_add(&P1, "a", A.a.spec), 0);
}

/* A proxy.* call (a long poll, on a worker thread) holds its guest, which goes. */
static void
test_remove_polled(void)
{
	char *body;
	int status;

	CU_ASSERT_PTR_NOT_NULL_FATAL(P1.px);
	CU_ASSERT(wait_answers(&P1, "/RPC2/a", "va.ping", "<boolean>1</boolean>"));
	int fe = http_open(&P1);
	CU_ASSERT_FATAL(fe >= 0);
	CU_ASSERT_EQUAL(http_post(fe, "/RPC2/a", "proxy.events",
				  "<param><value><int>-1</int></value></param>"
				  "<param><value><double>1.0</double></value></param>"), 0);
	/* Read, and handed to a worker thread, by the end of the second pass. */
	run_on(P1.px->loop, nothing, NULL);
	run_on(P1.px->loop, nothing, NULL);
	CU_ASSERT_EQUAL(guest_remove(&P1, "a"), 0);
	CU_ASSERT_EQUAL_FATAL(http_read(fe, &status, &body, 5000), 0);
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "<array>"));
	free(body);
	close(fe);
	CU_ASSERT_EQUAL(guest_add(&P1, "a", A.a.spec), 0);
	/* proxy.status on a worker thread, while a goes and comes, many times. */
	for (int i = 0; i < 20; i++) {
		int fs = http_open(&P1);
		CU_ASSERT_FATAL(fs >= 0);
		CU_ASSERT_EQUAL(http_post(fs, "/RPC2/a", "proxy.status", ""), 0);
		run_on(P1.px->loop, nothing, NULL);
		run_on(P1.px->loop, nothing, NULL);
		CU_ASSERT_EQUAL(guest_remove(&P1, "a"), 0);
		CU_ASSERT_EQUAL(http_read(fs, &status, &body, 5000), 0);
		CU_ASSERT_EQUAL(status, 200);
		CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "<name>guest</name>"));
		free(body);
		close(fs);
		CU_ASSERT_EQUAL(guest_add(&P1, "a", A.a.spec), 0);
	}
	CU_ASSERT(wait_answers(&P1, "/RPC2/a", "test.name", "<string>a</string>"));
}

/* The session id of guest name on t (proxy.status), into out. */
static void
session_of(const struct tproxy *t, const char *name, char *out, size_t outlen)
{
	char path[64], *body;

	snprintf(path, sizeof(path), "/RPC2/%s", name);
	out[0] = '\0';
	if (call(t, path, "proxy.status", "", &body) == 200)
		member(body, "session", out, outlen);
	free(body);
}

static int
set_guests(struct tproxy *t, enum va_guest_source src, const struct va_proxy_guest_opt *list,
	   size_t n, struct va_guests_change *ch)
{
	return va_proxy_set_guests_wait(t->px, src, list, n, ch);
}

#define CHANGE_IS(ch, a, r, c, k) \
	CU_ASSERT((ch).added == (a) && (ch).removed == (r) && (ch).changed == (c) && \
		  (ch).kept == (k) && (ch).failed == 0)

static void
test_sources(void)
{
	struct va_guests_change ch;
	char sb0[64], sb[64], sc0[64], sc[64], *body;
	int status;
	struct va_proxy_guest_opt cfg1[] = { { "b", A.b.spec }, { "c", A.c.spec } };
	struct va_proxy_guest_opt cfg2[] = { { "b", A.b.spec }, { "c", A.a.spec } };
	struct va_proxy_guest_opt lv1[] = { { "b", A.c.spec }, { "d", A.c.spec } };
	struct va_proxy_guest_opt lv2[] = { { "b", A.b.spec } };
	struct va_proxy_guest_opt cfg3[] = { { "c", A.a.spec } };
	struct va_proxy_guest_opt cfg0[] = { { "a", A.a.spec }, { "b", A.b.spec } };

	CU_ASSERT_PTR_NOT_NULL_FATAL(P1.px);
	CU_ASSERT_FATAL(wait_answers(&P1, "/RPC2/b", "test.name", "<string>b</string>"));
	session_of(&P1, "b", sb0, sizeof(sb0));
	CU_ASSERT(sb0[0] != '\0');

	/* The config now wants b and c: a goes (its call fails), c comes, b stays
	 * with its session and its call in flight. */
	int fa = http_open(&P1), fb = http_open(&P1);
	CU_ASSERT_FATAL(fa >= 0 && fb >= 0);
	CU_ASSERT_EQUAL(http_post(fa, "/RPC2/a", "test.hold", ""), 0);
	CU_ASSERT_EQUAL(http_post(fb, "/RPC2/b", "test.hold", ""), 0);
	CU_ASSERT_FATAL(wait_held(&A.a, 1) && wait_held(&A.b, 1));
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_CONFIG, cfg1, 2, &ch), 0);
	CHANGE_IS(ch, 1, 1, 0, 1);
	check_removed(fa);
	run_on(A.loop, agent_forget_held, &A.a);
	run_on(A.loop, agent_answer_held, &A.b);
	CU_ASSERT_EQUAL_FATAL(http_read(fb, &status, &body, 2000), 0);
	CU_ASSERT(status == 200 && strstr(body, "<boolean>1</boolean>"));
	free(body);
	close(fb);
	session_of(&P1, "b", sb, sizeof(sb));
	CU_ASSERT_STRING_EQUAL(sb, sb0);
	CU_ASSERT(wait_answers(&P1, "/RPC2/c", "test.name", "<string>c</string>"));
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/a", "va.ping", "", &body), 404);
	free(body);

	/* The same again: nothing changes. */
	session_of(&P1, "c", sc0, sizeof(sc0));
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_CONFIG, cfg1, 2, &ch), 0);
	CHANGE_IS(ch, 0, 0, 0, 2);
	session_of(&P1, "c", sc, sizeof(sc));
	CU_ASSERT_STRING_EQUAL(sc, sc0);

	/* c's channel changes (to agent a): a new session, with the other agent. */
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_CONFIG, cfg2, 2, &ch), 0);
	CHANGE_IS(ch, 0, 0, 1, 1);
	CU_ASSERT(wait_answers(&P1, "/RPC2/c", "test.name", "<string>a</string>"));
	session_of(&P1, "c", sc, sizeof(sc));
	CU_ASSERT(sc[0] != '\0' && strcmp(sc, sc0) != 0);

	/* libvirt names b too (another channel): the config's b wins; d comes. */
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_LIBVIRT, lv1, 2, &ch), 0);
	CHANGE_IS(ch, 1, 0, 0, 2);
	CU_ASSERT(answers(&P1, "/RPC2/b", "test.name", "<string>b</string>"));
	CU_ASSERT(wait_answers(&P1, "/RPC2/d", "test.name", "<string>c</string>"));
	session_of(&P1, "b", sb, sizeof(sb));
	CU_ASSERT_STRING_EQUAL(sb, sb0);

	/* libvirt wants b on its own channel, the config no longer: b stays as it
	 * is (same spec, whoever wants it), d goes. */
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_LIBVIRT, lv2, 1, &ch), 0);
	CHANGE_IS(ch, 0, 1, 0, 2);
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_CONFIG, cfg3, 1, &ch), 0);
	CHANGE_IS(ch, 0, 0, 0, 2);
	session_of(&P1, "b", sb, sizeof(sb));
	CU_ASSERT_STRING_EQUAL(sb, sb0);
	CU_ASSERT_EQUAL(call(&P1, "/RPC2/b", "proxy.guests", "", &body), 200);
	CU_ASSERT_EQUAL(count_of(body, "<name>guest</name>"), 2);
	free(body);

	/* No guest at all, then the first ones again. */
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_LIBVIRT, NULL, 0, &ch), 0);
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_CONFIG, NULL, 0, &ch), 0);
	CHANGE_IS(ch, 0, 1, 0, 0);
	CU_ASSERT_EQUAL(call(&P1, "/RPC2", "va.ping", "", &body), 404);
	free(body);
	CU_ASSERT_EQUAL(set_guests(&P1, VA_GUESTS_CONFIG, cfg0, 2, &ch), 0);
	CHANGE_IS(ch, 2, 0, 0, 0);
	CU_ASSERT(wait_answers(&P1, "/RPC2/a", "test.name", "<string>a</string>"));
	CU_ASSERT(wait_answers(&P1, "/RPC2/b", "test.name", "<string>b</string>"));
}

/* On the loop thread: 40 guests more (the table grows past 8, 16, 32),
 * every third removed, each name looked up; then all of them removed. */
struct many_op {
	struct va_proxy *px;
	const char *spec;
	int added, found_ok, missing_ok, others_ok, left;
};

static void
many_fn(void *arg)
{
	struct many_op *op = arg;
	char name[32], err[256];

	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "many-%d", i);
		op->added += va_guests_add(op->px, name, op->spec, err, sizeof(err)) == 0;
	}
	for (int i = 0; i < 40; i += 3) {
		snprintf(name, sizeof(name), "many-%d", i);
		struct va_guest *g = va_guests_find(op->px, name);
		if (g)
			va_guests_remove(op->px, g);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "many-%d", i);
		struct va_guest *g = va_guests_find(op->px, name);
		if (i % 3 == 0)
			op->missing_ok += g == NULL;
		else
			op->found_ok += g && !strcmp(va_guest_name(g), name);
	}
	/* The test's own guests are still found; a prefix or a longer name is not. */
	op->others_ok = va_guests_find(op->px, "b") != NULL && !va_guests_find(op->px, "many-") &&
			!va_guests_find(op->px, "many-10x") && !va_guests_find(op->px, "");
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "many-%d", i);
		struct va_guest *g = va_guests_find(op->px, name);
		if (g)
			va_guests_remove(op->px, g);
	}
	op->left = (int)va_guests_count(op->px);
}

static void
test_many_names(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(P1.px);
	size_t before = va_guests_count(P1.px);
	struct many_op op = { P1.px, A.c.spec, 0, 0, 0, 0, 0 };
	run_on(P1.px->loop, many_fn, &op);
	CU_ASSERT_EQUAL(op.added, 40);
	CU_ASSERT_EQUAL(op.missing_ok, 14);
	CU_ASSERT_EQUAL(op.found_ok, 26);
	CU_ASSERT_TRUE(op.others_ok);
	CU_ASSERT_EQUAL((size_t)op.left, before);
	CU_ASSERT(answers(&P1, "/RPC2/b", "test.name", "<string>b</string>"));
}

static void
test_stop(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(P1.px);
	CU_ASSERT_EQUAL(tproxy_stop(&P1), 0);
	CU_ASSERT_EQUAL(access(P1.sock, F_OK), -1); /* its socket file is gone */
	CU_ASSERT_EQUAL(access(P2.sock, F_OK), -1);
}

static const struct va_test tests[] = {
	{ "two proxies in one process, each with its own guests", test_two_proxies },
	{ "a guest removed with calls in flight; the other's session untouched; added again",
	  test_remove_in_flight },
	{ "a request waiting for its body holds a guest that goes", test_remove_routed },
	{ "a proxy.* call holds a guest that goes", test_remove_polled },
	{ "the sources' guests: kept, removed, changed; the config's name wins", test_sources },
	{ "40 guests more by name: found, removed, not found", test_many_names },
	{ "stop and free", test_stop },
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	va_log_init("test-proxy", 0, getenv("VA_TEST_DEBUG") ? VA_LOG_DEBUG : VA_LOG_ERROR);
	va_rpc_init(MAX_FRAME);
	if (agents_start() < 0) {
		fprintf(stderr, "cannot start the test agents\n");
		return 2;
	}
	int r = va_test_run("proxy", VA_TESTS(tests));
	/* After a test that failed half-way. */
	if (tproxy_stop(&P1) < 0 || tproxy_stop(&P2) < 0)
		return 1;
	agents_stop();
	return r;
}
