/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobs.c - jobs on threads of their own (jobs.h).
 *
 * The shared part (struct va_jobs) is counted: one reference for its
 * owner, one per job that has not ended, one while a drain is posted.
 * Whoever drops the last frees it, so a thread that ends after the owner
 * has gone finds it still there.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "jobs.h"
#include "log.h"

/* The threads do system calls only. */
#define JOB_STACK (256 * 1024)

struct job {
	struct job *next;
	struct va_jobs *j;
	void (*work)(void *);
	void (*done)(void *);
	void (*drop)(void *);
	void *arg;
};

struct va_jobs {
	pthread_mutex_t mu;
	va_loop *loop;
	unsigned refs;
	int alive;               /* the owner has not freed it */
	int posted;              /* a drain waits on the loop */
	unsigned count, max;     /* jobs not done yet */
	struct job *ended, **ended_tail;
};

/* Drops a reference (mu held); 1 when it was the last (free after unlocking). */
static int
unref_locked(struct va_jobs *j)
{
	return --j->refs == 0;
}

static void
destroy(struct va_jobs *j)
{
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* On the loop thread: the ended jobs' done. */
static void
drain(void *opaque)
{
	struct va_jobs *j = opaque;

	pthread_mutex_lock(&j->mu);
	struct job *list = j->ended;
	j->ended = NULL;
	j->ended_tail = &j->ended;
	j->posted = 0;
	int alive = j->alive, last = unref_locked(j);
	unsigned n = 0;
	for (struct job *k = list; k; k = k->next)
		n++;
	if (alive)
		j->count -= n;
	pthread_mutex_unlock(&j->mu);
	while (list) {
		struct job *k = list;
		list = k->next;
		if (alive)
			k->done(k->arg);
		else
			k->drop(k->arg);
		free(k);
	}
	if (last)
		destroy(j);
}

static void *
job_main(void *opaque)
{
	struct job *k = opaque;
	struct va_jobs *j = k->j;

	k->work(k->arg);
	pthread_mutex_lock(&j->mu);
	int keep = 0;
	if (j->alive) {
		k->next = NULL;
		*j->ended_tail = k;
		j->ended_tail = &k->next;
		keep = 1;
		if (!j->posted) {
			if (va_loop_post(j->loop, drain, j) == 0) {
				j->posted = 1;
				j->refs++;
			} else {
				/* No memory for the post: the job's answer is lost;
				 * the next job's post carries it. */
				va_log_errx("a job ended but cannot be handed to the loop (out of memory)");
			}
		}
	}
	int last = unref_locked(j);
	pthread_mutex_unlock(&j->mu);
	if (!keep) {
		k->drop(k->arg);
		free(k);
	}
	if (last)
		destroy(j);
	return NULL;
}

struct va_jobs *
va_jobs_new(va_loop *loop, unsigned max)
{
	struct va_jobs *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	pthread_mutex_init(&j->mu, NULL);
	j->loop = loop;
	j->refs = 1;
	j->alive = 1;
	j->max = max;
	j->ended_tail = &j->ended;
	return j;
}

void
va_jobs_free(struct va_jobs *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	j->alive = 0;
	struct job *list = j->ended;
	j->ended = NULL;
	j->ended_tail = &j->ended;
	int last = unref_locked(j);
	pthread_mutex_unlock(&j->mu);
	while (list) {
		struct job *k = list;
		list = k->next;
		k->drop(k->arg);
		free(k);
	}
	if (last)
		destroy(j);
}

int
va_jobs_run(struct va_jobs *j, void (*work)(void *), void (*done)(void *), void (*drop)(void *),
	    void *arg)
{
	struct job *k;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int r;

	pthread_mutex_lock(&j->mu);
	if (j->count >= j->max) {
		pthread_mutex_unlock(&j->mu);
		return -EBUSY;
	}
	pthread_mutex_unlock(&j->mu);
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->j = j;
	k->work = work;
	k->done = done;
	k->drop = drop;
	k->arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, JOB_STACK);
	pthread_mutex_lock(&j->mu);
	j->refs++;
	j->count++;
	/* Signals stay with the loop thread (its signal pipe). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t, &attr, job_main, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		j->refs--;
		j->count--;
	}
	pthread_mutex_unlock(&j->mu);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		free(k);
		return -r;
	}
	return 0;
}

unsigned
va_jobs_count(struct va_jobs *j)
{
	pthread_mutex_lock(&j->mu);
	unsigned n = j->count;
	pthread_mutex_unlock(&j->mu);
	return n;
}
