/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-http.c - vactl's one HTTP client: XML-RPC bodies POSTed to the
 * proxy with libcurl's multi interface, several in flight.
 *
 * Every call of vactl goes through here: the ordinary ones (vactl-rpc.c,
 * which serialises and parses them with common/'s functions) and the
 * lanes of push and pull (vactl-transfer.c, which write their file calls
 * by hand).  A post is an easy handle of its own, reused from call to
 * call; libcurl keeps the connections of one multi handle in one cache,
 * so a post reuses a keep-alive connection that an earlier one left.
 * http: and https: URLs go over TCP, unix: ones through
 * CURLOPT_UNIX_SOCKET_PATH (the host name of the URL is then unused).
 *
 * Failures are classified here, once, from libcurl's codes: a timeout
 * (--timeout, CURLOPT_TIMEOUT_MS), an interrupt (vactl_interrupted makes
 * the progress callback abort the transfer), an answer that is not HTTP,
 * an HTTP status other than 200, and anything else as "cannot reach".
 * libcurl's own words (its error buffer) become the message.
 */
#include "config.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "buf.h"
#include "vactl.h"

struct vactl_post {
	struct vactl_http *http;
	struct vactl_post *next_idle; /* on the idle list of vactl_post_get() */
	CURL *easy;
	struct va_buf body;           /* the request, written by the caller */
	struct va_buf resp;           /* the answer's body */
	vactl_post_done_fn *done;
	void *arg;
	int busy;
	char errbuf[CURL_ERROR_SIZE];
};

struct vactl_http {
	struct vactl *v;
	CURLM *multi;
	struct curl_slist *headers;
	int in_flight;
	struct vactl_post *idle;      /* posts vactl_post_put() gave back */
};

static int curl_ready;

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct vactl_post *post = arg;
	size_t len = size * n;

	/* The longest answer vactl takes; libcurl fails the transfer with a write error. */
	if (len > VACTL_XML_LIMIT - post->resp.len || va_buf_append(&post->resp, p, len) < 0)
		return 0;
	return len;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return vactl_interrupted; /* non-zero aborts the transfer */
}

int
vactl_http_open(struct vactl *v)
{
	struct vactl_http *h;

	if (v->http)
		return 0;
	/* libcurl's global set-up is not thread-safe: vactl has one thread. */
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -1;
		curl_ready = 1;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	h->v = v;
	h->multi = curl_multi_init();
	h->headers = curl_slist_append(NULL, "Content-Type: text/xml");
	/* No "Expect: 100-continue" round trip before a large body. */
	struct curl_slist *l = h->headers ? curl_slist_append(h->headers, "Expect:") : NULL;
	if (!h->multi || !l) {
		if (h->multi)
			curl_multi_cleanup(h->multi);
		curl_slist_free_all(h->headers);
		free(h);
		return -1;
	}
	v->http = h;
	return 0;
}

static void
post_destroy(struct vactl_post *p)
{
	if (p->easy) {
		if (p->busy) {
			curl_multi_remove_handle(p->http->multi, p->easy);
			p->http->in_flight--;
		}
		curl_easy_cleanup(p->easy);
	}
	va_buf_free(&p->body);
	va_buf_free(&p->resp);
	free(p);
}

void
vactl_http_close(struct vactl *v)
{
	struct vactl_http *h = v->http;

	if (!h)
		return;
	while (h->idle) {
		struct vactl_post *p = h->idle;
		h->idle = p->next_idle;
		post_destroy(p);
	}
	/* Posts still owned by their callers must be freed before. */
	curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	free(h);
	v->http = NULL;
	if (curl_ready)
		curl_global_cleanup();
	curl_ready = 0;
}

struct vactl_post *
vactl_post_new(struct vactl *v)
{
	struct vactl_post *p;
	CURL *e;

	if (vactl_http_open(v) < 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->http = v->http;
	e = p->easy = curl_easy_init();
	if (!e) {
		free(p);
		return NULL;
	}
	curl_easy_setopt(e, CURLOPT_URL, v->http_url);
	if (v->unix_path)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, v->unix_path);
	if (v->password) {
		/* Basic only: sent with the first request, no 401 round trip. */
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, v->user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, v->password);
	}
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, v->http->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vactl/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, p);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	return p;
}

void
vactl_post_free(struct vactl_post *p)
{
	if (p)
		post_destroy(p);
}

struct vactl_post *
vactl_post_get(struct vactl *v)
{
	struct vactl_http *h = v->http;

	if (h && h->idle) {
		struct vactl_post *p = h->idle;
		h->idle = p->next_idle;
		p->next_idle = NULL;
		return p;
	}
	return vactl_post_new(v);
}

void
vactl_post_put(struct vactl_post *p)
{
	if (!p)
		return;
	if (p->busy) {
		post_destroy(p);
		return;
	}
	p->next_idle = p->http->idle;
	p->http->idle = p;
}

struct va_buf *
vactl_post_body(struct vactl_post *p)
{
	return &p->body;
}

int
vactl_post_start(struct vactl_post *p, vactl_post_done_fn *done, void *arg,
		 struct vactl_error *err)
{
	struct vactl_http *h = p->http;
	struct vactl *v = h->v;
	long timeout_ms = v->timeout_s ? (long)v->timeout_s * 1000 + (long)v->extra_wait_ms : 0;

	if (vactl_interrupted) {
		err->kind = VACTL_ERR_INTERRUPTED;
		err->code = 0;
		snprintf(err->msg, sizeof(err->msg), "interrupted");
		return -1;
	}
	if (p->busy) {
		vactl_error_local(err, "internal: a post started twice");
		return -1;
	}
	p->resp.len = 0;
	p->errbuf[0] = '\0';
	p->done = done;
	p->arg = arg;
	/* Milliseconds for the whole exchange; 0 waits forever. */
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body.data ? (char *)p->body.data : "");
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body.len);
	CURLMcode mc = curl_multi_add_handle(h->multi, p->easy);
	if (mc != CURLM_OK) {
		vactl_error_local(err, "libcurl cannot start the call: %s", curl_multi_strerror(mc));
		return -1;
	}
	p->busy = 1;
	h->in_flight++;
	return 0;
}

/* Why a transfer failed, in vactl's kinds and libcurl's words. */
static void
post_error(struct vactl_post *p, CURLcode code, struct vactl_error *err)
{
	struct vactl *v = p->http->v;
	const char *why = p->errbuf[0] ? p->errbuf : curl_easy_strerror(code);

	err->code = 0;
	if (code == CURLE_ABORTED_BY_CALLBACK || vactl_interrupted) {
		err->kind = VACTL_ERR_INTERRUPTED;
		why = "interrupted";
	} else if (code == CURLE_OPERATION_TIMEDOUT) {
		err->kind = VACTL_ERR_TIMEOUT;
	} else if (code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_WEIRD_SERVER_REPLY) {
		err->kind = VACTL_ERR_PROTOCOL;
	} else {
		err->kind = VACTL_ERR_UNREACHABLE;
	}
	if (code == CURLE_COULDNT_CONNECT && v->unix_path) {
		/* libcurl words it as if for TCP ("localhost port 80"): say what it was. */
		long e = 0;
		curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &e);
		snprintf(err->msg, sizeof(err->msg), "cannot connect to the unix socket %s: %s",
			 v->unix_path, e ? strerror((int)e) : curl_easy_strerror(code));
	} else {
		snprintf(err->msg, sizeof(err->msg), "%s", why);
	}
	/* libcurl's messages may end with a newline. */
	size_t n = strlen(err->msg);
	while (n > 0 && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
		err->msg[--n] = '\0';
}

/* A transfer ended: its completion runs (it may start posts, this one too). */
static void
post_finish(struct vactl_post *p, CURLcode code)
{
	struct vactl_http *h = p->http;
	struct vactl_error err = { 0 };
	long status = 0;

	curl_multi_remove_handle(h->multi, p->easy);
	p->busy = 0;
	h->in_flight--;
	if (code != CURLE_OK) {
		post_error(p, code, &err);
		p->done(p->arg, NULL, 0, &err);
		return;
	}
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		err.kind = VACTL_ERR_HTTP;
		err.code = (int)status;
		snprintf(err.msg, sizeof(err.msg), "HTTP response code is %ld, not 200", status);
		p->done(p->arg, NULL, 0, &err);
		return;
	}
	p->done(p->arg, p->resp.data ? (const char *)p->resp.data : "", p->resp.len, NULL);
}

/*
 * Runs libcurl's transfers once and the completions of the posts that
 * ended.  Returns 1 when a post ended, 0 when none did, -1 when *stop was
 * set by a completion (the rest of libcurl's messages stay queued for the
 * next pass).
 */
static int
http_perform(struct vactl_http *h, const int *stop)
{
	int running = 0, left = 0, finished = 0;
	CURLMsg *msg;

	curl_multi_perform(h->multi, &running);
	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		CURLcode code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		/* msg is invalid once the handle is removed (post_finish). */
		post_finish((struct vactl_post *)(void *)priv, code);
		finished = 1;
		if (stop && *stop)
			return -1;
	}
	return finished;
}

void
vactl_http_run(struct vactl *v, const int *stop)
{
	struct vactl_http *h = v->http;

	while (h && h->in_flight > 0 && !(stop && *stop)) {
		int finished = http_perform(h, stop);
		if (finished < 0)
			return;
		/*
		 * Posts that completions started run at once, without a wait.
		 * curl_multi_wait returns sooner when libcurl has a timer due
		 * (a timeout), and on a signal (EINTR), after which the next
		 * perform aborts the transfers through on_progress.
		 */
		if (!finished && h->in_flight > 0)
			curl_multi_wait(h->multi, NULL, 0, 100, NULL);
	}
}

int
vactl_http_poll(struct vactl *v, struct pollfd *fds, unsigned nfds, int timeout_ms)
{
	struct vactl_http *h = v->http;
	struct curl_waitfd w[VACTL_POLL_FDS_MAX];

	if (!h || nfds > VACTL_POLL_FDS_MAX)
		return -1;
	for (unsigned i = 0; i < nfds; i++) {
		short e = fds[i].events;
		w[i] = (struct curl_waitfd){
			.fd = fds[i].fd,
			.events = (short)((e & POLLIN ? CURL_WAIT_POLLIN : 0) |
					  (e & POLLPRI ? CURL_WAIT_POLLPRI : 0) |
					  (e & POLLOUT ? CURL_WAIT_POLLOUT : 0)),
		};
	}
	/*
	 * curl_multi_poll (not _wait) sleeps even with no transfer, so the
	 * caller's fds alone can be waited on; it returns early for
	 * libcurl's sockets and timers (a post just started is due at once),
	 * and on a signal (EINTR counts as nothing ready).
	 */
	CURLMcode mc = curl_multi_poll(h->multi, w, nfds, timeout_ms, NULL);
	/*
	 * libcurl reports only POLLIN, POLLPRI and POLLOUT of these fds,
	 * not POLLHUP (a pipe's end with nothing left to read) nor POLLERR:
	 * ask the kernel again, without waiting, for the whole answer.
	 */
	if (nfds > 0 && poll(fds, nfds, 0) < 0)
		for (unsigned i = 0; i < nfds; i++)
			fds[i].revents = 0;
	if (mc != CURLM_OK)
		return -1;
	return http_perform(h, NULL) > 0;
}
