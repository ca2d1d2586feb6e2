/*
 * operations.h: topology operations an operator asks the leader for
 * (DESIGN.md section 4, "Operations"): relocate, relocate-replicas, move-up,
 * move-up-replicas, move-below, repoint, take-master, graceful-master-takeover,
 * stop/start/restart replica, set read-only/writeable.
 *
 * Each operation is checked first (the instances known, fresh and answering,
 * not held in maintenance by someone else, and operations_can_replicate_from
 * for every new replication link, refusals explained in words), then takes
 * the maintenance locks of the instances it touches (owner "orch"), runs its
 * agent commands through commander one step at a time (in parallel where
 * nothing depends on the order), verifies each step from the state the agent
 * sends back, releases the locks (success or not) and answers. Only GTID
 * replication is used (MariaDB MASTER_USE_GTID=slave_pos, MySQL
 * auto-position).
 *
 * Steps are logged with stable tags: ORCH-OPERATION-START, -STEP, -END,
 * -FAILED, -REFUSED, and for the takeover ORCH-TAKEOVER-READONLY,
 * -CAUGHT-UP, -PROMOTED, -ROLLBACK (with the write-unavailable window).
 *
 * Threads: the coordinator's loop only (callbacks of commander and store
 * arrive there too), except operations_can_replicate_from, which is pure.
 */
#ifndef ORCH_OPERATIONS_H
#define ORCH_OPERATIONS_H

#include "err.h"
#include "key.h"
#include "recovery.h"
#include "version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- can-replicate-from: a pure rule ----------------------------------------- */

/* What the rule needs to know about one instance (pointers borrowed). */
typedef struct operations_node {
    const char *name;     /* "host:port" */
    orch_version version; /* major 0: unknown */
    bool log_bin, log_slave_updates;
    const char *gtid_mode; /* MySQL @@gtid_mode ("ON", "OFF", ...); ignored on MariaDB */
    bool has_master;       /* it replicates from someone (then it must log what it applies) */
    bool fresh;            /* its agent reported recently */
    bool up;               /* and its server answers */
} operations_node;

/*
 * True when replica may replicate from target, using GTID. target_ancestors
 * (may be NULL when n is 0) are the names of target's masters as they will be
 * when the link is made, nearest first: replica among them (or target being
 * replica itself) would make a cycle. Refuses, in this order: the instance
 * itself; a stale or down replica or target; a cycle; a target without a
 * binary log, or a replicating target that does not log what it applies; a
 * flavor family that differs (MariaDB vs MySQL/Percona) or is unknown; a
 * target of a newer series (first two numbers) than the replica; MySQL
 * without gtid_mode ON on both. On false why says so in a sentence
 * ("db4:3306 cannot replicate from db3:3306: it has no binary log"). Pure,
 * any thread.
 */
bool operations_can_replicate_from(const operations_node *replica, const operations_node *target,
                                   const char *const *target_ancestors, size_t n, char *why,
                                   size_t whylen);

/* ---- the operations ------------------------------------------------------------- */

typedef enum operation_kind {
    OPERATION_RELOCATE = 0,      /* instance below target (any instance that can serve it) */
    OPERATION_MOVE_UP,           /* instance below its master's master */
    OPERATION_MOVE_BELOW,        /* instance below target, a sibling */
    OPERATION_REPOINT,           /* instance re-issues its master (target, or the same) */
    OPERATION_TAKE_MASTER,       /* instance swaps places with its master */
    OPERATION_GRACEFUL_TAKEOVER, /* cluster's master hands over to target (or the best) */
    OPERATION_STOP_REPLICA,      /* instance */
    OPERATION_START_REPLICA,     /* instance */
    OPERATION_SET_READ_ONLY,     /* instance */
    OPERATION_SET_WRITEABLE,     /* instance: a cluster's top only */
    OPERATION_RELOCATE_REPLICAS, /* every replica of instance below target */
    OPERATION_MOVE_UP_REPLICAS,  /* every replica of instance below instance's master */
    OPERATION_RESTART_REPLICA,   /* instance: stop, then start (threads verified running) */
    OPERATION__COUNT
} operation_kind;

/* "relocate", "move-up", ...; "unknown" otherwise. Static strings. */
const char *operation_kind_name(operation_kind k);

typedef struct operation_req {
    operation_kind kind;
    orch_key instance;   /* GRACEFUL_TAKEOVER: any member of the cluster (or use cluster) */
    const char *cluster; /* GRACEFUL_TAKEOVER: a cluster hint (name, alias, member); may be NULL */
    bool has_target;
    orch_key target; /* RELOCATE(_REPLICAS)/MOVE_BELOW/REPOINT: the new master; TAKEOVER:
                        designated */
    bool choose;     /* TAKEOVER without a target: orch chooses the replica (the -auto route);
                        otherwise the master must have a single direct replica */
    const char *owner, *reason; /* for the maintenance lock and the log; may be NULL */
} operation_req;

/* How an operation ended. Everything is borrowed for the done call. */
typedef struct operation_result {
    bool ok;
    const char *message;    /* what happened, or why it failed */
    const orch_key *master; /* a move that succeeded: the instance's new master; a takeover:
                               the cluster's; else NULL */
    const orch_key *moved;  /* relocate-replicas, move-up-replicas: the replicas that moved */
    size_t nmoved;
} operation_result;

/* The end of an operation, on the loop. */
typedef void (*operation_done_fn)(void *arg, const operation_result *res);

typedef struct operations operations;

/*
 * deps is copied (its pointers borrowed: they outlive the object). node names
 * this coordinator in logs; command_timeout_ms bounds each agent command,
 * wait_gtid_timeout_ms the designated replica's catch-up in a takeover.
 * NULL when out of memory. Loop thread.
 */
operations *operations_new(const recovery_deps *deps, const char *node, int64_t command_timeout_ms,
                           int64_t wait_gtid_timeout_ms);

/* An agent silent this long is stale (default 5000 ms). Loop thread. */
void operations_set_stale_after_ms(operations *o, int64_t stale_after_ms);

/*
 * The graceful takeover's hooks (pointers borrowed; the lists may change
 * between runs, as on a reload): pre before anything changes (a failing one
 * aborts the takeover), post after a successful one; each within timeout_ms.
 * With the recovery hooks' placeholders: {failureType} GracefulMasterTakeover,
 * {failedHost}/{failedPort} the old master, {successorHost}/{successorPort}
 * the replica promoted. Loop thread.
 */
void operations_set_takeover_hooks(operations *o, const orch_strlist *pre, const orch_strlist *post,
                                   int64_t timeout_ms);

/*
 * Abandons running operations, calling each done callback with ok false
 * (so that a requester lets go of its context; the commander and the store
 * were stopped first and answered everything). Safe on NULL. Loop thread.
 */
void operations_free(operations *o);

/*
 * Starts an operation. Leader only (ORCH_ERR_STATE otherwise). A request that
 * cannot be carried out is refused here with a reason in msg:
 * ORCH_ERR_NOTFOUND (unknown instance or cluster), ORCH_ERR_REFUSED (the
 * rules: can-replicate-from, maintenance, stale agents, a replica made
 * writable), ORCH_ERR_INVAL (missing target). On ORCH_OK done is called
 * exactly once, on the loop, when the operation ends (not from inside this
 * call). Loop thread.
 */
orch_err operation_request(operations *o, const operation_req *req, operation_done_fn done,
                           void *arg, char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Operations running now. */
size_t operations_active(const operations *o);

#endif
