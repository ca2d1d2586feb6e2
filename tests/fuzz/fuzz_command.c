/*
 * fuzz_command.c: fuzz target for what orch-agent does with a command request
 * before it touches the server.
 *
 * The steps mirror agent.c's handle_request() and execute(), in order, with the
 * same early exits: orch_wire_open, the envelope kind and host checks,
 * orch_wire_verify under the agent's key, orch__command__unpack and the
 * protocol version, the target host, fence_check (the epoch rule, against a
 * fresh fence state per input so that a crash reproduces from its input alone),
 * then the pure part of execution: the WaitForGtid and SetReadOnly argument
 * checks, orch_gtid_set_parse for both flavors, and cmd_plan_build for MariaDB
 * 10.11, MySQL 8.4 and MySQL 8.0.22 (the pre-8.0.23 CHANGE MASTER syntax),
 * followed by cmd_plan_fini.
 *
 * Besides "no crash, no leak, no UB" it checks properties and abort()s when one
 * fails, so that the fuzzer reports it like a crash:
 *   - every statement of a plan is one of the verbs commands.c may produce,
 *     every quoted literal is closed, and outside literals there is nothing that
 *     could end or comment out the statement (; # -- / * backslash backtick ");
 *     inside literals no backslash (MariaDB's default sql_mode treats it as an
 *     escape), so no Command field can inject SQL;
 *   - the WaitForGtid statement the agent would build passes the same check;
 *   - a parsed GTID set formats to text that parses back to an equal set;
 *   - an accepted (epoch, id) is a replay right after fence_accept.
 *
 * The input format (first byte: raw request or Command body to seal) is in
 * fuzz_command.h. Built two ways (tests/fuzz/README.md): with libFuzzer
 * (clang, -DORCH_FUZZ=ON) and as fuzz_command_replay with replay_main.c.
 */
#include "fuzz_command.h"

#include "commands.h"
#include "fence.h"
#include "gtid.h"
#include "version.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The agent's fence state before each input: epoch 5, ids 1..3 seen. */
#define FUZZ_FENCE_EPOCH 5

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_command: property violated: %s: %s\n", what, detail ? detail : "");
    abort();
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * The SQL property: a statement commands.c built from Command fields cannot do
 * anything but what its verb says.
 */
static void check_sql(const char *sql)
{
    static const char *const verbs[] = {
        "STOP SLAVE",
        "STOP REPLICA",
        "START SLAVE",
        "START REPLICA",
        "RESET SLAVE",
        "RESET REPLICA ALL",
        "CHANGE MASTER",
        "CHANGE REPLICATION SOURCE TO ",
        "SET GLOBAL rpl_semi_sync_",
        "SELECT MASTER_GTID_WAIT('",
        "SELECT WAIT_FOR_EXECUTED_GTID_SET('",
    };
    bool verb_ok = false;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        verb_ok = verb_ok || starts_with(sql, verbs[i]);
    if (!verb_ok)
        fail("statement with an unexpected verb", sql);

    bool quoted = false;
    for (const char *p = sql; *p; p++) {
        if (quoted) {
            if (*p == '\\')
                fail("backslash inside a literal", sql);
            if (*p == '\'') {
                if (p[1] == '\'')
                    p++; /* '' is a quote inside the literal */
                else
                    quoted = false;
            }
            continue;
        }
        if (*p == '\'') {
            quoted = true;
        } else if (*p == ';' || *p == '#' || *p == '\\' || *p == '`' || *p == '"' ||
                   (p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*') ||
                   (unsigned char)*p < 0x20) {
            fail("statement terminator, comment or control character outside a literal", sql);
        }
    }
    if (quoted)
        fail("unterminated literal", sql);
}

/* Parses text, and checks that its canonical form parses back to the same set. */
static void gtid_roundtrip(orch_gtid_flavor flavor, const char *text)
{
    char msg[400];
    orch_gtid_set *set = NULL, *again = NULL;
    if (orch_gtid_set_parse(flavor, text, &set, msg, sizeof(msg)) != ORCH_OK)
        return;
    char *canon = orch_gtid_set_format(set);
    if (canon == NULL) {
        orch_gtid_set_free(set);
        return; /* out of memory */
    }
    if (orch_gtid_set_parse(flavor, canon, &again, msg, sizeof(msg)) != ORCH_OK)
        fail("canonical GTID text does not parse", canon);
    if (orch_gtid_set_compare(set, again) != ORCH_GTID_EQUAL)
        fail("canonical GTID text parses to another set", canon);
    orch_gtid_set_free(again);
    orch_gtid_set_free(set);
    free(canon);
}

/* execute() and cmd_execute() for WaitForGtid, up to the query. */
static void wait_for_gtid(const Orch__Command *c, const orch_version *v)
{
    if (!c->has_timeout_ms || c->timeout_ms > 3600000 || c->gtid_set == NULL)
        return; /* BAD_REQUEST */
    bool mysql = v->flavor == ORCH_FLAVOR_MYSQL || v->flavor == ORCH_FLAVOR_PERCONA;
    orch_gtid_flavor fl = mysql ? ORCH_GTID_MYSQL : ORCH_GTID_MARIADB;
    char msg[400];
    orch_gtid_set *set = NULL;
    if (orch_gtid_set_parse(fl, c->gtid_set, &set, msg, sizeof(msg)) != ORCH_OK)
        return; /* BAD_REQUEST */
    orch_gtid_set_free(set);
    static char sql[8192];
    double secs = c->timeout_ms / 1000.0;
    int n = mysql ? snprintf(sql, sizeof(sql), "SELECT WAIT_FOR_EXECUTED_GTID_SET('%s', %.3f)",
                             c->gtid_set, secs)
                  : snprintf(sql, sizeof(sql), "SELECT MASTER_GTID_WAIT('%s', %.3f)", c->gtid_set,
                             secs);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return; /* BAD_REQUEST: too long */
    check_sql(sql);
}

static void plan_for(const Orch__Command *c, const orch_version *v)
{
    /* A password with a quote: the fallback quoting (no connection) doubles it. */
    static const cmd_credentials cred = {.user = "repl", .password = "pw'x"};
    cmd_plan plan = {0};
    char msg[400];
    orch_err err = cmd_plan_build(c, v, &cred, NULL, &plan, msg, sizeof(msg));
    if (err == ORCH_OK) {
        if (plan.n > CMD_PLAN_MAX)
            fail("plan longer than CMD_PLAN_MAX", cmd_type_name(c->type));
        for (size_t i = 0; i < plan.n; i++) {
            if (plan.sql[i] == NULL)
                fail("NULL statement in a plan", cmd_type_name(c->type));
            check_sql(plan.sql[i]);
        }
    } else if (plan.n != 0) {
        fail("failed cmd_plan_build left statements in *out", msg);
    }
    cmd_plan_fini(&plan);
}

/*
 * Everything execute() does before it needs a connection. cmd_plan_build runs
 * for every type, also those execute() never gives it (Ping, ReportNow, Fence,
 * WaitForGtid, SetReadOnly): it is a public function and must cope.
 */
static void validate(const Orch__Command *c)
{
    static const orch_version versions[] = {
        {.major = 10, .minor = 11, .patch = 6, .flavor = ORCH_FLAVOR_MARIADB},
        {.major = 8, .minor = 4, .patch = 3, .flavor = ORCH_FLAVOR_MYSQL},
        {.major = 8, .minor = 0, .patch = 22, .flavor = ORCH_FLAVOR_MYSQL},
    };
    (void)cmd_type_name(c->type);
    if (c->type == ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID && c->gtid_set != NULL) {
        gtid_roundtrip(ORCH_GTID_MARIADB, c->gtid_set);
        gtid_roundtrip(ORCH_GTID_MYSQL, c->gtid_set);
    }
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (c->type == ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID)
            wait_for_gtid(c, &versions[i]);
        plan_for(c, &versions[i]);
    }
}

/* handle_request(), from the bytes on the socket to the decision to execute. */
static void handle_request(const uint8_t *buf, size_t len, const orch_hmac_key *key)
{
    char msg[400], err[600];
    Orch__Envelope *env = NULL;
    Orch__Command *c = NULL;

    if (orch_wire_open(buf, len, &env, msg, sizeof(msg)) != ORCH_OK)
        return;
    if (env->kind != ORCH__ENVELOPE__KIND__COMMAND)
        goto out;
    if (strcmp(env->host, FUZZ_HOST) != 0) {
        snprintf(err, sizeof(err), "command signed for host '%.200s', this is '%.200s'", env->host,
                 FUZZ_HOST);
        goto out;
    }
    if (orch_wire_verify(env, key) != ORCH_OK)
        goto out;
    c = orch__command__unpack(NULL, env->body.len, env->body.data);
    if (c == NULL || c->protocol_version != ORCH_PROTOCOL_VERSION)
        goto out;
    if (c->target_host == NULL)
        fail("unpacked Command without its required target_host", NULL);
    if (strcmp(c->target_host, FUZZ_HOST) != 0) {
        snprintf(err, sizeof(err), "command for '%.200s' reached '%.200s'", c->target_host,
                 FUZZ_HOST);
        goto out;
    }

    /* admit(): the epoch rule. */
    fence_state st = {.epoch = FUZZ_FENCE_EPOCH, .seen = {1, 2, 3}, .nseen = 3, .next_slot = 3};
    fence_verdict v = fence_check(&st, c->epoch, c->command_id);
    (void)fence_verdict_name(v);
    if (v == FENCE_STALE_EPOCH || v == FENCE_REPLAY)
        goto out;
    fence_accept(&st, c->epoch, c->command_id);
    if (fence_check(&st, c->epoch, c->command_id) != FENCE_REPLAY)
        fail("an accepted command is not a replay right after", fence_verdict_name(v));

    validate(c);
out:
    if (c != NULL)
        orch__command__free_unpacked(c, NULL);
    orch__envelope__free_unpacked(env, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    orch_hmac_key key;
    fuzz_command_key(&key);
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if ((mode & 1) == FUZZ_MODE_RAW) {
        handle_request(data, size, &key);
        return 0;
    }
    /* Sealed: the rest is a Command body; wrap it as a (mostly) valid request. */
    unsigned variant = (mode >> 1) & 7;
    Orch__Envelope__Kind kind =
        variant == 6 ? ORCH__ENVELOPE__KIND__REPORT : ORCH__ENVELOPE__KIND__COMMAND;
    const char *signer = variant == 7 ? FUZZ_OTHER_HOST : FUZZ_HOST;
    uint8_t *env = NULL;
    size_t env_len = 0;
    if (orch_wire_seal(kind, signer, &key, size ? data : NULL, size, &env, &env_len) != ORCH_OK)
        return 0; /* larger than ORCH_WIRE_MAX */
    handle_request(env, env_len, &key);
    free(env);
    return 0;
}
