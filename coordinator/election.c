/*
 * election.c: the leader lease and its thread (see election.h for the rule).
 *
 * One round, every interval:
 *
 *   t0 = now (monotonic)
 *   START TRANSACTION
 *   SELECT node, token, epoch, renewed_at, NOW(6), age FROM leader WHERE id = 1 FOR UPDATE
 *   election_decide() -> INSERT / UPDATE (renew, takeover) / nothing
 *   COMMIT                                  -> leader until t0 + lease - margin
 *   upsert our `node` row; read the nodes seen within three intervals
 *
 * Any failure leaves the validity as it was: it runs out by itself. A
 * connection that failed mid-transaction is closed (its state is unknown); an
 * SQL error (a lost insert race, a lock wait timeout) is rolled back and the
 * round simply counts as failed.
 *
 * A leader frozen between SELECT ... FOR UPDATE and COMMIT would hold the row
 * lock for as long as its connection lives and stall every other node's round.
 * Each session therefore sets innodb_lock_wait_timeout = 1 (a round never waits
 * long) and, on MariaDB, idle_transaction_timeout, so the server kills such a
 * connection well within the lease.
 */
#include "election.h"

#include "clock.h"
#include "log.h"

#include <errmsg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ELECTION_CONNECT_TIMEOUT_S 1
#define ELECTION_RW_TIMEOUT_S      1
#define RELEASED_AT                "2000-01-01 00:00:00"

struct election {
    /* Configuration (immutable after start; strings owned). */
    char *host, *socket, *user, *password, *database, *node, *api_url;
    unsigned port;
    int64_t interval_ms, lease_ms, margin_ms;
    char token[ELECTION_TOKEN_LEN + 1];
    char object[300]; /* "backend host:port" for log lines */
    election_notify_fn notify;
    void *notify_arg;

    pthread_t thread;
    bool thread_started;
    atomic_llong valid_until_ms; /* 0: not leading */

    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    uint64_t my_epoch; /* the epoch we lead in (meaningful while valid_until is ahead) */
    uint64_t epoch;    /* the current leader's, as last read */
    char leader_node[ELECTION_NODE_MAX];
    bool backend_ok;
    char last_error[256];
    int64_t last_rtt_us, last_ok_ms;
    uint64_t rounds, rounds_failed, changes;
    election_node_info *nodes;
    size_t nnodes;

    /* Election thread only. */
    MYSQL *db;
    bool was_leader; /* as last announced */
    bool down_logged;
    orch_ratelimit query_log; /* SQL errors: once a minute */
    bool seen_valid;          /* the row last read, and since when it looks the same */
    char seen_node[ELECTION_NODE_MAX], seen_token[65], seen_renewed[40];
    uint64_t seen_epoch;
    int64_t seen_since_ms;
    uint64_t max_epoch_seen;
};

/* ---- the decision ---------------------------------------------------------------- */

const char *election_action_name(election_action a)
{
    switch (a) {
    case ELECTION_INSERT:
        return "insert";
    case ELECTION_RENEW:
        return "renew";
    case ELECTION_TAKEOVER:
        return "takeover";
    case ELECTION_FOLLOW:
        return "follow";
    }
    return "unknown";
}

election_decision election_decide(const election_row *row, const election_self *self)
{
    election_decision d = {.action = ELECTION_FOLLOW, .epoch = 0, .why = ""};
    if (!row->present) {
        d.action = ELECTION_INSERT;
        d.epoch = self->max_epoch_seen + 1;
        d.why = "no leader row";
        return d;
    }
    bool ours = row->node != NULL && row->token != NULL && strcmp(row->node, self->node) == 0 &&
                strcmp(row->token, self->token) == 0;
    /* Lapsed by the backend's clock: strictly older than the lease. */
    bool lapsed_backend = row->age_us > self->lease_ms * 1000;
    /* Lapsed by our own clock: unchanged for a whole lease since we first read
     * it (see election.h for why this is safe). */
    bool lapsed_local = row->unchanged_ms >= self->lease_ms;
    uint64_t base = row->epoch > self->max_epoch_seen ? row->epoch : self->max_epoch_seen;

    if (ours && !lapsed_backend) {
        d.action = ELECTION_RENEW;
        d.epoch = row->epoch;
        d.why = "our lease";
        return d;
    }
    if (lapsed_backend || lapsed_local) {
        if (base == UINT64_MAX) {
            d.epoch = row->epoch;
            d.why = "epoch exhausted";
            return d;
        }
        d.action = ELECTION_TAKEOVER;
        d.epoch = base + 1;
        d.why = ours             ? "our own lease lapsed"
                : lapsed_backend ? "lease lapsed"
                                 : "lease unchanged for a whole lease by our clock";
        return d;
    }
    d.epoch = row->epoch;
    d.why = row->node != NULL && strcmp(row->node, self->node) == 0
                ? "our node name with another token holds a live lease"
                : "another node holds a live lease";
    return d;
}

int64_t election_valid_until(int64_t t0_ms, int64_t lease_ms, int64_t margin_ms)
{
    return t0_ms + lease_ms - margin_ms;
}

/* ---- helpers -------------------------------------------------------------------- */

static void copy_str(char *dst, size_t dstlen, const char *src)
{
    snprintf(dst, dstlen, "%s", src != NULL ? src : "");
}

static void timespec_at_mono(struct timespec *ts, int64_t mono_ms)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static bool stopping(election *e)
{
    pthread_mutex_lock(&e->mu);
    bool s = e->stopping;
    pthread_mutex_unlock(&e->mu);
    return s;
}

static void close_db(election *e)
{
    if (e->db != NULL) {
        mysql_close(e->db);
        e->db = NULL;
    }
}

/* Records a failed round; closes the connection unless the server answered. */
static void round_failed(election *e, orch_db_failure f, const char *err)
{
    if (f != ORCH_DB_QUERY)
        close_db(e);
    bool down = f != ORCH_DB_QUERY;
    pthread_mutex_lock(&e->mu);
    e->rounds_failed++;
    copy_str(e->last_error, sizeof(e->last_error), err);
    if (down)
        e->backend_ok = false;
    pthread_mutex_unlock(&e->mu);
    if (down) {
        if (!e->down_logged)
            orch_log(ORCH_LOG_WARN, "ORCH-BACKEND-DOWN", e->object,
                     "election: %s (%s); retrying every %lld ms", err, orch_db_failure_name(f),
                     (long long)e->interval_ms);
        e->down_logged = true;
    } else {
        uint64_t suppressed = 0;
        if (orch_ratelimit_allow(&e->query_log, orch_mono_ms(), 60000, &suppressed))
            orch_log(ORCH_LOG_WARN, NULL, e->object,
                     "election round failed: %s (%llu similar suppressed)", err,
                     (unsigned long long)suppressed);
    }
}

static bool connect_db(election *e)
{
    orch_db_conf c = {.socket = e->socket,
                      .host = e->host,
                      .port = e->port,
                      .user = e->user,
                      .password = e->password,
                      .database = e->database,
                      .connect_timeout_s = ELECTION_CONNECT_TIMEOUT_S,
                      .rw_timeout_s = ELECTION_RW_TIMEOUT_S};
    char err[256];
    orch_db_failure f = ORCH_DB_OK;
    if (orch_db_connect(&c, &e->db, &f, err, sizeof(err)) != ORCH_OK) {
        e->db = NULL;
        round_failed(e, f == ORCH_DB_QUERY ? ORCH_DB_DOWN : f, err);
        return false;
    }
    /* UTC without DST for every DATETIME; short lock waits (see the top). */
    if (orch_db_exec(e->db, "SET SESSION time_zone = '+00:00', innodb_lock_wait_timeout = 1", &f,
                     err, sizeof(err)) != ORCH_OK) {
        round_failed(e, f == ORCH_DB_QUERY ? ORCH_DB_DOWN : f, err);
        close_db(e);
        return false;
    }
    long idle_s = (long)((e->lease_ms - e->margin_ms) / 2000);
    if (idle_s < 1)
        idle_s = 1;
    char sql[128];
    snprintf(sql, sizeof(sql), "SET SESSION idle_transaction_timeout = %ld", idle_s);
    if (orch_db_exec(e->db, sql, &f, err, sizeof(err)) != ORCH_OK) {
        if (f != ORCH_DB_QUERY) { /* MySQL has no such variable: fine */
            round_failed(e, f, err);
            return false;
        }
    }
    return true;
}

/* ---- transitions ------------------------------------------------------------------ */

/* Announces a change of this node's leadership, if any: log and notify. */
static void announce(election *e, const char *why)
{
    int64_t now = orch_mono_ms();
    bool leading = election_is_leader(e, now);
    if (leading == e->was_leader)
        return;
    e->was_leader = leading;
    pthread_mutex_lock(&e->mu);
    e->changes++;
    uint64_t epoch = e->my_epoch;
    int64_t until = atomic_load(&e->valid_until_ms);
    pthread_mutex_unlock(&e->mu);
    if (leading)
        orch_log(ORCH_LOG_NOTICE, "ORCH-LEADER-ELECTED", e->node,
                 "leading at epoch %llu (%s); lease %lld ms, valid for %lld ms",
                 (unsigned long long)epoch, why, (long long)e->lease_ms, (long long)(until - now));
    else
        orch_log(ORCH_LOG_NOTICE, "ORCH-LEADER-LOST", e->node, "no longer leading epoch %llu: %s",
                 (unsigned long long)epoch, why);
    if (e->notify != NULL)
        e->notify(e->notify_arg);
}

/* Why a leader stops leading when its own clock runs out. */
static void announce_expiry(election *e)
{
    if (!e->was_leader || election_is_leader(e, orch_mono_ms()))
        return;
    char why[400];
    pthread_mutex_lock(&e->mu);
    snprintf(why, sizeof(why), "lease not renewed within lease - margin (%lld ms); last error: %s",
             (long long)(e->lease_ms - e->margin_ms), e->last_error[0] ? e->last_error : "none");
    pthread_mutex_unlock(&e->mu);
    announce(e, why);
}

/* ---- one round ------------------------------------------------------------------ */

/* Tracks how long the row has looked the same to us (for unchanged_ms). */
static int64_t row_unchanged_ms(election *e, const char *node, const char *token, uint64_t epoch,
                                const char *renewed, int64_t now)
{
    if (e->seen_valid && e->seen_epoch == epoch && strcmp(e->seen_node, node) == 0 &&
        strcmp(e->seen_token, token) == 0 && strcmp(e->seen_renewed, renewed) == 0)
        return now - e->seen_since_ms;
    e->seen_valid = true;
    e->seen_epoch = epoch;
    copy_str(e->seen_node, sizeof(e->seen_node), node);
    copy_str(e->seen_token, sizeof(e->seen_token), token);
    copy_str(e->seen_renewed, sizeof(e->seen_renewed), renewed);
    e->seen_since_ms = now;
    return -1;
}

static void rollback(election *e)
{
    orch_db_failure f;
    char err[256];
    if (e->db != NULL && orch_db_exec(e->db, "ROLLBACK", &f, err, sizeof(err)) != ORCH_OK)
        close_db(e);
}

/*
 * The lease transaction. On success returns true with *d the decision that was
 * committed and t0 the monotonic time taken before it began.
 */
static bool lease_round(election *e, election_decision *d, int64_t *t0, char *leader_node,
                        size_t leader_len)
{
    char err[512], sql[1024];
    orch_db_failure f = ORCH_DB_OK;
    MYSQL_RES *res = NULL;

    *t0 = orch_mono_ms();
    int64_t t0_us = orch_mono_us();
    if (orch_db_exec(e->db, "START TRANSACTION", &f, err, sizeof(err)) != ORCH_OK)
        goto fail;
    if (orch_db_query(e->db,
                      "SELECT node, token, epoch, renewed_at, NOW(6), "
                      "TIMESTAMPDIFF(MICROSECOND, renewed_at, NOW(6)) FROM leader WHERE id = 1 "
                      "FOR UPDATE",
                      &res, &f, err, sizeof(err)) != ORCH_OK)
        goto fail;
    MYSQL_ROW r = res != NULL ? mysql_fetch_row(res) : NULL;
    election_row row = {.present = false, .unchanged_ms = -1};
    char node[ELECTION_NODE_MAX] = "", token[65] = ""; /* the column is VARCHAR(64) */
    if (r != NULL && mysql_num_fields(res) >= 6) {
        copy_str(node, sizeof(node), r[0]);
        copy_str(token, sizeof(token), r[1]);
        row.present = true;
        row.node = node;
        row.token = token;
        row.epoch = r[2] != NULL ? strtoull(r[2], NULL, 10) : 0;
        row.age_us = r[5] != NULL ? strtoll(r[5], NULL, 10) : 0;
        row.unchanged_ms = row_unchanged_ms(e, node, token, row.epoch, r[3] ? r[3] : "", *t0);
        if (row.epoch > e->max_epoch_seen)
            e->max_epoch_seen = row.epoch;
    }
    if (res != NULL)
        mysql_free_result(res);
    res = NULL;

    election_self self = {.node = e->node,
                          .token = e->token,
                          .lease_ms = e->lease_ms,
                          .max_epoch_seen = e->max_epoch_seen};
    *d = election_decide(&row, &self);

    char qnode[2 * ELECTION_NODE_MAX + 3], qtoken[2 * ELECTION_TOKEN_LEN + 3];
    if (orch_db_quote(e->db, e->node, qnode, sizeof(qnode)) != ORCH_OK ||
        orch_db_quote(e->db, e->token, qtoken, sizeof(qtoken)) != ORCH_OK) {
        snprintf(err, sizeof(err), "node name too long to quote");
        f = ORCH_DB_QUERY;
        goto fail;
    }
    switch (d->action) {
    case ELECTION_INSERT:
        snprintf(sql, sizeof(sql),
                 "INSERT INTO leader (id, node, token, epoch, renewed_at, elected_at) "
                 "VALUES (1, %s, %s, %llu, NOW(6), NOW(6))",
                 qnode, qtoken, (unsigned long long)d->epoch);
        break;
    case ELECTION_RENEW:
        snprintf(sql, sizeof(sql), "UPDATE leader SET renewed_at = NOW(6) WHERE id = 1");
        break;
    case ELECTION_TAKEOVER:
        snprintf(sql, sizeof(sql),
                 "UPDATE leader SET node = %s, token = %s, epoch = %llu, renewed_at = NOW(6), "
                 "elected_at = NOW(6) WHERE id = 1",
                 qnode, qtoken, (unsigned long long)d->epoch);
        break;
    case ELECTION_FOLLOW:
        sql[0] = '\0';
        break;
    }
    if (sql[0] != '\0' && orch_db_exec(e->db, sql, &f, err, sizeof(err)) != ORCH_OK)
        goto fail;
    if (orch_db_exec(e->db, "COMMIT", &f, err, sizeof(err)) != ORCH_OK)
        goto fail;
    int64_t rtt = orch_mono_us() - t0_us;
    copy_str(leader_node, leader_len, d->action == ELECTION_FOLLOW ? node : e->node);
    pthread_mutex_lock(&e->mu);
    e->last_rtt_us = rtt;
    pthread_mutex_unlock(&e->mu);
    return true;
fail:
    if (res != NULL)
        mysql_free_result(res);
    if (f == ORCH_DB_QUERY)
        rollback(e);
    round_failed(e, f, err);
    return false;
}

/* Upserts our node row and reads the live ones. Failures only log. */
static void nodes_round(election *e)
{
    char err[512], sql[2048], qnode[2 * ELECTION_NODE_MAX + 3], qurl[2 * ELECTION_URL_MAX + 3],
        qtoken[2 * ELECTION_TOKEN_LEN + 3], qver[80];
    orch_db_failure f = ORCH_DB_OK;
    if (orch_db_quote(e->db, e->node, qnode, sizeof(qnode)) != ORCH_OK ||
        orch_db_quote(e->db, e->api_url ? e->api_url : "", qurl, sizeof(qurl)) != ORCH_OK ||
        orch_db_quote(e->db, e->token, qtoken, sizeof(qtoken)) != ORCH_OK ||
        orch_db_quote(e->db, ORCH_VERSION, qver, sizeof(qver)) != ORCH_OK)
        return;
    /* started_at changes only when another process (token) takes the name. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO node (node, api_url, token, started_at, last_seen, version) "
             "VALUES (%s, %s, %s, NOW(6), NOW(6), %s) ON DUPLICATE KEY UPDATE "
             "started_at = IF(token = VALUES(token), started_at, VALUES(started_at)), "
             "token = VALUES(token), api_url = VALUES(api_url), last_seen = VALUES(last_seen), "
             "version = VALUES(version)",
             qnode, qurl, qtoken, qver);
    if (orch_db_exec(e->db, sql, &f, err, sizeof(err)) != ORCH_OK) {
        if (f != ORCH_DB_QUERY)
            round_failed(e, f, err);
        else
            orch_log(ORCH_LOG_WARN, NULL, e->object, "election: node upsert: %s", err);
        return;
    }
    snprintf(sql, sizeof(sql),
             "SELECT node, api_url, version, FLOOR(UNIX_TIMESTAMP(started_at) * 1000), "
             "TIMESTAMPDIFF(MICROSECOND, last_seen, NOW(6)) FROM node "
             "WHERE last_seen >= NOW(6) - INTERVAL %lld MICROSECOND ORDER BY node LIMIT 1000",
             (long long)(3 * e->interval_ms * 1000));
    MYSQL_RES *res = NULL;
    if (orch_db_query(e->db, sql, &res, &f, err, sizeof(err)) != ORCH_OK) {
        if (f != ORCH_DB_QUERY)
            round_failed(e, f, err);
        return;
    }
    size_t n = res != NULL ? (size_t)mysql_num_rows(res) : 0;
    election_node_info *nodes = n > 0 ? calloc(n, sizeof(*nodes)) : NULL;
    size_t k = 0;
    MYSQL_ROW r;
    while (nodes != NULL && res != NULL && (r = mysql_fetch_row(res)) != NULL && k < n) {
        election_node_info *ni = &nodes[k++];
        copy_str(ni->node, sizeof(ni->node), r[0]);
        copy_str(ni->api_url, sizeof(ni->api_url), r[1]);
        copy_str(ni->version, sizeof(ni->version), r[2]);
        ni->started_wall_ms = r[3] ? strtoll(r[3], NULL, 10) : 0;
        ni->last_seen_age_ms = r[4] ? strtoll(r[4], NULL, 10) / 1000 : 0;
    }
    if (res != NULL)
        mysql_free_result(res);
    pthread_mutex_lock(&e->mu);
    free(e->nodes);
    e->nodes = nodes;
    e->nnodes = nodes != NULL ? k : 0;
    pthread_mutex_unlock(&e->mu);
}

static void run_round(election *e)
{
    if (e->db == NULL && !connect_db(e))
        return;
    if (stopping(e))
        return;
    election_decision d;
    int64_t t0;
    char leader_node[ELECTION_NODE_MAX];
    if (!lease_round(e, &d, &t0, leader_node, sizeof(leader_node)))
        return;
    if (e->down_logged) {
        orch_log(ORCH_LOG_NOTICE, "ORCH-BACKEND-UP", e->object, "election: backend reachable");
        e->down_logged = false;
    }
    char prev_leader[ELECTION_NODE_MAX];
    pthread_mutex_lock(&e->mu);
    copy_str(prev_leader, sizeof(prev_leader), e->leader_node);
    uint64_t prev_epoch = e->epoch;
    e->rounds++;
    e->backend_ok = true;
    e->last_ok_ms = orch_mono_ms();
    e->epoch = d.epoch;
    copy_str(e->leader_node, sizeof(e->leader_node), leader_node);
    if (d.epoch > e->max_epoch_seen && d.epoch != UINT64_MAX)
        e->max_epoch_seen = d.epoch;
    if (d.action != ELECTION_FOLLOW) {
        e->my_epoch = d.epoch;
        atomic_store(&e->valid_until_ms, election_valid_until(t0, e->lease_ms, e->margin_ms));
    } else {
        atomic_store(&e->valid_until_ms, 0);
    }
    pthread_mutex_unlock(&e->mu);

    if (d.action == ELECTION_FOLLOW && (prev_epoch != d.epoch || strcmp(prev_leader, leader_node)))
        orch_log(ORCH_LOG_INFO, NULL, e->node, "leader is %s at epoch %llu (%s)", leader_node,
                 (unsigned long long)d.epoch, d.why);
    char why[600];
    if (d.action == ELECTION_FOLLOW)
        snprintf(why, sizeof(why), "%s took over at epoch %llu", leader_node,
                 (unsigned long long)d.epoch);
    else
        snprintf(why, sizeof(why), "%s: %s", election_action_name(d.action), d.why);
    announce(e, why);
    if (!stopping(e))
        nodes_round(e);
}

/* Gives the lease back on a clean stop, so that a successor need not wait. */
static void release(election *e)
{
    if (e->db == NULL)
        return;
    char err[512], sql[1024], qnode[2 * ELECTION_NODE_MAX + 3], qtoken[2 * ELECTION_TOKEN_LEN + 3];
    orch_db_failure f;
    if (orch_db_quote(e->db, e->node, qnode, sizeof(qnode)) != ORCH_OK ||
        orch_db_quote(e->db, e->token, qtoken, sizeof(qtoken)) != ORCH_OK)
        return;
    snprintf(sql, sizeof(sql),
             "UPDATE leader SET renewed_at = '" RELEASED_AT "' WHERE id = 1 AND node = %s AND "
             "token = %s",
             qnode, qtoken);
    if (orch_db_exec(e->db, sql, &f, err, sizeof(err)) != ORCH_OK)
        orch_log(ORCH_LOG_WARN, NULL, e->node, "could not release the lease: %s", err);
    else if (mysql_affected_rows(e->db) > 0)
        orch_log(ORCH_LOG_NOTICE, NULL, e->node, "lease released");
}

static void *election_main(void *arg)
{
    election *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        pthread_mutex_unlock(&e->mu);
        int64_t started = orch_mono_ms();
        announce_expiry(e);
        run_round(e);
        announce_expiry(e);
        pthread_mutex_lock(&e->mu);
        int64_t due = started + e->interval_ms;
        while (!e->stopping) {
            int64_t now = orch_mono_ms();
            int64_t until = atomic_load(&e->valid_until_ms);
            /* wake when the lease runs out, to say so at once */
            int64_t wake = e->was_leader && until > now && until < due ? until : due;
            if (now >= due)
                break;
            if (e->was_leader && now >= until) {
                pthread_mutex_unlock(&e->mu);
                announce_expiry(e);
                pthread_mutex_lock(&e->mu);
                continue;
            }
            struct timespec ts;
            timespec_at_mono(&ts, wake);
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
        }
    }
    pthread_mutex_unlock(&e->mu);

    bool led = election_is_leader(e, orch_mono_ms());
    atomic_store(&e->valid_until_ms, 0);
    if (e->was_leader)
        announce(e, "stopping");
    if (led)
        release(e);
    close_db(e);
    mysql_thread_end();
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

election *election_start(const election_conf *conf, election_notify_fn notify, void *arg, char *msg,
                         size_t msglen)
{
    if (conf->node == NULL || conf->node[0] == '\0' || strlen(conf->node) >= ELECTION_NODE_MAX) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "election: node name must be 1..%d bytes",
                  ELECTION_NODE_MAX - 1);
        return NULL;
    }
    if (conf->api_url != NULL && strlen(conf->api_url) >= ELECTION_URL_MAX) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "election: api url longer than %d bytes",
                  ELECTION_URL_MAX - 1);
        return NULL;
    }
    if (conf->interval_ms <= 0 || conf->margin_ms <= 0 ||
        conf->lease_ms <= conf->interval_ms + conf->margin_ms) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL,
                  "election: lease %lld ms must exceed interval %lld ms + margin %lld ms",
                  (long long)conf->lease_ms, (long long)conf->interval_ms,
                  (long long)conf->margin_ms);
        return NULL;
    }
    election *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&e->valid_until_ms, 0);
    e->host = dup_or_null(conf->db.host);
    e->socket = dup_or_null(conf->db.socket);
    e->user = dup_or_null(conf->db.user);
    e->password = dup_or_null(conf->db.password);
    e->database = dup_or_null(conf->db.database);
    e->node = strdup(conf->node);
    e->api_url = dup_or_null(conf->api_url);
    e->port = conf->db.port;
    e->interval_ms = conf->interval_ms;
    e->lease_ms = conf->lease_ms;
    e->margin_ms = conf->margin_ms;
    e->notify = notify;
    e->notify_arg = arg;
    if (e->node == NULL || (conf->db.host && !e->host) || (conf->db.socket && !e->socket) ||
        (conf->db.user && !e->user) || (conf->db.password && !e->password) ||
        (conf->db.database && !e->database) || (conf->api_url && !e->api_url)) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint8_t rnd[ELECTION_TOKEN_LEN / 2];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "election: getrandom failed");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(e->token + 2 * i, 3, "%02x", rnd[i]);
    if (e->socket != NULL)
        snprintf(e->object, sizeof(e->object), "backend %s", e->socket);
    else
        snprintf(e->object, sizeof(e->object), "backend %s:%u", e->host ? e->host : "", e->port);
    e->backend_ok = false;
    if (pthread_create(&e->thread, NULL, election_main, e) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "election: cannot create its thread");
        goto fail;
    }
    e->thread_started = true;
    orch_log(ORCH_LOG_INFO, NULL, e->node,
             "election: interval %lld ms, lease %lld ms, margin %lld ms, token %.8s...",
             (long long)e->interval_ms, (long long)e->lease_ms, (long long)e->margin_ms, e->token);
    return e;
fail:
    election_free(e);
    return NULL;
}

void election_stop(election *e)
{
    if (e == NULL)
        return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stopping = true;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
        e->thread_started = false;
    }
}

void election_free(election *e)
{
    if (e == NULL)
        return;
    election_stop(e);
    free(e->host);
    free(e->socket);
    free(e->user);
    free(e->password);
    free(e->database);
    free(e->node);
    free(e->api_url);
    free(e->nodes);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

bool election_is_leader(election *e, int64_t now_ms)
{
    return e != NULL && now_ms < atomic_load(&e->valid_until_ms);
}

uint64_t election_leader_epoch(election *e, int64_t now_ms)
{
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t epoch = now_ms < atomic_load(&e->valid_until_ms) ? e->my_epoch : 0;
    pthread_mutex_unlock(&e->mu);
    return epoch;
}

void election_status_get(election *e, election_status *out)
{
    memset(out, 0, sizeof(*out));
    if (e == NULL)
        return;
    int64_t now = orch_mono_ms();
    pthread_mutex_lock(&e->mu);
    int64_t until = atomic_load(&e->valid_until_ms);
    out->leader = now < until;
    out->valid_until_ms = out->leader ? until : 0;
    out->epoch = e->epoch;
    copy_str(out->leader_node, sizeof(out->leader_node), e->leader_node);
    copy_str(out->node, sizeof(out->node), e->node);
    copy_str(out->token, sizeof(out->token), e->token);
    out->backend_ok = e->backend_ok;
    copy_str(out->last_error, sizeof(out->last_error), e->last_error);
    out->last_rtt_us = e->last_rtt_us;
    out->last_ok_ms = e->last_ok_ms;
    out->rounds = e->rounds;
    out->rounds_failed = e->rounds_failed;
    out->changes = e->changes;
    if (e->nnodes > 0) {
        out->nodes = malloc(e->nnodes * sizeof(*out->nodes));
        if (out->nodes != NULL) {
            memcpy(out->nodes, e->nodes, e->nnodes * sizeof(*out->nodes));
            out->nnodes = e->nnodes;
        }
    }
    for (size_t i = 0; i < e->nnodes; i++) {
        if (strcmp(e->nodes[i].node, e->leader_node) == 0)
            copy_str(out->leader_api_url, sizeof(out->leader_api_url), e->nodes[i].api_url);
    }
    pthread_mutex_unlock(&e->mu);
}

void election_status_fini(election_status *st)
{
    if (st == NULL)
        return;
    free(st->nodes);
    st->nodes = NULL;
    st->nnodes = 0;
}
