/*
 * probe.c: runs the probe statements over a kept connection and folds the rows
 * through probe_parse.c. A failed statement that shows the server gone or stuck
 * ends the probe with DOWN or UNRESPONSIVE and drops the connection, so the next
 * probe reconnects; an SQL error in an optional statement (e.g. a missing
 * privilege for SHOW SLAVE HOSTS) becomes a problem line and the probe goes on.
 */
#include "probe.h"

#include "clock.h"
#include "probe_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Semi-sync timeouts below this (one hour) are reported as a problem. */
#define SEMI_SYNC_TIMEOUT_MIN_MS 3600000ULL

struct orch_probe {
    orch_db_conf conf;
    char *socket, *host, *user, *password;
    MYSQL *db;
    orch_version version;
    bool have_version;
    char **grant_problems; /* checked at connect */
    size_t ngrant_problems;
    uint64_t generation; /* bumped at every connect */
};

void orch_probe_connection(const orch_probe *p, int *fd, uint64_t *generation)
{
    *fd = p->db != NULL ? (int)mysql_get_socket(p->db) : -1;
    *generation = p->generation;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

orch_probe *orch_probe_new(const orch_db_conf *conf)
{
    orch_probe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->conf = *conf;
    p->socket = dup_or_null(conf->socket);
    p->host = dup_or_null(conf->host);
    p->user = dup_or_null(conf->user);
    p->password = dup_or_null(conf->password);
    if ((conf->socket && !p->socket) || (conf->host && !p->host) || (conf->user && !p->user) ||
        (conf->password && !p->password)) {
        orch_probe_free(p);
        return NULL;
    }
    p->conf.socket = p->socket;
    p->conf.host = p->host;
    p->conf.user = p->user;
    p->conf.password = p->password;
    p->conf.database = NULL;
    return p;
}

static void disconnect(orch_probe *p)
{
    if (p->db != NULL)
        mysql_close(p->db);
    p->db = NULL;
    orch_probe_strings_free(p->grant_problems, p->ngrant_problems);
    p->grant_problems = NULL;
    p->ngrant_problems = 0;
}

void orch_probe_free(orch_probe *p)
{
    if (p == NULL)
        return;
    disconnect(p);
    free(p->socket);
    free(p->host);
    free(p->user);
    free(p->password);
    free(p);
}

void orch_probe_result_fini(orch_probe_result *r)
{
    if (r == NULL)
        return;
    orch_probe_server_free(r->server);
    for (size_t i = 0; i < r->nchannels; i++)
        orch_probe_channel_free(r->channels[i]);
    free(r->channels);
    for (size_t i = 0; i < r->nreplicas; i++)
        orch_probe_replica_free(r->replicas[i]);
    free(r->replicas);
    orch_probe_strings_free(r->problems, r->nproblems);
    memset(r, 0, sizeof(*r));
}

orch_err orch_probe_result_add_problem(orch_probe_result *r, const char *text)
{
    char **v = realloc(r->problems, (r->nproblems + 1) * sizeof(*v));
    if (v == NULL)
        return ORCH_ERR_NOMEM;
    r->problems = v;
    v[r->nproblems] = strdup(text);
    if (v[r->nproblems] == NULL)
        return ORCH_ERR_NOMEM;
    r->nproblems++;
    return ORCH_OK;
}

const char *orch_probe_state_name(Orch__ProbeState s)
{
    switch (s) {
    case ORCH__PROBE_STATE__PROBE_UP:
        return "UP";
    case ORCH__PROBE_STATE__PROBE_DOWN:
        return "DOWN";
    case ORCH__PROBE_STATE__PROBE_UNRESPONSIVE:
        return "UNRESPONSIVE";
    case ORCH__PROBE_STATE__PROBE_AUTH_ERROR:
        return "AUTH_ERROR";
    default:
        return "UNKNOWN";
    }
}

static Orch__ProbeState state_of(orch_db_failure f)
{
    switch (f) {
    case ORCH_DB_DOWN:
        return ORCH__PROBE_STATE__PROBE_DOWN;
    case ORCH_DB_UNRESPONSIVE:
        return ORCH__PROBE_STATE__PROBE_UNRESPONSIVE;
    case ORCH_DB_AUTH:
        return ORCH__PROBE_STATE__PROBE_AUTH_ERROR;
    default:
        return ORCH__PROBE_STATE__PROBE_UP;
    }
}

orch_probe_row orch_probe_row_of(MYSQL_RES *res, MYSQL_ROW row)
{
    MYSQL_FIELD *f = mysql_fetch_fields(res);
    orch_probe_row r = {
        .ncols = mysql_num_fields(res),
        .names = &f[0].name,
        .name_stride = sizeof(MYSQL_FIELD),
        .values = (const char *const *)row,
        .lengths = mysql_fetch_lengths(res),
    };
    return r;
}

/* Appends a copy of text to the problems found at connect. */
static void add_connect_problem(orch_probe *p, const char *text)
{
    char **v = realloc(p->grant_problems, (p->ngrant_problems + 1) * sizeof(*v));
    if (v == NULL)
        return;
    p->grant_problems = v;
    if ((v[p->ngrant_problems] = strdup(text)) != NULL)
        p->ngrant_problems++;
}

/*
 * Witness checks are TCP connections that end after the greeting: the server
 * counts each as an interrupted connect. With name resolution on (the host
 * cache in use, loopback excepted), max_connect_errors of them in a row from
 * one replica host block that host, replication included. Reported as a
 * problem; inferred from the server documentation (loopback connections, the
 * only ones on test machines, bypass the host cache).
 */
static void check_connect_errors(orch_probe *p)
{
    char skip[16] = "", maxerr[32] = "";
    if (orch_db_query_value(p->db, "SELECT @@skip_name_resolve", skip, sizeof(skip), NULL, NULL,
                            NULL, 0) != ORCH_OK ||
        orch_db_query_value(p->db, "SELECT @@max_connect_errors", maxerr, sizeof(maxerr), NULL,
                            NULL, NULL, 0) != ORCH_OK)
        return;
    char *end;
    unsigned long long v = strtoull(maxerr, &end, 10);
    if (strcmp(skip, "0") == 0 && *end == '\0' && v < 1000000ULL) {
        char text[320];
        snprintf(text, sizeof(text),
                 "max_connect_errors=%llu with skip_name_resolve OFF: witness checks from "
                 "replicas count as interrupted connects and can block a replica host; set "
                 "skip_name_resolve=ON or max_connect_errors=4294967295",
                 v);
        add_connect_problem(p, text);
    }
}

/* Connects and learns version and privileges. On failure sets out's state. */
static orch_err connect_probe(orch_probe *p, orch_probe_result *out)
{
    orch_db_failure failure;
    char msg[400];
    if (orch_db_connect(&p->conf, &p->db, &failure, msg, sizeof(msg)) != ORCH_OK) {
        out->state = state_of(failure == ORCH_DB_QUERY ? ORCH_DB_DOWN : failure);
        snprintf(out->error, sizeof(out->error), "%s", msg);
        return ORCH_ERR_MYSQL;
    }
    p->generation++;
    char version[128] = "", comment[256] = "";
    if (orch_db_query_value(p->db, "SELECT @@version", version, sizeof(version), NULL, &failure,
                            msg, sizeof(msg)) != ORCH_OK ||
        orch_db_query_value(p->db, "SELECT @@version_comment", comment, sizeof(comment), NULL,
                            &failure, msg, sizeof(msg)) != ORCH_OK) {
        out->state = state_of(failure == ORCH_DB_QUERY ? ORCH_DB_DOWN : failure);
        snprintf(out->error, sizeof(out->error), "%s", msg);
        disconnect(p);
        return ORCH_ERR_MYSQL;
    }
    p->have_version =
        orch_version_parse(version, comment, &p->version, msg, sizeof(msg)) == ORCH_OK;

    /* Privileges: what recoveries will need, checked now rather than mid-failover. */
    MYSQL_RES *res = NULL;
    if (p->have_version &&
        orch_db_query(p->db, orch_probe_statement(ORCH_PROBE_STMT_GRANTS, &p->version), &res,
                      &failure, msg, sizeof(msg)) == ORCH_OK &&
        res != NULL) {
        orch_probe_grants g;
        orch_probe_grants_init(&g);
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(res)) != NULL) {
            orch_probe_row r = orch_probe_row_of(res, row);
            orch_probe_grants_add_row(&g, &r);
        }
        if (orch_probe_grants_missing(&g, &p->version, &p->grant_problems, &p->ngrant_problems, msg,
                                      sizeof(msg)) != ORCH_OK) {
            p->grant_problems = NULL;
            p->ngrant_problems = 0;
        }
    }
    if (res != NULL)
        mysql_free_result(res);
    check_connect_errors(p);
    return ORCH_OK;
}

typedef orch_err (*fold_fn)(const orch_probe_row *row, void *ctx, char *msg, size_t msglen);

/*
 * Runs statement `which` and passes each row to fold. Returns ORCH_OK, or
 * ORCH_ERR_MYSQL with *failure set; SQL errors of optional statements are added
 * to out's problems and reported as ORCH_OK.
 */
static orch_err run_stmt(orch_probe *p, orch_probe_stmt which, bool optional, fold_fn fold,
                         void *ctx, orch_probe_result *out, orch_db_failure *failure)
{
    const char *sql = orch_probe_statement(which, &p->version);
    char msg[400];
    MYSQL_RES *res = NULL;
    *failure = ORCH_DB_OK;
    if (sql == NULL)
        return ORCH_OK;
    if (orch_db_query(p->db, sql, &res, failure, msg, sizeof(msg)) != ORCH_OK) {
        if (*failure == ORCH_DB_QUERY && optional) {
            char problem[512];
            snprintf(problem, sizeof(problem), "probe %s failed: %s", orch_probe_stmt_name(which),
                     msg);
            *failure = ORCH_DB_OK;
            return orch_probe_result_add_problem(out, problem);
        }
        if (*failure == ORCH_DB_QUERY)
            *failure = ORCH_DB_DOWN;
        snprintf(out->error, sizeof(out->error), "%s", msg);
        return ORCH_ERR_MYSQL;
    }
    orch_err err = ORCH_OK;
    if (res != NULL) {
        MYSQL_ROW row;
        while (err == ORCH_OK && (row = mysql_fetch_row(res)) != NULL) {
            orch_probe_row r = orch_probe_row_of(res, row);
            char pmsg[300];
            orch_err e = fold(&r, ctx, pmsg, sizeof(pmsg));
            if (e == ORCH_ERR_NOMEM) {
                err = e;
            } else if (e != ORCH_OK) {
                char problem[512];
                snprintf(problem, sizeof(problem), "probe %s: %s", orch_probe_stmt_name(which),
                         pmsg);
                err = orch_probe_result_add_problem(out, problem);
            }
        }
        mysql_free_result(res);
    }
    return err;
}

static orch_err fold_variables(const orch_probe_row *row, void *ctx, char *msg, size_t msglen)
{
    return orch_probe_parse_variables(row, ctx, msg, msglen);
}

static orch_err fold_status_var(const orch_probe_row *row, void *ctx, char *msg, size_t msglen)
{
    return orch_probe_parse_status_var(row, ctx, msg, msglen);
}

static orch_err fold_master_status(const orch_probe_row *row, void *ctx, char *msg, size_t msglen)
{
    return orch_probe_parse_master_status(row, ctx, msg, msglen);
}

static orch_err fold_channel(const orch_probe_row *row, void *ctx, char *msg, size_t msglen)
{
    orch_probe_result *out = ctx;
    Orch__Channel *ch = NULL;
    orch_err err = orch_probe_parse_channel(row, &ch, msg, msglen);
    if (err != ORCH_OK)
        return err;
    Orch__Channel **v = realloc(out->channels, (out->nchannels + 1) * sizeof(*v));
    if (v == NULL) {
        orch_probe_channel_free(ch);
        return ORCH_ERR_NOMEM;
    }
    out->channels = v;
    v[out->nchannels++] = ch;
    return ORCH_OK;
}

static orch_err add_replica(orch_probe_result *out, Orch__ConnectedReplica *r)
{
    Orch__ConnectedReplica **v = realloc(out->replicas, (out->nreplicas + 1) * sizeof(*v));
    if (v == NULL) {
        orch_probe_replica_free(r);
        return ORCH_ERR_NOMEM;
    }
    out->replicas = v;
    v[out->nreplicas++] = r;
    return ORCH_OK;
}

static orch_err fold_replica_host(const orch_probe_row *row, void *ctx, char *msg, size_t msglen)
{
    Orch__ConnectedReplica *r = NULL;
    orch_err err = orch_probe_parse_replica_host(row, &r, msg, msglen);
    if (err != ORCH_OK || r == NULL)
        return err;
    return add_replica(ctx, r);
}

/*
 * Binlog dump threads: the fallback when SHOW SLAVE HOSTS listed nobody (it
 * needs REPLICATION MASTER ADMIN on MariaDB 10.11), so that a connected replica
 * is never missed. Only the address is known then.
 */
static orch_err fold_processlist(const orch_probe_row *row, void *ctx, char *msg, size_t msglen)
{
    Orch__ConnectedReplica *r = NULL;
    orch_err err = orch_probe_parse_processlist(row, &r, msg, msglen);
    if (err != ORCH_OK || r == NULL)
        return err;
    return add_replica(ctx, r);
}

orch_err orch_probe_run(orch_probe *p, orch_probe_result *out)
{
    int64_t start = orch_mono_us();
    orch_db_failure failure = ORCH_DB_OK;
    orch_err err = ORCH_OK;

    bool was_connected = p->db != NULL;
    memset(out, 0, sizeof(*out));
    out->state = ORCH__PROBE_STATE__PROBE_UP;
    if (p->db == NULL && connect_probe(p, out) != ORCH_OK)
        goto done;
    if (!p->have_version) {
        out->state = ORCH__PROBE_STATE__PROBE_UP;
        snprintf(out->error, sizeof(out->error), "cannot parse the server version");
    }
    out->server = orch_probe_server_new();
    if (out->server == NULL)
        return ORCH_ERR_NOMEM;

    static const struct {
        orch_probe_stmt which;
        bool optional;
        fold_fn fold;
        bool to_server;
    } steps[] = {
        {ORCH_PROBE_STMT_VARIABLES, false, fold_variables, true},
        {ORCH_PROBE_STMT_SEMISYNC_VARS, true, fold_status_var, true},
        {ORCH_PROBE_STMT_STATUS, true, fold_status_var, true},
        {ORCH_PROBE_STMT_MASTER_STATUS, true, fold_master_status, true},
        {ORCH_PROBE_STMT_REPLICA_STATUS, false, fold_channel, false},
        {ORCH_PROBE_STMT_REPLICA_HOSTS, true, fold_replica_host, false},
        {ORCH_PROBE_STMT_PROCESSLIST, true, fold_processlist, false},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i].which == ORCH_PROBE_STMT_PROCESSLIST && out->nreplicas > 0)
            continue;
        void *ctx = steps[i].to_server ? (void *)out->server : (void *)out;
        err = run_stmt(p, steps[i].which, steps[i].optional, steps[i].fold, ctx, out, &failure);
        if (err == ORCH_ERR_NOMEM)
            return err;
        if (err != ORCH_OK) {
            disconnect(p);
            /* A kept connection that broke says little ("server has gone away"):
             * one fresh attempt tells a dead server (refused) from a restarted
             * one. A timeout is not retried: the deadline is already spent. */
            if (was_connected && failure == ORCH_DB_DOWN) {
                orch_probe_result_fini(out);
                return orch_probe_run(p, out);
            }
            out->state = state_of(failure);
            goto done;
        }
    }
    for (size_t i = 0; i < p->ngrant_problems; i++) {
        if (orch_probe_result_add_problem(out, p->grant_problems[i]) != ORCH_OK)
            return ORCH_ERR_NOMEM;
    }
    /* A semi-sync master that degrades to async by its own timeout can return OK
     * to a client for a commit no replica has (DESIGN.md: only orch decides the
     * degradation, after confirming the primary is the legitimate one). */
    const Orch__ServerStatus *sv = out->server;
    if (sv->semi_sync_master_enabled && sv->has_semi_sync_master_timeout_ms &&
        sv->semi_sync_master_timeout_ms < SEMI_SYNC_TIMEOUT_MIN_MS) {
        char text[320];
        snprintf(text, sizeof(text),
                 "rpl_semi_sync_master_timeout=%llu ms: the master falls back to async by "
                 "itself and can acknowledge writes no replica has; set it to 4294967295 and let "
                 "orch decide when to degrade",
                 (unsigned long long)sv->semi_sync_master_timeout_ms);
        if (orch_probe_result_add_problem(out, text) != ORCH_OK)
            return ORCH_ERR_NOMEM;
    }
    out->version = p->version;
    out->have_version = p->have_version;
done:
    if (out->state != ORCH__PROBE_STATE__PROBE_UP) {
        orch_probe_server_free(out->server);
        out->server = NULL;
        for (size_t i = 0; i < out->nchannels; i++)
            orch_probe_channel_free(out->channels[i]);
        free(out->channels);
        out->channels = NULL;
        out->nchannels = 0;
        for (size_t i = 0; i < out->nreplicas; i++)
            orch_probe_replica_free(out->replicas[i]);
        free(out->replicas);
        out->replicas = NULL;
        out->nreplicas = 0;
    }
    int64_t us = orch_mono_us() - start;
    out->probe_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    return ORCH_OK;
}
