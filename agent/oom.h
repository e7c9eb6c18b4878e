/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oom.h - the group "oom" (oom.c): the event "oom" from the kernel log.
 * What is here is its parser, for the tests.
 */
#ifndef VA_AGENT_OOM_H
#define VA_AGENT_OOM_H

#include <stddef.h>
#include <stdint.h>

/* What one OOM kill record says; the pointers point into the record. */
struct va_oom_kill {
	int pid;
	const char *name;      /* the killed process's name */
	size_t name_len;
	const char *message;   /* the record's first line */
	size_t message_len;
	int cgroup;            /* a memory cgroup's limit */
	uint64_t kernel_time_us;
};

/* Parses one /dev/kmsg record (len bytes): 1 and *k for an OOM kill, else 0. */
int va_oom_parse(const char *rec, size_t len, struct va_oom_kill *k);

#endif
