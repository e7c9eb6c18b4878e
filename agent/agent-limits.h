/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent-limits.h - the guest agent's limits, as plain numbers: shared by
 * the method groups, the control socket, va-clip (which needs none of
 * xmlrpc-c) and the tests.
 */
#ifndef VA_AGENT_LIMITS_H
#define VA_AGENT_LIMITS_H

/* Largest count for va.file.read and data for va.file.write (decoded bytes). */
#define VA_FILE_MAX_CHUNK (8u * 1024 * 1024)
#define VA_FILE_MAX_HANDLES 64
/* va.file.checksum calls being hashed at once (more get a "busy" fault). */
#define VA_FILE_MAX_CHECKSUMS 4
#define VA_FILE_IDLE_SECONDS 300
/*
 * When every handle is open, va.file.open takes the least recently used
 * one idle for at least this long (its owner then gets a fault naming
 * it): transfers cut by a proxy restart cannot lock everyone out until
 * the idle sweep.
 */
#define VA_FILE_RECLAIM_SECONDS 5
/* Reclaimed handles remembered, so that their owners hear why. */
#define VA_FILE_RECLAIMED_MEMORY 64
/* The clipboard's text, and so a va-clip copy or paste, in bytes. */
#define VA_CLIPBOARD_MAX (1024u * 1024)
#define VA_DMESG_DEFAULT 65536
#define VA_DMESG_MAX (1024u * 1024)

#endif
