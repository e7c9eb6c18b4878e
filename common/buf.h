/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buf.h - a growable byte buffer with overflow-safe arithmetic.
 *
 * The buffer owns data[0..cap); bytes data[0..len) are valid.  All
 * functions that grow it return 0 on success or -ENOMEM / -EOVERFLOW
 * and leave the buffer unchanged on failure.  data is NULL while cap
 * is 0.  A zero-initialised struct is an empty buffer.
 */
#ifndef VA_BUF_H
#define VA_BUF_H

#include <stddef.h>
#include <stdint.h>

struct va_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void va_buf_init(struct va_buf *b);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void va_buf_free(struct va_buf *b);
/* Makes room for at least extra more bytes after len. */
int va_buf_reserve(struct va_buf *b, size_t extra);
int va_buf_append(struct va_buf *b, const void *data, size_t n);
int va_buf_append_str(struct va_buf *b, const char *s);
int va_buf_printf(struct va_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void va_buf_consume(struct va_buf *b, size_t n);
/*
 * Hands the storage to the caller (who frees it with free()) and empties
 * the buffer.  The returned block has a NUL byte after len (not counted),
 * so text can be used as a C string.  NULL only on allocation failure.
 */
uint8_t *va_buf_steal(struct va_buf *b, size_t *len);

#endif
