/* metrics.c - HTTP counters and latency histogram (see metrics.h). */
#include <inttypes.h>

#include "metrics.h"

static const int codes[API_METRICS_CODES - 1] = {
    200, 201, 204, 400, 401, 404, 405, 409, 413, 415, 422, 431, 500, 503, 507,
};

/* upper bounds in microseconds; the last bucket is +Inf */
static const uint64_t bounds_us[API_METRICS_BUCKETS - 1] = {
    500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 10000000,
};
static const char *const bounds_str[API_METRICS_BUCKETS] = {
    "0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "+Inf",
};

void api_metrics_observe(api_metrics *m, int http_status, uint64_t usec)
{
    size_t i;

    for (i = 0; i < API_METRICS_CODES - 1; i++) {
        if (codes[i] == http_status)
            break;
    }
    atomic_fetch_add_explicit(&m->by_code[i], 1, memory_order_relaxed);
    for (i = 0; i < API_METRICS_BUCKETS - 1; i++) {
        if (usec <= bounds_us[i])
            break;
    }
    atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, usec, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

int api_metrics_write(const api_metrics *m, api_sink *out)
{
    uint64_t cum = 0, v;
    size_t i;
    int rc = 0;

    rc |= api_sink_printf(out, "# HELP shoal_http_requests_total HTTP requests by status code.\n"
                               "# TYPE shoal_http_requests_total counter\n");
    for (i = 0; i < API_METRICS_CODES; i++) {
        v = atomic_load_explicit(&m->by_code[i], memory_order_relaxed);
        if (i < API_METRICS_CODES - 1)
            rc |= api_sink_printf(out, "shoal_http_requests_total{code=\"%d\"} %" PRIu64 "\n",
                                  codes[i], v);
        else
            rc |=
                api_sink_printf(out, "shoal_http_requests_total{code=\"other\"} %" PRIu64 "\n", v);
    }
    rc |= api_sink_printf(out, "# HELP shoal_http_request_duration_seconds HTTP request latency.\n"
                               "# TYPE shoal_http_request_duration_seconds histogram\n");
    for (i = 0; i < API_METRICS_BUCKETS; i++) {
        cum += atomic_load_explicit(&m->bucket[i], memory_order_relaxed);
        rc |= api_sink_printf(out,
                              "shoal_http_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                              bounds_str[i], cum);
    }
    v = atomic_load_explicit(&m->sum_us, memory_order_relaxed);
    rc |= api_sink_printf(out,
                          "shoal_http_request_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n"
                          "shoal_http_request_duration_seconds_count %" PRIu64 "\n",
                          v / 1000000, v % 1000000,
                          (uint64_t)atomic_load_explicit(&m->count, memory_order_relaxed));
    return rc ? -1 : 0;
}
