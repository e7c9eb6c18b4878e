/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clipboard-paste.h - the desktop paste bridge of the group "clipboard"
 * (clipboard.c, the only user): va.clipboard.get with
 * config->clip_paste_command set, answered later.
 *
 * The group's interceptor hands such a call here; the command is started
 * ("/bin/sh -c CMD", proc.h: its own session and process group, stdin at
 * its end, the agent's environment, cwd "/") and its stdout is read on
 * the loop.  The call is answered when the run ends:
 *   - the command exited 0 after printing at most VA_CLIPBOARD_MAX bytes
 *     of text XML can carry, which differs from the buffer: the text is
 *     stored as a guest copy (va_clipboard_store: the host is told), then
 *     every caller waiting for the run gets va_clipboard_result();
 *   - anything else (not started, a failing exit status, more than
 *     VA_CLIPBOARD_MAX bytes, text XML cannot carry, no end within
 *     VA_CLIPBOARD_PASTE_MS): logged, the command's process group killed,
 *     and the callers get the buffer as it was, as the synchronous
 *     version answered.
 * One run at a time: a va.clipboard.get that comes while one runs waits
 * for that run's answer (at most VA_CLIPBOARD_PASTE_WAITERS calls wait;
 * more get a "busy" fault, XMLRPC_LIMIT_EXCEEDED_ERROR).  Callers of a
 * session that was reset since their call are dropped unanswered; a run
 * that nobody of the current session waits for is killed when the next
 * call comes (and ends at its deadline otherwise), its text dropped.
 *
 * Everything runs on the agent's loop; nothing here waits.
 */
#ifndef VA_AGENT_CLIPBOARD_PASTE_H
#define VA_AGENT_CLIPBOARD_PASTE_H

#include <xmlrpc-c/base.h>

#include "agent.h"

struct va_clip_paste;

/* The bridge of agent a (not running anything); NULL when out of memory. */
struct va_clip_paste *va_clip_paste_new(struct va_agent *a);
/*
 * Takes call, a va.clipboard.get with no parameters, and answers it when
 * a run of cmd (started now unless one runs already) ends, or at once
 * with a fault (busy, out of memory).  call is only read during this
 * function (see struct va_call).
 */
void va_clip_paste_take(struct va_clip_paste *p, const struct va_call *call, const char *cmd);
/*
 * Kills a running command (its process group) and reaps it, drops the
 * calls that wait for it unanswered (logged: the session is gone or
 * going), and frees p.  NULL is fine.
 */
void va_clip_paste_free(struct va_clip_paste *p);

/*
 * Defined in clipboard.c: what va.clipboard.get answers, the struct
 * {text, serial, origin} of the buffer now (logged at info level).
 * NULL with a fault in env.
 */
xmlrpc_value *va_clipboard_result(xmlrpc_env *env, struct va_agent *a);

#endif
