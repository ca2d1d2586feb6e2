/*
 * commands.h: what each leader command does to the local server.
 *
 * cmd_plan_build() is pure: it turns a Command into the SQL statements to run
 * for the server's flavor and version (MariaDB CHANGE MASTER ... MASTER_USE_GTID
 * vs MySQL CHANGE REPLICATION SOURCE ... SOURCE_AUTO_POSITION, STOP SLAVE vs STOP
 * REPLICA, named connections vs channels), validating every argument that ends up
 * in SQL. cmd_execute() runs a plan and the commands that need more than a list
 * of statements (WaitForGtid, Fence, SetReadOnly's verification) over a
 * connection. Every command is idempotent: running it twice leaves the server
 * as running it once.
 *
 * cmd_execute blocks; the agent calls it from its command worker threads.
 */
#ifndef ORCH_AGENT_COMMANDS_H
#define ORCH_AGENT_COMMANDS_H

#include "db.h"
#include "err.h"
#include "orch.pb-c.h"
#include "version.h"

#include <stddef.h>

#define CMD_PLAN_MAX 8

typedef struct cmd_plan {
    char *sql[CMD_PLAN_MAX]; /* owned */
    size_t n;
} cmd_plan;

typedef struct cmd_credentials {
    const char *user;     /* replication account for ChangeMaster */
    const char *password; /* may be NULL */
} cmd_credentials;

/*
 * Builds the statements for c on a server of version v. Commands that are not
 * a plain list of statements (ReportNow, Ping, WaitForGtid, Fence) yield an
 * empty plan. db is used only to quote the password (NULL: a pure fallback that
 * refuses backslashes). Bad arguments: ORCH_ERR_INVAL with msg saying which.
 */
orch_err cmd_plan_build(const Orch__Command *c, const orch_version *v, const cmd_credentials *cred,
                        MYSQL *db, cmd_plan *out, char *msg, size_t msglen) ORCH_MUST_CHECK;

void cmd_plan_fini(cmd_plan *plan);

/* The outcome of one command on the server. */
typedef struct cmd_outcome {
    Orch__CommandResult result;
    char error[512];
} cmd_outcome;

/*
 * Runs c (not ReportNow, Ping or Fence, which the agent handles with its state)
 * over db. On a server error the outcome is RESULT_FAILED with the statement and
 * the server's message; WaitForGtid that does not reach the set in time is
 * RESULT_TIMEOUT.
 */
void cmd_execute(const Orch__Command *c, const orch_version *v, const cmd_credentials *cred,
                 MYSQL *db, cmd_outcome *out);

/*
 * Fences the server over db: every client connection killed except
 * replication threads, system threads and the agent's own account's (so that a commit still
 * waiting for a semi-sync acknowledgement ends with an error and never OK, and
 * stops holding up read_only), then read_only (and super_read_only where it
 * exists) on, verified, then the clients killed again. *killed receives how
 * many were killed.
 */
orch_err cmd_fence(MYSQL *db, const orch_version *v, int *killed, char *msg,
                   size_t msglen) ORCH_MUST_CHECK;

/* Sets read_only on or off (super too on MySQL when asked) and verifies it. */
orch_err cmd_set_read_only(MYSQL *db, const orch_version *v, bool on, bool super, char *msg,
                           size_t msglen) ORCH_MUST_CHECK;

/* "REPORT_NOW", "STOP_REPLICA", ... */
const char *cmd_type_name(int type);

/* "OK", "FAILED", "STALE_EPOCH", ... */
const char *cmd_result_name(int result);

#endif
