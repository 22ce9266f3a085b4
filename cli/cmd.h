/* cmd.h: the CLI's commands, one file per group, plus the pieces of each
 * that the unit tests drive directly (option parsing, request bodies,
 * renderers).
 *
 * Every entry point has the shape int X(cli_ctx *ctx, int argc, char **argv)
 * with argv[0] the command word, and returns an exit status (cli.h).
 * Parsers print their own usage errors and return CLI_OK, CLI_EUSAGE, or
 * CLI_DONE after --help. Options structs own nothing unless a *_free()
 * exists for them; strings point into argv.
 */
#ifndef SHOAL_CLI_CMD_H
#define SHOAL_CLI_CMD_H

#include "cli.h"
#include "cli_jv.h"

#include <jansson.h>
#include <stdint.h>
#include <time.h>

/* ---- instance.c: run, ps, inspect, logs, stop, start, restart, rm ---- */

struct inst_run_opts {
    const char *image;   /* IMAGE (required) */
    const char *name;    /* --name */
    unsigned long count; /* --count, 0 = server default */
    uint32_t memory_mib; /* --memory, 0 = server default */
    unsigned long vcpus; /* --vcpus, 0 = server default */
    json_t *env;         /* --env K=V (object, owned) */
    json_t *labels;      /* --label K=V (object, owned) */
    json_t *ports;       /* -p HOST:PORT (array, owned) */
    bool no_network;     /* --no-network */
    const char *restart; /* --restart, NULL = server default */
    const char *host;    /* --host */
    bool spread;         /* --spread: placement policy spread */
    json_t *rules;       /* --affinity etc. (array of rule objects, owned) */
    bool attach;         /* --attach */
    bool no_wait;        /* --no-wait: with --count, do not follow the batch */
    cli_fmt fmt;         /* -o */
    char **args;         /* guest arguments after "--" */
    int nargs;
    const char *ready;  /* --ready SPEC: readiness probe */
    const char *health; /* --health SPEC: health probe */
    unsigned long health_interval, health_timeout, health_retries; /* 0 = server default */
    const char *cmdline; /* --cmdline TEMPLATE: per-run override of the image's line */
    const char *initrd;  /* --initrd FILE|sha256:HEX: the run's own initrd (a file is
                            uploaded first by inst_run; the body carries a digest only) */
    /* --scale-to-zero N: sleep after N s without a connection, 0 off */
    unsigned long idle_s;
};
int inst_run_parse(int argc, char **argv, struct inst_run_opts *o);
void inst_run_opts_free(struct inst_run_opts *o);
/* POST /v1/instances body for o (only the fields that were given). */
json_t *inst_run_body(const struct inst_run_opts *o);

struct inst_ps_opts {
    bool all;             /* -a: include stopped, exited, crashed, failed */
    const char *selector; /* -l */
    const char *host;     /* --host */
    bool quiet;           /* -q: ids only */
    bool watch;           /* --watch */
    cli_fmt fmt;          /* -o */
};
int inst_ps_parse(int argc, char **argv, struct inst_ps_opts *o);
/* True for states ps shows without -a. */
bool inst_state_active(const char *state);
/* Render instance objects as a table (table/wide) or JSON array. Lists of
 * instances can be long, so they use the fast parser's values (cli_jv.h). */
int inst_render_list(FILE *out, const cli_jv *items, cli_fmt fmt, time_t now);

/* stop/start/restart/rm: names, ids, id prefixes, or -l SELECTOR. */
struct inst_target_opts {
    const char *verb;     /* "stop", "start", "restart", "rm" */
    const char *selector; /* -l */
    bool force;           /* rm -f */
    long timeout_s;       /* stop -t, -1 = server default */
    char **targets;
    int ntargets;
};
int inst_target_parse(const char *verb, int argc, char **argv, struct inst_target_opts *o);

int inst_run(cli_ctx *ctx, int argc, char **argv);
int inst_ps(cli_ctx *ctx, int argc, char **argv);
int inst_inspect(cli_ctx *ctx, int argc, char **argv);
int inst_logs(cli_ctx *ctx, int argc, char **argv);
int inst_action(cli_ctx *ctx, int argc, char **argv); /* argv[0] is the verb */

/* ---- image.c: image push|ls|inspect|tag|rm ---- */

int image_main(cli_ctx *ctx, int argc, char **argv); /* argv[0] = "image" */
/* One row per ref (an untagged image shows "<none>"). */
int image_render_list(FILE *out, const json_t *items, cli_fmt fmt, time_t now);
/* One image object as text (inspect -o table): digest, refs, size, boot and
 * format, kind, evidence (one per line), profile, labels, created, instances. */
int image_render_inspect(FILE *out, const json_t *img, time_t now);
/* POST /v1/initrds of file, its digest checked end to end as for an image;
 * digest receives "sha256:<hex>". */
int image_push_initrd(cli_ctx *ctx, const char *file, bool progress, char digest[72]);
/* Lower-case hex of a 32-byte digest with "sha256:" prefix (72 bytes). */
void image_digest_hex(const unsigned char sha[32], char out[72]);

/* ---- host.c: hosts, host add|cordon|uncordon|drain|rm, consolidate ---- */

int host_list(cli_ctx *ctx, int argc, char **argv);
int host_main(cli_ctx *ctx, int argc, char **argv); /* argv[0] = "host" */
int host_consolidate(cli_ctx *ctx, int argc, char **argv);
int host_render_list(FILE *out, const json_t *items, cli_fmt fmt);
int host_render_plan(FILE *out, const json_t *plan, cli_fmt fmt);
/* A carried-out plan's failed moves, each on stderr; the exit status of
 * the first (as for its error code), CLI_OK when none failed. */
int host_plan_status(const json_t *plan);

/* ---- token.c: token create|ls|rm ---- */

int token_main(cli_ctx *ctx, int argc, char **argv); /* argv[0] = "token" */
/* GET /v1/tokens items as a table (ID NAME SCOPE SELECTOR and each quota
 * as used/max, "-" for none) or JSON. */
int token_render_list(FILE *out, const json_t *items, cli_fmt fmt);

/* ---- events.c ---- */

int events_main(cli_ctx *ctx, int argc, char **argv);
/* One event (the SSE data JSON) as a single line of text. */
void events_format(const json_t *ev, char *out, size_t len);

#endif
