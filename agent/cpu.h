/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpu.h - the group "cpu" (cpu.c): va.cpu.list, va.cpu.set, va.stats.
 * What is here is for the tests: the parsers of the kernel's files,
 * which take their text (bounded by the caller) and never read past it.
 */
#ifndef VA_AGENT_CPU_H
#define VA_AGENT_CPU_H

#include <stddef.h>

#include <xmlrpc-c/base.h>

/* CPUs (of a possible/present/online list) considered, at most. */
#define VA_CPU_MAX 4096
/* A /proc file read for va.stats, at most. */
#define VA_STATS_FILE_MAX (1024u * 1024)
/* /proc/diskstats lines reported, at most. */
#define VA_STATS_DISKS_MAX 1024

/*
 * Parses a CPU list ("0-3,8,10-11\n") into set[0..VA_CPU_MAX) (1: in
 * the list).  Returns the number of CPUs in it, or -1 when malformed.
 */
int va_cpu_list_parse(const char *text, unsigned char *set);

/* /proc/stat's text -> st's "total" and "cpus" members (and a few counters). */
void va_stats_cpu(xmlrpc_env *env, xmlrpc_value *st, const char *text, long ticks_per_s);
/* /proc/meminfo's text -> st's "memory" member. */
void va_stats_memory(xmlrpc_env *env, xmlrpc_value *st, const char *text);
/* /proc/diskstats's text -> st's "disks" member. */
void va_stats_disks(xmlrpc_env *env, xmlrpc_value *st, const char *text);

#endif
