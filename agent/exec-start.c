/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * exec-start.c - va.exec.start, of the group "exec" (exec.h): what a
 * command runs as, where, with what.
 *
 * va.exec.start(argv[, opts]) runs argv[0] (a bare name is looked up in
 * the PATH of the command's environment; no shell) with exactly the
 * environment it is given: PATH, HOME, USER, LOGNAME and SHELL of the
 * user it runs as (TERM=xterm with a pty), then opts.env on top.  With
 * --exec-allow, the program's path must be one of the list, as written.
 * opts.user switches the groups, gid and uid before exec (the agent
 * must be root for another user); the working directory is opts.cwd,
 * else that user's home (when opts.user is given and the home exists),
 * else "/".  opts.timeout_s kills the command's process group (SIGKILL)
 * when it passes.  Only the program's path and the number of arguments
 * are logged: arguments may hold secrets.
 *
 * Faults: exec.c lists them.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "log.h"
#include "methods.h"
#include "text.h"

#define MAX_ARGS 1024
#define MAX_ENV 256
#define MAX_ARG_BYTES (256u * 1024)
#define MAX_TIMEOUT_S (7 * 24 * 3600)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- va.exec.start's parameters ------------------------------------------------------- */

struct start_req {
	char **argv;
	size_t argc;
	char **env;         /* NAME=value, from opts.env */
	size_t nenv;
	char *cwd;
	char *user;
	uint8_t *stdin_data;
	size_t stdin_len;
	int has_stdin;
	int64_t timeout_s;
	int merge;
	int pty;
	int64_t rows, cols;
};

static void
start_req_free(struct start_req *r)
{
	for (size_t i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	for (size_t i = 0; i < r->nenv; i++)
		free(r->env[i]);
	free(r->env);
	free(r->cwd);
	free(r->user);
	free(r->stdin_data);
}

static const char start_usage[] =
	"va.exec.start: expected (array argv[, struct opts]); opts: env (struct of strings), cwd, "
	"stdin (base64), user, timeout_s, merge, pty, rows, cols";

static void
read_argv(xmlrpc_env *env, xmlrpc_value *arr, struct start_req *r)
{
	int n = xmlrpc_array_size(env, arr);
	size_t bytes = 0;

	if (env->fault_occurred)
		return;
	if (n < 1 || n > MAX_ARGS) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.start: argv has %d words (1 to %d)", n, MAX_ARGS);
		return;
	}
	r->argv = calloc((size_t)n + 1, sizeof(char *));
	if (!r->argv) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
		return;
	}
	for (int i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *v = NULL;
		size_t len = 0;
		xmlrpc_array_read_item(env, arr, (unsigned)i, &v);
		if (env->fault_occurred)
			return;
		if (xmlrpc_value_type(v) != XMLRPC_TYPE_STRING)
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "va.exec.start: argv[%d] is not a string", i);
		else
			va_text_read(env, v, &r->argv[i], &len);
		xmlrpc_DECREF(v);
		if (env->fault_occurred)
			return;
		r->argc = (size_t)i + 1;
		bytes += len + 1;
		if (bytes > MAX_ARG_BYTES)
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "va.exec.start: argv holds more than %u bytes", MAX_ARG_BYTES);
	}
	if (!env->fault_occurred && !r->argv[0][0])
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.start: argv[0] is empty");
}

static void
read_env(xmlrpc_env *env, xmlrpc_value *st, struct start_req *r)
{
	int n = xmlrpc_struct_size(env, st);

	if (env->fault_occurred)
		return;
	if (n > MAX_ENV) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.start: env has %d variables (at most %d)", n, MAX_ENV);
		return;
	}
	r->env = calloc((size_t)n + 1, sizeof(char *));
	if (!r->env) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
		return;
	}
	for (int i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *k = NULL, *v = NULL;
		char *name = NULL, *val = NULL;
		xmlrpc_struct_read_member(env, st, (unsigned)i, &k, &v);
		if (env->fault_occurred)
			return;
		va_text_read(env, k, &name, NULL);
		if (!env->fault_occurred) {
			if (xmlrpc_value_type(v) != XMLRPC_TYPE_STRING)
				va_fault(env, XMLRPC_TYPE_ERROR,
				    "va.exec.start: env.%s is not a string", name);
			else if (!name[0] || strchr(name, '='))
				va_fault(env, XMLRPC_TYPE_ERROR,
				    "va.exec.start: \"%s\" is not a variable name", name);
			else
				va_text_read(env, v, &val, NULL);
		}
		if (!env->fault_occurred) {
			if (asprintf(&r->env[i], "%s=%s", name, val) < 0) {
				r->env[i] = NULL;
				va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
			} else {
				r->nenv = (size_t)i + 1;
			}
		}
		free(name);
		free(val);
		xmlrpc_DECREF(k);
		xmlrpc_DECREF(v);
	}
}

/* Reads opts member key when present: 1 (with *v, a reference), 0 when absent. */
static int
opt(xmlrpc_env *env, xmlrpc_value *opts, const char *key, xmlrpc_type want, xmlrpc_value **v)
{
	*v = NULL;
	xmlrpc_struct_find_value(env, opts, key, v);
	if (env->fault_occurred || !*v)
		return 0;
	xmlrpc_type t = xmlrpc_value_type(*v);
	if (t != want && !(want == XMLRPC_TYPE_INT && t == XMLRPC_TYPE_I8)) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.start: opts.%s has the wrong type", key);
		xmlrpc_DECREF(*v);
		*v = NULL;
		return 0;
	}
	return 1;
}

static void
opt_int(xmlrpc_env *env, xmlrpc_value *opts, const char *key, int64_t lo, int64_t hi,
	int64_t *out)
{
	xmlrpc_value *v;

	if (!opt(env, opts, key, XMLRPC_TYPE_INT, &v))
		return;
	xmlrpc_value *arr = xmlrpc_array_new(env);
	if (!env->fault_occurred) {
		xmlrpc_array_append_item(env, arr, v);
		va_param_int64(env, arr, 0, start_usage, out);
		xmlrpc_DECREF(arr);
	}
	xmlrpc_DECREF(v);
	if (!env->fault_occurred && (*out < lo || *out > hi))
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.exec.start: opts.%s %" PRId64 " is out of range (%" PRId64 " to %" PRId64 ")",
		    key, *out, lo, hi);
}

static void
opt_bool(xmlrpc_env *env, xmlrpc_value *opts, const char *key, int *out)
{
	xmlrpc_value *v;
	xmlrpc_bool b = 0;

	if (!opt(env, opts, key, XMLRPC_TYPE_BOOL, &v))
		return;
	xmlrpc_read_bool(env, v, &b);
	*out = b != 0;
	xmlrpc_DECREF(v);
}

static void
opt_string(xmlrpc_env *env, xmlrpc_value *opts, const char *key, char **out)
{
	xmlrpc_value *v;

	if (!opt(env, opts, key, XMLRPC_TYPE_STRING, &v))
		return;
	va_text_read(env, v, out, NULL);
	xmlrpc_DECREF(v);
	if (!env->fault_occurred && !**out)
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.start: opts.%s is empty", key);
}

static void
read_opts(xmlrpc_env *env, xmlrpc_value *opts, struct start_req *r)
{
	static const char *const known[] = {
		"env", "cwd", "stdin", "user", "timeout_s", "merge", "pty", "rows", "cols",
	};
	xmlrpc_value *v;
	int n = xmlrpc_struct_size(env, opts);

	for (int i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *k = NULL, *val = NULL;
		char *name = NULL;
		int ok = 0;
		xmlrpc_struct_read_member(env, opts, (unsigned)i, &k, &val);
		if (env->fault_occurred)
			return;
		va_text_read(env, k, &name, NULL);
		for (size_t j = 0; name && j < sizeof(known) / sizeof(known[0]); j++)
			ok |= strcmp(name, known[j]) == 0;
		if (!env->fault_occurred && !ok)
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "va.exec.start: unknown option \"%s\" (env, cwd, stdin, user, "
			    "timeout_s, merge, pty, rows, cols)", name);
		free(name);
		xmlrpc_DECREF(k);
		xmlrpc_DECREF(val);
	}
	if (!env->fault_occurred && opt(env, opts, "env", XMLRPC_TYPE_STRUCT, &v)) {
		read_env(env, v, r);
		xmlrpc_DECREF(v);
	}
	if (!env->fault_occurred)
		opt_string(env, opts, "cwd", &r->cwd);
	if (!env->fault_occurred && r->cwd && r->cwd[0] != '/')
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.exec.start: opts.cwd \"%s\" is not an absolute path", r->cwd);
	if (!env->fault_occurred)
		opt_string(env, opts, "user", &r->user);
	if (!env->fault_occurred && opt(env, opts, "stdin", XMLRPC_TYPE_BASE64, &v)) {
		const unsigned char *d = NULL;
		size_t len = 0;
		xmlrpc_read_base64(env, v, &len, &d);
		xmlrpc_DECREF(v);
		if (!env->fault_occurred && len > VA_EXEC_BUFFER)
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "va.exec.start: opts.stdin holds %zu bytes (at most %u; send more "
			    "with va.exec.write)", len, VA_EXEC_BUFFER);
		if (env->fault_occurred) {
			free((void *)d);
		} else {
			r->stdin_data = (uint8_t *)d;
			r->stdin_len = len;
			r->has_stdin = 1;
		}
	}
	if (!env->fault_occurred)
		opt_int(env, opts, "timeout_s", 0, MAX_TIMEOUT_S, &r->timeout_s);
	if (!env->fault_occurred)
		opt_bool(env, opts, "merge", &r->merge);
	if (!env->fault_occurred)
		opt_bool(env, opts, "pty", &r->pty);
	if (!env->fault_occurred)
		opt_int(env, opts, "rows", 0, 10000, &r->rows);
	if (!env->fault_occurred)
		opt_int(env, opts, "cols", 0, 10000, &r->cols);
}

static void
start_params(xmlrpc_env *env, xmlrpc_value *params, struct start_req *r)
{
	int n = va_params_count(env, params, 1, 2, start_usage);
	xmlrpc_value *v;

	if (n < 0)
		return;
	v = va_param_typed(env, params, 0, start_usage, XMLRPC_TYPE_ARRAY, XMLRPC_TYPE_ARRAY);
	if (!v)
		return;
	read_argv(env, v, r);
	xmlrpc_DECREF(v);
	if (env->fault_occurred || n < 2)
		return;
	v = va_param_typed(env, params, 1, start_usage, XMLRPC_TYPE_STRUCT, XMLRPC_TYPE_STRUCT);
	if (!v)
		return;
	read_opts(env, v, r);
	xmlrpc_DECREF(v);
}

/* ---- what the command runs as, where, with what ----------------------------------------- */

struct who {
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	char *name, *home, *shell;
};

static void
who_free(struct who *w)
{
	free(w->groups);
	free(w->name);
	free(w->home);
	free(w->shell);
}

/* user, or the agent's own user when NULL.  0, or -1 with a fault. */
static int
lookup_user(xmlrpc_env *env, const char *user, struct who *w)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int rc = user ? getpwnam_r(user, &pw, buf, sizeof(buf), &res)
		      : getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res);

	if (!res) {
		if (user)
			va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
			    "va.exec.start: no user \"%s\" in the guest%s%s", user,
			    rc ? ": " : "", rc ? strerror(rc) : "");
		else
			va_fault(env, XMLRPC_INTERNAL_ERROR,
			    "va.exec.start: the agent's user (uid %d) has no passwd entry",
			    (int)geteuid());
		return -1;
	}
	w->uid = pw.pw_uid;
	w->gid = pw.pw_gid;
	w->name = strdup(pw.pw_name);
	w->home = strdup(pw.pw_dir && pw.pw_dir[0] ? pw.pw_dir : "/");
	w->shell = strdup(pw.pw_shell && pw.pw_shell[0] ? pw.pw_shell : "/bin/sh");
	if (!w->name || !w->home || !w->shell)
		goto oom;
	if (user) {
		int n = 32;
		for (int tries = 0; tries < 8; tries++) {
			gid_t *g = realloc(w->groups, (size_t)n * sizeof(gid_t));
			if (!g)
				goto oom;
			w->groups = g;
			int want = n;
			if (getgrouplist(w->name, w->gid, w->groups, &want) >= 0) {
				w->ngroups = want;
				return 0;
			}
			n = want > n ? want : n * 2;
		}
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.exec.start: cannot read the groups of %s", user);
		return -1;
	}
	return 0;
oom:
	va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
	return -1;
}

/* The value of NAME in envp (NAME=value strings), or NULL. */
static const char *
env_get(char *const *envp, size_t n, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = n; i-- > 0;)
		if (strncmp(envp[i], name, nl) == 0 && envp[i][nl] == '=')
			return envp[i] + nl + 1;
	return NULL;
}

/*
 * The environment: the user's basics, then opts.env replacing by name.
 * A NULL-terminated array of malloc'd strings, or NULL.
 */
static char **
build_env(const struct start_req *r, const struct who *w)
{
	size_t cap = 6 + r->nenv + 1, n = 0;
	char **envp = calloc(cap, sizeof(char *));

	if (!envp)
		return NULL;
	const char *base[][2] = {
		{ "PATH", DEFAULT_PATH }, { "HOME", w->home }, { "USER", w->name },
		{ "LOGNAME", w->name }, { "SHELL", w->shell }, { "TERM", r->pty ? "xterm" : NULL },
	};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		if (!base[i][1] || env_get(r->env, r->nenv, base[i][0]))
			continue;
		if (asprintf(&envp[n], "%s=%s", base[i][0], base[i][1]) < 0)
			goto fail;
		n++;
	}
	for (size_t i = 0; i < r->nenv; i++) {
		/* A name given twice: the last one (env_get reads from the end). */
		size_t nl = strcspn(r->env[i], "=");
		int later = 0;
		for (size_t j = i + 1; j < r->nenv && !later; j++)
			later = strncmp(r->env[j], r->env[i], nl + 1) == 0;
		if (later)
			continue;
		envp[n] = strdup(r->env[i]);
		if (!envp[n])
			goto fail;
		n++;
	}
	return envp;
fail:
	for (size_t i = 0; i < n; i++)
		free(envp[i]);
	free(envp);
	return NULL;
}

static void
strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int
executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* The program's path (malloc'd), or NULL with a fault. */
static char *
find_program(xmlrpc_env *env, const char *prog, const char *path_var)
{
	if (strchr(prog, '/')) {
		if (prog[0] != '/') {
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "va.exec.start: \"%s\": give an absolute path, or a bare name looked up "
			    "in PATH", prog);
			return NULL;
		}
		char *p = strdup(prog);
		if (!p)
			va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
		return p;
	}
	const char *dirs = path_var ? path_var : DEFAULT_PATH;
	while (*dirs) {
		size_t dl = strcspn(dirs, ":");
		char cand[PATH_MAX];
		/* Only absolute directories: an empty or relative entry would
		 * mean the working directory, which the caller did not name. */
		if (dl > 0 && dirs[0] == '/' &&
		    (size_t)snprintf(cand, sizeof(cand), "%.*s/%s", (int)dl, dirs, prog) < sizeof(cand) &&
		    executable_file(cand)) {
			char *p = strdup(cand);
			if (!p)
				va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
			return p;
		}
		dirs += dl;
		if (*dirs == ':')
			dirs++;
	}
	va_fault(env, XMLRPC_INTERNAL_ERROR,
	    "va.exec.start: cannot run %s: not found in PATH (%s)", prog,
	    path_var ? path_var : DEFAULT_PATH);
	return NULL;
}

static int
allowed(const struct va_agent_config *cfg, const char *path)
{
	if (!cfg->exec_allow)
		return 1;
	for (size_t i = 0; cfg->exec_allow[i]; i++)
		if (strcmp(cfg->exec_allow[i], path) == 0)
			return 1;
	return 0;
}

/* ---- va.exec.start -------------------------------------------------------------------- */

static struct exec_entry *
start(xmlrpc_env *env, struct va_execs *ex, struct start_req *r)
{
	struct va_agent *a = ex->a;
	struct who w = { 0 };
	char **envp = NULL;
	char *path = NULL;
	struct exec_entry *e = NULL;
	unsigned running, kept;

	va_exec_count(ex, &running, &kept);
	if (running >= VA_EXEC_MAX_RUNNING || kept >= VA_EXEC_MAX_KEPT) {
		va_log_warnx("va.exec.start %s: refused, %u commands run and %u are kept", r->argv[0],
			     running, kept);
		if (running >= VA_EXEC_MAX_RUNNING)
			va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "va.exec.start: busy: %u commands are running (at most %d at once); "
			    "try again when one has finished", running, VA_EXEC_MAX_RUNNING);
		else
			va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "va.exec.start: busy: %u finished commands wait to be read (at most "
			    "%d are kept, each for %d s)", kept - running, VA_EXEC_MAX_KEPT,
			    VA_EXEC_KEEP_S);
		return NULL;
	}
	if (lookup_user(env, r->user, &w) < 0)
		goto out;
	envp = build_env(r, &w);
	if (!envp) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
		goto out;
	}
	size_t nenvp = 0;
	while (envp[nenvp])
		nenvp++;
	path = find_program(env, r->argv[0], env_get(envp, nenvp, "PATH"));
	if (!path)
		goto out;
	if (!allowed(va_agent_config(a), path)) {
		va_log_warnx("va.exec.start %s: refused, not in the exec-allow list", path);
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "va.exec.start: %s is not in this guest's exec-allow list", path);
		goto out;
	}
	const char *cwd = r->cwd;
	struct stat st;
	if (!cwd && r->user && stat(w.home, &st) == 0 && S_ISDIR(st.st_mode))
		cwd = w.home;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->prog = strdup(path)) || (r->user && !(e->user = strdup(r->user))) ||
	    !(e->timeout = va_loop_timer_new(va_agent_loop(a), va_exec_on_timeout, e))) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: out of memory");
		goto fail;
	}
	struct va_proc_spec spec = {
		.path = path, .argv = r->argv, .envp = envp, .cwd = cwd,
		.switch_user = r->user != NULL, .uid = w.uid, .gid = w.gid,
		.groups = w.groups, .ngroups = (size_t)w.ngroups,
		.pty = r->pty, .rows = (unsigned short)r->rows, .cols = (unsigned short)r->cols,
		.merge = r->merge, .out_max = VA_EXEC_BUFFER, .in_max = VA_EXEC_BUFFER,
	};
	char why[512];
	int err_no;
	e->ex = ex;
	e->pty = r->pty;
	e->p = va_proc_spawn(va_agent_loop(a), &spec, va_exec_on_proc, e, why, sizeof(why), &err_no);
	if (!e->p) {
		va_log_warnx("va.exec.start: %s", why);
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.start: %s", why);
		goto fail;
	}
	e->id = ++ex->next_id;
	e->started_ms = va_agent_now_ms(a);
	e->next = ex->entries;
	ex->entries = e;
	va_log_info("va.exec.start %d: %s with %zu argument%s as %s, pid %d%s%s", e->id, path,
		    r->argc - 1, r->argc == 2 ? "" : "s", w.name, (int)va_proc_pid(e->p),
		    r->pty ? ", on a pty" : "", r->merge ? ", stderr merged" : "");
	if (r->timeout_s)
		va_loop_timer_in(e->timeout, (uint64_t)r->timeout_s * 1000);
	if (r->has_stdin) {
		va_proc_in_write(e->p, r->stdin_data, r->stdin_len);
		va_proc_in_close(e->p);
	}
	goto out;
fail:
	if (e) {
		va_loop_timer_free(e->timeout);
		free(e->prog);
		free(e->user);
		free(e);
		e = NULL;
	}
out:
	free(path);
	strv_free(envp);
	who_free(&w);
	return e;
}

xmlrpc_value *
va_exec_method_start(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct start_req r = { 0 };
	struct exec_entry *e = NULL;

	(void)call_info;
	start_params(env, params, &r);
	if (!env->fault_occurred)
		e = start(env, va_group_state(server_info), &r);
	start_req_free(&r);
	return e ? xmlrpc_int_new(env, e->id) : NULL;
}
