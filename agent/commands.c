/*
 * commands.c: SQL for each leader command, per flavor (see commands.h).
 *
 * Arguments that reach SQL are validated against narrow alphabets (host names,
 * channel names, GTID sets, binlog file names) instead of being escaped; only
 * the replication password, which comes from the agent's own config and may
 * hold anything, is escaped through the connection.
 */
#include "commands.h"

#include "gtid.h"
#include "key.h"
#include "probe.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *cmd_type_name(int type)
{
    static const char *const names[] = {
        [ORCH__COMMAND_TYPE__CMD_REPORT_NOW] = "REPORT_NOW",
        [ORCH__COMMAND_TYPE__CMD_STOP_REPLICA] = "STOP_REPLICA",
        [ORCH__COMMAND_TYPE__CMD_START_REPLICA] = "START_REPLICA",
        [ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER] = "CHANGE_MASTER",
        [ORCH__COMMAND_TYPE__CMD_RESET_REPLICA] = "RESET_REPLICA",
        [ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID] = "WAIT_FOR_GTID",
        [ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY] = "SET_READ_ONLY",
        [ORCH__COMMAND_TYPE__CMD_FENCE] = "FENCE",
        [ORCH__COMMAND_TYPE__CMD_SET_SEMI_SYNC] = "SET_SEMI_SYNC",
        [ORCH__COMMAND_TYPE__CMD_PING] = "PING",
    };
    if (type < 0 || (size_t)type >= sizeof(names) / sizeof(names[0]) || names[type] == NULL)
        return "UNKNOWN";
    return names[type];
}

const char *cmd_result_name(int result)
{
    static const char *const names[] = {
        [ORCH__COMMAND_RESULT__RESULT_OK] = "OK",
        [ORCH__COMMAND_RESULT__RESULT_FAILED] = "FAILED",
        [ORCH__COMMAND_RESULT__RESULT_STALE_EPOCH] = "STALE_EPOCH",
        [ORCH__COMMAND_RESULT__RESULT_REPLAY] = "REPLAY",
        [ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST] = "BAD_REQUEST",
        [ORCH__COMMAND_RESULT__RESULT_NOT_FOR_ME] = "NOT_FOR_ME",
        [ORCH__COMMAND_RESULT__RESULT_TIMEOUT] = "TIMEOUT",
        [ORCH__COMMAND_RESULT__RESULT_DEFERRED] = "DEFERRED",
    };
    if (result < 0 || (size_t)result >= sizeof(names) / sizeof(names[0]) || names[result] == NULL)
        return "UNKNOWN";
    return names[result];
}

static bool is_mysql(const orch_version *v)
{
    return v->flavor == ORCH_FLAVOR_MYSQL || v->flavor == ORCH_FLAVOR_PERCONA;
}

/* MySQL 8.0.23+ has CHANGE REPLICATION SOURCE TO with SOURCE_* options. */
static bool mysql_new_change(const orch_version *v)
{
    orch_version want = {.major = 8, .minor = 0, .patch = 23};
    return is_mysql(v) && orch_version_compare(v, &want) >= 0;
}

static bool channel_ok(const char *s)
{
    if (strlen(s) > 64)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    }
    return true;
}

static bool logfile_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 255)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    }
    return true;
}

static orch_err add(cmd_plan *p, const char *fmt, ...) ORCH_PRINTF(2, 3);

static orch_err add(cmd_plan *p, const char *fmt, ...)
{
    if (p->n >= CMD_PLAN_MAX)
        return ORCH_ERR_TOOBIG;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return ORCH_ERR_TOOBIG;
    p->sql[p->n] = strdup(buf);
    if (p->sql[p->n] == NULL)
        return ORCH_ERR_NOMEM;
    p->n++;
    return ORCH_OK;
}

void cmd_plan_fini(cmd_plan *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->n; i++)
        free(plan->sql[i]);
    plan->n = 0;
}

/* Quotes a password: through the connection when there is one. */
static orch_err quote_password(MYSQL *db, const char *pw, char *buf, size_t buflen)
{
    if (db != NULL)
        return orch_db_quote(db, pw, buf, buflen);
    size_t o = 0;
    if (buflen < 3)
        return ORCH_ERR_TOOBIG;
    buf[o++] = '\'';
    for (const char *s = pw; *s; s++) {
        if (*s == '\\')
            return ORCH_ERR_INVAL;
        if (o + 3 >= buflen)
            return ORCH_ERR_TOOBIG;
        if (*s == '\'')
            buf[o++] = '\'';
        buf[o++] = *s;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return ORCH_OK;
}

/*
 * Statement fragments per flavor. MariaDB names a connection right after the
 * verb (STOP SLAVE 'c'); MySQL names a channel at the end (FOR CHANNEL 'c').
 */
static void conn_parts(const orch_version *v, const char *channel, char *pre, size_t prelen,
                       char *post, size_t postlen)
{
    pre[0] = post[0] = '\0';
    if (channel == NULL || channel[0] == '\0')
        return;
    if (is_mysql(v))
        snprintf(post, postlen, " FOR CHANNEL '%s'", channel);
    else
        snprintf(pre, prelen, " '%s'", channel);
}

static orch_err plan_change_master(const Orch__Command *c, const orch_version *v,
                                   const cmd_credentials *cred, MYSQL *db, const char *pre,
                                   const char *post, cmd_plan *out, char *msg, size_t msglen)
{
    orch_key key;
    orch_err err;
    if (c->master_host == NULL || !c->has_master_port)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "ChangeMaster needs master_host and port");
    if (orch_key_make(c->master_host, c->master_port, &key, msg, msglen) != ORCH_OK)
        return ORCH_ERR_INVAL;
    if (cred->user == NULL || cred->user[0] == '\0' || !channel_ok(cred->user))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "replication_user is not set (or not [A-Za-z0-9_-]) in the agent config");
    char pw[512];
    if ((err = quote_password(db, cred->password ? cred->password : "", pw, sizeof(pw))) != ORCH_OK)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "replication_password cannot be quoted");
    Orch__GtidMode mode = c->has_gtid_mode ? c->gtid_mode : ORCH__GTID_MODE__GTID_MODE_SLAVE_POS;
    char coords[400] = "";
    if (mode == ORCH__GTID_MODE__GTID_MODE_NONE) {
        if (c->master_log_file == NULL || !logfile_ok(c->master_log_file) || !c->has_master_log_pos)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "ChangeMaster without GTID needs master_log_file and master_log_pos");
    }
    bool stop_first = true;
    if (stop_first) {
        if (is_mysql(v))
            err = add(out, "STOP REPLICA%s", post);
        else
            err = add(out, "STOP SLAVE%s", pre);
        if (err != ORCH_OK)
            return err;
    }
    if (mysql_new_change(v)) {
        if (mode == ORCH__GTID_MODE__GTID_MODE_NONE)
            snprintf(coords, sizeof(coords),
                     ", SOURCE_AUTO_POSITION=0, SOURCE_LOG_FILE='%s', SOURCE_LOG_POS=%llu",
                     c->master_log_file, (unsigned long long)c->master_log_pos);
        else
            snprintf(coords, sizeof(coords), ", SOURCE_AUTO_POSITION=1");
        err = add(out,
                  "CHANGE REPLICATION SOURCE TO SOURCE_HOST='%s', SOURCE_PORT=%u, "
                  "SOURCE_USER='%s', SOURCE_PASSWORD=%s, SOURCE_CONNECT_RETRY=1, "
                  "GET_SOURCE_PUBLIC_KEY=1%s%s",
                  key.host, key.port, cred->user, pw, coords, post);
    } else if (is_mysql(v)) {
        if (mode == ORCH__GTID_MODE__GTID_MODE_NONE)
            snprintf(coords, sizeof(coords),
                     ", MASTER_AUTO_POSITION=0, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%llu",
                     c->master_log_file, (unsigned long long)c->master_log_pos);
        else
            snprintf(coords, sizeof(coords), ", MASTER_AUTO_POSITION=1");
        err = add(out,
                  "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, MASTER_USER='%s', "
                  "MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1%s%s",
                  key.host, key.port, cred->user, pw, coords, post);
    } else {
        if (mode == ORCH__GTID_MODE__GTID_MODE_NONE)
            snprintf(coords, sizeof(coords),
                     ", MASTER_USE_GTID=no, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%llu",
                     c->master_log_file, (unsigned long long)c->master_log_pos);
        else
            snprintf(coords, sizeof(coords), ", MASTER_USE_GTID=%s",
                     mode == ORCH__GTID_MODE__GTID_MODE_CURRENT_POS ? "current_pos" : "slave_pos");
        err = add(out,
                  "CHANGE MASTER%s TO MASTER_HOST='%s', MASTER_PORT=%u, MASTER_USER='%s', "
                  "MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1%s",
                  pre, key.host, key.port, cred->user, pw, coords);
    }
    if (err == ORCH_OK && c->has_start_replica && c->start_replica)
        err = is_mysql(v) ? add(out, "START REPLICA%s", post) : add(out, "START SLAVE%s", pre);
    return err;
}

/*
 * True when the channel's SQL thread is stopped while its IO thread is not:
 * a freeze must start the SQL thread before it stops the IO thread. MariaDB
 * (GTID mode) discards the relay log when a thread starts with both stopped,
 * so what such a replica received from a dead master would be lost; started
 * while the IO thread still runs (retrying the dead master), it applies it.
 */
static bool sql_thread_waits(MYSQL *db, const orch_version *v, const char *channel)
{
    const char *q = orch_probe_statement(ORCH_PROBE_STMT_REPLICA_STATUS, v);
    char m[128];
    MYSQL_RES *res = NULL;
    if (db == NULL || q == NULL || orch_db_query(db, q, &res, NULL, m, sizeof(m)) != ORCH_OK ||
        res == NULL)
        return false;
    bool waits = false;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        orch_probe_row r = orch_probe_row_of(res, row);
        Orch__Channel *ch = NULL;
        if (orch_probe_parse_channel(&r, &ch, m, sizeof(m)) != ORCH_OK)
            continue;
        bool ours = strcasecmp(ch->name ? ch->name : "", channel ? channel : "") == 0;
        if (ours)
            waits = ch->has_sql_thread && ch->sql_thread == ORCH__THREAD_STATE__THREAD_NO &&
                    ch->has_io_thread && ch->io_thread != ORCH__THREAD_STATE__THREAD_NO;
        orch_probe_channel_free(ch);
        if (ours)
            break;
    }
    mysql_free_result(res);
    return waits;
}

orch_err cmd_plan_build(const Orch__Command *c, const orch_version *v, const cmd_credentials *cred,
                        MYSQL *db, cmd_plan *out, char *msg, size_t msglen)
{
    char pre[80], post[96];
    orch_err err = ORCH_OK;
    cmd_plan plan = {0};

    if (c->channel != NULL && !channel_ok(c->channel))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "bad channel name");
    conn_parts(v, c->channel, pre, sizeof(pre), post, sizeof(post));
    bool mysql = is_mysql(v);

    switch (c->type) {
    case ORCH__COMMAND_TYPE__CMD_STOP_REPLICA: {
        bool io_only = c->has_io_thread_only && c->io_thread_only;
        const char *threads = io_only ? " IO_THREAD" : "";
        if (io_only && sql_thread_waits(db, v, c->channel))
            err = mysql ? add(&plan, "START REPLICA SQL_THREAD%s", post)
                        : add(&plan, "START SLAVE%s SQL_THREAD", pre);
        if (err == ORCH_OK)
            err = mysql ? add(&plan, "STOP REPLICA%s%s", threads, post)
                        : add(&plan, "STOP SLAVE%s%s", pre, threads);
        break;
    }
    case ORCH__COMMAND_TYPE__CMD_START_REPLICA:
        err = mysql ? add(&plan, "START REPLICA%s", post) : add(&plan, "START SLAVE%s", pre);
        break;
    case ORCH__COMMAND_TYPE__CMD_RESET_REPLICA:
        err = mysql ? add(&plan, "STOP REPLICA%s", post) : add(&plan, "STOP SLAVE%s", pre);
        if (err == ORCH_OK)
            err = mysql ? add(&plan, "RESET REPLICA ALL%s", post)
                        : add(&plan, "RESET SLAVE%s ALL", pre);
        break;
    case ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER:
        err = plan_change_master(c, v, cred, db, pre, post, &plan, msg, msglen);
        break;
    case ORCH__COMMAND_TYPE__CMD_SET_SEMI_SYNC:
        if (!c->has_semi_sync_master && !c->has_semi_sync_slave) {
            err = orch_fail(msg, msglen, ORCH_ERR_INVAL, "SetSemiSync sets neither side");
            break;
        }
        if (c->has_semi_sync_master)
            err = add(&plan, "SET GLOBAL %s = %d",
                      mysql ? "rpl_semi_sync_source_enabled" : "rpl_semi_sync_master_enabled",
                      c->semi_sync_master ? 1 : 0);
        if (err == ORCH_OK && c->has_semi_sync_slave)
            err = add(&plan, "SET GLOBAL %s = %d",
                      mysql ? "rpl_semi_sync_replica_enabled" : "rpl_semi_sync_slave_enabled",
                      c->semi_sync_slave ? 1 : 0);
        break;
    case ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY:
        if (!c->has_read_only)
            err = orch_fail(msg, msglen, ORCH_ERR_INVAL, "SetReadOnly without read_only");
        break;
    case ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID:
        if (c->gtid_set == NULL || !c->has_timeout_ms)
            err =
                orch_fail(msg, msglen, ORCH_ERR_INVAL, "WaitForGtid needs gtid_set and timeout_ms");
        break;
    case ORCH__COMMAND_TYPE__CMD_REPORT_NOW:
    case ORCH__COMMAND_TYPE__CMD_FENCE:
    case ORCH__COMMAND_TYPE__CMD_PING:
        break;
    default:
        err = orch_fail(msg, msglen, ORCH_ERR_INVAL, "unknown command type %d", (int)c->type);
        break;
    }
    if (err != ORCH_OK) {
        if (err == ORCH_ERR_TOOBIG)
            orch_fail(msg, msglen, ORCH_ERR_INVAL, "arguments too long");
        cmd_plan_fini(&plan);
        return err == ORCH_ERR_NOMEM ? err : ORCH_ERR_INVAL;
    }
    *out = plan;
    return ORCH_OK;
}

orch_err cmd_set_read_only(MYSQL *db, const orch_version *v, bool on, bool super, char *msg,
                           size_t msglen)
{
    char m[400];
    orch_err err;
    bool mysql = is_mysql(v);
    /* MySQL: super_read_only=1 implies read_only=1, so order matters both ways. */
    if (on) {
        err = orch_db_exec(db, "SET GLOBAL read_only = 1", NULL, m, sizeof(m));
        if (err == ORCH_OK && mysql && super)
            err = orch_db_exec(db, "SET GLOBAL super_read_only = 1", NULL, m, sizeof(m));
    } else {
        err = mysql ? orch_db_exec(db, "SET GLOBAL super_read_only = 0", NULL, m, sizeof(m))
                    : ORCH_OK;
        if (err == ORCH_OK)
            err = orch_db_exec(db, "SET GLOBAL read_only = 0", NULL, m, sizeof(m));
    }
    if (err != ORCH_OK)
        return orch_fail(msg, msglen, err, "%s", m);
    char val[16];
    bool is_null;
    err = orch_db_query_value(db, "SELECT @@global.read_only", val, sizeof(val), &is_null, NULL, m,
                              sizeof(m));
    if (err != ORCH_OK)
        return orch_fail(msg, msglen, err, "verify read_only: %s", m);
    bool now_on = strcmp(val, "1") == 0 || strcasecmp(val, "ON") == 0;
    if (now_on != on)
        return orch_fail(msg, msglen, ORCH_ERR_STATE, "read_only is still %s after setting it %s",
                         val, on ? "ON" : "OFF");
    return ORCH_OK;
}

/*
 * Kills every client connection but replication, system threads and the
 * agent's own (its account is orch's alone: the probe's connection, other
 * command workers, a fence being applied at the same time by the probe
 * thread; killing those would fail them, or make the server look down).
 */
static orch_err kill_clients(MYSQL *db, int *killed, char *msg, size_t msglen)
{
    static const char q[] =
        "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', "
        "'Slave_SQL', 'Slave_worker', 'Connect') AND USER NOT IN ('system user', "
        "'event_scheduler', SUBSTRING_INDEX(CURRENT_USER(), '@', 1))";
    MYSQL_RES *res = NULL;
    char m[400];
    orch_err err = orch_db_query(db, q, &res, NULL, m, sizeof(m));
    if (err != ORCH_OK)
        return orch_fail(msg, msglen, err, "listing connections failed: %s", m);
    MYSQL_ROW row;
    while (res != NULL && (row = mysql_fetch_row(res)) != NULL) {
        char sql[64];
        if (row[0] == NULL)
            continue;
        snprintf(sql, sizeof(sql), "KILL CONNECTION %s", row[0]);
        /* A connection that ended meanwhile ("Unknown thread id") is fine. */
        if (orch_db_exec(db, sql, NULL, m, sizeof(m)) == ORCH_OK)
            (*killed)++;
    }
    if (res != NULL)
        mysql_free_result(res);
    return ORCH_OK;
}

/*
 * The order matters. A commit waiting for a semi-sync acknowledgement holds up
 * SET GLOBAL read_only (measured on MariaDB 10.11: it waits for the commit),
 * and that commit returns OK if the master ever falls back to async. So the
 * clients go first: their waiting commits end with an error, never OK. Then
 * read_only, which no longer waits. Then the clients again, for any that
 * connected in between.
 */
orch_err cmd_fence(MYSQL *db, const orch_version *v, int *killed, char *msg, size_t msglen)
{
    *killed = 0;
    orch_err err = kill_clients(db, killed, msg, msglen);
    if (err != ORCH_OK)
        return err;
    err = cmd_set_read_only(db, v, true, true, msg, msglen);
    if (err != ORCH_OK)
        return err;
    return kill_clients(db, killed, msg, msglen);
}

static bool gtid_text_ok(const char *s)
{
    for (; *s; s++) {
        if (!isxdigit((unsigned char)*s) && *s != ':' && *s != ',' && *s != '-' &&
            !isspace((unsigned char)*s) && *s != '_' && !isalpha((unsigned char)*s))
            return false;
    }
    return true;
}

void cmd_execute(const Orch__Command *c, const orch_version *v, const cmd_credentials *cred,
                 MYSQL *db, cmd_outcome *out)
{
    char msg[400];
    out->result = ORCH__COMMAND_RESULT__RESULT_OK;
    out->error[0] = '\0';

    if (c->type == ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID) {
        orch_gtid_set *set = NULL;
        orch_gtid_flavor fl = is_mysql(v) ? ORCH_GTID_MYSQL : ORCH_GTID_MARIADB;
        if (c->gtid_set == NULL || !gtid_text_ok(c->gtid_set) ||
            orch_gtid_set_parse(fl, c->gtid_set, &set, msg, sizeof(msg)) != ORCH_OK) {
            out->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
            snprintf(out->error, sizeof(out->error), "bad gtid_set: %s", msg);
            return;
        }
        orch_gtid_set_free(set);
        /* Applying needs the SQL thread: an operator may have stopped it.
         * Started only while the IO thread runs (see sql_thread_waits); a
         * failure leaves the wait to time out, saying so. */
        char pre[80], post[96], start[256];
        if (c->channel != NULL && !channel_ok(c->channel)) {
            out->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
            snprintf(out->error, sizeof(out->error), "bad channel name");
            return;
        }
        conn_parts(v, c->channel, pre, sizeof(pre), post, sizeof(post));
        if (sql_thread_waits(db, v, c->channel)) {
            snprintf(start, sizeof(start),
                     is_mysql(v) ? "START REPLICA SQL_THREAD%s" : "START SLAVE%s SQL_THREAD",
                     is_mysql(v) ? post : pre);
            if (orch_db_exec(db, start, NULL, msg, sizeof(msg)) != ORCH_OK)
                msg[0] = '\0';
        }
        char sql[8192], val[32];
        bool is_null = false;
        double secs = c->timeout_ms / 1000.0;
        int n = is_mysql(v)
                    ? snprintf(sql, sizeof(sql), "SELECT WAIT_FOR_EXECUTED_GTID_SET('%s', %.3f)",
                               c->gtid_set, secs)
                    : snprintf(sql, sizeof(sql), "SELECT MASTER_GTID_WAIT('%s', %.3f)", c->gtid_set,
                               secs);
        if (n < 0 || (size_t)n >= sizeof(sql)) {
            out->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
            snprintf(out->error, sizeof(out->error), "gtid_set too long");
            return;
        }
        if (orch_db_query_value(db, sql, val, sizeof(val), &is_null, NULL, msg, sizeof(msg)) !=
            ORCH_OK) {
            out->result = ORCH__COMMAND_RESULT__RESULT_FAILED;
            snprintf(out->error, sizeof(out->error), "%s", msg);
        } else if (is_null || strcmp(val, "0") != 0) {
            out->result = ORCH__COMMAND_RESULT__RESULT_TIMEOUT;
            snprintf(out->error, sizeof(out->error), "GTID set not executed within %u ms",
                     c->timeout_ms);
        }
        return;
    }
    if (c->type == ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY) {
        if (!c->has_read_only) {
            out->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
            snprintf(out->error, sizeof(out->error), "SetReadOnly without read_only");
            return;
        }
        bool super = c->has_super_read_only ? c->super_read_only : c->read_only;
        if (cmd_set_read_only(db, v, c->read_only, super, msg, sizeof(msg)) != ORCH_OK) {
            out->result = ORCH__COMMAND_RESULT__RESULT_FAILED;
            snprintf(out->error, sizeof(out->error), "%s", msg);
        }
        return;
    }

    cmd_plan plan = {0};
    orch_err err = cmd_plan_build(c, v, cred, db, &plan, msg, sizeof(msg));
    if (err != ORCH_OK) {
        out->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
        snprintf(out->error, sizeof(out->error), "%s", msg);
        return;
    }
    for (size_t i = 0; i < plan.n; i++) {
        if (orch_db_exec(db, plan.sql[i], NULL, msg, sizeof(msg)) != ORCH_OK) {
            unsigned e = mysql_errno(db);
            /* Idempotence: stopping what is stopped is not a failure (1255: slave
             * already stopped, 1199/3085: not running / not configured). */
            if ((strncmp(plan.sql[i], "STOP ", 5) == 0) && (e == 1255 || e == 1199 || e == 3085))
                continue;
            out->result = ORCH__COMMAND_RESULT__RESULT_FAILED;
            snprintf(out->error, sizeof(out->error), "%s", msg);
            break;
        }
    }
    cmd_plan_fini(&plan);
}
