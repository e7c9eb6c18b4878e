/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netlink.c - rtnetlink dumps and parsing (netlink.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "netlink.h"

/* The kernel sends dump parts of up to 32 KiB (more with large pages). */
#define RECV_BUF (64 * 1024)

int
va_nl_walk(const void *buf, size_t len, va_nl_msg_fn *fn, void *arg)
{
	const uint8_t *p = buf;
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, p + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			return -EBADMSG;
		const struct nlmsghdr *m = (const void *)(p + off);
		if (h.nlmsg_type == NLMSG_DONE)
			return 1;
		if (h.nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr e;
			if (h.nlmsg_len < NLMSG_LENGTH(sizeof(e)))
				return -EBADMSG;
			memcpy(&e, NLMSG_DATA(m), sizeof(e));
			if (e.error)
				return e.error < 0 && e.error > -4096 ? e.error : -EPROTO;
		} else if (h.nlmsg_type >= NLMSG_MIN_TYPE) {
			int r = fn(arg, m);
			if (r)
				return r;
		}
		size_t step = NLMSG_ALIGN(h.nlmsg_len);
		if (step > len - off)
			break;
		off += step;
	}
	return 0;
}

int
va_nl_attrs(const struct nlmsghdr *h, size_t hdrlen, const struct rtattr **tb, int max)
{
	for (int i = 0; i <= max; i++)
		tb[i] = NULL;
	if (h->nlmsg_len < NLMSG_LENGTH(hdrlen))
		return -EBADMSG;
	const uint8_t *p = (const uint8_t *)NLMSG_DATA(h) + NLMSG_ALIGN(hdrlen);
	size_t left = h->nlmsg_len > NLMSG_LENGTH(NLMSG_ALIGN(hdrlen)) ?
		h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(hdrlen)) : 0;

	while (left >= sizeof(struct rtattr)) {
		const struct rtattr *a = (const void *)p;
		if (a->rta_len < sizeof(*a) || a->rta_len > left)
			break;
		unsigned short t = a->rta_type & NLA_TYPE_MASK;
		if (t <= max)
			tb[t] = a;
		size_t step = RTA_ALIGN(a->rta_len);
		if (step >= left)
			break;
		p += step;
		left -= step;
	}
	return 0;
}

const void *
va_nl_data(const struct rtattr *a, size_t *len)
{
	*len = a ? a->rta_len - sizeof(*a) : 0;
	return a ? (const void *)(a + 1) : NULL;
}

uint32_t
va_nl_u32(const struct rtattr *a, uint32_t dflt)
{
	size_t n;
	const void *d = va_nl_data(a, &n);
	uint32_t v;

	if (!d || n != sizeof(v))
		return dflt;
	memcpy(&v, d, sizeof(v));
	return v;
}

const char *
va_nl_addr(int family, const struct rtattr *a, char *buf, size_t size)
{
	size_t n;
	const void *d = va_nl_data(a, &n);

	buf[0] = '\0';
	if (!d || (family == AF_INET && n != 4) || (family == AF_INET6 && n != 16) ||
	    (family != AF_INET && family != AF_INET6) ||
	    !inet_ntop(family, d, buf, (socklen_t)size))
		buf[0] = '\0';
	return buf;
}

const char *
va_nl_hwaddr(const struct rtattr *a, char *buf, size_t size)
{
	size_t n;
	const uint8_t *d = va_nl_data(a, &n);
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; d && i < n && o + 3 < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%02x", i ? ":" : "", d[i]);
	return buf;
}

static int
nl_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int
va_nl_dump(int type, unsigned char family, va_nl_msg_fn *fn, void *arg)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
		uint8_t pad[16];
	} req;
	int fd = nl_socket();
	uint8_t *buf = NULL;
	size_t total = 0;
	int r = 0;

	if (fd < 0)
		return fd;
	memset(&req, 0, sizeof(req));
	/* rtgenmsg is enough for the three dumps (the kernel reads the family). */
	req.h.nlmsg_len = NLMSG_LENGTH(type == RTM_GETADDR ? sizeof(struct ifaddrmsg) :
				       type == RTM_GETROUTE ? sizeof(struct rtmsg) :
				       sizeof(struct ifinfomsg));
	req.h.nlmsg_type = (uint16_t)type;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1; /* one dump per socket */
	req.g.rtgen_family = family;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		r = -errno;
		goto out;
	}
	buf = malloc(RECV_BUF);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t end = va_now_ms() + VA_NL_TIMEOUT_MS;
	for (;;) {
		uint64_t now = va_now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (now >= end) {
			r = -ETIMEDOUT;
			break;
		}
		int pr = poll(&pfd, 1, (int)(end - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			r = pr < 0 ? -errno : -ETIMEDOUT;
			break;
		}
		ssize_t n = recv(fd, buf, RECV_BUF, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0) {
			r = -EPROTO;
			break;
		}
		total += (size_t)n;
		r = va_nl_walk(buf, (size_t)n, fn, arg);
		if (r > 0) {
			r = 0; /* NLMSG_DONE, or fn had enough */
			break;
		}
		if (r < 0)
			break;
		if (total >= VA_NL_MAX_BYTES) {
			r = -E2BIG;
			break;
		}
	}
out:
	free(buf);
	close(fd);
	return r;
}

int
va_nl_monitor(uint32_t groups)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	int size = 1024 * 1024;
	/* SO_RCVBUFFORCE as root, else what the limit allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = groups };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}
