/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-stuff.c - CUnit tests of byte stuffing (common/stuff.c).
 *
 * Every function is checked against a byte-at-a-time reference on
 * buffers with escapes at every position, at every alignment, and on
 * random data; the decoder is fed every two-piece cut.  Built twice:
 * tests/test-stuff (SSE2 where the compiler targets it) and
 * tests/test-stuff-generic (VA_STUFF_NO_SIMD, the portable scan).
 *
 * TEST_STUFF_BENCH=1 also prints MB/s of each function on 16 MiB of
 * random bytes and of zeros (not a check: the machine is shared).
 */
#include "config.h"

#include <CUnit/Basic.h>

#include "cunit-main.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stuff.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* --- references, one byte at a time --------------------------------------- */

static size_t
ref_scan(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0xFE)
			return i;
	return n;
}

static size_t
ref_count(const uint8_t *p, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += p[i] >= 0xFE;
	return c;
}

static size_t
ref_stuff(uint8_t *d, const uint8_t *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == 0xFE) {
			d[o++] = 0xFE;
			d[o++] = 1;
		} else if (s[i] == 0xFF) {
			d[o++] = 0xFE;
			d[o++] = 2;
		} else {
			d[o++] = s[i];
		}
	}
	return o;
}

/* Random bytes where each byte is an escape with probability pct %. */
static void
fill(uint8_t *p, size_t n, unsigned pct)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = rnd();
		if (r % 100 < pct)
			p[i] = (r >> 32) & 1 ? 0xFF : 0xFE;
		else
			p[i] = (uint8_t)((r >> 40) % 0xFE);
	}
}

/* Whether stuffed[0..k) ends with the FE of a pair. */
static int
cut_in_pair(const uint8_t *stuffed, size_t k)
{
	int esc = 0;
	for (size_t i = 0; i < k; i++)
		esc = esc ? 0 : stuffed[i] == 0xFE;
	return esc;
}

/* Stuffs src every way and checks the results against the reference,
 * then decodes them back whole, in place and cut at every point. */
static void
check_round_trip(const uint8_t *src, size_t n, int every_cut)
{
	size_t count = va_stuff_count(src, n);
	CU_ASSERT_EQUAL(count, ref_count(src, n));
	CU_ASSERT_EQUAL(va_stuff_scan(src, n), ref_scan(src, n));
	size_t slen = va_stuff_len(n, count);
	uint8_t *want = xmalloc(2 * n);
	uint8_t *got = xmalloc(2 * n);
	CU_ASSERT_EQUAL_FATAL(ref_stuff(want, src, n), slen);

	CU_ASSERT_EQUAL(va_stuff(got, src, n), slen);
	CU_ASSERT(memcmp(got, want, slen) == 0);

	memset(got, 0xAA, 2 * n);
	memcpy(got, src, n);
	CU_ASSERT_EQUAL(va_stuff_inplace(got, n, count), slen);
	CU_ASSERT(memcmp(got, want, slen) == 0);
	CU_ASSERT(memchr(got, 0xFF, slen) == NULL);

	/* Decode into another buffer, then in place. */
	struct va_unstuff st = { 0 };
	size_t out, used;
	uint8_t *dec = xmalloc(slen);
	CU_ASSERT_EQUAL(va_unstuff(&st, dec, want, slen, &out, &used), VA_UNSTUFF_OK);
	CU_ASSERT_EQUAL(used, slen);
	CU_ASSERT_EQUAL(out, n);
	CU_ASSERT_EQUAL(st.esc, 0);
	CU_ASSERT(memcmp(dec, src, n) == 0);
	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(va_unstuff(&st, got, got, slen, &out, &used), VA_UNSTUFF_OK);
	CU_ASSERT_EQUAL(out, n);
	CU_ASSERT(memcmp(got, src, n) == 0);

	for (size_t k = 0; every_cut && k <= slen; k++) {
		size_t o1, u1, o2, u2;
		memset(&st, 0, sizeof(st));
		CU_ASSERT_EQUAL(va_unstuff(&st, dec, want, k, &o1, &u1), VA_UNSTUFF_OK);
		CU_ASSERT_EQUAL(u1, k);
		CU_ASSERT_EQUAL(st.esc, cut_in_pair(want, k));
		CU_ASSERT_EQUAL(va_unstuff(&st, dec + o1, want + k, slen - k, &o2, &u2),
				VA_UNSTUFF_OK);
		CU_ASSERT_EQUAL(u2, slen - k);
		CU_ASSERT_EQUAL(o1 + o2, n);
		CU_ASSERT_EQUAL(st.esc, 0);
		CU_ASSERT(memcmp(dec, src, n) == 0);
	}
	free(dec);
	free(want);
	free(got);
}

/* --- tests ------------------------------------------------------------------ */

static void
test_empty(void)
{
	struct va_unstuff st = { 0 };
	size_t out = 9, used = 9;
	uint8_t b[1] = { 0 };

	CU_ASSERT_EQUAL(va_stuff_scan(b, 0), 0);
	CU_ASSERT_EQUAL(va_stuff_count(b, 0), 0);
	CU_ASSERT_EQUAL(va_stuff(b, b + 1, 0), 0);
	CU_ASSERT_EQUAL(va_stuff_inplace(b, 0, 0), 0);
	CU_ASSERT_EQUAL(va_unstuff(&st, b, b, 0, &out, &used), VA_UNSTUFF_OK);
	CU_ASSERT_EQUAL(out, 0);
	CU_ASSERT_EQUAL(used, 0);
	CU_ASSERT_EQUAL(va_stuff_fit(b, 0, 10, &out), 0);
	CU_ASSERT_EQUAL(out, 0);
	/* No body at all (a read call): NULL is fine with 0 bytes. */
	CU_ASSERT_EQUAL(va_stuff_scan(NULL, 0), 0);
	CU_ASSERT_EQUAL(va_stuff_count(NULL, 0), 0);
	CU_ASSERT_EQUAL(va_stuff(b, NULL, 0), 0);
	CU_ASSERT_EQUAL(va_stuff_fit(NULL, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(va_unstuff(&st, b, NULL, 0, &out, &used), VA_UNSTUFF_OK);
}

static void
test_len_overflow(void)
{
	CU_ASSERT_EQUAL(va_stuff_len(10, 3), 13);
	CU_ASSERT_EQUAL(va_stuff_len(SIZE_MAX - 3, 3), SIZE_MAX);
	CU_ASSERT_EQUAL(va_stuff_len(SIZE_MAX - 3, 4), SIZE_MAX);
	CU_ASSERT_EQUAL(va_stuff_len(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1), SIZE_MAX);
}

/* One escape (FE, then FF) at every position of buffers of 1..80 bytes,
 * at every alignment 0..15: the scans' vector, word and tail paths. */
static void
test_escape_every_position(void)
{
	uint8_t *buf = xmalloc(96);
	for (size_t len = 1; len <= 80; len++) {
		for (size_t align = 0; align < 16; align++) {
			uint8_t *p = buf + align;
			for (size_t at = 0; at < len; at++) {
				for (int e = 0; e < 2; e++) {
					memset(p, 'a', len);
					p[at] = e ? 0xFF : 0xFE;
					CU_ASSERT_EQUAL(va_stuff_scan(p, len), at);
					CU_ASSERT_EQUAL(va_stuff_count(p, len), 1);
					/* 0xFD is not an escape. */
					p[at] = 0xFD;
					CU_ASSERT_EQUAL(va_stuff_scan(p, len), len);
					CU_ASSERT_EQUAL(va_stuff_count(p, len), 0);
					p[at] = e ? 0xFF : 0xFE;
					if (align == 0 || align == 7)
						check_round_trip(p, len, len <= 24);
				}
			}
		}
	}
	free(buf);
}

/* Bodies made only of escapes, and the last byte an escape. */
static void
test_all_escapes(void)
{
	for (size_t n = 1; n <= 300; n += (n < 40 ? 1 : 37)) {
		uint8_t *p = xmalloc(n);
		memset(p, 0xFF, n);
		CU_ASSERT_EQUAL(va_stuff_count(p, n), n);
		check_round_trip(p, n, n <= 64);
		memset(p, 0xFE, n);
		check_round_trip(p, n, n <= 64);
		for (size_t i = 0; i < n; i++)
			p[i] = i & 1 ? 0xFF : 0xFE;
		check_round_trip(p, n, n <= 64);
		memset(p, 'x', n);
		p[n - 1] = 0xFF;
		check_round_trip(p, n, 1);
		free(p);
	}
}

static void
test_random(void)
{
	static const unsigned pcts[] = { 0, 1, 5, 50, 100 };
	for (int round = 0; round < 400; round++) {
		size_t n = (size_t)(rnd() % (round < 300 ? 600 : 70000));
		uint8_t *p = xmalloc(n + 16);
		size_t align = (size_t)(rnd() % 16);
		unsigned pct = pcts[rnd() % 5];
		if (round % 7 == 0) {
			for (size_t i = 0; i < n + 16; i++)
				p[i] = (uint8_t)rnd();
		} else {
			fill(p, n + 16, pct);
		}
		check_round_trip(p + align, n, n <= 300);
		free(p);
	}
}

/* The counts that cross the SSE2 counter's 255-round flush. */
static void
test_count_long(void)
{
	size_t n = 16 * 255 * 3 + 77;
	uint8_t *p = xmalloc(n);
	memset(p, 0xFF, n);
	CU_ASSERT_EQUAL(va_stuff_count(p, n), n);
	fill(p, n, 50);
	CU_ASSERT_EQUAL(va_stuff_count(p, n), ref_count(p, n));
	free(p);
}

static void
test_unstuff_errors(void)
{
	struct va_unstuff st;
	size_t out, used;
	uint8_t d[16];

	/* A bad byte after FE, at every position. */
	static const uint8_t bad[] = { 0x00, 0x03, 0x7F, 0xFD, 0xFE };
	for (size_t b = 0; b < sizeof(bad); b++) {
		for (size_t at = 0; at < 6; at++) {
			uint8_t in[10];
			memset(in, 'q', sizeof(in));
			in[at] = 0xFE;
			in[at + 1] = bad[b];
			memset(&st, 0, sizeof(st));
			CU_ASSERT_EQUAL(va_unstuff(&st, d, in, sizeof(in), &out, &used),
					VA_UNSTUFF_BAD);
			CU_ASSERT_EQUAL(used, at + 2);
			CU_ASSERT_EQUAL(out, at);
			/* Cut between FE and the bad byte. */
			memset(&st, 0, sizeof(st));
			CU_ASSERT_EQUAL(va_unstuff(&st, d, in, at + 1, &out, &used),
					VA_UNSTUFF_OK);
			CU_ASSERT_EQUAL(st.esc, 1);
			CU_ASSERT_EQUAL(va_unstuff(&st, d, in + at + 1, 3, &out, &used),
					VA_UNSTUFF_BAD);
			CU_ASSERT_EQUAL(used, 1);
			CU_ASSERT_EQUAL(out, 0);
		}
	}
	/* 0xFF stops decoding, unconsumed, alone or after an FE. */
	for (size_t at = 0; at < 40; at++) {
		uint8_t in[48];
		memset(in, 'z', sizeof(in));
		in[at] = 0xFF;
		uint8_t big[48];
		memset(&st, 0, sizeof(st));
		CU_ASSERT_EQUAL(va_unstuff(&st, big, in, sizeof(in), &out, &used),
				VA_UNSTUFF_SENTINEL);
		CU_ASSERT_EQUAL(used, at);
		CU_ASSERT_EQUAL(out, at);
		if (at > 0) {
			in[at - 1] = 0xFE;
			memset(&st, 0, sizeof(st));
			CU_ASSERT_EQUAL(va_unstuff(&st, big, in, sizeof(in), &out, &used),
					VA_UNSTUFF_SENTINEL);
			CU_ASSERT_EQUAL(used, at);
			CU_ASSERT_EQUAL(out, at - 1);
			CU_ASSERT_EQUAL(st.esc, 1);
		}
	}
	/* A lone FE at the end leaves esc set: the caller's "malformed". */
	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(va_unstuff(&st, d, "ab\xfe", 3, &out, &used), VA_UNSTUFF_OK);
	CU_ASSERT_EQUAL(st.esc, 1);
	CU_ASSERT_EQUAL(out, 2);
}

static void
test_fit(void)
{
	for (int round = 0; round < 300; round++) {
		size_t n = (size_t)(rnd() % 200);
		uint8_t *p = xmalloc(n);
		fill(p, n, (unsigned)(rnd() % 60));
		uint8_t *s = xmalloc(2 * n + 1);
		for (size_t max = 0; max <= 2 * n + 1; max++) {
			size_t st, k = va_stuff_fit(p, n, max, &st);
			/* Reference: the longest prefix whose stuffing fits. */
			size_t want = 0, wlen = 0;
			for (size_t i = 0; i < n; i++) {
				size_t add = p[i] >= 0xFE ? 2 : 1;
				if (wlen + add > max)
					break;
				wlen += add;
				want = i + 1;
			}
			CU_ASSERT_EQUAL(k, want);
			CU_ASSERT_EQUAL(st, wlen);
			CU_ASSERT_EQUAL(va_stuff(s, p, k), wlen);
		}
		CU_ASSERT_EQUAL(va_stuff_fit(p, n, SIZE_MAX, NULL), n);
		free(s);
		free(p);
	}
}

/* --- speed (TEST_STUFF_BENCH=1) ------------------------------------------- */

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
bench_one(const char *what, const uint8_t *src, size_t n)
{
	size_t count = va_stuff_count(src, n);
	size_t slen = n + count;
	uint8_t *stuffed = xmalloc(slen);
	uint8_t *work = xmalloc(slen);
	uint8_t *dec = xmalloc(slen);
	va_stuff(stuffed, src, n);
	const int reps = 20;
	double t0, mbs[5];
	volatile size_t sink = 0;

	t0 = now_s();
	for (int r = 0; r < reps; r++)
		sink += va_stuff_count(src, n);
	mbs[0] = (double)n * reps / (now_s() - t0) / 1e6;
	t0 = now_s();
	for (int r = 0; r < reps; r++)
		sink += va_stuff(work, src, n);
	mbs[1] = (double)n * reps / (now_s() - t0) / 1e6;
	double tcopy = 0;
	for (int r = 0; r < reps; r++) {
		memcpy(work, src, n); /* not timed */
		t0 = now_s();
		sink += va_stuff_inplace(work, n, va_stuff_count(work, n));
		tcopy += now_s() - t0;
	}
	mbs[2] = (double)n * reps / tcopy / 1e6;
	t0 = now_s();
	for (int r = 0; r < reps; r++) {
		struct va_unstuff st = { 0 };
		size_t out, used;
		va_unstuff(&st, dec, stuffed, slen, &out, &used);
		sink += out;
	}
	mbs[3] = (double)n * reps / (now_s() - t0) / 1e6;
	t0 = now_s();
	for (int r = 0; r < reps; r++) {
		memcpy(dec, src, n);
		sink += dec[r];
	}
	mbs[4] = (double)n * reps / (now_s() - t0) / 1e6;
	printf("\n  %-7s (%zu escapes): count %.0f, stuff %.0f, stuff in place (count+stuff) %.0f, "
	       "unstuff %.0f, memcpy %.0f MB/s", what, count, mbs[0], mbs[1], mbs[2], mbs[3],
	       mbs[4]);
	(void)sink;
	free(stuffed);
	free(work);
	free(dec);
}

static void
test_bench(void)
{
	if (!getenv("TEST_STUFF_BENCH"))
		return;
	size_t n = 16u << 20;
	uint8_t *p = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 24);
	bench_one("random", p, n);
	memset(p, 0, n);
	bench_one("zeros", p, n);
	memset(p, 0xFF, n);
	bench_one("all FF", p, n);
	free(p);
	printf("\n");
}

static const struct va_test tests[] = {
	{ "empty input", test_empty },
	{ "stuffed length overflow", test_len_overflow },
	{ "an escape at every position and alignment", test_escape_every_position },
	{ "all escapes, escape last", test_all_escapes },
	{ "random buffers", test_random },
	{ "count over 255 rounds", test_count_long },
	{ "decoder errors and the sentinel", test_unstuff_errors },
	{ "fit under a limit", test_fit },
	{ "speed (TEST_STUFF_BENCH=1)", test_bench },
};

int
main(void)
{
	int r = va_test_run("stuff", VA_TESTS(tests));
	return r;
}
