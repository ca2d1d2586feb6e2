/*
 * commander.c: signed, epoch-fenced commands from the leader to agents (see
 * commander.h for the contract).
 *
 * Shape. One worker thread owns every target (one per agent identity + URL):
 * its req socket, its one nng aio, and its FIFO of commands. nng runs the aio
 * callbacks on its own threads; they only put the target on a "ready" list
 * and wake the worker, which does all the work: opening sockets, sealing,
 * checking replies, closing idle sockets. A target has at most one command on
 * the wire (req semantics: commands to one agent are serialized in submission
 * order), while every target has its own aio, so commands to different agents
 * travel in parallel and a frozen agent delays only the commands queued
 * behind it. Answers go to the loop through a list and an eventfd.
 *
 * Phases of a target: IDLE -> CONNECTING -> SENDING -> RECEIVING -> IDLE.
 * A command leaves the queue only when its target is idle; it then waits in
 * CONNECTING until the socket has a live connection (a pipe-added event wakes
 * the worker), and only then is the gate asked and the request handed to nng,
 * which writes it at once. So a node that lost leadership while a connection
 * was being set up never sends. For the same reason a command whose
 * connection drops while it waits for its reply is cancelled right away:
 * nng's req would otherwise resend it on the next connection, maybe long
 * after this node stopped leading. It is answered UNREACHABLE with `sent`.
 *
 * Deadlines. A command's timeout runs from its submission and covers every
 * phase: a command still queued or still connecting at its deadline is
 * answered without being sent (TIMEOUT when it waited behind another command,
 * UNREACHABLE when there was no connection), even while the command ahead of
 * it is still on the wire, so the loop hears about every command within its
 * timeout plus a few ms. The worker finds these by a scan over the targets at
 * the earliest such deadline; sending and receiving carry nng aio timeouts.
 * A receive that times out on a live connection is TIMEOUT (the agent may
 * still execute the command). After UNREACHABLE the socket is closed, so the
 * next command dials at once instead of waiting out the dialer's back-off.
 *
 * Command ids. Agents drop a repeated (epoch, command id) as a replay, and a
 * leader restarted quickly may lead again at the same epoch, so ids must not
 * restart at 1. Unless configured, the first id is the wall clock in
 * microseconds-ish (ms * 1000): a restarted commander starts above every id
 * its previous run used unless that run sent more than a million commands a
 * second. A wall clock stepped backwards across a restart can at worst make an
 * agent answer REPLAY (nothing runs twice).
 */
#include "commander.h"

#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "wakeup.h"
#include "metrics.h"
#include "transport.h"
#include "wire.h"

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS  5000
#define MAX_TIMEOUT_MS      (2 * 3600 * 1000)
#define DEFAULT_IDLE_MS     60000
#define DEFAULT_RECONN_MIN  100
#define DEFAULT_RECONN_MAX  1000
#define DEFAULT_MAX_PENDING 100000
#define SWEEP_MS            1000
#define LOG_INTERVAL_MS     60000
#define HOST_MAX            1024

const int64_t commander_rtt_bounds_us[COMMANDER_RTT_BUCKETS] = {
    250,   500,    1000,   2000,   5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
};

/* ---- names ------------------------------------------------------------------------- */

const char *commander_status_name(commander_status s)
{
    switch (s) {
    case COMMANDER_REPLIED:
        return "REPLIED";
    case COMMANDER_TIMEOUT:
        return "TIMEOUT";
    case COMMANDER_UNREACHABLE:
        return "UNREACHABLE";
    case COMMANDER_NOT_LEADER:
        return "NOT_LEADER";
    case COMMANDER_BAD_SIGNATURE:
        return "BAD_SIGNATURE";
    case COMMANDER_MALFORMED:
        return "MALFORMED";
    case COMMANDER_MISMATCH:
        return "MISMATCH";
    case COMMANDER_FAILED:
        return "FAILED";
    case COMMANDER_CLOSED:
        return "CLOSED";
    case COMMANDER_STATUS__COUNT:
        break;
    }
    return "UNKNOWN";
}

/* An enum value's name from its descriptor, without `prefix`. */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (ev == NULL)
        return "UNKNOWN";
    size_t n = strlen(prefix);
    return strncmp(ev->name, prefix, n) == 0 ? ev->name + n : ev->name;
}

const char *commander_result_name(Orch__CommandResult r)
{
    return enum_name(&orch__command_result__descriptor, (int)r, "RESULT_");
}

const char *commander_type_name(Orch__CommandType t)
{
    return enum_name(&orch__command_type__descriptor, (int)t, "CMD_");
}

orch_err commander_type_parse(const char *s, Orch__CommandType *out)
{
    const ProtobufCEnumDescriptor *d = &orch__command_type__descriptor;
    if (s == NULL)
        return ORCH_ERR_INVAL;
    if (strncasecmp(s, "CMD_", 4) == 0)
        s += 4;
    for (unsigned i = 0; i < d->n_values; i++) {
        if (strcasecmp(d->values[i].name + 4, s) == 0) {
            *out = (Orch__CommandType)d->values[i].value;
            return ORCH_OK;
        }
    }
    return ORCH_ERR_PARSE;
}

void commander_reply_fini(commander_reply *r)
{
    if (r == NULL)
        return;
    if (r->state != NULL)
        orch__instance_report__free_unpacked(r->state, NULL);
    r->state = NULL;
}

/* vsnprintf into r->error (never a truncation warning, always terminated). */
static void set_error(commander_reply *r, const char *fmt, ...) ORCH_PRINTF(2, 3);
static void set_error(commander_reply *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

/* ---- structures ---------------------------------------------------------------------- */

typedef struct cmd_item {
    struct cmd_item *next;
    char *host, *url, *mapkey; /* mapkey = url "\n" host */
    Orch__Command *cmd;        /* owned copy (unpacked), header fields set */
    int64_t timeout_ms;
    int64_t submit_us, send_us, deadline_us;
    bool on_wire;
    commander_done_fn done;
    void *arg;
    bool sync, sync_done; /* commander_call */
    commander_reply r;
} cmd_item;

typedef enum target_phase {
    PHASE_IDLE = 0,
    PHASE_CONNECTING, /* cur waits for a live connection */
    PHASE_SENDING,    /* cur handed to nng */
    PHASE_RECEIVING,  /* cur sent; waiting for the reply */
} target_phase;

typedef struct target {
    struct commander *c;
    char *host, *url, *mapkey;
    orch_hmac_key key;
    nng_socket sock;
    nng_dialer dialer;
    bool open;
    nng_aio *aio;
    atomic_uint live_pipe; /* id of the connected pipe; 0: not connected */

    /* Worker thread only. */
    cmd_item *head, *tail; /* waiting */
    cmd_item *cur;         /* connecting or on the wire */
    target_phase phase;
    bool lost; /* cur's connection dropped: its aio was cancelled */
    int64_t last_used_ms;
    orch_ratelimit log_rl;

    /* Guarded by c->mu: how nng's threads hand the target to the worker. */
    struct target *ready_next;
    bool in_ready;    /* on c->ready_head (until the worker has handled it) */
    bool watch_pipes; /* a command is connecting or on the wire */
    bool aio_done;    /* the aio completed */
    bool pipe_up;     /* a connection came up while watched */
    bool pipe_down;   /* the live connection went away while watched */
} target;

struct commander {
    /* Configuration (owned copies). */
    char *node;
    uint8_t *secret;
    size_t secret_len;
    bool insecure;
    char *tls_ca, *tls_cert, *tls_key, *tls_suffix, *tls_name;
    commander_gate_fn gate;
    void *gate_arg;
    int64_t default_timeout_ms, idle_close_ms;
    int reconn_min, reconn_max;
    size_t max_pending;
    metrics *m;

    /* The loop side. */
    struct event_base *base;
    orch_wakeup wake; /* the worker hands answers to the loop */

    pthread_t thread;
    bool thread_started;
    bool halted; /* commander_halt ran: only the memory is left */

    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the worker waits here */
    pthread_cond_t sync_cv; /* commander_call waiters wait here */
    bool stopping;
    uint64_t next_id;
    size_t sync_waiters;
    cmd_item *in_head, *in_tail;     /* submitted, not yet taken by the worker */
    target *ready_head;              /* targets with news from nng, for the worker */
    cmd_item *done_head, *done_tail; /* answered, for the loop */
    commander_stats st;

    /* Worker thread only. */
    orch_hmap targets;
    int64_t next_sweep_ms;
    int64_t next_expiry_us; /* earliest deadline of a queued or connecting command */
};

/* ---- items ----------------------------------------------------------------------------- */

static void item_free(cmd_item *it)
{
    if (it == NULL)
        return;
    free(it->host);
    free(it->url);
    free(it->mapkey);
    if (it->cmd != NULL)
        orch__command__free_unpacked(it->cmd, NULL);
    commander_reply_fini(&it->r);
    free(it);
}

/*
 * Validates req and builds an item with a deep copy of the command, its header
 * fields set (command_id and sent_at_ms come later). Any thread.
 */
static cmd_item *item_new(commander *c, const commander_cmd *req, char *msg, size_t msglen,
                          orch_err *err)
{
    *err = ORCH_ERR_INVAL;
    if (req == NULL || req->cmd == NULL ||
        req->cmd->base.descriptor != &orch__command__descriptor) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "no command (or not an Orch__Command)");
        return NULL;
    }
    if (req->host == NULL || req->host[0] == '\0' || strlen(req->host) > HOST_MAX) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "a command needs the target's host identity");
        return NULL;
    }
    if (req->url == NULL || req->url[0] == '\0') {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "no command URL for %s", req->host);
        return NULL;
    }
    if (protobuf_c_enum_descriptor_get_value(&orch__command_type__descriptor,
                                             (int)req->cmd->type) == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "unknown command type %d", (int)req->cmd->type);
        return NULL;
    }
    if (req->timeout_ms > MAX_TIMEOUT_MS) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "timeout %lld ms is above %d ms",
                  (long long)req->timeout_ms, MAX_TIMEOUT_MS);
        return NULL;
    }
    *err = ORCH_ERR_NOMEM;
    cmd_item *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    it->host = strdup(req->host);
    it->url = strdup(req->url);
    size_t klen = strlen(req->url) + 1 + strlen(req->host) + 1;
    it->mapkey = malloc(klen);
    if (it->host == NULL || it->url == NULL || it->mapkey == NULL)
        goto nomem;
    snprintf(it->mapkey, klen, "%s\n%s", req->url, req->host);

    /* The copy: the caller's fields plus our header, packed and unpacked. */
    Orch__Command tmp = *req->cmd;
    tmp.protocol_version = ORCH_PROTOCOL_VERSION;
    tmp.epoch = req->epoch;
    tmp.command_id = 0;
    tmp.target_host = it->host;
    tmp.sent_at_ms = 0;
    tmp.leader = c->node;
    uint8_t *buf = NULL;
    size_t len = 0;
    orch_err e = orch_wire_pack(&tmp.base, &buf, &len);
    if (e != ORCH_OK) {
        item_free(it);
        *err = e;
        orch_fail(msg, msglen, e, "cannot encode the command: %s", orch_strerror(e));
        return NULL;
    }
    it->cmd = orch__command__unpack(NULL, len, buf);
    free(buf);
    if (it->cmd == NULL)
        goto nomem;

    it->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : c->default_timeout_ms;
    it->done = req->done;
    it->arg = req->arg;
    it->r.type = req->cmd->type;
    it->r.epoch = req->epoch;
    it->r.agent_us = -1;
    *err = ORCH_OK;
    return it;
nomem:
    item_free(it);
    orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    return NULL;
}

/* ---- answering ------------------------------------------------------------------------ */

/* Counts and records the outcome; worker thread (or stop), mu NOT held. */
static void record(commander *c, cmd_item *it)
{
    commander_reply *r = &it->r;
    if (c->m != NULL) {
        const char *rn = r->status == COMMANDER_REPLIED ? commander_result_name(r->result) : "";
        metric_inc(metrics_counter(c->m, "orch_agent_commands_total",
                                   "Commands to agents by type, outcome and the agent's result.",
                                   "type", commander_type_name(r->type), "status",
                                   commander_status_name(r->status), "result", rn, NULL));
        if (r->status == COMMANDER_REPLIED)
            metric_observe(metrics_histogram(c->m, "orch_agent_command_seconds",
                                             "Round trip of answered agent commands.",
                                             metrics_buckets_latency_s, metrics_buckets_latency_s_n,
                                             "type", commander_type_name(r->type), NULL),
                           (double)r->rtt_us / 1e6);
    }
    pthread_mutex_lock(&c->mu);
    commander_stats *st = &c->st;
    if (r->status < COMMANDER_STATUS__COUNT)
        st->by_status[r->status]++;
    if (r->status == COMMANDER_REPLIED) {
        unsigned ri = (unsigned)r->result;
        st->by_result[ri < COMMANDER_RESULT_OTHER ? ri : COMMANDER_RESULT_OTHER]++;
        size_t b = 0;
        while (b < COMMANDER_RTT_BUCKETS && r->rtt_us > commander_rtt_bounds_us[b])
            b++;
        st->rtt_buckets[b]++;
        st->rtt_count++;
        st->rtt_sum_us += (uint64_t)(r->rtt_us > 0 ? r->rtt_us : 0);
        if (r->rtt_us > st->rtt_max_us)
            st->rtt_max_us = r->rtt_us;
    }
    if (it->on_wire && st->in_flight > 0)
        st->in_flight--;
    if (st->pending > 0)
        st->pending--;
    pthread_mutex_unlock(&c->mu);
}

/* Logs an outcome worth a line; abnormal ones at most once a minute per target. */
static void log_outcome(commander *c, target *t, const cmd_item *it)
{
    const commander_reply *r = &it->r;
    const char *tn = commander_type_name(r->type);
    uint64_t suppressed = 0;
    char more[64] = "";

    if (r->status == COMMANDER_REPLIED) {
        if (r->result == ORCH__COMMAND_RESULT__RESULT_OK) {
            orch_debug(it->host, "%s id=%llu epoch=%llu to %s: OK in %.1f ms", tn,
                       (unsigned long long)r->command_id, (unsigned long long)r->epoch, it->url,
                       (double)r->rtt_us / 1000.0);
            return;
        }
        bool stale = r->result == ORCH__COMMAND_RESULT__RESULT_STALE_EPOCH;
        orch_log(stale ? ORCH_LOG_NOTICE : ORCH_LOG_INFO,
                 stale ? "ORCH-CMD-STALE-EPOCH" : "ORCH-CMD-RESULT", it->host,
                 "%s id=%llu epoch=%llu to %s: %s: %s", tn, (unsigned long long)r->command_id,
                 (unsigned long long)r->epoch, it->url, commander_result_name(r->result), r->error);
        return;
    }
    if (r->status == COMMANDER_CLOSED)
        return;
    if (t != NULL &&
        !orch_ratelimit_allow(&t->log_rl, orch_mono_ms(), LOG_INTERVAL_MS, &suppressed))
        return;
    if (suppressed > 0)
        snprintf(more, sizeof(more), " (%llu similar lines suppressed)",
                 (unsigned long long)suppressed);
    const char *tag = "ORCH-CMD-FAILED";
    switch (r->status) {
    case COMMANDER_TIMEOUT:
        tag = "ORCH-CMD-TIMEOUT";
        break;
    case COMMANDER_UNREACHABLE:
        tag = "ORCH-CMD-UNREACHABLE";
        break;
    case COMMANDER_NOT_LEADER:
        tag = "ORCH-CMD-NOT-LEADER";
        break;
    case COMMANDER_BAD_SIGNATURE:
    case COMMANDER_MALFORMED:
    case COMMANDER_MISMATCH:
        tag = "ORCH-CMD-BAD-REPLY";
        break;
    default:
        break;
    }
    orch_log(ORCH_LOG_WARN, tag, it->host, "%s id=%llu epoch=%llu to %s: %s: %s%s", tn,
             (unsigned long long)r->command_id, (unsigned long long)r->epoch, it->url,
             commander_status_name(r->status), r->error, more);
}

/*
 * Settles a command: counts it, logs it, and hands it to whoever waits (the
 * loop, or a commander_call caller). The item is no longer ours afterwards.
 * Worker thread, or commander_stop after the worker is gone.
 */
static void finish(commander *c, target *t, cmd_item *it)
{
    int64_t now = orch_mono_us();
    if (it->send_us > 0)
        it->r.rtt_us = now - it->send_us;
    else
        it->r.queued_us = now - it->submit_us;
    record(c, it);
    log_outcome(c, t, it);

    pthread_mutex_lock(&c->mu);
    if (it->sync) {
        it->sync_done = true;
        pthread_cond_broadcast(&c->sync_cv);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (it->done == NULL || c->base == NULL) {
        pthread_mutex_unlock(&c->mu);
        item_free(it);
        return;
    }
    if (c->done_tail != NULL)
        c->done_tail->next = it;
    else
        c->done_head = it;
    c->done_tail = it;
    it->next = NULL;
    pthread_mutex_unlock(&c->mu);
    orch_wakeup_notify(&c->wake);
}

static void finish_status(commander *c, target *t, cmd_item *it, commander_status s,
                          const char *fmt, ...) ORCH_PRINTF(5, 6);
static void finish_status(commander *c, target *t, cmd_item *it, commander_status s,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->r.error, sizeof(it->r.error), fmt, ap);
    va_end(ap);
    it->r.status = s;
    finish(c, t, it);
}

/* Loop thread: runs the done callbacks of answered commands. */
static void deliver_done(commander *c)
{
    pthread_mutex_lock(&c->mu);
    cmd_item *it = c->done_head;
    c->done_head = c->done_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (it != NULL) {
        cmd_item *next = it->next;
        it->done(&it->r, it->arg);
        item_free(it);
        it = next;
    }
}

static void on_wake(void *arg)
{
    deliver_done(arg);
}

/* ---- targets ---------------------------------------------------------------------------- */

/* Puts t on the worker's list (mu held). */
static void push_ready(commander *c, target *t)
{
    if (!t->in_ready) {
        t->in_ready = true;
        t->ready_next = c->ready_head;
        c->ready_head = t;
        pthread_cond_signal(&c->cv);
    }
}

/* nng thread: the aio of t completed; hand t to the worker. */
static void on_aio(void *arg)
{
    target *t = arg;
    commander *c = t->c;
    pthread_mutex_lock(&c->mu);
    t->aio_done = true;
    push_ready(c, t);
    pthread_mutex_unlock(&c->mu);
}

/*
 * nng thread: connections coming and going. Tells the worker only while a
 * command is connecting or on the wire (see the phases in the file comment).
 * nng_close() waits for these callbacks, so t outlives them.
 */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    target *t = arg;
    commander *c = t->c;
    unsigned id = (unsigned)nng_pipe_id(p);
    bool up = ev == NNG_PIPE_EV_ADD_POST, down = false;
    if (up) {
        atomic_store(&t->live_pipe, id);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        unsigned expect = id;
        down = atomic_compare_exchange_strong(&t->live_pipe, &expect, 0u);
    }
    if (!up && !down)
        return;
    pthread_mutex_lock(&c->mu);
    if (t->watch_pipes) {
        if (up)
            t->pipe_up = true;
        else
            t->pipe_down = true;
        push_ready(c, t);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Worker: whether nng's threads should report t's connections. */
static void set_watch(commander *c, target *t, bool on)
{
    pthread_mutex_lock(&c->mu);
    t->watch_pipes = on;
    if (!on)
        t->pipe_up = t->pipe_down = false;
    pthread_mutex_unlock(&c->mu);
}

static target *target_new(commander *c, const cmd_item *it, char *msg, size_t msglen)
{
    target *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->c = c;
    t->host = strdup(it->host);
    t->url = strdup(it->url);
    t->mapkey = strdup(it->mapkey);
    atomic_init(&t->live_pipe, 0u);
    if (t->host == NULL || t->url == NULL || t->mapkey == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (c->insecure) {
        memset(&t->key, 0, sizeof(t->key));
    } else if (orch_wire_derive_key(c->secret, c->secret_len, t->host, &t->key) != ORCH_OK) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "cannot derive the key of host '%s'", t->host);
        goto fail;
    }
    int rv = nng_aio_alloc(&t->aio, on_aio, t);
    if (rv != 0) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "nng aio: %s", nng_strerror(rv));
        goto fail;
    }
    t->last_used_ms = orch_mono_ms();
    return t;
fail:
    free(t->host);
    free(t->url);
    free(t->mapkey);
    free(t);
    return NULL;
}

/* Closes t's socket (dialer first: see the TLS close hazard in DESIGN.md). Worker. */
static void target_close(commander *c, target *t, bool unreachable)
{
    if (!t->open)
        return;
    nng_dialer_close(t->dialer);
    nng_close(t->sock);
    t->open = false;
    atomic_store(&t->live_pipe, 0u);
    pthread_mutex_lock(&c->mu);
    if (c->st.sockets_open > 0)
        c->st.sockets_open--;
    if (unreachable)
        c->st.sockets_closed_unreachable++;
    else
        c->st.sockets_closed_idle++;
    pthread_mutex_unlock(&c->mu);
}

/* Frees an idle target (no aio in flight). Worker, or the worker's exit. */
static void target_free(commander *c, target *t)
{
    if (t == NULL)
        return;
    nng_aio_stop(t->aio);
    target_close(c, t, false);
    nng_aio_free(t->aio);
    free(t->host);
    free(t->url);
    free(t->mapkey);
    free(t);
}

/* Opens t's req socket and starts its dialer (non-blocking). Worker. */
static orch_err target_open(commander *c, target *t, char *msg, size_t msglen)
{
    nng_tls_config *tls = NULL;
    int rv;
    orch_err err;

    if ((rv = nng_req0_open(&t->sock)) != 0)
        return orch_fail(msg, msglen, ORCH_ERR_IO, "req socket: %s", nng_strerror(rv));
    /* No resend by nng: a command is sent once per connection (commands are
     * idempotent, and the agent answers REPLAY to a duplicate anyway). */
    if ((rv = nng_socket_set_ms(t->sock, NNG_OPT_REQ_RESENDTIME, 0)) != 0 ||
        (rv = nng_socket_set_size(t->sock, NNG_OPT_RECVMAXSZ, ORCH_WIRE_MAX)) != 0 ||
        (rv = nng_pipe_notify(t->sock, NNG_PIPE_EV_ADD_POST, on_pipe, t)) != 0 ||
        (rv = nng_pipe_notify(t->sock, NNG_PIPE_EV_REM_POST, on_pipe, t)) != 0) {
        err = orch_fail(msg, msglen, ORCH_ERR_IO, "req socket options: %s", nng_strerror(rv));
        goto fail;
    }
    if (orch_url_is_tls(t->url)) {
        char name[HOST_MAX + 256];
        if (c->tls_name != NULL)
            snprintf(name, sizeof(name), "%s", c->tls_name);
        else
            snprintf(name, sizeof(name), "%s%s", t->host, c->tls_suffix ? c->tls_suffix : "");
        orch_tls_files files = {
            .ca = c->tls_ca, .cert = c->tls_cert, .key = c->tls_key, .server_name = name};
        if (c->tls_ca == NULL) {
            err = orch_fail(msg, msglen, ORCH_ERR_CONFIG,
                            "%s needs TLS, and no tls_ca/tls_cert/tls_key are configured", t->url);
            goto fail;
        }
        if ((err = orch_tls_config_new(false, &files, &tls, msg, msglen)) != ORCH_OK)
            goto fail;
    }
    /* Reset before dialing: the connection may be reported before orch_dial returns. */
    atomic_store(&t->live_pipe, 0u);
    err = orch_dial(t->sock, t->url, tls, c->reconn_min, c->reconn_max, &t->dialer, msg, msglen);
    if (tls != NULL)
        nng_tls_config_free(tls); /* the dialer keeps its own reference */
    if (err != ORCH_OK)
        goto fail;
    t->open = true;
    pthread_mutex_lock(&c->mu);
    c->st.sockets_open++;
    c->st.sockets_opened++;
    pthread_mutex_unlock(&c->mu);
    orch_debug(t->host, "command socket to %s opened", t->url);
    return ORCH_OK;
fail:
    nng_close(t->sock);
    return err;
}

/* ---- one command on the wire ------------------------------------------------------------ */

/* Builds the sealed request for it (stamping sent_at_ms now). Worker. */
static orch_err build_request(commander *c, target *t, cmd_item *it, nng_msg **out, char *msg,
                              size_t msglen)
{
    uint8_t *body = NULL, *env = NULL;
    size_t body_len = 0, env_len = 0;
    nng_msg *m = NULL;
    orch_err err;

    it->cmd->sent_at_ms = orch_wall_ms();
    if ((err = orch_wire_pack(&it->cmd->base, &body, &body_len)) != ORCH_OK ||
        (err = orch_wire_seal(ORCH__ENVELOPE__KIND__COMMAND, t->host, &t->key, body, body_len, &env,
                              &env_len)) != ORCH_OK) {
        free(body);
        return orch_fail(msg, msglen, err, "cannot seal the command: %s", orch_strerror(err));
    }
    free(body);
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, env, env_len) != 0) {
        if (m != NULL)
            nng_msg_free(m);
        free(env);
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    }
    free(env);
    *out = m;
    return ORCH_OK;
}

/* Milliseconds left before it's deadline (at least 1 while any is left). */
static int64_t remaining_ms(const cmd_item *it, int64_t now_us)
{
    int64_t left = it->deadline_us - now_us;
    if (left <= 0)
        return 0;
    return left / 1000 > 0 ? left / 1000 : 1;
}

static void note_deadline(commander *c, const cmd_item *it)
{
    if (it->deadline_us < c->next_expiry_us)
        c->next_expiry_us = it->deadline_us;
}

/* t's command is settled (or never started): back to idle. Worker. */
static void target_idle(commander *c, target *t)
{
    t->cur = NULL;
    t->phase = PHASE_IDLE;
    t->lost = false;
    set_watch(c, t, false);
    t->last_used_ms = orch_mono_ms();
}

/*
 * t is CONNECTING with a live connection: asks the gate and hands the request
 * to nng. Returns false when the command was settled instead (t is idle
 * again). Worker.
 */
static bool target_send(commander *c, target *t)
{
    cmd_item *it = t->cur;
    char msg[400];
    nng_msg *m = NULL;

    /* The gate, right before sending: a node that lost leadership never sends. */
    if (c->gate != NULL && !c->gate(c->gate_arg, it->cmd->epoch)) {
        target_idle(c, t);
        finish_status(c, t, it, COMMANDER_NOT_LEADER,
                      "not sent: this node no longer leads at epoch %llu",
                      (unsigned long long)it->cmd->epoch);
        return false;
    }
    if (build_request(c, t, it, &m, msg, sizeof(msg)) != ORCH_OK) {
        target_idle(c, t);
        finish_status(c, t, it, COMMANDER_FAILED, "%s", msg);
        return false;
    }
    it->send_us = orch_mono_us();
    it->r.queued_us = it->send_us - it->submit_us;
    it->on_wire = true;
    pthread_mutex_lock(&c->mu);
    c->st.in_flight++;
    pthread_mutex_unlock(&c->mu);
    t->phase = PHASE_SENDING;
    nng_aio_set_msg(t->aio, m);
    nng_aio_set_timeout(t->aio, (nng_duration)remaining_ms(it, it->send_us));
    nng_send_aio(t->sock, t->aio);
    return true;
}

/* Starts the next command queued on t, if t is idle. Worker. */
static void target_run(commander *c, target *t)
{
    char msg[400];
    cmd_item *it;

    while (t->phase == PHASE_IDLE && (it = t->head) != NULL) {
        t->head = it->next;
        if (t->head == NULL)
            t->tail = NULL;
        it->next = NULL;
        if (orch_mono_us() >= it->deadline_us) {
            finish_status(c, t, it, COMMANDER_TIMEOUT,
                          "not sent: its %lld ms ran out while queued behind earlier commands to "
                          "this agent",
                          (long long)it->timeout_ms);
            continue;
        }
        /* Asked here too, so that a deposed node does not even dial. */
        if (c->gate != NULL && !c->gate(c->gate_arg, it->cmd->epoch)) {
            finish_status(c, t, it, COMMANDER_NOT_LEADER,
                          "not sent: this node no longer leads at epoch %llu",
                          (unsigned long long)it->cmd->epoch);
            continue;
        }
        if (!t->open && target_open(c, t, msg, sizeof(msg)) != ORCH_OK) {
            finish_status(c, t, it, COMMANDER_FAILED, "%s", msg);
            continue;
        }
        t->cur = it;
        t->phase = PHASE_CONNECTING;
        t->lost = false;
        set_watch(c, t, true); /* before the check: a connection arriving now is seen */
        if (atomic_load(&t->live_pipe) == 0) {
            note_deadline(c, it); /* the expiry scan ends the wait */
            return;
        }
        if (target_send(c, t))
            return;
    }
}

/* A decoded reply's text, for errors about replies we cannot trust. */
static void unverified_hint(const Orch__Envelope *env, char *buf, size_t len)
{
    buf[0] = '\0';
    Orch__CommandReply *r = orch__command_reply__unpack(NULL, env->body.len, env->body.data);
    if (r == NULL)
        return;
    snprintf(buf, len, " (unverified reply says: %s: %.300s)", commander_result_name(r->result),
             r->error ? r->error : "");
    orch__command_reply__free_unpacked(r, NULL);
}

/*
 * Checks a reply and fills it->r. The order matters only for the message:
 * every failure is a rejection. Worker.
 */
static void check_reply(commander *c, target *t, cmd_item *it, const uint8_t *buf, size_t len)
{
    commander_reply *r = &it->r;
    char msg[300], hint[400];
    Orch__Envelope *env = NULL;
    Orch__CommandReply *rep = NULL;

    if (orch_wire_open(buf, len, &env, msg, sizeof(msg)) != ORCH_OK) {
        r->status = COMMANDER_MALFORMED;
        set_error(r, "malformed reply from %s: %s", t->url, msg);
        return;
    }
    if (env->kind != ORCH__ENVELOPE__KIND__REPLY) {
        r->status = COMMANDER_MISMATCH;
        set_error(r, "%s answered with an envelope of kind %d, not a reply", t->url,
                  (int)env->kind);
        goto out;
    }
    if (strcmp(env->host, t->host) != 0) {
        unverified_hint(env, hint, sizeof(hint));
        r->status = COMMANDER_MISMATCH;
        set_error(r, "%s answers as host '%.300s', not '%.300s': the URL is another agent's%s",
                  t->url, env->host, t->host, hint);
        goto out;
    }
    if (orch_wire_verify(env, &t->key) != ORCH_OK) {
        unverified_hint(env, hint, sizeof(hint));
        r->status = COMMANDER_BAD_SIGNATURE;
        set_error(r,
                  "the reply from %s does not verify under key(%.300s): the agent's host key "
                  "and our fleet secret disagree%s",
                  t->url, t->host, hint);
        goto out;
    }
    rep = orch__command_reply__unpack(NULL, env->body.len, env->body.data);
    if (rep == NULL || rep->protocol_version != ORCH_PROTOCOL_VERSION) {
        r->status = COMMANDER_MALFORMED;
        if (rep == NULL)
            set_error(r, "undecodable reply body from %s (%zu bytes)", t->url, env->body.len);
        else
            set_error(r, "reply of protocol version %u from %s, expected %d", rep->protocol_version,
                      t->url, ORCH_PROTOCOL_VERSION);
        goto out;
    }
    if (rep->command_id != it->cmd->command_id || rep->epoch != it->cmd->epoch) {
        r->status = COMMANDER_MISMATCH;
        set_error(r, "%s answered command %llu of epoch %llu, not %llu of epoch %llu (%s: %.300s)",
                  t->url, (unsigned long long)rep->command_id, (unsigned long long)rep->epoch,
                  (unsigned long long)it->cmd->command_id, (unsigned long long)it->cmd->epoch,
                  commander_result_name(rep->result), rep->error ? rep->error : "");
        goto out;
    }
    if (rep->state != NULL && rep->state->host != NULL && strcmp(rep->state->host, t->host) != 0) {
        r->status = COMMANDER_MISMATCH;
        set_error(r, "the state in the reply from %s is about host '%.300s', not '%.300s'", t->url,
                  rep->state->host, t->host);
        goto out;
    }
    r->status = COMMANDER_REPLIED;
    r->result = rep->result;
    r->has_obeyed_epoch = rep->has_obeyed_epoch;
    r->obeyed_epoch = rep->obeyed_epoch;
    r->agent_us = rep->has_duration_us ? (int64_t)rep->duration_us : -1;
    set_error(r, "%s", rep->error ? rep->error : "");
    r->state = rep->state; /* detached: protobuf-c allocates sub-messages separately */
    rep->state = NULL;
out:
    if (rep != NULL)
        orch__command_reply__free_unpacked(rep, NULL);
    orch__envelope__free_unpacked(env, NULL);
}

/* t's aio completed: next phase, or settle the command and start the next. Worker. */
static void target_aio_done(commander *c, target *t)
{
    cmd_item *it = t->cur;
    int rv = nng_aio_result(t->aio);
    int64_t now = orch_mono_us();
    bool connected = atomic_load(&t->live_pipe) != 0;

    if (it == NULL || (t->phase != PHASE_SENDING && t->phase != PHASE_RECEIVING))
        return; /* cannot happen: the aio runs only in these phases */
    if (t->phase == PHASE_SENDING && rv == 0) {
        it->r.sent = true;
        t->phase = PHASE_RECEIVING;
        nng_aio_set_timeout(t->aio, (nng_duration)remaining_ms(it, now));
        nng_recv_aio(t->sock, t->aio);
        if (t->lost) /* the connection dropped meanwhile: nng would resend it later */
            nng_aio_cancel(t->aio);
        return;
    }
    bool sending = t->phase == PHASE_SENDING, lost = t->lost;
    if (sending) {
        nng_msg *m = nng_aio_get_msg(t->aio);
        if (m != NULL) {
            nng_aio_set_msg(t->aio, NULL);
            nng_msg_free(m);
        }
    }
    target_idle(c, t);
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(t->aio);
        nng_aio_set_msg(t->aio, NULL);
        check_reply(c, t, it, nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
        finish(c, t, it);
    } else if (rv == NNG_ECLOSED || (rv == NNG_ECANCELED && !lost)) {
        finish_status(c, t, it, COMMANDER_CLOSED, "stopped %s",
                      sending ? "before sending" : "while waiting for the reply");
    } else if (rv == NNG_ETIMEDOUT && !sending && connected && !lost) {
        finish_status(c, t, it, COMMANDER_TIMEOUT,
                      "no reply from %s within %lld ms (connected; the agent may still "
                      "execute it)",
                      t->url, (long long)it->timeout_ms);
    } else {
        /* The connection went away (reset, closed, or gone at the deadline):
         * nng 1.5.2 fails the request with ECONNRESET, or we cancelled it. */
        if (!connected)
            target_close(c, t, true); /* the next command dials at once */
        finish_status(c, t, it, COMMANDER_UNREACHABLE, "the connection to %s was lost %s (%s)%s",
                      t->url, sending ? "before sending" : "after sending",
                      lost ? "closed by the peer" : nng_strerror(rv),
                      sending ? "" : "; no reply: the agent may or may not have executed it");
    }
    target_run(c, t);
}

/* A connection of t came up or went away while a command was watching. Worker. */
static void target_pipe_event(commander *c, target *t, bool up, bool down)
{
    if (t->phase == PHASE_CONNECTING && atomic_load(&t->live_pipe) != 0) {
        if (!target_send(c, t))
            target_run(c, t);
        return;
    }
    if (down && !t->lost && (t->phase == PHASE_SENDING || t->phase == PHASE_RECEIVING)) {
        /* Cancel now: nng's req would resend on the next connection. */
        t->lost = true;
        if (t->phase == PHASE_RECEIVING)
            nng_aio_cancel(t->aio);
        /* SENDING: target_aio_done cancels when the send completes. */
    }
}

/* A submitted command joins its target's queue. Worker. */
static void enqueue(commander *c, cmd_item *it)
{
    char msg[300];
    target *t = orch_hmap_get(&c->targets, it->mapkey);
    if (t == NULL) {
        t = target_new(c, it, msg, sizeof(msg));
        if (t == NULL) {
            finish_status(c, NULL, it, COMMANDER_FAILED, "%s", msg);
            return;
        }
        if (orch_hmap_put(&c->targets, t->mapkey, t, NULL) != ORCH_OK) {
            target_free(c, t);
            finish_status(c, NULL, it, COMMANDER_FAILED, "out of memory");
            return;
        }
    }
    if (t->tail != NULL)
        t->tail->next = it;
    else
        t->head = it;
    t->tail = it;
    note_deadline(c, it);
    target_run(c, t);
}

/*
 * Answers the commands that reached their deadline while queued or
 * connecting, and finds the next such deadline. O(targets); it runs only at
 * those deadlines. Worker.
 */
static void expire(commander *c, int64_t now_us)
{
    size_t iter = 0;
    void *v;
    int64_t next = INT64_MAX;
    while (orch_hmap_next(&c->targets, &iter, NULL, &v)) {
        target *t = v;
        cmd_item **pp = &t->head, *prev = NULL;
        while (*pp != NULL) {
            cmd_item *it = *pp;
            if (it->deadline_us > now_us) {
                if (it->deadline_us < next)
                    next = it->deadline_us;
                prev = it;
                pp = &it->next;
                continue;
            }
            *pp = it->next;
            if (t->tail == it)
                t->tail = prev;
            it->next = NULL;
            finish_status(c, t, it, COMMANDER_TIMEOUT,
                          "not sent: its %lld ms ran out while queued behind earlier commands to "
                          "this agent",
                          (long long)it->timeout_ms);
        }
        if (t->phase == PHASE_CONNECTING && t->cur->deadline_us <= now_us) {
            cmd_item *it = t->cur;
            target_idle(c, t);
            target_close(c, t, true);
            finish_status(c, t, it, COMMANDER_UNREACHABLE,
                          "no connection to %s within %lld ms; nothing was sent", t->url,
                          (long long)it->timeout_ms);
            target_run(c, t);
        }
        if (t->phase == PHASE_CONNECTING && t->cur->deadline_us < next)
            next = t->cur->deadline_us;
        for (cmd_item *it = t->head; it != NULL; it = it->next) {
            if (it->deadline_us < next)
                next = it->deadline_us;
        }
    }
    c->next_expiry_us = next;
}

/* Closes and forgets targets idle for idle_close_ms. Worker. */
static void sweep(commander *c, int64_t now_ms)
{
    size_t iter = 0;
    void *v;
    while (orch_hmap_next(&c->targets, &iter, NULL, &v)) {
        target *t = v;
        if (t->phase != PHASE_IDLE || t->head != NULL ||
            now_ms - t->last_used_ms < c->idle_close_ms)
            continue;
        /* News pushed while its last command was in flight: handled first. */
        pthread_mutex_lock(&c->mu);
        bool pushed = t->in_ready;
        pthread_mutex_unlock(&c->mu);
        if (pushed)
            continue;
        if (t->open)
            orch_debug(t->host, "command socket to %s closed after %lld ms idle", t->url,
                       (long long)(now_ms - t->last_used_ms));
        orch_hmap_del(&c->targets, t->mapkey);
        target_free(c, t);
    }
}

/* The worker's exit: every command left is answered CLOSED; everything freed. */
static void shutdown_all(commander *c)
{
    size_t iter = 0;
    void *v;
    /* No more aio callbacks, then no more pipe callbacks (nng_close waits). */
    while (orch_hmap_next(&c->targets, &iter, NULL, &v))
        nng_aio_stop(((target *)v)->aio);
    iter = 0;
    while (orch_hmap_next(&c->targets, &iter, NULL, &v))
        target_close(c, v, false);
    pthread_mutex_lock(&c->mu);
    c->ready_head = NULL;
    cmd_item *in = c->in_head;
    c->in_head = c->in_tail = NULL;
    pthread_mutex_unlock(&c->mu);

    iter = 0;
    while (orch_hmap_next(&c->targets, &iter, NULL, &v)) {
        target *t = v;
        if (t->cur != NULL) {
            nng_msg *m = nng_aio_get_msg(t->aio);
            if (m != NULL) {
                nng_aio_set_msg(t->aio, NULL);
                nng_msg_free(m);
            }
            cmd_item *it = t->cur;
            target_idle(c, t);
            finish_status(c, t, it, COMMANDER_CLOSED,
                          it->r.sent ? "the commander stopped while waiting for the reply"
                                     : "the commander stopped before sending");
        }
        while (t->head != NULL) {
            cmd_item *it = t->head;
            t->head = it->next;
            it->next = NULL;
            finish_status(c, t, it, COMMANDER_CLOSED, "the commander stopped before sending");
        }
        t->tail = NULL;
        target_free(c, t);
    }
    orch_hmap_fini(&c->targets);
    while (in != NULL) {
        cmd_item *next = in->next;
        in->next = NULL;
        finish_status(c, NULL, in, COMMANDER_CLOSED, "the commander stopped before sending");
        in = next;
    }
}

/* Handles every target nng's threads flagged. Worker, mu NOT held. */
static void handle_ready(commander *c, target *t)
{
    while (t != NULL) {
        pthread_mutex_lock(&c->mu);
        target *next = t->ready_next; /* before in_ready drops: a push reuses it */
        t->ready_next = NULL;
        t->in_ready = false;
        bool aio = t->aio_done, up = t->pipe_up, down = t->pipe_down;
        t->aio_done = t->pipe_up = t->pipe_down = false;
        pthread_mutex_unlock(&c->mu);
        /* Connection news first: they belong to the command now in flight,
         * which the completion below may replace with the next one. */
        if (up || down)
            target_pipe_event(c, t, up, down);
        if (aio)
            target_aio_done(c, t);
        t = next;
    }
}

static void *worker_main(void *arg)
{
    commander *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        cmd_item *in = c->in_head;
        target *ready = c->ready_head;
        c->in_head = c->in_tail = NULL;
        c->ready_head = NULL;
        pthread_mutex_unlock(&c->mu);

        /* Completions first: they free their targets for queued commands. */
        handle_ready(c, ready);
        while (in != NULL) {
            cmd_item *next = in->next;
            in->next = NULL;
            enqueue(c, in);
            in = next;
        }
        int64_t now_us = orch_mono_us();
        if (now_us >= c->next_expiry_us)
            expire(c, now_us);
        if (now_us / 1000 >= c->next_sweep_ms) {
            sweep(c, now_us / 1000);
            c->next_sweep_ms = now_us / 1000 + SWEEP_MS;
        }

        pthread_mutex_lock(&c->mu);
        if (c->stopping || c->in_head != NULL || c->ready_head != NULL)
            continue;
        int64_t wake_us = c->next_sweep_ms * 1000;
        if (c->next_expiry_us < wake_us)
            wake_us = c->next_expiry_us;
        int64_t wait_us = wake_us - orch_mono_us();
        if (wait_us <= 0)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_us / 1000000);
        ts.tv_nsec += (long)(wait_us % 1000000) * 1000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    shutdown_all(c);
    return NULL;
}

/* ---- the API --------------------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

commander *commander_start(const commander_conf *conf, struct event_base *base, char *msg,
                           size_t msglen)
{
    bool nomem = false;
    if (conf == NULL ||
        ((conf->fleet_secret == NULL || conf->fleet_secret_len == 0) && !conf->insecure)) {
        orch_fail(msg, msglen, ORCH_ERR_CONFIG, "commands need a fleet secret (or insecure mode)");
        return NULL;
    }
    int ntls = (conf->tls_ca != NULL) + (conf->tls_cert != NULL) + (conf->tls_key != NULL);
    if (ntls != 0 && ntls != 3) {
        orch_fail(msg, msglen, ORCH_ERR_CONFIG, "TLS needs tls_ca, tls_cert and tls_key together");
        return NULL;
    }
    commander *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    orch_wakeup_clear(&c->wake);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&c->sync_cv, NULL);
    orch_hmap_init(&c->targets);

    c->node = strdup(conf->node != NULL && conf->node[0] ? conf->node : "orch-coordinator");
    nomem = c->node == NULL;
    c->insecure = conf->insecure && (conf->fleet_secret == NULL || conf->fleet_secret_len == 0);
    if (!c->insecure) {
        c->secret = malloc(conf->fleet_secret_len);
        if (c->secret != NULL)
            memcpy(c->secret, conf->fleet_secret, conf->fleet_secret_len);
        else
            nomem = true;
        c->secret_len = conf->fleet_secret_len;
    }
    c->tls_ca = dup_or_null(conf->tls_ca, &nomem);
    c->tls_cert = dup_or_null(conf->tls_cert, &nomem);
    c->tls_key = dup_or_null(conf->tls_key, &nomem);
    c->tls_suffix = dup_or_null(conf->tls_server_name_suffix, &nomem);
    c->tls_name = dup_or_null(conf->tls_server_name, &nomem);
    if (nomem) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->gate = conf->gate;
    c->gate_arg = conf->gate_arg;
    c->default_timeout_ms =
        conf->default_timeout_ms > 0 ? conf->default_timeout_ms : DEFAULT_TIMEOUT_MS;
    if (c->default_timeout_ms > MAX_TIMEOUT_MS)
        c->default_timeout_ms = MAX_TIMEOUT_MS;
    c->idle_close_ms = conf->idle_close_ms > 0 ? conf->idle_close_ms : DEFAULT_IDLE_MS;
    c->reconn_min = conf->reconnect_min_ms > 0 ? conf->reconnect_min_ms : DEFAULT_RECONN_MIN;
    c->reconn_max = conf->reconnect_max_ms > 0 ? conf->reconnect_max_ms : DEFAULT_RECONN_MAX;
    if (c->reconn_max < c->reconn_min)
        c->reconn_max = c->reconn_min;
    c->max_pending = conf->max_pending > 0 ? conf->max_pending : DEFAULT_MAX_PENDING;
    c->next_id =
        conf->first_command_id > 0 ? conf->first_command_id : (uint64_t)orch_wall_ms() * 1000u;
    c->m = conf->metrics;
    c->next_sweep_ms = orch_mono_ms() + SWEEP_MS;
    c->next_expiry_us = INT64_MAX;

    /* The TLS files are checked once here, so a bad path fails the start. */
    if (c->tls_ca != NULL) {
        orch_tls_files files = {
            .ca = c->tls_ca, .cert = c->tls_cert, .key = c->tls_key, .server_name = "orch-check"};
        nng_tls_config *probe = NULL;
        if (orch_tls_config_new(false, &files, &probe, msg, msglen) != ORCH_OK)
            goto fail;
        nng_tls_config_free(probe);
    }

    if (base != NULL) {
        c->base = base;
        if (orch_wakeup_init(&c->wake, base, on_wake, c, "commander", msg, msglen) != ORCH_OK)
            goto fail;
    }
    if (pthread_create(&c->thread, NULL, worker_main, c) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "commander: cannot create its thread");
        goto fail;
    }
    c->thread_started = true;
    orch_info(c->node, "commander: %s, default timeout %lld ms, idle sockets closed after %lld ms",
              c->insecure ? "INSECURE (all-zero keys)" : "commands signed with per-host keys",
              (long long)c->default_timeout_ms, (long long)c->idle_close_ms);
    return c;
fail:
    commander_stop(c);
    return NULL;
}

void commander_halt(commander *c)
{
    if (c == NULL || c->halted)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    else
        shutdown_all(c); /* nothing can be queued, but keep one path */
    c->thread_started = false;
    if (c->base != NULL)
        deliver_done(c);

    /* commander_call callers still waiting have been answered; let them leave. */
    pthread_mutex_lock(&c->mu);
    while (c->sync_waiters > 0)
        pthread_cond_wait(&c->sync_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    c->halted = true;
}

void commander_stop(commander *c)
{
    if (c == NULL)
        return;
    commander_halt(c);

    orch_wakeup_fini(&c->wake);
    orch_hmap_fini(&c->targets);
    if (c->secret != NULL) {
        memset(c->secret, 0, c->secret_len);
        free(c->secret);
    }
    free(c->node);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_suffix);
    free(c->tls_name);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->sync_cv);
    free(c);
}

/* Queues it (mu held by the caller): numbers it and wakes the worker. */
static orch_err queue_locked(commander *c, cmd_item *it, char *msg, size_t msglen)
{
    if (c->stopping) {
        c->st.refused++;
        return orch_fail(msg, msglen, ORCH_ERR_CLOSED, "the commander is stopping");
    }
    if (c->st.pending >= c->max_pending) {
        c->st.refused++;
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "%zu commands already pending",
                         c->max_pending);
    }
    it->cmd->command_id = c->next_id++;
    it->r.command_id = it->cmd->command_id;
    it->submit_us = orch_mono_us();
    it->deadline_us = it->submit_us + it->timeout_ms * 1000;
    if (c->in_tail != NULL)
        c->in_tail->next = it;
    else
        c->in_head = it;
    c->in_tail = it;
    c->st.submitted++;
    c->st.pending++;
    pthread_cond_signal(&c->cv);
    return ORCH_OK;
}

orch_err commander_submit(commander *c, const commander_cmd *req, uint64_t *command_id, char *msg,
                          size_t msglen)
{
    orch_err err;
    if (c == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no commander");
    if (req != NULL && req->done != NULL && c->base == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "done callbacks need an event base (use commander_call)");
    cmd_item *it = item_new(c, req, msg, msglen, &err);
    if (it == NULL) {
        pthread_mutex_lock(&c->mu);
        c->st.refused++;
        pthread_mutex_unlock(&c->mu);
        return err;
    }
    pthread_mutex_lock(&c->mu);
    err = queue_locked(c, it, msg, msglen);
    uint64_t id = it->cmd->command_id;
    pthread_mutex_unlock(&c->mu);
    if (err != ORCH_OK) {
        item_free(it);
        return err;
    }
    if (command_id != NULL)
        *command_id = id;
    return ORCH_OK;
}

orch_err commander_call(commander *c, const commander_cmd *req, commander_reply *out)
{
    orch_err err;
    memset(out, 0, sizeof(*out));
    out->agent_us = -1;
    if (c == NULL) {
        out->status = COMMANDER_FAILED;
        return orch_fail(out->error, sizeof(out->error), ORCH_ERR_INVAL, "no commander");
    }
    cmd_item *it = item_new(c, req, out->error, sizeof(out->error), &err);
    if (it == NULL) {
        out->status = COMMANDER_FAILED;
        pthread_mutex_lock(&c->mu);
        c->st.refused++;
        pthread_mutex_unlock(&c->mu);
        return err;
    }
    it->sync = true;
    it->done = NULL;
    it->arg = NULL;
    pthread_mutex_lock(&c->mu);
    err = queue_locked(c, it, out->error, sizeof(out->error));
    if (err != ORCH_OK) {
        pthread_mutex_unlock(&c->mu);
        out->status = err == ORCH_ERR_CLOSED ? COMMANDER_CLOSED : COMMANDER_FAILED;
        item_free(it);
        return err;
    }
    c->sync_waiters++;
    while (!it->sync_done)
        pthread_cond_wait(&c->sync_cv, &c->mu);
    c->sync_waiters--;
    if (c->stopping)
        pthread_cond_broadcast(&c->sync_cv); /* commander_stop may wait for us */
    pthread_mutex_unlock(&c->mu);
    *out = it->r;
    it->r.state = NULL; /* moved to *out */
    item_free(it);
    return ORCH_OK;
}

void commander_stats_get(commander *c, commander_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

void commander_describe_reply(const commander_reply *rep, char *buf, size_t len)
{
    if (rep->status != COMMANDER_REPLIED)
        snprintf(buf, len, "%s%s%.500s", commander_status_name(rep->status),
                 rep->error[0] ? ": " : "", rep->error);
    else
        snprintf(buf, len, "%s%s%.500s", commander_result_name(rep->result),
                 rep->error[0] ? ": " : "", rep->error);
}
