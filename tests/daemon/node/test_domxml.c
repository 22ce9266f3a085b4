/*
 * test_domxml.c - golden-file tests for daemon/domxml.c, plus rejection of
 * values that cannot be represented.
 *
 * Each case renders a spec and compares the result byte for byte with
 * tests/daemon/golden/<case>.xml. To regenerate the golden files after an
 * intended change: SHOAL_REGEN_GOLDEN=1 ./test_domxml (then review the diff).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domxml.h"
#include "netbr.h"

#define XML_VALIDATE "/usr/bin/virt-xml-validate"

#ifndef GOLDEN_DIR
#error GOLDEN_DIR must be defined
#endif

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)n + 1);
    if (!buf)
        goto out;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
out:
    fclose(f);
    return buf;
}

static void check_golden(const char *name, const struct domxml_spec *spec)
{
    char path[1024], err[512] = "";
    char *xml = NULL, *want = NULL;

    snprintf(path, sizeof path, "%s/%s.xml", GOLDEN_DIR, name);
    int rc = domxml_render(spec, &xml, err, sizeof err);
    if (rc != DOMXML_OK)
        fail_msg("render %s: %s", name, err);
    assert_non_null(xml);
    if (getenv("SHOAL_REGEN_GOLDEN")) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(xml, 1, strlen(xml), f), strlen(xml));
        assert_int_equal(fclose(f), 0);
        print_message("regenerated %s\n", path);
    }
    want = slurp(path);
    if (!want)
        fail_msg("golden file %s missing (SHOAL_REGEN_GOLDEN=1 creates it)", path);
    if (strcmp(xml, want) != 0) {
        print_error("--- %s (expected)\n%s--- rendered\n%s", path, want, xml);
        fail_msg("%s differs from golden file", name);
    }
    /* libvirt's own schema, when its validator is installed. */
    if (access(XML_VALIDATE, X_OK) == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "%s '%s' domain >/dev/null 2>&1", XML_VALIDATE, path);
        if (system(cmd) != 0)
            fail_msg("%s does not validate against libvirt's domain schema (%s)", path,
                     XML_VALIDATE);
    }
    free(xml);
    free(want);
}

static const struct domxml_spec base = {
    .name = "shoal-hello-1",
    .uuid = "6f1c1f0e-4a57-4d0b-9d2c-3b7f0f6c2a11",
    .virt = DOMXML_VIRT_QEMU,
    .boot = DOMXML_BOOT_PVH,
    .memory_mib = 32,
    .vcpus = 1,
    .kernel = "/var/lib/shoal/images/ab/abcdef.elf",
    .cmdline = "shoal.quiet=1 -- hello",
    .console_log = "/var/lib/shoal/instances/i-1/console.log",
    .status_log = "/var/lib/shoal/instances/i-1/status.log",
    .instance_id = "i-1",
};

static void golden_minimal_qemu(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.uuid = NULL;
    s.cmdline = NULL;
    s.instance_id = NULL;
    check_golden("minimal-qemu", &s);
}

static void golden_metadata_kvm(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.virt = DOMXML_VIRT_KVM;
    check_golden("metadata-kvm", &s);
}

static void golden_network(void **state)
{
    (void)state;
    char mac[NETBR_MAC_STRLEN];
    netbr_mac("i-2", mac);
    struct domxml_spec s = base;
    s.name = "shoal-web-2";
    s.instance_id = "i-2";
    s.memory_mib = 64;
    s.vcpus = 2;
    s.bridge = "shoalbr0";
    s.mac = mac;
    s.tap = "sh0123456789ab";
    s.cmdline = "shoal.ip=10.77.0.2/24 shoal.gw=10.77.0.1 -- serve";
    check_golden("network-qemu", &s);
}

static void reject(const struct domxml_spec *s, const char *quoted);

/* A guest on a remote host (issue 17, nodenet.h): its NIC on the host's
 * libvirt network, behind the guest filter with its address; a filter
 * without an address or a NIC, or a network with a bridge, is refused. */
static void golden_remote_network(void **state)
{
    (void)state;
    char mac[NETBR_MAC_STRLEN];
    netbr_mac("i-3", mac);
    struct domxml_spec s = base;
    s.name = "shoal-web-3";
    s.instance_id = "i-3";
    s.network = "shoal";
    s.filter = "shoal-guest";
    s.filter_ip = "10.89.0.2";
    s.mac = mac;
    s.tap = "sh0123456789ac";
    s.cmdline = "shoal.ip=10.89.0.2/24 shoal.gw=10.89.0.1";
    check_golden("remote-network-qemu", &s);
    s.filter_ip = "10.89.0";
    reject(&s, "'10.89.0'");
    s.filter_ip = "10.89.0.2";
    s.bridge = "shoal0";
    reject(&s, "network 'shoal' given with a bridge");
    s.bridge = NULL;
    s.network = NULL;
    reject(&s, "given without a bridge or network");
    s.network = "bad name";
    reject(&s, "invalid network name 'bad name'");
}

/* A warm pool guest (issue 15): shoal.pool=1 and its configuration channel,
 * COM1 on a Unix socket QEMU listens on, logged to the console file. Its
 * devices are a running guest's: the same two serial ports, no controller
 * or console more. A relative socket path is refused like any other path. */
static void golden_pool(void **state)
{
    (void)state;
    char mac[NETBR_MAC_STRLEN];
    netbr_mac("0123456789ab", mac);
    struct domxml_spec s = base;
    s.name = "shoal-0123456789ab";
    s.instance_id = "0123456789ab";
    s.bridge = "shoalbr0";
    s.mac = mac;
    s.tap = "sh0123456789ab";
    s.cmdline = "shoal.pool=1";
    s.console_sock = "/var/lib/shoal/run/pool/0123456789ab.sock";
    check_golden("pool-qemu", &s);
    char *xml = NULL, *run = NULL, err[256];
    assert_int_equal(domxml_render(&s, &xml, err, sizeof err), DOMXML_OK);
    s.console_sock = NULL;
    assert_int_equal(domxml_render(&s, &run, err, sizeof err), DOMXML_OK);
    const char *tags[] = { "<serial ", "<console", "<controller", "<interface", "<panic" };
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        size_t np = 0, nr = 0;
        for (const char *p = xml; (p = strstr(p, tags[i])); p++)
            np++;
        for (const char *p = run; (p = strstr(p, tags[i])); p++)
            nr++;
        if (np != nr)
            fail_msg("pool guest has %zu %s, a running guest %zu", np, tags[i], nr);
    }
    assert_non_null(
        strstr(xml, "<log file='/var/lib/shoal/instances/i-1/console.log' append='on'/>"));
    free(xml);
    free(run);
    s.console_sock = "pool.sock";
    reject(&s, "invalid console socket path 'pool.sock'");
}

/* A remote host's guest (issue 17): both serial ports are ptys that
 * shoald reads through libvirt streams, each logged to its run file. */
static void golden_serial_pty(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.serial_pty = 1;
    s.console_log = "/var/lib/libvirt/shoal/run/shoal-0123456789ab.console";
    s.status_log = "/var/lib/libvirt/shoal/run/shoal-0123456789ab.status";
    check_golden("serial-pty-qemu", &s);
}

static void golden_escaping(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.cmdline = "MSG=\"a & b\" X='<tag>' -- \"quoted arg\" \\\\ \xc3\xa9t\xc3\xa9";
    s.kernel = "/images/it's & <odd>.elf";
    s.console_log = "/logs/\"c\".log";
    check_golden("escaping", &s);
}

static void golden_multiboot(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.boot = DOMXML_BOOT_MULTIBOOT;
    s.virt = DOMXML_VIRT_KVM;
    s.firmware = "/opt/qboot/bios.bin";
    check_golden("multiboot-kvm", &s);
}

/* SeaBIOS (a foreign kernel's profile): no <loader>, so QEMU loads its own
 * bios-256k.bin; the kernel and command line as for qboot. */
/* Issue 16: the private record's fw_cfg file and the CPU quota. */
static void golden_confined(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.cmdline = "shoal.ip=10.88.0.4/16 shoal.gw=10.88.0.1";
    s.fwcfg_file = "/var/lib/shoal/guestcfg/shoal-hello-1.cfg";
    s.fwcfg_data = "SECRET=not-rendered -- a";
    s.cpu_quota_pct = 150;
    check_golden("confined-qemu", &s);
    char *xml = NULL, err[256];
    assert_int_equal(domxml_render(&s, &xml, err, sizeof err), DOMXML_OK);
    assert_null(strstr(xml, "not-rendered"));
    free(xml);
    s.fwcfg_file = "relative.cfg";
    assert_int_equal(domxml_render(&s, &xml, err, sizeof err), DOMXML_E_INVAL);
    assert_non_null(strstr(err, "fw_cfg file"));
    s.fwcfg_file = NULL;
    s.cpu_quota_pct = 100u * (DOMXML_VCPUS_MAX + 1) + 1;
    assert_int_equal(domxml_render(&s, &xml, err, sizeof err), DOMXML_E_INVAL);
    assert_non_null(strstr(err, "CPU quota"));
}

static void golden_seabios(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.fw = DOMXML_FW_SEABIOS;
    s.boot = DOMXML_BOOT_MULTIBOOT;
    s.kernel = "/var/lib/shoal/images/cache/solo5.elf";
    s.cmdline = "Hello_Solo5";
    check_golden("seabios-qemu", &s);
}

/* SeaBIOS from a ROM the caller names. */
static void golden_seabios_rom(void **state)
{
    (void)state;
    char mac[NETBR_MAC_STRLEN];
    netbr_mac("i-3", mac);
    struct domxml_spec s = base;
    s.fw = DOMXML_FW_SEABIOS;
    s.firmware = "/usr/share/seabios/bios-256k.bin";
    s.virt = DOMXML_VIRT_KVM;
    s.instance_id = "i-3";
    s.bridge = "shoalbr0";
    s.mac = mac;
    s.cmdline = "netdev.ip=10.77.0.3/24:10.77.0.1 -- serve";
    check_golden("seabios-rom-kvm", &s);
}

/* A disk image: SeaBIOS boots a virtio disk (the instance's qcow2
 * overlay); no <kernel>, no <cmdline>. */
static void golden_disk(void **state)
{
    (void)state;
    char mac[NETBR_MAC_STRLEN];
    netbr_mac("i-4", mac);
    struct domxml_spec s = base;
    s.fw = DOMXML_FW_SEABIOS;
    s.kernel = NULL;
    s.cmdline = NULL;
    s.disk = "/var/lib/shoal/disks/i-4.qcow2";
    s.instance_id = "i-4";
    s.bridge = "shoalbr0";
    s.mac = mac;
    check_golden("disk-qemu", &s);
}

/* An image that exits through isa-debug-exit (issue 14): the device through
 * libvirt's QEMU command-line passthrough (its namespace on <domain>), and
 * the exit-status wrapper as <emulator>. */
static void golden_debug_exit(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.fw = DOMXML_FW_SEABIOS;
    s.kernel = "/var/lib/shoal/images/cache/exit.elf";
    s.cmdline = "7";
    s.instance_id = "i-5";
    s.debug_exit = 1;
    s.emulator = "/usr/libexec/shoal/shoal-qemu-exit";
    check_golden("debugexit-qemu", &s);
}

/* An image with an initrd (issue 14): <initrd> after <kernel>. */
static void golden_initrd(void **state)
{
    (void)state;
    struct domxml_spec s = base;
    s.fw = DOMXML_FW_SEABIOS;
    s.kernel = "/var/lib/shoal/images/cache/app.elf";
    s.initrd = "/var/lib/shoal/images/cache/rootfs.elf";
    s.cmdline = "app -- serve";
    check_golden("initrd-qemu", &s);
}

/* Values that cannot be represented are rejected, and the message quotes them. */
static void reject(const struct domxml_spec *s, const char *quoted)
{
    char err[512] = "";
    char *xml = (char *)1;
    assert_int_equal(domxml_render(s, &xml, err, sizeof err), DOMXML_E_INVAL);
    assert_null(xml);
    if (!strstr(err, quoted))
        fail_msg("error '%s' does not quote '%s'", err, quoted);
}

static void rejects_bad_values(void **state)
{
    (void)state;
    struct domxml_spec s;

    s = base;
    s.name = "bad name";
    reject(&s, "'bad name'");
    s = base;
    s.name = "-x";
    reject(&s, "'-x'");
    s = base;
    s.name = "";
    reject(&s, "''");
    s = base;
    s.name = "a/b";
    reject(&s, "'a/b'");
    s = base;
    s.uuid = "not-a-uuid";
    reject(&s, "'not-a-uuid'");
    s = base;
    s.virt = DOMXML_VIRT_AUTO;
    reject(&s, "domain type 0");
    s = base;
    s.initrd = "rootfs.cpio";
    reject(&s, "initrd 'rootfs.cpio' needs an absolute path and a kernel");
    s = base;
    s.kernel = NULL;
    s.cmdline = NULL;
    s.fw = DOMXML_FW_SEABIOS;
    s.disk = "/var/lib/shoal/disks/i-4.qcow2";
    s.initrd = "/r";
    reject(&s, "initrd '/r' needs an absolute path and a kernel");
    s = base;
    s.emulator = "shoal-qemu-exit";
    reject(&s, "emulator 'shoal-qemu-exit' is not an absolute path");
    s = base;
    s.fw = (enum domxml_firmware)7;
    reject(&s, "invalid firmware 7");
    s = base;
    s.fw = DOMXML_FW_SEABIOS;
    s.disk = "/d/x.qcow2";
    reject(&s, "kernel '/var/lib/shoal/images/ab/abcdef.elf' and disk given");
    s.kernel = NULL;
    reject(&s, "command line 'shoal.quiet=1 -- hello' given with a disk");
    s.cmdline = NULL;
    s.fw = DOMXML_FW_QBOOT;
    reject(&s, "disk '/d/x.qcow2' needs the seabios firmware");
    s.fw = DOMXML_FW_SEABIOS;
    s.disk = "rel.qcow2";
    reject(&s, "invalid disk path 'rel.qcow2'");
    s = base;
    s.memory_mib = 0;
    reject(&s, "'0' MiB");
    s = base;
    s.vcpus = 256;
    reject(&s, "'256'");
    s = base;
    s.kernel = "relative.elf";
    reject(&s, "'relative.elf'");
    s = base;
    s.kernel = NULL;
    reject(&s, "kernel path");
    s = base;
    s.cmdline = "a\nb";
    reject(&s, "'a\\x0ab'");
    s = base;
    s.cmdline = "bad \xff utf8";
    reject(&s, "\\xff");
    s = base;
    s.cmdline = "overlong \xc0\xaf";
    reject(&s, "\\xc0");
    s = base;
    s.console_log = "/x/\x01y";
    reject(&s, "\\x01");
    s = base;
    s.bridge = "br0";
    s.mac = NULL;
    reject(&s, "'(null)'");
    s = base;
    s.bridge = "br0";
    s.mac = "01:00:5e:00:00:01"; /* multicast */
    reject(&s, "'01:00:5e:00:00:01'");
    s = base;
    s.bridge = "a-very-long-bridge-name";
    s.mac = "5a:5c:00:00:00:01";
    reject(&s, "'a-very-long-bridge-name'");
    s = base;
    s.mac = "5a:5c:00:00:00:01";
    reject(&s, "without a bridge");
    s = base;
    s.tap = "sh0123456789ab";
    reject(&s, "tap name 'sh0123456789ab' given without a bridge");
    /* libvirt would replace these names by vnetN, and guard.h's rules
     * would then name a port that never appears */
    const char *bad_taps[] = { "vnet0", "macvtap3", "macvlan1", "sh0123456789abcd", "a b", "x/y" };
    for (size_t i = 0; i < sizeof bad_taps / sizeof bad_taps[0]; i++) {
        char want[64];
        s = base;
        s.bridge = "br0";
        s.mac = "5a:5c:00:00:00:01";
        s.tap = bad_taps[i];
        snprintf(want, sizeof want, "invalid tap name '%s'", bad_taps[i]);
        reject(&s, want);
    }
    s = base;
    s.instance_id = "i 1";
    reject(&s, "'i 1'");

    char *longline = malloc(DOMXML_CMDLINE_MAX + 2);
    assert_non_null(longline);
    memset(longline, 'a', DOMXML_CMDLINE_MAX + 1);
    longline[DOMXML_CMDLINE_MAX + 1] = '\0';
    s = base;
    s.cmdline = longline;
    char err[512];
    char *xml = NULL;
    assert_int_equal(domxml_render(&s, &xml, err, sizeof err), DOMXML_E_INVAL);
    longline[DOMXML_CMDLINE_MAX] = '\0'; /* exactly at the limit: accepted */
    assert_int_equal(domxml_render(&s, &xml, err, sizeof err), DOMXML_OK);
    free(xml);
    free(longline);

    /* NULL err buffer and NULL spec are fine */
    assert_int_equal(domxml_render(NULL, &xml, NULL, 0), DOMXML_E_INVAL);
}

static void parses_instance_id(void **state)
{
    (void)state;
    char id[DOMXML_ID_MAX + 1];
    assert_int_equal(
        domxml_parse_instance_id(
            "<instance xmlns=\"https://shoal.dev/xmlns/instance/1\" id=\"i-42\"/>", id, sizeof id),
        DOMXML_OK);
    assert_string_equal(id, "i-42");
    assert_int_equal(domxml_parse_instance_id("<instance id='a:b.c_d'/>", id, sizeof id),
                     DOMXML_OK);
    assert_string_equal(id, "a:b.c_d");
    assert_int_equal(domxml_parse_instance_id("<instance xid='x'/>", id, sizeof id),
                     DOMXML_E_INVAL);
    assert_int_equal(domxml_parse_instance_id("<instance id='bad id'/>", id, sizeof id),
                     DOMXML_E_INVAL);
    assert_int_equal(domxml_parse_instance_id("<instance id='x", id, sizeof id), DOMXML_E_INVAL);
    assert_int_equal(domxml_parse_instance_id("<instance/><a id='x'/>", id, sizeof id),
                     DOMXML_E_INVAL);
    assert_int_equal(domxml_parse_instance_id(NULL, id, sizeof id), DOMXML_E_INVAL);
    char small[3];
    assert_int_equal(domxml_parse_instance_id("<i id='abcd'/>", small, sizeof small),
                     DOMXML_E_INVAL);
}

static void mac_is_deterministic(void **state)
{
    (void)state;
    char a[NETBR_MAC_STRLEN], b[NETBR_MAC_STRLEN], c[NETBR_MAC_STRLEN];
    netbr_mac("i-1", a);
    netbr_mac("i-1", b);
    netbr_mac("i-2", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_true(domxml_valid_mac(a));
    assert_memory_equal(a, "5a:5c:", 6);
    /* locally administered, unicast */
    assert_int_equal(NETBR_MAC_PREFIX0 & 3, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_minimal_qemu),  cmocka_unit_test(golden_metadata_kvm),
        cmocka_unit_test(golden_network),       cmocka_unit_test(golden_escaping),
        cmocka_unit_test(golden_multiboot),     cmocka_unit_test(golden_seabios),
        cmocka_unit_test(golden_seabios_rom),   cmocka_unit_test(golden_disk),
        cmocka_unit_test(golden_debug_exit),    cmocka_unit_test(golden_initrd),
        cmocka_unit_test(golden_confined),      cmocka_unit_test(golden_pool),
        cmocka_unit_test(rejects_bad_values),   cmocka_unit_test(parses_instance_id),
        cmocka_unit_test(mac_is_deterministic), cmocka_unit_test(golden_remote_network),
        cmocka_unit_test(golden_serial_pty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
