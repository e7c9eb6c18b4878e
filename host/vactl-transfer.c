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

#include "faults.h"
#include "vactl.h"

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

struct lane {
	struct xfer *x;
	int handle;            /* the remote handle, 0 when not open */
	int busy;              /* a call of this lane is in flight */
	uint64_t off;          /* the chunk it works on */
	size_t len;
	unsigned char *data;   /* push: the chunk, until it is in the write call */
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

/* ---- calls shared by both directions ---- */

static xmlrpc_value *
params_of(const char *format, ...)
{
	xmlrpc_env env;
	xmlrpc_value *v = NULL;
	const char *tail = NULL;
	va_list ap;

	xmlrpc_env_init(&env);
	va_start(ap, format);
	xmlrpc_build_value_va(&env, format, ap, &v, &tail);
	va_end(ap);
	if (env.fault_occurred)
		v = NULL;
	xmlrpc_env_clean(&env);
	return v;
}

/* Starts method(params) for lane l; params is consumed.  0, or -1 (failed). */
static int
lane_start(struct lane *l, const char *method, xmlrpc_value *params, vactl_done_fn *done)
{
	struct vactl_error err = { 0 };

	if (!params) {
		fail_local(l->x, "%s: out of memory", method);
		return -1;
	}
	int r = vactl_start(l->x->v, method, params, done, l, &err);
	xmlrpc_DECREF(params);
	if (r < 0) {
		fail(l->x, method, &err);
		return -1;
	}
	l->busy = 1;
	return 0;
}

static void
seek_params_start(struct lane *l, vactl_done_fn *done)
{
	lane_start(l, "va.file.seek", params_of("(iIi)", l->handle, (xmlrpc_int64)l->off, 0), done);
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
close_done(void *arg, xmlrpc_value *result, const struct vactl_error *err)
{
	struct lane *l = arg;

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
		if (l->handle > 0)
			lane_start(l, "va.file.close", params_of("(i)", l->handle), close_done);
	}
	vactl_run_pending(x->v);
}

/* Compares the remote SHA-256 with ours; 0 when equal. */
static int
verify(struct xfer *x, const char *local_hex)
{
	struct vactl_error err = { 0 };
	xmlrpc_value *res = vactl_callf(x->v, &err, "va.file.checksum", "(s)", x->remote);

	if (!res) {
		fail(x, "va.file.checksum", &err);
		return -1;
	}
	const char *remote_hex = NULL;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_read_string(&env, res, &remote_hex);
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
	double rate = secs > 0 ? (double)x->done / secs : 0;
	char rbuf[32];

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
		fprintf(f, "pulled %s to %s: %" PRIu64 " bytes in %.2f s (%s/s), SHA-256 verified\n",
			x->remote, x->local, x->done, secs, rbuf);
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
		return 0;
	case 'J':
		if (vactl_parse_ulong(arg, 1, JOBS_MAX, &j) < 0) {
			vactl_usage_error(cmd, "--jobs: \"%s\" is not a number from 1 to %d", arg,
					  JOBS_MAX);
			return VACTL_EXIT_USAGE;
		}
		x->jobs = (int)j;
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

static void
pull_read_done(void *arg, xmlrpc_value *res, const struct vactl_error *err)
{
	struct lane *l = arg;
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
		pull_deliver(x, l->off, (unsigned char *)bytes, n);
	else
		free((void *)bytes);
	progress_draw(&x->prog, x->done, 0);
	pull_pump(x);
}

static void
pull_seek_done(void *arg, xmlrpc_value *res, const struct vactl_error *err)
{
	struct lane *l = arg;
	struct xfer *x = l->x;

	(void)res;
	l->busy = 0;
	if (err) {
		fail(x, "va.file.seek", err);
		return;
	}
	if (x->failed)
		return;
	lane_start(l, "va.file.read", params_of("(ii)", l->handle, (int)l->len), pull_read_done);
}

static void
pull_pump(struct xfer *x)
{
	uint64_t window = 2ull * (uint64_t)x->nlanes * x->chunk;

	for (int i = 0; i < x->nlanes; i++) {
		struct lane *l = &x->lanes[i];
		if (l->busy)
			continue;
		if (x->failed || vactl_interrupted || x->eof_known || x->next_off > x->horizon ||
		    x->next_off - x->written >= window)
			return;
		l->off = x->next_off;
		l->len = x->chunk;
		x->next_off += x->chunk;
		seek_params_start(l, pull_seek_done);
	}
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
	if (pull_open_local(&x, local) < 0) {
		if (!x.failed)
			fail_local(&x, "out of memory");
		goto out;
	}
	int n = x.jobs;
	if (x.size_known && x.size / x.chunk + 1 < (uint64_t)n)
		n = (int)(x.size / x.chunk + 1);
	if (open_lanes(&x, n, "r", "r", -1) < 0)
		goto out;
	double t0 = now_s();
	progress_start(&x);
	pull_pump(&x);
	vactl_run_pending(v);
	if (!x.failed && vactl_interrupted) {
		struct vactl_error e = { VACTL_ERR_INTERRUPTED, 0, "interrupted" };
		fail(&x, "pull", &e);
	}
	if (!x.failed && (!x.eof_known || x.pending || x.written != x.eof_off))
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
push_write_done(void *arg, xmlrpc_value *res, const struct vactl_error *err)
{
	struct lane *l = arg;
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
push_seek_done(void *arg, xmlrpc_value *res, const struct vactl_error *err)
{
	struct lane *l = arg;
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
	xmlrpc_value *p = params_of("(i6)", l->handle, l->data, l->len);
	free(l->data);
	l->data = NULL;
	lane_start(l, "va.file.write", p, push_write_done);
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

/* REMOTE, or REMOTE/NAME when REMOTE ends with '/' or is a directory in the guest. */
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
	if (push_remote_path(&x, remote, local) < 0)
		goto out;
	int n = x.jobs;
	if (x.size_known && (x.size + x.chunk - 1) / x.chunk < (uint64_t)n)
		n = x.size ? (int)((x.size + x.chunk - 1) / x.chunk) : 1;
	if (open_lanes(&x, n, "w", "r+", x.mode == (mode_t)-1 ? -1 : (int)x.mode) < 0)
		goto out;
	double t0 = now_s();
	progress_start(&x);
	push_pump(&x);
	vactl_run_pending(v);
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
	}
	xfer_free(&x);
	return rc;
}
