/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent.h - the guest agent's core (core.c) and the contract between it
 * and the method groups.
 *
 * The shape of va-agent:
 *   main.c      the lifecycle: options and config (options.c), daemonizing,
 *               signals, SIGHUP reload, the channel, the control socket
 *               (control.c); it builds one core from the table of method
 *               groups (groups.c) and runs the loop.
 *   core.c      struct va_agent: the session with the host, the registry,
 *               the groups and their state, the services below, and the
 *               dispatch of every request the host sends.
 *   info.c, file*.c (file.h), clipboard*.c (clipboard.h), dmesg.c, shutdown.c,
 *   and the guest's operations: net.c, clock.c, os.c, users.c, fs.c,
 *   freeze.c, cpu.c; events.c, fs-watch.c, oom.c (guest events, events.h)
 *               the method groups: each is one struct va_method_group and
 *               keeps its state in a struct of its own that the core holds
 *               (no file-scope mutable state); what one offers others (the
 *               clipboard to control.c) goes through the agent.
 *   methods.c   parameter and UTF-8 helpers of the groups; children.c the
 *               commands they run.
 * Adding a group: a new file with its descriptor, and its line in the
 * table (groups.c, groups.h) and in Makefile.am.
 *
 * Dispatch of a request (one step for every group): the gate
 * (xmlgate.h) refuses what xmlrpc-c must not parse; the core reads the
 * method name once (va_rpc_method_name) and applies the refusals once
 * (system.multicall, --allow-rpcs / --block-rpcs / --enable-rpcs, then
 * the gate of va_agent_set_gate: frozen filesystems): a refused call is
 * answered with the fault at once.  An allowed call is offered to each
 * group's interceptor, in table order; the first that takes it answers
 * it; otherwise the registry runs it (va_rpc_serve), or, for a call of
 * a group's method without parameters in the shape clients send, the
 * method is called at once with the registry's answer, byte for byte
 * (va_rpc_serve_method: no XML parser for a va.ping).  A body whose name
 * is not in the exact shape va_rpc_method_name reads goes to the
 * registry as it is, whose parser says what is wrong.  The registry's
 * preinvoke applies the same refusals to every method it runs, so
 * nothing inside the registry bypasses them either.
 *
 * A binary request (protocol 2: its body is not XML, session.h) names an
 * operation in its parameter "op" (filestream.h).  The core finds it in
 * the groups' tables of binary operations and applies the RPC lists to
 * the XML-RPC methods the operation stands for (each must be enabled,
 * with the same refusals and log lines as a call of it); a refused or
 * unknown operation is answered with an error (filestream.h:
 * VA_FS_CONTENT_ERROR, VA_FS_ERROR "disabled" or "bad-request") at once,
 * an allowed one goes to its handler.  Binary bodies never reach the
 * XML gate or the registry.
 *
 * Everything here runs on the loop thread.  Handlers must not block for
 * long (file I/O on regular disk files is fine in chunks, a whole-file
 * checksum is hashed in slices between other calls, commands are run
 * without waiting, see children.h, or with their output read on the
 * loop, see proc.h: va.exec.*, the clipboard's paste command).
 */
#ifndef VA_AGENT_H
#define VA_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "agent-limits.h"
#include "channel.h"
#include "loop.h"
#include "session.h"

#define VA_AGENT_PROTOCOL 1
/*
 * Deferred functions (va_agent_defer) waiting at once; more are refused.
 * The groups keep far fewer (va.shutdown at most 4): this only bounds a
 * mistake.
 */
#define VA_AGENT_MAX_DEFERRED 64

struct va_agent_config {
	char *channel;          /* channel spec */
	char *control;          /* control socket spec (unix:PATH), "" = none */
	char *config_file;
	int daemonize;
	char *pidfile;
	int log_level;
	char *allow_rpcs;       /* RPC list (common/acl.h) or NULL */
	char *block_rpcs;       /* RPC list or NULL */
	char *enable_rpcs;      /* RPC list of opt-in methods to enable, or NULL */
	char **file_roots;      /* NULL-terminated real paths, or NULL = all allowed */
	size_t nfile_roots;
	char *shutdown_command; /* run with /bin/sh -c; MODE and DELAY in the environment */
	size_t max_frame;
	char *clip_copy_command;  /* desktop bridge: command fed the text on stdin */
	char *clip_paste_command; /* desktop bridge: command printing the text */
	unsigned freeze_timeout;  /* seconds frozen before the watchdog thaws; 0: never */
	char *freeze_state;       /* the freeze state file (on tmpfs), NULL: none */
	unsigned fs_full_threshold; /* percent for fs.full events; 0: none */
	unsigned events;          /* VA_EVENTS_* sources of guest events; 0: none */
	/* va.exec.*: the programs it may run (NULL-terminated paths), or NULL = any. */
	char **exec_allow;
	/* --enable-exec / --enable-accounts (merged into enable_rpcs by options.c). */
	int enable_exec;
	int enable_accounts;
};

/* The sources of guest events (host.event), --events. */
#define VA_EVENTS_NET 1u   /* net.link.*, net.address.* (net.c) */
#define VA_EVENTS_FS 2u    /* fs.full, fs.full.cleared (fs-watch.c) */
#define VA_EVENTS_OOM 4u   /* oom (oom.c) */
#define VA_EVENTS_USERS 8u /* user.login, user.logout (users.c) */
#define VA_EVENTS_ALL 15u

struct va_agent;

/* ---- method groups ---------------------------------------------------- */

/*
 * A call the core offers to the groups' interceptors: read, checked by
 * the gate, its method name read and allowed by the RPC lists.  Every
 * pointer is valid only during the interceptor's call (copy the tag to
 * answer later).  Answer with va_rpc_reply(s, epoch, tag, ...) (serve.h),
 * now or later; an answer after a reset of the session is dropped there.
 */
struct va_call {
	const char *method;
	const uint8_t *body; /* the whole XML-RPC call */
	size_t len;
	va_session *s;
	uint64_t epoch;
	const char *tag;
};

/* One group in one agent: what the group's methods get as serverInfo. */
struct va_group;

struct va_method_group {
	const char *name;
	/*
	 * The group's methods, registered with serverInfo set to the
	 * group's struct va_group (the table's own serverInfo is ignored);
	 * VA_GROUP_METHODS(table) sets both from an array.
	 */
	const struct xmlrpc_method_info3 *methods;
	size_t nmethods;
	/*
	 * Optional: the group's methods that change the guest in ways an
	 * administrator must ask for (NULL-terminated names).  They are off,
	 * absent from va.capabilities and answered with a fault naming how
	 * to turn them on, unless --enable-rpcs (enable-rpcs in the config)
	 * names them; opt_in_how is that advice ("--enable-rpcs va.time.set"
	 * when NULL).
	 */
	const char *const *opt_in;
	const char *opt_in_how;
	/*
	 * Optional: makes *state (what the group's functions below get, and
	 * its methods through va_group_state); 0, or -1 (out of memory): the
	 * agent is not made.  NULL state is fine.
	 */
	int (*init)(struct va_agent *a, void **state);
	/* Optional: frees state (the agent is going; the session is gone). */
	void (*cleanup)(void *state);
	/*
	 * Optional: offered every allowed call before the registry.  Returns
	 * 1 when it took the call (it answers it, now or later), or 0 having
	 * done nothing (no side effect, no reply): the next group, then the
	 * registry, get it.  Returns 0 fast for a method it does not know.
	 */
	int (*intercept)(void *state, const struct va_call *call);
	/*
	 * Optional: the group's timed housekeeping at now_ms (the core's
	 * clock): returns when it wants to run next, UINT64_MAX for never.
	 * The core runs it when va_agent_sweep_at() asked.
	 */
	uint64_t (*sweep)(void *state, uint64_t now_ms);
	/* Optional: the group's binary operations (see the top). */
	const struct va_binary_op *binary_ops;
	size_t nbinary_ops;
};

/*
 * A binary request the core hands to a group's operation: its parameters
 * read and its methods allowed.  req is the handler's (va_frame_free it,
 * or take its body); the other pointers are valid only during the call
 * (copy the tag to answer later).  Answer with va_session_reply_msg, or
 * va_agent_reply_error, now or later.
 */
struct va_binary_call {
	const char *op;
	struct va_frame *req;
	va_session *s;
	uint64_t epoch;
	const char *tag;
};

/* One binary operation of a group (struct va_method_group.binary_ops). */
struct va_binary_op {
	const char *op;               /* the value of the parameter "op" */
	/*
	 * The XML-RPC methods it stands for, NULL-terminated: each must be
	 * enabled by the RPC lists (an empty list: always allowed).
	 */
	const char *const *methods;
	void (*handler)(void *state, const struct va_binary_call *call);
};

#define VA_GROUP_METHODS(table) .methods = (table), .nmethods = sizeof(table) / sizeof((table)[0])

struct va_agent *va_group_agent(const struct va_group *g);
void *va_group_state(const struct va_group *g);
/* The state of group desc in a (NULL when the agent has no such group). */
void *va_agent_group_state(struct va_agent *a, const struct va_method_group *desc);

/* ---- services for the groups --------------------------------------------- */

/* The configuration; the daemon may change its reloadable fields between two calls. */
const struct va_agent_config *va_agent_config(struct va_agent *a);
va_loop *va_agent_loop(struct va_agent *a);
/*
 * Is the method enabled: on (an opt-in method only when --enable-rpcs
 * names it), named by --allow-rpcs when there is an allow list, and not
 * named by --block-rpcs?
 */
int va_agent_method_enabled(struct va_agent *a, const char *name);
/*
 * Parses the RPC lists of cfg against the agent's methods (common/acl.h:
 * bad syntax and names of no method are errors) and, when all three are
 * good, makes them the agent's (logged).  Returns 0, or -1 with the
 * reason in err: the lists in force stay.  va_agent_new() does it for
 * the first config; the daemon again at SIGHUP.
 */
int va_agent_set_lists(struct va_agent *a, const struct va_agent_config *cfg, char *err,
		       size_t errlen);
/*
 * A new array of the names of the groups' methods and of the xmlrpc-c
 * system.* methods for which va_agent_method_enabled() is true (what
 * va.capabilities and host.hello list).  The caller owns the reference;
 * NULL with env set on failure.
 */
xmlrpc_value *va_agent_methods_enabled(xmlrpc_env *env, struct va_agent *a);
/*
 * Calls a host.* method, without waiting; a failure is logged.  params is
 * an array (the reference is not taken: the caller keeps its own).
 */
void va_agent_call_host(struct va_agent *a, const char *method, xmlrpc_value *params);
/*
 * The same with params built by xmlrpc_build_value(fmt, ...); fmt makes
 * an array ("(ss)", "(s#)").  A failure to build them is logged.
 */
void va_agent_call_hostf(struct va_agent *a, const char *method, const char *fmt, ...);
/*
 * Runs fn(arg) from the loop after delay_ms (after the current reply is
 * sent).  What fn defers, even with delay 0, runs at a later turn of the
 * loop, after it has polled for I/O: a long job can go on in slices.
 * Returns 0, or -1 (out of memory, or VA_AGENT_MAX_DEFERRED wait).  What
 * has not run when the agent is freed is dropped, not run.
 */
int va_agent_defer(struct va_agent *a, unsigned delay_ms, void (*fn)(void *arg), void *arg);
/*
 * The gate: while one is set, the core's refusal step (the one place
 * every call passes, before the interceptors and inside the registry's
 * preinvoke, like the RPC lists) asks fn about each method the lists
 * allow; fn returns 0 to let it through, or 1 having set the fault in
 * env.  One gate at a time (the freeze group's, freeze.c); NULL removes
 * it.  fn runs on the loop thread and must not block.
 */
typedef int va_agent_gate_fn(void *arg, const char *method, xmlrpc_env *env);
void va_agent_set_gate(struct va_agent *a, va_agent_gate_fn *fn, void *arg);

/*
 * Answers a binary request with a failure: content type
 * VA_FS_CONTENT_ERROR, parameter VA_FS_ERROR = kind (a VA_FS_E_* word),
 * the message printf(fmt, ...) as the body (logged as a warning).  An
 * answer to a request of an earlier session is dropped.
 */
void va_agent_reply_error(va_session *s, uint64_t epoch, const char *tag, const char *kind,
			  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Asks for the groups' sweeps at due_ms at the latest. */
void va_agent_sweep_at(struct va_agent *a, uint64_t due_ms);
/* The core's clock: monotonic ms (va_now_ms unless a test set another). */
uint64_t va_agent_now_ms(struct va_agent *a);
/* The commands the groups run (children.h); reaped by the daemon on SIGCHLD. */
struct va_children;
struct va_children *va_agent_children(struct va_agent *a);

/* ---- the core's life -------------------------------------------------------- */

/*
 * Makes an agent on loop with the groups of the table (in that order:
 * the order of their interceptors): their state, the registry, a session
 * with the host (not connected yet).  cfg stays the caller's and must
 * outlive the agent.  NULL with a message in err on failure.
 */
struct va_agent *va_agent_new(va_loop *loop, const struct va_agent_config *cfg,
			      const struct va_method_group *const *groups, size_t ngroups,
			      char *err, size_t errlen);
/*
 * Serves the session over ch (a link on the loop, link.h).  The agent
 * owns ch from here, even when this fails (-1, out of memory).
 */
int va_agent_connect(struct va_agent *a, va_channel *ch);
/*
 * SIGTERM: tells the host (host.shutdown_notice) when a session is up,
 * and runs the loop until that is answered and the output written, at
 * most STOP_GRACE_MS (core.c).  No host.hello is sent from here on.
 */
void va_agent_stop(struct va_agent *a);
/*
 * Frees the link, the session, the channel, the deferred functions not
 * run, the groups' state (their cleanup, in table order) and the
 * registry.  Not the loop.  NULL is fine.
 */
void va_agent_free(struct va_agent *a);

/* ---- for the tests (test-agent-methods.c), which build a core without a channel ---- */

xmlrpc_registry *va_agent_registry(struct va_agent *a);
va_session *va_agent_session(struct va_agent *a);
/*
 * A new registry of the groups' methods with the core's preinvoke, as
 * va_agent_new builds its own (the caller frees it); NULL with env set.
 */
xmlrpc_registry *va_agent_registry_build(xmlrpc_env *env, struct va_agent *a);
/* The clock of va_agent_now_ms (NULL: va_now_ms again). */
void va_agent_set_clock(struct va_agent *a, uint64_t (*now)(void *arg), void *arg);
/* How many deferred functions wait. */
size_t va_agent_deferred(struct va_agent *a);
/*
 * Runs the oldest deferred function now, whatever its delay, and says
 * what the delay was; 0, or -1 when none waits.
 */
int va_agent_run_deferred(struct va_agent *a, unsigned *delay_ms);
/* Runs every group's sweep now; the earliest next time (UINT64_MAX: none). */
uint64_t va_agent_sweep(struct va_agent *a);

#endif
