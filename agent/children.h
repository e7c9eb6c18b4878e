/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * children.h - the commands the agent runs (the shutdown command, the
 * clipboard's desktop bridge): "/bin/sh -c CMD" without waiting for it,
 * and the reaping of those children.  One table per agent (the core
 * holds it, va_agent_children()); the daemon reaps on SIGCHLD.
 */
#ifndef VA_AGENT_CHILDREN_H
#define VA_AGENT_CHILDREN_H

#include <stddef.h>
#include <sys/types.h>

/* Children alive at once (not yet reaped), whatever each caller's limit. */
#define VA_CHILDREN_MAX 32

struct va_children;

/* NULL when out of memory. */
struct va_children *va_children_new(void);
/* Forgets the children (neither killed nor waited for: they run in sessions of their own). */
void va_children_free(struct va_children *c);

/*
 * Runs "/bin/sh -c cmd" without waiting for it: a new session, default
 * signal handling, fds above 2 closed, stdin from input (len bytes,
 * through an anonymous memory file, so the caller never blocks on a pipe)
 * or /dev/null when input is NULL.  env_add is a NULL-terminated list of
 * "NAME=value" added to (and replacing in) the agent's environment, or
 * NULL.  Refused when 'limit' children of c (or VA_CHILDREN_MAX) are
 * alive.  Returns the pid, or -errno (-EAGAIN when at the limit).
 */
pid_t va_children_spawn(struct va_children *c, const char *cmd, const char *const *env_add,
			const char *input, size_t len, unsigned limit);
/* Reaps the children that have exited (WNOHANG); logs a failure. */
void va_children_reap(struct va_children *c);
/* How many have not been reaped yet. */
unsigned va_children_alive(const struct va_children *c);

#endif
