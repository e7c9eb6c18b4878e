/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c - the agent's local control socket (control.h), speaking
 * control-proto.h to va-clip: accepts on the loop, reads one request per
 * client, answers from the clipboard (clipboard.h, reached through the
 * agent) and closes.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "clipboard.h"
#include "control-proto.h"
#include "control.h"
#include "log.h"
#include "loop.h"

struct client {
	struct va_control *c;
	int fd; /* -1: a free slot */
	uint64_t deadline;
	struct va_buf in;
	struct va_buf out;
	size_t out_pos;
	int answered;
};

struct va_control {
	struct va_agent *agent;
	va_loop *loop;
	va_loop_timer *idle; /* the earliest client deadline */
	int lfd;
	char *path;
	dev_t dev; /* of the socket file we bound: free removes only that */
	ino_t ino;
	struct client clients[VA_CONTROL_MAX_CLIENTS];
	size_t nclients;
};

/* 1 when a process accepts connections on the socket (a running agent). */
static int
someone_listens(const struct sockaddr_un *sun)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	int r = connect(s, (const struct sockaddr *)sun, sizeof(*sun));
	int e = r < 0 ? errno : 0;
	close(s);
	return r == 0 || e == EAGAIN || e == EINPROGRESS || e == EINTR;
}

static void accept_clients(void *opaque, int fd, unsigned revents);
static void check_idle(void *opaque);

struct va_control *
va_control_open(const char *spec, va_loop *loop, struct va_agent *a)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strncmp(spec, "unix:", 5) != 0 || !spec[5]) {
		va_log_errx("control socket \"%s\": expected unix:PATH", spec);
		return NULL;
	}
	const char *path = spec + 5;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		va_log_errx("control socket %s: path too long", path);
		return NULL;
	}
	struct va_control *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->agent = a;
	c->loop = loop;
	for (size_t i = 0; i < VA_CONTROL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	c->path = strdup(path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!c->path || c->lfd < 0) {
		va_log_err("control socket %s", path);
		goto fail;
	}
	strcpy(sun.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* A stale socket is removed; a live one is another agent's. */
		if (someone_listens(&sun)) {
			va_log_errx("control socket %s: another process listens on it "
				    "(another va-agent?)", path);
			goto fail;
		}
		unlink(path);
	}
	mode_t old = umask(077);
	int r = bind(c->lfd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(c->lfd, 16) < 0) {
		va_log_err("control socket %s", path);
		goto fail;
	}
	if (lstat(path, &st) == 0) {
		c->dev = st.st_dev;
		c->ino = st.st_ino;
	}
	c->idle = va_loop_timer_new(loop, check_idle, c);
	if (!c->idle || va_loop_fd_set(loop, c->lfd, POLLIN, accept_clients, c) < 0) {
		va_log_errx("control socket %s: cannot poll it", path);
		unlink(path);
		goto fail;
	}
	return c;
fail:
	va_loop_timer_free(c->idle);
	if (c->lfd >= 0)
		close(c->lfd);
	free(c->path);
	free(c);
	return NULL;
}

static void
client_close(struct va_control *c, struct client *cl)
{
	va_loop_fd_clear(c->loop, cl->fd);
	close(cl->fd);
	cl->fd = -1;
	va_buf_free(&cl->in);
	va_buf_free(&cl->out);
	cl->out_pos = 0;
	cl->answered = 0;
	/* Room again: take the waiting connections. */
	if (c->nclients-- == VA_CONTROL_MAX_CLIENTS)
		va_loop_fd_events(c->loop, c->lfd, POLLIN);
}

void
va_control_free(struct va_control *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < VA_CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			client_close(c, &c->clients[i]);
	va_loop_timer_free(c->idle);
	va_loop_fd_clear(c->loop, c->lfd);
	close(c->lfd);
	/* Not a socket that another agent has put at the same path since. */
	struct stat st;
	if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	free(c);
}

static void
answer_ok(struct client *cl, unsigned long long n)
{
	cl->answered = 1;
	va_buf_printf(&cl->out, VA_CONTROL_OK " %llu\n", n);
}

static void
answer_err(struct client *cl, const char *msg)
{
	cl->answered = 1;
	va_buf_printf(&cl->out, VA_CONTROL_ERR " %s\n", msg);
}

/* Looks at what the client sent; answers once the request is complete. */
static void
handle_input(struct va_control *c, struct client *cl)
{
	uint8_t *nl = memchr(cl->in.data, '\n', cl->in.len);
	if (!nl) {
		if (cl->in.len > VA_CONTROL_MAX_LINE)
			answer_err(cl, "request line too long");
		return;
	}
	size_t linelen = (size_t)(nl - cl->in.data);
	char line[VA_CONTROL_MAX_LINE + 1];
	if (linelen > VA_CONTROL_MAX_LINE) {
		answer_err(cl, "request line too long");
		return;
	}
	memcpy(line, cl->in.data, linelen);
	line[linelen] = '\0';

	unsigned long long n = 0;
	switch (va_control_parse_request(line, &n)) {
	case VA_CONTROL_REQ_PASTE: {
		struct va_clip_view v;
		va_clipboard_view_host(c->agent, &v);
		answer_ok(cl, v.len);
		va_buf_append(&cl->out, v.text, v.len);
		va_log_info("control: va-clip paste (%zu bytes)", v.len);
		return;
	}
	case VA_CONTROL_REQ_COPY: {
		if (n > VA_CONTROL_MAX_TEXT) {
			char msg[80];
			snprintf(msg, sizeof(msg), "text over the clipboard limit of %u bytes",
				 VA_CONTROL_MAX_TEXT);
			answer_err(cl, msg);
			return;
		}
		size_t have = cl->in.len - linelen - 1;
		if (have < n)
			return; /* wait for the rest */
		if (have > n) {
			answer_err(cl, "more bytes than announced");
			return;
		}
		uint64_t serial = va_clipboard_store(c->agent, (const char *)nl + 1, (size_t)n, "guest");
		if (serial == 0)
			answer_err(cl, "text refused (not valid UTF-8, or out of memory)");
		else
			answer_ok(cl, (unsigned long long)serial);
		va_log_info("control: va-clip copy (%llu bytes)", n);
		return;
	}
	case VA_CONTROL_REQ_BAD_LENGTH:
		answer_err(cl, "bad length in " VA_CONTROL_COPY);
		return;
	case VA_CONTROL_REQ_UNKNOWN:
		break;
	}
	char msg[VA_CONTROL_MAX_LINE + 64];
	snprintf(msg, sizeof(msg), "unknown request \"%s\" (" VA_CONTROL_COPY " or " VA_CONTROL_PASTE ")",
		 line);
	answer_err(cl, msg);
}

static void client_cb(void *opaque, int fd, unsigned revents);

static void
arm_idle(struct va_control *c)
{
	uint64_t first = UINT64_MAX;
	for (size_t i = 0; i < VA_CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0 && c->clients[i].deadline < first)
			first = c->clients[i].deadline;
	if (first == UINT64_MAX)
		va_loop_timer_stop(c->idle);
	else if (va_loop_timer_due(c->idle) != first)
		va_loop_timer_at(c->idle, first);
}

static void
accept_clients(void *opaque, int lfd, unsigned revents)
{
	struct va_control *c = opaque;

	(void)revents;
	for (size_t i = 0; i < VA_CONTROL_MAX_CLIENTS; i++) {
		struct client *cl = &c->clients[i];
		if (cl->fd >= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				va_log_warn("control: accept");
			break;
		}
		memset(cl, 0, sizeof(*cl));
		cl->c = c;
		cl->fd = fd;
		cl->deadline = va_now_ms() + VA_CONTROL_IDLE_MS;
		if (va_loop_fd_set(c->loop, fd, POLLIN, client_cb, cl) < 0) {
			va_log_warn("control: cannot poll a client");
			close(fd);
			cl->fd = -1;
			continue;
		}
		c->nclients++;
	}
	/* Full: the rest wait in the listen backlog. */
	if (c->nclients == VA_CONTROL_MAX_CLIENTS)
		va_loop_fd_events(c->loop, lfd, 0);
	arm_idle(c);
}

/* Returns -1 when the client is done (closed or failed). */
static int
service(struct va_control *c, struct client *cl)
{
	if (!cl->answered) {
		char buf[65536];
		for (;;) {
			ssize_t r = read(cl->fd, buf, sizeof(buf));
			if (r < 0)
				return errno == EAGAIN || errno == EINTR ? 0 : -1;
			if (r == 0)
				return -1; /* gone before a full request */
			/* Cap what a client may make us hold. */
			if (cl->in.len + (size_t)r > VA_CONTROL_MAX_TEXT + VA_CONTROL_MAX_LINE + 2) {
				answer_err(cl, "request too large");
				break;
			}
			if (va_buf_append(&cl->in, buf, (size_t)r) < 0)
				return -1;
			handle_input(c, cl);
			if (cl->answered)
				break;
		}
	}
	while (cl->out_pos < cl->out.len) {
		ssize_t w = send(cl->fd, cl->out.data + cl->out_pos,
				 cl->out.len - cl->out_pos, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		cl->out_pos += (size_t)w;
	}
	return cl->answered ? -1 : 0;
}

static void
client_cb(void *opaque, int fd, unsigned revents)
{
	struct client *cl = opaque;
	struct va_control *c = cl->c;

	(void)fd;
	(void)revents;
	if (service(c, cl) < 0)
		client_close(c, cl);
	else
		va_loop_fd_events(c->loop, cl->fd, cl->answered ? POLLOUT : POLLIN);
	arm_idle(c);
}

static void
check_idle(void *opaque)
{
	struct va_control *c = opaque;
	uint64_t now = va_now_ms();

	for (size_t i = 0; i < VA_CONTROL_MAX_CLIENTS; i++) {
		struct client *cl = &c->clients[i];
		if (cl->fd >= 0 && cl->deadline <= now) {
			va_log_warnx("control: client idle for %d ms, dropped", VA_CONTROL_IDLE_MS);
			client_close(c, cl);
		}
	}
	arm_idle(c);
}
