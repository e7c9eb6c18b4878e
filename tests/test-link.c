/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * End-to-end tests of common/: two sessions, each driven by a link over a
 * real channel (unix-listen on one side, unix on the other), exchanging
 * XML-RPC calls marshalled by xmlrpc-c.  Also: the connecting side goes
 * away and comes back while calls are in flight, and garbage arrives
 * before a reset.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "channel.h"
#include "link.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"

#include "cunit-main.h"

struct side {
	va_channel *ch;
	va_session *s;
	va_link *l;
	xmlrpc_registry *reg;
	int established;
};

struct call {
	int done;
	int err;
	int result;   /* demo.add */
	size_t bytes; /* demo.blob */
};

static char dir[96];
static char listen_spec[160], connect_spec[160], sock_path[128];
static xmlrpc_env env;

static xmlrpc_value *
m_add(xmlrpc_env *e, xmlrpc_value *params, void *srv, void *call)
{
	(void)srv;
	(void)call;
	xmlrpc_int32 a, b;
	xmlrpc_decompose_value(e, params, "(ii)", &a, &b);
	if (e->fault_occurred)
		return NULL;
	return xmlrpc_int_new(e, a + b);
}

static xmlrpc_value *
m_blob(xmlrpc_env *e, xmlrpc_value *params, void *srv, void *call)
{
	(void)srv;
	(void)call;
	xmlrpc_int32 n;
	xmlrpc_decompose_value(e, params, "(i)", &n);
	if (e->fault_occurred)
		return NULL;
	unsigned char *p = malloc((size_t)n);
	if (!p) {
		xmlrpc_faultf(e, "out of memory");
		return NULL;
	}
	for (xmlrpc_int32 i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7);
	xmlrpc_value *v = xmlrpc_base64_new(e, (size_t)n, p);
	free(p);
	return v;
}

static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
	   struct va_frame *req)
{
	struct side *sd = opaque;
	/* The registry behind the gate, answered whatever happens. */
	va_rpc_serve(s, epoch, tag, req, sd->reg, NULL);
}

static void
on_established(void *opaque, va_session *s)
{
	(void)s;
	((struct side *)opaque)->established++;
}

static const struct va_session_ops ops = {
	.request = on_request,
	.established = on_established,
};

/* One loop for every side of every test. */
static va_loop *
test_loop(void)
{
	static va_loop *l;
	if (!l)
		l = va_loop_new();
	return l;
}

static void
side_open(struct side *sd, const char *spec)
{
	char err[256];
	struct va_session_config cfg = { .name = spec, .ready_timeout_ms = 2000 };

	memset(sd, 0, sizeof(*sd));
	CU_ASSERT_EQUAL_FATAL(va_channel_open(spec, &sd->ch, err, sizeof(err)), 0);
	sd->s = va_session_new(&cfg, &ops, sd);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sd->s);
	sd->l = va_link_new(test_loop(), sd->ch, sd->s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sd->l);
	sd->reg = xmlrpc_registry_new(&env);
	xmlrpc_registry_add_method2(&env, sd->reg, "demo.add", m_add, "i:ii", "add", NULL);
	xmlrpc_registry_add_method2(&env, sd->reg, "demo.blob", m_blob, "6:i", "blob", NULL);
}

static void
side_close(struct side *sd)
{
	va_link_free(sd->l);
	va_session_free(sd->s);
	va_channel_free(sd->ch);
	xmlrpc_registry_free(sd->reg);
	memset(sd, 0, sizeof(*sd));
}

/* Runs both loops until *flag reaches want or timeout_ms passes. */
static int
pump(struct side **sides, int nsides, const int *flag, int want, int timeout_ms)
{
	uint64_t end = va_now_ms() + (uint64_t)timeout_ms;

	(void)sides;
	(void)nsides;
	while (!flag || *flag < want) {
		uint64_t now = va_now_ms();
		if (now >= end)
			return flag ? -1 : 0;
		/* Both sides are on the one loop. */
		va_loop_run_once(test_loop(), end - now > 50 ? 50 : (int)(end - now));
	}
	return 0;
}

static int calls_done;

static void
on_add_done(void *opaque, int err, struct va_frame *resp)
{
	struct call *c = opaque;
	c->done++;
	c->err = err;
	calls_done++;
	if (err)
		return;
	xmlrpc_env e;
	xmlrpc_value *res = NULL;
	int code = 0;
	const char *msg = NULL;
	xmlrpc_env_init(&e);
	xmlrpc_parse_response2(&e, (const char *)resp->body, resp->body_len, &res, &code, &msg);
	if (!e.fault_occurred && res) {
		if (xmlrpc_value_type(res) == XMLRPC_TYPE_INT)
			xmlrpc_read_int(&e, res, &c->result);
		else if (xmlrpc_value_type(res) == XMLRPC_TYPE_BASE64) {
			const unsigned char *p;
			size_t len;
			xmlrpc_read_base64(&e, res, &len, &p);
			c->bytes = len;
			for (size_t i = 0; i < len; i++)
				if (p[i] != (unsigned char)(i * 7)) {
					c->err = -1;
					break;
				}
			free((void *)p);
		}
		xmlrpc_DECREF(res);
	} else {
		c->err = -2;
	}
	if (msg)
		free((void *)msg);
	xmlrpc_env_clean(&e);
	va_frame_free(resp);
}

static int
start_call(struct side *sd, struct call *c, const char *method, xmlrpc_value *params)
{
	struct va_buf b = { 0 };
	va_rpc_serialize_call(&env, &b, method, params);
	int r = va_session_call(sd->s, b.data, b.len, 10000, va_now_ms(), on_add_done, c);
	va_buf_free(&b);
	va_link_flush(sd->l);
	return r;
}

static void
setup_dir(void)
{
	CU_ASSERT_EQUAL_FATAL(va_test_mkdtemp(dir, sizeof(dir), "va-test-link-"), 0);
	snprintf(sock_path, sizeof(sock_path), "%s/chan.sock", dir);
	snprintf(listen_spec, sizeof(listen_spec), "unix-listen:%s", sock_path);
	snprintf(connect_spec, sizeof(connect_spec), "unix:%s", sock_path);
}

static void
teardown_dir(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void
test_many_calls_in_flight(void)
{
	struct side a, b;
	struct side *both[2] = { &a, &b };
	enum { N = 200 };
	static struct call calls[N];

	setup_dir();
	side_open(&a, listen_spec);
	side_open(&b, connect_spec);
	CU_ASSERT_EQUAL(pump(both, 2, &b.established, 1, 5000), 0);
	memset(calls, 0, sizeof(calls));
	calls_done = 0;
	/* Half from each side, all in flight at once. */
	for (int i = 0; i < N; i++) {
		xmlrpc_value *p = xmlrpc_build_value(&env, "(ii)", i, 1000 * i);
		CU_ASSERT_EQUAL(start_call(i % 2 ? &a : &b, &calls[i], "demo.add", p), 0);
		xmlrpc_DECREF(p);
	}
	CU_ASSERT_EQUAL(pump(both, 2, &calls_done, N, 10000), 0);
	int good = 0;
	for (int i = 0; i < N; i++)
		good += calls[i].done == 1 && calls[i].err == 0 && calls[i].result == 1001 * i;
	CU_ASSERT_EQUAL(good, N);
	side_close(&b);
	side_close(&a);
	teardown_dir();
}

static void
test_large_response(void)
{
	struct side a, b;
	struct side *both[2] = { &a, &b };
	struct call c = { 0 };

	setup_dir();
	side_open(&a, listen_spec);
	side_open(&b, connect_spec);
	CU_ASSERT_EQUAL(pump(both, 2, &b.established, 1, 5000), 0);
	calls_done = 0;
	xmlrpc_value *p = xmlrpc_build_value(&env, "(i)", 6 * 1024 * 1024);
	CU_ASSERT_EQUAL(start_call(&b, &c, "demo.blob", p), 0);
	xmlrpc_DECREF(p);
	CU_ASSERT_EQUAL(pump(both, 2, &calls_done, 1, 20000), 0);
	CU_ASSERT_EQUAL(c.err, 0);
	CU_ASSERT_EQUAL(c.bytes, 6u * 1024 * 1024);
	side_close(&b);
	side_close(&a);
	teardown_dir();
}

/*
 * The connecting side disappears with calls in flight and a new one
 * connects (as a restarted host proxy does): the old calls fail, the
 * listener's session resets, and the new side's calls get their own
 * answers.
 */
static void
test_reconnect_replaces_peer(void)
{
	struct side a, b, b2;
	struct side *both[2] = { &a, &b };
	struct call c[4] = { { 0 } };

	setup_dir();
	side_open(&a, listen_spec);
	side_open(&b, connect_spec);
	CU_ASSERT_EQUAL(pump(both, 2, &b.established, 1, 5000), 0);
	calls_done = 0;
	xmlrpc_value *p = xmlrpc_build_value(&env, "(i)", 4 * 1024 * 1024);
	CU_ASSERT_EQUAL(start_call(&a, &c[0], "demo.blob", p), 0);
	xmlrpc_DECREF(p);
	/* The request is on the wire; the connecting side goes away
	 * before it reads it. */
	side_close(&b);
	both[1] = &b2;
	side_open(&b2, connect_spec);
	CU_ASSERT_EQUAL(pump(both, 2, &b2.established, 1, 5000), 0);
	CU_ASSERT_EQUAL(pump(both, 2, &calls_done, 1, 5000), 0);
	/* The call made on the old connection got a clear error, not data. */
	CU_ASSERT_EQUAL(c[0].done, 1);
	CU_ASSERT_NOT_EQUAL(c[0].err, 0);
	p = xmlrpc_build_value(&env, "(ii)", 2, 3);
	CU_ASSERT_EQUAL(start_call(&b2, &c[1], "demo.add", p), 0);
	CU_ASSERT_EQUAL(start_call(&a, &c[2], "demo.add", p), 0);
	xmlrpc_DECREF(p);
	CU_ASSERT_EQUAL(pump(both, 2, &calls_done, 3, 5000), 0);
	CU_ASSERT_EQUAL(c[1].err, 0);
	CU_ASSERT_EQUAL(c[1].result, 5);
	CU_ASSERT_EQUAL(c[2].err, 0);
	CU_ASSERT_EQUAL(c[2].result, 5);
	side_close(&b2);
	side_close(&a);
	teardown_dir();
}

/* Garbage and a torn frame from a raw client, then a real RESET: ACKed. */
static void
test_garbage_then_reset(void)
{
	struct side a;
	struct side *one[1] = { &a };
	static const char junk[] =
		"hello\r\n\xff" "POST /RPC2 HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort"
		"\xff" "GARBAGE LINE\r\n\r\n";
	static const char reset[] =
		"\xff" "RESET /RPC2 HTTP/1.1\r\nX-Virtagent-Nonce: 0123456789abcdef\r\n"
		"X-Virtagent-Max-Frame: 1024\r\nContent-Length: 0\r\n\r\n";
	char buf[4096];
	size_t got = 0;

	setup_dir();
	side_open(&a, listen_spec);
	int fd = va_test_unix_connect(sock_path);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	pump(one, 1, NULL, 0, 100);
	CU_ASSERT(write(fd, junk, sizeof(junk) - 1) == (ssize_t)(sizeof(junk) - 1));
	CU_ASSERT(write(fd, reset, sizeof(reset) - 1) == (ssize_t)(sizeof(reset) - 1));
	uint64_t end = va_now_ms() + 3000;
	while (va_now_ms() < end && !memmem(buf, got, "0123456789abcdef", 16)) {
		pump(one, 1, NULL, 0, 20);
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
	}
	buf[got] = 0;
	const char *ack = memmem(buf, got, "\xff" "HTTP/1.1 205", 13);
	CU_ASSERT_PTR_NOT_NULL(ack);
	CU_ASSERT_PTR_NOT_NULL(memmem(buf, got, "0123456789abcdef", 16));
	struct va_session_stats st;
	va_session_stats(a.s, &st);
	CU_ASSERT(st.parser.torn >= 1);
	CU_ASSERT(st.parser.errors >= 1);
	CU_ASSERT(va_session_is_ready(a.s) || st.resets_received == 1);
	close(fd);
	side_close(&a);
	teardown_dir();
}

static const struct va_test tests[] = {
	{ "200 calls in flight both ways over unix sockets", test_many_calls_in_flight },
	{ "6 MiB response over a unix socket", test_large_response },
	{ "new connection replaces the peer mid-call", test_reconnect_replaces_peer },
	{ "garbage and a torn frame, then a reset is acknowledged", test_garbage_then_reset },
};

int
main(void)
{
	va_log_init("test-link", 0, getenv("VA_TEST_DEBUG") ? VA_LOG_DEBUG : VA_LOG_ERROR);
	va_rpc_init(16u * 1024 * 1024);
	xmlrpc_env_init(&env);
	int status = va_test_run("link", VA_TESTS(tests));
	xmlrpc_env_clean(&env);
	return status;
}
