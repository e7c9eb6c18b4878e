/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shutdown.c - va.shutdown(mode[, delay_s]), the group "shutdown"; its
 * state is the table of pending shutdowns.
 *
 * The call answers true at once.  Then, from the loop: first (deferred by
 * 0 ms, so the reply leaves before anything else) the host gets
 * host.shutdown_notice([mode, delay_s]); then, NOTICE_GRACE_MS later (so
 * the notice can leave too) plus delay_s seconds, the shutdown command
 * runs: config->shutdown_command, or /sbin/halt, /sbin/poweroff or
 * /sbin/reboot by mode, with /bin/sh -c, VA_SHUTDOWN_MODE and
 * VA_SHUTDOWN_DELAY in its environment, not waited for (see children.h).
 *
 * At most MAX_PENDING shutdowns wait at once.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong number or type of parameters, an
 *                               unknown mode
 *   XMLRPC_INDEX_ERROR          delay_s outside 0..MAX_DELAY_S
 *   XMLRPC_LIMIT_EXCEEDED_ERROR MAX_PENDING shutdowns already wait
 *   XMLRPC_INTERNAL_ERROR       the loop could not take the deferred work
 */
#include "config.h"
#include "text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "log.h"
#include "methods.h"
#include "children.h"

#define NOTICE_GRACE_MS 200
#define MAX_DELAY_S 3600
#define MAX_PENDING 4

static const struct {
	const char *name;
	const char *command;
} modes[] = {
	{ "halt", "/sbin/halt" },
	{ "powerdown", "/sbin/poweroff" },
	{ "reboot", "/sbin/reboot" },
};

/*
 * A shutdown between the call and its command: the argument of the
 * deferred functions, in the group's state, so nothing leaks when the
 * agent exits before they run (the core drops them first).
 */
struct pending {
	int used;
	struct va_agent *a;
	int mode;  /* index in modes */
	int delay; /* seconds */
};

struct shutdowns {
	struct pending pending[MAX_PENDING];
};

static void
run_command(void *arg)
{
	struct pending *p = arg;
	const struct va_agent_config *cfg = va_agent_config(p->a);
	const char *cmd = cfg->shutdown_command && cfg->shutdown_command[0] ?
	    cfg->shutdown_command : modes[p->mode].command;
	char mode_env[64], delay_env[64];
	const char *env_add[] = { mode_env, delay_env, NULL };

	snprintf(mode_env, sizeof(mode_env), "VA_SHUTDOWN_MODE=%s", modes[p->mode].name);
	snprintf(delay_env, sizeof(delay_env), "VA_SHUTDOWN_DELAY=%d", p->delay);
	va_log_info("shutdown (%s): running %s", modes[p->mode].name, cmd);
	pid_t pid = va_children_spawn(va_agent_children(p->a), cmd, env_add, NULL, 0, UINT32_MAX);
	if (pid < 0)
		va_log_errx("shutdown (%s): cannot run %s: %s", modes[p->mode].name,
		    cmd, strerror((int)-pid));
	p->used = 0;
}

static void
send_notice(void *arg)
{
	struct pending *p = arg;
	char reason[96];

	snprintf(reason, sizeof(reason), "va.shutdown from the host, in %d s", p->delay);
	va_agent_call_hostf(p->a, "host.shutdown_notice", "(ss)", modes[p->mode].name, reason);

	unsigned ms = NOTICE_GRACE_MS + (unsigned)p->delay * 1000u;
	if (va_agent_defer(p->a, ms, run_command, p) < 0) {
		va_log_errx("shutdown (%s): cannot schedule the command",
		    modes[p->mode].name);
		p->used = 0;
	}
}

static xmlrpc_value *
method_shutdown(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
		void *call_info)
{
	static const char usage[] = "va.shutdown: expected (string mode[, int delay_s])";
	struct va_agent *a = va_group_agent(server_info);
	struct shutdowns *sh = va_group_state(server_info);
	char *name = NULL;
	int64_t delay = 0;
	int n, mode = -1;
	struct pending *p = NULL;
	xmlrpc_value *res = NULL;

	(void)call_info;
	n = va_params_count(env, params, 1, 2, usage);
	if (n < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &name, NULL);
	if (!env->fault_occurred && n == 2)
		va_param_int64(env, params, 1, usage, &delay);
	if (env->fault_occurred)
		goto out;
	va_log_info("va.shutdown %s %" PRId64, name, delay);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(name, modes[i].name) == 0)
			mode = (int)i;
	if (mode < 0) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.shutdown: bad mode \"%s\" (halt, powerdown or reboot)", name);
		goto out;
	}
	if (delay < 0 || delay > MAX_DELAY_S) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.shutdown: delay %" PRId64 " is out of range (0 to %d seconds)",
		    delay, MAX_DELAY_S);
		goto out;
	}
	for (int i = 0; i < MAX_PENDING && !p; i++)
		if (!sh->pending[i].used)
			p = &sh->pending[i];
	if (!p) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.shutdown: %d shutdowns are already pending", MAX_PENDING);
		goto out;
	}
	p->used = 1;
	p->a = a;
	p->mode = mode;
	p->delay = (int)delay;
	if (va_agent_defer(a, 0, send_notice, p) < 0) {
		p->used = 0;
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.shutdown: cannot schedule the shutdown");
		goto out;
	}
	res = xmlrpc_bool_new(env, 1);
	if (env->fault_occurred)
		res = NULL;
out:
	free(name);
	return res;
}

static const struct xmlrpc_method_info3 shutdown_methods[] = {
	{
		.methodName = "va.shutdown",
		.methodFunction = method_shutdown,
		.signatureString = "b:s,b:si",
		.help = "va.shutdown(string mode[, int delay_s]) -> true. mode is "
			"halt, powerdown or reboot; delay_s 0 to 3600 (default "
			"0). Replies first, then sends host.shutdown_notice(mode, "
			"delay_s), then after delay_s seconds runs the "
			"configured shutdown command (default /sbin/halt, "
			"/sbin/poweroff or /sbin/reboot) with VA_SHUTDOWN_MODE "
			"and VA_SHUTDOWN_DELAY in its environment.",
	},
};

static int
shutdown_init(struct va_agent *a, void **state)
{
	(void)a;
	*state = calloc(1, sizeof(struct shutdowns));
	return *state ? 0 : -1;
}

const struct va_method_group va_group_shutdown = {
	.name = "shutdown",
	VA_GROUP_METHODS(shutdown_methods),
	.init = shutdown_init,
	.cleanup = free,
};
