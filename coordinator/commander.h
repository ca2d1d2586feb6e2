/*
 * commander.h: the leader's side of agent commands (DESIGN.md sections 3 and 5).
 *
 * The coordinator's loop hands a command for one agent (its identity, its
 * command_listen URL, the leader's epoch, a filled Orch__Command, a timeout and
 * a completion callback) to commander_submit() and goes on; the answer comes
 * back through the callback on the loop thread. What happens in between:
 *
 *   - every command is stamped with the epoch the caller passes (the fencing
 *     token: commander does not decide leadership), a command id unique within
 *     that epoch, target_host, sent_at_ms and this node's name, and sealed in a
 *     COMMAND envelope under key(target) = HMAC(fleet_secret, "orch-agent:" +
 *     target) (insecure mode: the all-zero key, as the agent uses);
 *   - the optional gate callback is asked whether this node still leads at
 *     that epoch before dialing and again once a connection is up, right
 *     before the request is written; when it says no the command is answered
 *     COMMANDER_NOT_LEADER and nothing is sent. A command whose connection
 *     drops while it waits for its reply is answered at once (UNREACHABLE,
 *     sent), never resent on the next connection;
 *   - one nng req socket per target (identity + URL), opened on demand, dialing
 *     with jittered reconnects (tls+tcp:// with the configured CA, certificate
 *     and key, the server name being the target host + tls_server_name_suffix),
 *     kept while in use and closed after idle_close_ms without a command;
 *   - commands to one target run one at a time in submission order (req
 *     semantics); commands to different targets run in parallel (one aio per
 *     target), so a slow or frozen agent delays nobody else;
 *   - each command has one deadline, from submission, covering waiting behind
 *     earlier commands to the same agent, connecting, sending and the reply:
 *     the callback comes within the timeout (plus a few ms) whatever the agent
 *     does;
 *   - a reply counts only if it is an envelope of kind REPLY signed by the
 *     target under key(target) and answers this command id and epoch; anything
 *     else gets a specific status (BAD_SIGNATURE, MALFORMED, MISMATCH), is
 *     counted, and is logged at most once a minute per target.
 *
 * Outcome caveat: TIMEOUT, and UNREACHABLE with `sent` set, mean the outcome is
 * unknown: the agent may have executed the command (a SIGSTOPped agent runs
 * it when it resumes). Commands are idempotent; callers re-read the state.
 *
 * Threads: commander_start and commander_stop run on the loop thread (the one
 * that runs `base`), commander_stop after the loop stopped or from within it
 * but never from inside a done callback. commander_submit, commander_stats_get
 * and the name functions may be called from any thread. commander_call blocks
 * its caller and is for tools, tests and worker threads, never the loop
 * thread. One worker thread owns the sockets; nng's own threads only flag
 * completed aios to it. Done callbacks run on the loop thread, delivered
 * through an eventfd event on `base` (no evthread locking needed).
 */
#ifndef ORCH_COMMANDER_H
#define ORCH_COMMANDER_H

#include "err.h"
#include "orch.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct metrics;

/* What became of a command. Printable with commander_status_name(). */
typedef enum commander_status {
    COMMANDER_REPLIED = 0,   /* an authenticated reply to this command: see result */
    COMMANDER_TIMEOUT,       /* no reply in time on a live connection; or (not sent) the time
                              * ran out while queued behind another command to that agent */
    COMMANDER_UNREACHABLE,   /* no connection within the timeout (not sent), or the
                              * connection was lost before the reply (sent) */
    COMMANDER_NOT_LEADER,    /* the gate refused: nothing was sent */
    COMMANDER_BAD_SIGNATURE, /* the reply does not verify under key(target) */
    COMMANDER_MALFORMED,     /* the reply does not decode (envelope, version, body) */
    COMMANDER_MISMATCH,      /* authentic, but not an answer to this command (kind, host, id) */
    COMMANDER_FAILED,        /* a local failure: socket, TLS files, out of memory */
    COMMANDER_CLOSED,        /* the commander stopped first */
    COMMANDER_STATUS__COUNT
} commander_status;

/* Room for error texts: the agent's (up to ~600 bytes) or ours. */
#define COMMANDER_ERROR_MAX 768

/*
 * The answer to one command. Filled by commander; handed to the done callback
 * (valid during the call) or to commander_call's caller (who calls
 * commander_reply_fini).
 */
typedef struct commander_reply {
    commander_status status;
    bool sent;                  /* the command reached a connection to the agent */
    Orch__CommandResult result; /* the agent's verdict; meaningful when REPLIED */
    Orch__CommandType type;
    uint64_t command_id, epoch; /* as sent (command_id 0: never numbered) */
    bool has_obeyed_epoch;
    uint64_t obeyed_epoch; /* the highest epoch the agent has obeyed */
    /* The instance after the command (absent for PING and for refusals). Owned
     * by the reply: a callback that wants to keep it sets r->state = NULL and
     * frees it later with orch__instance_report__free_unpacked(state, NULL). */
    Orch__InstanceReport *state;
    int64_t queued_us; /* submit to send (time spent behind other commands) */
    int64_t rtt_us;    /* send to reply or failure; 0 when never sent */
    int64_t agent_us;  /* what the agent says it spent; -1 when unknown */
    /* "" when all went well: the agent's error text, or ours saying what failed.
     * Text from a reply that failed verification is quoted as unverified. */
    char error[COMMANDER_ERROR_MAX];
} commander_reply;

/* Frees what the reply owns (its state). Safe on NULL and on a zeroed reply. */
void commander_reply_fini(commander_reply *r);

/*
 * Called on the loop thread with the answer to a submitted command. Must not
 * block and must not call commander_stop; it may submit further commands
 * (during commander_stop those fail with ORCH_ERR_CLOSED).
 */
typedef void (*commander_done_fn)(commander_reply *r, void *arg);

/*
 * Asked on the worker thread right before each command is sent: true when this
 * node still leads at `epoch`. Must be quick and must not block; typically
 * `election_leader_epoch(e, orch_mono_ms()) == epoch`.
 */
typedef bool (*commander_gate_fn)(void *arg, uint64_t epoch);

typedef struct commander_conf {
    const char *node;         /* this coordinator, sent as Command.leader (copied) */
    const void *fleet_secret; /* derives key(H); copied. NULL only when insecure */
    size_t fleet_secret_len;
    bool insecure; /* no secret: the all-zero key (sandbox only) */

    /* TLS for tls+tcp:// URLs (copied). All three or none. */
    const char *tls_ca, *tls_cert, *tls_key;
    const char *tls_server_name_suffix; /* name checked = target host + suffix */
    const char *tls_server_name;        /* tools/tests: one fixed name instead */

    commander_gate_fn gate; /* optional */
    void *gate_arg;

    int64_t default_timeout_ms;             /* when a command gives none; 0: 5000 */
    int64_t idle_close_ms;                  /* close a target's socket after this; 0: 60000 */
    int reconnect_min_ms, reconnect_max_ms; /* dialer back-off; 0: 100 and 1000 */
    size_t max_pending;                     /* commands queued or in flight; 0: 100000 */
    uint64_t first_command_id;              /* 0: derived from the wall clock (see .c) */

    /* Optional: commander registers and updates orch_agent_commands_total and
     * orch_agent_command_seconds here (lock-free updates from its thread). */
    struct metrics *metrics;
} commander_conf;

typedef struct commander commander;

/*
 * Starts the worker thread. base is the loop's event base, or NULL when only
 * commander_call will be used (tools). Checks the TLS files once (a missing or
 * unreadable file fails here, not per command). NULL on failure with msg set.
 * Loop thread.
 */
commander *commander_start(const commander_conf *conf, struct event_base *base, char *msg,
                           size_t msglen);

/*
 * Stops: every command still queued or on the wire is answered with
 * COMMANDER_CLOSED (commands already answered keep their answer), sockets are
 * closed, the thread is joined, and every pending done callback runs here,
 * synchronously, before this returns. Returns within about a second whatever
 * the agents do. Safe on NULL. Loop thread, not from a done callback.
 */
void commander_stop(commander *c);

/*
 * The first half of commander_stop: everything is answered and the thread
 * joined, but the object stays (commander_submit refuses with
 * ORCH_ERR_CLOSED) until commander_stop frees it, so that callbacks run by
 * other parts stopping after it may still try. Safe on NULL and twice.
 */
void commander_halt(commander *c);

/* One command for one agent. */
typedef struct commander_cmd {
    const char *host; /* the agent's identity: key(host) signs; copied */
    const char *url;  /* its command_listen (tcp:// or tls+tcp://); copied */
    uint64_t epoch;   /* the leader's epoch to stamp */
    /* Type and arguments (borrowed, copied during the call). protocol_version,
     * epoch, command_id, target_host, sent_at_ms and leader are set by
     * commander; whatever the caller put there is ignored. */
    const Orch__Command *cmd;
    int64_t timeout_ms;     /* whole round trip, connecting included; <= 0: the default.
                             * WaitForGtid: more than its own timeout_ms */
    commander_done_fn done; /* may be NULL (fire and forget) */
    void *arg;
} commander_cmd;

/*
 * Queues a command. Never blocks on the network. *command_id (may be NULL)
 * receives the id it will carry. Fails with ORCH_ERR_INVAL (missing host, URL
 * or type, a timeout above two hours), ORCH_ERR_TOOBIG (max_pending reached) or
 * ORCH_ERR_CLOSED (stopping); then done is never called. Any thread.
 */
orch_err commander_submit(commander *c, const commander_cmd *req, uint64_t *command_id, char *msg,
                          size_t msglen) ORCH_MUST_CHECK;

/*
 * The synchronous form, for tools, tests and worker threads (never the loop
 * thread): sends req (its done and arg are ignored) and waits for the answer,
 * which fills *out (the caller calls commander_reply_fini). Returns what
 * commander_submit returned; on failure *out holds status COMMANDER_FAILED or
 * COMMANDER_CLOSED and the reason.
 */
orch_err commander_call(commander *c, const commander_cmd *req, commander_reply *out);

/* Round-trip histogram bounds (µs) for replied commands; +Inf is implicit. */
#define COMMANDER_RTT_BUCKETS 14
extern const int64_t commander_rtt_bounds_us[COMMANDER_RTT_BUCKETS];

/* Index of by_result for replies whose result this build does not know. */
#define COMMANDER_RESULT_OTHER 8

/* Counters for the coordinator to publish. */
typedef struct commander_stats {
    uint64_t submitted; /* accepted by commander_submit / commander_call */
    uint64_t refused;   /* refused by commander_submit (invalid, full, stopping) */
    uint64_t by_status[COMMANDER_STATUS__COUNT];
    uint64_t by_result[COMMANDER_RESULT_OTHER + 1]; /* REPLIED, by Orch__CommandResult */
    uint64_t pending;                               /* now: queued or in flight */
    uint64_t in_flight;                             /* now: on the wire */
    uint64_t sockets_open;                          /* now */
    uint64_t sockets_opened;                        /* since start */
    uint64_t sockets_closed_idle, sockets_closed_unreachable;
    uint64_t rtt_buckets[COMMANDER_RTT_BUCKETS + 1]; /* not cumulative; last is +Inf */
    uint64_t rtt_count, rtt_sum_us;
    int64_t rtt_max_us;
} commander_stats;

/* Copies the counters. Any thread. */
void commander_stats_get(commander *c, commander_stats *out);

/* "REPLIED", "TIMEOUT", ...; never NULL. */
const char *commander_status_name(commander_status s);

/* The agent's result without its prefix: "OK", "STALE_EPOCH", ...; never NULL. */
const char *commander_result_name(Orch__CommandResult r);

/* "OK", "TIMEOUT: ...", "FAILED: the agent's error": a reply in a few words. */
void commander_describe_reply(const commander_reply *rep, char *buf, size_t len);

/* "PING", "STOP_REPLICA", ...; never NULL. */
const char *commander_type_name(Orch__CommandType t);

/* Parses a name as printed by commander_type_name (case-insensitive). */
orch_err commander_type_parse(const char *s, Orch__CommandType *out) ORCH_MUST_CHECK;

#endif
