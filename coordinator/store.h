/*
 * store.h: the coordinator's backend database: schema, write-behind, operator state.
 *
 * The backend (MySQL or MariaDB; Galera for HA) is shared by every coordinator.
 * This module owns one connection and one thread that does all of its work, so
 * that a slow or absent backend never stalls the coordinator's loop:
 *
 *   - schema migrations, numbered (store_migrations[]), applied at start under
 *     GET_LOCK('orch_migrations'), each at most once even when several
 *     coordinators start together (store_start blocks until they are done);
 *   - write-behind of instance state (the leader's job): the loop hands over
 *     rows and last-seen times; the thread coalesces them by key (newest wins)
 *     in a bounded queue and writes them in multi-row statements every
 *     write_interval_ms, retrying with backoff (100 ms doubling to 5 s) while
 *     the backend is away and catching up when it returns;
 *   - operator state (downtime, maintenance, candidate overrides, cluster
 *     aliases, global settings), re-read every operator_refresh_ms and
 *     published as a snapshot the loop takes when it likes;
 *   - operator writes from the API (any coordinator), executed in order on the
 *     thread, each answered on the loop thread.
 *
 * Threads: store_start and store_stop run on the loop thread (the thread that
 * runs `base`), before the loop starts and after it stops or from within it.
 * Every other function may be called from any thread and never blocks on the
 * backend (a mutex and a queue). Done callbacks run on the loop thread. The
 * process calls mysql_library_init() before store_start (initialising the
 * client library is not thread-safe).
 *
 * Times in the backend are DATETIME(6) in UTC by the backend's clock;
 * expiries (downtime, maintenance, candidates) are measured by that clock too.
 */
#ifndef ORCH_STORE_H
#define ORCH_STORE_H

#include "db.h"
#include "err.h"
#include "key.h"
#include "registry.h"
#include "sbuf.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* ---- schema ---------------------------------------------------------------------- */

/*
 * One numbered migration. Statements run in order, each on its own (DDL commits
 * implicitly in MySQL, so a migration cut short by a crash is re-run from its
 * first statement): every statement must therefore be idempotent (CREATE TABLE
 * IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, INSERT IGNORE). Once all succeeded,
 * the version is recorded in schema_version. To add one, append an entry to
 * store_migrations[] in migrations.c with the next version number.
 */
typedef struct store_migration {
    int version; /* 1, 2, 3, ... without gaps */
    const char *description;
    const char *const *statements; /* NULL-terminated */
} store_migration;

extern const store_migration store_migrations[];
extern const size_t store_nmigrations;

/* The newest version this binary knows. */
int store_schema_latest(void);

/*
 * Connects to db and applies the missing migrations under the migration lock
 * (waits up to 30 s for another coordinator holding it). Blocks; for tools and
 * for store_start. *version (may be NULL) receives the schema version
 * afterwards, *applied (may be NULL) how many migrations this call applied.
 * node is recorded as applied_by. A backend newer than this binary is logged
 * and accepted (later migrations only add).
 */
orch_err store_migrate(const orch_db_conf *db, const char *node, int *version, int *applied,
                       char *msg, size_t msglen) ORCH_MUST_CHECK;

/* ---- the store ------------------------------------------------------------------ */

#define STORE_QUEUE_MAX_DEFAULT 100000

typedef struct store_conf {
    orch_db_conf db;  /* strings borrowed, copied by store_start */
    const char *node; /* this coordinator, for logs and schema_version */
    int64_t write_interval_ms;
    int64_t operator_refresh_ms;
    size_t queue_max; /* pending instance keys; 0: STORE_QUEUE_MAX_DEFAULT */
    /* Optional: asked (on the store thread) before every write batch; false
     * discards what is queued (a deposed leader must not write: its rows could
     * overwrite its successor's). Typically election_is_leader(e, orch_mono_ms()). */
    bool (*write_gate)(void *arg);
    void *write_gate_arg;
} store_conf;

typedef struct store store;

/*
 * Connects, applies migrations (blocking, see store_migrate) and starts the
 * store thread. On failure returns NULL with msg set: the backend unreachable,
 * a migration failed, or the lock timed out. base is the loop's event base;
 * done callbacks are delivered through an eventfd event added to it (no
 * evthread locking needed). Call on the loop thread.
 */
store *store_start(const store_conf *conf, struct event_base *base, char *msg, size_t msglen);

/*
 * Stops and joins the thread (writing what is queued first if the backend is
 * up), answers operator writes still queued with ORCH_ERR_CLOSED, delivers every
 * pending done callback synchronously, and frees everything. Safe on NULL.
 * Returns within a few seconds even when the backend does not answer. Call on
 * the loop thread.
 */
void store_stop(store *s);

/* Reloadable settings (SIGHUP). Any thread. Values <= 0 leave a setting alone. */
void store_set_intervals(store *s, int64_t write_interval_ms, int64_t operator_refresh_ms);

/* ---- write-behind ------------------------------------------------------------------ */

/* One instance as the leader writes it. Strings are malloc'd (or NULL = ""). */
typedef struct store_instance_row {
    orch_key key;
    char *cluster;
    char *master_host; /* NULL: no master */
    uint16_t master_port;
    char *state; /* printable probe state, e.g. "UP" */
    bool read_only;
    uint32_t server_id;
    char *version;
    char *data_center;
    char *promotion_rule;      /* "prefer", "neutral", "prefer_not", "must_not" */
    char *report_json;         /* the newest report as JSON */
    int64_t last_seen_wall_ms; /* wall clock (ms since the epoch); 0: the backend's now */
} store_instance_row;

/* Frees the row's strings (not the row). Safe on NULL. */
void store_instance_row_fini(store_instance_row *row);

/*
 * Queues rows for writing; takes ownership of the array and of every string in
 * it, in all cases. A row replaces any queued row with the same key (the
 * newest wins). When the queue holds queue_max keys, rows for new keys are
 * dropped and counted. Any thread; never blocks on the backend.
 */
void store_submit_instances(store *s, store_instance_row *rows, size_t n);

typedef struct store_last_seen {
    orch_key key;
    int64_t wall_ms; /* wall clock, ms since the epoch */
} store_last_seen;

/*
 * Queues last-seen times (borrowed: copied). They update instances already in
 * the backend only (rows the store never wrote are not created); a later time
 * wins. Same queue and bound as store_submit_instances. Any thread.
 */
void store_submit_last_seen(store *s, const store_last_seen *seen, size_t n);

/* ---- operator state ------------------------------------------------------------------ */

typedef enum store_op_kind {
    STORE_OP_BEGIN_DOWNTIME,     /* key, owner, reason, duration_ms */
    STORE_OP_END_DOWNTIME,       /* key */
    STORE_OP_BEGIN_MAINTENANCE,  /* key, owner, reason, duration_ms */
    STORE_OP_END_MAINTENANCE,    /* key */
    STORE_OP_REGISTER_CANDIDATE, /* key, rule, duration_ms */
    STORE_OP_END_CANDIDATE,      /* key */
    STORE_OP_SET_CLUSTER_ALIAS,  /* cluster, alias ("" or NULL removes it) */
    STORE_OP_SET_GLOBAL_SETTING, /* name, value (NULL removes it) */
    STORE_OP_FORGET,             /* key: every coordinator drops it; its instance row goes */
    STORE_OP__COUNT
} store_op_kind;

const char *store_op_kind_name(store_op_kind k);

/* An operator write. Strings are borrowed (copied by store_submit_op). */
typedef struct store_op {
    store_op_kind kind;
    orch_key key;
    const char *owner, *reason;
    int64_t duration_ms; /* from now by the backend's clock; > 0 */
    const char *rule;    /* "prefer", "neutral", "prefer_not", "must_not" */
    const char *cluster, *alias;
    const char *name, *value;
} store_op;

/*
 * The answer to an operator write, on the loop thread: ORCH_OK, or why it failed
 * (message says more; borrowed for the call). arg is the caller's.
 */
typedef void (*store_done_fn)(orch_err result, const char *message, void *arg);

/*
 * Queues an operator write for the store thread. On ORCH_OK, done (may be
 * NULL) will be called exactly once on the loop thread, at the latest from
 * store_stop. On any other result (invalid op, out of memory, stopping) msg
 * says why and done is never called. While the backend is away the op fails
 * at once (ORCH_ERR_MYSQL) rather than waiting. A successful write triggers an
 * immediate re-read of the operator state. Any thread.
 */
orch_err store_submit_op(store *s, const store_op *op, store_done_fn done, void *arg, char *msg,
                         size_t msglen) ORCH_MUST_CHECK;

/*
 * A cluster's alias follows its new master after a failover or a takeover:
 * alias (non-empty) is given to new_cluster (the new master's "host:port"),
 * which takes it from the old name in the same write. Fire and forget: the
 * outcome is logged (ORCH-ALIAS-MOVED), with what to do when it failed.
 * Loop thread.
 */
void store_move_cluster_alias(store *s, const char *alias, const char *new_cluster);

/*
 * Takes the newest operator snapshot if there is one the caller has not taken
 * yet (the first after start, then only when something changed, expiries
 * included); returns false otherwise, leaving the outputs alone. On true the
 * caller owns the arrays and their strings (store_operator_state_free) and may
 * pass them to registry_set_operator_state. Rows are sorted by key, one per
 * instance, merging downtime, maintenance and candidate; aliases are sorted by
 * cluster. While the backend is away no snapshot comes: the last one stays
 * in force. Any thread.
 */
bool store_take_operator_state(store *s, reg_operator_row **rows, size_t *n,
                               reg_alias_row **aliases, size_t *na);

void store_operator_state_free(reg_operator_row *rows, size_t n, reg_alias_row *aliases, size_t na);

/* A global setting from the newest operator snapshot, copied into buf; false if
 * unset. Any thread. */
bool store_get_setting(store *s, const char *name, char *buf, size_t buflen);

/*
 * A batch: statements run in order in one transaction on the store thread (a
 * failure rolls everything back), for recovery locks and audit records and for
 * reads the API serves from the backend. Takes ownership of stmts (a malloc'd
 * array of malloc'd statements) in every case. done runs on the loop thread
 * with the rows of the last statement when it returned a result set (a JSON
 * array of objects, column -> string or null; the callee owns it; NULL
 * otherwise) or the rows it affected. Statements embed strings only through
 * store_sql_string(), which cannot be escaped from. Any thread.
 */
typedef void (*store_rows_fn)(orch_err result, const char *message, json_t *rows, uint64_t affected,
                              void *arg);

orch_err store_submit_batch(store *s, const char *what, char **stmts, size_t n, store_rows_fn done,
                            void *arg, char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Appends s as an SQL string literal that no content can escape from (a hex
 * literal converted to utf8mb4); NULL appends NULL. */
void store_sql_string(orch_sbuf *b, const char *s);

/* ---- status ------------------------------------------------------------------------ */

typedef struct store_status {
    bool backend_ok;            /* the last exchange with the backend worked */
    char last_error[256];       /* the last backend error, "" if none yet */
    int64_t last_rtt_us;        /* the last statement's round trip */
    size_t queue_depth;         /* instance keys waiting to be written */
    uint64_t rows_written;      /* instance rows (and last-seen updates) written */
    uint64_t rows_coalesced;    /* queued rows replaced by a newer one before being written */
    uint64_t rows_dropped;      /* rows refused because the queue was full */
    uint64_t rows_discarded;    /* queued rows thrown away because write_gate said no */
    uint64_t write_failures;    /* failed batches */
    int64_t last_write_ok_ms;   /* monotonic; 0 never */
    int64_t last_refresh_ok_ms; /* monotonic; 0 never */
    uint64_t ops_done, ops_failed;
    int schema_version;
} store_status;

/* Copies the current counters. Any thread; never blocks on the backend. */
void store_status_get(store *s, store_status *out);

#endif
