/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * events.c - the bounded queue behind proxy.events (see events.h): a ring
 * of the newest events, and a condition variable the long polls wait on.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "contract.h"
#include "log.h"

struct event {
	uint64_t id;
	double time;         /* unix seconds */
	char *guest;
	char *type;
	xmlrpc_value *data;
};

/* Everything under lock. */
struct va_events {
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* a new event, a cancel, the shutdown */
	struct event *ring;     /* ring[(first + i) % cap], i < count */
	size_t cap, first, count;
	uint64_t last_id;       /* id of the newest event; 0: none yet */
	int shutting_down;
};

struct va_events *
va_events_new(size_t capacity)
{
	struct va_events *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (!q || !capacity || !(q->ring = calloc(capacity, sizeof(*q->ring)))) {
		free(q);
		return NULL;
	}
	q->cap = capacity;
	pthread_mutex_init(&q->lock, NULL);
	/* Long polls measure their wait on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	return q;
}

static void
event_clear(struct event *e)
{
	free(e->guest);
	free(e->type);
	if (e->data)
		xmlrpc_DECREF(e->data);
	memset(e, 0, sizeof(*e));
}

void
va_events_free(struct va_events *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->count; i++)
		event_clear(&q->ring[(q->first + i) % q->cap]);
	free(q->ring);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

uint64_t
va_events_post(struct va_events *q, const char *guest, const char *type, xmlrpc_value *data)
{
	xmlrpc_env env;
	struct timespec now;
	struct event e = { 0 };
	uint64_t id;

	clock_gettime(CLOCK_REALTIME, &now);
	e.time = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000.0;
	e.guest = strdup(guest);
	e.type = strdup(type);
	xmlrpc_env_init(&env);
	if (data)
		xmlrpc_INCREF(data);
	else
		data = xmlrpc_struct_new(&env);
	e.data = env.fault_occurred ? NULL : data;
	xmlrpc_env_clean(&env);
	if (!e.guest || !e.type || !e.data) {
		va_log_errx("event %s of %s dropped: out of memory", type, guest);
		event_clear(&e);
		return 0;
	}

	pthread_mutex_lock(&q->lock);
	if (q->count == q->cap) {
		event_clear(&q->ring[q->first]);
		q->first = (q->first + 1) % q->cap;
		q->count--;
	}
	id = e.id = ++q->last_id;
	q->ring[(q->first + q->count) % q->cap] = e;
	q->count++;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	va_log_debug("event %" PRIu64 ": %s from %s", id, type, guest);
	return id;
}

static xmlrpc_value *
id_value(xmlrpc_env *env, uint64_t id)
{
	/* i4 as long as it fits: every client knows it. */
	if (id <= INT32_MAX)
		return xmlrpc_int_new(env, (int)id);
	return xmlrpc_i8_new(env, (xmlrpc_int64)id);
}

/* The id of the oldest event kept (last_id + 1 when there is none); q->lock held. */
static uint64_t
oldest_id(const struct va_events *q)
{
	return q->count ? q->ring[q->first].id : q->last_id + 1;
}

/* Builds the answer from the events after since_id; q->lock held. */
static xmlrpc_value *
collect(struct va_events *q, xmlrpc_env *env, uint64_t since_id)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);
	uint64_t oldest = oldest_id(q);
	size_t start = since_id + 1 > oldest ? (size_t)(since_id + 1 - oldest) : 0;

	for (size_t i = start; i < q->count && !env->fault_occurred &&
	     i - start < VA_EVENTS_MAX_PER_CALL; i++) {
		const struct event *e = &q->ring[(q->first + i) % q->cap];
		xmlrpc_value *id = id_value(env, e->id);
		if (env->fault_occurred)
			break;
		xmlrpc_value *v = xmlrpc_build_value(env, "{s:V,s:d,s:s,s:s,s:V}",
						     "id", id, "time", e->time,
						     "guest", e->guest, "type", e->type,
						     "data", e->data);
		xmlrpc_DECREF(id);
		if (env->fault_occurred)
			break;
		xmlrpc_array_append_item(env, arr, v);
		xmlrpc_DECREF(v);
	}
	if (env->fault_occurred) {
		xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

xmlrpc_value *
va_events_get(struct va_events *q, xmlrpc_env *env, int64_t since_id, unsigned timeout_ms,
	      const int *cancel)
{
	struct timespec deadline;
	xmlrpc_value *result = NULL;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&q->lock);
	uint64_t since = since_id < 0 ? q->last_id : (uint64_t)since_id;
	for (;;) {
		uint64_t oldest = oldest_id(q), last_id = q->last_id;
		if (since > last_id) {
			xmlrpc_env_set_fault_formatted(env, VA_PROXY_FAULT_EVENTS_LOST,
				"since_id %" PRIu64 " is " VA_PROXY_EVENTS_RESTARTED " event (%" PRIu64 "): "
				"the proxy restarted and numbers events from 1 again; "
				"call again with since_id 0 (all events kept) or -1 (new events only)",
				since, last_id);
			break;
		}
		if (since + 1 < oldest) {
			xmlrpc_env_set_fault_formatted(env, VA_PROXY_FAULT_EVENTS_LOST,
				"events %" PRIu64 " to %" PRIu64 " fell off the queue (it keeps the "
				"newest %zu); " VA_PROXY_EVENTS_OLDEST_KEPT "%" PRIu64 ", the newest %" PRIu64
				": call again with since_id %" PRIu64 " to read on, or -1 for new "
				"events only", since + 1, oldest - 1, q->cap, oldest, last_id, oldest - 1);
			break;
		}
		if (last_id > since || q->shutting_down || (cancel && *cancel)) {
			result = collect(q, env, since);
			break;
		}
		int r = pthread_cond_timedwait(&q->cond, &q->lock, &deadline);
		if (r == ETIMEDOUT) {
			result = collect(q, env, since);
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return result;
}

void
va_events_cancel(struct va_events *q, int *cancel)
{
	pthread_mutex_lock(&q->lock);
	*cancel = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void
va_events_shutdown(struct va_events *q)
{
	pthread_mutex_lock(&q->lock);
	q->shutting_down = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}
