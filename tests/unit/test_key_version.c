/* Unit tests for key.c (instance keys) and version.c (server versions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "key.h"
#include "version.h"

#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_key_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint16_t default_port;
        orch_err err;
        const char *host;
        uint16_t port;
        const char *formatted;
        const char *msg_part; /* for errors */
    } cases[] = {
        {"db1:3306", 3306, ORCH_OK, "db1", 3306, "db1:3306", NULL},
        {"DB1.Example.COM:3307", 3306, ORCH_OK, "db1.example.com", 3307, "db1.example.com:3307",
         NULL},
        {"db1", 3306, ORCH_OK, "db1", 3306, "db1:3306", NULL},
        {"127.0.0.1:23301", 0, ORCH_OK, "127.0.0.1", 23301, "127.0.0.1:23301", NULL},
        {"[::1]:3306", 0, ORCH_OK, "::1", 3306, "[::1]:3306", NULL},
        {"[fe80::1]", 3306, ORCH_OK, "fe80::1", 3306, "[fe80::1]:3306", NULL},
        {"fe80::A:1", 3306, ORCH_OK, "fe80::a:1", 3306, "[fe80::a:1]:3306", NULL},
        {"db_1-a:1", 0, ORCH_OK, "db_1-a", 1, "db_1-a:1", NULL},
        {"db1:65535", 0, ORCH_OK, "db1", 65535, "db1:65535", NULL},
        {"db1", 0, ORCH_ERR_PARSE, NULL, 0, NULL, "missing port"},
        {"", 3306, ORCH_ERR_INVAL, NULL, 0, NULL, "empty"},
        {":3306", 3306, ORCH_ERR_INVAL, NULL, 0, NULL, "empty host"},
        {"db1:", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "empty port"},
        {"db1:0", 3306, ORCH_ERR_RANGE, NULL, 0, NULL, "1..65535"},
        {"db1:65536", 3306, ORCH_ERR_RANGE, NULL, 0, NULL, "1..65535"},
        {"db1:99999999999999999999", 3306, ORCH_ERR_RANGE, NULL, 0, NULL, "1..65535"},
        {"db1:33a", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "not a number"},
        {"db1:-1", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "not a number"},
        {"db 1:3306", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "invalid character"},
        {"db1;drop:3306", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "invalid character"},
        {"[::1:3306", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "missing ']'"},
        {"[::1]x", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "after ']'"},
        {"[zz::1]:1", 3306, ORCH_ERR_PARSE, NULL, 0, NULL, "invalid character"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        orch_key k = {.host = "untouched", .port = 7};
        char msg[128] = "";
        orch_err err = orch_key_parse(cases[i].in, cases[i].default_port, &k, msg, sizeof(msg));
        if (err != cases[i].err)
            fail_msg("case %zu '%s': got %s (%s)", i, cases[i].in, orch_strerror(err), msg);
        if (err == ORCH_OK) {
            char buf[ORCH_KEY_STRLEN];
            assert_string_equal(k.host, cases[i].host);
            assert_int_equal(k.port, cases[i].port);
            assert_string_equal(orch_key_format(&k, buf, sizeof(buf)), cases[i].formatted);
        } else {
            assert_string_equal(k.host, "untouched");
            assert_int_equal(k.port, 7);
            if (strstr(msg, cases[i].msg_part) == NULL)
                fail_msg("case %zu '%s': message '%s' lacks '%s'", i, cases[i].in, msg,
                         cases[i].msg_part);
        }
    }
}

static void test_key_too_long(void **state)
{
    (void)state;
    char host[400];
    memset(host, 'a', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    orch_key k;
    char msg[128];
    assert_int_equal(orch_key_parse(host, 3306, &k, msg, sizeof(msg)), ORCH_ERR_TOOBIG);
    host[ORCH_HOST_MAX] = '\0';
    assert_int_equal(orch_key_parse(host, 3306, &k, msg, sizeof(msg)), ORCH_OK);
    char buf[ORCH_KEY_STRLEN];
    assert_int_equal(strlen(orch_key_format(&k, buf, sizeof(buf))), ORCH_HOST_MAX + 5);
}

static void test_key_compare(void **state)
{
    (void)state;
    orch_key a, b, c;
    assert_int_equal(orch_key_make("db1", 3306, &a, NULL, 0), ORCH_OK);
    assert_int_equal(orch_key_make("DB1", 3306, &b, NULL, 0), ORCH_OK);
    assert_int_equal(orch_key_make("db1", 3307, &c, NULL, 0), ORCH_OK);
    assert_true(orch_key_equal(&a, &b));
    assert_false(orch_key_equal(&a, &c));
    assert_int_equal(orch_key_compare(&a, &b), 0);
    assert_true(orch_key_compare(&a, &c) < 0);
    assert_true(orch_key_compare(&c, &a) > 0);
    assert_int_equal(orch_key_make("db1", 70000, &a, NULL, 0), ORCH_ERR_RANGE);
    assert_int_equal(orch_key_make(NULL, 1, &a, NULL, 0), ORCH_ERR_INVAL);
}

static void test_version_parse(void **state)
{
    (void)state;
    static const struct {
        const char *version, *comment;
        orch_err err;
        int major, minor, patch;
        orch_flavor flavor;
        const char *suffix;
        bool replica_syntax, binlog_status;
    } cases[] = {
        {"10.11.6-MariaDB-0+deb12u1-log", "Debian 12", ORCH_OK, 10, 11, 6, ORCH_FLAVOR_MARIADB,
         "-MariaDB-0+deb12u1-log", false, false},
        {"5.5.5-10.11.19-MariaDB", NULL, ORCH_OK, 10, 11, 19, ORCH_FLAVOR_MARIADB, "-MariaDB",
         false, false},
        {"10.6.12", "mariadb.org binary distribution", ORCH_OK, 10, 6, 12, ORCH_FLAVOR_MARIADB, "",
         false, false},
        {"8.0.36", "MySQL Community Server - GPL", ORCH_OK, 8, 0, 36, ORCH_FLAVOR_MYSQL, "", true,
         false},
        {"8.0.21-log", NULL, ORCH_OK, 8, 0, 21, ORCH_FLAVOR_MYSQL, "-log", false, false},
        {"8.0.22", NULL, ORCH_OK, 8, 0, 22, ORCH_FLAVOR_MYSQL, "", true, false},
        {"8.0.36-28", "Percona Server (GPL), Release 28, Revision 47601f19", ORCH_OK, 8, 0, 36,
         ORCH_FLAVOR_PERCONA, "-28", true, false},
        {"8.4.0-commercial", "MySQL Enterprise Server - Commercial", ORCH_OK, 8, 4, 0,
         ORCH_FLAVOR_MYSQL, "-commercial", true, true},
        {"8.2.0", NULL, ORCH_OK, 8, 2, 0, ORCH_FLAVOR_MYSQL, "", true, true},
        {"5.7.44-log", NULL, ORCH_OK, 5, 7, 44, ORCH_FLAVOR_MYSQL, "-log", false, false},
        {"9.1", NULL, ORCH_OK, 9, 1, 0, ORCH_FLAVOR_MYSQL, "", true, true},
        {"", NULL, ORCH_ERR_INVAL},
        {"abc", NULL, ORCH_ERR_PARSE},
        {"8", NULL, ORCH_ERR_PARSE},
        {"8.", NULL, ORCH_ERR_PARSE},
        {"8.0.", NULL, ORCH_ERR_PARSE},
        {"8.0x", NULL, ORCH_ERR_PARSE},
        {"999999.1", NULL, ORCH_ERR_PARSE},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        orch_version v = {.major = -1};
        char msg[128] = "";
        orch_err err = orch_version_parse(cases[i].version, cases[i].comment, &v, msg, sizeof(msg));
        if (err != cases[i].err)
            fail_msg("case %zu '%s': got %s (%s)", i, cases[i].version, orch_strerror(err), msg);
        if (err != ORCH_OK) {
            assert_int_equal(v.major, -1);
            assert_true(msg[0] != '\0');
            continue;
        }
        assert_int_equal(v.major, cases[i].major);
        assert_int_equal(v.minor, cases[i].minor);
        assert_int_equal(v.patch, cases[i].patch);
        assert_int_equal(v.flavor, cases[i].flavor);
        assert_string_equal(v.suffix, cases[i].suffix);
        assert_int_equal(orch_version_uses_replica_syntax(&v), cases[i].replica_syntax);
        assert_int_equal(orch_version_uses_binary_log_status(&v), cases[i].binlog_status);
    }
}

static void test_version_compare(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int cmp, series;
        bool same_series;
    } cases[] = {
        {"8.0.36", "8.0.36", 0, 0, true},    {"8.0.36", "8.0.40", -1, 0, true},
        {"8.0.40", "8.4.0", -1, -1, false},  {"8.4.1", "8.0.40", 1, 1, false},
        {"10.11.6", "10.6.20", 1, 1, false}, {"10.11.6-MariaDB", "10.11.19-MariaDB", -1, 0, true},
        {"5.7.44", "8.0.1", -1, -1, false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        orch_version a, b;
        assert_int_equal(orch_version_parse(cases[i].a, NULL, &a, NULL, 0), ORCH_OK);
        assert_int_equal(orch_version_parse(cases[i].b, NULL, &b, NULL, 0), ORCH_OK);
        int c = orch_version_compare(&a, &b);
        assert_int_equal((c > 0) - (c < 0), cases[i].cmp);
        c = orch_version_compare_series(&a, &b);
        assert_int_equal((c > 0) - (c < 0), cases[i].series);
        assert_int_equal(orch_version_same_series(&a, &b), cases[i].same_series);
    }
}

static void test_flavor_names(void **state)
{
    (void)state;
    assert_string_equal(orch_flavor_name(ORCH_FLAVOR_MYSQL), "mysql");
    assert_string_equal(orch_flavor_name(ORCH_FLAVOR_MARIADB), "mariadb");
    assert_string_equal(orch_flavor_name(ORCH_FLAVOR_PERCONA), "percona");
    assert_string_equal(orch_flavor_name(ORCH_FLAVOR_UNKNOWN), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parse),       cmocka_unit_test(test_key_too_long),
        cmocka_unit_test(test_key_compare),     cmocka_unit_test(test_version_parse),
        cmocka_unit_test(test_version_compare), cmocka_unit_test(test_flavor_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
