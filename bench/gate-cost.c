/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gate-cost.c - what the most expensive body the gate accepts costs to
 * parse (docs/SECURITY.md): for each limit set, bodies built to the
 * bounds (most elements, deepest nesting, structs of the most members,
 * one long string) are parsed with va_rpc_parse_call; the time and the
 * peak memory of each parse are printed.  One body per process run
 * (argv), so that the peak RSS is that body's alone:
 *
 *     bench/gate-cost default|small elements|depth|members|string
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "buf.h"
#include "rpc.h"
#include "xmlgate.h"

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: gate-cost default|small elements|depth|members|string\n");
		return 2;
	}
	const struct va_xml_limits *lim =
		strcmp(argv[1], "small") == 0 ? &va_xml_limits_small : &va_xml_limits_default;
	struct va_buf b = { 0 };
	va_buf_append_str(&b, "<?xml version=\"1.0\"?><methodCall><methodName>x</methodName>"
			      "<params><param>");
	/* 6 elements are the envelope: methodCall, methodName, params, param, value, array/struct. */
	size_t budget = lim->max_elements - 8;
	if (strcmp(argv[2], "elements") == 0) {
		va_buf_append_str(&b, "<value><array><data>");
		for (size_t i = 0; i < budget; i++)
			va_buf_append_str(&b, "<value/>");
		va_buf_append_str(&b, "</data></array></value>");
	} else if (strcmp(argv[2], "depth") == 0) {
		size_t levels = (lim->max_depth - 4) / 3;
		for (size_t i = 0; i < levels; i++)
			va_buf_append_str(&b, "<value><array><data>");
		for (size_t i = 0; i < levels; i++)
			va_buf_append_str(&b, "</data></array></value>");
	} else if (strcmp(argv[2], "members") == 0) {
		/* As many structs of the most members as the element budget allows. */
		size_t per = lim->max_members, structs = budget / (per * 4 + 2);
		va_buf_append_str(&b, "<value><array><data>");
		for (size_t s = 0; s < structs; s++) {
			va_buf_append_str(&b, "<value><struct>");
			for (size_t m = 0; m < per; m++)
				va_buf_printf(&b, "<member><name>m%zu</name><value><i4>1</i4></value></member>", m);
			va_buf_append_str(&b, "</struct></value>");
		}
		va_buf_append_str(&b, "</data></array></value>");
	} else {
		va_buf_append_str(&b, "<value><string>");
		for (size_t i = 0; i < 1024 * 1024; i++)
			va_buf_append(&b, "a", 1);
		va_buf_append_str(&b, "</string></value>");
	}
	va_buf_append_str(&b, "</param></params></methodCall>");
	va_rpc_init(64 * 1024 * 1024);

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	double t0 = now_ms();
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	char *name = NULL;
	xmlrpc_value *params = NULL;
	struct va_buf scratch = { 0 };
	const void *xml;
	size_t xl;
	char why[256];
	if (va_xml_gate(b.data, b.len, lim, &scratch, &xml, &xl, why, sizeof(why)) < 0) {
		printf("%s %s: refused: %s\n", argv[1], argv[2], why);
		return 1;
	}
	xmlrpc_parse_call(&env, xml, xl, (const char **)&name, &params);
	double t1 = now_ms();
	if (params)
		xmlrpc_DECREF(params);
	double t2 = now_ms();
	getrusage(RUSAGE_SELF, &ru1);
	printf("%s %s: %zu bytes, parse %.1f ms, free %.1f ms, peak RSS +%ld KiB%s%s\n", argv[1],
	       argv[2], b.len, t1 - t0, t2 - t1, ru1.ru_maxrss - ru0.ru_maxrss,
	       env.fault_occurred ? ", fault: " : "", env.fault_occurred ? env.fault_string : "");
	free(name);
	va_buf_free(&b);
	va_buf_free(&scratch);
	xmlrpc_env_clean(&env);
	return 0;
}
