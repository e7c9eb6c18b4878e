/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * groups.c - the table of va-agent's method groups.  A new group is a
 * file with its descriptor, a line here and one in groups.h.
 */
#include "config.h"

#include "groups.h"

const struct va_method_group *const va_agent_groups[] = {
	&va_group_info,
	&va_group_file,
	&va_group_clipboard,
	&va_group_dmesg,
	&va_group_shutdown,
	&va_group_events,
	&va_group_net,
	&va_group_time,
	&va_group_os,
	&va_group_users,
	&va_group_fs,
	&va_group_freeze,
	&va_group_cpu,
	&va_group_oom,
	&va_group_fswatch,
	&va_group_exec,
	&va_group_accounts,
};

const size_t va_agent_ngroups = sizeof(va_agent_groups) / sizeof(va_agent_groups[0]);
