/*
 * qemu_exit.c - shoal-qemu-exit, the program libvirt runs as QEMU for an
 * image whose exit is read through isa-debug-exit (docs/node.md, "Exit
 * through isa-debug-exit").
 *
 * QEMU's isa-debug-exit ends QEMU with status (value << 1) | 1 when the
 * guest writes value to port 0x501, and nothing else records it: libvirt
 * does not wait for QEMU (it daemonizes it) and logs only "shutting down,
 * reason=crashed". This wrapper is the process libvirt starts (its pid is
 * the domain's pid): it runs the real QEMU as its child with the same
 * arguments and descriptors, forwards the signals libvirt sends, waits, and
 * writes one line to its standard error - which libvirt points at the
 * domain's log file (stdio_handler "file") -
 *
 *   shoal-qemu-exit: qemu pid 1234 exited with status 15
 *   shoal-qemu-exit: qemu pid 1234 killed by signal 15
 *
 * and ends the same way as QEMU did. shoald reads that line when the run
 * ends (core/debugexit.c). If the wrapper itself is killed (SIGKILL),
 * QEMU gets SIGKILL too (PR_SET_PDEATHSIG), so no QEMU outlives it.
 *
 * Usage: shoal-qemu-exit QEMU-ARGS... (QEMU is SHOAL_QEMU_PATH).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHOAL_QEMU_PATH
#define SHOAL_QEMU_PATH "/usr/bin/qemu-system-x86_64"
#endif

static volatile sig_atomic_t child;

static void forward(int sig)
{
    if (child > 0)
        kill((pid_t)child, sig);
}

int main(int argc, char **argv)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
    struct sigaction sa;
    sigset_t all, old;
    pid_t parent = getpid(), pid;
    int st;

    (void)argc;
    /* Block the signals until the child's pid is known to the handler. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "shoal-qemu-exit: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the wrapper died before the prctl */
            _exit(127);
        sigprocmask(SIG_SETMASK, &old, NULL);
        argv[0] = (char *)SHOAL_QEMU_PATH;
        execv(SHOAL_QEMU_PATH, argv);
        fprintf(stderr, "shoal-qemu-exit: cannot run %s: %s\n", SHOAL_QEMU_PATH, strerror(errno));
        _exit(127);
    }
    child = pid;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* QEMU holds its descriptors (monitor socket, log, console files);
     * the wrapper keeps only stderr, the domain's log. */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "shoal-qemu-exit: waitpid %d: %s\n", (int)pid, strerror(errno));
            return 127;
        }
    }
    if (WIFEXITED(st)) {
        fprintf(stderr, "shoal-qemu-exit: qemu pid %d exited with status %d\n", (int)pid,
                WEXITSTATUS(st));
        return WEXITSTATUS(st);
    }
    fprintf(stderr, "shoal-qemu-exit: qemu pid %d killed by signal %d\n", (int)pid, WTERMSIG(st));
    signal(WTERMSIG(st), SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    raise(WTERMSIG(st));
    return 128 + WTERMSIG(st);
}
