/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpu.c - the group "cpu": va.cpu.list, va.cpu.set and va.stats.
 *
 * CPUs are sysfs's (/sys/devices/system/cpu: possible, present, online,
 * cpuN/online).  va.cpu.set changes the guest: it writes cpuN/online on a
 * thread of the group's jobs (a CPU going offline migrates its tasks and
 * interrupts, which takes a while, more under TCG); on by default,
 * listed in docs/METHODS.md among the methods that change the guest.
 * cpu0 is never touched: on x86 it usually cannot go offline, and a
 * guest without it is one nobody tested.
 *
 * va.stats reads /proc/loadavg, /proc/uptime, /proc/stat, /proc/meminfo
 * and /proc/diskstats, each up to VA_STATS_FILE_MAX bytes, on the loop
 * (procfs answers from memory).  CPU times are in milliseconds (from the
 * kernel's clock ticks), I/O in bytes (sectors of 512 bytes).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR            wrong parameters
 *   XMLRPC_INDEX_ERROR           no such CPU
 *   XMLRPC_REQUEST_REFUSED_ERROR cpu0, or a CPU that cannot be hot-plugged
 *   XMLRPC_INTERNAL_ERROR        sysfs or procfs cannot be read, the write
 *                                of cpuN/online failed (EBUSY: the last
 *                                online CPU)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "async.h"
#include "cpu.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

#define CPU_DIR "/sys/devices/system/cpu"
#define LIST_MAX 65536

struct cpus {
	struct va_agent *a;
	struct va_jobs *jobs;
};

/* ---- CPU lists --------------------------------------------------------------------- */

int
va_cpu_list_parse(const char *text, unsigned char *set)
{
	const char *p = text;
	int n = 0;

	memset(set, 0, VA_CPU_MAX);
	while (*p && *p != '\n') {
		char *end;
		errno = 0;
		unsigned long a = strtoul(p, &end, 10), b;
		if (end == p || errno || *p == '-' || *p == '+')
			return -1;
		p = end;
		b = a;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				return -1;
			b = strtoul(p, &end, 10);
			if (end == p || errno || b < a)
				return -1;
			p = end;
		}
		for (unsigned long c = a; c <= b && c < VA_CPU_MAX; c++)
			if (!set[c]) {
				set[c] = 1;
				n++;
			}
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -1;
	}
	return n;
}

/* Reads CPU_DIR/name as a list into set; the count, or -1 with a fault. */
static int
read_list(xmlrpc_env *env, const char *method, const char *name, unsigned char *set)
{
	char path[128];
	snprintf(path, sizeof(path), CPU_DIR "/%s", name);
	char *text = va_read_file(path, LIST_MAX, NULL, NULL);
	int n = text ? va_cpu_list_parse(text, set) : -1;
	if (n < 0)
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: %s: %s", method, path,
		    text ? "not a CPU list" : strerror(errno));
	free(text);
	return n;
}

static int
can_offline(unsigned cpu)
{
	char path[128];
	snprintf(path, sizeof(path), CPU_DIR "/cpu%u/online", cpu);
	return cpu != 0 && access(path, F_OK) == 0;
}

static xmlrpc_value *
method_cpu_list(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	unsigned char *present = NULL, *online = NULL;
	xmlrpc_value *arr = NULL;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.cpu.list") < 0)
		return NULL;
	present = malloc(VA_CPU_MAX);
	online = malloc(VA_CPU_MAX);
	if (!present || !online) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.cpu.list: out of memory");
		goto out;
	}
	if (read_list(env, "va.cpu.list", "present", present) < 0 ||
	    read_list(env, "va.cpu.list", "online", online) < 0)
		goto out;
	arr = xmlrpc_array_new(env);
	for (unsigned c = 0; c < VA_CPU_MAX && !env->fault_occurred; c++) {
		if (!present[c])
			continue;
		xmlrpc_value *st = xmlrpc_struct_new(env);
		va_set_int(env, st, "cpu", c);
		va_set_bool(env, st, "online", online[c]);
		va_set_bool(env, st, "can_offline", can_offline(c));
		va_append(env, arr, st);
	}
out:
	free(present);
	free(online);
	return va_result(env, arr);
}

/* ---- va.cpu.set ------------------------------------------------------------------------ */

struct set_job {
	unsigned cpu;
	int online, was, err;
};

static void *
set_prepare(xmlrpc_env *env, void *state, xmlrpc_value *params)
{
	static const char usage[] = "va.cpu.set: expected (int cpu, boolean online)";
	int64_t cpu = -1;
	xmlrpc_bool on = 0;
	unsigned char *online = NULL;
	char path[128];

	(void)state;
	if (va_params_count(env, params, 2, 2, usage) < 0)
		return NULL;
	va_param_int64(env, params, 0, usage, &cpu);
	xmlrpc_value *b = env->fault_occurred ? NULL :
		va_param_typed(env, params, 1, usage, XMLRPC_TYPE_BOOL, XMLRPC_TYPE_BOOL);
	if (!b)
		return NULL;
	xmlrpc_read_bool(env, b, &on);
	xmlrpc_DECREF(b);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.cpu.set %" PRId64 " %s", cpu, on ? "online" : "offline");
	if (cpu == 0) {
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "va.cpu.set: cpu0 is never changed by the agent");
		return NULL;
	}
	snprintf(path, sizeof(path), CPU_DIR "/cpu%" PRId64, cpu);
	if (cpu < 0 || cpu >= VA_CPU_MAX || access(path, F_OK) < 0) {
		va_fault(env, XMLRPC_INDEX_ERROR, "va.cpu.set: no cpu%" PRId64,
		    cpu);
		return NULL;
	}
	if (!can_offline((unsigned)cpu)) {
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "va.cpu.set: cpu%" PRId64 " cannot be hot-plugged (no online file)", cpu);
		return NULL;
	}
	struct set_job *j = calloc(1, sizeof(*j));
	online = malloc(VA_CPU_MAX);
	if (!j || !online) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.cpu.set: out of memory");
		free(j);
		free(online);
		return NULL;
	}
	if (read_list(env, "va.cpu.set", "online", online) < 0) {
		free(j);
		free(online);
		return NULL;
	}
	j->cpu = (unsigned)cpu;
	j->online = on != 0;
	j->was = online[cpu];
	free(online);
	return j;
}

static void
set_work(void *opaque)
{
	struct set_job *j = opaque;
	char path[128];

	if (j->was == j->online)
		return;
	snprintf(path, sizeof(path), CPU_DIR "/cpu%u/online", j->cpu);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		j->err = errno;
		return;
	}
	ssize_t w;
	do
		w = write(fd, j->online ? "1" : "0", 1);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		j->err = errno;
	close(fd);
}

static xmlrpc_value *
set_finish(xmlrpc_env *env, void *opaque)
{
	struct set_job *j = opaque;

	if (j->err) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.cpu.set: cpu%u %s: %s", j->cpu, j->online ? "online" : "offline",
		    j->err == EBUSY && !j->online ? "Device or resource busy (the last online CPU?)" :
		    strerror(j->err));
		return NULL;
	}
	va_log_info("va.cpu.set: cpu%u is %s%s", j->cpu, j->online ? "online" : "offline",
		    j->was == j->online ? " (it was already)" : "");
	return xmlrpc_build_value(env, "{s:i,s:b,s:b}", "cpu", (int)j->cpu, "online",
				  (xmlrpc_bool)j->online, "changed", (xmlrpc_bool)(j->was != j->online));
}

static const struct va_async_method cpu_set = {
	.name = "va.cpu.set",
	.prepare = set_prepare,
	.work = set_work,
	.finish = set_finish,
	.free = free,
};

static xmlrpc_value *
method_cpu_set(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	(void)call_info;
	return va_async_inline(env, &cpu_set, va_group_state(server_info), params);
}

/* ---- va.stats ---------------------------------------------------------------------------- */

static const char *const cpu_fields[] = {
	"user_ms", "nice_ms", "system_ms", "idle_ms", "iowait_ms", "irq_ms", "softirq_ms", "steal_ms",
};

/* One "cpu..." line's times (after the name) as a struct. */
static xmlrpc_value *
cpu_times(xmlrpc_env *env, const char *p, long ticks_per_s)
{
	xmlrpc_value *st = xmlrpc_struct_new(env);
	for (size_t i = 0; i < sizeof(cpu_fields) / sizeof(cpu_fields[0]); i++) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			v = 0; /* an older kernel's shorter line */
		p = end;
		va_set_i8(env, st, cpu_fields[i], (int64_t)(v * 1000 / (unsigned long long)ticks_per_s));
	}
	return st;
}

void
va_stats_cpu(xmlrpc_env *env, xmlrpc_value *st, const char *text, long ticks_per_s)
{
	xmlrpc_value *cpus = xmlrpc_array_new(env);
	const char *p = text;
	size_t ncpus = 0;

	if (ticks_per_s <= 0)
		ticks_per_s = 100;
	while (p && *p && !env->fault_occurred) {
		const char *eol = strchr(p, '\n');
		unsigned cpu;
		unsigned long long v;
		int n = 0;
		if (strncmp(p, "cpu ", 4) == 0) {
			va_set_value(env, st, "total", cpu_times(env, p + 4, ticks_per_s));
		} else if (sscanf(p, "cpu%u %n", &cpu, &n) == 1 && n > 0 && ncpus < VA_CPU_MAX) {
			xmlrpc_value *c = cpu_times(env, p + n, ticks_per_s);
			va_set_int(env, c, "cpu", cpu);
			va_append(env, cpus, c);
			ncpus++;
		} else if (sscanf(p, "ctxt %llu", &v) == 1) {
			va_set_i8(env, st, "context_switches", (int64_t)v);
		} else if (sscanf(p, "processes %llu", &v) == 1) {
			va_set_i8(env, st, "forks", (int64_t)v);
		} else if (sscanf(p, "procs_blocked %llu", &v) == 1) {
			va_set_i8(env, st, "procs_blocked", (int64_t)v);
		} else if (sscanf(p, "btime %llu", &v) == 1) {
			va_set_i8(env, st, "boot_time", (int64_t)v);
		}
		p = eol ? eol + 1 : NULL;
	}
	va_set_value(env, st, "cpus", cpus);
}

void
va_stats_memory(xmlrpc_env *env, xmlrpc_value *st, const char *text)
{
	static const struct {
		const char *key, *member;
	} keys[] = {
		{ "MemTotal:", "total_bytes" }, { "MemFree:", "free_bytes" },
		{ "MemAvailable:", "available_bytes" }, { "Buffers:", "buffers_bytes" },
		{ "Cached:", "cached_bytes" }, { "Shmem:", "shared_bytes" },
		{ "SwapTotal:", "swap_total_bytes" }, { "SwapFree:", "swap_free_bytes" },
	};
	xmlrpc_value *m = xmlrpc_struct_new(env);
	const char *p = text;

	while (p && *p && !env->fault_occurred) {
		const char *eol = strchr(p, '\n');
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t kl = strlen(keys[i].key);
			unsigned long long kb;
			if (strncmp(p, keys[i].key, kl) == 0 && sscanf(p + kl, "%llu", &kb) == 1)
				va_set_i8(env, m, keys[i].member, (int64_t)(kb * 1024));
		}
		p = eol ? eol + 1 : NULL;
	}
	va_set_value(env, st, "memory", m);
}

void
va_stats_disks(xmlrpc_env *env, xmlrpc_value *st, const char *text)
{
	xmlrpc_value *arr = xmlrpc_array_new(env);
	const char *p = text;
	size_t n = 0;

	while (p && *p && !env->fault_occurred && n < VA_STATS_DISKS_MAX) {
		const char *eol = strchr(p, '\n');
		unsigned maj, min;
		char name[64];
		unsigned long long f[11];
		int got = sscanf(p, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
				 &maj, &min, name, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
				 &f[7], &f[8], &f[9], &f[10]);
		p = eol ? eol + 1 : NULL;
		if (got < 14)
			continue;
		/* Idle RAM disks and loop devices: noise. */
		if ((!strncmp(name, "ram", 3) || !strncmp(name, "loop", 4) || !strncmp(name, "zram", 4)) &&
		    f[0] == 0 && f[4] == 0)
			continue;
		xmlrpc_value *d = xmlrpc_struct_new(env);
		va_set_text_z(env, d, "name", name);
		va_set_i8(env, d, "reads", (int64_t)f[0]);
		va_set_i8(env, d, "read_bytes", (int64_t)(f[2] * 512));
		va_set_i8(env, d, "read_ms", (int64_t)f[3]);
		va_set_i8(env, d, "writes", (int64_t)f[4]);
		va_set_i8(env, d, "write_bytes", (int64_t)(f[6] * 512));
		va_set_i8(env, d, "write_ms", (int64_t)f[7]);
		va_set_i8(env, d, "in_progress", (int64_t)f[8]);
		va_set_i8(env, d, "io_ms", (int64_t)f[9]);
		va_append(env, arr, d);
		n++;
	}
	va_set_value(env, st, "disks", arr);
}

static xmlrpc_value *
method_stats(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char *const files[] = {
		"/proc/loadavg", "/proc/uptime", "/proc/stat", "/proc/meminfo", "/proc/diskstats",
	};
	char *text[5] = { NULL };
	xmlrpc_value *st = NULL;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.stats") < 0)
		return NULL;
	for (int i = 0; i < 5; i++) {
		text[i] = va_read_file(files[i], VA_STATS_FILE_MAX, NULL, NULL);
		if (!text[i]) {
			va_fault(env, XMLRPC_INTERNAL_ERROR, "va.stats: %s: %s",
			    files[i], strerror(errno));
			goto out;
		}
	}
	double l1 = 0, l5 = 0, l15 = 0, up = 0;
	unsigned running = 0, total = 0;
	sscanf(text[0], "%lf %lf %lf %u/%u", &l1, &l5, &l15, &running, &total);
	sscanf(text[1], "%lf", &up);
	st = xmlrpc_struct_new(env);
	va_set_value(env, st, "loadavg", xmlrpc_build_value(env, "(ddd)", l1, l5, l15));
	va_set_int(env, st, "procs_running", running);
	va_set_int(env, st, "procs_total", total);
	va_set_double(env, st, "uptime_s", up);
	if (!env->fault_occurred)
		va_stats_cpu(env, st, text[2], sysconf(_SC_CLK_TCK));
	if (!env->fault_occurred)
		va_stats_memory(env, st, text[3]);
	if (!env->fault_occurred)
		va_stats_disks(env, st, text[4]);
out:
	for (int i = 0; i < 5; i++)
		free(text[i]);
	return va_result(env, st);
}

static int
cpu_intercept(void *state, const struct va_call *call)
{
	struct cpus *c = state;

	if (strcmp(call->method, "va.cpu.set") == 0)
		return va_async_start(c->jobs, &cpu_set, c, call);
	return 0;
}

static int
cpu_init(struct va_agent *a, void **state)
{
	struct cpus *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	c->a = a;
	c->jobs = va_jobs_new(va_agent_loop(a), 2);
	return c->jobs ? 0 : -1;
}

static void
cpu_cleanup(void *state)
{
	struct cpus *c = state;
	va_jobs_free(c->jobs);
	free(c);
}

static const struct xmlrpc_method_info3 cpu_methods[] = {
	{
		.methodName = "va.cpu.list",
		.methodFunction = method_cpu_list,
		.signatureString = "A:",
		.help = "va.cpu.list() -> array of struct {cpu: int, online: boolean, "
			"can_offline: boolean}: the present CPUs (sysfs).",
	},
	{
		.methodName = "va.cpu.set",
		.methodFunction = method_cpu_set,
		.signatureString = "S:ib",
		.help = "va.cpu.set(int cpu, boolean online) -> struct {cpu, online, changed}. "
			"Changes the guest: takes a CPU offline or brings it online (sysfs); "
			"never cpu0.",
	},
	{
		.methodName = "va.stats",
		.methodFunction = method_stats,
		.signatureString = "S:",
		.help = "va.stats() -> struct {loadavg: [1, 5, 15 min], procs_running, "
			"procs_total, uptime_s, total and cpus: [{cpu, user_ms, nice_ms, system_ms, "
			"idle_ms, iowait_ms, irq_ms, softirq_ms, steal_ms}], context_switches, "
			"forks, procs_blocked, boot_time, memory: {total_bytes, free_bytes, "
			"available_bytes, buffers_bytes, cached_bytes, shared_bytes, "
			"swap_total_bytes, swap_free_bytes}, disks: [{name, reads, read_bytes, "
			"read_ms, writes, write_bytes, write_ms, in_progress, io_ms}]}.",
	},
};

const struct va_method_group va_group_cpu = {
	.name = "cpu",
	VA_GROUP_METHODS(cpu_methods),
	.init = cpu_init,
	.cleanup = cpu_cleanup,
	.intercept = cpu_intercept,
};
