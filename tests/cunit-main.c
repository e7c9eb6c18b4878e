/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cunit-main.c - the main logic and shared helpers of the CUnit programs
 * in tests/ (the contract is cunit-main.h).
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "cunit-main.h"

static int
add_suite(const struct va_suite *su)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown(su->name, su->init, su->cleanup,
							   su->setup, su->teardown);
	if (!s)
		return -1;
	for (size_t i = 0; i < su->ntests; i++)
		if (!CU_add_test(s, su->tests[i].name, su->tests[i].fn))
			return -1;
	return 0;
}

int
va_test_run_suites(const struct va_suite *suites, size_t n, const char *only)
{
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (add_suite(&suites[i]) < 0) {
			fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
			CU_cleanup_registry();
			return 2;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (only && *only) {
		CU_pSuite s = CU_get_suite(only);
		if (!s) {
			fprintf(stderr, "CUnit: no suite \"%s\"\n", only);
			CU_cleanup_registry();
			return 2;
		}
		CU_basic_run_suite(s);
	} else {
		CU_basic_run_tests();
	}
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
			  CU_get_number_of_suites_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

int
va_test_run(const char *suite, const struct va_test *tests, size_t ntests)
{
	const struct va_suite s = { .name = suite, .tests = tests, .ntests = ntests };

	return va_test_run_suites(&s, 1, NULL);
}

int
va_test_mkdtemp(char *dir, size_t size, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	int n = snprintf(dir, size, "%s/%sXXXXXX", tmp, prefix);
	if (n < 0 || (size_t)n >= size) {
		if (size)
			dir[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkdtemp(dir) ? 0 : -1;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
va_test_rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
va_test_unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(path);

	if (n >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, n + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
