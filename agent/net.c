/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * net.c - the group "net": va.net.interfaces and va.net.routes, read
 * with rtnetlink dumps (netlink.c), not by running ip; and, with
 * --events net, the events net.link.up, net.link.down,
 * net.address.added and net.address.removed from a netlink subscription
 * (no polling).  Its state is the subscription and what it knows of the
 * links and addresses, so that a notice that changes nothing (an IPv6
 * address finishing DAD, a lifetime refreshed, a link's counters) is no
 * event.
 *
 * Bounds: VA_NET_MAX_INTERFACES interfaces, VA_NET_MAX_ADDRESSES
 * addresses and VA_NET_MAX_ROUTES routes are reported at most (the rest
 * is left out and logged); each dump reads at most VA_NL_MAX_BYTES in
 * VA_NL_TIMEOUT_MS (netlink.h): the kernel answers from memory, so a
 * dump takes microseconds and runs on the loop.
 *
 * Text: an interface's name and alias are the kernel's bytes, which need
 * not be UTF-8 and may hold control characters (an alias is any 256
 * bytes): they are reported as methods.h says (U+FFFD, and NAME_raw in
 * base64 when anything was replaced).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR     parameters given
 *   XMLRPC_INTERNAL_ERROR a netlink dump failed (the message says why),
 *                         out of memory
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_link.h>

#include "events.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "net.h"
#include "text.h"

/* <linux/if.h> has it, but clashes with <net/if.h>, which lacks it. */
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

/* Notices read per turn of the loop. */
#define MONITOR_BATCH 64
#define MONITOR_BUF (64 * 1024)

struct link_state {
	int index;
	int up;         /* IFF_UP and IFF_RUNNING */
	char name[IFNAMSIZ];
};

struct addr_key {
	int index;
	unsigned char family, prefix;
	unsigned char addr[16];
};

struct net {
	struct va_agent *a;
	int fd;                       /* the subscription, -1: none */
	struct link_state *links;
	size_t nlinks;
	struct addr_key *addrs;
	size_t naddrs;
	uint8_t *buf;                 /* MONITOR_BUF */
};

/* ---- parsing ------------------------------------------------------------ */

static const char *
link_type(unsigned short t)
{
	switch (t) {
	case ARPHRD_ETHER: return "ether";
	case ARPHRD_LOOPBACK: return "loopback";
	case ARPHRD_NONE: return "none";
	case ARPHRD_IEEE80211: return "ieee80211";
	case ARPHRD_INFINIBAND: return "infiniband";
	case ARPHRD_TUNNEL: return "ipip";
	case ARPHRD_TUNNEL6: return "ip6tnl";
	case ARPHRD_SIT: return "sit";
	case ARPHRD_IPGRE: return "gre";
	case ARPHRD_PPP: return "ppp";
	default: return NULL;
	}
}

static const char *const operstates[] = {
	"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up",
};

/* The text of a string attribute (up to its NUL), its length in *len. */
static const char *
attr_str(const struct rtattr *a, size_t *len)
{
	size_t n;
	const char *d = va_nl_data(a, &n);
	*len = d ? strnlen(d, n) : 0;
	return d;
}

static void
set_stats(xmlrpc_env *env, xmlrpc_value *st, const struct rtattr **tb)
{
	struct rtnl_link_stats64 s;
	size_t n;
	const void *d = va_nl_data(tb[IFLA_STATS64], &n);

	memset(&s, 0, sizeof(s));
	if (d) {
		memcpy(&s, d, n < sizeof(s) ? n : sizeof(s));
	} else if ((d = va_nl_data(tb[IFLA_STATS], &n)) != NULL) {
		struct rtnl_link_stats s32;
		memset(&s32, 0, sizeof(s32));
		memcpy(&s32, d, n < sizeof(s32) ? n : sizeof(s32));
		s.rx_bytes = s32.rx_bytes;
		s.rx_packets = s32.rx_packets;
		s.rx_errors = s32.rx_errors;
		s.rx_dropped = s32.rx_dropped;
		s.tx_bytes = s32.tx_bytes;
		s.tx_packets = s32.tx_packets;
		s.tx_errors = s32.tx_errors;
		s.tx_dropped = s32.tx_dropped;
	}
	xmlrpc_value *v = xmlrpc_struct_new(env);
	/* Counters: i8 always, so that a script never sees the type change. */
	va_set_i8(env, v, "rx_bytes", (int64_t)s.rx_bytes);
	va_set_i8(env, v, "rx_packets", (int64_t)s.rx_packets);
	va_set_i8(env, v, "rx_errors", (int64_t)s.rx_errors);
	va_set_i8(env, v, "rx_dropped", (int64_t)s.rx_dropped);
	va_set_i8(env, v, "tx_bytes", (int64_t)s.tx_bytes);
	va_set_i8(env, v, "tx_packets", (int64_t)s.tx_packets);
	va_set_i8(env, v, "tx_errors", (int64_t)s.tx_errors);
	va_set_i8(env, v, "tx_dropped", (int64_t)s.tx_dropped);
	va_set_value(env, st, "stats", v);
}

xmlrpc_value *
va_net_link_value(xmlrpc_env *env, const struct nlmsghdr *h, int *index)
{
	const struct rtattr *tb[IFLA_MAX + 1];
	struct ifinfomsg ifi;
	char hw[3 * 32 + 1];

	if (va_nl_attrs(h, sizeof(ifi), tb, IFLA_MAX) < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "a link message of %u bytes is too short", h->nlmsg_len);
		return NULL;
	}
	memcpy(&ifi, NLMSG_DATA(h), sizeof(ifi));
	*index = ifi.ifi_index;
	size_t nlen = 0;
	const char *name = attr_str(tb[IFLA_IFNAME], &nlen);
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text(env, st, "name", name ? name : "", nlen);
	va_set_int(env, st, "index", ifi.ifi_index);
	size_t hwlen = 0;
	va_nl_data(tb[IFLA_ADDRESS], &hwlen);
	va_set_text_z(env, st, "mac", hwlen <= 32 ? va_nl_hwaddr(tb[IFLA_ADDRESS], hw, sizeof(hw)) : "");
	const char *type = link_type(ifi.ifi_type);
	char tbuf[16];
	snprintf(tbuf, sizeof(tbuf), "%u", ifi.ifi_type);
	va_set_text_z(env, st, "type", type ? type : tbuf);
	va_set_bool(env, st, "up", (ifi.ifi_flags & IFF_UP) != 0);
	va_set_bool(env, st, "running", (ifi.ifi_flags & IFF_RUNNING) != 0);
	va_set_bool(env, st, "carrier", (ifi.ifi_flags & IFF_LOWER_UP) != 0);
	size_t olen;
	const uint8_t *op = va_nl_data(tb[IFLA_OPERSTATE], &olen);
	va_set_text_z(env, st, "operstate", op && olen == 1 && *op < 7 ? operstates[*op] : "unknown");
	va_set_int(env, st, "mtu", va_nl_u32(tb[IFLA_MTU], 0));
	size_t alen = 0;
	const char *alias = attr_str(tb[IFLA_IFALIAS], &alen);
	if (alias && alen)
		va_set_text(env, st, "alias", alias, alen);
	set_stats(env, st, tb);
	va_set_value(env, st, "addresses", xmlrpc_array_new(env));
	return va_result(env, st);
}

static const char *
scope_name(unsigned s, char *buf, size_t size)
{
	switch (s) {
	case RT_SCOPE_UNIVERSE: return "global";
	case RT_SCOPE_SITE: return "site";
	case RT_SCOPE_LINK: return "link";
	case RT_SCOPE_HOST: return "host";
	case RT_SCOPE_NOWHERE: return "nowhere";
	}
	snprintf(buf, size, "%u", s);
	return buf;
}

static const char *
family_name(int f)
{
	return f == AF_INET ? "ipv4" : f == AF_INET6 ? "ipv6" : NULL;
}

/* The local address of an RTM_*ADDR message (IFA_LOCAL for IPv4 point-to-point). */
static const struct rtattr *
addr_attr(const struct ifaddrmsg *ifa, const struct rtattr **tb)
{
	if (ifa->ifa_family == AF_INET && tb[IFA_LOCAL])
		return tb[IFA_LOCAL];
	return tb[IFA_ADDRESS] ? tb[IFA_ADDRESS] : tb[IFA_LOCAL];
}

xmlrpc_value *
va_net_addr_value(xmlrpc_env *env, const struct nlmsghdr *h, int *index)
{
	const struct rtattr *tb[IFA_MAX + 1];
	struct ifaddrmsg ifa;
	char addr[INET6_ADDRSTRLEN], sbuf[16];

	if (va_nl_attrs(h, sizeof(ifa), tb, IFA_MAX) < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "an address message of %u bytes is too short", h->nlmsg_len);
		return NULL;
	}
	memcpy(&ifa, NLMSG_DATA(h), sizeof(ifa));
	*index = (int)ifa.ifa_index;
	const char *fam = family_name(ifa.ifa_family);
	va_nl_addr(ifa.ifa_family, addr_attr(&ifa, tb), addr, sizeof(addr));
	if (!fam || !addr[0]) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "an address message of family %u without its address",
			      ifa.ifa_family);
		return NULL;
	}
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text_z(env, st, "family", fam);
	va_set_text_z(env, st, "address", addr);
	va_set_int(env, st, "prefix", ifa.ifa_prefixlen);
	va_set_text_z(env, st, "scope", scope_name(ifa.ifa_scope, sbuf, sizeof(sbuf)));
	uint32_t flags = va_nl_u32(tb[IFA_FLAGS], ifa.ifa_flags);
	if (flags & IFA_F_TENTATIVE)
		va_set_bool(env, st, "tentative", 1);
	size_t llen = 0;
	const char *label = attr_str(tb[IFA_LABEL], &llen);
	if (label && llen)
		va_set_text(env, st, "label", label, llen);
	return va_result(env, st);
}

static const char *
proto_name(unsigned p, char *buf, size_t size)
{
	switch (p) {
	case RTPROT_UNSPEC: return "unspec";
	case RTPROT_REDIRECT: return "redirect";
	case RTPROT_KERNEL: return "kernel";
	case RTPROT_BOOT: return "boot";
	case RTPROT_STATIC: return "static";
	case RTPROT_RA: return "ra";
	case RTPROT_DHCP: return "dhcp";
	}
	snprintf(buf, size, "%u", p);
	return buf;
}

static const char *
route_type(unsigned t, char *buf, size_t size)
{
	static const char *const names[] = {
		[RTN_UNICAST] = "unicast", [RTN_LOCAL] = "local", [RTN_BROADCAST] = "broadcast",
		[RTN_ANYCAST] = "anycast", [RTN_MULTICAST] = "multicast",
		[RTN_BLACKHOLE] = "blackhole", [RTN_UNREACHABLE] = "unreachable",
		[RTN_PROHIBIT] = "prohibit", [RTN_THROW] = "throw", [RTN_NAT] = "nat",
	};
	if (t < sizeof(names) / sizeof(names[0]) && names[t])
		return names[t];
	snprintf(buf, size, "%u", t);
	return buf;
}

static void
set_ifname(xmlrpc_env *env, xmlrpc_value *st, int index,
	   const char *(*name)(void *, int), void *arg)
{
	const char *n = index > 0 && name ? name(arg, index) : NULL;
	va_set_text_z(env, st, "interface", n ? n : "");
	va_set_int(env, st, "interface_index", index);
}

/* The nexthops of RTA_MULTIPATH. */
static xmlrpc_value *
nexthops(xmlrpc_env *env, int family, const struct rtattr *mp,
	 const char *(*name)(void *, int), void *arg)
{
	size_t len;
	const uint8_t *p = va_nl_data(mp, &len);
	xmlrpc_value *arr = xmlrpc_array_new(env);

	while (!env->fault_occurred && len >= sizeof(struct rtnexthop)) {
		struct rtnexthop nh;
		memcpy(&nh, p, sizeof(nh));
		if (nh.rtnh_len < sizeof(nh) || nh.rtnh_len > len)
			break;
		/* Its attributes follow it: parse them as a message's. */
		struct {
			struct nlmsghdr h;
			uint8_t data[512];
		} fake;
		const struct rtattr *tb[RTA_MAX + 1];
		size_t alen = nh.rtnh_len - RTNH_ALIGN(sizeof(nh));
		if (nh.rtnh_len < RTNH_ALIGN(sizeof(nh)) || alen > sizeof(fake.data))
			alen = 0;
		memset(&fake.h, 0, sizeof(fake.h));
		fake.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(alen);
		memcpy(fake.data, p + RTNH_ALIGN(sizeof(nh)), alen);
		va_nl_attrs(&fake.h, 0, tb, RTA_MAX);
		char gw[INET6_ADDRSTRLEN];
		xmlrpc_value *st = xmlrpc_struct_new(env);
		va_set_text_z(env, st, "gateway", va_nl_addr(family, tb[RTA_GATEWAY], gw, sizeof(gw)));
		set_ifname(env, st, nh.rtnh_ifindex, name, arg);
		va_set_int(env, st, "weight", nh.rtnh_hops + 1);
		va_append(env, arr, st);
		size_t step = RTNH_ALIGN(nh.rtnh_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return arr;
}

xmlrpc_value *
va_net_route_value(xmlrpc_env *env, const struct nlmsghdr *h,
		   const char *(*name)(void *arg, int index), void *arg)
{
	const struct rtattr *tb[RTA_MAX + 1];
	struct rtmsg rt;
	char dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN], src[INET6_ADDRSTRLEN], buf[16];

	if (va_nl_attrs(h, sizeof(rt), tb, RTA_MAX) < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "a route message of %u bytes is too short", h->nlmsg_len);
		return NULL;
	}
	memcpy(&rt, NLMSG_DATA(h), sizeof(rt));
	uint32_t table = va_nl_u32(tb[RTA_TABLE], rt.rtm_table);
	const char *fam = family_name(rt.rtm_family);
	if (!fam || table == RT_TABLE_LOCAL || (rt.rtm_flags & RTM_F_CLONED))
		return NULL;
	if (tb[RTA_DST])
		va_nl_addr(rt.rtm_family, tb[RTA_DST], dst, sizeof(dst));
	else
		snprintf(dst, sizeof(dst), "%s", rt.rtm_family == AF_INET ? "0.0.0.0" : "::");
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text_z(env, st, "family", fam);
	va_set_text_z(env, st, "destination", dst);
	va_set_int(env, st, "prefix", rt.rtm_dst_len);
	va_set_text_z(env, st, "gateway", va_nl_addr(rt.rtm_family, tb[RTA_GATEWAY], gw, sizeof(gw)));
	set_ifname(env, st, (int)va_nl_u32(tb[RTA_OIF], 0), name, arg);
	va_set_text_z(env, st, "source", va_nl_addr(rt.rtm_family, tb[RTA_PREFSRC], src, sizeof(src)));
	va_set_int(env, st, "metric", va_nl_u32(tb[RTA_PRIORITY], 0));
	va_set_int(env, st, "table", table);
	va_set_text_z(env, st, "protocol", proto_name(rt.rtm_protocol, buf, sizeof(buf)));
	va_set_text_z(env, st, "scope", scope_name(rt.rtm_scope, buf, sizeof(buf)));
	va_set_text_z(env, st, "type", route_type(rt.rtm_type, buf, sizeof(buf)));
	if (tb[RTA_MULTIPATH] && !env->fault_occurred)
		va_set_value(env, st, "nexthops", nexthops(env, rt.rtm_family, tb[RTA_MULTIPATH], name, arg));
	return va_result(env, st);
}

/* ---- va.net.interfaces ---------------------------------------------------- */

struct iface {
	int index;
	xmlrpc_value *st;    /* the interface's struct */
	xmlrpc_value *addrs; /* its "addresses" (borrowed from st) */
};

struct ifaces {
	xmlrpc_env *env;
	struct iface *v;
	size_t n;
	size_t naddrs;
	size_t skipped;
};

static int
on_link(void *opaque, const struct nlmsghdr *h)
{
	struct ifaces *l = opaque;
	int index = 0;

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	if (l->n >= VA_NET_MAX_INTERFACES) {
		l->skipped++;
		return 0;
	}
	xmlrpc_value *st = va_net_link_value(l->env, h, &index);
	if (!st)
		return -EBADMSG;
	xmlrpc_value *addrs = NULL;
	xmlrpc_struct_find_value(l->env, st, "addresses", &addrs);
	if (addrs)
		xmlrpc_DECREF(addrs); /* st keeps it */
	l->v[l->n++] = (struct iface){ index, st, addrs };
	return 0;
}

static int
on_addr(void *opaque, const struct nlmsghdr *h)
{
	struct ifaces *l = opaque;
	int index = 0;

	if (h->nlmsg_type != RTM_NEWADDR)
		return 0;
	if (l->naddrs >= VA_NET_MAX_ADDRESSES) {
		l->skipped++;
		return 0;
	}
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *st = va_net_addr_value(&env, h, &index);
	xmlrpc_env_clean(&env);
	if (!st)
		return 0; /* an address of another family: not ours */
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].index == index && l->v[i].addrs) {
			xmlrpc_array_append_item(l->env, l->v[i].addrs, st);
			l->naddrs++;
			break;
		}
	}
	xmlrpc_DECREF(st);
	return l->env->fault_occurred ? -ENOMEM : 0;
}

/* A dump for method: 0, or -1 with a fault that names what was dumped. */
static int
dump(xmlrpc_env *env, const char *method, int type, unsigned char family, va_nl_msg_fn *fn,
     void *arg)
{
	int r = va_nl_dump(type, family, fn, arg);

	if (r < 0 && !env->fault_occurred)
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "%s: the netlink dump of %s failed: %s", method,
		    type == RTM_GETLINK ? "links" : type == RTM_GETADDR ? "addresses" : "routes",
		    r == -E2BIG ? "more than 8 MiB" : strerror(-r));
	return r < 0 || env->fault_occurred ? -1 : 0;
}

/* A zeroed table of VA_NET_MAX_INTERFACES entries of size bytes, or NULL with a fault. */
static void *
iface_table(xmlrpc_env *env, const char *method, size_t size)
{
	void *v = calloc(VA_NET_MAX_INTERFACES, size);
	if (!v)
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", method);
	return v;
}

static xmlrpc_value *
method_interfaces(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char method[] = "va.net.interfaces";
	struct ifaces l = { .env = env };
	xmlrpc_value *res = NULL;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, method) < 0 || !(l.v = iface_table(env, method, sizeof(*l.v))))
		return NULL;
	if (dump(env, method, RTM_GETLINK, AF_UNSPEC, on_link, &l) < 0 ||
	    dump(env, method, RTM_GETADDR, AF_UNSPEC, on_addr, &l) < 0)
		goto out;
	if (l.skipped)
		va_log_warnx("va.net.interfaces: %zu interfaces or addresses over the limits left out",
			     l.skipped);
	res = xmlrpc_array_new(env);
	for (size_t i = 0; i < l.n && !env->fault_occurred; i++)
		xmlrpc_array_append_item(env, res, l.v[i].st);
out:
	for (size_t i = 0; i < l.n; i++)
		xmlrpc_DECREF(l.v[i].st);
	free(l.v);
	return va_result(env, res);
}

/* ---- va.net.routes --------------------------------------------------------- */

struct names {
	struct {
		int index;
		char name[IFNAMSIZ];
	} *v;
	size_t n;
};

static int
on_link_name(void *opaque, const struct nlmsghdr *h)
{
	struct names *nm = opaque;
	const struct rtattr *tb[IFLA_MAX + 1];
	struct ifinfomsg ifi;

	if (h->nlmsg_type != RTM_NEWLINK || nm->n >= VA_NET_MAX_INTERFACES ||
	    va_nl_attrs(h, sizeof(ifi), tb, IFLA_MAX) < 0)
		return 0;
	memcpy(&ifi, NLMSG_DATA(h), sizeof(ifi));
	size_t len = 0;
	const char *s = attr_str(tb[IFLA_IFNAME], &len);
	nm->v[nm->n].index = ifi.ifi_index;
	snprintf(nm->v[nm->n].name, IFNAMSIZ, "%.*s", (int)(len < IFNAMSIZ ? len : IFNAMSIZ - 1),
		 s ? s : "");
	nm->n++;
	return 0;
}

static const char *
name_of(void *opaque, int index)
{
	struct names *nm = opaque;
	for (size_t i = 0; i < nm->n; i++)
		if (nm->v[i].index == index)
			return nm->v[i].name;
	return NULL;
}

struct routes {
	xmlrpc_env *env;
	xmlrpc_value *arr;
	struct names *names;
	size_t n, skipped;
};

static int
on_route(void *opaque, const struct nlmsghdr *h)
{
	struct routes *r = opaque;

	if (h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	if (r->n >= VA_NET_MAX_ROUTES) {
		r->skipped++;
		return 1; /* enough: stop reading */
	}
	xmlrpc_value *st = va_net_route_value(r->env, h, name_of, r->names);
	if (r->env->fault_occurred)
		return -EBADMSG;
	if (st) {
		va_append(r->env, r->arr, st);
		r->n++;
	}
	return r->env->fault_occurred ? -ENOMEM : 0;
}

static xmlrpc_value *
method_routes(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char method[] = "va.net.routes";
	static const unsigned char fams[] = { AF_INET, AF_INET6 };
	struct names nm = { 0 };
	struct routes rt = { .env = env, .names = &nm };

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, method) < 0 || !(nm.v = iface_table(env, method, sizeof(*nm.v))))
		return NULL;
	if (dump(env, method, RTM_GETLINK, AF_UNSPEC, on_link_name, &nm) < 0)
		goto out;
	rt.arr = xmlrpc_array_new(env);
	for (size_t i = 0; i < 2 && !env->fault_occurred && rt.n < VA_NET_MAX_ROUTES; i++)
		dump(env, method, RTM_GETROUTE, fams[i], on_route, &rt);
	if (rt.skipped)
		va_log_warnx("va.net.routes: more than %d routes; the rest is left out", VA_NET_MAX_ROUTES);
out:
	free(nm.v);
	if (env->fault_occurred && rt.arr) {
		xmlrpc_DECREF(rt.arr);
		rt.arr = NULL;
	}
	return rt.arr;
}

/* ---- events ------------------------------------------------------------------ */

static struct link_state *
find_link(struct net *n, int index)
{
	for (size_t i = 0; i < n->nlinks; i++)
		if (n->links[i].index == index)
			return &n->links[i];
	return NULL;
}

static const char *
link_name(struct net *n, int index, char *buf)
{
	struct link_state *l = find_link(n, index);
	if (l)
		return l->name;
	return if_indextoname((unsigned)index, buf) ? buf : "";
}

/* Applies one link notice to what n knows; sends the event it makes when send. */
static void
link_notice(struct net *n, const struct nlmsghdr *h, int send)
{
	const struct rtattr *tb[IFLA_MAX + 1];
	struct ifinfomsg ifi;

	if (va_nl_attrs(h, sizeof(ifi), tb, IFLA_MAX) < 0)
		return;
	memcpy(&ifi, NLMSG_DATA(h), sizeof(ifi));
	/* A notice about a wireless extension or a bridge port: not a link change. */
	if (ifi.ifi_family != AF_UNSPEC)
		return;
	size_t nlen = 0;
	const char *name = attr_str(tb[IFLA_IFNAME], &nlen);
	int up = h->nlmsg_type == RTM_NEWLINK && (ifi.ifi_flags & IFF_UP) &&
		 (ifi.ifi_flags & IFF_RUNNING);
	struct link_state *l = find_link(n, ifi.ifi_index);
	int was = l ? l->up : 0;
	if (h->nlmsg_type == RTM_DELLINK) {
		if (l)
			*l = n->links[--n->nlinks];
	} else if (!l && n->nlinks < VA_NET_MAX_INTERFACES) {
		l = &n->links[n->nlinks++];
		l->index = ifi.ifi_index;
	}
	if (l && h->nlmsg_type == RTM_NEWLINK) {
		l->up = up;
		if (name)
			snprintf(l->name, sizeof(l->name), "%.*s",
				 (int)(nlen < IFNAMSIZ ? nlen : IFNAMSIZ - 1), name);
	}
	if (!send || up == was)
		return;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *d = xmlrpc_struct_new(&env);
	char hw[3 * 32 + 1];
	va_set_text(&env, d, "interface", name ? name : "", nlen);
	va_set_int(&env, d, "index", ifi.ifi_index);
	size_t hwlen = 0;
	va_nl_data(tb[IFLA_ADDRESS], &hwlen);
	va_set_text_z(&env, d, "mac", hwlen <= 32 ? va_nl_hwaddr(tb[IFLA_ADDRESS], hw, sizeof(hw)) : "");
	va_set_bool(&env, d, "up", (ifi.ifi_flags & IFF_UP) != 0);
	va_set_bool(&env, d, "running", (ifi.ifi_flags & IFF_RUNNING) != 0);
	va_set_bool(&env, d, "carrier", (ifi.ifi_flags & IFF_LOWER_UP) != 0);
	if (h->nlmsg_type == RTM_DELLINK)
		va_set_bool(&env, d, "removed", 1);
	if (!env.fault_occurred)
		va_event(n->a, up ? "net.link.up" : "net.link.down", d);
	if (d)
		xmlrpc_DECREF(d);
	xmlrpc_env_clean(&env);
}

static int
same_addr(const struct addr_key *a, const struct addr_key *b)
{
	return a->index == b->index && a->family == b->family && a->prefix == b->prefix &&
	       memcmp(a->addr, b->addr, 16) == 0;
}

static void
addr_notice(struct net *n, const struct nlmsghdr *h, int send)
{
	const struct rtattr *tb[IFA_MAX + 1];
	struct ifaddrmsg ifa;
	struct addr_key k;

	if (va_nl_attrs(h, sizeof(ifa), tb, IFA_MAX) < 0)
		return;
	memcpy(&ifa, NLMSG_DATA(h), sizeof(ifa));
	size_t alen;
	const void *ad = va_nl_data(addr_attr(&ifa, tb), &alen);
	if (!ad || !family_name(ifa.ifa_family) || alen != (ifa.ifa_family == AF_INET ? 4u : 16u))
		return;
	memset(&k, 0, sizeof(k));
	k.index = (int)ifa.ifa_index;
	k.family = ifa.ifa_family;
	k.prefix = ifa.ifa_prefixlen;
	memcpy(k.addr, ad, alen);
	size_t i;
	for (i = 0; i < n->naddrs && !same_addr(&n->addrs[i], &k); i++)
		;
	int known = i < n->naddrs;
	if (h->nlmsg_type == RTM_NEWADDR) {
		if (known)
			return; /* DAD done, a lifetime refreshed: no news */
		if (n->naddrs < VA_NET_MAX_ADDRESSES)
			n->addrs[n->naddrs++] = k;
	} else {
		if (known)
			n->addrs[i] = n->addrs[--n->naddrs];
		else if (n->naddrs < VA_NET_MAX_ADDRESSES)
			return; /* not one we knew (the table is not full): no news */
	}
	if (!send)
		return;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	int index = 0;
	xmlrpc_value *d = va_net_addr_value(&env, h, &index);
	char buf[IF_NAMESIZE];
	const char *name = link_name(n, index, buf);
	va_set_text_z(&env, d, "interface", name);
	va_set_int(&env, d, "index", index);
	if (!env.fault_occurred)
		va_event(n->a, h->nlmsg_type == RTM_NEWADDR ? "net.address.added" : "net.address.removed", d);
	if (d)
		xmlrpc_DECREF(d);
	xmlrpc_env_clean(&env);
}

struct notice_ctx {
	struct net *n;
	int send;
};

static int
on_notice(void *opaque, const struct nlmsghdr *h)
{
	struct notice_ctx *c = opaque;

	switch (h->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		link_notice(c->n, h, c->send);
		break;
	case RTM_NEWADDR:
	case RTM_DELADDR:
		addr_notice(c->n, h, c->send);
		break;
	}
	return 0;
}

/* What is there now, without events (at start, and after lost notices). */
static void
resync(struct net *n)
{
	struct notice_ctx c = { n, 0 };

	n->nlinks = 0;
	n->naddrs = 0;
	int r = va_nl_dump(RTM_GETLINK, AF_UNSPEC, on_notice, &c);
	if (r == 0)
		r = va_nl_dump(RTM_GETADDR, AF_UNSPEC, on_notice, &c);
	if (r < 0)
		va_log_warnx("net events: cannot read the links and addresses: %s", strerror(-r));
}

static void
on_monitor(void *opaque, int fd, unsigned revents)
{
	struct net *n = opaque;
	struct notice_ctx c = { n, 1 };

	(void)revents;
	for (int i = 0; i < MONITOR_BATCH; i++) {
		struct sockaddr_nl from;
		socklen_t flen = sizeof(from);
		ssize_t r = recvfrom(fd, n->buf, MONITOR_BUF, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ENOBUFS) {
			/* The kernel dropped notices: learn the state again. */
			va_log_warnx("net events: notices were lost (the socket's buffer overflowed); "
				     "changes meanwhile send no event");
			resync(n);
			continue;
		}
		if (r <= 0)
			return;
		/* Only the kernel's notices (a local process could send to us). */
		if (flen != sizeof(from) || from.nl_pid != 0)
			continue;
		va_nl_walk(n->buf, (size_t)r, on_notice, &c);
	}
}

static int
net_init(struct va_agent *a, void **state)
{
	struct net *n = calloc(1, sizeof(*n));

	if (!n)
		return -1;
	n->a = a;
	n->fd = -1;
	*state = n;
	if (!(va_agent_config(a)->events & VA_EVENTS_NET))
		return 0;
	n->links = calloc(VA_NET_MAX_INTERFACES, sizeof(*n->links));
	n->addrs = calloc(VA_NET_MAX_ADDRESSES, sizeof(*n->addrs));
	n->buf = malloc(MONITOR_BUF);
	if (!n->links || !n->addrs || !n->buf)
		return -1;
	/* Subscribe first, then read the state: nothing falls in between. */
	int fd = va_nl_monitor(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
	if (fd < 0) {
		va_log_warnx("net events: no netlink subscription: %s; no net.* events", strerror(-fd));
		return 0;
	}
	if (va_loop_fd_set(va_agent_loop(a), fd, POLLIN, on_monitor, n) < 0) {
		close(fd);
		return -1;
	}
	n->fd = fd;
	resync(n);
	return 0;
}

static void
net_cleanup(void *state)
{
	struct net *n = state;

	if (n->fd >= 0) {
		va_loop_fd_clear(va_agent_loop(n->a), n->fd);
		close(n->fd);
	}
	free(n->links);
	free(n->addrs);
	free(n->buf);
	free(n);
}

static const struct xmlrpc_method_info3 net_methods[] = {
	{
		.methodName = "va.net.interfaces",
		.methodFunction = method_interfaces,
		.signatureString = "A:",
		.help = "va.net.interfaces() -> array of struct {name, index, mac, type, up, "
			"running, carrier, operstate, mtu, [alias], stats: {rx_bytes, rx_packets, "
			"rx_errors, rx_dropped, tx_bytes, tx_packets, tx_errors, tx_dropped} (i8), "
			"addresses: array of {family (ipv4, ipv6), address, prefix, scope, "
			"[tentative], [label]}}. Read from rtnetlink.",
	},
	{
		.methodName = "va.net.routes",
		.methodFunction = method_routes,
		.signatureString = "A:",
		.help = "va.net.routes() -> array of struct {family, destination, prefix, "
			"gateway, interface, interface_index, source, metric, table, protocol, "
			"scope, type, [nexthops]}: the IPv4 and IPv6 routes of every table but "
			"local (at most 4096). Read from rtnetlink.",
	},
};

const struct va_method_group va_group_net = {
	.name = "net",
	VA_GROUP_METHODS(net_methods),
	.init = net_init,
	.cleanup = net_cleanup,
};
