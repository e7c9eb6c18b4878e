/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * files.h - va-proxy's file endpoints: guest files over plain HTTP.
 *
 *   GET  /guests/NAME/files/PATH   the file's bytes (Range, If-Match,
 *                                  If-None-Match, If-Range honoured)
 *   HEAD /guests/NAME/files/PATH   its size, ETag, Last-Modified (and
 *                                  Repr-Digest when Want-Repr-Digest asks)
 *   PUT  /guests/NAME/files/PATH   the body into the file: written to
 *                                  PATH.partial, renamed onto PATH when
 *                                  whole (and its ?sha256= matches);
 *                                  ?offset=N or Content-Range resumes
 *
 * NAME is a guest of the proxy, or "default" when it serves one; PATH is
 * the absolute guest path, %XX-decoded.  The bytes go through the
 * agent's binary operations (common/filestream.h) with a few calls of at
 * most a chunk in flight, so proxy and agent hold a bounded amount
 * whatever the size of the file and the speed of the client or the
 * guest.  docs/USAGE.md shows the clients (curl, Python), docs/PROTOCOL.md
 * (section 8) the design.
 *
 * Everything here runs on the proxy's loop thread: va_files_stream is
 * the HTTP server's ops->stream for targets under VA_FILES_PREFIX.
 */
#ifndef VA_PROXY_FILES_H
#define VA_PROXY_FILES_H

#include "httpd.h"

#define VA_FILES_PREFIX "/guests/"
/*
 * Reads or writes in flight per transfer, and the largest of each: a
 * transfer keeps at most VA_FILES_WINDOW x VA_FILES_CHUNK bytes between
 * the agent and the client (smaller chunks when a side's frame limit is
 * small: the window stays under half of it, stuffing included).  A
 * transfer starts with chunks of VA_FILES_CHUNK_FIRST and follows the
 * channel's speed between VA_FILES_CHUNK_MIN and that largest (files.c:
 * adapt), so that every call of the window is answered well within the
 * call timeout on a slow channel too.
 */
#define VA_FILES_WINDOW 4
#define VA_FILES_CHUNK (1024u * 1024)
#define VA_FILES_CHUNK_FIRST (64u * 1024)
#define VA_FILES_CHUNK_MIN 4096u
/* Transfers of one guest at once; more are answered 503. */
#define VA_FILES_MAX_STREAMS 16

struct va_http_head;

/* ops->stream of the proxy's HTTP server (opaque: the struct va_proxy). */
void va_files_stream(void *opaque, struct va_http_stream *st, const struct va_http_head *hd);

#endif
