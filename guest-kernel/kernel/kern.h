/*
 * kern.h - the kernel's own entry points and state shared between modules.
 *
 * Boot order (kern_main, kernel/main.c): TSC rate measurement started,
 * console + status UARTs, IDT, start info (command line copied, memory map
 * -> heap), TSC rate final, command line parse, banner, ready record, app
 * main, exit. docs/guest-kernel.md has the whole story.
 * Apps do not include this; they use libc and <shoal.h>.
 */
#ifndef SHOAL_KERNEL_KERN_H
#define SHOAL_KERNEL_KERN_H

#include <stdint.h>

#define KERN_VERSION "0.1"

/* TSC at PVH entry, stored by boot.S before anything else runs. */
extern uint64_t kern_boot_tsc;

/* The app's name (argv[0]); defined by the per-image generated source that
 * shoal_add_guest_image() adds. */
extern const char shoal_app_name[];

/*
 * Optional, defined by an image that behaves like a unikernel built
 * elsewhere (guest-kernel/foreign/uk_mode.c); weak references here:
 *   shoal_cmdline_dialect "unikraft": the command line is read as Unikraft
 *       reads it (cmdline_from_unikraft: NAME netdev.ip=CIDR:GW ... -- ARGS);
 *   shoal_pci_firmware_only 1: a PCI BAR the firmware left unassigned is an
 *       error, never placed by the kernel (pci_bar_enable), as Unikraft's and
 *       Solo5's drivers expect: such an image networks under SeaBIOS only.
 */
extern const char *const shoal_cmdline_dialect __attribute__((weak));
extern const int shoal_pci_firmware_only __attribute__((weak));

/* Called by boot.S in long mode with the PVH start info physical address. */
void kern_main(uint32_t start_info_paddr) __attribute__((noreturn));

/* Write the exit record (code & 255) and power the VM off. Never returns. */
void kern_exit(int code) __attribute__((noreturn));

/* Boot hooks: how a layer above the kernel joins the boot without the
 * kernel naming it (docs/guest-kernel.md, "Layers"). A function registered
 * at file scope with KERN_BOOT_HOOK("what", fn) runs in kern_main after
 * the banner and before the ready record - the network (net/net_guest.c,
 * NET images) comes up there, so "running" means "reachable". Returns 0
 * (up) or > 0 (nothing to do); < 0 is fatal: "<what> setup failed (see
 * above)", exit 2. The linker collects the entries (section
 * .kern_boot_hooks, arch/x86_64/link.ld); they run in link order.
 * KERN_BOOT_HOOK_POOL adds `prepare`, run only by a pool guest
 * (shoal.pool=1) before it waits for its configuration: the work that
 * needs no configuration (finding and starting a device), so that a claim
 * does only the rest. Its result is not checked; fn runs as usual after
 * the claim and reports what failed. */
struct kern_boot_hook {
    const char *what;
    int (*fn)(void);
    int (*prepare)(void);
};
#define KERN_BOOT_HOOK_POOL(what_, fn_, prepare_)                                                  \
    static const struct kern_boot_hook kern_boot_hook_##fn_                                        \
        __attribute__((used, section(".kern_boot_hooks"), aligned(8))) = { (what_), (fn_),         \
                                                                           (prepare_) }
#define KERN_BOOT_HOOK(what_, fn_) KERN_BOOT_HOOK_POOL(what_, fn_, 0)

/* The host -> guest channel a pool guest reads its configuration record
 * from (docs/guest-protocol.md, "Warm pool hand-over"), defined by the
 * driver that carries it (drivers/uart_rx.c: COM1); a weak reference, so
 * an image without it refuses shoal.pool=1. Byte stream, main context only. */
struct kern_pool_channel {
    /* Find and start the device; its receive interrupt (when it can have
     * one) goes to `vector` on local APIC `apic`. 0, or -1 (printed). */
    int (*open)(uint8_t vector, uint8_t apic);
    /* Hand every byte received so far to rx(ctx, data, len), in order, in
     * chunks, until rx returns non-zero (the consumer is done: what is
     * left stays unread); returns the number of bytes handed. Never blocks. */
    unsigned (*poll)(int (*rx)(void *ctx, const char *data, unsigned len), void *ctx);
    /* Queue len bytes for the host (short: a reply line). 0, or -1 when
     * dropped (the device has not taken the previous ones). */
    int (*write)(const char *data, unsigned len);
    /* 1 while the device still holds written bytes. */
    int (*tx_busy)(void);
    /* 1 once bytes wait to be polled. Cheap (one port read at most). */
    int (*pending)(void);
    /* 1 if the device will now interrupt when bytes arrive (then the
     * caller may halt, and disarms when it wakes), 0 if it cannot. */
    int (*irq_arm)(void);
    void (*irq_disarm)(void);
    /* Read no more: the receive interrupt off, never read again. */
    void (*close)(void);
};
extern const struct kern_pool_channel kern_pool_channel __attribute__((weak));

/* Print "shoal: <msg>" on the console and exit with code. For unrecoverable
 * conditions that are not CPU exceptions (bad start info, bad cmdline). */
void kern_fatal(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

#endif
