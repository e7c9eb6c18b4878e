/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * contract.h - what va-proxy and vactl must agree on: the XML-RPC fault
 * codes va-proxy answers with itself.
 *
 * docs/PROXY-FAULTS.md describes each one and what a client should do.
 * Faults the guest agent returns are passed through untouched; faults
 * about the call itself (wrong parameters to a proxy.* method, unknown
 * method) use xmlrpc-c's standard codes (XMLRPC_TYPE_ERROR -501,
 * XMLRPC_NO_SUCH_METHOD_ERROR -506, ...).  HTTP-level errors (401, 404,
 * 405, 411, 413, 400) stay HTTP status codes and are not faults.
 */
#ifndef VA_HOST_CONTRACT_H
#define VA_HOST_CONTRACT_H

/* The guest's channel (QEMU chardev socket) is not connected. */
#define VA_PROXY_FAULT_NOT_CONNECTED 1001
/* The channel is connected but the agent did not answer the handshake
 * within a few seconds (agent not running, hung, or wrong device). */
#define VA_PROXY_FAULT_NOT_ANSWERING 1002
/* The agent did not answer the call within --call-timeout; the proxy
 * reset the session. */
#define VA_PROXY_FAULT_TIMEOUT 1003
/* The call was sent but its answer was lost: the session was reset or
 * the channel closed while it was in flight.  It may or may not have run. */
#define VA_PROXY_FAULT_LOST 1004
/* The call or its response is over the frame limit of the proxy or
 * the agent (--max-frame). */
#define VA_PROXY_FAULT_TOO_LARGE 1005
/* The method is blocked by the proxy's --block-rpcs, or not available
 * through the proxy (system.multicall). */
#define VA_PROXY_FAULT_BLOCKED 1006
/* proxy.events: the events after since_id are no longer all in the
 * queue (it is bounded), or since_id is newer than any event (the proxy
 * restarted).  The message names the oldest and newest ids. */
#define VA_PROXY_FAULT_EVENTS_LOST 1007
/* The agent refused the frame with a status other than 200 or 413. */
#define VA_PROXY_FAULT_REFUSED 1008
/* The proxy is shutting down. */
#define VA_PROXY_FAULT_SHUTTING_DOWN 1009
/* The proxy could not handle the call (out of memory, ...). */
#define VA_PROXY_FAULT_INTERNAL 1010
/* The guest has too many calls (or bytes) of the proxy waiting already. */
#define VA_PROXY_FAULT_BUSY 1011

#endif
