/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * va-proxy: the virtagent host proxy.  Lifecycle: options and config,
 * daemonizing, signals, start and orderly stop of the parts:
 *
 *   guest.c      the guests' channels and sessions, driven by the loop
 *                thread (guest-link.c) together with the HTTP server
 *   hostcalls.c  host.* methods the guests call
 *   http.c       the HTTP side for host scripts (httpd.c: the server,
 *                http-parse.c: request heads, auth.c: Basic auth)
 *   forward.c    what happens to a script's call (proxycalls.c: proxy.*)
 *   events.c     the event queue behind proxy.events
 *
 * Signals are blocked in every thread; the main thread waits for them
 * with sigwait(), so no code runs in a signal handler.
 *
 * With --daemonize the command returns only when the proxy listens and
 * its loop thread runs (exit 0), or when the start failed (exit 1, the
 * reason on stderr): common/daemon.h.
 */
#include "config.h"

/* explicit_bzero */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "auth.h"
#include "daemon.h"
#include "events.h"
#include "forward.h"
#include "guest.h"
#include "hostcalls.h"
#include "http.h"
#include "log.h"
#include "options.h"
#include "proxycalls.h"
#include "rpc.h"

/* How long the stop waits for HTTP connections to finish. */
#define STOP_WAIT_MS 5000

/* At the end, and at exit after a fatal error: the files that are ours. */
static void
remove_files(void)
{
	va_http_unlink_sockets();
	va_pidfile_remove();
}

/* ---- SIGHUP ---- */

static void
reload(const struct va_proxy_config *cur, int argc, char **argv)
{
	struct va_proxy_config fresh;

	if (va_proxy_config_load(&fresh, argc, argv) != VA_CONF_OK) {
		va_log_errx("SIGHUP: %s has errors; the settings stay as they were",
			    cur->config_file);
		va_proxy_config_free(&fresh);
		return;
	}
	va_log_set_level((enum va_log_level)fresh.log_level);
	if (va_forward_set_block_list(fresh.block_rpcs) < 0)
		va_log_errx("SIGHUP: block list not changed: out of memory");
	int same = fresh.nguests == cur->nguests && fresh.nlistens == cur->nlistens &&
		   fresh.max_frame == cur->max_frame && fresh.call_timeout_s == cur->call_timeout_s &&
		   fresh.no_auth == cur->no_auth;
	for (size_t i = 0; same && i < fresh.nguests; i++)
		same = !strcmp(fresh.guests[i].name, cur->guests[i].name) &&
		       !strcmp(fresh.guests[i].spec, cur->guests[i].spec);
	for (size_t i = 0; same && i < fresh.nlistens; i++)
		same = !strcmp(fresh.listens[i], cur->listens[i]);
	if (!same)
		va_log_warnx("SIGHUP: guests, listeners, max-frame, call-timeout and "
			     "authentication change only at a restart");
	va_log_info("SIGHUP: log level and block list reloaded from %s", fresh.config_file);
	va_proxy_config_free(&fresh);
}

/* ---- main ---- */

static int
needs_auth(const struct va_proxy_config *cfg)
{
	for (size_t i = 0; i < cfg->nlistens; i++)
		if (!strncmp(cfg->listens[i], "tcp:", 4))
			return !cfg->no_auth;
	return 0;
}

int
main(int argc, char **argv)
{
	struct va_proxy_config cfg;
	char err[1024];
	char *secret = NULL;
	xmlrpc_env env;
	sigset_t sigs;

	switch (va_proxy_config_load(&cfg, argc, argv)) {
	case VA_CONF_OK:
		break;
	case VA_CONF_EXIT_OK:
		va_proxy_config_free(&cfg);
		return 0;
	default:
		va_proxy_config_free(&cfg);
		return 2;
	}
	va_log_init("va-proxy", 0, (enum va_log_level)cfg.log_level);
	if (cfg.daemonize)
		va_daemon_begin();
	/* First, so that a second instance stops before touching anything. */
	if (cfg.pidfile)
		va_pidfile_create(cfg.pidfile);
	atexit(remove_files);

	/* Every thread inherits this mask; the main thread takes the signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	va_rpc_init(cfg.max_frame);
	if (va_events_init(VA_EVENTS_CAPACITY) < 0)
		va_fatalx("out of memory");
	xmlrpc_env_init(&env);
	xmlrpc_registry *host_reg = va_hostcalls_registry(&env);
	xmlrpc_registry *proxy_reg = env.fault_occurred ? NULL : va_proxycalls_registry(&env);
	if (env.fault_occurred)
		va_fatalx("registry: %s", env.fault_string);
	xmlrpc_env_clean(&env);
	va_forward_init(proxy_reg);
	if (va_forward_set_block_list(cfg.block_rpcs) < 0)
		va_fatalx("out of memory");

	if (needs_auth(&cfg)) {
		if (va_auth_load(cfg.auth_file, &secret, err, sizeof(err)) < 0)
			va_fatalx("%s", err);
	} else if (cfg.no_auth) {
		va_log_warnx("--no-auth: TCP listeners take calls from anyone who can connect");
	}
	struct va_http_config hcfg = {
		.max_frame = cfg.max_frame,
		.secret = secret,
		.allow_remote = cfg.allow_remote,
		.socket_group = cfg.socket_group,
	};
	if (va_http_init(&hcfg, err, sizeof(err)) < 0)
		va_fatalx("%s", err);
	for (size_t i = 0; i < cfg.nguests; i++)
		if (va_guests_add(cfg.guests[i].name, cfg.guests[i].spec, err, sizeof(err)) < 0)
			va_fatalx("guest %s: %s", cfg.guests[i].name, err);
	for (size_t i = 0; i < cfg.nlistens; i++)
		if (va_http_listen(cfg.listens[i], err, sizeof(err)) < 0)
			va_fatalx("%s", err);
	if (cfg.daemonize)
		va_daemon_detach();

	struct va_guests_config gcfg = {
		.call_timeout_ms = cfg.call_timeout_s * 1000u,
		.max_frame = cfg.max_frame,
	};
	int r = va_guests_start(&gcfg, host_reg);
	if (r < 0)
		va_fatalx("cannot start the loop thread: %s", strerror(-r));
	va_log_info("va-proxy %s serving %zu guest%s on %zu listener%s", PACKAGE_VERSION,
		    cfg.nguests, cfg.nguests == 1 ? "" : "s", cfg.nlistens,
		    cfg.nlistens == 1 ? "" : "s");
	va_daemon_ready();

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(&cfg, argc, argv);
			continue;
		}
		va_log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}

	/* Wake the long polls, fail the calls, then stop the HTTP side. */
	va_events_shutdown();
	va_guests_stop();
	int clean = va_http_stop(STOP_WAIT_MS) == 0;
	if (clean) {
		va_guests_free();
		va_events_free();
		xmlrpc_registry_free(proxy_reg);
		xmlrpc_registry_free(host_reg);
		va_forward_cleanup();
	}
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	remove_files();
	va_log_info("stopped");
	va_proxy_config_free(&cfg);
	return 0;
}
