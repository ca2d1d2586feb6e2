/* Unit tests for wire.c: key derivation, envelopes, freshness of reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire.h"

#include <stdlib.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_derive_key_known_answer(void **state)
{
    (void)state;
    /* python3: hmac.new(b'fleet-secret', b'orch-agent:db1.example.com', sha256) */
    orch_hmac_key k;
    char hex[65];
    assert_int_equal(orch_wire_derive_key("fleet-secret", 12, "db1.example.com", &k), ORCH_OK);
    orch_wire_key_to_hex(&k, hex, sizeof(hex));
    assert_string_equal(hex, "4ff3b5ef3c35ca977086c8710402c6ba7cc48184f0acd1eca7749a12ea147e8f");
    orch_hmac_key k2;
    assert_int_equal(orch_wire_derive_key("fleet-secret", 12, "db2.example.com", &k2), ORCH_OK);
    assert_memory_not_equal(k.b, k2.b, ORCH_HMAC_LEN);
    assert_int_equal(orch_wire_derive_key("", 0, "db1", &k2), ORCH_ERR_INVAL);
    assert_int_equal(orch_wire_derive_key("s", 1, "", &k2), ORCH_ERR_INVAL);
}

static void test_key_hex(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        orch_err err;
    } cases[] = {
        {"4ff3b5ef3c35ca977086c8710402c6ba7cc48184f0acd1eca7749a12ea147e8f", ORCH_OK},
        {"  4FF3B5EF3C35CA977086C8710402C6BA7CC48184F0ACD1ECA7749A12EA147E8F\n", ORCH_OK},
        {"4ff3b5", ORCH_ERR_PARSE},
        {"", ORCH_ERR_PARSE},
        {"zff3b5ef3c35ca977086c8710402c6ba7cc48184f0acd1eca7749a12ea147e8f", ORCH_ERR_PARSE},
        {"4ff3b5ef3c35ca977086c8710402c6ba7cc48184f0acd1eca7749a12ea147e8f00", ORCH_ERR_PARSE},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        orch_hmac_key k;
        char msg[128];
        assert_int_equal(orch_wire_key_from_hex(cases[i].in, &k, msg, sizeof(msg)), cases[i].err);
        if (cases[i].err == ORCH_OK) {
            char hex[65];
            orch_wire_key_to_hex(&k, hex, sizeof(hex));
            assert_string_equal(hex,
                                "4ff3b5ef3c35ca977086c8710402c6ba7cc48184f0acd1eca7749a12ea147e8f");
        }
    }
}

static void seal_report(const char *host, const orch_hmac_key *key, uint8_t **buf, size_t *len)
{
    uint8_t boot[ORCH_BOOT_ID_LEN] = {1, 2, 3};
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    r.protocol_version = ORCH_PROTOCOL_VERSION;
    r.boot_id.data = boot;
    r.boot_id.len = sizeof(boot);
    r.seq = 42;
    r.host = (char *)host;
    r.port = 3306;
    r.state = ORCH__PROBE_STATE__PROBE_UP;
    uint8_t *body;
    size_t body_len;
    assert_int_equal(orch_wire_pack(&r.base, &body, &body_len), ORCH_OK);
    assert_int_equal(
        orch_wire_seal(ORCH__ENVELOPE__KIND__REPORT, host, key, body, body_len, buf, len), ORCH_OK);
    free(body);
}

static void test_seal_open_verify(void **state)
{
    (void)state;
    orch_hmac_key k, other;
    assert_int_equal(orch_wire_derive_key("s3cret", 6, "db1", &k), ORCH_OK);
    assert_int_equal(orch_wire_derive_key("s3cret", 6, "db2", &other), ORCH_OK);
    uint8_t *buf;
    size_t len;
    seal_report("db1", &k, &buf, &len);

    Orch__Envelope *env = NULL;
    char msg[128];
    assert_int_equal(orch_wire_open(buf, len, &env, msg, sizeof(msg)), ORCH_OK);
    assert_string_equal(env->host, "db1");
    assert_int_equal(env->kind, ORCH__ENVELOPE__KIND__REPORT);
    assert_int_equal(orch_wire_verify(env, &k), ORCH_OK);
    assert_int_equal(orch_wire_verify(env, &other), ORCH_ERR_AUTH);
    Orch__InstanceReport *r = orch__instance_report__unpack(NULL, env->body.len, env->body.data);
    assert_non_null(r);
    assert_int_equal(r->seq, 42);
    orch__instance_report__free_unpacked(r, NULL);

    /* Each signed part matters: body, kind, host. */
    env->body.data[env->body.len - 1] ^= 1;
    assert_int_equal(orch_wire_verify(env, &k), ORCH_ERR_AUTH);
    env->body.data[env->body.len - 1] ^= 1;
    env->kind = ORCH__ENVELOPE__KIND__COMMAND;
    assert_int_equal(orch_wire_verify(env, &k), ORCH_ERR_AUTH);
    env->kind = ORCH__ENVELOPE__KIND__REPORT;
    env->host[2] = '2'; /* "db2" speaking with db1's key */
    assert_int_equal(orch_wire_verify(env, &k), ORCH_ERR_AUTH);
    orch__envelope__free_unpacked(env, NULL);
    free(buf);
}

static void test_open_rejects_bad_input(void **state)
{
    (void)state;
    orch_hmac_key k;
    assert_int_equal(orch_wire_derive_key("s", 1, "db1", &k), ORCH_OK);
    uint8_t *good;
    size_t good_len;
    seal_report("db1", &k, &good, &good_len);

    Orch__Envelope *env = NULL;
    char msg[128];
    /* every truncation either fails to parse or lacks required fields */
    for (size_t cut = 0; cut < good_len; cut++) {
        orch_err err = orch_wire_open(good, cut, &env, msg, sizeof(msg));
        assert_int_not_equal(err, ORCH_OK);
        assert_null(env);
    }
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x12};
    assert_int_equal(orch_wire_open(junk, sizeof(junk), &env, msg, sizeof(msg)), ORCH_ERR_PROTO);
    assert_int_equal(orch_wire_open(NULL, 0, &env, msg, sizeof(msg)), ORCH_ERR_PROTO);
    uint8_t *big = calloc(1, ORCH_WIRE_MAX + 1);
    assert_int_equal(orch_wire_open(big, ORCH_WIRE_MAX + 1, &env, msg, sizeof(msg)),
                     ORCH_ERR_TOOBIG);
    free(big);

    /* Wrong protocol version, unknown kind, short HMAC: all refused with a reason. */
    uint8_t mac[ORCH_HMAC_LEN] = {0};
    static const struct {
        uint32_t version;
        int kind;
        size_t mac_len;
        const char *host;
        const char *why;
    } cases[] = {
        {2, ORCH__ENVELOPE__KIND__REPORT, ORCH_HMAC_LEN, "db1", "protocol version 2"},
        {1, 9, ORCH_HMAC_LEN, "db1", "unknown envelope kind"},
        {1, ORCH__ENVELOPE__KIND__REPORT, 16, "db1", "HMAC of 16 bytes"},
        {1, ORCH__ENVELOPE__KIND__REPORT, ORCH_HMAC_LEN, "", "host identity"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        Orch__Envelope e = ORCH__ENVELOPE__INIT;
        e.protocol_version = cases[i].version;
        e.kind = (Orch__Envelope__Kind)cases[i].kind;
        e.host = (char *)cases[i].host;
        e.hmac.data = mac;
        e.hmac.len = cases[i].mac_len;
        uint8_t *buf;
        size_t len;
        assert_int_equal(orch_wire_pack(&e.base, &buf, &len), ORCH_OK);
        msg[0] = '\0';
        assert_int_not_equal(orch_wire_open(buf, len, &env, msg, sizeof(msg)), ORCH_OK);
        if (strstr(msg, cases[i].why) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, msg, cases[i].why);
        free(buf);
    }
    free(good);
}

static void test_freshness_rules(void **state)
{
    (void)state;
    uint8_t a[ORCH_BOOT_ID_LEN] = {0xa}, b[ORCH_BOOT_ID_LEN] = {0xb};
    static const int64_t grace = 10000;
    /* One timeline per row: boot, seq, sent_at, receiver now, expected. */
    static const struct {
        char boot;
        uint64_t seq;
        int64_t sent, now;
        orch_fresh_verdict want;
    } steps[] = {
        {'a', 5, 1000, 100, ORCH_FRESH_OK},       /* first report */
        {'a', 5, 1000, 200, ORCH_FRESH_REPLAY},   /* same again */
        {'a', 4, 900, 300, ORCH_FRESH_REPLAY},    /* late, older */
        {'a', 6, 1100, 400, ORCH_FRESH_OK},       /* next */
        {'b', 1, 2000, 500, ORCH_FRESH_OK},       /* agent restarted */
        {'a', 7, 1200, 600, ORCH_FRESH_OLD_BOOT}, /* old boot's burst after a partition */
        {'b', 2, 2100, 700, ORCH_FRESH_OK},       /* new boot continues */
        /* old boot, older send time, current boot silent for 19.3 s: still refused
         * because this step runs with a 30 s grace (see the loop) */
        {'a', 8, 1300, 20000, ORCH_FRESH_OLD_BOOT},
    };
    orch_freshness st = {0};
    for (size_t i = 0; i < N_ELEMS(steps); i++) {
        const uint8_t *id = steps[i].boot == 'a' ? a : b;
        orch_fresh_verdict v =
            orch_freshness_check(&st, id, ORCH_BOOT_ID_LEN, steps[i].seq, steps[i].sent,
                                 steps[i].now, i == N_ELEMS(steps) - 1 ? 30000 : grace);
        if (v != steps[i].want)
            fail_msg("step %zu: got %s want %s", i, orch_fresh_verdict_name(v),
                     orch_fresh_verdict_name(steps[i].want));
    }
    /* Host clock stepped backwards across a restart: accepted after the grace. */
    orch_freshness st2 = {0};
    assert_int_equal(orch_freshness_check(&st2, a, ORCH_BOOT_ID_LEN, 9, 5000, 0, grace),
                     ORCH_FRESH_OK);
    assert_int_equal(orch_freshness_check(&st2, b, ORCH_BOOT_ID_LEN, 1, 4000, 5000, grace),
                     ORCH_FRESH_OLD_BOOT);
    assert_int_equal(orch_freshness_check(&st2, b, ORCH_BOOT_ID_LEN, 2, 4100, 10001, grace),
                     ORCH_FRESH_OK);
    assert_int_equal(orch_freshness_check(&st2, a, ORCH_BOOT_ID_LEN, 10, 4000, 10002, grace),
                     ORCH_FRESH_OLD_BOOT);
    assert_int_equal(orch_freshness_check(&st2, a, 3, 1, 4000, 0, grace), ORCH_FRESH_BAD_BOOT_ID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_key_known_answer),
        cmocka_unit_test(test_key_hex),
        cmocka_unit_test(test_seal_open_verify),
        cmocka_unit_test(test_open_rejects_bad_input),
        cmocka_unit_test(test_freshness_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
