/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-acl.c - the RPC lists (common/acl.c): one syntax, wildcards,
 * separators, and every way a list could fail open refused.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cunit-main.h"

#include "acl.h"

static const char *const methods[] = {
	"va.ping", "va.file.open", "va.file.read", "va.file.write", "va.file.close",
	"va.shutdown", "va.clipboard.get", "system.listMethods", NULL,
};

static va_acl *
parse(const char *list, char *err)
{
	return va_acl_parse(list, va_acl_known_in_table, (void *)methods, err, 256);
}

static void
test_syntax_and_match(void)
{
	char err[256] = "";
	/* The proxy's syntax, shown next to the agent's in USAGE.md: blocks the va.file methods. */
	va_acl *a = parse("va.file.*,va.shutdown", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(va_acl_count(a), 2);
	CU_ASSERT(va_acl_match(a, "va.file.read"));
	CU_ASSERT(va_acl_match(a, "va.file.write"));
	CU_ASSERT(va_acl_match(a, "va.shutdown"));
	CU_ASSERT(!va_acl_match(a, "va.ping"));
	CU_ASSERT(!va_acl_match(a, "va.file"));
	CU_ASSERT(!va_acl_match(a, "va.file."));
	CU_ASSERT(!va_acl_match(a, "va.shutdownx"));
	char d[128];
	va_acl_describe(a, d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "va.file.*, va.shutdown");
	va_acl_free(a);
	/* Tabs, new lines, spaces and commas all separate. */
	a = parse("  va.ping\tva.shutdown ,\n va.file.read,,", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(va_acl_count(a), 3);
	CU_ASSERT(va_acl_match(a, "va.shutdown"));
	va_acl_free(a);
	/* Empty lists. */
	a = parse("", err);
	CU_ASSERT_EQUAL(va_acl_count(a), 0);
	CU_ASSERT(!va_acl_match(a, "va.ping"));
	va_acl_free(a);
	a = parse(NULL, err);
	CU_ASSERT_PTR_NOT_NULL(a);
	va_acl_free(a);
	CU_ASSERT(!va_acl_match(NULL, "va.ping"));
}

static void
test_refused(void)
{
	static const struct {
		const char *list;
		const char *why;
	} bad[] = {
		{ "va.file*", "only as the last part" },
		{ "*", "only as the last part" },
		{ ".*", "wildcard needs a prefix" },
		{ "va..ping", "empty part" },
		{ ".va.ping", "empty part" },
		{ "va.file.", "ends with '.'" },
		{ "va.ping;va.shutdown", "not a method name" },
		{ "va.pingg", "no such method" },
		{ "va.nothing.*", "no method has that prefix" },
		{ "va.ping,va.sutdown", "no such method" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		va_acl *a = parse(bad[i].list, err);
		CU_ASSERT_PTR_NULL(a);
		if (!strstr(err, bad[i].why))
			fprintf(stderr, "\n  %s: \"%s\"\n", bad[i].list, err);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].why));
		va_acl_free(a);
	}
	/* Without a known() every well-formed name passes. */
	char err[256];
	va_acl *a = va_acl_parse("anything.goes,x.*", NULL, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL(a);
	va_acl_free(a);
}

static const struct va_test tests[] = {
	{ "syntax, wildcards, separators", test_syntax_and_match },
	{ "bad syntax and unknown names refused", test_refused },
};

int
main(void)
{
	return va_test_run("acl", VA_TESTS(tests));
}
