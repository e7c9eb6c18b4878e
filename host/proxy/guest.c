/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest.c - the guest table of a proxy, the guests' references, and what
 * the other threads read of a guest: the state the loop thread
 * (guest-link.c) keeps in it under g->lock, and what the host.* methods
 * store there (see guest.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "events.h"
#include "guest-int.h"
#include "guest.h"
#include "hostcalls.h"
#include "log.h"
#include "text.h"
#include "proxy.h"
#include "rpc.h"

static int
clamp_int(uint64_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

/* ---- the table ---- */

struct va_guests *
va_guests_new(struct va_proxy *px)
{
	struct va_guests *t = calloc(1, sizeof(*t));
	xmlrpc_env env;

	if (!t)
		return NULL;
	t->px = px;
	pthread_mutex_init(&t->lock, NULL);
	/* The call every new session gets, made once. */
	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_array_new(&env);
	if (!env.fault_occurred)
		va_rpc_serialize_call(&env, &t->caps_call, "va.capabilities", params);
	if (params)
		xmlrpc_DECREF(params);
	int failed = env.fault_occurred;
	xmlrpc_env_clean(&env);
	if (failed) {
		va_guests_free(t);
		return NULL;
	}
	return t;
}

void
va_guests_free(struct va_guests *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		va_guest_unref(t->v[i]);
	free(t->v);
	free(t->slots);
	va_buf_free(&t->caps_call);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void
guest_free(struct va_guest *g)
{
	free(g->sh.agent_version);
	if (g->sh.methods)
		xmlrpc_DECREF(g->sh.methods);
	free(g->sh.notice_mode);
	free(g->sh.notice_reason);
	free(g->sh.clip);
	pthread_mutex_destroy(&g->lock);
	free(g->name);
	free(g->spec);
	free(g);
}

void
va_guest_ref(struct va_guest *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void
va_guest_unref(struct va_guest *g)
{
	if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		guest_free(g); /* its I/O was closed when it left the table */
}

/* FNV-1a of a guest's name. */
static size_t
name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static void
slot_put(struct va_guests *t, struct va_guest *g)
{
	size_t mask = t->nslots - 1, i = name_hash(g->name) & mask;

	while (t->slots[i]) /* nslots > n: a free slot is there */
		i = (i + 1) & mask;
	t->slots[i] = g;
}

/* The name index again from v (after a removal: no slot moves otherwise). */
static void
slots_rebuild(struct va_guests *t)
{
	memset(t->slots, 0, t->nslots * sizeof(*t->slots));
	for (size_t i = 0; i < t->n; i++)
		slot_put(t, t->v[i]);
}

int
va_guests_add(struct va_proxy *px, const char *name, const char *spec, char *err,
	      size_t errlen)
{
	struct va_guests *t = px->guests;
	struct va_guest *g;
	int r;

	if (va_guests_find(px, name)) {
		snprintf(err, errlen, "a guest named %s is there already", name);
		return -EEXIST;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		struct va_guest **v = malloc(cap * sizeof(*v));
		struct va_guest **slots = calloc(2 * cap, sizeof(*slots));
		if (!v || !slots) {
			free(v);
			free(slots);
			goto nomem;
		}
		/* Other threads read t->v under the lock: swap it there. */
		pthread_mutex_lock(&t->lock);
		if (t->n)
			memcpy(v, t->v, t->n * sizeof(*v));
		free(t->v);
		t->v = v;
		t->cap = cap;
		pthread_mutex_unlock(&t->lock);
		free(t->slots);
		t->slots = slots;
		t->nslots = 2 * cap;
		slots_rebuild(t);
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		goto nomem;
	g->px = px;
	atomic_init(&g->refs, 1);
	pthread_mutex_init(&g->lock, NULL);
	g->seen_state = VA_CHANNEL_DOWN;
	if (!(g->name = strdup(name)) || !(g->spec = strdup(spec))) {
		guest_free(g);
		goto nomem;
	}
	r = va_channel_open(spec, &g->ch, err, errlen);
	if (r < 0) {
		guest_free(g);
		return r;
	}
	if (va_guest_io_open(g) < 0) {
		va_guest_io_close(g);
		guest_free(g);
		goto nomem;
	}
	pthread_mutex_lock(&t->lock);
	t->v[t->n++] = g;
	pthread_mutex_unlock(&t->lock);
	slot_put(t, g);
	return 0;
nomem:
	snprintf(err, errlen, "guest %s: out of memory", name);
	return -ENOMEM;
}

void
va_guests_remove(struct va_proxy *px, struct va_guest *g)
{
	struct va_guests *t = px->guests;
	size_t i = 0;

	while (i < t->n && t->v[i] != g)
		i++;
	if (i == t->n)
		return;
	/* Its calls fail while it is still in the table (their answers name it). */
	va_guest_io_close(g);
	pthread_mutex_lock(&t->lock);
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
	t->n--;
	pthread_mutex_unlock(&t->lock);
	slots_rebuild(t);
	va_guest_unref(g);
}

void
va_guests_remove_all(struct va_proxy *px)
{
	struct va_guests *t = px->guests;

	while (t->n > 0)
		va_guests_remove(px, t->v[t->n - 1]);
}

size_t
va_guests_count(struct va_proxy *px)
{
	return px->guests->n;
}

struct va_guest *
va_guests_at(struct va_proxy *px, size_t i)
{
	struct va_guests *t = px->guests;

	return i < t->n ? t->v[i] : NULL;
}

struct va_guest *
va_guests_find(struct va_proxy *px, const char *name)
{
	struct va_guests *t = px->guests;

	if (!t->nslots)
		return NULL;
	size_t mask = t->nslots - 1;
	for (size_t i = name_hash(name) & mask; t->slots[i]; i = (i + 1) & mask)
		if (!strcmp(t->slots[i]->name, name))
			return t->slots[i];
	return NULL;
}

struct va_guest **
va_guests_list(struct va_proxy *px, size_t *n)
{
	struct va_guests *t = px->guests;
	struct va_guest **list = NULL;

	*n = 0;
	pthread_mutex_lock(&t->lock);
	if (t->n && (list = malloc(t->n * sizeof(*list)))) {
		for (size_t i = 0; i < t->n; i++) {
			list[i] = t->v[i];
			va_guest_ref(list[i]);
		}
		*n = t->n;
	}
	pthread_mutex_unlock(&t->lock);
	return list;
}

void
va_guests_list_free(struct va_guest **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		va_guest_unref(list[i]);
	free(list);
}

const char *
va_guest_name(const struct va_guest *g)
{
	return g->name;
}

const char *
va_guest_spec(const struct va_guest *g)
{
	return g->spec;
}

void
va_guest_post_event(struct va_guest *g, const char *type, xmlrpc_value *data, size_t cost)
{
	va_events_post(g->px->events, g->name, type, data, cost);
}

/* ---- what other threads read ---- */

static void
put(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_value *v)
{
	if (env->fault_occurred || !v)
		return;
	xmlrpc_struct_set_value(env, st, key, v);
	xmlrpc_DECREF(v);
}

xmlrpc_value *
va_guest_status(xmlrpc_env *env, struct va_guest *g)
{
	xmlrpc_value *st = xmlrpc_struct_new(env);
	if (env->fault_occurred)
		return NULL;

	pthread_mutex_lock(&g->lock);
	const struct guest_shared *sh = &g->sh;
	put(env, st, "guest", va_text_value_z(env, g->name));
	/* A socket path of the config may hold any character (emoji too). */
	put(env, st, "channel", va_text_value_z(env, g->spec));
	put(env, st, "connected", xmlrpc_bool_new(env, sh->connected));
	put(env, st, "established", xmlrpc_bool_new(env, sh->established));
	put(env, st, "answered", xmlrpc_bool_new(env, sh->answered));
	put(env, st, "session", xmlrpc_string_new(env, sh->established ? sh->session : ""));
	put(env, st, "agent_version",
	    xmlrpc_string_new(env, sh->agent_version ? sh->agent_version : ""));
	put(env, st, "protocol", xmlrpc_int_new(env, sh->protocol));
	if (sh->methods) {
		xmlrpc_INCREF(sh->methods);
		put(env, st, "methods", sh->methods);
	} else {
		put(env, st, "methods", xmlrpc_array_new(env));
	}
	put(env, st, "agent_max_frame", xmlrpc_int_new(env, clamp_int((uint64_t)sh->agent_max_frame)));
	put(env, st, "last_seen", xmlrpc_double_new(env, sh->last_seen));
	put(env, st, "resets", xmlrpc_int_new(env, clamp_int(sh->resets)));
	put(env, st, "calls_forwarded", xmlrpc_int_new(env, clamp_int(sh->calls_forwarded)));
	put(env, st, "calls_failed", xmlrpc_int_new(env, clamp_int(sh->calls_failed)));
	put(env, st, "calls_in_flight", xmlrpc_int_new(env, clamp_int(sh->in_flight)));
	put(env, st, "stale_responses", xmlrpc_int_new(env, clamp_int(sh->stale_responses)));
	put(env, st, "unmatched_responses",
	    xmlrpc_int_new(env, clamp_int(sh->unmatched_responses)));
	put(env, st, "hellos", xmlrpc_int_new(env, clamp_int(sh->hellos)));
	put(env, st, "shutdown_notice",
	    xmlrpc_build_value(env, "{s:s,s:s,s:d}",
			       "mode", sh->notice_mode ? sh->notice_mode : "",
			       "reason", sh->notice_reason ? sh->notice_reason : "",
			       "time", sh->notice_time));
	pthread_mutex_unlock(&g->lock);
	if (env->fault_occurred) {
		xmlrpc_DECREF(st);
		return NULL;
	}
	return st;
}

xmlrpc_value *
va_guest_clipboard(xmlrpc_env *env, struct va_guest *g)
{
	pthread_mutex_lock(&g->lock);
	/* Raw text kept: built through common/text (emoji, CR). */
	xmlrpc_value *text = va_text_value(env, g->sh.clip ? g->sh.clip : "", g->sh.clip_len);
	xmlrpc_value *serial = env->fault_occurred ? NULL :
		xmlrpc_int_new(env, clamp_int(g->sh.clip_serial));
	double when = g->sh.clip_time;
	pthread_mutex_unlock(&g->lock);

	xmlrpc_value *v = env->fault_occurred ? NULL :
		xmlrpc_build_value(env, "{s:V,s:V,s:d}", "text", text, "serial", serial,
				   "time", when);
	if (text)
		xmlrpc_DECREF(text);
	if (serial)
		xmlrpc_DECREF(serial);
	return v;
}

xmlrpc_value *
va_guest_methods(xmlrpc_env *env, struct va_guest *g)
{
	xmlrpc_value *m;

	pthread_mutex_lock(&g->lock);
	m = g->sh.methods;
	if (m)
		xmlrpc_INCREF(m);
	pthread_mutex_unlock(&g->lock);
	return m ? m : xmlrpc_array_new(env);
}

/* ---- updates from the host.* methods (loop thread) ---- */

/* Finds member key of st with type t (t2: another accepted type); faults otherwise. */
static xmlrpc_value *
member(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_type t, xmlrpc_type t2,
       const char *what, const char *source)
{
	xmlrpc_value *v = NULL;

	xmlrpc_struct_find_value(env, st, key, &v);
	if (env->fault_occurred)
		return NULL;
	if (!v) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "%s: member \"%s\" (%s) is missing", source, key, what);
		return NULL;
	}
	if (xmlrpc_value_type(v) != t && xmlrpc_value_type(v) != t2) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "%s: member \"%s\" must be %s", source, key, what);
		xmlrpc_DECREF(v);
		return NULL;
	}
	return v;
}

static int64_t
int_of(xmlrpc_env *env, xmlrpc_value *v)
{
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 x = 0;
		xmlrpc_read_i8(env, v, &x);
		return x;
	}
	int x = 0;
	xmlrpc_read_int(env, v, &x);
	return x;
}

void
va_guest_set_info(xmlrpc_env *env, struct va_guest *g, xmlrpc_value *info, const char *source)
{
	xmlrpc_value *ver = NULL, *proto = NULL, *methods = NULL, *maxf = NULL;
	const char *version = NULL;

	if (xmlrpc_value_type(info) != XMLRPC_TYPE_STRUCT) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					       "%s: expected a struct {version, protocol, methods, "
					       "max_frame}", source);
		return;
	}
	ver = member(env, info, "version", XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING, "a string",
		     source);
	if (!env->fault_occurred)
		proto = member(env, info, "protocol", XMLRPC_TYPE_INT, XMLRPC_TYPE_I8,
			       "an int", source);
	if (!env->fault_occurred)
		methods = member(env, info, "methods", XMLRPC_TYPE_ARRAY, XMLRPC_TYPE_ARRAY,
				 "an array of strings", source);
	if (!env->fault_occurred)
		maxf = member(env, info, "max_frame", XMLRPC_TYPE_INT, XMLRPC_TYPE_I8,
			      "an int", source);
	if (!env->fault_occurred) {
		int n = xmlrpc_array_size(env, methods);
		if (n > VA_HOST_METHODS_MAX)
			xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
				"%s: more than %d methods", source, VA_HOST_METHODS_MAX);
		for (int i = 0; i < n && !env->fault_occurred; i++) {
			xmlrpc_value *item = NULL;
			const char *name = NULL;
			xmlrpc_array_read_item(env, methods, i, &item);
			if (!env->fault_occurred && xmlrpc_value_type(item) != XMLRPC_TYPE_STRING)
				xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
					"%s: member \"methods\" must be an array of strings", source);
			if (!env->fault_occurred)
				xmlrpc_read_string(env, item, &name);
			if (!env->fault_occurred && strlen(name) > VA_HOST_METHOD_NAME_MAX)
				xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					"%s: a method name is longer than %u bytes", source,
					VA_HOST_METHOD_NAME_MAX);
			if (name)
				free((void *)name);
			if (item)
				xmlrpc_DECREF(item);
		}
	}
	if (!env->fault_occurred)
		xmlrpc_read_string(env, ver, &version);
	if (!env->fault_occurred && strlen(version) > VA_HOST_VERSION_MAX)
		xmlrpc_env_set_fault_formatted(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
					       "%s: version longer than %u bytes", source,
					       VA_HOST_VERSION_MAX);
	int64_t protocol = env->fault_occurred ? 0 : int_of(env, proto);
	int64_t max_frame = env->fault_occurred ? 0 : int_of(env, maxf);
	if (!env->fault_occurred) {
		char *vcopy = strdup(version);
		pthread_mutex_lock(&g->lock);
		free(g->sh.agent_version);
		g->sh.agent_version = vcopy;
		g->sh.protocol = protocol > INT32_MAX || protocol < INT32_MIN ? 0 : (int)protocol;
		if (g->sh.methods)
			xmlrpc_DECREF(g->sh.methods);
		xmlrpc_INCREF(methods);
		g->sh.methods = methods;
		g->sh.agent_max_frame = max_frame;
		g->sh.answered = g->sh.established;
		if (!strcmp(source, "host.hello"))
			g->sh.hellos++;
		pthread_mutex_unlock(&g->lock);
		va_log_info("%s: agent %s (protocol %" PRId64 ", %d methods) from %s", g->name,
			    version, protocol, xmlrpc_array_size(env, methods), source);
	}
	if (version)
		free((void *)version);
	if (ver)
		xmlrpc_DECREF(ver);
	if (proto)
		xmlrpc_DECREF(proto);
	if (methods)
		xmlrpc_DECREF(methods);
	if (maxf)
		xmlrpc_DECREF(maxf);
}

uint64_t
va_guest_set_clipboard(struct va_guest *g, const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	uint64_t serial;

	if (!copy)
		return 0;
	memcpy(copy, text, len);
	copy[len] = '\0';
	pthread_mutex_lock(&g->lock);
	free(g->sh.clip);
	g->sh.clip = copy;
	g->sh.clip_len = len;
	g->sh.clip_time = va_guest_wall_now();
	serial = ++g->sh.clip_serial;
	pthread_mutex_unlock(&g->lock);
	return serial;
}

void
va_guest_note_shutdown(struct va_guest *g, const char *mode, const char *reason)
{
	char *m = strdup(mode), *r = strdup(reason);

	pthread_mutex_lock(&g->lock);
	free(g->sh.notice_mode);
	free(g->sh.notice_reason);
	g->sh.notice_mode = m;
	g->sh.notice_reason = r;
	g->sh.notice_time = va_guest_wall_now();
	pthread_mutex_unlock(&g->lock);
}
