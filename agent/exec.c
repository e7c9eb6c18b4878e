/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * exec.c - the group "exec": va.exec.kill, list and resize, the table of
 * commands and its sweep; va.exec.start is in exec-start.c, va.exec.read
 * and write in exec-io.c.  See exec.h, and docs/METHODS.md.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong parameters (types, unknown options,
 *                               an empty argv, a relative program path)
 *   XMLRPC_INDEX_ERROR          no command with that id, a bad signal,
 *                               a value out of range
 *   XMLRPC_LIMIT_EXCEEDED_ERROR VA_EXEC_MAX_RUNNING commands run, or
 *                               VA_EXEC_MAX_KEPT are kept ("busy")
 *   XMLRPC_REQUEST_REFUSED_ERROR the program is not in --exec-allow's
 *                               list, an unknown user
 *   XMLRPC_INTERNAL_ERROR       the command could not be started (the
 *                               reason: "cannot run /x: No such file...")
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "exec.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"


/* ---- the table ------------------------------------------------------------------ */

int
va_exec_done(const struct exec_entry *e)
{
	return va_proc_exited(e->p, NULL) && va_proc_out_eof(e->p, VA_PROC_STDOUT) &&
	       va_proc_out_eof(e->p, VA_PROC_STDERR);
}

struct exec_entry *
va_exec_find(xmlrpc_env *env, struct va_execs *ex, int64_t id, const char *method)
{
	for (struct exec_entry *e = ex->entries; e; e = e->next)
		if (e->id == id)
			return e;
	va_fault(env, XMLRPC_INDEX_ERROR,
	    "%s: no command %" PRId64 " (finished and read, or never started)", method, id);
	return NULL;
}

void
va_exec_entry_free(struct exec_entry *e)
{
	struct va_execs *ex = e->ex;

	for (struct exec_entry **pp = &ex->entries; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	va_exec_io_drop(e);
	va_loop_timer_free(e->timeout);
	if (!va_proc_exited(e->p, NULL))
		va_log_info("va.exec %d: %s killed (the agent drops it)", e->id, e->prog);
	va_proc_free(e->p);
	free(e->prog);
	free(e->user);
	free(e);
}

void
va_exec_count(const struct va_execs *ex, unsigned *running, unsigned *kept)
{
	*running = *kept = 0;
	for (const struct exec_entry *e = ex->entries; e; e = e->next) {
		(*kept)++;
		if (!va_proc_exited(e->p, NULL))
			(*running)++;
	}
}

static void
log_exit(struct exec_entry *e)
{
	int st = 0;
	uint64_t ms = va_agent_now_ms(e->ex->a) - e->started_ms;

	va_proc_exited(e->p, &st);
	e->exit_logged = 1;
	if (WIFEXITED(st))
		va_log_info("va.exec %d: %s exited with %d after %" PRIu64 " ms", e->id, e->prog,
			    WEXITSTATUS(st), ms);
	else
		va_log_info("va.exec %d: %s killed by signal %d%s after %" PRIu64 " ms", e->id,
			    e->prog, WTERMSIG(st), e->timed_out ? " (its timeout)" : "", ms);
}

/* The process changed (proc.h's event). */
void
va_exec_on_proc(void *opaque, struct va_proc *p)
{
	struct exec_entry *e = opaque;

	(void)p;
	if (!e->exit_logged && va_proc_exited(e->p, NULL))
		log_exit(e);
	if (!e->done_ms && va_exec_done(e)) {
		e->done_ms = va_agent_now_ms(e->ex->a);
		va_loop_timer_stop(e->timeout);
		va_agent_sweep_at(e->ex->a, e->done_ms + VA_EXEC_KEEP_S * 1000ull);
	}
	va_exec_io_event(e); /* may free e */
}

void
va_exec_on_timeout(void *opaque)
{
	struct exec_entry *e = opaque;

	e->timed_out = 1;
	va_log_info("va.exec %d: %s: its timeout passed, killing its process group", e->id, e->prog);
	va_proc_kill(e->p, SIGKILL);
}

static uint64_t
exec_sweep(void *state, uint64_t now)
{
	struct va_execs *ex = state;
	uint64_t next = UINT64_MAX;
	struct exec_entry *e = ex->entries, *n;

	for (; e; e = n) {
		n = e->next;
		if (!e->done_ms)
			continue;
		uint64_t due = e->done_ms + VA_EXEC_KEEP_S * 1000ull;
		if (due <= now) {
			va_log_info("va.exec %d: %s: finished %d s ago and not read: dropped", e->id,
				    e->prog, VA_EXEC_KEEP_S);
			va_exec_entry_free(e);
		} else if (due < next) {
			next = due;
		}
	}
	return next;
}

/* ---- kill, list, resize -------------------------------------------------------------------- */

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
	{ "WINCH", SIGWINCH },
};

/* A signal as a number or a name (INT, SIGINT); -1 with a fault. */
static int
read_signal(xmlrpc_env *env, xmlrpc_value *params, int i, const char *usage)
{
	xmlrpc_value *v = va_param_typed(env, params, i, usage, XMLRPC_TYPE_INT, XMLRPC_TYPE_STRING);
	int sig = -1;

	if (!v)
		return -1;
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		xmlrpc_read_int(env, v, &sig);
		if (!env->fault_occurred && (sig < 1 || sig >= NSIG))
			sig = -1;
		if (sig < 0 && !env->fault_occurred)
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "va.exec.kill: no signal number %d", sig);
	} else {
		char *name = NULL;
		va_text_read(env, v, &name, NULL);
		const char *n = name && strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
		for (size_t k = 0; n && k < sizeof(signals) / sizeof(signals[0]); k++)
			if (strcmp(n, signals[k].name) == 0)
				sig = signals[k].sig;
		if (!env->fault_occurred && sig < 0)
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "va.exec.kill: unknown signal \"%s\"", name);
		free(name);
	}
	xmlrpc_DECREF(v);
	return env->fault_occurred ? -1 : sig;
}

static xmlrpc_value *
method_kill(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] = "va.exec.kill: expected (int id[, int|string signal])";
	int64_t id = 0;
	int sig = SIGTERM;
	int n = va_params_count(env, params, 1, 2, usage);

	(void)call_info;
	if (n < 0)
		return NULL;
	va_param_int64(env, params, 0, usage, &id);
	if (!env->fault_occurred && n == 2)
		sig = read_signal(env, params, 1, usage);
	if (env->fault_occurred)
		return NULL;
	struct exec_entry *e = va_exec_find(env, va_group_state(server_info), id, "va.exec.kill");
	if (!e)
		return NULL;
	int r = va_proc_kill(e->p, sig);
	va_log_info("va.exec.kill %d %d: %s", e->id, sig, r == 0 ? "sent" : strerror(-r));
	return xmlrpc_bool_new(env, r == 0);
}

static xmlrpc_value *
method_resize(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] = "va.exec.resize: expected (int id, int rows, int cols)";
	int64_t id = 0, rows = 0, cols = 0;

	(void)call_info;
	if (va_params_count(env, params, 3, 3, usage) < 0)
		return NULL;
	va_param_int64(env, params, 0, usage, &id);
	if (!env->fault_occurred)
		va_param_int64(env, params, 1, usage, &rows);
	if (!env->fault_occurred)
		va_param_int64(env, params, 2, usage, &cols);
	if (env->fault_occurred)
		return NULL;
	if (rows < 1 || rows > 10000 || cols < 1 || cols > 10000) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.exec.resize: %" PRId64 "x%" PRId64 " is out of range (1 to 10000)", rows, cols);
		return NULL;
	}
	struct exec_entry *e = va_exec_find(env, va_group_state(server_info), id, "va.exec.resize");
	if (!e)
		return NULL;
	int r = va_proc_resize(e->p, (unsigned short)rows, (unsigned short)cols);
	if (r < 0) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.resize: command %d %s", e->id,
		    r == -ENOTTY ? "has no pty (start it with pty)" : strerror(-r));
		return NULL;
	}
	return xmlrpc_bool_new(env, 1);
}

static xmlrpc_value *
entry_value(xmlrpc_env *env, struct exec_entry *e, uint64_t now)
{
	int st = 0;
	int exited = va_proc_exited(e->p, &st);
	xmlrpc_value *prog = va_text_value_z(env, e->prog), *user = NULL, *v = NULL;

	if (!env->fault_occurred)
		user = va_text_value_z(env, e->user ? e->user : "");
	if (!env->fault_occurred)
		v = xmlrpc_build_value(env, "{s:i,s:i,s:V,s:V,s:b,s:b,s:b,s:i,s:i,s:i}",
		    "id", e->id, "pid", (int)va_proc_pid(e->p), "program", prog, "user", user,
		    "pty", (xmlrpc_bool)e->pty, "exited", (xmlrpc_bool)exited,
		    "timed_out", (xmlrpc_bool)e->timed_out,
		    "age_s", (int)((now - e->started_ms) / 1000),
		    "stdout_buffered", (int)va_proc_out_len(e->p, VA_PROC_STDOUT),
		    "stderr_buffered", (int)va_proc_out_len(e->p, VA_PROC_STDERR));
	if (v && exited) {
		xmlrpc_value *x = xmlrpc_int_new(env, WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (!env->fault_occurred) {
			xmlrpc_struct_set_value(env, v, WIFEXITED(st) ? "exit_code" : "signal", x);
			xmlrpc_DECREF(x);
		}
	}
	if (prog)
		xmlrpc_DECREF(prog);
	if (user)
		xmlrpc_DECREF(user);
	if (env->fault_occurred && v) {
		xmlrpc_DECREF(v);
		v = NULL;
	}
	return v;
}

static xmlrpc_value *
method_list(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct va_execs *ex = va_group_state(server_info);
	uint64_t now = va_agent_now_ms(ex->a);

	(void)call_info;
	if (va_params_count(env, params, 0, 0, "va.exec.list: expected ()") < 0)
		return NULL;
	xmlrpc_value *arr = xmlrpc_array_new(env);
	for (struct exec_entry *e = ex->entries; e && !env->fault_occurred; e = e->next) {
		xmlrpc_value *v = entry_value(env, e, now);
		if (v) {
			xmlrpc_array_append_item(env, arr, v);
			xmlrpc_DECREF(v);
		}
	}
	if (env->fault_occurred) {
		if (arr)
			xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

/* ---- the group ------------------------------------------------------------------------------ */

static const struct xmlrpc_method_info3 exec_methods[] = {
	{
		.methodName = "va.exec.start",
		.methodFunction = va_exec_method_start,
		.signatureString = "i:A,i:AS",
		.help = "va.exec.start(array argv[, struct opts]) -> int id. Runs argv (no shell; "
			"a bare argv[0] is looked up in PATH) in a process group of its own. opts: "
			"env (struct of strings, on top of PATH, HOME, USER, LOGNAME, SHELL), cwd, "
			"stdin (base64: written, then stdin is closed), user (run as that user), "
			"timeout_s (the process group is killed when it passes), merge (stderr into "
			"stdout), pty (a pseudo-terminal; rows, cols). At most 16 run at once. "
			"Opt-in: --enable-exec.",
	},
	{
		.methodName = "va.exec.read",
		.methodFunction = va_exec_method_read,
		.signatureString = "S:i,S:ii,S:iii",
		.help = "va.exec.read(int id[, int max_bytes[, int wait_ms]]) -> struct {stdout, "
			"stderr (base64: what is new since the last read), stdout_eof, stderr_eof, "
			"exited, exit_code or signal, timed_out}. Waits up to wait_ms (default 0, at "
			"most 120000; keep it below the proxy's call timeout) when nothing is new. "
			"max_bytes: default 1 MiB, at most 4 MiB. The read that delivers the end of "
			"both streams and the exit forgets the command.",
	},
	{
		.methodName = "va.exec.write",
		.methodFunction = va_exec_method_write,
		.signatureString = "i:i6,i:i6b",
		.help = "va.exec.write(int id, base64 data[, boolean close]) -> int bytes taken. "
			"Queues data (at most 1 MiB) for the command's stdin; when the agent's "
			"buffer is full the answer waits (up to 10 s) for room, then says how much "
			"was taken: send the rest again. close ends stdin after the data.",
	},
	{
		.methodName = "va.exec.kill",
		.methodFunction = method_kill,
		.signatureString = "b:i,b:ii,b:is",
		.help = "va.exec.kill(int id[, int|string signal]) -> boolean sent. Sends signal "
			"(default TERM; a number or a name such as INT) to the command's process "
			"group.",
	},
	{
		.methodName = "va.exec.list",
		.methodFunction = method_list,
		.signatureString = "A:",
		.help = "va.exec.list() -> array of struct {id, pid, program, user, pty, exited, "
			"exit_code or signal, timed_out, age_s, stdout_buffered, stderr_buffered}.",
	},
	{
		.methodName = "va.exec.resize",
		.methodFunction = method_resize,
		.signatureString = "b:iii",
		.help = "va.exec.resize(int id, int rows, int cols) -> true. Sets the window size "
			"of a command started with pty.",
	},
};

static const char *const exec_opt_in[] = {
	"va.exec.start", "va.exec.read", "va.exec.write", "va.exec.kill", "va.exec.list",
	"va.exec.resize", NULL,
};

static int
exec_init(struct va_agent *a, void **state)
{
	struct va_execs *ex = calloc(1, sizeof(*ex));

	if (!ex)
		return -1;
	ex->a = a;
	*state = ex;
	return 0;
}

static void
exec_cleanup(void *state)
{
	struct va_execs *ex = state;

	while (ex->entries)
		va_exec_entry_free(ex->entries);
	free(ex);
}

const struct va_method_group va_group_exec = {
	.name = "exec",
	VA_GROUP_METHODS(exec_methods),
	.opt_in = exec_opt_in,
	.opt_in_how = "--enable-exec (exec = yes in va-agent.conf)",
	.init = exec_init,
	.cleanup = exec_cleanup,
	.intercept = va_exec_intercept,
	.sweep = exec_sweep,
};
