/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * http-parse.h - the request head of HTTP/1.0 and HTTP/1.1 (RFC 9112),
 * as va-proxy's HTTP server reads it.  No I/O and no allocation: the
 * caller hands in the bytes received so far and learns whether a whole
 * head is there, what it says, or why it is refused.
 *
 * What is accepted: a request line METHOD SP TARGET SP HTTP/1.x, header
 * lines "Name: value" (lines may end in CRLF or a bare LF), an empty
 * line.  Empty lines before the request line are skipped (RFC 9112 2.2).
 * An absolute-form target ("http://host/RPC2") is reduced to its path.
 * What is refused, with the status to answer: no whole head within
 * VA_HTTP_HEAD_MAX bytes or more than VA_HTTP_MAX_HEADERS lines (431), a
 * malformed request line, header line or Content-Length, two different
 * Content-Lengths or Content-Ranges, a NUL or other control byte, a
 * folded header line (400), a version other than 1.0 and 1.1 (505).
 */
#ifndef VA_PROXY_HTTP_PARSE_H
#define VA_PROXY_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Largest request head (request line, headers, empty line). */
#define VA_HTTP_HEAD_MAX 16384
/* Most header lines in a head. */
#define VA_HTTP_MAX_HEADERS 64
/* A method has fewer than VA_HTTP_METHOD_MAX bytes (it fits a char[16]);
 * a target at most VA_HTTP_TARGET_MAX. */
#define VA_HTTP_METHOD_MAX 16
#define VA_HTTP_TARGET_MAX 2048

struct va_http_head {
	const char *method;        /* NUL-terminated, inside the caller's buffer */
	const char *target;        /* the path ("/RPC2"), inside the buffer */
	int minor;                 /* HTTP/1.minor: 0 or 1 */
	int64_t content_length;    /* -1 when absent */
	int transfer_encoding;     /* a Transfer-Encoding header was there */
	int expect_continue;       /* Expect: 100-continue */
	int expect_other;          /* another expectation (answered with 417) */
	int conn_close;            /* Connection: close */
	int conn_keep_alive;       /* Connection: keep-alive */
	const char *authorization; /* the Authorization value, or NULL */
	/*
	 * Headers only the streamed requests read (httpd.h), each the value
	 * of its first occurrence, or NULL.
	 */
	const char *range;
	const char *if_range;
	const char *if_match;
	const char *if_none_match;
	const char *content_range;    /* two different ones are refused (400) */
	const char *want_repr_digest;
	int te_chunked;            /* Transfer-Encoding is "chunked", once, and nothing else */
	size_t head_len;           /* bytes of buf the head took, empty line included */
};

/*
 * Looks at the first len bytes of buf (len at most VA_HTTP_HEAD_MAX
 * matters: more is never looked at).  Returns:
 *    1  a whole head: h is filled, and buf[0 .. h->head_len) was changed
 *       in place (strings terminated); the body starts at buf + head_len
 *    0  not a whole head yet (and none of buf was changed): read more
 *   -S  refused with HTTP status S (400, 431 or 505); *why says why in
 *       plain words (a static string)
 * The caller must not call it again on the same bytes after it returned 1.
 */
int va_http_parse_head(char *buf, size_t len, struct va_http_head *h, const char **why);

/* The reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *va_http_reason(int status);

#endif
