/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rpc-serve.c - see rpc-serve.h. */
#include "config.h"

#include "rpc-serve.h"

void
rpc_serve(xmlrpc_registry *reg, void *call_info, va_session *s, uint64_t epoch,
	  const char *tag, struct va_frame *req)
{
	xmlrpc_env e;
	xmlrpc_mem_block *out = NULL;

	xmlrpc_env_init(&e);
	xmlrpc_registry_process_call2(&e, reg, (const char *)req->body, req->body_len, call_info,
				      &out);
	if (!e.fault_occurred) {
		va_session_reply(s, epoch, tag, XMLRPC_MEMBLOCK_CONTENTS(char, out),
				 XMLRPC_MEMBLOCK_SIZE(char, out));
		XMLRPC_MEMBLOCK_FREE(char, out);
	}
	xmlrpc_env_clean(&e);
	va_frame_free(req);
}
