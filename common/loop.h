/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loop.h - the one event loop of both daemons, in the manner of Redis's
 * ae.c: file descriptors with callbacks, timers, and work posted from
 * other threads with a wake-up.  va-agent runs everything on one loop;
 * va-proxy's loop thread runs its guests' links and its HTTP server on
 * one.  Nobody else assembles a pollfd array or calls epoll_wait.
 *
 * One pass of the loop (va_loop_run_once):
 *   1. wait (epoll, level-triggered) until an fd is ready, the first
 *      timer is due, work is posted, or max_wait_ms passed; no wait at
 *      all when a timer is already due;
 *   2. call the callback of every ready fd;
 *   3. run the timers that are due, except those armed during this step
 *      (those run in the next pass, after its wait with timeout 0): a
 *      job that re-arms itself for "now" goes on in slices with I/O
 *      served in between, and never keeps the loop from waiting;
 *   4. run the work posted by other threads (and by this one).
 * An idle loop (no ready fd, no due timer) sleeps in epoll_wait and
 * takes no CPU.
 *
 * Events and revents use poll()'s bits: POLLIN, POLLOUT, and in revents
 * also POLLHUP and POLLERR, which are reported whenever the fd is polled
 * at all.  An fd set with events 0 is left out of the wait entirely (not
 * even POLLHUP wakes the loop: a virtio-serial port with no host reports
 * POLLHUP at once, every time), but keeps its callback.  An fd set with
 * events POLLHUP alone is polled for POLLHUP and POLLERR only: for a
 * socket whose input is not wanted now but whose peer's going is (a
 * peer that only shut its sending side is not a POLLHUP).
 *
 * Lifetimes: every callback may add, change or clear any fd, and arm,
 * stop or free any timer, its own included.  An fd cleared (or cleared
 * and set again) during a pass gets no event of that pass that was meant
 * for the old registration.  Closing an fd without va_loop_fd_clear()
 * first is a bug of the caller (epoll forgets it; the loop does not).
 *
 * Threads: everything but va_loop_post() and va_loop_stop() is for the
 * loop's own thread (the one calling va_loop_run*).
 */
#ifndef VA_LOOP_H
#define VA_LOOP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

typedef struct va_loop va_loop;
typedef struct va_loop_timer va_loop_timer;

/* revents: POLLIN, POLLOUT, POLLHUP, POLLERR (poll.h). */
typedef void va_loop_fd_fn(void *opaque, int fd, unsigned revents);
typedef void va_loop_timer_fn(void *opaque);
typedef void va_loop_work_fn(void *arg);

/* Monotonic clock in milliseconds. */
uint64_t va_now_ms(void);

/* NULL with errno set on failure. */
va_loop *va_loop_new(void);
/*
 * Frees the loop.  Its users free their timers first; fds still set are
 * left open (they belong to their owners); posted work that did not run
 * is dropped without being called.
 */
void va_loop_free(va_loop *l);

/*
 * Sets (adds or changes) fd's interest (POLLIN and/or POLLOUT; POLLHUP
 * alone: hang-ups and errors only; 0: not polled) and its callback.  Returns 0, or -errno (-EPERM for a regular
 * file, which epoll cannot watch).
 */
int va_loop_fd_set(va_loop *l, int fd, unsigned events, va_loop_fd_fn *fn, void *opaque);
/* Changes the interest only, keeping the callback of va_loop_fd_set. */
int va_loop_fd_events(va_loop *l, int fd, unsigned events);
/* Forgets fd (before it is closed).  Unknown fds are fine. */
void va_loop_fd_clear(va_loop *l, int fd);

/* A timer, not armed.  NULL on allocation failure. */
va_loop_timer *va_loop_timer_new(va_loop *l, va_loop_timer_fn *fn, void *opaque);
/* Arms (or moves) the timer to absolute monotonic time due_ms (va_now_ms()). */
void va_loop_timer_at(va_loop_timer *t, uint64_t due_ms);
/* Arms (or moves) it to delay_ms from now. */
void va_loop_timer_in(va_loop_timer *t, uint64_t delay_ms);
/* Arms it for "now" unless it is armed already for an earlier time. */
void va_loop_timer_soon(va_loop_timer *t);
void va_loop_timer_stop(va_loop_timer *t);
int va_loop_timer_armed(const va_loop_timer *t);
/* When it is due (UINT64_MAX when not armed). */
uint64_t va_loop_timer_due(const va_loop_timer *t);
/* Stops and frees; NULL is fine; fine from its own callback. */
void va_loop_timer_free(va_loop_timer *t);

/*
 * Runs fn(arg) on the loop thread at step 4 of a pass, waking the loop
 * if it waits.  Any thread.  Work is run in the order posted.  Returns 0
 * or -ENOMEM.
 */
int va_loop_post(va_loop *l, va_loop_work_fn *fn, void *arg);
/* Runs the posted work not run yet, on the calling thread (after the loop stopped). */
void va_loop_run_posted(va_loop *l);

/*
 * One pass (see above), waiting at most max_wait_ms (-1: as long as
 * nothing happens).  Returns the number of callbacks run (fds, timers
 * and posted work), or -errno when the wait failed (EINTR is 0).
 */
int va_loop_run_once(va_loop *l, int max_wait_ms);
/* Passes until va_loop_stop(); returns 0, or -errno when a wait failed. */
int va_loop_run(va_loop *l);
/* Makes va_loop_run() return after the current pass.  Any thread. */
void va_loop_stop(va_loop *l);
int va_loop_stopping(const va_loop *l);

/*
 * fn(opaque) runs at the start of every pass, before the wait (Redis's
 * beforesleep): for a user that keeps deadlines of its own and re-arms
 * its timer from them.  It must not block.  NULL removes it.
 */
void va_loop_set_before_wait(va_loop *l, va_loop_work_fn *fn, void *opaque);

struct va_loop_stats {
	uint64_t passes;   /* va_loop_run_once calls */
	uint64_t wakeups;  /* waits that returned with something to do */
	uint64_t fd_calls; /* fd callbacks run */
	uint64_t timer_calls;
	uint64_t posted_calls;
};
void va_loop_stats(const va_loop *l, struct va_loop_stats *st);

/*
 * Signals delivered on the loop: fn(opaque) runs in step 2 of a pass
 * after signo arrived (once for several deliveries in a row).  The
 * handler only writes to a pipe, so fn may do anything.  One loop per
 * process may own signals; SA_RESTART is set.  Returns 0 or -errno.
 * SIGPIPE is not for this: ignore it (the sockets use MSG_NOSIGNAL).
 */
int va_loop_signal(va_loop *l, int signo, va_loop_work_fn *fn, void *opaque);

#endif
