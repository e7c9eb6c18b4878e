/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"

#define SECRET_HEX_DIGITS 32
/* Longest Authorization value decoded (base64 of user:password). */
#define MAX_CREDENTIALS 1024

static int
make_parent_dir(const char *path)
{
	char *dir = strdup(path);
	if (!dir)
		return -1;
	char *slash = strrchr(dir, '/');
	int r = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			r = -1;
	}
	int saved = errno;
	free(dir);
	errno = saved;
	return r;
}

static int
create_secret(const char *path, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[SECRET_HEX_DIGITS / 2];
	char text[SECRET_HEX_DIGITS + 1];
	size_t got = 0;

	while (got < sizeof(rnd)) {
		ssize_t r = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "auth file %s: no random numbers: %s", path,
				 strerror(errno));
			return -1;
		}
		got += (size_t)r;
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		text[2 * i] = hex[rnd[i] >> 4];
		text[2 * i + 1] = hex[rnd[i] & 15];
	}
	text[SECRET_HEX_DIGITS] = '\n';

	if (make_parent_dir(path) < 0) {
		snprintf(err, errlen, "auth file %s: cannot create its directory: %s", path,
			 strerror(errno));
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0; /* someone else made it: read that one */
		snprintf(err, errlen, "auth file %s: cannot create it: %s", path, strerror(errno));
		return -1;
	}
	/* The mode given to open() is filtered by the umask: make it exact. */
	if (fchmod(fd, 0600) < 0 || write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) ||
	    fsync(fd) < 0) {
		snprintf(err, errlen, "auth file %s: cannot write it: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	va_log_info("auth file %s created with a new random secret", path);
	return 0;
}

int
va_auth_load(const char *path, char **secret, char *err, size_t errlen)
{
	struct stat st;

	*secret = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (create_secret(path, err, errlen) < 0)
			return -1;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		snprintf(err, errlen, "auth file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "auth file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "auth file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (!va_proxy_secret_mode_ok(st.st_mode)) {
		snprintf(err, errlen, "auth file %s has mode %04o: group and others must have no "
			 "access to the secret (chmod 600 %s)", path,
			 (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	enum va_proxy_secret_result r = va_proxy_secret_read(fd, secret);
	int e = errno;
	close(fd);
	switch (r) {
	case VA_PROXY_SECRET_OK:
		return 0;
	case VA_PROXY_SECRET_READ_ERROR:
		snprintf(err, errlen, "auth file %s: %s", path, strerror(e));
		return -1;
	case VA_PROXY_SECRET_TOO_LONG:
		snprintf(err, errlen, "auth file %s: the secret is longer than %d bytes", path,
			 VA_PROXY_MAX_SECRET);
		return -1;
	case VA_PROXY_SECRET_EMPTY:
		snprintf(err, errlen, "auth file %s is empty: put a secret in it, or remove it "
			 "to get a random one", path);
		return -1;
	case VA_PROXY_SECRET_NO_MEMORY:
		break;
	}
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict base64 (padding optional) into out; returns the length or -1. */
static long
b64_decode(const char *in, uint8_t *out, size_t outmax)
{
	size_t n = strlen(in), o = 0;
	uint32_t acc = 0;
	int bits = 0;

	while (n > 0 && in[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outmax)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)o;
}

int
va_auth_check(const char *authorization, const char *secret, const char **why)
{
	uint8_t cred[MAX_CREDENTIALS];

	if (!authorization) {
		*why = "no credentials";
		return 0;
	}
	while (*authorization == ' ')
		authorization++;
	if (strncasecmp(authorization, "Basic ", 6) != 0) {
		*why = "not Basic authentication";
		return 0;
	}
	const char *b64 = authorization + 6;
	while (*b64 == ' ')
		b64++;
	long n = b64_decode(b64, cred, sizeof(cred));
	if (n < 0) {
		*why = "malformed credentials";
		return 0;
	}
	uint8_t *colon = memchr(cred, ':', (size_t)n);
	if (!colon) {
		*why = "malformed credentials";
		explicit_bzero(cred, sizeof(cred));
		return 0;
	}
	const uint8_t *pw = colon + 1;
	size_t pwlen = (size_t)n - (size_t)(pw - cred);
	size_t slen = strlen(secret);
	/* Every byte of the secret is compared, wherever a difference is. */
	unsigned diff = pwlen != slen;
	for (size_t i = 0; i < slen; i++)
		diff |= (unsigned)((i < pwlen ? pw[i] : 0) ^ (uint8_t)secret[i]);
	explicit_bzero(cred, sizeof(cred));
	if (diff) {
		*why = "wrong password";
		return 0;
	}
	*why = "ok";
	return 1;
}
