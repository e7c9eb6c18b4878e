/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * contract.h - what va-proxy (host/proxy/) and vactl (host/vactl/) must
 * agree on, so that neither keeps a copy of the other's rules: where the
 * proxy listens by default and the URL that reaches it, the secret file
 * of HTTP Basic authentication, the guest-name rule, the limits and
 * timeouts one side chooses with the other's in mind, the words of a
 * fault that vactl reads, and the XML-RPC fault codes the proxy answers
 * with itself.  The few rules that are code are in contract.c, which
 * both programs link.
 */
#ifndef VA_HOST_CONTRACT_H
#define VA_HOST_CONTRACT_H

#include <sys/types.h>

/* ---- where the proxy is ---- */

/* The default listener (va-proxy --listen) and the URL that reaches it
 * (vactl --url), both made of one host and port. */
#define VA_PROXY_DEFAULT_HOST "127.0.0.1"
#define VA_PROXY_DEFAULT_PORT "8470"
#define VA_PROXY_DEFAULT_LISTEN "tcp:" VA_PROXY_DEFAULT_HOST ":" VA_PROXY_DEFAULT_PORT
/* The path the proxy serves XML-RPC at; VA_PROXY_RPC_PATH "/NAME"
 * reaches the guest named NAME. */
#define VA_PROXY_RPC_PATH "/RPC2"
#define VA_PROXY_DEFAULT_URL \
	"http://" VA_PROXY_DEFAULT_HOST ":" VA_PROXY_DEFAULT_PORT VA_PROXY_RPC_PATH

/* ---- guests ---- */

/* Longest guest name, what may follow VA_PROXY_RPC_PATH "/" in a URL. */
#define VA_PROXY_MAX_GUEST_NAME 64

/* 1 when name is usable as a guest name: 1 to VA_PROXY_MAX_GUEST_NAME
 * bytes of [A-Za-z0-9_.-], whatever the locale. */
int va_proxy_guest_name_ok(const char *name);

/* ---- the secret file (HTTP Basic authentication on TCP listeners) ----
 *
 * va-proxy --auth-file and vactl --auth-file name it; both default to
 * VA_PROXY_DEFAULT_AUTH_FILE.  The secret is the file's first line
 * without its trailing spaces and tabs, 1 to VA_PROXY_MAX_SECRET bytes;
 * the rest of the file is ignored.  The proxy accepts any user name;
 * vactl sends VA_PROXY_DEFAULT_USER unless the URL names one.
 *
 * Creating the file when it is missing is the proxy's alone
 * (host/proxy/auth.c), and so is refusing one that
 * va_proxy_secret_mode_ok() refuses: vactl reads whatever file its user
 * can read and names, as it always has.
 */
#define VA_PROXY_DEFAULT_AUTH_FILE LOCALSTATEDIR "/lib/virtagent/proxy.secret"
#define VA_PROXY_DEFAULT_USER "va"
#define VA_PROXY_MAX_SECRET 256

/* 1 when a secret file of this st_mode may be used: a file that group or
 * others may access is refused, because whoever can read it can shut the
 * guests down and read their files. */
static inline int
va_proxy_secret_mode_ok(mode_t mode)
{
	return (mode & 077) == 0;
}

enum va_proxy_secret_result {
	VA_PROXY_SECRET_OK,
	VA_PROXY_SECRET_READ_ERROR, /* read() failed: errno says why */
	VA_PROXY_SECRET_NO_MEMORY,
	VA_PROXY_SECRET_EMPTY,      /* the first line is empty or blank */
	VA_PROXY_SECRET_TOO_LONG,   /* longer than VA_PROXY_MAX_SECRET */
};

/*
 * Reads the secret from fd, a secret file open for reading, with one
 * read() from its current offset (fd stays open).  On VA_PROXY_SECRET_OK
 * *secret is a malloc'ed string that the caller wipes (explicit_bzero)
 * and frees; otherwise *secret is NULL.  The bytes read are wiped from
 * the stack either way.
 */
enum va_proxy_secret_result va_proxy_secret_read(int fd, char **secret);

/* ---- limits and timeouts chosen with the other side in mind ---- */

/* The proxy's default --call-timeout (seconds): vactl waits longer, so
 * that the proxy's own clear fault comes first. */
#define VA_PROXY_DEFAULT_CALL_TIMEOUT 30
/* The most va-proxy --max-frame allows: the largest response body the
 * proxy forwards, so the largest answer a client must accept from it. */
#define VA_PROXY_MAX_FRAME_MAX (64u * 1024 * 1024)

/* proxy.events(since_id, timeout_s): the most events one call returns
 * (a client that gets this many asks again), and the longest wait. */
#define VA_EVENTS_MAX_PER_CALL 256
#define VA_EVENTS_MAX_WAIT_S 300
/* Words of its VA_PROXY_FAULT_EVENTS_LOST messages that a client reads:
 * the first is followed by the id of the oldest event kept; the second
 * says that since_id is above every id (the proxy restarted). */
#define VA_PROXY_EVENTS_OLDEST_KEPT "the oldest event kept is "
#define VA_PROXY_EVENTS_RESTARTED "newer than the newest"

/* ---- faults ----
 *
 * The XML-RPC fault codes va-proxy answers with itself.
 *
 * docs/PROXY-FAULTS.md describes each one and what a client should do.
 * Faults the guest agent returns are passed through untouched; faults
 * about the call itself (wrong parameters to a proxy.* method, unknown
 * method) use xmlrpc-c's standard codes (XMLRPC_TYPE_ERROR -501,
 * XMLRPC_NO_SUCH_METHOD_ERROR -506, ...).  HTTP-level errors (401, 404,
 * 405, 411, 413, 400) stay HTTP status codes and are not faults.
 */

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
