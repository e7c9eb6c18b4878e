/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl.h - what the parts of vactl, the command-line client of va-proxy,
 * share.
 *
 *   vactl.c           options, commands, exit codes
 *   vactl-rpc.c       the connection: URL, credentials, calls one at a
 *                     time or several in flight (serialised and parsed by
 *                     common/rpc.h and common/xmlgate.h), and faults
 *                     turned into plain words
 *   vactl-http.c      the HTTP client (libcurl's multi interface) under
 *                     every call: http:, https: and unix: URLs, Basic
 *                     authentication, timeouts, interrupts
 *   vactl-text.c      the strings vactl sends, checked and built in the
 *                     value form (common/text.h), vactl_callf's builder
 *   vactl-value.c     typed arguments for "call", values printed readably
 *                     or as JSON
 *   vactl-transfer.c  push and pull: chunks in flight, sha256, progress
 *   vactl-stream.c    push and pull as one stream through the proxy's
 *                     file endpoint (protocol 2), the usual way
 *   vactl-guest.c     the commands of the guest's operations (net, time,
 *                     os, users, fs, disks, cpu, stats)
 *   vactl-exec.c      exec: a command in the guest with live streams
 *   vactl-accounts.c  password and keys: a guest user's password, SSH keys
 *
 * Strings: inside vactl, string values hold common/text.h's value form
 * (what va_text_value() builds and va_rpc_parse_response() gives); what
 * vactl prints is raw UTF-8 (va_text_read(), vactl_member_string()).
 *
 * Everything runs on one thread.  Functions that can fail return an exit
 * code (VACTL_EXIT_*) after printing the reason on stderr, or fill a
 * struct vactl_error that the caller reports with vactl_report().
 */
#ifndef VACTL_H
#define VACTL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>

#include <xmlrpc-c/base.h>

#include "buf.h"

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
/* Longest XML answer accepted: at least the largest body the proxy
 * forwards. */
#define VACTL_XML_LIMIT (96u * 1024 * 1024)
_Static_assert(VACTL_XML_LIMIT >= VA_PROXY_MAX_FRAME_MAX,
	       "vactl must accept the largest answer the proxy forwards");

/* A number macro's digits, for help texts and messages. */
#define VACTL_STR_(x) #x
#define VACTL_STR(x) VACTL_STR_(x)

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

struct vactl_http;

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
	char *http_url;          /* what libcurl is given */
	char *unix_path;         /* NULL for http: */
	char *user, *password;
	const char *password_from; /* "the URL", the auth file's path, or NULL */
	char auth_note[512];     /* why no password was found, for a 401 */
	unsigned extra_wait_ms;  /* added to the timeout (long polls) */
	struct vactl_http *http; /* vactl-http.c's, once connected */
	int in_flight;           /* vactl_start's calls not completed */
};

/* Set by SIGINT/SIGTERM/SIGHUP while push, pull or events run. */
extern int vactl_interrupted;

/* ---- vactl-rpc.c ---- */

/*
 * Parses the URL and reads the credentials (no network yet).  Returns 0,
 * or an exit code after printing why.
 */
int vactl_setup(struct vactl *v);
/* Sets the HTTP client up on first use; returns 0 or an exit code (printed). */
int vactl_connect(struct vactl *v);
void vactl_cleanup(struct vactl *v);

/*
 * One call, waiting for its answer.  params is an array (the caller keeps
 * its reference) whose strings hold the value form (va_text_value).
 * Returns the result (the caller owns it; its strings in the value form:
 * read them with va_text_read or vactl_member_string), or NULL with err
 * set.
 */
xmlrpc_value *vactl_call(struct vactl *v, const char *method, xmlrpc_value *params,
			 struct vactl_error *err);
/*
 * vactl_call with parameters from an xmlrpc_build_value format, e.g.
 * "(si)".  Strings ("s", "s#", struct keys) are raw UTF-8, built with
 * va_text_value: text XML cannot carry fails the call (a VACTL_ERR_LOCAL
 * error saying why) before anything is sent.  The codes
 * i b d I s s# 6 n A S V ( ) { } are built so; a format with any other
 * code is built by xmlrpc-c as it is (its strings then only up to U+FFFF).
 */
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
 * Writes into out (emptied first) the XML of method(int a, base64
 * data[0..n)[, boolean true when close]), as va_rpc_serialize_call
 * would, with the base64 encoded straight into out: for the megabytes of
 * exec's writes, which through xmlrpc-c (the bytes copied into a value,
 * then serialised into a block grown by copies) took more CPU than the
 * rest of vactl exec.  0, or -1 out of memory.
 */
int vactl_xml_call_bytes(struct va_buf *out, const char *method, int a, const void *data, size_t n,
			 int close);
/*
 * An answer's body -> the result (a new reference), or NULL with err set
 * (VACTL_ERR_FAULT with the fault's code and raw UTF-8 message, or
 * VACTL_ERR_PROTOCOL when the body is not an XML-RPC response).
 */
xmlrpc_value *vactl_parse_answer(const char *body, size_t len, struct vactl_error *err);

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

/* ---- vactl-http.c ---- */

/*
 * A post: one HTTP POST of an XML body to the proxy, on an easy handle of
 * its own (reused for the next post, with its keep-alive connection).
 * All of a vactl's posts run in one libcurl multi handle.
 */
struct vactl_post;
/*
 * A post ended: body[0..len) is the answer of HTTP 200 (valid until the
 * post starts again or is freed), or err says why there is none.  It may
 * start posts (this one too) and run vactl_http_run itself.
 */
typedef void vactl_post_done_fn(void *arg, const char *body, size_t len,
				const struct vactl_error *err);
/* The multi handle (after vactl_setup); 0, or -1 out of memory. */
int vactl_http_open(struct vactl *v);
/* Frees it; every post the callers own must be freed first. */
void vactl_http_close(struct vactl *v);
/* A new idle post to v's URL with v's credentials (opens the client); NULL: no memory. */
struct vactl_post *vactl_post_new(struct vactl *v);
/* Frees a post (one in flight is dropped without its completion). */
void vactl_post_free(struct vactl_post *p);
/* An idle post from v's pool (or a new one), and back into the pool. */
struct vactl_post *vactl_post_get(struct vactl *v);
void vactl_post_put(struct vactl_post *p);
/* The body to send, which the caller writes; not to be touched while busy. */
struct va_buf *vactl_post_body(struct vactl_post *p);
/*
 * Starts posting the body (timeout: --timeout plus extra_wait_ms);
 * done runs from vactl_http_run.  0, or -1 with err set (done never runs).
 */
int vactl_post_start(struct vactl_post *p, vactl_post_done_fn *done, void *arg,
		     struct vactl_error *err);
/* Runs the posts until none is in flight, or until *stop (stop may be NULL). */
void vactl_http_run(struct vactl *v, const int *stop);
/* The most fds vactl_http_poll waits on beside libcurl's. */
#define VACTL_POLL_FDS_MAX 8
/*
 * One turn of the posts' loop for a caller that waits on fds of its own
 * too (exec: standard input and a signal pipe), which vactl_http_run
 * cannot: waits at most timeout_ms until libcurl has work (an answer's
 * bytes, a timeout; a post just started is due at once) or one of
 * fds[0..nfds) is ready, sets their revents as poll(2) does (POLLHUP and
 * POLLERR too), then runs the transfers and the completions of the posts
 * that ended (which may start posts).  With no post in flight it waits on
 * the fds alone.  A signal ends the wait early.  Returns 1 when a post
 * ended, 0 when none did, -1 when libcurl cannot wait (or nfds >
 * VACTL_POLL_FDS_MAX).  Not from a completion.
 */
int vactl_http_poll(struct vactl *v, struct pollfd *fds, unsigned nfds, int timeout_ms);

/* ---- vactl-text.c ---- */

/*
 * 0 when s[0..len) is text XML can carry, else -1 with msg saying what
 * and where ("a UTF-16 surrogate at byte 5").
 */
int vactl_text_check(const char *s, size_t len, char *msg, size_t msglen);
/*
 * JSON text -> the same JSON with every string literal rewritten so that
 * xmlrpc-c's JSON parser builds it in the value form (\uD83D\uDE00 pairs
 * and raw characters above U+FFFF, CR, U+E000 escaped), appended to out.
 * 0; -EILSEQ with *bad_at and *why when a string holds text XML cannot
 * carry; -ENOMEM.  A malformed literal is left as it is, for xmlrpc-c's
 * parser to report.
 */
int vactl_json_text_form(const char *s, size_t len, struct va_buf *out, size_t *bad_at,
			 const char **why);
/* vactl_callf's parameters (see there); NULL with env set on failure. */
xmlrpc_value *vactl_build_params(xmlrpc_env *env, const char *format, va_list ap);

/* ---- vactl-value.c ---- */

/*
 * A parameter from a typed word: i:42, i8:42, s:text, b:true, d:1.5, n:
 * (nil), j:JSON (arrays and structs), @FILE (base64 of the file's bytes),
 * anything else a string (built with va_text_value).  Returns a new
 * value, or NULL with a message in msg (text that cannot be sent: what
 * and at which byte of the word).
 */
xmlrpc_value *vactl_parse_arg(const char *word, char *msg, size_t msglen);
/*
 * Prints v readably: scalars as they are, structs as "key: value" lines.
 * Strings are raw UTF-8; one inside a list or struct that holds a line
 * break (LF or CR) or is empty is printed as a JSON literal.
 */
void vactl_print_value(FILE *f, xmlrpc_value *v);
/*
 * Prints v as JSON on one line (base64 as a base64 string, nil as null).
 * Strings are raw UTF-8 (vactl_json_string).
 */
void vactl_print_json(FILE *f, xmlrpc_value *v);
/*
 * JSON string literal of the raw text s (len bytes): '"', '\\' and the
 * control characters escaped (\n, \r, \t, \u00XX; DEL as \u007f), every
 * other character as its UTF-8 (an emoji as its 4 bytes, not as a
 * \uD83D\uDE00 pair).
 */
void vactl_json_string(FILE *f, const char *s, size_t len);
/* An int or i8 value: 0, or -1 when v is of another type. */
int vactl_value_int64(xmlrpc_value *v, int64_t *out);
/* Struct member helpers: 0 and the value, or -1 when absent or of another type. */
int vactl_member_int64(xmlrpc_value *st, const char *key, int64_t *out);
int vactl_member_bool(xmlrpc_value *st, const char *key, int *out);
int vactl_member_double(xmlrpc_value *st, const char *key, double *out);
/* A malloc'ed copy in raw UTF-8 (NUL-terminated; *len without it), or NULL. */
char *vactl_member_string(xmlrpc_value *st, const char *key, size_t *len);
/* "2024-11-25 08:30:01" (local time) into buf. */
const char *vactl_format_time(double t, char *buf, size_t len);

/* ---- vactl-stream.c ---- */

/* One transfer through the proxy's file endpoint (GET or PUT /guests/NAME/files/PATH). */
struct vactl_stream_io {
	int pull;                 /* GET (1) or PUT (0) */
	int fd;                   /* pull: the bytes are written here; push: read from here */
	const char *local;        /* for messages */
	uint64_t size;            /* push: the body's length when size_known (else chunked) */
	int size_known;
	int mode;                 /* push: ?mode= (a new file's permissions); -1: none */
	uint64_t offset;          /* pull: from this byte on (Range; 206 expected), 0: all */
	/* Each byte that moved, in order (the caller's SHA-256), and the count so far. */
	void (*sha_update)(void *ctx, const void *p, size_t n);
	void (*progress)(void *ctx, uint64_t done);
	void *ctx;
	uint64_t done;            /* bytes moved */
	long status;              /* the answer's HTTP status (0: none came) */
	char err[960];            /* why it failed, in plain words */
};

enum {
	VACTL_STREAM_OK,          /* 2xx, every byte moved */
	VACTL_STREAM_UNSERVED,    /* no file endpoint (older proxy or agent), nothing moved */
	VACTL_STREAM_HTTP,        /* an HTTP error (status; err: the proxy's words) */
	VACTL_STREAM_UNREACHABLE, /* no connection */
	VACTL_STREAM_INTERRUPTED, /* vactl_interrupted */
	VACTL_STREAM_FAILED,      /* anything else (err) */
};

/* Runs the transfer of the guest path remote (blocking); returns a VACTL_STREAM_*. */
int vactl_stream_run(struct vactl *v, const char *remote, struct vactl_stream_io *io);

/* ---- vactl-exec.c, vactl-accounts.c ---- */

int vactl_cmd_exec(struct vactl *v, int argc, char **argv);
int vactl_cmd_password(struct vactl *v, int argc, char **argv);
int vactl_cmd_keys(struct vactl *v, int argc, char **argv);

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
/*
 * Parses a command's options: its own (own/own_short, handled by fn) and
 * the common ones; in_order stops at the first argument (and after
 * "--").  Returns 0 (arguments from optind), an exit code, or 100 when
 * --help was printed.
 */
int vactl_parse_cmd(struct vactl *v, int argc, char **argv, const struct option *own,
		    size_t nown, const char *own_short,
		    int (*fn)(void *ctx, const char *cmd, int opt, const char *arg), void *ctx,
		    int in_order);
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
