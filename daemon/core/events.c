/* events.c - the event log: appended to SQLite (kept for Last-Event-ID),
 * subscribers woken through event_cv. */
#include "fleet_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

void fleet_emit_object(fleet *f, json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    int64_t id = 0;

    json_decref(o);
    if (txt && state_event_append(f->db, txt, &id) == 0) {
        pthread_mutex_lock(&f->mu);
        if (id > f->last_event_id)
            f->last_event_id = id;
        pthread_cond_broadcast(&f->event_cv);
        pthread_mutex_unlock(&f->mu);
    }
    free(txt);
}

void fleet_emit(fleet *f, const char *type, const char *instance, const char *name,
                const char *state, const char *host, const char *image, const char *digest,
                const char *message)
{
    json_t *o = json_object();

    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string(type));
#define PUT(k, v)                                                                                  \
    do {                                                                                           \
        if ((v) && (v)[0])                                                                         \
            json_object_set_new(o, k, json_string(v));                                             \
    } while (0)
    PUT("instance", instance);
    PUT("name", name);
    PUT("state", state);
    PUT("host", host);
    PUT("image", image);
    PUT("digest", digest);
    PUT("message", message);
#undef PUT
    fleet_emit_object(f, o);
}

void fleet_event_audit(fleet *f, const char *by, const char *method, const char *path,
                       int http_status)
{
    json_t *o = json_object();

    json_object_set_new(o, "time", json_integer(fleet_wall_ms() / 1000));
    json_object_set_new(o, "type", json_string("audit"));
    json_object_set_new(o, "by", json_string(by ? by : ""));
    json_object_set_new(o, "action", json_string(method ? method : ""));
    json_object_set_new(o, "path", json_string(path ? path : ""));
    json_object_set_new(o, "status", json_integer(http_status));
    fleet_emit_object(f, o);
}

int64_t fleet_event_last_id(fleet *f)
{
    int64_t id;
    pthread_mutex_lock(&f->mu);
    id = f->last_event_id;
    pthread_mutex_unlock(&f->mu);
    return id;
}

int fleet_event_next(fleet *f, int64_t *last, char **json, int timeout_ms)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        state_event *evs = NULL;
        size_t n = 0;
        if (state_event_after(f->db, *last, 1, &evs, &n) == 0 && n == 1) {
            *json = evs[0].data_json;
            evs[0].data_json = NULL;
            *last = evs[0].id;
            state_event_array_free(evs, n);
            return *json ? 1 : 0;
        }
        state_event_array_free(evs, n);
        if (attempt == 1)
            break;
        pthread_mutex_lock(&f->mu);
        if (f->stopping) {
            pthread_mutex_unlock(&f->mu);
            return -1;
        }
        if (f->last_event_id <= *last) {
            struct timespec ts;
            fleet_deadline(&ts, CLOCK_REALTIME, timeout_ms);
            pthread_cond_timedwait(&f->event_cv, &f->mu, &ts);
        }
        pthread_mutex_unlock(&f->mu);
    }
    return 0;
}
