/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * session.h - the virtagent session: reset handshake, call tags, calls in
 * flight both ways, timeouts.  No I/O: bytes come in through
 * va_session_input(), go out through va_session_output_iov() /
 * va_session_output_consume(), and time is passed in (monotonic ms), so
 * the same code runs over a channel (link.h) and over the in-memory links
 * of the tests.
 *
 * Handshake (docs/PROTOCOL.md has the bytes):
 *   RESET:  0xFF "RESET /RPC2 HTTP/1.1"        X-Virtagent-Nonce: 16 hex
 *   ACK:    0xFF "HTTP/1.1 205 Reset Content"  X-Virtagent-Nonce: same
 * Both carry X-Virtagent-Max-Frame (the sender's body limit).
 * The side that starts (va_session_reset, va_session_peer_up, a call
 * timeout) sends RESET with a fresh random nonce and ignores every frame
 * but RESET and the ACK with that nonce; unanswered, it sends a new RESET
 * after reset_retry_ms, doubling up to reset_retry_max_ms.  The side that
 * receives a RESET (in any state) fails its in-flight calls with
 * VA_SESSION_ERR_RESET, drops queued output, forgets the requests it was
 * serving (their late replies are dropped and counted), and answers ACK.
 *
 * Calls: each request carries X-Virtagent-Client-Tag: "SESSION.SEQ", SESSION
 * being the caller's current session id (the nonce that established it)
 * and SEQ a number never reused in the process.  The responder echoes the
 * tag.  A response whose SESSION is not the current one is counted as
 * stale, one with no waiting caller as unmatched; neither ever reaches a
 * caller.  Calls made before the handshake completes wait for it (at most
 * ready_timeout_ms, then VA_SESSION_ERR_NOT_READY).  A call timeout fails
 * that call with VA_SESSION_ERR_TIMEOUT and resets the session.
 *
 * Callbacks run from va_session_input, _tick, _peer_up, _peer_down, _reset and _free, never from
 * va_session_call or va_session_reply.  They may call va_session_call and
 * va_session_reply but must not free the session.
 */
#ifndef VA_SESSION_H
#define VA_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "frame.h"

#define VA_TAG_HEADER "X-Virtagent-Client-Tag"
#define VA_NONCE_HEADER "X-Virtagent-Nonce"
#define VA_MAX_FRAME_HEADER "X-Virtagent-Max-Frame"

enum va_session_error {
	VA_SESSION_OK = 0,
	VA_SESSION_ERR_TIMEOUT = 1, /* no response within the call's timeout */
	VA_SESSION_ERR_RESET,       /* the session was reset while the call waited */
	VA_SESSION_ERR_PEER_GONE,   /* the channel went down */
	VA_SESSION_ERR_NOT_READY,   /* the handshake did not complete in time */
	VA_SESSION_ERR_TOO_LARGE,   /* the peer refused the request as too large */
	VA_SESSION_ERR_REFUSED,     /* the peer answered with another non-200 status */
	VA_SESSION_ERR_CLOSED,      /* the session was freed */
};

/* Plain words for err ("peer did not answer the reset handshake", ...). */
const char *va_session_strerror(int err);

typedef struct va_session va_session;

/*
 * A call finished: exactly once per accepted call.  err is 0 and
 * response (status 200) is owned by the callee, or err is a
 * va_session_error and response is NULL.
 */
typedef void (*va_call_cb)(void *opaque, int err, struct va_frame *response);

struct va_session_ops {
	/*
	 * A request arrived.  The callee owns req.  Answer with
	 * va_session_reply(s, epoch, tag, ...) now or later; tag is valid
	 * only during the call (copy it to answer later).
	 */
	void (*request)(void *opaque, va_session *s, uint64_t epoch,
			const char *tag, struct va_frame *req);
	/* The handshake completed; calls can flow.  May be NULL. */
	void (*established)(void *opaque, va_session *s);
	/* The session was reset (by either side) or the peer went down.  May be NULL. */
	void (*reset)(void *opaque, va_session *s, int by_peer);
};

struct va_session_config {
	const char *name;            /* for log lines; may be NULL */
	size_t max_frame;            /* 0: VA_FRAME_DEFAULT_MAX_BODY */
	unsigned ready_timeout_ms;   /* 0: 3000 */
	unsigned reset_retry_ms;     /* 0: 500 */
	unsigned reset_retry_max_ms; /* 0: 30000 */
};

struct va_session_stats {
	uint64_t resets_sent;      /* RESET frames sent */
	uint64_t resets_received;  /* RESET frames received */
	uint64_t established;      /* handshakes completed */
	uint64_t calls;            /* calls accepted */
	uint64_t calls_ok;         /* calls answered */
	uint64_t calls_failed;     /* calls failed (timeout, reset, ...) */
	uint64_t requests;         /* requests received */
	uint64_t replies;          /* replies queued */
	uint64_t stale_responses;  /* responses of an earlier session, dropped */
	uint64_t unmatched_responses; /* responses with no waiting caller, dropped */
	uint64_t stale_replies;    /* replies to requests of an earlier session, dropped */
	uint64_t ignored_frames;   /* frames dropped while waiting for an ACK */
	uint64_t bad_frames;       /* frames without a usable tag, refused or malformed */
	struct va_frame_stats parser;
};

/* NULL on allocation failure.  cfg and ops are copied. */
va_session *va_session_new(const struct va_session_config *cfg,
			   const struct va_session_ops *ops, void *opaque);
/* Fails every waiting call with VA_SESSION_ERR_CLOSED, then frees. */
void va_session_free(va_session *s);

/* The transport is up and the peer may be new: start a reset. */
void va_session_peer_up(va_session *s, uint64_t now_ms);
/* The transport is down: drop output and partial input, fail calls (PEER_GONE). */
void va_session_peer_down(va_session *s, uint64_t now_ms);
/* Start a reset now. */
void va_session_reset(va_session *s, uint64_t now_ms);

void va_session_input(va_session *s, const void *data, size_t len, uint64_t now_ms);
/* Fills at most max iovecs with queued output; returns how many. */
size_t va_session_output_iov(va_session *s, struct iovec *iov, size_t max);
/* n bytes of that output were written. */
void va_session_output_consume(va_session *s, size_t n);
size_t va_session_output_pending(const va_session *s);

/* Absolute time (ms) of the next timer; UINT64_MAX when none. */
uint64_t va_session_deadline(const va_session *s);
void va_session_tick(va_session *s, uint64_t now_ms);

/*
 * Starts a call with an XML-RPC body (copied).  Returns 0, after which
 * cb runs exactly once (never from inside this function), or a negative
 * errno with cb never called: -E2BIG when len is over our or the peer's
 * maximum, -EINVAL when the body contains 0xFF, -ENOMEM.
 */
int va_session_call(va_session *s, const void *body, size_t len,
		    unsigned timeout_ms, uint64_t now_ms, va_call_cb cb, void *opaque);
/*
 * Answers the request tagged tag, received in epoch.  Returns 0 when
 * queued; -ESTALE when the session was reset since (dropped and counted);
 * -E2BIG when over the peer's maximum (answer with a small fault
 * instead); -EINVAL (0xFF in body or a bad tag); -ENOMEM.
 */
int va_session_reply(va_session *s, uint64_t epoch, const char *tag,
		     const void *body, size_t len);

/*
 * The transport's hook (link.c): fn(opaque) runs at the end of
 * va_session_call, va_session_reply and va_session_reset, when output was
 * queued or a timer may have moved, so that whoever drives the session
 * writes and re-reads the deadline without its callers having to say so.
 * fn must not call into the session; NULL removes it.
 */
void va_session_set_kick(va_session *s, void (*fn)(void *opaque), void *opaque);

int va_session_is_ready(const va_session *s);
/* The current epoch (changes at every reset, either side). */
uint64_t va_session_epoch(const va_session *s);
/* The current session id (hex nonce), "" before the first handshake. */
const char *va_session_id(const va_session *s);
/* The peer's announced max frame, or 0 when not known yet. */
size_t va_session_peer_max_frame(const va_session *s);
size_t va_session_max_frame(const va_session *s);
size_t va_session_calls_in_flight(const va_session *s);
void va_session_stats(const va_session *s, struct va_session_stats *st);

#endif
