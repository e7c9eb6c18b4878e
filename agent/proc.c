/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proc.c - a command with its standard streams on the loop; see proc.h.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"

/* Without a pidfd: how often a running child is looked at (waitpid WNOHANG). */
#define EXIT_POLL_MS 100
/* Read from one output fd per callback at most (other fds get their turn). */
#define READ_PER_CALL (256u * 1024)
/* How long va_proc_free waits for a killed child to be reaped. */
#define FREE_WAIT_MS 2000

/*
 * A bounded FIFO of bytes: data[head .. head+len) valid; the block
 * (size bytes) grows on demand up to cap, so an idle stream holds little.
 */
struct fifo {
	uint8_t *data;
	size_t head, len, size, cap;
};

#define FIFO_FIRST (64u * 1024)

struct va_proc {
	va_loop *loop;
	pid_t pid;
	va_proc_event_fn *fn;
	void *opaque;
	int pty;
	int out_fd[2];        /* -1 once at end of file (or merged); with a pty both are the master */
	int out_eof[2];
	struct fifo out[2];
	int in_fd;            /* -1 once closed; with a pty, the master */
	int in_closed;        /* no more bytes are taken */
	int in_closing;       /* close once the queue drained */
	struct fifo in;
	int master;           /* the pty's master, or -1 */
	int pidfd;            /* -1 without (then exit_poll) or once reaped */
	va_loop_timer *exit_poll;
	int exited;
	int status;
};

/* ---- the FIFO ------------------------------------------------------------ */

static size_t
fifo_room(const struct fifo *f)
{
	return f->cap - f->len;
}

/* Room at the tail for up to n more bytes; returns where, NULL when out of memory. */
static uint8_t *
fifo_tail(struct fifo *f, size_t *n)
{
	if (f->head + f->len == f->size && f->head > 0) {
		memmove(f->data, f->data + f->head, f->len);
		f->head = 0;
	}
	if (f->len == f->size && f->size < f->cap) {
		size_t size = f->size ? f->size * 2 : FIFO_FIRST;
		if (size > f->cap)
			size = f->cap;
		uint8_t *d = realloc(f->data, size);
		if (!d)
			return NULL;
		f->data = d;
		f->size = size;
	}
	size_t avail = f->size - f->head - f->len;
	if (*n > avail)
		*n = avail;
	return f->data + f->head + f->len;
}

static void
fifo_consume(struct fifo *f, size_t n)
{
	f->head += n;
	f->len -= n;
	if (f->len == 0)
		f->head = 0;
}

static void
fifo_free(struct fifo *f)
{
	free(f->data);
	f->data = NULL;
	f->head = f->len = f->size = 0;
}

/* ---- the loop ---------------------------------------------------------------- */

static void on_fd(void *opaque, int fd, unsigned revents);

/* What the loop watches of fd: reading an output with room, writing queued stdin. */
static void
update_fd(struct va_proc *p, int fd)
{
	unsigned ev = 0;

	if (fd < 0)
		return;
	for (int s = 0; s < 2; s++)
		if (p->out_fd[s] == fd && fifo_room(&p->out[s]) > 0)
			ev |= POLLIN;
	if (p->in_fd == fd && p->in.len > 0)
		ev |= POLLOUT;
	va_loop_fd_events(p->loop, fd, ev);
}

static void
update_all(struct va_proc *p)
{
	update_fd(p, p->out_fd[0]);
	if (p->out_fd[1] != p->out_fd[0])
		update_fd(p, p->out_fd[1]);
	if (p->in_fd != p->out_fd[0] && p->in_fd != p->out_fd[1])
		update_fd(p, p->in_fd);
}

/* Forgets fd (in every role) and closes it unless another role still uses it. */
static void
drop_fd(struct va_proc *p, int *slot)
{
	int fd = *slot;

	*slot = -1;
	if (fd < 0)
		return;
	if (p->out_fd[0] == fd || p->out_fd[1] == fd || p->in_fd == fd || p->master == fd) {
		update_fd(p, fd);
		return;
	}
	va_loop_fd_clear(p->loop, fd);
	close(fd);
}

static void
out_ended(struct va_proc *p, int s)
{
	p->out_eof[s] = 1;
	drop_fd(p, &p->out_fd[s]);
}

/* Reads what stream s has, as far as its buffer has room.  1 when something changed. */
static int
read_out(struct va_proc *p, int s)
{
	size_t total = 0;
	int changed = 0;

	while (p->out_fd[s] >= 0 && fifo_room(&p->out[s]) > 0 && total < READ_PER_CALL) {
		size_t n = READ_PER_CALL - total;
		uint8_t *at = fifo_tail(&p->out[s], &n);
		if (!at)
			return changed; /* out of memory: try at the next event */
		ssize_t r = read(p->out_fd[s], at, n);
		if (r > 0) {
			p->out[s].len += (size_t)r;
			total += (size_t)r;
			changed = 1;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		/* 0: end of file.  EIO: the pty's last slave fd was closed (Linux). */
		out_ended(p, s);
		return 1;
	}
	update_fd(p, p->out_fd[s]);
	return changed;
}

static void
in_closed(struct va_proc *p)
{
	p->in_closed = 1;
	p->in_closing = 0;
	fifo_free(&p->in);
	if (p->pty)
		p->in_fd = -1; /* the master stays: it is the output too */
	else
		drop_fd(p, &p->in_fd);
	if (p->in_fd >= 0)
		update_fd(p, p->in_fd);
	else if (p->master >= 0)
		update_fd(p, p->master);
}

/* Writes queued stdin.  1 when something changed (room freed, closed). */
static int
write_in(struct va_proc *p)
{
	int changed = 0;

	while (p->in_fd >= 0 && p->in.len > 0) {
		ssize_t w = write(p->in_fd, p->in.data + p->in.head, p->in.len);
		if (w > 0) {
			fifo_consume(&p->in, (size_t)w);
			changed = 1;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		/* EPIPE (the reader is gone; SIGPIPE is ignored), EIO on a pty. */
		in_closed(p);
		return 1;
	}
	if (p->in.len == 0 && p->in_closing) {
		in_closed(p);
		return 1;
	}
	if (p->in_fd >= 0)
		update_fd(p, p->in_fd);
	return changed;
}

static void
notify(struct va_proc *p)
{
	/* Last thing of every callback: fn may free p. */
	p->fn(p->opaque, p);
}

static void
on_fd(void *opaque, int fd, unsigned revents)
{
	struct va_proc *p = opaque;
	int changed = 0;

	if ((revents & (POLLOUT | POLLERR | POLLHUP)) && p->in_fd == fd && p->in.len > 0)
		changed |= write_in(p);
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		for (int s = 0; s < 2; s++)
			if (p->out_fd[s] == fd)
				changed |= read_out(p, s);
	}
	if (changed)
		notify(p);
}

static int
reap(struct va_proc *p)
{
	int st;
	pid_t r;

	do
		r = waitpid(p->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r < 0) {
		/* ECHILD: someone reaped it (SIGCHLD ignored?): say it was killed. */
		va_log_warnx("exec: pid %d: %s", (int)p->pid, strerror(errno));
		st = SIGKILL;
	}
	p->exited = 1;
	p->status = st;
	if (p->pidfd >= 0) {
		va_loop_fd_clear(p->loop, p->pidfd);
		close(p->pidfd);
		p->pidfd = -1;
	}
	va_loop_timer_stop(p->exit_poll);
	return 1;
}

static void
on_pidfd(void *opaque, int fd, unsigned revents)
{
	struct va_proc *p = opaque;

	(void)fd;
	(void)revents;
	if (reap(p))
		notify(p);
}

static void
on_exit_poll(void *opaque)
{
	struct va_proc *p = opaque;

	if (reap(p)) {
		notify(p);
		return;
	}
	va_loop_timer_in(p->exit_poll, EXIT_POLL_MS);
}

/* ---- spawning ------------------------------------------------------------------- */

/* fd moved above 2 (close-on-exec): 0, 1 and 2 are the child's targets. */
static int
above2(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(fd);
	errno = e;
	return hi;
}

static int
cloexec_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	fds[0] = above2(fds[0]);
	fds[1] = above2(fds[1]);
	if (fds[0] < 0 || fds[1] < 0) {
		int e = errno;
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		errno = e;
		return -1;
	}
	return 0;
}

static void
close_if(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A pty: master (non-blocking) and slave, both close-on-exec and above 2. */
static int
open_pty(int *master, int *slave, unsigned short rows, unsigned short cols)
{
	char name[128];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	*master = *slave = -1;
	if (m < 0)
		return -1;
	m = above2(m);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		goto fail;
	int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	s = above2(s);
	if (s < 0)
		goto fail;
	if (rows && cols) {
		struct winsize ws = { .ws_row = rows, .ws_col = cols };
		ioctl(m, TIOCSWINSZ, &ws);
	}
	*master = m;
	*slave = s;
	return set_nonblock(m);
fail:
	if (m >= 0) {
		int e = errno;
		close(m);
		errno = e;
	}
	return -1;
}

/* What the child reports through the error pipe when it cannot exec. */
struct child_error {
	int stage;
	int err;
};

enum {
	STAGE_SESSION, STAGE_TTY, STAGE_STREAMS, STAGE_GROUPS, STAGE_GID, STAGE_UID,
	STAGE_CWD, STAGE_EXEC,
};

static const char *const stage_words[] = {
	"cannot start a session", "cannot take the terminal", "cannot set up the standard streams",
	"cannot set the groups", "cannot set the group id", "cannot set the user id",
	"cannot change to the directory", "cannot run",
};

static void
close_from(int lo, int keep)
{
	/* close_range (Linux 5.9, glibc 2.34); a loop where it is missing. */
	if (keep >= lo) {
		if (keep > lo && syscall(SYS_close_range, (unsigned)lo, (unsigned)keep - 1, 0) < 0)
			for (int fd = lo; fd < keep; fd++)
				close(fd);
		lo = keep + 1;
	}
	if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0) < 0) {
		long max = sysconf(_SC_OPEN_MAX);
		for (long fd = lo; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close((int)fd);
	}
}

/* The child, between fork and execve: async-signal-safe calls only. */
static void __attribute__((noreturn))
child(const struct va_proc_spec *spec, pid_t parent, int fd0, int fd1, int fd2, int tty,
      int errfd)
{
	struct child_error ce = { 0, 0 };
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL); /* EINVAL for the ones glibc keeps: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	ce.stage = STAGE_SESSION;
	if (setsid() < 0)
		goto fail;
	ce.stage = STAGE_TTY;
	if (tty >= 0 && ioctl(tty, TIOCSCTTY, 0) < 0)
		goto fail;
	ce.stage = STAGE_STREAMS;
	if (dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 || dup2(fd2, 2) < 0)
		goto fail;
	close_from(3, errfd);
	umask(022);
	if (spec->switch_user) {
		ce.stage = STAGE_GROUPS;
		if (setgroups(spec->ngroups, spec->groups) < 0)
			goto fail;
		ce.stage = STAGE_GID;
		if (setgid(spec->gid) < 0)
			goto fail;
		ce.stage = STAGE_UID;
		if (setuid(spec->uid) < 0)
			goto fail;
	}
	/* After the switch (which clears it): killed with the agent, should
	 * the agent die without its cleanup (SIGKILL). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	ce.stage = STAGE_CWD;
	if (chdir(spec->cwd ? spec->cwd : "/") < 0)
		goto fail;
	ce.stage = STAGE_EXEC;
	execve(spec->path, spec->argv, spec->envp);
fail:
	ce.err = errno;
	while (write(errfd, &ce, sizeof(ce)) < 0 && errno == EINTR)
		;
	_exit(127);
}

pid_t
va_proc_pid(const struct va_proc *p)
{
	return p->pid;
}

struct va_proc *
va_proc_spawn(va_loop *loop, const struct va_proc_spec *spec, va_proc_event_fn *fn,
	      void *opaque, char *err, size_t errlen, int *err_no)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int master = -1, slave = -1;
	struct va_proc *p = calloc(1, sizeof(*p));
	const char *what = "out of memory";
	int e = ENOMEM;

	*err_no = 0;
	if (!p)
		goto fail;
	p->loop = loop;
	p->fn = fn;
	p->opaque = opaque;
	p->pty = spec->pty;
	p->master = p->pidfd = p->in_fd = p->out_fd[0] = p->out_fd[1] = -1;
	p->out[0].cap = p->out[1].cap = spec->out_max;
	p->in.cap = spec->in_max;
	p->exit_poll = va_loop_timer_new(loop, on_exit_poll, p);
	if (!p->exit_poll)
		goto fail;
	what = "cannot make the pipes";
	if (cloexec_pipe(ep) < 0)
		goto fail_errno;
	if (spec->pty) {
		what = "cannot open a pseudo-terminal";
		if (open_pty(&master, &slave, spec->rows, spec->cols) < 0)
			goto fail_errno;
	} else {
		if (cloexec_pipe(in) < 0 || cloexec_pipe(out) < 0 ||
		    (!spec->merge && cloexec_pipe(errp) < 0))
			goto fail_errno;
		if (set_nonblock(in[1]) < 0 || set_nonblock(out[0]) < 0 ||
		    (errp[0] >= 0 && set_nonblock(errp[0]) < 0))
			goto fail_errno;
	}

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		what = "cannot fork";
		goto fail_errno;
	}
	if (pid == 0) {
		if (spec->pty)
			child(spec, parent, slave, slave, slave, slave, ep[1]);
		child(spec, parent, in[0], out[1], spec->merge ? out[1] : errp[1], -1, ep[1]);
	}
	p->pid = pid;
	close(ep[1]);
	ep[1] = -1;
	close_if(slave);
	close_if(in[0]);
	close_if(out[1]);
	close_if(errp[1]);
	slave = in[0] = out[1] = errp[1] = -1;

	/* The child writes here only when it cannot exec; execve closes it. */
	struct child_error ce;
	ssize_t r;
	do
		r = read(ep[0], &ce, sizeof(ce));
	while (r < 0 && errno == EINTR);
	close(ep[0]);
	ep[0] = -1;
	if (r == (ssize_t)sizeof(ce)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		int stage = ce.stage >= 0 && ce.stage <= STAGE_EXEC ? ce.stage : STAGE_EXEC;
		if (stage == STAGE_EXEC)
			snprintf(err, errlen, "%s %s: %s", stage_words[stage], spec->path, strerror(ce.err));
		else if (stage == STAGE_CWD)
			snprintf(err, errlen, "%s %s: %s", stage_words[stage], spec->cwd ? spec->cwd : "/",
				 strerror(ce.err));
		else
			snprintf(err, errlen, "%s: %s", stage_words[stage], strerror(ce.err));
		*err_no = ce.err;
		close_if(master);
		close_if(in[1]);
		close_if(out[0]);
		close_if(errp[0]);
		va_loop_timer_free(p->exit_poll);
		free(p);
		return NULL;
	}

	if (spec->pty) {
		p->master = p->in_fd = p->out_fd[0] = master;
		p->out_eof[1] = 1;
	} else {
		p->in_fd = in[1];
		p->out_fd[0] = out[0];
		p->out_fd[1] = errp[0];
		p->out_eof[1] = spec->merge;
	}
	int bad = 0;
	if (p->out_fd[0] >= 0)
		bad |= va_loop_fd_set(loop, p->out_fd[0], 0, on_fd, p) < 0;
	if (p->out_fd[1] >= 0)
		bad |= va_loop_fd_set(loop, p->out_fd[1], 0, on_fd, p) < 0;
	if (p->in_fd >= 0 && p->in_fd != p->out_fd[0])
		bad |= va_loop_fd_set(loop, p->in_fd, 0, on_fd, p) < 0;
	/*
	 * A kernel (or valgrind 3.19) without pidfd_open says ENOSYS once:
	 * not asked again, the process's one piece of state outside the
	 * agent, as it describes the kernel.
	 */
	static int no_pidfd;
	int pfd = no_pidfd ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0 && errno == ENOSYS)
		no_pidfd = 1;
	if (pfd >= 0 && (pfd = above2(pfd)) >= 0) {
		fcntl(pfd, F_SETFD, FD_CLOEXEC);
		if (va_loop_fd_set(loop, pfd, POLLIN, on_pidfd, p) == 0)
			p->pidfd = pfd;
		else
			close(pfd);
	}
	if (p->pidfd < 0)
		va_loop_timer_in(p->exit_poll, EXIT_POLL_MS);
	update_all(p);
	if (bad) {
		snprintf(err, errlen, "cannot watch the pipes: out of memory");
		*err_no = ENOMEM;
		va_proc_free(p);
		return NULL;
	}
	return p;

fail_errno:
	e = errno;
fail:
	snprintf(err, errlen, "%s: %s", what, strerror(e));
	*err_no = e;
	close_if(ep[0]);
	close_if(ep[1]);
	close_if(in[0]);
	close_if(in[1]);
	close_if(out[0]);
	close_if(out[1]);
	close_if(errp[0]);
	close_if(errp[1]);
	close_if(master);
	close_if(slave);
	if (p)
		va_loop_timer_free(p->exit_poll);
	free(p);
	return NULL;
}

/* ---- output -------------------------------------------------------------------------- */

size_t
va_proc_out_len(const struct va_proc *p, enum va_proc_stream s)
{
	return p->out[s].len;
}

const uint8_t *
va_proc_out_data(const struct va_proc *p, enum va_proc_stream s)
{
	return p->out[s].data ? p->out[s].data + p->out[s].head : NULL;
}

void
va_proc_out_consume(struct va_proc *p, enum va_proc_stream s, size_t n)
{
	if (n > p->out[s].len)
		n = p->out[s].len;
	if (n == 0)
		return;
	fifo_consume(&p->out[s], n);
	update_fd(p, p->out_fd[s]);
}

int
va_proc_out_eof(const struct va_proc *p, enum va_proc_stream s)
{
	return p->out_eof[s];
}

/* ---- stdin ---------------------------------------------------------------------------- */

int
va_proc_in_open(const struct va_proc *p)
{
	return !p->in_closed && !p->in_closing;
}

size_t
va_proc_in_room(const struct va_proc *p)
{
	return va_proc_in_open(p) ? fifo_room(&p->in) : 0;
}

size_t
va_proc_in_pending(const struct va_proc *p)
{
	return p->in.len;
}

int
va_proc_in_write(struct va_proc *p, const void *data, size_t len)
{
	const uint8_t *b = data;

	if (!va_proc_in_open(p))
		return -EPIPE;
	if (len > fifo_room(&p->in))
		return -ENOSPC;
	while (len > 0) {
		size_t n = len;
		uint8_t *at = fifo_tail(&p->in, &n);
		if (!at)
			return -ENOMEM;
		memcpy(at, b, n);
		p->in.len += n;
		b += n;
		len -= n;
	}
	/* Written now when the pipe takes it; the rest when it has room. */
	write_in(p);
	return 0;
}

void
va_proc_in_close(struct va_proc *p)
{
	if (!va_proc_in_open(p))
		return;
	if (p->pty) {
		/* A terminal has no end of its input but the EOF character
		 * (Ctrl-D), which means something only in canonical mode. */
		struct termios t;
		if (tcgetattr(p->master, &t) == 0 && (t.c_lflag & ICANON)) {
			uint8_t eof = t.c_cc[VEOF];
			size_t n = 1;
			uint8_t *at = fifo_room(&p->in) ? fifo_tail(&p->in, &n) : NULL;
			if (at) {
				*at = eof;
				p->in.len++;
			}
		}
	}
	p->in_closing = 1;
	write_in(p);
}

/* ---- exit, signals, size ---------------------------------------------------------------- */

int
va_proc_exited(const struct va_proc *p, int *status)
{
	if (p->exited && status)
		*status = p->status;
	return p->exited;
}

int
va_proc_kill(struct va_proc *p, int sig)
{
	/* The group outlives its leader; its id is not reused while a member lives. */
	if (kill(-p->pid, sig) == 0)
		return 0;
	int e = errno;
	if (!p->exited && kill(p->pid, sig) == 0)
		return 0;
	return -e;
}

int
va_proc_resize(struct va_proc *p, unsigned short rows, unsigned short cols)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };

	if (p->master < 0)
		return -ENOTTY;
	return ioctl(p->master, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

void
va_proc_free(struct va_proc *p)
{
	if (!p)
		return;
	if (!p->exited) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		for (int waited = 0; !reap(p) && waited < FREE_WAIT_MS; waited++) {
			struct timespec ts = { 0, 1000000L };
			nanosleep(&ts, NULL);
		}
		if (!p->exited)
			va_log_warnx("exec: pid %d did not exit after SIGKILL; left unreaped",
				     (int)p->pid);
	}
	p->in_closing = 0;
	drop_fd(p, &p->in_fd);
	drop_fd(p, &p->out_fd[0]);
	drop_fd(p, &p->out_fd[1]);
	if (p->master >= 0) {
		va_loop_fd_clear(p->loop, p->master);
		close(p->master);
	}
	if (p->pidfd >= 0) {
		va_loop_fd_clear(p->loop, p->pidfd);
		close(p->pidfd);
	}
	va_loop_timer_free(p->exit_poll);
	fifo_free(&p->in);
	fifo_free(&p->out[0]);
	fifo_free(&p->out[1]);
	free(p);
}
