/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cunit-main.h - what the CUnit programs in tests/ share: their main
 * (a registry built from tables of tests, a verbose run, the exit status)
 * and the few helpers more than one of them needs.
 *
 * A program lists its tests in a table and hands it over:
 *
 *	static const struct va_test tests[] = {
 *		{ "parses a frame", test_parse },
 *		...
 *	};
 *	int main(void) { return va_test_run("frame", VA_TESTS(tests)); }
 *
 * Setup the whole program needs (logging, a directory, signals) stays in
 * its main before the call, cleanup after it.  cunit-main.c depends on
 * CUnit and libc only, so that every test program can link it.
 */
#ifndef VA_CUNIT_MAIN_H
#define VA_CUNIT_MAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

/* One test: its name in CUnit's report and its function. */
struct va_test {
	const char *name;
	CU_TestFunc fn;
};

/* One suite: its tests, and CUnit's hooks (NULL: none).  init runs before
 * the suite's first test and cleanup after its last (a non-zero return
 * is a failed suite); setup and teardown run around each test. */
struct va_suite {
	const char *name;
	const struct va_test *tests;
	size_t ntests;
	CU_InitializeFunc init;
	CU_CleanupFunc cleanup;
	CU_SetUpFunc setup;
	CU_TearDownFunc teardown;
};

/* A static array and its number of elements, as two arguments. */
#define VA_TESTS(a) (a), (sizeof(a) / sizeof((a)[0]))

/*
 * Registers suites[0..n) in a new CUnit registry, runs them in CUnit's
 * verbose basic mode (only the suite named only, when only is neither
 * NULL nor empty) and frees the registry.  Returns the exit status for
 * main: 0 when every assertion, test and suite hook passed; 1 when any
 * failed; 2 when the registry could not be built or no suite is named
 * only (the reason on stderr).
 */
int va_test_run_suites(const struct va_suite *suites, size_t n, const char *only);

/* va_test_run_suites() with one suite named suite, without hooks. */
int va_test_run(const char *suite, const struct va_test *tests, size_t ntests);

/*
 * Makes a fresh directory DIR/PREFIXXXXXXX in dir[size], DIR being
 * $TMPDIR when it is set, not empty and at most 60 bytes long (so that
 * unix socket paths in it stay under the 107-byte limit), else /tmp.
 * Returns 0, or -1 with errno set (ENAMETOOLONG: size is too small).
 */
int va_test_mkdtemp(char *dir, size_t size, const char *prefix);

/* Removes path and everything below it, not following symbolic links.
 * Best effort: what cannot be removed stays. */
void va_test_rmtree(const char *path);

/* A unix stream socket (close-on-exec, blocking) connected to path, or -1
 * with errno set (ENAMETOOLONG: path does not fit in sun_path). */
int va_test_unix_connect(const char *path);

/* ---- small helpers of the parser tests --------------------------------- */

/* A string literal and its length (it may hold NUL bytes). */
#define RAW(s) (s), (sizeof(s) - 1)
/* Like CU_ASSERT_STRING_EQUAL, but a NULL does not crash: it equals only NULL. */
#define ASSERT_STR(a, b) CU_ASSERT_TRUE(str_eq((a), (b)))

/* Equal strings, or both NULL. */
static inline bool
str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* malloc that never returns NULL (it aborts); n == 0 gives a valid pointer. */
static inline void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* A fixed-seed PRNG (xorshift64*): every failure reproduces. */
struct rng {
	uint64_t s;
};

static inline void
rng_seed(struct rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

static inline uint64_t
rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough in [0, n), n > 0. */
static inline size_t
rng_below(struct rng *r, size_t n)
{
	return (size_t)(rng_next(r) % n);
}

#endif
