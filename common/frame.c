/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "frame.h"
#include "stuff.h"
#include "tchar.h"

/*
 * The parser is a state machine fed arbitrary slices.  It never looks
 * ahead: every decision is taken on the byte that makes it necessary (the
 * 0xFF, the byte past a limit, the LF that ends a line, the last body
 * byte), so any slicing of the same input gives the same frames and
 * errors at the same byte positions.
 *
 *   ST_SKIP        outside a frame; skip up to the next 0xFF.
 *   ST_START_LINE  after the 0xFF; collect the start line.
 *   ST_HEADERS     collect header lines up to the empty line; then check
 *                  Content-Length and go to ST_BODY (or deliver an empty
 *                  body at once).
 *   ST_BODY        count Content-Length bytes down into a buffer that grows
 *                  as they arrive; deliver the frame after the last one.
 *                  A stuffed body (Content-Encoding: va-stuffed) is decoded
 *                  on the way from the input into that buffer (stuff.h),
 *                  so it is copied once, like any other body.
 *
 * A 0xFF in any state but ST_SKIP tears the frame being read: it is
 * dropped (VA_FRAME_ERR_TORN) and the 0xFF, not consumed, starts the next
 * frame from ST_SKIP.  Any other error drops the frame and leaves the
 * parser in ST_SKIP after the byte that revealed it.
 *
 * A frame callback may pause the parser (va_frame_parser_pause): feed
 * then returns after that frame, with the bytes it consumed.
 */

/* The first body allocation, unless the claimed length is smaller. */
#define BODY_INITIAL_CAP (64 * 1024)

/*
 * The header has no error code for an allocation failure.  A frame that
 * cannot be held in memory is reported as too large: the peer may retry
 * with less, and the receiver can answer it (by its tag, when the header
 * block was complete) like any frame over the maximum.
 */
#define ERR_NOMEM VA_FRAME_ERR_TOO_LARGE

enum parser_state {
	ST_SKIP,
	ST_START_LINE,
	ST_HEADERS,
	ST_BODY,
};

struct va_frame_parser {
	struct va_frame_parser_ops ops;
	void *opaque;
	size_t max_body;
	struct va_frame_stats stats;

	enum parser_state state;
	/*
	 * The frame being read.  cur.body, once allocated, has body_cap
	 * bytes and holds cur.body_len received bytes and a NUL.
	 */
	struct va_frame cur;
	/*
	 * While the head is read, its strings (NUL-terminated) collect in
	 * strs and the frame's string fields are NULL: offsets into strs
	 * stand for them.  At the blank line they go into the frame's one
	 * block (va_frame.head_block), one malloc instead of one per string.
	 * Every string is a part of a line of the head, plus its NUL, and
	 * the line's LF or separators pay for that NUL: strs_len <=
	 * head_bytes <= VA_FRAME_MAX_HEADER_BYTES (checked all the same).
	 */
	size_t strs_len;
	size_t off_method, off_target, off_reason; /* SIZE_MAX: none */
	size_t nh;                                 /* headers read */
	struct {
		size_t name, value;
	} off_headers[VA_FRAME_MAX_HEADERS];
	size_t body_cap;
	bool have_length;
	uint64_t length;     /* Content-Length, once have_length */
	bool stuffed;        /* Content-Encoding: va-stuffed was seen */
	uint64_t wire_got;   /* stuffed body: bytes of the wire consumed */
	struct va_unstuff us;
	bool feeding;        /* inside va_frame_parser_feed */
	bool paused;         /* va_frame_parser_pause was called in a callback */
	size_t head_bytes;   /* bytes after the 0xFF, up to the blank line's LF */
	/*
	 * The line being collected, without its LF.  head_bytes is checked
	 * before a byte is stored, so line_len <= VA_FRAME_MAX_HEADER_BYTES
	 * and the array cannot overflow.
	 */
	size_t line_len;
	char line[VA_FRAME_MAX_HEADER_BYTES + 1];
	char strs[VA_FRAME_MAX_HEADER_BYTES + 1];
};

/* --- character classes ---------------------------------------------------- */

/* The characters of a request method: uppercase letters, digits, - and _. */
static bool
is_method_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Visible ASCII: the characters of a request target. */
static bool
is_vchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* Text of a header value or reason phrase: no control byte but tab. */
static bool
is_text(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* --- small helpers ------------------------------------------------------- */

/* Appends s[0..n) and a NUL to the head's strings; its offset, or SIZE_MAX. */
static size_t
strs_add(va_frame_parser *p, const char *s, size_t n)
{
	size_t at = p->strs_len;

	if (n >= sizeof(p->strs) - at)
		return SIZE_MAX; /* cannot happen (see strs): refused, not overrun */
	memcpy(p->strs + at, s, n);
	p->strs[at + n] = '\0';
	p->strs_len = at + n + 1;
	return at;
}

/* Frees what f owns and leaves it empty; f itself is not freed. */
static void
frame_clear(struct va_frame *f)
{
	/* The common case of a frame torn at once (input full of 0xFF):
	 * nothing to free. */
	if (!f->method && !f->target && !f->reason && !f->headers && !f->body &&
	    !f->head_block) {
		memset(f, 0, sizeof(*f));
		return;
	}
	if (f->head_block) { /* the parser's: strings and array in one */
		free(f->head_block);
		free(f->body);
		memset(f, 0, sizeof(*f));
		return;
	}
	free(f->method);
	free(f->target);
	free(f->reason);
	for (size_t i = 0; i < f->nheaders; i++) {
		free(f->headers[i].name);
		free(f->headers[i].value);
	}
	free(f->headers);
	free(f->body);
	memset(f, 0, sizeof(*f));
}

/* Forgets the frame being read (freeing it) and its counters. */
static void
reset_frame(va_frame_parser *p)
{
	frame_clear(&p->cur);
	p->strs_len = 0;
	p->off_method = p->off_target = p->off_reason = SIZE_MAX;
	p->nh = 0;
	p->body_cap = 0;
	p->have_length = false;
	p->length = 0;
	p->stuffed = false;
	p->wire_got = 0;
	p->us.esc = 0;
	p->head_bytes = 0;
	p->line_len = 0;
}

/* --- public frame helpers ------------------------------------------------ */

const char *
va_frame_strerror(enum va_frame_error err)
{
	switch (err) {
	case VA_FRAME_ERR_TORN:
		return "frame torn by a 0xFF (the sender gave up on it)";
	case VA_FRAME_ERR_HEADER_TOO_LARGE:
		return "header block too large";
	case VA_FRAME_ERR_TOO_MANY_HEADERS:
		return "too many header lines";
	case VA_FRAME_ERR_BAD_START_LINE:
		return "malformed start line";
	case VA_FRAME_ERR_BAD_HEADER:
		return "malformed header line";
	case VA_FRAME_ERR_BAD_LENGTH:
		return "malformed Content-Length";
	case VA_FRAME_ERR_DUP_LENGTH:
		return "Content-Length given more than once";
	case VA_FRAME_ERR_NO_LENGTH:
		return "Content-Length missing";
	case VA_FRAME_ERR_TOO_LARGE:
		return "frame too large";
	case VA_FRAME_ERR_TRANSFER_ENCODING:
		return "Transfer-Encoding not allowed";
	case VA_FRAME_ERR_BAD_ENCODING:
		return "unknown or repeated Content-Encoding";
	case VA_FRAME_ERR_BAD_STUFFING:
		return "malformed escape in a stuffed body";
	}
	return "unknown frame error";
}

const char *
va_frame_header(const struct va_frame *f, const char *name)
{
	if (!f || !name)
		return NULL;
	for (size_t i = 0; i < f->nheaders; i++)
		if (strcasecmp(f->headers[i].name, name) == 0)
			return f->headers[i].value;
	return NULL;
}

void
va_frame_free(struct va_frame *f)
{
	if (!f)
		return;
	frame_clear(f);
	free(f);
}

/* --- parser: outcomes ---------------------------------------------------- */

/*
 * Drops the frame being read, counts err and reports it.  The parser is
 * in ST_SKIP before the callback runs, so the callback may discard or
 * change the maximum freely.  head_complete: the blank line was seen, so
 * the start line and headers are handed to the callback (without body).
 */
static void
fail(va_frame_parser *p, enum va_frame_error err, bool head_complete)
{
	struct va_frame partial = p->cur;

	memset(&p->cur, 0, sizeof(p->cur));
	reset_frame(p);
	p->state = ST_SKIP;
	if (err == VA_FRAME_ERR_TORN)
		p->stats.torn++;
	else
		p->stats.errors++;

	free(partial.body);
	partial.body = NULL;
	partial.body_len = 0;
	if (p->ops.error)
		p->ops.error(p->opaque, err, head_complete ? &partial : NULL);
	frame_clear(&partial);
}

/* Hands the complete frame to the callback, which owns it from then on. */
static void
deliver(va_frame_parser *p)
{
	struct va_frame *f = malloc(sizeof(*f));

	if (!f) {
		fail(p, ERR_NOMEM, true);
		return;
	}
	*f = p->cur;
	memset(&p->cur, 0, sizeof(p->cur));
	reset_frame(p);
	p->state = ST_SKIP;
	p->stats.frames++;
	if (p->ops.frame)
		p->ops.frame(p->opaque, f);
	else
		va_frame_free(f);
}

/* --- parser: the header block -------------------------------------------- */

/*
 * "HTTP/1.1 CODE REASON" or "HTTP/1.1 CODE": fills the response fields.
 * Returns 0 or an error.
 */
static enum va_frame_error
parse_status_line(va_frame_parser *p, const char *s, size_t n)
{
	static const char version[] = "HTTP/1.1 ";
	const size_t vlen = sizeof(version) - 1;
	const char *code = s + vlen;

	if (n < vlen + 3 || memcmp(s, version, vlen) != 0)
		return VA_FRAME_ERR_BAD_START_LINE;
	if (code[0] < '1' || code[0] > '9' ||
	    code[1] < '0' || code[1] > '9' ||
	    code[2] < '0' || code[2] > '9')
		return VA_FRAME_ERR_BAD_START_LINE;

	const char *reason = code + 3;
	size_t rlen = n - vlen - 3;
	if (rlen > 0) {
		if (reason[0] != ' ')
			return VA_FRAME_ERR_BAD_START_LINE;
		reason++;
		rlen--;
	}
	for (size_t i = 0; i < rlen; i++)
		if (!is_text((unsigned char)reason[i]))
			return VA_FRAME_ERR_BAD_START_LINE;

	p->off_reason = strs_add(p, reason, rlen);
	if (p->off_reason == SIZE_MAX)
		return VA_FRAME_ERR_HEADER_TOO_LARGE;
	p->cur.kind = VA_FRAME_RESPONSE;
	p->cur.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 +
			(code[2] - '0');
	return 0;
}

/* "METHOD TARGET HTTP/1.1": fills the request fields. */
static enum va_frame_error
parse_request_line(va_frame_parser *p, const char *s, size_t n)
{
	static const char version[] = " HTTP/1.1";
	const size_t vlen = sizeof(version) - 1;
	size_t mlen = 0, tlen = 0;

	while (mlen < n && is_method_char((unsigned char)s[mlen]))
		mlen++;
	if (mlen == 0 || mlen == n || s[mlen] != ' ')
		return VA_FRAME_ERR_BAD_START_LINE;
	const char *target = s + mlen + 1;
	size_t rest = n - mlen - 1;
	while (tlen < rest && is_vchar((unsigned char)target[tlen]))
		tlen++;
	if (tlen == 0 || rest - tlen != vlen ||
	    memcmp(target + tlen, version, vlen) != 0)
		return VA_FRAME_ERR_BAD_START_LINE;

	p->off_method = strs_add(p, s, mlen);
	p->off_target = strs_add(p, target, tlen);
	if (p->off_method == SIZE_MAX || p->off_target == SIZE_MAX)
		return VA_FRAME_ERR_HEADER_TOO_LARGE;
	p->cur.kind = VA_FRAME_REQUEST;
	p->cur.status = 0;
	return 0;
}

static enum va_frame_error
parse_start_line(va_frame_parser *p, const char *s, size_t n)
{
	if (n >= 5 && memcmp(s, "HTTP/", 5) == 0)
		return parse_status_line(p, s, n);
	return parse_request_line(p, s, n);
}

/*
 * Content-Length: 1 to 20 decimal digits (spaces and tabs around them are
 * already trimmed), no sign, no overflow.  Returns 0 or BAD_LENGTH.
 */
static enum va_frame_error
parse_length(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return VA_FRAME_ERR_BAD_LENGTH;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return VA_FRAME_ERR_BAD_LENGTH;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return VA_FRAME_ERR_BAD_LENGTH;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Appends one header (copies of name and value) to the head's strings. */
static enum va_frame_error
add_header(va_frame_parser *p, const char *name, size_t nlen,
	   const char *value, size_t vlen)
{
	size_t n = strs_add(p, name, nlen);
	size_t v = n == SIZE_MAX ? SIZE_MAX : strs_add(p, value, vlen);

	if (v == SIZE_MAX)
		return VA_FRAME_ERR_HEADER_TOO_LARGE;
	p->off_headers[p->nh].name = n;
	p->off_headers[p->nh].value = v;
	p->nh++;
	return 0;
}

/*
 * The head's strings and the headers array into the frame's one block
 * (the frame's string fields point into it).  -1 when out of memory.
 */
static int
head_to_block(va_frame_parser *p)
{
	struct va_frame *f = &p->cur;
	size_t hsz = p->nh * sizeof(struct va_frame_header);
	uint8_t *b = malloc(hsz + p->strs_len + 1);

	if (!b)
		return -1;
	char *strs = (char *)b + hsz;
	memcpy(strs, p->strs, p->strs_len);
	f->head_block = b;
	f->headers = p->nh ? (struct va_frame_header *)(void *)b : NULL;
	f->nheaders = p->nh;
	for (size_t i = 0; i < p->nh; i++) {
		f->headers[i].name = strs + p->off_headers[i].name;
		f->headers[i].value = strs + p->off_headers[i].value;
	}
	f->method = p->off_method == SIZE_MAX ? NULL : strs + p->off_method;
	f->target = p->off_target == SIZE_MAX ? NULL : strs + p->off_target;
	f->reason = p->off_reason == SIZE_MAX ? NULL : strs + p->off_reason;
	return 0;
}

/* "Name: value" (s[0..n), n > 0, line end removed). */
static enum va_frame_error
parse_header_line(va_frame_parser *p, const char *s, size_t n)
{
	size_t nlen = 0;

	if (p->nh >= VA_FRAME_MAX_HEADERS)
		return VA_FRAME_ERR_TOO_MANY_HEADERS;
	/* A leading space or tab is obsolete line folding: refused. */
	while (nlen < n && va_is_tchar((unsigned char)s[nlen]))
		nlen++;
	if (nlen == 0 || nlen == n || s[nlen] != ':')
		return VA_FRAME_ERR_BAD_HEADER;

	const char *value = s + nlen + 1;
	size_t vlen = n - nlen - 1;
	for (size_t i = 0; i < vlen; i++)
		if (!is_text((unsigned char)value[i]))
			return VA_FRAME_ERR_BAD_HEADER; /* NUL, bare CR, ... */
	while (vlen > 0 && is_ows((unsigned char)value[0])) {
		value++;
		vlen--;
	}
	while (vlen > 0 && is_ows((unsigned char)value[vlen - 1]))
		vlen--;

	if (nlen == strlen("Transfer-Encoding") &&
	    strncasecmp(s, "Transfer-Encoding", nlen) == 0)
		return VA_FRAME_ERR_TRANSFER_ENCODING;
	if (nlen == strlen("Content-Encoding") &&
	    strncasecmp(s, "Content-Encoding", nlen) == 0) {
		/* The one coding the channel knows, once. */
		if (p->stuffed || vlen != strlen(VA_STUFF_CODING) ||
		    strncasecmp(value, VA_STUFF_CODING, vlen) != 0)
			return VA_FRAME_ERR_BAD_ENCODING;
		p->stuffed = true;
	}
	if (nlen == strlen("Content-Length") &&
	    strncasecmp(s, "Content-Length", nlen) == 0) {
		if (p->have_length)
			return VA_FRAME_ERR_DUP_LENGTH;
		enum va_frame_error err = parse_length(value, vlen, &p->length);
		if (err)
			return err;
		p->have_length = true;
	}
	return add_header(p, s, nlen, value, vlen);
}

/*
 * The blank line: the header block is complete.  The maximum is checked
 * here, so va_frame_parser_set_max_body() applies to every frame whose
 * blank line has not been read yet.
 */
static void
end_of_head(va_frame_parser *p)
{
	if (head_to_block(p) < 0) {
		fail(p, ERR_NOMEM, false);
		return;
	}
	if (!p->have_length) {
		fail(p, VA_FRAME_ERR_NO_LENGTH, true);
		return;
	}
	/* length + 1 (the NUL) must fit in a size_t. */
	if (p->length > (uint64_t)p->max_body || p->length >= SIZE_MAX) {
		fail(p, VA_FRAME_ERR_TOO_LARGE, true);
		return;
	}
	/* Never the claimed size up front: it grows as bytes arrive. */
	size_t cap = p->length < BODY_INITIAL_CAP ? (size_t)p->length
						  : BODY_INITIAL_CAP;
	p->cur.body = malloc(cap + 1);
	if (!p->cur.body) {
		fail(p, ERR_NOMEM, true);
		return;
	}
	p->body_cap = cap + 1;
	p->cur.body[0] = 0;
	p->cur.body_len = 0;
	if (p->length == 0)
		deliver(p);
	else
		p->state = ST_BODY;
}

/* A complete line (its LF consumed) of the header block. */
static void
end_of_line(va_frame_parser *p)
{
	const char *s = p->line;
	size_t n = p->line_len;
	enum va_frame_error err;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	p->line_len = 0;
	if (p->state == ST_START_LINE) {
		err = parse_start_line(p, s, n);
		if (!err)
			p->state = ST_HEADERS;
	} else if (n == 0) {
		end_of_head(p);
		return;
	} else {
		err = parse_header_line(p, s, n);
	}
	if (err)
		fail(p, err, false);
}

/* --- parser: one step per state ------------------------------------------ */

/*
 * Each step consumes a prefix of the input and returns its length.  It
 * returns early after any callback, so that the feed loop looks at the
 * state again (a callback may have discarded the frame).
 */

static size_t
feed_skip(va_frame_parser *p, const uint8_t *d, size_t len)
{
	const uint8_t *ff = memchr(d, VA_FRAME_SENTINEL, len);

	if (!ff) {
		p->stats.skipped += len;
		return len;
	}
	size_t k = (size_t)(ff - d);
	p->stats.skipped += k;
	reset_frame(p);
	p->state = ST_START_LINE;
	return k + 1;
}

/*
 * ST_START_LINE and ST_HEADERS: line by line.  The same decisions as
 * looking at one byte after the other (a 0xFF tears, the byte past the
 * head limit is refused, an LF ends the line, whichever comes first),
 * found with memchr and taken on the byte that makes them.
 */
static size_t
feed_head(va_frame_parser *p, const uint8_t *d, size_t len)
{
	/* head_bytes <= the limit: room more bytes may be counted, and the
	 * byte after those is the last one that can matter. */
	size_t room = VA_FRAME_MAX_HEADER_BYTES - p->head_bytes;
	size_t lim = len <= room ? len : room + 1;
	const uint8_t *lf = NULL, *ff = NULL;

	if (d[0] == VA_FRAME_SENTINEL) { /* at once (a run of 0xFF) */
		fail(p, VA_FRAME_ERR_TORN, false);
		return 0;
	}

	/*
	 * The first LF, and a 0xFF before it, in windows that double: the
	 * work is in proportion to where they are, so input full of 0xFF
	 * (each one a frame torn at once) is not scanned again and again.
	 */
	for (size_t from = 0, step = 64; from < lim && !lf && !ff; step *= 2) {
		size_t to = lim - from > step ? from + step : lim;
		lf = memchr(d + from, '\n', to - from);
		ff = memchr(d + from, VA_FRAME_SENTINEL, (lf ? (size_t)(lf - d) : to) - from);
		from = to;
	}
	size_t k = ff ? (size_t)(ff - d) : lf ? (size_t)(lf - d) : lim;
	/* d[0..k) are line bytes; each counts. */
	if (k > room) {
		fail(p, VA_FRAME_ERR_HEADER_TOO_LARGE, false);
		return room + 1;
	}
	memcpy(p->line + p->line_len, d, k);
	p->line_len += k;
	p->head_bytes += k;
	if (ff) {
		fail(p, VA_FRAME_ERR_TORN, false);
		return k; /* the 0xFF starts the next frame */
	}
	if (!lf)
		return len;
	if (k == room) { /* the LF counts too */
		fail(p, VA_FRAME_ERR_HEADER_TOO_LARGE, false);
		return k + 1;
	}
	p->head_bytes++;
	end_of_line(p);
	return k + 1;
}

/* Makes room for extra more body bytes and the NUL, doubling. */
static int
grow_body(va_frame_parser *p, size_t extra)
{
	/* body_len + extra <= length < SIZE_MAX: no overflow below. */
	size_t need = p->cur.body_len + extra + 1;
	size_t limit = (size_t)p->length + 1;
	size_t cap = p->body_cap;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap = cap > limit / 2 ? limit : cap * 2;
	uint8_t *b = realloc(p->cur.body, cap);
	if (!b)
		return -ENOMEM;
	p->cur.body = b;
	p->body_cap = cap;
	return 0;
}

/* A stuffed body: decoded from the input straight into the body buffer. */
static size_t
feed_body_stuffed(va_frame_parser *p, const uint8_t *d, size_t len)
{
	uint64_t want = p->length - p->wire_got;
	size_t n = len < want ? len : (size_t)want;
	size_t out, used;

	/* The decoded bytes are at most as many as the stuffed ones. */
	if (grow_body(p, n) < 0) {
		fail(p, ERR_NOMEM, true);
		return n;
	}
	enum va_unstuff_status r = va_unstuff(&p->us, p->cur.body + p->cur.body_len,
					      d, n, &out, &used);
	p->cur.body_len += out;
	p->cur.body[p->cur.body_len] = 0;
	p->wire_got += used;
	if (r == VA_UNSTUFF_SENTINEL)
		fail(p, VA_FRAME_ERR_TORN, true); /* 0xFF not consumed */
	else if (r == VA_UNSTUFF_BAD)
		fail(p, VA_FRAME_ERR_BAD_STUFFING, true);
	else if (p->wire_got == p->length && p->us.esc)
		fail(p, VA_FRAME_ERR_BAD_STUFFING, true); /* ends in a lone FE */
	else if (p->wire_got == p->length)
		deliver(p);
	return used;
}

static size_t
feed_body(va_frame_parser *p, const uint8_t *d, size_t len)
{
	if (p->stuffed)
		return feed_body_stuffed(p, d, len);
	size_t want = (size_t)p->length - p->cur.body_len;
	size_t n = len < want ? len : want;
	const uint8_t *ff = memchr(d, VA_FRAME_SENTINEL, n);
	size_t take = ff ? (size_t)(ff - d) : n;

	if (take > 0) {
		if (grow_body(p, take) < 0) {
			fail(p, ERR_NOMEM, true);
			return take;
		}
		memcpy(p->cur.body + p->cur.body_len, d, take);
		p->cur.body_len += take;
		p->cur.body[p->cur.body_len] = 0;
	}
	if (ff)
		fail(p, VA_FRAME_ERR_TORN, true); /* 0xFF not consumed */
	else if (p->cur.body_len == p->length)
		deliver(p);
	return take;
}

/* --- parser: public ------------------------------------------------------ */

va_frame_parser *
va_frame_parser_new(size_t max_body, const struct va_frame_parser_ops *ops,
		    void *opaque)
{
	va_frame_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (ops)
		p->ops = *ops;
	p->opaque = opaque;
	p->max_body = max_body;
	p->off_method = p->off_target = p->off_reason = SIZE_MAX;
	p->state = ST_SKIP;
	return p;
}

void
va_frame_parser_free(va_frame_parser *p)
{
	if (!p)
		return;
	frame_clear(&p->cur);
	free(p);
}

void
va_frame_parser_set_max_body(va_frame_parser *p, size_t max_body)
{
	p->max_body = max_body;
}

size_t
va_frame_parser_feed(va_frame_parser *p, const void *data, size_t len)
{
	const uint8_t *d = data;
	size_t total = len;

	p->feeding = true;
	while (len > 0) {
		size_t used = 0;

		switch (p->state) {
		case ST_SKIP:
			used = feed_skip(p, d, len);
			break;
		case ST_START_LINE:
		case ST_HEADERS:
			used = feed_head(p, d, len);
			break;
		case ST_BODY:
			used = feed_body(p, d, len);
			break;
		}
		/*
		 * used is 0 only when a 0xFF tore the frame: the state is
		 * ST_SKIP now, and the next step consumes that 0xFF.
		 */
		d += used;
		len -= used;
		if (p->paused)
			break;
	}
	p->feeding = false;
	p->paused = false;
	return total - len;
}

void
va_frame_parser_pause(va_frame_parser *p)
{
	if (p->feeding)
		p->paused = true;
}

void
va_frame_parser_discard(va_frame_parser *p)
{
	reset_frame(p);
	p->state = ST_SKIP;
}

void
va_frame_parser_stats(const va_frame_parser *p, struct va_frame_stats *st)
{
	*st = p->stats;
}

/* --- writer -------------------------------------------------------------- */

/* No CR, LF or 0xFF (a C string has no NUL inside). */
static bool
is_line_text(const char *s)
{
	return strpbrk(s, "\r\n\xff") == NULL;
}

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!va_is_tchar((unsigned char)*s))
			return false;
	return true;
}

/*
 * Checks the start line and headers; *stuffed tells whether they name
 * the stuffing coding (then the body is stuffed on the way out).
 */
static int
check_head_args(const char *start_line, const struct va_frame_header *headers,
		size_t nheaders, bool *stuffed)
{
	*stuffed = false;
	if (!start_line || !is_line_text(start_line))
		return -EINVAL;
	if (nheaders > 0 && !headers)
		return -EINVAL;
	for (size_t i = 0; i < nheaders; i++) {
		const char *name = headers[i].name;
		const char *value = headers[i].value;

		if (!name || !value || !is_token(name) || !is_line_text(value))
			return -EINVAL;
		/* The names below by their lengths first (14, 17, 16): no
		 * strcasecmp for the others, on the path of every frame. */
		size_t nlen = strlen(name);
		/* The writer adds Content-Length; chunking is refused. */
		if ((nlen == 14 && strcasecmp(name, "Content-Length") == 0) ||
		    (nlen == 17 && strcasecmp(name, "Transfer-Encoding") == 0))
			return -EINVAL;
		/* The parser refuses any other coding, and a repeated one. */
		if (nlen == 16 && strcasecmp(name, "Content-Encoding") == 0) {
			if (*stuffed || strcasecmp(value, VA_STUFF_CODING) != 0)
				return -EINVAL;
			*stuffed = true;
		}
	}
	return 0;
}

/* Appends the head; Content-Length says wire_len.  out->len is restored on failure. */
static int
append_head(struct va_buf *out, const char *start_line,
	    const struct va_frame_header *headers, size_t nheaders, size_t wire_len)
{
	static const uint8_t sentinel = VA_FRAME_SENTINEL;
	/* "Content-Length: " + at most 20 digits + 2 line ends, written
	 * backwards from the end (no printf on the path of every frame). */
	char length[48];
	char *e = length + sizeof(length);
	*--e = '\n';
	*--e = '\r';
	*--e = '\n';
	*--e = '\r';
	do
		*--e = (char)('0' + wire_len % 10);
	while ((wire_len /= 10) > 0);
	e -= strlen("Content-Length: ");
	memcpy(e, "Content-Length: ", strlen("Content-Length: "));
	size_t n = (size_t)(length + sizeof(length) - e);

	size_t old_len = out->len;
	if (va_buf_append(out, &sentinel, 1) < 0 ||
	    va_buf_append_str(out, start_line) < 0 ||
	    va_buf_append(out, "\r\n", 2) < 0)
		goto fail;
	for (size_t i = 0; i < nheaders; i++) {
		if (va_buf_append_str(out, headers[i].name) < 0 ||
		    va_buf_append(out, ": ", 2) < 0 ||
		    va_buf_append_str(out, headers[i].value) < 0 ||
		    va_buf_append(out, "\r\n", 2) < 0)
			goto fail;
	}
	if (va_buf_append(out, e, n) < 0)
		goto fail;
	return 0;

fail:
	/* Only len moved; the bytes before it are as they were. */
	out->len = old_len;
	return -ENOMEM; /* va_buf's -EOVERFLOW is out of memory here too */
}

int
va_frame_write(struct va_buf *out, const char *start_line,
	       const struct va_frame_header *headers, size_t nheaders,
	       const void *body, size_t body_len)
{
	bool stuffed;
	int r;

	if (!out)
		return -EINVAL;
	r = check_head_args(start_line, headers, nheaders, &stuffed);
	if (r < 0)
		return r;
	if (body_len > 0 && !body)
		return -EINVAL;
	if (!stuffed) {
		if (body_len > 0 && memchr(body, VA_FRAME_SENTINEL, body_len))
			return -EINVAL;
		size_t old_len = out->len;
		if ((r = append_head(out, start_line, headers, nheaders, body_len)) < 0)
			return r;
		if (va_buf_append(out, body, body_len) < 0) {
			out->len = old_len;
			return -ENOMEM;
		}
		return 0;
	}
	size_t wire_len = body_len ? va_stuff_len(body_len, va_stuff_count(body, body_len)) : 0;
	if (wire_len == SIZE_MAX)
		return -ENOMEM;
	size_t old_len = out->len;
	if ((r = append_head(out, start_line, headers, nheaders, wire_len)) < 0)
		return r;
	if (va_buf_reserve(out, wire_len) < 0) {
		out->len = old_len;
		return -ENOMEM;
	}
	if (wire_len)
		out->len += va_stuff(out->data + out->len, body, body_len);
	return 0;
}

int
va_frame_write_head(struct va_buf *out, const char *start_line,
		    const struct va_frame_header *headers, size_t nheaders,
		    size_t wire_len, int *stuffed)
{
	bool st;
	int r;

	if (!out)
		return -EINVAL;
	r = check_head_args(start_line, headers, nheaders, &st);
	if (r < 0)
		return r;
	r = append_head(out, start_line, headers, nheaders, wire_len);
	if (r == 0 && stuffed)
		*stuffed = st;
	return r;
}
