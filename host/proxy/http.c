/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * http.c - what va-proxy's HTTP server does with requests (see http.h):
 * routes a path to a guest and hands the body to forward.c, whose answer
 * it writes back.  Everything here runs on the loop thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "contract.h"
#include "files.h"
#include "forward.h"
#include "guest.h"
#include "http.h"
#include "httpd.h"
#include "log.h"
#include "proxy.h"

static void
guest_list(struct va_proxy *px, struct va_buf *b)
{
	for (size_t i = 0; i < va_guests_count(px); i++)
		va_buf_printf(b, "%s%s", i ? ", " : "", va_guest_name(va_guests_at(px, i)));
}

/* The guest a path names, with a reference; or NULL with the reason in msg (a 404). */
static void *
route(void *opaque, const char *path, struct va_buf *msg)
{
	static const char guest_path[] = VA_PROXY_RPC_PATH "/"; /* then the name */
	const size_t glen = sizeof(guest_path) - 1;
	struct va_proxy *px = opaque;
	struct va_guest *g = NULL;

	if (!strcmp(path, VA_PROXY_RPC_PATH)) {
		if (va_guests_count(px) == 1)
			g = va_guests_at(px, 0);
		else
			va_buf_printf(msg, "this proxy serves several guests: POST to /RPC2/NAME, "
				      "NAME one of: ");
	} else if (!strncmp(path, guest_path, glen)) {
		g = va_guests_find(px, path + glen);
		if (!g)
			va_buf_printf(msg, "no guest named \"%.64s\"; the guests are: ", path + glen);
	} else {
		va_buf_printf(msg, "unknown path \"%.128s\": POST XML-RPC calls to /RPC2%s; "
			      "the guests are: ", path, va_guests_count(px) > 1 ? "/NAME" : "");
	}
	if (g) {
		va_guest_ref(g); /* the body may take a while: the guest may go meanwhile */
		return g;
	}
	guest_list(px, msg);
	return NULL;
}

static void
release(void *opaque, void *target)
{
	(void)opaque;
	va_guest_unref(target);
}

static void
reply(void *ctx, struct va_reply *rep)
{
	va_httpd_respond(ctx, rep->status, rep->content_type, rep->body, rep->len);
	rep->body = NULL;
}

static void
request(void *opaque, struct va_http_req *req, void *target, uint8_t *body, size_t len)
{
	struct va_proxy *px = opaque;

	va_forward_handle(px->fwd, target, body, len, reply, req);
	va_guest_unref(target);
}

static void
cancel(void *opaque, struct va_http_req *req)
{
	struct va_proxy *px = opaque;

	va_forward_cancel(px->fwd, req);
}

va_httpd *
va_http_new(struct va_proxy *px, const struct va_http_config *cfg, char *err, size_t errlen)
{
	static const struct va_httpd_ops ops = {
		.route = route, .release = release, .request = request, .cancel = cancel,
		.stream = va_files_stream,
	};
	struct va_httpd_config hcfg = {
		.max_body = cfg->max_frame,
		.secret = cfg->secret,
		.allow_remote = cfg->allow_remote,
		.socket_group = cfg->socket_group,
		.read_timeout_ms = VA_HTTP_READ_TIMEOUT_S * 1000,
		.idle_timeout_ms = VA_HTTP_KEEPALIVE_S * 1000,
		.stream_prefix = VA_FILES_PREFIX,
	};

	return va_httpd_new(px->loop, &hcfg, &ops, px, err, errlen);
}
