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
#include "forward.h"
#include "guest.h"
#include "http.h"
#include "httpd.h"
#include "log.h"

static va_httpd *server;
static struct va_httpd_config hconfig;
static struct va_loop_hook hook;

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
	static const char guest_path[] = VA_PROXY_RPC_PATH "/"; /* then the name */
	const size_t glen = sizeof(guest_path) - 1;
	struct va_guest *g;

	(void)opaque;
	if (!strcmp(path, VA_PROXY_RPC_PATH)) {
		if (va_guests_count() == 1)
			return va_guests_at(0);
		va_buf_printf(msg, "this proxy serves several guests: POST to /RPC2/NAME, NAME one "
			      "of: ");
	} else if (!strncmp(path, guest_path, glen)) {
		g = va_guests_find(path + glen);
		if (g)
			return g;
		va_buf_printf(msg, "no guest named \"%.64s\"; the guests are: ", path + glen);
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

static int
hook_timeout(void *opaque, uint64_t now)
{
	(void)opaque;
	return va_httpd_timeout(server, now);
}

static void
hook_dispatch(void *opaque, uint64_t now)
{
	(void)opaque;
	va_httpd_dispatch(server, now);
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
	server = va_httpd_new(&hconfig, &ops, NULL, err, errlen);
	if (!server)
		return -1;
	hook = (struct va_loop_hook){
		.fd = va_httpd_fd(server),
		.timeout = hook_timeout,
		.dispatch = hook_dispatch,
	};
	return 0;
}

int
va_http_listen(const char *addr, char *err, size_t errlen)
{
	return va_httpd_listen(server, addr, err, errlen);
}

const struct va_loop_hook *
va_http_hook(void)
{
	return &hook;
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
	va_httpd_finish(server, VA_HTTP_FINISH_MS);
	va_httpd_free(server);
	server = NULL;
	return 0;
}

void
va_http_unlink_sockets(void)
{
	va_httpd_unlink_sockets(server);
}
