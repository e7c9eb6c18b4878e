/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * httpd.c - the event-driven HTTP/1.1 server of va-proxy (see httpd.h).
 *
 * Every listening socket and every connection is an fd of the caller's
 * va_loop with a callback of its own, and every connection has a timer of
 * the loop for its deadline; nothing here waits or polls by itself.
 *
 * Each connection is a small state machine:
 *
 *   HEAD  reading a request head (idle when nothing of it came yet)
 *   BODY  reading the body of an accepted request into its own buffer
 *   WAIT  the request is with ops->request; nothing more is read
 *         (bytes of a next request that come meanwhile are kept, up to a
 *         head's worth)
 *   WRITE an answer (or "100 Continue") the socket did not take at once
 *   DRAIN the answer was a refusal: the write side is shut, and what the
 *         client still sends is read and dropped until it closes
 *   STREAM a request under the stream prefix (httpd.h), with its callee:
 *         its body read when the callee wants it, its answer written in
 *         pieces as they come (the section "streams" below)
 *
 * The loop is level-triggered; a connection's interest set follows its
 * state, and is changed only when it must be (WAIT keeps POLLIN until
 * bytes come or the peer hangs up: most calls then cost no epoll_ctl).
 * A connection that closes is taken off the loop at once, but its memory
 * is freed only when the outermost call into this file returns (enter()
 * and leave()): the callers up the stack may still look at it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "http-parse.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"

/* After accept failed for want of descriptors, the next try. */
#define ACCEPT_RETRY_MS 100
/* Connections accepted per wake of a listener. */
#define ACCEPTS_PER_WAKE 32
/* First size of a connection's input buffer; it grows up to a head's worth. */
#define IN_FIRST 4096
/* Bytes read per read() of a body that is drained. */
#define DRAIN_CHUNK 65536

enum state { S_HEAD, S_BODY, S_WAIT, S_WRITE, S_DRAIN, S_STREAM, S_DEAD };

/* What follows a completed write. */
enum after { A_NEXT, A_BODY, A_DRAIN };

struct listener {
	va_httpd *h;
	char *addr;
	char *path;     /* unix: the socket file, removed at the end */
	int fd;
	int need_auth;
	int polled;     /* polled for POLLIN (not while full) */
};

struct conn {
	va_httpd *h;
	int fd;
	int need_auth;
	int authed;             /* a request carried the credentials (or none are needed) */
	/*
	 * The Authorization value the last check on this connection accepted
	 * (auth_ok_len 0: none, or too long to keep): the same bytes again
	 * need no base64 decoding and comparison.  The secret never changes
	 * while the proxy runs.  Wiped when the connection is freed.
	 */
	char auth_ok[128];
	size_t auth_ok_len;
	uint64_t accepted;      /* accept order: the oldest unauthenticated goes first */
	char addr[48];          /* the peer's address without its port (quotas) */
	enum state st;
	unsigned events;        /* the loop interest set now (POLLIN, POLLOUT, HUP_ONLY) */
	va_loop_timer *timer;   /* due at deadline; NULL once closed */
	uint64_t deadline;      /* ms; UINT64_MAX: none */
	uint64_t head_by;       /* a head that started must be whole by then */
	uint64_t body_by;       /* and its body by then */
	char peer[64];

	char *in;               /* received, not yet used: head bytes, maybe more */
	size_t in_len, in_cap;
	int peer_eof;           /* the client shut its side */

	/* The request being read or answered. */
	char target[VA_HTTP_TARGET_MAX + 1];
	int keep_alive;
	int head_only;          /* HEAD: the answer has no body */
	void *route;            /* ops->route's target, until given to ops->request */
	uint8_t *body;
	size_t body_len, body_got;
	struct va_http_req *req;

	/* The answer being written: head, then body. */
	struct va_buf out_head;
	size_t out_head_off;
	uint8_t *out_body;
	size_t out_len, out_off;
	enum after after;
	size_t drained, drain_max;

	struct conn *prev, *next; /* h->conns, or h->dead */
	int ready;                /* on h->ready: has input to look at */
	struct conn *ready_next;

	struct va_http_stream *stream; /* S_STREAM: the request's */
	int close_soon;           /* a stream's I/O failed: closed from the ready timer */
};

struct va_http_req {
	struct conn *c; /* NULL once the connection closed */
};

struct va_httpd {
	struct va_httpd_config cfg;
	struct va_httpd_ops ops;
	void *opaque;
	va_loop *loop;
	struct listener **ls;
	size_t nls;
	struct conn *conns;
	size_t nconns;
	size_t nunauth;          /* open connections not authenticated (yet) */
	uint64_t accepts;        /* connections accepted so far (their order) */
	unsigned depth;          /* calls into this file running (enter/leave) */
	struct conn *dead;       /* closed, freed when depth drops to 0 */
	struct conn *ready;      /* with buffered input to parse (ready_timer) */
	va_loop_timer *ready_timer;
	va_loop_timer *retry_timer; /* accepting paused (no descriptors) until it runs */
	int accept_warned;
	int finishing;           /* va_httpd_finish: no more accepting */
	time_t date_sec;
	char date[40];
};

/*
 * The interest of a connection whose input is not wanted now (WAIT with a
 * full buffer, or after the client shut its side): the loop still tells
 * when the client is gone altogether (loop.h), so its slot is freed then
 * and not only when the answer comes.
 */
#define HUP_ONLY POLLHUP

static void conn_close(struct conn *c);
static void free_dead(va_httpd *h);
static void stream_start(struct conn *c, struct va_http_head *hd, uint64_t now);
static void stream_event(struct conn *c, unsigned ev, uint64_t now);
static void stream_ready(struct conn *c, uint64_t now);
static void stream_free(struct va_http_stream *sx);
static void stream_closed(struct va_http_stream *sx);
static int stream_ending(const struct va_http_stream *sx);
static void listeners_poll(va_httpd *h, int on);
static void conn_input(struct conn *c, uint64_t now);

/* ---- small things ---- */

/* Around every call into this file from outside (callbacks, respond). */
static void
enter(va_httpd *h)
{
	h->depth++;
}

static void
leave(va_httpd *h)
{
	if (--h->depth == 0 && h->dead)
		free_dead(h);
}

static void
set_events(struct conn *c, unsigned ev)
{
	if (c->events == ev)
		return;
	int r = va_loop_fd_events(c->h->loop, c->fd, ev);
	if (r == 0)
		c->events = ev;
	else
		va_log_warnx("HTTP %s: epoll_ctl: %s", c->peer, strerror(-r));
}

static void
set_deadline(struct conn *c, uint64_t when)
{
	if (!c->timer)
		return;
	c->deadline = when;
	va_loop_timer_at(c->timer, when); /* UINT64_MAX: stopped */
}

static void
mark_ready(struct conn *c)
{
	if (c->ready)
		return;
	c->ready = 1;
	c->ready_next = c->h->ready;
	c->h->ready = c;
	va_loop_timer_soon(c->h->ready_timer);
}

/* The target of ops->route goes back to its owner unused. */
static void
drop_route(struct conn *c)
{
	void *t = c->route;

	c->route = NULL;
	if (t && c->h->ops.release)
		c->h->ops.release(c->h->opaque, t);
}

/* The Date header's value, made once a second. */
static const char *
http_date(va_httpd *h)
{
	time_t now = time(NULL);
	if (now != h->date_sec) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(h->date, sizeof(h->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		h->date_sec = now;
	}
	return h->date;
}

/* ---- writing ---- */

/*
 * Writes what the socket takes of the queued answer.  Returns 1 when all
 * of it went (the caller sets what comes next, deadline included), 0 when
 * some is left (POLLOUT set, read_timeout from now), -1 when the
 * connection is gone (closed here).
 */
static int
flush_out(struct conn *c, uint64_t now)
{
	for (;;) {
		struct iovec iov[2];
		int n = 0;
		if (c->out_head_off < c->out_head.len) {
			iov[n].iov_base = c->out_head.data + c->out_head_off;
			iov[n++].iov_len = c->out_head.len - c->out_head_off;
		}
		if (c->out_off < c->out_len) {
			iov[n].iov_base = c->out_body + c->out_off;
			iov[n++].iov_len = c->out_len - c->out_off;
		}
		if (n == 0)
			return 1;
		/* sendmsg for MSG_NOSIGNAL: a client gone is an error here, not a signal. */
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->st = S_WRITE;
				set_events(c, POLLOUT);
				set_deadline(c, now + c->h->cfg.read_timeout_ms);
				return 0;
			}
			va_log_debug("HTTP %s: write: %s", c->peer, strerror(errno));
			conn_close(c);
			return -1;
		}
		size_t left = (size_t)w;
		size_t hl = c->out_head.len - c->out_head_off;
		size_t take = left < hl ? left : hl;
		c->out_head_off += take;
		left -= take;
		c->out_off += left;
	}
}

static void
out_reset(struct conn *c)
{
	c->out_head.len = 0;
	c->out_head_off = 0;
	free(c->out_body);
	c->out_body = NULL;
	c->out_len = c->out_off = 0;
}

/*
 * The answer went: go on with the next request, the body, or the drain;
 * at the stop (va_httpd_finish), close.
 */
static void
written(struct conn *c, uint64_t now)
{
	enum after a = c->after;

	out_reset(c);
	if (c->h->finishing) {
		conn_close(c);
		return;
	}
	if (a == A_BODY) {
		uint64_t next = now + c->h->cfg.read_timeout_ms;
		c->st = S_BODY;
		set_events(c, POLLIN);
		set_deadline(c, next < c->body_by ? next : c->body_by);
		return;
	}
	if (a == A_DRAIN) {
		/* The client reads the answer and closes; we read until then,
		 * within limits of bytes and time that its sending cannot move. */
		shutdown(c->fd, SHUT_WR);
		c->st = S_DRAIN;
		c->in_len = 0;
		if (c->peer_eof) {
			conn_close(c);
			return;
		}
		c->drained = 0;
		c->drain_max = c->authed ? VA_HTTPD_DRAIN_MAX : VA_HTTPD_UNAUTH_DRAIN_MAX;
		uint64_t limit = c->authed ? VA_HTTPD_DRAIN_MS : VA_HTTPD_UNAUTH_DRAIN_MS;
		if (c->h->cfg.read_timeout_ms < limit)
			limit = c->h->cfg.read_timeout_ms;
		set_events(c, POLLIN);
		set_deadline(c, now + limit);
		return;
	}
	c->st = S_HEAD;
	drop_route(c); /* given to ops->request already (or dropped at a refusal) */
	if (c->in_len > 0) {
		mark_ready(c); /* a pipelined request is already here */
		c->head_by = now + c->h->cfg.read_timeout_ms;
		set_deadline(c, c->head_by);
	} else {
		if (c->peer_eof) {
			conn_close(c);
			return;
		}
		set_deadline(c, now + c->h->cfg.idle_timeout_ms);
	}
	set_events(c, POLLIN);
}

/*
 * Queues an answer and writes what goes at once.  body is taken over.
 * extra: more header lines, each ending in CRLF (or NULL).
 */
static void
answer(struct conn *c, int status, const char *ctype, uint8_t *body, size_t len,
       const char *extra, uint64_t now)
{
	int close_after = status >= 400 || !c->keep_alive;
	/* Status and length as text, written backwards (no printf on the
	 * path of every answer: it was a tenth of the proxy's instructions). */
	char num[24], *len_s = num + sizeof(num) - 1, code[16];
	size_t n = len;
	*len_s = '\0';
	do
		*--len_s = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	if (status >= 100 && status <= 999) {
		code[0] = (char)('0' + status / 100);
		code[1] = (char)('0' + status / 10 % 10);
		code[2] = (char)('0' + status % 10);
		code[3] = '\0';
	} else {
		snprintf(code, sizeof(code), "%d", status);
	}

	out_reset(c);
	/* The pieces, measured, then one reservation and plain copies. */
	const char *piece[] = {
		"HTTP/1.1 ", code, " ", va_http_reason(status), "\r\nDate: ", http_date(c->h),
		"\r\nContent-Type: ", ctype, "\r\nContent-Length: ", len_s, "\r\n",
		extra ? extra : "", close_after ? "Connection: close\r\n" : "", "\r\n",
	};
	enum { NPIECES = sizeof(piece) / sizeof(piece[0]) };
	size_t plen[NPIECES], total = 0;
	for (size_t i = 0; i < NPIECES; i++) {
		plen[i] = strlen(piece[i]);
		total += plen[i]; /* each piece is a string in memory: no overflow */
	}
	struct va_buf *o = &c->out_head;
	if (va_buf_reserve(o, total) < 0) {
		free(body);
		conn_close(c);
		return;
	}
	for (size_t i = 0; i < NPIECES; i++) {
		memcpy(o->data + o->len, piece[i], plen[i]);
		o->len += plen[i];
	}
	if (c->head_only) {
		free(body);
		body = NULL;
		len = 0;
	}
	c->out_body = body;
	c->out_len = len;
	c->after = close_after ? A_DRAIN : A_NEXT;
	c->st = S_WRITE;
	if (flush_out(c, now) == 1)
		written(c, now);
}

/* A refusal of the server's own, in plain text. */
static void
refuse(struct conn *c, int status, const char *msg, const char *extra, uint64_t now)
{
	size_t n = strlen(msg);
	uint8_t *body = malloc(n + 1);

	if (body) {
		memcpy(body, msg, n);
		body[n] = '\n';
	}
	drop_route(c);
	c->keep_alive = 0;
	answer(c, status, "text/plain; charset=utf-8", body, body ? n + 1 : 0, extra, now);
}

/* ---- reading ---- */

/*
 * One read from the socket into c->in's free room: the bytes read (c->in_len
 * grown), 0 at the end of the stream (peer_eof set), or -errno (-EAGAIN when
 * nothing is there now).
 */
static ssize_t
read_more(struct conn *c)
{
	for (;;) {
		ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (r > 0) {
			c->in_len += (size_t)r;
			return r;
		}
		if (r == 0) {
			c->peer_eof = 1;
			return 0;
		}
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/*
 * Reads into c->in (at most up to a head's worth).  Returns the bytes
 * read, 0 at the end of the stream (peer_eof set), -1 when nothing is
 * there now, -2 when the connection failed (closed here).
 */
static ssize_t
read_in(struct conn *c)
{
	if (c->in_len == c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap * 2 : IN_FIRST;
		if (cap > VA_HTTP_HEAD_MAX)
			cap = VA_HTTP_HEAD_MAX;
		if (cap <= c->in_len)
			return -1; /* full: the parser will say so */
		char *p = realloc(c->in, cap);
		if (!p) {
			va_log_errx("HTTP %s: out of memory", c->peer);
			conn_close(c);
			return -2;
		}
		c->in = p;
		c->in_cap = cap;
	}
	ssize_t r = read_more(c);
	if (r >= 0)
		return r;
	if (r == -EAGAIN)
		return -1;
	va_log_debug("HTTP %s: read: %s", c->peer, strerror((int)-r));
	conn_close(c);
	return -2;
}

static void
consume_in(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* The body is whole: hand it over and wait for the answer. */
static void
body_done(struct conn *c)
{
	struct va_http_req *req = malloc(sizeof(*req));
	uint8_t *body = c->body;
	size_t len = c->body_len;

	c->body = NULL;
	if (!req) {
		free(body);
		refuse(c, 503, "out of memory", NULL, va_now_ms());
		return;
	}
	body[len] = '\0';
	req->c = c;
	c->req = req;
	c->st = S_WAIT;
	set_deadline(c, UINT64_MAX);
	void *target = c->route;
	c->route = NULL; /* ops->request's from here on */
	c->h->ops.request(c->h->opaque, req, target, body, len);
}

/* Takes body bytes from c->in, then from the socket. */
static void
read_body(struct conn *c, uint64_t now)
{
	if (c->in_len > 0) {
		size_t take = c->body_len - c->body_got;
		if (take > c->in_len)
			take = c->in_len;
		memcpy(c->body + c->body_got, c->in, take);
		c->body_got += take;
		consume_in(c, take);
	}
	while (c->body_got < c->body_len) {
		ssize_t r = read(c->fd, c->body + c->body_got, c->body_len - c->body_got);
		if (r > 0) {
			uint64_t next = now + c->h->cfg.read_timeout_ms;
			c->body_got += (size_t)r;
			set_deadline(c, next < c->body_by ? next : c->body_by);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* The client closed or failed with the body half sent. */
		va_log_debug("HTTP %s: the connection ended inside a request body", c->peer);
		conn_close(c);
		return;
	}
	body_done(c);
}

/* 1 when the request may go on; logs why not. */
static int
authorized(struct conn *c, const struct va_http_head *hd)
{
	const char *why;

	if (!c->need_auth)
		return 1;
	size_t alen = hd->authorization ? strlen(hd->authorization) : 0;
	if (c->auth_ok_len && alen == c->auth_ok_len &&
	    memcmp(hd->authorization, c->auth_ok, alen) == 0)
		return 1; /* accepted before on this connection (c->authed is set);
			   * memcmp's timing tells only this connection's client
			   * about what it sent before */
	if (va_auth_check(hd->authorization, c->h->cfg.secret, &why)) {
		if (alen < sizeof(c->auth_ok)) {
			memcpy(c->auth_ok, hd->authorization, alen);
			c->auth_ok_len = alen;
		}
		if (!c->authed) {
			c->authed = 1; /* out of the unauthenticated quota for good */
			c->h->nunauth--;
		}
		return 1;
	}
	explicit_bzero(c->auth_ok, sizeof(c->auth_ok));
	c->auth_ok_len = 0;
	va_log_warnx("HTTP 401 for %s from %s: %s", c->target, c->peer, why);
	return 0;
}

/* A whole head is in c->in: check it, and start on the body. */
static void
start_request(struct conn *c, struct va_http_head *hd, uint64_t now)
{
	char msg[256];

	size_t tl = strnlen(hd->target, sizeof(c->target) - 1);
	memcpy(c->target, hd->target, tl);
	c->target[tl] = '\0';
	c->keep_alive = hd->minor >= 1 && !hd->conn_close;
	c->head_only = !strcmp(hd->method, "HEAD");
	int64_t len = hd->content_length;
	int is_post = !strcmp(hd->method, "POST");
	int expect = hd->expect_continue, expect_other = hd->expect_other, te = hd->transfer_encoding;
	int authed = authorized(c, hd);
	const char *sp = c->h->cfg.stream_prefix;
	if (authed && sp && c->h->ops.stream && !strncmp(c->target, sp, strlen(sp))) {
		stream_start(c, hd, now); /* takes the head's bytes */
		return;
	}
	consume_in(c, hd->head_len); /* hd's strings are gone from here on */
	if (!authed) {
		refuse(c, 401, "authentication required: HTTP Basic with the secret of the "
			       "proxy's auth file as password (any user name)",
		       "WWW-Authenticate: Basic realm=\"virtagent\"\r\n", now);
		return;
	}
	struct va_buf m = { 0 };
	c->route = c->h->ops.route(c->h->opaque, c->target, &m);
	if (!c->route) {
		va_buf_append(&m, "", 1);
		refuse(c, 404, m.data ? (const char *)m.data : "not found", NULL, now);
		va_buf_free(&m);
		return;
	}
	va_buf_free(&m);
	if (!is_post) {
		refuse(c, 405, "only POST is allowed: XML-RPC calls are POSTed", "Allow: POST\r\n",
		       now);
		return;
	}
	if (expect_other) {
		refuse(c, 417, "the only expectation served is 100-continue", NULL, now);
		return;
	}
	if (len < 0 || te) {
		refuse(c, 411, "a Content-Length header is required (no chunked bodies)", NULL, now);
		return;
	}
	if ((uint64_t)len > c->h->cfg.max_body) {
		snprintf(msg, sizeof(msg), "the body (%lld bytes) is over the limit of %zu bytes "
			 "(--max-frame)", (long long)len, c->h->cfg.max_body);
		va_log_warnx("HTTP 413 for %s from %s: %s", c->target, c->peer, msg);
		refuse(c, 413, msg, NULL, now);
		return;
	}
	if (len == 0) {
		refuse(c, 400, "empty body: expected an XML-RPC methodCall", NULL, now);
		return;
	}
	/*
	 * Allocated at its announced size (at most max_body): the pages are
	 * only touched, and so resident, as the bytes arrive.
	 */
	c->body = malloc((size_t)len + 1);
	if (!c->body) {
		refuse(c, 503, "out of memory", NULL, now);
		return;
	}
	c->body_len = (size_t)len;
	c->body_got = 0;
	c->st = S_BODY;
	/*
	 * Each read must come within read_timeout, and the whole body at
	 * 64 KiB/s or better on top of one read_timeout: a client trickling
	 * bytes cannot hold a connection slot for ever.
	 */
	c->body_by = now + c->h->cfg.read_timeout_ms + (uint64_t)len / 64;
	set_deadline(c, now + c->h->cfg.read_timeout_ms);
	if (expect && hd->minor >= 1 && c->in_len == 0) {
		va_buf_append_str(&c->out_head, "HTTP/1.1 100 Continue\r\n\r\n");
		c->after = A_BODY;
		int r = flush_out(c, now);
		if (r <= 0)
			return; /* POLLOUT, or closed */
		c->out_head.len = c->out_head_off = 0;
	}
	read_body(c, now);
}

/* Parses what c->in holds in the HEAD state. */
static void
parse_in(struct conn *c, uint64_t now)
{
	struct va_http_head hd;
	const char *why = "";

	int r = va_http_parse_head(c->in, c->in_len, &hd, &why);
	if (r == 0) {
		if (c->peer_eof)
			conn_close(c); /* ended inside (or before) a head */
		return;
	}
	if (r < 0) {
		va_log_info("HTTP %d for %s: %s", -r, c->peer, why);
		c->keep_alive = 0;
		c->head_only = 0;
		refuse(c, -r, why, NULL, now);
		return;
	}
	start_request(c, &hd, now);
}

static void
conn_input(struct conn *c, uint64_t now)
{
	switch (c->st) {
	case S_HEAD: {
		size_t before = c->in_len;
		ssize_t r = read_in(c);
		if (r == -2)
			return;
		if (r > 0 && before == 0) {
			/* A head has read_timeout in all, however it trickles in. */
			c->head_by = now + c->h->cfg.read_timeout_ms;
			set_deadline(c, c->head_by);
		}
		if (r == 0 && c->in_len == 0) {
			conn_close(c);
			return;
		}
		parse_in(c, now);
		return;
	}
	case S_BODY:
		read_body(c, now);
		return;
	case S_WAIT: {
		/* Bytes of a next request: keep a head's worth, then stop reading. */
		ssize_t r = read_in(c);
		if (r == -2)
			return;
		if (r == 0 && c->req && c->h->ops.cancel) {
			/*
			 * The client shut its side: over TCP that is all a client
			 * that closed shows until we write.  Waits end early (a
			 * long poll answers what it has); the answer still goes.
			 */
			c->h->ops.cancel(c->h->opaque, c->req);
		}
		if (r == 0 || (r == -1 && c->in_len == c->in_cap))
			set_events(c, HUP_ONLY);
		return;
	}
	case S_DRAIN: {
		char buf[DRAIN_CHUNK];
		ssize_t r = read(c->fd, buf, sizeof(buf));
		if (r > 0) {
			c->drained += (size_t)r;
			if (c->drained <= c->drain_max)
				return;
		} else if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		conn_close(c);
		return;
	}
	default:
		return;
	}
}

static void
conn_event(struct conn *c, unsigned ev, uint64_t now)
{
	if (c->st == S_STREAM) {
		stream_event(c, ev, now);
		return;
	}
	if (c->st == S_WRITE && (ev & (POLLOUT | POLLERR | POLLHUP))) {
		int r = flush_out(c, now);
		if (r == 1)
			written(c, now);
		return;
	}
	if (c->st == S_WAIT && (ev & (POLLERR | POLLHUP))) {
		/* The client is gone; the answer will find no one. */
		va_log_debug("HTTP %s: the client went away before its answer", c->peer);
		conn_close(c);
		return;
	}
	if (ev & (POLLIN | POLLHUP | POLLERR))
		conn_input(c, now);
}

/* The loop's callback of a connection's socket. */
static void
conn_cb(void *opaque, int fd, unsigned revents)
{
	struct conn *c = opaque;
	va_httpd *h = c->h;

	(void)fd;
	enter(h);
	if (c->st != S_DEAD)
		conn_event(c, revents, va_now_ms());
	leave(h);
}

/* A connection's deadline passed (see set_deadline). */
static void
conn_due(void *opaque)
{
	struct conn *c = opaque;
	va_httpd *h = c->h;
	uint64_t now = va_now_ms();

	enter(h);
	if ((c->st == S_HEAD && c->in_len > 0) || c->st == S_BODY) {
		va_log_info("HTTP 408 for %s: the request stopped arriving", c->peer);
		free(c->body);
		c->body = NULL;
		c->in_len = 0;
		c->head_only = 0;
		refuse(c, 408, "the request did not arrive in time", NULL, now);
	} else if (c->st == S_STREAM) {
		va_log_info("HTTP %s: %s %s stalled (no byte moved in %u ms): closed", c->peer,
			    va_http_stream_method(c->stream), c->target, c->h->cfg.read_timeout_ms);
		conn_close(c);
	} else if (c->st != S_DEAD) {
		va_log_debug("HTTP %s: closed (%s)", c->peer,
			     c->st == S_HEAD ? "idle" : "no progress");
		conn_close(c);
	}
	leave(h);
}

/* ---- connections ---- */

static void
conn_close(struct conn *c)
{
	va_httpd *h = c->h;

	if (c->st == S_DEAD)
		return;
	c->st = S_DEAD;
	va_loop_fd_clear(h->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	va_loop_timer_free(c->timer); /* fine from its own callback */
	c->timer = NULL;
	drop_route(c);
	if (c->stream) {
		struct va_http_stream *sx = c->stream;
		c->stream = NULL;
		stream_closed(sx);
	}
	if (c->req) {
		struct va_http_req *req = c->req;
		req->c = NULL; /* answered later into the void */
		c->req = NULL;
		if (h->ops.cancel)
			h->ops.cancel(h->opaque, req);
	}
	/* Off the open list, onto the dead one (freed by leave()). */
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	if (!c->authed)
		h->nunauth--;
	c->prev = NULL;
	c->next = h->dead;
	h->dead = c;
	/* A free slot (and a descriptor): listen again if we had stopped. */
	if (!h->finishing) {
		listeners_poll(h, 1);
		va_loop_timer_stop(h->retry_timer);
	}
}

static void
conn_free(struct conn *c)
{
	if (c->stream)
		stream_free(c->stream);
	free(c->in);
	free(c->body);
	va_buf_free(&c->out_head);
	free(c->out_body);
	explicit_bzero(c->auth_ok, sizeof(c->auth_ok));
	free(c);
}

/* Empties the ready list (its connections are closed: nothing to parse). */
static void
clear_ready(va_httpd *h)
{
	while (h->ready) {
		h->ready->ready = 0;
		h->ready = h->ready->ready_next;
	}
}

static void
free_dead(va_httpd *h)
{
	struct conn *keep = NULL;

	while (h->dead) {
		struct conn *c = h->dead;
		h->dead = c->next;
		if (c->ready) {
			/* Still on the ready list: freed once it is off it. */
			c->next = keep;
			keep = c;
			continue;
		}
		conn_free(c);
	}
	h->dead = keep;
}

static void
peer_of(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, outlen, "unknown peer");
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (void *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (void *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "a local peer");
	}
}

/* The address of fd's peer without the port ("" for a unix socket). */
static void
addr_of(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	out[0] = '\0';
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&ss)->sin_addr, out, (socklen_t)outlen);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr, out,
			  (socklen_t)outlen);
}

/*
 * Room for one more unauthenticated connection from addr: closes the
 * oldest unauthenticated one of that address when it has its share, else
 * the oldest of all when the quota is full (see httpd.h).
 */
static void
unauth_make_room(va_httpd *h, const char *addr)
{
	struct conn *oldest_addr = NULL, *oldest = NULL;
	size_t of_addr = 0;

	for (struct conn *c = h->conns; c; c = c->next) {
		if (c->authed)
			continue;
		if (!oldest || c->accepted < oldest->accepted)
			oldest = c;
		if (strcmp(c->addr, addr) == 0) {
			of_addr++;
			if (!oldest_addr || c->accepted < oldest_addr->accepted)
				oldest_addr = c;
		}
	}
	struct conn *victim = of_addr >= VA_HTTPD_UNAUTH_PER_ADDR ? oldest_addr
			      : h->nunauth >= VA_HTTPD_UNAUTH_MAX ? oldest : NULL;
	if (victim) {
		va_log_warnx("HTTP: %s unauthenticated connections open%s: closing the oldest, "
			     "from %s", of_addr >= VA_HTTPD_UNAUTH_PER_ADDR ? "too many" : "the most",
			     of_addr >= VA_HTTPD_UNAUTH_PER_ADDR ? " from one address" : "",
			     victim->peer);
		conn_close(victim);
	}
}

static void
listeners_poll(va_httpd *h, int on)
{
	for (size_t i = 0; i < h->nls; i++) {
		struct listener *l = h->ls[i];
		if (l->polled == on || l->fd < 0)
			continue;
		if (va_loop_fd_events(h->loop, l->fd, on ? POLLIN : 0) == 0)
			l->polled = on;
	}
}

/* Accepting may start again (the retry timer). */
static void
accept_retry(void *opaque)
{
	va_httpd *h = opaque;

	if (!h->finishing && h->nconns < h->cfg.max_conn)
		listeners_poll(h, 1);
}

static void
accept_some(struct listener *l, uint64_t now)
{
	va_httpd *h = l->h;

	for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
		if (h->nconns >= h->cfg.max_conn) {
			/* Full: the rest wait in the backlog until a connection closes. */
			listeners_poll(h, 0);
			/* Readable while full: somebody does wait. */
			if (i == 0)
				va_log_warnx("HTTP: %zu connections open, the most served at once: "
					     "new ones wait", h->nconns);
			return;
		}
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/*
			 * Out of descriptors or memory: the client stays in the
			 * backlog, and the listener stays readable, so stop
			 * polling it (a level-triggered spin otherwise) and try
			 * again a little later or when a connection closes.
			 */
			if (!h->accept_warned)
				va_log_warn("HTTP: accept on %s (new connections wait)", l->addr);
			h->accept_warned = 1;
			listeners_poll(h, 0);
			va_loop_timer_at(h->retry_timer, now + ACCEPT_RETRY_MS);
			return;
		}
		h->accept_warned = 0;
		struct conn *c = calloc(1, sizeof(*c));
		if (!c || !(c->timer = va_loop_timer_new(h->loop, conn_due, c))) {
			va_log_errx("HTTP: out of memory: connection refused");
			free(c);
			close(fd);
			return;
		}
		c->h = h;
		c->fd = fd;
		c->need_auth = l->need_auth;
		c->authed = !l->need_auth;
		c->accepted = ++h->accepts;
		c->st = S_HEAD;
		c->events = POLLIN;
		if (!l->path) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		peer_of(fd, c->peer, sizeof(c->peer));
		if (!c->authed) {
			addr_of(fd, c->addr, sizeof(c->addr));
			unauth_make_room(h, c->addr);
		}
		int r = va_loop_fd_set(h->loop, fd, POLLIN, conn_cb, c);
		if (r < 0) {
			va_log_warnx("HTTP: epoll_ctl: %s", strerror(-r));
			va_loop_timer_free(c->timer);
			close(fd);
			free(c);
			return;
		}
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		h->nconns++;
		if (!c->authed)
			h->nunauth++;
		set_deadline(c, now + h->cfg.idle_timeout_ms);
		va_log_debug("HTTP: connection from %s on %s", c->peer, l->addr);
	}
}

/* The loop's callback of a listening socket. */
static void
listener_cb(void *opaque, int fd, unsigned revents)
{
	struct listener *l = opaque;

	(void)fd;
	(void)revents;
	enter(l->h);
	accept_some(l, va_now_ms());
	leave(l->h);
}

/* Requests that were pipelined behind an answered one (mark_ready). */
static void
parse_ready(void *opaque)
{
	va_httpd *h = opaque;
	uint64_t now = va_now_ms();

	/*
	 * Only the connections marked before this pass: one marked again
	 * meanwhile waits for the next pass, after the loop has polled, so
	 * that no connection can keep this thread here (and every guest
	 * without an answer).
	 */
	struct conn *list = h->ready;
	h->ready = NULL;
	enter(h);
	while (list) {
		struct conn *c = list;
		list = c->ready_next;
		c->ready = 0;
		if (c->close_soon && c->st != S_DEAD)
			conn_close(c);
		else if (c->st == S_HEAD && c->in_len > 0)
			parse_in(c, now);
		else if (c->st == S_STREAM)
			stream_ready(c, now);
	}
	leave(h);
}

void
va_httpd_respond(struct va_http_req *req, int status, const char *content_type,
		 uint8_t *body, size_t len)
{
	struct conn *c = req->c;

	free(req);
	if (!c) {
		free(body);
		return;
	}
	va_httpd *h = c->h;
	enter(h);
	c->req = NULL;
	if (status >= 400)
		c->keep_alive = 0;
	answer(c, status, content_type, body, len, NULL, va_now_ms());
	leave(h);
}

size_t
va_httpd_connections(const va_httpd *h)
{
	return h->nconns;
}

/* ---- streams (httpd.h) ---- */

/* The longest line of a chunked body (size and extensions, or a trailer). */
#define CHUNK_LINE_MAX 1024
/* All trailer lines of a chunked body together. */
#define CHUNK_TRAILERS_MAX 8192
/* Pieces of the answer written by one sendmsg. */
#define STREAM_IOV 64

/* A piece of a stream's answer: a malloc'ed block, or a few bytes inline. */
struct seg {
	uint8_t *data;      /* freed once written; NULL: small */
	size_t len, off;
	uint8_t small[32];  /* a chunk's size line, its CRLF, "100 Continue" (25 bytes) */
};

enum chunk_state { CK_SIZE, CK_DATA, CK_DATA_END, CK_TRAILER };

struct va_http_stream {
	struct conn *c;
	va_http_stream_fn *cb;
	void *ctx;
	char method[VA_HTTP_METHOD_MAX];
	/* The body. */
	int64_t body_len;        /* Content-Length, -1 chunked */
	uint64_t body_left;      /* Content-Length: bytes still to come */
	int body_done;           /* read to its end */
	int body_err;            /* -EPROTO, -EPIPE once seen */
	int want;
	int expect_continue;     /* "100 Continue" owed when the body is first wanted */
	int http11;              /* an HTTP/1.1 request: chunked answers */
	enum chunk_state ck;
	uint64_t ck_left;
	size_t trailer_bytes;
	/* The answer. */
	int started, ended;
	int no_body;             /* HEAD, 1xx, 204, 304 */
	int chunked;
	int close_after;         /* Connection: close (or close-delimited) */
	int64_t out_left;        /* Content-Length: what the writes may still add; -1: any */
	struct seg *q;           /* a ring of qcap pieces: qlen from qhead */
	size_t qhead, qlen, qcap;
	size_t queued;           /* bytes in q not written */
	int failing;             /* a write failed: the connection closes from the ready timer */
};

static void
stream_free(struct va_http_stream *sx)
{
	for (size_t i = 0; i < sx->qlen; i++)
		free(sx->q[(sx->qhead + i) % sx->qcap].data);
	free(sx->q);
	free(sx);
}

/* The connection went (conn_close): the callee hears it, then st is gone. */
static void
stream_closed(struct va_http_stream *sx)
{
	sx->c = NULL;
	if (sx->cb && !sx->ended)
		sx->cb(sx->ctx, sx, VA_HTTP_STREAM_CLOSED);
	stream_free(sx);
}

/* va_httpd_finish: an answer that ended and is still being written. */
static int
stream_ending(const struct va_http_stream *sx)
{
	return sx && sx->ended && sx->queued > 0;
}

/* A failure inside one of the callee's calls: the connection closes soon, not now. */
static void
stream_fail(struct conn *c)
{
	if (c->stream)
		c->stream->failing = 1;
	c->close_soon = 1;
	mark_ready(c);
}

/*
 * The loop interest and the deadline for what the stream waits for: a
 * body the callee wants, or answer bytes to write; each must move within
 * read_timeout (progress: bytes just moved, which restarts the time).
 */
static void
stream_arm(struct conn *c, uint64_t now, int progress)
{
	struct va_http_stream *sx = c->stream;
	unsigned ev = 0;

	if (sx->want && !sx->body_done && !sx->body_err && !sx->failing)
		ev |= POLLIN;
	if (sx->queued > 0 && !sx->failing)
		ev |= POLLOUT;
	set_events(c, ev ? ev : HUP_ONLY);
	if (!ev)
		set_deadline(c, UINT64_MAX);
	else if (progress || c->deadline == UINT64_MAX)
		set_deadline(c, now + c->h->cfg.read_timeout_ms);
}

static int
stream_push(struct va_http_stream *sx, uint8_t *data, const void *small, size_t len)
{
	if (sx->qlen == sx->qcap) {
		size_t cap = sx->qcap ? 2 * sx->qcap : 16;
		struct seg *q = malloc(cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < sx->qlen; i++)
			q[i] = sx->q[(sx->qhead + i) % sx->qcap];
		free(sx->q);
		sx->q = q;
		sx->qcap = cap;
		sx->qhead = 0;
	}
	struct seg *g = &sx->q[(sx->qhead + sx->qlen) % sx->qcap];
	g->data = data;
	g->len = len;
	g->off = 0;
	if (!data)
		memcpy(g->small, small, len);
	sx->qlen++;
	sx->queued += len;
	return 0;
}

/*
 * Writes what the socket takes of the queue.  Returns how many pieces
 * were written whole (>= 0), or -1 when the connection failed (the
 * caller closes it, or has it closed).
 */
static int
stream_flush(struct conn *c, uint64_t now)
{
	struct va_http_stream *sx = c->stream;
	int pieces = 0;

	while (sx->qlen > 0) {
		struct iovec iov[STREAM_IOV];
		size_t n = 0;
		for (size_t i = 0; i < sx->qlen && n < STREAM_IOV; i++) {
			struct seg *g = &sx->q[(sx->qhead + i) % sx->qcap];
			iov[n].iov_base = (g->data ? g->data : g->small) + g->off;
			iov[n++].iov_len = g->len - g->off;
		}
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0) {
			va_log_debug("HTTP %s: write: %s", c->peer, strerror(errno));
			return -1;
		}
		size_t left = (size_t)w;
		sx->queued -= left;
		while (left > 0) {
			struct seg *g = &sx->q[sx->qhead];
			size_t k = g->len - g->off;
			if (k > left) {
				g->off += left;
				break;
			}
			left -= k;
			free(g->data);
			sx->qhead = (sx->qhead + 1) % sx->qcap;
			sx->qlen--;
			pieces++;
		}
		/* Pieces of 0 bytes (none are queued) would stay: nothing else does. */
	}
	stream_arm(c, now, pieces > 0 || sx->queued == 0);
	return pieces;
}

/*
 * The answer is all written after va_http_stream_end: the connection
 * goes on with its next request, or closes.
 */
static void
stream_done(struct conn *c, uint64_t now)
{
	struct va_http_stream *sx = c->stream;

	c->after = sx->close_after ? A_DRAIN : A_NEXT;
	c->stream = NULL;
	stream_free(sx);
	c->st = S_WRITE;
	written(c, now);
}

/* Flushes from one of the callee's calls; 0, or -EPIPE (the connection closes soon). */
static int
stream_flush_call(struct conn *c, uint64_t now)
{
	struct va_http_stream *sx = c->stream;

	if (stream_flush(c, now) < 0) {
		stream_fail(c);
		return -EPIPE;
	}
	if (sx->ended && sx->queued == 0)
		stream_done(c, now);
	return 0;
}

static void
stream_start(struct conn *c, struct va_http_head *hd, uint64_t now)
{
	va_httpd *h = c->h;
	struct va_http_stream *sx = calloc(1, sizeof(*sx));
	const char *why = NULL;
	int status = 0;

	if (hd->expect_other) {
		status = 417;
		why = "the only expectation served is 100-continue";
	} else if (hd->transfer_encoding && !hd->te_chunked) {
		status = 501;
		why = "the only transfer coding of a request body served is chunked";
	} else if (hd->te_chunked && (hd->content_length >= 0 || hd->minor == 0)) {
		status = 400;
		why = "a chunked body with a Content-Length, or in HTTP/1.0";
	} else if (!sx) {
		status = 503;
		why = "out of memory";
	}
	/* The head's bytes stay for hd; the rest (body, next request) moves on. */
	char *headbuf = c->in;
	size_t total = c->in_len, hl = hd->head_len;
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	if (total > hl) {
		size_t cap = total - hl > IN_FIRST ? total - hl : IN_FIRST;
		c->in = malloc(cap);
		if (c->in) {
			memcpy(c->in, headbuf + hl, total - hl);
			c->in_len = total - hl;
			c->in_cap = cap;
		} else if (!status) {
			status = 503;
			why = "out of memory";
		}
	}
	if (status) {
		free(sx);
		va_log_info("HTTP %d for %s %s from %s: %s", status, hd->method, c->target, c->peer,
			    why);
		free(headbuf);
		refuse(c, status, why, NULL, now);
		return;
	}
	snprintf(sx->method, sizeof(sx->method), "%s", hd->method);
	sx->c = c;
	sx->body_len = hd->te_chunked ? -1 : hd->content_length > 0 ? hd->content_length : 0;
	sx->body_left = sx->body_len > 0 ? (uint64_t)sx->body_len : 0;
	sx->body_done = sx->body_len == 0;
	sx->expect_continue = hd->expect_continue && hd->minor >= 1 && !sx->body_done;
	sx->http11 = hd->minor >= 1;
	sx->out_left = -1;
	c->stream = sx;
	c->st = S_STREAM;
	stream_arm(c, now, 0);
	h->ops.stream(h->opaque, sx, hd);
	free(headbuf);
}

/*
 * Can a read of the body make progress without the socket: a failure or
 * the end to report, or bytes in c->in it can take?  Part of a chunked
 * body's control line (its size, the CRLF after the data, a trailer)
 * cannot: it waits for the rest from the socket (POLLIN).  Were it
 * "readable", the callee's read would find nothing, ask again
 * (want_body), and the ready timer would run for it pass after pass.
 */
static int
stream_body_waits(const struct conn *c, const struct va_http_stream *sx)
{
	if (sx->body_err || c->peer_eof)
		return 1;
	if (c->in_len == 0)
		return 0;
	return sx->body_len >= 0 || sx->ck == CK_DATA || c->in_len >= CHUNK_LINE_MAX ||
	       memchr(c->in, '\n', c->in_len) != NULL;
}

/* The ready timer: body bytes that wait in c->in, or a failed read, for the callee. */
static void
stream_ready(struct conn *c, uint64_t now)
{
	struct va_http_stream *sx = c->stream;

	(void)now;
	if (sx->cb && sx->want && !sx->body_done && !sx->failing && stream_body_waits(c, sx))
		sx->cb(sx->ctx, sx, VA_HTTP_STREAM_READABLE);
}

static void
stream_event(struct conn *c, unsigned ev, uint64_t now)
{
	struct va_http_stream *sx = c->stream;
	unsigned tell = 0;

	if (sx->failing)
		return; /* closes from the ready timer */
	if (ev & POLLERR) {
		conn_close(c);
		return;
	}
	if (sx->queued > 0 && (ev & (POLLOUT | POLLHUP))) {
		int r = stream_flush(c, now);
		if (r < 0) {
			conn_close(c);
			return;
		}
		if (sx->ended) {
			if (sx->queued == 0)
				stream_done(c, now);
			return;
		}
		if (r > 0)
			tell |= VA_HTTP_STREAM_WRITABLE;
	} else if ((ev & POLLHUP) && !(sx->want && !sx->body_done)) {
		/* Gone altogether (not a half close): nobody to answer. */
		va_log_debug("HTTP %s: the client went away during %s %s", c->peer, sx->method,
			     c->target);
		conn_close(c);
		return;
	}
	if ((ev & (POLLIN | POLLHUP)) && sx->want && !sx->body_done)
		tell |= VA_HTTP_STREAM_READABLE;
	if (tell && sx->cb)
		sx->cb(sx->ctx, sx, tell);
}

void
va_http_stream_set_cb(struct va_http_stream *st, va_http_stream_fn *fn, void *ctx)
{
	st->cb = fn;
	st->ctx = ctx;
}

const char *
va_http_stream_method(const struct va_http_stream *st)
{
	return st->method;
}

const char *
va_http_stream_target(const struct va_http_stream *st)
{
	return st->c ? st->c->target : "";
}

int64_t
va_http_stream_body_length(const struct va_http_stream *st)
{
	return st->body_len;
}

size_t
va_http_stream_queued(const struct va_http_stream *st)
{
	return st->queued;
}

void
va_http_stream_want_body(struct va_http_stream *st, int on)
{
	struct conn *c = st->c;
	uint64_t now = va_now_ms();

	if (!c || st->failing)
		return;
	enter(c->h);
	int was = st->want;
	st->want = on;
	if (on && st->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		_Static_assert(sizeof(cont) - 1 <= sizeof(((struct seg *)0)->small),
			       "the interim answer fits a small piece");
		st->expect_continue = 0;
		if (!st->started && stream_push(st, NULL, cont, sizeof(cont) - 1) == 0)
			stream_flush_call(c, now);
	}
	if (!st->failing) {
		stream_arm(c, now, on && !was);
		if (on && !st->body_done && stream_body_waits(c, st))
			mark_ready(c);
	}
	leave(c->h);
}

/*
 * Reads into c->in what the socket has, for the lines of a chunked body.
 * Returns > 0 bytes, -EAGAIN, -EPIPE (end of stream or error), -EPROTO
 * (a line longer than CHUNK_LINE_MAX).
 */
static ssize_t
stream_fill_line(struct conn *c)
{
	if (c->in_len >= CHUNK_LINE_MAX)
		return -EPROTO;
	if (c->in_cap < CHUNK_LINE_MAX) {
		char *p = realloc(c->in, IN_FIRST);
		if (!p)
			return -EPIPE;
		c->in = p;
		c->in_cap = IN_FIRST;
	}
	ssize_t r = read_more(c);
	return r > 0 ? r : r == -EAGAIN ? -EAGAIN : -EPIPE;
}

/* Body bytes: from c->in first, then straight from the socket.  > 0, 0 (end), -errno. */
static ssize_t
stream_take(struct conn *c, uint8_t *buf, size_t n)
{
	if (c->in_len > 0) {
		size_t k = n < c->in_len ? n : c->in_len;
		memcpy(buf, c->in, k);
		consume_in(c, k);
		return (ssize_t)k;
	}
	for (;;) {
		ssize_t r = read(c->fd, buf, n);
		if (r > 0)
			return r;
		if (r == 0) {
			c->peer_eof = 1;
			return -EPIPE;
		}
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -EPIPE;
	}
}

/* The line at the start of c->in (without its CRLF), or NULL when it is not whole. */
static char *
stream_line(struct conn *c, size_t *len, size_t *used)
{
	char *lf = c->in_len > 0 ? memchr(c->in, '\n', c->in_len) : NULL; /* c->in may be NULL */

	if (!lf)
		return NULL;
	*used = (size_t)(lf - c->in) + 1;
	*len = (size_t)(lf - c->in);
	if (*len > 0 && c->in[*len - 1] == '\r')
		(*len)--;
	return c->in;
}

/* One step of the chunked decoder that is not data: 1 (go on), or -errno. */
static int
chunk_control(struct conn *c, struct va_http_stream *sx)
{
	size_t len, used;
	char *line;

	while (!(line = stream_line(c, &len, &used))) {
		ssize_t r = stream_fill_line(c);
		if (r < 0)
			return (int)r;
	}
	if (len >= CHUNK_LINE_MAX || memchr(line, '\r', len))
		return -EPROTO;
	if (sx->ck == CK_DATA_END) {
		if (len != 0)
			return -EPROTO;
		sx->ck = CK_SIZE;
	} else if (sx->ck == CK_SIZE) {
		uint64_t size = 0;
		size_t i = 0;
		for (; i < len && i < 16; i++) {
			char ch = line[i];
			int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ?
				ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
			if (d < 0)
				break;
			size = size * 16 + (uint64_t)d;
		}
		/* Digits, then nothing, or extensions after ';' (ignored). */
		if (i == 0 || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
			return -EPROTO;
		sx->ck_left = size;
		sx->ck = size ? CK_DATA : CK_TRAILER;
	} else { /* CK_TRAILER */
		if (len == 0) {
			sx->body_done = 1;
		} else {
			sx->trailer_bytes += len;
			if (sx->trailer_bytes > CHUNK_TRAILERS_MAX)
				return -EPROTO;
		}
	}
	consume_in(c, used);
	return 1;
}

ssize_t
va_http_stream_read(struct va_http_stream *st, void *buf, size_t n)
{
	struct conn *c = st->c;
	uint8_t *p = buf;
	size_t got = 0;
	ssize_t r = 0;

	if (!c || st->failing)
		return -EPIPE;
	if (st->body_done)
		return 0;
	if (st->body_err)
		return st->body_err;
	enter(c->h);
	uint64_t now = va_now_ms();
	while (got < n && !st->body_done) {
		if (st->body_len >= 0) {
			size_t want = n - got;
			if (want > st->body_left)
				want = (size_t)st->body_left;
			r = stream_take(c, p + got, want);
			if (r <= 0)
				break;
			got += (size_t)r;
			st->body_left -= (uint64_t)r;
			if (st->body_left == 0)
				st->body_done = 1;
		} else if (st->ck == CK_DATA) {
			size_t want = n - got;
			if (want > st->ck_left)
				want = (size_t)st->ck_left;
			r = stream_take(c, p + got, want);
			if (r <= 0)
				break;
			got += (size_t)r;
			st->ck_left -= (uint64_t)r;
			if (st->ck_left == 0)
				st->ck = CK_DATA_END;
		} else {
			r = chunk_control(c, st);
			if (r < 0)
				break;
		}
	}
	if (r < 0 && r != -EAGAIN) {
		st->body_err = (int)r;
		va_log_info("HTTP %s: %s %s: %s", c->peer, st->method, c->target,
			    r == -EPROTO ? "a malformed chunked body" :
			    "the client closed inside the request body");
		if (r == -EPIPE)
			stream_fail(c);
	}
	if (!st->failing)
		stream_arm(c, now, got > 0);
	leave(c->h);
	if (got > 0)
		return (ssize_t)got;
	if (st->body_done)
		return 0;
	return r < 0 ? r : -EAGAIN;
}

int
va_http_stream_head(struct va_http_stream *st, int status, const char *extra, int64_t length)
{
	struct conn *c = st->c;
	struct va_buf b = { 0 };
	int r;

	if (!c || st->failing)
		return -EPIPE;
	if (st->started)
		return -EINVAL;
	st->started = 1;
	st->no_body = c->head_only || status < 200 || status == 204 || status == 304;
	st->close_after = !c->keep_alive || !st->body_done || st->body_err;
	if (!st->no_body) {
		if (length >= 0)
			st->out_left = length;
		else if (st->http11)
			st->chunked = 1;
		else
			st->close_after = 1; /* HTTP/1.0: the end of the stream ends the body */
	}
	if (st->close_after)
		c->keep_alive = 0;
	r = va_buf_printf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\n%s", status, va_http_reason(status),
			  http_date(c->h), extra ? extra : "");
	if (r == 0 && length >= 0 && status != 204 && status != 304 && status >= 200)
		r = va_buf_printf(&b, "Content-Length: %lld\r\n", (long long)length);
	if (r == 0 && st->chunked)
		r = va_buf_printf(&b, "Transfer-Encoding: chunked\r\n");
	if (r == 0)
		r = va_buf_printf(&b, "%s\r\n", st->close_after ? "Connection: close\r\n" : "");
	size_t len = b.len;
	uint8_t *data = r == 0 ? va_buf_steal(&b, &len) : NULL;
	va_buf_free(&b);
	if (!data)
		return -ENOMEM;
	enter(c->h);
	r = stream_push(st, data, NULL, len);
	if (r < 0)
		free(data);
	else
		r = stream_flush_call(c, va_now_ms());
	leave(c->h);
	return r;
}

int
va_http_stream_write(struct va_http_stream *st, uint8_t *data, size_t len)
{
	struct conn *c = st->c;
	int r;

	if (!c || st->failing) {
		free(data);
		return -EPIPE;
	}
	if (!st->started || st->ended || (st->out_left >= 0 && (uint64_t)st->out_left < len)) {
		free(data);
		return -EINVAL;
	}
	if (st->no_body || len == 0) {
		free(data);
		return 0;
	}
	if (st->out_left >= 0)
		st->out_left -= (int64_t)len;
	enter(c->h);
	if (st->chunked) {
		char line[24];
		int n = snprintf(line, sizeof(line), "%zx\r\n", len);
		r = stream_push(st, NULL, line, (size_t)n);
		if (r == 0)
			r = stream_push(st, data, NULL, len);
		else
			free(data);
		if (r == 0)
			r = stream_push(st, NULL, "\r\n", 2);
	} else {
		r = stream_push(st, data, NULL, len);
		if (r < 0)
			free(data);
	}
	if (r == 0)
		r = stream_flush_call(c, va_now_ms());
	else
		stream_fail(c);
	leave(c->h);
	return r;
}

void
va_http_stream_end(struct va_http_stream *st, const char *trailers)
{
	struct conn *c = st->c;

	if (!c)
		return;
	if (!st->started || (st->out_left > 0 && !st->no_body)) {
		/* Not the answer it announced: the client must not take it as whole. */
		va_http_stream_abort(st);
		return;
	}
	enter(c->h);
	st->ended = 1;
	st->cb = NULL;
	if (st->chunked && !st->failing) {
		struct va_buf b = { 0 };
		size_t len = 0;
		uint8_t *data = NULL;
		if (va_buf_printf(&b, "0\r\n%s\r\n", trailers ? trailers : "") == 0)
			data = va_buf_steal(&b, &len);
		va_buf_free(&b);
		if (!data || stream_push(st, data, NULL, len) < 0) {
			free(data);
			stream_fail(c);
		}
	}
	if (!st->failing)
		stream_flush_call(c, va_now_ms());
	leave(c->h);
}

void
va_http_stream_abort(struct va_http_stream *st)
{
	struct conn *c = st->c;

	if (!c)
		return;
	va_httpd *h = c->h;
	enter(h);
	st->cb = NULL;
	st->ended = 1;
	va_log_debug("HTTP %s: %s %s: the answer was cut", c->peer, st->method, c->target);
	conn_close(c);
	leave(h);
}

void
va_http_stream_respond(struct va_http_stream *st, int status, const char *content_type,
		       const char *extra, uint8_t *body, size_t len)
{
	struct conn *c = st->c;

	if (!c || st->failing) {
		free(body);
		return;
	}
	if (st->started) {
		free(body);
		va_http_stream_abort(st);
		return;
	}
	va_httpd *h = c->h;
	enter(h);
	if (!st->body_done || st->body_err)
		c->keep_alive = 0; /* the rest of the body is not read: drained, then closed */
	c->stream = NULL;
	stream_free(st);
	answer(c, status, content_type, body, len, extra, va_now_ms());
	leave(h);
}

/* ---- listening sockets ---- */

static int
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

static int
open_tcp(struct listener *l, const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *ai = NULL;

	if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "listen tcp:%s: expected tcp:HOST:PORT", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	char *h = host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		h++;
	}
	int r = getaddrinfo(h, colon + 1, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "listen tcp:%s: %s", spec, gai_strerror(r));
		return -1;
	}
	if (!is_loopback(ai->ai_addr)) {
		if (!l->h->cfg.allow_remote) {
			snprintf(err, errlen, "listen tcp:%s: not a loopback address; listening "
				 "there needs --allow-remote", spec);
			freeaddrinfo(ai);
			return -1;
		}
		va_log_warnx("listening on tcp:%s, a non-loopback address (--allow-remote): "
			     "anyone who can reach it %s", spec,
			     l->h->cfg.secret ? "and has the secret can control the guests"
					   : "can control the guests (--no-auth!)");
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "listen tcp:%s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);

	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (void *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (void *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			port = ntohs(in6->sin6_port);
		}
	}
	l->fd = fd;
	l->need_auth = l->h->cfg.secret != NULL;
	va_log_info("listening on tcp:%s%s%s:%u (%s)", ss.ss_family == AF_INET6 ? "[" : "", ip,
		    ss.ss_family == AF_INET6 ? "]" : "", port,
		    l->need_auth ? "HTTP Basic authentication" : "no authentication");
	return 0;
}

static int
lookup_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
	struct group gr, *res = NULL;
	char buf[4096];
	char *end;

	int r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (r == 0 && res) {
		*gid = res->gr_gid;
		return 0;
	}
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	if (*name && !*end && !errno) {
		*gid = (gid_t)v;
		return 0;
	}
	snprintf(err, errlen, "socket group \"%s\": %s", name, r ? strerror(r) : "no such group");
	return -1;
}

static int
open_unix(struct listener *l, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	gid_t gid = 0;

	if (!*path || strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "listen unix:%s: the path must have 1 to %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -1;
	}
	if (l->h->cfg.socket_group && lookup_group(l->h->cfg.socket_group, &gid, err, errlen) < 0)
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);

	/* A socket file left by an earlier run: remove it if nobody listens. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "listen unix:%s: the path exists and is not a socket",
				 path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		if (probe >= 0)
			close(probe);
		if (alive) {
			snprintf(err, errlen, "listen unix:%s: another process listens there", path);
			return -1;
		}
		unlink(path);
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
		return -1;
	}
	/* Created with no access for group and others, then opened up as asked. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((l->h->cfg.socket_group && chown(path, (uid_t)-1, gid) < 0) ||
	    chmod(path, l->h->cfg.socket_group ? 0660 : 0600) < 0) {
		snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	l->fd = fd;
	l->path = strdup(path);
	l->need_auth = 0; /* the socket's mode is the access control */
	va_log_info("listening on unix:%s (mode %s%s)", path, l->h->cfg.socket_group ? "0660, group " : "0600",
		    l->h->cfg.socket_group ? l->h->cfg.socket_group : "");
	return 0;
}


/* ---- setting up and down ---- */

va_httpd *
va_httpd_new(va_loop *loop, const struct va_httpd_config *cfg, const struct va_httpd_ops *ops,
	     void *opaque, char *err, size_t errlen)
{
	va_httpd *h = calloc(1, sizeof(*h));

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = *cfg;
	if (!h->cfg.max_conn)
		h->cfg.max_conn = VA_HTTPD_MAX_CONN;
	h->ops = *ops;
	h->opaque = opaque;
	h->loop = loop;
	h->ready_timer = va_loop_timer_new(loop, parse_ready, h);
	h->retry_timer = va_loop_timer_new(loop, accept_retry, h);
	if (!h->ready_timer || !h->retry_timer) {
		snprintf(err, errlen, "out of memory");
		va_loop_timer_free(h->ready_timer);
		va_loop_timer_free(h->retry_timer);
		free(h);
		return NULL;
	}
	return h;
}

static void
listener_close(struct listener *l)
{
	if (l->fd >= 0) {
		va_loop_fd_clear(l->h->loop, l->fd);
		close(l->fd);
	}
	l->fd = -1;
	l->polled = 0;
}

static void
listener_free(struct listener *l)
{
	if (!l)
		return;
	listener_close(l);
	if (l->path)
		unlink(l->path);
	free(l->path);
	free(l->addr);
	free(l);
}

int
va_httpd_listen(va_httpd *h, const char *addr, char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof(*l)), **tab;

	if (!l || !(l->addr = strdup(addr))) {
		free(l);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->h = h;
	l->fd = -1;
	int r = !strncmp(addr, "tcp:", 4) ? open_tcp(l, addr + 4, err, errlen)
		: !strncmp(addr, "unix:", 5) ? open_unix(l, addr + 5, err, errlen)
		: (snprintf(err, errlen, "listen %s: expected tcp:HOST:PORT or unix:PATH", addr), -1);
	if (r < 0)
		goto fail;
	int fl = fcntl(l->fd, F_GETFL);
	if (fl < 0 || fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    listen(l->fd, SOMAXCONN) < 0) {
		snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
		goto fail;
	}
	tab = realloc(h->ls, (h->nls + 1) * sizeof(*tab));
	if (!tab) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	h->ls = tab;
	r = va_loop_fd_set(h->loop, l->fd, POLLIN, listener_cb, l);
	if (r < 0) {
		snprintf(err, errlen, "listen %s: epoll_ctl: %s", addr, strerror(-r));
		goto fail;
	}
	l->polled = 1;
	h->ls[h->nls++] = l;
	return 0;
fail:
	listener_free(l);
	return -1;
}

size_t
va_httpd_finish(va_httpd *h)
{
	size_t writing = 0;

	if (!h)
		return 0;
	enter(h);
	h->finishing = 1;
	va_loop_timer_stop(h->retry_timer);
	for (size_t i = 0; i < h->nls; i++)
		listener_close(h->ls[i]);
	for (struct conn *c = h->conns, *n; c; c = n) {
		n = c->next;
		if (c->st == S_WRITE || (c->st == S_STREAM && stream_ending(c->stream)))
			writing++;
		else
			conn_close(c); /* idle, or a request nobody will answer now */
	}
	clear_ready(h); /* every connection on it is closed now */
	leave(h);
	return writing;
}

void
va_httpd_unlink_sockets(va_httpd *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nls; i++) {
		if (h->ls[i]->path) {
			unlink(h->ls[i]->path);
			free(h->ls[i]->path);
			h->ls[i]->path = NULL;
		}
	}
}

void
va_httpd_free(va_httpd *h)
{
	if (!h)
		return;
	h->finishing = 1; /* no listening again as connections close */
	while (h->conns)
		conn_close(h->conns);
	clear_ready(h);
	free_dead(h);
	for (size_t i = 0; i < h->nls; i++)
		listener_free(h->ls[i]);
	free(h->ls);
	va_loop_timer_free(h->ready_timer);
	va_loop_timer_free(h->retry_timer);
	free(h);
}
