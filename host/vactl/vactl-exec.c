/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-exec.c - vactl exec [--user U] [--timeout S] [--tty] [--cwd DIR]
 * [--env NAME=VALUE]... -- CMD [ARG]...: runs CMD in the guest
 * (va.exec.start) with vactl's stdin, stdout and stderr connected live,
 * like ssh.
 *
 * One loop (vactl_http_poll: vactl's libcurl multi handle, with stdin and
 * a signal pipe beside its sockets) drives three calls of its own, each
 * on a post of its own (vactl-http.c: one keep-alive connection each): a
 * va.exec.read long poll always waiting (WAIT_MS, below the proxy's 30 s
 * call timeout), whose answer is written to stdout and stderr before the
 * next read is posted; a va.exec.write of what stdin gave (stdin is read
 * only while no write is in flight: the guest's back-pressure reaches the
 * local writer); and va.exec.kill or va.exec.resize when a signal asks.
 * The calls are serialised by common/rpc.h (a write's megabytes of
 * base64 by vactl_xml_call_bytes) and their answers parsed by
 * vactl_parse_answer (the gate, then xmlrpc-c), as vactl_call's are;
 * every string sent (argv, --user, --cwd, --env) is built with
 * va_text_value, and text XML cannot carry is refused before anything is
 * sent (exit 2, the argument named).  The command's exit status is
 * vactl's: the code, or 128 + the signal that killed it; vactl's own
 * failures exit 255 (ssh's convention), a bad command line 2.
 *
 * Signals: SIGINT, SIGQUIT, SIGTERM and SIGHUP are sent on to the
 * command's process group (va.exec.kill); after SIGTERM or SIGHUP vactl
 * stops waiting and exits 128 + the signal.  With --tty, the local
 * terminal is in raw mode while the command runs (Ctrl-C is then a byte
 * for the guest's terminal), the window size follows SIGWINCH, and the
 * terminal's mode is restored on every way out: the end, an error, a
 * signal, and SIGTSTP (restored while stopped, raw again on SIGCONT).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "rpc.h"
#include "text.h"
#include "vactl.h"

/* Each va.exec.read waits at most this long (the proxy's call timeout is 30 s). */
#define WAIT_MS 10000
/* Bytes asked per read, and sent per write (the agent's limit, VA_EXEC_MAX_WRITE). */
#define READ_MAX (1024 * 1024)
#define WRITE_MAX (1024u * 1024)
/* A write is sent once this much is read, or when stdin has nothing more now. */
#define WRITE_BATCH (256u * 1024)
#define EXIT_VACTL_FAILED 255

enum call_kind { CALL_READ, CALL_WRITE, CALL_CTL, NCALLS };

struct exec_run;

/* One kind of call: at most one in flight, on a post of its own. */
struct exec_call {
	struct exec_run *x;
	enum call_kind k;
	struct vactl_post *post;
	int busy;
};

struct exec_run {
	struct vactl *v;
	int id;
	int tty;
	struct exec_call calls[NCALLS];
	/* stdin */
	int in_open;             /* local stdin may give more */
	int remote_in_open;      /* the command still takes input */
	int close_sent;
	unsigned char *inbuf;    /* read from stdin, not yet taken by the agent */
	size_t in_len;
	size_t wr_len;           /* bytes in the write in flight */
	int wr_close;
	/* output and the end */
	int out_eof, err_eof, exited, status_code, status_signal, timed_out;
	int stdout_broken;
	/* signals to forward */
	int pending_sig;
	int pending_resize;
	int leave_sig;           /* SIGTERM/SIGHUP: exit after forwarding */
	int failed;
	struct vactl_error err;
	char err_what[64];
};

/* ---- signals and the terminal ------------------------------------------------------ */

static int sig_pipe[2] = { -1, -1 };
static struct termios saved_tty;
static int tty_raw;           /* raw mode in force */
static int tty_fd = -1;

static void
tty_restore(void)
{
	if (tty_raw) {
		tcsetattr(tty_fd, TCSADRAIN, &saved_tty);
		tty_raw = 0;
	}
}

static int
tty_make_raw(void)
{
	struct termios raw = saved_tty;

	cfmakeraw(&raw);
	if (tcsetattr(tty_fd, TCSADRAIN, &raw) < 0)
		return -1;
	tty_raw = 1;
	return 0;
}

static void
on_signal(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;

	if (sig == SIGTSTP) {
		/* Stop with the terminal as it was; raw again on SIGCONT. */
		int was_raw = tty_raw;
		tty_restore();
		tty_raw = was_raw ? -1 : 0;
		signal(SIGTSTP, SIG_DFL);
		raise(SIGTSTP);
		return;
	}
	if (sig == SIGCONT) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTSTP, &sa, NULL);
		if (tty_raw == -1)
			tty_make_raw();
	}
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* full: the loop has enough to do already */
	}
	errno = e;
}

static int
catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT };
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void
get_winsize(unsigned short *rows, unsigned short *cols)
{
	struct winsize ws;

	*rows = *cols = 0;
	for (int fd = 0; fd <= 2; fd++)
		if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			*rows = ws.ws_row;
			*cols = ws.ws_col;
			return;
		}
}

/* ---- the options --------------------------------------------------------------------- */

struct exec_opts {
	const char *user;
	unsigned long timeout_s;
	int tty;
	const char *cwd;
	const char **env;
	int nenv;
};

/* ---- calls ----------------------------------------------------------------------------- */

static void
fail(struct exec_run *x, const char *what, const struct vactl_error *err)
{
	if (x->failed)
		return;
	x->failed = 1;
	x->err = *err;
	snprintf(x->err_what, sizeof(x->err_what), "%s", what);
}

static void
fail_local(struct exec_run *x, const char *what)
{
	struct vactl_error err = { 0 };
	vactl_error_local(&err, "%s", what);
	fail(x, "exec", &err);
}

static const char *const call_method[NCALLS] = { "va.exec.read", "va.exec.write", "va.exec.kill" };

static void call_done(void *arg, const char *body, size_t len, const struct vactl_error *err);

/* Starts the call whose XML is in the post of kind k. */
static void
start(struct exec_run *x, enum call_kind k, const char *method)
{
	struct exec_call *c = &x->calls[k];
	struct vactl_error err = { 0 };

	if (vactl_post_start(c->post, call_done, c, &err) < 0) {
		fail(x, method, &err);
		return;
	}
	c->busy = 1;
}

/*
 * Posts method(params) on the post of kind k; takes the caller's
 * reference to params (NULL: env says why it could not be built).
 */
static void
post(struct exec_run *x, enum call_kind k, const char *method, xmlrpc_env *env,
     xmlrpc_value *params)
{
	struct vactl_error err = { 0 };
	struct va_buf *body = vactl_post_body(x->calls[k].post);

	body->len = 0;
	if (!env->fault_occurred)
		va_rpc_serialize_call(env, body, method, params);
	if (params)
		xmlrpc_DECREF(params);
	if (env->fault_occurred) {
		vactl_error_local(&err, "%s: cannot build the call: %s", method, env->fault_string);
		fail(x, method, &err);
		return;
	}
	start(x, k, method);
}

static void
post_read(struct exec_run *x)
{
	xmlrpc_env env;

	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_build_value(&env, "(iii)", x->id, READ_MAX, WAIT_MS);
	post(x, CALL_READ, "va.exec.read", &env, params);
	xmlrpc_env_clean(&env);
}

static void
post_write(struct exec_run *x, int close)
{
	size_t n = x->in_len < WRITE_MAX ? x->in_len : WRITE_MAX;

	x->wr_len = n;
	x->wr_close = close && n == x->in_len;
	if (vactl_xml_call_bytes(vactl_post_body(x->calls[CALL_WRITE].post), "va.exec.write", x->id,
				 x->inbuf, n, x->wr_close) < 0) {
		fail_local(x, "out of memory");
		return;
	}
	start(x, CALL_WRITE, "va.exec.write");
}

static void
post_ctl(struct exec_run *x)
{
	xmlrpc_env env;
	xmlrpc_value *params;
	const char *method;

	xmlrpc_env_init(&env);
	if (x->pending_sig) {
		method = "va.exec.kill";
		params = xmlrpc_build_value(&env, "(ii)", x->id, x->pending_sig);
		x->pending_sig = 0;
	} else {
		unsigned short rows, cols;
		get_winsize(&rows, &cols);
		x->pending_resize = 0;
		if (!rows) {
			xmlrpc_env_clean(&env);
			return;
		}
		method = "va.exec.resize";
		params = xmlrpc_build_value(&env, "(iii)", x->id, (int)rows, (int)cols);
	}
	post(x, CALL_CTL, method, &env, params);
	xmlrpc_env_clean(&env);
}

static int
write_fd(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes a base64 member of the read's answer to fd. */
static void
deliver(struct exec_run *x, xmlrpc_value *res, const char *key, int fd)
{
	xmlrpc_env env;
	xmlrpc_value *v = NULL;
	const unsigned char *d = NULL;
	size_t len = 0;

	xmlrpc_env_init(&env);
	xmlrpc_struct_find_value(&env, res, key, &v);
	if (!env.fault_occurred && v && xmlrpc_value_type(v) == XMLRPC_TYPE_BASE64)
		xmlrpc_read_base64(&env, v, &len, &d);
	if (!env.fault_occurred && len > 0) {
		if (fd == 1 && x->stdout_broken) {
			/* dropped: nobody reads our stdout */
		} else if (write_fd(fd, (const char *)d, len) < 0) {
			if (fd == 1 && errno == EPIPE) {
				/* Like a local pipe: the command gets SIGPIPE. */
				x->stdout_broken = 1;
				x->pending_sig = SIGPIPE;
			}
		}
	}
	free((void *)d);
	if (v)
		xmlrpc_DECREF(v);
	xmlrpc_env_clean(&env);
}

static void
read_done(struct exec_run *x, xmlrpc_value *res)
{
	int b;
	int64_t n;

	deliver(x, res, "stdout", 1);
	deliver(x, res, "stderr", 2);
	if (vactl_member_bool(res, "stdout_eof", &b) == 0 && b)
		x->out_eof = 1;
	if (vactl_member_bool(res, "stderr_eof", &b) == 0 && b)
		x->err_eof = 1;
	if (vactl_member_bool(res, "timed_out", &b) == 0 && b)
		x->timed_out = 1;
	if (vactl_member_bool(res, "exited", &b) == 0 && b) {
		x->exited = 1;
		if (vactl_member_int64(res, "exit_code", &n) == 0)
			x->status_code = (int)n;
		else if (vactl_member_int64(res, "signal", &n) == 0)
			x->status_signal = (int)n;
	}
}

static void
write_done(struct exec_run *x, xmlrpc_value *res)
{
	int64_t n = 0;

	if (vactl_value_int64(res, &n) < 0 || n < 0 || (uint64_t)n > x->wr_len) {
		struct vactl_error err = { VACTL_ERR_PROTOCOL, 0, "va.exec.write did not answer a count" };
		fail(x, "va.exec.write", &err);
		return;
	}
	memmove(x->inbuf, x->inbuf + n, x->in_len - (size_t)n);
	x->in_len -= (size_t)n;
	if (x->wr_close && (size_t)n == x->wr_len)
		x->close_sent = 1;
}

/* A call ended (vactl_http_poll runs this): its answer, or why there is none. */
static void
call_done(void *arg, const char *body, size_t len, const struct vactl_error *http_err)
{
	struct exec_call *c = arg;
	struct exec_run *x = c->x;
	struct vactl_error err = { 0 };
	xmlrpc_value *res = NULL;

	c->busy = 0;
	if (http_err)
		err = *http_err;
	else
		res = vactl_parse_answer(body, len, &err);
	if (!res) {
		if (c->k == CALL_WRITE && err.kind == VACTL_ERR_FAULT &&
		    (err.code == XMLRPC_REQUEST_REFUSED_ERROR || err.code == XMLRPC_INDEX_ERROR)) {
			/* The command closed its stdin, or ended and was read to its end
			 * (a write crossing the last read): like ssh, the rest is dropped. */
			x->remote_in_open = 0;
			x->in_len = 0;
			return;
		}
		if (c->k == CALL_CTL && err.kind == VACTL_ERR_FAULT)
			return; /* a signal or size too late: the command is gone */
		fail(x, call_method[c->k], &err);
		return;
	}
	if (c->k == CALL_READ)
		read_done(x, res);
	else if (c->k == CALL_WRITE)
		write_done(x, res);
	xmlrpc_DECREF(res);
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Reads what stdin has now (without blocking after the first read). */
static void
read_stdin(struct exec_run *x)
{
	while (x->in_len < WRITE_BATCH) {
		ssize_t r = read(0, x->inbuf + x->in_len, WRITE_MAX - x->in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			x->in_open = 0; /* end of file, or an error: the command's stdin ends */
			return;
		}
		x->in_len += (size_t)r;
		struct pollfd p = { .fd = 0, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP)))
			return;
	}
}

static void
take_signals(struct exec_run *x)
{
	unsigned char buf[64];
	ssize_t n;

	while ((n = read(sig_pipe[0], buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			int sig = buf[i];
			if (sig == SIGWINCH || sig == SIGCONT) {
				x->pending_resize = x->tty;
				continue;
			}
			x->pending_sig = sig;
			if (sig == SIGTERM || sig == SIGHUP)
				x->leave_sig = sig;
		}
	}
}

static int
finished(const struct exec_run *x)
{
	return x->exited && x->out_eof && x->err_eof;
}

static void
run(struct exec_run *x)
{
	for (;;) {
		if (x->failed)
			return;
		if (finished(x) && !x->calls[CALL_WRITE].busy && !x->calls[CALL_CTL].busy)
			return;
		if (x->leave_sig && !x->pending_sig && !x->calls[CALL_CTL].busy)
			return;
		if (!x->calls[CALL_READ].busy && !finished(x))
			post_read(x);
		if (!x->calls[CALL_WRITE].busy && x->remote_in_open && !x->close_sent && !finished(x)) {
			if (x->in_len > 0)
				post_write(x, !x->in_open);
			else if (!x->in_open)
				post_write(x, 1);
		}
		if (!x->calls[CALL_CTL].busy && (x->pending_sig || x->pending_resize))
			post_ctl(x);
		if (x->failed)
			return;

		struct pollfd fds[2];
		nfds_t n = 0;
		int want_in = x->in_open && x->remote_in_open && !x->calls[CALL_WRITE].busy &&
			      x->in_len < WRITE_BATCH;
		fds[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
		if (want_in)
			fds[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
		/* The completions (call_done) run in here. */
		if (vactl_http_poll(x->v, fds, (unsigned)n, 1000) < 0) {
			fail_local(x, "libcurl cannot wait");
			return;
		}
		if (fds[0].revents)
			take_signals(x);
		if (want_in && fds[1].revents)
			read_stdin(x);
	}
}

/* ---- va.exec.start --------------------------------------------------------------------------- */

/* st.key = v, taking the caller's reference to v (NULL: env has the fault). */
static void
set_member(xmlrpc_env *env, xmlrpc_value *st, const char *key, xmlrpc_value *v)
{
	if (env->fault_occurred || !v)
		return;
	xmlrpc_struct_set_value(env, st, key, v);
	xmlrpc_DECREF(v);
}

/* st[name] = the raw text value (both in the value form, va_text_value). */
static void
set_text_member(xmlrpc_env *env, xmlrpc_value *st, const char *name, size_t nlen,
		const char *value)
{
	xmlrpc_value *k = NULL, *v = NULL;

	if (!env->fault_occurred)
		k = va_text_value(env, name, nlen);
	if (!env->fault_occurred)
		v = va_text_value_z(env, value);
	if (!env->fault_occurred)
		xmlrpc_struct_set_value_v(env, st, k, v);
	if (k)
		xmlrpc_DECREF(k);
	if (v)
		xmlrpc_DECREF(v);
}

/*
 * 0 when every string exec sends is text XML can carry, else a usage
 * error naming the argument (exit 2): refused here, before anything runs.
 */
static int
check_texts(const struct exec_opts *o, int argc, char **argv)
{
	char why[160];

	for (int i = 0; i < argc; i++)
		if (vactl_text_check(argv[i], strlen(argv[i]), why, sizeof(why)) < 0) {
			if (i == 0)
				vactl_usage_error("exec", "CMD: %s", why);
			else
				vactl_usage_error("exec", "ARG %d: %s", i, why);
			return -1;
		}
	const char *what[] = { "--user", "--cwd" }, *val[] = { o->user, o->cwd };
	for (int i = 0; i < 2; i++)
		if (val[i] && vactl_text_check(val[i], strlen(val[i]), why, sizeof(why)) < 0) {
			vactl_usage_error("exec", "%s: %s", what[i], why);
			return -1;
		}
	for (int i = 0; i < o->nenv; i++)
		if (vactl_text_check(o->env[i], strlen(o->env[i]), why, sizeof(why)) < 0) {
			vactl_usage_error("exec", "--env (the %d%s): %s", i + 1,
					  i == 0 ? "st" : i == 1 ? "nd" : i == 2 ? "rd" : "th", why);
			return -1;
		}
	return 0;
}

static xmlrpc_value *
start_params(const struct exec_opts *o, int argc, char **argv, char *msg, size_t msglen)
{
	xmlrpc_env env;
	xmlrpc_value *params = NULL, *args = NULL, *opts = NULL, *envst = NULL;
	const char *term = getenv("TERM"), *why;

	/* TERM is the local terminal's: not sent when XML cannot carry it. */
	if (term && va_text_check(term, strlen(term), &why) != strlen(term))
		term = NULL;
	xmlrpc_env_init(&env);
	args = xmlrpc_array_new(&env);
	for (int i = 0; i < argc && !env.fault_occurred; i++) {
		xmlrpc_value *s = va_text_value_z(&env, argv[i]);
		if (!env.fault_occurred) {
			xmlrpc_array_append_item(&env, args, s);
			xmlrpc_DECREF(s);
		}
	}
	if (!env.fault_occurred)
		opts = xmlrpc_struct_new(&env);
	if (o->user)
		set_member(&env, opts, "user", va_text_value_z(&env, o->user));
	if (o->cwd)
		set_member(&env, opts, "cwd", va_text_value_z(&env, o->cwd));
	if (o->timeout_s)
		set_member(&env, opts, "timeout_s", xmlrpc_int_new(&env, (int)o->timeout_s));
	if (o->tty) {
		unsigned short rows, cols;
		get_winsize(&rows, &cols);
		set_member(&env, opts, "pty", xmlrpc_bool_new(&env, 1));
		if (rows) {
			set_member(&env, opts, "rows", xmlrpc_int_new(&env, rows));
			set_member(&env, opts, "cols", xmlrpc_int_new(&env, cols));
		}
	}
	if (!env.fault_occurred && (o->nenv || (o->tty && term && *term)))
		envst = xmlrpc_struct_new(&env);
	if (envst && o->tty && term && *term)
		set_text_member(&env, envst, "TERM", 4, term);
	for (int i = 0; envst && i < o->nenv && !env.fault_occurred; i++) {
		const char *eq = strchr(o->env[i], '=');
		set_text_member(&env, envst, o->env[i], (size_t)(eq - o->env[i]), eq + 1);
	}
	if (envst && !env.fault_occurred)
		xmlrpc_struct_set_value(&env, opts, "env", envst);
	if (!env.fault_occurred)
		params = xmlrpc_build_value(&env, "(VV)", args, opts);
	if (env.fault_occurred)
		snprintf(msg, msglen, "%s", env.fault_string);
	if (args)
		xmlrpc_DECREF(args);
	if (opts)
		xmlrpc_DECREF(opts);
	if (envst)
		xmlrpc_DECREF(envst);
	xmlrpc_env_clean(&env);
	return env.fault_occurred ? NULL : params;
}

static int
exec_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	struct exec_opts *o = ctx;

	switch (opt) {
	case 'U':
		o->user = arg;
		return 0;
	case 't':
		if (vactl_parse_ulong(arg, 1, 7 * 24 * 3600, &o->timeout_s) < 0) {
			vactl_usage_error(cmd, "--timeout: \"%s\" is not a number of seconds "
					  "(1 to 604800)", arg);
			return VACTL_EXIT_USAGE;
		}
		return 0;
	case 'T':
		o->tty = 1;
		return 0;
	case 'C':
		o->cwd = arg;
		return 0;
	case 'e': {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg || eq - arg > 200) {
			vactl_usage_error(cmd, "--env: \"%s\" is not NAME=VALUE", arg);
			return VACTL_EXIT_USAGE;
		}
		const char **n = realloc(o->env, (size_t)(o->nenv + 1) * sizeof(*n));
		if (!n)
			return VACTL_EXIT_FAULT;
		o->env = n;
		o->env[o->nenv++] = arg;
		return 0;
	}
	}
	vactl_usage_error(cmd, "unexpected option -%c", opt);
	return VACTL_EXIT_USAGE;
}

static int
start_command(struct vactl *v, const struct exec_opts *o, int argc, char **argv, int *id)
{
	struct vactl_error err = { 0 };
	char msg[512];
	xmlrpc_value *params = start_params(o, argc, argv, msg, sizeof(msg));

	if (!params) {
		fprintf(stderr, "vactl: exec: %s\n", msg);
		return EXIT_VACTL_FAILED;
	}
	xmlrpc_value *res = vactl_call(v, "va.exec.start", params, &err);
	xmlrpc_DECREF(params);
	if (!res) {
		vactl_report(v, "exec", &err);
		return EXIT_VACTL_FAILED;
	}
	int64_t n = 0;
	int ok = vactl_value_int64(res, &n) == 0 && n > 0 && n <= INT32_MAX;
	xmlrpc_DECREF(res);
	if (!ok) {
		fprintf(stderr, "vactl: exec: va.exec.start did not answer an id\n");
		return EXIT_VACTL_FAILED;
	}
	*id = (int)n;
	return 0;
}

int
vactl_cmd_exec(struct vactl *v, int argc, char **argv)
{
	static const struct option own[] = {
		{ "user", required_argument, NULL, 'U' },
		{ "timeout", required_argument, NULL, 't' },
		{ "tty", no_argument, NULL, 'T' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "env", required_argument, NULL, 'e' },
	};
	struct exec_opts o = { 0 };
	struct exec_run x;
	int rc = vactl_parse_cmd(v, argc, argv, own, 5, "U:t:TC:e:", exec_option, &o, 1);

	memset(&x, 0, sizeof(x));
	if (rc) {
		free(o.env);
		return rc;
	}
	if (optind >= argc) {
		vactl_usage_error("exec", "missing the command (vactl exec [OPTION]... -- CMD [ARG]...)");
		free(o.env);
		return VACTL_EXIT_USAGE;
	}
	if (check_texts(&o, argc - optind, argv + optind) < 0) {
		free(o.env);
		return VACTL_EXIT_USAGE;
	}
	if ((rc = vactl_setup(v)) || (rc = vactl_connect(v))) {
		free(o.env);
		return rc == VACTL_EXIT_USAGE ? rc : EXIT_VACTL_FAILED;
	}
	if (catch_signals() < 0) {
		fprintf(stderr, "vactl: exec: cannot catch signals: %s\n", strerror(errno));
		free(o.env);
		return EXIT_VACTL_FAILED;
	}
	rc = start_command(v, &o, argc - optind, argv + optind, &x.id);
	free(o.env);
	if (rc)
		return rc;

	x.v = v;
	x.tty = o.tty;
	x.in_open = 1;
	x.remote_in_open = 1;
	x.inbuf = malloc(WRITE_MAX);
	for (int k = 0; k < NCALLS; k++) {
		x.calls[k] = (struct exec_call){ .x = &x, .k = (enum call_kind)k };
		x.calls[k].post = vactl_post_new(v);
	}
	if (!x.inbuf || !x.calls[CALL_READ].post || !x.calls[CALL_WRITE].post ||
	    !x.calls[CALL_CTL].post)
		fail_local(&x, "out of memory");
	/* A read waits up to WAIT_MS for output, a write up to 10 s for room: on top of --timeout. */
	v->extra_wait_ms = WAIT_MS;
	if (o.tty && isatty(0)) {
		tty_fd = 0;
		if (tcgetattr(0, &saved_tty) == 0) {
			atexit(tty_restore);
			tty_make_raw();
		}
	}
	if (!x.failed)
		run(&x);
	tty_restore();

	/* Calls still in flight (the read's long poll) are dropped with their posts. */
	for (int k = 0; k < NCALLS; k++)
		vactl_post_free(x.calls[k].post);
	free(x.inbuf);
	if (x.failed) {
		vactl_report(v, x.err_what, &x.err);
		fprintf(stderr, "vactl: exec: lost command %d; it may still run in the guest "
			"(vactl call va.exec.kill i:%d)\n", x.id, x.id);
		return EXIT_VACTL_FAILED;
	}
	if (x.leave_sig && !finished(&x))
		return 128 + x.leave_sig;
	if (x.timed_out)
		fprintf(stderr, "vactl: exec: the command ran longer than --timeout: its process "
			"group was killed\n");
	return x.status_signal ? 128 + x.status_signal : x.status_code;
}
