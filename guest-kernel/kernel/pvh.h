/*
 * pvh.h - the PVH boot ABI's start info, as placed in guest memory by the
 * loader (qboot or QEMU's pvh.bin) and passed in %ebx at entry.
 * Layout from Xen's public/arch-x86/hvm/start_info.h.
 */
#ifndef SHOAL_KERNEL_PVH_H
#define SHOAL_KERNEL_PVH_H

#include <stdint.h>

#define PVH_START_MAGIC 0x336ec578u
#define PVH_MEMMAP_RAM  1 /* hvm_memmap_table_entry.type: usable */

struct hvm_start_info {
    uint32_t magic;      /* PVH_START_MAGIC */
    uint32_t version;    /* 0, or 1 when memmap_* are valid */
    uint32_t flags;      /* SIF_xxx, unused here */
    uint32_t nr_modules; /* modules (initrds) at modlist_paddr, unused */
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;  /* NUL-terminated command line, or 0 */
    uint64_t rsdp_paddr;     /* ACPI RSDP, or 0 */
    uint64_t memmap_paddr;   /* version >= 1: array of hvm_memmap_table_entry */
    uint32_t memmap_entries; /* version >= 1: number of entries */
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr; /* physical start */
    uint64_t size; /* bytes */
    uint32_t type; /* E820 type; PVH_MEMMAP_RAM is usable RAM */
    uint32_t reserved;
};

#endif
