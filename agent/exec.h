/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * exec.h - the group "exec" (va.exec.*): commands run in the guest with
 * their output streamed to the host.  Opt-in: off unless --enable-exec
 * (exec = yes in va-agent.conf).  Shared by exec.c (the group, start,
 * kill, list, resize, the table and its sweep), exec-start.c (start)
 * and exec-io.c (read and write, answered later when they wait).
 *
 * A command is an entry of the group's table, from va.exec.start until
 * it is done (exited and both outputs at their end) and either a read
 * delivered its last bytes and its exit, or VA_EXEC_KEEP_S passed.  At
 * most VA_EXEC_MAX_RUNNING run at once and VA_EXEC_MAX_KEPT entries are
 * kept; more starts get a "busy" fault.  Every entry's process is a
 * struct va_proc (proc.h); the agent going away kills their groups.
 */
#ifndef VA_AGENT_EXEC_H
#define VA_AGENT_EXEC_H

#include <stdint.h>

#include "agent.h"
#include "proc.h"

/* A va.exec.read or va.exec.write that waits for its answer. */
struct exec_waiter {
	int active;
	va_session *s;
	uint64_t epoch;
	char *tag;
	va_loop_timer *timer;
};

struct exec_entry {
	struct exec_entry *next;
	struct va_execs *ex;
	int id;
	struct va_proc *p;
	char *prog;               /* the program's path, for list and the log */
	char *user;               /* NULL: the agent's own */
	int pty;
	uint64_t started_ms;
	uint64_t done_ms;         /* when exited with both outputs ended; 0 before */
	int exit_logged;
	int timed_out;
	va_loop_timer *timeout;
	int told_eof[2];          /* a read reported the end of the stream */
	int told_exit;            /* a read reported the exit */
	struct exec_waiter rd;
	size_t rd_max;
	struct exec_waiter wr;
	uint8_t *wr_data;         /* what the waiting write still has to queue */
	size_t wr_len, wr_off;
	int wr_close;
};

struct va_execs {
	struct va_agent *a;
	struct exec_entry *entries;
	int next_id;
};

/* exec.c */
/* The process of the entry opaque changed (proc.h's event); its timeout passed. */
void va_exec_on_proc(void *opaque, struct va_proc *p);
void va_exec_on_timeout(void *opaque);
/* Commands running, and entries kept (running or not). */
void va_exec_count(const struct va_execs *ex, unsigned *running, unsigned *kept);
struct exec_entry *va_exec_find(xmlrpc_env *env, struct va_execs *ex, int64_t id,
				const char *method);
/* Frees the entry (its process's group is killed when it still runs). */
void va_exec_entry_free(struct exec_entry *e);
/* 1 when the process exited and both outputs ended. */
int va_exec_done(const struct exec_entry *e);

/* exec-start.c */
xmlrpc_value *va_exec_method_start(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
				   void *call_info);

/* exec-io.c */
xmlrpc_value *va_exec_method_read(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
				  void *call_info);
xmlrpc_value *va_exec_method_write(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
				   void *call_info);
/* The group's interceptor: va.exec.read and va.exec.write, which may wait. */
int va_exec_intercept(void *state, const struct va_call *call);
/* The process of e changed: answer what waits. */
void va_exec_io_event(struct exec_entry *e);
/* Drops e's waiters without an answer (the entry goes). */
void va_exec_io_drop(struct exec_entry *e);

#endif
