/*
 * version.h: MySQL / MariaDB / Percona server versions.
 *
 * Parses what `SELECT @@version` and `@@version_comment` return:
 *   "10.11.6-MariaDB-0+deb12u1-log", "5.5.5-10.11.6-MariaDB" (the replication
 *   prefix MariaDB sends to old clients), "8.0.36", "8.0.36-28" with comment
 *   "Percona Server (GPL), Release 28, ...", "8.4.0-commercial".
 * Pure functions; any thread.
 */
#ifndef ORCH_VERSION_H
#define ORCH_VERSION_H

#include "err.h"

#include <stdbool.h>

typedef enum orch_flavor {
    ORCH_FLAVOR_UNKNOWN = 0,
    ORCH_FLAVOR_MYSQL,
    ORCH_FLAVOR_MARIADB,
    ORCH_FLAVOR_PERCONA,
} orch_flavor;

typedef struct orch_version {
    int major, minor, patch;
    orch_flavor flavor;
    char suffix[64]; /* what follows "X.Y.Z", e.g. "-MariaDB-0+deb12u1-log" */
} orch_version;

/*
 * Parses version (required) and version_comment (may be NULL) into *out. The
 * flavor is MariaDB when either string says "MariaDB", Percona when either says
 * "Percona", MySQL otherwise. On failure *out is untouched.
 */
orch_err orch_version_parse(const char *version, const char *version_comment, orch_version *out,
                            char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Compares major.minor.patch (flavor ignored): <0, 0, >0. */
int orch_version_compare(const orch_version *a, const orch_version *b);

/* True when a and b are the same major series (first two numbers: 8.0 != 8.4). */
bool orch_version_same_series(const orch_version *a, const orch_version *b);

/*
 * Compares only the series (major.minor): <0 when a's series is older. Used by
 * the rule that a replica may not replicate from a newer series.
 */
int orch_version_compare_series(const orch_version *a, const orch_version *b);

/* "mysql", "mariadb", "percona", "unknown". */
const char *orch_flavor_name(orch_flavor flavor);

/*
 * MySQL 8.4 dropped SHOW SLAVE STATUS; MySQL 8.0.22+ has SHOW REPLICA STATUS
 * with Replica_ and Source_ column names. MariaDB accepts both and keeps the
 * old column names. True when the probe should use SHOW REPLICA STATUS (MySQL
 * or Percona >= 8.0.22).
 */
bool orch_version_uses_replica_syntax(const orch_version *v);

/* True when SHOW BINARY LOG STATUS replaces SHOW MASTER STATUS (MySQL >= 8.2). */
bool orch_version_uses_binary_log_status(const orch_version *v);

#endif
