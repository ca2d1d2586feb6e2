/* Unit tests for err.c, log.c and clock.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_strerror_names_every_code(void **state)
{
    (void)state;
    for (int e = 0; e < ORCH_ERR__COUNT; e++) {
        const char *s = orch_strerror((orch_err)e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(orch_strerror((orch_err)9999), "unknown error");
    assert_string_equal(orch_strerror((orch_err)-1), "unknown error");
}

static void test_fail_formats_and_truncates(void **state)
{
    (void)state;
    char msg[8];
    assert_int_equal(orch_fail(msg, sizeof(msg), ORCH_ERR_PARSE, "bad %s", "portnumber"),
                     ORCH_ERR_PARSE);
    assert_string_equal(msg, "bad por");
    assert_int_equal(orch_fail(NULL, 0, ORCH_ERR_IO, "x"), ORCH_ERR_IO);
}

static void test_iso8601(void **state)
{
    (void)state;
    char buf[32];
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1795384080123, "2026-11-22T21:48:00.123Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(orch_time_iso8601(cases[i].ms, buf, sizeof(buf)), cases[i].want);
}

static void test_monotonic_moves_forward(void **state)
{
    (void)state;
    int64_t a = orch_mono_us();
    orch_sleep_ms(2);
    int64_t b = orch_mono_us();
    assert_true(b - a >= 2000);
    assert_true(orch_wall_ms() > 1700000000000);
}

static void test_log_line_shape(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    orch_log_set_fd(fds[1]);
    orch_log_set_program("unit");
    orch_log_set_level(ORCH_LOG_INFO);
    orch_log(ORCH_LOG_DEBUG, NULL, NULL, "hidden");
    orch_log(ORCH_LOG_NOTICE, "ORCH-FENCED", "db3:3306", "read_only set\nnow");
    orch_log_set_fd(2);
    close(fds[1]);
    char buf[512] = {0};
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, " unit["));
    assert_non_null(strstr(buf, "] NOTICE ORCH-FENCED db3:3306: read_only set now\n"));
    /* exactly one line */
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

static void test_log_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        orch_err err;
        orch_log_level level;
    } cases[] = {
        {"debug", ORCH_OK, ORCH_LOG_DEBUG},  {"INFO", ORCH_OK, ORCH_LOG_INFO},
        {"Warning", ORCH_OK, ORCH_LOG_WARN}, {"error", ORCH_OK, ORCH_LOG_ERROR},
        {"loud", ORCH_ERR_PARSE, 0},         {"", ORCH_ERR_PARSE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        orch_log_level got = ORCH_LOG_NOTICE;
        assert_int_equal(orch_log_level_parse(cases[i].in, &got), cases[i].err);
        if (cases[i].err == ORCH_OK)
            assert_int_equal(got, cases[i].level);
        else
            assert_int_equal(got, ORCH_LOG_NOTICE); /* untouched on failure */
    }
}

static void test_ratelimit(void **state)
{
    (void)state;
    orch_ratelimit rl = {0};
    uint64_t dropped = 99;
    assert_true(orch_ratelimit_allow(&rl, 1000, 60000, &dropped));
    assert_int_equal(dropped, 0);
    assert_false(orch_ratelimit_allow(&rl, 2000, 60000, &dropped));
    assert_false(orch_ratelimit_allow(&rl, 60999, 60000, &dropped));
    assert_true(orch_ratelimit_allow(&rl, 61000, 60000, &dropped));
    assert_int_equal(dropped, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_fail_formats_and_truncates),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_monotonic_moves_forward),
        cmocka_unit_test(test_log_line_shape),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
