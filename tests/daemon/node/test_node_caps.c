/*
 * test_node_caps.c - node_caps_cache_trim: libvirt's QEMU capabilities cache
 * under an embed root loses its CPU model lists, host CPU model info, the
 * machine types shoald never renders and the flag cpu-unavailable-features,
 * and nothing else (issue 13: shoald memory per instance, and libvirt's
 * per-feature CPU read-back at each start).
 * Files only, no libvirt connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"

/* The shape libvirt 9.0 writes (virQEMUCapsFormatCPUModels,
 * virQEMUCapsFormatHostCPUModelInfo, virQEMUCapsFormatAccel), cut down.
 * Machine types: what names or aliases DOMXML_MACHINE ("pc") stays, and
 * so does an accelerator's default (libvirt's choice for a domain naming
 * none); the rest goes, near names too ('pcx', alias 'pci'). */
static const char caps_in[] =
    "<qemuCaps>\n"
    "  <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
    "  <flag name='blockdev'/>\n"
    "  <flag name='x86-max-cpu'/>\n"
    "  <flag name='cpu-unavailable-features'/>\n"
    "  <flag name='canonical-cpu-features'/>\n"
    "  <hostCPU type='kvm' model='base' migratability='yes'>\n"
    "    <property name='vmx-entry-load-rtit-ctl' type='boolean' value='false'/>\n"
    "    <property name='family' type='number' value='25'/>\n"
    "  </hostCPU>\n"
    "  <cpu type='kvm' name='max' typename='max-x86_64-cpu' usable='yes'/>\n"
    "  <cpu type='kvm' name='EPYC' typename='EPYC-x86_64-cpu' usable='no'>\n"
    "\t<blocker name='sha-ni'/>  \n"
    "  </cpu>\n"
    "  <machine type='kvm' name='pc-i440fx-7.2' alias='pc' defaultCPU='qemu64-x86_64-cpu'/>\n"
    "  <machine type='kvm' name='pc-q35-7.2' alias='q35' maxCpus='288' default='yes'/>\n"
    "  <machine type='kvm' name='pc-i440fx-6.2' maxCpus='255' defaultRAMid='pc.ram'/>\n"
    "  <hostCPU type='tcg' model='max' migratability='no'>\n"
    "    <property name='sse4.2' type='boolean' value='true'/>\n"
    "  </hostCPU>\n"
    "  <cpu type='tcg' name='Broadwell' typename='Broadwell-x86_64-cpu' usable='no'>\n"
    "    <blocker name='pcid'/>\n"
    "    <blocker name='x2apic'/>\n"
    "  </cpu>\n"
    "  <cpu type='tcg' name='qemu64' typename='qemu64-x86_64-cpu' usable='yes'/>\n"
    "  <machine type='tcg' name='pc-q35-7.2' alias='q35' maxCpus='288'/>\n"
    "  <machine type='tcg' name='pc-i440fx-7.2' alias='pc' defaultCPU='qemu64-x86_64-cpu'/>\n"
    "  <machine type='tcg' name='isapc' maxCpus='1' defaultCPU='486-x86_64-cpu'/>\n"
    "\t<machine type='tcg' name='microvm' maxCpus='288' defaultRAMid='microvm.ram'/> \n"
    "  <machine type='tcg' name='pcx' alias='pci' defaultCPU='qemu64-x86_64-cpu'/>\n"
    "  <machine type='tcg' name='pc' maxCpus='255'/>\n"
    "  <hostCPUSignature>AuthenticAMD, AMD EPYC, family: 25</hostCPUSignature>\n"
    "  <cpudata arch='x86'>\n"
    "    <cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x00a00f11'/>\n"
    "  </cpudata>\n"
    "</qemuCaps>"; /* no final newline: the last line is kept as it is */

static const char caps_out[] =
    "<qemuCaps>\n"
    "  <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
    "  <flag name='blockdev'/>\n"
    "  <flag name='x86-max-cpu'/>\n"
    "  <flag name='canonical-cpu-features'/>\n"
    "  <machine type='kvm' name='pc-i440fx-7.2' alias='pc' defaultCPU='qemu64-x86_64-cpu'/>\n"
    "  <machine type='kvm' name='pc-q35-7.2' alias='q35' maxCpus='288' default='yes'/>\n"
    "  <machine type='tcg' name='pc-i440fx-7.2' alias='pc' defaultCPU='qemu64-x86_64-cpu'/>\n"
    "  <machine type='tcg' name='pc' maxCpus='255'/>\n"
    "  <hostCPUSignature>AuthenticAMD, AMD EPYC, family: 25</hostCPUSignature>\n"
    "  <cpudata arch='x86'>\n"
    "    <cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x00a00f11'/>\n"
    "  </cpudata>\n"
    "</qemuCaps>";

#define CAPS_DROPPED 22 /* lines of caps_in that are not in caps_out */

/* A block that never ends: not a format the trim knows. */
static const char caps_open_block[] = "<qemuCaps>\n"
                                      "  <hostCPU type='kvm' model='base' migratability='yes'>\n"
                                      "    <property name='family' type='number' value='25'/>\n"
                                      "</qemuCaps>\n";

static char root[256], dir[512];

static void put(const char *name, const char *text)
{
    char path[600];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

static char *get(const char *name, struct stat *st)
{
    char path[600];
    static char buf[8192];
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(stat(path, st), 0);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    char cmd[600];
    (void)state;
    snprintf(root, sizeof root, "/tmp/shoal-test-caps.XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(dir, sizeof dir, "%s/cache/qemu/capabilities", root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void no_cache_yet(void **state)
{
    (void)state;
    assert_int_equal(node_caps_cache_trim("/nonexistent/shoal-root"), 0);
    assert_int_equal(node_caps_cache_trim(root), 0); /* empty dir */
}

static void drops_what_no_domain_uses(void **state)
{
    struct stat st, st2;
    (void)state;
    put("x86_64.xml", caps_in);
    put("notes.txt", caps_in); /* not a cache file: left alone */
    assert_int_equal(node_caps_cache_trim(root), CAPS_DROPPED);
    assert_string_equal(get("x86_64.xml", &st), caps_out);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(get("notes.txt", &st), caps_in);

    /* Again: nothing to drop, the file is not rewritten. */
    get("x86_64.xml", &st);
    assert_int_equal(node_caps_cache_trim(root), 0);
    get("x86_64.xml", &st2);
    assert_int_equal(st.st_ino, st2.st_ino);
    assert_string_equal(get("x86_64.xml", &st2), caps_out);
}

/* Does the trimmed text keep, for accelerator acc, a machine line libvirt
 * resolves machine m through (its name or its alias)? */
static int keeps_machine(const char *text, const char *acc, const char *m)
{
    char pre[64], name[96], alias[96];
    snprintf(pre, sizeof pre, "<machine type='%s' ", acc);
    snprintf(name, sizeof name, " name='%s'", m);
    snprintf(alias, sizeof alias, " alias='%s'", m);
    for (const char *l = strstr(text, pre); l; l = strstr(l + 1, pre)) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)n, l);
        if (strstr(line, name) || strstr(line, alias))
            return 1;
    }
    return 0;
}

/* Every domain shoald renders (each boot profile's shape: qboot or SeaBIOS
 * with a PVH or Multiboot kernel, a disk, TCG or KVM) names a machine type
 * the trimmed cache still resolves, under both accelerators. */
static void rendered_machines_kept(void **state)
{
    static const struct domxml_spec base = {
        .name = "shoal-caps-1",
        .virt = DOMXML_VIRT_QEMU,
        .memory_mib = 32,
        .vcpus = 1,
        .kernel = "/var/lib/shoal/images/k.elf",
        .console_log = "/var/lib/shoal/instances/i-1/console.log",
        .status_log = "/var/lib/shoal/instances/i-1/status.log",
    };
    struct domxml_spec v[5];
    char err[256], m[64];
    struct stat st;
    const char *out;
    (void)state;

    put("x86_64.xml", caps_in);
    assert_true(node_caps_cache_trim(root) > 0);
    out = get("x86_64.xml", &st);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        v[i] = base;
    v[1].fw = DOMXML_FW_SEABIOS;
    v[1].boot = DOMXML_BOOT_MULTIBOOT;
    v[2].fw = DOMXML_FW_SEABIOS;
    v[2].kernel = NULL;
    v[2].disk = "/var/lib/shoal/disks/i-1.qcow2";
    v[3].virt = DOMXML_VIRT_KVM;
    v[4].virt = DOMXML_VIRT_KVM;
    v[4].fw = DOMXML_FW_SEABIOS;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *xml = NULL;
        const char *p;
        assert_int_equal(domxml_render(&v[i], &xml, err, sizeof err), DOMXML_OK);
        p = strstr(xml, "<type arch='x86_64' machine='");
        assert_non_null(p);
        p += strlen("<type arch='x86_64' machine='");
        assert_true(sscanf(p, "%63[^']", m) == 1);
        free(xml);
        if (!keeps_machine(out, "kvm", m) || !keeps_machine(out, "tcg", m))
            fail_msg("domain %zu names machine '%s', which the trimmed cache lost", i, m);
    }
    /* and nothing else of pc's family: the versioned machines went */
    assert_null(strstr(out, "pc-i440fx-6.2"));
}

static void unknown_shape_left_alone(void **state)
{
    struct stat st;
    (void)state;
    put("x86_64.xml", caps_open_block);
    assert_int_equal(node_caps_cache_trim(root), 0);
    assert_string_equal(get("x86_64.xml", &st), caps_open_block);
}

static void no_temporary_left(void **state)
{
    char cmd[700];
    (void)state;
    put("a.xml", caps_in);
    put("b.xml", caps_in);
    assert_int_equal(node_caps_cache_trim(root), 2 * CAPS_DROPPED);
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep -v -x -e a.xml -e b.xml)\"", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_cache_yet, setup, teardown),
        cmocka_unit_test_setup_teardown(drops_what_no_domain_uses, setup, teardown),
        cmocka_unit_test_setup_teardown(rendered_machines_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_shape_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(no_temporary_left, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
