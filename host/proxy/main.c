/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * va-proxy: the virtagent host proxy.  Lifecycle: options and config,
 * daemonizing, signals, start and orderly stop of the proxy (proxy.c, the
 * context every part hangs off):
 *
 *   guest.c      the guest table and what other threads read of a guest;
 *                guest-link.c: their channels and sessions, driven by the
 *                loop thread together with the HTTP server
 *   hostcalls.c  host.* methods the guests call
 *   http.c       the HTTP side for host scripts (httpd.c: the server,
 *                http-parse.c: request heads, auth.c: Basic auth)
 *   forward.c    what happens to a script's call (proxycalls.c: proxy.*)
 *   events.c     the event queue behind proxy.events
 *   libvirt.c    --libvirt: the guests of the running libvirt domains
 *
 * Signals are blocked in every thread; the main thread waits for them
 * with sigwait(), so no code runs in a signal handler.
 *
 * With --daemonize the command returns only when the proxy listens and
 * its loop thread runs (exit 0), or when the start failed (exit 1, the
 * reason on stderr): common/daemon.h.  Under systemd (Type=notify) the
 * proxy says READY=1 at that point instead, RELOADING=1 and READY=1
 * around a reload, and STOPPING=1 (sd_notify: nothing without
 * $NOTIFY_SOCKET).
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

#include <systemd/sd-daemon.h>

#include "auth.h"
#include "daemon.h"
#include "forward.h"
#include "log.h"
#include "options.h"
#include "proxy.h"
#include "rpc.h"

/* How long the stop waits for the proxy.* calls still running. */
#define STOP_WAIT_MS 5000

/*
 * At the end, and at exit after a fatal error (on_exit: exit() runs it
 * while main's frame, where *arg points, still stands): the files that
 * are ours.
 */
static void
remove_files(int status, void *arg)
{
	struct va_proxy *const *px = arg;

	(void)status;
	va_proxy_unlink_sockets(*px);
	va_pidfile_remove();
}

/* ---- SIGHUP ---- */

static int
same_list(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

static int
same_str(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/*
 * The guests (config file, guests-dir) are changed in place, with the
 * log level and the block list; what the proxy opened or fixed at the
 * start stays as it was, with a warning when it changed (cur is the
 * config of the start, which the HTTP server keeps pointers into).
 */
static void
reload(struct va_proxy *px, const struct va_proxy_config *cur, int argc, char **argv)
{
	struct va_proxy_config fresh;
	struct va_guests_change ch;

	sd_notify(0, "RELOADING=1");
	if (va_proxy_config_load(&fresh, argc, argv) != VA_CONF_OK) {
		va_log_errx("SIGHUP: %s has errors (above); the guests and settings stay as they were",
			    cur->config_file);
		va_proxy_config_free(&fresh);
		sd_notify(0, "READY=1");
		return;
	}
	va_log_set_level((enum va_log_level)fresh.log_level);
	char err[512];
	if (va_forward_set_block_list(px->fwd, fresh.block_rpcs, err, sizeof(err)) < 0)
		va_log_errx("SIGHUP: %s; keeping the block list in force", err);
	if (!same_list(fresh.listens, fresh.nlistens, cur->listens, cur->nlistens) ||
	    fresh.max_frame != cur->max_frame || fresh.call_timeout_s != cur->call_timeout_s ||
	    fresh.no_auth != cur->no_auth || fresh.allow_remote != cur->allow_remote ||
	    !same_str(fresh.auth_file, cur->auth_file) ||
	    !same_str(fresh.socket_group, cur->socket_group) ||
	    !same_str(fresh.libvirt_uri, cur->libvirt_uri))
		va_log_warnx("SIGHUP: listeners, max-frame, call-timeout, authentication, "
			     "socket-group and libvirt change only at a restart");
	if (va_proxy_set_guests_wait(px, VA_GUESTS_CONFIG, fresh.guests, fresh.nguests, &ch) < 0)
		va_log_errx("SIGHUP: guests not changed: out of memory");
	else
		va_log_info("SIGHUP: reloaded from %s: guests %u added, %u removed, %u changed, "
			    "%u unchanged%s", fresh.config_file, ch.added, ch.removed, ch.changed,
			    ch.kept, ch.failed ? " (some could not be added: see above)" : "");
	sd_notifyf(0, "READY=1\nSTATUS=%zu configured guest%s", fresh.nguests,
		   fresh.nguests == 1 ? "" : "s");
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
	struct va_proxy *px = NULL;
	char err[1024];
	char *secret = NULL;
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
	on_exit(remove_files, &px);

	/* Every thread inherits this mask; the main thread takes the signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	va_rpc_init(cfg.max_frame);
	if (needs_auth(&cfg)) {
		if (va_auth_load(cfg.auth_file, &secret, err, sizeof(err)) < 0)
			va_fatalx("%s", err);
	} else if (cfg.no_auth) {
		va_log_warnx("--no-auth: TCP listeners take calls from anyone who can connect");
	}
	px = va_proxy_new(&cfg, secret, err, sizeof(err));
	if (!px)
		va_fatalx("%s", err);
	if (cfg.daemonize)
		va_daemon_detach();

	if (va_proxy_start(px, err, sizeof(err)) < 0)
		va_fatalx("%s", err);
	va_log_info("va-proxy %s serving %zu guest%s%s on %zu listener%s", PACKAGE_VERSION,
		    cfg.nguests, cfg.nguests == 1 ? "" : "s",
		    cfg.libvirt_uri && *cfg.libvirt_uri ? " and libvirt's domains" : "",
		    cfg.nlistens, cfg.nlistens == 1 ? "" : "s");
	va_daemon_ready();
	sd_notifyf(0, "READY=1\nSTATUS=%zu configured guest%s", cfg.nguests,
		   cfg.nguests == 1 ? "" : "s");

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(px, &cfg, argc, argv);
			continue;
		}
		va_log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		sd_notify(0, "STOPPING=1");
		break;
	}

	if (va_proxy_stop(px, STOP_WAIT_MS) == 0) {
		va_proxy_free(px);
		px = NULL;
	}
	/* else: threads still use it; exit without freeing what they share. */
	va_proxy_unlink_sockets(px);
	va_pidfile_remove();
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	va_log_info("stopped");
	/* Not freed when px is still there: its httpd keeps pointers into it. */
	if (!px)
		va_proxy_config_free(&cfg);
	/* exit(), not return: remove_files looks at px, in this frame. */
	exit(0);
}
