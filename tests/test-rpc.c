/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests for common/rpc.c: method name extraction and serialisation. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <xmlrpc-c/base.h>

#include "buf.h"
#include "rpc.h"
#include "xmlgate.h"

#include "cunit-main.h"

static int
name_of(const char *xml, char *out)
{
	return va_rpc_method_name(xml, strlen(xml), out);
}

static void
test_method_name_valid(void)
{
	char n[VA_RPC_MAX_METHOD_NAME + 1];

	CU_ASSERT_EQUAL(name_of("<?xml version=\"1.0\"?>\r\n<methodCall>\r\n"
				"<methodName>va.file.read</methodName>\r\n"
				"<params></params></methodCall>", n), 0);
	CU_ASSERT_STRING_EQUAL(n, "va.file.read");
	CU_ASSERT_EQUAL(name_of("<methodCall><methodName>\n  proxy.status \n"
				"</methodName></methodCall>", n), 0);
	CU_ASSERT_STRING_EQUAL(n, "proxy.status");
	CU_ASSERT_EQUAL(name_of("<methodCall><methodName>system.listMethods"
				"</methodName></methodCall>", n), 0);
	CU_ASSERT_STRING_EQUAL(n, "system.listMethods");
}

static void
test_method_name_invalid(void)
{
	char n[VA_RPC_MAX_METHOD_NAME + 1];
	char big[600];

	CU_ASSERT_EQUAL(name_of("", n), -1);
	CU_ASSERT_EQUAL(name_of("<methodResponse></methodResponse>", n), -1);
	CU_ASSERT_EQUAL(name_of("<methodCall><methodName></methodName></methodCall>", n), -1);
	CU_ASSERT_EQUAL(name_of("<methodCall><methodName>a b</methodName></methodCall>", n), -1);
	CU_ASSERT_EQUAL(name_of("<methodCall><methodName>a&amp;b</methodName></methodCall>", n), -1);
	CU_ASSERT_EQUAL(name_of("<methodCall><methodName>va.ping", n), -1);
	/* A name anywhere but right inside the root is not taken: xmlrpc-c
	 * would skip the comment and run the other name. */
	CU_ASSERT_EQUAL(name_of("<methodCall><!-- <methodName>va.ping</methodName> -->"
				"<methodName>va.shutdown</methodName></methodCall>", n), -1);
	CU_ASSERT_EQUAL(name_of("<x/><methodCall><methodName>va.ping</methodName>", n), -1);
	CU_ASSERT_EQUAL(name_of("<methodCall><params/><methodName>va.ping</methodName>", n), -1);
	CU_ASSERT_EQUAL(name_of("<!-- c --><?pi x?>\n<methodCall>\n <methodName>va.ping"
				"</methodName>", n), 0);
	/* One past the longest accepted name. */
	strcpy(big, "<methodCall><methodName>");
	size_t off = strlen(big);
	memset(big + off, 'a', VA_RPC_MAX_METHOD_NAME + 1);
	strcpy(big + off + VA_RPC_MAX_METHOD_NAME + 1, "</methodName></methodCall>");
	CU_ASSERT_EQUAL(name_of(big, n), -1);
	/* Exactly the longest. */
	strcpy(big + off + VA_RPC_MAX_METHOD_NAME, "</methodName></methodCall>");
	CU_ASSERT_EQUAL(name_of(big, n), 0);
	CU_ASSERT_EQUAL(strlen(n), VA_RPC_MAX_METHOD_NAME);
}

static void
test_serialize_roundtrip(void)
{
	xmlrpc_env env;
	struct va_buf b = { 0 };
	char n[VA_RPC_MAX_METHOD_NAME + 1];

	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_build_value(&env, "(is)", 7, "seven");
	va_rpc_serialize_call(&env, &b, "demo.add", params);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_EQUAL(va_rpc_method_name(b.data, b.len, n), 0);
	CU_ASSERT_STRING_EQUAL(n, "demo.add");
	xmlrpc_DECREF(params);
	va_buf_free(&b);

	CU_ASSERT_EQUAL(va_rpc_serialize_fault(&b, 42, "no such thing"), 0);
	int code = 0;
	const char *msg = NULL;
	xmlrpc_value *res = NULL;
	xmlrpc_parse_response2(&env, (const char *)b.data, b.len, &res, &code, &msg);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_EQUAL(code, 42);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	CU_ASSERT_STRING_EQUAL(msg, "no such thing");
	free((void *)msg);
	va_buf_free(&b);
	xmlrpc_env_clean(&env);
}

static void
test_size_limit_raised(void)
{
	xmlrpc_env env;
	struct va_buf b = { 0 };
	size_t big = 2u * 1024 * 1024;

	va_rpc_init(16u * 1024 * 1024);
	xmlrpc_env_init(&env);
	unsigned char *data = calloc(1, big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	xmlrpc_value *v = xmlrpc_base64_new(&env, big, data);
	va_rpc_serialize_response(&env, &b, v);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT(b.len > big);
	xmlrpc_value *res = NULL;
	int code = 0;
	const char *msg = NULL;
	/* Over xmlrpc-c's default 512 KiB: parses only with the raised limit. */
	xmlrpc_parse_response2(&env, (const char *)b.data, b.len, &res, &code, &msg);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_PTR_NOT_NULL(res);
	if (res)
		xmlrpc_DECREF(res);
	xmlrpc_DECREF(v);
	free(data);
	va_buf_free(&b);
	xmlrpc_env_clean(&env);
}

static void
test_prolog(void)
{
	const char *why = NULL;
	static const char ok1[] = "<?xml version=\"1.0\"?>\n<!-- hi -->\n<methodCall>"
				  "<methodName>a</methodName></methodCall>";
	static const char ok2[] = "<methodCall><methodName>a</methodName><params><param>"
				  "<value><string><![CDATA[<!DOCTYPE x>]]></string></value>"
				  "</param></params></methodCall>";
	static const char bad1[] = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
				   "<!ENTITY lol \"lol\">]>\n<methodCall/>";
	static const char bad2[] = "  <!-- c --><!ENTITY x \"y\"><methodCall/>";

	CU_ASSERT_EQUAL(va_xml_gate_check(ok1, strlen(ok1), &why), 0);
	CU_ASSERT_EQUAL(va_xml_gate_check(ok2, strlen(ok2), &why), 0);
	CU_ASSERT_EQUAL(va_xml_gate_check("", 0, &why), 0);
	CU_ASSERT_EQUAL(va_xml_gate_check("<", 1, &why), 0);
	CU_ASSERT_EQUAL(va_xml_gate_check("<?xml", 5, &why), 0);
	CU_ASSERT_EQUAL(va_xml_gate_check(bad1, strlen(bad1), &why), -1);
	CU_ASSERT_PTR_NOT_NULL(why);
	CU_ASSERT_EQUAL(va_xml_gate_check(bad2, strlen(bad2), &why), -1);
	/* UTF-16 without a byte-order mark has no 0xFF and would hide a
	 * DOCTYPE from a byte scan: any NUL byte is refused. */
	static const char utf16[] = "<\0!\0D\0O\0C\0T\0Y\0P\0E\0";
	CU_ASSERT_EQUAL(va_xml_gate_check(utf16, sizeof(utf16) - 1, &why), -1);
}

static const struct va_test tests[] = {
	{ "method name: valid forms", test_method_name_valid },
	{ "method name: invalid forms and length limit", test_method_name_invalid },
	{ "serialize call and fault", test_serialize_roundtrip },
	{ "prolog check refuses DOCTYPE and ENTITY", test_prolog },
	{ "xml size limit raised to the frame maximum", test_size_limit_raised },
};

int
main(void)
{
	return va_test_run("rpc", VA_TESTS(tests));
}
