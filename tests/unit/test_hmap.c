/* Unit tests for hmap.c: insert, replace, lookup, delete, tombstones, growth, iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vals[64];

static void test_basic(void **state)
{
    (void)state;
    orch_hmap m;
    orch_hmap_init(&m);
    assert_null(orch_hmap_get(&m, "a"));
    assert_null(orch_hmap_del(&m, "a"));
    assert_int_equal(orch_hmap_count(&m), 0);

    void *old = &vals[9];
    assert_int_equal(orch_hmap_put(&m, "a", &vals[0], &old), ORCH_OK);
    assert_null(old);
    assert_int_equal(orch_hmap_put(&m, "b", &vals[1], NULL), ORCH_OK);
    assert_int_equal(orch_hmap_put(&m, "", &vals[2], NULL), ORCH_OK);
    assert_int_equal(orch_hmap_count(&m), 3);
    assert_ptr_equal(orch_hmap_get(&m, "a"), &vals[0]);
    assert_ptr_equal(orch_hmap_get(&m, "b"), &vals[1]);
    assert_ptr_equal(orch_hmap_get(&m, ""), &vals[2]);
    assert_null(orch_hmap_get(&m, "A")); /* case-sensitive */

    /* Replace keeps the count and hands back the old value. */
    assert_int_equal(orch_hmap_put(&m, "a", &vals[3], &old), ORCH_OK);
    assert_ptr_equal(old, &vals[0]);
    assert_ptr_equal(orch_hmap_get(&m, "a"), &vals[3]);
    assert_int_equal(orch_hmap_count(&m), 3);

    /* The map owns its key copies. */
    char buf[8];
    snprintf(buf, sizeof(buf), "%s", "tmp");
    assert_int_equal(orch_hmap_put(&m, buf, &vals[4], NULL), ORCH_OK);
    snprintf(buf, sizeof(buf), "%s", "xxx");
    assert_ptr_equal(orch_hmap_get(&m, "tmp"), &vals[4]);
    assert_null(orch_hmap_get(&m, "xxx"));

    assert_ptr_equal(orch_hmap_del(&m, "a"), &vals[3]);
    assert_null(orch_hmap_get(&m, "a"));
    assert_null(orch_hmap_del(&m, "a"));
    assert_int_equal(orch_hmap_count(&m), 3);
    orch_hmap_fini(&m);
    orch_hmap_fini(&m); /* idempotent */
    orch_hmap_fini(NULL);
}

/* Many keys, deletions interleaved, checked against a plain array. */
static void test_many(void **state)
{
    (void)state;
    enum { N = 20000 };
    orch_hmap m;
    orch_hmap_init(&m);
    char key[64];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "db%d.example.com:%d", i, 3306 + round);
            assert_int_equal(orch_hmap_put(&m, key, &vals[i % 64], NULL), ORCH_OK);
        }
        /* Delete two keys in three: leaves tombstones in every probe run. */
        for (int i = 0; i < N; i++) {
            if (i % 3 == 0)
                continue;
            snprintf(key, sizeof(key), "db%d.example.com:%d", i, 3306 + round);
            assert_ptr_equal(orch_hmap_del(&m, key), &vals[i % 64]);
        }
    }
    assert_int_equal(orch_hmap_count(&m), 3 * ((N + 2) / 3));
    assert_true(m.cap < 4 * 3 * N); /* tombstones swept, not grown over */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "db%d.example.com:%d", i, 3306 + round);
            void *v = orch_hmap_get(&m, key);
            if (i % 3 == 0)
                assert_ptr_equal(v, &vals[i % 64]);
            else
                assert_null(v);
        }
    }

    /* Iteration sees every live entry once; deleting the current one is allowed. */
    size_t iter = 0, seen = 0;
    const char *k;
    void *v;
    while (orch_hmap_next(&m, &iter, &k, &v)) {
        assert_non_null(strstr(k, ".example.com:"));
        assert_non_null(v);
        seen++;
        if (seen % 2 == 0) {
            snprintf(key, sizeof(key), "%s", k);
            assert_ptr_equal(orch_hmap_del(&m, key), v);
        }
    }
    assert_int_equal(seen, 3 * ((N + 2) / 3));
    assert_int_equal(orch_hmap_count(&m), seen - seen / 2);
    iter = 0;
    seen = 0;
    while (orch_hmap_next(&m, &iter, NULL, NULL))
        seen++;
    assert_int_equal(seen, orch_hmap_count(&m));
    orch_hmap_fini(&m);
}

/* Insert-delete churn on a small key set must not grow the table without bound. */
static void test_churn(void **state)
{
    (void)state;
    orch_hmap m;
    orch_hmap_init(&m);
    char key[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(orch_hmap_put(&m, key, &vals[0], NULL), ORCH_OK);
        if (i >= 5) {
            snprintf(key, sizeof(key), "k%d", i - 5);
            assert_non_null(orch_hmap_del(&m, key));
        }
    }
    assert_int_equal(orch_hmap_count(&m), 5);
    assert_true(m.cap <= 64);
    for (int i = 100000 - 5; i < 100000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_non_null(orch_hmap_get(&m, key));
    }
    assert_true(orch_hmap_hash("a") != orch_hmap_hash("b"));
    orch_hmap_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
