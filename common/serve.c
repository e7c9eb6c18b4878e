/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "xmlgate.h"

void
va_rpc_reply_fault(va_session *s, uint64_t epoch, const char *tag, int code, const char *msg)
{
	struct va_buf b = { 0 };

	if (va_rpc_serialize_fault(&b, code, msg) == 0)
		va_session_reply(s, epoch, tag, b.data, b.len);
	else
		va_log_errx("cannot answer request %s: out of memory", tag);
	va_buf_free(&b);
}

int
va_rpc_reply(va_session *s, uint64_t epoch, const char *tag, const void *body, size_t len)
{
	int r = va_session_reply(s, epoch, tag, body, len);

	if (r == -E2BIG) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "the response of %zu bytes is larger than the frame limit of the peer "
			 "(%zu bytes)", len, va_session_peer_max_frame(s));
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_LIMIT_EXCEEDED_ERROR, msg);
	} else if (r == -ESTALE) {
		va_log_info("request %s: session reset before the reply, dropped", tag);
	} else if (r < 0) {
		va_log_warnx("request %s: reply not sent: %s", tag, strerror(-r));
	}
	return r;
}

void
va_rpc_serve(va_session *s, uint64_t epoch, const char *tag, struct va_frame *req,
	     xmlrpc_registry *registry, void *call_info)
{
	va_rpc_serve_lim(s, epoch, tag, req, registry, NULL, call_info);
}

void
va_rpc_serve_lim(va_session *s, uint64_t epoch, const char *tag, struct va_frame *req,
		 xmlrpc_registry *registry, const struct va_xml_limits *lim, void *call_info)
{
	struct va_buf out = { 0 };
	xmlrpc_env env;

	xmlrpc_env_init(&env);
	va_rpc_process_lim(&env, registry, req->body, req->body_len, lim, call_info, &out);
	if (env.fault_occurred)
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_INTERNAL_ERROR, env.fault_string);
	else
		va_rpc_reply(s, epoch, tag, out.data, out.len);
	xmlrpc_env_clean(&env);
	va_buf_free(&out);
	va_frame_free(req);
}
