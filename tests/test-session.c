/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-session.c - CUnit tests of the session (common/session.c).
 *
 * Two sessions, A and B, are joined by an in-memory link with a fake
 * clock.  The pump moves bytes A->B and B->A in random-sized slices and,
 * in a fault phase, drops, duplicates, truncates and holds back bytes.
 * Each side runs an echo responder (the reply body is the request body),
 * answering at once, later, or never.  Everything is deterministic (a
 * seeded PRNG), so a failure repeats.
 */
#include "config.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "frame.h"
#include "log.h"
#include "session.h"
#include "stuff.h"

#include "cunit-main.h"

/* ---- deterministic randomness and the fake clock ---- */

static uint64_t rng = 88172645463325252ull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* lo..hi inclusive */
static size_t
rnd_range(size_t lo, size_t hi)
{
	return lo + (size_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static int
chance(unsigned pct)
{
	return rnd() % 100 < pct;
}

static uint64_t now_ms;

/* ---- the two sides ---- */

enum responder {
	ECHO_NOW,   /* reply inside the request callback */
	ECHO_LATER, /* reply after a random delay */
	SILENT,     /* never reply; remember the tag */
};

struct pending_reply {
	struct pending_reply *next;
	uint64_t epoch;
	uint64_t due;
	char tag[160];
	struct va_frame *req;
};

struct side {
	const char *name;
	va_session *s;
	struct side *peer;
	struct va_buf wire; /* bytes on their way to the peer */
	int faults;         /* drop/dup/truncate/hold on this side's wire */

	enum responder mode;
	unsigned delay_min, delay_max;
	struct pending_reply *replies;
	char last_tag[160];
	uint64_t requests_seen;
	uint64_t replies_ok, replies_stale, replies_failed;

	uint64_t resets_seen, resets_by_peer, established_seen;
	int call_in_established; /* make a call from ops->established */

	/* The last request seen (a copy of its body and content type). */
	uint8_t *last_body;
	size_t last_len;
	char last_ct[80];
	uint64_t last_offset;   /* its "offset" parameter, if any */
	int last_binary;
};

static struct side A, B;

/* ---- calls made by the tests ---- */

struct tcall {
	struct side *side;
	uint8_t *body;
	size_t len;
	int rc;      /* va_session_call's return */
	int done;    /* callbacks seen */
	int err;
	int match;   /* the response body equals the request body */
	uint64_t done_at;
	int reissue; /* on VA_SESSION_ERR_RESET, call again from the callback */
	int chain;   /* on success, make that many more calls from the callback */
	int binary;  /* a binary body (va_session_call_msg) */
};

static struct tcall **tcalls;
static size_t ntcalls, tcalls_cap;
static int strict_bodies = 1; /* a mismatched body is a failure */
static uint64_t double_callbacks, mismatches;

static uint8_t *
make_body(struct side *sd, size_t len)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789<>/ &;";
	char prefix[48];
	int n = snprintf(prefix, sizeof(prefix), "%s:%zu:", sd->name, ntcalls);
	uint8_t *b = malloc(len + 1);
	CU_ASSERT_FATAL(b != NULL);
	for (size_t i = 0; i < len; i++)
		b[i] = i < (size_t)n ? (uint8_t)prefix[i]
				     : (uint8_t)alpha[rnd() % (sizeof(alpha) - 1)];
	return b;
}

static void on_done(void *opaque, int err, struct va_frame *resp);

/* Binary bytes, with many 0xFE and 0xFF (all of them one time in 8). */
static uint8_t *
make_binary_body(size_t len)
{
	uint8_t *b = malloc(len + 1);
	CU_ASSERT_FATAL(b != NULL);
	int all_ff = chance(12);
	for (size_t i = 0; i < len; i++)
		b[i] = all_ff ? 0xFF : chance(10) ? (uint8_t)(0xFE + rnd() % 2) : (uint8_t)rnd();
	return b;
}

/*
 * A binary call (content type VA_CONTENT_BINARY, an "offset" parameter),
 * the body borrowed or handed over (take: the session gets a copy of
 * ours to own).
 */
static struct tcall *
new_tcall(struct side *sd)
{
	struct tcall *tc = calloc(1, sizeof(*tc));
	CU_ASSERT_FATAL(tc != NULL);
	if (ntcalls == tcalls_cap) {
		tcalls_cap = tcalls_cap ? tcalls_cap * 2 : 64;
		tcalls = realloc(tcalls, tcalls_cap * sizeof(*tcalls));
		CU_ASSERT_FATAL(tcalls != NULL);
	}
	tc->side = sd;
	tc->err = -1;
	tcalls[ntcalls++] = tc;
	return tc;
}

/* A call of m, tracked like the others (the body is remembered first). */
static struct tcall *
start_msg_call(struct side *sd, const struct va_msg *m)
{
	struct tcall *tc = new_tcall(sd);
	tc->len = m->len;
	tc->binary = m->content_type && strcasecmp(m->content_type, VA_CONTENT_XML) != 0;
	tc->body = malloc(m->len + 1);
	CU_ASSERT_FATAL(tc->body != NULL);
	if (m->len)
		memcpy(tc->body, m->body, m->len);
	tc->rc = va_session_call_msg(sd->s, m, 0, now_ms, on_done, tc);
	return tc;
}

static struct tcall *
start_binary_call(struct side *sd, size_t len, unsigned timeout_ms, int take)
{
	struct tcall *tc = new_tcall(sd);
	tc->len = len;
	tc->binary = 1;
	tc->body = make_binary_body(len);
	char off[24];
	snprintf(off, sizeof(off), "%zu", ntcalls * 4096);
	struct va_param prm[1] = { { "offset", off } };
	struct va_msg m = { VA_CONTENT_BINARY, prm, 1, tc->body, len, take };
	if (take) {
		m.body = malloc(len + 1);
		CU_ASSERT_FATAL(m.body != NULL);
		memcpy((void *)m.body, tc->body, len);
	}
	tc->rc = va_session_call_msg(sd->s, &m, timeout_ms, now_ms, on_done, tc);
	return tc;
}

static struct tcall *
start_call(struct side *sd, size_t len, unsigned timeout_ms)
{
	struct tcall *tc = calloc(1, sizeof(*tc));
	CU_ASSERT_FATAL(tc != NULL);
	if (ntcalls == tcalls_cap) {
		tcalls_cap = tcalls_cap ? tcalls_cap * 2 : 64;
		tcalls = realloc(tcalls, tcalls_cap * sizeof(*tcalls));
		CU_ASSERT_FATAL(tcalls != NULL);
	}
	tc->side = sd;
	tc->len = len;
	tc->body = make_body(sd, len);
	tc->err = -1;
	tcalls[ntcalls++] = tc;
	tc->rc = va_session_call(sd->s, tc->body, len, timeout_ms, now_ms, on_done, tc);
	return tc;
}

static void
on_done(void *opaque, int err, struct va_frame *resp)
{
	struct tcall *tc = opaque;

	tc->done++;
	if (tc->done > 1)
		double_callbacks++;
	CU_ASSERT_EQUAL(tc->done, 1);
	CU_ASSERT_EQUAL(tc->rc, 0);
	tc->err = err;
	tc->done_at = now_ms;
	if (err == 0) {
		CU_ASSERT_FATAL(resp != NULL);
		CU_ASSERT_EQUAL(resp->status, 200);
		tc->match = resp->body_len == tc->len &&
			    memcmp(resp->body, tc->body, tc->len) == 0 &&
			    va_session_is_binary(resp) == tc->binary;
		if (!tc->match) {
			mismatches++;
			if (strict_bodies)
				CU_FAIL("response body is not the caller's own");
		}
		va_frame_free(resp);
	} else {
		CU_ASSERT_PTR_NULL(resp);
	}
	/* Re-entrancy: calls from inside a callback. */
	if (err == VA_SESSION_ERR_RESET && tc->reissue) {
		struct tcall *again = start_call(tc->side, tc->len, 0);
		CU_ASSERT_EQUAL(again->rc, 0);
	}
	if (err == 0) {
		for (int i = 0; i < tc->chain; i++) {
			struct tcall *more = start_call(tc->side, 100, 0);
			CU_ASSERT_EQUAL(more->rc, 0);
		}
	}
}

static size_t
count_calls(struct side *sd, int err, size_t from)
{
	size_t n = 0;
	for (size_t i = from; i < ntcalls; i++)
		if ((!sd || tcalls[i]->side == sd) && tcalls[i]->rc == 0 &&
		    tcalls[i]->done && tcalls[i]->err == err)
			n++;
	return n;
}

static int
all_done(size_t from)
{
	for (size_t i = from; i < ntcalls; i++)
		if (tcalls[i]->rc == 0 && !tcalls[i]->done)
			return 0;
	return 1;
}

/* ---- the responder and the session callbacks ---- */

static void
do_reply(struct side *sd, uint64_t epoch, const char *tag, struct va_frame *req)
{
	int r;
	if (va_session_is_binary(req)) {
		/* Echoed without a copy: the request's buffer becomes the reply's. */
		struct va_msg m = { va_session_content_type(req), NULL, 0, req->body,
				    req->body_len, 1 };
		char ct[80];
		snprintf(ct, sizeof(ct), "%s", m.content_type);
		m.content_type = ct;
		req->body = NULL;
		r = va_session_reply_msg(sd->s, epoch, tag, &m);
	} else {
		r = va_session_reply(sd->s, epoch, tag, req->body, req->body_len);
	}
	if (r == 0)
		sd->replies_ok++;
	else if (r == -ESTALE)
		sd->replies_stale++;
	else
		sd->replies_failed++;
	va_frame_free(req);
}

static void
on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
	   struct va_frame *req)
{
	struct side *sd = opaque;

	CU_ASSERT_PTR_EQUAL(s, sd->s);
	CU_ASSERT_EQUAL(epoch, va_session_epoch(s));
	sd->requests_seen++;
	snprintf(sd->last_tag, sizeof(sd->last_tag), "%s", tag);
	free(sd->last_body);
	sd->last_body = malloc(req->body_len + 1);
	CU_ASSERT_FATAL(sd->last_body != NULL);
	memcpy(sd->last_body, req->body, req->body_len);
	sd->last_len = req->body_len;
	snprintf(sd->last_ct, sizeof(sd->last_ct), "%s", va_session_content_type(req));
	sd->last_binary = va_session_is_binary(req);
	if (va_session_param_u64(req, "offset", &sd->last_offset) < 0)
		sd->last_offset = UINT64_MAX;
	switch (sd->mode) {
	case ECHO_NOW:
		do_reply(sd, epoch, tag, req);
		break;
	case ECHO_LATER: {
		struct pending_reply *p = calloc(1, sizeof(*p));
		CU_ASSERT_FATAL(p != NULL);
		p->epoch = epoch;
		p->due = now_ms + rnd_range(sd->delay_min, sd->delay_max);
		snprintf(p->tag, sizeof(p->tag), "%s", tag);
		p->req = req;
		p->next = sd->replies;
		sd->replies = p;
		break;
	}
	case SILENT:
		va_frame_free(req);
		break;
	}
}

static void
on_established(void *opaque, va_session *s)
{
	struct side *sd = opaque;

	CU_ASSERT(va_session_is_ready(s));
	sd->established_seen++;
	if (sd->call_in_established) {
		sd->call_in_established--;
		struct tcall *tc = start_call(sd, 50, 0);
		CU_ASSERT_EQUAL(tc->rc, 0);
	}
}

static void
on_reset(void *opaque, va_session *s, int by_peer)
{
	struct side *sd = opaque;

	(void)s;
	sd->resets_seen++;
	if (by_peer)
		sd->resets_by_peer++;
}

static const struct va_session_ops ops = {
	.request = on_request,
	.established = on_established,
	.reset = on_reset,
};

static void
run_due_replies(struct side *sd, int all)
{
	struct pending_reply **pp = &sd->replies;
	while (*pp) {
		struct pending_reply *p = *pp;
		if (all || p->due <= now_ms) {
			*pp = p->next;
			do_reply(sd, p->epoch, p->tag, p->req);
			free(p);
		} else {
			pp = &p->next;
		}
	}
}

/* ---- the link ---- */

static void
wire_append(struct side *from, const uint8_t *p, size_t n)
{
	CU_ASSERT_FATAL(va_buf_append(&from->wire, p, n) == 0);
}

/* Moves a random slice of from's output onto its wire, maybe damaged. */
static void
take_output(struct side *from)
{
	struct iovec iov[16];
	size_t n = va_session_output_iov(from->s, iov, 16);
	size_t avail = 0;

	for (size_t i = 0; i < n; i++)
		avail += iov[i].iov_len;
	if (avail == 0)
		return;
	size_t want = chance(30) ? rnd_range(1, 16) : rnd_range(1, 65536);
	if (want > avail)
		want = avail;
	uint8_t *tmp = malloc(want);
	CU_ASSERT_FATAL(tmp != NULL);
	size_t got = 0;
	for (size_t i = 0; i < n && got < want; i++) {
		size_t k = iov[i].iov_len < want - got ? iov[i].iov_len : want - got;
		memcpy(tmp + got, iov[i].iov_base, k);
		got += k;
	}
	va_session_output_consume(from->s, want);

	if (from->faults && chance(3)) {
		/* dropped */
	} else if (from->faults && chance(3)) {
		wire_append(from, tmp, want); /* duplicated */
		wire_append(from, tmp, want);
	} else if (from->faults && chance(3)) {
		wire_append(from, tmp, rnd_range(0, want - 1)); /* truncated */
	} else {
		wire_append(from, tmp, want);
	}
	free(tmp);
}

/* Delivers a random slice of from's wire to the peer. */
static void
deliver(struct side *from)
{
	if (from->wire.len == 0)
		return;
	if (from->faults && chance(30))
		return; /* held back */
	size_t k = chance(30) ? rnd_range(1, 16) : rnd_range(1, 65536);
	if (k > from->wire.len)
		k = from->wire.len;
	/* Copy: callbacks never touch the wire, but be safe anyway. */
	uint8_t *tmp = malloc(k);
	CU_ASSERT_FATAL(tmp != NULL);
	memcpy(tmp, from->wire.data, k);
	va_buf_consume(&from->wire, k);
	va_session_input(from->peer->s, tmp, k, now_ms);
	free(tmp);
}

/* One ms of the world. */
static void
step(void)
{
	for (int i = 0; i < 4; i++) {
		take_output(&A);
		take_output(&B);
		deliver(&A);
		deliver(&B);
	}
	run_due_replies(&A, 0);
	run_due_replies(&B, 0);
	va_session_tick(A.s, now_ms);
	va_session_tick(B.s, now_ms);
	now_ms++;
}

static int
quiet(void)
{
	return va_session_is_ready(A.s) && va_session_is_ready(B.s) &&
	       va_session_output_pending(A.s) == 0 && va_session_output_pending(B.s) == 0 &&
	       A.wire.len == 0 && B.wire.len == 0;
}

static int
quiet_and_done(void)
{
	return quiet() && all_done(0) && !A.replies && !B.replies;
}

/* Steps until cond() holds; fails the test after max_ms of fake time. */
static int
run_until(int (*cond)(void), uint64_t max_ms)
{
	uint64_t end = now_ms + max_ms;
	while (!cond()) {
		if (now_ms >= end) {
			CU_FAIL("condition not reached in time");
			return 0;
		}
		step();
	}
	return 1;
}

static void
run_for(uint64_t ms)
{
	uint64_t end = now_ms + ms;
	while (now_ms < end)
		step();
}

/* ---- setup and teardown ---- */

static struct va_session_config
default_cfg(const char *name)
{
	struct va_session_config c = {
		.name = name,
		.ready_timeout_ms = 3000,
		.reset_retry_ms = 500,
		.reset_retry_max_ms = 2000,
	};
	return c;
}

static void
side_init(struct side *sd, const char *name, const struct va_session_config *cfg,
	  struct side *peer)
{
	memset(sd, 0, sizeof(*sd));
	sd->name = name;
	sd->peer = peer;
	sd->mode = ECHO_NOW;
	va_buf_init(&sd->wire);
	sd->s = va_session_new(cfg, &ops, sd);
	CU_ASSERT_FATAL(sd->s != NULL);
}

static void
setup_cfg(const struct va_session_config *ca, const struct va_session_config *cb)
{
	now_ms = 1000;
	strict_bodies = 1;
	double_callbacks = mismatches = 0;
	side_init(&A, "A", ca, &B);
	side_init(&B, "B", cb, &A);
}

static void
setup(void)
{
	struct va_session_config ca = default_cfg("A"), cb = default_cfg("B");
	setup_cfg(&ca, &cb);
}

static void
side_free_replies(struct side *sd)
{
	while (sd->replies) {
		struct pending_reply *p = sd->replies;
		sd->replies = p->next;
		va_frame_free(p->req);
		free(p);
	}
}

static void
teardown(void)
{
	if (A.s)
		va_session_free(A.s);
	if (B.s)
		va_session_free(B.s);
	A.s = B.s = NULL;
	side_free_replies(&A);
	side_free_replies(&B);
	free(A.last_body);
	free(B.last_body);
	A.last_body = B.last_body = NULL;
	va_buf_free(&A.wire);
	va_buf_free(&B.wire);
	for (size_t i = 0; i < ntcalls; i++) {
		/* Every accepted call got exactly one callback (CLOSED at the latest). */
		CU_ASSERT(tcalls[i]->rc != 0 || tcalls[i]->done == 1);
		CU_ASSERT(tcalls[i]->rc == 0 || tcalls[i]->done == 0);
		free(tcalls[i]->body);
		free(tcalls[i]);
	}
	free(tcalls);
	tcalls = NULL;
	ntcalls = tcalls_cap = 0;
	CU_ASSERT_EQUAL(double_callbacks, 0);
}

static void
get_stats(struct side *sd, struct va_session_stats *st)
{
	va_session_stats(sd->s, st);
}

/* calls == ok + failed + still waiting, on both sides. */
static void
check_counters(void)
{
	struct side *sides[2] = { &A, &B };
	for (int i = 0; i < 2; i++) {
		struct va_session_stats st;
		get_stats(sides[i], &st);
		CU_ASSERT_EQUAL(st.calls, st.calls_ok + st.calls_failed +
					  va_session_calls_in_flight(sides[i]->s));
		size_t accepted = 0, ok = 0, done = 0;
		for (size_t k = 0; k < ntcalls; k++) {
			if (tcalls[k]->side != sides[i] || tcalls[k]->rc != 0)
				continue;
			accepted++;
			done += tcalls[k]->done;
			ok += tcalls[k]->done && tcalls[k]->err == 0;
		}
		CU_ASSERT_EQUAL(st.calls, accepted);
		CU_ASSERT_EQUAL(st.calls_ok, ok);
		CU_ASSERT_EQUAL(st.calls_ok + st.calls_failed, done);
		CU_ASSERT_EQUAL(st.requests, sides[i]->requests_seen);
		CU_ASSERT_EQUAL(st.replies, sides[i]->replies_ok);
		CU_ASSERT_EQUAL(st.stale_replies, sides[i]->replies_stale);
	}
}

static int
is_hex_id(const char *id)
{
	if (strlen(id) != 16)
		return 0;
	for (int i = 0; i < 16; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

/* Makes n calls each way and checks each gets its own response once. */
static void
calls_both_ways(size_t n, size_t maxlen)
{
	size_t from = ntcalls;
	for (size_t i = 0; i < n; i++) {
		struct tcall *a = start_call(&A, rnd_range(0, maxlen), 0);
		struct tcall *b = start_call(&B, rnd_range(0, maxlen), 0);
		CU_ASSERT_EQUAL(a->rc, 0);
		CU_ASSERT_EQUAL(b->rc, 0);
	}
	/* Never from inside va_session_call. */
	for (size_t i = from; i < ntcalls; i++)
		CU_ASSERT_EQUAL(tcalls[i]->done, 0);
	run_until(quiet_and_done, 60000);
	CU_ASSERT_EQUAL(count_calls(NULL, 0, from), ntcalls - from);
	for (size_t i = from; i < ntcalls; i++)
		CU_ASSERT(tcalls[i]->match);
}

/* ---- tests ---- */

static void
test_strerror(void)
{
	for (int e = 0; e <= VA_SESSION_ERR_CLOSED + 1; e++) {
		const char *m = va_session_strerror(e);
		CU_ASSERT_PTR_NOT_NULL(m);
		CU_ASSERT(m && strlen(m) > 0);
	}
	CU_ASSERT(strcmp(va_session_strerror(VA_SESSION_ERR_TIMEOUT),
			 va_session_strerror(VA_SESSION_ERR_RESET)) != 0);
}

static void
test_handshake_by_a(void)
{
	setup();
	CU_ASSERT_STRING_EQUAL(va_session_id(A.s), "");
	CU_ASSERT_FALSE(va_session_is_ready(A.s));
	CU_ASSERT_EQUAL(va_session_peer_max_frame(A.s), 0);
	CU_ASSERT_EQUAL(va_session_max_frame(A.s), VA_FRAME_DEFAULT_MAX_BODY);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), UINT64_MAX);
	va_session_reset(A.s, now_ms);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), now_ms + 500);
	CU_ASSERT_EQUAL(A.resets_seen, 1);
	CU_ASSERT_EQUAL(A.resets_by_peer, 0);
	run_until(quiet, 1000);
	CU_ASSERT(is_hex_id(va_session_id(A.s)));
	CU_ASSERT_STRING_EQUAL(va_session_id(A.s), va_session_id(B.s));
	CU_ASSERT_EQUAL(va_session_peer_max_frame(A.s), VA_FRAME_DEFAULT_MAX_BODY);
	CU_ASSERT_EQUAL(va_session_peer_max_frame(B.s), VA_FRAME_DEFAULT_MAX_BODY);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), UINT64_MAX);
	CU_ASSERT_EQUAL(va_session_deadline(B.s), UINT64_MAX);
	CU_ASSERT_EQUAL(A.established_seen, 1);
	CU_ASSERT_EQUAL(B.established_seen, 1);
	CU_ASSERT_EQUAL(B.resets_by_peer, 1);
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sa.resets_sent, 1);
	CU_ASSERT_EQUAL(sa.resets_received, 0);
	CU_ASSERT_EQUAL(sb.resets_received, 1);
	CU_ASSERT_EQUAL(sb.resets_sent, 0);
	CU_ASSERT_EQUAL(sa.established, 1);
	CU_ASSERT_EQUAL(sb.established, 1);
	CU_ASSERT_EQUAL(sa.parser.frames, 1);
	CU_ASSERT_EQUAL(sb.parser.frames, 1);
	calls_both_ways(5, 300);
	check_counters();
	teardown();
}

static void
test_handshake_by_b(void)
{
	setup();
	/* A's call waits for the handshake, which B starts. */
	struct tcall *early = start_call(&A, 123, 0);
	CU_ASSERT_EQUAL(early->rc, 0);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0); /* not queued yet */
	CU_ASSERT_EQUAL(va_session_calls_in_flight(A.s), 1);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), now_ms + 3000);
	va_session_reset(B.s, now_ms);
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(early->done, 1);
	CU_ASSERT_EQUAL(early->err, 0);
	CU_ASSERT(early->match);
	CU_ASSERT_STRING_EQUAL(va_session_id(A.s), va_session_id(B.s));
	calls_both_ways(5, 300);
	check_counters();
	teardown();
}

static void
test_handshake_both(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	va_session_reset(B.s, now_ms);
	struct tcall *a = start_call(&A, 10, 0), *b = start_call(&B, 10, 0);
	run_until(quiet_and_done, 2000);
	CU_ASSERT(is_hex_id(va_session_id(A.s)));
	CU_ASSERT(is_hex_id(va_session_id(B.s)));
	CU_ASSERT_EQUAL(a->err, 0);
	CU_ASSERT_EQUAL(b->err, 0);
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sa.resets_sent, 1); /* no retry needed */
	CU_ASSERT_EQUAL(sb.resets_sent, 1);
	CU_ASSERT_EQUAL(sa.established, 1);
	CU_ASSERT_EQUAL(sb.established, 1);
	calls_both_ways(20, 2000);
	check_counters();
	teardown();
}

/* Both reset at once, with each side's RESET stuck in its output queue. */
static void
test_handshake_both_queued(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	va_session_reset(B.s, now_ms);
	/* Write only half of B's RESET; deliver all of A's. */
	struct iovec iov[4];
	size_t n = va_session_output_iov(B.s, iov, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	va_session_input(A.s, iov[0].iov_base, iov[0].iov_len / 2, now_ms);
	va_session_output_consume(B.s, iov[0].iov_len / 2);
	n = va_session_output_iov(A.s, iov, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	size_t alen = iov[0].iov_len;
	va_session_input(B.s, iov[0].iov_base, alen, now_ms);
	va_session_output_consume(A.s, alen);
	/* B got A's RESET while waiting: ACK queued, its own RESET again. */
	CU_ASSERT_FALSE(va_session_is_ready(B.s));
	run_until(quiet, 100); /* well before a retry (500 ms) */
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.resets_sent, 2); /* the re-queued one */
	CU_ASSERT_EQUAL(sa.parser.torn, 1); /* the half RESET */
	calls_both_ways(5, 100);
	check_counters();
	teardown();
}

static void
test_many_in_flight(void)
{
	setup();
	A.mode = B.mode = ECHO_LATER;
	A.delay_max = B.delay_max = 200;
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	size_t from = ntcalls;
	for (int i = 0; i < 50; i++) {
		CU_ASSERT_EQUAL(start_call(&A, rnd_range(0, 20000), 10000)->rc, 0);
		CU_ASSERT_EQUAL(start_call(&B, rnd_range(0, 20000), 10000)->rc, 0);
	}
	CU_ASSERT_EQUAL(va_session_calls_in_flight(A.s), 50);
	CU_ASSERT_EQUAL(va_session_calls_in_flight(B.s), 50);
	run_until(quiet_and_done, 5000);
	CU_ASSERT_EQUAL(count_calls(NULL, 0, from), 100);
	for (size_t i = from; i < ntcalls; i++)
		CU_ASSERT(tcalls[i]->match);
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sa.calls, 50);
	CU_ASSERT_EQUAL(sa.calls_ok, 50);
	CU_ASSERT_EQUAL(sa.requests, 50);
	CU_ASSERT_EQUAL(sa.replies, 50);
	CU_ASSERT_EQUAL(sb.calls_ok, 50);
	CU_ASSERT_EQUAL(sa.stale_responses + sa.unmatched_responses + sa.bad_frames, 0);
	CU_ASSERT_EQUAL(sb.stale_responses + sb.unmatched_responses + sb.bad_frames, 0);
	check_counters();
	teardown();
}

static void
reset_in_flight(struct side *resetter)
{
	setup();
	A.mode = B.mode = ECHO_LATER;
	A.delay_min = B.delay_min = 100;
	A.delay_max = B.delay_max = 400;
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	uint64_t ea = va_session_epoch(A.s), eb = va_session_epoch(B.s);
	size_t from = ntcalls;
	for (int i = 0; i < 20; i++) {
		start_call(&A, rnd_range(0, 3000), 0);
		start_call(&B, rnd_range(0, 3000), 0);
	}
	run_for(50); /* requests arrive; replies are not due yet */
	CU_ASSERT(A.replies != NULL && B.replies != NULL);
	CU_ASSERT_EQUAL(count_calls(NULL, 0, from), 0);
	uint64_t by_peer_r = resetter->resets_by_peer, by_peer_p = resetter->peer->resets_by_peer;
	va_session_reset(resetter->s, now_ms);
	/* The resetter's own calls fail at once, from inside reset. */
	CU_ASSERT_EQUAL(count_calls(resetter, VA_SESSION_ERR_RESET, from), 20);
	run_until(quiet_and_done, 5000);
	CU_ASSERT_EQUAL(count_calls(NULL, VA_SESSION_ERR_RESET, from), 40);
	CU_ASSERT(va_session_epoch(A.s) != ea);
	CU_ASSERT(va_session_epoch(B.s) != eb);
	/* Every late reply to an old request was refused as stale. */
	CU_ASSERT_EQUAL(A.replies_ok, 0);
	CU_ASSERT_EQUAL(B.replies_ok, 0);
	CU_ASSERT(A.replies_stale > 0);
	CU_ASSERT(B.replies_stale > 0);
	CU_ASSERT_EQUAL(A.replies_stale + B.replies_stale, A.requests_seen + B.requests_seen);
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sa.stale_replies, A.replies_stale);
	CU_ASSERT_EQUAL(sb.stale_replies, B.replies_stale);
	CU_ASSERT_EQUAL(resetter->resets_by_peer, by_peer_r);
	CU_ASSERT_EQUAL(resetter->peer->resets_by_peer, by_peer_p + 1);
	CU_ASSERT_STRING_EQUAL(va_session_id(A.s), va_session_id(B.s));

	/* Afterwards every new call gets its own response. */
	A.delay_min = B.delay_min = 0;
	calls_both_ways(30, 3000);
	check_counters();
	teardown();
}

static void
test_reset_by_a_in_flight(void)
{
	reset_in_flight(&A);
}

static void
test_reset_by_b_in_flight(void)
{
	reset_in_flight(&B);
}

/* A RESET cuts A's partly written request: B sees it torn, all recovers. */
static void
test_reset_tears_partial_frame(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	struct tcall *big = start_call(&A, 10000, 0);
	struct iovec iov[4];
	CU_ASSERT_EQUAL_FATAL(va_session_output_iov(A.s, iov, 4), 1);
	va_session_input(B.s, iov[0].iov_base, 5000, now_ms);
	va_session_output_consume(A.s, 5000);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), iov[0].iov_len - 5000);
	va_session_reset(A.s, now_ms);
	CU_ASSERT_EQUAL(big->err, VA_SESSION_ERR_RESET);
	run_until(quiet, 1000);
	struct va_session_stats sb;
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.parser.torn, 1);
	CU_ASSERT_EQUAL(sb.requests, 0);
	calls_both_ways(3, 100);
	check_counters();
	teardown();
}

/* Output iovecs and partial writes across frame boundaries. */
static void
test_output_queue(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	for (int i = 0; i < 5; i++)
		start_call(&A, 100 + (size_t)i, 0);
	size_t pending = va_session_output_pending(A.s);
	struct iovec iov[8];
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 8), 5);
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 2), 2);
	size_t total = 0;
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 8), 5);
	for (int i = 0; i < 5; i++) {
		total += iov[i].iov_len;
		CU_ASSERT_EQUAL(((uint8_t *)iov[i].iov_base)[0], 0xFF);
	}
	CU_ASSERT_EQUAL(total, pending);
	/* Write byte by byte across the first frame boundary and on. */
	size_t first = iov[0].iov_len;
	uint8_t *copy = malloc(pending);
	CU_ASSERT_FATAL(copy != NULL);
	size_t off = 0;
	for (int i = 0; i < 5; i++) {
		memcpy(copy + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	for (size_t k = 0; k < first + 3; k++) {
		struct iovec one;
		CU_ASSERT_EQUAL_FATAL(va_session_output_iov(A.s, &one, 1), 1);
		CU_ASSERT_EQUAL(*(uint8_t *)one.iov_base, copy[k]);
		va_session_output_consume(A.s, 1);
	}
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), pending - first - 3);
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 8), 4);
	CU_ASSERT(memcmp(iov[0].iov_base, copy + first + 3, iov[0].iov_len) == 0);
	va_session_input(B.s, copy, first + 3, now_ms);
	free(copy);
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(count_calls(&A, 0, 0), 5);
	check_counters();
	teardown();
}

static void
inject_frame(struct side *to, const char *start, const char *tag, const char *body,
	     size_t len)
{
	struct va_buf b;
	struct va_frame_header h[2] = {
		{ (char *)"Content-Type", (char *)"text/xml" },
		{ (char *)VA_TAG_HEADER, (char *)tag },
	};
	va_buf_init(&b);
	CU_ASSERT_FATAL(va_frame_write(&b, start, h, tag ? 2 : 1, body, len) == 0);
	va_session_input(to->s, b.data, b.len, now_ms);
	va_buf_free(&b);
}

static void
test_stale_and_unmatched(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	char old_id[17];
	snprintf(old_id, sizeof(old_id), "%s", va_session_id(A.s));
	va_session_reset(B.s, now_ms);
	run_until(quiet, 1000);
	CU_ASSERT(strcmp(old_id, va_session_id(A.s)) != 0);

	B.mode = SILENT;
	struct tcall *c = start_call(&A, 20, 0);
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(B.requests_seen, 1);
	const char *dot = strchr(B.last_tag, '.');
	CU_ASSERT_FATAL(dot != NULL);
	CU_ASSERT(strncmp(B.last_tag, va_session_id(A.s), 16) == 0);
	char tag[64];

	/* A response of the earlier session, with the seq of a waiting call. */
	snprintf(tag, sizeof(tag), "%s%s", old_id, dot);
	inject_frame(&A, "HTTP/1.1 200 OK", tag, "old", 3);
	/* A response for no call. */
	snprintf(tag, sizeof(tag), "%s.999999999999", va_session_id(A.s));
	inject_frame(&A, "HTTP/1.1 200 OK", tag, "nobody", 6);
	/* Responses without a (usable) tag. */
	inject_frame(&A, "HTTP/1.1 200 OK", NULL, "x", 1);
	inject_frame(&A, "HTTP/1.1 200 OK", "no-dot", "x", 1);
	snprintf(tag, sizeof(tag), "%s.12x", va_session_id(A.s));
	inject_frame(&A, "HTTP/1.1 200 OK", tag, "x", 1);
	/* An ACK for a nonce nobody sent. */
	inject_frame(&A, "HTTP/1.1 205 Reset Content", NULL, "", 0);

	struct va_session_stats sa;
	get_stats(&A, &sa);
	CU_ASSERT_EQUAL(sa.stale_responses, 1);
	CU_ASSERT_EQUAL(sa.unmatched_responses, 1);
	CU_ASSERT_EQUAL(sa.bad_frames, 3);
	CU_ASSERT_EQUAL(sa.ignored_frames, 1);
	CU_ASSERT_EQUAL(c->done, 0);

	/* The real tag answers it, once. */
	strict_bodies = 0;
	inject_frame(&A, "HTTP/1.1 200 OK", B.last_tag, "mine", 4);
	CU_ASSERT_EQUAL(c->done, 1);
	CU_ASSERT_EQUAL(c->err, 0);
	CU_ASSERT_FALSE(c->match);
	inject_frame(&A, "HTTP/1.1 200 OK", B.last_tag, "again", 5);
	get_stats(&A, &sa);
	CU_ASSERT_EQUAL(sa.unmatched_responses, 2);
	CU_ASSERT_EQUAL(c->done, 1);
	strict_bodies = 1;

	/* A refusal other than 413. */
	c = start_call(&A, 20, 0);
	run_until(quiet, 1000);
	inject_frame(&A, "HTTP/1.1 500 Internal Server Error", B.last_tag, "", 0);
	CU_ASSERT_EQUAL(c->err, VA_SESSION_ERR_REFUSED);

	/* Requests without a tag, or not POST, are dropped by B. */
	get_stats(&B, &sa);
	uint64_t bad = sa.bad_frames, req = sa.requests;
	inject_frame(&B, "POST /RPC2 HTTP/1.1", NULL, "x", 1);
	inject_frame(&B, "GET /RPC2 HTTP/1.1", "a.1", "x", 1);
	get_stats(&B, &sa);
	CU_ASSERT_EQUAL(sa.bad_frames, bad + 2);
	CU_ASSERT_EQUAL(sa.requests, req);
	/* Bad RESETs are dropped too. */
	inject_frame(&B, "RESET /RPC2 HTTP/1.1", NULL, "", 0);
	get_stats(&B, &sa);
	CU_ASSERT_EQUAL(sa.bad_frames, bad + 3);
	CU_ASSERT_EQUAL(sa.resets_received, 1);
	CU_ASSERT(va_session_is_ready(B.s));

	B.mode = ECHO_NOW;
	calls_both_ways(5, 100);
	check_counters();
	teardown();
}

static void
fault_phase(uint64_t seed)
{
	rng = seed;
	setup();
	A.mode = B.mode = ECHO_LATER;
	A.delay_max = B.delay_max = 60;
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);

	/* Fault phase: calls keep coming while bytes are damaged. */
	strict_bodies = 0;
	A.faults = B.faults = 1;
	for (int t = 0; t < 4000; t++) {
		if (chance(5)) {
			size_t len = rnd_range(0, 2000);
			start_call(&A, len, (unsigned)rnd_range(200, 1500));
		}
		if (chance(5)) {
			size_t len = rnd_range(0, 2000);
			start_call(&B, len, (unsigned)rnd_range(200, 1500));
		}
		if (t == 2000)
			va_session_reset(B.s, now_ms);
		step();
	}
	A.faults = B.faults = 0;
	size_t fault_calls = ntcalls;
	CU_ASSERT(fault_calls > 300);
	/* Every fault-phase call ends (answered, timed out, reset, not ready). */
	run_until(quiet_and_done, 20000);
	CU_ASSERT(all_done(0));

	/* A reset, then a clean phase. */
	va_session_reset(A.s, now_ms);
	run_until(quiet_and_done, 10000);
	strict_bodies = 1;
	calls_both_ways(50, 3000);
	for (size_t i = fault_calls; i < ntcalls; i++) {
		CU_ASSERT_EQUAL(tcalls[i]->done, 1);
		CU_ASSERT_EQUAL(tcalls[i]->err, 0);
		CU_ASSERT(tcalls[i]->match);
	}
	CU_ASSERT_EQUAL(double_callbacks, 0);
	check_counters();
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	/* The faults did something. */
	CU_ASSERT(sa.parser.torn + sb.parser.torn + sa.parser.skipped + sb.parser.skipped > 0);
	CU_ASSERT(sa.calls_failed + sb.calls_failed > 0);
	if (getenv("TEST_SESSION_VERBOSE"))
		printf("\nseed %" PRIu64 ": calls %" PRIu64 "+%" PRIu64 " ok %" PRIu64
		       "+%" PRIu64 " resets %" PRIu64 "+%" PRIu64 " stale %" PRIu64
		       " unmatched %" PRIu64 " torn %" PRIu64 " mismatches %" PRIu64 "\n",
		       seed, sa.calls, sb.calls, sa.calls_ok, sb.calls_ok, sa.resets_sent,
		       sb.resets_sent, sa.stale_responses + sb.stale_responses,
		       sa.unmatched_responses + sb.unmatched_responses,
		       sa.parser.torn + sb.parser.torn, mismatches);
	teardown();
}

static void
test_fault_phase(void)
{
	/* TEST_SESSION_SEEDS=N runs N seeds instead of 8 (a longer soak). */
	const char *env = getenv("TEST_SESSION_SEEDS");
	uint64_t n = env ? strtoull(env, NULL, 10) : 8;
	for (uint64_t seed = 1; seed <= n; seed++)
		fault_phase(seed * 0x9E3779B97F4A7C15ull);
}

static void
test_call_timeout(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	B.mode = SILENT;
	uint64_t t0 = now_ms;
	struct tcall *c1 = start_call(&A, 10, 1000);
	struct tcall *c2 = start_call(&A, 10, 5000);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), t0 + 1000);
	run_for(999);
	CU_ASSERT_EQUAL(c1->done, 0);
	step();
	step();
	CU_ASSERT_EQUAL(c1->err, VA_SESSION_ERR_TIMEOUT);
	CU_ASSERT_EQUAL(c1->done_at, t0 + 1000);
	CU_ASSERT_EQUAL(c2->err, VA_SESSION_ERR_RESET);
	struct va_session_stats sa;
	get_stats(&A, &sa);
	CU_ASSERT_EQUAL(sa.resets_sent, 2);
	CU_ASSERT_EQUAL(sa.calls_failed, 2);
	run_until(quiet, 1000);
	B.mode = ECHO_NOW;
	calls_both_ways(5, 100);
	check_counters();
	teardown();
}

static void
test_handshake_unanswered(void)
{
	setup();
	uint64_t t0 = now_ms;
	va_session_reset(A.s, now_ms);
	struct tcall *c1 = start_call(&A, 10, 0);    /* no timeout of its own */
	struct tcall *c2 = start_call(&A, 10, 1000); /* shorter than ready */
	struct tcall *c3 = start_call(&A, 10, 5000); /* longer than ready */
	struct tcall *c4 = start_call(&A, 10, 3000); /* a tie: NOT_READY */
	CU_ASSERT_EQUAL(va_session_deadline(A.s), t0 + 500);
	uint64_t last_sent = 0;
	uint64_t sent_at[16];
	size_t nsent = 0;
	while (now_ms < t0 + 20000) {
		/* Nobody listens: A's output goes nowhere. */
		va_session_output_consume(A.s, va_session_output_pending(A.s));
		uint64_t dl = va_session_deadline(A.s);
		CU_ASSERT(dl >= now_ms);
		va_session_tick(A.s, now_ms);
		struct va_session_stats sa;
		get_stats(&A, &sa);
		if (sa.resets_sent != last_sent) {
			if (nsent < 16)
				sent_at[nsent++] = now_ms - t0;
			last_sent = sa.resets_sent;
		}
		now_ms++;
	}
	/* 0 (from reset), then +500, +1000, +2000 and +2000 (the maximum). */
	static const uint64_t want[] = { 0, 500, 1500, 3500, 5500, 7500, 9500, 11500,
					 13500, 15500, 17500, 19500 };
	CU_ASSERT_EQUAL(nsent, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < nsent && i < sizeof(want) / sizeof(want[0]); i++)
		CU_ASSERT_EQUAL(sent_at[i], want[i]);
	struct va_session_stats sa;
	get_stats(&A, &sa);
	CU_ASSERT_EQUAL(sa.resets_sent, 12);
	CU_ASSERT_EQUAL(A.resets_seen, 12);
	CU_ASSERT_EQUAL(c2->err, VA_SESSION_ERR_TIMEOUT);
	CU_ASSERT_EQUAL(c2->done_at, t0 + 1000);
	CU_ASSERT_EQUAL(c1->err, VA_SESSION_ERR_NOT_READY);
	CU_ASSERT_EQUAL(c1->done_at, t0 + 3000);
	CU_ASSERT_EQUAL(c3->err, VA_SESSION_ERR_NOT_READY);
	CU_ASSERT_EQUAL(c3->done_at, t0 + 3000);
	CU_ASSERT_EQUAL(c4->err, VA_SESSION_ERR_NOT_READY);
	CU_ASSERT_FALSE(va_session_is_ready(A.s));
	/* A peer appears at last: the next RESET gets through. */
	run_until(quiet, 3000);
	calls_both_ways(3, 100);
	check_counters();
	teardown();
}

static void
test_too_large(void)
{
	struct va_session_config ca = default_cfg("A"), cb = default_cfg("B");
	ca.max_frame = 4096;
	cb.max_frame = 1024;
	setup_cfg(&ca, &cb);

	/* Before the handshake only our own maximum is known. */
	CU_ASSERT_EQUAL(start_call(&A, 4097, 0)->rc, -E2BIG);
	struct tcall *early = start_call(&A, 2000, 0);
	CU_ASSERT_EQUAL(early->rc, 0);
	struct tcall *fits = start_call(&A, 1024, 0);
	va_session_reset(A.s, now_ms);
	run_until(quiet_and_done, 1000);
	/* The peer's 1024 was announced: the waiting 2000-byte call cannot go. */
	CU_ASSERT_EQUAL(early->err, VA_SESSION_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(fits->err, 0);
	CU_ASSERT_EQUAL(va_session_peer_max_frame(A.s), 1024);
	CU_ASSERT_EQUAL(va_session_peer_max_frame(B.s), 4096);
	CU_ASSERT_EQUAL(va_session_max_frame(B.s), 1024);
	CU_ASSERT_EQUAL(B.requests_seen, 1); /* never sent: no 413 round trip */
	struct va_session_stats sb0;
	get_stats(&B, &sb0);
	CU_ASSERT_EQUAL(sb0.bad_frames, 0);
	CU_ASSERT_EQUAL(sb0.parser.errors, 0);

	CU_ASSERT_EQUAL(start_call(&A, 5000, 0)->rc, -E2BIG); /* over our own */
	CU_ASSERT_EQUAL(start_call(&A, 1025, 0)->rc, -E2BIG); /* over the peer's */
	CU_ASSERT_EQUAL(start_call(&B, 1025, 0)->rc, -E2BIG); /* over B's own */
	CU_ASSERT_EQUAL(start_call(&A, 1024, 0)->rc, 0);      /* exactly at it */
	/* 0xFF in a body. */
	uint8_t ff[4] = { 'a', 0xFF, 'b', 'c' };
	CU_ASSERT_EQUAL(va_session_call(A.s, ff, 4, 0, now_ms, on_done, NULL), -EINVAL);
	run_until(quiet_and_done, 1000);

	/* A reply over the peer's maximum, and a reply with 0xFF or a bad tag. */
	uint64_t ep = va_session_epoch(B.s);
	static char big[5000];
	memset(big, 'x', sizeof(big));
	CU_ASSERT_EQUAL(va_session_reply(B.s, ep, "x.1", big, 4097), -E2BIG);
	CU_ASSERT_EQUAL(va_session_reply(B.s, ep, "x.1", ff, 4), -EINVAL);
	CU_ASSERT_EQUAL(va_session_reply(B.s, ep, "bad tag", "x", 1), -EINVAL);
	CU_ASSERT_EQUAL(va_session_reply(B.s, ep, "", "x", 1), -EINVAL);
	CU_ASSERT_EQUAL(va_session_output_pending(B.s), 0);

	/* A body over B's maximum forced onto the wire: 413, TOO_LARGE. */
	B.mode = SILENT;
	struct tcall *victim = start_call(&A, 10, 0);
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(victim->done, 0);
	struct va_session_stats sb;
	get_stats(&B, &sb);
	uint64_t bad = sb.bad_frames;
	inject_frame(&B, "POST /RPC2 HTTP/1.1", B.last_tag, big, 2000);
	CU_ASSERT(va_session_output_pending(B.s) > 0);
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(victim->done, 1);
	CU_ASSERT_EQUAL(victim->err, VA_SESSION_ERR_TOO_LARGE);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.bad_frames, bad + 1);
	/* Without a tag there is nobody to tell. */
	inject_frame(&B, "POST /RPC2 HTTP/1.1", NULL, big, 2000);
	CU_ASSERT_EQUAL(va_session_output_pending(B.s), 0);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.bad_frames, bad + 2);

	/* A response too large for A fails its call at once. */
	A.mode = SILENT;
	struct tcall *bc = start_call(&B, 10, 0);
	run_until(quiet, 1000);
	inject_frame(&B, "HTTP/1.1 200 OK", A.last_tag, big, 2000);
	CU_ASSERT_EQUAL(bc->err, VA_SESSION_ERR_TOO_LARGE);

	A.mode = B.mode = ECHO_NOW;
	calls_both_ways(5, 1000);
	check_counters();
	teardown();
}

static void
test_peer_down_up(void)
{
	setup();
	A.mode = B.mode = ECHO_LATER;
	A.delay_min = B.delay_min = B.delay_max = A.delay_max = 300;
	va_session_peer_up(A.s, now_ms);
	va_session_peer_up(B.s, now_ms);
	run_until(quiet, 1000);
	size_t from = ntcalls;
	for (int i = 0; i < 5; i++) {
		start_call(&A, 5000, 0);
		start_call(&B, 5000, 0);
	}
	run_for(3); /* some bytes out, some still queued */
	uint64_t ea = va_session_epoch(A.s);
	size_t resets = A.resets_seen;
	va_session_peer_down(A.s, now_ms);
	CU_ASSERT_EQUAL(count_calls(&A, VA_SESSION_ERR_PEER_GONE, from), 5);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0);
	CU_ASSERT_FALSE(va_session_is_ready(A.s));
	CU_ASSERT_EQUAL(va_session_peer_max_frame(A.s), 0);
	CU_ASSERT(va_session_epoch(A.s) != ea);
	CU_ASSERT_EQUAL(A.resets_seen, resets + 1);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), UINT64_MAX);
	/* A call now waits for a peer_up and the handshake. */
	struct tcall *waiting = start_call(&A, 10, 0);
	CU_ASSERT_EQUAL(waiting->rc, 0);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0);
	va_session_peer_down(B.s, now_ms);
	CU_ASSERT_EQUAL(count_calls(&B, VA_SESSION_ERR_PEER_GONE, from), 5);
	/* Down for a while: no RESET goes out; old bytes stay on the wires. */
	for (int i = 0; i < 1000; i++) {
		va_session_tick(A.s, now_ms);
		va_session_tick(B.s, now_ms);
		CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0);
		CU_ASSERT_EQUAL(va_session_output_pending(B.s), 0);
		now_ms++;
	}
	CU_ASSERT_EQUAL(waiting->done, 0);
	va_session_peer_up(A.s, now_ms);
	va_session_peer_up(B.s, now_ms);
	run_until(quiet_and_done, 5000);
	CU_ASSERT_EQUAL(waiting->err, 0);
	CU_ASSERT(waiting->match);
	CU_ASSERT_EQUAL(A.replies_ok + B.replies_ok, 1);

	/* Down with no peer_up: the call ends NOT_READY after ready_timeout_ms. */
	va_session_peer_down(A.s, now_ms);
	uint64_t t0 = now_ms;
	struct tcall *lost = start_call(&A, 10, 0);
	CU_ASSERT_EQUAL(va_session_deadline(A.s), t0 + 3000);
	while (!lost->done && now_ms < t0 + 5000) {
		va_session_tick(A.s, now_ms);
		now_ms++;
	}
	CU_ASSERT_EQUAL(lost->err, VA_SESSION_ERR_NOT_READY);
	CU_ASSERT_EQUAL(lost->done_at, t0 + 3000);
	va_session_peer_up(A.s, now_ms);
	A.mode = B.mode = ECHO_NOW;
	run_until(quiet, 3000);
	calls_both_ways(5, 100);
	check_counters();
	teardown();
}

/* Requests and responses are ignored before the handshake and while
 * waiting for an ACK; peer_down discards partial input. */
static void
test_not_ready_ignores(void)
{
	setup();
	struct va_session_stats sa;
	/* INITIAL: a request is ignored. */
	inject_frame(&A, "POST /RPC2 HTTP/1.1", "0123456789abcdef.1", "x", 1);
	inject_frame(&A, "HTTP/1.1 200 OK", "0123456789abcdef.1", "x", 1);
	get_stats(&A, &sa);
	CU_ASSERT_EQUAL(A.requests_seen, 0);
	CU_ASSERT_EQUAL(sa.ignored_frames, 2);
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	/* WAIT_ACK: requests from the old session are ignored. */
	B.mode = SILENT;
	struct tcall *c = start_call(&A, 10, 0);
	run_until(quiet, 1000);
	va_session_reset(A.s, now_ms);
	CU_ASSERT_EQUAL(c->err, VA_SESSION_ERR_RESET);
	inject_frame(&A, "POST /RPC2 HTTP/1.1", B.last_tag, "x", 1);
	inject_frame(&A, "HTTP/1.1 200 OK", B.last_tag, "x", 1);
	inject_frame(&A, "HTTP/1.1 205 Reset Content", NULL, "", 0);
	get_stats(&A, &sa);
	CU_ASSERT_EQUAL(A.requests_seen, 0);
	CU_ASSERT_EQUAL(sa.ignored_frames, 5);
	CU_ASSERT_EQUAL(sa.unmatched_responses + sa.stale_responses, 0);
	B.mode = ECHO_NOW;
	run_until(quiet, 1000);

	/* Half a request head, the peer goes, a new one sends the rest
	 * (no 0xFF): the halves must not join into a frame. */
	struct va_buf b;
	struct va_frame_header h[1] = { { (char *)VA_TAG_HEADER, (char *)"x.1" } };
	va_buf_init(&b);
	CU_ASSERT_FATAL(va_frame_write(&b, "POST /RPC2 HTTP/1.1", h, 1, "hello", 5) == 0);
	struct va_session_stats sb0, sb1;
	get_stats(&B, &sb0);
	va_session_input(B.s, b.data, 20, now_ms);
	va_session_peer_down(B.s, now_ms);
	va_session_input(B.s, b.data + 20, b.len - 20, now_ms);
	va_buf_free(&b);
	get_stats(&B, &sb1);
	CU_ASSERT_EQUAL(sb1.parser.frames, sb0.parser.frames);
	CU_ASSERT_EQUAL(sb1.parser.torn, sb0.parser.torn);
	CU_ASSERT_EQUAL(sb1.parser.errors, sb0.parser.errors);
	CU_ASSERT_EQUAL(sb1.ignored_frames, sb0.ignored_frames);
	va_session_peer_up(B.s, now_ms);
	run_until(quiet, 1000);
	calls_both_ways(3, 100);
	check_counters();
	teardown();
}

/* A channel that echoes (a tty not in raw mode): our own RESET comes back. */
static void
test_echoing_channel(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	struct iovec iov[2];
	CU_ASSERT_EQUAL_FATAL(va_session_output_iov(A.s, iov, 2), 1);
	size_t n = iov[0].iov_len;
	va_session_input(A.s, iov[0].iov_base, n, now_ms);
	va_session_output_consume(A.s, n);
	struct va_session_stats sa;
	get_stats(&A, &sa);
	CU_ASSERT_FALSE(va_session_is_ready(A.s));
	CU_ASSERT_EQUAL(sa.resets_received, 0);
	CU_ASSERT_EQUAL(sa.ignored_frames, 1);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0); /* no ACK to itself */
	teardown();
}

/* Callbacks that call back into the session. */
static void
test_reentrant(void)
{
	setup();
	A.call_in_established = 1;
	va_session_reset(B.s, now_ms);
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(count_calls(&A, 0, 0), 1); /* made from established */

	/* A response callback that makes more calls. */
	struct tcall *c = start_call(&A, 10, 0);
	c->chain = 3;
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(count_calls(&A, 0, 0), 5);

	/* A failure callback that calls again (in the new session). */
	B.mode = SILENT;
	size_t from = ntcalls;
	for (int i = 0; i < 4; i++)
		start_call(&A, 30, 0)->reissue = 1;
	run_until(quiet, 1000);
	B.mode = ECHO_NOW;
	va_session_reset(B.s, now_ms);
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(count_calls(&A, VA_SESSION_ERR_RESET, from), 4);
	CU_ASSERT_EQUAL(count_calls(&A, 0, from), 4);
	check_counters();
	teardown();
}

static int free_cb_rc;

static void
on_done_call_again(void *opaque, int err, struct va_frame *resp)
{
	struct side *sd = opaque;
	(void)resp;
	CU_ASSERT_EQUAL(err, VA_SESSION_ERR_CLOSED);
	free_cb_rc = va_session_call(sd->s, "x", 1, 0, now_ms, on_done_call_again, sd);
}

static void
test_free_closes(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	B.mode = SILENT;
	struct tcall *in_flight = start_call(&A, 10, 0);
	run_until(quiet, 1000);
	va_session_peer_down(B.s, now_ms);
	struct tcall *waiting = start_call(&B, 10, 0);
	CU_ASSERT_EQUAL(va_session_call(B.s, "y", 1, 0, now_ms, on_done_call_again, &B), 0);
	va_session_free(A.s);
	A.s = NULL;
	CU_ASSERT_EQUAL(in_flight->err, VA_SESSION_ERR_CLOSED);
	va_session_free(B.s);
	B.s = NULL;
	CU_ASSERT_EQUAL(waiting->err, VA_SESSION_ERR_CLOSED);
	CU_ASSERT(free_cb_rc < 0);
	teardown();
}


/* ---- protocol 2: negotiation, binary bodies, parameters, flow control ---- */

/* All of sd's pending output, copied (not consumed). */
static struct va_buf
peek_output(struct side *sd)
{
	static struct iovec iov[4096];
	struct va_buf b;
	size_t n = va_session_output_iov(sd->s, iov, 4096);

	va_buf_init(&b);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_FATAL(va_buf_append(&b, iov[i].iov_base, iov[i].iov_len) == 0);
	CU_ASSERT_EQUAL(b.len, va_session_output_pending(sd->s));
	return b;
}

/* Moves all of from's pending output to its peer, at once. */
static void
flush_to_peer(struct side *from)
{
	struct va_buf b = peek_output(from);
	va_session_output_consume(from->s, b.len);
	va_session_input(from->peer->s, b.data, b.len, now_ms);
	va_buf_free(&b);
}

static int
contains(const struct va_buf *b, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; k <= b->len && i <= b->len - k; i++)
		if (memcmp(b->data + i, needle, k) == 0)
			return 1;
	return 0;
}

/* n binary calls each way, random bodies up to maxlen, half handed over. */
static void
binary_calls_both_ways(size_t n, size_t maxlen)
{
	size_t from = ntcalls;
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(start_binary_call(&A, rnd_range(0, maxlen), 0, (int)(i & 1))->rc, 0);
		CU_ASSERT_EQUAL(start_binary_call(&B, rnd_range(0, maxlen), 0, !(i & 1))->rc, 0);
	}
	run_until(quiet_and_done, 60000);
	CU_ASSERT_EQUAL(count_calls(NULL, 0, from), ntcalls - from);
	for (size_t i = from; i < ntcalls; i++)
		CU_ASSERT(tcalls[i]->match);
}

static uint64_t untracked_done;

/* For calls nobody follows (the tests look at the peer's side). */
static void
on_untracked(void *opaque, int err, struct va_frame *resp)
{
	(void)opaque;
	(void)err;
	untracked_done++;
	va_frame_free(resp);
}

static int
call_msg_rc(struct side *sd, const struct va_msg *m)
{
	return va_session_call_msg(sd->s, m, 0, now_ms, on_untracked, NULL);
}

/* Keeps the last frame a parser delivers. */
static void
on_keep(void *o, struct va_frame *f)
{
	struct va_frame **slot = o;
	va_frame_free(*slot);
	*slot = f;
}

static void
test_protocol_negotiated(void)
{
	setup();
	CU_ASSERT_EQUAL(va_session_peer_protocol(A.s), 0);
	CU_ASSERT_EQUAL(va_session_protocol(A.s), 0);
	va_session_reset(A.s, now_ms);
	struct va_buf reset = peek_output(&A);
	CU_ASSERT(contains(&reset, "\r\nX-Virtagent-Protocol: 2\r\n"));
	va_buf_free(&reset);
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(va_session_peer_protocol(A.s), 2);
	CU_ASSERT_EQUAL(va_session_peer_protocol(B.s), 2);
	CU_ASSERT_EQUAL(va_session_protocol(A.s), 2);
	CU_ASSERT_EQUAL(va_session_protocol(B.s), 2);
	binary_calls_both_ways(10, 3000);
	calls_both_ways(5, 300);
	/* A new peer is not known to speak anything until it says so. */
	va_session_peer_down(A.s, now_ms);
	CU_ASSERT_EQUAL(va_session_peer_protocol(A.s), 0);
	va_session_peer_up(B.s, now_ms);
	CU_ASSERT_EQUAL(va_session_peer_protocol(B.s), 0);
	va_session_peer_up(A.s, now_ms);
	run_until(quiet, 2000);
	CU_ASSERT_EQUAL(va_session_protocol(A.s), 2);
	CU_ASSERT_EQUAL(va_session_protocol(B.s), 2);
	check_counters();
	teardown();
}

/*
 * A protocol-1 side (configured as the builds before binary bodies)
 * against a protocol-2 side, the handshake started by either.
 */
static void
protocol_mixed(int a_is_old, int old_starts)
{
	struct va_session_config ca = default_cfg("A"), cb = default_cfg("B");
	if (a_is_old)
		ca.protocol = 1;
	else
		cb.protocol = 1;
	setup_cfg(&ca, &cb);
	struct side *old = a_is_old ? &A : &B, *young = old->peer;

	/* The new side's binary call made before the handshake waits... */
	struct tcall *early = start_binary_call(young, 100, 0, 1);
	CU_ASSERT_EQUAL(early->rc, 0);
	/* ...the old side refuses one at once: it speaks 1 itself. */
	CU_ASSERT_EQUAL(start_binary_call(old, 10, 0, 0)->rc, -EPROTO);
	CU_ASSERT_EQUAL(start_binary_call(old, 10, 0, 1)->rc, -EPROTO);

	va_session_reset((old_starts ? old : young)->s, now_ms);
	struct va_buf first = peek_output(old_starts ? old : young);
	/* The old side's RESET is a protocol-1 RESET, byte for byte. */
	CU_ASSERT_EQUAL(contains(&first, VA_PROTOCOL_HEADER), !old_starts);
	va_buf_free(&first);
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(va_session_peer_protocol(old->s), 2);
	CU_ASSERT_EQUAL(va_session_peer_protocol(young->s), 1);
	CU_ASSERT_EQUAL(va_session_protocol(old->s), 1);
	CU_ASSERT_EQUAL(va_session_protocol(young->s), 1);
	/* ...and fails once the peer turned out to speak 1. */
	CU_ASSERT_EQUAL(early->done, 1);
	CU_ASSERT_EQUAL(early->err, VA_SESSION_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(old->requests_seen, 0);

	/* XML-RPC works both ways as before. */
	calls_both_ways(20, 2000);
	/* Binary calls and parameters: refused before anything is sent. */
	CU_ASSERT_EQUAL(start_binary_call(young, 10, 0, 0)->rc, -EPROTO);
	CU_ASSERT_EQUAL(start_binary_call(young, 10, 0, 1)->rc, -EPROTO);
	struct va_param prm[1] = { { "op", "read" } };
	struct va_msg xml_with_params = { NULL, prm, 1, "<x/>", 4, 0 };
	CU_ASSERT_EQUAL(call_msg_rc(young, &xml_with_params), -EPROTO);
	CU_ASSERT_EQUAL(va_session_output_pending(young->s), 0);
	/* So are binary replies to the old side's requests. */
	old->mode = young->mode = SILENT;
	struct tcall *c = start_call(old, 10, 0);
	run_until(quiet, 1000);
	struct va_msg bin = { VA_CONTENT_BINARY, NULL, 0, "\xff", 1, 0 };
	CU_ASSERT_EQUAL(va_session_reply_msg(young->s, va_session_epoch(young->s),
					     young->last_tag, &bin), -EPROTO);
	CU_ASSERT_EQUAL(va_session_reply(young->s, va_session_epoch(young->s), young->last_tag,
					 "ok", 2), 0);
	young->replies_ok++; /* for check_counters */
	strict_bodies = 0;
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(c->err, 0);
	strict_bodies = 1;
	old->mode = young->mode = ECHO_NOW;
	calls_both_ways(5, 100);
	struct va_session_stats so, sy;
	get_stats(old, &so);
	get_stats(young, &sy);
	CU_ASSERT_EQUAL(so.binary_calls + sy.binary_calls, 1); /* the early one */
	CU_ASSERT_EQUAL(so.binary_requests + sy.binary_requests, 0);
	check_counters();
	teardown();
}

static void
test_protocol_old_a_starts(void)
{
	protocol_mixed(1, 1);
}

static void
test_protocol_old_a_waits(void)
{
	protocol_mixed(1, 0);
}

static void
test_protocol_old_b_starts(void)
{
	protocol_mixed(0, 1);
}

static void
test_protocol_old_b_waits(void)
{
	protocol_mixed(0, 0);
}

/*
 * Raw bytes: the RESET of a protocol-2 peer reaches a protocol-1 session,
 * which answers with the ACK of protocol 1, byte for byte; and what a
 * protocol-2 session makes of X-Virtagent-Protocol values.
 */
static void
test_protocol_raw(void)
{
	struct va_session_config ca = default_cfg("A"), cb = default_cfg("B");
	ca.protocol = 1;
	setup_cfg(&ca, &cb);
	static const char reset2[] =
		"\xffRESET /RPC2 HTTP/1.1\r\n"
		"X-Virtagent-Nonce: 3f2a9c0d5e7b1146\r\n"
		"X-Virtagent-Max-Frame: 16777216\r\n"
		"X-Virtagent-Protocol: 2\r\n"
		"Content-Length: 0\r\n"
		"\r\n";
	static const char ack1[] =
		"\xffHTTP/1.1 205 Reset Content\r\n"
		"X-Virtagent-Nonce: 3f2a9c0d5e7b1146\r\n"
		"X-Virtagent-Max-Frame: 16777216\r\n"
		"Content-Length: 0\r\n"
		"\r\n";
	va_session_input(A.s, reset2, sizeof(reset2) - 1, now_ms);
	struct va_buf out = peek_output(&A);
	CU_ASSERT_EQUAL_FATAL(out.len, sizeof(ack1) - 1);
	CU_ASSERT(memcmp(out.data, ack1, out.len) == 0);
	va_buf_free(&out);
	CU_ASSERT(va_session_is_ready(A.s));
	CU_ASSERT_STRING_EQUAL(va_session_id(A.s), "3f2a9c0d5e7b1146");
	CU_ASSERT_EQUAL(va_session_peer_protocol(A.s), 2);
	CU_ASSERT_EQUAL(va_session_protocol(A.s), 1);

	/* Protocol 2 answers the old RESET (no header) with its own ACK. */
	static const char reset1[] =
		"\xffRESET /RPC2 HTTP/1.1\r\n"
		"X-Virtagent-Nonce: 0123456789abcdef\r\n"
		"X-Virtagent-Max-Frame: 4096\r\n"
		"Content-Length: 0\r\n"
		"\r\n";
	static const char ack2[] =
		"\xffHTTP/1.1 205 Reset Content\r\n"
		"X-Virtagent-Nonce: 0123456789abcdef\r\n"
		"X-Virtagent-Max-Frame: 16777216\r\n"
		"X-Virtagent-Protocol: 2\r\n"
		"Content-Length: 0\r\n"
		"\r\n";
	va_session_input(B.s, reset1, sizeof(reset1) - 1, now_ms);
	out = peek_output(&B);
	CU_ASSERT_EQUAL_FATAL(out.len, sizeof(ack2) - 1);
	CU_ASSERT(memcmp(out.data, ack2, out.len) == 0);
	va_session_output_consume(B.s, out.len);
	va_buf_free(&out);
	CU_ASSERT_EQUAL(va_session_peer_protocol(B.s), 1);
	CU_ASSERT_EQUAL(va_session_peer_max_frame(B.s), 4096);

	/* Values: anything but strict decimal counts as 1; more than we
	 * speak is fine (the session speaks the lower). */
	static const struct {
		const char *value;
		unsigned peer, proto;
	} vals[] = {
		{ "2", 2, 2 }, { "1", 1, 1 }, { "3", 3, 2 }, { "999999", 1000, 2 },
		{ "0", 1, 1 }, { "abc", 1, 1 }, { "2x", 1, 1 }, { "-2", 1, 1 }, { "", 1, 1 },
		{ "002", 2, 2 },
	};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char frame[256];
		int n = snprintf(frame, sizeof(frame),
				 "\xffRESET /RPC2 HTTP/1.1\r\nX-Virtagent-Nonce: %016zx\r\n"
				 "X-Virtagent-Max-Frame: 4096\r\nX-Virtagent-Protocol: %s\r\n"
				 "Content-Length: 0\r\n\r\n", i + 1, vals[i].value);
		va_session_input(B.s, frame, (size_t)n, now_ms);
		va_session_output_consume(B.s, va_session_output_pending(B.s));
		CU_ASSERT_EQUAL(va_session_peer_protocol(B.s), vals[i].peer);
		CU_ASSERT_EQUAL(va_session_protocol(B.s), vals[i].proto);
	}
	/* A protocol over ours cannot be configured. */
	struct va_session_config c3 = default_cfg("C");
	c3.protocol = VA_PROTOCOL_VERSION + 1;
	CU_ASSERT_PTR_NULL(va_session_new(&c3, &ops, NULL));
	teardown();
}

static void
test_binary_calls(void)
{
	setup();
	va_session_reset(B.s, now_ms);
	run_until(quiet, 1000);
	binary_calls_both_ways(40, 5000);
	A.mode = B.mode = ECHO_LATER;
	A.delay_max = B.delay_max = 50;
	binary_calls_both_ways(40, 70000);
	/* Empty, all 0xFF, all 0xFE, and mixed with XML calls. */
	size_t from = ntcalls;
	struct tcall *e = start_binary_call(&A, 0, 0, 1);
	struct tcall *x = start_call(&B, 100, 0);
	/* No body at all, as a read call has (NULL, 0), borrowed and taken. */
	struct va_msg none = { VA_CONTENT_BINARY, NULL, 0, NULL, 0, 0 };
	struct tcall *n0 = start_msg_call(&A, &none);
	none.take = 1;
	struct tcall *n1 = start_msg_call(&B, &none);
	run_until(quiet_and_done, 5000);
	CU_ASSERT_EQUAL(n0->err, 0);
	CU_ASSERT(n0->match);
	CU_ASSERT_EQUAL(n1->err, 0);
	CU_ASSERT(n1->match);
	CU_ASSERT_EQUAL(e->err, 0);
	CU_ASSERT(e->match);
	CU_ASSERT_EQUAL(x->err, 0);
	CU_ASSERT(x->match);
	for (int k = 0; k < 2; k++) {
		uint8_t *body = malloc(5000);
		CU_ASSERT_FATAL(body != NULL);
		memset(body, k ? 0xFE : 0xFF, 5000);
		struct va_msg m = { "image/png", NULL, 0, body, 5000, 1 };
		struct tcall *t = start_msg_call(&A, &m);
		CU_ASSERT_EQUAL(t->rc, 0);
		run_until(quiet_and_done, 5000);
		CU_ASSERT(t->match);
		CU_ASSERT_STRING_EQUAL(B.last_ct, "image/png");
	}
	CU_ASSERT_EQUAL(count_calls(NULL, 0, from), ntcalls - from);
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sa.binary_calls, 80 + 1 + 1 + 2);
	CU_ASSERT_EQUAL(sb.binary_requests, 80 + 1 + 1 + 2);
	CU_ASSERT_EQUAL(sb.binary_calls, 80 + 1);
	CU_ASSERT_EQUAL(sa.parser.torn + sa.parser.errors + sb.parser.torn + sb.parser.errors, 0);
	check_counters();
	teardown();
}

/* Binary calls while bytes are dropped, duplicated, cut and held back. */
static void
binary_fault_phase(uint64_t seed)
{
	rng = seed;
	setup();
	A.mode = B.mode = ECHO_LATER;
	A.delay_max = B.delay_max = 60;
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	strict_bodies = 0;
	A.faults = B.faults = 1;
	for (int t = 0; t < 3000; t++) {
		if (chance(5))
			start_binary_call(&A, rnd_range(0, 3000), (unsigned)rnd_range(200, 1500),
					  (int)(rnd() & 1));
		if (chance(5))
			start_binary_call(&B, rnd_range(0, 3000), (unsigned)rnd_range(200, 1500),
					  (int)(rnd() & 1));
		if (chance(2))
			start_call(&A, rnd_range(0, 500), (unsigned)rnd_range(200, 1500));
		step();
	}
	A.faults = B.faults = 0;
	size_t fault_calls = ntcalls;
	run_until(quiet_and_done, 20000);
	CU_ASSERT(all_done(0));
	/* Whatever got through intact was the caller's own body. */
	CU_ASSERT_EQUAL(mismatches, 0);
	va_session_reset(A.s, now_ms);
	run_until(quiet_and_done, 10000);
	strict_bodies = 1;
	binary_calls_both_ways(30, 4000);
	for (size_t i = fault_calls; i < ntcalls; i++)
		CU_ASSERT(tcalls[i]->match);
	struct va_session_stats sa, sb;
	get_stats(&A, &sa);
	get_stats(&B, &sb);
	CU_ASSERT(sa.parser.torn + sb.parser.torn > 0);
	CU_ASSERT(sa.calls_ok + sb.calls_ok > 100);
	check_counters();
	teardown();
}

static void
test_binary_fault_phase(void)
{
	const char *env = getenv("TEST_SESSION_SEEDS");
	uint64_t n = env ? strtoull(env, NULL, 10) : 4;
	for (uint64_t seed = 1; seed <= n; seed++)
		binary_fault_phase(seed * 0xD1B54A32D192ED03ull);
}

/* A binary request given to the peer cut in two at every point: one
 * request, the body intact; then torn at every point by a RESET. */
static void
test_binary_every_split(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	B.mode = SILENT;
	uint8_t body[64];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = i % 3 ? (uint8_t)(0xFD + i % 3) : (uint8_t)i;
	body[sizeof(body) - 1] = 0xFF;
	struct va_param prm[1] = { { "offset", "123456789012" } };
	struct va_msg m = { VA_CONTENT_BINARY, prm, 1, body, sizeof(body), 0 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &m), 0);
	struct va_buf frame = peek_output(&A);
	va_session_output_consume(A.s, frame.len);
	CU_ASSERT(memchr(frame.data + 1, 0xFF, frame.len - 1) == NULL);
	for (size_t cut = 0; cut <= frame.len; cut++) {
		uint64_t seen = B.requests_seen;
		va_session_input(B.s, frame.data, cut, now_ms);
		va_session_input(B.s, frame.data + cut, frame.len - cut, now_ms);
		CU_ASSERT_EQUAL(B.requests_seen, seen + 1);
		CU_ASSERT_EQUAL(B.last_len, sizeof(body));
		CU_ASSERT(B.last_body && memcmp(B.last_body, body, sizeof(body)) == 0);
		CU_ASSERT(B.last_binary);
		CU_ASSERT_EQUAL(B.last_offset, 123456789012ull);
	}
	struct va_session_stats sb;
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.parser.torn + sb.parser.errors + sb.parser.skipped, 0);
	/* Torn at every point by the next frame (another copy): the partial
	 * one is dropped, the whole one arrives. */
	for (size_t cut = 1; cut < frame.len; cut++) {
		uint64_t seen = B.requests_seen;
		va_session_input(B.s, frame.data, cut, now_ms);
		va_session_input(B.s, frame.data, frame.len, now_ms);
		CU_ASSERT_EQUAL(B.requests_seen, seen + 1);
		CU_ASSERT(B.last_body && memcmp(B.last_body, body, sizeof(body)) == 0);
	}
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.parser.torn, frame.len - 1);
	CU_ASSERT_EQUAL(sb.parser.errors, 0);
	va_buf_free(&frame);
	B.mode = ECHO_NOW;
	va_session_reset(A.s, now_ms); /* the silent call fails: no tcall */
	run_until(quiet, 1000);
	binary_calls_both_ways(3, 100);
	teardown();
}

static void
test_params(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	B.mode = SILENT;

	/* What may be sent. */
	static const char long_name[] = "abcdefghijklmnopqrstuvwxyz012345";   /* 32 */
	static const char too_long_name[] = "abcdefghijklmnopqrstuvwxyz0123456"; /* 33 */
	char long_value[VA_PARAM_VALUE_MAX + 2];
	memset(long_value, '%', sizeof(long_value));
	long_value[VA_PARAM_VALUE_MAX] = 0;
	struct va_param ok[VA_PARAMS_MAX] = {
		{ "op", "read" }, { "handle", "17" }, { "offset", "18446744073709551615" },
		{ "count", "0" }, { long_name, long_value }, { "empty", "" },
		{ "path", "/tmp/a%20b%0A" }, { "x-1", "!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~" },
	};
	struct va_msg m = { VA_CONTENT_BINARY, ok, VA_PARAMS_MAX, "x", 1, 0 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &m), 0);
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL_FATAL(B.requests_seen, 1);

	/* What may not: each would corrupt or smuggle a header. */
	static const struct va_param bad[] = {
		{ "op", "a\r\nContent-Length: 5" },
		{ "op", "a\nX: y" },
		{ "op", "a b" },
		{ "op", "a\tb" },
		{ "op", "\x7f" },
		{ "op", "caf\xc3\xa9" },
		{ "op", "\xff" },
		{ "op", NULL },
		{ NULL, "v" },
		{ "", "v" },
		{ "Op", "v" },
		{ "1op", "v" },
		{ "-op", "v" },
		{ "o p", "v" },
		{ "op:", "v" },
		{ "o_p", "v" },
		{ "op\r\nContent-Length", "5" },
		{ too_long_name, "v" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct va_msg b = { VA_CONTENT_BINARY, &bad[i], 1, "x", 1, 0 };
		CU_ASSERT_EQUAL(call_msg_rc(&A, &b), -EINVAL);
		/* Handed-over bodies are freed on refusal too (the sanitizers
		 * and valgrind would see a leak). */
		b.body = malloc(3);
		b.len = 3;
		b.take = 1;
		CU_ASSERT_EQUAL(call_msg_rc(&A, &b), -EINVAL);
	}
	long_value[VA_PARAM_VALUE_MAX] = '%'; /* 257 bytes */
	long_value[VA_PARAM_VALUE_MAX + 1] = 0;
	struct va_param lv[1] = { { "v", long_value } };
	struct va_msg b = { VA_CONTENT_BINARY, lv, 1, NULL, 0, 0 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &b), -EINVAL);
	struct va_param dup[2] = { { "op", "a" }, { "op", "b" } };
	b.params = dup;
	b.nparams = 2;
	CU_ASSERT_EQUAL(call_msg_rc(&A, &b), -EINVAL);
	struct va_param many[VA_PARAMS_MAX + 1];
	char names[VA_PARAMS_MAX + 1][8];
	for (size_t i = 0; i <= VA_PARAMS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "p%zu", i);
		many[i].name = names[i];
		many[i].value = "1";
	}
	b.params = many;
	b.nparams = VA_PARAMS_MAX + 1;
	CU_ASSERT_EQUAL(call_msg_rc(&A, &b), -EINVAL);
	b.nparams = 1;
	b.params = NULL;
	CU_ASSERT_EQUAL(call_msg_rc(&A, &b), -EINVAL);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0);

	/* Parameters on an XML call are fine between protocol-2 peers. */
	struct va_param one[1] = { { "count", "42" } };
	struct va_msg xm = { NULL, one, 1, "<x/>", 4, 0 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &xm), 0);
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(B.requests_seen, 2);
	CU_ASSERT_FALSE(B.last_binary);
	CU_ASSERT_STRING_EQUAL(B.last_ct, "text/xml");

	/* Reading them back, from frames a peer might send. */
	static const char raw[] =
		"\xffPOST /RPC2 HTTP/1.1\r\n"
		"X-Va-op: read\r\n"
		"x-va-COUNT: 4096\r\n"
		"X-Va-offset: 18446744073709551615\r\n"
		"X-Va-big: 18446744073709551616\r\n"
		"X-Va-neg: -1\r\n"
		"X-Va-hex: 0x10\r\n"
		"X-Va-twice: 1\r\n"
		"X-Va-twice: 2\r\n"
		"X-Va-space: a b\r\n"
		"X-Va-high: caf\xc3\xa9\r\n"
		"X-Va-empty:\r\n"
		"X-Vaop: no\r\n"
		"Content-Length: 0\r\n\r\n";
	struct va_frame *got = NULL;
	static const struct va_frame_parser_ops kops = { .frame = on_keep };
	va_frame_parser *fp = va_frame_parser_new(4096, &kops, &got);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	va_frame_parser_feed(fp, raw, sizeof(raw) - 1);
	va_frame_parser_free(fp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	uint64_t v = 7;
	CU_ASSERT_STRING_EQUAL(va_session_param(got, "op"), "read");
	CU_ASSERT_STRING_EQUAL(va_session_param(got, "OP"), "read");
	CU_ASSERT_EQUAL(va_session_param_u64(got, "count", &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "offset", &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);
	v = 7;
	CU_ASSERT_EQUAL(va_session_param_u64(got, "big", &v), -EINVAL);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "neg", &v), -EINVAL);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "hex", &v), -EINVAL);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "op", &v), -EINVAL);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "empty", &v), -EINVAL);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "twice", &v), -EINVAL);
	CU_ASSERT_EQUAL(va_session_param_u64(got, "missing", &v), -ENOENT);
	CU_ASSERT_EQUAL(v, 7);
	CU_ASSERT_PTR_NULL(va_session_param(got, "twice"));
	CU_ASSERT_PTR_NULL(va_session_param(got, "space"));
	CU_ASSERT_PTR_NULL(va_session_param(got, "high"));
	CU_ASSERT_STRING_EQUAL(va_session_param(got, "empty"), "");
	CU_ASSERT_PTR_NULL(va_session_param(got, "missing"));
	CU_ASSERT_PTR_NULL(va_session_param(got, "Vaop"));
	CU_ASSERT_PTR_NULL(va_session_param(got, ""));
	CU_ASSERT_PTR_NULL(va_session_param(got, NULL));
	CU_ASSERT_PTR_NULL(va_session_param(NULL, "op"));
	CU_ASSERT_STRING_EQUAL(va_session_content_type(got), "text/xml"); /* none given */
	CU_ASSERT_FALSE(va_session_is_binary(got));
	va_frame_free(got);
	B.mode = ECHO_NOW;
	teardown();
}

static void
test_content_types(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	B.mode = SILENT;
	static const char *const bad[] = {
		"", "application", "/x", "x/", "a/b/c", "a b/c", "text/xml; charset=utf-8",
		"a/b\r\nX: y", "\xff/x",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b", /* 65 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct va_msg m = { bad[i], NULL, 0, "x", 1, 0 };
		CU_ASSERT_EQUAL(call_msg_rc(&A, &m), -EINVAL);
	}
	static const struct {
		const char *ct;
		int binary;
	} good[] = {
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b", 1 }, /* 64 */
		{ "image/png", 1 }, { "application/octet-stream", 1 }, { "text/plain", 1 },
		{ "text/xml", 0 }, { "TEXT/XML", 0 }, { NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t seen = B.requests_seen;
		struct va_msg m = { good[i].ct, NULL, 0, "x", 1, 0 };
		CU_ASSERT_EQUAL(call_msg_rc(&A, &m), 0);
		run_until(quiet, 1000);
		CU_ASSERT_EQUAL(B.requests_seen, seen + 1);
		CU_ASSERT_EQUAL(B.last_binary, good[i].binary);
		CU_ASSERT_STRING_EQUAL(B.last_ct, good[i].binary ? good[i].ct : "text/xml");
	}
	/* An XML body is still refused with 0xFF; a binary one is not. */
	struct va_msg x = { "text/xml", NULL, 0, "a\xff", 2, 0 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &x), -EINVAL);
	x.content_type = "application/x-anything";
	CU_ASSERT_EQUAL(call_msg_rc(&A, &x), 0);
	B.mode = ECHO_NOW;
	teardown();
}

/* The limits apply to the stuffed length, at the caller and the replier. */
static void
test_binary_too_large(void)
{
	struct va_session_config ca = default_cfg("A"), cb = default_cfg("B");
	cb.max_frame = 1024;
	setup_cfg(&ca, &cb);
	uint8_t ff[2048];
	memset(ff, 0xFF, sizeof(ff));

	/* Before the handshake only our own maximum is known: waits, then
	 * fails when the peer's turns out smaller after stuffing. */
	struct va_msg m = { VA_CONTENT_BINARY, NULL, 0, ff, 513, 0 };
	struct tcall *early = start_msg_call(&A, &m);
	CU_ASSERT_EQUAL(early->rc, 0);
	m.len = 512;
	struct tcall *early_fits = start_msg_call(&A, &m);
	va_session_reset(A.s, now_ms);
	run_until(quiet_and_done, 1000);
	CU_ASSERT_EQUAL(early->err, VA_SESSION_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(early_fits->err, 0);
	CU_ASSERT(early_fits->match);
	/* 512 x 0xFF is 1024 on the wire: at the maximum.  513: over. */
	m.len = 512;
	struct va_session_stats st0;
	get_stats(&B, &st0);
	CU_ASSERT_EQUAL(start_msg_call(&A, &m)->rc, 0);
	m.len = 513;
	CU_ASSERT_EQUAL(start_msg_call(&A, &m)->rc, -E2BIG);
	m.take = 1;
	m.body = malloc(513);
	memset((void *)m.body, 0xFE, 513);
	CU_ASSERT_EQUAL(call_msg_rc(&A, &m), -E2BIG); /* and freed */
	m.take = 0;
	m.body = ff;
	/* 1023 plain bytes and one 0xFF: 1025 on the wire. */
	uint8_t mix[1024];
	memset(mix, 'm', sizeof(mix));
	mix[1023] = 0xFF;
	m.body = mix;
	m.len = 1024;
	CU_ASSERT_EQUAL(start_msg_call(&A, &m)->rc, -E2BIG);
	m.len = 1023;
	CU_ASSERT_EQUAL(start_msg_call(&A, &m)->rc, 0);
	run_until(quiet, 1000);
	struct va_session_stats st1;
	get_stats(&B, &st1);
	CU_ASSERT_EQUAL(st1.binary_requests, st0.binary_requests + 2);
	CU_ASSERT_EQUAL(st1.parser.errors, st0.parser.errors);

	/* B's replies to A are limited by A's maximum (16 MiB); A's replies
	 * to B by B's 1024: va_stuff_fit says how much of a body fits. */
	A.mode = SILENT;
	struct tcall *c = start_call(&B, 10, 0);
	run_until(quiet, 1000);
	uint64_t ep = va_session_epoch(A.s);
	m.body = ff;
	m.len = 600;
	CU_ASSERT_EQUAL(va_session_reply_msg(A.s, ep, A.last_tag, &m), -E2BIG);
	size_t stuffed;
	size_t fit = va_stuff_fit(ff, 600, va_session_peer_max_frame(A.s), &stuffed);
	CU_ASSERT_EQUAL(fit, 512);
	CU_ASSERT_EQUAL(stuffed, 1024);
	m.len = fit;
	CU_ASSERT_EQUAL(va_session_reply_msg(A.s, ep, A.last_tag, &m), 0);
	A.replies_ok++; /* for check_counters */
	strict_bodies = 0;
	run_until(quiet, 1000);
	CU_ASSERT_EQUAL(c->err, 0);
	strict_bodies = 1;

	/* A waiting call over the peer's maximum after stuffing. */
	va_session_peer_down(A.s, now_ms);
	va_session_peer_down(B.s, now_ms);
	A.mode = ECHO_NOW;
	struct tcall *w = start_binary_call(&A, 0, 0, 0);
	struct va_msg big = { VA_CONTENT_BINARY, NULL, 0, ff, 600, 0 };
	struct tcall *w2 = start_msg_call(&A, &big);
	CU_ASSERT_EQUAL(w2->rc, 0);
	va_session_peer_up(A.s, now_ms);
	va_session_peer_up(B.s, now_ms);
	run_until(quiet_and_done, 2000);
	CU_ASSERT_EQUAL(w->err, 0);
	CU_ASSERT_EQUAL(w2->err, VA_SESSION_ERR_TOO_LARGE);
	check_counters();
	teardown();
}

/* Bodies handed over are sent from the caller's own buffer. */
static void
test_take_no_copy(void)
{
	setup();
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	B.mode = SILENT;
	struct iovec iov[8];

	/* XML, handed over: head, then the very buffer. */
	char *xml = strdup("<?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName></methodCall>");
	CU_ASSERT_FATAL(xml != NULL);
	const size_t xml_len = strlen(xml);
	struct va_msg m = { NULL, NULL, 0, xml, xml_len, 1 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &m), 0);
	CU_ASSERT_EQUAL_FATAL(va_session_output_iov(A.s, iov, 8), 2);
	CU_ASSERT_PTR_EQUAL(iov[1].iov_base, xml);
	CU_ASSERT_EQUAL(iov[1].iov_len, xml_len);
	/* The same call borrowed: one iovec, the same bytes but the tag's seq. */
	struct va_buf taken = peek_output(&A);
	m.take = 0;
	m.body = "<?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName></methodCall>";
	CU_ASSERT_EQUAL(call_msg_rc(&A, &m), 0);
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 8), 3);
	CU_ASSERT_EQUAL(iov[2].iov_len, taken.len);
	va_buf_free(&taken);
	/* One iovec of room: the head alone; then the body, from its middle. */
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 1), 1);
	size_t head = iov[0].iov_len;
	va_session_input(B.s, iov[0].iov_base, head, now_ms);
	va_session_input(B.s, xml, 5, now_ms);
	va_session_output_consume(A.s, head + 5);
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 8), 2);
	CU_ASSERT_PTR_EQUAL(iov[0].iov_base, xml + 5);
	flush_to_peer(&A);
	CU_ASSERT_EQUAL(B.requests_seen, 2);
	CU_ASSERT_EQUAL(B.last_len, xml_len);

	/* Binary without escapes: the buffer as it is.  With escapes:
	 * stuffed in place, decoded intact by the peer. */
	uint8_t *plain = malloc(3000);
	CU_ASSERT_FATAL(plain != NULL);
	memset(plain, 'p', 3000);
	struct va_msg bm = { VA_CONTENT_BINARY, NULL, 0, plain, 3000, 1 };
	CU_ASSERT_EQUAL(call_msg_rc(&A, &bm), 0);
	CU_ASSERT_EQUAL_FATAL(va_session_output_iov(A.s, iov, 8), 2);
	CU_ASSERT_PTR_EQUAL(iov[1].iov_base, plain);
	flush_to_peer(&A);
	uint8_t *esc = malloc(3000);
	CU_ASSERT_FATAL(esc != NULL);
	for (size_t i = 0; i < 3000; i++)
		esc[i] = (uint8_t)(i * 7);
	uint8_t want[3000];
	memcpy(want, esc, 3000);
	bm.body = esc;
	CU_ASSERT_EQUAL(call_msg_rc(&A, &bm), 0);
	CU_ASSERT_EQUAL_FATAL(va_session_output_iov(A.s, iov, 8), 2);
	CU_ASSERT_EQUAL(iov[1].iov_len, 3000 + va_stuff_count(want, 3000));
	flush_to_peer(&A);
	CU_ASSERT_EQUAL(B.last_len, 3000);
	CU_ASSERT(memcmp(B.last_body, want, 3000) == 0);

	/* An empty body handed over, and a refusal: freed, nothing sent. */
	bm.body = malloc(1);
	bm.len = 0;
	CU_ASSERT_EQUAL(call_msg_rc(&A, &bm), 0);
	CU_ASSERT_EQUAL(va_session_output_iov(A.s, iov, 8), 1);
	flush_to_peer(&A);
	bm.body = malloc(10);
	bm.len = 10;
	memset((void *)bm.body, 0xFF, 10);
	bm.content_type = NULL; /* XML with 0xFF */
	CU_ASSERT_EQUAL(call_msg_rc(&A, &bm), -EINVAL);
	/* Replies too: a stale one is freed. */
	bm.body = malloc(10);
	bm.content_type = VA_CONTENT_BINARY;
	CU_ASSERT_EQUAL(va_session_reply_msg(B.s, va_session_epoch(B.s) + 1, B.last_tag, &bm),
			-ESTALE);
	CU_ASSERT_EQUAL(va_session_output_pending(A.s), 0);
	B.mode = ECHO_NOW;
	va_session_reset(A.s, now_ms); /* the silent calls fail: no tcalls */
	run_until(quiet, 1000);
	teardown();
}

/*
 * Back-pressure: a peer that sends binary requests and never reads the
 * replies.  The replier stops parsing once 2 * max_frame of replies wait,
 * holds the rest of its input, and picks up where it stopped when they
 * are written; every request is answered, in order.
 */
static void
test_input_paused_by_replies(void)
{
	struct va_session_config ca = default_cfg("A"), cb = default_cfg("B");
	cb.max_frame = 8192;
	setup_cfg(&ca, &cb);
	va_session_reset(A.s, now_ms);
	run_until(quiet, 1000);
	const size_t reply_len = 3000, n = 60;
	size_t from = ntcalls;
	for (size_t i = 0; i < n; i++) {
		/* Each request asks for as much as it sends: the echo. */
		CU_ASSERT_EQUAL(start_binary_call(&A, reply_len, 0, 1)->rc, 0);
	}
	/* A's requests all reach B at once; nobody reads B's output. */
	flush_to_peer(&A);
	struct va_session_stats sb;
	get_stats(&B, &sb);
	size_t max_reply = 0;
	CU_ASSERT(sb.input_pauses > 0);
	CU_ASSERT(va_session_input_held(B.s) > 0);
	CU_ASSERT(B.requests_seen < n);
	CU_ASSERT(va_session_reply_pending(B.s) > 2 * 8192);
	CU_ASSERT(va_session_reply_pending(B.s) <= 2 * 8192 + 2 * reply_len + 200);
	CU_ASSERT_EQUAL(va_session_reply_pending(B.s), va_session_output_pending(B.s));
	CU_ASSERT_EQUAL(va_session_deadline(B.s), UINT64_MAX); /* nothing to do now */
	/* More input while paused is held, not parsed. */
	uint64_t seen = B.requests_seen;
	CU_ASSERT_EQUAL(start_binary_call(&A, reply_len, 0, 0)->rc, 0);
	flush_to_peer(&A);
	CU_ASSERT_EQUAL(B.requests_seen, seen);
	/* Now B's output is read, a slice at a time: B goes on by itself
	 * (its deadline is due at once), never over the bound. */
	while (!all_done(from)) {
		size_t rp = va_session_reply_pending(B.s);
		if (rp > max_reply)
			max_reply = rp;
		take_output(&B);
		deliver(&B);
		if (va_session_input_held(B.s) && va_session_reply_pending(B.s) <= 2 * 8192)
			CU_ASSERT_EQUAL(va_session_deadline(B.s), 0);
		va_session_tick(B.s, now_ms);
		now_ms++;
		if (now_ms > 100000) {
			CU_FAIL("stuck");
			break;
		}
	}
	CU_ASSERT(max_reply <= 2 * 8192 + 2 * reply_len + 200);
	CU_ASSERT_EQUAL(count_calls(&A, 0, from), n + 1);
	for (size_t i = from; i < ntcalls; i++)
		CU_ASSERT(tcalls[i]->match);
	CU_ASSERT_EQUAL(va_session_input_held(B.s), 0);
	CU_ASSERT_EQUAL(va_session_reply_pending(B.s), 0);
	get_stats(&B, &sb);
	CU_ASSERT_EQUAL(sb.requests, n + 1);
	CU_ASSERT_EQUAL(sb.parser.torn + sb.parser.errors, 0);

	/* A reset drops the replies: held input is parsed at once. */
	B.mode = ECHO_NOW;
	for (size_t i = 0; i < n; i++)
		start_binary_call(&A, reply_len, 0, 0);
	flush_to_peer(&A);
	CU_ASSERT(va_session_input_held(B.s) > 0);
	va_session_reset(B.s, now_ms);
	CU_ASSERT_EQUAL(va_session_reply_pending(B.s), 0);
	CU_ASSERT_EQUAL(va_session_deadline(B.s), 0);
	run_until(quiet_and_done, 5000);
	CU_ASSERT_EQUAL(va_session_input_held(B.s), 0);
	/* Our own calls never pause our input. */
	for (size_t i = 0; i < 30; i++)
		CU_ASSERT_EQUAL(start_call(&B, 5000, 0)->rc, 0);
	CU_ASSERT(va_session_output_pending(B.s) > 2 * 8192);
	CU_ASSERT_EQUAL(va_session_reply_pending(B.s), 0);
	run_until(quiet_and_done, 5000);
	check_counters();
	teardown();
}

static const struct va_test tests[] = {
	{ "strerror", test_strerror },
	{ "handshake started by A", test_handshake_by_a },
	{ "handshake started by B", test_handshake_by_b },
	{ "handshake started by both", test_handshake_both },
	{ "both RESETs stuck in output", test_handshake_both_queued },
	{ "50 calls in flight each way", test_many_in_flight },
	{ "reset by A with calls in flight", test_reset_by_a_in_flight },
	{ "reset by B with calls in flight", test_reset_by_b_in_flight },
	{ "reset tears a partly written frame", test_reset_tears_partial_frame },
	{ "output queue and partial writes", test_output_queue },
	{ "stale and unmatched responses", test_stale_and_unmatched },
	{ "faults, reset, clean phase", test_fault_phase },
	{ "call timeout resets", test_call_timeout },
	{ "handshake never answered", test_handshake_unanswered },
	{ "too large", test_too_large },
	{ "peer down and up", test_peer_down_up },
	{ "frames ignored while not ready", test_not_ready_ignores },
	{ "own RESET echoed back", test_echoing_channel },
	{ "callbacks call back", test_reentrant },
	{ "free fails calls with CLOSED", test_free_closes },
	{ "protocol 2 negotiated", test_protocol_negotiated },
	{ "protocol 1 A starts, 2 B", test_protocol_old_a_starts },
	{ "protocol 1 A, 2 B starts", test_protocol_old_a_waits },
	{ "protocol 1 B starts, 2 A", test_protocol_old_b_starts },
	{ "protocol 1 B, 2 A starts", test_protocol_old_b_waits },
	{ "protocol header, raw bytes", test_protocol_raw },
	{ "binary calls both ways", test_binary_calls },
	{ "binary calls with faults", test_binary_fault_phase },
	{ "binary request at every split", test_binary_every_split },
	{ "parameters", test_params },
	{ "content types", test_content_types },
	{ "binary limits after stuffing", test_binary_too_large },
	{ "bodies handed over, not copied", test_take_no_copy },
	{ "replies backed up pause input", test_input_paused_by_replies },
};

int
main(void)
{
	const char *lvl = getenv("TEST_SESSION_LOG");
	int level = lvl ? va_log_parse_level(lvl) : -1;
	va_log_init("test-session", 0, level >= 0 ? (enum va_log_level)level : VA_LOG_ERROR);

	return va_test_run("session", VA_TESTS(tests));
}
