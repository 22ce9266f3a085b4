/*
 * fake_backend.h - in-memory api_backend for the api tests and the api
 * benchmark. Not shipped. Thread-safe (one mutex). Behaviour:
 *   - images: an upload must start with "\x7fELF" (else 422 invalid_image);
 *     its "digest" is a fake sha256 (FNV-1a based), checked against the
 *     requested digest; bytes are hashed, never stored.
 *   - instances: created "pending"; capacity is FAKE_CAPACITY_MIB in total
 *     (507 beyond); console output is "line N\n" x console_lines, and when
 *     following, one more line every 50 ms until console_follow_lines.
 *   - hosts: "local" exists; others can be added.
 *   - events: fake_emit() appends; subscribers wait on a condition variable.
 */
#ifndef SHOAL_TESTS_API_FAKE_BACKEND_H
#define SHOAL_TESTS_API_FAKE_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>

#include "api.h"

#define FAKE_CAPACITY_MIB  4096
#define FAKE_MAX_IMAGES    64
#define FAKE_MAX_INSTANCES 2048
#define FAKE_MAX_HOSTS     16
#define FAKE_MAX_EVENTS    256
#define FAKE_MAX_REFS      8
#define FAKE_MAX_LABELS    8

typedef struct fake_image {
    char digest[80];
    uint64_t size;
    char refs[FAKE_MAX_REFS][API_REF_MAX + 1];
    size_t n_refs;
    char lkey[FAKE_MAX_LABELS][API_LABEL_KEY_MAX + 1];
    char lval[FAKE_MAX_LABELS][API_LABEL_VALUE_MAX + 1];
    size_t n_labels;
    int64_t created;
    bool used;
} fake_image;

typedef struct fake_instance {
    char id[13];
    char name[API_NAME_MAX + 1];
    char image[API_REF_MAX + 1];
    char digest[80];
    char host[API_NAME_MAX + 1];
    api_instance_state state;
    uint32_t memory_mib, vcpus;
    char lkey[FAKE_MAX_LABELS][API_LABEL_KEY_MAX + 1];
    char lval[FAKE_MAX_LABELS][API_LABEL_VALUE_MAX + 1];
    size_t n_labels;
    api_port ports[API_PORTS_MAX];
    size_t n_ports;
    bool network;
    api_restart restart;
    int last_timeout;
    bool used;
} fake_instance;

typedef struct fake_host {
    char name[API_NAME_MAX + 1];
    char uri[API_URI_MAX + 1];
    bool cordoned;
    bool used;
} fake_host;

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fake_image images[FAKE_MAX_IMAGES];
    fake_instance inst[FAKE_MAX_INSTANCES];
    size_t n_inst;
    uint64_t next_id;
    fake_host hosts[FAKE_MAX_HOSTS];
    api_event events[FAKE_MAX_EVENTS];
    size_t n_events;
    uint64_t next_event;
    bool closing;             /* events_next returns -1 */
    int console_lines;        /* retained output lines (default 3) */
    int console_follow_lines; /* lines produced while following (default 5) */
    /* observation counters for tests */
    atomic_ulong upload_writes;
    atomic_ulong upload_max_chunk;
    atomic_ulong upload_aborts;
    atomic_ulong streams_open; /* console + event streams not yet closed */
    atomic_ulong calls;        /* backend calls (excluding stream pulls) */
} fake;

/* Initialise a zeroed (calloc) fake; it is large, keep it on the heap. */
void fake_init(fake *f);
void fake_destroy(fake *f);
/* The vtable. */
extern const api_backend fake_backend;
/* Append an event of type for instance (may be NULL) and wake subscribers. */
uint64_t fake_emit(fake *f, const char *type, const char *instance, const char *state);
/* Make streams end (events_next returns -1). */
void fake_close_streams(fake *f);

#endif
