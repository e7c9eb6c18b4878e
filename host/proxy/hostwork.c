/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hostwork.c - one worker thread for the guests' large host.* calls (see
 * hostwork.h): a queue under a lock, and the answers posted back to the
 * loop.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "guest-int.h"
#include "guest.h"
#include "hostcalls.h"
#include "hostwork.h"
#include "log.h"
#include "proxy.h"
#include "serve.h"
#include "xmlgate.h"

struct job {
	struct job *next;
	struct va_hostwork *w;
	struct va_guest *g;  /* a reference of the job's */
	va_session *s;       /* compared, never used, off the loop */
	uint64_t epoch;
	char *tag;
	struct va_frame *req;
	struct va_buf out;   /* the answer */
	int failed;          /* out of memory: no answer */
};

struct va_hostwork {
	struct va_proxy *px;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, **tail;
	size_t queued;       /* waiting or running */
	int started, stopping;
	pthread_t thread;
};

struct va_hostwork *
va_hostwork_new(struct va_proxy *px)
{
	struct va_hostwork *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->px = px;
	w->tail = &w->head;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return w;
}

static void
job_free(struct job *j)
{
	va_frame_free(j->req);
	free(j->tag);
	va_buf_free(&j->out);
	if (j->g)
		va_guest_unref(j->g);
	free(j);
}

/* Back on the loop thread: the answer goes to the session it came from. */
static void
finish(void *arg)
{
	struct job *j = arg;
	struct va_guest *g = j->g;

	if (!g->gone && g->s == j->s) {
		if (j->failed)
			va_rpc_reply_fault(j->s, j->epoch, j->tag, XMLRPC_INTERNAL_ERROR,
					   "out of memory");
		else
			va_rpc_reply(j->s, j->epoch, j->tag, j->out.data, j->out.len);
	}
	g->hostwork_busy = 0;
	pthread_mutex_lock(&j->w->lock);
	j->w->queued--;
	pthread_mutex_unlock(&j->w->lock);
	job_free(j);
}

static void *
worker(void *arg)
{
	struct va_hostwork *w = arg;

	pthread_setname_np(pthread_self(), "va-hostwork");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stopping)
			break;
		struct job *j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = &w->head;
		pthread_mutex_unlock(&w->lock);

		struct va_host_call info = { j->g, j->req->body_len };
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		va_rpc_process_lim(&env, w->px->host_reg, j->req->body, j->req->body_len,
				   &va_xml_limits_small, &info, &j->out);
		j->failed = env.fault_occurred;
		xmlrpc_env_clean(&env);
		va_frame_free(j->req);
		j->req = NULL;
		va_proxy_post(w->px, finish, j);

		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int
va_hostwork_submit(struct va_hostwork *w, struct va_guest *g, va_session *s, uint64_t epoch,
		   const char *tag, struct va_frame *req)
{
	if (g->hostwork_busy) {
		va_frame_free(req);
		return -EBUSY;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j || !(j->tag = strdup(tag))) {
		free(j);
		va_frame_free(req);
		return -ENOMEM;
	}
	j->w = w;
	j->s = s;
	j->epoch = epoch;
	j->req = req;
	pthread_mutex_lock(&w->lock);
	if (w->queued >= VA_HOSTWORK_QUEUE || w->stopping) {
		pthread_mutex_unlock(&w->lock);
		job_free(j);
		return -EBUSY;
	}
	if (!w->started) {
		if (pthread_create(&w->thread, NULL, worker, w) != 0) {
			pthread_mutex_unlock(&w->lock);
			job_free(j);
			return -ENOMEM;
		}
		w->started = 1;
	}
	va_guest_ref(g);
	j->g = g;
	g->hostwork_busy = 1;
	w->queued++;
	*w->tail = j;
	w->tail = &j->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void
va_hostwork_stop(struct va_hostwork *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	struct job *q = w->head;
	w->head = NULL;
	w->tail = &w->head;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
	while (q) {
		struct job *next = q->next;
		q->g->hostwork_busy = 0;
		job_free(q);
		q = next;
	}
}

void
va_hostwork_free(struct va_hostwork *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
