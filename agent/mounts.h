/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mounts.h - the mount table of the agent's mount namespace
 * (/proc/self/mountinfo), for the groups fs, fswatch and freeze.
 *
 * Bounds: mountinfo is read up to VA_MOUNTS_MAX_BYTES and at most
 * VA_MOUNTS_MAX mounts are kept (the rest is left out).  The fields are
 * the kernel's, with its octal escapes (\040 for a space, \012 for a
 * newline, \134 for a backslash) undone: a path may hold any byte but
 * NUL.
 */
#ifndef VA_AGENT_MOUNTS_H
#define VA_AGENT_MOUNTS_H

#include <stddef.h>

#define VA_MOUNTS_MAX 4096
#define VA_MOUNTS_MAX_BYTES (4u * 1024 * 1024)

struct va_mount {
	int id, parent;
	unsigned major, minor;  /* st_dev of the filesystem (0:N for btrfs, tmpfs...) */
	char *root;             /* the path inside the filesystem mounted here */
	char *mountpoint;
	char *options;          /* per mount: "rw,relatime,..." */
	char *type;             /* "ext4", "fuse.sshfs" */
	char *source;           /* "/dev/vda1", "server:/export", "none" */
	int readonly;           /* "ro" in the mount's or the superblock's options */
};

struct va_mounts {
	struct va_mount *v;
	size_t n;
	size_t skipped;         /* lines left out (over VA_MOUNTS_MAX, malformed) */
};

/*
 * Parses mountinfo text (len bytes) into m (which the caller frees with
 * va_mounts_free, in every case).  Returns 0 or -ENOMEM.
 */
int va_mounts_parse(const char *text, size_t len, struct va_mounts *m);
/* Reads and parses /proc/self/mountinfo: 0, or -errno. */
int va_mounts_read(struct va_mounts *m);
void va_mounts_free(struct va_mounts *m);

/* The mount of mountpoint (the last one mounted there: it hides the others), or NULL. */
const struct va_mount *va_mounts_find(const struct va_mounts *m, const char *mountpoint);

/* A kernel pseudo filesystem (proc, sysfs, cgroup...): no data, not reported. */
int va_mount_pseudo(const struct va_mount *mt);
/* On a block device of this host, not FUSE nor network: what freeze, trim and fs.full take. */
int va_mount_local_disk(const struct va_mount *mt);
/*
 * Whether mt is hidden: another mount at the same mountpoint, later in
 * the table, covers it.
 */
int va_mounts_hidden(const struct va_mounts *m, size_t i);

/*
 * Whether mount i is the first visible mount of a local disk's
 * filesystem mounted read-write (bind mounts and second mounts of it
 * are not): what va.fs.trim and va.fs.freeze take by default.
 */
int va_mounts_writable_disk(const struct va_mounts *m, size_t i);

#endif
