/*
 * Tests of api.c against a real evhttp server on an ephemeral 127.0.0.1
 * port. The test drives the event base itself (event_base_loop with
 * EVLOOP_NONBLOCK) while a tiny blocking-socket client waits for the answer,
 * so everything runs on one thread, as on the coordinator's loop.
 *
 * Every route is called, with its error paths: unknown instances and
 * clusters (404), bad keys (400), unknown routes (404), other methods (405),
 * over-long URLs (414), HEAD, authentication (401/403) and the request
 * metrics. The recovery and operator-state routes run against a fake
 * api_backend that answers later, on the loop, as recovery.c and store.c do:
 * the analysis in the envelope, recover and force-master-failover (leader
 * only: 503 on a follower), audits and acknowledgements (the SQL they send),
 * operator writes (the store_op they submit), the read-only user's 403, and
 * clients that hang up, or an api_stop, while an answer is owed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api.h"
#include "clock.h"
#include "log.h"
#include "registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- fixture ------------------------------------------------------------------ */

/* One call to the fake backend, answered later from an event on the loop. */
typedef struct fake_call {
    enum { FC_RECOVER, FC_OP, FC_BATCH } kind;
    recovery_done_fn rdone;
    store_done_fn odone;
    store_rows_fn bdone;
    void *arg;
    char sql[4096]; /* FC_BATCH: the statement */
    bool answered;
} fake_call;

typedef struct fake {
    struct event *ev; /* answers every call not answered yet */
    fake_call calls[64];
    size_t ncalls;
    bool hold; /* answer only when the test says */
    const analysis_result *res;
    bool disabled;        /* the recoveries_disabled setting */
    orch_err recover_err; /* returned by recover at once when set */
    bool recover_ok;      /* the recovery's outcome */
    bool batch_fail;      /* batches fail (the backend is away) */
    orch_err op_result;   /* the operator write's outcome */
    /* what the last calls asked */
    orch_key recovered;
    orch_key candidate; /* port 0: none */
    bool force;
    char reason[256];
    store_op op;
    char op_owner[64], op_reason[128], op_rule[32], op_cluster[64], op_alias[64], op_name[64],
        op_value[16];
    bool op_value_null;
    char sql[4096];
} fake;

typedef struct fixture {
    struct event_base *base;
    registry *reg;
    metrics *m;
    api *a;
    uint16_t port;
    bool is_leader;
    int follower_answers;   /* when > 0: this many more "not the leader", then the leader */
    const char *leader_api; /* the leader's API URL a follower sees (NULL: http://b:3000) */
    bool backend_ok;
    api_node_info nodes[2];
    fake fk;
} fixture;

static json_t *fake_row(const char *const *kv)
{
    json_t *o = json_object();
    for (size_t k = 0; kv[k] != NULL; k += 2)
        json_object_set_new(o, kv[k], kv[k + 1] ? json_string(kv[k + 1]) : json_null());
    return o;
}

/* The rows a batch gets, by what it reads. */
static json_t *fake_rows(const char *sql)
{
    static const char *const rec[] = {"uid",
                                      "18f-abc",
                                      "cluster",
                                      "127.0.0.1:3301",
                                      "cluster_alias",
                                      "main",
                                      "failed_host",
                                      "127.0.0.1",
                                      "failed_port",
                                      "3301",
                                      "analysis",
                                      "DeadMaster",
                                      "description",
                                      "dead",
                                      "state",
                                      "succeeded",
                                      "successor_host",
                                      "127.0.0.1",
                                      "successor_port",
                                      "3303",
                                      "lost_replicas",
                                      "",
                                      "participating_replicas",
                                      "127.0.0.1:3302,127.0.0.1:3303",
                                      "node",
                                      "coord-a",
                                      "epoch",
                                      "42",
                                      "started_at",
                                      "2030-01-01 00:00:00.5",
                                      "ended_at",
                                      "2030-01-01 00:00:01.5",
                                      "is_successful",
                                      "1",
                                      "acknowledged",
                                      "0",
                                      "ordinal",
                                      "1",
                                      NULL};
    static const char *const step1[] = {
        "uid",  "18f-abc", "seq",     "1",          "at", "2030-01-01 00:00:00",
        "step", "lock",    "message", "DeadMaster", NULL};
    static const char *const step2[] = {
        "uid",  "18f-abc", "seq",     "2",        "at", "2030-01-01 00:00:01",
        "step", "promote", "message", "promoted", NULL};
    static const char *const det[] = {"id",          "12",
                                      "detected_at", "2030-01-01 00:00:00",
                                      "cluster",     "127.0.0.1:3301",
                                      "hostname",    "127.0.0.1",
                                      "port",        "3301",
                                      "analysis",    "DeadMaster",
                                      "node",        "coord-a",
                                      "epoch",       "42",
                                      NULL};
    json_t *rows = json_array();
    if (strstr(sql, "FROM recovery_step") != NULL) {
        json_array_append_new(rows, fake_row(step1));
        json_array_append_new(rows, fake_row(step2));
    } else if (strstr(sql, "FROM recovery r") != NULL) {
        json_array_append_new(rows, fake_row(rec));
    } else if (strstr(sql, "FROM failure_detection") != NULL) {
        json_array_append_new(rows, fake_row(det));
    } else {
        json_decref(rows);
        rows = NULL; /* an UPDATE */
    }
    return rows;
}

/* Answers every call not answered yet (and those their answers make). */
static void fake_answer(evutil_socket_t fd, short what, void *arg)
{
    fake *fk = arg;
    (void)fd;
    (void)what;
    for (size_t k = 0; k < fk->ncalls; k++) {
        fake_call *c = &fk->calls[k];
        if (c->answered)
            continue;
        c->answered = true;
        switch (c->kind) {
        case FC_RECOVER:
            c->rdone(c->arg, fk->recover_ok,
                     fk->recover_ok ? "recovered" : "no candidate: every replica is must_not",
                     "18f-abc");
            break;
        case FC_OP:
            c->odone(fk->op_result, fk->op_result == ORCH_OK ? "done" : "Lost connection", c->arg);
            break;
        case FC_BATCH:
            if (fk->batch_fail)
                c->bdone(ORCH_ERR_MYSQL, "Lost connection to MySQL server", NULL, 0, c->arg);
            else
                c->bdone(ORCH_OK, "", fake_rows(c->sql), strstr(c->sql, "UPDATE") ? 2 : 0, c->arg);
            break;
        }
    }
}

static fake_call *fake_push(fake *fk, int kind, void *arg)
{
    assert_true(fk->ncalls < sizeof(fk->calls) / sizeof(fk->calls[0]));
    fake_call *c = &fk->calls[fk->ncalls++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->arg = arg;
    if (!fk->hold)
        event_active(fk->ev, EV_TIMEOUT, 1);
    return c;
}

static const analysis_result *fake_analysis(void *arg)
{
    return ((fake *)arg)->res;
}

static orch_err fake_recover(void *arg, const recovery_req *req, recovery_done_fn done,
                             void *done_arg, char *msg, size_t msglen)
{
    fake *fk = arg;
    fk->recovered = req->failed;
    fk->force = req->force;
    fk->candidate = req->has_candidate ? req->candidate : (orch_key){0};
    snprintf(fk->reason, sizeof(fk->reason), "%s", req->reason);
    if (fk->recover_err != ORCH_OK) {
        snprintf(msg, msglen, "%s", "127.0.0.1:3301 is not seen as failed (NoProblem)");
        return fk->recover_err;
    }
    fake_push(fk, FC_RECOVER, done_arg)->rdone = done;
    return ORCH_OK;
}

static void copy_str(char *dst, size_t len, const char *s)
{
    snprintf(dst, len, "%s", s ? s : "");
}

static orch_err fake_submit_op(void *arg, const store_op *op, store_done_fn done, void *done_arg,
                               char *msg, size_t msglen)
{
    fake *fk = arg;
    (void)msg;
    (void)msglen;
    fk->op = *op;
    copy_str(fk->op_owner, sizeof(fk->op_owner), op->owner);
    copy_str(fk->op_reason, sizeof(fk->op_reason), op->reason);
    copy_str(fk->op_rule, sizeof(fk->op_rule), op->rule);
    copy_str(fk->op_cluster, sizeof(fk->op_cluster), op->cluster);
    copy_str(fk->op_alias, sizeof(fk->op_alias), op->alias);
    copy_str(fk->op_name, sizeof(fk->op_name), op->name);
    copy_str(fk->op_value, sizeof(fk->op_value), op->value);
    fk->op_value_null = op->value == NULL;
    fk->op.owner = fk->op.reason = fk->op.rule = fk->op.cluster = fk->op.alias = fk->op.name =
        fk->op.value = NULL;
    fake_push(fk, FC_OP, done_arg)->odone = done;
    return ORCH_OK;
}

static orch_err fake_submit_batch(void *arg, const char *what, char **stmts, size_t n,
                                  store_rows_fn done, void *done_arg, char *msg, size_t msglen)
{
    fake *fk = arg;
    (void)what;
    (void)msg;
    (void)msglen;
    assert_int_equal(n, 1);
    copy_str(fk->sql, sizeof(fk->sql), stmts[0]);
    fake_call *c = fake_push(fk, FC_BATCH, done_arg);
    c->bdone = done;
    copy_str(c->sql, sizeof(c->sql), stmts[0]);
    for (size_t k = 0; k < n; k++)
        free(stmts[k]);
    free(stmts);
    return ORCH_OK;
}

static bool fake_get_setting(void *arg, const char *name, char *buf, size_t buflen)
{
    fake *fk = arg;
    if (strcmp(name, "recoveries_disabled") != 0 || !fk->disabled)
        return false;
    snprintf(buf, buflen, "%s", "1");
    return true;
}

/*
 * The analysis the fake hands out: 127.0.0.1:3301 dead (a DeadMaster entry
 * and its replica's), 127.0.0.1:3401 warming up with nothing judged.
 */
static orch_key fake_replicas[2] = {{.host = "127.0.0.1", .port = 3302},
                                    {.host = "127.0.0.1", .port = 3303}};
static analysis_cluster fake_clusters[2] = {
    {.name = "127.0.0.1:3301",
     .alias = "main",
     .master = {.host = "127.0.0.1", .port = 3301},
     .code = ANALYSIS_DEAD_MASTER,
     .recoverable = true,
     .first = 0,
     .count = 2},
    {.name = "127.0.0.1:3401",
     .master = {.host = "127.0.0.1", .port = 3401},
     .warming_up = true,
     .note = "127.0.0.1:3402 not heard from yet",
     .first = 2,
     .count = 0},
};
static analysis_entry fake_entries[2] = {
    {.key = {.host = "127.0.0.1", .port = 3301},
     .name = "127.0.0.1:3301",
     .cluster = 0,
     .code = ANALYSIS_DEAD_MASTER,
     .recoverable = true,
     .description = "its agent says DOWN; every replica confirms",
     .is_master = true,
     .state = ORCH__PROBE_STATE__PROBE_DOWN,
     .count_replicas = 2,
     .count_valid_replicas = 2,
     .count_replicas_failing_to_connect_to_master = 2,
     .replicas = fake_replicas,
     .nreplicas = 2},
    {.key = {.host = "127.0.0.1", .port = 3302},
     .name = "127.0.0.1:3302",
     .has_master = true,
     .master_key = {.host = "127.0.0.1", .port = 3301},
     .cluster = 0,
     .role = ANALYSIS_ROLE_REPLICA,
     .code = ANALYSIS_FIRST_TIER_REPLICA_FAILING_TO_CONNECT_TO_MASTER,
     .description = "cannot connect to 127.0.0.1:3301",
     .last_check_valid = true,
     .state = ORCH__PROBE_STATE__PROBE_UP,
     .is_read_only = true,
     .is_failing_to_connect_to_master = true,
     .replication_depth = 1},
};
static const analysis_result fake_result = {
    .clusters = fake_clusters, .nclusters = 2, .entries = fake_entries, .nentries = 2};

static void leader_cb(void *arg, api_leader_info *out)
{
    fixture *f = arg;
    out->is_leader = f->is_leader;
    if (f->follower_answers > 0) {
        f->follower_answers--;
        out->is_leader = false;
    } else if (f->leader_api != NULL) {
        out->is_leader = true; /* a forwarded request reaches "the leader" */
    }
    out->epoch = 42;
    out->node = "coord-a";
    out->leader = out->is_leader ? "coord-a" : "coord-b";
    out->leader_api = out->is_leader  ? "http://a:3000"
                      : f->leader_api ? f->leader_api
                                      : "http://b:3000";
    out->nodes = f->nodes;
    out->nnodes = 2;
}

static void health_cb(void *arg, api_health_info *out)
{
    fixture *f = arg;
    out->backend_ok = f->backend_ok;
    out->backend_error = f->backend_ok ? NULL : "Lost connection to MySQL server";
    out->backend_rtt_us = 350;
    out->write_queue_depth = 0;
}

static uint64_t next_seq = 1;

static void add(registry *reg, unsigned port, unsigned master_port, bool running)
{
    static uint8_t boot[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    Orch__ServerStatus sv = ORCH__SERVER_STATUS__INIT;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    Orch__Channel *chans[1] = {&ch};
    char *aliases[1] = {"db.example"};
    r.protocol_version = 1;
    r.boot_id.data = boot;
    r.boot_id.len = sizeof(boot);
    r.seq = next_seq++;
    r.sent_at_ms = orch_wall_ms();
    r.host = "127.0.0.1";
    r.port = port;
    r.state = ORCH__PROBE_STATE__PROBE_UP;
    r.server = &sv;
    if (port == 3302) {
        r.n_aliases = 1;
        r.aliases = aliases;
    }
    sv.version = "10.11.6-MariaDB-log";
    sv.has_flavor = true;
    sv.flavor = ORCH__FLAVOR__FLAVOR_MARIADB;
    sv.has_read_only = true;
    sv.read_only = master_port != 0;
    sv.has_log_bin = sv.log_bin = true;
    sv.binlog_format = "ROW";
    if (master_port != 0) {
        r.n_channels = 1;
        r.channels = chans;
        ch.master_host = "127.0.0.1";
        ch.has_master_port = true;
        ch.master_port = master_port;
        ch.has_io_thread = ch.has_sql_thread = true;
        ch.io_thread = ch.sql_thread =
            running ? ORCH__THREAD_STATE__THREAD_YES : ORCH__THREAD_STATE__THREAD_NO;
        ch.has_seconds_behind_master = running;
    }
    size_t len = orch__instance_report__get_packed_size(&r);
    uint8_t *buf = malloc(len);
    orch__instance_report__pack(&r, buf);
    Orch__InstanceReport *rep = orch__instance_report__unpack(NULL, len, buf);
    free(buf);
    char msg[128];
    assert_int_equal(
        registry_apply(reg, rep, orch_mono_ms(), orch_wall_ms(), 10000, NULL, msg, sizeof(msg)),
        REG_ACCEPTED);
}

static int setup_batch(void **state, size_t batch)
{
    fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->reg = registry_new(orch_mono_ms());
    f->m = metrics_new();
    f->is_leader = true;
    f->backend_ok = true;
    f->nodes[0] = (api_node_info){"coord-a", "http://a:3000", "0.1.0", orch_wall_ms()};
    f->nodes[1] = (api_node_info){"coord-b", "http://b:3000", "0.1.0", orch_wall_ms()};
    add(f->reg, 3301, 0, true);
    add(f->reg, 3302, 3301, true);
    add(f->reg, 3303, 3301, false);
    add(f->reg, 3401, 0, true); /* a second cluster */
    reg_alias_row alias = {.cluster = "127.0.0.1:3301", .alias = "main"};
    assert_int_equal(registry_set_operator_state(f->reg, NULL, 0, &alias, 1), ORCH_OK);
    f->fk.ev = event_new(f->base, -1, 0, fake_answer, &f->fk);
    f->fk.res = &fake_result;
    f->fk.recover_ok = true;
    api_backend be = {.analysis = fake_analysis,
                      .recover = fake_recover,
                      .submit_op = fake_submit_op,
                      .submit_batch = fake_submit_batch,
                      .get_setting = fake_get_setting,
                      .arg = &f->fk};
    api_deps deps = {
        .reg = f->reg,
        .m = f->m,
        .leader = leader_cb,
        .health = health_cb,
        .arg = f,
        .stale_after_ms = 60000,
        .recover_master = true,
        .stream_batch = batch,
        .backend = &be,
    };
    char msg[256];
    f->a = api_start(f->base, "127.0.0.1:0", &deps, NULL, msg, sizeof(msg));
    if (f->a == NULL)
        fail_msg("api_start: %s", msg);
    f->port = api_port(f->a);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_batch(state, 0);
}

/* Streams every list of more than one instance, one instance per chunk. */
static int setup_stream(void **state)
{
    return setup_batch(state, 1);
}

static int teardown(void **state)
{
    fixture *f = *state;
    api_stop(f->a);
    /* answers owed when the api stopped come now: they must only free */
    f->fk.hold = false;
    fake_answer(-1, 0, &f->fk);
    event_free(f->fk.ev);
    registry_free(f->reg);
    metrics_free(f->m);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* ---- a tiny HTTP client ------------------------------------------------------------ */

typedef struct resp {
    int status;
    char head[4096]; /* status line and headers */
    char *body;      /* NUL-terminated */
    size_t body_len;
    json_t *json; /* parsed body when it is JSON */
} resp;

static void resp_free(resp *r)
{
    free(r->body);
    json_decref(r->json);
}

static const char *header(const resp *r, const char *name)
{
    static char value[512];
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s:", name);
    const char *p = strcasestr(r->head, pat);
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(value, sizeof(value), "%.*s", (int)n, p);
    return value;
}

/*
 * Sends one request (Connection: close) and reads the whole answer, running
 * the server's event loop between polls. auth is "user:password" or NULL.
 */
static resp request(fixture *f, const char *method, const char *target, const char *auth)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

    size_t reqcap = strlen(target) + 1024;
    char *req = malloc(reqcap);
    int n = snprintf(req, reqcap, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n", method,
                     target);
    if (auth != NULL) {
        /* base64 of auth */
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char b64[256];
        size_t len = strlen(auth), o = 0;
        for (size_t i = 0; i < len; i += 3) {
            unsigned v = (unsigned char)auth[i] << 16;
            if (i + 1 < len)
                v |= (unsigned char)auth[i + 1] << 8;
            if (i + 2 < len)
                v |= (unsigned char)auth[i + 2];
            b64[o++] = tbl[(v >> 18) & 63];
            b64[o++] = tbl[(v >> 12) & 63];
            b64[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
            b64[o++] = i + 2 < len ? tbl[v & 63] : '=';
        }
        b64[o] = '\0';
        n += snprintf(req + n, reqcap - (size_t)n, "Authorization: Basic %s\r\n", b64);
    }
    n += snprintf(req + n, reqcap - (size_t)n, "\r\n");
    assert_int_equal(write(fd, req, (size_t)n), n);
    free(req);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = orch_mono_ms() + 5000;
    for (;;) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5) > 0) {
            if (len + 4096 > cap)
                buf = realloc(buf, cap *= 2);
            ssize_t got = read(fd, buf + len, cap - len - 1);
            if (got == 0)
                break;
            if (got > 0)
                len += (size_t)got;
            else if (errno != EAGAIN && errno != EINTR)
                break;
        }
        if (orch_mono_ms() > deadline)
            fail_msg("no complete answer to %s %.80s", method, target);
    }
    close(fd);
    buf[len] = '\0';

    resp r = {0};
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL)
        fail_msg("no header end in answer to %s %.80s: %s", method, target, buf);
    size_t hl = (size_t)(end - buf) + 2;
    snprintf(r.head, sizeof(r.head), "%.*s", (int)hl, buf);
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &r.status), 1);
    r.body_len = len - hl - 2;
    r.body = malloc(r.body_len + 1);
    memcpy(r.body, end + 4, r.body_len);
    r.body[r.body_len] = '\0';
    free(buf);
    const char *te = header(&r, "Transfer-Encoding");
    if (te != NULL && strcasecmp(te, "chunked") == 0) {
        /* size CRLF data CRLF ... 0 CRLF CRLF */
        char *in = r.body, *out = r.body;
        size_t total = 0;
        for (;;) {
            char *e = NULL;
            unsigned long chunk = strtoul(in, &e, 16);
            if (e == in || strncmp(e, "\r\n", 2) != 0)
                fail_msg("bad chunk header in answer to %s", target);
            in = e + 2;
            if (chunk == 0)
                break;
            memmove(out + total, in, chunk);
            total += chunk;
            in += chunk + 2;
        }
        r.body_len = total;
        r.body[total] = '\0';
    }
    const char *ct = header(&r, "Content-Type");
    if (ct != NULL && strncmp(ct, "application/json", 16) == 0 && r.body_len > 0) {
        json_error_t err;
        r.json = json_loads(r.body, JSON_DECODE_ANY, &err);
        if (r.json == NULL)
            fail_msg("bad JSON from %s: %s: %s", target, err.text, r.body);
    }
    return r;
}

static resp get(fixture *f, const char *target)
{
    return request(f, "GET", target, NULL);
}

/* An ERROR envelope with the given status whose Message contains want. */
static void assert_error(fixture *f, const char *target, int status, const char *want)
{
    resp r = get(f, target);
    if (r.status != status)
        fail_msg("%s: status %d, want %d: %s", target, r.status, status, r.body);
    assert_non_null(r.json);
    assert_string_equal(json_string_value(json_object_get(r.json, "Code")), "ERROR");
    const char *msg = json_string_value(json_object_get(r.json, "Message"));
    if (msg == NULL || strstr(msg, want) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", target, msg ? msg : "(none)", want);
    assert_true(json_is_null(json_object_get(r.json, "Details")));
    resp_free(&r);
}

static int key_port(json_t *instance)
{
    return (int)json_integer_value(json_object_get(json_object_get(instance, "Key"), "Port"));
}

/* ---- tests --------------------------------------------------------------------- */

static void test_leader_check(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/leader-check");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "\"OK\"");
    assert_string_equal(header(&r, "Content-Type"), "application/json; charset=UTF-8");
    resp_free(&r);
    f->is_leader = false;
    r = get(f, "/api/leader-check");
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "\"Not leader\"");
    resp_free(&r);
    r = get(f, "/api/leader-check/503");
    assert_int_equal(r.status, 503);
    resp_free(&r);
    r = get(f, "/api/leader-check/nonsense");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    f->is_leader = true;
    r = get(f, "/api/lb-check");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "\"OK\"");
    resp_free(&r);
}

static void test_health_status(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/api/health", "/api/status"};
    for (int k = 0; k < 2; k++) {
        f->backend_ok = true;
        resp r = get(f, paths[k]);
        assert_int_equal(r.status, 200);
        assert_string_equal(json_string_value(json_object_get(r.json, "Code")), "OK");
        json_t *d = json_object_get(r.json, "Details");
        assert_true(json_is_true(json_object_get(d, "Healthy")));
        assert_true(json_is_true(json_object_get(d, "IsActiveNode")));
        assert_string_equal(json_string_value(json_object_get(d, "Hostname")), "coord-a");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(d, "ActiveNode"), "Hostname")),
            "coord-a");
        assert_int_equal(json_array_size(json_object_get(d, "AvailableNodes")), 2);
        json_t *o = json_object_get(d, "Orch");
        assert_int_equal(json_integer_value(json_object_get(o, "Epoch")), 42);
        assert_int_equal(json_integer_value(json_object_get(o, "Instances")), 4);
        assert_int_equal(json_integer_value(json_object_get(o, "Clusters")), 2);
        resp_free(&r);

        f->backend_ok = false;
        r = get(f, paths[k]);
        assert_int_equal(r.status, 500);
        assert_string_equal(json_string_value(json_object_get(r.json, "Code")), "ERROR");
        assert_non_null(
            strstr(json_string_value(json_object_get(r.json, "Message")), "Lost connection"));
        d = json_object_get(r.json, "Details");
        assert_true(json_is_false(json_object_get(d, "Healthy")));
        resp_free(&r);
    }
    f->backend_ok = true;
}

static void test_clusters(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/clusters");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[\"127.0.0.1:3301\",\"127.0.0.1:3401\"]");
    resp_free(&r);

    r = get(f, "/api/clusters-info");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    json_t *ci = json_array_get(r.json, 0);
    assert_string_equal(json_string_value(json_object_get(ci, "ClusterName")), "127.0.0.1:3301");
    assert_string_equal(json_string_value(json_object_get(ci, "ClusterAlias")), "main");
    assert_int_equal(json_integer_value(json_object_get(ci, "CountInstances")), 3);
    assert_true(json_is_true(json_object_get(ci, "HasAutomatedMasterRecovery")));
    resp_free(&r);

    /* by name, alias, member key, /alias/ and /instance/ routes */
    const char *hints[] = {"/api/cluster/127.0.0.1:3301",          "/api/cluster/main",
                           "/api/cluster/127.0.0.1:3303",          "/api/cluster/alias/main",
                           "/api/cluster/instance/127.0.0.1/3302", "/api/cluster/db.example:3302"};
    for (size_t k = 0; k < sizeof(hints) / sizeof(hints[0]); k++) {
        r = get(f, hints[k]);
        if (r.status != 200)
            fail_msg("%s: %d %s", hints[k], r.status, r.body);
        assert_int_equal(json_array_size(r.json), 3);
        assert_int_equal(key_port(json_array_get(r.json, 0)), 3301);
        resp_free(&r);
    }
    r = get(f, "/api/cluster-info/127.0.0.1:3302");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "ClusterName")),
                        "127.0.0.1:3301");
    resp_free(&r);
    r = get(f, "/api/cluster-info/alias/main");
    assert_int_equal(r.status, 200);
    resp_free(&r);

    assert_error(f, "/api/cluster/nosuch", 404, "Unable to determine cluster name");
    assert_error(f, "/api/cluster-info/nosuch", 404, "clusterHint=nosuch");
    assert_error(f, "/api/cluster/instance/127.0.0.1/3999", 404, "clusterHint=127.0.0.1:3999");
}

static void test_instances(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/instance/127.0.0.1/3302");
    assert_int_equal(r.status, 200);
    assert_int_equal(key_port(r.json), 3302);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "MasterKey"), "Port")), 3301);
    assert_true(json_is_true(json_object_get(r.json, "ReplicationIOThreadRuning")));
    assert_non_null(json_object_get(json_object_get(r.json, "Orch"), "Report"));
    resp_free(&r);

    /* through an alias the agent reported */
    r = get(f, "/api/instance/db.example/3302");
    assert_int_equal(r.status, 200);
    assert_int_equal(key_port(r.json), 3302);
    resp_free(&r);

    assert_error(f, "/api/instance/127.0.0.1/3999", 404, "Cannot read instance: 127.0.0.1:3999");
    assert_error(f, "/api/instance/127.0.0.1/99999", 400, "99999");
    assert_error(f, "/api/instance/127.0.0.1/0", 400, "not in 1..65535");
    assert_error(f, "/api/instance/127.0.0.1/abc", 400, "Invalid port");
    assert_error(f, "/api/instance/bad%20host/3306", 400, "invalid character");
    assert_error(f, "/api/instance-replicas/127.0.0.1/x1", 400, "Invalid port");

    r = get(f, "/api/instance-replicas/127.0.0.1/3301");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    assert_int_equal(key_port(json_array_get(r.json, 0)), 3302);
    resp_free(&r);
    assert_error(f, "/api/instance-replicas/127.0.0.1/3999", 404, "Cannot read instance");

    r = get(f, "/api/all-instances");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 4);
    resp_free(&r);

    r = get(f, "/api/master/main");
    assert_int_equal(r.status, 200);
    assert_int_equal(key_port(r.json), 3301);
    resp_free(&r);
    r = get(f, "/api/master/127.0.0.1:3303");
    assert_int_equal(key_port(r.json), 3301);
    resp_free(&r);
    assert_error(f, "/api/master/nosuch", 404, "Unable to determine cluster name");

    r = get(f, "/api/masters");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    assert_int_equal(key_port(json_array_get(r.json, 0)), 3301);
    assert_int_equal(key_port(json_array_get(r.json, 1)), 3401);
    resp_free(&r);

    r = get(f, "/api/problems");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    assert_int_equal(key_port(json_array_get(r.json, 0)), 3303);
    resp_free(&r);
    r = get(f, "/api/problems/127.0.0.1:3401");
    assert_int_equal(json_array_size(r.json), 0);
    resp_free(&r);
}

static void test_topology(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/api/topology/main", "/api/topology/127.0.0.1:3302",
                           "/api/topology/127.0.0.1/3303"};
    for (int k = 0; k < 3; k++) {
        resp r = get(f, paths[k]);
        assert_int_equal(r.status, 200);
        assert_string_equal(json_string_value(json_object_get(r.json, "Code")), "OK");
        assert_string_equal(json_string_value(json_object_get(r.json, "Message")),
                            "Topology for cluster 127.0.0.1:3301");
        const char *t = json_string_value(json_object_get(r.json, "Details"));
        assert_non_null(t);
        assert_string_equal(t, "127.0.0.1:3301   [0s,ok,10.11.6-MariaDB-log,rw,ROW,GTID]\n"
                               "+ 127.0.0.1:3302 [0s,ok,10.11.6-MariaDB-log,ro,ROW,GTID]\n"
                               "- 127.0.0.1:3303 [null,nonreplicating,10.11.6-MariaDB-log,ro,ROW,"
                               "GTID]");
        resp_free(&r);
    }
    assert_error(f, "/api/topology/nosuch", 404, "Unable to determine cluster name");
    assert_error(f, "/api/topology/127.0.0.1/70000", 400, "70000");
}

static void test_search(void **state)
{
    fixture *f = *state;
    struct {
        const char *target;
        size_t n;
    } cases[] = {
        {"/api/search?s=3302", 1},           {"/api/search/3303", 1},
        {"/api/search?s=DB.EXAMPLE", 1},     {"/api/search?s=main", 3},
        {"/api/search?s=nomatch", 0},        {"/api/search", 4},
        {"/api/search?s=127.0.0.1%3A34", 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        resp r = get(f, cases[k].target);
        assert_int_equal(r.status, 200);
        if (json_array_size(r.json) != cases[k].n)
            fail_msg("%s: %zu results, want %zu", cases[k].target, json_array_size(r.json),
                     cases[k].n);
        resp_free(&r);
    }
}

static void test_errors_and_methods(void **state)
{
    fixture *f = *state;
    assert_error(f, "/api/nope", 404, "Unknown route: /api/nope");
    assert_error(f, "/nope", 404, "Unknown route: /nope");
    assert_error(f, "/api/instance/127.0.0.1", 404, "Unknown route");
    assert_error(f, "/api/a/b/c/d/e/f/g/h/i/j", 404, "Unknown route");
    assert_error(f, "/api/cluster/%00x", 400, "Malformed path");
    assert_error(f, "/api/search?novalue", 400, "Malformed query string");

    /* trailing slash */
    resp r = get(f, "/api/clusters/");
    assert_int_equal(r.status, 200);
    resp_free(&r);

    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (int k = 0; k < 5; k++) {
        r = request(f, methods[k], "/api/clusters", NULL);
        assert_int_equal(r.status, 405);
        assert_string_equal(header(&r, "Allow"), "GET, HEAD");
        assert_string_equal(json_string_value(json_object_get(r.json, "Code")), "ERROR");
        resp_free(&r);
    }
    r = request(f, "POST", "/api/nope", NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    /* HEAD: the GET's headers, no body */
    resp g = get(f, "/api/clusters");
    r = request(f, "HEAD", "/api/clusters", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    char want[32];
    snprintf(want, sizeof(want), "%zu", g.body_len);
    assert_string_equal(header(&r, "Content-Length"), want);
    resp_free(&r);
    resp_free(&g);

    /* over-long URLs */
    char *longpath = malloc(3000);
    memcpy(longpath, "/api/cluster/", 13);
    memset(longpath + 13, 'a', 3000 - 14);
    longpath[2999] = '\0';
    assert_error(f, longpath, 414, "longer than 2048");
    longpath[2000] = '\0'; /* under the limit: a normal 404 */
    assert_error(f, longpath, 404, "Unable to determine cluster name");
    free(longpath);
}

static void test_web_and_metrics(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/clusters");
    resp_free(&r);
    r = get(f, "/api/nope");
    resp_free(&r);

    r = get(f, "/");
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_non_null(strstr(r.body, "<h1>orch</h1>"));
    assert_non_null(strstr(r.body, "127.0.0.1:3301 (main)"));
    assert_non_null(strstr(r.body, "<td>127.0.0.1:3303</td>"));
    resp_free(&r);

    r = get(f, "/metrics");
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "# TYPE orch_api_requests_total counter\n"));
    assert_non_null(
        strstr(r.body, "orch_api_requests_total{route=\"api/clusters\",code=\"200\"} 1\n"));
    assert_non_null(
        strstr(r.body, "orch_api_requests_total{route=\"unmatched\",code=\"404\"} 1\n"));
    assert_non_null(strstr(r.body, "orch_api_requests_total{route=\"/\",code=\"200\"} 1\n"));
    assert_non_null(
        strstr(r.body, "orch_api_request_duration_seconds_count{route=\"api/clusters\"} 1\n"));
    resp_free(&r);
}

static void test_auth(void **state)
{
    fixture *f = *state;
    api_auth auth = {.mode = COORD_AUTH_BASIC_READONLY,
                     .user = "admin",
                     .password = "s3cret",
                     .readonly_user = "viewer",
                     .readonly_password = "look"};
    assert_int_equal(api_set_auth(f->a, &auth), ORCH_OK);

    resp r = get(f, "/api/clusters");
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.head, "401 Unauthorized"));
    assert_string_equal(header(&r, "WWW-Authenticate"), "Basic realm=\"orch\", charset=\"UTF-8\"");
    assert_string_equal(json_string_value(json_object_get(r.json, "Code")), "ERROR");
    resp_free(&r);
    /* unknown routes reveal nothing without credentials; HEAD on the API base (orchestrator-client)
     */
    r = get(f, "/api/nope");
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = request(f, "HEAD", "/api", NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);

    const char *wrong[] = {"admin:wrong", "viewer:s3cret", "nobody:look", "admin:", ":"};
    for (int k = 0; k < 5; k++) {
        r = request(f, "GET", "/api/clusters", wrong[k]);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    r = request(f, "GET", "/api/clusters", "admin:s3cret");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = request(f, "GET", "/metrics", "viewer:look");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = request(f, "GET", "/api/nope", "viewer:look");
    assert_int_equal(r.status, 404);
    resp_free(&r);

    /* the decision itself, including write routes */
    assert_int_equal(api_auth_check(f->a, "Basic dmlld2VyOmxvb2s=", false), API_AUTH_OK);
    assert_int_equal(api_auth_check(f->a, "Basic dmlld2VyOmxvb2s=", true), API_AUTH_READ_ONLY);
    assert_int_equal(api_auth_check(f->a, "basic YWRtaW46czNjcmV0", true), API_AUTH_OK);
    assert_int_equal(api_auth_check(f->a, "Basic YWRtaW46czNjcmV0", false), API_AUTH_OK);
    assert_int_equal(api_auth_check(f->a, "Basic YWRtaW46d3Jvbmc=", false), API_AUTH_WRONG);
    assert_int_equal(api_auth_check(f->a, NULL, false), API_AUTH_MISSING);
    assert_int_equal(api_auth_check(f->a, "Bearer abc", false), API_AUTH_MISSING);
    assert_int_equal(api_auth_check(f->a, "Basic !!!!", false), API_AUTH_MISSING);
    assert_int_equal(api_auth_check(f->a, "Basic bm9jb2xvbg==", false), API_AUTH_MISSING);

    /* basic: the read-only user does not exist */
    auth.mode = COORD_AUTH_BASIC;
    assert_int_equal(api_set_auth(f->a, &auth), ORCH_OK);
    assert_int_equal(api_auth_check(f->a, "Basic dmlld2VyOmxvb2s=", false), API_AUTH_WRONG);
    r = request(f, "GET", "/api/clusters", "viewer:look");
    assert_int_equal(r.status, 401);
    resp_free(&r);

    assert_int_equal(api_set_auth(f->a, NULL), ORCH_OK);
    r = get(f, "/api/clusters");
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_streamed_lists(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/all-instances");
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Transfer-Encoding"), "chunked");
    assert_int_equal(json_array_size(r.json), 4);
    int want[] = {3301, 3302, 3303, 3401};
    for (int k = 0; k < 4; k++)
        assert_int_equal(key_port(json_array_get(r.json, (size_t)k)), want[k]);
    assert_null(json_object_get(json_object_get(json_array_get(r.json, 0), "Orch"), "Report"));
    resp_free(&r);

    r = get(f, "/api/cluster/main");
    assert_int_equal(json_array_size(r.json), 3);
    resp_free(&r);
    r = get(f, "/api/search?s=127.0.0.1:33");
    assert_int_equal(json_array_size(r.json), 3);
    resp_free(&r);
    r = get(f, "/api/masters"); /* two clusters: streamed too */
    assert_int_equal(json_array_size(r.json), 2);
    resp_free(&r);
    r = get(f, "/api/problems"); /* one: rendered at once */
    assert_null(header(&r, "Transfer-Encoding"));
    assert_int_equal(json_array_size(r.json), 1);
    resp_free(&r);
    r = request(f, "HEAD", "/api/all-instances", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    resp_free(&r);

    r = get(f, "/metrics");
    assert_non_null(
        strstr(r.body, "orch_api_requests_total{route=\"api/all-instances\",code=\"200\"} 2\n"));
    resp_free(&r);
}

/* Clients that hang up before or during a streamed answer leave nothing behind. */
static void test_stream_client_gone(void **state)
{
    fixture *f = *state;
    for (int k = 0; k < 20; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        static const char req[] = "GET /api/all-instances HTTP/1.1\r\nHost: t\r\n\r\n";
        assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
        if (k % 2 == 1) {
            /* let the answer start, then reset the connection */
            event_base_loop(f->base, EVLOOP_NONBLOCK);
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(fd);
    }
    /* every stream ends (counted when it does) */
    int64_t deadline = orch_mono_ms() + 5000;
    for (;;) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        resp r = get(f, "/metrics");
        bool done =
            strstr(r.body,
                   "orch_api_requests_total{route=\"api/all-instances\",code=\"200\"} 20\n") !=
            NULL;
        resp_free(&r);
        if (done)
            break;
        if (orch_mono_ms() > deadline)
            fail_msg("streams to vanished clients did not end");
        usleep(10000);
    }
    resp r = get(f, "/api/all-instances");
    assert_int_equal(json_array_size(r.json), 4);
    resp_free(&r);
}

/*
 * api_stop with answers in flight (teardown runs it): clients with tiny
 * receive buffers that do not read a ~5 MB answer, one of which hangs up.
 */
static void test_stream_stop_midway(void **state)
{
    fixture *f = *state;
    for (unsigned port = 4001; port <= 5600; port++)
        add(f->reg, port, 0, true);
    int fds[2];
    for (int k = 0; k < 2; k++) {
        fds[k] = socket(AF_INET, SOCK_STREAM, 0);
        int small = 1024;
        setsockopt(fds[k], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fds[k], (struct sockaddr *)&sa, sizeof(sa)), 0);
        static const char req[] = "GET /api/all-instances HTTP/1.1\r\nHost: t\r\n\r\n";
        assert_int_equal(write(fds[k], req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    }
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* runs until both answers stall */
    close(fds[1]);
    /* the answer to the client that left ends (and is counted); the other cannot */
    int64_t deadline = orch_mono_ms() + 5000;
    for (;;) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        resp r = get(f, "/metrics");
        bool one = strstr(r.body, "{route=\"api/all-instances\",code=\"200\"} 1\n") != NULL;
        resp_free(&r);
        if (one)
            break;
        if (orch_mono_ms() > deadline)
            fail_msg("the answer to a client that hung up did not end");
        usleep(10000);
    }
    close(fds[0]);
}

/* ---- recovery and operator state ------------------------------------------------------ */

static const char *msg_of(const resp *r)
{
    const char *m = json_string_value(json_object_get(r->json, "Message"));
    return m ? m : "";
}

/* GET target; asserts the status and that Message contains want (NULL: anything). */
static resp expect(fixture *f, const char *target, int status, const char *want)
{
    resp r = get(f, target);
    if (r.status != status)
        fail_msg("%s: status %d, want %d: %s", target, r.status, status, r.body);
    if (want != NULL && strstr(msg_of(&r), want) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", target, msg_of(&r), want);
    if (json_object_get(r.json, "Code") != NULL)
        assert_string_equal(json_string_value(json_object_get(r.json, "Code")),
                            status == 200 ? "OK" : "ERROR");
    return r;
}

static void expect_free(fixture *f, const char *target, int status, const char *want)
{
    resp r = expect(f, target, status, want);
    resp_free(&r);
}

static void test_analysis_routes(void **state)
{
    fixture *f = *state;
    resp r = expect(f, "/api/replication-analysis", 200,
                    "Analysis (warming up: 127.0.0.1:3401: 127.0.0.1:3402 not heard from yet)");
    json_t *d = json_object_get(r.json, "Details");
    assert_int_equal(json_array_size(d), 2);
    json_t *e = json_array_get(d, 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(e, "AnalyzedInstanceKey"), "Port")),
        3301);
    assert_string_equal(json_string_value(json_object_get(e, "Analysis")), "DeadMaster");
    json_t *cd = json_object_get(e, "ClusterDetails");
    assert_string_equal(json_string_value(json_object_get(cd, "ClusterName")), "127.0.0.1:3301");
    assert_string_equal(json_string_value(json_object_get(cd, "ClusterAlias")), "main");
    assert_int_equal(json_integer_value(json_object_get(cd, "CountInstances")), 3);
    assert_true(json_is_true(json_object_get(json_object_get(e, "Orch"), "Recoverable")));
    e = json_array_get(d, 1);
    assert_string_equal(json_string_value(json_object_get(e, "Analysis")),
                        "FirstTierReplicaFailingToConnectToMaster");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(e, "AnalyzedInstanceMasterKey"), "Port")),
                     3301);
    resp_free(&r);

    const struct {
        const char *target;
        size_t n;
    } cases[] = {{"/api/replication-analysis/main", 2},
                 {"/api/replication-analysis/127.0.0.1:3303", 2},
                 {"/api/replication-analysis/127.0.0.1:3401", 0},
                 {"/api/replication-analysis/instance/127.0.0.1/3302", 1},
                 {"/api/replication-analysis/instance/127.0.0.1/3999", 0}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        r = expect(f, cases[k].target, 200, "Analysis");
        if (json_array_size(json_object_get(r.json, "Details")) != cases[k].n)
            fail_msg("%s: %zu entries, want %zu", cases[k].target,
                     json_array_size(json_object_get(r.json, "Details")), cases[k].n);
        resp_free(&r);
    }
    expect_free(f, "/api/replication-analysis/nosuch", 404, "clusterHint=nosuch");
    expect_free(f, "/api/replication-analysis/instance/127.0.0.1/x", 400, "Invalid port");

    f->fk.res = NULL; /* before the first analysis */
    r = expect(f, "/api/replication-analysis", 200, "not run yet");
    assert_int_equal(json_array_size(json_object_get(r.json, "Details")), 0);
    resp_free(&r);
}

static void test_recover_routes(void **state)
{
    fixture *f = *state;
    resp r = expect(f, "/api/recover/127.0.0.1/3301", 200,
                    "Recovery executed on 127.0.0.1:3301: promoted 127.0.0.1:3303 (recovery "
                    "18f-abc)");
    json_t *d = json_object_get(r.json, "Details");
    assert_string_equal(json_string_value(json_object_get(d, "Hostname")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(d, "Port")), 3303);
    resp_free(&r);
    assert_int_equal(f->fk.recovered.port, 3301);
    assert_false(f->fk.force);
    assert_string_equal(f->fk.reason, "recover requested through the API by orch");
    assert_non_null(strstr(f->fk.sql, "WHERE r.uid = "));

    assert_int_equal(f->fk.candidate.port, 0);
    expect_free(f, "/api/recover/db.example/3302/127.0.0.1/3303", 200, "Recovery executed on");
    assert_int_equal(f->fk.recovered.port, 3302); /* through the alias, canonical */
    assert_int_equal(f->fk.candidate.port, 3303); /* passed on to the recovery */
    assert_false(f->fk.force);

    /* force-master-takeover: the cluster's master, forced, to the designated replica */
    r = expect(f, "/api/force-master-takeover/main/127.0.0.1/3303", 200,
               "Master failed over: 127.0.0.1:3301 -> 127.0.0.1:3303");
    resp_free(&r);
    assert_int_equal(f->fk.recovered.port, 3301);
    assert_int_equal(f->fk.candidate.port, 3303);
    assert_true(f->fk.force);
    assert_string_equal(f->fk.reason, "force-master-takeover requested through the API by orch");

    const char *force[] = {"/api/force-master-failover/main",
                           "/api/force-master-failover/127.0.0.1:3303",
                           "/api/force-master-failover/127.0.0.1/3302"};
    for (int k = 0; k < 3; k++) {
        f->fk.recovered.port = 0;
        r = expect(f, force[k], 200, "Master failed over: 127.0.0.1:3301 -> 127.0.0.1:3303");
        d = json_object_get(r.json, "Details");
        assert_string_equal(json_string_value(json_object_get(d, "UID")), "18f-abc");
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(d, "SuccessorKey"), "Port")), 3303);
        assert_true(json_is_true(json_object_get(d, "IsSuccessful")));
        resp_free(&r);
        assert_int_equal(f->fk.recovered.port, 3301);
        assert_true(f->fk.force);
    }

    /* a recovery that fails, one refused at once, bad requests */
    f->fk.recover_ok = false;
    r = expect(f, "/api/recover/127.0.0.1/3301", 500,
               "Recovery of 127.0.0.1:3301 failed: no candidate: every replica is must_not");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "Details"), "Port")), 3301);
    resp_free(&r);
    r = expect(f, "/api/force-master-failover/main", 500, "Master not failed over: no candidate");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "Details"), "UID")), "18f-abc");
    resp_free(&r);
    f->fk.recover_ok = true;
    f->fk.recover_err = ORCH_ERR_REFUSED;
    expect_free(f, "/api/recover/127.0.0.1/3301", 409,
                "Recovery not attempted on 127.0.0.1:3301: 127.0.0.1:3301 is not seen as failed");
    f->fk.recover_err = ORCH_OK;
    size_t calls = f->fk.ncalls;
    expect_free(f, "/api/recover/127.0.0.1/3999", 404, "Cannot read instance: 127.0.0.1:3999");
    expect_free(f, "/api/recover/127.0.0.1/0", 400, "not in 1..65535");
    expect_free(f, "/api/recover/127.0.0.1/3301/127.0.0.1/x", 400, "Invalid port");
    expect_free(f, "/api/force-master-failover/nosuch", 404, "clusterHint=nosuch");
    assert_int_equal(f->fk.ncalls, calls);

    /* the record cannot be read: the outcome still says it */
    f->fk.batch_fail = true;
    r = expect(f, "/api/recover/127.0.0.1/3301", 200, "Recovery executed on 127.0.0.1:3301");
    assert_true(json_is_null(json_object_get(r.json, "Details")));
    resp_free(&r);
}

/* Recoveries are the leader's; operator state is anyone's. */
static void test_follower_refusal(void **state)
{
    fixture *f = *state;
    f->is_leader = false;
    f->follower_answers = 1000;
    f->leader_api = "https://b:3000"; /* not forwarded: plain http only */
    const char *leader_only[] = {"/api/recover/127.0.0.1/3301",
                                 "/api/recover/127.0.0.1/3301/127.0.0.1/3302",
                                 "/api/force-master-failover/main",
                                 "/api/force-master-failover/127.0.0.1/3301",
                                 "/api/relocate/127.0.0.1/3302/127.0.0.1/3301",
                                 "/api/move-up/127.0.0.1/3302",
                                 "/api/graceful-master-takeover/main",
                                 "/api/set-read-only/127.0.0.1/3302",
                                 "/api/stop-replica/127.0.0.1/3302"};
    for (size_t k = 0; k < sizeof(leader_only) / sizeof(leader_only[0]); k++) {
        resp r = expect(f, leader_only[k], 503, "the leader, coord-b, at https://b:3000");
        assert_non_null(strstr(msg_of(&r), "not the leader"));
        assert_non_null(strstr(msg_of(&r), "is not an http:// URL this node can forward to"));
        json_t *d = json_object_get(r.json, "Details");
        assert_string_equal(json_string_value(json_object_get(d, "Leader")), "coord-b");
        assert_string_equal(json_string_value(json_object_get(d, "LeaderAPI")), "https://b:3000");
        resp_free(&r);
    }
    assert_int_equal(f->fk.ncalls, 0);
    f->leader_api = NULL;
    expect_free(f, "/api/begin-downtime/127.0.0.1/3302/alice/why", 200, "Downtime begun");
    expect_free(f, "/api/ack-all-recoveries?comment=seen", 200, "Acknowledged all recoveries");
    expect_free(f, "/api/disable-global-recoveries", 200, "Globally disabled recoveries");
    expect_free(f, "/api/replication-analysis", 200, "Analysis");
    f->is_leader = true;
    f->follower_answers = 0;
}

/*
 * A follower forwards a leader route to the leader's API and relays its
 * answer. The fixture's one api plays both parts: its leader_api points at
 * itself, and the leader callback says "not the leader" follower_answers
 * times, then "the leader".
 */
static void test_follower_forwards(void **state)
{
    fixture *f = *state;
    char self[64];
    snprintf(self, sizeof(self), "http://127.0.0.1:%u/", (unsigned)f->port);
    f->is_leader = false;
    f->leader_api = self;

    /* relayed: the leader ran it */
    size_t calls = f->fk.ncalls;
    f->follower_answers = 1;
    resp r = expect(f, "/api/recover/127.0.0.1/3301", 200, NULL);
    assert_string_equal(header(&r, "X-Orch-Forwarded-To"), "coord-b");
    resp_free(&r);
    assert_true(f->fk.ncalls > calls);
    calls = f->fk.ncalls;

    /* a leader named by host name: resolved without blocking (/etc/hosts) */
    char named[64];
    snprintf(named, sizeof(named), "http://localhost:%u", (unsigned)f->port);
    f->leader_api = named;
    f->follower_answers = 1;
    r = expect(f, "/api/recover/127.0.0.1/3301", 200, NULL);
    assert_string_equal(header(&r, "X-Orch-Forwarded-To"), "coord-b");
    resp_free(&r);
    f->leader_api = self;
    calls = f->fk.ncalls;

    /* one hop only: the "leader" says it is not the leader either */
    f->follower_answers = 2;
    r = expect(f, "/api/move-up/127.0.0.1/3302", 503, "and is not forwarded twice");
    assert_non_null(strstr(msg_of(&r), "forwarded here by coord-a"));
    assert_string_equal(header(&r, "X-Orch-Forwarded-To"), "coord-b");
    resp_free(&r);
    assert_int_equal(f->fk.ncalls, calls);

    /* a leader that does not answer: 502 */
    f->follower_answers = 1;
    f->leader_api = "http://127.0.0.1:1";
    expect_free(f, "/api/recover/127.0.0.1/3301", 502, "did not answer the forwarded request");
    assert_int_equal(f->fk.ncalls, calls);

    /* a bad request is refused here, not forwarded (forwarded, it would be 502) */
    f->follower_answers = 1;
    f->leader_api = "http://127.0.0.1:1";
    r = expect(f, "/api/recover/127.0.0.1/notaport", 400, NULL);
    assert_null(header(&r, "X-Orch-Forwarded-To"));
    resp_free(&r);
    assert_int_equal(f->follower_answers, 1); /* the leader check never ran */
    f->follower_answers = 0;
    f->leader_api = NULL;
    f->is_leader = true;
}

static void test_operator_state_routes(void **state)
{
    fixture *f = *state;
    resp r = expect(f, "/api/begin-downtime/127.0.0.1/3302/alice/disk%20swap", 200,
                    "Downtime begun: 127.0.0.1:3302 for 600 s");
    json_t *d = json_object_get(r.json, "Details");
    assert_int_equal(json_integer_value(json_object_get(d, "Port")), 3302);
    resp_free(&r);
    assert_int_equal(f->fk.op.kind, STORE_OP_BEGIN_DOWNTIME);
    assert_int_equal(f->fk.op.key.port, 3302);
    assert_string_equal(f->fk.op_owner, "alice");
    assert_string_equal(f->fk.op_reason, "disk swap");
    assert_int_equal(f->fk.op.duration_ms, 600000);

    const struct {
        const char *duration;
        int64_t ms;
    } durations[] = {{"90", 90000},    {"90s", 90000},    {"30m", 1800000},   {"2h", 7200000},
                     {"1d", 86400000}, {"1w", 604800000}, {"1h30m", 5400000}, {"0", 600000}};
    for (size_t k = 0; k < sizeof(durations) / sizeof(durations[0]); k++) {
        char target[128];
        snprintf(target, sizeof(target), "/api/begin-downtime/db.example/3302/alice/x/%s",
                 durations[k].duration);
        expect_free(f, target, 200, "Downtime begun: 127.0.0.1:3302");
        if (f->fk.op.duration_ms != durations[k].ms)
            fail_msg("%s: %lld ms, want %lld", durations[k].duration,
                     (long long)f->fk.op.duration_ms, (long long)durations[k].ms);
    }
    size_t calls = f->fk.ncalls;
    expect_free(f, "/api/begin-downtime/127.0.0.1/3302/alice/x/3x", 400,
                "Invalid duration: '3x': unknown unit 'x'");
    expect_free(f, "/api/begin-downtime/127.0.0.1/3302/alice/x/soon", 400, "is not a duration");
    expect_free(f, "/api/begin-downtime/127.0.0.1/3302/alice/x/999999999999", 400,
                "longer than 10 years");
    expect_free(f, "/api/begin-downtime/127.0.0.1/3302/alice/x/99999w", 400,
                "longer than 10 years");
    expect_free(f, "/api/begin-downtime/127.0.0.1/3999/alice/x", 404,
                "Cannot read instance: 127.0.0.1:3999");
    expect_free(f, "/api/end-downtime/127.0.0.1/3999", 404, "Cannot read instance");
    expect_free(f, "/api/register-candidate/127.0.0.1/3302/best", 400,
                "Invalid promotion rule 'best'");
    expect_free(f, "/api/set-cluster-alias/nosuch?alias=x", 404, "clusterHint=nosuch");
    assert_int_equal(f->fk.ncalls, calls);

    expect_free(f, "/api/end-downtime/127.0.0.1/3302", 200, "Downtime ended: 127.0.0.1:3302");
    assert_int_equal(f->fk.op.kind, STORE_OP_END_DOWNTIME);
    expect_free(f, "/api/begin-maintenance/127.0.0.1/3303/bob/upgrade/2h", 200,
                "Maintenance begun: 127.0.0.1:3303 for 7200 s");
    assert_int_equal(f->fk.op.kind, STORE_OP_BEGIN_MAINTENANCE);
    assert_string_equal(f->fk.op_owner, "bob");
    expect_free(f, "/api/begin-maintenance/127.0.0.1/3303/bob/upgrade", 200, "for 600 s");
    expect_free(f, "/api/end-maintenance/127.0.0.1/3303", 200, "Maintenance ended");
    assert_int_equal(f->fk.op.kind, STORE_OP_END_MAINTENANCE);
    const char *rules[] = {"prefer", "neutral", "prefer_not", "must_not"};
    for (int k = 0; k < 4; k++) {
        char target[96];
        snprintf(target, sizeof(target), "/api/register-candidate/127.0.0.1/3302/%s", rules[k]);
        expect_free(f, target, 200, "Registered candidate 127.0.0.1:3302");
        assert_int_equal(f->fk.op.kind, STORE_OP_REGISTER_CANDIDATE);
        assert_string_equal(f->fk.op_rule, rules[k]);
        assert_int_equal(f->fk.op.duration_ms, 3600000);
    }
    expect_free(f, "/api/set-cluster-alias/127.0.0.1:3302?alias=shop", 200,
                "Cluster 127.0.0.1:3301 now has alias 'shop'");
    assert_int_equal(f->fk.op.kind, STORE_OP_SET_CLUSTER_ALIAS);
    assert_string_equal(f->fk.op_cluster, "127.0.0.1:3301");
    assert_string_equal(f->fk.op_alias, "shop");
    expect_free(f, "/api/set-cluster-alias/main", 200, "now has alias ''");
    assert_string_equal(f->fk.op_alias, "");

    /* the global switch */
    r = expect(f, "/api/disable-global-recoveries", 200, "Globally disabled recoveries");
    assert_string_equal(json_string_value(json_object_get(r.json, "Details")), "disabled");
    resp_free(&r);
    assert_int_equal(f->fk.op.kind, STORE_OP_SET_GLOBAL_SETTING);
    assert_string_equal(f->fk.op_name, "recoveries_disabled");
    assert_string_equal(f->fk.op_value, "1");
    r = expect(f, "/api/enable-global-recoveries", 200, "Globally enabled recoveries");
    assert_string_equal(json_string_value(json_object_get(r.json, "Details")), "enabled");
    resp_free(&r);
    assert_true(f->fk.op_value_null);
    r = expect(f, "/api/check-global-recoveries", 200, "Global recoveries enabled");
    assert_string_equal(json_string_value(json_object_get(r.json, "Details")), "enabled");
    resp_free(&r);
    f->fk.disabled = true;
    r = expect(f, "/api/check-global-recoveries", 200, "Global recoveries disabled");
    assert_string_equal(json_string_value(json_object_get(r.json, "Details")), "disabled");
    resp_free(&r);

    /* the backend refuses */
    f->fk.op_result = ORCH_ERR_MYSQL;
    expect_free(f, "/api/end-downtime/127.0.0.1/3302", 503, "Lost connection");
}

static void test_audit_routes(void **state)
{
    fixture *f = *state;
    resp r = expect(f, "/api/audit-recovery", 200, NULL);
    assert_int_equal(json_array_size(r.json), 1);
    json_t *rec = json_array_get(r.json, 0);
    assert_string_equal(json_string_value(json_object_get(rec, "UID")), "18f-abc");
    assert_int_equal(json_integer_value(json_object_get(rec, "Id")), 1);
    assert_string_equal(json_string_value(json_object_get(rec, "RecoveryStartTimestamp")),
                        "2030-01-01 00:00:00");
    resp_free(&r);
    assert_non_null(strstr(f->fk.sql, "FROM recovery r WHERE 1 = 1 ORDER BY r.started_at DESC"));
    assert_non_null(strstr(f->fk.sql, "LIMIT 20 OFFSET 0"));

    const struct {
        const char *target, *sql;
    } cases[] = {
        {"/api/audit-recovery/2", "LIMIT 20 OFFSET 40"},
        {"/api/audit-recovery?page=3", "LIMIT 20 OFFSET 60"},
        {"/api/audit-recovery?unacknowledged=true", "AND r.acknowledged = 0"},
        {"/api/audit-recovery/uid/18f-abc", "AND r.uid = CONVERT(X'3138662d616263'"},
        {"/api/audit-recovery/main", "cluster_alias IN ("},
        {"/api/audit-recovery/cluster/main/1", "LIMIT 20 OFFSET 20"},
        {"/api/audit-recovery/alias/main", "successor_host), ':', successor_port) = "},
        {"/api/audit-failure-detection", "FROM failure_detection WHERE 1 = 1 ORDER BY id DESC"},
        {"/api/audit-failure-detection/2", "OFFSET 40"},
        {"/api/audit-failure-detection/id/12", "AND id = 12"},
        {"/api/audit-failure-detection/alias/main", "AND (cluster IN ("},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        r = expect(f, cases[k].target, 200, NULL);
        assert_int_equal(json_array_size(r.json), 1);
        resp_free(&r);
        if (strstr(f->fk.sql, cases[k].sql) == NULL)
            fail_msg("%s: SQL lacks '%s': %s", cases[k].target, cases[k].sql, f->fk.sql);
    }
    r = expect(f, "/api/audit-failure-detection", 200, NULL);
    rec = json_array_get(r.json, 0);
    assert_int_equal(json_integer_value(json_object_get(rec, "Id")), 12);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "AnalysisEntry"), "Analysis")),
        "DeadMaster");
    resp_free(&r);
    r = expect(f, "/api/audit-recovery-steps/18f-abc", 200, NULL);
    assert_int_equal(json_array_size(r.json), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.json, 1), "Message")),
                        "promoted");
    resp_free(&r);
    assert_non_null(strstr(f->fk.sql, "FROM recovery_step WHERE uid = "));

    size_t calls = f->fk.ncalls;
    expect_free(f, "/api/audit-failure-detection/x", 400, "Invalid page: 'x'");
    expect_free(f, "/api/audit-recovery?page=-1", 400, "Invalid page");
    expect_free(f, "/api/audit-recovery/cluster/main/100001", 400, "0..100000");
    expect_free(f, "/api/audit-failure-detection/id/x", 400, "Invalid detection id");
    assert_int_equal(f->fk.ncalls, calls);

    f->fk.batch_fail = true;
    expect_free(f, "/api/audit-recovery", 500, "Cannot read from the backend: Lost connection");
}

static void test_ack_routes(void **state)
{
    fixture *f = *state;
    size_t calls = f->fk.ncalls;
    expect_free(f, "/api/ack-recovery/cluster/main", 400, "No acknowledge comment given");
    expect_free(f, "/api/ack-all-recoveries?comment=%20%20", 400, "No acknowledge comment");
    assert_int_equal(f->fk.ncalls, calls);

    resp r = expect(f, "/api/ack-recovery/cluster/main?comment=seen%20it", 200,
                    "Acknowledged cluster recoveries of 127.0.0.1:3301: 2 recoveries acknowledged");
    assert_int_equal(json_integer_value(json_object_get(r.json, "Details")), 2);
    resp_free(&r);
    assert_non_null(strstr(f->fk.sql, "UPDATE recovery SET acknowledged = 1, acknowledged_at = "
                                      "NOW(6), acknowledged_by = CONVERT(X'6f726368'"));
    assert_non_null(strstr(f->fk.sql, "WHERE acknowledged = 0 AND state <> 'running' AND "));
    assert_non_null(strstr(f->fk.sql, "cluster IN ("));

    const struct {
        const char *target, *msg, *sql;
    } cases[] = {
        {"/api/ack-recovery/cluster/alias/main?comment=x", "of 127.0.0.1:3301", "cluster IN ("},
        {"/api/ack-recovery/cluster/gone:3306?comment=x", "of gone:3306", "cluster IN ("},
        {"/api/ack-recovery/instance/db.example/3302?comment=x",
         "Acknowledged instance recoveries of 127.0.0.1:3302", "AND failed_port = 3302"},
        {"/api/ack-recovery/18f-abc?comment=x", "Acknowledged recovery 18f-abc", "uid = "},
        {"/api/ack-recovery/uid/18f-abc?comment=x", "Acknowledged recovery 18f-abc", "uid = "},
        {"/api/ack-all-recoveries?comment=x", "Acknowledged all recoveries", "AND 1 = 1"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        expect_free(f, cases[k].target, 200, cases[k].msg);
        if (strstr(f->fk.sql, cases[k].sql) == NULL)
            fail_msg("%s: SQL lacks '%s': %s", cases[k].target, cases[k].sql, f->fk.sql);
    }

    /* acknowledged by the basic-auth user */
    api_auth auth = {.mode = COORD_AUTH_BASIC, .user = "admin", .password = "s3cret"};
    assert_int_equal(api_set_auth(f->a, &auth), ORCH_OK);
    r = request(f, "GET", "/api/ack-all-recoveries?comment=x", "admin:s3cret");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_non_null(strstr(f->fk.sql, "acknowledged_by = CONVERT(X'61646d696e'"));
}

static void test_write_routes_auth(void **state)
{
    fixture *f = *state;
    api_auth auth = {.mode = COORD_AUTH_BASIC_READONLY,
                     .user = "admin",
                     .password = "s3cret",
                     .readonly_user = "viewer",
                     .readonly_password = "look"};
    assert_int_equal(api_set_auth(f->a, &auth), ORCH_OK);
    const char *writes[] = {"/api/recover/127.0.0.1/3301",
                            "/api/force-master-failover/main",
                            "/api/ack-all-recoveries?comment=x",
                            "/api/ack-recovery/cluster/main?comment=x",
                            "/api/disable-global-recoveries",
                            "/api/enable-global-recoveries",
                            "/api/begin-downtime/127.0.0.1/3302/a/b",
                            "/api/end-downtime/127.0.0.1/3302",
                            "/api/begin-maintenance/127.0.0.1/3302/a/b",
                            "/api/end-maintenance/127.0.0.1/3302",
                            "/api/register-candidate/127.0.0.1/3302/prefer",
                            "/api/set-cluster-alias/main?alias=x",
                            "/api/relocate/127.0.0.1/3302/127.0.0.1/3301",
                            "/api/graceful-master-takeover/main/127.0.0.1/3302",
                            "/api/set-writeable/127.0.0.1/3302"};
    for (size_t k = 0; k < sizeof(writes) / sizeof(writes[0]); k++) {
        resp r = request(f, "GET", writes[k], "viewer:look");
        if (r.status != 403)
            fail_msg("%s: %d for the read-only user", writes[k], r.status);
        assert_non_null(strstr(msg_of(&r), "the read-only user cannot run"));
        resp_free(&r);
        r = request(f, "GET", writes[k], NULL);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    assert_int_equal(f->fk.ncalls, 0);
    const char *reads[] = {"/api/replication-analysis", "/api/check-global-recoveries",
                           "/api/audit-recovery", "/api/audit-failure-detection",
                           "/api/audit-recovery-steps/18f-abc"};
    for (size_t k = 0; k < sizeof(reads) / sizeof(reads[0]); k++) {
        resp r = request(f, "GET", reads[k], "viewer:look");
        if (r.status != 200)
            fail_msg("%s: %d for the read-only user", reads[k], r.status);
        resp_free(&r);
    }
    resp r = request(f, "GET", "/api/begin-downtime/127.0.0.1/3302/a/b", "admin:s3cret");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* HEAD must not write */
    size_t calls = f->fk.ncalls;
    r = request(f, "HEAD", "/api/recover/127.0.0.1/3301", "admin:s3cret");
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow"), "GET");
    resp_free(&r);
    r = request(f, "HEAD", "/api/replication-analysis", "viewer:look");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(f->fk.ncalls, calls);
}

/* Sends target and hangs up (with a reset when rst) before the answer. */
static void hang_up(fixture *f, const char *target, bool rst)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    assert_int_equal(write(fd, req, (size_t)n), n);
    for (int k = 0; k < 20; k++) { /* the request is read and its answer owed */
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    if (rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
    for (int k = 0; k < 20; k++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

/* Clients gone before the backend or the recovery answers leave nothing behind;
 * answers still owed at api_stop (teardown) are dropped as safely. */
static void test_answers_owed_to_clients_gone(void **state)
{
    fixture *f = *state;
    f->fk.hold = true;
    const char *targets[] = {"/api/recover/127.0.0.1/3301", "/api/audit-recovery",
                             "/api/ack-all-recoveries?comment=x",
                             "/api/begin-downtime/127.0.0.1/3302/a/b"};
    for (int k = 0; k < 8; k++)
        hang_up(f, targets[k % 4], k >= 4);
    assert_int_equal(f->fk.ncalls, 8);
    f->fk.hold = false;
    /* libevent notices a client gone only when the answer is written: the
     * recoveries' records are still read for them */
    fake_answer(-1, 0, &f->fk);
    for (int k = 0; k < 20; k++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    resp r = expect(f, "/api/recover/127.0.0.1/3301", 200, "Recovery executed");
    resp_free(&r);

    /* owed at teardown: one to a client still connected, one to a client gone */
    f->fk.hold = true;
    hang_up(f, "/api/recover/127.0.0.1/3301", false);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char req[] = "GET /api/audit-recovery HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    for (int k = 0; k < 20; k++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    close(fd);
}

static void test_route_table(void **state)
{
    (void)state;
    bool w = true;
    assert_string_equal(api_route_find("api/instance/db1/3306", &w), "api/instance/:host/:port");
    assert_false(w);
    assert_string_equal(api_route_find("/api/cluster/alias/x", NULL), "api/cluster/alias/:alias");
    assert_string_equal(api_route_find("api/cluster/x", NULL), "api/cluster/:hint");
    assert_string_equal(api_route_find("api/topology/h/1", NULL), "api/topology/:host/:port");
    assert_string_equal(api_route_find("/", NULL), "");
    assert_string_equal(api_route_find("metrics", NULL), "metrics");
    assert_null(api_route_find("api/instance/db1", NULL));
    assert_null(api_route_find("api/instance//3306", NULL));
    assert_null(api_route_find("api", NULL));
    assert_null(api_route_find(NULL, NULL));

    /* recovery and operator state: reads, writes */
    const struct {
        const char *path, *pattern;
        bool writes;
    } cases[] = {
        {"api/replication-analysis", "api/replication-analysis", false},
        {"api/replication-analysis/main", "api/replication-analysis/:hint", false},
        {"api/replication-analysis/instance/h/1", "api/replication-analysis/instance/:host/:port",
         false},
        {"api/audit-recovery/3", "api/audit-recovery/:ph", false},
        {"api/audit-recovery/uid/x", "api/audit-recovery/uid/:uid", false},
        {"api/audit-recovery/cluster/c/2", "api/audit-recovery/cluster/:hint/:page", false},
        {"api/audit-recovery-steps/x", "api/audit-recovery-steps/:uid", false},
        {"api/audit-failure-detection/id/3", "api/audit-failure-detection/id/:id", false},
        {"api/check-global-recoveries", "api/check-global-recoveries", false},
        {"api/blocked-recoveries", "api/blocked-recoveries", false},
        {"api/blocked-recoveries/cluster/c", "api/blocked-recoveries/cluster/:hint", false},
        {"api/recover/h/1", "api/recover/:host/:port", true},
        {"api/recover/h/1/c/2", "api/recover/:host/:port/:chost/:cport", true},
        {"api/force-master-failover/c", "api/force-master-failover/:hint", true},
        {"api/force-master-takeover/c/h/1",
         "api/force-master-takeover/:clusterHint/:designatedHost/:designatedPort", true},
        {"api/ack-recovery/cluster/alias/a", "api/ack-recovery/cluster/alias/:alias", true},
        {"api/ack-recovery/x", "api/ack-recovery/:uid", true},
        {"api/ack-all-recoveries", "api/ack-all-recoveries", true},
        {"api/disable-global-recoveries", "api/disable-global-recoveries", true},
        {"api/begin-downtime/h/1/o/r", "api/begin-downtime/:host/:port/:owner/:reason", true},
        {"api/begin-downtime/h/1/o/r/1h", "api/begin-downtime/:host/:port/:owner/:reason/:duration",
         true},
        {"api/end-maintenance/h/1", "api/end-maintenance/:host/:port", true},
        {"api/register-candidate/h/1/prefer", "api/register-candidate/:host/:port/:rule", true},
        {"api/set-cluster-alias/c", "api/set-cluster-alias/:hint", true},
        {"api/forget/h/1", "api/forget/:host/:port", true},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *pat = api_route_find(cases[k].path, &w);
        if (pat == NULL || strcmp(pat, cases[k].pattern) != 0 || w != cases[k].writes)
            fail_msg("%s: %s (writes %d)", cases[k].path, pat ? pat : "no route", w);
    }
    /* the topology operations: leader-only write routes (orchestrator's patterns) */
    static const struct {
        const char *path, *pattern;
    } ops[] = {
        {"api/relocate/h/1/b/2", "api/relocate/:host/:port/:belowHost/:belowPort"},
        {"api/move-up/h/1", "api/move-up/:host/:port"},
        {"api/move-below/h/1/s/2", "api/move-below/:host/:port/:siblingHost/:siblingPort"},
        {"api/repoint/h/1/b/2", "api/repoint/:host/:port/:belowHost/:belowPort"},
        {"api/take-master/h/1", "api/take-master/:host/:port"},
        {"api/graceful-master-takeover/c/d/2",
         "api/graceful-master-takeover/:clusterHint/:designatedHost/:designatedPort"},
        {"api/graceful-master-takeover/c", "api/graceful-master-takeover/:clusterHint"},
        {"api/stop-slave/h/1", "api/stop-slave/:host/:port"},
        {"api/stop-replica/h/1", "api/stop-replica/:host/:port"},
        {"api/start-slave/h/1", "api/start-slave/:host/:port"},
        {"api/start-replica/h/1", "api/start-replica/:host/:port"},
        {"api/set-read-only/h/1", "api/set-read-only/:host/:port"},
        {"api/set-writeable/h/1", "api/set-writeable/:host/:port"},
        {"api/relocate-replicas/h/1/b/2",
         "api/relocate-replicas/:host/:port/:belowHost/:belowPort"},
        {"api/move-up-replicas/h/1", "api/move-up-replicas/:host/:port"},
        {"api/restart-slave/h/1", "api/restart-slave/:host/:port"},
        {"api/restart-replica/h/1", "api/restart-replica/:host/:port"},
        {"api/graceful-master-takeover-auto/c", "api/graceful-master-takeover-auto/:clusterHint"},
        {"api/graceful-master-takeover-auto/c/d/2",
         "api/graceful-master-takeover-auto/:clusterHint/:designatedHost/:designatedPort"},
    };
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        w = false;
        const char *pat = api_route_find(ops[k].path, &w);
        if (pat == NULL || strcmp(pat, ops[k].pattern) != 0 || !w)
            fail_msg("%s: %s (writes %d)", ops[k].path, pat ? pat : "no route", w);
    }
    assert_null(api_route_find("api/relocate/h/1", NULL));
}

static void test_start_errors(void **state)
{
    fixture *f = *state;
    api_deps deps = {.reg = f->reg};
    char msg[256];
    assert_null(api_start(f->base, "nonsense", &deps, NULL, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "no port"));
    assert_null(api_start(f->base, "127.0.0.1:99999", &deps, NULL, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "0..65535"));
    char busy[64];
    snprintf(busy, sizeof(busy), "127.0.0.1:%u", (unsigned)f->port);
    assert_null(api_start(f->base, busy, &deps, NULL, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "cannot listen"));
    api_deps none = {0};
    assert_null(api_start(f->base, "127.0.0.1:0", &none, NULL, msg, sizeof(msg)));
    api_stop(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the coordinator does: clients may hang up mid-answer */
    orch_log_set_level(ORCH_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clusters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topology, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_and_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_lists, setup_stream, teardown),
        cmocka_unit_test_setup_teardown(test_stream_client_gone, setup_stream, teardown),
        cmocka_unit_test_setup_teardown(test_stream_stop_midway, setup_stream, teardown),
        cmocka_unit_test_setup_teardown(test_analysis_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_forwards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_state_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_routes_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_owed_to_clients_gone, setup, teardown),
        cmocka_unit_test(test_route_table),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
