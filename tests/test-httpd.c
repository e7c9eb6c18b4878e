/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tests of host/proxy/httpd.c, the event-driven HTTP/1.1 server of
 * va-proxy, as an HTTP client sees it: a real va_httpd listens on a unix
 * socket in a temporary directory (and on 127.0.0.1 where TCP matters),
 * on a va_loop (common/loop.h) that runs in a thread of its own, as the
 * proxy's loop thread does, and the tests talk to it over real sockets.
 *
 * The server's handler answers /echo at once with the body, /big with
 * 2 MiB, /fail with a 500, and keeps /later and /slow until a test asks
 * (the answer is then given on the server thread: the test posts it a
 * function with va_loop_post and waits until it ran).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"

#include "cunit-main.h"

#define MAX_BODY 65536
#define SECRET "s3cret"
#define AUTH_OK "Authorization: Basic dXNlcjpzM2NyZXQ=\r\n"    /* user:s3cret */
#define AUTH_BAD "Authorization: Basic dXNlcjp3cm9uZw==\r\n"   /* user:wrong */
#define BIG_ANSWER (2u * 1024 * 1024)
#define MAX_PENDING 16

/* ---- the server, in a thread of its own ---- */

struct pending {
	struct va_http_req *req;
	uint8_t *body;
	size_t len;
};

static struct {
	va_loop *loop;
	va_httpd *h;
	int running;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(void *);
	void *arg;
	int fn_done;
	/* Touched on the server thread only (read through on_server). */
	unsigned long requests;
	unsigned long routed;   /* targets route handed out */
	unsigned long released; /* and got back through release */
	struct pending pend[MAX_PENDING];
	size_t npend;
	char dir[96];
	char sock[108];
	int port;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static pthread_t server_thread_id;
static atomic_int sigpipe_server, sigpipe_other;

static void
on_sigpipe(int sig)
{
	(void)sig;
	if (S.running && pthread_equal(pthread_self(), server_thread_id))
		atomic_fetch_add(&sigpipe_server, 1);
	else
		atomic_fetch_add(&sigpipe_other, 1);
}

static void *
route(void *opaque, const char *path, struct va_buf *msg)
{
	static const char *const known[] = { "/echo", "/later", "/slow", "/big", "/fail" };

	(void)opaque;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!strcmp(path, known[i])) {
			S.routed++;
			return (void *)known[i];
		}
	}
	va_buf_printf(msg, "no such path here: %s", path);
	return NULL;
}

static void
request(void *opaque, struct va_http_req *req, void *target, uint8_t *body, size_t len)
{
	const char *t = target;

	(void)opaque;
	S.requests++;
	if (!strcmp(t, "/echo")) {
		va_httpd_respond(req, 200, "text/xml", body, len);
	} else if (!strcmp(t, "/big")) {
		free(body);
		uint8_t *p = malloc(BIG_ANSWER);
		if (p)
			for (size_t i = 0; i < BIG_ANSWER; i++)
				p[i] = (uint8_t)('a' + i % 26);
		va_httpd_respond(req, 200, "application/octet-stream", p, p ? BIG_ANSWER : 0);
	} else if (!strcmp(t, "/fail")) {
		free(body);
		va_httpd_respond(req, 500, "text/plain", (uint8_t *)strdup("it failed"), 9);
	} else if (S.npend < MAX_PENDING) {
		S.pend[S.npend++] = (struct pending){ req, body, len };
	} else {
		free(body);
		va_httpd_respond(req, 503, "text/plain", NULL, 0);
	}
}

static void
release(void *opaque, void *target)
{
	(void)opaque;
	(void)target;
	S.released++;
}

static const struct va_httpd_ops ops = { .route = route, .release = release, .request = request };

static void *
server_main(void *arg)
{
	(void)arg;
	if (va_loop_run(S.loop) < 0)
		abort();
	return NULL;
}

/* Posted work: runs S.fn on the server thread and says it did. */
static void
run_fn(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.mu);
	S.fn(S.arg);
	S.fn = NULL;
	S.fn_done = 1;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
}

/* Runs fn(arg) on the server thread, in a pass of its loop. */
static void
on_server(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&S.mu);
	S.fn = fn;
	S.arg = arg;
	S.fn_done = 0;
	if (va_loop_post(S.loop, run_fn, NULL) < 0)
		abort();
	while (!S.fn_done)
		pthread_cond_wait(&S.cv, &S.mu);
	pthread_mutex_unlock(&S.mu);
}

static void
get_conns(void *arg)
{
	*(size_t *)arg = S.h ? va_httpd_connections(S.h) : 0;
}
static void
get_npend(void *arg)
{
	*(size_t *)arg = S.npend;
}
static void
get_requests(void *arg)
{
	*(unsigned long *)arg = S.requests;
}
static void
get_routed(void *arg)
{
	*(unsigned long *)arg = S.routed;
}
static void
get_released(void *arg)
{
	*(unsigned long *)arg = S.released;
}
/* The loop's passes: each is one wait that ended (an event, a timer, posted work). */
static void
get_iters(void *arg)
{
	struct va_loop_stats st;
	va_loop_stats(S.loop, &st);
	*(unsigned long *)arg = (unsigned long)st.passes;
}
static void
get_cpu_ns(void *arg)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	*(uint64_t *)arg = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t
srv_conns(void)
{
	size_t n;
	on_server(get_conns, &n);
	return n;
}
static size_t
srv_npend(void)
{
	size_t n;
	on_server(get_npend, &n);
	return n;
}
static unsigned long
srv_requests(void)
{
	unsigned long n;
	on_server(get_requests, &n);
	return n;
}
static size_t
srv_routed(void)
{
	unsigned long n;
	on_server(get_routed, &n);
	return n;
}
static unsigned long
srv_released(void)
{
	unsigned long n;
	on_server(get_released, &n);
	return n;
}
static unsigned long
srv_iters(void)
{
	unsigned long n;
	on_server(get_iters, &n);
	return n;
}
static uint64_t
srv_cpu_ns(void)
{
	uint64_t n;
	on_server(get_cpu_ns, &n);
	return n;
}

/* Answers every kept request: 200, "answer:" and the request's body. */
static void
answer_pending(void *arg)
{
	(void)arg;
	for (size_t i = 0; i < S.npend; i++) {
		struct va_buf b = { 0 };
		va_buf_printf(&b, "answer:%s", (const char *)S.pend[i].body);
		size_t len;
		uint8_t *p = va_buf_steal(&b, &len);
		free(S.pend[i].body);
		va_httpd_respond(S.pend[i].req, 200, "text/xml", p, len);
	}
	S.npend = 0;
}

static void
free_server(void *arg)
{
	(void)arg;
	va_httpd_free(S.h);
	S.h = NULL;
}

static void
stop_fn(void *arg)
{
	(void)arg;
	answer_pending(NULL);
	va_httpd_free(S.h);
	S.h = NULL;
	va_loop_stop(S.loop); /* va_loop_run returns after this pass */
}

static void
msleep(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Polls until the server has n connections open; 1 when it did in time. */
/* Polls count() until it is n; 1 when it was in time. */
static int
wait_count(size_t (*count)(void), size_t n, unsigned timeout_ms)
{
	uint64_t end = va_now_ms() + timeout_ms;
	for (;;) {
		if (count() == n)
			return 1;
		if (va_now_ms() >= end)
			return 0;
		msleep(5);
	}
}

static int
wait_conns(size_t n, unsigned timeout_ms)
{
	return wait_count(srv_conns, n, timeout_ms);
}

static int
wait_npend(size_t n, unsigned timeout_ms)
{
	return wait_count(srv_npend, n, timeout_ms);
}

static struct va_httpd_config
default_config(void)
{
	return (struct va_httpd_config){
		.max_body = MAX_BODY,
		.secret = SECRET,
		.max_conn = 0,
		.read_timeout_ms = 300,
		.idle_timeout_ms = 500,
	};
}

static int
free_tcp_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(sin.sin_port);
}

/* Starts a server with cfg on a unix socket (and on TCP when tcp). */
static int
start_server(const struct va_httpd_config *cfg, int tcp)
{
	char err[256], addr[200];

	if (va_test_mkdtemp(S.dir, sizeof(S.dir), "test-httpd.") < 0)
		return -1;
	snprintf(S.sock, sizeof(S.sock), "%s/http.sock", S.dir);
	S.loop = va_loop_new();
	if (!S.loop)
		return -1;
	S.h = va_httpd_new(S.loop, cfg, &ops, NULL, err, sizeof(err));
	if (!S.h) {
		fprintf(stderr, "va_httpd_new: %s\n", err);
		return -1;
	}
	snprintf(addr, sizeof(addr), "unix:%s", S.sock);
	if (va_httpd_listen(S.h, addr, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	S.port = 0;
	for (int tries = 0; tcp && !S.port && tries < 20; tries++) {
		int port = free_tcp_port();
		if (port <= 0)
			continue;
		snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", port);
		if (va_httpd_listen(S.h, addr, err, sizeof(err)) == 0)
			S.port = port;
	}
	if (tcp && !S.port) {
		fprintf(stderr, "no TCP port to listen on: %s\n", err);
		return -1;
	}
	S.requests = S.routed = S.released = 0;
	S.npend = 0;
	S.fn = NULL;
	if (pthread_create(&S.th, NULL, server_main, NULL) != 0)
		return -1;
	server_thread_id = S.th;
	S.running = 1;
	return 0;
}

static void
stop_server(void)
{
	if (S.running) {
		on_server(stop_fn, NULL);
		pthread_join(S.th, NULL);
		S.running = 0;
	} else if (S.h) {
		va_httpd_free(S.h);
		S.h = NULL;
	}
	va_loop_free(S.loop);
	S.loop = NULL;
	if (S.dir[0]) {
		unlink(S.sock);
		rmdir(S.dir);
		S.dir[0] = '\0';
	}
}

static int
start_default(int tcp)
{
	struct va_httpd_config cfg = default_config();
	return start_server(&cfg, tcp);
}

/* ---- the client side ---- */

struct cli {
	int fd;
	char *buf; /* received, not yet taken as a response */
	size_t len, cap;
};

#define MAX_CLI 32
static struct cli *clis[MAX_CLI];

static struct cli *
cli_new(int fd)
{
	for (int i = 0; i < MAX_CLI; i++) {
		if (!clis[i]) {
			struct cli *c = calloc(1, sizeof(*c));
			c->fd = fd;
			clis[i] = c;
			return c;
		}
	}
	abort();
}

static struct cli *
cli_unix(void)
{
	int fd = va_test_unix_connect(S.sock);

	return fd < 0 ? NULL : cli_new(fd);
}

static struct cli *
cli_tcp(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)S.port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	return cli_new(fd);
}

static void
cli_close(struct cli *c)
{
	if (c && c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

static void
cli_free_all(void)
{
	for (int i = 0; i < MAX_CLI; i++) {
		if (clis[i]) {
			cli_close(clis[i]);
			free(clis[i]->buf);
			free(clis[i]);
			clis[i] = NULL;
		}
	}
}

/* Sends all of p; 0, or -errno. */
static int
cli_send(struct cli *c, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
cli_sendf(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
cli_sendf(struct cli *c, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	int r = cli_send(c, s, (size_t)n);
	free(s);
	return r;
}

/* A POST of body to path on HTTP/1.1, with extra header lines. */
static int
cli_post(struct cli *c, const char *path, const char *extra, const char *body)
{
	return cli_sendf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
			 "%sContent-Length: %zu\r\n\r\n%s", path, extra ? extra : "", strlen(body),
			 body);
}

/* Reads once into c->buf: bytes read, 0 at EOF, -ETIMEDOUT, or -errno. */
static ssize_t
cli_fill(struct cli *c, uint64_t deadline)
{
	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		char *p = realloc(c->buf, cap);
		if (!p)
			return -ENOMEM;
		c->buf = p;
		c->cap = cap;
	}
	for (;;) {
		uint64_t now = va_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c->len += (size_t)n;
		return n;
	}
}

struct resp {
	int status;
	char head[8192];   /* the whole head, NUL-terminated */
	long clen;         /* Content-Length, -1 when absent */
	char *body;        /* NUL-terminated */
	size_t body_len;
};

static void
resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/*
 * Reads one response (no body for HEAD, 1xx, or when no_body).  Returns
 * 0, -ETIMEDOUT, -EPIPE (EOF before a whole response), -EPROTO, -errno.
 */
static int
cli_resp(struct cli *c, struct resp *r, int no_body, unsigned timeout_ms)
{
	uint64_t deadline = va_now_ms() + timeout_ms;
	char *end;

	memset(r, 0, sizeof(*r));
	r->clen = -1;
	r->status = -1;
	for (;;) {
		end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		ssize_t n = cli_fill(c, deadline);
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return (int)n;
	}
	size_t hl = (size_t)(end - c->buf) + 4;
	if (hl >= sizeof(r->head))
		return -EPROTO;
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	if (strncmp(r->head, "HTTP/1.1 ", 9) != 0 || sscanf(r->head + 9, "%d", &r->status) != 1)
		return -EPROTO;
	for (char *l = strstr(r->head, "\r\n") + 2; *l && strncmp(l, "\r\n", 2); ) {
		if (!strncasecmp(l, "Content-Length:", 15))
			r->clen = strtol(l + 15, NULL, 10);
		l = strstr(l, "\r\n") + 2;
	}
	size_t blen = 0;
	if (!no_body && r->status >= 200) {
		if (r->clen < 0)
			return -EPROTO;
		blen = (size_t)r->clen;
	}
	while (c->len < hl + blen) {
		ssize_t n = cli_fill(c, deadline);
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return (int)n;
	}
	r->body = malloc(blen + 1);
	memcpy(r->body, c->buf + hl, blen);
	r->body[blen] = '\0';
	r->body_len = blen;
	memmove(c->buf, c->buf + hl + blen, c->len - hl - blen);
	c->len -= hl + blen;
	return 0;
}

/* The value of header name in r (first one), or NULL. */
static const char *
hdr(const struct resp *r, const char *name)
{
	static char val[1024];
	size_t n = strlen(name);

	for (const char *l = strstr(r->head, "\r\n"); l && strncmp(l, "\r\n\r\n", 4); ) {
		l += 2;
		if (!strncasecmp(l, name, n) && l[n] == ':') {
			const char *v = l + n + 1;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			size_t vl = (size_t)(e - v);
			if (vl >= sizeof(val))
				vl = sizeof(val) - 1;
			memcpy(val, v, vl);
			val[vl] = '\0';
			return val;
		}
		l = strstr(l, "\r\n");
	}
	return NULL;
}

/*
 * Reads until the server closes: 0 at EOF, -ECONNRESET, -ETIMEDOUT.
 * *extra: the bytes that came (or were left) before.
 */
static int
cli_eof(struct cli *c, unsigned timeout_ms, size_t *extra)
{
	uint64_t deadline = va_now_ms() + timeout_ms;
	size_t got = c->len;

	c->len = 0;
	for (;;) {
		ssize_t n = cli_fill(c, deadline);
		if (n > 0) {
			got += (size_t)n;
			c->len = 0;
			continue;
		}
		if (extra)
			*extra = got;
		return (int)n;
	}
}

/* Reads a response and checks the essentials of a refusal. */
static void
check_refusal(struct cli *c, int status, int no_body, const char *body_has)
{
	struct resp r;

	int rc = cli_resp(c, &r, no_body, 2000);
	CU_ASSERT_EQUAL(rc, 0);
	if (rc == 0) {
		CU_ASSERT_EQUAL(r.status, status);
		if (r.status != status)
			fprintf(stderr, "\n  expected %d, got:\n%s%s\n", status, r.head, r.body);
		const char *cn = hdr(&r, "Connection");
		CU_ASSERT_PTR_NOT_NULL(cn);
		CU_ASSERT(cn && !strcasecmp(cn, "close"));
		CU_ASSERT_PTR_NOT_NULL(hdr(&r, "Date"));
		CU_ASSERT(r.clen >= 0);
		if (body_has) {
			CU_ASSERT_PTR_NOT_NULL(strstr(r.body, body_has));
			CU_ASSERT_EQUAL(r.body_len, (size_t)r.clen);
		}
	}
	resp_free(&r);
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 2000, &extra), 0);
	CU_ASSERT_EQUAL(extra, 0);
}

/* POSTs body to path and checks a 200 with the echo. */
static void
check_echo(struct cli *c, const char *extra, const char *body)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(cli_post(c, "/echo", extra, body), 0);
	int rc = cli_resp(c, &r, 0, 2000);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && r.body_len == strlen(body) && !memcmp(r.body, body, r.body_len));
	resp_free(&r);
}

/* ---- per test ---- */

static void
setup(void)
{
	atomic_store(&sigpipe_server, 0);
}

static void
teardown(void)
{
	cli_free_all();
	stop_server();
}

/* ---- answers ---- */

static void
test_post_echo(void)
{
	struct resp r;
	const char *body = "<?xml version=\"1.0\"?><methodCall/>";

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(cli_post(c, "/echo", NULL, body), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.clen, (long)strlen(body));
	CU_ASSERT_EQUAL(r.body_len, strlen(body));
	CU_ASSERT_STRING_EQUAL(r.body, body);
	const char *ct = hdr(&r, "Content-Type");
	CU_ASSERT(ct && !strcmp(ct, "text/xml"));
	CU_ASSERT_PTR_NULL(hdr(&r, "Connection"));
	const char *d = hdr(&r, "Date");
	CU_ASSERT_PTR_NOT_NULL(d);
	if (d) {
		struct tm tm = { 0 };
		const char *e = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		CU_ASSERT(e && !*e);
		time_t t = timegm(&tm), now = time(NULL);
		CU_ASSERT(t <= now + 1 && t >= now - 5);
	}
	resp_free(&r);
	/* Kept alive: nothing more, and no close. */
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 100, &extra), -ETIMEDOUT);
	CU_ASSERT_EQUAL(extra, 0);
	CU_ASSERT_EQUAL(srv_conns(), 1);
	CU_ASSERT_EQUAL(srv_requests(), 1);
}

static void
test_keep_alive_three(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "first");
	check_echo(c, NULL, "the second one");
	check_echo(c, "Connection: keep-alive\r\n", "3");
	CU_ASSERT_EQUAL(srv_conns(), 1);
	CU_ASSERT_EQUAL(srv_requests(), 3);
}

static void
test_pipelined(void)
{
	static const char three[] =
		"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
		"POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\nsecond!!!"
		"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nthree";
	static const char *const want[] = { "one", "second!!!", "three" };
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(cli_send(c, three, sizeof(three) - 1), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_STRING_EQUAL(r.body, want[i]);
		CU_ASSERT_PTR_NULL(hdr(&r, "Connection"));
		resp_free(&r);
	}
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 50, &extra), -ETIMEDOUT);
	CU_ASSERT_EQUAL(extra, 0);
	CU_ASSERT_EQUAL(srv_requests(), 3);
}

static void
test_byte_at_a_time(void)
{
	static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
				  "hello world";
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		CU_ASSERT_EQUAL_FATAL(cli_send(c, req + i, 1), 0);
		msleep(1);
	}
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello world");
	resp_free(&r);
	/* And again on the same connection. */
	check_echo(c, NULL, "again");
}

static void
test_body_in_pieces(void)
{
	enum { N = 30000 };
	char *body = malloc(N + 1);
	struct resp r;

	for (int i = 0; i < N; i++)
		body[i] = (char)('A' + i % 23);
	body[N] = '\0';
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* The head with the first bytes of the body, then the rest in 30 writes. */
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n%.10s", N,
				  body), 0);
	msleep(2);
	for (int off = 10; off < N; off += 1000) {
		int n = N - off < 1000 ? N - off : 1000;
		CU_ASSERT_EQUAL(cli_send(c, body + off, (size_t)n), 0);
		msleep(2);
	}
	CU_ASSERT_EQUAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, (size_t)N);
	CU_ASSERT(r.body && !memcmp(r.body, body, N));
	resp_free(&r);
	free(body);
	check_echo(c, NULL, "after");
}

static void
test_http10(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "abc");
	const char *cn = hdr(&r, "Connection");
	CU_ASSERT(cn && !strcasecmp(cn, "close"));
	resp_free(&r);
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 2000, &extra), 0);
	CU_ASSERT_EQUAL(extra, 0);
	CU_ASSERT(wait_conns(0, 1000));
}

static void
test_connection_close(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/echo", "Connection: close\r\n", "bye"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "bye");
	const char *cn = hdr(&r, "Connection");
	CU_ASSERT(cn && !strcasecmp(cn, "close"));
	resp_free(&r);
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 2000, &extra), 0);
	CU_ASSERT_EQUAL(extra, 0);
	CU_ASSERT(wait_conns(0, 1000));
}

/* A client that shuts its write side after the request still gets the answer. */
static void
test_half_close(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/echo", NULL, "half"), 0);
	shutdown(c->fd, SHUT_WR);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "half");
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);

	/* The same while the request waits for its answer. */
	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/later", NULL, "wait"), 0);
	CU_ASSERT_FATAL(wait_npend(1, 2000));
	shutdown(c->fd, SHUT_WR);
	msleep(50);
	on_server(answer_pending, NULL);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "answer:wait");
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	CU_ASSERT(wait_conns(0, 1000));
}

static void
test_handler_error_closes(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/fail", NULL, "x"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 500);
	CU_ASSERT_STRING_EQUAL(r.body, "it failed");
	const char *cn = hdr(&r, "Connection");
	CU_ASSERT(cn && !strcasecmp(cn, "close"));
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
}

/* A 2 MiB answer to a client that reads it late: written as it takes it. */
static void
test_big_answer(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/big", NULL, "x"), 0);
	msleep(100);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 3000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL_FATAL(r.body_len, BIG_ANSWER);
	int ok = 1;
	for (size_t i = 0; i < BIG_ANSWER; i++)
		ok &= r.body[i] == (char)('a' + i % 26);
	CU_ASSERT(ok);
	resp_free(&r);
	check_echo(c, NULL, "still alive");

	/* Not read at all: dropped once it stops moving for read_timeout. */
	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/big", NULL, "x"), 0);
	CU_ASSERT(wait_conns(1, 3000)); /* the first connection is idle-closed */
	msleep(200);
	CU_ASSERT(wait_conns(0, 2000));
	size_t got = 0;
	CU_ASSERT_EQUAL(cli_eof(c, 2000, &got), 0);
	CU_ASSERT(got < BIG_ANSWER);
}

/* A request that waits for its answer holds back the one pipelined behind it. */
static void
test_wait_holds_pipeline(void)
{
	static const char two[] = "POST /later HTTP/1.1\r\nContent-Length: 5\r\n\r\nfirst"
				  "POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\nsecond";
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_send(c, two, sizeof(two) - 1), 0);
	CU_ASSERT_FATAL(wait_npend(1, 2000));
	/* Longer than both timeouts: a waiting request is not timed out. */
	CU_ASSERT_EQUAL(cli_resp(c, &r, 0, 900), -ETIMEDOUT);
	CU_ASSERT_EQUAL(srv_requests(), 1);
	CU_ASSERT_EQUAL(srv_conns(), 1);
	on_server(answer_pending, NULL);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "answer:first");
	resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "second");
	resp_free(&r);
	CU_ASSERT_EQUAL(srv_requests(), 2);
}

/* A refusal pipelined behind a good request: the good one is answered. */
static void
test_refusal_after_pipelined(void)
{
	static const char two[] = "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
				  "GET /echo HTTP/1.1\r\n\r\n";
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_send(c, two, sizeof(two) - 1), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "ok");
	resp_free(&r);
	check_refusal(c, 405, 0, "POST");
}

/* ---- 100-continue ---- */

static void
test_expect_continue(void)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int round = 0; round < 2; round++) {
		CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
					  "Content-Length: 5\r\n\r\n"), 0);
		/* The 100 comes while the body is still unsent. */
		CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
		CU_ASSERT_EQUAL(r.status, 100);
		CU_ASSERT_STRING_EQUAL(r.head, cont);
		resp_free(&r);
		CU_ASSERT_EQUAL(c->len, 0);
		CU_ASSERT_EQUAL(cli_send(c, "hello", 5), 0);
		CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_STRING_EQUAL(r.body, "hello");
		CU_ASSERT_PTR_NULL(hdr(&r, "Connection"));
		resp_free(&r);
	}
	CU_ASSERT_EQUAL(srv_requests(), 2);

	/* The body sent with the head anyway: the answer (a 100 first is allowed). */
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
				  "Content-Length: 4\r\n\r\nbody"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	if (r.status == 100) {
		resp_free(&r);
		CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	}
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "body");
	resp_free(&r);

	/* HTTP/1.0: the expectation is ignored (RFC 9110 10.1.1), no 100. */
	struct cli *c10 = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c10);
	CU_ASSERT_EQUAL(cli_sendf(c10, "POST /echo HTTP/1.0\r\nExpect: 100-continue\r\n"
				  "Content-Length: 3\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(cli_resp(c10, &r, 0, 150), -ETIMEDOUT);
	CU_ASSERT_EQUAL(c10->len, 0);
	CU_ASSERT_EQUAL(cli_send(c10, "old", 3), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c10, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "old");
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c10, 2000, NULL), 0);
}

static void
test_expect_too_big(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
				  "Content-Length: %d\r\n\r\n", MAX_BODY + 1), 0);
	/* At once, without a 100 first, and the connection closes. */
	check_refusal(c, 413, 0, "limit");
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

/* ---- refusals ---- */

static void
test_404(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/nowhere", NULL, "x"), 0);
	check_refusal(c, 404, 0, "no such path here: /nowhere");
	CU_ASSERT_EQUAL(srv_requests(), 0);
	CU_ASSERT(wait_conns(0, 1000));
}

static void
test_405_get(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	const char *allow = hdr(&r, "Allow");
	CU_ASSERT(allow && !strcmp(allow, "POST"));
	const char *cn = hdr(&r, "Connection");
	CU_ASSERT(cn && !strcasecmp(cn, "close"));
	CU_ASSERT(r.body_len > 0);
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

static void
test_405_head(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 1, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	const char *allow = hdr(&r, "Allow");
	CU_ASSERT(allow && !strcmp(allow, "POST"));
	CU_ASSERT(r.clen > 0); /* what a GET would have had */
	resp_free(&r);
	/* No body bytes after the head. */
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 2000, &extra), 0);
	CU_ASSERT_EQUAL(extra, 0);
}

static void
test_411(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	check_refusal(c, 411, 0, "Content-Length");

	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "5\r\nhello\r\n0\r\n\r\n"), 0);
	check_refusal(c, 411, 0, "chunked");
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

struct writer {
	struct cli *c;
	char *data;
	size_t len;
	int rc;
	pthread_t th;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	w->rc = cli_send(w->c, w->data, w->len);
	return NULL;
}

/* 413 to a client that goes on sending its body: it reads the 413, not a reset. */
static void
check_413_while_sending(struct cli *c, const char *auth, size_t body_len)
{
	struct writer w = { .c = c };
	struct resp r;
	char head[256];

	int hl = snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\n%sContent-Length: %zu\r\n\r\n",
			  auth, body_len);
	w.len = (size_t)hl + body_len;
	w.data = malloc(w.len);
	memcpy(w.data, head, (size_t)hl);
	memset(w.data + hl, 'z', body_len);
	if (pthread_create(&w.th, NULL, writer_main, &w) != 0) {
		CU_FAIL("pthread_create");
		free(w.data);
		return;
	}
	int rc = cli_resp(c, &r, 0, 3000);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(r.status, 413);
	const char *cn = hdr(&r, "Connection");
	CU_ASSERT(cn && !strcasecmp(cn, "close"));
	CU_ASSERT(r.body && strstr(r.body, "limit"));
	resp_free(&r);
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 3000, &extra), 0);
	CU_ASSERT_EQUAL(extra, 0);
	pthread_join(w.th, NULL);
	CU_ASSERT_EQUAL(w.rc, 0); /* the whole body went: the server read it */
	free(w.data);
}

static void
test_413_body_sent(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(1), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_413_while_sending(c, "", MAX_BODY + 1000);
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_413_while_sending(c, AUTH_OK, MAX_BODY + 1000);
	/* More than the sockets buffer: the server must read it to let it through. */
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_413_while_sending(c, AUTH_OK, 8u * 1024 * 1024);
	CU_ASSERT_EQUAL(srv_requests(), 0);
	CU_ASSERT(wait_conns(0, 1000));
}

static void
test_400(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0);
	check_refusal(c, 400, 0, "empty body");

	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nthis is no header\r\n"
				  "Content-Length: 2\r\n\r\nhi"), 0);
	check_refusal(c, 400, 0, NULL);

	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "NONSENSE\r\n\r\n"), 0);
	check_refusal(c, 400, 0, NULL);

	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 2x\r\n\r\nhi"), 0);
	check_refusal(c, 400, 0, NULL);
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

static void
test_431(void)
{
	enum { BIG = 20 * 1024 };
	char *line = malloc(BIG + 1);

	memset(line, 'a', BIG);
	line[BIG] = '\0';
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nX-Big: %s\r\nContent-Length: 2\r\n"
				  "\r\nhi", line), 0);
	check_refusal(c, 431, 0, NULL);
	free(line);
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

static void
test_505(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/2.0\r\nContent-Length: 2\r\n\r\nhi"), 0);
	check_refusal(c, 505, 0, NULL);
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

static void
test_417(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/echo", "Expect: something-else\r\n", "hi"), 0);
	check_refusal(c, 417, 0, "100-continue");
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

static void
test_auth(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(1), 0);
	/* No credentials. */
	struct cli *c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/echo", NULL, "x"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	const char *wa = hdr(&r, "WWW-Authenticate");
	CU_ASSERT(wa && !strncmp(wa, "Basic realm=", 12));
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	/* Wrong password. */
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/echo", AUTH_BAD, "x"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_PTR_NOT_NULL(hdr(&r, "WWW-Authenticate"));
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	/* An unknown path without credentials is a 401 too, not a 404. */
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/nowhere", NULL, "x"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	resp_free(&r);
	CU_ASSERT_EQUAL(srv_requests(), 0);
	/* The right one, twice on one connection. */
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, AUTH_OK, "authorized");
	check_echo(c, AUTH_OK, "again");
	CU_ASSERT_EQUAL(srv_requests(), 2);
	/* ... but each request needs it. */
	CU_ASSERT_EQUAL(cli_post(c, "/echo", NULL, "x"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	resp_free(&r);
	/* A wrong password of the right one's length, on a connection where
	 * the right one was accepted (the proxy keeps what it accepted). */
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, AUTH_OK, "authorized");
	CU_ASSERT_EQUAL(cli_post(c, "/echo", "Authorization: Basic dXNlcjpzM2NyZXU=\r\n", "x"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	resp_free(&r);
	CU_ASSERT_EQUAL(srv_requests(), 3);
	/* The unix listener needs none. */
	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "local");
}

/* A raw TCP connection to the server (not a struct cli: many are opened). */
static int
tcp_raw(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)S.port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* 1 when the server closed fd (EOF or reset) within timeout_ms. */
static int
closed_by_server(int fd, unsigned timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t end = va_now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		uint64_t now = va_now_ms();
		if (now >= end)
			return 0;
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
}

/*
 * Clients that never authenticate have a quota (VA_HTTPD_UNAUTH_*): more
 * evict the oldest, and an authenticated connection is never evicted.
 */
static void
test_unauth_quota(void)
{
	enum { N = VA_HTTPD_UNAUTH_PER_ADDR + 4 };
	int fds[2 * N];
	struct va_httpd_config cfg = default_config();

	/* Long timeouts: only the quota closes connections here. */
	cfg.read_timeout_ms = cfg.idle_timeout_ms = 20000;
	CU_ASSERT_EQUAL_FATAL(start_server(&cfg, 1), 0);
	for (int i = 0; i < N; i++) {
		fds[i] = tcp_raw();
		CU_ASSERT_FATAL(fds[i] >= 0);
	}
	CU_ASSERT(wait_conns(VA_HTTPD_UNAUTH_PER_ADDR, 2000));
	/* The oldest went: those over the share of one address. */
	for (int i = 0; i < N - VA_HTTPD_UNAUTH_PER_ADDR; i++)
		CU_ASSERT(closed_by_server(fds[i], 2000));
	CU_ASSERT_FALSE(closed_by_server(fds[N - 1], 100));
	/* A client that authenticates keeps its connection through another flood. */
	struct cli *c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, AUTH_OK, "first");
	for (int i = N; i < 2 * N; i++) {
		fds[i] = tcp_raw();
		CU_ASSERT_FATAL(fds[i] >= 0);
	}
	CU_ASSERT(wait_conns(VA_HTTPD_UNAUTH_PER_ADDR + 1, 2000));
	check_echo(c, AUTH_OK, "still served");
	for (int i = 0; i < 2 * N; i++)
		close(fds[i]);
}

/* A 401's drain ends at its own limits, however the client keeps sending. */
static void
test_unauth_drain_limits(void)
{
	struct va_httpd_config cfg = default_config();

	/* A long read timeout: the drain's own limits are what end it. */
	cfg.read_timeout_ms = cfg.idle_timeout_ms = 20000;
	CU_ASSERT_EQUAL_FATAL(start_server(&cfg, 1), 0);
	struct cli *c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n"),
			0);
	struct resp r;
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	resp_free(&r);
	/* A byte every 100 ms: each used to push the deadline back. */
	uint64_t t0 = va_now_ms();
	int gone = 0;
	while (!gone && va_now_ms() - t0 < 10000) {
		if (send(c->fd, "x", 1, MSG_NOSIGNAL) < 0)
			gone = 1;
		else
			gone = closed_by_server(c->fd, 100);
	}
	uint64_t took = va_now_ms() - t0;
	CU_ASSERT(gone);
	CU_ASSERT(took <= VA_HTTPD_UNAUTH_DRAIN_MS + 1000);
	/* And a flood is cut at its byte limit. */
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n"),
			0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	resp_free(&r);
	/* What the socket buffers take comes on top (a few MiB on loopback);
	 * an authenticated client's drain would read 64 MiB. */
	static char junk[65536];
	size_t sent = 0;
	while (sent < (size_t)VA_HTTPD_DRAIN_MAX) {
		ssize_t w = send(c->fd, junk, sizeof(junk), MSG_NOSIGNAL);
		if (w <= 0)
			break;
		sent += (size_t)w;
	}
	CU_ASSERT(sent < (size_t)VA_HTTPD_DRAIN_MAX / 4);
	if (sent >= (size_t)VA_HTTPD_DRAIN_MAX / 4)
		fprintf(stderr, "\n  %zu bytes taken after a 401\n", sent);
}

/* ---- timeouts ---- */

static void
test_idle_timeout(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "x");
	uint64_t t0 = va_now_ms();
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 5000, &extra), 0);
	uint64_t dt = va_now_ms() - t0;
	CU_ASSERT(dt >= 400 && dt < 5000);
	if (dt < 400 || dt >= 5000)
		fprintf(stderr, "\n  idle connection closed after %llu ms\n", (unsigned long long)dt);
	CU_ASSERT_EQUAL(extra, 0);

	/* A connection that never sent anything, and one used again before its time. */
	struct cli *quiet = cli_unix();
	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(quiet);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	t0 = va_now_ms();
	check_echo(c, NULL, "one");
	msleep(350);
	check_echo(c, NULL, "two"); /* at 350 ms: the idle time starts again */
	CU_ASSERT_EQUAL(cli_eof(quiet, 5000, NULL), 0);
	dt = va_now_ms() - t0;
	CU_ASSERT(dt >= 400 && dt < 5000);
	/* c was used at 350 ms: still open at 500 + a bit. */
	CU_ASSERT_EQUAL(cli_eof(c, 50, NULL), -ETIMEDOUT);
	CU_ASSERT_EQUAL(cli_eof(c, 5000, NULL), 0);
	dt = va_now_ms() - t0;
	CU_ASSERT(dt >= 750);
	CU_ASSERT(wait_conns(0, 1000));
}

static void
test_408_head(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	uint64_t t0 = va_now_ms();
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-"), 0);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 3000), 0);
	uint64_t dt = va_now_ms() - t0;
	CU_ASSERT_EQUAL(r.status, 408);
	CU_ASSERT(dt >= 250 && dt < 3000);
	const char *cn = hdr(&r, "Connection");
	CU_ASSERT(cn && !strcasecmp(cn, "close"));
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	CU_ASSERT(wait_conns(0, 1000));
}

/* A head trickled a byte at a time still has read_timeout in all (slowloris). */
static void
test_408_head_trickle(void)
{
	struct resp r;
	static const char head[] = "POST /echo HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	uint64_t t0 = va_now_ms();
	size_t sent = 0;
	/* 1 byte per 50 ms: each read well within 300 ms, the head never whole. */
	uint64_t answered = 0;
	while (sent < sizeof(head) - 1 && va_now_ms() - t0 < 1500) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		if (poll(&p, 1, 50) > 0) {
			answered = va_now_ms() - t0; /* the server spoke: stop */
			break;
		}
		if (cli_send(c, head + sent, 1) != 0)
			break;
		sent++;
	}
	CU_ASSERT(answered >= 250 && answered < 1000);
	CU_ASSERT(sent < sizeof(head) - 1);
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 3000), 0);
	uint64_t dt = va_now_ms() - t0;
	CU_ASSERT_EQUAL(r.status, 408);
	CU_ASSERT(dt < 3000);
	resp_free(&r);
}

static void
test_408_body(void)
{
	struct resp r;

	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	uint64_t t0 = va_now_ms();
	/*
	 * A body has read_timeout (300 ms) plus 1 ms per 64 bytes in all:
	 * 16 KiB get 556 ms.  Progress every 100 ms keeps it going past
	 * 300 ms, the total ends it however it trickles.
	 */
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 16384\r\n\r\n"), 0);
	static char kb[1024];
	memset(kb, 'x', sizeof(kb));
	int sent = 0;
	for (int i = 0; i < 12; i++) {
		if (cli_send(c, kb, sizeof(kb)) != 0)
			break;
		sent++;
		msleep(100);
	}
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 3000), 0);
	uint64_t dt = va_now_ms() - t0;
	CU_ASSERT(sent >= 5); /* alive past one read_timeout thanks to progress */
	CU_ASSERT_EQUAL(r.status, 408);
	CU_ASSERT(dt >= 500 && dt < 3000);
	resp_free(&r);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	CU_ASSERT_EQUAL(srv_requests(), 0);
}

/* ---- clients that go away, spinning ---- */

static uint64_t
server_cpu_ms_over(unsigned ms, unsigned long *wakes)
{
	unsigned long i0 = srv_iters();
	uint64_t c0 = srv_cpu_ns();
	msleep(ms);
	uint64_t c1 = srv_cpu_ns();
	unsigned long i1 = srv_iters();
	/* The four calls above woke the loop four times (one before i0 counts). */
	*wakes = i1 - i0 - 3;
	return (c1 - c0) / 1000000u;
}

static void
check_gone_while_waiting(struct cli *c, const char *auth)
{
	unsigned long wakes;

	CU_ASSERT_EQUAL(cli_post(c, "/later", auth, "gone"), 0);
	CU_ASSERT_FATAL(wait_npend(1, 2000));
	cli_close(c);
	msleep(50);
	uint64_t cpu = server_cpu_ms_over(300, &wakes);
	CU_ASSERT(cpu < 30);
	CU_ASSERT(wakes < 10);
	if (cpu >= 30 || wakes >= 10)
		fprintf(stderr, "\n  server: %llu ms CPU, %lu wakes in 300 ms\n",
			(unsigned long long)cpu, wakes);
	on_server(answer_pending, NULL);
	CU_ASSERT(wait_conns(0, 1000));
	CU_ASSERT_EQUAL(srv_npend(), 0);
}

static void
test_gone_while_waiting(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(1), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_gone_while_waiting(c, NULL);
	c = cli_tcp();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_gone_while_waiting(c, AUTH_OK);
	/* The server still serves. */
	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "still here");
}

/* A client that sends its request and closes at once: no crash, no leak. */
static void
test_gone_before_answer(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(1), 0);
	for (int i = 0; i < 20; i++) {
		struct cli *c = i % 2 ? cli_tcp() : cli_unix();
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_EQUAL(cli_post(c, i % 4 < 2 ? "/echo" : "/big", i % 2 ? AUTH_OK : NULL,
					 "bye"), 0);
		cli_close(c);
		cli_free_all();
	}
	CU_ASSERT(wait_conns(0, 2000));
	if (atomic_load(&sigpipe_server))
		fprintf(stderr, "\n  NOTE: httpd.c raised SIGPIPE %d times (writev without "
			"MSG_NOSIGNAL; va-proxy ignores SIGPIPE)\n", atomic_load(&sigpipe_server));
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "still here");
}

/* Bytes of a next request that come while one waits: kept up to a head's worth. */
static void
test_flood_while_waiting(void)
{
	enum { MORE = 40 * 1024 };
	char *junk = malloc(MORE);
	unsigned long wakes;

	memset(junk, 'j', MORE);
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/later", NULL, "first"), 0);
	CU_ASSERT_FATAL(wait_npend(1, 2000));
	CU_ASSERT_EQUAL(cli_send(c, junk, MORE), 0);
	free(junk);
	msleep(50);
	uint64_t cpu = server_cpu_ms_over(300, &wakes);
	CU_ASSERT(cpu < 30);
	CU_ASSERT(wakes < 10);
	if (cpu >= 30 || wakes >= 10)
		fprintf(stderr, "\n  server: %llu ms CPU, %lu wakes in 300 ms\n",
			(unsigned long long)cpu, wakes);
	on_server(answer_pending, NULL);
	struct resp r;
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "answer:first");
	resp_free(&r);
	/* The junk is no request head: refused, and closed. */
	struct resp r2;
	CU_ASSERT_EQUAL_FATAL(cli_resp(c, &r2, 0, 2000), 0);
	CU_ASSERT(r2.status == 400 || r2.status == 431);
	resp_free(&r2);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
}

/*
 * A client gone altogether while its request waits and its input is not
 * read (a head's worth came already, or it shut its side): its slot is
 * freed at once, not when the answer comes.
 */
static void
test_gone_while_not_read(void)
{
	enum { MORE = 40 * 1024 };
	char *junk = malloc(MORE);

	memset(junk, 'j', MORE);
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/later", NULL, "flood"), 0);
	CU_ASSERT_FATAL(wait_npend(1, 2000));
	CU_ASSERT_EQUAL(cli_send(c, junk, MORE), 0);
	free(junk);
	msleep(50);
	CU_ASSERT_EQUAL(srv_conns(), 1);
	cli_close(c);
	CU_ASSERT(wait_conns(0, 1000));
	CU_ASSERT_EQUAL(srv_npend(), 1);

	/* Shut its side: still there for its answer; then gone. */
	struct cli *h = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(cli_post(h, "/later", NULL, "half"), 0);
	CU_ASSERT_FATAL(wait_npend(2, 2000));
	CU_ASSERT_EQUAL(shutdown(h->fd, SHUT_WR), 0);
	msleep(50);
	CU_ASSERT_EQUAL(srv_conns(), 1);
	cli_close(h);
	CU_ASSERT(wait_conns(0, 1000));
	CU_ASSERT_EQUAL(srv_npend(), 2);

	on_server(answer_pending, NULL); /* into the void */
	CU_ASSERT_EQUAL(srv_npend(), 0);
	c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "still here");
}

/* Every target of route comes back once: with its request, or released. */
static void
test_route_released(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *c = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	check_echo(c, NULL, "to the request");
	CU_ASSERT_EQUAL(srv_released(), 0);

	c = cli_unix(); /* 405 */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	check_refusal(c, 405, 0, "POST");
	c = cli_unix(); /* 413 */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
				  MAX_BODY + 1), 0);
	check_refusal(c, 413, 0, "limit");
	c = cli_unix(); /* 404: nothing routed */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_post(c, "/nowhere", NULL, "x"), 0);
	check_refusal(c, 404, 0, NULL);
	c = cli_unix(); /* gone inside the body */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"), 0);
	CU_ASSERT(wait_count(srv_routed, 4, 2000));
	cli_close(c);
	CU_ASSERT(wait_conns(0, 1000));
	CU_ASSERT_EQUAL(srv_released(), 3);

	c = cli_unix(); /* a body that stops: 408 */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"), 0);
	check_refusal(c, 408, 0, NULL);
	c = cli_unix(); /* the server freed inside the body */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(cli_sendf(c, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"), 0);
	CU_ASSERT(wait_count(srv_routed, 6, 2000));
	on_server(free_server, NULL);
	CU_ASSERT_EQUAL(cli_eof(c, 2000, NULL), 0);
	CU_ASSERT_EQUAL(srv_routed(), 6);
	CU_ASSERT_EQUAL(srv_requests(), 1);
	CU_ASSERT_EQUAL(srv_released(), 5);
}

static void
test_max_conn(void)
{
	struct va_httpd_config cfg = default_config();
	struct cli *c[4];
	struct resp r;
	unsigned long wakes;

	cfg.max_conn = 4;
	cfg.idle_timeout_ms = 5000;
	CU_ASSERT_EQUAL_FATAL(start_server(&cfg, 0), 0);
	for (int i = 0; i < 4; i++) {
		c[i] = cli_unix();
		CU_ASSERT_PTR_NOT_NULL_FATAL(c[i]);
		check_echo(c[i], NULL, "in");
	}
	struct cli *fifth = cli_unix(); /* connects: the backlog takes it */
	CU_ASSERT_PTR_NOT_NULL_FATAL(fifth);
	CU_ASSERT_EQUAL(cli_post(fifth, "/echo", NULL, "fifth"), 0);
	CU_ASSERT_EQUAL(cli_resp(fifth, &r, 0, 300), -ETIMEDOUT);
	CU_ASSERT_EQUAL(srv_conns(), 4);
	CU_ASSERT_EQUAL(srv_requests(), 4);
	/* Full, it does not spin on the listener. */
	uint64_t cpu = server_cpu_ms_over(200, &wakes);
	CU_ASSERT(cpu < 20);
	CU_ASSERT(wakes < 5);
	/* One closes: the fifth is served. */
	cli_close(c[1]);
	CU_ASSERT_EQUAL_FATAL(cli_resp(fifth, &r, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "fifth");
	resp_free(&r);
	CU_ASSERT_EQUAL(srv_conns(), 4);
	/* The others still work. */
	check_echo(c[0], NULL, "zero");
	check_echo(c[3], NULL, "three");
}

static void
test_idle_no_spin(void)
{
	struct va_httpd_config cfg = default_config();
	unsigned long wakes;

	cfg.idle_timeout_ms = 5000;
	CU_ASSERT_EQUAL_FATAL(start_server(&cfg, 1), 0);
	struct cli *a = cli_unix(), *b = cli_tcp(), *q = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	check_echo(a, NULL, "a");
	check_echo(b, AUTH_OK, "b");
	CU_ASSERT(wait_conns(3, 1000));
	msleep(20);
	uint64_t cpu = server_cpu_ms_over(200, &wakes);
	CU_ASSERT(wakes <= 3);
	CU_ASSERT(cpu < 20);
	if (wakes > 3 || cpu >= 20)
		fprintf(stderr, "\n  idle server: %lu wakes, %llu ms CPU in 200 ms\n", wakes,
			(unsigned long long)cpu);
}

/* The server freed with a request unanswered; the answer comes after. */
static void
answer_after_free(void *arg)
{
	(void)arg;
	va_httpd_free(S.h);
	S.h = NULL;
	answer_pending(NULL);
}

static void
test_free_with_pending(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(1), 0);
	struct cli *c = cli_unix(), *t = cli_tcp(), *idle = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(idle);
	CU_ASSERT_EQUAL(cli_post(c, "/later", NULL, "one"), 0);
	CU_ASSERT_EQUAL(cli_post(t, "/slow", AUTH_OK, "two"), 0);
	CU_ASSERT_FATAL(wait_npend(2, 2000));
	CU_ASSERT(wait_conns(3, 1000));
	on_server(answer_after_free, NULL);
	size_t extra = 99;
	CU_ASSERT_EQUAL(cli_eof(c, 2000, &extra), 0);
	CU_ASSERT_EQUAL(extra, 0);
	int r = cli_eof(t, 2000, &extra);
	CU_ASSERT(r == 0 || r == -ECONNRESET);
	CU_ASSERT_EQUAL(extra, 0);
	CU_ASSERT_EQUAL(cli_eof(idle, 2000, NULL), 0);
	struct stat st;
	CU_ASSERT_EQUAL(lstat(S.sock, &st), -1); /* the socket file is gone */
	struct cli *late = cli_unix();
	CU_ASSERT_PTR_NULL(late);
	CU_ASSERT_EQUAL(srv_npend(), 0);
}

/* Freed in the middle of a head, a body, a 100-continue, a long answer. */
static void
test_free_busy(void)
{
	CU_ASSERT_EQUAL_FATAL(start_default(0), 0);
	struct cli *h = cli_unix(), *b = cli_unix(), *e = cli_unix(), *big = cli_unix();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT_EQUAL(cli_sendf(h, "POST /echo HTTP/1.1\r\nConte"), 0);
	CU_ASSERT_EQUAL(cli_sendf(b, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"), 0);
	CU_ASSERT_EQUAL(cli_sendf(e, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
				  "Content-Length: 100\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(cli_post(big, "/big", NULL, "x"), 0); /* answer not read */
	msleep(50);
	CU_ASSERT_EQUAL(srv_conns(), 4);
	on_server(free_server, NULL);
	CU_ASSERT_EQUAL(cli_eof(h, 2000, NULL), 0);
	CU_ASSERT_EQUAL(cli_eof(b, 2000, NULL), 0);
	size_t extra;
	CU_ASSERT_EQUAL(cli_eof(e, 2000, &extra), 0);
	int r = cli_eof(big, 2000, &extra);
	CU_ASSERT(r == 0 || r == -ECONNRESET);
}

/* --- main ------------------------------------------------------------------- */

static const struct va_test tests[] = {
	{ "POST answered 200: body and headers", test_post_echo },
	{ "three requests on one connection", test_keep_alive_three },
	{ "three pipelined requests in one write", test_pipelined },
	{ "a request one byte at a time", test_byte_at_a_time },
	{ "a body in many writes", test_body_in_pieces },
	{ "HTTP/1.0: answered, then closed", test_http10 },
	{ "Connection: close on 1.1", test_connection_close },
	{ "half-closed client gets its answer", test_half_close },
	{ "handler's 500 closes", test_handler_error_closes },
	{ "2 MiB answer, read late / never", test_big_answer },
	{ "waiting request holds back the next", test_wait_holds_pipeline },
	{ "refusal pipelined after a good request", test_refusal_after_pipelined },
	{ "Expect: 100-continue", test_expect_continue },
	{ "Expect with a body over max_body: 413", test_expect_too_big },
	{ "404 with route's message", test_404 },
	{ "405 for GET, with Allow", test_405_get },
	{ "405 for HEAD, no body", test_405_head },
	{ "411: no Content-Length, chunked", test_411 },
	{ "413 to a client still sending (unix, tcp, 8 MiB)", test_413_body_sent },
	{ "400: empty body, malformed heads", test_400 },
	{ "431 for a 20 KiB header", test_431 },
	{ "505 for HTTP/2.0", test_505 },
	{ "417 for another expectation", test_417 },
	{ "401 on TCP without / with wrong credentials, 200 with right", test_auth },
	{ "unauthenticated connections: a quota, the oldest evicted", test_unauth_quota },
	{ "a 401's drain ends at its byte and time limits", test_unauth_drain_limits },
	{ "idle keep-alive connection closed after idle_timeout", test_idle_timeout },
	{ "half-sent head: 408", test_408_head },
	{ "half-sent body: 408", test_408_body },
	{ "trickled head: 408 after read_timeout in all", test_408_head_trickle },
	{ "client gone while its request waits", test_gone_while_waiting },
	{ "client gone right after sending", test_gone_before_answer },
	{ "bytes flood in while a request waits", test_flood_while_waiting },
	{ "client gone while its input is not read", test_gone_while_not_read },
	{ "route's target back once: request or release", test_route_released },
	{ "max_conn: the 5th waits for a slot", test_max_conn },
	{ "idle server does not spin", test_idle_no_spin },
	{ "free with unanswered requests, answered after", test_free_with_pending },
	{ "free with connections in every state", test_free_busy },
};

int
main(void)
{
	struct sigaction sa = { .sa_handler = on_sigpipe };
	static const struct va_suite suite = {
		.name = "httpd", .tests = tests, .ntests = sizeof(tests) / sizeof(tests[0]),
		.setup = setup, .teardown = teardown,
	};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
	va_log_init("test-httpd", 0, getenv("VA_TEST_DEBUG") ? VA_LOG_DEBUG : VA_LOG_ERROR);
	return va_test_run_suites(&suite, 1, NULL);
}
