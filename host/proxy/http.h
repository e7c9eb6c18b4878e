/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * http.h - va-proxy's HTTP side: what the proxy's HTTP server (httpd.h)
 * does with requests.
 *
 * Requests:
 *   POST /RPC2        the guest, when the proxy serves exactly one
 *   POST /RPC2/NAME   the guest named NAME
 * Answers: 200 with the XML-RPC response (faults included); 401 without
 * valid credentials (TCP listeners, unless --no-auth); 404 for another
 * path or an unknown guest (the message lists the guests); 405 for a
 * method other than POST (Allow: POST); 411 without Content-Length;
 * 413 when Content-Length is over the limit (said at once, before the body
 * is read or "100 Continue" sent); 400 when the body is not an XML-RPC
 * call; see httpd.h for the rest.
 *
 * The server runs on the proxy's loop (proxy.h), on its loop thread; the
 * proxy is the opaque pointer of its callbacks.  A routed request holds a
 * reference to its guest until its body is handed to forward.c.
 */
#ifndef VA_PROXY_HTTP_H
#define VA_PROXY_HTTP_H

#include <stddef.h>

#include "httpd.h"

struct va_proxy;

/* Seconds a client may take to send its request, per read. */
#define VA_HTTP_READ_TIMEOUT_S 20
/* Seconds an idle keep-alive connection stays open. */
#define VA_HTTP_KEEPALIVE_S 15
/* At the stop, how long answers still being written may take. */
#define VA_HTTP_FINISH_MS 3000

struct va_http_config {
	size_t max_frame;          /* largest request body */
	const char *secret;        /* Basic auth password for TCP listeners; NULL: none (kept) */
	int allow_remote;          /* TCP on addresses other than loopback */
	const char *socket_group;  /* unix sockets: mode 0660 and this group; NULL: 0600 (kept) */
};

/*
 * The HTTP server of px, on px->loop, with no listener yet
 * (va_httpd_listen).  Returns NULL with err set.
 */
va_httpd *va_http_new(struct va_proxy *px, const struct va_http_config *cfg, char *err,
		      size_t errlen);

#endif
