/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobs.h - work that may block (FIFREEZE, FITRIM, statvfs of a network or
 * FUSE filesystem, writing a CPU's online file) run on threads of its
 * own, its end handed back to the loop thread with va_loop_post().
 *
 * A job is three functions of one argument:
 *   work(arg)  on a new thread; it must not touch the session, the
 *              registry or anything else of the loop thread's;
 *   done(arg)  then on the loop thread (answer the call, free arg);
 *   drop(arg)  instead of done when the jobs were freed before the job
 *              ended (the agent is going): free arg.  It runs on the
 *              job's thread, or on the loop thread in va_jobs_free.
 * A thread that never returns (a filesystem that does not answer) is
 * left behind: va_jobs_free does not wait for it, and its drop runs
 * when (if) it returns.  At most max jobs run at once.
 */
#ifndef VA_AGENT_JOBS_H
#define VA_AGENT_JOBS_H

#include "loop.h"

struct va_jobs;

/* NULL on failure (out of memory). */
struct va_jobs *va_jobs_new(va_loop *loop, unsigned max);
/* Forgets every job: those that ended and wait for done are dropped now, the
 * running ones when they end.  NULL is fine. */
void va_jobs_free(struct va_jobs *j);
/* Starts a job: 0, -EBUSY (max jobs run), or -errno (no thread, no memory). */
int va_jobs_run(struct va_jobs *j, void (*work)(void *), void (*done)(void *),
		void (*drop)(void *), void *arg);
/* How many jobs run or wait for their done. */
unsigned va_jobs_count(struct va_jobs *j);

#endif
