/*
 * probe_parse.h: the pure half of the agent's probe.
 *
 * The agent asks its local server a handful of questions (which ones depends on
 * flavor and version: orch_probe_statement) and turns the answers into the
 * protobuf structs of an InstanceReport. This module does the turning, and
 * nothing else: no I/O, no MySQL handle. That is what lets MySQL 8.0 and 8.4,
 * which do not run on our machines, stay correct through recorded fixtures
 * (tests/unit/fixtures/probe/).
 *
 * Input is one result row at a time, in the shape the MySQL client library hands
 * it over, borrowed and never copied (orch_probe_row). Column names are matched
 * case-insensitively; unknown columns are ignored and missing columns leave their
 * field absent, so a new server version that adds or drops a column never breaks
 * a probe. A value that does not parse (a port of "33o6") is an error naming the
 * column and the value: bad input, not a bug.
 *
 * Memory: every string this module stores in a proto struct is malloc'd, and
 * every struct it returns is malloc'd, exactly as protobuf-c's unpacker with the
 * default allocator would have done. So a struct from here may be freed with the
 * orch_probe_*_free functions or with the matching orch__*__free_unpacked(x,
 * NULL); and once the agent hangs channels, replicas and a ServerStatus (and
 * malloc'd arrays of them) on an InstanceReport, orch__instance_report__free_unpacked
 * frees the whole tree.
 *
 * Pure functions; any thread. Nothing here blocks.
 */
#ifndef ORCH_PROBE_PARSE_H
#define ORCH_PROBE_PARSE_H

#include "err.h"
#include "version.h"

#include "orch.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- statements ----------------------------------------------------------- */

typedef enum orch_probe_stmt {
    ORCH_PROBE_STMT_VARIABLES = 0, /* one row of global variables (AS-aliased columns) */
    ORCH_PROBE_STMT_SEMISYNC_VARS, /* Variable_name/Value rows: rpl_semi_sync_* */
    ORCH_PROBE_STMT_STATUS,        /* Variable_name/Value rows: Uptime, Rpl_semi_sync_* */
    ORCH_PROBE_STMT_REPLICA_STATUS,
    ORCH_PROBE_STMT_MASTER_STATUS,
    ORCH_PROBE_STMT_REPLICA_HOSTS,
    ORCH_PROBE_STMT_PROCESSLIST, /* binlog dump threads only */
    ORCH_PROBE_STMT_GRANTS,
    ORCH_PROBE_STMT__COUNT
} orch_probe_stmt;

/*
 * The SQL text to run for `which` on a server of version v (a static string), or
 * NULL when v's flavor is ORCH_FLAVOR_UNKNOWN (parse the handshake version with
 * orch_version_parse first) or `which` is out of range. Percona is MySQL here.
 * Chosen from one table in probe_parse.c, whose comments say why each row is
 * there; the choice agrees with orch_version_uses_replica_syntax() and
 * orch_version_uses_binary_log_status().
 */
const char *orch_probe_statement(orch_probe_stmt which, const orch_version *v);

/* "variables", "replica-status", ...: static, never NULL. */
const char *orch_probe_stmt_name(orch_probe_stmt which);

/* ---- rows ----------------------------------------------------------------- */

/*
 * One result row, borrowed. The name of column i is the `const char *` found at
 * `(const char *)names + i * name_stride`, which lets a caller pass either a
 * plain array of names (name_stride = sizeof(char *), or 0 meaning the same) or
 * the MYSQL_FIELD array itself, with no copy:
 *
 *     MYSQL_FIELD *f = mysql_fetch_fields(res);
 *     orch_probe_row r = {
 *         .ncols = mysql_num_fields(res),
 *         .names = &f[0].name, .name_stride = sizeof(MYSQL_FIELD),
 *         .values = (const char *const *)row,       // MYSQL_ROW
 *         .lengths = mysql_fetch_lengths(res),
 *     };
 *
 * values[i] == NULL is SQL NULL, distinct from "" (a zero-length value).
 * lengths may be NULL, in which case each non-NULL value must be NUL-terminated;
 * with lengths, values need not be (they are with MYSQL_ROW, but we do not rely
 * on it). A name must be NUL-terminated.
 */
typedef struct orch_probe_row {
    size_t ncols;
    const void *names;
    size_t name_stride;
    const char *const *values;
    const unsigned long *lengths;
} orch_probe_row;

/* ---- replication channels ------------------------------------------------- */

/*
 * Parses one row of SHOW ALL SLAVES STATUS (MariaDB), SHOW SLAVE STATUS (MariaDB,
 * MySQL <= 8.0) or SHOW REPLICA STATUS (MySQL 8.0.22+, 8.4) into a new channel.
 * Both column vocabularies are accepted (Slave_IO_Running / Replica_IO_Running,
 * Master_Host / Source_Host, ...; MariaDB keeps the old names even under SHOW
 * REPLICA STATUS). Thread states Yes/No/Connecting map to ORCH__THREAD_STATE__*;
 * a NULL Seconds_Behind_* leaves has_seconds_behind_master = 0, never 0. GTID
 * sets lose the newlines MySQL puts after each comma. A row without a
 * Connection_name / Channel_Name column is the default channel: name "".
 * An empty value in a numeric column leaves the field absent.
 *
 * On success *out is a new channel the caller owns (orch_probe_channel_free).
 * On failure *out is untouched, nothing leaks, and msg says which column held
 * what (ORCH_ERR_PARSE, ORCH_ERR_RANGE, or ORCH_ERR_NOMEM).
 */
orch_err orch_probe_parse_channel(const orch_probe_row *row, Orch__Channel **out, char *msg,
                                  size_t msglen) ORCH_MUST_CHECK;

/* Frees a channel from orch_probe_parse_channel and every string in it. NULL is fine. */
void orch_probe_channel_free(Orch__Channel *ch);

/* ---- server status -------------------------------------------------------- */

/* A new, empty ServerStatus (ORCH__SERVER_STATUS__INIT), or NULL when out of memory. */
Orch__ServerStatus *orch_probe_server_new(void);

/* Frees a ServerStatus from orch_probe_server_new and its strings. NULL is fine. */
void orch_probe_server_free(Orch__ServerStatus *st);

/*
 * Folds the one row of ORCH_PROBE_STMT_VARIABLES into st: each column is a
 * variable, named plainly (server_id), or as `@@server_id` / `@@global.server_id`
 * when the query has no aliases. When the row has a version, st->flavor is set
 * from it and version_comment (this row's, else st's). A variable whose value is
 * NULL becomes absent (report_host NULL). Variables of the other flavor
 * (gtid_current_pos on MySQL) are stored if present: the statement decides
 * which exist, not this parser.
 *
 * Atomic: on failure st is untouched and msg names the column and value.
 */
orch_err orch_probe_parse_variables(const orch_probe_row *row, Orch__ServerStatus *st, char *msg,
                                    size_t msglen) ORCH_MUST_CHECK;

/*
 * Folds one Variable_name/Value row (SHOW GLOBAL STATUS, SHOW GLOBAL VARIABLES,
 * or information_schema / performance_schema's VARIABLE_NAME/VARIABLE_VALUE)
 * into st. Understands what ORCH_PROBE_STMT_SEMISYNC_VARS and _STATUS return on
 * both flavors: rpl_semi_sync_{master,source}_{enabled,timeout},
 * rpl_semi_sync_{slave,replica}_enabled, Rpl_semi_sync_{master,source}_{status,
 * clients}, Rpl_semi_sync_{slave,replica}_status, Uptime; also any variable
 * orch_probe_parse_variables knows. Unknown names are ignored (ORCH_OK). A row
 * without a name column is ORCH_ERR_PARSE. Atomic like orch_probe_parse_variables.
 */
orch_err orch_probe_parse_status_var(const orch_probe_row *row, Orch__ServerStatus *st, char *msg,
                                     size_t msglen) ORCH_MUST_CHECK;

/*
 * Folds the row of SHOW MASTER STATUS / SHOW BINARY LOG STATUS into st: File ->
 * binlog_file, Position -> binlog_pos, and on MySQL Executed_Gtid_Set ->
 * gtid_executed. (An empty result, log_bin off, simply has no row to fold.)
 * Atomic like orch_probe_parse_variables.
 */
orch_err orch_probe_parse_master_status(const orch_probe_row *row, Orch__ServerStatus *st,
                                        char *msg, size_t msglen) ORCH_MUST_CHECK;

/* ---- connected replicas --------------------------------------------------- */

/*
 * Parses one row of SHOW SLAVE HOSTS / SHOW REPLICAS: Server_id, Host (the
 * replica's report_host; "" becomes absent), Port. Master_id / Source_id and
 * Slave_UUID / Replica_UUID are read past: ConnectedReplica has no field for them.
 * On success *out is a new replica the caller owns; on failure *out is untouched.
 */
orch_err orch_probe_parse_replica_host(const orch_probe_row *row, Orch__ConnectedReplica **out,
                                       char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * Parses one processlist row (information_schema.PROCESSLIST or SHOW
 * PROCESSLIST). When Command is "Binlog Dump" or "Binlog Dump GTID", *out is a
 * new replica whose host is the client address of the dump thread without its
 * port ("10.0.0.5:54321" -> "10.0.0.5", "[::1]:40000" -> "::1"; the client port
 * is ephemeral, so port stays absent). Any other row sets *out = NULL and returns
 * ORCH_OK. On failure *out is untouched.
 */
orch_err orch_probe_parse_processlist(const orch_probe_row *row, Orch__ConnectedReplica **out,
                                      char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Frees a replica from the two functions above. NULL is fine. */
void orch_probe_replica_free(Orch__ConnectedReplica *r);

/* ---- privileges ----------------------------------------------------------- */

/*
 * The global privileges seen so far in SHOW GRANTS output (a bit set; callers
 * only init it and pass it around). Embedded by value; nothing to free.
 */
typedef struct orch_probe_grants {
    uint32_t held;
} orch_probe_grants;

void orch_probe_grants_init(orch_probe_grants *g);

/*
 * Adds one line of SHOW GRANTS (len bytes; need not be NUL-terminated). Only
 * `GRANT <privileges> ON *.* TO ...` lines count, whoever the grantee is: on
 * MariaDB, SHOW GRANTS for the current user also lists the grants of its
 * default role under the role's name. Role grants, database-level grants,
 * REVOKE lines and unknown privilege names are ignored. Names are compared
 * without regard to case, '_' or ' ' (READ_ONLY ADMIN, SYSTEM_VARIABLES_ADMIN),
 * and MariaDB's aliases count as the same privilege (REPLICATION CLIENT = BINLOG
 * MONITOR, REPLICA MONITOR = SLAVE MONITOR, REPLICATION REPLICA ADMIN =
 * REPLICATION SLAVE ADMIN).
 */
void orch_probe_grants_add(orch_probe_grants *g, const char *line, size_t len);

/* The same, taking column 0 of a SHOW GRANTS row (NULL rows are ignored). */
void orch_probe_grants_add_row(orch_probe_grants *g, const orch_probe_row *row);

/*
 * What recoveries on a server of version v need and g lacks, as problem strings
 * for InstanceReport.problems, e.g.
 *   "missing privilege READ_ONLY ADMIN: SET GLOBAL read_only will fail (MariaDB 10.11)".
 * ALL PRIVILEGES on *.* covers everything. The rules, and which of them were
 * verified against a real server, are in the table in probe_parse.c.
 *
 * On success *problems is a malloc'd array of *nproblems malloc'd strings (NULL
 * and 0 when nothing is missing); free with orch_probe_strings_free, or hand the
 * array to InstanceReport.problems. ORCH_ERR_INVAL for an unknown flavor,
 * ORCH_ERR_NOMEM; on failure the outputs are untouched.
 */
orch_err orch_probe_grants_missing(const orch_probe_grants *g, const orch_version *v,
                                   char ***problems, size_t *nproblems, char *msg,
                                   size_t msglen) ORCH_MUST_CHECK;

/* Frees n strings and the array holding them. NULL is fine. */
void orch_probe_strings_free(char **strings, size_t n);

#endif
