/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * os.c - the group "os" (no state of its own): va.os.info and
 * va.hostname.
 *
 * os-release (/etc/os-release, else /usr/lib/os-release, at most
 * OS_RELEASE_MAX bytes) is parsed as the shell would source it
 * (info.c's va_os_release_value); uname gives the kernel.  Every text is
 * the guest's and is reported as methods.h says (U+FFFD, NAME_raw).
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR     parameters given
 *   XMLRPC_INTERNAL_ERROR uname failed, out of memory
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

#define OS_RELEASE_MAX 65536

/* The os-release keys va.os.info reports, and its member for each. */
static const struct {
	const char *key, *member, *dflt;
} release_keys[] = {
	/* Defaults from os-release(5). */
	{ "ID", "id", "linux" },
	{ "VERSION_ID", "version_id", "" },
	{ "PRETTY_NAME", "pretty_name", "Linux" },
	{ "NAME", "name", "Linux" },
	{ "VERSION", "version", "" },
	{ "VERSION_CODENAME", "version_codename", "" },
};

static int
do_uname(xmlrpc_env *env, const char *method, struct utsname *u)
{
	if (uname(u) == 0)
		return 0;
	va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: uname: %s", method,
				       strerror(errno));
	return -1;
}

static xmlrpc_value *
method_os_info(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char *const paths[] = { "/etc/os-release", "/usr/lib/os-release" };
	struct utsname u;
	char *text = NULL;
	size_t len = 0;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.os.info") < 0)
		return NULL;
	if (do_uname(env, "va.os.info", &u) < 0)
		return NULL;
	for (size_t i = 0; i < 2 && !text; i++)
		text = va_read_file(paths[i], OS_RELEASE_MAX, &len, NULL);
	xmlrpc_value *st = xmlrpc_struct_new(env);
	for (size_t i = 0; i < sizeof(release_keys) / sizeof(release_keys[0]); i++) {
		char *v = text ? va_os_release_value(text, len, release_keys[i].key) : NULL;
		va_set_text_z(env, st, release_keys[i].member, v && v[0] ? v : release_keys[i].dflt);
		free(v);
	}
	va_set_text_z(env, st, "kernel_release", u.release);
	va_set_text_z(env, st, "kernel_version", u.version);
	va_set_text_z(env, st, "machine", u.machine);
	va_set_text_z(env, st, "hostname", u.nodename);
	free(text);
	return va_result(env, st);
}

static xmlrpc_value *
method_hostname(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	struct utsname u;

	(void)server_info;
	(void)call_info;
	if (va_params_none(env, params, "va.hostname") < 0)
		return NULL;
	if (do_uname(env, "va.hostname", &u) < 0)
		return NULL;
	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text_z(env, st, "hostname", u.nodename);
	/* The NIS domain, "(none)" when unset: reported as the kernel has it. */
	va_set_text_z(env, st, "domainname", u.domainname);
	return va_result(env, st);
}

static const struct xmlrpc_method_info3 os_methods[] = {
	{
		.methodName = "va.os.info",
		.methodFunction = method_os_info,
		.signatureString = "S:",
		.help = "va.os.info() -> struct {id, version_id, pretty_name, name, version, "
			"version_codename (os-release), kernel_release, kernel_version, machine, "
			"hostname (uname)}.",
	},
	{
		.methodName = "va.hostname",
		.methodFunction = method_hostname,
		.signatureString = "S:",
		.help = "va.hostname() -> struct {hostname, domainname (the kernel's NIS "
			"domain, \"(none)\" when unset)}.",
	},
};

const struct va_method_group va_group_os = {
	.name = "os",
	VA_GROUP_METHODS(os_methods),
};
