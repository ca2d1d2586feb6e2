/*
 * Unit tests for render.c: orchestrator's Instance and ClusterInfo JSON
 * (field names, the misspelled ReplicationIOThreadRuning, types, NullInt64
 * for lag, downtime, staleness, unresolved masters, thread states, problems,
 * bytes that are not UTF-8), the envelope, the topology text of chains, trees,
 * co-masters and broken replicas, the web page, orchestrator's
 * ReplicationAnalysis from a hand-built analysis result, and TopologyRecovery,
 * its steps and failure detections from backend rows. Topologies are built
 * through the registry's own API from hand-made reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry.h"
#include "render.h"

#include <stdlib.h>
#include <string.h>

#define NOW_MS   1000000         /* monotonic "now" of every test */
#define NOW_WALL 1900000000000LL /* 2030-03-17T17:46:40Z */
#define STALE_MS 5000

/* ---- building reports ------------------------------------------------------ */

typedef void (*tweak_fn)(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch);

static uint64_t next_seq = 1;

/*
 * A MariaDB 10.11 report for 127.0.0.1:port: UP, binlog ROW with
 * log_slave_updates, read-only if it has a master; with a running GTID
 * channel from 127.0.0.1:master_port (0: none, a master) and zero lag.
 * tweak may change anything; strings may point at literals (the report is
 * packed and unpacked into a heap message the registry can own).
 */
static Orch__InstanceReport *report(unsigned port, unsigned master_port, tweak_fn tweak)
{
    static uint8_t boot[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    Orch__ServerStatus sv = ORCH__SERVER_STATUS__INIT;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    Orch__Channel *chans[1] = {&ch};
    r.protocol_version = 1;
    r.boot_id.data = boot;
    r.boot_id.len = sizeof(boot);
    r.seq = next_seq++;
    r.sent_at_ms = NOW_WALL;
    r.host = "127.0.0.1";
    r.port = port;
    r.state = ORCH__PROBE_STATE__PROBE_UP;
    r.server = &sv;
    sv.has_server_id = true;
    sv.server_id = port;
    sv.version = "10.11.6-MariaDB-log";
    sv.has_flavor = true;
    sv.flavor = ORCH__FLAVOR__FLAVOR_MARIADB;
    sv.has_read_only = true;
    sv.read_only = master_port != 0;
    sv.has_log_bin = true;
    sv.log_bin = true;
    sv.has_log_slave_updates = true;
    sv.log_slave_updates = true;
    sv.binlog_format = "ROW";
    sv.gtid_current_pos = "0-1-42";
    if (master_port != 0) {
        r.n_channels = 1;
        r.channels = chans;
        ch.name = "";
        ch.master_host = "127.0.0.1";
        ch.has_master_port = true;
        ch.master_port = master_port;
        ch.has_io_thread = ch.has_sql_thread = true;
        ch.io_thread = ch.sql_thread = ORCH__THREAD_STATE__THREAD_YES;
        ch.has_seconds_behind_master = true;
        ch.seconds_behind_master = 0;
        ch.using_gtid = "Slave_Pos";
    }
    if (tweak != NULL)
        tweak(&r, &sv, master_port != 0 ? &ch : NULL);
    size_t len = orch__instance_report__get_packed_size(&r);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    orch__instance_report__pack(&r, buf);
    Orch__InstanceReport *out = orch__instance_report__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static reg_instance *apply(registry *reg, Orch__InstanceReport *rep, int64_t seen_ms)
{
    char msg[256];
    reg_instance *i = NULL;
    assert_int_equal(registry_apply(reg, rep, seen_ms, NOW_WALL - (NOW_MS - seen_ms), 10000, &i,
                                    msg, sizeof(msg)),
                     REG_ACCEPTED);
    return i;
}

static reg_instance *add(registry *reg, unsigned port, unsigned master_port, tweak_fn tweak)
{
    return apply(reg, report(port, master_port, tweak), NOW_MS - 200);
}

static render_ctx ctx(void)
{
    return (render_ctx){.now_ms = NOW_MS,
                        .now_wall_ms = NOW_WALL,
                        .stale_after_ms = STALE_MS,
                        .reasonable_lag_s = 10};
}

static json_t *get(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *v = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k != NULL;
         k = strtok_r(NULL, ".", &save)) {
        v = json_object_get(v, k);
        if (v == NULL)
            fail_msg("no field %s (at %s)", path, k);
    }
    return v;
}

static void assert_str(json_t *o, const char *path, const char *want)
{
    json_t *v = get(o, path);
    if (!json_is_string(v))
        fail_msg("%s is not a string", path);
    assert_string_equal(json_string_value(v), want);
}

static void assert_int(json_t *o, const char *path, long long want)
{
    json_t *v = get(o, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    assert_int_equal(json_integer_value(v), want);
}

static void assert_bool(json_t *o, const char *path, bool want)
{
    json_t *v = get(o, path);
    if (!json_is_boolean(v))
        fail_msg("%s is not a boolean", path);
    assert_int_equal(json_is_true(v), want);
}

static bool has_problem(json_t *o, const char *problem)
{
    json_t *a = get(o, "Problems");
    for (size_t k = 0; k < json_array_size(a); k++)
        if (strcmp(json_string_value(json_array_get(a, k)), problem) == 0)
            return true;
    return false;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_key_and_envelope(void **state)
{
    (void)state;
    orch_key k = {.host = "db1.example", .port = 3306};
    json_t *j = render_key(&k);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"Hostname\":\"db1.example\",\"Port\":3306}");
    free(s);
    json_decref(j);

    j = render_envelope(false, "Cannot read instance: x:1", NULL);
    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"Code\":\"ERROR\",\"Message\":\"Cannot read instance: x:1\","
                           "\"Details\":null}");
    free(s);
    json_decref(j);
    j = render_envelope(true, "Topology", json_string("a\nb"));
    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"Code\":\"OK\",\"Message\":\"Topology\",\"Details\":\"a\\nb\"}");
    free(s);
    json_decref(j);
}

static void test_instance_fields(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    reg_instance *r2 = add(reg, 3302, 3301, NULL);
    registry_refresh(reg);
    render_ctx c = ctx();
    json_t *j = render_instance(r2, &c);
    assert_non_null(j);

    assert_str(j, "Key.Hostname", "127.0.0.1");
    assert_int(j, "Key.Port", 3302);
    assert_str(j, "MasterKey.Hostname", "127.0.0.1");
    assert_int(j, "MasterKey.Port", 3301);
    assert_str(j, "ClusterName", "127.0.0.1:3301");
    assert_int(j, "ServerID", 3302);
    assert_str(j, "Version", "10.11.6-MariaDB-log");
    assert_str(j, "FlavorName", "MariaDB");
    assert_bool(j, "ReadOnly", true);
    assert_str(j, "Binlog_format", "ROW");
    assert_bool(j, "LogBinEnabled", true);
    assert_bool(j, "LogSlaveUpdatesEnabled", true);
    assert_bool(j, "LogReplicationUpdatesEnabled", true);
    /* the misspellings are orchestrator's contract */
    assert_bool(j, "ReplicationSQLThreadRuning", true);
    assert_bool(j, "ReplicationIOThreadRuning", true);
    assert_null(json_object_get(j, "ReplicationIOThreadRunning"));
    assert_bool(j, "Slave_SQL_Running", true);
    assert_bool(j, "Slave_IO_Running", true);
    assert_int(j, "ReplicationSQLThreadState", 1);
    assert_int(j, "ReplicationIOThreadState", 1);
    assert_bool(j, "UsingMariaDBGTID", true);
    assert_bool(j, "UsingOracleGTID", false);
    assert_bool(j, "SupportsOracleGTID", false);
    assert_str(j, "ExecutedGtidSet", "0-1-42");
    assert_str(j, "GtidErrant", "");
    assert_int(j, "SecondsBehindMaster.Int64", 0);
    assert_bool(j, "SecondsBehindMaster.Valid", true);
    assert_bool(j, "SlaveLagSeconds.Valid", true);
    assert_bool(j, "ReplicationLagSeconds.Valid", true);
    assert_int(j, "ReplicationDepth", 1);
    assert_bool(j, "IsCoMaster", false);
    assert_str(j, "PromotionRule", "neutral");
    assert_bool(j, "IsCandidate", false);
    assert_bool(j, "IsDowntimed", false);
    assert_str(j, "DowntimeEndTimestamp", "");
    assert_bool(j, "IsLastCheckValid", true);
    assert_bool(j, "IsUpToDate", true);
    assert_bool(j, "IsRecentlyChecked", true);
    assert_bool(j, "SecondsSinceLastSeen.Valid", true);
    assert_int(j, "SecondsSinceLastSeen.Int64", 0);
    assert_str(j, "LastSeenTimestamp", "2030-03-17 17:46:39");
    assert_int(j, "SelfBinlogCoordinates.LogPos", 0);
    assert_true(json_is_array(get(j, "Replicas")));
    assert_true(json_is_array(get(j, "SlaveHosts")));
    assert_int_equal(json_array_size(get(j, "Problems")), 0);
    assert_str(j, "Orch.AgentState", "UP");
    assert_bool(j, "Orch.Stale", false);
    assert_bool(j, "Orch.MasterUnresolved", false);
    assert_true(json_is_array(get(j, "Orch.Witness")));
    assert_true(json_is_array(get(j, "Orch.Channels")));
    assert_null(json_object_get(get(j, "Orch"), "Report"));
    json_decref(j);

    /* the master: no replication at all, one replica */
    reg_instance *m = registry_find(reg, "127.0.0.1", 3301);
    c.raw_report = true;
    j = render_instance(m, &c);
    assert_str(j, "MasterKey.Hostname", "");
    assert_int(j, "MasterKey.Port", 0);
    assert_int(j, "ReplicationSQLThreadState", -1);
    assert_int(j, "ReplicationIOThreadState", -1);
    assert_bool(j, "ReplicationIOThreadRuning", false);
    assert_bool(j, "SecondsBehindMaster.Valid", false);
    assert_int(j, "ReplicationDepth", 0);
    assert_int_equal(json_array_size(get(j, "Replicas")), 1);
    assert_int(json_array_get(get(j, "Replicas"), 0), "Port", 3302);
    assert_int(j, "Orch.Report.port", 3301);
    json_decref(j);
    registry_free(reg);
}

static void null_lag(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)sv;
    ch->has_seconds_behind_master = false;
    ch->io_thread = ORCH__THREAD_STATE__THREAD_CONNECTING;
    ch->last_io_error = "error connecting to master";
}

static void stopped(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)sv;
    ch->has_seconds_behind_master = false;
    ch->io_thread = ORCH__THREAD_STATE__THREAD_NO;
    ch->sql_thread = ORCH__THREAD_STATE__THREAD_NO;
}

static void unreported_threads(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)sv;
    ch->has_io_thread = false;
}

static void test_null_lag_and_thread_states(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    reg_instance *conn = add(reg, 3302, 3301, null_lag);
    reg_instance *stop = add(reg, 3303, 3301, stopped);
    reg_instance *unrep = add(reg, 3304, 3301, unreported_threads);
    registry_refresh(reg);
    render_ctx c = ctx();

    json_t *j = render_instance(conn, &c);
    assert_int(j, "SecondsBehindMaster.Int64", 0);
    assert_bool(j, "SecondsBehindMaster.Valid", false);
    assert_bool(j, "ReplicationLagSeconds.Valid", false);
    assert_int(j, "ReplicationIOThreadState", 2);
    assert_int(j, "ReplicationSQLThreadState", 1);
    assert_bool(j, "ReplicationIOThreadRuning", false);
    assert_str(j, "LastIOError", "error connecting to master");
    assert_true(has_problem(j, "not_replicating"));
    json_decref(j);

    j = render_instance(stop, &c);
    assert_int(j, "ReplicationIOThreadState", 0);
    assert_int(j, "ReplicationSQLThreadState", 0);
    assert_true(has_problem(j, "not_replicating"));
    json_decref(j);

    j = render_instance(unrep, &c);
    assert_int(j, "ReplicationIOThreadState", 2);
    json_decref(j);

    char d[640];
    assert_string_equal(render_description(conn, &c, d, sizeof(d)),
                        "[null,nonreplicating,10.11.6-MariaDB-log,ro,ROW,>>,GTID]");
    assert_int_equal(render_thread_state(NULL, true), -1);
    registry_free(reg);
}

static void lagging(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)sv;
    ch->seconds_behind_master = 30;
}

static void delayed(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)sv;
    ch->seconds_behind_master = 3605;
    ch->has_sql_delay = true;
    ch->sql_delay = 3600;
}

static void test_replication_lag(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    reg_instance *lag = add(reg, 3302, 3301, lagging);
    reg_instance *del = add(reg, 3303, 3301, delayed);
    registry_refresh(reg);
    render_ctx c = ctx();
    json_t *j = render_instance(lag, &c);
    assert_int(j, "SecondsBehindMaster.Int64", 30);
    assert_true(has_problem(j, "replication_lag"));
    json_decref(j);
    j = render_instance(del, &c);
    assert_int(j, "SQLDelay", 3600);
    assert_false(has_problem(j, "replication_lag"));
    json_decref(j);
    char d[640];
    assert_string_equal(render_description(lag, &c, d, sizeof(d)),
                        "[30s,lag,10.11.6-MariaDB-log,ro,ROW,>>,GTID]");
    json_t *ci = render_cluster_info(lag->cluster, &c);
    assert_int(ci, "HeuristicLag", 3605);
    json_decref(ci);
    registry_free(reg);
}

static void test_downtime_and_rules(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    reg_instance *r2 = add(reg, 3302, 3301, NULL);
    add(reg, 3303, 3301, NULL);
    reg_operator_row rows[2] = {
        {.key = {.host = "127.0.0.1", .port = 3302},
         .op = {.downtime_until_ms = NOW_WALL + 3600 * 1000,
                .downtime_owner = "alice",
                .downtime_reason = "disk swap",
                .promotion_override = ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT}},
        {.key = {.host = "127.0.0.1", .port = 3303},
         .op = {.downtime_until_ms = NOW_WALL - 1000, /* over */
                .downtime_owner = "bob",
                .promotion_override = ORCH__PROMOTION_RULE__PROMOTION_PREFER}},
    };
    reg_alias_row alias = {.cluster = "127.0.0.1:3301", .alias = "main"};
    assert_int_equal(registry_set_operator_state(reg, rows, 2, &alias, 1), ORCH_OK);
    registry_refresh(reg);
    render_ctx c = ctx();

    json_t *j = render_instance(r2, &c);
    assert_bool(j, "IsDowntimed", true);
    assert_str(j, "DowntimeOwner", "alice");
    assert_str(j, "DowntimeReason", "disk swap");
    assert_str(j, "DowntimeEndTimestamp", "2030-03-17 18:46:40");
    assert_str(j, "PromotionRule", "must_not");
    assert_str(j, "Orch.PromotionRuleSource", "operator");
    assert_str(j, "SuggestedClusterAlias", "main");
    json_decref(j);
    char d[640];
    assert_string_equal(render_description(r2, &c, d, sizeof(d)),
                        "[0s,ok,10.11.6-MariaDB-log,ro,ROW,>>,GTID,downtimed]");

    j = render_instance(registry_find(reg, "127.0.0.1", 3303), &c);
    assert_bool(j, "IsDowntimed", false);
    assert_str(j, "DowntimeOwner", "");
    assert_str(j, "DowntimeEndTimestamp", "");
    assert_str(j, "PromotionRule", "prefer");
    assert_bool(j, "IsCandidate", true);
    json_decref(j);

    json_t *ci = render_cluster_info(r2->cluster, &c);
    char *s = json_dumps(ci, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"ClusterName\":\"127.0.0.1:3301\",\"ClusterAlias\":\"main\","
                           "\"ClusterDomain\":\"\",\"CountInstances\":3,\"HeuristicLag\":0,"
                           "\"HasAutomatedMasterRecovery\":false,"
                           "\"HasAutomatedIntermediateMasterRecovery\":false}");
    free(s);
    json_decref(ci);
    registry_free(reg);
}

static void agent_problems(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)sv;
    (void)ch;
    static char *p[] = {"missing privilege READ_ONLY ADMIN", "semi-sync timeout too short"};
    r->n_problems = 2;
    r->problems = p;
}

static void test_stale_and_down(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, agent_problems);
    reg_instance *r2 = apply(reg, report(3302, 3301, NULL), NOW_MS - STALE_MS - 1);
    registry_refresh(reg);
    render_ctx c = ctx();

    json_t *j = render_instance(r2, &c);
    assert_bool(j, "IsRecentlyChecked", false);
    assert_bool(j, "IsUpToDate", false);
    assert_bool(j, "IsLastCheckValid", true);
    assert_bool(j, "Orch.Stale", true);
    assert_int(j, "SecondsSinceLastSeen.Int64", 5);
    assert_str(json_array_get(get(j, "Problems"), 0), "", "not_recently_checked");
    json_decref(j);
    char d[640];
    assert_string_equal(render_description(r2, &c, d, sizeof(d)),
                        "[unknown,unchecked,10.11.6-MariaDB-log,ro,ROW,>>,GTID,agent:stale]");

    /* the master's agent now says its server is down (no server status): the
     * registry keeps the last known status, shown with IsLastCheckValid false */
    Orch__InstanceReport *down = report(3301, 0, agent_problems);
    down->state = ORCH__PROBE_STATE__PROBE_DOWN;
    orch__server_status__free_unpacked(down->server, NULL);
    down->server = NULL;
    reg_instance *m = apply(reg, down, NOW_MS);
    registry_refresh(reg);
    j = render_instance(m, &c);
    assert_bool(j, "IsLastCheckValid", false);
    assert_str(j, "Orch.AgentState", "DOWN");
    json_t *p = get(j, "Problems");
    assert_int_equal(json_array_size(p), 3);
    assert_string_equal(json_string_value(json_array_get(p, 0)), "last_check_invalid");
    assert_string_equal(json_string_value(json_array_get(p, 1)),
                        "missing privilege READ_ONLY ADMIN");
    assert_str(j, "Version", "10.11.6-MariaDB-log");
    json_decref(j);
    assert_string_equal(
        render_description(m, &c, d, sizeof(d)),
        "[unknown,invalid,10.11.6-MariaDB-log,rw,ROW,>>,GTID,agent:down,problems:2]");
    registry_free(reg);
}

static void latin1(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)sv;
    ch->last_sql_error = "Caf\xe9 \xff ok \xc3\xa9";
}

static void test_not_utf8(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    reg_instance *r2 = add(reg, 3302, 3301, latin1);
    registry_refresh(reg);
    render_ctx c = ctx();
    json_t *j = render_instance(r2, &c);
    assert_non_null(j);
    assert_str(j, "LastSQLError", "Caf? ? ok \xc3\xa9");
    json_decref(j);
    registry_free(reg);
}

/* Hand-built: flags the registry sets for masters it cannot resolve. */
static void test_unresolved_master(void **state)
{
    (void)state;
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    Orch__Channel *chans[1] = {&ch};
    r.host = "db2";
    r.port = 3306;
    r.state = ORCH__PROBE_STATE__PROBE_UP;
    r.has_fenced = true;
    r.fenced = true;
    r.n_channels = 1;
    r.channels = chans;
    ch.master_host = "gone.example";
    ch.has_master_port = true;
    ch.master_port = 3306;
    ch.has_io_thread = ch.has_sql_thread = true;
    ch.io_thread = ORCH__THREAD_STATE__THREAD_CONNECTING;
    ch.sql_thread = ORCH__THREAD_STATE__THREAD_YES;
    reg_cluster cl = {.name = "db2:3306"};
    reg_instance i = {
        .key = {.host = "db2", .port = 3306},
        .name = "db2:3306",
        .report = &r,
        .last_seen_ms = NOW_MS,
        .channel = &ch,
        .master_key = {.host = "gone.example", .port = 3306},
        .has_master = true,
        .master_unresolved = true,
        .cluster = &cl,
        .op = {.promotion_override = -1},
    };
    reg_instance *members[1] = {&i};
    cl.master = &i;
    cl.members = members;
    cl.nmembers = 1;
    render_ctx c = ctx();
    json_t *j = render_instance(&i, &c);
    assert_str(j, "MasterKey.Hostname", "gone.example");
    assert_str(j, "ClusterName", "db2:3306");
    assert_bool(j, "Orch.MasterUnresolved", true);
    assert_bool(j, "Orch.Fenced", true);
    assert_true(has_problem(j, "not_replicating"));
    assert_true(has_problem(j, "unresolved_master"));
    assert_true(has_problem(j, "fenced"));
    assert_str(j, "FlavorName", "unknown");
    json_decref(j);
    char *t = render_topology(&cl, &c);
    assert_string_equal(t, "db2:3306 [null,nonreplicating,fenced,master:unresolved]");
    free(t);
}

/* ---- topology ---------------------------------------------------------------- */

#define DESC_RW "[0s,ok,10.11.6-MariaDB-log,rw,ROW,>>,GTID]"
#define DESC_RO "[0s,ok,10.11.6-MariaDB-log,ro,ROW,>>,GTID]"

static void test_topology_chain(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    add(reg, 3302, 3301, NULL);
    add(reg, 3303, 3302, NULL);
    render_ctx c = ctx();
    reg_cluster *cl = registry_cluster_by_hint(reg, "127.0.0.1:3303");
    assert_non_null(cl);
    char *t = render_topology(cl, &c);
    assert_string_equal(t, "127.0.0.1:3301     " DESC_RW "\n"
                           "+ 127.0.0.1:3302   " DESC_RO "\n"
                           "  + 127.0.0.1:3303 " DESC_RO);
    free(t);
    registry_free(reg);
}

static void test_topology_tree(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    add(reg, 3302, 3301, NULL);
    add(reg, 3303, 3301, stopped);
    add(reg, 3304, 3302, NULL);
    apply(reg, report(3305, 3304, NULL), NOW_MS - STALE_MS - 1000);
    render_ctx c = ctx();
    reg_cluster *cl = registry_cluster_by_hint(reg, "127.0.0.1:3301");
    char *t = render_topology(cl, &c);
    assert_string_equal(
        t,
        "127.0.0.1:3301       " DESC_RW "\n"
        "+ 127.0.0.1:3302     " DESC_RO "\n"
        "  + 127.0.0.1:3304   " DESC_RO "\n"
        "    - 127.0.0.1:3305 [unknown,unchecked,10.11.6-MariaDB-log,ro,ROW,>>,GTID,agent:stale]\n"
        "- 127.0.0.1:3303     [null,nonreplicating,10.11.6-MariaDB-log,ro,ROW,>>,GTID]");
    free(t);
    registry_free(reg);
}

static void co_master(Orch__InstanceReport *r, Orch__ServerStatus *sv, Orch__Channel *ch)
{
    (void)r;
    (void)ch;
    sv->read_only = r->port == 3302;
}

static void test_topology_co_masters(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 3302, co_master); /* writable */
    add(reg, 3302, 3301, co_master); /* read-only */
    add(reg, 3303, 3301, NULL);
    add(reg, 3304, 3302, NULL);
    render_ctx c = ctx();
    reg_cluster *cl = registry_cluster_by_hint(reg, "127.0.0.1:3304");
    assert_non_null(cl);
    assert_string_equal(cl->name, "127.0.0.1:3301");
    char *t = render_topology(cl, &c);
    assert_string_equal(t, "+ 127.0.0.1:3301   " DESC_RW "\n"
                           "  + 127.0.0.1:3303 " DESC_RO "\n"
                           "+ 127.0.0.1:3302   " DESC_RO "\n"
                           "  + 127.0.0.1:3304 " DESC_RO);
    free(t);
    json_t *j = render_instance(registry_find(reg, "127.0.0.1", 3302), &c);
    assert_bool(j, "IsCoMaster", true);
    assert_bool(j, "Orch.CoMaster", true);
    json_decref(j);
    registry_free(reg);
}

static void test_page(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    add(reg, 3302, 3301, stopped);
    render_ctx c = ctx();
    size_t n;
    reg_cluster *const *cl = registry_clusters(reg, &n);
    render_page_info pi = {.node = "coord<1>", .is_leader = true, .epoch = 7, .backend_ok = true};
    char *html = render_page(cl, n, &pi, &c);
    assert_non_null(html);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_non_null(strstr(html, "coord&lt;1&gt;"));
    assert_non_null(strstr(html, "leader</span>, epoch 7"));
    assert_non_null(strstr(html, "<h2>Clusters (1)</h2>"));
    assert_non_null(
        strstr(html, "127.0.0.1:3301   [0s,ok,10.11.6-MariaDB-log,rw,ROW,&gt;&gt;,GTID]"));
    assert_non_null(strstr(html, "<td>127.0.0.1:3302</td>"));
    assert_non_null(strstr(html, "not_replicating"));
    assert_null(strstr(html, "<script"));
    free(html);
    registry_free(reg);
}

/* Every field orchestrator's clients read, under its exact name and type. */
static void test_analysis_entry(void **state)
{
    (void)state;
    registry *reg = registry_new(0);
    add(reg, 3301, 0, NULL);
    add(reg, 3302, 3301, NULL);
    add(reg, 3303, 3301, NULL);
    reg_alias_row alias = {.cluster = "127.0.0.1:3301", .alias = "shop"};
    assert_int_equal(registry_set_operator_state(reg, NULL, 0, &alias, 1), ORCH_OK);
    size_t n;
    reg_cluster *const *cls = registry_clusters(reg, &n);
    assert_int_equal(n, 1);

    orch_key replicas[2] = {{.host = "127.0.0.1", .port = 3302},
                            {.host = "127.0.0.1", .port = 3303}};
    analysis_errant errant = {
        .replica = {.host = "127.0.0.1", .port = 3303}, .gtid = "0-9-1", .downtimed = false};
    analysis_cluster ac = {.name = "127.0.0.1:3301",
                           .alias = "shop",
                           .master = {.host = "127.0.0.1", .port = 3301},
                           .code = ANALYSIS_DEAD_MASTER,
                           .recoverable = true,
                           .first = 0,
                           .count = 1};
    analysis_entry e = {
        .key = {.host = "127.0.0.1", .port = 3301},
        .name = "127.0.0.1:3301",
        .cluster = 0,
        .role = ANALYSIS_ROLE_MASTER,
        .code = ANALYSIS_DEAD_MASTER,
        .recoverable = true,
        .description = "127.0.0.1:3301's agent says its server is DOWN",
        .structure = ANALYSIS_ST_ERRANT_GTID | ANALYSIS_ST_NO_FAILOVER_SUPPORT,
        .structure_detail = "127.0.0.1:3303 has errant GTIDs",
        .is_master = true,
        .state = ORCH__PROBE_STATE__PROBE_DOWN,
        .agent_age_ms = 1500,
        .is_downtimed = true,
        .downtime_until_wall_ms = NOW_WALL + 90500,
        .replication_depth = 0,
        .count_replicas = 2,
        .count_valid_replicas = 2,
        .count_valid_replicating_replicas = 0,
        .count_replicas_failing_to_connect_to_master = 2,
        .count_downtimed_replicas = 1,
        .count_confirming_replicas = 2,
        .count_lagging_replicas = 1,
        .count_logging_replicas = 2,
        .replicas = replicas,
        .nreplicas = 2,
        .gtid_mode = "",
        .errant = &errant,
        .nerrant = 1,
        .max_replica_gtid_errant = "0-9-1",
        .direct = {.state = ANALYSIS_DIRECT_TIMED_OUT},
    };
    analysis_result res = {
        .now_ms = NOW_MS, .clusters = &ac, .nclusters = 1, .entries = &e, .nentries = 1};
    render_ctx c = ctx();
    c.recover_master = true;
    json_t *j = render_analysis_entry(&res, &e, cls[0], registry_find(reg, "127.0.0.1", 3301), &c);
    assert_non_null(j);
    assert_str(j, "AnalyzedInstanceKey.Hostname", "127.0.0.1");
    assert_int(j, "AnalyzedInstanceKey.Port", 3301);
    assert_str(j, "AnalyzedInstanceMasterKey.Hostname", "");
    assert_int(j, "AnalyzedInstanceMasterKey.Port", 0);
    assert_str(j, "ClusterDetails.ClusterName", "127.0.0.1:3301");
    assert_str(j, "ClusterDetails.ClusterAlias", "shop");
    assert_str(j, "ClusterDetails.ClusterDomain", "");
    assert_int(j, "ClusterDetails.CountInstances", 3);
    assert_bool(j, "ClusterDetails.HasAutomatedMasterRecovery", true);
    assert_str(j, "AnalyzedInstanceDataCenter", "");
    assert_int(j, "AnalyzedInstanceBinlogCoordinates.LogPos", 0);
    assert_bool(j, "IsMaster", true);
    assert_bool(j, "IsClusterMaster", true);
    assert_bool(j, "IsCoMaster", false);
    assert_bool(j, "LastCheckValid", false);
    assert_int(j, "CountReplicas", 2);
    assert_int(j, "CountValidReplicas", 2);
    assert_int(j, "CountValidReplicatingReplicas", 0);
    assert_int(j, "CountReplicasFailingToConnectToMaster", 2);
    assert_int(j, "CountDowntimedReplicas", 1);
    assert_int(j, "CountLaggingReplicas", 1);
    assert_int(j, "CountLoggingReplicas", 2);
    assert_int(j, "ReplicationDepth", 0);
    assert_int_equal(json_array_size(get(j, "Replicas")), 2);
    assert_int(json_array_get(get(j, "Replicas"), 1), "Port", 3303);
    assert_true(json_equal(get(j, "Replicas"), get(j, "SlaveHosts")));
    assert_bool(j, "IsFailingToConnectToMaster", false);
    assert_str(j, "Analysis", "DeadMaster");
    assert_str(j, "Description", "127.0.0.1:3301's agent says its server is DOWN");
    json_t *sa = get(j, "StructureAnalysis");
    assert_int_equal(json_array_size(sa), 2);
    assert_string_equal(json_string_value(json_array_get(sa, 0)),
                        "NoFailoverSupportStructureWarning");
    assert_string_equal(json_string_value(json_array_get(sa, 1)), "ErrantGTIDStructureWarning");
    assert_bool(j, "IsDowntimed", true);
    assert_bool(j, "IsReplicasDowntimed", false);
    assert_str(j, "DowntimeEndTimestamp", "2030-03-17 17:48:10");
    assert_int(j, "DowntimeRemainingSeconds", 90);
    assert_bool(j, "MariaDBGTIDImmediateTopology", true);
    assert_bool(j, "OracleGTIDImmediateTopology", false);
    assert_bool(j, "IsActionableRecovery", true);
    assert_bool(j, "SkippableDueToDowntime", true);
    assert_str(j, "MaxReplicaGTIDErrant", "0-9-1");
    assert_bool(j, "IsReadOnly", false);
    /* orch's own, apart */
    assert_bool(j, "Orch.Recoverable", true);
    assert_str(j, "Orch.Role", "master");
    assert_str(j, "Orch.AgentState", "DOWN");
    assert_str(j, "Orch.DirectCheck.State", "timed-out");
    assert_true(json_is_null(get(j, "Orch.DirectCheck.Answered")));
    assert_int(j, "Orch.CountConfirmingReplicas", 2);
    assert_str(j, "Orch.StructureDetail", "127.0.0.1:3303 has errant GTIDs");
    assert_int(json_array_get(get(j, "Orch.ErrantReplicas"), 0), "Key.Port", 3303);
    assert_bool(j, "Orch.ClusterWarmingUp", false);
    json_decref(j);

    /* without registry objects: from the analysis alone; no master key; a warm-up */
    e.has_master = true;
    e.master_key = (orch_key){.host = "127.0.0.1", .port = 3300};
    e.is_downtimed = false;
    e.downtime_until_wall_ms = 0;
    ac.warming_up = true;
    ac.note = "127.0.0.1:3303 not heard from yet";
    j = render_analysis_entry(&res, &e, NULL, NULL, &c);
    assert_non_null(j);
    assert_int(j, "AnalyzedInstanceMasterKey.Port", 3300);
    assert_str(j, "ClusterDetails.ClusterName", "127.0.0.1:3301");
    assert_str(j, "ClusterDetails.ClusterAlias", "shop");
    assert_str(j, "DowntimeEndTimestamp", "");
    assert_int(j, "DowntimeRemainingSeconds", 0);
    assert_bool(j, "Orch.ClusterWarmingUp", true);
    assert_str(j, "Orch.ClusterNote", "127.0.0.1:3303 not heard from yet");
    json_decref(j);
    registry_free(reg);
}

static json_t *row(const char *const *kv)
{
    json_t *o = json_object();
    for (size_t k = 0; kv[k] != NULL; k += 2)
        json_object_set_new(o, kv[k], kv[k + 1] ? json_string(kv[k + 1]) : json_null());
    return o;
}

static void test_recovery_rows(void **state)
{
    (void)state;
    static const char *const ok_row[] = {"uid",
                                         "18f-abc",
                                         "cluster",
                                         "127.0.0.1:3301",
                                         "cluster_alias",
                                         "shop",
                                         "failed_host",
                                         "127.0.0.1",
                                         "failed_port",
                                         "3301",
                                         "analysis",
                                         "DeadMaster",
                                         "description",
                                         "dead",
                                         "state",
                                         "succeeded",
                                         "successor_host",
                                         "127.0.0.1",
                                         "successor_port",
                                         "3303",
                                         "lost_replicas",
                                         "127.0.0.1:3304",
                                         "participating_replicas",
                                         "127.0.0.1:3302,127.0.0.1:3303,127.0.0.1:3304",
                                         "node",
                                         "c1",
                                         "epoch",
                                         "4",
                                         "started_at",
                                         "2030-03-17 17:46:40.123456",
                                         "ended_at",
                                         "2030-03-17 17:46:41.000001",
                                         "is_successful",
                                         "1",
                                         "acknowledged",
                                         "1",
                                         "acknowledged_at",
                                         "2030-03-17 18:00:00.5",
                                         "acknowledged_by",
                                         "alice",
                                         "acknowledged_comment",
                                         "fine",
                                         "ordinal",
                                         "7",
                                         NULL};
    json_t *r = row(ok_row);
    json_t *j = render_recovery_row(r);
    assert_non_null(j);
    assert_int(j, "Id", 7);
    assert_str(j, "UID", "18f-abc");
    assert_str(j, "AnalysisEntry.AnalyzedInstanceKey.Hostname", "127.0.0.1");
    assert_int(j, "AnalysisEntry.AnalyzedInstanceKey.Port", 3301);
    assert_str(j, "AnalysisEntry.ClusterDetails.ClusterName", "127.0.0.1:3301");
    assert_str(j, "AnalysisEntry.ClusterDetails.ClusterAlias", "shop");
    assert_str(j, "AnalysisEntry.Analysis", "DeadMaster");
    assert_str(j, "AnalysisEntry.Description", "dead");
    assert_int(j, "SuccessorKey.Port", 3303);
    assert_bool(j, "IsActive", false);
    assert_bool(j, "IsSuccessful", true);
    assert_int_equal(json_array_size(get(j, "LostReplicas")), 1);
    assert_int(json_array_get(get(j, "LostReplicas"), 0), "Port", 3304);
    assert_int_equal(json_array_size(get(j, "ParticipatingInstanceKeys")), 3);
    assert_int_equal(json_array_size(get(j, "AllErrors")), 0);
    assert_str(j, "RecoveryStartTimestamp", "2030-03-17 17:46:40");
    assert_str(j, "RecoveryEndTimestamp", "2030-03-17 17:46:41");
    assert_str(j, "ProcessingNodeHostname", "c1");
    assert_bool(j, "Acknowledged", true);
    assert_str(j, "AcknowledgedAt", "2030-03-17 18:00:00");
    assert_str(j, "AcknowledgedBy", "alice");
    assert_str(j, "AcknowledgedComment", "fine");
    assert_str(j, "Type", "MasterRecovery");
    assert_str(j, "Orch.State", "succeeded");
    assert_int(j, "Orch.Epoch", 4);
    json_decref(j);
    json_decref(r);

    /* running, then failed: no successor, the error after the last " | " */
    static const char *const failed_row[] = {"uid",
                                             "18f-def",
                                             "cluster",
                                             "127.0.0.1:3301",
                                             "cluster_alias",
                                             "",
                                             "failed_host",
                                             "127.0.0.1",
                                             "failed_port",
                                             "3301",
                                             "analysis",
                                             "DeadIntermediateMaster",
                                             "description",
                                             "a | b | no candidate: all must_not",
                                             "state",
                                             "refused",
                                             "successor_host",
                                             "",
                                             "successor_port",
                                             "0",
                                             "lost_replicas",
                                             NULL,
                                             "participating_replicas",
                                             "",
                                             "started_at",
                                             "2030-03-17 17:46:40",
                                             "ended_at",
                                             NULL,
                                             "is_successful",
                                             "0",
                                             "acknowledged",
                                             "0",
                                             "acknowledged_at",
                                             NULL,
                                             NULL};
    r = row(failed_row);
    j = render_recovery_row(r);
    assert_true(json_is_null(get(j, "SuccessorKey")));
    assert_bool(j, "IsSuccessful", false);
    assert_str(j, "AnalysisEntry.ClusterDetails.ClusterAlias", "127.0.0.1:3301");
    assert_string_equal(json_string_value(json_array_get(get(j, "AllErrors"), 0)),
                        "no candidate: all must_not");
    assert_int_equal(json_array_size(get(j, "LostReplicas")), 0);
    assert_str(j, "RecoveryEndTimestamp", "");
    assert_str(j, "AcknowledgedAt", "");
    assert_str(j, "Type", "IntermediateMasterRecovery");
    assert_int(j, "Id", 0);
    json_decref(j);
    json_decref(r);

    static const char *const step_row[] = {"uid",     "18f-abc",
                                           "seq",     "3",
                                           "at",      "2030-03-17 17:46:40.5",
                                           "step",    "promote",
                                           "message", "127.0.0.1:3303 is the new master",
                                           NULL};
    r = row(step_row);
    j = render_recovery_step_row(r);
    assert_int(j, "Id", 3);
    assert_str(j, "RecoveryUID", "18f-abc");
    assert_str(j, "AuditAt", "2030-03-17 17:46:40");
    assert_str(j, "Message", "127.0.0.1:3303 is the new master");
    assert_str(j, "Orch.Step", "promote");
    json_decref(j);
    json_decref(r);

    static const char *const det_row[] = {"id",
                                          "12",
                                          "detected_at",
                                          "2030-03-17 17:46:39.9",
                                          "cluster",
                                          "127.0.0.1:3301",
                                          "hostname",
                                          "127.0.0.1",
                                          "port",
                                          "3301",
                                          "analysis",
                                          "DeadMaster",
                                          "description",
                                          "dead",
                                          "node",
                                          "c2",
                                          "epoch",
                                          "5",
                                          "recovery_uid",
                                          "",
                                          NULL};
    r = row(det_row);
    j = render_failure_detection_row(r);
    assert_int(j, "Id", 12);
    assert_int(j, "AnalysisEntry.AnalyzedInstanceKey.Port", 3301);
    assert_str(j, "AnalysisEntry.Analysis", "DeadMaster");
    assert_str(j, "AnalysisEntry.ClusterDetails.ClusterName", "127.0.0.1:3301");
    assert_str(j, "RecoveryStartTimestamp", "2030-03-17 17:46:39");
    assert_str(j, "ProcessingNodeHostname", "c2");
    assert_bool(j, "IsActive", false);
    assert_int(j, "Orch.Epoch", 5);
    json_decref(j);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_and_envelope),
        cmocka_unit_test(test_instance_fields),
        cmocka_unit_test(test_null_lag_and_thread_states),
        cmocka_unit_test(test_replication_lag),
        cmocka_unit_test(test_downtime_and_rules),
        cmocka_unit_test(test_stale_and_down),
        cmocka_unit_test(test_not_utf8),
        cmocka_unit_test(test_unresolved_master),
        cmocka_unit_test(test_topology_chain),
        cmocka_unit_test(test_topology_tree),
        cmocka_unit_test(test_topology_co_masters),
        cmocka_unit_test(test_page),
        cmocka_unit_test(test_analysis_entry),
        cmocka_unit_test(test_recovery_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
