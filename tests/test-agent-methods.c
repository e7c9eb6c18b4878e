/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-agent-methods.c - CUnit tests of the guest agent's method groups
 * (agent/info.c, file*.c, clipboard.c, dmesg.c, shutdown.c, methods.c,
 * children.c) on the agent's core (core.c).
 *
 * The agent is the real core of va-agent (core.c, agent.h) with every
 * method group, built in this process without a channel: the tests
 * change its config (the RPC lists included), run its deferred functions
 * themselves, set its clock, and play the host over an in-memory session
 * that records the host.* calls.  Every call goes through the core's
 * xmlrpc-c registry as XML: serialized with xmlrpc_serialize_call2, run
 * with xmlrpc_registry_process_call2, the answer parsed with
 * xmlrpc_parse_response2.
 *
 * "Never an allocation of the size asked" is checked by watching the
 * largest single allocation during a call: through the sanitizer's
 * allocator hooks under ASan, else by wrapping glibc's malloc.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <nettle/sha2.h>

#include "agent.h"
#include "buf.h"
#include "children.h"
#include "clipboard.h"
#include "file.h"
#include "groups.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "text.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "xmlgate.h"

#include "cunit-main.h"

#define MiB (1024u * 1024)

/* --- watching the largest allocation --------------------------------------- */

static volatile size_t alloc_max;
static volatile int alloc_watching;

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
/* sanitizer/allocator_interface.h, which gcc 12 does not install. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));

static void
malloc_hook(const volatile void *p, size_t n)
{
	(void)p;
	if (alloc_watching && n > alloc_max)
		alloc_max = n;
}

static void
free_hook(const volatile void *p)
{
	(void)p;
}

static void
alloc_watch_init(void)
{
	__sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
}
#else
/* glibc lets a program replace malloc; these forward to glibc's own. */
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

static void
note_alloc(size_t n)
{
	if (alloc_watching && n > alloc_max)
		alloc_max = n;
}

void *
malloc(size_t n)
{
	note_alloc(n);
	return __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	size_t n;
	if (!__builtin_mul_overflow(a, b, &n))
		note_alloc(n);
	return __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
	note_alloc(n);
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}

static void
alloc_watch_init(void)
{
}
#endif

static void
alloc_watch_start(void)
{
	alloc_max = 0;
	alloc_watching = 1;
}

static size_t
alloc_watch_stop(void)
{
	alloc_watching = 0;
	return alloc_max;
}

/* --- a real core, its host played in memory ------------------------------------ */

/*
 * The agent is va-agent's own core (core.c) with every method group of
 * groups.c, on a loop of its own, without a channel: the test changes
 * cfg (the daemon's config, which the core reads at every use), sets the
 * core's clock (fake_now), and runs the deferred functions itself; only
 * test_dispatch runs the loop.  The host is a second session in this process: pump() carries
 * the bytes between the two, and the host records every host.* call and
 * answers it.
 */
static va_loop *loop;
static struct va_agent *agent;
static struct va_agent_config cfg;

/* The lists of a config changed by a test take effect as at a SIGHUP. */
static void
set_lists(struct va_agent *a, const struct va_agent_config *c)
{
	char err[256];
	CU_ASSERT_EQUAL(va_agent_set_lists(a, c, err, sizeof(err)), 0);
}
static uint64_t fake_now = 5000000;
static va_session *host;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

struct host_call {
	char *method;
	xmlrpc_value *params;
};

#define MAX_RECORDED 16
static struct host_call host_calls[MAX_RECORDED];
static int nhost_calls;

/*
 * The host's side: records the call and answers true.  It may run
 * outside a test (the handshake in suite_init), so it counts what goes
 * wrong in host_errors instead of asserting; the suite checks that.
 */
static unsigned host_errors;

static void
host_on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
		struct va_frame *req)
{
	xmlrpc_env env;
	char *method = NULL;
	xmlrpc_value *params = NULL;
	struct va_buf out = { 0 };

	(void)opaque;
	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, req->body, req->body_len, &method, &params);
	if (env.fault_occurred || nhost_calls == MAX_RECORDED ||
	    xmlrpc_value_type(params) != XMLRPC_TYPE_ARRAY) {
		host_errors++;
	} else {
		host_calls[nhost_calls].method = method;
		host_calls[nhost_calls].params = params;
		nhost_calls++;
		method = NULL;
		params = NULL;
	}
	xmlrpc_env_clean(&env);
	xmlrpc_env_init(&env);
	xmlrpc_value *t = xmlrpc_bool_new(&env, 1);
	va_rpc_serialize_response(&env, &out, t);
	xmlrpc_DECREF(t);
	if (env.fault_occurred || va_session_reply(s, epoch, tag, out.data, out.len) != 0)
		host_errors++;
	va_buf_free(&out);
	free(method);
	if (params)
		xmlrpc_DECREF(params);
	xmlrpc_env_clean(&env);
	va_frame_free(req);
}

static const struct va_session_ops host_ops = { .request = host_on_request };

/* Moves what from has queued to to; whether anything moved. */
static int
carry(va_session *from, va_session *to)
{
	struct iovec iov[8];
	size_t n = va_session_output_iov(from, iov, 8), total = 0;

	for (size_t i = 0; i < n; i++) {
		va_session_input(to, iov[i].iov_base, iov[i].iov_len, va_now_ms());
		total += iov[i].iov_len;
	}
	va_session_output_consume(from, total);
	return total > 0;
}

/* Carries bytes both ways between the agent a and its host h until neither has more to say. */
static void
pump_pair(struct va_agent *a, va_session *h)
{
	va_session *s = va_agent_session(a);
	while (carry(s, h) | carry(h, s))
		;
}

static void
pump(void)
{
	pump_pair(agent, host);
}

/* The host.* calls made so far (after the bytes reached the host). */
static int
host_call_count(void)
{
	pump();
	return nhost_calls;
}

static void
host_calls_clear(void)
{
	pump();
	for (int i = 0; i < nhost_calls; i++) {
		free(host_calls[i].method);
		xmlrpc_DECREF(host_calls[i].params);
	}
	nhost_calls = 0;
}

/* Runs the oldest deferred function; its delay, or -1 if there was none. */
static long
run_deferred(void)
{
	unsigned ms;
	if (va_agent_run_deferred(agent, &ms) < 0)
		return -1;
	return (long)ms;
}

static void
noop(void *arg)
{
	(void)arg;
}

/* Makes the core refuse to defer more (its cap reached); how many were added. */
static unsigned
fill_deferred(void)
{
	unsigned n = 0;
	while (n < 10000 && va_agent_defer(agent, 0, noop, NULL) == 0)
		n++;
	CU_ASSERT(n < 10000);
	return n;
}

static void
reap(void)
{
	va_children_reap(va_agent_children(agent));
}

static unsigned
children(void)
{
	return va_children_alive(va_agent_children(agent));
}

/* --- calls through the registry ---------------------------------------------- */

static char tmpdir[96];

struct reply {
	xmlrpc_value *v; /* the result, or NULL for a fault */
	int code;        /* 0, or the fault code */
	char *msg;       /* the fault string, or NULL */
};

static void
reply_free(struct reply *r)
{
	if (r->v)
		xmlrpc_DECREF(r->v);
	free(r->msg);
	r->v = NULL;
	r->msg = NULL;
}

/*
 * Where call_xml sends a call: straight to the core's registry (0), or
 * as the host, over the in-memory session, through the core's dispatch
 * (1: the refusals, the groups' interceptors, then the registry).
 */
static int via_session;
/* The raw XML of the last answer call_xml got. */
static struct va_buf last_raw;

struct answer {
	int done;
	int err;
};

static void
session_answered(void *opaque, int err, struct va_frame *resp)
{
	struct answer *an = opaque;

	an->done = 1;
	an->err = err;
	if (resp)
		CU_ASSERT_EQUAL(va_buf_append(&last_raw, resp->body, resp->body_len), 0);
	va_frame_free(resp);
}

/* Sends xml to agent a as its host h (the answer lands in last_raw). */
static void
session_send_to(struct va_agent *a, va_session *h, const char *xml, size_t len,
		struct answer *an)
{
	*an = (struct answer){ 0, 0 };
	last_raw.len = 0;
	CU_ASSERT_EQUAL_FATAL(va_session_call(h, xml, len, 60000, va_now_ms(),
					      session_answered, an), 0);
	pump_pair(a, h);
}

/* Carries bytes and runs the loop (the agents' timers) until answered, 10 s at most. */
static void
session_wait_for(struct va_agent *a, va_session *h, struct answer *an)
{
	uint64_t end = va_now_ms() + 10000;
	while (!an->done && va_now_ms() < end) {
		va_loop_run_once(loop, 10);
		pump_pair(a, h);
	}
	CU_ASSERT_TRUE_FATAL(an->done);
	CU_ASSERT_EQUAL_FATAL(an->err, 0);
}

static void
session_send(const char *xml, size_t len, struct answer *an)
{
	session_send_to(agent, host, xml, len, an);
}

static void
session_wait(struct answer *an)
{
	session_wait_for(agent, host, an);
}

/* The answer in last_raw, parsed. */
static struct reply
raw_reply(void)
{
	struct reply r = { NULL, 0, NULL };
	xmlrpc_env env;
	const char *msg = NULL;

	xmlrpc_env_init(&env);
	xmlrpc_parse_response2(&env, (const char *)last_raw.data, last_raw.len, &r.v, &r.code,
			       &msg);
	CU_ASSERT_FALSE(env.fault_occurred);
	if (env.fault_occurred)
		r.code = 1;
	if (msg) {
		r.msg = strdup(msg);
		free((void *)msg);
	}
	xmlrpc_env_clean(&env);
	return r;
}

static struct reply
call_xml(const char *xml, size_t len)
{
	if (via_session) {
		struct answer an;
		session_send(xml, len, &an);
		session_wait(&an);
	} else {
		xmlrpc_env env;
		xmlrpc_mem_block *out = NULL;
		xmlrpc_env_init(&env);
		xmlrpc_registry_process_call2(&env, va_agent_registry(agent), xml, len, NULL, &out);
		CU_ASSERT_FALSE_FATAL(env.fault_occurred);
		last_raw.len = 0;
		CU_ASSERT_EQUAL(va_buf_append(&last_raw, xmlrpc_mem_block_contents(out),
					      xmlrpc_mem_block_size(out)), 0);
		xmlrpc_mem_block_free(out);
		xmlrpc_env_clean(&env);
	}
	return raw_reply();
}

/* Calls method with params (an array; the reference is consumed). */
static struct reply
call_value(const char *method, xmlrpc_value *params)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_mem_block *xml = xmlrpc_mem_block_new(&env, 0);
	xmlrpc_serialize_call2(&env, xml, method, params, xmlrpc_dialect_i8);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	xmlrpc_DECREF(params);
	struct reply r = call_xml(xmlrpc_mem_block_contents(xml),
	    xmlrpc_mem_block_size(xml));
	xmlrpc_mem_block_free(xml);
	xmlrpc_env_clean(&env);
	return r;
}

/* Calls method with parameters built by xmlrpc_build_value(fmt, ...); fmt is "(...)". */
static struct reply
call(const char *method, const char *fmt, ...)
{
	xmlrpc_env env;
	xmlrpc_value *params = NULL;
	const char *tail = NULL;
	va_list ap;

	xmlrpc_env_init(&env);
	va_start(ap, fmt);
	xmlrpc_build_value_va(&env, fmt, ap, &params, &tail);
	va_end(ap);
	if (env.fault_occurred)
		fprintf(stderr, "\nbuilding %s %s: %s\n", method, fmt, env.fault_string);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	CU_ASSERT_EQUAL(*tail, '\0');
	xmlrpc_env_clean(&env);
	return call_value(method, params);
}

static bool
check_fault(struct reply r, int code, const char *sub, int line)
{
	bool ok = r.v == NULL && r.code == code && r.msg &&
	    (!sub || strstr(r.msg, sub));
	if (!ok)
		fprintf(stderr, "\nline %d: expected fault %d \"%s\", got %d \"%s\"\n",
		    line, code, sub ? sub : "", r.code, r.msg ? r.msg : "(no fault)");
	reply_free(&r);
	return ok;
}

#define EXPECT_FAULT(r, code, sub) CU_ASSERT_TRUE(check_fault((r), (code), (sub), __LINE__))

static bool
check_ok(struct reply *r, xmlrpc_type type, int line)
{
	bool ok = r->v && r->code == 0 && xmlrpc_value_type(r->v) == type;
	if (!ok)
		fprintf(stderr, "\nline %d: expected a result of type %d, got fault %d \"%s\"\n",
		    line, (int)type, r->code, r->msg ? r->msg : "");
	return ok;
}

#define EXPECT_OK(r, type) CU_ASSERT_TRUE_FATAL(check_ok(&(r), (type), __LINE__))

/* Struct members. */
static xmlrpc_value *
member(xmlrpc_value *s, const char *key)
{
	xmlrpc_env env;
	xmlrpc_value *m = NULL;

	xmlrpc_env_init(&env);
	xmlrpc_struct_find_value(&env, s, key, &m);
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_env_clean(&env);
	if (!m)
		fprintf(stderr, "\nmissing member %s\n", key);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	return m; /* a new reference */
}

static int64_t
as_int(xmlrpc_value *v)
{
	xmlrpc_env env;
	int64_t out = INT64_MIN;

	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		int i;
		xmlrpc_read_int(&env, v, &i);
		out = i;
	} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 i;
		xmlrpc_read_i8(&env, v, &i);
		out = i;
	} else if (xmlrpc_value_type(v) == XMLRPC_TYPE_BOOL) {
		xmlrpc_bool b;
		xmlrpc_read_bool(&env, v, &b);
		out = b;
	} else {
		CU_FAIL("not an int");
	}
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_env_clean(&env);
	return out;
}

static int64_t
member_int(xmlrpc_value *s, const char *key, xmlrpc_type want)
{
	xmlrpc_value *m = member(s, key);
	CU_ASSERT_EQUAL(xmlrpc_value_type(m), want);
	int64_t v = as_int(m);
	xmlrpc_DECREF(m);
	return v;
}

/* A malloc'd copy of a string value. */
static char *
as_str(xmlrpc_value *v, size_t *len)
{
	xmlrpc_env env;
	const char *s = NULL;
	size_t n = 0;

	xmlrpc_env_init(&env);
	CU_ASSERT_EQUAL_FATAL(xmlrpc_value_type(v), XMLRPC_TYPE_STRING);
	xmlrpc_read_string_lp(&env, v, &n, &s);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	xmlrpc_env_clean(&env);
	if (len)
		*len = n;
	return (char *)s;
}

static char *
member_str(xmlrpc_value *s, const char *key, size_t *len)
{
	xmlrpc_value *m = member(s, key);
	char *out = as_str(m, len);
	xmlrpc_DECREF(m);
	return out;
}

static unsigned char *
member_b64(xmlrpc_value *s, const char *key, size_t *len)
{
	xmlrpc_env env;
	xmlrpc_value *m = member(s, key);
	const unsigned char *data = NULL;

	xmlrpc_env_init(&env);
	CU_ASSERT_EQUAL_FATAL(xmlrpc_value_type(m), XMLRPC_TYPE_BASE64);
	xmlrpc_read_base64(&env, m, len, &data);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(m);
	return (unsigned char *)data;
}

static bool
array_has_string(xmlrpc_value *arr, const char *want)
{
	xmlrpc_env env;
	bool found = false;

	xmlrpc_env_init(&env);
	int n = xmlrpc_array_size(&env, arr);
	for (int i = 0; i < n && !found; i++) {
		xmlrpc_value *it = NULL;
		xmlrpc_array_read_item(&env, arr, (unsigned)i, &it);
		char *s = as_str(it, NULL);
		found = strcmp(s, want) == 0;
		free(s);
		xmlrpc_DECREF(it);
	}
	xmlrpc_env_clean(&env);
	return found;
}

/* The XML of a value, for exact comparisons. */
static char *
value_xml(xmlrpc_value *v)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_mem_block *mb = xmlrpc_mem_block_new(&env, 0);
	xmlrpc_serialize_value2(&env, mb, v, xmlrpc_dialect_i8);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	size_t n = xmlrpc_mem_block_size(mb);
	char *s = malloc(n + 1);
	memcpy(s, xmlrpc_mem_block_contents(mb), n);
	s[n] = '\0';
	xmlrpc_mem_block_free(mb);
	xmlrpc_env_clean(&env);
	return s;
}

/* --- files and processes ----------------------------------------------------- */

/* tmpdir/name, in a static buffer per call slot (4 rotating). */
static const char *
tpath(const char *fmt, ...)
{
	static char bufs[8][1200];
	static int slot;
	char name[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	char *b = bufs[slot++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, name);
	return b;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Waits up to 5 s for path to exist (and hold want, if not NULL). */
static bool
wait_for_file(const char *path, const char *want)
{
	for (int i = 0; i < 250; i++) {
		reap();
		FILE *f = fopen(path, "r");
		if (f) {
			char buf[256] = "";
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			if (!want || strcmp(buf, want) == 0)
				return true;
		}
		usleep(20000);
	}
	return false;
}

static void
wait_children(void)
{
	for (int i = 0; i < 250 && children() > 0; i++) {
		reap();
		usleep(20000);
	}
	CU_ASSERT_EQUAL(children(), 0);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static void
fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		p[i] = (unsigned char)rng_state;
	}
}

static void
sha256_hex(const void *data, size_t len, char hex[65])
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, sizeof(d), d);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
}

/* Opens a file through va.file.open; the handle, or -1 (and a failure). */
static int
file_open(const char *path, const char *mode)
{
	struct reply r = call("va.file.open", "(ss)", path, mode);
	int h = -1;
	if (check_ok(&r, XMLRPC_TYPE_INT, __LINE__))
		h = (int)as_int(r.v);
	else
		CU_FAIL("va.file.open failed");
	reply_free(&r);
	return h;
}

static void
file_close(int h)
{
	struct reply r = call("va.file.close", "(i)", h);
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	reply_free(&r);
}

static int64_t
file_write(int h, const void *data, size_t len)
{
	struct reply r = call("va.file.write", "(i6)", h, data, len);
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	int64_t n = as_int(r.v);
	reply_free(&r);
	return n;
}

/* va.file.read; returns the data (malloc'd) and sets *len and *eof. */
static unsigned char *
file_read(int h, int count, size_t *len, int *eof)
{
	struct reply r = call("va.file.read", "(ii)", h, count);
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	unsigned char *d = member_b64(r.v, "data", len);
	CU_ASSERT_EQUAL(member_int(r.v, "count", XMLRPC_TYPE_INT), (int64_t)*len);
	*eof = (int)member_int(r.v, "eof", XMLRPC_TYPE_BOOL);
	reply_free(&r);
	return d;
}

static int64_t
file_seek(int h, int64_t off, int whence)
{
	struct reply r = call("va.file.seek", "(iIi)", h, (xmlrpc_int64)off, whence);
	EXPECT_OK(r, XMLRPC_TYPE_I8);
	int64_t pos = as_int(r.v);
	reply_free(&r);
	return pos;
}

static char *
file_checksum(const char *path)
{
	struct reply r = call("va.file.checksum", "(s)", path);
	EXPECT_OK(r, XMLRPC_TYPE_STRING);
	char *s = as_str(r.v, NULL);
	reply_free(&r);
	return s;
}

static int
stat_mode(const char *path)
{
	struct stat st;
	CU_ASSERT_EQUAL_FATAL(lstat(path, &st), 0);
	return (int)(st.st_mode & 07777);
}

/* --- va.ping, va.echo, va.capabilities, va.info, introspection --------------- */

static void
test_ping(void)
{
	struct reply r = call("va.ping", "()");
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	CU_ASSERT_EQUAL(as_int(r.v), 1);
	reply_free(&r);
	EXPECT_FAULT(call("va.ping", "(i)", 1), XMLRPC_TYPE_ERROR,
	    "va.ping: expected no parameters");
}

static void
test_echo(void)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *dt = xmlrpc_datetime_new_sec(&env, 1700000000);
	xmlrpc_value *nil = xmlrpc_nil_new(&env);
	static const unsigned char bin[] = { 0, 1, 2, 0xff, 0xfe, '<', '&', 0 };
	xmlrpc_value *params = xmlrpc_build_value(&env,
	    "(ibdsVI6V{s:i,s:(ss{s:I,s:6})}((i(s))){})",
	    -42, (xmlrpc_bool)1, 3.25, "h\xc3\xa9llo \xe2\x9c\x93 <&> \xef\xbf\xbd",
	    dt, (xmlrpc_int64)-9000000000000LL, bin, sizeof(bin), nil,
	    "n", 7, "list", "a", "\xce\xbb", "deep", (xmlrpc_int64)1 << 40,
	    "bytes", bin, (size_t)3, 1, "x");
	if (env.fault_occurred)
		fprintf(stderr, "\nbuilding: %s\n", env.fault_string);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	xmlrpc_DECREF(dt);
	xmlrpc_DECREF(nil);

	char *want = value_xml(params);
	xmlrpc_INCREF(params);
	struct reply r = call_value("va.echo", params);
	EXPECT_OK(r, XMLRPC_TYPE_ARRAY);
	char *got = value_xml(r.v);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(xmlrpc_array_size(&env, r.v), 11);
	free(got);
	free(want);
	reply_free(&r);
	xmlrpc_DECREF(params);

	r = call("va.echo", "()");
	EXPECT_OK(r, XMLRPC_TYPE_ARRAY);
	CU_ASSERT_EQUAL(xmlrpc_array_size(&env, r.v), 0);
	reply_free(&r);
	xmlrpc_env_clean(&env);

	/* xmlrpc-c 1.33 refuses characters above U+FFFF: a fault, not a crash. */
	static const char emoji[] =
	    "<?xml version=\"1.0\"?><methodCall><methodName>va.echo</methodName>"
	    "<params><param><value><string>\xf0\x9f\x98\x80</string></value></param>"
	    "</params></methodCall>";
	r = call_xml(emoji, sizeof(emoji) - 1);
	CU_ASSERT_PTR_NULL(r.v);
	CU_ASSERT_NOT_EQUAL(r.code, 0);
	reply_free(&r);
}

static const char *const all_methods[] = {
	"va.ping", "va.echo", "va.capabilities", "va.info",
	"va.file.open", "va.file.read", "va.file.write", "va.file.seek",
	"va.file.close", "va.file.stat", "va.file.checksum",
	"va.dmesg", "va.clipboard.get", "va.clipboard.set", "va.shutdown",
	/* the guest operations (issue 14; va.time.set is opt-in, so not listed) */
	"va.net.interfaces", "va.net.routes", "va.time.get", "va.timezone",
	"va.os.info", "va.hostname", "va.users", "va.fs.info", "va.disks", "va.fs.trim",
	"va.fs.freeze", "va.fs.thaw", "va.fs.status",
	"va.cpu.list", "va.cpu.set", "va.stats",
};
#define NALL (sizeof(all_methods) / sizeof(all_methods[0]))

static void
test_capabilities(void)
{
	struct reply r = call("va.capabilities", "()");
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	char *version = member_str(r.v, "version", NULL);
	CU_ASSERT_STRING_EQUAL(version, PACKAGE_VERSION);
	free(version);
	CU_ASSERT_EQUAL(member_int(r.v, "protocol", XMLRPC_TYPE_INT), VA_AGENT_PROTOCOL);
	CU_ASSERT_EQUAL(member_int(r.v, "max_frame", XMLRPC_TYPE_INT), (int64_t)cfg.max_frame);
	xmlrpc_value *m = member(r.v, "methods");
	CU_ASSERT_EQUAL_FATAL(xmlrpc_value_type(m), XMLRPC_TYPE_ARRAY);
	for (size_t i = 0; i < NALL; i++)
		CU_ASSERT_TRUE(array_has_string(m, all_methods[i]));
	CU_ASSERT_TRUE(array_has_string(m, "system.listMethods"));
	CU_ASSERT_TRUE(array_has_string(m, "system.methodHelp"));
	CU_ASSERT_TRUE(array_has_string(m, "system.methodSignature"));
	CU_ASSERT_FALSE(array_has_string(m, "system.shutdown"));
	xmlrpc_DECREF(m);
	reply_free(&r);

	/* A method the ACL blocks is not listed. */
	cfg.block_rpcs = "va.dmesg";
	set_lists(agent, &cfg);
	r = call("va.capabilities", "()");
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	m = member(r.v, "methods");
	CU_ASSERT_FALSE(array_has_string(m, "va.dmesg"));
	CU_ASSERT_TRUE(array_has_string(m, "va.ping"));
	xmlrpc_DECREF(m);
	reply_free(&r);
	cfg.block_rpcs = "system.multicall";
	set_lists(agent, &cfg);
	r = call("va.capabilities", "()");
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	m = member(r.v, "methods");
	CU_ASSERT_FALSE(array_has_string(m, "system.multicall"));
	CU_ASSERT_TRUE(array_has_string(m, "va.dmesg"));
	xmlrpc_DECREF(m);
	reply_free(&r);
	cfg.block_rpcs = NULL;
	set_lists(agent, &cfg);

	/* The same list for host.hello. */
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *list = va_agent_methods_enabled(&env, agent);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_EQUAL(xmlrpc_array_size(&env, list), (int)NALL + 7);
	xmlrpc_DECREF(list);
	xmlrpc_env_clean(&env);

	EXPECT_FAULT(call("va.capabilities", "(s)", "x"), XMLRPC_TYPE_ERROR,
	    "va.capabilities: expected no parameters; got 1 parameter");
}

static void
test_info(void)
{
	struct utsname u;
	CU_ASSERT_EQUAL_FATAL(uname(&u), 0);

	struct reply r = call("va.info", "()");
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	char *s = member_str(r.v, "hostname", NULL);
	CU_ASSERT_STRING_EQUAL(s, u.nodename);
	free(s);
	s = member_str(r.v, "kernel", NULL);
	CU_ASSERT_STRING_EQUAL(s, u.release);
	free(s);
	s = member_str(r.v, "arch", NULL);
	CU_ASSERT_STRING_EQUAL(s, u.machine);
	free(s);
	s = member_str(r.v, "os", NULL);
	CU_ASSERT_TRUE(strlen(s) > 0);
	CU_ASSERT_PTR_NULL(strchr(s, '"'));
	free(s);
	s = member_str(r.v, "agent_version", NULL);
	CU_ASSERT_STRING_EQUAL(s, PACKAGE_VERSION);
	free(s);
	CU_ASSERT_TRUE(member_int(r.v, "uptime", XMLRPC_TYPE_INT) > 0);
	int64_t t = member_int(r.v, "time", XMLRPC_TYPE_I8);
	CU_ASSERT_TRUE(t >= (int64_t)time(NULL) - 5 && t <= (int64_t)time(NULL) + 5);
	reply_free(&r);
	EXPECT_FAULT(call("va.info", "(i)", 1), XMLRPC_TYPE_ERROR, "va.info: expected no parameters");
}

static void
check_pretty(const char *text, const char *want)
{
	char *got = va_os_release_pretty_name(text, strlen(text));
	if (!want) {
		CU_ASSERT_PTR_NULL(got);
	} else {
		CU_ASSERT_PTR_NOT_NULL(got);
		if (got && strcmp(got, want) != 0)
			fprintf(stderr, "\nos-release: got [%s], want [%s]\n", got, want);
		CU_ASSERT_TRUE(got && strcmp(got, want) == 0);
	}
	free(got);
}

static void
test_os_release(void)
{
	check_pretty("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
	    "Debian GNU/Linux 12 (bookworm)");
	check_pretty("PRETTY_NAME='Alpine Linux v3.19'\n", "Alpine Linux v3.19");
	check_pretty("PRETTY_NAME=Buildroot\n", "Buildroot");
	check_pretty("PRETTY_NAME=\"Say \\\"hi\\\" \\\\ \\$HOME \\n\"", "Say \"hi\" \\ $HOME \\n");
	check_pretty("PRETTY_NAME=My\\ OS  \n", "My OS");
	check_pretty("ID=x\n  PRETTY_NAME=\"indented\"\n", "indented");
	check_pretty("PRETTY_NAME=\"first\"\nPRETTY_NAME=\"second\"\n", "second");
	check_pretty("PRETTY_NAME=\"Quoted\" # comment\n", "Quoted");
	check_pretty("NAME=Debian\n", NULL);
	check_pretty("PRETTY_NAME=\"unterminated\n", NULL);
	check_pretty("PRETTY_NAME=\"\"\n", NULL);
	check_pretty("XPRETTY_NAME=\"no\"\n", NULL);
	check_pretty("", NULL);
	check_pretty("PRETTY_NAME=\"caf\xc3\xa9\"", "caf\xc3\xa9");
}

static void
test_introspection(void)
{
	struct reply r = call("system.listMethods", "()");
	EXPECT_OK(r, XMLRPC_TYPE_ARRAY);
	for (size_t i = 0; i < NALL; i++)
		CU_ASSERT_TRUE(array_has_string(r.v, all_methods[i]));
	reply_free(&r);
	for (size_t i = 0; i < NALL; i++) {
		r = call("system.methodHelp", "(s)", all_methods[i]);
		EXPECT_OK(r, XMLRPC_TYPE_STRING);
		char *help = as_str(r.v, NULL);
		/* Starts with the call's shape and says more than that. */
		CU_ASSERT_EQUAL(strncmp(help, all_methods[i], strlen(all_methods[i])), 0);
		CU_ASSERT_TRUE(strlen(help) > 30);
		free(help);
		reply_free(&r);
		r = call("system.methodSignature", "(s)", all_methods[i]);
		CU_ASSERT_EQUAL(r.code, 0);
		reply_free(&r);
	}
	r = call("system.methodSignature", "(s)", "va.file.open");
	EXPECT_OK(r, XMLRPC_TYPE_ARRAY);
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	CU_ASSERT_EQUAL(xmlrpc_array_size(&env, r.v), 2);
	xmlrpc_env_clean(&env);
	reply_free(&r);
}

/* --- files -------------------------------------------------------------------- */

static void
test_file_round_trip(void)
{
	const size_t size = 3 * MiB + 17;
	unsigned char *data = malloc(size);
	char want[65];
	const char *path = tpath("round.bin");

	fill_random(data, size);
	sha256_hex(data, size, want);

	int h = file_open(path, "w");
	CU_ASSERT_TRUE_FATAL(h > 0);
	for (size_t off = 0; off < size; off += MiB) {
		size_t n = size - off < MiB ? size - off : MiB;
		CU_ASSERT_EQUAL(file_write(h, data + off, n), (int64_t)n);
	}
	file_close(h);

	char *sum = file_checksum(path);
	CU_ASSERT_STRING_EQUAL(sum, want);
	free(sum);

	h = file_open(path, "rb");
	unsigned char *back = malloc(size + MiB);
	size_t got = 0;
	int eof = 0, reads = 0;
	while (!eof && reads++ < 10) {
		size_t len;
		unsigned char *d = file_read(h, (int)MiB, &len, &eof);
		CU_ASSERT_TRUE_FATAL(got + len <= size);
		memcpy(back + got, d, len);
		got += len;
		free(d);
	}
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_EQUAL(got, size);
	CU_ASSERT_EQUAL(memcmp(back, data, size), 0);

	/* Seeks, by number and by name, with int and i8 offsets. */
	CU_ASSERT_EQUAL(file_seek(h, 0, 0), 0);
	CU_ASSERT_EQUAL(file_seek(h, 100, 1), 100);
	CU_ASSERT_EQUAL(file_seek(h, -10, 2), (int64_t)size - 10);
	size_t len;
	unsigned char *d = file_read(h, 100, &len, &eof);
	CU_ASSERT_EQUAL(len, 10);
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_EQUAL(memcmp(d, data + size - 10, 10), 0);
	free(d);
	struct reply r = call("va.file.seek", "(iis)", h, 5, "set");
	EXPECT_OK(r, XMLRPC_TYPE_I8);
	CU_ASSERT_EQUAL(as_int(r.v), 5);
	reply_free(&r);
	r = call("va.file.seek", "(iis)", h, 5, "CUR");
	EXPECT_OK(r, XMLRPC_TYPE_I8);
	CU_ASSERT_EQUAL(as_int(r.v), 10);
	reply_free(&r);
	r = call("va.file.seek", "(iIs)", h, (xmlrpc_int64)5 << 32, "set");
	EXPECT_OK(r, XMLRPC_TYPE_I8);
	CU_ASSERT_EQUAL(as_int(r.v), (int64_t)5 << 32);
	reply_free(&r);
	r = call("va.file.seek", "(iis)", h, 0, "end");
	EXPECT_OK(r, XMLRPC_TYPE_I8);
	CU_ASSERT_EQUAL(as_int(r.v), (int64_t)size);
	reply_free(&r);
	/* A read of part of a file: not at the end yet. */
	file_seek(h, 0, 0);
	d = file_read(h, 5, &len, &eof);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_FALSE(eof);
	free(d);
	d = file_read(h, 0, &len, &eof);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_FALSE(eof);
	free(d);

	EXPECT_FAULT(call("va.file.seek", "(iii)", h, 0, 3), XMLRPC_TYPE_ERROR, "bad whence");
	EXPECT_FAULT(call("va.file.seek", "(iis)", h, 0, "start"), XMLRPC_TYPE_ERROR, "bad whence");
	EXPECT_FAULT(call("va.file.seek", "(iib)", h, 0, (xmlrpc_bool)1), XMLRPC_TYPE_ERROR,
	    "va.file.seek: expected (int handle, int offset");
	EXPECT_FAULT(call("va.file.seek", "(ii)", h, 0), XMLRPC_TYPE_ERROR, "got 2 parameters");
	EXPECT_FAULT(call("va.file.seek", "(iii)", h, -1, 0), XMLRPC_INTERNAL_ERROR,
	    "Invalid argument");
	/* Writing to a read-only handle is the system's error. */
	EXPECT_FAULT(call("va.file.write", "(i6)", h, "x", (size_t)1), XMLRPC_INTERNAL_ERROR,
	    "Bad file descriptor");
	file_close(h);
	free(back);
	free(data);
}

static void
test_file_checksum(void)
{
	const char *p = tpath("abc.txt");
	write_file(p, "abc", 3);
	char *sum = file_checksum(p);
	CU_ASSERT_STRING_EQUAL(sum,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	free(sum);
	p = tpath("empty.txt");
	write_file(p, "", 0);
	sum = file_checksum(p);
	CU_ASSERT_STRING_EQUAL(sum,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(sum);
	EXPECT_FAULT(call("va.file.checksum", "(s)", tpath("missing")), XMLRPC_INTERNAL_ERROR,
	    "No such file or directory");
	EXPECT_FAULT(call("va.file.checksum", "(s)", tmpdir), XMLRPC_INTERNAL_ERROR,
	    "Is a directory");
	EXPECT_FAULT(call("va.file.checksum", "(s)", "/dev/zero"), XMLRPC_TYPE_ERROR,
	    "not a regular file");
	/* Pseudo filesystems: no stable contents (/proc/kcore would hash for ever). */
	EXPECT_FAULT(call("va.file.checksum", "(s)", "/proc/self/status"), XMLRPC_TYPE_ERROR,
	    "is on procfs, not a file with stable contents");
	EXPECT_FAULT(call("va.file.checksum", "(i)", 1), XMLRPC_TYPE_ERROR,
	    "va.file.checksum: expected (string path[, int offset[, int length]]); parameter 1 is an int");
	EXPECT_FAULT(call("va.file.checksum", "()"), XMLRPC_TYPE_ERROR,
	    "va.file.checksum: expected (string path[, int offset[, int length]]); got 0 parameters");
	EXPECT_FAULT(call("va.file.checksum", "(s)", "relative/path"), XMLRPC_TYPE_ERROR,
	    "path must be absolute");
}

/*
 * Marks in fds[] (FD_SCAN entries) this process's fds that lead to path,
 * and with flagsp, returns through it the open flags (/proc/self/fdinfo)
 * of one that was not marked before (file.c runs in this process), or
 * -1 when there is none.
 */
#define FD_SCAN 4096

static void
fds_of(const char *path, bool fds[FD_SCAN], long *flagsp)
{
	char *real = realpath(path, NULL);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long fresh = -1;

	while (real && d && (e = readdir(d)) != NULL) {
		char link[PATH_MAX + 1], proc[300];
		long fd = atol(e->d_name);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(proc, link, sizeof(link) - 1);
		if (n < 0 || fd < 0 || fd >= FD_SCAN || (link[n] = '\0', strcmp(link, real) != 0))
			continue;
		if (!fds[fd])
			fresh = fd;
		fds[fd] = true;
	}
	if (flagsp) {
		*flagsp = -1;
		if (fresh >= 0) {
			char proc[64], line[256];
			snprintf(proc, sizeof(proc), "/proc/self/fdinfo/%ld", fresh);
			FILE *f = fopen(proc, "r");
			while (f && fgets(line, sizeof(line), f))
				if (sscanf(line, "flags: %lo", flagsp) == 1)
					break;
			if (f)
				fclose(f);
		}
	}
	if (d)
		closedir(d);
	free(real);
}

/*
 * Only a regular file with a size, off the pseudo filesystems, is read
 * blocking; an empty one, a procfs file (/proc/kmsg blocks), a device
 * stay non-blocking.
 */
static void
test_file_blocking_mode(void)
{
	static const struct {
		const char *path, *mode;
		int nonblock;
	} cases[] = {
		{ NULL, "r", 0 },                   /* tmpdir/sized.txt, 3 bytes */
		{ NULL, "w", 1 },                   /* tmpdir/fresh.txt, empty */
		{ "/proc/self/status", "r", 1 },
		{ "/proc/self/fdinfo/0", "r", 1 },
		{ "/dev/null", "r", 1 },
	};

	write_file(tpath("sized.txt"), "abc", 3);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = cases[i].path ? cases[i].path :
		    tpath(i == 0 ? "sized.txt" : "fresh.txt");
		static bool before[FD_SCAN];
		long fl;
		memset(before, 0, sizeof(before));
		fds_of(p, before, NULL);
		int h = file_open(p, cases[i].mode);
		if (h < 0)
			continue;
		fds_of(p, before, &fl);
		if (fl < 0 || !!(fl & O_NONBLOCK) != cases[i].nonblock)
			fprintf(stderr, "\n%s (%s): flags %#lo, expected %sO_NONBLOCK\n", p,
			    cases[i].mode, fl, cases[i].nonblock ? "" : "no ");
		CU_ASSERT(fl >= 0 && !!(fl & O_NONBLOCK) == cases[i].nonblock);
		file_close(h);
	}
}

static void
test_file_modes(void)
{
	mode_t old = umask(022);
	const char *p = tpath("created.txt");

	/* Created files get 0600 by default... */
	int h = file_open(p, "w");
	file_close(h);
	CU_ASSERT_EQUAL(stat_mode(p), 0600);
	/* ...or exactly the perm asked, whatever the umask. */
	const char *q = tpath("perm.txt");
	struct reply r = call("va.file.open", "(ssi)", q, "a+", 0666);
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	file_close((int)as_int(r.v));
	reply_free(&r);
	CU_ASSERT_EQUAL(stat_mode(q), 0666);
	q = tpath("perm2.txt");
	r = call("va.file.open", "(ssi)", q, "w+b", 0640);
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	file_close((int)as_int(r.v));
	reply_free(&r);
	CU_ASSERT_EQUAL(stat_mode(q), 0640);
	/* perm does not change an existing file. */
	r = call("va.file.open", "(ssi)", p, "w", 0644);
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	file_close((int)as_int(r.v));
	reply_free(&r);
	CU_ASSERT_EQUAL(stat_mode(p), 0600);
	umask(old);

	/* va.file.stat */
	r = call("va.file.stat", "(s)", q);
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	CU_ASSERT_EQUAL(member_int(r.v, "mode", XMLRPC_TYPE_INT), 0640);
	CU_ASSERT_EQUAL(member_int(r.v, "size", XMLRPC_TYPE_I8), 0);
	int64_t mt = member_int(r.v, "mtime", XMLRPC_TYPE_I8);
	CU_ASSERT_TRUE(mt > (int64_t)time(NULL) - 60 && mt <= (int64_t)time(NULL) + 5);
	char *type = member_str(r.v, "type", NULL);
	CU_ASSERT_STRING_EQUAL(type, "file");
	free(type);
	reply_free(&r);

	static const struct {
		const char *path;
		const char *type;
	} types[] = {
		{ "/dev/null", "char" },
		{ "/", "dir" },
		{ NULL, "link" },
		{ NULL, "fifo" },
	};
	CU_ASSERT_EQUAL(symlink("created.txt", tpath("link")), 0);
	CU_ASSERT_EQUAL(mkfifo(tpath("fifo"), 0600), 0);
	for (size_t i = 0; i < 4; i++) {
		const char *sp = types[i].path ? types[i].path : tpath("%s", types[i].type);
		r = call("va.file.stat", "(s)", sp);
		EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
		type = member_str(r.v, "type", NULL);
		CU_ASSERT_STRING_EQUAL(type, types[i].type);
		free(type);
		reply_free(&r);
	}
	/* A FIFO without a writer: open and read never wait. */
	h = file_open(tpath("fifo"), "r");
	size_t len;
	int eof;
	unsigned char *d = file_read(h, 100, &len, &eof);
	CU_ASSERT_EQUAL(len, 0);
	free(d);
	file_close(h);

	EXPECT_FAULT(call("va.file.stat", "(s)", tpath("missing")), XMLRPC_INTERNAL_ERROR,
	    "No such file or directory");
	EXPECT_FAULT(call("va.file.stat", "(ss)", p, p), XMLRPC_TYPE_ERROR,
	    "va.file.stat: expected (string path); got 2 parameters");
	EXPECT_FAULT(call("va.file.stat", "(6)", "x", (size_t)1), XMLRPC_TYPE_ERROR,
	    "parameter 1 is a base64");

	/* Bad opens. */
	EXPECT_FAULT(call("va.file.open", "(ssi)", tpath("p3"), "w", 01000), XMLRPC_INDEX_ERROR,
	    "out of range");
	EXPECT_FAULT(call("va.file.open", "(ssi)", tpath("p3"), "w", -1), XMLRPC_INDEX_ERROR,
	    "out of range");
	static const char *const bad_modes[] = { "", "x", "rw", "r++", "rbb", "wx", "+r", "R" };
	for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++)
		EXPECT_FAULT(call("va.file.open", "(ss)", tpath("p4"), bad_modes[i]),
		    XMLRPC_TYPE_ERROR, "bad mode");
	CU_ASSERT_EQUAL(access(tpath("p4"), F_OK), -1);
	EXPECT_FAULT(call("va.file.open", "(is)", 1, "r"), XMLRPC_TYPE_ERROR,
	    "va.file.open: expected (string path, string mode[, int perm]); parameter 1 is an int");
	EXPECT_FAULT(call("va.file.open", "(s)", p), XMLRPC_TYPE_ERROR, "got 1 parameter");
	EXPECT_FAULT(call("va.file.open", "(ssii)", p, "r", 1, 2), XMLRPC_TYPE_ERROR,
	    "got 4 parameters");
	EXPECT_FAULT(call("va.file.open", "(sss)", p, "r", "0600"), XMLRPC_TYPE_ERROR,
	    "parameter 3 is a string");
	EXPECT_FAULT(call("va.file.open", "(ss)", "created.txt", "r"), XMLRPC_TYPE_ERROR,
	    "path must be absolute");
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("missing"), "r"), XMLRPC_INTERNAL_ERROR,
	    "No such file or directory");
	EXPECT_FAULT(call("va.file.open", "(ss)", tmpdir, "r"), XMLRPC_INTERNAL_ERROR,
	    "Is a directory");
}

static void
test_file_handles(void)
{
	const char *p = tpath("small.txt");
	write_file(p, "0123456789", 10);
	int h = file_open(p, "r");

	/* Unknown handles. */
	EXPECT_FAULT(call("va.file.read", "(ii)", h + 1000000, 1), XMLRPC_INDEX_ERROR,
	    "unknown file handle");
	EXPECT_FAULT(call("va.file.read", "(ii)", 0, 1), XMLRPC_INDEX_ERROR,
	    "unknown file handle 0");
	EXPECT_FAULT(call("va.file.read", "(ii)", -5, 1), XMLRPC_INDEX_ERROR,
	    "unknown file handle -5");
	EXPECT_FAULT(call("va.file.close", "(I)", (xmlrpc_int64)1 << 40), XMLRPC_INDEX_ERROR,
	    "unknown file handle 1099511627776");
	EXPECT_FAULT(call("va.file.write", "(i6)", 12345, "x", (size_t)1), XMLRPC_INDEX_ERROR,
	    "unknown file handle 12345");
	EXPECT_FAULT(call("va.file.seek", "(iii)", 12345, 0, 0), XMLRPC_INDEX_ERROR,
	    "unknown file handle 12345");

	/* Wrong types and counts. */
	EXPECT_FAULT(call("va.file.read", "(si)", "1", 1), XMLRPC_TYPE_ERROR,
	    "va.file.read: expected (int handle, int count); parameter 1 is a string");
	EXPECT_FAULT(call("va.file.read", "(id)", h, 1.0), XMLRPC_TYPE_ERROR,
	    "va.file.read: expected (int handle, int count); parameter 2 is a double");
	EXPECT_FAULT(call("va.file.read", "(i)", h), XMLRPC_TYPE_ERROR,
	    "va.file.read: expected (int handle, int count); got 1 parameter");
	EXPECT_FAULT(call("va.file.write", "(is)", h, "text"), XMLRPC_TYPE_ERROR,
	    "va.file.write: expected (int handle, base64 data); parameter 2 is a string");
	EXPECT_FAULT(call("va.file.close", "()"), XMLRPC_TYPE_ERROR,
	    "va.file.close: expected (int handle); got 0 parameters");
	EXPECT_FAULT(call("va.file.close", "(n)"), XMLRPC_TYPE_ERROR, "parameter 1 is a nil");

	/* Counts: negative, above the cap, at the cap on a small file. */
	EXPECT_FAULT(call("va.file.read", "(ii)", h, -1), XMLRPC_INDEX_ERROR, "negative");
	alloc_watch_start();
	EXPECT_FAULT(call("va.file.read", "(ii)", h, (int)VA_FILE_MAX_CHUNK + 1),
	    XMLRPC_LIMIT_EXCEEDED_ERROR, "exceeds the maximum of 8388608 bytes");
	EXPECT_FAULT(call("va.file.read", "(ii)", h, INT_MAX), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "exceeds the maximum");
	EXPECT_FAULT(call("va.file.read", "(iI)", h, (xmlrpc_int64)INT64_MAX),
	    XMLRPC_LIMIT_EXCEEDED_ERROR, "exceeds the maximum");
	size_t biggest = alloc_watch_stop();
	CU_ASSERT_TRUE(biggest < 256 * 1024);
	alloc_watch_start();
	size_t len;
	int eof;
	unsigned char *d = file_read(h, (int)VA_FILE_MAX_CHUNK, &len, &eof);
	biggest = alloc_watch_stop();
	CU_ASSERT_TRUE(biggest < 256 * 1024);
	CU_ASSERT_EQUAL(len, 10);
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_EQUAL(memcmp(d, "0123456789", 10), 0);
	free(d);
	file_close(h);
	/* The handle is gone, and its number is not handed out again. */
	EXPECT_FAULT(call("va.file.close", "(i)", h), XMLRPC_INDEX_ERROR, "unknown file handle");
	int h2 = file_open(p, "r");
	CU_ASSERT_NOT_EQUAL(h2, h);
	file_close(h2);

	/* A device: a read at the cap is allowed, and gets that much. */
	h = file_open("/dev/zero", "r");
	d = file_read(h, (int)VA_FILE_MAX_CHUNK, &len, &eof);
	CU_ASSERT_EQUAL(len, VA_FILE_MAX_CHUNK);
	CU_ASSERT_FALSE(eof);
	free(d);
	file_close(h);

	/* Writes: at the cap, and one byte past it. */
	h = file_open(tpath("cap.bin"), "w");
	unsigned char *big = calloc(1, VA_FILE_MAX_CHUNK + 1);
	CU_ASSERT_EQUAL(file_write(h, big, VA_FILE_MAX_CHUNK), VA_FILE_MAX_CHUNK);
	EXPECT_FAULT(call("va.file.write", "(i6)", h, big, (size_t)VA_FILE_MAX_CHUNK + 1),
	    XMLRPC_LIMIT_EXCEEDED_ERROR, "8388609 bytes of data exceed the maximum of 8388608");
	free(big);
	CU_ASSERT_EQUAL(file_write(h, "", 0), 0);
	file_close(h);
	struct stat st;
	CU_ASSERT_EQUAL(stat(tpath("cap.bin"), &st), 0);
	CU_ASSERT_EQUAL(st.st_size, VA_FILE_MAX_CHUNK);
}

static void
test_file_handle_limit(void)
{
	const char *p = tpath("many.txt");
	int hs[VA_FILE_MAX_HANDLES];

	va_file_close_all(agent);
	write_file(p, "x", 1);
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		hs[i] = file_open(p, "r");
		CU_ASSERT_TRUE(hs[i] > 0);
		for (int k = 0; k < i; k++)
			CU_ASSERT_NOT_EQUAL(hs[k], hs[i]);
	}
	EXPECT_FAULT(call("va.file.open", "(ss)", p, "r"), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "too many open file handles (at most 64)");
	/* A full table creates nothing. */
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("new-when-full"), "w"),
	    XMLRPC_LIMIT_EXCEEDED_ERROR, "too many open file handles");
	CU_ASSERT_EQUAL(access(tpath("new-when-full"), F_OK), -1);
	file_close(hs[10]);
	int h = file_open(p, "r");
	CU_ASSERT_TRUE(h > 0);
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++)
		CU_ASSERT_NOT_EQUAL(h, hs[i]);
	va_file_close_all(agent);
	EXPECT_FAULT(call("va.file.close", "(i)", h), XMLRPC_INDEX_ERROR, "unknown file handle");
}

/*
 * 64 transfers cut mid-way (a proxy restart) leave their handles open:
 * an open then takes the least recently used handle idle for
 * VA_FILE_RECLAIM_SECONDS, and its owner hears why.
 */
static void
test_file_handle_reclaim(void)
{
	const char *p = tpath("reclaim.txt");
	int hs[VA_FILE_MAX_HANDLES];

	va_file_close_all(agent);
	write_file(p, "abc", 3);
	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		hs[i] = file_open(p, "r");
		fake_now += 10; /* hs[0] is the least recently used */
	}
	/* Used a moment ago: nothing is taken. */
	EXPECT_FAULT(call("va.file.open", "(ss)", p, "r"), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "too many open file handles");
	/* hs[1] is used now: hs[0] stays the least recently used. */
	fake_now += (uint64_t)VA_FILE_RECLAIM_SECONDS * 1000;
	struct reply r = call("va.file.read", "(ii)", hs[1], 1);
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	reply_free(&r);
	int h = file_open(p, "r");
	CU_ASSERT_TRUE(h > 0);
	EXPECT_FAULT(call("va.file.read", "(ii)", hs[0], 1), XMLRPC_INDEX_ERROR,
	    "was closed by the agent: it was idle for 5 s when all 64 handles were in use");
	r = call("va.file.read", "(ii)", hs[1], 1);
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	reply_free(&r);
	/* The next one goes to hs[2], the next least recently used. */
	int h2 = file_open(p, "r");
	CU_ASSERT_TRUE(h2 > 0);
	EXPECT_FAULT(call("va.file.close", "(i)", hs[2]), XMLRPC_INDEX_ERROR, "closed by the agent");
	va_file_close_all(agent);
}

static void
test_file_idle(void)
{
	const uint64_t idle = (uint64_t)VA_FILE_IDLE_SECONDS * 1000;
	const char *p = tpath("idle.txt");

	va_file_close_all(agent);
	CU_ASSERT_EQUAL(va_agent_sweep(agent), UINT64_MAX);
	write_file(p, "abc", 3);
	uint64_t t0 = fake_now;
	int a = file_open(p, "r");
	fake_now = t0 + 1000;
	int b = file_open(p, "r");
	CU_ASSERT_EQUAL(va_agent_sweep(agent), t0 + idle);

	/* Using a handle keeps it open. */
	fake_now = t0 + idle - 1;
	CU_ASSERT_EQUAL(va_agent_sweep(agent), t0 + idle);
	CU_ASSERT_EQUAL(file_seek(a, 0, 0), 0);
	CU_ASSERT_EQUAL(va_agent_sweep(agent), t0 + 1000 + idle);

	/* b has been idle for VA_FILE_IDLE_SECONDS: closed; a is not. */
	fake_now = t0 + 1000 + idle;
	CU_ASSERT_EQUAL(va_agent_sweep(agent), t0 + idle - 1 + idle);
	EXPECT_FAULT(call("va.file.read", "(ii)", b, 1), XMLRPC_INDEX_ERROR, "unknown file handle");
	size_t len;
	int eof;
	unsigned char *d = file_read(a, 3, &len, &eof);
	CU_ASSERT_EQUAL(len, 3);
	free(d);
	fake_now += idle;
	CU_ASSERT_EQUAL(va_agent_sweep(agent), UINT64_MAX);
	EXPECT_FAULT(call("va.file.close", "(i)", a), XMLRPC_INDEX_ERROR, "unknown file handle");
}

static char *roots[2];

static void
test_file_roots(void)
{
	char base[512], root[600], out[600];
	char *real = realpath(tmpdir, NULL);

	snprintf(base, sizeof(base), "%s/roots", real);
	free(real);
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(out, sizeof(out), "%s/outside", base);
	CU_ASSERT_EQUAL_FATAL(mkdir(base, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(root, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(out, 0700), 0);
	CU_ASSERT_EQUAL(mkdir(tpath("roots/root/sub"), 0700), 0);
	CU_ASSERT_EQUAL(mkdir(tpath("roots/rootother"), 0700), 0);
	write_file(tpath("roots/root/in.txt"), "inside", 6);
	write_file(tpath("roots/outside/secret.txt"), "secret", 6);
	write_file(tpath("roots/rootother/x.txt"), "x", 1);
	CU_ASSERT_EQUAL(symlink("../outside/secret.txt", tpath("roots/root/esc")), 0);
	CU_ASSERT_EQUAL(symlink("../outside", tpath("roots/root/escdir")), 0);
	CU_ASSERT_EQUAL(symlink("../outside/created-by-link", tpath("roots/root/dangling")), 0);
	CU_ASSERT_EQUAL(symlink("in.txt", tpath("roots/root/good")), 0);
	CU_ASSERT_EQUAL(symlink("/", tpath("roots/root/slash")), 0);

	roots[0] = root;
	roots[1] = NULL;
	cfg.file_roots = roots;
	cfg.nfile_roots = 1;

	/* Inside. */
	int h = file_open(tpath("roots/root/in.txt"), "r");
	CU_ASSERT_TRUE(h > 0);
	file_close(h);
	h = file_open(tpath("roots/root/sub/../in.txt"), "r");
	CU_ASSERT_TRUE(h > 0);
	file_close(h);
	h = file_open(tpath("roots/root/good"), "r+");
	CU_ASSERT_TRUE(h > 0);
	file_close(h);
	/* A new file under a root. */
	h = file_open(tpath("roots/root/sub/new.txt"), "w");
	CU_ASSERT_TRUE(h > 0);
	CU_ASSERT_EQUAL(file_write(h, "new", 3), 3);
	file_close(h);
	CU_ASSERT_EQUAL(stat_mode(tpath("roots/root/sub/new.txt")), 0600);
	h = file_open(tpath("roots/root/sub/../new2.txt"), "a");
	CU_ASSERT_TRUE(h > 0);
	file_close(h);
	CU_ASSERT_EQUAL(access(tpath("roots/root/new2.txt"), F_OK), 0);
	struct reply r = call("va.file.stat", "(s)", tpath("roots/root/good"));
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	char *type = member_str(r.v, "type", NULL);
	CU_ASSERT_STRING_EQUAL(type, "link");
	free(type);
	reply_free(&r);
	r = call("va.file.stat", "(s)", root);
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	reply_free(&r);
	char *sum = file_checksum(tpath("roots/root/good"));
	char want[65];
	sha256_hex("inside", 6, want);
	CU_ASSERT_STRING_EQUAL(sum, want);
	free(sum);
	/* Missing inside: the system's error, not "outside". */
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("roots/root/nope"), "r"),
	    XMLRPC_INTERNAL_ERROR, "No such file or directory");
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("roots/root/nodir/x"), "w"),
	    XMLRPC_INTERNAL_ERROR, "No such file or directory");

	/* Outside: "..", symlinks to files and directories, a sibling with the root's prefix. */
	static const char *const outside_read[] = {
		"roots/root/../outside/secret.txt",
		"roots/root/sub/../../outside/secret.txt",
		"roots/root/esc",
		"roots/root/escdir/secret.txt",
		"roots/root/slash/etc/passwd",
		"roots/outside/secret.txt",
		"roots/outside/missing",
		"roots/rootother/x.txt",
		"roots/root/..",
	};
	for (size_t i = 0; i < sizeof(outside_read) / sizeof(outside_read[0]); i++) {
		const char *op = tpath("%s", outside_read[i]);
		EXPECT_FAULT(call("va.file.open", "(ss)", op, "r"),
		    XMLRPC_REQUEST_REFUSED_ERROR, "is outside the allowed file roots");
		EXPECT_FAULT(call("va.file.stat", "(s)", op),
		    XMLRPC_REQUEST_REFUSED_ERROR, "is outside the allowed file roots");
		EXPECT_FAULT(call("va.file.checksum", "(s)", op),
		    XMLRPC_REQUEST_REFUSED_ERROR, "is outside the allowed file roots");
	}
	EXPECT_FAULT(call("va.file.open", "(ss)", "/etc/passwd", "r"),
	    XMLRPC_REQUEST_REFUSED_ERROR, "path /etc/passwd is outside the allowed file roots");
	/* Creating through an escape. */
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("roots/root/escdir/made"), "w"),
	    XMLRPC_REQUEST_REFUSED_ERROR, "outside the allowed file roots");
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("roots/root/../made"), "w"),
	    XMLRPC_REQUEST_REFUSED_ERROR, "outside the allowed file roots");
	r = call("va.file.open", "(ss)", tpath("roots/root/dangling"), "w");
	CU_ASSERT_PTR_NULL(r.v);
	CU_ASSERT_TRUE(r.code == XMLRPC_REQUEST_REFUSED_ERROR || r.code == XMLRPC_INTERNAL_ERROR);
	reply_free(&r);
	EXPECT_FAULT(call("va.file.stat", "(s)", tpath("roots/root/dangling")),
	    XMLRPC_INTERNAL_ERROR, "No such file or directory");
	CU_ASSERT_EQUAL(access(tpath("roots/outside/made"), F_OK), -1);
	CU_ASSERT_EQUAL(access(tpath("roots/made"), F_OK), -1);
	CU_ASSERT_EQUAL(access(tpath("roots/outside/created-by-link"), F_OK), -1);
	/* Names that are not files. */
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("roots/root/sub/nope/.."), "w"),
	    XMLRPC_TYPE_ERROR, "does not name a file");
	EXPECT_FAULT(call("va.file.open", "(ss)", tpath("roots/root/nope/."), "w"),
	    XMLRPC_TYPE_ERROR, "does not name a file");
	EXPECT_FAULT(call("va.file.open", "(ss)", root, "r"), XMLRPC_INTERNAL_ERROR,
	    "Is a directory");

	cfg.file_roots = NULL;
	cfg.nfile_roots = 0;
	/* Without roots, everything is allowed again. */
	h = file_open(tpath("roots/root/esc"), "r");
	CU_ASSERT_TRUE(h > 0);
	file_close(h);
}

/* --- clipboard ------------------------------------------------------------------ */

static void
clip_get(const char *text, int64_t serial, const char *origin)
{
	struct reply r = call("va.clipboard.get", "()");
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	size_t len;
	char *t = member_str(r.v, "text", &len);
	CU_ASSERT_EQUAL(len, strlen(text));
	CU_ASSERT_STRING_EQUAL(t, text);
	free(t);
	CU_ASSERT_EQUAL(member_int(r.v, "serial", XMLRPC_TYPE_INT), serial);
	char *o = member_str(r.v, "origin", NULL);
	CU_ASSERT_STRING_EQUAL(o, origin);
	free(o);
	reply_free(&r);
}

static void
test_clipboard(void)
{
	struct va_clip_view v;
	const char *utf = "h\xc3\xa9llo \xe2\x9c\x93\nline 2\r\n\t\xef\xbf\xbd";

	host_calls_clear();
	clip_get("", 0, "none");

	struct reply r = call("va.clipboard.set", "(s)", utf);
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	CU_ASSERT_EQUAL(as_int(r.v), 1);
	reply_free(&r);
	/* xmlrpc_string_new() turns the CR LF into LF. */
	clip_get("h\xc3\xa9llo \xe2\x9c\x93\nline 2\n\t\xef\xbf\xbd", 1, "host");
	CU_ASSERT_EQUAL(host_call_count(), 0);

	/* A store from the guest goes to the host. */
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "from guest", 10, "guest"), 2);
	clip_get("from guest", 2, "guest");
	CU_ASSERT_EQUAL_FATAL(host_call_count(), 1);
	CU_ASSERT_STRING_EQUAL(host_calls[0].method, "host.clipboard.set");
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	CU_ASSERT_EQUAL(xmlrpc_array_size(&env, host_calls[0].params), 1);
	xmlrpc_value *it = NULL;
	xmlrpc_array_read_item(&env, host_calls[0].params, 0, &it);
	char *s = as_str(it, NULL);
	CU_ASSERT_STRING_EQUAL(s, "from guest");
	free(s);
	xmlrpc_DECREF(it);
	xmlrpc_env_clean(&env);
	host_calls_clear();

	/* The host's last text stays for va-clip paste. */
	va_clipboard_view_host(agent, &v);
	CU_ASSERT_EQUAL(v.serial, 1);
	CU_ASSERT_STRING_EQUAL(v.origin, "host");
	CU_ASSERT_EQUAL(strncmp(v.text, "h\xc3\xa9llo", 6), 0);
	va_clipboard_view(agent, &v);
	CU_ASSERT_EQUAL(v.serial, 2);
	CU_ASSERT_EQUAL(v.len, 10);

	/* Refused: not UTF-8, control characters, over the cap, unknown origin. */
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "bad \xff", 5, "guest"), 0);
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "bad \xc3", 5, "guest"), 0);
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "nul\0x", 5, "guest"), 0);
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "bell\a", 5, "host"), 0);
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "x", 1, "elsewhere"), 0);
	CU_ASSERT_EQUAL(host_call_count(), 0);
	/* Above U+FFFF and CR LF: stored and sent exactly (common/text.h). */
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "\xf0\x9f\x98\x80\r\n", 6, "guest"), 3);
	CU_ASSERT_EQUAL_FATAL(host_call_count(), 1);
	xmlrpc_env_init(&env);
	xmlrpc_array_read_item(&env, host_calls[0].params, 0, &it);
	char *sent = NULL;
	size_t sent_len = 0;
	va_text_read(&env, it, &sent, &sent_len);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT(sent && sent_len == 6 && memcmp(sent, "\xf0\x9f\x98\x80\r\n", 6) == 0);
	free(sent);
	xmlrpc_DECREF(it);
	xmlrpc_env_clean(&env);
	host_calls_clear();
	char *big = malloc(VA_CLIPBOARD_MAX + 2);
	memset(big, 'a', VA_CLIPBOARD_MAX + 1);
	big[VA_CLIPBOARD_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(va_clipboard_store(agent, big, VA_CLIPBOARD_MAX + 1, "guest"), 0);
	EXPECT_FAULT(call("va.clipboard.set", "(s)", big), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "1048577 bytes of text exceed the maximum of 1048576");
	big[VA_CLIPBOARD_MAX] = '\0';
	r = call("va.clipboard.set", "(s)", big);
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	CU_ASSERT_EQUAL(as_int(r.v), 4);
	reply_free(&r);
	free(big);
	va_clipboard_view(agent, &v);
	CU_ASSERT_EQUAL(v.len, VA_CLIPBOARD_MAX);
	/* Invalid UTF-8 and control characters in the XML itself. */
	static const char bad_utf8[] =
	    "<?xml version=\"1.0\"?><methodCall><methodName>va.clipboard.set</methodName>"
	    "<params><param><value><string>bad \xff\xfe</string></value></param></params>"
	    "</methodCall>";
	r = call_xml(bad_utf8, sizeof(bad_utf8) - 1);
	CU_ASSERT_PTR_NULL(r.v);
	CU_ASSERT_NOT_EQUAL(r.code, 0);
	reply_free(&r);
	static const char ctl[] =
	    "<?xml version=\"1.0\"?><methodCall><methodName>va.clipboard.set</methodName>"
	    "<params><param><value><string>bell \x07</string></value></param></params>"
	    "</methodCall>";
	r = call_xml(ctl, sizeof(ctl) - 1);
	CU_ASSERT_PTR_NULL(r.v);
	CU_ASSERT_NOT_EQUAL(r.code, 0);
	reply_free(&r);
	va_clipboard_view(agent, &v);
	CU_ASSERT_EQUAL(v.serial, 4);

	EXPECT_FAULT(call("va.clipboard.set", "(i)", 5), XMLRPC_TYPE_ERROR,
	    "va.clipboard.set: expected (string text); parameter 1 is an int");
	EXPECT_FAULT(call("va.clipboard.set", "()"), XMLRPC_TYPE_ERROR, "got 0 parameters");
	EXPECT_FAULT(call("va.clipboard.set", "(ss)", "a", "b"), XMLRPC_TYPE_ERROR,
	    "got 2 parameters");
	EXPECT_FAULT(call("va.clipboard.get", "(s)", "a"), XMLRPC_TYPE_ERROR,
	    "va.clipboard.get: expected no parameters");

	/* The desktop bridge gets what the host sets, on stdin. */
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "cat > '%s'", tpath("clip.out"));
	cfg.clip_copy_command = cmd;
	r = call("va.clipboard.set", "(s)", "to the desktop \xe2\x9c\x93");
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	reply_free(&r);
	CU_ASSERT_TRUE(wait_for_file(tpath("clip.out"), "to the desktop \xe2\x9c\x93"));
	/* ...but not what the guest stores. */
	CU_ASSERT_EQUAL(unlink(tpath("clip.out")), 0);
	CU_ASSERT_TRUE(va_clipboard_store(agent, "guest text", 10, "guest") > 0);
	cfg.clip_copy_command = NULL;
	wait_children();
	CU_ASSERT_EQUAL(access(tpath("clip.out"), F_OK), -1);
	host_calls_clear();

	/* The paste bridge: va.clipboard.get takes the desktop's new text as
	 * a guest copy (the host is told), and leaves unchanged text alone.
	 * It answers when the command ended: through the core's dispatch
	 * (the group's interceptor), as the host calls it. */
	va_clipboard_view(agent, &v);
	uint64_t before = v.serial;
	cfg.clip_paste_command = "printf 'from the desktop'";
	/* The registry's method cannot wait: the buffer as it is, no command run. */
	clip_get("guest text", (int64_t)before, "guest");
	CU_ASSERT_EQUAL(host_call_count(), 0);
	via_session = 1;
	clip_get("from the desktop", (int64_t)before + 1, "guest");
	CU_ASSERT_EQUAL(host_call_count(), 1);
	if (host_call_count() == 1)
		CU_ASSERT_STRING_EQUAL(host_calls[0].method, "host.clipboard.set");
	clip_get("from the desktop", (int64_t)before + 1, "guest");
	CU_ASSERT_EQUAL(host_call_count(), 1);
	/* A failing or hanging command leaves the buffer as it was. */
	cfg.clip_paste_command = "exit 3";
	clip_get("from the desktop", (int64_t)before + 1, "guest");
	cfg.clip_paste_command = "sleep 5";
	time_t t0 = time(NULL);
	clip_get("from the desktop", (int64_t)before + 1, "guest");
	CU_ASSERT(time(NULL) - t0 < 5);
	/* One that closes its output and keeps running is not waited for. */
	cfg.clip_paste_command = "exec >&-; sleep 60";
	t0 = time(NULL);
	clip_get("from the desktop", (int64_t)before + 1, "guest");
	CU_ASSERT(time(NULL) - t0 < 5);
	/* Parameters: the registry's fault, as without a command. */
	EXPECT_FAULT(call("va.clipboard.get", "(s)", "a"), XMLRPC_TYPE_ERROR,
	    "va.clipboard.get: expected no parameters");
	via_session = 0;
	cfg.clip_paste_command = NULL;
	host_calls_clear();

	va_clipboard_clear(agent);
	clip_get("", 0, "none");
	va_clipboard_view_host(agent, &v);
	CU_ASSERT_EQUAL(v.serial, 0);
	CU_ASSERT_EQUAL(v.len, 0);
	/* Serials keep counting after a free. */
	CU_ASSERT_EQUAL(va_clipboard_store(agent, "again", 5, "host"), 8);
	va_clipboard_clear(agent);
}

/* --- dmesg ------------------------------------------------------------------------ */

static void
test_dmesg(void)
{
	struct reply r = call("va.dmesg", "()");
	if (r.v) {
		size_t len;
		char *s = as_str(r.v, &len);
		CU_ASSERT_TRUE(len <= VA_DMESG_DEFAULT);
		const char *why;
		CU_ASSERT_EQUAL(va_text_check(s, len, &why), len);
		free(s);
		reply_free(&r);
		r = call("va.dmesg", "(i)", 100);
		EXPECT_OK(r, XMLRPC_TYPE_STRING);
		s = as_str(r.v, &len);
		CU_ASSERT_TRUE(len <= 100);
		free(s);
		reply_free(&r);
		r = call("va.dmesg", "(i)", (int)VA_DMESG_MAX);
		EXPECT_OK(r, XMLRPC_TYPE_STRING);
		reply_free(&r);
	} else {
		/* In a container klogctl answers EPERM. */
		fprintf(stderr, "\n  (va.dmesg: %s)\n", r.msg);
		CU_ASSERT_EQUAL(r.code, XMLRPC_INTERNAL_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "va.dmesg: cannot read the kernel log: "));
		reply_free(&r);
	}
	EXPECT_FAULT(call("va.dmesg", "(i)", 0), XMLRPC_INDEX_ERROR, "must be positive");
	EXPECT_FAULT(call("va.dmesg", "(i)", -1), XMLRPC_INDEX_ERROR, "must be positive");
	EXPECT_FAULT(call("va.dmesg", "(i)", (int)VA_DMESG_MAX + 1), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "max_bytes 1048577 exceeds the maximum of 1048576");
	EXPECT_FAULT(call("va.dmesg", "(I)", (xmlrpc_int64)1 << 40), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "exceeds the maximum");
	EXPECT_FAULT(call("va.dmesg", "(s)", "100"), XMLRPC_TYPE_ERROR,
	    "va.dmesg: expected ([int max_bytes]); parameter 1 is a string");
	EXPECT_FAULT(call("va.dmesg", "(ii)", 1, 2), XMLRPC_TYPE_ERROR, "got 2 parameters");
}

/* --- shutdown ---------------------------------------------------------------------- */

static void
check_notice(const char *mode, int delay)
{
	CU_ASSERT_EQUAL_FATAL(host_call_count(), 1);
	CU_ASSERT_STRING_EQUAL(host_calls[0].method, "host.shutdown_notice");
	char *m = NULL, *reason = NULL, want[96];
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_decompose_value(&env, host_calls[0].params, "(ss)", &m, &reason);
	CU_ASSERT_FALSE(env.fault_occurred);
	if (!env.fault_occurred) {
		CU_ASSERT_STRING_EQUAL(m, mode);
		snprintf(want, sizeof(want), "va.shutdown from the host, in %d s", delay);
		CU_ASSERT_STRING_EQUAL(reason, want);
		free(m);
		free(reason);
	}
	xmlrpc_env_clean(&env);
	host_calls_clear();
}

static void
test_shutdown(void)
{
	char cmd[PATH_MAX + 128];
	snprintf(cmd, sizeof(cmd), "touch \"%s/$VA_SHUTDOWN_MODE-$VA_SHUTDOWN_DELAY\"", tmpdir);
	cfg.shutdown_command = cmd;
	host_calls_clear();

	struct reply r = call("va.shutdown", "(si)", "reboot", 1);
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	CU_ASSERT_EQUAL(as_int(r.v), 1);
	reply_free(&r);
	/* Nothing happens before the reply is out. */
	CU_ASSERT_EQUAL(host_call_count(), 0);
	CU_ASSERT_EQUAL_FATAL(va_agent_deferred(agent), 1);
	CU_ASSERT_EQUAL(run_deferred(), 0);
	check_notice("reboot", 1);
	CU_ASSERT_EQUAL(access(tpath("reboot-1"), F_OK), -1);
	CU_ASSERT_EQUAL_FATAL(va_agent_deferred(agent), 1);
	/* The notice gets time to leave, then the delay. */
	CU_ASSERT_EQUAL(run_deferred(), 1200);
	CU_ASSERT_TRUE(wait_for_file(tpath("reboot-1"), NULL));

	r = call("va.shutdown", "(s)", "halt");
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	reply_free(&r);
	CU_ASSERT_EQUAL(run_deferred(), 0);
	check_notice("halt", 0);
	CU_ASSERT_EQUAL(run_deferred(), 200);
	CU_ASSERT_TRUE(wait_for_file(tpath("halt-0"), NULL));
	r = call("va.shutdown", "(sI)", "powerdown", (xmlrpc_int64)3600);
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	reply_free(&r);
	CU_ASSERT_EQUAL(run_deferred(), 0);
	check_notice("powerdown", 3600);
	CU_ASSERT_EQUAL(run_deferred(), 200 + 3600 * 1000);
	CU_ASSERT_TRUE(wait_for_file(tpath("powerdown-3600"), NULL));

	/* Bad calls change nothing. */
	EXPECT_FAULT(call("va.shutdown", "(s)", "explode"), XMLRPC_TYPE_ERROR,
	    "bad mode \"explode\" (halt, powerdown or reboot)");
	EXPECT_FAULT(call("va.shutdown", "(s)", "Reboot"), XMLRPC_TYPE_ERROR, "bad mode");
	EXPECT_FAULT(call("va.shutdown", "(si)", "reboot", -1), XMLRPC_INDEX_ERROR,
	    "delay -1 is out of range (0 to 3600 seconds)");
	EXPECT_FAULT(call("va.shutdown", "(si)", "reboot", 3601), XMLRPC_INDEX_ERROR,
	    "out of range");
	EXPECT_FAULT(call("va.shutdown", "(i)", 1), XMLRPC_TYPE_ERROR,
	    "va.shutdown: expected (string mode[, int delay_s]); parameter 1 is an int");
	EXPECT_FAULT(call("va.shutdown", "(ss)", "halt", "5"), XMLRPC_TYPE_ERROR,
	    "parameter 2 is a string");
	EXPECT_FAULT(call("va.shutdown", "()"), XMLRPC_TYPE_ERROR, "got 0 parameters");
	EXPECT_FAULT(call("va.shutdown", "(sii)", "halt", 1, 2), XMLRPC_TYPE_ERROR,
	    "got 3 parameters");
	CU_ASSERT_EQUAL(va_agent_deferred(agent), 0);
	CU_ASSERT_EQUAL(host_call_count(), 0);

	/* Pending shutdowns are capped; when the loop refuses, the call fails. */
	for (int i = 0; i < 4; i++) {
		r = call("va.shutdown", "(si)", "halt", 10 + i);
		EXPECT_OK(r, XMLRPC_TYPE_BOOL);
		reply_free(&r);
	}
	EXPECT_FAULT(call("va.shutdown", "(s)", "halt"), XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "already pending");
	while (run_deferred() >= 0)
		;
	host_calls_clear();
	CU_ASSERT_TRUE(wait_for_file(tpath("halt-13"), NULL));
	unsigned filled = fill_deferred();
	EXPECT_FAULT(call("va.shutdown", "(s)", "halt"), XMLRPC_INTERNAL_ERROR,
	    "cannot schedule");
	while (filled-- > 0)
		CU_ASSERT_EQUAL(run_deferred(), 0);
	r = call("va.shutdown", "(s)", "halt");
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	reply_free(&r);
	while (run_deferred() >= 0)
		;
	host_calls_clear();
	wait_children();
	cfg.shutdown_command = "true";
}

/* --- registration ---------------------------------------------------------------------- */

/*
 * The groups exec and accounts are opt-in: off (not listed, a fault that
 * names the switch) until the enable list names them; then va.exec.*
 * through the registry, whose read never waits.
 */
static void
test_exec_opt_in(void)
{
	struct reply r = call("va.capabilities", "()");
	EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
	xmlrpc_value *m = member(r.v, "methods");
	CU_ASSERT_FALSE(array_has_string(m, "va.exec.start"));
	CU_ASSERT_FALSE(array_has_string(m, "va.exec.read"));
	CU_ASSERT_FALSE(array_has_string(m, "va.user.set_password"));
	CU_ASSERT_FALSE(array_has_string(m, "va.ssh.keys.get"));
	xmlrpc_DECREF(m);
	reply_free(&r);
	EXPECT_FAULT(call("va.exec.start", "(())"), XMLRPC_NO_SUCH_METHOD_ERROR, "--enable-exec");
	EXPECT_FAULT(call("va.exec.list", "()"), XMLRPC_NO_SUCH_METHOD_ERROR,
		     "exec = yes in va-agent.conf");
	EXPECT_FAULT(call("va.user.set_password", "(ss)", "root", "x"), XMLRPC_NO_SUCH_METHOD_ERROR,
		     "--enable-accounts");
	EXPECT_FAULT(call("va.ssh.keys.get", "(s)", "root"), XMLRPC_NO_SUCH_METHOD_ERROR,
		     "accounts = yes");

	cfg.enable_rpcs = "va.exec.*";
	set_lists(agent, &cfg);
	r = call("va.exec.list", "()");
	EXPECT_OK(r, XMLRPC_TYPE_ARRAY);
	reply_free(&r);
	EXPECT_FAULT(call("va.exec.start", "(())"), XMLRPC_TYPE_ERROR, "argv has 0 words");
	EXPECT_FAULT(call("va.exec.read", "(i)", 999), XMLRPC_INDEX_ERROR, "no command 999");
	EXPECT_FAULT(call("va.ssh.keys.get", "(s)", "root"), XMLRPC_NO_SUCH_METHOD_ERROR,
		     "--enable-accounts");
	r = call("va.exec.start", "((sss))", "sh", "-c", "printf out; printf err >&2; exit 7");
	EXPECT_OK(r, XMLRPC_TYPE_INT);
	int id = 0;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_read_int(&env, r.v, &id);
	reply_free(&r);
	/* The registry's read answers at once: the loop runs the pipes in between. */
	struct va_buf out = { 0 }, err = { 0 };
	int done = 0, code = -1;
	uint64_t end = va_now_ms() + 10000;
	while (!done && va_now_ms() < end) {
		va_loop_run_once(loop, 10);
		r = call("va.exec.read", "(iii)", id, 65536, 5000);
		EXPECT_OK(r, XMLRPC_TYPE_STRUCT);
		xmlrpc_value *o = member(r.v, "stdout"), *e = member(r.v, "stderr");
		const unsigned char *d = NULL;
		size_t n = 0;
		xmlrpc_read_base64(&env, o, &n, &d);
		va_buf_append(&out, d, n);
		free((void *)d);
		xmlrpc_read_base64(&env, e, &n, &d);
		va_buf_append(&err, d, n);
		free((void *)d);
		xmlrpc_DECREF(o);
		xmlrpc_DECREF(e);
		xmlrpc_bool ex = 0, eo = 0, ee = 0;
		xmlrpc_decompose_value(&env, r.v, "{s:b,s:b,s:b,*}", "exited", &ex, "stdout_eof", &eo,
				       "stderr_eof", &ee);
		if (ex && eo && ee) {
			done = 1;
			code = (int)member_int(r.v, "exit_code", XMLRPC_TYPE_INT);
		}
		reply_free(&r);
	}
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_env_clean(&env);
	CU_ASSERT_TRUE(done);
	CU_ASSERT_EQUAL(code, 7);
	CU_ASSERT_TRUE(out.len == 3 && memcmp(out.data, "out", 3) == 0);
	CU_ASSERT_TRUE(err.len == 3 && memcmp(err.data, "err", 3) == 0);
	va_buf_free(&out);
	va_buf_free(&err);
	/* The read that delivered the end forgot it. */
	EXPECT_FAULT(call("va.exec.read", "(i)", id), XMLRPC_INDEX_ERROR, "no command");
	cfg.enable_rpcs = NULL;
	set_lists(agent, &cfg);
}

static void
test_register_twice(void)
{
	/* A second registry (the daemon after a reload) does not grow the list. */
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_registry *r2 = va_agent_registry_build(&env, agent);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r2);
	xmlrpc_value *list = va_agent_methods_enabled(&env, agent);
	CU_ASSERT_EQUAL(xmlrpc_array_size(&env, list), (int)NALL + 7);
	xmlrpc_DECREF(list);
	xmlrpc_registry_free(r2);
	xmlrpc_env_clean(&env);
}

/* --- the core's dispatch, over the session ------------------------------------------- */

static void
test_dispatch(void)
{
	/* The loop runs here: the real clock, and none of the earlier handles. */
	va_agent_set_clock(agent, NULL, NULL);
	va_file_close_all(agent);
	via_session = 1;

	struct reply r = call("va.ping", "()");
	EXPECT_OK(r, XMLRPC_TYPE_BOOL);
	reply_free(&r);

	/* Refused before any interceptor, whether a group intercepts the method
	 * or not: here the file group would answer them all. */
	enum { N = 300000 };
	const char *p = tpath("dispatch.bin");
	unsigned char *data = malloc(N);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	fill_random(data, N);
	write_file(p, data, N);
	int h = file_open(p, "r+");
	cfg.block_rpcs = "va.ping, va.file.read, va.file.write, va.file.checksum";
	set_lists(agent, &cfg);
	EXPECT_FAULT(call("va.ping", "()"), XMLRPC_NO_SUCH_METHOD_ERROR,
	    "method va.ping is disabled on this guest");
	EXPECT_FAULT(call("va.file.read", "(ii)", h, 1), XMLRPC_NO_SUCH_METHOD_ERROR,
	    "method va.file.read is disabled on this guest");
	EXPECT_FAULT(call("va.file.write", "(i6)", h, "x", (size_t)1), XMLRPC_NO_SUCH_METHOD_ERROR,
	    "method va.file.write is disabled on this guest");
	EXPECT_FAULT(call("va.file.checksum", "(s)", p), XMLRPC_NO_SUCH_METHOD_ERROR,
	    "method va.file.checksum is disabled on this guest");
	cfg.block_rpcs = NULL;
	set_lists(agent, &cfg);
	EXPECT_FAULT(call("system.multicall", "(())"), XMLRPC_NO_SUCH_METHOD_ERROR,
	    "system.multicall is not available");

	/* The fast path (the group "file" intercepts reads and writes). */
	size_t len;
	int eof;
	unsigned char *d = file_read(h, N / 2, &len, &eof);
	CU_ASSERT(len == N / 2 && !eof && memcmp(d, data, len) == 0);
	free(d);
	/* Its answer is the registry's, byte for byte. */
	struct va_buf fast = { 0 };
	CU_ASSERT_EQUAL(va_buf_append(&fast, last_raw.data, last_raw.len), 0);
	via_session = 0;
	CU_ASSERT_EQUAL(file_seek(h, 0, 0), 0);
	d = file_read(h, N / 2, &len, &eof);
	free(d);
	CU_ASSERT(last_raw.len == fast.len && memcmp(last_raw.data, fast.data, fast.len) == 0);
	va_buf_free(&fast);
	via_session = 1;
	CU_ASSERT_EQUAL(file_seek(h, -7, 2), N - 7);
	CU_ASSERT_EQUAL(file_write(h, "written", 7), 7);
	CU_ASSERT_EQUAL(file_seek(h, -7, 2), N - 7);
	d = file_read(h, 100, &len, &eof);
	CU_ASSERT(len == 7 && eof && memcmp(d, "written", 7) == 0);
	free(d);
	/* A call the interceptor leaves alone (no such handle): the registry's fault. */
	EXPECT_FAULT(call("va.file.read", "(ii)", h + 1, 1), XMLRPC_INDEX_ERROR,
	    "unknown file handle");
	file_close(h);

	/* A checksum is answered later, hashed in slices by the loop. */
	enum { BIG = 9 * 1024 * 1024 };
	unsigned char *big = malloc(BIG);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	fill_random(big, BIG);
	p = tpath("dispatch-big.bin");
	write_file(p, big, BIG);
	char want[65];
	sha256_hex(big, BIG, want);
	free(big);
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_mem_block *xml = xmlrpc_mem_block_new(&env, 0);
	xmlrpc_value *params = xmlrpc_build_value(&env, "(s)", p);
	xmlrpc_serialize_call2(&env, xml, "va.file.checksum", params, xmlrpc_dialect_i8);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	xmlrpc_DECREF(params);
	struct answer an;
	session_send(xmlrpc_mem_block_contents(xml), xmlrpc_mem_block_size(xml), &an);
	CU_ASSERT_FALSE(an.done);
	/* The first slice runs at the next pass; 9 MiB take more than one. */
	va_loop_run_once(loop, 0);
	pump();
	CU_ASSERT_FALSE(an.done);
	session_wait(&an);
	r = raw_reply();
	EXPECT_OK(r, XMLRPC_TYPE_STRING);
	char *sum = as_str(r.v, NULL);
	CU_ASSERT_STRING_EQUAL(sum, want);
	free(sum);
	reply_free(&r);
	xmlrpc_mem_block_free(xml);
	xmlrpc_env_clean(&env);
	free(data);
	via_session = 0;
}

/* --- the core with a group of the test's own ----------------------------------------- */

/* A group that sees what the core offers it: the state is this test's. */
struct probe {
	struct va_agent *a;  /* from init */
	unsigned offered;    /* calls offered to the interceptor */
	char last[64];       /* the method of the last one */
	uint64_t due;        /* what the sweep answers */
	unsigned sweeps;
	int cleaned;
};

static struct probe probe;

static int
probe_init(struct va_agent *a, void **state)
{
	probe.a = a;
	*state = &probe;
	return 0;
}

static void
probe_cleanup(void *state)
{
	((struct probe *)state)->cleaned++;
}

static int
probe_intercept(void *state, const struct va_call *call)
{
	struct probe *pr = state;
	struct va_buf out = { 0 };
	xmlrpc_env env;

	pr->offered++;
	snprintf(pr->last, sizeof(pr->last), "%s", call->method);
	if (strcmp(call->method, "probe.taken") != 0)
		return 0;
	xmlrpc_env_init(&env);
	xmlrpc_value *v = xmlrpc_string_new(&env, "the interceptor");
	va_rpc_serialize_response(&env, &out, v);
	xmlrpc_DECREF(v);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_EQUAL(va_rpc_reply(call->s, call->epoch, call->tag, out.data, out.len), 0);
	va_buf_free(&out);
	xmlrpc_env_clean(&env);
	return 1;
}

static uint64_t
probe_sweep(void *state, uint64_t now_ms)
{
	struct probe *pr = state;
	(void)now_ms;
	pr->sweeps++;
	return pr->due;
}

/* The registry's method: says whether it got the group's agent and state. */
static xmlrpc_value *
method_probe(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	(void)params;
	(void)call_info;
	int mine = va_group_state(server_info) == &probe && va_group_agent(server_info) == probe.a;
	return xmlrpc_string_new(env, mine ? "the registry" : "the registry, without the group");
}

static const struct xmlrpc_method_info3 probe_methods[] = {
	{ .methodName = "probe.taken", .methodFunction = method_probe, .signatureString = "s:" },
	{ .methodName = "probe.left", .methodFunction = method_probe, .signatureString = "s:" },
};

static const struct va_method_group probe_group = {
	.name = "probe",
	.methods = probe_methods,
	.nmethods = 2,
	.init = probe_init,
	.cleanup = probe_cleanup,
	.intercept = probe_intercept,
	.sweep = probe_sweep,
};

/* Sends xml to a (host h) and checks the string it answers. */
static void
probe_expect(struct va_agent *a, va_session *h, const char *xml, const char *want, int line)
{
	struct answer an;
	session_send_to(a, h, xml, strlen(xml), &an);
	session_wait_for(a, h, &an);
	struct reply r = raw_reply();
	char *got = r.v && xmlrpc_value_type(r.v) == XMLRPC_TYPE_STRING ? as_str(r.v, NULL) : NULL;
	if (!got || strcmp(got, want) != 0) {
		fprintf(stderr, "\nline %d: expected \"%s\", got \"%s\" (fault %d %s)\n", line, want,
		    got ? got : "", r.code, r.msg ? r.msg : "");
		CU_FAIL("probe answer");
	}
	free(got);
	reply_free(&r);
}

#define PROBE_CALL(m) "<?xml version=\"1.0\"?><methodCall><methodName>" m \
	"</methodName><params></params></methodCall>"

static void
test_core_groups(void)
{
	static const struct va_method_group *const groups[] = { &probe_group, &va_group_info };
	struct va_agent_config cfg2 = { .max_frame = 1 * MiB };
	char err[256];

	memset(&probe, 0, sizeof(probe));
	probe.due = UINT64_MAX;
	struct va_agent *a = va_agent_new(loop, &cfg2, groups, 2, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_EQUAL(probe.a, a);
	CU_ASSERT_PTR_EQUAL(va_agent_group_state(a, &probe_group), &probe);
	CU_ASSERT_PTR_NULL(va_agent_group_state(a, &va_group_file));
	/* Without the clipboard group, the clipboard takes nothing. */
	CU_ASSERT_EQUAL(va_clipboard_store(a, "text", 4, "guest"), 0);

	struct va_session_config hcfg = { .name = "test host 2" };
	va_session *h = va_session_new(&hcfg, &host_ops, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	host_calls_clear();
	va_session_peer_up(h, va_now_ms());
	pump_pair(a, h);
	/* host.hello lists the methods of this agent's groups only. */
	CU_ASSERT_EQUAL_FATAL(nhost_calls, 1);
	xmlrpc_value *info = NULL, *methods = NULL;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_array_read_item(&env, host_calls[0].params, 0, &info);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	methods = member(info, "methods");
	CU_ASSERT_TRUE(array_has_string(methods, "probe.taken"));
	CU_ASSERT_TRUE(array_has_string(methods, "probe.left"));
	CU_ASSERT_TRUE(array_has_string(methods, "va.ping"));
	CU_ASSERT_FALSE(array_has_string(methods, "va.file.read"));
	xmlrpc_DECREF(methods);
	xmlrpc_DECREF(info);
	xmlrpc_env_clean(&env);
	host_calls_clear();

	/* Every allowed call is offered; the one the group takes never reaches the registry. */
	probe_expect(a, h, PROBE_CALL("probe.taken"), "the interceptor", __LINE__);
	CU_ASSERT_EQUAL(probe.offered, 1);
	CU_ASSERT_STRING_EQUAL(probe.last, "probe.taken");
	probe_expect(a, h, PROBE_CALL("probe.left"), "the registry", __LINE__);
	CU_ASSERT_EQUAL(probe.offered, 2);
	CU_ASSERT_STRING_EQUAL(probe.last, "probe.left");
	/* A refused call is never offered. */
	cfg2.block_rpcs = "probe.taken";
	set_lists(a, &cfg2);
	struct answer an;
	const char *blocked = PROBE_CALL("probe.taken");
	session_send_to(a, h, blocked, strlen(blocked), &an);
	session_wait_for(a, h, &an);
	EXPECT_FAULT(raw_reply(), XMLRPC_NO_SUCH_METHOD_ERROR, "method probe.taken is disabled");
	cfg2.block_rpcs = NULL;
	set_lists(a, &cfg2);
	CU_ASSERT_EQUAL(probe.offered, 2);
	/* Nor is a body whose name is not in the exact shape: the registry reads it. */
	probe_expect(a, h, "<?xml version=\"1.0\"?><methodCall><!-- a comment -->"
	    "<methodName>probe.taken</methodName><params></params></methodCall>",
	    "the registry", __LINE__);
	CU_ASSERT_EQUAL(probe.offered, 2);

	/* The sweep: the earliest time any group asks for. */
	CU_ASSERT_EQUAL(va_agent_sweep(a), UINT64_MAX);
	probe.due = 1234;
	CU_ASSERT_EQUAL(va_agent_sweep(a), 1234);
	CU_ASSERT_EQUAL(probe.sweeps, 2);
	/* ...run by the loop when a group asked for it. */
	probe.due = UINT64_MAX;
	va_agent_sweep_at(a, va_now_ms());
	va_loop_run_once(loop, 0);
	va_loop_run_once(loop, 0);
	CU_ASSERT_EQUAL(probe.sweeps, 3);

	va_agent_free(a);
	CU_ASSERT_EQUAL(probe.cleaned, 1);
	va_session_free(h);
}

/* --- calls without parameters: the method at once, the registry's answer ----------- */

/* xml through the core's dispatch and straight through the registry: the same bytes. */
static bool
same_answer(const char *xml)
{
	struct va_buf first = { 0 };
	struct answer an;

	/* Not parsed: xmlrpc-c's parser refuses text above U+FFFF. */
	session_send(xml, strlen(xml), &an);
	session_wait(&an);
	CU_ASSERT_EQUAL(va_buf_append(&first, last_raw.data, last_raw.len), 0);
	/* The registry's path in the agent: the gate, the registry, text.h's
	 * escapes undone (va_rpc_process), as va_rpc_serve runs it. */
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	last_raw.len = 0;
	va_rpc_process(&env, va_agent_registry(agent), xml, strlen(xml), NULL, &last_raw);
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_env_clean(&env);
	bool ok = first.len == last_raw.len && memcmp(first.data, last_raw.data, first.len) == 0;
	if (!ok)
		fprintf(stderr, "\n%s\nthe dispatch answered:\n%.*s\nthe registry:\n%.*s\n", xml,
		    (int)first.len, (const char *)first.data, (int)last_raw.len,
		    (const char *)last_raw.data);
	va_buf_free(&first);
	return ok;
}

static void
test_bare_calls(void)
{
	static const char *const bare[] = {
		/* libcurl's bench/loadgen; Python's xmlrpc.client; xmlrpc-c (vactl) */
		"<?xml version=\"1.0\"?>\r\n<methodCall>\r\n<methodName>va.ping</methodName>\r\n"
		"<params>\r\n</params>\r\n</methodCall>\r\n",
		"<?xml version='1.0'?>\n<methodCall>\n<methodName>va.ping</methodName>\n<params>\n"
		"</params>\n</methodCall>\n",
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodCall>\r\n<methodName>va.ping"
		"</methodName>\r\n<params>\r\n</params>\r\n</methodCall>\r\n",
		"<?xml version='1.0' encoding='UTF-8'?><methodCall><methodName>va.ping</methodName>"
		"</methodCall>",
		"<methodCall> \t<methodName>va.ping</methodName><params></params></methodCall>",
		"\n<methodCall><methodName>va.ping</methodName></methodCall>\r\n \t",
	};
	static const char *const not_bare[] = {
		"<methodCall><methodName> va.ping</methodName></methodCall>",
		"<methodCall><methodName>va.ping </methodName></methodCall>",
		"<methodCall><methodName>va.ping</methodName><params/></methodCall>",
		" <?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName></methodCall>",
		"<?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName><params><param>"
		"<value><int>1</int></value></param></params></methodCall>",
		"<methodCall><methodName>va.ping</methodName></methodCall>x",
		"<methodCall><methodName>va.ping</methodName></methodCall><!-- -->",
		"<methodCall><!-- --><methodName>va.ping</methodName></methodCall>",
		"<methodCall><methodName>va.pin</methodName></methodCall>",
		"<methodCall><methodName>va.pingg</methodName></methodCall>",
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall><methodName>va.ping"
		"</methodName></methodCall>",
		"<?xml version=\"1.1\"?><methodCall><methodName>va.ping</methodName></methodCall>",
		"<methodCall><methodName>va.ping</methodName><params></params>",
		"<methodCall><methodName>va.ping</methodName><params></methodCall>",
		"<methodCall><methodName>va.ping</methodName></methodCall",
		"\xef\xbb\xbf<methodCall><methodName>va.ping</methodName></methodCall>",
		"",
	};

	for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++)
		CU_ASSERT_TRUE(va_rpc_call_is_bare(bare[i], strlen(bare[i]), "va.ping"));
	for (size_t i = 0; i < sizeof(not_bare) / sizeof(not_bare[0]); i++) {
		bool no = !va_rpc_call_is_bare(not_bare[i], strlen(not_bare[i]), "va.ping");
		if (!no)
			fprintf(stderr, "\ntaken as bare: %s\n", not_bare[i]);
		CU_ASSERT_TRUE(no);
	}

	va_agent_set_clock(agent, NULL, NULL);
	va_file_close_all(agent);
	/* Every shape, and what the registry must still answer (a name with
	 * white space, parameters, <params/>): the same bytes either way. */
	for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++)
		CU_ASSERT_TRUE(same_answer(bare[i]));
	for (size_t i = 0; i < 5; i++)
		CU_ASSERT_TRUE(same_answer(not_bare[i]));
	/* Results of every kind, and the faults of methods that want parameters. */
	static const char *const methods[] = {
		"va.ping", "va.echo", "va.capabilities", "va.clipboard.get", "va.file.open",
		"va.file.read", "va.file.write", "va.file.seek", "va.file.close",
		"va.file.stat", "va.file.checksum", "va.clipboard.set",
	};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		char xml[256];
		snprintf(xml, sizeof(xml), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
			 "<methodCall>\r\n<methodName>%s</methodName>\r\n<params>\r\n</params>\r\n"
			 "</methodCall>\r\n", methods[i]);
		CU_ASSERT_TRUE(va_rpc_call_is_bare(xml, strlen(xml), methods[i]));
		CU_ASSERT_TRUE(same_answer(xml));
	}
	/* Text above U+FFFF, CR and U+E000 (main's value form, &#13;): the
	 * dispatch writes them as the registry path does. */
	static const char clip_text[] = "a\xf0\x9f\x98\x80\r\nb\r\xee\x80\x80 \xf0\xa0\x80\x80";
	CU_ASSERT_NOT_EQUAL(va_clipboard_store(agent, clip_text, sizeof(clip_text) - 1, "guest"), 0);
	host_calls_clear();
	const char *clip_get_xml = "<?xml version=\"1.0\"?>\r\n<methodCall>\r\n<methodName>"
	    "va.clipboard.get</methodName>\r\n<params>\r\n</params>\r\n</methodCall>\r\n";
	CU_ASSERT_TRUE(same_answer(clip_get_xml));
	CU_ASSERT_PTR_NOT_NULL(memmem(last_raw.data, last_raw.len, "&#13;", 5));
	/* va.info holds the time in seconds: the same unless a second passed. */
	const char *info = "<methodCall><methodName>va.info</methodName></methodCall>";
	bool same = false;
	for (int i = 0; i < 3 && !same; i++)
		same = same_answer(info);
	CU_ASSERT_TRUE(same);
	/* Refused before the method runs, as before. */
	cfg.block_rpcs = "va.ping";
	set_lists(agent, &cfg);
	via_session = 1;
	EXPECT_FAULT(call_xml(bare[0], strlen(bare[0])), XMLRPC_NO_SUCH_METHOD_ERROR,
	    "method va.ping is disabled on this guest");
	cfg.block_rpcs = NULL;
	set_lists(agent, &cfg);
	via_session = 0;
	va_agent_set_clock(agent, fake_clock, NULL);
}

/* --- main ---------------------------------------------------------------------------- */

static int
suite_init(void)
{
	char err[256];

	xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, 32 * MiB);
	if (va_test_mkdtemp(tmpdir, sizeof(tmpdir), "va-test-agent-") < 0)
		return -1;
	/* Never the real /sbin/poweroff from a test. */
	cfg.shutdown_command = "true";
	cfg.max_frame = 16 * MiB;
	loop = va_loop_new();
	if (!loop)
		return -1;
	agent = va_agent_new(loop, &cfg, va_agent_groups, va_agent_ngroups, err, sizeof(err));
	if (!agent) {
		fprintf(stderr, "agent: %s\n", err);
		return -1;
	}
	va_agent_set_clock(agent, fake_clock, NULL);
	/* The host connects: the handshake, then the agent's host.hello. */
	struct va_session_config hcfg = { .name = "test host", .max_frame = 16 * MiB };
	host = va_session_new(&hcfg, &host_ops, NULL);
	if (!host)
		return -1;
	va_session_peer_up(host, va_now_ms());
	pump();
	if (!va_session_is_ready(host) || nhost_calls != 1 ||
	    strcmp(host_calls[0].method, "host.hello") != 0) {
		fprintf(stderr, "the in-memory host got no session or no host.hello\n");
		return -1;
	}
	host_calls_clear();
	return host_errors ? -1 : 0;
}

static int
suite_cleanup(void)
{
	if (agent) {
		va_file_close_all(agent);
		va_clipboard_clear(agent);
		host_calls_clear();
		for (int i = 0; i < 250 && children() > 0; i++) {
			reap();
			usleep(20000);
		}
	}
	va_agent_free(agent);
	va_session_free(host);
	va_buf_free(&last_raw);
	if (loop)
		va_loop_free(loop);
	if (tmpdir[0])
		va_test_rmtree(tmpdir);
	if (host_errors)
		fprintf(stderr, "\nthe in-memory host saw %u bad calls or replies\n", host_errors);
	return host_errors ? -1 : 0;
}

int
main(void)
{
	static const struct va_test tests[] = {
		{ "ping", test_ping },
		{ "echo of every type, nested", test_echo },
		{ "capabilities and the ACL", test_capabilities },
		{ "info", test_info },
		{ "os-release parsing", test_os_release },
		{ "help and signatures", test_introspection },
			{ "file round trip, seek", test_file_round_trip },
		{ "file checksum", test_file_checksum },
		{ "file blocking mode", test_file_blocking_mode },
		{ "file modes, stat, bad opens", test_file_modes },
		{ "file handles, counts, caps", test_file_handles },
		{ "file handle limit", test_file_handle_limit },
		{ "file handles reclaimed when all are in use", test_file_handle_reclaim },
		{ "file idle handles", test_file_idle },
		{ "file roots", test_file_roots },
		{ "clipboard", test_clipboard },
		{ "dmesg", test_dmesg },
		{ "shutdown", test_shutdown },
		{ "exec and accounts are opt-in; va.exec.* through the registry", test_exec_opt_in },
		{ "registering twice", test_register_twice },
		{ "dispatch: refusals, interceptors, registry", test_dispatch },
		{ "dispatch: calls without parameters answered as by the registry", test_bare_calls },
		{ "the core with a group of the test's own", test_core_groups },
	};

	static const struct va_suite suite = {
		.name = "agent methods", .tests = tests, .ntests = sizeof(tests) / sizeof(tests[0]),
		.init = suite_init, .cleanup = suite_cleanup,
	};

	alloc_watch_init();
	va_log_init("test-agent-methods", 0,
	    getenv("VA_TEST_VERBOSE") ? VA_LOG_DEBUG : VA_LOG_ERROR);
	return va_test_run_suites(&suite, 1, NULL);
}
