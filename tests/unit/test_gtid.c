/* Unit tests for gtid.c: parsing, printing, algebra and comparison of GTID sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gtid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MY ORCH_GTID_MYSQL
#define MA ORCH_GTID_MARIADB

#define U1    "3e11fa47-71ca-11e1-9e33-c80aa9429562"
#define U1_UC "3E11FA47-71CA-11E1-9E33-C80AA9429562"
#define U2    "5d9a5b8c-1c2e-11ee-8a4f-0242ac110002"
#define U3    "ffffffff-ffff-ffff-ffff-fffffffffffe"

#define GNO_MAX  "9223372036854775806"
#define ARRAY(a) (sizeof(a) / sizeof((a)[0]))

static size_t n_cases; /* table rows checked, reported at the end */

/* Parses text or fails the test with the parser's message. */
static orch_gtid_set *must_parse(orch_gtid_flavor flavor, const char *text)
{
    orch_gtid_set *set = NULL;
    char msg[256] = "";
    orch_err err = orch_gtid_set_parse(flavor, text, &set, msg, sizeof(msg));
    if (err != ORCH_OK)
        fail_msg("parse(%s, \"%s\"): %s: %s", orch_gtid_flavor_name(flavor), text,
                 orch_strerror(err), msg);
    assert_non_null(set);
    return set;
}

/* Checks that set prints as want, with the buffer and the malloc variants agreeing. */
static void assert_format(const orch_gtid_set *set, const char *want, const char *what)
{
    char *got = orch_gtid_set_format(set);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", what, got, want);
    assert_int_equal(orch_gtid_set_format_to(set, NULL, 0), strlen(want));
    free(got);
}

/* ---- parse ---------------------------------------------------------------- */

static const struct {
    orch_gtid_flavor flavor;
    const char *in;
    const char *want; /* canonical form */
} parse_ok[] = {
    /* MariaDB */
    {MA, "", ""},
    {MA, "   ", ""},
    {MA, "\n", ""},
    {MA, "0-1-100", "0-1-100"},
    {MA, "0-1-100,1-2-5", "0-1-100,1-2-5"},
    {MA, "1-2-5,0-1-100", "0-1-100,1-2-5"},
    {MA, " 0-1-100 ,\n 1-2-5\n", "0-1-100,1-2-5"},
    {MA, "\t0-1-1\r\n", "0-1-1"},
    {MA, "0-1-100,0-2-50,0-3-200", "0-1-100,0-2-50,0-3-200"},
    {MA, "0-3-200,0-2-50,0-1-100", "0-1-100,0-2-50,0-3-200"},
    {MA, "0-1-5,0-1-7", "0-1-7"},
    {MA, "0-1-7,0-1-5", "0-1-7"},
    {MA, "0-1-0", "0-1-0"},
    {MA, "007-01-0010", "7-1-10"},
    {MA, "4294967295-4294967295-18446744073709551615",
     "4294967295-4294967295-18446744073709551615"},
    {MA, "0-1-18446744073709551615", "0-1-18446744073709551615"},
    {MA, "2-1-1,1-1-1,0-1-1,10-1-1", "0-1-1,1-1-1,2-1-1,10-1-1"},
    /* MySQL */
    {MY, "", ""},
    {MY, "  \n ", ""},
    {MY, U1 ":1-5", U1 ":1-5"},
    {MY, U1 ":1", U1 ":1"},
    {MY, U1 ":1-1", U1 ":1"},
    {MY, U1 ":1-3:4-5", U1 ":1-5"},
    {MY, U1 ":1-3:5-7", U1 ":1-3:5-7"},
    {MY, U1 ":5-7:1-3", U1 ":1-3:5-7"},
    {MY, U1 ":1-10:3-4", U1 ":1-10"},
    {MY, U1 ":1-5:3-8", U1 ":1-8"},
    {MY, U1 ":3:2:1", U1 ":1-3"},
    {MY, U1 ":1:1:1", U1 ":1"},
    {MY, U1 ":7," U1 ":1-6", U1 ":1-7"},
    {MY, U2 ":1-3," U1 ":1-5", U1 ":1-5," U2 ":1-3"},
    {MY, U1_UC ":1-5", U1 ":1-5"},
    {MY, U1_UC ":1-5," U1 ":6", U1 ":1-6"},
    {MY, U1 ":1-5,\n" U2 ":1-3", U1 ":1-5," U2 ":1-3"},
    {MY, " " U1 " : 1-5 : 7 ", U1 ":1-5:7"},
    {MY, U1 ":" GNO_MAX, U1 ":" GNO_MAX},
    {MY, U1 ":1-" GNO_MAX, U1 ":1-" GNO_MAX},
    {MY, U1 ":1-" GNO_MAX ":5", U1 ":1-" GNO_MAX},
    {MY, U3 ":1," U1 ":1," U2 ":1", U1 ":1," U2 ":1," U3 ":1"},
    /* MySQL 8.4 tags */
    {MY, U1 ":tag:1-5", U1 ":tag:1-5"},
    {MY, U1 ":1-2:tag:3-4", U1 ":1-2:tag:3-4"},
    {MY, U1 ":TAG:1", U1 ":tag:1"},
    {MY, U1 ":Tag_1:1", U1 ":tag_1:1"},
    {MY, U1 ":b:1:a:2", U1 ":a:2:b:1"},
    {MY, U1 ":a:1," U1 ":2", U1 ":2:a:1"},
    {MY, U1 ":a:1:a:2", U1 ":a:1-2"},
    {MY, U1 ":_x9:1", U1 ":_x9:1"},
    {MY, U1 ":t:1-3," U1 ":t:4", U1 ":t:1-4"},
    {MY, U1 ":1:t:2," U2 ":3", U1 ":1:t:2," U2 ":3"},
    {MY, U1 ":1-5:t:1-5", U1 ":1-5:t:1-5"},
    {MY, U1 ":t:1:2:3", U1 ":t:1-3"},
    {MY, U1 ":abcdefghijklmnopqrstuvwxyz_01234:1", U1 ":abcdefghijklmnopqrstuvwxyz_01234:1"},
    {MY, U2 ":z:1," U1 ":y:1:x:2", U1 ":x:2:y:1," U2 ":z:1"},
};

static void test_parse_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY(parse_ok); i++, n_cases++) {
        orch_gtid_set *set = must_parse(parse_ok[i].flavor, parse_ok[i].in);
        assert_int_equal(orch_gtid_set_flavor(set), parse_ok[i].flavor);
        assert_format(set, parse_ok[i].want, parse_ok[i].in);
        assert_int_equal(orch_gtid_set_is_empty(set), parse_ok[i].want[0] == '\0');

        /* Round trip: the canonical text parses to an equal set that prints the same. */
        orch_gtid_set *again = must_parse(parse_ok[i].flavor, parse_ok[i].want);
        assert_format(again, parse_ok[i].want, parse_ok[i].want);
        assert_true(orch_gtid_set_equal(set, again));
        assert_int_equal(orch_gtid_set_compare(set, again), ORCH_GTID_EQUAL);
        orch_gtid_set_free(again);
        orch_gtid_set_free(set);
    }
}

static const struct {
    orch_gtid_flavor flavor;
    const char *in;
    orch_err err;
    const char *msg; /* must appear in the message */
} parse_bad[] = {
    /* MariaDB */
    {MA, ",", ORCH_ERR_PARSE, "empty entry at offset 0"},
    {MA, "0-1-1,", ORCH_ERR_PARSE, "empty entry at offset 6"},
    {MA, ",0-1-1", ORCH_ERR_PARSE, "empty entry at offset 0"},
    {MA, "0-1-1,,0-2-2", ORCH_ERR_PARSE, "empty entry at offset 6"},
    {MA, "0-1-1, ,0-2-2", ORCH_ERR_PARSE, "empty entry at offset 7"},
    {MA, "0-1-1,\n", ORCH_ERR_PARSE, "empty entry at offset 7"},
    {MA, "0", ORCH_ERR_PARSE, "expected '-' after the domain id at offset 1, found end of text"},
    {MA, "0-1", ORCH_ERR_PARSE, "expected '-' after the server id at offset 3, found end of text"},
    {MA, "0-1-", ORCH_ERR_PARSE, "expected sequence number at offset 4"},
    {MA, "-1-1", ORCH_ERR_PARSE, "expected domain id at offset 0, found '-'"},
    {MA, "0--1", ORCH_ERR_PARSE, "expected server id at offset 2"},
    {MA, "0-1--1", ORCH_ERR_PARSE, "expected sequence number at offset 4"},
    {MA, "+0-1-1", ORCH_ERR_PARSE, "expected domain id at offset 0, found '+'"},
    {MA, "0-1-+1", ORCH_ERR_PARSE, "expected sequence number at offset 4, found '+'"},
    {MA, "0 -1-1", ORCH_ERR_PARSE, "after the domain id at offset 1, found byte 0x20"},
    {MA, "0-1-1x", ORCH_ERR_PARSE, "unexpected 'x' at offset 5 after entry '0-1-1x' (offset 0)"},
    {MA, "0-1-1 0-2-2", ORCH_ERR_PARSE, "unexpected '0' at offset 6"},
    {MA, "0-1-1;0-2-2", ORCH_ERR_PARSE, "unexpected ';' at offset 5"},
    {MA, "0-1-1-1", ORCH_ERR_PARSE, "unexpected '-' at offset 5"},
    {MA, "0-1-1\x01", ORCH_ERR_PARSE, "unexpected byte 0x01 at offset 5"},
    {MA, "0-1-1,0-2-2x", ORCH_ERR_PARSE, "after entry '0-2-2x' (offset 6)"},
    {MA, "4294967296-1-1", ORCH_ERR_RANGE, "domain id '4294967296' out of range (max 4294967295)"},
    {MA, "0-4294967296-1", ORCH_ERR_RANGE, "server id '4294967296' out of range"},
    {MA, "0-1-18446744073709551616", ORCH_ERR_RANGE,
     "sequence number '18446744073709551616' out of range (max 18446744073709551615) at offset 4"},
    {MA, "0-1-99999999999999999999999", ORCH_ERR_RANGE, "sequence number"},
    {MA, "0-1-1,1-1-184467440737095516150", ORCH_ERR_RANGE, "at offset 10"},
    {MA, U1 ":1-5", ORCH_ERR_PARSE, "MySQL-style entry '" U1 ":1-5' in a MariaDB GTID set"},
    {MA, "0-1-1," U1 ":1-5", ORCH_ERR_PARSE, "MySQL-style entry '" U1 ":1-5'"},
    {MA, "abc", ORCH_ERR_PARSE, "expected domain id at offset 0, found 'a'"},
    /* MySQL */
    {MY, ",", ORCH_ERR_PARSE, "empty entry at offset 0"},
    {MY, U1 ":1,", ORCH_ERR_PARSE, "empty entry at offset 39"},
    {MY, U1 ":1,," U2 ":1", ORCH_ERR_PARSE, "empty entry at offset 39"},
    {MY, U1, ORCH_ERR_PARSE,
     "expected ':' and intervals after the uuid at offset 36, found end of text"},
    {MY, U1 ",", ORCH_ERR_PARSE, "expected ':' and intervals after the uuid at offset 36"},
    {MY, U1 ":", ORCH_ERR_PARSE, "expected an interval or a tag at offset 37, found end of text"},
    {MY, U1 ":5-3", ORCH_ERR_PARSE, "bad interval '5-3' at offset 37"},
    {MY, U1 ":1-5:10-9", ORCH_ERR_PARSE, "bad interval '10-9' at offset 41"},
    {MY, U1 ":0", ORCH_ERR_RANGE, "bad interval '0' at offset 37: transaction numbers start at 1"},
    {MY, U1 ":0-5", ORCH_ERR_RANGE, "bad interval '0-5'"},
    {MY, U1 ":1-", ORCH_ERR_PARSE, "expected end of interval at offset 39"},
    {MY, U1 ":1-5x", ORCH_ERR_PARSE, "unexpected 'x' at offset 40"},
    {MY, U1 ":1-5:", ORCH_ERR_PARSE, "expected an interval or a tag at offset 41"},
    {MY, U1 ":1::2", ORCH_ERR_PARSE, "expected an interval or a tag at offset 39, found ':'"},
    {MY, U1 ":1 2", ORCH_ERR_PARSE, "unexpected '2' at offset 39"},
    {MY, U1 ":1-5 " U2 ":1", ORCH_ERR_PARSE, "unexpected '5' at offset 41"},
    {MY, U1 ":-1", ORCH_ERR_PARSE, "expected an interval or a tag at offset 37, found '-'"},
    {MY, U1 ":9223372036854775807", ORCH_ERR_RANGE,
     "transaction number '9223372036854775807' out of range (max 9223372036854775806)"},
    {MY, U1 ":1-9223372036854775807", ORCH_ERR_RANGE, "end of interval '9223372036854775807'"},
    {MY, U1 ":18446744073709551616", ORCH_ERR_RANGE, "out of range"},
    {MY, "3e11fa47-71ca-11e1-9e33-c80aa942956:1", ORCH_ERR_PARSE,
     "bad uuid '3e11fa47-71ca-11e1-9e33-c80aa942956:1' at offset 0"},
    {MY, "3e11fa4771ca11e19e33c80aa9429562:1", ORCH_ERR_PARSE, "bad uuid"},
    {MY, "3e11fa47-71ca-11e1-9e33-c80aa94295zz:1", ORCH_ERR_PARSE, "bad uuid"},
    {MY, "{3e11fa47-71ca-11e1-9e33-c80aa9429562}:1", ORCH_ERR_PARSE, "bad uuid"},
    {MY, U1 ":1," U2 "x:1", ORCH_ERR_PARSE,
     "expected ':' and intervals after the uuid at offset 75"},
    {MY, U1 "0:1", ORCH_ERR_PARSE, "at offset 36, found '0'"},
    {MY, "0-1-100", ORCH_ERR_PARSE,
     "MariaDB-style entry '0-1-100' in a MySQL GTID set at offset 0"},
    {MY, U1 ":1,0-1-100", ORCH_ERR_PARSE,
     "MariaDB-style entry '0-1-100' in a MySQL GTID set at offset 39"},
    {MY, U1 ":tag", ORCH_ERR_PARSE, "tag 'tag' without intervals at offset 37"},
    {MY, U1 ":TAG", ORCH_ERR_PARSE, "tag 'tag' without intervals"},
    {MY, U1 ":tag:1-2:other", ORCH_ERR_PARSE, "tag 'other' without intervals at offset 45"},
    {MY, U1 ":a:b:1", ORCH_ERR_PARSE, "tag 'a' without intervals at offset 37"},
    {MY, U1 ":1:t-1", ORCH_ERR_PARSE, "tag 't' without intervals"},
    {MY, U1 ":t@g:1", ORCH_ERR_PARSE, "tag 't' without intervals"},
    {MY, U1 ":9tag:1", ORCH_ERR_PARSE, "unexpected 't' at offset 38"},
    {MY, U1 ":abcdefghijklmnopqrstuvwxyz_012345:1", ORCH_ERR_PARSE,
     "tag 'abcdefghijklmnopqrstuvwxyz_012345' longer than 32 characters at offset 37"},
    {MY, U1 ":1\x01", ORCH_ERR_PARSE, "unexpected byte 0x01 at offset 38"},
};

static void test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY(parse_bad); i++, n_cases++) {
        orch_gtid_set *sentinel = (orch_gtid_set *)&n_cases, *set = sentinel;
        char msg[256] = "";
        orch_err err =
            orch_gtid_set_parse(parse_bad[i].flavor, parse_bad[i].in, &set, msg, sizeof(msg));
        if (err != parse_bad[i].err || strstr(msg, parse_bad[i].msg) == NULL)
            fail_msg("parse(%s, \"%s\"): got %s \"%s\", want %s \"%s\"",
                     orch_gtid_flavor_name(parse_bad[i].flavor), parse_bad[i].in,
                     orch_strerror(err), msg, orch_strerror(parse_bad[i].err), parse_bad[i].msg);
        assert_ptr_equal(set, sentinel); /* untouched on failure */
    }
}

static void test_parse_args(void **state)
{
    (void)state;
    orch_gtid_set *set = NULL;
    char msg[128];
    assert_int_equal(orch_gtid_set_parse(MY, NULL, &set, msg, sizeof(msg)), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_parse(MY, "", NULL, msg, sizeof(msg)), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_parse((orch_gtid_flavor)0, "", &set, msg, sizeof(msg)),
                     ORCH_ERR_INVAL);
    assert_non_null(strstr(msg, "unknown GTID flavor 0"));
    assert_int_equal(orch_gtid_set_parse((orch_gtid_flavor)7, "", &set, NULL, 0), ORCH_ERR_INVAL);
    assert_null(set);
    /* A message buffer is optional. */
    assert_int_equal(orch_gtid_set_parse(MA, "x", &set, NULL, 0), ORCH_ERR_PARSE);
    assert_null(set);
    n_cases += 5;
}

static void test_parse_size_cap(void **state)
{
    (void)state;
    size_t cap = ORCH_GTID_TEXT_MAX;
    char *text = malloc(cap + 2);
    assert_non_null(text);
    char msg[128] = "";
    orch_gtid_set *set = NULL;

    /* Exactly at the cap: accepted (all whitespace is the empty set). */
    memset(text, ' ', cap);
    text[cap] = '\0';
    assert_int_equal(orch_gtid_set_parse(MA, text, &set, msg, sizeof(msg)), ORCH_OK);
    assert_true(orch_gtid_set_is_empty(set));
    orch_gtid_set_free(set);
    set = NULL;

    /* One byte more: refused, for both flavors. */
    text[cap] = ' ';
    text[cap + 1] = '\0';
    assert_int_equal(orch_gtid_set_parse(MA, text, &set, msg, sizeof(msg)), ORCH_ERR_TOOBIG);
    assert_non_null(strstr(msg, "longer than 1048576 bytes"));
    assert_int_equal(orch_gtid_set_parse(MY, text, &set, msg, sizeof(msg)), ORCH_ERR_TOOBIG);
    assert_null(set);
    free(text);
    n_cases += 3;
}

/* Large inputs in the worst order still parse quickly (sort once, not insert each). */
static void test_parse_large_reversed(void **state)
{
    (void)state;
    size_t cap = ORCH_GTID_TEXT_MAX;
    char *text = malloc(cap + 1);
    assert_non_null(text);

    /* MariaDB: 60000 domains, descending. */
    size_t len = 0;
    for (int d = 59999; d >= 0; d--)
        len += (size_t)snprintf(text + len, cap + 1 - len, "%s%d-1-%d", len ? "," : "", d, d + 1);
    assert_true(len <= cap);
    orch_gtid_set *set = must_parse(MA, text);
    /* sum of 1..60000 */
    assert_int_equal(orch_gtid_set_count(set), (uint64_t)60000 * 60001 / 2);
    orch_gtid_set_free(set);

    /* MySQL: 100000 single odd numbers, descending, then the even ones fill the gaps. */
    len = (size_t)snprintf(text, cap + 1, "%s", U1);
    for (int n = 199999; n >= 1; n -= 2)
        len += (size_t)snprintf(text + len, cap + 1 - len, ":%d", n);
    len += (size_t)snprintf(text + len, cap + 1 - len, ",%s:2-199998", U1);
    assert_true(len <= cap);
    set = must_parse(MY, text);
    assert_format(set, U1 ":1-199999", "large mysql");
    orch_gtid_set_free(set);
    free(text);
    n_cases += 2;
}

/* ---- format --------------------------------------------------------------- */

static void test_format_buffer(void **state)
{
    (void)state;
    orch_gtid_set *set = must_parse(MA, "1-2-5,0-1-100");
    char buf[8];
    assert_int_equal(orch_gtid_set_format_to(set, buf, sizeof(buf)), 13);
    assert_string_equal(buf, "0-1-100"); /* truncated, NUL-terminated */
    char big[32];
    assert_int_equal(orch_gtid_set_format_to(set, big, sizeof(big)), 13);
    assert_string_equal(big, "0-1-100,1-2-5");
    char one[1] = {'x'};
    assert_int_equal(orch_gtid_set_format_to(set, one, sizeof(one)), 13);
    assert_int_equal(one[0], '\0');
    assert_int_equal(orch_gtid_set_format_to(set, NULL, 0), 13);
    orch_gtid_set_free(set);

    orch_gtid_set *empty = orch_gtid_set_new(MY);
    assert_non_null(empty);
    big[0] = 'x';
    assert_int_equal(orch_gtid_set_format_to(empty, big, sizeof(big)), 0);
    assert_string_equal(big, "");
    assert_format(empty, "", "empty");
    orch_gtid_set_free(empty);

    set = must_parse(MY, U1 ":1-5:t:7");
    size_t need = orch_gtid_set_format_to(set, NULL, 0);
    assert_int_equal(need, strlen(U1 ":1-5:t:7"));
    char exact[64];
    assert_true(need < sizeof(exact));
    assert_int_equal(orch_gtid_set_format_to(set, exact, need + 1), need);
    assert_string_equal(exact, U1 ":1-5:t:7");
    assert_int_equal(orch_gtid_set_format_to(set, exact, need), need);
    assert_int_equal(strlen(exact), need - 1);
    orch_gtid_set_free(set);
    n_cases += 8;
}

/* ---- union and subtract --------------------------------------------------- */

typedef struct algebra_case {
    orch_gtid_flavor flavor;
    const char *a, *b, *want;
} algebra_case;

static const algebra_case union_cases[] = {
    {MA, "", "", ""},
    {MA, "0-1-5", "", "0-1-5"},
    {MA, "", "0-1-5", "0-1-5"},
    {MA, "0-1-5", "0-1-7", "0-1-7"},
    {MA, "0-1-7", "0-1-5", "0-1-7"},
    {MA, "0-1-5", "0-2-3", "0-1-5,0-2-3"},
    {MA, "0-1-5,1-1-9", "1-2-3,2-1-1", "0-1-5,1-1-9,1-2-3,2-1-1"},
    {MA, "0-1-10,0-2-20", "0-1-15", "0-1-15,0-2-20"},
    {MA, "5-1-1", "0-1-1,9-1-1", "0-1-1,5-1-1,9-1-1"},
    {MA, "0-1-18446744073709551615", "0-1-1", "0-1-18446744073709551615"},
    {MY, "", "", ""},
    {MY, U1 ":1-5", "", U1 ":1-5"},
    {MY, "", U1 ":1-5", U1 ":1-5"},
    {MY, U1 ":1-5", U1 ":6-10", U1 ":1-10"},
    {MY, U1 ":6-10", U1 ":1-5", U1 ":1-10"},
    {MY, U1 ":1-5", U1 ":7-10", U1 ":1-5:7-10"},
    {MY, U1 ":1-3:7-9", U1 ":2-8", U1 ":1-9"},
    {MY, U1 ":1-5", U2 ":1-3", U1 ":1-5," U2 ":1-3"},
    {MY, U2 ":1", U1 ":1", U1 ":1," U2 ":1"},
    {MY, U1 ":1-5", U1 ":t:1-5", U1 ":1-5:t:1-5"},
    {MY, U1 ":t:1-5", U1 ":t:3-9:u:1", U1 ":t:1-9:u:1"},
    {MY, U1 ":1:5:9", U1 ":3:7", U1 ":1:3:5:7:9"},
    {MY, U1 ":1:5:9", U1 ":2-4:6-8", U1 ":1-9"},
    {MY, U1 ":1-10", U1 ":2-3:5", U1 ":1-10"},
    {MY, U1 ":" GNO_MAX, U1 ":1-9223372036854775805", U1 ":1-" GNO_MAX},
    {MY, U1 ":1," U3 ":1", U2 ":1", U1 ":1," U2 ":1," U3 ":1"},
};

static const algebra_case subtract_cases[] = {
    {MA, "", "", ""},
    {MA, "0-1-10", "", "0-1-10"},
    {MA, "", "0-1-10", ""},
    {MA, "0-1-10", "0-1-10", ""},
    {MA, "0-1-10", "0-1-5", "0-1-10"},
    {MA, "0-1-5", "0-1-10", ""},
    {MA, "0-1-10,1-1-5", "0-1-10", "1-1-5"},
    {MA, "0-1-5,0-2-10", "0-1-7", "0-2-10"},
    {MA, "0-1-5,0-2-10", "0-3-20", ""},
    {MA, "0-1-5,0-2-10,1-1-1", "0-2-10,1-1-1", ""},
    {MA, "0-1-5", "1-1-100", "0-1-5"},
    {MA, "0-1-8,0-2-9,1-3-4", "0-5-7", "0-1-8,0-2-9,1-3-4"},
    {MA, "0-1-0", "", "0-1-0"},
    {MY, "", "", ""},
    {MY, U1 ":1-10", U1 ":4-5", U1 ":1-3:6-10"},
    {MY, U1 ":1-10", U1 ":1-10", ""},
    {MY, U1 ":1-10", U1 ":1-20", ""},
    {MY, U1 ":1-10", "", U1 ":1-10"},
    {MY, "", U1 ":1-10", ""},
    {MY, U1 ":1-10", U1 ":1", U1 ":2-10"},
    {MY, U1 ":1-10", U1 ":10", U1 ":1-9"},
    {MY, U1 ":1-10", U1 ":2:4:6:8:10", U1 ":1:3:5:7:9"},
    {MY, U1 ":1-10:20-30", U1 ":5-25", U1 ":1-4:26-30"},
    {MY, U1 ":1-10," U2 ":1-5", U2 ":1-5", U1 ":1-10"},
    {MY, U1 ":1-5:t:1-5", U1 ":1-5", U1 ":t:1-5"},
    {MY, U1 ":1-5", U1 ":t:1-5", U1 ":1-5"},
    {MY, U1 ":1-10", U2 ":1-10", U1 ":1-10"},
    {MY, U1 ":3-7", U1 ":1-2:8-9", U1 ":3-7"},
    {MY, U1 ":1-3:5-7:9-11", U1 ":2-10", U1 ":1:11"},
    {MY, U1 ":1-100", U1 ":1-3:50-60:98-100", U1 ":4-49:61-97"},
    {MY, U1 ":1-" GNO_MAX, U1 ":2-9223372036854775805", U1 ":1:" GNO_MAX},
    {MY, U1 ":1-5," U2 ":1-5," U3 ":1-5", U1 ":1-5," U3 ":1-5", U2 ":1-5"},
};

static void run_algebra(const algebra_case *cases, size_t n, bool subtract)
{
    for (size_t i = 0; i < n; i++, n_cases++) {
        orch_gtid_set *a = must_parse(cases[i].flavor, cases[i].a);
        orch_gtid_set *b = must_parse(cases[i].flavor, cases[i].b);
        orch_gtid_set *r = NULL;
        orch_err err = subtract ? orch_gtid_set_subtract(a, b, &r) : orch_gtid_set_union(a, b, &r);
        assert_int_equal(err, ORCH_OK);
        char what[256];
        snprintf(what, sizeof(what), "%s(\"%s\", \"%s\")", subtract ? "subtract" : "union",
                 cases[i].a, cases[i].b);
        assert_format(r, cases[i].want, what);
        assert_int_equal(orch_gtid_set_flavor(r), cases[i].flavor);
        if (subtract) {
            /* What a has beyond b: a holds it, and it is empty exactly when b holds a. */
            assert_true(orch_gtid_set_contains(a, r));
            assert_int_equal(orch_gtid_set_is_empty(r), orch_gtid_set_contains(b, a));
            if (cases[i].flavor == MY)
                assert_int_equal(orch_gtid_set_count(r), orch_gtid_set_count_missing(a, b));
        } else {
            assert_true(orch_gtid_set_contains(r, a));
            assert_true(orch_gtid_set_contains(r, b));
            /* Union is symmetric. */
            orch_gtid_set *r2 = NULL;
            assert_int_equal(orch_gtid_set_union(b, a, &r2), ORCH_OK);
            assert_format(r2, cases[i].want, what);
            orch_gtid_set_free(r2);
        }
        /* Inputs are untouched. */
        orch_gtid_set *a2 = must_parse(cases[i].flavor, cases[i].a);
        assert_true(orch_gtid_set_equal(a, a2));
        orch_gtid_set_free(a2);
        orch_gtid_set_free(r);
        orch_gtid_set_free(b);
        orch_gtid_set_free(a);
    }
}

static void test_union(void **state)
{
    (void)state;
    run_algebra(union_cases, ARRAY(union_cases), false);
}

static void test_subtract(void **state)
{
    (void)state;
    run_algebra(subtract_cases, ARRAY(subtract_cases), true);
}

/* ---- compare, contains, equal ---------------------------------------------- */

static const struct {
    orch_gtid_flavor flavor;
    const char *a, *b;
    orch_gtid_cmp want;
} compare_cases[] = {
    {MA, "", "", ORCH_GTID_EQUAL},
    {MA, "0-1-5", "", ORCH_GTID_SUPERSET},
    {MA, "", "0-1-5", ORCH_GTID_SUBSET},
    {MA, "0-1-5", "0-1-5", ORCH_GTID_EQUAL},
    {MA, "0-1-5", "0-1-6", ORCH_GTID_SUBSET},
    {MA, "0-1-6", "0-2-5", ORCH_GTID_SUPERSET},
    {MA, "0-1-5", "0-2-5", ORCH_GTID_EQUAL},
    {MA, "0-1-5,0-2-9", "0-2-9", ORCH_GTID_EQUAL},
    {MA, "0-1-5,0-2-9", "0-3-8", ORCH_GTID_SUPERSET},
    {MA, "0-1-5,1-1-5", "0-1-6,1-1-4", ORCH_GTID_DIVERGED},
    {MA, "0-1-5", "1-1-5", ORCH_GTID_DIVERGED},
    {MA, "0-1-5,1-1-5", "0-1-5", ORCH_GTID_SUPERSET},
    {MA, "0-1-5,1-1-5", "1-1-6", ORCH_GTID_DIVERGED},
    {MA, "0-1-0", "", ORCH_GTID_SUPERSET},
    {MA, "0-1-100,1-2-5,2-3-7", "0-1-100,1-2-5,2-3-7", ORCH_GTID_EQUAL},
    {MA, "0-1-100,2-3-7", "0-1-100,1-2-5,2-3-7", ORCH_GTID_SUBSET},
    {MY, "", "", ORCH_GTID_EQUAL},
    {MY, U1 ":1-5", "", ORCH_GTID_SUPERSET},
    {MY, "", U1 ":1", ORCH_GTID_SUBSET},
    {MY, U1 ":1-5", U1 ":1-3:4-5", ORCH_GTID_EQUAL},
    {MY, U1 ":1-5", U1 ":1-6", ORCH_GTID_SUBSET},
    {MY, U1 ":1-5", U1 ":2-4", ORCH_GTID_SUPERSET},
    {MY, U1 ":1-5", U1 ":6", ORCH_GTID_DIVERGED},
    {MY, U1 ":1-5", U2 ":1-5", ORCH_GTID_DIVERGED},
    {MY, U1 ":1-5," U2 ":1", U2 ":1", ORCH_GTID_SUPERSET},
    {MY, U1 ":1-5", U1 ":t:1-5", ORCH_GTID_DIVERGED},
    {MY, U1 ":1-5:t:1", U1 ":1-5", ORCH_GTID_SUPERSET},
    {MY, U1 ":1:3", U1 ":1-3", ORCH_GTID_SUBSET},
    {MY, U1 ":2", U1 ":1:3", ORCH_GTID_DIVERGED},
    {MY, U1 ":1-10:20-30", U1 ":5-8:25", ORCH_GTID_SUPERSET},
    {MY, U1 ":1-10:20-30", U1 ":5-8:15", ORCH_GTID_DIVERGED},
    {MY, U1_UC ":1-5", U1 ":1-5", ORCH_GTID_EQUAL},
};

static orch_gtid_cmp mirror(orch_gtid_cmp c)
{
    return c == ORCH_GTID_SUBSET     ? ORCH_GTID_SUPERSET
           : c == ORCH_GTID_SUPERSET ? ORCH_GTID_SUBSET
                                     : c;
}

static void test_compare(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY(compare_cases); i++, n_cases++) {
        orch_gtid_set *a = must_parse(compare_cases[i].flavor, compare_cases[i].a);
        orch_gtid_set *b = must_parse(compare_cases[i].flavor, compare_cases[i].b);
        orch_gtid_cmp want = compare_cases[i].want, got = orch_gtid_set_compare(a, b);
        if (got != want)
            fail_msg("compare(\"%s\", \"%s\") = %s, want %s", compare_cases[i].a,
                     compare_cases[i].b, orch_gtid_cmp_name(got), orch_gtid_cmp_name(want));
        assert_int_equal(orch_gtid_set_compare(b, a), mirror(want));
        assert_int_equal(orch_gtid_set_contains(a, b),
                         want == ORCH_GTID_EQUAL || want == ORCH_GTID_SUPERSET);
        assert_int_equal(orch_gtid_set_contains(b, a),
                         want == ORCH_GTID_EQUAL || want == ORCH_GTID_SUBSET);
        assert_int_equal(orch_gtid_set_equal(a, b), want == ORCH_GTID_EQUAL);
        assert_int_equal(orch_gtid_set_equal(b, a), want == ORCH_GTID_EQUAL);
        /* Every set holds itself. */
        assert_int_equal(orch_gtid_set_compare(a, a), ORCH_GTID_EQUAL);
        /* Something is missing from b exactly when a is not contained in it (seq 0 aside). */
        if (compare_cases[i].flavor == MY)
            assert_int_equal(orch_gtid_set_count_missing(a, b) > 0,
                             want == ORCH_GTID_SUPERSET || want == ORCH_GTID_DIVERGED);
        orch_gtid_set_free(b);
        orch_gtid_set_free(a);
    }
}

/* ---- count and count_missing ------------------------------------------------ */

static const struct {
    orch_gtid_flavor flavor;
    const char *a;
    uint64_t want;
} count_cases[] = {
    {MA, "", 0},
    {MA, "0-1-100", 100},
    {MA, "0-1-100,1-2-5", 105},
    {MA, "0-1-100,0-2-50", 100},
    {MA, "0-1-50,0-2-100,0-3-70", 100},
    {MA, "0-1-0", 0},
    {MA, "0-1-18446744073709551615", UINT64_MAX},
    {MA, "0-1-18446744073709551615,1-1-1", UINT64_MAX},
    {MA, "0-1-9223372036854775808,1-1-9223372036854775808", UINT64_MAX},
    {MA, "0-1-9223372036854775808,1-1-9223372036854775807", UINT64_MAX},
    {MA, "0-1-9223372036854775807,1-1-9223372036854775807", UINT64_MAX - 1},
    {MY, "", 0},
    {MY, U1 ":1-5", 5},
    {MY, U1 ":1-5:7", 6},
    {MY, U1 ":1-5," U2 ":1-3", 8},
    {MY, U1 ":1-5:t:1-5", 10},
    {MY, U1 ":1-3:2-5", 5},
    {MY, U1 ":1-" GNO_MAX, 9223372036854775806u},
    {MY, U1 ":1-" GNO_MAX "," U2 ":1-" GNO_MAX, 18446744073709551612u},
    {MY, U1 ":1-" GNO_MAX "," U2 ":1-" GNO_MAX "," U3 ":1-" GNO_MAX, UINT64_MAX},
    {MY, U1 ":1-" GNO_MAX ":a:1-" GNO_MAX ":b:1-" GNO_MAX, UINT64_MAX},
};

static void test_count(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY(count_cases); i++, n_cases++) {
        orch_gtid_set *a = must_parse(count_cases[i].flavor, count_cases[i].a);
        uint64_t got = orch_gtid_set_count(a);
        if (got != count_cases[i].want)
            fail_msg("count(\"%s\") = %llu, want %llu", count_cases[i].a, (unsigned long long)got,
                     (unsigned long long)count_cases[i].want);
        /* Against the empty set, everything is missing. */
        orch_gtid_set *empty = orch_gtid_set_new(count_cases[i].flavor);
        assert_non_null(empty);
        assert_true(orch_gtid_set_count_missing(a, empty) == got);
        assert_true(orch_gtid_set_count_missing(empty, a) == 0);
        assert_true(orch_gtid_set_count_missing(a, a) == 0);
        orch_gtid_set_free(empty);
        orch_gtid_set_free(a);
    }
}

static const struct {
    orch_gtid_flavor flavor;
    const char *a, *b;
    uint64_t want;
} missing_cases[] = {
    {MA, "", "", 0},
    {MA, "0-1-100", "0-1-90", 10},
    {MA, "0-1-90", "0-1-100", 0},
    {MA, "0-1-100,1-1-5", "0-1-90", 15},
    {MA, "0-1-100", "", 100},
    {MA, "", "0-1-5", 0},
    {MA, "0-1-100,0-2-120", "0-3-110", 10},
    {MA, "0-1-100", "0-2-40,0-3-60", 40},
    {MA, "0-1-100,1-1-50", "0-1-200,1-1-10", 40},
    {MA, "0-1-18446744073709551615,1-1-18446744073709551615", "", UINT64_MAX},
    {MA, "0-1-18446744073709551615,1-1-18446744073709551615", "0-1-18446744073709551615",
     UINT64_MAX},
    {MA, "0-1-18446744073709551615", "0-1-1", UINT64_MAX - 1},
    {MY, "", "", 0},
    {MY, U1 ":1-10", U1 ":4-5", 8},
    {MY, U1 ":1-10", "", 10},
    {MY, "", U1 ":1", 0},
    {MY, U1 ":1-10", U1 ":1-10", 0},
    {MY, U1 ":1-10", U1 ":1-20", 0},
    {MY, U1 ":1-10," U2 ":1-5", U2 ":3", 14},
    {MY, U1 ":1-10:20-30", U1 ":5-25", 9},
    {MY, U1 ":1-5", U1 ":t:1-5", 5},
    {MY, U1 ":1-5", U2 ":1-5", 5},
    {MY, U1 ":1-100", U1 ":2:4:6:8:10", 95},
    {MY, U1 ":1:3:5:7:9", U1 ":2-8", 2},
    {MY, U1 ":1-" GNO_MAX, U1 ":2-" GNO_MAX, 1},
    {MY, U1 ":1-" GNO_MAX, "", 9223372036854775806u},
};

static void test_count_missing(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY(missing_cases); i++, n_cases++) {
        orch_gtid_set *a = must_parse(missing_cases[i].flavor, missing_cases[i].a);
        orch_gtid_set *b = must_parse(missing_cases[i].flavor, missing_cases[i].b);
        uint64_t got = orch_gtid_set_count_missing(a, b);
        if (got != missing_cases[i].want)
            fail_msg("count_missing(\"%s\", \"%s\") = %llu, want %llu", missing_cases[i].a,
                     missing_cases[i].b, (unsigned long long)got,
                     (unsigned long long)missing_cases[i].want);
        orch_gtid_set_free(b);
        orch_gtid_set_free(a);
    }
}

/* ---- flavors, names, lifecycle ----------------------------------------------- */

static void test_mismatched_flavors(void **state)
{
    (void)state;
    orch_gtid_set *my = must_parse(MY, U1 ":1-5");
    orch_gtid_set *ma = must_parse(MA, "0-1-5");
    orch_gtid_set *my_empty = orch_gtid_set_new(MY), *ma_empty = orch_gtid_set_new(MA);
    assert_non_null(my_empty);
    assert_non_null(ma_empty);
    orch_gtid_set *sentinel = (orch_gtid_set *)&n_cases, *out = sentinel;

    assert_int_equal(orch_gtid_set_union(my, ma, &out), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_subtract(my, ma, &out), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_union(ma, my, &out), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_subtract(ma_empty, my_empty, &out), ORCH_ERR_INVAL);
    assert_ptr_equal(out, sentinel);

    /* Not comparable: the safe answers. Even two empty sets of different flavors. */
    assert_int_equal(orch_gtid_set_compare(my, ma), ORCH_GTID_DIVERGED);
    assert_int_equal(orch_gtid_set_compare(ma, my), ORCH_GTID_DIVERGED);
    assert_int_equal(orch_gtid_set_compare(my_empty, ma_empty), ORCH_GTID_DIVERGED);
    assert_false(orch_gtid_set_contains(my, ma_empty));
    assert_false(orch_gtid_set_contains(ma, my_empty));
    assert_false(orch_gtid_set_equal(my_empty, ma_empty));
    assert_int_equal(orch_gtid_set_count_missing(my, ma), 5);
    assert_int_equal(orch_gtid_set_count_missing(ma, my), 5);

    /* NULL arguments to the fallible operations. */
    assert_int_equal(orch_gtid_set_union(NULL, ma, &out), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_subtract(ma, NULL, &out), ORCH_ERR_INVAL);
    assert_int_equal(orch_gtid_set_union(ma, ma, NULL), ORCH_ERR_INVAL);
    assert_ptr_equal(out, sentinel);

    orch_gtid_set_free(my);
    orch_gtid_set_free(ma);
    orch_gtid_set_free(my_empty);
    orch_gtid_set_free(ma_empty);
    n_cases += 16;
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(orch_gtid_flavor_name(MY), "mysql");
    assert_string_equal(orch_gtid_flavor_name(MA), "mariadb");
    assert_string_equal(orch_gtid_flavor_name((orch_gtid_flavor)0), "unknown");
    assert_string_equal(orch_gtid_cmp_name(ORCH_GTID_EQUAL), "equal");
    assert_string_equal(orch_gtid_cmp_name(ORCH_GTID_SUBSET), "subset");
    assert_string_equal(orch_gtid_cmp_name(ORCH_GTID_SUPERSET), "superset");
    assert_string_equal(orch_gtid_cmp_name(ORCH_GTID_DIVERGED), "diverged");
    assert_string_equal(orch_gtid_cmp_name((orch_gtid_cmp)42), "unknown");
    n_cases += 8;
}

static void test_new_clone_free(void **state)
{
    (void)state;
    assert_null(orch_gtid_set_new((orch_gtid_flavor)0));
    assert_null(orch_gtid_set_new((orch_gtid_flavor)3));
    orch_gtid_set_free(NULL);
    assert_null(orch_gtid_set_clone(NULL));

    orch_gtid_set *e = orch_gtid_set_new(MA);
    assert_non_null(e);
    assert_true(orch_gtid_set_is_empty(e));
    assert_int_equal(orch_gtid_set_count(e), 0);
    orch_gtid_set *ec = orch_gtid_set_clone(e);
    assert_non_null(ec);
    assert_true(orch_gtid_set_is_empty(ec));
    assert_int_equal(orch_gtid_set_flavor(ec), MA);
    orch_gtid_set_free(ec);
    orch_gtid_set_free(e);

    static const struct {
        orch_gtid_flavor flavor;
        const char *text;
    } sets[] = {
        {MA, "0-1-100,0-2-50,1-2-5"},
        {MY, U1 ":1-5:7:t:1-2," U2 ":3"},
    };
    for (size_t i = 0; i < ARRAY(sets); i++) {
        orch_gtid_set *s = must_parse(sets[i].flavor, sets[i].text);
        orch_gtid_set *c = orch_gtid_set_clone(s);
        assert_non_null(c);
        orch_gtid_set_free(s); /* the clone owns its own memory */
        assert_format(c, sets[i].text, "clone");
        assert_int_equal(orch_gtid_set_flavor(c), sets[i].flavor);
        orch_gtid_set_free(c);
    }
    n_cases += 6;
}

/* ---- MySQL against a bitmap model -------------------------------------------- */

/*
 * Random small MySQL sets (two uuids, untagged and tag "t", numbers 1..40) are
 * written as messy text (shuffled, split, duplicated, odd spacing), parsed, and
 * every operation is checked against 64-bit masks.
 */
#define MODEL_KEYS 4 /* U1, U1:t, U2, U2:t */
#define MODEL_MAX  40

typedef struct model {
    uint64_t bits[MODEL_KEYS]; /* bit n-1 = transaction n */
} model;

static uint64_t lcg_state = 0x2545f4914f6cdd1dULL;

static uint32_t lcg(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg_state >> 33);
}

static const char *model_uuid(int key)
{
    return key < 2 ? U1 : U2;
}

static const char *model_tag(int key)
{
    return key % 2 ? "t" : "";
}

static void model_random(model *m)
{
    for (int k = 0; k < MODEL_KEYS; k++) {
        uint64_t v = 0;
        switch (lcg() % 4) {
        case 0: /* absent */
            break;
        case 1: /* one run from 1 */
            v = (1ULL << (1 + lcg() % MODEL_MAX)) - 1;
            break;
        default: /* scattered */
            v = ((uint64_t)lcg() << 32 | lcg()) & ((uint64_t)lcg() << 32 | lcg());
            break;
        }
        m->bits[k] = v & ((1ULL << MODEL_MAX) - 1);
    }
}

static int popcount64(uint64_t v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/* Appends ":a-b" runs of bits to buf. */
static void append_runs(char *buf, size_t len, uint64_t bits)
{
    for (int n = 1; n <= MODEL_MAX; n++) {
        if (!(bits >> (n - 1) & 1))
            continue;
        int last = n;
        while (last < MODEL_MAX && (bits >> last & 1))
            last++;
        size_t used = strlen(buf);
        if (last == n)
            snprintf(buf + used, len - used, ":%d", n);
        else
            snprintf(buf + used, len - used, ":%d-%d", n, last);
        n = last;
    }
}

/* The canonical text of m, written independently of gtid.c. */
static void model_format(const model *m, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int u = 0; u < 2; u++) {
        uint64_t plain = m->bits[2 * u], tagged = m->bits[2 * u + 1];
        if (!plain && !tagged)
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", used ? "," : "", model_uuid(2 * u));
        append_runs(buf, len, plain);
        if (tagged) {
            used = strlen(buf);
            snprintf(buf + used, len - used, ":t");
            append_runs(buf, len, tagged);
        }
    }
}

/* Messy text for m: one entry per run, runs split in two overlapping halves, shuffled. */
static void model_text(const model *m, char *buf, size_t len)
{
    char entries[256][96];
    size_t n = 0;
    for (int k = 0; k < MODEL_KEYS; k++) {
        for (int a = 1; a <= MODEL_MAX; a++) {
            if (!(m->bits[k] >> (a - 1) & 1))
                continue;
            int b = a;
            while (b < MODEL_MAX && (m->bits[k] >> b & 1))
                b++;
            int mid = a + (int)(lcg() % (unsigned)(b - a + 1));
            const char *tag = model_tag(k);
            const char *sep = tag[0] ? ":" : "";
            snprintf(entries[n++], sizeof(entries[0]), "%s%s%s:%d-%d", model_uuid(k), sep, tag, a,
                     mid);
            snprintf(entries[n++], sizeof(entries[0]), "%s%s%s : %d-%d", model_uuid(k), sep, tag,
                     mid, b);
            a = b;
        }
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = lcg() % i;
        char tmp[96];
        memcpy(tmp, entries[i - 1], sizeof(tmp));
        memcpy(entries[i - 1], entries[j], sizeof(tmp));
        memcpy(entries[j], tmp, sizeof(tmp));
    }
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? (lcg() % 2 ? ",\n" : " , ") : "", entries[i]);
    }
}

static void assert_model(const orch_gtid_set *set, const model *m, const char *what)
{
    char want[4096];
    model_format(m, want, sizeof(want));
    assert_format(set, want, what);
}

static void test_mysql_against_model(void **state)
{
    (void)state;
    static char text[32768];
    for (int iter = 0; iter < 2000; iter++, n_cases++) {
        model ma, mb, mu, ms;
        model_random(&ma);
        model_random(&mb);
        if (iter % 5 == 0)
            mb = ma; /* equal sets */
        if (iter % 7 == 0)
            for (int k = 0; k < MODEL_KEYS; k++)
                mb.bits[k] &= ma.bits[k]; /* b within a */
        model_text(&ma, text, sizeof(text));
        orch_gtid_set *a = must_parse(MY, text);
        assert_model(a, &ma, text);
        model_text(&mb, text, sizeof(text));
        orch_gtid_set *b = must_parse(MY, text);
        assert_model(b, &mb, text);

        bool a_has_b = true, b_has_a = true;
        int count_a = 0, miss = 0;
        for (int k = 0; k < MODEL_KEYS; k++) {
            mu.bits[k] = ma.bits[k] | mb.bits[k];
            ms.bits[k] = ma.bits[k] & ~mb.bits[k];
            a_has_b &= (mb.bits[k] & ~ma.bits[k]) == 0;
            b_has_a &= ms.bits[k] == 0;
            count_a += popcount64(ma.bits[k]);
            miss += popcount64(ms.bits[k]);
        }
        orch_gtid_set *u = NULL, *s = NULL;
        assert_int_equal(orch_gtid_set_union(a, b, &u), ORCH_OK);
        assert_model(u, &mu, "union");
        assert_int_equal(orch_gtid_set_subtract(a, b, &s), ORCH_OK);
        assert_model(s, &ms, "subtract");
        assert_int_equal(orch_gtid_set_count(a), count_a);
        assert_int_equal(orch_gtid_set_count_missing(a, b), miss);
        assert_int_equal(orch_gtid_set_contains(a, b), a_has_b);
        orch_gtid_cmp want = a_has_b && b_has_a ? ORCH_GTID_EQUAL
                             : a_has_b          ? ORCH_GTID_SUPERSET
                             : b_has_a          ? ORCH_GTID_SUBSET
                                                : ORCH_GTID_DIVERGED;
        assert_int_equal(orch_gtid_set_compare(a, b), want);
        orch_gtid_set_free(u);
        orch_gtid_set_free(s);
        orch_gtid_set_free(a);
        orch_gtid_set_free(b);
    }
}

/* ---- MariaDB against a table model -------------------------------------------- */

/* Random positions over domains 0..3 and servers 1..3; -1 = no entry. */
typedef struct mdb_model {
    int64_t seq[4][4];
} mdb_model;

static void mdb_model_random(mdb_model *m)
{
    for (int d = 0; d < 4; d++)
        for (int s = 1; s < 4; s++)
            m->seq[d][s] = lcg() % 3 == 0 ? (int64_t)(lcg() % 12) : -1;
}

static int64_t mdb_model_max(const mdb_model *m, int d)
{
    int64_t max = -1;
    for (int s = 1; s < 4; s++)
        if (m->seq[d][s] > max)
            max = m->seq[d][s];
    return max;
}

/* Text with entries in reverse order and, sometimes, a lower duplicate. */
static void mdb_model_text(const mdb_model *m, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int d = 3; d >= 0; d--) {
        for (int s = 3; s >= 1; s--) {
            if (m->seq[d][s] < 0)
                continue;
            size_t used = strlen(buf);
            snprintf(buf + used, len - used, "%s%d-%d-%lld", used ? ",\n" : "", d, s,
                     (long long)m->seq[d][s]);
            if (m->seq[d][s] > 0 && lcg() % 2) {
                used = strlen(buf);
                snprintf(buf + used, len - used, ", %d-%d-%lld", d, s,
                         (long long)(m->seq[d][s] - 1));
            }
        }
    }
}

static void mdb_model_format(const mdb_model *m, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int d = 0; d < 4; d++)
        for (int s = 1; s < 4; s++)
            if (m->seq[d][s] >= 0) {
                size_t used = strlen(buf);
                snprintf(buf + used, len - used, "%s%d-%d-%lld", used ? "," : "", d, s,
                         (long long)m->seq[d][s]);
            }
}

static void test_mariadb_against_model(void **state)
{
    (void)state;
    char text[1024], want[1024];
    for (int iter = 0; iter < 2000; iter++, n_cases++) {
        mdb_model ma, mb, mu, ms;
        mdb_model_random(&ma);
        mdb_model_random(&mb);
        if (iter % 5 == 0)
            mb = ma;
        mdb_model_text(&ma, text, sizeof(text));
        orch_gtid_set *a = must_parse(MA, text);
        mdb_model_format(&ma, want, sizeof(want));
        assert_format(a, want, text);
        mdb_model_text(&mb, text, sizeof(text));
        orch_gtid_set *b = must_parse(MA, text);

        bool a_ahead = false, b_ahead = false;
        uint64_t count_a = 0, miss = 0;
        for (int d = 0; d < 4; d++) {
            int64_t xa = mdb_model_max(&ma, d), xb = mdb_model_max(&mb, d);
            a_ahead |= xa > xb;
            b_ahead |= xb > xa;
            if (xa > 0)
                count_a += (uint64_t)xa;
            if (xa > (xb < 0 ? 0 : xb))
                miss += (uint64_t)(xa - (xb < 0 ? 0 : xb));
            for (int s = 1; s < 4; s++) {
                mu.seq[d][s] = ma.seq[d][s] > mb.seq[d][s] ? ma.seq[d][s] : mb.seq[d][s];
                ms.seq[d][s] = xa > xb && ma.seq[d][s] > xb ? ma.seq[d][s] : -1;
            }
        }
        orch_gtid_set *u = NULL, *s = NULL;
        assert_int_equal(orch_gtid_set_union(a, b, &u), ORCH_OK);
        mdb_model_format(&mu, want, sizeof(want));
        assert_format(u, want, "union");
        assert_int_equal(orch_gtid_set_subtract(a, b, &s), ORCH_OK);
        mdb_model_format(&ms, want, sizeof(want));
        assert_format(s, want, "subtract");
        assert_int_equal(orch_gtid_set_count(a), count_a);
        assert_int_equal(orch_gtid_set_count_missing(a, b), miss);
        orch_gtid_cmp cmp = !a_ahead && !b_ahead ? ORCH_GTID_EQUAL
                            : !b_ahead           ? ORCH_GTID_SUPERSET
                            : !a_ahead           ? ORCH_GTID_SUBSET
                                                 : ORCH_GTID_DIVERGED;
        assert_int_equal(orch_gtid_set_compare(a, b), cmp);
        assert_int_equal(orch_gtid_set_contains(a, b), !b_ahead);
        orch_gtid_set_free(u);
        orch_gtid_set_free(s);
        orch_gtid_set_free(a);
        orch_gtid_set_free(b);
    }
}

static int report_cases(void **state)
{
    (void)state;
    printf("test_gtid: %zu table cases checked\n", n_cases);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_args),
        cmocka_unit_test(test_parse_size_cap),
        cmocka_unit_test(test_parse_large_reversed),
        cmocka_unit_test(test_format_buffer),
        cmocka_unit_test(test_union),
        cmocka_unit_test(test_subtract),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_count_missing),
        cmocka_unit_test(test_mismatched_flavors),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_new_clone_free),
        cmocka_unit_test(test_mysql_against_model),
        cmocka_unit_test(test_mariadb_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, report_cases);
}
