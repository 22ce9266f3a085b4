/*
 * cmdline.h - command line parser (docs/guest-protocol.md, "Command line").
 *
 *   [KEY=VALUE ...] [-- ARG ...]
 *
 * Tokens are separated by spaces (or tabs). Double quotes group; inside them
 * \" and \\ are escapes and any other backslash is literal. Outside quotes a
 * backslash escapes the next character. An unquoted "--" ends the
 * environment; every later token is an argument. Keys match
 * [A-Za-z_][A-Za-z0-9_.]*; keys starting with "shoal." go to the kernel.
 *
 * The parser is pure: it touches only the buffers given to it, so it can be
 * unit-tested on the host.
 */
#ifndef SHOAL_KERNEL_CMDLINE_H
#define SHOAL_KERNEL_CMDLINE_H

#include <stddef.h>

#define CMDLINE_MAX         8192 /* longest accepted line, bytes, without NUL */
#define CMDLINE_KPARAMS_MAX 16   /* shoal.* keys kept; more is an error */

struct cmdline {
    int argc;                           /* number of argv entries, argv[0] included */
    char **argv;                        /* argc entries + NULL; argv[0] set by the caller */
    int envc;                           /* app environment entries */
    char **envp;                        /* envc "KEY=VALUE" strings + NULL */
    int kparamc;                        /* kernel (shoal.*) entries */
    char *kparams[CMDLINE_KPARAMS_MAX]; /* "shoal.key=value" strings */
};

/*
 * Parse line (NUL-terminated, at most CMDLINE_MAX bytes) into out.
 * Token text is written into strbuf (strbuf_len >= strlen(line) + 1 bytes
 * of which every token takes its length + 1). ptrs holds argv and envp:
 * at least strlen(line) + 8 entries. All strings and pointers in out
 * point into strbuf/ptrs, which the caller owns and keeps alive.
 * argv[0] is left NULL for the caller to fill in.
 * Returns 0, or -1 with a NUL-terminated reason in err (errlen bytes) that
 * quotes the bad token.
 */
int cmdline_parse(const char *line, char *strbuf, size_t strbuf_len, char **ptrs, size_t nptrs,
                  struct cmdline *out, char *err, size_t errlen);

/*
 * A Unikraft-style line (the "unikraft" preset of docs/node.md, "Boot
 * profiles") rewritten into the form above, for images that read their
 * command line the way Unikraft does (kern.h, shoal_cmdline_dialect):
 *
 *   NAME [netdev.ip=A.B.C.D/N:GW[:...]] [env.vars=[ K=V ... ]] [LIB.PARAM=V ...] -- ARG ...
 *   NAME ARG ...                                   (no "--": all arguments)
 *
 * becomes "shoal.ip=A.B.C.D/N shoal.gw=GW K=V ... -- ARG ...". The first word
 * is argv[0] and is dropped (the image names itself); other library
 * parameters are ignored, as Unikraft ignores those of libraries it was not
 * built with. Quoted tokens are copied as they are (both grammars quote
 * alike). Pure. Returns 0, or -1 with a reason in err (an unterminated
 * env.vars list, a netdev.ip without its gateway, a result over outlen - 1).
 */
int cmdline_from_unikraft(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Value of kernel key "shoal.<name>" from a parsed line, or NULL. */
const char *cmdline_kparam(const struct cmdline *c, const char *name);

#endif
