/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clipboard-paste.c - va.clipboard.get through the desktop paste
 * command, run on the loop and answered when it ends; see
 * clipboard-paste.h.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "clipboard.h"
#include "clipboard-paste.h"
#include "log.h"
#include "loop.h"
#include "proc.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "text.h"

extern char **environ;

/* The start of the command's stderr kept for the log line of a failure. */
#define STDERR_KEPT 200

/* A va.clipboard.get waiting for the run. */
struct paste_waiter {
	va_session *s;
	uint64_t epoch;
	char *tag;
};

struct va_clip_paste {
	struct va_agent *a;
	struct va_proc *proc;      /* the run, or NULL */
	va_loop_timer *deadline;   /* armed while proc runs */
	uint64_t started;          /* va_now_ms() when proc started */
	struct paste_waiter w[VA_CLIPBOARD_PASTE_WAITERS];
	unsigned nw;
	char err[STDERR_KEPT + 1]; /* the start of proc's stderr */
	size_t errlen;
};

/* ---- the callers -------------------------------------------------------------- */

static int
waiter_stale(const struct paste_waiter *w)
{
	return va_session_epoch(w->s) != w->epoch;
}

/* Forgets the callers of an earlier session (their answer would be dropped anyway). */
static void
drop_stale(struct va_clip_paste *p)
{
	unsigned k = 0, dropped = 0;

	for (unsigned i = 0; i < p->nw; i++) {
		if (waiter_stale(&p->w[i])) {
			free(p->w[i].tag);
			dropped++;
		} else {
			p->w[k++] = p->w[i];
		}
	}
	p->nw = k;
	if (dropped)
		va_log_info("va.clipboard.get: %u calls of an earlier session dropped unanswered",
			    dropped);
}

/* Answers the calls w[0..n) with the buffer as it is now (or with the fault of making that). */
static void
answer(struct va_agent *a, const struct paste_waiter *w, unsigned n)
{
	xmlrpc_env env;
	struct va_buf out = { 0 };

	xmlrpc_env_init(&env);
	xmlrpc_value *res = va_clipboard_result(&env, a);
	if (res) {
		va_rpc_serialize_response(&env, &out, res);
		xmlrpc_DECREF(res);
	}
	if (env.fault_occurred) {
		out.len = 0;
		if (va_rpc_serialize_fault(&out, env.fault_code, env.fault_string) < 0) {
			va_log_warnx("va.clipboard.get: out of memory, %u calls unanswered", n);
			n = 0;
		}
	}
	for (unsigned i = 0; i < n; i++)
		va_rpc_reply(w[i].s, w[i].epoch, w[i].tag, out.data, out.len);
	va_buf_free(&out);
	xmlrpc_env_clean(&env);
}

/* ---- the run ------------------------------------------------------------------ */

/* Stops the run: its process group killed first when kill_group, then reaped (proc.h). */
static void
run_end(struct va_clip_paste *p, int kill_group)
{
	struct va_proc *proc = p->proc;

	p->proc = NULL;
	va_loop_timer_stop(p->deadline);
	if (!proc)
		return;
	if (kill_group)
		va_proc_kill(proc, SIGKILL);
	va_proc_free(proc);
}

/* Takes the desktop's text into the buffer when it changed there (a guest copy). */
static void
store_if_changed(struct va_agent *a, const char *text, size_t len)
{
	struct va_clip_view v;

	va_clipboard_view(a, &v);
	if ((len != v.len || memcmp(text, v.text, len) != 0) &&
	    va_clipboard_store(a, text, len, "guest") == 0)
		va_log_warnx("clipboard paste command: text refused (not valid UTF-8 "
			     "that XML-RPC can carry)");
}

/*
 * The run is over: text (len bytes, in the run's buffer) is what the
 * command printed, or NULL when it failed (logged).  Stores the text,
 * ends the run (a failed one with its process group killed), then
 * answers the callers still waiting.
 */
static void
run_finish(struct va_clip_paste *p, const char *text, size_t len)
{
	struct paste_waiter w[VA_CLIPBOARD_PASTE_WAITERS];
	unsigned n;

	drop_stale(p);
	n = p->nw;
	memcpy(w, p->w, n * sizeof(w[0]));
	p->nw = 0;
	if (text && n > 0)
		store_if_changed(p->a, text, len);
	else if (text)
		va_log_info("clipboard paste command: the session was reset since it started, "
			    "its text is dropped");
	run_end(p, text == NULL);
	answer(p->a, w, n);
	for (unsigned i = 0; i < n; i++)
		free(w[i].tag);
}

/* Moves what the command wrote to stderr out of the way, keeping its start. */
static void
keep_stderr(struct va_clip_paste *p, struct va_proc *proc)
{
	size_t n = va_proc_out_len(proc, VA_PROC_STDERR);
	size_t k = STDERR_KEPT - p->errlen;

	if (n == 0)
		return;
	if (k > n)
		k = n;
	memcpy(p->err + p->errlen, va_proc_out_data(proc, VA_PROC_STDERR), k);
	p->errlen += k;
	va_proc_out_consume(proc, VA_PROC_STDERR, n);
}

static void
log_failure(struct va_clip_paste *p, int status)
{
	/* The first line of stderr, made printable (a desktop tool's complaint). */
	size_t n = va_text_sanitize(p->err, p->errlen);
	p->err[n] = '\0';
	p->err[strcspn(p->err, "\r\n")] = '\0';
	va_log_warnx("clipboard paste command failed (status %d)%s%s", status,
		     p->err[0] ? ": " : "", p->err);
}

/* proc.h's event: output came, a stream ended, or the command exited. */
static void
on_event(void *opaque, struct va_proc *proc)
{
	struct va_clip_paste *p = opaque;
	size_t len = va_proc_out_len(proc, VA_PROC_STDOUT);
	int status = 0;

	keep_stderr(p, proc);
	if (len > VA_CLIPBOARD_MAX) {
		va_log_warnx("clipboard paste command: more than %u bytes", VA_CLIPBOARD_MAX);
		run_finish(p, NULL, 0);
		return;
	}
	if (!va_proc_out_eof(proc, VA_PROC_STDOUT) || !va_proc_exited(proc, &status))
		return;
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		log_failure(p, status);
		run_finish(p, NULL, 0);
		return;
	}
	const char *text = (const char *)va_proc_out_data(proc, VA_PROC_STDOUT);
	va_log_debug("clipboard paste command: %zu bytes in %" PRIu64 " ms", len,
		     va_now_ms() - p->started);
	run_finish(p, text ? text : "", len);
}

static void
on_deadline(void *opaque)
{
	struct va_clip_paste *p = opaque;

	if (!p->proc)
		return;
	/* A command may close its output and go on running: killed all the same. */
	if (!va_proc_out_eof(p->proc, VA_PROC_STDOUT))
		va_log_warnx("clipboard paste command: no end after %d ms, killed",
			     VA_CLIPBOARD_PASTE_MS);
	else
		va_log_warnx("clipboard paste command: still running after %d ms, killed",
			     VA_CLIPBOARD_PASTE_MS);
	run_finish(p, NULL, 0);
}

/* Starts cmd; 0, or -1 (logged). */
static int
run_start(struct va_clip_paste *p, const char *cmd)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	/* One byte over the maximum is read, so that "too much" is seen. */
	const struct va_proc_spec spec = {
		.path = "/bin/sh", .argv = argv, .envp = environ,
		.out_max = VA_CLIPBOARD_MAX + 1, .in_max = 0,
	};
	char err[256];
	int e;

	p->errlen = 0;
	p->proc = va_proc_spawn(va_agent_loop(p->a), &spec, on_event, p, err, sizeof(err), &e);
	if (!p->proc) {
		va_log_warnx("clipboard paste command not started: %s", err);
		return -1;
	}
	/* Its stdin ends at once, as /dev/null would. */
	va_proc_in_close(p->proc);
	p->started = va_now_ms();
	va_loop_timer_in(p->deadline, VA_CLIPBOARD_PASTE_MS);
	return 0;
}

/* ---- the verbs ---------------------------------------------------------------- */

struct va_clip_paste *
va_clip_paste_new(struct va_agent *a)
{
	struct va_clip_paste *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->a = a;
	p->deadline = va_loop_timer_new(va_agent_loop(a), on_deadline, p);
	if (!p->deadline) {
		free(p);
		return NULL;
	}
	return p;
}

void
va_clip_paste_take(struct va_clip_paste *p, const struct va_call *call, const char *cmd)
{
	drop_stale(p);
	if (p->proc && p->nw == 0) {
		/* Nobody waits for it: a fresh run answers this call. */
		va_log_info("clipboard paste command: the session was reset since it started, "
			    "killed after %" PRIu64 " ms", va_now_ms() - p->started);
		run_end(p, 1);
	}
	if (p->nw >= VA_CLIPBOARD_PASTE_WAITERS) {
		va_log_warnx("va.clipboard.get: refused, %u calls wait for the paste command", p->nw);
		char msg[160];
		snprintf(msg, sizeof(msg), "va.clipboard.get: busy: %u calls wait for the "
			 "clipboard paste command (at most %d); try again when they are answered",
			 p->nw, VA_CLIPBOARD_PASTE_WAITERS);
		va_rpc_reply_fault(call->s, call->epoch, call->tag, XMLRPC_LIMIT_EXCEEDED_ERROR, msg);
		return;
	}
	char *tag = strdup(call->tag);
	if (!tag) {
		va_rpc_reply_fault(call->s, call->epoch, call->tag, XMLRPC_INTERNAL_ERROR,
				   "va.clipboard.get: out of memory");
		return;
	}
	p->w[p->nw++] = (struct paste_waiter){ .s = call->s, .epoch = call->epoch, .tag = tag };
	if (p->proc) {
		va_log_info("va.clipboard.get: waits for the paste command already running "
			    "(%u calls)", p->nw);
		return;
	}
	va_log_info("va.clipboard.get: running the clipboard paste command");
	if (run_start(p, cmd) < 0)
		run_finish(p, NULL, 0); /* the buffer, now */
}

void
va_clip_paste_free(struct va_clip_paste *p)
{
	if (!p)
		return;
	if (p->proc) {
		va_log_info("clipboard paste command: stopped after %" PRIu64 " ms, "
			    "%u calls unanswered", va_now_ms() - p->started, p->nw);
		run_end(p, 1);
	}
	for (unsigned i = 0; i < p->nw; i++)
		free(p->w[i].tag);
	va_loop_timer_free(p->deadline);
	free(p);
}
