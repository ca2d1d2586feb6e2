/* Unit tests for hooks.c: placeholder expansion and running real shell hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "hooks.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const hook_vars vars = {
    .failure_type = "DeadMaster",
    .failed_host = "db1.example.com",
    .failed_port = 3306,
    .cluster = "db1.example.com:3306",
    .successor_host = "db2.example.com",
    .successor_port = 3307,
    .lost_replicas = "db9:3306",
    .count_replicas = 3,
    .recovery_uid = "r-1",
    .is_successful = true,
};

static void test_expand(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"echo {failureType} {failedHost}:{failedPort}",
         "echo 'DeadMaster' 'db1.example.com':'3306'"},
        {"x {successorHost} {successorPort} {isSuccessful} {countReplicas}",
         "x 'db2.example.com' '3307' 'true' '3'"},
        {"{unknown} {failedHost", "{unknown} {failedHost"},
        {"{recoveryUID}{lostReplicas}", "'r-1''db9:3306'"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = hooks_expand(cases[i].in, &vars);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
    /* a hostile value stays one quoted word */
    hook_vars evil = vars;
    evil.failed_host = "x'; touch /tmp/orch-pwned; echo '";
    char *got = hooks_expand("echo {failedHost}", &evil);
    assert_string_equal(got, "echo 'x'\\''; touch /tmp/orch-pwned; echo '\\'''");
    free(got);
}

typedef struct waiter {
    struct event_base *base;
    bool done;
    hook_result r;
} waiter;

static void on_done(const hook_result *r, void *arg)
{
    waiter *w = arg;
    w->r = *r;
    w->done = true;
    event_base_loopbreak(w->base);
}

static hook_result run(const char *const *cmds, size_t n, int64_t timeout_ms, const hook_vars *v)
{
    struct event_base *base = event_base_new();
    char msg[128];
    hooks *h = hooks_start(base, msg, sizeof(msg));
    assert_non_null(h);
    waiter w = {.base = base};
    assert_int_equal(hooks_run(h, "test", cmds, n, v, timeout_ms, on_done, &w), ORCH_OK);
    assert_false(w.done); /* never completes inside the call */
    while (!w.done)
        event_base_loop(base, EVLOOP_ONCE);
    hooks_stop(h);
    event_base_free(base);
    return w.r;
}

static void test_run_success_env_and_order(void **state)
{
    (void)state;
    char path[] = "/tmp/orch-hooks-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char c1[256], c2[256];
    snprintf(c1, sizeof(c1), "echo one $ORCH_FAILED_HOST $ORCH_FAILED_PORT >> %s", path);
    snprintf(c2, sizeof(c2), "echo two {successorHost} >> %s", path);
    const char *cmds[] = {c1, c2};
    hook_result r = run(cmds, 2, 5000, &vars);
    assert_true(r.ok);
    assert_int_equal(r.ran, 2);
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f) > 0, 1);
    fclose(f);
    unlink(path);
    assert_string_equal(buf, "one db1.example.com 3306\ntwo db2.example.com\n");
}

static void test_run_failure_stops_and_says_why(void **state)
{
    (void)state;
    const char *cmds[] = {"echo about to fail; exit 3", "echo never"};
    hook_result r = run(cmds, 2, 5000, &vars);
    assert_false(r.ok);
    assert_int_equal(r.ran, 1);
    assert_non_null(strstr(r.error, "exit 3"));
    assert_non_null(strstr(r.error, "about to fail"));
}

static void test_run_timeout_kills_the_group(void **state)
{
    (void)state;
    const char *cmds[] = {"sleep 30 & sleep 30"};
    int64_t t0 = orch_mono_ms();
    hook_result r = run(cmds, 1, 300, &vars);
    int64_t took = orch_mono_ms() - t0;
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "timed out"));
    assert_true(took < 3000);
}

static void test_run_nothing_completes_on_the_loop(void **state)
{
    (void)state;
    hook_result r = run(NULL, 0, 1000, &vars);
    assert_true(r.ok);
    assert_int_equal(r.ran, 0);
}

int main(void)
{
    evthread_use_pthreads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_run_success_env_and_order),
        cmocka_unit_test(test_run_failure_stops_and_says_why),
        cmocka_unit_test(test_run_timeout_kills_the_group),
        cmocka_unit_test(test_run_nothing_completes_on_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
