/*
 * domxml.h - render the libvirt domain XML for one shoal instance.
 *
 * Pure string work: no libvirt, no I/O, no allocation other than the
 * returned document. The shape is the one in docs/guest-protocol.md:
 * machine 'pc' + qboot (or SeaBIOS, domxml_spec.fw) + <kernel> (or a
 * virtio disk to boot from, domxml_spec.disk) + ACPI,
 * COM1 -> console file, COM2 -> status file, pvpanic, no USB, no balloon,
 * no vmport, no SMM, no HPET,
 * optionally one virtio NIC on a Linux bridge (libvirt creates and plugs the
 * tap itself). Memory choices and their measured cost: docs/node.md,
 * "Memory per guest".
 *
 * Every value is validated and XML-escaped. A value that cannot be carried
 * faithfully (a control character, invalid UTF-8, a relative path, a name
 * libvirt or Linux would mangle, a length over the limit) is rejected with
 * DOMXML_E_INVAL and a message quoting it; nothing is ever truncated.
 *
 * Lifecycle policy rendered into every domain: on_poweroff, on_reboot and
 * on_crash are all 'destroy' - the daemon, not libvirt, decides restarts.
 */
#ifndef SHOAL_DOMXML_H
#define SHOAL_DOMXML_H

#include <stddef.h>
#include <stdint.h>

/* qboot's ROM, rendered for DOMXML_FW_QBOOT when domxml_spec.firmware is
 * NULL. */
#define DOMXML_QBOOT_PATH "/usr/share/qemu/qboot.rom"

/* The machine type every domain is rendered with: QEMU's alias for its
 * newest i440fx machine, which libvirt resolves to the canonical name
 * (pc-i440fx-7.2 with QEMU 7.2) through its capabilities. The only one
 * node_caps_cache_trim keeps in an embedded root's cache (node.h). */
#define DOMXML_MACHINE "pc"

/* The fw_cfg file that carries a guest's private configuration record
 * (docs/guest-protocol.md, "Private configuration record"). */
#define DOMXML_FWCFG_RECORD "opt/org.shoal/cmdline"

/* isa-debug-exit (issue 14): QEMU's device that ends QEMU with status
 * (value << 1) | 1 when the guest writes value to port 0x501, rendered
 * through libvirt's QEMU command-line passthrough (<qemu:commandline>, in
 * this namespace), as libvirt 9.0 has no element for it. */
#define DOMXML_QEMU_NS_URI       "http://libvirt.org/schemas/domain/qemu/1.0"
#define DOMXML_DEBUG_EXIT_DEVICE "isa-debug-exit,iobase=0x501,iosize=2"

/* Namespace URI and prefix of shoal's <metadata> element. The element is
 * <shoal:instance xmlns:shoal='DOMXML_NS_URI' id='...'/>. */
#define DOMXML_NS_URI    "https://shoal.dev/xmlns/instance/1"
#define DOMXML_NS_PREFIX "shoal"

/* Limits (bytes, excluding the NUL). */
#define DOMXML_NAME_MAX       64   /* domain name: [A-Za-z0-9_.-], not leading '.' or '-' */
#define DOMXML_ID_MAX         64   /* instance id: [A-Za-z0-9_.:-] */
#define DOMXML_UUID_LEN       36   /* canonical 8-4-4-4-12 hex form */
#define DOMXML_BRIDGE_MAX     15   /* Linux IFNAMSIZ - 1; [A-Za-z0-9_.-] */
#define DOMXML_MAC_LEN        17   /* xx:xx:xx:xx:xx:xx */
#define DOMXML_CMDLINE_MAX    4096 /* guest command line */
#define DOMXML_PATH_MAX       4095 /* absolute host paths */
#define DOMXML_MEMORY_MIB_MAX (1024u * 1024u) /* 1 TiB */
#define DOMXML_VCPUS_MAX      255

/* Status codes: 0 on success, one of these (negative) on failure. */
enum domxml_status {
    DOMXML_OK = 0,
    DOMXML_E_INVAL = -1, /* a spec field is missing, out of range or not representable */
    DOMXML_E_NOMEM = -2, /* allocation failed */
};

/* libvirt domain type, i.e. the accelerator QEMU runs with. */
enum domxml_virt {
    DOMXML_VIRT_AUTO = 0, /* not valid for rendering; node_start() replaces it
                             with the node's verdict (see node.h) */
    DOMXML_VIRT_KVM = 1,  /* <domain type='kvm'>: hardware/paravirtual KVM */
    DOMXML_VIRT_QEMU = 2, /* <domain type='qemu'>: TCG emulation */
};

/* How the kernel image is entered. Both are loaded through <kernel> (QEMU
 * -kernel): QEMU 7.2 picks Multiboot when the image carries a Multiboot v1
 * header (an ELF32, or an ELF64 whose header carries the load addresses, as
 * Solo5's do; the image store checks that), else PVH when it has the PVH
 * note. Verified on this host with daemon/canary (canary-mb.elf) and
 * guest-kernel/foreign (foreign_solo5.elf). The two templates render
 * the same <os> element today; the field exists so they can diverge (e.g.
 * Multiboot modules) without changing callers. */
enum domxml_boot {
    DOMXML_BOOT_PVH = 0,       /* ELF with XEN_ELFNOTE_PHYS32_ENTRY (type 18) */
    DOMXML_BOOT_MULTIBOOT = 1, /* ELF (or raw) kernel with a Multiboot v1 header */
};

/* Firmware (docs/imagestore.md, "What the stored profile asks of the boot
 * side"; costs measured there and in DESIGN.md). */
enum domxml_firmware {
    DOMXML_FW_QBOOT = 0,   /* <loader type='rom'>qboot.rom</loader>: minimal and fast
                              (~40 ms to a guest's exit under TCG); assigns no PCI
                              BARs and leaves LVT0 masked, so the guest must set up
                              PCI itself (the reference kernel does) */
    DOMXML_FW_SEABIOS = 1, /* no <loader>: QEMU's default firmware, SeaBIOS
                              (bios-256k.bin); assigns PCI BARs (Unikraft's and
                              Solo5's virtio drivers need that) and boots disks;
                              ~30 ms more than qboot under TCG, ~3 s under
                              kvm-pvm. With domxml_spec.firmware set, that ROM
                              is the <loader> instead */
};

/* What to render. All strings are borrowed for the duration of the call. */
struct domxml_spec {
    const char *name;      /* libvirt domain name, required (DOMXML_NAME_MAX) */
    const char *uuid;      /* canonical UUID, or NULL to let libvirt pick one */
    enum domxml_virt virt; /* KVM or QEMU; AUTO is rejected here */
    enum domxml_boot boot; /* boot protocol of `kernel` */
    unsigned memory_mib;   /* guest RAM, 1..DOMXML_MEMORY_MIB_MAX */
    unsigned vcpus;        /* 1..DOMXML_VCPUS_MAX */
    const char *kernel;    /* absolute path of the guest ELF; required unless disk */
    const char *cmdline;   /* guest command line; NULL or "" for none; only with
                                kernel (libvirt passes it with -kernel only) */
    const char *disk;      /* absolute path of a qcow2 image to boot from instead of
                                a kernel (exactly one of kernel and disk): a virtio
                                disk vda and <boot dev='hd'/>, so the firmware runs
                                its boot sector. Needs DOMXML_FW_SEABIOS (qboot boots
                                no disks). shoald passes a per-instance overlay whose
                                base is the image (docs/imagestore.md); its header
                                names the base and the base's format */
    /* Not rendered: the disk's base, for a host that cannot open this
     * machine's files (node_start on a remote node, nodestore.h
     * nstore_stage): there the local file disk_base (format disk_format,
     * "raw" or "qcow2") is delivered as an image volume and `disk` is
     * replaced by the domain's own qcow2 overlay of it on that host, of
     * virtual size disk_bytes (0: the base's), made afresh when disk_fresh
     * is 1, else kept when present. NULL on a local node, whose `disk` is
     * the overlay the caller made. */
    const char *disk_base;
    const char *disk_format;
    uint64_t disk_bytes;
    int disk_fresh;
    const char *console_log; /* absolute path, COM1 output file, required */
    const char *status_log;  /* absolute path, COM2 status file, required */
    const char *bridge;      /* Linux bridge for one virtio NIC; NULL: no NIC */
    const char *network;     /* instead of bridge: the libvirt network of that name
                                for the NIC (<interface type='network'>; a remote
                                host's guest network, nodenet.h). At most one of
                                bridge and network; DOMXML_NAME_MAX, [A-Za-z0-9_.-] */
    const char *filter;      /* libvirt nwfilter on the NIC (<filterref>), with
                                parameter IP = filter_ip (its MAC is the NIC's);
                                NULL: none. Only with a NIC */
    const char *filter_ip;   /* dotted quad, required with filter */
    const char *mac;         /* NIC MAC (unicast, xx:xx:..); required with a NIC */
    const char *tap;         /* name of the NIC's tap (<target dev='...'/>), 1-15 of
                                [A-Za-z0-9_.-], not starting with libvirt's reserved
                                "vnet", "macvtap" or "macvlan"; NULL: libvirt picks
                                vnetN. Only with a NIC. shoald passes guard_tap_name()
                                so its filter rules (guard.h) can name the port
                                before the tap exists. */
    const char *instance_id; /* shoal instance id written to <metadata>; NULL: none */
    enum domxml_firmware fw; /* QBOOT (the zero value) or SEABIOS */
    const char *firmware;    /* absolute path of the ROM for <loader type='rom'>;
                                NULL: DOMXML_QBOOT_PATH for QBOOT, no <loader>
                                (QEMU's own SeaBIOS) for SEABIOS */
    const char *initrd;      /* absolute path of the image's initrd (<initrd>, QEMU
                                -initrd: PVH module 0, Multiboot module 0); only
                                with kernel; NULL: none */
    int debug_exit;          /* 1: QEMU's isa-debug-exit on port 0x501
                                (DOMXML_DEBUG_EXIT_DEVICE) through
                                <qemu:commandline>; libvirt taints the domain
                                ("custom-argv") */
    const char *emulator;    /* absolute path for <emulator> (the program libvirt
                                runs as QEMU); NULL: libvirt's default. shoald
                                passes its exit-status wrapper (qemu_exit.c) with
                                debug_exit */
    const char *fwcfg_file;  /* absolute path of a file QEMU reads at start and
                                hands the guest as fw_cfg file DOMXML_FWCFG_RECORD
                                (<sysinfo type='fwcfg'>: only the path is on QEMU's
                                command line); NULL: none */
    const char *fwcfg_data;  /* not rendered: what node_start writes to fwcfg_file
                                (which it chooses) before the create and removes
                                after it; NULL: no record. See node_start */
    int nice;                /* not rendered: > 0, QEMU runs at this nice value
                                from its start (node_start: a warm pool guest's
                                refill); 0: the starting thread's */
    int nice_qemu_only;      /* not rendered: with nice, libvirt's create runs at
                                the caller's priority and only QEMU's threads are
                                set, once created, before its vCPUs run */
    unsigned cpu_quota_pct;  /* CPU time the whole QEMU (vCPUs, main loop, I/O
                                threads) may use, in percent of one host CPU
                                (<cputune> global_period 100 ms, global_quota),
                                enforced by its cgroup; 0: no limit rendered */
    /* console_sock: absolute path of a Unix socket QEMU listens on (created
     * at its start) for COM1, the console: <serial type='unix'> <source
     * mode='bind'> with <log file=console_log append='on'/>, so the guest's
     * output still goes to console_log. A warm pool guest's configuration
     * channel (docs/guest-protocol.md "Warm pool hand-over"); NULL: COM1 is
     * <serial type='file'> on console_log */
    const char *console_sock;
    int serial_pty; /* 1: both serial ports are ptys that libvirt
                                streams read (virDomainOpenConsole "serial0",
                                "serial1"), each logging to its file
                                (<log file=console_log|status_log append='on'/>)
                                so that nothing is lost while no stream is open;
                                0: files QEMU writes (<serial type='file'>).
                                docs/node.md "Remote hosts" */
};

/*
 * Render `spec` into a NUL-terminated XML document.
 * On success stores a malloc'd string in *xml (caller frees with free()) and
 * returns DOMXML_OK. On failure *xml is NULL, a message quoting the bad value
 * is written to err (if err != NULL; truncated to errlen) and a negative
 * domxml_status is returned.
 */
int domxml_render(const struct domxml_spec *spec, char **xml, char *err, size_t errlen);

/*
 * Extract the instance id from shoal's metadata element as libvirt returns it
 * (virDomainGetMetadata(..., VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS_URI, 0)),
 * e.g. "<instance xmlns=\"https://shoal.dev/xmlns/instance/1\" id=\"abc\"/>".
 * Writes the id (NUL-terminated) to id[idlen]. Returns DOMXML_OK, or
 * DOMXML_E_INVAL if there is no well-formed id attribute with a valid id or
 * it does not fit. Input is treated as untrusted.
 */
int domxml_parse_instance_id(const char *metadata_xml, char *id, size_t idlen);

/* Validators shared with node/netbr; return 1 if valid, 0 if not. */
int domxml_valid_name(const char *s);
int domxml_valid_instance_id(const char *s);
int domxml_valid_mac(const char *s);
int domxml_valid_bridge(const char *s);
int domxml_valid_tap(const char *s); /* a bridge name libvirt keeps as a tap name */

#endif /* SHOAL_DOMXML_H */
