/*
 * orch-backendcheck: drives the coordinator's store and election against a
 * real backend from the command line, for system tests and for operators
 * checking a backend before pointing coordinators at it. It runs them exactly
 * as the coordinator does: a libevent loop on the main thread, the store and
 * election threads beside it. Output is one JSON object per line on stdout;
 * logs go to stderr.
 *
 *   elect            take part in the election; print the state every
 *                    --print-ms and at every change of this node's leadership
 *   migrate          apply the schema migrations; print the version
 *   write-instances  submit --count rows (--rounds versions of each), wait
 *                    until the store has written them, print figures
 *   op KIND          one operator write (begin-downtime, end-downtime,
 *                    begin-maintenance, end-maintenance, register-candidate,
 *                    end-candidate, set-alias, set-setting)
 *   operator-state   print the operator snapshot the loop would take
 *
 * SIGTERM or SIGINT stops any of them cleanly (a leader releases its lease).
 */
#include "clock.h"
#include "election.h"
#include "key.h"
#include "log.h"
#include "store.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <jansson.h>
#include <mysql.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: orch-backendcheck COMMAND [options]\n"
    "Backend: --host H --port P | --socket PATH, --user U --password PW [--database orch]\n"
    "         [--node NAME] [--log-level LEVEL]\n"
    "Commands:\n"
    "  elect [--api-url URL] [--lease-ms 3000] [--interval-ms 500] [--margin-ms 1000]\n"
    "        [--seconds S (0: until SIGTERM)] [--print-ms 1000] [--no-migrate]\n"
    "  migrate\n"
    "  write-instances --count N [--rounds R] [--write-interval-ms MS] [--queue-max N]\n"
    "        [--last-seen | --only-last-seen] [--gate-closed] [--host-prefix P] [--report-bytes B] "
    "[--timeout-s S] "
    "[--hold-ms MS]\n"
    "  op KIND --instance HOST:PORT [--duration-s S] [--owner O] [--reason R] [--rule R]\n"
    "        | op set-alias --cluster C [--alias A] | op set-setting --name N [--value V]\n"
    "     KIND: begin-downtime end-downtime begin-maintenance end-maintenance\n"
    "           register-candidate end-candidate\n"
    "  operator-state [--setting NAME ...] [--timeout-s S]\n";

typedef struct opts {
    const char *command, *op_kind;
    const char *host, *socket, *user, *password, *database, *node, *api_url;
    long long port;
    long long lease_ms, interval_ms, margin_ms, seconds, print_ms;
    bool no_migrate;
    long long count, rounds, write_interval_ms, queue_max, report_bytes, timeout_s, hold_ms;
    bool last_seen, only_last_seen, gate_closed;
    const char *host_prefix;
    const char *instance, *owner, *reason, *rule, *cluster, *alias, *name, *value;
    bool have_value;
    long long duration_s;
    const char *settings[16];
    size_t nsettings;
} opts;

static bool parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Prints one JSON object as a line and flushes; takes the reference. */
static void emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

static orch_db_conf db_conf(const opts *o)
{
    return (orch_db_conf){.socket = o->socket,
                          .host = o->host,
                          .port = (unsigned)o->port,
                          .user = o->user,
                          .password = o->password,
                          .database = o->database,
                          .connect_timeout_s = 1,
                          .rw_timeout_s = 2};
}

/* ---- the loop shared by the commands --------------------------------------------------- */

typedef struct ctx {
    const opts *o;
    struct event_base *base;
    struct event *ev_term, *ev_int, *ev_tick, *ev_change;
    election *el;
    store *st;
    int64_t started_ms, deadline_ms;
    int rc;
    /* write-instances */
    int64_t submitted_ms, progress_ms;
    bool submitted;
    /* op */
    bool op_done;
} ctx;

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    ctx *c = arg;
    orch_log(ORCH_LOG_INFO, NULL, NULL, "signal %d: stopping", (int)fd);
    event_base_loopbreak(c->base);
}

static bool loop_setup(ctx *c, const opts *o, int64_t tick_ms,
                       void (*tick)(evutil_socket_t, short, void *))
{
    c->o = o;
    c->base = event_base_new();
    if (c->base == NULL)
        return false;
    c->ev_term = evsignal_new(c->base, SIGTERM, on_signal, c);
    c->ev_int = evsignal_new(c->base, SIGINT, on_signal, c);
    if (c->ev_term == NULL || c->ev_int == NULL || event_add(c->ev_term, NULL) != 0 ||
        event_add(c->ev_int, NULL) != 0)
        return false;
    if (tick != NULL) {
        struct timeval tv = {.tv_sec = tick_ms / 1000, .tv_usec = (tick_ms % 1000) * 1000};
        c->ev_tick = event_new(c->base, -1, EV_PERSIST, tick, c);
        if (c->ev_tick == NULL || event_add(c->ev_tick, &tv) != 0)
            return false;
    }
    c->started_ms = orch_mono_ms();
    return true;
}

static void loop_teardown(ctx *c)
{
    if (c->ev_term)
        event_free(c->ev_term);
    if (c->ev_int)
        event_free(c->ev_int);
    if (c->ev_tick)
        event_free(c->ev_tick);
    if (c->ev_change)
        event_free(c->ev_change);
    if (c->base)
        event_base_free(c->base);
}

static bool gate_closed(void *arg)
{
    return false; /* --gate-closed: as if this node never led */
}

static store *start_store(ctx *c, int64_t write_interval_ms, size_t queue_max)
{
    const opts *o = c->o;
    char msg[512];
    store_conf sc = {.db = db_conf(o),
                     .node = o->node,
                     .write_interval_ms = write_interval_ms,
                     .operator_refresh_ms = 200,
                     .queue_max = queue_max,
                     .write_gate = o->gate_closed ? gate_closed : NULL};
    store *s = store_start(&sc, c->base, msg, sizeof(msg));
    if (s == NULL) {
        json_t *j = json_pack("{s:s, s:s}", "event", "error", "error", msg);
        emit(j);
    }
    return s;
}

/* ---- elect ------------------------------------------------------------------------------ */

static void print_election(ctx *c, const char *event)
{
    election_status st;
    int64_t now = orch_mono_ms();
    election_status_get(c->el, &st);
    json_t *nodes = json_array();
    for (size_t i = 0; i < st.nnodes; i++)
        json_array_append_new(nodes, json_pack("{s:s, s:s}", "node", st.nodes[i].node, "api_url",
                                               st.nodes[i].api_url));
    json_t *j = json_pack(
        "{s:s, s:I, s:s, s:b, s:I, s:I, s:s, s:s, s:I, s:b, s:s, s:I, s:I, s:I, s:I, s:o}", "event",
        event, "t", (json_int_t)now, "node", st.node, "leader", st.leader, "epoch",
        (json_int_t)st.epoch, "my_epoch", (json_int_t)election_leader_epoch(c->el, now),
        "leader_node", st.leader_node, "leader_api_url", st.leader_api_url, "valid_until",
        (json_int_t)st.valid_until_ms, "backend_ok", st.backend_ok, "error", st.last_error,
        "rtt_us", (json_int_t)st.last_rtt_us, "rounds", (json_int_t)st.rounds, "rounds_failed",
        (json_int_t)st.rounds_failed, "changes", (json_int_t)st.changes, "nodes", nodes);
    election_status_fini(&st);
    if (j != NULL)
        emit(j);
}

static void elect_tick(evutil_socket_t fd, short what, void *arg)
{
    ctx *c = arg;
    print_election(c, "tick");
    if (c->deadline_ms > 0 && orch_mono_ms() >= c->deadline_ms)
        event_base_loopbreak(c->base);
}

static void elect_change(evutil_socket_t fd, short what, void *arg)
{
    print_election(arg, "change");
}

/* Election thread: wake the loop. */
static void elect_notify(void *arg)
{
    ctx *c = arg;
    event_active(c->ev_change, EV_READ, 0);
}

static int cmd_elect(const opts *o)
{
    ctx c = {0};
    char msg[512];
    orch_db_conf db = db_conf(o);
    if (!o->no_migrate && store_migrate(&db, o->node, NULL, NULL, msg, sizeof(msg)) != ORCH_OK) {
        emit(json_pack("{s:s, s:s}", "event", "error", "error", msg));
        return ORCH_EXIT_FAILURE;
    }
    if (!loop_setup(&c, o, o->print_ms, elect_tick)) {
        loop_teardown(&c);
        return ORCH_EXIT_FAILURE;
    }
    c.ev_change = event_new(c.base, -1, 0, elect_change, &c);
    election_conf ec = {.db = db_conf(o),
                        .node = o->node,
                        .api_url = o->api_url,
                        .interval_ms = o->interval_ms,
                        .lease_ms = o->lease_ms,
                        .margin_ms = o->margin_ms};
    c.el = c.ev_change ? election_start(&ec, elect_notify, &c, msg, sizeof(msg)) : NULL;
    if (c.el == NULL) {
        emit(json_pack("{s:s, s:s}", "event", "error", "error", msg));
        loop_teardown(&c);
        return ORCH_EXIT_USAGE;
    }
    c.deadline_ms = o->seconds > 0 ? c.started_ms + o->seconds * 1000 : 0;
    print_election(&c, "start");
    event_base_dispatch(c.base);
    int64_t t0 = orch_mono_ms();
    election_free(c.el);
    emit(json_pack("{s:s, s:I, s:I}", "event", "stopped", "t", (json_int_t)orch_mono_ms(),
                   "stop_ms", (json_int_t)(orch_mono_ms() - t0)));
    loop_teardown(&c);
    return ORCH_EXIT_OK;
}

/* ---- migrate ------------------------------------------------------------------------------ */

static int cmd_migrate(const opts *o)
{
    char msg[512];
    int version = 0, applied = 0;
    orch_db_conf db = db_conf(o);
    int64_t t0 = orch_mono_ms();
    if (store_migrate(&db, o->node, &version, &applied, msg, sizeof(msg)) != ORCH_OK) {
        emit(json_pack("{s:s, s:s}", "event", "error", "error", msg));
        return ORCH_EXIT_FAILURE;
    }
    emit(json_pack("{s:s, s:i, s:i, s:i, s:I}", "event", "migrated", "schema_version", version,
                   "applied", applied, "latest", store_schema_latest(), "elapsed_ms",
                   (json_int_t)(orch_mono_ms() - t0)));
    return ORCH_EXIT_OK;
}

/* ---- write-instances ---------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        fputs("out of memory\n", stderr);
        exit(ORCH_EXIT_FAILURE);
    }
    return d;
}

static store_instance_row *make_rows(const opts *o, long long round)
{
    store_instance_row *rows = calloc((size_t)o->count, sizeof(*rows));
    char *report = malloc((size_t)o->report_bytes + 64);
    if (rows == NULL || report == NULL) {
        fputs("out of memory\n", stderr);
        exit(ORCH_EXIT_FAILURE);
    }
    for (long long i = 0; i < o->count; i++) {
        store_instance_row *r = &rows[i];
        char host[200], buf[64];
        snprintf(host, sizeof(host), "%s%lld.example", o->host_prefix, i / 10);
        if (orch_key_make(host, 3306 + i % 10, &r->key, NULL, 0) != ORCH_OK) {
            fprintf(stderr, "bad host prefix '%s'\n", o->host_prefix);
            exit(ORCH_EXIT_USAGE);
        }
        snprintf(buf, sizeof(buf), "%s0.example:3306", o->host_prefix);
        r->cluster = xstrdup(buf);
        r->master_host = i == 0 ? NULL : xstrdup("db-master.example");
        r->master_port = i == 0 ? 0 : 3306;
        snprintf(buf, sizeof(buf), "round-%lld", round);
        r->state = xstrdup(buf);
        r->read_only = i != 0;
        r->server_id = (uint32_t)(1000 + i);
        r->version = xstrdup("10.11.19-MariaDB");
        r->data_center = xstrdup(i % 2 ? "dc1" : "dc2");
        r->promotion_rule = xstrdup("neutral");
        int n = snprintf(report, (size_t)o->report_bytes + 64,
                         "{\"round\":%lld,\"i\":%lld,\"pad\":\"", round, i);
        while (n < o->report_bytes)
            report[n++] = 'x';
        snprintf(report + n, 3, "\"}");
        r->report_json = xstrdup(report);
        r->last_seen_wall_ms = orch_wall_ms();
    }
    free(report);
    return rows;
}

static void write_tick(evutil_socket_t fd, short what, void *arg)
{
    ctx *c = arg;
    const opts *o = c->o;
    int64_t now = orch_mono_ms();
    if (!c->submitted) {
        if (now - c->started_ms < o->hold_ms)
            return;
        c->submitted_ms = now;
        for (long long r = 1; r <= o->rounds && !o->only_last_seen; r++)
            store_submit_instances(c->st, make_rows(o, r), (size_t)o->count);
        if (o->last_seen || o->only_last_seen) {
            store_last_seen *v = calloc((size_t)o->count, sizeof(*v));
            if (v == NULL)
                exit(ORCH_EXIT_FAILURE);
            for (long long i = 0; i < o->count; i++) {
                char host[200];
                snprintf(host, sizeof(host), "%s%lld.example", o->host_prefix, i / 10);
                if (orch_key_make(host, 3306 + i % 10, &v[i].key, NULL, 0) != ORCH_OK)
                    exit(ORCH_EXIT_USAGE);
                v[i].wall_ms = orch_wall_ms() + 60000; /* visibly later than any row */
            }
            store_submit_last_seen(c->st, v, (size_t)o->count);
            free(v);
        }
        c->submitted = true;
        store_status st;
        store_status_get(c->st, &st);
        emit(json_pack("{s:s, s:I, s:I, s:I}", "event", "submitted", "t", (json_int_t)now,
                       "queue_depth", (json_int_t)st.queue_depth, "dropped",
                       (json_int_t)st.rows_dropped));
        return;
    }
    store_status st;
    store_status_get(c->st, &st);
    bool drained = st.queue_depth == 0;
    bool timeout = now - c->submitted_ms > o->timeout_s * 1000;
    if (!drained && !timeout) {
        if (now - c->progress_ms >= 500) { /* for tests that wait on the store's state */
            c->progress_ms = now;
            emit(json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "event", "progress", "t",
                           (json_int_t)now, "queue_depth", (json_int_t)st.queue_depth, "written",
                           (json_int_t)st.rows_written, "write_failures",
                           (json_int_t)st.write_failures, "backend_ok", st.backend_ok));
        }
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "event", json_string(drained ? "written" : "timeout"));
    json_object_set_new(j, "drained", json_boolean(drained));
    json_object_set_new(j, "count", json_integer(o->count));
    json_object_set_new(j, "submitted", json_integer(o->count * o->rounds));
    json_object_set_new(j, "written", json_integer((json_int_t)st.rows_written));
    json_object_set_new(j, "coalesced", json_integer((json_int_t)st.rows_coalesced));
    json_object_set_new(j, "dropped", json_integer((json_int_t)st.rows_dropped));
    json_object_set_new(j, "discarded", json_integer((json_int_t)st.rows_discarded));
    json_object_set_new(j, "write_failures", json_integer((json_int_t)st.write_failures));
    json_object_set_new(j, "queue_depth", json_integer((json_int_t)st.queue_depth));
    json_object_set_new(j, "elapsed_ms", json_integer(now - c->submitted_ms));
    json_object_set_new(j, "backend_ok", json_boolean(st.backend_ok));
    json_object_set_new(j, "error", json_string(st.last_error));
    json_object_set_new(j, "rtt_us", json_integer(st.last_rtt_us));
    json_object_set_new(j, "schema_version", json_integer(st.schema_version));
    emit(j);
    c->rc = drained ? ORCH_EXIT_OK : ORCH_EXIT_FAILURE;
    event_base_loopbreak(c->base);
}

static int cmd_write_instances(const opts *o)
{
    ctx c = {0};
    c.rc = ORCH_EXIT_FAILURE;
    if (!loop_setup(&c, o, 10, write_tick)) {
        loop_teardown(&c);
        return ORCH_EXIT_FAILURE;
    }
    c.st = start_store(&c, o->write_interval_ms, (size_t)o->queue_max);
    if (c.st != NULL)
        event_base_dispatch(c.base);
    store_stop(c.st);
    loop_teardown(&c);
    return c.rc;
}

/* ---- op ---------------------------------------------------------------------------------- */

static pthread_t loop_thread;

static void op_done(orch_err result, const char *message, void *arg)
{
    ctx *c = arg;
    emit(json_pack("{s:s, s:s, s:s, s:b}", "event", "done", "result", orch_strerror(result),
                   "message", message, "on_loop_thread",
                   pthread_equal(pthread_self(), loop_thread) != 0));
    c->rc = result == ORCH_OK ? ORCH_EXIT_OK : ORCH_EXIT_FAILURE;
    c->op_done = true;
    event_base_loopbreak(c->base);
}

static const struct {
    const char *name;
    store_op_kind kind;
} op_kinds[] = {
    {"begin-downtime", STORE_OP_BEGIN_DOWNTIME},
    {"end-downtime", STORE_OP_END_DOWNTIME},
    {"begin-maintenance", STORE_OP_BEGIN_MAINTENANCE},
    {"end-maintenance", STORE_OP_END_MAINTENANCE},
    {"register-candidate", STORE_OP_REGISTER_CANDIDATE},
    {"end-candidate", STORE_OP_END_CANDIDATE},
    {"set-alias", STORE_OP_SET_CLUSTER_ALIAS},
    {"set-setting", STORE_OP_SET_GLOBAL_SETTING},
};

static int cmd_op(const opts *o)
{
    store_op op = {.kind = STORE_OP__COUNT};
    for (size_t i = 0; i < sizeof(op_kinds) / sizeof(op_kinds[0]); i++) {
        if (o->op_kind != NULL && strcmp(o->op_kind, op_kinds[i].name) == 0)
            op.kind = op_kinds[i].kind;
    }
    if (op.kind == STORE_OP__COUNT) {
        fprintf(stderr, "op: unknown kind '%s'\n%s", o->op_kind ? o->op_kind : "", usage);
        return ORCH_EXIT_USAGE;
    }
    char msg[512];
    if (o->instance != NULL && orch_key_parse(o->instance, 3306, &op.key, msg, sizeof(msg))) {
        fprintf(stderr, "op: --instance: %s\n", msg);
        return ORCH_EXIT_USAGE;
    }
    op.owner = o->owner;
    op.reason = o->reason;
    op.duration_ms = o->duration_s * 1000;
    op.rule = o->rule;
    op.cluster = o->cluster;
    op.alias = o->alias;
    op.name = o->name;
    op.value = o->have_value ? o->value : NULL;

    ctx c = {0};
    c.rc = ORCH_EXIT_FAILURE;
    if (!loop_setup(&c, o, 0, NULL)) {
        loop_teardown(&c);
        return ORCH_EXIT_FAILURE;
    }
    c.st = start_store(&c, 1000, 0);
    if (c.st != NULL) {
        if (store_submit_op(c.st, &op, op_done, &c, msg, sizeof(msg)) != ORCH_OK) {
            emit(json_pack("{s:s, s:s}", "event", "refused", "error", msg));
            c.rc = ORCH_EXIT_USAGE;
        } else {
            event_base_dispatch(c.base);
        }
    }
    store_stop(c.st);
    loop_teardown(&c);
    return c.rc;
}

/* ---- operator-state ---------------------------------------------------------------------- */

static const char *rule_name(int rule)
{
    switch (rule) {
    case ORCH__PROMOTION_RULE__PROMOTION_PREFER:
        return "prefer";
    case ORCH__PROMOTION_RULE__PROMOTION_NEUTRAL:
        return "neutral";
    case ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT:
        return "prefer_not";
    case ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT:
        return "must_not";
    default:
        return NULL;
    }
}

static void state_tick(evutil_socket_t fd, short what, void *arg)
{
    ctx *c = arg;
    reg_operator_row *rows = NULL;
    reg_alias_row *aliases = NULL;
    size_t n = 0, na = 0;
    if (!store_take_operator_state(c->st, &rows, &n, &aliases, &na)) {
        if (orch_mono_ms() - c->started_ms > c->o->timeout_s * 1000) {
            emit(json_pack("{s:s}", "event", "timeout"));
            event_base_loopbreak(c->base);
        }
        return;
    }
    json_t *inst = json_array(), *al = json_array(), *settings = json_object();
    for (size_t i = 0; i < n; i++) {
        char key[ORCH_KEY_STRLEN];
        const reg_operator *op = &rows[i].op;
        const char *rule = rule_name(op->promotion_override);
        json_array_append_new(
            inst, json_pack("{s:s, s:I, s:s?, s:s?, s:I, s:s?, s:s?, s:s?}", "key",
                            orch_key_format(&rows[i].key, key, sizeof(key)), "downtime_until",
                            (json_int_t)op->downtime_until_ms, "downtime_owner", op->downtime_owner,
                            "downtime_reason", op->downtime_reason, "maintenance_until",
                            (json_int_t)op->maintenance_until_ms, "maintenance_owner",
                            op->maintenance_owner, "maintenance_reason", op->maintenance_reason,
                            "promotion_override", rule));
    }
    for (size_t i = 0; i < na; i++)
        json_array_append_new(
            al, json_pack("{s:s, s:s}", "cluster", aliases[i].cluster, "alias", aliases[i].alias));
    for (size_t i = 0; i < c->o->nsettings; i++) {
        char buf[1024];
        if (store_get_setting(c->st, c->o->settings[i], buf, sizeof(buf)))
            json_object_set_new(settings, c->o->settings[i], json_string(buf));
    }
    store_operator_state_free(rows, n, aliases, na);
    emit(json_pack("{s:s, s:I, s:I, s:o, s:o, s:o}", "event", "snapshot", "wall_ms",
                   (json_int_t)orch_wall_ms(), "t", (json_int_t)orch_mono_ms(), "instances", inst,
                   "aliases", al, "settings", settings));
    c->rc = ORCH_EXIT_OK;
    event_base_loopbreak(c->base);
}

static int cmd_operator_state(const opts *o)
{
    ctx c = {0};
    c.rc = ORCH_EXIT_FAILURE;
    if (!loop_setup(&c, o, 10, state_tick)) {
        loop_teardown(&c);
        return ORCH_EXIT_FAILURE;
    }
    c.st = start_store(&c, 1000, 0);
    if (c.st != NULL)
        event_base_dispatch(c.base);
    store_stop(c.st);
    loop_teardown(&c);
    return c.rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

enum {
    O_HOST = 256,
    O_PORT,
    O_SOCKET,
    O_USER,
    O_PASSWORD,
    O_DATABASE,
    O_NODE,
    O_API_URL,
    O_LEASE,
    O_INTERVAL,
    O_MARGIN,
    O_SECONDS,
    O_PRINT,
    O_NO_MIGRATE,
    O_COUNT,
    O_ROUNDS,
    O_WRITE_INTERVAL,
    O_QUEUE_MAX,
    O_LAST_SEEN,
    O_ONLY_LAST_SEEN,
    O_GATE_CLOSED,
    O_HOST_PREFIX,
    O_REPORT_BYTES,
    O_TIMEOUT,
    O_HOLD,
    O_INSTANCE,
    O_DURATION,
    O_OWNER,
    O_REASON,
    O_RULE,
    O_CLUSTER,
    O_ALIAS,
    O_NAME,
    O_VALUE,
    O_SETTING,
    O_LOG_LEVEL,
    O_HELP,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    {"socket", required_argument, NULL, O_SOCKET},
    {"user", required_argument, NULL, O_USER},
    {"password", required_argument, NULL, O_PASSWORD},
    {"database", required_argument, NULL, O_DATABASE},
    {"node", required_argument, NULL, O_NODE},
    {"api-url", required_argument, NULL, O_API_URL},
    {"lease-ms", required_argument, NULL, O_LEASE},
    {"interval-ms", required_argument, NULL, O_INTERVAL},
    {"margin-ms", required_argument, NULL, O_MARGIN},
    {"seconds", required_argument, NULL, O_SECONDS},
    {"print-ms", required_argument, NULL, O_PRINT},
    {"no-migrate", no_argument, NULL, O_NO_MIGRATE},
    {"count", required_argument, NULL, O_COUNT},
    {"rounds", required_argument, NULL, O_ROUNDS},
    {"write-interval-ms", required_argument, NULL, O_WRITE_INTERVAL},
    {"queue-max", required_argument, NULL, O_QUEUE_MAX},
    {"last-seen", no_argument, NULL, O_LAST_SEEN},
    {"only-last-seen", no_argument, NULL, O_ONLY_LAST_SEEN},
    {"gate-closed", no_argument, NULL, O_GATE_CLOSED},
    {"host-prefix", required_argument, NULL, O_HOST_PREFIX},
    {"report-bytes", required_argument, NULL, O_REPORT_BYTES},
    {"timeout-s", required_argument, NULL, O_TIMEOUT},
    {"hold-ms", required_argument, NULL, O_HOLD},
    {"instance", required_argument, NULL, O_INSTANCE},
    {"duration-s", required_argument, NULL, O_DURATION},
    {"owner", required_argument, NULL, O_OWNER},
    {"reason", required_argument, NULL, O_REASON},
    {"rule", required_argument, NULL, O_RULE},
    {"cluster", required_argument, NULL, O_CLUSTER},
    {"alias", required_argument, NULL, O_ALIAS},
    {"name", required_argument, NULL, O_NAME},
    {"value", required_argument, NULL, O_VALUE},
    {"setting", required_argument, NULL, O_SETTING},
    {"log-level", required_argument, NULL, O_LOG_LEVEL},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static int bad(const char *opt, const char *val)
{
    fprintf(stderr, "orch-backendcheck: bad value '%s' for --%s\n%s", val, opt, usage);
    return ORCH_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static char default_node[64];
    opts o = {.host = "127.0.0.1",
              .port = 3306,
              .user = "orch",
              .database = "orch",
              .lease_ms = 3000,
              .interval_ms = 500,
              .margin_ms = 1000,
              .print_ms = 1000,
              .rounds = 1,
              .write_interval_ms = 200,
              .report_bytes = 300,
              .timeout_s = 60,
              .host_prefix = "inst",
              .duration_s = 3600};
    snprintf(default_node, sizeof(default_node), "check-%ld", (long)getpid());
    o.node = default_node;
    orch_log_set_program("orch-backendcheck");
    if (argc < 2 || argv[1][0] == '-') {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? ORCH_EXIT_USAGE : ORCH_EXIT_OK;
    }
    o.command = argv[1];
    int first = 2;
    if (strcmp(o.command, "op") == 0) {
        if (argc < 3) {
            fputs(usage, stderr);
            return ORCH_EXIT_USAGE;
        }
        o.op_kind = argv[2];
        first = 3;
    }
    optind = first;
    int ch;
    while ((ch = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        const char *a = optarg;
        switch (ch) {
        case O_HOST:
            o.host = a;
            break;
        case O_PORT:
            if (!parse_ll(a, 1, 65535, &o.port))
                return bad("port", a);
            break;
        case O_SOCKET:
            o.socket = a;
            break;
        case O_USER:
            o.user = a;
            break;
        case O_PASSWORD:
            o.password = a;
            break;
        case O_DATABASE:
            o.database = a;
            break;
        case O_NODE:
            o.node = a;
            break;
        case O_API_URL:
            o.api_url = a;
            break;
        case O_LEASE:
            if (!parse_ll(a, 1, 3600000, &o.lease_ms))
                return bad("lease-ms", a);
            break;
        case O_INTERVAL:
            if (!parse_ll(a, 1, 3600000, &o.interval_ms))
                return bad("interval-ms", a);
            break;
        case O_MARGIN:
            if (!parse_ll(a, 1, 3600000, &o.margin_ms))
                return bad("margin-ms", a);
            break;
        case O_SECONDS:
            if (!parse_ll(a, 0, 86400, &o.seconds))
                return bad("seconds", a);
            break;
        case O_PRINT:
            if (!parse_ll(a, 10, 60000, &o.print_ms))
                return bad("print-ms", a);
            break;
        case O_NO_MIGRATE:
            o.no_migrate = true;
            break;
        case O_COUNT:
            if (!parse_ll(a, 1, 10000000, &o.count))
                return bad("count", a);
            break;
        case O_ROUNDS:
            if (!parse_ll(a, 1, 100, &o.rounds))
                return bad("rounds", a);
            break;
        case O_WRITE_INTERVAL:
            if (!parse_ll(a, 1, 3600000, &o.write_interval_ms))
                return bad("write-interval-ms", a);
            break;
        case O_QUEUE_MAX:
            if (!parse_ll(a, 1, 100000000, &o.queue_max))
                return bad("queue-max", a);
            break;
        case O_LAST_SEEN:
            o.last_seen = true;
            break;
        case O_ONLY_LAST_SEEN:
            o.only_last_seen = true;
            break;
        case O_GATE_CLOSED:
            o.gate_closed = true;
            break;
        case O_HOST_PREFIX:
            o.host_prefix = a;
            break;
        case O_REPORT_BYTES:
            if (!parse_ll(a, 0, 10000000, &o.report_bytes))
                return bad("report-bytes", a);
            break;
        case O_TIMEOUT:
            if (!parse_ll(a, 1, 86400, &o.timeout_s))
                return bad("timeout-s", a);
            break;
        case O_HOLD:
            if (!parse_ll(a, 0, 3600000, &o.hold_ms))
                return bad("hold-ms", a);
            break;
        case O_INSTANCE:
            o.instance = a;
            break;
        case O_DURATION:
            if (!parse_ll(a, 0, 10LL * 366 * 86400, &o.duration_s))
                return bad("duration-s", a);
            break;
        case O_OWNER:
            o.owner = a;
            break;
        case O_REASON:
            o.reason = a;
            break;
        case O_RULE:
            o.rule = a;
            break;
        case O_CLUSTER:
            o.cluster = a;
            break;
        case O_ALIAS:
            o.alias = a;
            break;
        case O_NAME:
            o.name = a;
            break;
        case O_VALUE:
            o.value = a;
            o.have_value = true;
            break;
        case O_SETTING:
            if (o.nsettings == sizeof(o.settings) / sizeof(o.settings[0]))
                return bad("setting", a);
            o.settings[o.nsettings++] = a;
            break;
        case O_LOG_LEVEL: {
            orch_log_level lvl;
            if (orch_log_level_parse(a, &lvl) != ORCH_OK)
                return bad("log-level", a);
            orch_log_set_level(lvl);
            break;
        }
        case O_HELP:
            fputs(usage, stdout);
            return ORCH_EXIT_OK;
        default:
            fputs(usage, stderr);
            return ORCH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "orch-backendcheck: unexpected argument '%s'\n%s", argv[optind], usage);
        return ORCH_EXIT_USAGE;
    }
    if (strcmp(o.command, "write-instances") == 0 && o.count == 0) {
        fprintf(stderr, "write-instances: --count is required\n");
        return ORCH_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The election thread wakes the loop with event_active(): the base needs locks. */
    if (evthread_use_pthreads() != 0 || mysql_library_init(0, NULL, NULL) != 0) {
        fputs("orch-backendcheck: cannot initialise libevent threads or the MySQL client\n",
              stderr);
        return ORCH_EXIT_FAILURE;
    }
    loop_thread = pthread_self();
    int rc;
    if (strcmp(o.command, "elect") == 0)
        rc = cmd_elect(&o);
    else if (strcmp(o.command, "migrate") == 0)
        rc = cmd_migrate(&o);
    else if (strcmp(o.command, "write-instances") == 0)
        rc = cmd_write_instances(&o);
    else if (strcmp(o.command, "op") == 0)
        rc = cmd_op(&o);
    else if (strcmp(o.command, "operator-state") == 0)
        rc = cmd_operator_state(&o);
    else {
        fprintf(stderr, "orch-backendcheck: unknown command '%s'\n%s", o.command, usage);
        rc = ORCH_EXIT_USAGE;
    }
    mysql_library_end();
    libevent_global_shutdown();
    return rc;
}
