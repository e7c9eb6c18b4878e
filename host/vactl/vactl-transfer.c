/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-transfer.c - vactl push and pull: files to and from the guest in
 * chunks, several in flight, checked with SHA-256 at the end.
 *
 * The agent's file methods have no offset: a read or write happens at the
 * handle's position.  So each "lane" has a handle of its own and does
 * va.file.seek then va.file.read (or va.file.write) for each chunk it
 * takes; the lanes take chunks in file order, and run side by side
 * (--jobs, calls in flight through the proxy).  Nothing waits for the
 * whole file: a pull writes the chunks to LOCAL in order as soon as they
 * are contiguous (at most 2 x jobs chunks wait in memory), a push reads
 * LOCAL in order as lanes need chunks.  Both feed the SHA-256 (nettle)
 * as the bytes pass, and compare it with va.file.checksum at the end.
 *
 * A pull stops at the end of the remote file (a short read), not at the
 * size va.file.stat gave, so a symlink (whose stat is the link's) works.
 * It writes to a temporary file beside LOCAL and renames it at the end;
 * on any failure, or SIGINT/SIGTERM/SIGHUP, the temporary file is
 * removed.  A failed push cannot remove the remote file (the agent has
 * no method for it) and says so.
 *
 * The lanes' calls (va.file.seek, read, write and close) do not go
 * through vactl_call: each lane posts them itself on a post of its own
 * (vactl-http.c: an easy handle, one keep-alive connection per lane), all
 * in vactl's one libcurl multi handle.  Measured on 2 CPUs, xmlrpc-c
 * spent most of a pull's CPU time building a value tree for each 1 MiB
 * chunk and decoding its base64 (~95 MB/s), and most of a push's
 * serialising it.  So a lane writes the calls' XML itself (the base64 of
 * a write with common/b64.h), and reads a va.file.read answer of the
 * usual shape (see scan_read_response) straight into the chunk's buffer;
 * any other answer, faults included, is parsed by vactl_parse_answer
 * (the gate, then xmlrpc-c).  The other calls (open, stat, checksum)
 * use vactl_call, or common/rpc.h's serialiser on a lane's post (the
 * early checksum of a pull).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "b64.h"
#include "buf.h"
#include "contract.h"
#include "rpc.h"
#include "text.h"
#include "vactl.h"
#include "xmlscan.h"

/*
 * Measured on 2 CPUs (agent, proxy and vactl on one host, 100 MiB): 8
 * calls of 1 MiB in flight moved 75-100 MiB/s both ways, 4 calls of 4 MiB
 * 35-60 MiB/s: smaller calls keep the three processes busy at once, and
 * xmlrpc-c's cost per byte grows with the size of a value.
 */
#define CHUNK_DEFAULT (1u * 1024 * 1024)
/* The agent's largest read count and write size (agent/agent.h VA_FILE_MAX_CHUNK). */
#define CHUNK_MAX (8u * 1024 * 1024)
#define CHUNK_MIN 1024u
#define JOBS_DEFAULT 8
#define JOBS_MAX 16
/* The progress bar is redrawn at most this often (seconds). */
#define PROGRESS_INTERVAL 0.1

struct xfer;

/* What a lane's call answers: how the answer is read. */
enum lane_call {
	CALL_GENERIC, /* vactl_parse_answer reads the answer */
	CALL_READ,    /* va.file.read: scan_read_response first */
};

struct lane;
/* A lane's call finished: result (borrowed) or err. */
typedef void lane_done_fn(struct lane *l, xmlrpc_value *result, const struct vactl_error *err);

struct lane {
	struct xfer *x;
	int handle;            /* the remote handle, 0 when not open */
	int busy;              /* a call of this lane is in flight */
	uint64_t off;          /* the chunk it works on */
	size_t len;
	int has_next;          /* pull: the chunk right after off is this lane's too */
	unsigned char *data;   /* push: the chunk, until it is in the write call */
	/* The lane's own HTTP calls; the call's XML is its body. */
	struct vactl_post *post;
	enum lane_call kind;
	lane_done_fn *done;
};

struct chunk {
	struct chunk *next;
	uint64_t off;
	size_t len;
	unsigned char *data;
};

struct progress {
	int on;
	double start, last;
	uint64_t total;
	int total_known;
	int drawn;
};

struct xfer {
	struct vactl *v;
	int push;
	const char *cmd;          /* "push" or "pull" */
	char *remote;
	char *local;              /* for messages: the final local path, or "-" */
	int fd;                   /* the local file */
	char *tmp_path;           /* pull: written here, renamed to local at the end */
	mode_t mode;              /* pull: mode of the local file */
	uint64_t size;            /* known size, for the progress and the lane count */
	int size_known;
	size_t chunk;
	int jobs;
	uint64_t next_off;        /* the next chunk's offset */
	uint64_t horizon;         /* pull: no chunk starts past this */
	int eof_known;            /* pull: a short read showed where the file ends */
	uint64_t eof_off;
	int local_eof;            /* push: LOCAL is exhausted */
	uint64_t written;         /* pull: bytes written to LOCAL, in order */
	uint64_t done;            /* bytes through (progress) */
	struct chunk *pending;    /* pull: chunks waiting for their turn, by offset */
	struct sha256_ctx sha;
	int failed;
	struct vactl_error err;
	char err_what[64];
	struct lane lanes[JOBS_MAX];
	int nlanes;
	struct progress prog;
	int in_flight;            /* the lanes' calls */
	int no_stream;            /* --no-stream (or --chunk-size, --jobs): the lanes only */
	int streamed;             /* went through the file endpoint (vactl-stream.c) */
	int stream_ok;            /* ... and the answer was a success */
	int remote_exists;        /* push: REMOTE is a file already (keeps its mode) */
	int cont;                 /* pull --continue */
	uint64_t resume_from;     /* pull --continue: LOCAL's bytes kept */
	struct lane sum;          /* pull: the early va.file.checksum (see pull_pump) */
	int sum_started;
	char *sum_hex;            /* its answer, when it came */
};

/* ---- small helpers ---- */

static double
now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void
fail(struct xfer *x, const char *what, const struct vactl_error *err)
{
	if (x->failed)
		return;
	x->failed = 1;
	x->err = *err;
	snprintf(x->err_what, sizeof(x->err_what), "%s", what);
}

static void
fail_local(struct xfer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail_local(struct xfer *x, const char *fmt, ...)
{
	struct vactl_error err = { 0 };
	va_list ap;

	err.kind = VACTL_ERR_LOCAL;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	fail(x, x->cmd, &err);
}

/*
 * 0 when the guest path (or what, a part of it) can be sent, else -1
 * after a usage error naming it and saying why.
 */
static int
check_remote(const char *cmd, const char *what, const char *path)
{
	char why[160];

	if (vactl_text_check(path, strlen(path), why, sizeof(why)) == 0)
		return 0;
	vactl_usage_error(cmd, "%s: %s (a guest path is UTF-8 text that XML can carry)", what,
			  why);
	return -1;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static char *
join_path(const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	char *p = malloc(dl + 1 + strlen(name) + 1);

	if (p)
		sprintf(p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);
	return p;
}

static void
hex_digest(struct sha256_ctx *ctx, char hex[2 * SHA256_DIGEST_SIZE + 1])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_digest(ctx, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR && !vactl_interrupted)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to n bytes (fewer only at the end); -1 with errno. */
static ssize_t
read_full(int fd, unsigned char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR && !vactl_interrupted)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* ---- the progress bar ---- */

static void
human_bytes(double b, char *buf, size_t len)
{
	if (b >= 1024.0 * 1024 * 1024)
		snprintf(buf, len, "%.2f GiB", b / (1024.0 * 1024 * 1024));
	else if (b >= 1024.0 * 1024)
		snprintf(buf, len, "%.1f MiB", b / (1024.0 * 1024));
	else if (b >= 1024.0)
		snprintf(buf, len, "%.1f KiB", b / 1024.0);
	else
		snprintf(buf, len, "%.0f B", b);
}

static void
human_eta(double s, char *buf, size_t len)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t % 3600 / 60, t % 60);
	else
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static int
term_width(void)
{
	struct winsize ws;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col > 200 ? 200 : ws.ws_col;
	return 80;
}

/* Width of everything on the line but the bar: "100% []" and the figures. */
#define PROGRESS_TEXT_WIDTH 56

static void
progress_draw(struct progress *p, uint64_t done, int final)
{
	double now = now_s();
	char amount[64], total[32], rate[32] = "--", when[40] = "", line[512];

	if (!p->on || (!final && now - p->last < PROGRESS_INTERVAL))
		return;
	p->last = now;
	p->drawn = 1;
	double el = now - p->start;
	double bps = el > 0.2 ? (double)done / el : 0;
	human_bytes((double)done, amount, sizeof(amount));
	if (bps > 0)
		human_bytes(bps, rate, sizeof(rate));
	if (p->total_known) {
		human_bytes((double)p->total, total, sizeof(total));
		size_t al = strlen(amount);
		snprintf(amount + al, sizeof(amount) - al, " / %s", total);
	}
	if (final) {
		snprintf(when, sizeof(when), "  in %.1f s", el);
	} else if (p->total_known && bps > 0 && done < p->total) {
		char eta[32];
		human_eta((double)(p->total - done) / bps, eta, sizeof(eta));
		snprintf(when, sizeof(when), "  ETA %s", eta);
	}
	char tail[160];
	snprintf(tail, sizeof(tail), " %s  %s/s%s", amount, rate, when);
	if (p->total_known) {
		int pct = p->total ? (int)((double)done * 100.0 / (double)p->total) : 100;
		if (pct > 100)
			pct = 100;
		/* A bar of fixed width, so that it does not jump as the figures change. */
		int barw = term_width() - PROGRESS_TEXT_WIDTH;
		if (barw < 10)
			barw = 10;
		if (barw > 50)
			barw = 50;
		int fill = p->total ? (int)((double)barw * (double)done / (double)p->total) : barw;
		if (fill > barw)
			fill = barw;
		char bar[64];
		for (int i = 0; i < barw; i++)
			bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
		bar[barw] = '\0';
		snprintf(line, sizeof(line), "\r%3d%% [%s]%s", pct, bar, tail);
	} else {
		snprintf(line, sizeof(line), "\r%s", tail + 1);
	}
	fputs(line, stderr);
	fputs("\033[K", stderr); /* clears what a longer line left */
	fflush(stderr);
}

static void
progress_end(struct progress *p, uint64_t done, int ok)
{
	if (!p->on)
		return;
	if (ok)
		progress_draw(p, done, 1);
	if (p->drawn)
		fputc('\n', stderr);
	p->on = 0;
}

/* ---- the lanes' calls (libcurl, see the top of the file) ---- */

#define CALL_HEAD \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodCall>\r\n" \
	"<methodName>%s</methodName>\r\n<params>\r\n"
#define CALL_INT "<param><value><i4>%d</i4></value></param>\r\n"
#define CALL_TAIL "</params>\r\n</methodCall>\r\n"

/* The XML of the lane's next call, emptied for writing. */
static struct va_buf *
lane_body(struct lane *l)
{
	struct va_buf *b = vactl_post_body(l->post);
	b->len = 0;
	return b;
}

/* A post for each lane (after open_lanes) and for the early checksum.  0 or -1. */
static int
wire_open(struct xfer *x)
{
	for (int i = 0; i <= x->nlanes; i++) {
		struct lane *l = i < x->nlanes ? &x->lanes[i] : &x->sum;
		l->x = x;
		l->post = vactl_post_new(x->v);
		if (!l->post) {
			fail_local(x, "out of memory");
			return -1;
		}
	}
	return 0;
}

static void
wire_close(struct xfer *x)
{
	for (int i = 0; i <= JOBS_MAX; i++) {
		struct lane *l = i < JOBS_MAX ? &x->lanes[i] : &x->sum;
		vactl_post_free(l->post);
		l->post = NULL;
	}
}

static void lane_answer(void *arg, const char *body, size_t len, const struct vactl_error *err);

/* Posts the lane's body; done runs from wire_run.  0, or -1 (failed). */
static int
lane_post(struct lane *l, const char *method, enum lane_call kind, lane_done_fn *done)
{
	struct xfer *x = l->x;
	struct vactl_error err = { 0 };

	l->kind = kind;
	l->done = done;
	if (vactl_post_start(l->post, lane_answer, l, &err) < 0) {
		fail(x, method, &err);
		return -1;
	}
	l->busy = 1;
	x->in_flight++;
	return 0;
}

/* A call of method with int parameters (at most 3); 0, or -1 (failed). */
static int
lane_call_ints(struct lane *l, const char *method, enum lane_call kind, lane_done_fn *done,
	       int n, int a, int b)
{
	struct va_buf *req = lane_body(l);
	if (va_buf_printf(req, CALL_HEAD, method) < 0 ||
	    (n > 0 && va_buf_printf(req, CALL_INT, a) < 0) ||
	    (n > 1 && va_buf_printf(req, CALL_INT, b) < 0) ||
	    va_buf_printf(req, CALL_TAIL) < 0) {
		fail_local(l->x, "%s: out of memory", method);
		return -1;
	}
	return lane_post(l, method, kind, done);
}

static void
seek_params_start(struct lane *l, lane_done_fn *done)
{
	if (va_buf_printf(lane_body(l), CALL_HEAD CALL_INT
			  "<param><value><i8>%" PRIu64 "</i8></value></param>\r\n" CALL_INT CALL_TAIL,
			  "va.file.seek", l->handle, l->off, 0) < 0) {
		fail_local(l->x, "va.file.seek: out of memory");
		return;
	}
	lane_post(l, "va.file.seek", CALL_GENERIC, done);
}

static int scan_read_response(struct lane *l, const char *body, size_t len);

/* A lane's call ended: read the answer and run its completion. */
static void
lane_answer(void *arg, const char *body, size_t len, const struct vactl_error *http_err)
{
	struct lane *l = arg;
	struct vactl_error err = { 0 };

	l->x->in_flight--;
	l->busy = 0;
	if (http_err) {
		l->done(l, NULL, http_err);
		return;
	}
	if (l->kind == CALL_READ && scan_read_response(l, body, len) == 0)
		return; /* delivered */
	xmlrpc_value *result = vactl_parse_answer(body, len, &err);
	if (!result) {
		l->done(l, NULL, &err);
		return;
	}
	l->done(l, result, NULL);
	xmlrpc_DECREF(result);
}

/* Runs the lanes' calls until none is in flight (completions start more). */
static void
wire_run(struct xfer *x)
{
	vactl_http_run(x->v, NULL);
}

/* Opens handles for n lanes: the first with mode first_mode, the others with mode. */
static int
open_lanes(struct xfer *x, int n, const char *first_mode, const char *mode, int perm)
{
	for (int i = 0; i < n; i++) {
		struct vactl_error err = { 0 };
		const char *m = i == 0 ? first_mode : mode;
		xmlrpc_value *res = perm >= 0 ?
			vactl_callf(x->v, &err, "va.file.open", "(ssi)", x->remote, m, perm) :
			vactl_callf(x->v, &err, "va.file.open", "(ss)", x->remote, m);
		if (!res) {
			fail(x, "va.file.open", &err);
			return -1;
		}
		int64_t h = 0;
		int ok = vactl_value_int64(res, &h) == 0 && h > 0 && h <= INT_MAX;
		xmlrpc_DECREF(res);
		if (!ok) {
			err.kind = VACTL_ERR_PROTOCOL;
			snprintf(err.msg, sizeof(err.msg), "va.file.open did not answer a handle");
			fail(x, "va.file.open", &err);
			return -1;
		}
		x->lanes[i].x = x;
		x->lanes[i].handle = (int)h;
		x->nlanes = i + 1;
		/* Only the first open may create and truncate. */
		perm = -1;
	}
	return 0;
}

static void
close_done(struct lane *l, xmlrpc_value *result, const struct vactl_error *err)
{
	(void)result;
	l->busy = 0;
	l->handle = 0;
	if (err && l->x->push)
		fail(l->x, "va.file.close", err);
}

/* Closes the open handles (all at once), unless the link is known to be down. */
static void
close_lanes(struct xfer *x)
{
	if (x->failed) {
		const struct vactl_error *e = &x->err;
		if (e->kind != VACTL_ERR_FAULT && e->kind != VACTL_ERR_LOCAL)
			return;
		if (e->kind == VACTL_ERR_FAULT &&
		    (e->code == VA_PROXY_FAULT_NOT_CONNECTED || e->code == VA_PROXY_FAULT_NOT_ANSWERING ||
		     e->code == VA_PROXY_FAULT_LOST || e->code == VA_PROXY_FAULT_TIMEOUT ||
		     e->code == VA_PROXY_FAULT_SHUTTING_DOWN))
			return; /* the agent closes idle handles itself */
	}
	for (int i = 0; i < x->nlanes; i++) {
		struct lane *l = &x->lanes[i];
		if (l->handle > 0 && l->post)
			lane_call_ints(l, "va.file.close", CALL_GENERIC, close_done, 1, l->handle, 0);
	}
	wire_run(x);
}

/* Compares the remote SHA-256 with ours; 0 when equal. */
static int
verify(struct xfer *x, const char *local_hex)
{
	if (x->sum_hex) {
		/* The pull's early checksum (see pull_pump) answered already. */
		int same = strcmp(x->sum_hex, local_hex) == 0;
		if (!same)
			fail_local(x, "the SHA-256 of %s in the guest (%s) differs from the bytes "
				   "copied (%s): the file changed during the copy, or the copy is "
				   "damaged", x->remote, x->sum_hex, local_hex);
		return same ? 0 : -1;
	}
	struct vactl_error err = { 0 };
	xmlrpc_value *res = vactl_callf(x->v, &err, "va.file.checksum", "(s)", x->remote);

	if (!res) {
		fail(x, "va.file.checksum", &err);
		return -1;
	}
	const char *remote_hex = NULL;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_read_string(&env, res, &remote_hex); /* text-ok: compared with hex digits */
	xmlrpc_DECREF(res);
	if (env.fault_occurred) {
		xmlrpc_env_clean(&env);
		fail_local(x, "va.file.checksum did not answer a string");
		return -1;
	}
	xmlrpc_env_clean(&env);
	int same = strcmp(remote_hex, local_hex) == 0;
	if (!same)
		fail_local(x, "the SHA-256 of %s in the guest (%s) differs from the bytes "
			   "copied (%s): the file changed during the copy, or the copy is damaged",
			   x->remote, remote_hex, local_hex);
	free((void *)remote_hex);
	return same ? 0 : -1;
}

static int
report_failure(struct xfer *x)
{
	int rc = vactl_report(x->v, x->cmd, &x->err);
	const struct vactl_error *e = &x->err;

	if (e->kind == VACTL_ERR_FAULT && (e->code == VA_PROXY_FAULT_TOO_LARGE ||
	    (e->code == VA_PROXY_FAULT_TIMEOUT && x->chunk > CHUNK_MIN)))
		fprintf(stderr, "vactl: %s: a smaller --chunk-size (now %zu bytes) may help\n",
			x->cmd, x->chunk);
	return rc;
}

static void
print_summary(struct xfer *x, const char *hex, double secs, FILE *f)
{
	double rate = secs > 0 ? (double)(x->done - x->resume_from) / secs : 0;
	char rbuf[32], kept[64] = "";

	if (x->resume_from)
		snprintf(kept, sizeof(kept), " (the first %" PRIu64 " were there)", x->resume_from);

	if (x->v->json) {
		fprintf(f, "{\"command\": \"%s\", \"local\": ", x->cmd);
		vactl_json_string(f, x->local, strlen(x->local));
		fprintf(f, ", \"remote\": ");
		vactl_json_string(f, x->remote, strlen(x->remote));
		fprintf(f, ", \"bytes\": %" PRIu64 ", \"seconds\": %.3f, \"sha256\": \"%s\"}\n",
			x->done, secs, hex);
		return;
	}
	human_bytes(rate, rbuf, sizeof(rbuf));
	if (x->push)
		fprintf(f, "pushed %s to %s: %" PRIu64 " bytes in %.2f s (%s/s), SHA-256 verified\n",
			x->local, x->remote, x->done, secs, rbuf);
	else
		fprintf(f, "pulled %s to %s: %" PRIu64 " bytes%s in %.2f s (%s/s), SHA-256 "
			"verified\n", x->remote, x->local, x->done, kept, secs, rbuf);
}

/* Options of push and pull. */
static int
xfer_option(void *ctx, const char *cmd, int opt, const char *arg)
{
	struct xfer *x = ctx;
	uint64_t n;
	unsigned long j;

	switch (opt) {
	case 'c':
		if (vactl_parse_size(arg, &n) < 0 || n < CHUNK_MIN || n > CHUNK_MAX) {
			vactl_usage_error(cmd, "--chunk-size: \"%s\" is not a size from %u bytes to "
					  "8M", arg, CHUNK_MIN);
			return VACTL_EXIT_USAGE;
		}
		x->chunk = (size_t)n;
		x->no_stream = 1; /* tunes the calls: so the calls it is */
		return 0;
	case 'S':
		x->no_stream = 1;
		return 0;
	case 'C':
		if (!x->push) {
			x->cont = 1;
			return 0;
		}
		break;
	case 'J':
		if (vactl_parse_ulong(arg, 1, JOBS_MAX, &j) < 0) {
			vactl_usage_error(cmd, "--jobs: \"%s\" is not a number from 1 to %d", arg,
					  JOBS_MAX);
			return VACTL_EXIT_USAGE;
		}
		x->jobs = (int)j;
		x->no_stream = 1;
		return 0;
	case 'm':
		if (x->push) {
			char *end;
			errno = 0;
			long m = strtol(arg, &end, 8);
			if (errno || end == arg || *end || m < 0 || m > 0777) {
				vactl_usage_error(cmd, "--mode: \"%s\" is not an octal mode from 0 to "
						  "0777", arg);
				return VACTL_EXIT_USAGE;
			}
			x->mode = (mode_t)m;
			return 0;
		}
		break;
	}
	vactl_usage_error(cmd, "unexpected option -%c", opt);
	return VACTL_EXIT_USAGE;
}

static void
xfer_init(struct xfer *x, struct vactl *v, int push)
{
	memset(x, 0, sizeof(*x));
	x->v = v;
	x->push = push;
	x->cmd = push ? "push" : "pull";
	x->fd = -1;
	x->chunk = CHUNK_DEFAULT;
	x->jobs = JOBS_DEFAULT;
	x->mode = (mode_t)-1;
	sha256_init(&x->sha);
}

static void
xfer_free(struct xfer *x)
{
	while (x->pending) {
		struct chunk *c = x->pending;
		x->pending = c->next;
		free(c->data);
		free(c);
	}
	for (int i = 0; i < JOBS_MAX; i++)
		free(x->lanes[i].data);
	wire_close(x);
	free(x->sum_hex);
	if (x->fd > 2)
		close(x->fd);
	free(x->remote);
	free(x->local);
	free(x->tmp_path);
}

static void
progress_start(struct xfer *x)
{
	x->prog.on = isatty(2);
	x->prog.start = now_s();
	x->prog.last = 0;
	x->prog.total = x->size;
	x->prog.total_known = x->size_known;
}

/* ---- pull ---- */

/* ---- the stream (vactl-stream.c) ---- */

static void
stream_sha(void *ctx, const void *p, size_t n)
{
	struct xfer *x = ctx;

	sha256_update(&x->sha, n, p);
}

static void
stream_progress(void *ctx, uint64_t done)
{
	struct xfer *x = ctx;

	x->done = x->resume_from + done;
	progress_draw(&x->prog, x->done, 0);
}

/*
 * The transfer as one stream through the proxy's file endpoint: 1 when it
 * went (x->sha and x->done hold it), 0 when the proxy or the agent has no
 * such endpoint or --no-stream (the lanes then do it), -1 when it failed
 * (x->failed).
 */
static int
try_stream(struct xfer *x)
{
	if (x->no_stream)
		return 0;
	struct vactl_stream_io io = {
		.pull = !x->push, .fd = x->fd, .local = x->local, .size = x->size,
		.size_known = x->size_known,
		.mode = x->push && x->mode != (mode_t)-1 && !x->remote_exists ? (int)x->mode : -1,
		.offset = x->resume_from,
		.sha_update = stream_sha, .progress = stream_progress, .ctx = x,
	};
	struct vactl_error e = { 0 };
	int r = vactl_stream_run(x->v, x->remote, &io);

	x->done = x->resume_from + io.done;
	switch (r) {
	case VACTL_STREAM_OK:
		x->streamed = x->stream_ok = 1;
		if (x->v->verbose)
			fprintf(stderr, "vactl: %s: %" PRIu64 " bytes through the file endpoint "
				"(HTTP %ld)\n", x->cmd, io.done, io.status);
		return 1;
	case VACTL_STREAM_UNSERVED:
		if (x->v->verbose)
			fprintf(stderr, "vactl: %s: no file endpoint (%s): using the XML-RPC "
				"methods\n", x->cmd, io.err);
		return 0;
	case VACTL_STREAM_INTERRUPTED:
		e.kind = VACTL_ERR_INTERRUPTED;
		snprintf(e.msg, sizeof(e.msg), "interrupted");
		break;
	case VACTL_STREAM_UNREACHABLE:
		e.kind = VACTL_ERR_UNREACHABLE;
		snprintf(e.msg, sizeof(e.msg), "%s", io.err);
		break;
	case VACTL_STREAM_HTTP:
		if (io.status == 401) {
			e.kind = VACTL_ERR_HTTP;
			e.code = 401;
			break;
		}
		e.kind = VACTL_ERR_LOCAL;
		snprintf(e.msg, sizeof(e.msg), "%.900s (HTTP %ld)", io.err, io.status);
		break;
	default:
		e.kind = VACTL_ERR_LOCAL;
		snprintf(e.msg, sizeof(e.msg), "%s", io.err);
		break;
	}
	x->streamed = 1; /* tried: the failure is the stream's */
	fail(x, x->cmd, &e);
	return -1;
}

static void pull_pump(struct xfer *x);

/* Writes the chunks that are next in order. */
static void
pull_flush(struct xfer *x)
{
	while (x->pending && x->pending->off == x->written && !x->failed) {
		struct chunk *c = x->pending;
		x->pending = c->next;
		if (write_all(x->fd, c->data, c->len) < 0)
			fail_local(x, "cannot write %s: %s", x->local, strerror(errno));
		sha256_update(&x->sha, c->len, c->data);
		x->written += c->len;
		free(c->data);
		free(c);
	}
}

static void
pull_deliver(struct xfer *x, uint64_t off, unsigned char *data, size_t len)
{
	struct chunk *c = malloc(sizeof(*c)), **pp = &x->pending;

	if (!c) {
		free(data);
		fail_local(x, "out of memory");
		return;
	}
	c->off = off;
	c->len = len;
	c->data = data;
	while (*pp && (*pp)->off < off)
		pp = &(*pp)->next;
	c->next = *pp;
	*pp = c;
	pull_flush(x);
}

/* A chunk read: bytes (the caller's, now ours) holds n bytes; eof as the agent said. */
static void
pull_read_result(struct lane *l, unsigned char *bytes, size_t n, int eof)
{
	struct xfer *x = l->x;

	if (n < l->len || eof) {
		/* A regular file's read is short only at its end. */
		if (!x->eof_known || l->off + n < x->eof_off) {
			x->eof_known = 1;
			x->eof_off = l->off + n;
		}
	} else if (l->off + n > x->horizon) {
		x->horizon = l->off + n; /* the file grew: read on */
	}
	x->done += n;
	if (n > 0)
		pull_deliver(x, l->off, bytes, n);
	else
		free(bytes);
	progress_draw(&x->prog, x->done, 0);
	pull_pump(x);
}

static void
pull_read_done(struct lane *l, xmlrpc_value *res, const struct vactl_error *err)
{
	struct xfer *x = l->x;
	xmlrpc_env env;
	xmlrpc_value *data = NULL;
	const unsigned char *bytes = NULL;
	size_t n = 0;
	int eof = 0;

	l->busy = 0;
	if (err) {
		fail(x, "va.file.read", err);
		return;
	}
	if (x->failed)
		return;
	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(res) == XMLRPC_TYPE_STRUCT)
		xmlrpc_struct_find_value(&env, res, "data", &data);
	if (!env.fault_occurred && data)
		xmlrpc_read_base64(&env, data, &n, &bytes);
	if (data)
		xmlrpc_DECREF(data);
	vactl_member_bool(res, "eof", &eof);
	if (env.fault_occurred || !data || n > l->len) {
		struct vactl_error e = { 0 };
		e.kind = VACTL_ERR_PROTOCOL;
		snprintf(e.msg, sizeof(e.msg), "va.file.read answered no usable data%s%s",
			 env.fault_occurred ? ": " : "", env.fault_occurred ? env.fault_string : "");
		fail(x, "va.file.read", &e);
		free((void *)bytes);
		xmlrpc_env_clean(&env);
		return;
	}
	xmlrpc_env_clean(&env);
	pull_read_result(l, (unsigned char *)bytes, n, eof);
}

/*
 * The fast read of a va.file.read answer: when it has exactly the shape
 * the agent writes,
 *   <?xml ...?> <methodResponse> <params> <param><value><struct>
 *   <member><name>data</name> <value><base64>TEXT</base64></value></member>
 *   <member><name>count</name> <value><i4>N</i4></value></member>
 *   <member><name>eof</name> <value><boolean>B</boolean></value></member>
 *   </struct></value></param> </params> </methodResponse>
 * (white space between elements), TEXT is decoded straight into the
 * chunk's buffer and the chunk delivered: 0.  Anything else: -1, and
 * vactl_parse_answer reads the answer.
 */
static int
scan_read_response(struct lane *l, const char *body, size_t len)
{
	struct va_scan s = { body, body + len };
	struct va_b64_dec dec;

	va_scan_ws(&s);
	if (s.end - s.p >= 5 && memcmp(s.p, "<?xml", 5) == 0) {
		const char *q = memchr(s.p, '>', (size_t)(s.end - s.p) < 256 ? (size_t)(s.end - s.p) : 256);
		if (!q || q[-1] != '?')
			return -1;
		s.p = q + 1;
	}
	if (va_scan_lit(&s, "<methodResponse>") || va_scan_lit(&s, "<params>") ||
	    va_scan_lit(&s, "<param><value><struct>") || va_scan_lit(&s, "<member><name>data</name>") ||
	    va_scan_lit(&s, "<value><base64>"))
		return -1;
	const char *text = s.p;
	const char *lt = memchr(s.p, '<', (size_t)(s.end - s.p));
	if (!lt)
		return -1;
	s.p = lt;
	if (va_scan_lit(&s, "</base64></value></member>") || va_scan_lit(&s, "<member><name>count</name>") ||
	    va_scan_lit(&s, "<value><i4>"))
		return -1;
	while (s.p < s.end && *s.p >= '0' && *s.p <= '9')
		s.p++;
	if (va_scan_lit(&s, "</i4></value></member>") || va_scan_lit(&s, "<member><name>eof</name>") ||
	    va_scan_lit(&s, "<value><boolean>") || s.p >= s.end || (*s.p != '0' && *s.p != '1'))
		return -1;
	int eof = *s.p++ == '1';
	if (va_scan_lit(&s, "</boolean></value></member>") || va_scan_lit(&s, "</struct></value></param>") ||
	    va_scan_lit(&s, "</params>") || va_scan_lit(&s, "</methodResponse>"))
		return -1;
	va_scan_ws(&s);
	if (s.p != s.end)
		return -1;

	unsigned char *bytes = malloc(l->len ? l->len : 1);
	if (!bytes)
		return -1;
	va_b64_dec_init(&dec, bytes, l->len);
	if (va_b64_dec_feed(&dec, text, (size_t)(lt - text)) < 0 || va_b64_dec_finish(&dec) < 0) {
		free(bytes); /* more than asked, or not base64: the parser says what */
		return -1;
	}
	l->busy = 0;
	if (l->x->failed) {
		free(bytes);
		return 0;
	}
	pull_read_result(l, bytes, dec.len, eof);
	return 0;
}

static void
pull_seek_done(struct lane *l, xmlrpc_value *res, const struct vactl_error *err)
{
	struct xfer *x = l->x;

	(void)res;
	l->busy = 0;
	if (err) {
		fail(x, "va.file.seek", err);
		return;
	}
	if (x->failed)
		return;
	lane_call_ints(l, "va.file.read", CALL_READ, pull_read_done, 2, l->handle, (int)l->len);
}

static void
sum_done(struct lane *l, xmlrpc_value *res, const struct vactl_error *err)
{
	const char *hex = NULL;
	xmlrpc_env env;

	l->busy = 0;
	if (err || !res)
		return; /* verify() asks again, and reports what goes wrong */
	xmlrpc_env_init(&env);
	xmlrpc_read_string(&env, res, &hex); /* text-ok: compared with hex digits */
	if (!env.fault_occurred) {
		free(l->x->sum_hex);
		l->x->sum_hex = strdup(hex);
		free((void *)hex);
	}
	xmlrpc_env_clean(&env);
}

/*
 * The SHA-256 of the remote file, asked for as soon as every chunk of a
 * file of known size has been asked for, rather than after the last one
 * arrived: the agent hashes the file while vactl and the proxy still work
 * on the last chunks, which took the checksum (~0.2 s of ~1 s for
 * 256 MiB) off a pull's critical path.  The check is as strict: the bytes
 * copied must equal the file as the agent hashed it, so a file that
 * changes during the copy still fails the pull.  When this call cannot
 * be made, verify() makes its own.
 */
static void
pull_start_sum(struct xfer *x)
{
	struct lane *l = &x->sum;
	xmlrpc_env env;

	x->sum_started = 1;
	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_array_new(&env), *path = NULL;
	if (!env.fault_occurred)
		path = va_text_value_z(&env, x->remote);
	if (!env.fault_occurred)
		xmlrpc_array_append_item(&env, params, path);
	if (!env.fault_occurred)
		va_rpc_serialize_call(&env, lane_body(l), "va.file.checksum", params);
	if (path)
		xmlrpc_DECREF(path);
	if (params)
		xmlrpc_DECREF(params);
	int ok = !env.fault_occurred;
	xmlrpc_env_clean(&env);
	if (ok)
		lane_post(l, "va.file.checksum", CALL_GENERIC, sum_done);
}

static void
pull_pump(struct xfer *x)
{
	uint64_t window = 2ull * (uint64_t)x->nlanes * x->chunk;

	/*
	 * A lane takes two chunks in a row when the window has room, and
	 * reads the second one without a va.file.seek (its handle is there
	 * already): a seek is a round trip that waits behind the other
	 * lanes' reads in the agent; saving half of them made a 256 MiB pull
	 * ~5% faster on 2 CPUs, at the same memory (the window is unchanged).
	 */
	for (int i = 0; i < x->nlanes; i++) {
		struct lane *l = &x->lanes[i];
		if (l->busy)
			continue;
		if (x->failed || vactl_interrupted)
			return;
		/* Reserved before the end was known: read it if it starts before. */
		if (l->has_next && (!x->eof_known || l->off + l->len < x->eof_off)) {
			l->has_next = 0;
			l->off += l->len;
			lane_call_ints(l, "va.file.read", CALL_READ, pull_read_done, 2, l->handle,
				       (int)l->len);
			continue;
		}
		l->has_next = 0;
		if (x->eof_known || x->next_off > x->horizon || x->next_off - x->written >= window)
			continue;
		l->off = x->next_off;
		l->len = x->chunk;
		x->next_off += x->chunk;
		if (x->next_off <= x->horizon && x->next_off + x->chunk - x->written <= window) {
			l->has_next = 1;
			x->next_off += x->chunk;
		}
		seek_params_start(l, pull_seek_done);
	}
	if (!x->sum_started && x->size_known && x->next_off > x->horizon && !x->failed &&
	    !vactl_interrupted)
		pull_start_sum(x);
}

/* Opens the local side: x->fd, and x->tmp_path when writing under a temporary name. */
static int
pull_open_local(struct xfer *x, const char *local)
{
	struct stat st;

	if (!strcmp(local, "-")) {
		x->local = strdup("-");
		x->fd = 1;
		return x->local ? 0 : -1;
	}
	if (stat(local, &st) == 0 && S_ISDIR(st.st_mode))
		x->local = join_path(local, base_name(x->remote));
	else
		x->local = strdup(local);
	if (!x->local)
		return -1;
	if (stat(x->local, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode)) {
			fail_local(x, "%s is a directory", x->local);
			return -1;
		}
		/* A device or a FIFO: written as it is, nothing to rename. */
		x->fd = open(x->local, O_WRONLY | O_CLOEXEC);
		if (x->fd < 0) {
			fail_local(x, "cannot open %s: %s", x->local, strerror(errno));
			return -1;
		}
		return 0;
	}
	char *copy = strdup(x->local);
	if (!copy)
		return -1;
	const char *dir = dirname(copy);
	x->tmp_path = malloc(strlen(dir) + strlen(base_name(x->local)) + 32);
	if (!x->tmp_path) {
		free(copy);
		return -1;
	}
	sprintf(x->tmp_path, "%s/.%s.vactl-XXXXXX", dir, base_name(x->local));
	free(copy);
	x->fd = mkstemp(x->tmp_path);
	if (x->fd < 0) {
		fail_local(x, "cannot create a file beside %s: %s", x->local, strerror(errno));
		free(x->tmp_path);
		x->tmp_path = NULL;
		return -1;
	}
	return 0;
}

/* Removes the temporary file of a failed pull. */
static void
pull_discard(struct xfer *x)
{
	if (x->tmp_path) {
		if (x->fd >= 0)
			close(x->fd);
		x->fd = -1;
		unlink(x->tmp_path);
	}
}

static int
pull_finish_local(struct xfer *x)
{
	if (!x->tmp_path)
		return 0;
	mode_t mask = umask(0);
	umask(mask);
	mode_t mode = (x->mode == (mode_t)-1 ? 0666 : x->mode) & ~mask;
	if (fchmod(x->fd, mode) < 0 || close(x->fd) < 0) {
		x->fd = -1;
		fail_local(x, "cannot finish %s: %s", x->tmp_path, strerror(errno));
		return -1;
	}
	x->fd = -1;
	if (rename(x->tmp_path, x->local) < 0) {
		fail_local(x, "cannot rename %s to %s: %s", x->tmp_path, x->local, strerror(errno));
		return -1;
	}
	free(x->tmp_path);
	x->tmp_path = NULL;
	return 0;
}

/* va.file.stat of the remote file: its size and mode; refuses what is not a file. */
static int
pull_stat(struct xfer *x)
{
	struct vactl_error err = { 0 };
	xmlrpc_value *res = vactl_callf(x->v, &err, "va.file.stat", "(s)", x->remote);

	if (!res) {
		fail(x, "va.file.stat", &err);
		return -1;
	}
	char *type = vactl_member_string(res, "type", NULL);
	int64_t size = 0, mode = 0;
	vactl_member_int64(res, "size", &size);
	vactl_member_int64(res, "mode", &mode);
	xmlrpc_DECREF(res);
	int rc = 0;
	if (type && !strcmp(type, "file")) {
		x->size = size > 0 ? (uint64_t)size : 0;
		x->size_known = 1;
		x->mode = (mode_t)(mode & 0777);
	} else if (type && !strcmp(type, "link")) {
		/* The stat is the link's: read to the end of the target. */
		x->size_known = 0;
	} else {
		fail_local(x, "%s in the guest is %s, not a regular file", x->remote,
			   !type ? "of an unknown type" : !strcmp(type, "dir") ? "a directory" :
			   type);
		rc = -1;
	}
	free(type);
	return rc;
}

/*
 * pull --continue: when LOCAL (a regular file) holds N > 0 bytes that are
 * the first N of REMOTE (va.file.checksum of that range agrees with
 * theirs), LOCAL is opened to be appended to, x->sha holds its N bytes,
 * and the pull starts at N: returns 1.  0: pull whole (nothing to
 * continue, or it differs: said on stderr), -1: failed.
 */
static int
pull_continue(struct xfer *x, const char *local)
{
	struct stat st;
	char *path = NULL;

	if (!strcmp(local, "-"))
		return 0;
	if (stat(local, &st) == 0 && S_ISDIR(st.st_mode))
		path = join_path(local, base_name(x->remote));
	else
		path = strdup(local);
	if (!path) {
		fail_local(x, "out of memory");
		return -1;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		if (fd >= 0)
			close(fd);
		free(path);
		return 0;
	}
	uint64_t n = (uint64_t)st.st_size;
	if (x->size_known && n > x->size) {
		fprintf(stderr, "vactl: pull: %s (%" PRIu64 " bytes) is larger than %s (%" PRIu64
			"): pulling it whole\n", path, n, x->remote, x->size);
		close(fd);
		free(path);
		return 0;
	}
	/* The local prefix's SHA-256, kept to go on with. */
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	unsigned char *buf = malloc(CHUNK_DEFAULT);
	uint64_t left = n;
	while (buf && left > 0) {
		ssize_t r = read_full(fd, buf, left < CHUNK_DEFAULT ? (size_t)left : CHUNK_DEFAULT);
		if (r <= 0)
			break;
		sha256_update(&ctx, (size_t)r, buf);
		left -= (uint64_t)r;
	}
	free(buf);
	if (left > 0) {
		fail_local(x, "cannot read %s: %s", path, left == n && !buf ? "out of memory" :
			   strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	struct sha256_ctx probe = ctx;
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	hex_digest(&probe, hex);
	struct vactl_error err = { 0 };
	xmlrpc_value *res = vactl_callf(x->v, &err, "va.file.checksum", "(sII)", x->remote,
					(xmlrpc_int64)0, (xmlrpc_int64)n);
	if (!res) {
		fail(x, "va.file.checksum", &err);
		close(fd);
		free(path);
		return -1;
	}
	const char *remote_hex = NULL;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_read_string(&env, res, &remote_hex); /* text-ok: compared with hex digits */
	xmlrpc_DECREF(res);
	int same = !env.fault_occurred && remote_hex && !strcmp(remote_hex, hex);
	xmlrpc_env_clean(&env);
	free((void *)remote_hex);
	if (!same) {
		fprintf(stderr, "vactl: pull: the %" PRIu64 " bytes of %s are not the start of %s: "
			"pulling it whole\n", n, path, x->remote);
		close(fd);
		free(path);
		return 0;
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		fail_local(x, "cannot seek in %s: %s", path, strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	x->fd = fd;
	x->local = path;
	x->sha = ctx;
	x->resume_from = x->next_off = x->written = x->done = n;
	if (x->v->verbose)
		fprintf(stderr, "vactl: pull: %s holds the first %" PRIu64 " bytes: going on from "
			"there\n", path, n);
	return 1;
}

int
vactl_cmd_pull(struct vactl *v, int argc, char **argv)
{
	struct xfer x;
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	int rc;

	xfer_init(&x, v, 0);
	rc = vactl_parse_xfer_options(v, argc, argv, 0, xfer_option, &x);
	if (rc)
		return rc;
	if (argc - optind != 2) {
		vactl_usage_error("pull", argc - optind < 2 ? "missing argument: pull REMOTE LOCAL" :
				  "too many arguments: pull REMOTE LOCAL");
		return VACTL_EXIT_USAGE;
	}
	const char *remote = argv[optind], *local = argv[optind + 1];
	if (remote[0] != '/') {
		vactl_usage_error("pull", "REMOTE must be an absolute path, not \"%s\"", remote);
		return VACTL_EXIT_USAGE;
	}
	if (check_remote("pull", "REMOTE", remote) < 0)
		return VACTL_EXIT_USAGE;
	if ((rc = vactl_setup(v)) || (rc = vactl_connect(v)))
		return rc;
	vactl_catch_signals();
	x.remote = strdup(remote);
	if (!x.remote) {
		fprintf(stderr, "vactl: out of memory\n");
		return VACTL_EXIT_FAULT;
	}
	x.horizon = UINT64_MAX;
	if (pull_stat(&x) < 0)
		goto out;
	if (x.size_known)
		x.horizon = x.size;
	int continued = x.cont ? pull_continue(&x, local) : 0;
	if (continued < 0)
		goto out;
	if (!continued && pull_open_local(&x, local) < 0) {
		if (!x.failed)
			fail_local(&x, "out of memory");
		goto out;
	}
	double t0 = now_s();
	progress_start(&x);
	int streamed = try_stream(&x);
	if (streamed == 0) {
		int n = x.jobs;
		if (x.size_known && x.size / x.chunk + 1 < (uint64_t)n)
			n = (int)(x.size / x.chunk + 1);
		if (open_lanes(&x, n, "r", "r", -1) < 0 || wire_open(&x) < 0)
			goto out;
		pull_pump(&x);
		wire_run(&x);
	}
	if (!x.failed && vactl_interrupted) {
		struct vactl_error e = { VACTL_ERR_INTERRUPTED, 0, "interrupted" };
		fail(&x, "pull", &e);
	}
	if (!streamed && !x.failed && (!x.eof_known || x.pending || x.written != x.eof_off))
		fail_local(&x, "%s changed while it was read (its end moved); nothing was kept",
			   x.remote);
	progress_end(&x.prog, x.done, !x.failed);
	close_lanes(&x);
	if (x.failed)
		goto out;
	double secs = now_s() - t0;
	hex_digest(&x.sha, hex);
	if (verify(&x, hex) < 0 || pull_finish_local(&x) < 0)
		goto out;
	print_summary(&x, hex, secs, x.fd == 1 || !strcmp(x.local, "-") ? stderr : stdout);
out:
	progress_end(&x.prog, x.done, 0);
	if (x.failed) {
		pull_discard(&x);
		rc = report_failure(&x);
	}
	xfer_free(&x);
	return rc;
}

/* ---- push ---- */

static void push_pump(struct xfer *x);

static void
push_write_done(struct lane *l, xmlrpc_value *res, const struct vactl_error *err)
{
	struct xfer *x = l->x;
	int64_t n = -1;

	l->busy = 0;
	if (err) {
		fail(x, "va.file.write", err);
		return;
	}
	if (x->failed)
		return;
	if (vactl_value_int64(res, &n) < 0 || n != (int64_t)l->len) {
		fail_local(x, "the guest wrote %" PRId64 " of %zu bytes at offset %" PRIu64
			   " of %s (is its disk full?)", n, l->len, l->off, x->remote);
		return;
	}
	x->done += l->len;
	progress_draw(&x->prog, x->done, 0);
	push_pump(x);
}

static void
push_seek_done(struct lane *l, xmlrpc_value *res, const struct vactl_error *err)
{
	struct xfer *x = l->x;

	(void)res;
	l->busy = 0;
	if (err || x->failed) {
		if (err)
			fail(x, "va.file.seek", err);
		free(l->data);
		l->data = NULL;
		return;
	}
	/* The call's XML, with the chunk's base64 written straight into it. */
	struct va_buf *req = lane_body(l);
	if (va_buf_printf(req, CALL_HEAD CALL_INT "<param><value><base64>\r\n",
			  "va.file.write", l->handle) < 0 ||
	    va_buf_reserve(req, va_b64_encoded_size(l->len)) < 0) {
		free(l->data);
		l->data = NULL;
		fail_local(x, "va.file.write: out of memory");
		return;
	}
	req->len += va_b64_encode_lines(l->data, l->len, (char *)req->data + req->len);
	free(l->data);
	l->data = NULL;
	if (va_buf_printf(req, "</base64></value></param>\r\n" CALL_TAIL) < 0) {
		fail_local(x, "va.file.write: out of memory");
		return;
	}
	lane_post(l, "va.file.write", CALL_GENERIC, push_write_done);
}

static void
push_pump(struct xfer *x)
{
	for (int i = 0; i < x->nlanes; i++) {
		struct lane *l = &x->lanes[i];
		if (l->busy)
			continue;
		if (x->failed || vactl_interrupted || x->local_eof)
			return;
		unsigned char *buf = malloc(x->chunk);
		if (!buf) {
			fail_local(x, "out of memory");
			return;
		}
		ssize_t n = read_full(x->fd, buf, x->chunk);
		if (n < 0) {
			fail_local(x, "cannot read %s: %s", x->local, strerror(errno));
			free(buf);
			return;
		}
		if (n == 0) {
			x->local_eof = 1;
			free(buf);
			return;
		}
		sha256_update(&x->sha, (size_t)n, buf);
		l->off = x->next_off;
		l->len = (size_t)n;
		l->data = buf;
		x->next_off += (uint64_t)n;
		seek_params_start(l, push_seek_done);
	}
}

/*
 * REMOTE, or REMOTE/NAME when REMOTE ends with '/' or is a directory in
 * the guest.  0, -1 (failed), or -2 when LOCAL's name cannot be sent
 * (printed).
 */
static int
push_remote_path(struct xfer *x, const char *remote, const char *local)
{
	size_t len = strlen(remote);
	int is_dir = len > 0 && remote[len - 1] == '/';

	if (!is_dir) {
		struct vactl_error err = { 0 };
		xmlrpc_value *res = vactl_callf(x->v, &err, "va.file.stat", "(s)", remote);
		if (res) {
			char *type = vactl_member_string(res, "type", NULL);
			is_dir = type && !strcmp(type, "dir");
			x->remote_exists = type && !strcmp(type, "file");
			free(type);
			xmlrpc_DECREF(res);
		} else if (err.kind != VACTL_ERR_FAULT) {
			fail(x, "va.file.stat", &err);
			return -1;
		}
	}
	if (is_dir) {
		if (!strcmp(local, "-")) {
			fail_local(x, "%s is a directory, and standard input has no name to give "
				   "the file", remote);
			return -1;
		}
		if (check_remote("push", "LOCAL's name", base_name(local)) < 0)
			return -2;
		x->remote = join_path(remote, base_name(local));
	} else {
		x->remote = strdup(remote);
	}
	if (!x->remote) {
		fail_local(x, "out of memory");
		return -1;
	}
	return 0;
}

int
vactl_cmd_push(struct vactl *v, int argc, char **argv)
{
	struct xfer x;
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	struct stat st;
	int rc;

	xfer_init(&x, v, 1);
	rc = vactl_parse_xfer_options(v, argc, argv, 1, xfer_option, &x);
	if (rc)
		return rc;
	if (argc - optind != 2) {
		vactl_usage_error("push", argc - optind < 2 ? "missing argument: push LOCAL REMOTE" :
				  "too many arguments: push LOCAL REMOTE");
		return VACTL_EXIT_USAGE;
	}
	const char *local = argv[optind], *remote = argv[optind + 1];
	if (remote[0] != '/') {
		vactl_usage_error("push", "REMOTE must be an absolute path, not \"%s\"", remote);
		return VACTL_EXIT_USAGE;
	}
	if (check_remote("push", "REMOTE", remote) < 0)
		return VACTL_EXIT_USAGE;
	/* Into a directory, LOCAL's name becomes part of the guest path. */
	if (remote[strlen(remote) - 1] == '/' && strcmp(local, "-") &&
	    check_remote("push", "LOCAL's name", base_name(local)) < 0)
		return VACTL_EXIT_USAGE;
	x.local = strdup(local);
	if (!x.local) {
		fprintf(stderr, "vactl: out of memory\n");
		return VACTL_EXIT_FAULT;
	}
	if (!strcmp(local, "-")) {
		x.fd = 0;
	} else {
		x.fd = open(local, O_RDONLY | O_CLOEXEC);
		if (x.fd < 0) {
			fprintf(stderr, "vactl: push: cannot open %s: %s\n", local, strerror(errno));
			xfer_free(&x);
			return VACTL_EXIT_FAULT;
		}
	}
	if (fstat(x.fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			fprintf(stderr, "vactl: push: %s is a directory\n", local);
			xfer_free(&x);
			return VACTL_EXIT_FAULT;
		}
		if (S_ISREG(st.st_mode)) {
			x.size = (uint64_t)st.st_size;
			x.size_known = 1;
			if (x.mode == (mode_t)-1 && x.fd != 0)
				x.mode = st.st_mode & 0777;
		}
	}
	if ((rc = vactl_setup(v)) || (rc = vactl_connect(v))) {
		xfer_free(&x);
		return rc;
	}
	vactl_catch_signals();
	if ((rc = push_remote_path(&x, remote, local)) < 0) {
		rc = rc == -2 ? VACTL_EXIT_USAGE : 0;
		if (rc) {
			xfer_free(&x);
			return rc;
		}
		goto out;
	}
	double t0 = now_s();
	progress_start(&x);
	if (try_stream(&x) == 0) {
		int n = x.jobs;
		if (x.size_known && (x.size + x.chunk - 1) / x.chunk < (uint64_t)n)
			n = x.size ? (int)((x.size + x.chunk - 1) / x.chunk) : 1;
		if (open_lanes(&x, n, "w", "r+", x.mode == (mode_t)-1 ? -1 : (int)x.mode) < 0 ||
		    wire_open(&x) < 0)
			goto out;
		push_pump(&x);
		wire_run(&x);
	}
	if (!x.failed && vactl_interrupted) {
		struct vactl_error e = { VACTL_ERR_INTERRUPTED, 0, "interrupted" };
		fail(&x, "push", &e);
	}
	progress_end(&x.prog, x.done, !x.failed);
	close_lanes(&x);
	if (x.failed)
		goto out;
	double secs = now_s() - t0;
	hex_digest(&x.sha, hex);
	if (verify(&x, hex) < 0)
		goto out;
	print_summary(&x, hex, secs, stdout);
out:
	progress_end(&x.prog, x.done, 0);
	if (x.failed) {
		rc = report_failure(&x);
		if (x.nlanes > 0)
			fprintf(stderr, "vactl: push: %s in the guest may be incomplete\n", x.remote);
		else if (x.streamed && x.done > 0 && !x.stream_ok)
			fprintf(stderr, "vactl: push: %s in the guest is unchanged; %s.partial holds "
				"what arrived\n", x.remote, x.remote);
	}
	xfer_free(&x);
	return rc;
}
