/*
 * election.h: the leader lease in the backend, and the thread that keeps it.
 *
 * One row (`leader`, id 1: node, token, epoch, renewed_at) decides which
 * coordinator leads. Every election_interval_ms each coordinator runs one short
 * transaction that reads the row FOR UPDATE with the backend's clock and takes,
 * renews or merely observes it (election_decide). The epoch grows by one with
 * every change of leader and is the fencing token carried by every command.
 *
 * Safety rests on one rule: the leader notes its own monotonic time t0 just
 * before the transaction that renews; once that transaction commits it leads
 * until t0 + lease_ms - lease_margin_ms, and not a moment longer unless it
 * renews again. Another node takes over only once the row is older than
 * lease_ms by the backend's clock, which in real time is later than t0 +
 * lease_ms: the old leader has stepped down by its own clock margin_ms before
 * anyone else can take over, whether it is frozen, partitioned from the backend
 * or merely slow. election_is_leader() applies the rule and is what every
 * leader action must check, just before acting.
 *
 * Every node also upserts its row in `node` (api_url, started_at, last_seen by
 * the backend clock, version) each interval; the status lists the nodes seen
 * within three intervals, so followers can find the leader's API.
 *
 * Threads: election_start/election_stop belong to the thread that owns the
 * coordinator (its loop thread, before the loop runs / after it stops).
 * election_is_leader and election_status_get may be called from any thread;
 * they never block on the backend. The election thread owns its own connection.
 * The process calls mysql_library_init() before election_start (initialising
 * the client library is not thread-safe).
 */
#ifndef ORCH_ELECTION_H
#define ORCH_ELECTION_H

#include "db.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELECTION_NODE_MAX  256 /* node names: at most 255 bytes */
#define ELECTION_TOKEN_LEN 32  /* hex characters of a token */
#define ELECTION_URL_MAX   512

/* ---- the decision (pure) ------------------------------------------------------- */

/* The leader row as one round read it, plus what this node remembers of it. */
typedef struct election_row {
    bool present;      /* false: the table has no row yet */
    const char *node;  /* borrowed */
    const char *token; /* borrowed */
    uint64_t epoch;
    int64_t age_us; /* backend NOW(6) - renewed_at; negative if the backend clock went back */
    /* How long this node has seen exactly this row (node, token, epoch,
     * renewed_at) unchanged, by its own monotonic clock; -1 when it has just
     * seen it for the first time. */
    int64_t unchanged_ms;
} election_row;

/* Who this node is, and the lease. */
typedef struct election_self {
    const char *node;
    const char *token;
    int64_t lease_ms;
    uint64_t max_epoch_seen; /* highest epoch this process ever read (0: none) */
} election_self;

typedef enum election_action {
    ELECTION_INSERT,   /* no row: create it, this node leading */
    ELECTION_RENEW,    /* our own live row: bump renewed_at, same epoch */
    ELECTION_TAKEOVER, /* a lapsed row: write this node and token, epoch + 1 */
    ELECTION_FOLLOW,   /* a live row that is not ours: change nothing */
} election_action;

typedef struct election_decision {
    election_action action;
    uint64_t epoch;  /* the epoch to write (INSERT, RENEW, TAKEOVER) or the leader's (FOLLOW) */
    const char *why; /* static text for logs */
} election_decision;

const char *election_action_name(election_action a);

/*
 * Decides what one round does with the row it read (pure; any thread).
 *
 *   - no row: INSERT at epoch max(1, max_epoch_seen + 1);
 *   - our node AND our token, age <= lease: RENEW at the same epoch;
 *   - any row older than lease_ms by the backend's clock (age_us > lease_ms *
 *     1000; exactly lease is still live) is lapsed: TAKEOVER at epoch + 1, our
 *     own included (we had stepped down by then, so leading again is a new term);
 *   - a row this node has watched unchanged for lease_ms by its own clock is
 *     lapsed too, whatever its age says: a backend clock stepped backwards
 *     would otherwise keep a dead leader's row live for as long as the step.
 *     Safe: the renewal that wrote the row committed before we first read it,
 *     so its leader's validity ended before lease_ms after that read;
 *   - otherwise FOLLOW. A row with our node name but another token belongs to
 *     an earlier process with our name (a restart, or a misconfigured twin):
 *     it is foreign until it lapses.
 */
election_decision election_decide(const election_row *row, const election_self *self);

/* t0 + lease_ms - margin_ms: the end of a leadership renewed by a transaction that
 * started at monotonic t0. Pure. */
int64_t election_valid_until(int64_t t0_ms, int64_t lease_ms, int64_t margin_ms);

/* ---- the thread -------------------------------------------------------------- */

typedef struct election_conf {
    orch_db_conf db;     /* borrowed strings, copied by election_start */
    const char *node;    /* this coordinator's name (<= 255 bytes) */
    const char *api_url; /* what followers forward to; may be NULL */
    int64_t interval_ms; /* election_interval_ms */
    int64_t lease_ms;
    int64_t margin_ms; /* lease_margin_ms */
} election_conf;

typedef struct election election;

/* A coordinator seen in the `node` table within three intervals. */
typedef struct election_node_info {
    char node[ELECTION_NODE_MAX];
    char api_url[ELECTION_URL_MAX];
    char version[64];
    int64_t started_wall_ms;  /* by the backend's clock */
    int64_t last_seen_age_ms; /* by the backend's clock, at our last round */
} election_node_info;

typedef struct election_status {
    bool leader;            /* election_is_leader() at the time of the call */
    int64_t valid_until_ms; /* monotonic end of our leadership; 0 when not leader */
    uint64_t epoch;         /* the current leader's epoch as last read (ours if leader) */
    char leader_node[ELECTION_NODE_MAX];     /* "" when unknown */
    char leader_api_url[ELECTION_URL_MAX];   /* "" when unknown or not seen lately */
    char node[ELECTION_NODE_MAX];            /* this node */
    char token[ELECTION_TOKEN_LEN + 1];      /* this process's token */
    bool backend_ok;                         /* the last round reached the backend */
    char last_error[256];                    /* the last backend error, "" if none yet */
    int64_t last_rtt_us;                     /* the last round's lease transaction */
    int64_t last_ok_ms;                      /* monotonic time of the last good round; 0 never */
    uint64_t rounds, rounds_failed, changes; /* changes: leadership transitions of this node */
    election_node_info *nodes;               /* malloc'd; election_status_fini frees it */
    size_t nnodes;
} election_status;

/* Called from the election thread after every change of this node's leadership
 * (elected, lost), the last time from within election_stop (a leader stopping
 * stops leading). Must not block and must not call election_stop; the
 * coordinator calls event_active() on a loop event here. Leadership may also
 * end silently when valid_until passes while the thread is blocked on a dead
 * backend: the loop re-checks election_is_leader() before acting, and may arm a
 * timer at election_status.valid_until_ms. */
typedef void (*election_notify_fn)(void *arg);

/*
 * Starts the election thread (it runs its first round at once). The token is
 * random for each call. Returns NULL with msg set on bad configuration (lease
 * not above interval + margin, node name too long) or when the thread cannot be
 * created; an unreachable backend is not an error (the thread keeps trying).
 * notify may be NULL.
 */
election *election_start(const election_conf *conf, election_notify_fn notify, void *arg, char *msg,
                         size_t msglen);

/*
 * Stops and joins the thread; safe on NULL and when already stopped. A leader
 * first stops leading, then releases the lease (renewed_at set far in the
 * past, only if node and token still match) so that a successor takes over at
 * its next round. Returns within about 2 s even when the backend does not
 * answer. The object stays readable (election_is_leader answers false) until
 * election_free, so that other threads still asking can be stopped after it.
 */
void election_stop(election *e);

/* Stops (as election_stop) if needed, then frees everything; safe on NULL. */
void election_free(election *e);

/* True while this node leads at monotonic time now_ms (orch_mono_ms()). Any
 * thread; lock-free. */
bool election_is_leader(election *e, int64_t now_ms);

/* This node's leader epoch, or 0 when it does not lead at now_ms. Any thread. */
uint64_t election_leader_epoch(election *e, int64_t now_ms);

/* Copies the current state into *out (which the caller frees with
 * election_status_fini). Any thread; never blocks on the backend. */
void election_status_get(election *e, election_status *out);

void election_status_fini(election_status *st);

#endif
