/*
 * operations.c: the leader's topology operations (see operations.h).
 *
 * An operation is a short program of steps chosen by its kind when it is
 * accepted; every step sends its commands (in parallel where the order does
 * not matter), counts the replies, and moves on when the last one is in.
 * Before every step the operation checks that this node still leads by its
 * own clock. A failing step ends the operation, after undoing what can be
 * undone (a takeover that did not promote makes the old master writable
 * again; a take-master that froze the master restarts its replication).
 * Whatever happened, the maintenance locks taken at the start are released.
 */
#include "operations.h"

#include "candidate.h"
#include "clock.h"
#include "gtid.h"
#include "hooks.h"
#include "log.h"
#include "sbuf.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define OP_MAX_INSTS       64
#define MAINTENANCE_MS     (10 * 60 * 1000) /* a lock outlives a crashed operation this long */
#define VERIFY_INTERVAL_MS 100
#define VERIFY_TRIES       30
#define GTID_TEXT_MAX      8192

/* ---- can-replicate-from ----------------------------------------------------------- */

static int family(orch_flavor f)
{
    switch (f) {
    case ORCH_FLAVOR_MYSQL:
    case ORCH_FLAVOR_PERCONA:
        return 1;
    case ORCH_FLAVOR_MARIADB:
        return 2;
    default:
        return 0;
    }
}

static bool refuse(char *why, size_t whylen, const operations_node *r, const operations_node *t,
                   const char *fmt, ...) ORCH_PRINTF(5, 6);

static bool refuse(char *why, size_t whylen, const operations_node *r, const operations_node *t,
                   const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "%s cannot replicate from %s: %s", r->name ? r->name : "?",
                 t->name ? t->name : "?", text);
    return false;
}

/*
 * The order of the checks is the order an operator would fix things in: what
 * cannot be right at all (itself, a cycle), what is unknown (stale, down), then
 * what the target lacks to serve anyone, then what makes these two
 * incompatible.
 */
bool operations_can_replicate_from(const operations_node *replica, const operations_node *target,
                                   const char *const *target_ancestors, size_t n, char *why,
                                   size_t whylen)
{
    const operations_node *r = replica, *t = target;
    if (r->name != NULL && t->name != NULL && strcasecmp(r->name, t->name) == 0)
        return refuse(why, whylen, r, t, "it is the instance itself");
    if (!r->fresh)
        return refuse(why, whylen, r, t, "the replica's agent is stale (state unknown)");
    if (!r->up)
        return refuse(why, whylen, r, t, "the replica's server is not answering");
    if (!t->fresh)
        return refuse(why, whylen, r, t, "its agent is stale (state unknown)");
    if (!t->up)
        return refuse(why, whylen, r, t, "its server is not answering");
    for (size_t i = 0; i < n && r->name != NULL; i++) {
        if (target_ancestors[i] != NULL && strcasecmp(target_ancestors[i], r->name) == 0)
            return refuse(why, whylen, r, t,
                          "it replicates (through %zu level(s)) from %s itself: a cycle", i + 1,
                          r->name);
    }
    if (!t->log_bin)
        return refuse(why, whylen, r, t, "it has no binary log");
    if (t->has_master && !t->log_slave_updates)
        return refuse(why, whylen, r, t,
                      "it does not log what it replicates (log_slave_updates is off)");
    int fr = family(r->version.flavor), ft = family(t->version.flavor);
    if (fr == 0 || ft == 0 || r->version.major == 0 || t->version.major == 0)
        return refuse(why, whylen, r, t, "a version is unknown");
    if (fr != ft)
        return refuse(why, whylen, r, t, "different flavors (%s, %s)",
                      orch_flavor_name(r->version.flavor), orch_flavor_name(t->version.flavor));
    if (orch_version_compare_series(&t->version, &r->version) > 0)
        return refuse(why, whylen, r, t, "its version %d.%d is newer than the replica's %d.%d",
                      t->version.major, t->version.minor, r->version.major, r->version.minor);
    if (fr == 1) {
        bool gr = r->gtid_mode != NULL && strcasecmp(r->gtid_mode, "ON") == 0;
        bool gt = t->gtid_mode != NULL && strcasecmp(t->gtid_mode, "ON") == 0;
        if (!gr || !gt)
            return refuse(why, whylen, r, t, "GTID modes differ or are off (%s, %s)",
                          r->gtid_mode ? r->gtid_mode : "?", t->gtid_mode ? t->gtid_mode : "?");
    }
    return true;
}

/* ---- the operations ------------------------------------------------------------ */

const char *operation_kind_name(operation_kind k)
{
    static const char *const names[OPERATION__COUNT] = {
        [OPERATION_RELOCATE] = "relocate",
        [OPERATION_MOVE_UP] = "move-up",
        [OPERATION_MOVE_BELOW] = "move-below",
        [OPERATION_REPOINT] = "repoint",
        [OPERATION_TAKE_MASTER] = "take-master",
        [OPERATION_GRACEFUL_TAKEOVER] = "graceful-master-takeover",
        [OPERATION_STOP_REPLICA] = "stop-replica",
        [OPERATION_START_REPLICA] = "start-replica",
        [OPERATION_SET_READ_ONLY] = "set-read-only",
        [OPERATION_SET_WRITEABLE] = "set-writeable",
        [OPERATION_RELOCATE_REPLICAS] = "relocate-replicas",
        [OPERATION_MOVE_UP_REPLICAS] = "move-up-replicas",
        [OPERATION_RESTART_REPLICA] = "restart-replica",
    };
    return (unsigned)k < OPERATION__COUNT ? names[k] : "unknown";
}

/* The steps an operation is made of, run in the order its program lists them. */
typedef enum step_code {
    S_LOCK = 0, /* maintenance locks on every instance */
    S_FREEZE,   /* take-master: stop the master's replication, read its executed set */
    S_RO_ON,    /* takeover: the old master read-only, read its executed set */
    S_WAIT,     /* the catching-up instance waits for that set */
    S_RESET,    /* takeover: the designated replica stops and forgets replication */
    S_RO_OFF,   /* takeover: the designated replica writable */
    S_CHANGE,   /* every link: ChangeMaster (GTID) and start */
    S_VERIFY,   /* every link: the channel names the new master, threads running */
    S_SINGLE,   /* the one command of a simple operation (restart: the stop) */
    S_START,    /* restart-replica: the start */
    S_PRE_HOOK, /* takeover: the pre_graceful_takeover hooks (a failing one aborts) */
    S_END,      /* release the locks, answer */
} step_code;

static const char *step_name(step_code s)
{
    static const char *const n[] = {"lock",    "freeze",   "read-only",     "wait-gtid",
                                    "reset",   "writable", "change-master", "verify",
                                    "command", "start",    "pre-hooks",     "end"};
    return (size_t)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

typedef struct op_inst {
    orch_key key;
    char name[ORCH_KEY_STRLEN];
    char url[512];
    bool locked;                 /* BEGIN_MAINTENANCE answered OK */
    Orch__InstanceReport *state; /* the newest reply's state (owned) */
} op_inst;

/*
 * A replication link the operation makes or restarts: inst[from] replicates
 * from inst[to], or from whatever master it has when to is LINK_ANY.
 */
#define LINK_ANY SIZE_MAX
typedef struct op_link {
    size_t from, to;
    bool settled;
} op_link;

typedef struct op op;

struct operations {
    recovery_deps d;
    char node[128];
    int64_t command_timeout_ms, wait_gtid_timeout_ms, stale_after_ms;
    const orch_strlist *pre_takeover, *post_takeover; /* borrowed; NULL: none */
    int64_t hook_timeout_ms;
    op *active;
};

struct op {
    op *next;
    operations *o;
    operation_kind kind;
    char uid[40];
    char owner[64], reason[256];
    uint64_t epoch;
    int64_t started_ms;
    op_inst inst[OP_MAX_INSTS];
    size_t n;
    op_link links[OP_MAX_INSTS];
    size_t nlinks;
    const step_code *prog;
    size_t pc; /* the step running (index into prog) */
    int pending;
    bool failed;
    char error[1024];
    char summary[2048]; /* the success message */
    /* take-master and takeover */
    size_t waiter, waited; /* inst[waiter] waits for what inst[waited] executed */
    char gtid[GTID_TEXT_MAX];
    int64_t ro_sent_us, window_us;
    bool read_only_set, reset_done, promoted, rolled_back;
    unsigned seq;
    bool record; /* the takeover is recorded as a recovery row and its steps */
    char cluster[ORCH_KEY_STRLEN];
    char alias[256]; /* the takeover's cluster alias: it moves to the new master's name */
    int verify_tries;
    struct event *timer;
    operation_done_fn done;
    void *arg;
};

static const step_code prog_link[] = {S_LOCK, S_CHANGE, S_VERIFY, S_END};
static const step_code prog_take_master[] = {S_LOCK, S_FREEZE, S_WAIT, S_CHANGE, S_VERIFY, S_END};
static const step_code prog_takeover[] = {S_LOCK,   S_PRE_HOOK, S_RO_ON,  S_WAIT, S_RESET,
                                          S_RO_OFF, S_CHANGE,   S_VERIFY, S_END};
static const step_code prog_single[] = {S_LOCK, S_SINGLE, S_END};
static const step_code prog_start[] = {S_LOCK, S_SINGLE, S_VERIFY, S_END};
static const step_code prog_restart[] = {S_LOCK, S_SINGLE, S_START, S_VERIFY, S_END};

static bool leading(const operations *o)
{
    return election_is_leader(o->d.el, orch_mono_ms());
}

static void advance(op *p);
static void takeover_hooks(op *p, const char *event, const orch_strlist *list, hooks_done_fn done);

/* ---- records ---------------------------------------------------------------------- */

static void note_rows(orch_err result, const char *message, json_t *rows, uint64_t affected,
                      void *arg)
{
    if (result != ORCH_OK)
        orch_warn((const char *)arg, "backend record failed: %s", message);
    json_decref(rows);
}

/* Queues one statement (taking ownership; NULL is dropped); not waited for. */
static void record_stmt(op *p, char *sql)
{
    char msg[256];
    if (sql == NULL)
        return;
    char **s = calloc(1, sizeof(char *));
    if (s == NULL) {
        free(sql);
        return;
    }
    s[0] = sql;
    if (store_submit_batch(p->o->d.st, "operation record", s, 1, note_rows,
                           (void *)"operation record", msg, sizeof(msg)) != ORCH_OK)
        orch_warn(p->uid, "operation not recorded: %s", msg);
}

/* Logs a step (and records it when the operation is recorded). */
static void note(op *p, orch_log_level level, const char *tag, const char *fmt, ...)
    ORCH_PRINTF(4, 5);

static void note(op *p, orch_log_level level, const char *tag, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    orch_log(level, tag, p->inst[0].name, "[%s %s +%lldms] %s", operation_kind_name(p->kind),
             p->uid, (long long)(orch_mono_ms() - p->started_ms), text);
    if (!p->record)
        return;
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "INSERT INTO recovery_step (uid, seq, at, step, message) VALUES (");
    store_sql_string(&b, p->uid);
    orch_sbuf_fmt(&b, ", %u, NOW(6), ", ++p->seq);
    store_sql_string(&b, tag);
    orch_sbuf_str(&b, ", ");
    store_sql_string(&b, text);
    orch_sbuf_str(&b, ")");
    record_stmt(p, orch_sbuf_finish(&b));
}

static void fail(op *p, const char *fmt, ...) ORCH_PRINTF(2, 3);

static void fail(op *p, const char *fmt, ...)
{
    if (p->failed)
        return; /* the first failure is the one reported */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    p->failed = true;
}

/* ---- commands ------------------------------------------------------------------- */

typedef struct reply_ctx {
    op *p;
    size_t i;
    step_code step;
    Orch__CommandType type;
} reply_ctx;

static void on_reply(commander_reply *rep, void *arg)
{
    reply_ctx *ctx = arg;
    op *p = ctx->p;
    op_inst *in = &p->inst[ctx->i];
    bool ok = rep->status == COMMANDER_REPLIED && rep->result == ORCH__COMMAND_RESULT__RESULT_OK;
    if (rep->state != NULL) {
        orch__instance_report__free_unpacked(in->state, NULL);
        in->state = rep->state;
        rep->state = NULL;
    }
    if (ctx->step == S_RO_OFF && ok) {
        p->window_us = orch_mono_us() - p->ro_sent_us;
        p->promoted = true;
    }
    if (!ok && ctx->type != ORCH__COMMAND_TYPE__CMD_REPORT_NOW) {
        char what[600];
        commander_describe_reply(rep, what, sizeof(what));
        fail(p, "%s on %s failed: %s", commander_type_name(ctx->type), in->name, what);
    }
    free(ctx);
    if (--p->pending == 0)
        advance(p);
}

/* Sends c to inst[i]; counts it pending, or fails the operation. */
static void send_cmd(op *p, size_t i, Orch__Command *c, int64_t timeout_ms)
{
    op_inst *in = &p->inst[i];
    char msg[256];
    reply_ctx *ctx = malloc(sizeof(*ctx));
    if (ctx == NULL || in->url[0] == '\0') {
        free(ctx);
        fail(p, "%s: %s", in->name,
             in->url[0] == '\0' ? "its agent announced no command address" : "out of memory");
        return;
    }
    *ctx = (reply_ctx){.p = p, .i = i, .step = p->prog[p->pc], .type = c->type};
    commander_cmd req = {.host = in->key.host,
                         .url = in->url,
                         .epoch = p->epoch,
                         .cmd = c,
                         .timeout_ms = timeout_ms > 0 ? timeout_ms : p->o->command_timeout_ms,
                         .done = on_reply,
                         .arg = ctx};
    uint64_t id;
    if (commander_submit(p->o->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK) {
        free(ctx);
        fail(p, "%s: command not sent: %.300s", in->name, msg);
        return;
    }
    p->pending++;
}

static void simple_cmd(op *p, size_t i, Orch__CommandType type)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    c.type = type;
    send_cmd(p, i, &c, 0);
}

static void read_only_cmd(op *p, size_t i, bool on)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    c.type = ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY;
    c.has_read_only = true;
    c.read_only = on;
    c.has_super_read_only = true;
    c.super_read_only = on;
    send_cmd(p, i, &c, 0);
}

static void change_master_cmd(op *p, size_t i, size_t to)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    c.type = ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER;
    c.master_host = p->inst[to].key.host;
    c.has_master_port = true;
    c.master_port = p->inst[to].key.port;
    c.has_gtid_mode = true;
    c.gtid_mode = ORCH__GTID_MODE__GTID_MODE_SLAVE_POS;
    c.has_start_replica = true;
    c.start_replica = true;
    send_cmd(p, i, &c, 0);
}

/* What the instance has executed, from a reply's state ("" when unknown). */
static bool executed_of(const Orch__InstanceReport *st, bool prefer_binlog, char *buf, size_t len)
{
    const Orch__ServerStatus *s = st ? st->server : NULL;
    if (s == NULL)
        return false;
    bool mysql =
        s->flavor == ORCH__FLAVOR__FLAVOR_MYSQL || s->flavor == ORCH__FLAVOR__FLAVOR_PERCONA;
    const char *v;
    if (mysql)
        v = s->gtid_executed;
    else if (prefer_binlog && s->gtid_binlog_pos != NULL && s->gtid_binlog_pos[0] != '\0')
        v = s->gtid_binlog_pos; /* a master: everything it committed is in its binary log */
    else
        v = s->gtid_current_pos;
    if (v == NULL)
        return false;
    int n = snprintf(buf, len, "%s", v);
    return n >= 0 && (size_t)n < len;
}

/* ---- maintenance -------------------------------------------------------------------- */

typedef struct lock_ctx {
    op *p;
    size_t i;
    bool begin;
} lock_ctx;

static void on_lock(orch_err result, const char *message, void *arg)
{
    lock_ctx *ctx = arg;
    op *p = ctx->p;
    if (ctx->begin) {
        if (result == ORCH_OK)
            p->inst[ctx->i].locked = true;
        else
            fail(p, "cannot take the maintenance lock of %s: %s", p->inst[ctx->i].name, message);
    } else if (result != ORCH_OK) {
        orch_warn(p->inst[ctx->i].name, "maintenance lock not released: %s", message);
    }
    free(ctx);
    if (--p->pending == 0)
        advance(p);
}

static void lock_op(op *p, size_t i, bool begin)
{
    char msg[256];
    lock_ctx *ctx = malloc(sizeof(*ctx));
    if (ctx == NULL) {
        fail(p, "out of memory");
        return;
    }
    *ctx = (lock_ctx){.p = p, .i = i, .begin = begin};
    store_op sop = {.kind = begin ? STORE_OP_BEGIN_MAINTENANCE : STORE_OP_END_MAINTENANCE,
                    .key = p->inst[i].key,
                    .owner = "orch",
                    .reason = p->reason,
                    .duration_ms = MAINTENANCE_MS};
    if (store_submit_op(p->o->d.st, &sop, on_lock, ctx, msg, sizeof(msg)) != ORCH_OK) {
        free(ctx);
        if (begin)
            fail(p, "cannot take the maintenance lock of %s: %s", p->inst[i].name, msg);
        else
            orch_warn(p->inst[i].name, "maintenance lock not released: %s", msg);
        return;
    }
    p->pending++;
}

/* ---- verification ---------------------------------------------------------------- */

/*
 * A link is settled when the replica's channel names the new master and both
 * threads run. Right after START SLAVE the IO thread may still be connecting:
 * ReportNow asks again, every VERIFY_INTERVAL_MS, VERIFY_TRIES times. An IO or
 * SQL error ends the wait at once.
 */
static bool link_check(op *p, op_link *l, char *why, size_t whylen, bool *hopeless)
{
    const op_inst *r = &p->inst[l->from];
    const Orch__Channel *ch = registry_defining_channel(r->state);
    *hopeless = false;
    if (r->state == NULL || r->state->state != ORCH__PROBE_STATE__PROBE_UP) {
        /* a probe that failed or timed out (START SLAVE can hold SHOW SLAVE
         * STATUS up): no verdict, ask again */
        snprintf(why, whylen, "%s: no state of its server yet (%s)", r->name,
                 r->state && r->state->probe_error ? r->state->probe_error : "no probe");
        return false;
    }
    if (ch == NULL) {
        snprintf(why, whylen, "%s reports no replication channel", r->name);
        *hopeless = l->to == LINK_ANY;
        return false;
    }
    char tname[ORCH_KEY_STRLEN];
    if (l->to == LINK_ANY) {
        snprintf(tname, sizeof(tname), "%s:%u", ch->master_host ? ch->master_host : "?",
                 ch->master_port);
    } else {
        const op_inst *t = &p->inst[l->to];
        snprintf(tname, sizeof(tname), "%s", t->name);
        if (ch->master_port != t->key.port || ch->master_host == NULL ||
            strcasecmp(ch->master_host, t->key.host) != 0) {
            snprintf(why, whylen, "%s replicates from %s:%u, not %s", r->name,
                     ch->master_host ? ch->master_host : "?", ch->master_port, t->name);
            *hopeless = true;
            return false;
        }
    }
    if (ch->io_thread == ORCH__THREAD_STATE__THREAD_YES &&
        ch->sql_thread == ORCH__THREAD_STATE__THREAD_YES)
        return true;
    if ((ch->last_io_errno != 0 && ch->io_thread != ORCH__THREAD_STATE__THREAD_YES) ||
        ch->last_sql_errno != 0 || ch->sql_thread == ORCH__THREAD_STATE__THREAD_NO)
        *hopeless = ch->last_io_errno != 0 || ch->last_sql_errno != 0;
    snprintf(why, whylen, "%s from %s: IO thread %s, SQL thread %s%s%.300s%s%.300s", r->name, tname,
             ch->io_thread == ORCH__THREAD_STATE__THREAD_YES          ? "running"
             : ch->io_thread == ORCH__THREAD_STATE__THREAD_CONNECTING ? "connecting"
                                                                      : "stopped",
             ch->sql_thread == ORCH__THREAD_STATE__THREAD_YES ? "running" : "stopped",
             ch->last_io_error && ch->last_io_error[0] ? "; IO error: " : "",
             ch->last_io_error ? ch->last_io_error : "",
             ch->last_sql_error && ch->last_sql_error[0] ? "; SQL error: " : "",
             ch->last_sql_error ? ch->last_sql_error : "");
    return false;
}

static void on_verify_timer(evutil_socket_t fd, short what, void *arg)
{
    op *p = arg;
    for (size_t k = 0; k < p->nlinks; k++) {
        if (!p->links[k].settled)
            simple_cmd(p, p->links[k].from, ORCH__COMMAND_TYPE__CMD_REPORT_NOW);
    }
    if (p->pending == 0)
        advance(p);
}

/* True when the verification is over (settled or failed); else asks again later. */
static bool verify(op *p)
{
    char why[1024] = "";
    bool all = true;
    for (size_t k = 0; k < p->nlinks; k++) {
        op_link *l = &p->links[k];
        bool hopeless = false;
        if (l->settled)
            continue;
        l->settled = link_check(p, l, why, sizeof(why), &hopeless);
        if (l->settled) {
            note(p, ORCH_LOG_INFO, "ORCH-OPERATION-STEP", "%s %s %s", p->inst[l->from].name,
                 l->to == LINK_ANY ? "replicates, both threads running, from its master"
                                   : "now replicates from",
                 l->to == LINK_ANY ? "" : p->inst[l->to].name);
            continue;
        }
        all = false;
        if (hopeless || p->verify_tries >= VERIFY_TRIES) {
            fail(p, "verification failed: %s", why);
            return true;
        }
    }
    if (all)
        return true;
    p->verify_tries++;
    struct timeval tv = {0, VERIFY_INTERVAL_MS * 1000};
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
        fail(p, "cannot wait to verify: %s", why);
        return true;
    }
    return false;
}

/* ---- the end ------------------------------------------------------------------------ */

static void unlink_op(op *p)
{
    op **pp = &p->o->active;
    while (*pp != NULL && *pp != p)
        pp = &(*pp)->next;
    if (*pp == p)
        *pp = p->next;
}

static void op_free(op *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        orch__instance_report__free_unpacked(p->inst[i].state, NULL);
    if (p->timer != NULL)
        event_free(p->timer);
    free(p);
}

/*
 * What can be undone before the point of no return: a takeover whose
 * designated replica was not made writable gives the old master its writes
 * back (and points a reset designated replica at it again); a take-master
 * that froze the master restarts it. Fire and forget: the answers are logged.
 */
static void on_rollback_reply(commander_reply *rep, void *arg)
{
    char *name = arg;
    char what[600];
    commander_describe_reply(rep, what, sizeof(what));
    bool ok = rep->status == COMMANDER_REPLIED && rep->result == ORCH__COMMAND_RESULT__RESULT_OK;
    orch_log(ok ? ORCH_LOG_NOTICE : ORCH_LOG_ERROR, "ORCH-TAKEOVER-ROLLBACK", name, "%s %s",
             commander_type_name(rep->type), ok ? "done" : what);
    free(name);
}

static void rollback_send(op *p, size_t i, Orch__Command *c)
{
    char msg[256];
    char *name = strdup(p->inst[i].name);
    if (name == NULL)
        return;
    commander_cmd req = {.host = p->inst[i].key.host,
                         .url = p->inst[i].url,
                         .epoch = p->epoch,
                         .cmd = c,
                         .timeout_ms = p->o->command_timeout_ms,
                         .done = on_rollback_reply,
                         .arg = name};
    uint64_t id;
    if (commander_submit(p->o->d.cmd, &req, &id, msg, sizeof(msg)) != ORCH_OK) {
        orch_error(name, "rollback not sent: %s", msg);
        free(name);
    }
}

static void rollback(op *p)
{
    if (p->rolled_back || !leading(p->o))
        return;
    p->rolled_back = true;
    if (p->kind == OPERATION_GRACEFUL_TAKEOVER && p->read_only_set && !p->promoted) {
        note(p, ORCH_LOG_ERROR, "ORCH-TAKEOVER-ROLLBACK", "rolling back: %s writable again%s%s",
             p->inst[0].name, p->reset_done ? "; " : "",
             p->reset_done ? "the designated replica follows it" : "");
        Orch__Command c = ORCH__COMMAND__INIT;
        c.type = ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY;
        c.has_read_only = true;
        c.read_only = false;
        c.has_super_read_only = true;
        c.super_read_only = false;
        rollback_send(p, 0, &c);
        if (p->reset_done) {
            Orch__Command m = ORCH__COMMAND__INIT;
            m.type = ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER;
            m.master_host = p->inst[0].key.host;
            m.has_master_port = true;
            m.master_port = p->inst[0].key.port;
            m.has_gtid_mode = true;
            m.gtid_mode = ORCH__GTID_MODE__GTID_MODE_SLAVE_POS;
            m.has_start_replica = true;
            m.start_replica = true;
            rollback_send(p, 1, &m);
        }
    } else if (p->kind == OPERATION_TAKE_MASTER &&
               (p->prog[p->pc] == S_FREEZE || p->prog[p->pc] == S_WAIT)) {
        /* the master was frozen and nothing was repointed yet */
        note(p, ORCH_LOG_WARN, "ORCH-OPERATION-STEP", "rolling back: %s replicates again",
             p->inst[1].name);
        Orch__Command c = ORCH__COMMAND__INIT;
        c.type = ORCH__COMMAND_TYPE__CMD_START_REPLICA;
        rollback_send(p, 1, &c);
    }
}

static void finish(op *p)
{
    int64_t took = orch_mono_ms() - p->started_ms;
    char message[2048];
    if (p->failed)
        snprintf(message, sizeof(message), "%s failed after %lld ms: %s",
                 operation_kind_name(p->kind), (long long)took, p->error);
    else
        snprintf(message, sizeof(message), "%s", p->summary);
    note(p, p->failed ? ORCH_LOG_ERROR : ORCH_LOG_NOTICE,
         p->failed ? "ORCH-OPERATION-FAILED" : "ORCH-OPERATION-END", "%s", message);
    if (p->record) {
        orch_sbuf b = {0};
        orch_sbuf_fmt(&b,
                      "UPDATE recovery SET state = '%s', is_successful = %d, ended_at = NOW(6), "
                      "successor_host = ",
                      p->failed ? "failed" : "succeeded", p->failed ? 0 : 1);
        store_sql_string(&b, p->promoted ? p->inst[1].key.host : "");
        orch_sbuf_fmt(
            &b, ", successor_port = %u, description = ", p->promoted ? p->inst[1].key.port : 0);
        store_sql_string(&b, message);
        orch_sbuf_str(&b, " WHERE uid = ");
        store_sql_string(&b, p->uid);
        record_stmt(p, orch_sbuf_finish(&b));
    }
    if (p->promoted && p->alias[0] != '\0')
        store_move_cluster_alias(p->o->d.st, p->alias, p->inst[1].name);
    if (p->kind == OPERATION_GRACEFUL_TAKEOVER && !p->failed)
        takeover_hooks(p, "post_graceful_takeover", p->o->post_takeover, NULL);
    unlink_op(p);
    orch_key *moved = NULL;
    size_t nmoved = 0;
    bool group = p->kind == OPERATION_RELOCATE_REPLICAS || p->kind == OPERATION_MOVE_UP_REPLICAS;
    if (group && !p->failed && (moved = calloc(p->nlinks, sizeof(*moved))) != NULL) {
        for (size_t k = 0; k < p->nlinks; k++)
            moved[nmoved++] = p->inst[p->links[k].from].key;
    }
    operation_result res = {.ok = !p->failed, .message = message, .moved = moved, .nmoved = nmoved};
    if (!p->failed) {
        switch (p->kind) {
        case OPERATION_RELOCATE:
        case OPERATION_MOVE_UP:
        case OPERATION_MOVE_BELOW:
        case OPERATION_REPOINT:
            res.master = &p->inst[1].key; /* the plan puts the target second */
            break;
        case OPERATION_TAKE_MASTER:
            res.master = &p->inst[2].key; /* its master's master */
            break;
        case OPERATION_GRACEFUL_TAKEOVER:
            res.master = &p->inst[1].key; /* the cluster's new master */
            break;
        default:
            break;
        }
    }
    if (p->done != NULL)
        p->done(p->arg, &res);
    free(moved);
    op_free(p);
}

/* ---- the takeover's hooks ----------------------------------------------------------- */

static void takeover_vars(const op *p, hook_vars *v)
{
    *v = (hook_vars){.failure_type = "GracefulMasterTakeover",
                     .failure_description = p->reason,
                     .failed_host = p->inst[0].key.host,
                     .failed_port = p->inst[0].key.port,
                     .cluster = p->cluster,
                     .cluster_alias = p->alias[0] ? p->alias : p->cluster,
                     .successor_host = p->inst[1].key.host,
                     .successor_port = p->inst[1].key.port,
                     .count_replicas = (int)(p->n - 1),
                     .recovery_uid = p->uid,
                     .is_successful = !p->failed && p->promoted,
                     .orch_host = p->o->node,
                     .command = "graceful-master-takeover",
                     .reason = p->reason};
}

static void on_pre_hooks(const hook_result *res, void *arg)
{
    op *p = arg;
    if (!res->ok)
        fail(p, "pre_graceful_takeover hook failed: %s", res->error);
    else
        note(p, ORCH_LOG_INFO, "ORCH-OPERATION-STEP", "pre_graceful_takeover: %zu hook(s) ran",
             res->ran);
    if (--p->pending == 0)
        advance(p);
}

/* Runs the hooks of list (none: nothing); done NULL: fire and forget. */
static void takeover_hooks(op *p, const char *event, const orch_strlist *list, hooks_done_fn done)
{
    if (list == NULL || list->n == 0 || p->o->d.hk == NULL)
        return;
    hook_vars v;
    takeover_vars(p, &v);
    if (done != NULL)
        p->pending++;
    if (hooks_run(p->o->d.hk, event, (const char *const *)list->v, list->n, &v,
                  p->o->hook_timeout_ms, done, done != NULL ? p : NULL) != ORCH_OK) {
        if (done != NULL) {
            p->pending--;
            fail(p, "cannot run the %s hooks", event);
        } else {
            orch_warn(p->inst[0].name, "cannot run the %s hooks", event);
        }
    }
}

/* ---- the program ---------------------------------------------------------------------- */

static void run_step(op *p)
{
    step_code s = p->prog[p->pc];
    switch (s) {
    case S_LOCK:
        for (size_t i = 0; i < p->n; i++)
            lock_op(p, i, true);
        break;
    case S_FREEZE: {
        /* take-master: inst[1] (the master) stops replicating so that the
         * instance can catch up with a set that no longer grows */
        simple_cmd(p, 1, ORCH__COMMAND_TYPE__CMD_STOP_REPLICA);
        break;
    }
    case S_RO_ON: {
        /* A fence, not only read_only: client connections are killed too, so
         * an account that writes through read_only (READ_ONLY ADMIN, SUPER)
         * cannot commit after the designated replica's catch-up point, and a
         * commit still waiting ends with an error. The agent lifts the fence
         * at the CHANGE MASTER that follows, or at a rollback's read_only off. */
        p->ro_sent_us = orch_mono_us();
        p->read_only_set = true; /* from now on a failure rolls back */
        simple_cmd(p, 0, ORCH__COMMAND_TYPE__CMD_FENCE);
        break;
    }
    case S_WAIT: {
        if (!executed_of(p->inst[p->waited].state, p->kind == OPERATION_GRACEFUL_TAKEOVER, p->gtid,
                         sizeof(p->gtid))) {
            fail(p, "the executed GTID set of %s is not known", p->inst[p->waited].name);
            break;
        }
        note(p, ORCH_LOG_INFO,
             p->kind == OPERATION_GRACEFUL_TAKEOVER ? "ORCH-TAKEOVER-READONLY"
                                                    : "ORCH-OPERATION-STEP",
             "%s %s at %s; %s catches up", p->inst[p->waited].name,
             p->kind == OPERATION_GRACEFUL_TAKEOVER ? "read-only" : "frozen",
             p->gtid[0] ? p->gtid : "(empty)", p->inst[p->waiter].name);
        if (p->gtid[0] == '\0')
            break;
        Orch__Command c = ORCH__COMMAND__INIT;
        c.type = ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID;
        c.gtid_set = p->gtid;
        c.has_timeout_ms = true;
        c.timeout_ms = (uint32_t)p->o->wait_gtid_timeout_ms;
        send_cmd(p, p->waiter, &c, p->o->wait_gtid_timeout_ms + p->o->command_timeout_ms);
        break;
    }
    case S_RESET:
        if (p->kind == OPERATION_GRACEFUL_TAKEOVER)
            note(p, ORCH_LOG_INFO, "ORCH-TAKEOVER-CAUGHT-UP", "%s has executed %s", p->inst[1].name,
                 p->gtid[0] ? p->gtid : "(empty)");
        simple_cmd(p, 1, ORCH__COMMAND_TYPE__CMD_RESET_REPLICA);
        p->reset_done = true; /* maybe: the rollback repoints it either way */
        break;
    case S_RO_OFF:
        read_only_cmd(p, 1, false);
        break;
    case S_CHANGE:
        if (p->kind == OPERATION_GRACEFUL_TAKEOVER) {
            note(p, ORCH_LOG_NOTICE, "ORCH-TAKEOVER-PROMOTED",
                 "%s is the master: writable; write-unavailable window %.1f ms", p->inst[1].name,
                 p->window_us / 1000.0);
            snprintf(p->summary, sizeof(p->summary),
                     "%s is the new master of %s (was %s, now its replica); caught up at %.400s; "
                     "write-unavailable window %.1f ms",
                     p->inst[1].name, p->cluster, p->inst[0].name, p->gtid[0] ? p->gtid : "(empty)",
                     p->window_us / 1000.0);
        } else if (p->kind == OPERATION_TAKE_MASTER)
            note(p, ORCH_LOG_INFO, "ORCH-OPERATION-STEP", "%s has caught up with %s",
                 p->inst[0].name, p->inst[1].name);
        for (size_t k = 0; k < p->nlinks; k++)
            change_master_cmd(p, p->links[k].from, p->links[k].to);
        break;
    case S_VERIFY: /* advance() looks at the replies' states */
        break;
    case S_SINGLE: {
        switch (p->kind) {
        case OPERATION_STOP_REPLICA:
        case OPERATION_RESTART_REPLICA:
            simple_cmd(p, 0, ORCH__COMMAND_TYPE__CMD_STOP_REPLICA);
            break;
        case OPERATION_START_REPLICA:
            simple_cmd(p, 0, ORCH__COMMAND_TYPE__CMD_START_REPLICA);
            break;
        case OPERATION_SET_READ_ONLY:
            read_only_cmd(p, 0, true);
            break;
        case OPERATION_SET_WRITEABLE:
            read_only_cmd(p, 0, false);
            break;
        default:
            fail(p, "internal: no single command for %s", operation_kind_name(p->kind));
            break;
        }
        break;
    }
    case S_START:
        simple_cmd(p, 0, ORCH__COMMAND_TYPE__CMD_START_REPLICA);
        break;
    case S_PRE_HOOK:
        takeover_hooks(p, "pre_graceful_takeover", p->o->pre_takeover, on_pre_hooks);
        break;
    case S_END:
        break;
    }
}

/*
 * Runs the program: called when an operation starts and whenever everything
 * the current step sent is answered. A failure skips to S_END (after the
 * rollback); S_END releases the locks and, once they are answered, answers.
 */
static void advance(op *p)
{
    for (;;) {
        if (p->pending > 0)
            return;
        step_code s = p->prog[p->pc];
        if (s == S_END) {
            bool any = false;
            for (size_t i = 0; i < p->n; i++) {
                if (p->inst[i].locked) {
                    p->inst[i].locked = false;
                    lock_op(p, i, false);
                    any = true;
                }
            }
            if (any && p->pending > 0)
                return; /* back here when the store answered */
            finish(p);
            return;
        }
        if (!p->failed && s == S_VERIFY && !verify(p))
            return; /* the timer asks the agents again */
        if (!p->failed && !leading(p->o))
            fail(p, "this node no longer leads: stopped before %s", step_name(p->prog[p->pc + 1]));
        if (p->failed) {
            rollback(p);
            while (p->prog[p->pc] != S_END)
                p->pc++;
            continue;
        }
        p->pc++;
        run_step(p);
    }
}

/* ---- requests ----------------------------------------------------------------------- */

static bool parse_version(const reg_instance *in, orch_version *v)
{
    const Orch__ServerStatus *s = in->report->server;
    char msg[64];
    memset(v, 0, sizeof(*v));
    if (s == NULL || s->version == NULL)
        return false;
    if (orch_version_parse(s->version, s->version_comment, v, msg, sizeof(msg)) != ORCH_OK) {
        memset(v, 0, sizeof(*v));
        return false;
    }
    return true;
}

static void node_of(const operations *o, const reg_instance *in, operations_node *n)
{
    const Orch__ServerStatus *s = in->report->server;
    *n = (operations_node){.name = in->name,
                           .log_bin = s && s->log_bin,
                           .log_slave_updates = s && s->log_slave_updates,
                           .gtid_mode = s ? s->gtid_mode : NULL,
                           .has_master = in->has_master,
                           .fresh = !reg_instance_is_stale(in, orch_mono_ms(), o->stale_after_ms),
                           .up = in->report->state == ORCH__PROBE_STATE__PROBE_UP};
    parse_version(in, &n->version);
}

/* Names of in's masters, nearest first (a cycle is walked once); in excluded. */
static size_t ancestors_of(const reg_instance *in, const char **out, size_t max)
{
    size_t n = 0;
    for (const reg_instance *m = in ? in->master : NULL; m != NULL && n < max; m = m->master) {
        bool seen = m == in;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(out[i], m->name) == 0;
        if (seen)
            break;
        out[n++] = m->name;
    }
    return n;
}

/* The link replica -> target is allowed, given target's ancestors after the operation. */
static orch_err check_link(const operations *o, const reg_instance *replica,
                           const reg_instance *target, const char **anc, size_t nanc, char *msg,
                           size_t msglen)
{
    operations_node r, t;
    node_of(o, replica, &r);
    node_of(o, target, &t);
    char why[768];
    if (!operations_can_replicate_from(&r, &t, anc, nanc, why, sizeof(why)))
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s", why);
    return ORCH_OK;
}

static bool op_busy(const operations *o, const orch_key *k, const op **by)
{
    for (const op *p = o->active; p != NULL; p = p->next) {
        for (size_t i = 0; i < p->n; i++) {
            if (orch_key_equal(&p->inst[i].key, k)) {
                *by = p;
                return true;
            }
        }
    }
    return false;
}

/* Adds an instance to the operation (checked: answering, not locked by others). */
static orch_err add_inst(op *p, const reg_instance *in, char *msg, size_t msglen)
{
    operations *o = p->o;
    const op *by = NULL;
    if (p->n == OP_MAX_INSTS)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "more than %d instances", OP_MAX_INSTS);
    if (reg_instance_is_stale(in, orch_mono_ms(), o->stale_after_ms))
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s: its agent is stale (state unknown)",
                         in->name);
    if (in->report->state != ORCH__PROBE_STATE__PROBE_UP)
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s: its server is not answering",
                         in->name);
    if (in->report->command_listen == NULL || in->report->command_listen[0] == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                         "%s: its agent announced no command address", in->name);
    if (in->op.maintenance_until_ms > orch_wall_ms() &&
        (in->op.maintenance_owner == NULL || strcmp(in->op.maintenance_owner, "orch") != 0))
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s is in maintenance by %s (%s)", in->name,
                         in->op.maintenance_owner ? in->op.maintenance_owner : "?",
                         in->op.maintenance_reason ? in->op.maintenance_reason : "");
    if (op_busy(o, &in->key, &by))
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s is busy with %s %s", in->name,
                         operation_kind_name(by->kind), by->uid);
    op_inst *x = &p->inst[p->n++];
    x->key = in->key;
    snprintf(x->name, sizeof(x->name), "%s", in->name);
    snprintf(x->url, sizeof(x->url), "%s", in->report->command_listen);
    return ORCH_OK;
}

static void add_link(op *p, size_t from, size_t to)
{
    p->links[p->nlinks++] = (op_link){.from = from, .to = to};
}

/*
 * The best replica of master for a planned takeover: candidate.c's ranking
 * over the direct replicas as their agents last reported them (the master is
 * alive, so nothing is frozen; the catch-up happens from the master itself,
 * which is why a suggested catch-up source is ignored).
 */
static reg_instance *best_replica(operations *o, reg_instance *master, char *msg, size_t msglen)
{
    size_t n = master->nreplicas;
    if (n == 0) {
        orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s has no replicas", master->name);
        return NULL;
    }
    candidate_input *in = calloc(n, sizeof(*in));
    orch_gtid_set **sets = calloc(2 * n, sizeof(*sets));
    reg_instance *chosen = NULL;
    if (in == NULL || sets == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto out;
    }
    int64_t wall = orch_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const reg_instance *r = master->replicas[i];
        const Orch__ServerStatus *s = r->report->server;
        const Orch__Channel *ch = r->channel;
        bool mysql = s && (s->flavor == ORCH__FLAVOR__FLAVOR_MYSQL ||
                           s->flavor == ORCH__FLAVOR__FLAVOR_PERCONA);
        orch_gtid_flavor fl = mysql ? ORCH_GTID_MYSQL : ORCH_GTID_MARIADB;
        const char *exec = s ? (mysql ? s->gtid_executed : s->gtid_current_pos) : NULL;
        char m[128];
        if (exec != NULL && orch_gtid_set_parse(fl, exec, &sets[2 * i], m, sizeof(m)) != ORCH_OK)
            sets[2 * i] = NULL;
        if (ch != NULL && ch->retrieved_gtid_set != NULL &&
            orch_gtid_set_parse(fl, ch->retrieved_gtid_set, &sets[2 * i + 1], m, sizeof(m)) !=
                ORCH_OK)
            sets[2 * i + 1] = NULL;
        in[i].key = r->name;
        parse_version(r, &in[i].version);
        in[i].log_bin = s && s->log_bin;
        in[i].log_slave_updates = s && s->log_slave_updates;
        in[i].executed = sets[2 * i];
        in[i].received = sets[2 * i + 1];
        in[i].rule = candidate_rule_of(reg_instance_promotion_rule(r));
        in[i].dc = r->report->data_center;
        in[i].region = r->report->region;
        in[i].lag_known = ch && ch->has_seconds_behind_master;
        in[i].lag_s = ch ? ch->seconds_behind_master : 0;
        in[i].downtimed = r->op.downtime_until_ms > wall;
        in[i].maintenance = r->op.maintenance_until_ms > wall;
        in[i].fresh = !reg_instance_is_stale(r, orch_mono_ms(), o->stale_after_ms) &&
                      r->report->state == ORCH__PROBE_STATE__PROBE_UP && sets[2 * i] != NULL;
        in[i].sql_delay_s = ch ? ch->sql_delay : 0;
    }
    candidate_params cp = {.master_dc = master->report->data_center,
                           .master_region = master->report->region};
    candidate_result cr;
    orch_err err = candidate_choose(in, n, &cp, &cr);
    if (err != ORCH_OK)
        orch_fail(msg, msglen, err, "candidate choice failed: %s", orch_strerror(err));
    else if (cr.refused)
        orch_fail(msg, msglen, ORCH_ERR_REFUSED, "no replica to take over: %s", cr.reason);
    else
        chosen = master->replicas[cr.chosen];
    candidate_result_fini(&cr);
out:
    for (size_t i = 0; sets != NULL && i < 2 * n; i++)
        orch_gtid_set_free(sets[i]);
    free(sets);
    free(in);
    return chosen;
}

/* Fills the operation's instances, links and program from the request and the registry. */
static orch_err plan(op *p, const operation_req *req, char *msg, size_t msglen)
{
    operations *o = p->o;
    registry *reg = o->d.reg;
    reg_instance *in = NULL, *t = NULL;
    char name[ORCH_KEY_STRLEN];
    const char *anc[64];
    size_t nanc;
    orch_err err;

    if (req->kind != OPERATION_GRACEFUL_TAKEOVER || req->cluster == NULL) {
        in = registry_get(reg, &req->instance);
        if (in == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_NOTFOUND, "unknown instance %s",
                             orch_key_format(&req->instance, name, sizeof(name)));
    }
    bool needs_target = req->kind == OPERATION_RELOCATE || req->kind == OPERATION_MOVE_BELOW ||
                        req->kind == OPERATION_RELOCATE_REPLICAS;
    if (needs_target && !req->has_target)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs a target instance",
                         operation_kind_name(req->kind));
    if (req->has_target) {
        t = registry_get(reg, &req->target);
        if (t == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_NOTFOUND, "unknown instance %s",
                             orch_key_format(&req->target, name, sizeof(name)));
    }

    if (req->kind == OPERATION_MOVE_UP) {
        if (in->master == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s has no known master", in->name);
        if (in->master->master == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                             "%s: its master %s is a cluster's top: there is no level above",
                             in->name, in->master->name);
        t = in->master->master;
    }
    if (req->kind == OPERATION_MOVE_UP_REPLICAS) {
        if (in->master == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                             "%s is a cluster's top (or its master is unknown): its replicas have "
                             "no level above to move to",
                             in->name);
        t = in->master;
    }
    if (req->kind == OPERATION_SET_WRITEABLE && in->has_master && in->depth != 0)
        return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                         "%s replicates from %s: only a cluster's top is made writable", in->name,
                         in->master ? in->master->name : "another server");

    switch (req->kind) {
    case OPERATION_MOVE_UP:
    case OPERATION_RELOCATE:
    case OPERATION_MOVE_BELOW:
    case OPERATION_REPOINT:
        if (req->kind == OPERATION_REPOINT && t == NULL) {
            if (in->master == NULL)
                return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s has no known master", in->name);
            t = in->master;
        }
        if (req->kind == OPERATION_MOVE_BELOW && (in->master == NULL || t->master != in->master))
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s and %s are not siblings", in->name,
                             t->name);
        nanc = ancestors_of(t, anc, 64);
        if ((err = check_link(o, in, t, anc, nanc, msg, msglen)) != ORCH_OK)
            return err;
        if ((err = add_inst(p, in, msg, msglen)) != ORCH_OK ||
            (err = add_inst(p, t, msg, msglen)) != ORCH_OK)
            return err;
        add_link(p, 0, 1);
        p->prog = prog_link;
        snprintf(p->summary, sizeof(p->summary), "%s now replicates from %s", in->name, t->name);
        return ORCH_OK;
    case OPERATION_RELOCATE_REPLICAS:
    case OPERATION_MOVE_UP_REPLICAS: {
        /* all or nothing: every replica of the instance (the target itself
         * excepted) must be able to replicate from the target */
        size_t moving = 0;
        nanc = ancestors_of(t, anc, 64);
        for (size_t i = 0; i < in->nreplicas; i++) {
            if (in->replicas[i] == t)
                continue;
            if ((err = check_link(o, in->replicas[i], t, anc, nanc, msg, msglen)) != ORCH_OK)
                return err;
            moving++;
        }
        if (moving == 0)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s has no replicas to move%s%s",
                             in->name, in->nreplicas > 0 ? " other than " : "",
                             in->nreplicas > 0 ? t->name : "");
        if ((err = add_inst(p, t, msg, msglen)) != ORCH_OK)
            return err;
        orch_sbuf names = {0};
        for (size_t i = 0; i < in->nreplicas; i++) {
            if (in->replicas[i] == t)
                continue;
            if ((err = add_inst(p, in->replicas[i], msg, msglen)) != ORCH_OK) {
                orch_sbuf_fini(&names);
                return err;
            }
            add_link(p, p->n - 1, 0);
            orch_sbuf_fmt(&names, "%s%s", names.len ? ", " : "", in->replicas[i]->name);
        }
        char *list = orch_sbuf_finish(&names);
        snprintf(p->summary, sizeof(p->summary), "%zu replica%s of %s now replicate%s from %s: %s",
                 moving, moving == 1 ? "" : "s", in->name, moving == 1 ? "s" : "", t->name,
                 list ? list : "");
        free(list);
        p->prog = prog_link;
        return ORCH_OK;
    }
    case OPERATION_TAKE_MASTER: {
        reg_instance *m = in->master;
        if (m == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s has no known master", in->name);
        if (m->master == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                             "%s is %s's top master: use graceful-master-takeover", m->name,
                             m->cluster ? m->cluster->name : "the cluster");
        reg_instance *g = m->master;
        /* instance -> g (g's ancestors as they are); m -> instance (instance
         * then has g and g's ancestors above it) */
        nanc = ancestors_of(g, anc, 63);
        if ((err = check_link(o, in, g, anc, nanc, msg, msglen)) != ORCH_OK)
            return err;
        memmove(anc + 1, anc, nanc * sizeof(anc[0]));
        anc[0] = g->name;
        if ((err = check_link(o, m, in, anc, nanc + 1, msg, msglen)) != ORCH_OK)
            return err;
        if ((err = add_inst(p, in, msg, msglen)) != ORCH_OK ||
            (err = add_inst(p, m, msg, msglen)) != ORCH_OK ||
            (err = add_inst(p, g, msg, msglen)) != ORCH_OK)
            return err;
        p->waiter = 0;
        p->waited = 1;
        add_link(p, 0, 2);
        add_link(p, 1, 0);
        p->prog = prog_take_master;
        snprintf(p->summary, sizeof(p->summary),
                 "%s took over from %s: it replicates from %s, %s from it", in->name, m->name,
                 g->name, m->name);
        return ORCH_OK;
    }
    case OPERATION_GRACEFUL_TAKEOVER: {
        reg_cluster *cl =
            req->cluster != NULL ? registry_cluster_by_hint(reg, req->cluster) : in->cluster;
        if (cl == NULL || cl->master == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_NOTFOUND, "unknown cluster %s",
                             req->cluster ? req->cluster : in->name);
        reg_instance *m = cl->master;
        if (m->has_master)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                             "%s replicates from %s (a co-master or an unknown master): not a "
                             "plain cluster master",
                             m->name,
                             m->channel && m->channel->master_host ? m->channel->master_host : "?");
        if (t == NULL && !req->choose && m->nreplicas > 1)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                             "%s has %zu direct replicas: designate the one to promote, or use "
                             "graceful-master-takeover-auto to let orch choose",
                             m->name, m->nreplicas);
        if (t == NULL && (t = best_replica(o, m, msg, msglen)) == NULL)
            return ORCH_ERR_REFUSED;
        if (t->master != m)
            return orch_fail(msg, msglen, ORCH_ERR_REFUSED,
                             "%s is not a direct replica of the master %s", t->name, m->name);
        /* every other replica and the old master will replicate from t, the new top */
        for (size_t i = 0; i < m->nreplicas; i++) {
            if (m->replicas[i] != t &&
                (err = check_link(o, m->replicas[i], t, NULL, 0, msg, msglen)) != ORCH_OK)
                return err;
        }
        if ((err = check_link(o, m, t, NULL, 0, msg, msglen)) != ORCH_OK)
            return err;
        snprintf(p->cluster, sizeof(p->cluster), "%s", cl->name);
        snprintf(p->alias, sizeof(p->alias), "%s", cl->alias ? cl->alias : "");
        if ((err = add_inst(p, m, msg, msglen)) != ORCH_OK ||
            (err = add_inst(p, t, msg, msglen)) != ORCH_OK)
            return err;
        for (size_t i = 0; i < m->nreplicas; i++) {
            if (m->replicas[i] == t)
                continue;
            if ((err = add_inst(p, m->replicas[i], msg, msglen)) != ORCH_OK)
                return err;
            add_link(p, p->n - 1, 1);
        }
        add_link(p, 0, 1);
        p->waiter = 1;
        p->waited = 0;
        p->prog = prog_takeover;
        p->record = true;
        return ORCH_OK;
    }
    case OPERATION_SET_WRITEABLE:
    case OPERATION_STOP_REPLICA:
    case OPERATION_START_REPLICA:
    case OPERATION_RESTART_REPLICA:
    case OPERATION_SET_READ_ONLY:
        if ((err = add_inst(p, in, msg, msglen)) != ORCH_OK)
            return err;
        p->prog = prog_single;
        if (req->kind == OPERATION_START_REPLICA || req->kind == OPERATION_RESTART_REPLICA) {
            /* answered once both threads run (or with the reason they do not) */
            if (!in->has_master)
                return orch_fail(msg, msglen, ORCH_ERR_REFUSED, "%s is not a replica", in->name);
            add_link(p, 0, LINK_ANY);
            p->prog = req->kind == OPERATION_START_REPLICA ? prog_start : prog_restart;
        }
        snprintf(p->summary, sizeof(p->summary), "%s: %s done", in->name,
                 operation_kind_name(req->kind));
        return ORCH_OK;
    default:
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "unknown operation %d", (int)req->kind);
    }
}

static void on_start(evutil_socket_t fd, short what, void *arg)
{
    op *p = arg;
    note(p, ORCH_LOG_NOTICE, "ORCH-OPERATION-START", "by %s at epoch %llu%s%s", p->owner,
         (unsigned long long)p->epoch, p->reason[0] ? ": " : "", p->reason);
    if (p->kind == OPERATION_GRACEFUL_TAKEOVER) {
        orch_sbuf b = {0};
        orch_sbuf_str(&b, "INSERT INTO recovery (uid, cluster, cluster_alias, failed_host, "
                          "failed_port, analysis, description, state, node, epoch, started_at, "
                          "acknowledged, acknowledged_at, acknowledged_by, acknowledged_comment) "
                          "VALUES (");
        store_sql_string(&b, p->uid);
        orch_sbuf_str(&b, ", ");
        store_sql_string(&b, p->cluster);
        orch_sbuf_str(&b, ", '', ");
        store_sql_string(&b, p->inst[0].key.host);
        orch_sbuf_fmt(&b, ", %u, 'GracefulMasterTakeover', ", p->inst[0].key.port);
        store_sql_string(&b, p->reason);
        orch_sbuf_str(&b, ", 'running', ");
        store_sql_string(&b, p->o->node);
        orch_sbuf_fmt(&b, ", %llu, NOW(6), 1, NOW(6), 'orch', ", (unsigned long long)p->epoch);
        store_sql_string(&b, "planned: does not block recoveries");
        orch_sbuf_str(&b, ")");
        record_stmt(p, orch_sbuf_finish(&b)); /* the row first, then the steps */
        note(p, ORCH_LOG_NOTICE, "ORCH-TAKEOVER-START", "%s hands over to %s", p->inst[0].name,
             p->inst[1].name);
    }
    p->pc = 0;
    run_step(p); /* S_LOCK */
    if (p->pending == 0)
        advance(p);
}

orch_err operation_request(operations *o, const operation_req *req, operation_done_fn done,
                           void *arg, char *msg, size_t msglen)
{
    if (o == NULL || req == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no request");
    if (!leading(o))
        return orch_fail(msg, msglen, ORCH_ERR_STATE, "this node is not the leader");
    registry_refresh(o->d.reg);
    op *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    p->o = o;
    p->kind = req->kind;
    p->started_ms = orch_mono_ms();
    p->epoch = election_leader_epoch(o->d.el, orch_mono_ms());
    uint8_t rnd[6];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    snprintf(p->uid, sizeof(p->uid), "op-%llx-%02x%02x%02x%02x", (unsigned long long)orch_wall_ms(),
             rnd[0], rnd[1], rnd[2], rnd[3]);
    snprintf(p->owner, sizeof(p->owner), "%s", req->owner ? req->owner : "orch");
    snprintf(p->reason, sizeof(p->reason), "%s%s%s", operation_kind_name(req->kind),
             req->reason && req->reason[0] ? ": " : "", req->reason ? req->reason : "");
    orch_err err = plan(p, req, msg, msglen);
    if (err != ORCH_OK) {
        char who[ORCH_KEY_STRLEN];
        orch_log(ORCH_LOG_WARN, "ORCH-OPERATION-REFUSED",
                 orch_key_format(&req->instance, who, sizeof(who)), "%s refused: %s",
                 operation_kind_name(req->kind), msg);
        op_free(p);
        return err;
    }
    p->timer = evtimer_new(o->d.base, on_verify_timer, p);
    if (p->timer == NULL) {
        op_free(p);
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot create a timer");
    }
    p->done = done;
    p->arg = arg;
    p->next = o->active;
    o->active = p;
    /* started from the loop, so that done never runs inside this call */
    if (event_base_once(o->d.base, -1, EV_TIMEOUT, on_start, p, NULL) != 0) {
        unlink_op(p);
        op_free(p);
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot schedule the operation");
    }
    return ORCH_OK;
}

size_t operations_active(const operations *o)
{
    size_t n = 0;
    for (const op *p = o ? o->active : NULL; p != NULL; p = p->next)
        n++;
    return n;
}

operations *operations_new(const recovery_deps *deps, const char *node, int64_t command_timeout_ms,
                           int64_t wait_gtid_timeout_ms)
{
    operations *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->d = *deps;
    snprintf(o->node, sizeof(o->node), "%s", node ? node : "");
    o->command_timeout_ms = command_timeout_ms > 0 ? command_timeout_ms : 5000;
    o->wait_gtid_timeout_ms = wait_gtid_timeout_ms > 0 ? wait_gtid_timeout_ms : 10000;
    o->stale_after_ms = 5000;
    return o;
}

void operations_set_takeover_hooks(operations *o, const orch_strlist *pre, const orch_strlist *post,
                                   int64_t timeout_ms)
{
    if (o == NULL)
        return;
    o->pre_takeover = pre;
    o->post_takeover = post;
    o->hook_timeout_ms = timeout_ms;
}

void operations_set_stale_after_ms(operations *o, int64_t stale_after_ms)
{
    if (o != NULL && stale_after_ms > 0)
        o->stale_after_ms = stale_after_ms;
}

void operations_free(operations *o)
{
    if (o == NULL)
        return;
    op *p = o->active;
    while (p != NULL) {
        op *next = p->next;
        /* the loop is gone: a requester waiting (the API) lets go of its context */
        if (p->done != NULL)
            p->done(p->arg, &(operation_result){
                                .message = "the coordinator stopped before the operation ended"});
        op_free(p);
        p = next;
    }
    free(o);
}
