/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reprdigest.h - the SHA-256 of a file as HTTP carries it (RFC 9530):
 * "Repr-Digest: sha-256=:BASE64:" (a structured-field dictionary whose
 * member sha-256 is a byte sequence), as va-proxy writes it on its file
 * answers and vactl reads it.  Pure functions, no allocation.
 */
#ifndef VA_REPRDIGEST_H
#define VA_REPRDIGEST_H

#include <stddef.h>
#include <stdint.h>

#define VA_SHA256_LEN 32
/* "sha-256=:" + 44 base64 characters + ":" and a NUL. */
#define VA_REPR_DIGEST_MAX 56

/* Writes "sha-256=:BASE64:" (NUL-terminated) for the digest into out. */
void va_repr_digest_format(const uint8_t digest[VA_SHA256_LEN], char out[VA_REPR_DIGEST_MAX]);
/*
 * Finds the member sha-256 in a Repr-Digest (or Content-Digest) field
 * value (members separated by commas, white space around them allowed,
 * others ignored) and decodes it into digest.  0, or -1 when there is
 * none or it is malformed.
 */
int va_repr_digest_parse(const char *value, uint8_t digest[VA_SHA256_LEN]);
/* 64 lowercase (or uppercase) hex digits -> digest.  0, or -1. */
int va_sha256_from_hex(const char *hex, size_t len, uint8_t digest[VA_SHA256_LEN]);
/* digest -> 64 lowercase hex digits and a NUL. */
void va_sha256_to_hex(const uint8_t digest[VA_SHA256_LEN], char hex[2 * VA_SHA256_LEN + 1]);

#endif
