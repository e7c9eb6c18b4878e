/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.h - going to the background with a start that can fail loudly,
 * and a pidfile that keeps a second instance out.  Shared by va-agent and
 * va-proxy.
 *
 * The sequence, for a program run with --daemonize:
 *
 *     va_daemon_begin()      fork; the caller's process waits from here
 *     va_pidfile_create()    (when wanted) lock and write the pidfile
 *     ... open what the program serves; va_fatal() on any failure ...
 *     va_daemon_detach()     stdin/out/err to /dev/null, log to syslog
 *     va_daemon_ready()      the caller's process exits 0
 *
 * The exit status of the process that was started (what an init script
 * or systemd's Type=forking sees) is therefore:
 *   0  the daemon runs and has done everything up to va_daemon_ready();
 *   1  it did not start: the reason is on that process's stderr.
 *      Messages logged before va_daemon_detach() reach the caller's
 *      stderr directly (the daemon still shares it); the message of a
 *      va_fatal()/va_fatalx() after the detach is passed back through
 *      the pipe and printed by the waiting process, in the log's format
 *      ("IDENT: error: MESSAGE").  When the daemon dies before it is
 *      ready without a fatal message (a signal, a plain exit), the
 *      waiting process says so.
 * By the time the waiting process has exited 1, the daemon has exited
 * too, after its atexit handlers (the pidfile's removal) ran: nothing is
 * left behind.
 *
 * The state is one per process and private to daemon.c; every function
 * is a no-op where it does not apply (ready or detach without begin, a
 * second ready), so callers need no flags of their own.  Not for use
 * from several threads at once: call them from the main thread during
 * the start.
 */
#ifndef VA_DAEMON_H
#define VA_DAEMON_H

/*
 * Forks twice (the daemon is in a new session and is no session leader,
 * so it cannot get a controlling terminal back); returns only in the
 * daemon.  Before that it closes every inherited fd above 2 and makes
 * sure 0, 1 and 2 are open (on /dev/null when they were closed), so the
 * pipe to the waiting process can never be one of them.  The process
 * that called it waits until the daemon reports, then exits (0 or 1, see
 * above) without running atexit handlers.  The daemon's umask is 022 and
 * its working directory /.  Installs the log's fatal hook (log.h), so
 * that va_fatal*() until va_daemon_ready() reaches the waiting process.
 * Failures (pipe, fork, setsid, chdir) are fatal.
 */
void va_daemon_begin(void);

/*
 * Points stdin, stdout and stderr to /dev/null and switches the log to
 * syslog (same ident and level).  Call it when everything that can fail
 * for a bad setting has been done, just before va_daemon_ready().  Tells
 * the waiting process that later messages are in the system log only.
 */
void va_daemon_detach(void);

/* The start is complete: the waiting process exits 0.  Closes the pipe. */
void va_daemon_ready(void);

/*
 * The start failed with msg: the waiting process prints it (if the
 * daemon had already detached) and exits 1 when this process has exited.
 * Does not exit itself: va_fatal*() calls it through the log's fatal hook
 * and then exits; call it directly only right before exit(1).  Later
 * calls, and va_daemon_ready(), do nothing.  msg may be NULL.
 */
void va_daemon_fail(const char *msg);

/*
 * Creates (or reuses) the pidfile at path, takes an exclusive flock on
 * it without waiting, and writes getpid() and a newline into it.  The
 * lock is held until the process exits, so a second instance with the
 * same pidfile fails at once with "pidfile PATH is locked: another IDENT
 * runs (pid N)" (fatal, exit 1).  Call it after va_daemon_begin(), so
 * that the pid is the daemon's, and before anything else that a second
 * instance must not touch.  Other failures are fatal too.  Registers
 * va_pidfile_remove() with atexit().
 */
void va_pidfile_create(const char *path);

/*
 * Removes the pidfile and releases the lock; idempotent.  Does nothing
 * in another process than the one that created it (a forked child that
 * exits), and does not remove a file that another instance has put at
 * the same path since.
 */
void va_pidfile_remove(void);

#endif
