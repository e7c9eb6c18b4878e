/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-http-parse.c - CUnit tests of the request head parser
 * (host/http-parse.c; the contract is host/http-parse.h).
 *
 * Every parse runs on a copy of the input in a malloc of exactly its size,
 * so that a read past the bytes handed in is caught under ASan, and every
 * parse checks the contract's general promises (parse_at()): a 0 leaves
 * the buffer as it was, a refusal says why, a 1 leaves the bytes after
 * the head alone and points its strings into the head.  The tests then
 * assert the exact results.  Random input comes from a fixed-seed
 * xorshift generator, so every failure reproduces.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "http-parse.h"

#include "cunit-main.h"

/* An assertion reported at the caller's line. */
#define CHECK_AT(cond, line) \
	CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, (line), #cond, __FILE__, "", CU_FALSE)

/* --- a growing byte string ------------------------------------------------ */

struct sb {
	char *d;
	size_t len, cap;
};

static void
sb_add(struct sb *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->d, cap);
		if (!d)
			abort();
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->len, p, n);
	b->len += n;
	b->d[b->len] = '\0';
}

static void
sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	sb_add(b, tmp, (size_t)n);
}

static void
sb_fill(struct sb *b, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_add(b, &c, 1);
}

static void
sb_free(struct sb *b)
{
	free(b->d);
	b->d = NULL;
	b->len = b->cap = 0;
}

/* --- parsing a copy ------------------------------------------------------- */

struct parsed {
	char *buf;      /* malloc of exactly size bytes, the copy parsed */
	size_t size;    /* bytes in buf */
	int rc;
	const char *why;
	struct va_http_head h;
};

/* Inside [buf, buf + n) with its NUL too. */
static bool
str_inside(const char *s, const char *buf, size_t n)
{
	if (!s || s < buf || s >= buf + n)
		return false;
	return memchr(s, '\0', (size_t)(buf + n - s)) != NULL;
}

/*
 * Parses a copy of in[0 .. size) with the length len (len > size only in
 * the test of the 16 KiB limit, where size is VA_HTTP_HEAD_MAX) and checks
 * what holds for every result.  Reports failures at line.
 */
static void
parse_len_at(struct parsed *p, const char *in, size_t size, size_t len, int line)
{
	p->buf = xmalloc(size);
	memcpy(p->buf, in, size);
	p->size = size;
	p->why = NULL;
	memset(&p->h, 0xa5, sizeof(p->h));
	p->rc = va_http_parse_head(p->buf, len, &p->h, &p->why);

	CHECK_AT(p->rc == 1 || p->rc == 0 || p->rc == -400 || p->rc == -431 || p->rc == -505,
		 line);
	if (p->rc == 0) {
		CHECK_AT(memcmp(p->buf, in, size) == 0, line);
	} else if (p->rc < 0) {
		CHECK_AT(p->why != NULL && p->why[0] != '\0', line);
	} else if (p->rc == 1) {
		size_t hl = p->h.head_len;
		CHECK_AT(hl > 0 && hl <= size && hl <= VA_HTTP_HEAD_MAX, line);
		if (hl > 0 && hl <= size) {
			CHECK_AT(memcmp(p->buf + hl, in + hl, size - hl) == 0, line);
			CHECK_AT(str_inside(p->h.method, p->buf, hl), line);
			CHECK_AT(str_inside(p->h.target, p->buf, hl), line);
			CHECK_AT(!p->h.authorization ||
				 str_inside(p->h.authorization, p->buf, hl), line);
		}
	}
}

#define PARSE(p, lit) parse_len_at((p), RAW(lit), sizeof(lit) - 1, __LINE__)
#define PARSE_N(p, s, n) parse_len_at((p), (s), (n), (n), __LINE__)

static void
parsed_free(struct parsed *p)
{
	free(p->buf);
	p->buf = NULL;
}

/* Asserts that in[0 .. n) is refused with status. */
static void
refused_at(const char *in, size_t n, int status, int line)
{
	struct parsed p;

	parse_len_at(&p, in, n, n, line);
	CHECK_AT(p.rc == -status, line);
	if (p.rc != -status)
		fprintf(stderr, "\nline %d: expected %d, got %d (%s)\n", line, -status, p.rc,
			p.rc < 0 && p.why ? p.why : "-");
	parsed_free(&p);
}

#define REFUSED(lit, status) refused_at(RAW(lit), (status), __LINE__)
#define REFUSED_N(s, n, status) refused_at((s), (n), (status), __LINE__)

/* "GET / HTTP/1.1\r\n" line "\r\n\r\n": one header line in a GET head. */
static void
header_refused_at(const char *line_text, size_t n, int status, int line)
{
	struct sb b = { 0 };

	sb_str(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	sb_add(&b, line_text, n);
	sb_str(&b, "\r\nAccept: */*\r\n\r\n");
	refused_at(b.d, b.len, status, line);
	sb_free(&b);
}

#define HEADER_REFUSED(lit, status) header_refused_at(RAW(lit), (status), __LINE__)

/* The head of a GET with one header line (a C string). */
static struct sb
get_with(const char *header)
{
	struct sb b = { 0 };

	sb_str(&b, "GET / HTTP/1.1\r\n");
	sb_str(&b, header);
	sb_str(&b, "\r\n\r\n");
	return b;
}

/* Parses get_with(header), which must be accepted. */
static void
parse_header_at(struct parsed *p, const char *header, int line)
{
	struct sb b = get_with(header);

	parse_len_at(p, b.d, b.len, b.len, line);
	CHECK_AT(p->rc == 1, line);
	CHECK_AT(p->rc != 1 || p->h.head_len == b.len, line);
	sb_free(&b);
}

#define PARSE_HEADER(p, header) parse_header_at((p), (header), __LINE__)

/* A realistic head, as xmlrpc-c's curl transport sends it. */
static const char real_head[] =
	"POST /RPC2 HTTP/1.1\r\n"
	"Host: localhost:8080\r\n"
	"User-Agent: Xmlrpc-c/1.59.3 Curl/8.5.0\r\n"
	"Accept: */*\r\n"
	"Content-Type: text/xml\r\n"
	"Content-Length: 187\r\n"
	"Authorization: Basic dmE6c2VjcmV0\r\n"
	"Expect: 100-continue\r\n"
	"Connection: keep-alive\r\n"
	"\r\n";

static void
check_real_head(const struct va_http_head *h)
{
	ASSERT_STR(h->method, "POST");
	ASSERT_STR(h->target, "/RPC2");
	CU_ASSERT_EQUAL(h->minor, 1);
	CU_ASSERT_EQUAL(h->content_length, 187);
	CU_ASSERT_EQUAL(h->transfer_encoding, 0);
	CU_ASSERT_EQUAL(h->expect_continue, 1);
	CU_ASSERT_EQUAL(h->expect_other, 0);
	CU_ASSERT_EQUAL(h->conn_close, 0);
	CU_ASSERT_EQUAL(h->conn_keep_alive, 1);
	ASSERT_STR(h->authorization, "Basic dmE6c2VjcmV0");
}

/* s with every "\r\n" turned into "\n". */
static struct sb
bare_lf(const char *s, size_t n)
{
	struct sb b = { 0 };

	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			sb_add(&b, &s[i], 1);
	return b;
}

/* --- tests ---------------------------------------------------------------- */

static void
test_minimal(void)
{
	struct parsed p;

	PARSE(&p, "POST /RPC2 HTTP/1.1\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "POST");
	ASSERT_STR(p.h.target, "/RPC2");
	CU_ASSERT_EQUAL(p.h.minor, 1);
	CU_ASSERT_EQUAL(p.h.content_length, -1);
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 0);
	CU_ASSERT_EQUAL(p.h.expect_continue, 0);
	CU_ASSERT_EQUAL(p.h.expect_other, 0);
	CU_ASSERT_EQUAL(p.h.conn_close, 0);
	CU_ASSERT_EQUAL(p.h.conn_keep_alive, 0);
	CU_ASSERT_PTR_NULL(p.h.authorization);
	CU_ASSERT_EQUAL(p.h.head_len, 23);
	/* In place: the method is the buffer's start, the target after it. */
	CU_ASSERT_PTR_EQUAL(p.h.method, p.buf);
	CU_ASSERT_PTR_EQUAL(p.h.target, p.buf + 5);
	parsed_free(&p);

	PARSE(&p, "POST /RPC2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "POST");
	ASSERT_STR(p.h.target, "/RPC2");
	CU_ASSERT_EQUAL(p.h.content_length, 5);
	CU_ASSERT_EQUAL(p.h.head_len, 42);
	CU_ASSERT_EQUAL(memcmp(p.buf + p.h.head_len, "hello", 5), 0);
	parsed_free(&p);

	/* Nothing at all, and nothing but the request line: not yet. */
	PARSE(&p, "");
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	PARSE(&p, "POST /RPC2 HTTP/1.1\r\n");
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
}

/*
 * Feeds every prefix of head + body: shorter than the head, 0 and the
 * buffer as it was; the head or longer, 1 with the real head's results.
 */
static void
check_every_split(const char *head, size_t n, size_t expect_head_len)
{
	static const char body[] = "<?xml version=\"1.0\"?>\r\n\r\n<methodCall/>";
	struct sb in = { 0 };
	unsigned short_bad = 0, long_bad = 0;

	sb_add(&in, head, n);
	sb_add(&in, RAW(body));
	for (size_t k = 0; k < n; k++) {
		char *buf = xmalloc(k);
		struct va_http_head h;
		const char *why = NULL;
		memcpy(buf, in.d, k);
		int rc = va_http_parse_head(buf, k, &h, &why);
		if (rc != 0 || memcmp(buf, in.d, k) != 0) {
			if (!short_bad)
				fprintf(stderr, "\nprefix %zu of %zu: %d (%s)\n", k, n, rc,
					rc < 0 && why ? why : "-");
			short_bad++;
		}
		free(buf);
	}
	CU_ASSERT_EQUAL(short_bad, 0);

	for (size_t k = n; k <= in.len; k++) {
		struct parsed p;
		PARSE_N(&p, in.d, k);
		if (p.rc != 1 || p.h.head_len != expect_head_len) {
			long_bad++;
		} else if (k == n || k == in.len) {
			check_real_head(&p.h);
		}
		parsed_free(&p);
	}
	CU_ASSERT_EQUAL(long_bad, 0);
	sb_free(&in);
}

static void
test_every_split(void)
{
	check_every_split(RAW(real_head), sizeof(real_head) - 1);

	struct sb lf = bare_lf(RAW(real_head));
	CU_ASSERT_EQUAL(lf.len, sizeof(real_head) - 1 - 10);
	check_every_split(lf.d, lf.len, lf.len);
	sb_free(&lf);

	/* Empty lines before the request line belong to the head. */
	struct sb lead = { 0 };
	sb_str(&lead, "\r\n\n\r\n");
	sb_add(&lead, RAW(real_head));
	check_every_split(lead.d, lead.len, lead.len);
	sb_free(&lead);
}

static void
test_line_ends(void)
{
	struct parsed p;

#define LF_HEAD "GET /x HTTP/1.0\nHost: h\nContent-Length: 3\n\n"
	PARSE(&p, LF_HEAD "abc");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "GET");
	ASSERT_STR(p.h.target, "/x");
	CU_ASSERT_EQUAL(p.h.minor, 0);
	CU_ASSERT_EQUAL(p.h.content_length, 3);
	CU_ASSERT_EQUAL(p.h.head_len, sizeof(LF_HEAD) - 1);
	CU_ASSERT_EQUAL(p.h.head_len, 43);
	parsed_free(&p);

	/* Mixed: CRLF, LF, and an empty line of CRLF after LF lines. */
#define MIXED_HEAD "GET /x HTTP/1.1\r\nContent-Length: 3\nAuthorization: a b\r\n\r\n"
	PARSE(&p, MIXED_HEAD "abc");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.content_length, 3);
	ASSERT_STR(p.h.authorization, "a b");
	CU_ASSERT_EQUAL(p.h.head_len, sizeof(MIXED_HEAD) - 1);
	parsed_free(&p);

#define MIXED_HEAD2 "GET /x HTTP/1.1\nAuthorization: a\r\n\n"
	PARSE(&p, MIXED_HEAD2 "abc");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.authorization, "a");
	CU_ASSERT_EQUAL(p.h.head_len, sizeof(MIXED_HEAD2) - 1);
	parsed_free(&p);

	/* A CR alone at the end is not yet an empty line. */
	PARSE(&p, "GET /x HTTP/1.1\r\nHost: h\r\n\r");
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
}

static void
test_leading_empty_lines(void)
{
	struct parsed p;

	PARSE(&p, "\r\n\r\nGET / HTTP/1.1\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "GET");
	ASSERT_STR(p.h.target, "/");
	CU_ASSERT_PTR_EQUAL(p.h.method, p.buf + 4);
	CU_ASSERT_EQUAL(p.h.head_len, 22);
	parsed_free(&p);

	PARSE(&p, "\n\n\r\nPUT /a HTTP/1.1\nHost: x\n\nBODY");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "PUT");
	ASSERT_STR(p.h.target, "/a");
	CU_ASSERT_EQUAL(p.h.head_len, 29);
	parsed_free(&p);

	/* Only empty lines: no head yet (they are not its end). */
	PARSE(&p, "\r\n\r\n\n\r\n");
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	PARSE(&p, "\r\n\r");
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);

	/* A line of white space is not empty: it is a bad request line. */
	REFUSED(" \r\nGET / HTTP/1.1\r\n\r\n", 400);
	REFUSED("\r\r\nGET / HTTP/1.1\r\n\r\n", 400);
}

static void
test_body_untouched(void)
{
	/* The body holds an empty line, NUL, CR and control bytes. */
	static const char in[] = "POST /RPC2 HTTP/1.1\r\nContent-Length: 13\r\n\r\n"
				 "\r\n\r\n\0\r\x01\n\nX\xff\0\n";
	struct parsed p;

	PARSE(&p, in);
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.head_len, 43);
	CU_ASSERT_EQUAL(p.h.content_length, 13);
	CU_ASSERT_EQUAL(sizeof(in) - 1 - 43, 13);
	CU_ASSERT_EQUAL(memcmp(p.buf + 43, in + 43, 13), 0);
	parsed_free(&p);
}

static void
test_pipelined(void)
{
	static const char in[] = "POST /RPC2 HTTP/1.1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n"
				 "abc"
				 "GET /status HTTP/1.0\nConnection: close\n\n"
				 "POST /x";
	struct parsed p;

	PARSE(&p, in);
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "POST");
	ASSERT_STR(p.h.target, "/RPC2");
	CU_ASSERT_EQUAL(p.h.conn_keep_alive, 1);
	CU_ASSERT_EQUAL(p.h.conn_close, 0);
	CU_ASSERT_EQUAL_FATAL(p.h.head_len, 66);
	CU_ASSERT_EQUAL_FATAL(p.h.content_length, 3);

	/* The next request starts after the body, in the same buffer. */
	size_t off = p.h.head_len + 3;
	char *next = p.buf + off;
	size_t left = sizeof(in) - 1 - off;
	struct va_http_head h2;
	const char *why = NULL;
	CU_ASSERT_EQUAL_FATAL(va_http_parse_head(next, left, &h2, &why), 1);
	ASSERT_STR(h2.method, "GET");
	ASSERT_STR(h2.target, "/status");
	CU_ASSERT_EQUAL(h2.minor, 0);
	CU_ASSERT_EQUAL(h2.content_length, -1);
	CU_ASSERT_EQUAL(h2.conn_close, 1);
	CU_ASSERT_EQUAL(h2.conn_keep_alive, 0);
	CU_ASSERT_EQUAL(h2.head_len, 40);
	CU_ASSERT_PTR_EQUAL(h2.method, next);
	/* The first head's strings are still there. */
	ASSERT_STR(p.h.target, "/RPC2");

	/* And the third, incomplete one: wait, untouched. */
	CU_ASSERT_EQUAL(va_http_parse_head(next + 40, left - 40, &h2, &why), 0);
	CU_ASSERT_EQUAL(memcmp(next + 40, "POST /x", 7), 0);
	parsed_free(&p);
}

static void
test_content_length(void)
{
	struct parsed p;

	PARSE(&p, "POST / HTTP/1.1\r\nHost: h\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.content_length, -1);
	parsed_free(&p);

	static const struct {
		const char *header;
		int64_t want;
	} ok[] = {
		{ "Content-Length: 0", 0 },
		{ "Content-Length: 7", 7 },
		{ "content-length: 1048576", 1048576 },
		{ "CONTENT-LENGTH: 00042", 42 },
		{ "Content-Length: 123456789012345678", 123456789012345678LL },
		{ "Content-Length: 999999999999999999", 999999999999999999LL },
		{ "Content-Length:42", 42 },
		{ "Content-Length:   42   ", 42 },
		{ "Content-Length:\t42\t", 42 },
		{ "Content-Length: \t 42 \t ", 42 },
		{ "Content-Length: 5\r\nContent-Length: 5", 5 },
		{ "Content-Length: 5\r\nContent-Length: 005", 5 },
		{ "Content-Length: 0\r\ncontent-length: 0", 0 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		PARSE_HEADER(&p, ok[i].header);
		if (p.rc == 1)
			CU_ASSERT_EQUAL(p.h.content_length, ok[i].want);
		parsed_free(&p);
	}

	HEADER_REFUSED("Content-Length: 1234567890123456789", 400);  /* 19 digits */
	HEADER_REFUSED("Content-Length: 0000000000000000000", 400);  /* 19 digits */
	HEADER_REFUSED("Content-Length: 99999999999999999999999", 400);
	HEADER_REFUSED("Content-Length: 12a", 400);
	HEADER_REFUSED("Content-Length: a12", 400);
	HEADER_REFUSED("Content-Length: 0x10", 400);
	HEADER_REFUSED("Content-Length: 1.0", 400);
	HEADER_REFUSED("Content-Length:", 400);
	HEADER_REFUSED("Content-Length:    ", 400);
	HEADER_REFUSED("Content-Length: +5", 400);
	HEADER_REFUSED("Content-Length: -5", 400);
	HEADER_REFUSED("Content-Length: -1", 400);
	HEADER_REFUSED("Content-Length: 4 2", 400);
	HEADER_REFUSED("Content-Length: 5, 5", 400);
	HEADER_REFUSED("Content-Length: 5\r\nContent-Length: 6", 400);
	HEADER_REFUSED("Content-Length: 0\r\nContent-Length: 1", 400);
	HEADER_REFUSED("Content-Length: 5\r\nContent-Length: x", 400);
	HEADER_REFUSED("Content-Length: 5\r\nContent-Length:", 400);
}

static void
test_transfer_encoding(void)
{
	struct parsed p;

	PARSE_HEADER(&p, "Transfer-Encoding: chunked");
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 1);
	CU_ASSERT_EQUAL(p.h.content_length, -1);
	parsed_free(&p);
	PARSE_HEADER(&p, "transfer-encoding: gzip, chunked");
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 1);
	parsed_free(&p);
	PARSE_HEADER(&p, "Transfer-Encoding: chunked\r\nContent-Length: 10");
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 1);
	CU_ASSERT_EQUAL(p.h.content_length, 10);
	parsed_free(&p);
	PARSE_HEADER(&p, "Transfer-Encodings: chunked");
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 0);
	parsed_free(&p);
	PARSE_HEADER(&p, "X-Transfer-Encoding: chunked");
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 0);
	parsed_free(&p);
	/* te_chunked: a lone "chunked", the only coding the streams decode. */
	PARSE_HEADER(&p, "Transfer-Encoding: Chunked");
	CU_ASSERT_EQUAL(p.h.te_chunked, 1);
	parsed_free(&p);
	PARSE_HEADER(&p, "Transfer-Encoding: gzip, chunked");
	CU_ASSERT_EQUAL(p.h.te_chunked, 0);
	parsed_free(&p);
	PARSE_HEADER(&p, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked");
	CU_ASSERT_EQUAL(p.h.transfer_encoding, 1);
	CU_ASSERT_EQUAL(p.h.te_chunked, 0);
	parsed_free(&p);
}

/* The headers only the file streams read: the first of each, Content-Range once. */
static void
test_stream_headers(void)
{
	struct parsed p;

	PARSE_HEADER(&p, "Range: bytes=1-2\r\nRange: bytes=3-4\r\nIf-Range: \"a\"\r\n"
		     "If-Match: \"b\"\r\nIf-None-Match: *\r\nWant-Repr-Digest: sha-256=1");
	CU_ASSERT_EQUAL(p.rc, 1);
	if (p.rc == 1) {
		ASSERT_STR(p.h.range, "bytes=1-2");
		ASSERT_STR(p.h.if_range, "\"a\"");
		ASSERT_STR(p.h.if_match, "\"b\"");
		ASSERT_STR(p.h.if_none_match, "*");
		ASSERT_STR(p.h.want_repr_digest, "sha-256=1");
		CU_ASSERT_PTR_NULL(p.h.content_range);
	}
	parsed_free(&p);
	PARSE_HEADER(&p, "Content-Range: bytes 0-9/10\r\ncontent-range: bytes 0-9/10");
	CU_ASSERT_EQUAL(p.rc, 1);
	if (p.rc == 1)
		ASSERT_STR(p.h.content_range, "bytes 0-9/10");
	parsed_free(&p);
	HEADER_REFUSED("Content-Range: bytes 0-9/10\r\nContent-Range: bytes 0-9/11", 400);
}

static void
test_expect(void)
{
	static const struct {
		const char *header;
		int cont, other;
	} cases[] = {
		{ "Expect: 100-continue", 1, 0 },
		{ "Expect: 100-Continue", 1, 0 },
		{ "expect: 100-CONTINUE", 1, 0 },
		{ "EXPECT:100-continue  \t", 1, 0 },
		{ "Expect: 200-ok", 0, 1 },
		{ "Expect: 100-continued", 0, 1 },
		{ "Expect: 100-continue, foo", 0, 1 },
		{ "Expect: 100", 0, 1 },
		{ "Expect:", 0, 0 },
		{ "Expect:   ", 0, 0 },
		{ "X-Expect: 100-continue", 0, 0 },
		{ "Host: h", 0, 0 },
	};
	struct parsed p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PARSE_HEADER(&p, cases[i].header);
		if (p.rc == 1) {
			CU_ASSERT_EQUAL(p.h.expect_continue, cases[i].cont);
			CU_ASSERT_EQUAL(p.h.expect_other, cases[i].other);
		}
		parsed_free(&p);
	}
}

static void
test_connection(void)
{
	static const struct {
		const char *header;
		int close, keep_alive;
	} cases[] = {
		{ "Connection: close", 1, 0 },
		{ "Connection: Close", 1, 0 },
		{ "connection: CLOSE  ", 1, 0 },
		{ "Connection: keep-alive", 0, 1 },
		{ "Connection: Keep-Alive", 0, 1 },
		{ "Connection: Keep-Alive, Upgrade", 0, 1 },
		{ "Connection: Upgrade, Keep-Alive", 0, 1 },
		{ "Connection: Upgrade,close", 1, 0 },
		{ "Connection: ,, close ,,", 1, 0 },
		{ "Connection: TE,\tclose", 1, 0 },
		{ "Connection: close, keep-alive", 1, 1 },
		{ "Connection: Upgrade", 0, 0 },
		{ "Connection: closed", 0, 0 },
		{ "Connection: keep-alive-ish", 0, 0 },
		{ "Connection: clos", 0, 0 },
		{ "Connection:", 0, 0 },
		{ "Connection: keep-alive\r\nConnection: close", 1, 1 },
		{ "X-Connection: close", 0, 0 },
	};
	struct parsed p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PARSE_HEADER(&p, cases[i].header);
		if (p.rc == 1) {
			CU_ASSERT_EQUAL(p.h.conn_close, cases[i].close);
			CU_ASSERT_EQUAL(p.h.conn_keep_alive, cases[i].keep_alive);
		}
		parsed_free(&p);
	}
}

static void
test_authorization(void)
{
	static const struct {
		const char *header, *want;
	} cases[] = {
		{ "Authorization: Basic dmE6c2VjcmV0", "Basic dmE6c2VjcmV0" },
		{ "Authorization: Basic dmE6c2VjcmV0   ", "Basic dmE6c2VjcmV0" },
		{ "Authorization:\t Bearer a.b.c \t \t", "Bearer a.b.c" },
		{ "authorization:Basic  x", "Basic  x" },
		{ "AUTHORIZATION: x", "x" },
		{ "Authorization:    ", "" },
		{ "Authorization:", "" },
	};
	struct parsed p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PARSE_HEADER(&p, cases[i].header);
		if (p.rc == 1)
			ASSERT_STR(p.h.authorization, cases[i].want);
		parsed_free(&p);
	}
	PARSE_HEADER(&p, "Proxy-Authorization: Basic x");
	CU_ASSERT_PTR_NULL(p.h.authorization);
	parsed_free(&p);
}

static void
test_bad_header_lines(void)
{
	HEADER_REFUSED("Host : h", 400);
	HEADER_REFUSED("Host\t: h", 400);
	HEADER_REFUSED("Host h", 400);
	HEADER_REFUSED("Host", 400);
	HEADER_REFUSED(": h", 400);
	HEADER_REFUSED(":", 400);
	HEADER_REFUSED("Ho(st: h", 400);
	HEADER_REFUSED("Ho/st: h", 400);
	HEADER_REFUSED("Ho\"st: h", 400);
	HEADER_REFUSED("H\xc3\xa9: h", 400);
	HEADER_REFUSED("Ho\x01st: h", 400);
	HEADER_REFUSED("Ho\x7fst: h", 400);

	/* A name of every tchar is accepted. */
	struct parsed p;
	PARSE_HEADER(&p, "!#$%&'*+-.^_`|~09azAZ: v");
	parsed_free(&p);

	/* Folded (obs-fold) lines: the header block starts or goes on with SP/HTAB. */
	HEADER_REFUSED("X-A: a\r\n b", 400);
	HEADER_REFUSED("X-A: a\r\n\tb", 400);
	HEADER_REFUSED("Content-Length: 5\r\n 5", 400);
	REFUSED("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\n\tHost: h\n\n", 400);
}

/* Every byte of the head but its LFs and the last CR, set to NUL: 400. */
static void
test_nul(void)
{
	struct sb in = { 0 };
	unsigned bad = 0, tried = 0;

	sb_str(&in, "\r\n");
	sb_add(&in, RAW(real_head));
	sb_str(&in, "body");
	size_t head = in.len - 4;
	for (size_t i = 0; i < head; i++) {
		if (in.d[i] == '\n' || i == head - 2)
			continue;
		char *copy = xmalloc(in.len);
		memcpy(copy, in.d, in.len);
		copy[i] = '\0';
		struct parsed p;
		PARSE_N(&p, copy, in.len);
		if (p.rc != -400) {
			if (!bad)
				fprintf(stderr, "\nNUL at %zu: %d\n", i, p.rc);
			bad++;
		}
		tried++;
		parsed_free(&p);
		free(copy);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(tried, head - 11 - 1);

	/* A NUL after the head is body. */
	struct parsed p;
	PARSE(&p, "GET / HTTP/1.1\r\n\r\n\0");
	CU_ASSERT_EQUAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.head_len, 18);
	parsed_free(&p);

	REFUSED("\0GET / HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET\0/ HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\0\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\r\n\0\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\r\nX: \0\r\n\r\n", 400);
	sb_free(&in);
}

static void
test_cr_inside(void)
{
	REFUSED("GET /\r HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\r\r\n\r\n", 400);
	REFUSED("\rGET / HTTP/1.1\r\n\r\n", 400);
	HEADER_REFUSED("X-A: a\rb", 400);
	HEADER_REFUSED("X-A: a\r", 400);
	HEADER_REFUSED("X-A: a\r\r", 400);
	HEADER_REFUSED("X-A\r: a", 400);
	HEADER_REFUSED("X-A: a\rX-B: b", 400);
	HEADER_REFUSED("Authorization: a\rb", 400);
}

static void
test_value_bytes(void)
{
	unsigned bad = 0;
	struct parsed p;

	/* Control bytes (CR has its own test; LF ends the line). */
	for (int c = 1; c < 0x80; c++) {
		if (c != 0x7f && (c >= 0x20 || c == '\t' || c == '\n'))
			continue;
		for (int where = 0; where < 3; where++) {
			char line[16];
			int n = where == 0 ? snprintf(line, sizeof(line), "X-A: %cab", c)
			      : where == 1 ? snprintf(line, sizeof(line), "X-A: a%cb", c)
					   : snprintf(line, sizeof(line), "X-A: ab%c", c);
			struct sb b = { 0 };
			sb_str(&b, "GET / HTTP/1.1\r\n");
			sb_add(&b, line, (size_t)n);
			sb_str(&b, "\r\n\r\n");
			PARSE_N(&p, b.d, b.len);
			if (p.rc != -400) {
				if (!bad)
					fprintf(stderr, "\nbyte %#x at %d: %d\n", c, where, p.rc);
				bad++;
			}
			parsed_free(&p);
			sb_free(&b);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);

	/* HTAB and SP inside a value are kept. */
	PARSE_HEADER(&p, "Authorization: a\tb  c");
	ASSERT_STR(p.h.authorization, "a\tb  c");
	parsed_free(&p);

	/* obs-text (0x80 to 0xFF) is kept as it is, everywhere in a value. */
	for (int c = 0x80; c <= 0xff; c++) {
		char header[32];
		snprintf(header, sizeof(header), "Authorization: %cx%cy%c", c, c, c);
		PARSE_HEADER(&p, header);
		if (p.rc == 1 && !str_eq(p.h.authorization, header + 15))
			bad++;
		parsed_free(&p);
	}
	CU_ASSERT_EQUAL(bad, 0);
	PARSE_HEADER(&p, "Authorization: Basic \xc3\xa9t\xc3\xa9");
	ASSERT_STR(p.h.authorization, "Basic \xc3\xa9t\xc3\xa9");
	parsed_free(&p);
}

static void
test_request_line_errors(void)
{
	REFUSED("GET /\r\n\r\n", 400);           /* no version */
	REFUSED("GET / \r\n\r\n", 400);
	REFUSED("GET\r\n\r\n", 400);
	REFUSED("GET \r\n\r\n", 400);
	REFUSED("/ HTTP/1.1\r\n\r\n", 400);
	REFUSED(" / HTTP/1.1\r\n\r\n", 400);
	REFUSED(" GET / HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET  / HTTP/1.1\r\n\r\n", 400);  /* two spaces */
	REFUSED("GET /  HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET\t/ HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET /\tHTTP/1.1\r\n\r\n", 400);
	REFUSED("GET / http/1.1\r\n\r\n", 400);   /* lowercase */
	REFUSED("GET / Http/1.1\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1 \r\n\r\n", 400);  /* trailing junk */
	REFUSED("GET / HTTP/1.1x\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\t\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.10\r\n\r\n", 400);
	REFUSED("GET / HTTP/11.1\r\n\r\n", 400);
	REFUSED("GET / HTTP/1\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.\r\n\r\n", 400);
	REFUSED("GET / HTTP/\r\n\r\n", 400);
	REFUSED("GET / HTTP\r\n\r\n", 400);
	REFUSED("GET / HTTP/a.1\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.a\r\n\r\n", 400);
	REFUSED("GET / HTTP/1,1\r\n\r\n", 400);
	REFUSED("GET / x HTTP/1.1\r\n\r\n", 400);
	REFUSED("G(T / HTTP/1.1\r\n\r\n", 400);    /* method with a bad char */
	REFUSED("GE/T / HTTP/1.1\r\n\r\n", 400);
	REFUSED("G\xc3\x89T / HTTP/1.1\r\n\r\n", 400);
	REFUSED("G\x01T / HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET  HTTP/1.1\r\n\r\n", 400);     /* empty target */
	REFUSED("GET /\x01 HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET /\x7f HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET /a\x1f HTTP/1.1\r\n\r\n", 400);
	REFUSED("HTTP/1.1 200 OK\r\n\r\n", 400);   /* a response */

	/* A method of every tchar, and a target with obs-text, are fine. */
	struct parsed p;
	PARSE(&p, "!#$%&'*+-.^_`|~ /\xe2\x82\xac HTTP/1.1\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	ASSERT_STR(p.h.method, "!#$%&'*+-.^_`|~");
	ASSERT_STR(p.h.target, "/\xe2\x82\xac");
	parsed_free(&p);
}

static void
test_versions(void)
{
	struct parsed p;

	PARSE(&p, "GET / HTTP/1.0\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.minor, 0);
	parsed_free(&p);
	PARSE(&p, "GET / HTTP/1.1\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.minor, 1);
	parsed_free(&p);

	/* Well-formed, but neither 1.0 nor 1.1. */
	REFUSED("GET / HTTP/2.0\r\n\r\n", 505);
	REFUSED("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
	REFUSED("GET / HTTP/1.2\r\n\r\n", 505);
	REFUSED("GET / HTTP/1.9\r\n\r\n", 505);
	REFUSED("GET / HTTP/0.9\r\n\r\n", 505);
	REFUSED("GET / HTTP/0.0\r\n\r\n", 505);
	REFUSED("GET / HTTP/3.0\r\n\r\n", 505);
	REFUSED("GET / HTTP/9.1\r\n\r\n", 505);
	/* HTTP/0.9 itself has no version: a malformed request line. */
	REFUSED("GET /\r\n\r\n", 400);
	REFUSED("GET /index.html\n\n", 400);
}

static void
test_targets(void)
{
	static const struct {
		const char *line, *want;
	} cases[] = {
		{ "POST /RPC2 HTTP/1.1\r\n\r\n", "/RPC2" },
		{ "POST http://h/RPC2 HTTP/1.1\r\n\r\n", "/RPC2" },
		{ "POST http://h HTTP/1.1\r\n\r\n", "/" },
		{ "POST http://h/ HTTP/1.1\r\n\r\n", "/" },
		{ "GET https://h:8/x?y HTTP/1.1\r\n\r\n", "/x?y" },
		{ "GET HTTPS://h HTTP/1.1\r\n\r\n", "/" },
		{ "GET HtTp://localhost:8080/a/b/c HTTP/1.1\r\n\r\n", "/a/b/c" },
		{ "GET https://[::1]:443/RPC2 HTTP/1.1\r\n\r\n", "/RPC2" },
		{ "GET http:// HTTP/1.1\r\n\r\n", "/" },
		{ "GET https:// HTTP/1.1\r\n\r\n", "/" },
		/* The authority ends at '?' too: an empty path with a query. */
		{ "GET http://h?x HTTP/1.1\r\n\r\n", "/?x" },
		{ "GET http://h?a/b HTTP/1.1\r\n\r\n", "/?a/b" },
		{ "GET https://h:8?q=/RPC2 HTTP/1.1\r\n\r\n", "/?q=/RPC2" },
		{ "GET http://?x HTTP/1.1\r\n\r\n", "/?x" },
		{ "GET http://h/a?b/c HTTP/1.1\r\n\r\n", "/a?b/c" },
		{ "OPTIONS * HTTP/1.1\r\n\r\n", "*" },
		{ "GET /a?b=c&d=%20 HTTP/1.1\r\n\r\n", "/a?b=c&d=%20" },
		{ "GET // HTTP/1.1\r\n\r\n", "//" },
	};
	struct parsed p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_len_at(&p, cases[i].line, strlen(cases[i].line), strlen(cases[i].line),
			     __LINE__);
		CU_ASSERT_EQUAL(p.rc, 1);
		if (p.rc == 1) {
			ASSERT_STR(p.h.target, cases[i].want);
			CU_ASSERT_EQUAL(p.h.head_len, strlen(cases[i].line));
		}
		parsed_free(&p);
	}

	REFUSED("GET RPC2 HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET h/x HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET ** HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET *x HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET ftp://h/x HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET http:/h/x HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET http:h HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET ?x HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET h:80 HTTP/1.1\r\n\r\n", 400);
}

static void
test_length_limits(void)
{
	struct parsed p;
	struct sb b = { 0 };

	/* Methods of 15 tchars: fine; 16 and more: refused. */
	sb_fill(&b, 'M', VA_HTTP_METHOD_MAX - 1);
	sb_str(&b, " / HTTP/1.1\r\n\r\n");
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(strlen(p.h.method), VA_HTTP_METHOD_MAX - 1);
	parsed_free(&p);
	sb_free(&b);
	for (size_t n = VA_HTTP_METHOD_MAX; n <= VA_HTTP_METHOD_MAX + 40; n += 20) {
		sb_fill(&b, 'M', n);
		sb_str(&b, " / HTTP/1.1\r\n\r\n");
		REFUSED_N(b.d, b.len, 400);
		sb_free(&b);
	}

	/* Targets of 2048 bytes: fine; 2049: refused. */
	sb_str(&b, "GET /");
	sb_fill(&b, 'a', VA_HTTP_TARGET_MAX - 1);
	sb_str(&b, " HTTP/1.1\r\n\r\n");
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(strlen(p.h.target), VA_HTTP_TARGET_MAX);
	CU_ASSERT_EQUAL(memcmp(p.h.target, b.d + 4, VA_HTTP_TARGET_MAX), 0);
	parsed_free(&p);
	sb_free(&b);

	sb_str(&b, "GET /");
	sb_fill(&b, 'a', VA_HTTP_TARGET_MAX);
	sb_str(&b, " HTTP/1.1\r\n\r\n");
	REFUSED_N(b.d, b.len, 400);
	sb_free(&b);

	sb_str(&b, "GET /");
	sb_fill(&b, 'a', 8000);
	sb_str(&b, " HTTP/1.1\r\n\r\n");
	REFUSED_N(b.d, b.len, 400);
	sb_free(&b);
}

/* A head with nheaders header lines; complete (with an empty line) or not. */
static struct sb
head_with_lines(unsigned nheaders, bool complete)
{
	struct sb b = { 0 };

	sb_str(&b, "POST /RPC2 HTTP/1.1\r\n");
	for (unsigned i = 0; i < nheaders; i++)
		sb_printf(&b, "X-H%u: %u\r\n", i, i);
	if (complete)
		sb_str(&b, "\r\nbody");
	return b;
}

static void
test_header_count(void)
{
	struct parsed p;
	struct sb b;

	b = head_with_lines(VA_HTTP_MAX_HEADERS, true);
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.head_len, b.len - 4);
	parsed_free(&p);
	sb_free(&b);

	b = head_with_lines(VA_HTTP_MAX_HEADERS + 1, true);
	REFUSED_N(b.d, b.len, 431);
	sb_free(&b);
	b = head_with_lines(200, true);
	REFUSED_N(b.d, b.len, 431);
	sb_free(&b);

	/* Incomplete: 64 lines may yet end; 65 lines cannot. */
	b = head_with_lines(VA_HTTP_MAX_HEADERS, false);
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	sb_str(&b, "\r"); /* maybe the empty line's start */
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	sb_str(&b, "\n");
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL(p.rc, 1);
	parsed_free(&p);
	sb_free(&b);

	b = head_with_lines(VA_HTTP_MAX_HEADERS, false);
	sb_str(&b, "X-H64: 6"); /* the 65th, not yet whole */
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	sb_str(&b, "4\r\n");
	REFUSED_N(b.d, b.len, 431);
	sb_free(&b);

	b = head_with_lines(VA_HTTP_MAX_HEADERS + 1, false);
	REFUSED_N(b.d, b.len, 431);
	sb_free(&b);

	/* Bare LF lines count the same. */
	b = head_with_lines(VA_HTTP_MAX_HEADERS + 1, true);
	struct sb lf = bare_lf(b.d, b.len);
	REFUSED_N(lf.d, lf.len, 431);
	sb_free(&lf);
	sb_free(&b);
	b = head_with_lines(VA_HTTP_MAX_HEADERS, true);
	lf = bare_lf(b.d, b.len);
	PARSE_N(&p, lf.d, lf.len);
	CU_ASSERT_EQUAL(p.rc, 1);
	parsed_free(&p);
	sb_free(&lf);
	sb_free(&b);
}

/* "GET / HTTP/1.1\r\nX-Pad: aaa...\r\n" of total bytes, then end (or not). */
static struct sb
padded_head(size_t total, const char *end)
{
	struct sb b = { 0 };
	static const char start[] = "GET / HTTP/1.1\r\nX-Pad: ";

	sb_str(&b, start);
	sb_fill(&b, 'a', total - (sizeof(start) - 1) - 2 - strlen(end));
	sb_str(&b, "\r\n");
	sb_str(&b, end);
	if (b.len != total)
		abort();
	return b;
}

static void
test_head_size(void)
{
	struct parsed p;
	struct sb b;

	/* Exactly VA_HTTP_HEAD_MAX bytes, complete: accepted. */
	b = padded_head(VA_HTTP_HEAD_MAX, "\r\n");
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL_FATAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.head_len, VA_HTTP_HEAD_MAX);
	ASSERT_STR(p.h.target, "/");
	parsed_free(&p);
	/* The same with len over the limit, the buffer ending at it. */
	parse_len_at(&p, b.d, b.len, VA_HTTP_HEAD_MAX + 4096, __LINE__);
	CU_ASSERT_EQUAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.head_len, VA_HTTP_HEAD_MAX);
	parsed_free(&p);
	parse_len_at(&p, b.d, b.len, SIZE_MAX, __LINE__);
	CU_ASSERT_EQUAL(p.rc, 1);
	parsed_free(&p);
	sb_free(&b);

	/* The same with bare LFs and body bytes after it. */
	b = padded_head(VA_HTTP_HEAD_MAX - 2, "");
	b.len -= 2;
	sb_str(&b, "\n\nBODY");
	PARSE_N(&p, b.d, b.len);
	CU_ASSERT_EQUAL(p.rc, 1);
	CU_ASSERT_EQUAL(p.h.head_len, VA_HTTP_HEAD_MAX - 2);
	parsed_free(&p);
	sb_free(&b);

	/* One byte more: the empty line ends past the limit. */
	b = padded_head(VA_HTTP_HEAD_MAX + 1, "\r\n");
	REFUSED_N(b.d, b.len, 431);
	/* ... and with all of it but its last byte: still 431. */
	REFUSED_N(b.d, b.len - 1, 431);
	REFUSED_N(b.d, VA_HTTP_HEAD_MAX, 431);
	/* One byte short of the limit: wait. */
	PARSE_N(&p, b.d, VA_HTTP_HEAD_MAX - 1);
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	sb_free(&b);

	/* No end within the limit; the buffer ends at the limit but len says more. */
	b = padded_head(VA_HTTP_HEAD_MAX, "X");
	parse_len_at(&p, b.d, VA_HTTP_HEAD_MAX, VA_HTTP_HEAD_MAX + 1, __LINE__);
	CU_ASSERT_EQUAL(p.rc, -431);
	parsed_free(&p);
	parse_len_at(&p, b.d, VA_HTTP_HEAD_MAX, SIZE_MAX, __LINE__);
	CU_ASSERT_EQUAL(p.rc, -431);
	parsed_free(&p);
	sb_free(&b);

	/* The empty line's CR is the last byte in the limit: no end within it. */
	b = padded_head(VA_HTTP_HEAD_MAX + 1, "\r\n");
	parse_len_at(&p, b.d, VA_HTTP_HEAD_MAX, VA_HTTP_HEAD_MAX + 1, __LINE__);
	CU_ASSERT_EQUAL(p.rc, -431);
	parsed_free(&p);
	sb_free(&b);

	/* Only empty lines up to the limit. */
	b = (struct sb){ 0 };
	for (size_t i = 0; i < VA_HTTP_HEAD_MAX / 2; i++)
		sb_str(&b, "\r\n");
	REFUSED_N(b.d, b.len, 431);
	parse_len_at(&p, b.d, b.len, VA_HTTP_HEAD_MAX * 2, __LINE__);
	CU_ASSERT_EQUAL(p.rc, -431);
	parsed_free(&p);
	PARSE_N(&p, b.d, b.len - 1);
	CU_ASSERT_EQUAL(p.rc, 0);
	parsed_free(&p);
	sb_free(&b);
}

static void
test_reason(void)
{
	ASSERT_STR(va_http_reason(200), "OK");
	ASSERT_STR(va_http_reason(404), "Not Found");
	ASSERT_STR(va_http_reason(413), "Content Too Large");
	ASSERT_STR(va_http_reason(999), "Unknown");
	ASSERT_STR(va_http_reason(100), "Continue");
	ASSERT_STR(va_http_reason(400), "Bad Request");
	ASSERT_STR(va_http_reason(417), "Expectation Failed");
	ASSERT_STR(va_http_reason(431), "Request Header Fields Too Large");
	ASSERT_STR(va_http_reason(505), "HTTP Version Not Supported");
	ASSERT_STR(va_http_reason(0), "Unknown");
	ASSERT_STR(va_http_reason(-400), "Unknown");
	ASSERT_STR(va_http_reason(299), "Unknown");
	/* The file streams' (host/proxy/files.c). */
	ASSERT_STR(va_http_reason(201), "Created");
	ASSERT_STR(va_http_reason(206), "Partial Content");
	ASSERT_STR(va_http_reason(304), "Not Modified");
	ASSERT_STR(va_http_reason(409), "Conflict");
	ASSERT_STR(va_http_reason(412), "Precondition Failed");
	ASSERT_STR(va_http_reason(416), "Range Not Satisfiable");
	ASSERT_STR(va_http_reason(507), "Insufficient Storage");
}

/*
 * Random changes to the realistic head: whatever comes out, the general
 * promises hold (parse_at checks them), a 1 does not depend on the bytes
 * after the head, and every shorter prefix of an accepted head waits.
 */
static void
test_random_mutations(void)
{
	static const char alphabet[] = "\r\n\r\n\0 \t:/,aZ0-19Hh*\x01\x7f\x80\xff";
	struct rng r = { 0x5eed1234abcdULL };
	unsigned counts[5] = { 0 };
	unsigned bad_prefix = 0, bad_again = 0;

	for (int iter = 0; iter < 20000; iter++) {
		struct sb in = { 0 };
		sb_add(&in, RAW(real_head));
		sb_str(&in, "<body/>");
		int nmut = 1 + (int)rng_below(&r, 4);
		for (int m = 0; m < nmut; m++) {
			size_t at = rng_below(&r, in.len);
			switch (rng_below(&r, 3)) {
			case 0:
				in.d[at] = alphabet[rng_below(&r, sizeof(alphabet) - 1)];
				break;
			case 1: /* delete a byte */
				memmove(in.d + at, in.d + at + 1, in.len - at - 1);
				in.len--;
				break;
			default: /* a random byte */
				in.d[at] = (char)rng_below(&r, 256);
				break;
			}
		}
		struct parsed p;
		PARSE_N(&p, in.d, in.len);
		counts[p.rc == 1 ? 0 : p.rc == 0 ? 1 : p.rc == -400 ? 2 : p.rc == -431 ? 3 : 4]++;
		if (p.rc == 1) {
			size_t hl = p.h.head_len;
			struct parsed q;
			/* Just the head: the same. */
			PARSE_N(&q, in.d, hl);
			if (q.rc != 1 || q.h.head_len != hl ||
			    strcmp(q.h.method, p.h.method) != 0 ||
			    strcmp(q.h.target, p.h.target) != 0 ||
			    q.h.content_length != p.h.content_length)
				bad_again++;
			parsed_free(&q);
			/* A shorter prefix: wait. */
			size_t k = rng_below(&r, hl);
			PARSE_N(&q, in.d, k);
			if (q.rc != 0)
				bad_prefix++;
			parsed_free(&q);
		}
		parsed_free(&p);
		sb_free(&in);
	}
	CU_ASSERT_EQUAL(bad_again, 0);
	CU_ASSERT_EQUAL(bad_prefix, 0);
	/* The mutations reach acceptance, waiting and 400 alike. */
	CU_ASSERT_TRUE(counts[0] > 1000);
	CU_ASSERT_TRUE(counts[1] > 100);
	CU_ASSERT_TRUE(counts[2] > 1000);
}

/* --- main ------------------------------------------------------------------- */

static const struct va_test tests[] = {
	{ "minimal POST", test_minimal },
	{ "every split point", test_every_split },
	{ "CRLF and bare LF", test_line_ends },
	{ "leading empty lines", test_leading_empty_lines },
	{ "body untouched", test_body_untouched },
	{ "pipelined requests", test_pipelined },
	{ "Content-Length", test_content_length },
	{ "Transfer-Encoding", test_transfer_encoding },
	{ "stream headers", test_stream_headers },
	{ "Expect", test_expect },
	{ "Connection", test_connection },
	{ "Authorization", test_authorization },
	{ "bad and folded header lines", test_bad_header_lines },
	{ "NUL anywhere", test_nul },
	{ "CR inside a line", test_cr_inside },
	{ "control bytes and obs-text in values", test_value_bytes },
	{ "request line errors", test_request_line_errors },
	{ "HTTP versions", test_versions },
	{ "request targets", test_targets },
	{ "method and target length", test_length_limits },
	{ "header lines 64/65", test_header_count },
	{ "head size 16384", test_head_size },
	{ "reason phrases", test_reason },
	{ "20000 random mutations", test_random_mutations },
};

int
main(void)
{
	return va_test_run("http-parse", VA_TESTS(tests));
}
