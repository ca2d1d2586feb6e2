/*
 * probe_parse.c: result rows of the agent's probe statements -> InstanceReport parts.
 *
 * Three tables drive everything here:
 *   - stmt_table: which SQL to run, by flavor and version;
 *   - the field tables (channel_fields, server_vars, ...): which column fills
 *     which proto field, and how its text is read;
 *   - priv_needs: which privileges recoveries need, by flavor and version.
 * The rest is the small machinery that applies them. Column names come from
 * three vocabularies (MariaDB's and old MySQL's Slave_/Master_, MySQL 8.0.22+'s
 * Replica_/Source_); each field spec lists every name its column goes by.
 */
#include "probe_parse.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- statements ----------------------------------------------------------- */

typedef enum family {
    FAM_ANY = 0,
    FAM_MYSQL, /* MySQL and Percona */
    FAM_MARIADB,
} family;

typedef struct stmt_row {
    orch_probe_stmt which;
    family fam;
    int since[3]; /* first major.minor.patch the row applies to */
    const char *sql;
} stmt_row;

/*
 * For each statement, rows are listed newest first and the first row whose
 * family and `since` match the server wins.
 *
 * The variables query names only variables the flavor has: a SELECT of an
 * unknown @@variable fails as a whole (MariaDB has no @@server_uuid and no
 * @@super_read_only; MySQL has no @@gtid_current_pos; MySQL 8.0.26 renamed
 * log_slave_updates to log_replica_updates). Semi-sync variables exist on MySQL
 * only while a semi-sync plugin is loaded, and under the master_ or source_
 * names depending on which plugin, so they come from SHOW GLOBAL VARIABLES LIKE
 * instead, which returns nothing rather than failing. The MariaDB rows were run
 * against MariaDB 10.11.19; the MySQL rows follow the MySQL 8.0/8.4 manuals.
 */
#define MARIADB_VARIABLES                                                                          \
    "SELECT @@global.server_id AS server_id, @@global.version AS version, "                        \
    "@@global.version_comment AS version_comment, @@global.hostname AS hostname, "                 \
    "@@global.report_host AS report_host, @@global.report_port AS report_port, "                   \
    "@@global.read_only AS read_only, @@global.log_bin AS log_bin, "                               \
    "@@global.log_slave_updates AS log_slave_updates, @@global.binlog_format AS binlog_format, "   \
    "@@global.gtid_current_pos AS gtid_current_pos, @@global.gtid_binlog_pos AS gtid_binlog_pos, " \
    "@@global.gtid_slave_pos AS gtid_slave_pos, @@global.gtid_strict_mode AS gtid_strict_mode"

#define MYSQL_VARIABLES(log_updates)                                                               \
    "SELECT @@global.server_id AS server_id, @@global.server_uuid AS server_uuid, "                \
    "@@global.version AS version, @@global.version_comment AS version_comment, "                   \
    "@@global.hostname AS hostname, @@global.report_host AS report_host, "                         \
    "@@global.report_port AS report_port, @@global.read_only AS read_only, "                       \
    "@@global.super_read_only AS super_read_only, @@global.log_bin AS log_bin, "                   \
    "@@global." log_updates " AS " log_updates ", @@global.binlog_format AS binlog_format, "       \
    "@@global.gtid_mode AS gtid_mode, @@global.gtid_executed AS gtid_executed, "                   \
    "@@global.gtid_purged AS gtid_purged"

/* Macros keep one row per entry under clang-format. */
/* clang-format off */
#define V(major, minor, patch)       {major, minor, patch}
#define STMT(which, fam, since, sql) {which, fam, since, sql}
/* clang-format on */

static const stmt_row stmt_table[] = {
    STMT(ORCH_PROBE_STMT_VARIABLES, FAM_MARIADB, V(0, 0, 0), MARIADB_VARIABLES),
    STMT(ORCH_PROBE_STMT_VARIABLES, FAM_MYSQL, V(8, 0, 26), MYSQL_VARIABLES("log_replica_updates")),
    STMT(ORCH_PROBE_STMT_VARIABLES, FAM_MYSQL, V(0, 0, 0), MYSQL_VARIABLES("log_slave_updates")),

    STMT(ORCH_PROBE_STMT_SEMISYNC_VARS, FAM_ANY, V(0, 0, 0),
         "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'"),

    /* Only what we read: Rpl_semi_sync_master_* alone is ~16 rows on MariaDB. */
    STMT(ORCH_PROBE_STMT_STATUS, FAM_ANY, V(0, 0, 0),
         "SHOW GLOBAL STATUS WHERE Variable_name IN ('Uptime', "
         "'Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients', "
         "'Rpl_semi_sync_slave_status', 'Rpl_semi_sync_source_status', "
         "'Rpl_semi_sync_source_clients', 'Rpl_semi_sync_replica_status')"),

    /* MariaDB: ALL, or named connections other than the default are missed. */
    STMT(ORCH_PROBE_STMT_REPLICA_STATUS, FAM_MARIADB, V(0, 0, 0), "SHOW ALL SLAVES STATUS"),
    /* MySQL 8.4 removed SHOW SLAVE STATUS; 8.0.22 introduced SHOW REPLICA STATUS. */
    STMT(ORCH_PROBE_STMT_REPLICA_STATUS, FAM_MYSQL, V(8, 0, 22), "SHOW REPLICA STATUS"),
    STMT(ORCH_PROBE_STMT_REPLICA_STATUS, FAM_MYSQL, V(0, 0, 0), "SHOW SLAVE STATUS"),

    /* MariaDB 10.11 has no SHOW BINARY LOG STATUS (a syntax error there). */
    STMT(ORCH_PROBE_STMT_MASTER_STATUS, FAM_MARIADB, V(0, 0, 0), "SHOW MASTER STATUS"),
    STMT(ORCH_PROBE_STMT_MASTER_STATUS, FAM_MYSQL, V(8, 2, 0), "SHOW BINARY LOG STATUS"),
    STMT(ORCH_PROBE_STMT_MASTER_STATUS, FAM_MYSQL, V(0, 0, 0), "SHOW MASTER STATUS"),

    /* MariaDB 10.11 has SHOW REPLICA HOSTS but not SHOW REPLICAS. */
    STMT(ORCH_PROBE_STMT_REPLICA_HOSTS, FAM_MARIADB, V(0, 0, 0), "SHOW SLAVE HOSTS"),
    STMT(ORCH_PROBE_STMT_REPLICA_HOSTS, FAM_MYSQL, V(8, 0, 22), "SHOW REPLICAS"),
    STMT(ORCH_PROBE_STMT_REPLICA_HOSTS, FAM_MYSQL, V(0, 0, 0), "SHOW SLAVE HOSTS"),

    /*
     * information_schema.PROCESSLIST exists on every version we support
     * (deprecated but present in MySQL 8.4); performance_schema is off by
     * default on MariaDB. Without PROCESS only our own threads show.
     */
    STMT(ORCH_PROBE_STMT_PROCESSLIST, FAM_ANY, V(0, 0, 0),
         "SELECT ID, USER, HOST, COMMAND, TIME, STATE FROM information_schema.PROCESSLIST "
         "WHERE COMMAND LIKE 'Binlog Dump%'"),

    STMT(ORCH_PROBE_STMT_GRANTS, FAM_ANY, V(0, 0, 0), "SHOW GRANTS"),
};

static const char *const stmt_names[ORCH_PROBE_STMT__COUNT] = {
    [ORCH_PROBE_STMT_VARIABLES] = "variables",
    [ORCH_PROBE_STMT_SEMISYNC_VARS] = "semisync-variables",
    [ORCH_PROBE_STMT_STATUS] = "status",
    [ORCH_PROBE_STMT_REPLICA_STATUS] = "replica-status",
    [ORCH_PROBE_STMT_MASTER_STATUS] = "master-status",
    [ORCH_PROBE_STMT_REPLICA_HOSTS] = "replica-hosts",
    [ORCH_PROBE_STMT_PROCESSLIST] = "processlist",
    [ORCH_PROBE_STMT_GRANTS] = "grants",
};

const char *orch_probe_stmt_name(orch_probe_stmt which)
{
    if ((unsigned)which >= ORCH_PROBE_STMT__COUNT)
        return "unknown";
    return stmt_names[which];
}

static bool family_of(const orch_version *v, family *out)
{
    switch (v->flavor) {
    case ORCH_FLAVOR_MYSQL:
    case ORCH_FLAVOR_PERCONA:
        *out = FAM_MYSQL;
        return true;
    case ORCH_FLAVOR_MARIADB:
        *out = FAM_MARIADB;
        return true;
    case ORCH_FLAVOR_UNKNOWN:
        break;
    }
    return false;
}

static bool at_least(const orch_version *v, const int since[3])
{
    orch_version want = {.major = since[0], .minor = since[1], .patch = since[2]};
    return orch_version_compare(v, &want) >= 0;
}

const char *orch_probe_statement(orch_probe_stmt which, const orch_version *v)
{
    family fam;
    if (v == NULL || (unsigned)which >= ORCH_PROBE_STMT__COUNT || !family_of(v, &fam))
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(stmt_table); i++) {
        const stmt_row *r = &stmt_table[i];
        if (r->which == which && (r->fam == FAM_ANY || r->fam == fam) && at_least(v, r->since))
            return r->sql;
    }
    return NULL;
}

/* ---- field tables ----------------------------------------------------------- */

typedef enum field_kind {
    FK_STR,    /* char *, copied as is */
    FK_GTID,   /* char *, without the newlines MySQL prints after each comma */
    FK_U32,    /* uint32_t */
    FK_U64,    /* uint64_t */
    FK_I64,    /* int64_t */
    FK_BOOL,   /* protobuf_c_boolean: 1/0, ON/OFF, YES/NO, TRUE/FALSE */
    FK_THREAD, /* Orch__ThreadState: Yes / No / Connecting (MariaDB's Preparing too) */
} field_kind;

#define NO_HAS    ((size_t)-1)
#define MAX_NAMES 3

/* One proto field and every column name that fills it. */
typedef struct field_spec {
    const char *names[MAX_NAMES];
    field_kind kind;
    size_t off;     /* offset of the value (or the char *) in the message */
    size_t has_off; /* offset of has_<field>, NO_HAS for strings */
} field_spec;

/* clang-format off */
#define STR_FIELD(T, kind, f, ...) {{__VA_ARGS__}, kind, offsetof(T, f), NO_HAS}
#define OPT_FIELD(T, kind, f, ...) {{__VA_ARGS__}, kind, offsetof(T, f), offsetof(T, has_##f)}
/* clang-format on */

#define CH_STR(f, ...)    STR_FIELD(Orch__Channel, FK_STR, f, __VA_ARGS__)
#define CH_GTID(f, ...)   STR_FIELD(Orch__Channel, FK_GTID, f, __VA_ARGS__)
#define CH_OPT(k, f, ...) OPT_FIELD(Orch__Channel, k, f, __VA_ARGS__)
#define SV_STR(f, ...)    STR_FIELD(Orch__ServerStatus, FK_STR, f, __VA_ARGS__)
#define SV_GTID(f, ...)   STR_FIELD(Orch__ServerStatus, FK_GTID, f, __VA_ARGS__)
#define SV_OPT(k, f, ...) OPT_FIELD(Orch__ServerStatus, k, f, __VA_ARGS__)
#define CR_STR(f, ...)    STR_FIELD(Orch__ConnectedReplica, FK_STR, f, __VA_ARGS__)
#define CR_OPT(k, f, ...) OPT_FIELD(Orch__ConnectedReplica, k, f, __VA_ARGS__)

/*
 * SHOW SLAVE STATUS (MariaDB; MySQL 5.7 and 8.0 before 8.0.22), SHOW ALL SLAVES
 * STATUS (MariaDB; adds Connection_name, Slave_SQL_State, Gtid_Slave_Pos...) and
 * SHOW REPLICA STATUS (MySQL 8.0.22+). MariaDB 10.11 prints the old names even
 * for SHOW REPLICA STATUS. Slave_SQL_State (ALL SLAVES only) duplicates
 * Slave_SQL_Running_State and is not read.
 */
static const field_spec channel_fields[] = {
    CH_STR(name, "Connection_name", "Channel_Name"),
    CH_STR(master_host, "Master_Host", "Source_Host"),
    CH_OPT(FK_U32, master_port, "Master_Port", "Source_Port"),
    CH_OPT(FK_THREAD, io_thread, "Slave_IO_Running", "Replica_IO_Running"),
    CH_OPT(FK_THREAD, sql_thread, "Slave_SQL_Running", "Replica_SQL_Running"),
    CH_OPT(FK_U32, last_io_errno, "Last_IO_Errno"),
    CH_STR(last_io_error, "Last_IO_Error"),
    CH_OPT(FK_U32, last_sql_errno, "Last_SQL_Errno"),
    CH_STR(last_sql_error, "Last_SQL_Error"),
    CH_OPT(FK_I64, seconds_behind_master, "Seconds_Behind_Master", "Seconds_Behind_Source"),
    CH_STR(master_log_file, "Master_Log_File", "Source_Log_File"),
    CH_OPT(FK_U64, read_master_log_pos, "Read_Master_Log_Pos", "Read_Source_Log_Pos"),
    CH_STR(relay_master_log_file, "Relay_Master_Log_File", "Relay_Source_Log_File"),
    CH_OPT(FK_U64, exec_master_log_pos, "Exec_Master_Log_Pos", "Exec_Source_Log_Pos"),
    CH_STR(using_gtid, "Using_Gtid"),
    CH_OPT(FK_BOOL, auto_position, "Auto_Position"),
    CH_GTID(retrieved_gtid_set, "Retrieved_Gtid_Set", "Gtid_IO_Pos"),
    CH_GTID(executed_gtid_set, "Executed_Gtid_Set"),
    CH_OPT(FK_U32, sql_delay, "SQL_Delay"),
    CH_OPT(FK_U32, connect_retry, "Connect_Retry"),
    CH_OPT(FK_U32, master_server_id, "Master_Server_Id", "Source_Server_Id"),
    CH_STR(master_uuid, "Master_UUID", "Source_UUID"),
    CH_STR(io_state, "Slave_IO_State", "Replica_IO_State"),
    CH_STR(sql_state, "Slave_SQL_Running_State", "Replica_SQL_Running_State"),
};

/*
 * Global variables and status variables, by the names both flavors use. The
 * semi-sync names changed with MySQL 8.0.26's semisync_source/semisync_replica
 * plugins; MariaDB (built-in semi-sync) keeps master/slave.
 */
static const field_spec server_vars[] = {
    SV_OPT(FK_U32, server_id, "server_id"),
    SV_STR(server_uuid, "server_uuid"),
    SV_STR(version, "version"),
    SV_STR(version_comment, "version_comment"),
    SV_STR(hostname, "hostname"),
    SV_STR(report_host, "report_host"),
    SV_OPT(FK_U32, report_port, "report_port"),
    SV_OPT(FK_BOOL, read_only, "read_only"),
    SV_OPT(FK_BOOL, super_read_only, "super_read_only"),
    SV_OPT(FK_BOOL, log_bin, "log_bin"),
    SV_OPT(FK_BOOL, log_slave_updates, "log_slave_updates", "log_replica_updates"),
    SV_STR(binlog_format, "binlog_format"),
    SV_GTID(gtid_current_pos, "gtid_current_pos"),
    SV_GTID(gtid_binlog_pos, "gtid_binlog_pos"),
    SV_GTID(gtid_slave_pos, "gtid_slave_pos"),
    SV_OPT(FK_BOOL, gtid_strict_mode, "gtid_strict_mode"),
    SV_STR(gtid_mode, "gtid_mode"),
    SV_GTID(gtid_executed, "gtid_executed"),
    SV_GTID(gtid_purged, "gtid_purged"),
    SV_OPT(FK_BOOL, semi_sync_master_enabled, "rpl_semi_sync_master_enabled",
           "rpl_semi_sync_source_enabled"),
    SV_OPT(FK_BOOL, semi_sync_master_status, "Rpl_semi_sync_master_status",
           "Rpl_semi_sync_source_status"),
    SV_OPT(FK_U32, semi_sync_master_clients, "Rpl_semi_sync_master_clients",
           "Rpl_semi_sync_source_clients"),
    SV_OPT(FK_U64, semi_sync_master_timeout_ms, "rpl_semi_sync_master_timeout",
           "rpl_semi_sync_source_timeout"),
    SV_OPT(FK_BOOL, semi_sync_slave_enabled, "rpl_semi_sync_slave_enabled",
           "rpl_semi_sync_replica_enabled"),
    SV_OPT(FK_BOOL, semi_sync_slave_status, "Rpl_semi_sync_slave_status",
           "Rpl_semi_sync_replica_status"),
    SV_OPT(FK_U64, uptime_s, "Uptime"),
};

/* SHOW MASTER STATUS (both) / SHOW BINARY LOG STATUS (MySQL 8.2+). */
static const field_spec master_fields[] = {
    SV_STR(binlog_file, "File"),
    SV_OPT(FK_U64, binlog_pos, "Position"),
    SV_GTID(gtid_executed, "Executed_Gtid_Set"),
};

/* SHOW SLAVE HOSTS (MariaDB, MySQL < 8.0.22) / SHOW REPLICAS (MySQL 8.0.22+). */
static const field_spec replica_host_fields[] = {
    CR_OPT(FK_U32, server_id, "Server_id"),
    CR_STR(host, "Host"),
    CR_OPT(FK_U32, port, "Port"),
};

/* Larger than any field table: the `seen` set of fold_server(). */
#define MAX_FIELDS 64

/* ---- reading values ----------------------------------------------------------- */

static const char *row_name(const orch_probe_row *row, size_t i)
{
    size_t stride = row->name_stride != 0 ? row->name_stride : sizeof(const char *);
    const char *const *p = (const void *)((const char *)row->names + i * stride);
    return *p;
}

static size_t row_len(const orch_probe_row *row, size_t i)
{
    if (row->values[i] == NULL)
        return 0;
    return row->lengths != NULL ? (size_t)row->lengths[i] : strlen(row->values[i]);
}

/* How much of a value goes into an error message. */
#define SHOW_LEN(len) ((int)((len) > 64 ? 64 : (len)))

/* A NUL-terminated copy of len bytes; GTID sets lose their newlines. */
static char *copy_value(const char *val, size_t len, bool gtid)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (gtid && (val[i] == '\n' || val[i] == '\r'))
            continue;
        s[n++] = val[i];
    }
    s[n] = '\0';
    return s;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return len > 0;
}

/*
 * Reads a decimal integer that fills the whole value: an optional '-' (only
 * when min < 0), then digits. No spaces, no '+', no hex.
 */
static orch_err parse_int(const char *col, const char *val, size_t len, int64_t min, uint64_t max,
                          uint64_t *uout, int64_t *iout, char *msg, size_t msglen)
{
    bool neg = len > 0 && val[0] == '-' && min < 0;
    if (!all_digits(val + neg, len - neg))
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "column %s: '%.*s' is not a number", col,
                         SHOW_LEN(len), val);
    char buf[32];
    if (len >= sizeof(buf))
        return orch_fail(msg, msglen, ORCH_ERR_RANGE, "column %s: %.*s is out of range", col,
                         SHOW_LEN(len), val);
    memcpy(buf, val, len);
    buf[len] = '\0';
    errno = 0;
    if (neg) {
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE || v < min)
            return orch_fail(msg, msglen, ORCH_ERR_RANGE, "column %s: %s is out of range", col,
                             buf);
        *iout = v;
        return ORCH_OK;
    }
    unsigned long long v = strtoull(buf, NULL, 10);
    if (errno == ERANGE || v > max)
        return orch_fail(msg, msglen, ORCH_ERR_RANGE, "column %s: %s is out of range (max %llu)",
                         col, buf, (unsigned long long)max);
    if (uout != NULL)
        *uout = v;
    else
        *iout = (int64_t)v;
    return ORCH_OK;
}

static bool equals_ci(const char *val, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(val, word, len) == 0;
}

static orch_err parse_bool(const char *col, const char *val, size_t len, protobuf_c_boolean *out,
                           char *msg, size_t msglen)
{
    static const char *const yes[] = {"1", "ON", "YES", "TRUE"};
    static const char *const no[] = {"0", "OFF", "NO", "FALSE"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (equals_ci(val, len, yes[i])) {
            *out = 1;
            return ORCH_OK;
        }
        if (equals_ci(val, len, no[i])) {
            *out = 0;
            return ORCH_OK;
        }
    }
    return orch_fail(msg, msglen, ORCH_ERR_PARSE, "column %s: '%.*s' is not a boolean", col,
                     SHOW_LEN(len), val);
}

static orch_err parse_thread(const char *col, const char *val, size_t len, Orch__ThreadState *out,
                             char *msg, size_t msglen)
{
    static const struct {
        const char *text;
        Orch__ThreadState state;
    } states[] = {
        {"Yes", ORCH__THREAD_STATE__THREAD_YES},
        {"No", ORCH__THREAD_STATE__THREAD_NO},
        {"Connecting", ORCH__THREAD_STATE__THREAD_CONNECTING},
        /* MariaDB, for a few ms after START SLAVE while the IO thread starts:
         * refusing it dropped the channel from the report, so the replica
         * looked masterless for one probe */
        {"Preparing", ORCH__THREAD_STATE__THREAD_CONNECTING},
    };
    for (size_t i = 0; i < ARRAY_LEN(states); i++) {
        if (equals_ci(val, len, states[i].text)) {
            *out = states[i].state;
            return ORCH_OK;
        }
    }
    return orch_fail(msg, msglen, ORCH_ERR_PARSE, "column %s: unknown thread state '%.*s'", col,
                     SHOW_LEN(len), val);
}

/*
 * Stores one value into the field fs of message obj. val == NULL (SQL NULL)
 * makes the field absent; so does "" for anything but a string. On failure the
 * field keeps its previous value.
 */
static orch_err set_field(void *obj, const field_spec *fs, const char *col, const char *val,
                          size_t len, char *msg, size_t msglen)
{
    char *base = obj;
    if (fs->has_off == NO_HAS) {
        char **slot = (char **)(base + fs->off);
        char *s = NULL;
        if (val != NULL && (s = copy_value(val, len, fs->kind == FK_GTID)) == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "column %s: out of memory", col);
        free(*slot);
        *slot = s;
        return ORCH_OK;
    }
    protobuf_c_boolean *has = (protobuf_c_boolean *)(base + fs->has_off);
    if (val == NULL || len == 0) {
        *has = 0;
        return ORCH_OK;
    }
    orch_err err = ORCH_OK;
    uint64_t u = 0;
    int64_t i = 0;
    switch (fs->kind) {
    case FK_U32:
        if ((err = parse_int(col, val, len, 0, UINT32_MAX, &u, NULL, msg, msglen)) == ORCH_OK)
            *(uint32_t *)(base + fs->off) = (uint32_t)u;
        break;
    case FK_U64:
        if ((err = parse_int(col, val, len, 0, UINT64_MAX, &u, NULL, msg, msglen)) == ORCH_OK)
            *(uint64_t *)(base + fs->off) = u;
        break;
    case FK_I64:
        if ((err = parse_int(col, val, len, INT64_MIN, INT64_MAX, NULL, &i, msg, msglen)) ==
            ORCH_OK)
            *(int64_t *)(base + fs->off) = i;
        break;
    case FK_BOOL:
        err = parse_bool(col, val, len, (protobuf_c_boolean *)(base + fs->off), msg, msglen);
        break;
    case FK_THREAD:
        err = parse_thread(col, val, len, (Orch__ThreadState *)(base + fs->off), msg, msglen);
        break;
    case FK_STR:
    case FK_GTID:
        assert(!"string kind with a has_ flag");
        break;
    }
    if (err == ORCH_OK)
        *has = 1;
    return err;
}

/* "@@global.server_id" and "@@server_id" are server_id. */
static const char *strip_var_prefix(const char *name)
{
    if (strncmp(name, "@@", 2) == 0) {
        name += 2;
        if (strncasecmp(name, "global.", 7) == 0)
            name += 7;
    }
    return name;
}

static const field_spec *find_field(const field_spec *tab, size_t ntab, const char *name)
{
    for (size_t i = 0; i < ntab; i++)
        for (size_t j = 0; j < MAX_NAMES && tab[i].names[j] != NULL; j++)
            if (strcasecmp(tab[i].names[j], name) == 0)
                return &tab[i];
    return NULL;
}

/*
 * Applies every column of row that tab knows to obj; the others are ignored.
 * seen (optional, ntab entries) records which specs were written.
 */
static orch_err apply_row(void *obj, const field_spec *tab, size_t ntab, const orch_probe_row *row,
                          bool var_names, bool *seen, char *msg, size_t msglen)
{
    for (size_t i = 0; i < row->ncols; i++) {
        const char *name = row_name(row, i);
        if (name == NULL)
            continue;
        if (var_names)
            name = strip_var_prefix(name);
        const field_spec *fs = find_field(tab, ntab, name);
        if (fs == NULL)
            continue;
        orch_err err = set_field(obj, fs, name, row->values[i], row_len(row, i), msg, msglen);
        if (err != ORCH_OK)
            return err;
        if (seen != NULL)
            seen[fs - tab] = true;
    }
    return ORCH_OK;
}

static size_t kind_size(field_kind kind)
{
    switch (kind) {
    case FK_U32:
        return sizeof(uint32_t);
    case FK_U64:
        return sizeof(uint64_t);
    case FK_I64:
        return sizeof(int64_t);
    case FK_BOOL:
        return sizeof(protobuf_c_boolean);
    case FK_THREAD:
        return sizeof(Orch__ThreadState);
    case FK_STR:
    case FK_GTID:
        break;
    }
    return sizeof(char *);
}

/* Moves field fs from src to dst (strings change owner; src loses them). */
static void move_field(void *dst, void *src, const field_spec *fs)
{
    char *d = dst, *s = src;
    if (fs->has_off == NO_HAS) {
        char **ds = (char **)(d + fs->off), **ss = (char **)(s + fs->off);
        free(*ds);
        *ds = *ss;
        *ss = NULL;
        return;
    }
    memcpy(d + fs->off, s + fs->off, kind_size(fs->kind));
    memcpy(d + fs->has_off, s + fs->has_off, sizeof(protobuf_c_boolean));
}

/* Frees the strings tab may have set in obj (a message on the stack). */
static void clear_strings(void *obj, const field_spec *tab, size_t ntab)
{
    for (size_t i = 0; i < ntab; i++) {
        if (tab[i].has_off != NO_HAS)
            continue;
        char **slot = (char **)((char *)obj + tab[i].off);
        free(*slot);
        *slot = NULL;
    }
}

/* ---- channels ----------------------------------------------------------------- */

orch_err orch_probe_parse_channel(const orch_probe_row *row, Orch__Channel **out, char *msg,
                                  size_t msglen)
{
    Orch__Channel *ch = malloc(sizeof(*ch));
    if (ch == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory for a channel");
    orch__channel__init(ch);
    orch_err err =
        apply_row(ch, channel_fields, ARRAY_LEN(channel_fields), row, false, NULL, msg, msglen);
    /* No Connection_name / Channel_Name column: the default connection. */
    if (err == ORCH_OK && ch->name == NULL && (ch->name = copy_value("", 0, false)) == NULL)
        err = orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory for a channel");
    if (err != ORCH_OK) {
        orch_probe_channel_free(ch);
        return err;
    }
    *out = ch;
    return ORCH_OK;
}

void orch_probe_channel_free(Orch__Channel *ch)
{
    if (ch != NULL)
        orch__channel__free_unpacked(ch, NULL);
}

/* ---- server status ------------------------------------------------------------ */

Orch__ServerStatus *orch_probe_server_new(void)
{
    Orch__ServerStatus *st = malloc(sizeof(*st));
    if (st != NULL)
        orch__server_status__init(st);
    return st;
}

void orch_probe_server_free(Orch__ServerStatus *st)
{
    if (st != NULL)
        orch__server_status__free_unpacked(st, NULL);
}

static Orch__Flavor proto_flavor(orch_flavor f)
{
    switch (f) {
    case ORCH_FLAVOR_MYSQL:
        return ORCH__FLAVOR__FLAVOR_MYSQL;
    case ORCH_FLAVOR_MARIADB:
        return ORCH__FLAVOR__FLAVOR_MARIADB;
    case ORCH_FLAVOR_PERCONA:
        return ORCH__FLAVOR__FLAVOR_PERCONA;
    case ORCH_FLAVOR_UNKNOWN:
        break;
    }
    return ORCH__FLAVOR__FLAVOR_UNKNOWN;
}

/*
 * Parses row into a scratch ServerStatus first and moves what it found into st
 * only when every column parsed, so that a bad value leaves st as it was. With
 * derive_flavor, a version in the row also sets st->flavor.
 */
static orch_err fold_server(Orch__ServerStatus *st, const field_spec *tab, size_t ntab,
                            const orch_probe_row *row, bool var_names, bool derive_flavor,
                            char *msg, size_t msglen)
{
    assert(ntab <= MAX_FIELDS);
    Orch__ServerStatus tmp = ORCH__SERVER_STATUS__INIT;
    bool seen[MAX_FIELDS] = {false};
    orch_err err = apply_row(&tmp, tab, ntab, row, var_names, seen, msg, msglen);
    bool have_flavor = false;
    Orch__Flavor flavor = ORCH__FLAVOR__FLAVOR_UNKNOWN;
    if (err == ORCH_OK && derive_flavor && tmp.version != NULL) {
        const char *comment = tmp.version_comment;
        if (comment == NULL && !seen[find_field(tab, ntab, "version_comment") - tab])
            comment = st->version_comment;
        orch_version v;
        char vmsg[128];
        err = orch_version_parse(tmp.version, comment, &v, vmsg, sizeof(vmsg));
        if (err != ORCH_OK) {
            orch_fail(msg, msglen, err, "column version: %s", vmsg);
        } else {
            have_flavor = true;
            flavor = proto_flavor(v.flavor);
        }
    }
    if (err != ORCH_OK) {
        clear_strings(&tmp, tab, ntab);
        return err;
    }
    for (size_t i = 0; i < ntab; i++)
        if (seen[i])
            move_field(st, &tmp, &tab[i]);
    if (have_flavor) {
        st->has_flavor = 1;
        st->flavor = flavor;
    }
    return ORCH_OK;
}

orch_err orch_probe_parse_variables(const orch_probe_row *row, Orch__ServerStatus *st, char *msg,
                                    size_t msglen)
{
    return fold_server(st, server_vars, ARRAY_LEN(server_vars), row, true, true, msg, msglen);
}

orch_err orch_probe_parse_master_status(const orch_probe_row *row, Orch__ServerStatus *st,
                                        char *msg, size_t msglen)
{
    return fold_server(st, master_fields, ARRAY_LEN(master_fields), row, false, false, msg, msglen);
}

static bool find_column(const orch_probe_row *row, const char *a, const char *b, size_t *idx)
{
    for (size_t i = 0; i < row->ncols; i++) {
        const char *name = row_name(row, i);
        if (name != NULL && (strcasecmp(name, a) == 0 || (b != NULL && strcasecmp(name, b) == 0))) {
            *idx = i;
            return true;
        }
    }
    return false;
}

orch_err orch_probe_parse_status_var(const orch_probe_row *row, Orch__ServerStatus *st, char *msg,
                                     size_t msglen)
{
    size_t ni, vi;
    if (!find_column(row, "Variable_name", NULL, &ni) ||
        !find_column(row, "Value", "Variable_value", &vi))
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "not a Variable_name/Value row (%zu columns)",
                         row->ncols);
    const char *name = row->values[ni];
    if (name == NULL)
        return ORCH_OK;
    /* Re-present the pair as a one-column row named after the variable. */
    char namebuf[128];
    size_t nlen = row_len(row, ni);
    if (nlen >= sizeof(namebuf))
        return ORCH_OK; /* longer than any name we know */
    memcpy(namebuf, name, nlen);
    namebuf[nlen] = '\0';
    const char *names[1] = {namebuf};
    const char *values[1] = {row->values[vi]};
    unsigned long lengths[1] = {(unsigned long)row_len(row, vi)};
    orch_probe_row one = {.ncols = 1, .names = names, .values = values, .lengths = lengths};
    return fold_server(st, server_vars, ARRAY_LEN(server_vars), &one, false, false, msg, msglen);
}

/* ---- connected replicas ------------------------------------------------------- */

void orch_probe_replica_free(Orch__ConnectedReplica *r)
{
    if (r != NULL)
        orch__connected_replica__free_unpacked(r, NULL);
}

static orch_err new_replica(Orch__ConnectedReplica **out, char *msg, size_t msglen)
{
    Orch__ConnectedReplica *r = malloc(sizeof(*r));
    if (r == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory for a replica");
    orch__connected_replica__init(r);
    *out = r;
    return ORCH_OK;
}

orch_err orch_probe_parse_replica_host(const orch_probe_row *row, Orch__ConnectedReplica **out,
                                       char *msg, size_t msglen)
{
    Orch__ConnectedReplica *r = NULL;
    orch_err err = new_replica(&r, msg, msglen);
    if (err != ORCH_OK)
        return err;
    err = apply_row(r, replica_host_fields, ARRAY_LEN(replica_host_fields), row, false, NULL, msg,
                    msglen);
    if (err != ORCH_OK) {
        orch_probe_replica_free(r);
        return err;
    }
    /* MySQL shows an empty Host for a replica without report_host. */
    if (r->host != NULL && r->host[0] == '\0') {
        free(r->host);
        r->host = NULL;
    }
    *out = r;
    return ORCH_OK;
}

/*
 * The address part of a processlist Host: "10.0.0.5:54321" -> "10.0.0.5",
 * "[fe80::1]:54321" -> "fe80::1", "localhost" (a unix socket) -> "localhost".
 * Both servers append ":port" to every TCP client, so an unbracketed IPv6
 * address with more than one ':' is split at the last one (inferred from the
 * format, not seen on a MySQL IPv6 client).
 */
static void split_client_host(const char *h, size_t len, size_t *start, size_t *end)
{
    *start = 0;
    *end = len;
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        if (close != NULL) {
            *start = 1;
            *end = (size_t)(close - h);
        }
        return;
    }
    for (size_t i = len; i > 0; i--) {
        if (h[i - 1] == ':') {
            if (all_digits(h + i, len - i))
                *end = i - 1;
            return;
        }
    }
}

orch_err orch_probe_parse_processlist(const orch_probe_row *row, Orch__ConnectedReplica **out,
                                      char *msg, size_t msglen)
{
    size_t ci, hi;
    if (!find_column(row, "Command", NULL, &ci) || row->values[ci] == NULL) {
        *out = NULL;
        return ORCH_OK;
    }
    const char *cmd = row->values[ci];
    size_t clen = row_len(row, ci);
    if (!equals_ci(cmd, clen, "Binlog Dump") && !equals_ci(cmd, clen, "Binlog Dump GTID")) {
        *out = NULL;
        return ORCH_OK;
    }
    Orch__ConnectedReplica *r = NULL;
    orch_err err = new_replica(&r, msg, msglen);
    if (err != ORCH_OK)
        return err;
    if (find_column(row, "Host", NULL, &hi) && row->values[hi] != NULL) {
        size_t start, end;
        split_client_host(row->values[hi], row_len(row, hi), &start, &end);
        if (end > start &&
            (r->host = copy_value(row->values[hi] + start, end - start, false)) == NULL) {
            orch_probe_replica_free(r);
            return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory for a replica");
        }
    }
    *out = r;
    return ORCH_OK;
}

/* ---- privileges ---------------------------------------------------------------- */

enum {
    P_ALL = 1u << 0,
    P_SUPER = 1u << 1,
    P_PROCESS = 1u << 2,
    P_REPL_CLIENT = 1u << 3, /* MariaDB 10.5+: the same privilege as BINLOG MONITOR */
    P_REPL_SLAVE = 1u << 4,
    P_READ_ONLY_ADMIN = 1u << 5,
    P_REPL_MASTER_ADMIN = 1u << 6,
    P_REPL_SLAVE_ADMIN = 1u << 7, /* MySQL REPLICATION_SLAVE_ADMIN too */
    P_SLAVE_MONITOR = 1u << 8,
    P_CONNECTION_ADMIN = 1u << 9, /* MySQL CONNECTION_ADMIN too */
    P_SYSVARS_ADMIN = 1u << 10,   /* MySQL SYSTEM_VARIABLES_ADMIN */
    P_RELOAD = 1u << 11,          /* RESET SLAVE / RESET REPLICA */
};

/* Privilege names after normalisation: upper case, '_' as ' ', single spaces. */
static const struct {
    const char *name;
    uint32_t bit;
} priv_names[] = {
    {"ALL", P_ALL},
    {"ALL PRIVILEGES", P_ALL},
    {"SUPER", P_SUPER},
    {"PROCESS", P_PROCESS},
    {"REPLICATION CLIENT", P_REPL_CLIENT},
    {"BINLOG MONITOR", P_REPL_CLIENT},
    {"REPLICATION SLAVE", P_REPL_SLAVE},
    {"REPLICATION REPLICA", P_REPL_SLAVE},
    {"READ ONLY ADMIN", P_READ_ONLY_ADMIN},
    {"REPLICATION MASTER ADMIN", P_REPL_MASTER_ADMIN},
    {"REPLICATION SLAVE ADMIN", P_REPL_SLAVE_ADMIN},
    {"REPLICATION REPLICA ADMIN", P_REPL_SLAVE_ADMIN},
    {"SLAVE MONITOR", P_SLAVE_MONITOR},
    {"REPLICA MONITOR", P_SLAVE_MONITOR},
    {"CONNECTION ADMIN", P_CONNECTION_ADMIN},
    {"SYSTEM VARIABLES ADMIN", P_SYSVARS_ADMIN},
    {"RELOAD", P_RELOAD},
};

typedef struct priv_need {
    family fam;
    int since[3]; /* applies to since <= version < until */
    int until[3]; /* V(0, 0, 0): no upper bound */
    uint32_t any_of;
    const char *privilege; /* what the operator should GRANT */
    const char *consequence;
} priv_need;

/*
 * What recoveries need, by flavor and version. ALL PRIVILEGES covers every row.
 *
 * MariaDB 10.11, verified on 10.11.19 with one account per privilege: SUPER
 * alone runs SHOW SLAVE STATUS, SHOW MASTER STATUS, STOP/START SLAVE, CHANGE
 * MASTER and KILL of another user's thread, but not SET GLOBAL read_only (error
 * names READ_ONLY ADMIN), not SHOW SLAVE HOSTS (REPLICATION MASTER ADMIN), and
 * does not show other users' threads in the processlist (PROCESS). BINLOG
 * MONITOR or REPLICATION SLAVE ADMIN alone does not allow SHOW SLAVE STATUS;
 * REPLICATION SLAVE does not allow SHOW SLAVE HOSTS. SHOW GRANTS prints the
 * aliases REPLICATION CLIENT, REPLICA MONITOR and REPLICATION REPLICA ADMIN as
 * BINLOG MONITOR, SLAVE MONITOR and REPLICATION SLAVE ADMIN.
 *
 * MariaDB 10.5.2 to 10.10 (inferred from the MariaDB documentation, not run):
 * the same privileges exist; SUPER still implied READ_ONLY ADMIN until 10.11.0.
 * Older MariaDB (inferred): SUPER, REPLICATION CLIENT, REPLICATION SLAVE, PROCESS.
 *
 * MySQL 8.0/8.4 (from the MySQL manuals, not run): SET GLOBAL read_only needs
 * SYSTEM_VARIABLES_ADMIN or SUPER; replication control REPLICATION_SLAVE_ADMIN
 * or SUPER; SHOW REPLICA STATUS and SHOW BINARY LOG STATUS REPLICATION CLIENT or
 * SUPER; SHOW REPLICAS REPLICATION SLAVE; KILL of another user's thread
 * CONNECTION_ADMIN or SUPER. MySQL 5.7: the dynamic privileges do not exist and
 * SUPER does their work.
 */
/* clang-format off */
#define NEED(fam, since, until, any_of, privilege, consequence) \
    {fam, since, until, any_of, privilege, consequence}
/* clang-format on */

static const priv_need priv_needs[] = {
    /* MariaDB 10.11+ */
    NEED(FAM_MARIADB, V(10, 11, 0), V(0, 0, 0), P_READ_ONLY_ADMIN, "READ_ONLY ADMIN",
         "SET GLOBAL read_only will fail"),
    NEED(FAM_MARIADB, V(10, 5, 2), V(0, 0, 0), P_REPL_MASTER_ADMIN, "REPLICATION MASTER ADMIN",
         "SHOW SLAVE HOSTS will fail"),
    NEED(FAM_MARIADB, V(10, 5, 2), V(0, 0, 0), P_REPL_SLAVE_ADMIN | P_SUPER,
         "REPLICATION SLAVE ADMIN", "STOP/START SLAVE and CHANGE MASTER will fail"),
    NEED(FAM_MARIADB, V(10, 5, 2), V(0, 0, 0), P_REPL_CLIENT | P_SUPER, "BINLOG MONITOR",
         "SHOW MASTER STATUS will fail"),
    NEED(FAM_MARIADB, V(10, 5, 2), V(0, 0, 0), P_SLAVE_MONITOR | P_SUPER, "SLAVE MONITOR",
         "SHOW SLAVE STATUS will fail"),
    NEED(FAM_MARIADB, V(10, 5, 2), V(0, 0, 0), P_CONNECTION_ADMIN | P_SUPER, "CONNECTION ADMIN",
         "killing client connections when fencing will fail"),
    /* MariaDB 10.5.2 - 10.10: SUPER still covers read_only. */
    NEED(FAM_MARIADB, V(10, 5, 2), V(10, 11, 0), P_READ_ONLY_ADMIN | P_SUPER, "READ_ONLY ADMIN",
         "SET GLOBAL read_only will fail"),
    /* MariaDB before 10.5.2 */
    NEED(FAM_MARIADB, V(0, 0, 0), V(10, 5, 2), P_SUPER, "SUPER",
         "SET GLOBAL read_only, STOP/START SLAVE, CHANGE MASTER and KILL will fail"),
    NEED(FAM_MARIADB, V(0, 0, 0), V(10, 5, 2), P_REPL_CLIENT | P_SUPER, "REPLICATION CLIENT",
         "SHOW SLAVE STATUS and SHOW MASTER STATUS will fail"),
    NEED(FAM_MARIADB, V(0, 0, 0), V(10, 5, 2), P_REPL_SLAVE, "REPLICATION SLAVE",
         "SHOW SLAVE HOSTS will fail"),

    /* MySQL / Percona 8.0+ */
    NEED(FAM_MYSQL, V(8, 0, 0), V(0, 0, 0), P_SYSVARS_ADMIN | P_SUPER, "SYSTEM_VARIABLES_ADMIN",
         "SET GLOBAL read_only / super_read_only will fail"),
    NEED(FAM_MYSQL, V(8, 0, 0), V(0, 0, 0), P_REPL_SLAVE_ADMIN | P_SUPER, "REPLICATION_SLAVE_ADMIN",
         "STOP/START REPLICA and CHANGE REPLICATION SOURCE will fail"),
    NEED(FAM_MYSQL, V(8, 0, 0), V(0, 0, 0), P_CONNECTION_ADMIN | P_SUPER, "CONNECTION_ADMIN",
         "killing client connections when fencing will fail"),
    /* MySQL 5.7 */
    NEED(FAM_MYSQL, V(0, 0, 0), V(8, 0, 0), P_SUPER, "SUPER",
         "SET GLOBAL read_only, STOP/START SLAVE, CHANGE MASTER and KILL will fail"),
    /* all MySQL */
    NEED(FAM_MYSQL, V(0, 0, 0), V(0, 0, 0), P_REPL_CLIENT | P_SUPER, "REPLICATION CLIENT",
         "SHOW REPLICA STATUS and SHOW BINARY LOG STATUS will fail"),
    NEED(FAM_MYSQL, V(0, 0, 0), V(0, 0, 0), P_REPL_SLAVE, "REPLICATION SLAVE",
         "SHOW REPLICAS will fail"),

    /* every flavor; RESET SLAVE ALL needs RELOAD (verified on 10.11.19: error
     * 1227 without it; MySQL's RESET REPLICA needs it too, per its manual) */
    NEED(FAM_ANY, V(0, 0, 0), V(0, 0, 0), P_PROCESS, "PROCESS",
         "replicas' binlog dump threads are invisible in the processlist"),
    NEED(FAM_ANY, V(0, 0, 0), V(0, 0, 0), P_RELOAD, "RELOAD",
         "RESET SLAVE/REPLICA ALL (ResetReplica, used when promoting) will fail"),
};

void orch_probe_grants_init(orch_probe_grants *g)
{
    g->held = 0;
}

/* Case-insensitive search for needle (lower-case free) in h[0..len). */
static const char *find_ci(const char *h, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(h + i, needle, n) == 0)
            return h + i;
    return NULL;
}

/* Looks up one privilege name (raw text, len bytes) and returns its bit, or 0. */
static uint32_t priv_bit(const char *p, size_t len)
{
    char norm[64];
    size_t n = 0;
    bool space = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i] == '_' ? ' ' : p[i];
        if (isspace((unsigned char)c)) {
            space = n > 0;
            continue;
        }
        if (space && n + 1 < sizeof(norm))
            norm[n++] = ' ';
        space = false;
        if (n + 1 >= sizeof(norm))
            return 0;
        norm[n++] = (char)toupper((unsigned char)c);
    }
    norm[n] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(priv_names); i++)
        if (strcmp(priv_names[i].name, norm) == 0)
            return priv_names[i].bit;
    return 0;
}

void orch_probe_grants_add(orch_probe_grants *g, const char *line, size_t len)
{
    while (len > 0 && isspace((unsigned char)*line)) {
        line++;
        len--;
    }
    if (len < 6 || strncasecmp(line, "GRANT ", 6) != 0)
        return;
    const char *privs = line + 6;
    const char *on = find_ci(privs, len - 6, " ON ");
    if (on == NULL)
        return; /* GRANT `role` TO ... */
    size_t plen = (size_t)(on - privs);
    if (memchr(privs, '`', plen) != NULL || memchr(privs, '\'', plen) != NULL)
        return; /* a quoted role name that happens to contain " ON " */
    const char *obj = on + 4;
    size_t rest = len - (size_t)(obj - line);
    if (rest < 3 || memcmp(obj, "*.*", 3) != 0 || (rest > 3 && obj[3] != ' '))
        return; /* database, table or routine level */
    while (plen > 0) {
        const char *comma = memchr(privs, ',', plen);
        size_t n = comma != NULL ? (size_t)(comma - privs) : plen;
        g->held |= priv_bit(privs, n);
        if (comma == NULL)
            break;
        privs += n + 1;
        plen -= n + 1;
    }
}

void orch_probe_grants_add_row(orch_probe_grants *g, const orch_probe_row *row)
{
    if (row->ncols > 0 && row->values[0] != NULL)
        orch_probe_grants_add(g, row->values[0], row_len(row, 0));
}

static const char *flavor_display(orch_flavor f)
{
    switch (f) {
    case ORCH_FLAVOR_MYSQL:
        return "MySQL";
    case ORCH_FLAVOR_MARIADB:
        return "MariaDB";
    case ORCH_FLAVOR_PERCONA:
        return "Percona Server";
    case ORCH_FLAVOR_UNKNOWN:
        break;
    }
    return "unknown server";
}

static bool need_applies(const priv_need *n, family fam, const orch_version *v)
{
    if ((n->fam != FAM_ANY && n->fam != fam) || !at_least(v, n->since))
        return false;
    bool bounded = n->until[0] != 0 || n->until[1] != 0 || n->until[2] != 0;
    return !bounded || !at_least(v, n->until);
}

void orch_probe_strings_free(char **strings, size_t n)
{
    if (strings == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

orch_err orch_probe_grants_missing(const orch_probe_grants *g, const orch_version *v,
                                   char ***problems, size_t *nproblems, char *msg, size_t msglen)
{
    family fam;
    if (v == NULL || !family_of(v, &fam))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "privilege check needs a known flavor");
    size_t count = 0;
    for (size_t i = 0; i < ARRAY_LEN(priv_needs); i++)
        if (need_applies(&priv_needs[i], fam, v) && !(g->held & (priv_needs[i].any_of | P_ALL)))
            count++;
    if (count == 0) {
        *problems = NULL;
        *nproblems = 0;
        return ORCH_OK;
    }
    char **list = calloc(count, sizeof(*list));
    if (list == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory for privilege problems");
    size_t k = 0;
    for (size_t i = 0; i < ARRAY_LEN(priv_needs); i++) {
        const priv_need *n = &priv_needs[i];
        if (!need_applies(n, fam, v) || (g->held & (n->any_of | P_ALL)))
            continue;
        const char *alt =
            (n->any_of & P_SUPER) && strcmp(n->privilege, "SUPER") != 0 ? " (or SUPER)" : "";
        int len = snprintf(NULL, 0, "missing privilege %s%s: %s (%s %d.%d)", n->privilege, alt,
                           n->consequence, flavor_display(v->flavor), v->major, v->minor);
        if (len < 0 || (list[k] = malloc((size_t)len + 1)) == NULL) {
            orch_probe_strings_free(list, k);
            return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory for privilege problems");
        }
        snprintf(list[k], (size_t)len + 1, "missing privilege %s%s: %s (%s %d.%d)", n->privilege,
                 alt, n->consequence, flavor_display(v->flavor), v->major, v->minor);
        k++;
    }
    assert(k == count);
    *problems = list;
    *nproblems = count;
    return ORCH_OK;
}
