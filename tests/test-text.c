/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-text.c - every string through xmlrpc-c (common/text.c) and the
 * gate before xmlrpc-c parses (common/xmlgate.c): a corpus of text that
 * xmlrpc-c alone cannot hold, round-tripped through the project's own
 * serializer and parser; what must be refused; the gate's bounds.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cunit-main.h"
#include <xmlrpc-c/base.h>

#include "buf.h"
#include "rpc.h"
#include "text.h"
#include "xmlgate.h"

/* Text that must arrive exactly as it was sent. */
static const char *const corpus[] = {
	"plain ASCII",
	"",
	"see you \xF0\x9F\x98\x80",                                     /* U+1F600 */
	"\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", /* ZWJ family */
	"\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",                             /* flag FR */
	"\xF0\xA0\x80\x80\xF0\xAA\x9B\x96",                             /* CJK Ext B */
	"\xF0\x9D\x90\x80\xF0\x9D\x95\xAB",                             /* math alphanumerics */
	"e\xCC\x81 a\xCC\x8A\xCC\x81",                                  /* combining marks */
	"a\r\nb\rc\nd\r\r\n\n",                                         /* CRLF, lone CR, LF */
	"\r",
	"\xF4\x8F\xBF\xBF",                                             /* U+10FFFF */
	"\xEE\x80\x80",                                                 /* U+E000 itself */
	"\xEE\x80\x80" "1F600;",                                        /* looks like an escape */
	"\xEE\x80\x80" "D;\xEE\x80\x80\xEE\x80\x80",
	"\xEF\xBF\xBD tab\there",                                       /* U+FFFD, tab */
	"\xC2\x80\xC2\x9F\x7F",                                         /* C1 controls, DEL */
	"<&>\"' &amp; &#13; ]]>",                                       /* markup as text */
};
#define NCORPUS (sizeof(corpus) / sizeof(corpus[0]))

/* Text XML cannot carry: refused, with the rule named. */
static const struct {
	const char *s;
	size_t len;
	const char *rule;
} bad[] = {
	{ "a\x01", 2, "control" },
	{ "nul\0x", 5, "NUL" },
	{ "\x1b[1m", 4, "control" },
	{ "\xC0\xAF", 2, "overlong" },
	{ "\xE0\x80\xAF", 3, "overlong" },
	{ "\xF0\x80\x80\xAF", 4, "overlong" },
	{ "\xED\xA0\x80", 3, "surrogate" },
	{ "\xED\xBF\xBF", 3, "surrogate" },
	{ "\xF4\x90\x80\x80", 4, "above U+10FFFF" },
	{ "\xEF\xBF\xBE", 3, "U+FFFE" },
	{ "\xEF\xBF\xBF", 3, "U+FFFF" },
	{ "\xF0\x9F\x98", 3, "cut short" },
	{ "\x80", 1, "invalid" },
	{ "\xFF", 1, "invalid" },
};
#define NBAD (sizeof(bad) / sizeof(bad[0]))

static void
test_char_rules(void)
{
	uint32_t cp;
	const char *why;

	for (size_t i = 0; i < NBAD; i++) {
		size_t at = va_text_check(bad[i].s, bad[i].len, &why);
		CU_ASSERT(at < bad[i].len);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, bad[i].rule));
	}
	for (size_t i = 0; i < NCORPUS; i++)
		CU_ASSERT_EQUAL(va_text_check(corpus[i], strlen(corpus[i]), &why), strlen(corpus[i]));
	CU_ASSERT_EQUAL(va_text_char((const uint8_t *)"\xF0\x9F\x98\x80", 4, &cp, &why), 4);
	CU_ASSERT_EQUAL(cp, 0x1F600);
	CU_ASSERT(va_text_xml_char(0xD));
	CU_ASSERT(!va_text_xml_char(0));
	CU_ASSERT(!va_text_xml_char(0xFFFE));
	CU_ASSERT(!va_text_xml_char(0xD800));
	CU_ASSERT(!va_text_xml_char(0x110000));
	/* Every code point through the UTF-8 writer and reader. */
	for (uint32_t c = 0; c <= 0x10FFFF; c += (c < 0x30000 ? 1 : 97)) {
		struct va_buf b = { 0 };
		uint32_t back = 0;
		va_text_put_utf8(&b, c);
		size_t n = va_text_char(b.data, b.len, &back, &why);
		if (va_text_xml_char(c)) {
			CU_ASSERT_EQUAL(n, b.len);
			CU_ASSERT_EQUAL(back, c);
		} else {
			CU_ASSERT_EQUAL(n, 0);
		}
		va_buf_free(&b);
	}
}

static void
test_value_form(void)
{
	for (size_t i = 0; i < NCORPUS; i++) {
		struct va_buf enc = { 0 }, dec = { 0 };
		size_t at;
		const char *why;
		CU_ASSERT_EQUAL(va_text_encode(corpus[i], strlen(corpus[i]), &enc, &at, &why), 0);
		/* The value form is what xmlrpc-c accepts. */
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		xmlrpc_value *v = xmlrpc_string_new_lp(&env, enc.len, enc.data ? (char *)enc.data : "");
		CU_ASSERT_FALSE(env.fault_occurred);
		if (v)
			xmlrpc_DECREF(v);
		xmlrpc_env_clean(&env);
		CU_ASSERT_EQUAL(va_text_decode((char *)enc.data, enc.len, &dec), 0);
		CU_ASSERT_EQUAL(dec.len, strlen(corpus[i]));
		CU_ASSERT(dec.len == 0 || memcmp(dec.data, corpus[i], dec.len) == 0);
		va_buf_free(&enc);
		va_buf_free(&dec);
	}
	/* What the escape looks like. */
	struct va_buf b = { 0 };
	size_t at;
	const char *why;
	va_text_encode("a\r\xF0\x9F\x98\x80", 6, &b, &at, &why);
	CU_ASSERT_EQUAL(b.len, 1 + 3 + 2 + 3 + 6);
	CU_ASSERT(memcmp(b.data, "a" VA_TEXT_ESC "D;" VA_TEXT_ESC "1F600;", b.len) == 0);
	va_buf_free(&b);
	CU_ASSERT_EQUAL(va_text_encode("ok\x01", 3, &b, &at, &why), -EILSEQ);
	CU_ASSERT_EQUAL(at, 2);
	va_buf_free(&b);
}

/*
 * A call built by the project's serializer and parsed by its parser:
 * what a method reads is what the caller sent, for every string.
 */
static void
test_round_trip_call(void)
{
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *params = xmlrpc_array_new(&env);
	for (size_t i = 0; i < NCORPUS; i++) {
		xmlrpc_value *s = va_text_value_z(&env, corpus[i]);
		CU_ASSERT_FALSE_FATAL(env.fault_occurred);
		xmlrpc_array_append_item(&env, params, s);
		xmlrpc_DECREF(s);
	}
	struct va_buf xml = { 0 };
	va_rpc_serialize_call(&env, &xml, "va.echo", params);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	/* On the wire: no escape, CR as a reference, the emoji as UTF-8. */
	CU_ASSERT_PTR_NOT_NULL(memmem(xml.data, xml.len, "a&#13;\nb&#13;c", 14));
	CU_ASSERT_PTR_NOT_NULL(memmem(xml.data, xml.len, "\xF0\x9F\x98\x80", 4));
	CU_ASSERT_PTR_NULL(memmem(xml.data, xml.len, "a\r", 2));

	char *name = NULL;
	xmlrpc_value *got = NULL;
	va_rpc_parse_call(&env, xml.data, xml.len, &name, &got);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	CU_ASSERT_STRING_EQUAL(name, "va.echo");
	CU_ASSERT_EQUAL_FATAL(xmlrpc_array_size(&env, got), (int)NCORPUS);
	for (size_t i = 0; i < NCORPUS; i++) {
		xmlrpc_value *item;
		char *text;
		size_t len;
		xmlrpc_array_read_item(&env, got, (int)i, &item);
		va_text_read(&env, item, &text, &len);
		CU_ASSERT_FALSE(env.fault_occurred);
		CU_ASSERT_EQUAL(len, strlen(corpus[i]));
		CU_ASSERT(text && memcmp(text, corpus[i], len) == 0);
		free(text);
		xmlrpc_DECREF(item);
	}
	xmlrpc_DECREF(got);
	xmlrpc_DECREF(params);
	free(name);
	va_buf_free(&xml);
	xmlrpc_env_clean(&env);
}

/* The wire forms clients write, each read as the text meant. */
static void
test_client_forms(void)
{
	static const struct {
		const char *xml_text; /* inside <string> */
		const char *want;
	} forms[] = {
		{ "&#x1F600;", "\xF0\x9F\x98\x80" },
		{ "&#128512;", "\xF0\x9F\x98\x80" },
		{ "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80" },
		{ "a&#13;b", "a\rb" },
		{ "a&#xD;&#xa;b", "a\r\nb" },
		{ "a&#x0d;b&#013;", "a\rb\r" },
		{ "a\r\nb", "a\nb" }, /* raw CR LF is LF by the rules of XML */
		{ "&#xE000;", "\xEE\x80\x80" },
		{ "\xEE\x80\x80" "1F600;", "\xEE\x80\x80" "1F600;" },
		{ "<![CDATA[\xF0\x9F\x98\x80 <&>]]>", "\xF0\x9F\x98\x80 <&>" },
		{ "&lt;&amp;&gt;&quot;&apos;", "<&>\"'" },
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char body[512];
		snprintf(body, sizeof(body),
			 "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<methodCall><methodName>x"
			 "</methodName><params><param><value><string>%s</string></value></param>"
			 "</params></methodCall>", forms[i].xml_text);
		xmlrpc_env env;
		xmlrpc_env_init(&env);
		char *name = NULL, *text = NULL;
		size_t len = 0;
		xmlrpc_value *params = NULL, *item = NULL;
		va_rpc_parse_call(&env, body, strlen(body), &name, &params);
		CU_ASSERT_FALSE(env.fault_occurred);
		if (env.fault_occurred) {
			fprintf(stderr, "\n  %s: %s\n", forms[i].xml_text, env.fault_string);
		} else {
			xmlrpc_array_read_item(&env, params, 0, &item);
			va_text_read(&env, item, &text, &len);
			CU_ASSERT_EQUAL(len, strlen(forms[i].want));
			CU_ASSERT(text && memcmp(text, forms[i].want, len) == 0);
			xmlrpc_DECREF(item);
			xmlrpc_DECREF(params);
		}
		free(text);
		free(name);
		xmlrpc_env_clean(&env);
	}
}

static int
gate_refuses(const char *body, const struct va_xml_limits *lim, const char *needle)
{
	struct va_buf scratch = { 0 };
	const void *xml;
	size_t xl;
	char why[256] = "";
	int r = va_xml_gate(body, strlen(body), lim, &scratch, &xml, &xl, why, sizeof(why));
	va_buf_free(&scratch);
	if (r == 0) {
		fprintf(stderr, "\n  accepted: %.80s\n", body);
		return 0;
	}
	if (needle && !strstr(why, needle)) {
		fprintf(stderr, "\n  refused for \"%s\", not \"%s\"\n", why, needle);
		return 0;
	}
	return 1;
}

static void
test_gate_refuses(void)
{
	CU_ASSERT(gate_refuses("<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"y\">]><a/>", NULL,
			       "DOCTYPE"));
	CU_ASSERT(gate_refuses("<a><!DOCTYPE b></a>", NULL, "DOCTYPE"));
	CU_ASSERT(gate_refuses("<a>&x;</a>", NULL, "not defined"));
	CU_ASSERT(gate_refuses("<a>&#0;</a>", NULL, "cannot carry"));
	CU_ASSERT(gate_refuses("<a>&#x1;</a>", NULL, "cannot carry"));
	CU_ASSERT(gate_refuses("<a>&#xD800;</a>", NULL, "cannot carry"));
	CU_ASSERT(gate_refuses("<a>&#xFFFE;</a>", NULL, "cannot carry"));
	CU_ASSERT(gate_refuses("<a>&#x110000;</a>", NULL, "cannot carry"));
	CU_ASSERT(gate_refuses("<a>&#9999999999;</a>", NULL, "cannot carry"));
	CU_ASSERT(gate_refuses("<a>&#99999999999999999999;</a>", NULL, "malformed"));
	CU_ASSERT(gate_refuses("<a>&#x;</a>", NULL, "malformed"));
	CU_ASSERT(gate_refuses("<a>&#12a;</a>", NULL, "malformed"));
	CU_ASSERT(gate_refuses("<a>& b</a>", NULL, "malformed"));
	CU_ASSERT(gate_refuses("<a>\xC0\xAF</a>", NULL, "overlong"));
	CU_ASSERT(gate_refuses("<a>\xED\xA0\x80</a>", NULL, "surrogate"));
	CU_ASSERT(gate_refuses("<a>bell\x07</a>", NULL, "control"));
	CU_ASSERT(gate_refuses("<a x=\"\x01\"/>", NULL, "control"));
	CU_ASSERT(gate_refuses("<a><!-- \xFF --></a>", NULL, "invalid UTF-8"));
	CU_ASSERT(gate_refuses("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>", NULL,
			       "only UTF-8"));
	CU_ASSERT(gate_refuses("</a>", NULL, "end tag"));
	CU_ASSERT(gate_refuses("<a><!-- never ends", NULL, "ends inside"));
	/* UTF-16: a NUL byte. */
	static const char utf16[] = "<\0a\0/\0>\0";
	struct va_buf sc = { 0 };
	const void *x;
	size_t xl;
	char why[128];
	CU_ASSERT_EQUAL(va_xml_gate(utf16, sizeof(utf16) - 1, NULL, &sc, &x, &xl, why, sizeof(why)),
			-1);
	va_buf_free(&sc);
}

static char *
nested(size_t depth)
{
	struct va_buf b = { 0 };
	for (size_t i = 0; i < depth; i++)
		va_buf_append_str(&b, "<a>");
	for (size_t i = 0; i < depth; i++)
		va_buf_append_str(&b, "</a>");
	va_buf_append(&b, "", 1);
	return (char *)b.data;
}

static void
test_gate_bounds(void)
{
	struct va_xml_limits lim = { .max_depth = 10, .max_elements = 20, .max_members = 3 };
	struct va_buf sc = { 0 };
	const void *x;
	size_t xl;
	char why[128];

	char *ok = nested(10), *deep = nested(11);
	CU_ASSERT_EQUAL(va_xml_gate(ok, strlen(ok), &lim, &sc, &x, &xl, why, sizeof(why)), 0);
	CU_ASSERT(gate_refuses(deep, &lim, "deeper than 10"));
	free(ok);
	free(deep);
	/* Empty elements count as elements, not as depth. */
	struct va_buf b = { 0 };
	va_buf_append_str(&b, "<a>");
	for (int i = 0; i < 19; i++)
		va_buf_append_str(&b, "<b/>");
	va_buf_append_str(&b, "</a>");
	va_buf_append(&b, "", 1);
	CU_ASSERT_EQUAL(va_xml_gate(b.data, b.len - 1, &lim, &sc, &x, &xl, why, sizeof(why)), 0);
	b.len -= 5;
	va_buf_append_str(&b, "<b/></a>");
	va_buf_append(&b, "", 1);
	CU_ASSERT(gate_refuses((char *)b.data, &lim, "more than 20 elements"));
	va_buf_free(&b);
	CU_ASSERT_EQUAL(va_xml_gate("<s><member/><member/><member/></s>", 34, &lim, &sc, &x, &xl,
				    why, sizeof(why)), 0);
	CU_ASSERT(gate_refuses("<s><member/><member/><member/><member/></s>", &lim,
			       "more than 3 members"));
	/* Members are counted per struct. */
	static const char two[] = "<a><s><member/><member/></s><s><member/><member/></s></a>";
	CU_ASSERT_EQUAL(va_xml_gate(two, strlen(two), &lim, &sc, &x, &xl, why, sizeof(why)), 0);
	/* The default limits: 200,000 nested elements (the crash of xmlrpc-c) refused. */
	char *bomb = nested(200000);
	CU_ASSERT(gate_refuses(bomb, NULL, "deeper than"));
	free(bomb);
	va_buf_free(&sc);
}

/* What the guest reports (a kernel log, names from /sys) made carriable. */
static void
test_sanitize(void)
{
	char s[] = "ok\t\n\r\x01\x7f\xc3\xa9\xff\xe2\x9c\x93\xe2\x9c end \xf0\x9f\x98\x80\xef\xbf\xbe";
	size_t n = sizeof(s) - 1;
	const char *why;
	CU_ASSERT_EQUAL(va_text_sanitize(s, n), n);
	CU_ASSERT_EQUAL(memcmp(s, "ok\t\n\r?\x7f\xc3\xa9?\xe2\x9c\x93?? end \xf0\x9f\x98\x80???", n), 0);
	CU_ASSERT_EQUAL(va_text_check(s, n, &why), n);
	char cut[] = "a\xf0\x9f\x98";
	CU_ASSERT_EQUAL(va_text_sanitize(cut, 4), 4);
	CU_ASSERT_STRING_EQUAL(cut, "a???");
}

/* A body without anything to rewrite is parsed as it is (no copy). */
static void
test_gate_no_copy(void)
{
	static const char body[] = "<?xml version=\"1.0\"?><methodCall><methodName>va.ping"
				   "</methodName><params/></methodCall>";
	struct va_buf sc = { 0 };
	const void *x;
	size_t xl;
	char why[128];

	CU_ASSERT_EQUAL(va_xml_gate(body, sizeof(body) - 1, NULL, &sc, &x, &xl, why, sizeof(why)), 0);
	CU_ASSERT_PTR_EQUAL(x, body);
	CU_ASSERT_EQUAL(xl, sizeof(body) - 1);
	CU_ASSERT_EQUAL(sc.len, 0);
	va_buf_free(&sc);
}

/* 1 MiB of mixed text (every corpus string, repeated) in one value, both ways. */
static void
test_one_mib(void)
{
	struct va_buf text = { 0 };
	while (text.len < 1024 * 1024)
		for (size_t i = 0; i < NCORPUS; i++)
			va_buf_append_str(&text, corpus[i]);
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *v = va_text_value(&env, (char *)text.data, text.len);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	struct va_buf xml = { 0 };
	va_rpc_serialize_response(&env, &xml, v);
	xmlrpc_DECREF(v);
	xmlrpc_value *res = NULL;
	int code;
	char *fs;
	va_rpc_parse_response(&env, xml.data, xml.len, &res, &code, &fs);
	CU_ASSERT_FALSE_FATAL(env.fault_occurred);
	char *back;
	size_t len;
	va_text_read(&env, res, &back, &len);
	CU_ASSERT_EQUAL(len, text.len);
	CU_ASSERT(back && memcmp(back, text.data, len) == 0);
	free(back);
	xmlrpc_DECREF(res);
	va_buf_free(&xml);
	va_buf_free(&text);
	xmlrpc_env_clean(&env);
}

/* Faults carry the text too. */
static void
test_fault_text(void)
{
	struct va_buf xml = { 0 }, enc = { 0 };
	size_t at;
	const char *why;
	va_text_encode("no such file: /tmp/\xF0\x9F\x98\x80\r", 24, &enc, &at, &why);
	va_buf_append(&enc, "", 1);
	CU_ASSERT_EQUAL(va_rpc_serialize_fault(&xml, 7, (char *)enc.data), 0);
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *res;
	int code;
	char *fs = NULL;
	va_rpc_parse_response(&env, xml.data, xml.len, &res, &code, &fs);
	CU_ASSERT_FALSE(env.fault_occurred);
	CU_ASSERT_EQUAL(code, 7);
	CU_ASSERT(fs && strcmp(fs, "no such file: /tmp/\xF0\x9F\x98\x80\r") == 0);
	free(fs);
	va_buf_free(&xml);
	va_buf_free(&enc);
	xmlrpc_env_clean(&env);
}

static const struct va_test tests[] = {
	{ "characters XML carries, and the rules that refuse", test_char_rules },
	{ "the value form round-trips the corpus", test_value_form },
	{ "a call of every corpus string, serialised and parsed", test_round_trip_call },
	{ "what clients write: references, raw UTF-8, CDATA", test_client_forms },
	{ "the gate refuses, naming why", test_gate_refuses },
	{ "the gate's bounds: depth, elements, members", test_gate_bounds },
	{ "the gate does not copy a body it need not rewrite", test_gate_no_copy },
	{ "what the guest reports is made carriable", test_sanitize },
	{ "1 MiB of mixed text, both ways", test_one_mib },
	{ "fault strings carry the text", test_fault_text },
};

int
main(void)
{
	va_rpc_init(16 * 1024 * 1024);
	return va_test_run("text", VA_TESTS(tests));
}
