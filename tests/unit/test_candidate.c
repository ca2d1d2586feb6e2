/*
 * Unit tests for candidate.c: the choice of a dead master's successor.
 *
 * Each row of the table is a frozen cluster (replicas in a compact spec) and
 * the decision expected: the chosen replica, the catch-up source, the target
 * set, the lost replicas, and a fragment of the refusal (or of what force
 * overrode). Every row is also run with its replicas reversed and rotated, and
 * must give the same decision: the input order never shows. CAND_DUMP=1 in the
 * environment prints every decision of the tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "candidate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY(a) (sizeof(a) / sizeof((a)[0]))

#define MY ORCH_GTID_MYSQL
#define MA ORCH_GTID_MARIADB

#define U1 "3e11fa47-71ca-11e1-9e33-c80aa9429562" /* the old master */
#define U2 "4a8c1c2e-1c2e-11ee-8a4f-0242ac110002" /* a replica's own uuid */
#define U3 "5d9a5b8c-1c2e-11ee-8a4f-0242ac110003"

/* Replica flags. */
enum {
    NOBIN = 1 << 0,  /* log_bin off */
    NOLSU = 1 << 1,  /* log_slave_updates off */
    DOWN = 1 << 2,   /* downtimed */
    MAINT = 1 << 3,  /* maintenance lock held */
    SEMI = 1 << 4,   /* semi-sync replica enabled */
    STALE = 1 << 5,  /* agent did not answer the freeze */
    NOLAG = 1 << 6,  /* seconds behind NULL */
    DELAY = 1 << 7,  /* SQL delay 3600 s */
    SEMIST = 1 << 8, /* semi-sync status ON only (variable off) */
};

/* One replica. Zero fields mean: received = executed, neutral, dc1/r1, lag 0, the flavor's
 * default version, binlogs on, fresh. */
typedef struct rep {
    const char *key;  /* short: "db1" stands for "db1:3306" */
    const char *exec; /* executed set */
    const char *recv; /* received set; NULL: as executed */
    char rule;        /* 'P' prefer, 'N' or 0 neutral, 'X' prefer_not, 'M' must_not */
    const char *dc, *region;
    int lag;
    unsigned flags;
    const char *version; /* NULL: 8.0.36 / 10.11.6-MariaDB */
    const char *errant;
} rep;

typedef struct why_check {
    const char *key; /* short */
    const char *frag;
} why_check;

typedef struct tcase {
    const char *name;
    orch_gtid_flavor flavor;
    bool force;
    const char *mdc, *mregion; /* NULL: dc1 / r1 */
    const char *designated;    /* short key an operator named; NULL: none */
    rep reps[8];
    const char *chosen; /* short key; NULL: refused */
    const char *source; /* short key; NULL: no catch-up */
    const char *target; /* canonical text; NULL: not checked */
    const char *lost;   /* "db1,db3" short keys in key order; NULL: not checked */
    const char *reason; /* fragment of the refusal, or of forced_past when chosen */
    why_check why[3];   /* ranking texts */
} tcase;

static size_t n_rows;

static const char *full_key(const char *k, char *buf, size_t len)
{
    snprintf(buf, len, "%s:3306", k);
    return buf;
}

static candidate_rule rule_of(char c)
{
    switch (c) {
    case 'P':
        return CANDIDATE_PREFER;
    case 'X':
        return CANDIDATE_PREFER_NOT;
    case 'M':
        return CANDIDATE_MUST_NOT;
    default:
        return CANDIDATE_NEUTRAL;
    }
}

static orch_gtid_set *must_parse(orch_gtid_flavor f, const char *text)
{
    orch_gtid_set *s = NULL;
    char msg[256] = "";
    orch_err err = orch_gtid_set_parse(f, text, &s, msg, sizeof(msg));
    if (err != ORCH_OK)
        fail_msg("parse '%s': %s", text, msg);
    return s;
}

/* The replicas of one case, built from its spec. */
typedef struct built {
    size_t n;
    candidate_input in[8];
    char keys[8][64];
    orch_gtid_set *sets[8][3];
} built;

static void build(const tcase *tc, built *b)
{
    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i < ARRAY(tc->reps) && tc->reps[i].key != NULL; i++) {
        const rep *r = &tc->reps[i];
        candidate_input *x = &b->in[i];
        const char *ver = r->version;
        if (ver == NULL)
            ver = tc->flavor == MA ? "10.11.6-MariaDB-log" : "8.0.36";
        char msg[128];
        if (orch_version_parse(ver, NULL, &x->version, msg, sizeof(msg)) != ORCH_OK)
            fail_msg("%s: version '%s': %s", tc->name, ver, msg);
        orch_gtid_flavor f = x->version.flavor == ORCH_FLAVOR_MARIADB ? MA : MY;
        x->key = full_key(r->key, b->keys[i], sizeof(b->keys[i]));
        b->sets[i][0] = must_parse(f, r->exec != NULL ? r->exec : "");
        x->executed = b->sets[i][0];
        if (r->recv != NULL) {
            b->sets[i][1] = must_parse(f, r->recv);
            x->received = b->sets[i][1];
        }
        if (r->errant != NULL) {
            b->sets[i][2] = must_parse(f, r->errant);
            x->errant = b->sets[i][2];
        }
        x->rule = rule_of(r->rule);
        x->dc = r->dc != NULL ? r->dc : "dc1";
        x->region = r->region != NULL ? r->region : "r1";
        x->lag_known = !(r->flags & NOLAG);
        x->lag_s = r->lag;
        x->log_bin = !(r->flags & NOBIN);
        x->log_slave_updates = !(r->flags & NOLSU);
        x->downtimed = r->flags & DOWN;
        x->maintenance = r->flags & MAINT;
        x->semi_sync_enabled = r->flags & SEMI;
        x->semi_sync_status = r->flags & SEMIST;
        x->fresh = !(r->flags & STALE);
        x->sql_delay_s = (r->flags & DELAY) ? 3600 : 0;
        b->n = i + 1;
    }
}

static void built_fini(built *b)
{
    for (size_t i = 0; i < ARRAY(b->sets); i++)
        for (size_t j = 0; j < 3; j++)
            orch_gtid_set_free(b->sets[i][j]);
}

static const char *key_at(const candidate_input *in, size_t idx)
{
    return idx == CANDIDATE_NONE ? "(none)" : in[idx].key;
}

/* The decision as text, with keys instead of indexes: equal for any input order. */
static void summary(const candidate_input *in, const candidate_result *r, char *buf, size_t len)
{
    char *target = r->target != NULL ? orch_gtid_set_format(r->target) : NULL;
    int k = snprintf(buf, len,
                     "refused=%d reason=[%s] forced=[%s] chosen=%s from=%s target=%s "
                     "unreachable=%llu lost=",
                     r->refused, r->reason, r->forced_past, key_at(in, r->chosen),
                     key_at(in, r->catch_up_from), target != NULL ? target : "(null)",
                     (unsigned long long)r->unreachable);
    free(target);
    size_t off = k > 0 && (size_t)k < len ? (size_t)k : len - 1;
    for (size_t i = 0; i < r->n_lost && off + 1 < len; i++) {
        k = snprintf(buf + off, len - off, "%s,", in[r->lost[i]].key);
        off = k > 0 && (size_t)k < len - off ? off + (size_t)k : len - 1;
    }
    for (size_t i = 0; i < r->n_ranking && off + 1 < len; i++) {
        const candidate_entry *e = &r->ranking[i];
        k = snprintf(buf + off, len - off, "\n  %s [%s] behind=%llu from=%s follow=%s %s",
                     in[e->index].key, e->why, (unsigned long long)e->behind,
                     key_at(in, e->catch_up_from), candidate_follow_name(e->follow), e->follow_why);
        off = k > 0 && (size_t)k < len - off ? off + (size_t)k : len - 1;
    }
}

static const candidate_entry *entry_for(const candidate_input *in, const candidate_result *r,
                                        const char *key)
{
    for (size_t i = 0; i < r->n_ranking; i++)
        if (strcmp(in[r->ranking[i].index].key, key) == 0)
            return &r->ranking[i];
    return NULL;
}

static void check_case(const tcase *tc, const candidate_input *in, size_t n,
                       const candidate_result *r)
{
    char dump[8192];
    summary(in, r, dump, sizeof(dump));
    char want[64];
    if (tc->chosen == NULL) {
        if (!r->refused || r->chosen != CANDIDATE_NONE || r->target != NULL)
            fail_msg("%s: expected a refusal, got:\n%s", tc->name, dump);
    } else {
        full_key(tc->chosen, want, sizeof(want));
        if (r->refused || r->chosen == CANDIDATE_NONE || strcmp(in[r->chosen].key, want) != 0)
            fail_msg("%s: expected %s, got:\n%s", tc->name, want, dump);
        if (r->target == NULL)
            fail_msg("%s: no target:\n%s", tc->name, dump);
        const char *src = tc->source != NULL ? full_key(tc->source, want, sizeof(want)) : NULL;
        if ((src == NULL) != (r->catch_up_from == CANDIDATE_NONE) ||
            (src != NULL && strcmp(in[r->catch_up_from].key, src) != 0))
            fail_msg("%s: expected catch-up from %s, got:\n%s", tc->name,
                     src != NULL ? src : "(none)", dump);
        if (tc->target != NULL) {
            char *t = orch_gtid_set_format(r->target);
            if (strcmp(t, tc->target) != 0)
                fail_msg("%s: expected target '%s', got:\n%s", tc->name, tc->target, dump);
            free(t);
        }
        if (tc->lost != NULL) {
            char got[512] = "";
            for (size_t i = 0; i < r->n_lost; i++) {
                size_t len = strlen(got);
                snprintf(got + len, sizeof(got) - len, "%s%.*s", i > 0 ? "," : "",
                         (int)(strlen(in[r->lost[i]].key) - 5), in[r->lost[i]].key);
            }
            if (strcmp(got, tc->lost) != 0)
                fail_msg("%s: expected lost '%s', got:\n%s", tc->name, tc->lost, dump);
        }
        /* Every replica has a follow decision; the chosen one is promoted. */
        for (size_t i = 0; i < r->n_ranking; i++) {
            const candidate_entry *e = &r->ranking[i];
            if (e->follow == CANDIDATE_FOLLOW_NONE)
                fail_msg("%s: no follow decision for %s:\n%s", tc->name, in[e->index].key, dump);
            if ((e->follow == CANDIDATE_FOLLOW_PROMOTED) != (e->index == r->chosen))
                fail_msg("%s: promoted flag wrong:\n%s", tc->name, dump);
        }
    }
    if (tc->reason != NULL) {
        const char *hay = r->refused ? r->reason : r->forced_past;
        if (strstr(hay, tc->reason) == NULL)
            fail_msg("%s: expected '%s' in the %s, got:\n%s", tc->name, tc->reason,
                     r->refused ? "reason" : "forced_past", dump);
    } else if (!r->refused && r->forced_past[0] != '\0') {
        fail_msg("%s: unexpected force:\n%s", tc->name, dump);
    }
    /* The ranking lists every replica once; positions run 1.. over the eligible. */
    if (r->n_ranking != n)
        fail_msg("%s: ranking has %zu of %zu:\n%s", tc->name, r->n_ranking, n, dump);
    unsigned pos = 0;
    for (size_t i = 0; i < r->n_ranking; i++) {
        const candidate_entry *e = &r->ranking[i];
        if (e->eligible != (e->position > 0) || (e->eligible && e->position != ++pos))
            fail_msg("%s: bad positions:\n%s", tc->name, dump);
        if (e->why[0] == '\0')
            fail_msg("%s: empty why:\n%s", tc->name, dump);
        for (size_t j = 0; j < i; j++)
            if (r->ranking[j].index == e->index)
                fail_msg("%s: replica listed twice:\n%s", tc->name, dump);
    }
    for (size_t i = 0; i < ARRAY(tc->why) && tc->why[i].key != NULL; i++) {
        const candidate_entry *e = entry_for(in, r, full_key(tc->why[i].key, want, sizeof(want)));
        if (e == NULL)
            fail_msg("%s: %s not in the ranking:\n%s", tc->name, want, dump);
        if (strstr(e->why, tc->why[i].frag) == NULL &&
            strstr(e->follow_why, tc->why[i].frag) == NULL)
            fail_msg("%s: expected '%s' in %s's texts, got:\n%s", tc->name, tc->why[i].frag, want,
                     dump);
    }
}

/* Runs one case in the given replica order (perm[i] = spec index); returns the summary. */
static char *run_order(const tcase *tc, const built *b, const size_t *perm)
{
    candidate_input in[8];
    for (size_t i = 0; i < b->n; i++)
        in[i] = b->in[perm[i]];
    candidate_params p = {
        .master_dc = tc->mdc != NULL ? tc->mdc : "dc1",
        .master_region = tc->mregion != NULL ? tc->mregion : "r1",
        .force = tc->force,
    };
    char dkey[64];
    if (tc->designated != NULL)
        p.designated = full_key(tc->designated, dkey, sizeof(dkey));
    candidate_result r;
    orch_err err = candidate_choose(in, b->n, &p, &r);
    if (err != ORCH_OK)
        fail_msg("%s: candidate_choose: %s", tc->name, orch_strerror(err));
    check_case(tc, in, b->n, &r);
    char *dump = malloc(8192);
    assert_non_null(dump);
    summary(in, &r, dump, 8192);
    candidate_result_fini(&r);
    return dump;
}

static void run_table(const tcase *cases, size_t n_cases)
{
    for (size_t c = 0; c < n_cases; c++) {
        const tcase *tc = &cases[c];
        built b;
        build(tc, &b);
        size_t fwd[8], rev[8], rot[8];
        for (size_t i = 0; i < b.n; i++) {
            fwd[i] = i;
            rev[i] = b.n - 1 - i;
            rot[i] = (i + 1) % b.n;
        }
        char *d1 = run_order(tc, &b, fwd);
        if (getenv("CAND_DUMP"))
            printf("== %s\n%s\n", tc->name, d1);
        char *d2 = run_order(tc, &b, rev);
        char *d3 = run_order(tc, &b, rot);
        if (strcmp(d1, d2) != 0 || strcmp(d1, d3) != 0)
            fail_msg("%s: the input order shows:\n%s\n---\n%s\n---\n%s", tc->name, d1, d2, d3);
        free(d1);
        free(d2);
        free(d3);
        built_fini(&b);
        n_rows++;
    }
}

/* ---- MySQL ------------------------------------------------------------------------ */

static const tcase mysql_cases[] = {
    {.name = "single replica",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100"}},
     .chosen = "db1",
     .target = U1 ":1-100",
     .lost = "",
     .why = {{"db1", "1 (chosen): neutral, same dc, most advanced, lag 0s"}}},
    {.name = "most received wins over most executed (orchestrator #1312)",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-90", U1 ":1-100"}, {"db2", U1 ":1-95"}},
     .chosen = "db1",
     .target = U1 ":1-100",
     .lost = "",
     .why = {{"db2", "2: neutral, same dc, behind the most advanced by 5 transactions, "
                     "catches up from db1:3306"},
             {"db1", "most advanced"}}},
    {.name = "received wins even against less lag",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-90", U1 ":1-100", .lag = 50}, {"db2", U1 ":1-99", .lag = 0}},
     .chosen = "db1",
     .lost = ""},
    {.name = "same dc behind the most advanced catches up from it",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .dc = "dc2"}, {"db2", U1 ":1-95"}},
     .chosen = "db2",
     .source = "db1",
     .target = U1 ":1-100",
     .lost = ""},
    {.name = "prefer behind the most advanced catches up",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100"}, {"db2", U1 ":1-90", .rule = 'P'}},
     .chosen = "db2",
     .source = "db1",
     .target = U1 ":1-100",
     .lost = "",
     .why = {{"db2", "1 (chosen): prefer"}, {"db1", "2: neutral"}}},
    {.name = "must_not most advanced serves the catch-up",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'M'}, {"db2", U1 ":1-98"}, {"db3", U1 ":1-97"}},
     .chosen = "db2",
     .source = "db1",
     .target = U1 ":1-100",
     .lost = "",
     .why = {{"db1", "excluded: must_not (most advanced); the new master catches up from it"},
             {"db3", "catches up from db1:3306"}}},
    {.name = "catch-up source is the one with least relay log to apply",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-80", U1 ":1-100", .rule = 'M'},
              {"db2", U1 ":1-100", .rule = 'M'},
              {"db3", U1 ":1-97"}},
     .chosen = "db3",
     .source = "db2",
     .lost = ""},
    {.name = "most advanced without binary log: refused",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = NOBIN}, {"db2", U1 ":1-98"}},
     .reason = "the best candidate db2:3306 cannot reach 2 transactions db1:3306 received "
               "(db1:3306 cannot serve them: no binary log)",
     .why = {{"db1", "excluded: no binary log (most advanced)"},
             {"db2", "1: neutral, same dc, behind the most advanced by 2 transactions, would "
                     "still lack 2"}}},
    {.name = "most advanced without binary log: forced",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100", .flags = NOBIN}, {"db2", U1 ":1-98"}},
     .chosen = "db2",
     .target = U1 ":1-98",
     .lost = "db1",
     .reason = "cannot reach 2 transactions",
     .why = {{"db1", "lost: has 2 transactions the new master lacks: " U1 ":99-100"}}},
    {.name = "most advanced without log_slave_updates cannot serve: refused",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = NOLSU}, {"db2", U1 ":1-98"}, {"db3", U1 ":1-99"}},
     .reason = "db1:3306 cannot serve them: no log_slave_updates"},
    {.name = "no binary logs anywhere: refused",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100", .flags = NOBIN}, {"db2", U1 ":1-100", .flags = NOLSU}},
     .reason = "no replica has binary logs",
     .why = {{"db2", "excluded: no log_slave_updates"}}},
    {.name = "only prefer_not eligible: chosen",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'X'}, {"db2", U1 ":1-100", .rule = 'M'}},
     .chosen = "db1",
     .lost = ""},
    {.name = "prefer_not most advanced: neutral catches up from it",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'X'}, {"db2", U1 ":1-90"}},
     .chosen = "db2",
     .source = "db1",
     .target = U1 ":1-100"},
    {.name = "downtimed most advanced serves, not promoted",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = DOWN}, {"db2", U1 ":1-99"}},
     .chosen = "db2",
     .source = "db1",
     .why = {{"db1", "downtimed (last resort), most advanced"}}},
    {.name = "downtimed taken when nothing else is eligible",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = DOWN}, {"db2", U1 ":1-100", .rule = 'M'}},
     .chosen = "db1",
     .lost = ""},
    {.name = "prefer_not before maintenance-locked",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = MAINT}, {"db2", U1 ":1-100", .rule = 'X'}},
     .chosen = "db2",
     .why = {{"db1", "2: neutral, same dc, in maintenance (last resort)"}}},
    {.name = "prefer_not before downtimed prefer",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'P', .flags = DOWN}, {"db2", U1 ":1-100", .rule = 'X'}},
     .chosen = "db2"},
    {.name = "delayed replica is a last resort",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = DELAY}, {"db2", U1 ":1-100", .rule = 'X'}},
     .chosen = "db2",
     .why = {{"db1", "delayed 3600s (last resort)"}}},
    {.name = "same dc beats other dc at equal received",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .dc = "dc2"}, {"db2", U1 ":1-100"}},
     .chosen = "db2",
     .why = {{"db1", "2: neutral, same region"}}},
    {.name = "same region beats other region",
     .flavor = MY,
     .mdc = "dc9",
     .reps = {{"db1", U1 ":1-100", .dc = "dc3", .region = "r2"},
              {"db2", U1 ":1-100", .dc = "dc2", .region = "r1"}},
     .chosen = "db2",
     .why = {{"db1", "2: neutral, elsewhere"}}},
    {.name = "dc names compare without case",
     .flavor = MY,
     .mdc = "DC1",
     .reps = {{"db1", U1 ":1-100", .dc = "dc2"}, {"db2", U1 ":1-100", .dc = "dc1"}},
     .chosen = "db2"},
    {.name = "unknown master location: lag decides",
     .flavor = MY,
     .mdc = "",
     .mregion = "",
     .reps = {{"db1", U1 ":1-100", .dc = "dc1", .lag = 9},
              {"db2", U1 ":1-100", .dc = "dc2", .lag = 2}},
     .chosen = "db2"},
    {.name = "prefer in another dc beats neutral in the same dc",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'P', .dc = "dc2", .region = "r2"}, {"db2", U1 ":1-100"}},
     .chosen = "db1"},
    {.name = "lag tie-breaks, NULL lag last",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .lag = 10},
              {"db2", U1 ":1-100", .lag = 3},
              {"db3", U1 ":1-100", .flags = NOLAG}},
     .chosen = "db2",
     .why = {{"db1", "2: "}, {"db3", "3: neutral, same dc, most advanced, lag unknown"}}},
    {.name = "NULL lag after any lag",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = NOLAG}, {"db2", U1 ":1-100", .lag = 1000}},
     .chosen = "db2"},
    {.name = "key is the final tie-break",
     .flavor = MY,
     .reps = {{"db3", U1 ":1-100"}, {"db1", U1 ":1-100"}, {"db2", U1 ":1-100"}},
     .chosen = "db1",
     .why = {{"db2", "2: "}, {"db3", "3: "}}},
    {.name = "newer series excluded",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.4.0"}, {"db2", U1 ":1-100", .version = "8.0.36"}},
     .chosen = "db2",
     .lost = "",
     .why = {{"db1", "excluded: 8.4 serves 8.0 replicas (db2:3306)"}}},
    {.name = "newer series most advanced cannot serve an older candidate",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.4.0"}, {"db2", U1 ":1-99", .version = "8.0.36"}},
     .reason = "db1:3306 cannot serve them: 8.4 cannot serve 8.0"},
    {.name = "same series, newer patch is fine",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.0.40", .lag = 5},
              {"db2", U1 ":1-100", .version = "8.0.36", .lag = 1}},
     .chosen = "db2"},
    {.name = "newer series cannot be promoted over an older must_not",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.0.36", .rule = 'M'},
              {"db2", U1 ":1-99", .version = "8.4.1"}},
     .reason = "no eligible replica",
     .why = {{"db2", "excluded: 8.4 serves 8.0 replicas (db1:3306)"}}},
    {.name = "newer series: the only replica",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.4.0"}},
     .chosen = "db1"},
    {.name = "newer series: the only fresh replica, the stale older one is lost",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.4.0"},
              {"db2", U1 ":1-100", .version = "8.0.36", .flags = STALE}},
     .chosen = "db1",
     .lost = "db2",
     .why = {{"db2", "lost: 8.0 cannot replicate from 8.4"}}},
    {.name = "Percona and MySQL are one flavor",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .version = "8.0.36-28-Percona"}, {"db2", U1 ":1-99"}},
     .chosen = "db1"},
    {.name = "errant GTIDs excluded and reported lost",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100," U2 ":1-5", .errant = U2 ":1-5"}, {"db2", U1 ":1-100"}},
     .chosen = "db2",
     .target = U1 ":1-100",
     .lost = "db1",
     .why = {{"db1", "excluded: errant GTIDs " U2 ":1-5"},
             {"db1", "lost: has 5 transactions the new master lacks: " U2 ":1-5"}}},
    {.name = "errant replica is no catch-up source",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100," U2 ":1-5", .errant = U2 ":1-5"}, {"db2", U1 ":1-99"}},
     .reason = "cannot reach 1 transaction db1:3306 received (db1:3306 cannot serve them: "
               "errant GTIDs)"},
    {.name = "errant transactions do not count as received",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100," U2 ":1-50", .errant = U2 ":1-50", .rule = 'M'},
              {"db2", U1 ":1-100"},
              {"db3", U1 ":1-100"}},
     .chosen = "db2",
     .lost = "db1",
     .why = {{"db1", "(most advanced)"}}},
    {.name = "diverged sets: refused",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100," U2 ":1-3"}, {"db2", U1 ":1-100," U3 ":1-2"}},
     .reason = "received GTID sets diverge: db1:3306 has 3 transactions db2:3306 lacks and "
               "db2:3306 has 2 db1:3306 lacks"},
    {.name = "diverged sets: forced",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100," U2 ":1-3"}, {"db2", U1 ":1-100," U3 ":1-2"}},
     .chosen = "db1",
     .source = "db2",
     .target = U1 ":1-100," U2 ":1-3," U3 ":1-2",
     .lost = "",
     .reason = "diverge",
     .why = {{"db2", "lacks 3 transactions other replicas received"}}},
    {.name = "diverged relay logs count too",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-90", U1 ":1-90:95"}, {"db2", U1 ":1-92"}},
     .reason = "diverge"},
    {.name = "semi-sync replica ahead of every candidate: refused",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = SEMI | NOLSU}, {"db2", U1 ":1-98"}},
     .reason = "semi-sync replica db1:3306 received 2 transactions the new master db2:3306 "
               "would lack (they may have been acknowledged to clients)"},
    {.name = "semi-sync status alone counts",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .flags = SEMIST | NOBIN}, {"db2", U1 ":1-98"}},
     .reason = "semi-sync replica db1:3306 received 2"},
    {.name = "semi-sync replica ahead: forced",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100", .flags = SEMI | NOLSU}, {"db2", U1 ":1-98"}},
     .chosen = "db2",
     .target = U1 ":1-98",
     .lost = "db1",
     .reason = "semi-sync replica db1:3306"},
    {.name = "semi-sync must_not ahead: the catch-up covers it",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'M', .flags = SEMI}, {"db2", U1 ":1-98"}},
     .chosen = "db2",
     .source = "db1",
     .target = U1 ":1-100",
     .lost = ""},
    {.name = "semi-sync replica stale: refused",
     .flavor = MY,
     .reps = {{"db1", NULL, .flags = SEMI | STALE}, {"db2", U1 ":1-100"}},
     .reason = "semi-sync replica db1:3306 did not answer the freeze"},
    {.name = "semi-sync replica stale: forced",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", NULL, .flags = SEMI | STALE}, {"db2", U1 ":1-100"}},
     .chosen = "db2",
     .lost = "",
     .reason = "did not answer the freeze",
     .why = {{"db1", "unknown: stale; repoint it when its agent is heard again"}}},
    {.name = "stale replica never chosen, its sets ignored",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-200", .rule = 'P', .flags = STALE}, {"db2", U1 ":1-100"}},
     .chosen = "db2",
     .target = U1 ":1-100",
     .lost = "",
     .why = {{"db1", "excluded: stale (its agent did not answer the freeze)"}}},
    {.name = "all stale: refused",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100", .flags = STALE}, {"db2", U1 ":1-100", .flags = STALE}},
     .reason = "no replica answered the freeze (all stale)"},
    {.name = "every replica excluded: refused",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", U1 ":1-100", .rule = 'M'}, {"db2", U1 ":1-100", .flags = NOLSU}},
     .reason = "no eligible replica",
     .why = {{"db1", "excluded: must_not"}}},
    {.name = "several exclusion reasons are all given",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'M', .flags = NOBIN, .errant = U2 ":1"},
              {"db2", U1 ":1-100"}},
     .chosen = "db2",
     .why = {{"db1", "excluded: must_not; no binary log; errant GTIDs " U2 ":1"}}},
    {.name = "mixed flavors: refused",
     .flavor = MY,
     .force = true,
     .reps = {{"db1", "0-1-100", .version = "10.11.6-MariaDB"}, {"db2", U1 ":1-100"}},
     .reason = "the replicas mix flavors: db1:3306 is mariadb, db2:3306 is mysql",
     .why = {{"db2", "excluded: the cluster mixes flavors"}}},
    {.name = "mixed flavors count stale replicas",
     .flavor = MY,
     .reps = {{"db1", "0-1-100", .version = "10.11.6-MariaDB", .flags = STALE},
              {"db2", U1 ":1-100"}},
     .reason = "mix flavors"},
    {.name = "empty sets everywhere: a fresh cluster",
     .flavor = MY,
     .reps = {{"db1", ""}, {"db2", "", .rule = 'P'}},
     .chosen = "db2",
     .target = "",
     .lost = ""},
    {.name = "empty received set (IO thread restarted): executed counts",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", ""}, {"db2", U1 ":1-99", .rule = 'P'}},
     .chosen = "db2",
     .source = "db1",
     .target = U1 ":1-100"},
    {.name = "five replicas, a full plan",
     .flavor = MY,
     .reps = {{"db1", U1 ":1-100", .rule = 'M', .dc = "dc2"},
              {"db2", U1 ":1-97", .rule = 'P', .dc = "dc2", .lag = 1},
              {"db3", U1 ":1-99", .rule = 'P', .lag = 4},
              {"db4", U1 ":1-100," U2 ":1", .errant = U2 ":1"},
              {"db5", U1 ":1-100", .version = "8.4.0"}},
     .chosen = "db3",
     .source = "db1",
     .target = U1 ":1-100",
     .lost = "db4",
     .why = {{"db2", "2: prefer, same region"}, {"db5", "excluded: 8.4 serves 8.0 replicas"}}},
};

/* ---- MariaDB ------------------------------------------------------------------------ */

static const tcase mariadb_cases[] = {
    /* an operator's designated replica (recover with a candidate, force-master-takeover) */
    {.name = "designated: chosen over a better ranked one",
     .flavor = MA,
     .designated = "db2",
     .reps = {{"db1", "0-1-100", .rule = 'P'}, {"db2", "0-1-100"}, {"db3", "0-1-100"}},
     .chosen = "db2",
     .target = "0-1-100",
     .lost = ""},
    {.name = "designated behind: catches up from the most advanced first",
     .flavor = MA,
     .designated = "db3",
     .reps = {{"db1", "0-1-100"}, {"db2", "0-1-99"}, {"db3", "0-1-90"}},
     .chosen = "db3",
     .source = "db1",
     .target = "0-1-100",
     .lost = ""},
    {.name = "designated must_not: refused, no other chosen in its place",
     .flavor = MA,
     .designated = "db2",
     .reps = {{"db1", "0-1-100"}, {"db2", "0-1-100", .rule = 'M'}},
     .reason = "the designated replica db2:3306 is excluded: must_not"},
    {.name = "designated without binlogs: refused",
     .flavor = MA,
     .designated = "db2",
     .reps = {{"db1", "0-1-100"}, {"db2", "0-1-100", .flags = NOBIN}},
     .reason = "the designated replica db2:3306 is excluded"},
    {.name = "designated stale: refused",
     .flavor = MA,
     .designated = "db2",
     .reps = {{"db1", "0-1-100"}, {"db2", NULL, .flags = STALE}},
     .reason = "the designated replica db2:3306 did not answer the freeze"},
    {.name = "designated not a replica: refused",
     .flavor = MA,
     .designated = "db9",
     .reps = {{"db1", "0-1-100"}, {"db2", "0-1-100"}},
     .reason = "the designated replica db9:3306 is not a replica of the failed master"},
    {.name = "mariadb single replica",
     .flavor = MA,
     .reps = {{"db1", "0-1-100"}},
     .chosen = "db1",
     .target = "0-1-100",
     .lost = ""},
    {.name = "mariadb most received (Gtid_IO_Pos) wins over most executed",
     .flavor = MA,
     .reps = {{"db1", "0-1-90", "0-1-100"}, {"db2", "0-1-95"}},
     .chosen = "db1",
     .target = "0-1-100",
     .why = {{"db2", "behind the most advanced by 5 transactions"}}},
    {.name = "mariadb prefer catches up",
     .flavor = MA,
     .reps = {{"db1", "0-1-100"}, {"db2", "0-1-97", .rule = 'P'}},
     .chosen = "db2",
     .source = "db1",
     .target = "0-1-100",
     .lost = ""},
    {.name = "mariadb two domains",
     .flavor = MA,
     .reps = {{"db1", "0-1-100,1-2-50"}, {"db2", "0-1-100,1-2-40", .rule = 'P'}},
     .chosen = "db2",
     .source = "db1",
     .target = "0-1-100,1-2-50"},
    {.name = "mariadb positions after an old failover",
     .flavor = MA,
     .reps = {{"db1", "0-1-50,0-3-100", .lag = 7}, {"db2", "0-3-100", .lag = 2}},
     .chosen = "db2",
     .lost = ""},
    {.name = "mariadb must_not most advanced serves the catch-up",
     .flavor = MA,
     .reps = {{"db1", "0-1-100", .rule = 'M'}, {"db2", "0-1-99"}},
     .chosen = "db2",
     .source = "db1",
     .target = "0-1-100"},
    {.name = "mariadb errant in a domain of its own",
     .flavor = MA,
     .reps = {{"db1", "0-1-100,9-5-3", .errant = "9-5-3"}, {"db2", "0-1-100"}},
     .chosen = "db2",
     .lost = "db1",
     .why = {{"db1", "excluded: errant GTIDs 9-5-3"},
             {"db1", "lost: has 3 transactions the new master lacks: 9-5-3"}}},
    {.name = "mariadb diverged domains: refused",
     .flavor = MA,
     .reps = {{"db1", "0-1-100,1-2-5"}, {"db2", "0-1-100,2-3-5"}},
     .reason = "diverge"},
    {.name = "mariadb newer series excluded",
     .flavor = MA,
     .reps = {{"db1", "0-1-100", .version = "10.11.6-MariaDB"},
              {"db2", "0-1-100", .version = "10.6.16-MariaDB"}},
     .chosen = "db2",
     .why = {{"db1", "excluded: 10.11 serves 10.6 replicas (db2:3306)"}}},
    {.name = "mariadb semi-sync replica without binlog ahead: refused",
     .flavor = MA,
     .reps = {{"db1", "0-1-100", .flags = SEMI | NOBIN}, {"db2", "0-1-96"}},
     .reason = "semi-sync replica db1:3306 received 4 transactions"},
    {.name = "mariadb no binary logs anywhere",
     .flavor = MA,
     .reps = {{"db1", "0-1-100", .flags = NOBIN}, {"db2", "0-1-100", .flags = NOBIN}},
     .reason = "no replica has binary logs"},
    {.name = "mariadb only prefer_not eligible",
     .flavor = MA,
     .reps = {{"db1", "0-1-100", .rule = 'X'}, {"db2", "0-1-100", .flags = NOLSU}},
     .chosen = "db1"},
    {.name = "mariadb downtimed only if nothing else",
     .flavor = MA,
     .reps = {{"db1", "0-1-100", .flags = DOWN}, {"db2", "0-1-100", .dc = "dc7"}},
     .chosen = "db2"},
    {.name = "mariadb mixed with MySQL: refused",
     .flavor = MA,
     .reps = {{"db1", "0-1-100"}, {"db2", U1 ":1-100", .version = "8.0.36"}},
     .reason = "mix flavors"},
};

static void test_mysql_table(void **state)
{
    (void)state;
    run_table(mysql_cases, ARRAY(mysql_cases));
}

static void test_mariadb_table(void **state)
{
    (void)state;
    run_table(mariadb_cases, ARRAY(mariadb_cases));
}

/* Every order of five replicas gives the same decision and ranking. */
static void test_all_orders(void **state)
{
    (void)state;
    const tcase *tc = &mysql_cases[ARRAY(mysql_cases) - 1];
    built b;
    build(tc, &b);
    assert_int_equal(b.n, 5);
    char *first = NULL;
    size_t perm[5] = {0, 1, 2, 3, 4}, count = 0;
    /* Heap's algorithm, iterative. */
    size_t cnt[5] = {0};
    first = run_order(tc, &b, perm);
    count++;
    for (size_t i = 1; i < 5;) {
        if (cnt[i] < i) {
            size_t j = i % 2 == 0 ? 0 : cnt[i];
            size_t t = perm[j];
            perm[j] = perm[i];
            perm[i] = t;
            char *d = run_order(tc, &b, perm);
            if (strcmp(first, d) != 0)
                fail_msg("order shows:\n%s\n---\n%s", first, d);
            free(d);
            count++;
            cnt[i]++;
            i = 1;
        } else {
            cnt[i] = 0;
            i++;
        }
    }
    assert_int_equal(count, 120);
    free(first);
    built_fini(&b);
}

static void test_zero_replicas(void **state)
{
    (void)state;
    candidate_result r;
    candidate_params p = {.force = true};
    assert_int_equal(candidate_choose(NULL, 0, &p, &r), ORCH_OK);
    assert_true(r.refused);
    assert_non_null(strstr(r.reason, "no replicas"));
    assert_true(r.chosen == CANDIDATE_NONE);
    assert_int_equal(r.n_ranking, 0);
    candidate_result_fini(&r);
}

static void test_bad_input(void **state)
{
    (void)state;
    orch_gtid_set *my = must_parse(MY, U1 ":1-10");
    orch_gtid_set *ma = must_parse(MA, "0-1-10");
    candidate_input in[2] = {
        {.key = "db1:3306", .executed = my, .fresh = true, .log_bin = true},
        {.key = "db2:3306", .executed = my, .fresh = true, .log_bin = true},
    };
    char msg[64];
    assert_int_equal(orch_version_parse("8.0.36", NULL, &in[0].version, msg, sizeof(msg)), ORCH_OK);
    in[1].version = in[0].version;
    candidate_result r;

    assert_int_equal(candidate_choose(in, 2, NULL, NULL), ORCH_ERR_INVAL);
    assert_int_equal(candidate_choose(NULL, 1, NULL, &r), ORCH_ERR_INVAL);
    candidate_result_fini(&r);
    assert_int_equal(candidate_choose(in, CANDIDATE_MAX_REPLICAS + 1, NULL, &r), ORCH_ERR_TOOBIG);
    candidate_result_fini(&r);

    in[1].key = "db1:3306"; /* duplicate */
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_ERR_INVAL);
    assert_null(r.ranking);
    candidate_result_fini(&r);
    in[1].key = NULL;
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_ERR_INVAL);
    candidate_result_fini(&r);
    in[1].key = "db2:3306";

    in[1].executed = NULL; /* fresh without executed */
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_ERR_INVAL);
    candidate_result_fini(&r);
    in[1].fresh = false; /* stale: fine */
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_OK);
    candidate_result_fini(&r);
    in[1].fresh = true;
    in[1].executed = my;

    in[1].received = ma; /* sets of two flavors on one replica */
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_ERR_INVAL);
    candidate_result_fini(&r);
    in[1].received = NULL;
    in[1].executed = ma; /* MySQL server with MariaDB sets */
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_ERR_INVAL);
    candidate_result_fini(&r);
    in[1].executed = my;

    /* NULL params: nothing known, no force; log_slave_updates off everywhere. */
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_OK);
    assert_true(r.refused);
    assert_non_null(strstr(r.reason, "no replica has binary logs"));
    candidate_result_fini(&r);
    candidate_result_fini(NULL);

    orch_gtid_set_free(my);
    orch_gtid_set_free(ma);
}

/* A version the caller could not parse: the replica is excluded, not compared. */
static void test_unknown_version(void **state)
{
    (void)state;
    orch_gtid_set *s = must_parse(MY, U1 ":1-10");
    candidate_input in[2] = {
        {.key = "db1:3306",
         .executed = s,
         .fresh = true,
         .log_bin = true,
         .log_slave_updates = true,
         .rule = CANDIDATE_PREFER},
        {.key = "db2:3306",
         .executed = s,
         .fresh = true,
         .log_bin = true,
         .log_slave_updates = true,
         .rule = CANDIDATE_NEUTRAL},
    };
    char msg[64];
    assert_int_equal(orch_version_parse("8.4.0", NULL, &in[1].version, msg, sizeof(msg)), ORCH_OK);
    candidate_result r;
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_OK);
    assert_false(r.refused);
    assert_int_equal(r.chosen, 1);
    assert_non_null(strstr(r.ranking[1].why, "excluded: unknown server version"));
    candidate_result_fini(&r);

    /* A promotion rule outside the enum cannot be ranked: excluded. */
    in[0].version = in[1].version;
    in[0].rule = (candidate_rule)42;
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_OK);
    assert_int_equal(r.chosen, 1);
    assert_non_null(strstr(r.ranking[1].why, "excluded: unknown promotion rule 42"));
    candidate_result_fini(&r);
    orch_gtid_set_free(s);
}

/* Texts stay bounded and terminated with long keys and long sets. */
static void test_long_texts(void **state)
{
    (void)state;
    char big[4096] = U1 ":1";
    for (int i = 3; i < 400; i += 2) {
        size_t len = strlen(big);
        snprintf(big + len, sizeof(big) - len, ":%d", i);
    }
    orch_gtid_set *ex = must_parse(MY, big);
    orch_gtid_set *ok = must_parse(MY, U1 ":1-500");
    orch_gtid_set *er = must_parse(MY, big);
    char key1[300], key2[300];
    memset(key1, 'a', sizeof(key1) - 6);
    memcpy(key1 + sizeof(key1) - 6, ":3306", 6);
    memcpy(key2, key1, sizeof(key2));
    key2[0] = 'b';
    candidate_input in[2] = {
        {.key = key1,
         .executed = ex,
         .errant = er,
         .fresh = true,
         .log_bin = true,
         .log_slave_updates = true,
         .semi_sync_enabled = true},
        {.key = key2, .executed = ok, .fresh = true, .log_bin = true, .log_slave_updates = true},
    };
    char msg[64];
    assert_int_equal(orch_version_parse("8.0.36", NULL, &in[0].version, msg, sizeof(msg)), ORCH_OK);
    in[1].version = in[0].version;
    candidate_result r;
    assert_int_equal(candidate_choose(in, 2, NULL, &r), ORCH_OK);
    assert_false(r.refused);
    assert_int_equal(r.chosen, 1);
    assert_int_equal(r.n_lost, 0); /* its executed set is within 1-500 */
    for (size_t i = 0; i < r.n_ranking; i++) {
        assert_true(strlen(r.ranking[i].why) < CANDIDATE_WHY_MAX);
        assert_true(strlen(r.ranking[i].follow_why) < CANDIDATE_WHY_MAX);
    }
    candidate_result_fini(&r);
    orch_gtid_set_free(ex);
    orch_gtid_set_free(ok);
    orch_gtid_set_free(er);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(candidate_rule_name(CANDIDATE_PREFER), "prefer");
    assert_string_equal(candidate_rule_name(CANDIDATE_NEUTRAL), "neutral");
    assert_string_equal(candidate_rule_name(CANDIDATE_PREFER_NOT), "prefer_not");
    assert_string_equal(candidate_rule_name(CANDIDATE_MUST_NOT), "must_not");
    assert_string_equal(candidate_rule_name((candidate_rule)42), "unknown");
    assert_string_equal(candidate_follow_name(CANDIDATE_FOLLOW_LOST), "lost");
    assert_string_equal(candidate_follow_name(CANDIDATE_FOLLOW_OK), "follows");
    assert_string_equal(candidate_follow_name((candidate_follow)42), "unknown");
}

static int report(void **state)
{
    (void)state;
    printf("candidate: %zu table rows, each in 3 input orders\n", n_rows);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mysql_table), cmocka_unit_test(test_mariadb_table),
        cmocka_unit_test(test_all_orders),  cmocka_unit_test(test_zero_replicas),
        cmocka_unit_test(test_bad_input),   cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_long_texts),  cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
