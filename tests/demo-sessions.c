/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * demo-sessions: two virtagent sessions exchanging XML-RPC calls over a
 * unix socket, in two processes.  The "guest" listens (unix-listen:) and
 * serves demo.* methods; the "host" connects (unix:), runs the reset
 * handshake and makes calls both ways, printing what it gets.
 *
 * usage: demo-sessions [SOCKET-PATH]
 */
#include "config.h"

#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "channel.h"
#include "link.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"


struct peer {
	const char *role;
	va_channel *ch;
	va_session *s;
	va_link *l;
	xmlrpc_registry *reg;
	int ready;
	int answers;
};

static xmlrpc_value *
m_add(xmlrpc_env *e, xmlrpc_value *params, void *srv, void *call)
{
	(void)srv;
	(void)call;
	xmlrpc_int32 a, b;
	xmlrpc_decompose_value(e, params, "(ii)", &a, &b);
	return e->fault_occurred ? NULL : xmlrpc_int_new(e, a + b);
}

static xmlrpc_value *
m_whoami(xmlrpc_env *e, xmlrpc_value *params, void *srv, void *call)
{
	(void)params;
	(void)call;
	return xmlrpc_string_new(e, ((struct peer *)srv)->role);
}

static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
	   struct va_frame *req)
{
	struct peer *p = opaque;
	/* The registry behind the gate, answered whatever happens. */
	va_rpc_serve(s, epoch, tag, req, p->reg, NULL);
}

static void
on_established(void *opaque, va_session *s)
{
	struct peer *p = opaque;
	p->ready = 1;
	printf("%s: session %s established\n", p->role, va_session_id(s));
	fflush(stdout);
}

static const struct va_session_ops ops = {
	.request = on_request,
	.established = on_established,
};

static va_loop *loop;

static void
peer_open(struct peer *p, const char *role, const char *spec)
{
	xmlrpc_env e;
	char err[256];
	struct va_session_config cfg = { .name = role };

	memset(p, 0, sizeof(*p));
	p->role = role;
	if (va_channel_open(spec, &p->ch, err, sizeof(err)) < 0)
		va_fatalx("%s", err);
	p->s = va_session_new(&cfg, &ops, p);
	if (!loop)
		loop = va_loop_new();
	p->l = p->s && loop ? va_link_new(loop, p->ch, p->s) : NULL;
	if (!p->l)
		va_fatalx("out of memory");
	xmlrpc_env_init(&e);
	p->reg = xmlrpc_registry_new(&e);
	xmlrpc_registry_add_method2(&e, p->reg, "demo.add", m_add, "i:ii", "Adds two integers.", NULL);
	xmlrpc_registry_add_method2(&e, p->reg, "demo.whoami", m_whoami, "s:", "Names the side that answers.", p);
	if (e.fault_occurred)
		va_fatalx("registry: %s", e.fault_string);
	xmlrpc_env_clean(&e);
}

static void
peer_run_once(struct peer *p, int timeout)
{
	/* Both peers are on the one loop. */
	(void)p;
	va_loop_run_once(loop, timeout);
}

static void
on_answer(void *opaque, int err, struct va_frame *resp)
{
	struct peer *p = opaque;
	xmlrpc_env e;
	xmlrpc_value *v = NULL;
	int code = 0;
	const char *msg = NULL;

	p->answers++;
	if (err) {
		printf("%s: call failed: %s\n", p->role, va_session_strerror(err));
		return;
	}
	xmlrpc_env_init(&e);
	xmlrpc_parse_response2(&e, (const char *)resp->body, resp->body_len, &v, &code, &msg);
	if (e.fault_occurred)
		printf("%s: bad response: %s\n", p->role, e.fault_string);
	else if (msg)
		printf("%s: fault %d: %s\n", p->role, code, msg);
	else if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		xmlrpc_int32 i;
		xmlrpc_read_int(&e, v, &i);
		printf("%s: got int %d\n", p->role, i);
	} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_STRING) {
		const char *str;
		xmlrpc_read_string(&e, v, &str);
		printf("%s: got string \"%s\"\n", p->role, str);
		free((void *)str);
	} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_ARRAY) {
		printf("%s: got an array of %d items\n", p->role, xmlrpc_array_size(&e, v));
	}
	fflush(stdout);
	if (v)
		xmlrpc_DECREF(v);
	if (msg)
		free((void *)msg);
	xmlrpc_env_clean(&e);
	va_frame_free(resp);
}

static void
call(struct peer *p, const char *method, const char *fmt, ...)
{
	xmlrpc_env e;
	struct va_buf b = { 0 };
	va_list ap;

	xmlrpc_env_init(&e);
	va_start(ap, fmt);
	xmlrpc_value *params;
	const char *tail;
	xmlrpc_build_value_va(&e, fmt, ap, &params, &tail);
	va_end(ap);
	va_rpc_serialize_call(&e, &b, method, params);
	xmlrpc_DECREF(params);
	printf("%s: calling %s\n", p->role, method);
	if (va_session_call(p->s, b.data, b.len, 5000, va_now_ms(), on_answer, p) < 0)
		printf("%s: call refused\n", p->role);
	va_buf_free(&b);
	xmlrpc_env_clean(&e);
}

int
main(int argc, char **argv)
{
	char path[256], spec[300];

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: demo-sessions [SOCKET-PATH]\n"
		       "Two sessions in two processes exchange XML-RPC calls over a unix socket.\n");
		return 0;
	}
	snprintf(path, sizeof(path), "%s", argc > 1 ? argv[1] : "/tmp/va-demo.sock");
	va_log_init("demo", 0, getenv("VA_DEBUG") ? VA_LOG_DEBUG : VA_LOG_WARN);
	va_rpc_init(VA_FRAME_DEFAULT_MAX_BODY);
	unlink(path);

	struct peer guest, host;
	snprintf(spec, sizeof(spec), "unix-listen:%s", path);
	peer_open(&guest, "guest", spec);
	pid_t pid = fork();
	if (pid == 0) {
		for (;;) /* served until the parent kills it */
			peer_run_once(&guest, -1);
	}
	snprintf(spec, sizeof(spec), "unix:%s", path);
	peer_open(&host, "host", spec);
	uint64_t end = va_now_ms() + 5000;
	while (!host.ready && va_now_ms() < end)
		peer_run_once(&host, 100);
	call(&host, "demo.add", "(ii)", 40, 2);
	call(&host, "demo.whoami", "()");
	call(&host, "system.listMethods", "()");
	call(&host, "demo.nosuch", "()");
	while (host.answers < 4 && va_now_ms() < end)
		peer_run_once(&host, 100);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	int ok = host.answers == 4;
	printf("%s: %d answers\n", ok ? "demo ok" : "demo FAILED", host.answers);
	va_link_free(host.l);
	va_session_free(host.s);
	va_channel_free(host.ch);
	xmlrpc_registry_free(host.reg);
	unlink(path);
	return ok ? 0 : 1;
}
