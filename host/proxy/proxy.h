/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy.h - va-proxy's context: one struct va_proxy owns everything the
 * daemon keeps, and every callback reaches it through its opaque pointer
 * (the proxy itself, or a guest, g->px, or a request that leads to one).
 * No file of host/proxy/ keeps state of its own at file scope, so that a
 * test can build two proxies in one process.
 *
 * The parts, and the threads that touch them:
 *
 *   loop       common/loop.h; run by the loop thread (va_proxy_start),
 *              which drives every guest's channel, session and link
 *              (guest-link.c), the HTTP server (httpd.c, http.c) and
 *              forwarded calls (forward.c), and serves the guests' host.*
 *              calls (hostcalls.c).  Other threads only post work to it
 *              (va_proxy_post) or stop it.
 *   guests     the guest table (guest.h): changed on the loop thread
 *              only, read there freely and elsewhere under its lock;
 *              each guest is reference-counted, so one that goes while a
 *              request or a proxy.* call holds it stays valid for them.
 *   httpd      the HTTP server: the loop thread's.
 *   fwd        the block list and the worker threads of proxy.* calls
 *              (forward.h), each under a lock of its own.
 *   events     the queue behind proxy.events (events.h): any thread.
 *   want       the guests each source wants (the config, libvirt), from
 *              which the guest table is made (va_proxy_set_guests): the
 *              loop thread's.
 *   libvirt    the libvirt watcher (libvirt.h), a thread of its own that
 *              posts what it finds to the loop; NULL without --libvirt.
 *   host_reg,  the registries of host.* (run on the loop thread) and
 *   proxy_reg  proxy.* methods (run on the worker threads); fixed.
 *
 * Before va_proxy_start and after va_proxy_stop, the thread that calls
 * them is the loop's thread (it runs the loop itself at the stop).
 */
#ifndef VA_PROXY_PROXY_H
#define VA_PROXY_PROXY_H

#include <pthread.h>
#include <stddef.h>

#include <xmlrpc-c/server.h>

#include "httpd.h"
#include "loop.h"
#include "options.h"

struct va_events;
struct va_forward;
struct va_hostwork;
struct va_guests;
struct va_libvirt;

/* Where guests come from; when two name the same guest, the first wins. */
enum va_guest_source {
	VA_GUESTS_CONFIG,  /* --guest, the config file, guests-dir */
	VA_GUESTS_LIBVIRT, /* --libvirt: the running domains */
	VA_GUESTS_NSOURCES
};

struct va_proxy {
	/* Set by va_proxy_new, fixed after it; any thread reads them. */
	unsigned call_timeout_ms;
	size_t max_frame;
	xmlrpc_registry *host_reg;
	xmlrpc_registry *proxy_reg;
	va_loop *loop;

	/* Each with its own rules (see above). */
	struct va_events *events;
	struct va_forward *fwd;
	struct va_hostwork *hostwork; /* large host.* calls, off the loop (hostwork.h) */
	struct va_guests *guests;
	va_httpd *httpd;
	struct va_libvirt *libvirt;
	char *libvirt_uri;

	/* Loop thread: the guests each source wants (copies). */
	struct va_proxy_guest_opt *want[VA_GUESTS_NSOURCES];
	size_t nwant[VA_GUESTS_NSOURCES];

	/* The thread that calls va_proxy_start and va_proxy_stop. */
	pthread_t loop_thread;
	int loop_running;
};

/*
 * A proxy for cfg (kept, as is secret, the password of the TCP listeners
 * or NULL: both must outlive the proxy): its loop, queue, registries and
 * HTTP server, cfg's guests with their channels open, and cfg's
 * listeners.  Returns NULL with the reason in err (everything opened is
 * closed again, the socket files removed).  With cfg->libvirt_uri, the
 * libvirt watcher starts with the loop thread (va_proxy_start).
 */
struct va_proxy *va_proxy_new(const struct va_proxy_config *cfg, const char *secret, char *err,
			      size_t errlen);
/* Starts the loop thread (and the libvirt watcher).  Returns 0, or -errno
 * with the reason in err (libvirt not loadable, its event loop refused). */
int va_proxy_start(struct va_proxy *px, char *err, size_t errlen);
/*
 * Runs fn(arg) on the loop thread, soon (any thread); after the loop
 * thread ended, in va_proxy_stop.  Out of memory is fatal.
 */
void va_proxy_post(struct va_proxy *px, va_loop_work_fn *fn, void *arg);
/* What va_proxy_set_guests did. */
struct va_guests_change {
	unsigned added, removed, changed, kept, failed;
};

/*
 * Sets the guests source src wants to the n of list (copied) and makes
 * the guest table match what all sources want: a guest named with the
 * same channel spec as before is left alone (its channel, session and
 * calls in flight are untouched); one that no source names any more is
 * removed (guest.h: its calls in flight fail with
 * VA_PROXY_FAULT_NOT_CONNECTED, "guest NAME was removed"); one whose spec
 * changed is removed and added again (a new session); a new one is
 * added.  A guest that cannot be added (its unix-listen socket cannot be
 * made, ...) is logged and counted in failed, and is tried again at the
 * next call.  A name that an earlier source has (the config's over
 * libvirt's) is taken from that one.  Counts in *st (NULL is fine).
 * Does nothing once the loop is stopping.  Loop thread (before the loop
 * runs: the thread that will start it).  Returns 0, or -ENOMEM (the
 * source's list is kept as it was, or the table is changed part of the
 * way: the next call mends it).
 */
int va_proxy_set_guests(struct va_proxy *px, enum va_guest_source src,
			const struct va_proxy_guest_opt *list, size_t n, struct va_guests_change *st);
/*
 * The same from another thread while the loop thread runs (the main
 * thread at SIGHUP): runs it there and waits for it.
 */
int va_proxy_set_guests_wait(struct va_proxy *px, enum va_guest_source src,
			     const struct va_proxy_guest_opt *list, size_t n,
			     struct va_guests_change *st);

/*
 * The orderly stop: stops the libvirt watcher (waiting up to timeout_ms
 * for a call to libvirtd it is in), wakes the long polls, stops the loop thread (every
 * guest goes: calls in flight fail with VA_PROXY_FAULT_SHUTTING_DOWN and
 * are answered), waits up to timeout_ms for the proxy.* calls still
 * running, answers what is left, and lets the answers being written go
 * (VA_HTTP_FINISH_MS at most) before it closes the HTTP side.  Returns 0;
 * -1 when proxy.* calls or the libvirt watcher were still running (the
 * socket files are removed, the rest is left as it is: exit without
 * va_proxy_free).
 */
int va_proxy_stop(struct va_proxy *px, unsigned timeout_ms);
/* After va_proxy_stop returned 0 (or va_proxy_start was never called).  NULL is fine. */
void va_proxy_free(struct va_proxy *px);
/* Removes the unix socket files of the listeners (at exit; also after a fatal error). */
void va_proxy_unlink_sockets(struct va_proxy *px);

#endif
