/*
 * registry.h: the coordinator's live picture of every instance and cluster.
 *
 * Built from agents' reports only (every coordinator receives every report,
 * so every coordinator holds the same picture and a new leader has nothing to
 * catch up). Instances are keyed by `host:port`, host being the agent's
 * identity; every name and address an agent reports is an alias of its host,
 * so a replica's Master_Host resolves without DNS. Clusters are trees named
 * after their top master's key (with an optional alias from operator state).
 *
 * Freshness is this coordinator's own view: the monotonic time of the last
 * accepted report. A coordinator that has just started has heard from nobody:
 * an instance it has no report for is unknown, not dead (registry_started_ms
 * lets analysis apply the warm-up rule).
 *
 * Thread: the coordinator's loop thread only. Pointers returned stay valid
 * until the next registry_apply() or registry_refresh(); copy what must live
 * longer.
 */
#ifndef ORCH_REGISTRY_H
#define ORCH_REGISTRY_H

#include "err.h"
#include "key.h"
#include "orch.pb-c.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct registry registry;
typedef struct reg_cluster reg_cluster;

/* Operator state about one instance, from the backend (refreshed every second). */
typedef struct reg_operator {
    int64_t downtime_until_ms; /* wall clock; 0 = not downtimed */
    char *downtime_owner, *downtime_reason;
    int64_t maintenance_until_ms; /* wall clock; 0 = not in maintenance */
    char *maintenance_owner, *maintenance_reason;
    int promotion_override;  /* -1 none, else an Orch__PromotionRule */
    int64_t forgotten_at_ms; /* wall clock; 0 = not forgotten (see registry_set_operator_state) */
} reg_operator;

typedef struct reg_instance {
    orch_key key;
    char name[ORCH_KEY_STRLEN];   /* "host:port" */
    Orch__InstanceReport *report; /* newest accepted; owned; never NULL */
    orch_freshness fresh;
    int64_t first_seen_ms;     /* monotonic, this coordinator */
    int64_t last_seen_ms;      /* monotonic, this coordinator */
    int64_t last_seen_wall_ms; /* wall clock of the same moment, for humans and the store */
    uint64_t shape;            /* orch_report_fingerprint of the report */
    int64_t shape_changed_ms;  /* monotonic time the shape last changed (first report too) */
    bool store_dirty;          /* shape changed since the store last took it */

    /* Topology, valid after registry_refresh(). */
    const Orch__Channel *channel;   /* the replication channel that defines the master
                                       (the unnamed one, else the first); NULL if none */
    orch_key master_key;            /* the master as the channel names it, resolved
                                       through aliases when possible (port 3306 when
                                       the channel has none; empty host when the name
                                       is not a valid host) */
    bool has_master;                /* the channel names a master */
    struct reg_instance *master;    /* the master's instance; NULL if none or unknown.
                                       The top of a co-master cycle keeps its real
                                       master (a cycle member): walk up by depth, not
                                       until master is NULL */
    bool master_unresolved;         /* names a master that no agent reports */
    bool master_ambiguous;          /* the name matches instances on several hosts
                                       (then master is NULL and the instance tops its
                                       own cluster, like an unresolved one) */
    struct reg_instance **replicas; /* instances whose master is this one, by key */
    size_t nreplicas;
    int depth;      /* 0 for a cluster's top master */
    bool co_master; /* in a replication cycle (master-master) */
    reg_cluster *cluster;

    reg_operator op;
} reg_instance;

struct reg_cluster {
    char name[ORCH_KEY_STRLEN]; /* the top master's "host:port" */
    char *alias;                /* operator-set alias, or NULL */
    reg_instance *master;       /* top of the tree */
    reg_instance **members; /* every instance of the tree, master first, then by depth and key */
    size_t nmembers;
};

/* Creates an empty registry; started_ms is the coordinator's start (monotonic).
 * NULL when out of memory. */
registry *registry_new(int64_t started_ms);

/* Frees everything, reports included. Safe on NULL. */
void registry_free(registry *r);

int64_t registry_started_ms(const registry *r);

typedef enum reg_verdict {
    REG_ACCEPTED = 0,
    REG_REPLAY,   /* same boot, sequence not newer */
    REG_OLD_BOOT, /* an older boot of the agent */
    REG_INVALID,  /* missing or impossible fields (no host, port 0, bad boot id) */
} reg_verdict;

const char *reg_verdict_name(reg_verdict v);

/*
 * Applies one decoded report, already authenticated by the caller for host
 * rep->host. Takes ownership of rep in every case (frees it unless accepted).
 * Accepts only fresh reports (orch_freshness_check per instance key, with
 * boot_grace_ms); on acceptance replaces the instance's report, updates
 * freshness and aliases, and marks the topology dirty when the shape changed.
 * *out (may be NULL) gets the instance on acceptance. msg explains REG_INVALID
 * (also returned, with "out of memory" in msg, when a new instance cannot be
 * allocated). O(1) amortized for a known instance: hash lookups, the shape
 * fingerprint and the report swap; the alias map is touched only when the
 * alias list changed. Topology is marked dirty only by what it is built from:
 * a new instance, a change of alias claims, of a channel's name, master host
 * or master port, or of read_only; other shape changes only set store_dirty.
 * Keeps i->channel pointing into the new report (the old one is freed).
 */
reg_verdict registry_apply(registry *r, Orch__InstanceReport *rep, int64_t now_ms,
                           int64_t now_wall_ms, int64_t boot_grace_ms, reg_instance **out,
                           char *msg, size_t msglen);

/*
 * Recomputes masters, replicas, depths, co-masters and clusters if anything
 * changed since the last call (cheap when nothing did). Call before reading
 * topology fields. Rules:
 *   - a replica's master is its defining channel's master_host:port, resolved
 *     first as an exact instance key, then (a loopback name: localhost,
 *     127.x, ::1) on the replica's own host, then through the aliases of every
 *     host; a name claimed by several hosts that each have an instance on that
 *     port is ambiguous (master_ambiguous, no master, tops its own cluster);
 *   - a cycle of masters (co-masters) is one cluster; its top is the member
 *     that is writable if exactly one is, else the smallest key;
 *   - an instance whose master is unresolved tops its own cluster, flagged;
 *   - cluster names are the top master's key; members are ordered master
 *     first, then by depth, then by key.
 */
void registry_refresh(registry *r);

/* Exact lookup by key; NULL if unknown. */
reg_instance *registry_get(registry *r, const orch_key *key);

/*
 * Lookup by a host name or address and port: an exact key first, then the
 * aliases. NULL when unknown or ambiguous.
 */
reg_instance *registry_find(registry *r, const char *host, uint16_t port);

/* All instances, sorted by key (sorted lazily, after new instances arrived).
 * The array is owned by the registry. Topology fields are as of the last
 * registry_refresh(). */
reg_instance *const *registry_instances(registry *r, size_t *n);

/* All clusters, sorted by name. Calls registry_refresh() first. Owned by the registry. */
reg_cluster *const *registry_clusters(registry *r, size_t *n);

/*
 * A cluster by hint, as orchestrator accepts them: the cluster name, its alias,
 * or the "host:port" (or "host", port 3306) of any member, resolved through
 * aliases. NULL when nothing matches. Calls registry_refresh() first.
 */
reg_cluster *registry_cluster_by_hint(registry *r, const char *hint);

/* True when the instance's newest report was accepted more than stale_after_ms
 * before now_ms (both this coordinator's monotonic clock). */
bool reg_instance_is_stale(const reg_instance *i, int64_t now_ms, int64_t stale_after_ms);

/* The effective promotion rule: the operator's override, else the agent's. */
Orch__PromotionRule reg_instance_promotion_rule(const reg_instance *i);

/*
 * Operator state, replacing the previous snapshot wholesale (keys not listed
 * are cleared). Aliases are by cluster name. Arrays and strings are borrowed
 * (copied in). Rows for keys no agent reports yet are kept and apply when the
 * instance appears. An instance forgotten (forgotten_at_ms) after its last
 * report leaves the registry; a report accepted after that brings it back.
 * Its memory is released at the next registry_refresh(), so pointers stay
 * valid until then. On ORCH_ERR_NOMEM the previous state stays.
 */
typedef struct reg_operator_row {
    orch_key key;
    reg_operator op;
} reg_operator_row;

typedef struct reg_alias_row {
    const char *cluster;
    const char *alias;
} reg_alias_row;

orch_err registry_set_operator_state(registry *r, const reg_operator_row *rows, size_t nrows,
                                     const reg_alias_row *aliases, size_t naliases) ORCH_MUST_CHECK;

/* The channel that names an instance's master: the unnamed one, else the
 * first; NULL without channels (or report). */
const Orch__Channel *registry_defining_channel(const Orch__InstanceReport *rep);

/* Number of instances. */
size_t registry_count(const registry *r);

/* Instances with store_dirty set (in the order they became dirty); clears the
 * flags. The array is caller-owned (free), the instances are borrowed. NULL with
 * *n = 0 when none (or when out of memory: the flags then stay set). */
reg_instance **registry_take_dirty(registry *r, size_t *n);

/* Puts i on the store's list (registry_take_dirty) unless it is already there:
 * a new leader writes every instance once; a write that could not be queued
 * is retried. */
void registry_mark_dirty(registry *r, reg_instance *i);

#endif
