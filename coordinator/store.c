/*
 * store.c: the backend store's thread, queues and SQL (see store.h).
 *
 * Everything that touches the backend runs on one thread with one connection.
 * The loop and other threads talk to it through three queues guarded by mu:
 *
 *   pending   instance rows and last-seen times, a hash map by key: a newer
 *             submission replaces an older one, so the map never holds more
 *             than one entry per instance and is bounded by queue_max;
 *   ops       operator writes, FIFO, executed one by one;
 *   done      answered operator writes, drained on the loop thread through an
 *             eventfd the loop's event base watches.
 *
 * The thread's cycle: answer ops first, re-read operator state when due, and
 * write the pending map when due. A write pass swaps the whole map out (so
 * submissions continue into an empty one), writes it in multi-row statements
 * sorted by key, and on failure merges what was not written back into the live
 * map (entries submitted meanwhile win) and backs off 100 ms, doubling to 5 s.
 */
#include "store.h"

#include "sbuf.h"

#include <jansson.h>

#include "clock.h"
#include "log.h"
#include "wakeup.h"

#include <event2/event.h>
#include <inttypes.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define STORE_CONNECT_TIMEOUT_S   1
#define STORE_RW_TIMEOUT_S        2
#define MIGRATE_RW_TIMEOUT_S      60
#define MIGRATION_LOCK_WAIT_S     30
#define BACKOFF_MIN_MS            100
#define BACKOFF_MAX_MS            5000
#define OP_RECONNECT_MIN_MS       1000
#define BATCH_ROWS                500
#define BATCH_BYTES               (1u << 20)
#define MAX_DURATION_MS           (INT64_C(10) * 366 * 24 * 3600 * 1000)
#define STORE_SESSION_SETUP_NAMES "SET SESSION collation_connection = utf8mb4_general_ci"
#define STORE_SESSION_SETUP                                                                        \
    "SET SESSION time_zone = '+00:00', innodb_lock_wait_timeout = 1, lock_wait_timeout = 5"

/* ---- a growable SQL buffer ---------------------------------------------------- */

/* Appends s (NULL: "") as a quoted SQL string literal. */
static void sb_quote(orch_sbuf *b, MYSQL *db, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (!orch_sbuf_reserve(b, 2 * n + 3))
        return;
    b->p[b->len++] = '\'';
    b->len += mysql_real_escape_string(db, b->p + b->len, s, (unsigned long)n);
    b->p[b->len++] = '\'';
    b->p[b->len] = '\0';
}

/* ---- the pending map ---------------------------------------------------------- */

typedef struct pend {
    uint64_t hash;
    orch_key key;
    bool has_row;
    store_instance_row row; /* when has_row */
    int64_t seen_ms;        /* a last-seen time; 0: none */
} pend;

typedef struct pmap {
    pend **slots; /* open addressing, linear probing; cap is a power of two */
    size_t cap, n;
} pmap;

static uint64_t key_hash(const orch_key *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)k->host; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ (k->port & 0xff)) * 1099511628211ULL;
    h = (h ^ (k->port >> 8)) * 1099511628211ULL;
    return h;
}

static bool key_eq(const orch_key *a, const orch_key *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void pend_free(pend *e)
{
    if (e == NULL)
        return;
    if (e->has_row)
        store_instance_row_fini(&e->row);
    free(e);
}

static void pmap_free(pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        pend_free(m->slots[i]);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static bool pmap_grow(pmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    pend **slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        pend *e = m->slots[i];
        if (e == NULL)
            continue;
        size_t j = (size_t)e->hash & (cap - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return true;
}

/* The entry for k; a new empty one when absent and the map holds fewer than max
 * entries; NULL when full (or out of memory). */
static pend *pmap_get(pmap *m, const orch_key *k, size_t max, bool *added)
{
    *added = false;
    uint64_t h = key_hash(k);
    if (m->cap > 0) {
        size_t j = (size_t)h & (m->cap - 1);
        while (m->slots[j] != NULL) {
            if (m->slots[j]->hash == h && key_eq(&m->slots[j]->key, k))
                return m->slots[j];
            j = (j + 1) & (m->cap - 1);
        }
    }
    if (m->n >= max)
        return NULL;
    if ((m->n + 1) * 2 > m->cap && !pmap_grow(m))
        return NULL;
    pend *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->key = *k;
    size_t j = (size_t)h & (m->cap - 1);
    while (m->slots[j] != NULL)
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = e;
    m->n++;
    *added = true;
    return e;
}

/* ---- operator writes and snapshots ------------------------------------------------ */

typedef struct op_item {
    struct op_item *next;
    store_op op; /* strings point at the copies below */
    char *owner, *reason, *rule, *cluster, *alias, *name, *value;
    store_done_fn done;
    void *arg;
    orch_err result;
    char message[300];
    /* A batch (store_submit_batch) instead of an op: statements run in one
     * transaction; rows of the last one, when it returns any, go to rows_done. */
    char **stmts;
    size_t nstmts;
    const char *what;
    store_rows_fn rows_done;
    json_t *rows;
    uint64_t affected;
} op_item;

static void op_item_free(op_item *it)
{
    if (it == NULL)
        return;
    free(it->owner);
    free(it->reason);
    free(it->rule);
    free(it->cluster);
    free(it->alias);
    free(it->name);
    free(it->value);
    for (size_t i = 0; i < it->nstmts; i++)
        free(it->stmts[i]);
    free(it->stmts);
    json_decref(it->rows);
    free(it);
}

typedef struct setting {
    char *name, *value;
} setting;

static void settings_free(setting *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* ---- the store ---------------------------------------------------------------- */

struct store {
    /* Configuration (owned copies). */
    char *host, *socket, *user, *password, *database, *node;
    orch_db_conf dbconf; /* points at the strings above */
    char object[300];
    size_t queue_max;
    bool (*write_gate)(void *arg);
    void *write_gate_arg;

    /* The loop side. */
    struct event_base *base;
    orch_wakeup wake; /* the thread hands answers to the loop */
    /* store thread only: a write pass runs (operator writes run between its
     * batches), and the instance rows a forget deletes once it ends */
    bool in_pass;
    orch_key late_forget[16];
    size_t nlate_forget;

    pthread_t thread;
    bool thread_started;

    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    int64_t write_interval_ms, refresh_ms;
    pmap pending;
    size_t inflight; /* entries a write pass has taken and not yet settled */
    op_item *ops_head, *ops_tail;
    op_item *done_head, *done_tail;
    bool refresh_now;
    bool snap_ready;
    reg_operator_row *snap_rows;
    size_t snap_n;
    reg_alias_row *snap_aliases;
    size_t snap_na;
    setting *settings;
    size_t nsettings;
    store_status st; /* queue_depth computed on read */

    /* Store thread only. */
    MYSQL *db;
    int64_t backoff_ms, next_attempt_ms, last_connect_ms;
    int64_t next_refresh_ms, next_write_ms;
    bool down_logged;
    orch_ratelimit query_log; /* SQL errors: once a minute */
    bool published;
    uint64_t published_digest;
    orch_sbuf sql;
};

static void timespec_at_mono(struct timespec *ts, int64_t mono_ms)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

void store_instance_row_fini(store_instance_row *row)
{
    if (row == NULL)
        return;
    free(row->cluster);
    free(row->master_host);
    free(row->state);
    free(row->version);
    free(row->data_center);
    free(row->promotion_rule);
    free(row->report_json);
    row->cluster = row->master_host = row->state = row->version = row->data_center =
        row->promotion_rule = row->report_json = NULL;
}

const char *store_op_kind_name(store_op_kind k)
{
    switch (k) {
    case STORE_OP_BEGIN_DOWNTIME:
        return "begin-downtime";
    case STORE_OP_END_DOWNTIME:
        return "end-downtime";
    case STORE_OP_BEGIN_MAINTENANCE:
        return "begin-maintenance";
    case STORE_OP_END_MAINTENANCE:
        return "end-maintenance";
    case STORE_OP_REGISTER_CANDIDATE:
        return "register-candidate";
    case STORE_OP_END_CANDIDATE:
        return "end-candidate";
    case STORE_OP_SET_CLUSTER_ALIAS:
        return "set-cluster-alias";
    case STORE_OP_SET_GLOBAL_SETTING:
        return "set-global-setting";
    case STORE_OP_FORGET:
        return "forget";
    case STORE_OP__COUNT:
        break;
    }
    return "unknown";
}

/* ---- connections -------------------------------------------------------------------- */

/* Opens a session with orch's settings: utf8mb4, UTC, short lock waits. */
static orch_err session_open(const orch_db_conf *conf, MYSQL **out, orch_db_failure *f, char *msg,
                             size_t msglen)
{
    MYSQL *db = NULL;
    orch_err err = orch_db_connect(conf, &db, f, msg, msglen);
    if (err != ORCH_OK)
        return err;
    /* mysql_set_character_set, not SET NAMES: escaping must know the charset */
    if (mysql_set_character_set(db, "utf8mb4") != 0) {
        *f = ORCH_DB_QUERY;
        err = orch_fail(msg, msglen, ORCH_ERR_MYSQL, "set character set utf8mb4: %s",
                        mysql_error(db));
        mysql_close(db);
        return err;
    }
    if ((err = orch_db_exec(db, STORE_SESSION_SETUP_NAMES, f, msg, msglen)) != ORCH_OK ||
        (err = orch_db_exec(db, STORE_SESSION_SETUP, f, msg, msglen)) != ORCH_OK) {
        mysql_close(db);
        return err;
    }
    *out = db;
    return ORCH_OK;
}

static void close_db(store *s)
{
    if (s->db != NULL) {
        mysql_close(s->db);
        s->db = NULL;
    }
}

/* Records a backend failure: a lost connection is closed and retried with backoff. */
static void note_failure(store *s, orch_db_failure f, const char *what, const char *err)
{
    bool down = f != ORCH_DB_QUERY;
    int64_t now = orch_mono_ms();
    if (down) {
        close_db(s);
        s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_MIN_MS : s->backoff_ms * 2;
        if (s->backoff_ms > BACKOFF_MAX_MS)
            s->backoff_ms = BACKOFF_MAX_MS;
        s->next_attempt_ms = now + s->backoff_ms;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(s->st.last_error, sizeof(s->st.last_error), "%s%s%s", what, what[0] ? ": " : "", err);
    if (down)
        s->st.backend_ok = false;
    pthread_mutex_unlock(&s->mu);
    if (down && !s->down_logged) {
        orch_log(ORCH_LOG_WARN, "ORCH-BACKEND-DOWN", s->object,
                 "store: %s%s%s (%s); writes are queued and retried with backoff", what,
                 what[0] ? ": " : "", err, orch_db_failure_name(f));
        s->down_logged = true;
    } else if (!down) {
        uint64_t suppressed = 0;
        if (orch_ratelimit_allow(&s->query_log, now, 60000, &suppressed))
            orch_log(ORCH_LOG_WARN, NULL, s->object, "store: %s: %s (%llu similar suppressed)",
                     what, err, (unsigned long long)suppressed);
    }
}

static void note_ok(store *s, int64_t rtt_us)
{
    s->backoff_ms = 0;
    pthread_mutex_lock(&s->mu);
    s->st.backend_ok = true;
    if (rtt_us >= 0)
        s->st.last_rtt_us = rtt_us;
    pthread_mutex_unlock(&s->mu);
    if (s->down_logged) {
        orch_log(ORCH_LOG_NOTICE, "ORCH-BACKEND-UP", s->object, "store: backend reachable again");
        s->down_logged = false;
    }
}

/* Connects if needed. Without force, respects the backoff. */
static bool ensure_db(store *s, bool force)
{
    if (s->db != NULL)
        return true;
    int64_t now = orch_mono_ms();
    if (!force && now < s->next_attempt_ms)
        return false;
    s->last_connect_ms = now;
    char err[512];
    orch_db_failure f = ORCH_DB_OK;
    if (session_open(&s->dbconf, &s->db, &f, err, sizeof(err)) != ORCH_OK) {
        s->db = NULL;
        note_failure(s, f == ORCH_DB_QUERY ? ORCH_DB_DOWN : f, "", err); /* err says "connect" */
        return false;
    }
    note_ok(s, -1);
    return true;
}

/* Runs one statement on the store connection, timing it; failures are noted. */
static bool run_sql(store *s, const char *sql, const char *what, MYSQL_RES **res)
{
    char err[512];
    orch_db_failure f = ORCH_DB_OK;
    int64_t t0 = orch_mono_us();
    orch_err rc = res != NULL ? orch_db_query(s->db, sql, res, &f, err, sizeof(err))
                              : orch_db_exec(s->db, sql, &f, err, sizeof(err));
    if (rc != ORCH_OK) {
        note_failure(s, f, what, err);
        return false;
    }
    note_ok(s, orch_mono_us() - t0);
    return true;
}

/* ---- migrations ------------------------------------------------------------------------ */

static orch_err migrate_on(MYSQL *db, const char *node, const char *object, int *version_out,
                           int *applied_out, char *msg, size_t msglen)
{
    char buf[64], err[512];
    bool is_null = false;
    orch_db_failure f;
    orch_err rc;
    snprintf(err, sizeof(err), "SELECT GET_LOCK('orch_migrations', %d)", MIGRATION_LOCK_WAIT_S);
    rc = orch_db_query_value(db, err, buf, sizeof(buf), &is_null, &f, msg, msglen);
    if (rc != ORCH_OK)
        return rc;
    if (is_null || strcmp(buf, "1") != 0)
        return orch_fail(msg, msglen, ORCH_ERR_TIMEOUT,
                         "another coordinator held the migration lock for %d s",
                         MIGRATION_LOCK_WAIT_S);

    int applied = 0, current = 0;
    rc = orch_db_exec(db,
                      "CREATE TABLE IF NOT EXISTS schema_version ("
                      " version INT NOT NULL PRIMARY KEY,"
                      " description VARCHAR(255) NOT NULL,"
                      " applied_at DATETIME(6) NOT NULL,"
                      " applied_by VARCHAR(255) NOT NULL"
                      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
                      &f, msg, msglen);
    if (rc != ORCH_OK)
        goto out;
    rc = orch_db_query_value(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", buf,
                             sizeof(buf), NULL, &f, msg, msglen);
    if (rc != ORCH_OK)
        goto out;
    current = (int)strtol(buf, NULL, 10);
    if (current > store_schema_latest())
        orch_log(ORCH_LOG_WARN, "ORCH-MIGRATION", object,
                 "schema version %d is newer than this coordinator's %d; continuing (later "
                 "migrations only add)",
                 current, store_schema_latest());
    for (size_t i = 0; i < store_nmigrations; i++) {
        const store_migration *m = &store_migrations[i];
        if (m->version <= current)
            continue;
        int64_t t0 = orch_mono_ms();
        size_t k = 0;
        for (; m->statements[k] != NULL; k++) {
            rc = orch_db_exec(db, m->statements[k], &f, err, sizeof(err));
            if (rc != ORCH_OK) {
                orch_fail(msg, msglen, rc, "migration %d (%s), statement %zu: %s", m->version,
                          m->description, k + 1, err);
                orch_log(ORCH_LOG_ERROR, "ORCH-MIGRATION", object, "%s", msg);
                goto out;
            }
        }
        char qdesc[600], qnode[600], sql[1400];
        if (orch_db_quote(db, m->description, qdesc, sizeof(qdesc)) != ORCH_OK ||
            orch_db_quote(db, node ? node : "", qnode, sizeof(qnode)) != ORCH_OK) {
            rc = orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "migration description too long");
            goto out;
        }
        snprintf(sql, sizeof(sql),
                 "INSERT IGNORE INTO schema_version (version, description, applied_at, applied_by) "
                 "VALUES (%d, %s, NOW(6), %s)",
                 m->version, qdesc, qnode);
        rc = orch_db_exec(db, sql, &f, msg, msglen);
        if (rc != ORCH_OK)
            goto out;
        current = m->version;
        applied++;
        orch_log(ORCH_LOG_NOTICE, "ORCH-MIGRATION", object,
                 "applied schema migration %d (%s): %zu statements in %lld ms", m->version,
                 m->description, k, (long long)(orch_mono_ms() - t0));
    }
out:
    /* The lock also goes with the connection; release it anyway. */
    if (orch_db_exec(db, "DO RELEASE_LOCK('orch_migrations')", &f, err, sizeof(err)) != ORCH_OK &&
        rc == ORCH_OK)
        rc = orch_fail(msg, msglen, ORCH_ERR_MYSQL, "release migration lock: %s", err);
    if (rc == ORCH_OK) {
        if (version_out != NULL)
            *version_out = current;
        if (applied_out != NULL)
            *applied_out = applied;
    }
    return rc;
}

static void object_name(const orch_db_conf *db, char *buf, size_t buflen)
{
    if (db->socket != NULL)
        snprintf(buf, buflen, "backend %s", db->socket);
    else
        snprintf(buf, buflen, "backend %s:%u", db->host ? db->host : "", db->port);
}

orch_err store_migrate(const orch_db_conf *db, const char *node, int *version, int *applied,
                       char *msg, size_t msglen)
{
    orch_db_conf c = *db;
    c.connect_timeout_s = STORE_CONNECT_TIMEOUT_S;
    c.rw_timeout_s = MIGRATE_RW_TIMEOUT_S;
    char object[300];
    object_name(db, object, sizeof(object));
    MYSQL *conn = NULL;
    orch_db_failure f;
    char err[512];
    if (session_open(&c, &conn, &f, err, sizeof(err)) != ORCH_OK)
        return orch_fail(msg, msglen, ORCH_ERR_MYSQL, "%s: %s", object, err);
    /* DDL may wait for metadata locks held by running coordinators' statements */
    if (orch_db_exec(conn, "SET SESSION lock_wait_timeout = 60", &f, err, sizeof(err)) != ORCH_OK) {
        mysql_close(conn);
        return orch_fail(msg, msglen, ORCH_ERR_MYSQL, "%s: %s", object, err);
    }
    orch_err rc = migrate_on(conn, node, object, version, applied, msg, msglen);
    mysql_close(conn);
    return rc;
}

/* ---- write-behind ------------------------------------------------------------------------ */

static void submit_row_locked(store *s, store_instance_row *row)
{
    bool added;
    pend *e = pmap_get(&s->pending, &row->key, s->queue_max, &added);
    if (e == NULL) {
        s->st.rows_dropped++;
        store_instance_row_fini(row);
        return;
    }
    if (e->has_row) {
        s->st.rows_coalesced++;
        store_instance_row_fini(&e->row);
    }
    e->row = *row;
    e->has_row = true;
}

void store_submit_instances(store *s, store_instance_row *rows, size_t n)
{
    if (s == NULL) {
        for (size_t i = 0; i < n; i++)
            store_instance_row_fini(&rows[i]);
        free(rows);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        submit_row_locked(s, &rows[i]);
    pthread_mutex_unlock(&s->mu);
    free(rows);
}

void store_submit_last_seen(store *s, const store_last_seen *seen, size_t n)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        bool added;
        pend *e = pmap_get(&s->pending, &seen[i].key, s->queue_max, &added);
        if (e == NULL) {
            s->st.rows_dropped++;
            continue;
        }
        if (!added && e->seen_ms != 0)
            s->st.rows_coalesced++;
        if (seen[i].wall_ms > e->seen_ms)
            e->seen_ms = seen[i].wall_ms;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Puts entries that were not written back into the live map; newer ones win. */
static void requeue(store *s, pend **v, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        pend *old = v[i];
        bool added;
        pend *e = pmap_get(&s->pending, &old->key, s->queue_max, &added);
        if (e == NULL) {
            s->st.rows_dropped++;
            pend_free(old);
            continue;
        }
        if (old->has_row && !e->has_row) {
            e->row = old->row;
            e->has_row = true;
            old->has_row = false;
        } else if (old->has_row) {
            s->st.rows_coalesced++;
        }
        if (old->seen_ms > e->seen_ms)
            e->seen_ms = old->seen_ms;
        pend_free(old);
    }
    pthread_mutex_unlock(&s->mu);
}

static int pend_cmp(const void *a, const void *b)
{
    const pend *x = *(const pend *const *)a, *y = *(const pend *const *)b;
    return orch_key_compare(&x->key, &y->key);
}

static void sb_time(orch_sbuf *b, int64_t wall_ms)
{
    if (wall_ms <= 0)
        orch_sbuf_fmt(b, "NOW(6)");
    else
        orch_sbuf_fmt(b, "FROM_UNIXTIME(%lld.%03lld)", (long long)(wall_ms / 1000),
                      (long long)(wall_ms % 1000));
}

static void sql_rows(store *s, pend **v, size_t n)
{
    orch_sbuf *b = &s->sql;
    orch_sbuf_reset(b);
    orch_sbuf_fmt(b,
                  "INSERT INTO instance (hostname, port, cluster, master_host, master_port, state, "
                  "read_only, server_id, version, data_center, promotion_rule, report, first_seen, "
                  "last_seen, updated_at) VALUES ");
    for (size_t i = 0; i < n; i++) {
        const store_instance_row *r = &v[i]->row;
        int64_t seen = v[i]->seen_ms > r->last_seen_wall_ms ? v[i]->seen_ms : r->last_seen_wall_ms;
        orch_sbuf_fmt(b, "%s(", i ? "," : "");
        sb_quote(b, s->db, v[i]->key.host);
        orch_sbuf_fmt(b, ",%u,", (unsigned)v[i]->key.port);
        sb_quote(b, s->db, r->cluster);
        orch_sbuf_fmt(b, ",");
        sb_quote(b, s->db, r->master_host);
        orch_sbuf_fmt(b, ",%u,", (unsigned)r->master_port);
        sb_quote(b, s->db, r->state);
        orch_sbuf_fmt(b, ",%d,%" PRIu32 ",", r->read_only ? 1 : 0, r->server_id);
        sb_quote(b, s->db, r->version);
        orch_sbuf_fmt(b, ",");
        sb_quote(b, s->db, r->data_center);
        orch_sbuf_fmt(b, ",");
        sb_quote(b, s->db, r->promotion_rule);
        orch_sbuf_fmt(b, ",");
        if (r->report_json != NULL)
            sb_quote(b, s->db, r->report_json);
        else
            orch_sbuf_fmt(b, "NULL");
        orch_sbuf_fmt(b, ",");
        sb_time(b, seen);
        orch_sbuf_fmt(b, ",");
        sb_time(b, seen);
        orch_sbuf_fmt(b, ",NOW(6))");
    }
    orch_sbuf_fmt(b, " ON DUPLICATE KEY UPDATE cluster = VALUES(cluster), "
                     "master_host = VALUES(master_host), master_port = VALUES(master_port), "
                     "state = VALUES(state), read_only = VALUES(read_only), "
                     "server_id = VALUES(server_id), version = VALUES(version), "
                     "data_center = VALUES(data_center), promotion_rule = VALUES(promotion_rule), "
                     "report = VALUES(report), last_seen = GREATEST(last_seen, VALUES(last_seen)), "
                     "updated_at = VALUES(updated_at)");
}

/* Last-seen only: updates rows that exist, creates none. */
static void sql_seen(store *s, pend **v, size_t n)
{
    orch_sbuf *b = &s->sql;
    orch_sbuf_reset(b);
    orch_sbuf_fmt(b, "UPDATE instance i JOIN (");
    for (size_t i = 0; i < n; i++) {
        orch_sbuf_fmt(b, "%sSELECT ", i ? " UNION ALL " : "");
        sb_quote(b, s->db, v[i]->key.host);
        orch_sbuf_fmt(b, " AS h, %u AS p, ", (unsigned)v[i]->key.port);
        sb_time(b, v[i]->seen_ms);
        orch_sbuf_fmt(b, " AS ls");
    }
    orch_sbuf_fmt(b, ") v ON i.hostname = v.h AND i.port = v.p "
                     "SET i.last_seen = GREATEST(i.last_seen, v.ls)");
}

static void run_ops(store *s);

/* Deletes k's instance row (a forget): store thread. */
static void delete_row(store *s, const orch_key *k)
{
    char object[ORCH_KEY_STRLEN];
    orch_sbuf_reset(&s->sql);
    orch_sbuf_fmt(&s->sql, "DELETE FROM instance WHERE hostname = ");
    sb_quote(&s->sql, s->db, k->host);
    orch_sbuf_fmt(&s->sql, " AND port = %u", (unsigned)k->port);
    if (s->sql.oom || !run_sql(s, s->sql.p, "forget", NULL)) {
        char why[256];
        pthread_mutex_lock(&s->mu);
        snprintf(why, sizeof(why), "%s", s->sql.oom ? "out of memory" : s->st.last_error);
        pthread_mutex_unlock(&s->mu);
        orch_warn(orch_key_format(k, object, sizeof(object)), "forget: its instance row stays (%s)",
                  why);
    }
}

/*
 * A forgotten instance's stored row goes, and what is queued for it is not
 * written any more: its pending row is dropped, and when a write pass is
 * running (a forget runs between its batches), the delete waits for the pass
 * to end so that the pass cannot write the row back.
 */
static void forget_row(store *s, const orch_key *k)
{
    bool added;
    pthread_mutex_lock(&s->mu);
    pend *e = pmap_get(&s->pending, k, 0, &added); /* max 0: never adds */
    if (e != NULL && e->has_row) {
        store_instance_row_fini(&e->row);
        e->has_row = false; /* a last-seen update of a deleted row changes nothing */
    }
    pthread_mutex_unlock(&s->mu);
    if (s->in_pass && s->nlate_forget < sizeof(s->late_forget) / sizeof(s->late_forget[0]))
        s->late_forget[s->nlate_forget++] = *k;
    else
        delete_row(s, k);
}

/*
 * Writes the pending map. Returns true when everything taken was written (or
 * there was nothing); on failure the rest is back in the map.
 */
static bool write_pass(store *s, bool final)
{
    pthread_mutex_lock(&s->mu);
    if (s->pending.n == 0) {
        pthread_mutex_unlock(&s->mu);
        return true;
    }
    pmap taken = s->pending;
    s->pending = (pmap){0};
    s->inflight = taken.n;
    pthread_mutex_unlock(&s->mu);

    if (s->write_gate != NULL && !s->write_gate(s->write_gate_arg)) {
        pthread_mutex_lock(&s->mu);
        s->st.rows_discarded += taken.n;
        s->inflight = 0;
        pthread_mutex_unlock(&s->mu);
        orch_log(ORCH_LOG_INFO, NULL, s->object,
                 "store: not leading: %zu queued instance rows discarded", taken.n);
        pmap_free(&taken);
        return true;
    }

    /* Full rows first, then last-seen-only entries; each sorted by key so that
     * concurrent writers (an old leader still flushing) lock rows in one order. */
    pend **v = malloc(taken.n * sizeof(*v));
    if (v == NULL) {
        orch_log(ORCH_LOG_ERROR, NULL, s->object, "store: out of memory; write pass postponed");
        for (size_t i = 0; i < taken.cap; i++) {
            if (taken.slots[i] != NULL)
                requeue(s, &taken.slots[i], 1); /* frees the entry */
        }
        free(taken.slots);
        pthread_mutex_lock(&s->mu);
        s->inflight = 0;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    size_t nrows = 0, nseen = 0;
    for (size_t i = 0; i < taken.cap; i++) {
        if (taken.slots[i] != NULL && taken.slots[i]->has_row)
            v[nrows++] = taken.slots[i];
    }
    for (size_t i = 0; i < taken.cap; i++) {
        if (taken.slots[i] != NULL && !taken.slots[i]->has_row)
            v[nrows + nseen++] = taken.slots[i];
    }
    size_t total = nrows + nseen;
    free(taken.slots); /* the entries now live in v */
    qsort(v, nrows, sizeof(*v), pend_cmp);
    qsort(v + nrows, nseen, sizeof(*v), pend_cmp);

    size_t done = 0;
    size_t singly_until = 0; /* after an SQL error, rows go one by one up to here */
    bool ok = ensure_db(s, final);
    if (!ok) {
        pthread_mutex_lock(&s->mu);
        s->st.write_failures++;
        pthread_mutex_unlock(&s->mu);
    }
    s->in_pass = true;
    while (ok && done < total) {
        if (s->write_gate != NULL && !s->write_gate(s->write_gate_arg)) {
            /* leadership ended during the pass: the rest is not ours to write */
            pthread_mutex_lock(&s->mu);
            s->st.rows_discarded += total - done;
            s->inflight = 0;
            pthread_mutex_unlock(&s->mu);
            orch_log(ORCH_LOG_INFO, NULL, s->object,
                     "store: not leading: %zu queued instance rows discarded", total - done);
            for (size_t i = done; i < total; i++)
                pend_free(v[i]);
            done = total;
            break;
        }
        bool rows = done < nrows;
        size_t end = rows ? nrows : total;
        size_t n = 0;
        /* size the batch by rows and by statement bytes */
        size_t bytes = 0, max = done < singly_until ? 1 : BATCH_ROWS;
        while (done + n < end && n < max && bytes < BATCH_BYTES) {
            const pend *e = v[done + n];
            bytes += 2 * (strlen(e->key.host) + 200);
            if (rows && e->row.report_json != NULL)
                bytes += 2 * strlen(e->row.report_json);
            n++;
        }
        if (rows)
            sql_rows(s, v + done, n);
        else
            sql_seen(s, v + done, n);
        bool written =
            !s->sql.oom && run_sql(s, s->sql.p, rows ? "write instances" : "write last-seen", NULL);
        if (!written) {
            unsigned e = s->db != NULL && !s->sql.oom ? mysql_errno(s->db) : 0;
            pthread_mutex_lock(&s->mu);
            s->st.write_failures++;
            pthread_mutex_unlock(&s->mu);
            if (s->db == NULL || s->sql.oom || e == ER_LOCK_WAIT_TIMEOUT || e == ER_LOCK_DEADLOCK) {
                /* the backend is away, or busy: all of it again later */
                if (s->db != NULL)
                    s->next_attempt_ms = orch_mono_ms() + BACKOFF_MIN_MS;
                ok = false;
                break;
            }
            if (n > 1) {
                /* Some row is refused (too long a field in strict mode, ...):
                 * find it by writing this batch one row at a time. */
                singly_until = done + n;
                continue;
            }
            char name[ORCH_KEY_STRLEN];
            orch_log(ORCH_LOG_ERROR, NULL, orch_key_format(&v[done]->key, name, sizeof(name)),
                     "store: the backend refuses this instance's row; dropped");
        }
        for (size_t i = 0; i < n; i++)
            pend_free(v[done + i]);
        done += n;
        pthread_mutex_lock(&s->mu);
        s->inflight -= n;
        if (written) {
            s->st.rows_written += n;
            s->st.last_write_ok_ms = orch_mono_ms();
        } else {
            s->st.rows_dropped += n;
        }
        pthread_mutex_unlock(&s->mu);
        if (!final)
            run_ops(s); /* keep operator writes responsive during a long pass */
    }
    s->in_pass = false;
    for (size_t i = 0; i < s->nlate_forget; i++)
        delete_row(s, &s->late_forget[i]);
    s->nlate_forget = 0;
    if (done < total)
        requeue(s, v + done, total - done);
    pthread_mutex_lock(&s->mu);
    s->inflight = 0;
    pthread_mutex_unlock(&s->mu);
    free(v);
    return ok;
}

/* ---- operator state ------------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static int oprow_cmp(const void *a, const void *b)
{
    return orch_key_compare(&((const reg_operator_row *)a)->key,
                            &((const reg_operator_row *)b)->key);
}

static void oprow_fini(reg_operator_row *r)
{
    free(r->op.downtime_owner);
    free(r->op.downtime_reason);
    free(r->op.maintenance_owner);
    free(r->op.maintenance_reason);
}

void store_operator_state_free(reg_operator_row *rows, size_t n, reg_alias_row *aliases, size_t na)
{
    for (size_t i = 0; i < n; i++)
        oprow_fini(&rows[i]);
    free(rows);
    for (size_t i = 0; i < na; i++) {
        free((char *)aliases[i].cluster);
        free((char *)aliases[i].alias);
    }
    free(aliases);
}

static int parse_rule(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "prefer") == 0)
        return ORCH__PROMOTION_RULE__PROMOTION_PREFER;
    if (strcasecmp(s, "neutral") == 0)
        return ORCH__PROMOTION_RULE__PROMOTION_NEUTRAL;
    if (strcasecmp(s, "prefer_not") == 0)
        return ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT;
    if (strcasecmp(s, "must_not") == 0)
        return ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT;
    return -1;
}

/* Collected rows before merging: one part (downtime, maintenance or candidate) each. */
typedef struct oprows {
    reg_operator_row *v;
    size_t n, cap;
    bool oom;
} oprows;

static reg_operator_row *oprows_add(oprows *o, const char *host, const char *port)
{
    char *end = NULL;
    long p = port ? strtol(port, &end, 10) : 0;
    orch_key k;
    if (host == NULL || end == NULL || *end != '\0' ||
        orch_key_make(host, p, &k, NULL, 0) != ORCH_OK)
        return NULL;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 32;
        reg_operator_row *v = realloc(o->v, cap * sizeof(*v));
        if (v == NULL) {
            o->oom = true;
            return NULL;
        }
        o->v = v;
        o->cap = cap;
    }
    reg_operator_row *r = &o->v[o->n++];
    memset(r, 0, sizeof(*r));
    r->key = k;
    r->op.promotion_override = -1;
    return r;
}

static char *dup_or_empty(const char *s, bool *oom)
{
    char *d = strdup(s ? s : "");
    if (d == NULL)
        *oom = true;
    return d;
}

/* Merges rows with equal keys (sorted first) into one. */
static void oprows_merge(oprows *o)
{
    if (o->n == 0)
        return;
    qsort(o->v, o->n, sizeof(*o->v), oprow_cmp);
    size_t w = 0;
    for (size_t i = 1; i < o->n; i++) {
        reg_operator_row *dst = &o->v[w], *src = &o->v[i];
        if (!orch_key_equal(&dst->key, &src->key)) {
            o->v[++w] = *src;
            continue;
        }
        if (src->op.downtime_until_ms != 0) {
            free(dst->op.downtime_owner);
            free(dst->op.downtime_reason);
            dst->op.downtime_until_ms = src->op.downtime_until_ms;
            dst->op.downtime_owner = src->op.downtime_owner;
            dst->op.downtime_reason = src->op.downtime_reason;
        }
        if (src->op.maintenance_until_ms != 0) {
            free(dst->op.maintenance_owner);
            free(dst->op.maintenance_reason);
            dst->op.maintenance_until_ms = src->op.maintenance_until_ms;
            dst->op.maintenance_owner = src->op.maintenance_owner;
            dst->op.maintenance_reason = src->op.maintenance_reason;
        }
        if (src->op.promotion_override >= 0)
            dst->op.promotion_override = src->op.promotion_override;
        if (src->op.forgotten_at_ms != 0)
            dst->op.forgotten_at_ms = src->op.forgotten_at_ms;
    }
    o->n = w + 1;
}

/* Reads one of downtime / maintenance into o. */
static bool read_locks(store *s, const char *table, bool maintenance, oprows *o)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT hostname, port, FLOOR(UNIX_TIMESTAMP(expires_at) * 1000), owner, reason "
             "FROM %s WHERE expires_at > NOW(6)",
             table);
    MYSQL_RES *res = NULL;
    if (!run_sql(s, sql, "read operator state", &res))
        return false;
    MYSQL_ROW r;
    while (res != NULL && (r = mysql_fetch_row(res)) != NULL) {
        reg_operator_row *row = oprows_add(o, r[0], r[1]);
        if (row == NULL)
            continue;
        int64_t until = r[2] ? strtoll(r[2], NULL, 10) : 1;
        if (until <= 0)
            until = 1;
        if (maintenance) {
            row->op.maintenance_until_ms = until;
            row->op.maintenance_owner = dup_or_empty(r[3], &o->oom);
            row->op.maintenance_reason = dup_or_empty(r[4], &o->oom);
        } else {
            row->op.downtime_until_ms = until;
            row->op.downtime_owner = dup_or_empty(r[3], &o->oom);
            row->op.downtime_reason = dup_or_empty(r[4], &o->oom);
        }
    }
    if (res != NULL)
        mysql_free_result(res);
    return true;
}

static uint64_t snapshot_digest(const oprows *o, const reg_alias_row *a, size_t na,
                                const setting *st, size_t nst)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < o->n; i++) {
        const reg_operator_row *r = &o->v[i];
        h = fnv_str(h, r->key.host);
        h = fnv(h, &r->key.port, sizeof(r->key.port));
        h = fnv(h, &r->op.downtime_until_ms, sizeof(r->op.downtime_until_ms));
        h = fnv_str(h, r->op.downtime_owner);
        h = fnv_str(h, r->op.downtime_reason);
        h = fnv(h, &r->op.maintenance_until_ms, sizeof(r->op.maintenance_until_ms));
        h = fnv_str(h, r->op.maintenance_owner);
        h = fnv_str(h, r->op.maintenance_reason);
        h = fnv(h, &r->op.promotion_override, sizeof(r->op.promotion_override));
        h = fnv(h, &r->op.forgotten_at_ms, sizeof(r->op.forgotten_at_ms));
    }
    h = fnv_str(h, "--aliases");
    for (size_t i = 0; i < na; i++) {
        h = fnv_str(h, a[i].cluster);
        h = fnv_str(h, a[i].alias);
    }
    h = fnv_str(h, "--settings");
    for (size_t i = 0; i < nst; i++) {
        h = fnv_str(h, st[i].name);
        h = fnv_str(h, st[i].value);
    }
    return h;
}

/* Re-reads operator state; publishes a snapshot when it changed. */
static void refresh(store *s)
{
    if (!ensure_db(s, false))
        return;
    oprows o = {0};
    reg_alias_row *aliases = NULL;
    size_t na = 0;
    setting *settings = NULL;
    size_t nst = 0;
    MYSQL_RES *res = NULL;
    MYSQL_ROW r;
    bool oom = false;

    if (!read_locks(s, "downtime", false, &o) || !read_locks(s, "maintenance", true, &o))
        goto out;
    if (!run_sql(s,
                 "SELECT hostname, port, promotion_rule FROM candidate WHERE expires_at > NOW(6)",
                 "read operator state", &res))
        goto out;
    while (res != NULL && (r = mysql_fetch_row(res)) != NULL) {
        int rule = parse_rule(r[2]);
        if (rule < 0)
            continue;
        reg_operator_row *row = oprows_add(&o, r[0], r[1]);
        if (row != NULL)
            row->op.promotion_override = rule;
    }
    if (res != NULL)
        mysql_free_result(res);
    res = NULL;

    /* A day is plenty for every coordinator to drop them. forgotten_at is the
     * backend's clock and the registry compares this coordinator's: the time
     * is moved by their difference (measured here), rounded up to the second
     * so that the snapshot does not change with the measurement's jitter. */
    if (!run_sql(s,
                 "SELECT hostname, port, FLOOR(UNIX_TIMESTAMP(forgotten_at) * 1000), "
                 "FLOOR(UNIX_TIMESTAMP(NOW(6)) * 1000) FROM forget "
                 "WHERE forgotten_at > NOW(6) - INTERVAL 1 DAY",
                 "read operator state", &res))
        goto out;
    int64_t local_now = orch_wall_ms();
    while (res != NULL && (r = mysql_fetch_row(res)) != NULL) {
        reg_operator_row *row = oprows_add(&o, r[0], r[1]);
        int64_t at = r[2] ? strtoll(r[2], NULL, 10) : 0;
        int64_t db_now = r[3] ? strtoll(r[3], NULL, 10) : 0;
        if (row == NULL || at <= 0 || db_now <= 0)
            continue;
        int64_t local = at + (local_now - db_now);
        row->op.forgotten_at_ms = local > 0 ? (local + 999) / 1000 * 1000 : 1;
    }
    if (res != NULL)
        mysql_free_result(res);
    res = NULL;

    if (!run_sql(s, "SELECT cluster, alias FROM cluster_alias ORDER BY cluster",
                 "read operator state", &res))
        goto out;
    size_t nres = res != NULL ? (size_t)mysql_num_rows(res) : 0;
    if (nres > 0 && (aliases = calloc(nres, sizeof(*aliases))) == NULL)
        oom = true;
    while (!oom && res != NULL && (r = mysql_fetch_row(res)) != NULL && na < nres) {
        aliases[na].cluster = dup_or_empty(r[0], &oom);
        aliases[na].alias = dup_or_empty(r[1], &oom);
        na++;
    }
    if (res != NULL)
        mysql_free_result(res);
    res = NULL;

    if (!run_sql(s, "SELECT name, value FROM global_settings ORDER BY name", "read operator state",
                 &res))
        goto out;
    nres = res != NULL ? (size_t)mysql_num_rows(res) : 0;
    if (nres > 0 && (settings = calloc(nres, sizeof(*settings))) == NULL)
        oom = true;
    while (!oom && res != NULL && (r = mysql_fetch_row(res)) != NULL && nst < nres) {
        settings[nst].name = dup_or_empty(r[0], &oom);
        settings[nst].value = dup_or_empty(r[1], &oom);
        nst++;
    }
    if (res != NULL)
        mysql_free_result(res);
    res = NULL;

    if (oom || o.oom) {
        orch_log(ORCH_LOG_ERROR, NULL, s->object, "store: out of memory reading operator state");
        goto out;
    }
    oprows_merge(&o);
    uint64_t digest = snapshot_digest(&o, aliases, na, settings, nst);
    pthread_mutex_lock(&s->mu);
    s->st.last_refresh_ok_ms = orch_mono_ms();
    if (s->published && digest == s->published_digest) {
        pthread_mutex_unlock(&s->mu);
        goto out; /* nothing new: free what we read */
    }
    store_operator_state_free(s->snap_rows, s->snap_n, s->snap_aliases, s->snap_na);
    s->snap_rows = o.v;
    s->snap_n = o.n;
    s->snap_aliases = aliases;
    s->snap_na = na;
    s->snap_ready = true;
    settings_free(s->settings, s->nsettings);
    s->settings = settings;
    s->nsettings = nst;
    s->published = true;
    s->published_digest = digest;
    pthread_mutex_unlock(&s->mu);
    return;
out:
    if (res != NULL)
        mysql_free_result(res);
    store_operator_state_free(o.v, o.n, aliases, na);
    settings_free(settings, nst);
}

bool store_take_operator_state(store *s, reg_operator_row **rows, size_t *n,
                               reg_alias_row **aliases, size_t *na)
{
    if (s == NULL)
        return false;
    pthread_mutex_lock(&s->mu);
    bool ready = s->snap_ready;
    if (ready) {
        *rows = s->snap_rows;
        *n = s->snap_n;
        *aliases = s->snap_aliases;
        *na = s->snap_na;
        s->snap_rows = NULL;
        s->snap_aliases = NULL;
        s->snap_n = s->snap_na = 0;
        s->snap_ready = false;
    }
    pthread_mutex_unlock(&s->mu);
    return ready;
}

bool store_get_setting(store *s, const char *name, char *buf, size_t buflen)
{
    if (s == NULL || name == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nsettings && !found; i++) {
        if (strcmp(s->settings[i].name, name) == 0) {
            snprintf(buf, buflen, "%s", s->settings[i].value);
            found = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* ---- operator writes ------------------------------------------------------------------------ */

static bool op_needs_key(store_op_kind k)
{
    return k <= STORE_OP_END_CANDIDATE || k == STORE_OP_FORGET;
}

static orch_err op_check(const store_op *op, char *msg, size_t msglen)
{
    if ((int)op->kind < 0 || op->kind >= STORE_OP__COUNT)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "unknown operator write %d", (int)op->kind);
    const char *what = store_op_kind_name(op->kind);
    if (op_needs_key(op->kind) && (op->key.host[0] == '\0' || op->key.port == 0))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s: an instance host:port is required",
                         what);
    bool timed = op->kind == STORE_OP_BEGIN_DOWNTIME || op->kind == STORE_OP_BEGIN_MAINTENANCE ||
                 op->kind == STORE_OP_REGISTER_CANDIDATE;
    if (timed && (op->duration_ms <= 0 || op->duration_ms > MAX_DURATION_MS))
        return orch_fail(msg, msglen, ORCH_ERR_RANGE,
                         "%s: duration must be between 1 ms and 10 years", what);
    if (op->owner != NULL && strlen(op->owner) > 255)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "%s: owner longer than 255 bytes", what);
    if (op->reason != NULL && strlen(op->reason) > 4096)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "%s: reason longer than 4096 bytes", what);
    if (op->kind == STORE_OP_REGISTER_CANDIDATE && parse_rule(op->rule) < 0)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "%s: promotion rule '%s' is not prefer, neutral, prefer_not or must_not",
                         what, op->rule ? op->rule : "");
    if (op->kind == STORE_OP_SET_CLUSTER_ALIAS) {
        if (op->cluster == NULL || op->cluster[0] == '\0' || strlen(op->cluster) > 300)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s: a cluster name is required", what);
        if (op->alias != NULL && strlen(op->alias) > 255)
            return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "%s: alias longer than 255 bytes", what);
    }
    if (op->kind == STORE_OP_SET_GLOBAL_SETTING &&
        (op->name == NULL || op->name[0] == '\0' || strlen(op->name) > 128))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "%s: a setting name (<= 128 bytes) is required", what);
    return ORCH_OK;
}

static bool dup_field(const char *src, char **dst)
{
    *dst = NULL;
    if (src == NULL)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

/* Queues it for the store's thread (or frees it, when the store is stopping). */
static orch_err enqueue(store *s, op_item *it, char *msg, size_t msglen)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        op_item_free(it);
        return orch_fail(msg, msglen, ORCH_ERR_CLOSED, "the store is stopping");
    }
    if (s->ops_tail != NULL)
        s->ops_tail->next = it;
    else
        s->ops_head = it;
    s->ops_tail = it;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return ORCH_OK;
}

orch_err store_submit_batch(store *s, const char *what, char **stmts, size_t n, store_rows_fn done,
                            void *arg, char *msg, size_t msglen)
{
    if (s == NULL || stmts == NULL || n == 0) {
        for (size_t i = 0; stmts != NULL && i < n; i++)
            free(stmts[i]);
        free(stmts);
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty batch");
    }
    op_item *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        for (size_t i = 0; i < n; i++)
            free(stmts[i]);
        free(stmts);
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    }
    it->stmts = stmts;
    it->nstmts = n;
    it->what = what;
    it->rows_done = done;
    it->arg = arg;
    return enqueue(s, it, msg, msglen);
}

void store_sql_string(orch_sbuf *b, const char *s)
{
    static const char digits[] = "0123456789abcdef";
    if (s == NULL) {
        orch_sbuf_str(b, "NULL");
        return;
    }
    if (*s == '\0') {
        orch_sbuf_str(b, "''");
        return;
    }
    size_t n = strlen(s);
    if (!orch_sbuf_reserve(b, 2 * n + 32))
        return;
    orch_sbuf_str(b, "CONVERT(X'");
    for (size_t i = 0; i < n; i++) {
        char hex[2] = {digits[(unsigned char)s[i] >> 4], digits[(unsigned char)s[i] & 15]};
        orch_sbuf_add(b, hex, 2);
    }
    orch_sbuf_str(b, "' USING utf8mb4)");
}

orch_err store_submit_op(store *s, const store_op *op, store_done_fn done, void *arg, char *msg,
                         size_t msglen)
{
    if (s == NULL || op == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no store");
    orch_err rc = op_check(op, msg, msglen);
    if (rc != ORCH_OK)
        return rc;
    op_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    it->op = *op;
    if (!dup_field(op->owner, &it->owner) || !dup_field(op->reason, &it->reason) ||
        !dup_field(op->rule, &it->rule) || !dup_field(op->cluster, &it->cluster) ||
        !dup_field(op->alias, &it->alias) || !dup_field(op->name, &it->name) ||
        !dup_field(op->value, &it->value)) {
        op_item_free(it);
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    }
    it->op.owner = it->owner;
    it->op.reason = it->reason;
    it->op.rule = it->rule;
    it->op.cluster = it->cluster;
    it->op.alias = it->alias;
    it->op.name = it->name;
    it->op.value = it->value;
    it->done = done;
    it->arg = arg;
    return enqueue(s, it, msg, msglen);
}

static void on_alias_moved(orch_err result, const char *message, void *arg)
{
    char *what = arg;
    if (result == ORCH_OK)
        orch_log(ORCH_LOG_NOTICE, "ORCH-ALIAS-MOVED", NULL, "%s", what);
    else
        orch_log(ORCH_LOG_ERROR, "ORCH-ALIAS-MOVED", NULL,
                 "%s: not saved (%s); set it again with set-cluster-alias", what, message);
    free(what);
}

void store_move_cluster_alias(store *s, const char *alias, const char *new_cluster)
{
    if (alias == NULL || alias[0] == '\0' || new_cluster == NULL)
        return;
    size_t len = strlen(alias) + strlen(new_cluster) + 64;
    char *what = malloc(len);
    char msg[256];
    if (what == NULL)
        return;
    snprintf(what, len, "alias '%s' now names cluster %s", alias, new_cluster);
    store_op op = {.kind = STORE_OP_SET_CLUSTER_ALIAS, .cluster = new_cluster, .alias = alias};
    if (store_submit_op(s, &op, on_alias_moved, what, msg, sizeof(msg)) != ORCH_OK)
        on_alias_moved(ORCH_ERR_IO, msg, what);
}

/* Builds the op's statement into s->sql. */
/* The maintenance row may be taken: expired, or already the requester's. */
#define MAINT_FREE "expires_at < NOW(6) OR owner = VALUES(owner)"

static void op_sql(store *s, const store_op *op)
{
    orch_sbuf *b = &s->sql;
    orch_sbuf_reset(b);
    const char *table =
        op->kind == STORE_OP_BEGIN_DOWNTIME || op->kind == STORE_OP_END_DOWNTIME ? "downtime"
        : op->kind == STORE_OP_BEGIN_MAINTENANCE || op->kind == STORE_OP_END_MAINTENANCE
            ? "maintenance"
            : "candidate";
    switch (op->kind) {
    case STORE_OP_BEGIN_DOWNTIME:
    case STORE_OP_BEGIN_MAINTENANCE:
        /* A lock held by another owner and not expired stays theirs (0 rows
         * affected, refused in run_op). The assignments run left to right and
         * see the new values: owner changes before expires_at, so the test is
         * the same for every column. */
        orch_sbuf_fmt(
            b, "INSERT INTO %s (hostname, port, begun_at, expires_at, owner, reason) VALUES (",
            table);
        sb_quote(b, s->db, op->key.host);
        orch_sbuf_fmt(b, ", %u, NOW(6), NOW(6) + INTERVAL %lld MICROSECOND, ",
                      (unsigned)op->key.port, (long long)op->duration_ms * 1000);
        sb_quote(b, s->db, op->owner);
        orch_sbuf_fmt(b, ", ");
        sb_quote(b, s->db, op->reason);
        orch_sbuf_fmt(b, ") ON DUPLICATE KEY UPDATE "
                         "reason = IF(" MAINT_FREE ", VALUES(reason), reason), "
                         "begun_at = IF(" MAINT_FREE ", VALUES(begun_at), begun_at), "
                         "owner = IF(" MAINT_FREE ", VALUES(owner), owner), "
                         "expires_at = IF(" MAINT_FREE ", VALUES(expires_at), expires_at)");
        break;
    case STORE_OP_END_DOWNTIME:
    case STORE_OP_END_MAINTENANCE:
    case STORE_OP_END_CANDIDATE:
        /* An expired row is removed too; no row at all is "nothing to end". */
        orch_sbuf_fmt(b, "DELETE FROM %s WHERE hostname = ", table);
        sb_quote(b, s->db, op->key.host);
        orch_sbuf_fmt(b, " AND port = %u", (unsigned)op->key.port);
        break;
    case STORE_OP_REGISTER_CANDIDATE:
        orch_sbuf_fmt(b, "INSERT INTO candidate (hostname, port, promotion_rule, registered_at, "
                         "expires_at) VALUES (");
        sb_quote(b, s->db, op->key.host);
        orch_sbuf_fmt(b, ", %u, ", (unsigned)op->key.port);
        sb_quote(b, s->db, op->rule);
        orch_sbuf_fmt(b,
                      ", NOW(6), NOW(6) + INTERVAL %lld MICROSECOND) ON DUPLICATE KEY UPDATE "
                      "promotion_rule = VALUES(promotion_rule), "
                      "registered_at = VALUES(registered_at), expires_at = VALUES(expires_at)",
                      (long long)op->duration_ms * 1000);
        break;
    case STORE_OP_SET_CLUSTER_ALIAS:
        if (op->alias == NULL || op->alias[0] == '\0') {
            orch_sbuf_fmt(b, "DELETE FROM cluster_alias WHERE cluster = ");
            sb_quote(b, s->db, op->cluster);
        } else {
            /* REPLACE also removes the row that held this alias for another cluster. */
            orch_sbuf_fmt(b, "REPLACE INTO cluster_alias (cluster, alias, updated_at) VALUES (");
            sb_quote(b, s->db, op->cluster);
            orch_sbuf_fmt(b, ", ");
            sb_quote(b, s->db, op->alias);
            orch_sbuf_fmt(b, ", NOW(6))");
        }
        break;
    case STORE_OP_FORGET:
        orch_sbuf_fmt(b, "INSERT INTO forget (hostname, port, forgotten_at) VALUES (");
        sb_quote(b, s->db, op->key.host);
        orch_sbuf_fmt(b, ", %u, NOW(6)) ON DUPLICATE KEY UPDATE forgotten_at = NOW(6)",
                      (unsigned)op->key.port);
        break;
    case STORE_OP_SET_GLOBAL_SETTING:
        if (op->value == NULL) {
            orch_sbuf_fmt(b, "DELETE FROM global_settings WHERE name = ");
            sb_quote(b, s->db, op->name);
        } else {
            orch_sbuf_fmt(b, "INSERT INTO global_settings (name, value, updated_at) VALUES (");
            sb_quote(b, s->db, op->name);
            orch_sbuf_fmt(b, ", ");
            sb_quote(b, s->db, op->value);
            orch_sbuf_fmt(b, ", NOW(6)) ON DUPLICATE KEY UPDATE value = VALUES(value), "
                             "updated_at = VALUES(updated_at)");
        }
        break;
    case STORE_OP__COUNT:
        break;
    }
}

/* Converts a result set to a JSON array of objects (column name -> string or null). */
static json_t *rows_json(MYSQL_RES *res)
{
    json_t *arr = json_array();
    unsigned nf = mysql_num_fields(res);
    MYSQL_FIELD *f = mysql_fetch_fields(res);
    MYSQL_ROW row;
    while (arr != NULL && (row = mysql_fetch_row(res)) != NULL) {
        unsigned long *len = mysql_fetch_lengths(res);
        json_t *o = json_object();
        for (unsigned i = 0; o != NULL && i < nf; i++)
            json_object_set_new(o, f[i].name,
                                row[i] ? json_stringn_nocheck(row[i], len[i]) : json_null());
        json_array_append_new(arr, o);
    }
    return arr;
}

/* Runs a batch in one transaction; any failure rolls it back. */
static void run_batch(store *s, op_item *it)
{
    bool force = orch_mono_ms() - s->last_connect_ms >= OP_RECONNECT_MIN_MS;
    if (!ensure_db(s, force)) {
        it->result = ORCH_ERR_MYSQL;
        pthread_mutex_lock(&s->mu);
        snprintf(it->message, sizeof(it->message), "%s: backend unavailable (%s)", it->what,
                 s->st.last_error);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    bool ok = run_sql(s, "START TRANSACTION", it->what, NULL);
    for (size_t i = 0; ok && i < it->nstmts; i++) {
        MYSQL_RES *res = NULL;
        bool last = i + 1 == it->nstmts;
        ok = run_sql(s, it->stmts[i], it->what, last ? &res : NULL);
        if (ok && last) {
            it->affected = res ? 0 : (uint64_t)mysql_affected_rows(s->db);
            if (res != NULL) {
                it->rows = rows_json(res);
                mysql_free_result(res);
            }
        }
    }
    if (ok)
        ok = run_sql(s, "COMMIT", it->what, NULL);
    if (!ok) {
        /* a failed ROLLBACK means a dead connection, which rolls back anyway */
        if (s->db != NULL && orch_db_exec(s->db, "ROLLBACK", NULL, NULL, 0) != ORCH_OK)
            orch_debug(it->what, "ROLLBACK failed; the connection will be reopened");
        it->result = ORCH_ERR_MYSQL;
        pthread_mutex_lock(&s->mu);
        snprintf(it->message, sizeof(it->message), "%s: %s", it->what, s->st.last_error);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    it->result = ORCH_OK;
    snprintf(it->message, sizeof(it->message), "%s: done", it->what);
}

static void run_op(store *s, op_item *it)
{
    char object[ORCH_KEY_STRLEN];
    if (it->stmts != NULL) {
        run_batch(s, it);
        return;
    }
    const store_op *op = &it->op;
    const char *what = store_op_kind_name(op->kind);
    if (op_needs_key(op->kind))
        orch_key_format(&op->key, object, sizeof(object));
    else
        snprintf(object, sizeof(object), "%s", op->cluster ? op->cluster : op->name);
    bool force = orch_mono_ms() - s->last_connect_ms >= OP_RECONNECT_MIN_MS;
    if (!ensure_db(s, force)) {
        it->result = ORCH_ERR_MYSQL;
        pthread_mutex_lock(&s->mu);
        snprintf(it->message, sizeof(it->message), "%s: backend unavailable (%s)", what,
                 s->st.last_error);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    op_sql(s, op);
    if (s->sql.oom) {
        it->result = ORCH_ERR_NOMEM;
        snprintf(it->message, sizeof(it->message), "%s: out of memory", what);
        return;
    }
    if (!run_sql(s, s->sql.p, what, NULL)) {
        it->result = ORCH_ERR_MYSQL;
        pthread_mutex_lock(&s->mu);
        snprintf(it->message, sizeof(it->message), "%s", s->st.last_error);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    my_ulonglong affected = mysql_affected_rows(s->db);
    if (op->kind == STORE_OP_FORGET)
        forget_row(s, &op->key);
    if (op->kind == STORE_OP_BEGIN_MAINTENANCE && affected == 0) {
        it->result = ORCH_ERR_REFUSED;
        snprintf(it->message, sizeof(it->message),
                 "%s %.200s: another owner holds the lock (end it first, or let it expire)", what,
                 object);
        orch_log(ORCH_LOG_WARN, "ORCH-OPERATOR-STATE", object,
                 "%s by %s refused: locked by another", what, op->owner ? op->owner : "?");
        return;
    }
    it->result = ORCH_OK;
    bool ending = op->kind == STORE_OP_END_DOWNTIME || op->kind == STORE_OP_END_MAINTENANCE ||
                  op->kind == STORE_OP_END_CANDIDATE;
    snprintf(it->message, sizeof(it->message), "%s %s: %s", what, object,
             ending && affected == 0 ? "nothing to end" : "done");
    const char *detail = op->kind == STORE_OP_SET_CLUSTER_ALIAS    ? op->alias
                         : op->kind == STORE_OP_SET_GLOBAL_SETTING ? op->value
                         : op->kind == STORE_OP_REGISTER_CANDIDATE ? op->rule
                                                                   : NULL;
    orch_log(ORCH_LOG_NOTICE, "ORCH-OPERATOR-STATE", object, "%s%s%s%s%s%s%s", what,
             detail ? " " : "", detail ? detail : "", op->owner ? " by " : "",
             op->owner ? op->owner : "", op->reason ? ": " : "", op->reason ? op->reason : "");
}

/* Executes every queued op, answering each through the done queue. */
static void run_ops(store *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        op_item *it = s->ops_head;
        if (it == NULL || s->stopping) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        s->ops_head = it->next;
        if (s->ops_head == NULL)
            s->ops_tail = NULL;
        it->next = NULL;
        pthread_mutex_unlock(&s->mu);

        run_op(s, it);

        pthread_mutex_lock(&s->mu);
        if (it->result == ORCH_OK) {
            s->st.ops_done++;
            s->refresh_now = true;
        } else {
            s->st.ops_failed++;
        }
        if (s->done_tail != NULL)
            s->done_tail->next = it;
        else
            s->done_head = it;
        s->done_tail = it;
        pthread_mutex_unlock(&s->mu);
        orch_wakeup_notify(&s->wake);
    }
}

/* Loop thread: delivers answers. */
static void deliver_done(store *s)
{
    pthread_mutex_lock(&s->mu);
    op_item *it = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (it != NULL) {
        op_item *next = it->next;
        if (it->rows_done != NULL) {
            it->rows_done(it->result, it->message, it->rows, it->affected, it->arg);
            it->rows = NULL; /* handed over */
        } else if (it->done != NULL) {
            it->done(it->result, it->message, it->arg);
        }
        op_item_free(it);
        it = next;
    }
}

static void on_wake(void *arg)
{
    deliver_done(arg);
}

/* ---- the thread ------------------------------------------------------------------------ */

static void *store_main(void *arg)
{
    store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        int64_t now = orch_mono_ms();
        if (s->ops_head != NULL) {
            pthread_mutex_unlock(&s->mu);
            run_ops(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->refresh_now || now >= s->next_refresh_ms) {
            s->refresh_now = false;
            pthread_mutex_unlock(&s->mu);
            refresh(s);
            pthread_mutex_lock(&s->mu);
            int64_t next = orch_mono_ms() + s->refresh_ms;
            s->next_refresh_ms =
                s->db == NULL && s->next_attempt_ms > next ? s->next_attempt_ms : next;
            continue;
        }
        if (s->pending.n > 0 && now >= s->next_write_ms) {
            pthread_mutex_unlock(&s->mu);
            bool ok = write_pass(s, false);
            pthread_mutex_lock(&s->mu);
            /* after a failure, retry on the backoff schedule, not the interval */
            int64_t t = orch_mono_ms();
            if (ok)
                s->next_write_ms = t + s->write_interval_ms;
            else
                s->next_write_ms = s->next_attempt_ms > t + BACKOFF_MIN_MS ? s->next_attempt_ms
                                                                           : t + BACKOFF_MIN_MS;
            continue;
        }
        int64_t wake = s->next_refresh_ms;
        if (s->pending.n > 0 && s->next_write_ms < wake)
            wake = s->next_write_ms;
        struct timespec ts;
        timespec_at_mono(&ts, wake);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    /* A clean stop writes what is queued, if the backend is there. */
    if (s->db != NULL) {
        pthread_mutex_lock(&s->mu);
        size_t n = s->pending.n;
        pthread_mutex_unlock(&s->mu);
        if (n > 0 && !write_pass(s, true))
            orch_log(ORCH_LOG_WARN, NULL, s->object,
                     "store: stopping with %zu instance rows unwritten", n);
    }
    close_db(s);
    mysql_thread_end();
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

store *store_start(const store_conf *conf, struct event_base *base, char *msg, size_t msglen)
{
    if (base == NULL || conf->write_interval_ms <= 0 || conf->operator_refresh_ms <= 0) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "store: needs an event base and positive intervals");
        return NULL;
    }
    int version = 0, applied = 0;
    if (store_migrate(&conf->db, conf->node, &version, &applied, msg, msglen) != ORCH_OK)
        return NULL;

    store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    orch_wakeup_clear(&s->wake);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    bool oom = false;
    s->host = dup_or_null(conf->db.host, &oom);
    s->socket = dup_or_null(conf->db.socket, &oom);
    s->user = dup_or_null(conf->db.user, &oom);
    s->password = dup_or_null(conf->db.password, &oom);
    s->database = dup_or_null(conf->db.database, &oom);
    s->node = dup_or_null(conf->node, &oom);
    if (oom) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->dbconf = (orch_db_conf){.socket = s->socket,
                               .host = s->host,
                               .port = conf->db.port,
                               .user = s->user,
                               .password = s->password,
                               .database = s->database,
                               .connect_timeout_s = STORE_CONNECT_TIMEOUT_S,
                               .rw_timeout_s = STORE_RW_TIMEOUT_S};
    object_name(&s->dbconf, s->object, sizeof(s->object));
    s->queue_max = conf->queue_max > 0 ? conf->queue_max : STORE_QUEUE_MAX_DEFAULT;
    s->write_gate = conf->write_gate;
    s->write_gate_arg = conf->write_gate_arg;
    s->write_interval_ms = conf->write_interval_ms;
    s->refresh_ms = conf->operator_refresh_ms;
    s->st.schema_version = version;
    s->st.backend_ok = true;
    int64_t now = orch_mono_ms();
    s->next_refresh_ms = now; /* the first snapshot at once */
    s->next_write_ms = now + s->write_interval_ms;

    s->base = base;
    if (orch_wakeup_init(&s->wake, base, on_wake, s, "store", msg, msglen) != ORCH_OK)
        goto fail;
    if (pthread_create(&s->thread, NULL, store_main, s) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "store: cannot create its thread");
        goto fail;
    }
    s->thread_started = true;
    orch_log(ORCH_LOG_INFO, NULL, s->object,
             "store: schema version %d (%d applied now); writes every %lld ms, operator state "
             "every %lld ms, queue bound %zu",
             version, applied, (long long)s->write_interval_ms, (long long)s->refresh_ms,
             s->queue_max);
    return s;
fail:
    store_stop(s);
    return NULL;
}

void store_stop(store *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started)
        pthread_join(s->thread, NULL);

    /* Ops never started are answered as closed, after those already answered. */
    pthread_mutex_lock(&s->mu);
    op_item *it = s->ops_head;
    s->ops_head = s->ops_tail = NULL;
    while (it != NULL) {
        op_item *next = it->next;
        it->next = NULL;
        it->result = ORCH_ERR_CLOSED;
        snprintf(it->message, sizeof(it->message), "%s: the store stopped first",
                 it->stmts ? it->what : store_op_kind_name(it->op.kind));
        if (s->done_tail != NULL)
            s->done_tail->next = it;
        else
            s->done_head = it;
        s->done_tail = it;
        it = next;
    }
    pthread_mutex_unlock(&s->mu);
    deliver_done(s);

    orch_wakeup_fini(&s->wake);
    pmap_free(&s->pending);
    store_operator_state_free(s->snap_rows, s->snap_n, s->snap_aliases, s->snap_na);
    settings_free(s->settings, s->nsettings);
    orch_sbuf_fini(&s->sql);
    free(s->host);
    free(s->socket);
    free(s->user);
    free(s->password);
    free(s->database);
    free(s->node);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void store_set_intervals(store *s, int64_t write_interval_ms, int64_t operator_refresh_ms)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    if (write_interval_ms > 0)
        s->write_interval_ms = write_interval_ms;
    if (operator_refresh_ms > 0)
        s->refresh_ms = operator_refresh_ms;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void store_status_get(store *s, store_status *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queue_depth = s->pending.n + s->inflight;
    pthread_mutex_unlock(&s->mu);
}
