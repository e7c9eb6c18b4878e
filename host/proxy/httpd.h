/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * httpd.h - an event-driven HTTP/1.1 server for POSTed request bodies, on
 * a va_loop (common/loop.h): the proxy's loop, run by its loop thread.
 * Its listening sockets and connections are fds of that loop, and each
 * connection's deadline one of its timers; it has no wait of its own.
 *
 * Why not a thread per connection (xmlrpc-c's Abyss, which va-proxy used
 * first): a forwarded call then woke three threads of the proxy (the
 * connection's, the guest link's, and the handler's again), and on the
 * 2-CPU machines this runs on the switches between them were half of the
 * proxy's time (perf).  Here the thread that reads the guests' answers
 * also writes them to the HTTP clients, in one writev().
 *
 * The server owns listening sockets and connections.  For each request
 * it reads the head (http-parse.h), checks credentials (TCP listeners
 * with a secret), asks ops->route for the path, checks the method (POST)
 * and Content-Length against max_body, sends "100 Continue" when asked,
 * reads the body and hands it to ops->request.  The answer comes later
 * (va_httpd_respond), on the loop's thread.  A connection waits for its
 * answer before it reads the next request (pipelined requests are
 * answered in order).
 *
 * Refusals: 401 (with WWW-Authenticate), 404 (ops->route's text), 405
 * (Allow: POST), 411 (no Content-Length, or Transfer-Encoding), 413 (body
 * over max_body, said before the body is read), 417, 400/431/505 (see
 * http-parse.h), 408 (a head not whole read_timeout after its first byte,
 * a body that paused read_timeout or took longer than read_timeout plus
 * 1 ms per 64 bytes: a trickling client cannot hold a slot).  Accepting
 * pauses while the table is full or descriptors run out; unauthenticated
 * connections have a quota of their own (VA_HTTPD_UNAUTH_MAX).  After any
 * answer of status 400 or more the connection is closed once the client
 * has stopped sending, or at the drain's byte or time limit
 * (VA_HTTPD_DRAIN_*, smaller for a 401).  HTTP/1.0 requests and "Connection: close" get their answer and
 * the connection closes; HTTP/1.1 connections are kept alive otherwise.
 *
 * Streams.  A request whose target starts with cfg.stream_prefix (any
 * method) is not read whole: it goes to ops->stream as soon as its head
 * is in (credentials checked), and its body (Content-Length, or chunked,
 * decoded here) is read in pieces when the callee wants it, and its
 * answer written in pieces as the callee has them (Content-Length, or
 * chunked with trailers; close-delimited for HTTP/1.0), so neither side
 * holds more than the callee chooses:
 *   - the body: the callee asks for it (va_http_stream_want_body), is
 *     told when bytes wait (VA_HTTP_STREAM_READABLE) and reads them into
 *     its own buffers (va_http_stream_read) until -EAGAIN or its buffers
 *     are full; it stops asking when they are (back-pressure: the socket
 *     is not read, the client's writes block).  "100 Continue" goes when
 *     the body is first asked for, so a refusal before that costs the
 *     client no upload;
 *   - the answer: va_http_stream_head, then va_http_stream_write of
 *     malloc'ed pieces (taken, written without a copy), the callee being
 *     told each time a piece went (VA_HTTP_STREAM_WRITABLE) and reading
 *     va_http_stream_queued to decide when to make more;
 *     va_http_stream_end finishes it, va_http_stream_abort cuts the
 *     connection (an answer that cannot be completed: the client sees
 *     it incomplete, never wrong).
 * The time bounds: while the body is wanted, and while answer bytes wait
 * to be written, each read or write must make progress within
 * read_timeout (a slow but moving client is fine; one that stalls is
 * closed); while the callee works (it waits for a guest) there is none
 * here: the callee's own waits are bounded.  The callee hears
 * VA_HTTP_STREAM_CLOSED when the connection goes before its answer ended
 * (client gone, a stall, the server stopping), never from inside one of
 * its own calls to the functions below.
 */
#ifndef VA_PROXY_HTTPD_H
#define VA_PROXY_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"

/* Connections open at once, over all listeners; more wait in the backlog. */
#define VA_HTTPD_MAX_CONN 256
/*
 * After a refusal the connection reads and drops what the client still
 * sends (so that a client still sending its body reads the answer rather
 * than a reset), at most this many bytes and this long from the answer
 * on, whatever the client does: a client that authenticated (a 413, a
 * 404) ...
 */
#define VA_HTTPD_DRAIN_MAX (64u * 1024 * 1024)
#define VA_HTTPD_DRAIN_MS 5000
/* ... and one that did not (a 401): a trickler cannot keep its slot. */
#define VA_HTTPD_UNAUTH_DRAIN_MAX (256u * 1024)
#define VA_HTTPD_UNAUTH_DRAIN_MS 2000
/*
 * Connections of a listener with a secret are unauthenticated until a
 * request of theirs carries the right credentials.  At most this many
 * are open at once, over all listeners, and at most this many from one
 * address: one more evicts the oldest (of that address, else of all), so
 * clients that never authenticate can never take the slots of those who
 * do (they would need to open VA_HTTPD_UNAUTH_MAX connections within the
 * milliseconds a real client takes to send its head).
 */
#define VA_HTTPD_UNAUTH_MAX 64
#define VA_HTTPD_UNAUTH_PER_ADDR 16

typedef struct va_httpd va_httpd;
/* One request waiting for its answer. */
struct va_http_req;

struct va_httpd_config {
	size_t max_body;            /* largest request body */
	const char *secret;         /* Basic auth password for TCP listeners; NULL: none (kept) */
	int allow_remote;           /* TCP on addresses other than loopback */
	const char *socket_group;   /* unix sockets: mode 0660 and this group; NULL: 0600 (kept) */
	unsigned max_conn;          /* 0: VA_HTTPD_MAX_CONN */
	unsigned read_timeout_ms;   /* a request (or answer) must move within this */
	unsigned idle_timeout_ms;   /* an idle keep-alive connection is closed after this */
	const char *stream_prefix;  /* targets that are streams (ops->stream); NULL: none (kept) */
};

/* A request served as a stream (see the top). */
struct va_http_stream;
struct va_http_head;

/* What a stream's callback is told (a mask). */
#define VA_HTTP_STREAM_READABLE 1u /* body bytes wait, or the body ended or failed: read */
#define VA_HTTP_STREAM_WRITABLE 2u /* a piece of the answer was written */
#define VA_HTTP_STREAM_CLOSED 4u   /* the connection went: st is invalid once this returns */
typedef void va_http_stream_fn(void *ctx, struct va_http_stream *st, unsigned events);

/*
 * The callbacks, all on the loop's thread.  They may call
 * va_httpd_respond (for any request), but not va_httpd_free.
 */
struct va_httpd_ops {
	/*
	 * A request head for path came in (credentials checked).  Returns
	 * the target the request is for (anything but NULL), or NULL after
	 * writing why into msg (answered 404).  The target is handed back
	 * exactly once: to ops->request with the body, or to ops->release
	 * when the request ends before (a refusal, a body that does not
	 * come, the connection or the server closed), so a target may hold
	 * a reference.
	 */
	void *(*route)(void *opaque, const char *path, struct va_buf *msg);
	/* A target of ops->route that no request will get (may be NULL). */
	void (*release)(void *opaque, void *target);
	/*
	 * A whole request: body (malloc'ed, a NUL after len) and target are
	 * the callee's.  req must be answered exactly once with
	 * va_httpd_respond, during this call or later, on the loop's thread.
	 */
	void (*request)(void *opaque, struct va_http_req *req, void *target, uint8_t *body,
			size_t len);
	/*
	 * The client of req went away, or shut its sending side, before its
	 * answer (may be NULL): waits for it may end early.  req must still
	 * be answered (the answer is dropped when the client is gone).
	 */
	void (*cancel)(void *opaque, struct va_http_req *req);
	/*
	 * A request for a target under cfg.stream_prefix (may be NULL when
	 * there is no prefix).  hd (http-parse.h) is valid only during the
	 * call (copy what is needed).  The callee answers st exactly once
	 * (va_http_stream_respond, or head, writes and end, or abort), now
	 * or later, unless it hears VA_HTTP_STREAM_CLOSED first; it sets its
	 * callback with va_http_stream_set_cb.
	 */
	void (*stream)(void *opaque, struct va_http_stream *st, const struct va_http_head *hd);
};

/*
 * A server on loop (kept, not owned; it must outlive the server).  Every
 * function below is for the loop's thread (before the loop runs: the
 * thread that will run it).  Returns NULL with err set.
 */
va_httpd *va_httpd_new(va_loop *loop, const struct va_httpd_config *cfg,
		       const struct va_httpd_ops *ops, void *opaque, char *err, size_t errlen);
/*
 * Opens a listening socket on addr ("tcp:HOST:PORT" or "unix:PATH";
 * loopback only, unless allow_remote).  Returns 0 or -1 with err set.
 */
int va_httpd_listen(va_httpd *h, const char *addr, char *err, size_t errlen);

/*
 * Answers req and forgets it: status with a body of content_type (body
 * is taken over and freed; NULL with len 0 for none).  When the client
 * went away meanwhile the answer is dropped.
 */
void va_httpd_respond(struct va_http_req *req, int status, const char *content_type,
		      uint8_t *body, size_t len);

/* ---- streams (see the top); every function is for the loop's thread ---- */

/* Sets the callback of st (NULL: none). */
void va_http_stream_set_cb(struct va_http_stream *st, va_http_stream_fn *fn, void *ctx);
/* The request's method ("GET") and target, as they came. */
const char *va_http_stream_method(const struct va_http_stream *st);
const char *va_http_stream_target(const struct va_http_stream *st);
/* The body's announced length: Content-Length, -1 for a chunked body, 0 for none. */
int64_t va_http_stream_body_length(const struct va_http_stream *st);
/*
 * Asks for the body (on: READABLE comes when bytes wait; the first time,
 * "100 Continue" goes out when the client asked for it) or stops asking
 * (off: the socket is not read).
 */
void va_http_stream_want_body(struct va_http_stream *st, int on);
/*
 * Reads up to n bytes of the body into buf.  Returns the bytes read
 * (> 0), 0 when the body is complete, -EAGAIN when none wait now (READABLE
 * comes when some do, if wanted), -EPROTO for a malformed chunked body,
 * -EPIPE when the client closed (or the connection failed) before the
 * end of the body (then CLOSED follows).
 */
ssize_t va_http_stream_read(struct va_http_stream *st, void *buf, size_t n);
/*
 * Starts the answer: status, extra header lines (each ending in CRLF; may
 * be NULL), and the length of the body to come: >= 0 is Content-Length
 * (the writes must add up to it), -1 unknown (chunked, which allows
 * trailers; close-delimited for an HTTP/1.0 client).  A HEAD request's
 * answer gets its headers only.  Returns 0, -EINVAL (started already),
 * -ENOMEM, -EPIPE (the connection is failing: CLOSED follows).
 */
int va_http_stream_head(struct va_http_stream *st, int status, const char *extra,
			int64_t length);
/*
 * Queues len bytes of the body (data is taken over and freed, also on
 * failure) and writes what goes at once.  Returns 0, -EINVAL (no head,
 * more than Content-Length), -ENOMEM, -EPIPE (CLOSED follows).
 */
int va_http_stream_write(struct va_http_stream *st, uint8_t *data, size_t len);
/* Bytes of the answer queued and not written yet. */
size_t va_http_stream_queued(const struct va_http_stream *st);
/*
 * The answer is complete: with a chunked one, trailers (header lines
 * ending in CRLF, or NULL) go after the last chunk.  st is the server's
 * from here on (the rest is written, then the connection goes on with its
 * next request, or closes when the body was not read to its end).
 */
void va_http_stream_end(struct va_http_stream *st, const char *trailers);
/*
 * Closes the connection at once (an answer that cannot be completed);
 * st is invalid from here on, and no CLOSED comes.
 */
void va_http_stream_abort(struct va_http_stream *st);
/*
 * A whole answer at once (head, body, end): body (malloc'ed, taken; NULL
 * with len 0 for none) of content_type.  Status 400 or more closes the
 * connection afterwards (the body, if any, unread).
 */
void va_http_stream_respond(struct va_http_stream *st, int status, const char *content_type,
			    const char *extra, uint8_t *body, size_t len);

/*
 * At the stop, after the last answers were given: closes the listeners
 * and every connection but those still writing an answer; those close
 * once their answer went.  Returns how many are left: the caller runs
 * the loop while va_httpd_connections() is above 0 and its patience
 * lasts (the client reads slowly, the answer is large), then calls
 * va_httpd_free.
 */
size_t va_httpd_finish(va_httpd *h);
/* Removes the unix socket files (at exit; also from a fatal path). */
void va_httpd_unlink_sockets(va_httpd *h);
/*
 * Closes every listener and connection (not from a callback of h).
 * Requests still unanswered stay valid: answering them later just frees
 * them.
 */
void va_httpd_free(va_httpd *h);

/* Connections open now (the tests read it). */
size_t va_httpd_connections(const va_httpd *h);

#endif
