/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy.c - va-proxy's context (see proxy.h): making its parts in order,
 * the loop thread, the guest table made from what the sources want, and
 * the orderly stop.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlrpc-c/base.h>

#include "events.h"
#include "forward.h"
#include "guest.h"
#include "hostcalls.h"
#include "hostwork.h"
#include "http.h"
#include "libvirt.h"
#include "log.h"
#include "proxy.h"
#include "proxycalls.h"

/* ---- the guests the sources want ---- */

static void
want_free(struct va_proxy_guest_opt *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].spec);
	}
	free(v);
}

static struct va_proxy_guest_opt *
want_copy(const struct va_proxy_guest_opt *list, size_t n)
{
	struct va_proxy_guest_opt *v = calloc(n ? n : 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		v[i].name = strdup(list[i].name);
		v[i].spec = strdup(list[i].spec);
		if (!v[i].name || !v[i].spec) {
			want_free(v, i + 1);
			return NULL;
		}
	}
	return v;
}

static const char *const source_names[VA_GUESTS_NSOURCES] = { "config", "libvirt" };

/* The source and entry that wins for name; NULL when none wants it. */
static const struct va_proxy_guest_opt *
wanted(struct va_proxy *px, const char *name, int *src)
{
	for (int s = 0; s < VA_GUESTS_NSOURCES; s++)
		for (size_t i = 0; i < px->nwant[s]; i++)
			if (!strcmp(px->want[s][i].name, name)) {
				if (src)
					*src = s;
				return &px->want[s][i];
			}
	return NULL;
}

/*
 * va_proxy_set_guests; with err, the first guest that cannot be added
 * is not logged but described there (at the start, where it is fatal).
 */
static int
set_guests(struct va_proxy *px, enum va_guest_source src, const struct va_proxy_guest_opt *list,
	   size_t n, struct va_guests_change *st, char *err, size_t errlen)
{
	struct va_guests_change ch = { 0 };
	char why[512];

	if (st)
		*st = ch;
	if (va_loop_stopping(px->loop))
		return 0;
	struct va_proxy_guest_opt *copy = want_copy(list, n);
	if (!copy)
		return -ENOMEM;
	want_free(px->want[src], px->nwant[src]);
	px->want[src] = copy;
	px->nwant[src] = n;

	/* Removed, or changed: removed here and added again below (the
	 * entries of those in renew, to count them as changed). */
	size_t ng = va_guests_count(px), nrenew = 0;
	const struct va_proxy_guest_opt **renew = calloc(ng ? ng : 1, sizeof(*renew));
	if (!renew)
		return -ENOMEM;
	for (size_t i = ng; i-- > 0;) {
		struct va_guest *g = va_guests_at(px, i);
		int from = 0;
		const struct va_proxy_guest_opt *w = wanted(px, va_guest_name(g), &from);
		if (w && !strcmp(w->spec, va_guest_spec(g))) {
			ch.kept++;
			continue;
		}
		if (w) {
			va_log_info("guest %s: its channel is now %s (%s): a new session",
				    w->name, w->spec, source_names[from]);
			renew[nrenew++] = w;
		} else {
			va_log_info("guest %s removed", va_guest_name(g));
			ch.removed++;
		}
		va_guests_remove(px, g);
	}
	for (int s = 0; s < VA_GUESTS_NSOURCES; s++) {
		for (size_t i = 0; i < px->nwant[s]; i++) {
			const struct va_proxy_guest_opt *w = &px->want[s][i];
			int from = 0;
			if (wanted(px, w->name, &from) != w) {
				if (s == (int)src && from != s)
					va_log_warnx("guest %s of %s is left out: the %s names a guest "
						     "%s already", w->name, source_names[s],
						     source_names[from], w->name);
				continue;
			}
			if (va_guests_find(px, w->name))
				continue;
			int r = va_guests_add(px, w->name, w->spec, why, sizeof(why));
			if (r == -ENOMEM) {
				free(renew);
				return r;
			}
			if (r < 0) {
				ch.failed++;
				if (err && !err[0])
					snprintf(err, errlen, "guest %s: %s", w->name, why);
				else
					va_log_errx("guest %s (%s) not added: %s", w->name,
						    source_names[s], why);
				continue;
			}
			size_t k = 0;
			while (k < nrenew && renew[k] != w)
				k++;
			if (k < nrenew) {
				ch.changed++;
				continue;
			}
			ch.added++;
			va_log_info("guest %s added (%s, %s)", w->name, w->spec, source_names[s]);
		}
	}
	free(renew);
	if (st)
		*st = ch;
	return 0;
}

int
va_proxy_set_guests(struct va_proxy *px, enum va_guest_source src,
		    const struct va_proxy_guest_opt *list, size_t n, struct va_guests_change *st)
{
	return set_guests(px, src, list, n, st, NULL, 0);
}

struct set_job {
	struct va_proxy *px;
	enum va_guest_source src;
	const struct va_proxy_guest_opt *list;
	size_t n;
	struct va_guests_change *st;
	int r;
	int done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void
set_job_run(void *arg)
{
	struct set_job *j = arg;
	int r = va_proxy_set_guests(j->px, j->src, j->list, j->n, j->st);

	pthread_mutex_lock(&j->lock);
	j->r = r;
	j->done = 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

int
va_proxy_set_guests_wait(struct va_proxy *px, enum va_guest_source src,
			 const struct va_proxy_guest_opt *list, size_t n,
			 struct va_guests_change *st)
{
	struct set_job j = { .px = px, .src = src, .list = list, .n = n, .st = st };

	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);
	va_proxy_post(px, set_job_run, &j);
	pthread_mutex_lock(&j.lock);
	while (!j.done)
		pthread_cond_wait(&j.cond, &j.lock);
	pthread_mutex_unlock(&j.lock);
	pthread_cond_destroy(&j.cond);
	pthread_mutex_destroy(&j.lock);
	return j.r;
}

/* ---- the proxy ---- */

struct va_proxy *
va_proxy_new(const struct va_proxy_config *cfg, const char *secret, char *err, size_t errlen)
{
	struct va_proxy *px = calloc(1, sizeof(*px));
	char why[1024];
	xmlrpc_env env;

	if (!px)
		goto nomem;
	px->call_timeout_ms = cfg->call_timeout_s * 1000u;
	px->max_frame = cfg->max_frame;
	if (!(px->loop = va_loop_new()) || !(px->events = va_events_new(VA_EVENTS_CAPACITY)) ||
	    !(px->fwd = va_forward_new(px)) || !(px->guests = va_guests_new(px)) ||
	    !(px->hostwork = va_hostwork_new(px)))
		goto nomem;
	if (va_forward_set_block_list(px->fwd, cfg->block_rpcs, err, errlen) < 0)
		goto fail;
	xmlrpc_env_init(&env);
	px->host_reg = va_hostcalls_registry(&env);
	if (!env.fault_occurred)
		px->proxy_reg = va_proxycalls_registry(&env);
	if (env.fault_occurred) {
		snprintf(err, errlen, "registry: %s", env.fault_string);
		xmlrpc_env_clean(&env);
		goto fail;
	}
	xmlrpc_env_clean(&env);

	struct va_http_config hcfg = {
		.max_frame = cfg->max_frame,
		.secret = secret,
		.allow_remote = cfg->allow_remote,
		.socket_group = cfg->socket_group,
	};
	if (!(px->httpd = va_http_new(px, &hcfg, err, errlen)))
		goto fail;
	if (cfg->libvirt_uri && *cfg->libvirt_uri && !(px->libvirt_uri = strdup(cfg->libvirt_uri)))
		goto nomem;
	/* At the start a guest that cannot be added is an error of the config. */
	why[0] = '\0';
	int r = set_guests(px, VA_GUESTS_CONFIG, cfg->guests, cfg->nguests, NULL, why,
			   sizeof(why));
	if (r == -ENOMEM)
		goto nomem;
	if (why[0]) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlistens; i++)
		if (va_httpd_listen(px->httpd, cfg->listens[i], err, errlen) < 0)
			goto fail;
	return px;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	va_proxy_free(px);
	return NULL;
}

static void *
loop_main(void *arg)
{
	struct va_proxy *px = arg;

	/* Thread names: what top -H and /proc/PID/task/N/comm show, and what
	 * tests/e2e-hostile.py reads to tell the loop's CPU from the workers'. */
	pthread_setname_np(pthread_self(), "va-loop");
	if (va_loop_run(px->loop) < 0)
		va_fatal("loop thread");
	/* Every guest goes: its calls in flight fail, and are answered now. */
	va_guests_remove_all(px);
	return NULL;
}

int
va_proxy_start(struct va_proxy *px, char *err, size_t errlen)
{
	int r = pthread_create(&px->loop_thread, NULL, loop_main, px);
	if (r) {
		snprintf(err, errlen, "cannot start the loop thread: %s", strerror(r));
		return -r;
	}
	px->loop_running = 1;
	if (px->libvirt_uri) {
		char why[512];
		px->libvirt = va_libvirt_start(px, px->libvirt_uri, why, sizeof(why));
		if (!px->libvirt) {
			snprintf(err, errlen, "libvirt: %s", why);
			return -EAGAIN;
		}
	}
	return 0;
}

void
va_proxy_post(struct va_proxy *px, va_loop_work_fn *fn, void *arg)
{
	if (va_loop_post(px->loop, fn, arg) < 0)
		va_fatalx("out of memory posting work to the loop thread");
}

int
va_proxy_stop(struct va_proxy *px, unsigned timeout_ms)
{
	/* Nothing new from libvirt; then wake the long polls, fail the
	 * calls, and stop the HTTP side. */
	int stuck = va_libvirt_stop(px->libvirt, timeout_ms) < 0;
	if (stuck)
		va_log_warnx("libvirt: the watcher still waits for libvirtd after %u ms: exiting "
			     "without waiting", timeout_ms);
	px->libvirt = NULL;
	va_events_shutdown(px->events);
	va_loop_stop(px->loop);
	if (px->loop_running) {
		pthread_join(px->loop_thread, NULL);
		px->loop_running = 0;
	} else {
		va_guests_remove_all(px);
	}
	/* This thread is the loop's from here on. */
	va_hostwork_stop(px->hostwork);
	if (va_forward_wait_local(px->fwd, timeout_ms) < 0) {
		va_log_warnx("proxy.* calls still running after %u ms: exiting without waiting",
			     timeout_ms);
		stuck = 1;
	}
	if (stuck) {
		va_httpd_unlink_sockets(px->httpd);
		return -1;
	}
	/* Their answers, and whatever else was posted after the loop thread ended. */
	va_loop_run_posted(px->loop);
	/* The answers still being written (a slow reader, a large answer). */
	uint64_t end = va_now_ms() + VA_HTTP_FINISH_MS;
	for (size_t n = va_httpd_finish(px->httpd); n > 0; n = va_httpd_connections(px->httpd)) {
		uint64_t now = va_now_ms();
		if (now >= end)
			break;
		va_loop_run_once(px->loop, (int)(end - now));
	}
	va_httpd_free(px->httpd);
	px->httpd = NULL;
	return 0;
}

void
va_proxy_free(struct va_proxy *px)
{
	if (!px)
		return;
	/* The server first: it gives back the guests its requests held. */
	va_httpd_free(px->httpd);
	if (px->loop)
		va_loop_run_posted(px->loop); /* answers nobody waits for now: their memory */
	/* Only when va_proxy_stop was not called (a test): px must outlive
	 * the watcher's thread, however long libvirtd makes it wait. */
	while (va_libvirt_stop(px->libvirt, 5000) < 0)
		va_log_warnx("libvirt: the watcher still waits for libvirtd");
	if (px->guests) {
		va_guests_remove_all(px);
		va_guests_free(px->guests);
	}
	va_hostwork_stop(px->hostwork);
	va_hostwork_free(px->hostwork);
	for (int s = 0; s < VA_GUESTS_NSOURCES; s++)
		want_free(px->want[s], px->nwant[s]);
	free(px->libvirt_uri);
	va_forward_free(px->fwd);
	va_events_free(px->events);
	if (px->proxy_reg)
		xmlrpc_registry_free(px->proxy_reg);
	if (px->host_reg)
		xmlrpc_registry_free(px->host_reg);
	va_loop_free(px->loop);
	free(px);
}

void
va_proxy_unlink_sockets(struct va_proxy *px)
{
	if (px)
		va_httpd_unlink_sockets(px->httpd);
}
