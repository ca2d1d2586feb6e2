/* Unit tests for db.c's failure classification, pbjson.c and report.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db.h"
#include "pbjson.h"
#include "report.h"

#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <stdlib.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        unsigned e;
        int sys;
        orch_db_failure want;
    } cases[] = {
        {0, 0, ORCH_DB_OK},
        {CR_CONNECTION_ERROR, ECONNREFUSED, ORCH_DB_DOWN}, /* socket: nobody listens */
        {CR_CONNECTION_ERROR, ENOENT, ORCH_DB_DOWN},       /* socket file gone */
        {CR_CONN_HOST_ERROR, ECONNREFUSED, ORCH_DB_DOWN},  /* TCP refused */
        {CR_CONN_HOST_ERROR, ETIMEDOUT, ORCH_DB_UNRESPONSIVE},
        {CR_SERVER_LOST, ETIMEDOUT, ORCH_DB_UNRESPONSIVE}, /* read timeout: hung */
        {CR_SERVER_LOST, 0, ORCH_DB_DOWN},                 /* EOF: died */
        {CR_SERVER_GONE_ERROR, ECONNRESET, ORCH_DB_DOWN},
        {ER_ACCESS_DENIED_ERROR, 0, ORCH_DB_AUTH},
        {ER_ACCESS_DENIED_NO_PASSWORD_ERROR, 0, ORCH_DB_AUTH},
        {ER_HOST_IS_BLOCKED, 0, ORCH_DB_AUTH},
        {ER_SERVER_SHUTDOWN, 0, ORCH_DB_DOWN},
        {ER_CON_COUNT_ERROR, 0, ORCH_DB_DOWN},
        {ER_SPECIFIC_ACCESS_DENIED_ERROR, 0, ORCH_DB_QUERY}, /* an SQL error, server fine */
        {ER_PARSE_ERROR, 0, ORCH_DB_QUERY},
        {2099, 0, ORCH_DB_DOWN}, /* any other client-side error */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        orch_db_failure got = orch_db_classify(cases[i].e, cases[i].sys);
        if (got != cases[i].want)
            fail_msg("case %zu (%u/%d): got %s want %s", i, cases[i].e, cases[i].sys,
                     orch_db_failure_name(got), orch_db_failure_name(cases[i].want));
    }
}

static void test_pbjson_presence_and_enums(void **state)
{
    (void)state;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    ch.master_host = (char *)"db1";
    ch.has_master_port = true;
    ch.master_port = 3306;
    ch.has_io_thread = true;
    ch.io_thread = ORCH__THREAD_STATE__THREAD_CONNECTING;
    json_t *j = orch_pb_to_json(&ch.base);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "master_host")), "db1");
    assert_int_equal(json_integer_value(json_object_get(j, "master_port")), 3306);
    assert_string_equal(json_string_value(json_object_get(j, "io_thread")), "THREAD_CONNECTING");
    /* NULL lag stays absent: never 0 */
    assert_null(json_object_get(j, "seconds_behind_master"));
    json_decref(j);
    ch.has_seconds_behind_master = true;
    ch.seconds_behind_master = 0;
    j = orch_pb_to_json(&ch.base);
    assert_non_null(json_object_get(j, "seconds_behind_master"));
    json_decref(j);

    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    uint8_t boot[2] = {0xab, 0x01};
    char *aliases[] = {(char *)"a", (char *)"b"};
    r.boot_id.data = boot;
    r.boot_id.len = 2;
    r.aliases = aliases;
    r.n_aliases = 2;
    j = orch_pb_to_json(&r.base);
    assert_string_equal(json_string_value(json_object_get(j, "boot_id")), "ab01");
    assert_int_equal(json_array_size(json_object_get(j, "aliases")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "channels")), 0);
    json_decref(j);
}

static void test_fingerprint_ignores_counters(void **state)
{
    (void)state;
    Orch__ServerStatus s = ORCH__SERVER_STATUS__INIT;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    Orch__Channel *chans[] = {&ch};
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    r.server = &s;
    r.channels = chans;
    r.n_channels = 1;
    r.state = ORCH__PROBE_STATE__PROBE_UP;
    ch.master_host = (char *)"db1";
    ch.has_seconds_behind_master = true;
    uint64_t base = orch_report_fingerprint(&r);

    /* counters: positions, lag value, sequence, time, GTID text */
    r.seq = 99;
    r.sent_at_ms = 12345;
    s.has_binlog_pos = true;
    s.binlog_pos = 777;
    s.gtid_current_pos = (char *)"0-1-500";
    ch.seconds_behind_master = 42;
    ch.read_master_log_pos = 9;
    assert_true(orch_report_fingerprint(&r) == base);

    /* shape: each of these changes it */
    static const int changes = 6;
    for (int c = 0; c < changes; c++) {
        Orch__InstanceReport r2 = r;
        Orch__ServerStatus s2 = s;
        Orch__Channel ch2 = ch;
        Orch__Channel *chans2[] = {&ch2};
        r2.server = &s2;
        r2.channels = chans2;
        switch (c) {
        case 0:
            s2.read_only = true;
            break;
        case 1:
            ch2.io_thread = ORCH__THREAD_STATE__THREAD_CONNECTING;
            break;
        case 2:
            ch2.has_seconds_behind_master = false;
            break; /* lag turned NULL */
        case 3:
            r2.state = ORCH__PROBE_STATE__PROBE_DOWN;
            break;
        case 4:
            ch2.master_host = (char *)"db2";
            break;
        case 5:
            ch2.witness = ORCH__WITNESS_RESULT__WITNESS_TIMEOUT;
            break;
        }
        if (orch_report_fingerprint(&r2) == base)
            fail_msg("change %d did not change the shape", c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_pbjson_presence_and_enums),
        cmocka_unit_test(test_fingerprint_ignores_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
