/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "rpc.h"
#include "serve.h"
#include "text.h"
#include "xmlgate.h"
#include "xmlscan.h"

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

int
va_rpc_call_is_bare(const void *body, size_t len, const char *name)
{
	/* What xmlrpc-c, Python's xmlrpc.client and the project's own
	 * clients put first.  (White space before a declaration is not XML.) */
	static const char *const decls[] = {
		"<?xml version=\"1.0\"?>",
		"<?xml version='1.0'?>",
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
		"<?xml version='1.0' encoding='UTF-8'?>",
	};
	struct va_scan sc = { body, (const char *)body + len };

	for (size_t i = 0; i < sizeof(decls) / sizeof(decls[0]); i++)
		if (va_scan_tight(&sc, decls[i]) == 0)
			break;
	if (va_scan_lit(&sc, "<methodCall>") < 0 || va_scan_lit(&sc, "<methodName>") < 0 ||
	    va_scan_tight(&sc, name) < 0 || va_scan_tight(&sc, "</methodName>") < 0)
		return 0;
	if (va_scan_lit(&sc, "<params>") == 0 && va_scan_lit(&sc, "</params>") < 0)
		return 0;
	if (va_scan_lit(&sc, "</methodCall>") < 0)
		return 0;
	va_scan_ws(&sc);
	return sc.p == sc.end;
}

/*
 * What xmlrpc_registry_process_call2 (xmlrpc-c 1.33, src/registry.c) does
 * after parsing, for a call of mi with no parameters, and what
 * va_rpc_process makes of its outcome.
 */
static void
process_bare(xmlrpc_env *env, const struct xmlrpc_method_info3 *mi, void *server_info,
	     void *call_info, struct va_buf *out)
{
	xmlrpc_env e, fault;
	xmlrpc_mem_block *mb;

	xmlrpc_env_init(&e);
	xmlrpc_env_init(&fault);
	mb = XMLRPC_MEMBLOCK_NEW(char, &e, 0);
	if (!e.fault_occurred) {
		xmlrpc_value *params = xmlrpc_array_new(&fault);
		if (!fault.fault_occurred) {
			xmlrpc_value *result = mi->methodFunction(&fault, params, server_info,
								   call_info);
			if (!fault.fault_occurred) {
				xmlrpc_serialize_response2(&e, mb, result, xmlrpc_dialect_i8);
				xmlrpc_DECREF(result);
			}
			xmlrpc_DECREF(params);
		}
		if (!e.fault_occurred && fault.fault_occurred) {
			xmlrpc_env se;
			xmlrpc_env_init(&se);
			xmlrpc_serialize_fault(&se, mb, &fault);
			if (se.fault_occurred)
				xmlrpc_faultf(&e, "Executed XML-RPC method completely and it "
					      "generated a fault response, but we failed to encode "
					      "that fault response as XML-RPC so we could send it to "
					      "the client.  %s", se.fault_string);
			xmlrpc_env_clean(&se);
		}
		if (e.fault_occurred) {
			XMLRPC_MEMBLOCK_FREE(char, mb);
			mb = NULL;
		}
	}
	xmlrpc_env_clean(&fault);
	/* As va_rpc_process: a failure of the registry's own is an internal error. */
	if (e.fault_occurred) {
		if (va_rpc_serialize_fault(out, XMLRPC_INTERNAL_ERROR, e.fault_string) < 0)
			xmlrpc_faultf(env, "out of memory");
	} else if (va_text_xml_out(XMLRPC_MEMBLOCK_CONTENTS(char, mb),
				   XMLRPC_MEMBLOCK_SIZE(char, mb), out) < 0) {
		xmlrpc_faultf(env, "out of memory");
	}
	if (mb)
		XMLRPC_MEMBLOCK_FREE(char, mb);
	xmlrpc_env_clean(&e);
}

void
va_rpc_serve_method(va_session *s, uint64_t epoch, const char *tag, struct va_frame *req,
		    xmlrpc_registry *registry, const struct xmlrpc_method_info3 *mi,
		    void *server_info, void *call_info)
{
	/* The registry writes every call and answer to stderr when this is
	 * set (xmlrpc_traceXml): such a run keeps to the registry. */
	if (!va_rpc_call_is_bare(req->body, req->body_len, mi->methodName) ||
	    getenv("XMLRPC_TRACE_XML")) {
		va_rpc_serve(s, epoch, tag, req, registry, call_info);
		return;
	}
	struct va_buf out = { 0 };
	xmlrpc_env env;

	xmlrpc_env_init(&env);
	process_bare(&env, mi, server_info, call_info, &out);
	if (env.fault_occurred)
		va_rpc_reply_fault(s, epoch, tag, XMLRPC_INTERNAL_ERROR, env.fault_string);
	else
		va_rpc_reply(s, epoch, tag, out.data, out.len);
	xmlrpc_env_clean(&env);
	va_buf_free(&out);
	va_frame_free(req);
}
