/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * events.c - the bounded queue behind proxy.events (see events.h): a list
 * of events in id order with each guest's share counted, and a condition
 * variable the long polls wait on.
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
#include "text.h"
#include "xmlgate.h"

struct share;

struct event {
	struct event *prev, *next; /* the queue, oldest first */
	uint64_t id;
	double time;         /* unix seconds */
	char *guest;
	char *type;
	xmlrpc_value *data;
	size_t cost;
	struct share *share; /* the guest's */
};

/* What one guest's events hold. */
struct share {
	struct share *next;
	char *guest;
	size_t count, bytes;
	unsigned long dropped; /* not told yet (events.dropped) */
};

/* Everything under lock. */
struct va_events {
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* a new event, a cancel, the shutdown */
	struct event *head, *tail;
	size_t cap, count, bytes;
	struct share *shares;
	uint64_t last_id;       /* id of the newest event; 0: none yet */
	uint64_t front_lost;    /* the newest id that fell off the front; 0: none */
	int shutting_down;
};

struct va_events *
va_events_new(size_t capacity)
{
	struct va_events *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (!q || !capacity) {
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
event_free(struct event *e)
{
	free(e->guest);
	free(e->type);
	if (e->data)
		xmlrpc_DECREF(e->data);
	free(e);
}

void
va_events_free(struct va_events *q)
{
	if (!q)
		return;
	while (q->head) {
		struct event *e = q->head;
		q->head = e->next;
		event_free(e);
	}
	while (q->shares) {
		struct share *sh = q->shares;
		q->shares = sh->next;
		free(sh->guest);
		free(sh);
	}
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* The share of guest (made when missing); NULL: no memory.  q->lock held. */
static struct share *
share_of(struct va_events *q, const char *guest)
{
	for (struct share *sh = q->shares; sh; sh = sh->next)
		if (strcmp(sh->guest, guest) == 0)
			return sh;
	struct share *sh = calloc(1, sizeof(*sh));
	if (!sh || !(sh->guest = strdup(guest))) {
		free(sh);
		return NULL;
	}
	sh->next = q->shares;
	q->shares = sh;
	return sh;
}

static void
unlink_event(struct va_events *q, struct event *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	q->count--;
	q->bytes -= e->cost;
	e->share->count--;
	e->share->bytes -= e->cost;
}

/*
 * Drops the oldest event of share sh: when it is the front of the queue,
 * a reader behind it gets fault 1007 (front_lost); further in, the guest
 * owes an events.dropped note.
 */
static void
drop_oldest_of(struct va_events *q, struct share *sh)
{
	struct event *e = q->head;
	while (e && e->share != sh)
		e = e->next;
	if (!e)
		return;
	if (e == q->head) {
		/* Off the front: a reader behind it hears by fault 1007. */
		q->front_lost = e->id;
	} else if (strcmp(e->type, "events.dropped") != 0) {
		sh->dropped++;
	} else if (e->data) {
		/* A drop notice that goes carries its count on. */
		xmlrpc_env env;
		xmlrpc_value *c = NULL;
		int n = 0;
		xmlrpc_env_init(&env);
		xmlrpc_struct_find_value(&env, e->data, "count", &c);
		if (c) {
			xmlrpc_read_int(&env, c, &n);
			xmlrpc_DECREF(c);
		}
		if (!env.fault_occurred && n > 0)
			sh->dropped += (unsigned long)n;
		xmlrpc_env_clean(&env);
	}
	unlink_event(q, e);
	event_free(e);
}

/* The share holding the most: of bytes when by_bytes, else of events. */
static struct share *
largest(struct va_events *q, int by_bytes)
{
	struct share *big = NULL;
	for (struct share *sh = q->shares; sh; sh = sh->next)
		if (sh->count && (!big || (by_bytes ? sh->bytes > big->bytes : sh->count > big->count)))
			big = sh;
	return big;
}

static void
append(struct va_events *q, struct event *e)
{
	e->id = ++q->last_id;
	e->prev = q->tail;
	e->next = NULL;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->count++;
	q->bytes += e->cost;
	e->share->count++;
	e->share->bytes += e->cost;
}

/*
 * The values of the tree v, at most limit (the gate's small limits keep
 * it a few thousand and 64 deep; the depth is checked here all the same).
 */
static size_t
values_in(xmlrpc_value *v, unsigned depth, size_t limit)
{
	xmlrpc_env env;
	size_t n = 1;

	if (!v || depth > VA_XML_DEPTH_CAP)
		return n;
	xmlrpc_env_init(&env);
	xmlrpc_type t = xmlrpc_value_type(v);
	if (t == XMLRPC_TYPE_ARRAY) {
		int size = xmlrpc_array_size(&env, v);
		for (int i = 0; i < size && !env.fault_occurred && n < limit; i++) {
			xmlrpc_value *item = NULL;
			xmlrpc_array_read_item(&env, v, i, &item);
			if (item) {
				n += values_in(item, depth + 1, limit - n);
				xmlrpc_DECREF(item);
			}
		}
	} else if (t == XMLRPC_TYPE_STRUCT) {
		int size = xmlrpc_struct_size(&env, v);
		for (int i = 0; i < size && !env.fault_occurred && n < limit; i++) {
			xmlrpc_value *key = NULL, *item = NULL;
			xmlrpc_struct_read_member(&env, v, (unsigned)i, &key, &item);
			if (item) {
				n += values_in(item, depth + 1, limit - n);
				xmlrpc_DECREF(item);
			}
			if (key)
				xmlrpc_DECREF(key);
		}
	}
	xmlrpc_env_clean(&env);
	return n;
}

static struct event *
event_new(const char *guest, const char *type, xmlrpc_value *data, size_t cost)
{
	xmlrpc_env env;
	struct timespec now;
	struct event *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &now);
	e->time = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000.0;
	e->guest = strdup(guest);
	e->type = strdup(type);
	/* Counted by its XML or by its values, whichever is more (events.h). */
	size_t values = data ? values_in(data, 0, SIZE_MAX / VA_EVENTS_VALUE_COST) : 0;
	if (values * VA_EVENTS_VALUE_COST > cost)
		cost = values * VA_EVENTS_VALUE_COST;
	e->cost = cost < VA_EVENTS_MIN_COST ? VA_EVENTS_MIN_COST : cost;
	xmlrpc_env_init(&env);
	if (data)
		xmlrpc_INCREF(data);
	else
		data = xmlrpc_struct_new(&env);
	e->data = env.fault_occurred ? NULL : data;
	xmlrpc_env_clean(&env);
	if (!e->guest || !e->type || !e->data) {
		event_free(e);
		return NULL;
	}
	return e;
}

uint64_t
va_events_post(struct va_events *q, const char *guest, const char *type, xmlrpc_value *data,
	       size_t cost)
{
	struct event *e = event_new(guest, type, data, cost);
	uint64_t id;

	if (!e) {
		va_log_errx("event %s of %s dropped: out of memory", type, guest);
		return 0;
	}
	if (e->cost > VA_EVENTS_GUEST_BYTES / 2) {
		va_log_warnx("event %s of %s dropped: %zu bytes, over half a guest's share of "
			     "the queue", type, guest, e->cost);
		event_free(e);
		return 0;
	}
	pthread_mutex_lock(&q->lock);
	struct share *sh = share_of(q, guest);
	if (!sh) {
		pthread_mutex_unlock(&q->lock);
		va_log_errx("event %s of %s dropped: out of memory", type, guest);
		event_free(e);
		return 0;
	}
	e->share = sh;
	/* The guest's own share first, then the queue's bounds, taken from
	 * the guest that holds the most: a flood pushes out its own. */
	while (sh->count && sh->bytes + e->cost + VA_EVENTS_MIN_COST > VA_EVENTS_GUEST_BYTES)
		drop_oldest_of(q, sh);
	while (q->count + 1 > q->cap)
		drop_oldest_of(q, largest(q, 0));
	while (q->bytes + e->cost + VA_EVENTS_MIN_COST > VA_EVENTS_TOTAL_BYTES)
		drop_oldest_of(q, largest(q, 1));
	/* Say what this guest lost before its new event (no memory: said later). */
	if (sh->dropped) {
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		xmlrpc_value *d = xmlrpc_build_value(&env, "{s:i}", "count",
						     sh->dropped > INT32_MAX ? INT32_MAX
									      : (int)sh->dropped);
		struct event *note = env.fault_occurred ? NULL
							  : event_new(guest, "events.dropped", d, 0);
		if (d)
			xmlrpc_DECREF(d);
		xmlrpc_env_clean(&env);
		if (note) {
			note->share = sh;
			va_log_warnx("events of %s: %lu dropped (over its share of the queue)", guest,
				     sh->dropped);
			sh->dropped = 0;
			append(q, note);
		}
	}
	append(q, e);
	id = e->id;
	/* A note made the queue one too long: the largest share gives. */
	while (q->count > q->cap)
		drop_oldest_of(q, largest(q, 0));
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
	return q->count ? q->head->id : q->last_id + 1;
}

/* Builds the answer from the events after since_id; q->lock held. */
static xmlrpc_value *
collect(struct va_events *q, xmlrpc_env *env, uint64_t since_id)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);
	const struct event *e = q->head;
	size_t n = 0;

	while (e && e->id <= since_id)
		e = e->next;
	for (; e && !env->fault_occurred && n < VA_EVENTS_MAX_PER_CALL; e = e->next, n++) {
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
			va_fault(env, VA_PROXY_FAULT_EVENTS_LOST,
				"since_id %" PRIu64 " is " VA_PROXY_EVENTS_RESTARTED " event (%" PRIu64 "): "
				"the proxy restarted and numbers events from 1 again; "
				"call again with since_id 0 (all events kept) or -1 (new events only)",
				since, last_id);
			break;
		}
		/* Events after since fell off the front (events a guest lost to its
		 * share further in are told by its events.dropped). */
		if (since + 1 < oldest && q->front_lost > since) {
			va_fault(env, VA_PROXY_FAULT_EVENTS_LOST,
				"events %" PRIu64 " to %" PRIu64 " fell off the queue (it keeps the "
				"newest %zu, and each guest's share of bytes); " VA_PROXY_EVENTS_OLDEST_KEPT "%" PRIu64 ", the newest %" PRIu64
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
