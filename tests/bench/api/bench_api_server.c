/* bench_api_server.c - the api server with the in-memory fake backend, for
 * wrk. Prints "port N" and serves until stdin closes (or SIGTERM/SIGINT). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api.h"
#include "fake_backend.h"

int main(int argc, char **argv)
{
    static const char *const tokens[] = { "bench-token" };
    api_config cfg = { 0 };
    api_err err = { { 0 } };
    api_server *srv = NULL;
    fake *f = calloc(1, sizeof *f);
    sigset_t set;
    int sig;

    if (f == NULL)
        return 1;
    fake_init(f);
    cfg.listen_addr = "127.0.0.1";
    cfg.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 0);
    cfg.tokens = tokens;
    cfg.n_tokens = 1;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (api_server_start(&cfg, &fake_backend, f, &srv, &err) != 0) {
        fprintf(stderr, "bench_api_server: %s\n", err.msg);
        return 1;
    }
    printf("port %u\n", api_server_port(srv));
    fflush(stdout);
    sigwait(&set, &sig);
    fake_close_streams(f);
    api_server_stop(srv);
    fake_destroy(f);
    free(f);
    return 0;
}
