/*
 * Unit tests for metrics.c: the exact Prometheus text (a golden string),
 * escaping of help texts and label values, histogram buckets, sum and count,
 * handle identity, name validation, collectors, and updates from threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void test_golden_text(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    assert_non_null(m);
    /* registered out of order: the text is sorted by family, then by label values */
    metric *auth = metrics_counter(m, "orch_reports_rejected_total", "Reports dropped, by reason.",
                                   "reason", "auth", NULL);
    metric *dec =
        metrics_counter(m, "orch_reports_rejected_total", "ignored", "reason", "decode", NULL);
    metric *recv = metrics_counter(m, "orch_reports_received_total", "Reports received.", NULL);
    metric *up =
        metrics_gauge(m, "orch_instances", "Instances by agent state.", "state", "UP", NULL);
    metric *down = metrics_gauge(m, "orch_instances", "", "state", "DOWN", NULL);
    metric *epoch = metrics_gauge(m, "orch_leader_epoch", "Epoch of the leader.", NULL);
    assert_non_null(auth);
    assert_non_null(dec);
    metric_inc(dec);
    metric_add(auth, 2);
    metric_add(auth, -5); /* counters never go down */
    metric_add(recv, 1234567);
    metric_set(up, 3);
    metric_set(down, 0.5);
    metric_set(epoch, 7);

    size_t len = 0;
    char *text = metrics_render(m, &len);
    assert_non_null(text);
    const char *want = "# HELP orch_instances Instances by agent state.\n"
                       "# TYPE orch_instances gauge\n"
                       "orch_instances{state=\"DOWN\"} 0.5\n"
                       "orch_instances{state=\"UP\"} 3\n"
                       "# HELP orch_leader_epoch Epoch of the leader.\n"
                       "# TYPE orch_leader_epoch gauge\n"
                       "orch_leader_epoch 7\n"
                       "# HELP orch_reports_received_total Reports received.\n"
                       "# TYPE orch_reports_received_total counter\n"
                       "orch_reports_received_total 1234567\n"
                       "# HELP orch_reports_rejected_total Reports dropped, by reason.\n"
                       "# TYPE orch_reports_rejected_total counter\n"
                       "orch_reports_rejected_total{reason=\"auth\"} 2\n"
                       "orch_reports_rejected_total{reason=\"decode\"} 1\n";
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
    metrics_free(m);
}

static void test_escaping(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metric *s = metrics_counter(m, "x_total", "Help with \\ and\nnewline and \"quotes\".", "path",
                                "a\\b\"c\nd", "other", "plain", NULL);
    assert_non_null(s);
    metric_inc(s);
    char *text = metrics_render(m, NULL);
    assert_string_equal(text, "# HELP x_total Help with \\\\ and\\nnewline and \"quotes\".\n"
                              "# TYPE x_total counter\n"
                              "x_total{path=\"a\\\\b\\\"c\\nd\",other=\"plain\"} 1\n");
    free(text);
    metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double bounds[] = {0.1, 0.5, 1, 2.5};
    metric *h = metrics_histogram(m, "orch_api_request_duration_seconds", "Latency.", bounds, 4,
                                  "route", "api/clusters", NULL);
    assert_non_null(h);
    metric_observe(h, 0.05); /* le 0.1 */
    metric_observe(h, 0.1);  /* le 0.1 (bounds are inclusive) */
    metric_observe(h, 0.7);  /* le 1 */
    metric_observe(h, 3);    /* +Inf only */
    metric_observe(h, NAN);  /* ignored */
    char *text = metrics_render(m, NULL);
    assert_string_equal(
        text, "# HELP orch_api_request_duration_seconds Latency.\n"
              "# TYPE orch_api_request_duration_seconds histogram\n"
              "orch_api_request_duration_seconds_bucket{route=\"api/clusters\",le=\"0.1\"} 2\n"
              "orch_api_request_duration_seconds_bucket{route=\"api/clusters\",le=\"0.5\"} 2\n"
              "orch_api_request_duration_seconds_bucket{route=\"api/clusters\",le=\"1\"} 3\n"
              "orch_api_request_duration_seconds_bucket{route=\"api/clusters\",le=\"2.5\"} 3\n"
              "orch_api_request_duration_seconds_bucket{route=\"api/clusters\",le=\"+Inf\"} 4\n"
              "orch_api_request_duration_seconds_sum{route=\"api/clusters\"} 3.85\n"
              "orch_api_request_duration_seconds_count{route=\"api/clusters\"} 4\n");
    free(text);

    /* no labels, default buckets */
    metric *d = metrics_histogram(m, "orch_detection_seconds", "Detection.",
                                  metrics_buckets_recovery_s, metrics_buckets_recovery_s_n, NULL);
    metric_observe(d, 1.5);
    text = metrics_render(m, NULL);
    assert_non_null(strstr(text, "orch_detection_seconds_bucket{le=\"1\"} 0\n"
                                 "orch_detection_seconds_bucket{le=\"2\"} 1\n"));
    assert_non_null(
        strstr(text, "orch_detection_seconds_sum 1.5\norch_detection_seconds_count 1\n"));
    free(text);
    metrics_free(m);
}

static void test_identity_and_validation(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metric *a = metrics_counter(m, "c_total", "c", "k", "v", NULL);
    assert_ptr_equal(a, metrics_counter(m, "c_total", "other help", "k", "v", NULL));
    assert_ptr_not_equal(a, metrics_counter(m, "c_total", "c", "k", "w", NULL));
    const char *labels[] = {"k", "v"};
    assert_ptr_equal(a, metrics_get(m, METRIC_COUNTER, "c_total", "c", NULL, 0, labels, 1));

    /* a different type, label set or order for an existing name */
    assert_null(metrics_gauge(m, "c_total", "c", "k", "v", NULL));
    assert_null(metrics_counter(m, "c_total", "c", NULL));
    assert_null(metrics_counter(m, "c_total", "c", "j", "v", NULL));
    /* bad names */
    assert_null(metrics_counter(m, "9lives", "x", NULL));
    assert_null(metrics_counter(m, "has-dash", "x", NULL));
    assert_null(metrics_counter(m, "", "x", NULL));
    assert_null(metrics_counter(m, "ok_total", "x", "bad-label", "v", NULL));
    assert_null(metrics_counter(m, "ok_total", "x", "__reserved", "v", NULL));
    assert_null(metrics_counter(m, "ok_total", "x", "k", "v", "k", "w", NULL));
    static const double b[] = {1, 2};
    static const double unsorted[] = {2, 1};
    assert_null(metrics_histogram(m, "h_seconds", "x", b, 2, "le", "1", NULL));
    assert_null(metrics_histogram(m, "h2_seconds", "x", unsorted, 2, NULL));
    assert_non_null(metrics_gauge(m, "ns:sub_metric", "colons are fine in metric names", NULL));

    /* NULL handles are no-ops */
    metric_inc(NULL);
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    assert_true(metric_value(NULL) == 0.0);
    /* set only applies to gauges; observe only to histograms */
    metric_set(a, 5);
    metric_observe(a, 5);
    assert_true(metric_value(a) == 0.0);
    metrics_free(m);
    metrics_free(NULL);
}

static void fill(void *arg, metrics *m)
{
    int *calls = arg;
    (*calls)++;
    metric_set(metrics_gauge(m, "orch_collected", "Set by a collector.", NULL), *calls);
}

static void test_collectors(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    int calls = 0;
    assert_int_equal(metrics_add_collector(m, fill, &calls), 0);
    char *text = metrics_render(m, NULL);
    assert_string_equal(text, "# HELP orch_collected Set by a collector.\n"
                              "# TYPE orch_collected gauge\n"
                              "orch_collected 1\n");
    free(text);
    text = metrics_render(m, NULL);
    assert_non_null(strstr(text, "orch_collected 2\n"));
    free(text);
    metrics_free(m);

    m = metrics_new();
    text = metrics_render(m, NULL);
    assert_string_equal(text, "");
    free(text);
    metrics_free(m);
}

static void *hammer(void *arg)
{
    metric **h = arg;
    for (int k = 0; k < 10000; k++) {
        metric_inc(h[0]);
        metric_observe(h[1], 0.5);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double b[] = {1};
    metric *h[2] = {metrics_counter(m, "t_total", "t", NULL),
                    metrics_histogram(m, "t_seconds", "t", b, 1, NULL)};
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&t[k], NULL, hammer, h), 0);
    for (int k = 0; k < 4; k++)
        pthread_join(t[k], NULL);
    assert_true(metric_value(h[0]) == 40000.0);
    char *text = metrics_render(m, NULL);
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"1\"} 40000\n"));
    assert_non_null(strstr(text, "t_seconds_sum 20000\n"));
    assert_non_null(strstr(text, "t_seconds_count 40000\n"));
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_text), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_histogram),   cmocka_unit_test(test_identity_and_validation),
        cmocka_unit_test(test_collectors),  cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
