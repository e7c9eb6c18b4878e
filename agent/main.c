/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * va-agent: the virtagent guest agent's lifecycle: options and config
 * (options.c), daemonizing, the pidfile, signals (SIGTERM, SIGHUP reload,
 * SIGCHLD), the channel and the control socket (control.c).  It makes
 * one core (core.c, agent.h) from the table of method groups (groups.c)
 * and runs the loop; the core serves the host.
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "agent.h"
#include "channel.h"
#include "children.h"
#include "control.h"
#include "daemon.h"
#include "groups.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "rpc.h"

/* The daemon: the config it owns, and what it runs besides the core. */
struct daemon {
	struct va_agent_config cfg;
	int argc;
	char **argv;
	va_loop *loop;
	struct va_agent *agent;
	struct va_control *control;
};

/* ---- lifecycle ------------------------------------------------------- */

static void
on_term(void *opaque)
{
	struct daemon *d = opaque;
	va_loop_stop(d->loop);
}

static void reload_config(struct daemon *d);

static void
on_hup(void *opaque)
{
	reload_config(opaque);
}

static void
on_chld(void *opaque)
{
	struct daemon *d = opaque;
	if (d->agent)
		va_children_reap(va_agent_children(d->agent));
}

static void
setup_signals(struct daemon *d)
{
	if (va_loop_signal(d->loop, SIGTERM, on_term, d) < 0 ||
	    va_loop_signal(d->loop, SIGINT, on_term, d) < 0 ||
	    va_loop_signal(d->loop, SIGHUP, on_hup, d) < 0 ||
	    va_loop_signal(d->loop, SIGCHLD, on_chld, d) < 0)
		va_fatal("signals");
	signal(SIGPIPE, SIG_IGN);
}

/*
 * SIGHUP: the core reads the config through va_agent_config() at every
 * use, so what is swapped here applies from the next call on.
 */
static void
reload_config(struct daemon *d)
{
	struct va_agent_config fresh;
	struct va_agent_config *cur = &d->cfg;

	if (va_agent_config_load(&fresh, d->argc, d->argv) != VA_CONF_OK) {
		va_log_errx("SIGHUP: config %s not reloaded (errors above); keeping the old settings",
			    cur->config_file);
		va_agent_config_free(&fresh);
		return;
	}
	if (strcmp(fresh.channel, cur->channel) || strcmp(fresh.control, cur->control) ||
	    fresh.max_frame != cur->max_frame || fresh.events != cur->events ||
	    strcmp(fresh.freeze_state, cur->freeze_state))
		va_log_warnx("SIGHUP: channel, control socket, max-frame, events and freeze-state "
			     "change only at restart");
	/* Keep what is bound at start; take the rest.  Bad RPC lists are
	 * not taken: the lists in force stay, and the rest is reloaded. */
#define SWAP(f) do { __typeof__(cur->f) t = cur->f; cur->f = fresh.f; fresh.f = t; } while (0)
	char err[512];
	if (va_agent_set_lists(d->agent, &fresh, err, sizeof(err)) < 0) {
		va_log_errx("SIGHUP: %s; keeping the RPC lists in force", err);
	} else {
		SWAP(allow_rpcs);
		SWAP(block_rpcs);
		SWAP(enable_rpcs);
	}
	SWAP(file_roots);
	SWAP(nfile_roots);
	SWAP(shutdown_command);
	SWAP(clip_copy_command);
	SWAP(clip_paste_command);
	SWAP(exec_allow);
	SWAP(log_level);
	SWAP(freeze_timeout);
	SWAP(fs_full_threshold);
#undef SWAP
	va_log_set_level((enum va_log_level)cur->log_level);
	va_agent_config_free(&fresh);
	va_log_info("SIGHUP: configuration reloaded from %s", cur->config_file);
}

int
main(int argc, char **argv)
{
	struct daemon d = { .argc = argc, .argv = argv };
	va_channel *ch;
	char err[512];

	switch (va_agent_config_load(&d.cfg, argc, argv)) {
	case VA_CONF_OK: break;
	case VA_CONF_EXIT_OK: va_agent_config_free(&d.cfg); return 0;
	default: va_agent_config_free(&d.cfg); return 2;
	}
	va_log_init("va-agent", 0, (enum va_log_level)d.cfg.log_level);
	/*
	 * With --daemonize, the command that started us waits from here
	 * until va_daemon_ready() (exit 0) or a fatal error (exit 1, the
	 * reason on its stderr); see common/daemon.h.  Messages go to that
	 * stderr until va_daemon_detach(), which switches to syslog only
	 * then (va_daemon_begin() closes every inherited fd first, so no
	 * syslog fd is closed under glibc's feet).
	 */
	if (d.cfg.daemonize)
		va_daemon_begin();
	/* First, so that a second instance stops before touching anything. */
	if (d.cfg.pidfile)
		va_pidfile_create(d.cfg.pidfile);
	d.loop = va_loop_new();
	if (!d.loop)
		va_fatal("event loop");
	setup_signals(&d);
	va_rpc_init(d.cfg.max_frame);
	d.agent = va_agent_new(d.loop, &d.cfg, va_agent_groups, va_agent_ngroups, err, sizeof(err));
	if (!d.agent)
		va_fatalx("%s", err);

	if (va_channel_open(d.cfg.channel, &ch, err, sizeof(err)) < 0)
		va_fatalx("%s", err);
	if (va_agent_connect(d.agent, ch) < 0)
		va_fatalx("out of memory");
	if (d.cfg.control && *d.cfg.control) {
		d.control = va_control_open(d.cfg.control, d.loop, d.agent);
		if (!d.control) {
			/* Leave no channel socket (unix-listen:) behind. */
			va_agent_free(d.agent);
			va_fatalx("cannot open the control socket %s (use --control none to run without)",
				  d.cfg.control);
		}
	}
	/*
	 * Ready: the channel is open (for virtio-serial and isa-serial the
	 * device is open; a host need not be connected yet: the session
	 * resets when one comes), the control socket is bound, the pidfile
	 * is locked and written.  A missing port is a fatal error above,
	 * not something to wait for: udev and va-agent.service start the
	 * agent when the port appears.
	 */
	if (d.cfg.daemonize)
		va_daemon_detach();
	va_log_info("va-agent %s serving on %s", PACKAGE_VERSION, d.cfg.channel);
	va_daemon_ready();

	if (va_loop_run(d.loop) < 0)
		va_fatal("event loop");
	va_agent_stop(d.agent);

	va_control_free(d.control);
	va_agent_free(d.agent);
	va_loop_free(d.loop);
	va_pidfile_remove();
	va_log_info("stopped");
	va_agent_config_free(&d.cfg);
	return 0;
}
