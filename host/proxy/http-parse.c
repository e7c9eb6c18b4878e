/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * http-parse.c - the request head parser (see http-parse.h).
 *
 * Two passes: first find the empty line that ends the head without
 * touching anything (so an incomplete head can be looked at again when
 * more bytes came), then parse the lines and terminate the strings in
 * place.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "http-parse.h"
#include "tchar.h"

/* A byte that may stand in a field value: VCHAR, obs-text, SP, HTAB. */
static int
is_value_byte(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/*
 * Where the head ends: the offset just past the empty line, or 0 when it
 * is not in the first len bytes.  *lines counts the lines seen before.
 */
static size_t
head_end(const char *buf, size_t len, size_t skip, size_t *lines)
{
	size_t line_start = skip;

	*lines = 0;
	for (const char *lf; line_start < len &&
	     (lf = memchr(buf + line_start, '\n', len - line_start));) {
		size_t i = (size_t)(lf - buf);
		size_t n = i - line_start; /* the line without its LF */
		if (n == 0 || (n == 1 && buf[line_start] == '\r'))
			return i + 1;
		(*lines)++;
		line_start = i + 1;
	}
	return 0;
}

/* Lowercase-insensitive equality of the token list item [p, p+n) with s. */
static int
token_is(const char *p, size_t n, const char *s)
{
	return strlen(s) == n && strncasecmp(p, s, n) == 0;
}

/* Sets the Connection flags from a comma list of options. */
static void
connection_options(const char *v, struct va_http_head *h)
{
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *s = v;
		while (*v && *v != ',' && *v != ' ' && *v != '\t')
			v++;
		if (token_is(s, (size_t)(v - s), "close"))
			h->conn_close = 1;
		else if (token_is(s, (size_t)(v - s), "keep-alive"))
			h->conn_keep_alive = 1;
		while (*v && *v != ',')
			v++;
	}
}

/* Content-Length: 1*DIGIT, at most 18 digits.  -1 when malformed. */
static int64_t
parse_length(const char *v)
{
	int64_t n = 0;
	int digits = 0;

	for (; *v; v++) {
		if (*v < '0' || *v > '9' || ++digits > 18)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return digits ? n : -1;
}

/* Parses "METHOD SP TARGET SP HTTP/1.x" (the line is NUL-terminated). */
static int
request_line(char *line, struct va_http_head *h, const char **why)
{
	char *p = line;

	h->method = p;
	while (va_is_tchar((unsigned char)*p))
		p++;
	if (p == line || *p != ' ') {
		*why = "malformed request line: expected METHOD SP TARGET SP HTTP/1.1";
		return -400;
	}
	if ((size_t)(p - line) >= VA_HTTP_METHOD_MAX) {
		*why = "the method is too long";
		return -400;
	}
	*p++ = '\0';
	char *target = p;
	while (*p && *p != ' ') {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
			*why = "malformed request target";
			return -400;
		}
		p++;
	}
	if (p == target || *p != ' ') {
		*why = "malformed request line: expected METHOD SP TARGET SP HTTP/1.1";
		return -400;
	}
	if ((size_t)(p - target) > VA_HTTP_TARGET_MAX) {
		*why = "the request target is too long";
		return -400;
	}
	*p++ = '\0';
	if (strncmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
	    p[7] < '0' || p[7] > '9' || p[8] != '\0') {
		*why = "malformed request line: expected METHOD SP TARGET SP HTTP/1.1";
		return -400;
	}
	if (p[5] != '1' || p[7] > '1') {
		*why = "only HTTP/1.0 and HTTP/1.1 are served";
		return -505;
	}
	h->minor = p[7] - '0';

	/* absolute-form: keep the path and query (an empty path is "/"). */
	if (!strncasecmp(target, "http://", 7) || !strncasecmp(target, "https://", 8)) {
		char *host = target + (target[4] == ':' ? 7 : 8);
		/* The authority ends at the path's '/' or the query's '?'. */
		char *path = host + strcspn(host, "/?");
		if (*path != '/') {
			/* "http://host" or "http://host?q": the path is "/"; the
			 * byte before is the host's or the scheme's, not needed. */
			*--path = '/';
		}
		target = path;
	}
	if (target[0] != '/' && strcmp(target, "*") != 0) {
		*why = "malformed request target: expected a path such as /RPC2";
		return -400;
	}
	h->target = target;
	return 0;
}

/* One "Name: value" line (NUL-terminated, no CR/LF). */
static int
header_line(char *line, struct va_http_head *h, const char **why)
{
	char *p = line;

	if (*p == ' ' || *p == '\t') {
		*why = "folded header lines are not accepted";
		return -400;
	}
	while (va_is_tchar((unsigned char)*p))
		p++;
	if (p == line || *p != ':') {
		*why = "malformed header line: expected Name: value";
		return -400;
	}
	size_t nlen = (size_t)(p - line);
	*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	char *v = p, *end = p;
	for (; *p; p++) {
		if (!is_value_byte((unsigned char)*p)) {
			*why = "a control byte in a header value";
			return -400;
		}
		if (*p != ' ' && *p != '\t')
			end = p + 1;
	}
	*end = '\0';

	/* The names looked for have lengths of their own: one strcasecmp per
	 * name of that length at most, none for the other headers (Host,
	 * Accept, Content-Type...). */
	switch (nlen) {
	case 14: {
		if (strcasecmp(line, "content-length"))
			break;
		int64_t n = parse_length(v);
		if (n < 0) {
			*why = "malformed Content-Length";
			return -400;
		}
		if (h->content_length >= 0 && h->content_length != n) {
			*why = "two different Content-Length headers";
			return -400;
		}
		h->content_length = n;
		break;
	}
	case 17:
		if (!strcasecmp(line, "transfer-encoding")) {
			/* Only a lone "chunked" is a coding the streams decode. */
			h->te_chunked = !h->transfer_encoding && !strcasecmp(v, "chunked");
			h->transfer_encoding = 1;
		}
		break;
	case 5:
		if (!strcasecmp(line, "range") && !h->range)
			h->range = v;
		break;
	case 8:
		if (!strcasecmp(line, "if-range")) {
			if (!h->if_range)
				h->if_range = v;
		} else if (!strcasecmp(line, "if-match")) {
			if (!h->if_match)
				h->if_match = v;
		}
		break;
	case 13:
		if (!strcasecmp(line, "authorization")) {
			h->authorization = v;
		} else if (!strcasecmp(line, "if-none-match")) {
			if (!h->if_none_match)
				h->if_none_match = v;
		} else if (!strcasecmp(line, "content-range")) {
			if (h->content_range && strcmp(h->content_range, v) != 0) {
				*why = "two different Content-Range headers";
				return -400;
			}
			h->content_range = v;
		}
		break;
	case 16:
		if (!strcasecmp(line, "want-repr-digest") && !h->want_repr_digest)
			h->want_repr_digest = v;
		break;
	case 6:
		if (strcasecmp(line, "expect"))
			break;
		if (!strcasecmp(v, "100-continue"))
			h->expect_continue = 1;
		else if (*v)
			h->expect_other = 1;
		break;
	case 10:
		if (!strcasecmp(line, "connection"))
			connection_options(v, h);
		break;
	}
	return 0;
}

int
va_http_parse_head(char *buf, size_t len, struct va_http_head *h, const char **why)
{
	size_t skip = 0, lines;

	if (len > VA_HTTP_HEAD_MAX)
		len = VA_HTTP_HEAD_MAX;
	/* Empty lines before the request line are ignored. */
	while (skip < len && (buf[skip] == '\n' || (buf[skip] == '\r' && skip + 1 < len &&
						    buf[skip + 1] == '\n')))
		skip += buf[skip] == '\r' ? 2 : 1;
	size_t end = head_end(buf, len, skip, &lines);
	if (!end) {
		if (len == VA_HTTP_HEAD_MAX) {
			*why = "the request head is larger than 16384 bytes";
			return -431;
		}
		if (lines > VA_HTTP_MAX_HEADERS + 1) {
			*why = "more than 64 header lines";
			return -431;
		}
		return 0;
	}
	if (memchr(buf, '\0', end)) {
		*why = "a NUL byte in the request head";
		return -400;
	}
	if (lines > VA_HTTP_MAX_HEADERS + 1) {
		*why = "more than 64 header lines";
		return -431;
	}

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	h->head_len = end;

	/* Each line: cut at LF (and a CR before it), then parse. */
	char *line = buf + skip;
	int first = 1;
	for (;;) {
		char *lf = memchr(line, '\n', (size_t)(buf + end - line));
		/* head_end found the empty line, so every line has its LF. */
		char *stop = lf;
		if (stop > line && stop[-1] == '\r')
			stop--;
		if (stop == line)
			break; /* the empty line */
		if (memchr(line, '\r', (size_t)(stop - line))) {
			*why = "a CR byte inside a line of the request head";
			return -400;
		}
		*stop = '\0';
		int r = first ? request_line(line, h, why) : header_line(line, h, why);
		if (r < 0)
			return r;
		first = 0;
		line = lf + 1;
	}
	return 1;
}

const char *
va_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 403: return "Forbidden";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}
