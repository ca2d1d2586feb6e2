/*
 * api.h: the coordinator's HTTP server: orchestrator-compatible API under
 * /api/, Prometheus metrics at /metrics, and the web page at /.
 *
 * Reads are served from this coordinator's own registry (every coordinator
 * holds the same picture); what the API needs from election and store comes
 * through api_deps callbacks, so this module knows nothing of them.
 *
 * Routes live in one table (pattern, handler, flags); parameters (":host"
 * and ":port" as an instance key checked by orch_key_make, ":hint" for a
 * cluster) are extracted and validated in one place before a handler runs.
 * Answers follow orchestrator: bare JSON where it returns bare JSON, the
 * {"Code","Message","Details"} envelope where it uses one, and errors as an
 * "ERROR" envelope with HTTP 500. Where orchestrator's clients look only at
 * "Code" (orchestrator-client does), orch uses the more precise status:
 * 404 for an unknown instance, cluster or route, 400 for a malformed key,
 * 405 for a method other than GET/HEAD, 414 for a URL over 2 KiB, 401 with
 * WWW-Authenticate for missing or wrong credentials, 403 for a read-only user
 * on a write route.
 *
 * Recovery and operator-state routes (replication-analysis, audit-*,
 * recover, force-master-failover, ack-*, *-global-recoveries, downtime,
 * maintenance, candidates, cluster aliases) reach recovery.c and store.c
 * through an api_backend. Those answered from the backend or by a recovery
 * are answered later, from their done callbacks on the loop; a client that
 * hangs up meanwhile, or api_stop, leaves nothing behind but the small
 * context the callback frees. recover and force-master-failover are the
 * leader's: a follower answers 503 with the leader's API URL (forwarding is a
 * later step). So are the topology operations (relocate, move-up, move-below,
 * repoint, take-master, graceful-master-takeover, stop/start-replica,
 * set-read-only/writeable), which reach operations.c the same way and are
 * answered when the operation ends. Operator state is written by any coordinator (DESIGN.md 4).
 *
 * Instance lists longer than api_deps.stream_batch are streamed (chunked),
 * one batch per loop turn after the previous one was written, so that
 * all-instances of a large fleet never holds the loop (an instance takes
 * ~80 us to render).
 *
 * Thread: everything here runs on the coordinator's loop thread, which owns
 * the event_base and the registry; no handler blocks. The process must
 * ignore SIGPIPE: a client that hangs up mid-answer would kill it otherwise.
 */
#ifndef ORCH_API_H
#define ORCH_API_H

#include "analysis.h"
#include "coord_config.h"
#include "err.h"
#include "metrics.h"
#include "operations.h"
#include "recovery.h"
#include "registry.h"
#include "store.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct api api;

/* One coordinator of the pool, as the election knows it. Strings are borrowed. */
typedef struct api_node_info {
    const char *node;          /* its name */
    const char *api_url;       /* where its API answers (for forwarding) */
    const char *version;       /* orch version it runs, NULL if unknown */
    int64_t last_seen_wall_ms; /* its last registration, 0 if unknown */
} api_node_info;

/*
 * Leadership as this coordinator sees it. Filled by api_deps.leader on the
 * loop thread; the strings and the nodes array are borrowed and need only
 * stay valid until the callback's caller returns to the loop (the handler
 * uses them at once).
 */
typedef struct api_leader_info {
    bool is_leader;
    uint64_t epoch;
    const char *node;       /* this coordinator's name */
    const char *leader;     /* the leader's name; NULL or "" when unknown */
    const char *leader_api; /* the leader's API URL; NULL when unknown */
    const api_node_info *nodes;
    size_t nnodes;
} api_leader_info;

/* The backend as this coordinator sees it. Strings are borrowed as above. */
typedef struct api_health_info {
    bool backend_ok;
    const char *backend_error;       /* NULL when ok */
    int64_t backend_rtt_us;          /* last round trip; -1 unknown */
    int64_t write_queue_depth;       /* pending write-behind batches; -1 unknown */
    int64_t last_backend_ok_wall_ms; /* 0: never */
} api_health_info;

/*
 * What the recovery and operator-state routes use of recovery.c and store.c,
 * with the contracts of recovery_analysis, recovery_request, store_submit_op,
 * store_submit_batch and store_get_setting (arg first). Called on the loop
 * thread; done callbacks run on the loop thread, exactly once when the call
 * returned ORCH_OK (possibly before it returns: a recovery may end at once)
 * and never otherwise. The API touches nothing of a request after its call
 * returned ORCH_OK. The unit tests pass fakes; the coordinator passes none
 * (api_deps.backend NULL) and gets the real functions over api_deps.rec and
 * api_deps.st.
 */
typedef struct api_backend {
    const analysis_result *(*analysis)(void *arg);
    orch_err (*recover)(void *arg, const recovery_req *req, recovery_done_fn done, void *done_arg,
                        char *msg, size_t msglen);
    orch_err (*submit_op)(void *arg, const store_op *op, store_done_fn done, void *done_arg,
                          char *msg, size_t msglen);
    orch_err (*submit_batch)(void *arg, const char *what, char **stmts, size_t n,
                             store_rows_fn done, void *done_arg, char *msg, size_t msglen);
    /* NULL: no backend (check-global-recoveries answers 503) */
    bool (*get_setting)(void *arg, const char *name, char *buf, size_t buflen);
    /* operation_request's contract; may be NULL in a fake (the routes answer 503) */
    orch_err (*operate)(void *arg, const operation_req *req, operation_done_fn done, void *done_arg,
                        char *msg, size_t msglen);
    void *arg;
} api_backend;

/*
 * What the API reads. Copied by api_start(); the pointers are borrowed and
 * must outlive the api. Callbacks run on the loop thread with their output
 * zeroed (backend_rtt_us and write_queue_depth preset to -1); either may be
 * NULL: no leader callback means "not the leader, no election"; no health
 * callback means "healthy".
 */
typedef struct api_deps {
    registry *reg; /* loop-owned; refreshed and read here */
    metrics *m;    /* request metrics go here; may be NULL */
    void (*leader)(void *arg, api_leader_info *out);
    void (*health)(void *arg, api_health_info *out);
    void *arg;
    int64_t stale_after_ms;           /* an agent silent this long is stale */
    int64_t reasonable_lag_s;         /* "replication_lag" threshold; 0 means 10 */
    bool recover_master;              /* reported in ClusterInfo */
    bool recover_intermediate_master; /* reported in ClusterInfo */
    int64_t recovery_block_s;         /* the anti-flap block, for blocked-recoveries */
    size_t stream_batch; /* longer instance lists are streamed, this many per chunk (0: 128) */
    recovery_mgr *rec;   /* the newest analysis, requested recoveries; may be NULL */
    operations *ops;     /* topology operations (relocate, takeover, ...); may be NULL (503) */
    store *st;           /* audits, acknowledgements, operator state; may be NULL (503) */
    const api_backend *backend; /* NULL: the real functions over rec and st (copied) */
} api_deps;

/* Credentials (copied by api_start / api_set_auth). */
typedef struct api_auth {
    coord_auth_mode mode;
    const char *user, *password;                   /* basic, basic_readonly */
    const char *readonly_user, *readonly_password; /* basic_readonly */
} api_auth;

/*
 * Starts serving on listen ("host:port", "[v6]:port"; port 0 picks a free
 * one, see api_port) on base. auth NULL means COORD_AUTH_NONE. Returns NULL
 * with msg set when the address does not parse or cannot be bound.
 */
api *api_start(struct event_base *base, const char *listen, const api_deps *deps,
               const api_auth *auth, char *msg, size_t msglen);

/*
 * Stops listening, drops open connections and frees. Answers still owed by a
 * backend or a recovery are dropped: their callbacks, when they come, free
 * their contexts and touch nothing else. Safe on NULL.
 */
void api_stop(api *a);

/* The bound port (useful after listening on port 0). */
uint16_t api_port(const api *a);

/* Replaces the credentials (SIGHUP reload). ORCH_ERR_NOMEM leaves the old ones. */
orch_err api_set_auth(api *a, const api_auth *auth) ORCH_MUST_CHECK;

/*
 * Route table queries, for tests and for the fuzz target.
 *
 * api_route_find matches a decoded path ("api/instance/db1/3306", without the
 * leading '/') against the table; returns the route's pattern (a stable
 * string, also the route label of the request metrics) or NULL, and whether
 * it writes.
 */
const char *api_route_find(const char *path, bool *writes);

typedef enum api_auth_result {
    API_AUTH_OK = 0,
    API_AUTH_MISSING,   /* 401: no or malformed Authorization header */
    API_AUTH_WRONG,     /* 401: unknown user or wrong password */
    API_AUTH_READ_ONLY, /* 403: the read-only user asked for a write route */
} api_auth_result;

/*
 * The authentication decision for an Authorization header value (NULL when
 * absent) on a route that writes or not. Passwords are compared in constant
 * time (SHA-256 of both sides, then a constant-time compare).
 */
api_auth_result api_auth_check(const api *a, const char *authorization, bool writes);

#endif
