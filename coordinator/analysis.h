/*
 * analysis.h: failure analysis, a pure function from the registry to findings.
 *
 * Every run looks at every cluster of the registry (already refreshed, or
 * refreshed here through registry_clusters) and says, per instance, what is
 * wrong with it in orchestrator's words where the meaning is the same
 * (DeadMaster, UnreachableMaster, DeadIntermediateMaster, LockedSemiSyncMaster,
 * ErrantGTIDStructureWarning, ...) and in orch's own where agents make more
 * possible (AgentDown: a master's agent is silent while its replicas replicate;
 * MasterHung: the agent finds its server unresponsive and no replica's witness
 * gets a greeting). The holistic rule and the safer readings taken where the
 * design is silent are written in analysis.c above the code that applies them.
 *
 * Nothing here does I/O or reads a clock: the caller passes "now" and, for a
 * master whose agent is silent, the state of the direct ReportNow it sends to
 * that agent (analysis_direct_fn). A result names the masters for which that
 * direct check is wanted; the caller sends it and runs the analysis again.
 *
 * Threads: the coordinator's loop thread (the registry's). The result is
 * independent of the registry once built (keys and strings are copied), so it
 * may be handed to other threads; it is read-only and freed with
 * analysis_result_free(). A run is O(instances) (plus the GTID sets parsed for
 * errant-transaction checks), cheap enough for several runs a second.
 */
#ifndef ORCH_ANALYSIS_H
#define ORCH_ANALYSIS_H

#include "err.h"
#include "key.h"
#include "orch.pb-c.h"
#include "registry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What is wrong with one instance, orchestrator's AnalysisCode (printable with
 * analysis_code_name, which gives orchestrator's exact string).
 */
typedef enum analysis_code {
    ANALYSIS_NO_PROBLEM = 0,
    /* The cluster's master (no master of its own). */
    ANALYSIS_DEAD_MASTER_WITHOUT_REPLICAS,
    ANALYSIS_DEAD_MASTER,
    ANALYSIS_DEAD_MASTER_AND_REPLICAS,
    ANALYSIS_DEAD_MASTER_AND_SOME_REPLICAS,
    ANALYSIS_MASTER_HUNG, /* orch: a dead master whose agent says UNRESPONSIVE */
    ANALYSIS_UNREACHABLE_MASTER_WITH_LAGGING_REPLICAS,
    ANALYSIS_UNREACHABLE_MASTER,
    ANALYSIS_AGENT_DOWN, /* orch: the agent is silent, the replicas replicate */
    ANALYSIS_MASTER_SINGLE_REPLICA_NOT_REPLICATING,
    ANALYSIS_MASTER_SINGLE_REPLICA_DEAD,
    ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING,
    ANALYSIS_ALL_MASTER_REPLICAS_NOT_REPLICATING_OR_DEAD,
    ANALYSIS_LOCKED_SEMI_SYNC_MASTER,
    /* Members of a replication cycle (master-master). */
    ANALYSIS_DEAD_CO_MASTER,
    ANALYSIS_DEAD_CO_MASTER_AND_SOME_REPLICAS,
    ANALYSIS_UNREACHABLE_CO_MASTER,
    ANALYSIS_ALL_CO_MASTER_REPLICAS_NOT_REPLICATING,
    /* Replicas with replicas of their own. */
    ANALYSIS_DEAD_INTERMEDIATE_MASTER,
    ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA,
    ANALYSIS_DEAD_INTERMEDIATE_MASTER_WITH_SINGLE_REPLICA_FAILING_TO_CONNECT,
    ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_SOME_REPLICAS,
    ANALYSIS_DEAD_INTERMEDIATE_MASTER_AND_REPLICAS,
    ANALYSIS_UNREACHABLE_INTERMEDIATE_MASTER_WITH_LAGGING_REPLICAS,
    ANALYSIS_UNREACHABLE_INTERMEDIATE_MASTER,
    ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_FAILING_TO_CONNECT_OR_DEAD,
    ANALYSIS_ALL_INTERMEDIATE_MASTER_REPLICAS_NOT_REPLICATING,
    /* Replicas of the cluster's master. */
    ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER,
    ANALYSIS_CODE__COUNT
} analysis_code;

/* orchestrator's name ("DeadMaster", ...); "Unknown" out of range. Static strings. */
const char *analysis_code_name(analysis_code code);

/* DeadMaster, DeadMasterAndSomeReplicas, MasterHung, DeadCoMaster, DeadCoMasterAndSomeReplicas:
 * the findings a master failover answers (before downtime and the other checks). */
bool analysis_code_is_dead_master(analysis_code code);

/* The DeadIntermediateMaster findings that have replicas left to move. */
bool analysis_code_is_dead_intermediate_master(analysis_code code);

/*
 * Structure warnings: hazards for a future recovery, never a failure by
 * themselves. Bits of analysis_entry.structure; names (orchestrator's
 * StructureAnalysisCode strings) from analysis_structure_name.
 */
typedef enum analysis_structure {
    ANALYSIS_ST_NO_LOGGING_REPLICAS = 1u << 0,
    ANALYSIS_ST_NO_FAILOVER_SUPPORT = 1u << 1,
    ANALYSIS_ST_STATEMENT_AND_MIXED_LOGGING_REPLICAS = 1u << 2,
    ANALYSIS_ST_STATEMENT_AND_ROW_LOGGING_REPLICAS = 1u << 3,
    ANALYSIS_ST_MIXED_AND_ROW_LOGGING_REPLICAS = 1u << 4,
    ANALYSIS_ST_MULTIPLE_MAJOR_VERSIONS_LOGGING_REPLICAS = 1u << 5,
    ANALYSIS_ST_DIFFERENT_GTID_MODES = 1u << 6,
    ANALYSIS_ST_ERRANT_GTID = 1u << 7,
    ANALYSIS_ST_NO_WRITEABLE_MASTER = 1u << 8,
    ANALYSIS_ST_NOT_ENOUGH_VALID_SEMI_SYNC_REPLICAS = 1u << 9,
} analysis_structure;

#define ANALYSIS_ST__COUNT 10

/* "NoLoggingReplicasStructureWarning", ... for one bit; "Unknown" otherwise. Static strings. */
const char *analysis_structure_name(unsigned bit);

/* The role an instance plays in its cluster's tree. */
typedef enum analysis_role {
    ANALYSIS_ROLE_MASTER = 0,          /* depth 0, no master of its own */
    ANALYSIS_ROLE_CO_MASTER,           /* in a replication cycle */
    ANALYSIS_ROLE_INTERMEDIATE_MASTER, /* a replica with replicas (also the top of a cluster
                                          whose own master orch does not know) */
    ANALYSIS_ROLE_REPLICA,             /* a replica without replicas */
} analysis_role;

/* "master", "co-master", "intermediate-master", "replica". */
const char *analysis_role_name(analysis_role role);

/*
 * The direct check of a silent agent: the leader sends ReportNow to the agent
 * of a master (or intermediate master) whose reports went stale, because a
 * silent agent counts as silent only once that has timed out (DESIGN.md,
 * "Decision rules").
 */
typedef enum analysis_direct_state {
    ANALYSIS_DIRECT_NONE = 0,  /* not sent (or its result forgotten) */
    ANALYSIS_DIRECT_PENDING,   /* sent, no answer yet */
    ANALYSIS_DIRECT_TIMED_OUT, /* sent, no answer within its timeout */
    ANALYSIS_DIRECT_ANSWERED,  /* the agent answered; see analysis_direct.answered */
} analysis_direct_state;

/* "none", "pending", "timed-out", "answered". */
const char *analysis_direct_state_name(analysis_direct_state s);

typedef struct analysis_direct {
    analysis_direct_state state;
    /* With ANSWERED: the server state in the agent's answer. An answer that says UP
     * makes the master alive for this run even if the registry has not taken the
     * answer's report yet. */
    Orch__ProbeState answered;
} analysis_direct;

/*
 * Tells the analysis what the caller knows of the direct check of inst, an
 * instance whose agent is stale. Called only for such instances that are
 * being judged (masters and intermediate masters), at most once per instance
 * per run, on the caller's thread; must not touch the registry. inst is
 * borrowed for the call.
 */
typedef analysis_direct (*analysis_direct_fn)(void *arg, const reg_instance *inst);

typedef struct analysis_config {
    int64_t stale_after_ms;        /* an agent silent this long is unknown (coord stale_after_ms) */
    int64_t warmup_ms;             /* after the coordinator's start, judge no master */
    int64_t reasonable_lag_s;      /* above this a replica is lagging */
    unsigned semi_sync_wait_count; /* acknowledgements a semi-sync master waits for (MySQL
                                      rpl_semi_sync_master_wait_for_slave_count; MariaDB: 1) */
    bool errant_gtid;              /* compare GTID sets for errant transactions */
    bool include_no_problem;       /* an entry for every instance, not only the ones with
                                      something to say (the API's hint) */
} analysis_config;

/* Defaults: stale 3000 ms, warm-up 5000 ms, lag 10 s, wait count 1, errant GTID on,
 * problems only. */
void analysis_config_init(analysis_config *cfg);

/* Errant transactions of one replica against its master. */
typedef struct analysis_errant {
    orch_key replica;
    char *gtid; /* canonical set (MySQL "uuid:1-3", MariaDB "0-3-17"); owned */
    bool downtimed;
} analysis_errant;

#define ANALYSIS_GTID_MODE_MAX 24

/*
 * One instance's analysis: orchestrator's ReplicationAnalysis, plus orch's
 * own fields. Counts are over the instance's direct replicas.
 */
typedef struct analysis_entry {
    orch_key key; /* AnalyzedInstanceKey */
    char name[ORCH_KEY_STRLEN];
    bool has_master;
    orch_key
        master_key; /* AnalyzedInstanceMasterKey (as the channel names it); empty host when none */
    size_t cluster; /* index into analysis_result.clusters */
    analysis_role role;
    analysis_code code; /* Analysis */
    /*
     * Actionable by an automated recovery: a dead master or dead intermediate
     * master by the holistic rule, not downtimed, not in maintenance, outside
     * the warm-up. Global switches, cluster filters and anti-flapping are the
     * recovery's to check.
     */
    bool recoverable;
    char *description;      /* Description: what was seen and why, which agents said what.
                               Owned, never NULL ("" for NoProblem) */
    uint32_t structure;     /* StructureAnalysis: analysis_structure bits */
    char *structure_detail; /* what the warnings are about; owned, NULL when structure is 0 */
    bool is_master;         /* IsMaster (orchestrator's: no master of its own) */
    bool is_co_master;      /* IsCoMaster */
    bool last_check_valid;  /* LastCheckValid: the agent is fresh and says UP */
    bool stale;             /* the agent's newest report is older than stale_after_ms */
    Orch__ProbeState state; /* what the agent's newest report says */
    int64_t agent_age_ms;   /* now - the newest report's arrival */
    bool is_downtimed;      /* IsDowntimed */
    int64_t downtime_until_wall_ms;       /* DowntimeEndTimestamp (0 when not downtimed) */
    bool in_maintenance;                  /* an operation holds its maintenance lock */
    bool is_read_only;                    /* IsReadOnly */
    bool is_failing_to_connect_to_master; /* IsFailingToConnectToMaster */
    bool direct_check_wanted; /* its agent is silent: send it ReportNow (listed in direct_wanted) */
    analysis_direct direct;   /* what the caller said of it (NONE when not asked) */
    unsigned replication_depth;
    unsigned count_replicas;                   /* CountReplicas */
    unsigned count_valid_replicas;             /* fresh and UP */
    unsigned count_valid_replicating_replicas; /* ... with IO and SQL threads running */
    unsigned count_replicas_failing_to_connect_to_master;
    unsigned count_downtimed_replicas;
    unsigned count_stale_replicas;
    unsigned count_lagging_replicas; /* lag above reasonable_lag_s */
    unsigned count_delayed_replicas; /* with SQL_Delay */
    unsigned count_logging_replicas; /* log_bin and log_slave_updates */
    unsigned count_semi_sync_replicas_enabled;
    unsigned count_confirming_replicas; /* orch: say they cannot replicate from it */
    unsigned count_vetoing_replicas;    /* orch: still receive its events or its greeting */
    orch_key *replicas;                 /* Replicas; owned */
    size_t nreplicas;
    bool semi_sync_master_enabled, semi_sync_master_status;
    unsigned semi_sync_master_clients, semi_sync_master_wait_count;
    char gtid_mode[ANALYSIS_GTID_MODE_MAX]; /* GTIDMode (MySQL gtid_mode; "" elsewhere) */
    char min_replica_gtid_mode[ANALYSIS_GTID_MODE_MAX],
        max_replica_gtid_mode[ANALYSIS_GTID_MODE_MAX];
    analysis_errant *errant; /* replicas with errant transactions against it; owned */
    size_t nerrant;
    const char *max_replica_gtid_errant; /* MaxReplicaGTIDErrant: the first non-downtimed one's
                                            set (points into errant[]), NULL when none */
} analysis_entry;

typedef struct analysis_cluster {
    char name[ORCH_KEY_STRLEN]; /* ClusterName */
    char *alias;                /* ClusterAlias (the name when there is none); owned */
    orch_key master;
    /*
     * No master of this cluster was judged this run, and note says why (the
     * coordinator's warm-up). Not a finding: it lets the caller say why
     * nothing happened.
     */
    bool warming_up;
    char *note;          /* owned; NULL when there is nothing to say */
    analysis_code code;  /* the cluster master's finding */
    bool recoverable;    /* some entry of the cluster is recoverable */
    size_t first, count; /* its entries: entries[first .. first + count) */
} analysis_cluster;

typedef struct analysis_result {
    int64_t now_ms;
    bool warming_up;            /* the whole coordinator is within its warm-up */
    int64_t warmup_left_ms;     /* 0 outside it */
    analysis_cluster *clusters; /* sorted by name, as the registry's */
    size_t nclusters;
    analysis_entry *entries; /* by cluster, then as the cluster's members (master first) */
    size_t nentries;
    orch_key *direct_wanted; /* agents to send ReportNow to (direct_check_wanted entries) */
    size_t ndirect_wanted;
} analysis_result;

/*
 * Runs the analysis over every cluster of reg. Calls registry_clusters()
 * (which refreshes the topology if it changed) and reads instances, reports
 * and operator state; changes nothing else. now_ms is the coordinator's
 * monotonic clock (that of reg_instance.last_seen_ms), now_wall_ms the wall
 * clock (downtime and maintenance ends). direct may be NULL (every direct
 * check NONE). On success *out is a new result the caller frees with
 * analysis_result_free(). ORCH_ERR_INVAL (bad arguments) or ORCH_ERR_NOMEM
 * with msg saying so; *out is then untouched. Does not block.
 */
orch_err analysis_run(registry *reg, const analysis_config *cfg, analysis_direct_fn direct,
                      void *direct_arg, int64_t now_ms, int64_t now_wall_ms, analysis_result **out,
                      char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Frees a result and everything it owns. Safe on NULL. */
void analysis_result_free(analysis_result *res);

/* The entry of an instance, NULL when it has none (nothing to say). O(entries). */
const analysis_entry *analysis_result_find(const analysis_result *res, const orch_key *key);

/* The errant GTID set found on a replica (borrowed from res), NULL when none. O(entries). */
const char *analysis_result_errant(const analysis_result *res, const orch_key *replica);

/*
 * The StructureAnalysis names of bits, joined by ", " into buf (always
 * NUL-terminated). Returns buf.
 */
char *analysis_structure_format(uint32_t bits, char *buf, size_t buflen);

#endif
