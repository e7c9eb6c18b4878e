/*
 * http.c - the HTTP side of va-proxy on xmlrpc-c's Abyss server (see
 * http.h).  We register one raw request handler that handles every
 * request itself: Abyss parses the request head, keeps connections alive
 * and sends "100 Continue" when a handler first asks for body bytes of a
 * request that had "Expect: 100-continue" (SessionRefillBuffer), so
 * refusing a request before reading its body (401, 404, 405, 413) means
 * the client never sends it.  Any answer of status 400 or more makes
 * Abyss close the connection afterwards.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xmlrpc-c/abyss.h>

#include "auth.h"
#include "buf.h"
#include "forward.h"
#include "guest.h"
#include "http.h"
#include "log.h"

/* Stack of the Abyss thread that runs our handler (xmlrpc-c parses on it). */
#define HANDLER_STACK (2u * 1024 * 1024)
/* A refused request's body up to this size is read and dropped before the
 * answer, so the client (which may still be sending it) sees the answer
 * rather than a connection reset. */
#define DRAIN_MAX (64u * 1024 * 1024)

struct listener {
	char *addr;      /* as given */
	char *path;      /* unix: the socket file, removed at the end */
	int fd;
	int need_auth;
	TChanSwitch *sw;
	TServer srv;
	int created;     /* srv is valid */
	pthread_t thread;
	int started;
	int finished;    /* ServerRun returned (under lock) */
};

static struct va_http_config config;
static struct listener **listeners;
static size_t nlisteners;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* ---- answers ---- */

static void
send_body(TSession *s, int status, const char *ctype, const void *body, size_t len)
{
	const char *p = body;

	ResponseStatus(s, (xmlrpc_uint16_t)status);
	ResponseContentType(s, ctype);
	ResponseContentLength(s, len);
	ResponseWriteStart(s);
	while (len > 0) {
		uint32_t n = len > (1u << 30) ? (1u << 30) : (uint32_t)len;
		if (!ResponseWriteBody(s, p, n))
			break; /* the client went away */
		p += n;
		len -= n;
	}
	ResponseWriteEnd(s);
}

static void
send_text(TSession *s, int status, const char *msg)
{
	char buf[2048];
	int n = snprintf(buf, sizeof(buf), "%s\n", msg);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	send_body(s, status, "text/plain; charset=utf-8", buf, (size_t)n);
}

/* ---- request body ---- */

static int
read_body(TSession *s, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		const char *p;
		size_t n;
		SessionGetReadData(s, len - got, &p, &n);
		if (n > 0) {
			memcpy(buf + got, p, n);
			got += n;
			continue;
		}
		/* Sends "100 Continue" first when the client asked for it. */
		if (!SessionRefillBuffer(s))
			return -1;
	}
	return 0;
}

/* Reads and drops the body of a request we refuse (see DRAIN_MAX). */
static void
drain_body(TSession *s)
{
	const char *cl = RequestHeaderValue(s, "content-length");
	char *end;

	/* With "Expect: 100-continue" the client waits: nothing to drop. */
	if (!cl || RequestHeaderValue(s, "expect"))
		return;
	errno = 0;
	unsigned long long len = strtoull(cl, &end, 10);
	if (errno || *end || end == cl || len > DRAIN_MAX)
		return;
	size_t got = 0;
	while (got < len) {
		const char *p;
		size_t n;
		SessionGetReadData(s, (size_t)len - got, &p, &n);
		if (n > 0) {
			got += n;
			continue;
		}
		if (!SessionRefillBuffer(s))
			return;
	}
}

static void
refuse(TSession *s, int status, const char *msg)
{
	drain_body(s);
	send_text(s, status, msg);
}

/* ---- the handler ---- */

static void
peer_name(TSession *s, char *out, size_t outlen)
{
	void *ci = NULL;
	char ip[INET6_ADDRSTRLEN] = "?";

	SessionGetChannelInfo(s, &ci);
	const struct abyss_unix_chaninfo *u = ci;
	if (!u) {
		snprintf(out, outlen, "unknown peer");
		return;
	}
	if (u->peerAddr.sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&u->peerAddr;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
	} else if (u->peerAddr.sa_family == AF_INET6) {
		snprintf(out, outlen, "an IPv6 peer");
	} else {
		snprintf(out, outlen, "a local peer");
	}
}

static void
guest_list(struct va_buf *b)
{
	for (size_t i = 0; i < va_guests_count(); i++)
		va_buf_printf(b, "%s%s", i ? ", " : "", va_guest_name(va_guests_at(i)));
}

/* The guest the path names, or NULL after answering 404. */
static struct va_guest *
route(TSession *s, const char *uri)
{
	struct va_buf b = { 0 };
	struct va_guest *g = NULL;

	if (!strcmp(uri, "/RPC2")) {
		if (va_guests_count() == 1)
			return va_guests_at(0);
		va_buf_printf(&b, "this proxy serves several guests: POST to /RPC2/NAME, NAME one of: ");
	} else if (!strncmp(uri, "/RPC2/", 6)) {
		g = va_guests_find(uri + 6);
		if (g)
			return g;
		va_buf_printf(&b, "no guest named \"%.64s\"; the guests are: ", uri + 6);
	} else {
		va_buf_printf(&b, "unknown path \"%.128s\": POST XML-RPC calls to /RPC2%s; "
			      "the guests are: ", uri, va_guests_count() > 1 ? "/NAME" : "");
	}
	guest_list(&b);
	va_buf_append(&b, "", 1);
	refuse(s, 404, b.data ? (const char *)b.data : "not found");
	va_buf_free(&b);
	return NULL;
}

static int
authorized(TSession *s, const TRequestInfo *ri)
{
	const char *why;
	char peer[96];

	if (va_auth_check(RequestHeaderValue(s, "authorization"), config.secret, &why))
		return 1;
	peer_name(s, peer, sizeof(peer));
	va_log_warnx("HTTP 401 for %s from %s: %s", ri->uri, peer, why);
	ResponseAddField(s, "WWW-Authenticate", "Basic realm=\"virtagent\"");
	refuse(s, 401, "authentication required: HTTP Basic with the secret of the proxy's "
		       "auth file as password (any user name)");
	return 0;
}

static void
handle_request(void *userdata, TSession *s, abyss_bool *handled)
{
	struct listener *l = userdata;
	const TRequestInfo *ri;
	char msg[256];

	*handled = TRUE; /* every request is ours: Abyss serves no files here */
	SessionGetRequestInfo(s, &ri);
	if (l->need_auth && !authorized(s, ri))
		return;
	struct va_guest *g = route(s, ri->uri);
	if (!g)
		return;
	if (ri->method != m_post) {
		ResponseAddField(s, "Allow", "POST");
		refuse(s, 405, "only POST is allowed: XML-RPC calls are POSTed");
		return;
	}
	const char *cl = RequestHeaderValue(s, "content-length");
	if (!cl || RequestHeaderValue(s, "transfer-encoding")) {
		refuse(s, 411, "a Content-Length header is required (no chunked bodies)");
		return;
	}
	char *end;
	errno = 0;
	unsigned long long len = strtoull(cl, &end, 10);
	if (*cl < '0' || *cl > '9' || *end) {
		refuse(s, 400, "malformed Content-Length");
		return;
	}
	if (errno == ERANGE)
		len = ~0ull; /* more digits than fit: too large */
	if (len > config.max_frame) {
		snprintf(msg, sizeof(msg), "the body (%s bytes) is over the limit of %zu bytes "
			 "(--max-frame)", cl, config.max_frame);
		va_log_warnx("HTTP 413 for %s: %s", ri->uri, msg);
		refuse(s, 413, msg);
		return;
	}
	if (len == 0) {
		refuse(s, 400, "empty body: expected an XML-RPC methodCall");
		return;
	}
	uint8_t *body = malloc((size_t)len + 1);
	if (!body) {
		send_text(s, 503, "out of memory");
		return;
	}
	if (read_body(s, body, (size_t)len) < 0) {
		free(body);
		send_text(s, 408, "the request body did not arrive in time");
		return;
	}
	body[len] = '\0';

	struct va_reply rep;
	va_forward_handle(g, body, (size_t)len, &rep);
	free(body);
	if (!rep.body)
		send_text(s, 503, "out of memory");
	else
		send_body(s, rep.status, rep.content_type, rep.body, rep.len);
	free(rep.body);
}

/* ---- listening sockets ---- */

static int
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

static int
open_tcp(struct listener *l, const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *ai = NULL;

	if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "listen tcp:%s: expected tcp:HOST:PORT", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	char *h = host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		h++;
	}
	int r = getaddrinfo(h, colon + 1, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "listen tcp:%s: %s", spec, gai_strerror(r));
		return -1;
	}
	if (!is_loopback(ai->ai_addr)) {
		if (!config.allow_remote) {
			snprintf(err, errlen, "listen tcp:%s: not a loopback address; listening "
				 "there needs --allow-remote", spec);
			freeaddrinfo(ai);
			return -1;
		}
		va_log_warnx("listening on tcp:%s, a non-loopback address (--allow-remote): "
			     "anyone who can reach it %s", spec,
			     config.secret ? "and has the secret can control the guests"
					   : "can control the guests (--no-auth!)");
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "listen tcp:%s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);

	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (void *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (void *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			port = ntohs(in6->sin6_port);
		}
	}
	l->fd = fd;
	l->need_auth = config.secret != NULL;
	va_log_info("listening on tcp:%s%s%s:%u (%s)", ss.ss_family == AF_INET6 ? "[" : "", ip,
		    ss.ss_family == AF_INET6 ? "]" : "", port,
		    l->need_auth ? "HTTP Basic authentication" : "no authentication");
	return 0;
}

static int
lookup_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
	struct group gr, *res = NULL;
	char buf[4096];
	char *end;

	int r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (r == 0 && res) {
		*gid = res->gr_gid;
		return 0;
	}
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	if (*name && !*end && !errno) {
		*gid = (gid_t)v;
		return 0;
	}
	snprintf(err, errlen, "socket group \"%s\": %s", name, r ? strerror(r) : "no such group");
	return -1;
}

static int
open_unix(struct listener *l, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	gid_t gid = 0;

	if (!*path || strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "listen unix:%s: the path must have 1 to %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -1;
	}
	if (config.socket_group && lookup_group(config.socket_group, &gid, err, errlen) < 0)
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);

	/* A socket file left by an earlier run: remove it if nobody listens. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "listen unix:%s: the path exists and is not a socket",
				 path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		if (probe >= 0)
			close(probe);
		if (alive) {
			snprintf(err, errlen, "listen unix:%s: another process listens there", path);
			return -1;
		}
		unlink(path);
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
		return -1;
	}
	/* Created with no access for group and others, then opened up as asked. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((config.socket_group && chown(path, (uid_t)-1, gid) < 0) ||
	    chmod(path, config.socket_group ? 0660 : 0600) < 0) {
		snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	l->fd = fd;
	l->path = strdup(path);
	l->need_auth = 0; /* the socket's mode is the access control */
	va_log_info("listening on unix:%s (mode %s%s)", path, config.socket_group ? "0660, group " : "0600",
		    config.socket_group ? config.socket_group : "");
	return 0;
}

static void
listener_free(struct listener *l)
{
	if (!l)
		return;
	if (l->created)
		ServerFree(&l->srv);
	if (l->sw)
		ChanSwitchDestroy(l->sw);
	if (l->fd >= 0)
		close(l->fd);
	if (l->path)
		unlink(l->path);
	free(l->path);
	free(l->addr);
	free(l);
}

void
va_http_unlink_sockets(void)
{
	for (size_t i = 0; i < nlisteners; i++) {
		if (listeners[i]->path) {
			unlink(listeners[i]->path);
			free(listeners[i]->path);
			listeners[i]->path = NULL;
		}
	}
}

int
va_http_init(const struct va_http_config *cfg, char *err, size_t errlen)
{
	const char *e = NULL;

	config = *cfg;
	AbyssInit(&e);
	if (e) {
		snprintf(err, errlen, "Abyss: %s", e);
		free((void *)e);
		return -1;
	}
	return 0;
}

int
va_http_listen(const char *addr, char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof(*l)), **tab;
	const char *e = NULL;
	abyss_bool ok = FALSE;

	if (!l || !(l->addr = strdup(addr))) {
		free(l);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->fd = -1;
	int r = !strncmp(addr, "tcp:", 4) ? open_tcp(l, addr + 4, err, errlen)
		: !strncmp(addr, "unix:", 5) ? open_unix(l, addr + 5, err, errlen)
		: (snprintf(err, errlen, "listen %s: expected tcp:HOST:PORT or unix:PATH", addr), -1);
	if (r < 0)
		goto fail;

	ChanSwitchUnixCreateFd(l->fd, &l->sw, &e);
	if (!e) {
		ServerCreateSwitch(&l->srv, l->sw, &e);
		l->created = !e;
	}
	if (e) {
		snprintf(err, errlen, "listen %s: Abyss: %s", addr, e);
		free((void *)e);
		goto fail;
	}
	ServerSetName(&l->srv, "va-proxy");
	ServerSetAdvertise(&l->srv, FALSE);
	ServerSetMaxConn(&l->srv, VA_HTTP_MAX_CONN);
	ServerSetMaxConnBacklog(&l->srv, VA_HTTP_MAX_CONN);
	ServerSetTimeout(&l->srv, VA_HTTP_READ_TIMEOUT_S);
	ServerSetKeepaliveTimeout(&l->srv, VA_HTTP_KEEPALIVE_S);
	ServerSetKeepaliveMaxConn(&l->srv, 1000);
	struct ServerReqHandler3 h = {
		.term = NULL,
		.handleReq = handle_request,
		.userdata = l,
		.handleReqStackSize = HANDLER_STACK,
	};
	ServerAddHandler3(&l->srv, &h, &ok);
	if (!ok) {
		snprintf(err, errlen, "listen %s: Abyss refused the handler", addr);
		goto fail;
	}
	ServerInit2(&l->srv, &e);
	if (e) {
		snprintf(err, errlen, "listen %s: %s", addr, e);
		free((void *)e);
		goto fail;
	}
	tab = realloc(listeners, (nlisteners + 1) * sizeof(*tab));
	if (!tab) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	listeners = tab;
	listeners[nlisteners++] = l;
	return 0;
fail:
	listener_free(l);
	return -1;
}

static void *
server_main(void *arg)
{
	struct listener *l = arg;

	ServerRun(&l->srv);
	pthread_mutex_lock(&lock);
	l->finished = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	return NULL;
}

int
va_http_start(char *err, size_t errlen)
{
	for (size_t i = 0; i < nlisteners; i++) {
		int r = pthread_create(&listeners[i]->thread, NULL, server_main, listeners[i]);
		if (r) {
			snprintf(err, errlen, "cannot start a thread: %s", strerror(r));
			return -1;
		}
		listeners[i]->started = 1;
	}
	return 0;
}

/*
 * Abyss waits, when it stops, for every connection to end, and an idle
 * keep-alive connection ends only when its client closes it or after
 * VA_HTTP_KEEPALIVE_S.  Abyss offers no way to close them, so we shut the
 * reading side of every connected stream socket of the process down: each
 * connection thread then sees end-of-file at once.  A connection in the
 * middle of a request still writes its answer.  Called after the guests'
 * channels are closed, so the only connected stream sockets left are the
 * HTTP clients'.
 */
static void
close_idle_connections(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		int type = 0, listening = 0;
		socklen_t sl = sizeof(type);
		if (*end || end == de->d_name || fd == dirfd(d))
			continue;
		if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 ||
		    type != SOCK_STREAM)
			continue;
		sl = sizeof(listening);
		if (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl) < 0 ||
		    listening)
			continue;
		shutdown((int)fd, SHUT_RD);
	}
	closedir(d);
}

int
va_http_stop(unsigned timeout_ms)
{
	struct timespec deadline;
	int all = 1;

	for (size_t i = 0; i < nlisteners; i++)
		if (listeners[i]->started)
			ServerTerminate(&listeners[i]->srv);
	close_idle_connections();

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nlisteners; i++) {
		while (listeners[i]->started && !listeners[i]->finished) {
			if (pthread_cond_timedwait(&cond, &lock, &deadline) == ETIMEDOUT)
				break;
		}
		if (listeners[i]->started && !listeners[i]->finished)
			all = 0;
	}
	pthread_mutex_unlock(&lock);
	if (!all) {
		va_log_warnx("HTTP connections still busy after %u ms: exiting without waiting",
			     timeout_ms);
		/* The unix socket files are ours to remove all the same. */
		va_http_unlink_sockets();
		return -1;
	}
	for (size_t i = 0; i < nlisteners; i++) {
		if (listeners[i]->started)
			pthread_join(listeners[i]->thread, NULL);
		listener_free(listeners[i]);
	}
	free(listeners);
	listeners = NULL;
	nlisteners = 0;
	AbyssTerm();
	return 0;
}
