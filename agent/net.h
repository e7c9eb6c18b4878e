/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * net.h - the group "net" (net.c): va.net.interfaces, va.net.routes and
 * the net.* events.  What is here is for the tests: the parsers of one
 * rtnetlink message into the struct a method reports.
 */
#ifndef VA_AGENT_NET_H
#define VA_AGENT_NET_H

#include <xmlrpc-c/base.h>

#include "netlink.h"

#define VA_NET_MAX_INTERFACES 1024
#define VA_NET_MAX_ADDRESSES 8192
#define VA_NET_MAX_ROUTES 4096

/*
 * One RTM_NEWLINK message as va.net.interfaces reports it (with an empty
 * "addresses" array), *index set; NULL with a fault when the message is
 * malformed (or out of memory).
 */
xmlrpc_value *va_net_link_value(xmlrpc_env *env, const struct nlmsghdr *h, int *index);
/* One RTM_NEWADDR message: {family, address, prefix, scope[, label]}, *index set. */
xmlrpc_value *va_net_addr_value(xmlrpc_env *env, const struct nlmsghdr *h, int *index);
/*
 * One RTM_NEWROUTE message as va.net.routes reports it; name(arg, index)
 * gives an interface's name (NULL: unknown).  Returns NULL without a
 * fault for a route that is not reported (the local table, cached
 * routes).
 */
xmlrpc_value *va_net_route_value(xmlrpc_env *env, const struct nlmsghdr *h,
				 const char *(*name)(void *arg, int index), void *arg);

#endif
