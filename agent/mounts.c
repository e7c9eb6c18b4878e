/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mounts.c - /proc/self/mountinfo (mounts.h).
 *
 * A line: ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] -
 * TYPE SOURCE SUPER-OPTIONS (proc(5)).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "methods.h"
#include "mounts.h"

#define MOUNTINFO "/proc/self/mountinfo"

/* Kernel filesystems without user data: not reported by va.fs.info. */
static const char *const pseudo_types[] = {
	"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs",
	"securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs",
	"binfmt_misc", "rpc_pipefs", "nsfs", "efivarfs", "selinuxfs", "nfsd", "ramfs",
	"devtmpfs", "rootfs", "overlay_internal",
};

/* Filesystems of other machines, or of processes: FIFREEZE/FITRIM do not apply. */
static const char *const remote_types[] = {
	"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "ceph", "glusterfs",
	"afs", "lustre", "gfs2", "ocfs2", "sshfs",
};

int
va_mount_pseudo(const struct va_mount *mt)
{
	for (size_t i = 0; i < sizeof(pseudo_types) / sizeof(pseudo_types[0]); i++)
		if (strcmp(mt->type, pseudo_types[i]) == 0)
			return 1;
	return 0;
}

int
va_mount_local_disk(const struct va_mount *mt)
{
	if (va_mount_pseudo(mt) || strncmp(mt->type, "fuse", 4) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(remote_types) / sizeof(remote_types[0]); i++)
		if (strcmp(mt->type, remote_types[i]) == 0)
			return 0;
	/* A block device: its number, or (btrfs: an anonymous number) its source. */
	return mt->major != 0 || strncmp(mt->source, "/dev/", 5) == 0;
}

/* Undoes the kernel's octal escapes in place. */
static void
unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			char c = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			if (c) {
				*o++ = c;
				s += 4;
				continue;
			}
		}
		*o++ = *s++;
	}
	*o = '\0';
}

/* The next space-separated field of *p (NUL-terminated in place), or NULL at the end. */
static char *
field(char **p)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	char *e = strchr(s, ' ');
	if (e) {
		*e = '\0';
		*p = e + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static int
has_opt(const char *opts, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *p = opts; p && *p;) {
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* One line into mt: 0, -1 malformed, -ENOMEM. */
static int
parse_line(char *line, struct va_mount *mt)
{
	char *p = line, *f[6];
	unsigned maj, min;
	int id, parent;

	for (int i = 0; i < 6; i++)
		if (!(f[i] = field(&p)))
			return -1;
	if (sscanf(f[0], "%d", &id) != 1 || sscanf(f[1], "%d", &parent) != 1 ||
	    sscanf(f[2], "%u:%u", &maj, &min) != 2)
		return -1;
	char *sep;
	while ((sep = field(&p)) && strcmp(sep, "-") != 0)
		; /* optional fields */
	char *type = sep ? field(&p) : NULL, *source = type ? field(&p) : NULL;
	char *super = source ? field(&p) : NULL;
	if (!source)
		return -1;
	memset(mt, 0, sizeof(*mt));
	mt->id = id;
	mt->parent = parent;
	mt->major = maj;
	mt->minor = min;
	char *s[5] = { f[3], f[4], f[5], type, source };
	char **d[5] = { &mt->root, &mt->mountpoint, &mt->options, &mt->type, &mt->source };
	for (int i = 0; i < 5; i++) {
		unescape(s[i]);
		if (!(*d[i] = strdup(s[i])))
			return -ENOMEM;
	}
	mt->readonly = has_opt(mt->options, "ro") || has_opt(super, "ro");
	return 0;
}

static void
mount_free(struct va_mount *mt)
{
	free(mt->root);
	free(mt->mountpoint);
	free(mt->options);
	free(mt->type);
	free(mt->source);
}

void
va_mounts_free(struct va_mounts *m)
{
	for (size_t i = 0; i < m->n; i++)
		mount_free(&m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

int
va_mounts_parse(const char *text, size_t len, struct va_mounts *m)
{
	memset(m, 0, sizeof(*m));
	const char *p = text, *end = text + len;
	size_t cap = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		size_t n = (size_t)(eol - p);
		if (m->n >= VA_MOUNTS_MAX) {
			m->skipped++;
		} else if (n > 0) {
			char *line = malloc(n + 1);
			if (!line)
				return -ENOMEM;
			memcpy(line, p, n);
			line[n] = '\0';
			if (m->n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct va_mount *nv = realloc(m->v, nc * sizeof(*nv));
				if (!nv) {
					free(line);
					return -ENOMEM;
				}
				m->v = nv;
				cap = nc;
			}
			int r = memchr(p, '\0', n) ? -1 : parse_line(line, &m->v[m->n]);
			free(line);
			if (r == -ENOMEM) {
				mount_free(&m->v[m->n]);
				return r;
			}
			if (r == 0)
				m->n++;
			else
				m->skipped++;
		}
		p = eol < end ? eol + 1 : end;
	}
	return 0;
}

int
va_mounts_read(struct va_mounts *m)
{
	size_t len = 0;
	char *text = va_read_file(MOUNTINFO, VA_MOUNTS_MAX_BYTES, &len, NULL);

	memset(m, 0, sizeof(*m));
	if (!text)
		return -errno;
	int r = va_mounts_parse(text, len, m);
	free(text);
	return r;
}

const struct va_mount *
va_mounts_find(const struct va_mounts *m, const char *mountpoint)
{
	for (size_t i = m->n; i-- > 0;)
		if (strcmp(m->v[i].mountpoint, mountpoint) == 0)
			return &m->v[i];
	return NULL;
}

int
va_mounts_hidden(const struct va_mounts *m, size_t i)
{
	for (size_t k = i + 1; k < m->n; k++)
		if (strcmp(m->v[k].mountpoint, m->v[i].mountpoint) == 0)
			return 1;
	return 0;
}

int
va_mounts_writable_disk(const struct va_mounts *m, size_t i)
{
	const struct va_mount *mt = &m->v[i];

	if (!va_mount_local_disk(mt) || mt->readonly || va_mounts_hidden(m, i))
		return 0;
	for (size_t k = 0; k < i; k++)
		if (m->v[k].major == mt->major && m->v[k].minor == mt->minor &&
		    va_mount_local_disk(&m->v[k]) && !m->v[k].readonly && !va_mounts_hidden(m, k))
			return 0; /* a bind mount, or the same filesystem mounted twice */
	return 1;
}
