/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * canned - an HTTP/1.1 responder for the benchmark (bench/run) that
 * answers every request at once with the bytes va-proxy sends for
 * va.ping, so that a client's round trip against it is the client's own
 * cost: the floor of the round trip any server could give that client.
 *
 *   canned --unix PATH
 *
 * Listens on a unix socket; one thread polls the listener and every
 * connection.  Each request is a head ending in an empty line (CRLF
 * CRLF), then Content-Length bytes of body (none without the header),
 * which are read and dropped; requests may arrive split across reads or
 * pipelined.  A head over 16 KiB, a body over 1 MiB, a malformed or
 * repeated Content-Length or a Transfer-Encoding closes the connection.
 * "Connection: close" closes it after the answer.  SIGTERM or SIGINT:
 * removes the socket and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define HEAD_MAX (16 * 1024)
#define BODY_MAX (1024 * 1024)
#define BUF_SIZE (2 * HEAD_MAX)  /* a whole head always fits */
#define OWED_MAX 256             /* answers owed before we stop reading */
#define IOV_MAX_USED 64

static const char body[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
	"<methodResponse>\r\n"
	"<params>\r\n"
	"<param><value><boolean>1</boolean></value></param>\r\n"
	"</params>\r\n"
	"</methodResponse>\r\n";

static char resp[512];
static size_t resp_len;

struct conn {
	int fd;
	int in_body;         /* reading a body (body_left bytes to go) */
	size_t body_left;
	int close_after;     /* the current request said Connection: close */
	int closing;         /* read no more; close once the answers are out */
	size_t owed;         /* whole answers still to send */
	size_t sent;         /* bytes of the first owed answer already sent */
	size_t off, len;     /* unread input: buf[off .. len) */
	size_t scanned;      /* bytes from off already searched for CRLFCRLF */
	char buf[BUF_SIZE];
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
die(const char *what)
{
	fprintf(stderr, "canned: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The value of header name in the head's lines (NUL-free, len bytes,
 * starting after the request line).  Returns the number of such headers
 * (0, 1 or 2 meaning "more than one") and the first one's value. */
static int
find_header(const char *h, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t nlen = strlen(name);
	int found = 0;
	const char *end = h + len;
	while (h < end) {
		const char *eol = memchr(h, '\n', (size_t)(end - h));
		if (!eol)
			eol = end;
		size_t l = (size_t)(eol - h);
		if (l > nlen && h[nlen] == ':' && !strncasecmp(h, name, nlen)) {
			const char *v = h + nlen + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (found++ == 0) {
				*val = v;
				*vlen = (size_t)(ve - v);
			} else {
				return 2;
			}
		}
		h = eol + 1;
	}
	return found;
}

/* Looks at a whole head of len bytes.  Returns 0 and sets the body's
 * length and whether to close after the answer, or -1 to close now. */
static int
parse_head(const char *h, size_t len, size_t *body_len, int *close_after)
{
	const char *v;
	size_t vl;
	const char *nl = memchr(h, '\n', len);
	if (!nl)
		return -1;
	len -= (size_t)(nl + 1 - h);
	h = nl + 1;

	*body_len = 0;
	int n = find_header(h, len, "content-length", &v, &vl);
	if (n > 1)
		return -1;
	if (n == 1) {
		if (vl == 0 || vl > 8)
			return -1;
		size_t x = 0;
		for (size_t i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -1;
			x = x * 10 + (size_t)(v[i] - '0');
		}
		if (x > BODY_MAX)
			return -1;
		*body_len = x;
	}
	if (find_header(h, len, "transfer-encoding", &v, &vl))
		return -1;
	*close_after = find_header(h, len, "connection", &v, &vl) == 1 &&
		vl == 5 && !strncasecmp(v, "close", 5);
	return 0;
}

/* Consumes what input there is.  Returns -1 to close the connection. */
static int
process(struct conn *c)
{
	while (!c->closing) {
		size_t avail = c->len - c->off;
		if (c->in_body) {
			size_t take = avail < c->body_left ? avail : c->body_left;
			c->off += take;
			c->body_left -= take;
			if (c->body_left)
				break;
			c->in_body = 0;
			c->owed++;
			if (c->close_after)
				c->closing = 1;
			continue;
		}
		/* Search for the empty line, resuming 3 bytes back. */
		const char *p = c->buf + c->off;
		size_t from = c->scanned > 3 ? c->scanned - 3 : 0, end = 0;
		for (size_t i = from; i + 4 <= avail; i++) {
			if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
				end = i + 4;
				break;
			}
		}
		if (!end) {
			c->scanned = avail;
			if (avail >= HEAD_MAX)
				return -1;
			break;
		}
		if (end > HEAD_MAX || memchr(p, '\0', end))
			return -1;
		size_t blen;
		if (parse_head(p, end, &blen, &c->close_after) < 0)
			return -1;
		c->off += end;
		c->scanned = 0;
		c->in_body = 1;
		c->body_left = blen;
	}
	if (c->off == c->len) {
		c->off = c->len = 0;
	} else if (c->off > 0 && c->len == BUF_SIZE) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	return 0;
}

/* Sends what it can of the owed answers.  Returns -1 on an error. */
static int
flush(struct conn *c)
{
	while (c->owed) {
		struct iovec iov[IOV_MAX_USED];
		int n = 0;
		iov[n].iov_base = resp + c->sent;
		iov[n++].iov_len = resp_len - c->sent;
		while ((size_t)n < c->owed && n < IOV_MAX_USED) {
			iov[n].iov_base = resp;
			iov[n++].iov_len = resp_len;
		}
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		size_t done = c->sent + (size_t)w;
		c->owed -= done / resp_len;
		c->sent = done % resp_len;
	}
	return 0;
}

/* Reads, answers and sends.  Returns -1 when the connection is done. */
static int
serve(struct conn *c, short revents)
{
	if ((revents & POLLIN) && !c->closing && c->owed < OWED_MAX) {
		ssize_t r = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
		if (r == 0)
			c->closing = 1;
		else if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		else if (r > 0)
			c->len += (size_t)r;
		if (process(c) < 0)
			return -1;
	} else if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
		if (!(revents & POLLOUT) || !c->owed)
			return -1;
	}
	if (flush(c) < 0)
		return -1;
	if (c->closing && !c->owed)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--unix") && i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr, "usage: canned --unix PATH\n");
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: canned --unix PATH\n");
		return 2;
	}
	int hl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n\r\n%s",
			  sizeof(body) - 1, body);
	if (hl < 0 || (size_t)hl >= sizeof(resp))
		return 1;
	resp_len = (size_t)hl;

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "canned: %s: path too long\n", path);
		return 1;
	}
	strcpy(sa.sun_path, path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(path);
	if (listen(lfd, 128) < 0)
		die("listen");

	/* SIGTERM and SIGINT are blocked except inside ppoll: no lost wake-up. */
	sigset_t block, waitmask;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	struct sigaction act = { .sa_handler = on_signal };
	sigemptyset(&act.sa_mask);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct conn **conns = NULL;
	struct pollfd *pfd = NULL;
	size_t n = 0, cap = 0;
	int paused = 0;  /* not accepting: out of file descriptors */
	while (!stop) {
		if (cap < n + 1) {
			size_t ncap = cap ? cap * 2 : 16;
			struct conn **nc = realloc(conns, ncap * sizeof(*nc));
			if (!nc)
				die("realloc");
			conns = nc;
			struct pollfd *np = realloc(pfd, (ncap + 1) * sizeof(*np));
			if (!np)
				die("realloc");
			pfd = np;
			cap = ncap;
		}
		pfd[0] = (struct pollfd){ .fd = lfd, .events = paused ? 0 : POLLIN };
		for (size_t i = 0; i < n; i++) {
			struct conn *c = conns[i];
			short ev = 0;
			if (!c->closing && c->owed < OWED_MAX)
				ev |= POLLIN;
			if (c->owed)
				ev |= POLLOUT;
			pfd[i + 1] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		if (ppoll(pfd, n + 1, NULL, &waitmask) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		size_t kept = 0;
		for (size_t i = 0; i < n; i++) {
			struct conn *c = conns[i];
			if (pfd[i + 1].revents && serve(c, pfd[i + 1].revents) < 0) {
				close(c->fd);
				free(c);
				paused = 0;
			} else {
				conns[kept++] = c;
			}
		}
		n = kept;
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0) {
				/* Out of descriptors: stop accepting until one closes. */
				if (errno == EMFILE || errno == ENFILE)
					paused = 1;
				else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
					die("accept");
				continue;
			}
			struct conn *c = calloc(1, sizeof(*c));
			if (!c) {
				close(fd);
				continue;
			}
			c->fd = fd;
			conns[n++] = c;  /* room: cap >= n + 1 before polling */
		}
	}
	for (size_t i = 0; i < n; i++) {
		close(conns[i]->fd);
		free(conns[i]);
	}
	free(conns);
	free(pfd);
	unlink(path);
	return 0;
}
