/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.h - HTTP Basic authentication for va-proxy's TCP listeners.
 *
 * The password is a secret kept in a file (--auth-file).  When the file
 * is missing it is created with 32 random hex digits and mode 0600 (its
 * directory with mode 0755 when that is missing too).  A file that group
 * or others may access is refused: whoever can read it can shut the
 * guests down and read their files.  Any user name is accepted.
 */
#ifndef VA_PROXY_AUTH_H
#define VA_PROXY_AUTH_H

#include <stddef.h>

/* The secret file's rules (VA_PROXY_MAX_SECRET...). */
#include "contract.h"

/*
 * Reads (or creates) the secret in path.  Returns 0 with *secret
 * malloc'ed (the caller frees it), or -1 with a message in err.
 */
int va_auth_load(const char *path, char **secret, char *err, size_t errlen);

/*
 * Checks an Authorization header value ("Basic BASE64(user:password)";
 * NULL when absent) against secret, in time that does not depend on
 * where the password differs.  Returns 1 when it matches, 0 otherwise,
 * with the reason in why ("no credentials", "wrong password", ...).
 */
int va_auth_check(const char *authorization, const char *secret, const char **why);

#endif
