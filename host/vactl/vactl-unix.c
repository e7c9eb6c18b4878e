/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-unix.c - an xmlrpc-c client transport for HTTP over a unix
 * socket, so that vactl reaches a va-proxy started with
 * --listen unix:PATH.
 *
 * xmlrpc-c 1.33's curl transport has no way to set libcurl's
 * CURLOPT_UNIX_SOCKET_PATH, but xmlrpc_client_create() takes any
 * transport as a table of operations (xmlrpc-c/transport.h).  This one
 * drives libcurl's multi interface itself: send_request starts a POST,
 * finish_asynch runs the transfers until all are done (or the timeout or
 * the interrupt flag), calling each completion as its transfer ends.  A
 * completion may start new calls.
 *
 * Errors are worded as the curl transport words them ("libcurl failed to
 * execute the HTTP POST transaction, explaining: ...", "HTTP response code
 * is N, not 200"), so vactl-rpc.c classifies both alike.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/client.h>
#include <xmlrpc-c/transport.h>

#include "vactl.h"

struct unix_rpc {
	struct unix_rpc *next;
	struct xmlrpc_client_transport *t;
	CURL *easy;
	struct curl_slist *headers;
	xmlrpc_mem_block *response;
	xmlrpc_transport_asynch_complete complete;
	struct xmlrpc_call_info *call_info;
	/* A synchronous call (unix_call) waits for this instead. */
	int *sync_done;
	xmlrpc_env *sync_env;
	xmlrpc_mem_block **sync_response;
	char errbuf[CURL_ERROR_SIZE];
};

struct xmlrpc_client_transport {
	CURLM *multi;
	char *path;
	char *url;
	unsigned long timeout_ms;
	int *interrupt;
	struct unix_rpc *rpcs;
};

struct vactl_unix {
	struct xmlrpc_client_transport t;
};

static size_t
collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct unix_rpc *rpc = arg;
	xmlrpc_env env;
	size_t len = size * nmemb;

	if (xmlrpc_mem_block_size(rpc->response) + len > VACTL_XML_LIMIT)
		return 0; /* libcurl fails the transfer with a write error */
	xmlrpc_env_init(&env);
	xmlrpc_mem_block_append(&env, rpc->response, data, len);
	int failed = env.fault_occurred;
	xmlrpc_env_clean(&env);
	return failed ? 0 : len;
}

static int
progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct unix_rpc *rpc = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	/* Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
	return rpc->t->interrupt && *rpc->t->interrupt;
}

static void
rpc_free(struct unix_rpc *rpc)
{
	if (rpc->easy)
		curl_easy_cleanup(rpc->easy);
	curl_slist_free_all(rpc->headers);
	if (rpc->response)
		xmlrpc_mem_block_free(rpc->response);
	free(rpc);
}

static void
unlink_rpc(struct unix_rpc *rpc)
{
	struct unix_rpc **pp = &rpc->t->rpcs;

	while (*pp && *pp != rpc)
		pp = &(*pp)->next;
	if (*pp)
		*pp = rpc->next;
	curl_multi_remove_handle(rpc->t->multi, rpc->easy);
}

/* Ends a transfer: its completion runs, then it is freed. */
static void
finish_rpc(struct unix_rpc *rpc, CURLcode code)
{
	xmlrpc_env env;

	unlink_rpc(rpc);
	xmlrpc_env_init(&env);
	if (code == CURLE_COULDNT_CONNECT) {
		/* libcurl words it as if for TCP ("localhost port 80"): say what it was. */
		long e = 0;
		curl_easy_getinfo(rpc->easy, CURLINFO_OS_ERRNO, &e);
		xmlrpc_env_set_fault_formatted(&env, XMLRPC_NETWORK_ERROR,
			"libcurl failed to execute the HTTP POST transaction, explaining:  "
			"cannot connect to the unix socket %s: %s", rpc->t->path,
			e ? strerror((int)e) : curl_easy_strerror(code));
	} else if (code != CURLE_OK) {
		const char *why = rpc->errbuf[0] ? rpc->errbuf : curl_easy_strerror(code);
		xmlrpc_env_set_fault_formatted(&env, XMLRPC_NETWORK_ERROR,
			"libcurl failed to execute the HTTP POST transaction, explaining:  %s",
			why);
	} else {
		long status = 0;
		curl_easy_getinfo(rpc->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200)
			xmlrpc_env_set_fault_formatted(&env, XMLRPC_NETWORK_ERROR,
				"HTTP response code is %ld, not 200", status);
	}
	if (rpc->sync_done) {
		*rpc->sync_done = 1;
		if (env.fault_occurred) {
			xmlrpc_env_set_fault(rpc->sync_env, env.fault_code, env.fault_string);
		} else {
			*rpc->sync_response = rpc->response;
			rpc->response = NULL;
		}
	} else {
		rpc->complete(rpc->call_info, rpc->response, env);
	}
	xmlrpc_env_clean(&env);
	rpc_free(rpc);
}

static void
unix_send_request(xmlrpc_env *env, struct xmlrpc_client_transport *t,
		  const xmlrpc_server_info *server, xmlrpc_mem_block *xml,
		  xmlrpc_transport_asynch_complete complete, xmlrpc_transport_progress prog,
		  struct xmlrpc_call_info *call_info)
{
	struct unix_rpc *rpc = calloc(1, sizeof(*rpc));
	struct curl_slist *h;

	(void)server; /* the URL and the socket were fixed when t was made */
	(void)prog;
	if (!rpc) {
		xmlrpc_faultf(env, "out of memory");
		return;
	}
	rpc->t = t;
	rpc->complete = complete;
	rpc->call_info = call_info;
	rpc->easy = curl_easy_init();
	rpc->response = xmlrpc_mem_block_new(env, 0);
	if (env->fault_occurred) {
		rpc->response = NULL;
		rpc_free(rpc);
		return;
	}
	h = curl_slist_append(NULL, "Content-Type: text/xml");
	if (h)
		rpc->headers = h;
	/* No "Expect: 100-continue" round trip before the body. */
	h = h ? curl_slist_append(h, "Expect:") : NULL;
	if (!rpc->easy || !h) {
		xmlrpc_faultf(env, "out of memory");
		rpc_free(rpc);
		return;
	}
	rpc->headers = h;
	CURL *e = rpc->easy;
	curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, t->path);
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, xmlrpc_mem_block_contents(xml));
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)xmlrpc_mem_block_size(xml));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, rpc->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vactl/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, rpc);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rpc->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, rpc);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, rpc);
	if (t->timeout_ms)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	CURLMcode mc = curl_multi_add_handle(t->multi, e);
	if (mc != CURLM_OK) {
		xmlrpc_faultf(env, "libcurl cannot start the transfer: %s", curl_multi_strerror(mc));
		rpc_free(rpc);
		return;
	}
	rpc->next = t->rpcs;
	t->rpcs = rpc;
}

static unsigned long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000ul + (unsigned long)(ts.tv_nsec / 1000000);
}

/* Runs the transfers until none is left, or until *stop, or the deadline. */
static void
run(struct xmlrpc_client_transport *t, int has_deadline, unsigned long deadline, int *stop)
{
	while (t->rpcs && !(stop && *stop)) {
		int running = 0, left = 0;
		CURLMsg *msg;

		curl_multi_perform(t->multi, &running);
		while ((msg = curl_multi_info_read(t->multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			CURLcode code = msg->data.result;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			/* The message is invalid once the handle is removed. */
			if (priv)
				finish_rpc((struct unix_rpc *)(void *)priv, code);
		}
		if (t->interrupt && *t->interrupt) {
			while (t->rpcs)
				finish_rpc(t->rpcs, CURLE_ABORTED_BY_CALLBACK);
			break;
		}
		if (!t->rpcs || (stop && *stop))
			break;
		int wait = 1000;
		if (has_deadline) {
			unsigned long now = now_ms();
			if (now >= deadline)
				break;
			if (deadline - now < (unsigned long)wait)
				wait = (int)(deadline - now);
		}
		curl_multi_wait(t->multi, NULL, 0, wait, NULL);
	}
}

static void
unix_finish_asynch(struct xmlrpc_client_transport *t, xmlrpc_timeoutType type,
		   xmlrpc_timeout timeout)
{
	run(t, type == timeout_yes, now_ms() + timeout, NULL);
}

static void
unix_call(xmlrpc_env *env, struct xmlrpc_client_transport *t, const xmlrpc_server_info *server,
	  xmlrpc_mem_block *xml, xmlrpc_mem_block **response)
{
	int done = 0;

	*response = NULL;
	unix_send_request(env, t, server, xml, NULL, NULL, NULL);
	if (env->fault_occurred)
		return;
	/* The new transfer is the head of the list. */
	t->rpcs->sync_done = &done;
	t->rpcs->sync_env = env;
	t->rpcs->sync_response = response;
	run(t, 0, 0, &done);
}

static void
unix_set_interrupt(struct xmlrpc_client_transport *t, int *interrupt)
{
	t->interrupt = interrupt;
}

static void
unix_destroy(struct xmlrpc_client_transport *t)
{
	/* Transfers still running are dropped without their completions. */
	while (t->rpcs) {
		struct unix_rpc *rpc = t->rpcs;
		unlink_rpc(rpc);
		rpc_free(rpc);
	}
	if (t->multi)
		curl_multi_cleanup(t->multi);
	free(t->path);
	free(t->url);
	t->multi = NULL;
	t->path = t->url = NULL;
}

static const struct xmlrpc_client_transport_ops unix_ops = {
	.setup_global_const = NULL,
	.teardown_global_const = NULL,
	.create = NULL, /* made by vactl_unix_new, not by name */
	.destroy = unix_destroy,
	.send_request = unix_send_request,
	.call = unix_call,
	.finish_asynch = unix_finish_asynch,
	.set_interrupt = unix_set_interrupt,
};

struct vactl_unix *
vactl_unix_new(const char *path, const char *http_url, unsigned long timeout_ms)
{
	struct vactl_unix *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->t.multi = curl_multi_init();
	u->t.path = strdup(path);
	u->t.url = strdup(http_url);
	u->t.timeout_ms = timeout_ms;
	if (!u->t.multi || !u->t.path || !u->t.url) {
		vactl_unix_free(u);
		return NULL;
	}
	return u;
}

void
vactl_unix_free(struct vactl_unix *u)
{
	if (!u)
		return;
	unix_destroy(&u->t);
	free(u);
}

const struct xmlrpc_client_transport_ops *
vactl_unix_ops(void)
{
	return &unix_ops;
}

xmlrpc_client_transport *
vactl_unix_transport(struct vactl_unix *u)
{
	return &u->t;
}
