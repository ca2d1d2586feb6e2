/*
 * recovery.c: the leader's detections, direct checks, recoveries and fences
 * (see recovery.h for the steps and their order).
 *
 * A recovery is a small state machine: each phase sends its commands (in
 * parallel where the design allows), counts the replies, and moves on when
 * the last one is in. Records that later decisions depend on (the lock, the
 * chosen successor) are waited for; the others are queued to the store in
 * order and not waited for. Before every phase the recovery checks that this
 * node still leads by its own clock; a recovery that lost leadership stops
 * where it is, records nothing more, and leaves its lock for the next leader,
 * which marks it interrupted and, if a successor had been recorded, promotes
 * the same one (or, when that one was promoted already, completes the
 * recovery: the others repointed to it, the old master fenced).
 */
#include "recovery.h"

#include "candidate.h"
#include "clock.h"
#include "gtid.h"
#include "hmap.h"
#include "log.h"
#include "render.h"
#include "sbuf.h"
#include "version.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define DIRECT_SLOTS    64
#define DIRECT_KEEP_MS  3000 /* a direct check's answer counts this long */
#define FENCE_RETRY_MS  2000
#define FREEZE_EXTRA_MS 3000 /* see PH_FREEZE */
#define MAX_PARTS       256

typedef struct direct_slot {
    bool used;
    orch_key key;
    analysis_direct st;
    int64_t at_ms;
} direct_slot;

typedef struct pending_fence {
    orch_key key;
    char uid[40];
    int64_t last_try_ms;
    bool in_flight;
} pending_fence;

typedef enum phase {
    PH_LOCK_READ = 0,
    PH_LOCK_WRITE,
    PH_PRE_HOOKS,
    PH_FREEZE,
    PH_CHOOSE,
    PH_SOURCE_APPLY,
    PH_CATCHUP_REPOINT,
    PH_CATCHUP_WAIT,
    PH_RECORD_SUCCESSOR,
    PH_CANDIDATE_APPLY,
    PH_PROMOTE_RESET,
    PH_PROMOTE_WRITABLE,
    PH_REPOINT,
    PH_FENCE,
    PH_RECORD_END,
    PH_POST_HOOKS,
    PH_DONE,
} phase;

/* A replica of the failed master taking part in its recovery. */
typedef struct part {
    orch_key key;
    char name[ORCH_KEY_STRLEN];
    char url[512];
    Orch__InstanceReport *before; /* the registry's report at the start (copy) */
    Orch__InstanceReport *state;  /* the freeze reply's report (owned) */
    bool fresh;
    orch_gtid_set *received, *executed, *errant;
    orch_version version;
} part;

typedef struct recovery recovery;

struct recovery_mgr {
    recovery_deps d;
    recovery_conf c;
    analysis_result *last;
    struct event *ev_analyze;
    bool leader;
    direct_slot direct[DIRECT_SLOTS];
    recovery *active; /* linked list */
    pending_fence *fences;
    size_t nfences;
    bool fences_loaded;
    /* Findings seen ("instance|code" -> incident), to act once on each while
     * it lasts; those the last analysis did not consider are dropped. */
    orch_hmap incidents;
    uint64_t run; /* analyses so far: an incident's stamp */
    recovery_stats stats;
    /* Errant GTIDs found on replicas while their master was alive ("host:port" ->
     * malloc'd set text): once the master is dead the analysis cannot compute
     * them, and a recovery must not take a replica's local writes for the most
     * advanced position. Refreshed at every analysis that can tell. */
    orch_hmap errant;
    /* Masters this leader switched to async (LockedSemiSyncMaster): switched
     * back once enough semi-sync replicas are connected again. */
    orch_key degraded[32];
    size_t ndegraded;
};

struct recovery {
    recovery *next;
    recovery_mgr *m;
    char uid[40];
    char cluster[ORCH_KEY_STRLEN], alias[ORCH_KEY_STRLEN + 16];
    orch_key failed;
    char failed_name[ORCH_KEY_STRLEN];
    char failed_url[512];
    char analysis[64];
    char designated[ORCH_KEY_STRLEN]; /* the replica the operator named, or "" */
    char repoint_to[ORCH_KEY_STRLEN]; /* where the replicas go: the new master, or (a dead
                                         intermediate master) its own master */
    char *description;
    bool force, manual, intermediate;
    char reason[256];
    uint64_t epoch;
    phase ph;
    int pending;
    bool step_failed;
    char step_error[1024];
    unsigned seq;
    int64_t started_ms;
    char master_dc[128], master_region[128];
    char resume_successor[ORCH_KEY_STRLEN];
    bool adopted; /* resumed with that successor already promoted */
    part *parts;
    size_t nparts;
    size_t chosen, source;
    candidate_result cr;
    bool have_cr;
    char target[8192];
    char chosen_received[8192];
    bool promoted, succeeded;
    char error[1024];
    char lost[2048];
    recovery_done_fn done;
    void *done_arg;
};

/* ---- small helpers ------------------------------------------------------- */

static bool leading(const recovery_mgr *m)
{
    return election_is_leader(m->d.el, orch_mono_ms());
}

static char *stmt_done(orch_sbuf *b)
{
    return orch_sbuf_finish(b);
}

/* Submits statements (taking ownership) as one batch; done may be NULL. */
static void batch(recovery_mgr *m, const char *what, char **stmts, size_t n, store_rows_fn done,
                  void *arg)
{
    char msg[256];
    for (size_t i = 0; i < n; i++) {
        if (stmts[i] == NULL) { /* out of memory building one: drop the batch */
            for (size_t j = 0; j < n; j++)
                free(stmts[j]);
            free(stmts);
            if (done != NULL)
                done(ORCH_ERR_NOMEM, "out of memory", NULL, 0, arg);
            return;
        }
    }
    if (store_submit_batch(m->d.st, what, stmts, n, done, arg, msg, sizeof(msg)) != ORCH_OK) {
        orch_warn(what, "not recorded: %s", msg);
        if (done != NULL)
            done(ORCH_ERR_CLOSED, msg, NULL, 0, arg);
    }
}

static char **stmts_new(size_t n)
{
    return calloc(n, sizeof(char *));
}

static void note_rows_failure(orch_err result, const char *message, json_t *rows, uint64_t affected,
                              void *arg)
{
    if (result != ORCH_OK)
        orch_warn((const char *)arg, "backend record failed: %s", message);
    json_decref(rows);
}

/* The durable fence of a dead master: sent by every leader when its agent reports. */
static char *pending_fence_stmt(const recovery *r)
{
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "INSERT INTO pending_fence (hostname, port, recovery_uid, epoch, "
                      "recorded_at) VALUES (");
    store_sql_string(&b, r->failed.host);
    orch_sbuf_fmt(&b, ", %u, ", r->failed.port);
    store_sql_string(&b, r->uid);
    orch_sbuf_fmt(&b,
                  ", %llu, NOW(6)) ON DUPLICATE KEY UPDATE recovery_uid = "
                  "VALUES(recovery_uid), epoch = VALUES(epoch), recorded_at = NOW(6)",
                  (unsigned long long)r->epoch);
    return stmt_done(&b);
}

/* Fire and forget: the durable fence of old master k is no longer needed. */
static void drop_pending_fence(recovery_mgr *m, const orch_key *k)
{
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "DELETE FROM pending_fence WHERE hostname = ");
    store_sql_string(&b, k->host);
    orch_sbuf_fmt(&b, " AND port = %u", k->port);
    char **s = stmts_new(1);
    if (s != NULL) {
        s[0] = stmt_done(&b);
        batch(m, "pending fence", s, 1, note_rows_failure, (void *)"pending fence");
    }
}

bool recovery_cluster_selected(const recovery_mgr *m, const char *cluster, const char *alias)
{
    const orch_strlist *f = m->c.recover_clusters;
    if (f == NULL)
        return false;
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->v[i], "*") == 0 || strcasecmp(f->v[i], cluster) == 0 ||
            (alias != NULL && strcasecmp(f->v[i], alias) == 0))
            return true;
    }
    return false;
}

static bool recoveries_disabled(recovery_mgr *m)
{
    char v[16];
    return store_get_setting(m->d.st, "recoveries_disabled", v, sizeof(v)) && strcmp(v, "1") == 0;
}

static recovery *active_for(recovery_mgr *m, const char *cluster)
{
    for (recovery *r = m->active; r != NULL; r = r->next) {
        if (strcmp(r->cluster, cluster) == 0)
            return r;
    }
    return NULL;
}

typedef struct incident {
    uint64_t run;   /* the last analysis that showed it */
    bool attempted; /* an automatic recovery was started for it */
} incident;

/* The incident of instance|code, stamped with this analysis (created when new,
 * *fresh then true); NULL when out of memory. */
static incident *incident_of(recovery_mgr *m, const char *instance, const char *code, bool *fresh)
{
    char k[ORCH_KEY_STRLEN + 64];
    snprintf(k, sizeof(k), "%s|%s", instance, code);
    incident *in = orch_hmap_get(&m->incidents, k);
    *fresh = in == NULL;
    if (in == NULL) {
        in = calloc(1, sizeof(*in));
        if (in == NULL || orch_hmap_put(&m->incidents, k, in, NULL) != ORCH_OK) {
            free(in);
            return NULL;
        }
    }
    in->run = m->run;
    return in;
}

/* Drops the incidents this analysis did not show (all of them when all is set). */
static void incidents_prune(recovery_mgr *m, bool all)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (orch_hmap_next(&m->incidents, &it, &k, &v)) {
        if (all || ((incident *)v)->run != m->run) {
            char key[ORCH_KEY_STRLEN + 64];
            snprintf(key, sizeof(key), "%s", k); /* del frees the map's copy */
            orch_hmap_del(&m->incidents, key);
            free(v);
        }
    }
}

static Orch__InstanceReport *copy_report(const Orch__InstanceReport *r)
{
    size_t len = orch__instance_report__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    orch__instance_report__pack(r, buf);
    Orch__InstanceReport *c = orch__instance_report__unpack(NULL, len, buf);
    free(buf);
    return c;
}

/* ---- the record of a recovery -------------------------------------------- */

/* Records a step (queued in order, not waited for) and logs it. */
static void step(recovery *r, orch_log_level level, const char *tag, const char *name,
                 const char *fmt, ...) ORCH_PRINTF(5, 6);

static void step(recovery *r, orch_log_level level, const char *tag, const char *name,
                 const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    int64_t ms = orch_mono_ms() - r->started_ms;
    orch_log(level, tag, r->cluster, "[%s +%lldms] %s", r->uid, (long long)ms, text);
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "INSERT INTO recovery_step (uid, seq, at, step, message) VALUES (");
    store_sql_string(&b, r->uid);
    orch_sbuf_fmt(&b, ", %u, NOW(6), ", ++r->seq);
    store_sql_string(&b, name);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, text);
    orch_sbuf_str(&b, ")");
    char **s = stmts_new(1);
    if (s == NULL)
        return;
    s[0] = stmt_done(&b);
    batch(r->m, "recovery step", s, 1, note_rows_failure, (void *)"recovery step");
}

static void advance(recovery *r);
static void finish(recovery *r);

/*
 * A recovery whose node no longer leads stops where it is, records nothing and
 * sends nothing more: the next leader marks it interrupted and takes it over.
 * In particular a failure seen after leadership was lost (a command of the old
 * epoch that timed out while this node was frozen) is not recorded: a
 * "failed" record would overwrite the successor's "interrupted", block the
 * cluster (anti-flap), and run post_unsuccessful_failover hooks for a recovery
 * another leader is completing. True when it abandoned (ph is PH_DONE).
 */
static bool abandon_unless_leading(recovery *r, const char *why)
{
    if (r->ph == PH_DONE || r->ph == PH_RECORD_END || r->ph == PH_POST_HOOKS || leading(r->m))
        return false;
    orch_log(ORCH_LOG_WARN, "ORCH-FAILOVER-ABANDONED", r->cluster,
             "[%s] this node no longer leads: stopping%s%s; the next leader takes the recovery "
             "over",
             r->uid, why[0] ? " without recording: " : "", why);
    snprintf(r->error, sizeof(r->error), "leadership lost");
    r->step_failed = false;
    r->ph = PH_DONE;
    return true;
}

static void fail(recovery *r, const char *fmt, ...) ORCH_PRINTF(2, 3);

static void fail(recovery *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    if (abandon_unless_leading(r, r->error)) {
        advance(r);
        return;
    }
    step(r, ORCH_LOG_ERROR, "ORCH-FAILOVER-FAILED", "failed", "%s", r->error);
    /* Before promotion nothing irreversible happened: let replicas resume,
     * and the old master keep its place should it return. */
    if (!r->promoted && !r->intermediate)
        drop_pending_fence(r->m, &r->failed);
    if (!r->promoted) {
        for (size_t i = 0; i < r->nparts; i++) {
            if (!r->parts[i].fresh)
                continue;
            Orch__Command c = ORCH__COMMAND__INIT;
            c.type = ORCH__COMMAND_TYPE__CMD_START_REPLICA;
            commander_cmd req = {.host = r->parts[i].key.host,
                                 .url = r->parts[i].url,
                                 .epoch = r->epoch,
                                 .cmd = &c,
                                 .timeout_ms = r->m->c.command_timeout_ms};
            uint64_t id;
            char msg[128];
            if (commander_submit(r->m->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK)
                orch_warn(r->parts[i].name, "cannot restart replication: %s", msg);
        }
    }
    r->ph = PH_RECORD_END;
    advance(r);
}

/* ---- commands -------------------------------------------------------------- */

typedef struct reply_ctx {
    recovery *r;
    size_t part; /* index, or SIZE_MAX for the failed master */
    Orch__CommandType type;
    phase ph; /* the phase that sent it (the recovery may have moved on) */
} reply_ctx;

static void on_reply(commander_reply *rep, void *arg);

/* Sends c to part i (SIZE_MAX: the failed master) and counts it pending. */
static void send_cmd(recovery *r, size_t i, Orch__Command *c, int64_t timeout_ms)
{
    const char *host = i == SIZE_MAX ? r->failed.host : r->parts[i].key.host;
    const char *url = i == SIZE_MAX ? r->failed_url : r->parts[i].url;
    reply_ctx *ctx = malloc(sizeof(*ctx));
    char msg[256];
    if (ctx == NULL || url[0] == '\0') {
        free(ctx);
        r->step_failed = true;
        snprintf(r->step_error, sizeof(r->step_error), "%s: %s",
                 i == SIZE_MAX ? r->failed_name : r->parts[i].name,
                 url[0] == '\0' ? "its agent announced no command address" : "out of memory");
        return;
    }
    *ctx = (reply_ctx){.r = r, .part = i, .type = c->type, .ph = r->ph};
    commander_cmd req = {.host = host,
                         .url = url,
                         .epoch = r->epoch,
                         .cmd = c,
                         .timeout_ms = timeout_ms > 0 ? timeout_ms : r->m->c.command_timeout_ms,
                         .done = on_reply,
                         .arg = ctx};
    uint64_t id;
    if (commander_submit(r->m->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK) {
        free(ctx);
        r->step_failed = true;
        snprintf(r->step_error, sizeof(r->step_error), "%s: not sent: %.300s",
                 i == SIZE_MAX ? r->failed_name : r->parts[i].name, msg);
        return;
    }
    r->pending++;
}

static bool reply_ok(const commander_reply *rep)
{
    return rep->status == COMMANDER_REPLIED && rep->result == ORCH__COMMAND_RESULT__RESULT_OK;
}

/* The set a part received (MariaDB Gtid_IO_Pos / MySQL Retrieved_Gtid_Set) and executed. */
static void part_sets(part *p, const Orch__InstanceReport *st)
{
    const Orch__ServerStatus *s = st ? st->server : NULL;
    const Orch__Channel *ch = registry_defining_channel(st);
    if (s == NULL)
        return;
    bool mysql =
        s->flavor == ORCH__FLAVOR__FLAVOR_MYSQL || s->flavor == ORCH__FLAVOR__FLAVOR_PERCONA;
    orch_gtid_flavor fl = mysql ? ORCH_GTID_MYSQL : ORCH_GTID_MARIADB;
    const char *exec = mysql ? s->gtid_executed : s->gtid_current_pos;
    const char *recv = ch ? ch->retrieved_gtid_set : NULL;
    char msg[128];
    if (orch_gtid_set_parse(fl, exec ? exec : "", &p->executed, msg, sizeof(msg)) != ORCH_OK)
        p->executed = NULL;
    if (recv != NULL && orch_gtid_set_parse(fl, recv, &p->received, msg, sizeof(msg)) != ORCH_OK)
        p->received = NULL;
    if (orch_version_parse(s->version ? s->version : "", s->version_comment, &p->version, msg,
                           sizeof(msg)) != ORCH_OK)
        memset(&p->version, 0, sizeof(p->version));
}

static void on_reply(commander_reply *rep, void *arg)
{
    reply_ctx *ctx = arg;
    recovery *r = ctx->r;
    char what[600];
    commander_describe_reply(rep, what, sizeof(what));
    const char *who = ctx->part == SIZE_MAX ? r->failed_name : r->parts[ctx->part].name;
    bool ok = reply_ok(rep);

    switch (ctx->ph) {
    case PH_FREEZE: {
        part *p = &r->parts[ctx->part];
        if (ok && rep->state != NULL && rep->state->state == ORCH__PROBE_STATE__PROBE_UP) {
            p->state = rep->state;
            rep->state = NULL;
            p->fresh = true;
            part_sets(p, p->state);
        } else {
            step(r, ORCH_LOG_WARN, "ORCH-FAILOVER-STEP", "freeze",
                 "%s could not be frozen (%s): it takes no part", who, what);
        }
        break;
    }
    case PH_FENCE:
        if (ok) {
            step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-FENCED", "fence",
                 "old master %s fenced: read_only and client connections killed", who);
            drop_pending_fence(r->m, &r->failed);
        } else if (rep->status == COMMANDER_REPLIED &&
                   rep->result == ORCH__COMMAND_RESULT__RESULT_DEFERRED) {
            step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-FENCED", "fence",
                 "old master %s: its agent recorded the fence and applies it when the server "
                 "answers",
                 who);
            drop_pending_fence(r->m, &r->failed);
        } else {
            step(r, ORCH_LOG_WARN, "ORCH-FAILOVER-FENCED", "fence",
                 "old master %s: agent unreachable (%s); fence recorded, sent when it reports", who,
                 what);
            /* recorded in the backend (again: the row is written with the
             * successor): every leader retries when the agent is heard */
            char **s = stmts_new(1);
            if (s != NULL) {
                s[0] = pending_fence_stmt(r);
                batch(r->m, "pending fence", s, 1, note_rows_failure, (void *)"pending fence");
            }
            recovery_mgr *m = r->m;
            pending_fence *f = realloc(m->fences, (m->nfences + 1) * sizeof(*f));
            if (f != NULL) {
                m->fences = f;
                f[m->nfences] = (pending_fence){.key = r->failed};
                snprintf(f[m->nfences].uid, sizeof(f[0].uid), "%s", r->uid);
                m->nfences++;
            }
        }
        break;
    case PH_REPOINT:
        if (ok)
            step(r, ORCH_LOG_INFO, "ORCH-FAILOVER-REPOINTED", "repoint",
                 "%s now replicates from %s", who, r->repoint_to);
        else
            step(r, ORCH_LOG_WARN, "ORCH-FAILOVER-REPOINTED", "repoint",
                 "%s could not be repointed (%s): reported lost", who, what);
        if (!ok) {
            size_t len = strlen(r->lost);
            snprintf(r->lost + len, sizeof(r->lost) - len, "%s%s", len ? "," : "", who);
        }
        break;
    default:
        if (!ok && !r->step_failed) {
            r->step_failed = true;
            snprintf(r->step_error, sizeof(r->step_error), "%s on %s: %.600s",
                     commander_type_name(ctx->type), who, what);
        }
        /* SetReadOnly(off) answers OK only after the agent read read_only back as
         * OFF from the server: a failure to clear it fails the recovery above. */
        break;
    }
    free(ctx);
    if (--r->pending == 0)
        advance(r);
}

/* ---- phases ------------------------------------------------------------------- */

static void wait_cmd(recovery *r, size_t i, const char *gtid_set)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    c.type = ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID;
    c.gtid_set = (char *)gtid_set;
    c.has_timeout_ms = true;
    c.timeout_ms = (uint32_t)r->m->c.wait_gtid_timeout_ms;
    send_cmd(r, i, &c, r->m->c.wait_gtid_timeout_ms + r->m->c.command_timeout_ms);
}

static void change_master_cmd(recovery *r, size_t i, const orch_key *to)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    c.type = ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER;
    c.master_host = (char *)to->host;
    c.has_master_port = true;
    c.master_port = to->port;
    c.has_gtid_mode = true;
    c.gtid_mode = ORCH__GTID_MODE__GTID_MODE_SLAVE_POS;
    c.has_start_replica = true;
    c.start_replica = true;
    send_cmd(r, i, &c, 0);
}

static void choose(recovery *r)
{
    size_t n = r->nparts;
    candidate_input *in = calloc(n ? n : 1, sizeof(*in));
    if (in == NULL) {
        fail(r, "out of memory choosing a candidate");
        return;
    }
    int64_t wall = orch_wall_ms();
    for (size_t i = 0; i < n; i++) {
        part *p = &r->parts[i];
        const Orch__InstanceReport *st = p->state ? p->state : p->before;
        const Orch__ServerStatus *s = st ? st->server : NULL;
        const Orch__ServerStatus *sb = p->before ? p->before->server : NULL;
        const Orch__Channel *ch0 = registry_defining_channel(p->before);
        reg_instance *ri = registry_get(r->m->d.reg, &p->key);
        in[i].key = p->name;
        in[i].version = p->version;
        in[i].log_bin = s && s->log_bin;
        in[i].log_slave_updates = s && s->log_slave_updates;
        in[i].received = p->received;
        in[i].executed = p->executed;
        in[i].errant = p->errant;
        in[i].rule = ri ? candidate_rule_of(reg_instance_promotion_rule(ri)) : CANDIDATE_NEUTRAL;
        in[i].dc = p->before ? p->before->data_center : NULL;
        in[i].region = p->before ? p->before->region : NULL;
        in[i].lag_known = ch0 && ch0->has_seconds_behind_master;
        in[i].lag_s = ch0 ? ch0->seconds_behind_master : 0;
        in[i].downtimed = ri && ri->op.downtime_until_ms > wall;
        in[i].maintenance = ri && ri->op.maintenance_until_ms > wall;
        in[i].fresh = p->fresh && p->executed != NULL;
        in[i].semi_sync_enabled = sb && sb->semi_sync_slave_enabled;
        in[i].semi_sync_status = sb && sb->semi_sync_slave_status;
        in[i].sql_delay_s = ch0 ? ch0->sql_delay : 0;
    }
    candidate_params params = {.master_dc = r->master_dc[0] ? r->master_dc : NULL,
                               .master_region = r->master_region[0] ? r->master_region : NULL,
                               .force = r->force,
                               .designated = r->designated[0] ? r->designated : NULL};
    orch_err err = candidate_choose(in, n, &params, &r->cr);
    free(in);
    if (err != ORCH_OK) {
        fail(r, "candidate choice failed: %s", orch_strerror(err));
        return;
    }
    r->have_cr = true;
    for (size_t k = 0; k < r->cr.n_ranking; k++)
        step(r, ORCH_LOG_INFO, "ORCH-FAILOVER-RANKING", "rank", "%s: %s",
             r->parts[r->cr.ranking[k].index].name, r->cr.ranking[k].why);
    if (r->cr.refused) {
        fail(r, "no candidate: %s", r->cr.reason);
        return;
    }
    r->chosen = r->cr.chosen;
    r->source = r->cr.catch_up_from;
    char *t = r->cr.target ? orch_gtid_set_format(r->cr.target) : NULL;
    snprintf(r->target, sizeof(r->target), "%s", t ? t : "");
    free(t);
    const char *why = "";
    for (size_t k = 0; k < r->cr.n_ranking; k++)
        if (r->cr.ranking[k].index == r->chosen)
            why = r->cr.ranking[k].why;
    step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-CHOSEN", "choose", "new master: %s (%s%s)%s%s%s%s",
         r->parts[r->chosen].name, why, r->designated[0] ? "; designated by the operator" : "",
         r->source != CANDIDATE_NONE ? "; first catches up from " : "",
         r->source != CANDIDATE_NONE ? r->parts[r->source].name : "",
         r->cr.forced_past[0] ? "; forced past: " : "", r->cr.forced_past);
}

/* ---- the lock -------------------------------------------------------------------- */

static void on_lock_written(orch_err result, const char *message, json_t *rows, uint64_t affected,
                            void *arg)
{
    recovery *r = arg;
    const char *holder = NULL;
    r->pending--;
    if (result == ORCH_OK && json_array_size(rows) == 1)
        holder = json_string_value(json_object_get(json_array_get(rows, 0), "uid"));
    if (result != ORCH_OK) {
        snprintf(r->error, sizeof(r->error), "cannot take the recovery lock: %s", message);
        orch_log(ORCH_LOG_ERROR, "ORCH-FAILOVER-FAILED", r->cluster, "%s", r->error);
        r->ph = PH_DONE;
    } else if (holder == NULL || strcmp(holder, r->uid) != 0) {
        snprintf(r->error, sizeof(r->error), "recovery %s holds the cluster's lock",
                 holder ? holder : "?");
        orch_log(ORCH_LOG_WARN, "ORCH-FAILOVER-SKIPPED", r->cluster, "%s", r->error);
        r->ph = PH_DONE;
    } else {
        step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-START", "lock",
             "%s of %s (%s)%s%s: recovery %s by %s at epoch %llu", r->analysis, r->failed_name,
             r->description ? r->description : "", r->manual ? "; requested: " : "",
             r->manual ? r->reason : "", r->uid, r->m->c.node, (unsigned long long)r->epoch);
        r->ph = PH_PRE_HOOKS;
    }
    json_decref(rows);
    advance(r);
}

static void on_lock_read(orch_err result, const char *message, json_t *rows, uint64_t affected,
                         void *arg)
{
    recovery *r = arg;
    json_t *row = json_array_get(rows, 0);
    r->pending--;
    const char *blocked = json_string_value(json_object_get(row, "blocked_by"));
    const char *resume = json_string_value(json_object_get(row, "resume_successor"));
    if (result != ORCH_OK) {
        snprintf(r->error, sizeof(r->error), "cannot read the recovery lock: %s", message);
        orch_log(ORCH_LOG_ERROR, "ORCH-FAILOVER-FAILED", r->cluster, "%s", r->error);
        r->ph = PH_DONE;
    } else if (blocked != NULL && !r->manual) {
        r->m->stats.blocked++;
        snprintf(r->error, sizeof(r->error),
                 "blocked: recovery %s ended less than %lld s ago and is not acknowledged "
                 "(orchctl ack-cluster-recoveries -a %s)",
                 blocked, (long long)r->m->c.block_seconds, r->cluster);
        orch_log(ORCH_LOG_WARN, "ORCH-FAILOVER-BLOCKED", r->cluster, "%s", r->error);
        r->ph = PH_DONE;
    } else {
        if (resume != NULL && resume[0] != '\0') {
            snprintf(r->resume_successor, sizeof(r->resume_successor), "%s", resume);
            orch_log(ORCH_LOG_NOTICE, "ORCH-FAILOVER-RESUME", r->cluster,
                     "an interrupted recovery had chosen %s: promoting the same one", resume);
        }
        r->ph = PH_LOCK_WRITE;
    }
    json_decref(rows);
    advance(r);
}

static void lock_read(recovery *r)
{
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "SELECT (SELECT CONCAT(x.successor_host, ':', x.successor_port) FROM "
                      "recovery x JOIN recovery_lock l ON l.uid = x.uid WHERE l.cluster = ");
    store_sql_string(&b, r->cluster);
    /* only an interrupted recovery of this same failed master is resumed */
    orch_sbuf_fmt(&b, " AND l.epoch < %llu AND x.successor_host <> '' AND x.failed_host = ",
                  (unsigned long long)r->epoch);
    store_sql_string(&b, r->failed.host);
    orch_sbuf_fmt(&b,
                  " AND x.failed_port = %u) AS resume_successor, "
                  "(SELECT uid FROM recovery WHERE (cluster = ",
                  r->failed.port);
    store_sql_string(&b, r->cluster);
    /* A cluster is named after its master: after a failover it carries the
     * successor's name, and the block must follow it there. */
    orch_sbuf_str(&b, " OR CONCAT(IF(LOCATE(':', successor_host) > 0, CONCAT('[', successor_host, "
                      "']'), successor_host), ':', successor_port) = ");
    store_sql_string(&b, r->cluster);
    orch_sbuf_fmt(
        &b,
        ") AND state IN ('succeeded', 'failed', 'refused') AND acknowledged = 0 AND ended_at > "
        "NOW(6) - INTERVAL %lld SECOND ORDER BY ended_at DESC LIMIT 1) AS blocked_by",
        (long long)r->m->c.block_seconds);
    char **s = stmts_new(1);
    if (s == NULL) {
        fail(r, "out of memory");
        return;
    }
    s[0] = stmt_done(&b);
    r->pending++;
    batch(r->m, "recovery lock", s, 1, on_lock_read, r);
}

static void lock_write(recovery *r)
{
    char **s = stmts_new(4);
    orch_sbuf b = {0};
    if (s == NULL) {
        fail(r, "out of memory");
        return;
    }
    unsigned long long e = (unsigned long long)r->epoch;
    /* a lock of a lower epoch belonged to a deposed leader: taken over */
    orch_sbuf_str(&b,
                  "INSERT INTO recovery_lock (cluster, uid, node, epoch, acquired_at) VALUES (");
    store_sql_string(&b, r->cluster);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->uid);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->m->c.node);
    orch_sbuf_fmt(&b,
                  ", %llu, NOW(6)) ON DUPLICATE KEY UPDATE uid = IF(epoch < VALUES(epoch), "
                  "VALUES(uid), uid), node = IF(epoch < VALUES(epoch), VALUES(node), node), "
                  "acquired_at = IF(epoch < VALUES(epoch), VALUES(acquired_at), acquired_at), "
                  "epoch = GREATEST(epoch, VALUES(epoch))",
                  e);
    s[0] = stmt_done(&b);
    orch_sbuf_str(&b,
                  "UPDATE recovery SET state = 'interrupted', ended_at = NOW(6) WHERE cluster = ");
    store_sql_string(&b, r->cluster);
    orch_sbuf_fmt(&b, " AND state = 'running' AND epoch < %llu", e);
    s[1] = stmt_done(&b);
    orch_sbuf_str(&b,
                  "INSERT INTO recovery (uid, cluster, cluster_alias, failed_host, failed_port, "
                  "analysis, description, state, node, epoch, started_at) SELECT ");
    store_sql_string(&b, r->uid);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->cluster);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->alias);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->failed.host);
    orch_sbuf_fmt(&b, ", %u, ", r->failed.port);
    store_sql_string(&b, r->analysis);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->description ? r->description : "");
    orch_sbuf_str(&b, ", 'running', ");
    store_sql_string(&b, r->m->c.node);
    orch_sbuf_fmt(
        &b, ", %llu, NOW(6) FROM DUAL WHERE (SELECT uid FROM recovery_lock WHERE cluster = ", e);
    store_sql_string(&b, r->cluster);
    orch_sbuf_str(&b, ") = ");
    store_sql_string(&b, r->uid);
    s[2] = stmt_done(&b);
    orch_sbuf_str(&b, "SELECT uid FROM recovery_lock WHERE cluster = ");
    store_sql_string(&b, r->cluster);
    s[3] = stmt_done(&b);
    r->pending++;
    batch(r->m, "recovery lock", s, 4, on_lock_written, r);
}

static void on_successor_recorded(orch_err result, const char *message, json_t *rows,
                                  uint64_t affected, void *arg)
{
    recovery *r = arg;
    json_decref(rows);
    r->pending--;
    if (result != ORCH_OK) {
        fail(r,
             "cannot record the chosen successor (%s): not promoting without a record a "
             "successor leader could follow",
             message);
        return;
    }
    /* an adopted successor applied its relay log and was reset already */
    r->ph = r->adopted ? PH_PROMOTE_WRITABLE : PH_CANDIDATE_APPLY;
    advance(r);
}

/*
 * Records the successor and, for a dead master, its fence, in one batch before
 * anything irreversible: a leader that dies between the promotion and the
 * fence leaves the fence to the next leader (sent when the old master's agent
 * reports), and a resumed recovery promotes the same successor. A recovery
 * that fails before promoting drops the fence again.
 */
static void record_successor(recovery *r)
{
    const part *c = &r->parts[r->chosen];
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "UPDATE recovery SET successor_host = ");
    store_sql_string(&b, c->key.host);
    orch_sbuf_fmt(&b, ", successor_port = %u WHERE uid = ", c->key.port);
    store_sql_string(&b, r->uid);
    size_t n = r->intermediate ? 1 : 2;
    char **s = stmts_new(n);
    if (s == NULL) {
        orch_sbuf_fini(&b);
        fail(r, "out of memory");
        return;
    }
    s[0] = stmt_done(&b);
    if (n == 2)
        s[1] = pending_fence_stmt(r);
    r->pending++;
    batch(r->m, "recovery successor", s, n, on_successor_recorded, r);
}

/* ---- hooks ------------------------------------------------------------------------- */

static void hook_vars_of(const recovery *r, hook_vars *v, char *lost, size_t lostlen)
{
    snprintf(lost, lostlen, "%s", r->lost);
    /* r->chosen is set by a fresh choice and by a resumed one (no ranking then) */
    const part *c =
        r->chosen != CANDIDATE_NONE && r->chosen < r->nparts ? &r->parts[r->chosen] : NULL;
    *v = (hook_vars){.failure_type = r->analysis,
                     .failure_description = r->description,
                     .failed_host = r->failed.host,
                     .failed_port = r->failed.port,
                     .cluster = r->cluster,
                     .cluster_alias = r->alias,
                     .successor_host = c && r->promoted ? c->key.host : NULL,
                     .successor_port = c && r->promoted ? c->key.port : 0,
                     .lost_replicas = lost,
                     .count_replicas = (int)r->nparts,
                     .recovery_uid = r->uid,
                     .is_successful = r->succeeded,
                     .orch_host = r->m->c.node,
                     .command = !r->manual                 ? "automated"
                                : !r->force                ? "recover"
                                : r->designated[0] != '\0' ? "force-master-takeover"
                                                           : "force-master-failover",
                     .reason = r->reason};
}

static void on_pre_hooks(const hook_result *res, void *arg)
{
    recovery *r = arg;
    r->pending--;
    if (!res->ok) {
        fail(r, "pre_failover hook failed: %s", res->error);
        return;
    }
    if (res->ran > 0)
        step(r, ORCH_LOG_INFO, "ORCH-FAILOVER-STEP", "hooks", "%zu pre-failover hook(s) ok",
             res->ran);
    r->ph = PH_FREEZE;
    advance(r);
}

static void run_hooks(recovery *r, const char *event, const orch_strlist *cmds, hooks_done_fn done)
{
    hook_vars v;
    char lost[2048];
    hook_vars_of(r, &v, lost, sizeof(lost));
    r->pending++;
    if (hooks_run(r->m->d.hk, event, cmds ? (const char *const *)cmds->v : NULL, cmds ? cmds->n : 0,
                  &v, r->m->c.hook_timeout_ms, done, r) != ORCH_OK) {
        r->pending--;
        hook_result res = {.ok = false};
        snprintf(res.error, sizeof(res.error), "%s: cannot run hooks", event);
        if (done != NULL)
            done(&res, r);
    }
}

static void on_post_hooks(const hook_result *res, void *arg)
{
    recovery *r = arg;
    r->pending--;
    r->ph = PH_DONE;
    advance(r);
}

/* ---- the state machine --------------------------------------------------------------- */

static bool answering(const reg_instance *i, int64_t now, int64_t stale_after_ms);

/*
 * Resuming: the interrupted recovery's successor is no longer a replica of the
 * failed master, so not a part. If it answers and replicates from nobody, the
 * interrupted recovery had already promoted it (its replication was reset only
 * after it applied what it received): it becomes the chosen part, and this
 * recovery completes that one (writable, the others repointed to it, the old
 * master fenced) instead of refusing and leaving the others on a dead master.
 * True when adopted.
 */
static bool adopt_promoted_successor(recovery *r)
{
    orch_key k;
    char msg[128];
    if (orch_key_parse(r->resume_successor, 3306, &k, msg, sizeof(msg)) != ORCH_OK)
        return false;
    registry_refresh(r->m->d.reg);
    const reg_instance *in = registry_get(r->m->d.reg, &k);
    if (in == NULL || in->has_master || in->report->command_listen == NULL ||
        in->report->command_listen[0] == '\0' ||
        !answering(in, orch_mono_ms(), r->m->c.analysis.stale_after_ms))
        return false;
    part *v = realloc(r->parts, (r->nparts + 1) * sizeof(*v));
    if (v == NULL)
        return false;
    r->parts = v;
    part *p = &r->parts[r->nparts];
    memset(p, 0, sizeof(*p));
    p->key = in->key;
    snprintf(p->name, sizeof(p->name), "%s", in->name);
    snprintf(p->url, sizeof(p->url), "%s", in->report->command_listen);
    p->before = copy_report(in->report);
    p->fresh = true;
    r->chosen = r->nparts++;
    return true;
}

/*
 * What part i received from the dead master (MariaDB Gtid_IO_Pos, MySQL
 * Retrieved_Gtid_Set): what it must apply before promotion. Not united with its
 * executed set: a transaction written locally (errant) was never received, and
 * waiting for it would wait forever. "" when unknown (nothing to wait for).
 */
static const char *received_text(recovery *r, size_t i, char *buf, size_t len)
{
    const part *p = &r->parts[i];
    char *t = p->received ? orch_gtid_set_format(p->received) : NULL;
    snprintf(buf, len, "%s", t ? t : "");
    free(t);
    return buf;
}

/*
 * Runs the current phase. Called when a recovery starts and whenever the
 * pending commands or records of a phase are all answered.
 */
static void recovery_destroy(recovery *r)
{
    for (size_t i = 0; i < r->nparts; i++) {
        orch__instance_report__free_unpacked(r->parts[i].before, NULL);
        orch__instance_report__free_unpacked(r->parts[i].state, NULL);
        orch_gtid_set_free(r->parts[i].received);
        orch_gtid_set_free(r->parts[i].executed);
        orch_gtid_set_free(r->parts[i].errant);
    }
    free(r->parts);
    if (r->have_cr || r->cr.ranking != NULL)
        candidate_result_fini(&r->cr);
    free(r->description);
    free(r);
}

static void advance(recovery *r)
{
    for (;;) {
        if (r->pending > 0)
            return;
        /* also drops a step's failure seen after leadership was lost */
        abandon_unless_leading(r, r->step_failed ? r->step_error : "");
        if (r->step_failed) {
            r->step_failed = false;
            fail(r, "%s", r->step_error);
            return;
        }
        switch (r->ph) {
        case PH_LOCK_READ:
            lock_read(r);
            break;
        case PH_LOCK_WRITE:
            lock_write(r);
            break;
        case PH_PRE_HOOKS:
            run_hooks(r, "pre_failover", r->m->c.pre_failover, on_pre_hooks);
            break;
        case PH_FREEZE: {
            if (r->intermediate) {
                /* A dead intermediate master: its replicas move up a level. */
                r->ph = PH_REPOINT;
                continue;
            }
            Orch__Command c = ORCH__COMMAND__INIT;
            c.type = ORCH__COMMAND_TYPE__CMD_STOP_REPLICA;
            c.has_io_thread_only = true;
            c.io_thread_only = true;
            /* A semi-sync replica of a hung master takes 2 s to stop its IO
             * thread (measured on MariaDB 10.11): the freeze gets headroom. */
            for (size_t i = 0; i < r->nparts; i++)
                send_cmd(r, i, &c, r->m->c.command_timeout_ms + FREEZE_EXTRA_MS);
            r->step_failed = false; /* a part not reachable simply takes no part */
            r->ph = PH_CHOOSE;
            if (r->pending == 0)
                continue;
            break;
        }
        case PH_CHOOSE: {
            size_t fresh = 0;
            for (size_t i = 0; i < r->nparts; i++)
                fresh += r->parts[i].fresh;
            step(r, ORCH_LOG_INFO, "ORCH-FAILOVER-STEP", "freeze",
                 "%zu of %zu replica(s) frozen (IO threads stopped)", fresh, r->nparts);
            if (r->resume_successor[0]) {
                /* an interrupted recovery recorded its successor: promote the same one */
                for (size_t i = 0; i < r->nparts && r->chosen == CANDIDATE_NONE; i++) {
                    if (strcmp(r->parts[i].name, r->resume_successor) == 0 && r->parts[i].fresh)
                        r->chosen = i;
                }
                if (r->chosen == CANDIDATE_NONE && adopt_promoted_successor(r)) {
                    step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-CHOSEN", "choose",
                         "new master: %s (recorded and already promoted by the interrupted "
                         "recovery: completing it)",
                         r->parts[r->chosen].name);
                    r->adopted = true; /* recorded, then made writable (again: idempotent) */
                    r->ph = PH_RECORD_SUCCESSOR;
                    continue;
                }
                if (r->chosen == CANDIDATE_NONE) {
                    fail(r,
                         "the interrupted recovery's successor %s cannot be reached; "
                         "refusing to choose another (a human decides)",
                         r->resume_successor);
                    return;
                }
                step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-CHOSEN", "choose",
                     "new master: %s (recorded by the interrupted recovery)",
                     r->parts[r->chosen].name);
                r->ph = PH_RECORD_SUCCESSOR;
                continue;
            }
            choose(r);
            if (r->ph == PH_RECORD_END || r->ph == PH_DONE)
                return; /* failed */
            r->ph = r->source != CANDIDATE_NONE ? PH_SOURCE_APPLY : PH_RECORD_SUCCESSOR;
            continue;
        }
        case PH_SOURCE_APPLY:
            /* the source serves from its binary log: it applies its relay log first */
            step(r, ORCH_LOG_INFO, "ORCH-FAILOVER-STEP", "catch-up",
                 "%s applies what it received, then %s catches up from it",
                 r->parts[r->source].name, r->parts[r->chosen].name);
            wait_cmd(r, r->source, r->target);
            r->ph = PH_CATCHUP_REPOINT;
            if (r->pending == 0)
                continue; /* not sent: step_failed says why */
            break;
        case PH_CATCHUP_REPOINT:
            change_master_cmd(r, r->chosen, &r->parts[r->source].key);
            r->ph = PH_CATCHUP_WAIT;
            if (r->pending == 0)
                continue;
            break;
        case PH_CATCHUP_WAIT:
            wait_cmd(r, r->chosen, r->target);
            r->ph = PH_RECORD_SUCCESSOR;
            if (r->pending == 0)
                continue;
            break;
        case PH_RECORD_SUCCESSOR:
            record_successor(r);
            return; /* on_successor_recorded moves on */
        case PH_CANDIDATE_APPLY: {
            char set[8192];
            const char *target = r->source != CANDIDATE_NONE
                                     ? r->target
                                     : received_text(r, r->chosen, set, sizeof(set));
            snprintf(r->chosen_received, sizeof(r->chosen_received), "%s", target);
            if (target[0] != '\0')
                wait_cmd(r, r->chosen, r->chosen_received);
            r->ph = PH_PROMOTE_RESET;
            if (r->pending == 0)
                continue;
            break;
        }
        case PH_PROMOTE_RESET: {
            Orch__Command c = ORCH__COMMAND__INIT;
            c.type = ORCH__COMMAND_TYPE__CMD_RESET_REPLICA;
            send_cmd(r, r->chosen, &c, 0);
            r->ph = PH_PROMOTE_WRITABLE;
            if (r->pending == 0)
                continue;
            break;
        }
        case PH_PROMOTE_WRITABLE: {
            Orch__Command c = ORCH__COMMAND__INIT;
            c.type = ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY;
            c.has_read_only = true;
            c.read_only = false;
            send_cmd(r, r->chosen, &c, 0);
            r->promoted = true; /* from here on, no rollback of replication */
            r->ph = PH_REPOINT;
            if (r->pending == 0)
                continue;
            break;
        }
        case PH_REPOINT: {
            if (!r->intermediate)
                step(r, ORCH_LOG_NOTICE, "ORCH-FAILOVER-PROMOTED", "promote",
                     "%s is the new master: applied its relay log, replication reset, writable",
                     r->parts[r->chosen].name);
            const orch_key *to = r->intermediate ? NULL : &r->parts[r->chosen].key;
            orch_key up;
            if (r->intermediate) {
                reg_instance *im = registry_get(r->m->d.reg, &r->failed);
                if (im == NULL || !im->has_master) {
                    fail(r, "the dead intermediate master's own master is not known");
                    return;
                }
                up = im->master_key;
                to = &up;
                r->promoted = true;
            }
            orch_key_format(to, r->repoint_to, sizeof(r->repoint_to));
            for (size_t i = 0; i < r->nparts; i++) {
                bool follows;
                if (r->intermediate) {
                    follows = true; /* up a level: the grandparent has all they had */
                } else if (i == r->chosen) {
                    continue;
                } else if (r->have_cr) {
                    follows = false;
                    for (size_t k = 0; k < r->cr.n_ranking; k++) {
                        if (r->cr.ranking[k].index == i)
                            follows = r->cr.ranking[k].follow == CANDIDATE_FOLLOW_OK;
                    }
                } else {
                    follows = r->parts[i].fresh; /* resumed: the recorded successor */
                }
                if (follows) {
                    change_master_cmd(r, i, to);
                } else {
                    size_t len = strlen(r->lost);
                    snprintf(r->lost + len, sizeof(r->lost) - len, "%s%s", len ? "," : "",
                             r->parts[i].name);
                }
            }
            r->step_failed = false;
            r->ph = PH_FENCE;
            if (r->pending == 0)
                continue;
            break;
        }
        case PH_FENCE: {
            if (r->lost[0] != '\0') {
                step(r, ORCH_LOG_WARN, "ORCH-FAILOVER-LOST", "lost",
                     "replicas that cannot follow (downtimed for %lld s): %s",
                     (long long)r->m->c.lost_downtime_s, r->lost);
                char list[2048];
                snprintf(list, sizeof(list), "%s", r->lost);
                char *save = NULL;
                for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                    store_op op = {.kind = STORE_OP_BEGIN_DOWNTIME,
                                   .owner = "orch",
                                   .reason = "lost in recovery",
                                   .duration_ms = r->m->c.lost_downtime_s * 1000};
                    char msg[128];
                    if (orch_key_parse(t, 3306, &op.key, msg, sizeof(msg)) == ORCH_OK &&
                        store_submit_op(r->m->d.st, &op, NULL, NULL, msg, sizeof(msg)) != ORCH_OK)
                        orch_warn(t, "cannot downtime a lost replica: %s", msg);
                }
            }
            if (r->intermediate) {
                r->succeeded = true;
                r->ph = PH_RECORD_END;
                continue;
            }
            Orch__Command c = ORCH__COMMAND__INIT;
            c.type = ORCH__COMMAND_TYPE__CMD_FENCE;
            c.has_kill_connections = true;
            c.kill_connections = true;
            r->succeeded = true;
            send_cmd(r, SIZE_MAX, &c, 0);
            r->step_failed = false;
            r->ph = PH_RECORD_END;
            if (r->pending == 0)
                continue;
            break;
        }
        case PH_RECORD_END:
            finish(r);
            return;
        case PH_POST_HOOKS:
            run_hooks(r, r->succeeded ? "post_failover" : "post_unsuccessful_failover",
                      r->succeeded ? r->m->c.post_failover : r->m->c.post_unsuccessful_failover,
                      on_post_hooks);
            break;
        case PH_DONE: {
            recovery_mgr *m = r->m;
            recovery **pp = &m->active;
            while (*pp != NULL && *pp != r)
                pp = &(*pp)->next;
            if (*pp == r)
                *pp = r->next;
            if (r->done != NULL)
                r->done(r->done_arg, r->succeeded, r->succeeded ? "recovered" : r->error, r->uid);
            recovery_destroy(r);
            recovery_poke(m);
            return;
        }
        }
        return;
    }
}

static void on_end_recorded(orch_err result, const char *message, json_t *rows, uint64_t affected,
                            void *arg)
{
    recovery *r = arg;
    json_decref(rows);
    r->pending--;
    if (result != ORCH_OK)
        orch_warn(r->cluster, "[%s] the recovery's outcome was not recorded: %s", r->uid, message);
    r->ph = PH_POST_HOOKS;
    advance(r);
}

static void finish(recovery *r)
{
    recovery_mgr *m = r->m;
    int64_t took = orch_mono_ms() - r->started_ms;
    const char *state = r->succeeded                    ? "succeeded"
                        : (r->have_cr && r->cr.refused) ? "refused"
                                                        : "failed";
    if (r->succeeded)
        m->stats.succeeded++;
    else if (r->have_cr && r->cr.refused)
        m->stats.refused++;
    else
        m->stats.failed++;
    const char *successor = r->promoted && !r->intermediate ? r->parts[r->chosen].name : "";
    /* the cluster is named after its master now: its alias follows */
    if (r->succeeded && successor[0] != '\0' && strcmp(r->alias, r->cluster) != 0)
        store_move_cluster_alias(m->d.st, r->alias, successor);
    orch_log(r->succeeded ? ORCH_LOG_NOTICE : ORCH_LOG_ERROR, "ORCH-FAILOVER-END", r->cluster,
             "[%s] %s in %lld ms%s%s%s%s%s%s", r->uid, state, (long long)took,
             successor[0] ? "; new master " : "", successor, r->lost[0] ? "; lost: " : "", r->lost,
             r->error[0] && !r->succeeded ? "; " : "", r->succeeded ? "" : r->error);
    if (m->d.m != NULL) {
        metric_inc(metrics_counter(m->d.m, "orch_recoveries_total", "Recoveries by outcome.",
                                   "result", state, NULL));
        metric_observe(metrics_histogram(m->d.m, "orch_recovery_seconds",
                                         "From the start of a recovery to its end.",
                                         metrics_buckets_recovery_s, metrics_buckets_recovery_s_n,
                                         NULL),
                       took / 1000.0);
    }
    char **s = stmts_new(2);
    orch_sbuf b = {0};
    if (s == NULL) {
        r->ph = PH_POST_HOOKS;
        advance(r);
        return;
    }
    char participants[4096] = "";
    for (size_t i = 0; i < r->nparts; i++) {
        size_t len = strlen(participants);
        snprintf(participants + len, sizeof(participants) - len, "%s%s", i ? "," : "",
                 r->parts[i].name);
    }
    orch_sbuf_str(&b, "UPDATE recovery SET state = ");
    store_sql_string(&b, state);
    orch_sbuf_fmt(
        &b, ", is_successful = %d, ended_at = NOW(6), lost_replicas = ", r->succeeded ? 1 : 0);
    store_sql_string(&b, r->lost);
    orch_sbuf_str(&b, ", participating_replicas = ");
    store_sql_string(&b, participants);
    orch_sbuf_str(&b, ", description = CONCAT(IFNULL(description, ''), ");
    store_sql_string(&b, r->succeeded || r->error[0] == '\0' ? "" : " | ");
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, r->succeeded ? "" : r->error);
    orch_sbuf_str(&b, ") WHERE uid = ");
    store_sql_string(&b, r->uid);
    s[0] = stmt_done(&b);
    orch_sbuf_str(&b, "DELETE FROM recovery_lock WHERE cluster = ");
    store_sql_string(&b, r->cluster);
    orch_sbuf_str(&b, " AND uid = ");
    store_sql_string(&b, r->uid);
    s[1] = stmt_done(&b);
    r->pending++;
    batch(m, "recovery end", s, 2, on_end_recorded, r);
}

/* ---- starting recoveries ------------------------------------------------------------ */

static recovery *recovery_create(recovery_mgr *m, const reg_instance *failed,
                                 const analysis_entry *e, const char *code, bool manual, bool force,
                                 const char *reason)
{
    recovery *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->m = m;
    uint8_t rnd[8];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    snprintf(r->uid, sizeof(r->uid), "%llx-%02x%02x%02x%02x%02x%02x",
             (unsigned long long)orch_wall_ms(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    const reg_cluster *cl = failed->cluster;
    snprintf(r->cluster, sizeof(r->cluster), "%s", cl ? cl->name : failed->name);
    snprintf(r->alias, sizeof(r->alias), "%s", cl && cl->alias ? cl->alias : r->cluster);
    r->failed = failed->key;
    snprintf(r->failed_name, sizeof(r->failed_name), "%s", failed->name);
    snprintf(r->failed_url, sizeof(r->failed_url), "%s",
             failed->report->command_listen ? failed->report->command_listen : "");
    snprintf(r->analysis, sizeof(r->analysis), "%s", code);
    r->description = strdup(e && e->description ? e->description : reason ? reason : "");
    r->manual = manual;
    r->force = force;
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
    r->epoch = election_leader_epoch(m->d.el, orch_mono_ms());
    r->started_ms = orch_mono_ms();
    r->chosen = r->source = CANDIDATE_NONE;
    r->intermediate = e != NULL && analysis_code_is_dead_intermediate_master(e->code);
    snprintf(r->master_dc, sizeof(r->master_dc), "%s",
             failed->report->data_center ? failed->report->data_center : "");
    snprintf(r->master_region, sizeof(r->master_region), "%s",
             failed->report->region ? failed->report->region : "");
    r->parts = calloc(failed->nreplicas ? failed->nreplicas : 1, sizeof(*r->parts));
    if (r->parts == NULL || r->description == NULL) {
        free(r->parts);
        free(r->description);
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < failed->nreplicas && r->nparts < MAX_PARTS; i++) {
        const reg_instance *ri = failed->replicas[i];
        part *p = &r->parts[r->nparts++];
        p->key = ri->key;
        snprintf(p->name, sizeof(p->name), "%s", ri->name);
        snprintf(p->url, sizeof(p->url), "%s",
                 ri->report->command_listen ? ri->report->command_listen : "");
        p->before = copy_report(ri->report);
        const char *errant = m->last ? analysis_result_errant(m->last, &ri->key) : NULL;
        if (errant == NULL)
            errant = orch_hmap_get(&m->errant, ri->name); /* known from before */
        if (errant != NULL && errant[0] != '\0' && p->before && p->before->server) {
            bool mysql = p->before->server->flavor == ORCH__FLAVOR__FLAVOR_MYSQL ||
                         p->before->server->flavor == ORCH__FLAVOR__FLAVOR_PERCONA;
            char msg[64];
            if (orch_gtid_set_parse(mysql ? ORCH_GTID_MYSQL : ORCH_GTID_MARIADB, errant, &p->errant,
                                    msg, sizeof(msg)) != ORCH_OK)
                p->errant = NULL;
        }
        if (r->intermediate)
            p->fresh = true; /* moved up as they are */
    }
    r->next = m->active;
    m->active = r;
    m->stats.started++;
    return r;
}

/* Records a detection (queued, not waited for). */
static void record_detection(recovery_mgr *m, const analysis_cluster *c, const analysis_entry *e)
{
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "INSERT INTO failure_detection (detected_at, cluster, hostname, port, "
                      "analysis, description, node, epoch) VALUES (NOW(6), ");
    store_sql_string(&b, c->name);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, e->key.host);
    orch_sbuf_fmt(&b, ", %u, ", e->key.port);
    store_sql_string(&b, analysis_code_name(e->code));
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, e->description);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, m->c.node);
    orch_sbuf_fmt(&b, ", %llu)",
                  (unsigned long long)election_leader_epoch(m->d.el, orch_mono_ms()));
    char **s = stmts_new(1);
    if (s == NULL)
        return;
    s[0] = stmt_done(&b);
    batch(m, "failure detection", s, 1, note_rows_failure, (void *)"failure detection");
}

typedef struct semi_ctx {
    recovery_mgr *m;
    orch_key key;
    bool on;
    char name[ORCH_KEY_STRLEN];
} semi_ctx;

static void degraded_drop(recovery_mgr *m, size_t i)
{
    m->degraded[i] = m->degraded[--m->ndegraded];
}

static void on_semi_sync(commander_reply *rep, void *arg)
{
    semi_ctx *ctx = arg;
    recovery_mgr *m = ctx->m;
    char what[600];
    commander_describe_reply(rep, what, sizeof(what));
    bool ok = reply_ok(rep);
    orch_log(ok ? ORCH_LOG_NOTICE : ORCH_LOG_ERROR,
             ctx->on ? "ORCH-SEMI-SYNC-RESTORED" : "ORCH-SEMI-SYNC-ASYNC", ctx->name,
             "switching the master %s: %s",
             ctx->on ? "back to semi-sync (its semi-sync replicas are connected again)"
                     : "to asynchronous replication",
             what);
    bool known = false;
    for (size_t i = 0; i < m->ndegraded && !known; i++)
        known = orch_key_equal(&m->degraded[i], &ctx->key);
    if (ok && !ctx->on && !known) {
        if (m->ndegraded < sizeof(m->degraded) / sizeof(m->degraded[0]))
            m->degraded[m->ndegraded++] = ctx->key;
        else
            orch_warn(ctx->name, "semi-sync is not switched back by orch: too many degraded "
                                 "masters; re-enable it by hand");
    }
    free(ctx);
}

/* Switches the master's semi-sync on or off through its agent (fire and forget). */
static void set_semi_sync(recovery_mgr *m, const reg_instance *in, bool on)
{
    semi_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return;
    *ctx = (semi_ctx){.m = m, .key = in->key, .on = on};
    snprintf(ctx->name, sizeof(ctx->name), "%s", in->name);
    Orch__Command c = ORCH__COMMAND__INIT;
    c.type = ORCH__COMMAND_TYPE__CMD_SET_SEMI_SYNC;
    c.has_semi_sync_master = true;
    c.semi_sync_master = on;
    commander_cmd req = {.host = in->key.host,
                         .url = in->report->command_listen,
                         .epoch = election_leader_epoch(m->d.el, orch_mono_ms()),
                         .cmd = &c,
                         .timeout_ms = m->c.command_timeout_ms,
                         .done = on_semi_sync,
                         .arg = ctx};
    uint64_t id;
    char msg[128];
    if (commander_submit(m->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK) {
        orch_log(ORCH_LOG_ERROR, on ? "ORCH-SEMI-SYNC-RESTORED" : "ORCH-SEMI-SYNC-ASYNC", ctx->name,
                 "cannot switch semi-sync %s: %s", on ? "on" : "off", msg);
        free(ctx);
    }
}

/*
 * LockedSemiSyncMaster: the cluster's legitimate master (its agent fresh and
 * UP, no failover in progress) waits for acknowledgements no replica can give,
 * and its commits hang. Only the leader decides to degrade: the master's
 * semi-sync is switched off (DESIGN.md: semi-sync must not degrade by timeout).
 * restore_semi_sync switches it back when its replicas return.
 */
static void unlock_semi_sync(recovery_mgr *m, const analysis_entry *e)
{
    reg_instance *in = registry_get(m->d.reg, &e->key);
    if (in == NULL || in->report->command_listen == NULL || !e->last_check_valid)
        return;
    set_semi_sync(m, in, false);
}

/*
 * A master this leader switched to async gets semi-sync back once at least
 * the wait count of semi-sync replicas is connected to it again (MariaDB
 * counts them in Rpl_semi_sync_master_clients while the master side is off,
 * and acknowledgements resume at once). Forgotten when it is no longer a
 * cluster's top or someone re-enabled it. A leader that takes over does not
 * know what its predecessor degraded: that one stays async for the operator.
 */
static void restore_semi_sync(recovery_mgr *m)
{
    int64_t now = orch_mono_ms();
    for (size_t i = m->ndegraded; i-- > 0;) {
        reg_instance *in = registry_get(m->d.reg, &m->degraded[i]);
        if (in == NULL)
            continue;
        const Orch__ServerStatus *s = in->report->server;
        if (in->depth != 0 || in->has_master) {
            degraded_drop(m, i);
            continue;
        }
        if (reg_instance_is_stale(in, now, m->c.analysis.stale_after_ms) || s == NULL ||
            in->report->state != ORCH__PROBE_STATE__PROBE_UP || in->report->command_listen == NULL)
            continue;
        if (s->has_semi_sync_master_enabled && s->semi_sync_master_enabled) {
            degraded_drop(m, i);
            continue;
        }
        unsigned clients = s->has_semi_sync_master_clients ? s->semi_sync_master_clients : 0;
        if (clients >= m->c.analysis.semi_sync_wait_count && clients > 0) {
            degraded_drop(m, i);
            set_semi_sync(m, in, true);
        }
    }
}

static void consider(recovery_mgr *m, const analysis_cluster *c, const analysis_entry *e)
{
    const char *code = analysis_code_name(e->code);
    bool fresh_incident;
    incident *inc = incident_of(m, e->name, code, &fresh_incident);
    if (fresh_incident) {
        m->stats.detections++;
        orch_log(e->recoverable ? ORCH_LOG_WARN : ORCH_LOG_NOTICE, "ORCH-DETECTED", e->name,
                 "%s in cluster %s: %s", code, c->name, e->description);
        record_detection(m, c, e);
        if (m->d.m != NULL)
            metric_inc(metrics_counter(m->d.m, "orch_analysis_detections_total",
                                       "Failures detected, by analysis.", "analysis", code, NULL));
        hook_vars v = {.failure_type = code,
                       .failure_description = e->description,
                       .failed_host = e->key.host,
                       .failed_port = e->key.port,
                       .cluster = c->name,
                       .cluster_alias = c->alias,
                       .orch_host = m->c.node,
                       .command = "detection"};
        if (m->c.on_failure_detection != NULL && m->c.on_failure_detection->n > 0 &&
            hooks_run(
                m->d.hk, "on_failure_detection", (const char *const *)m->c.on_failure_detection->v,
                m->c.on_failure_detection->n, &v, m->c.hook_timeout_ms, NULL, NULL) != ORCH_OK)
            orch_warn(e->name, "cannot run on_failure_detection hooks");
    }
    if (e->code == ANALYSIS_LOCKED_SEMI_SYNC_MASTER && fresh_incident)
        unlock_semi_sync(m, e);
    if (!e->recoverable || active_for(m, c->name) != NULL)
        return;
    /* One automatic attempt per incident: a recovery that failed or refused is
     * not retried while the same finding lasts (a human looks first; the
     * backend's anti-flap block covers a finding that comes back). */
    if (inc != NULL && inc->attempted)
        return;
    const char *why = NULL;
    if (recoveries_disabled(m))
        why = "recoveries are disabled globally (orchctl enable-global-recoveries)";
    else if (!recovery_cluster_selected(m, c->name, c->alias))
        why = "the cluster is not in recover_clusters";
    if (why != NULL) {
        if (fresh_incident) {
            m->stats.skipped++;
            orch_log(ORCH_LOG_WARN, "ORCH-FAILOVER-SKIPPED", c->name, "%s of %s: %s", code, e->name,
                     why);
        }
        return;
    }
    reg_instance *failed = registry_get(m->d.reg, &e->key);
    if (failed == NULL)
        return;
    recovery *r = recovery_create(m, failed, e, code, false, false, NULL);
    if (r == NULL) {
        orch_error(e->name, "out of memory starting a recovery");
        return;
    }
    if (inc != NULL)
        inc->attempted = true;
    advance(r);
}

orch_err recovery_request(recovery_mgr *m, const recovery_req *req, recovery_done_fn done,
                          void *arg, char *msg, size_t msglen)
{
    if (!leading(m))
        return orch_fail(msg, msglen, ORCH_ERR_STATE, "this node is not the leader");
    registry_refresh(m->d.reg);
    const orch_key *failed = &req->failed;
    bool force = req->force;
    reg_instance *in = registry_get(m->d.reg, failed);
    char name[ORCH_KEY_STRLEN];
    orch_key_format(failed, name, sizeof(name));
    if (in == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOTFOUND, "unknown instance %s", name);
    if (in->nreplicas == 0)
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s has no replicas to promote", name);
    const reg_instance *cand = NULL;
    if (req->has_candidate) {
        char cname[ORCH_KEY_STRLEN];
        orch_key_format(&req->candidate, cname, sizeof(cname));
        for (size_t i = 0; i < in->nreplicas && cand == NULL; i++)
            if (orch_key_equal(&in->replicas[i]->key, &req->candidate))
                cand = in->replicas[i];
        if (cand == NULL)
            return orch_fail(
                msg, msglen,
                registry_get(m->d.reg, &req->candidate) ? ORCH_ERR_REFUSED : ORCH_ERR_NOTFOUND,
                "%s is not a direct replica of %s: it cannot be designated", cname, name);
    }
    const reg_cluster *cl = in->cluster;
    if (cl != NULL && active_for(m, cl->name) != NULL)
        return orch_fail(msg, msglen, ORCH_ERR_STATE, "a recovery of %s is already running",
                         cl->name);
    const analysis_entry *e = m->last ? analysis_result_find(m->last, failed) : NULL;
    if (!force && (e == NULL || !e->recoverable))
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                         "%s is not seen as failed (%s); force-master-failover overrides", name,
                         e ? analysis_code_name(e->code) : "NoProblem");
    const char *code = !force ? "Recover" : cand ? "ForceMasterTakeover" : "ForceMasterFailover";
    recovery *r = recovery_create(m, in, e, code, true, force, req->reason);
    if (r == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    if (cand != NULL)
        snprintf(r->designated, sizeof(r->designated), "%s", cand->name);
    r->done = done;
    r->done_arg = arg;
    advance(r);
    return ORCH_OK;
}

/* ---- direct checks ------------------------------------------------------------------ */

static direct_slot *direct_find(recovery_mgr *m, const orch_key *k)
{
    for (size_t i = 0; i < DIRECT_SLOTS; i++) {
        if (m->direct[i].used && orch_key_equal(&m->direct[i].key, k))
            return &m->direct[i];
    }
    return NULL;
}

static analysis_direct direct_cb(void *arg, const reg_instance *inst)
{
    recovery_mgr *m = arg;
    direct_slot *s = direct_find(m, &inst->key);
    analysis_direct none = {.state = ANALYSIS_DIRECT_NONE};
    if (s == NULL)
        return none;
    /* an answer counts while it is recent, and never once the agent reported again */
    if (s->st.state != ANALYSIS_DIRECT_PENDING &&
        (orch_mono_ms() - s->at_ms > DIRECT_KEEP_MS || inst->last_seen_ms > s->at_ms)) {
        s->used = false;
        return none;
    }
    return s->st;
}

typedef struct direct_ctx {
    recovery_mgr *m;
    orch_key key;
} direct_ctx;

static void on_direct(commander_reply *rep, void *arg)
{
    direct_ctx *ctx = arg;
    recovery_mgr *m = ctx->m;
    direct_slot *s = direct_find(m, &ctx->key);
    char name[ORCH_KEY_STRLEN];
    orch_key_format(&ctx->key, name, sizeof(name));
    if (s != NULL) {
        s->at_ms = orch_mono_ms();
        if (rep->status == COMMANDER_REPLIED) {
            s->st.state = ANALYSIS_DIRECT_ANSWERED;
            s->st.answered = rep->state ? rep->state->state : ORCH__PROBE_STATE__PROBE_UNKNOWN;
        } else {
            s->st.state = ANALYSIS_DIRECT_TIMED_OUT;
        }
        orch_log(ORCH_LOG_INFO, "ORCH-DIRECT-CHECK", name, "ReportNow to a silent agent: %s",
                 s->st.state == ANALYSIS_DIRECT_ANSWERED ? render_agent_state_name(s->st.answered)
                                                         : commander_status_name(rep->status));
    }
    free(ctx);
    recovery_poke(m);
}

static void direct_checks(recovery_mgr *m)
{
    for (size_t i = 0; m->last != NULL && i < m->last->ndirect_wanted; i++) {
        const orch_key *k = &m->last->direct_wanted[i];
        if (direct_find(m, k) != NULL)
            continue;
        reg_instance *in = registry_get(m->d.reg, k);
        if (in == NULL || in->report->command_listen == NULL)
            continue;
        size_t slot = DIRECT_SLOTS;
        for (size_t j = 0; j < DIRECT_SLOTS && slot == DIRECT_SLOTS; j++) {
            if (!m->direct[j].used)
                slot = j;
        }
        if (slot == DIRECT_SLOTS)
            return;
        direct_ctx *ctx = malloc(sizeof(*ctx));
        if (ctx == NULL)
            return;
        *ctx = (direct_ctx){.m = m, .key = *k};
        Orch__Command c = ORCH__COMMAND__INIT;
        c.type = ORCH__COMMAND_TYPE__CMD_REPORT_NOW;
        commander_cmd req = {.host = k->host,
                             .url = in->report->command_listen,
                             .epoch = election_leader_epoch(m->d.el, orch_mono_ms()),
                             .cmd = &c,
                             .timeout_ms = m->c.direct_check_timeout_ms,
                             .done = on_direct,
                             .arg = ctx};
        uint64_t id;
        char msg[128];
        if (commander_submit(m->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK) {
            free(ctx);
            continue;
        }
        m->direct[slot] = (direct_slot){.used = true,
                                        .key = *k,
                                        .st = {.state = ANALYSIS_DIRECT_PENDING},
                                        .at_ms = orch_mono_ms()};
        m->stats.direct_checks++;
        orch_log(ORCH_LOG_INFO, "ORCH-DIRECT-CHECK", in->name,
                 "agent silent for %lld ms: asking it directly (timeout %lld ms)",
                 (long long)(orch_mono_ms() - in->last_seen_ms),
                 (long long)m->c.direct_check_timeout_ms);
    }
}

/* ---- pending fences ------------------------------------------------------------------- */

static void on_fences_loaded(orch_err result, const char *message, json_t *rows, uint64_t affected,
                             void *arg)
{
    recovery_mgr *m = arg;
    if (result == ORCH_OK) {
        free(m->fences);
        m->fences = NULL;
        m->nfences = 0;
        size_t n = json_array_size(rows);
        m->fences = calloc(n ? n : 1, sizeof(*m->fences));
        for (size_t i = 0; m->fences != NULL && i < n; i++) {
            json_t *row = json_array_get(rows, i);
            const char *host = json_string_value(json_object_get(row, "hostname"));
            const char *port = json_string_value(json_object_get(row, "port"));
            const char *uid = json_string_value(json_object_get(row, "recovery_uid"));
            char *end;
            long p = port ? strtol(port, &end, 10) : 0;
            if (host && orch_key_make(host, p, &m->fences[m->nfences].key, NULL, 0) == ORCH_OK) {
                snprintf(m->fences[m->nfences].uid, sizeof(m->fences[0].uid), "%s", uid ? uid : "");
                m->nfences++;
            }
        }
        m->fences_loaded = true;
        if (m->nfences > 0)
            orch_log(ORCH_LOG_NOTICE, "ORCH-FENCE-PENDING", NULL,
                     "%zu old master(s) to fence when their agents report", m->nfences);
    }
    json_decref(rows);
}

typedef struct fence_ctx {
    recovery_mgr *m;
    orch_key key;
} fence_ctx;

static void on_fence_sent(commander_reply *rep, void *arg)
{
    fence_ctx *ctx = arg;
    recovery_mgr *m = ctx->m;
    char name[ORCH_KEY_STRLEN];
    orch_key_format(&ctx->key, name, sizeof(name));
    for (size_t i = 0; i < m->nfences; i++) {
        if (!orch_key_equal(&m->fences[i].key, &ctx->key))
            continue;
        m->fences[i].in_flight = false;
        bool done = rep->status == COMMANDER_REPLIED &&
                    (rep->result == ORCH__COMMAND_RESULT__RESULT_OK ||
                     rep->result == ORCH__COMMAND_RESULT__RESULT_DEFERRED);
        if (!done)
            break;
        orch_log(ORCH_LOG_NOTICE, "ORCH-FENCED", name,
                 "old master of recovery %s fenced now that its agent is back (%s)",
                 m->fences[i].uid, commander_result_name(rep->result));
        drop_pending_fence(m, &ctx->key);
        m->fences[i] = m->fences[--m->nfences];
        break;
    }
    free(ctx);
}

static void send_pending_fences(recovery_mgr *m)
{
    int64_t now = orch_mono_ms();
    for (size_t i = 0; i < m->nfences; i++) {
        pending_fence *f = &m->fences[i];
        reg_instance *in = registry_get(m->d.reg, &f->key);
        if (f->in_flight || now - f->last_try_ms < FENCE_RETRY_MS || in == NULL ||
            reg_instance_is_stale(in, now, m->c.analysis.stale_after_ms) ||
            in->report->command_listen == NULL)
            continue;
        fence_ctx *ctx = malloc(sizeof(*ctx));
        if (ctx == NULL)
            return;
        *ctx = (fence_ctx){.m = m, .key = f->key};
        Orch__Command c = ORCH__COMMAND__INIT;
        c.type = ORCH__COMMAND_TYPE__CMD_FENCE;
        c.has_kill_connections = true;
        c.kill_connections = true;
        commander_cmd req = {.host = f->key.host,
                             .url = in->report->command_listen,
                             .epoch = election_leader_epoch(m->d.el, now),
                             .cmd = &c,
                             .timeout_ms = m->c.command_timeout_ms,
                             .done = on_fence_sent,
                             .arg = ctx};
        uint64_t id;
        char msg[128];
        f->last_try_ms = now;
        if (commander_submit(m->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK) {
            free(ctx);
            continue;
        }
        f->in_flight = true;
    }
}

/* ---- the beat --------------------------------------------------------------------------- */

static bool answering(const reg_instance *i, int64_t now, int64_t stale_after_ms)
{
    return i != NULL && i->report->state == ORCH__PROBE_STATE__PROBE_UP &&
           !reg_instance_is_stale(i, now, stale_after_ms);
}

/*
 * Updates the remembered errant sets from an analysis: where the analysis could
 * check (the replica and its master both fresh and up), its verdict replaces
 * what was remembered: a set, or nothing (checked and clean).
 */
static void remember_errant(recovery_mgr *m, const analysis_result *res)
{
    /* the findings' errant replicas by name, once (not a scan per instance) */
    orch_hmap found;
    orch_hmap_init(&found);
    for (size_t e = 0; e < res->nentries; e++) {
        for (size_t k = 0; k < res->entries[e].nerrant; k++) {
            const reg_instance *ri = registry_get(m->d.reg, &res->entries[e].errant[k].replica);
            if (ri != NULL &&
                orch_hmap_put(&found, ri->name, (void *)res->entries[e].errant[k].gtid, NULL) !=
                    ORCH_OK) {
                orch_hmap_fini(&found); /* out of memory: keep what is known */
                return;
            }
        }
    }
    size_t n;
    int64_t now = orch_mono_ms();
    reg_instance *const *v = registry_instances(m->d.reg, &n);
    for (size_t i = 0; i < n; i++) {
        const reg_instance *r = v[i];
        if (!answering(r, now, m->c.analysis.stale_after_ms) ||
            !answering(r->master, now, m->c.analysis.stale_after_ms))
            continue;
        const char *set = orch_hmap_get(&found, r->name);
        if (set == NULL) {
            free(orch_hmap_del(&m->errant, r->name));
            continue;
        }
        const char *known = orch_hmap_get(&m->errant, r->name);
        if (known != NULL && strcmp(known, set) == 0)
            continue;
        void *old = NULL;
        char *copy = strdup(set);
        if (copy == NULL || orch_hmap_put(&m->errant, r->name, copy, &old) != ORCH_OK)
            free(copy);
        else
            free(old);
    }
    orch_hmap_fini(&found);
}

static void analyze(recovery_mgr *m)
{
    int64_t now = orch_mono_ms();
    analysis_result *res = NULL;
    char msg[256];
    registry_refresh(m->d.reg);
    if (analysis_run(m->d.reg, &m->c.analysis, direct_cb, m, now, orch_wall_ms(), &res, msg,
                     sizeof(msg)) != ORCH_OK) {
        orch_error(NULL, "analysis failed: %s", msg);
        return;
    }
    analysis_result_free(m->last);
    m->last = res;
    m->run++;
    remember_errant(m, res);
    if (!m->leader)
        return;
    direct_checks(m);
    if (m->fences_loaded)
        send_pending_fences(m);
    for (size_t c = 0; c < res->nclusters; c++) {
        const analysis_cluster *cl = &res->clusters[c];
        if (cl->warming_up)
            continue;
        for (size_t i = cl->first; i < cl->first + cl->count; i++) {
            const analysis_entry *e = &res->entries[i];
            if (e->code != ANALYSIS_NO_PROBLEM)
                consider(m, cl, e);
        }
    }
    incidents_prune(m, false);
    restore_semi_sync(m);
}

static void on_analyze(evutil_socket_t fd, short what, void *arg)
{
    analyze(arg);
}

void recovery_poke(recovery_mgr *m)
{
    if (m != NULL && m->ev_analyze != NULL)
        event_active(m->ev_analyze, EV_TIMEOUT, 0);
}

void recovery_tick(recovery_mgr *m, int64_t now_ms)
{
    analyze(m);
}

void recovery_leadership(recovery_mgr *m, bool leader)
{
    m->leader = leader;
    if (!leader) {
        m->fences_loaded = false;
        return;
    }
    /* a new leader judges afresh: incidents are logged and recorded again */
    incidents_prune(m, true);
    /* Recoveries a deposed leader left running are over: interrupted (their
     * lock and recorded successor stay for a resumed recovery of the cluster;
     * a dead master's fence, recorded with the successor, is loaded next). */
    char **u = stmts_new(1);
    if (u != NULL) {
        orch_sbuf b = {0};
        orch_sbuf_fmt(&b,
                      "UPDATE recovery SET state = 'interrupted', ended_at = NOW(6) WHERE state = "
                      "'running' AND epoch < %llu",
                      (unsigned long long)election_leader_epoch(m->d.el, orch_mono_ms()));
        u[0] = stmt_done(&b);
        batch(m, "interrupted recoveries", u, 1, note_rows_failure,
              (void *)"interrupted recoveries");
    }
    char **s = stmts_new(1);
    if (s != NULL) {
        s[0] = strdup("SELECT hostname, port, recovery_uid FROM pending_fence");
        batch(m, "pending fences", s, 1, on_fences_loaded, m);
    }
}

const analysis_result *recovery_analysis(recovery_mgr *m)
{
    return m->last;
}

void recovery_stats_get(const recovery_mgr *m, recovery_stats *out)
{
    *out = m->stats;
    out->active = 0;
    for (const recovery *r = m->active; r != NULL; r = r->next)
        out->active++;
}

void recovery_set_conf(recovery_mgr *m, const recovery_conf *conf)
{
    m->c = *conf;
}

recovery_mgr *recovery_new(const recovery_deps *deps, const recovery_conf *conf, char *msg,
                           size_t msglen)
{
    recovery_mgr *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->d = *deps;
    m->c = *conf;
    orch_hmap_init(&m->errant);
    orch_hmap_init(&m->incidents);
    m->ev_analyze = event_new(deps->base, -1, 0, on_analyze, m);
    if (m->ev_analyze == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot create the analysis event");
        free(m);
        return NULL;
    }
    return m;
}

void recovery_free(recovery_mgr *m)
{
    if (m == NULL)
        return;
    /* Running recoveries are abandoned: the loop is gone, their callbacks were
     * answered by commander_stop / store_stop / hooks_stop before this. Each
     * requester still hears the end, as a failure. */
    recovery *r = m->active;
    while (r != NULL) {
        recovery *next = r->next;
        if (r->done != NULL) /* a requester waiting (the API) lets go of its context */
            r->done(r->done_arg, false, "the coordinator stopped before the recovery ended",
                    r->uid);
        recovery_destroy(r);
        r = next;
    }
    event_free(m->ev_analyze);
    analysis_result_free(m->last);
    size_t it = 0;
    const char *k;
    void *v;
    while (orch_hmap_next(&m->errant, &it, &k, &v))
        free(v);
    orch_hmap_fini(&m->errant);
    incidents_prune(m, true);
    orch_hmap_fini(&m->incidents);
    free(m->fences);
    free(m);
}
