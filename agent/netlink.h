/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netlink.h - rtnetlink for the group "net" (net.c): dumps of links,
 * addresses and routes, bounded in bytes, messages and time, and the
 * parsing of their messages, which checks every length against the
 * buffer before reading (the parsers are fed arbitrary bytes by the
 * tests).  No state: a dump opens and closes its own socket.
 */
#ifndef VA_AGENT_NETLINK_H
#define VA_AGENT_NETLINK_H

#include <stddef.h>
#include <stdint.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

/* A dump reads at most this many bytes, and stops after VA_NL_TIMEOUT_MS. */
#define VA_NL_MAX_BYTES (8u * 1024 * 1024)
#define VA_NL_TIMEOUT_MS 2000

/*
 * Called for each message of a dump (h->nlmsg_len checked to lie within
 * the datagram).  Returns 0 to go on, 1 to stop (enough), -errno to fail.
 */
typedef int va_nl_msg_fn(void *arg, const struct nlmsghdr *h);

/*
 * Dumps type (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) for family
 * (AF_UNSPEC, AF_INET, AF_INET6).  Returns 0 when the dump ended or fn
 * stopped it, -E2BIG when VA_NL_MAX_BYTES were read, -ETIMEDOUT, or
 * -errno (the kernel's error message, or a socket error).
 */
int va_nl_dump(int type, unsigned char family, va_nl_msg_fn *fn, void *arg);

/*
 * Walks the messages of one datagram buf[0..len): fn for each data
 * message.  Returns 1 at NLMSG_DONE, 0 at the datagram's end, fn's
 * non-zero value, -EBADMSG for a message whose length does not fit, or
 * -errno of an NLMSG_ERROR.
 */
int va_nl_walk(const void *buf, size_t len, va_nl_msg_fn *fn, void *arg);

/*
 * The attributes after a header of hdrlen bytes in message h: tb[t] is
 * the last attribute of type t (t <= max), NULL when absent.  Attributes
 * whose length does not fit end the walk.  Returns -EBADMSG when the
 * message is shorter than its header, else 0.
 */
int va_nl_attrs(const struct nlmsghdr *h, size_t hdrlen, const struct rtattr **tb, int max);
/* The payload of an attribute and its length. */
const void *va_nl_data(const struct rtattr *a, size_t *len);
/* A u32 attribute, or dflt when absent or of another size. */
uint32_t va_nl_u32(const struct rtattr *a, uint32_t dflt);

/* An address of family (AF_INET: 4 bytes, AF_INET6: 16) as text into buf, or "" when of a wrong size. */
const char *va_nl_addr(int family, const struct rtattr *a, char *buf, size_t size);
/* A hardware address as "aa:bb:..." into buf (size >= 3 * len), "" when absent. */
const char *va_nl_hwaddr(const struct rtattr *a, char *buf, size_t size);

/*
 * A socket that receives the kernel's notices of groups (RTMGRP_*),
 * non-blocking, close-on-exec, with a receive buffer large enough for a
 * burst.  -errno on failure.
 */
int va_nl_monitor(uint32_t groups);

#endif
