/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * methods.c - helpers shared by the method groups; see methods.h.
 *
 * Faults set here:
 *   XMLRPC_TYPE_ERROR     wrong number or type of parameters, or a string
 *                         parameter holding a NUL
 *   XMLRPC_INTERNAL_ERROR out of room in the table of method names
 */
#include "config.h"

/* memfd_create, O_TMPFILE, posix_spawn_file_actions_addclosefrom_np, POSIX_SPAWN_SETSID; configure.ac has no AC_USE_SYSTEM_EXTENSIONS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "methods.h"

extern char **environ;

/* ---- registration and the list of names ---- */

#define MAX_METHODS 64

static const char *method_names[MAX_METHODS];
static size_t nmethod_names;

/*
 * The introspection and multicall methods xmlrpc-c adds to every registry.
 * system.shutdown is left out: the agent sets no shutdown function, so it
 * only ever answers a fault (va.shutdown is the agent's way).
 */
static const char *const system_names[] = {
	"system.listMethods",
	"system.methodExist",
	"system.methodHelp",
	"system.methodSignature",
	"system.multicall",
	"system.capabilities",
	"system.getCapabilities",
};

static int
remember_name(const char *name)
{
	for (size_t i = 0; i < nmethod_names; i++)
		if (strcmp(method_names[i], name) == 0)
			return 0;
	if (nmethod_names == MAX_METHODS)
		return -1;
	method_names[nmethod_names++] = name;
	return 0;
}

void
va_methods_add(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a,
	       const struct xmlrpc_method_info3 *tbl, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct xmlrpc_method_info3 mi = tbl[i];

		mi.serverInfo = a;
		xmlrpc_registry_add_method3(env, r, &mi);
		if (env->fault_occurred)
			return;
		if (remember_name(tbl[i].methodName) < 0) {
			xmlrpc_env_set_fault_formatted(env, XMLRPC_INTERNAL_ERROR,
			    "too many methods (at most %d): %s", MAX_METHODS,
			    tbl[i].methodName);
			return;
		}
	}
}

static void
append_if_enabled(xmlrpc_env *env, xmlrpc_value *arr, struct va_agent *a,
		  const char *name)
{
	if (!va_agent_method_enabled(a, name))
		return;
	xmlrpc_value *s = xmlrpc_string_new(env, name);
	if (env->fault_occurred)
		return;
	xmlrpc_array_append_item(env, arr, s);
	xmlrpc_DECREF(s);
}

xmlrpc_value *
va_methods_enabled(xmlrpc_env *env, struct va_agent *a)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);

	if (env->fault_occurred)
		return NULL;
	for (size_t i = 0; i < nmethod_names && !env->fault_occurred; i++)
		append_if_enabled(env, arr, a, method_names[i]);
	for (size_t i = 0; i < sizeof(system_names) / sizeof(system_names[0]) &&
	     !env->fault_occurred; i++)
		append_if_enabled(env, arr, a, system_names[i]);
	if (env->fault_occurred) {
		xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

/* ---- parameters ---- */

static const char *
type_name(xmlrpc_type t)
{
	switch (t) {
	case XMLRPC_TYPE_INT: return "int";
	case XMLRPC_TYPE_BOOL: return "boolean";
	case XMLRPC_TYPE_DOUBLE: return "double";
	case XMLRPC_TYPE_DATETIME: return "dateTime.iso8601";
	case XMLRPC_TYPE_STRING: return "string";
	case XMLRPC_TYPE_BASE64: return "base64";
	case XMLRPC_TYPE_ARRAY: return "array";
	case XMLRPC_TYPE_STRUCT: return "struct";
	case XMLRPC_TYPE_NIL: return "nil";
	case XMLRPC_TYPE_I8: return "i8";
	default: return "unknown type";
	}
}

int
va_params_count(xmlrpc_env *env, xmlrpc_value *params, int min, int max,
		const char *usage)
{
	int n = xmlrpc_array_size(env, params);

	if (env->fault_occurred)
		return -1;
	if (n < min || n > max) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "%s; got %d parameter%s", usage, n, n == 1 ? "" : "s");
		return -1;
	}
	return n;
}

xmlrpc_value *
va_param_typed(xmlrpc_env *env, xmlrpc_value *params, int i,
	      const char *usage, xmlrpc_type a, xmlrpc_type b)
{
	xmlrpc_value *v = NULL;

	xmlrpc_array_read_item(env, params, (unsigned)i, &v);
	if (env->fault_occurred)
		return NULL;
	xmlrpc_type t = xmlrpc_value_type(v);
	if (t != a && t != b) {
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "%s; parameter %d is a%s %s", usage, i + 1,
		    (t == XMLRPC_TYPE_INT || t == XMLRPC_TYPE_I8 ||
		     t == XMLRPC_TYPE_ARRAY) ? "n" : "", type_name(t));
		xmlrpc_DECREF(v);
		return NULL;
	}
	return v;
}

void
va_param_int64(xmlrpc_env *env, xmlrpc_value *params, int i,
	       const char *usage, int64_t *out)
{
	xmlrpc_value *v = va_param_typed(env, params, i, usage,
	    XMLRPC_TYPE_INT, XMLRPC_TYPE_I8);

	if (!v)
		return;
	if (xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		int n = 0;
		xmlrpc_read_int(env, v, &n);
		*out = n;
	} else {
		xmlrpc_int64 n = 0;
		xmlrpc_read_i8(env, v, &n);
		*out = n;
	}
	xmlrpc_DECREF(v);
}

void
va_param_string(xmlrpc_env *env, xmlrpc_value *params, int i,
		const char *usage, char **out, size_t *len)
{
	xmlrpc_value *v = va_param_typed(env, params, i, usage,
	    XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING);
	const char *s = NULL;
	size_t n = 0;

	if (!v)
		return;
	xmlrpc_read_string_lp(env, v, &n, &s);
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return;
	if (memchr(s, '\0', n)) {
		free((void *)s);
		xmlrpc_env_set_fault_formatted(env, XMLRPC_TYPE_ERROR,
		    "%s; parameter %d holds a NUL character", usage, i + 1);
		return;
	}
	*out = (char *)s;
	if (len)
		*len = n;
}

xmlrpc_value *
va_int_value(xmlrpc_env *env, int64_t v)
{
	if (v >= INT32_MIN && v <= INT32_MAX)
		return xmlrpc_int_new(env, (int)v);
	return xmlrpc_i8_new(env, v);
}

/* ---- UTF-8 ---- */

/* Length of the valid sequence at p (avail bytes), or 0 if invalid. */
static size_t
utf8_seq(const unsigned char *p, size_t avail, int xml)
{
	unsigned c = p[0];
	uint32_t cp;
	size_t n;

	if (c < 0x80) {
		if (xml && c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return 0;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3F);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
		return 0;
	if (xml && (cp == 0xFFFE || cp == 0xFFFF))
		return 0;
	/* xmlrpc-c (1.33, Debian 12) refuses characters above U+FFFF. */
	if (xml && n == 4)
		return 0;
	return n;
}

size_t
va_utf8_check(const char *s, size_t len, int xml)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i, xml);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

size_t
va_utf8_sanitize(char *s, size_t len)
{
	unsigned char *p = (unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i, 1);
		if (n == 0 && utf8_seq(p + i, len - i, 0) == 4) {
			/* A valid character xmlrpc-c cannot carry: one '?'. */
			p[o++] = '?';
			i += 4;
		} else if (n == 0 || (n == 1 && (p[i] == '\r' || p[i] == 0x7F))) {
			p[o++] = '?';
			i++;
		} else {
			memmove(p + o, p + i, n);
			o += n;
			i += n;
		}
	}
	if (o < len)
		p[o] = '\0';
	return o;
}

/* ---- commands ---- */

#define MAX_CHILDREN 32

static pid_t children[MAX_CHILDREN];
static unsigned nchildren;

void
va_methods_reap(void)
{
	unsigned i = 0;

	while (i < nchildren) {
		int status;
		pid_t r = waitpid(children[i], &status, WNOHANG);

		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		if (r > 0) {
			if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				va_log_warnx("command (pid %d) exited with status %d",
				    (int)r, WEXITSTATUS(status));
			else if (WIFSIGNALED(status))
				va_log_warnx("command (pid %d) killed by signal %d",
				    (int)r, WTERMSIG(status));
			else
				va_log_debug("command (pid %d) done", (int)r);
		}
		/* Reaped, or ECHILD (someone else reaped it, or SIGCHLD is ignored). */
		children[i] = children[--nchildren];
	}
}

unsigned
va_methods_children(void)
{
	return nchildren;
}

/* An fd positioned at the start of a private copy of input, or -errno. */
static int
input_fd(const char *input, size_t len)
{
	int fd;

	if (!input) {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	fd = memfd_create("va-agent-input", MFD_CLOEXEC);
	if (fd < 0)
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, input + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* environ with the names in env_add replaced; only the array is new. */
static char **
build_env(const char *const *env_add)
{
	size_t n = 0, nadd = 0, k = 0;

	while (environ && environ[n])
		n++;
	while (env_add && env_add[nadd])
		nadd++;
	char **envp = calloc(n + nadd + 1, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int replaced = 0;
		for (size_t j = 0; j < nadd && !replaced; j++) {
			const char *eq = strchr(env_add[j], '=');
			size_t nl = eq ? (size_t)(eq - env_add[j]) : strlen(env_add[j]);
			if (strncmp(environ[i], env_add[j], nl) == 0 &&
			    environ[i][nl] == '=')
				replaced = 1;
		}
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < nadd; j++)
		envp[k++] = (char *)env_add[j];
	envp[k] = NULL;
	return envp;
}

pid_t
va_methods_spawn(const char *cmd, const char *const *env_add,
		 const char *input, size_t len, unsigned limit)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid = -1;
	int rc;

	va_methods_reap();
	if (nchildren >= limit || nchildren >= MAX_CHILDREN)
		return -EAGAIN;

	int fd = input_fd(input, len);
	if (fd < 0)
		return fd;
	if (fd <= 2) {
		/* dup2(fd, 0) must not be a no-op that keeps FD_CLOEXEC. */
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		int e = errno;
		close(fd);
		if (hi < 0)
			return -e;
		fd = hi;
	}
	char **envp = build_env(env_add);
	if (!envp) {
		close(fd);
		return -ENOMEM;
	}

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	rc = posix_spawn_file_actions_adddup2(&fa, fd, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
		    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	if (rc == 0) {
		char *argv[] = { "sh", "-c", (char *)cmd, NULL };
		rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(fd);
	if (rc != 0)
		return -rc;
	children[nchildren++] = pid;
	return pid;
}
