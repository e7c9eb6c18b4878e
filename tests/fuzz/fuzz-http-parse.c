/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-http-parse.c - libFuzzer target for the request head parser
 * (host/http-parse.c; the contract is host/http-parse.h).
 *
 * The input is copied into a malloc of exactly its size (so ASan sees a
 * read past it) and parsed once; the result must keep the contract:
 *   1     0 < head_len <= min(len, VA_HTTP_HEAD_MAX); method, target and
 *         authorization are strings inside the head; minor is 0 or 1;
 *         content_length >= -1; the target starts with '/' or is "*"; the
 *         bytes after the head are as they were; the head alone parses
 *         the same, and a shorter prefix of it is not yet a head
 *   0     the buffer is byte for byte the input
 *   -S    S is 400, 431 or 505 and *why is a non-empty string
 * Anything else aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Ihost \
 *       tests/fuzz/fuzz-http-parse.c host/http-parse.c -o fuzz-http-parse
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-parse.h"

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-http-parse: %s\n", what);
		abort();
	}
}

/* s is a NUL-terminated string inside [buf, buf + n). */
static bool
str_inside(const char *s, const char *buf, size_t n)
{
	if (!s || s < buf || s >= buf + n)
		return false;
	return memchr(s, '\0', (size_t)(buf + n - s)) != NULL;
}

/* Parses a copy of d[0 .. len) in a malloc of exactly len bytes. */
static int
parse_copy(const uint8_t *d, size_t len, char **bufp, struct va_http_head *h,
	   const char **why)
{
	char *buf = malloc(len ? len : 1);

	check(buf != NULL, "malloc");
	if (len)
		memcpy(buf, d, len);
	*why = NULL;
	int rc = va_http_parse_head(buf, len, h, why);
	check(rc == 1 || rc == 0 || rc == -400 || rc == -431 || rc == -505, "return value");
	if (rc == 0)
		check(len == 0 || memcmp(buf, d, len) == 0, "buffer changed while returning 0");
	if (rc < 0)
		check(*why != NULL && (*why)[0] != '\0', "a refusal without a reason");
	*bufp = buf;
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct va_http_head h;
	const char *why;
	char *buf;
	int rc = parse_copy(data, size, &buf, &h, &why);

	if (rc == 1) {
		size_t max = size < VA_HTTP_HEAD_MAX ? size : VA_HTTP_HEAD_MAX;
		size_t hl = h.head_len;
		check(hl > 0 && hl <= max, "head_len out of range");
		check(str_inside(h.method, buf, hl), "method not inside the head");
		check(str_inside(h.target, buf, hl), "target not inside the head");
		check(!h.authorization || str_inside(h.authorization, buf, hl),
		      "authorization not inside the head");
		check(h.method[0] != '\0' && strlen(h.method) < VA_HTTP_METHOD_MAX,
		      "method length");
		check(strlen(h.target) <= VA_HTTP_TARGET_MAX, "target length");
		check(h.minor == 0 || h.minor == 1, "minor");
		check(h.content_length >= -1, "content_length");
		check(h.target[0] == '/' || strcmp(h.target, "*") == 0, "target form");
		check((h.transfer_encoding | h.expect_continue | h.expect_other |
		       h.conn_close | h.conn_keep_alive) >> 1 == 0, "flags not 0 or 1");
		check(memcmp(buf + hl, data + hl, size - hl) == 0, "bytes after the head changed");

		/* The head alone: the same head. */
		struct va_http_head h2;
		const char *why2;
		char *buf2;
		check(parse_copy(data, hl, &buf2, &h2, &why2) == 1, "the head alone not a head");
		check(h2.head_len == hl && h2.minor == h.minor &&
		      h2.content_length == h.content_length &&
		      h2.transfer_encoding == h.transfer_encoding &&
		      h2.expect_continue == h.expect_continue &&
		      h2.expect_other == h.expect_other && h2.conn_close == h.conn_close &&
		      h2.conn_keep_alive == h.conn_keep_alive &&
		      h2.method - buf2 == h.method - buf && h2.target - buf2 == h.target - buf &&
		      strcmp(h2.method, h.method) == 0 && strcmp(h2.target, h.target) == 0 &&
		      (h2.authorization ? h.authorization &&
						  strcmp(h2.authorization, h.authorization) == 0
					: !h.authorization),
		      "the head alone parses differently");
		free(buf2);

		/* One byte short of the head: not a head yet. */
		check(parse_copy(data, hl - 1, &buf2, &h2, &why2) == 0,
		      "a prefix of a head is not waited for");
		free(buf2);
	}
	free(buf);
	return 0;
}
