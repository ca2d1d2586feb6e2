/*
 * render.c: registry objects in orchestrator's shapes, the ASCII topology and
 * the web page.
 *
 * The field list of render_instance() follows orchestrator's Instance struct
 * (go/inst/instance.go) in its order, with the values orchestrator's API
 * clients read filled from the agent's report and the registry's topology;
 * fields orch cannot know (pseudo-GTID, binlog servers, group replication,
 * snapshot counts) are left out rather than invented. NullInt64 values are
 * {"Int64": n, "Valid": bool} as Go's database/sql marshals them, time
 * stamps are "YYYY-MM-DD HH:MM:SS" in UTC like the backend columns
 * orchestrator passes through, and a durations is nanoseconds (Go's
 * time.Duration).
 *
 * Strings from agents may hold bytes that are not UTF-8 (a server's error
 * text in latin1, say); JSON cannot carry them, so they are replaced by '?'
 * instead of failing the whole response.
 */
#include "render.h"

#include "probe.h"
#include "sbuf.h"

#include "pbjson.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- small helpers ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned int cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string of s ("" for NULL), with bytes that are not UTF-8 replaced by '?'. */
static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_string("");
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            copy[o++] = '?';
            p++;
        } else {
            memcpy(copy + o, p, n);
            o += n;
            p += n;
        }
    }
    copy[o] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

/* json_object_set_new that remembers failures (a NULL value counts as one). */
static void put(json_t *o, const char *k, json_t *v, bool *oom)
{
    if (v == NULL || json_object_set_new(o, k, v) != 0)
        *oom = true;
}

/* o when nothing failed; otherwise o is released and NULL returned. */
static json_t *finish(json_t *o, bool oom)
{
    if (oom) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *nullint(int64_t v, bool valid)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    put(o, "Int64", json_integer(valid ? v : 0), &oom);
    put(o, "Valid", json_boolean(valid), &oom);
    return finish(o, oom);
}

/* orchestrator's BinlogCoordinates {LogFile, LogPos, Type} (0 binary log, 1 relay log). */
static json_t *coordinates(const char *file, uint64_t pos, int type)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    put(o, "LogFile", jstr(file), &oom);
    put(o, "LogPos", json_integer((json_int_t)pos), &oom);
    put(o, "Type", json_integer(type), &oom);
    return finish(o, oom);
}

/* "YYYY-MM-DD HH:MM:SS" UTC, or "" for 0. */
static const char *fmt_ts(int64_t wall_ms, char *buf, size_t len)
{
    if (wall_ms <= 0) {
        snprintf(buf, len, "%s", "");
        return buf;
    }
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, len, "%s", "");
    return buf;
}

static bool str_nonempty(const char *s)
{
    return s != NULL && *s != '\0';
}

/* ---- names ------------------------------------------------------------------- */

const char *render_agent_state_name(Orch__ProbeState s)
{
    return orch_probe_state_name(s);
}

const char *render_promotion_rule_name(Orch__PromotionRule r)
{
    switch (r) {
    case ORCH__PROMOTION_RULE__PROMOTION_PREFER:
        return "prefer";
    case ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT:
        return "prefer_not";
    case ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT:
        return "must_not";
    default:
        return "neutral";
    }
}

const char *render_flavor_name(Orch__Flavor f)
{
    switch (f) {
    case ORCH__FLAVOR__FLAVOR_MYSQL:
        return "MySQL";
    case ORCH__FLAVOR__FLAVOR_MARIADB:
        return "MariaDB";
    case ORCH__FLAVOR__FLAVOR_PERCONA:
        return "Percona";
    default:
        return "unknown";
    }
}

const char *render_witness_name(Orch__WitnessResult w)
{
    switch (w) {
    case ORCH__WITNESS_RESULT__WITNESS_GREETING:
        return "GREETING";
    case ORCH__WITNESS_RESULT__WITNESS_REFUSED:
        return "REFUSED";
    case ORCH__WITNESS_RESULT__WITNESS_TIMEOUT:
        return "TIMEOUT";
    case ORCH__WITNESS_RESULT__WITNESS_ERROR:
        return "ERROR";
    default:
        return "NOT_CHECKED";
    }
}

int render_thread_state(const Orch__Channel *ch, bool io_thread)
{
    if (ch == NULL)
        return -1;
    bool has = io_thread ? ch->has_io_thread : ch->has_sql_thread;
    Orch__ThreadState s = io_thread ? ch->io_thread : ch->sql_thread;
    if (!has)
        return 2;
    switch (s) {
    case ORCH__THREAD_STATE__THREAD_NO:
        return 0;
    case ORCH__THREAD_STATE__THREAD_YES:
        return 1;
    default:
        return 2;
    }
}

/* ---- facts about an instance, computed once per render -------------------------- */

typedef struct facts {
    const Orch__InstanceReport *r;
    const Orch__ServerStatus *sv; /* NULL when the agent reported no server status */
    const Orch__Channel *ch;      /* the channel that defines the master, or NULL */
    bool up, stale, valid, recent;
    bool replica; /* has a master channel */
    bool running; /* both threads running */
    bool lag_valid;
    int64_t lag;
    uint32_t sql_delay;
    bool using_mariadb_gtid, using_oracle_gtid, supports_oracle_gtid;
    bool downtimed, in_maintenance;
    Orch__PromotionRule rule;
} facts;

bool render_is_stale(const reg_instance *i, const render_ctx *c)
{
    return reg_instance_is_stale(i, c->now_ms, c->stale_after_ms);
}

static facts get_facts(const reg_instance *i, const render_ctx *c)
{
    facts f = {0};
    f.r = i->report;
    f.sv = f.r->server;
    f.ch = i->channel;
    f.up = f.r->state == ORCH__PROBE_STATE__PROBE_UP;
    f.stale = render_is_stale(i, c);
    f.valid = f.up;
    f.recent = !f.stale;
    f.replica = f.ch != NULL;
    f.running = render_thread_state(f.ch, true) == 1 && render_thread_state(f.ch, false) == 1;
    if (f.ch != NULL) {
        f.lag_valid = f.ch->has_seconds_behind_master;
        f.lag = f.lag_valid ? f.ch->seconds_behind_master : 0;
        f.sql_delay = f.ch->has_sql_delay ? f.ch->sql_delay : 0;
        f.using_mariadb_gtid =
            str_nonempty(f.ch->using_gtid) && strcasecmp(f.ch->using_gtid, "No") != 0;
        f.using_oracle_gtid = f.ch->has_auto_position && f.ch->auto_position;
    }
    if (f.sv != NULL) {
        bool mariadb = f.sv->has_flavor && f.sv->flavor == ORCH__FLAVOR__FLAVOR_MARIADB;
        f.supports_oracle_gtid =
            !mariadb && f.sv->gtid_mode != NULL && strncasecmp(f.sv->gtid_mode, "ON", 2) == 0;
    }
    f.downtimed = i->op.downtime_until_ms > c->now_wall_ms;
    f.in_maintenance = i->op.maintenance_until_ms > c->now_wall_ms;
    f.rule = reg_instance_promotion_rule(i);
    return f;
}

#define SV_BOOL(f, field) ((f)->sv != NULL && (f)->sv->has_##field && (f)->sv->field)
#define SV_UINT(f, field) ((f)->sv != NULL && (f)->sv->has_##field ? (f)->sv->field : 0)
#define SV_STR(f, field)  ((f)->sv != NULL ? (f)->sv->field : NULL)

/* ---- JSON -------------------------------------------------------------------- */

static json_t *key_of(const char *host, uint32_t port)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    put(o, "Hostname", jstr(host), &oom);
    put(o, "Port", json_integer(port), &oom);
    return finish(o, oom);
}

json_t *render_key(const orch_key *k)
{
    return key_of(k->host, k->port);
}

static json_t *problems_of(const reg_instance *i, const facts *f, const render_ctx *c)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    bool oom = false;
    const char *first = NULL;
    if (!f->valid)
        first = "last_check_invalid";
    else if (!f->recent)
        first = "not_recently_checked";
    else if (f->replica && !f->running)
        first = "not_replicating";
    else if (f->lag_valid && llabs(f->lag - (int64_t)f->sql_delay) > c->reasonable_lag_s)
        first = "replication_lag";
    if (first != NULL && json_array_append_new(a, json_string(first)) != 0)
        oom = true;
    /* errant_gtid: comes with errant-GTID analysis. */
    const char *own[4];
    size_t nown = 0;
    if (i->master_unresolved)
        own[nown++] = "unresolved_master";
    if (i->master_ambiguous)
        own[nown++] = "ambiguous_master";
    if (f->r->has_fenced && f->r->fenced)
        own[nown++] = "fenced";
    if (f->r->has_self_fenced && f->r->self_fenced)
        own[nown++] = "self_fenced";
    for (size_t k = 0; k < nown; k++)
        if (json_array_append_new(a, json_string(own[k])) != 0)
            oom = true;
    for (size_t k = 0; k < f->r->n_problems; k++)
        if (json_array_append_new(a, jstr(f->r->problems[k])) != 0)
            oom = true;
    if (oom) {
        json_decref(a);
        return NULL;
    }
    return a;
}

json_t *render_problems(const reg_instance *i, const render_ctx *c)
{
    facts f = get_facts(i, c);
    return problems_of(i, &f, c);
}

static json_t *replicas_of(const reg_instance *i)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    for (size_t k = 0; k < i->nreplicas; k++) {
        if (json_array_append_new(a, render_key(&i->replicas[k]->key)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *strings_of(char **v, size_t n)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        if (json_array_append_new(a, jstr(v[k])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Per channel: what the agent's witness check saw of that channel's master. */
static json_t *witness_of(const Orch__InstanceReport *r)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    bool oom = false;
    for (size_t k = 0; k < r->n_channels; k++) {
        const Orch__Channel *ch = r->channels[k];
        json_t *o = json_object();
        if (o == NULL) {
            oom = true;
            break;
        }
        put(o, "Channel", jstr(ch->name), &oom);
        put(o, "MasterKey", key_of(ch->master_host, ch->has_master_port ? ch->master_port : 0),
            &oom);
        put(o, "Result",
            json_string(render_witness_name(
                ch->has_witness ? ch->witness : ORCH__WITNESS_RESULT__WITNESS_NOT_CHECKED)),
            &oom);
        put(o, "Milliseconds", json_integer(ch->has_witness_ms ? ch->witness_ms : 0), &oom);
        put(o, "Error", jstr(ch->witness_error), &oom);
        if (json_array_append_new(a, o) != 0)
            oom = true;
    }
    if (oom) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *channels_of(const Orch__InstanceReport *r)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    for (size_t k = 0; k < r->n_channels; k++) {
        if (json_array_append_new(a, orch_pb_to_json(&r->channels[k]->base)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *orch_section(const reg_instance *i, const facts *f, const render_ctx *c)
{
    const Orch__InstanceReport *r = f->r;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    char ts[32];
    put(o, "AgentState", json_string(render_agent_state_name(r->state)), &oom);
    put(o, "ProbeError", jstr(r->probe_error), &oom);
    put(o, "Stale", json_boolean(f->stale), &oom);
    put(o, "AgentSecondsSinceReport", json_real((double)(c->now_ms - i->last_seen_ms) / 1000.0),
        &oom);
    put(o, "AgentVersion", jstr(r->agent_version), &oom);
    put(o, "ProbeMicroseconds", json_integer(r->has_probe_us ? r->probe_us : 0), &oom);
    put(o, "Aliases", strings_of(r->aliases, r->n_aliases), &oom);
    put(o, "Witness", witness_of(r), &oom);
    put(o, "Fenced", json_boolean(r->has_fenced && r->fenced), &oom);
    put(o, "SelfFenced", json_boolean(r->has_self_fenced && r->self_fenced), &oom);
    put(o, "ObeyedEpoch", json_integer((json_int_t)(r->has_obeyed_epoch ? r->obeyed_epoch : 0)),
        &oom);
    put(o, "CommandListen", jstr(r->command_listen), &oom);
    put(o, "MasterUnresolved", json_boolean(i->master_unresolved), &oom);
    put(o, "MasterAmbiguous", json_boolean(i->master_ambiguous), &oom);
    put(o, "CoMaster", json_boolean(i->co_master), &oom);
    put(o, "InMaintenance", json_boolean(f->in_maintenance), &oom);
    put(o, "MaintenanceOwner", jstr(f->in_maintenance ? i->op.maintenance_owner : NULL), &oom);
    put(o, "MaintenanceReason", jstr(f->in_maintenance ? i->op.maintenance_reason : NULL), &oom);
    put(o, "MaintenanceEndTimestamp",
        json_string(fmt_ts(f->in_maintenance ? i->op.maintenance_until_ms : 0, ts, sizeof(ts))),
        &oom);
    put(o, "PromotionRuleSource", json_string(i->op.promotion_override >= 0 ? "operator" : "agent"),
        &oom);
    put(o, "AgentProblems", strings_of(r->problems, r->n_problems), &oom);
    put(o, "Channels", channels_of(r), &oom);
    if (c->raw_report)
        put(o, "Report", orch_pb_to_json(&r->base), &oom);
    return finish(o, oom);
}

json_t *render_instance(const reg_instance *i, const render_ctx *c)
{
    facts f = get_facts(i, c);
    const facts *F = &f;
    const Orch__Channel *ch = f.ch;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    char ts[32];
    bool mariadb =
        F->sv != NULL && F->sv->has_flavor && F->sv->flavor == ORCH__FLAVOR__FLAVOR_MARIADB;

    put(o, "Key", render_key(&i->key), &oom);
    put(o, "InstanceAlias", json_string(""), &oom);
    put(o, "Uptime", json_integer((json_int_t)SV_UINT(F, uptime_s)), &oom);
    put(o, "ServerID", json_integer(SV_UINT(F, server_id)), &oom);
    put(o, "ServerUUID", jstr(SV_STR(F, server_uuid)), &oom);
    put(o, "Version", jstr(SV_STR(F, version)), &oom);
    put(o, "VersionComment", jstr(SV_STR(F, version_comment)), &oom);
    put(o, "FlavorName",
        json_string(render_flavor_name(F->sv && F->sv->has_flavor ? F->sv->flavor
                                                                  : ORCH__FLAVOR__FLAVOR_UNKNOWN)),
        &oom);
    put(o, "ReadOnly", json_boolean(SV_BOOL(F, read_only)), &oom);
    put(o, "Binlog_format", jstr(SV_STR(F, binlog_format)), &oom);
    put(o, "BinlogRowImage", json_string(""), &oom);
    put(o, "LogBinEnabled", json_boolean(SV_BOOL(F, log_bin)), &oom);
    put(o, "LogSlaveUpdatesEnabled", json_boolean(SV_BOOL(F, log_slave_updates)), &oom);
    put(o, "LogReplicationUpdatesEnabled", json_boolean(SV_BOOL(F, log_slave_updates)), &oom);
    put(o, "SelfBinlogCoordinates", coordinates(SV_STR(F, binlog_file), SV_UINT(F, binlog_pos), 0),
        &oom);
    if (i->has_master)
        put(o, "MasterKey", render_key(&i->master_key), &oom);
    else
        put(o, "MasterKey", key_of("", 0), &oom);
    put(o, "MasterUUID", jstr(ch ? ch->master_uuid : NULL), &oom);
    put(o, "AncestryUUID", json_string(""), &oom);
    put(o, "IsDetachedMaster", json_false(), &oom);

    int sql = render_thread_state(ch, false), io = render_thread_state(ch, true);
    put(o, "Slave_SQL_Running", json_boolean(sql == 1), &oom);
    put(o, "ReplicationSQLThreadRuning", json_boolean(sql == 1), &oom);
    put(o, "Slave_IO_Running", json_boolean(io == 1), &oom);
    put(o, "ReplicationIOThreadRuning", json_boolean(io == 1), &oom);
    put(o, "ReplicationSQLThreadState", json_integer(sql), &oom);
    put(o, "ReplicationIOThreadState", json_integer(io), &oom);

    put(o, "HasReplicationFilters", json_false(), &oom);
    put(o, "GTIDMode", jstr(SV_STR(F, gtid_mode)), &oom);
    put(o, "SupportsOracleGTID", json_boolean(f.supports_oracle_gtid), &oom);
    put(o, "UsingOracleGTID", json_boolean(f.using_oracle_gtid), &oom);
    put(o, "UsingMariaDBGTID", json_boolean(f.using_mariadb_gtid), &oom);
    put(o, "UsingPseudoGTID", json_false(), &oom);
    put(o, "ReadBinlogCoordinates",
        coordinates(ch ? ch->master_log_file : NULL,
                    ch && ch->has_read_master_log_pos ? ch->read_master_log_pos : 0, 0),
        &oom);
    put(o, "ExecBinlogCoordinates",
        coordinates(ch ? ch->relay_master_log_file : NULL,
                    ch && ch->has_exec_master_log_pos ? ch->exec_master_log_pos : 0, 0),
        &oom);
    put(o, "IsDetached", json_false(), &oom);
    put(o, "RelaylogCoordinates", coordinates(NULL, 0, 1), &oom);
    put(o, "LastSQLError", jstr(ch ? ch->last_sql_error : NULL), &oom);
    put(o, "LastIOError", jstr(ch ? ch->last_io_error : NULL), &oom);
    put(o, "SecondsBehindMaster", nullint(f.lag, f.lag_valid), &oom);
    put(o, "SQLDelay", json_integer(f.sql_delay), &oom);
    put(o, "ExecutedGtidSet",
        jstr(mariadb ? SV_STR(F, gtid_current_pos) : SV_STR(F, gtid_executed)), &oom);
    put(o, "GtidPurged", jstr(SV_STR(F, gtid_purged)), &oom);
    put(o, "GtidErrant", json_string(""), &oom);

    put(o, "SlaveLagSeconds", nullint(f.lag, f.lag_valid), &oom);
    put(o, "ReplicationLagSeconds", nullint(f.lag, f.lag_valid), &oom);
    json_t *reps = replicas_of(i); /* the same list under both names */
    put(o, "SlaveHosts", json_incref(reps), &oom);
    put(o, "Replicas", reps, &oom);
    put(o, "ClusterName", jstr(i->cluster ? i->cluster->name : NULL), &oom);
    put(o, "SuggestedClusterAlias", jstr(i->cluster ? i->cluster->alias : NULL), &oom);
    put(o, "DataCenter", jstr(f.r->data_center), &oom);
    put(o, "Region", jstr(f.r->region), &oom);
    put(o, "PhysicalEnvironment", jstr(f.r->environment), &oom);
    put(o, "ReplicationDepth", json_integer(i->depth), &oom);
    put(o, "IsCoMaster", json_boolean(i->co_master), &oom);
    put(o, "HasReplicationCredentials", json_boolean(i->has_master), &oom);
    put(o, "ReplicationCredentialsAvailable", json_false(), &oom);
    put(o, "SemiSyncAvailable",
        json_boolean(F->sv != NULL &&
                     (F->sv->has_semi_sync_master_enabled || F->sv->has_semi_sync_slave_enabled)),
        &oom);
    put(o, "SemiSyncEnforced", json_false(), &oom);
    put(o, "SemiSyncMasterEnabled", json_boolean(SV_BOOL(F, semi_sync_master_enabled)), &oom);
    put(o, "SemiSyncReplicaEnabled", json_boolean(SV_BOOL(F, semi_sync_slave_enabled)), &oom);
    put(o, "SemiSyncMasterTimeout",
        json_integer((json_int_t)SV_UINT(F, semi_sync_master_timeout_ms)), &oom);
    put(o, "SemiSyncMasterStatus", json_boolean(SV_BOOL(F, semi_sync_master_status)), &oom);
    put(o, "SemiSyncMasterClients", json_integer(SV_UINT(F, semi_sync_master_clients)), &oom);
    put(o, "SemiSyncReplicaStatus", json_boolean(SV_BOOL(F, semi_sync_slave_status)), &oom);

    put(o, "LastSeenTimestamp", json_string(fmt_ts(i->last_seen_wall_ms, ts, sizeof(ts))), &oom);
    put(o, "IsLastCheckValid", json_boolean(f.valid), &oom);
    put(o, "IsUpToDate", json_boolean(f.valid && f.recent), &oom);
    put(o, "IsRecentlyChecked", json_boolean(f.recent), &oom);
    put(o, "SecondsSinceLastSeen", nullint((c->now_ms - i->last_seen_ms) / 1000, true), &oom);
    put(o, "CountMySQLSnapshots", json_integer(0), &oom);

    put(o, "IsCandidate", json_boolean(f.rule == ORCH__PROMOTION_RULE__PROMOTION_PREFER), &oom);
    put(o, "PromotionRule", json_string(render_promotion_rule_name(f.rule)), &oom);
    put(o, "IsDowntimed", json_boolean(f.downtimed), &oom);
    put(o, "DowntimeReason", jstr(f.downtimed ? i->op.downtime_reason : NULL), &oom);
    put(o, "DowntimeOwner", jstr(f.downtimed ? i->op.downtime_owner : NULL), &oom);
    put(o, "DowntimeEndTimestamp",
        json_string(fmt_ts(f.downtimed ? i->op.downtime_until_ms : 0, ts, sizeof(ts))), &oom);
    put(o, "UnresolvedHostname", json_string(""), &oom);
    put(o, "AllowTLS", json_false(), &oom);
    put(o, "Problems", problems_of(i, F, c), &oom);
    put(o, "LastDiscoveryLatency",
        json_integer((json_int_t)(f.r->has_probe_us ? f.r->probe_us : 0) * 1000), &oom);
    put(o, "Orch", orch_section(i, F, c), &oom);
    return finish(o, oom);
}

json_t *render_instance_array(reg_instance *const *v, size_t n, const render_ctx *c)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        if (json_array_append_new(a, render_instance(v[k], c)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *render_cluster_info(const reg_cluster *cl, const render_ctx *c)
{
    int64_t lag = 0;
    for (size_t k = 0; k < cl->nmembers; k++) {
        const reg_instance *i = cl->members[k];
        if (i->channel != NULL && i->channel->has_seconds_behind_master && !render_is_stale(i, c) &&
            i->channel->seconds_behind_master > lag)
            lag = i->channel->seconds_behind_master;
    }
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    put(o, "ClusterName", jstr(cl->name), &oom);
    put(o, "ClusterAlias", jstr(str_nonempty(cl->alias) ? cl->alias : cl->name), &oom);
    put(o, "ClusterDomain", json_string(""), &oom);
    put(o, "CountInstances", json_integer((json_int_t)cl->nmembers), &oom);
    put(o, "HeuristicLag", json_integer(lag), &oom);
    bool rm = c->recover_master, rim = c->recover_intermediate_master;
    if (c->recovers != NULL)
        rm = rim = c->recovers(c->recovers_arg, cl->name, cl->alias);
    put(o, "HasAutomatedMasterRecovery", json_boolean(rm), &oom);
    put(o, "HasAutomatedIntermediateMasterRecovery", json_boolean(rim), &oom);
    return finish(o, oom);
}

json_t *render_envelope(bool ok, const char *message, json_t *details)
{
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(details);
        return NULL;
    }
    bool oom = false;
    put(o, "Code", json_string(ok ? "OK" : "ERROR"), &oom);
    put(o, "Message", jstr(message), &oom);
    put(o, "Details", details ? details : json_null(), &oom);
    return finish(o, oom);
}

/* ---- topology text -------------------------------------------------------------- */

/* Appends token to the comma-separated list in buf (skipping empty tokens). */
static void tok(char *buf, size_t len, const char *token)
{
    if (token == NULL || *token == '\0')
        return;
    size_t used = strlen(buf);
    if (used + 1 >= len)
        return;
    snprintf(buf + used, len - used, "%s%s", used > 1 ? "," : "", token);
}

char *render_description(const reg_instance *i, const render_ctx *c, char *buf, size_t buflen)
{
    if (buflen < 3) {
        if (buflen > 0)
            buf[0] = '\0';
        return buf;
    }
    facts f = get_facts(i, c);
    const facts *F = &f;
    char t[64];
    snprintf(buf, buflen, "[");
    /* orchestrator's LagStatusString */
    if (!f.valid || !f.recent)
        tok(buf, buflen - 1, "unknown");
    else if (f.replica && (!f.running || !f.lag_valid))
        tok(buf, buflen - 1, "null");
    else {
        snprintf(t, sizeof(t), "%" PRId64 "s", f.lag);
        tok(buf, buflen - 1, t);
    }
    /* orchestrator's StatusString */
    if (!f.valid)
        tok(buf, buflen - 1, "invalid");
    else if (!f.recent)
        tok(buf, buflen - 1, "unchecked");
    else if (f.replica && !f.running)
        tok(buf, buflen - 1, "nonreplicating");
    else if (f.replica && llabs(f.lag - (int64_t)f.sql_delay) > c->reasonable_lag_s)
        tok(buf, buflen - 1, "lag");
    else
        tok(buf, buflen - 1, "ok");
    if (F->sv != NULL) {
        tok(buf, buflen - 1, F->sv->version);
        tok(buf, buflen - 1, SV_BOOL(F, read_only) ? "ro" : "rw");
        tok(buf, buflen - 1, SV_BOOL(F, log_bin) ? F->sv->binlog_format : "nobinlog");
        if (SV_BOOL(F, log_bin) && SV_BOOL(F, log_slave_updates))
            tok(buf, buflen - 1, ">>");
        bool mariadb = F->sv->has_flavor && F->sv->flavor == ORCH__FLAVOR__FLAVOR_MARIADB;
        if (f.using_oracle_gtid || f.using_mariadb_gtid || f.supports_oracle_gtid ||
            (mariadb && SV_BOOL(F, log_bin)))
            tok(buf, buflen - 1, "GTID");
        if (SV_BOOL(F, semi_sync_master_status))
            tok(buf, buflen - 1, "semi:master");
        if (SV_BOOL(F, semi_sync_slave_status))
            tok(buf, buflen - 1, "semi:replica");
    }
    if (f.downtimed)
        tok(buf, buflen - 1, "downtimed");
    /* orch's additions */
    if (!f.up) {
        snprintf(t, sizeof(t), "agent:%s", render_agent_state_name(f.r->state));
        for (char *p = t; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        tok(buf, buflen - 1, t);
    }
    if (f.stale)
        tok(buf, buflen - 1, "agent:stale");
    if (f.in_maintenance)
        tok(buf, buflen - 1, "maintenance");
    if (f.r->has_fenced && f.r->fenced)
        tok(buf, buflen - 1, "fenced");
    if (f.r->has_self_fenced && f.r->self_fenced)
        tok(buf, buflen - 1, "self-fenced");
    if (i->master_unresolved)
        tok(buf, buflen - 1, "master:unresolved");
    if (i->master_ambiguous)
        tok(buf, buflen - 1, "master:ambiguous");
    if (f.r->n_problems > 0) {
        snprintf(t, sizeof(t), "problems:%zu", f.r->n_problems);
        tok(buf, buflen - 1, t);
    }
    size_t used = strlen(buf);
    snprintf(buf + used, buflen - used, "]");
    return buf;
}

typedef struct topo_line {
    char *left; /* indentation, prefix and key */
    char desc[640];
} topo_line;

typedef struct topo {
    topo_line *lines;
    size_t n, cap;
    int max_depth;
    bool oom;
    const render_ctx *c;
} topo;

/*
 * orchestrator's getASCIITopologyEntry: the instance, then its replicas one
 * level deeper. A co-master met below the first level is skipped (it has its
 * own first-level entry); max_depth guards against a cycle the registry did
 * not flag.
 */
static void topo_entry(topo *t, const reg_instance *i, int depth)
{
    if (i == NULL || t->oom || depth > t->max_depth)
        return;
    if (i->co_master && depth > 1)
        return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        topo_line *l = realloc(t->lines, cap * sizeof(*l));
        if (l == NULL) {
            t->oom = true;
            return;
        }
        t->lines = l;
        t->cap = cap;
    }
    facts f = get_facts(i, t->c);
    char prefix[2 * 64 + 3] = "";
    if (depth > 0) {
        int spaces = (depth - 1) * 2;
        if (spaces > 128)
            spaces = 128;
        memset(prefix, ' ', (size_t)spaces);
        bool ok = f.replica && f.running && f.valid && f.recent;
        snprintf(prefix + spaces, sizeof(prefix) - (size_t)spaces, "%s", ok ? "+ " : "- ");
    }
    char key[ORCH_KEY_STRLEN];
    orch_key_format(&i->key, key, sizeof(key));
    size_t len = strlen(prefix) + strlen(key) + 1;
    topo_line *line = &t->lines[t->n];
    line->left = malloc(len);
    if (line->left == NULL) {
        t->oom = true;
        return;
    }
    snprintf(line->left, len, "%s%s", prefix, key);
    render_description(i, t->c, line->desc, sizeof(line->desc));
    t->n++;
    for (size_t k = 0; k < i->nreplicas; k++)
        topo_entry(t, i->replicas[k], depth + 1);
}

char *render_topology(const reg_cluster *cl, const render_ctx *c)
{
    topo t = {.max_depth = (int)cl->nmembers + 1, .c = c};
    if (cl->master != NULL && cl->master->co_master) {
        /* Co-masters: each in its own branch, ignoring the other co-masters. */
        for (size_t k = 0; k < cl->nmembers; k++)
            if (cl->members[k]->co_master)
                topo_entry(&t, cl->members[k], 1);
    } else if (cl->master != NULL) {
        topo_entry(&t, cl->master, 0);
    }
    size_t width = 0;
    for (size_t k = 0; k < t.n; k++)
        if (strlen(t.lines[k].left) > width)
            width = strlen(t.lines[k].left);
    orch_sbuf b = {0};
    for (size_t k = 0; k < t.n && !t.oom; k++) {
        if (k > 0)
            orch_sbuf_str(&b, "\n");
        orch_sbuf_str(&b, t.lines[k].left);
        for (size_t pad = strlen(t.lines[k].left); pad <= width; pad++)
            orch_sbuf_str(&b, " ");
        orch_sbuf_str(&b, t.lines[k].desc);
    }
    for (size_t k = 0; k < t.n; k++)
        free(t.lines[k].left);
    free(t.lines);
    if (t.oom)
        b.oom = true;
    return orch_sbuf_finish(&b);
}

/* ---- web page -------------------------------------------------------------------- */

static void sb_html(orch_sbuf *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&':
            orch_sbuf_str(b, "&amp;");
            break;
        case '<':
            orch_sbuf_str(b, "&lt;");
            break;
        case '>':
            orch_sbuf_str(b, "&gt;");
            break;
        case '"':
            orch_sbuf_str(b, "&quot;");
            break;
        case '\'':
            orch_sbuf_str(b, "&#39;");
            break;
        default:
            orch_sbuf_add(b, p, 1);
        }
    }
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta http-equiv=\"refresh\" content=\"5\"><title>orch</title><style>"
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "pre{background:#f6f6f6;padding:.6em;border:1px solid #ddd;overflow-x:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;vertical-align:top}.bad{color:#a00}.ok{color:#070}"
    "</style></head><body>\n<h1>orch</h1>\n";

char *render_page(reg_cluster *const *clusters, size_t nclusters, const render_page_info *pi,
                  const render_ctx *c)
{
    orch_sbuf b = {0};
    orch_sbuf_str(&b, page_head);
    orch_sbuf_str(&b, "<p>Node <b>");
    sb_html(&b, pi->node);
    orch_sbuf_str(&b, "</b>");
    if (str_nonempty(pi->version)) {
        orch_sbuf_str(&b, " (orch ");
        sb_html(&b, pi->version);
        orch_sbuf_str(&b, ")");
    }
    if (pi->is_leader)
        orch_sbuf_fmt(&b, ": <span class=\"ok\">leader</span>, epoch %" PRIu64, pi->epoch);
    else if (str_nonempty(pi->leader)) {
        orch_sbuf_str(&b, ": follower; leader ");
        sb_html(&b, pi->leader);
        orch_sbuf_fmt(&b, ", epoch %" PRIu64, pi->epoch);
    } else
        orch_sbuf_str(&b, ": <span class=\"bad\">no known leader</span>");
    if (pi->backend_ok)
        orch_sbuf_str(&b, ". Backend <span class=\"ok\">ok</span>.</p>\n");
    else {
        orch_sbuf_str(&b, ". Backend <span class=\"bad\">unavailable");
        if (str_nonempty(pi->backend_error)) {
            orch_sbuf_str(&b, ": ");
            sb_html(&b, pi->backend_error);
        }
        orch_sbuf_str(&b, "</span>.</p>\n");
    }

    orch_sbuf_fmt(&b, "<h2>Clusters (%zu)</h2>\n", nclusters);
    if (nclusters == 0)
        orch_sbuf_str(&b, "<p>No agent has reported yet.</p>\n");
    for (size_t k = 0; k < nclusters; k++) {
        const reg_cluster *cl = clusters[k];
        orch_sbuf_str(&b, "<h3>");
        sb_html(&b, cl->name);
        if (str_nonempty(cl->alias)) {
            orch_sbuf_str(&b, " (");
            sb_html(&b, cl->alias);
            orch_sbuf_str(&b, ")");
        }
        orch_sbuf_fmt(&b, " &middot; %zu instance%s</h3>\n<pre>", cl->nmembers,
                      cl->nmembers == 1 ? "" : "s");
        char *tree = render_topology(cl, c);
        if (tree == NULL)
            b.oom = true;
        sb_html(&b, tree);
        free(tree);
        orch_sbuf_str(&b, "</pre>\n");
    }

    orch_sbuf_str(&b, "<h2>Problems</h2>\n");
    size_t nproblems = 0;
    for (size_t k = 0; k < nclusters; k++) {
        const reg_cluster *cl = clusters[k];
        for (size_t m = 0; m < cl->nmembers; m++) {
            const reg_instance *i = cl->members[m];
            json_t *p = render_problems(i, c);
            if (p == NULL) {
                b.oom = true;
                continue;
            }
            if (json_array_size(p) > 0) {
                if (nproblems++ == 0)
                    orch_sbuf_str(&b, "<table><tr><th>Instance</th><th>Cluster</th><th>Agent</th>"
                                      "<th>Problems</th></tr>\n");
                orch_sbuf_str(&b, "<tr><td>");
                sb_html(&b, i->name);
                orch_sbuf_str(&b, "</td><td>");
                sb_html(&b, cl->name);
                orch_sbuf_str(&b, "</td><td>");
                orch_sbuf_str(&b, render_agent_state_name(i->report->state));
                if (render_is_stale(i, c))
                    orch_sbuf_str(&b, " (stale)");
                orch_sbuf_str(&b, "</td><td>");
                for (size_t q = 0; q < json_array_size(p); q++) {
                    if (q > 0)
                        orch_sbuf_str(&b, "<br>");
                    sb_html(&b, json_string_value(json_array_get(p, q)));
                }
                orch_sbuf_str(&b, "</td></tr>\n");
            }
            json_decref(p);
        }
    }
    if (nproblems == 0)
        orch_sbuf_str(&b, "<p>None.</p>\n");
    else
        orch_sbuf_str(&b, "</table>\n");
    orch_sbuf_str(&b, "</body></html>\n");
    return orch_sbuf_finish(&b);
}

/* ---- failure analysis and recoveries --------------------------------------------- */

static json_t *keys_of(const orch_key *v, size_t n)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        if (json_array_append_new(a, render_key(&v[k])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *structure_of(uint32_t bits)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    for (unsigned b = 0; b < ANALYSIS_ST__COUNT; b++) {
        if ((bits & (1u << b)) != 0 &&
            json_array_append_new(a, json_string(analysis_structure_name(1u << b))) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *errant_of(const analysis_entry *e)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    bool oom = false;
    for (size_t k = 0; k < e->nerrant && !oom; k++) {
        json_t *o = json_object();
        if (o == NULL) {
            oom = true;
            break;
        }
        put(o, "Key", render_key(&e->errant[k].replica), &oom);
        put(o, "GTID", jstr(e->errant[k].gtid), &oom);
        put(o, "Downtimed", json_boolean(e->errant[k].downtimed), &oom);
        if (json_array_append_new(a, o) != 0)
            oom = true;
    }
    if (oom) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/*
 * orchestrator's IsReplicasDowntimed: a master whose every replica is
 * downtimed, with a finding that is only about those replicas, counts as
 * downtimed itself.
 */
static bool replicas_downtimed(const analysis_entry *e)
{
    if (!e->is_master || e->count_replicas == 0 || e->count_downtimed_replicas != e->count_replicas)
        return false;
    switch (e->code) {
    case ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING:
    case ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING_OR_DEAD:
    case ANALYSIS_MASTER_SINGLE_REPLICA_NOT_REPLICATING:
    case ANALYSIS_MASTER_SINGLE_REPLICA_DEAD:
        return true;
    default:
        return false;
    }
}

static json_t *analysis_orch(const analysis_result *res, const analysis_entry *e,
                             const analysis_cluster *ac)
{
    json_t *o = json_object();
    json_t *d = json_object();
    if (o == NULL || d == NULL) {
        json_decref(o);
        json_decref(d);
        return NULL;
    }
    bool oom = false;
    put(d, "State", json_string(analysis_direct_state_name(e->direct.state)), &oom);
    put(d, "Answered",
        e->direct.state == ANALYSIS_DIRECT_ANSWERED
            ? json_string(render_agent_state_name(e->direct.answered))
            : json_null(),
        &oom);
    put(d, "Wanted", json_boolean(e->direct_check_wanted), &oom);
    put(o, "Recoverable", json_boolean(e->recoverable), &oom);
    put(o, "Role", json_string(analysis_role_name(e->role)), &oom);
    put(o, "AgentState", json_string(render_agent_state_name(e->state)), &oom);
    put(o, "Stale", json_boolean(e->stale), &oom);
    put(o, "AgentSecondsSinceReport", json_real((double)e->agent_age_ms / 1000.0), &oom);
    put(o, "DirectCheck", d, &oom);
    put(o, "InMaintenance", json_boolean(e->in_maintenance), &oom);
    put(o, "CountStaleReplicas", json_integer(e->count_stale_replicas), &oom);
    put(o, "CountConfirmingReplicas", json_integer(e->count_confirming_replicas), &oom);
    put(o, "CountVetoingReplicas", json_integer(e->count_vetoing_replicas), &oom);
    put(o, "StructureDetail", jstr(e->structure_detail), &oom);
    put(o, "ErrantReplicas", errant_of(e), &oom);
    put(o, "ClusterWarmingUp", json_boolean(ac != NULL && ac->warming_up), &oom);
    put(o, "ClusterNote", jstr(ac != NULL ? ac->note : NULL), &oom);
    put(o, "WarmupRemainingMilliseconds", json_integer(res->warmup_left_ms), &oom);
    return finish(o, oom);
}

json_t *render_analysis_entry(const analysis_result *res, const analysis_entry *e,
                              const reg_cluster *cl, const reg_instance *inst, const render_ctx *c)
{
    const analysis_cluster *ac = e->cluster < res->nclusters ? &res->clusters[e->cluster] : NULL;
    const Orch__InstanceReport *r = inst != NULL ? inst->report : NULL;
    const Orch__ServerStatus *sv = r != NULL ? r->server : NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    char ts[32];

    json_t *details = cl != NULL ? render_cluster_info(cl, c) : json_object();
    if (details != NULL && ac != NULL) {
        put(details, "ClusterName", jstr(ac->name), &oom);
        put(details, "ClusterAlias", jstr(str_nonempty(ac->alias) ? ac->alias : ac->name), &oom);
    }
    bool mariadb = sv != NULL && sv->has_flavor && sv->flavor == ORCH__FLAVOR__FLAVOR_MARIADB;
    bool downtimed = e->is_downtimed && e->downtime_until_wall_ms > 0;
    int64_t remaining = downtimed ? (e->downtime_until_wall_ms - c->now_wall_ms) / 1000 : 0;
    bool replicas_dt = replicas_downtimed(e);

    put(o, "AnalyzedInstanceKey", render_key(&e->key), &oom);
    put(o, "AnalyzedInstanceMasterKey", e->has_master ? render_key(&e->master_key) : key_of("", 0),
        &oom);
    put(o, "ClusterDetails", details, &oom);
    put(o, "AnalyzedInstanceDataCenter", jstr(r ? r->data_center : NULL), &oom);
    put(o, "AnalyzedInstanceRegion", jstr(r ? r->region : NULL), &oom);
    put(o, "AnalyzedInstancePhysicalEnvironment", jstr(r ? r->environment : NULL), &oom);
    put(o, "AnalyzedInstanceBinlogCoordinates",
        coordinates(sv ? sv->binlog_file : NULL, sv && sv->has_binlog_pos ? sv->binlog_pos : 0, 0),
        &oom);
    put(o, "IsMaster", json_boolean(e->is_master), &oom);
    put(o, "IsClusterMaster",
        json_boolean(e->is_master && ac != NULL && orch_key_equal(&ac->master, &e->key)), &oom);
    put(o, "IsCoMaster", json_boolean(e->is_co_master), &oom);
    put(o, "LastCheckValid", json_boolean(e->last_check_valid), &oom);
    put(o, "LastCheckPartialSuccess", json_false(), &oom);
    put(o, "CountReplicas", json_integer(e->count_replicas), &oom);
    put(o, "CountValidReplicas", json_integer(e->count_valid_replicas), &oom);
    put(o, "CountValidReplicatingReplicas", json_integer(e->count_valid_replicating_replicas),
        &oom);
    put(o, "CountReplicasFailingToConnectToMaster",
        json_integer(e->count_replicas_failing_to_connect_to_master), &oom);
    put(o, "CountDowntimedReplicas", json_integer(e->count_downtimed_replicas), &oom);
    put(o, "ReplicationDepth", json_integer(e->replication_depth), &oom);
    json_t *reps = keys_of(e->replicas, e->nreplicas); /* the same list under both names */
    put(o, "Replicas", json_incref(reps), &oom);
    put(o, "SlaveHosts", reps, &oom);
    put(o, "IsFailingToConnectToMaster", json_boolean(e->is_failing_to_connect_to_master), &oom);
    put(o, "Analysis", json_string(analysis_code_name(e->code)), &oom);
    put(o, "Description", jstr(e->description), &oom);
    put(o, "StructureAnalysis", structure_of(e->structure), &oom);
    put(o, "IsDowntimed", json_boolean(e->is_downtimed), &oom);
    put(o, "IsReplicasDowntimed", json_boolean(replicas_dt), &oom);
    put(o, "DowntimeEndTimestamp",
        json_string(fmt_ts(downtimed ? e->downtime_until_wall_ms : 0, ts, sizeof(ts))), &oom);
    put(o, "DowntimeRemainingSeconds", json_integer(remaining > 0 ? remaining : 0), &oom);
    put(o, "IsBinlogServer", json_false(), &oom);
    put(o, "PseudoGTIDImmediateTopology", json_false(), &oom);
    put(o, "OracleGTIDImmediateTopology",
        json_boolean(!mariadb && strncasecmp(e->gtid_mode, "ON", 2) == 0), &oom);
    put(o, "MariaDBGTIDImmediateTopology", json_boolean(mariadb), &oom);
    put(o, "BinlogServerImmediateTopology", json_false(), &oom);
    put(o, "SemiSyncMasterEnabled", json_boolean(e->semi_sync_master_enabled), &oom);
    put(o, "SemiSyncMasterStatus", json_boolean(e->semi_sync_master_status), &oom);
    put(o, "SemiSyncMasterWaitForReplicaCount", json_integer(e->semi_sync_master_wait_count), &oom);
    put(o, "SemiSyncMasterClients", json_integer(e->semi_sync_master_clients), &oom);
    put(o, "CountSemiSyncReplicasEnabled", json_integer(e->count_semi_sync_replicas_enabled), &oom);
    put(o, "CountLoggingReplicas", json_integer(e->count_logging_replicas), &oom);
    put(o, "CountDelayedReplicas", json_integer(e->count_delayed_replicas), &oom);
    put(o, "CountLaggingReplicas", json_integer(e->count_lagging_replicas), &oom);
    put(o, "IsActionableRecovery", json_boolean(e->recoverable), &oom);
    put(o, "SkippableDueToDowntime", json_boolean(e->is_downtimed || replicas_dt), &oom);
    put(o, "GTIDMode", jstr(e->gtid_mode), &oom);
    put(o, "MinReplicaGTIDMode", jstr(e->min_replica_gtid_mode), &oom);
    put(o, "MaxReplicaGTIDMode", jstr(e->max_replica_gtid_mode), &oom);
    put(o, "MaxReplicaGTIDErrant", jstr(e->max_replica_gtid_errant), &oom);
    put(o, "CommandHint", json_string(""), &oom);
    put(o, "IsReadOnly", json_boolean(e->is_read_only), &oom);
    put(o, "Orch", analysis_orch(res, e, ac), &oom);
    return finish(o, oom);
}

/* A column of a backend row: its string, "" for null or absent. */
static const char *col(const json_t *row, const char *name)
{
    const char *s = json_string_value(json_object_get(row, name));
    return s != NULL ? s : "";
}

/* A column as a non-negative integer; 0 when null or not a number. */
static int64_t col_int(const json_t *row, const char *name)
{
    const char *s = col(row, name);
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    return end != s && *end == '\0' && v >= 0 ? (int64_t)v : 0;
}

static bool col_bool(const json_t *row, const char *name)
{
    return col_int(row, name) != 0;
}

/* A DATETIME(6) column without its fraction; "" for null. */
static json_t *col_ts(const json_t *row, const char *name)
{
    const char *s = col(row, name);
    size_t n = strcspn(s, ".");
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)(n < sizeof(buf) ? n : sizeof(buf) - 1), s);
    return jstr(buf);
}

/* orchestrator's InstanceKeyMap of a comma-separated "host:port" list. */
static json_t *key_list(const char *list)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    const char *p = list;
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        char item[ORCH_KEY_STRLEN + 8];
        orch_key k;
        if (n > 0 && n < sizeof(item)) {
            snprintf(item, sizeof(item), "%.*s", (int)n, p);
            if (orch_key_parse(item, 3306, &k, NULL, 0) == ORCH_OK &&
                json_array_append_new(a, render_key(&k)) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

/* The minimal ReplicationAnalysis a recorded recovery or detection knows. */
static json_t *recorded_analysis(const char *host, int64_t port, const char *cluster,
                                 const char *alias, const char *analysis, const char *description)
{
    json_t *o = json_object();
    json_t *cd = json_object();
    if (o == NULL || cd == NULL) {
        json_decref(o);
        json_decref(cd);
        return NULL;
    }
    bool oom = false;
    put(cd, "ClusterName", jstr(cluster), &oom);
    put(cd, "ClusterAlias", jstr(str_nonempty(alias) ? alias : cluster), &oom);
    put(cd, "ClusterDomain", json_string(""), &oom);
    put(o, "AnalyzedInstanceKey", key_of(host, (uint32_t)port), &oom);
    put(o, "AnalyzedInstanceMasterKey", key_of("", 0), &oom);
    put(o, "ClusterDetails", cd, &oom);
    put(o, "Analysis", jstr(analysis), &oom);
    put(o, "Description", jstr(description), &oom);
    return finish(o, oom);
}

json_t *render_recovery_row(const json_t *row)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool oom = false;
    const char *state = col(row, "state");
    const char *analysis = col(row, "analysis");
    const char *description = col(row, "description");
    bool ok = col_bool(row, "is_successful");
    int64_t succ_port = col_int(row, "successor_port");
    /* a failure's error is appended to the description after " | " (recovery.c) */
    const char *err = strstr(description, " | ");
    const char *last = err;
    while (last != NULL && (last = strstr(last + 3, " | ")) != NULL)
        err = last;
    json_t *errors = json_array();
    if (errors != NULL && !ok && err != NULL && json_array_append_new(errors, jstr(err + 3)) != 0)
        oom = true;
    const char *type = strstr(analysis, "IntermediateMaster") ? "IntermediateMasterRecovery"
                       : strstr(analysis, "CoMaster")         ? "CoMasterRecovery"
                                                              : "MasterRecovery";
    json_t *orch = json_object();
    if (orch != NULL) {
        put(orch, "State", jstr(state), &oom);
        put(orch, "Epoch", json_integer((json_int_t)col_int(row, "epoch")), &oom);
    }

    put(o, "Id", json_integer((json_int_t)col_int(row, "ordinal")), &oom);
    put(o, "UID", jstr(col(row, "uid")), &oom);
    put(o, "AnalysisEntry",
        recorded_analysis(col(row, "failed_host"), col_int(row, "failed_port"), col(row, "cluster"),
                          col(row, "cluster_alias"), analysis, description),
        &oom);
    put(o, "SuccessorKey",
        succ_port > 0 ? key_of(col(row, "successor_host"), (uint32_t)succ_port) : json_null(),
        &oom);
    put(o, "SuccessorAlias", json_string(""), &oom);
    put(o, "IsActive", json_boolean(strcmp(state, "running") == 0), &oom);
    put(o, "IsSuccessful", json_boolean(ok), &oom);
    put(o, "LostReplicas", key_list(col(row, "lost_replicas")), &oom);
    put(o, "ParticipatingInstanceKeys", key_list(col(row, "participating_replicas")), &oom);
    put(o, "AllErrors", errors, &oom);
    put(o, "RecoveryStartTimestamp", col_ts(row, "started_at"), &oom);
    put(o, "RecoveryEndTimestamp", col_ts(row, "ended_at"), &oom);
    put(o, "ProcessingNodeHostname", jstr(col(row, "node")), &oom);
    put(o, "ProcessingNodeToken", json_string(""), &oom);
    put(o, "Acknowledged", json_boolean(col_bool(row, "acknowledged")), &oom);
    put(o, "AcknowledgedAt", col_ts(row, "acknowledged_at"), &oom);
    put(o, "AcknowledgedBy", jstr(col(row, "acknowledged_by")), &oom);
    put(o, "AcknowledgedComment", jstr(col(row, "acknowledged_comment")), &oom);
    put(o, "LastDetectionId", json_integer(0), &oom);
    put(o, "RelatedRecoveryId", json_integer(0), &oom);
    put(o, "Type", json_string(type), &oom);
    put(o, "RecoveryType", json_string("MasterRecoveryGTID"), &oom);
    put(o, "Orch", orch, &oom);
    return finish(o, oom);
}

json_t *render_recovery_step_row(const json_t *row)
{
    json_t *o = json_object(), *orch = json_object(); /* put() counts a NULL as oom */
    bool oom = false;
    put(orch, "Step", jstr(col(row, "step")), &oom);
    put(o, "Id", json_integer((json_int_t)col_int(row, "seq")), &oom);
    put(o, "RecoveryUID", jstr(col(row, "uid")), &oom);
    put(o, "AuditAt", col_ts(row, "at"), &oom);
    put(o, "Message", jstr(col(row, "message")), &oom);
    put(o, "Orch", orch, &oom);
    return finish(o, oom);
}

json_t *render_failure_detection_row(const json_t *row)
{
    json_t *o = json_object(), *orch = json_object(); /* put() counts a NULL as oom */
    bool oom = false;
    put(orch, "RecoveryUID", jstr(col(row, "recovery_uid")), &oom);
    put(orch, "Epoch", json_integer((json_int_t)col_int(row, "epoch")), &oom);
    put(o, "Id", json_integer((json_int_t)col_int(row, "id")), &oom);
    put(o, "UID", json_string(""), &oom);
    put(o, "AnalysisEntry",
        recorded_analysis(col(row, "hostname"), col_int(row, "port"), col(row, "cluster"), NULL,
                          col(row, "analysis"), col(row, "description")),
        &oom);
    put(o, "SuccessorKey", json_null(), &oom);
    put(o, "IsActive", json_false(), &oom);
    put(o, "IsSuccessful", json_false(), &oom);
    put(o, "RecoveryStartTimestamp", col_ts(row, "detected_at"), &oom);
    put(o, "RecoveryEndTimestamp", json_string(""), &oom);
    put(o, "ProcessingNodeHostname", jstr(col(row, "node")), &oom);
    put(o, "ProcessingNodeToken", json_string(""), &oom);
    put(o, "RelatedRecoveryId", json_integer(0), &oom);
    put(o, "Orch", orch, &oom);
    return finish(o, oom);
}
