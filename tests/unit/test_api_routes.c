/*
 * Tests of api.c against a real evhttp server on an ephemeral 127.0.0.1
 * port. The test drives the event base itself (event_base_loop with
 * EVLOOP_NONBLOCK) while a tiny blocking-socket client waits for the answer,
 * so everything runs on one thread, as on the coordinator's loop.
 *
 * Every route is called, with its error paths: unknown instances and
 * clusters (404), bad keys (400), unknown routes (404), other methods (405),
 * over-long URLs (414), HEAD, authentication (401/403) and the request
 * metrics.
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

typedef struct fixture {
    struct event_base *base;
    registry *reg;
    metrics *m;
    api *a;
    uint16_t port;
    bool is_leader;
    bool backend_ok;
    api_node_info nodes[2];
} fixture;

static void leader_cb(void *arg, api_leader_info *out)
{
    fixture *f = arg;
    out->is_leader = f->is_leader;
    out->epoch = 42;
    out->node = "coord-a";
    out->leader = f->is_leader ? "coord-a" : "coord-b";
    out->leader_api = f->is_leader ? "http://a:3000" : "http://b:3000";
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
    api_deps deps = {
        .reg = f->reg,
        .m = f->m,
        .leader = leader_cb,
        .health = health_cb,
        .arg = f,
        .stale_after_ms = 60000,
        .recover_master = true,
        .stream_batch = batch,
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

    /* the decision itself, including write routes (none are served yet) */
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
        cmocka_unit_test(test_route_table),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
