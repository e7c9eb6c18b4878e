/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-http.c - XML-RPC calls that vactl posts itself on libcurl easy
 * handles (push and pull's lanes, exec's streams): the XML is written by
 * hand, the answer read by the caller's own scanner or by xmlrpc-c.
 * Errors are worded and classified as vactl-rpc.c does xmlrpc-c's.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vactl.h"

int
vactl_bytes_reserve(struct vactl_bytes *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return -1;
	size_t need = b->len + extra + 1; /* and a NUL */
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
vactl_bytes_add(struct vactl_bytes *b, const void *p, size_t n)
{
	if (vactl_bytes_reserve(b, n) < 0)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
vactl_bytes_printf(struct vactl_bytes *b, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return vactl_bytes_add(b, buf, (size_t)n);
}

void
vactl_bytes_free(struct vactl_bytes *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct vactl_bytes *resp = arg;
	size_t len = size * n;

	if (resp->len + len > VACTL_XML_LIMIT || vactl_bytes_add(resp, p, len) < 0)
		return 0; /* libcurl fails the transfer with a write error */
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

struct curl_slist *
vactl_http_headers(void)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/xml");
	/* No "Expect: 100-continue" round trip before a large body. */
	struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;

	if (!h2)
		curl_slist_free_all(h);
	return h2;
}

int
vactl_http_init(struct vactl *v, struct vactl_http *h, struct curl_slist *headers, void *priv,
		unsigned long extra_ms)
{
	long timeout_ms = v->timeout_s ? (long)v->timeout_s * 1000 + (long)v->extra_wait_ms +
					 (long)extra_ms : 0;
	CURL *e = h->easy = curl_easy_init();

	if (!e)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, v->http_url);
	if (v->unix_path)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, v->unix_path);
	if (v->password) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, v->user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, v->password);
	}
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vactl/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &h->resp);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, priv);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (timeout_ms)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	return 0;
}

void
vactl_http_cleanup(struct vactl_http *h, CURLM *multi, int busy)
{
	if (h->easy) {
		if (busy && multi)
			curl_multi_remove_handle(multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	vactl_bytes_free(&h->req);
	vactl_bytes_free(&h->resp);
	h->easy = NULL;
}

int
vactl_http_post(CURLM *multi, struct vactl_http *h, char *why, size_t whylen)
{
	h->resp.len = 0;
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->req.data);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->req.len);
	CURLMcode mc = curl_multi_add_handle(multi, h->easy);
	if (mc != CURLM_OK) {
		snprintf(why, whylen, "%s", curl_multi_strerror(mc));
		return -1;
	}
	return 0;
}

void
vactl_http_error(struct vactl *v, struct vactl_http *h, CURLcode code, struct vactl_error *err)
{
	const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(code);

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
		long e = 0;
		curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &e);
		snprintf(err->msg, sizeof(err->msg), "cannot connect to the unix socket %s: %s",
			 v->unix_path, e ? strerror((int)e) : curl_easy_strerror(code));
	} else {
		snprintf(err->msg, sizeof(err->msg), "%s", why);
	}
	size_t n = strlen(err->msg);
	while (n > 0 && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
		err->msg[--n] = '\0';
}

int
vactl_http_status(struct vactl_http *h, struct vactl_error *err)
{
	long status = 0;

	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200)
		return 0;
	err->kind = VACTL_ERR_HTTP;
	err->code = (int)status;
	snprintf(err->msg, sizeof(err->msg), "HTTP response code is %ld, not 200", status);
	return -1;
}

xmlrpc_value *
vactl_http_result(struct vactl_http *h, struct vactl_error *err)
{
	xmlrpc_env env;
	xmlrpc_value *result = NULL;
	int fcode = 0;
	const char *fstr = NULL;

	xmlrpc_env_init(&env);
	xmlrpc_parse_response2(&env, h->resp.data ? h->resp.data : "", h->resp.len, &result,
			       &fcode, &fstr);
	if (env.fault_occurred) {
		err->kind = VACTL_ERR_PROTOCOL;
		snprintf(err->msg, sizeof(err->msg), "%s", env.fault_string);
		result = NULL;
	} else if (fstr) {
		err->kind = VACTL_ERR_FAULT;
		err->code = fcode;
		snprintf(err->msg, sizeof(err->msg), "%s", fstr);
		free((void *)fstr);
		result = NULL;
	}
	xmlrpc_env_clean(&env);
	return result;
}
