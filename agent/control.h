/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.h - the agent's local control socket, used by va-clip; the
 * protocol is in control-proto.h, which va-clip shares.
 *
 * A COPY stores the text in the agent's clipboard as the guest's, which
 * sends it on to the host; a PASTE answers the text the host set last.
 * A client that sends nothing for VA_CONTROL_IDLE_MS is dropped; at most
 * VA_CONTROL_MAX_CLIENTS at once (more wait in the listen backlog).
 */
#ifndef VA_AGENT_CONTROL_H
#define VA_AGENT_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "loop.h"

#define VA_CONTROL_MAX_CLIENTS 16
#define VA_CONTROL_IDLE_MS 10000

struct va_control;

/*
 * spec is "unix:PATH"; the socket and its clients are served on loop.
 * NULL with a message on stderr/log on failure.
 */
struct va_control *va_control_open(const char *spec, va_loop *loop, struct va_agent *a);
void va_control_free(struct va_control *c);

#endif
