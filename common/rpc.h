/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc.h - the small parts of XML-RPC that both daemons share, on top of
 * xmlrpc-c.  xmlrpc-c does all marshalling; this file only sets its
 * limits and gives cheap access to what the proxy must read from a body
 * it forwards untouched.
 */
#ifndef VA_RPC_H
#define VA_RPC_H

#include <stddef.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "buf.h"

/* Longest method name va_rpc_method_name() accepts. */
#define VA_RPC_MAX_METHOD_NAME 256

/*
 * Raises xmlrpc-c's XML size limit (512 KiB by default) to max_frame,
 * so that large file chunks parse.  Call once at start, before threads.
 */
void va_rpc_init(size_t max_frame);

/*
 * The methodName of an XML-RPC call body, found without building a value
 * tree (the proxy reads only this of a forwarded call).  Writes it NUL
 * terminated into name (VA_RPC_MAX_METHOD_NAME + 1 bytes) and returns 0,
 * or -1 when the body is not a call or the name is missing, empty, too
 * long or has characters outside [A-Za-z0-9_.:/-].
 */
int va_rpc_method_name(const void *body, size_t len, char *name);

/*
 * Refuses XML that xmlrpc-c should never see: a document type declaration
 * (DOCTYPE, and with it entity declarations: xmlrpc-c's bundled expat
 * expands entities, so "billion laughs" would stall the daemon for
 * minutes).  XML-RPC never needs one.  Only the prolog is scanned (the
 * XML declaration, processing instructions, comments, white space), so
 * the cost does not grow with the body.  Returns 0 when the body may be
 * parsed, -1 with *why set to a plain-words reason otherwise.
 */
int va_rpc_check_prolog(const void *body, size_t len, const char **why);

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
