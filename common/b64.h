/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * b64.h - base64 for the file chunks on the hot paths (agent/file.c's
 * va.file.read and va.file.write, vactl push and pull).
 *
 * xmlrpc-c's own coder (libxmlrpc_util) moves about 0.5 GB/s; these loops
 * do several times that, which matters because every byte of a file
 * transfer is encoded once and decoded once.  Header only (static
 * inline), so that vactl, which does not link common/, can use it too.
 *
 * The encoder writes what xmlrpc-c's serializer writes inside <base64>:
 * lines of 76 characters, each (the last one too) ended by "\r\n", so a
 * response made here is byte for byte the one the registry would make.
 * The decoder is strict: it skips white space (space, tab, CR, LF)
 * anywhere, takes "=" padding only at the end of the last quad, and
 * refuses anything else, so that a caller can fall back to xmlrpc-c for
 * input that is not plainly valid.
 */
#ifndef VA_B64_H
#define VA_B64_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VA_B64_LINE 76 /* characters per line, as xmlrpc-c writes them */

/* Characters va_b64_encode_lines() writes for n bytes (lines included). */
static inline size_t
va_b64_encoded_size(size_t n)
{
	if (n == 0)
		return 2; /* xmlrpc-c writes an empty line for no bytes */
	size_t chars = (n + 2) / 3 * 4;
	size_t lines = (chars + VA_B64_LINE - 1) / VA_B64_LINE;
	return chars + 2 * lines;
}

/*
 * 12 bits -> 2 characters: one lookup per pair instead of per character
 * (~2x the speed of the plain loop).  Filled on first use; the users
 * (the agent, vactl) are single-threaded.
 */
static inline const uint16_t *
va_b64_pair_table(void)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static uint16_t pairs[4096];
	static int ready;

	if (!ready) {
		for (int i = 0; i < 4096; i++) {
			char two[2] = { tab[i >> 6], tab[i & 63] };
			memcpy(&pairs[i], two, 2);
		}
		ready = 1;
	}
	return pairs;
}

/*
 * Encodes n bytes of in into out (va_b64_encoded_size(n) bytes of room)
 * in lines of 76 characters ended by "\r\n" (no bytes: one empty line).
 * Returns the characters written.
 */
static inline size_t
va_b64_encode_lines(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint16_t *pairs = va_b64_pair_table();
	char *o = out;

	if (n == 0) {
		out[0] = '\r';
		out[1] = '\n';
		return 2;
	}
	/* 57 bytes make one full line of 76 characters. */
	while (n >= 57) {
		for (int i = 0; i < 19; i++, in += 3) {
			uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
			memcpy(o, &pairs[v >> 12], 2);
			memcpy(o + 2, &pairs[v & 4095], 2);
			o += 4;
		}
		*o++ = '\r';
		*o++ = '\n';
		n -= 57;
	}
	if (n == 0)
		return (size_t)(o - out);
	while (n >= 3) {
		uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
		memcpy(o, &pairs[v >> 12], 2);
		memcpy(o + 2, &pairs[v & 4095], 2);
		o += 4;
		in += 3;
		n -= 3;
	}
	if (n > 0) {
		uint32_t v = (uint32_t)in[0] << 16 | (n > 1 ? (uint32_t)in[1] << 8 : 0);
		o[0] = tab[v >> 18];
		o[1] = tab[(v >> 12) & 63];
		o[2] = n > 1 ? tab[(v >> 6) & 63] : '=';
		o[3] = '=';
		o += 4;
	}
	*o++ = '\r';
	*o++ = '\n';
	return (size_t)(o - out);
}

/* Values of the decoder's table that are not 6-bit digits. */
#define VA_B64_SPACE 0x40
#define VA_B64_PAD 0x41
#define VA_B64_BAD 0xff

/* Character -> 6-bit value, VA_B64_SPACE, VA_B64_PAD or VA_B64_BAD. */
static const uint8_t va_b64_dec_table[256] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x40, 0x40, 0xff, 0xff, 0x40, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
		0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0x41, 0xff, 0xff,
		0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
		0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
		0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/*
 * Two characters (as they lie in memory) -> their 12 bits, or 0x8000
 * when either is not a base64 digit: the decoder's fast path.  128 KiB,
 * filled on first use (single-threaded users, as above).
 */
static inline const uint16_t *
va_b64_dec_pairs(void)
{
	static uint16_t pairs[65536];
	static int ready;

	if (!ready) {
		for (int a = 0; a < 256; a++) {
			for (int b = 0; b < 256; b++) {
				uint8_t two[2] = { (uint8_t)a, (uint8_t)b };
				uint16_t key;
				memcpy(&key, two, 2);
				uint8_t x = va_b64_dec_table[a], y = va_b64_dec_table[b];
				pairs[key] = (x | y) & 0xc0 ? 0x8000 : (uint16_t)(x << 6 | y);
			}
		}
		ready = 1;
	}
	return pairs;
}

/*
 * An incremental decoder: feed it the text in pieces (a piece may end in
 * the middle of a quad), then finish.  Output goes to out, at most cap
 * bytes.
 */
struct va_b64_dec {
	uint8_t *out;
	size_t cap;
	size_t len;    /* bytes written */
	uint32_t acc;  /* digits of the quad being read */
	int nacc;      /* how many */
	int pad;       /* "=" seen: only "=" and white space may follow */
	int bad;       /* invalid input, or more than cap bytes */
};

static inline void
va_b64_dec_init(struct va_b64_dec *d, uint8_t *out, size_t cap)
{
	d->out = out;
	d->cap = cap;
	d->len = 0;
	d->acc = 0;
	d->nacc = 0;
	d->pad = 0;
	d->bad = 0;
}

/* Decodes n characters; returns 0, or -1 once the input is known bad. */
static inline int
va_b64_dec_feed(struct va_b64_dec *d, const char *s, size_t n)
{
	const uint8_t *tab = va_b64_dec_table;
	const uint8_t *p = (const uint8_t *)s, *end = p + n;

	if (d->bad)
		return -1;
	const uint16_t *pairs = va_b64_dec_pairs();
	while (p < end) {
		/* Whole quads without white space: the common case, fast. */
		if (d->nacc == 0 && !d->pad) {
			while (end - p >= 4) {
				uint16_t i1, i2;
				memcpy(&i1, p, 2);
				memcpy(&i2, p + 2, 2);
				uint32_t hi = pairs[i1], lo = pairs[i2];
				if ((hi | lo) & 0x8000)
					break;
				if (d->cap - d->len < 3) {
					d->bad = 1;
					return -1;
				}
				uint32_t v = hi << 12 | lo;
				d->out[d->len] = (uint8_t)(v >> 16);
				d->out[d->len + 1] = (uint8_t)(v >> 8);
				d->out[d->len + 2] = (uint8_t)v;
				d->len += 3;
				p += 4;
			}
			if (p == end)
				break;
		}
		uint8_t t = tab[*p++];
		if (t == VA_B64_SPACE)
			continue;
		if (t == VA_B64_BAD || (d->pad && t != VA_B64_PAD)) {
			d->bad = 1;
			return -1;
		}
		if (t == VA_B64_PAD) {
			/* "xx==" or "xxx=": padding only in the last places of a quad. */
			if (d->nacc < 2 || (d->pad && d->nacc != 3)) {
				d->bad = 1;
				return -1;
			}
			if (!d->pad) {
				size_t nout = d->nacc == 2 ? 1 : 2;
				if (d->cap - d->len < nout) {
					d->bad = 1;
					return -1;
				}
				uint32_t v = d->acc << (6 * (4 - d->nacc));
				d->out[d->len++] = (uint8_t)(v >> 16);
				if (nout == 2)
					d->out[d->len++] = (uint8_t)(v >> 8);
				d->pad = 1;
			}
			if (++d->nacc == 4) {
				d->nacc = 0;
				d->acc = 0;
			}
			continue;
		}
		d->acc = d->acc << 6 | t;
		if (++d->nacc == 4) {
			if (d->cap - d->len < 3) {
				d->bad = 1;
				return -1;
			}
			d->out[d->len] = (uint8_t)(d->acc >> 16);
			d->out[d->len + 1] = (uint8_t)(d->acc >> 8);
			d->out[d->len + 2] = (uint8_t)d->acc;
			d->len += 3;
			d->nacc = 0;
			d->acc = 0;
		}
	}
	return 0;
}

/* The end of the text: 0 when it was valid base64, else -1. */
static inline int
va_b64_dec_finish(struct va_b64_dec *d)
{
	if (d->bad || d->nacc != 0)
		return -1;
	return 0;
}

#endif
