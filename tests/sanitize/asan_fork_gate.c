/* asan_fork_gate.c - makes fork() safe in GCC 12 AddressSanitizer builds.
 *
 * Linked into every host executable of a SHOAL_SANITIZE build made with gcc
 * (top-level CMakeLists.txt); never into a normal build.
 *
 * Why: GCC 12's libasan (LLVM 14-era) has no fork handler. When one thread
 * forks while another is inside the sanitizer allocator holding one of its
 * locks, the child inherits that lock held by a thread that does not exist
 * there; if the child then allocates before exec it waits forever. libvirt's
 * embedded QEMU driver forks from shoald's many threads and its child
 * allocates (virCommandRunAsync -> opendir -> malloc): seen as hung tests in
 * the ASan phase of scripts/test.sh. Newer sanitizer runtimes lock the
 * allocator around fork themselves; this does the same from outside.
 *
 * How: the executable's own malloc family and fork take precedence over
 * libasan's (an executable is first in the dynamic linker's lookup order),
 * so every allocation anyone makes passes through the gate below on its way
 * to libasan's real implementation (__interceptor_*), and fork() closes the
 * gate and waits until no allocation is in flight before it forks. A thread
 * that tries to allocate while the gate is closed waits until the fork is
 * done. The forking thread itself passes (fork handlers may allocate).
 *
 * What it does not cover: allocator locks taken outside an allocation call
 * (a thread exiting while another forks drains its allocator cache): rare,
 * and no symbol reaches it.
 *
 * Also the sanitizer runtime's default options (below).
 *
 * Locks: gate_fork_mu serialises forks; gate_inflight/gate_closed are the
 * gate (atomics, no lock). Nothing here allocates.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>
#include <wchar.h>

/* libasan's implementations (GCC 12 exports them under these names). */
void *__interceptor_malloc(size_t n);
void *__interceptor_calloc(size_t n, size_t m);
void *__interceptor_realloc(void *p, size_t n);
void *__interceptor_reallocarray(void *p, size_t n, size_t m);
void __interceptor_free(void *p);
void __interceptor_cfree(void *p);
int __interceptor_posix_memalign(void **p, size_t a, size_t n);
void *__interceptor_aligned_alloc(size_t a, size_t n);
void *__interceptor_memalign(size_t a, size_t n);
void *__interceptor_valloc(size_t n);
void *__interceptor_pvalloc(size_t n);
char *__interceptor_strdup(const char *s);
char *__interceptor_strndup(const char *s, size_t n);
char *__interceptor___strdup(const char *s);
char *__interceptor___strndup(const char *s, size_t n);
wchar_t *__interceptor_wcsdup(const wchar_t *s);
char *__interceptor_realpath(const char *path, char *resolved);

/* Not instrumented: the dynamic linker allocates while libasan starts up,
 * before its shadow memory exists, and that comes through here. */
#define GATE_FN __attribute__((no_sanitize_address, no_sanitize_undefined))

static atomic_long gate_inflight;
static atomic_int gate_closed;
static _Thread_local int gate_forking; /* this thread holds the gate closed */
static pthread_mutex_t gate_fork_mu = PTHREAD_MUTEX_INITIALIZER;

GATE_FN static inline void gate_enter(void)
{
    if (gate_forking)
        return;
    for (;;) {
        atomic_fetch_add(&gate_inflight, 1);
        if (!atomic_load(&gate_closed))
            return;
        atomic_fetch_sub(&gate_inflight, 1);
        while (atomic_load(&gate_closed))
            sched_yield();
    }
}

GATE_FN static inline void gate_leave(void)
{
    if (!gate_forking)
        atomic_fetch_sub(&gate_inflight, 1);
}

/* The body of every wrapper: enter, call libasan, leave. */
#define GATED(type, call)                                                                          \
    do {                                                                                           \
        gate_enter();                                                                              \
        type r_ = call;                                                                            \
        gate_leave();                                                                              \
        return r_;                                                                                 \
    } while (0)

GATE_FN void *malloc(size_t n)
{
    GATED(void *, __interceptor_malloc(n));
}
GATE_FN void *calloc(size_t n, size_t m)
{
    GATED(void *, __interceptor_calloc(n, m));
}
GATE_FN void *realloc(void *p, size_t n)
{
    GATED(void *, __interceptor_realloc(p, n));
}
GATE_FN void *reallocarray(void *p, size_t n, size_t m)
{
    GATED(void *, __interceptor_reallocarray(p, n, m));
}
GATE_FN int posix_memalign(void **p, size_t a, size_t n)
{
    GATED(int, __interceptor_posix_memalign(p, a, n));
}
GATE_FN void *aligned_alloc(size_t a, size_t n)
{
    GATED(void *, __interceptor_aligned_alloc(a, n));
}
GATE_FN void *memalign(size_t a, size_t n)
{
    GATED(void *, __interceptor_memalign(a, n));
}
GATE_FN void *valloc(size_t n)
{
    GATED(void *, __interceptor_valloc(n));
}
GATE_FN void *pvalloc(size_t n)
{
    GATED(void *, __interceptor_pvalloc(n));
}
GATE_FN char *strdup(const char *s)
{
    GATED(char *, __interceptor_strdup(s));
}
GATE_FN char *strndup(const char *s, size_t n)
{
    GATED(char *, __interceptor_strndup(s, n));
}
GATE_FN char *__strdup(const char *s)
{
    GATED(char *, __interceptor___strdup(s));
}
GATE_FN char *__strndup(const char *s, size_t n)
{
    GATED(char *, __interceptor___strndup(s, n));
}
GATE_FN wchar_t *wcsdup(const wchar_t *s)
{
    GATED(wchar_t *, __interceptor_wcsdup(s));
}
GATE_FN char *realpath(const char *path, char *resolved)
{
    GATED(char *, __interceptor_realpath(path, resolved));
}

GATE_FN void free(void *p)
{
    gate_enter();
    __interceptor_free(p);
    gate_leave();
}

GATE_FN void cfree(void *p)
{
    gate_enter();
    __interceptor_cfree(p);
    gate_leave();
}

GATE_FN pid_t fork(void)
{
    /* The next definition after this executable's: libc's (GCC 12's libasan
     * has none). Looked up before the gate closes: dlsym may allocate. */
    static pid_t (*real_fork)(void);
    if (!real_fork)
        *(void **)&real_fork = dlsym(RTLD_NEXT, "fork");

    pthread_mutex_lock(&gate_fork_mu);
    atomic_store(&gate_closed, 1);
    while (atomic_load(&gate_inflight) != 0)
        sched_yield();
    gate_forking = 1;
    pid_t pid = real_fork();
    gate_forking = 0;
    if (pid == 0) {
        /* Only this thread exists here; whoever was waiting at the gate in
         * the parent is not here to leave it. */
        atomic_store(&gate_inflight, 0);
        pthread_mutex_init(&gate_fork_mu, NULL);
    } else {
        pthread_mutex_unlock(&gate_fork_mu);
    }
    atomic_store(&gate_closed, 0);
    return pid;
}

/* Dynamic TLS is not tracked (intercept_tls_get_addr=0). GCC 12's
 * LeakSanitizer records each dynamic TLS block it sees returned by
 * __tls_get_addr and scans it at exit; with glibc 2.36 it recorded a
 * block of the main thread at a garbage address (`DTLS 16 at 0x144`, the
 * tracer then died with SIGSEGV: "LeakSanitizer has encountered a fatal
 * error") in every e2e test of the ASan phase once shoald's instance
 * pages came from memory (2900944), though nothing in shoald touches
 * dynamic TLS. Without the tracking, static TLS and every thread's stack
 * are still scanned; a pointer kept only in a library's dynamic TLS block
 * would show as a leak (a false report, never a missed one), and none
 * does. ASAN_OPTIONS given in the environment still override this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "intercept_tls_get_addr=0";
}

/* LeakSanitizer treats a block as the dynamic linker's own (never a leak)
 * when malloc's caller is in ld.so; with the gate in between, that caller
 * is the gate, so say it here instead: blocks ld.so allocates (dlopen's
 * link maps, which stay reachable only from its own data) are not leaks. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:ld-linux-x86-64.so.2\n";
}
