/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * groups.h - the guest agent's method groups, as the core sees them: one
 * descriptor each (agent.h has the contract), and the table of them that
 * va-agent (main.c) and the tests give the core.  What a group offers
 * besides its methods is in its own header (clipboard.h, file.h).
 */
#ifndef VA_AGENT_GROUPS_H
#define VA_AGENT_GROUPS_H

#include <stddef.h>

#include "agent.h"

extern const struct va_method_group va_group_info;      /* info.c */
extern const struct va_method_group va_group_file;      /* file.c */
extern const struct va_method_group va_group_clipboard; /* clipboard.c */
extern const struct va_method_group va_group_dmesg;     /* dmesg.c */
extern const struct va_method_group va_group_shutdown;  /* shutdown.c */
extern const struct va_method_group va_group_events;    /* events.c (guest events, events.h) */
extern const struct va_method_group va_group_net;       /* net.c */
extern const struct va_method_group va_group_time;      /* clock.c */
extern const struct va_method_group va_group_os;        /* os.c */
extern const struct va_method_group va_group_users;     /* users.c */
extern const struct va_method_group va_group_fs;        /* fs.c */
extern const struct va_method_group va_group_freeze;    /* freeze.c */
extern const struct va_method_group va_group_cpu;       /* cpu.c */
extern const struct va_method_group va_group_oom;       /* oom.c (events only) */
extern const struct va_method_group va_group_fswatch;   /* fs-watch.c (events only) */
extern const struct va_method_group va_group_exec;      /* exec.c (exec.h) */
extern const struct va_method_group va_group_accounts;  /* accounts.c */

/* Every group of va-agent, in the order their interceptors run (groups.c). */
extern const struct va_method_group *const va_agent_groups[];
extern const size_t va_agent_ngroups;

#endif
