/*
 * test_boot.c - what an image's stored profile makes of a run (issue 14):
 * command-line templates filled in (daemon/core/boot.h,
 * fleet_boot_cmdline), the exit mode in the boot plan, and the exit code
 * read back from a domain's log after isa-debug-exit
 * (daemon/core/debugexit.h, fleet_debug_exit_parse) on log text as
 * libvirt 9.0 and shoal-qemu-exit write it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "boot.h"
#include "debugexit.h"

static img_info image(img_kind kind, img_format format, img_boot boot)
{
    img_info i;
    memset(&i, 0, sizeof i);
    i.kind = kind;
    i.format = format;
    i.boot = boot;
    i.profile = img_profile_default(kind);
    return i;
}

static const gcmd_kv env[] = { { "MODE", "fast" }, { "B", "two words" } };
static const char *const args[] = { "hello", "x=1" };

static gcmd_run networked(void)
{
    gcmd_run r;
    memset(&r, 0, sizeof r);
    r.ip = "10.88.0.4";
    r.prefix = 16;
    r.gw = "10.88.0.1";
    r.mac = "5a:5c:00:11:22:33";
    r.env = env;
    r.n_env = 2;
    r.args = args;
    r.n_args = 2;
    return r;
}

static void plan_with(img_info *i, const char *tmpl, fleet_boot *b)
{
    char err[256];
    i->profile.cmdline = IMG_CMDLINE_TEMPLATE;
    snprintf(i->profile.template, sizeof i->profile.template, "%s", tmpl);
    if (fleet_boot_plan(i, b, err, sizeof err) != 0)
        fail_msg("plan: %s", err);
    assert_true(b->template);
}

static void templates_filled(void **state)
{
    img_info i = image(IMG_KIND_UNIKRAFT, IMG_FORMAT_ELF, IMG_BOOT_PVH);
    fleet_boot b;
    gcmd c;
    char err[256] = "";
    gcmd_run r = networked();
    (void)state;
    plan_with(&i, "{name} netdev.ip={address}/{prefix}:{gateway} mac={mac} {{x}} -- {env} {args}",
              &b);
    assert_int_equal(fleet_boot_cmdline(&b, "registry/nginx:1.25", &r, &c, err, sizeof err), 0);
    assert_string_equal(c.buf, "nginx netdev.ip=10.88.0.4/16:10.88.0.1 mac=5a:5c:00:11:22:33 {x} "
                               "-- MODE=fast B=two words hello x=1");
    assert_int_equal(c.len, strlen(c.buf));
    /* no environment, no arguments: the placeholders are empty */
    r.n_env = r.n_args = 0;
    assert_int_equal(fleet_boot_cmdline(&b, "sha256:ab", &r, &c, err, sizeof err), 0);
    assert_string_equal(c.buf,
                        "app netdev.ip=10.88.0.4/16:10.88.0.1 mac=5a:5c:00:11:22:33 {x} --  ");
}

static void templates_refuse(void **state)
{
    img_info i = image(IMG_KIND_PVH, IMG_FORMAT_ELF, IMG_BOOT_PVH);
    fleet_boot b;
    gcmd c;
    char err[256] = "";
    gcmd_run r = networked();
    (void)state;
    plan_with(&i, "{args}", &b);
    assert_int_equal(fleet_boot_cmdline(&b, "x", &r, &c, err, sizeof err), -1);
    assert_string_equal(err, "env cannot reach the guest: the image's command line template has "
                             "no {env}");
    plan_with(&i, "{env}", &b);
    assert_int_equal(fleet_boot_cmdline(&b, "x", &r, &c, err, sizeof err), -1);
    assert_string_equal(err, "args cannot reach the guest: the image's command line template "
                             "has no {args}");
    plan_with(&i, "ip={address} {env} {args}", &b);
    r.ip = NULL;
    assert_int_equal(fleet_boot_cmdline(&b, "x", &r, &c, err, sizeof err), -1);
    assert_string_equal(err, "the image's command line template uses {address}, and the "
                             "instance has no network");
    plan_with(&i, "{env} {args}", &b);
    static const char *const tab[] = { "a\tb" };
    r.args = tab;
    r.n_args = 1;
    assert_int_equal(fleet_boot_cmdline(&b, "x", &r, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "args has a control character"));
    static char big[GCMD_MAX];
    memset(big, 'a', sizeof big - 1);
    static const char *bigv[1] = { big };
    r.args = bigv;
    assert_int_equal(fleet_boot_cmdline(&b, "x", &r, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 4095 bytes"));
    /* a preset still builds its own line */
    i = image(IMG_KIND_SOLO5, IMG_FORMAT_ELF, IMG_BOOT_MULTIBOOT);
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_false(b.template);
    r = networked();
    r.n_env = 0;
    assert_int_equal(fleet_boot_cmdline(&b, "x", &r, &c, err, sizeof err), 0);
    assert_string_equal(c.buf, "hello x=1");
}

static void exit_modes(void **state)
{
    fleet_boot b;
    char err[256];
    (void)state;
    img_info i = image(IMG_KIND_SHOAL, IMG_FORMAT_ELF, IMG_BOOT_PVH);
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_true(b.status_channel);
    assert_false(b.debug_exit);
    i.profile.exit = IMG_EXIT_DEBUG_EXIT; /* the reference guest told to exit that way */
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_false(b.status_channel);
    assert_true(b.debug_exit);
    i = image(IMG_KIND_UNIKRAFT, IMG_FORMAT_ELF, IMG_BOOT_PVH);
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_false(b.status_channel);
    assert_false(b.debug_exit);
    i.profile.exit = IMG_EXIT_STATUS;
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_true(b.status_channel);
    i = image(IMG_KIND_DISK, IMG_FORMAT_RAW, IMG_BOOT_DISK);
    i.profile.exit = IMG_EXIT_DEBUG_EXIT;
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_true(b.disk);
    assert_true(b.debug_exit);
    i = image(IMG_KIND_UNKNOWN, IMG_FORMAT_NONE, IMG_BOOT_PVH); /* rows from before kinds */
    assert_int_equal(fleet_boot_plan(&i, &b, err, sizeof err), 0);
    assert_true(b.status_channel);
}

/* The log of one domain over two runs, as written here (libvirt 9.0,
 * embedded driver, stdio_handler "file", shoal-qemu-exit as emulator). */
#define RUN1                                                                                       \
    "2026-12-06 10:56:30.781+0000: starting up libvirt version: 9.0.0, qemu version: 7.2.22\n"     \
    "LC_ALL=C \\\n/usr/libexec/shoal/shoal-qemu-exit \\\n-name guest=shoal-x,debug-threads=on "    \
    "\\\n"                                                                                         \
    "-device isa-debug-exit,iobase=0x501,iosize=2 \\\n-msg timestamp=on\n"                         \
    "2026-12-06 10:56:30.786+0000: Domain id=1 is tainted: custom-argv\n"
#define DESTROYED                                                                                  \
    "2026-12-06T11:02:45.323453Z qemu-system-x86_64: terminating on signal 15 from pid 11617 "     \
    "(/usr/libexec/shoal/shoal-qemu-exit)\n"                                                       \
    "shoal-qemu-exit: qemu pid 11633 exited with status 0\n"                                       \
    "2026-12-06 11:02:46.939+0000: shutting down, reason=destroyed\n"

static int parse(const char *log, int *code)
{
    *code = -99;
    return fleet_debug_exit_parse(log, strlen(log), code);
}

static void exit_code_from_log(void **state)
{
    int code;
    (void)state;
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 10636 exited with status 15\n"
                                "2026-12-06 10:56:33.669+0000: shutting down, reason=crashed\n",
                           &code),
                     0);
    assert_int_equal(code, 7);
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 1 exited with status 1\n", &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 1 exited with status 255\n", &code), 0);
    assert_int_equal(code, 127);
    /* destroyed (status 0), killed, still running, QEMU's own error */
    assert_int_equal(parse(RUN1 DESTROYED, &code), -1);
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 1 killed by signal 9\n", &code), -1);
    assert_int_equal(parse(RUN1, &code), -1);
    assert_int_equal(parse(RUN1 "2026-12-06T11:02:45.323453Z qemu-system-x86_64: cannot set up "
                                "guest memory 'pc.ram': Cannot allocate memory\n"
                                "shoal-qemu-exit: qemu pid 1 exited with status 1\n",
                           &code),
                     -1);
    /* only the last run counts: a code from the run before is not this one's */
    assert_int_equal(
        parse(RUN1 "shoal-qemu-exit: qemu pid 1 exited with status 15\n" RUN1 DESTROYED, &code),
        -1);
    assert_int_equal(
        parse(RUN1 DESTROYED RUN1 "shoal-qemu-exit: qemu pid 2 exited with status 3\n", &code), 0);
    assert_int_equal(code, 1);
    /* no run in the text, garbage after the prefix */
    assert_int_equal(parse("shoal-qemu-exit: qemu pid 2 exited with status 3\n", &code), -1);
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 2 exited with status x\n", &code), -1);
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 2 exited with status 999\n", &code), -1);
    assert_int_equal(parse(RUN1 "shoal-qemu-exit: qemu pid 2", &code), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(templates_filled),
        cmocka_unit_test(templates_refuse),
        cmocka_unit_test(exit_modes),
        cmocka_unit_test(exit_code_from_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
