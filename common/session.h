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
 * Protocols.  RESET and ACK of protocol 2 carry X-Virtagent-Protocol: 2;
 * a frame without it comes from a protocol-1 peer (the builds before
 * binary bodies).  After the handshake va_session_peer_protocol() says
 * what the peer announced.  Protocol 1 is XML-RPC bodies only.  Protocol
 * 2 adds binary bodies (any Content-Type but text/xml; sent byte-stuffed
 * with Content-Encoding: va-stuffed, see stuff.h, and handed to the
 * receiver decoded) and named parameters (X-Va-NAME headers) on calls
 * and replies.  Those are sent only when both sides speak protocol 2;
 * otherwise va_session_call_msg / va_session_reply_msg refuse with
 * -EPROTO (a call made before the handshake fails later with
 * VA_SESSION_ERR_PROTOCOL), and the caller falls back to XML-RPC.  A
 * protocol-1 peer ignores the new header and keeps working with XML.
 *
 * Flow control.  Nothing is ever dropped to save memory; instead:
 *   - the caller bounds what it asks for: at most W calls in flight
 *     (va_session_calls_in_flight) of at most C bytes each (a "read
 *     count bytes at offset" call answered with a binary body; a "write
 *     this body at offset" call answered with an empty 200), so that at
 *     most W * C bytes of answers are on their way to it.  Keep W * C
 *     under the peer's max frame (va_session_peer_max_frame), so that
 *     both sides' output stays under the threshold below;
 *   - va_session_output_pending() is what is queued and unwritten; a
 *     sender that produces output from elsewhere (a file, an HTTP client)
 *     waits while it is over a bound of its own choosing;
 *   - the receiver of requests stops parsing input once the replies it
 *     queued and has not written (va_session_reply_pending) exceed twice
 *     its max frame: the rest of the input is held
 *     (va_session_input_held) and parsed when the output has drained
 *     (va_session_deadline() is then due at once, and va_session_tick()
 *     goes on).  link.c stops reading at the same output size.  So a peer
 *     that sends requests and never reads the replies makes us hold at
 *     most 2 * max_frame + one reply of output, and of input what the
 *     driver fed before it stopped (link.c: two 1 KiB slices at most),
 *     whatever the peer sends; the peer's own writes then block.
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
#define VA_PROTOCOL_HEADER "X-Virtagent-Protocol"
/* The newest protocol this build speaks (see the top). */
#define VA_PROTOCOL_VERSION 2

#define VA_CONTENT_XML "text/xml"
#define VA_CONTENT_BINARY "application/octet-stream"

/*
 * Named parameters of protocol-2 calls and replies: a few values that go
 * with a binary body without any XML (an operation, a handle, an offset,
 * a count).  On the wire each is a header "X-Va-NAME: VALUE".  Names are
 * 1..VA_PARAM_NAME_MAX of a-z, 0-9 and '-', starting with a letter
 * (compared without case on receipt); values are 0..VA_PARAM_VALUE_MAX
 * bytes of visible ASCII (0x21..0x7E: no space, no control byte, nothing
 * that could end a header line); at most VA_PARAMS_MAX per message, each
 * name once.  Encode anything else (a path) with %XX in the value, or
 * send it in the body.
 */
#define VA_PARAM_PREFIX "X-Va-"
#define VA_PARAMS_MAX 8
#define VA_PARAM_NAME_MAX 32
#define VA_PARAM_VALUE_MAX 256

struct va_param {
	const char *name;
	const char *value;
};

/*
 * What a call or a reply carries (va_session_call_msg, va_session_reply_msg).
 *   content_type  NULL or "text/xml": an XML-RPC body (no 0xFF in it),
 *                 which every peer understands; anything else (a MIME
 *                 type: 3..64 bytes of token characters around one '/',
 *                 e.g. VA_CONTENT_BINARY) is a binary body of any bytes,
 *                 for a protocol-2 peer only.
 *   params        nparams named parameters (protocol 2 only); may be NULL
 *                 when nparams is 0.
 *   body, len     the body.  Borrowed (copied before the function
 *                 returns) unless take is set: then body is a malloc'ed
 *                 block that the session owns from the call on, even when
 *                 the call fails, and sends without copying it (a binary
 *                 body with 0xFE/0xFF bytes is stuffed in place after a
 *                 realloc).
 */
struct va_msg {
	const char *content_type;
	const struct va_param *params;
	size_t nparams;
	const void *body;
	size_t len;
	int take;
};

enum va_session_error {
	VA_SESSION_OK = 0,
	VA_SESSION_ERR_TIMEOUT = 1, /* no response within the call's timeout */
	VA_SESSION_ERR_RESET,       /* the session was reset while the call waited */
	VA_SESSION_ERR_PEER_GONE,   /* the channel went down */
	VA_SESSION_ERR_NOT_READY,   /* the handshake did not complete in time */
	VA_SESSION_ERR_TOO_LARGE,   /* the peer refused the request as too large */
	VA_SESSION_ERR_REFUSED,     /* the peer answered with another non-200 status */
	VA_SESSION_ERR_CLOSED,      /* the session was freed */
	VA_SESSION_ERR_PROTOCOL,    /* a protocol-2 call, and the peer speaks protocol 1 */
};

/* Plain words for err ("peer did not answer the reset handshake", ...). */
const char *va_session_strerror(int err);

typedef struct va_session va_session;

/*
 * A call finished: exactly once per accepted call.  err is 0 and
 * response (status 200) is owned by the callee, or err is a
 * va_session_error and response is NULL.  The response's body is decoded
 * (va_session_content_type() says which kind it is) and the callee may
 * take it (see frame.h).
 */
typedef void (*va_call_cb)(void *opaque, int err, struct va_frame *response);

struct va_session_ops {
	/*
	 * A request arrived.  The callee owns req (its body decoded; see
	 * va_session_content_type and va_session_param).  Answer with
	 * va_session_reply(s, epoch, tag, ...) or va_session_reply_msg now
	 * or later; tag is valid only during the call (copy it to answer
	 * later).
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
	/*
	 * The protocol to speak: 0 is VA_PROTOCOL_VERSION; 1 behaves as the
	 * builds before protocol 2 (no X-Virtagent-Protocol in RESET/ACK,
	 * no binary bodies or parameters sent).  Over VA_PROTOCOL_VERSION:
	 * va_session_new fails (EINVAL).
	 */
	unsigned protocol;
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
	uint64_t binary_calls;     /* calls with a binary body accepted */
	uint64_t binary_requests;  /* requests with a binary body received */
	uint64_t input_pauses;     /* times input was held because replies backed up */
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

/*
 * Bytes from the peer.  All are taken; while the replies are backed up
 * (see the top) they are held, not parsed, and parsed later from
 * va_session_input or va_session_tick.
 */
void va_session_input(va_session *s, const void *data, size_t len, uint64_t now_ms);
/*
 * Fills at most max iovecs with queued output, in order; returns how
 * many.  A frame takes one iovec, or two (head and body) when its body
 * was handed over (va_msg.take).
 */
size_t va_session_output_iov(va_session *s, struct iovec *iov, size_t max);
/* n bytes of that output were written. */
void va_session_output_consume(va_session *s, size_t n);
size_t va_session_output_pending(const va_session *s);
/* The part of the pending output that answers the peer (replies, 413s). */
size_t va_session_reply_pending(const va_session *s);
/*
 * Input taken but not parsed yet because the replies are backed up; a
 * driver may stop reading while it is not 0 (link.c stops at the same
 * output size anyway).
 */
size_t va_session_input_held(const va_session *s);

/*
 * Absolute time (ms) of the next timer; UINT64_MAX when none; 0 when
 * held input can be parsed now (call va_session_tick).
 */
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
 * Starts a call carrying m (see struct va_msg): like va_session_call, and
 * also -EINVAL for a bad content type or parameter, and -EPROTO for a
 * binary body or parameters when we or the peer speak protocol 1 (known
 * once the handshake is done; a call accepted before it fails with
 * VA_SESSION_ERR_PROTOCOL if the peer turns out to speak 1).  -E2BIG
 * compares the stuffed length with the limits.  With m->take the body is
 * the session's in every case.
 */
int va_session_call_msg(va_session *s, const struct va_msg *m, unsigned timeout_ms,
			uint64_t now_ms, va_call_cb cb, void *opaque);
/*
 * Answers the request tagged tag, received in epoch.  Returns 0 when
 * queued; -ESTALE when the session was reset since (dropped and counted);
 * -E2BIG when over the peer's maximum (answer with a small fault
 * instead); -EINVAL (0xFF in body or a bad tag); -ENOMEM.
 */
int va_session_reply(va_session *s, uint64_t epoch, const char *tag,
		     const void *body, size_t len);
/*
 * Answers with m (see struct va_msg): like va_session_reply, and also
 * -EINVAL for a bad content type or parameter, -EPROTO for a binary body
 * or parameters to a protocol-1 peer.  -E2BIG compares the stuffed length
 * with the peer's maximum (va_stuff_fit() says how much of a body fits:
 * answer a read with fewer bytes).  With m->take the body is the
 * session's in every case.  A reply need not be of its call's kind: a
 * binary call that fails is best answered with an XML-RPC fault (content
 * type text/xml), which the caller tells apart with va_session_is_binary().
 */
int va_session_reply_msg(va_session *s, uint64_t epoch, const char *tag,
			 const struct va_msg *m);

/*
 * Reading a received request or response (the peer is untrusted: values
 * are checked here, every time).  The content type: the frame's
 * Content-Type, or "text/xml" when it has none.
 */
const char *va_session_content_type(const struct va_frame *f);
/* 1 when the body is binary (the content type is not text/xml). */
int va_session_is_binary(const struct va_frame *f);
/*
 * The value of parameter name, or NULL when it is absent, given more
 * than once, or not a valid value (see VA_PARAM_*).
 */
const char *va_session_param(const struct va_frame *f, const char *name);
/*
 * A parameter as a decimal number (1..20 digits, no sign, no overflow):
 * 0, -ENOENT when absent, -EINVAL when not such a number (or invalid).
 */
int va_session_param_u64(const struct va_frame *f, const char *name, uint64_t *out);

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
/*
 * What the peer announced in its RESET or ACK: 1 (no header) or more; 0
 * before the handshake and after peer_up / peer_down.
 */
unsigned va_session_peer_protocol(const va_session *s);
/* The protocol of the session: the lower of ours and the peer's (0: not known). */
unsigned va_session_protocol(const va_session *s);
/* The peer's announced max frame, or 0 when not known yet. */
size_t va_session_peer_max_frame(const va_session *s);
size_t va_session_max_frame(const va_session *s);
size_t va_session_calls_in_flight(const va_session *s);
void va_session_stats(const va_session *s, struct va_session_stats *st);

#endif
