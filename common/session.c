/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * session.c - the virtagent session (see session.h for the contract).
 *
 * Frames on the wire (all built by va_frame_write, so each starts with
 * 0xFF and carries Content-Length):
 *
 *   RESET   0xFF "RESET /RPC2 HTTP/1.1"
 *           X-Virtagent-Nonce: <16 lowercase hex>
 *           X-Virtagent-Max-Frame: <decimal, the sender's body limit>
 *           X-Virtagent-Protocol: 2        (protocol 2 only)
 *           Content-Length: 0
 *   ACK     0xFF "HTTP/1.1 205 Reset Content"
 *           X-Virtagent-Nonce: <the nonce of the RESET answered>
 *           X-Virtagent-Max-Frame: <decimal, the ACK sender's body limit>
 *           X-Virtagent-Protocol: 2        (protocol 2 only)
 *           Content-Length: 0
 *   request 0xFF "POST /RPC2 HTTP/1.1"
 *           Content-Type: text/xml | <a binary type>
 *           Content-Encoding: va-stuffed   (binary bodies)
 *           X-Virtagent-Client-Tag: <session id>.<seq decimal>
 *           X-Va-<name>: <value> ...       (parameters, protocol 2)
 *           Content-Length: N, then N bytes of XML-RPC or stuffed bytes
 *   reply   0xFF "HTTP/1.1 200 OK"
 *           Content-Type, Content-Encoding as for a request
 *           X-Virtagent-Client-Tag: <the request's tag, echoed>
 *           X-Va-<name>: <value> ...
 *           Content-Length: N, then N bytes of XML-RPC or stuffed bytes
 *   refusal 0xFF "HTTP/1.1 413 Payload Too Large"
 *           X-Virtagent-Client-Tag: <the refused request's tag>
 *           Content-Length: 0
 *           (sent when our parser refuses a request whose Content-Length
 *           is over our maximum and whose partial head has a tag; the
 *           caller gets VA_SESSION_ERR_TOO_LARGE.  Any other non-200
 *           status fails the call with VA_SESSION_ERR_REFUSED.)
 *
 * States:
 *   INITIAL   no handshake (at start and after peer_down).  Calls wait;
 *             every frame but RESET is ignored (counted in ignored_frames).
 *   WAIT_ACK  we sent RESET(nonce).  Every frame but RESET and
 *             ACK(nonce) is ignored (ignored_frames); the RESET is sent
 *             again with a fresh nonce after reset_retry_ms, doubling up
 *             to reset_retry_max_ms, while unanswered.
 *   READY     calls flow.
 *
 * Receiving RESET (any state): the epoch changes, in-flight calls fail
 * with VA_SESSION_ERR_RESET, queued output is dropped (with the unwritten
 * rest of a partly written frame: the next frame's 0xFF tears it at the
 * peer), ACK is queued and ops->reset(by_peer=1) runs.  In WAIT_ACK we
 * stay there (our own RESET is still unanswered, and is queued again if
 * it was among the dropped output); otherwise the session becomes READY
 * with the peer's nonce as its id.  Receiving ACK(our nonce) in WAIT_ACK:
 * READY with that id.  Two sides that reset at the same time therefore
 * end up with different ids: each side's id names its own calls, and a
 * responder echoes tags without looking at the id.
 *
 * Sending RESET (va_session_reset, peer_up, an in-flight call's timeout, a
 * retry): the epoch changes, in-flight calls fail (VA_SESSION_ERR_RESET;
 * the call that timed out gets VA_SESSION_ERR_TIMEOUT), queued output is
 * dropped, a new nonce is drawn, WAIT_ACK, ops->reset(by_peer=0).
 *
 * Calls not yet sent (made while not READY) wait in a list of their own,
 * outside the output queue, and are queued in order when the session
 * becomes READY.  Their frame is built at call time with a placeholder
 * session id of the same length (every id is 16 hex digits), patched in
 * place when they are sent, so the body is copied exactly once.
 *
 * Output frames are one buffer (head and body, copied in), or a head
 * and a body handed over by the caller (va_msg.take), written as two
 * iovecs.  Replies and 413s are counted apart (reply_pending): when they
 * pass 2 * max_frame, on_frame pauses the parser and the rest of the
 * input waits in held until they drain (see session.h, flow control).
 *
 * Callbacks: each entry point first brings the state up to date, collects
 * the calls to fail on a detached list, and only then runs ops->reset,
 * the failed calls' callbacks and ops->established, in that order.  So a
 * callback that calls va_session_call or va_session_reply sees a
 * consistent session, and no list is being walked while it runs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"
#include "log.h"
#include "session.h"
#include "stuff.h"

#define ID_LEN 16                 /* a session id / nonce: 16 lowercase hex */
#define TAG_MAX 128               /* longest tag we accept and echo */
#define ID_PLACEHOLDER "0000000000000000"

#define DEFAULT_READY_TIMEOUT_MS 3000
#define DEFAULT_RESET_RETRY_MS 500
#define DEFAULT_RESET_RETRY_MAX_MS 30000

enum state {
	ST_INITIAL,
	ST_WAIT_ACK,
	ST_READY,
};

static const char *const state_names[] = { "initial", "wait-ack", "ready" };

/* One whole frame in the output queue: data[0..len), then body[0..body_len). */
struct out_frame {
	struct out_frame *next;
	uint8_t *data;     /* the head, or head and body in one buffer */
	size_t len;
	uint8_t *body;     /* a body handed over (va_msg.take), or NULL */
	size_t body_len;
	size_t head_len;   /* bytes of the head at the start of data */
	int is_reset;      /* our own RESET frame */
	int is_reply;      /* a reply or 413: counts in reply_pending */
};

struct call {
	struct call *prev, *next;
	uint64_t seq;
	va_call_cb cb;
	void *opaque;
	uint64_t deadline;       /* the call's own; UINT64_MAX: none */
	uint64_t ready_deadline; /* while waiting for the handshake */
	struct out_frame *frame; /* while waiting: the request, not queued yet */
	size_t id_off;           /* where the session id goes in frame->data */
	size_t body_len;         /* on the wire (stuffed) */
	int needs_v2;            /* binary body or parameters */
	int err;                 /* set when the call is put on a fail list */
};

struct call_list {
	struct call *head, *tail;
	size_t n;
};

/* What an entry point must do once the state is up to date. */
struct after {
	int reset;           /* -1: nothing; else ops->reset(by_peer = reset) */
	int established;     /* run ops->established */
	struct call_list failed;
};

struct va_session {
	char *name;
	struct va_session_ops ops;
	void *opaque;

	size_t max_frame;
	unsigned protocol;      /* what we speak (1 or 2) */
	unsigned ready_timeout_ms;
	unsigned reset_retry_ms;
	unsigned reset_retry_max_ms;

	enum state state;
	char id[ID_LEN + 1];    /* current session id, "" before the first */
	char nonce[ID_LEN + 1]; /* our pending nonce in WAIT_ACK */
	uint64_t epoch;
	size_t peer_max;        /* 0: not known */
	unsigned peer_protocol; /* 0: not known */
	unsigned retry_interval;
	uint64_t retry_at;
	int closing;            /* inside va_session_free */

	va_frame_parser *parser;

	struct out_frame *out_head, *out_tail;
	size_t out_pos;         /* bytes of out_head already written */
	size_t out_pending;     /* unwritten bytes in the queue */
	size_t reply_pending;   /* the part of them in is_reply frames */
	struct va_buf held;     /* input not parsed while replies back up */

	struct call_list waiting;   /* accepted, not sent (no handshake yet) */
	struct call_list in_flight; /* sent, in seq order */

	struct va_session_stats st;

	void (*kick)(void *opaque); /* va_session_set_kick */
	void *kick_opaque;
};

static void
kick(va_session *s)
{
	if (s->kick)
		s->kick(s->kick_opaque);
}

/* Sequence numbers are process-wide and never reused. */
static uint64_t next_seq_value;

static uint64_t
next_seq(void)
{
	return __atomic_add_fetch(&next_seq_value, 1, __ATOMIC_RELAXED);
}

static uint64_t
add_ms(uint64_t now, unsigned ms)
{
	return now > UINT64_MAX - ms ? UINT64_MAX : now + ms;
}

const char *
va_session_strerror(int err)
{
	switch (err) {
	case VA_SESSION_OK:
		return "success";
	case VA_SESSION_ERR_TIMEOUT:
		return "peer did not answer the call in time";
	case VA_SESSION_ERR_RESET:
		return "session was reset while the call waited";
	case VA_SESSION_ERR_PEER_GONE:
		return "peer went away";
	case VA_SESSION_ERR_NOT_READY:
		return "peer did not answer the reset handshake";
	case VA_SESSION_ERR_TOO_LARGE:
		return "message too large for the peer";
	case VA_SESSION_ERR_REFUSED:
		return "peer refused the call";
	case VA_SESSION_ERR_CLOSED:
		return "session closed";
	case VA_SESSION_ERR_PROTOCOL:
		return "peer speaks protocol 1 (no binary bodies)";
	default:
		return "unknown session error";
	}
}

/* ---- random nonces ---- */

static int
read_urandom(void *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (uint8_t *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return got == n ? 0 : -1;
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
random_bytes(uint8_t *p, size_t n)
{
	/*
	 * GRND_NONBLOCK: early in a guest's boot the kernel's pool may not
	 * be initialised yet and a blocking getrandom() could stall the
	 * agent for a long time.  A nonce must only be unique, not secret,
	 * so /dev/urandom (never blocks) is good enough then, and also
	 * where getrandom() is missing (ENOSYS).
	 */
	ssize_t r;
	do
		r = getrandom(p, n, GRND_NONBLOCK);
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)n)
		return;
	if (read_urandom(p, n) == 0)
		return;

	/* No randomness at all: time, pid and a counter still differ. */
	static uint64_t counter;
	struct timespec rt, mt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	uint64_t x = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
	x ^= ((uint64_t)mt.tv_nsec << 20) ^ ((uint64_t)getpid() << 40) ^
	     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	va_log_warnx("session: no random source; nonce made from the clock");
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = splitmix64(&x);
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

/* A fresh nonce into out, differing from avoid1 and avoid2 (not out). */
static void
make_nonce(char out[ID_LEN + 1], const char *avoid1, const char *avoid2)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[ID_LEN / 2];

	do {
		random_bytes(r, sizeof(r));
		for (size_t i = 0; i < sizeof(r); i++) {
			out[2 * i] = hex[r[i] >> 4];
			out[2 * i + 1] = hex[r[i] & 15];
		}
		out[ID_LEN] = 0;
	} while (strcmp(out, avoid1) == 0 || strcmp(out, avoid2) == 0 ||
		 strcmp(out, ID_PLACEHOLDER) == 0);
}

/* ---- header values ---- */

static int
nonce_ok(const char *v)
{
	if (!v || strlen(v) != ID_LEN)
		return 0;
	for (size_t i = 0; i < ID_LEN; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			return 0;
	return 1;
}

/* Strict decimal, 1..20 digits, no overflow. */
static int
parse_u64(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* X-Virtagent-Max-Frame: strict decimal, at least 1. */
static int
parse_max_frame(const char *v, size_t *out)
{
	uint64_t x;

	if (!v || parse_u64(v, strlen(v), &x) < 0 || x == 0)
		return -1;
	*out = x > SIZE_MAX ? SIZE_MAX : (size_t)x;
	return 0;
}

/*
 * X-Virtagent-Protocol: absent means 1 (a peer from before protocol 2);
 * strict decimal otherwise.  A malformed value counts as 1, so a broken
 * peer still gets XML-RPC rather than no session at all.
 */
static unsigned
parse_protocol(const va_session *s, const char *v)
{
	uint64_t x;

	if (!v)
		return 1;
	if (parse_u64(v, strlen(v), &x) < 0 || x == 0) {
		va_log_warnx("%s: bad %s \"%.20s\", taken as 1", s->name,
			     VA_PROTOCOL_HEADER, v);
		return 1;
	}
	return x > 1000 ? 1000 : (unsigned)x;
}

/* A tag we accept on a request and echo: 1..TAG_MAX visible ASCII bytes. */
static int
tag_ok(const char *t)
{
	size_t n;

	if (!t)
		return 0;
	for (n = 0; t[n]; n++)
		if (n >= TAG_MAX || (unsigned char)t[n] <= 0x20 || (unsigned char)t[n] >= 0x7f)
			return 0;
	return n > 0;
}

/*
 * A response's tag: "ID.SEQ".  Returns 0 with *current set when ID is our
 * session id, -1 when malformed.
 */
static int
parse_tag(const va_session *s, const char *tag, int *current, uint64_t *seq)
{
	if (!tag_ok(tag))
		return -1;
	const char *dot = strchr(tag, '.');
	if (!dot || dot == tag)
		return -1;
	if (parse_u64(dot + 1, strlen(dot + 1), seq) < 0)
		return -1;
	*current = (size_t)(dot - tag) == ID_LEN && s->id[0] &&
		   memcmp(tag, s->id, ID_LEN) == 0;
	return 0;
}

/* "ID.SEQ" into tag (ID_LEN + 1 + 21 bytes); no printf on the path of every call. */
static void
make_tag(char *tag, const char *id, uint64_t seq)
{
	char digits[21];
	size_t n = 0;

	do
		digits[n++] = (char)('0' + seq % 10);
	while ((seq /= 10) > 0);
	memcpy(tag, id, ID_LEN);
	tag[ID_LEN] = '.';
	for (size_t i = 0; i < n; i++)
		tag[ID_LEN + 1 + i] = digits[n - 1 - i];
	tag[ID_LEN + 1 + n] = 0;
}

/* Offset of the first needle in hay[0..n), or SIZE_MAX. */
static size_t
find_bytes(const uint8_t *hay, size_t n, const char *needle, size_t k)
{
	for (size_t i = 0; k <= n && i <= n - k; i++)
		if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, k) == 0)
			return i;
	return SIZE_MAX;
}

static const char *
or_dash(const char *v)
{
	return v ? v : "-";
}

/* ---- lists ---- */

static void
list_append(struct call_list *l, struct call *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->n++;
}

static void
list_remove(struct call_list *l, struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->n--;
}

static void
out_frame_free(struct out_frame *f)
{
	if (f) {
		free(f->data);
		free(f->body);
		free(f);
	}
}

static size_t
frame_total(const struct out_frame *f)
{
	return f->len + f->body_len;
}

/* Puts c on the fail list with err (its unsent frame is freed). */
static void
fail_call(va_session *s, struct after *a, struct call *c, int err)
{
	out_frame_free(c->frame);
	c->frame = NULL;
	c->err = err;
	s->st.calls_failed++;
	list_append(&a->failed, c);
}

static void
fail_all(va_session *s, struct after *a, struct call_list *l, int err)
{
	struct call *c;

	while ((c = l->head)) {
		list_remove(l, c);
		fail_call(s, a, c, err);
	}
}

static void
after_init(struct after *a)
{
	memset(a, 0, sizeof(*a));
	a->reset = -1;
}

/* Runs the callbacks collected in a, in a fixed order (see the top). */
static void
after_run(va_session *s, struct after *a)
{
	struct call *c;

	if (a->reset >= 0 && s->ops.reset)
		s->ops.reset(s->opaque, s, a->reset);
	while ((c = a->failed.head)) {
		list_remove(&a->failed, c);
		va_call_cb cb = c->cb;
		void *opaque = c->opaque;
		int err = c->err;
		free(c);
		cb(opaque, err, NULL);
	}
	if (a->established && s->ops.established)
		s->ops.established(s->opaque, s);
}

/* ---- output ---- */

/*
 * Builds one frame with va_frame_write.  The buffer is allocated at the
 * size the frame needs (va_buf_reserve would round it up to a power of
 * two, doubling the memory of a large body).
 */
static int
build_frame(struct out_frame **out, const char *start_line,
	    const struct va_frame_header *h, size_t nh,
	    const void *body, size_t len)
{
	size_t bound = 1 + strlen(start_line) + 2;
	for (size_t i = 0; i < nh; i++)
		bound += strlen(h[i].name) + 2 + strlen(h[i].value) + 2;
	bound += sizeof("Content-Length: ") + 20 + 2 + 2 + 1;
	if (len > SIZE_MAX - bound)
		return -E2BIG;
	bound += len;

	struct out_frame *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	struct va_buf b;
	va_buf_init(&b);
	b.data = malloc(bound);
	if (!b.data) {
		free(f);
		return -ENOMEM;
	}
	b.cap = bound;
	int r = va_frame_write(&b, start_line, h, nh, body, len);
	if (r < 0) {
		va_buf_free(&b);
		free(f);
		return r;
	}
	f->data = b.data; /* owned by f now */
	f->len = b.len;
	f->head_len = b.len - len;
	*out = f;
	return 0;
}

static void
queue_frame(va_session *s, struct out_frame *f)
{
	f->next = NULL;
	if (s->out_tail)
		s->out_tail->next = f;
	else
		s->out_head = f;
	s->out_tail = f;
	s->out_pending += frame_total(f);
	if (f->is_reply)
		s->reply_pending += frame_total(f);
}

/*
 * Drops all queued output, including the unwritten rest of a partly
 * written frame.  Returns 1 when our own RESET frame was among it.
 */
static int
drop_output(va_session *s)
{
	int had_reset = 0;
	struct out_frame *f, *next;

	for (f = s->out_head; f; f = next) {
		next = f->next;
		had_reset |= f->is_reset;
		out_frame_free(f);
	}
	s->out_head = s->out_tail = NULL;
	s->out_pos = 0;
	s->out_pending = 0;
	s->reply_pending = 0;
	return had_reset;
}

/* RESET or ACK.  Failure (no memory) is logged; a retry or the peer's will recover. */
static void
queue_handshake(va_session *s, int ack, const char *nonce)
{
	char maxf[24], proto[12];
	snprintf(maxf, sizeof(maxf), "%zu", s->max_frame);
	snprintf(proto, sizeof(proto), "%u", s->protocol);
	struct va_frame_header h[3] = {
		{ (char *)VA_NONCE_HEADER, (char *)nonce },
		{ (char *)VA_MAX_FRAME_HEADER, maxf },
		{ (char *)VA_PROTOCOL_HEADER, proto },
	};
	struct out_frame *f;
	/* Protocol 1 sends no protocol header: exactly the old frames. */
	int r = build_frame(&f, ack ? "HTTP/1.1 205 Reset Content" : "RESET /RPC2 HTTP/1.1",
			    h, s->protocol >= 2 ? 3 : 2, NULL, 0);
	if (r < 0) {
		va_log_warnx("%s: cannot queue %s: %s", s->name, ack ? "ACK" : "RESET",
			     strerror(-r));
		return;
	}
	f->is_reset = !ack;
	queue_frame(s, f);
	if (!ack)
		s->st.resets_sent++;
	va_log_debug("%s: -> %s nonce %s", s->name, ack ? "ACK" : "RESET", nonce);
}

/* Queues a call's frame (with the session id patched in) and tracks it. */
static void
send_call(va_session *s, struct call *c)
{
	if (c->id_off != SIZE_MAX)
		memcpy(c->frame->data + c->id_off, s->id, ID_LEN);
	queue_frame(s, c->frame);
	c->frame = NULL;
	list_append(&s->in_flight, c);
	va_log_debug("%s: -> request %s.%" PRIu64 " (%zu bytes)", s->name, s->id,
		     c->seq, c->body_len);
}

/* The session became READY: send the waiting calls, in order. */
static void
send_waiting(va_session *s, struct after *a)
{
	struct call *c;

	while ((c = s->waiting.head)) {
		list_remove(&s->waiting, c);
		if (c->needs_v2 && s->peer_protocol < 2) {
			va_log_warnx("%s: call %" PRIu64 " needs protocol 2; the peer "
				     "speaks %u", s->name, c->seq, s->peer_protocol);
			fail_call(s, a, c, VA_SESSION_ERR_PROTOCOL);
			continue;
		}
		if (s->peer_max && c->body_len > s->peer_max) {
			va_log_warnx("%s: call %" PRIu64 " of %zu bytes is over the "
				     "peer's maximum %zu", s->name, c->seq,
				     c->body_len, s->peer_max);
			fail_call(s, a, c, VA_SESSION_ERR_TOO_LARGE);
			continue;
		}
		send_call(s, c);
	}
}

/* ---- resets and handshakes ---- */

/* We send a RESET (a fresh one, or a retry). */
static void
start_reset(va_session *s, uint64_t now, struct after *a, int retry, const char *why)
{
	s->epoch++;
	fail_all(s, a, &s->in_flight, VA_SESSION_ERR_RESET);
	drop_output(s);
	char old[ID_LEN + 1];
	memcpy(old, s->nonce, sizeof(old));
	make_nonce(s->nonce, old, s->id);
	s->state = ST_WAIT_ACK;
	if (retry) {
		s->retry_interval = s->retry_interval > s->reset_retry_max_ms / 2
				    ? s->reset_retry_max_ms : s->retry_interval * 2;
	} else {
		s->retry_interval = s->reset_retry_ms;
	}
	s->retry_at = add_ms(now, s->retry_interval);
	queue_handshake(s, 0, s->nonce);
	a->reset = 0;
	va_log_info("%s: reset (%s), nonce %s", s->name, why, s->nonce);
}

static void
become_ready(va_session *s, struct after *a, const char *id)
{
	s->state = ST_READY;
	memcpy(s->id, id, ID_LEN + 1);
	s->nonce[0] = 0;
	s->st.established++;
	send_waiting(s, a);
	a->established = 1;
	va_log_info("%s: session %s established (peer max frame %zu, protocol %u)",
		    s->name, s->id, s->peer_max, s->peer_protocol);
}

static void
handle_reset(va_session *s, struct va_frame *f)
{
	const char *nonce = va_frame_header(f, VA_NONCE_HEADER);
	size_t peer_max;
	struct after a;

	if (!nonce_ok(nonce) ||
	    parse_max_frame(va_frame_header(f, VA_MAX_FRAME_HEADER), &peer_max) < 0) {
		s->st.bad_frames++;
		va_log_warnx("%s: RESET without a valid nonce or max frame, dropped", s->name);
		return;
	}
	if (s->state == ST_WAIT_ACK && strcmp(nonce, s->nonce) == 0) {
		/* Our own RESET came back: the channel echoes (a tty not in raw mode?). */
		s->st.ignored_frames++;
		va_log_warnx("%s: received our own RESET: does the channel echo?", s->name);
		return;
	}

	after_init(&a);
	s->st.resets_received++;
	s->epoch++;
	fail_all(s, &a, &s->in_flight, VA_SESSION_ERR_RESET);
	int requeue = drop_output(s);
	s->peer_max = peer_max;
	s->peer_protocol = parse_protocol(s, va_frame_header(f, VA_PROTOCOL_HEADER));
	va_log_info("%s: reset by peer, nonce %s", s->name, nonce);
	if (s->state == ST_WAIT_ACK) {
		/* Ours is still pending: keep it going out if it was dropped. */
		if (requeue)
			queue_handshake(s, 0, s->nonce);
		queue_handshake(s, 1, nonce);
	} else {
		queue_handshake(s, 1, nonce);
		become_ready(s, &a, nonce);
	}
	a.reset = 1;
	after_run(s, &a);
}

static void
handle_ack(va_session *s, struct va_frame *f)
{
	const char *nonce = va_frame_header(f, VA_NONCE_HEADER);
	size_t peer_max;
	struct after a;

	if (s->state != ST_WAIT_ACK || !nonce || strcmp(nonce, s->nonce) != 0) {
		s->st.ignored_frames++;
		va_log_debug("%s: <- ACK %s not for us, ignored", s->name, nonce ? nonce : "-");
		return;
	}
	if (parse_max_frame(va_frame_header(f, VA_MAX_FRAME_HEADER), &peer_max) < 0) {
		s->st.bad_frames++;
		va_log_warnx("%s: ACK without a valid max frame, dropped", s->name);
		return;
	}
	after_init(&a);
	s->peer_max = peer_max;
	s->peer_protocol = parse_protocol(s, va_frame_header(f, VA_PROTOCOL_HEADER));
	become_ready(s, &a, nonce);
	after_run(s, &a);
}

/* ---- calls and requests ---- */

static struct call *
find_in_flight(va_session *s, uint64_t seq)
{
	/* In seq order; few calls are in flight at a time. */
	for (struct call *c = s->in_flight.head; c; c = c->next)
		if (c->seq == seq)
			return c;
	return NULL;
}

static void
handle_response(va_session *s, struct va_frame *f)
{
	const char *tag = va_frame_header(f, VA_TAG_HEADER);
	int current;
	uint64_t seq;

	if (parse_tag(s, tag, &current, &seq) < 0) {
		s->st.bad_frames++;
		va_log_warnx("%s: response %d without a usable tag, dropped", s->name, f->status);
		va_frame_free(f);
		return;
	}
	if (!current) {
		s->st.stale_responses++;
		va_log_warnx("%s: response %s of an earlier session, dropped", s->name, tag);
		va_frame_free(f);
		return;
	}
	struct call *c = find_in_flight(s, seq);
	if (!c) {
		s->st.unmatched_responses++;
		va_log_warnx("%s: response %s matches no call, dropped", s->name, tag);
		va_frame_free(f);
		return;
	}
	list_remove(&s->in_flight, c);
	va_call_cb cb = c->cb;
	void *opaque = c->opaque;
	free(c);
	if (f->status == 200) {
		s->st.calls_ok++;
		cb(opaque, 0, f);
		return;
	}
	int err = f->status == 413 ? VA_SESSION_ERR_TOO_LARGE : VA_SESSION_ERR_REFUSED;
	va_log_warnx("%s: call %s refused: %d %s", s->name, tag, f->status,
		     f->reason ? f->reason : "");
	va_frame_free(f);
	s->st.calls_failed++;
	cb(opaque, err, NULL);
}

static int
input_blocked(const va_session *s)
{
	/* Over 2 * max_frame, the size at which link.c stops reading (see
	 * session.h); written without the product, which may overflow. */
	return s->reply_pending > s->max_frame &&
	       s->reply_pending - s->max_frame > s->max_frame;
}

static void handle_frame(va_session *s, struct va_frame *f);

static void
on_frame(void *opaque, struct va_frame *f)
{
	va_session *s = opaque;

	handle_frame(s, f);
	if (input_blocked(s)) {
		/* Parse no more until the replies drain; the rest is held. */
		va_frame_parser_pause(s->parser);
		s->st.input_pauses++;
		va_log_debug("%s: %zu bytes of replies unwritten: input paused", s->name,
			     s->reply_pending);
	}
}

static void
handle_frame(va_session *s, struct va_frame *f)
{
	if (f->kind == VA_FRAME_REQUEST) {
		va_log_debug("%s: <- %s %s tag %s (%zu bytes)", s->name, f->method,
			     f->target, or_dash(va_frame_header(f, VA_TAG_HEADER)), f->body_len);
		if (strcmp(f->method, "RESET") == 0) {
			handle_reset(s, f);
			va_frame_free(f);
			return;
		}
		if (s->state != ST_READY) {
			s->st.ignored_frames++;
			va_frame_free(f);
			return;
		}
		const char *tag = va_frame_header(f, VA_TAG_HEADER);
		if (strcmp(f->method, "POST") != 0 || !tag_ok(tag)) {
			s->st.bad_frames++;
			va_log_warnx("%s: request %s without a usable tag, dropped",
				     s->name, f->method);
			va_frame_free(f);
			return;
		}
		/* The callee may free f at once: give it a copy of the tag. */
		char tagcopy[TAG_MAX + 1];
		memcpy(tagcopy, tag, strlen(tag) + 1);
		s->st.requests++;
		if (va_session_is_binary(f))
			s->st.binary_requests++;
		if (!s->ops.request) {
			va_frame_free(f);
			return;
		}
		s->ops.request(s->opaque, s, s->epoch, tagcopy, f);
		return;
	}

	va_log_debug("%s: <- %d %s tag %s (%zu bytes)", s->name, f->status, f->reason,
		     or_dash(va_frame_header(f, VA_TAG_HEADER)), f->body_len);
	if (f->status == 205) {
		handle_ack(s, f);
		va_frame_free(f);
		return;
	}
	if (s->state != ST_READY) {
		s->st.ignored_frames++;
		va_frame_free(f);
		return;
	}
	handle_response(s, f);
}

static void
queue_413(va_session *s, const char *tag)
{
	struct va_frame_header h[1] = { { (char *)VA_TAG_HEADER, (char *)tag } };
	struct out_frame *f;

	if (build_frame(&f, "HTTP/1.1 413 Payload Too Large", h, 1, NULL, 0) < 0) {
		va_log_warnx("%s: cannot queue 413 for %s", s->name, tag);
		return;
	}
	f->is_reply = 1;
	queue_frame(s, f);
	va_log_debug("%s: -> 413 tag %s", s->name, tag);
}

static void
on_error(void *opaque, enum va_frame_error err, const struct va_frame *partial)
{
	va_session *s = opaque;

	if (err == VA_FRAME_ERR_TORN) {
		/* Normal after a reset or a peer restart; the parser counts it. */
		va_log_debug("%s: torn frame dropped", s->name);
		return;
	}
	s->st.bad_frames++;
	const char *tag = partial ? va_frame_header(partial, VA_TAG_HEADER) : NULL;
	va_log_warnx("%s: frame refused: %s (tag %s)", s->name, va_frame_strerror(err),
		     tag ? tag : "-");
	if (err != VA_FRAME_ERR_TOO_LARGE || !partial || s->state != ST_READY)
		return;

	if (partial->kind == VA_FRAME_REQUEST) {
		/* Tell the caller which request was too large. */
		if (partial->method && strcmp(partial->method, "POST") == 0 && tag_ok(tag))
			queue_413(s, tag);
		if (input_blocked(s)) {
			va_frame_parser_pause(s->parser);
			s->st.input_pauses++;
		}
		return;
	}
	/* A response too large for us: fail its call rather than let it time out. */
	int current;
	uint64_t seq;
	struct call *c;
	if (partial->status == 205 || parse_tag(s, tag, &current, &seq) < 0 || !current ||
	    !(c = find_in_flight(s, seq)))
		return;
	struct after a;
	after_init(&a);
	list_remove(&s->in_flight, c);
	fail_call(s, &a, c, VA_SESSION_ERR_TOO_LARGE);
	after_run(s, &a);
}

/* ---- the interface ---- */

va_session *
va_session_new(const struct va_session_config *cfg, const struct va_session_ops *ops,
	       void *opaque)
{
	static const struct va_frame_parser_ops pops = {
		.frame = on_frame,
		.error = on_error,
	};
	if (!ops) {
		errno = EINVAL;
		return NULL;
	}
	va_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->name = strdup(cfg && cfg->name ? cfg->name : "session");
	if (!s->name)
		goto fail;
	s->ops = *ops;
	s->opaque = opaque;
	s->max_frame = cfg && cfg->max_frame ? cfg->max_frame : VA_FRAME_DEFAULT_MAX_BODY;
	s->protocol = cfg && cfg->protocol ? cfg->protocol : VA_PROTOCOL_VERSION;
	if (s->protocol > VA_PROTOCOL_VERSION) {
		free(s->name);
		free(s);
		errno = EINVAL;
		return NULL;
	}
	s->ready_timeout_ms = cfg && cfg->ready_timeout_ms ? cfg->ready_timeout_ms
							  : DEFAULT_READY_TIMEOUT_MS;
	s->reset_retry_ms = cfg && cfg->reset_retry_ms ? cfg->reset_retry_ms
						      : DEFAULT_RESET_RETRY_MS;
	s->reset_retry_max_ms = cfg && cfg->reset_retry_max_ms ? cfg->reset_retry_max_ms
							      : DEFAULT_RESET_RETRY_MAX_MS;
	if (s->reset_retry_max_ms < s->reset_retry_ms)
		s->reset_retry_max_ms = s->reset_retry_ms;
	s->state = ST_INITIAL;
	s->retry_at = UINT64_MAX;
	s->parser = va_frame_parser_new(s->max_frame, &pops, s);
	if (!s->parser)
		goto fail;
	return s;
fail:
	free(s->name);
	free(s);
	return NULL;
}

void
va_session_free(va_session *s)
{
	struct after a;

	if (!s)
		return;
	/* Callbacks may still call va_session_call/reply: both refuse now. */
	s->closing = 1;
	after_init(&a);
	fail_all(s, &a, &s->in_flight, VA_SESSION_ERR_CLOSED);
	fail_all(s, &a, &s->waiting, VA_SESSION_ERR_CLOSED);
	after_run(s, &a);
	drop_output(s);
	va_frame_parser_free(s->parser);
	va_buf_free(&s->held);
	free(s->name);
	free(s);
}

void
va_session_peer_up(va_session *s, uint64_t now_ms)
{
	struct after a;

	after_init(&a);
	/* The peer may be a new process: forget the old one's limit and bytes. */
	s->peer_max = 0;
	s->peer_protocol = 0;
	va_frame_parser_discard(s->parser);
	va_buf_free(&s->held);
	start_reset(s, now_ms, &a, 0, "peer up");
	after_run(s, &a);
}

void
va_session_peer_down(va_session *s, uint64_t now_ms)
{
	struct after a;

	(void)now_ms;
	after_init(&a);
	s->epoch++;
	fail_all(s, &a, &s->in_flight, VA_SESSION_ERR_PEER_GONE);
	fail_all(s, &a, &s->waiting, VA_SESSION_ERR_PEER_GONE);
	drop_output(s);
	va_frame_parser_discard(s->parser);
	va_buf_free(&s->held);
	if (s->state != ST_INITIAL)
		a.reset = 1;
	s->state = ST_INITIAL;
	s->nonce[0] = 0;
	s->peer_max = 0;
	s->peer_protocol = 0;
	s->retry_at = UINT64_MAX;
	va_log_info("%s: peer gone", s->name);
	after_run(s, &a);
}

void
va_session_reset(va_session *s, uint64_t now_ms)
{
	struct after a;

	after_init(&a);
	start_reset(s, now_ms, &a, 0, "requested");
	after_run(s, &a);
	kick(s);
}

/* Parses held input while the replies are not backed up. */
static void
drain_held(va_session *s)
{
	size_t off = 0;

	/* Callbacks never call va_session_input: held does not move. */
	while (off < s->held.len && !input_blocked(s))
		off += va_frame_parser_feed(s->parser, s->held.data + off, s->held.len - off);
	if (off == s->held.len)
		va_buf_free(&s->held);
	else
		va_buf_consume(&s->held, off);
}

/* Keeps data[0..len) for later; feeds it now if it cannot be kept. */
static void
hold(va_session *s, const uint8_t *data, size_t len)
{
	if (va_buf_append(&s->held, data, len) == 0)
		return;
	/* Dropping bytes would corrupt the stream: parse them after all. */
	va_log_warnx("%s: no memory to hold %zu bytes of input; parsing them now",
		     s->name, len);
	size_t off = 0;
	while (off < s->held.len)
		off += va_frame_parser_feed(s->parser, s->held.data + off, s->held.len - off);
	va_buf_free(&s->held);
	for (off = 0; off < len;)
		off += va_frame_parser_feed(s->parser, data + off, len - off);
}

void
va_session_input(va_session *s, const void *data, size_t len, uint64_t now_ms)
{
	/* Timers run in va_session_tick; a response that arrives after its
	 * call's deadline but before the tick still answers the call. */
	(void)now_ms;
	if (len == 0)
		return;
	if (s->held.len > 0 || input_blocked(s)) {
		hold(s, data, len);
		drain_held(s);
		return;
	}
	size_t used = va_frame_parser_feed(s->parser, data, len);
	if (used < len)
		hold(s, (const uint8_t *)data + used, len - used);
}

size_t
va_session_output_iov(va_session *s, struct iovec *iov, size_t max)
{
	size_t n = 0;

	for (struct out_frame *f = s->out_head; f && n < max; f = f->next) {
		size_t off = f == s->out_head ? s->out_pos : 0;
		if (off < f->len) {
			iov[n].iov_base = f->data + off;
			iov[n].iov_len = f->len - off;
			n++;
			off = f->len;
		}
		if (f->body_len && n < max) {
			iov[n].iov_base = f->body + (off - f->len);
			iov[n].iov_len = f->body_len - (off - f->len);
			n++;
		}
	}
	return n;
}

void
va_session_output_consume(va_session *s, size_t n)
{
	if (n > s->out_pending)
		n = s->out_pending;
	s->out_pending -= n;
	while (n > 0 && s->out_head) {
		struct out_frame *f = s->out_head;
		size_t left = frame_total(f) - s->out_pos;
		size_t k = n < left ? n : left;
		if (f->is_reply)
			s->reply_pending -= k;
		if (n < left) {
			s->out_pos += n;
			return;
		}
		n -= left;
		s->out_head = f->next;
		if (!s->out_head)
			s->out_tail = NULL;
		s->out_pos = 0;
		out_frame_free(f);
	}
}

size_t
va_session_output_pending(const va_session *s)
{
	return s->out_pending;
}

size_t
va_session_reply_pending(const va_session *s)
{
	return s->reply_pending;
}

size_t
va_session_input_held(const va_session *s)
{
	return s->held.len;
}

static uint64_t
waiting_deadline(const struct call *c)
{
	return c->deadline < c->ready_deadline ? c->deadline : c->ready_deadline;
}

uint64_t
va_session_deadline(const va_session *s)
{
	uint64_t d = s->state == ST_WAIT_ACK ? s->retry_at : UINT64_MAX;

	if (s->held.len > 0 && !input_blocked(s))
		return 0; /* held input can be parsed now */

	for (const struct call *c = s->in_flight.head; c; c = c->next)
		if (c->deadline < d)
			d = c->deadline;
	for (const struct call *c = s->waiting.head; c; c = c->next)
		if (waiting_deadline(c) < d)
			d = waiting_deadline(c);
	return d;
}

void
va_session_tick(va_session *s, uint64_t now_ms)
{
	struct after a;
	struct call *c, *next;
	int timed_out = 0;

	after_init(&a);
	for (c = s->in_flight.head; c; c = next) {
		next = c->next;
		if (c->deadline <= now_ms) {
			va_log_warnx("%s: call %s.%" PRIu64 " timed out", s->name, s->id, c->seq);
			list_remove(&s->in_flight, c);
			fail_call(s, &a, c, VA_SESSION_ERR_TIMEOUT);
			timed_out = 1;
		}
	}
	for (c = s->waiting.head; c; c = next) {
		next = c->next;
		if (waiting_deadline(c) <= now_ms) {
			/* The earlier deadline wins; a tie is NOT_READY. */
			int err = c->ready_deadline <= c->deadline ? VA_SESSION_ERR_NOT_READY
								   : VA_SESSION_ERR_TIMEOUT;
			va_log_warnx("%s: call %" PRIu64 " failed before the handshake: %s",
				     s->name, c->seq, va_session_strerror(err));
			list_remove(&s->waiting, c);
			fail_call(s, &a, c, err);
		}
	}
	/* In-flight calls exist only while READY; a timeout resets. */
	if (timed_out)
		start_reset(s, now_ms, &a, 0, "call timeout");
	else if (s->state == ST_WAIT_ACK && s->retry_at <= now_ms)
		start_reset(s, now_ms, &a, 1, "no answer, retry");
	after_run(s, &a);
	if (s->held.len > 0)
		drain_held(s);
}

/* ---- messages: checks and frames ---- */

/* RFC 7230 tchar. */
static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A MIME type without parameters: token "/" token, 3..64 bytes. */
static int
content_type_ok(const char *t)
{
	size_t n, slash = 0, at = 0;

	for (n = 0; t[n]; n++) {
		if (n >= 64)
			return 0;
		if (t[n] == '/') {
			slash++;
			at = n;
		} else if (!is_tchar((unsigned char)t[n])) {
			return 0;
		}
	}
	return slash == 1 && at > 0 && at < n - 1;
}

static int
param_name_ok(const char *n)
{
	if (!n || !(n[0] >= 'a' && n[0] <= 'z'))
		return 0;
	for (size_t i = 0; n[i]; i++) {
		char c = n[i];
		if (i >= VA_PARAM_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

static int
param_value_ok(const char *v)
{
	if (!v)
		return 0;
	for (size_t i = 0; v[i]; i++)
		if (i >= VA_PARAM_VALUE_MAX || (unsigned char)v[i] < 0x21 ||
		    (unsigned char)v[i] > 0x7e)
			return 0;
	return 1;
}

static int
is_xml_type(const char *ct)
{
	return !ct || strcasecmp(ct, VA_CONTENT_XML) == 0;
}

/* A message checked and its headers laid out (they point into m and p). */
struct prepared {
	struct va_frame_header h[3 + VA_PARAMS_MAX];
	char names[VA_PARAMS_MAX][sizeof(VA_PARAM_PREFIX) + VA_PARAM_NAME_MAX];
	size_t nh;
	int binary;      /* stuffed on the wire */
	int needs_v2;    /* binary or parameters */
	size_t count;    /* escapes in a binary body */
	size_t wire_len; /* the body on the wire */
};

/*
 * Checks m's content type and parameters and lays out the headers:
 * Content-Type, Content-Encoding (binary), the tag, the parameters.
 * Returns 0 or -EINVAL.  The body is not looked at for 0xFF here.
 */
static int
prepare_msg(const struct va_msg *m, const char *tag, struct prepared *p)
{
	if (m->len && !m->body)
		return -EINVAL;
	if (m->nparams > VA_PARAMS_MAX || (m->nparams && !m->params))
		return -EINVAL;
	p->binary = !is_xml_type(m->content_type);
	if (p->binary && !content_type_ok(m->content_type))
		return -EINVAL;
	p->nh = 0;
	p->h[p->nh].name = (char *)"Content-Type";
	p->h[p->nh++].value = (char *)(p->binary ? m->content_type : VA_CONTENT_XML);
	if (p->binary) {
		p->h[p->nh].name = (char *)"Content-Encoding";
		p->h[p->nh++].value = (char *)VA_STUFF_CODING;
	}
	p->h[p->nh].name = (char *)VA_TAG_HEADER;
	p->h[p->nh++].value = (char *)tag;
	for (size_t i = 0; i < m->nparams; i++) {
		const struct va_param *q = &m->params[i];
		if (!param_name_ok(q->name) || !param_value_ok(q->value))
			return -EINVAL;
		for (size_t k = 0; k < i; k++)
			if (strcmp(m->params[k].name, q->name) == 0)
				return -EINVAL;
		snprintf(p->names[i], sizeof(p->names[i]), "%s%s", VA_PARAM_PREFIX, q->name);
		p->h[p->nh].name = p->names[i];
		p->h[p->nh++].value = (char *)q->value;
	}
	p->needs_v2 = p->binary || m->nparams > 0;
	p->count = p->binary ? va_stuff_count(m->body, m->len) : 0;
	p->wire_len = va_stuff_len(m->len, p->count);
	return 0;
}

/* An XML body must not hold 0xFF (it would tear the frame). */
static int
xml_body_ok(const struct prepared *p, const struct va_msg *m)
{
	return p->binary || m->len == 0 || !memchr(m->body, VA_FRAME_SENTINEL, m->len);
}

/* Room for the head of a frame with these headers (and Content-Length). */
static size_t
head_bound(const char *start_line, const struct va_frame_header *h, size_t nh)
{
	size_t bound = 1 + strlen(start_line) + 2;
	for (size_t i = 0; i < nh; i++)
		bound += strlen(h[i].name) + 2 + strlen(h[i].value) + 2;
	return bound + sizeof("Content-Length: ") + 20 + 2 + 2 + 1;
}

/*
 * The frame of a prepared message.  A body handed over (m->take) stays
 * where it is (stuffed in place when binary) and goes as a second iovec;
 * a borrowed one is copied (stuffed on the way) after the head, into one
 * buffer of the exact size.  Takes m's body when m->take, also on failure.
 */
static int
build_msg_frame(struct out_frame **out, const char *start_line, const struct prepared *p,
		const struct va_msg *m)
{
	uint8_t *owned = m->take ? (uint8_t *)m->body : NULL;
	int separate = owned && m->len > 0;
	size_t bound = head_bound(start_line, p->h, p->nh);
	struct out_frame *f = NULL;
	struct va_buf b;
	int r = -ENOMEM;

	va_buf_init(&b);
	if (!separate) {
		if (p->wire_len > SIZE_MAX - bound) {
			r = -E2BIG;
			goto fail;
		}
		bound += p->wire_len;
	}
	f = calloc(1, sizeof(*f));
	b.data = malloc(bound);
	if (!f || !b.data)
		goto fail;
	b.cap = bound;
	r = va_frame_write_head(&b, start_line, p->h, p->nh, p->wire_len, NULL);
	if (r < 0)
		goto fail;
	f->head_len = b.len;
	if (separate) {
		if (p->count) {
			uint8_t *nb = realloc(owned, p->wire_len);
			if (!nb) {
				r = -ENOMEM;
				goto fail;
			}
			owned = nb;
			va_stuff_inplace(owned, m->len, p->count);
		}
		f->body = owned;
		f->body_len = p->wire_len;
		owned = NULL;
	} else if (p->binary && m->len) {
		b.len += va_stuff(b.data + b.len, m->body, m->len);
	} else if (m->len) {
		memcpy(b.data + b.len, m->body, m->len);
		b.len += m->len;
	}
	f->data = b.data;
	f->len = b.len;
	free(owned); /* an empty body handed over */
	*out = f;
	return 0;
fail:
	va_buf_free(&b);
	free(f);
	free(owned);
	return r;
}

int
va_session_call(va_session *s, const void *body, size_t len, unsigned timeout_ms,
		uint64_t now_ms, va_call_cb cb, void *opaque)
{
	struct va_msg m = { .body = body, .len = len };

	return va_session_call_msg(s, &m, timeout_ms, now_ms, cb, opaque);
}

int
va_session_call_msg(va_session *s, const struct va_msg *m, unsigned timeout_ms,
		    uint64_t now_ms, va_call_cb cb, void *opaque)
{
	struct prepared p;
	int r;

	if (!m)
		return -EINVAL;
	if (!cb || (!m->body && m->len)) {
		r = -EINVAL;
		goto fail;
	}
	if (s->closing) {
		r = -ESHUTDOWN;
		goto fail;
	}

	uint64_t seq = next_seq();
	int ready = s->state == ST_READY;
	char tag[ID_LEN + 1 + 21];
	make_tag(tag, ready ? s->id : ID_PLACEHOLDER, seq);
	if ((r = prepare_msg(m, tag, &p)) < 0)
		goto fail;
	if (p.needs_v2 && (s->protocol < 2 || (ready && s->peer_protocol < 2))) {
		r = -EPROTO;
		goto fail;
	}
	if (p.wire_len > s->max_frame || (s->peer_max && p.wire_len > s->peer_max)) {
		r = -E2BIG;
		goto fail;
	}
	if (!xml_body_ok(&p, m)) {
		r = -EINVAL;
		goto fail;
	}
	struct out_frame *f;
	if ((r = build_msg_frame(&f, "POST /RPC2 HTTP/1.1", &p, m)) < 0)
		return r; /* the body is freed */

	struct call *c = calloc(1, sizeof(*c));
	if (!c) {
		out_frame_free(f);
		return -ENOMEM;
	}
	c->seq = seq;
	c->cb = cb;
	c->opaque = opaque;
	c->deadline = timeout_ms ? add_ms(now_ms, timeout_ms) : UINT64_MAX;
	c->body_len = p.wire_len;
	c->needs_v2 = p.needs_v2;
	c->frame = f;
	c->id_off = SIZE_MAX;
	s->st.calls++;
	if (p.binary)
		s->st.binary_calls++;
	if (ready) {
		send_call(s, c);
		kick(s);
		return 0;
	}
	/* Sent when READY, with the id patched over the placeholder. */
	size_t taglen = strlen(tag);
	size_t at = find_bytes(f->data, f->head_len, tag, taglen);
	if (at == SIZE_MAX) {
		/* va_frame_write_head did not write the value verbatim: cannot be. */
		s->st.calls--;
		if (p.binary)
			s->st.binary_calls--;
		out_frame_free(f);
		free(c);
		return -EINVAL;
	}
	c->id_off = at;
	c->ready_deadline = add_ms(now_ms, s->ready_timeout_ms);
	list_append(&s->waiting, c);
	va_log_debug("%s: call %" PRIu64 " waits for the handshake (%s)", s->name, seq,
		     state_names[s->state]);
	kick(s); /* its ready deadline is a timer */
	return 0;

fail:
	if (m->take)
		free((void *)m->body);
	return r;
}

int
va_session_reply(va_session *s, uint64_t epoch, const char *tag, const void *body,
		 size_t len)
{
	struct va_msg m = { .body = body, .len = len };

	return va_session_reply_msg(s, epoch, tag, &m);
}

int
va_session_reply_msg(va_session *s, uint64_t epoch, const char *tag, const struct va_msg *m)
{
	struct prepared p;
	int r;

	if (!m)
		return -EINVAL;
	if (s->closing || epoch != s->epoch || s->state != ST_READY) {
		s->st.stale_replies++;
		va_log_warnx("%s: reply %s to a request of an earlier session, dropped",
			     s->name, tag ? tag : "-");
		r = -ESTALE;
		goto fail;
	}
	if (!tag_ok(tag) || (!m->body && m->len)) {
		r = -EINVAL;
		goto fail;
	}
	if ((r = prepare_msg(m, tag, &p)) < 0)
		goto fail;
	if (p.needs_v2 && va_session_protocol(s) < 2) {
		r = -EPROTO;
		goto fail;
	}
	if (s->peer_max && p.wire_len > s->peer_max) {
		r = -E2BIG;
		goto fail;
	}
	if (!xml_body_ok(&p, m)) {
		r = -EINVAL;
		goto fail;
	}
	struct out_frame *f;
	if ((r = build_msg_frame(&f, "HTTP/1.1 200 OK", &p, m)) < 0)
		return r; /* the body is freed */
	f->is_reply = 1;
	queue_frame(s, f);
	s->st.replies++;
	va_log_debug("%s: -> reply %s (%zu bytes%s)", s->name, tag, p.wire_len,
		     p.binary ? ", binary" : "");
	kick(s);
	return 0;

fail:
	if (m->take)
		free((void *)m->body);
	return r;
}

/* ---- reading what the peer sent ---- */

const char *
va_session_content_type(const struct va_frame *f)
{
	const char *ct = va_frame_header(f, "Content-Type");
	return ct ? ct : VA_CONTENT_XML;
}

int
va_session_is_binary(const struct va_frame *f)
{
	const char *ct = va_session_content_type(f);
	size_t n = strlen(VA_CONTENT_XML);

	if (strncasecmp(ct, VA_CONTENT_XML, n) != 0)
		return 1;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	/* "text/xml; charset=utf-8" is XML too. */
	return *ct != '\0' && *ct != ';';
}

const char *
va_session_param(const struct va_frame *f, const char *name)
{
	const size_t plen = strlen(VA_PARAM_PREFIX);
	const char *found = NULL;

	if (!f || !name || !*name)
		return NULL;
	for (size_t i = 0; i < f->nheaders; i++) {
		const char *hn = f->headers[i].name;
		if (strncasecmp(hn, VA_PARAM_PREFIX, plen) != 0 || strcasecmp(hn + plen, name) != 0)
			continue;
		if (found)
			return NULL; /* given twice: which one is meant? */
		found = f->headers[i].value;
	}
	return found && param_value_ok(found) ? found : NULL;
}

int
va_session_param_u64(const struct va_frame *f, const char *name, uint64_t *out)
{
	const char *v = va_session_param(f, name);
	uint64_t x;

	if (!v) {
		/* Present but unusable is not "absent". */
		const size_t plen = strlen(VA_PARAM_PREFIX);
		for (size_t i = 0; f && name && i < f->nheaders; i++)
			if (strncasecmp(f->headers[i].name, VA_PARAM_PREFIX, plen) == 0 &&
			    strcasecmp(f->headers[i].name + plen, name) == 0)
				return -EINVAL;
		return -ENOENT;
	}
	if (parse_u64(v, strlen(v), &x) < 0)
		return -EINVAL;
	*out = x;
	return 0;
}

void
va_session_set_kick(va_session *s, void (*fn)(void *opaque), void *opaque)
{
	s->kick = fn;
	s->kick_opaque = opaque;
}

int
va_session_is_ready(const va_session *s)
{
	return s->state == ST_READY;
}

uint64_t
va_session_epoch(const va_session *s)
{
	return s->epoch;
}

const char *
va_session_id(const va_session *s)
{
	return s->id;
}

unsigned
va_session_peer_protocol(const va_session *s)
{
	return s->peer_protocol;
}

unsigned
va_session_protocol(const va_session *s)
{
	if (!s->peer_protocol)
		return 0;
	return s->peer_protocol < s->protocol ? s->peer_protocol : s->protocol;
}

size_t
va_session_peer_max_frame(const va_session *s)
{
	return s->peer_max;
}

size_t
va_session_max_frame(const va_session *s)
{
	return s->max_frame;
}

size_t
va_session_calls_in_flight(const va_session *s)
{
	return s->waiting.n + s->in_flight.n;
}

void
va_session_stats(const va_session *s, struct va_session_stats *st)
{
	*st = s->st;
	va_frame_parser_stats(s->parser, &st->parser);
}
