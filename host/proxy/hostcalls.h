/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hostcalls.h - the methods the guests call on the host (host.*):
 *
 *   host.ping()                      -> true
 *   host.hello(struct)               -> true   version, protocol, methods, max_frame
 *   host.clipboard.set(text)         -> int    the proxy's clipboard serial
 *   host.shutdown_notice(mode, reason) -> true
 *   host.event(name, struct)         -> true
 *
 * The documented parameters are checked strictly (type faults); extra
 * trailing parameters are accepted and ignored, so older and newer agents
 * work (an agent sends host.clipboard.set(text, serial) and
 * host.shutdown_notice(mode, delay_s): an int in place of the reason is
 * taken as a delay).  Each call posts an event (events.h): "hello",
 * "clipboard", "shutdown", "event".
 *
 * The methods run on the loop thread, with a struct va_host_call as
 * callInfo (guest.h): the guest (and through it, its proxy), never state
 * of their own.
 */
#ifndef VA_PROXY_HOSTCALLS_H
#define VA_PROXY_HOSTCALLS_H

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

/* Clipboard events carry the text itself up to this size (bytes). */
#define VA_EVENT_CLIP_TEXT_MAX 4096
/* Largest host.event call (XML bytes). */
#define VA_HOST_EVENT_MAX (64u * 1024)
/* Caps on what a guest may make the proxy keep (host.hello, host.shutdown_notice). */
#define VA_HOST_MODE_MAX 32u
#define VA_HOST_REASON_MAX 1024u
#define VA_HOST_VERSION_MAX 64u
#define VA_HOST_METHODS_MAX 512
#define VA_HOST_METHOD_NAME_MAX 128u
/* Largest host.* request body the proxy parses (a 1 MiB clipboard text,
 * XML-escaped, fits). */
#define VA_HOST_BODY_MAX (8u * 1024 * 1024)

/* A new registry of the host.* methods; NULL with env set on failure. */
xmlrpc_registry *va_hostcalls_registry(xmlrpc_env *env);

#endif
