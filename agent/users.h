/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * users.h - the group "users" (users.c): va.users and the user.login and
 * user.logout events.  What is here is for the tests.
 */
#ifndef VA_AGENT_USERS_H
#define VA_AGENT_USERS_H

#include <stddef.h>

#include <xmlrpc-c/base.h>

/* utmp is read up to this size (2730 records of 384 bytes). */
#define VA_USERS_MAX_BYTES (1024u * 1024)

/*
 * The logged-in users of a utmp file's bytes (whole records only; a
 * torn last record is ignored): an array of {user, line, host,
 * login_time, pid}.  NULL with a fault (out of memory).
 */
xmlrpc_value *va_users_parse(xmlrpc_env *env, const void *utmp, size_t len);

#endif
