/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clipboard.h - the agent's clipboard buffer, shared by va.clipboard.*
 * (clipboard.c), the control socket (control.c, for va-clip) and the
 * desktop bridges.  The buffer is the state of the group "clipboard",
 * reached through the agent (the core holds it): every function takes
 * the agent, and does nothing (stores nothing, views an empty
 * clipboard) in an agent without that group.
 */
#ifndef VA_AGENT_CLIPBOARD_H
#define VA_AGENT_CLIPBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

/* A view into the buffer: valid until the next store or clear. */
struct va_clip_view {
	const char *text;
	size_t len;
	uint64_t serial;
	const char *origin; /* "host", "guest", or "none" when empty */
};

/*
 * Stores text (copied) with origin "host" (from va.clipboard.set) or
 * "guest" (va-clip copy, the paste bridge); a guest's text is sent on to
 * the host (host.clipboard.set), a host's to the copy bridge.  Returns
 * the new serial, 0 when refused (not text XML-RPC can carry, over
 * VA_CLIPBOARD_MAX, another origin) or out of memory.
 */
uint64_t va_clipboard_store(struct va_agent *a, const char *text, size_t len, const char *origin);
void va_clipboard_view(struct va_agent *a, struct va_clip_view *v);
/* The last text the host set (for va-clip paste). */
void va_clipboard_view_host(struct va_agent *a, struct va_clip_view *v);
/* Empties the buffer and the host's last text; serials go on counting. */
void va_clipboard_clear(struct va_agent *a);

#endif
