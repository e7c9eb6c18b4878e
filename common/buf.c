/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
va_buf_init(struct va_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
va_buf_free(struct va_buf *b)
{
	free(b->data);
	va_buf_init(b);
}

int
va_buf_reserve(struct va_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return -EOVERFLOW;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
va_buf_append(struct va_buf *b, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	int r = va_buf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

int
va_buf_append_str(struct va_buf *b, const char *s)
{
	return va_buf_append(b, s, strlen(s));
}

int
va_buf_printf(struct va_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return va_buf_append(b, small, (size_t)n);
	int r = va_buf_reserve(b, (size_t)n + 1);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
va_buf_consume(struct va_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

uint8_t *
va_buf_steal(struct va_buf *b, size_t *len)
{
	if (va_buf_reserve(b, 1) < 0)
		return NULL;
	b->data[b->len] = 0;
	uint8_t *p = b->data;
	if (len)
		*len = b->len;
	va_buf_init(b);
	return p;
}
