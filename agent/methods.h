/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * methods.h - helpers shared by the guest agent's method groups
 * (info.c, file*.c, clipboard.c, dmesg.c, shutdown.c).  Implemented in
 * methods.c, except va_os_release_pretty_name (info.c).  How a group
 * registers and what the core offers it: agent.h; the commands a group
 * runs: children.h.
 *
 * - Parameters: checks of count and type that fault with the method's
 *   usage line ("va.file.read: expected (int handle, int count)").
 * - Text: UTF-8 checks for what goes into XML.
 *
 * All functions that take an xmlrpc_env set a fault on failure and leave
 * it untouched on success.
 */
#ifndef VA_METHODS_H
#define VA_METHODS_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "agent.h"

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
/*
 * Parameter i as raw UTF-8 text without NUL (common/text.h: every
 * character the client sent, above U+FFFF and CR too); *out is malloc'd
 * (caller frees).
 */
void va_param_string(xmlrpc_env *env, xmlrpc_value *params, int i,
		     const char *usage, char **out, size_t *len);
/* An int when it fits in 32 bits, else an i8 (for counters like serials). */
xmlrpc_value *va_int_value(xmlrpc_env *env, int64_t v);


/*
 * The PRETTY_NAME of an os-release file (text, len bytes), with shell
 * quoting ('..', "..", backslash escapes) undone; a malloc'd string, or
 * NULL when absent, empty or malformed.  In info.c; declared here for
 * the tests.
 */
char *va_os_release_pretty_name(const char *text, size_t len);

#endif
