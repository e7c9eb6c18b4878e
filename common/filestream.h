/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * filestream.h - the file streams of protocol 2: the binary operations
 * with which va-proxy reads and writes guest files for its HTTP
 * endpoints (GET/HEAD/PUT /guests/NAME/files/PATH), as va-agent serves
 * them (agent/file-stream.c) and va-proxy calls them
 * (host/proxy/files.c).  The names here are the whole contract between
 * the two; docs/PROTOCOL.md (section 8) has the bytes and the reasons.
 *
 * Every operation is one binary call of the session (session.h): body
 * and parameters as below, Content-Type VA_CONTENT_BINARY.  Its answer
 * is a binary reply: VA_CONTENT_BINARY with the parameters below on
 * success, or VA_FS_CONTENT_ERROR with the parameter VA_FS_ERROR (one of
 * VA_FS_E_*) and a message in plain words (UTF-8 text) as the body.  A
 * text/xml answer is an XML-RPC fault: an agent that does not know the
 * operation (then the proxy says so).
 *
 *   open-read    body: the path (absolute, UTF-8 text without control
 *                characters).  Opens it for reading, as va.file.open
 *                "r" (file roots, pseudo filesystems non-blocking).
 *                Answer: handle, and what the ETag is made of: ino,
 *                mtime (ns), size (only for a regular file of a disk
 *                filesystem: the others have no size to trust), type.
 *   pread        handle, offset, count (at most VA_FILE_MAX_CHUNK, and
 *                what fits the caller's frame limit when stuffed).
 *                Answer: the bytes read at offset as the body; eof=1 when
 *                the file ended (a read is short only there, or on a
 *                FIFO, device or pseudo file that has nothing more now:
 *                those are read in order, offset being ignored).
 *   open-write   body: the path.  Opens PATH.partial in PATH's directory
 *                (the file roots apply to the directory; the last
 *                component is never followed if a symlink), locked
 *                against a second writer.  offset: 0 starts anew (an old
 *                partial is replaced), N > 0 resumes the partial, which
 *                must hold at least N bytes (it is cut to N; else
 *                VA_FS_E_RANGE with size).  perm: the mode of a new PATH
 *                (octal digits; default: PATH's own when it exists,
 *                else 0600).  Answer: handle, size of the partial (N),
 *                exists=1 when PATH exists.
 *   pwrite       handle, offset; body: the bytes.  Written in full, or
 *                the call fails and the partial is cut at offset (so it
 *                is always a clean prefix: what a resume starts from).
 *                Answer: empty.
 *   commit       handle; optional sha256 (64 hex digits: the agent hashes
 *                the partial and refuses on a mismatch, VA_FS_E_MISMATCH,
 *                leaving it in place) or hash=1 (the agent hashes it and
 *                answers sha256).  Renames PATH.partial onto PATH (mode
 *                and owner of the PATH it replaces kept) and closes the
 *                handle.  Answer: ino, mtime, size of the new PATH,
 *                created=1 when PATH did not exist, sha256 when hashed.
 *   close        handle.  Closes it; a write handle leaves its partial
 *                for a resume.  Answer: empty.
 *
 * The RPC lists of the agent apply to these as to the XML-RPC methods
 * they stand for: open-read and pread need va.file.open and va.file.read
 * enabled, open-write, pwrite and commit va.file.open and va.file.write;
 * close needs nothing (it only gives back).  A stream handle is not a
 * handle of va.file.* (and the other way round), and belongs to the
 * session that opened it: after a reset it is closed.
 */
#ifndef VA_FILESTREAM_H
#define VA_FILESTREAM_H

/* The parameter that names the operation, and the operations. */
#define VA_FS_OP "op"
#define VA_FS_OP_OPEN_READ "open-read"
#define VA_FS_OP_PREAD "pread"
#define VA_FS_OP_OPEN_WRITE "open-write"
#define VA_FS_OP_PWRITE "pwrite"
#define VA_FS_OP_COMMIT "commit"
#define VA_FS_OP_CLOSE "close"

/* Parameters (session.h: X-Va-NAME headers; numbers in decimal). */
#define VA_FS_HANDLE "handle"
#define VA_FS_OFFSET "offset"
#define VA_FS_COUNT "count"
#define VA_FS_EOF "eof"
#define VA_FS_SIZE "size"
#define VA_FS_MTIME "mtime"   /* nanoseconds since the epoch */
#define VA_FS_INO "ino"
#define VA_FS_TYPE "type"     /* file, char, block, fifo, socket */
#define VA_FS_PERM "perm"     /* octal digits */
#define VA_FS_EXISTS "exists"
#define VA_FS_CREATED "created"
#define VA_FS_SHA256 "sha256" /* 64 lowercase hex digits */
#define VA_FS_HASH "hash"
#define VA_FS_ERROR "error"

/* The content type of a failed operation's answer (its body: the message). */
#define VA_FS_CONTENT_ERROR "text/plain"

/* The suffix of the file an upload writes before it is renamed. */
#define VA_FS_PARTIAL_SUFFIX ".partial"

/* The kinds of failure (VA_FS_ERROR), each one HTTP status on the proxy. */
#define VA_FS_E_NOT_FOUND "not-found" /* ENOENT, ENOTDIR: 404 */
#define VA_FS_E_REFUSED "refused"     /* outside the file roots, EACCES, EPERM, EROFS, a symlink: 403 */
#define VA_FS_E_DISABLED "disabled"   /* the RPC lists: 403 */
#define VA_FS_E_IS_DIR "is-dir"       /* a directory: 403 (GET), 409 (PUT) */
#define VA_FS_E_BUSY "busy"           /* every handle in use, hashing already: 503 */
#define VA_FS_E_CONFLICT "conflict"   /* another upload holds the partial, a partial not ours: 409 */
#define VA_FS_E_RANGE "range"         /* resume past the end of the partial (size): 416 */
#define VA_FS_E_MISMATCH "mismatch"   /* commit: the SHA-256 differs: 409 */
#define VA_FS_E_NO_SPACE "no-space"   /* ENOSPC, EDQUOT: 507 */
#define VA_FS_E_BAD_REQUEST "bad-request" /* malformed parameters or path: 400 */
#define VA_FS_E_STALE "stale"         /* no such stream handle (closed, reset, reclaimed): 500 */
#define VA_FS_E_FAILED "failed"       /* any other failure (the message says): 500 */

#endif
