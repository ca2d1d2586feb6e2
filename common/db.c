/* db.c: blocking MySQL helpers with classified failures (see db.h). */
#include "db.h"

#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <string.h>

const char *orch_db_failure_name(orch_db_failure f)
{
    switch (f) {
    case ORCH_DB_OK:
        return "ok";
    case ORCH_DB_DOWN:
        return "down";
    case ORCH_DB_UNRESPONSIVE:
        return "unresponsive";
    case ORCH_DB_AUTH:
        return "auth";
    case ORCH_DB_QUERY:
        return "query";
    }
    return "unknown";
}

/*
 * Client errors: CR_CONNECTION_ERROR (2002, socket) and CR_CONN_HOST_ERROR
 * (2003, TCP) mean nothing accepted the connection, unless the system error is
 * a timeout, which means something is there but not answering. CR_SERVER_LOST
 * (2013) and CR_SERVER_GONE_ERROR (2006) are read failures: a timeout means an
 * unresponsive server, a reset or EOF a dead one. Access errors are AUTH.
 */
orch_db_failure orch_db_classify(unsigned mysql_errno, int sys_errno)
{
    bool timeout = sys_errno == ETIMEDOUT || sys_errno == EAGAIN || sys_errno == EINPROGRESS;
    switch (mysql_errno) {
    case 0:
        return ORCH_DB_OK;
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_ACCESS_DENIED_NO_PASSWORD_ERROR:
    case ER_HOST_NOT_PRIVILEGED:
    case ER_HOST_IS_BLOCKED:
        return ORCH_DB_AUTH;
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_IPSOCK_ERROR:
    case CR_SOCKET_CREATE_ERROR:
    case CR_UNKNOWN_HOST:
        return timeout ? ORCH_DB_UNRESPONSIVE : ORCH_DB_DOWN;
    case CR_SERVER_LOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST_EXTENDED:
        return timeout ? ORCH_DB_UNRESPONSIVE : ORCH_DB_DOWN;
    case ER_SERVER_SHUTDOWN:
    case ER_CON_COUNT_ERROR:
        return ORCH_DB_DOWN;
    default:
        return mysql_errno >= 2000 && mysql_errno < 3000 ? ORCH_DB_DOWN : ORCH_DB_QUERY;
    }
}

static orch_err db_error(MYSQL *db, const char *what, orch_db_failure *failure, char *msg,
                         size_t msglen)
{
    int sys_errno = errno;
    unsigned e = mysql_errno(db);
    const char *text = mysql_error(db);
    /* Connector/C reports a read timeout as 2013 with "timeout" / errno 11/110 */
    if ((e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR) &&
        (strstr(text, "imeout") != NULL || strstr(text, "timed out") != NULL))
        sys_errno = ETIMEDOUT;
    if (failure != NULL)
        *failure = orch_db_classify(e, sys_errno);
    return orch_fail(msg, msglen, ORCH_ERR_MYSQL, "%s: (%u) %s", what, e, text);
}

orch_err orch_db_connect(const orch_db_conf *conf, MYSQL **out, orch_db_failure *failure, char *msg,
                         size_t msglen)
{
    MYSQL *db = mysql_init(NULL);
    if (db == NULL) {
        if (failure != NULL)
            *failure = ORCH_DB_DOWN;
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "mysql_init failed");
    }
    unsigned ct = conf->connect_timeout_s > 0 ? (unsigned)conf->connect_timeout_s : 1;
    unsigned rw = conf->rw_timeout_s > 0 ? (unsigned)conf->rw_timeout_s : 1;
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &rw);
    mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &rw);
    if (conf->socket == NULL) {
        unsigned proto = MYSQL_PROTOCOL_TCP;
        mysql_options(db, MYSQL_OPT_PROTOCOL, &proto);
    }
    errno = 0;
    if (mysql_real_connect(db, conf->socket ? "localhost" : conf->host, conf->user, conf->password,
                           conf->database, conf->port, conf->socket,
                           CLIENT_MULTI_RESULTS) == NULL) {
        orch_err err = db_error(db, "connect", failure, msg, msglen);
        mysql_close(db);
        return err;
    }
    if (failure != NULL)
        *failure = ORCH_DB_OK;
    *out = db;
    return ORCH_OK;
}

/* Drains any further result sets so the connection stays usable. */
static void drain(MYSQL *db)
{
    while (mysql_more_results(db) && mysql_next_result(db) == 0) {
        MYSQL_RES *r = mysql_store_result(db);
        if (r != NULL)
            mysql_free_result(r);
    }
}

orch_err orch_db_query(MYSQL *db, const char *sql, MYSQL_RES **res, orch_db_failure *failure,
                       char *msg, size_t msglen)
{
    char what[48];
    snprintf(what, sizeof(what), "%.40s", sql);
    errno = 0;
    if (mysql_real_query(db, sql, strlen(sql)) != 0)
        return db_error(db, what, failure, msg, msglen);
    MYSQL_RES *r = mysql_store_result(db);
    if (r == NULL && mysql_field_count(db) != 0)
        return db_error(db, what, failure, msg, msglen);
    drain(db);
    if (failure != NULL)
        *failure = ORCH_DB_OK;
    *res = r;
    return ORCH_OK;
}

orch_err orch_db_exec(MYSQL *db, const char *sql, orch_db_failure *failure, char *msg,
                      size_t msglen)
{
    MYSQL_RES *res = NULL;
    orch_err err = orch_db_query(db, sql, &res, failure, msg, msglen);
    if (res != NULL)
        mysql_free_result(res);
    return err;
}

orch_err orch_db_query_value(MYSQL *db, const char *sql, char *buf, size_t buflen, bool *is_null,
                             orch_db_failure *failure, char *msg, size_t msglen)
{
    MYSQL_RES *res = NULL;
    orch_err err = orch_db_query(db, sql, &res, failure, msg, msglen);
    if (err != ORCH_OK)
        return err;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row == NULL || mysql_num_fields(res) < 1) {
        if (res != NULL)
            mysql_free_result(res);
        return orch_fail(msg, msglen, ORCH_ERR_NOTFOUND, "no row from '%.40s'", sql);
    }
    unsigned long *len = mysql_fetch_lengths(res);
    if (is_null != NULL)
        *is_null = row[0] == NULL;
    if (buflen > 0) {
        size_t n = row[0] ? len[0] : 0;
        if (n >= buflen)
            n = buflen - 1;
        if (n > 0)
            memcpy(buf, row[0], n);
        buf[n] = '\0';
    }
    mysql_free_result(res);
    return ORCH_OK;
}

orch_err orch_db_quote(MYSQL *db, const char *s, char *buf, size_t buflen)
{
    size_t len = strlen(s);
    if (buflen < 2 * len + 3)
        return ORCH_ERR_TOOBIG;
    buf[0] = '\'';
    unsigned long n = mysql_real_escape_string(db, buf + 1, s, (unsigned long)len);
    buf[1 + n] = '\'';
    buf[2 + n] = '\0';
    return ORCH_OK;
}
