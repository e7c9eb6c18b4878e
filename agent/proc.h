/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proc.h - one command the agent runs with its standard streams on the
 * loop (va.exec.*, exec.c): pipes (or a pseudo-terminal), bounded
 * buffers with back-pressure, and the exit seen without SIGCHLD.
 *
 * The child: a new session (so its own process group, pgid = pid, and
 * no controlling terminal but its pty), default signal handling and an
 * empty signal mask, fds above 2 closed, umask 022, the supplementary
 * groups, gid and uid of spec->user when set (in that order, before
 * exec), then chdir and execve of spec->path with exactly spec->envp.
 * Nothing runs through a shell.  A failure before execve is reported
 * by va_proc_spawn (an error pipe that execve closes), not as an exit.
 *
 * Output: what the child writes to stdout and stderr is read as it
 * comes into a buffer per stream of at most spec->out_max bytes; a full
 * buffer is not read from (its fd leaves the loop's wait), so the child
 * blocks on a full pipe and nothing is dropped.  Stdin: bytes given
 * with va_proc_in_write wait in a buffer of at most spec->in_max bytes
 * and are written as the child reads them.
 *
 * The exit is seen through a pidfd on the loop (Linux 5.3); without
 * one, by a waitpid(pid, WNOHANG) every EXIT_POLL_MS.  Either way only
 * this child's pid is waited for: children.c's children and any other
 * are left alone.
 *
 * Events: fn(opaque, p) runs on the loop after anything a reader may
 * care about changed (output buffered, a stream ended, the child
 * exited, stdin room freed, stdin closed).  fn may call any function
 * here, va_proc_free(p) included.
 */
#ifndef VA_AGENT_PROC_H
#define VA_AGENT_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"

struct va_proc;

enum va_proc_stream { VA_PROC_STDOUT = 0, VA_PROC_STDERR = 1 };

struct va_proc_spec {
	const char *path;        /* the file to execute (absolute) */
	char *const *argv;       /* NULL-terminated */
	char *const *envp;       /* NULL-terminated: the whole environment */
	const char *cwd;         /* NULL: "/" */
	int switch_user;         /* run as uid/gid with groups */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
	int pty;                 /* stdin, stdout and stderr on a new pseudo-terminal */
	unsigned short rows, cols; /* its size (0: the kernel's default) */
	int merge;               /* stderr into stdout (a pty always merges) */
	size_t out_max;          /* bytes buffered per output stream */
	size_t in_max;           /* bytes buffered for stdin */
};

typedef void va_proc_event_fn(void *opaque, struct va_proc *p);

/*
 * Starts the command.  Returns the process, or NULL with the reason in
 * err ("cannot run /x: No such file or directory", errno in *err_no).
 */
struct va_proc *va_proc_spawn(va_loop *loop, const struct va_proc_spec *spec,
			      va_proc_event_fn *fn, void *opaque, char *err, size_t errlen,
			      int *err_no);
pid_t va_proc_pid(const struct va_proc *p);

/* Output buffered on stream s (not yet consumed). */
size_t va_proc_out_len(const struct va_proc *p, enum va_proc_stream s);
const uint8_t *va_proc_out_data(const struct va_proc *p, enum va_proc_stream s);
/* Drops the first n buffered bytes (n <= len): room for the child again. */
void va_proc_out_consume(struct va_proc *p, enum va_proc_stream s, size_t n);
/* 1 when the stream has ended (end of file, or merged) and everything read is buffered. */
int va_proc_out_eof(const struct va_proc *p, enum va_proc_stream s);

/* 1 while stdin takes bytes (not closed by va_proc_in_close, the child or its exit). */
int va_proc_in_open(const struct va_proc *p);
/* Free room in the stdin buffer (0 when closed). */
size_t va_proc_in_room(const struct va_proc *p);
/* Bytes still waiting to reach the child. */
size_t va_proc_in_pending(const struct va_proc *p);
/*
 * Queues len bytes (at most the room) for stdin.  Returns 0, or -EPIPE
 * when stdin is closed, -ENOSPC when they do not fit, -ENOMEM.
 */
int va_proc_in_write(struct va_proc *p, const void *data, size_t len);
/*
 * Ends stdin once the queued bytes are written: the pipe is closed (on a
 * pty, the terminal's end-of-file character is written instead when it
 * is in canonical mode).
 */
void va_proc_in_close(struct va_proc *p);

/* 1 when the child has exited and was reaped; *status as waitpid's. */
int va_proc_exited(const struct va_proc *p, int *status);
/* Sends sig to the child's process group.  0 or -errno (-ESRCH: none left). */
int va_proc_kill(struct va_proc *p, int sig);
/* Sets the pty's window size (-ENOTTY without a pty).  0 or -errno. */
int va_proc_resize(struct va_proc *p, unsigned short rows, unsigned short cols);

/*
 * Frees p: a child not reaped yet has its process group killed
 * (SIGKILL) and is waited for (briefly: a killed process exits at
 * once); the fds are closed.  NULL is fine.
 */
void va_proc_free(struct va_proc *p);

#endif
