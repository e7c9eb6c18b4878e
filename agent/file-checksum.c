/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file-checksum.c - SHA-256 of files in slices, of the group "file"
 * (file.h): va.file.checksum, and the hash a file stream's commit asks
 * for (file-stream.c).
 *
 * A checksum reads the whole file, which can take a minute (a 20 GB
 * file) on the agent's only thread.  So va-agent answers it later: the
 * group's interceptor hands the call to va_file_checksum_start, which
 * checks it and opens the file at once; then a timer of the job's own
 * hashes CHECKSUM_SLICE bytes per turn of the loop, every other call
 * being served in between, and the reply is sent when the end is
 * reached.  A commit's hash (va_file_hash_start) is the same kind of
 * job with another completion.  At most VA_FILE_MAX_CHECKSUMS jobs run
 * at once; a job whose session was reset since its request is dropped
 * (at its next slice, or when a new job comes), and
 * va_file_checksum_stop_all() drops them all.  The registry's method
 * (va_file_method_checksum) does the same checks and hashes in one go:
 * it is what xmlrpc-c's introspection describes, and what runs when the
 * interception does not apply.
 *
 * A job reads with pread() from its offset: the position of the fd
 * (a stream handle's, shared) does not matter, and it hashes exactly
 * [offset, offset + length) -- or to the end of the file when no length
 * was given; a file that ends before offset + length is a fault (the
 * bytes asked for are not there).
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

#include "async.h"
#include "file.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "rpc.h"
#include "serve.h"
#include "session.h"
#include "xmlgate.h"

#define CHECKSUM_CHUNK (1024 * 1024)   /* one read() of a job */
#define CHECKSUM_SLICE (4 * 1024 * 1024) /* hashed per turn of the loop */

struct va_checksum {
	struct va_checksum *next;
	struct va_files *fs;
	va_loop_timer *slice;    /* runs the next slice; NULL: the registry's run */
	va_session *s;
	uint64_t epoch;
	char *tag;               /* va.file.checksum's request (NULL for a hash job) */
	char *path;
	int fd;
	int own_fd;              /* close fd at the end (not a stream handle's) */
	uint64_t pos;            /* the next byte to hash */
	uint64_t end;            /* hash up to here; UINT64_MAX: the end of the file */
	uint64_t bytes;          /* hashed so far */
	uint64_t started;        /* va_agent_now_ms() */
	struct sha256_ctx ctx;
	unsigned char *buf;      /* CHECKSUM_CHUNK bytes */
	va_file_hash_done_fn *done; /* a hash job's completion */
	void *done_ctx;
};

/* The parameters: a malloc'd path, and the range.  NULL with a fault; logs the call. */
static char *
checksum_params(xmlrpc_env *env, xmlrpc_value *params, uint64_t *offset, uint64_t *end)
{
	static const char usage[] =
	    "va.file.checksum: expected (string path[, int offset[, int length]])";
	char *path = NULL;
	int64_t off = 0, len = -1;

	int n = va_params_count(env, params, 1, 3, usage);
	if (n < 0)
		return NULL;
	va_param_string(env, params, 0, usage, &path, NULL);
	if (!env->fault_occurred && n >= 2)
		va_param_int64(env, params, 1, usage, &off);
	if (!env->fault_occurred && n >= 3)
		va_param_int64(env, params, 2, usage, &len);
	if (env->fault_occurred) {
		free(path);
		return NULL;
	}
	if (n == 1)
		va_log_info("va.file.checksum %s", path);
	else
		va_log_info("va.file.checksum %s %" PRId64 " %" PRId64, path, off, len);
	if (off < 0 || (n == 3 && len < 0)) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.file.checksum: offset and length must not be negative");
		free(path);
		return NULL;
	}
	*offset = (uint64_t)off;
	*end = n == 3 ? (uint64_t)off + (uint64_t)len : UINT64_MAX;
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
	int fd = va_file_open_path(env, a, "va.file.checksum", path, O_RDONLY, 0, &created,
				   NULL);

	if (fd < 0)
		return -1;
	if (va_file_hashable(env, fd, path) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
va_file_hashable(xmlrpc_env *env, int fd, const char *path)
{
	struct stat st;
	const char *fs;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.file.checksum: %s is not a regular file", path);
		return -1;
	}
	int unstable = 0;
	if ((fs = va_file_pseudo_fs(fd, &unstable)) != NULL && unstable) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "va.file.checksum: %s is on %s, not a file with stable contents",
		    path, fs);
		return -1;
	}
	return 0;
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
	c->own_fd = 1;
	sha256_init(&c->ctx);
	return 0;
}

static void
checksum_release(struct va_checksum *c)
{
	va_loop_timer_free(c->slice);
	if (c->fd >= 0 && c->own_fd)
		close(c->fd);
	free(c->buf);
	free(c->path);
	free(c->tag);
}

/*
 * Hashes up to limit more bytes (in reads of CHECKSUM_CHUNK): 1 at the
 * end, 0 when there is more, -1 with a fault.
 */
static int
checksum_step(xmlrpc_env *env, struct va_checksum *c, uint64_t limit)
{
	uint64_t n = 0;

	while (n < limit) {
		if (c->pos >= c->end)
			return 1;
		size_t want = CHECKSUM_CHUNK;
		if (c->end - c->pos < want)
			want = (size_t)(c->end - c->pos);
		ssize_t r = pread(c->fd, c->buf, want, (off_t)c->pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* EAGAIN too: a file that would block has no stable contents. */
			va_file_fault_errno(env, "va.file.checksum", c->path, errno);
			return -1;
		}
		if (r == 0) {
			if (c->end == UINT64_MAX)
				return 1;
			va_fault(env, XMLRPC_INDEX_ERROR,
			    "va.file.checksum: %s has only %" PRIu64 " bytes, fewer than the %"
			    PRIu64 " asked for", c->path, c->pos, c->end);
			return -1;
		}
		sha256_update(&c->ctx, (size_t)r, c->buf);
		n += (uint64_t)r;
		c->pos += (uint64_t)r;
		c->bytes += (uint64_t)r;
	}
	return c->pos >= c->end;
}

static void
checksum_log_done(struct va_checksum *c)
{
	va_log_info("va.file.checksum %s: %" PRIu64 " bytes in %" PRIu64 " ms", c->path,
	    c->bytes, va_agent_now_ms(c->fs->a) - c->started);
}

/* The digest as the method's result: a string of 64 lowercase hex digits. */
static xmlrpc_value *
checksum_result(xmlrpc_env *env, struct va_checksum *c)
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	char hex[2 * SHA256_DIGEST_SIZE + 1];

	sha256_digest(&c->ctx, sizeof(digest), digest);
	va_file_hex(digest, hex);
	checksum_log_done(c);
	xmlrpc_value *res = xmlrpc_string_new(env, hex); /* text-ok: hex digits */
	return env->fault_occurred ? NULL : res;
}

void
va_file_hex(const uint8_t digest[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < 32; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[64] = '\0';
}

xmlrpc_value *
va_file_method_checksum(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
			void *call_info)
{
	struct va_checksum c = { .fd = -1 };
	xmlrpc_value *res = NULL;
	int r;

	(void)call_info;
	char *path = checksum_params(env, params, &c.pos, &c.end);
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
	va_async_answer(c->s, c->epoch, c->tag, env, res);
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

/* Drops a job nobody waits for; a hash job's owner hears of it (ECANCELED). */
static void
checksum_drop(struct va_checksum *c)
{
	va_file_hash_done_fn *done = c->done;
	void *ctx = c->done_ctx;

	checksum_unlink(c);
	if (done)
		done(ctx, ECANCELED, NULL, NULL);
}

/* Drops the jobs of an earlier session: nobody waits for their answer. */
static void
checksum_drop_stale(struct va_files *fs)
{
	struct va_checksum *c = fs->checksums, *next;

	for (; c; c = next) {
		next = c->next;
		if (checksum_stale(c))
			checksum_drop(c);
	}
}

void
va_file_checksum_stop_all(struct va_files *fs)
{
	while (fs->checksums) {
		va_log_info("va.file.checksum %s: stopped after %" PRIu64 " bytes, unanswered",
		    fs->checksums->path, fs->checksums->bytes);
		checksum_drop(fs->checksums);
	}
}

/* Jobs running (after dropping those of earlier sessions). */
static unsigned
checksum_running(struct va_files *fs)
{
	unsigned running = 0;

	checksum_drop_stale(fs);
	for (struct va_checksum *k = fs->checksums; k; k = k->next)
		running++;
	return running;
}

/*
 * The timer of a job: one slice, then again at the next turn of the loop
 * (after it has polled for I/O, loop.h), or the answer.
 */
static void
checksum_slice(void *opaque)
{
	struct va_checksum *c = opaque;
	xmlrpc_env env;
	xmlrpc_value *res = NULL;

	if (checksum_stale(c)) {
		checksum_drop(c);
		return;
	}
	xmlrpc_env_init(&env);
	int r = checksum_step(&env, c, CHECKSUM_SLICE);
	if (r == 0) {
		va_loop_timer_in(c->slice, 0);
		xmlrpc_env_clean(&env);
		return;
	}
	if (c->done) {
		uint8_t digest[SHA256_DIGEST_SIZE];
		va_file_hash_done_fn *done = c->done;
		void *ctx = c->done_ctx;
		int failed = r < 0;
		char msg[512];
		if (!failed) {
			sha256_digest(&c->ctx, sizeof(digest), digest);
			checksum_log_done(c);
		} else {
			snprintf(msg, sizeof(msg), "%s", env.fault_string);
		}
		c->done = NULL;
		checksum_unlink(c);
		done(ctx, failed ? EIO : 0, failed ? NULL : digest, failed ? msg : NULL);
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

/* Puts c (filled) on the list with its timer running; 0, or -1 with a fault. */
static int
checksum_run(xmlrpc_env *env, struct va_checksum *c)
{
	c->slice = va_loop_timer_new(va_agent_loop(c->fs->a), checksum_slice, c);
	if (!c->slice) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.file.checksum: out of memory");
		return -1;
	}
	va_loop_timer_in(c->slice, 0);
	c->next = c->fs->checksums;
	c->fs->checksums = c;
	return 0;
}

static void
fault_busy(xmlrpc_env *env, unsigned running)
{
	va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
	    "va.file.checksum: busy: %u checksums are running (at most %d at once); "
	    "try again when one has finished", running, VA_FILE_MAX_CHECKSUMS);
}

int
va_file_checksum_start(struct va_files *fs, const struct va_call *call)
{
	xmlrpc_env env;
	char *mname = NULL;
	xmlrpc_value *params = NULL;
	struct va_checksum *c;
	char *path;

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
	path = checksum_params(&env, params, &c->pos, &c->end);
	if (path) {
		unsigned running = checksum_running(fs);
		if (running >= VA_FILE_MAX_CHECKSUMS) {
			va_log_warnx("va.file.checksum %s: refused, %u checksums are running", path,
			    running);
			fault_busy(&env, running);
			free(path);
		} else if (checksum_init(&env, c, fs, path) == 0 && checksum_run(&env, c) == 0) {
			c = NULL; /* running: checksum_slice answers */
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

int
va_file_hash_start(xmlrpc_env *env, struct va_files *fs, va_session *s, uint64_t epoch, int fd,
		   const char *path, uint64_t length, va_file_hash_done_fn *done, void *ctx)
{
	unsigned running = checksum_running(fs);

	if (running >= VA_FILE_MAX_CHECKSUMS) {
		fault_busy(env, running);
		return -1;
	}
	struct va_checksum *c = calloc(1, sizeof(*c));
	if (c) {
		c->path = strdup(path);
		c->buf = malloc(CHECKSUM_CHUNK);
	}
	if (!c || !c->path || !c->buf) {
		if (c) {
			free(c->path);
			free(c->buf);
		}
		free(c);
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.file.checksum: out of memory");
		return -1;
	}
	c->fs = fs;
	c->s = s;
	c->epoch = epoch;
	c->fd = fd;
	c->end = length;
	c->started = va_agent_now_ms(fs->a);
	c->done = done;
	c->done_ctx = ctx;
	sha256_init(&c->ctx);
	if (checksum_run(env, c) < 0) {
		checksum_release(c);
		free(c);
		return -1;
	}
	return 0;
}
