/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dmesg.c - va.dmesg, the group "dmesg" (no state of its own): the tail
 * of the kernel log, read with klogctl(2) (SYSLOG_ACTION_READ_ALL, which
 * does not clear the log), not by running dmesg.
 *
 * The text is what the kernel returns ("<6>[    1.234] ..." records, one
 * per line), cut to the last max_bytes at a line start when there is
 * one, with every byte that XML-RPC cannot carry (invalid UTF-8, control
 * characters other than newline and tab) replaced by '?', and each
 * character above U+FFFF (which xmlrpc-c refuses) by one '?'.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR           wrong number or type of parameters
 *   XMLRPC_INDEX_ERROR          max_bytes <= 0
 *   XMLRPC_LIMIT_EXCEEDED_ERROR max_bytes > VA_DMESG_MAX
 *   XMLRPC_INTERNAL_ERROR       klogctl failed (EPERM in a container,
 *                               or with kernel.dmesg_restrict and no
 *                               CAP_SYSLOG), or out of memory
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>

#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

/* From linux/kernel/printk; glibc's <sys/klog.h> only declares klogctl(). */
#ifndef SYSLOG_ACTION_READ_ALL
#define SYSLOG_ACTION_READ_ALL 3
#endif
#ifndef SYSLOG_ACTION_SIZE_BUFFER
#define SYSLOG_ACTION_SIZE_BUFFER 10
#endif

static xmlrpc_value *
method_dmesg(xmlrpc_env *env, xmlrpc_value *params, void *server_info,
	     void *call_info)
{
	static const char usage[] = "va.dmesg: expected ([int max_bytes])";
	int64_t max = VA_DMESG_DEFAULT;
	int n, size, len;
	char *buf;

	(void)server_info;
	(void)call_info;
	n = va_params_count(env, params, 0, 1, usage);
	if (n < 0)
		return NULL;
	if (n == 1)
		va_param_int64(env, params, 0, usage, &max);
	if (env->fault_occurred)
		return NULL;
	va_log_info("va.dmesg %" PRId64, max);
	if (max <= 0) {
		va_fault(env, XMLRPC_INDEX_ERROR,
		    "va.dmesg: max_bytes must be positive, not %" PRId64, max);
		return NULL;
	}
	if ((uint64_t)max > VA_DMESG_MAX) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "va.dmesg: max_bytes %" PRId64 " exceeds the maximum of %u",
		    max, VA_DMESG_MAX);
		return NULL;
	}

	size = klogctl(SYSLOG_ACTION_SIZE_BUFFER, NULL, 0);
	if (size < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.dmesg: cannot read the kernel log: %s", strerror(errno));
		return NULL;
	}
	/* The size comes from the kernel (log_buf_len), not from the peer. */
	buf = malloc(size > 0 ? (size_t)size : 1);
	if (!buf) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "va.dmesg: out of memory");
		return NULL;
	}
	len = klogctl(SYSLOG_ACTION_READ_ALL, buf, size);
	if (len < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "va.dmesg: cannot read the kernel log: %s", strerror(errno));
		free(buf);
		return NULL;
	}

	size_t start = 0, end = (size_t)len;
	if (end > (uint64_t)max) {
		start = end - (size_t)max;
		/* Start at a whole line when the tail holds one. */
		if (buf[start - 1] != '\n') {
			char *nl = memchr(buf + start, '\n', end - start);
			if (nl && (size_t)(nl + 1 - buf) < end)
				start = (size_t)(nl + 1 - buf);
		}
	}
	size_t clean = va_text_sanitize(buf + start, end - start);
	xmlrpc_value *res = va_text_value(env, buf + start, clean);
	free(buf);
	return env->fault_occurred ? NULL : res;
}

static const struct xmlrpc_method_info3 dmesg_methods[] = {
	{
		.methodName = "va.dmesg",
		.methodFunction = method_dmesg,
		.signatureString = "s:,s:i",
		.help = "va.dmesg([int max_bytes]) -> string: the last max_bytes "
			"(default 65536, at most 1048576) of the kernel log, "
			"from a line start, as the kernel formats it (with "
			"<level> prefixes). Bytes that are not valid UTF-8 or "
			"are control characters become '?'. Needs CAP_SYSLOG "
			"(fails with EPERM in most containers).",
	},
};

const struct va_method_group va_group_dmesg = {
	.name = "dmesg",
	VA_GROUP_METHODS(dmesg_methods),
};
