/*
 * http.h - va-proxy's HTTP side: one xmlrpc-c Abyss server per listening
 * socket, each run by a thread of its own; Abyss serves each connection
 * on a thread of its own too, so a slow or stalled client holds only its
 * own thread (until the read timeout), never the others or the guests.
 *
 * Requests:
 *   POST /RPC2        the guest, when the proxy serves exactly one
 *   POST /RPC2/NAME   the guest named NAME
 * Answers: 200 with the XML-RPC response (faults included); 401 without
 * valid credentials (TCP listeners, unless --no-auth); 404 for another
 * path or an unknown guest (the message lists the guests); 405 for a
 * method other than POST (Allow: POST); 411 without Content-Length;
 * 413 when Content-Length is over the limit (said at once, before the body
 * is read or "100 Continue" sent); 400 when the body is not an XML-RPC
 * call.  Keep-alive, "Expect: 100-continue" and HTTP/1.0 are Abyss's.
 */
#ifndef VA_PROXY_HTTP_H
#define VA_PROXY_HTTP_H

#include <stddef.h>

/* Connections served at once per listener (a thread each). */
#define VA_HTTP_MAX_CONN 64
/* Seconds a client may take to send its request, per read. */
#define VA_HTTP_READ_TIMEOUT_S 20
/* Seconds an idle keep-alive connection stays open. */
#define VA_HTTP_KEEPALIVE_S 15

struct va_http_config {
	size_t max_frame;          /* largest request body */
	const char *secret;        /* Basic auth password for TCP listeners; NULL: none */
	int allow_remote;          /* TCP on addresses other than loopback */
	const char *socket_group;  /* unix sockets: mode 0660 and this group; NULL: 0600 */
};

/* Once, before anything else here.  Returns 0 or -1 with err set. */
int va_http_init(const struct va_http_config *cfg, char *err, size_t errlen);
/*
 * Creates a listening socket for addr ("tcp:HOST:PORT" or "unix:PATH")
 * and its Abyss server (not running yet).  Returns 0 or -1 with err set.
 */
int va_http_listen(const char *addr, char *err, size_t errlen);
/* Starts one thread per listener.  Returns 0 or -1 with err set. */
int va_http_start(char *err, size_t errlen);
/*
 * Stops accepting, closes idle keep-alive connections, and waits up to
 * timeout_ms for every server to finish.  Returns 0 when all did (and
 * everything was freed, unix socket files removed), -1 otherwise (the
 * servers are left running; the caller exits without freeing shared state).
 */
int va_http_stop(unsigned timeout_ms);
/* Removes the unix socket files of the listeners (once; at exit). */
void va_http_unlink_sockets(void);

#endif
