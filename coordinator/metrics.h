/*
 * metrics.h: the coordinator's counters, gauges and histograms, and their
 * Prometheus text exposition (format 0.0.4) for GET /metrics.
 *
 * A metric family is a name, a help text, a type and a fixed list of label
 * names; a series is one family with one set of label values. Callers ask
 * for a series by name and label pairs and get a handle that stays valid
 * until metrics_free(); asking again with the same name and values returns
 * the same handle, so hot paths keep handles and cold paths may look them up
 * each time.
 *
 *   metric *rej = metrics_counter(m, "orch_reports_rejected_total",
 *                                 "Reports dropped, by reason.", "reason", "auth", NULL);
 *   metric_inc(rej);
 *
 * Threads: registration (metrics_counter/gauge/histogram/get), collectors and
 * rendering take an internal mutex and may be called from any thread. Updates
 * (metric_inc/add/set/observe) are lock-free atomics, so worker threads (the
 * store, recoveries) may record directly on handles they obtained earlier.
 * Every update function is a no-op on a NULL handle, so a failed registration
 * (bad name, out of memory) never crashes a caller.
 */
#ifndef ORCH_METRICS_H
#define ORCH_METRICS_H

#include <stddef.h>

typedef struct metrics metrics;
typedef struct metric metric;

typedef enum metric_type {
    METRIC_COUNTER = 0,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
} metric_type;

/* Most label names a family may have. */
#define METRICS_MAX_LABELS 8
/* Most bucket bounds a histogram may have (+Inf is implicit). */
#define METRICS_MAX_BUCKETS 32

/* Latency buckets in seconds, 0.5 ms .. 60 s, for request and backend timings. */
extern const double metrics_buckets_latency_s[];
extern const size_t metrics_buckets_latency_s_n;
/* Buckets in seconds, 0.1 s .. 600 s, for failure detection and recovery durations. */
extern const double metrics_buckets_recovery_s[];
extern const size_t metrics_buckets_recovery_s_n;

/* An empty registry; NULL when out of memory. */
metrics *metrics_new(void);

/* Frees the registry and every handle it gave out. Safe on NULL. */
void metrics_free(metrics *m);

/*
 * The general lookup-or-create. labels holds nlabels (name, value) pairs as
 * 2*nlabels strings (copied). The first call for a name fixes the family's
 * type, help, label names and (for histograms) bucket bounds (strictly
 * increasing, finite, at most METRICS_MAX_BUCKETS); later calls must use
 * the same type and label names in the same order, and their help and bounds
 * are ignored. Returns NULL for an invalid metric or label name (Prometheus
 * rules; "le" is reserved for histograms), a mismatch with the existing
 * family, or out of memory.
 */
metric *metrics_get(metrics *m, metric_type type, const char *name, const char *help,
                    const double *bounds, size_t nbounds, const char *const *labels,
                    size_t nlabels);

/*
 * Conveniences over metrics_get(): the variadic arguments are label
 * (name, value) string pairs terminated by a single NULL.
 */
metric *metrics_counter(metrics *m, const char *name, const char *help, ...);
metric *metrics_gauge(metrics *m, const char *name, const char *help, ...);
metric *metrics_histogram(metrics *m, const char *name, const char *help, const double *bounds,
                          size_t nbounds, ...);

/* Counter or gauge += 1. */
void metric_inc(metric *s);
/* Counter or gauge += v (a counter ignores negative v). */
void metric_add(metric *s, double v);
/* Gauge = v (ignored on counters and histograms). */
void metric_set(metric *s, double v);
/* Histogram: counts v in the first bucket whose bound is >= v; adds it to the sum. */
void metric_observe(metric *s, double v);

/* Current value of a counter or gauge (0 for NULL or a histogram). For tests. */
double metric_value(const metric *s);

/*
 * A collector runs at the start of every metrics_render(), on the rendering
 * thread, before anything is read: the place to copy gauges from snapshots
 * (instances by state, intake counters, queue depths). It may register and
 * update metrics. At most 16 collectors; returns 0 on success, -1 when full.
 */
typedef void (*metrics_collect_fn)(void *arg, metrics *m);
int metrics_add_collector(metrics *m, metrics_collect_fn fn, void *arg);

/*
 * Renders every family in the Prometheus text format 0.0.4: families sorted
 * by name, each with # HELP and # TYPE lines, series sorted by their label
 * values, histograms as cumulative _bucket{le=...} lines, then _sum and
 * _count. Returns a malloc'd NUL-terminated string (caller frees), its
 * length in *len (may be NULL); NULL when out of memory.
 */
char *metrics_render(metrics *m, size_t *len);

#endif
