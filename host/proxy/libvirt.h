/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt.h - va-proxy --libvirt URI: every running libvirt domain with a
 * virtagent channel (libvirt-xml.h) is a guest of the proxy, named after
 * the domain, with the channel spec unix:PATH of the socket libvirt gave
 * it; domains that start get one, domains that stop (destroyed, shut
 * down, migrated away) lose theirs, as libvirt's lifecycle events say,
 * with no polling and no restart of the proxy.
 *
 * The watcher is a thread of its own that runs libvirt's default event
 * loop (virEventRunDefaultImpl: it sleeps in poll() until libvirtd sends
 * an event, or its keepalive ping, every 5 s by default: libvirtd.conf's
 * keepalive_interval; a libvirtd that stops answering them is given up
 * and connected to again) and makes libvirt's calls
 * (virConnectListAllDomains, virDomainGetXMLDesc).  Those calls wait for libvirtd's answers: on the
 * proxy's loop thread, which serves every guest and every client, a slow
 * or restarting libvirtd would stall them all; here it stalls only the
 * discovery of domains.  What it finds goes to the loop thread as the
 * whole list of the guests libvirt wants (va_proxy_post, then
 * va_proxy_set_guests with VA_GUESTS_LIBVIRT): a domain whose socket did
 * not change keeps its guest and session.
 *
 * The connection is read-only (virConnectOpenReadOnly): the proxy lists
 * and watches domains and changes nothing.  When libvirtd goes away the
 * guests stay as they are (QEMU keeps running); the watcher connects
 * again (after 0.5 s, doubling up to 30 s) and lists everything anew.
 *
 * libvirt's default event loop is one per process: one watcher runs at a
 * time (va_libvirt_start fails with "busy" while another runs).
 */
#ifndef VA_PROXY_LIBVIRT_H
#define VA_PROXY_LIBVIRT_H

#include <stddef.h>

struct va_libvirt;
struct va_proxy;

/*
 * Starts watching the domains of libvirt at uri (such as qemu:///system)
 * for px, whose loop thread runs.  A libvirtd that does not answer yet is
 * not an error (the watcher keeps trying, and logs it).  Returns NULL with
 * the reason in err when the thread cannot be started.
 */
struct va_libvirt *va_libvirt_start(struct va_proxy *px, const char *uri, char *err,
				    size_t errlen);
/*
 * Stops the watcher and waits up to timeout_ms for its thread (any thread
 * but the loop thread, before the loop stops), and frees it: 0.  Lists it
 * posted may still be waiting on the loop: va_proxy_set_guests ignores
 * them once the loop is stopping.  -1 when the thread is still in a call
 * to a libvirtd that does not answer: then it is left as it is, and may
 * still post to the loop, which must not be freed (the process exits).
 * NULL is fine (0).
 */
int va_libvirt_stop(struct va_libvirt *lv, unsigned timeout_ms);

#endif
