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
/*
 * A method without parameters: logs the call (info level) and returns 0,
 * or -1 with the fault "METHOD: expected no parameters; got N ...".
 */
int va_params_none(xmlrpc_env *env, xmlrpc_value *params, const char *method);
/*
 * Parameter i as an array of at most max strings (text.h's value form
 * undone, no NUL): a new NULL-terminated array of malloc'd strings
 * (va_strings_free), *n of them; NULL with a fault.
 */
char **va_param_strings(xmlrpc_env *env, xmlrpc_value *params, int i, const char *usage,
			size_t max, size_t *n);
void va_strings_free(char **v);
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
 * Guest data (names, paths, user names) into results, whatever its bytes.
 * A string field KEY holds the text with every byte sequence that XML
 * cannot carry (invalid UTF-8, control characters other than tab, LF and
 * CR) replaced by U+FFFD; when anything was replaced, KEY_raw holds the
 * exact bytes in base64.  Characters above U+FFFF and CR travel exactly
 * (common/text.h).
 */
/* The lossy text value; *replaced (may be NULL) says whether U+FFFD went in. */
xmlrpc_value *va_text_value_lossy(xmlrpc_env *env, const char *s, size_t len, int *replaced);
/* st[key] = the text of s[0..len), and st[key_raw] when it was not exact. */
void va_set_text(xmlrpc_env *env, xmlrpc_value *st, const char *key, const char *s, size_t len);
/* The same for a NUL-terminated string (NULL: the member is left out). */
void va_set_text_z(xmlrpc_env *env, xmlrpc_value *st, const char *key, const char *s);
/*
 * Struct members; nothing is done when env holds a fault already (so a
 * run of them needs one check at the end).  va_set_value consumes v
 * (NULL is fine after a fault).
 */
void va_set_value(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_value *v);
void va_set_int(xmlrpc_env *env, xmlrpc_value *st, const char *key, int64_t v); /* int or i8 */
void va_set_i8(xmlrpc_env *env, xmlrpc_value *st, const char *key, int64_t v);  /* always i8 */
void va_set_bool(xmlrpc_env *env, xmlrpc_value *st, const char *key, int v);
void va_set_double(xmlrpc_env *env, xmlrpc_value *st, const char *key, double v);
/* v, or NULL (v dropped) when env holds a fault: a method's last line. */
xmlrpc_value *va_result(xmlrpc_env *env, xmlrpc_value *v);
/* Appends v to the array arr and drops the reference (NULL is fine after a fault). */
void va_append(xmlrpc_env *env, xmlrpc_value *arr, xmlrpc_value *v);

/*
 * Reads at most max bytes of the file at path (procfs, sysfs, /etc: small
 * files) into a new NUL-terminated buffer; *len (may be NULL) is the
 * length.  A longer file is cut at max with *cut set (may be NULL).
 * NULL with errno set.
 */
char *va_read_file(const char *path, size_t max, size_t *len, int *cut);

/*
 * The value of KEY in an os-release file (text, len bytes), with shell
 * quoting ('..', "..", backslash escapes) undone; the last assignment
 * wins.  A malloc'd string, or NULL when absent or malformed.  In info.c.
 */
char *va_os_release_value(const char *text, size_t len, const char *key);
/*
 * The PRETTY_NAME of an os-release file (text, len bytes), with shell
 * quoting ('..', "..", backslash escapes) undone; a malloc'd string, or
 * NULL when absent, empty or malformed.  In info.c; declared here for
 * the tests.
 */
char *va_os_release_pretty_name(const char *text, size_t len);

#endif
