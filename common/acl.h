/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * acl.h - the lists of RPCs a daemon allows or blocks (--allow-rpcs,
 * --block-rpcs), one syntax for va-agent and va-proxy.
 *
 * A list is names separated by commas and/or white space.  An entry is
 * an exact method name ("va.shutdown") or a prefix ending in ".*"
 * ("va.file.*": every method whose name starts with "va.file.").  Names
 * are letters, digits, '_', '-' and '.', at most VA_ACL_MAX_NAME bytes.
 * Anything else ("va.file*", "*", "va..x") is an error, and so is an
 * entry that names no method the daemon knows (its known() says), so
 * that a list never fails open by a typo.
 */
#ifndef VA_ACL_H
#define VA_ACL_H

#include <stddef.h>

#define VA_ACL_MAX_NAME 128
#define VA_ACL_MAX_ENTRIES 512

typedef struct va_acl va_acl;

/*
 * Whether name (an exact name, or a prefix "x.y." when prefix is set)
 * names at least one method the daemon knows.
 */
typedef int va_acl_known_fn(const char *name, int prefix, void *opaque);

/*
 * Parses list (NULL or empty: an empty list).  known may be NULL (every
 * well-formed name is accepted).  Returns the list, or NULL with a
 * message naming the bad entry in err (errlen bytes).
 */
va_acl *va_acl_parse(const char *list, va_acl_known_fn *known, void *opaque, char *err,
		     size_t errlen);
void va_acl_free(va_acl *acl);
/* Number of entries. */
size_t va_acl_count(const va_acl *acl);
/* Whether an entry matches name. */
int va_acl_match(const va_acl *acl, const char *name);
/* The entries, ", "-separated, into out (outlen bytes; cut with "..."): for the log. */
void va_acl_describe(const va_acl *acl, char *out, size_t outlen);

/*
 * The common known() for a table of method names (NULL-terminated):
 * opaque is that table.
 */
int va_acl_known_in_table(const char *name, int prefix, void *opaque);

#endif
