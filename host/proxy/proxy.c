/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy.c - va-proxy's context (see proxy.h): making its parts in order,
 * the loop thread, and the orderly stop.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlrpc-c/base.h>

#include "events.h"
#include "forward.h"
#include "guest.h"
#include "hostcalls.h"
#include "hostwork.h"
#include "http.h"
#include "log.h"
#include "proxy.h"
#include "proxycalls.h"

struct va_proxy *
va_proxy_new(const struct va_proxy_config *cfg, const char *secret, char *err, size_t errlen)
{
	struct va_proxy *px = calloc(1, sizeof(*px));
	char why[1024];
	xmlrpc_env env;

	if (!px)
		goto nomem;
	px->call_timeout_ms = cfg->call_timeout_s * 1000u;
	px->max_frame = cfg->max_frame;
	if (!(px->loop = va_loop_new()) || !(px->events = va_events_new(VA_EVENTS_CAPACITY)) ||
	    !(px->fwd = va_forward_new(px)) || !(px->guests = va_guests_new(px)) ||
	    !(px->hostwork = va_hostwork_new(px)))
		goto nomem;
	if (va_forward_set_block_list(px->fwd, cfg->block_rpcs, err, errlen) < 0)
		goto fail;
	xmlrpc_env_init(&env);
	px->host_reg = va_hostcalls_registry(&env);
	if (!env.fault_occurred)
		px->proxy_reg = va_proxycalls_registry(&env);
	if (env.fault_occurred) {
		snprintf(err, errlen, "registry: %s", env.fault_string);
		xmlrpc_env_clean(&env);
		goto fail;
	}
	xmlrpc_env_clean(&env);

	struct va_http_config hcfg = {
		.max_frame = cfg->max_frame,
		.secret = secret,
		.allow_remote = cfg->allow_remote,
		.socket_group = cfg->socket_group,
	};
	if (!(px->httpd = va_http_new(px, &hcfg, err, errlen)))
		goto fail;
	for (size_t i = 0; i < cfg->nguests; i++) {
		const struct va_proxy_guest_opt *go = &cfg->guests[i];
		if (va_guests_add(px, go->name, go->spec, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "guest %s: %s", go->name, why);
			goto fail;
		}
	}
	for (size_t i = 0; i < cfg->nlistens; i++)
		if (va_httpd_listen(px->httpd, cfg->listens[i], err, errlen) < 0)
			goto fail;
	return px;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	va_proxy_free(px);
	return NULL;
}

static void *
loop_main(void *arg)
{
	struct va_proxy *px = arg;

	if (va_loop_run(px->loop) < 0)
		va_fatal("loop thread");
	/* Every guest goes: its calls in flight fail, and are answered now. */
	va_guests_remove_all(px);
	return NULL;
}

int
va_proxy_start(struct va_proxy *px)
{
	int r = pthread_create(&px->loop_thread, NULL, loop_main, px);
	if (r)
		return -r;
	px->loop_running = 1;
	return 0;
}

void
va_proxy_post(struct va_proxy *px, va_loop_work_fn *fn, void *arg)
{
	if (va_loop_post(px->loop, fn, arg) < 0)
		va_fatalx("out of memory posting work to the loop thread");
}

int
va_proxy_stop(struct va_proxy *px, unsigned timeout_ms)
{
	/* Wake the long polls, fail the calls, then stop the HTTP side. */
	va_events_shutdown(px->events);
	va_loop_stop(px->loop);
	if (px->loop_running) {
		pthread_join(px->loop_thread, NULL);
		px->loop_running = 0;
	} else {
		va_guests_remove_all(px);
	}
	/* This thread is the loop's from here on. */
	va_hostwork_stop(px->hostwork);
	if (va_forward_wait_local(px->fwd, timeout_ms) < 0) {
		va_log_warnx("proxy.* calls still running after %u ms: exiting without waiting",
			     timeout_ms);
		va_httpd_unlink_sockets(px->httpd);
		return -1;
	}
	/* Their answers, and whatever else was posted after the loop thread ended. */
	va_loop_run_posted(px->loop);
	/* The answers still being written (a slow reader, a large answer). */
	uint64_t end = va_now_ms() + VA_HTTP_FINISH_MS;
	for (size_t n = va_httpd_finish(px->httpd); n > 0; n = va_httpd_connections(px->httpd)) {
		uint64_t now = va_now_ms();
		if (now >= end)
			break;
		va_loop_run_once(px->loop, (int)(end - now));
	}
	va_httpd_free(px->httpd);
	px->httpd = NULL;
	return 0;
}

void
va_proxy_free(struct va_proxy *px)
{
	if (!px)
		return;
	/* The server first: it gives back the guests its requests held. */
	va_httpd_free(px->httpd);
	if (px->loop)
		va_loop_run_posted(px->loop); /* answers nobody waits for now: their memory */
	if (px->guests) {
		va_guests_remove_all(px);
		va_guests_free(px->guests);
	}
	va_hostwork_stop(px->hostwork);
	va_hostwork_free(px->hostwork);
	va_forward_free(px->fwd);
	va_events_free(px->events);
	if (px->proxy_reg)
		xmlrpc_registry_free(px->proxy_reg);
	if (px->host_reg)
		xmlrpc_registry_free(px->host_reg);
	va_loop_free(px->loop);
	free(px);
}

void
va_proxy_unlink_sockets(struct va_proxy *px)
{
	if (px)
		va_httpd_unlink_sockets(px->httpd);
}
