/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * disks.h - block devices as sysfs describes them, so that a host can
 * map a guest's mount to the disk it gave the VM: the serial (QEMU's
 * -device ...,serial=), the bus and the PCI address of the controller.
 * For the groups fs (va.fs.info, va.disks) and the tests.
 *
 * Every function takes sysroot, a prefix for /sys and /dev paths ("" on
 * a guest; the tests build a tree of their own).  Reads are bounded:
 * an attribute is read up to VA_DISK_ATTR_MAX bytes, a directory up to
 * VA_DISKS_MAX entries, stacked devices (device-mapper, md) are followed
 * VA_DISK_DEPTH levels down to at most VA_DISKS_PER_MOUNT disks.
 */
#ifndef VA_AGENT_DISKS_H
#define VA_AGENT_DISKS_H

#include <xmlrpc-c/base.h>

#include "mounts.h"

#define VA_DISK_ATTR_MAX 4096
#define VA_DISKS_MAX 1024
#define VA_DISK_DEPTH 8
#define VA_DISKS_PER_MOUNT 16

/*
 * One disk (/sys/block/NAME) as a struct {name, path, size_bytes,
 * serial, bus, pci_address, model, vendor, removable, readonly,
 * rotational[, backing_file]}; NULL with a fault when there is no such
 * disk.
 */
xmlrpc_value *va_disk_value(xmlrpc_env *env, const char *sysroot, const char *name);

/*
 * The disks under the block device major:minor (a partition's disk; the
 * disks below a device-mapper or md device), as an array of va_disk_value
 * structs (empty when the device is not a block device of sysfs).
 */
xmlrpc_value *va_disks_of(xmlrpc_env *env, const char *sysroot, unsigned major, unsigned minor);

/*
 * Every disk of /sys/block but RAM disks and unattached loop devices:
 * va_disk_value structs with partitions: [{name, path, size_bytes,
 * start_sector}], slaves: [names] (what a device-mapper or md device is
 * made of) and mountpoints: [paths] (the mounts of m on it or on its
 * partitions).
 */
xmlrpc_value *va_disks_list(xmlrpc_env *env, const char *sysroot, const struct va_mounts *m);

/*
 * The bus of a device from its sysfs path (".../virtio2",
 * ".../ata1/host0/target0:0:0/0:0:0:0"): virtio, scsi, ata, nvme, usb,
 * mmc, xen or "" when unknown; and the PCI address nearest the device
 * ("0000:00:05.0") into pci (at least 13 bytes), "" when none.
 */
const char *va_disk_bus(const char *devpath, char *pci, size_t pcisize);

#endif
