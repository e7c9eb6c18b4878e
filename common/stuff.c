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

/* Bit i set when p[i] >= 0xFE (64 bytes). */
static inline uint64_t
mask64(const uint8_t *p)
{
	return (uint64_t)mask16(p) | (uint64_t)mask16(p + 16) << 16 |
	       (uint64_t)mask16(p + 32) << 32 | (uint64_t)mask16(p + 48) << 48;
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

/* Position (0..7) in memory order of the first flagged byte. */
static inline unsigned
first_byte(uint64_t m)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (unsigned)__builtin_clzll(m) / 8;
#else
	return (unsigned)__builtin_ctzll(m) / 8;
#endif
}

/* Bit i set when p[i] >= 0xFE (64 bytes). */
static inline uint64_t
mask64(const uint8_t *p)
{
	uint64_t m = 0;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (unsigned i = 0; i < 64; i++)
		m |= (uint64_t)(p[i] >= 0xFE) << i;
#else
	for (unsigned k = 0; k < 8; k++) {
		/* One bit per byte (bits 0, 8, ..., 56), gathered into the
		 * top byte in memory order by the multiply. */
		uint64_t h = hi8(load64(p + 8 * k)) >> 7;
		m |= ((h * 0x0102040810204080ull) >> 56) << (8 * k);
	}
#endif
	return m;
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
 * The escapes of b[at..at + n), n <= 64, as a mask: bit i for b[at + i].
 * The copying functions below walk these masks block by block: in a
 * block with few escapes (text, zeros, random data: one in 128 bytes) an
 * escape costs a bit scan and a memcpy of the run before it; a block with
 * more than DENSE escapes (an erased flash image is all 0xFF) is done
 * byte by byte, which has no chain of dependent bit scans.
 */
#define DENSE 8

/* Without -mpopcnt, __builtin_popcountll is a call into libgcc. */
static inline unsigned
popcount64(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ull;
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}
static inline uint64_t
block_mask(const uint8_t *b, size_t at, size_t n)
{
	if (n == 64)
		return mask64(b + at);
	uint64_t m = 0;
	for (size_t i = 0; i < n; i++)
		m |= (uint64_t)(b[at + i] >= VA_STUFF_ESC) << i;
	return m;
}

size_t
va_stuff(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t o = 0, run = 0; /* s[run..) is not copied yet */

	for (size_t i = 0; i < n; i += 64) {
		size_t e = n - i < 64 ? n : i + 64;
		uint64_t m = block_mask(s, i, e - i);
		if (m && popcount64(m) > DENSE) {
			memcpy(d + o, s + run, i - run);
			o += i - run;
			for (size_t j = i; j < e; j++) {
				uint8_t c = s[j];
				if (c >= VA_STUFF_ESC) {
					d[o++] = VA_STUFF_ESC;
					d[o++] = (uint8_t)(c - 0xFD);
				} else {
					d[o++] = c;
				}
			}
			run = e;
			continue;
		}
		while (m) {
			size_t p = i + (size_t)__builtin_ctzll(m);
			m &= m - 1;
			if (p > run) {
				memcpy(d + o, s + run, p - run);
				o += p - run;
			}
			d[o++] = VA_STUFF_ESC;
			d[o++] = (uint8_t)(s[p] - 0xFD); /* FE -> 1, FF -> 2 */
			run = p + 1;
		}
	}
	if (n > run)
		memcpy(d + o, s + run, n - run);
	return o + n - run;
}

size_t
va_stuff_inplace(void *buf, size_t n, size_t count)
{
	uint8_t *b = buf;
	size_t o = n + count, run_end = n; /* b[p + 1..run_end) is not moved yet */

	/*
	 * From the end.  Invariant: o - run_end is the number of escapes
	 * left in b[0..run_end), so the bytes written (at o and above) never
	 * reach a byte not yet read; once o == run_end the rest is in place.
	 */
	for (size_t end = n; end > 0 && o > run_end;) {
		size_t start = end >= 64 ? end - 64 : 0;
		uint64_t m = block_mask(b, start, end - start);
		if (m && popcount64(m) > DENSE) {
			size_t k = run_end - end;
			o -= k;
			memmove(b + o, b + end, k);
			size_t j = end;
			while (j > start && o > j) {
				uint8_t c = b[--j];
				if (c >= VA_STUFF_ESC) {
					b[--o] = (uint8_t)(c - 0xFD);
					b[--o] = VA_STUFF_ESC;
				} else {
					b[--o] = c;
				}
			}
			/* Stopped at o == j: what is left is in place already. */
			run_end = j;
			end = start;
			continue;
		}
		while (m && o > run_end) {
			unsigned top = 63 - (unsigned)__builtin_clzll(m);
			size_t p = start + top;
			m &= ~(1ull << top);
			size_t k = run_end - p - 1;
			o -= k;
			if (k)
				memmove(b + o, b + p + 1, k);
			uint8_t c = b[p];
			b[--o] = (uint8_t)(c - 0xFD);
			b[--o] = VA_STUFF_ESC;
			run_end = p;
		}
		end = start;
	}
	if (o > run_end) /* count was too large: the contract is broken */
		memmove(b + o - run_end, b, run_end);
	return n + count;
}

size_t
va_stuff_fit(const void *src, size_t n, size_t max, size_t *stuffed)
{
	const uint8_t *s = src;
	size_t i = 0, o = 0;

	/* Mostly all of it fits: one count, at memory speed. */
	size_t all = va_stuff_len(n, va_stuff_count(src, n));
	if (all <= max) {
		if (stuffed)
			*stuffed = all;
		return n;
	}
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
	size_t o = 0, run = 0; /* s[run..) is not moved yet */
	enum va_unstuff_status r = VA_UNSTUFF_OK;
	size_t stop = n;

	/* The second byte of a pair cut off by the previous piece. */
	if (st->esc && n > 0) {
		uint8_t c = s[0];
		if (c == 0xFF) {
			r = VA_UNSTUFF_SENTINEL;
			stop = 0;
			goto done;
		}
		if (c != 1 && c != 2) {
			r = VA_UNSTUFF_BAD;
			stop = 1;
			goto done;
		}
		d[o++] = (uint8_t)(c + 0xFD);
		st->esc = 0;
		run = 1;
	}
	for (size_t i = 0; i < n; i += 64) {
		size_t e = n - i < 64 ? n : i + 64;
		uint64_t m = block_mask(s, i, e - i);
		if (m && popcount64(m) > DENSE) {
			size_t j = run > i ? run : i;
			if (j > run) {
				if (d + o != s + run)
					memmove(d + o, s + run, j - run);
				o += j - run;
			}
			while (j < e) {
				uint8_t c = s[j];
				if (c < VA_STUFF_ESC) {
					d[o++] = c;
					j++;
					continue;
				}
				if (c == 0xFF) {
					r = VA_UNSTUFF_SENTINEL;
					stop = j;
					goto done;
				}
				if (j + 1 == n) {
					st->esc = 1;
					goto done;
				}
				c = s[j + 1];
				if (c == 0xFF) {
					st->esc = 1;
					r = VA_UNSTUFF_SENTINEL;
					stop = j + 1;
					goto done;
				}
				if (c != 1 && c != 2) {
					r = VA_UNSTUFF_BAD;
					stop = j + 2;
					goto done;
				}
				d[o++] = (uint8_t)(c + 0xFD);
				j += 2; /* may be e + 1: the next block skips it */
			}
			run = j;
			continue;
		}
		while (m) {
			size_t p = i + (size_t)__builtin_ctzll(m);
			m &= m - 1;
			if (p < run)
				continue; /* the second byte of a pair seen already */
			/* Forward and never ahead of the input: safe in place. */
			if (p > run) {
				if (d + o != s + run)
					memmove(d + o, s + run, p - run);
				o += p - run;
			}
			run = p;
			if (s[p] == 0xFF) {
				r = VA_UNSTUFF_SENTINEL;
				stop = p;
				goto done;
			}
			if (p + 1 == n) { /* the pair goes on in the next piece */
				st->esc = 1;
				run = n;
				goto done;
			}
			uint8_t c = s[p + 1];
			if (c == 0xFF) {
				st->esc = 1;
				r = VA_UNSTUFF_SENTINEL;
				stop = p + 1;
				goto done;
			}
			if (c != 1 && c != 2) {
				r = VA_UNSTUFF_BAD;
				stop = p + 2;
				goto done;
			}
			d[o++] = (uint8_t)(c + 0xFD); /* 1 -> FE, 2 -> FF */
			run = p + 2;
		}
	}
	if (run < n) {
		if (d + o != s + run)
			memmove(d + o, s + run, n - run);
		o += n - run;
	}
done:
	*out = o;
	*used = stop;
	return r;
}
