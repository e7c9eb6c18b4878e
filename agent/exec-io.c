/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * exec-io.c - va.exec.read and va.exec.write, of the group "exec"
 * (exec.h): what a command printed, and what it reads.
 *
 * Both may wait, so va-agent answers them from the group's interceptor,
 * later when they wait (va_rpc_reply with the call's tag):
 *   - a read with wait_ms waits while nothing is new (no output, no end
 *     of a stream, no exit not yet reported), and is answered as soon as
 *     something is, or with nothing when wait_ms passed;
 *   - a write whose data does not fit in the agent's stdin buffer
 *     (VA_EXEC_BUFFER) queues what fits and waits for the rest to fit, at
 *     most VA_EXEC_WRITE_WAIT_MS; then it answers how much it took.
 * One read and one write may wait per command: a second read answers
 * the first at once (with what there is), a second write is refused
 * ("busy").  A waiting call of a session that was reset since is dropped
 * unanswered.  The registry's methods (introspection, and the bodies
 * the interceptor leaves to the registry) never wait.
 *
 * Output is consumed only when its answer went out (va_rpc_reply said
 * 0): an answer refused for its size keeps the bytes for the next read.
 * An answer lost after that (the proxy's client gone) loses its bytes:
 * a long poll has no acknowledgement.  The read answer is written here
 * (the base64 straight from the buffers, common/b64.h), not through
 * xmlrpc-c's serialiser: every byte a command prints passes here.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "b64.h"
#include "buf.h"
#include "exec.h"
#include "log.h"
#include "methods.h"
#include "rpc.h"
#include "serve.h"
#include "text.h"
#include "xmlgate.h"

/* ---- what a read delivers ------------------------------------------------------- */

struct snap {
	size_t n[2];     /* bytes of each stream */
	int eof[2];      /* the stream ended and these are its last bytes */
	int exited;
	int status;
	int timed_out;
	int last;        /* everything is delivered: the entry goes after the answer */
};

static size_t
min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int
news(const struct exec_entry *e)
{
	for (int s = 0; s < 2; s++)
		if (va_proc_out_len(e->p, s) > 0 || (va_proc_out_eof(e->p, s) && !e->told_eof[s]))
			return 1;
	return va_proc_exited(e->p, NULL) && !e->told_exit;
}

/* max bytes in all: stdout gets at least half when it has that much, stderr the rest. */
static void
snapshot(const struct exec_entry *e, size_t max, struct snap *sn)
{
	size_t len0 = va_proc_out_len(e->p, VA_PROC_STDOUT);
	size_t len1 = va_proc_out_len(e->p, VA_PROC_STDERR);

	memset(sn, 0, sizeof(*sn));
	sn->n[1] = min_sz(len1, max - min_sz(len0, max / 2));
	sn->n[0] = min_sz(len0, max - sn->n[1]);
	sn->eof[0] = va_proc_out_eof(e->p, VA_PROC_STDOUT) && sn->n[0] == len0;
	sn->eof[1] = va_proc_out_eof(e->p, VA_PROC_STDERR) && sn->n[1] == len1;
	sn->exited = va_proc_exited(e->p, &sn->status);
	sn->timed_out = e->timed_out;
	sn->last = sn->exited && sn->eof[0] && sn->eof[1];
}

/* The snapshot was delivered: consume it; frees e after the last one. */
static void
commit(struct exec_entry *e, const struct snap *sn)
{
	for (int s = 0; s < 2; s++) {
		va_proc_out_consume(e->p, s, sn->n[s]);
		e->told_eof[s] |= sn->eof[s];
	}
	e->told_exit |= sn->exited;
	if (sn->last) {
		va_log_debug("va.exec %d: read to its end, forgotten", e->id);
		va_exec_entry_free(e);
	}
}

static const char response_head[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n"
	"<param><value><struct>\r\n";
static const char response_tail[] = "</struct></value></param>\r\n</params>\r\n</methodResponse>\r\n";

static int
put_member_b64(struct va_buf *out, const char *name, const uint8_t *data, size_t n)
{
	if (va_buf_printf(out, "<member><name>%s</name>\r\n<value><base64>\r\n", name) < 0 ||
	    va_buf_reserve(out, va_b64_encoded_size(n)) < 0)
		return -1;
	out->len += va_b64_encode_lines(data, n, (char *)out->data + out->len);
	return va_buf_append_str(out, "</base64></value></member>\r\n");
}

static int
put_member(struct va_buf *out, const char *name, const char *type, int v)
{
	return va_buf_printf(out, "<member><name>%s</name>\r\n<value><%s>%d</%s></value></member>\r\n",
			     name, type, v, type);
}

/* The read's answer as XML-RPC (what xmlrpc-c would write for read_value's struct). */
static int
read_xml(const struct exec_entry *e, const struct snap *sn, struct va_buf *out)
{
	if (va_buf_append_str(out, response_head) < 0 ||
	    put_member_b64(out, "stdout", va_proc_out_data(e->p, VA_PROC_STDOUT), sn->n[0]) < 0 ||
	    put_member_b64(out, "stderr", va_proc_out_data(e->p, VA_PROC_STDERR), sn->n[1]) < 0 ||
	    put_member(out, "stdout_eof", "boolean", sn->eof[0]) < 0 ||
	    put_member(out, "stderr_eof", "boolean", sn->eof[1]) < 0 ||
	    put_member(out, "exited", "boolean", sn->exited) < 0 ||
	    put_member(out, "timed_out", "boolean", sn->timed_out) < 0)
		return -1;
	if (sn->exited && put_member(out, WIFEXITED(sn->status) ? "exit_code" : "signal", "i4",
				     WIFEXITED(sn->status) ? WEXITSTATUS(sn->status) :
				     WTERMSIG(sn->status)) < 0)
		return -1;
	return va_buf_append_str(out, response_tail);
}

/* The same answer as a value (the registry's method). */
static xmlrpc_value *
read_value(xmlrpc_env *env, const struct exec_entry *e, const struct snap *sn)
{
	static const uint8_t none[1];
	const uint8_t *d0 = va_proc_out_data(e->p, VA_PROC_STDOUT);
	const uint8_t *d1 = va_proc_out_data(e->p, VA_PROC_STDERR);
	xmlrpc_value *v = xmlrpc_build_value(env, "{s:6,s:6,s:b,s:b,s:b,s:b}",
	    "stdout", d0 ? d0 : none, sn->n[0], "stderr", d1 ? d1 : none, sn->n[1],
	    "stdout_eof", (xmlrpc_bool)sn->eof[0], "stderr_eof", (xmlrpc_bool)sn->eof[1],
	    "exited", (xmlrpc_bool)sn->exited, "timed_out", (xmlrpc_bool)sn->timed_out);

	if (env->fault_occurred)
		return NULL;
	if (sn->exited) {
		int code = WIFEXITED(sn->status);
		xmlrpc_value *x = xmlrpc_int_new(env, code ? WEXITSTATUS(sn->status) :
						 WTERMSIG(sn->status));
		if (!env->fault_occurred) {
			xmlrpc_struct_set_value(env, v, code ? "exit_code" : "signal", x);
			xmlrpc_DECREF(x);
		}
		if (env->fault_occurred) {
			xmlrpc_DECREF(v);
			return NULL;
		}
	}
	return v;
}

/* ---- parameters ------------------------------------------------------------------ */

static const char read_usage[] = "va.exec.read: expected (int id[, int max_bytes[, int wait_ms]])";
static const char write_usage[] = "va.exec.write: expected (int id, base64 data[, boolean close])";

static struct exec_entry *
read_params(xmlrpc_env *env, struct va_execs *ex, xmlrpc_value *params, size_t *max,
	    unsigned *wait_ms)
{
	int64_t id = 0, m = VA_EXEC_READ_DEFAULT, w = 0;
	int n = va_params_count(env, params, 1, 3, read_usage);

	if (n < 0)
		return NULL;
	va_param_int64(env, params, 0, read_usage, &id);
	if (!env->fault_occurred && n > 1)
		va_param_int64(env, params, 1, read_usage, &m);
	if (!env->fault_occurred && n > 2)
		va_param_int64(env, params, 2, read_usage, &w);
	if (env->fault_occurred)
		return NULL;
	if (m < 1 || m > VA_EXEC_MAX_READ) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.exec.read: max_bytes %" PRId64 " is out of range (1 to %u)", m, VA_EXEC_MAX_READ);
		return NULL;
	}
	if (w < 0 || w > VA_EXEC_MAX_WAIT_MS) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.exec.read: wait_ms %" PRId64 " is out of range (0 to %d)", w, VA_EXEC_MAX_WAIT_MS);
		return NULL;
	}
	*max = (size_t)m;
	*wait_ms = (unsigned)w;
	return va_exec_find(env, ex, id, "va.exec.read");
}

/* The data (malloc'd: the caller frees it) and the rest of a write's parameters. */
static struct exec_entry *
write_params(xmlrpc_env *env, struct va_execs *ex, xmlrpc_value *params, uint8_t **data,
	     size_t *len, int *close)
{
	int64_t id = 0;
	int n = va_params_count(env, params, 2, 3, write_usage);

	*data = NULL;
	*close = 0;
	if (n < 0)
		return NULL;
	va_param_int64(env, params, 0, write_usage, &id);
	xmlrpc_value *v = env->fault_occurred ? NULL :
		va_param_typed(env, params, 1, write_usage, XMLRPC_TYPE_BASE64, XMLRPC_TYPE_BASE64);
	if (!v)
		return NULL;
	const unsigned char *d = NULL;
	xmlrpc_read_base64(env, v, len, &d);
	xmlrpc_DECREF(v);
	if (env->fault_occurred)
		return NULL;
	*data = (uint8_t *)d;
	if (*len > VA_EXEC_MAX_WRITE) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.exec.write: %zu bytes is more than one write takes (%u)", *len, VA_EXEC_MAX_WRITE);
		return NULL;
	}
	if (n > 2) {
		v = va_param_typed(env, params, 2, write_usage, XMLRPC_TYPE_BOOL, XMLRPC_TYPE_BOOL);
		if (!v)
			return NULL;
		xmlrpc_bool b = 0;
		xmlrpc_read_bool(env, v, &b);
		xmlrpc_DECREF(v);
		*close = b != 0;
	}
	return env->fault_occurred ? NULL : va_exec_find(env, ex, id, "va.exec.write");
}

/*
 * Queues what fits of data; *complete when all of it did (and stdin is
 * closed when asked).  The bytes taken, or -1 with a fault.
 */
static int64_t
write_now(xmlrpc_env *env, struct exec_entry *e, const uint8_t *data, size_t len, int close,
	  int *complete)
{
	*complete = 0;
	if (e->wr.active) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.exec.write: busy: a write to command %d waits already", e->id);
		return -1;
	}
	if (!va_proc_in_open(e->p)) {
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "va.exec.write: the standard input of command %d is closed", e->id);
		return -1;
	}
	size_t n = min_sz(len, va_proc_in_room(e->p));
	int r = va_proc_in_write(e->p, data, n);
	if (r == -ENOMEM) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.exec.write: out of memory");
		return -1;
	}
	if (r < 0 || !va_proc_in_open(e->p)) {
		/* Writing showed that nobody reads it any more (EPIPE). */
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "va.exec.write: the standard input of command %d is closed", e->id);
		return -1;
	}
	if (n == len) {
		if (close)
			va_proc_in_close(e->p);
		*complete = 1;
	}
	va_log_debug("va.exec.write %d: %zu of %zu bytes%s", e->id, n, len,
		     *complete && close ? ", stdin closed" : "");
	return (int64_t)n;
}

/* ---- the registry's methods (never wait) --------------------------------------------- */

xmlrpc_value *
va_exec_method_read(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	size_t max;
	unsigned wait_ms;
	struct snap sn;

	(void)call_info;
	struct exec_entry *e = read_params(env, va_group_state(server_info), params, &max, &wait_ms);
	if (!e)
		return NULL;
	snapshot(e, max, &sn);
	xmlrpc_value *v = read_value(env, e, &sn);
	if (v)
		commit(e, &sn);
	return v;
}

xmlrpc_value *
va_exec_method_write(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	uint8_t *data;
	size_t len = 0;
	int close, complete;

	(void)call_info;
	struct exec_entry *e = write_params(env, va_group_state(server_info), params, &data, &len,
					    &close);
	int64_t n = e ? write_now(env, e, data, len, close, &complete) : -1;
	free(data);
	return n < 0 ? NULL : xmlrpc_int_new(env, (int)n);
}

/* ---- waiting calls ------------------------------------------------------------------ */

static int
waiter_set(struct exec_waiter *w, struct exec_entry *e, const struct va_call *call,
	   unsigned ms, va_loop_timer_fn *fn)
{
	w->tag = strdup(call->tag);
	w->timer = va_loop_timer_new(va_agent_loop(e->ex->a), fn, e);
	if (!w->tag || !w->timer) {
		free(w->tag);
		va_loop_timer_free(w->timer);
		w->tag = NULL;
		w->timer = NULL;
		return -1;
	}
	w->s = call->s;
	w->epoch = call->epoch;
	w->active = 1;
	va_loop_timer_in(w->timer, ms);
	return 0;
}

static void
waiter_clear(struct exec_waiter *w)
{
	free(w->tag);
	va_loop_timer_free(w->timer);
	memset(w, 0, sizeof(*w));
}

static int
waiter_stale(const struct exec_waiter *w)
{
	return va_session_epoch(w->s) != w->epoch;
}

/* Answers a read now with what there is; may free e. */
static void
answer_read(struct exec_entry *e, va_session *s, uint64_t epoch, const char *tag, size_t max)
{
	struct snap sn;
	struct va_buf out = { 0 };

	snapshot(e, max, &sn);
	if (read_xml(e, &sn, &out) < 0) {
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_INTERNAL_ERROR, "va.exec.read: out of memory");
	} else if (va_rpc_reply(s, epoch, tag, out.data, out.len) == 0) {
		commit(e, &sn);
	}
	va_buf_free(&out);
}

/* Answers the waiting read (when its session lives); may free e. */
static void
answer_waiting_read(struct exec_entry *e)
{
	va_session *s = e->rd.s;
	uint64_t epoch = e->rd.epoch;
	char *tag = e->rd.tag;
	int stale = waiter_stale(&e->rd);

	e->rd.tag = NULL;
	waiter_clear(&e->rd);
	if (!stale)
		answer_read(e, s, epoch, tag, e->rd_max);
	free(tag);
}

static void
on_read_timer(void *opaque)
{
	answer_waiting_read(opaque);
}

static void
answer_int(va_session *s, uint64_t epoch, const char *tag, int v)
{
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n"
			 "<params>\r\n<param><value><i4>%d</i4></value></param>\r\n</params>\r\n"
			 "</methodResponse>\r\n", v);
	va_rpc_reply(s, epoch, tag, body, (size_t)n);
}

static void
answer_waiting_write(struct exec_entry *e)
{
	if (!waiter_stale(&e->wr))
		answer_int(e->wr.s, e->wr.epoch, e->wr.tag, (int)e->wr_off);
	else
		va_log_info("va.exec.write %d: the session was reset; %zu bytes taken, the rest "
			    "dropped", e->id, e->wr_off);
	waiter_clear(&e->wr);
	free(e->wr_data);
	e->wr_data = NULL;
}

static void
on_write_timer(void *opaque)
{
	struct exec_entry *e = opaque;

	va_log_info("va.exec.write %d: the command did not read its input for %d ms: %zu of %zu "
		    "bytes taken", e->id, VA_EXEC_WRITE_WAIT_MS, e->wr_off, e->wr_len);
	answer_waiting_write(e);
}

/* Moves more of the waiting write into stdin; answers it once done or stdin closed. */
static void
progress_write(struct exec_entry *e)
{
	if (!va_proc_in_open(e->p)) {
		answer_waiting_write(e);
		return;
	}
	size_t n = min_sz(e->wr_len - e->wr_off, va_proc_in_room(e->p));
	if (n && va_proc_in_write(e->p, e->wr_data + e->wr_off, n) == 0)
		e->wr_off += n;
	if (e->wr_off == e->wr_len) {
		if (e->wr_close)
			va_proc_in_close(e->p);
		answer_waiting_write(e);
	}
}

void
va_exec_io_event(struct exec_entry *e)
{
	if (e->wr.active)
		progress_write(e);
	/*
	 * Answered from its timer at the loop's next pass, not now: a command
	 * that ends closes its stdout and stderr and exits at once, and the
	 * loop sees those fds in one pass; one answer then carries all three
	 * instead of three answers (and two more reads).
	 */
	if (e->rd.active && (waiter_stale(&e->rd) || news(e)))
		va_loop_timer_in(e->rd.timer, 0);
}

void
va_exec_io_drop(struct exec_entry *e)
{
	waiter_clear(&e->rd);
	waiter_clear(&e->wr);
	free(e->wr_data);
	e->wr_data = NULL;
}

/* ---- the interceptor ------------------------------------------------------------------- */

static void
intercept_read(struct va_execs *ex, const struct va_call *call, xmlrpc_value *params)
{
	xmlrpc_env env;
	size_t max = 0;
	unsigned wait_ms = 0;

	xmlrpc_env_init(&env);
	struct exec_entry *e = read_params(&env, ex, params, &max, &wait_ms);
	if (!e) {
		va_rpc_reply_fault(call->s, call->epoch, call->tag, env.fault_code, env.fault_string);
	} else {
		if (e->rd.active)
			answer_waiting_read(e); /* nothing new: e stays */
		if (wait_ms == 0 || news(e)) {
			answer_read(e, call->s, call->epoch, call->tag, max);
		} else if (waiter_set(&e->rd, e, call, wait_ms, on_read_timer) < 0) {
			va_rpc_reply_fault(call->s, call->epoch, call->tag, XMLRPC_INTERNAL_ERROR,
					   "va.exec.read: out of memory");
		} else {
			e->rd_max = max;
		}
	}
	xmlrpc_env_clean(&env);
}

static void
intercept_write(struct va_execs *ex, const struct va_call *call, xmlrpc_value *params)
{
	xmlrpc_env env;
	uint8_t *data = NULL;
	size_t len = 0;
	int close = 0, complete = 0;

	xmlrpc_env_init(&env);
	struct exec_entry *e = write_params(&env, ex, params, &data, &len, &close);
	int64_t n = e ? write_now(&env, e, data, len, close, &complete) : -1;
	if (n < 0) {
		va_rpc_reply_fault(call->s, call->epoch, call->tag, env.fault_code, env.fault_string);
	} else if (complete || waiter_set(&e->wr, e, call, VA_EXEC_WRITE_WAIT_MS,
					  on_write_timer) < 0) {
		answer_int(call->s, call->epoch, call->tag, (int)n);
	} else {
		/* The rest waits for room (progress_write). */
		e->wr_data = data;
		e->wr_len = len;
		e->wr_off = (size_t)n;
		e->wr_close = close;
		data = NULL;
	}
	free(data);
	xmlrpc_env_clean(&env);
}

int
va_exec_intercept(void *state, const struct va_call *call)
{
	int rd = strcmp(call->method, "va.exec.read") == 0;
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL;

	if (!rd && strcmp(call->method, "va.exec.write") != 0)
		return 0;
	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, call->body, call->len, &name, &params);
	if (env.fault_occurred) {
		/* Malformed: the registry says so. */
		xmlrpc_env_clean(&env);
		return 0;
	}
	if (rd)
		intercept_read(state, call, params);
	else
		intercept_write(state, call, params);
	xmlrpc_DECREF(params);
	free(name);
	xmlrpc_env_clean(&env);
	return 1;
}
