/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control-proto.h - the protocol of the agent's local control socket,
 * shared by its two ends: the agent (control.c) and va-clip (va-clip.c).
 * Neither writes a keyword or a limit of its own.
 *
 * A unix stream socket (mode 0600, so only root reaches it by default).
 * One request per connection, then the agent answers and closes:
 *   "COPY <n>\n" followed by n bytes of UTF-8 text (n <= VA_CONTROL_MAX_TEXT)
 *       -> "OK <serial>\n"     (the agent then calls host.clipboard.set)
 *   "PASTE\n"
 *       -> "OK <n>\n" followed by n bytes: the text the host set last
 *   any error
 *       -> "ERR <message>\n"
 * <n> and <serial> are plain decimal.  A request line is at most
 * VA_CONTROL_MAX_LINE bytes before its '\n'; a whole answer at most
 * VA_CONTROL_MAX_ANSWER bytes.
 */
#ifndef VA_AGENT_CONTROL_PROTO_H
#define VA_AGENT_CONTROL_PROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-limits.h"

/* Where the agent listens unless told otherwise (va-agent --control, va-clip --socket). */
#define VA_CONTROL_DEFAULT_PATH "/run/va-agent.sock"

#define VA_CONTROL_COPY "COPY"
#define VA_CONTROL_PASTE "PASTE"
#define VA_CONTROL_OK "OK"
#define VA_CONTROL_ERR "ERR"

/* "COPY " + digits + "\n": a request line is never longer than this. */
#define VA_CONTROL_MAX_LINE 64
/* The text of a COPY or of a PASTE's answer: the clipboard's limit. */
#define VA_CONTROL_MAX_TEXT VA_CLIPBOARD_MAX
/* A whole answer: "OK <n>\n" and the text. */
#define VA_CONTROL_MAX_ANSWER (VA_CONTROL_MAX_TEXT + VA_CONTROL_MAX_LINE)

enum va_control_request {
	VA_CONTROL_REQ_UNKNOWN = -2,    /* neither COPY nor PASTE */
	VA_CONTROL_REQ_BAD_LENGTH = -1, /* COPY without a plain decimal length */
	VA_CONTROL_REQ_COPY = 1,
	VA_CONTROL_REQ_PASTE = 2,
};

/*
 * The request line "COPY <n>" or "PASTE" (without its '\n', NUL
 * terminated).  For COPY, *n is the announced length (not checked
 * against VA_CONTROL_MAX_TEXT: the caller says so).
 */
static inline enum va_control_request
va_control_parse_request(const char *line, unsigned long long *n)
{
	if (strcmp(line, VA_CONTROL_PASTE) == 0)
		return VA_CONTROL_REQ_PASTE;
	if (strncmp(line, VA_CONTROL_COPY " ", sizeof(VA_CONTROL_COPY)) != 0)
		return VA_CONTROL_REQ_UNKNOWN;
	const char *digits = line + sizeof(VA_CONTROL_COPY);
	char *end;
	errno = 0;
	*n = strtoull(digits, &end, 10);
	if (errno || *end || *digits < '0' || *digits > '9')
		return VA_CONTROL_REQ_BAD_LENGTH;
	return VA_CONTROL_REQ_COPY;
}

/* Writes the request line (with its '\n') into buf; its length, as snprintf. */
static inline int
va_control_format_copy(char *buf, size_t size, size_t n)
{
	return snprintf(buf, size, VA_CONTROL_COPY " %zu\n", n);
}

static inline int
va_control_format_paste(char *buf, size_t size)
{
	return snprintf(buf, size, VA_CONTROL_PASTE "\n");
}

/*
 * The answer's first line (without its '\n', NUL terminated): 1 for
 * "OK <n>", with *n the number (the serial of a COPY, the length of a
 * PASTE's text); 0 for anything else, with *msg the agent's message
 * (after "ERR ", or the whole line when it is not even that).
 */
static inline int
va_control_parse_answer(const char *line, unsigned long long *n, const char **msg)
{
	if (strncmp(line, VA_CONTROL_OK " ", sizeof(VA_CONTROL_OK)) == 0) {
		*n = strtoull(line + sizeof(VA_CONTROL_OK), NULL, 10);
		return 1;
	}
	*msg = strncmp(line, VA_CONTROL_ERR " ", sizeof(VA_CONTROL_ERR)) == 0 ?
	       line + sizeof(VA_CONTROL_ERR) : line;
	return 0;
}

#endif
