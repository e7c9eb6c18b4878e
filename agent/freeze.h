/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * freeze.h - the group "freeze" (freeze.c): va.fs.freeze, va.fs.thaw,
 * va.fs.status, the watchdog and the gate.  What is here is its state
 * file, for the tests.
 */
#ifndef VA_AGENT_FREEZE_H
#define VA_AGENT_FREEZE_H

#include <stddef.h>
#include <stdint.h>

struct va_freeze_state {
	int64_t since, deadline; /* unix seconds; deadline 0: no watchdog */
	char **paths;            /* the frozen mountpoints, in freeze order */
	size_t n;
};

/* Writes the state file at path (through path.tmp and a rename): 0 or -errno. */
int va_freeze_state_write(const char *path, int64_t since, int64_t deadline, char *const *paths,
			  size_t n);
/* Parses a state file's text: 0, -EBADMSG (st empty) or -ENOMEM. */
int va_freeze_state_parse(const char *text, size_t len, struct va_freeze_state *st);
void va_freeze_state_clear(struct va_freeze_state *st);

#endif
