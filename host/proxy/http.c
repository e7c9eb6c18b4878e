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
#include "forward.h"
#include "guest.h"
#include "http.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"

static va_httpd *server;
static struct va_httpd_config hconfig;

static void
guest_list(struct va_buf *b)
{
	for (size_t i = 0; i < va_guests_count(); i++)
		va_buf_printf(b, "%s%s", i ? ", " : "", va_guest_name(va_guests_at(i)));
}

/* The guest a path names, or NULL with the reason in msg (a 404). */
static void *
route(void *opaque, const char *path, struct va_buf *msg)
{
	struct va_guest *g;

	(void)opaque;
	if (!strcmp(path, "/RPC2")) {
		if (va_guests_count() == 1)
			return va_guests_at(0);
		va_buf_printf(msg, "this proxy serves several guests: POST to /RPC2/NAME, NAME one "
			      "of: ");
	} else if (!strncmp(path, "/RPC2/", 6)) {
		g = va_guests_find(path + 6);
		if (g)
			return g;
		va_buf_printf(msg, "no guest named \"%.64s\"; the guests are: ", path + 6);
	} else {
		va_buf_printf(msg, "unknown path \"%.128s\": POST XML-RPC calls to /RPC2%s; "
			      "the guests are: ", path, va_guests_count() > 1 ? "/NAME" : "");
	}
	guest_list(msg);
	return NULL;
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
	(void)opaque;
	va_forward_handle(target, body, len, reply, req);
}

static void
cancel(void *opaque, struct va_http_req *req)
{
	(void)opaque;
	va_forward_cancel(req);
}

int
va_http_init(const struct va_http_config *cfg, char *err, size_t errlen)
{
	static const struct va_httpd_ops ops = {
		.route = route, .request = request, .cancel = cancel,
	};

	hconfig = (struct va_httpd_config){
		.max_body = cfg->max_frame,
		.secret = cfg->secret,
		.allow_remote = cfg->allow_remote,
		.socket_group = cfg->socket_group,
		.read_timeout_ms = VA_HTTP_READ_TIMEOUT_S * 1000,
		.idle_timeout_ms = VA_HTTP_KEEPALIVE_S * 1000,
	};
	va_loop *loop = va_guests_loop();
	if (!loop) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	server = va_httpd_new(loop, &hconfig, &ops, NULL, err, errlen);
	return server ? 0 : -1;
}

int
va_http_listen(const char *addr, char *err, size_t errlen)
{
	return va_httpd_listen(server, addr, err, errlen);
}

int
va_http_stop(unsigned timeout_ms)
{
	if (va_forward_wait_local(timeout_ms) < 0) {
		va_log_warnx("proxy.* calls still running after %u ms: exiting without waiting",
			     timeout_ms);
		va_httpd_unlink_sockets(server);
		return -1;
	}
	/* Their answers, and whatever else was posted after the loop ended. */
	va_guests_run_posted();
	/* The answers still being written: the loop thread ended, this one runs the loop. */
	uint64_t end = va_now_ms() + VA_HTTP_FINISH_MS;
	for (size_t n = va_httpd_finish(server); n > 0; n = va_httpd_connections(server)) {
		uint64_t now = va_now_ms();
		if (now >= end)
			break;
		va_loop_run_once(va_guests_loop(), (int)(end - now));
	}
	va_httpd_free(server);
	server = NULL;
	return 0;
}

void
va_http_unlink_sockets(void)
{
	va_httpd_unlink_sockets(server);
}
