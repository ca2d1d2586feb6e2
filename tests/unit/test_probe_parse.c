/*
 * Unit tests for probe_parse.c, driven by the recorded result sets in
 * fixtures/probe/ (see the README there for the \G format and the NULL marker).
 * Runs with tests/unit as its working directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture loader ------------------------------------------------------------ */

typedef struct fx_row {
    size_t n, cap;
    char **names;
    char **values; /* NULL entries are SQL NULL */
    unsigned long *lengths;
} fx_row;

typedef struct fixture {
    size_t nrows;
    fx_row *rows;
} fixture;

static char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void fx_add_col(fx_row *r, char *name, char *value)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->names = realloc(r->names, r->cap * sizeof(*r->names));
        r->values = realloc(r->values, r->cap * sizeof(*r->values));
        r->lengths = realloc(r->lengths, r->cap * sizeof(*r->lengths));
        assert_true(r->names && r->values && r->lengths);
    }
    r->names[r->n] = name;
    r->values[r->n] = value;
    r->lengths[r->n] = value ? (unsigned long)strlen(value) : 0;
    r->n++;
}

/* A column line: its first ':' is followed by ' ' or ends the line, after a name. */
static bool fx_split(const char *line, size_t len, size_t *name_start, size_t *name_end,
                     size_t *value_start)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return false;
    size_t c = (size_t)(colon - line);
    if (c + 1 < len && line[c + 1] != ' ')
        return false;
    size_t s = 0;
    while (s < c && line[s] == ' ')
        s++;
    if (s == c)
        return false;
    *name_start = s;
    *name_end = c;
    *value_start = c + 1 < len ? c + 2 : len;
    return true;
}

static fixture *fx_load(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "fixtures/probe/%s", name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    while ((got = getline(&line, &linecap, f)) >= 0) {
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (fx->nrows == 0 && (len == 0 || line[0] == '#'))
            continue;
        if (len > 10 && strncmp(line, "**********", 10) == 0 && strstr(line, ". row ")) {
            fx->rows = realloc(fx->rows, (fx->nrows + 1) * sizeof(*fx->rows));
            assert_non_null(fx->rows);
            memset(&fx->rows[fx->nrows], 0, sizeof(fx_row));
            fx->nrows++;
            continue;
        }
        if (fx->nrows == 0)
            fail_msg("%s: text before the first row: %.*s", name, (int)len, line);
        fx_row *r = &fx->rows[fx->nrows - 1];
        size_t ns, ne, vs;
        if (fx_split(line, len, &ns, &ne, &vs)) {
            char *value = NULL;
            if (!(len - vs == 4 && memcmp(line + vs, "NULL", 4) == 0))
                value = xstrndup(line + vs, len - vs);
            fx_add_col(r, xstrndup(line + ns, ne - ns), value);
        } else if (len > 0) {
            /* continuation of a multi-line value */
            if (r->n == 0 || r->values[r->n - 1] == NULL)
                fail_msg("%s: stray line: %.*s", name, (int)len, line);
            char *prev = r->values[r->n - 1];
            size_t plen = strlen(prev);
            char *joined = malloc(plen + 1 + len + 1);
            assert_non_null(joined);
            memcpy(joined, prev, plen);
            joined[plen] = '\n';
            memcpy(joined + plen + 1, line, len);
            joined[plen + 1 + len] = '\0';
            free(prev);
            r->values[r->n - 1] = joined;
            r->lengths[r->n - 1] = (unsigned long)(plen + 1 + len);
        }
    }
    free(line);
    fclose(f);
    return fx;
}

static void fx_free(fixture *fx)
{
    for (size_t i = 0; i < fx->nrows; i++) {
        fx_row *r = &fx->rows[i];
        for (size_t j = 0; j < r->n; j++) {
            free(r->names[j]);
            free(r->values[j]);
        }
        free(r->names);
        free(r->values);
        free(r->lengths);
    }
    free(fx->rows);
    free(fx);
}

static orch_probe_row fx_view(const fixture *fx, size_t i)
{
    assert_true(i < fx->nrows);
    const fx_row *r = &fx->rows[i];
    orch_probe_row row = {
        .ncols = r->n,
        .names = r->names,
        .name_stride = sizeof(char *),
        .values = (const char *const *)r->values,
        .lengths = r->lengths,
    };
    return row;
}

/* An inline row from name/value pairs; values are NUL-terminated, no lengths. */
#define ROW(names_, values_)                                                                       \
    ((orch_probe_row){.ncols = ARRAY_LEN(names_), .names = (names_), .values = (values_)})

static orch_version ver(const char *version, const char *comment)
{
    orch_version v;
    char msg[128];
    assert_int_equal(orch_version_parse(version, comment, &v, msg, sizeof(msg)), ORCH_OK);
    return v;
}

/* ---- statements ------------------------------------------------------------------ */

static void test_statement_table(void **state)
{
    (void)state;
    static const struct {
        const char *version, *comment;
        orch_probe_stmt which;
        const char *sql; /* exact */
    } cases[] = {
        {"10.11.19-MariaDB-0+deb12u1-log", NULL, ORCH_PROBE_STMT_REPLICA_STATUS,
         "SHOW ALL SLAVES STATUS"},
        {"10.11.19-MariaDB-0+deb12u1-log", NULL, ORCH_PROBE_STMT_MASTER_STATUS,
         "SHOW MASTER STATUS"},
        {"10.11.19-MariaDB-0+deb12u1-log", NULL, ORCH_PROBE_STMT_REPLICA_HOSTS, "SHOW SLAVE HOSTS"},
        {"5.5.5-10.6.16-MariaDB", NULL, ORCH_PROBE_STMT_REPLICA_STATUS, "SHOW ALL SLAVES STATUS"},
        {"5.7.44-log", NULL, ORCH_PROBE_STMT_REPLICA_STATUS, "SHOW SLAVE STATUS"},
        {"5.7.44-log", NULL, ORCH_PROBE_STMT_MASTER_STATUS, "SHOW MASTER STATUS"},
        {"5.7.44-log", NULL, ORCH_PROBE_STMT_REPLICA_HOSTS, "SHOW SLAVE HOSTS"},
        {"8.0.21", NULL, ORCH_PROBE_STMT_REPLICA_STATUS, "SHOW SLAVE STATUS"},
        {"8.0.21", NULL, ORCH_PROBE_STMT_REPLICA_HOSTS, "SHOW SLAVE HOSTS"},
        {"8.0.22", NULL, ORCH_PROBE_STMT_REPLICA_STATUS, "SHOW REPLICA STATUS"},
        {"8.0.22", NULL, ORCH_PROBE_STMT_REPLICA_HOSTS, "SHOW REPLICAS"},
        {"8.0.36", NULL, ORCH_PROBE_STMT_MASTER_STATUS, "SHOW MASTER STATUS"},
        {"8.1.0", NULL, ORCH_PROBE_STMT_MASTER_STATUS, "SHOW MASTER STATUS"},
        {"8.2.0", NULL, ORCH_PROBE_STMT_MASTER_STATUS, "SHOW BINARY LOG STATUS"},
        {"8.4.0", NULL, ORCH_PROBE_STMT_REPLICA_STATUS, "SHOW REPLICA STATUS"},
        {"8.4.0", NULL, ORCH_PROBE_STMT_MASTER_STATUS, "SHOW BINARY LOG STATUS"},
        {"8.4.0", NULL, ORCH_PROBE_STMT_REPLICA_HOSTS, "SHOW REPLICAS"},
        {"8.0.36-28", "Percona Server (GPL), Release 28", ORCH_PROBE_STMT_REPLICA_STATUS,
         "SHOW REPLICA STATUS"},
        {"8.4.0", NULL, ORCH_PROBE_STMT_GRANTS, "SHOW GRANTS"},
        {"10.11.6-MariaDB", NULL, ORCH_PROBE_STMT_SEMISYNC_VARS,
         "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'"},
        {"8.4.0", NULL, ORCH_PROBE_STMT_SEMISYNC_VARS,
         "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        orch_version v = ver(cases[i].version, cases[i].comment);
        const char *sql = orch_probe_statement(cases[i].which, &v);
        assert_non_null(sql);
        if (strcmp(sql, cases[i].sql) != 0)
            fail_msg("%s %s: got '%s', want '%s'", cases[i].version,
                     orch_probe_stmt_name(cases[i].which), sql, cases[i].sql);
    }
}

static void test_statement_variables_by_flavor(void **state)
{
    (void)state;
    static const struct {
        const char *version;
        const char *has[4];
        const char *lacks[4];
    } cases[] = {
        {"10.11.19-MariaDB",
         {"@@global.gtid_current_pos", "gtid_slave_pos", "gtid_strict_mode", "log_slave_updates"},
         {"server_uuid", "super_read_only", "gtid_executed", "rpl_semi"}},
        {"8.0.25",
         {"server_uuid", "super_read_only", "gtid_executed", "log_slave_updates"},
         {"gtid_current_pos", "log_replica_updates", "rpl_semi", "gtid_strict_mode"}},
        {"8.0.26",
         {"server_uuid", "super_read_only", "gtid_purged", "log_replica_updates"},
         {"gtid_current_pos", "log_slave_updates", "rpl_semi", "gtid_binlog_pos"}},
        {"8.4.0",
         {"server_uuid", "gtid_mode", "report_host", "log_replica_updates"},
         {"gtid_current_pos", "log_slave_updates", "rpl_semi", "gtid_slave_pos"}},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        orch_version v = ver(cases[i].version, NULL);
        const char *sql = orch_probe_statement(ORCH_PROBE_STMT_VARIABLES, &v);
        assert_non_null(sql);
        for (size_t j = 0; j < 4; j++) {
            if (strstr(sql, cases[i].has[j]) == NULL)
                fail_msg("%s: variables query lacks %s", cases[i].version, cases[i].has[j]);
            if (strstr(sql, cases[i].lacks[j]) != NULL)
                fail_msg("%s: variables query has %s", cases[i].version, cases[i].lacks[j]);
        }
    }
}

/* The table agrees with version.h's predicates, and every statement exists. */
static void test_statement_agrees_with_version_h(void **state)
{
    (void)state;
    static const char *const versions[] = {"5.7.44",
                                           "8.0.0",
                                           "8.0.21",
                                           "8.0.22",
                                           "8.0.36",
                                           "8.1.0",
                                           "8.2.0",
                                           "8.4.0",
                                           "9.1.0",
                                           "10.11.6-MariaDB",
                                           "11.4.2-MariaDB",
                                           "10.4.30-MariaDB",
                                           "8.0.36-28-Percona"};
    for (size_t i = 0; i < ARRAY_LEN(versions); i++) {
        orch_version v = ver(versions[i], NULL);
        for (int s = 0; s < ORCH_PROBE_STMT__COUNT; s++)
            assert_non_null(orch_probe_statement((orch_probe_stmt)s, &v));
        const char *rs = orch_probe_statement(ORCH_PROBE_STMT_REPLICA_STATUS, &v);
        const char *ms = orch_probe_statement(ORCH_PROBE_STMT_MASTER_STATUS, &v);
        assert_int_equal(strcmp(rs, "SHOW REPLICA STATUS") == 0,
                         orch_version_uses_replica_syntax(&v));
        assert_int_equal(strcmp(ms, "SHOW BINARY LOG STATUS") == 0,
                         orch_version_uses_binary_log_status(&v));
    }
    orch_version unknown = {.major = 8, .minor = 0, .patch = 36, .flavor = ORCH_FLAVOR_UNKNOWN};
    assert_null(orch_probe_statement(ORCH_PROBE_STMT_REPLICA_STATUS, &unknown));
    orch_version my = ver("8.0.36", NULL);
    assert_null(orch_probe_statement(ORCH_PROBE_STMT__COUNT, &my));
    assert_null(orch_probe_statement(ORCH_PROBE_STMT_GRANTS, NULL));
    assert_string_equal(orch_probe_stmt_name(ORCH_PROBE_STMT_REPLICA_STATUS), "replica-status");
    assert_string_equal(orch_probe_stmt_name(ORCH_PROBE_STMT__COUNT), "unknown");
}

/* ---- channels ------------------------------------------------------------------- */

#define ABSENT (-1)

typedef struct chan_expect {
    const char *fixture;
    size_t nrows, row;
    const char *name, *host;
    long long port;
    int io, sql;   /* Orch__ThreadState */
    long long lag; /* ABSENT when NULL */
    const char *read_file;
    long long read_pos;
    const char *exec_file;
    long long exec_pos;
    const char *using_gtid; /* NULL: absent */
    int auto_position;      /* ABSENT, 0, 1 */
    const char *retrieved, *executed;
    long long io_errno, sql_errno, sql_delay, connect_retry, master_server_id;
    const char *master_uuid, *io_state;
} chan_expect;

#define YES  ORCH__THREAD_STATE__THREAD_YES
#define NO   ORCH__THREAD_STATE__THREAD_NO
#define CONN ORCH__THREAD_STATE__THREAD_CONNECTING

static const char GTID80[] =
    "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5817,8d2f3b1c-0a5e-11ef-b6a2-0242ac120003:1-12";
static const char GTID84[] = "a1b2c3d4-0000-11ef-8000-0242ac120010:1-99230,"
                             "c9d8e7f6-0000-11ef-8000-0242ac120020:1-4410,"
                             "f0e1d2c3-0000-11ef-8000-0242ac120030:1-7";

static const chan_expect chan_cases[] = {
    {"mariadb-10.11-all-slaves-running.txt",
     1,
     0,
     "",
     "127.0.0.1",
     29900,
     YES,
     YES,
     0,
     "vm-bin.000002",
     1721,
     "vm-bin.000002",
     1721,
     "Slave_Pos",
     ABSENT,
     "0-1-34",
     NULL,
     0,
     0,
     0,
     1,
     1,
     NULL,
     "Waiting for master to send event"},
    {"mariadb-10.11-all-slaves-connecting.txt",
     1,
     0,
     "",
     "127.0.0.1",
     29900,
     CONN,
     YES,
     ABSENT,
     "",
     4,
     "",
     4,
     "Slave_Pos",
     ABSENT,
     "",
     NULL,
     1045,
     0,
     0,
     1,
     0,
     NULL,
     "Connecting to master"},
    {"mariadb-10.11-all-slaves-stopped.txt",
     1,
     0,
     "",
     "127.0.0.1",
     29900,
     NO,
     NO,
     ABSENT,
     "vm-bin.000002",
     1721,
     "vm-bin.000002",
     1721,
     "Slave_Pos",
     ABSENT,
     "0-1-34",
     NULL,
     0,
     0,
     0,
     1,
     1,
     NULL,
     ""},
    {"mariadb-10.11-all-slaves-sql-error.txt",
     1,
     0,
     "",
     "127.0.0.1",
     29900,
     YES,
     NO,
     ABSENT,
     "vm-bin.000002",
     1408,
     "vm-bin.000001",
     325,
     "Slave_Pos",
     ABSENT,
     "0-1-32",
     NULL,
     0,
     1396,
     0,
     1,
     1,
     NULL,
     "Waiting for master to send event"},
    {"mariadb-10.11-slave-status.txt",
     1,
     0,
     "",
     "127.0.0.1",
     29900,
     NO,
     NO,
     ABSENT,
     "vm-bin.000002",
     1721,
     "vm-bin.000002",
     1721,
     "Slave_Pos",
     ABSENT,
     "0-1-34",
     NULL,
     0,
     0,
     0,
     1,
     1,
     NULL,
     ""},
    {"mariadb-10.11-all-slaves-multi.txt",
     2,
     0,
     "alpha",
     "db11.example",
     3306,
     YES,
     YES,
     0,
     "db11-bin.000007",
     4521,
     "db11-bin.000007",
     4521,
     "Slave_Pos",
     ABSENT,
     "1-11-900",
     NULL,
     0,
     0,
     0,
     1,
     11,
     NULL,
     "Waiting for master to send event"},
    {"mariadb-10.11-all-slaves-multi.txt",
     2,
     1,
     "beta",
     "db21.example",
     3307,
     YES,
     YES,
     7,
     "db21-bin.000007",
     88231,
     "db21-bin.000007",
     88231,
     "Current_Pos",
     ABSENT,
     "2-21-77",
     NULL,
     0,
     0,
     0,
     1,
     21,
     NULL,
     "Waiting for master to send event"},
    {"mysql-8.0-replica-status-gtid.txt",
     1,
     0,
     "",
     "db1.example.com",
     3306,
     YES,
     YES,
     3,
     "mysql-bin.000042",
     91532811,
     "mysql-bin.000042",
     91532811,
     NULL,
     1,
     "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5817",
     GTID80,
     0,
     0,
     0,
     60,
     101,
     "3e11fa47-71ca-11e1-9e33-c80aa9429562",
     "Waiting for source to send event"},
    {"mysql-8.0-slave-status.txt",
     1,
     0,
     "",
     "10.0.0.11",
     3306,
     CONN,
     YES,
     ABSENT,
     "mysql-bin.000108",
     4470392,
     "mysql-bin.000108",
     4470392,
     NULL,
     0,
     "",
     "",
     2003,
     0,
     3600,
     60,
     11,
     "5b0d2c4e-1f7a-11ee-9c1d-0242ac110002",
     "Connecting to master"},
    {"mysql-8.4-replica-status-two-channels.txt",
     2,
     0,
     "east",
     "db-east-1.example.com",
     3306,
     YES,
     YES,
     12,
     "mysql-bin.000042",
     777123,
     "mysql-bin.000042",
     777123,
     NULL,
     1,
     "a1b2c3d4-0000-11ef-8000-0242ac120010:1-99231",
     GTID84,
     0,
     0,
     0,
     60,
     201,
     "a1b2c3d4-0000-11ef-8000-0242ac120010",
     "Waiting for source to send event"},
    {"mysql-8.4-replica-status-two-channels.txt",
     2,
     1,
     "west",
     "db-west-1.example.com",
     3306,
     NO,
     NO,
     ABSENT,
     "mysql-bin.000042",
     5102,
     "mysql-bin.000042",
     5102,
     NULL,
     1,
     "c9d8e7f6-0000-11ef-8000-0242ac120020:1-4411",
     GTID84,
     0,
     1062,
     0,
     60,
     301,
     "c9d8e7f6-0000-11ef-8000-0242ac120020",
     ""},
};

static void expect_str(const char *what, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got '%s', want '%s'", what, got ? got : "(absent)", want ? want : "(absent)");
}

static void expect_u(const char *what, protobuf_c_boolean has, uint64_t got, long long want)
{
    if (want == ABSENT) {
        if (has)
            fail_msg("%s: got %llu, want absent", what, (unsigned long long)got);
        return;
    }
    if (!has)
        fail_msg("%s: absent, want %lld", what, want);
    if (got != (uint64_t)want)
        fail_msg("%s: got %llu, want %lld", what, (unsigned long long)got, want);
}

static void test_channel_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(chan_cases); i++) {
        const chan_expect *e = &chan_cases[i];
        print_message("channel %s row %zu\n", e->fixture, e->row);
        fixture *fx = fx_load(e->fixture);
        assert_int_equal(fx->nrows, e->nrows);
        orch_probe_row row = fx_view(fx, e->row);
        Orch__Channel *ch = NULL;
        char msg[256] = "";
        orch_err err = orch_probe_parse_channel(&row, &ch, msg, sizeof(msg));
        if (err != ORCH_OK)
            fail_msg("%s: %s", e->fixture, msg);
        expect_str("name", ch->name, e->name);
        expect_str("master_host", ch->master_host, e->host);
        expect_u("master_port", ch->has_master_port, ch->master_port, e->port);
        expect_u("io_thread", ch->has_io_thread, ch->io_thread, e->io);
        expect_u("sql_thread", ch->has_sql_thread, ch->sql_thread, e->sql);
        if (e->lag == ABSENT)
            assert_false(ch->has_seconds_behind_master);
        else {
            assert_true(ch->has_seconds_behind_master);
            assert_int_equal(ch->seconds_behind_master, e->lag);
        }
        expect_str("master_log_file", ch->master_log_file, e->read_file);
        expect_u("read_master_log_pos", ch->has_read_master_log_pos, ch->read_master_log_pos,
                 e->read_pos);
        expect_str("relay_master_log_file", ch->relay_master_log_file, e->exec_file);
        expect_u("exec_master_log_pos", ch->has_exec_master_log_pos, ch->exec_master_log_pos,
                 e->exec_pos);
        expect_str("using_gtid", ch->using_gtid, e->using_gtid);
        expect_u("auto_position", ch->has_auto_position, ch->auto_position, e->auto_position);
        expect_str("retrieved_gtid_set", ch->retrieved_gtid_set, e->retrieved);
        expect_str("executed_gtid_set", ch->executed_gtid_set, e->executed);
        expect_u("last_io_errno", ch->has_last_io_errno, ch->last_io_errno, e->io_errno);
        expect_u("last_sql_errno", ch->has_last_sql_errno, ch->last_sql_errno, e->sql_errno);
        expect_u("sql_delay", ch->has_sql_delay, ch->sql_delay, e->sql_delay);
        expect_u("connect_retry", ch->has_connect_retry, ch->connect_retry, e->connect_retry);
        expect_u("master_server_id", ch->has_master_server_id, ch->master_server_id,
                 e->master_server_id);
        expect_str("master_uuid", ch->master_uuid, e->master_uuid);
        expect_str("io_state", ch->io_state, e->io_state);
        /* errors present exactly when their errno is non-zero */
        assert_non_null(ch->last_io_error);
        assert_int_equal(ch->last_io_error[0] != '\0', e->io_errno != 0);
        assert_non_null(ch->last_sql_error);
        assert_int_equal(ch->last_sql_error[0] != '\0', e->sql_errno != 0);
        assert_false(ch->has_witness); /* not ours to set */
        orch_probe_channel_free(ch);
        fx_free(fx);
    }
}

static void test_channel_null_is_not_zero(void **state)
{
    (void)state;
    static const struct {
        const char *col, *val;
        bool has;
        int64_t lag;
    } cases[] = {
        {"Seconds_Behind_Master", NULL, false, 0}, {"Seconds_Behind_Master", "0", true, 0},
        {"Seconds_Behind_Source", NULL, false, 0}, {"Seconds_Behind_Source", "", false, 0},
        {"seconds_behind_master", "42", true, 42}, {"Seconds_Behind_Master", "-1", true, -1},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *names[] = {"Slave_IO_Running", cases[i].col};
        const char *values[] = {"Yes", cases[i].val};
        orch_probe_row row = ROW(names, values);
        Orch__Channel *ch = NULL;
        assert_int_equal(orch_probe_parse_channel(&row, &ch, NULL, 0), ORCH_OK);
        assert_int_equal(ch->has_seconds_behind_master, cases[i].has);
        assert_int_equal(ch->seconds_behind_master, cases[i].lag);
        orch_probe_channel_free(ch);
    }
}

/* Every thread state a server prints, MariaDB's transient "Preparing" included. */
static void test_channel_thread_states(void **state)
{
    (void)state;
    static const struct {
        const char *io, *sql;
        Orch__ThreadState io_state, sql_state;
    } cases[] = {
        {"Yes", "Yes", ORCH__THREAD_STATE__THREAD_YES, ORCH__THREAD_STATE__THREAD_YES},
        {"No", "No", ORCH__THREAD_STATE__THREAD_NO, ORCH__THREAD_STATE__THREAD_NO},
        {"Connecting", "Yes", ORCH__THREAD_STATE__THREAD_CONNECTING,
         ORCH__THREAD_STATE__THREAD_YES},
        {"Preparing", "Yes", ORCH__THREAD_STATE__THREAD_CONNECTING, ORCH__THREAD_STATE__THREAD_YES},
        {"preparing", "no", ORCH__THREAD_STATE__THREAD_CONNECTING, ORCH__THREAD_STATE__THREAD_NO},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *names[] = {"Master_Host", "Slave_IO_Running", "Slave_SQL_Running"};
        const char *values[] = {"db1", cases[i].io, cases[i].sql};
        orch_probe_row row = ROW(names, values);
        Orch__Channel *ch = NULL;
        char msg[256] = "";
        if (orch_probe_parse_channel(&row, &ch, msg, sizeof(msg)) != ORCH_OK)
            fail_msg("%s/%s: %s", cases[i].io, cases[i].sql, msg);
        assert_int_equal(ch->io_thread, cases[i].io_state);
        assert_int_equal(ch->sql_thread, cases[i].sql_state);
        orch_probe_channel_free(ch);
    }
}

static void test_channel_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *col, *val;
        orch_err err;
    } cases[] = {
        {"Master_Port", "33o6", ORCH_ERR_PARSE},
        {"Source_Port", "-1", ORCH_ERR_PARSE},
        {"Master_Port", " 3306", ORCH_ERR_PARSE},
        {"Master_Port", "3306 ", ORCH_ERR_PARSE},
        {"Master_Port", "+3306", ORCH_ERR_PARSE},
        {"Master_Port", "0x10", ORCH_ERR_PARSE},
        {"Master_Port", "4294967296", ORCH_ERR_RANGE},
        {"Read_Source_Log_Pos", "18446744073709551616", ORCH_ERR_RANGE},
        {"Exec_Master_Log_Pos", "123456789012345678901234567890123456", ORCH_ERR_RANGE},
        {"Seconds_Behind_Master", "abc", ORCH_ERR_PARSE},
        {"Seconds_Behind_Source", "-", ORCH_ERR_PARSE},
        {"Seconds_Behind_Master", "9223372036854775808", ORCH_ERR_RANGE},
        {"Seconds_Behind_Master", "-9223372036854775809", ORCH_ERR_RANGE},
        {"Slave_IO_Running", "Maybe", ORCH_ERR_PARSE},
        {"Replica_SQL_Running", "Yess", ORCH_ERR_PARSE},
        {"Auto_Position", "2", ORCH_ERR_PARSE},
        {"SQL_Delay", "1.5", ORCH_ERR_PARSE},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        /* strings before and after the bad column must not leak */
        const char *names[] = {"Master_Host", cases[i].col, "Executed_Gtid_Set"};
        const char *values[] = {"db1", cases[i].val, "uuid:1-5,\nuuid2:1-3"};
        orch_probe_row row = ROW(names, values);
        Orch__Channel *sentinel = (Orch__Channel *)&row;
        Orch__Channel *ch = sentinel;
        char msg[256] = "";
        orch_err err = orch_probe_parse_channel(&row, &ch, msg, sizeof(msg));
        if (err != cases[i].err)
            fail_msg("%s='%s': got %s (%s), want %s", cases[i].col, cases[i].val,
                     orch_strerror(err), msg, orch_strerror(cases[i].err));
        assert_ptr_equal(ch, sentinel); /* untouched on failure */
        if (strstr(msg, cases[i].col) == NULL)
            fail_msg("message '%s' does not name column %s", msg, cases[i].col);
        char want[64];
        snprintf(want, sizeof(want), "%.20s", cases[i].val);
        if (strstr(msg, want) == NULL)
            fail_msg("message '%s' does not show value %s", msg, cases[i].val);
    }
}

static void test_channel_unknown_and_missing_columns(void **state)
{
    (void)state;
    const char *names[] = {"Frobnicate", "Channel_Name", "Parallel_Mode", "Slave_heartbeat_period"};
    const char *values[] = {"x", "c1", "optimistic", "30.000"};
    orch_probe_row row = ROW(names, values);
    Orch__Channel *ch = NULL;
    assert_int_equal(orch_probe_parse_channel(&row, &ch, NULL, 0), ORCH_OK);
    assert_string_equal(ch->name, "c1");
    assert_null(ch->master_host);
    assert_false(ch->has_io_thread);
    assert_false(ch->has_master_port);
    assert_false(ch->has_seconds_behind_master);
    orch_probe_channel_free(ch);

    orch_probe_row empty = {.ncols = 0, .names = NULL, .values = NULL};
    assert_int_equal(orch_probe_parse_channel(&empty, &ch, NULL, 0), ORCH_OK);
    assert_string_equal(ch->name, ""); /* the default connection */
    orch_probe_channel_free(ch);
}

/* The shape of a MYSQL_FIELD array: name first, other members after. */
struct fake_field {
    char *name;
    char *org_name;
    unsigned long length;
    int type;
};

static void test_row_from_field_array_with_lengths(void **state)
{
    (void)state;
    struct fake_field fields[] = {
        {"Source_Port", "x", 0, 3},
        {"Channel_Name", "x", 0, 253},
        {"Executed_Gtid_Set", "x", 0, 253},
        {"Last_IO_Error", "x", 0, 253},
    };
    /* values not NUL-terminated where the length stops: lengths must rule */
    const char buf[] = "3306XXchanYYa:1-2,\nb:3\nZZ";
    const char *values[] = {buf, buf + 6, buf + 12, NULL};
    unsigned long lengths[] = {4, 4, 11, 0};
    orch_probe_row row = {
        .ncols = 4,
        .names = &fields[0].name,
        .name_stride = sizeof(struct fake_field),
        .values = values,
        .lengths = lengths,
    };
    Orch__Channel *ch = NULL;
    char msg[128];
    assert_int_equal(orch_probe_parse_channel(&row, &ch, msg, sizeof(msg)), ORCH_OK);
    assert_true(ch->has_master_port);
    assert_int_equal(ch->master_port, 3306);
    assert_string_equal(ch->name, "chan");
    assert_string_equal(ch->executed_gtid_set, "a:1-2,b:3");
    assert_null(ch->last_io_error); /* NULL is absent, not "" */
    orch_probe_channel_free(ch);
}

/* ---- server status -------------------------------------------------------------- */

static Orch__ServerStatus *server_from(const char *const *files, size_t nfiles)
{
    Orch__ServerStatus *st = orch_probe_server_new();
    assert_non_null(st);
    for (size_t f = 0; f < nfiles; f++) {
        fixture *fx = fx_load(files[f]);
        for (size_t i = 0; i < fx->nrows; i++) {
            orch_probe_row row = fx_view(fx, i);
            char msg[256] = "";
            orch_err err;
            if (strstr(files[f], "master-status") || strstr(files[f], "binary-log-status"))
                err = orch_probe_parse_master_status(&row, st, msg, sizeof(msg));
            else if (strstr(files[f], "-variables.txt") && !strstr(files[f], "semisync"))
                err = orch_probe_parse_variables(&row, st, msg, sizeof(msg));
            else
                err = orch_probe_parse_status_var(&row, st, msg, sizeof(msg));
            if (err != ORCH_OK)
                fail_msg("%s row %zu: %s", files[f], i + 1, msg);
        }
        fx_free(fx);
    }
    return st;
}

static void test_server_mariadb(void **state)
{
    (void)state;
    static const char *const files[] = {
        "mariadb-10.11-variables.txt", "mariadb-10.11-semisync-variables.txt",
        "mariadb-10.11-status.txt", "mariadb-10.11-master-status.txt"};
    Orch__ServerStatus *st = server_from(files, ARRAY_LEN(files));
    expect_u("server_id", st->has_server_id, st->server_id, 1);
    assert_null(st->server_uuid);
    assert_string_equal(st->version, "10.11.19-MariaDB-0+deb12u1-log");
    assert_string_equal(st->version_comment, "Debian 12");
    assert_true(st->has_flavor);
    assert_int_equal(st->flavor, ORCH__FLAVOR__FLAVOR_MARIADB);
    assert_string_equal(st->hostname, "vm");
    assert_string_equal(st->report_host, "db1.example");
    expect_u("report_port", st->has_report_port, st->report_port, 29900);
    expect_u("read_only", st->has_read_only, st->read_only, 0);
    assert_false(st->has_super_read_only);
    expect_u("log_bin", st->has_log_bin, st->log_bin, 1);
    expect_u("log_slave_updates", st->has_log_slave_updates, st->log_slave_updates, 0);
    assert_string_equal(st->binlog_format, "MIXED");
    assert_string_equal(st->gtid_current_pos, "0-1-34");
    assert_string_equal(st->gtid_binlog_pos, "0-1-34");
    assert_string_equal(st->gtid_slave_pos, "0-1-34");
    expect_u("gtid_strict_mode", st->has_gtid_strict_mode, st->gtid_strict_mode, 0);
    assert_null(st->gtid_mode);
    assert_null(st->gtid_executed);
    assert_null(st->gtid_purged);
    expect_u("semi master enabled", st->has_semi_sync_master_enabled, st->semi_sync_master_enabled,
             0);
    expect_u("semi master timeout", st->has_semi_sync_master_timeout_ms,
             st->semi_sync_master_timeout_ms, 10000);
    expect_u("semi slave enabled", st->has_semi_sync_slave_enabled, st->semi_sync_slave_enabled, 0);
    expect_u("semi master status", st->has_semi_sync_master_status, st->semi_sync_master_status, 0);
    expect_u("semi master clients", st->has_semi_sync_master_clients, st->semi_sync_master_clients,
             0);
    expect_u("semi slave status", st->has_semi_sync_slave_status, st->semi_sync_slave_status, 0);
    expect_u("uptime", st->has_uptime_s, st->uptime_s, 22);
    assert_string_equal(st->binlog_file, "vm-bin.000002");
    expect_u("binlog_pos", st->has_binlog_pos, st->binlog_pos, 1721);
    orch_probe_server_free(st);
}

static void test_server_mysql(void **state)
{
    (void)state;
    static const struct {
        const char *files[4];
        Orch__Flavor flavor;
        const char *version;
        int read_only;
        const char *binlog_file;
        long long binlog_pos;
        const char *gtid_executed;
        int semi; /* 1: the 8.4 semisync_source fixtures are loaded */
    } cases[] = {
        {{"mysql-8.0-variables.txt", "mysql-8.0-master-status.txt"},
         ORCH__FLAVOR__FLAVOR_MYSQL,
         "8.0.36",
         1,
         "mysql-bin.000042",
         91532811,
         GTID80,
         0},
        {{"mysql-8.4-variables.txt", "mysql-8.4-semisync-variables.txt", "mysql-8.4-status.txt",
          "mysql-8.4-binary-log-status.txt"},
         ORCH__FLAVOR__FLAVOR_MYSQL,
         "8.4.0",
         0,
         "binlog.000003",
         157,
         "a1b2c3d4-0000-11ef-8000-0242ac120010:1-99230",
         1},
        {{"percona-8.0-variables.txt"},
         ORCH__FLAVOR__FLAVOR_PERCONA,
         "8.0.36-28",
         1,
         NULL,
         ABSENT,
         GTID80,
         0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = 0;
        while (n < 4 && cases[i].files[n] != NULL)
            n++;
        Orch__ServerStatus *st = server_from(cases[i].files, n);
        assert_true(st->has_flavor);
        assert_int_equal(st->flavor, cases[i].flavor);
        assert_string_equal(st->version, cases[i].version);
        expect_u("server_id", st->has_server_id, st->server_id, 102);
        assert_string_equal(st->server_uuid, "8d2f3b1c-0a5e-11ef-b6a2-0242ac120003");
        assert_null(st->report_host); /* NULL in the fixture */
        expect_u("report_port", st->has_report_port, st->report_port, 3306);
        expect_u("read_only", st->has_read_only, st->read_only, cases[i].read_only);
        expect_u("super_read_only", st->has_super_read_only, st->super_read_only,
                 cases[i].read_only);
        expect_u("log_slave_updates", st->has_log_slave_updates, st->log_slave_updates, 1);
        assert_string_equal(st->binlog_format, "ROW");
        assert_string_equal(st->gtid_mode, "ON");
        expect_str("gtid_executed", st->gtid_executed, cases[i].gtid_executed);
        assert_string_equal(st->gtid_purged, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-2000");
        assert_null(st->gtid_current_pos);
        assert_false(st->has_gtid_strict_mode);
        expect_str("binlog_file", st->binlog_file, cases[i].binlog_file);
        expect_u("binlog_pos", st->has_binlog_pos, st->binlog_pos, cases[i].binlog_pos);
        if (cases[i].semi) {
            expect_u("semi enabled", st->has_semi_sync_master_enabled, st->semi_sync_master_enabled,
                     1);
            expect_u("semi timeout", st->has_semi_sync_master_timeout_ms,
                     st->semi_sync_master_timeout_ms, 2500);
            expect_u("semi status", st->has_semi_sync_master_status, st->semi_sync_master_status,
                     1);
            expect_u("semi clients", st->has_semi_sync_master_clients, st->semi_sync_master_clients,
                     2);
            assert_false(st->has_semi_sync_slave_enabled);
            expect_u("uptime", st->has_uptime_s, st->uptime_s, 1209600);
        } else {
            assert_false(st->has_semi_sync_master_enabled);
            assert_false(st->has_uptime_s);
        }
        orch_probe_server_free(st);
    }
}

static void test_server_variable_names_and_atomicity(void **state)
{
    (void)state;
    Orch__ServerStatus *st = orch_probe_server_new();
    assert_non_null(st);
    char msg[256];

    /* SELECT @@x without aliases */
    const char *n1[] = {"@@server_id", "@@GLOBAL.read_only", "@@global.version_comment"};
    const char *v1[] = {"7", "ON", "Percona Server (GPL), Release 28"};
    orch_probe_row r1 = ROW(n1, v1);
    assert_int_equal(orch_probe_parse_variables(&r1, st, msg, sizeof(msg)), ORCH_OK);
    expect_u("server_id", st->has_server_id, st->server_id, 7);
    expect_u("read_only", st->has_read_only, st->read_only, 1);
    assert_false(st->has_flavor);

    /* a bad value anywhere in the row leaves st as it was */
    const char *n2[] = {"server_id", "hostname", "report_port"};
    const char *v2[] = {"9", "db9", "x1"};
    orch_probe_row r2 = ROW(n2, v2);
    assert_int_equal(orch_probe_parse_variables(&r2, st, msg, sizeof(msg)), ORCH_ERR_PARSE);
    assert_non_null(strstr(msg, "report_port"));
    assert_non_null(strstr(msg, "x1"));
    expect_u("server_id", st->has_server_id, st->server_id, 7);
    assert_null(st->hostname);

    /* a version that does not parse is an error naming the column */
    const char *n3[] = {"hostname", "version"};
    const char *v3[] = {"db9", "banana"};
    orch_probe_row r3 = ROW(n3, v3);
    assert_int_equal(orch_probe_parse_variables(&r3, st, msg, sizeof(msg)), ORCH_ERR_PARSE);
    assert_non_null(strstr(msg, "version"));
    assert_null(st->hostname);
    assert_null(st->version);

    /* version now, comment from the earlier call: Percona */
    const char *n4[] = {"version", "report_host"};
    const char *v4[] = {"8.0.36-28", NULL};
    orch_probe_row r4 = ROW(n4, v4);
    assert_int_equal(orch_probe_parse_variables(&r4, st, msg, sizeof(msg)), ORCH_OK);
    assert_true(st->has_flavor);
    assert_int_equal(st->flavor, ORCH__FLAVOR__FLAVOR_PERCONA);
    assert_null(st->report_host);

    /* a later NULL clears, a later value replaces (no leak under ASan) */
    const char *n5[] = {"version_comment", "server_id", "hostname"};
    const char *v5[] = {NULL, NULL, "db10"};
    orch_probe_row r5 = ROW(n5, v5);
    assert_int_equal(orch_probe_parse_variables(&r5, st, msg, sizeof(msg)), ORCH_OK);
    assert_null(st->version_comment);
    assert_false(st->has_server_id);
    assert_string_equal(st->hostname, "db10");

    /* bad booleans, in both row shapes */
    const char *n6[] = {"gtid_strict_mode"};
    const char *v6[] = {"maybe"};
    orch_probe_row r6 = ROW(n6, v6);
    assert_int_equal(orch_probe_parse_variables(&r6, st, msg, sizeof(msg)), ORCH_ERR_PARSE);
    assert_non_null(strstr(msg, "gtid_strict_mode"));
    const char *n7[] = {"Variable_name", "Value"};
    const char *v7[] = {"Rpl_semi_sync_master_clients", "many"};
    orch_probe_row r7 = ROW(n7, v7);
    assert_int_equal(orch_probe_parse_status_var(&r7, st, msg, sizeof(msg)), ORCH_ERR_PARSE);
    assert_non_null(strstr(msg, "Rpl_semi_sync_master_clients"));
    assert_false(st->has_semi_sync_master_clients);

    /* information_schema shape, unknown names, and a row that is not name/value */
    const char *n8[] = {"VARIABLE_NAME", "VARIABLE_VALUE"};
    const char *v8[] = {"UPTIME", "99"};
    orch_probe_row r8 = ROW(n8, v8);
    assert_int_equal(orch_probe_parse_status_var(&r8, st, msg, sizeof(msg)), ORCH_OK);
    expect_u("uptime", st->has_uptime_s, st->uptime_s, 99);
    const char *v9[] = {"Rpl_semi_sync_master_net_waits", "junk"};
    orch_probe_row r9 = ROW(n8, v9);
    assert_int_equal(orch_probe_parse_status_var(&r9, st, msg, sizeof(msg)), ORCH_OK);
    const char *n10[] = {"Name", "Value"};
    orch_probe_row r10 = ROW(n10, v8);
    assert_int_equal(orch_probe_parse_status_var(&r10, st, msg, sizeof(msg)), ORCH_ERR_PARSE);

    const char *n11[] = {"File", "Position"};
    const char *v11[] = {"binlog.000009", "12x"};
    orch_probe_row r11 = ROW(n11, v11);
    assert_int_equal(orch_probe_parse_master_status(&r11, st, msg, sizeof(msg)), ORCH_ERR_PARSE);
    assert_non_null(strstr(msg, "Position"));
    assert_null(st->binlog_file);
    orch_probe_server_free(st);
}

/* ---- connected replicas --------------------------------------------------------- */

typedef struct replica_expect {
    const char *host; /* NULL: absent */
    long long port, server_id;
} replica_expect;

static void check_replicas(const char *file, bool processlist, const replica_expect *want,
                           size_t nwant)
{
    fixture *fx = fx_load(file);
    size_t k = 0;
    for (size_t i = 0; i < fx->nrows; i++) {
        orch_probe_row row = fx_view(fx, i);
        Orch__ConnectedReplica *r = NULL;
        char msg[256] = "";
        orch_err err = processlist ? orch_probe_parse_processlist(&row, &r, msg, sizeof(msg))
                                   : orch_probe_parse_replica_host(&row, &r, msg, sizeof(msg));
        if (err != ORCH_OK)
            fail_msg("%s row %zu: %s", file, i + 1, msg);
        if (r == NULL)
            continue;
        if (k >= nwant)
            fail_msg("%s: more replicas than expected", file);
        expect_str("host", r->host, want[k].host);
        expect_u("port", r->has_port, r->port, want[k].port);
        expect_u("server_id", r->has_server_id, r->server_id, want[k].server_id);
        orch_probe_replica_free(r);
        k++;
    }
    assert_int_equal(k, nwant);
    fx_free(fx);
}

static void test_replica_hosts(void **state)
{
    (void)state;
    static const replica_expect maria[] = {{"db1.example", 29900, 1}};
    check_replicas("mariadb-10.11-slave-hosts.txt", false, maria, ARRAY_LEN(maria));
    static const replica_expect my80[] = {{"db2.example.com", 3306, 102}, {NULL, 3306, 103}};
    check_replicas("mysql-8.0-slave-hosts.txt", false, my80, ARRAY_LEN(my80));
    static const replica_expect my84[] = {{"iconnect2", 3306, 10}, {"athena", 3307, 21}};
    check_replicas("mysql-8.4-replicas.txt", false, my84, ARRAY_LEN(my84));

    const char *names[] = {"Server_id", "Host", "Port"};
    const char *values[] = {"12", "h", "99999999999"};
    orch_probe_row row = ROW(names, values);
    Orch__ConnectedReplica *r = NULL;
    char msg[128];
    assert_int_equal(orch_probe_parse_replica_host(&row, &r, msg, sizeof(msg)), ORCH_ERR_RANGE);
    assert_null(r);
    assert_non_null(strstr(msg, "Port"));
}

static void test_processlist(void **state)
{
    (void)state;
    static const replica_expect maria[] = {{"localhost", ABSENT, ABSENT}};
    check_replicas("mariadb-10.11-processlist.txt", true, maria, ARRAY_LEN(maria));
    static const replica_expect my84[] = {{"10.0.0.12", ABSENT, ABSENT},
                                          {"10.0.0.13", ABSENT, ABSENT}};
    check_replicas("mysql-8.4-processlist.txt", true, my84, ARRAY_LEN(my84));

    static const struct {
        const char *command, *host;
        bool dump;
        const char *want;
    } cases[] = {
        {"Binlog Dump", "10.0.0.5:54321", true, "10.0.0.5"},
        {"binlog dump gtid", "db7.example:33012", true, "db7.example"},
        {"Binlog Dump GTID", "[fe80::1]:40000", true, "fe80::1"},
        {"Binlog Dump GTID", "::ffff:10.0.0.5:3345", true, "::ffff:10.0.0.5"},
        {"Binlog Dump", "localhost", true, "localhost"},
        {"Binlog Dump", "", true, NULL},
        {"Binlog Dump", NULL, true, NULL},
        {"Query", "10.0.0.5:1", false, NULL},
        {"Binlog Dumpster", "10.0.0.5:1", false, NULL},
        {NULL, "10.0.0.5:1", false, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *names[] = {"Id", "User", "Host", "Command"};
        const char *values[] = {"5", "repl", cases[i].host, cases[i].command};
        orch_probe_row row = ROW(names, values);
        Orch__ConnectedReplica *r = (Orch__ConnectedReplica *)&row;
        assert_int_equal(orch_probe_parse_processlist(&row, &r, NULL, 0), ORCH_OK);
        if (!cases[i].dump) {
            assert_null(r);
            continue;
        }
        assert_non_null(r);
        expect_str("host", r->host, cases[i].want);
        assert_false(r->has_port);
        orch_probe_replica_free(r);
    }
}

/* ---- privileges ----------------------------------------------------------------- */

typedef struct grants_case {
    const char *fixture;
    const char *version;
    const char *missing[8]; /* privilege names, in order; NULL-terminated */
} grants_case;

static const grants_case grants_cases[] = {
    {"mariadb-10.11-grants-super.txt",
     "10.11.19-MariaDB-0+deb12u1-log",
     {"READ_ONLY ADMIN", "REPLICATION MASTER ADMIN", "PROCESS"}},
    {"mariadb-10.11-grants-full.txt", "10.11.19-MariaDB-0+deb12u1-log", {NULL}},
    {"mariadb-10.11-grants-all.txt", "10.11.19-MariaDB-0+deb12u1-log", {NULL}},
    {"mariadb-10.11-grants-role.txt",
     "10.11.19-MariaDB-0+deb12u1-log",
     {"REPLICATION MASTER ADMIN", "PROCESS", "RELOAD"}},
    /* before 10.11 SUPER still covered read_only */
    {"mariadb-10.11-grants-super.txt", "10.6.16-MariaDB", {"REPLICATION MASTER ADMIN", "PROCESS"}},
    {"mariadb-10.11-grants-super.txt", "10.4.30-MariaDB", {"REPLICATION SLAVE", "PROCESS"}},
    {"mysql-8.0-grants-full.txt", "8.0.36", {NULL}},
    {"mysql-8.0-grants-super.txt", "8.0.36", {"RELOAD"}},
    {"mysql-8.4-grants-monitor.txt",
     "8.4.0",
     {"SYSTEM_VARIABLES_ADMIN", "REPLICATION_SLAVE_ADMIN", "CONNECTION_ADMIN", "REPLICATION SLAVE",
      "PROCESS", "RELOAD"}},
    {"mysql-8.4-grants-monitor.txt", "5.7.44", {"SUPER", "REPLICATION SLAVE", "PROCESS", "RELOAD"}},
};

static void check_missing(const orch_probe_grants *g, const char *version, const char *const *want,
                          const char *label)
{
    orch_version v = ver(version, NULL);
    char **problems = (char **)&v;
    size_t n = 99;
    char msg[128];
    assert_int_equal(orch_probe_grants_missing(g, &v, &problems, &n, msg, sizeof(msg)), ORCH_OK);
    size_t nwant = 0;
    while (nwant < 8 && want[nwant] != NULL)
        nwant++;
    if (n != nwant) {
        for (size_t i = 0; i < n; i++)
            print_message("  %s\n", problems[i]);
        fail_msg("%s on %s: %zu problems, want %zu", label, version, n, nwant);
    }
    if (nwant == 0)
        assert_null(problems);
    for (size_t i = 0; i < n; i++) {
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "missing privilege %s", want[i]);
        if (strncmp(problems[i], prefix, strlen(prefix)) != 0)
            fail_msg("%s: problem %zu is '%s', want '%s...'", label, i, problems[i], prefix);
    }
    orch_probe_strings_free(problems, n);
}

static void test_grants_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(grants_cases); i++) {
        fixture *fx = fx_load(grants_cases[i].fixture);
        orch_probe_grants g;
        orch_probe_grants_init(&g);
        for (size_t r = 0; r < fx->nrows; r++) {
            orch_probe_row row = fx_view(fx, r);
            orch_probe_grants_add_row(&g, &row);
        }
        check_missing(&g, grants_cases[i].version, grants_cases[i].missing,
                      grants_cases[i].fixture);
        fx_free(fx);
    }
}

static void test_grants_messages(void **state)
{
    (void)state;
    orch_probe_grants g;
    orch_probe_grants_init(&g);
    const char line[] = "GRANT RELOAD, SUPER ON *.* TO `su`@`localhost`";
    orch_probe_grants_add(&g, line, strlen(line));
    orch_version v = ver("10.11.19-MariaDB-0+deb12u1-log", NULL);
    char **problems = NULL;
    size_t n = 0;
    assert_int_equal(orch_probe_grants_missing(&g, &v, &problems, &n, NULL, 0), ORCH_OK);
    assert_int_equal(n, 3);
    assert_string_equal(problems[0], "missing privilege READ_ONLY ADMIN: SET GLOBAL read_only "
                                     "will fail (MariaDB 10.11)");
    assert_string_equal(problems[1], "missing privilege REPLICATION MASTER ADMIN: SHOW SLAVE HOSTS "
                                     "will fail (MariaDB 10.11)");
    orch_probe_strings_free(problems, n);

    /* nothing: every need is reported, with its alternative */
    orch_probe_grants_init(&g);
    assert_int_equal(orch_probe_grants_missing(&g, &v, &problems, &n, NULL, 0), ORCH_OK);
    assert_int_equal(n, 8);
    assert_string_equal(problems[2],
                        "missing privilege REPLICATION SLAVE ADMIN (or SUPER): "
                        "STOP/START SLAVE and CHANGE MASTER will fail (MariaDB 10.11)");
    orch_probe_strings_free(problems, n);

    orch_version unknown = {.major = 8, .flavor = ORCH_FLAVOR_UNKNOWN};
    char msg[128];
    problems = (char **)&g;
    assert_int_equal(orch_probe_grants_missing(&g, &unknown, &problems, &n, msg, sizeof(msg)),
                     ORCH_ERR_INVAL);
    assert_ptr_equal(problems, (char **)&g);
}

static void test_grants_lines(void **state)
{
    (void)state;
    static const struct {
        const char *lines[4];
        const char *version;
        const char *missing[8];
    } cases[] = {
        /* aliases and odd spelling count */
        {{"  grant replica monitor, replication replica admin, binlog monitor ON *.* TO x",
          "GRANT Read_Only  Admin,REPLICATION_MASTER_ADMIN , CONNECTION_ADMIN, PROCESS ON *.* TO "
          "y"},
         "10.11.6-MariaDB",
         {"RELOAD"}},
        /* only the global level counts; role grants and REVOKE lines are ignored */
        {{"GRANT ALL PRIVILEGES ON `app`.* TO `orch`@`%`", "GRANT `ALL ON *.* x` TO `orch`@`%`",
          "REVOKE ALL ON *.* FROM `orch`@`%`", "GRANT PROCESS ON *.*"},
         "8.0.36",
         {"SYSTEM_VARIABLES_ADMIN", "REPLICATION_SLAVE_ADMIN", "CONNECTION_ADMIN",
          "REPLICATION CLIENT", "REPLICATION SLAVE", "RELOAD"}},
        {{"GRANT ALL ON *.* TO root"}, "8.4.0", {NULL}},
        {{"GRANT USAGE ON *.* TO `mon`@`%`", "GRANT"},
         "8.4.0",
         {"SYSTEM_VARIABLES_ADMIN", "REPLICATION_SLAVE_ADMIN", "CONNECTION_ADMIN",
          "REPLICATION CLIENT", "REPLICATION SLAVE", "PROCESS", "RELOAD"}},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        orch_probe_grants g;
        orch_probe_grants_init(&g);
        for (size_t j = 0; j < 4 && cases[i].lines[j] != NULL; j++)
            orch_probe_grants_add(&g, cases[i].lines[j], strlen(cases[i].lines[j]));
        char label[32];
        snprintf(label, sizeof(label), "lines case %zu", i);
        check_missing(&g, cases[i].version, cases[i].missing, label);
    }
    /* a line that is not NUL-terminated where len stops */
    orch_probe_grants g;
    orch_probe_grants_init(&g);
    const char buf[] = "GRANT SUPER ON *.* TO a\nGRANT PROCESS ON *.* TO a";
    orch_probe_grants_add(&g, buf, 23);
    static const char *const want[] = {"REPLICATION SLAVE", "PROCESS", "RELOAD", NULL};
    check_missing(&g, "8.0.36", want, "bounded line");
}

/* ---- memory --------------------------------------------------------------------- */

static void test_free_null(void **state)
{
    (void)state;
    orch_probe_channel_free(NULL);
    orch_probe_server_free(NULL);
    orch_probe_replica_free(NULL);
    orch_probe_strings_free(NULL, 0);
}

/*
 * The memory rule of probe_parse.h: parts hung on an InstanceReport are freed by
 * protobuf-c's free_unpacked, and the report packs and unpacks.
 */
static void test_report_roundtrip_and_free(void **state)
{
    (void)state;
    Orch__InstanceReport *rep = malloc(sizeof(*rep));
    assert_non_null(rep);
    orch__instance_report__init(rep);
    rep->protocol_version = 1;
    rep->boot_id.len = 4;
    rep->boot_id.data = malloc(4);
    assert_non_null(rep->boot_id.data);
    memcpy(rep->boot_id.data, "boot", 4);
    rep->host = malloc(4);
    assert_non_null(rep->host);
    memcpy(rep->host, "db2", 4);
    rep->port = 3306;
    rep->state = ORCH__PROBE_STATE__PROBE_UP;

    static const char *const files[] = {"mysql-8.4-variables.txt", "mysql-8.4-status.txt"};
    rep->server = server_from(files, ARRAY_LEN(files));

    fixture *fx = fx_load("mysql-8.4-replica-status-two-channels.txt");
    rep->channels = calloc(fx->nrows, sizeof(*rep->channels));
    assert_non_null(rep->channels);
    for (size_t i = 0; i < fx->nrows; i++) {
        orch_probe_row row = fx_view(fx, i);
        assert_int_equal(orch_probe_parse_channel(&row, &rep->channels[i], NULL, 0), ORCH_OK);
        rep->n_channels++;
    }
    fx_free(fx);

    fx = fx_load("mysql-8.4-replicas.txt");
    rep->replicas = calloc(fx->nrows, sizeof(*rep->replicas));
    assert_non_null(rep->replicas);
    for (size_t i = 0; i < fx->nrows; i++) {
        orch_probe_row row = fx_view(fx, i);
        assert_int_equal(orch_probe_parse_replica_host(&row, &rep->replicas[i], NULL, 0), ORCH_OK);
        rep->n_replicas++;
    }
    fx_free(fx);

    orch_probe_grants g;
    orch_probe_grants_init(&g);
    orch_version v = ver("8.4.0", NULL);
    assert_int_equal(orch_probe_grants_missing(&g, &v, &rep->problems, &rep->n_problems, NULL, 0),
                     ORCH_OK);
    assert_int_equal(rep->n_problems, 7);

    size_t len = orch__instance_report__get_packed_size(rep);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(orch__instance_report__pack(rep, buf), len);
    orch__instance_report__free_unpacked(rep, NULL);

    Orch__InstanceReport *back = orch__instance_report__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    assert_int_equal(back->n_channels, 2);
    assert_string_equal(back->channels[0]->name, "east");
    assert_true(back->channels[0]->has_seconds_behind_master);
    assert_int_equal(back->channels[0]->seconds_behind_master, 12);
    assert_false(back->channels[1]->has_seconds_behind_master);
    assert_int_equal(back->channels[1]->io_thread, ORCH__THREAD_STATE__THREAD_NO);
    assert_string_equal(back->channels[1]->executed_gtid_set, GTID84);
    assert_int_equal(back->server->flavor, ORCH__FLAVOR__FLAVOR_MYSQL);
    assert_int_equal(back->n_replicas, 2);
    assert_int_equal(back->replicas[1]->port, 3307);
    assert_int_equal(back->n_problems, 7);
    orch__instance_report__free_unpacked(back, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_table),
        cmocka_unit_test(test_statement_variables_by_flavor),
        cmocka_unit_test(test_statement_agrees_with_version_h),
        cmocka_unit_test(test_channel_fixtures),
        cmocka_unit_test(test_channel_null_is_not_zero),
        cmocka_unit_test(test_channel_thread_states),
        cmocka_unit_test(test_channel_bad_values),
        cmocka_unit_test(test_channel_unknown_and_missing_columns),
        cmocka_unit_test(test_row_from_field_array_with_lengths),
        cmocka_unit_test(test_server_mariadb),
        cmocka_unit_test(test_server_mysql),
        cmocka_unit_test(test_server_variable_names_and_atomicity),
        cmocka_unit_test(test_replica_hosts),
        cmocka_unit_test(test_processlist),
        cmocka_unit_test(test_grants_fixtures),
        cmocka_unit_test(test_grants_messages),
        cmocka_unit_test(test_grants_lines),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_report_roundtrip_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
