/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stuff.c - byte stuffing of binary bodies (see stuff.h).
 *
 * Everything is built on two scans for "a byte >= 0xFE" (forward and
 * backward) and a count of such bytes.  Between escapes the bytes are
 * moved with memcpy/memmove, so zeros or text run at memcpy speed and
 * random data (an escape every 128 bytes on average) at a few GB/s.
 *
 * VA_STUFF_NO_SIMD builds the portable 8-bytes-at-a-time version only
 * (tests/test-stuff-generic checks it against the same cases).
 */
#include "config.h"

#include <string.h>

#include "stuff.h"

#if defined(__SSE2__) && !defined(VA_STUFF_NO_SIMD)
#define USE_SSE2 1
#include <emmintrin.h>
#else
#define USE_SSE2 0
#endif

#if USE_SSE2

/* Bit i set when p[i] >= 0xFE (16 bytes). */
static inline unsigned
mask16(const uint8_t *p)
{
	const __m128i fe = _mm_set1_epi8((char)0xFE);
	__m128i v = _mm_loadu_si128((const __m128i *)p);
	/* max(v, FE) == v exactly where v >= FE (unsigned). */
	return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, fe), v));
}

size_t
va_stuff_scan(const void *p, size_t n)
{
	const uint8_t *b = p;
	const __m128i fe = _mm_set1_epi8((char)0xFE);
	size_t i = 0;

	/* 64 bytes per round while nothing is found. */
	for (; n - i >= 64; i += 64) {
		__m128i v0 = _mm_loadu_si128((const __m128i *)(b + i));
		__m128i v1 = _mm_loadu_si128((const __m128i *)(b + i + 16));
		__m128i v2 = _mm_loadu_si128((const __m128i *)(b + i + 32));
		__m128i v3 = _mm_loadu_si128((const __m128i *)(b + i + 48));
		__m128i m = _mm_max_epu8(_mm_max_epu8(v0, v1), _mm_max_epu8(v2, v3));
		if (_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(m, fe), m)))
			break;
	}
	for (; n - i >= 16; i += 16) {
		unsigned m = mask16(b + i);
		if (m)
			return i + (size_t)__builtin_ctz(m);
	}
	for (; i < n; i++)
		if (b[i] >= 0xFE)
			return i;
	return n;
}

/* One past the last byte >= 0xFE in p[0..n), or 0 when there is none. */
static size_t
rscan(const uint8_t *b, size_t n)
{
	size_t i = n;

	for (; i >= 16; i -= 16) {
		unsigned m = mask16(b + i - 16);
		if (m)
			return i - 16 + (size_t)(32 - __builtin_clz(m));
	}
	for (; i > 0; i--)
		if (b[i - 1] >= 0xFE)
			return i;
	return 0;
}

size_t
va_stuff_count(const void *p, size_t n)
{
	const uint8_t *b = p;
	const __m128i fe = _mm_set1_epi8((char)0xFE);
	const __m128i zero = _mm_setzero_si128();
	size_t i = 0, count = 0;

	while (n - i >= 16) {
		/* Per-byte counters (each match subtracts -1) for at most
		 * 255 rounds, then summed with SAD. */
		__m128i acc = zero;
		size_t rounds = (n - i) / 16;
		if (rounds > 255)
			rounds = 255;
		for (size_t r = 0; r < rounds; r++, i += 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(b + i));
			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_max_epu8(v, fe), v));
		}
		__m128i s = _mm_sad_epu8(acc, zero);
		count += (size_t)_mm_cvtsi128_si32(s) +
			 (size_t)_mm_cvtsi128_si32(_mm_srli_si128(s, 8));
	}
	for (; i < n; i++)
		count += b[i] >= 0xFE;
	return count;
}

#else /* portable: 8 bytes at a time */

static inline uint64_t
load64(const uint8_t *p)
{
	uint64_t x;
	memcpy(&x, p, sizeof(x));
	return x;
}

/*
 * 0x80 in each byte of x that is >= 0xFE, 0 elsewhere, exactly (no
 * false positives: nothing carries from one byte into the next).
 */
static inline uint64_t
hi8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull;
	const uint64_t low7 = 0x7F7F7F7F7F7F7F7Full;
	/* A byte is >= 0xFE iff it is 0xFF once its low bit is set, so iff
	 * the complement of that is zero. */
	uint64_t v = ~(x | ones);
	uint64_t nonzero = ((v & low7) + low7) | v;
	return ~nonzero & ~low7;
}

/* Position (0..7) in memory order of the first / last flagged byte. */
static inline unsigned
first_byte(uint64_t m)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (unsigned)__builtin_clzll(m) / 8;
#else
	return (unsigned)__builtin_ctzll(m) / 8;
#endif
}

static inline unsigned
last_byte(uint64_t m)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (unsigned)(63 - __builtin_ctzll(m)) / 8;
#else
	return (unsigned)(63 - __builtin_clzll(m)) / 8;
#endif
}

size_t
va_stuff_scan(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	for (; n - i >= 8; i += 8) {
		uint64_t m = hi8(load64(b + i));
		if (m)
			return i + first_byte(m);
	}
	for (; i < n; i++)
		if (b[i] >= 0xFE)
			return i;
	return n;
}

static size_t
rscan(const uint8_t *b, size_t n)
{
	size_t i = n;

	for (; i >= 8; i -= 8) {
		uint64_t m = hi8(load64(b + i - 8));
		if (m)
			return i - 8 + last_byte(m) + 1;
	}
	for (; i > 0; i--)
		if (b[i - 1] >= 0xFE)
			return i;
	return 0;
}

size_t
va_stuff_count(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0, count = 0;

	for (; n - i >= 8; i += 8)
		/* Each flagged byte is 1 after the shift; the multiply sums
		 * the eight bytes into the top one. */
		count += (size_t)(((hi8(load64(b + i)) >> 7) * 0x0101010101010101ull) >> 56);
	for (; i < n; i++)
		count += b[i] >= 0xFE;
	return count;
}

#endif

size_t
va_stuff_len(size_t n, size_t count)
{
	return count > SIZE_MAX - n ? SIZE_MAX : n + count;
}

/*
 * After an escape the functions below go byte by byte until DENSE_RUN
 * plain bytes in a row were seen, and only then scan again: a scan and a
 * memcpy per byte would make data full of escapes (an erased flash image
 * is all 0xFF) run at a tenth of the speed of random data.
 */
#define DENSE_RUN 16

size_t
va_stuff(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t i = 0, o = 0;

	while (i < n) {
		size_t k = va_stuff_scan(s + i, n - i);
		memcpy(d + o, s + i, k);
		o += k;
		i += k;
		for (size_t plain = 0; i < n && plain < DENSE_RUN; i++) {
			uint8_t c = s[i];
			if (c >= VA_STUFF_ESC) {
				d[o++] = VA_STUFF_ESC;
				d[o++] = (uint8_t)(c - 0xFD); /* FE -> 1, FF -> 2 */
				plain = 0;
			} else {
				d[o++] = c;
				plain++;
			}
		}
	}
	return o;
}

size_t
va_stuff_inplace(void *buf, size_t n, size_t count)
{
	uint8_t *b = buf;
	size_t total = n + count;
	size_t i = n, o = total;

	/*
	 * Invariant: o - i == escapes left in b[0..i), so writes at o never
	 * reach a byte not yet moved.  Once o == i the rest is in place.
	 */
	while (o > i) {
		size_t j = rscan(b, i); /* b[j - 1] is the last escape */
		if (j == 0)
			break; /* count was too large: the contract is broken */
		size_t run = i - j;
		o -= run;
		memmove(b + o, b + j, run);
		i = j;
		for (size_t plain = 0; i > 0 && o > i && plain < DENSE_RUN;) {
			uint8_t c = b[--i];
			if (c >= VA_STUFF_ESC) {
				b[--o] = (uint8_t)(c - 0xFD);
				b[--o] = VA_STUFF_ESC;
				plain = 0;
			} else {
				b[--o] = c;
				plain++;
			}
		}
	}
	return total;
}

size_t
va_stuff_fit(const void *src, size_t n, size_t max, size_t *stuffed)
{
	const uint8_t *s = src;
	size_t i = 0, o = 0;

	while (i < n && o < max) {
		size_t k = va_stuff_scan(s + i, n - i);
		if (k >= max - o) {
			i += max - o;
			o = max;
			break;
		}
		i += k;
		o += k;
		if (i == n || max - o < 2)
			break;
		i++;
		o += 2;
	}
	if (stuffed)
		*stuffed = o;
	return i;
}

enum va_unstuff_status
va_unstuff(struct va_unstuff *st, void *dst, const void *src, size_t n, size_t *out,
	   size_t *used)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t i = 0, o = 0;
	enum va_unstuff_status r = VA_UNSTUFF_OK;

	/* The second byte of a pair cut off by the previous piece. */
	if (st->esc && n > 0) {
		uint8_t c = s[0];
		if (c == 0xFF) {
			r = VA_UNSTUFF_SENTINEL;
			goto done;
		}
		i = 1;
		if (c != 1 && c != 2) {
			r = VA_UNSTUFF_BAD;
			goto done;
		}
		d[o++] = (uint8_t)(c + 0xFD);
		st->esc = 0;
	}
	while (i < n) {
		size_t k = va_stuff_scan(s + i, n - i);
		/* Forward and never ahead of the input: safe in place. */
		if (d + o != s + i)
			memmove(d + o, s + i, k);
		o += k;
		i += k;
		for (size_t plain = 0; i < n && plain < DENSE_RUN;) {
			uint8_t c = s[i];
			if (c < VA_STUFF_ESC) {
				d[o++] = c;
				i++;
				plain++;
				continue;
			}
			if (c == 0xFF) {
				r = VA_UNSTUFF_SENTINEL;
				goto done;
			}
			if (i + 1 == n) { /* the pair goes on in the next piece */
				st->esc = 1;
				i++;
				goto done;
			}
			c = s[i + 1];
			if (c == 0xFF) {
				st->esc = 1;
				i++;
				r = VA_UNSTUFF_SENTINEL;
				goto done;
			}
			i += 2;
			if (c != 1 && c != 2) {
				r = VA_UNSTUFF_BAD;
				goto done;
			}
			d[o++] = (uint8_t)(c + 0xFD); /* 1 -> FE, 2 -> FF */
			plain = 0;
		}
	}
done:
	*out = o;
	*used = i;
	return r;
}
