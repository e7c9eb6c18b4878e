/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-frame.c - libFuzzer target for the frame parser and writer.
 *
 * Input layout:
 *   byte 0        the parser's maximum body (see max_body_for())
 *   byte 1        bits 0-2: how many slice-length bytes follow (1..8);
 *                 bit 7: the rest is a recipe of binary frames (build())
 *   those bytes   slice lengths, used in turn (see slice_len())
 *   the rest      the bytes fed to the parser
 *
 * The rest is parsed three times: all at once, in the slices given, and
 * all at once with the parser paused after every frame (then fed the
 * rest); all runs must report the same events (frame count, error codes,
 * fields through a hash) and the same stats.  Every frame of the first run
 * is also written again with va_frame_write() and parsed back, and must
 * come out the same (unless its rewritten header block is over the
 * limit); a stuffed frame is stuffed again by the writer.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Icommon \
 *       tests/fuzz/fuzz-frame.c common/frame.c common/buf.c common/stuff.c -o fuzz-frame
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "frame.h"
#include "stuff.h"

struct tally {
	va_frame_parser *p;
	size_t max_body;
	uint64_t frames, errors, hash;
	bool round_trip; /* rewrite and reparse each frame */
	bool pause;      /* pause the parser after each frame */
};

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-frame: %s\n", what);
		abort();
	}
}

static void
hash_bytes(uint64_t *h, const void *data, size_t len)
{
	const uint8_t *d = data;

	for (size_t i = 0; i < len; i++) {
		*h ^= d[i];
		*h *= 0x100000001b3ULL; /* FNV-1a */
	}
	*h ^= len;
	*h *= 0x100000001b3ULL;
}

static void
hash_str(uint64_t *h, const char *s)
{
	if (s)
		hash_bytes(h, s, strlen(s));
	else
		hash_bytes(h, "\xff", 1); /* never in a parsed string */
}

static void
hash_frame(uint64_t *h, const struct va_frame *f)
{
	int32_t n[2] = { (int32_t)f->kind, f->status };

	hash_bytes(h, n, sizeof(n));
	hash_str(h, f->method);
	hash_str(h, f->target);
	hash_str(h, f->reason);
	for (size_t i = 0; i < f->nheaders; i++) {
		hash_str(h, f->headers[i].name);
		hash_str(h, f->headers[i].value);
	}
	if (f->body)
		hash_bytes(h, f->body, f->body_len);
}

/* Checks the invariants every parsed frame (or partial) must satisfy. */
static void
check_frame(const struct va_frame *f, bool partial)
{
	if (f->kind == VA_FRAME_REQUEST) {
		check(f->method && f->target && !f->reason && f->status == 0,
		      "request fields");
	} else {
		check(!f->method && !f->target && f->reason &&
		      f->status >= 100 && f->status <= 999, "response fields");
	}
	check(f->nheaders <= VA_FRAME_MAX_HEADERS, "header count");
	for (size_t i = 0; i < f->nheaders; i++) {
		const char *v = f->headers[i].value;
		size_t vl = strlen(v);
		check(f->headers[i].name[0] != '\0', "empty header name");
		check(vl == 0 || (v[0] != ' ' && v[0] != '\t' &&
				  v[vl - 1] != ' ' && v[vl - 1] != '\t'),
		      "value not trimmed");
	}
	if (partial) {
		check(!f->body && f->body_len == 0, "partial with a body");
	} else {
		const char *ce = va_frame_header(f, "Content-Encoding");
		check(f->body && f->body[f->body_len] == 0, "body NUL");
		/* Only a stuffed body may hold 0xFF once decoded. */
		check(ce || !memchr(f->body, 0xff, f->body_len), "0xFF in a body");
		check(!ce || strcasecmp(ce, VA_STUFF_CODING) == 0, "other coding accepted");
		const char *cl = va_frame_header(f, "Content-Length");
		check(cl != NULL, "frame without Content-Length");
		uint64_t wire = strtoull(cl, NULL, 10);
		/* Decoded: never longer; and exactly the stuffed length. */
		check(ce ? wire == va_stuff_len(f->body_len, va_stuff_count(f->body, f->body_len))
			 : wire == f->body_len, "Content-Length and body disagree");
	}
}

/* The frame of a rewrite, to compare with the original. */
struct reparse {
	struct va_frame *f;
	int nframes, nerrors;
	enum va_frame_error err;
};

static void
reparse_frame(void *opaque, struct va_frame *f)
{
	struct reparse *r = opaque;

	r->nframes++;
	va_frame_free(r->f);
	r->f = f;
}

static void
reparse_error(void *opaque, enum va_frame_error err,
	      const struct va_frame *partial)
{
	struct reparse *r = opaque;

	(void)partial;
	r->nerrors++;
	r->err = err;
}

/* Where "\r\n\r\n" starts in d, or len when absent. */
static size_t
find_blank_line(const uint8_t *d, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(d + i, "\r\n\r\n", 4) == 0)
			return i;
	return len;
}

static bool
is_length(const char *name)
{
	return strcasecmp(name, "Content-Length") == 0;
}

/* Writes f again (without its Content-Length) and parses it back. */
static void
round_trip(const struct va_frame *f, size_t max_body)
{
	static const struct va_frame_parser_ops ops = {
		.frame = reparse_frame,
		.error = reparse_error,
	};
	struct va_frame_header *h = malloc((f->nheaders + 1) * sizeof(*h));
	struct va_buf out, line;
	struct reparse r = { 0 };
	size_t nh = 0;

	if (!h)
		return;
	for (size_t i = 0; i < f->nheaders; i++)
		if (!is_length(f->headers[i].name))
			h[nh++] = f->headers[i];
	va_buf_init(&out);
	va_buf_init(&line);
	int n = f->kind == VA_FRAME_REQUEST
		? va_buf_printf(&line, "%s %s HTTP/1.1", f->method, f->target)
		: va_buf_printf(&line, "HTTP/1.1 %03d %s", f->status, f->reason);
	char *start = n < 0 ? NULL : (char *)va_buf_steal(&line, NULL);
	if (!start) {
		va_buf_free(&line);
		free(h);
		return;
	}
	int rc = va_frame_write(&out, start, h, nh, f->body, f->body_len);
	check(rc == 0, "writer refused a parsed frame");

	va_frame_parser *p = va_frame_parser_new(max_body, &ops, &r);
	check(p != NULL, "parser_new");
	va_frame_parser_feed(p, out.data, out.len);
	va_frame_parser_free(p);

	/* The header block as written: after the 0xFF, up to "\r\n\r\n". */
	size_t end = find_blank_line(out.data, out.len);
	check(end < out.len, "no blank line written");
	size_t head = end + 4 - 1;
	if (head > VA_FRAME_MAX_HEADER_BYTES) {
		check(r.nframes == 0 && r.nerrors == 1 &&
		      r.err == VA_FRAME_ERR_HEADER_TOO_LARGE,
		      "oversized rewrite accepted");
	} else {
		check(r.nframes == 1 && r.nerrors == 0, "rewrite not parsed");
		const struct va_frame *g = r.f;
		check(g->kind == f->kind && g->status == f->status &&
		      g->body_len == f->body_len &&
		      memcmp(g->body, f->body, f->body_len) == 0,
		      "rewrite differs (start line or body)");
		check((!f->method || strcmp(f->method, g->method) == 0) &&
		      (!f->target || strcmp(f->target, g->target) == 0) &&
		      (!f->reason || strcmp(f->reason, g->reason) == 0),
		      "rewrite differs (start line)");
		check(g->nheaders == nh + 1 &&
		      is_length(g->headers[nh].name), "rewrite header count");
		for (size_t i = 0; i < nh; i++)
			check(strcmp(g->headers[i].name, h[i].name) == 0 &&
			      strcmp(g->headers[i].value, h[i].value) == 0,
			      "rewrite differs (headers)");
	}
	va_frame_free(r.f);
	free(start);
	free(h);
	va_buf_free(&out);
}

static void
on_frame(void *opaque, struct va_frame *f)
{
	struct tally *t = opaque;

	check_frame(f, false);
	t->frames++;
	hash_bytes(&t->hash, "F", 1);
	hash_frame(&t->hash, f);
	if (t->round_trip)
		round_trip(f, t->max_body);
	va_frame_free(f);
	if (t->pause)
		va_frame_parser_pause(t->p);
}

static void
on_error(void *opaque, enum va_frame_error err, const struct va_frame *partial)
{
	struct tally *t = opaque;

	check(err >= VA_FRAME_ERR_TORN && err <= VA_FRAME_ERR_BAD_STUFFING,
	      "error code");
	check(va_frame_strerror(err) != NULL, "strerror");
	t->errors++;
	hash_bytes(&t->hash, "E", 1);
	hash_bytes(&t->hash, &err, sizeof(err));
	if (partial) {
		check_frame(partial, true);
		hash_frame(&t->hash, partial);
	}
}

static size_t
max_body_for(uint8_t b)
{
	if (b >= 200)
		return VA_FRAME_DEFAULT_MAX_BODY;
	return (size_t)b * 37;
}

/* 1..128 for small bytes, up to ~12 KiB for large ones. */
static size_t
slice_len(uint8_t b)
{
	return b < 128 ? (size_t)b + 1 : (size_t)(b - 127) * 97;
}

static void
run(struct tally *t, const uint8_t *d, size_t len, const uint8_t *slices,
    size_t nslices, struct va_frame_stats *st)
{
	static const struct va_frame_parser_ops ops = {
		.frame = on_frame,
		.error = on_error,
	};

	t->p = va_frame_parser_new(t->max_body, &ops, t);
	check(t->p != NULL, "parser_new");
	if (t->pause) {
		uint64_t before = t->frames;
		for (size_t off = 0; off < len;) {
			size_t used = va_frame_parser_feed(t->p, d + off, len - off);
			check(used == len - off || t->frames > before, "paused without a frame");
			check(used > 0 || t->frames > before, "no progress");
			before = t->frames;
			off += used;
		}
	} else if (!slices) {
		check(va_frame_parser_feed(t->p, d, len) == len, "feed consumed less");
	} else {
		for (size_t off = 0, i = 0; off < len; i++) {
			size_t n = slice_len(slices[i % nslices]);
			if (n > len - off)
				n = len - off;
			va_frame_parser_feed(t->p, d + off, n);
			off += n;
		}
	}
	va_frame_parser_stats(t->p, st);
	va_frame_parser_free(t->p);
	check(st->frames == t->frames, "frames counted");
	check(st->torn + st->errors == t->errors, "errors counted");
}

/*
 * The binary recipe: records of [op][len][len bytes] until the input
 * ends.  op & 3: 0 raw bytes as they are; 1 a stuffed request with those
 * bytes as its body; 2 a stuffed response; 3 a stuffed request, damaged:
 * with op & 0x80, the byte at ((op >> 2) & 31) / 32 of the frame
 * replaced by the record's first byte (a bad escape, a 0xFF, a broken
 * head...), else cut after (op >> 2) / 64 of it (a torn frame).  Makes
 * the stuffed paths reachable without the fuzzer having to find the
 * header.
 */
static void
build(struct va_buf *out, const uint8_t *d, size_t len)
{
	static const struct va_frame_header h[] = {
		{ (char *)"Content-Type", (char *)"application/octet-stream" },
		{ (char *)"Content-Encoding", (char *)VA_STUFF_CODING },
		{ (char *)"X-Virtagent-Client-Tag", (char *)"0123456789abcdef.1" },
	};
	size_t i = 0;

	while (i + 2 <= len) {
		uint8_t op = d[i];
		size_t n = d[i + 1];
		i += 2;
		if (n > len - i)
			n = len - i;
		const uint8_t *b = d + i;
		i += n;
		size_t at = out->len;
		int r = 0;
		switch (op & 3) {
		case 0:
			r = va_buf_append(out, b, n);
			break;
		case 1:
		case 3:
			r = va_frame_write(out, "POST /RPC2 HTTP/1.1", h, 3, b, n);
			break;
		case 2:
			r = va_frame_write(out, "HTTP/1.1 200 OK", h, 2, b, n);
			break;
		}
		check(r == 0, "writer refused a recipe frame");
		if ((op & 3) == 3) {
			size_t flen = out->len - at;
			size_t pos = at + flen * ((op >> 2) & 31) / 32;
			if ((op & 0x80) && n > 0 && pos < out->len)
				out->data[pos] = b[0];
			else
				out->len = at + flen * (op >> 2) / 64;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max_body = max_body_for(data[0]);
	size_t nslices = (size_t)(data[1] % 8) + 1;
	if (size < 2 + nslices)
		return 0;
	const uint8_t *slices = data + 2;
	const uint8_t *in = data + 2 + nslices;
	size_t len = size - 2 - nslices;
	struct va_buf recipe;

	va_buf_init(&recipe);
	if (data[1] & 0x80) {
		build(&recipe, in, len);
		in = recipe.data;
		len = recipe.len;
	}

	struct tally whole = { .max_body = max_body, .hash = 14695981039346656037ULL,
			       .round_trip = true };
	struct tally sliced = { .max_body = max_body, .hash = 14695981039346656037ULL };
	struct tally paused = { .max_body = max_body, .hash = 14695981039346656037ULL,
				.pause = true };
	struct va_frame_stats a, b, c;

	run(&whole, in, len, NULL, 0, &a);
	run(&sliced, in, len, slices, nslices, &b);
	run(&paused, in, len, NULL, 0, &c);

	check(whole.frames == sliced.frames, "frame count differs by slicing");
	check(whole.errors == sliced.errors, "error count differs by slicing");
	check(whole.hash == sliced.hash, "events differ by slicing");
	check(a.frames == b.frames && a.torn == b.torn &&
	      a.errors == b.errors && a.skipped == b.skipped,
	      "stats differ by slicing");
	check(whole.hash == paused.hash && a.frames == c.frames && a.torn == c.torn &&
	      a.errors == c.errors && a.skipped == c.skipped, "pausing changed the events");
	va_buf_free(&recipe);
	return 0;
}
