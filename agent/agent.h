/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent.h - what the guest agent's method groups need from the daemon,
 * and how they register.
 *
 * The daemon (main.c) owns the event loop, the session with the host and
 * the xmlrpc-c registry.  Each method group (file.c, info.c, clipboard.c,
 * dmesg.c, shutdown.c) registers its va.* methods with real help text
 * and signatures, and keeps its own state behind static functions.
 * Handlers run on the loop thread; they must not block for long (file
 * I/O on regular disk files is fine in chunks, a whole-file checksum is
 * hashed in slices between other calls, running commands is done with
 * fork/exec without waiting, see va_methods_spawn in methods.h).
 */
#ifndef VA_AGENT_H
#define VA_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "agent-limits.h"

#define VA_AGENT_PROTOCOL 1

struct va_agent_config {
	char *channel;          /* channel spec */
	char *control;          /* control socket spec (unix:PATH), "" = none */
	char *config_file;
	int daemonize;
	char *pidfile;
	int log_level;
	char *allow_rpcs;       /* comma list or NULL */
	char *block_rpcs;       /* comma list or NULL */
	char **file_roots;      /* NULL-terminated real paths, or NULL = all allowed */
	size_t nfile_roots;
	char *shutdown_command; /* run with /bin/sh -c; MODE and DELAY in the environment */
	size_t max_frame;
	char *clip_copy_command;  /* desktop bridge: command fed the text on stdin */
	char *clip_paste_command; /* desktop bridge: command printing the text */
};

struct va_agent;

const struct va_agent_config *va_agent_config(struct va_agent *a);
/* Is the method enabled by --allow-rpcs / --block-rpcs? */
int va_agent_method_enabled(struct va_agent *a, const char *name);
/*
 * Calls a host.* method, without waiting; a failure is logged.  params is
 * an array (the reference is not taken: the caller keeps its own).
 */
void va_agent_call_host(struct va_agent *a, const char *method, xmlrpc_value *params);
/*
 * Runs fn(arg) from the loop after delay_ms (after the current reply is
 * sent).  What fn defers, even with delay 0, runs at a later turn of the
 * loop, after it has polled for I/O: a long job can go on in slices.
 */
int va_agent_defer(struct va_agent *a, unsigned delay_ms, void (*fn)(void *arg), void *arg);
/* Monotonic ms. */
uint64_t va_agent_now_ms(void);

/* Method groups: each adds its methods; env set on failure. */
void va_methods_info_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a);
void va_methods_file_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a);
void va_methods_clipboard_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a);
void va_methods_dmesg_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a);
void va_methods_shutdown_register(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a);

/* File handles: close the ones idle for VA_FILE_IDLE_SECONDS; next check time (ms) or UINT64_MAX. */
uint64_t va_file_sweep(uint64_t now_ms);
struct va_buf;
/*
 * The fast path of va.file.read and va.file.write (file.c): when body is
 * one of those calls in the usual shape, runs it and appends the whole
 * XML-RPC response (or fault) to out and returns 1; otherwise returns 0
 * having done nothing, and the caller runs the registry.
 */
int va_file_fast_call(struct va_agent *a, const uint8_t *body, size_t len, struct va_buf *out);
struct va_session;
/*
 * va.file.checksum without stalling the loop (file.c): when body is that
 * call, enabled and well formed, checks it and opens the file now, hashes
 * it a slice per turn of the loop (va_agent_defer), and answers with
 * va_session_reply(s, epoch, tag, ...) when done, or at once with a
 * fault; returns 1.  Otherwise returns 0 having done nothing, and the
 * caller runs the registry.  tag is copied.
 */
int va_file_checksum_call(struct va_agent *a, struct va_session *s, uint64_t epoch,
			  const char *tag, const uint8_t *body, size_t len);
/* Closes every handle and drops the checksums still running (unanswered). */
void va_file_close_all(void);

/* The clipboard buffer shared by va.clipboard.*, the control socket and the bridges. */
struct va_clip_view {
	const char *text;
	size_t len;
	uint64_t serial;
	const char *origin; /* "host" or "guest" */
};
/* origin "host" (from va.clipboard.set) or "guest" (va-clip copy). Returns the new serial, 0 on failure. */
uint64_t va_clipboard_store(struct va_agent *a, const char *text, size_t len, const char *origin);
void va_clipboard_view(struct va_clip_view *v);
/* The last text the host set (for va-clip paste). */
void va_clipboard_view_host(struct va_clip_view *v);
void va_clipboard_free(void);

#endif
