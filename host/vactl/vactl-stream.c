/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-stream.c - push and pull through the proxy's file endpoints
 * (GET and PUT /guests/NAME/files/PATH, docs/USAGE.md section 7): the
 * bytes travel raw, without base64 or XML, and an upload lands under its
 * name only when whole (the agent writes PATH.partial and renames it).
 *
 * One libcurl easy transfer, blocking (curl_easy_perform): the proxy
 * keeps a few frames in flight itself, so one stream moves as fast as
 * vactl's lanes and costs the three processes far less.  A proxy or an
 * agent without the endpoints (an older proxy: 404 "unknown path \"...",
 * or 405; a protocol-1 agent: 501) is told apart before any byte of the
 * file moved (an upload waits for "100 Continue"), and the caller then
 * uses the XML-RPC methods.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "vactl.h"

/* The start of an error answer kept for the message. */
#define ERR_BODY_MAX 512

struct stream {
	struct vactl *v;
	struct vactl_stream_io *io;
	CURL *easy;
	long status;            /* once the head came */
	int is_error;           /* a status other than 2xx: the body is the message */
	char body[ERR_BODY_MAX + 1];
	size_t body_len;
	int local_failed;       /* a local read or write failed (io->err says) */
	int range_ignored;      /* a 200 to a Range: the whole file, not its rest */
	char errbuf[CURL_ERROR_SIZE];
};

/* The URL of remote's file endpoint (malloc'ed), from the RPC URL; NULL: no memory. */
static char *
files_url(struct vactl *v, const char *remote)
{
	static const char keep[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789/-._~";
	struct va_buf b = { 0 };
	const char *u = v->http_url;
	const char *auth = strstr(u, "://");
	const char *path = auth ? auth + 3 + strcspn(auth + 3, "/") : u + strlen(u);
	/* What precedes /RPC2 in the path is a prefix (a reverse proxy's): kept. */
	const char *rpc = strstr(path, VA_PROXY_RPC_PATH);
	size_t prefix = rpc ? (size_t)(rpc - u) : (size_t)(path - u);

	if (va_buf_printf(&b, "%.*s/guests/%s/files", (int)prefix, u,
			  v->guest ? v->guest : "default") < 0)
		goto oom;
	for (const unsigned char *p = (const unsigned char *)remote; *p; p++) {
		int r = strchr(keep, *p) ? va_buf_printf(&b, "%c", *p)
					  : va_buf_printf(&b, "%%%02X", *p);
		if (r < 0)
			goto oom;
	}
	if (va_buf_append(&b, "", 1) < 0)
		goto oom;
	size_t len;
	char *s = (char *)va_buf_steal(&b, &len);
	va_buf_free(&b);
	return s;
oom:
	va_buf_free(&b);
	return NULL;
}

/* The status of the answer, at its first body byte or its end. */
static void
head_seen(struct stream *s)
{
	if (s->status)
		return;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
	s->is_error = s->status < 200 || s->status > 299;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	struct vactl_stream_io *io = s->io;
	size_t len = size * n;

	head_seen(s);
	if (io->pull && io->offset > 0 && s->status == 200) {
		s->range_ignored = 1;
		return 0; /* stops: appending the whole file would be wrong */
	}
	if (s->is_error || !io->pull) {
		size_t k = len < ERR_BODY_MAX - s->body_len ? len : ERR_BODY_MAX - s->body_len;
		memcpy(s->body + s->body_len, p, k);
		s->body_len += k;
		return len;
	}
	for (size_t done = 0; done < len;) {
		ssize_t w = write(io->fd, p + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(io->err, sizeof(io->err), "cannot write %s: %s", io->local,
				 strerror(errno));
			s->local_failed = 1;
			return 0; /* libcurl stops with a write error */
		}
		done += (size_t)w;
	}
	io->sha_update(io->ctx, p, len);
	io->done += len;
	io->progress(io->ctx, io->done);
	return len;
}

static size_t
on_read(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	struct vactl_stream_io *io = s->io;
	size_t len = size * n;

	for (;;) {
		ssize_t r = read(io->fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(io->err, sizeof(io->err), "cannot read %s: %s", io->local,
				 strerror(errno));
			s->local_failed = 1;
			return CURL_READFUNC_ABORT;
		}
		io->sha_update(io->ctx, p, (size_t)r);
		io->done += (uint64_t)r;
		io->progress(io->ctx, io->done);
		return (size_t)r;
	}
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
	    curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return vactl_interrupted ? 1 : 0;
}

/* The answer's message: its first line of text, made printable. */
static const char *
answer_text(struct stream *s)
{
	while (s->body_len > 0 && (s->body[s->body_len - 1] == '\n' ||
				   s->body[s->body_len - 1] == '\r'))
		s->body_len--;
	s->body[s->body_len] = '\0';
	for (size_t i = 0; i < s->body_len; i++)
		if ((unsigned char)s->body[i] < 0x20)
			s->body[i] = ' ';
	return s->body;
}

int
vactl_stream_run(struct vactl *v, const char *remote, struct vactl_stream_io *io)
{
	struct stream s = { .v = v, .io = io };
	struct curl_slist *headers = NULL;
	char *url = files_url(v, remote);
	int rc = VACTL_STREAM_FAILED;

	io->err[0] = '\0';
	io->status = 0;
	if (!url || !(s.easy = curl_easy_init())) {
		snprintf(io->err, sizeof(io->err), "out of memory");
		free(url);
		return VACTL_STREAM_FAILED;
	}
	if (!io->pull && io->mode >= 0) {
		char *u = NULL;
		if (asprintf(&u, "%s?mode=%04o", url, (unsigned)io->mode) < 0) {
			snprintf(io->err, sizeof(io->err), "out of memory");
			free(url);
			curl_easy_cleanup(s.easy);
			return VACTL_STREAM_FAILED;
		}
		free(url);
		url = u;
	}
	CURL *e = s.easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	if (v->unix_path)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, v->unix_path);
	if (v->password) {
		/* Basic only: sent with the first request, so an upload is not refused after it went. */
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, v->user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, v->password);
	}
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vactl/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s.errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	/* A stall (no byte for --timeout seconds) fails; a long transfer that moves does not. */
	if (v->timeout_s) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)v->timeout_s);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)v->timeout_s);
	}
	if (io->pull && io->offset > 0) {
		char range[64];
		snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", io->offset);
		headers = curl_slist_append(headers, range);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	}
	if (!io->pull) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &s);
		if (io->size_known)
			curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)io->size);
		/* Always ask before sending: a refusal (or an old proxy) costs no upload. */
		headers = curl_slist_append(headers, "Expect: 100-continue");
		curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 30000L);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	}
	CURLcode code = curl_easy_perform(e);
	head_seen(&s);
	io->status = s.status;
	if (s.local_failed) {
		rc = VACTL_STREAM_FAILED;
	} else if (s.range_ignored) {
		snprintf(io->err, sizeof(io->err), "the proxy answered the whole file to a request "
			 "for its bytes from %" PRIu64 " on", io->offset);
		rc = VACTL_STREAM_FAILED;
	} else if (io->pull && io->offset > 0 && s.status == 416) {
		/* Nothing from offset on: LOCAL is whole already (the checksum says). */
		rc = VACTL_STREAM_OK;
	} else if (code == CURLE_ABORTED_BY_CALLBACK && vactl_interrupted) {
		snprintf(io->err, sizeof(io->err), "interrupted");
		rc = VACTL_STREAM_INTERRUPTED;
	} else if (s.is_error && io->done == 0 &&
		   (s.status == 405 || s.status == 501 ||
		    (s.status == 404 && !strncmp(answer_text(&s), "unknown path \"", 14)))) {
		/*
		 * An older proxy (its 404 for a path it does not route, or 405 for
		 * what is not a POST) or a protocol-1 agent (501): the XML-RPC
		 * methods do it.
		 */
		snprintf(io->err, sizeof(io->err), "HTTP %ld: %s", s.status, answer_text(&s));
		rc = VACTL_STREAM_UNSERVED;
	} else if (code != CURLE_OK && !s.is_error) {
		snprintf(io->err, sizeof(io->err), "%s", s.errbuf[0] ? s.errbuf :
			 curl_easy_strerror(code));
		rc = code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ?
		     VACTL_STREAM_UNREACHABLE : VACTL_STREAM_FAILED;
	} else if (s.is_error) {
		snprintf(io->err, sizeof(io->err), "%s", answer_text(&s));
		rc = VACTL_STREAM_HTTP;
	} else {
		rc = VACTL_STREAM_OK;
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(e);
	free(url);
	return rc;
}
