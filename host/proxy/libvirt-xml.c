/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt-xml.c - the virtagent channel of a libvirt domain's XML (see
 * libvirt-xml.h), read with expat's stream parser: the element handlers
 * follow the path domain/devices/channel and keep the two attributes of
 * its source and the two of its target, nothing else.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "libvirt-xml.h"

struct scan {
	XML_Parser p;
	unsigned depth;
	int in_devices;     /* inside /domain/devices */
	int in_channel;     /* inside a channel there */
	int ch_unix;        /* its type is unix */
	int tgt_ours;       /* its target is virtio, named VA_LIBVIRT_CHANNEL_NAME */
	char mode[16];      /* its source's mode, "" when not given */
	char path[VA_LIBVIRT_PATH_MAX];
	int path_long;      /* its source's path did not fit */
	int found;          /* result set: stop looking */
	enum va_libvirt_xml_result r;
	char *out;
	char *why;
	size_t whylen;
};

static void __attribute__((format(printf, 3, 4)))
say(struct scan *s, enum va_libvirt_xml_result r, const char *fmt, ...)
{
	va_list ap;

	s->r = r;
	va_start(ap, fmt);
	vsnprintf(s->why, s->whylen, fmt, ap);
	va_end(ap);
}

static const char *
attr(const XML_Char **a, const char *name)
{
	for (; a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	return NULL;
}

static void XMLCALL
on_start(void *opaque, const XML_Char *name, const XML_Char **a)
{
	struct scan *s = opaque;
	const char *v;

	s->depth++;
	if (s->depth == 1 && strcmp(name, "domain") != 0) {
		say(s, VA_LIBVIRT_XML_BAD, "not a domain's XML (its root is <%.32s>)", name);
		XML_StopParser(s->p, XML_FALSE);
		return;
	}
	if (s->found)
		return;
	if (s->depth == 2 && !strcmp(name, "devices")) {
		s->in_devices = 1;
	} else if (s->depth == 3 && s->in_devices && !strcmp(name, "channel")) {
		s->in_channel = 1;
		s->ch_unix = (v = attr(a, "type")) && !strcmp(v, "unix");
		s->tgt_ours = 0;
		s->mode[0] = s->path[0] = '\0';
		s->path_long = 0;
	} else if (s->depth == 4 && s->in_channel && !strcmp(name, "target")) {
		const char *type = attr(a, "type"), *tname = attr(a, "name");
		s->tgt_ours = type && tname && !strcmp(type, "virtio") &&
			      !strcmp(tname, VA_LIBVIRT_CHANNEL_NAME);
	} else if (s->depth == 4 && s->in_channel && !strcmp(name, "source")) {
		if ((v = attr(a, "mode")))
			snprintf(s->mode, sizeof(s->mode), "%s", v);
		if ((v = attr(a, "path"))) {
			s->path_long = strlen(v) >= sizeof(s->path);
			if (!s->path_long)
				memcpy(s->path, v, strlen(v) + 1);
		}
	}
}

/* The end of a channel of ours: the result. */
static void
channel_end(struct scan *s)
{
	s->found = 1;
	if (!s->ch_unix) {
		say(s, VA_LIBVIRT_XML_UNUSABLE, "its channel %s is not of type 'unix'",
		    VA_LIBVIRT_CHANNEL_NAME);
	} else if (strcmp(s->mode, "bind") != 0) {
		say(s, VA_LIBVIRT_XML_UNUSABLE, "its channel %s has <source mode='%s'>: only "
		    "mode='bind' (QEMU listens, the default) is supported", VA_LIBVIRT_CHANNEL_NAME,
		    s->mode);
	} else if (s->path_long) {
		say(s, VA_LIBVIRT_XML_UNUSABLE, "the socket path of its channel %s is longer "
		    "than a unix socket's %d bytes", VA_LIBVIRT_CHANNEL_NAME,
		    VA_LIBVIRT_PATH_MAX - 1);
	} else if (s->path[0] != '/') {
		say(s, VA_LIBVIRT_XML_UNUSABLE, "its channel %s has no absolute socket path",
		    VA_LIBVIRT_CHANNEL_NAME);
	} else {
		memcpy(s->out, s->path, strlen(s->path) + 1);
		s->r = VA_LIBVIRT_XML_FOUND;
	}
}

static void XMLCALL
on_end(void *opaque, const XML_Char *name)
{
	struct scan *s = opaque;

	(void)name;
	if (!s->found) {
		if (s->depth == 3 && s->in_channel) {
			s->in_channel = 0;
			if (s->tgt_ours)
				channel_end(s);
		} else if (s->depth == 2) {
			s->in_devices = 0;
		}
	}
	s->depth--;
}

/* No DTD: nothing in the XML may declare entities (or expand them). */
static void XMLCALL
on_doctype(void *opaque, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
	   int has_internal)
{
	struct scan *s = opaque;

	(void)name, (void)sysid, (void)pubid, (void)has_internal;
	say(s, VA_LIBVIRT_XML_BAD, "the XML has a document type declaration");
	XML_StopParser(s->p, XML_FALSE);
}

enum va_libvirt_xml_result
va_libvirt_xml_channel(const char *xml, size_t len, char *path, char *why, size_t whylen)
{
	struct scan s = { .r = VA_LIBVIRT_XML_NO_CHANNEL, .out = path, .why = why,
			  .whylen = whylen };

	path[0] = '\0';
	snprintf(why, whylen, "it has no <channel> with <target type='virtio' name='%s'/>",
		 VA_LIBVIRT_CHANNEL_NAME);
	if (len > VA_LIBVIRT_XML_MAX) {
		snprintf(why, whylen, "its XML is larger than %u bytes", VA_LIBVIRT_XML_MAX);
		return VA_LIBVIRT_XML_BAD;
	}
	s.p = XML_ParserCreate(NULL);
	if (!s.p) {
		snprintf(why, whylen, "out of memory");
		return VA_LIBVIRT_XML_BAD;
	}
	XML_SetUserData(s.p, &s);
	XML_SetElementHandler(s.p, on_start, on_end);
	XML_SetStartDoctypeDeclHandler(s.p, on_doctype);
	XML_SetParamEntityParsing(s.p, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_Parse(s.p, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR &&
	    s.r != VA_LIBVIRT_XML_BAD) {
		snprintf(why, whylen, "its XML is not well-formed: %s at line %lu",
			 XML_ErrorString(XML_GetErrorCode(s.p)),
			 (unsigned long)XML_GetCurrentLineNumber(s.p));
		s.r = VA_LIBVIRT_XML_BAD;
	}
	XML_ParserFree(s.p);
	if (s.r != VA_LIBVIRT_XML_FOUND)
		path[0] = '\0';
	return s.r;
}
