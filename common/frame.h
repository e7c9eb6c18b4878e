/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * frame.h - the frames of the virtagent channel: an incremental parser
 * and a writer.
 *
 * A frame is the byte 0xFF, an HTTP/1.1-like start line, header lines,
 * an empty line and a body of exactly Content-Length bytes:
 *
 *   0xFF "POST /RPC2 HTTP/1.1\r\n"          a request (any method token)
 *   0xFF "HTTP/1.1 200 OK\r\n"              a response (any 3-digit code)
 *   "Name: value\r\n" ...                   headers
 *   "\r\n"                                  end of the header block
 *   body                                    Content-Length bytes
 *
 * 0xFF never occurs in UTF-8 text, so it can only start a frame: a 0xFF
 * met anywhere inside a frame (start line, headers or body) means the
 * sender gave up on that frame.  The parser then drops the partial frame,
 * counts it as torn and starts a new frame at that 0xFF.  Bytes before
 * the first 0xFF, and after an error up to the next 0xFF, are skipped and
 * counted.  Lines end in "\r\n"; a bare "\n" is accepted too.
 *
 * Binary bodies (protocol 2, docs/PROTOCOL.md) keep that rule by byte
 * stuffing (stuff.h): a frame with "Content-Encoding: va-stuffed" carries
 * its body with every 0xFE sent as FE 01 and every 0xFF as FE 02, and
 * its Content-Length counts those stuffed bytes.  The parser decodes such
 * a body as it arrives and delivers the raw bytes (body_len is then the
 * decoded length; the Content-Length header still says the wire length);
 * the writer stuffs the body when the headers it is given name the
 * coding.  A 0xFF tears a stuffed body like any other.
 *
 * Limits (each violation is reported through the error callback, and the
 * parser then skips input up to the next 0xFF; nothing of the claimed
 * size is allocated before the bytes arrive):
 *   - header block (start line, headers and line ends, after the 0xFF):
 *     at most VA_FRAME_MAX_HEADER_BYTES;
 *   - at most VA_FRAME_MAX_HEADERS header lines;
 *   - Content-Length: present exactly once, strict decimal digits only
 *     (optional surrounding spaces), no larger than the parser's maximum;
 *   - any Transfer-Encoding header is refused;
 *   - Content-Encoding: only "va-stuffed" (any case), at most once; in
 *     the body, an FE followed by anything but 01 or 02, or a body ending
 *     in a lone FE, is refused (VA_FRAME_ERR_BAD_STUFFING).
 * Protocol-1 parsers (before stuff.h) know nothing of Content-Encoding:
 * such a frame reaches them with its body still stuffed.  That is why a
 * session sends stuffed frames only to a peer that announced protocol 2.
 */
#ifndef VA_FRAME_H
#define VA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define VA_FRAME_SENTINEL 0xFF
#define VA_FRAME_MAX_HEADER_BYTES 8192
#define VA_FRAME_MAX_HEADERS 64
#define VA_FRAME_DEFAULT_MAX_BODY (16u * 1024 * 1024)

enum va_frame_kind {
	VA_FRAME_REQUEST,  /* "METHOD TARGET HTTP/1.1" */
	VA_FRAME_RESPONSE, /* "HTTP/1.1 CODE REASON" */
};

struct va_frame_header {
	char *name;  /* as sent; compare case-insensitively */
	char *value; /* leading and trailing spaces and tabs removed */
};

struct va_frame {
	enum va_frame_kind kind;
	char *method;  /* request: the method token ("POST", "RESET"); else NULL */
	char *target;  /* request: the request target ("/RPC2"); else NULL */
	int status;    /* response: 100..999; request: 0 */
	char *reason;  /* response: reason phrase (may be ""); else NULL */
	size_t nheaders;
	struct va_frame_header *headers;
	size_t body_len;
	/*
	 * body_len bytes and a NUL after them (not counted); decoded when the
	 * frame was stuffed.  A malloc'ed block: the owner of the frame may
	 * take it (set body to NULL before va_frame_free) and free() it later.
	 */
	uint8_t *body;
	/*
	 * frame.c's own: the parser puts the headers array and every string
	 * above (start line, names, values) in this one malloc'ed block, and
	 * va_frame_free frees it alone.  NULL in a frame made elsewhere, whose
	 * strings and array va_frame_free frees one by one.
	 */
	void *head_block;
};

enum va_frame_error {
	VA_FRAME_ERR_TORN = 1,          /* 0xFF inside a frame: partial frame dropped */
	VA_FRAME_ERR_HEADER_TOO_LARGE,  /* header block over 8 KiB */
	VA_FRAME_ERR_TOO_MANY_HEADERS,  /* over 64 header lines */
	VA_FRAME_ERR_BAD_START_LINE,    /* neither request nor response line */
	VA_FRAME_ERR_BAD_HEADER,        /* no colon, bad name, control byte, NUL */
	VA_FRAME_ERR_BAD_LENGTH,        /* Content-Length not strict decimal */
	VA_FRAME_ERR_DUP_LENGTH,        /* Content-Length more than once */
	VA_FRAME_ERR_NO_LENGTH,         /* Content-Length missing */
	VA_FRAME_ERR_TOO_LARGE,         /* Content-Length over the maximum */
	VA_FRAME_ERR_TRANSFER_ENCODING, /* Transfer-Encoding present */
	VA_FRAME_ERR_BAD_ENCODING,      /* Content-Encoding not va-stuffed, or repeated */
	VA_FRAME_ERR_BAD_STUFFING,      /* malformed escape in a stuffed body */
};

/* A short English description of err ("frame too large", ...). */
const char *va_frame_strerror(enum va_frame_error err);

/* Case-insensitive header lookup; NULL when absent. */
const char *va_frame_header(const struct va_frame *f, const char *name);
void va_frame_free(struct va_frame *f);

typedef struct va_frame_parser va_frame_parser;

struct va_frame_parser_ops {
	/*
	 * A complete frame; the callee owns it (va_frame_free).  The
	 * callback may call va_frame_parser_set_max_body(),
	 * va_frame_parser_discard() and va_frame_parser_pause() but must not
	 * free the parser or feed it.
	 */
	void (*frame)(void *opaque, struct va_frame *f);
	/*
	 * A frame was dropped.  partial, when not NULL, holds the start line
	 * and headers parsed so far (no body; valid during the call only), so
	 * the receiver can tell the sender which request failed (by its tag).
	 * Same restrictions as frame().  May be NULL.
	 */
	void (*error)(void *opaque, enum va_frame_error err,
		      const struct va_frame *partial);
};

struct va_frame_stats {
	uint64_t frames;  /* complete frames delivered */
	uint64_t torn;    /* partial frames dropped at a 0xFF */
	uint64_t errors;  /* frames refused for a limit or syntax error */
	uint64_t skipped; /* bytes skipped outside any frame */
};

/* NULL on allocation failure.  ops is copied. */
va_frame_parser *va_frame_parser_new(size_t max_body,
				     const struct va_frame_parser_ops *ops,
				     void *opaque);
void va_frame_parser_free(va_frame_parser *p);
/* Applies to frames whose headers are not complete yet. */
void va_frame_parser_set_max_body(va_frame_parser *p, size_t max_body);
/*
 * Feeds len bytes and returns how many were consumed: len, unless a
 * callback paused the parser (then the bytes up to the end of the frame
 * or error it was told about; the caller feeds the rest later).  Any
 * slicing of the same input yields the same frames and errors.  Never
 * fails: allocation failure drops the frame being read and is counted as
 * an error.
 */
size_t va_frame_parser_feed(va_frame_parser *p, const void *data, size_t len);
/*
 * From inside a frame or error callback: va_frame_parser_feed returns
 * once the callback does, leaving the rest of its input unconsumed (for
 * a receiver whose output is backed up).  Does nothing elsewhere.
 */
void va_frame_parser_pause(va_frame_parser *p);
/*
 * Drops any partial frame (not counted as torn) and skips input up to
 * the next 0xFF.  Used when the peer is known to be gone or new.
 */
void va_frame_parser_discard(va_frame_parser *p);
void va_frame_parser_stats(const va_frame_parser *p, struct va_frame_stats *st);

/*
 * Appends one whole frame to out: 0xFF, start_line, "\r\n", the given
 * headers, "Content-Length: N", an empty line and the body.
 * start_line and headers must not contain CR, LF, NUL or 0xFF, header
 * names must be tokens, callers must not pass Content-Length or
 * Transfer-Encoding, and Content-Encoding only as "va-stuffed", once.
 * With that header the body is stuffed (N is its stuffed length, and it
 * may hold any byte); without it N is body_len and the body must not
 * contain 0xFF (it would tear the frame on the way).  Returns 0, -EINVAL
 * for any of those, or -ENOMEM; out->len is unchanged on failure.
 */
int va_frame_write(struct va_buf *out, const char *start_line,
		   const struct va_frame_header *headers, size_t nheaders,
		   const void *body, size_t body_len);
/*
 * Appends only the head of a frame (everything up to and including the
 * empty line), with "Content-Length: wire_len", after the same checks.
 * The caller sends exactly wire_len body bytes after it, already in
 * their wire form: stuffed when *stuffed is set on return (the headers
 * name the coding; stuffed may be NULL), otherwise free of 0xFF.  For a
 * writer that keeps head and body in separate buffers (writev), so that a
 * body is never copied into a frame buffer.
 */
int va_frame_write_head(struct va_buf *out, const char *start_line,
			const struct va_frame_header *headers, size_t nheaders,
			size_t wire_len, int *stuffed);

#endif
