/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stuff.h - byte stuffing: binary bodies on a channel where 0xFF only
 * ever starts a frame.
 *
 * The channel's resynchronisation rests on one rule: the byte 0xFF never
 * occurs inside a frame (frame.h).  A binary body is therefore sent
 * "stuffed": every 0xFE becomes FE 01 and every 0xFF becomes FE 02; all
 * other bytes go as they are.  On the wire FE is always followed by 01
 * or 02; anything else after an FE (or an FE as the last byte of a body)
 * is a malformed body.  The frame carries "Content-Encoding: va-stuffed"
 * and its Content-Length counts the stuffed bytes, so the receiver's
 * limit applies to what is on the wire, and a stuffed body is at most
 * twice the raw one (random data: +0.8%; text: +0%).
 *
 * All functions are pure (no allocation, no state but what is passed
 * in) and scan with SSE2 where the compiler targets it, 8 bytes at a
 * time otherwise.  Lengths are size_t and never overflow: a stuffed
 * length is computed only through va_stuff_len(), which reports overflow.
 */
#ifndef VA_STUFF_H
#define VA_STUFF_H

#include <stddef.h>
#include <stdint.h>

#define VA_STUFF_ESC 0xFE
/* The Content-Encoding value of a stuffed body (compare case-insensitively). */
#define VA_STUFF_CODING "va-stuffed"

/* Offset of the first byte >= 0xFE in p[0..n), or n when there is none. */
size_t va_stuff_scan(const void *p, size_t n);

/* How many bytes of p[0..n) need an escape (0xFE and 0xFF bytes). */
size_t va_stuff_count(const void *p, size_t n);

/*
 * The stuffed length of n raw bytes holding count escapes (from
 * va_stuff_count), or SIZE_MAX when it does not fit in a size_t.
 */
size_t va_stuff_len(size_t n, size_t count);

/*
 * Writes src[0..n) stuffed into dst, which has room for
 * va_stuff_len(n, va_stuff_count(src, n)) bytes and does not overlap src.
 * Returns the bytes written.
 */
size_t va_stuff(void *dst, const void *src, size_t n);

/*
 * Stuffs buf[0..n) in place, working from the end: buf has room for
 * n + count bytes, count being va_stuff_count(buf, n) (passed in so that
 * the caller, who needed it to size buf, does not scan twice).  Returns
 * n + count.
 */
size_t va_stuff_inplace(void *buf, size_t n, size_t count);

/*
 * How many raw bytes of src[0..n), from the start, stuff into at most
 * max bytes; *stuffed (may be NULL) gets their stuffed length.  For a
 * sender that must stay under the receiver's frame limit: it sends that
 * many and the rest in the next frame.
 */
size_t va_stuff_fit(const void *src, size_t n, size_t max, size_t *stuffed);

/* The state of an incremental decoder; zero-initialise it per body. */
struct va_unstuff {
	int esc; /* the last byte seen was an FE whose pair has not come yet */
};

enum va_unstuff_status {
	VA_UNSTUFF_OK = 0, /* all n bytes consumed */
	VA_UNSTUFF_BAD,    /* an FE followed by a byte other than 01, 02 (or FF) */
	VA_UNSTUFF_SENTINEL, /* met a 0xFF: it is not consumed */
};

/*
 * Decodes stuffed bytes src[0..n) into dst, which has room for n bytes;
 * dst may be src (decoding in place) or a buffer that does not overlap
 * src.  The input may be cut anywhere: an FE at the end of one piece
 * pairs with the first byte of the next (st->esc).  Sets *out to the
 * bytes written and *used to the bytes consumed, and returns:
 *   VA_UNSTUFF_OK        *used == n;
 *   VA_UNSTUFF_BAD       *used includes the byte after the FE that was
 *                        neither 01 nor 02; decoding must stop;
 *   VA_UNSTUFF_SENTINEL  src[*used] is 0xFF (alone or after an FE); it
 *                        ends the frame in a stuffed body too.
 * At the end of a body, st->esc set means the body ended in a lone FE:
 * malformed as well.
 */
enum va_unstuff_status va_unstuff(struct va_unstuff *st, void *dst, const void *src,
				  size_t n, size_t *out, size_t *used);

#endif
