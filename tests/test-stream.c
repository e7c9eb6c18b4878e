/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-stream.c - binary bodies over the real transport: sessions driven
 * by links (common/link.c) over unix-socket channels on the loop.
 *
 *   - A peer that streams binary requests and never reads the replies
 *     (a raw socket that did the handshake by hand): the server's unwritten
 *     output stays under 2 x max frame + one reply, its held input under
 *     one read, the peer's writes block (it waits; nothing is dropped),
 *     and once it reads, every request has its answer, in order.
 *   - Files at channel speed: 64 MiB of random bytes read and written
 *     in 1 MiB binary calls, 4 in flight, both ways, checked byte for
 *     byte; TEST_STREAM_VERBOSE=1 prints MB/s.
 */
#include "config.h"

#include <CUnit/Basic.h>

#include "cunit-main.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "channel.h"
#include "frame.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "session.h"
#include "stuff.h"

static char dir[64], sock_path[100], listen_spec[160], connect_spec[160];

static va_loop *
test_loop(void)
{
	static va_loop *l;
	if (!l)
		l = va_loop_new();
	return l;
}

static void
setup_dir(void)
{
	strcpy(dir, "/tmp/va-test-stream-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/chan.sock", dir);
	snprintf(listen_spec, sizeof(listen_spec), "unix-listen:%s", sock_path);
	snprintf(connect_spec, sizeof(connect_spec), "unix:%s", sock_path);
}

static void
teardown_dir(void)
{
	unlink(sock_path);
	rmdir(dir);
}

/*
 * The "files": a pattern of 8 MiB + 1 bytes (random, with every eighth
 * block of 4 KiB all 0xFF as in an erased flash image), file f starting
 * at a different place in it.  Copies and compares run at memory speed,
 * so the test measures the transport, not the data.
 */
#define PATTERN_LEN ((8u << 20) + 1)
static uint8_t *pattern;

static void
make_pattern(void)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	pattern = malloc(PATTERN_LEN);
	if (!pattern)
		abort();
	for (size_t i = 0; i < PATTERN_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = (i >> 12) % 8 == 5 ? 0xFF : (uint8_t)x;
	}
}

static size_t
pattern_at(unsigned f, uint64_t off)
{
	return (size_t)((off + (uint64_t)f * 1234567) % PATTERN_LEN);
}

static void
fill_file(unsigned f, uint64_t off, uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t at = pattern_at(f, off), k = PATTERN_LEN - at;
		if (k > n)
			k = n;
		memcpy(p, pattern + at, k);
		p += k;
		off += k;
		n -= k;
	}
}

/* 1 when p[0..n) is file f at off. */
static int
same_as_file(unsigned f, uint64_t off, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t at = pattern_at(f, off), k = PATTERN_LEN - at;
		if (k > n)
			k = n;
		if (memcmp(p, pattern + at, k) != 0)
			return 0;
		p += k;
		off += k;
		n -= k;
	}
	return 1;
}

/* --- a server: answers "read" with a binary body, "write" with 200 -------- */

struct server {
	va_channel *ch;
	va_session *s;
	va_link *l;
	int established;
	uint64_t writes_ok, writes_bad;
	size_t max_out, max_reply, max_held; /* sampled after every link pass */
};

static void
srv_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
	    struct va_frame *req)
{
	struct server *sv = opaque;
	const char *op = va_session_param(req, "op");
	uint64_t off = 0, count = 0;
	int r;

	if (op && strcmp(op, "read") == 0 && va_session_param_u64(req, "offset", &off) == 0 &&
	    va_session_param_u64(req, "count", &count) == 0 && count <= (64u << 20)) {
		uint8_t *body = malloc(count + 1);
		CU_ASSERT_FATAL(body != NULL);
		fill_file(1, off, body, count);
		/* No more than fits in the peer's frame once stuffed: a short read. */
		size_t n = va_stuff_fit(body, count, va_session_peer_max_frame(s), NULL);
		char got[24];
		snprintf(got, sizeof(got), "%zu", n);
		struct va_param prm[1] = { { "count", got } };
		struct va_msg m = { VA_CONTENT_BINARY, prm, 1, body, n, 1 };
		r = va_session_reply_msg(s, epoch, tag, &m);
	} else if (op && strcmp(op, "write") == 0 &&
		   va_session_param_u64(req, "offset", &off) == 0 && va_session_is_binary(req)) {
		if (same_as_file(2, off, req->body, req->body_len))
			sv->writes_ok++;
		else
			sv->writes_bad++;
		struct va_msg m = { VA_CONTENT_BINARY, NULL, 0, NULL, 0, 0 };
		r = va_session_reply_msg(s, epoch, tag, &m);
	} else {
		r = va_session_reply(s, epoch, tag, "<bad/>", 6);
	}
	CU_ASSERT_EQUAL(r, 0);
	va_frame_free(req);
}

static void
srv_established(void *opaque, va_session *s)
{
	(void)s;
	((struct server *)opaque)->established++;
}

static void
srv_activity(void *opaque)
{
	struct server *sv = opaque;
	size_t o = va_session_output_pending(sv->s);
	size_t r = va_session_reply_pending(sv->s);
	size_t h = va_session_input_held(sv->s);
	if (o > sv->max_out)
		sv->max_out = o;
	if (r > sv->max_reply)
		sv->max_reply = r;
	if (h > sv->max_held)
		sv->max_held = h;
}

static void
server_open(struct server *sv, const char *spec, size_t max_frame)
{
	static const struct va_session_ops ops = {
		.request = srv_request,
		.established = srv_established,
	};
	struct va_session_config cfg = { .name = spec, .max_frame = max_frame };
	char err[256];

	memset(sv, 0, sizeof(*sv));
	CU_ASSERT_EQUAL_FATAL(va_channel_open(spec, &sv->ch, err, sizeof(err)), 0);
	sv->s = va_session_new(&cfg, &ops, sv);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sv->s);
	sv->l = va_link_new(test_loop(), sv->ch, sv->s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sv->l);
	va_link_set_activity_cb(sv->l, srv_activity, sv);
}

static void
server_close(struct server *sv)
{
	va_link_free(sv->l);
	va_session_free(sv->s);
	va_channel_free(sv->ch);
}

/* --- a raw peer that never reads ---------------------------------------- */

struct raw_in {
	char nonce[17];
	uint64_t replies, bad, next_tag;
	size_t reply_len;
};

static void
raw_frame(void *opaque, struct va_frame *f)
{
	struct raw_in *in = opaque;
	const char *nonce = va_frame_header(f, VA_NONCE_HEADER);

	if (f->kind == VA_FRAME_REQUEST && strcmp(f->method, "RESET") == 0 && nonce &&
	    strlen(nonce) == 16) {
		memcpy(in->nonce, nonce, 17);
	} else if (f->kind == VA_FRAME_RESPONSE && f->status == 200) {
		char want[32];
		snprintf(want, sizeof(want), "p.%" PRIu64, in->next_tag++);
		const char *tag = va_frame_header(f, VA_TAG_HEADER);
		int ok = tag && strcmp(tag, want) == 0 && f->body_len == in->reply_len &&
			 va_session_is_binary(f);
		/* The reply of request k reads the file at k * 4096. */
		ok = ok && same_as_file(1, (in->next_tag - 1) * 4096, f->body, f->body_len);
		in->replies += ok;
		in->bad += !ok;
	}
	va_frame_free(f);
}

static int
write_all_now(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads what is there into the parser; returns bytes read (0: none now). */
static size_t
raw_read(int fd, va_frame_parser *p)
{
	static uint8_t buf[65536];
	size_t total = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			return total;
		va_frame_parser_feed(p, buf, (size_t)r);
		total += (size_t)r;
	}
}

static void
test_peer_never_reads(void)
{
	const size_t max_frame = 64 * 1024, reply_len = 60 * 1024;
	struct server sv;
	struct raw_in in = { .reply_len = reply_len };
	static const struct va_frame_parser_ops pops = { .frame = raw_frame };

	setup_dir();
	server_open(&sv, listen_spec, max_frame);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	va_frame_parser *p = va_frame_parser_new(VA_FRAME_DEFAULT_MAX_BODY, &pops, &in);

	/* The handshake by hand: the server's RESET, our ACK. */
	uint64_t end = va_now_ms() + 5000;
	while (!in.nonce[0] && va_now_ms() < end) {
		va_loop_run_once(test_loop(), 20);
		raw_read(fd, p);
	}
	CU_ASSERT_FATAL(in.nonce[0] != 0);
	char ack[256];
	int n = snprintf(ack, sizeof(ack),
			 "\xffHTTP/1.1 205 Reset Content\r\nX-Virtagent-Nonce: %s\r\n"
			 "X-Virtagent-Max-Frame: %zu\r\nX-Virtagent-Protocol: 2\r\n"
			 "Content-Length: 0\r\n\r\n", in.nonce, (size_t)VA_FRAME_DEFAULT_MAX_BODY);
	CU_ASSERT_FATAL(write_all_now(fd, ack, (size_t)n) == 0);
	while (!sv.established && va_now_ms() < end)
		va_loop_run_once(test_loop(), 20);
	CU_ASSERT_FATAL(sv.established == 1);

	/* Requests as fast as the socket takes them, never reading. */
	struct va_buf out;
	va_buf_init(&out);
	uint64_t sent = 0;
	int idle = 0;
	size_t off = 0;
	while (idle < 50) {
		if (off == out.len) {
			va_buf_free(&out);
			off = 0;
			for (int k = 0; k < 16; k++, sent++) {
				char tag[32], offset[24], count[24];
				snprintf(tag, sizeof(tag), "p.%" PRIu64, sent);
				snprintf(offset, sizeof(offset), "%" PRIu64, sent * 4096);
				snprintf(count, sizeof(count), "%zu", reply_len);
				const struct va_frame_header h[] = {
					{ "Content-Type", VA_CONTENT_BINARY },
					{ "Content-Encoding", VA_STUFF_CODING },
					{ VA_TAG_HEADER, tag },
					{ "X-Va-op", "read" },
					{ "X-Va-offset", offset },
					{ "X-Va-count", count },
				};
				CU_ASSERT_FATAL(va_frame_write(&out, "POST /RPC2 HTTP/1.1", h, 6,
							       NULL, 0) == 0);
			}
		}
		ssize_t w = write(fd, out.data + off, out.len - off);
		if (w > 0) {
			off += (size_t)w;
			idle = 0;
		} else {
			CU_ASSERT_FATAL(w < 0 && errno == EAGAIN);
			idle++;
		}
		va_loop_run_once(test_loop(), w > 0 ? 0 : 10);
	}
	/* Requests not written yet (the rest of the batch) are not sent. */
	uint64_t unsent = 0;
	for (size_t i = off; i < out.len; i++)
		unsent += out.data[i] == 0xFF;
	sent -= unsent;
	if (off < out.len && out.data[off] != 0xFF)
		sent--; /* a request written in part: it cannot be finished */
	CU_ASSERT(sv.max_out <= 2 * max_frame + reply_len + 1024);
	CU_ASSERT(sv.max_reply <= 2 * max_frame + reply_len + 1024);
	/* The rest of one slice of the link (1 KiB) after the request that
	 * paused, and the next slice, less what was parsed of it. */
	CU_ASSERT(sv.max_held <= 3 * 1024);
	CU_ASSERT(va_session_input_held(sv.s) > 0 || va_session_output_pending(sv.s) > 2 * max_frame);
	struct va_session_stats st;
	va_session_stats(sv.s, &st);
	CU_ASSERT(st.input_pauses > 0);
	CU_ASSERT(st.requests < sent); /* the rest wait in the socket, not in us */
	if (getenv("TEST_STREAM_VERBOSE"))
		printf("\n  %" PRIu64 " requests written before the peer blocked, %" PRIu64
		       " parsed; server output <= %zu, held <= %zu\n", sent, st.requests,
		       sv.max_out, sv.max_held);

	/* The peer reads at last: every complete request is answered, in
	 * order, with the right bytes. */
	end = va_now_ms() + 20000;
	while (in.replies + in.bad < sent && va_now_ms() < end) {
		va_loop_run_once(test_loop(), raw_read(fd, p) ? 0 : 5);
	}
	CU_ASSERT_EQUAL(in.replies, sent);
	CU_ASSERT_EQUAL(in.bad, 0);
	CU_ASSERT(sv.max_out <= 2 * max_frame + reply_len + 1024);
	va_session_stats(sv.s, &st);
	CU_ASSERT_EQUAL(st.bad_frames, 0);
	CU_ASSERT_EQUAL(st.parser.torn + st.parser.errors, 0);

	va_buf_free(&out);
	va_frame_parser_free(p);
	close(fd);
	server_close(&sv);
	teardown_dir();
}

/* --- files at channel speed ------------------------------------------------ */

struct client {
	va_channel *ch;
	va_session *s;
	va_link *l;
	int established;
	uint64_t next_off, done_bytes, size;
	unsigned in_flight, window;
	size_t chunk;
	int writing, failed;
};

static void cl_pump(struct client *c);

static void
cl_done(void *opaque, int err, struct va_frame *resp)
{
	struct client *c = opaque;
	c->in_flight--;
	if (err) {
		c->failed++;
		cl_pump(c);
		return;
	}
	if (!c->writing) {
		/* A read answered: the bytes at the offset in "count". */
		uint64_t off = 0;
		const char *o = va_session_param(resp, "offset");
		(void)o;
		CU_ASSERT(va_session_is_binary(resp));
		/* The offset is ours: replies come in order of requests. */
		off = c->done_bytes;
		if (!same_as_file(1, off, resp->body, resp->body_len))
			c->failed++;
		c->done_bytes += resp->body_len;
	} else {
		c->done_bytes += c->chunk;
	}
	va_frame_free(resp);
	cl_pump(c);
}

/* Keeps window calls in flight until the file is covered. */
static void
cl_pump(struct client *c)
{
	while (c->in_flight < c->window && c->next_off < c->size && !c->failed) {
		char off[24], cnt[24];
		size_t n = c->size - c->next_off < c->chunk ? (size_t)(c->size - c->next_off)
							    : c->chunk;
		snprintf(off, sizeof(off), "%" PRIu64, c->next_off);
		snprintf(cnt, sizeof(cnt), "%zu", n);
		struct va_param prm[3] = { { "op", c->writing ? "write" : "read" },
					   { "offset", off }, { "count", cnt } };
		struct va_msg m = { VA_CONTENT_BINARY, prm, 3, NULL, 0, 0 };
		if (c->writing) {
			uint8_t *body = malloc(n);
			CU_ASSERT_FATAL(body != NULL);
			fill_file(2, c->next_off, body, n);
			m.body = body;
			m.len = n;
			m.take = 1;
		}
		int r = va_session_call_msg(c->s, &m, 30000, va_now_ms(), cl_done, c);
		CU_ASSERT_EQUAL(r, 0);
		if (r < 0) {
			c->failed++;
			return;
		}
		c->in_flight++;
		c->next_off += n;
	}
}

static void
cl_established(void *opaque, va_session *s)
{
	(void)s;
	((struct client *)opaque)->established++;
}

static void
cl_request(void *opaque, va_session *s, uint64_t epoch, const char *tag, struct va_frame *req)
{
	(void)opaque;
	va_session_reply(s, epoch, tag, "<x/>", 4);
	va_frame_free(req);
}

static double
transfer(struct server *sv, struct client *c, int writing, uint64_t size)
{
	c->writing = writing;
	c->size = size;
	c->next_off = c->done_bytes = 0;
	c->failed = 0;
	uint64_t t0 = va_now_ms();
	uint64_t end = t0 + 120000;
	cl_pump(c);
	while ((c->done_bytes < size || c->in_flight) && !c->failed && va_now_ms() < end)
		va_loop_run_once(test_loop(), 100);
	uint64_t ms = va_now_ms() - t0;
	(void)sv;
	CU_ASSERT_EQUAL(c->failed, 0);
	CU_ASSERT_EQUAL(c->done_bytes, size);
	return ms ? (double)size / 1e3 / (double)ms : 0;
}

static void
test_files_at_channel_speed(void)
{
	static const struct va_session_ops ops = {
		.request = cl_request,
		.established = cl_established,
	};
	struct server sv;
	struct client c = { .window = 4, .chunk = 1 << 20 };
	const char *big = getenv("TEST_STREAM_MB");
	uint64_t size = (big ? strtoull(big, NULL, 10) : 64) << 20;
	char err[256];

	setup_dir();
	server_open(&sv, listen_spec, 0);
	struct va_session_config cfg = { .name = "client" };
	CU_ASSERT_EQUAL_FATAL(va_channel_open(connect_spec, &c.ch, err, sizeof(err)), 0);
	c.s = va_session_new(&cfg, &ops, &c);
	c.l = va_link_new(test_loop(), c.ch, c.s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.l);
	uint64_t end = va_now_ms() + 5000;
	while ((!c.established || !sv.established) && va_now_ms() < end)
		va_loop_run_once(test_loop(), 50);
	CU_ASSERT_FATAL(c.established && sv.established);
	CU_ASSERT_EQUAL(va_session_protocol(c.s), 2);

	double rd = transfer(&sv, &c, 0, size);
	double wr = transfer(&sv, &c, 1, size);
	CU_ASSERT_EQUAL(sv.writes_ok, size / c.chunk + (size % c.chunk != 0));
	CU_ASSERT_EQUAL(sv.writes_bad, 0);
	if (getenv("TEST_STREAM_VERBOSE"))
		printf("\n  %" PRIu64 " MiB in 1 MiB binary calls, 4 in flight: read %.0f MB/s, "
		       "write %.0f MB/s (one process, both sides and the checks)\n",
		       size >> 20, rd, wr);

	va_link_free(c.l);
	va_session_free(c.s);
	va_channel_free(c.ch);
	server_close(&sv);
	teardown_dir();
}

static const struct va_test tests[] = {
	{ "a peer that never reads the replies", test_peer_never_reads },
	{ "files at channel speed", test_files_at_channel_speed },
};

int
main(void)
{
	const char *lvl = getenv("TEST_STREAM_LOG");
	int level = lvl ? va_log_parse_level(lvl) : -1;
	va_log_init("test-stream", 0, level >= 0 ? (enum va_log_level)level : VA_LOG_ERROR);
	make_pattern();
	int r = va_test_run("stream", VA_TESTS(tests));
	va_loop_free(test_loop());
	free(pattern);
	return r;
}
