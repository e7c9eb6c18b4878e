/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tchar.h - the characters of a header name and of a method (RFC 9110
 * 5.6.2 tchar), as a table: it is on the path of every header of every
 * frame (common/frame.c) and of every HTTP request (host/proxy/
 * http-parse.c).  Header only: each file that includes it has the 256
 * bytes of its own copy.
 */
#ifndef VA_TCHAR_H
#define VA_TCHAR_H

#define VA_TCHAR_ROW(c) \
	(((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || \
	 ((c) >= '0' && (c) <= '9') || (c) == '!' || (c) == '#' || (c) == '$' || \
	 (c) == '%' || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || \
	 (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || \
	 (c) == '|' || (c) == '~')
#define VA_TCHAR_4(c) VA_TCHAR_ROW(c), VA_TCHAR_ROW((c) + 1), VA_TCHAR_ROW((c) + 2), \
	VA_TCHAR_ROW((c) + 3)
#define VA_TCHAR_16(c) VA_TCHAR_4(c), VA_TCHAR_4((c) + 4), VA_TCHAR_4((c) + 8), \
	VA_TCHAR_4((c) + 12)
#define VA_TCHAR_64(c) VA_TCHAR_16(c), VA_TCHAR_16((c) + 16), VA_TCHAR_16((c) + 32), \
	VA_TCHAR_16((c) + 48)

static const unsigned char va_tchar_table[256] = {
	VA_TCHAR_64(0), VA_TCHAR_64(64), VA_TCHAR_64(128), VA_TCHAR_64(192),
};

/* 1 when c may stand in a header name or a method, else 0. */
static inline int
va_is_tchar(unsigned char c)
{
	return va_tchar_table[c];
}

#endif
