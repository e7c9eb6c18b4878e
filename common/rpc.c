/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "rpc.h"
#include "text.h"

/* Room for the envelope around the largest body a frame may carry. */
#define RPC_XML_SLACK (64 * 1024)

void
va_rpc_init(size_t max_frame)
{
	size_t limit = max_frame + RPC_XML_SLACK;
	if (limit < XMLRPC_XML_SIZE_LIMIT_DEFAULT)
		limit = XMLRPC_XML_SIZE_LIMIT_DEFAULT;
	xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, limit);
}

xmlrpc_registry *
va_rpc_registry_new(xmlrpc_env *env, const struct xmlrpc_method_info3 *methods, size_t n)
{
	xmlrpc_registry *r = xmlrpc_registry_new(env);
	if (env->fault_occurred)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		xmlrpc_registry_add_method3(env, r, &methods[i]);
		if (env->fault_occurred) {
			xmlrpc_registry_free(r);
			return NULL;
		}
	}
	return r;
}

/* What xmlrpc-c wrote, with text.h's escapes undone: the XML for the wire. */
static void
append_block(xmlrpc_env *env, struct va_buf *out, xmlrpc_mem_block *mb)
{
	if (va_text_xml_out(XMLRPC_MEMBLOCK_CONTENTS(char, mb), XMLRPC_MEMBLOCK_SIZE(char, mb),
			    out) < 0)
		xmlrpc_faultf(env, "out of memory");
}

void
va_rpc_serialize_call(xmlrpc_env *env, struct va_buf *out, const char *method,
		      xmlrpc_value *params)
{
	xmlrpc_mem_block *mb = XMLRPC_MEMBLOCK_NEW(char, env, 0);
	if (env->fault_occurred)
		return;
	xmlrpc_serialize_call2(env, mb, method, params, xmlrpc_dialect_i8);
	if (!env->fault_occurred)
		append_block(env, out, mb);
	XMLRPC_MEMBLOCK_FREE(char, mb);
}

void
va_rpc_serialize_response(xmlrpc_env *env, struct va_buf *out, xmlrpc_value *result)
{
	xmlrpc_mem_block *mb = XMLRPC_MEMBLOCK_NEW(char, env, 0);
	if (env->fault_occurred)
		return;
	xmlrpc_serialize_response2(env, mb, result, xmlrpc_dialect_i8);
	if (!env->fault_occurred)
		append_block(env, out, mb);
	XMLRPC_MEMBLOCK_FREE(char, mb);
}

int
va_rpc_serialize_fault(struct va_buf *out, int code, const char *msg)
{
	xmlrpc_env env, fault;
	int r = 0;

	xmlrpc_env_init(&env);
	xmlrpc_env_init(&fault);
	xmlrpc_env_set_fault(&fault, code, msg);
	xmlrpc_mem_block *mb = XMLRPC_MEMBLOCK_NEW(char, &env, 0);
	if (!env.fault_occurred) {
		xmlrpc_serialize_fault(&env, mb, &fault);
		if (!env.fault_occurred)
			append_block(&env, out, mb);
		XMLRPC_MEMBLOCK_FREE(char, mb);
	}
	if (env.fault_occurred)
		r = -ENOMEM;
	xmlrpc_env_clean(&fault);
	xmlrpc_env_clean(&env);
	return r;
}
