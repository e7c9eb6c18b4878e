/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * children.c - commands run without waiting, and their reaping; see children.h.
 */
#include "config.h"

/* memfd_create, O_TMPFILE, posix_spawn_file_actions_addclosefrom_np, POSIX_SPAWN_SETSID; configure.ac has no AC_USE_SYSTEM_EXTENSIONS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "log.h"

extern char **environ;

struct va_children {
	pid_t pid[VA_CHILDREN_MAX];
	unsigned n;
};

struct va_children *
va_children_new(void)
{
	return calloc(1, sizeof(struct va_children));
}

void
va_children_free(struct va_children *c)
{
	free(c);
}

void
va_children_reap(struct va_children *c)
{
	unsigned i = 0;

	while (i < c->n) {
		int status;
		pid_t r = waitpid(c->pid[i], &status, WNOHANG);

		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		if (r > 0) {
			if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				va_log_warnx("command (pid %d) exited with status %d",
				    (int)r, WEXITSTATUS(status));
			else if (WIFSIGNALED(status))
				va_log_warnx("command (pid %d) killed by signal %d",
				    (int)r, WTERMSIG(status));
			else
				va_log_debug("command (pid %d) done", (int)r);
		}
		/* Reaped, or ECHILD (someone else reaped it, or SIGCHLD is ignored). */
		c->pid[i] = c->pid[--c->n];
	}
}

unsigned
va_children_alive(const struct va_children *c)
{
	return c->n;
}

/* An fd positioned at the start of a private copy of input, or -errno. */
static int
input_fd(const char *input, size_t len)
{
	int fd;

	if (!input) {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	fd = memfd_create("va-agent-input", MFD_CLOEXEC);
	if (fd < 0)
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, input + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* environ with the names in env_add replaced; only the array is new. */
static char **
build_env(const char *const *env_add)
{
	size_t n = 0, nadd = 0, k = 0;

	while (environ && environ[n])
		n++;
	while (env_add && env_add[nadd])
		nadd++;
	char **envp = calloc(n + nadd + 1, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int replaced = 0;
		for (size_t j = 0; j < nadd && !replaced; j++) {
			const char *eq = strchr(env_add[j], '=');
			size_t nl = eq ? (size_t)(eq - env_add[j]) : strlen(env_add[j]);
			if (strncmp(environ[i], env_add[j], nl) == 0 &&
			    environ[i][nl] == '=')
				replaced = 1;
		}
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < nadd; j++)
		envp[k++] = (char *)env_add[j];
	envp[k] = NULL;
	return envp;
}

pid_t
va_children_spawn(struct va_children *c, const char *cmd, const char *const *env_add,
		  const char *input, size_t len, unsigned limit)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid = -1;
	int rc;

	va_children_reap(c);
	if (c->n >= limit || c->n >= VA_CHILDREN_MAX)
		return -EAGAIN;

	int fd = input_fd(input, len);
	if (fd < 0)
		return fd;
	if (fd <= 2) {
		/* dup2(fd, 0) must not be a no-op that keeps FD_CLOEXEC. */
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		int e = errno;
		close(fd);
		if (hi < 0)
			return -e;
		fd = hi;
	}
	char **envp = build_env(env_add);
	if (!envp) {
		close(fd);
		return -ENOMEM;
	}

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	rc = posix_spawn_file_actions_adddup2(&fa, fd, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
		    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	if (rc == 0) {
		char *argv[] = { "sh", "-c", (char *)cmd, NULL };
		rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(fd);
	if (rc != 0)
		return -rc;
	c->pid[c->n++] = pid;
	return pid;
}
