/*
 * child.h - run a program without a shell: to completion with its output
 * collected (ip, nft, qemu-img, virsh), or started with its output on a
 * pipe the caller reads (dnsmasq).
 *
 * (Not spawn.h: daemon/ is on the include path, and that name would hide
 * the system's <spawn.h>.)
 *
 * What the child gets, in every case:
 *   - argv as given, through posix_spawnp: argv[0] with a '/' is run as
 *     is, a bare name is looked up in PATH (CHILD_NOSEARCH: never);
 *   - stdin: the bytes the caller gives (child_run), else /dev/null;
 *   - stdout and stderr: one pipe (interleaved as written), else
 *     /dev/null;
 *   - an empty signal mask and default handling of the signals shoald
 *     blocks or ignores (SIGINT, SIGTERM, SIGPIPE ...): shoald's threads
 *     block them for the main thread's sigwait, and both are inherited;
 *   - no other descriptor of this process: each one made here is
 *     O_CLOEXEC (as every descriptor in shoald must be), and the child's
 *     0, 1 and 2 are set by posix_spawn file actions, never after a fork.
 * Nothing here installs a signal handler or touches SIGCHLD; EINTR is
 * retried. Thread-safe: each call owns its child and reaps it by pid, so
 * nobody else in the process may reap children with waitpid(-1).
 */
#ifndef SHOAL_CHILD_H
#define SHOAL_CHILD_H

#include <stddef.h>
#include <sys/types.h>

typedef enum {
    CHILD_OK = 0,         /* it ran and was reaped: see child_result.status */
    CHILD_E_SYS = -1,     /* pipe, memfd or waitpid failed (err says which: "pipe: ...") */
    CHILD_E_START = -2,   /* posix_spawnp failed: not found, not executable
                           * (child_result.error; err "cannot run 'ARGV0': ...") */
    CHILD_E_TIMEOUT = -3, /* still running at timeout_ms: killed (SIGKILL) and reaped */
} child_status;

/* child_opts.flags */
#define CHILD_PGROUP                                                                               \
    0x1u                    /* the child leads a process group of its own: a ^C
                             * at shoald's terminal does not reach it */
#define CHILD_NOSEARCH 0x2u /* argv[0] is a path even without a '/' (posix_spawn) */

/* What child_run gives the program and keeps of it. Zeroed: no input,
 * output to /dev/null, no time limit. */
struct child_opts {
    const char *in; /* stdin bytes (through a memfd, so any size works
                     * and the child cannot block us); NULL: /dev/null */
    size_t inlen;
    char *out; /* stdout+stderr, always NUL-terminated: the first
                     * outlen-1 bytes are kept, the rest is read and
                     * dropped; NULL (or outlen 0): /dev/null */
    size_t outlen;
    int timeout_ms; /* > 0: SIGKILL past it (CHILD_E_TIMEOUT) */
    unsigned flags; /* CHILD_* */
};

/* What happened. Filled by child_run whatever it returns. */
struct child_result {
    int started;   /* the program was started (and has been reaped) */
    int status;    /* its wait status when started (WIFEXITED ...) */
    int error;     /* the errno of CHILD_E_SYS or CHILD_E_START, else 0 */
    size_t used;   /* bytes kept in out */
    int truncated; /* it wrote more than out kept */
};

/* Run argv[0] with argv (NULL-terminated) and wait for it. o may be NULL
 * (as zeroed). Returns a child_status; on a failure err (may be NULL)
 * says why. A program that runs and fails is CHILD_OK: look at
 * r->status, or child_exit_code. Returns only once the child is reaped. */
int child_run(char *const argv[], const struct child_opts *o, struct child_result *r, char *err,
              size_t errlen);

/* Start argv[0] with stdin /dev/null and stdout+stderr on a pipe, and
 * return at once: *pid is the child, *out_fd the pipe's read end
 * (O_CLOEXEC, blocking). Both are the caller's: it reads out_fd (the
 * child blocks when the pipe is full), closes it, and reaps *pid.
 * flags: CHILD_*. CHILD_E_SYS or CHILD_E_START (err says why; *pid and
 * *out_fd untouched) or CHILD_OK. */
int child_start(char *const argv[], unsigned flags, pid_t *pid, int *out_fd, char *err,
                size_t errlen);

/* The exit code (0-255) of a wait status, -1 when killed by a signal. */
int child_exit_code(int status);

/* Drop trailing '\n' and '\r' from s (for quoting output in a message);
 * returns the new length. */
size_t child_chomp(char *s);

#endif
