/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-guestops.c - CUnit tests of the guest agent's operations groups
 * (issue 14): the parsers of what the kernel gives (rtnetlink messages,
 * mountinfo, sysfs trees, utmp records, CPU lists, /proc/stat,
 * /proc/meminfo, /proc/diskstats, /dev/kmsg records, the freeze state
 * file), fed exact and malformed input; the text of guest data (U+FFFD
 * and _raw); the jobs on threads; and the freeze group's gate in a real
 * core (core.c): a state file left frozen makes the agent refuse all but
 * four methods, va.fs.thaw and the watchdog thaw.
 *
 * The methods themselves run against the real kernel in
 * tests/e2e-guestops.py (over sockets, with a real proxy) and in the
 * QEMU guest (tests/vm/run-tests.py).
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utmpx.h>

#include <linux/if_link.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "agent.h"
#include "cpu.h"
#include "disks.h"
#include "freeze.h"
#include "groups.h"
#include "jobs.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "mounts.h"
#include "net.h"
#include "netlink.h"
#include "oom.h"
#include "text.h"
#include "users.h"

#include "cunit-main.h"

static char tmpdir[96];

/* ---- values ------------------------------------------------------------------ */

static xmlrpc_value *
get(xmlrpc_value *st, const char *key)
{
	xmlrpc_env env;
	xmlrpc_value *m = NULL;
	xmlrpc_env_init(&env);
	xmlrpc_struct_find_value(&env, st, key, &m);
	xmlrpc_env_clean(&env);
	return m;
}

/* A member as raw text (the value form undone), malloc'd; NULL when absent. */
static char *
text_of(xmlrpc_value *st, const char *key)
{
	xmlrpc_value *m = get(st, key);
	char *s = NULL;
	if (!m)
		return NULL;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	va_text_read(&env, m, &s, NULL);
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(m);
	return s;
}

static int
text_is(xmlrpc_value *st, const char *key, const char *want)
{
	char *s = text_of(st, key);
	int ok = s && strcmp(s, want) == 0;
	if (!ok)
		fprintf(stderr, "\n%s: got \"%s\", want \"%s\"\n", key, s ? s : "(none)", want);
	free(s);
	return ok;
}

static int64_t
int_of(xmlrpc_value *st, const char *key)
{
	xmlrpc_value *m = get(st, key);
	xmlrpc_env env;
	int64_t v = INT64_MIN;
	if (!m)
		return v;
	xmlrpc_env_init(&env);
	if (xmlrpc_value_type(m) == XMLRPC_TYPE_INT) {
		int i;
		xmlrpc_read_int(&env, m, &i);
		v = i;
	} else if (xmlrpc_value_type(m) == XMLRPC_TYPE_I8) {
		xmlrpc_int64 i;
		xmlrpc_read_i8(&env, m, &i);
		v = i;
	} else if (xmlrpc_value_type(m) == XMLRPC_TYPE_BOOL) {
		xmlrpc_bool b;
		xmlrpc_read_bool(&env, m, &b);
		v = b;
	}
	xmlrpc_env_clean(&env);
	xmlrpc_DECREF(m);
	return v;
}

static int
count_of(xmlrpc_value *arr)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	int n = xmlrpc_array_size(&env, arr);
	xmlrpc_env_clean(&env);
	return n;
}

static xmlrpc_value *
item(xmlrpc_value *arr, int i)
{
	xmlrpc_env env;
	xmlrpc_value *v = NULL;
	xmlrpc_env_init(&env);
	xmlrpc_array_read_item(&env, arr, (unsigned)i, &v);
	xmlrpc_env_clean(&env);
	return v;
}

/* ---- guest text ------------------------------------------------------------- */

static void
test_lossy_text(void)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *st = xmlrpc_struct_new(&env);

	/* Exact text travels as it is: emoji, CR, U+E000. */
	va_set_text_z(&env, st, "a", "caf\xc3\xa9 \xf0\x9f\x98\x80 a\rb \xee\x80\x80");
	CU_ASSERT_TRUE(text_is(st, "a", "caf\xc3\xa9 \xf0\x9f\x98\x80 a\rb \xee\x80\x80"));
	CU_ASSERT_PTR_NULL(get(st, "a_raw"));
	/* Bytes XML cannot carry: U+FFFD each, and the exact bytes in base64. */
	static const char bad[] = "x\x01y\xffz\xc3";
	va_set_text(&env, st, "b", bad, sizeof(bad) - 1);
	CU_ASSERT_TRUE(text_is(st, "b", "x\xef\xbf\xbdy\xef\xbf\xbdz\xef\xbf\xbd"));
	xmlrpc_value *raw = get(st, "b_raw");
	CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
	CU_ASSERT_EQUAL(xmlrpc_value_type(raw), XMLRPC_TYPE_BASE64);
	const unsigned char *data = NULL;
	size_t len = 0;
	xmlrpc_read_base64(&env, raw, &len, &data);
	CU_ASSERT(len == sizeof(bad) - 1 && memcmp(data, bad, len) == 0);
	free((void *)data);
	xmlrpc_DECREF(raw);
	/* NUL inside: replaced too. */
	va_set_text(&env, st, "c", "a\0b", 3);
	CU_ASSERT_TRUE(text_is(st, "c", "a\xef\xbf\xbd" "b"));
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_DECREF(st);
	xmlrpc_env_clean(&env);
}

static void
test_read_file(void)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/small", tmpdir);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 10000; i++)
		fputc('a' + i % 26, f);
	fclose(f);
	size_t len = 0;
	int cut = -1;
	char *s = va_read_file(path, 20000, &len, &cut);
	CU_ASSERT(s && len == 10000 && cut == 0 && s[len] == '\0');
	free(s);
	s = va_read_file(path, 10000, &len, &cut);
	CU_ASSERT(s && len == 10000 && cut == 0);
	free(s);
	s = va_read_file(path, 9999, &len, &cut);
	CU_ASSERT(s && len == 9999 && cut == 1 && s[9998] == 'a' + 9998 % 26);
	free(s);
	errno = 0;
	CU_ASSERT_PTR_NULL(va_read_file("/nonexistent/x", 10, &len, NULL));
	CU_ASSERT_EQUAL(errno, ENOENT);
	/* procfs: a size of 0, read to its end. */
	s = va_read_file("/proc/self/status", 65536, &len, &cut);
	CU_ASSERT(s && len > 100 && strstr(s, "Name:") != NULL);
	free(s);
}

/* ---- netlink ------------------------------------------------------------------ */

struct msgbuf {
	uint8_t b[4096] __attribute__((aligned(8)));
	size_t len;
	struct nlmsghdr *h;
};

static void
msg_start(struct msgbuf *m, uint16_t type, const void *hdr, size_t hlen)
{
	m->h = (struct nlmsghdr *)(m->b + m->len);
	memset(m->h, 0, sizeof(*m->h));
	m->h->nlmsg_type = type;
	memcpy(NLMSG_DATA(m->h), hdr, hlen);
	m->h->nlmsg_len = (uint32_t)NLMSG_LENGTH(NLMSG_ALIGN(hlen));
}

static void
msg_attr(struct msgbuf *m, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((uint8_t *)m->h + NLMSG_ALIGN(m->h->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	m->h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(m->h->nlmsg_len) + RTA_ALIGN(a->rta_len));
}

static void
msg_end(struct msgbuf *m)
{
	m->len += NLMSG_ALIGN(m->h->nlmsg_len);
}

static int walked;

static int
count_msg(void *arg, const struct nlmsghdr *h)
{
	(void)arg;
	(void)h;
	walked++;
	return 0;
}

static void
test_netlink_walk(void)
{
	struct msgbuf m = { .len = 0 };
	struct ifinfomsg ifi = { .ifi_index = 1 };

	msg_start(&m, RTM_NEWLINK, &ifi, sizeof(ifi));
	msg_end(&m);
	msg_start(&m, RTM_NEWLINK, &ifi, sizeof(ifi));
	msg_end(&m);
	walked = 0;
	CU_ASSERT_EQUAL(va_nl_walk(m.b, m.len, count_msg, NULL), 0);
	CU_ASSERT_EQUAL(walked, 2);
	/* Every cut: never a read past the end, a short message is an error. */
	for (size_t cut = 0; cut < m.len; cut++) {
		walked = 0;
		int r = va_nl_walk(m.b, cut, count_msg, NULL);
		CU_ASSERT(r == 0 || r == -EBADMSG);
	}
	/* A length that points past the datagram. */
	m.h->nlmsg_len = 5000;
	CU_ASSERT_EQUAL(va_nl_walk(m.b, m.len, count_msg, NULL), -EBADMSG);
	/* NLMSG_DONE and NLMSG_ERROR. */
	struct msgbuf d = { .len = 0 };
	int zero = 0;
	msg_start(&d, NLMSG_DONE, &zero, sizeof(zero));
	msg_end(&d);
	CU_ASSERT_EQUAL(va_nl_walk(d.b, d.len, count_msg, NULL), 1);
	struct msgbuf e = { .len = 0 };
	struct nlmsgerr err = { .error = -EPERM };
	msg_start(&e, NLMSG_ERROR, &err, sizeof(err));
	msg_end(&e);
	CU_ASSERT_EQUAL(va_nl_walk(e.b, e.len, count_msg, NULL), -EPERM);

	/* Attributes whose length lies: the walk stops, what came before stays. */
	struct msgbuf a = { .len = 0 };
	msg_start(&a, RTM_NEWLINK, &ifi, sizeof(ifi));
	uint32_t mtu = 1500;
	msg_attr(&a, IFLA_MTU, &mtu, 4);
	struct rtattr *bad = (struct rtattr *)((uint8_t *)a.h + NLMSG_ALIGN(a.h->nlmsg_len));
	msg_attr(&a, IFLA_IFNAME, "eth0", 5);
	bad->rta_len = 4000;
	const struct rtattr *tb[IFLA_MAX + 1];
	CU_ASSERT_EQUAL(va_nl_attrs(a.h, sizeof(ifi), tb, IFLA_MAX), 0);
	CU_ASSERT_EQUAL(va_nl_u32(tb[IFLA_MTU], 0), 1500);
	CU_ASSERT_PTR_NULL(tb[IFLA_IFNAME]);
	/* A message shorter than its header. */
	a.h->nlmsg_len = NLMSG_LENGTH(4);
	CU_ASSERT_EQUAL(va_nl_attrs(a.h, sizeof(ifi), tb, IFLA_MAX), -EBADMSG);
	/* A u32 of the wrong size is the default. */
	struct msgbuf u = { .len = 0 };
	msg_start(&u, RTM_NEWLINK, &ifi, sizeof(ifi));
	msg_attr(&u, IFLA_MTU, "ab", 2);
	va_nl_attrs(u.h, sizeof(ifi), tb, IFLA_MAX);
	CU_ASSERT_EQUAL(va_nl_u32(tb[IFLA_MTU], 7), 7);
}

static void
test_net_parsers(void)
{
	xmlrpc_env env;
	struct msgbuf m = { .len = 0 };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_type = ARPHRD_ETHER, .ifi_index = 3,
				 .ifi_flags = IFF_UP | IFF_RUNNING };
	uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint32_t mtu = 9000;
	uint8_t oper = 6;
	struct rtnl_link_stats64 st;
	int index = 0;

	xmlrpc_env_init(&env);
	memset(&st, 0, sizeof(st));
	st.rx_bytes = 5000000000ull;
	st.tx_dropped = 7;
	msg_start(&m, RTM_NEWLINK, &ifi, sizeof(ifi));
	msg_attr(&m, IFLA_IFNAME, "eth\x01" "0", 6); /* a control character in the name */
	msg_attr(&m, IFLA_ADDRESS, mac, 6);
	msg_attr(&m, IFLA_MTU, &mtu, 4);
	msg_attr(&m, IFLA_OPERSTATE, &oper, 1);
	msg_attr(&m, IFLA_STATS64, &st, sizeof(st));
	msg_attr(&m, IFLA_IFALIAS, "uplink \xff", 9);
	xmlrpc_value *v = va_net_link_value(&env, m.h, &index);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(index, 3);
	CU_ASSERT_TRUE(text_is(v, "name", "eth\xef\xbf\xbd" "0"));
	xmlrpc_value *raw = get(v, "name_raw");
	CU_ASSERT_PTR_NOT_NULL(raw);
	if (raw)
		xmlrpc_DECREF(raw);
	CU_ASSERT_TRUE(text_is(v, "mac", "52:54:00:12:34:56"));
	CU_ASSERT_TRUE(text_is(v, "type", "ether"));
	CU_ASSERT_TRUE(text_is(v, "operstate", "up"));
	CU_ASSERT_TRUE(text_is(v, "alias", "uplink \xef\xbf\xbd"));
	CU_ASSERT_EQUAL(int_of(v, "mtu"), 9000);
	CU_ASSERT_EQUAL(int_of(v, "up"), 1);
	CU_ASSERT_EQUAL(int_of(v, "carrier"), 0);
	xmlrpc_value *stats = get(v, "stats");
	CU_ASSERT_EQUAL(int_of(stats, "rx_bytes"), 5000000000ll);
	CU_ASSERT_EQUAL(int_of(stats, "tx_dropped"), 7);
	xmlrpc_DECREF(stats);
	xmlrpc_DECREF(v);

	/* An address: IFA_LOCAL wins for IPv4 (point-to-point links). */
	struct msgbuf a = { .len = 0 };
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = 3 };
	uint8_t local[4] = { 10, 0, 2, 15 }, peer[4] = { 10, 0, 2, 2 };
	msg_start(&a, RTM_NEWADDR, &ifa, sizeof(ifa));
	msg_attr(&a, IFA_ADDRESS, peer, 4);
	msg_attr(&a, IFA_LOCAL, local, 4);
	v = va_net_addr_value(&env, a.h, &index);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_TRUE(text_is(v, "address", "10.0.2.15"));
	CU_ASSERT_TRUE(text_is(v, "family", "ipv4"));
	CU_ASSERT_EQUAL(int_of(v, "prefix"), 24);
	xmlrpc_DECREF(v);
	/* An address of the wrong size: a fault, not a read past it. */
	struct msgbuf b = { .len = 0 };
	ifa.ifa_family = AF_INET6;
	msg_start(&b, RTM_NEWADDR, &ifa, sizeof(ifa));
	msg_attr(&b, IFA_ADDRESS, local, 4);
	v = va_net_addr_value(&env, b.h, &index);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_TRUE(env.fault_occurred);
	xmlrpc_env_clean(&env);
	xmlrpc_env_init(&env);

	/* A route with two nexthops; the local table is not reported. */
	struct msgbuf r = { .len = 0 };
	struct rtmsg rt = { .rtm_family = AF_INET, .rtm_dst_len = 0, .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_STATIC, .rtm_scope = RT_SCOPE_UNIVERSE,
			    .rtm_type = RTN_UNICAST };
	msg_start(&r, RTM_NEWROUTE, &rt, sizeof(rt));
	uint8_t mp[64];
	size_t o = 0;
	for (int i = 0; i < 2; i++) {
		struct rtnexthop nh = { .rtnh_len = RTNH_LENGTH(RTA_LENGTH(4)), .rtnh_hops = (unsigned char)i,
					.rtnh_ifindex = 3 + i };
		memcpy(mp + o, &nh, sizeof(nh));
		struct rtattr gw = { .rta_len = RTA_LENGTH(4), .rta_type = RTA_GATEWAY };
		memcpy(mp + o + RTNH_ALIGN(sizeof(nh)), &gw, sizeof(gw));
		uint8_t g[4] = { 192, 168, 0, (uint8_t)(1 + i) };
		memcpy(mp + o + RTNH_ALIGN(sizeof(nh)) + sizeof(gw), g, 4);
		o += RTNH_ALIGN(nh.rtnh_len);
	}
	msg_attr(&r, RTA_MULTIPATH, mp, o);
	v = va_net_route_value(&env, r.h, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_TRUE(text_is(v, "destination", "0.0.0.0"));
	CU_ASSERT_TRUE(text_is(v, "protocol", "static"));
	xmlrpc_value *nhs = get(v, "nexthops");
	CU_ASSERT_EQUAL_FATAL(count_of(nhs), 2);
	xmlrpc_value *n1 = item(nhs, 1);
	CU_ASSERT_TRUE(text_is(n1, "gateway", "192.168.0.2"));
	CU_ASSERT_EQUAL(int_of(n1, "interface_index"), 4);
	CU_ASSERT_EQUAL(int_of(n1, "weight"), 2);
	xmlrpc_DECREF(n1);
	xmlrpc_DECREF(nhs);
	xmlrpc_DECREF(v);
	struct msgbuf l = { .len = 0 };
	rt.rtm_table = RT_TABLE_LOCAL;
	msg_start(&l, RTM_NEWROUTE, &rt, sizeof(rt));
	CU_ASSERT_PTR_NULL(va_net_route_value(&env, l.h, NULL, NULL));
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_env_clean(&env);
}

/* ---- mounts ---------------------------------------------------------------------- */

static void
test_mounts(void)
{
	static const char text[] =
		"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		"25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
		"30 25 254:16 / /mnt/with\\040space\\012nl rw master:2 shared:3 - xfs /dev/vdb ro,attr2\n"
		"31 25 254:1 /srv /bind rw - ext4 /dev/vda1 rw\n"
		"32 25 0:40 / /net rw - nfs4 server:/export rw\n"
		"33 25 0:41 / /sub ro - btrfs /dev/sdb2 rw\n"
		"34 25 0:50 / /fuse rw - fuse.sshfs me@host: rw\n"
		"malformed line\n"
		"35 25 254:1 / /twice rw - ext4 /dev/vda1 rw\n"
		"36 25 0:60 / /twice rw - tmpfs tmpfs rw\n"
		"37 25 254:32 / /tail rw - ext4";
	struct va_mounts m;

	CU_ASSERT_EQUAL_FATAL(va_mounts_parse(text, sizeof(text) - 1, &m), 0);
	CU_ASSERT_EQUAL(m.n, 9);
	CU_ASSERT_EQUAL(m.skipped, 2); /* the malformed line and the cut one */
	const struct va_mount *w = va_mounts_find(&m, "/mnt/with space\nnl");
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_STRING_EQUAL(w->type, "xfs");
	CU_ASSERT_EQUAL(w->major, 254);
	CU_ASSERT_EQUAL(w->minor, 16);
	CU_ASSERT_TRUE(w->readonly); /* ro in the superblock's options */
	CU_ASSERT_TRUE(va_mount_pseudo(&m.v[0]));
	CU_ASSERT_TRUE(va_mount_local_disk(&m.v[1]));
	CU_ASSERT_FALSE(va_mount_local_disk(va_mounts_find(&m, "/net")));
	CU_ASSERT_FALSE(va_mount_local_disk(va_mounts_find(&m, "/fuse")));
	CU_ASSERT_TRUE(va_mount_local_disk(va_mounts_find(&m, "/sub"))); /* btrfs: 0:N, /dev/ */
	/* The last mount at a place hides the others. */
	CU_ASSERT_STRING_EQUAL(va_mounts_find(&m, "/twice")->type, "tmpfs");
	/* Writable local disks, each filesystem once: / only (bind and /twice are vda1 too). */
	int n = 0;
	for (size_t i = 0; i < m.n; i++)
		if (va_mounts_writable_disk(&m, i)) {
			n++;
			CU_ASSERT_STRING_EQUAL(m.v[i].mountpoint, "/");
		}
	CU_ASSERT_EQUAL(n, 1);
	va_mounts_free(&m);

	/* Every cut of the text parses without reading past it. */
	for (size_t cut = 0; cut < sizeof(text) - 1; cut += 7) {
		char *copy = malloc(cut + 1);
		memcpy(copy, text, cut);
		CU_ASSERT_EQUAL(va_mounts_parse(copy, cut, &m), 0);
		va_mounts_free(&m);
		free(copy);
	}
	/* The agent's own mount table. */
	CU_ASSERT_EQUAL(va_mounts_read(&m), 0);
	CU_ASSERT_PTR_NOT_NULL(va_mounts_find(&m, "/"));
	va_mounts_free(&m);
}

/* ---- sysfs trees ----------------------------------------------------------------- */

static void
mkfile(const char *rel, const void *data, size_t len)
{
	char p[512], dir[512];
	snprintf(p, sizeof(p), "%s/root%s", tmpdir, rel);
	snprintf(dir, sizeof(dir), "%s", p);
	for (char *s = dir + strlen(tmpdir) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(dir, 0755);
		*s = '/';
	}
	if (data) {
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CU_ASSERT_TRUE_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
		close(fd);
	} else {
		mkdir(p, 0755);
	}
}

static void
mklink(const char *rel, const char *target)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/root%s", tmpdir, rel);
	mkfile(rel, NULL, 0);
	rmdir(p);
	CU_ASSERT_EQUAL(symlink(target, p), 0);
}

#define MKFILE(rel, s) mkfile(rel, s, sizeof(s) - 1)

static void
build_sysfs(void)
{
	/* vda: virtio-blk on 0000:00:05.0 with a serial and a partition. */
	static const char *const vda[][2] = {
		{ "serial", "vadisk1\n" }, { "size", "131072\n" }, { "dev", "254:0\n" },
		{ "vda1/partition", "1\n" }, { "vda1/size", "2048\n" }, { "vda1/start", "2048\n" },
		{ "vda1/dev", "254:1\n" },
	};
	char p[256];
	for (size_t i = 0; i < sizeof(vda) / sizeof(vda[0]); i++) {
		snprintf(p, sizeof(p), "/sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vda/%s", vda[i][0]);
		mkfile(p, vda[i][1], strlen(vda[i][1]));
	}
	mkfile("/sys/devices/pci0000:00/0000:00:05.0/virtio2/x", NULL, 0);
	mklink("/sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vda/device", "../../../virtio2");
	mklink("/sys/block/vda", "../devices/pci0000:00/0000:00:05.0/virtio2/block/vda");
	mklink("/sys/dev/block/254:1", "../../devices/pci0000:00/0000:00:05.0/virtio2/block/vda/vda1");
	/* sda: SCSI behind virtio-scsi, its serial in VPD page 0x80. */
	const char *tgt = "/sys/devices/pci0000:00/0000:00:06.0/virtio3/host0/target0:0:0/0:0:0:0";
	snprintf(p, sizeof(p), "%s/vpd_pg80", tgt);
	static const char vpd[] = "\x00\x80\x00\x08  SER 42";
	mkfile(p, vpd, sizeof(vpd) - 1);
	snprintf(p, sizeof(p), "%s/model", tgt);
	MKFILE(p, "QEMU HARDDISK   \n");
	snprintf(p, sizeof(p), "%s/block/sda/size", tgt);
	MKFILE(p, "2097152\n");
	snprintf(p, sizeof(p), "%s/block/sda/device", tgt);
	mklink(p, "../../../0:0:0:0");
	mklink("/sys/block/sda", "../devices/pci0000:00/0000:00:06.0/virtio3/host0/target0:0:0/0:0:0:0/block/sda");
	/* dm-0: built on vda1 and sda. */
	MKFILE("/sys/devices/virtual/block/dm-0/size", "100\n");
	MKFILE("/sys/devices/virtual/block/dm-0/dev", "253:0\n");
	mklink("/sys/devices/virtual/block/dm-0/slaves/vda1",
	       "../../../../pci0000:00/0000:00:05.0/virtio2/block/vda/vda1");
	mklink("/sys/devices/virtual/block/dm-0/slaves/sda",
	       "../../../../pci0000:00/0000:00:06.0/virtio3/host0/target0:0:0/0:0:0:0/block/sda");
	mklink("/sys/block/dm-0", "../devices/virtual/block/dm-0");
	mklink("/sys/dev/block/253:0", "../../devices/virtual/block/dm-0");
	/* ram0: not listed. */
	MKFILE("/sys/devices/virtual/block/ram0/size", "8192\n");
	mklink("/sys/block/ram0", "../devices/virtual/block/ram0");
}

static void
test_disks(void)
{
	char root[160];
	xmlrpc_env env;

	snprintf(root, sizeof(root), "%s/root", tmpdir);
	build_sysfs();
	xmlrpc_env_init(&env);

	xmlrpc_value *d = va_disk_value(&env, root, "vda");
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(text_is(d, "serial", "vadisk1"));
	CU_ASSERT_TRUE(text_is(d, "bus", "virtio"));
	CU_ASSERT_TRUE(text_is(d, "pci_address", "0000:00:05.0"));
	CU_ASSERT_TRUE(text_is(d, "path", "/dev/vda"));
	CU_ASSERT_EQUAL(int_of(d, "size_bytes"), 131072ll * 512);
	xmlrpc_DECREF(d);
	d = va_disk_value(&env, root, "sda");
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(text_is(d, "serial", "SER 42"));
	CU_ASSERT_TRUE(text_is(d, "bus", "scsi"));
	CU_ASSERT_TRUE(text_is(d, "model", "QEMU HARDDISK"));
	CU_ASSERT_TRUE(text_is(d, "pci_address", "0000:00:06.0"));
	xmlrpc_DECREF(d);
	CU_ASSERT_PTR_NULL(va_disk_value(&env, root, "../../etc"));
	CU_ASSERT_EQUAL(env.fault_code, XMLRPC_INDEX_ERROR);
	xmlrpc_env_clean(&env);
	xmlrpc_env_init(&env);

	/* A partition's disk. */
	xmlrpc_value *arr = va_disks_of(&env, root, 254, 1);
	CU_ASSERT_EQUAL_FATAL(count_of(arr), 1);
	d = item(arr, 0);
	CU_ASSERT_TRUE(text_is(d, "name", "vda"));
	xmlrpc_DECREF(d);
	xmlrpc_DECREF(arr);
	/* A device-mapper device: the disks under it (vda1 -> vda, sda). */
	arr = va_disks_of(&env, root, 253, 0);
	CU_ASSERT_EQUAL_FATAL(count_of(arr), 2);
	char *a = text_of(d = item(arr, 0), "name");
	xmlrpc_DECREF(d);
	char *b = text_of(d = item(arr, 1), "name");
	xmlrpc_DECREF(d);
	CU_ASSERT((!strcmp(a, "vda") && !strcmp(b, "sda")) || (!strcmp(a, "sda") && !strcmp(b, "vda")));
	free(a);
	free(b);
	xmlrpc_DECREF(arr);
	/* Not a block device of sysfs (tmpfs's 0:N): no disks. */
	arr = va_disks_of(&env, root, 0, 45);
	CU_ASSERT_EQUAL(count_of(arr), 0);
	xmlrpc_DECREF(arr);

	/* The list: sorted, no ram0, partitions and mounts of vda. */
	static const char mi[] = "25 1 254:1 / /data rw - ext4 /dev/vda1 rw\n";
	struct va_mounts m;
	va_mounts_parse(mi, sizeof(mi) - 1, &m);
	arr = va_disks_list(&env, root, &m);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_EQUAL_FATAL(count_of(arr), 3);
	d = item(arr, 2);
	CU_ASSERT_TRUE(text_is(d, "name", "vda"));
	xmlrpc_value *parts = get(d, "partitions"), *mps = get(d, "mountpoints");
	CU_ASSERT_EQUAL(count_of(parts), 1);
	CU_ASSERT_EQUAL(count_of(mps), 1);
	xmlrpc_value *p0 = item(parts, 0);
	CU_ASSERT_EQUAL(int_of(p0, "start_sector"), 2048);
	xmlrpc_DECREF(p0);
	xmlrpc_DECREF(parts);
	xmlrpc_DECREF(mps);
	xmlrpc_DECREF(d);
	d = item(arr, 0);
	CU_ASSERT_TRUE(text_is(d, "name", "dm-0"));
	xmlrpc_value *sl = get(d, "slaves");
	CU_ASSERT_EQUAL(count_of(sl), 2);
	xmlrpc_DECREF(sl);
	xmlrpc_DECREF(d);
	xmlrpc_DECREF(arr);
	va_mounts_free(&m);
	xmlrpc_env_clean(&env);

	/* Buses from paths. */
	char pci[16];
	CU_ASSERT_STRING_EQUAL(va_disk_bus("/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0",
					   pci, sizeof(pci)), "ata");
	CU_ASSERT_STRING_EQUAL(pci, "0000:00:1f.2");
	CU_ASSERT_STRING_EQUAL(va_disk_bus("/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0", pci,
					   sizeof(pci)), "nvme");
	CU_ASSERT_STRING_EQUAL(va_disk_bus("/sys/devices/pci0000:00/0000:00:1d.0/usb2/2-1/2-1:1.0/host6/"
					   "target6:0:0/6:0:0:0", pci, sizeof(pci)), "usb");
	CU_ASSERT_STRING_EQUAL(va_disk_bus("/sys/devices/platform/foo", pci, sizeof(pci)), "");
	CU_ASSERT_STRING_EQUAL(pci, "");
}

/* ---- utmp ----------------------------------------------------------------------------- */

static void
test_users(void)
{
	struct utmpx u[4];
	xmlrpc_env env;

	memset(u, 0, sizeof(u));
	u[0].ut_type = USER_PROCESS;
	u[0].ut_pid = 1234;
	memcpy(u[0].ut_user, "alice", 5);
	memcpy(u[0].ut_line, "pts/0", 5);
	memcpy(u[0].ut_host, "10.0.2.2", 8);
	u[0].ut_tv.tv_sec = 1700000000;
	u[0].ut_tv.tv_usec = 500000;
	u[1].ut_type = DEAD_PROCESS; /* logged out */
	memcpy(u[1].ut_user, "bob", 3);
	u[2].ut_type = USER_PROCESS;
	/* A name that fills the field, no NUL, with a byte that is not UTF-8. */
	memset(u[2].ut_user, 'x', sizeof(u[2].ut_user));
	u[2].ut_user[3] = (char)0xff;
	memcpy(u[2].ut_line, "tty1", 4);
	u[3].ut_type = LOGIN_PROCESS;
	xmlrpc_env_init(&env);
	xmlrpc_value *arr = va_users_parse(&env, u, sizeof(u));
	CU_ASSERT_EQUAL_FATAL(count_of(arr), 2);
	xmlrpc_value *a = item(arr, 0), *b = item(arr, 1);
	CU_ASSERT_TRUE(text_is(a, "user", "alice"));
	CU_ASSERT_TRUE(text_is(a, "host", "10.0.2.2"));
	CU_ASSERT_EQUAL(int_of(a, "pid"), 1234);
	xmlrpc_value *t = get(a, "login_time");
	double lt = 0;
	xmlrpc_read_double(&env, t, &lt);
	CU_ASSERT_DOUBLE_EQUAL(lt, 1700000000.5, 1e-6);
	xmlrpc_DECREF(t);
	char *name = text_of(b, "user");
	CU_ASSERT_EQUAL(strlen(name), sizeof(u[2].ut_user) - 1 + 3); /* 31 x + U+FFFD */
	free(name);
	xmlrpc_value *raw = get(b, "user_raw");
	CU_ASSERT_PTR_NOT_NULL(raw);
	if (raw)
		xmlrpc_DECREF(raw);
	xmlrpc_DECREF(a);
	xmlrpc_DECREF(b);
	xmlrpc_DECREF(arr);
	/* A torn last record is ignored. */
	arr = va_users_parse(&env, u, sizeof(u[0]) + 10);
	CU_ASSERT_EQUAL(count_of(arr), 1);
	xmlrpc_DECREF(arr);
	CU_ASSERT_FALSE(env.fault_occurred);
	xmlrpc_env_clean(&env);
}

/* ---- cpu and stats ----------------------------------------------------------------------- */

static void
test_cpu_lists(void)
{
	unsigned char *set = malloc(VA_CPU_MAX);

	CU_ASSERT_EQUAL(va_cpu_list_parse("0-3,8,10-11\n", set), 7);
	CU_ASSERT(set[0] && set[3] && !set[4] && set[8] && !set[9] && set[11]);
	CU_ASSERT_EQUAL(va_cpu_list_parse("0\n", set), 1);
	CU_ASSERT_EQUAL(va_cpu_list_parse("\n", set), 0);
	CU_ASSERT_EQUAL(va_cpu_list_parse("0-1,1-2", set), 3);
	CU_ASSERT_EQUAL(va_cpu_list_parse("0-99999999999999999999999", set), -1); /* ERANGE */
	CU_ASSERT_EQUAL(va_cpu_list_parse("3-1", set), -1);
	CU_ASSERT_EQUAL(va_cpu_list_parse("a", set), -1);
	CU_ASSERT_EQUAL(va_cpu_list_parse("1,", set), 1);
	CU_ASSERT_EQUAL(va_cpu_list_parse("-1", set), -1);
	CU_ASSERT_EQUAL(va_cpu_list_parse("1-", set), -1);
	CU_ASSERT_EQUAL(va_cpu_list_parse("1 2", set), -1);
	/* Huge ranges are cut at VA_CPU_MAX. */
	CU_ASSERT_EQUAL(va_cpu_list_parse("0-1000000", set), VA_CPU_MAX);
	free(set);
}

static void
test_stats_parsers(void)
{
	static const char stat[] =
		"cpu  100 2 30 4000 5 0 6 7 0 0\n"
		"cpu0 50 1 15 2000 2 0 3 4 0 0\n"
		"cpu1 50 1 15 2000 3 0 3 3\n"
		"intr 12345 0 0\n"
		"ctxt 999\n"
		"btime 1700000000\n"
		"processes 4242\n"
		"procs_running 2\n"
		"procs_blocked 1\n";
	static const char meminfo[] =
		"MemTotal:        2048000 kB\n"
		"MemFree:          100000 kB\n"
		"MemAvailable:    1000000 kB\n"
		"Buffers:            1000 kB\n"
		"Cached:            20000 kB\n"
		"SwapCached:            0 kB\n"
		"SwapTotal:             0 kB\n";
	static const char diskstats[] =
		" 254       0 vda 100 1 2000 30 40 2 800 50 0 70 80 0 0 0 0\n"
		"   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0\n"
		"   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0\n"
		" 254       1 vda1 garbage\n";
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *st = xmlrpc_struct_new(&env);

	va_stats_cpu(&env, st, stat, 100);
	va_stats_memory(&env, st, meminfo);
	va_stats_disks(&env, st, diskstats);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	xmlrpc_value *total = get(st, "total");
	CU_ASSERT_EQUAL(int_of(total, "user_ms"), 1000);
	CU_ASSERT_EQUAL(int_of(total, "steal_ms"), 70);
	xmlrpc_DECREF(total);
	xmlrpc_value *cpus = get(st, "cpus");
	CU_ASSERT_EQUAL_FATAL(count_of(cpus), 2);
	xmlrpc_value *c1 = item(cpus, 1);
	CU_ASSERT_EQUAL(int_of(c1, "cpu"), 1);
	CU_ASSERT_EQUAL(int_of(c1, "steal_ms"), 30);
	xmlrpc_DECREF(c1);
	xmlrpc_DECREF(cpus);
	CU_ASSERT_EQUAL(int_of(st, "context_switches"), 999);
	CU_ASSERT_EQUAL(int_of(st, "forks"), 4242);
	xmlrpc_value *mem = get(st, "memory");
	CU_ASSERT_EQUAL(int_of(mem, "total_bytes"), 2048000ll * 1024);
	CU_ASSERT_EQUAL(int_of(mem, "available_bytes"), 1000000ll * 1024);
	CU_ASSERT_EQUAL(int_of(mem, "swap_total_bytes"), 0);
	xmlrpc_DECREF(mem);
	xmlrpc_value *disks = get(st, "disks");
	CU_ASSERT_EQUAL_FATAL(count_of(disks), 1);
	xmlrpc_value *d = item(disks, 0);
	CU_ASSERT_TRUE(text_is(d, "name", "vda"));
	CU_ASSERT_EQUAL(int_of(d, "read_bytes"), 2000 * 512);
	CU_ASSERT_EQUAL(int_of(d, "writes"), 40);
	CU_ASSERT_EQUAL(int_of(d, "io_ms"), 70);
	xmlrpc_DECREF(d);
	xmlrpc_DECREF(disks);
	xmlrpc_DECREF(st);
	xmlrpc_env_clean(&env);
}

/* ---- kmsg ------------------------------------------------------------------------------- */

static void
test_oom_records(void)
{
	static const char rec[] =
		"3,1234,5000000,-;Out of memory: Killed process 4321 (my (odd) prog) total-vm:1024kB, "
		"anon-rss:512kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:1000\n"
		" SUBSYSTEM=x\n";
	static const char cg[] =
		"3,99,7,-;Memory cgroup out of memory: Killed process 77 (stress) total-vm:1kB\n";
	static const char other[] = "6,1,1,-;oom-kill:constraint=CONSTRAINT_NONE,task=sleep,pid=4321\n";
	static const char noisy[] = "6,1,1,-;Killed process 5 (x) for no reason\n";
	struct va_oom_kill k;

	CU_ASSERT_EQUAL_FATAL(va_oom_parse(rec, sizeof(rec) - 1, &k), 1);
	CU_ASSERT_EQUAL(k.pid, 4321);
	CU_ASSERT(k.name_len == 13 && memcmp(k.name, "my (odd) prog", 13) == 0);
	CU_ASSERT_EQUAL(k.kernel_time_us, 5000000);
	CU_ASSERT_FALSE(k.cgroup);
	CU_ASSERT_PTR_NULL(memchr(k.message, '\n', k.message_len));
	CU_ASSERT_EQUAL_FATAL(va_oom_parse(cg, sizeof(cg) - 1, &k), 1);
	CU_ASSERT_EQUAL(k.pid, 77);
	CU_ASSERT_TRUE(k.cgroup);
	CU_ASSERT_EQUAL(va_oom_parse(other, sizeof(other) - 1, &k), 0);
	CU_ASSERT_EQUAL(va_oom_parse(noisy, sizeof(noisy) - 1, &k), 0);
	/* Every cut of a record: no read past it. */
	for (size_t cut = 0; cut < sizeof(rec) - 1; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, rec, cut);
		va_oom_parse(copy, cut, &k);
		free(copy);
	}
}

/* ---- the freeze state file ------------------------------------------------------------------ */

static void
test_freeze_state(void)
{
	char path[200];
	char *paths[] = { "/", "/mnt/a b", "/mnt/new\nline", "/mnt/back\\slash", "/mnt/caf\xc3\xa9" };
	struct va_freeze_state st;

	snprintf(path, sizeof(path), "%s/frozen", tmpdir);
	CU_ASSERT_EQUAL(va_freeze_state_write(path, 1700000000, 1700000600, paths, 5), 0);
	size_t len = 0;
	char *text = va_read_file(path, 65536, &len, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mount /mnt/a\\040b\n"));
	CU_ASSERT_EQUAL(va_freeze_state_parse(text, len, &st), 0);
	CU_ASSERT_EQUAL(st.since, 1700000000);
	CU_ASSERT_EQUAL(st.deadline, 1700000600);
	CU_ASSERT_EQUAL_FATAL(st.n, 5);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_STRING_EQUAL(st.paths[i], paths[i]);
	va_freeze_state_clear(&st);
	/* Cut anywhere: parses or refuses, never more than it holds. */
	for (size_t cut = 0; cut < len; cut++) {
		int r = va_freeze_state_parse(text, cut, &st);
		CU_ASSERT(r == 0 || r == -EBADMSG);
		va_freeze_state_clear(&st);
	}
	free(text);
	static const char *const bad[] = {
		"", "virtagent-freeze 2\nsince 1\ndeadline 0\n", "virtagent-freeze 1\nsince x\ndeadline 0\n",
		"virtagent-freeze 1\ndeadline 0\n", "virtagent-freeze 1\nsince 1\ndeadline 0\nmount rel\n",
		"virtagent-freeze 1\nsince 1\ndeadline 0\nsomething\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(va_freeze_state_parse(bad[i], strlen(bad[i]), &st), -EBADMSG);
	CU_ASSERT_EQUAL(va_freeze_state_parse("virtagent-freeze 1\nsince 1\n\0deadline 0\n", 38, &st),
			-EBADMSG);
}

/* ---- jobs ------------------------------------------------------------------------------------- */

struct jt {
	int id;
	int worked, done, dropped;
	pthread_mutex_t *gate; /* held by the test: the job waits for it */
	int *order;
	int *norder;
};

static void
jt_work(void *arg)
{
	struct jt *j = arg;
	if (j->gate) {
		pthread_mutex_lock(j->gate);
		pthread_mutex_unlock(j->gate);
	}
	j->worked = 1;
}

static void
jt_done(void *arg)
{
	struct jt *j = arg;
	j->done = 1;
	j->order[(*j->norder)++] = j->id;
}

static void
jt_drop(void *arg)
{
	struct jt *j = arg;
	__atomic_store_n(&j->dropped, 1, __ATOMIC_SEQ_CST);
}

static void
test_jobs(void)
{
	va_loop *l = va_loop_new();
	struct va_jobs *js = va_jobs_new(l, 3);
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	struct jt j[5];
	int order[5], norder = 0;

	memset(j, 0, sizeof(j));
	for (int i = 0; i < 5; i++) {
		j[i].id = i;
		j[i].order = order;
		j[i].norder = &norder;
		j[i].gate = &gate;
	}
	pthread_mutex_lock(&gate);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(va_jobs_run(js, jt_work, jt_done, jt_drop, &j[i]), 0);
	CU_ASSERT_EQUAL(va_jobs_run(js, jt_work, jt_done, jt_drop, &j[3]), -EBUSY);
	CU_ASSERT_EQUAL(va_jobs_count(js), 3);
	pthread_mutex_unlock(&gate);
	uint64_t end = va_now_ms() + 5000;
	while (norder < 3 && va_now_ms() < end)
		va_loop_run_once(l, 50);
	CU_ASSERT_EQUAL(norder, 3);
	CU_ASSERT(j[0].done && j[1].done && j[2].done);
	CU_ASSERT_EQUAL(va_jobs_count(js), 0);

	/* Freed while a job runs: its done never comes, its drop does (on its thread). */
	pthread_mutex_lock(&gate);
	CU_ASSERT_EQUAL(va_jobs_run(js, jt_work, jt_done, jt_drop, &j[4]), 0);
	va_jobs_free(js);
	pthread_mutex_unlock(&gate);
	end = va_now_ms() + 5000;
	while (!__atomic_load_n(&j[4].dropped, __ATOMIC_SEQ_CST) && va_now_ms() < end)
		usleep(1000);
	CU_ASSERT_TRUE(j[4].dropped);
	CU_ASSERT_FALSE(j[4].done);
	va_loop_run_once(l, 0);
	CU_ASSERT_FALSE(j[4].done);
	va_loop_free(l);
}

/* ---- the gate in a real core ------------------------------------------------------------------ */

/* Calls method through a's registry (its preinvoke: the core's refusal step). */
static int
registry_call(struct va_agent *a, const char *method, xmlrpc_value **res, char **msg)
{
	xmlrpc_env env;
	xmlrpc_mem_block *out = NULL, *xml;
	int code = 0;
	const char *fs = NULL;

	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_array_new(&env);
	xml = xmlrpc_mem_block_new(&env, 0);
	xmlrpc_serialize_call2(&env, xml, method, params, xmlrpc_dialect_i8);
	xmlrpc_DECREF(params);
	xmlrpc_registry_process_call2(&env, va_agent_registry(a), xmlrpc_mem_block_contents(xml),
				      xmlrpc_mem_block_size(xml), NULL, &out);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	*res = NULL;
	xmlrpc_parse_response2(&env, xmlrpc_mem_block_contents(out), xmlrpc_mem_block_size(out), res,
			       &code, &fs);
	if (msg)
		*msg = fs ? strdup(fs) : NULL;
	free((void *)fs);
	xmlrpc_mem_block_free(out);
	xmlrpc_mem_block_free(xml);
	xmlrpc_env_clean(&env);
	return code;
}

static struct va_agent *
gated_agent(va_loop *l, struct va_agent_config *cfg)
{
	static const struct va_method_group *const groups[] = { &va_group_info, &va_group_freeze };
	char err[256];
	struct va_agent *a = va_agent_new(l, cfg, groups, 2, err, sizeof(err));
	if (!a)
		fprintf(stderr, "\nagent: %s\n", err);
	return a;
}

static void
test_gate(void)
{
	char state[200], dir[200];
	struct va_agent_config cfg;
	xmlrpc_value *res;
	char *msg = NULL;
	va_loop *l = va_loop_new();

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_frame = 1 << 20;
	snprintf(state, sizeof(state), "%s/gate.frozen", tmpdir);
	snprintf(dir, sizeof(dir), "%s/not-a-mount", tmpdir);
	cfg.freeze_state = state;

	/* Left frozen by an earlier agent, on a path FITHAW cannot open. */
	char *p1[] = { "/nonexistent/va-test" };
	CU_ASSERT_EQUAL(va_freeze_state_write(state, 1700000000, 0, p1, 1), 0);
	struct va_agent *a = gated_agent(l, &cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_TRUE(va_log_held());
	CU_ASSERT_EQUAL(registry_call(a, "va.info", &res, &msg), XMLRPC_REQUEST_REFUSED_ERROR);
	CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "va.info is refused: the guest's filesystems are frozen"));
	free(msg);
	CU_ASSERT_EQUAL(registry_call(a, "va.ping", &res, NULL), 0);
	xmlrpc_DECREF(res);
	CU_ASSERT_EQUAL(registry_call(a, "va.fs.status", &res, NULL), 0);
	CU_ASSERT_TRUE(text_is(res, "status", "frozen"));
	CU_ASSERT_EQUAL(int_of(res, "watchdog_s"), 0);
	xmlrpc_DECREF(res);
	/* va.fs.freeze is refused too: it is frozen. */
	CU_ASSERT_EQUAL(registry_call(a, "va.fs.freeze", &res, NULL), XMLRPC_REQUEST_REFUSED_ERROR);
	/* The thaw fails (no such path): still frozen, still refused. */
	CU_ASSERT_EQUAL(registry_call(a, "va.fs.thaw", &res, &msg), XMLRPC_INTERNAL_ERROR);
	CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "still frozen: /nonexistent/va-test"));
	free(msg);
	CU_ASSERT_EQUAL(registry_call(a, "va.info", &res, NULL), XMLRPC_REQUEST_REFUSED_ERROR);
	CU_ASSERT_EQUAL(access(state, F_OK), 0);
	va_agent_free(a);
	/* Stopping frozen keeps the state file for the next agent. */
	CU_ASSERT_EQUAL(access(state, F_OK), 0);
	va_log_release();

	/* A path FITHAW takes (not frozen: EINVAL counts as thawed; EPERM
	 * when not root), and a deadline passed: the watchdog thaws at once. */
	CU_ASSERT_EQUAL(mkdir(dir, 0755), 0);
	char *p2[] = { dir };
	CU_ASSERT_EQUAL(va_freeze_state_write(state, 1700000000, 1700000001, p2, 1), 0);
	cfg.freeze_timeout = 1;
	a = gated_agent(l, &cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(registry_call(a, "va.info", &res, NULL), XMLRPC_REQUEST_REFUSED_ERROR);
	/* The watchdog's timer is due: the thaw runs on a thread, ends on the loop. */
	uint64_t end = va_now_ms() + 5000;
	int status_thawed = 0;
	while (!status_thawed && va_now_ms() < end) {
		va_loop_run_once(l, 20);
		CU_ASSERT_EQUAL(registry_call(a, "va.fs.status", &res, NULL), 0);
		char *s = text_of(res, "status");
		status_thawed = strcmp(s, "thawed") == 0;
		free(s);
		xmlrpc_DECREF(res);
	}
	/* Without CAP_SYS_ADMIN FITHAW fails with EPERM: it stays frozen. */
	if (geteuid() == 0) {
		CU_ASSERT_TRUE(status_thawed);
		CU_ASSERT_FALSE(va_log_held());
		CU_ASSERT_NOT_EQUAL(access(state, F_OK), 0);
		CU_ASSERT_EQUAL(registry_call(a, "va.info", &res, NULL), 0);
		xmlrpc_DECREF(res);
		/* Thawed: va.fs.thaw answers 0. */
		CU_ASSERT_EQUAL(registry_call(a, "va.fs.thaw", &res, NULL), 0);
		CU_ASSERT_EQUAL(int_of(res, "thawed"), 0);
		xmlrpc_DECREF(res);
	}
	va_agent_free(a);
	va_log_release();

	/* A state file that does not parse: every local disk is thawed at once. */
	FILE *f = fopen(state, "w");
	fputs("garbage\n", f);
	fclose(f);
	a = gated_agent(l, &cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(registry_call(a, "va.fs.status", &res, NULL), 0);
	char *s = text_of(res, "status");
	CU_ASSERT(strcmp(s, "frozen") == 0 || strcmp(s, "thawing") == 0);
	free(s);
	xmlrpc_DECREF(res);
	va_agent_free(a);
	va_log_release();
	unlink(state);
	va_loop_free(l);
}

/* ---- main ---------------------------------------------------------------------------------------- */

int
main(void)
{
	static const struct va_test tests[] = {
		{ "guest text: U+FFFD and _raw", test_lossy_text },
		{ "bounded file reads", test_read_file },
		{ "netlink: walking messages and attributes", test_netlink_walk },
		{ "netlink: links, addresses, routes", test_net_parsers },
		{ "mountinfo", test_mounts },
		{ "disks from a sysfs tree", test_disks },
		{ "utmp records", test_users },
		{ "CPU lists", test_cpu_lists },
		{ "/proc/stat, meminfo, diskstats", test_stats_parsers },
		{ "OOM records of /dev/kmsg", test_oom_records },
		{ "the freeze state file", test_freeze_state },
		{ "jobs on threads", test_jobs },
		{ "the gate of a frozen agent, thaw, watchdog", test_gate },
	};
	int r;

	xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, 1 << 24);
	va_log_init("test-guestops", 0, getenv("VA_TEST_VERBOSE") ? VA_LOG_DEBUG : VA_LOG_ERROR);
	if (va_test_mkdtemp(tmpdir, sizeof(tmpdir), "va-test-guestops-") < 0) {
		perror("mkdtemp");
		return 2;
	}
	r = va_test_run("guest operations", VA_TESTS(tests));
	va_test_rmtree(tmpdir);
	return r;
}
