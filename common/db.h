/*
 * db.h: a MySQL/MariaDB connection through the libmysqlclient API (MariaDB
 * Connector/C), with errors classified the way orch reasons about servers.
 *
 * Every function here blocks (the client library's timeouts are whole seconds):
 * call them from worker threads, never from an event loop. One orch_db belongs
 * to one thread at a time.
 */
#ifndef ORCH_DB_H
#define ORCH_DB_H

#include "err.h"

#include <mysql.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct orch_db_conf {
    const char *socket; /* unix socket; used when non-NULL */
    const char *host;   /* otherwise host and port over TCP */
    unsigned port;
    const char *user;
    const char *password;  /* may be NULL */
    const char *database;  /* may be NULL */
    int connect_timeout_s; /* >= 1 */
    int rw_timeout_s;      /* >= 1 */
} orch_db_conf;

/* How a failure looks from the outside (maps onto ProbeState). */
typedef enum orch_db_failure {
    ORCH_DB_OK = 0,
    ORCH_DB_DOWN,         /* refused, no socket, connection reset: nothing serves */
    ORCH_DB_UNRESPONSIVE, /* connected or connecting, but no answer in time */
    ORCH_DB_AUTH,         /* the server answered and refused our account */
    ORCH_DB_QUERY,        /* the server answered with an SQL error */
} orch_db_failure;

/* Classifies a client error number (mysql_errno) and the errno seen with it. */
orch_db_failure orch_db_classify(unsigned mysql_errno, int sys_errno);

const char *orch_db_failure_name(orch_db_failure f);

/*
 * Opens a connection. On success *out is a new handle (mysql_close when done).
 * On failure *failure says how it failed and msg holds "(errno) text".
 */
orch_err orch_db_connect(const orch_db_conf *conf, MYSQL **out, orch_db_failure *failure, char *msg,
                         size_t msglen) ORCH_MUST_CHECK;

/*
 * Runs one statement and discards any result. On failure *failure (may be NULL)
 * classifies it and msg holds "(errno) text" and the statement's first words.
 */
orch_err orch_db_exec(MYSQL *db, const char *sql, orch_db_failure *failure, char *msg,
                      size_t msglen) ORCH_MUST_CHECK;

/*
 * Runs a query and stores its whole result in *res (mysql_free_result when
 * done). A statement without a result set yields *res == NULL and ORCH_OK.
 */
orch_err orch_db_query(MYSQL *db, const char *sql, MYSQL_RES **res, orch_db_failure *failure,
                       char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * Runs a query expected to return one value; copies row 0, column 0 into buf
 * (NULL value -> *is_null true and buf ""). No row: ORCH_ERR_NOTFOUND.
 */
orch_err orch_db_query_value(MYSQL *db, const char *sql, char *buf, size_t buflen, bool *is_null,
                             orch_db_failure *failure, char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * Escapes s as a single-quoted SQL string literal into buf ("'it''s'" style,
 * through mysql_real_escape_string). ORCH_ERR_TOOBIG when buf is too small.
 */
orch_err orch_db_quote(MYSQL *db, const char *s, char *buf, size_t buflen) ORCH_MUST_CHECK;

#endif
