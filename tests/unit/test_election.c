/* Unit tests for the election decision (election_decide), by table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "election.h"

#include <stdio.h>
#include <string.h>

#define LEASE 4000          /* ms */
#define US    INT64_C(1000) /* µs per ms */

static const char *const ME = "coord-a:3000";
static const char *const MY_TOKEN = "00112233445566778899aabbccddeeff";
static const char *const OTHER = "coord-b:3000";
static const char *const OTHER_TOKEN = "ffeeddccbbaa99887766554433221100";
static const char *const OLD_TOKEN = "0123456789abcdef0123456789abcdef"; /* our name, earlier run */

typedef struct decide_case {
    const char *name;
    bool present;
    const char *node, *token;
    uint64_t epoch;
    int64_t age_us;
    int64_t unchanged_ms;
    uint64_t max_epoch_seen;
    election_action want;
    uint64_t want_epoch;
} decide_case;

static const decide_case cases[] = {
    /* no row: the first leader ever, or after someone deleted it */
    {"no row", false, NULL, NULL, 0, 0, -1, 0, ELECTION_INSERT, 1},
    {"no row after we saw epoch 7", false, NULL, NULL, 0, 0, -1, 7, ELECTION_INSERT, 8},

    /* our own row */
    {"own row, fresh", true, ME, MY_TOKEN, 5, 900 * US, 0, 5, ELECTION_RENEW, 5},
    {"own row, renewed just now", true, ME, MY_TOKEN, 5, 0, 0, 5, ELECTION_RENEW, 5},
    {"own row, exactly the lease", true, ME, MY_TOKEN, 5, LEASE *US, 0, 5, ELECTION_RENEW, 5},
    {"own row, lapsed: a new term", true, ME, MY_TOKEN, 5, LEASE *US + 1, 0, 5, ELECTION_TAKEOVER,
     6},
    {"own row, backend clock went back", true, ME, MY_TOKEN, 5, -3600 * 1000 * US, 0, 5,
     ELECTION_RENEW, 5},

    /* a live foreign row */
    {"foreign, fresh", true, OTHER, OTHER_TOKEN, 9, 500 * US, 200, 9, ELECTION_FOLLOW, 9},
    {"foreign, first sight", true, OTHER, OTHER_TOKEN, 9, 500 * US, -1, 9, ELECTION_FOLLOW, 9},
    {"foreign, exactly the lease (still live)", true, OTHER, OTHER_TOKEN, 9, LEASE *US, 0, 9,
     ELECTION_FOLLOW, 9},
    {"foreign, 1 us short of lapsing", true, OTHER, OTHER_TOKEN, 9, LEASE *US - 1, 0, 9,
     ELECTION_FOLLOW, 9},

    /* a lapsed foreign row */
    {"foreign, 1 us past the lease", true, OTHER, OTHER_TOKEN, 9, LEASE *US + 1, 0, 9,
     ELECTION_TAKEOVER, 10},
    {"foreign, released on a clean stop (far past)", true, OTHER, OTHER_TOKEN, 9,
     INT64_C(800000000) * 1000 * US, -1, 9, ELECTION_TAKEOVER, 10},
    {"foreign, lapsed, we saw a higher epoch", true, OTHER, OTHER_TOKEN, 9, LEASE *US + 1, 0, 12,
     ELECTION_TAKEOVER, 13},

    /* clock edge cases */
    {"foreign, renewed_at in the future (backend clock stepped back)", true, OTHER, OTHER_TOKEN, 9,
     -10 * 1000 * US, 100, 9, ELECTION_FOLLOW, 9},
    {"foreign, clock stepped back, unchanged for a lease by our clock", true, OTHER, OTHER_TOKEN, 9,
     -10 * 1000 * US, LEASE, 9, ELECTION_TAKEOVER, 10},
    {"foreign, unchanged 1 ms short of a lease by our clock", true, OTHER, OTHER_TOKEN, 9,
     -10 * 1000 * US, LEASE - 1, 9, ELECTION_FOLLOW, 9},
    {"foreign, age zero, unchanged for long", true, OTHER, OTHER_TOKEN, 9, 0, 10 * LEASE, 9,
     ELECTION_TAKEOVER, 10},

    /* our node name with another token: an earlier process of ours, or a twin */
    {"our name, other token, fresh (restart)", true, ME, OLD_TOKEN, 3, 1000 * US, 0, 3,
     ELECTION_FOLLOW, 3},
    {"our name, other token, lapsed", true, ME, OLD_TOKEN, 3, LEASE *US + 1, 0, 3,
     ELECTION_TAKEOVER, 4},
    {"our token, other name (never ours)", true, OTHER, MY_TOKEN, 3, 1000 * US, 0, 3,
     ELECTION_FOLLOW, 3},

    /* odd rows */
    {"epoch 0 row, lapsed", true, OTHER, OTHER_TOKEN, 0, LEASE *US + 1, 0, 0, ELECTION_TAKEOVER, 1},
    {"epoch exhausted", true, OTHER, OTHER_TOKEN, UINT64_MAX, LEASE *US + 1, 0, UINT64_MAX,
     ELECTION_FOLLOW, UINT64_MAX},
    {"empty token row, fresh", true, OTHER, "", 2, 10 * US, 0, 2, ELECTION_FOLLOW, 2},
};

static void test_decide_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const decide_case *c = &cases[i];
        election_row row = {.present = c->present,
                            .node = c->node,
                            .token = c->token,
                            .epoch = c->epoch,
                            .age_us = c->age_us,
                            .unchanged_ms = c->unchanged_ms};
        election_self self = {
            .node = ME, .token = MY_TOKEN, .lease_ms = LEASE, .max_epoch_seen = c->max_epoch_seen};
        election_decision d = election_decide(&row, &self);
        if (d.action != c->want || d.epoch != c->want_epoch)
            fail_msg("case '%s': got %s epoch %llu (%s), want %s epoch %llu", c->name,
                     election_action_name(d.action), (unsigned long long)d.epoch, d.why,
                     election_action_name(c->want), (unsigned long long)c->want_epoch);
        assert_non_null(d.why);
        assert_true(d.why[0] != '\0');
    }
}

/* A node restarted under the same name follows its former self until the lease
 * lapses, then takes over with a new epoch, never the same one. */
static void test_restart_same_name_needs_new_epoch(void **state)
{
    (void)state;
    election_self self = {.node = ME, .token = MY_TOKEN, .lease_ms = LEASE};
    election_row row = {.present = true,
                        .node = ME,
                        .token = OLD_TOKEN,
                        .epoch = 41,
                        .age_us = 100 * US,
                        .unchanged_ms = -1};
    for (int64_t age = 100; age <= LEASE; age += 100) {
        row.age_us = age * US;
        row.unchanged_ms = age - 100;
        assert_int_equal(election_decide(&row, &self).action, ELECTION_FOLLOW);
    }
    row.age_us = LEASE * US + 1;
    election_decision d = election_decide(&row, &self);
    assert_int_equal(d.action, ELECTION_TAKEOVER);
    assert_int_equal(d.epoch, 42);
}

/*
 * The safety argument, by simulation: a leader renews at t0 (its transaction
 * starts at t0, the backend stamps renewed_at at t0 + d with d >= 0); a follower
 * reading at any later time takes over only once the row is older than the
 * lease, i.e. at t0 + d + lease or later. The leader's validity ends at
 * t0 + lease - margin: strictly earlier, by at least the margin.
 */
static void test_no_overlap_by_construction(void **state)
{
    (void)state;
    const int64_t margin = 1000;
    election_self follower = {.node = OTHER, .token = OTHER_TOKEN, .lease_ms = LEASE};
    for (int64_t t0 = 0; t0 < 3000; t0 += 250) {
        for (int64_t d = 0; d <= 2000; d += 500) {
            int64_t renewed = t0 + d;
            int64_t leader_end = election_valid_until(t0, LEASE, margin);
            for (int64_t now = renewed; now < renewed + 2 * LEASE; now += 10) {
                election_row row = {.present = true,
                                    .node = ME,
                                    .token = MY_TOKEN,
                                    .epoch = 1,
                                    .age_us = (now - renewed) * US,
                                    .unchanged_ms = now - renewed};
                election_decision dec = election_decide(&row, &follower);
                if (dec.action == ELECTION_TAKEOVER)
                    assert_true(now >= leader_end + margin);
            }
        }
    }
    assert_int_equal(election_valid_until(10000, 4000, 1000), 13000);
}

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(election_action_name(ELECTION_INSERT), "insert");
    assert_string_equal(election_action_name(ELECTION_RENEW), "renew");
    assert_string_equal(election_action_name(ELECTION_TAKEOVER), "takeover");
    assert_string_equal(election_action_name(ELECTION_FOLLOW), "follow");
    assert_string_equal(election_action_name((election_action)99), "unknown");
}

/* Starting refuses a lease that cannot be renewed in time. */
static void test_start_checks_configuration(void **state)
{
    (void)state;
    char msg[256];
    election_conf c = {.db = {.host = "127.0.0.1", .port = 1, .user = "x"},
                       .node = "n1",
                       .interval_ms = 1000,
                       .lease_ms = 2000,
                       .margin_ms = 1000};
    assert_null(election_start(&c, NULL, NULL, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "must exceed"));
    c.lease_ms = 4000;
    c.node = "";
    assert_null(election_start(&c, NULL, NULL, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "node name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_restart_same_name_needs_new_epoch),
        cmocka_unit_test(test_no_overlap_by_construction),
        cmocka_unit_test(test_action_names),
        cmocka_unit_test(test_start_checks_configuration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
