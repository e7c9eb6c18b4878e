/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.c - see daemon.h.
 *
 * The pipe from the daemon to the process that waits carries single
 * bytes, then closes:
 *   'D'          the daemon has detached: its stderr is /dev/null now;
 *   'R'          ready: the waiting process exits 0;
 *   'F' MESSAGE  failed (MESSAGE up to the end of the pipe, maybe empty):
 *                the waiting process exits 1.
 * End of file without 'R' is a failure too (the daemon died).  The
 * waiting process acts on the end of file, not on 'F': so it returns only
 * when the daemon has exited (the write end is close-on-exec and nobody
 * else holds it during the start).
 */
#include "config.h"

/* pipe2, close_range */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* The longest failure message passed back (the log's own limit). */
#define MSG_MAX 2048

static struct {
	int begun;
	int detached;
	int failed;
	int pipe; /* write end, in the daemon until ready (or its exit) */
} dm = { .pipe = -1 };

static struct {
	int fd;
	pid_t owner;
	char *path;
} pf = { .fd = -1 };

/* ---- the waiting process ---- */

static void __attribute__((noreturn))
wait_for_daemon(int fd, pid_t child)
{
	const char *ident = va_log_ident();
	char msg[MSG_MAX + 1];
	size_t mlen = 0;
	int detached = 0, failed = 0;

	for (;;) {
		char buf[512];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (failed) {
				if (mlen < MSG_MAX)
					msg[mlen++] = buf[i];
			} else if (buf[i] == 'D') {
				detached = 1;
			} else if (buf[i] == 'F') {
				failed = 1;
			} else if (buf[i] == 'R') {
				/* The first child exits right after its fork. */
				while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
					;
				_exit(0);
			}
		}
	}
	msg[mlen] = '\0';
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (failed) {
		/* Before the detach the daemon logged it on our stderr already. */
		if (detached && mlen)
			fprintf(stderr, "%s: error: %s\n", ident, msg);
	} else if (WIFSIGNALED(status)) {
		fprintf(stderr, "%s: failed to start: killed by signal %d\n", ident,
			WTERMSIG(status));
	} else {
		fprintf(stderr, "%s: failed to start: the daemon exited before it was ready%s\n",
			ident, detached ? " (see the system log)" : "");
	}
	_exit(1);
}

/* ---- the daemon ---- */

/* Writes to the waiting process, which may be gone: no SIGPIPE. */
static void
send_bytes(const char *p, size_t len)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;

	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old);
	while (len > 0) {
		ssize_t n = write(dm.pipe, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	sigaction(SIGPIPE, &old, NULL);
}

static void
close_pipe(void)
{
	close(dm.pipe);
	dm.pipe = -1;
	va_log_set_fatal_hook(NULL);
}

static void
fatal_hook(const char *msg)
{
	va_daemon_fail(msg);
}

/* 0, 1 and 2 open, so that no fd of ours gets their numbers. */
static void
ensure_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			va_fatal("/dev/null");
		if (n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

static void
close_inherited_fds(void)
{
	if (close_range(3, ~0u, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
		close((int)fd);
}

void
va_daemon_begin(void)
{
	int p[2];

	if (dm.begun)
		return;
	ensure_std_fds();
	close_inherited_fds();
	if (pipe2(p, O_CLOEXEC) < 0)
		va_fatal("pipe");
	/* Nothing buffered twice. */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		va_fatal("fork");
	if (pid > 0) {
		close(p[1]);
		wait_for_daemon(p[0], pid);
	}
	close(p[0]);
	dm.begun = 1;
	dm.pipe = p[1];
	va_log_set_fatal_hook(fatal_hook);
	if (setsid() < 0)
		va_fatal("setsid");
	pid = fork();
	if (pid < 0)
		va_fatal("fork");
	if (pid > 0)
		_exit(0);
	umask(022);
	if (chdir("/") < 0)
		va_fatal("chdir /");
}

void
va_daemon_detach(void)
{
	if (!dm.begun || dm.detached)
		return;
	dm.detached = 1;
	if (dm.pipe >= 0 && !dm.failed)
		send_bytes("D", 1);
	va_log_init(va_log_ident(), 1, va_log_get_level());
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

void
va_daemon_ready(void)
{
	if (dm.pipe < 0 || dm.failed)
		return;
	send_bytes("R", 1);
	close_pipe();
}

void
va_daemon_fail(const char *msg)
{
	char buf[1 + MSG_MAX];
	size_t len;

	if (dm.pipe < 0 || dm.failed)
		return;
	len = msg ? strnlen(msg, MSG_MAX) : 0;
	buf[0] = 'F';
	if (len)
		memcpy(buf + 1, msg, len);
	send_bytes(buf, 1 + len);
	dm.failed = 1;
	va_log_set_fatal_hook(NULL);
	/*
	 * The pipe stays open: the kernel closes it when this process ends,
	 * after exit() has run the atexit handlers (the pidfile's removal),
	 * and only then does the waiting process see the end and exit 1.
	 */
}

/* ---- the pidfile ---- */

/* The pid in an (other instance's) pidfile, or 0. */
static long
read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

static int
same_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

void
va_pidfile_create(const char *path)
{
	char buf[32];
	int fd = -1;

	if (pf.fd >= 0)
		return;
	/*
	 * An instance that stops unlinks the file and then lets the lock go:
	 * a lock taken on the file it unlinked is worth nothing, so take it
	 * again on the file at path now.
	 */
	for (int tries = 0; fd < 0; tries++) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
		if (fd < 0)
			va_fatal("pidfile %s", path);
		struct stat st;
		if (fstat(fd, &st) < 0)
			va_fatal("pidfile %s", path);
		if (!S_ISREG(st.st_mode))
			va_fatalx("pidfile %s is not a regular file", path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			if (e == EWOULDBLOCK) {
				long pid = read_pid(fd);
				if (pid > 0)
					va_fatalx("pidfile %s is locked: another %s runs (pid %ld)",
						  path, va_log_ident(), pid);
				va_fatalx("pidfile %s is locked: another %s runs", path,
					  va_log_ident());
			}
			errno = e;
			va_fatal("pidfile %s: flock", path);
		}
		if (!same_file(fd, path)) {
			close(fd);
			fd = -1;
			if (tries >= 10)
				va_fatalx("pidfile %s: replaced again and again while being locked",
					  path);
		}
	}
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		va_fatal("pidfile %s", path);
	pf.path = strdup(path);
	if (!pf.path) {
		unlink(path);
		va_fatalx("out of memory");
	}
	pf.fd = fd;
	pf.owner = getpid();
	static int registered;
	if (!registered && atexit(va_pidfile_remove) == 0)
		registered = 1;
}

void
va_pidfile_remove(void)
{
	if (pf.fd < 0 || getpid() != pf.owner)
		return;
	/* Unlink first, unlock (close) after: see va_pidfile_create(). */
	if (same_file(pf.fd, pf.path))
		unlink(pf.path);
	close(pf.fd);
	pf.fd = -1;
	free(pf.path);
	pf.path = NULL;
}
