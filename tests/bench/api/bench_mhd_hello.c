/* bench_mhd_hello.c - the baseline: bare libmicrohttpd answering every
 * request with {"status":"ok"} from one shared response, in its fastest
 * configuration here (epoll, internal thread pool of one thread per core).
 * Prints "port N"; serves until SIGTERM/SIGINT.
 *
 * bench_mhd_hello [PORT [BYTES]]: BYTES > 15 makes the body a JSON object
 * of that many bytes ({"pad":"aaa..."}), the floor of sending a page of
 * that size (bench_list.sh). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static struct MHD_Response *ok;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    (void)size;
    (void)con_cls;
    return MHD_queue_response(c, MHD_HTTP_OK, ok);
}

int main(int argc, char **argv)
{
    static const char small[] = "{\"status\":\"ok\"}";
    const char *body = small;
    char *big = NULL;
    size_t want = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 0;
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (want > sizeof small && want < (64u << 20) && (big = malloc(want + 1)) != NULL) {
        memset(big, 'a', want);
        memcpy(big, "{\"pad\":\"", 8);
        memcpy(big + want - 2, "\"}", 2);
        big[want] = 0;
        body = big;
    }
    ok = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(ok, "Content-Type", "application/json");
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                         (uint16_t)(argc > 1 ? atoi(argv[1]) : 0), NULL, NULL, handler, NULL,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(ncpu > 0 ? ncpu : 1),
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bench_mhd_hello: cannot start\n");
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info->port);
    fflush(stdout);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(ok);
    free(big);
    return 0;
}
