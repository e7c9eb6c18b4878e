/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * methods.h - helpers shared by the guest agent's method groups
 * (info.c, file.c, clipboard.c, dmesg.c, shutdown.c).  Implemented in
 * methods.c, except va_os_release_pretty_name (info.c).
 *
 * - Registration: every group registers its table with va_methods_add(),
 *   which also remembers the names, so va.capabilities and host.hello can
 *   list the enabled methods (va_methods_enabled()).
 * - Parameters: checks of count and type that fault with the method's
 *   usage line ("va.file.read: expected (int handle, int count)").
 * - Text: UTF-8 checks for what goes into XML.
 * - Commands: /bin/sh -c without waiting, and the reaping of those
 *   children (the daemon calls va_methods_reap() from its loop).
 *
 * All functions that take an xmlrpc_env set a fault on failure and leave
 * it untouched on success.
 */
#ifndef VA_METHODS_H
#define VA_METHODS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "agent.h"

/*
 * Registers each entry of tbl with serverInfo = a, and remembers its
 * methodName (the strings must be static: only the pointers are kept).
 * Registering the same name again (a new registry) is fine.
 */
void va_methods_add(xmlrpc_env *env, xmlrpc_registry *r, struct va_agent *a,
		    const struct xmlrpc_method_info3 *tbl, size_t n);
/*
 * A new array of the names of the registered va.* methods and of the
 * xmlrpc-c system.* methods for which va_agent_method_enabled() is true.
 * The caller owns the reference.
 */
xmlrpc_value *va_methods_enabled(xmlrpc_env *env, struct va_agent *a);

/*
 * Parameter checks.  usage is the whole fault text for a wrong count or
 * type, e.g. "va.file.read: expected (int handle, int count)"; the faults
 * are XMLRPC_TYPE_ERROR with a detail appended ("; got 3 parameters").
 */
/* Number of parameters, or -1 (fault) if not within [min, max]. */
int va_params_count(xmlrpc_env *env, xmlrpc_value *params, int min, int max,
		    const char *usage);
/* Parameter i (a new reference) if its type is a or b, else NULL (fault). */
xmlrpc_value *va_param_typed(xmlrpc_env *env, xmlrpc_value *params, int i,
			     const char *usage, xmlrpc_type a, xmlrpc_type b);
/* Parameter i as an int or an i8. */
void va_param_int64(xmlrpc_env *env, xmlrpc_value *params, int i,
		    const char *usage, int64_t *out);
/* Parameter i as a string without NUL; *out is malloc'd (caller frees). */
void va_param_string(xmlrpc_env *env, xmlrpc_value *params, int i,
		     const char *usage, char **out, size_t *len);
/* An int when it fits in 32 bits, else an i8 (for counters like serials). */
xmlrpc_value *va_int_value(xmlrpc_env *env, int64_t v);

/*
 * Returns the offset of the first byte of s that is not valid UTF-8
 * (overlong forms, surrogates and code points above U+10FFFF are invalid),
 * or len if all of it is.  With xml set, what an XML-RPC string cannot
 * carry counts as invalid too: C0 controls other than tab, LF and CR
 * (NUL included), U+FFFE, U+FFFF, and every character above U+FFFF,
 * because xmlrpc-c (1.33, Debian 12) refuses those both when building a
 * string and when parsing XML ("not in the Basic Multilingual Plane").
 */
size_t va_utf8_check(const char *s, size_t len, int xml);
/*
 * Makes s safe for an XML-RPC string, in place: every byte of an invalid
 * sequence and every control character other than '\n' and '\t' (CR,
 * DEL and NUL included) becomes '?', and so does each character above
 * U+FFFF (one '?' for its four bytes).  Returns the new length (<= len);
 * when shorter, s[new length] is set to NUL.
 */
size_t va_utf8_sanitize(char *s, size_t len);

/*
 * Runs "/bin/sh -c cmd" without waiting for it: a new session, default
 * signal handling, fds above 2 closed, stdin from input (len bytes,
 * through an anonymous memory file, so the caller never blocks on a pipe)
 * or /dev/null when input is NULL.  env_add is a NULL-terminated list of
 * "NAME=value" added to (and replacing in) the agent's environment, or
 * NULL.  At most 'limit' children of this module may be alive at once
 * (not yet reaped).  Returns the pid, or -errno (-EAGAIN when at the
 * limit).
 */
pid_t va_methods_spawn(const char *cmd, const char *const *env_add,
		       const char *input, size_t len, unsigned limit);
/* Reaps the children of va_methods_spawn() that have exited (WNOHANG). */
void va_methods_reap(void);
/* How many of them have not been reaped yet. */
unsigned va_methods_children(void);

/*
 * The PRETTY_NAME of an os-release file (text, len bytes), with shell
 * quoting ('..', "..", backslash escapes) undone; a malloc'd string, or
 * NULL when absent, empty or malformed.  In info.c; declared here for
 * the tests.
 */
char *va_os_release_pretty_name(const char *text, size_t len);

#endif
