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
/*
 * va.clipboard.get with a desktop paste command: how long the command
 * may run before it is killed, and how many calls may wait for the one
 * run at a time (more get a "busy" fault).
 */
#define VA_CLIPBOARD_PASTE_MS 2000
#define VA_CLIPBOARD_PASTE_WAITERS 16
#define VA_DMESG_DEFAULT 65536
#define VA_DMESG_MAX (1024u * 1024)
/* va.exec.*: commands running at once, entries kept (running or finished, unread). */
#define VA_EXEC_MAX_RUNNING 16
#define VA_EXEC_MAX_KEPT 32
/* Bytes the agent buffers per output stream, and for stdin, of one command. */
#define VA_EXEC_BUFFER (1024u * 1024)
/* Largest data of one va.exec.write (decoded), and default and largest read. */
#define VA_EXEC_MAX_WRITE (1024u * 1024)
#define VA_EXEC_READ_DEFAULT (1024u * 1024)
#define VA_EXEC_MAX_READ (4u * 1024 * 1024)
/* A finished command's state is kept this long when nobody reads it. */
#define VA_EXEC_KEEP_S 60
/* Longest wait_ms of va.exec.read; how long a va.exec.write waits for room. */
#define VA_EXEC_MAX_WAIT_MS 120000
#define VA_EXEC_WRITE_WAIT_MS 10000

#endif
