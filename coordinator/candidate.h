/*
 * candidate.h: which replica becomes the new master when a master dies.
 *
 * A pure function over a snapshot. The recovery (DESIGN.md section 4,
 * "Recovery" step 3) freezes the dead master's replicas (IO threads stopped)
 * and reads, from each agent's fresh reply, what this module needs: versions,
 * binary-log settings, GTID sets received and executed, semi-sync, promotion
 * rule (after operator overrides), location, downtime and maintenance. It calls
 * candidate_choose(), logs the ranking to the audit trail, and then carries out
 * the plan: catch-up (step 4), wait and promote (step 5), repoint the others and
 * report the lost ones (step 6). The rules and the safer readings taken where
 * the design is silent are written above each rule in candidate.c.
 *
 * Threads: pure code, no globals, no I/O; any thread. The input is borrowed for
 * the duration of the call only; the result owns everything it points to and
 * is released with candidate_result_fini().
 */
#ifndef ORCH_CANDIDATE_H
#define ORCH_CANDIDATE_H

#include "err.h"
#include "gtid.h"
#include "orch.pb-c.h"
#include "version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CANDIDATE_NONE         SIZE_MAX /* "no replica" in an index field */
#define CANDIDATE_MAX_REPLICAS 4096     /* more than this is a caller bug (ORCH_ERR_TOOBIG) */
#define CANDIDATE_WHY_MAX      320      /* bytes of one ranking or follow text, NUL included */
#define CANDIDATE_REASON_MAX   1024     /* bytes of the refusal text, NUL included */

/* Promotion rule, effective (the operator's override, else the agent's). Lower is better. */
typedef enum candidate_rule {
    CANDIDATE_PREFER = 0,
    CANDIDATE_NEUTRAL,
    CANDIDATE_PREFER_NOT,
    CANDIDATE_MUST_NOT,
} candidate_rule;

/* "prefer", "neutral", "prefer_not", "must_not"; "unknown" otherwise. Static strings. */
const char *candidate_rule_name(candidate_rule rule);

/* An agent's (or operator's) promotion rule as the choice takes it. */
candidate_rule candidate_rule_of(Orch__PromotionRule r);

/*
 * One replica of the dead master, as the freeze read it. Every pointer is
 * borrowed. The GTID sets of a fresh replica must be of its flavor.
 */
typedef struct candidate_input {
    const char *key;      /* "host:port"; required, unique within the input */
    orch_version version; /* flavor and numbers (orch_version_parse); major 0 = unknown */
    bool log_bin;
    bool log_slave_updates;
    /*
     * Everything the replica received: MariaDB Gtid_IO_Pos, MySQL
     * Retrieved_Gtid_Set, united with executed (this module unites them again,
     * so passing the raw received set is fine). NULL: the same as executed.
     */
    const orch_gtid_set *received;
    /* MariaDB gtid_current_pos (or gtid_slave_pos), MySQL gtid_executed. Required when fresh. */
    const orch_gtid_set *executed;
    /*
     * The replica's errant transactions (written on it, never on the master),
     * computed by the caller: the last ErrantGTID finding of the analysis, made
     * while the master was alive and comparable. NULL or empty: none known.
     * This module does not compute them from the dead master's last known
     * position: a replica that received the master's last transactions after
     * that report would look errant, and the most advanced replica, the one
     * that must not be lost, would be excluded.
     */
    const orch_gtid_set *errant;
    candidate_rule rule;
    const char *dc, *region; /* NULL or "": unknown, never "the same" as anything */
    /*
     * Seconds behind the master as read just before the freeze (a server whose
     * IO thread is stopped reports NULL); lag_known false = NULL.
     */
    bool lag_known;
    int64_t lag_s;
    bool downtimed;
    bool maintenance; /* an operation holds its maintenance lock */
    bool fresh;       /* its agent answered the freeze; false: everything else is last known */
    /* Semi-sync replica plugin: enabled (variable) or status ON before the freeze. Either
     * means it may have acknowledged transactions to the master. */
    bool semi_sync_enabled, semi_sync_status;
    uint32_t sql_delay_s; /* MASTER_DELAY / SOURCE_DELAY; 0: none */
} candidate_input;

typedef struct candidate_params {
    const char *master_dc, *master_region; /* the old master's; NULL or "": unknown */
    /*
     * Overrides the refusals that protect data (diverged sets, transactions
     * the new master could not reach, semi-sync acknowledgements it might
     * lack): a candidate is chosen anyway and result.forced_past says what was
     * overridden. It cannot conjure a candidate: no replica, none fresh, mixed
     * flavors, none eligible still refuse.
     */
    bool force;
    /*
     * The replica an operator named ("host:port", as in candidate_input.key;
     * NULL or "": none). It is chosen if eligible, catching up from the most
     * advanced first when behind; the data-protecting refusals still apply
     * (force overrides them). Excluded or unknown, the choice refuses and
     * says why: never another replica in its place.
     */
    const char *designated;
} candidate_params;

/* What becomes of a replica once the new master is promoted. */
typedef enum candidate_follow {
    CANDIDATE_FOLLOW_NONE = 0, /* no decision (refused) */
    CANDIDATE_FOLLOW_PROMOTED, /* it is the new master */
    CANDIDATE_FOLLOW_OK,       /* repoint it at the new master */
    CANDIDATE_FOLLOW_LOST,     /* it cannot follow: report as lost and downtime it */
    CANDIDATE_FOLLOW_UNKNOWN,  /* stale: repoint it when its agent is heard again */
} candidate_follow;

/* "none", "promoted", "follows", "lost", "unknown". Static strings. */
const char *candidate_follow_name(candidate_follow f);

/* One line of the ranking: every input replica appears exactly once. */
typedef struct candidate_entry {
    size_t index;      /* into the input array */
    unsigned position; /* 1-based rank among the eligible; 0 = excluded */
    bool eligible;
    /*
     * Transactions received by some fresh replica (the most advanced) that
     * this one has not received; 0 for the most advanced, 0 when stale.
     */
    uint64_t behind;
    size_t catch_up_from;               /* for an eligible one: its catch-up source, or NONE */
    char why[CANDIDATE_WHY_MAX];        /* "1: prefer, same dc, ...", "excluded: must_not" */
    candidate_follow follow;            /* set when a candidate was chosen */
    char follow_why[CANDIDATE_WHY_MAX]; /* e.g. "lost: has 2 transactions the new master
                                           lacks: 3e11...:5"; "" when it simply follows */
} candidate_entry;

typedef struct candidate_result {
    bool refused;
    char reason[CANDIDATE_REASON_MAX];      /* why refused; "" otherwise */
    char forced_past[CANDIDATE_REASON_MAX]; /* with force: the refusals overridden; "" otherwise */
    size_t chosen;                          /* index of the new master; NONE when refused */
    /*
     * When the chosen one must first catch up: the index of the most advanced
     * replica it replicates from, else NONE. The recovery lets that source
     * apply everything it received (its binary log then holds it; remove its
     * SQL delay if it has one), lets the chosen one apply its own relay log,
     * points the chosen one at the source with GTID auto-positioning and waits
     * until it has executed target.
     */
    size_t catch_up_from;
    /* What the chosen one must have executed before it is promoted (step 5); owned; NULL when
     * refused. */
    orch_gtid_set *target;
    uint64_t unreachable;     /* transactions received by some fresh replica that target lacks */
    candidate_entry *ranking; /* n entries: eligible in rank order, then excluded by key */
    size_t n_ranking;
    size_t *lost; /* input indexes of the replicas that cannot follow, by key */
    size_t n_lost;
} candidate_result;

/*
 * Chooses the new master among in[0..n) for a dead master whose data center
 * and region are in p (p may be NULL: nothing known, no force).
 *
 * Returns ORCH_OK with a decision in *out, refused or not; the ranking is
 * filled either way (for the audit log), the follow plan and lost list only
 * when a replica is chosen. Errors (nothing in *out to use, but fini is safe):
 *   ORCH_ERR_INVAL  in or out NULL with n > 0, a NULL key, a duplicate key, a
 *                   fresh replica without an executed set, or whose sets are
 *                   not of one flavor;
 *   ORCH_ERR_TOOBIG n > CANDIDATE_MAX_REPLICAS;
 *   ORCH_ERR_NOMEM.
 * *out is initialised first; release it with candidate_result_fini() whatever
 * this returns. Deterministic: the same replicas in any order give the same
 * decision and the same ranking (indexes follow the input order).
 */
orch_err candidate_choose(const candidate_input *in, size_t n, const candidate_params *p,
                          candidate_result *out) ORCH_MUST_CHECK;

/* Frees what out owns and empties it. NULL is a no-op. */
void candidate_result_fini(candidate_result *out);

#endif
