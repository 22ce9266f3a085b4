/*
 * status.h - the status channel (COM2): one record per line, written only
 * by the kernel, read by the host. Formats are fixed by
 * docs/guest-protocol.md; nothing else is ever written to COM2.
 */
#ifndef SHOAL_KERNEL_STATUS_H
#define SHOAL_KERNEL_STATUS_H

#include <stdint.h>

/* "shoal-status ready boot_us=<boot_us>" - right before the app's main;
 * a pool guest adds " claim_us=<claim_us>" (STATUS_NO_CLAIM: not one). */
#define STATUS_NO_CLAIM UINT64_MAX
void status_ready(uint64_t boot_us, uint64_t claim_us);

/* "shoal-status pool-wait boot_us=<boot_us>" - a pool guest, booted, now
 * waiting for its configuration record. */
void status_pool_wait(uint64_t boot_us);

/* "shoal-status exit code=<code & 255>" */
void status_exit(int code);

/* "shoal-status crash vector=<n> error=0x<hex> rip=0x<hex> cr2=0x<hex>" */
void status_crash(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2);

#endif
