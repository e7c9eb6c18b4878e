/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * files.c - the file endpoints of va-proxy (files.h): an HTTP request
 * (httpd.h's streams) on one side, the agent's binary operations
 * (common/filestream.h, through guest-link.c) on the other.
 *
 * A transfer (struct xfer) lives from the request's head to the last
 * answer of the agent it waits for: the HTTP side holds one reference,
 * each call in flight one more.  What it keeps is bounded by its window:
 *
 *   GET   at most VA_FILES_WINDOW preads of a chunk in flight, and no
 *         new one while the bytes already queued to the client and those
 *         asked for would pass window x chunk: a slow client slows the
 *         reads, a fast one gets them back to back.  The answers come in
 *         order (one channel, one agent thread); each body goes to the
 *         client as it is, without a copy.
 *   PUT   the body is read into a chunk; a full chunk goes as a pwrite
 *         (handed over, no copy), at most the window of them in flight;
 *         with the window full the body is not read (the client's
 *         writes block).  At the end: commit (the rename onto PATH).
 *
 * The agent is untrusted: an answer that is not what was asked (a read
 * longer than its count, a short one before the size it announced, a
 * reply of another kind) ends the transfer, the client seeing an answer
 * cut short (never a wrong one: Content-Length or the missing last
 * chunk tells); the agent's calls have the proxy's call timeout.  The
 * proxy's --block-rpcs applies as to the XML-RPC methods (files.h).
 *
 * Status codes (docs/USAGE.md has the list): the agent's refusals map
 * one to one (filestream.h's kinds); a guest that cannot be reached is
 * 503 (not connected) or 502 (not answering, lost), 504 on a timeout,
 * 501 when its agent speaks protocol 1.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nettle/sha2.h>

#include "buf.h"
#include "contract.h"
#include "files.h"
#include "filestream.h"
#include "forward.h"
#include "guest.h"
#include "http-parse.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "reprdigest.h"
#include "rpc.h"
#include "session.h"
#include "text.h"
#include "xmlgate.h"

/* A pread that found nothing (a FIFO, a device): the next one after this, doubling. */
#define RETRY_FIRST_MS 10
#define RETRY_MAX_MS 1000
/* The largest answer of va.file.checksum taken for Repr-Digest (HEAD). */
#define DIGEST_ANSWER_MAX 1024
/* Header lines the answers carry, at most. */
#define EXTRA_MAX 1024
/* The send times of pwrites in flight kept (the window, one more at the end, the rest). */
#define PWRITE_RING 8

enum method { M_GET, M_HEAD, M_PUT };

struct xfer;

/* A pread in flight, in offset order (GET). */
struct slot {
	struct xfer *x;
	uint64_t off;
	size_t count;
	uint64_t sent_ms;
	int done;
	int fault;
	char msg[256];
	struct va_frame *resp;
};

struct xfer {
	struct va_proxy *px;
	struct va_guest *g;          /* a reference */
	struct va_http_stream *st;   /* NULL once answered, cut or gone */
	unsigned refs;
	enum method method;
	char *path;                  /* the guest path (raw UTF-8) */
	uint64_t started_ms;
	int status;                  /* the answer's, for the log */
	size_t chunk;                /* the next call's; adapted (see adapt) */
	size_t chunk_max;            /* what the frame limits allow */
	unsigned window;
	uint64_t handle;             /* the agent's; 0: none open */

	/* The request. */
	char *range, *if_range, *if_match, *if_none_match;
	int want_digest;
	uint64_t offset;             /* PUT: where the body starts */
	int have_range;              /* PUT: a Content-Range came */
	int have_total;              /* PUT: Content-Range named the whole size */
	uint64_t range_last;         /* PUT: its last byte */
	uint64_t total;
	int have_sha;
	uint8_t want_sha[VA_SHA256_LEN];
	const char *perm;            /* PUT: ?mode= (points into perm_buf) */
	char perm_buf[8];

	/* The file (open-read, open-write). */
	int sized;
	uint64_t size, ino, mtime_ns;
	char etag[80];
	int exists;

	/* GET */
	uint64_t next_off, end;      /* asked up to next_off; the answer ends at end */
	uint64_t sent;
	struct slot slots[VA_FILES_WINDOW];
	unsigned shead, scount;
	int eof;
	unsigned retry_ms;
	va_loop_timer *retry;
	int hashing;
	struct sha256_ctx sha;

	/* PUT */
	uint8_t *wbuf;
	size_t wcap;                 /* the chunk wbuf is filled to */
	size_t wfill;
	uint64_t wsent[PWRITE_RING];  /* when the pwrites in flight went, oldest at wsent_head */
	unsigned wsent_head;
	uint64_t wnext;              /* the offset of the next pwrite */
	unsigned wflight;
	int body_done;
	int committing;
	uint64_t received;
};

static void get_deliver(struct xfer *x);
static void put_read(struct xfer *x);
static void put_finish_body(struct xfer *x);

/* ---- life ---- */

static void
xfer_unref(struct xfer *x)
{
	if (--x->refs > 0)
		return;
	for (unsigned i = 0; i < VA_FILES_WINDOW; i++)
		va_frame_free(x->slots[i].resp);
	va_loop_timer_free(x->retry);
	free(x->wbuf);
	free(x->path);
	free(x->range);
	free(x->if_range);
	free(x->if_match);
	free(x->if_none_match);
	va_guest_stream_end(x->g);
	va_guest_unref(x->g);
	free(x);
}

static const char *
method_name(const struct xfer *x)
{
	return x->method == M_GET ? "GET" : x->method == M_HEAD ? "HEAD" : "PUT";
}

/* The HTTP side is done with (answered, cut or gone): logs, drops its reference. */
static void
http_done(struct xfer *x)
{
	x->st = NULL;
	va_log_info("%s: %s %s: %d, %" PRIu64 " bytes in %" PRIu64 " ms", va_guest_name(x->g),
		    method_name(x), x->path, x->status,
		    x->method == M_PUT ? x->received : x->sent, va_now_ms() - x->started_ms);
	xfer_unref(x);
}

/* ---- answers ---- */

static void
respond_text(struct va_http_stream *st, int status, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
respond_text(struct va_http_stream *st, int status, const char *extra, const char *fmt, ...)
{
	struct va_buf b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	va_buf_printf(&b, "%s\n", msg);
	size_t len = b.len;
	uint8_t *body = va_buf_steal(&b, &len);
	va_buf_free(&b);
	va_http_stream_respond(st, status, "text/plain; charset=utf-8", extra, body,
			       body ? len : 0);
}

/* Answers x's request with a failure (when no answer started), and lets it go. */
static void __attribute__((format(printf, 4, 5)))
fail(struct xfer *x, int status, const char *extra, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!x->st)
		return;
	x->status = status;
	va_log_warnx("%s: %s %s: %d: %s", va_guest_name(x->g), method_name(x), x->path, status,
		     msg);
	respond_text(x->st, status, extra, "%s", msg);
	http_done(x);
}

/* Cuts an answer that started (the client sees it incomplete), and lets it go. */
static void
cut(struct xfer *x, const char *why)
{
	if (!x->st)
		return;
	va_log_warnx("%s: %s %s: cut after %" PRIu64 " bytes: %s", va_guest_name(x->g),
		     method_name(x), x->path, x->sent, why);
	x->status = 0;
	va_http_stream_abort(x->st);
	http_done(x);
}

/* The status of a guest fault (guest.h). */
static int
status_of_fault(int fault)
{
	switch (fault) {
	case VA_GUEST_OLD_AGENT:
		return 501;
	case VA_PROXY_FAULT_TIMEOUT:
		return 504;
	case VA_PROXY_FAULT_NOT_ANSWERING:
	case VA_PROXY_FAULT_LOST:
	case VA_PROXY_FAULT_REFUSED:
	case VA_PROXY_FAULT_TOO_LARGE:
		return 502;
	default:
		return 503;
	}
}

/* The status of the agent's kind of failure (filestream.h). */
static int
status_of_kind(const char *kind, enum method m)
{
	static const struct {
		const char *kind;
		int status;
	} map[] = {
		{ VA_FS_E_NOT_FOUND, 404 }, { VA_FS_E_REFUSED, 403 }, { VA_FS_E_DISABLED, 403 },
		{ VA_FS_E_BUSY, 503 }, { VA_FS_E_CONFLICT, 409 }, { VA_FS_E_RANGE, 416 },
		{ VA_FS_E_MISMATCH, 409 }, { VA_FS_E_NO_SPACE, 507 },
		{ VA_FS_E_BAD_REQUEST, 400 }, { VA_FS_E_STALE, 503 },
	};

	if (kind && !strcmp(kind, VA_FS_E_IS_DIR))
		return m == M_PUT ? 409 : 403;
	for (size_t i = 0; kind && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(kind, map[i].kind))
			return map[i].status;
	return 500;
}

/*
 * The outcome of a call: 0 when resp is a binary success, else the status
 * to answer with msg filled (resp is still the caller's).
 */
static int
outcome(struct xfer *x, int fault, const char *fmsg, struct va_frame *resp, char *msg,
	size_t msglen)
{
	if (fault) {
		snprintf(msg, msglen, "%s", fmsg ? fmsg : "the guest did not answer");
		return status_of_fault(fault);
	}
	const char *ct = va_session_content_type(resp);
	if (!strcasecmp(ct, VA_CONTENT_BINARY))
		return 0;
	if (!strcasecmp(ct, VA_FS_CONTENT_ERROR)) {
		/* The agent's words: text, shown as they are once made safe. */
		size_t n = resp->body_len < msglen - 1 ? resp->body_len : msglen - 1;
		memcpy(msg, resp->body, n);
		msg[n] = '\0';
		va_text_sanitize(msg, n);
		for (size_t i = 0; i < n; i++)
			if (msg[i] == '\r' || msg[i] == '\n')
				msg[i] = ' ';
		return status_of_kind(va_session_param(resp, VA_FS_ERROR), x->method);
	}
	/* XML-RPC: a fault of an agent that has no such operation. */
	snprintf(msg, msglen, "the agent of guest %s does not serve file streams (it answered "
		 "with XML-RPC): update va-agent in the guest", va_guest_name(x->g));
	return 501;
}

/*
 * The chunk size follows the channel's speed: a data call answered within
 * 1/16 of the call timeout doubles it (up to chunk_max), one that took
 * more than 1/4 halves it (down to VA_FILES_CHUNK_MIN).  Every call of the
 * window must be answered within the call timeout, and on a slow channel
 * (isa-serial: ~30 KB/s) a window of 1 MiB chunks would not be; on
 * virtio-serial the first chunks reach chunk_max within a few calls.
 */
static void
adapt(struct xfer *x, uint64_t sent_ms)
{
	uint64_t took = va_now_ms() - sent_ms, t = x->px->call_timeout_ms;

	if (took * 4 > t && x->chunk > VA_FILES_CHUNK_MIN)
		x->chunk = x->chunk / 2 > VA_FILES_CHUNK_MIN ? x->chunk / 2 : VA_FILES_CHUNK_MIN;
	else if (took * 16 < t && x->chunk < x->chunk_max)
		x->chunk = 2 * x->chunk < x->chunk_max ? 2 * x->chunk : x->chunk_max;
}

/* ---- calls ---- */

static char *
u64s(char buf[21], uint64_t v)
{
	snprintf(buf, 21, "%" PRIu64, v);
	return buf;
}

/*
 * Sends a binary operation: params, and body (taken when take).  Holds a
 * reference until done runs.  Returns 0, or the status after filling msg
 * (done will not run).
 */
static int
call(struct xfer *x, const struct va_param *params, size_t n, const void *body, size_t len,
     int take, unsigned timeout_ms, va_guest_bin_fn *done, void *ctx, char *msg, size_t msglen)
{
	const struct va_msg m = {
		.content_type = VA_CONTENT_BINARY, .params = params, .nparams = n,
		.body = body, .len = len, .take = take,
	};
	int fault = va_guest_call_binary(x->g, &m, timeout_ms ? timeout_ms : x->px->call_timeout_ms,
					 done, ctx, msg, msglen);
	if (fault)
		return status_of_fault(fault);
	x->refs++;
	return 0;
}

static void
close_done(void *ctx, int fault, const char *msg, struct va_frame *resp)
{
	(void)fault;
	(void)msg;
	va_frame_free(resp);
	xfer_unref(ctx);
}

/* Gives the agent's handle back (a write handle's partial stays for a resume). */
static void
close_handle(struct xfer *x)
{
	char h[21], msg[256];

	if (!x->handle)
		return;
	const struct va_param p[2] = {
		{ VA_FS_OP, VA_FS_OP_CLOSE }, { VA_FS_HANDLE, u64s(h, x->handle) },
	};
	x->handle = 0;
	if (call(x, p, 2, NULL, 0, 0, 0, close_done, x, msg, sizeof(msg)))
		va_log_debug("%s: close not sent: %s", va_guest_name(x->g), msg);
}

/* ---- reading the request ---- */

static int
hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * %XX-decodes s[0..len) into a new string: UTF-8 text without control
 * characters or NUL (what the agent takes as a path).  NULL with *why.
 */
static char *
pct_decode(const char *s, size_t len, const char **why)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out) {
		*why = "out of memory";
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*why = "a malformed %XX escape in the path";
				free(out);
				return NULL;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "a control character (or NUL) in the path";
			free(out);
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	const char *tw = NULL;
	if (va_text_check(out, o, &tw) != o) {
		*why = "the path is not UTF-8 text";
		free(out);
		return NULL;
	}
	return out;
}

/* A strict decimal number (1..19 digits). */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* The query of a PUT: offset=N, sha256=HEX, mode=OCTAL.  0, or -1 with *why. */
static int
parse_query(struct xfer *x, const char *q, int *have_offset, const char **why)
{
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		size_t kl = eq ? (size_t)(eq - q) : n;
		const char *v = eq ? eq + 1 : q + n;
		size_t vl = eq ? n - kl - 1 : 0;
		if (kl == 6 && !strncmp(q, "offset", 6)) {
			if (parse_u64(v, vl, &x->offset) < 0) {
				*why = "offset must be a decimal number";
				return -1;
			}
			*have_offset = 1;
		} else if (kl == 6 && !strncmp(q, "sha256", 6)) {
			if (va_sha256_from_hex(v, vl, x->want_sha) < 0) {
				*why = "sha256 must be 64 hex digits";
				return -1;
			}
			x->have_sha = 1;
		} else if (kl == 4 && !strncmp(q, "mode", 4)) {
			if (vl == 0 || vl > 4 || strspn(v, "01234567") < vl) {
				*why = "mode must be octal digits (0644)";
				return -1;
			}
			memcpy(x->perm_buf, v, vl);
			x->perm_buf[vl] = '\0';
			x->perm = x->perm_buf;
		} else if (n > 0) {
			*why = "unknown query parameter (offset, sha256 and mode are known)";
			return -1;
		}
		q += n + (amp ? 1 : 0);
	}
	return 0;
}

/*
 * Content-Range of a PUT: "bytes FIRST-LAST/TOTAL", or with "*" for an
 * unknown total.
 * 0, or -1 when malformed.
 */
static int
parse_content_range(struct xfer *x, const char *v)
{
	uint64_t first, last;

	if (strncasecmp(v, "bytes ", 6) != 0)
		return -1;
	v += 6;
	const char *dash = strchr(v, '-'), *slash = dash ? strchr(dash, '/') : NULL;
	if (!dash || !slash || parse_u64(v, (size_t)(dash - v), &first) < 0 ||
	    parse_u64(dash + 1, (size_t)(slash - dash - 1), &last) < 0 || last < first)
		return -1;
	if (strcmp(slash + 1, "*") != 0) {
		if (parse_u64(slash + 1, strlen(slash + 1), &x->total) < 0 || last >= x->total)
			return -1;
		x->have_total = 1;
	}
	x->offset = first;
	x->range_last = last;
	x->have_range = 1;
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Want-Repr-Digest asks for sha-256 with a weight above 0. */
static int
wants_sha256(const char *v)
{
	const char *p = v ? strstr(v, "sha-256=") : NULL;
	return p && p[8] >= '1' && p[8] <= '9';
}

/* ---- entity tags and ranges ---- */

static void
make_etag(struct xfer *x)
{
	snprintf(x->etag, sizeof(x->etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", x->ino,
		 x->size, x->mtime_ns);
}

/*
 * Does the list (If-Match, If-None-Match) name the tag?  "*" names any;
 * weak: W/"x" matches "x" (If-None-Match); strong: only the same "x".
 */
static int
etag_listed(const char *list, const char *etag, int weak)
{
	const char *p = list;
	size_t el = strlen(etag);

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		int is_weak = !strncmp(p, "W/", 2);
		if (is_weak)
			p += 2;
		if (*p != '"')
			return 0;
		const char *q = strchr(p + 1, '"');
		if (!q)
			return 0;
		size_t n = (size_t)(q - p) + 1;
		if ((weak || !is_weak) && n == el && !memcmp(p, etag, n))
			return 1;
		p = q + 1;
	}
	return 0;
}

static void
http_date_of(uint64_t mtime_ns, char *out, size_t len)
{
	time_t t = (time_t)(mtime_ns / 1000000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/*
 * A single range "bytes=A-B", "bytes=A-", "bytes=-N" of a file of size
 * bytes: 1 with [*start, *end), 0 to ignore it (another unit, several
 * ranges, malformed: the whole file is sent), -1 unsatisfiable.
 */
static int
parse_range(const char *v, uint64_t size, uint64_t *start, uint64_t *end)
{
	uint64_t a, b;

	if (strncasecmp(v, "bytes=", 6) != 0 || strchr(v, ','))
		return 0;
	v += 6;
	const char *dash = strchr(v, '-');
	if (!dash)
		return 0;
	if (dash == v) {
		if (parse_u64(dash + 1, strlen(dash + 1), &b) < 0)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*start = b >= size ? 0 : size - b;
		*end = size;
		return 1;
	}
	if (parse_u64(v, (size_t)(dash - v), &a) < 0)
		return 0;
	if (dash[1] == '\0') {
		b = UINT64_MAX - 1;
	} else if (parse_u64(dash + 1, strlen(dash + 1), &b) < 0 || b < a) {
		return 0;
	}
	if (a >= size)
		return -1;
	*start = a;
	*end = b >= size ? size : b + 1;
	return 1;
}

/* ---- GET and HEAD ---- */

static void
retry_due(void *opaque)
{
	struct xfer *x = opaque;

	x->refs++; /* a cut inside may drop the HTTP side's reference */
	get_deliver(x);
	xfer_unref(x);
}

static void
pread_done(void *ctx, int fault, const char *msg, struct va_frame *resp)
{
	struct slot *s = ctx;
	struct xfer *x = s->x;

	s->done = 1;
	s->fault = fault;
	if (!fault)
		adapt(x, s->sent_ms);
	if (fault)
		snprintf(s->msg, sizeof(s->msg), "%s", msg);
	s->resp = resp;
	if (x->st)
		get_deliver(x);
	xfer_unref(x);
}

/* Asks for the next chunks while the window has room. */
static void
get_pump(struct xfer *x)
{
	char h[21], o[21], c[21], msg[256];
	size_t budget = (size_t)x->window * x->chunk;

	while (x->st && x->scount < x->window && !x->eof && x->next_off < x->end &&
	       va_http_stream_queued(x->st) + (size_t)x->scount * x->chunk < budget) {
		uint64_t left = x->end - x->next_off;
		size_t n = left < x->chunk ? (size_t)left : x->chunk;
		struct slot *s = &x->slots[(x->shead + x->scount) % VA_FILES_WINDOW];
		memset(s, 0, sizeof(*s));
		s->x = x;
		s->off = x->next_off;
		s->count = n;
		s->sent_ms = va_now_ms();
		const struct va_param p[4] = {
			{ VA_FS_OP, VA_FS_OP_PREAD }, { VA_FS_HANDLE, u64s(h, x->handle) },
			{ VA_FS_OFFSET, u64s(o, s->off) }, { VA_FS_COUNT, u64s(c, n) },
		};
		int status = call(x, p, 4, NULL, 0, 0, 0, pread_done, s, msg, sizeof(msg));
		if (status) {
			cut(x, msg); /* the head went already: all we can do */
			return;
		}
		x->scount++;
		/* Unknown size: one read at a time, the next where this one ends. */
		if (x->sized)
			x->next_off += n;
		else
			break;
	}
}

/* The answer is whole: its trailer (the digest asked for), then the end. */
static void
get_end(struct xfer *x)
{
	char trailer[VA_REPR_DIGEST_MAX + 32] = "";

	if (x->hashing) {
		uint8_t d[VA_SHA256_LEN];
		char v[VA_REPR_DIGEST_MAX];
		sha256_digest(&x->sha, sizeof(d), d);
		va_repr_digest_format(d, v);
		snprintf(trailer, sizeof(trailer), "Repr-Digest: %s\r\n", v);
	}
	close_handle(x);
	va_http_stream_end(x->st, trailer[0] ? trailer : NULL);
	http_done(x);
}

/* Hands the answers that are next in order to the client. */
static void
get_deliver(struct xfer *x)
{
	char msg[512];

	while (x->st && x->scount > 0 && x->slots[x->shead].done) {
		struct slot *s = &x->slots[x->shead];
		struct va_frame *resp = s->resp;
		s->resp = NULL;
		int status = outcome(x, s->fault, s->msg, resp, msg, sizeof(msg));
		if (status) {
			va_frame_free(resp);
			cut(x, msg);
			return;
		}
		size_t got = resp->body_len;
		uint64_t eof = 0;
		va_session_param_u64(resp, VA_FS_EOF, &eof);
		if (got > s->count || (x->sized && got < s->count)) {
			va_frame_free(resp);
			cut(x, got > s->count ? "the agent answered more bytes than asked" :
			    "the file is shorter than when it was opened");
			return;
		}
		uint8_t *data = resp->body;
		resp->body = NULL;
		va_frame_free(resp);
		x->shead = (x->shead + 1) % VA_FILES_WINDOW;
		x->scount--;
		if (!x->sized) {
			x->next_off += got;
			if (eof)
				x->eof = 1;
			if (!got && !eof) {
				/* Nothing now (a FIFO, a device): ask again a little later. */
				free(data);
				if (!x->retry && !(x->retry = va_loop_timer_new(x->px->loop, retry_due, x))) {
					cut(x, "out of memory");
					return;
				}
				x->retry_ms = x->retry_ms ? 2 * x->retry_ms : RETRY_FIRST_MS;
				if (x->retry_ms > RETRY_MAX_MS)
					x->retry_ms = RETRY_MAX_MS;
				va_loop_timer_in(x->retry, x->retry_ms);
				return;
			}
			x->retry_ms = 0;
		}
		if (x->hashing)
			sha256_update(&x->sha, got, data);
		x->sent += got;
		if (got && va_http_stream_write(x->st, data, got) < 0)
			return; /* the client is going: CLOSED follows */
	}
	if (!x->st)
		return;
	if (x->scount == 0 && (x->eof || x->next_off >= x->end)) {
		get_end(x);
		return;
	}
	if (!x->retry || !va_loop_timer_armed(x->retry))
		get_pump(x);
}

static void
get_event(void *ctx, struct va_http_stream *st, unsigned ev)
{
	struct xfer *x = ctx;

	(void)st;
	x->refs++; /* x outlives what this does (http_done may drop the last other one) */
	if (ev & VA_HTTP_STREAM_CLOSED) {
		va_log_info("%s: %s %s: the client went away after %" PRIu64 " bytes",
			    va_guest_name(x->g), method_name(x), x->path, x->sent);
		x->status = 0;
		close_handle(x);
		http_done(x);
	} else if (ev & VA_HTTP_STREAM_WRITABLE) {
		get_deliver(x);
	}
	xfer_unref(x);
}

/* Starts the answer of a GET or HEAD, the file being open. */
static void
get_start(struct xfer *x, const char *digest)
{
	char extra[EXTRA_MAX], date[64];
	size_t n = 0;
	int status = 200;
	uint64_t start = 0;

	x->end = x->sized ? x->size : UINT64_MAX;
	if (x->sized) {
		make_etag(x);
		http_date_of(x->mtime_ns, date, sizeof(date));
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "ETag: %s\r\nLast-Modified: %s\r\n"
				      "Accept-Ranges: bytes\r\n", x->etag, date);
	}
	if (x->if_match && (!x->sized || !etag_listed(x->if_match, x->etag, 0))) {
		close_handle(x);
		fail(x, 412, extra, "If-Match: the file's entity tag is %s", x->sized ? x->etag :
		     "none (its contents are not stable)");
		return;
	}
	if (x->if_none_match && x->sized && etag_listed(x->if_none_match, x->etag, 1)) {
		close_handle(x);
		x->status = 304;
		va_http_stream_respond(x->st, 304, "application/octet-stream", extra, NULL, 0);
		http_done(x);
		return;
	}
	int use_range = x->range && x->sized &&
			(!x->if_range || !strcmp(x->if_range, x->etag) || !strcmp(x->if_range, date));
	if (use_range) {
		uint64_t a = 0, b = 0;
		int r = parse_range(x->range, x->size, &a, &b);
		if (r < 0) {
			close_handle(x);
			snprintf(extra + n, sizeof(extra) - n, "Content-Range: bytes */%" PRIu64 "\r\n",
				 x->size);
			fail(x, 416, extra, "the range %s is outside the file (%" PRIu64 " bytes)",
			     x->range, x->size);
			return;
		}
		if (r > 0) {
			status = 206;
			start = a;
			x->end = b;
			n += (size_t)snprintf(extra + n, sizeof(extra) - n,
					      "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
					      a, b - 1, x->size);
		}
	}
	if (digest)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Repr-Digest: %s\r\n", digest);
	/* A digest of what is sent, as a trailer: only for the whole file, asked for. */
	x->hashing = x->method == M_GET && x->want_digest && status == 200 && x->sized;
	if (x->hashing) {
		sha256_init(&x->sha);
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Trailer: Repr-Digest\r\n");
	}
	snprintf(extra + n, sizeof(extra) - n, "Content-Type: application/octet-stream\r\n");
	int64_t length = x->sized && !x->hashing ? (int64_t)(x->end - start) : -1;
	if (x->method == M_HEAD && x->sized)
		length = (int64_t)(x->end - start);
	x->status = status;
	if (va_http_stream_head(x->st, status, extra, length) < 0)
		return; /* CLOSED follows */
	x->next_off = start;
	if (x->method == M_HEAD || x->end == start) {
		get_end(x); /* an empty GET with a digest asked: the digest of nothing */
		return;
	}
	va_http_stream_set_cb(x->st, get_event, x);
	get_pump(x);
}

/* HEAD with Want-Repr-Digest: the agent's va.file.checksum, then the answer. */
static void
digest_done(void *ctx, struct va_call_result *res)
{
	struct xfer *x = ctx;
	char v[VA_REPR_DIGEST_MAX];
	const char *digest = NULL;

	/*
	 * A digest is ~200 bytes of XML: a larger answer is not one, and is
	 * not parsed on this thread, which serves every guest (a guest's
	 * 15 MiB string held it ~80 ms per HEAD).
	 */
	if (x->st && !res->fault && res->len <= DIGEST_ANSWER_MAX) {
		xmlrpc_env env;
		xmlrpc_value *result = NULL;
		int fcode = 0;
		char *fstr = NULL;
		xmlrpc_env_init(&env);
		va_rpc_parse_response_lim(&env, res->body, res->len, &va_xml_limits_small, &result,
					  &fcode, &fstr);
		const char *hex = NULL;
		uint8_t d[VA_SHA256_LEN];
		if (!env.fault_occurred && !fstr) {
			xmlrpc_read_string(&env, result, &hex);
			if (!env.fault_occurred && hex && va_sha256_from_hex(hex, strlen(hex), d) == 0) {
				va_repr_digest_format(d, v);
				digest = v;
			}
		}
		free((void *)hex);
		free(fstr);
		if (result)
			xmlrpc_DECREF(result);
		xmlrpc_env_clean(&env);
	}
	if (x->st)
		get_start(x, digest);
	xfer_unref(x);
}

static void
open_read_done(void *ctx, int fault, const char *fmsg, struct va_frame *resp)
{
	struct xfer *x = ctx;
	char msg[512];

	if (!x->st) {
		/* The client went: give a handle that was opened back. */
		uint64_t h = 0;
		if (!fault && resp && va_session_param_u64(resp, VA_FS_HANDLE, &h) == 0 &&
		    !strcasecmp(va_session_content_type(resp), VA_CONTENT_BINARY)) {
			x->handle = h;
			close_handle(x);
		}
		va_frame_free(resp);
		xfer_unref(x);
		return;
	}
	int status = outcome(x, fault, fmsg, resp, msg, sizeof(msg));
	if (!status && (va_session_param_u64(resp, VA_FS_HANDLE, &x->handle) < 0 ||
			va_session_param_u64(resp, VA_FS_INO, &x->ino) < 0 ||
			va_session_param_u64(resp, VA_FS_MTIME, &x->mtime_ns) < 0)) {
		status = 502;
		snprintf(msg, sizeof(msg), "the agent of guest %s answered open-read without a "
			 "handle", va_guest_name(x->g));
	}
	if (status) {
		va_frame_free(resp);
		fail(x, status, NULL, "%s", msg);
		xfer_unref(x);
		return;
	}
	x->sized = va_session_param_u64(resp, VA_FS_SIZE, &x->size) == 0;
	va_frame_free(resp);
	if (x->method == M_HEAD && x->want_digest && x->sized &&
	    !va_forward_blocked(x->px->fwd, "va.file.checksum")) {
		xmlrpc_env env;
		struct va_buf body = { 0 };
		xmlrpc_env_init(&env);
		xmlrpc_value *params = xmlrpc_array_new(&env), *p = NULL;
		if (!env.fault_occurred)
			p = va_text_value_z(&env, x->path);
		if (!env.fault_occurred)
			xmlrpc_array_append_item(&env, params, p);
		if (!env.fault_occurred)
			va_rpc_serialize_call(&env, &body, "va.file.checksum", params);
		if (p)
			xmlrpc_DECREF(p);
		if (params)
			xmlrpc_DECREF(params);
		int ok = !env.fault_occurred;
		xmlrpc_env_clean(&env);
		if (ok) {
			x->refs++;
			va_guest_forward(x->g, "va.file.checksum", body.data, body.len, digest_done, x);
			va_buf_free(&body);
			xfer_unref(x);
			return;
		}
		va_buf_free(&body);
	}
	get_start(x, NULL);
	xfer_unref(x);
}

/* ---- PUT ---- */

static void pwrite_done(void *ctx, int fault, const char *msg, struct va_frame *resp);

/* The end of a failed or abandoned upload: the handle goes once no write is in flight. */
static void
put_drop(struct xfer *x)
{
	free(x->wbuf);
	x->wbuf = NULL;
	x->wfill = 0;
	if (x->wflight == 0)
		close_handle(x);
}

/* Sends the chunk read so far as a pwrite (handed over).  0, or -1 after failing x. */
static int
put_send(struct xfer *x)
{
	char h[21], o[21], msg[256];
	const struct va_param p[3] = {
		{ VA_FS_OP, VA_FS_OP_PWRITE }, { VA_FS_HANDLE, u64s(h, x->handle) },
		{ VA_FS_OFFSET, u64s(o, x->wnext) },
	};
	uint8_t *data = x->wbuf;
	size_t len = x->wfill;

	x->wbuf = NULL;
	x->wfill = 0;
	x->wnext += len;
	int status = call(x, p, 3, data, len, 1, 0, pwrite_done, x, msg, sizeof(msg));
	if (status) {
		fail(x, status, NULL, "%s", msg);
		put_drop(x);
		return -1;
	}
	if (x->wflight < PWRITE_RING)
		x->wsent[(x->wsent_head + x->wflight) % PWRITE_RING] = va_now_ms();
	x->wflight++;
	return 0;
}

static void
commit_done(void *ctx, int fault, const char *fmsg, struct va_frame *resp)
{
	struct xfer *x = ctx;
	char msg[512], extra[EXTRA_MAX], v[VA_REPR_DIGEST_MAX];
	size_t n = 0;

	x->committing = 0;
	int status = outcome(x, fault, fmsg, resp, msg, sizeof(msg));
	if (status) {
		va_frame_free(resp);
		fail(x, status, NULL, "%s", msg);
		close_handle(x); /* unless the commit closed it: closing twice is no failure */
		xfer_unref(x);
		return;
	}
	x->handle = 0; /* the commit closed it */
	va_session_param_u64(resp, VA_FS_INO, &x->ino);
	va_session_param_u64(resp, VA_FS_MTIME, &x->mtime_ns);
	va_session_param_u64(resp, VA_FS_SIZE, &x->size);
	uint64_t created = 0;
	va_session_param_u64(resp, VA_FS_CREATED, &created);
	uint8_t d[VA_SHA256_LEN];
	const char *hex = va_session_param(resp, VA_FS_SHA256);
	int have_digest = 0;
	if (x->offset == 0) {
		sha256_digest(&x->sha, sizeof(d), d);
		have_digest = 1;
	} else if (hex && va_sha256_from_hex(hex, strlen(hex), d) == 0) {
		have_digest = 1;
	}
	va_frame_free(resp);
	make_etag(x);
	n += (size_t)snprintf(extra + n, sizeof(extra) - n, "ETag: %s\r\n", x->etag);
	if (have_digest) {
		va_repr_digest_format(d, v);
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Repr-Digest: %s\r\n", v);
	}
	if (x->st) {
		x->status = created ? 201 : 204;
		va_http_stream_respond(x->st, x->status, "text/plain; charset=utf-8", extra, NULL, 0);
		http_done(x);
	}
	xfer_unref(x);
}

/* Every byte is written: check, then commit (or stop short of it, or refuse). */
static void
put_commit(struct xfer *x)
{
	char h[21], hex[2 * VA_SHA256_LEN + 1], msg[256];
	uint64_t want = x->received;

	/* (range_last alone would miss "bytes 0-0/N": its last byte is 0.) */
	if (x->have_range) {
		want = x->range_last - x->offset + 1;
		if (x->received != want) {
			fail(x, 400, NULL, "Content-Range announced %" PRIu64 " bytes, the body had %"
			     PRIu64, want, x->received);
			put_drop(x);
			return;
		}
	}
	if (x->have_total && x->range_last + 1 < x->total) {
		/* A piece of the file: the rest comes in later requests. */
		close_handle(x);
		x->status = 202;
		char extra[128];
		snprintf(extra, sizeof(extra), "Va-Partial-Length: %" PRIu64 "\r\n", x->range_last + 1);
		respond_text(x->st, 202, extra, "%s%s holds %" PRIu64 " of %" PRIu64 " bytes; send "
			     "the rest from offset %" PRIu64, x->path, VA_FS_PARTIAL_SUFFIX,
			     x->range_last + 1, x->total, x->range_last + 1);
		http_done(x);
		return;
	}
	struct va_param p[3] = {
		{ VA_FS_OP, VA_FS_OP_COMMIT }, { VA_FS_HANDLE, u64s(h, x->handle) },
	};
	size_t np = 2;
	if (x->offset == 0) {
		if (x->have_sha) {
			uint8_t d[VA_SHA256_LEN];
			struct sha256_ctx copy = x->sha;
			sha256_digest(&copy, sizeof(d), d);
			if (memcmp(d, x->want_sha, sizeof(d)) != 0) {
				char got[2 * VA_SHA256_LEN + 1];
				va_sha256_to_hex(d, got);
				va_sha256_to_hex(x->want_sha, hex);
				fail(x, 409, NULL, "the SHA-256 of the body is %s, not %s: nothing was "
				     "stored under %s (the bytes are in %s%s)", got, hex, x->path,
				     x->path, VA_FS_PARTIAL_SUFFIX);
				put_drop(x);
				return;
			}
		}
	} else {
		/* A resume: only the agent has every byte, so it hashes them. */
		if (x->have_sha) {
			va_sha256_to_hex(x->want_sha, hex);
			p[np++] = (struct va_param){ VA_FS_SHA256, hex };
		} else {
			p[np++] = (struct va_param){ VA_FS_HASH, "1" };
		}
	}
	/* A hash in the guest reads it all: a timeout that allows 8 MB/s at least. */
	uint64_t t = (uint64_t)x->px->call_timeout_ms + (x->offset ? x->wnext / 8000 : 0);
	int status = call(x, p, np, NULL, 0, 0, t > UINT32_MAX ? UINT32_MAX : (unsigned)t,
			  commit_done, x, msg, sizeof(msg));
	if (status) {
		fail(x, status, NULL, "%s", msg);
		put_drop(x);
		return;
	}
	x->committing = 1;
}

/* The body ended (or the client went): what is read goes out, then the commit. */
static void
put_finish_body(struct xfer *x)
{
	if (x->wfill > 0 && x->wflight < x->window + 1) {
		if (put_send(x) < 0)
			return;
	}
	if (x->st && x->body_done && x->wfill == 0 && x->wflight == 0 && !x->committing)
		put_commit(x);
}

/* Reads the body into chunks while the window has room. */
static void
put_read(struct xfer *x)
{
	while (x->st && !x->body_done && x->wflight < x->window) {
		if (!x->wbuf) {
			/* Room for stuffing random data in place (see agent/file-stream.c). */
			x->wcap = x->chunk;
			x->wbuf = malloc(x->wcap + x->wcap / 64 + 64);
			if (!x->wbuf) {
				fail(x, 503, NULL, "out of memory");
				put_drop(x);
				return;
			}
		}
		ssize_t r = va_http_stream_read(x->st, x->wbuf + x->wfill, x->wcap - x->wfill);
		if (r > 0) {
			if (x->offset == 0)
				sha256_update(&x->sha, (size_t)r, x->wbuf + x->wfill);
			x->wfill += (size_t)r;
			x->received += (uint64_t)r;
			if (x->wfill == x->wcap && put_send(x) < 0)
				return;
			continue;
		}
		if (r == 0) {
			x->body_done = 1;
			break;
		}
		if (r == -EAGAIN)
			break;
		if (r == -EPROTO) {
			fail(x, 400, NULL, "a malformed chunked body");
			put_drop(x);
			return;
		}
		return; /* -EPIPE: the client went; CLOSED follows */
	}
	if (!x->st)
		return;
	va_http_stream_want_body(x->st, !x->body_done && x->wflight < x->window);
	if (x->body_done)
		put_finish_body(x);
}

static void
pwrite_done(void *ctx, int fault, const char *fmsg, struct va_frame *resp)
{
	struct xfer *x = ctx;
	char msg[512];

	/* The answers come in order (one channel, the agent's one thread): this is the oldest. */
	if (!fault)
		adapt(x, x->wsent[x->wsent_head]);
	x->wsent_head = (x->wsent_head + 1) % PWRITE_RING;
	x->wflight--;
	int status = outcome(x, fault, fmsg, resp, msg, sizeof(msg));
	va_frame_free(resp);
	if (status) {
		fail(x, status, NULL, "%s", msg);
		put_drop(x);
	} else if (!x->st) {
		if (x->wflight == 0)
			close_handle(x); /* the client went: the partial stays for a resume */
	} else if (x->body_done) {
		put_finish_body(x);
	} else {
		put_read(x);
	}
	xfer_unref(x);
}

static void
put_event(void *ctx, struct va_http_stream *st, unsigned ev)
{
	struct xfer *x = ctx;

	(void)st;
	x->refs++; /* x outlives what this does (http_done may drop the last other one) */
	if (ev & VA_HTTP_STREAM_CLOSED) {
		va_log_info("%s: PUT %s: the client went away after %" PRIu64 " bytes",
			    va_guest_name(x->g), x->path, x->received);
		x->status = 0;
		http_done(x);
		/* What came is written (a resume starts after it); then the handle goes. */
		if (x->wfill > 0 && x->handle)
			put_send(x);
		if (x->wflight == 0)
			close_handle(x);
	} else if (ev & VA_HTTP_STREAM_READABLE) {
		put_read(x);
	}
	xfer_unref(x);
}

static void
open_write_done(void *ctx, int fault, const char *fmsg, struct va_frame *resp)
{
	struct xfer *x = ctx;
	char msg[512];

	int status = outcome(x, fault, fmsg, resp, msg, sizeof(msg));
	if (!status && va_session_param_u64(resp, VA_FS_HANDLE, &x->handle) < 0) {
		status = 502;
		snprintf(msg, sizeof(msg), "the agent of guest %s answered open-write without a "
			 "handle", va_guest_name(x->g));
	}
	if (status) {
		char extra[64] = "";
		uint64_t have = 0;
		if (status == 416 && va_session_param_u64(resp, VA_FS_SIZE, &have) == 0)
			snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64 "\r\n", have);
		va_frame_free(resp);
		fail(x, status, extra, "%s", msg);
		xfer_unref(x);
		return;
	}
	uint64_t exists = 0;
	va_session_param_u64(resp, VA_FS_EXISTS, &exists);
	x->exists = exists != 0;
	va_frame_free(resp);
	x->wnext = x->offset;
	if (!x->st) {
		close_handle(x);
		xfer_unref(x);
		return;
	}
	va_http_stream_set_cb(x->st, put_event, x);
	/* Reads what is there (an empty body ends here: no READABLE would come). */
	put_read(x);
	xfer_unref(x);
}

/* ---- the request ---- */

/*
 * The guest and the path of target "/guests/NAME/files/PATH?QUERY": the
 * guest (no reference taken), *pathp (malloc'ed, decoded), *query (in
 * target, or NULL).  NULL after answering.
 */
static struct va_guest *
route(struct va_proxy *px, struct va_http_stream *st, const char *target, char **pathp,
      const char **query)
{
	static const char files[] = "/files/";
	const char *name = target + strlen(VA_FILES_PREFIX);
	const char *slash = strchr(name, '/');
	size_t nl = slash ? (size_t)(slash - name) : strlen(name);
	char gname[VA_PROXY_MAX_GUEST_NAME + 1];
	const char *why = NULL;

	if (!slash || nl == 0 || nl > VA_PROXY_MAX_GUEST_NAME ||
	    strncmp(slash, files, sizeof(files) - 1) != 0) {
		respond_text(st, 404, NULL, "unknown path: guest files are at "
			     "/guests/NAME/files/PATH (PATH absolute)");
		return NULL;
	}
	memcpy(gname, name, nl);
	gname[nl] = '\0';
	struct va_guest *g = va_guests_find(px, gname);
	if (!g && !strcmp(gname, "default") && va_guests_count(px) == 1)
		g = va_guests_at(px, 0);
	if (!g) {
		struct va_buf b = { 0 };
		for (size_t i = 0; i < va_guests_count(px); i++)
			va_buf_printf(&b, "%s%s", i ? ", " : "", va_guest_name(va_guests_at(px, i)));
		va_buf_append(&b, "", 1);
		respond_text(st, 404, NULL, "no guest named \"%s\"%s; the guests are: %s", gname,
			     va_guests_count(px) == 1 ? " (\"default\" names the only one)" : "",
			     b.data ? (const char *)b.data : "");
		va_buf_free(&b);
		return NULL;
	}
	const char *p = slash + sizeof(files) - 2; /* keeps the path's '/' */
	const char *q = strchr(p, '?');
	size_t pl = q ? (size_t)(q - p) : strlen(p);
	*query = q ? q + 1 : NULL;
	*pathp = pct_decode(p, pl, &why);
	if (!*pathp) {
		respond_text(st, 400, NULL, "%s", why);
		return NULL;
	}
	return g;
}

void
va_files_stream(void *opaque, struct va_http_stream *st, const struct va_http_head *hd)
{
	struct va_proxy *px = opaque;
	const char *m = hd->method, *query = NULL;
	char *path = NULL;
	enum method method;

	if (!strcmp(m, "GET"))
		method = M_GET;
	else if (!strcmp(m, "HEAD"))
		method = M_HEAD;
	else if (!strcmp(m, "PUT"))
		method = M_PUT;
	else {
		respond_text(st, 405, "Allow: GET, HEAD, PUT\r\n", "%s: guest files are read with "
			     "GET and HEAD and written with PUT", m);
		return;
	}
	struct va_guest *g = route(px, st, hd->target, &path, &query);
	if (!g)
		return;
	/* The proxy's --block-rpcs, as for the XML-RPC methods these stand for. */
	const char *const need[] = { "va.file.open", method == M_PUT ? "va.file.write" : "va.file.read" };
	for (size_t i = 0; i < 2; i++) {
		if (va_forward_blocked(px->fwd, need[i])) {
			respond_text(st, 403, NULL, "%s is blocked by the proxy (--block-rpcs): %s of "
				     "guest files is off", need[i], method == M_PUT ? "writing" : "reading");
			free(path);
			return;
		}
	}
	if (va_guest_stream_begin(g, VA_FILES_MAX_STREAMS) < 0) {
		respond_text(st, 503, "Retry-After: 1\r\n", "guest %s has %d file transfers running, "
			     "the most it takes: try again when one has ended", va_guest_name(g),
			     VA_FILES_MAX_STREAMS);
		free(path);
		return;
	}
	struct xfer *x = calloc(1, sizeof(*x));
	if (!x) {
		va_guest_stream_end(g);
		respond_text(st, 503, NULL, "out of memory");
		free(path);
		return;
	}
	va_guest_ref(g);
	x->px = px;
	x->g = g;
	x->st = st;
	x->refs = 1;
	x->method = method;
	x->path = path;
	x->started_ms = va_now_ms();
	/* Chunks whose stuffed size fits both sides' limits, the window under half of them. */
	size_t lim = px->max_frame, peer = va_guest_peer_max_frame(g);
	if (peer && peer < lim)
		lim = peer;
	x->window = VA_FILES_WINDOW;
	/* (A guest may say its limit is 1 byte: no chunk below the least.) */
	size_t per = lim / (2 * VA_FILES_WINDOW);
	x->chunk = per > VA_FILES_CHUNK_MIN + 512 ? per - 512 : VA_FILES_CHUNK_MIN;
	if (x->chunk > VA_FILES_CHUNK)
		x->chunk = VA_FILES_CHUNK;
	x->chunk_max = x->chunk;
	if (x->chunk > VA_FILES_CHUNK_FIRST)
		x->chunk = VA_FILES_CHUNK_FIRST;
	x->range = dup_or_null(hd->range);
	x->if_range = dup_or_null(hd->if_range);
	x->if_match = dup_or_null(hd->if_match);
	x->if_none_match = dup_or_null(hd->if_none_match);
	x->want_digest = wants_sha256(hd->want_repr_digest);
	va_http_stream_set_cb(st, method == M_PUT ? put_event : get_event, x);

	char msg[512];
	int status;
	if (method == M_PUT) {
		int have_offset = 0;
		const char *why = NULL;
		sha256_init(&x->sha);
		if (query && parse_query(x, query, &have_offset, &why) < 0) {
			fail(x, 400, NULL, "%s", why);
			return;
		}
		uint64_t qoff = x->offset;
		if (hd->content_range) {
			if (parse_content_range(x, hd->content_range) < 0) {
				fail(x, 400, NULL, "Content-Range must be \"bytes FIRST-LAST/TOTAL\" "
				     "(or /*)");
				return;
			}
			if (have_offset && qoff != x->offset) {
				fail(x, 400, NULL, "?offset=%" PRIu64 " and Content-Range (from %" PRIu64
				     ") disagree", qoff, x->offset);
				return;
			}
			int64_t bl = va_http_stream_body_length(st);
			if (bl >= 0 && (uint64_t)bl != x->range_last - x->offset + 1) {
				fail(x, 400, NULL, "Content-Range names %" PRIu64 " bytes, the body has %"
				     PRId64, x->range_last - x->offset + 1, bl);
				return;
			}
		}
		char o[21];
		struct va_param p[3] = {
			{ VA_FS_OP, VA_FS_OP_OPEN_WRITE }, { VA_FS_OFFSET, u64s(o, x->offset) },
		};
		size_t np = 2;
		if (x->perm)
			p[np++] = (struct va_param){ VA_FS_PERM, x->perm };
		status = call(x, p, np, x->path, strlen(x->path), 0, 0, open_write_done, x, msg,
			      sizeof(msg));
	} else {
		if (query && *query) {
			fail(x, 400, NULL, "GET and HEAD take no query");
			return;
		}
		const struct va_param p[1] = { { VA_FS_OP, VA_FS_OP_OPEN_READ } };
		status = call(x, p, 1, x->path, strlen(x->path), 0, 0, open_read_done, x, msg,
			      sizeof(msg));
	}
	if (status)
		fail(x, status, NULL, "%s", msg);
}
