/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oom.c - the group "oom": no methods; with --events oom, the event
 * "oom" each time the kernel's OOM killer kills a process, read from
 * the kernel log as it is written (/dev/kmsg, from its end at start: no
 * old records), not by polling.
 *
 * A record is "PRI,SEQ,TIMESTAMP,FLAGS;MESSAGE" (Documentation/ABI/
 * testing/dev-kmsg); the killer writes "Out of memory: Killed process
 * PID (NAME) total-vm:...", or "Memory cgroup out of memory: Killed
 * process ..." for a cgroup's limit.  At most RECORDS_PER_TURN records
 * are read per turn of the loop; records the kernel overwrote before
 * they were read (EPIPE) are skipped.
 *
 * The event's details: pid, process (the name, as methods.h says for
 * guest text), cgroup (a memory cgroup's limit, not the whole guest),
 * message (the record's text), kernel_time_us.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "oom.h"

#define RECORDS_PER_TURN 64
/* A record is at most 8 KiB (CONSOLE_EXT_LOG_MAX) in the kernels we know. */
#define RECORD_MAX 8192

struct oom {
	struct va_agent *a;
	int fd;
	char *buf;
};

/* A decimal number at p, not past end: its digits' end, or p when none. */
static const char *
number(const char *p, const char *end, unsigned long long *v)
{
	*v = 0;
	while (p < end && *p >= '0' && *p <= '9' && *v < (1ull << 58))
		*v = *v * 10 + (unsigned long long)(*p++ - '0');
	return p;
}

int
va_oom_parse(const char *rec, size_t len, struct va_oom_kill *k)
{
	static const char killed[] = "Killed process ";
	const char *semi = memchr(rec, ';', len);
	unsigned long long ts = 0;

	memset(k, 0, sizeof(*k));
	if (!semi)
		return 0;
	/* PRI,SEQ,TIMESTAMP,...; */
	const char *p = memchr(rec, ',', (size_t)(semi - rec));
	if (p)
		p = memchr(p + 1, ',', (size_t)(semi - p - 1));
	if (p)
		number(p + 1, semi, &ts);
	const char *msg = semi + 1, *end = rec + len;
	const char *nl = memchr(msg, '\n', (size_t)(end - msg));
	if (nl)
		end = nl; /* continuation lines (" KEY=VALUE") follow */
	size_t mlen = (size_t)(end - msg);
	const char *kp = NULL;
	for (const char *q = msg; q + sizeof(killed) - 1 <= end; q++)
		if (memcmp(q, killed, sizeof(killed) - 1) == 0) {
			kp = q + sizeof(killed) - 1;
			break;
		}
	if (!kp || !(mlen >= 14 && (memmem(msg, mlen, "out of memory", 13) ||
				    memmem(msg, mlen, "Out of memory", 13))))
		return 0;
	unsigned long long pid;
	const char *e = number(kp, end, &pid);
	if (e == kp || pid == 0 || pid > INT32_MAX || end - e < 2 || e[0] != ' ' || e[1] != '(')
		return 0;
	const char *name = e + 2;
	/* The name may hold ") " itself: take the last ')' before " total-vm" or the end. */
	const char *close = NULL;
	for (const char *q = name; q < end; q++)
		if (*q == ')')
			close = q;
	if (!close)
		return 0;
	k->pid = (int)pid;
	k->name = name;
	k->name_len = (size_t)(close - name);
	k->message = msg;
	k->message_len = mlen;
	k->cgroup = memmem(msg, mlen, "Memory cgroup out of memory", 27) != NULL;
	k->kernel_time_us = ts;
	return 1;
}

static void
send_kill(struct oom *o, const struct va_oom_kill *k)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *d = xmlrpc_struct_new(&env);
	va_set_int(&env, d, "pid", k->pid);
	va_set_text(&env, d, "process", k->name, k->name_len);
	va_set_bool(&env, d, "cgroup", k->cgroup);
	va_set_text(&env, d, "message", k->message, k->message_len);
	va_set_i8(&env, d, "kernel_time_us", (int64_t)k->kernel_time_us);
	if (!env.fault_occurred) {
		va_log_warnx("the OOM killer killed process %d", k->pid);
		va_event(o->a, "oom", d);
	}
	if (d)
		xmlrpc_DECREF(d);
	xmlrpc_env_clean(&env);
}

static void
on_kmsg(void *opaque, int fd, unsigned revents)
{
	struct oom *o = opaque;

	(void)revents;
	for (int i = 0; i < RECORDS_PER_TURN; i++) {
		/* One read, one record. */
		ssize_t n = read(fd, o->buf, RECORD_MAX);
		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue; /* EPIPE: records lost; the next read goes on */
		if (n <= 0)
			return;
		struct va_oom_kill k;
		if (va_oom_parse(o->buf, (size_t)n, &k))
			send_kill(o, &k);
	}
}

static int
oom_init(struct va_agent *a, void **state)
{
	struct oom *o = calloc(1, sizeof(*o));

	if (!o)
		return -1;
	o->a = a;
	o->fd = -1;
	*state = o;
	if (!(va_agent_config(a)->events & VA_EVENTS_OOM))
		return 0;
	o->buf = malloc(RECORD_MAX);
	if (!o->buf)
		return -1;
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		va_log_warnx("oom events: /dev/kmsg: %s; no oom events", strerror(errno));
		return 0;
	}
	/* From now on: what the log holds already is history. */
	lseek(fd, 0, SEEK_END);
	if (va_loop_fd_set(va_agent_loop(a), fd, POLLIN, on_kmsg, o) < 0) {
		close(fd);
		return -1;
	}
	o->fd = fd;
	return 0;
}

static void
oom_cleanup(void *state)
{
	struct oom *o = state;

	if (o->fd >= 0) {
		va_loop_fd_clear(va_agent_loop(o->a), o->fd);
		close(o->fd);
	}
	free(o->buf);
	free(o);
}

const struct va_method_group va_group_oom = {
	.name = "oom",
	.init = oom_init,
	.cleanup = oom_cleanup,
};
