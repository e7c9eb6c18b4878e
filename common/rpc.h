/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc.h - the small parts of XML-RPC that both daemons share, on top of
 * xmlrpc-c: its limits, registries from method tables, and serialising
 * (calls, responses, faults).  Parsing what a peer sent goes through
 * xmlgate.h; serving a registry over a session is serve.h.
 */
#ifndef VA_RPC_H
#define VA_RPC_H

#include <stddef.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "buf.h"

/*
 * Raises xmlrpc-c's XML size limit (512 KiB by default) to max_frame,
 * so that large file chunks parse.  Call once at start, before threads.
 */
void va_rpc_init(size_t max_frame);

/* A new registry holding the n methods of a table; NULL with env set on failure. */
xmlrpc_registry *va_rpc_registry_new(xmlrpc_env *env,
				     const struct xmlrpc_method_info3 *methods, size_t n);

/* Serialises a call into out (appended).  env set on failure. */
void va_rpc_serialize_call(xmlrpc_env *env, struct va_buf *out,
			   const char *method, xmlrpc_value *params);
/* Serialises a fault response into out (appended).  Returns 0 or -ENOMEM. */
int va_rpc_serialize_fault(struct va_buf *out, int code, const char *msg);
/* Serialises a successful response into out (appended).  env set on failure. */
void va_rpc_serialize_response(xmlrpc_env *env, struct va_buf *out, xmlrpc_value *result);

#endif
