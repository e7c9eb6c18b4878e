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

enum state { S_HEAD, S_BODY, S_WAIT, S_WRITE, S_DRAIN, S_DEAD };

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
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		va_log_debug("HTTP %s: read: %s", c->peer, strerror(errno));
		conn_close(c);
		return -2;
	}
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

	enter(h);
	while (h->ready) {
		struct conn *c = h->ready;
		h->ready = c->ready_next;
		c->ready = 0;
		if (c->st == S_HEAD && c->in_len > 0)
			parse_in(c, now);
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
		if (c->st == S_WRITE)
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
