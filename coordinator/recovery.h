/*
 * recovery.h: the leader's failure handling: analysis, direct checks,
 * automated and requested recoveries of dead masters, fences.
 *
 * Several times a second (and at once when an agent's report changes shape)
 * the leader runs the pure analysis over the registry. A silent master agent
 * gets a direct ReportNow (its timeout is the evidence the holistic rule
 * needs). A recoverable finding starts a recovery, a state machine per
 * cluster whose steps are commands to agents (through commander, in parallel
 * where they can be) and records in the backend (through store, in order):
 *
 *   lock      take the cluster's recovery lock (one active recovery per
 *             cluster; a lock of a lower epoch was a deposed leader's and is
 *             taken over); check global enable, cluster filters, the anti-flap
 *             block (recovery_block_seconds, lifted by acknowledgement)
 *   hooks     on_failure_detection, pre_failover (a failing one aborts)
 *   freeze    stop the IO thread of every replica of the dead master, read
 *             what each received and executed
 *   choose    candidate.c decides; refusals end the recovery, loudly
 *   catch up  a candidate behind the most advanced replica replicates from it
 *             first (after that one applied its own relay log)
 *   record    the successor is written before anything irreversible, so a
 *             leader taking over an interrupted recovery promotes the same one
 *   promote   wait until the candidate applied what it received (bounded),
 *             stop and reset replication, make it writable (verified)
 *   repoint   every other fresh replica follows it (GTID); those that cannot
 *             are reported lost and downtimed
 *   fence     the old master: read-only and its clients killed if its agent
 *             answers, otherwise recorded so that any leader fences it the
 *             moment its agent reports again
 *   end       record the outcome, release the lock, post hooks, metrics
 *
 * Every step is logged with a stable tag (ORCH-FAILOVER-START, -CHOSEN,
 * -PROMOTED, -REPOINTED, -FENCED, -END, -FAILED) and recorded.
 *
 * Thread: the coordinator's loop only (callbacks of commander, store and hooks
 * arrive there too).
 */
#ifndef ORCH_RECOVERY_H
#define ORCH_RECOVERY_H

#include "analysis.h"
#include "commander.h"
#include "config.h"
#include "election.h"
#include "hooks.h"
#include "metrics.h"
#include "registry.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct recovery_conf {
    const char *node;
    const orch_strlist *recover_clusters; /* cluster names or aliases, "*" for all */
    int64_t block_seconds;                /* anti-flap: a cluster recovered within this
                                             is not recovered again until acknowledged */
    int64_t command_timeout_ms;           /* per command to an agent */
    int64_t direct_check_timeout_ms;      /* ReportNow to a silent master's agent */
    int64_t wait_gtid_timeout_ms;         /* applying relay logs before promotion */
    int64_t hook_timeout_ms;
    int64_t lost_downtime_s; /* downtime given to replicas that cannot follow */
    const orch_strlist *on_failure_detection, *pre_failover, *post_failover,
        *post_unsuccessful_failover;
    analysis_config analysis;
} recovery_conf;

typedef struct recovery_deps {
    struct event_base *base;
    registry *reg;
    store *st;
    election *el;
    commander *cmd;
    hooks *hk;
    metrics *m;
} recovery_deps;

typedef struct recovery_mgr recovery_mgr;

/* The configuration's pointers are borrowed: they must outlive the manager
 * (the coordinator's config does); recovery_set_conf swaps them. */
recovery_mgr *recovery_new(const recovery_deps *deps, const recovery_conf *conf, char *msg,
                           size_t msglen);

/*
 * Abandons running recoveries (their locks stay for the next leader; the done
 * callback of a requested one is called, not ok), frees.
 */
void recovery_free(recovery_mgr *m);

void recovery_set_conf(recovery_mgr *m, const recovery_conf *conf);

/* Something changed (a report's shape): analyse soon, coalesced. */
void recovery_poke(recovery_mgr *m);

/* The periodic beat (the coordinator's refresh timer). */
void recovery_tick(recovery_mgr *m, int64_t now_ms);

/* This node just became leader (true) or stopped leading (false). */
void recovery_leadership(recovery_mgr *m, bool leader);

/* The newest analysis (NULL before the first); valid until the next tick. */
const analysis_result *recovery_analysis(recovery_mgr *m);

/* Answer to a requested recovery: ok, a message, the recovery's uid ("" if none). */
typedef void (*recovery_done_fn)(void *arg, bool ok, const char *message, const char *uid);

/*
 * What an operator asks: orchestrator's recover (the failed master, and
 * optionally the replica to promote) and, with force, force-master-failover
 * and force-master-takeover (no analysis verdict needed, refusals that protect
 * data overridden).
 */
typedef struct recovery_req {
    orch_key failed;
    bool force;
    bool has_candidate; /* candidate: a direct replica of failed, promoted if eligible */
    orch_key candidate;
    const char *reason; /* for the log, hooks and audit; may be NULL */
} recovery_req;

/*
 * Starts the requested recovery. Leader only. Refused here (msg says why):
 * unknown instance, no replicas, a candidate that is not a direct replica, a
 * recovery of the cluster running, not failed without force. done runs when
 * the recovery ends.
 */
orch_err recovery_request(recovery_mgr *m, const recovery_req *req, recovery_done_fn done,
                          void *arg, char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * True when automated recoveries may act on the cluster: recover_clusters
 * names it or its alias (case-insensitive), or is "*". Any thread that does
 * not race a configuration reload (the loop).
 */
bool recovery_cluster_selected(const recovery_mgr *m, const char *cluster, const char *alias);

/* Counters for /metrics and /api/status. */
typedef struct recovery_stats {
    uint64_t detections, started, succeeded, failed, refused, blocked, skipped;
    uint64_t direct_checks;
    unsigned active;
} recovery_stats;

void recovery_stats_get(const recovery_mgr *m, recovery_stats *out);

#endif
