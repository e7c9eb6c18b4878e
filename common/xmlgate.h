/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xmlgate.h - the one way an XML body from a peer (a guest's call or
 * answer, a host client's call) reaches xmlrpc-c's parser.
 *
 * Before xmlrpc-c sees a body, a scan refuses what it must never parse:
 * a document type declaration (xmlrpc-c's bundled expat expands entities,
 * so "billion laughs" would stall the daemon for minutes), and a NUL
 * byte (UTF-16 or UTF-32, where the markup would go unseen).  The three
 * functions below run that scan and then the parse; nothing else in the
 * daemons calls xmlrpc-c's parse functions, so no call site can forget
 * the scan.  A refused body is a fault XMLRPC_PARSE_ERROR (-503) whose
 * message says why in plain words.
 *
 * All functions set env on failure and leave it untouched on success.
 */
#ifndef VA_XMLGATE_H
#define VA_XMLGATE_H

#include <stddef.h>

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "buf.h"

/* Longest method name va_rpc_method_name() accepts. */
#define VA_RPC_MAX_METHOD_NAME 256

/*
 * The methodName of an XML-RPC call body, found without building a value
 * tree (the proxy reads only this of a forwarded call).  Writes it NUL
 * terminated into name (VA_RPC_MAX_METHOD_NAME + 1 bytes) and returns 0,
 * or -1 when the body is not a call or the name is missing, empty, too
 * long or has characters outside [A-Za-z0-9_.:/-].  Only the exact shape
 * clients send is accepted: the root <methodCall>, then (after white
 * space only) <methodName>, so that no name hidden elsewhere (say in a
 * comment, which xmlrpc-c skips) can pass a block list under a name that
 * is not the one xmlrpc-c runs.
 */
int va_rpc_method_name(const void *body, size_t len, char *name);

/*
 * The scan alone: 0 when body may be parsed, -1 with *why set to a
 * plain-words reason otherwise.
 */
int va_xml_gate_check(const void *body, size_t len, const char **why);

/* A call: *name (malloc'ed) and *params (a new array reference). */
void va_rpc_parse_call(xmlrpc_env *env, const void *body, size_t len, char **name,
		       xmlrpc_value **params);
/*
 * A response: either *result (a new reference) with *fault_string NULL,
 * or *fault_code and *fault_string (malloc'ed) with *result NULL.
 */
void va_rpc_parse_response(xmlrpc_env *env, const void *body, size_t len,
			   xmlrpc_value **result, int *fault_code, char **fault_string);
/*
 * Runs a call body through registry (call_info is the methods' callInfo)
 * and appends the response, or the fault of a refused or malformed body,
 * to out.  env is set only when out could not be written (no memory).
 */
void va_rpc_process(xmlrpc_env *env, xmlrpc_registry *registry, const void *body, size_t len,
		    void *call_info, struct va_buf *out);

#endif
