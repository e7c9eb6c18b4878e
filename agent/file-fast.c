/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file-fast.c - the fast path of va.file.read and va.file.write, of the
 * group "file" (file.h).
 *
 * Every byte of a file transfer passes through these two methods, and
 * xmlrpc-c's generic path costs far more than the I/O: a va.file.read
 * result is built as a value, serialised by xmlrpc-c (its base64 coder
 * runs at ~0.5 GB/s, its serialiser at ~150 MB/s), and a va.file.write
 * call's megabyte of base64 is parsed into a value tree and decoded
 * (~95 MB/s).  va_file_fast (the group's interceptor hands it those two
 * methods, already allowed by the RPC lists) answers the common,
 * well-formed calls itself, with the same checks, faults and log lines,
 * and a response byte for byte like the registry's:
 *   - va.file.read: the (small) call is parsed by xmlrpc-c and checked by
 *     the method's own va_file_read_params(); the data is base64-encoded
 *     straight into the response (common/b64.h).
 *   - va.file.write: the call is matched against the exact shape XML-RPC
 *     clients send (see scan_write_call), and the base64 decoded straight
 *     into the buffer that is written.
 * Anything else (another shape, comments, entities, a bad handle, an
 * invalid base64, too much data) is left to the registry (return 0)
 * before any side effect, so its faults stay the registry's own.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "buf.h"
#include "file.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "xmlgate.h"
#include "xmlscan.h"

static const char response_head[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n";
static const char response_tail[] = "</params>\r\n</methodResponse>\r\n";

/* A fault response into out; 1 (answered), or 0 when out of memory. */
static int
fast_fault(xmlrpc_env *env, struct va_buf *out)
{
	out->len = 0;
	return va_rpc_serialize_fault(out, env->fault_code, env->fault_string) == 0;
}

static int
fast_read(struct va_files *fs, const uint8_t *body, size_t len, struct va_buf *out)
{
	static const char head[] =
		"<param><value><struct>\r\n<member><name>data</name>\r\n<value><base64>\r\n";
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL;
	unsigned char *buf = NULL;
	size_t count = 0, got = 0;
	int eof = 0, answered = 0;
	char tail[256];

	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, body, len, &name, &params);
	if (env.fault_occurred)
		goto out; /* malformed: the registry says so */
	struct va_file_handle *h = va_file_read_params(&env, fs, params, &count);
	if (h)
		buf = va_file_read_chunk(&env, h, count, &got, &eof);
	if (!buf) {
		answered = fast_fault(&env, out);
		goto out;
	}
	int n = snprintf(tail, sizeof(tail),
		"</base64></value></member>\r\n<member><name>count</name>\r\n"
		"<value><i4>%d</i4></value></member>\r\n<member><name>eof</name>\r\n"
		"<value><boolean>%d</boolean></value></member>\r\n"
		"</struct></value></param>\r\n", (int)got, eof);
	size_t need = sizeof(response_head) - 1 + sizeof(head) - 1 + va_b64_encoded_size(got) +
		      (size_t)n + sizeof(response_tail) - 1;
	if (va_buf_reserve(out, need) < 0)
		goto out; /* the registry will not do better: it fails the same */
	va_buf_append_str(out, response_head);
	va_buf_append_str(out, head);
	out->len += va_b64_encode_lines(buf, got, (char *)out->data + out->len);
	va_buf_append(out, tail, (size_t)n);
	va_buf_append_str(out, response_tail);
	answered = 1;
out:
	free(buf);
	if (params)
		xmlrpc_DECREF(params);
	free((void *)name);
	xmlrpc_env_clean(&env);
	return answered;
}

/*
 * Matches exactly this shape, as Python's xmlrpc.client, xmlrpc-c and
 * vactl write it (white space allowed only between elements, not inside
 * <value>):
 *   [<?xml ...?>] <methodCall> <methodName>va.file.write</methodName>
 *   <params> <param><value><int|i4|i8>ID</...></value></param>
 *   <param><value><base64>TEXT</base64></value></param> </params>
 *   </methodCall>
 * and hands back the handle id and the base64 text (not checked yet).
 */
static int
scan_write_call(const uint8_t *body, size_t len, int64_t *id, const char **b64, size_t *b64len)
{
	struct va_scan s = { (const char *)body, (const char *)body + len };

	va_scan_ws(&s);
	if (s.end - s.p >= 5 && memcmp(s.p, "<?xml", 5) == 0) {
		/* The declaration: printable ASCII up to "?>", in the first 256 bytes. */
		const char *q = s.p + 5;
		while (q + 1 < s.end && q - s.p < 256 && !(q[0] == '?' && q[1] == '>')) {
			if (*q < 0x20 || *q > 0x7e || *q == '<' || *q == '>')
				return -1;
			q++;
		}
		if (q + 1 >= s.end || q[0] != '?')
			return -1;
		s.p = q + 2;
	}
	if (va_scan_lit(&s, "<methodCall>") || va_scan_lit(&s, "<methodName>") ||
	    va_scan_tight(&s, "va.file.write</methodName>") || va_scan_lit(&s, "<params>") ||
	    va_scan_lit(&s, "<param>") || va_scan_lit(&s, "<value>"))
		return -1;
	const char *close;
	int64_t lo, hi;
	if (!va_scan_tight(&s, "<int>")) {
		close = "</int>";
		lo = INT32_MIN;
		hi = INT32_MAX;
	} else if (!va_scan_tight(&s, "<i4>")) {
		close = "</i4>";
		lo = INT32_MIN;
		hi = INT32_MAX;
	} else if (!va_scan_tight(&s, "<i8>")) {
		close = "</i8>";
		lo = INT64_MIN;
		hi = INT64_MAX;
	} else {
		return -1;
	}
	/* Plain decimal digits only: a sign, spaces or 20 digits go to xmlrpc-c. */
	int64_t v = 0;
	int digits = 0;
	while (s.p < s.end && *s.p >= '0' && *s.p <= '9' && digits < 18) {
		v = v * 10 + (*s.p - '0');
		s.p++;
		digits++;
	}
	if (digits == 0 || v < lo || v > hi)
		return -1;
	if (va_scan_tight(&s, close) || va_scan_tight(&s, "</value>") || va_scan_lit(&s, "</param>") ||
	    va_scan_lit(&s, "<param>") || va_scan_lit(&s, "<value>") || va_scan_tight(&s, "<base64>"))
		return -1;
	const char *text = s.p;
	const char *lt = memchr(s.p, '<', (size_t)(s.end - s.p));
	if (!lt)
		return -1;
	s.p = lt;
	if (va_scan_tight(&s, "</base64>") || va_scan_tight(&s, "</value>") || va_scan_lit(&s, "</param>") ||
	    va_scan_lit(&s, "</params>") || va_scan_lit(&s, "</methodCall>"))
		return -1;
	va_scan_ws(&s);
	if (s.p != s.end)
		return -1;
	*id = v;
	*b64 = text;
	*b64len = (size_t)(lt - text);
	return 0;
}

static int
fast_write(struct va_files *fs, const uint8_t *body, size_t len, struct va_buf *out)
{
	int64_t id;
	const char *text;
	size_t tlen;
	struct va_b64_dec dec;
	xmlrpc_env env;
	char result[160];

	if (scan_write_call(body, len, &id, &text, &tlen) < 0)
		return 0;
	struct va_file_handle *h = va_file_find(fs, id);
	if (!h)
		return 0; /* the registry's "unknown file handle" */
	/* At most 3 bytes per 4 characters; more than the limit: the registry's fault. */
	size_t cap = tlen / 4 * 3 + 3;
	if (cap > VA_FILE_MAX_CHUNK + 3)
		cap = VA_FILE_MAX_CHUNK + 3;
	unsigned char *data = malloc(cap);
	if (!data)
		return 0;
	va_b64_dec_init(&dec, data, cap);
	if (va_b64_dec_feed(&dec, text, tlen) < 0 || va_b64_dec_finish(&dec) < 0 ||
	    dec.len > VA_FILE_MAX_CHUNK) {
		free(data);
		return 0;
	}
	h->last_used = va_agent_now_ms(fs->a);
	va_log_info("va.file.write %d %zu bytes", h->id, dec.len);
	xmlrpc_env_init(&env);
	ssize_t done = va_file_write_chunk(&env, h, data, dec.len);
	free(data);
	int answered;
	if (done < 0) {
		answered = fast_fault(&env, out);
	} else {
		snprintf(result, sizeof(result), "%s<param><value><i4>%d</i4></value></param>\r\n%s",
			 response_head, (int)done, response_tail);
		answered = va_buf_append_str(out, result) == 0;
	}
	xmlrpc_env_clean(&env);
	return answered;
}

int
va_file_fast(struct va_files *fs, const struct va_call *call)
{
	struct va_buf out = { 0 };
	int answered = strcmp(call->method, "va.file.read") == 0 ?
		       fast_read(fs, call->body, call->len, &out) :
		       fast_write(fs, call->body, call->len, &out);

	if (answered)
		va_rpc_reply(call->s, call->epoch, call->tag, out.data, out.len);
	va_buf_free(&out);
	return answered;
}
