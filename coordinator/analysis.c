/*
 * analysis.c: what is wrong with each instance, from the registry alone.
 *
 * One run walks every cluster, master first, and judges each instance that has
 * replicas by what its own agent says and what the agents of its replicas say
 * about it (the holistic rule, below), then adds orchestrator's structure
 * warnings (hazards for a future failover). Pure: no I/O, no clock, no
 * globals; the caller passes now, the configuration and the direct-check
 * states, and owns the result.
 *
 * Vocabulary used in the comments:
 *   fresh      the agent's newest report is at most stale_after_ms old;
 *   stale      otherwise: the agent is unknown, neither alive nor dead;
 *   valid      fresh and its server UP (orchestrator's "last check valid");
 *   side       what the judged instance's own agent says of its server;
 *   evidence   what one replica's agent says about replicating from it:
 *              CONFIRM (cannot replicate), VETO (still receives), NEUTRAL
 *              (cannot tell), UNKNOWN (stale, or its own server is not UP).
 */
#include "analysis.h"

#include "gtid.h"
#include "render.h"
#include "version.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIST_MAX    6  /* replicas named in one list of a description */
#define ERRTEXT_MAX 72 /* bytes of an agent's error text quoted in a description */

/* ---- names ----------------------------------------------------------------- */

static const char *const code_names[ANALYSIS_CODE__COUNT] = {
    [ANALYSIS_NO_PROBLEM] = "NoProblem",
    [ANALYSIS_DEAD_MASTER_WITHOUT_REPLICAS] = "DeadMasterWithoutReplicas",
    [ANALYSIS_DEAD_MASTER] = "DeadMaster",
    [ANALYSIS_DEAD_MASTER_AND_REPLICAS] = "DeadMasterAndReplicas",
    [ANALYSIS_DEAD_MASTER_AND_SOME_REPLICAS] = "DeadMasterAndSomeReplicas",
    [ANALYSIS_MASTER_HUNG] = "MasterHung",
    [ANALYSIS_UNREACHABLE_MASTER_WITH_LAGGING_REPLICAS] = "UnreachableMasterWithLaggingReplicas",
    [ANALYSIS_UNREACHABLE_MASTER] = "UnreachableMaster",
    [ANALYSIS_AGENT_DOWN] = "AgentDown",
    [ANALYSIS_MASTER_SINGLE_REPLICA_NOT_REPLICATING] = "MasterSingleReplicaNotReplicating",
    [ANALYSIS_MASTER_SINGLE_REPLICA_DEAD] = "MasterSingleReplicaDead",
    [ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING] = "AllMasterReplicasNotReplicating",
    [ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING_OR_DEAD] =
        "AllMasterReplicasNotReplicatingOrDead",
    [ANALYSIS_LOCKED_SEMI_SYNC_MASTER] = "LockedSemiSyncMaster",
    [ANALYSIS_DEAD_CO_MASTER] = "DeadCoMaster",
    [ANALYSIS_DEAD_CO_MASTER_AND_SOME_REPLICAS] = "DeadCoMasterAndSomeReplicas",
    [ANALYSIS_UNREACHABLE_CO_MASTER] = "UnreachableCoMaster",
    [ANALYSIS_ALL_CO_MASTER_REPLICAS_NOT_REPLICATING] = "AllCoMasterReplicasNotReplicating",
    [ANALYSIS_DEAD_INTERMEDIATE_MASTER] = "DeadIntermediateMaster",
    [ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA] =
        "DeadIntermediateMasterWithSingleReplica",
    [ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA_FAILING_TO_CONNECT] =
        "DeadIntermediateMasterWithSingleReplicaFailingToConnect",
    [ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_SOME_REPLICAS] = "DeadIntermediateMasterAndSomeReplicas",
    [ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_REPLICAS] = "DeadIntermediateMasterAndReplicas",
    [ANALYSIS_UNREACHABLE_INTERMEDIATE_MASTER_WITH_LAGGING_REPLICAS] =
        "UnreachableIntermediateMasterWithLaggingReplicas",
    [ANALYSIS_UNREACHABLE_INTERMEDIATE_MASTER] = "UnreachableIntermediateMaster",
    [ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_FAILING_TO_CONNECT_OR_DEAD] =
        "AllIntermediateMasterReplicasFailingToConnectOrDead",
    [ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_NOT_REPLICATING] =
        "AllIntermediateMasterReplicasNotReplicating",
    [ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER] =
        "FirstTierReplicaFailingToConnectToMaster",
};

const char *analysis_code_name(analysis_code code)
{
    if ((unsigned)code >= ANALYSIS_CODE__COUNT)
        return "Unknown";
    return code_names[code];
}

bool analysis_code_is_dead_master(analysis_code code)
{
    switch (code) {
    case ANALYSIS_DEAD_MASTER:
    case ANALYSIS_DEAD_MASTER_AND_SOME_REPLICAS:
    case ANALYSIS_MASTER_HUNG:
    case ANALYSIS_DEAD_CO_MASTER:
    case ANALYSIS_DEAD_CO_MASTER_AND_SOME_REPLICAS:
        return true;
    default:
        return false;
    }
}

bool analysis_code_is_dead_intermediate_master(analysis_code code)
{
    switch (code) {
    case ANALYSIS_DEAD_INTERMEDIATE_MASTER:
    case ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA:
    case ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA_FAILING_TO_CONNECT:
    case ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_SOME_REPLICAS:
        return true;
    default:
        return false;
    }
}

static const char *const structure_names[ANALYSIS_ST__COUNT] = {
    "NoLoggingReplicasStructureWarning",
    "NoFailoverSupportStructureWarning",
    "StatementAndMixedLoggingReplicasStructureWarning",
    "StatementAndRowLoggingReplicasStructureWarning",
    "MixedAndRowLoggingReplicasStructureWarning",
    "MultipleMajorVersionsLoggingReplicasStructureWarning",
    "DifferentGTIDModesStructureWarning",
    "ErrantGTIDStructureWarning",
    "NoWriteableMasterStructureWarning",
    "NotEnoughValidSemiSyncReplicasStructureWarning",
};

const char *analysis_structure_name(unsigned bit)
{
    for (unsigned k = 0; k < ANALYSIS_ST__COUNT; k++)
        if (bit == 1u << k)
            return structure_names[k];
    return "Unknown";
}

char *analysis_structure_format(uint32_t bits, char *buf, size_t buflen)
{
    size_t off = 0;
    if (buflen == 0)
        return buf;
    buf[0] = '\0';
    for (unsigned k = 0; k < ANALYSIS_ST__COUNT && off < buflen; k++) {
        if (!(bits & (1u << k)))
            continue;
        int w = snprintf(buf + off, buflen - off, "%s%s", off ? ", " : "", structure_names[k]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return buf;
}

const char *analysis_role_name(analysis_role role)
{
    switch (role) {
    case ANALYSIS_ROLE_MASTER:
        return "master";
    case ANALYSIS_ROLE_CO_MASTER:
        return "co-master";
    case ANALYSIS_ROLE_INTERMEDIATE_MASTER:
        return "intermediate-master";
    case ANALYSIS_ROLE_REPLICA:
        return "replica";
    }
    return "unknown";
}

const char *analysis_direct_state_name(analysis_direct_state s)
{
    switch (s) {
    case ANALYSIS_DIRECT_NONE:
        return "none";
    case ANALYSIS_DIRECT_PENDING:
        return "pending";
    case ANALYSIS_DIRECT_TIMED_OUT:
        return "timed-out";
    case ANALYSIS_DIRECT_ANSWERED:
        return "answered";
    }
    return "unknown";
}

void analysis_config_init(analysis_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->stale_after_ms = 3000;
    cfg->warmup_ms = 5000;
    cfg->reasonable_lag_s = 10;
    cfg->semi_sync_wait_count = 1;
    cfg->errant_gtid = true;
    cfg->include_no_problem = false;
}

/* ---- a small string builder ----------------------------------------------------- */

typedef struct sb {
    char *p;
    size_t len, cap;
    bool oom;
} sb;

static void sb_vadd(sb *s, const char *fmt, va_list ap) ORCH_PRINTF(2, 0);

static void sb_vadd(sb *s, const char *fmt, va_list ap)
{
    if (s->oom)
        return;
    va_list aq;
    va_copy(aq, ap);
    int w = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? s->cap - s->len : 0, fmt, aq);
    va_end(aq);
    if (w < 0)
        return;
    if (s->p == NULL || s->len + (size_t)w >= s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap <= s->len + (size_t)w)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (np == NULL) {
            s->oom = true;
            return;
        }
        s->p = np;
        s->cap = cap;
        vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    }
    s->len += (size_t)w;
}

static void sb_add(sb *s, const char *fmt, ...) ORCH_PRINTF(2, 3);

static void sb_add(sb *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vadd(s, fmt, ap);
    va_end(ap);
}

/* Appends at most max bytes of text from a peer, control bytes replaced by '?'. */
static void sb_add_text(sb *s, const char *text, size_t max)
{
    char buf[ERRTEXT_MAX + 4];
    size_t n = 0;
    if (max > ERRTEXT_MAX)
        max = ERRTEXT_MAX;
    for (; text != NULL && text[n] != '\0' && n < max; n++)
        buf[n] = ((unsigned char)text[n] < 0x20 || text[n] == 0x7f) ? '?' : text[n];
    if (text != NULL && text[n] != '\0')
        buf[n++] = '~';
    buf[n] = '\0';
    sb_add(s, "%s", buf);
}

/* Takes the builder's text (never NULL unless out of memory). */
static char *sb_take(sb *s)
{
    if (s->oom) {
        free(s->p);
        s->p = NULL;
        return NULL;
    }
    if (s->p == NULL) {
        s->p = calloc(1, 1);
        if (s->p == NULL)
            return NULL;
    }
    char *p = s->p;
    s->p = NULL;
    s->len = s->cap = 0;
    return p;
}

/* ---- what one agent says ------------------------------------------------------------- */

typedef struct ctx {
    const analysis_config *cfg;
    int64_t now, now_wall;
    analysis_direct_fn direct;
    void *direct_arg;
    bool warming;
    analysis_result *res;
    size_t entries_cap, direct_cap;
    bool oom;
} ctx;

static bool fresh(const ctx *c, const reg_instance *i)
{
    return !reg_instance_is_stale(i, c->now, c->cfg->stale_after_ms);
}

static bool server_up(const reg_instance *i)
{
    return i->report->state == ORCH__PROBE_STATE__PROBE_UP;
}

static bool valid(const ctx *c, const reg_instance *i)
{
    return fresh(c, i) && server_up(i);
}

static bool downtimed(const ctx *c, const reg_instance *i)
{
    return i->op.downtime_until_ms > c->now_wall;
}

static bool in_maintenance(const ctx *c, const reg_instance *i)
{
    return i->op.maintenance_until_ms > c->now_wall;
}

static int64_t age(const ctx *c, const reg_instance *i)
{
    return c->now - i->last_seen_ms;
}

static const Orch__ServerStatus *server_of(const reg_instance *i)
{
    return i->report->server;
}

static bool has_io(const Orch__Channel *ch)
{
    return ch != NULL && ch->has_io_thread;
}

static bool io_running(const Orch__Channel *ch)
{
    return has_io(ch) && ch->io_thread == ORCH__THREAD_STATE__THREAD_YES;
}

static bool sql_running(const Orch__Channel *ch)
{
    return ch != NULL && ch->has_sql_thread && ch->sql_thread == ORCH__THREAD_STATE__THREAD_YES;
}

static Orch__WitnessResult witness_of(const Orch__Channel *ch)
{
    return ch != NULL && ch->has_witness ? ch->witness : ORCH__WITNESS_RESULT__WITNESS_NOT_CHECKED;
}

/*
 * A connection error of the IO thread: the replica tried to reach its master
 * and could not, or lost it. Client errors 2002 (socket), 2003 (connect),
 * 2005 (unknown host), 2006 (gone away), 2013 (lost during query) and the
 * network errors 1158-1161 (read/write errors and timeouts), or the servers'
 * own wording ("error connecting to master", "error reconnecting to master",
 * MySQL 8's "... to source"), which orchestrator matches too. An error that
 * only a live master can send (1045 access denied, 1236 binlog purged, ...)
 * is not one: it neither confirms nor vetoes.
 */
static bool io_connection_error(const Orch__Channel *ch)
{
    if (ch == NULL || !ch->has_last_io_errno || ch->last_io_errno == 0)
        return false;
    switch (ch->last_io_errno) {
    case 2002:
    case 2003:
    case 2005:
    case 2006:
    case 2013:
    case 1158:
    case 1159:
    case 1160:
    case 1161:
        return true;
    default:
        break;
    }
    const char *t = ch->last_io_error;
    return t != NULL &&
           (strstr(t, "connecting to master") != NULL || strstr(t, "connecting to source") != NULL);
}

/* The replica tries and fails to connect: IO thread not running, connection error. */
static bool failing_to_connect(const Orch__Channel *ch)
{
    return has_io(ch) && !io_running(ch) && io_connection_error(ch);
}

typedef enum evidence {
    EV_UNKNOWN = 0,
    EV_NEUTRAL,
    EV_CONFIRM,
    EV_VETO,
} evidence;

/*
 * What a replica's agent says about replicating from its master (the holistic
 * rule's per-replica part; DESIGN.md section 4, "Holistic rule" and "Decision
 * rules"):
 *
 *   - stale agent: UNKNOWN. It neither confirms nor vetoes.
 *   - fresh agent whose own server is not UP: UNKNOWN. The agent runs the
 *     witness check only when its server answers, and a dead server's channel
 *     says nothing about the master. (It still counts as "fresh" for
 *     DeadMasterAndReplicas, where every replica's server is down too.)
 *   - the witness got the master's greeting: VETO, whatever the IO thread
 *     says ("a witness that gets the greeting vetoes death"), even on an IO
 *     thread an operator stopped.
 *   - the witness was refused, timed out or failed: CONFIRM, even when the IO
 *     thread still says Yes. That is the SIGSTOP case: a replica of a stopped
 *     master keeps Slave_IO_Running=Yes for slave_net_timeout, and only the
 *     witness sees that nobody greets. A witness ERROR (name resolution, bad
 *     greeting) counts as failing, as the brief says; the master's own agent
 *     must still say DOWN or UNRESPONSIVE (or be silent and unanswering) for a
 *     verdict, so one replica's resolver never decides alone.
 *   - no witness (an agent too old, or the check not run): the IO thread
 *     decides. Running: VETO (still receiving events). Not running or
 *     connecting with a connection error: CONFIRM.
 *   - otherwise NEUTRAL: an IO thread stopped by an operator (no error), one
 *     connecting without an error yet, or one whose error only a live master
 *     sends. Safer reading: a stopped IO thread is not evidence against the
 *     master, and it does not veto either (a replica stopped for maintenance
 *     must not block every future failover); it merely adds nothing.
 */
static evidence replica_evidence(const ctx *c, const reg_instance *r)
{
    if (!fresh(c, r) || !server_up(r) || r->channel == NULL)
        return EV_UNKNOWN;
    const Orch__Channel *ch = r->channel;
    switch (witness_of(ch)) {
    case ORCH__WITNESS_RESULT__WITNESS_GREETING:
        return EV_VETO;
    case ORCH__WITNESS_RESULT__WITNESS_REFUSED:
    case ORCH__WITNESS_RESULT__WITNESS_TIMEOUT:
    case ORCH__WITNESS_RESULT__WITNESS_ERROR:
        return EV_CONFIRM;
    default:
        break;
    }
    if (io_running(ch))
        return EV_VETO;
    if (has_io(ch) && io_connection_error(ch))
        return EV_CONFIRM;
    return EV_NEUTRAL;
}

/*
 * What the judged instance's own agent says of its server, with the direct
 * check standing in for a silent agent.
 */
typedef enum side {
    SIDE_UP,               /* fresh and UP, or a direct check answered UP */
    SIDE_DOWN,             /* says DOWN: refused, not running */
    SIDE_HUNG,             /* says UNRESPONSIVE: no answer within the probe deadline */
    SIDE_BLIND,            /* AUTH_ERROR / UNKNOWN: the agent speaks but cannot tell */
    SIDE_SILENT,           /* stale; the direct check not sent or pending */
    SIDE_SILENT_CONFIRMED, /* stale, and the direct ReportNow timed out */
} side;

static side side_of_state(Orch__ProbeState s)
{
    switch (s) {
    case ORCH__PROBE_STATE__PROBE_UP:
        return SIDE_UP;
    case ORCH__PROBE_STATE__PROBE_DOWN:
        return SIDE_DOWN;
    case ORCH__PROBE_STATE__PROBE_UNRESPONSIVE:
        return SIDE_HUNG;
    default:
        return SIDE_BLIND;
    }
}

/*
 * "A master is dead only when its own agent says its server is down or
 * unresponsive (or the agent is silent, confirmed by a direct ReportNow to it
 * that times out)". A stale agent is unknown; it becomes silent evidence only
 * once the caller's direct check timed out. An answer to the direct check
 * speaks like a fresh report (the caller may not have applied the answer's
 * report to the registry yet). AUTH_ERROR means the server answered (and
 * refused our account): never evidence of death.
 */
static side judge_side(const ctx *c, const reg_instance *m, analysis_direct *d)
{
    d->state = ANALYSIS_DIRECT_NONE;
    d->answered = ORCH__PROBE_STATE__PROBE_UNKNOWN;
    if (fresh(c, m))
        return side_of_state(m->report->state);
    if (c->direct != NULL)
        *d = c->direct(c->direct_arg, m);
    switch (d->state) {
    case ANALYSIS_DIRECT_TIMED_OUT:
        return SIDE_SILENT_CONFIRMED;
    case ANALYSIS_DIRECT_ANSWERED:
        return side_of_state(d->answered);
    default:
        return SIDE_SILENT;
    }
}

static bool side_confirms(side s)
{
    return s == SIDE_DOWN || s == SIDE_HUNG || s == SIDE_SILENT_CONFIRMED;
}

static bool side_silent(side s)
{
    return s == SIDE_SILENT || s == SIDE_SILENT_CONFIRMED;
}

/* ---- what the replicas of one instance say, counted -------------------------------------- */

typedef struct agg {
    unsigned n, fresh, valid, replicating, failing, downtimed, stale, lagging, delayed;
    unsigned logging, eligible_logging, semi;
    unsigned confirm, veto, neutral, unknown;
    unsigned fmt_statement, fmt_mixed, fmt_row;
    int series; /* first logging replica's major*1000+minor; 0 none */
    bool multiple_series;
    bool gtid_modes_differ;  /* MySQL gtid_mode differs from the instance's */
    bool using_gtid_differs; /* MariaDB: some replicas use GTID, some file/position */
    unsigned using_gtid_no, using_gtid_yes;
    const char *no_gtid_mysql; /* a MySQL member that cannot reposition by GTID */
    char min_mode[ANALYSIS_GTID_MODE_MAX], max_mode[ANALYSIS_GTID_MODE_MAX];
    bool have_mode;
} agg;

static bool is_mysql(const Orch__ServerStatus *s)
{
    return s != NULL && s->has_flavor &&
           (s->flavor == ORCH__FLAVOR__FLAVOR_MYSQL || s->flavor == ORCH__FLAVOR__FLAVOR_PERCONA);
}

static bool is_mariadb(const Orch__ServerStatus *s)
{
    return s != NULL && s->has_flavor && s->flavor == ORCH__FLAVOR__FLAVOR_MARIADB;
}

/* MySQL gtid_mode, "" when not reported. */
static const char *gtid_mode_of(const Orch__ServerStatus *s)
{
    return s != NULL && s->gtid_mode != NULL ? s->gtid_mode : "";
}

static void copy_mode(char *dst, const char *src)
{
    snprintf(dst, ANALYSIS_GTID_MODE_MAX, "%s", src);
}

static void count_replica(const ctx *c, const reg_instance *m, const reg_instance *r, agg *a)
{
    const Orch__ServerStatus *s = server_of(r);
    const Orch__Channel *ch = r->channel;
    a->n++;
    bool f = fresh(c, r);
    bool v = f && server_up(r);
    if (f)
        a->fresh++;
    else
        a->stale++;
    if (v) {
        a->valid++;
        if (io_running(ch) && sql_running(ch))
            a->replicating++;
        if (failing_to_connect(ch))
            a->failing++;
        if (ch != NULL && ch->has_seconds_behind_master &&
            ch->seconds_behind_master > c->cfg->reasonable_lag_s)
            a->lagging++;
    }
    if (ch != NULL && ch->has_sql_delay && ch->sql_delay > 0)
        a->delayed++;
    if (downtimed(c, r))
        a->downtimed++;
    switch (replica_evidence(c, r)) {
    case EV_CONFIRM:
        a->confirm++;
        break;
    case EV_VETO:
        a->veto++;
        break;
    case EV_NEUTRAL:
        a->neutral++;
        break;
    default:
        a->unknown++;
        break;
    }

    /* Structure: what the replica is configured as (stale or not: settings rarely change). */
    if (s == NULL)
        return;
    if (s->has_semi_sync_slave_enabled && s->semi_sync_slave_enabled)
        a->semi++;
    bool logging = s->has_log_bin && s->log_bin && s->has_log_slave_updates && s->log_slave_updates;
    if (logging) {
        a->logging++;
        if (reg_instance_promotion_rule(r) != ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT)
            a->eligible_logging++;
        const char *fmt = s->binlog_format ? s->binlog_format : "";
        if (strcasecmp(fmt, "STATEMENT") == 0)
            a->fmt_statement++;
        else if (strcasecmp(fmt, "MIXED") == 0)
            a->fmt_mixed++;
        else if (strcasecmp(fmt, "ROW") == 0)
            a->fmt_row++;
        orch_version ver;
        if (s->version != NULL &&
            orch_version_parse(s->version, s->version_comment, &ver, NULL, 0) == ORCH_OK) {
            int series = ver.major * 1000 + ver.minor;
            if (a->series == 0)
                a->series = series;
            else if (a->series != series)
                a->multiple_series = true;
        }
    }
    const Orch__ServerStatus *ms = server_of(m);
    if (s->gtid_mode != NULL) {
        const char *mode = s->gtid_mode;
        if (!a->have_mode || strcmp(mode, a->min_mode) < 0)
            copy_mode(a->min_mode, mode);
        if (!a->have_mode || strcmp(mode, a->max_mode) > 0)
            copy_mode(a->max_mode, mode);
        a->have_mode = true;
        if (ms != NULL && ms->gtid_mode != NULL && strcasecmp(mode, ms->gtid_mode) != 0)
            a->gtid_modes_differ = true;
    }
    if (is_mysql(s) && s->gtid_mode != NULL && strcasecmp(s->gtid_mode, "ON") != 0 &&
        a->no_gtid_mysql == NULL)
        a->no_gtid_mysql = r->name;
    if (is_mariadb(s) && ch != NULL && ch->using_gtid != NULL && ch->using_gtid[0] != '\0') {
        if (strcasecmp(ch->using_gtid, "No") == 0)
            a->using_gtid_no++;
        else
            a->using_gtid_yes++;
        a->using_gtid_differs = a->using_gtid_no > 0 && a->using_gtid_yes > 0;
    }
}

/* ---- errant transactions -------------------------------------------------------------- */

static orch_err parse_opt(orch_gtid_flavor fl, const char *text, orch_gtid_set **out, bool *bad)
{
    *out = NULL;
    if (text == NULL || text[0] == '\0')
        return ORCH_OK;
    orch_err err = orch_gtid_set_parse(fl, text, out, NULL, 0);
    if (err == ORCH_ERR_NOMEM)
        return err;
    if (err != ORCH_OK) {
        *bad = true;
        *out = NULL;
    }
    return ORCH_OK;
}

/* *acc = *acc ∪ add (add is consumed). */
static orch_err unite(orch_gtid_set **acc, orch_gtid_set *add)
{
    if (add == NULL)
        return ORCH_OK;
    if (*acc == NULL) {
        *acc = add;
        return ORCH_OK;
    }
    orch_gtid_set *u = NULL;
    orch_err err = orch_gtid_set_union(*acc, add, &u);
    orch_gtid_set_free(add);
    if (err == ORCH_ERR_INVAL)
        return ORCH_OK; /* flavors differ: keep what we had */
    if (err != ORCH_OK)
        return err;
    orch_gtid_set_free(*acc);
    *acc = u;
    return ORCH_OK;
}

/*
 * Errant transactions of replica r against its master m: what r executed that
 * m never had. Both must be fresh and UP, of one flavor: comparing with a stale
 * master's last position would call the most advanced replica errant.
 *
 * Reports of r and m are taken at different moments, so r may hold
 * transactions m's (older) report does not show yet. Those came to r from m
 * through its replication channel: the master's side is therefore m's set
 * united with what r's channel received (MySQL Retrieved_Gtid_Set, MariaDB
 * Gtid_IO_Pos). For MySQL also every transaction of m's own server_uuid (as
 * orchestrator does): r cannot have written those itself.
 *
 *   MySQL:   r.gtid_executed - (m.gtid_executed ∪ r.retrieved ∪ m.uuid:1-max)
 *   MariaDB: r.gtid_binlog_pos (else gtid_current_pos; a replica without a binary log
 *            gives its own writes no GTID) - (m.gtid_binlog_pos ∪ m.gtid_current_pos
 *            ∪ r.Gtid_IO_Pos), per domain by sequence number (gtid.h).
 *
 * *out is the canonical text (caller frees), NULL when none or not comparable.
 * Text that does not parse is not comparable (no finding from it). Only
 * ORCH_ERR_NOMEM fails.
 */
static orch_err errant_of(const ctx *c, const reg_instance *r, const reg_instance *m, char **out)
{
    *out = NULL;
    const Orch__ServerStatus *rs = server_of(r), *ms = server_of(m);
    if (!valid(c, r) || !valid(c, m) || rs == NULL || ms == NULL || r->channel == NULL)
        return ORCH_OK;
    orch_gtid_flavor fl;
    const char *rtext, *mtext, *mtext2 = NULL;
    if (is_mariadb(rs) && is_mariadb(ms)) {
        fl = ORCH_GTID_MARIADB;
        rtext = rs->gtid_binlog_pos ? rs->gtid_binlog_pos : rs->gtid_current_pos;
        mtext = ms->gtid_binlog_pos;
        mtext2 = ms->gtid_current_pos;
    } else if (is_mysql(rs) && is_mysql(ms)) {
        fl = ORCH_GTID_MYSQL;
        rtext = rs->gtid_executed;
        mtext = ms->gtid_executed;
    } else {
        return ORCH_OK;
    }
    if (rtext == NULL || rtext[0] == '\0')
        return ORCH_OK;
    if (mtext != NULL && strcmp(rtext, mtext) == 0)
        return ORCH_OK; /* the common case when idle: nothing to parse */

    bool bad = false;
    orch_gtid_set *rset = NULL, *mset = NULL, *add = NULL, *diff = NULL;
    orch_err err = parse_opt(fl, rtext, &rset, &bad);
    if (err == ORCH_OK)
        err = parse_opt(fl, mtext, &mset, &bad);
    if (err == ORCH_OK && mtext2 != NULL && (err = parse_opt(fl, mtext2, &add, &bad)) == ORCH_OK)
        err = unite(&mset, add);
    if (err == ORCH_OK &&
        (err = parse_opt(fl, r->channel->retrieved_gtid_set, &add, &bad)) == ORCH_OK)
        err = unite(&mset, add);
    if (err == ORCH_OK && fl == ORCH_GTID_MYSQL && ms->server_uuid != NULL &&
        ms->server_uuid[0] != '\0') {
        char own[128];
        bool ignored = false; /* a malformed uuid just adds nothing */
        snprintf(own, sizeof(own), "%s:1-%" PRIu64, ms->server_uuid, ORCH_GTID_MYSQL_GNO_MAX);
        if ((err = parse_opt(fl, own, &add, &ignored)) == ORCH_OK)
            err = unite(&mset, add);
    }
    if (err != ORCH_OK || bad || rset == NULL)
        goto done;
    if (mset == NULL) {
        err = orch_gtid_set_parse(fl, "", &mset, NULL, 0);
        if (err != ORCH_OK)
            goto done;
    }
    err = orch_gtid_set_subtract(rset, mset, &diff);
    if (err == ORCH_ERR_INVAL) {
        err = ORCH_OK;
        goto done;
    }
    if (err == ORCH_OK && !orch_gtid_set_is_empty(diff)) {
        *out = orch_gtid_set_format(diff);
        if (*out == NULL)
            err = ORCH_ERR_NOMEM;
    }
done:
    orch_gtid_set_free(rset);
    orch_gtid_set_free(mset);
    orch_gtid_set_free(diff);
    return err;
}

/* ---- descriptions --------------------------------------------------------------------- */

static const char *io_word(const Orch__Channel *ch)
{
    if (!has_io(ch))
        return "not reported";
    switch (ch->io_thread) {
    case ORCH__THREAD_STATE__THREAD_YES:
        return "running";
    case ORCH__THREAD_STATE__THREAD_CONNECTING:
        return "connecting";
    default:
        return "stopped";
    }
}

/* "db2:3306 (IO thread connecting, error 2003 \"...\"; witness REFUSED: ...)" */
static void describe_replica(sb *s, const ctx *c, const reg_instance *r)
{
    if (!fresh(c, r)) {
        sb_add(s, "%s (agent silent for %" PRId64 " ms)", r->name, age(c, r));
        return;
    }
    if (!server_up(r)) {
        sb_add(s, "%s (its agent says %s)", r->name, render_agent_state_name(r->report->state));
        return;
    }
    const Orch__Channel *ch = r->channel;
    sb_add(s, "%s (IO thread %s", r->name, io_word(ch));
    if (ch != NULL && ch->has_last_io_errno && ch->last_io_errno != 0) {
        sb_add(s, ", error %u \"", (unsigned)ch->last_io_errno);
        sb_add_text(s, ch->last_io_error, ERRTEXT_MAX);
        sb_add(s, "\"");
    }
    Orch__WitnessResult w = witness_of(ch);
    sb_add(s, "; witness %s", render_witness_name(w));
    if (w != ORCH__WITNESS_RESULT__WITNESS_NOT_CHECKED && ch->has_witness_ms)
        sb_add(s, " in %u ms", (unsigned)ch->witness_ms);
    if (w != ORCH__WITNESS_RESULT__WITNESS_GREETING &&
        w != ORCH__WITNESS_RESULT__WITNESS_NOT_CHECKED && ch->witness_error != NULL &&
        ch->witness_error[0] != '\0') {
        sb_add(s, ": ");
        sb_add_text(s, ch->witness_error, ERRTEXT_MAX);
    }
    sb_add(s, ")");
}

/* "; <lead> a (...), b (...) and 3 more" over the replicas of m whose evidence is ev. */
static void describe_replicas(sb *s, const ctx *c, const reg_instance *m, evidence ev,
                              const char *lead)
{
    unsigned k = 0;
    for (size_t i = 0; i < m->nreplicas; i++) {
        const reg_instance *r = m->replicas[i];
        if (replica_evidence(c, r) != ev)
            continue;
        if (k == 0)
            sb_add(s, "; %s: ", lead);
        if (k < LIST_MAX) {
            if (k > 0)
                sb_add(s, ", ");
            describe_replica(s, c, r);
        }
        k++;
    }
    if (k > LIST_MAX)
        sb_add(s, " and %u more", k - LIST_MAX);
}

/* Replicas that are valid but not replicating (IO and SQL threads). */
static void describe_not_replicating(sb *s, const ctx *c, const reg_instance *m)
{
    unsigned k = 0;
    for (size_t i = 0; i < m->nreplicas; i++) {
        const reg_instance *r = m->replicas[i];
        if (valid(c, r) && io_running(r->channel) && sql_running(r->channel))
            continue;
        if (k == 0)
            sb_add(s, ": ");
        if (k < LIST_MAX) {
            if (k > 0)
                sb_add(s, ", ");
            describe_replica(s, c, r);
            if (valid(c, r) && io_running(r->channel) && !sql_running(r->channel))
                sb_add(s, " SQL thread not running");
        }
        k++;
    }
    if (k > LIST_MAX)
        sb_add(s, " and %u more", k - LIST_MAX);
}

static void describe_side(sb *s, const ctx *c, const reg_instance *m, side sd,
                          const analysis_direct *d, bool want_direct)
{
    const Orch__InstanceReport *rep = m->report;
    if (d->state == ANALYSIS_DIRECT_ANSWERED) {
        sb_add(s, "%s's agent was silent for %" PRId64 " ms but answered a direct ReportNow: %s",
               m->name, age(c, m), render_agent_state_name(d->answered));
        return;
    }
    switch (sd) {
    case SIDE_UP:
        sb_add(s, "%s's agent says UP", m->name);
        return;
    case SIDE_DOWN:
    case SIDE_HUNG:
    case SIDE_BLIND:
        sb_add(s, "%s's agent says its server is %s", m->name, render_agent_state_name(rep->state));
        if (rep->probe_error != NULL && rep->probe_error[0] != '\0') {
            sb_add(s, " (");
            sb_add_text(s, rep->probe_error, ERRTEXT_MAX);
            sb_add(s, ")");
        }
        if (sd == SIDE_BLIND)
            sb_add(s, ": it cannot tell whether the server works");
        return;
    case SIDE_SILENT:
    case SIDE_SILENT_CONFIRMED:
        sb_add(s, "%s's agent has been silent for %" PRId64 " ms (stale after %" PRId64 " ms)",
               m->name, age(c, m), c->cfg->stale_after_ms);
        if (sd == SIDE_SILENT_CONFIRMED)
            sb_add(s, " and a direct ReportNow to it timed out");
        else if (d->state == ANALYSIS_DIRECT_PENDING)
            sb_add(s, "; a direct ReportNow to it is pending");
        else if (want_direct)
            sb_add(s, "; a direct ReportNow to it is wanted");
        return;
    }
}

/* The evidence lists that follow a verdict (or its absence). */
static void describe_evidence(sb *s, const ctx *c, const reg_instance *m, const agg *a)
{
    if (a->confirm > 0)
        describe_replicas(s, c, m, EV_CONFIRM,
                          a->confirm == a->n ? "every replica says it cannot replicate from it"
                                             : "cannot replicate from it");
    if (a->veto > 0)
        describe_replicas(s, c, m, EV_VETO, "still replicating from it (veto)");
    if (a->neutral > 0)
        describe_replicas(s, c, m, EV_NEUTRAL, "cannot tell (no evidence either way)");
    if (a->unknown > 0)
        describe_replicas(s, c, m, EV_UNKNOWN, "unknown (stale agent or server not up)");
}

/* ---- decisions ------------------------------------------------------------------------ */

/* What the judgement of one instance produced. */
typedef struct verdict {
    analysis_code code;
    bool dead;          /* dead by the holistic rule */
    bool want_direct;   /* its agent is silent and a direct check could change the finding */
    const char *reason; /* why no verdict, for the description; NULL when none */
} verdict;

/*
 * The holistic rule (DESIGN.md section 4): a master is dead only when
 *   1. its own agent says DOWN or UNRESPONSIVE, or is silent and a direct
 *      ReportNow to it timed out (side_confirms), AND
 *   2. no fresh replica vetoes (still receives events, or its witness gets the
 *      greeting), AND
 *   3. at least one fresh replica whose server is up confirms that it cannot
 *      replicate from it ("one observer never decides alone": the master's
 *      agent alone is not enough, and with no fresh replica there is no
 *      verdict). Replicas that cannot tell (an operator-stopped IO thread
 *      without a witness) and unknown ones (stale, or their own server down)
 *      neither confirm nor veto.
 * The same rule judges intermediate masters and co-masters.
 */
static bool holistic_dead(side sd, const agg *a)
{
    return side_confirms(sd) && a->veto == 0 && a->confirm > 0;
}

/*
 * Every replica's agent is fresh and says its own server is not up, nobody
 * vetoes, and the judged instance's side confirms: orchestrator's
 * "...AndReplicas" (the master and all its replicas are gone). Several agents
 * agree, but there is nothing left to promote or move: never recoverable.
 */
static bool dead_with_all_replicas(side sd, const agg *a)
{
    return side_confirms(sd) && a->veto == 0 && a->n > 0 && a->fresh == a->n && a->valid == 0;
}

/* "Unreachable" findings when the rule gives no verdict; why, in words. */
static const char *no_verdict_reason(side sd, const agg *a)
{
    if (a->veto > 0)
        return "replicas still replicate from it: no failover";
    if (sd == SIDE_BLIND)
        return "its agent cannot tell: no verdict";
    if (sd == SIDE_SILENT)
        return "its agent's silence is not confirmed by a direct check yet: no verdict";
    if (a->fresh == 0)
        return "no replica's agent is fresh: one observer never decides alone, no verdict";
    return "no replica can tell whether it replicates: no verdict";
}

/*
 * The cluster's master (no master of its own). Order follows orchestrator's
 * analysis_dao.go where the meanings are the same.
 *
 * Its agent says UP (or answered a direct check UP): the master works; look
 * at its replicas (LockedSemiSyncMaster first, then the "not replicating"
 * family: those are the master's replicas' problems, never a failover).
 *
 * Otherwise:
 *   - no replicas at all: DeadMasterWithoutReplicas when its side confirms
 *     (orchestrator reports it; nothing to promote: not recoverable), else
 *     UnreachableMaster;
 *   - dead by the holistic rule: MasterHung when its agent says UNRESPONSIVE
 *     (orch's name for a hung master, with DeadMaster's semantics and
 *     recovery), else DeadMaster when every replica is valid, else
 *     DeadMasterAndSomeReplicas (some stale or down): recoverable;
 *   - every replica's server is down too (fresh agents say so):
 *     DeadMasterAndReplicas, not recoverable;
 *   - replicas veto: UnreachableMasterWithLaggingReplicas when every replica
 *     lags (and not all by SQL_Delay: orchestrator's hint that the master is
 *     overloaded or stalling); AgentDown when the master's agent is silent
 *     (the agent or its host's network is down, the server is fine); else
 *     UnreachableMaster;
 *   - anything else: UnreachableMaster, saying why there is no verdict.
 * The direct check is wanted whenever the master's agent is silent, the check
 * was not sent, and its result could change the finding (nobody vetoes).
 */
static verdict decide_master(const ctx *c, const reg_instance *m, side sd, const analysis_direct *d,
                             const agg *a)
{
    verdict v = {ANALYSIS_NO_PROBLEM, false, false, NULL};
    if (sd == SIDE_UP) {
        const Orch__ServerStatus *s = server_of(m);
        if (s != NULL && s->has_semi_sync_master_enabled && s->semi_sync_master_enabled &&
            s->has_semi_sync_master_status && s->semi_sync_master_status &&
            (s->has_semi_sync_master_clients ? s->semi_sync_master_clients : 0) <
                c->cfg->semi_sync_wait_count)
            v.code = ANALYSIS_LOCKED_SEMI_SYNC_MASTER;
        else if (a->n == 1 && a->valid == 1 && a->replicating == 0)
            v.code = ANALYSIS_MASTER_SINGLE_REPLICA_NOT_REPLICATING;
        else if (a->n == 1 && a->valid == 0)
            v.code = ANALYSIS_MASTER_SINGLE_REPLICA_DEAD;
        else if (a->n > 1 && a->valid == a->n && a->replicating == 0)
            v.code = ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING;
        else if (a->n > 1 && a->valid > 0 && a->valid < a->n && a->replicating == 0)
            v.code = ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING_OR_DEAD;
        return v;
    }
    v.want_direct = sd == SIDE_SILENT && d->state == ANALYSIS_DIRECT_NONE && a->veto == 0;
    if (a->n == 0) {
        if (side_confirms(sd)) {
            v.code = ANALYSIS_DEAD_MASTER_WITHOUT_REPLICAS;
        } else {
            v.code = ANALYSIS_UNREACHABLE_MASTER;
            v.reason = no_verdict_reason(sd, a);
        }
    } else if (holistic_dead(sd, a)) {
        v.dead = true;
        if (sd == SIDE_HUNG)
            v.code = ANALYSIS_MASTER_HUNG;
        else if (a->valid == a->n)
            v.code = ANALYSIS_DEAD_MASTER;
        else
            v.code = ANALYSIS_DEAD_MASTER_AND_SOME_REPLICAS;
    } else if (dead_with_all_replicas(sd, a)) {
        v.code = ANALYSIS_DEAD_MASTER_AND_REPLICAS;
    } else if (a->veto > 0 && a->lagging == a->n && a->delayed < a->n) {
        v.code = ANALYSIS_UNREACHABLE_MASTER_WITH_LAGGING_REPLICAS;
        v.reason = "every replica lags";
    } else if (a->veto > 0 && side_silent(sd)) {
        v.code = ANALYSIS_AGENT_DOWN;
    } else {
        v.code = ANALYSIS_UNREACHABLE_MASTER;
        v.reason = no_verdict_reason(sd, a);
    }
    return v;
}

/*
 * A member of a replication cycle. orchestrator: DeadCoMaster,
 * DeadCoMasterAndSomeReplicas, UnreachableCoMaster,
 * AllCoMasterReplicasNotReplicating. The other co-master is one of its
 * replicas, so its agent's evidence counts like any replica's. A dead
 * co-master is of the dead-master family (orchestrator recovers it), so it
 * is recoverable; a hung one is DeadCoMaster too, its description says hung.
 * The cluster's top co-master also gets the LockedSemiSyncMaster check.
 */
static verdict decide_co_master(const ctx *c, const reg_instance *m, side sd,
                                const analysis_direct *d, const agg *a)
{
    verdict v = {ANALYSIS_NO_PROBLEM, false, false, NULL};
    if (sd == SIDE_UP) {
        if (m->depth == 0) {
            v = decide_master(c, m, sd, d, a);
            if (v.code == ANALYSIS_LOCKED_SEMI_SYNC_MASTER)
                return v;
            v.code = ANALYSIS_NO_PROBLEM;
        }
        if (a->n > 0 && a->replicating == 0)
            v.code = ANALYSIS_ALL_CO_MASTER_REPLICAS_NOT_REPLICATING;
        return v;
    }
    v.want_direct = sd == SIDE_SILENT && d->state == ANALYSIS_DIRECT_NONE && a->veto == 0;
    if (holistic_dead(sd, a)) {
        v.dead = true;
        v.code =
            a->valid == a->n ? ANALYSIS_DEAD_CO_MASTER : ANALYSIS_DEAD_CO_MASTER_AND_SOME_REPLICAS;
    } else if (a->veto > 0 && side_silent(sd)) {
        v.code = ANALYSIS_AGENT_DOWN;
    } else {
        v.code = ANALYSIS_UNREACHABLE_CO_MASTER;
        v.reason = no_verdict_reason(sd, a);
    }
    return v;
}

/*
 * An intermediate master: the same holistic rule one level down.
 *
 * Its agent says UP: AllIntermediateMasterReplicasFailingToConnectOrDead when
 * it has several replicas, none replicates and every valid one fails to
 * connect; AllIntermediateMasterReplicasNotReplicating when none replicates.
 * orchestrator recovers the first like a dead intermediate master; here the
 * intermediate master's own agent says it works, so by the holistic rule it is
 * not dead: detection only (safer reading).
 *
 * Otherwise, dead by the rule: ...WithSingleReplicaFailingToConnect /
 * ...WithSingleReplica (one valid replica), DeadIntermediateMaster (all
 * valid), DeadIntermediateMasterAndSomeReplicas (some stale or down), all
 * recoverable (move the replicas under a sibling or up). Every replica's
 * server down too: DeadIntermediateMasterAndReplicas (nothing to move). Vetoed:
 * UnreachableIntermediateMasterWithLaggingReplicas when all lag, AgentDown when
 * its agent is silent, else UnreachableIntermediateMaster.
 */
static verdict decide_intermediate(side sd, const analysis_direct *d, const agg *a)
{
    verdict v = {ANALYSIS_NO_PROBLEM, false, false, NULL};
    if (sd == SIDE_UP) {
        if (a->n > 1 && a->replicating == 0 && a->failing > 0 && a->failing == a->valid)
            v.code = ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_FAILING_TO_CONNECT_OR_DEAD;
        else if (a->n > 0 && a->replicating == 0)
            v.code = ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_NOT_REPLICATING;
        return v;
    }
    v.want_direct = sd == SIDE_SILENT && d->state == ANALYSIS_DIRECT_NONE && a->veto == 0;
    if (holistic_dead(sd, a)) {
        v.dead = true;
        if (a->n == 1 && a->valid == 1 && a->failing == 1)
            v.code = ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA_FAILING_TO_CONNECT;
        else if (a->n == 1 && a->valid == 1)
            v.code = ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA;
        else if (a->valid == a->n)
            v.code = ANALYSIS_DEAD_INTERMEDIATE_MASTER;
        else
            v.code = ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_SOME_REPLICAS;
    } else if (dead_with_all_replicas(sd, a)) {
        v.code = ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_REPLICAS;
    } else if (a->veto > 0 && a->lagging == a->n && a->delayed < a->n) {
        v.code = ANALYSIS_UNREACHABLE_INTERMEDIATE_MASTER_WITH_LAGGING_REPLICAS;
        v.reason = "every replica lags";
    } else if (a->veto > 0 && side_silent(sd)) {
        v.code = ANALYSIS_AGENT_DOWN;
    } else {
        v.code = ANALYSIS_UNREACHABLE_INTERMEDIATE_MASTER;
        v.reason = no_verdict_reason(sd, a);
    }
    return v;
}

/* ---- building the result ------------------------------------------------------------------ */

static void entry_fini(analysis_entry *e)
{
    free(e->description);
    free(e->structure_detail);
    free(e->replicas);
    for (size_t k = 0; k < e->nerrant; k++)
        free(e->errant[k].gtid);
    free(e->errant);
}

void analysis_result_free(analysis_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->nentries; i++)
        entry_fini(&res->entries[i]);
    for (size_t i = 0; i < res->nclusters; i++) {
        free(res->clusters[i].alias);
        free(res->clusters[i].note);
    }
    free(res->entries);
    free(res->clusters);
    free(res->direct_wanted);
    free(res);
}

const analysis_entry *analysis_result_find(const analysis_result *res, const orch_key *key)
{
    for (size_t i = 0; res != NULL && i < res->nentries; i++)
        if (orch_key_equal(&res->entries[i].key, key))
            return &res->entries[i];
    return NULL;
}

const char *analysis_result_errant(const analysis_result *res, const orch_key *replica)
{
    for (size_t i = 0; res != NULL && i < res->nentries; i++)
        for (size_t k = 0; k < res->entries[i].nerrant; k++)
            if (orch_key_equal(&res->entries[i].errant[k].replica, replica))
                return res->entries[i].errant[k].gtid;
    return NULL;
}

static bool push_entry(ctx *c, analysis_entry *e)
{
    analysis_result *res = c->res;
    if (res->nentries == c->entries_cap) {
        size_t cap = c->entries_cap ? c->entries_cap * 2 : 16;
        analysis_entry *v = realloc(res->entries, cap * sizeof(*v));
        if (v == NULL)
            return false;
        res->entries = v;
        c->entries_cap = cap;
    }
    res->entries[res->nentries++] = *e;
    return true;
}

static bool push_direct(ctx *c, const orch_key *k)
{
    analysis_result *res = c->res;
    if (res->ndirect_wanted == c->direct_cap) {
        size_t cap = c->direct_cap ? c->direct_cap * 2 : 8;
        orch_key *v = realloc(res->direct_wanted, cap * sizeof(*v));
        if (v == NULL)
            return false;
        res->direct_wanted = v;
        c->direct_cap = cap;
    }
    res->direct_wanted[res->ndirect_wanted++] = *k;
    return true;
}

static analysis_role role_of(const reg_instance *i)
{
    if (i->co_master)
        return ANALYSIS_ROLE_CO_MASTER;
    if (i->depth == 0 && !i->has_master)
        return ANALYSIS_ROLE_MASTER;
    if (i->nreplicas > 0)
        return ANALYSIS_ROLE_INTERMEDIATE_MASTER;
    return ANALYSIS_ROLE_REPLICA;
}

/*
 * Structure warnings (orchestrator's StructureAnalysis, computed whatever the
 * master's state, as there). "Top" is the cluster's master, or the top
 * co-master of a cycle.
 *   NoLoggingReplicas   top with more than one replica and none with log_bin and
 *                       log_slave_updates (orchestrator's rule);
 *   NoFailoverSupport   top with replicas of which none could be promoted
 *                       (DESIGN.md: "no eligible replica with binary logs: detect,
 *                       refuse to recover": none has log_bin and
 *                       log_slave_updates and a rule other than must_not), or a
 *                       MySQL member without gtid_mode=ON (replicas cannot be
 *                       repointed by GTID, orchestrator's meaning);
 *   Statement/Mixed/Row binlog formats mixed among the top's logging replicas;
 *   MultipleMajorVersionsLoggingReplicas  logging replicas of several series;
 *   DifferentGTIDModes  a replica's MySQL gtid_mode differs from the instance's,
 *                       or (MariaDB) some replicas replicate by GTID and some by
 *                       file and position;
 *   ErrantGTID          a replica, not downtimed (as orchestrator), has
 *                       transactions its master lacks (errant_of);
 *   NoWriteableMaster   the top is fresh, up and read-only;
 *   NotEnoughValidSemiSyncReplicas  semi-sync master enabled, already switched
 *                       to async (status OFF), fewer clients than the wait
 *                       count: acknowledged-write protection is gone.
 */
static void structure_of(const ctx *c, const reg_instance *m, analysis_role role, const agg *a,
                         analysis_entry *e, sb *detail)
{
    bool top = role == ANALYSIS_ROLE_MASTER || (role == ANALYSIS_ROLE_CO_MASTER && m->depth == 0);
    const Orch__ServerStatus *s = server_of(m);
    uint32_t st = 0;
    if (top && a->n > 1 && a->logging == 0) {
        st |= ANALYSIS_ST_NO_LOGGING_REPLICAS;
        sb_add(detail, "%sno replica has log_bin and log_slave_updates", detail->len ? "; " : "");
    }
    if (top && a->n > 0 && a->eligible_logging == 0) {
        st |= ANALYSIS_ST_NO_FAILOVER_SUPPORT;
        sb_add(detail, "%sno replica could be promoted (log_bin, log_slave_updates, not must_not)",
               detail->len ? "; " : "");
    }
    const char *nogtid = a->no_gtid_mysql;
    if (top && a->n > 0 && nogtid == NULL && is_mysql(s) && s->gtid_mode != NULL &&
        strcasecmp(s->gtid_mode, "ON") != 0)
        nogtid = m->name;
    if (top && a->n > 0 && nogtid != NULL) {
        st |= ANALYSIS_ST_NO_FAILOVER_SUPPORT;
        sb_add(detail, "%s%s has no gtid_mode=ON: replicas cannot be repointed by GTID",
               detail->len ? "; " : "", nogtid);
    }
    if (top && a->fmt_statement > 0 && a->fmt_mixed > 0)
        st |= ANALYSIS_ST_STATEMENT_AND_MIXED_LOGGING_REPLICAS;
    if (top && a->fmt_statement > 0 && a->fmt_row > 0)
        st |= ANALYSIS_ST_STATEMENT_AND_ROW_LOGGING_REPLICAS;
    if (top && a->fmt_mixed > 0 && a->fmt_row > 0)
        st |= ANALYSIS_ST_MIXED_AND_ROW_LOGGING_REPLICAS;
    if (top && (a->fmt_statement > 0) + (a->fmt_mixed > 0) + (a->fmt_row > 0) > 1)
        sb_add(detail, "%slogging replicas' binlog_format: %u STATEMENT, %u MIXED, %u ROW",
               detail->len ? "; " : "", a->fmt_statement, a->fmt_mixed, a->fmt_row);
    if (top && a->multiple_series) {
        st |= ANALYSIS_ST_MULTIPLE_MAJOR_VERSIONS_LOGGING_REPLICAS;
        sb_add(detail, "%slogging replicas run several major versions", detail->len ? "; " : "");
    }
    if (a->n > 0 && (a->gtid_modes_differ || a->using_gtid_differs)) {
        st |= ANALYSIS_ST_DIFFERENT_GTID_MODES;
        if (a->gtid_modes_differ)
            sb_add(detail, "%sgtid_mode %s here, replicas from %s to %s", detail->len ? "; " : "",
                   gtid_mode_of(s)[0] ? gtid_mode_of(s) : "(none)", a->min_mode, a->max_mode);
        else
            sb_add(detail, "%s%u replicas use GTID, %u file and position", detail->len ? "; " : "",
                   a->using_gtid_yes, a->using_gtid_no);
    }
    if (e->max_replica_gtid_errant != NULL) {
        st |= ANALYSIS_ST_ERRANT_GTID;
        for (size_t k = 0; k < e->nerrant; k++) {
            if (e->errant[k].downtimed)
                continue;
            char name[ORCH_KEY_STRLEN];
            sb_add(detail, "%s%s has errant transactions ", detail->len ? "; " : "",
                   orch_key_format(&e->errant[k].replica, name, sizeof(name)));
            sb_add_text(detail, e->errant[k].gtid, ERRTEXT_MAX);
        }
    }
    if (top && valid(c, m) && s != NULL && s->has_read_only && s->read_only) {
        st |= ANALYSIS_ST_NO_WRITEABLE_MASTER;
        sb_add(detail, "%sthe master is read-only", detail->len ? "; " : "");
    }
    if (top && valid(c, m) && s != NULL && s->has_semi_sync_master_enabled &&
        s->semi_sync_master_enabled &&
        !(s->has_semi_sync_master_status && s->semi_sync_master_status) &&
        (s->has_semi_sync_master_clients ? s->semi_sync_master_clients : 0) <
            c->cfg->semi_sync_wait_count) {
        st |= ANALYSIS_ST_NOT_ENOUGH_VALID_SEMI_SYNC_REPLICAS;
        sb_add(detail,
               "%ssemi-sync master enabled but OFF with %u of %u clients: commits are "
               "acknowledged without a replica",
               detail->len ? "; " : "",
               s->has_semi_sync_master_clients ? (unsigned)s->semi_sync_master_clients : 0u,
               c->cfg->semi_sync_wait_count);
    }
    e->structure = st;
}

/* The description of a finding (code != NoProblem). */
static void describe(sb *s, const ctx *c, const reg_instance *m, analysis_code code, side sd,
                     const analysis_direct *d, const agg *a, const verdict *v,
                     const analysis_entry *e)
{
    switch (code) {
    case ANALYSIS_LOCKED_SEMI_SYNC_MASTER: {
        const Orch__ServerStatus *st = server_of(m);
        sb_add(s,
               "semi-sync master enabled and ON with %u semi-sync replicas connected (waits for "
               "%u): commits wait for acknowledgements that cannot come; the leader switches "
               "it to async",
               st->has_semi_sync_master_clients ? (unsigned)st->semi_sync_master_clients : 0u,
               c->cfg->semi_sync_wait_count);
        return;
    }
    case ANALYSIS_MASTER_SINGLE_REPLICA_NOT_REPLICATING:
    case ANALYSIS_MASTER_SINGLE_REPLICA_DEAD:
    case ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING:
    case ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING_OR_DEAD:
    case ANALYSIS_ALL_CO_MASTER_REPLICAS_NOT_REPLICATING:
    case ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_FAILING_TO_CONNECT_OR_DEAD:
    case ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_NOT_REPLICATING:
        describe_side(s, c, m, sd, d, v->want_direct);
        sb_add(s, " but %u of its %u replicas replicate", a->replicating, a->n);
        describe_not_replicating(s, c, m);
        return;
    case ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER:
        sb_add(s, "it cannot connect to its master %s: ", m->master ? m->master->name : "?");
        describe_replica(s, c, m);
        return;
    default:
        break;
    }
    describe_side(s, c, m, sd, d, v->want_direct);
    if (a->n == 0) {
        sb_add(s, "; it has no replicas");
        if (code == ANALYSIS_DEAD_MASTER_WITHOUT_REPLICAS)
            sb_add(s, ": nothing to promote");
    }
    if (code == ANALYSIS_MASTER_HUNG)
        sb_add(s, " and no replica gets its greeting: hung (stopped process, stalled disk?), "
                  "treated as dead");
    else if (code == ANALYSIS_AGENT_DOWN)
        sb_add(s, " while its replicas still replicate from it: the agent or its host's network "
                  "is down, the server is not; no failover");
    else if (code == ANALYSIS_DEAD_MASTER_AND_REPLICAS ||
             code == ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_REPLICAS)
        sb_add(s, "; every replica's server is down too: nothing to promote or move");
    else if (v->reason != NULL)
        sb_add(s, "; %s", v->reason);
    describe_evidence(s, c, m, a);
    if (v->dead && e->is_downtimed)
        sb_add(s, "; downtimed: no automated recovery");
    if (v->dead && e->in_maintenance)
        sb_add(s, "; in maintenance: no automated recovery");
    if (v->dead && e->role == ANALYSIS_ROLE_INTERMEDIATE_MASTER && m->master == NULL)
        sb_add(s, "; its own master is unknown to orch: no automated recovery");
}

static bool copy_keys(analysis_entry *e, const reg_instance *m)
{
    if (m->nreplicas == 0)
        return true;
    e->replicas = malloc(m->nreplicas * sizeof(*e->replicas));
    if (e->replicas == NULL)
        return false;
    for (size_t k = 0; k < m->nreplicas; k++)
        e->replicas[k] = m->replicas[k]->key;
    e->nreplicas = m->nreplicas;
    return true;
}

/* Errant sets of m's replicas, into e. */
static orch_err collect_errant(const ctx *c, const reg_instance *m, analysis_entry *e)
{
    if (!c->cfg->errant_gtid || !valid(c, m))
        return ORCH_OK;
    size_t cap = 0;
    for (size_t k = 0; k < m->nreplicas; k++) {
        const reg_instance *r = m->replicas[k];
        char *gtid = NULL;
        orch_err err = errant_of(c, r, m, &gtid);
        if (err != ORCH_OK)
            return err;
        if (gtid == NULL)
            continue;
        if (e->nerrant == cap) {
            size_t ncap = cap ? cap * 2 : 2;
            analysis_errant *v = realloc(e->errant, ncap * sizeof(*v));
            if (v == NULL) {
                free(gtid);
                return ORCH_ERR_NOMEM;
            }
            e->errant = v;
            cap = ncap;
        }
        e->errant[e->nerrant].replica = r->key;
        e->errant[e->nerrant].gtid = gtid;
        e->errant[e->nerrant].downtimed = downtimed(c, r);
        e->nerrant++;
    }
    for (size_t k = 0; k < e->nerrant && e->max_replica_gtid_errant == NULL; k++)
        if (!e->errant[k].downtimed)
            e->max_replica_gtid_errant = e->errant[k].gtid;
    return ORCH_OK;
}

/*
 * Judges one instance and appends its entry when there is something to say.
 * false when out of memory.
 */
static bool analyze_instance(ctx *c, const reg_instance *m, size_t cluster_index,
                             analysis_cluster *cl)
{
    /* The judgement first, on locals: most instances have nothing to say, and the
     * entry (keys, names, counts) is filled only for those that do. */
    analysis_role role = role_of(m);
    bool is_downtimed = downtimed(c, m), maint = in_maintenance(c, m);
    bool failing = m->has_master && valid(c, m) && failing_to_connect(m->channel);
    agg a;
    memset(&a, 0, sizeof(a));
    for (size_t k = 0; k < m->nreplicas; k++)
        count_replica(c, m, m->replicas[k], &a);

    /*
     * Warm-up: "a coordinator that has just started judges nobody it has not
     * heard from yet", and "while a member of a cluster has not been heard from
     * since the coordinator started, that cluster's master is not judged (the
     * missing replica might veto)". The registry holds only instances that
     * reported, so a member not heard from yet is invisible: within warm-up no
     * instance of any cluster is judged (no Analysis code at all, not even the
     * replica-level ones; structure warnings still are computed). Past it, an
     * instance that never reported is unknown like a stale one.
     */
    side sd = SIDE_UP;
    verdict v = {ANALYSIS_NO_PROBLEM, false, false, NULL};
    analysis_direct d = {ANALYSIS_DIRECT_NONE, ORCH__PROBE_STATE__PROBE_UNKNOWN};
    if (!c->warming) {
        switch (role) {
        case ANALYSIS_ROLE_MASTER:
            sd = judge_side(c, m, &d);
            v = decide_master(c, m, sd, &d, &a);
            break;
        case ANALYSIS_ROLE_CO_MASTER:
            sd = judge_side(c, m, &d);
            v = decide_co_master(c, m, sd, &d, &a);
            break;
        case ANALYSIS_ROLE_INTERMEDIATE_MASTER:
            sd = judge_side(c, m, &d);
            v = decide_intermediate(sd, &d, &a);
            break;
        case ANALYSIS_ROLE_REPLICA:
            sd = valid(c, m) ? SIDE_UP : SIDE_BLIND;
            break;
        }
        /* orchestrator's last rule: a replica of the cluster's master that cannot connect to it. */
        if (v.code == ANALYSIS_NO_PROBLEM && m->depth == 1 && !m->co_master && failing)
            v.code = ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER;
    }

    analysis_entry e;
    memset(&e, 0, sizeof(e));
    e.role = role;
    e.code = v.code;
    e.direct = d;
    e.direct_check_wanted = v.want_direct;
    e.is_downtimed = is_downtimed;
    e.in_maintenance = maint;

    /*
     * Recoverable: dead by the holistic rule, of a family a recovery answers
     * (dead master, dead co-master, dead intermediate master with replicas to
     * move), and not held back by the operator: a downtimed master's death is
     * still reported (orchestrator's IsDowntimed), but not recovered
     * automatically; an instance in maintenance has an operation running on it
     * (orchestrator leaves such instances out of analysis altogether; safer
     * here: report, do not act). An intermediate master whose own master orch
     * does not know has nowhere to move its replicas up to: not recoverable.
     */
    e.recoverable = v.dead &&
                    (analysis_code_is_dead_master(v.code) ||
                     analysis_code_is_dead_intermediate_master(v.code)) &&
                    !is_downtimed && !maint &&
                    !(role == ANALYSIS_ROLE_INTERMEDIATE_MASTER && m->master == NULL);

    bool ok = collect_errant(c, m, &e) == ORCH_OK;
    sb detail = {0};
    if (ok)
        structure_of(c, m, role, &a, &e, &detail);
    bool keep = e.code != ANALYSIS_NO_PROBLEM || e.structure != 0 || e.nerrant > 0 ||
                e.direct_check_wanted || c->cfg->include_no_problem;
    if (ok && keep) {
        e.key = m->key;
        snprintf(e.name, sizeof(e.name), "%s", m->name);
        e.has_master = m->has_master;
        if (m->has_master)
            e.master_key = m->master_key;
        e.cluster = cluster_index;
        e.is_master = role == ANALYSIS_ROLE_MASTER;
        e.is_co_master = m->co_master;
        e.stale = !fresh(c, m);
        e.state = m->report->state;
        e.last_check_valid = valid(c, m);
        e.agent_age_ms = age(c, m);
        e.downtime_until_wall_ms = is_downtimed ? m->op.downtime_until_ms : 0;
        e.replication_depth = m->depth > 0 ? (unsigned)m->depth : 0u;
        e.is_failing_to_connect_to_master = failing;
        const Orch__ServerStatus *s = server_of(m);
        if (s != NULL) {
            e.is_read_only = s->has_read_only && s->read_only;
            e.semi_sync_master_enabled =
                s->has_semi_sync_master_enabled && s->semi_sync_master_enabled;
            e.semi_sync_master_status =
                s->has_semi_sync_master_status && s->semi_sync_master_status;
            e.semi_sync_master_clients =
                s->has_semi_sync_master_clients ? (unsigned)s->semi_sync_master_clients : 0u;
            copy_mode(e.gtid_mode, gtid_mode_of(s));
        }
        e.semi_sync_master_wait_count = c->cfg->semi_sync_wait_count;
        e.count_replicas = a.n;
        e.count_valid_replicas = a.valid;
        e.count_valid_replicating_replicas = a.replicating;
        e.count_replicas_failing_to_connect_to_master = a.failing;
        e.count_downtimed_replicas = a.downtimed;
        e.count_stale_replicas = a.stale;
        e.count_lagging_replicas = a.lagging;
        e.count_delayed_replicas = a.delayed;
        e.count_logging_replicas = a.logging;
        e.count_semi_sync_replicas_enabled = a.semi;
        e.count_confirming_replicas = a.confirm;
        e.count_vetoing_replicas = a.veto;
        if (a.have_mode) {
            copy_mode(e.min_replica_gtid_mode, a.min_mode);
            copy_mode(e.max_replica_gtid_mode, a.max_mode);
        }
        sb desc = {0};
        if (e.code != ANALYSIS_NO_PROBLEM)
            describe(&desc, c, m, e.code, sd, &d, &a, &v, &e);
        e.description = sb_take(&desc);
        if (e.structure != 0)
            e.structure_detail = sb_take(&detail);
        ok = e.description != NULL && (e.structure == 0 || e.structure_detail != NULL) &&
             copy_keys(&e, m);
        if (ok && e.direct_check_wanted)
            ok = push_direct(c, &m->key);
        if (ok)
            ok = push_entry(c, &e);
    }
    free(detail.p);
    if (!ok || !keep) {
        entry_fini(&e);
        return ok;
    }
    if (cl->count == 0)
        cl->first = c->res->nentries - 1;
    cl->count++;
    if (e.recoverable)
        cl->recoverable = true;
    if (m->depth == 0)
        cl->code = e.code;
    return true;
}

orch_err analysis_run(registry *reg, const analysis_config *cfg, analysis_direct_fn direct,
                      void *direct_arg, int64_t now_ms, int64_t now_wall_ms, analysis_result **out,
                      char *msg, size_t msglen)
{
    if (reg == NULL || cfg == NULL || out == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "analysis: missing argument");
    if (cfg->stale_after_ms <= 0 || cfg->warmup_ms < 0)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "analysis: stale_after_ms must be positive and warmup_ms not negative");

    analysis_result *res = calloc(1, sizeof(*res));
    if (res == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "analysis: out of memory");
    ctx c = {.cfg = cfg,
             .now = now_ms,
             .now_wall = now_wall_ms,
             .direct = direct,
             .direct_arg = direct_arg,
             .res = res};
    int64_t since = now_ms - registry_started_ms(reg);
    c.warming = since < cfg->warmup_ms;
    res->now_ms = now_ms;
    res->warming_up = c.warming;
    res->warmup_left_ms = c.warming ? cfg->warmup_ms - since : 0;

    size_t ncl = 0;
    reg_cluster *const *cls = registry_clusters(reg, &ncl);
    if (ncl > 0) {
        res->clusters = calloc(ncl, sizeof(*res->clusters));
        if (res->clusters == NULL)
            goto nomem;
    }
    for (size_t i = 0; i < ncl; i++) {
        const reg_cluster *rc = cls[i];
        analysis_cluster *cl = &res->clusters[i];
        res->nclusters++;
        snprintf(cl->name, sizeof(cl->name), "%s", rc->name);
        cl->alias = strdup(rc->alias != NULL ? rc->alias : rc->name);
        if (cl->alias == NULL)
            goto nomem;
        cl->master = rc->master->key;
        cl->first = res->nentries;
        cl->warming_up = c.warming;
        if (c.warming) {
            sb note = {0};
            sb_add(&note,
                   "warming up: the coordinator started %" PRId64 " ms ago (warm-up %" PRId64
                   " ms); nobody is judged until every agent had time to report",
                   since, cfg->warmup_ms);
            cl->note = sb_take(&note);
            if (cl->note == NULL)
                goto nomem;
        }
        for (size_t k = 0; k < rc->nmembers; k++)
            if (!analyze_instance(&c, rc->members[k], i, cl))
                goto nomem;
        if (cl->count == 0)
            cl->first = res->nentries;
    }
    *out = res;
    return ORCH_OK;
nomem:
    analysis_result_free(res);
    return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "analysis: out of memory");
}
