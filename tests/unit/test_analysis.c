/*
 * Unit tests for analysis.c: tables of topologies built from hand-made agent
 * reports applied through registry_apply, each with the findings expected
 * (code, recoverable, direct check wanted, structure warnings); then the
 * descriptions, counts, warm-up, downtime, the direct-check callback, errant
 * GTID sets of both flavors, and a large fleet (time printed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "analysis.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define GRACE      30000
#define START      1000000                  /* the coordinator's start (monotonic) */
#define NOW        (START + 60000)          /* when the analysis runs */
#define WALL       ((int64_t)1700000000000) /* wall clock at NOW */
#define STALE_AT   (START + 1000)           /* when stale agents last reported */

/*
 * One agent's report, compactly. Zero values are the defaults:
 *   st    agent state: 'U' UP (default), 'D' DOWN, 'H' UNRESPONSIVE, 'A' AUTH_ERROR, '?' UNKNOWN
 *   io    'Y' running (default with a master), 'N' stopped, 'C' connecting
 *   err   last_io_errno (a matching text is made up: 2003 "error connecting to master ...")
 *   wit   witness: 'G' greeting (default with a master), 'R' refused, 'T' timeout,
 *         'E' error, '-' not checked
 *   keep  a report that is not UP still carries server status and channels
 */
typedef struct sp {
    const char *name;
    const char *master;
    char st, io, wit, rw; /* rw: 0 default (writable without master), 'w', 'r' */
    unsigned err;
    const char *errtext;
    bool stale, downtimed, maint, keep, nobin, nolsu, mysql, sql_stopped;
    const char *fmt, *version, *gtid, *retr, *mode, *uuid, *using_gtid;
    int lag; /* seconds behind master; -1: NULL */
    unsigned delay;
    char semi; /* 'L': enabled, ON, no client; 'O': enabled, OFF, no client; 'K': fine */
    int promo; /* 0 absent, else rule + 1 */
} sp;

static uint64_t seq;

static Orch__InstanceReport *build(const sp *s)
{
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    Orch__ServerStatus srv = ORCH__SERVER_STATUS__INIT;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    Orch__Channel *chp[1] = {&ch};
    uint8_t boot[ORCH_BOOT_ID_LEN];
    char errtext[200];

    memset(boot, 7, sizeof(boot));
    r.protocol_version = ORCH_PROTOCOL_VERSION;
    r.boot_id.data = boot;
    r.boot_id.len = sizeof(boot);
    r.seq = ++seq;
    r.sent_at_ms = 1000 + (int64_t)r.seq;
    r.host = (char *)s->name;
    r.port = 3306;
    switch (s->st) {
    case 'D':
        r.state = ORCH__PROBE_STATE__PROBE_DOWN;
        r.probe_error = (char *)"(2002) Can't connect to local server through socket";
        break;
    case 'H':
        r.state = ORCH__PROBE_STATE__PROBE_UNRESPONSIVE;
        r.probe_error = (char *)"no answer from the local server within 1000 ms";
        break;
    case 'A':
        r.state = ORCH__PROBE_STATE__PROBE_AUTH_ERROR;
        r.probe_error = (char *)"(1045) Access denied";
        break;
    case '?':
        r.state = ORCH__PROBE_STATE__PROBE_UNKNOWN;
        break;
    default:
        r.state = ORCH__PROBE_STATE__PROBE_UP;
        break;
    }
    if (s->promo > 0) {
        r.has_promotion_rule = true;
        r.promotion_rule = (Orch__PromotionRule)(s->promo - 1);
    }
    bool detail = r.state == ORCH__PROBE_STATE__PROBE_UP || s->keep;
    if (detail) {
        srv.has_flavor = true;
        srv.flavor = s->mysql ? ORCH__FLAVOR__FLAVOR_MYSQL : ORCH__FLAVOR__FLAVOR_MARIADB;
        srv.version =
            (char *)(s->version ? s->version : (s->mysql ? "8.0.36" : "10.11.6-MariaDB-log"));
        srv.has_read_only = true;
        srv.read_only = s->rw ? s->rw == 'r' : s->master != NULL;
        srv.has_log_bin = true;
        srv.log_bin = !s->nobin;
        srv.has_log_slave_updates = true;
        srv.log_slave_updates = !s->nolsu;
        srv.binlog_format = (char *)(s->fmt ? s->fmt : "ROW");
        if (s->mysql) {
            srv.gtid_mode = (char *)(s->mode ? s->mode : "ON");
            srv.gtid_executed = (char *)s->gtid;
            srv.server_uuid = (char *)s->uuid;
        } else {
            srv.gtid_binlog_pos = (char *)s->gtid;
            srv.gtid_current_pos = (char *)s->gtid;
        }
        if (s->semi) {
            srv.has_semi_sync_master_enabled = true;
            srv.semi_sync_master_enabled = true;
            srv.has_semi_sync_master_status = true;
            srv.semi_sync_master_status = s->semi != 'O';
            srv.has_semi_sync_master_clients = true;
            srv.semi_sync_master_clients = s->semi == 'K' ? 2 : 0;
        }
        r.server = &srv;
    }
    if (s->master != NULL && detail) {
        ch.master_host = (char *)s->master;
        ch.has_master_port = true;
        ch.master_port = 3306;
        ch.has_io_thread = true;
        ch.io_thread = s->io == 'N'   ? ORCH__THREAD_STATE__THREAD_NO
                       : s->io == 'C' ? ORCH__THREAD_STATE__THREAD_CONNECTING
                                      : ORCH__THREAD_STATE__THREAD_YES;
        ch.has_sql_thread = true;
        ch.sql_thread =
            s->sql_stopped ? ORCH__THREAD_STATE__THREAD_NO : ORCH__THREAD_STATE__THREAD_YES;
        if (s->err) {
            ch.has_last_io_errno = true;
            ch.last_io_errno = s->err;
            if (s->errtext == NULL)
                snprintf(errtext, sizeof(errtext),
                         "error connecting to master 'repl@%s:3306' - retry-time: 1", s->master);
            else
                snprintf(errtext, sizeof(errtext), "%s", s->errtext);
            ch.last_io_error = errtext;
        }
        if (s->wit != '-') {
            ch.has_witness = true;
            ch.witness = s->wit == 'R'   ? ORCH__WITNESS_RESULT__WITNESS_REFUSED
                         : s->wit == 'T' ? ORCH__WITNESS_RESULT__WITNESS_TIMEOUT
                         : s->wit == 'E' ? ORCH__WITNESS_RESULT__WITNESS_ERROR
                                         : ORCH__WITNESS_RESULT__WITNESS_GREETING;
            ch.has_witness_ms = true;
            ch.witness_ms = s->wit == 'T' ? 1000 : 1;
            if (s->wit == 'R')
                ch.witness_error = (char *)"connect: Connection refused";
            else if (s->wit == 'T')
                ch.witness_error = (char *)"no greeting within 1000 ms";
        }
        if (s->lag >= 0 && ch.io_thread == ORCH__THREAD_STATE__THREAD_YES) {
            ch.has_seconds_behind_master = true;
            ch.seconds_behind_master = s->lag;
        }
        if (s->delay) {
            ch.has_sql_delay = true;
            ch.sql_delay = s->delay;
        }
        ch.using_gtid = (char *)(s->using_gtid ? s->using_gtid : (s->mysql ? NULL : "Slave_Pos"));
        ch.retrieved_gtid_set = (char *)s->retr;
        r.channels = chp;
        r.n_channels = 1;
    }
    size_t len = orch__instance_report__get_packed_size(&r);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(orch__instance_report__pack(&r, buf), len);
    Orch__InstanceReport *out = orch__instance_report__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static void key_of(const char *name, orch_key *k)
{
    assert_int_equal(orch_key_make(name, 3306, k, NULL, 0), ORCH_OK);
}

/* A registry holding the specs (until name NULL), with their operator state. */
static registry *make(const sp *specs, size_t n, int64_t started)
{
    registry *r = registry_new(started);
    assert_non_null(r);
    reg_operator_row rows[16];
    size_t nrows = 0;
    for (size_t i = 0; i < n && specs[i].name != NULL; i++) {
        const sp *s = &specs[i];
        char msg[256] = "";
        int64_t at = s->stale ? STALE_AT : NOW - 100;
        reg_verdict v =
            registry_apply(r, build(s), at, WALL - (NOW - at), GRACE, NULL, msg, sizeof(msg));
        if (v != REG_ACCEPTED)
            fail_msg("report of %s: %s (%s)", s->name, reg_verdict_name(v), msg);
        if (s->downtimed || s->maint) {
            assert_true(nrows < N_ELEMS(rows));
            reg_operator_row *row = &rows[nrows++];
            memset(row, 0, sizeof(*row));
            key_of(s->name, &row->key);
            row->op.promotion_override = -1;
            if (s->downtimed)
                row->op.downtime_until_ms = WALL + 3600000;
            if (s->maint)
                row->op.maintenance_until_ms = WALL + 600000;
        }
    }
    if (nrows > 0)
        assert_int_equal(registry_set_operator_state(r, rows, nrows, NULL, 0), ORCH_OK);
    registry_refresh(r);
    return r;
}

/* The caller's direct checks, by host. */
typedef struct dc {
    const char *name;
    analysis_direct_state state;
    Orch__ProbeState answered;
} dc;

typedef struct dc_table {
    const dc *v;
    size_t n;
    unsigned calls;
} dc_table;

static analysis_direct direct_cb(void *arg, const reg_instance *inst)
{
    dc_table *t = arg;
    analysis_direct d = {ANALYSIS_DIRECT_NONE, ORCH__PROBE_STATE__PROBE_UNKNOWN};
    t->calls++;
    for (size_t i = 0; i < t->n && t->v[i].name != NULL; i++)
        if (strcmp(t->v[i].name, inst->key.host) == 0) {
            d.state = t->v[i].state;
            d.answered = t->v[i].answered;
        }
    return d;
}

static analysis_config config(void)
{
    analysis_config c;
    analysis_config_init(&c);
    return c;
}

static analysis_result *run(registry *r, const analysis_config *cfg, dc_table *t)
{
    analysis_result *res = NULL;
    char msg[256] = "";
    orch_err err = analysis_run(r, cfg, t ? direct_cb : NULL, t, NOW, WALL, &res, msg, sizeof(msg));
    if (err != ORCH_OK)
        fail_msg("analysis_run: %s (%s)", orch_strerror(err), msg);
    assert_non_null(res);
    return res;
}

/* "host Code[ recoverable][ direct][ +Structure...]" ("StructureWarning" left out). */
static void summarize(const analysis_entry *e, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "%s %s%s%s", e->key.host, analysis_code_name(e->code),
                                  e->recoverable ? " recoverable" : "",
                                  e->direct_check_wanted ? " direct" : "");
    for (unsigned k = 0; k < ANALYSIS_ST__COUNT && off < len; k++) {
        if (!(e->structure & (1u << k)))
            continue;
        char name[80];
        snprintf(name, sizeof(name), "%s", analysis_structure_name(1u << k));
        char *cut = strstr(name, "StructureWarning");
        if (cut != NULL)
            *cut = '\0';
        off += (size_t)snprintf(buf + off, len - off, " +%s", name);
    }
    if (e->nerrant > 0 && off < len)
        snprintf(buf + off, len - off, " errant=%zu", e->nerrant);
}

/* Checks the invariants every result must keep. */
static void check_invariants(const analysis_result *res)
{
    size_t covered = 0;
    for (size_t i = 0; i < res->nclusters; i++) {
        const analysis_cluster *c = &res->clusters[i];
        assert_non_null(c->alias);
        if (i > 0)
            assert_true(strcmp(res->clusters[i - 1].name, c->name) < 0);
        for (size_t k = c->first; k < c->first + c->count; k++)
            assert_int_equal(res->entries[k].cluster, i);
        covered += c->count;
    }
    assert_int_equal(covered, res->nentries);
    size_t wanted = 0;
    for (size_t i = 0; i < res->nentries; i++) {
        const analysis_entry *e = &res->entries[i];
        assert_non_null(e->description);
        assert_true((e->code == ANALYSIS_NO_PROBLEM) == (e->description[0] == '\0'));
        assert_true((e->structure == 0) == (e->structure_detail == NULL));
        if (e->recoverable)
            assert_true(analysis_code_is_dead_master(e->code) ||
                        analysis_code_is_dead_intermediate_master(e->code));
        if (e->direct_check_wanted)
            wanted++;
        assert_int_equal(e->nreplicas, e->count_replicas);
        assert_true(e->count_valid_replicas <= e->count_replicas);
        assert_true(e->count_valid_replicating_replicas <= e->count_valid_replicas);
        assert_true(e->count_confirming_replicas + e->count_vetoing_replicas <=
                    e->count_valid_replicas);
    }
    assert_int_equal(wanted, res->ndirect_wanted);
}

typedef struct acase {
    const char *title;
    sp specs[10];
    const char *expect[8]; /* every entry, in order; NULL-terminated */
    dc direct[3];
} acase;

/* Shorthands for the specs. */
#define M(n, ...)                                                                                  \
    {                                                                                              \
        .name = n, __VA_ARGS__                                                                     \
    }
#define R(n, m, ...)                                                                               \
    {                                                                                              \
        .name = n, .master = m, __VA_ARGS__                                                        \
    }
#define REFUSING    .io = 'C', .err = 2003, .wit = 'R' /* the master's port refuses */
#define NO_GREETING .wit = 'T'                         /* IO thread still Yes: SIGSTOP */
#define FT(n)       n " FirstTierReplicaFailingToConnectToMaster"

static const acase cases[] = {
    {"healthy 1+3: nothing to say", {M("m"), R("r1", "m"), R("r2", "m"), R("r3", "m")}, {NULL}},
    {"master DOWN, every replica connecting and refused: DeadMaster",
     {M("m", .st = 'D'), R("r1", "m", REFUSING), R("r2", "m", REFUSING), R("r3", "m", REFUSING)},
     {"m DeadMaster recoverable", FT("r1"), FT("r2"), FT("r3"), NULL}},
    {"master DOWN, IO threads still Yes but witnesses refused: DeadMaster",
     {M("m", .st = 'D'), R("r1", "m", .wit = 'R'), R("r2", "m", .wit = 'R')},
     {"m DeadMaster recoverable", NULL}},
    {"master DOWN, one replica still receives and greets: veto",
     {M("m", .st = 'D'), R("r1", "m"), R("r2", "m", REFUSING), R("r3", "m", REFUSING)},
     {"m UnreachableMaster", FT("r2"), FT("r3"), NULL}},
    {"master DOWN, a replica without witness whose IO thread runs: veto",
     {M("m", .st = 'D'), R("r1", "m", .wit = '-'), R("r2", "m", REFUSING)},
     {"m UnreachableMaster", FT("r2"), NULL}},
    {"master agent stale, replicas replicate: AgentDown, no failover",
     {M("m", .stale = true), R("r1", "m"), R("r2", "m"), R("r3", "m")},
     {"m AgentDown", NULL}},
    {"master agent stale, replicas refused, no direct check yet: wanted",
     {M("m", .stale = true), R("r1", "m", REFUSING), R("r2", "m", .wit = 'R')},
     {"m UnreachableMaster direct", FT("r1"), NULL}},
    {"master agent stale, replicas refused, direct check pending",
     {M("m", .stale = true), R("r1", "m", REFUSING), R("r2", "m", .wit = 'R')},
     {"m UnreachableMaster", FT("r1"), NULL},
     {{"m", ANALYSIS_DIRECT_PENDING}}},
    {"master agent stale, replicas refused, direct check timed out: DeadMaster",
     {M("m", .stale = true), R("r1", "m", REFUSING), R("r2", "m", .wit = 'R')},
     {"m DeadMaster recoverable", FT("r1"), NULL},
     {{"m", ANALYSIS_DIRECT_TIMED_OUT}}},
    {"master agent stale, direct check answered UP: alive",
     {M("m", .stale = true), R("r1", "m", REFUSING), R("r2", "m", REFUSING)},
     {"m AllMasterReplicasNotReplicating", FT("r1"), FT("r2"), NULL},
     {{"m", ANALYSIS_DIRECT_ANSWERED, ORCH__PROBE_STATE__PROBE_UP}}},
    {"master agent stale, direct check answered DOWN: DeadMaster",
     {M("m", .stale = true), R("r1", "m", .wit = 'R')},
     {"m DeadMaster recoverable", NULL},
     {{"m", ANALYSIS_DIRECT_ANSWERED, ORCH__PROBE_STATE__PROBE_DOWN}}},
    {"master agent stale, direct check timed out, but replicas replicate: AgentDown",
     {M("m", .stale = true), R("r1", "m"), R("r2", "m", .wit = 'R')},
     {"m AgentDown", NULL},
     {{"m", ANALYSIS_DIRECT_TIMED_OUT}}},
    {"SIGSTOP: master UNRESPONSIVE, IO threads Yes, no greeting: MasterHung",
     {M("m", .st = 'H'), R("r1", "m", NO_GREETING), R("r2", "m", NO_GREETING),
      R("r3", "m", NO_GREETING)},
     {"m MasterHung recoverable", NULL}},
    {"master UNRESPONSIVE, one witness still greeted: not dead",
     {M("m", .st = 'H'), R("r1", "m", NO_GREETING), R("r2", "m"), R("r3", "m", NO_GREETING)},
     {"m UnreachableMaster", NULL}},
    {"master DOWN, every replica's agent stale: no verdict",
     {M("m", .st = 'D'), R("r1", "m", REFUSING, .stale = true),
      R("r2", "m", REFUSING, .stale = true)},
     {"m UnreachableMaster", NULL}},
    {"master DOWN, the one greeting replica is stale: ignored, the others decide",
     {M("m", .st = 'D'), R("r1", "m", .stale = true), R("r2", "m", REFUSING),
      R("r3", "m", REFUSING)},
     {"m DeadMasterAndSomeReplicas recoverable", FT("r2"), FT("r3"), NULL}},
    {"master DOWN, a replica stopped by an operator without witness neither confirms nor vetoes",
     {M("m", .st = 'D'), R("r1", "m", .io = 'N', .wit = '-'), R("r2", "m", REFUSING)},
     {"m DeadMaster recoverable", FT("r2"), NULL}},
    {"master DOWN, every replica stopped by an operator, no witness: no verdict",
     {M("m", .st = 'D'), R("r1", "m", .io = 'N', .wit = '-'), R("r2", "m", .io = 'N', .wit = '-')},
     {"m UnreachableMaster", NULL}},
    {"master DOWN, an operator-stopped replica whose witness is greeted: veto",
     {M("m", .st = 'D'), R("r1", "m", .io = 'N'), R("r2", "m", REFUSING)},
     {"m UnreachableMaster", FT("r2"), NULL}},
    {"master DOWN, no witnesses, IO threads connecting with error 2003: DeadMaster",
     {M("m", .st = 'D'), R("r1", "m", .io = 'C', .err = 2003, .wit = '-'),
      R("r2", "m", .io = 'N', .err = 2013, .wit = '-', .errtext = "error reconnecting to master")},
     {"m DeadMaster recoverable", FT("r1"), FT("r2"), NULL}},
    {"master DOWN, no witness, access denied is no evidence",
     {M("m", .st = 'D'), R("r1", "m", .io = 'C', .err = 1045, .wit = '-', .errtext = "denied"),
      R("r2", "m", .io = 'C', .err = 1045, .wit = '-', .errtext = "denied")},
     {"m UnreachableMaster", NULL}},
    {"master DOWN, witness ERROR confirms",
     {M("m", .st = 'D'), R("r1", "m", .wit = 'E')},
     {"m DeadMaster recoverable", NULL}},
    {"master AUTH_ERROR, replicas replicate: unreachable, never dead",
     {M("m", .st = 'A'), R("r1", "m"), R("r2", "m")},
     {"m UnreachableMaster", NULL}},
    {"master AUTH_ERROR, replicas refused: still no verdict",
     {M("m", .st = 'A'), R("r1", "m", .wit = 'R'), R("r2", "m", .wit = 'R')},
     {"m UnreachableMaster", NULL}},
    {"downtimed master dies: reported, not recoverable",
     {M("m", .st = 'D', .downtimed = true), R("r1", "m", .wit = 'R'), R("r2", "m", .wit = 'R')},
     {"m DeadMaster", NULL}},
    {"master in maintenance dies: reported, not recoverable",
     {M("m", .st = 'D', .maint = true), R("r1", "m", .wit = 'R')},
     {"m DeadMaster", NULL}},
    {"master DOWN and a replica DOWN too: DeadMasterAndSomeReplicas",
     {M("m", .st = 'D'), R("r1", "m", .st = 'D', .keep = true), R("r2", "m", .wit = 'R'),
      R("r3", "m", .wit = 'R')},
     {"m DeadMasterAndSomeReplicas recoverable", NULL}},
    {"master DOWN without replicas: DeadMasterWithoutReplicas, not recoverable",
     {M("m", .st = 'D')},
     {"m DeadMasterWithoutReplicas", NULL}},
    {"master stale without replicas: unreachable, direct check wanted",
     {M("m", .stale = true)},
     {"m UnreachableMaster direct", NULL}},
    {"master and every replica DOWN, agents fresh: DeadMasterAndReplicas",
     {M("m", .st = 'D'), R("r1", "m", .st = 'D', .keep = true),
      R("r2", "m", .st = 'D', .keep = true)},
     {"m DeadMasterAndReplicas", NULL}},
    {"master DOWN, replicas greet it but all lag: UnreachableMasterWithLaggingReplicas",
     {M("m", .st = 'D'), R("r1", "m", .lag = 300), R("r2", "m", .lag = 400)},
     {"m UnreachableMasterWithLaggingReplicas", NULL}},
    {"master UP, replicas stopped: AllMasterReplicasNotReplicating",
     {M("m"), R("r1", "m", .io = 'N'), R("r2", "m", .io = 'N'), R("r3", "m", .sql_stopped = true)},
     {"m AllMasterReplicasNotReplicating", NULL}},
    {"master UP, replicas stopped or stale: AllMasterReplicasNotReplicatingOrDead",
     {M("m"), R("r1", "m", .io = 'N'), R("r2", "m", .stale = true)},
     {"m AllMasterReplicasNotReplicatingOrDead", NULL}},
    {"master UP, its single replica stopped: MasterSingleReplicaNotReplicating",
     {M("m"), R("r1", "m", .io = 'N')},
     {"m MasterSingleReplicaNotReplicating", NULL}},
    {"master UP, its single replica stale: MasterSingleReplicaDead",
     {M("m"), R("r1", "m", .stale = true)},
     {"m MasterSingleReplicaDead", NULL}},
    {"master UP, replicas cannot connect: theirs is a first-tier problem",
     {M("m"), R("r1", "m", REFUSING), R("r2", "m")},
     {FT("r1"), NULL}},
    {"semi-sync master ON without clients: LockedSemiSyncMaster",
     {M("m", .semi = 'L'), R("r1", "m"), R("r2", "m")},
     {"m LockedSemiSyncMaster", NULL}},
    {"semi-sync master fell back to async: structure warning",
     {M("m", .semi = 'O'), R("r1", "m"), R("r2", "m")},
     {"m NoProblem +NotEnoughValidSemiSyncReplicas", NULL}},
    {"semi-sync master with its clients: fine",
     {M("m", .semi = 'K'), R("r1", "m"), R("r2", "m")},
     {NULL}},
    {"intermediate master DOWN, its replicas refused: DeadIntermediateMaster",
     {M("m"), R("im", "m", .st = 'D', .keep = true), R("r1", "im", REFUSING),
      R("r2", "im", .wit = 'R')},
     {"m MasterSingleReplicaDead", "im DeadIntermediateMaster recoverable", NULL}},
    {"intermediate master hung, single replica failing to connect",
     {M("m"), R("r0", "m"), R("im", "m", .st = 'H', .keep = true), R("r1", "im", REFUSING)},
     {"im DeadIntermediateMasterWithSingleReplicaFailingToConnect recoverable", NULL}},
    {"intermediate master hung, single replica still Yes without greeting",
     {M("m"), R("r0", "m"), R("im", "m", .st = 'H', .keep = true), R("r1", "im", NO_GREETING)},
     {"im DeadIntermediateMasterWithSingleReplica recoverable", NULL}},
    {"intermediate master DOWN, one replica stale: ...AndSomeReplicas",
     {M("m"), R("r0", "m"), R("im", "m", .st = 'D', .keep = true), R("r1", "im", .wit = 'R'),
      R("r2", "im", .stale = true)},
     {"im DeadIntermediateMasterAndSomeReplicas recoverable", NULL}},
    {"intermediate master DOWN with every replica DOWN: ...AndReplicas",
     {M("m"), R("r0", "m"), R("im", "m", .st = 'D', .keep = true),
      R("r1", "im", .st = 'D', .keep = true)},
     {"im DeadIntermediateMasterAndReplicas", NULL}},
    {"intermediate master DOWN, one replica still replicates: unreachable",
     {M("m"), R("r0", "m"), R("im", "m", .st = 'D', .keep = true), R("r1", "im"),
      R("r2", "im", REFUSING)},
     {"im UnreachableIntermediateMaster", NULL}},
    {"intermediate master's agent stale, replicas replicate: AgentDown",
     {M("m"), R("r0", "m"), R("im", "m", .stale = true), R("r1", "im"), R("r2", "im")},
     {"im AgentDown", NULL}},
    {"intermediate master stale, replicas refused, direct check timed out: dead",
     {M("m"), R("r0", "m"), R("im", "m", .stale = true), R("r1", "im", .wit = 'R'),
      R("r2", "im", .wit = 'R')},
     {"im DeadIntermediateMaster recoverable", NULL},
     {{"im", ANALYSIS_DIRECT_TIMED_OUT}}},
    {"intermediate master UP, its replicas cannot connect",
     {M("m"), R("r0", "m"), R("im", "m"), R("r1", "im", REFUSING), R("r2", "im", REFUSING)},
     {"im AllIntermediateMasterReplicasFailingToConnectOrDead", NULL}},
    {"intermediate master UP, its replicas stopped",
     {M("m"), R("r0", "m"), R("im", "m"), R("r1", "im", .io = 'N')},
     {"im AllIntermediateMasterReplicasNotReplicating", NULL}},
    {"downtimed intermediate master dies: reported, not recoverable",
     {M("m"), R("r0", "m"), R("im", "m", .st = 'D', .keep = true, .downtimed = true),
      R("r1", "im", .wit = 'R'), R("r2", "im", .wit = 'R')},
     {"im DeadIntermediateMaster", NULL}},
    {"co-masters, healthy", {M("a", .master = "b", .rw = 'w'), R("b", "a"), R("r1", "a")}, {NULL}},
    {"co-masters, the writable one DOWN: DeadCoMaster",
     {M("a", .master = "b", .rw = 'w', .st = 'D', .keep = true), R("b", "a", REFUSING),
      R("r1", "a", REFUSING)},
     {"a DeadCoMaster recoverable", "b AllCoMasterReplicasNotReplicating", FT("r1"), NULL}},
    {"co-masters, the writable one DOWN, a replica greets it: UnreachableCoMaster",
     {M("a", .master = "b", .rw = 'w', .st = 'D', .keep = true), R("b", "a", REFUSING),
      R("r1", "a")},
     {"a UnreachableCoMaster", "b AllCoMasterReplicasNotReplicating", NULL}},
    {"co-masters, the passive one DOWN: DeadCoMaster",
     {M("a", .master = "b", .rw = 'w', REFUSING), R("b", "a", .st = 'D', .keep = true),
      R("r1", "a")},
     {"b DeadCoMaster recoverable", NULL}},
    {"a top whose own master no agent reports dies: not recoverable",
     {R("im", "ghost", .st = 'D', .keep = true), R("r1", "im", .wit = 'R'),
      R("r2", "im", .wit = 'R')},
     {"im DeadIntermediateMaster", NULL}},
    {"no replica with binary logs: NoFailoverSupport and NoLoggingReplicas",
     {M("m"), R("r1", "m", .nobin = true), R("r2", "m", .nobin = true)},
     {"m NoProblem +NoLoggingReplicas +NoFailoverSupport", NULL}},
    {"single replica without binary log: NoFailoverSupport only",
     {M("m"), R("r1", "m", .nobin = true)},
     {"m NoProblem +NoFailoverSupport", NULL}},
    {"one logging replica among three: fine",
     {M("m"), R("r1", "m", .nolsu = true), R("r2", "m", .nolsu = true), R("r3", "m")},
     {NULL}},
    {"no replica with log_slave_updates: NoLoggingReplicas",
     {M("m"), R("r1", "m", .nolsu = true), R("r2", "m", .nolsu = true)},
     {"m NoProblem +NoLoggingReplicas +NoFailoverSupport", NULL}},
    {"the only logging replicas are must_not: NoFailoverSupport",
     {M("m"), R("r1", "m", .promo = 4), R("r2", "m", .promo = 4)},
     {"m NoProblem +NoFailoverSupport", NULL}},
    {"MySQL replica with another gtid_mode: DifferentGTIDModes (and no GTID failover)",
     {M("m", .mysql = true), R("r1", "m", .mysql = true, .mode = "OFF_PERMISSIVE"),
      R("r2", "m", .mysql = true)},
     {"m NoProblem +NoFailoverSupport +DifferentGTIDModes", NULL}},
    {"MariaDB replicas, some by GTID, some by position: DifferentGTIDModes",
     {M("m"), R("r1", "m", .using_gtid = "No"), R("r2", "m", .using_gtid = "Slave_Pos")},
     {"m NoProblem +DifferentGTIDModes", NULL}},
    {"read-only master: NoWriteableMaster",
     {M("m", .rw = 'r'), R("r1", "m")},
     {"m NoProblem +NoWriteableMaster", NULL}},
    {"statement and row logging replicas",
     {M("m"), R("r1", "m", .fmt = "STATEMENT"), R("r2", "m", .fmt = "ROW"),
      R("r3", "m", .fmt = "MIXED")},
     {"m NoProblem +StatementAndMixedLoggingReplicas +StatementAndRowLoggingReplicas "
      "+MixedAndRowLoggingReplicas",
      NULL}},
    {"logging replicas of two major series",
     {M("m"), R("r1", "m", .version = "10.6.16-MariaDB-log"), R("r2", "m")},
     {"m NoProblem +MultipleMajorVersionsLoggingReplicas", NULL}},
    {"MariaDB errant GTID on a replica; a replica ahead through its channel is not errant",
     {M("m", .gtid = "0-1-100"), R("r1", "m", .gtid = "0-1-100,0-2-101"),
      R("r2", "m", .gtid = "0-1-105", .retr = "0-1-105"), R("r3", "m", .gtid = "0-1-90")},
     {"m NoProblem +ErrantGTID errant=1", NULL}},
    {"MariaDB errant GTID in another domain",
     {M("m", .gtid = "0-1-100"), R("r1", "m", .gtid = "0-1-100,5-2-3")},
     {"m NoProblem +ErrantGTID errant=1", NULL}},
    {"MySQL errant GTID; transactions of the master's uuid never are",
     {M("m", .mysql = true, .uuid = "aaaaaaaa-0000-0000-0000-000000000001",
        .gtid = "aaaaaaaa-0000-0000-0000-000000000001:1-100,"
                "bbbbbbbb-0000-0000-0000-000000000002:1-5"),
      R("r1", "m", .mysql = true,
        .gtid = "aaaaaaaa-0000-0000-0000-000000000001:1-100,"
                "bbbbbbbb-0000-0000-0000-000000000002:1-5,"
                "cccccccc-0000-0000-0000-000000000003:1-2"),
      R("r2", "m", .mysql = true,
        .gtid = "aaaaaaaa-0000-0000-0000-000000000001:1-110,"
                "bbbbbbbb-0000-0000-0000-000000000002:1-5")},
     {"m NoProblem +ErrantGTID errant=1", NULL}},
    {"errant GTID on a downtimed replica: listed, not warned",
     {M("m", .gtid = "0-1-100"), R("r1", "m", .gtid = "0-1-100,0-2-101", .downtimed = true)},
     {"m NoProblem errant=1", NULL}},
    {"errant GTID is not judged against a stale master",
     {M("m", .gtid = "0-1-100", .stale = true), R("r1", "m", .gtid = "0-1-100,0-2-101")},
     {"m AgentDown", NULL}},
};

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const acase *tc = &cases[i];
        registry *r = make(tc->specs, N_ELEMS(tc->specs), START);
        analysis_config cfg = config();
        dc_table t = {tc->direct, N_ELEMS(tc->direct), 0};
        analysis_result *res = run(r, &cfg, &t);
        check_invariants(res);
        char got[8][512];
        size_t n = res->nentries;
        size_t want = 0;
        while (want < N_ELEMS(tc->expect) && tc->expect[want] != NULL)
            want++;
        bool same = n == want;
        for (size_t k = 0; k < n && k < 8; k++) {
            summarize(&res->entries[k], got[k], sizeof(got[k]));
            if (k < want && strcmp(got[k], tc->expect[k]) != 0)
                same = false;
        }
        if (!same) {
            failures++;
            print_error("case \"%s\":\n", tc->title);
            for (size_t k = 0; k < want; k++)
                print_error("  want: %s\n", tc->expect[k]);
            for (size_t k = 0; k < n && k < 8; k++)
                print_error("  got:  %s | %s%s%s\n", got[k], res->entries[k].description,
                            res->entries[k].structure_detail ? " | " : "",
                            res->entries[k].structure_detail ? res->entries[k].structure_detail
                                                             : "");
        }
        analysis_result_free(res);
        registry_free(r);
    }
    if (failures > 0)
        fail_msg("%d of %zu cases failed", failures, N_ELEMS(cases));
}

static const analysis_entry *entry(const analysis_result *res, const char *host)
{
    orch_key k;
    key_of(host, &k);
    const analysis_entry *e = analysis_result_find(res, &k);
    if (e == NULL)
        fail_msg("no entry for %s", host);
    return e;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("\"%s\" not found in \"%s\"", (needle), (hay));                               \
    } while (0)

static void test_dead_master_description_and_counts(void **state)
{
    (void)state;
    const sp specs[] = {
        M("db1", .st = 'D', .gtid = "0-1-10"),          R("db2", "db1", REFUSING),
        R("db3", "db1", .wit = 'R', .downtimed = true), R("db4", "db1", .stale = true),
        R("db5", "db1", .io = 'N', .wit = '-'),
    };
    registry *r = make(specs, N_ELEMS(specs), START);
    analysis_config cfg = config();
    analysis_result *res = run(r, &cfg, NULL);
    check_invariants(res);
    const analysis_entry *e = entry(res, "db1");
    assert_int_equal(e->code, ANALYSIS_DEAD_MASTER_AND_SOME_REPLICAS);
    assert_true(e->recoverable);
    assert_true(e->is_master);
    assert_false(e->is_co_master);
    assert_false(e->last_check_valid);
    assert_false(e->stale);
    assert_int_equal(e->state, ORCH__PROBE_STATE__PROBE_DOWN);
    assert_int_equal(e->role, ANALYSIS_ROLE_MASTER);
    assert_false(e->has_master);
    assert_int_equal(e->replication_depth, 0);
    assert_int_equal(e->count_replicas, 4);
    assert_int_equal(e->count_valid_replicas, 3);
    assert_int_equal(e->count_valid_replicating_replicas, 1); /* db3: IO Yes, SQL Yes */
    assert_int_equal(e->count_replicas_failing_to_connect_to_master, 1);
    assert_int_equal(e->count_downtimed_replicas, 1);
    assert_int_equal(e->count_stale_replicas, 1);
    assert_int_equal(e->count_confirming_replicas, 2);
    assert_int_equal(e->count_vetoing_replicas, 0);
    assert_int_equal(e->nreplicas, 4);
    assert_string_equal(e->replicas[0].host, "db2");
    assert_string_equal(e->replicas[3].host, "db5");
    /* The description says which agents said what. */
    const char *d = e->description;
    assert_contains(d, "db1:3306's agent says its server is DOWN (");
    assert_contains(d, "Can't connect to local server");
    assert_contains(d, "cannot replicate from it: db2:3306 (IO thread connecting, error 2003 "
                       "\"error connecting to master 'repl@db1:3306'");
    assert_contains(d, "witness REFUSED in 1 ms: connect: Connection refused)");
    assert_contains(d, "db3:3306 (IO thread running; witness REFUSED");
    assert_contains(d, "cannot tell (no evidence either way): db5:3306 (IO thread stopped; "
                       "witness NOT_CHECKED)");
    assert_contains(d, "unknown (stale agent or server not up): db4:3306 (agent silent for");
    /* Replicas of the dead master: the connecting one is a first-tier finding. */
    const analysis_entry *f = entry(res, "db2");
    assert_int_equal(f->code, ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER);
    assert_true(f->is_failing_to_connect_to_master);
    assert_true(f->has_master);
    assert_string_equal(f->master_key.host, "db1");
    assert_int_equal(f->replication_depth, 1);
    assert_false(f->recoverable);
    assert_contains(f->description, "it cannot connect to its master db1:3306: db2:3306 (");
    /* The cluster summary. */
    assert_int_equal(res->nclusters, 1);
    const analysis_cluster *c = &res->clusters[0];
    assert_string_equal(c->name, "db1:3306");
    assert_string_equal(c->alias, "db1:3306");
    assert_string_equal(c->master.host, "db1");
    assert_int_equal(c->code, ANALYSIS_DEAD_MASTER_AND_SOME_REPLICAS);
    assert_true(c->recoverable);
    assert_false(c->warming_up);
    assert_null(c->note);
    assert_false(res->warming_up);
    assert_int_equal(res->warmup_left_ms, 0);
    analysis_result_free(res);
    registry_free(r);
}

static void test_hung_and_agent_down_descriptions(void **state)
{
    (void)state;
    const sp hung[] = {M("db1", .st = 'H'), R("db2", "db1", NO_GREETING)};
    registry *r = make(hung, N_ELEMS(hung), START);
    analysis_config cfg = config();
    analysis_result *res = run(r, &cfg, NULL);
    const analysis_entry *e = entry(res, "db1");
    assert_int_equal(e->code, ANALYSIS_MASTER_HUNG);
    assert_true(analysis_code_is_dead_master(e->code));
    assert_contains(e->description, "db1:3306's agent says its server is UNRESPONSIVE");
    assert_contains(e->description, "no replica gets its greeting");
    assert_contains(e->description, "db2:3306 (IO thread running; witness TIMEOUT in 1000 ms: "
                                    "no greeting within 1000 ms)");
    analysis_result_free(res);
    registry_free(r);

    const sp silent[] = {M("db1", .stale = true), R("db2", "db1"), R("db3", "db1")};
    r = make(silent, N_ELEMS(silent), START);
    dc_table t = {NULL, 0, 0};
    res = run(r, &cfg, &t);
    e = entry(res, "db1");
    assert_int_equal(e->code, ANALYSIS_AGENT_DOWN);
    assert_false(e->recoverable);
    assert_true(e->stale);
    assert_int_equal(e->agent_age_ms, NOW - STALE_AT);
    assert_int_equal(e->count_vetoing_replicas, 2);
    assert_contains(e->description, "db1:3306's agent has been silent for 59000 ms (stale after "
                                    "3000 ms)");
    assert_contains(e->description, "the agent or its host's network is down, the server is not");
    assert_contains(e->description, "still replicating from it (veto): db2:3306 (IO thread "
                                    "running; witness GREETING in 1 ms), db3:3306");
    assert_int_equal(t.calls, 1); /* only the stale master is asked about */
    analysis_result_free(res);
    registry_free(r);
}

static void test_direct_check_wanted(void **state)
{
    (void)state;
    const sp specs[] = {M("db1", .stale = true), R("db2", "db1", REFUSING), M("dbx", .stale = true),
                        R("dby", "dbx", .wit = 'R'), R("dbz", "dbx", .wit = 'R')};
    registry *r = make(specs, N_ELEMS(specs), START);
    analysis_config cfg = config();
    dc d[] = {{"dbx", ANALYSIS_DIRECT_PENDING, 0}};
    dc_table t = {d, N_ELEMS(d), 0};
    analysis_result *res = run(r, &cfg, &t);
    check_invariants(res);
    assert_int_equal(res->ndirect_wanted, 1);
    assert_string_equal(res->direct_wanted[0].host, "db1");
    const analysis_entry *e = entry(res, "db1");
    assert_true(e->direct_check_wanted);
    assert_int_equal(e->direct.state, ANALYSIS_DIRECT_NONE);
    assert_contains(e->description, "a direct ReportNow to it is wanted");
    assert_contains(e->description, "not confirmed by a direct check yet");
    e = entry(res, "dbx");
    assert_false(e->direct_check_wanted);
    assert_int_equal(e->direct.state, ANALYSIS_DIRECT_PENDING);
    assert_contains(e->description, "a direct ReportNow to it is pending");
    assert_int_equal(t.calls, 2);
    analysis_result_free(res);

    /* Without a callback every direct check is NONE. */
    res = run(r, &cfg, NULL);
    assert_int_equal(res->ndirect_wanted, 2);
    analysis_result_free(res);

    /* The answer, once it timed out. */
    dc d2[] = {{"db1", ANALYSIS_DIRECT_TIMED_OUT, 0}, {"dbx", ANALYSIS_DIRECT_TIMED_OUT, 0}};
    dc_table t2 = {d2, N_ELEMS(d2), 0};
    res = run(r, &cfg, &t2);
    assert_int_equal(res->ndirect_wanted, 0);
    e = entry(res, "db1");
    assert_int_equal(e->code, ANALYSIS_DEAD_MASTER);
    assert_true(e->recoverable);
    assert_contains(e->description, "and a direct ReportNow to it timed out");
    assert_int_equal(entry(res, "dbx")->code, ANALYSIS_DEAD_MASTER);
    analysis_result_free(res);
    registry_free(r);
}

static void test_warmup(void **state)
{
    (void)state;
    const sp specs[] = {M("db1", .st = 'D'), R("db2", "db1", REFUSING), R("db3", "db1", .wit = 'R'),
                        M("dbm", .nobin = false), R("dbn", "dbm", .nobin = true)};
    /* Started 2 s ago: warming up for 3 more seconds. */
    registry *r = make(specs, N_ELEMS(specs), NOW - 2000);
    analysis_config cfg = config();
    dc_table t = {NULL, 0, 0};
    analysis_result *res = run(r, &cfg, &t);
    check_invariants(res);
    assert_true(res->warming_up);
    assert_int_equal(res->warmup_left_ms, 3000);
    assert_int_equal(t.calls, 0);
    assert_int_equal(res->nclusters, 2);
    for (size_t i = 0; i < res->nclusters; i++) {
        assert_true(res->clusters[i].warming_up);
        assert_non_null(res->clusters[i].note);
        assert_contains(res->clusters[i].note, "warming up: the coordinator started 2000 ms ago");
        assert_int_equal(res->clusters[i].code, ANALYSIS_NO_PROBLEM);
        assert_false(res->clusters[i].recoverable);
    }
    /* No findings, but structure warnings still are reported. */
    assert_int_equal(res->nentries, 1);
    assert_string_equal(res->entries[0].key.host, "dbm");
    assert_int_equal(res->entries[0].code, ANALYSIS_NO_PROBLEM);
    assert_true(res->entries[0].structure & ANALYSIS_ST_NO_FAILOVER_SUPPORT);
    analysis_result_free(res);

    /* Warm-up over: the same registry gets its verdict. */
    cfg.warmup_ms = 1500;
    res = run(r, &cfg, &t);
    assert_false(res->warming_up);
    assert_int_equal(entry(res, "db1")->code, ANALYSIS_DEAD_MASTER);
    analysis_result_free(res);
    registry_free(r);
}

static void test_downtime_fields(void **state)
{
    (void)state;
    const sp specs[] = {M("db1", .st = 'D', .downtimed = true), R("db2", "db1", .wit = 'R')};
    registry *r = make(specs, N_ELEMS(specs), START);
    analysis_config cfg = config();
    analysis_result *res = run(r, &cfg, NULL);
    const analysis_entry *e = entry(res, "db1");
    assert_int_equal(e->code, ANALYSIS_DEAD_MASTER);
    assert_false(e->recoverable);
    assert_true(e->is_downtimed);
    assert_int_equal(e->downtime_until_wall_ms, WALL + 3600000);
    assert_contains(e->description, "downtimed: no automated recovery");
    assert_false(res->clusters[0].recoverable);
    analysis_result_free(res);
    registry_free(r);
}

static void test_errant_details(void **state)
{
    (void)state;
    const sp specs[] = {
        M("db1", .gtid = "0-1-100"),
        R("db2", "db1", .gtid = "0-1-100,0-2-101"),
        R("db3", "db1", .gtid = "0-1-100,0-3-7", .downtimed = true), /* behind in domain 0 */
        R("db4", "db1", .gtid = "0-1-100,1-4-3", .downtimed = true),
        R("db5", "db1", .gtid = "not a gtid set"),
    };
    registry *r = make(specs, N_ELEMS(specs), START);
    analysis_config cfg = config();
    analysis_result *res = run(r, &cfg, NULL);
    const analysis_entry *e = entry(res, "db1");
    assert_int_equal(e->nerrant, 2);
    assert_string_equal(e->errant[0].replica.host, "db2");
    assert_string_equal(e->errant[0].gtid, "0-2-101");
    assert_false(e->errant[0].downtimed);
    assert_string_equal(e->errant[1].replica.host, "db4");
    assert_string_equal(e->errant[1].gtid, "1-4-3");
    assert_true(e->errant[1].downtimed);
    assert_string_equal(e->max_replica_gtid_errant, "0-2-101");
    assert_true(e->structure & ANALYSIS_ST_ERRANT_GTID);
    assert_contains(e->structure_detail, "db2:3306 has errant transactions 0-2-101");
    orch_key k;
    key_of("db4", &k);
    assert_string_equal(analysis_result_errant(res, &k), "1-4-3");
    key_of("db3", &k);
    assert_null(analysis_result_errant(res, &k));
    analysis_result_free(res);

    /* Switched off: nothing compared. */
    cfg.errant_gtid = false;
    res = run(r, &cfg, NULL);
    assert_int_equal(res->nentries, 0);
    analysis_result_free(res);
    registry_free(r);
}

static void test_include_no_problem_and_gtid_modes(void **state)
{
    (void)state;
    const sp specs[] = {M("db1", .mysql = true), R("db2", "db1", .mysql = true),
                        R("db3", "db1", .mysql = true, .mode = "ON_PERMISSIVE")};
    registry *r = make(specs, N_ELEMS(specs), START);
    analysis_config cfg = config();
    cfg.include_no_problem = true;
    analysis_result *res = run(r, &cfg, NULL);
    check_invariants(res);
    assert_int_equal(res->nentries, 3);
    assert_string_equal(res->entries[0].gtid_mode, "ON");
    assert_string_equal(res->entries[0].min_replica_gtid_mode, "ON");
    assert_string_equal(res->entries[0].max_replica_gtid_mode, "ON_PERMISSIVE");
    assert_true(res->entries[0].structure & ANALYSIS_ST_DIFFERENT_GTID_MODES);
    assert_contains(res->entries[0].structure_detail, "gtid_mode ON here, replicas from ON to "
                                                      "ON_PERMISSIVE");
    assert_int_equal(res->entries[1].code, ANALYSIS_NO_PROBLEM);
    assert_string_equal(res->entries[1].description, "");
    assert_int_equal(res->entries[1].role, ANALYSIS_ROLE_REPLICA);
    assert_true(res->entries[1].last_check_valid);
    assert_true(res->entries[1].is_read_only);
    assert_int_equal(res->clusters[0].first, 0);
    assert_int_equal(res->clusters[0].count, 3);
    analysis_result_free(res);
    registry_free(r);
}

static void test_control_bytes_and_long_text(void **state)
{
    (void)state;
    char evil[300];
    memset(evil, 'x', sizeof(evil) - 1);
    evil[sizeof(evil) - 1] = '\0';
    memcpy(evil, "bad\n\x1b[31mred", 12);
    const sp specs[] = {M("db1", .st = 'D'),
                        R("db2", "db1", .io = 'C', .err = 2003, .wit = 'R', .errtext = evil)};
    registry *r = make(specs, N_ELEMS(specs), START);
    analysis_config cfg = config();
    analysis_result *res = run(r, &cfg, NULL);
    const analysis_entry *e = entry(res, "db1");
    for (const char *p = e->description; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    assert_contains(e->description, "bad??[31mred");
    assert_contains(e->description, "x~\"");
    analysis_result_free(res);
    registry_free(r);
}

static void test_names_and_arguments(void **state)
{
    (void)state;
    for (int c = 0; c < ANALYSIS_CODE__COUNT; c++) {
        const char *n = analysis_code_name((analysis_code)c);
        assert_non_null(n);
        assert_string_not_equal(n, "Unknown");
        for (int d = 0; d < c; d++)
            assert_string_not_equal(n, analysis_code_name((analysis_code)d));
    }
    assert_string_equal(analysis_code_name(ANALYSIS_CODE__COUNT), "Unknown");
    assert_string_equal(analysis_code_name(ANALYSIS_DEAD_MASTER), "DeadMaster");
    assert_string_equal(
        analysis_code_name(ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER),
        "FirstTierReplicaFailingToConnectToMaster");
    for (unsigned k = 0; k < ANALYSIS_ST__COUNT; k++)
        assert_string_not_equal(analysis_structure_name(1u << k), "Unknown");
    assert_string_equal(analysis_structure_name(3), "Unknown");
    char buf[200];
    assert_string_equal(
        analysis_structure_format(ANALYSIS_ST_ERRANT_GTID | ANALYSIS_ST_NO_LOGGING_REPLICAS, buf,
                                  sizeof(buf)),
        "NoLoggingReplicasStructureWarning, ErrantGTIDStructureWarning");
    assert_string_equal(analysis_structure_format(0, buf, sizeof(buf)), "");
    assert_string_equal(analysis_role_name(ANALYSIS_ROLE_INTERMEDIATE_MASTER),
                        "intermediate-master");
    assert_string_equal(analysis_direct_state_name(ANALYSIS_DIRECT_TIMED_OUT), "timed-out");
    assert_true(analysis_code_is_dead_intermediate_master(ANALYSIS_DEAD_INTERMEDIATE_MASTER));
    assert_false(
        analysis_code_is_dead_intermediate_master(ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_REPLICAS));
    assert_false(analysis_code_is_dead_master(ANALYSIS_DEAD_MASTER_WITHOUT_REPLICAS));
    assert_false(analysis_code_is_dead_master(ANALYSIS_AGENT_DOWN));

    registry *r = registry_new(START);
    analysis_config cfg = config();
    analysis_result *res = NULL;
    char msg[128] = "";
    assert_int_equal(analysis_run(NULL, &cfg, NULL, NULL, NOW, WALL, &res, msg, sizeof(msg)),
                     ORCH_ERR_INVAL);
    assert_null(res);
    cfg.stale_after_ms = 0;
    assert_int_equal(analysis_run(r, &cfg, NULL, NULL, NOW, WALL, &res, msg, sizeof(msg)),
                     ORCH_ERR_INVAL);
    assert_contains(msg, "stale_after_ms");
    cfg = config();
    /* An empty registry: an empty result. */
    assert_int_equal(analysis_run(r, &cfg, NULL, NULL, NOW, WALL, &res, msg, sizeof(msg)), ORCH_OK);
    assert_int_equal(res->nclusters, 0);
    assert_int_equal(res->nentries, 0);
    analysis_result_free(res);
    analysis_result_free(NULL);
    registry_free(r);
}

/* 10,000 instances in 2,000 clusters of 1+4, GTID sets differing (parsed every run). */
static void test_large_fleet(void **state)
{
    (void)state;
    registry *r = registry_new(START);
    assert_non_null(r);
    char name[64], master[64], gtid[64];
    for (int c = 0; c < 2000; c++) {
        for (int k = 0; k < 5; k++) {
            snprintf(name, sizeof(name), "c%d-db%d", c, k);
            snprintf(master, sizeof(master), "c%d-db0", c);
            snprintf(gtid, sizeof(gtid), "0-%d-%d", c + 1, 1000 - k);
            sp s = {.name = name, .master = k ? master : NULL, .gtid = gtid, .lag = 0};
            if (c % 100 == 0 && k == 0)
                s.st = 'D';
            if (c % 100 == 0 && k > 0)
                s.wit = 'R';
            reg_verdict v = registry_apply(r, build(&s), NOW - 100, WALL, GRACE, NULL, NULL, 0);
            assert_int_equal(v, REG_ACCEPTED);
        }
    }
    registry_refresh(r);
    analysis_config cfg = config();
    for (int errant = 1; errant >= 0; errant--) {
        cfg.errant_gtid = errant;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        const int runs = 10;
        for (int i = 0; i < runs; i++) {
            analysis_result *res = run(r, &cfg, NULL);
            assert_int_equal(res->nclusters, 2000);
            assert_int_equal(res->nentries, 20);
            for (size_t k = 0; k < res->nentries; k++)
                assert_int_equal(res->entries[k].code, ANALYSIS_DEAD_MASTER);
            analysis_result_free(res);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms =
            ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
            runs;
        printf("analysis: 10000 instances, 2000 clusters, errant GTID %s: %.2f ms per run\n",
               errant ? "on (8000 sets compared)" : "off", ms);
    }
    registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_dead_master_description_and_counts),
        cmocka_unit_test(test_hung_and_agent_down_descriptions),
        cmocka_unit_test(test_direct_check_wanted),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_downtime_fields),
        cmocka_unit_test(test_errant_details),
        cmocka_unit_test(test_include_no_problem_and_gtid_modes),
        cmocka_unit_test(test_control_bytes_and_long_text),
        cmocka_unit_test(test_names_and_arguments),
        cmocka_unit_test(test_large_fleet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
