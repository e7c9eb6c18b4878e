/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt-xml.h - the one thing va-proxy reads in a libvirt domain's XML
 * (virDomainGetXMLDesc of a running domain): the unix socket of its
 * virtagent channel,
 *
 *   <domain ...>
 *     <devices>
 *       <channel type='unix'>
 *         <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-2-vm1/org.qemu.virtagent'/>
 *         <target type='virtio' name='org.qemu.virtagent' .../>
 *
 * libvirt fills in the path when the domain's XML names none (it changes
 * with every start: the domain's id is in it).  mode='bind': QEMU listens
 * there, and the proxy connects (channel spec unix:PATH).
 *
 * The XML comes from libvirtd, but parts of it (a description, metadata)
 * from whoever may define domains: it is read with expat, as a stream (no
 * tree), at most VA_LIBVIRT_XML_MAX bytes, without a DTD or entities of
 * its own, and nothing but the attributes above is kept.
 */
#ifndef VA_PROXY_LIBVIRT_XML_H
#define VA_PROXY_LIBVIRT_XML_H

#include <stddef.h>

/* The target name of the channel (the agent's port, common/channel.h). */
#define VA_LIBVIRT_CHANNEL_NAME "org.qemu.virtagent"
/* The largest domain XML read (libvirt's own are a few KiB). */
#define VA_LIBVIRT_XML_MAX (4u * 1024 * 1024)
/* Room for a socket path: sun_path's 108 bytes with the NUL. */
#define VA_LIBVIRT_PATH_MAX 108

enum va_libvirt_xml_result {
	VA_LIBVIRT_XML_FOUND,      /* path holds the socket's path */
	VA_LIBVIRT_XML_NO_CHANNEL, /* no channel of that name: why says so */
	VA_LIBVIRT_XML_UNUSABLE,   /* a channel, but not one to connect to: why says why */
	VA_LIBVIRT_XML_BAD,        /* not a domain's XML, too large, a DTD: why says what */
};

/*
 * Finds the virtagent channel in the len bytes of xml (need not end in a
 * NUL).  path (VA_LIBVIRT_PATH_MAX bytes) gets the socket's path when it
 * is found (absolute, shorter than sun_path), why (whylen bytes) the
 * reason otherwise.  The first channel of that target name counts.
 */
enum va_libvirt_xml_result va_libvirt_xml_channel(const char *xml, size_t len, char *path,
						  char *why, size_t whylen);

#endif
