/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xmlscan.h - a cursor for matching XML-RPC bodies of one exact shape
 * (the fast paths of va.file.read/write in the agent and vactl).  Header
 * only, so vactl can use it without the common library.  Every function
 * returns 0 on a match (the cursor moves past it) or -1 (the cursor may
 * have moved past white space); a caller that gets -1 falls back to
 * xmlrpc-c.
 */
#ifndef VA_XMLSCAN_H
#define VA_XMLSCAN_H

#include <string.h>

struct va_scan {
	const char *p, *end;
};

static inline void
va_scan_ws(struct va_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
		s->p++;
}

/* lit, with no white space before it. */
static inline int
va_scan_tight(struct va_scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* Optional white space, then lit. */
static inline int
va_scan_lit(struct va_scan *s, const char *lit)
{
	va_scan_ws(s);
	return va_scan_tight(s, lit);
}

#endif
