/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reprdigest.c - SHA-256 digests in HTTP fields and in hex (reprdigest.h).
 */
#include "config.h"

#include <string.h>

#include "reprdigest.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
va_repr_digest_format(const uint8_t d[VA_SHA256_LEN], char out[VA_REPR_DIGEST_MAX])
{
	char *o = out;

	memcpy(o, "sha-256=:", 9);
	o += 9;
	for (size_t i = 0; i < VA_SHA256_LEN; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		size_t k = VA_SHA256_LEN - i;
		if (k > 1)
			v |= (uint32_t)d[i + 1] << 8;
		if (k > 2)
			v |= d[i + 2];
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = k > 1 ? b64[(v >> 6) & 63] : '=';
		*o++ = k > 2 ? b64[v & 63] : '=';
	}
	*o++ = ':';
	*o = '\0';
}

static int
b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

int
va_repr_digest_parse(const char *v, uint8_t d[VA_SHA256_LEN])
{
	static const char key[] = "sha-256=:";
	const size_t klen = sizeof(key) - 1;

	while (v && *v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (strncmp(v, key, klen) == 0) {
			const char *p = v + klen;
			const char *end = strchr(p, ':');
			/* 32 bytes: 43 characters and one "=" (or 43 without padding). */
			size_t n = end ? (size_t)(end - p) : 0;
			if (n != 44 && n != 43)
				return -1;
			uint32_t acc = 0;
			int bits = 0;
			size_t out = 0;
			for (size_t i = 0; i < n; i++) {
				if (p[i] == '=') {
					if (i != 43)
						return -1;
					break;
				}
				int x = b64_value(p[i]);
				if (x < 0)
					return -1;
				acc = (acc << 6) | (uint32_t)x;
				bits += 6;
				if (bits >= 8) {
					bits -= 8;
					if (out == VA_SHA256_LEN)
						return -1;
					d[out++] = (uint8_t)(acc >> bits);
				}
			}
			return out == VA_SHA256_LEN ? 0 : -1;
		}
		/* Another member: skip to the next comma outside a byte sequence. */
		int in_seq = 0;
		while (*v && (in_seq || *v != ',')) {
			if (*v == ':')
				in_seq = !in_seq;
			v++;
		}
	}
	return -1;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
va_sha256_from_hex(const char *hex, size_t len, uint8_t d[VA_SHA256_LEN])
{
	if (len != 2 * VA_SHA256_LEN)
		return -1;
	for (size_t i = 0; i < VA_SHA256_LEN; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
va_sha256_to_hex(const uint8_t d[VA_SHA256_LEN], char hex[2 * VA_SHA256_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < VA_SHA256_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[2 * VA_SHA256_LEN] = '\0';
}
