/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * disks.c - block devices from sysfs (disks.h).
 *
 * The paths: /sys/dev/block/MAJ:MIN links to the device's directory
 * (/sys/devices/.../block/vda, or .../block/vda/vda1 for a partition,
 * which holds a file "partition"); /sys/block/NAME links to a disk's;
 * a disk's "device" links to what the bus made (.../virtio2 for
 * virtio-blk, .../host0/target0:0:0/0:0:0:0 for SCSI); "slaves" lists
 * what a device-mapper or md device is built on.
 *
 * Serials: virtio-blk has "serial" in the disk's directory; NVMe and
 * some others "device/serial"; SCSI and ATA (through libata) the VPD
 * page 0x80 in "device/vpd_pg80" (4 header bytes, then the text).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disks.h"
#include "methods.h"
#include "text.h"

/* sysroot + fmt..., into buf; 0, or -1 when too long. */
static int
path_of(char *buf, size_t size, const char *sysroot, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
path_of(char *buf, size_t size, const char *sysroot, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, size, "%s", sysroot);
	if (n < 0 || (size_t)n >= size)
		return -1;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, size - (size_t)n, fmt, ap);
	va_end(ap);
	return m < 0 || (size_t)m >= size - (size_t)n ? -1 : 0;
}

/* An attribute's text without surrounding white space, or NULL (absent, empty). */
static char *
attr(const char *dir, const char *name)
{
	char p[PATH_MAX];
	size_t len = 0;

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) >= sizeof(p))
		return NULL;
	char *s = va_read_file(p, VA_DISK_ATTR_MAX, &len, NULL);
	if (!s)
		return NULL;
	char *b = s, *e = s + len;
	while (b < e && (*b == ' ' || *b == '\t' || *b == '\n'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\0'))
		e--;
	if (e == b) {
		free(s);
		return NULL;
	}
	memmove(s, b, (size_t)(e - b));
	s[e - b] = '\0';
	return s;
}

static long long
attr_num(const char *dir, const char *name, long long dflt)
{
	char *s = attr(dir, name), *end;
	long long v = dflt;

	if (s) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno || end == s)
			v = dflt;
	}
	free(s);
	return v;
}

/* The serial of the VPD page 0x80 (SCSI unit serial number), or NULL. */
static char *
vpd_serial(const char *devdir)
{
	char p[PATH_MAX];
	size_t len = 0;

	if ((size_t)snprintf(p, sizeof(p), "%s/device/vpd_pg80", devdir) >= sizeof(p))
		return NULL;
	unsigned char *b = (unsigned char *)va_read_file(p, VA_DISK_ATTR_MAX, &len, NULL);
	if (!b)
		return NULL;
	char *out = NULL;
	if (len >= 4 && b[1] == 0x80) {
		size_t n = (size_t)b[2] << 8 | b[3];
		if (n > len - 4)
			n = len - 4;
		size_t s = 4, e = 4 + n;
		while (s < e && (b[s] == ' ' || b[s] == '\0'))
			s++;
		while (e > s && (b[e - 1] == ' ' || b[e - 1] == '\0'))
			e--;
		if (e > s && (out = malloc(e - s + 1)) != NULL) {
			memcpy(out, b + s, e - s);
			out[e - s] = '\0';
		}
	}
	free(b);
	return out;
}

static int
is_pci_address(const char *s)
{
	/* dddd:bb:ss.f in lowercase hex */
	static const char shape[] = "hhhh:hh:hh.h";
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		char c = s[i];
		if (shape[i] == 'h' ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) : c != shape[i])
			return 0;
	}
	return s[sizeof(shape) - 1] == '\0' || s[sizeof(shape) - 1] == '/';
}

const char *
va_disk_bus(const char *devpath, char *pci, size_t pcisize)
{
	pci[0] = '\0';
	for (const char *p = strchr(devpath, '/'); p; p = strchr(p + 1, '/'))
		if (is_pci_address(p + 1) && pcisize > 12)
			snprintf(pci, pcisize, "%.12s", p + 1);
	/* The nearest bus first: virtio-scsi and usb-storage disks are SCSI disks
	 * behind a virtio or USB device; what the guest sees is their outer bus. */
	if (strstr(devpath, "/usb"))
		return "usb";
	if (strstr(devpath, "/ata"))
		return "ata";
	if (strstr(devpath, "/nvme"))
		return "nvme";
	if (strstr(devpath, "/mmc"))
		return "mmc";
	if (strstr(devpath, "/vbd-") || strstr(devpath, "/xen"))
		return "xen";
	if (strstr(devpath, "/target") || strstr(devpath, "/host"))
		return "scsi";
	if (strstr(devpath, "/virtio"))
		return "virtio";
	return "";
}

xmlrpc_value *
va_disk_value(xmlrpc_env *env, const char *sysroot, const char *name)
{
	char dir[PATH_MAX], link[PATH_MAX], real[PATH_MAX], pci[16] = "";
	const char *bus = "";

	if (strchr(name, '/') || name[0] == '.' ||
	    path_of(dir, sizeof(dir), sysroot, "/sys/block/%s", name) < 0 ||
	    access(dir, F_OK) < 0) {
		va_fault(env, XMLRPC_INDEX_ERROR, "no disk %s", name);
		return NULL;
	}
	if ((size_t)snprintf(link, sizeof(link), "%s/device", dir) < sizeof(link) &&
	    realpath(link, real))
		bus = va_disk_bus(real, pci, sizeof(pci));
	char *serial = attr(dir, "serial");
	if (!serial)
		serial = attr(dir, "device/serial");
	if (!serial)
		serial = vpd_serial(dir);
	char *model = attr(dir, "device/model"), *vendor = attr(dir, "device/vendor");
	char *backing = attr(dir, "loop/backing_file");
	char dev[PATH_MAX];
	snprintf(dev, sizeof(dev), "/dev/%s", name);

	xmlrpc_value *st = xmlrpc_struct_new(env);
	va_set_text_z(env, st, "name", name);
	va_set_text_z(env, st, "path", dev);
	va_set_i8(env, st, "size_bytes", attr_num(dir, "size", 0) * 512);
	va_set_text_z(env, st, "serial", serial ? serial : "");
	va_set_text_z(env, st, "bus", bus);
	va_set_text_z(env, st, "pci_address", pci);
	va_set_text_z(env, st, "model", model ? model : "");
	va_set_text_z(env, st, "vendor", vendor ? vendor : "");
	va_set_bool(env, st, "removable", attr_num(dir, "removable", 0) != 0);
	va_set_bool(env, st, "readonly", attr_num(dir, "ro", 0) != 0);
	va_set_bool(env, st, "rotational", attr_num(dir, "queue/rotational", 0) != 0);
	if (backing)
		va_set_text_z(env, st, "backing_file", backing);
	free(serial);
	free(model);
	free(vendor);
	free(backing);
	return va_result(env, st);
}

/* The names in dir (at most max, NULL-terminated, malloc'd), skipping dot files. */
static char **
list_dir(const char *dir, size_t max)
{
	DIR *d = opendir(dir);
	char **v = calloc(max + 1, sizeof(char *));
	size_t n = 0;

	if (!d || !v) {
		if (d)
			closedir(d);
		free(v);
		return NULL;
	}
	struct dirent *e;
	while (n < max && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (!(v[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	return v;
}

static void
free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Appends the disks below dev (a /sys/block name) to arr, depth levels at most. */
static void
disks_below(xmlrpc_env *env, const char *sysroot, const char *dev, xmlrpc_value *arr, int depth)
{
	char slaves[PATH_MAX];

	if (env->fault_occurred || depth > VA_DISK_DEPTH ||
	    xmlrpc_array_size(env, arr) >= VA_DISKS_PER_MOUNT)
		return;
	if (path_of(slaves, sizeof(slaves), sysroot, "/sys/block/%s/slaves", dev) < 0)
		return;
	char **v = list_dir(slaves, VA_DISKS_PER_MOUNT);
	if (v && v[0]) {
		for (size_t i = 0; v[i]; i++) {
			/* A slave may be a partition: its disk is the directory above it. */
			char link[PATH_MAX], real[PATH_MAX];
			if ((size_t)snprintf(link, sizeof(link), "%s/%s", slaves, v[i]) >= sizeof(link) ||
			    !realpath(link, real))
				continue;
			char part[PATH_MAX];
			const char *name = v[i];
			if ((size_t)snprintf(part, sizeof(part), "%s/partition", real) < sizeof(part) &&
			    access(part, F_OK) == 0) {
				char *slash = strrchr(real, '/');
				if (slash) {
					*slash = '\0';
					slash = strrchr(real, '/');
					name = slash ? slash + 1 : name;
				}
			}
			disks_below(env, sysroot, name, arr, depth + 1);
		}
	} else {
		va_append(env, arr, va_disk_value(env, sysroot, dev));
	}
	free_list(v);
}

xmlrpc_value *
va_disks_of(xmlrpc_env *env, const char *sysroot, unsigned major, unsigned minor)
{
	char link[PATH_MAX], real[PATH_MAX], part[PATH_MAX + 16];
	xmlrpc_value *arr = xmlrpc_array_new(env);

	if (env->fault_occurred)
		return NULL;
	if (path_of(link, sizeof(link), sysroot, "/sys/dev/block/%u:%u", major, minor) < 0 ||
	    !realpath(link, real))
		return arr; /* not a block device of sysfs */
	snprintf(part, sizeof(part), "%s/partition", real);
	char *slash = strrchr(real, '/');
	if (slash && access(part, F_OK) == 0) {
		*slash = '\0';
		slash = strrchr(real, '/');
	}
	if (slash) {
		xmlrpc_env e2;
		xmlrpc_env_init(&e2);
		disks_below(&e2, sysroot, slash + 1, arr, 0);
		/* e2's message is in the value form already: copied as it is. */
		if (e2.fault_occurred && e2.fault_code != XMLRPC_INDEX_ERROR)
			xmlrpc_env_set_fault(env, e2.fault_code, e2.fault_string);
		xmlrpc_env_clean(&e2);
	}
	if (env->fault_occurred) {
		xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

/* The mountpoints of m on major:minor. */
static void
add_mountpoints(xmlrpc_env *env, xmlrpc_value *arr, const struct va_mounts *m, const char *dir)
{
	char *dev = attr(dir, "dev");
	unsigned maj, min;

	if (dev && sscanf(dev, "%u:%u", &maj, &min) == 2)
		for (size_t i = 0; i < m->n && !env->fault_occurred; i++)
			if (m->v[i].major == maj && m->v[i].minor == min)
				va_append(env, arr, va_text_value_lossy(env, m->v[i].mountpoint,
					  strlen(m->v[i].mountpoint), NULL));
	free(dev);
}

static xmlrpc_value *
disk_entry(xmlrpc_env *env, const char *sysroot, const char *name, const struct va_mounts *m)
{
	char dir[PATH_MAX];

	if (path_of(dir, sizeof(dir), sysroot, "/sys/block/%s", name) < 0)
		return NULL;
	xmlrpc_value *st = va_disk_value(env, sysroot, name);
	if (!st)
		return NULL;
	xmlrpc_value *parts = xmlrpc_array_new(env), *mps = xmlrpc_array_new(env);
	xmlrpc_value *slaves = xmlrpc_array_new(env);
	if (!env->fault_occurred)
		add_mountpoints(env, mps, m, dir);
	char **v = list_dir(dir, VA_DISKS_MAX);
	for (size_t i = 0; v && v[i] && !env->fault_occurred; i++) {
		char pdir[PATH_MAX], pfile[PATH_MAX];
		if ((size_t)snprintf(pdir, sizeof(pdir), "%s/%s", dir, v[i]) >= sizeof(pdir) ||
		    (size_t)snprintf(pfile, sizeof(pfile), "%s/partition", pdir) >= sizeof(pfile) ||
		    access(pfile, F_OK) < 0)
			continue;
		xmlrpc_value *p = xmlrpc_struct_new(env);
		char dev[PATH_MAX];
		snprintf(dev, sizeof(dev), "/dev/%s", v[i]);
		va_set_text_z(env, p, "name", v[i]);
		va_set_text_z(env, p, "path", dev);
		va_set_i8(env, p, "size_bytes", attr_num(pdir, "size", 0) * 512);
		va_set_i8(env, p, "start_sector", attr_num(pdir, "start", 0));
		va_append(env, parts, p);
		if (!env->fault_occurred)
			add_mountpoints(env, mps, m, pdir);
	}
	free_list(v);
	char sdir[PATH_MAX];
	v = (size_t)snprintf(sdir, sizeof(sdir), "%s/slaves", dir) < sizeof(sdir) ?
		list_dir(sdir, VA_DISKS_PER_MOUNT) : NULL;
	for (size_t i = 0; v && v[i] && !env->fault_occurred; i++)
		va_append(env, slaves, va_text_value_lossy(env, v[i], strlen(v[i]), NULL));
	free_list(v);
	va_set_value(env, st, "partitions", parts);
	va_set_value(env, st, "slaves", slaves);
	va_set_value(env, st, "mountpoints", mps);
	if (env->fault_occurred) {
		xmlrpc_DECREF(st);
		return NULL;
	}
	return st;
}

xmlrpc_value *
va_disks_list(xmlrpc_env *env, const char *sysroot, const struct va_mounts *m)
{
	char dir[PATH_MAX];
	xmlrpc_value *arr = xmlrpc_array_new(env);

	if (env->fault_occurred)
		return NULL;
	if (path_of(dir, sizeof(dir), sysroot, "/sys/block") < 0)
		return arr;
	char **v = list_dir(dir, VA_DISKS_MAX);
	/* readdir's order is the directory's: sort by name for the reader. */
	size_t n = 0;
	while (v && v[n])
		n++;
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
			char *t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	for (size_t i = 0; i < n && !env->fault_occurred; i++) {
		char ddir[PATH_MAX];
		if (strncmp(v[i], "ram", 3) == 0 || strncmp(v[i], "zram", 4) == 0 ||
		    (size_t)snprintf(ddir, sizeof(ddir), "%s/%s", dir, v[i]) >= sizeof(ddir))
			continue;
		/* A loop device without a file, or a device of no size: nothing to tell. */
		if (attr_num(ddir, "size", 0) == 0)
			continue;
		xmlrpc_env e2;
		xmlrpc_env_init(&e2);
		xmlrpc_value *d = disk_entry(&e2, sysroot, v[i], m);
		if (d)
			va_append(env, arr, d);
		else if (e2.fault_code != XMLRPC_INDEX_ERROR)	/* value form: copied */
			xmlrpc_env_set_fault(env, e2.fault_code, e2.fault_string);
		xmlrpc_env_clean(&e2);
	}
	free_list(v);
	if (env->fault_occurred) {
		xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}
