/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * contract.c - the rules of host/contract.h that are code, linked into
 * both va-proxy and vactl.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"

int
va_proxy_guest_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > VA_PROXY_MAX_GUEST_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

enum va_proxy_secret_result
va_proxy_secret_read(int fd, char **secret)
{
	/* One byte more than the longest secret and its line end tells
	 * "too long" from "just fits". */
	char buf[VA_PROXY_MAX_SECRET + 2];
	enum va_proxy_secret_result r = VA_PROXY_SECRET_OK;
	ssize_t n;

	*secret = NULL;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return VA_PROXY_SECRET_READ_ERROR;
	buf[n] = '\0';
	/* The first line (up to a NUL too), without trailing blanks. */
	size_t len = strcspn(buf, "\r\n");
	while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (len > VA_PROXY_MAX_SECRET)
		r = VA_PROXY_SECRET_TOO_LONG;
	else if (len == 0)
		r = VA_PROXY_SECRET_EMPTY;
	else if (!(*secret = strdup(buf)))
		r = VA_PROXY_SECRET_NO_MEMORY;
	explicit_bzero(buf, sizeof(buf));
	return r;
}
