/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl.h - what the parts of vactl, the command-line client of va-proxy,
 * share.
 *
 *   vactl.c           options, commands, exit codes
 *   vactl-rpc.c       the connection: URL, credentials, the xmlrpc-c
 *                     client (its curl transport for http:, ours for
 *                     unix:), calls one at a time or several in flight,
 *                     and faults turned into plain words
 *   vactl-unix.c      an xmlrpc-c client transport that speaks HTTP over a
 *                     unix socket (libcurl's CURLOPT_UNIX_SOCKET_PATH;
 *                     xmlrpc-c 1.33's curl transport cannot)
 *   vactl-value.c     typed arguments for "call", values printed readably
 *                     or as JSON
 *   vactl-transfer.c  push and pull: chunks in flight, sha256, progress
 *   vactl-guest.c     the commands of the guest's operations (net, time,
 *                     os, users, fs, disks, cpu, stats)
 *
 * Everything runs on one thread.  Functions that can fail return an exit
 * code (VACTL_EXIT_*) after printing the reason on stderr, or fill a
 * struct vactl_error that the caller reports with vactl_report().
 */
#ifndef VACTL_H
#define VACTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/client.h>

/* What vactl and va-proxy agree on: defaults, the secret file, guest
 * names, limits, fault codes. */
#include "contract.h"

#define VACTL_EXIT_OK 0
#define VACTL_EXIT_FAULT 1       /* a fault from the guest or the proxy, a failed transfer */
#define VACTL_EXIT_USAGE 2       /* bad command line */
#define VACTL_EXIT_UNREACHABLE 3 /* cannot reach (or use) the proxy */

/* Seconds to wait for each answer; longer than the proxy's default
 * --call-timeout, so that the proxy's own clear fault comes first. */
#define VACTL_DEFAULT_TIMEOUT_S 60
_Static_assert(VACTL_DEFAULT_TIMEOUT_S > VA_PROXY_DEFAULT_CALL_TIMEOUT,
	       "vactl must wait longer than the proxy's default --call-timeout");
/* Longest XML answer accepted (xmlrpc-c's default limit is 512 KiB): at
 * least the largest body the proxy forwards. */
#define VACTL_XML_LIMIT (96u * 1024 * 1024)
_Static_assert(VACTL_XML_LIMIT >= VA_PROXY_MAX_FRAME_MAX,
	       "vactl must accept the largest answer the proxy forwards");

/* A number macro's digits, for help texts and messages. */
#define VACTL_STR_(x) #x
#define VACTL_STR(x) VACTL_STR_(x)

/* How often vactl_run_pending() lets libcurl start calls that completions queued (ms). */
#define VACTL_POLL_MS 2
/* How often a lone call lets libcurl check its timeout (ms). */
#define VACTL_WAIT_SLICE_MS 50

enum vactl_err_kind {
	VACTL_ERR_NONE,
	VACTL_ERR_FAULT,       /* an XML-RPC fault: code and message from the server */
	VACTL_ERR_UNREACHABLE, /* no connection to the proxy */
	VACTL_ERR_HTTP,        /* the proxy answered an HTTP error; code is the status */
	VACTL_ERR_TIMEOUT,     /* no answer within --timeout */
	VACTL_ERR_PROTOCOL,    /* the answer is not XML-RPC */
	VACTL_ERR_INTERRUPTED, /* a signal stopped the call */
	VACTL_ERR_LOCAL,       /* vactl itself failed (memory, a local file...) */
};

struct vactl_error {
	enum vactl_err_kind kind;
	int code;        /* fault code, or HTTP status */
	char msg[1024];  /* the server's (or libcurl's) own words */
};

struct vactl_unix;

struct vactl {
	/* Options. */
	const char *url_opt;     /* --url, VA_URL, or the default */
	const char *guest;       /* --guest NAME or NULL */
	unsigned timeout_s;      /* --timeout; 0: wait forever */
	int json;                /* --json */
	const char *auth_file;   /* --auth-file, or NULL: the default when readable */
	int verbose;

	/* The connection, set up by vactl_connect(). */
	char *display_url;       /* for messages, without credentials */
	char *http_url;          /* what xmlrpc-c is given */
	char *unix_path;         /* NULL for http: */
	char *user, *password;
	const char *password_from; /* "the URL", the auth file's path, or NULL */
	char auth_note[512];     /* why no password was found, for a 401 */
	unsigned extra_wait_ms;  /* added to the timeout (long polls) */
	xmlrpc_client *client;
	xmlrpc_server_info *server;
	struct vactl_unix *unix_transport;
	int in_flight;           /* calls started and not completed */
};

/* Set by SIGINT/SIGTERM/SIGHUP while push, pull or events run. */
extern int vactl_interrupted;

/* ---- vactl-rpc.c ---- */

/*
 * Parses the URL and reads the credentials (no network yet).  Returns 0,
 * or an exit code after printing why.
 */
int vactl_setup(struct vactl *v);
/* Creates the client on first use; returns 0 or an exit code (printed). */
int vactl_connect(struct vactl *v);
void vactl_cleanup(struct vactl *v);

/*
 * One call, waiting for its answer.  params is an array (the caller keeps
 * its reference).  Returns the result (the caller owns it), or NULL with
 * err set.
 */
xmlrpc_value *vactl_call(struct vactl *v, const char *method, xmlrpc_value *params,
			 struct vactl_error *err);
/* vactl_call with parameters from an xmlrpc_build_value format, e.g. "(ii)". */
xmlrpc_value *vactl_callf(struct vactl *v, struct vactl_error *err, const char *method,
			  const char *format, ...);

/*
 * Completion of an asynchronous call: result (borrowed: INCREF it to keep
 * it) or err.  It may start more calls.
 */
typedef void vactl_done_fn(void *arg, xmlrpc_value *result, const struct vactl_error *err);
/*
 * Starts a call without waiting; done runs from vactl_run_pending().
 * Returns 0, or -1 with err set (done is then never called).
 */
int vactl_start(struct vactl *v, const char *method, xmlrpc_value *params,
		vactl_done_fn *done, void *arg, struct vactl_error *err);
/* Runs until no call is in flight (completions may start new ones). */
void vactl_run_pending(struct vactl *v);

/*
 * Prints "vactl: " what, ": " and the error in plain words on stderr, and
 * returns the exit code for it.  what may be NULL.
 */
int vactl_report(struct vactl *v, const char *what, const struct vactl_error *err);
/* The exit code for an error. */
int vactl_exit_code(const struct vactl_error *err);
/* Sets a VACTL_ERR_LOCAL error. */
void vactl_error_local(struct vactl_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- vactl-unix.c ---- */

/*
 * A transport for xmlrpc_client_create (clientparms transportOpsP and
 * transportP) that posts to http_url through the unix socket at path.
 * timeout_ms 0: none.  NULL on failure (out of memory).
 */
struct vactl_unix *vactl_unix_new(const char *path, const char *http_url, unsigned long timeout_ms);
void vactl_unix_free(struct vactl_unix *u);
const struct xmlrpc_client_transport_ops *vactl_unix_ops(void);
xmlrpc_client_transport *vactl_unix_transport(struct vactl_unix *u);

/* ---- vactl-value.c ---- */

/*
 * A parameter from a typed word: i:42, i8:42, s:text, b:true, d:1.5, n:
 * (nil), j:JSON (arrays and structs), @FILE (base64 of the file's bytes),
 * anything else a string.  Returns a new value, or NULL with a message
 * in msg.
 */
xmlrpc_value *vactl_parse_arg(const char *word, char *msg, size_t msglen);
/* Prints v readably: scalars as they are, structs as "key: value" lines. */
void vactl_print_value(FILE *f, xmlrpc_value *v);
/* Prints v as JSON on one line (base64 as a base64 string, nil as null). */
void vactl_print_json(FILE *f, xmlrpc_value *v);
/* JSON string literal of s (len bytes). */
void vactl_json_string(FILE *f, const char *s, size_t len);
/* An int or i8 value: 0, or -1 when v is of another type. */
int vactl_value_int64(xmlrpc_value *v, int64_t *out);
/* Struct member helpers: 0 and the value, or -1 when absent or of another type. */
int vactl_member_int64(xmlrpc_value *st, const char *key, int64_t *out);
int vactl_member_bool(xmlrpc_value *st, const char *key, int *out);
int vactl_member_double(xmlrpc_value *st, const char *key, double *out);
/* A malloc'ed copy (NUL-terminated; *len without it), or NULL. */
char *vactl_member_string(xmlrpc_value *st, const char *key, size_t *len);
/* "2024-11-25 08:30:01" (local time) into buf. */
const char *vactl_format_time(double t, char *buf, size_t len);

/* ---- vactl-transfer.c ---- */

/* push LOCAL REMOTE and pull REMOTE LOCAL; argv after the command name. */
int vactl_cmd_push(struct vactl *v, int argc, char **argv);
int vactl_cmd_pull(struct vactl *v, int argc, char **argv);

/* Shared by the commands (vactl.c). */
void vactl_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Parses a decimal integer in [min, max]; -1 if malformed. */
int vactl_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);
/* Parses a size with an optional K, M or G suffix (binary); -1 if malformed. */
int vactl_parse_size(const char *s, uint64_t *out);
/*
 * Parses the options of push or pull (--chunk-size, --jobs, and --mode for
 * push, handled by fn) with the common ones.  Returns 0 (arguments from
 * optind), an exit code, or 100 when --help was printed.
 */
int vactl_parse_xfer_options(struct vactl *v, int argc, char **argv, int push,
			     int (*fn)(void *, const char *, int, const char *), void *ctx);
/* Installs the handlers that set vactl_interrupted. */
void vactl_catch_signals(void);

/* A command: its name, its help (after "usage: vactl "), what runs it. */
struct vactl_command {
	const char *name;
	const char *usage;
	int (*run)(struct vactl *v, int argc, char **argv);
};
/*
 * For the commands of other files (vactl.c): parses a command without
 * options of its own and checks that min..max arguments (max -1: any)
 * follow (from optind); 0, 100 (--help printed) or an exit code.
 */
int vactl_simple_cmd(struct vactl *v, int argc, char **argv, int min, int max);
/* Sets the connection up (after the options are known): 0 or an exit code. */
int vactl_ready(struct vactl *v);
/* Prints a result readably, or as JSON with --json. */
void vactl_print_result(struct vactl *v, xmlrpc_value *res);

/* ---- vactl-guest.c ---- */

extern const struct vactl_command vactl_guest_commands[];
extern const size_t vactl_nguest_commands;

#endif
