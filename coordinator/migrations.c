/*
 * migrations.c: the backend schema, as numbered migrations (see store.h).
 *
 * Append only: a released migration is never edited (coordinators that have
 * applied it will not run it again). Every statement must be idempotent, since
 * a migration cut short (DDL commits implicitly) runs again from the start.
 * Times are DATETIME(6) in UTC (every session sets time_zone = '+00:00');
 * strings are utf8mb4_general_ci, the same collation every session uses.
 */
#include "store.h"

#define TABLE_OPTS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

/* 1: the lease, the nodes, instances and operator state. */
static const char *const m1[] = {
    /* The leader lease: one row, id 1 (election.c). */
    "CREATE TABLE IF NOT EXISTS leader ("
    " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
    " node VARCHAR(255) NOT NULL,"
    " token VARCHAR(64) NOT NULL,"
    " epoch BIGINT UNSIGNED NOT NULL,"
    " renewed_at DATETIME(6) NOT NULL,"
    " elected_at DATETIME(6) NOT NULL"
    ")" TABLE_OPTS,
    /* Every coordinator, upserted each election interval. */
    "CREATE TABLE IF NOT EXISTS node ("
    " node VARCHAR(255) NOT NULL PRIMARY KEY,"
    " api_url VARCHAR(512) NOT NULL DEFAULT '',"
    " token VARCHAR(64) NOT NULL DEFAULT '',"
    " started_at DATETIME(6) NOT NULL,"
    " last_seen DATETIME(6) NOT NULL,"
    " version VARCHAR(64) NOT NULL DEFAULT '',"
    " KEY last_seen_idx (last_seen)"
    ")" TABLE_OPTS,
    /* Instance state, written behind by the leader. */
    "CREATE TABLE IF NOT EXISTS instance ("
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " cluster VARCHAR(300) NOT NULL DEFAULT '',"
    " master_host VARCHAR(255) NOT NULL DEFAULT '',"
    " master_port SMALLINT UNSIGNED NOT NULL DEFAULT 0,"
    " state VARCHAR(32) NOT NULL DEFAULT '',"
    " read_only TINYINT(1) NOT NULL DEFAULT 0,"
    " server_id INT UNSIGNED NOT NULL DEFAULT 0,"
    " version VARCHAR(64) NOT NULL DEFAULT '',"
    " data_center VARCHAR(255) NOT NULL DEFAULT '',"
    " promotion_rule VARCHAR(16) NOT NULL DEFAULT '',"
    " report LONGTEXT NULL,"
    " first_seen DATETIME(6) NOT NULL,"
    " last_seen DATETIME(6) NOT NULL,"
    " updated_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (hostname, port),"
    " KEY cluster_idx (cluster),"
    " KEY last_seen_idx (last_seen)"
    ")" TABLE_OPTS,
    /* Operator state: any coordinator writes, all re-read every second. */
    "CREATE TABLE IF NOT EXISTS downtime ("
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " begun_at DATETIME(6) NOT NULL,"
    " expires_at DATETIME(6) NOT NULL,"
    " owner VARCHAR(255) NOT NULL DEFAULT '',"
    " reason TEXT NOT NULL,"
    " PRIMARY KEY (hostname, port),"
    " KEY expires_idx (expires_at)"
    ")" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS maintenance ("
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " begun_at DATETIME(6) NOT NULL,"
    " expires_at DATETIME(6) NOT NULL,"
    " owner VARCHAR(255) NOT NULL DEFAULT '',"
    " reason TEXT NOT NULL,"
    " PRIMARY KEY (hostname, port),"
    " KEY expires_idx (expires_at)"
    ")" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS candidate ("
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " promotion_rule VARCHAR(16) NOT NULL,"
    " registered_at DATETIME(6) NOT NULL,"
    " expires_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (hostname, port),"
    " KEY expires_idx (expires_at)"
    ")" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS cluster_alias ("
    " cluster VARCHAR(300) NOT NULL PRIMARY KEY,"
    " alias VARCHAR(255) NOT NULL,"
    " updated_at DATETIME(6) NOT NULL,"
    " UNIQUE KEY alias_idx (alias)"
    ")" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS global_settings ("
    " name VARCHAR(128) NOT NULL PRIMARY KEY,"
    " value TEXT NOT NULL,"
    " updated_at DATETIME(6) NOT NULL"
    ")" TABLE_OPTS,
    NULL,
};

/* 2: recoveries, their steps and lock, failure detections, pending fences. */
static const char *const m2[] = {
    /* One row per recovery (orchestrator's audit-recovery). state: running,
     * succeeded, failed, refused, interrupted (its leader died; taken over). */
    "CREATE TABLE IF NOT EXISTS recovery ("
    " uid VARCHAR(64) NOT NULL PRIMARY KEY,"
    " cluster VARCHAR(300) NOT NULL,"
    " cluster_alias VARCHAR(255) NOT NULL DEFAULT '',"
    " failed_host VARCHAR(255) NOT NULL,"
    " failed_port SMALLINT UNSIGNED NOT NULL,"
    " analysis VARCHAR(64) NOT NULL,"
    " description TEXT NULL,"
    " state VARCHAR(16) NOT NULL,"
    " successor_host VARCHAR(255) NOT NULL DEFAULT '',"
    " successor_port SMALLINT UNSIGNED NOT NULL DEFAULT 0,"
    " lost_replicas TEXT NULL,"
    " participating_replicas TEXT NULL,"
    " node VARCHAR(255) NOT NULL,"
    " epoch BIGINT UNSIGNED NOT NULL,"
    " started_at DATETIME(6) NOT NULL,"
    " ended_at DATETIME(6) NULL,"
    " is_successful TINYINT(1) NOT NULL DEFAULT 0,"
    " acknowledged TINYINT(1) NOT NULL DEFAULT 0,"
    " acknowledged_at DATETIME(6) NULL,"
    " acknowledged_by VARCHAR(255) NOT NULL DEFAULT '',"
    " acknowledged_comment TEXT NULL,"
    " KEY cluster_idx (cluster, started_at),"
    " KEY started_idx (started_at)"
    ")" TABLE_OPTS,
    /* Each step, written before the recovery moves on (audit-recovery-steps). */
    "CREATE TABLE IF NOT EXISTS recovery_step ("
    " uid VARCHAR(64) NOT NULL,"
    " seq INT UNSIGNED NOT NULL,"
    " at DATETIME(6) NOT NULL,"
    " step VARCHAR(64) NOT NULL,"
    " message TEXT NULL,"
    " PRIMARY KEY (uid, seq)"
    ")" TABLE_OPTS,
    /* One active recovery per cluster; a lock of a lower epoch belonged to a
     * deposed leader and is taken over. */
    "CREATE TABLE IF NOT EXISTS recovery_lock ("
    " cluster VARCHAR(300) NOT NULL PRIMARY KEY,"
    " uid VARCHAR(64) NOT NULL,"
    " node VARCHAR(255) NOT NULL,"
    " epoch BIGINT UNSIGNED NOT NULL,"
    " acquired_at DATETIME(6) NOT NULL"
    ")" TABLE_OPTS,
    /* Every detection the leader acted on or decided not to (audit-failure-detection). */
    "CREATE TABLE IF NOT EXISTS failure_detection ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " detected_at DATETIME(6) NOT NULL,"
    " cluster VARCHAR(300) NOT NULL DEFAULT '',"
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " analysis VARCHAR(64) NOT NULL,"
    " description TEXT NULL,"
    " node VARCHAR(255) NOT NULL,"
    " epoch BIGINT UNSIGNED NOT NULL,"
    " recovery_uid VARCHAR(64) NOT NULL DEFAULT '',"
    " KEY detected_idx (detected_at)"
    ")" TABLE_OPTS,
    /* An old master whose agent could not be told to fence itself: every
     * leader sends the fence the moment that agent reports again. */
    "CREATE TABLE IF NOT EXISTS pending_fence ("
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " recovery_uid VARCHAR(64) NOT NULL,"
    " epoch BIGINT UNSIGNED NOT NULL,"
    " recorded_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (hostname, port)"
    ")" TABLE_OPTS,
    NULL,
};

/* 3: forgotten instances (every coordinator drops them from its registry). */
static const char *const m3[] = {
    "CREATE TABLE IF NOT EXISTS forget ("
    " hostname VARCHAR(255) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " forgotten_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (hostname, port),"
    " KEY forgotten_idx (forgotten_at)"
    ")" TABLE_OPTS,
    NULL,
};

const store_migration store_migrations[] = {
    {1, "leader lease, nodes, instances, operator state", m1},
    {2, "recoveries, steps, recovery lock, failure detections, pending fences", m2},
    {3, "forgotten instances", m3},
};

const size_t store_nmigrations = sizeof(store_migrations) / sizeof(store_migrations[0]);

int store_schema_latest(void)
{
    return store_migrations[store_nmigrations - 1].version;
}
