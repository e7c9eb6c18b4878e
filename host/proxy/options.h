/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * options.h - va-proxy's settings from defaults, the config file and the
 * command line, in that order (the command line wins).
 *
 * The config file has "key = value" lines; '#' starts a comment; keys are
 * the long option names without "--": guest and listen (both repeatable;
 * given on the command line, they replace the file's), guests-dir,
 * libvirt, call-timeout, daemonize, pidfile, log-level, max-frame,
 * block-rpcs, auth-file, no-auth, allow-remote, socket-group.  Flags take
 * yes/no in the file.
 *
 * Guests come from three places, in this order: the config file's guest
 * lines (or the command line's, which replace them), then the files
 * NAME.conf of guests-dir in the C locale's order of their names, which
 * hold only "guest = NAME=SPEC" lines (a name is required there).  No
 * guest at all is fine: the proxy waits for a reload or for libvirt.
 * Names are unique over all of them.
 */
#ifndef VA_PROXY_OPTIONS_H
#define VA_PROXY_OPTIONS_H

#include <stddef.h>

#include "conf.h"
/* The defaults and limits vactl agrees on: listener, auth file, call
 * timeout, largest frame, guest names (va_proxy_guest_name_ok). */
#include "contract.h"

#define VA_PROXY_DEFAULT_CONFIG SYSCONFDIR "/virtagent/va-proxy.conf"
/* The suffix of the files of guests-dir that are read (others are not:
 * editors' backups, dpkg's .dpkg-old and .dpkg-dist). */
#define VA_PROXY_GUESTS_DIR_SUFFIX ".conf"
#define VA_PROXY_MAX_CALL_TIMEOUT 86400
#define VA_PROXY_MAX_FRAME_MIN (64u * 1024)

struct va_proxy_guest_opt {
	char *name; /* never NULL after loading: "guestN" when not given */
	char *spec; /* channel spec (common/channel.h) */
};

struct va_proxy_config {
	struct va_proxy_guest_opt *guests;
	size_t nguests;
	char *guests_dir;       /* NULL or "": none */
	char *libvirt_uri;      /* NULL or "": no libvirt */
	char **listens;         /* "tcp:HOST:PORT" or "unix:PATH" */
	size_t nlistens;
	unsigned call_timeout_s;
	char *config_file;
	int daemonize;
	char *pidfile;
	int log_level;
	size_t max_frame;
	char *block_rpcs;       /* comma list or NULL */
	char *auth_file;
	int no_auth;
	int allow_remote;
	char *socket_group;     /* NULL: unix sockets mode 0600 */
};

/*
 * Fills cfg from defaults, the config file (--config FILE, or the default
 * path when it exists), argv and the files of guests-dir.  cfg is to be
 * freed with va_proxy_config_free() whatever the result.  Reads files
 * only: the main thread calls it at the start and at every SIGHUP.
 */
enum va_conf_result va_proxy_config_load(struct va_proxy_config *cfg,
						 int argc, char **argv);
void va_proxy_config_free(struct va_proxy_config *cfg);

#endif
