/*
 * fwcfg.h - QEMU's firmware configuration device (fw_cfg), read only.
 *
 * The PC platform's fw_cfg sits at fixed I/O ports: 0x510 selects an item
 * (16-bit write), 0x511 reads it a byte at a time, and, when the device
 * advertises it, 0x514/0x518 take the address of a DMA descriptor that
 * copies a whole item into guest memory in one exit. The host hands the
 * guest named files through it (QEMU -fw_cfg name=opt/...,file=...,
 * libvirt <sysinfo type='fwcfg'>); shoald passes the private part of a
 * run's configuration that way (docs/guest-protocol.md, "Private
 * configuration record"). Reference: QEMU docs/specs/fw_cfg.rst.
 *
 * No state, no allocation; usable from the first boot step (identity-mapped
 * memory: a buffer's virtual address is its physical address).
 */
#ifndef SHOAL_ARCH_FWCFG_H
#define SHOAL_ARCH_FWCFG_H

#include <stddef.h>

#define FWCFG_NAME_MAX 56 /* a file name, NUL included */

/*
 * Copy the fw_cfg file `name` into buf[cap] and NUL-terminate it.
 * Returns its size in bytes (which the caller compares with cap - 1: a
 * larger file was cut to cap - 1 bytes), 0 when there is no such file,
 * -1 when there is no fw_cfg device at all.
 */
long fwcfg_read_file(const char *name, char *buf, size_t cap);

/* 1 if the last fwcfg_read_file used DMA, 0 if port reads (for bootlog). */
int fwcfg_used_dma(void);

#endif
