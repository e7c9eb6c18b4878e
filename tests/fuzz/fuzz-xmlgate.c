/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-xmlgate.c - libFuzzer target for the gate before xmlrpc-c
 * (common/xmlgate.c) and the value form of text (common/text.c).
 *
 * The first byte chooses:
 *   even: the rest is a whole body from a peer: the gate and xmlrpc-c's
 *         parse behind it must never crash (ASan), whatever it is;
 *   odd:  the rest is text a client sends in a string: written as a call
 *         the way clients write it (raw UTF-8, markup escaped, CR as
 *         &#13;, or every character as a reference), it is either
 *         refused (then va_text_check refuses it too) or read back by
 *         the method exactly; and a response holding it, serialised and
 *         parsed, gives it back exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlrpc-c/base.h>

#include "buf.h"
#include "rpc.h"
#include "text.h"
#include "xmlgate.h"

static void
whole_body(const uint8_t *data, size_t size)
{
	xmlrpc_env env;
	char *name = NULL;
	xmlrpc_value *params = NULL;

	xmlrpc_env_init(&env);
	va_rpc_parse_call(&env, data, size, &name, &params);
	if (!env.fault_occurred)
		xmlrpc_DECREF(params);
	free(name);
	xmlrpc_env_clean(&env);
	xmlrpc_env_init(&env);
	xmlrpc_value *res = NULL;
	int code;
	char *fs = NULL;
	va_rpc_parse_response(&env, data, size, &res, &code, &fs);
	if (res)
		xmlrpc_DECREF(res);
	free(fs);
	xmlrpc_env_clean(&env);
}

/* The text as a client writes it in XML; refs: every character as &#xN;. */
static void
write_text(struct va_buf *b, const uint8_t *s, size_t n, int refs)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t cp;
		const char *why;
		size_t k = refs ? va_text_char(s + i, n - i, &cp, &why) : 0;
		if (k) {
			va_buf_printf(b, "&#x%X;", (unsigned)cp);
			i += k - 1;
		} else if (s[i] == '<') {
			va_buf_append_str(b, "&lt;");
		} else if (s[i] == '&') {
			va_buf_append_str(b, "&amp;");
		} else if (s[i] == '>') {
			va_buf_append_str(b, "&gt;");
		} else if (s[i] == '\r') {
			va_buf_append_str(b, "&#13;");
		} else {
			va_buf_append(b, s + i, 1);
		}
	}
}

static void
client_text(const uint8_t *s, size_t n, int refs)
{
	const char *why;
	int valid = va_text_check((const char *)s, n, &why) == n;
	struct va_buf body = { 0 };
	xmlrpc_env env;

	va_buf_append_str(&body, "<?xml version=\"1.0\"?><methodCall><methodName>va.echo"
				 "</methodName><params><param><value><string>");
	write_text(&body, s, n, refs);
	va_buf_append_str(&body, "</string></value></param></params></methodCall>");

	xmlrpc_env_init(&env);
	char *name = NULL;
	xmlrpc_value *params = NULL;
	va_rpc_parse_call(&env, body.data, body.len, &name, &params);
	if (!valid) {
		if (!env.fault_occurred)
			abort(); /* text XML cannot carry went through */
		goto out;
	}
	if (env.fault_occurred) {
		fprintf(stderr, "valid text refused: %s\n", env.fault_string);
		abort();
	}
	xmlrpc_value *item;
	char *got;
	size_t len;
	xmlrpc_array_read_item(&env, params, 0, &item);
	va_text_read(&env, item, &got, &len);
	if (env.fault_occurred || len != n || memcmp(got, s, n) != 0)
		abort(); /* changed on the way in */
	free(got);

	/* And out: a response holding it, serialised, parsed again. */
	struct va_buf out = { 0 };
	va_rpc_serialize_response(&env, &out, item);
	xmlrpc_DECREF(item);
	xmlrpc_value *res = NULL;
	int code;
	char *fs = NULL;
	va_rpc_parse_response(&env, out.data, out.len, &res, &code, &fs);
	if (env.fault_occurred || !res)
		abort();
	va_text_read(&env, res, &got, &len);
	if (env.fault_occurred || len != n || memcmp(got, s, n) != 0)
		abort(); /* changed on the way out */
	free(got);
	xmlrpc_DECREF(res);
	va_buf_free(&out);
out:
	if (params)
		xmlrpc_DECREF(params);
	free(name);
	xmlrpc_env_clean(&env);
	va_buf_free(&body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		va_rpc_init(16 * 1024 * 1024);
		init = 1;
	}
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0)
		whole_body(data + 1, size - 1);
	else
		client_text(data + 1, size - 1, data[0] & 2);
	return 0;
}
