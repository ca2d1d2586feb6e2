/*
 * render.h: registry objects as orchestrator-shaped JSON, the ASCII topology
 * and the coordinator's web page.
 *
 * orch's HTTP API is compatible with orchestrator's where they overlap, so
 * the JSON here uses orchestrator's field names and types (Key{Hostname,Port},
 * MasterKey, ReplicationIOThreadRuning with its misspelling, NullInt64 as
 * {Int64,Valid}, ...). Everything orchestrator has no word for lives under
 * one "Orch" object per instance, whose names cannot clash with it.
 *
 * Mapping from agents' reports to orchestrator's notions:
 *   IsLastCheckValid   the agent's newest report says the server is UP
 *   IsRecentlyChecked  that report is fresh (not older than stale_after_ms)
 *   IsUpToDate         both
 *   ReplicationXThreadState  -1 no replication, 0 stopped, 1 running,
 *                      2 other (connecting, or not reported)
 *
 * Pure functions over borrowed registry objects: no I/O, no clocks (the
 * caller passes "now"), any thread that may read the registry (the loop's).
 * Returned JSON references and strings belong to the caller.
 */
#ifndef ORCH_RENDER_H
#define ORCH_RENDER_H

#include "analysis.h"
#include "key.h"
#include "orch.pb-c.h"
#include "registry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct render_ctx {
    int64_t now_ms;                   /* monotonic, the clock of reg_instance.last_seen_ms */
    int64_t now_wall_ms;              /* wall clock: downtime ends, timestamps */
    int64_t stale_after_ms;           /* an agent silent this long is stale (unknown) */
    int64_t reasonable_lag_s;         /* above this: "replication_lag" problem, "lag" status */
    bool recover_master;              /* ClusterInfo.HasAutomatedMasterRecovery */
    bool recover_intermediate_master; /* ClusterInfo.HasAutomatedIntermediateMasterRecovery */
    /* when set, both of the above per cluster: automated recovery acts on it */
    bool (*recovers)(const void *arg, const char *cluster, const char *alias);
    const void *recovers_arg;
    bool raw_report; /* add Orch.Report: the agent's whole report */
} render_ctx;

/* Printable names: "UP", "DOWN", "UNRESPONSIVE", "AUTH_ERROR", "UNKNOWN". */
const char *render_agent_state_name(Orch__ProbeState s);
/* orchestrator's promotion rules: "prefer", "neutral", "prefer_not", "must_not". */
const char *render_promotion_rule_name(Orch__PromotionRule r);
/* orchestrator's FlavorName: "MySQL", "MariaDB", "Percona", "unknown". */
const char *render_flavor_name(Orch__Flavor f);
/* "GREETING", "REFUSED", "TIMEOUT", "ERROR", "NOT_CHECKED". */
const char *render_witness_name(Orch__WitnessResult w);

/* orchestrator's ReplicationThreadState for one thread of a channel (NULL: -1). */
int render_thread_state(const Orch__Channel *ch, bool io_thread);

/* True when the instance's newest report is older than c->stale_after_ms. */
bool render_is_stale(const reg_instance *i, const render_ctx *c);

/* {"Hostname": host, "Port": port}. NULL when out of memory (as every json_t * here). */
json_t *render_key(const orch_key *k);

/*
 * The instance as orchestrator's Instance JSON plus "Orch". Topology fields
 * (MasterKey, ClusterName, Replicas, ReplicationDepth, IsCoMaster) are read
 * from the registry's last refresh.
 */
json_t *render_instance(const reg_instance *i, const render_ctx *c);

/* An array of render_instance() objects. */
json_t *render_instance_array(reg_instance *const *v, size_t n, const render_ctx *c);

/*
 * orchestrator's Problems for the instance, in its order (last_check_invalid,
 * not_recently_checked, not_replicating, replication_lag: the first that
 * applies; then errant_gtid), then orch's own (unresolved_master,
 * ambiguous_master, fenced, self_fenced), then the agent's reported problems.
 */
json_t *render_problems(const reg_instance *i, const render_ctx *c);

/*
 * orchestrator's ClusterInfo: ClusterName, ClusterAlias (the name when there
 * is no alias), ClusterDomain, CountInstances, HeuristicLag (the largest lag
 * of a fresh replica, 0 without one), HasAutomatedMasterRecovery,
 * HasAutomatedIntermediateMasterRecovery.
 */
json_t *render_cluster_info(const reg_cluster *cl, const render_ctx *c);

/*
 * orchestrator's envelope {"Code": "OK"|"ERROR", "Message": message,
 * "Details": details}. Takes ownership of details (NULL renders null).
 */
json_t *render_envelope(bool ok, const char *message, json_t *details);

/* ---- failure analysis and recoveries ------------------------------------------ */

/*
 * orchestrator's ReplicationAnalysis (go/inst/analysis.go) for one entry of an
 * analysis result: AnalyzedInstanceKey, AnalyzedInstanceMasterKey ({"",0}
 * without a master), ClusterDetails (a ClusterInfo, as render_cluster_info
 * gives it for cl, with the analysis's name and alias), IsMaster,
 * IsClusterMaster, IsCoMaster, LastCheckValid, the Count* fields, Replicas and
 * SlaveHosts, Analysis, Description, StructureAnalysis (names), IsDowntimed,
 * DowntimeEndTimestamp, DowntimeRemainingSeconds, the GTID modes,
 * MaxReplicaGTIDErrant, IsReadOnly, ... Fields orch has no value for
 * (binlog-server and pseudo-GTID topologies, logging-format counts, peer
 * agreement) are left out or false, as render_instance does. orch's own
 * (Recoverable, Role, AgentState, Stale, DirectCheck, InMaintenance, the
 * confirming and vetoing counts, errant replicas, the cluster's warm-up) go
 * under "Orch". cl and inst (the analysed instance) may be NULL: ClusterDetails
 * then comes from the analysis alone, and data center, region and binary log
 * coordinates stay empty.
 */
json_t *render_analysis_entry(const analysis_result *res, const analysis_entry *e,
                              const reg_cluster *cl, const reg_instance *inst, const render_ctx *c);

/*
 * Rows of the backend's recovery, recovery_step and failure_detection tables
 * (store_submit_batch rows: column -> string or null) in orchestrator's shapes
 * (go/logic/topology_recovery.go). The SELECT lists below name the columns
 * they read; r is the alias of the recovery table. Timestamps lose their
 * fractions ("YYYY-MM-DD HH:MM:SS", UTC).
 */
#define RENDER_RECOVERY_COLUMNS                                                                    \
    "r.uid, r.cluster, r.cluster_alias, r.failed_host, r.failed_port, r.analysis, "                \
    "r.description, r.state, r.successor_host, r.successor_port, r.lost_replicas, "                \
    "r.participating_replicas, r.node, r.epoch, r.started_at, r.ended_at, r.is_successful, "       \
    "r.acknowledged, r.acknowledged_at, r.acknowledged_by, r.acknowledged_comment, "               \
    "(SELECT COUNT(*) FROM recovery o WHERE o.started_at < r.started_at OR "                       \
    "(o.started_at = r.started_at AND o.uid <= r.uid)) AS ordinal"
#define RENDER_RECOVERY_STEP_COLUMNS "uid, seq, at, step, message"
#define RENDER_FAILURE_DETECTION_COLUMNS                                                           \
    "id, detected_at, cluster, hostname, port, analysis, description, node, epoch, recovery_uid"

/*
 * orchestrator's TopologyRecovery: Id (orch keys recoveries by UID; Id is the
 * recovery's ordinal by start time), UID, AnalysisEntry (the failed instance,
 * its cluster, Analysis, Description), SuccessorKey (null when none),
 * IsActive, IsSuccessful, LostReplicas, ParticipatingInstanceKeys, AllErrors,
 * RecoveryStartTimestamp, RecoveryEndTimestamp, ProcessingNodeHostname,
 * Acknowledged, AcknowledgedAt, AcknowledgedBy, AcknowledgedComment, Type,
 * RecoveryType; "Orch": State and Epoch.
 */
json_t *render_recovery_row(const json_t *row);

/* orchestrator's TopologyRecoveryStep: Id (the step's number), RecoveryUID, AuditAt,
 * Message; "Orch": Step (lock, freeze, choose, promote, ...). */
json_t *render_recovery_step_row(const json_t *row);

/* A failure detection as orchestrator lists them (a TopologyRecovery with Id,
 * AnalysisEntry, IsActive false, RecoveryStartTimestamp = the detection's
 * time, ProcessingNodeHostname); "Orch": RecoveryUID and Epoch. */
json_t *render_failure_detection_row(const json_t *row);

/*
 * The description orchestrator prints after a key in its topology:
 * "[0s,ok,10.11.6-MariaDB-log,rw,ROW,>>,GTID]" (lag, status, version,
 * ro/rw, binlog format or "nobinlog", then ">>" (log_slave_updates),
 * "GTID", "semi:master", "semi:replica", "downtimed"), followed by orch's
 * additions: "agent:down" (any agent state but UP), "agent:stale",
 * "maintenance", "fenced", "self-fenced", "master:unresolved",
 * "master:ambiguous", "problems:N" (N problems the agent reported).
 * Empty tokens are left out. Writes into buf; returns buf.
 */
char *render_description(const reg_instance *i, const render_ctx *c, char *buf, size_t buflen);

/*
 * orchestrator's ASCII topology of a cluster: one instance per line, the
 * master first, each replica under its master indented by two spaces per
 * level and prefixed "+ " when it replicates and its agent is fresh and UP,
 * "- " otherwise; every description aligned to one column. A cluster of
 * co-masters lists each co-master at the first level with its replicas
 * under it. Lines are joined by "\n" without a trailing newline. Returns a
 * malloc'd string (caller frees), NULL when out of memory.
 */
char *render_topology(const reg_cluster *cl, const render_ctx *c);

/* What the web page says about this coordinator. Strings are borrowed. */
typedef struct render_page_info {
    const char *node; /* this coordinator */
    bool is_leader;
    uint64_t epoch;
    const char *leader; /* NULL or "" when unknown */
    const char *version;
    bool backend_ok;
    const char *backend_error;
} render_page_info;

/*
 * The web page: this node and its leader, then every cluster with its
 * topology, then every instance with problems. Plain HTML with inline CSS,
 * no scripts, no external assets; everything from the registry is escaped.
 * A malloc'd string (caller frees), NULL when out of memory.
 */
char *render_page(reg_cluster *const *clusters, size_t nclusters, const render_page_info *pi,
                  const render_ctx *c);

#endif
