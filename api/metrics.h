/*
 * metrics.h - api-internal: HTTP request counters by status code and a
 * request latency histogram, lock-free (C11 atomics), rendered as
 * Prometheus text after the backend's own lines.
 */
#ifndef SHOAL_API_METRICS_H
#define SHOAL_API_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "api.h"

#define API_METRICS_CODES   16 /* distinct statuses tracked + "other" */
#define API_METRICS_BUCKETS 11 /* latency buckets incl. +Inf */

typedef struct api_metrics {
    atomic_uint_fast64_t by_code[API_METRICS_CODES];  /* see metrics.c codes[] */
    atomic_uint_fast64_t bucket[API_METRICS_BUCKETS]; /* non-cumulative counts */
    atomic_uint_fast64_t sum_us;                      /* total latency, microseconds */
    atomic_uint_fast64_t count;                       /* requests observed */
} api_metrics;

/* Record one finished request. Thread-safe. */
void api_metrics_observe(api_metrics *m, int http_status, uint64_t usec);
/* Append shoal_http_requests_total and shoal_http_request_duration_seconds. */
int api_metrics_write(const api_metrics *m, api_sink *out);

#endif /* SHOAL_API_METRICS_H */
