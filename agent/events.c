/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * events.c - the group "events": no methods; its state is the rate limit
 * of va_event() (events.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "groups.h"
#include "log.h"
#include "methods.h"

#define LIMIT_SLOTS 16
#define NAME_MAX_LEN 64

struct limit {
	char name[NAME_MAX_LEN];
	uint64_t window_start;
	unsigned sent;
	unsigned long dropped;
};

struct events {
	struct va_agent *a;
	struct limit slots[LIMIT_SLOTS];
};

/* The slot of name (an unused or the oldest one when new). */
static struct limit *
slot_of(struct events *ev, const char *name)
{
	struct limit *oldest = &ev->slots[0];

	for (int i = 0; i < LIMIT_SLOTS; i++) {
		struct limit *l = &ev->slots[i];
		if (strcmp(l->name, name) == 0)
			return l;
		if (l->window_start < oldest->window_start)
			oldest = l;
	}
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->name, sizeof(oldest->name), "%s", name);
	return oldest;
}

xmlrpc_value *
va_event_details(xmlrpc_env *env)
{
	xmlrpc_value *d = xmlrpc_struct_new(env);
	return env->fault_occurred ? NULL : d;
}

void
va_event(struct va_agent *a, const char *name, xmlrpc_value *details)
{
	struct events *ev = va_agent_group_state(a, &va_group_events);
	xmlrpc_env env;
	struct timespec ts;

	if (!ev)
		return;
	if (!va_session_is_ready(va_agent_session(a))) {
		va_log_debug("event %s not sent: no session with the host", name);
		return;
	}
	struct limit *l = slot_of(ev, name);
	uint64_t now = va_agent_now_ms(a);
	if (l->window_start == 0 || now - l->window_start >= VA_EVENT_WINDOW_MS) {
		l->window_start = now ? now : 1;
		l->sent = 0;
	}
	if (l->sent >= VA_EVENT_BURST) {
		if (l->dropped++ == 0)
			va_log_warnx("event %s: more than %d in %d s, dropping", name, VA_EVENT_BURST,
				     VA_EVENT_WINDOW_MS / 1000);
		return;
	}
	l->sent++;
	clock_gettime(CLOCK_REALTIME, &ts);
	xmlrpc_env_init(&env);
	xmlrpc_value *data = xmlrpc_struct_new(&env);
	va_set_double(&env, data, "time", (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	if (!env.fault_occurred)
		xmlrpc_struct_set_value(&env, data, "details", details);
	if (l->dropped)
		va_set_int(&env, data, "dropped", (int64_t)l->dropped);
	if (!env.fault_occurred) {
		va_log_info("event %s", name);
		va_agent_call_hostf(a, "host.event", "(sS)", name, data);
		l->dropped = 0;
	} else {
		va_log_errx("event %s not sent: %s", name, env.fault_string);
	}
	if (data)
		xmlrpc_DECREF(data);
	xmlrpc_env_clean(&env);
}

static int
events_init(struct va_agent *a, void **state)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -1;
	ev->a = a;
	*state = ev;
	return 0;
}

const struct va_method_group va_group_events = {
	.name = "events",
	.init = events_init,
	.cleanup = free,
};
