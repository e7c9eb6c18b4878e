/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tests of host/proxy/libvirt-xml.c: the virtagent channel of a libvirt
 * domain's XML.  The live XML of a real domain (libvirt 9.0, as virsh
 * dumpxml printed it), channels that are not ours or not usable, channels
 * where no device is (metadata, a description), the socket path's
 * length at and one past sun_path, a DTD with entities, every truncation
 * of a good XML, and a size over the limit.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cunit-main.h"
#include "libvirt-xml.h"

#define PATH1 "/var/lib/libvirt/qemu/channel/target/domain-2-vm1/org.qemu.virtagent"

/* What virsh dumpxml showed of a running domain with the channel element
 * of docs/LIBVIRT.md (shortened: some devices left out). */
static const char live_xml[] =
	"<domain type='qemu' id='2'>\n"
	"  <name>vm1</name>\n"
	"  <uuid>0b1c5ba4-8b0e-4d7a-9a62-6d4f0c1d2e3f</uuid>\n"
	"  <description>a &lt;test&gt; domain</description>\n"
	"  <memory unit='KiB'>262144</memory>\n"
	"  <os>\n"
	"    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>\n"
	"    <kernel>/tmp/lv/vmlinuz</kernel>\n"
	"  </os>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <controller type='virtio-serial' index='0'>\n"
	"      <alias name='virtio-serial0'/>\n"
	"    </controller>\n"
	"    <serial type='file'>\n"
	"      <source path='/tmp/lv/console1.log'/>\n"
	"      <target type='isa-serial' port='0'><model name='isa-serial'/></target>\n"
	"    </serial>\n"
	"    <channel type='unix'>\n"
	"      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-1-vm1/org.qemu.guest_agent.0'/>\n"
	"      <target type='virtio' name='org.qemu.guest_agent.0' state='disconnected'/>\n"
	"    </channel>\n"
	"    <channel type='unix'>\n"
	"      <source mode='bind' path='" PATH1 "'/>\n"
	"      <target type='virtio' name='org.qemu.virtagent' state='disconnected'/>\n"
	"      <alias name='channel0'/>\n"
	"      <address type='virtio-serial' controller='0' bus='0' port='1'/>\n"
	"    </channel>\n"
	"    <memballoon model='none'/>\n"
	"  </devices>\n"
	"</domain>\n";

static enum va_libvirt_xml_result
scan(const char *xml, char *path, char *why)
{
	return va_libvirt_xml_channel(xml, strlen(xml), path, why, 256);
}

/* A domain whose devices hold only this channel element (text inside <devices>). */
static enum va_libvirt_xml_result
scan_channel(const char *channel, char *path, char *why)
{
	char *xml = NULL;
	if (asprintf(&xml, "<domain type='kvm'><name>x</name><devices>%s</devices></domain>",
		     channel) < 0)
		abort();
	enum va_libvirt_xml_result r = scan(xml, path, why);
	free(xml);
	return r;
}

static void
test_live(void)
{
	char path[VA_LIBVIRT_PATH_MAX], why[256];

	CU_ASSERT_EQUAL(scan(live_xml, path, why), VA_LIBVIRT_XML_FOUND);
	CU_ASSERT_STRING_EQUAL(path, PATH1);
	/* The reverse order: ours first, the guest agent's after. */
	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><target type='virtio' "
				     "name='org.qemu.virtagent'/><source mode='bind' path='/a/b'/>"
				     "</channel><channel type='unix'><source mode='bind' "
				     "path='/c'/><target type='virtio' name='other'/></channel>",
				     path, why), VA_LIBVIRT_XML_FOUND);
	CU_ASSERT_STRING_EQUAL(path, "/a/b");
	/* Character references are the path's characters. */
	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><source mode='bind' "
				     "path='/x&amp;y/&#x73;ock'/><target type='virtio' "
				     "name='org.qemu.virtagent'/></channel>", path, why),
			VA_LIBVIRT_XML_FOUND);
	CU_ASSERT_STRING_EQUAL(path, "/x&y/sock");
}

static void
test_not_ours(void)
{
	char path[VA_LIBVIRT_PATH_MAX], why[256];

	CU_ASSERT_EQUAL(scan("<domain><name>x</name><devices/></domain>", path, why),
			VA_LIBVIRT_XML_NO_CHANNEL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "org.qemu.virtagent"));
	CU_ASSERT_STRING_EQUAL(path, "");
	/* qemu-ga's channel only. */
	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><source mode='bind' path='/a'/>"
				     "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
				     path, why), VA_LIBVIRT_XML_NO_CHANNEL);
	/* The name on a target of another type. */
	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><source mode='bind' path='/a'/>"
				     "<target type='guestfwd' name='org.qemu.virtagent'/></channel>",
				     path, why), VA_LIBVIRT_XML_NO_CHANNEL);
	/* A channel that is no device: in metadata, under a second devices
	 * element deeper down, or at the top. */
	static const char *const elsewhere[] = {
		"<domain><metadata><devices><channel type='unix'><source mode='bind' path='/m'/>"
		"<target type='virtio' name='org.qemu.virtagent'/></channel></devices></metadata>"
		"<devices/></domain>",
		"<domain><devices><x><channel type='unix'><source mode='bind' path='/m'/>"
		"<target type='virtio' name='org.qemu.virtagent'/></channel></x></devices></domain>",
		"<domain><channel type='unix'><source mode='bind' path='/m'/>"
		"<target type='virtio' name='org.qemu.virtagent'/></channel></domain>",
		"<domain><devices><channel type='unix'><x><source mode='bind' path='/m'/>"
		"<target type='virtio' name='org.qemu.virtagent'/></x></channel></devices></domain>",
	};
	for (size_t i = 0; i < sizeof(elsewhere) / sizeof(elsewhere[0]); i++) {
		CU_ASSERT_EQUAL(scan(elsewhere[i], path, why), VA_LIBVIRT_XML_NO_CHANNEL);
		CU_ASSERT_STRING_EQUAL(path, "");
	}
}

static void
test_unusable(void)
{
	char path[VA_LIBVIRT_PATH_MAX], why[256];

	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><source mode='connect' path='/a'/>"
				     "<target type='virtio' name='org.qemu.virtagent'/></channel>",
				     path, why), VA_LIBVIRT_XML_UNUSABLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "mode='connect'"));
	CU_ASSERT_EQUAL(scan_channel("<channel type='pty'><source path='/dev/pts/3'/>"
				     "<target type='virtio' name='org.qemu.virtagent'/></channel>",
				     path, why), VA_LIBVIRT_XML_UNUSABLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "'unix'"));
	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><source mode='bind' path='rel/a'/>"
				     "<target type='virtio' name='org.qemu.virtagent'/></channel>",
				     path, why), VA_LIBVIRT_XML_UNUSABLE);
	CU_ASSERT_EQUAL(scan_channel("<channel type='unix'><source mode='bind'/>"
				     "<target type='virtio' name='org.qemu.virtagent'/></channel>",
				     path, why), VA_LIBVIRT_XML_UNUSABLE);
	CU_ASSERT_STRING_EQUAL(path, "");
}

/* A path of exactly 107 bytes fits sun_path with its NUL; 108 does not. */
static void
test_path_length(void)
{
	char path[VA_LIBVIRT_PATH_MAX], why[256], longp[200], ch[400];

	for (size_t n = 105; n <= 109; n++) {
		memset(longp, 'p', n);
		longp[0] = '/';
		longp[n] = '\0';
		snprintf(ch, sizeof(ch), "<channel type='unix'><source mode='bind' path='%s'/>"
			 "<target type='virtio' name='org.qemu.virtagent'/></channel>", longp);
		enum va_libvirt_xml_result r = scan_channel(ch, path, why);
		if (n <= VA_LIBVIRT_PATH_MAX - 1) {
			CU_ASSERT_EQUAL(r, VA_LIBVIRT_XML_FOUND);
			CU_ASSERT_STRING_EQUAL(path, longp);
		} else {
			CU_ASSERT_EQUAL(r, VA_LIBVIRT_XML_UNUSABLE);
			CU_ASSERT_PTR_NOT_NULL(strstr(why, "longer"));
			CU_ASSERT_STRING_EQUAL(path, "");
		}
	}
}

static void
test_bad(void)
{
	char path[VA_LIBVIRT_PATH_MAX], why[256];

	/* Entities need a DTD: refused before any is declared. */
	CU_ASSERT_EQUAL(scan("<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY a 'aaaaaaaa'>"
			     "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>]><domain><description>&b;"
			     "</description><devices/></domain>", path, why), VA_LIBVIRT_XML_BAD);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "document type"));
	CU_ASSERT_EQUAL(scan("<network><devices/></network>", path, why), VA_LIBVIRT_XML_BAD);
	CU_ASSERT_EQUAL(scan("", path, why), VA_LIBVIRT_XML_BAD);
	CU_ASSERT_EQUAL(scan("<domain><devices>&undefined;</devices></domain>", path, why),
			VA_LIBVIRT_XML_BAD);
	/* A good channel, then something that is not XML: nothing is taken. */
	char *xml = NULL;
	if (asprintf(&xml, "%s<trailing/>", live_xml) < 0)
		abort();
	CU_ASSERT_EQUAL(scan(xml, path, why), VA_LIBVIRT_XML_BAD);
	CU_ASSERT_STRING_EQUAL(path, "");
	free(xml);
	/* Over the limit: refused on the length alone (nothing is read). */
	CU_ASSERT_EQUAL(va_libvirt_xml_channel(live_xml, VA_LIBVIRT_XML_MAX + 1, path, why,
					       sizeof(why)), VA_LIBVIRT_XML_BAD);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "larger"));
}

/* Every prefix of the live XML: never found, never a crash (ASan watches). */
static void
test_truncated(void)
{
	char path[VA_LIBVIRT_PATH_MAX], why[256];
	size_t n = strlen(live_xml), found = 0;

	for (size_t len = 0; len < n; len++) {
		char *copy = malloc(len ? len : 1); /* exactly len bytes: no NUL after them */
		memcpy(copy, live_xml, len);
		if (va_libvirt_xml_channel(copy, len, path, why, sizeof(why)) == VA_LIBVIRT_XML_FOUND)
			found++;
		free(copy);
	}
	/* Only the one without the last newline is whole. */
	CU_ASSERT_EQUAL(found, 1);
	CU_ASSERT_EQUAL(va_libvirt_xml_channel(live_xml, n, path, why, sizeof(why)),
			VA_LIBVIRT_XML_FOUND);
}

static const struct va_test tests[] = {
	{ "the live XML of a domain: the channel's socket", test_live },
	{ "no channel of ours, or a channel that is no device", test_not_ours },
	{ "channels of ours that cannot be used", test_unusable },
	{ "the socket path at and past sun_path's length", test_path_length },
	{ "a DTD, another root, not XML, over the limit", test_bad },
	{ "every truncation of the live XML", test_truncated },
};

int
main(void)
{
	return va_test_run("libvirt-xml", VA_TESTS(tests));
}
