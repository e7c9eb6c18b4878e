/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * options.h - va-agent's settings from defaults, the config file
 * and the command line, in that order (the command line wins).
 *
 * The config file is "key = value" lines; '#' starts a comment; keys are
 * the long option names without "--" (channel, control, daemonize,
 * pidfile, log-level, allow-rpcs, block-rpcs, file-root (repeatable),
 * shutdown-command, max-frame, clipboard-copy-command,
 * clipboard-paste-command, freeze-timeout, freeze-state,
 * fs-full-threshold, events, enable-exec or exec, exec-allow,
 * enable-accounts or accounts).
 */
#ifndef VA_AGENT_OPTIONS_H
#define VA_AGENT_OPTIONS_H

#include "agent.h"
#include "conf.h"
#include "control-proto.h"

#define VA_AGENT_DEFAULT_CONFIG SYSCONFDIR "/virtagent/va-agent.conf"
#define VA_AGENT_DEFAULT_CONTROL "unix:" VA_CONTROL_DEFAULT_PATH
#define VA_AGENT_MAX_FRAME_MIN (64u * 1024)
#define VA_AGENT_MAX_FRAME_MAX (64u * 1024 * 1024)
#define VA_AGENT_DEFAULT_FREEZE_TIMEOUT 600
#define VA_AGENT_FREEZE_TIMEOUT_MAX 86400
/* On tmpfs: nothing the agent writes while frozen may be on a frozen filesystem. */
#define VA_AGENT_DEFAULT_FREEZE_STATE "/run/va-agent.frozen"
#define VA_AGENT_DEFAULT_FS_FULL 90

/*
 * Fills cfg from defaults, the config file (--config FILE, or the default
 * path when it exists) and argv.  --help and --version print and return
 * VA_CONF_EXIT_OK; errors are printed to stderr (with the file's line
 * number) and return VA_CONF_ERROR (common/conf.h).  cfg is freed with
 * va_agent_config_free() in every case.
 */
enum va_conf_result va_agent_config_load(struct va_agent_config *cfg,
					   int argc, char **argv);
void va_agent_config_free(struct va_agent_config *cfg);

#endif
