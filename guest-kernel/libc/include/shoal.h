/*
 * shoal.h - what the shoal guest kernel offers apps beyond libc.
 */
#ifndef SHOAL_LIBC_SHOAL_H
#define SHOAL_LIBC_SHOAL_H

#include <stdint.h>

/* Value of kernel key "shoal.<name>" from the command line ("ip", "gw",
 * "mac", "quiet", ...), or NULL. The string lives for the whole run. */
const char *shoal_param(const char *name);

/* Guest microseconds from PVH entry to the app's main (the ready record). */
uint64_t shoal_boot_us(void);

#endif
