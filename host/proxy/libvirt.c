/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt.c - the libvirt watcher of va-proxy (see libvirt.h): its thread,
 * the connection, the domain events, and the list of the domains that
 * have a virtagent channel, handed to the loop thread whenever it
 * changes.
 *
 * Everything below runs on the watcher's thread; libvirt calls the event
 * callbacks from virEventRunDefaultImpl on it too.  The callbacks only
 * note what happened (a domain to look at again, a connection that
 * closed); the thread's loop does the calls to libvirtd after each
 * iteration, outside libvirt's dispatch of events.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "contract.h"
#include "libvirt-xml.h"
#include "libvirt.h"
#include "log.h"
#include "options.h"
#include "proxy.h"

/*
 * libvirt is loaded when --libvirt asks for it (dlopen), not linked: its
 * library brings some 60 others (GnuTLS, GLib, ICU...), which cost every
 * proxy 12 MiB of VmRSS and 2 MiB of private memory at start, with or
 * without libvirt (bench/run: the proxy's idle private memory 2.3 MiB
 * linked, 0.4 loaded on demand).  Every call below goes through lv_api,
 * filled by lv_load; the declarations are libvirt's own headers'.
 */
#define LV_SONAME "libvirt.so.0"
#define LV_FUNCS(X) \
	X(virConnectClose) \
	X(virConnectDomainEventDeregisterAny) \
	X(virConnectDomainEventRegisterAny) \
	X(virConnectListAllDomains) \
	X(virConnectOpenReadOnly) \
	X(virConnectRegisterCloseCallback) \
	X(virConnectUnregisterCloseCallback) \
	X(virDomainFree) \
	X(virDomainGetName) \
	X(virDomainGetXMLDesc) \
	X(virDomainIsActive) \
	X(virDomainRef) \
	X(virEventAddHandle) \
	X(virEventAddTimeout) \
	X(virEventRegisterDefaultImpl) \
	X(virEventRemoveHandle) \
	X(virEventRemoveTimeout) \
	X(virEventRunDefaultImpl) \
	X(virEventUpdateTimeout) \
	X(virGetLastErrorMessage) \
	X(virInitialize) \
	X(virSetErrorFunc)

static struct {
#define LV_MEMBER(n) __typeof__(n) *n;
	LV_FUNCS(LV_MEMBER)
#undef LV_MEMBER
} lv_api;
static char lv_load_err[256]; /* why lv_load failed */

/* 0 when libvirt is loaded and every function found (pthread_once). */
static int
lv_load(void)
{
	void *h = dlopen(LV_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(lv_load_err, sizeof(lv_load_err),
			 "cannot load libvirt's client library (%s; install the package libvirt0): %s",
			 LV_SONAME, dlerror());
		return -1;
	}
	/* Never closed: libvirt keeps threads and handlers of its own. */
#define LV_SYM(n) \
	if (!(*(void **)&lv_api.n = dlsym(h, #n))) { \
		snprintf(lv_load_err, sizeof(lv_load_err), "%s has no %s: %s", LV_SONAME, #n, dlerror()); \
		return -1; \
	}
	LV_FUNCS(LV_SYM)
#undef LV_SYM
	return 0;
}

#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 30000

/* A running domain with a usable channel: a guest libvirt wants. */
struct domain {
	char *name;
	char *spec; /* "unix:PATH" */
	int seen;   /* by the current list_all */
};

struct va_libvirt {
	struct va_proxy *px;
	char *uri;
	pthread_t thread;
	int wake[2];          /* va_libvirt_stop writes a byte: the thread looks at stop */
	atomic_int stop;

	virConnectPtr conn;
	int cb_ids[3];        /* lifecycle, device added, device removed; -1: none */
	int closed;           /* the close callback ran: drop the connection */
	int retry_timer;      /* libvirt timeout: the next connect; -1: none */
	unsigned retry_ms;    /* 0: connect now */
	int failing;          /* the last connect failed (logged once) */
	int full;             /* list every domain anew */
	virDomainPtr *todo;   /* domains to look at again (each with a reference) */
	size_t ntodo, captodo;

	struct domain *doms;  /* what the loop thread was (or will be) given */
	size_t ndoms;
	int dirty;            /* doms changed since it was posted */
};

/* One watcher per process: libvirt's default event loop is global. */
static atomic_int running;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int impl_ok;

/* libvirt's errors are read where they happen (virGetLastErrorMessage),
 * not printed on stderr by its default handler. */
static void
quiet(void *opaque, virErrorPtr e)
{
	(void)opaque, (void)e;
}

static void
init_libvirt(void)
{
	if (lv_load() < 0)
		return;
	lv_api.virSetErrorFunc(NULL, quiet);
	impl_ok = lv_api.virInitialize() == 0 && lv_api.virEventRegisterDefaultImpl() == 0;
	if (!impl_ok)
		snprintf(lv_load_err, sizeof(lv_load_err), "cannot set up libvirt's event loop: %s",
			 lv_api.virGetLastErrorMessage());
}

/* ---- the list of domains ---- */

static void
doms_clear(struct va_libvirt *lv)
{
	for (size_t i = 0; i < lv->ndoms; i++) {
		free(lv->doms[i].name);
		free(lv->doms[i].spec);
	}
	free(lv->doms);
	lv->doms = NULL;
	lv->ndoms = 0;
}

static struct domain *
doms_find(struct va_libvirt *lv, const char *name)
{
	for (size_t i = 0; i < lv->ndoms; i++)
		if (!strcmp(lv->doms[i].name, name))
			return &lv->doms[i];
	return NULL;
}

static void
doms_drop(struct va_libvirt *lv, const char *name, const char *why)
{
	struct domain *d = doms_find(lv, name);

	if (!d)
		return;
	va_log_info("libvirt: domain %s %s: guest %s goes", name, why, name);
	free(d->name);
	free(d->spec);
	*d = lv->doms[--lv->ndoms];
	lv->dirty = 1;
}

static void
doms_set(struct va_libvirt *lv, const char *name, const char *spec)
{
	struct domain *d = doms_find(lv, name);
	char *copy = strdup(spec);

	if (!copy) {
		va_log_errx("libvirt: domain %s: out of memory", name);
		return;
	}
	if (d) {
		d->seen = 1;
		if (!strcmp(d->spec, spec)) {
			free(copy);
			return;
		}
		free(d->spec);
		d->spec = copy;
	} else {
		struct domain *v = realloc(lv->doms, (lv->ndoms + 1) * sizeof(*v));
		char *ncopy = strdup(name);
		if (!v || !ncopy) {
			if (v)
				lv->doms = v;
			free(ncopy);
			free(copy);
			va_log_errx("libvirt: domain %s: out of memory", name);
			return;
		}
		lv->doms = v;
		lv->doms[lv->ndoms].name = ncopy;
		lv->doms[lv->ndoms].spec = copy;
		lv->doms[lv->ndoms].seen = 1;
		lv->ndoms++;
	}
	va_log_info("libvirt: domain %s runs with its agent's channel at %s", name, spec + 5);
	lv->dirty = 1;
}

/* ---- to the loop thread ---- */

struct post {
	struct va_proxy *px;
	struct va_proxy_guest_opt *list;
	size_t n;
};

static void
post_free(struct post *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->list[i].name);
		free(p->list[i].spec);
	}
	free(p->list);
	free(p);
}

static void
apply(void *arg)
{
	struct post *p = arg;

	if (va_proxy_set_guests(p->px, VA_GUESTS_LIBVIRT, p->list, p->n, NULL) < 0)
		va_log_errx("libvirt: guests not changed: out of memory");
	post_free(p);
}

/* Hands a copy of the list to the loop thread when it changed. */
static void
publish(struct va_libvirt *lv)
{
	struct post *p;

	if (!lv->dirty)
		return;
	if (!(p = calloc(1, sizeof(*p))))
		goto nomem;
	p->px = lv->px;
	if (!(p->list = calloc(lv->ndoms ? lv->ndoms : 1, sizeof(*p->list))))
		goto nomem;
	for (size_t i = 0; i < lv->ndoms; i++) {
		p->list[i].name = strdup(lv->doms[i].name);
		p->list[i].spec = strdup(lv->doms[i].spec);
		p->n = i + 1;
		if (!p->list[i].name || !p->list[i].spec)
			goto nomem;
	}
	lv->dirty = 0;
	va_proxy_post(lv->px, apply, p);
	return;
nomem:
	va_log_errx("libvirt: out of memory: the guests stay as they are until the next change");
	if (p)
		post_free(p);
}

/* ---- looking at a domain ---- */

/* Reads dom's XML and sets or drops its entry (the watcher's thread). */
static void
look_at(struct va_libvirt *lv, virDomainPtr dom)
{
	const char *name = lv_api.virDomainGetName(dom);
	char path[VA_LIBVIRT_PATH_MAX], why[256], spec[VA_LIBVIRT_PATH_MAX + 8];

	if (!name)
		return;
	int active = lv_api.virDomainIsActive(dom);
	if (active < 0) {
		/* Gone meanwhile (a transient domain that stopped): its event follows or came. */
		va_log_debug("libvirt: domain %s: %s", name, lv_api.virGetLastErrorMessage());
		return;
	}
	if (!active) {
		doms_drop(lv, name, "is not running");
		return;
	}
	char *xml = lv_api.virDomainGetXMLDesc(dom, 0);
	if (!xml) {
		va_log_warnx("libvirt: domain %s: no XML: %s", name, lv_api.virGetLastErrorMessage());
		return;
	}
	enum va_libvirt_xml_result r = va_libvirt_xml_channel(xml, strlen(xml), path, why,
							      sizeof(why));
	free(xml);
	if (r != VA_LIBVIRT_XML_FOUND) {
		if (r == VA_LIBVIRT_XML_NO_CHANNEL)
			va_log_debug("libvirt: domain %s: %s", name, why);
		else
			va_log_warnx("libvirt: domain %s: %s", name, why);
		doms_drop(lv, name, "has no virtagent channel now");
		return;
	}
	if (!va_proxy_guest_name_ok(name)) {
		va_log_warnx("libvirt: domain %s has a virtagent channel, but its name is no "
			     "guest name (1 to %d letters, digits, '_', '.' or '-'): left out",
			     name, VA_PROXY_MAX_GUEST_NAME);
		return;
	}
	snprintf(spec, sizeof(spec), "unix:%s", path);
	doms_set(lv, name, spec);
}

/* Every running domain anew: after a (re)connect, or a rename. */
static void
list_all(struct va_libvirt *lv)
{
	virDomainPtr *v = NULL;
	int n = lv_api.virConnectListAllDomains(lv->conn, &v, VIR_CONNECT_LIST_DOMAINS_ACTIVE);

	if (n < 0) {
		va_log_warnx("libvirt: cannot list the domains: %s", lv_api.virGetLastErrorMessage());
		return;
	}
	for (size_t i = 0; i < lv->ndoms; i++)
		lv->doms[i].seen = 0;
	for (int i = 0; i < n; i++) {
		look_at(lv, v[i]);
		lv_api.virDomainFree(v[i]);
	}
	free(v);
	/* Those not running now (they stopped while the connection was down). */
	for (size_t i = lv->ndoms; i-- > 0;)
		if (!lv->doms[i].seen) {
			char *name = strdup(lv->doms[i].name);
			if (name)
				doms_drop(lv, name, "is not running");
			free(name);
		}
}

/* ---- libvirt's callbacks (they only note what to do) ---- */

static void
todo_add(struct va_libvirt *lv, virDomainPtr dom)
{
	for (size_t i = 0; i < lv->ntodo; i++)
		if (lv->todo[i] == dom)
			return;
	if (lv->ntodo == lv->captodo) {
		size_t cap = lv->captodo ? 2 * lv->captodo : 8;
		virDomainPtr *v = realloc(lv->todo, cap * sizeof(*v));
		if (!v) {
			lv->full = 1; /* look at them all instead */
			return;
		}
		lv->todo = v;
		lv->captodo = cap;
	}
	if (lv_api.virDomainRef(dom) == 0)
		lv->todo[lv->ntodo++] = dom;
}

static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct va_libvirt *lv = opaque;
	const char *name = lv_api.virDomainGetName(dom);

	(void)conn;
	va_log_debug("libvirt: domain %s: event %d, detail %d", name ? name : "?", event, detail);
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:       /* booted, restored, migrated in */
		todo_add(lv, dom);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:       /* shut down, destroyed, crashed, migrated away */
		if (name)
			doms_drop(lv, name, "stopped");
		break;
	case VIR_DOMAIN_EVENT_DEFINED:
		/* A domain renamed (only when it is not running) has a new name. */
		if (detail == VIR_DOMAIN_EVENT_DEFINED_RENAMED)
			lv->full = 1;
		break;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		if (detail == VIR_DOMAIN_EVENT_UNDEFINED_RENAMED && name)
			doms_drop(lv, name, "was renamed");
		break;
	default:
		break;
	}
	return 0;
}

/* A channel plugged in or out (virsh attach-device --live): look again. */
static void
on_device(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	(void)conn, (void)alias;
	todo_add(opaque, dom);
}

static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct va_libvirt *lv = opaque;

	(void)conn;
	va_log_warnx("libvirt: the connection to %s closed (reason %d); the guests stay as "
		     "they are until it is back", lv->uri, reason);
	lv->closed = 1;
}

static void
on_wake(int watch, int fd, int events, void *opaque)
{
	char buf[16];

	(void)watch, (void)events, (void)opaque;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void
on_retry(int timer, void *opaque)
{
	struct va_libvirt *lv = opaque;

	lv_api.virEventUpdateTimeout(timer, -1);
	lv->retry_ms = 0;
}

/* ---- the connection ---- */

static void
disconnect(struct va_libvirt *lv)
{
	if (!lv->conn)
		return;
	for (int i = 0; i < 3; i++) {
		if (lv->cb_ids[i] >= 0)
			lv_api.virConnectDomainEventDeregisterAny(lv->conn, lv->cb_ids[i]);
		lv->cb_ids[i] = -1;
	}
	lv_api.virConnectUnregisterCloseCallback(lv->conn, on_close);
	lv_api.virConnectClose(lv->conn);
	lv->conn = NULL;
	for (size_t i = 0; i < lv->ntodo; i++)
		lv_api.virDomainFree(lv->todo[i]);
	lv->ntodo = 0;
}

static void
retry_later(struct va_libvirt *lv, unsigned ms)
{
	lv->retry_ms = ms;
	lv_api.virEventUpdateTimeout(lv->retry_timer, (int)ms);
}

static void
connect_now(struct va_libvirt *lv)
{
	lv->conn = lv_api.virConnectOpenReadOnly(lv->uri);
	if (!lv->conn) {
		unsigned next = lv->failing ? 2 * lv->failing : RETRY_FIRST_MS;
		if (next > RETRY_MAX_MS)
			next = RETRY_MAX_MS;
		if (!lv->failing)
			va_log_warnx("libvirt: cannot connect to %s: %s (trying again, every %u s "
				     "at most)", lv->uri, lv_api.virGetLastErrorMessage(), RETRY_MAX_MS / 1000);
		else
			va_log_debug("libvirt: cannot connect to %s: %s", lv->uri,
				     lv_api.virGetLastErrorMessage());
		lv->failing = (int)next;
		retry_later(lv, next);
		return;
	}
	lv->cb_ids[0] = lv_api.virConnectDomainEventRegisterAny(lv->conn, NULL,
		VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), lv, NULL);
	lv->cb_ids[1] = lv_api.virConnectDomainEventRegisterAny(lv->conn, NULL,
		VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(on_device), lv, NULL);
	lv->cb_ids[2] = lv_api.virConnectDomainEventRegisterAny(lv->conn, NULL,
		VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(on_device), lv, NULL);
	if (lv->cb_ids[0] < 0 ||
	    lv_api.virConnectRegisterCloseCallback(lv->conn, on_close, lv, NULL) < 0) {
		va_log_errx("libvirt: %s: cannot follow the domains' events: %s", lv->uri,
			    lv_api.virGetLastErrorMessage());
		disconnect(lv);
		lv->failing = RETRY_MAX_MS;
		retry_later(lv, RETRY_MAX_MS);
		return;
	}
	va_log_info("libvirt: connected to %s (read-only); following its domains", lv->uri);
	lv->failing = 0;
	lv->full = 1;
}

static void *
thread_main(void *arg)
{
	struct va_libvirt *lv = arg;
	pthread_setname_np(pthread_self(), "va-libvirt");
	int watch = lv_api.virEventAddHandle(lv->wake[0], VIR_EVENT_HANDLE_READABLE, on_wake, lv, NULL);

	lv->retry_timer = lv_api.virEventAddTimeout(-1, on_retry, lv, NULL);
	if (watch < 0 || lv->retry_timer < 0) {
		va_log_errx("libvirt: cannot set up libvirt's event loop: %s",
			    lv_api.virGetLastErrorMessage());
		return NULL;
	}
	while (!atomic_load(&lv->stop)) {
		if (lv->closed) {
			lv->closed = 0;
			disconnect(lv);
			retry_later(lv, RETRY_FIRST_MS);
		}
		if (!lv->conn && lv->retry_ms == 0)
			connect_now(lv);
		if (lv->conn && lv->full) {
			lv->full = 0;
			for (size_t i = 0; i < lv->ntodo; i++)
				lv_api.virDomainFree(lv->todo[i]);
			lv->ntodo = 0;
			list_all(lv);
		}
		for (size_t i = 0; lv->conn && i < lv->ntodo; i++)
			look_at(lv, lv->todo[i]);
		for (size_t i = 0; i < lv->ntodo; i++)
			lv_api.virDomainFree(lv->todo[i]);
		lv->ntodo = 0;
		publish(lv);
		if (lv_api.virEventRunDefaultImpl() < 0) {
			va_log_errx("libvirt: its event loop failed: %s; domains are no longer "
				    "followed", lv_api.virGetLastErrorMessage());
			break;
		}
	}
	disconnect(lv);
	lv_api.virEventRemoveTimeout(lv->retry_timer);
	lv_api.virEventRemoveHandle(watch);
	return NULL;
}

/* ---- start and stop ---- */

struct va_libvirt *
va_libvirt_start(struct va_proxy *px, const char *uri, char *err, size_t errlen)
{
	struct va_libvirt *lv;
	int expect = 0;

	pthread_once(&once, init_libvirt);
	if (!impl_ok) {
		snprintf(err, errlen, "%s", lv_load_err);
		return NULL;
	}
	if (!atomic_compare_exchange_strong(&running, &expect, 1)) {
		snprintf(err, errlen, "busy: another libvirt watcher runs in this process");
		return NULL;
	}
	lv = calloc(1, sizeof(*lv));
	if (!lv || !(lv->uri = strdup(uri))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	lv->px = px;
	lv->wake[0] = lv->wake[1] = -1;
	lv->cb_ids[0] = lv->cb_ids[1] = lv->cb_ids[2] = -1;
	lv->retry_timer = -1;
	atomic_init(&lv->stop, 0);
	if (pipe2(lv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	int r = pthread_create(&lv->thread, NULL, thread_main, lv);
	if (r) {
		snprintf(err, errlen, "cannot start its thread: %s", strerror(r));
		goto fail;
	}
	return lv;
fail:
	if (lv) {
		if (lv->wake[0] >= 0) {
			close(lv->wake[0]);
			close(lv->wake[1]);
		}
		free(lv->uri);
		free(lv);
	}
	atomic_store(&running, 0);
	return NULL;
}

int
va_libvirt_stop(struct va_libvirt *lv, unsigned timeout_ms)
{
	struct timespec until;

	if (!lv)
		return 0;
	atomic_store(&lv->stop, 1);
	while (write(lv->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	/* Monotonic: a clock set back while we wait does not stretch it. */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_clockjoin_np(lv->thread, NULL, CLOCK_MONOTONIC, &until) != 0)
		return -1; /* in a call to a libvirtd that does not answer */
	close(lv->wake[0]);
	close(lv->wake[1]);
	doms_clear(lv);
	free(lv->todo);
	free(lv->uri);
	free(lv);
	atomic_store(&running, 0);
	return 0;
}
