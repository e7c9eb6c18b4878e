/* SPDX-License-Identifier: GPL-2.0-or-later */
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

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond;
static struct event *ring;   /* ring[(first + i) % cap], i < count */
static size_t cap, first, count;
static uint64_t last_id;     /* id of the newest event; 0: none yet */
static int shutting_down;

int
va_events_init(size_t capacity)
{
	pthread_condattr_t ca;

	ring = calloc(capacity, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	cap = capacity;
	first = count = 0;
	last_id = 0;
	shutting_down = 0;
	/* Long polls measure their wait on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev_cond, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
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
va_events_free(void)
{
	for (size_t i = 0; i < count; i++)
		event_clear(&ring[(first + i) % cap]);
	free(ring);
	ring = NULL;
	cap = first = count = 0;
	pthread_cond_destroy(&ev_cond);
}

uint64_t
va_events_post(const char *guest, const char *type, xmlrpc_value *data)
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

	pthread_mutex_lock(&ev_lock);
	if (!ring) {
		pthread_mutex_unlock(&ev_lock);
		event_clear(&e);
		return 0;
	}
	if (count == cap) {
		event_clear(&ring[first]);
		first = (first + 1) % cap;
		count--;
	}
	id = e.id = ++last_id;
	ring[(first + count) % cap] = e;
	count++;
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
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

/* Builds the answer from the events after since_id; ev_lock held. */
static xmlrpc_value *
collect(xmlrpc_env *env, uint64_t since_id)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);
	uint64_t oldest = count ? ring[first].id : last_id + 1;
	size_t start = since_id + 1 > oldest ? (size_t)(since_id + 1 - oldest) : 0;

	for (size_t i = start; i < count && !env->fault_occurred &&
	     i - start < VA_EVENTS_MAX_PER_CALL; i++) {
		const struct event *e = &ring[(first + i) % cap];
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
va_events_get(xmlrpc_env *env, int64_t since_id, unsigned timeout_ms,
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

	pthread_mutex_lock(&ev_lock);
	uint64_t since = since_id < 0 ? last_id : (uint64_t)since_id;
	for (;;) {
		uint64_t oldest = count ? ring[first].id : last_id + 1;
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
				"events only", since + 1, oldest - 1, cap, oldest, last_id, oldest - 1);
			break;
		}
		if (last_id > since || shutting_down || (cancel && *cancel)) {
			result = collect(env, since);
			break;
		}
		int r = pthread_cond_timedwait(&ev_cond, &ev_lock, &deadline);
		if (r == ETIMEDOUT) {
			result = collect(env, since);
			break;
		}
	}
	pthread_mutex_unlock(&ev_lock);
	return result;
}

void
va_events_cancel(int *cancel)
{
	pthread_mutex_lock(&ev_lock);
	*cancel = 1;
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
}

void
va_events_shutdown(void)
{
	pthread_mutex_lock(&ev_lock);
	shutting_down = 1;
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
}
