/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file-checksum.c - va.file.checksum, of the group "file" (file.h).
 *
 * A checksum reads the whole file, which can take a minute (a 20 GB
 * file) on the agent's only thread.  So va-agent answers it later: the
 * group's interceptor hands the call to va_file_checksum_start, which
 * checks it and opens the file at once; then a timer of the job's own
 * hashes CHECKSUM_SLICE bytes per turn of the loop, every other call
 * being served in between, and the reply is sent when the end is
 * reached.  At most VA_FILE_MAX_CHECKSUMS run at once; a job whose
 * session was reset since its request is dropped (at its next slice, or
 * when a new checksum call comes), and va_file_checksum_stop_all() drops
 * them all.  The registry's method (va_file_method_checksum) does the
 * same checks and hashes in one go: it is what xmlrpc-c's introspection
 * describes, and what runs when the interception does not apply.
 */
#include "config.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "buf.h"
#include "file.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "xmlgate.h"

#define CHECKSUM_CHUNK (1024 * 1024)   /* one read() of va.file.checksum */
#define CHECKSUM_SLICE (4 * 1024 * 1024) /* hashed per turn of the loop */

struct va_checksum {
	struct va_checksum *next;
	struct va_files *fs;
	va_loop_timer *slice;    /* runs the next slice; NULL: the registry's run */
	va_session *s;
	uint64_t epoch;
	char *tag;
	char *path;
	int fd;
	uint64_t bytes;          /* hashed so far */
	uint64_t started;        /* va_agent_now_ms() */
	struct sha256_ctx ctx;
	unsigned char *buf;      /* CHECKSUM_CHUNK bytes */
};

/* The parameter (a malloc'd path), or NULL with a fault; logs the call. */
static char *
checksum_params(xmlrpc_env *env, xmlrpc_value *params)
{
	static const char usage[] = "va.file.checksum: expected (string path)";
	char *path = NULL;

	if (va_params_count(env, params, 1, 1, usage) < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &path, NULL);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.file.checksum %s", path);
	return path;
}

/*
 * Opens path for hashing: a regular file (a device or a FIFO could be
 * endless) not on a pseudo filesystem.  The fd, or -1 with a fault.
 */
static int
checksum_open(xmlrpc_env *env, struct va_agent *a, const char *path)
{
	int created;
	struct stat st;
	const char *fs;
	int fd = va_file_open_path(env, a, "va.file.checksum", path, O_RDONLY, 0, &created);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.file.checksum: %s is not a regular file", path);
		close(fd);
		return -1;
	}
	int unstable = 0;
	if ((fs = va_file_pseudo_fs(fd, &unstable)) != NULL && unstable) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.file.checksum: %s is on %s, not a file with stable contents",
		    path, fs);
		close(fd);
		return -1;
	}
	return fd;
}

/* Fills c for path (checked and opened).  0, or -1 with a fault. */
static int
checksum_init(xmlrpc_env *env, struct va_checksum *c, struct va_files *fs, char *path)
{
	c->fd = -1;
	c->path = path;
	c->fs = fs;
	c->started = va_agent_now_ms(fs->a);
	c->buf = malloc(CHECKSUM_CHUNK);
	if (!c->buf) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.file.checksum: out of memory");
		return -1;
	}
	c->fd = checksum_open(env, fs->a, path);
	if (c->fd < 0)
		return -1;
	sha256_init(&c->ctx);
	return 0;
}

static void
checksum_release(struct va_checksum *c)
{
	va_loop_timer_free(c->slice);
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->path);
	free(c->tag);
}

/*
 * Hashes up to limit more bytes (in reads of CHECKSUM_CHUNK): 1 at the
 * end of the file, 0 when there is more, -1 with a fault.
 */
static int
checksum_step(xmlrpc_env *env, struct va_checksum *c, uint64_t limit)
{
	uint64_t n = 0;

	while (n < limit) {
		ssize_t r = read(c->fd, c->buf, CHECKSUM_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* EAGAIN too: a file that would block has no stable contents. */
			va_file_fault_errno(env, "va.file.checksum", c->path, errno);
			return -1;
		}
		if (r == 0)
			return 1;
		sha256_update(&c->ctx, (size_t)r, c->buf);
		n += (uint64_t)r;
		c->bytes += (uint64_t)r;
	}
	return 0;
}

/* The digest as the method's result: a string of 64 lowercase hex digits. */
static xmlrpc_value *
checksum_result(xmlrpc_env *env, struct va_checksum *c)
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	char hex[2 * SHA256_DIGEST_SIZE + 1];

	sha256_digest(&c->ctx, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	va_log_info("va.file.checksum %s: %" PRIu64 " bytes in %" PRIu64 " ms", c->path,
	    c->bytes, va_agent_now_ms(c->fs->a) - c->started);
	xmlrpc_value *res = xmlrpc_string_new(env, hex); /* text-ok: hex digits */
	return env->fault_occurred ? NULL : res;
}

xmlrpc_value *
va_file_method_checksum(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
			void *call_info)
{
	struct va_checksum c = { .fd = -1 };
	xmlrpc_value *res = NULL;
	int r;

	(void)call_info;
	char *path = checksum_params(env, params);
	if (!path)
		return NULL;
	if (checksum_init(env, &c, va_group_state(server_info), path) == 0) {
		while ((r = checksum_step(env, &c, UINT64_MAX)) == 0)
			;
		if (r > 0)
			res = checksum_result(env, &c);
	}
	checksum_release(&c);
	return res;
}

/* Answers c's request: the result, or the fault in env. */
static void
checksum_reply(struct va_checksum *c, xmlrpc_env *env, xmlrpc_value *res)
{
	struct va_buf out = { 0 };

	if (!env->fault_occurred)
		va_rpc_serialize_response(env, &out, res);
	if (env->fault_occurred) {
		out.len = 0;
		if (va_rpc_serialize_fault(&out, env->fault_code, env->fault_string) < 0) {
			va_log_warnx("request %s: out of memory, no reply", c->tag);
			va_buf_free(&out);
			return;
		}
	}
	va_rpc_reply(c->s, c->epoch, c->tag, out.data, out.len);
	va_buf_free(&out);
}

static void
checksum_unlink(struct va_checksum *c)
{
	for (struct va_checksum **pp = &c->fs->checksums; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	checksum_release(c);
	free(c);
}

static int
checksum_stale(const struct va_checksum *c)
{
	if (va_session_epoch(c->s) == c->epoch)
		return 0;
	va_log_info("va.file.checksum %s: the session was reset, stopped after %" PRIu64
	    " bytes", c->path, c->bytes);
	return 1;
}

/* Drops the jobs of an earlier session: nobody waits for their answer. */
static void
checksum_drop_stale(struct va_files *fs)
{
	struct va_checksum *c = fs->checksums, *next;

	for (; c; c = next) {
		next = c->next;
		if (checksum_stale(c))
			checksum_unlink(c);
	}
}

void
va_file_checksum_stop_all(struct va_files *fs)
{
	while (fs->checksums) {
		va_log_info("va.file.checksum %s: stopped after %" PRIu64 " bytes, unanswered",
		    fs->checksums->path, fs->checksums->bytes);
		checksum_unlink(fs->checksums);
	}
}

/*
 * The timer of a job: one slice, then again at the next turn of the loop
 * (after it has polled for I/O, loop.h), or the reply.
 */
static void
checksum_slice(void *opaque)
{
	struct va_checksum *c = opaque;
	xmlrpc_env env;
	xmlrpc_value *res = NULL;

	if (checksum_stale(c)) {
		checksum_unlink(c);
		return;
	}
	xmlrpc_env_init(&env);
	int r = checksum_step(&env, c, CHECKSUM_SLICE);
	if (r == 0) {
		va_loop_timer_in(c->slice, 0);
		xmlrpc_env_clean(&env);
		return;
	}
	if (r > 0)
		res = checksum_result(&env, c);
	checksum_reply(c, &env, res);
	if (res)
		xmlrpc_DECREF(res);
	xmlrpc_env_clean(&env);
	checksum_unlink(c);
}

int
va_file_checksum_start(struct va_files *fs, const struct va_call *call)
{
	xmlrpc_env env;
	char *mname = NULL;
	xmlrpc_value *params = NULL;
	struct va_checksum *c;
	char *path;
	unsigned running = 0;

	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, call->body, call->len, &mname, &params);
	if (env.fault_occurred) {
		/* Malformed: the registry says so. */
		xmlrpc_env_clean(&env);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->tag = strdup(call->tag);
	if (!c || !c->tag) {
		/* A fault, not the registry's method: that one would hash the
		 * whole file on the loop in one go. */
		struct va_checksum tmp = { .s = call->s, .epoch = call->epoch, .tag = (char *)call->tag };
		free(c ? c->tag : NULL);
		free(c);
		xmlrpc_DECREF(params);
		free(mname);
		va_fault(&env, XMLRPC_INTERNAL_ERROR, "va.file.checksum: out of memory");
		checksum_reply(&tmp, &env, NULL);
		xmlrpc_env_clean(&env);
		return 1;
	}
	c->fd = -1;
	c->s = call->s;
	c->epoch = call->epoch;
	path = checksum_params(&env, params);
	if (path) {
		checksum_drop_stale(fs);
		for (struct va_checksum *k = fs->checksums; k; k = k->next)
			running++;
		if (running >= VA_FILE_MAX_CHECKSUMS) {
			va_log_warnx("va.file.checksum %s: refused, %u checksums are running", path,
			    running);
			va_fault(&env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "va.file.checksum: busy: %u checksums are running (at most %d at once); "
			    "try again when one has finished", running, VA_FILE_MAX_CHECKSUMS);
			free(path);
		} else if (checksum_init(&env, c, fs, path) == 0) {
			c->slice = va_loop_timer_new(va_agent_loop(fs->a), checksum_slice, c);
			if (c->slice) {
				va_loop_timer_in(c->slice, 0);
				c->next = fs->checksums;
				fs->checksums = c;
				c = NULL; /* running: checksum_slice answers */
			} else {
				va_fault(&env, XMLRPC_INTERNAL_ERROR, "va.file.checksum: out of memory");
			}
		}
	}
	if (c) {
		/* A fault, answered now. */
		checksum_reply(c, &env, NULL);
		checksum_release(c);
		free(c);
	}
	if (params)
		xmlrpc_DECREF(params);
	free(mname);
	xmlrpc_env_clean(&env);
	return 1;
}
