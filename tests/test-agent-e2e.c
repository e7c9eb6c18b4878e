/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-agent-e2e.c - end-to-end tests of the guest agent.
 *
 * Each suite starts the real va-agent on "unix-listen:DIR/agent.sock"
 * in a fresh mkdtemp directory and talks to it the way the host does:
 * through common/'s channel ("unix:DIR/agent.sock"), session and link,
 * serving the host.* methods the agent calls (host.hello,
 * host.clipboard.set, host.shutdown_notice) from an xmlrpc-c registry.
 * Guest-side tools (va-clip) run against the agent's control socket.
 *
 * Environment:
 *   VA_AGENT          the agent (default agent/va-agent, from the cwd:
 *                     make check runs the tests in the build directory)
 *   VA_CLIP           va-clip (default agent/va-clip)
 *   VA_AGENT_WRAPPER  words put before the agent's command, e.g.
 *                     "valgrind --error-exitcode=99 --leak-check=full"
 *                     (split at spaces; no quoting)
 *   VA_CLIP_WRAPPER   the same for va-clip
 *   VA_TEST_SLOW      scales every timeout (1 or "yes": x10; N: xN)
 *   VA_TEST_KEEP      keep the temporary directories
 *   VA_TEST_SUITE     run only this suite (agent, acl-block, acl-allow,
 *                     file-root, max-frame, config, clip-paste, cli)
 *   VA_DEBUG          log the test's own session at debug level
 *
 * Every wait is bounded.  The agent's stderr (its log) goes to
 * DIR/agent.log and is printed when a test of its suite failed.  Each
 * suite ends by stopping the agent with SIGTERM, which must make it send
 * host.shutdown_notice and exit 0 (under valgrind with an error exit
 * code, a leak or an invalid access fails that test).
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha2.h>
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "agent.h"
#include "buf.h"
#include "channel.h"
#include "frame.h"
#include "link.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "text.h"
#include "xmlgate.h"

#include "cunit-main.h"

/* ---- timing ---------------------------------------------------------- */

static unsigned slow = 1;

/* A timeout in ms, scaled by VA_TEST_SLOW. */
static unsigned
T(unsigned ms)
{
	return ms * slow;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- small checks that say what went wrong ---------------------------- */

static void
check_at(int ok, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (ok) {
		CU_assertImplementation(CU_TRUE, (unsigned)line, "ok", __FILE__, "", CU_FALSE);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

#define CHECK(cond, ...) check_at(!!(cond), __LINE__, __VA_ARGS__)

static int unix_connect(const char *path);
struct agent;
static char *path_in(const struct agent *a, const char *name);

/* ---- deterministic data ---------------------------------------------- */

struct prng {
	uint64_t s;
};

static uint64_t
prng_next(struct prng *p)
{
	p->s ^= p->s << 13;
	p->s ^= p->s >> 7;
	p->s ^= p->s << 17;
	return p->s;
}

/* Fills buf with the stream of seed; len must be a multiple of 8. */
static void
prng_fill(struct prng *p, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x = prng_next(p);
		memcpy(buf + i, &x, 8);
	}
}

static void
sha256_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[2 * SHA256_DIGEST_SIZE + 1])
{
	for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static int
sha256_file(const char *path, char hex[2 * SHA256_DIGEST_SIZE + 1])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	static uint8_t buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	sha256_init(&ctx);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		sha256_update(&ctx, (size_t)r, buf);
	close(fd);
	if (r < 0)
		return -1;
	sha256_digest(&ctx, sizeof(digest), digest);
	sha256_hex(digest, hex);
	return 0;
}

static int
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const uint8_t *p = data;

	if (fd < 0)
		return -1;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

/* The whole file (at most max bytes) into b; -1 when it cannot be read. */
static int
read_file(const char *path, struct va_buf *b, size_t max)
{
	char tmp[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	while ((r = read(fd, tmp, sizeof(tmp))) > 0 && b->len < max)
		va_buf_append(b, tmp, (size_t)r);
	close(fd);
	return r < 0 ? -1 : 0;
}

/* ---- XML-RPC values -------------------------------------------------- */

static int
value_equal(xmlrpc_value *a, xmlrpc_value *b)
{
	xmlrpc_env e;
	int eq = 0;

	if (!a || !b)
		return a == b;
	if (xmlrpc_value_type(a) != xmlrpc_value_type(b))
		return 0;
	xmlrpc_env_init(&e);
	switch (xmlrpc_value_type(a)) {
	case XMLRPC_TYPE_INT: {
		int x = 0, y = 1;
		xmlrpc_read_int(&e, a, &x);
		xmlrpc_read_int(&e, b, &y);
		eq = x == y;
		break;
	}
	case XMLRPC_TYPE_I8: {
		xmlrpc_int64 x = 0, y = 1;
		xmlrpc_read_i8(&e, a, &x);
		xmlrpc_read_i8(&e, b, &y);
		eq = x == y;
		break;
	}
	case XMLRPC_TYPE_BOOL: {
		xmlrpc_bool x = 0, y = 1;
		xmlrpc_read_bool(&e, a, &x);
		xmlrpc_read_bool(&e, b, &y);
		eq = !x == !y;
		break;
	}
	case XMLRPC_TYPE_DOUBLE: {
		double x = 0, y = 1;
		xmlrpc_read_double(&e, a, &x);
		xmlrpc_read_double(&e, b, &y);
		eq = x == y;
		break;
	}
	case XMLRPC_TYPE_DATETIME: {
		time_t x = 0, y = 1;
		unsigned ux = 0, uy = 1;
		xmlrpc_read_datetime_usec(&e, a, &x, &ux);
		xmlrpc_read_datetime_usec(&e, b, &y, &uy);
		eq = x == y && ux == uy;
		break;
	}
	case XMLRPC_TYPE_STRING: {
		const char *x = NULL, *y = NULL;
		size_t nx = 0, ny = 0;
		xmlrpc_read_string_lp(&e, a, &nx, &x);
		if (!e.fault_occurred)
			xmlrpc_read_string_lp(&e, b, &ny, &y);
		eq = !e.fault_occurred && nx == ny && memcmp(x, y, nx) == 0;
		free((void *)x);
		free((void *)y);
		break;
	}
	case XMLRPC_TYPE_BASE64: {
		const unsigned char *x = NULL, *y = NULL;
		size_t nx = 0, ny = 0;
		xmlrpc_read_base64(&e, a, &nx, &x);
		if (!e.fault_occurred)
			xmlrpc_read_base64(&e, b, &ny, &y);
		eq = !e.fault_occurred && nx == ny && memcmp(x, y, nx) == 0;
		free((void *)x);
		free((void *)y);
		break;
	}
	case XMLRPC_TYPE_NIL:
		eq = 1;
		break;
	case XMLRPC_TYPE_ARRAY: {
		int n = xmlrpc_array_size(&e, a);
		eq = n == xmlrpc_array_size(&e, b);
		for (int i = 0; eq && i < n; i++) {
			xmlrpc_value *x = NULL, *y = NULL;
			xmlrpc_array_read_item(&e, a, (unsigned)i, &x);
			xmlrpc_array_read_item(&e, b, (unsigned)i, &y);
			eq = !e.fault_occurred && value_equal(x, y);
			if (x)
				xmlrpc_DECREF(x);
			if (y)
				xmlrpc_DECREF(y);
		}
		break;
	}
	case XMLRPC_TYPE_STRUCT: {
		int n = xmlrpc_struct_size(&e, a);
		eq = n == xmlrpc_struct_size(&e, b);
		for (int i = 0; eq && i < n; i++) {
			xmlrpc_value *k = NULL, *x = NULL, *y = NULL;
			const char *key = NULL;
			xmlrpc_struct_read_member(&e, a, (unsigned)i, &k, &x);
			if (!e.fault_occurred)
				xmlrpc_read_string(&e, k, &key);
			if (!e.fault_occurred)
				xmlrpc_struct_find_value(&e, b, key, &y);
			eq = !e.fault_occurred && y && value_equal(x, y);
			free((void *)key);
			if (k)
				xmlrpc_DECREF(k);
			if (x)
				xmlrpc_DECREF(x);
			if (y)
				xmlrpc_DECREF(y);
		}
		break;
	}
	default:
		eq = 0;
	}
	if (e.fault_occurred)
		eq = 0;
	xmlrpc_env_clean(&e);
	return eq;
}

/* A member of a struct (a new reference), or NULL. */
static xmlrpc_value *
member(xmlrpc_value *st, const char *key)
{
	xmlrpc_env e;
	xmlrpc_value *v = NULL;

	if (!st || xmlrpc_value_type(st) != XMLRPC_TYPE_STRUCT)
		return NULL;
	xmlrpc_env_init(&e);
	xmlrpc_struct_find_value(&e, st, key, &v);
	xmlrpc_env_clean(&e);
	return v;
}

/* An int or i8 value; *ok is cleared when v is neither. */
static int64_t
as_int(xmlrpc_value *v, int *ok)
{
	xmlrpc_env e;
	int64_t r = 0;

	xmlrpc_env_init(&e);
	if (v && xmlrpc_value_type(v) == XMLRPC_TYPE_INT) {
		int i = 0;
		xmlrpc_read_int(&e, v, &i);
		r = i;
	} else if (v && xmlrpc_value_type(v) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 i = 0;
		xmlrpc_read_i8(&e, v, &i);
		r = i;
	} else if (ok) {
		*ok = 0;
	}
	xmlrpc_env_clean(&e);
	return r;
}

static int64_t
member_int(xmlrpc_value *st, const char *key, int *ok)
{
	xmlrpc_value *v = member(st, key);
	int64_t r = as_int(v, ok);
	if (v)
		xmlrpc_DECREF(v);
	return r;
}

/* A string member or value, malloc'd (NULL when it is not a string). */
static char *
as_string(xmlrpc_value *v, size_t *len)
{
	xmlrpc_env e;
	char *s = NULL;
	size_t n = 0;

	if (!v || xmlrpc_value_type(v) != XMLRPC_TYPE_STRING)
		return NULL;
	xmlrpc_env_init(&e);
	va_text_read(&e, v, &s, &n);
	xmlrpc_env_clean(&e);
	if (len)
		*len = n;
	return (char *)s;
}

static char *
member_string(xmlrpc_value *st, const char *key)
{
	xmlrpc_value *v = member(st, key);
	char *s = as_string(v, NULL);
	if (v)
		xmlrpc_DECREF(v);
	return s;
}

static int
member_bool(xmlrpc_value *st, const char *key, int *ok)
{
	xmlrpc_value *v = member(st, key);
	xmlrpc_bool b = 0;
	xmlrpc_env e;

	xmlrpc_env_init(&e);
	if (v && xmlrpc_value_type(v) == XMLRPC_TYPE_BOOL)
		xmlrpc_read_bool(&e, v, &b);
	else if (ok)
		*ok = 0;
	xmlrpc_env_clean(&e);
	if (v)
		xmlrpc_DECREF(v);
	return b;
}

/* Does the array of strings arr hold s? */
static int
array_has(xmlrpc_value *arr, const char *s)
{
	xmlrpc_env e;
	int found = 0;

	if (!arr || xmlrpc_value_type(arr) != XMLRPC_TYPE_ARRAY)
		return 0;
	xmlrpc_env_init(&e);
	int n = xmlrpc_array_size(&e, arr);
	for (int i = 0; i < n && !found; i++) {
		xmlrpc_value *v = NULL;
		xmlrpc_array_read_item(&e, arr, (unsigned)i, &v);
		char *str = as_string(v, NULL);
		found = str && strcmp(str, s) == 0;
		free(str);
		if (v)
			xmlrpc_DECREF(v);
	}
	xmlrpc_env_clean(&e);
	return found;
}

static int
array_size(xmlrpc_value *arr)
{
	xmlrpc_env e;
	int n;

	if (!arr || xmlrpc_value_type(arr) != XMLRPC_TYPE_ARRAY)
		return -1;
	xmlrpc_env_init(&e);
	n = xmlrpc_array_size(&e, arr);
	xmlrpc_env_clean(&e);
	return n;
}

static xmlrpc_value *
array_item(xmlrpc_value *arr, int i)
{
	xmlrpc_env e;
	xmlrpc_value *v = NULL;

	if (!arr || xmlrpc_value_type(arr) != XMLRPC_TYPE_ARRAY)
		return NULL;
	xmlrpc_env_init(&e);
	xmlrpc_array_read_item(&e, arr, (unsigned)i, &v);
	xmlrpc_env_clean(&e);
	return v;
}

/* ---- the agent process ----------------------------------------------- */

#define PATHLEN 256

struct agent {
	pid_t pid;       /* 0: not running */
	int exited;
	int status;      /* waitpid status once exited */
	char dir[PATHLEN / 2];
	char sock[PATHLEN];
	char ctl[PATHLEN];
	char log[PATHLEN];
	char conf[PATHLEN];
	char shut[PATHLEN];
	unsigned failures0; /* CUnit failures when the suite began */
	int log_shown;
};

static struct agent AG;

static const char *
agent_path(void)
{
	const char *p = getenv("VA_AGENT");
	return p && *p ? p : "agent/va-agent";
}

static const char *
clip_path(void)
{
	const char *p = getenv("VA_CLIP");
	return p && *p ? p : "agent/va-clip";
}

/* Appends the words of wrapper (split at blanks) to argv. */
static void
add_words(const char **argv, int *argc, char *copy)
{
	for (char *w = strtok(copy, " \t"); w; w = strtok(NULL, " \t"))
		argv[(*argc)++] = w;
}

/*
 * fork + exec of wrapper + prog + args, stdin from in_fd (or
 * /dev/null when -1), stdout to out_path, stderr to err_path (NULL: same
 * as stdout).  Returns the pid or -1.
 */
static pid_t
spawn(const char *wrapper_env, const char *prog, const char *const *args,
      int in_fd, const char *out_path, const char *err_path)
{
	const char *argv[96];
	int argc = 0;
	char *wcopy = NULL;
	const char *w = getenv(wrapper_env);

	if (w && *w) {
		wcopy = strdup(w);
		add_words(argv, &argc, wcopy);
	}
	argv[argc++] = prog;
	for (int i = 0; args && args[i] && argc < 94; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int err = err_path ? open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : out;
		if (in < 0 || out < 0 || err < 0)
			_exit(126);
		/* Never outlive the test (a killed test leaves no agent behind). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(125);
		if (in != 0)
			dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "test-agent-e2e: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(wcopy);
	return pid;
}

/* Has the agent exited?  Reaps it. */
static int
agent_exited(struct agent *a)
{
	if (a->pid <= 0 || a->exited)
		return 1;
	pid_t r = waitpid(a->pid, &a->status, WNOHANG);
	if (r == a->pid || (r < 0 && errno == ECHILD)) {
		a->exited = 1;
		return 1;
	}
	return 0;
}

static void
print_tail(const char *title, const char *path, size_t max)
{
	struct va_buf b = { 0 };

	if (read_file(path, &b, SIZE_MAX) < 0) {
		fprintf(stderr, "\n---- %s: %s cannot be read ----\n", title, path);
		return;
	}
	size_t off = b.len > max ? b.len - max : 0;
	fprintf(stderr, "\n---- %s (%s%s) ----\n", title, path, off ? ", last part" : "");
	fwrite(b.data + off, 1, b.len - off, stderr);
	fprintf(stderr, "---- end of %s ----\n", title);
	va_buf_free(&b);
}

/* Prints the agent's log once if a test of the suite has failed. */
static void
agent_show_log_if_failed(struct agent *a)
{
	if (a->dir[0] && !a->log_shown && CU_get_number_of_failures() > a->failures0) {
		a->log_shown = 1;
		print_tail("agent log", a->log, 48 * 1024);
	}
}

static int
is_socket(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * Starts the agent in a fresh directory.  extra: more arguments (NULL
 * terminated) or NULL.  with_control: pass --control unix:DIR/ctl.sock
 * (else "none").  pre: called with the directory before the start (to
 * make files the arguments name), or NULL.  Waits for the sockets.
 */
static int
agent_start(struct agent *a, const char *const *extra, int with_control,
	    void (*pre)(struct agent *a))
{
	char chan[PATHLEN + 32], ctl[PATHLEN + 32], shut[PATHLEN + 96];
	const char *args[64];
	int n = 0;

	memset(a, 0, sizeof(*a));
	a->failures0 = CU_get_number_of_failures();
	if (va_test_mkdtemp(a->dir, sizeof(a->dir), "va-e2e-") < 0) {
		CHECK(0, "mkdtemp %s: %s", a->dir, strerror(errno));
		a->dir[0] = 0;
		return -1;
	}
	snprintf(a->sock, sizeof(a->sock), "%s/agent.sock", a->dir);
	snprintf(a->ctl, sizeof(a->ctl), "%s/ctl.sock", a->dir);
	snprintf(a->log, sizeof(a->log), "%s/agent.log", a->dir);
	snprintf(a->conf, sizeof(a->conf), "%s/agent.conf", a->dir);
	snprintf(a->shut, sizeof(a->shut), "%s/shutdown-ran", a->dir);
	if (write_file(a->conf, "", 0, 0600) < 0) {
		CHECK(0, "cannot write %s", a->conf);
		return -1;
	}
	if (pre)
		pre(a);
	snprintf(chan, sizeof(chan), "unix-listen:%s", a->sock);
	snprintf(ctl, sizeof(ctl), "unix:%s", a->ctl);
	snprintf(shut, sizeof(shut),
		 "echo \"$VA_SHUTDOWN_MODE $VA_SHUTDOWN_DELAY\" >> %s", a->shut);
	args[n++] = "--channel";
	args[n++] = chan;
	args[n++] = "--control";
	args[n++] = with_control ? ctl : "none";
	args[n++] = "--config";
	args[n++] = a->conf;
	args[n++] = "--shutdown-command";
	args[n++] = shut;
	args[n++] = "--log-level";
	args[n++] = "debug";
	for (int i = 0; extra && extra[i] && n < 62; i++)
		args[n++] = extra[i];
	args[n] = NULL;

	a->pid = spawn("VA_AGENT_WRAPPER", agent_path(), args, -1, a->log, NULL);
	if (a->pid < 0) {
		CHECK(0, "fork: %s", strerror(errno));
		a->pid = 0;
		return -1;
	}
	uint64_t end = va_now_ms() + T(10000);
	while (va_now_ms() < end) {
		if (is_socket(a->sock) && (!with_control || is_socket(a->ctl)))
			return 0;
		if (agent_exited(a))
			break;
		sleep_ms(10);
	}
	CHECK(0, "the agent (%s) did not start: %s", agent_path(),
	      a->exited ? "it exited" : "no socket after 10 s");
	agent_show_log_if_failed(a);
	return -1;
}

/* Kills the agent if it still runs, shows the log after failures, removes the directory. */
static void
agent_cleanup(struct agent *a)
{
	if (a->pid > 0 && !agent_exited(a)) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, &a->status, 0);
		a->exited = 1;
	}
	agent_show_log_if_failed(a);
	if (a->dir[0] && !getenv("VA_TEST_KEEP"))
		va_test_rmtree(a->dir);
	a->dir[0] = 0;
	a->pid = 0;
}

/* ---- the host side: session over a channel --------------------------- */

#define MAX_RECORDS 64

/* A host.* call the agent made. */
struct record {
	char method[64];
	xmlrpc_value *params;
};

struct host {
	va_channel *ch;
	va_session *s;
	va_link *l;         /* NULL when the host pumps by hand (mitm) */
	int mitm;           /* rewrite the agent's X-Virtagent-Max-Frame 65536 -> 99999 */
	uint8_t *rbuf;
	struct va_buf carry;
	unsigned established;
	unsigned resets;
	struct record rec[MAX_RECORDS];
	unsigned nrec;
	unsigned nrec_dropped;
};

static xmlrpc_registry *host_reg;

static xmlrpc_value *
host_method(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct host *h = call_info;
	const char *name = server_info;

	if (h->nrec < MAX_RECORDS) {
		struct record *r = &h->rec[h->nrec++];
		snprintf(r->method, sizeof(r->method), "%s", name);
		xmlrpc_INCREF(params);
		r->params = params;
	} else {
		h->nrec_dropped++;
	}
	return xmlrpc_bool_new(env, 1);
}

static void
host_registry_init(void)
{
	static const char *const names[] = {
		"host.hello", "host.clipboard.set", "host.shutdown_notice",
		"host.ping", "host.event",
	};
	xmlrpc_env e;

	xmlrpc_env_init(&e);
	host_reg = xmlrpc_registry_new(&e);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !e.fault_occurred; i++) {
		struct xmlrpc_method_info3 mi = {
			.methodName = names[i],
			.methodFunction = host_method,
			.serverInfo = (void *)names[i],
			.signatureString = "?",
			.help = "records the call and answers true",
		};
		xmlrpc_registry_add_method3(&e, host_reg, &mi);
	}
	if (e.fault_occurred) {
		fprintf(stderr, "host registry: %s\n", e.fault_string);
		exit(2);
	}
	xmlrpc_env_clean(&e);
}

static void
host_on_request(void *opaque, va_session *s, uint64_t epoch, const char *tag,
		struct va_frame *req)
{
	struct host *h = opaque;
	/* The registry behind the gate, answered whatever happens. */
	va_rpc_serve(s, epoch, tag, req, host_reg, h);
}

static void
host_on_established(void *opaque, va_session *s)
{
	(void)s;
	((struct host *)opaque)->established++;
}

static void
host_on_reset(void *opaque, va_session *s, int by_peer)
{
	(void)s;
	(void)by_peer;
	((struct host *)opaque)->resets++;
}

static const struct va_session_ops host_ops = {
	.request = host_on_request,
	.established = host_on_established,
	.reset = host_on_reset,
};

static void
mitm_state(void *opaque, enum va_channel_state st)
{
	struct host *h = opaque;
	if (st == VA_CHANNEL_UP)
		va_session_peer_up(h->s, va_now_ms());
	else
		va_session_peer_down(h->s, va_now_ms());
}

/*
 * Opens a host session to the agent.  max_frame: our limit (0: default).
 * mitm: pump by hand and make the agent's announced limit of 65536 look
 * like 99999, so that our session sends what the agent must refuse.
 */
/* The loop of the test's host side (links of all hosts of a test). */
static va_loop *
host_loop(void)
{
	static va_loop *l;
	if (!l)
		l = va_loop_new();
	return l;
}

static struct host *
host_open(struct agent *a, size_t max_frame, int mitm)
{
	char spec[PATHLEN + 16], err[256];
	struct va_session_config cfg = { .name = "test-host", .max_frame = max_frame };
	struct host *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	snprintf(spec, sizeof(spec), "unix:%s", a->sock);
	if (va_channel_open(spec, &h->ch, err, sizeof(err)) < 0) {
		CHECK(0, "va_channel_open: %s", err);
		free(h);
		return NULL;
	}
	h->s = va_session_new(&cfg, &host_ops, h);
	h->mitm = mitm;
	if (mitm) {
		h->rbuf = malloc(256 * 1024);
		va_channel_set_state_cb(h->ch, mitm_state, h);
	} else if (h->s) {
		h->l = va_link_new(host_loop(), h->ch, h->s);
	}
	if (!h->s || (mitm ? !h->rbuf : !h->l)) {
		CHECK(0, "out of memory");
		va_link_free(h->l);
		va_session_free(h->s);
		va_channel_free(h->ch);
		free(h->rbuf);
		free(h);
		return NULL;
	}
	return h;
}

static void
host_close(struct host *h)
{
	if (!h)
		return;
	if (h->l)
		va_link_free(h->l);
	else
		va_channel_set_state_cb(h->ch, NULL, NULL);
	va_session_free(h->s);
	va_channel_free(h->ch);
	for (unsigned i = 0; i < h->nrec; i++)
		xmlrpc_DECREF(h->rec[i].params);
	free(h->rbuf);
	va_buf_free(&h->carry);
	free(h);
}

static void
mitm_flush(struct host *h)
{
	struct iovec iov[64];

	while (va_channel_state(h->ch) == VA_CHANNEL_UP) {
		size_t n = va_session_output_iov(h->s, iov, 64);
		if (n == 0)
			return;
		ssize_t w = va_channel_writev(h->ch, iov, (int)n);
		if (w <= 0)
			return;
		va_session_output_consume(h->s, (size_t)w);
	}
}

static void
host_flush(struct host *h)
{
	if (h->l)
		va_link_flush(h->l);
	else
		mitm_flush(h);
}

/* Rewrites the announced limit in the byte stream (see host_open). */
static void
mitm_feed(struct host *h, const uint8_t *data, size_t len)
{
	static const char from[] = "Max-Frame: 65536\r", to[] = "Max-Frame: 99999\r";
	const size_t k = sizeof(from) - 1;
	struct va_buf *c = &h->carry;

	va_buf_append(c, data, len);
	for (size_t i = 0; c->len >= k && i <= c->len - k; i++)
		if (c->data[i] == 'M' && memcmp(c->data + i, from, k) == 0)
			memcpy(c->data + i, to, k);
	/* Hold back a tail that may be the start of the pattern. */
	size_t keep = 0;
	for (size_t t = k - 1; t > 0 && !keep; t--)
		if (c->len >= t && memcmp(c->data + c->len - t, from, t) == 0)
			keep = t;
	va_session_input(h->s, c->data, c->len - keep, va_now_ms());
	va_buf_consume(c, c->len - keep);
}

/* One round of the host's loop: at most max_ms of waiting. */
static void
host_pump(struct host *h, int max_ms)
{
	struct pollfd pfd[VA_CHANNEL_MAX_POLLFDS];
	int timeout = max_ms;
	size_t n;

	if (!h) {
		sleep_ms((unsigned)max_ms);
		return;
	}
	if (h->l) {
		va_loop_run_once(host_loop(), max_ms);
		return;
	}
	uint64_t now = va_now_ms();
	n = va_channel_prepare(h->ch, pfd, VA_CHANNEL_MAX_POLLFDS,
			       va_session_output_pending(h->s) > 0, now, &timeout);
	uint64_t dl = va_session_deadline(h->s);
	if (dl != UINT64_MAX) {
		uint64_t wait = dl > now ? dl - now : 0;
		if (timeout < 0 || (uint64_t)timeout > wait)
			timeout = (int)(wait > INT32_MAX ? INT32_MAX : wait);
	}
	if (timeout < 0 || timeout > max_ms)
		timeout = max_ms;
	poll(pfd, n, timeout);
	unsigned ev = va_channel_dispatch(h->ch, pfd, n, va_now_ms());
	if (ev & VA_CHANNEL_READABLE) {
		for (int i = 0; i < 64; i++) {
			ssize_t r = va_channel_read(h->ch, h->rbuf, 256 * 1024);
			if (r <= 0)
				break;
			mitm_feed(h, h->rbuf, (size_t)r);
			mitm_flush(h);
		}
	}
	va_session_tick(h->s, va_now_ms());
	mitm_flush(h);
}

/*
 * Pumps h until cond holds or ms (scaled) pass.  Stops early when the
 * agent exited (cond is checked once more).  Evaluates to cond.
 */
#define WAIT_UNTIL(h, cond, ms)                                              \
	({                                                                   \
		uint64_t end_ = va_now_ms() + T(ms);                         \
		int ok_;                                                     \
		for (;;) {                                                   \
			if ((ok_ = !!(cond)))                                \
				break;                                       \
			if (va_now_ms() >= end_)                             \
				break;                                       \
			if (agent_exited(&AG)) {                             \
				host_pump((h), 5);                           \
				ok_ = !!(cond);                              \
				break;                                       \
			}                                                    \
			host_pump((h), 20);                                  \
		}                                                            \
		ok_;                                                         \
	})

/* The index of the first record of method at or after from, or -1. */
static int
find_record(struct host *h, const char *method, unsigned from)
{
	for (unsigned i = from; h && i < h->nrec; i++)
		if (strcmp(h->rec[i].method, method) == 0)
			return (int)i;
	return -1;
}

static unsigned
count_records(struct host *h, const char *method)
{
	unsigned n = 0;
	for (unsigned i = 0; h && i < h->nrec; i++)
		n += strcmp(h->rec[i].method, method) == 0;
	return n;
}

/* Opens a host session and waits for the handshake and host.hello. */
static struct host *
host_connect(struct agent *a, size_t max_frame, int mitm)
{
	struct host *h = host_open(a, max_frame, mitm);
	if (!h)
		return NULL;
	int ok = WAIT_UNTIL(h, va_session_is_ready(h->s) && find_record(h, "host.hello", 0) >= 0,
			    5000);
	CHECK(ok, "no handshake and host.hello from the agent within 5 s "
	      "(ready %d, established %u, records %u)",
	      va_session_is_ready(h->s), h->established, h->nrec);
	return h;
}

/* ---- calls ----------------------------------------------------------- */

struct result {
	int done;
	int err;          /* va_session_error, or -errno from va_session_call */
	xmlrpc_value *v;  /* the result, or NULL */
	int fault_code;
	char *fault;      /* the fault string, or NULL */
	char *bad;        /* the response could not be parsed: why */
	unsigned order;   /* completion order */
};

static unsigned completions;

static void
result_clean(struct result *r)
{
	if (r->v)
		xmlrpc_DECREF(r->v);
	free(r->fault);
	free(r->bad);
	memset(r, 0, sizeof(*r));
}

static void
on_call_done(void *opaque, int err, struct va_frame *resp)
{
	struct result *r = opaque;
	xmlrpc_env e;
	char *fs = NULL;

	r->done = 1;
	r->err = err;
	r->order = ++completions;
	if (err)
		return;
	xmlrpc_env_init(&e);
	/* Through the gate, as every host reads the agent: a string with
	 * characters above U+FFFF (a kernel log may hold one) is readable. */
	va_rpc_parse_response(&e, resp->body, resp->body_len, &r->v, &r->fault_code, &fs);
	if (e.fault_occurred) {
		r->bad = strdup(e.fault_string);
		r->v = NULL;
	} else if (fs) {
		r->fault = strdup(fs);
		free(fs);
		if (!r->fault)
			r->fault = strdup("");
		r->v = NULL;
	}
	xmlrpc_env_clean(&e);
	va_frame_free(resp);
}

/* Starts a call with a raw body.  Returns va_session_call's result. */
static int
call_start_body(struct host *h, struct result *r, const void *body, size_t len)
{
	memset(r, 0, sizeof(*r));
	int rc = va_session_call(h->s, body, len, T(30000), va_now_ms(), on_call_done, r);
	if (rc < 0) {
		r->done = 1;
		r->err = rc;
		return rc;
	}
	host_flush(h);
	return 0;
}

static int
call_start(struct host *h, struct result *r, const char *method, xmlrpc_value *params)
{
	xmlrpc_env e;
	struct va_buf b = { 0 };
	int rc;

	xmlrpc_env_init(&e);
	va_rpc_serialize_call(&e, &b, method, params);
	if (e.fault_occurred) {
		memset(r, 0, sizeof(*r));
		r->done = 1;
		r->err = -EINVAL;
		r->bad = strdup(e.fault_string);
		rc = -EINVAL;
	} else {
		rc = call_start_body(h, r, b.data, b.len);
	}
	va_buf_free(&b);
	xmlrpc_env_clean(&e);
	return rc;
}

static int
call_wait(struct host *h, struct result *r, unsigned ms)
{
	return WAIT_UNTIL(h, r->done, ms);
}

/* Builds params from fmt (xmlrpc_build_value, "(...)"), calls, waits. */
static void
callv(struct host *h, struct result *r, const char *method, const char *fmt, va_list ap)
{
	xmlrpc_env e;
	xmlrpc_value *params = NULL;
	const char *tail = NULL;

	xmlrpc_env_init(&e);
	xmlrpc_build_value_va(&e, fmt, ap, &params, &tail);
	if (e.fault_occurred) {
		memset(r, 0, sizeof(*r));
		r->done = 1;
		r->err = -EINVAL;
		r->bad = strdup(e.fault_string);
		xmlrpc_env_clean(&e);
		return;
	}
	xmlrpc_env_clean(&e);
	call_start(h, r, method, params);
	xmlrpc_DECREF(params);
	if (!call_wait(h, r, 30000) && !r->done) {
		r->done = 1;
		r->err = -ETIMEDOUT;
	}
}

static void
call(struct host *h, struct result *r, const char *method, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	callv(h, r, method, fmt, ap);
	va_end(ap);
}

static const char *
describe(const struct result *r, char *buf, size_t n)
{
	if (!r->done)
		snprintf(buf, n, "no answer");
	else if (r->err > 0)
		snprintf(buf, n, "session error %d (%s)", r->err, va_session_strerror(r->err));
	else if (r->err < 0)
		snprintf(buf, n, "call not made: %s", strerror(-r->err));
	else if (r->bad)
		snprintf(buf, n, "unparsable response: %s", r->bad);
	else if (r->fault)
		snprintf(buf, n, "fault %d: %s", r->fault_code, r->fault);
	else
		snprintf(buf, n, "a result of type %d", r->v ? (int)xmlrpc_value_type(r->v) : -1);
	return buf;
}

/* The call succeeded; returns its value (owned by r) or NULL. */
static xmlrpc_value *
ok_at(struct result *r, const char *what, int line)
{
	char d[1200];
	int ok = r->done && r->err == 0 && !r->bad && !r->fault && r->v;
	check_at(ok, line, "%s: expected a result, got %s", what, describe(r, d, sizeof(d)));
	return ok ? r->v : NULL;
}

/* The call answered a fault with code (0: any) whose text holds sub (NULL: any). */
static int
fault_at(struct result *r, int code, const char *sub, const char *what, int line)
{
	char d[1200];
	int ok = r->done && r->err == 0 && r->fault && (!code || r->fault_code == code) &&
		 (!sub || strstr(r->fault, sub));
	check_at(ok, line, "%s: expected fault %d containing \"%s\", got %s", what, code,
		 sub ? sub : "", describe(r, d, sizeof(d)));
	return ok;
}

#define OK(r, what) ok_at((r), (what), __LINE__)
#define FAULT(r, code, sub, what) fault_at((r), (code), (sub), (what), __LINE__)

/* Calls and expects a fault; frees the result. */
#define CALL_FAULT(h, code, sub, method, ...)                                \
	do {                                                                 \
		struct result r_;                                            \
		call((h), &r_, (method), __VA_ARGS__);                       \
		fault_at(&r_, (code), (sub), (method), __LINE__);            \
		result_clean(&r_);                                           \
	} while (0)

/* Calls and expects success; frees the result. */
#define CALL_OK(h, method, ...)                                              \
	do {                                                                 \
		struct result r_;                                            \
		call((h), &r_, (method), __VA_ARGS__);                       \
		ok_at(&r_, (method), __LINE__);                              \
		result_clean(&r_);                                           \
	} while (0)

/* Calls with a raw body and expects a fault; frees the result. */
static void
body_fault_at(struct host *h, const char *body, size_t len, int code, const char *what, int line)
{
	struct result r;
	call_start_body(h, &r, body, len);
	call_wait(h, &r, 10000);
	fault_at(&r, code, NULL, what, line);
	result_clean(&r);
}

#define BODY_FAULT(h, body, code, what) body_fault_at((h), (body), strlen(body), (code), (what), __LINE__)

/* va.ping answers true. */
static int
ping_at(struct host *h, int line)
{
	struct result r;
	xmlrpc_bool b = 0;
	xmlrpc_env e;

	call(h, &r, "va.ping", "()");
	xmlrpc_value *v = ok_at(&r, "va.ping", line);
	xmlrpc_env_init(&e);
	if (v)
		xmlrpc_read_bool(&e, v, &b);
	xmlrpc_env_clean(&e);
	check_at(!v || b, line, "va.ping did not answer true");
	result_clean(&r);
	return v && b;
}

#define PING(h) ping_at((h), __LINE__)

/* ---- the shared agent and host of a suite ---------------------------- */

static struct host *H;

static int
suite_cleanup(void)
{
	host_close(H);
	H = NULL;
	agent_cleanup(&AG);
	return 0;
}

static int
start_default(const char *const *extra, int with_control, void (*pre)(struct agent *a))
{
	host_close(H);
	H = NULL;
	if (agent_start(&AG, extra, with_control, pre) < 0)
		return -1;
	H = host_connect(&AG, 0, 0);
	return H && va_session_is_ready(H->s) ? 0 : -1;
}

#define NEED_AGENT()                                                         \
	do {                                                                 \
		if (!H || AG.pid <= 0 || agent_exited(&AG)) {                \
			CU_FAIL("the agent of this suite is not running");   \
			return;                                              \
		}                                                            \
	} while (0)

/* Last test of every suite: SIGTERM -> host.shutdown_notice, exit 0. */
static void
test_sigterm_clean_exit(void)
{
	NEED_AGENT();
	unsigned before = count_records(H, "host.shutdown_notice");
	int from = (int)H->nrec;

	CHECK(kill(AG.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	int exited = WAIT_UNTIL(H, agent_exited(&AG), 15000);
	CHECK(exited, "the agent did not exit within 15 s of SIGTERM");
	CHECK(count_records(H, "host.shutdown_notice") == before + 1,
	      "expected one host.shutdown_notice after SIGTERM, got %u",
	      count_records(H, "host.shutdown_notice") - before);
	int i = find_record(H, "host.shutdown_notice", (unsigned)from);
	if (i >= 0) {
		/* host.shutdown_notice(string mode, string reason), mode "stop". */
		xmlrpc_value *m = array_item(H->rec[i].params, 0), *why = array_item(H->rec[i].params, 1);
		char *s = as_string(m, NULL), *w = as_string(why, NULL);
		CHECK(s && strcmp(s, "stop") == 0, "notice mode \"%s\", expected stop",
		      s ? s : "(not a string)");
		CHECK(w && *w, "the notice gives no reason");
		free(s);
		free(w);
		if (m)
			xmlrpc_DECREF(m);
		if (why)
			xmlrpc_DECREF(why);
	}
	if (exited) {
		CHECK(WIFEXITED(AG.status) && WEXITSTATUS(AG.status) == 0,
		      "the agent's exit status is %s %d (99 under valgrind: errors or leaks)",
		      WIFEXITED(AG.status) ? "exit" : "signal",
		      WIFEXITED(AG.status) ? WEXITSTATUS(AG.status) : WTERMSIG(AG.status));
	}
	CHECK(!is_socket(AG.sock), "the agent left its channel socket behind");
	CHECK(!is_socket(AG.ctl), "the agent left its control socket behind");
}

/* ---- suite "agent": every method, with the default settings ----------- */

static void
test_start_default(void)
{
	CHECK(start_default(NULL, 1, NULL) == 0, "agent start failed");
}

static void
test_hello(void)
{
	NEED_AGENT();
	int i = find_record(H, "host.hello", 0);
	CHECK(i >= 0, "no host.hello");
	if (i < 0)
		return;
	xmlrpc_value *p = H->rec[i].params;
	CHECK(array_size(p) == 1, "host.hello has %d parameters, expected 1", array_size(p));
	xmlrpc_value *info = array_item(p, 0);
	CHECK(info && xmlrpc_value_type(info) == XMLRPC_TYPE_STRUCT, "host.hello's parameter is not a struct");
	char *version = member_string(info, "version");
	CHECK(version && strcmp(version, PACKAGE_VERSION) == 0, "hello version \"%s\", expected %s",
	      version ? version : "(none)", PACKAGE_VERSION);
	int ok = 1;
	CHECK(member_int(info, "protocol", &ok) == VA_AGENT_PROTOCOL && ok, "hello protocol");
	ok = 1;
	CHECK(member_int(info, "max_frame", &ok) == VA_FRAME_DEFAULT_MAX_BODY && ok, "hello max_frame");
	xmlrpc_value *methods = member(info, "methods");
	static const char *const expect[] = {
		"va.ping", "va.echo", "va.capabilities", "va.info", "va.shutdown",
		"va.file.open", "va.file.read", "va.file.write", "va.file.seek",
		"va.file.close", "va.file.stat", "va.file.checksum", "va.dmesg",
		"va.clipboard.get", "va.clipboard.set", "system.listMethods",
		"system.methodHelp", "system.methodSignature",
	};
	for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++)
		CHECK(array_has(methods, expect[k]), "host.hello does not list %s", expect[k]);
	CHECK(count_records(H, "host.hello") == 1, "%u host.hello calls, expected 1",
	      count_records(H, "host.hello"));
	free(version);
	if (methods)
		xmlrpc_DECREF(methods);
	if (info)
		xmlrpc_DECREF(info);
}

static void
test_ping(void)
{
	NEED_AGENT();
	PING(H);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "va.ping", "va.ping", "(i)", 1);
	/* Several in flight at once, answered each by its own tag. */
	struct result r[16];
	for (int i = 0; i < 16; i++) {
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		xmlrpc_value *p = xmlrpc_build_value(&e, "(i)", i);
		call_start(H, &r[i], "va.echo", p);
		xmlrpc_DECREF(p);
		xmlrpc_env_clean(&e);
	}
	int all = WAIT_UNTIL(H, ({ int d_ = 1; for (int i = 0; i < 16; i++) d_ &= r[i].done; d_; }), 10000);
	CHECK(all, "not every call of 16 in flight was answered");
	for (int i = 0; i < 16; i++) {
		xmlrpc_value *v = OK(&r[i], "va.echo in flight");
		xmlrpc_value *x = array_item(v, 0);
		CHECK(as_int(x, NULL) == i, "call %d got the answer of call %d", i, (int)as_int(x, NULL));
		if (x)
			xmlrpc_DECREF(x);
		result_clean(&r[i]);
	}
}

static void
test_echo(void)
{
	NEED_AGENT();
	xmlrpc_env e;
	struct result r;
	static const unsigned char bin[] = { 0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, '<', '&', 0 };

	xmlrpc_env_init(&e);
	xmlrpc_value *dt = xmlrpc_datetime_new_sec(&e, 1700000000);
	xmlrpc_value *inner = xmlrpc_build_value(&e,
		"{s:i,s:b,s:d,s:s,s:6,s:n,s:I,s:V,s:(i(s{s:()}))}",
		"int", -2147483647 - 1,
		"bool", (xmlrpc_bool)0,
		"double", -1234.25,
		"string", "<tag> & \"quotes\" '\xc3\xa9\xe2\x82\xac' \t\r\n end",
		"base64", bin, sizeof(bin),
		"nil",
		"i8", (xmlrpc_int64)-9000000000000000000LL,
		"dt", dt,
		"nested", 1, "two", "three");
	xmlrpc_value *params = xmlrpc_build_value(&e, "(ibdsV6nIV()(){})",
		2147483647, (xmlrpc_bool)1, 0.5, "", dt, bin, (size_t)0,
		(xmlrpc_int64)9000000000000000000LL, inner);
	CHECK(!e.fault_occurred, "building the echo parameters: %s", e.fault_string);
	if (e.fault_occurred) {
		xmlrpc_env_clean(&e);
		return;
	}
	call_start(H, &r, "va.echo", params);
	call_wait(H, &r, 10000);
	xmlrpc_value *v = OK(&r, "va.echo of every type");
	CHECK(v && value_equal(v, params), "va.echo did not return its parameters exactly");
	result_clean(&r);

	/* No parameters: an empty array. */
	call(H, &r, "va.echo", "()");
	v = OK(&r, "va.echo()");
	CHECK(array_size(v) == 0, "va.echo() gave %d items", array_size(v));
	result_clean(&r);

	/* A long string of BMP characters, and 200 parameters. */
	size_t n = 300000;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	big[n] = 0;
	xmlrpc_value *many = xmlrpc_array_new(&e);
	for (int i = 0; i < 200; i++) {
		xmlrpc_value *s = i == 100 ? xmlrpc_string_new(&e, big) : xmlrpc_int_new(&e, i);
		xmlrpc_array_append_item(&e, many, s);
		xmlrpc_DECREF(s);
	}
	call_start(H, &r, "va.echo", many);
	call_wait(H, &r, 10000);
	v = OK(&r, "va.echo of 200 parameters");
	CHECK(v && value_equal(v, many), "va.echo of 200 parameters differs");
	result_clean(&r);
	xmlrpc_DECREF(many);
	free(big);

	xmlrpc_DECREF(params);
	xmlrpc_DECREF(inner);
	xmlrpc_DECREF(dt);
	xmlrpc_env_clean(&e);
}

static const char *const va_methods[] = {
	"va.ping", "va.echo", "va.capabilities", "va.info", "va.shutdown",
	"va.file.open", "va.file.read", "va.file.write", "va.file.seek",
	"va.file.close", "va.file.stat", "va.file.checksum", "va.dmesg",
	"va.clipboard.get", "va.clipboard.set",
};
#define N_VA_METHODS (sizeof(va_methods) / sizeof(va_methods[0]))

static void
test_capabilities(void)
{
	NEED_AGENT();
	struct result r;
	int ok = 1;

	call(H, &r, "va.capabilities", "()");
	xmlrpc_value *v = OK(&r, "va.capabilities");
	char *version = member_string(v, "version");
	CHECK(version && strcmp(version, PACKAGE_VERSION) == 0, "version \"%s\"", version ? version : "(none)");
	CHECK(member_int(v, "protocol", &ok) == VA_AGENT_PROTOCOL && ok, "protocol");
	ok = 1;
	CHECK(member_int(v, "max_frame", &ok) == VA_FRAME_DEFAULT_MAX_BODY && ok, "max_frame");
	xmlrpc_value *m = member(v, "methods");
	for (size_t i = 0; i < N_VA_METHODS; i++)
		CHECK(array_has(m, va_methods[i]), "va.capabilities does not list %s", va_methods[i]);
	CHECK(array_has(m, "system.listMethods") && array_has(m, "system.methodHelp") &&
	      array_has(m, "system.methodSignature"), "va.capabilities lacks the system.* methods");
	CHECK(!array_has(m, "va.nosuch"), "va.capabilities lists an unknown method");

	/* The host.hello list and this one name the same va.* methods. */
	int hi = find_record(H, "host.hello", 0);
	xmlrpc_value *info = hi >= 0 ? array_item(H->rec[hi].params, 0) : NULL;
	xmlrpc_value *hm = member(info, "methods");
	for (int i = 0; i < array_size(hm); i++) {
		xmlrpc_value *x = array_item(hm, i);
		char *s = as_string(x, NULL);
		CHECK(s && array_has(m, s), "host.hello lists %s, va.capabilities does not", s ? s : "?");
		free(s);
		if (x)
			xmlrpc_DECREF(x);
	}
	if (hm)
		xmlrpc_DECREF(hm);
	if (info)
		xmlrpc_DECREF(info);
	if (m)
		xmlrpc_DECREF(m);
	free(version);
	result_clean(&r);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.capabilities", "(s)", "x");
}

static void
test_info(void)
{
	NEED_AGENT();
	struct result r;
	struct utsname u;
	int ok = 1;

	uname(&u);
	call(H, &r, "va.info", "()");
	xmlrpc_value *v = OK(&r, "va.info");
	char *host = member_string(v, "hostname"), *os = member_string(v, "os");
	char *kernel = member_string(v, "kernel"), *arch = member_string(v, "arch");
	char *ver = member_string(v, "agent_version");
	CHECK(host && strcmp(host, u.nodename) == 0, "hostname \"%s\", expected \"%s\"", host ? host : "-", u.nodename);
	CHECK(os && *os, "os is empty or missing");
	CHECK(kernel && strcmp(kernel, u.release) == 0, "kernel \"%s\"", kernel ? kernel : "-");
	CHECK(arch && strcmp(arch, u.machine) == 0, "arch \"%s\"", arch ? arch : "-");
	CHECK(ver && strcmp(ver, PACKAGE_VERSION) == 0, "agent_version \"%s\"", ver ? ver : "-");
	int64_t up = member_int(v, "uptime", &ok);
	CHECK(ok && up >= 0, "uptime");
	ok = 1;
	int64_t t = member_int(v, "time", &ok);
	CHECK(ok && llabs((long long)(t - (int64_t)time(NULL))) < 120, "time %" PRId64 " is not now", t);
	free(host);
	free(os);
	free(kernel);
	free(arch);
	free(ver);
	result_clean(&r);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.info", "(i)", 3);
}

static void
test_introspection(void)
{
	NEED_AGENT();
	struct result r;

	call(H, &r, "system.listMethods", "()");
	xmlrpc_value *list = OK(&r, "system.listMethods");
	for (size_t i = 0; i < N_VA_METHODS; i++)
		CHECK(array_has(list, va_methods[i]), "system.listMethods lacks %s", va_methods[i]);
	result_clean(&r);

	for (size_t i = 0; i < N_VA_METHODS; i++) {
		call(H, &r, "system.methodHelp", "(s)", va_methods[i]);
		char *help = as_string(OK(&r, va_methods[i]), NULL);
		CHECK(help && strlen(help) >= 30 && strstr(help, va_methods[i]) &&
		      !strstr(help, "No help"), "help of %s is not real: \"%s\"", va_methods[i],
		      help ? help : "(none)");
		free(help);
		result_clean(&r);

		call(H, &r, "system.methodSignature", "(s)", va_methods[i]);
		xmlrpc_value *sig = OK(&r, va_methods[i]);
		if (strcmp(va_methods[i], "va.echo") == 0) {
			/* "?" signature: xmlrpc-c answers the string "undef". */
			CHECK(sig && (xmlrpc_value_type(sig) == XMLRPC_TYPE_STRING ||
				      xmlrpc_value_type(sig) == XMLRPC_TYPE_ARRAY),
			      "signature of va.echo");
		} else {
			CHECK(array_size(sig) >= 1, "signature of %s is not a list of signatures", va_methods[i]);
			xmlrpc_value *first = array_item(sig, 0);
			CHECK(array_size(first) >= 1, "first signature of %s is empty", va_methods[i]);
			if (first)
				xmlrpc_DECREF(first);
		}
		result_clean(&r);
	}
	/* va.ping -> boolean, no parameters. */
	call(H, &r, "system.methodSignature", "(s)", "va.ping");
	xmlrpc_value *sig = OK(&r, "signature of va.ping");
	xmlrpc_value *s0 = array_item(sig, 0), *ret = array_item(s0, 0);
	char *rt = as_string(ret, NULL);
	CHECK(array_size(s0) == 1 && rt && strcmp(rt, "boolean") == 0, "va.ping's signature");
	free(rt);
	if (ret)
		xmlrpc_DECREF(ret);
	if (s0)
		xmlrpc_DECREF(s0);
	result_clean(&r);

	CALL_FAULT(H, 0, NULL, "system.methodHelp", "(s)", "va.nosuch");
	CALL_FAULT(H, 0, NULL, "system.methodSignature", "(s)", "va.nosuch");
	CALL_FAULT(H, 0, NULL, "system.methodHelp", "(i)", 5);
}

static const char xml_head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n";

static void
test_bad_input(void)
{
	NEED_AGENT();
	char buf[4096];
	struct result r;

	BODY_FAULT(H, "this is not XML", XMLRPC_PARSE_ERROR, "plain text");
	BODY_FAULT(H, "", 0, "empty body");
	BODY_FAULT(H, "<foo/>", 0, "XML that is no methodCall");
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName><params>",
		   0, "truncated XML");
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName>"
		      "<params><param><value><int>12x</int></value></param></params></methodCall>",
		   0, "bad int");
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va ping</methodName>"
		      "<params></params></methodCall>", 0, "bad method name");
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName></methodName>"
		      "<params></params></methodCall>", 0, "empty method name");
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va.echo</methodName>"
		      "<params><param><value><string>\xc3\x28</string></value></param></params>"
		      "</methodCall>", 0, "invalid UTF-8");
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va.echo</methodName>"
		      "<params><param><value><struct><member><value><int>1</int></value>"
		      "</member></struct></value></param></params></methodCall>",
		   0, "struct member without a name");

	/* A name longer than any method. */
	memset(buf, 0, sizeof(buf));
	int n = snprintf(buf, sizeof(buf), "%s<methodCall><methodName>va.", xml_head);
	memset(buf + n, 'x', 400);
	snprintf(buf + n + 400, sizeof(buf) - (size_t)n - 400,
		 "</methodName><params></params></methodCall>");
	BODY_FAULT(H, buf, 0, "method name of 403 bytes");

	/* Nesting deeper than xmlrpc-c allows. */
	struct va_buf deep = { 0 };
	va_buf_printf(&deep, "%s<methodCall><methodName>va.echo</methodName><params><param>", xml_head);
	for (int i = 0; i < 2000; i++)
		va_buf_append_str(&deep, "<value><array><data>");
	for (int i = 0; i < 2000; i++)
		va_buf_append_str(&deep, "</data></array></value>");
	va_buf_append_str(&deep, "</param></params></methodCall>");
	body_fault_at(H, (const char *)deep.data, deep.len, 0, "2000 nested arrays", __LINE__);
	va_buf_free(&deep);

	/*
	 * XML-RPC has no use for a DTD.  Internal entities expand 10 times
	 * per level: 4 levels turn a 700-byte call into 500 KB (9 levels
	 * would keep the agent busy for minutes): the agent must refuse.
	 */
	struct va_buf bomb = { 0 };
	va_buf_append_str(&bomb, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
			  " <!ENTITY lol0 \"lolololololololololololololololololololololololol\">\n");
	for (int i = 1; i <= 4; i++) {
		va_buf_printf(&bomb, " <!ENTITY lol%d \"", i);
		for (int k = 0; k < 10; k++)
			va_buf_printf(&bomb, "&lol%d;", i - 1);
		va_buf_append_str(&bomb, "\">\n");
	}
	va_buf_append_str(&bomb, "]>\n<methodCall><methodName>va.echo</methodName><params><param>"
			  "<value><string>&lol4;</string></value></param></params></methodCall>");
	call_start_body(H, &r, bomb.data, bomb.len);
	call_wait(H, &r, 20000);
	{
		xmlrpc_value *x = array_item(r.v, 0);
		size_t xl = 0;
		char *xs = as_string(x, &xl);
		CHECK(r.done && r.err == 0 && r.fault,
		      "a call with a DTD of entities (%zu bytes) was not refused: %s%s%zu bytes",
		      bomb.len, describe(&r, buf, sizeof(buf)), xs ? ", expanded to " : "", xl);
		free(xs);
		if (x)
			xmlrpc_DECREF(x);
	}
	result_clean(&r);

	/* The same in UTF-16 (no 0xFF without a BOM, so a frame carries it). */
	for (int be = 0; be < 2; be++) {
		struct va_buf wide = { 0 };
		for (size_t k = 0; k < bomb.len; k++) {
			uint8_t two[2] = { be ? 0 : bomb.data[k], be ? bomb.data[k] : 0 };
			va_buf_append(&wide, two, 2);
		}
		call_start_body(H, &r, wide.data, wide.len);
		call_wait(H, &r, 20000);
		xmlrpc_value *x = array_item(r.v, 0);
		size_t xl = 0;
		char *xs = as_string(x, &xl);
		CHECK(r.done && r.err == 0 && r.fault,
		      "a UTF-16%s call with a DTD of entities was not refused: %s%s%zu bytes",
		      be ? "BE" : "LE", describe(&r, buf, sizeof(buf)), xs ? ", expanded to " : "", xl);
		free(xs);
		if (x)
			xmlrpc_DECREF(x);
		result_clean(&r);
		va_buf_free(&wide);
	}
	va_buf_free(&bomb);

	/* An external entity must not read a guest file into the answer. */
	const char *secret = path_in(&AG, "xxe-secret");
	write_file(secret, "XXE-SECRET-42", 13, 0600);
	va_buf_printf(&bomb, "<?xml version=\"1.0\"?>\n<!DOCTYPE x [ <!ENTITY xxe SYSTEM \"file://%s\"> ]>\n"
		      "<methodCall><methodName>va.echo</methodName><params><param>"
		      "<value><string>&xxe;</string></value></param></params></methodCall>", secret);
	call_start_body(H, &r, bomb.data, bomb.len);
	call_wait(H, &r, 10000);
	{
		xmlrpc_value *x = array_item(r.v, 0);
		char *xs = as_string(x, NULL);
		CHECK(r.done && r.err == 0 && !(xs && strstr(xs, "XXE-SECRET")),
		      "an external entity read a file into the answer");
		free(xs);
		if (x)
			xmlrpc_DECREF(x);
	}
	result_clean(&r);
	va_buf_free(&bomb);
	PING(H);

	/* Unknown method. */
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, NULL, "va.nosuch", "()");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, NULL, "host.hello", "()");

	/* Wrong types and counts, one method after the other. */
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "va.file.open", "va.file.open", "(s)", "/tmp/x");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.open", "(is)", 1, "r");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.open", "(ss)", "/tmp/x", "q");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.open", "(ssii)", "/tmp/x", "r", 1, 2);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.read", "(ss)", "a", "b");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.read", "(i)", 1);
	CALL_FAULT(H, 0, NULL, "va.file.write", "(is)", 1, "text");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.seek", "(ii)", 1, 0);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.close", "()");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.stat", "(i)", 1);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.file.checksum", "(b)", (xmlrpc_bool)1);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.dmesg", "(s)", "x");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.dmesg", "(ii)", 1, 2);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.clipboard.get", "(i)", 1);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.clipboard.set", "(i)", 1);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.clipboard.set", "()");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.shutdown", "(i)", 1);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.shutdown", "()");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, NULL, "va.shutdown", "(sis)", "halt", 1, "x");
	/* A NUL inside a string parameter. */
	{
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		xmlrpc_value *p = xmlrpc_build_value(&e, "(s#s)", "/tmp/a\0b", (size_t)8, "r");
		call_start(H, &r, "va.file.open", p);
		call_wait(H, &r, 10000);
		FAULT(&r, 0, NULL, "va.file.open with a NUL in the path");
		result_clean(&r);
		xmlrpc_DECREF(p);
		xmlrpc_env_clean(&e);
	}

	/* The session itself refuses a body with 0xFF (it would tear the frame). */
	CHECK(call_start_body(H, &r, "<\xff>", 3) == -EINVAL, "a body with 0xFF was accepted");
	result_clean(&r);

	PING(H);
	CHECK(!agent_exited(&AG), "the agent died on bad input");
}

/* ---- files ---- */

static char *
path_in(const struct agent *a, const char *name)
{
	static char p[8][PATHLEN + 64];
	static int k;
	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", a->dir, name);
	return p[k];
}

/* va.file.open -> handle, or -1 (with a failed check). */
static int
open_at_line(struct host *h, const char *path, const char *mode, int perm, int line)
{
	struct result r;
	int ok = 1;

	if (perm >= 0)
		call(h, &r, "va.file.open", "(ssi)", path, mode, perm);
	else
		call(h, &r, "va.file.open", "(ss)", path, mode);
	xmlrpc_value *v = ok_at(&r, path, line);
	int hd = v ? (int)as_int(v, &ok) : -1;
	if (v && !ok) {
		check_at(0, line, "va.file.open did not return an int");
		hd = -1;
	}
	result_clean(&r);
	return hd;
}

#define FOPEN(h, path, mode, perm) open_at_line((h), (path), (mode), (perm), __LINE__)

static int64_t
write_chunk_at(struct host *h, int hd, const void *data, size_t len, int line)
{
	struct result r;
	int ok = 1;

	call(h, &r, "va.file.write", "(i6)", hd, data, len);
	xmlrpc_value *v = ok_at(&r, "va.file.write", line);
	int64_t n = v ? as_int(v, &ok) : -1;
	result_clean(&r);
	return ok ? n : -1;
}

/* va.file.read -> data (malloc'd) with *len and *eof; NULL on failure. */
static unsigned char *
read_chunk_at(struct host *h, int hd, int64_t count, size_t *len, int *eof, int line)
{
	struct result r;
	int ok = 1;
	unsigned char *out = NULL;
	xmlrpc_env e;

	call(h, &r, "va.file.read", "(iI)", hd, (xmlrpc_int64)count);
	xmlrpc_value *v = ok_at(&r, "va.file.read", line);
	if (!v) {
		result_clean(&r);
		return NULL;
	}
	xmlrpc_value *d = member(v, "data");
	xmlrpc_env_init(&e);
	const unsigned char *p = NULL;
	size_t n = 0;
	if (d && xmlrpc_value_type(d) == XMLRPC_TYPE_BASE64)
		xmlrpc_read_base64(&e, d, &n, &p);
	else
		ok = 0;
	int64_t cnt = member_int(v, "count", &ok);
	*eof = member_bool(v, "eof", &ok);
	check_at(ok && !e.fault_occurred && cnt == (int64_t)n, line,
		 "va.file.read: malformed result (count %" PRId64 ", data %zu bytes)", cnt, n);
	if (ok && !e.fault_occurred) {
		out = (unsigned char *)p;
		*len = n;
	} else {
		free((void *)p);
	}
	xmlrpc_env_clean(&e);
	if (d)
		xmlrpc_DECREF(d);
	result_clean(&r);
	return out;
}

#define FWRITE(h, hd, data, len) write_chunk_at((h), (hd), (data), (len), __LINE__)
#define FREAD(h, hd, count, lenp, eofp) read_chunk_at((h), (hd), (count), (lenp), (eofp), __LINE__)

static int64_t
seek_at(struct host *h, int hd, int64_t off, int whence, int line)
{
	struct result r;
	int ok = 1;

	call(h, &r, "va.file.seek", "(iIi)", hd, (xmlrpc_int64)off, whence);
	xmlrpc_value *v = ok_at(&r, "va.file.seek", line);
	int64_t pos = v ? as_int(v, &ok) : -1;
	result_clean(&r);
	return ok ? pos : -1;
}

#define FSEEK(h, hd, off, whence) seek_at((h), (hd), (off), (whence), __LINE__)

static void
close_at(struct host *h, int hd, int line)
{
	struct result r;
	call(h, &r, "va.file.close", "(i)", hd);
	ok_at(&r, "va.file.close", line);
	result_clean(&r);
}

#define FCLOSE(h, hd) close_at((h), (hd), __LINE__)

/*
 * Queues a call without sending it: host_flush() then sends every queued
 * call in one write, so that they reach the agent together, in order.
 * cb gets opaque (on_call_done takes a struct result).
 */
static int
call_queue(struct host *h, va_call_cb cb, void *opaque, const char *method, const char *fmt, ...)
{
	xmlrpc_env e;
	xmlrpc_value *params = NULL;
	const char *tail = NULL;
	struct va_buf b = { 0 };
	va_list ap;
	int rc = -EINVAL;

	xmlrpc_env_init(&e);
	va_start(ap, fmt);
	xmlrpc_build_value_va(&e, fmt, ap, &params, &tail);
	va_end(ap);
	if (!e.fault_occurred)
		va_rpc_serialize_call(&e, &b, method, params);
	if (!e.fault_occurred)
		rc = va_session_call(h->s, b.data, b.len, T(60000), va_now_ms(), cb, opaque);
	CHECK(rc == 0, "%s not queued: %s", method, e.fault_occurred ? e.fault_string : strerror(-rc));
	if (params)
		xmlrpc_DECREF(params);
	va_buf_free(&b);
	xmlrpc_env_clean(&e);
	return rc;
}

/* A result that also keeps the response's bytes. */
struct raw_result {
	struct result r;
	struct va_buf body;
};

static void
on_raw_done(void *opaque, int err, struct va_frame *resp)
{
	struct raw_result *rr = opaque;
	if (!err && resp)
		va_buf_append(&rr->body, resp->body, resp->body_len);
	on_call_done(&rr->r, err, resp);
}

/*
 * va.file.read of count bytes and a va.ping, sent together: both must be
 * answered within ms (scaled), the read by a result.  Returns the data
 * (malloc'd; *len, *eof) or NULL.
 */
static unsigned char *
read_with_ping_at(struct host *h, int hd, int count, unsigned ms, size_t *len, int *eof, int line)
{
	struct result rd, pg;
	unsigned char *out = NULL;
	int ok = 1;

	memset(&rd, 0, sizeof(rd));
	memset(&pg, 0, sizeof(pg));
	if (call_queue(h, on_call_done, &rd, "va.file.read", "(ii)", hd, count) < 0)
		return NULL;
	if (call_queue(h, on_call_done, &pg, "va.ping", "()") < 0) {
		WAIT_UNTIL(h, rd.done, 60000);
		result_clean(&rd);
		return NULL;
	}
	host_flush(h);
	uint64_t t0 = va_now_ms();
	int both = WAIT_UNTIL(h, rd.done && pg.done, ms);
	check_at(both, line, "va.file.read + va.ping: not both answered within %u ms "
		 "(read %s, ping %s): the agent is stalled", T(ms), rd.done ? "answered" : "waiting",
		 pg.done ? "answered" : "waiting");
	if (!both) /* do not leave the results to a later callback */
		WAIT_UNTIL(h, rd.done && pg.done, 60000);
	ok_at(&pg, "va.ping sent with the read", line);
	xmlrpc_value *v = ok_at(&rd, "va.file.read", line);
	xmlrpc_value *d = member(v, "data");
	if (d && xmlrpc_value_type(d) == XMLRPC_TYPE_BASE64) {
		xmlrpc_env e;
		const unsigned char *p = NULL;
		xmlrpc_env_init(&e);
		xmlrpc_read_base64(&e, d, len, &p);
		*eof = member_bool(v, "eof", &ok);
		if (!e.fault_occurred && ok && member_int(v, "count", &ok) == (int64_t)*len && ok)
			out = (unsigned char *)p;
		else
			free((void *)p);
		xmlrpc_env_clean(&e);
	}
	check_at(!v || out, line, "va.file.read: malformed result");
	if (d)
		xmlrpc_DECREF(d);
	if (getenv("VA_DEBUG"))
		fprintf(stderr, "read + ping: %" PRIu64 " ms\n", va_now_ms() - t0);
	result_clean(&rd);
	result_clean(&pg);
	return out;
}

#define READ_WITH_PING(h, hd, count, ms, lenp, eofp) \
	read_with_ping_at((h), (hd), (count), (ms), (lenp), (eofp), __LINE__)

static void
test_file_basics(void)
{
	NEED_AGENT();
	const char *p = path_in(&AG, "basic.txt");
	struct result r;
	size_t len = 0;
	int eof = 0, ok = 1;
	unsigned char *d;

	int hd = FOPEN(H, p, "w+", -1);
	if (hd < 0)
		return;
	CHECK(FWRITE(H, hd, "hello, world", 12) == 12, "write of 12 bytes");
	CHECK(FSEEK(H, hd, 0, 0) == 0, "seek to 0");
	d = FREAD(H, hd, 100, &len, &eof);
	CHECK(d && len == 12 && memcmp(d, "hello, world", 12) == 0 && eof,
	      "read back: %zu bytes, eof %d", len, eof);
	free(d);
	CHECK(FSEEK(H, hd, -5, 2) == 7, "seek -5 from the end");
	d = FREAD(H, hd, 3, &len, &eof);
	CHECK(d && len == 3 && memcmp(d, "wor", 3) == 0 && !eof, "read 3 at 7");
	free(d);
	/* whence as a string, and an i8 offset */
	call(H, &r, "va.file.seek", "(iIs)", hd, (xmlrpc_int64)1, "cur");
	CHECK(as_int(OK(&r, "seek cur"), &ok) == 11 && ok, "seek +1 from cur");
	result_clean(&r);
	call(H, &r, "va.file.seek", "(iis)", hd, 0, "SET");
	CHECK(as_int(OK(&r, "seek SET"), NULL) == 0, "seek to 0 by \"SET\"");
	result_clean(&r);
	d = FREAD(H, hd, 0, &len, &eof);
	CHECK(d && len == 0, "a read of 0 bytes");
	free(d);
	/* A read that ends exactly at the end: eof false; the next one: 0 bytes, eof. */
	CHECK(FSEEK(H, hd, 0, 0) == 0, "seek to 0");
	d = FREAD(H, hd, 12, &len, &eof);
	CHECK(d && len == 12 && !eof, "read of exactly the size: %zu bytes, eof %d", len, eof);
	free(d);
	d = FREAD(H, hd, 12, &len, &eof);
	CHECK(d && len == 0 && eof, "read at the end: %zu bytes, eof %d", len, eof);
	free(d);
	/* Past the end: reads nothing, eof. */
	CHECK(FSEEK(H, hd, 1000, 0) == 1000, "seek past the end");
	d = FREAD(H, hd, 10, &len, &eof);
	CHECK(d && len == 0 && eof, "read past the end");
	free(d);
	FCLOSE(H, hd);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.close", "(i)", hd);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.read", "(ii)", hd, 1);

	/* stat: size, mode 0600 for a created file, type, mtime. */
	call(H, &r, "va.file.stat", "(s)", p);
	xmlrpc_value *st = OK(&r, "va.file.stat");
	ok = 1;
	CHECK(member_int(st, "size", &ok) == 12 && ok, "stat size");
	ok = 1;
	CHECK(member_int(st, "mode", &ok) == 0600 && ok, "created file mode %#o, expected 0600",
	      (unsigned)member_int(st, "mode", NULL));
	char *type = member_string(st, "type");
	CHECK(type && strcmp(type, "file") == 0, "stat type \"%s\"", type ? type : "-");
	free(type);
	ok = 1;
	CHECK(llabs((long long)(member_int(st, "mtime", &ok) - (int64_t)time(NULL))) < 120 && ok, "mtime");
	result_clean(&r);

	/* checksum = sha256("hello, world") */
	call(H, &r, "va.file.checksum", "(s)", p);
	char *sum = as_string(OK(&r, "va.file.checksum"), NULL);
	CHECK(sum && strcmp(sum, "09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b") == 0,
	      "checksum %s", sum ? sum : "-");
	free(sum);
	result_clean(&r);

	/* A perm given at creation is used exactly (not masked by the umask). */
	const char *p2 = path_in(&AG, "perm.txt");
	hd = FOPEN(H, p2, "w", 0664);
	if (hd >= 0)
		FCLOSE(H, hd);
	struct stat sb;
	CHECK(stat(p2, &sb) == 0 && (sb.st_mode & 0777) == 0664, "perm 0664 gave %#o",
	      (unsigned)(sb.st_mode & 0777));
	/* ... and does not change an existing file. */
	hd = FOPEN(H, p2, "a", 0600);
	if (hd >= 0) {
		CHECK(FWRITE(H, hd, "x", 1) == 1, "append");
		FCLOSE(H, hd);
	}
	CHECK(stat(p2, &sb) == 0 && (sb.st_mode & 0777) == 0664 && sb.st_size == 1,
	      "reopening changed the mode or size");

	/* Appending: "a" writes at the end whatever the position. */
	hd = FOPEN(H, p, "a+", -1);
	if (hd >= 0) {
		CHECK(FWRITE(H, hd, "!", 1) == 1, "append !");
		CHECK(FSEEK(H, hd, 0, 0) == 0, "seek");
		d = FREAD(H, hd, 64, &len, &eof);
		CHECK(d && len == 13 && memcmp(d, "hello, world!", 13) == 0, "a+ content");
		free(d);
		FCLOSE(H, hd);
	}

	/* A pseudo-file whose stat size is 0 (procfs) still reads in one call. */
	hd = FOPEN(H, "/proc/self/status", "r", -1);
	if (hd >= 0) {
		d = FREAD(H, hd, 65536, &len, &eof);
		CHECK(d && len > 100 && memmem(d, len, "Name:", 5), "/proc/self/status: %zu bytes in one "
		      "read of 65536 (the stat size of procfs files is 0)", len);
		free(d);
		FCLOSE(H, hd);
	}

	/* stat of a directory and of a symlink (described itself). */
	symlink(p, path_in(&AG, "basic.link"));
	call(H, &r, "va.file.stat", "(s)", AG.dir);
	type = member_string(OK(&r, "stat dir"), "type");
	CHECK(type && strcmp(type, "dir") == 0, "dir type \"%s\"", type ? type : "-");
	free(type);
	result_clean(&r);
	call(H, &r, "va.file.stat", "(s)", path_in(&AG, "basic.link"));
	type = member_string(OK(&r, "stat link"), "type");
	CHECK(type && strcmp(type, "link") == 0, "link type \"%s\"", type ? type : "-");
	free(type);
	result_clean(&r);
}

static void
test_file_faults(void)
{
	NEED_AGENT();
	const char *missing = path_in(&AG, "missing/nothing");
	int hd;

	CALL_FAULT(H, 0, "No such file", "va.file.open", "(ss)", missing, "r");
	CALL_FAULT(H, 0, NULL, "va.file.open", "(ss)", missing, "w");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "absolute", "va.file.open", "(ss)", "relative.txt", "r");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "bad mode", "va.file.open", "(ss)", path_in(&AG, "x"), "rw");
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "bad mode", "va.file.open", "(ss)", path_in(&AG, "x"), "");
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.file.open", "(ssi)", path_in(&AG, "x"), "w", 01000);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.file.open", "(ssi)", path_in(&AG, "x"), "w", -1);
	CALL_FAULT(H, 0, "Is a directory", "va.file.open", "(ss)", AG.dir, "r");
	CALL_FAULT(H, 0, NULL, "va.file.stat", "(s)", missing);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "absolute", "va.file.stat", "(s)", "x");
	CALL_FAULT(H, 0, NULL, "va.file.checksum", "(s)", missing);
	CALL_FAULT(H, 0, NULL, "va.file.checksum", "(s)", AG.dir);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "absolute", "va.file.checksum", "(s)", "x");
	struct stat sb;
	CHECK(stat(path_in(&AG, "x"), &sb) < 0, "a refused open created the file");

	/* Unknown handles, of every kind. */
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.read", "(ii)", 0, 1);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.read", "(ii)", -1, 1);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.read", "(ii)", 2147483647, 1);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.read", "(Ii)",
		   (xmlrpc_int64)1 << 40, 1);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.write", "(i6)", 7, "x", (size_t)1);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.seek", "(iii)", 7, 0, 0);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "unknown file handle", "va.file.close", "(i)", 7);

	/* Counts: negative, over the cap, huge (a fault, never an allocation). */
	hd = FOPEN(H, path_in(&AG, "counts"), "w+", -1);
	if (hd < 0)
		return;
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, "negative", "va.file.read", "(ii)", hd, -1);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.file.read", "(ii)", hd,
		   (int)VA_FILE_MAX_CHUNK + 1);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.file.read", "(ii)", hd, 2147483647);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.file.read", "(iI)", hd,
		   (xmlrpc_int64)INT64_MAX);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.file.read", "(iI)", hd, (xmlrpc_int64)INT64_MIN);
	/* At the cap: fine (the file is empty: nothing of that size is allocated). */
	{
		size_t len = 9;
		int eof = 0;
		unsigned char *d = FREAD(H, hd, VA_FILE_MAX_CHUNK, &len, &eof);
		CHECK(d && len == 0 && eof, "read of the maximum count from an empty file");
		free(d);
	}
	/* Data over the cap. */
	{
		size_t n = VA_FILE_MAX_CHUNK + 1;
		unsigned char *big = calloc(1, n);
		struct result r;
		call(H, &r, "va.file.write", "(i6)", hd, big, n);
		FAULT(&r, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.file.write of 8 MiB + 1");
		result_clean(&r);
		free(big);
		CHECK(stat(path_in(&AG, "counts"), &sb) == 0 && sb.st_size == 0,
		      "a refused write wrote %lld bytes", (long long)sb.st_size);
	}
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "whence", "va.file.seek", "(iii)", hd, 0, 3);
	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "whence", "va.file.seek", "(iis)", hd, 0, "middle");
	CALL_FAULT(H, 0, "Invalid argument", "va.file.seek", "(iii)", hd, -10, 0);
	FCLOSE(H, hd);
	/* Writing to a file opened read-only. */
	hd = FOPEN(H, path_in(&AG, "counts"), "r", -1);
	if (hd >= 0) {
		CALL_FAULT(H, 0, "Bad file descriptor", "va.file.write", "(i6)", hd, "x", (size_t)1);
		FCLOSE(H, hd);
	}
	PING(H);
}

static void
test_file_handle_limit(void)
{
	NEED_AGENT();
	int hd[VA_FILE_MAX_HANDLES];
	int n = 0;

	for (int i = 0; i < VA_FILE_MAX_HANDLES; i++) {
		hd[i] = FOPEN(H, "/dev/null", "r", -1);
		if (hd[i] < 0)
			break;
		n++;
		for (int k = 0; k < i; k++)
			CHECK(hd[k] != hd[i], "handle %d given twice", hd[i]);
	}
	CHECK(n == VA_FILE_MAX_HANDLES, "only %d handles could be opened", n);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, "too many", "va.file.open", "(ss)", "/dev/null", "r");
	for (int i = 0; i < n; i++)
		FCLOSE(H, hd[i]);
	/* Free again; a closed handle's number is not given out again at once. */
	int again = FOPEN(H, "/dev/null", "r", -1);
	for (int i = 0; i < n; i++)
		CHECK(again != hd[i], "handle %d reused at once", again);
	if (again >= 0)
		FCLOSE(H, again);
}

static void
test_file_fifo(void)
{
	NEED_AGENT();
	const char *p = path_in(&AG, "fifo");
	size_t len = 9;
	int eof = 1;

	if (mkfifo(p, 0600) < 0) {
		CHECK(0, "mkfifo: %s", strerror(errno));
		return;
	}
	/* We hold the write end: reading must not block the agent. */
	int w = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int hd = FOPEN(H, p, "r", -1);
	if (hd >= 0) {
		uint64_t t0 = va_now_ms();
		unsigned char *d = FREAD(H, hd, 4096, &len, &eof);
		CHECK(d && len == 0 && !eof, "empty FIFO read: %zu bytes, eof %d", len, eof);
		CHECK(va_now_ms() - t0 < T(3000), "reading an empty FIFO took %" PRIu64 " ms",
		      va_now_ms() - t0);
		free(d);
		/* Again with a va.ping sent along: both answered at once, the read empty. */
		len = 9;
		eof = 1;
		d = READ_WITH_PING(H, hd, 4096, 1000, &len, &eof);
		CHECK(d && len == 0 && !eof, "empty FIFO read with a ping: %zu bytes, eof %d", len, eof);
		free(d);
		CHECK(write(w, "abc", 3) == 3, "write to fifo");
		d = FREAD(H, hd, 4096, &len, &eof);
		CHECK(d && len == 3 && memcmp(d, "abc", 3) == 0 && !eof, "FIFO read of what was written");
		free(d);
		CALL_FAULT(H, XMLRPC_TYPE_ERROR, "regular", "va.file.checksum", "(s)", p);
		FCLOSE(H, hd);
	}
	if (w >= 0)
		close(w);
	PING(H);
}

static void
test_dmesg(void)
{
	NEED_AGENT();
	struct result r;
	char d[1200];

	call(H, &r, "va.dmesg", "()");
	if (r.done && r.err == 0 && r.fault) {
		/* No CAP_SYSLOG (a container): EPERM is the documented answer. */
		CHECK(r.fault_code == XMLRPC_INTERNAL_ERROR &&
		      (strstr(r.fault, "not permitted") || strstr(r.fault, "denied")),
		      "va.dmesg failed otherwise than with EPERM: %s", describe(&r, d, sizeof(d)));
	} else {
		size_t n = 0;
		char *s = as_string(OK(&r, "va.dmesg"), &n);
		CHECK(s && n <= VA_DMESG_DEFAULT, "va.dmesg() gave %zu bytes", n);
		free(s);
		result_clean(&r);
		call(H, &r, "va.dmesg", "(i)", 100);
		s = as_string(OK(&r, "va.dmesg(100)"), &n);
		CHECK(s && n <= 100, "va.dmesg(100) gave %zu bytes", n);
		free(s);
	}
	result_clean(&r);
	/* The caps hold whatever the permissions. */
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.dmesg", "(i)", 0);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.dmesg", "(i)", -5);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.dmesg", "(i)", (int)VA_DMESG_MAX + 1);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.dmesg", "(i)", 2147483647);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.dmesg", "(I)", (xmlrpc_int64)1 << 50);
}

/* va.clipboard.get -> text (malloc'd), serial, origin (malloc'd). */
static char *
clip_get(struct host *h, int64_t *serial, char **origin)
{
	struct result r;
	int ok = 1;

	call(h, &r, "va.clipboard.get", "()");
	xmlrpc_value *v = OK(&r, "va.clipboard.get");
	char *text = member_string(v, "text");
	*serial = member_int(v, "serial", &ok);
	*origin = member_string(v, "origin");
	CHECK(v == NULL || (text && ok && *origin), "va.clipboard.get: malformed result");
	result_clean(&r);
	return text;
}

static void
test_clipboard_methods(void)
{
	NEED_AGENT();
	int64_t serial = -1, s1;
	char *origin = NULL, *text;
	struct result r;
	int ok = 1;

	text = clip_get(H, &serial, &origin);
	CHECK(text && strcmp(text, "") == 0 && serial == 0 && origin && strcmp(origin, "none") == 0,
	      "empty clipboard: \"%s\" serial %" PRId64 " origin %s", text ? text : "-", serial,
	      origin ? origin : "-");
	free(text);
	free(origin);

	/* (No CR: xmlrpc-c's string functions turn CR LF into LF on both sides.) */
	static const char t1[] = "from the host: \xc3\xa9t\xc3\xa9 \xe2\x82\xac\n\ttabbed\nend";
	call(H, &r, "va.clipboard.set", "(s)", t1);
	s1 = as_int(OK(&r, "va.clipboard.set"), &ok);
	CHECK(ok && s1 >= 1, "serial %" PRId64, s1);
	result_clean(&r);
	text = clip_get(H, &serial, &origin);
	CHECK(text && strcmp(text, t1) == 0, "clipboard text \"%s\"", text ? text : "-");
	CHECK(serial == s1 && origin && strcmp(origin, "host") == 0, "serial %" PRId64 " origin %s",
	      serial, origin ? origin : "-");
	free(text);
	free(origin);

	/* Refused: control characters, surrogates, too much. */
	/* (A control character cannot even be parsed: XML 1.0 has no room for it.) */
	CALL_FAULT(H, 0, NULL, "va.clipboard.set", "(s)", "bell\x07");
	/* A character above U+FFFF is carried (common/text.h): the serial moves. */
	static const char emoji[] = "<?xml version=\"1.0\"?><methodCall><methodName>"
		"va.clipboard.set</methodName><params><param><value><string>&#x1F600;</string>"
		"</value></param></params></methodCall>";
	call_start_body(H, &r, emoji, strlen(emoji));
	call_wait(H, &r, 10000);
	CHECK(as_int(OK(&r, "a character above U+FFFF"), &ok) == s1 + 1 && ok, "serial");
	result_clean(&r);
	s1++;
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va.clipboard.set</methodName>"
		      "<params><param><value><string>\xed\xa0\x80</string></value></param></params>"
		      "</methodCall>", 0, "a UTF-8 surrogate");
	char *big = malloc(VA_CLIPBOARD_MAX + 2);
	memset(big, 'a', VA_CLIPBOARD_MAX + 1);
	big[VA_CLIPBOARD_MAX + 1] = 0;
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.clipboard.set", "(s)", big);
	/* Exactly at the cap: stored. */
	big[VA_CLIPBOARD_MAX] = 0;
	call(H, &r, "va.clipboard.set", "(s)", big);
	int64_t s2 = as_int(OK(&r, "va.clipboard.set of the maximum"), NULL);
	CHECK(s2 == s1 + 1, "serial %" PRId64 " after %" PRId64, s2, s1);
	result_clean(&r);
	text = clip_get(H, &serial, &origin);
	CHECK(text && strlen(text) == VA_CLIPBOARD_MAX && serial == s2, "1 MiB clipboard");
	free(text);
	free(origin);
	free(big);
	/* The refusals did not change it. */
	call(H, &r, "va.clipboard.set", "(s)", "");
	int64_t s3 = as_int(OK(&r, "va.clipboard.set(\"\")"), NULL);
	CHECK(s3 == s2 + 1, "serial after an empty set");
	result_clean(&r);
	CHECK(count_records(H, "host.clipboard.set") == 0,
	      "host.clipboard.set was called for a host's own set");
}

/* Feeds what is left of the input into the pipe without blocking; closes it at the end. */
static void
feed_pipe(int *fd, const char *in, size_t len, size_t *off)
{
	while (*fd >= 0 && *off < len) {
		ssize_t w = write(*fd, in + *off, len - *off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0)
			break; /* EPIPE: the reader stopped early */
		*off += (size_t)w;
	}
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/*
 * Runs "va-clip --socket DIR/ctl.sock cmd" with in (inlen bytes; NULL:
 * /dev/null) written into a pipe on its stdin; pumps h meanwhile.
 * Returns the exit status (128 + signal), or -1.
 */
static int
run_clip(struct host *h, const char *cmd, const char *in, size_t inlen, struct va_buf *out,
	 struct va_buf *err)
{
	const char *outp = path_in(&AG, "clip.out"), *errp = path_in(&AG, "clip.err");
	const char *args[] = { "--socket", AG.ctl, cmd, NULL };
	int status = -1, pfd[2] = { -1, -1 };
	size_t off = 0;

	unlink(outp);
	unlink(errp);
	if (in && pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = spawn("VA_CLIP_WRAPPER", clip_path(), args, pfd[0], outp, errp);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pid < 0) {
		if (pfd[1] >= 0)
			close(pfd[1]);
		return -1;
	}
	if (pfd[1] >= 0)
		fcntl(pfd[1], F_SETFL, O_NONBLOCK);
	int done = WAIT_UNTIL(h, (feed_pipe(&pfd[1], in, inlen, &off),
				  waitpid(pid, &status, WNOHANG) == pid), 10000);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(0, "va-clip %s did not finish in 10 s", cmd);
		return -1;
	}
	if (out)
		read_file(outp, out, SIZE_MAX);
	if (err)
		read_file(errp, err, SIZE_MAX);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void
test_clipboard_va_clip(void)
{
	NEED_AGENT();
	struct va_buf out = { 0 }, err = { 0 };
	struct result r;
	struct stat sb = { 0 };

	CHECK(stat(AG.ctl, &sb) == 0 && (sb.st_mode & 0777) == 0600, "control socket mode %#o",
	      (unsigned)(sb.st_mode & 0777));

	/* Guest copy -> host.clipboard.set(text). */
	static const char g1[] = "copied in the guest \xe2\x9c\x93\nsecond line\n";
	unsigned before = count_records(H, "host.clipboard.set");
	int rc = run_clip(H, "copy", g1, strlen(g1), NULL, &err);
	CHECK(rc == 0, "va-clip copy exited %d: %.*s", rc, (int)err.len, (char *)err.data);
	va_buf_free(&err);
	int got = WAIT_UNTIL(H, count_records(H, "host.clipboard.set") > before, 5000);
	CHECK(got, "no host.clipboard.set after va-clip copy");
	int i = find_record(H, "host.clipboard.set", 0);
	if (got && i >= 0) {
		xmlrpc_value *t = array_item(H->rec[i].params, 0);
		char *text = as_string(t, NULL);
		CHECK(text && strcmp(text, g1) == 0, "host.clipboard.set text \"%s\"", text ? text : "-");
		free(text);
		if (t)
			xmlrpc_DECREF(t);
	}
	int64_t serial, serial0;
	char *origin = NULL, *text = clip_get(H, &serial0, &origin);
	free(text);
	free(origin);
	text = clip_get(H, &serial, &origin);
	CHECK(text && strcmp(text, g1) == 0 && origin && strcmp(origin, "guest") == 0 &&
	      serial == serial0 && serial > 0,
	      "va.clipboard.get after a guest copy: origin %s serial %" PRId64,
	      origin ? origin : "-", serial);
	free(text);
	free(origin);

	/* Host set -> va-clip paste prints it. */
	static const char h1[] = "set by the host \xc3\xa9\n\twith a tab";
	call(H, &r, "va.clipboard.set", "(s)", h1);
	OK(&r, "va.clipboard.set");
	result_clean(&r);
	rc = run_clip(H, "paste", NULL, 0, &out, &err);
	CHECK(rc == 0 && out.len == strlen(h1) && memcmp(out.data, h1, out.len) == 0,
	      "va-clip paste exited %d, printed \"%.*s\" (%.*s)", rc, (int)out.len,
	      (char *)out.data, (int)err.len, (char *)err.data);
	va_buf_free(&out);
	va_buf_free(&err);

	/* A guest copy does not change what paste prints (the host's last text). */
	before = count_records(H, "host.clipboard.set");
	rc = run_clip(H, "copy", "guest again", 11, NULL, NULL);
	CHECK(rc == 0, "second copy exited %d", rc);
	WAIT_UNTIL(H, count_records(H, "host.clipboard.set") > before, 5000);
	rc = run_clip(H, "paste", NULL, 0, &out, NULL);
	CHECK(rc == 0 && out.len == strlen(h1) && memcmp(out.data, h1, out.len) == 0,
	      "paste after a guest copy printed \"%.*s\"", (int)out.len, (char *)out.data);
	va_buf_free(&out);

	/* Refused by the agent (invalid UTF-8) or by va-clip (too large): exit 1, nothing sent. */
	before = count_records(H, "host.clipboard.set");
	rc = run_clip(H, "copy", "bad \xff\xfe bytes", 13, NULL, NULL);
	CHECK(rc == 1, "copy of invalid UTF-8 exited %d", rc);
	char *big = malloc(VA_CLIPBOARD_MAX + 1);
	memset(big, 'b', VA_CLIPBOARD_MAX + 1);
	rc = run_clip(H, "copy", big, VA_CLIPBOARD_MAX + 1, NULL, NULL);
	CHECK(rc == 1, "copy of 1 MiB + 1 exited %d", rc);
	/* Exactly 1 MiB goes through. */
	rc = run_clip(H, "copy", big, VA_CLIPBOARD_MAX, NULL, NULL);
	CHECK(rc == 0, "copy of 1 MiB exited %d", rc);
	free(big);
	got = WAIT_UNTIL(H, count_records(H, "host.clipboard.set") == before + 1, 5000);
	CHECK(got, "expected exactly one more host.clipboard.set, got %u",
	      count_records(H, "host.clipboard.set") - before);
	rc = run_clip(H, "frobnicate", NULL, 0, NULL, NULL);
	CHECK(rc == 2, "va-clip with a bad command exited %d", rc);

	/* Idle clients of the control socket do not hold up va-clip. */
	int idle[4];
	for (int k = 0; k < 4; k++)
		idle[k] = unix_connect(AG.ctl);
	if (write(idle[0], "COPY 10\nabc", 11) != 11) /* and one that stops half-way */
		CHECK(0, "write to the control socket");
	uint64_t t0 = va_now_ms();
	rc = run_clip(H, "paste", NULL, 0, &out, NULL);
	CHECK(rc == 0 && out.len == strlen(h1), "paste with idle clients exited %d", rc);
	CHECK(va_now_ms() - t0 < T(3000), "paste with idle clients took %" PRIu64 " ms", va_now_ms() - t0);
	va_buf_free(&out);
	for (int k = 0; k < 4; k++)
		if (idle[k] >= 0)
			close(idle[k]);

	/* A raw client that sends an unknown request gets ERR. */
	int fd = unix_connect(AG.ctl);
	if (fd >= 0) {
		char ans[256] = "";
		size_t have = 0;
		CHECK(send(fd, "HELLO\n", 6, MSG_NOSIGNAL) == 6, "send");
		uint64_t end = va_now_ms() + T(5000);
		while (va_now_ms() < end && have < sizeof(ans) - 1) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			host_pump(H, 0);
			if (poll(&p, 1, 20) <= 0)
				continue;
			ssize_t n = read(fd, ans + have, sizeof(ans) - 1 - have);
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		ans[have] = 0;
		CHECK(strncmp(ans, "ERR ", 4) == 0, "control socket answered \"%s\" to HELLO", ans);
	}
	if (fd >= 0)
		close(fd);
	PING(H);
}

/* ---- large transfers ---- */

#define BIG_SIZE (64u * 1024 * 1024)
#define WCHUNK (4u * 1024 * 1024)
#define RCHUNK (8u * 1024 * 1024)
#define IN_FLIGHT 4

static void
test_file_roundtrip_64m(void)
{
	NEED_AGENT();
	const char *p = path_in(&AG, "big.bin");
	struct prng g = { 0x5eed1234abcdull };
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	char local[2 * SHA256_DIGEST_SIZE + 1], back[2 * SHA256_DIGEST_SIZE + 1];
	uint8_t *chunk = malloc(WCHUNK);
	struct result r[IN_FLIGHT];
	size_t nchunks = BIG_SIZE / WCHUNK, next = 0, doneN = 0;
	int slot_chunk[IN_FLIGHT];
	int failed = 0;
	uint64_t t0 = va_now_ms();

	int hd = FOPEN(H, p, "w", -1);
	if (hd < 0 || !chunk) {
		free(chunk);
		return;
	}
	sha256_init(&ctx);
	memset(r, 0, sizeof(r));
	for (int k = 0; k < IN_FLIGHT; k++) {
		slot_chunk[k] = -1;
		r[k].done = 1;
	}
	/* Writes, IN_FLIGHT at a time; the agent serves them in order. */
	while (doneN < nchunks && !failed) {
		for (int k = 0; k < IN_FLIGHT; k++) {
			if (!r[k].done)
				continue;
			if (slot_chunk[k] >= 0) {
				xmlrpc_value *v = OK(&r[k], "va.file.write of 4 MiB");
				int64_t n = v ? as_int(v, NULL) : -1;
				CHECK(n == WCHUNK, "chunk %d: %" PRId64 " bytes written", slot_chunk[k], n);
				failed |= n != WCHUNK;
				result_clean(&r[k]);
				slot_chunk[k] = -1;
				r[k].done = 1;
				doneN++;
			}
			if (next < nchunks && !failed) {
				xmlrpc_env e;
				xmlrpc_env_init(&e);
				prng_fill(&g, chunk, WCHUNK);
				sha256_update(&ctx, WCHUNK, chunk);
				xmlrpc_value *params = xmlrpc_build_value(&e, "(i6)", hd, chunk, (size_t)WCHUNK);
				if (call_start(H, &r[k], "va.file.write", params) < 0) {
					CHECK(0, "va_session_call of a 4 MiB write failed");
					failed = 1;
				}
				xmlrpc_DECREF(params);
				xmlrpc_env_clean(&e);
				slot_chunk[k] = (int)next++;
			}
		}
		if (doneN < nchunks && !failed &&
		    !WAIT_UNTIL(H, ({ int a_ = 0; for (int k = 0; k < IN_FLIGHT; k++)
			    a_ |= r[k].done && slot_chunk[k] >= 0; a_; }), 60000)) {
			CHECK(0, "writes stalled at chunk %zu", doneN);
			failed = 1;
		}
	}
	/* Let the rest finish before their results go away. */
	WAIT_UNTIL(H, ({ int a_ = 1; for (int k = 0; k < IN_FLIGHT; k++) a_ &= r[k].done; a_; }), 60000);
	for (int k = 0; k < IN_FLIGHT; k++)
		result_clean(&r[k]);
	free(chunk);
	FCLOSE(H, hd);
	sha256_digest(&ctx, sizeof(digest), digest);
	sha256_hex(digest, local);
	if (getenv("VA_DEBUG"))
		fprintf(stderr, "64 MiB written: %" PRIu64 " ms\n", va_now_ms() - t0);
	if (failed)
		return;

	struct result cr;
	call(H, &cr, "va.file.checksum", "(s)", p);
	char *sum = as_string(OK(&cr, "va.file.checksum of 64 MiB"), NULL);
	CHECK(sum && strcmp(sum, local) == 0, "checksum %s, computed here %s", sum ? sum : "-", local);
	free(sum);
	result_clean(&cr);
	call(H, &cr, "va.file.stat", "(s)", p);
	CHECK(member_int(OK(&cr, "stat"), "size", NULL) == BIG_SIZE, "size after the writes");
	result_clean(&cr);
	CHECK(sha256_file(p, back) == 0 && strcmp(back, local) == 0, "the file on disk differs");
	if (getenv("VA_DEBUG"))
		fprintf(stderr, "64 MiB checked: %" PRIu64 " ms\n", va_now_ms() - t0);

	/* Read it back in 8 MiB reads, two in flight. */
	hd = FOPEN(H, p, "r", -1);
	if (hd < 0)
		return;
	sha256_init(&ctx);
	size_t got = 0;
	int eof = 0;
	struct result rr[2];
	memset(rr, 0, sizeof(rr));
	for (int k = 0; k < 2; k++) {
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		xmlrpc_value *params = xmlrpc_build_value(&e, "(ii)", hd, (int)RCHUNK);
		call_start(H, &rr[k], "va.file.read", params);
		xmlrpc_DECREF(params);
		xmlrpc_env_clean(&e);
	}
	for (int turn = 0; !eof && !failed && turn < 64; turn++) {
		struct result *cur = &rr[turn % 2];
		if (!call_wait(H, cur, 60000)) {
			CHECK(0, "read %d not answered", turn);
			failed = 1;
			break;
		}
		xmlrpc_value *v = OK(cur, "va.file.read of 8 MiB");
		xmlrpc_value *d = member(v, "data");
		const unsigned char *data = NULL;
		size_t n = 0;
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		if (d)
			xmlrpc_read_base64(&e, d, &n, &data);
		if (!v || e.fault_occurred) {
			failed = 1;
		} else {
			sha256_update(&ctx, n, data);
			got += n;
			eof = member_bool(v, "eof", NULL);
		}
		free((void *)data);
		if (d)
			xmlrpc_DECREF(d);
		xmlrpc_env_clean(&e);
		result_clean(cur);
		cur->done = 1; /* not in flight unless started again */
		if (!eof && !failed) {
			xmlrpc_env_init(&e);
			xmlrpc_value *params = xmlrpc_build_value(&e, "(ii)", hd, (int)RCHUNK);
			call_start(H, cur, "va.file.read", params);
			xmlrpc_DECREF(params);
			xmlrpc_env_clean(&e);
		}
	}
	WAIT_UNTIL(H, rr[0].done && rr[1].done, 60000);
	result_clean(&rr[0]);
	result_clean(&rr[1]);
	FCLOSE(H, hd);
	sha256_digest(&ctx, sizeof(digest), digest);
	sha256_hex(digest, back);
	CHECK(!failed && got == BIG_SIZE && strcmp(back, local) == 0,
	      "read back %zu bytes, sha256 %s, expected %s", got, back, local);
	unlink(p);
	if (getenv("VA_DEBUG"))
		fprintf(stderr, "64 MiB round trip: %" PRIu64 " ms\n", va_now_ms() - t0);
}

/* An 8 MiB file of known bytes, made here; returns the path. */
static const char *
make_data_file(struct agent *a, uint8_t **copy)
{
	const char *p = path_in(a, "data8m");
	struct prng g = { 0xfeedfacecafeull };
	uint8_t *buf = malloc(RCHUNK);

	prng_fill(&g, buf, RCHUNK);
	if (write_file(p, buf, RCHUNK, 0600) < 0)
		CHECK(0, "cannot write %s", p);
	*copy = buf;
	return p;
}

/* After a torn exchange: the next calls get their own answers, nothing stale. */
static void
check_own_answers(struct host *h, int hd, const uint8_t *data)
{
	struct result r;
	char token[64];

	snprintf(token, sizeof(token), "token-%" PRIu64, va_now_ms());
	call(h, &r, "va.echo", "(s)", token);
	xmlrpc_value *v = OK(&r, "va.echo after the reconnect");
	xmlrpc_value *x = array_item(v, 0);
	char *s = as_string(x, NULL);
	CHECK(array_size(v) == 1 && s && strcmp(s, token) == 0, "va.echo answered \"%s\", not %s",
	      s ? s : "(not a string)", token);
	free(s);
	if (x)
		xmlrpc_DECREF(x);
	result_clean(&r);
	if (hd >= 0) {
		CHECK(FSEEK(h, hd, 12345, 0) == 12345, "seek on the old handle");
		size_t len = 0;
		int eof = 0;
		unsigned char *d = FREAD(h, hd, 16, &len, &eof);
		CHECK(d && len == 16 && memcmp(d, data + 12345, 16) == 0, "16 bytes read at 12345 differ");
		free(d);
	}
}

static void
test_reconnect_mid_response(void)
{
	NEED_AGENT();
	uint8_t *data = NULL;
	const char *p = make_data_file(&AG, &data);
	struct result r;
	struct va_session_stats st;

	int hd = FOPEN(H, p, "r", -1);
	if (hd < 0) {
		free(data);
		return;
	}
	for (int round = 0; round < 3; round++) {
		/* Ask for 8 MiB (about 11 MiB of XML), then hang up while it comes. */
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		xmlrpc_value *params = xmlrpc_build_value(&e, "(ii)", hd, (int)RCHUNK);
		FSEEK(H, hd, 0, 0);
		call_start(H, &r, "va.file.read", params);
		xmlrpc_DECREF(params);
		xmlrpc_env_clean(&e);
		WAIT_UNTIL(H, va_session_output_pending(H->s) == 0, 5000);
		/* round 0: at once; 1: after the agent started writing; 2: after some was read */
		if (round == 1)
			sleep_ms(100);
		if (round == 2)
			for (int k = 0; k < 3; k++)
				host_pump(H, 5);
		host_close(H); /* the call ends with VA_SESSION_ERR_CLOSED */
		H = NULL;
		CHECK(r.done && (r.err == VA_SESSION_ERR_CLOSED || r.err == 0),
		      "round %d: the abandoned call ended with %d", round, r.err);
		result_clean(&r);

		H = host_connect(&AG, 0, 0);
		if (!H)
			break;
		check_own_answers(H, hd, data);
		va_session_stats(H->s, &st);
		CHECK(st.stale_responses == 0 && st.unmatched_responses == 0 && st.bad_frames == 0 &&
		      st.parser.torn == 0 && st.parser.errors == 0,
		      "round %d: stale %" PRIu64 " unmatched %" PRIu64 " bad %" PRIu64
		      " torn %" PRIu64 " errors %" PRIu64, round, st.stale_responses,
		      st.unmatched_responses, st.bad_frames, st.parser.torn, st.parser.errors);
	}
	if (H)
		FCLOSE(H, hd);
	free(data);
}

static void
test_reset_mid_response(void)
{
	NEED_AGENT();
	uint8_t *data = NULL;
	const char *p = make_data_file(&AG, &data);
	struct result r, r2;
	char d[1200];

	int hd = FOPEN(H, p, "r", -1);
	if (hd < 0) {
		free(data);
		return;
	}
	for (int round = 0; round < 3; round++) {
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		xmlrpc_value *params = xmlrpc_build_value(&e, "(ii)", hd, (int)RCHUNK);
		FSEEK(H, hd, 0, 0);
		call_start(H, &r, "va.file.read", params);
		call_start(H, &r2, "va.file.read", params);
		xmlrpc_DECREF(params);
		xmlrpc_env_clean(&e);
		WAIT_UNTIL(H, va_session_output_pending(H->s) == 0, 5000);
		if (round == 1)
			sleep_ms(50);
		if (round == 2)
			for (int k = 0; k < 4; k++)
				host_pump(H, 5);
		unsigned est = H->established;
		va_session_reset(H->s, va_now_ms());
		host_flush(H);
		/* Each call ends with RESET, or (if it was quicker) its own answer. */
		CHECK(r.done && r2.done, "the reset did not end the calls in flight");
		CHECK((r.err == VA_SESSION_ERR_RESET || r.err == 0) &&
		      (r2.err == VA_SESSION_ERR_RESET || r2.err == 0),
		      "round %d: calls ended with %d and %d", round, r.err, r2.err);
		if (r.err == 0) {
			xmlrpc_value *dv = member(OK(&r, "first read"), "data");
			const unsigned char *b = NULL;
			size_t n = 0;
			xmlrpc_env e2;
			xmlrpc_env_init(&e2);
			if (dv)
				xmlrpc_read_base64(&e2, dv, &n, &b);
			CHECK(n == RCHUNK && b && memcmp(b, data, n) == 0, "round %d: the first read's answer is wrong", round);
			free((void *)b);
			if (dv)
				xmlrpc_DECREF(dv);
			xmlrpc_env_clean(&e2);
		}
		if (r2.err == 0) {
			xmlrpc_value *v2 = OK(&r2, "second read");
			CHECK(member_int(v2, "count", NULL) == 0 && member_bool(v2, "eof", NULL),
			      "round %d: the second read's answer is wrong", round);
		}
		result_clean(&r);
		result_clean(&r2);
		int ok = WAIT_UNTIL(H, H->established > est, 5000);
		CHECK(ok, "round %d: no new handshake after our reset", round);
		check_own_answers(H, hd, data);
	}
	/* Every reset brings a host.hello. */
	unsigned hellos = count_records(H, "host.hello");
	CHECK(hellos >= 4, "%u host.hello calls after 3 resets", hellos);
	/* A fresh call after it all works with a big answer too. */
	FSEEK(H, hd, 0, 0);
	call(H, &r, "va.file.read", "(ii)", hd, (int)RCHUNK);
	xmlrpc_value *v = OK(&r, "va.file.read of 8 MiB after the resets");
	xmlrpc_value *dv = member(v, "data");
	const unsigned char *b = NULL;
	size_t n = 0;
	xmlrpc_env e;
	xmlrpc_env_init(&e);
	if (dv)
		xmlrpc_read_base64(&e, dv, &n, &b);
	CHECK(n == RCHUNK && b && memcmp(b, data, n) == 0, "8 MiB read after the resets: %zu bytes, %s",
	      n, describe(&r, d, sizeof(d)));
	free((void *)b);
	if (dv)
		xmlrpc_DECREF(dv);
	xmlrpc_env_clean(&e);
	result_clean(&r);
	FCLOSE(H, hd);
	free(data);
}

/* ---- raw connections ---- */

/* A connected unix stream socket to path, or -1. */
static int
unix_connect(const char *path)
{
	int fd = va_test_unix_connect(path);

	if (fd < 0 && errno == ENAMETOOLONG)
		CHECK(0, "socket path too long: %s", path);
	else if (fd < 0)
		CHECK(0, "connect %s: %s", path, strerror(errno));
	return fd;
}

static int
raw_connect(const struct agent *a)
{
	return unix_connect(a->sock);
}

static int
raw_send(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;
	uint64_t end = va_now_ms() + T(5000);

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };
			if (va_now_ms() > end)
				return -1;
			poll(&pf, 1, 20);
			continue;
		}
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

#define MAX_RAW_FRAMES 32

struct raw {
	int fd;
	va_frame_parser *p;
	struct va_frame *f[MAX_RAW_FRAMES];
	unsigned n;
	unsigned errors;
};

static void
raw_on_frame(void *opaque, struct va_frame *f)
{
	struct raw *r = opaque;
	if (r->n < MAX_RAW_FRAMES)
		r->f[r->n++] = f;
	else
		va_frame_free(f);
}

static void
raw_on_error(void *opaque, enum va_frame_error err, const struct va_frame *partial)
{
	(void)err;
	(void)partial;
	((struct raw *)opaque)->errors++;
}

static const struct va_frame_parser_ops raw_ops = { .frame = raw_on_frame, .error = raw_on_error };

static void
raw_free(struct raw *r)
{
	for (unsigned i = 0; i < r->n; i++)
		va_frame_free(r->f[i]);
	r->n = 0;
	va_frame_parser_free(r->p);
	r->p = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* Reads until a frame matching (request method, or response status) arrives. */
static struct va_frame *
raw_wait(struct raw *r, const char *method, int status, const char *tag, unsigned ms)
{
	uint8_t buf[65536];
	uint64_t end = va_now_ms() + T(ms);
	unsigned seen = 0;

	for (;;) {
		for (; seen < r->n; seen++) {
			struct va_frame *f = r->f[seen];
			const char *t = va_frame_header(f, VA_TAG_HEADER);
			if ((method ? f->kind == VA_FRAME_REQUEST && strcmp(f->method, method) == 0
				    : f->kind == VA_FRAME_RESPONSE && f->status == status) &&
			    (!tag || (t && strcmp(t, tag) == 0)))
				return f;
		}
		if (va_now_ms() >= end)
			return NULL;
		struct pollfd pf = { .fd = r->fd, .events = POLLIN };
		if (poll(&pf, 1, 20) <= 0)
			continue;
		ssize_t n = read(r->fd, buf, sizeof(buf));
		if (n <= 0)
			return NULL;
		va_frame_parser_feed(r->p, buf, (size_t)n);
	}
}

/* Connects raw and does the handshake by hand: ACKs the agent's RESET. */
static int
raw_handshake(struct raw *r, const struct agent *a)
{
	memset(r, 0, sizeof(*r));
	r->fd = raw_connect(a);
	r->p = va_frame_parser_new(VA_FRAME_DEFAULT_MAX_BODY, &raw_ops, r);
	if (r->fd < 0 || !r->p)
		return -1;
	struct va_frame *reset = raw_wait(r, "RESET", 0, NULL, 5000);
	const char *nonce = reset ? va_frame_header(reset, VA_NONCE_HEADER) : NULL;
	CHECK(nonce != NULL, "no RESET with a nonce from the agent on a raw connection");
	if (!nonce)
		return -1;
	struct va_frame_header hd[2] = {
		{ (char *)VA_NONCE_HEADER, (char *)nonce },
		{ (char *)VA_MAX_FRAME_HEADER, (char *)"16777216" },
	};
	struct va_buf b = { 0 };
	va_frame_write(&b, "HTTP/1.1 205 Reset Content", hd, 2, NULL, 0);
	int rc = raw_send(r->fd, b.data, b.len);
	va_buf_free(&b);
	return rc;
}

static void
raw_request(struct va_buf *b, const char *tag, const char *body)
{
	struct va_frame_header hd[2] = {
		{ (char *)"Content-Type", (char *)"text/xml" },
		{ (char *)VA_TAG_HEADER, (char *)tag },
	};
	va_frame_write(b, "POST /RPC2 HTTP/1.1", hd, 2, body, strlen(body));
}

static const char ping_body[] =
	"<?xml version=\"1.0\"?><methodCall><methodName>va.ping</methodName><params/></methodCall>";

static void
test_garbage_then_reconnect(void)
{
	NEED_AGENT();
	struct prng g = { 0xabcdef0123ull };
	uint8_t junk[65536];

	host_close(H);
	H = NULL;
	/* 1: random bytes (0xFF included), then hang up. */
	int fd = raw_connect(&AG);
	if (fd >= 0) {
		prng_fill(&g, junk, sizeof(junk));
		raw_send(fd, junk, sizeof(junk));
		close(fd);
	}
	/* 2: frames that break every limit, left open while a session connects. */
	fd = raw_connect(&AG);
	if (fd >= 0) {
		struct va_buf b = { 0 };
		va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n");
		va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\n");
		va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		va_buf_append_str(&b, "\xff" "RESET /RPC2 HTTP/1.1\r\nX-Virtagent-Nonce: zz\r\nContent-Length: 0\r\n\r\n");
		va_buf_append_str(&b, "\xff" "HTTP/1.1 205 Reset Content\r\nX-Virtagent-Nonce: 0123456789abcdef\r\n"
				  "X-Virtagent-Max-Frame: 1\r\nContent-Length: 0\r\n\r\n");
		va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nX: ");
		for (int i = 0; i < 10000; i++)
			va_buf_append_str(&b, "x");
		va_buf_append_str(&b, "\r\n\r\n");
		va_buf_append(&b, "\0\0\0\xff\xff\xff\r\n\r\n", 10);
		va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nContent-Length: 16777000\r\n\r\n<?xml");
		raw_send(fd, b.data, b.len);
		va_buf_free(&b);
		/* The agent replaces this peer with the next one. */
		H = host_connect(&AG, 0, 0);
		close(fd);
	}
	if (!H)
		H = host_connect(&AG, 0, 0);
	if (!H)
		return;
	PING(H);
	/* 3: junk on our own connection, between sessions: the agent resyncs. */
	host_close(H);
	H = NULL;
	fd = raw_connect(&AG);
	if (fd >= 0) {
		raw_send(fd, "\xff" "POST /RPC2 HTTP/1.1\r\nContent-Length: 1000\r\n\r\n<half", 52);
		close(fd);
	}
	H = host_connect(&AG, 0, 0);
	if (H)
		PING(H);
	CHECK(!agent_exited(&AG), "the agent died on garbage");
}

static void
test_raw_resync_and_413(void)
{
	NEED_AGENT();
	struct raw r;
	struct va_buf b = { 0 };
	struct va_frame *f;

	host_close(H);
	H = NULL;
	if (raw_handshake(&r, &AG) < 0) {
		raw_free(&r);
		H = host_connect(&AG, 0, 0);
		return;
	}
	/* A request torn by the next frame's 0xFF is dropped; the next one is served. */
	va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nX-Virtagent-Client-Tag: raw.torn\r\n"
			  "Content-Length: 500\r\n\r\n<?xml version=");
	va_buf_append_str(&b, "garbage between frames \x01\x02");
	raw_request(&b, "raw.1", ping_body);
	raw_send(r.fd, b.data, b.len);
	va_buf_free(&b);
	f = raw_wait(&r, NULL, 200, "raw.1", 5000);
	CHECK(f && strstr((const char *)f->body, "<boolean>1</boolean>"),
	      "no answer to a request after a torn one");
	CHECK(raw_wait(&r, NULL, 200, "raw.torn", 300) == NULL, "the torn request was answered");

	/* A request over the limit: 413 with its tag, without the body being sent. */
	va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nX-Virtagent-Client-Tag: raw.big\r\n"
			  "Content-Length: 999999999\r\n\r\n");
	raw_send(r.fd, b.data, b.len);
	va_buf_free(&b);
	f = raw_wait(&r, NULL, 413, "raw.big", 5000);
	CHECK(f != NULL, "no 413 for a request of 999999999 bytes");
	/* The agent skips to the next 0xFF: the next request is served. */
	va_buf_append_str(&b, "<some of the body that never ends>");
	raw_request(&b, "raw.2", ping_body);
	raw_send(r.fd, b.data, b.len);
	va_buf_free(&b);
	f = raw_wait(&r, NULL, 200, "raw.2", 5000);
	CHECK(f != NULL, "no answer after a 413");
	/* A request with no tag is dropped, and one with a weird but valid tag is echoed. */
	va_buf_append_str(&b, "\xff" "POST /RPC2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
	raw_request(&b, "~weird!tag#", ping_body);
	raw_send(r.fd, b.data, b.len);
	va_buf_free(&b);
	f = raw_wait(&r, NULL, 200, "~weird!tag#", 5000);
	CHECK(f != NULL, "a request with tag ~weird!tag# was not answered");
	raw_free(&r);
	H = host_connect(&AG, 0, 0);
	if (H)
		PING(H);
}

/* How many lines of the agent's log hold needle. */
static unsigned
log_count(const struct agent *a, const char *needle)
{
	struct va_buf b = { 0 };
	unsigned n = 0;

	if (read_file(a->log, &b, SIZE_MAX) < 0)
		return 0;
	va_buf_append(&b, "", 1);
	for (const char *p = (const char *)b.data; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	va_buf_free(&b);
	return n;
}

/*
 * A host that sends many large reads without reading the answers: the
 * agent must stop taking requests while its output is backed up, not
 * queue 11 MiB per answer without end.  Counted from the agent's audit
 * log (allocator- and valgrind-proof): at most a few of the 24 reads may
 * be served before the host reads anything.
 */
static void
test_output_backlog_bounded(void)
{
	NEED_AGENT();
	uint8_t *data = NULL;
	const char *p = make_data_file(&AG, &data);
	struct raw r;
	struct va_buf b = { 0 };
	char body[512], tag[32], needle[64];
	int hd = -1;

	free(data);
	host_close(H);
	H = NULL;
	if (raw_handshake(&r, &AG) < 0)
		goto out;
	snprintf(body, sizeof(body), "%s<methodCall><methodName>va.file.open</methodName><params>"
		 "<param><value><string>%s</string></value></param><param><value><string>r"
		 "</string></value></param></params></methodCall>", xml_head, p);
	raw_request(&b, "bk.open", body);
	raw_send(r.fd, b.data, b.len);
	va_buf_free(&b);
	struct va_frame *f = raw_wait(&r, NULL, 200, "bk.open", 5000);
	if (f) {
		xmlrpc_env e;
		xmlrpc_value *v = NULL;
		int code = 0;
		const char *fs = NULL;
		xmlrpc_env_init(&e);
		xmlrpc_parse_response2(&e, (const char *)f->body, f->body_len, &v, &code, &fs);
		if (v)
			hd = (int)as_int(v, NULL);
		if (v)
			xmlrpc_DECREF(v);
		free((void *)fs);
		xmlrpc_env_clean(&e);
	}
	CHECK(hd > 0, "va.file.open over the raw connection failed");
	if (hd <= 0)
		goto out;
	for (int i = 0; i < 24; i++) {
		snprintf(body, sizeof(body), "%s<methodCall><methodName>va.file.read</methodName><params>"
			 "<param><value><int>%d</int></value></param><param><value><int>%u</int>"
			 "</value></param></params></methodCall>", xml_head, hd, RCHUNK);
		snprintf(tag, sizeof(tag), "bk.r%d", i);
		raw_request(&b, tag, body);
		snprintf(body, sizeof(body), "%s<methodCall><methodName>va.file.seek</methodName><params>"
			 "<param><value><int>%d</int></value></param><param><value><int>0</int></value>"
			 "</param><param><value><int>0</int></value></param></params></methodCall>",
			 xml_head, hd);
		snprintf(tag, sizeof(tag), "bk.s%d", i);
		raw_request(&b, tag, body);
	}
	raw_send(r.fd, b.data, b.len);
	va_buf_free(&b);
	/* Read nothing for a while. */
	snprintf(needle, sizeof(needle), "va.file.read %d %u", hd, RCHUNK);
	WAIT_UNTIL(NULL, 0, 2000);
	unsigned served = log_count(&AG, needle);
	CHECK(served <= 8, "the agent served %u of 24 reads of 8 MiB while the host read nothing: "
	      "about %u MiB of answers queued (no back-pressure on the output queue)",
	      served, served * 11);
out:
	raw_free(&r);
	H = host_connect(&AG, 0, 0);
	if (H)
		PING(H);
}

static void
test_host_reset_sends_hello(void)
{
	NEED_AGENT();
	unsigned before = count_records(H, "host.hello");
	unsigned est = H->established;

	va_session_reset(H->s, va_now_ms());
	host_flush(H);
	int ok = WAIT_UNTIL(H, H->established > est && count_records(H, "host.hello") > before, 5000);
	CHECK(ok, "no host.hello after a reset by the host");
	PING(H);
}

/* The lines of the shutdown file. */
static int
shutdown_lines(struct agent *a, char *buf, size_t n)
{
	struct va_buf b = { 0 };
	int lines = 0;

	buf[0] = 0;
	if (read_file(a->shut, &b, n - 1) < 0)
		return 0;
	for (size_t i = 0; i < b.len; i++)
		lines += b.data[i] == '\n';
	snprintf(buf, n, "%.*s", (int)b.len, (char *)b.data);
	va_buf_free(&b);
	return lines;
}

/*
 * The notice of a va.shutdown: host.shutdown_notice(mode, reason), the
 * reason a string that names the delay (older agents: the delay as an int).
 */
static void
check_notice_at(struct host *h, int i, const char *mode, int delay, int line)
{
	xmlrpc_value *m = array_item(h->rec[i].params, 0), *r = array_item(h->rec[i].params, 1);
	char *s = as_string(m, NULL), *why = as_string(r, NULL), num[32];
	int ok = 1;

	snprintf(num, sizeof(num), "%d", delay);
	check_at(s && strcmp(s, mode) == 0, line, "notice mode \"%s\", expected %s", s ? s : "-", mode);
	if (why)
		check_at(strstr(why, num) != NULL, line, "notice reason \"%s\" does not say %d s", why, delay);
	else
		check_at(as_int(r, &ok) == delay && ok, line, "notice has neither a reason nor delay %d", delay);
	free(s);
	free(why);
	if (m)
		xmlrpc_DECREF(m);
	if (r)
		xmlrpc_DECREF(r);
}

static void
test_shutdown(void)
{
	NEED_AGENT();
	struct result r;
	char text[256];

	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "bad mode", "va.shutdown", "(s)", "explode");
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.shutdown", "(si)", "halt", -1);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.shutdown", "(si)", "halt", 3601);
	CALL_FAULT(H, XMLRPC_INDEX_ERROR, NULL, "va.shutdown", "(sI)", "halt", (xmlrpc_int64)1 << 40);
	CHECK(access(AG.shut, F_OK) < 0, "a refused va.shutdown ran the command");

	unsigned from = H->nrec;
	call(H, &r, "va.shutdown", "(s)", "reboot");
	OK(&r, "va.shutdown(reboot)");
	result_clean(&r);
	int ok = WAIT_UNTIL(H, find_record(H, "host.shutdown_notice", from) >= 0, 5000);
	CHECK(ok, "no host.shutdown_notice after va.shutdown");
	int i = find_record(H, "host.shutdown_notice", from);
	if (i >= 0)
		check_notice_at(H, i, "reboot", 0, __LINE__);
	ok = WAIT_UNTIL(H, shutdown_lines(&AG, text, sizeof(text)) >= 1, 5000);
	CHECK(ok && strcmp(text, "reboot 0\n") == 0, "the shutdown command wrote \"%s\"", text);

	/* With a delay: the notice at once, the command after delay_s. */
	from = H->nrec;
	uint64_t t0 = va_now_ms();
	call(H, &r, "va.shutdown", "(si)", "halt", 1);
	OK(&r, "va.shutdown(halt, 1)");
	result_clean(&r);
	ok = WAIT_UNTIL(H, find_record(H, "host.shutdown_notice", from) >= 0, 5000);
	CHECK(ok, "no notice for the delayed shutdown");
	i = find_record(H, "host.shutdown_notice", from);
	if (i >= 0)
		check_notice_at(H, i, "halt", 1, __LINE__);
	CHECK(shutdown_lines(&AG, text, sizeof(text)) == 1, "the delayed command ran at once");
	ok = WAIT_UNTIL(H, shutdown_lines(&AG, text, sizeof(text)) >= 2, 5000);
	CHECK(ok && strcmp(text, "reboot 0\nhalt 1\n") == 0, "shutdown file \"%s\"", text);
	CHECK(va_now_ms() - t0 >= 1000, "the delayed command ran after %" PRIu64 " ms",
	      va_now_ms() - t0);

	/* At most 4 pending; the 5th is refused. */
	for (int k = 0; k < 4; k++)
		CALL_OK(H, "va.shutdown", "(si)", "powerdown", 3600);
	CALL_FAULT(H, XMLRPC_LIMIT_EXCEEDED_ERROR, NULL, "va.shutdown", "(si)", "powerdown", 3600);
	WAIT_UNTIL(H, 0, 300);
	CHECK(shutdown_lines(&AG, text, sizeof(text)) == 2, "a pending shutdown ran early");
	PING(H);
}

/* ---- suite "acl-block" ---- */

static void
test_start_block(void)
{
	static const char *const extra[] = { "--block-rpcs",
		"va.shutdown, va.dmesg, va.file.checksum, va.file.read", NULL };
	CHECK(start_default(extra, 0, NULL) == 0, "agent start failed");
}

static void
test_block(void)
{
	NEED_AGENT();
	struct result r;

	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.shutdown", "(s)", "halt");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.dmesg", "()");
	/* Answered before the registry (sliced checksum, fast read): still blocked. */
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.file.checksum", "(s)",
		   "/etc/hostname");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.file.read", "(ii)", 1, 16);
	PING(H);
	call(H, &r, "va.capabilities", "()");
	xmlrpc_value *m = member(OK(&r, "va.capabilities"), "methods");
	CHECK(!array_has(m, "va.shutdown") && !array_has(m, "va.dmesg"),
	      "va.capabilities lists a blocked method");
	CHECK(!array_has(m, "va.file.checksum") && !array_has(m, "va.file.read"),
	      "va.capabilities lists a blocked method");
	CHECK(array_has(m, "va.ping") && array_has(m, "va.file.write"),
	      "va.capabilities lacks an enabled method");
	if (m)
		xmlrpc_DECREF(m);
	result_clean(&r);
	int i = find_record(H, "host.hello", 0);
	xmlrpc_value *info = i >= 0 ? array_item(H->rec[i].params, 0) : NULL;
	m = member(info, "methods");
	CHECK(m && !array_has(m, "va.shutdown") && array_has(m, "va.ping"),
	      "host.hello lists a blocked method");
	if (m)
		xmlrpc_DECREF(m);
	if (info)
		xmlrpc_DECREF(info);
	WAIT_UNTIL(H, 0, 400);
	CHECK(access(AG.shut, F_OK) < 0, "a blocked va.shutdown ran the command");
}

static void
test_block_multicall(void)
{
	NEED_AGENT();
	struct result r;
	char d[1200];

	/* system.multicall must not be a way around the block list. */
	call(H, &r, "system.multicall", "(({s:s,s:(s)}{s:s,s:()}))",
	     "methodName", "va.shutdown", "params", "halt",
	     "methodName", "va.ping", "params");
	int refused = r.done && r.err == 0 && r.fault;
	if (!refused && r.v) {
		/* Or the blocked inner call is a fault struct ("disabled"), not [true]. */
		xmlrpc_value *first = array_item(r.v, 0), *second = array_item(r.v, 1);
		char *fs = member_string(first, "faultString");
		refused = first && xmlrpc_value_type(first) == XMLRPC_TYPE_STRUCT;
		CHECK(!refused || (fs && strstr(fs, "disabled")), "the inner fault does not say disabled: %s",
		      fs ? fs : "(none)");
		xmlrpc_value *t = array_item(second, 0);
		xmlrpc_bool b = 0;
		xmlrpc_env e;
		xmlrpc_env_init(&e);
		if (t && xmlrpc_value_type(t) == XMLRPC_TYPE_BOOL)
			xmlrpc_read_bool(&e, t, &b);
		xmlrpc_env_clean(&e);
		CHECK(array_size(second) == 1 && b, "va.ping inside system.multicall did not give [true]");
		free(fs);
		if (t)
			xmlrpc_DECREF(t);
		if (first)
			xmlrpc_DECREF(first);
		if (second)
			xmlrpc_DECREF(second);
	}
	CHECK(refused, "system.multicall ran the blocked va.shutdown: %s", describe(&r, d, sizeof(d)));
	result_clean(&r);
	WAIT_UNTIL(H, 0, 600);
	CHECK(access(AG.shut, F_OK) < 0, "the shutdown command ran through system.multicall");
	CHECK(find_record(H, "host.shutdown_notice", 0) < 0,
	      "host.shutdown_notice sent for a blocked va.shutdown");
}

/* ---- suite "acl-allow" ---- */

static void
test_start_allow(void)
{
	static const char *const extra[] = {
		"--allow-rpcs", "va.ping,va.capabilities,va.echo",
		"--block-rpcs", "va.echo", NULL,
	};
	CHECK(start_default(extra, 0, NULL) == 0, "agent start failed");
}

static void
test_allow(void)
{
	NEED_AGENT();
	struct result r;

	PING(H);
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.info", "()");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.echo", "(i)", 1);
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "system.listMethods", "()");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "not available", "system.multicall", "(())");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.file.open", "(ss)", "/etc/hostname", "r");
	call(H, &r, "va.capabilities", "()");
	xmlrpc_value *m = member(OK(&r, "va.capabilities"), "methods");
	CHECK(array_size(m) == 2 && array_has(m, "va.ping") && array_has(m, "va.capabilities"),
	      "va.capabilities lists %d methods, expected va.ping and va.capabilities", array_size(m));
	if (m)
		xmlrpc_DECREF(m);
	result_clean(&r);
	int i = find_record(H, "host.hello", 0);
	xmlrpc_value *info = i >= 0 ? array_item(H->rec[i].params, 0) : NULL;
	m = member(info, "methods");
	CHECK(array_size(m) == 2 && array_has(m, "va.ping") && array_has(m, "va.capabilities"),
	      "host.hello lists %d methods", array_size(m));
	if (m)
		xmlrpc_DECREF(m);
	if (info)
		xmlrpc_DECREF(info);
}

/* ---- files that block, and va.file.checksum in slices ---- */

/*
 * /proc/kmsg is a "regular" file whose read blocks until the kernel logs
 * something: a read through the agent must return what is there (maybe
 * nothing, eof false) and a va.ping sent with it be answered within a
 * second.  Reading it consumes the kernel's messages (as any reader of
 * /proc/kmsg does); skipped where it cannot be read (not root, no
 * CAP_SYSLOG).
 */
static void
test_file_kmsg(void)
{
	NEED_AGENT();
	struct result r;
	int fd = open("/proc/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		printf("\n    note: /proc/kmsg cannot be read here (%s): skipped ", strerror(errno));
		return;
	}
	close(fd);
	call(H, &r, "va.file.open", "(ss)", "/proc/kmsg", "r");
	if (r.done && r.err == 0 && r.fault) {
		printf("\n    note: the agent cannot open /proc/kmsg (%s): skipped ", r.fault);
		result_clean(&r);
		return;
	}
	xmlrpc_value *v = OK(&r, "va.file.open /proc/kmsg");
	int hd = v ? (int)as_int(v, NULL) : -1;
	result_clean(&r);
	if (hd < 0)
		return;
	/* What is pending comes at once; then an empty chunk, eof false. */
	int empty = 0;
	for (int i = 0; i < 64 && !empty; i++) {
		size_t len = 0;
		int eof = 1;
		unsigned char *d = READ_WITH_PING(H, hd, 65536, 1000, &len, &eof);
		if (!d)
			break;
		CHECK(!eof, "/proc/kmsg read %d: eof after %zu bytes", i, len);
		empty = len == 0;
		free(d);
	}
	CHECK(empty, "/proc/kmsg never gave an empty chunk");
	FCLOSE(H, hd);
	PING(H);
}

/* A procfs file that does not block still reads whole, to its end. */
static void
test_file_procfs_read(void)
{
	NEED_AGENT();
	size_t len = 0;
	int eof = 0;
	int hd = FOPEN(H, "/proc/self/status", "r", -1);
	if (hd < 0)
		return;
	unsigned char *d = FREAD(H, hd, 65536, &len, &eof);
	CHECK(d && len > 0 && eof && memmem(d, len, "Name:", 5) != NULL,
	      "read of /proc/self/status: %zu bytes, eof %d", len, eof);
	free(d);
	FCLOSE(H, hd);
}

/* The call answered a fault with exactly code and text. */
static void
fault_exact_at(struct result *r, int code, const char *text, int line)
{
	char d[1200];
	check_at(r->done && r->err == 0 && r->fault && r->fault_code == code &&
		 strcmp(r->fault, text) == 0, line, "expected fault %d \"%s\", got %s", code, text,
		 describe(r, d, sizeof(d)));
}

#define CALL_FAULT_EXACT(h, code, text, method, ...)                         \
	do {                                                                 \
		struct result r_;                                            \
		call((h), &r_, (method), __VA_ARGS__);                       \
		fault_exact_at(&r_, (code), (text), __LINE__);               \
		result_clean(&r_);                                           \
	} while (0)

/* Checksums of files of pseudo filesystems are refused, at once. */
static void
test_checksum_pseudo(void)
{
	NEED_AGENT();
	static const char *const paths[] = {
		"/proc/self/status", "/proc/kcore", "/proc/kmsg", "/sys/kernel/uevent_seqnum",
		"/sys/kernel/tracing/trace_pipe", "/sys/kernel/debug/tracing/trace_pipe",
	};
	struct stat sb;

	CALL_FAULT(H, XMLRPC_TYPE_ERROR, "not a file with stable contents", "va.file.checksum", "(s)",
		   "/proc/self/status");
	for (size_t i = 1; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct result r;
		if (stat(paths[i], &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		uint64_t t0 = va_now_ms();
		call(H, &r, "va.file.checksum", "(s)", paths[i]);
		/* Refused as pseudo, or not opened at all (no permission): never hashed. */
		FAULT(&r, 0, NULL, paths[i]);
		CHECK(!r.fault || r.fault_code != XMLRPC_TYPE_ERROR ||
		      strstr(r.fault, "not a file with stable contents"),
		      "%s: fault \"%s\"", paths[i], r.fault ? r.fault : "-");
		CHECK(va_now_ms() - t0 < T(2000), "%s: answered after %" PRIu64 " ms", paths[i],
		      va_now_ms() - t0);
		result_clean(&r);
	}
	PING(H);
}

/* The bytes xmlrpc-c's registry answers for a method returning the string s. */
static xmlrpc_value *
return_param(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	xmlrpc_value *v = NULL;
	(void)server_info;
	(void)call_info;
	xmlrpc_array_read_item(env, params, 0, &v);
	return v;
}

static void
registry_string_response(const char *str, struct va_buf *out)
{
	xmlrpc_env e;
	xmlrpc_mem_block *mb = NULL;
	struct va_buf call = { 0 };
	struct xmlrpc_method_info3 mi = {
		.methodName = "t.same", .methodFunction = return_param, .signatureString = "s:s",
	};

	xmlrpc_env_init(&e);
	xmlrpc_registry *reg = xmlrpc_registry_new(&e);
	if (!e.fault_occurred)
		xmlrpc_registry_add_method3(&e, reg, &mi);
	xmlrpc_value *params = e.fault_occurred ? NULL : xmlrpc_build_value(&e, "(s)", str);
	if (!e.fault_occurred)
		va_rpc_serialize_call(&e, &call, "t.same", params);
	if (!e.fault_occurred)
		xmlrpc_registry_process_call2(&e, reg, (const char *)call.data, call.len, NULL, &mb);
	if (!e.fault_occurred) {
		va_buf_append(out, XMLRPC_MEMBLOCK_CONTENTS(char, mb), XMLRPC_MEMBLOCK_SIZE(char, mb));
		XMLRPC_MEMBLOCK_FREE(char, mb);
	}
	CHECK(!e.fault_occurred, "local registry: %s", e.fault_occurred ? e.fault_string : "");
	if (params)
		xmlrpc_DECREF(params);
	if (reg)
		xmlrpc_registry_free(reg);
	va_buf_free(&call);
	xmlrpc_env_clean(&e);
}

#define SUM_FILE_SIZE (64u * 1024 * 1024)

/* A file of n bytes of the prng's stream; its sha256 into hex.  0 or -1. */
static int
make_prng_file(const char *path, size_t n, uint64_t seed, char hex[2 * SHA256_DIGEST_SIZE + 1])
{
	struct prng g = { seed };
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	size_t chunk = 1u << 20;
	uint8_t *buf = malloc(chunk);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	sha256_init(&ctx);
	for (size_t done = 0; done < n && rc == 0; done += chunk) {
		size_t k = n - done < chunk ? n - done : chunk;
		prng_fill(&g, buf, (k + 7) & ~(size_t)7);
		sha256_update(&ctx, k, buf);
		if (write(fd, buf, k) != (ssize_t)k)
			rc = -1;
	}
	if (close(fd) < 0)
		rc = -1;
	free(buf);
	sha256_digest(&ctx, sizeof(digest), digest);
	sha256_hex(digest, hex);
	return rc;
}

/*
 * The checksum of 64 MiB is right, its response is byte for byte what
 * xmlrpc-c's registry makes of the string, and a va.ping sent right
 * after it is answered before it: the agent hashes in slices and serves
 * calls in between (hashed in one go, the ping would wait for the end).
 */
static void
test_checksum_sliced(void)
{
	NEED_AGENT();
	const char *p = path_in(&AG, "sum64m.bin");
	char local[2 * SHA256_DIGEST_SIZE + 1];
	struct raw_result cs;
	struct result pg;

	if (make_prng_file(p, SUM_FILE_SIZE, 0x51ced5a11ull, local) < 0) {
		CHECK(0, "cannot write %s", p);
		return;
	}
	memset(&cs, 0, sizeof(cs));
	memset(&pg, 0, sizeof(pg));
	if (call_queue(H, on_raw_done, &cs, "va.file.checksum", "(s)", p) < 0)
		return;
	if (call_queue(H, on_call_done, &pg, "va.ping", "()") < 0) {
		WAIT_UNTIL(H, cs.r.done, 60000);
		result_clean(&cs.r);
		va_buf_free(&cs.body);
		return;
	}
	host_flush(H);
	uint64_t t0 = va_now_ms();
	CHECK(WAIT_UNTIL(H, cs.r.done && pg.done, 60000), "checksum %s, ping %s",
	      cs.r.done ? "answered" : "waiting", pg.done ? "answered" : "waiting");
	uint64_t ms = va_now_ms() - t0;
	OK(&pg, "va.ping sent after va.file.checksum");
	char *sum = as_string(OK(&cs.r, "va.file.checksum of 64 MiB"), NULL);
	CHECK(sum && strcmp(sum, local) == 0, "checksum %s, computed here %s", sum ? sum : "-", local);
	CHECK(pg.done && cs.r.done && pg.order < cs.r.order,
	      "the ping was answered after the checksum (orders %u, %u): the checksum stalled the agent",
	      pg.order, cs.r.order);
	if (sum) {
		struct va_buf want = { 0 };
		registry_string_response(sum, &want);
		CHECK(want.len && want.len == cs.body.len && memcmp(want.data, cs.body.data, want.len) == 0,
		      "the checksum's response (%zu bytes) is not what the registry makes (%zu bytes)",
		      cs.body.len, want.len);
		va_buf_free(&want);
	}
	if (getenv("VA_DEBUG"))
		fprintf(stderr, "checksum of 64 MiB: %" PRIu64 " ms\n", ms);
	free(sum);
	result_clean(&cs.r);
	va_buf_free(&cs.body);
	result_clean(&pg);
	PING(H);
}

#define HUGE_SPARSE (8ull << 30)

/* A sparse file of 8 GiB: seconds to hash, no disk space. */
static const char *
make_huge(void)
{
	const char *p = path_in(&AG, "huge-sparse.bin");
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int ok = fd >= 0 && ftruncate(fd, (off_t)HUGE_SPARSE) == 0;
	if (fd >= 0)
		close(fd);
	CHECK(ok, "cannot make the sparse file %s: %s", p, strerror(errno));
	return ok ? p : NULL;
}

/*
 * VA_FILE_MAX_CHECKSUMS checksums run at once, the next is refused as
 * busy; the agent serves other calls meanwhile; a reset by the host
 * drops the running ones, and new ones are taken again.
 */
static void
test_checksum_busy_and_reset(void)
{
	NEED_AGENT();
	const char *huge = make_huge();
	const char *small = path_in(&AG, "small.txt");
	struct result r[VA_FILE_MAX_CHECKSUMS + 1];
	int n = VA_FILE_MAX_CHECKSUMS;

	if (!huge || write_file(small, "abc", 3, 0600) < 0)
		return;
	memset(r, 0, sizeof(r));
	for (int i = 0; i <= n; i++)
		if (call_queue(H, on_call_done, &r[i], "va.file.checksum", "(s)", huge) < 0)
			r[i].done = 1;
	host_flush(H);
	/* The one over the bound: refused at once, before any of the others ends. */
	CHECK(WAIT_UNTIL(H, r[n].done, 10000), "no answer to the checksum over the bound");
	FAULT(&r[n], XMLRPC_LIMIT_EXCEEDED_ERROR, "busy", "va.file.checksum over the bound");
	for (int i = 0; i < n; i++)
		CHECK(!r[i].done, "checksum %d of 8 GiB already answered", i);
	/* Served meanwhile, promptly, one call after the other. */
	for (int k = 0; k < 3; k++) {
		uint64_t t0 = va_now_ms();
		PING(H);
		CHECK(va_now_ms() - t0 < T(1000), "va.ping took %" PRIu64 " ms while 4 checksums ran",
		      va_now_ms() - t0);
	}
	CALL_OK(H, "va.file.stat", "(s)", huge);
	for (int i = 0; i < n; i++)
		CHECK(!r[i].done, "checksum %d of 8 GiB answered before the reset", i);
	unsigned est = H->established;
	unsigned dropped = log_count(&AG, "the session was reset, stopped after");
	va_session_reset(H->s, va_now_ms());
	host_flush(H);
	CHECK(WAIT_UNTIL(H, H->established > est && va_session_is_ready(H->s), 5000),
	      "no new session after the reset");
	for (int i = 0; i < n; i++)
		CHECK(r[i].done && r[i].err == VA_SESSION_ERR_RESET,
		      "checksum %d: done %d, err %d after the reset", i, r[i].done, r[i].err);
	for (int i = 0; i <= n; i++)
		result_clean(&r[i]);
	/* The old jobs are dropped: the bound is free again. */
	for (int i = 0; i < n; i++)
		call_queue(H, on_call_done, &r[i], "va.file.checksum", "(s)", small);
	host_flush(H);
	CHECK(WAIT_UNTIL(H, ({ int d_ = 1; for (int i = 0; i < n; i++) d_ &= r[i].done; d_; }), 10000),
	      "checksums after the reset not answered");
	for (int i = 0; i < n; i++) {
		char *sum = as_string(OK(&r[i], "va.file.checksum after the reset"), NULL);
		CHECK(sum && strcmp(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
		      "checksum of \"abc\": %s", sum ? sum : "-");
		free(sum);
		result_clean(&r[i]);
	}
	CHECK(log_count(&AG, "the session was reset, stopped after") >= dropped + (unsigned)n,
	      "the agent did not log dropping the %d checksums of the old session", n);
	unlink(huge);
	PING(H);
}

/* The faults of va.file.checksum, word for word as the registry's method gives them. */
static void
test_checksum_faults(void)
{
	NEED_AGENT();
	char text[PATHLEN * 2];
	const char *missing = path_in(&AG, "missing/nothing");

	snprintf(text, sizeof(text), "va.file.checksum: %s: No such file or directory", missing);
	CALL_FAULT_EXACT(H, XMLRPC_INTERNAL_ERROR, text, "va.file.checksum", "(s)", missing);
	snprintf(text, sizeof(text), "va.file.checksum: %s: Is a directory", AG.dir);
	CALL_FAULT_EXACT(H, XMLRPC_INTERNAL_ERROR, text, "va.file.checksum", "(s)", AG.dir);
	CALL_FAULT_EXACT(H, XMLRPC_TYPE_ERROR, "va.file.checksum: /dev/null is not a regular file",
			 "va.file.checksum", "(s)", "/dev/null");
	CALL_FAULT_EXACT(H, XMLRPC_TYPE_ERROR, "va.file.checksum: path must be absolute: x",
			 "va.file.checksum", "(s)", "x");
	CALL_FAULT_EXACT(H, XMLRPC_TYPE_ERROR,
			 "va.file.checksum: expected (string path[, int offset[, int length]]); "
			 "got 0 parameters", "va.file.checksum", "()");
	CALL_FAULT_EXACT(H, XMLRPC_TYPE_ERROR,
			 "va.file.checksum: expected (string path[, int offset[, int length]]); "
			 "got 4 parameters", "va.file.checksum", "(siii)", "/a", 0, 1, 2);
	CALL_FAULT_EXACT(H, XMLRPC_TYPE_ERROR,
			 "va.file.checksum: expected (string path[, int offset[, int length]]); "
			 "parameter 2 is a string", "va.file.checksum", "(ss)", "/a", "/b");
	CALL_FAULT_EXACT(H, XMLRPC_TYPE_ERROR,
			 "va.file.checksum: expected (string path[, int offset[, int length]]); "
			 "parameter 1 is an int", "va.file.checksum", "(i)", 1);
	CALL_FAULT_EXACT(H, XMLRPC_INDEX_ERROR,
			 "va.file.checksum: offset and length must not be negative",
			 "va.file.checksum", "(sii)", "/dev/null", -1, 2);
	/* Malformed XML: the registry's parse fault, as for any method. */
	BODY_FAULT(H, "<?xml version=\"1.0\"?><methodCall><methodName>va.file.checksum</methodName>"
		   "<params><param><value><string>/x</string></value></param></params>",
		   0, "truncated va.file.checksum call");
	PING(H);
}

/*
 * A checksum still running when SIGTERM comes: the next test stops the
 * agent, which must drop it (under valgrind: without a leak) and exit 0.
 */
static struct result at_stop;

static void
test_checksum_at_stop(void)
{
	NEED_AGENT();
	const char *huge = make_huge();
	memset(&at_stop, 0, sizeof(at_stop));
	if (!huge)
		return;
	if (call_queue(H, on_call_done, &at_stop, "va.file.checksum", "(s)", huge) < 0)
		return;
	host_flush(H);
	PING(H);
	CHECK(!at_stop.done, "the checksum of 8 GiB is already answered");
}

static void
test_checksum_dropped_at_stop(void)
{
	CHECK(AG.exited, "the agent has not exited");
	CHECK(log_count(&AG, "unanswered") >= 1, "the agent did not log dropping the checksum at exit");
	CHECK(!at_stop.done || at_stop.err != 0, "the checksum was answered at exit");
	result_clean(&at_stop);
	unlink(path_in(&AG, "huge-sparse.bin"));
}

/* ---- suite "clip-paste": va.clipboard.get with a desktop paste command ---- */

/*
 * The agent of this suite runs with clipboard-paste-command = "sh
 * DIR/paste.sh" (in its config file); each test puts its own script
 * there, written aside and renamed, so that a command already running
 * keeps the script it started with.
 */
static void
pre_paste(struct agent *a)
{
	char text[PATHLEN + 64];
	snprintf(text, sizeof(text), "clipboard-paste-command = sh %s/paste.sh\n", a->dir);
	write_file(a->conf, text, strlen(text), 0600);
	write_file(path_in(a, "paste.sh"), "exit 1\n", 7, 0600);
}

static void
test_start_paste(void)
{
	CHECK(start_default(NULL, 0, pre_paste) == 0, "agent start failed");
}

/* Makes body the script the paste command runs (from its next start on). */
static void
paste_script(const char *body)
{
	char tmp[PATHLEN + 80];
	const char *p = path_in(&AG, "paste.sh");

	snprintf(tmp, sizeof(tmp), "%s.new", p);
	CHECK(write_file(tmp, body, strlen(body), 0600) == 0 && rename(tmp, p) == 0,
	      "cannot write %s: %s", p, strerror(errno));
}

/* A va.clipboard.get's result: text (malloc'd), serial, origin (malloc'd); 0 or -1. */
static int
paste_result_at(struct result *r, char **text, size_t *len, int64_t *serial, char **origin,
		int line)
{
	int ok = 1;
	xmlrpc_value *v = ok_at(r, "va.clipboard.get", line);
	xmlrpc_value *t = member(v, "text");

	*text = as_string(t, len);
	if (t)
		xmlrpc_DECREF(t);
	*serial = member_int(v, "serial", &ok);
	*origin = member_string(v, "origin");
	check_at(!v || (*text && ok && *origin), line, "va.clipboard.get: malformed result");
	if (*text && ok && *origin)
		return 0;
	free(*text);
	free(*origin);
	*text = *origin = NULL;
	return -1;
}

#define PASTE_RESULT(r, t, l, s, o) paste_result_at((r), (t), (l), (s), (o), __LINE__)

/* va.clipboard.get answers text with origin (any serial when serial < 0); its serial. */
static int64_t
clip_expect_at(struct result *r, const char *want, const char *want_origin, int64_t want_serial,
	       int line)
{
	char *text, *origin;
	size_t len = 0;
	int64_t serial = -1;

	if (paste_result_at(r, &text, &len, &serial, &origin, line) < 0)
		return -1;
	check_at(len == strlen(want) && memcmp(text, want, len) == 0, line,
		 "va.clipboard.get: text \"%.40s\" (%zu bytes), expected \"%.40s\"", text, len, want);
	check_at(strcmp(origin, want_origin) == 0, line, "origin %s, expected %s", origin,
		 want_origin);
	check_at(want_serial < 0 || serial == want_serial, line,
		 "serial %" PRId64 ", expected %" PRId64, serial, want_serial);
	free(text);
	free(origin);
	return serial;
}

#define CLIP_EXPECT(r, want, origin, serial) clip_expect_at((r), (want), (origin), (serial), __LINE__)

/*
 * A process that still runs, or that the agent has not reaped (a zombie
 * whose parent is the agent).  Its pid is read from file.
 */
static int
proc_alive(const char *pidfile)
{
	struct va_buf b = { 0 };
	char path[64], stat[512];

	if (read_file(pidfile, &b, 64) < 0 || b.len == 0) {
		va_buf_free(&b);
		return 0;
	}
	va_buf_append(&b, "", 1);
	long pid = strtol((const char *)b.data, NULL, 10);
	va_buf_free(&b);
	if (pid <= 1)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	stat[n] = '\0';
	/* "pid (comm) S ppid ...": comm may hold anything, so from the last ')'. */
	char *rp = strrchr(stat, ')');
	char st = 0;
	long ppid = 0;
	if (!rp || sscanf(rp + 1, " %c %ld", &st, &ppid) != 2)
		return 1;
	return st != 'Z' || ppid == (long)AG.pid;
}

/*
 * A paste command that takes 1.5 s: a va.ping sent right after the
 * va.clipboard.get is answered at once (the agent runs the command off
 * its loop), the get then answers the desktop's text as a guest copy
 * (the host is told once); a second get while the command runs waits
 * for the same run.
 */
static void
test_paste_slow(void)
{
	NEED_AGENT();
	char s[PATHLEN + 128];
	struct result g1, g2, pg;
	struct va_buf runs = { 0 };

	snprintf(s, sizeof(s), "echo run >> '%s/runs'\nsleep 1.5\nprintf 'slow desktop text'\n",
		 AG.dir);
	paste_script(s);
	unsigned sets = count_records(H, "host.clipboard.set");
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	memset(&pg, 0, sizeof(pg));
	if (call_queue(H, on_call_done, &g1, "va.clipboard.get", "()") < 0)
		return;
	if (call_queue(H, on_call_done, &pg, "va.ping", "()") < 0) {
		WAIT_UNTIL(H, g1.done, 10000);
		result_clean(&g1);
		return;
	}
	uint64_t t0 = va_now_ms();
	host_flush(H);
	CHECK(WAIT_UNTIL(H, pg.done, 5000), "va.ping not answered while the paste command ran");
	uint64_t ping_ms = va_now_ms() - t0;
	OK(&pg, "va.ping while the paste command runs");
	CHECK(ping_ms < T(1000) && (!g1.done || pg.order < g1.order),
	      "va.ping took %" PRIu64 " ms, answered %s va.clipboard.get: the paste command "
	      "stalled the agent", ping_ms, g1.done && g1.order < pg.order ? "after" : "before");
	/* The second get joins the run in progress. */
	if (!g1.done && call_queue(H, on_call_done, &g2, "va.clipboard.get", "()") == 0)
		host_flush(H);
	else
		g2.done = 1;
	CHECK(WAIT_UNTIL(H, g1.done && g2.done, 10000), "va.clipboard.get not answered in 10 s");
	uint64_t get_ms = va_now_ms() - t0;
	CHECK(get_ms >= 1400, "va.clipboard.get answered after %" PRIu64 " ms: it did not wait "
	      "for its command", get_ms);
	int64_t s1 = CLIP_EXPECT(&g1, "slow desktop text", "guest", -1);
	if (g2.v || g2.fault)
		CLIP_EXPECT(&g2, "slow desktop text", "guest", s1);
	CHECK(read_file(path_in(&AG, "runs"), &runs, 4096) == 0 && runs.len == 4,
	      "the paste command ran %zu times, expected once", runs.len / 4);
	CHECK(count_records(H, "host.clipboard.set") == sets + 1,
	      "host.clipboard.set sent %u times, expected once",
	      count_records(H, "host.clipboard.set") - sets);
	va_buf_free(&runs);
	result_clean(&g1);
	result_clean(&g2);
	result_clean(&pg);
	/* Unchanged text on the desktop: the buffer stays (same serial). */
	paste_script("printf 'slow desktop text'\n");
	call(H, &g1, "va.clipboard.get", "()");
	CLIP_EXPECT(&g1, "slow desktop text", "guest", s1);
	result_clean(&g1);
	PING(H);
}

/*
 * A command that never ends is killed with its whole process group after
 * 2 s, and the gets waiting for it answer the buffer as it was; one get
 * over VA_CLIPBOARD_PASTE_WAITERS is refused as busy at once; other
 * calls are served meanwhile.
 */
static void
test_paste_never_ends(void)
{
	NEED_AGENT();
	char s[PATHLEN * 2 + 128];
	struct result g[VA_CLIPBOARD_PASTE_WAITERS + 1];
	const int n = VA_CLIPBOARD_PASTE_WAITERS;

	call(H, &g[0], "va.clipboard.set", "(s)", "the host's text");
	int64_t s0 = as_int(OK(&g[0], "va.clipboard.set"), NULL);
	result_clean(&g[0]);
	snprintf(s, sizeof(s), "sleep 60 &\necho $! > '%s/bg.pid'\necho $$ > '%s/sh.pid'\n"
		 "printf 'partial'\nexec sleep 60\n", AG.dir, AG.dir);
	paste_script(s);
	unlink(path_in(&AG, "bg.pid"));
	unlink(path_in(&AG, "sh.pid"));
	unsigned killed = log_count(&AG, "no end after 2000 ms, killed");
	memset(g, 0, sizeof(g));
	for (int i = 0; i <= n; i++)
		if (call_queue(H, on_call_done, &g[i], "va.clipboard.get", "()") < 0)
			g[i].done = 1;
	uint64_t t0 = va_now_ms();
	host_flush(H);
	CHECK(WAIT_UNTIL(H, g[n].done, 5000), "no answer to the get over the bound");
	FAULT(&g[n], XMLRPC_LIMIT_EXCEEDED_ERROR, "busy", "va.clipboard.get over the bound");
	CHECK(WAIT_UNTIL(H, proc_alive(path_in(&AG, "bg.pid")), 5000), "the paste command did not start");
	for (int k = 0; k < 3; k++) {
		uint64_t t1 = va_now_ms();
		PING(H);
		CHECK(va_now_ms() - t1 < T(1000), "va.ping took %" PRIu64 " ms while the paste "
		      "command ran", va_now_ms() - t1);
	}
	CHECK(!g[0].done, "va.clipboard.get answered before the command's deadline");
	CHECK(WAIT_UNTIL(H, ({ int d_ = 1; for (int i = 0; i < n; i++) d_ &= g[i].done; d_; }), 10000),
	      "va.clipboard.get not answered in 10 s");
	uint64_t ms = va_now_ms() - t0;
	CHECK(ms >= 1900 && ms < T(5000), "va.clipboard.get answered after %" PRIu64 " ms, expected "
	      "about 2000", ms);
	for (int i = 0; i < n; i++)
		CLIP_EXPECT(&g[i], "the host's text", "host", s0);
	for (int i = 0; i <= n; i++)
		result_clean(&g[i]);
	CHECK(log_count(&AG, "no end after 2000 ms, killed") == killed + 1,
	      "the agent did not log killing the command once");
	CHECK(WAIT_UNTIL(H, !proc_alive(path_in(&AG, "sh.pid")) &&
			 !proc_alive(path_in(&AG, "bg.pid")), 3000),
	      "the paste command or its background child still runs (or is unreaped)");
	PING(H);
}

/* Output over VA_CLIPBOARD_MAX, a failure, text XML cannot carry: the buffer stays. */
static void
test_paste_refused(void)
{
	NEED_AGENT();
	char s[128];
	struct result g;

	call(H, &g, "va.clipboard.set", "(s)", "kept");
	int64_t s0 = as_int(OK(&g, "va.clipboard.set"), NULL);
	result_clean(&g);

	unsigned more = log_count(&AG, "more than 1048576 bytes");
	snprintf(s, sizeof(s), "head -c %u /dev/zero | tr '\\0' a\n", VA_CLIPBOARD_MAX + 1);
	paste_script(s);
	uint64_t t0 = va_now_ms();
	call(H, &g, "va.clipboard.get", "()");
	CLIP_EXPECT(&g, "kept", "host", s0);
	result_clean(&g);
	CHECK(va_now_ms() - t0 < T(1900), "the answer waited %" PRIu64 " ms for a command that "
	      "printed too much", va_now_ms() - t0);
	CHECK(log_count(&AG, "more than 1048576 bytes") == more + 1,
	      "the agent did not log refusing the output");

	/* (The log line names the exit status, and the first line of stderr.) */
	unsigned failed = log_count(&AG, "clipboard paste command failed (status 768): no display\n");
	paste_script("printf 'not this'\nprintf 'no display\\nsecond line' >&2\nexit 3\n");
	call(H, &g, "va.clipboard.get", "()");
	CLIP_EXPECT(&g, "kept", "host", s0);
	result_clean(&g);
	CHECK(log_count(&AG, "clipboard paste command failed (status 768): no display\n") == failed + 1,
	      "the agent did not log the command's failure");

	unsigned refused = log_count(&AG, "text refused");
	paste_script("printf 'bell \\007'\n");
	call(H, &g, "va.clipboard.get", "()");
	CLIP_EXPECT(&g, "kept", "host", s0);
	result_clean(&g);
	CHECK(log_count(&AG, "text refused") == refused + 1,
	      "the agent did not log refusing a control character");

	/* Exactly the maximum: taken. */
	snprintf(s, sizeof(s), "head -c %u /dev/zero | tr '\\0' b\n", VA_CLIPBOARD_MAX);
	paste_script(s);
	call(H, &g, "va.clipboard.get", "()");
	char *text, *origin;
	size_t len = 0;
	int64_t serial = -1;
	if (PASTE_RESULT(&g, &text, &len, &serial, &origin) == 0) {
		CHECK(len == VA_CLIPBOARD_MAX && text[0] == 'b' && text[len - 1] == 'b' &&
		      serial == s0 + 1 && strcmp(origin, "guest") == 0,
		      "%zu bytes, serial %" PRId64 ", origin %s", len, serial, origin);
		free(text);
		free(origin);
	}
	result_clean(&g);
	PING(H);
}

/*
 * A reset by the host while the command runs: the get fails on the host's
 * side (the session does that), the agent drops the run, and the next get
 * (in the new session) runs the command afresh.
 */
static void
test_paste_reset(void)
{
	NEED_AGENT();
	char s[PATHLEN + 128];
	struct result g;

	snprintf(s, sizeof(s), "echo $$ > '%s/old.pid'\nsleep 1.5\nprintf 'before the reset'\n",
		 AG.dir);
	paste_script(s);
	unlink(path_in(&AG, "old.pid"));
	unsigned dropped = log_count(&AG, "clipboard paste command: the session was reset");
	memset(&g, 0, sizeof(g));
	if (call_queue(H, on_call_done, &g, "va.clipboard.get", "()") < 0)
		return;
	host_flush(H);
	CHECK(WAIT_UNTIL(H, proc_alive(path_in(&AG, "old.pid")), 5000), "the paste command did not start");
	unsigned est = H->established;
	va_session_reset(H->s, va_now_ms());
	host_flush(H);
	CHECK(WAIT_UNTIL(H, H->established > est && va_session_is_ready(H->s), 5000),
	      "no new session after the reset");
	CHECK(g.done && g.err == VA_SESSION_ERR_RESET, "the get: done %d, err %d after the reset",
	      g.done, g.err);
	result_clean(&g);
	paste_script("printf 'after the reset'\n");
	uint64_t t0 = va_now_ms();
	call(H, &g, "va.clipboard.get", "()");
	CLIP_EXPECT(&g, "after the reset", "guest", -1);
	result_clean(&g);
	CHECK(va_now_ms() - t0 < T(1000), "the get after the reset took %" PRIu64 " ms: it waited "
	      "for the run of the old session", va_now_ms() - t0);
	CHECK(log_count(&AG, "clipboard paste command: the session was reset") == dropped + 1,
	      "the agent did not log dropping the run of the old session");
	CHECK(WAIT_UNTIL(H, !proc_alive(path_in(&AG, "old.pid")), 3000),
	      "the command of the old session still runs (or is unreaped)");
	/* Its text never reached the buffer, nor the host. */
	WAIT_UNTIL(H, 0, 1600);
	for (unsigned i = 0; i < H->nrec; i++) {
		if (strcmp(H->rec[i].method, "host.clipboard.set") != 0)
			continue;
		xmlrpc_value *t = array_item(H->rec[i].params, 0);
		char *txt = as_string(t, NULL);
		CHECK(!txt || strcmp(txt, "before the reset") != 0,
		      "the old session's text was sent to the host");
		free(txt);
		if (t)
			xmlrpc_DECREF(t);
	}
	PING(H);
}

/*
 * A paste command still running when SIGTERM comes: the next test stops
 * the agent, which must kill it, drop the call (under valgrind: without
 * a leak) and exit 0.
 */
static struct result paste_at_stop;

static void
test_paste_at_stop(void)
{
	NEED_AGENT();
	char s[PATHLEN + 64];

	snprintf(s, sizeof(s), "echo $$ > '%s/stop.pid'\nexec sleep 60\n", AG.dir);
	paste_script(s);
	unlink(path_in(&AG, "stop.pid"));
	memset(&paste_at_stop, 0, sizeof(paste_at_stop));
	if (call_queue(H, on_call_done, &paste_at_stop, "va.clipboard.get", "()") < 0)
		return;
	host_flush(H);
	CHECK(WAIT_UNTIL(H, proc_alive(path_in(&AG, "stop.pid")), 5000),
	      "the paste command did not start");
	PING(H);
	CHECK(!paste_at_stop.done, "the get is already answered");
}

static void
test_paste_dropped_at_stop(void)
{
	CHECK(AG.exited, "the agent has not exited");
	CHECK(log_count(&AG, "clipboard paste command: stopped") >= 1,
	      "the agent did not log stopping the paste command at exit");
	CHECK(!paste_at_stop.done || paste_at_stop.err != 0 || paste_at_stop.fault,
	      "the get was answered at exit");
	CHECK(!proc_alive(path_in(&AG, "stop.pid")), "the paste command outlived the agent");
	result_clean(&paste_at_stop);
}

/* ---- suite "file-root" ---- */

static void
make_root_tree(struct agent *a)
{
	mkdir(path_in(a, "root"), 0700);
	mkdir(path_in(a, "root/sub"), 0700);
	mkdir(path_in(a, "rootx"), 0700);
	mkdir(path_in(a, "outside"), 0700);
	write_file(path_in(a, "root/in.txt"), "inside", 6, 0600);
	write_file(path_in(a, "rootx/file"), "sibling", 7, 0600);
	write_file(path_in(a, "outside/secret"), "secret", 6, 0600);
	symlink(path_in(a, "outside/secret"), path_in(a, "root/link-out"));
	symlink(path_in(a, "outside"), path_in(a, "root/dir-out"));
	symlink("../outside/secret", path_in(a, "root/rel-out"));
	symlink(path_in(a, "outside/nope"), path_in(a, "root/dangle-out"));
	symlink("in.txt", path_in(a, "root/link-in"));
	symlink("../in.txt", path_in(a, "root/sub/up-in"));
}

/* --file-root names DIR/root, known only once the directory exists. */
static char root_arg[PATHLEN + 16];

static void
pre_file_root(struct agent *a)
{
	make_root_tree(a);
	snprintf(root_arg, sizeof(root_arg), "%s/root", a->dir);
}

static void
test_start_file_root_real(void)
{
	static const char *const extra[] = { "--file-root", root_arg, NULL };
	CHECK(start_default(extra, 0, pre_file_root) == 0, "agent start failed");
}

static void
test_file_root(void)
{
	NEED_AGENT();
	struct result r;
	struct stat sb;

	/* Inside: fine, through symlinks that stay inside too. */
	int hd = FOPEN(H, path_in(&AG, "root/in.txt"), "r", -1);
	if (hd >= 0)
		FCLOSE(H, hd);
	hd = FOPEN(H, path_in(&AG, "root/link-in"), "r", -1);
	if (hd >= 0) {
		size_t len = 0;
		int eof = 0;
		unsigned char *d = FREAD(H, hd, 64, &len, &eof);
		CHECK(d && len == 6 && memcmp(d, "inside", 6) == 0, "read through link-in");
		free(d);
		FCLOSE(H, hd);
	}
	hd = FOPEN(H, path_in(&AG, "root/sub/up-in"), "r", -1);
	if (hd >= 0)
		FCLOSE(H, hd);
	hd = FOPEN(H, path_in(&AG, "root/sub/../in.txt"), "r", -1);
	if (hd >= 0)
		FCLOSE(H, hd);
	hd = FOPEN(H, path_in(&AG, "root/new.txt"), "w", -1);
	if (hd >= 0) {
		CHECK(FWRITE(H, hd, "new", 3) == 3, "write inside");
		FCLOSE(H, hd);
	}
	CALL_OK(H, "va.file.stat", "(s)", path_in(&AG, "root/in.txt"));
	CALL_OK(H, "va.file.stat", "(s)", path_in(&AG, "root/link-in"));
	CALL_OK(H, "va.file.checksum", "(s)", path_in(&AG, "root/link-in"));

	/* Outside, by every road. */
	static const char *const out[] = {
		"outside/secret", "root/../outside/secret", "root/link-out", "root/rel-out",
		"root/dir-out/secret", "rootx/file", "root/sub/../../outside/secret",
		"outside/nope", "root/../outside/nope",
	};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		const char *p = path_in(&AG, out[i]);
		call(H, &r, "va.file.open", "(ss)", p, "r");
		FAULT(&r, XMLRPC_REQUEST_REFUSED_ERROR, "outside", out[i]);
		result_clean(&r);
		call(H, &r, "va.file.stat", "(s)", p);
		FAULT(&r, XMLRPC_REQUEST_REFUSED_ERROR, "outside", out[i]);
		result_clean(&r);
		call(H, &r, "va.file.checksum", "(s)", p);
		FAULT(&r, XMLRPC_REQUEST_REFUSED_ERROR, "outside", out[i]);
		char text[PATHLEN * 2];
		snprintf(text, sizeof(text), "path %s is outside the allowed file roots", p);
		fault_exact_at(&r, XMLRPC_REQUEST_REFUSED_ERROR, text, __LINE__);
		result_clean(&r);
	}
	CALL_FAULT(H, XMLRPC_REQUEST_REFUSED_ERROR, "outside", "va.file.open", "(ss)", "/etc/passwd", "r");
	CALL_FAULT(H, XMLRPC_REQUEST_REFUSED_ERROR, "outside", "va.file.stat", "(s)", "/");
	CALL_FAULT(H, XMLRPC_REQUEST_REFUSED_ERROR, "outside", "va.file.open", "(ss)", AG.dir, "r");

	/* Creating outside: refused, and nothing appears there. */
	static const char *const create[] = {
		"root/../outside/created", "root/dir-out/created", "outside/created",
		"root/dangle-out",
	};
	for (size_t i = 0; i < sizeof(create) / sizeof(create[0]); i++) {
		call(H, &r, "va.file.open", "(ss)", path_in(&AG, create[i]), "w");
		FAULT(&r, 0, NULL, create[i]);
		result_clean(&r);
	}
	CHECK(stat(path_in(&AG, "outside/created"), &sb) < 0, "a file was created outside the root");
	CHECK(stat(path_in(&AG, "outside/nope"), &sb) < 0, "a file was created through a dangling link");
	/* The secret was not truncated by a refused "w". */
	call(H, &r, "va.file.open", "(ss)", path_in(&AG, "root/link-out"), "w");
	FAULT(&r, XMLRPC_REQUEST_REFUSED_ERROR, NULL, "w through link-out");
	result_clean(&r);
	CHECK(stat(path_in(&AG, "outside/secret"), &sb) == 0 && sb.st_size == 6,
	      "the secret outside was changed");
	PING(H);
}

/* ---- suite "max-frame" ---- */

static void
test_start_max_frame(void)
{
	static const char *const extra[] = { "--max-frame", "65536", NULL };
	host_close(H);
	H = NULL;
	if (agent_start(&AG, extra, 0, NULL) < 0)
		return;
	/* A session that believes the agent takes 99999 bytes. */
	H = host_connect(&AG, 0, 1);
	CHECK(H && va_session_peer_max_frame(H->s) == 99999,
	      "the rewritten limit is %zu", H ? va_session_peer_max_frame(H->s) : 0);
}

/* va.echo with a string making the body about n bytes. */
static void
echo_of_size(struct host *h, struct result *r, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, 'z', n);
	s[n > 200 ? n - 200 : 0] = 0;
	xmlrpc_env e;
	xmlrpc_env_init(&e);
	xmlrpc_value *p = xmlrpc_build_value(&e, "(s)", s);
	call_start(h, r, "va.echo", p);
	xmlrpc_DECREF(p);
	xmlrpc_env_clean(&e);
	free(s);
	call_wait(h, r, 10000);
}

static void
test_max_frame(void)
{
	NEED_AGENT();
	struct result r;
	char d[1200];

	call(H, &r, "va.capabilities", "()");
	CHECK(member_int(OK(&r, "va.capabilities"), "max_frame", NULL) == 65536, "max_frame");
	result_clean(&r);
	int i = find_record(H, "host.hello", 0);
	xmlrpc_value *info = i >= 0 ? array_item(H->rec[i].params, 0) : NULL;
	CHECK(member_int(info, "max_frame", NULL) == 65536, "host.hello max_frame");
	if (info)
		xmlrpc_DECREF(info);

	/* Under the agent's limit: served. */
	echo_of_size(H, &r, 60000);
	OK(&r, "va.echo of 60000 bytes");
	result_clean(&r);
	/* Over it: the agent refuses with 413, the call fails with TOO_LARGE. */
	for (int k = 0; k < 3; k++) {
		echo_of_size(H, &r, 65536 + 1000 + (size_t)k * 10000);
		CHECK(r.done && r.err == VA_SESSION_ERR_TOO_LARGE,
		      "oversized call %d: %s", k, describe(&r, d, sizeof(d)));
		result_clean(&r);
		PING(H);
	}
	/* Several in flight around the big one: each gets its own answer. */
	struct result a, big, b;
	xmlrpc_env e;
	xmlrpc_env_init(&e);
	xmlrpc_value *p1 = xmlrpc_build_value(&e, "(s)", "before");
	xmlrpc_value *p2 = xmlrpc_build_value(&e, "(s)", "after");
	call_start(H, &a, "va.echo", p1);
	char *s = malloc(90001);
	memset(s, 'y', 90000);
	s[90000] = 0;
	xmlrpc_value *pb = xmlrpc_build_value(&e, "(s)", s);
	call_start(H, &big, "va.echo", pb);
	call_start(H, &b, "va.echo", p2);
	WAIT_UNTIL(H, a.done && big.done && b.done, 10000);
	CHECK(value_equal(OK(&a, "echo before"), p1), "echo before the big call");
	CHECK(big.done && big.err == VA_SESSION_ERR_TOO_LARGE, "big call in the middle: %s",
	      describe(&big, d, sizeof(d)));
	CHECK(value_equal(OK(&b, "echo after"), p2), "echo after the big call");
	result_clean(&a);
	result_clean(&big);
	result_clean(&b);
	xmlrpc_DECREF(p1);
	xmlrpc_DECREF(p2);
	xmlrpc_DECREF(pb);
	xmlrpc_env_clean(&e);
	free(s);

	/* Bigger than what we believe: refused here, never sent. */
	char *huge = calloc(1, 100000);
	memset(huge, 'a', 99999 + 1);
	CHECK(call_start_body(H, &r, huge, 100000) == -E2BIG, "a body over the peer's limit was accepted");
	result_clean(&r);
	free(huge);
	PING(H);
}

static void
test_max_frame_reply(void)
{
	NEED_AGENT();
	struct result r;

	/* A host that takes 65536: a reply over it is a small fault, not a dropped call. */
	struct host *small = NULL;
	host_close(H);
	H = NULL;
	small = host_connect(&AG, 65536, 0);
	if (!small)
		return;
	H = small;
	const char *p = path_in(&AG, "sixty");
	uint8_t *buf = calloc(1, 60000);
	write_file(p, buf, 60000, 0600);
	free(buf);
	int hd = FOPEN(H, p, "r", -1);
	if (hd < 0)
		return;
	call(H, &r, "va.file.read", "(ii)", hd, 60000);
	FAULT(&r, XMLRPC_LIMIT_EXCEEDED_ERROR, "larger than the frame limit", "read answered over our limit");
	result_clean(&r);
	FSEEK(H, hd, 0, 0);
	size_t len = 0;
	int eof = 0;
	unsigned char *d = FREAD(H, hd, 40000, &len, &eof);
	CHECK(d && len == 40000, "a read under the limit");
	free(d);
	FCLOSE(H, hd);
}

/* ---- suite "config": the config file, the command line, SIGHUP ---- */

static void
pre_config(struct agent *a)
{
	char text[512];
	snprintf(text, sizeof(text),
		 "# test config\n"
		 "block-rpcs = va.echo, va.info\n"
		 "log-level = debug\n");
	write_file(a->conf, text, strlen(text), 0600);
}

static void
test_start_config(void)
{
	static const char *const extra[] = { "--block-rpcs", "va.info", NULL };
	CHECK(start_default(extra, 0, pre_config) == 0, "agent start failed");
}

static void
test_config(void)
{
	NEED_AGENT();
	/* The command line wins: only va.info is blocked. */
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.info", "()");
	CALL_OK(H, "va.echo", "(i)", 1);
	/* SIGHUP reloads the file; the command line still wins. */
	char text[] = "block-rpcs = va.ping\nallow-rpcs = va.ping,va.echo,va.info,va.capabilities\n";
	write_file(AG.conf, text, strlen(text), 0600);
	kill(AG.pid, SIGHUP);
	int ok = WAIT_UNTIL(H, ({ struct result r_; call(H, &r_, "va.file.stat", "(s)", "/");
				  int f_ = r_.fault != NULL; result_clean(&r_); f_; }), 5000);
	CHECK(ok, "SIGHUP did not apply the new allow list");
	CALL_OK(H, "va.ping", "()");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.info", "()");
	CALL_OK(H, "va.echo", "()");
	/* A broken file on SIGHUP keeps the old settings. */
	write_file(AG.conf, "this is not a setting\n", 22, 0600);
	kill(AG.pid, SIGHUP);
	WAIT_UNTIL(H, 0, 300);
	CALL_OK(H, "va.ping", "()");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.file.stat", "(s)", "/");
	CHECK(!agent_exited(&AG), "the agent exited on a bad config at SIGHUP");
	/* The proxy's wildcard syntax, separated by a tab: the file methods allowed. */
	char wild[] = "allow-rpcs = va.ping\tva.file.*, va.capabilities\n";
	write_file(AG.conf, wild, strlen(wild), 0600);
	kill(AG.pid, SIGHUP);
	ok = WAIT_UNTIL(H, ({ struct result r_; call(H, &r_, "va.file.stat", "(s)", "/");
			      int f_ = r_.fault == NULL; result_clean(&r_); f_; }), 5000);
	CHECK(ok, "va.file.* in the allow list did not allow va.file.stat");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.echo", "()");
	/* A list that names no method on SIGHUP: the lists in force stay. */
	char typo[] = "allow-rpcs = va.ping, va.fle.*\n";
	write_file(AG.conf, typo, strlen(typo), 0600);
	kill(AG.pid, SIGHUP);
	WAIT_UNTIL(H, 0, 300);
	CALL_OK(H, "va.file.stat", "(s)", "/");
	CALL_FAULT(H, XMLRPC_NO_SUCH_METHOD_ERROR, "disabled", "va.echo", "()");
	CHECK(!agent_exited(&AG), "the agent exited on a bad RPC list at SIGHUP");
}

/* Runs the agent with args alone; its exit status, or -1. */
static int
run_agent_args(const char *const *args, struct va_buf *out)
{
	char dir[PATHLEN];
	int status = -1;

	if (va_test_mkdtemp(dir, sizeof(dir), "va-e2e-cli-") < 0)
		return -1;
	char outp[PATHLEN + 16];
	snprintf(outp, sizeof(outp), "%s/out", dir);
	pid_t pid = spawn("VA_AGENT_WRAPPER", agent_path(), args, -1, outp, NULL);
	uint64_t end = va_now_ms() + T(10000);
	while (pid > 0 && waitpid(pid, &status, WNOHANG) == 0) {
		if (va_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ms(10);
	}
	if (out)
		read_file(outp, out, 1 << 20);
	unlink(outp);
	rmdir(dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_cli(void)
{
	struct va_buf out = { 0 };
	int rc;

	static const char *const version[] = { "--version", NULL };
	rc = run_agent_args(version, &out);
	CHECK(rc == 0 && out.len && strstr((char *)out.data, PACKAGE_VERSION),
	      "--version exited %d: %.*s", rc, (int)out.len, (char *)out.data);
	va_buf_free(&out);
	static const char *const help[] = { "--help", NULL };
	rc = run_agent_args(help, &out);
	CHECK(rc == 0 && out.len && strstr((char *)out.data, "--channel") &&
	      strstr((char *)out.data, "--file-root"), "--help exited %d", rc);
	va_buf_free(&out);
	static const char *const bad[][4] = {
		{ "--frobnicate", NULL },
		{ "--max-frame", "100", NULL },
		{ "--max-frame", "12abc", NULL },
		{ "--log-level", "loud", NULL },
		{ "--config", "/nonexistent/va-agent.conf", NULL },
		{ "--file-root", "/nonexistent/root", NULL },
		{ "extra-argument", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = run_agent_args(bad[i], &out);
		CHECK(rc == 2, "%s %s exited %d, expected 2", bad[i][0], bad[i][1] ? bad[i][1] : "", rc);
		va_buf_free(&out);
	}
	/* RPC lists that would fail open are a start error, with the reason. */
	static const char *const lists[][4] = {
		{ "--block-rpcs", "va.file*", "only as the last part" },
		{ "--block-rpcs", "va.nosuch", "no such method" },
		{ "--allow-rpcs", "va.ping,va.nothing.*", "no method has that prefix" },
		{ "--enable-rpcs", "*", "only as the last part" },
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		const char *args[] = { lists[i][0], lists[i][1], NULL };
		rc = run_agent_args(args, &out);
		va_buf_append(&out, "", 1);
		CHECK(rc == 1 && strstr((char *)out.data, lists[i][2]) &&
		      strstr((char *)out.data, lists[i][0]),
		      "%s %s exited %d: %s", lists[i][0], lists[i][1], rc, (char *)out.data);
		va_buf_free(&out);
	}
}

/* ---- main ------------------------------------------------------------ */

/* A suite of the tests in array arr, each suite ending with suite_cleanup. */
#define SUITE(name, arr) { (name), VA_TESTS(arr), NULL, suite_cleanup, NULL, NULL }

int
main(void)
{
	const char *sl = getenv("VA_TEST_SLOW");

	if (sl && *sl) {
		unsigned long v = strtoul(sl, NULL, 10);
		slow = v > 1 ? (unsigned)v : 10;
	}
	signal(SIGPIPE, SIG_IGN);
	va_log_init("test-agent-e2e", 0, getenv("VA_DEBUG") ? VA_LOG_DEBUG : VA_LOG_ERROR);
	va_rpc_init(VA_FRAME_DEFAULT_MAX_BODY);
	host_registry_init();
	umask(022);

	static const struct va_test agent_tests[] = {
		{ "start the agent", test_start_default },
		{ "host.hello after connect", test_hello },
		{ "va.ping, calls in flight", test_ping },
		{ "va.echo of every type, nested", test_echo },
		{ "va.capabilities", test_capabilities },
		{ "va.info", test_info },
		{ "system.* introspection with real help", test_introspection },
		{ "bad input gets faults", test_bad_input },
		{ "va.file.* basics", test_file_basics },
		{ "va.file.* faults, caps, unknown handles", test_file_faults },
		{ "64 file handles at most", test_file_handle_limit },
		{ "a FIFO never stalls the agent", test_file_fifo },
		{ "/proc/kmsg never stalls the agent", test_file_kmsg },
		{ "a procfs file reads to its end", test_file_procfs_read },
		{ "va.file.checksum refuses pseudo filesystems", test_checksum_pseudo },
		{ "va.file.checksum in slices, other calls served", test_checksum_sliced },
		{ "va.file.checksum: bound, busy, dropped by a reset", test_checksum_busy_and_reset },
		{ "va.file.checksum faults as before", test_checksum_faults },
		{ "va.dmesg", test_dmesg },
		{ "va.clipboard.get/set", test_clipboard_methods },
		{ "clipboard both ways through va-clip", test_clipboard_va_clip },
		{ "64 MiB file round trip with checksum", test_file_roundtrip_64m },
		{ "host hangs up mid-response, reconnects", test_reconnect_mid_response },
		{ "host resets mid-response", test_reset_mid_response },
		{ "garbage on the channel, then a session", test_garbage_then_reconnect },
		{ "raw frames: resync after a torn frame, 413", test_raw_resync_and_413 },
		{ "a host that does not read: output queue bounded", test_output_backlog_bounded },
		{ "a reset by the host brings host.hello", test_host_reset_sends_hello },
		{ "va.shutdown runs the command, sends the notice", test_shutdown },
		{ "a checksum running at SIGTERM", test_checksum_at_stop },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
		{ "the running checksum was dropped at exit", test_checksum_dropped_at_stop },
	};
	static const struct va_test block_tests[] = {
		{ "start with --block-rpcs", test_start_block },
		{ "blocked methods: fault, not listed", test_block },
		{ "system.multicall cannot call a blocked method", test_block_multicall },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
	};
	static const struct va_test allow_tests[] = {
		{ "start with --allow-rpcs and --block-rpcs", test_start_allow },
		{ "only allowed methods, block wins", test_allow },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
	};
	static const struct va_test root_tests[] = {
		{ "start with --file-root", test_start_file_root_real },
		{ "inside allowed; symlinks, .. and siblings refused", test_file_root },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
	};
	static const struct va_test frame_tests[] = {
		{ "start with --max-frame 65536", test_start_max_frame },
		{ "oversized call: 413 -> TOO_LARGE, keeps serving", test_max_frame },
		{ "a reply over the host's limit becomes a fault", test_max_frame_reply },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
	};
	static const struct va_test config_tests[] = {
		{ "start with a config file", test_start_config },
		{ "command line wins; SIGHUP reloads", test_config },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
	};
	static const struct va_test paste_tests[] = {
		{ "start with a clipboard paste command", test_start_paste },
		{ "a slow paste command never stalls the agent", test_paste_slow },
		{ "a paste command that never ends is killed at 2 s", test_paste_never_ends },
		{ "too much, a failure, bad text: the buffer stays", test_paste_refused },
		{ "a reset drops the paste run of the old session", test_paste_reset },
		{ "a paste command running at SIGTERM", test_paste_at_stop },
		{ "SIGTERM: notice, exit 0", test_sigterm_clean_exit },
		{ "the paste command was stopped at exit", test_paste_dropped_at_stop },
	};
	static const struct va_test cli_tests[] = {
		{ "--help, --version, bad arguments", test_cli },
	};

	static const struct va_suite suites[] = {
		SUITE("agent", agent_tests), SUITE("acl-block", block_tests),
		SUITE("acl-allow", allow_tests), SUITE("file-root", root_tests),
		SUITE("max-frame", frame_tests), SUITE("config", config_tests),
		SUITE("clip-paste", paste_tests), SUITE("cli", cli_tests),
	};

	int status = va_test_run_suites(VA_TESTS(suites), getenv("VA_TEST_SUITE"));
	xmlrpc_registry_free(host_reg);
	xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, XMLRPC_XML_SIZE_LIMIT_DEFAULT);
	return status;
}
