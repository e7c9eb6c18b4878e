/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xmlgate.h - the one way an XML body from a peer (a guest's call or
 * answer, a host client's call) reaches xmlrpc-c's parser.
 *
 * Before xmlrpc-c sees a body, one linear scan (va_xml_gate) refuses what
 * it must never parse and bounds what it may: xmlrpc-c's bundled expat
 * expands entities ("billion laughs" stalled a daemon for minutes),
 * xmlrpc-c frees its trees recursively (200,000 nested elements overflow
 * the stack), inserts struct members with a linear search (quadratic),
 * and its trees cost ~30x the XML in memory.  The scan also carries the
 * characters xmlrpc-c cannot hold (text.h).  The three parse functions
 * below run the scan and then xmlrpc-c; nothing else in the daemons calls
 * xmlrpc-c's parse functions, so no call site can forget the scan.  A
 * refused body is a fault XMLRPC_PARSE_ERROR (-503) whose message says
 * why in plain words.
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
 * The prolog alone (what the proxy checks of a body it forwards without
 * parsing it: no DOCTYPE, no NUL): cost independent of the body's size.
 * 0 when the body may go on, -1 with *why set otherwise.
 */
int va_xml_gate_check(const void *body, size_t len, const char **why);

/*
 * Bounds of what the gate lets through.  Each accepted body costs
 * xmlrpc-c at most ~450 bytes of memory and ~0.5 us per element
 * (measured; docs/SECURITY.md), and struct members are inserted with a
 * linear search, so members per struct bound that cost too.
 */
struct va_xml_limits {
	size_t max_depth;    /* elements open at once (<= VA_XML_DEPTH_CAP) */
	size_t max_elements; /* elements in all */
	size_t max_members;  /* <member>s of one element */
};
#define VA_XML_DEPTH_CAP 256
/* 64 elements: values nested ~20 deep (each level is value/struct/member). */
#define VA_XML_MAX_DEPTH 64
#define VA_XML_MAX_ELEMENTS 65536
#define VA_XML_MAX_MEMBERS 1024
#define VA_XML_SMALL_ELEMENTS 4096
#define VA_XML_SMALL_MEMBERS 256
/* For calls of host clients and answers read by clients. */
extern const struct va_xml_limits va_xml_limits_default;
/* For what a guest sends the proxy to parse (host.* calls, va.capabilities). */
extern const struct va_xml_limits va_xml_limits_small;

/*
 * The gate: one linear scan of body that refuses, with a plain-words
 * reason in why (whylen bytes): a DOCTYPE or ENTITY declaration; an
 * undefined entity; bytes that are not UTF-8 text XML may carry (invalid
 * or overlong UTF-8, surrogates, U+FFFE/U+FFFF, control characters,
 * NUL), raw or as character references; an encoding other than UTF-8;
 * more than lim's depth, elements or members per struct (lim NULL: the
 * default).  It also rewrites what xmlrpc-c could not hold into the value
 * form of text.h (characters above U+FFFF, CR written as a reference,
 * U+E000).  Returns 0 with *xml, *xml_len the body xmlrpc-c is to parse
 * (body itself, or the rewritten copy held in scratch), or -1.
 */
int va_xml_gate(const void *body, size_t len, const struct va_xml_limits *lim,
		struct va_buf *scratch, const void **xml, size_t *xml_len, char *why,
		size_t whylen);

/* A call: *name (malloc'ed) and *params (a new array reference).  Default limits. */
void va_rpc_parse_call(xmlrpc_env *env, const void *body, size_t len, char **name,
		       xmlrpc_value **params);
/*
 * A response: either *result (a new reference) with *fault_string NULL,
 * or *fault_code and *fault_string (malloc'ed, raw UTF-8) with *result
 * NULL.
 */
void va_rpc_parse_response(xmlrpc_env *env, const void *body, size_t len,
			   xmlrpc_value **result, int *fault_code, char **fault_string);
/* The same with the limits lim (NULL: the default) instead of the default. */
void va_rpc_parse_response_lim(xmlrpc_env *env, const void *body, size_t len,
			       const struct va_xml_limits *lim, xmlrpc_value **result,
			       int *fault_code, char **fault_string);

/*
 * Runs a call body through registry (call_info is the methods' callInfo)
 * and appends the response (text.h's escapes undone), or the fault of a
 * refused or malformed body, to out.  env is set only when out could not
 * be written (no memory).
 */
void va_rpc_process(xmlrpc_env *env, xmlrpc_registry *registry, const void *body, size_t len,
		    void *call_info, struct va_buf *out);
/* The same with the limits lim (NULL: the default). */
void va_rpc_process_lim(xmlrpc_env *env, xmlrpc_registry *registry, const void *body,
			size_t len, const struct va_xml_limits *lim, void *call_info,
			struct va_buf *out);

#endif
