/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * text.h - every Unicode string, and CR, through xmlrpc-c.
 *
 * xmlrpc-c (1.33, and every version up to today's) refuses any character
 * above U+FFFF in its string constructors, and its parser turns CR (even
 * one written as &#13;) into LF.  So no xmlrpc_value can hold "😀" or
 * "a\r\nb" as they are.  virtagent holds them anyway, in an escaped form
 * that xmlrpc-c accepts (the "value form"), and converts at the edges:
 *
 *   U+E000 (the first private-use character) followed by a code point in
 *   upper-case hex and ';' stands for that code point.  The escape is
 *   used for CR (U+000D: ESC "D;"), for every character above U+FFFF
 *   (ESC "1F600;"), and for U+E000 itself (ESC "E000;"), and for nothing
 *   else; text without those characters is the same in both forms.
 *
 * Where the conversions happen (one mechanism for every method):
 *   - a peer's XML -> values: va_xml_gate (xmlgate.h) rewrites the body
 *     before xmlrpc-c parses it (raw 4-byte UTF-8, &#13;, &#x1F600;, and
 *     a literal U+E000 become the escape);
 *   - values -> XML: every serializer of the project (rpc.h, and the
 *     registry's answers in xmlgate.h) passes its output through
 *     va_text_xml_out, which writes each escaped character back as
 *     UTF-8, and CR as "&#13;", so that every client reads "\r";
 *   - methods read and build strings with va_text_read / va_text_value
 *     (raw UTF-8 in, raw UTF-8 out), never with xmlrpc-c's string
 *     functions.
 *
 * Text that XML 1.0 cannot carry is refused, never changed: invalid or
 * overlong UTF-8, surrogates, code points above U+10FFFF, U+FFFE, U+FFFF,
 * and the control characters other than tab, LF and CR (U+0000 too).
 */
#ifndef VA_TEXT_H
#define VA_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include <xmlrpc-c/base.h>

#include "buf.h"

/* U+E000 in UTF-8: the escape of the value form. */
#define VA_TEXT_ESC "\xEE\x80\x80"
#define VA_TEXT_ESC_CP 0xE000u

/*
 * Decodes one UTF-8 character of s[0..len) (len >= 1) that XML 1.0 may
 * carry.  Returns its length (1-4) with *cp set, or 0 when the bytes are
 * not one (see above; *why says which rule, in plain words).
 */
size_t va_text_char(const uint8_t *s, size_t len, uint32_t *cp, const char **why);
/* Whether XML 1.0 may carry the code point (the Char production). */
int va_text_xml_char(uint32_t cp);
/* Appends the escape for cp (ESC HEX ';') to out.  0 or -ENOMEM. */
int va_text_put_escape(struct va_buf *out, uint32_t cp);
/* Appends cp as UTF-8.  0 or -ENOMEM. */
int va_text_put_utf8(struct va_buf *out, uint32_t cp);

/*
 * Checks raw text.  Returns len when every character may be carried,
 * else the offset of the first byte that may not (with *why set).
 */
size_t va_text_check(const char *s, size_t len, const char **why);

/*
 * Sets a fault in env whose message is printf(fmt, ...) in raw UTF-8,
 * kept exactly: xmlrpc-c's own fault functions replace every byte of a
 * character above U+FFFF (a path with an emoji) and CR, so a method's
 * fault message goes through here (value form; the serializers undo it).
 * Bytes XML cannot carry become '?'.
 */
void va_fault(xmlrpc_env *env, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * A new string value holding raw UTF-8 text s[0..len) (NUL bytes are
 * refused like every control character).  Fault XMLRPC_TYPE_ERROR, naming
 * the byte offset and the rule, when the text cannot be carried.
 */
xmlrpc_value *va_text_value(xmlrpc_env *env, const char *s, size_t len);
/* Same for a NUL-terminated string. */
xmlrpc_value *va_text_value_z(xmlrpc_env *env, const char *s);
/*
 * The raw UTF-8 text of a string value: *out malloc'ed and
 * NUL-terminated (the caller frees it), *len its length (may be NULL).
 * Fault XMLRPC_TYPE_ERROR when v is not a string.
 */
void va_text_read(xmlrpc_env *env, xmlrpc_value *v, char **out, size_t *len);

/*
 * Makes arbitrary bytes (a kernel log, a name read from /sys) into text
 * XML can carry, in place: every byte of an invalid sequence and every
 * control character XML forbids becomes '?' (tab, LF, CR and every valid
 * character, above U+FFFF too, stay).  Returns len (the text keeps its
 * length).  For what the guest reports, never for what a client sent:
 * that is refused, not changed.
 */
size_t va_text_sanitize(char *s, size_t len);

/*
 * Value form -> raw text: appends s[0..len) to out with every escape
 * undone.  A U+E000 that is not a well-formed escape is copied as it is.
 * 0 or -ENOMEM.
 */
int va_text_decode(const char *s, size_t len, struct va_buf *out);
/*
 * Raw text -> value form: appends s[0..len) to out, escaped.  Returns 0,
 * -EILSEQ when the text cannot be carried (*bad_at and *why set), or
 * -ENOMEM.
 */
int va_text_encode(const char *s, size_t len, struct va_buf *out, size_t *bad_at,
		   const char **why);

/*
 * XML written by xmlrpc-c from values -> XML for the wire: appends xml to
 * out with every escape undone (the character as UTF-8; CR as "&#13;").
 * 0 or -ENOMEM.
 */
int va_text_xml_out(const void *xml, size_t len, struct va_buf *out);
/* Whether xml holds an escape (so va_text_xml_out would change it). */
int va_text_has_escape(const void *xml, size_t len);

#endif
