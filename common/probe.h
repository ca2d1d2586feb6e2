/*
 * probe.h: one probe of the local MySQL/MariaDB server, over a kept connection.
 *
 * orch_probe_run() runs the statements chosen by probe_parse.c for the server's
 * flavor and version and folds their rows into a result: the server's state
 * (UP, DOWN, UNRESPONSIVE, AUTH_ERROR with the error text), its status and
 * variables, every replication channel, the replicas connected to it, and the
 * problems found (missing privileges are checked at every (re)connect).
 *
 * Blocking (the client library's timeouts are whole seconds): the agent runs it
 * on its probe thread and enforces its sub-second deadline from the loop. One
 * orch_probe belongs to one thread at a time.
 */
#ifndef ORCH_PROBE_H
#define ORCH_PROBE_H

#include "db.h"
#include "orch.pb-c.h"
#include "probe_parse.h"
#include "version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orch_probe orch_probe;

typedef struct orch_probe_result {
    Orch__ProbeState state;
    char error[512];            /* why the state is not UP; "" when UP */
    uint32_t probe_us;          /* wall time of the probe */
    Orch__ServerStatus *server; /* owned; NULL unless UP */
    Orch__Channel **channels;   /* owned */
    size_t nchannels;
    Orch__ConnectedReplica **replicas; /* owned */
    size_t nreplicas;
    char **problems; /* owned strings */
    size_t nproblems;
    orch_version version; /* valid when have_version */
    bool have_version;
} orch_probe_result;

/* Copies conf's strings. NULL when out of memory. */
orch_probe *orch_probe_new(const orch_db_conf *conf);

/* Closes the connection and frees. Safe on NULL. */
void orch_probe_free(orch_probe *p);

/*
 * Probes once; *out (which must be zeroed or finished) receives the result and
 * owns it. Always fills out->state; returns ORCH_OK unless out of memory.
 */
orch_err orch_probe_run(orch_probe *p, orch_probe_result *out) ORCH_MUST_CHECK;

/*
 * The kept connection: *fd its socket (-1 when not connected) and *generation
 * a number that changes at every (re)connect. Lets the agent watch the socket
 * for the server closing it (a crash) between probes. Same thread as run.
 */
void orch_probe_connection(const orch_probe *p, int *fd, uint64_t *generation);

/* One row of a query's result as the parsers take it (borrowed from res). */
orch_probe_row orch_probe_row_of(MYSQL_RES *res, MYSQL_ROW row);

/* Frees what a result owns and zeroes it. Safe on NULL and twice. */
void orch_probe_result_fini(orch_probe_result *r);

/* Adds a copy of text to r->problems. */
orch_err orch_probe_result_add_problem(orch_probe_result *r, const char *text) ORCH_MUST_CHECK;

/* "UP", "DOWN", "UNRESPONSIVE", "AUTH_ERROR", "UNKNOWN". */
const char *orch_probe_state_name(Orch__ProbeState s);

#endif
