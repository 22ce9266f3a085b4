/* image.c: image push, ls, inspect, set, tag, rm. */
#include "cli_args.h"
#include "cli_http.h"
#include "cli_json.h"
#include "cli_table.h"
#include "cli_util.h"
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char image_help[] =
    "Usage: shoal image COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  push FILE NAME[:TAG]   upload an image (digest checked end to end)\n"
    "  ls                     list images (alias: shoal images)\n"
    "  inspect REF...         show images as JSON\n"
    "  set REF OPTIONS        change an image's boot profile\n"
    "  tag REF NAME[:TAG]     add or move a tag\n"
    "  rm REF...              remove a tag (name:tag) or an image (digest)\n"
    "\n"
    "REF is NAME, NAME:TAG, sha256:HEX or a unique digest prefix (6+ hex).\n"
    "Run 'shoal image COMMAND --help' for a command's options.\n"
    "\n"
    "Examples:\n"
    "  shoal image push build/hello.elf hello:1.0\n"
    "  shoal image ls -o wide\n"
    "  shoal image tag hello:1.0 hello:stable\n"
    "  shoal image set myapp --exit debug-exit\n"
    "  shoal image rm hello:1.0\n";

static const char push_help[] =
    "Usage: shoal image push [OPTIONS] FILE NAME[:TAG]\n"
    "\n"
    "Upload FILE as NAME:TAG (TAG defaults to latest; an existing tag moves).\n"
    "The SHA-256 is computed locally and sent so shoald verifies the upload; the\n"
    "digest of the bytes actually streamed is checked against the server's\n"
    "answer too. A progress bar is shown when stderr is a terminal.\n"
    "\n"
    "Options:\n"
    "  -l, --label K=V        image label (repeatable)\n"
    "      --initrd FILE      the image's initrd, uploaded first (digest checked the\n"
    "                         same way); it replaces one the same image had\n"
    "  -q, --quiet            no progress bar; print only the digest\n"
    "  -o, --output FMT       table (summary line), json or wide\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal image push hello.elf hello\n"
    "  shoal image push -l team=web web.elf web:1.2\n"
    "  shoal image push --initrd rootfs.cpio app.elf app:1.0\n";

static const char ls_help[] = "Usage: shoal image ls [OPTIONS]\n"
                              "\n"
                              "List images, one row per tag.\n"
                              "\n"
                              "Options:\n"
                              "      --name NAME        only images named NAME\n"
                              "  -l, --selector SEL     only images whose labels match SEL\n"
                              "  -q, --quiet            print digests only\n"
                              "  -o, --output FMT       table, json or wide\n"
                              "  -h, --help             show this help\n"
                              "\n"
                              "Examples:\n"
                              "  shoal image ls\n"
                              "  shoal image ls --name hello -o json\n";

static const char inspect_help[] =
    "Usage: shoal image inspect [-o FMT] REF...\n"
    "\n"
    "Show images: as JSON (default; one REF prints an object, several an array)\n"
    "or, with -o table, as text. Either shows what the image is, judged at push:\n"
    "its kind (shoal, unikraft, solo5, pvh, multiboot, disk), the evidence for\n"
    "it, and its boot profile (firmware, command line preset or template, how an\n"
    "exit is read), derived from the kind at push or changed by 'shoal image set'.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT       json (default), table or wide (both: text)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal image inspect hello:latest\n"
    "  shoal image inspect -o table mirage-hello\n";

static const char set_help[] =
    "Usage: shoal image set REF [--firmware FW] [--cmdline LINE] [--exit MODE]\n"
    "                           [--ready SPEC] [--health SPEC] [--health-interval S]\n"
    "                           [--health-timeout S] [--health-retries N]\n"
    "                           [--warm-pool N]\n"
    "\n"
    "Change the boot profile stored with the image REF (every name of it; its\n"
    "instances see the change at their next start, its probes those created\n"
    "after it, unless 'shoal run' gives their own). Nothing changes unless\n"
    "every value given is valid.\n"
    "\n"
    "Options:\n"
    "      --firmware FW      qboot (the guest sets up PCI itself) or seabios\n"
    "                         (assigns PCI BARs; boots disks)\n"
    "      --cmdline LINE     a preset (shoal, unikraft, solo5, raw) or a template:\n"
    "                         {address} {prefix} {gateway} {mac} {env} {args}\n"
    "                         {name} are filled in per run, {{ and }} are braces\n"
    "      --exit MODE        status (shoal's status channel), debug-exit (the\n"
    "                         code the guest writes to isa-debug-exit, port 0x501)\n"
    "                         or poweroff (a clean power-off, code unknown)\n"
    "      --ready SPEC       readiness probe of its instances: status, none,\n"
    "                         tcp:PORT, http:PORT/PATH or console:REGEX; default:\n"
    "                         back to the kind's default\n"
    "      --health SPEC      health probe: tcp:PORT or http:PORT/PATH; none: no\n"
    "                         health probe\n"
    "      --health-interval S  seconds between health checks (default 10)\n"
    "      --health-timeout S   seconds one check may take (default 2)\n"
    "      --health-retries N   failed checks in a row that make it unhealthy (3)\n"
    "      --warm-pool N      keep N guests of it booted and waiting, so that a\n"
    "                         create takes one in milliseconds (0: no pool; only\n"
    "                         for kind shoal; docs/shoald.md \"Warm pools\")\n"
    "  -o, --output FMT       table (default: the profile), json or wide\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal image set nanos-app --exit debug-exit\n"
    "  shoal image set myuk --cmdline '{name} netdev.ip={address}/{prefix}:{gateway} -- {args}'\n"
    "  shoal image set hello --firmware seabios\n"
    "  shoal image set myuk --ready tcp:8080 --health http:8080/healthz --health-interval 5\n"
    "  shoal image set hello --warm-pool 4\n";

static const char tag_help[] = "Usage: shoal image tag REF NAME[:TAG]\n"
                               "\n"
                               "Point NAME:TAG at the image REF (moves the tag if it exists).\n"
                               "\n"
                               "Example:\n"
                               "  shoal image tag hello:1.0 hello:stable\n";

static const char rm_help[] =
    "Usage: shoal image rm [-f] REF...\n"
    "\n"
    "With NAME:TAG remove that tag; with a digest remove the image and all of\n"
    "its tags. Refused while instances use the image unless -f.\n"
    "\n"
    "Options:\n"
    "  -f, --force            remove even if instances use it\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal image rm hello:1.0\n"
    "  shoal image rm -f sha256:9f86d0\n";

void image_digest_hex(const unsigned char sha[32], char out[72])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[sha[i] >> 4];
        out[8 + 2 * i] = hex[sha[i] & 15];
    }
    out[71] = '\0';
}

/* SHA-256 of the whole file, from its current position to EOF. */
static int hash_file(FILE *f, unsigned char sha[32])
{
    int rc = -1;
    unsigned char buf[65536];
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (EVP_DigestUpdate(md, buf, n) != 1)
            goto out;
    if (ferror(f) || EVP_DigestFinal_ex(md, sha, &len) != 1 || len != 32)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

/* A server string for a terminal: control characters as '?', NULL as "-".
 * Returns one of four rotating static buffers (enough for one printf). */
static const char *safe(const char *s)
{
    static char buf[4][256];
    static unsigned k;
    if (!s)
        return "-";
    char *o = buf[k++ % 4];
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof buf[0]; i++)
        o[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    o[i] = '\0';
    return o;
}

/* Short digest for tables: 12 hex digits. */
static void short_digest(const char *d, char *out, size_t len)
{
    if (!d) {
        snprintf(out, len, "-");
        return;
    }
    const char *hex = strncmp(d, "sha256:", 7) == 0 ? d + 7 : d;
    snprintf(out, len, "%.12s", hex);
}

/* Upload FILE to PATH (which ends in '?' or '&'; the digest is appended)
 * and check the digest end to end: hashed before, hashed as sent, and as
 * the server stored it. *resp is the server's answer. */
static int push_file(cli_ctx *ctx, const char *path, const char *file, bool progress, json_t **resp,
                     char digest[72], uint64_t *size)
{
    int rc = CLI_OK;
    FILE *f = fopen(file, "rb");
    struct stat st;
    unsigned char pre[32], sent[32];
    char sent_hex[72];
    cli_buf url = { 0 };
    if (!f || fstat(fileno(f), &st) < 0) {
        cli_err("cannot open '%s': %s", file, strerror(errno));
        rc = CLI_EFAIL;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_err("'%s' is not a regular file", file);
        rc = CLI_EFAIL;
        goto out;
    }
    *size = (uint64_t)st.st_size;
    if (hash_file(f, pre) < 0 || fseek(f, 0, SEEK_SET) < 0) {
        cli_err("cannot read '%s': %s", file, strerror(errno));
        rc = CLI_EFAIL;
        goto out;
    }
    image_digest_hex(pre, digest);
    cli_buf_puts(&url, path);
    cli_buf_puts(&url, "digest=");
    cli_buf_escape(&url, digest);
    rc = cli_http_upload(ctx, cli_buf_str(&url), f, (uint64_t)st.st_size, progress, file, sent,
                         resp);
    if (rc != CLI_OK)
        goto out;
    image_digest_hex(sent, sent_hex);
    const char *server = cli_jstr(*resp, "digest");
    if (strcmp(sent_hex, digest) != 0) {
        cli_err("'%s' changed while it was uploaded (%s before, %s sent)", file, digest, sent_hex);
        rc = CLI_EFAIL;
        goto out;
    }
    if (!server || strcmp(server, sent_hex) != 0) {
        cli_err("digest mismatch: sent %s, server stored %s", sent_hex, server ? server : "(none)");
        rc = CLI_EFAIL;
        goto out;
    }
out:
    if (f)
        fclose(f);
    cli_buf_free(&url);
    return rc;
}

int image_push_initrd(cli_ctx *ctx, const char *file, bool progress, char digest[72])
{
    json_t *resp = NULL;
    uint64_t size = 0;
    int rc = push_file(ctx, "/v1/initrds?", file, progress, &resp, digest, &size);
    json_decref(resp);
    return rc;
}

static int image_push(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "label", required_argument, NULL, 'l' }, { "initrd", required_argument, NULL, 'i' },
        { "quiet", no_argument, NULL, 'q' },       { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    bool quiet = false;
    cli_fmt fmt = CLI_FMT_TABLE;
    char err[256], digest[72], rd_digest[72];
    const char *initrd = NULL;
    uint64_t size = 0, rd_size = 0;
    json_t *resp = NULL, *rd_resp = NULL;
    cli_buf path = { 0 }, labels = { 0 };
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:qo:h", longopts, NULL)) != -1) {
        size_t kl;
        const char *v;
        switch (c) {
        case 'l':
            if (cli_parse_kv(optarg, &kl, &v, err, sizeof err) < 0) {
                rc = cli_usage("image push", "--label: %s", err);
                goto out;
            }
            cli_buf_puts(&labels, "&label=");
            cli_buf_escape(&labels, optarg);
            break;
        case 'i': initrd = optarg; break;
        case 'q': quiet = true; break;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage("image push", "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(push_help, stdout); goto out;
        default: rc = cli_opt_error("image push", argv, c); goto out;
        }
    }
    if (argc - optind < 2) {
        rc = cli_usage("image push", "missing FILE or NAME[:TAG]");
        goto out;
    }
    if (argc - optind > 2) {
        rc = cli_usage("image push", "unexpected argument '%s'", argv[optind + 2]);
        goto out;
    }
    const char *file = argv[optind], *ref = argv[optind + 1];
    /* the initrd first: the image names it by digest and becomes visible
     * with it in one step */
    if (initrd) {
        rc = push_file(ctx, "/v1/initrds?", initrd, !quiet && ctx->tty_err, &rd_resp, rd_digest,
                       &rd_size);
        if (rc != CLI_OK)
            goto out;
    }
    cli_buf_puts(&path, "/v1/images?ref=");
    cli_buf_escape(&path, ref);
    cli_buf_puts(&path, cli_buf_str(&labels));
    if (initrd) {
        cli_buf_puts(&path, "&initrd=");
        cli_buf_escape(&path, rd_digest);
    }
    cli_buf_puts(&path, "&");
    rc = push_file(ctx, cli_buf_str(&path), file, !quiet && ctx->tty_err, &resp, digest, &size);
    if (rc != CLI_OK)
        goto out;
    const char *server = cli_jstr(resp, "digest");
    if (fmt == CLI_FMT_JSON) {
        cli_jprint(stdout, resp);
    } else if (quiet) {
        printf("%s\n", server);
    } else {
        char sz[32];
        const json_t *prof = json_object_get(resp, "profile");
        cli_fmt_bytes((uint64_t)cli_jnum(resp, "size", (double)size), sz, sizeof sz);
        printf("pushed %s %s (%s)", ref, server, sz);
        if (cli_jstr(resp, "kind"))
            printf(" kind %s, firmware %s, cmdline %s", safe(cli_jstr(resp, "kind")),
                   safe(cli_jstr(prof, "firmware")), safe(cli_jstr(prof, "cmdline")));
        if (initrd) {
            cli_fmt_bytes(rd_size, sz, sizeof sz);
            printf(", initrd %s (%s)", rd_digest, sz);
        }
        printf("\n");
    }
out:
    json_decref(resp);
    json_decref(rd_resp);
    cli_buf_free(&path);
    cli_buf_free(&labels);
    return rc;
}

int image_render_list(FILE *out, const json_t *items, cli_fmt fmt, time_t now)
{
    if (fmt == CLI_FMT_JSON)
        return cli_jprint(out, items);
    static const char *const table_h[] = {
        "NAME", "TAG", "DIGEST", "SIZE", "INSTANCES", "CREATED"
    };
    static const char *const wide_h[] = { "NAME", "TAG",  "DIGEST",    "SIZE",   "BOOT",
                                          "KIND", "POOL", "INSTANCES", "LABELS", "CREATED" };
    bool wide = fmt == CLI_FMT_WIDE;
    cli_table *t = wide ? cli_table_new(10, wide_h) : cli_table_new(6, table_h);
    int rc = 0;
    if (!t)
        return -1;
    if (!wide) {
        cli_table_set_max(t, 0, 32);
        cli_table_set_max(t, 1, 20);
    }
    cli_table_set_right(t, 3, true);
    cli_table_set_right(t, wide ? 7 : 4, true);
    if (wide)
        cli_table_set_right(t, 6, true);
    size_t i;
    json_t *img;
    json_array_foreach ((json_t *)items, i, img) {
        char dig[80], size[32], inst[16], created[48], labels[512], pool[16] = "-";
        int npool = (int)cli_jnum(json_object_get(img, "profile"), "warm_pool", 0);
        const char *d = cli_jstr(img, "digest");
        if (wide)
            snprintf(dig, sizeof dig, "%s", d ? d : "-");
        else
            short_digest(d, dig, sizeof dig);
        cli_fmt_bytes((uint64_t)cli_jnum(img, "size", 0), size, sizeof size);
        snprintf(inst, sizeof inst, "%d", (int)cli_jnum(img, "instances", 0));
        if (npool > 0)
            snprintf(pool, sizeof pool, "%d", npool);
        cli_fmt_ago(cli_jstr(img, "created"), now, created, sizeof created);
        cli_jlabels(json_object_get(img, "labels"), labels, sizeof labels);
        json_t *refs = json_object_get(img, "refs");
        size_t nrefs = json_array_size(refs);
        for (size_t r = 0; r < (nrefs ? nrefs : 1); r++) {
            char name[256] = "<none>", tag[128] = "<none>";
            const char *ref = json_string_value(json_array_get(refs, r));
            if (ref) {
                const char *colon = strrchr(ref, ':');
                if (colon) {
                    snprintf(name, sizeof name, "%.*s", (int)(colon - ref), ref);
                    snprintf(tag, sizeof tag, "%s", colon + 1);
                } else {
                    snprintf(name, sizeof name, "%s", ref);
                    snprintf(tag, sizeof tag, "latest");
                }
            }
            if (wide) {
                const char *row[] = {
                    name, tag,  dig,    size,   cli_jstr(img, "boot"), cli_jstr(img, "kind"),
                    pool, inst, labels, created
                };
                rc = cli_table_add(t, row);
            } else {
                const char *row[] = { name, tag, dig, size, inst, created };
                rc = cli_table_add(t, row);
            }
            if (rc < 0)
                goto out;
        }
    }
    cli_table_print(t, out);
out:
    cli_table_free(t);
    return rc;
}

int image_render_inspect(FILE *out, const json_t *img, time_t now)
{
    char size[32], created[48], labels[512];
    const json_t *refs = json_object_get(img, "refs"), *ev = json_object_get(img, "evidence");
    const json_t *prof = json_object_get(img, "profile"), *v;
    size_t i;
    cli_fmt_bytes((uint64_t)cli_jnum(img, "size", 0), size, sizeof size);
    cli_fmt_ago(cli_jstr(img, "created"), now, created, sizeof created);
    cli_jlabels(json_object_get(img, "labels"), labels, sizeof labels);
    fprintf(out, "digest      %s\n", safe(cli_jstr(img, "digest")));
    fprintf(out, "refs        ");
    json_array_foreach ((json_t *)refs, i, v)
        fprintf(out, "%s%s", i ? ", " : "", safe(json_string_value(v)));
    fprintf(out, "%s\n", json_array_size(refs) ? "" : "<none>");
    fprintf(out, "size        %s\n", size);
    fprintf(out, "boot        %s (format %s)\n", safe(cli_jstr(img, "boot")),
            safe(cli_jstr(img, "format")));
    fprintf(out, "kind        %s\n", safe(cli_jstr(img, "kind")));
    fprintf(out, "evidence    ");
    json_array_foreach ((json_t *)ev, i, v)
        fprintf(out, "%s%s\n", i ? "            " : "", safe(json_string_value(v)));
    if (!json_array_size(ev))
        fprintf(out, "-\n");
    fprintf(out, "profile     firmware %s, cmdline %s, exit %s\n", safe(cli_jstr(prof, "firmware")),
            safe(cli_jstr(prof, "cmdline")), safe(cli_jstr(prof, "exit")));
    /* the image's own probes (null: the kind's default readiness, no health) */
    if (cli_jstr(prof, "ready"))
        fprintf(out, "ready       %s\n", safe(cli_jstr(prof, "ready")));
    const json_t *hp = json_object_get(prof, "health");
    if (json_is_object(hp))
        fprintf(out, "health      %s every %d s, timeout %d s, unhealthy after %d\n",
                safe(cli_jstr(hp, "probe")), (int)cli_jnum(hp, "interval_s", 0),
                (int)cli_jnum(hp, "timeout_s", 0), (int)cli_jnum(hp, "retries", 0));
    if (cli_jnum(prof, "warm_pool", 0) > 0) /* docs/shoald.md "Warm pools" */
        fprintf(out, "warm pool   %d guests\n", (int)cli_jnum(prof, "warm_pool", 0));
    const json_t *rd = json_object_get(img, "initrd");
    if (json_is_object(rd)) {
        char rdsize[32];
        cli_fmt_bytes((uint64_t)cli_jnum(rd, "size", 0), rdsize, sizeof rdsize);
        fprintf(out, "initrd      %s (%s)\n", safe(cli_jstr(rd, "digest")), rdsize);
    }
    fprintf(out, "labels      %s\n", labels[0] ? safe(labels) : "-");
    fprintf(out, "created     %s\n", created);
    fprintf(out, "instances   %d\n", (int)cli_jnum(img, "instances", 0));
    return ferror(out) ? -1 : 0;
}

static int image_ls(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "name", required_argument, NULL, 'n' }, { "selector", required_argument, NULL, 'l' },
        { "quiet", no_argument, NULL, 'q' },      { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    bool quiet = false;
    cli_fmt fmt = CLI_FMT_TABLE;
    const char *name = NULL, *sel = NULL;
    char err[256];
    json_t *items = NULL;
    cli_buf path = { 0 };
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:qo:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'l':
            if (cli_parse_selector(optarg, err, sizeof err) < 0) {
                rc = cli_usage("image ls", "%s", err);
                goto out;
            }
            sel = optarg;
            break;
        case 'q': quiet = true; break;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage("image ls", "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(ls_help, stdout); goto out;
        default: rc = cli_opt_error("image ls", argv, c); goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage("image ls", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    cli_buf_puts(&path, "/v1/images?limit=1000");
    if (name) {
        cli_buf_puts(&path, "&name=");
        cli_buf_escape(&path, name);
    }
    if (sel) {
        cli_buf_puts(&path, "&selector=");
        cli_buf_escape(&path, sel);
    }
    rc = cli_http_list(ctx, cli_buf_str(&path), &items);
    if (rc != CLI_OK)
        goto out;
    if (quiet) {
        size_t i;
        json_t *it;
        json_array_foreach (items, i, it)
            printf("%s\n", cli_jstr(it, "digest"));
    } else if (image_render_list(stdout, items, fmt, time(NULL)) < 0) {
        rc = CLI_EFAIL;
    }
out:
    json_decref(items);
    cli_buf_free(&path);
    return rc;
}

/* inspect, tag, rm: small commands sharing one parser. */
static int image_simple(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb = argv[0];
    bool is_rm = !strcmp(verb, "rm"), is_tag = !strcmp(verb, "tag");
    const char *help = is_rm ? rm_help : is_tag ? tag_help : inspect_help;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "image %s", verb);
    int rc = CLI_OK, c;
    bool force = false;
    cli_fmt fmt = CLI_FMT_JSON;
    char err[256];
    json_t *all = NULL, *body = NULL, *obj = NULL;
    cli_buf path = { 0 };
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv,
                            is_rm    ? ":fh"
                            : is_tag ? ":h"
                                     : ":o:h",
                            longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (!is_rm) {
                rc = cli_usage(cmd, "unknown option '-f'");
                goto out;
            }
            force = true;
            break;
        case 'o':
            if (is_rm || is_tag) {
                rc = cli_usage(cmd, "unknown option '-o'");
                goto out;
            }
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage(cmd, "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(help, stdout); goto out;
        default: rc = cli_opt_error(cmd, argv, c); goto out;
        }
    }
    int n = argc - optind;
    if (n < 1 || (is_tag && n != 2)) {
        rc = cli_usage(cmd, "%s", is_tag ? "expected REF and NAME[:TAG]" : "missing REF");
        goto out;
    }
    if (is_tag) {
        cli_buf_puts(&path, "/v1/images/");
        cli_buf_escape(&path, argv[optind]);
        cli_buf_puts(&path, "/tags");
        body = json_pack("{s:s}", "ref", argv[optind + 1]);
        rc = cli_http_json(ctx, "POST", cli_buf_str(&path), body, &obj);
        if (rc == CLI_OK)
            printf("tagged %s as %s\n", argv[optind], argv[optind + 1]);
        goto out;
    }
    all = json_array();
    for (int i = optind; i < argc; i++) {
        path.len = 0;
        cli_buf_puts(&path, "/v1/images/");
        cli_buf_escape(&path, argv[i]);
        int r;
        if (is_rm) {
            if (force)
                cli_buf_puts(&path, "?force=true");
            r = cli_http_json(ctx, "DELETE", cli_buf_str(&path), NULL, NULL);
            if (r == CLI_OK)
                printf("removed %s\n", argv[i]);
        } else {
            json_t *img = NULL;
            r = cli_http_json(ctx, "GET", cli_buf_str(&path), NULL, &img);
            if (r == CLI_OK)
                json_array_append_new(all, img);
        }
        if (r != CLI_OK && rc == CLI_OK)
            rc = r;
    }
    if (!is_rm && fmt != CLI_FMT_JSON) {
        size_t i;
        json_t *img;
        json_array_foreach (all, i, img) {
            if (i)
                printf("\n");
            image_render_inspect(stdout, img, time(NULL));
        }
    } else if (!is_rm) {
        if (n == 1 && json_array_size(all))
            cli_jprint(stdout, json_array_get(all, 0));
        else if (n > 1)
            cli_jprint(stdout, all);
    }
out:
    json_decref(all);
    json_decref(body);
    json_decref(obj);
    cli_buf_free(&path);
    return rc;
}

/* set: PATCH /v1/images/{ref} with the profile fields given. */
static int image_set(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "firmware", required_argument, NULL, 'F' },
        { "cmdline", required_argument, NULL, 'C' },
        { "exit", required_argument, NULL, 'E' },
        { "output", required_argument, NULL, 'o' },
        { "ready", required_argument, NULL, 'R' },
        { "health", required_argument, NULL, 'H' },
        { "health-interval", required_argument, NULL, 1001 },
        { "health-timeout", required_argument, NULL, 1002 },
        { "health-retries", required_argument, NULL, 1003 },
        { "warm-pool", required_argument, NULL, 1004 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const struct {
        int opt;
        const char *name, *key;
        unsigned long max;
    } nums[] = { { 1001, "--health-interval", "interval_s", 3600 },
                 { 1002, "--health-timeout", "timeout_s", 3600 },
                 { 1003, "--health-retries", "retries", 100 } };
    int rc = CLI_OK, c;
    cli_fmt fmt = CLI_FMT_TABLE;
    char err[256];
    const char *health = NULL;
    json_t *body = json_object(), *img = NULL, *hobj = json_object();
    unsigned long v;
    cli_buf path = { 0 };
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'F': json_object_set_new(body, "firmware", json_string(optarg)); break;
        case 'C': json_object_set_new(body, "cmdline", json_string(optarg)); break;
        case 'E': json_object_set_new(body, "exit", json_string(optarg)); break;
        /* "default" and "none" remove the image's own: JSON null */
        case 'R':
            json_object_set_new(body, "ready",
                                strcmp(optarg, "default") ? json_string(optarg) : json_null());
            break;
        case 'H': health = optarg; break;
        case 1004: /* its upper bound is the daemon's (image store) */
            if (cli_parse_uint(optarg, 0, 1000000, &v, err, sizeof err) < 0) {
                rc = cli_usage("image set", "--warm-pool: %s", err);
                goto out;
            }
            json_object_set_new(body, "warm_pool", json_integer((json_int_t)v));
            break;
        case 1001:
        case 1002:
        case 1003:
            for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
                if (nums[i].opt != c)
                    continue;
                if (cli_parse_uint(optarg, 1, nums[i].max, &v, err, sizeof err) < 0) {
                    rc = cli_usage("image set", "%s: %s", nums[i].name, err);
                    goto out;
                }
                json_object_set_new(hobj, nums[i].key, json_integer((json_int_t)v));
            }
            break;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage("image set", "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(set_help, stdout); goto out;
        default: rc = cli_opt_error("image set", argv, c); goto out;
        }
    }
    if (argc - optind != 1) {
        rc = cli_usage("image set", "%s", argc - optind < 1 ? "missing REF" : "expected one REF");
        goto out;
    }
    if (health && !strcmp(health, "none")) {
        if (json_object_size(hobj)) {
            rc = cli_usage("image set", "--health none takes no --health-interval, "
                                        "--health-timeout or --health-retries");
            goto out;
        }
        json_object_set_new(body, "health", json_null());
    } else if (health || json_object_size(hobj)) {
        if (health)
            json_object_set_new(hobj, "probe", json_string(health));
        json_object_set(body, "health", hobj);
    }
    if (json_object_size(body) == 0) {
        rc = cli_usage("image set", "give at least one of --firmware, --cmdline, --exit, --ready, "
                                    "--health and --warm-pool");
        goto out;
    }
    cli_buf_puts(&path, "/v1/images/");
    cli_buf_escape(&path, argv[optind]);
    rc = cli_http_json(ctx, "PATCH", cli_buf_str(&path), body, &img);
    if (rc != CLI_OK)
        goto out;
    if (fmt == CLI_FMT_JSON) {
        cli_jprint(stdout, img);
    } else {
        const json_t *prof = json_object_get(img, "profile");
        const json_t *hp = json_object_get(prof, "health");
        printf("%s: firmware %s, cmdline %s, exit %s", argv[optind],
               safe(cli_jstr(prof, "firmware")), safe(cli_jstr(prof, "cmdline")),
               safe(cli_jstr(prof, "exit")));
        if (cli_jstr(prof, "ready"))
            printf(", ready %s", safe(cli_jstr(prof, "ready")));
        if (json_is_object(hp))
            printf(", health %s every %d s", safe(cli_jstr(hp, "probe")),
                   (int)cli_jnum(hp, "interval_s", 0));
        if (cli_jnum(prof, "warm_pool", 0) > 0)
            printf(", warm pool %d", (int)cli_jnum(prof, "warm_pool", 0));
        printf("\n");
    }
out:
    json_decref(hobj);
    json_decref(body);
    json_decref(img);
    cli_buf_free(&path);
    return rc;
}

int image_main(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("image", "missing image command (push, ls, inspect, set, tag, rm)");
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(image_help, stdout);
        return CLI_OK;
    }
    if (!strcmp(sub, "push"))
        return image_push(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
        return image_ls(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "set"))
        return image_set(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "inspect") || !strcmp(sub, "tag") || !strcmp(sub, "rm"))
        return image_simple(ctx, argc - 1, argv + 1);
    return cli_usage("image", "unknown image command '%s' (push, ls, inspect, set, tag, rm)", sub);
}
