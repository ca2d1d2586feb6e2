/*
 * api.c: the coordinator's HTTP server (libevent's evhttp on the loop).
 *
 * One generic callback takes every request and walks the same steps:
 *   1. URL at most 2 KiB (414), path split into percent-decoded segments;
 *   2. route lookup in the table below (first match; literals and ":params",
 *      same number of segments);
 *   3. authentication, before anything about the route is revealed (401,
 *      403 for the read-only user on a write route);
 *   4. unknown route (404), method other than GET/HEAD (405);
 *   5. parameter extraction and validation (":host"/":port" through
 *      orch_key_make: 400 naming what was wrong);
 *   6. the handler, which answers through reply_json/reply_text/reply_error;
 *      every answer is counted in orch_api_requests_total{route,code} and
 *      timed in orch_api_request_duration_seconds{route}.
 *
 * What orchestrator returns, learned from its go/http/api.go and kept here:
 * lists and instances are bare JSON (no envelope); topology, health and
 * status use the envelope with the text or health report in Details;
 * leader-check answers the JSON string "OK" with 200 on the leader and
 * "Not leader" with 404 (or the status given as leader-check/:code)
 * elsewhere; failures are {"Code":"ERROR","Message":...,"Details":null}.
 * orchestrator answers every failure with 500; orch keeps 500 for its own
 * failures and uses 400/404 where the request is at fault (orchestrator-
 * client reads only "Code", so it behaves the same).
 *
 * HEAD gets the headers of the GET answer (Content-Length included) and no
 * body: evhttp would otherwise send the body of a HEAD reply. A write route
 * refuses HEAD (405): a probe must not start a recovery.
 *
 * Recovery and operator-state routes (orchestrator's go/http/api.go, its
 * ReplicationAnalysis in go/inst/analysis.go, TopologyRecovery and the
 * acknowledgements in go/logic/topology_recovery*.go):
 *   reads   replication-analysis[/:hint | /instance/:host/:port] from the
 *           newest analysis in memory, in the envelope with Message
 *           "Analysis" (plus what is warming up); audit-recovery,
 *           audit-recovery-steps, audit-failure-detection from the backend,
 *           bare JSON arrays, pages of 20 (orchestrator's AuditPageSize);
 *           check-global-recoveries from the operator snapshot;
 *   leader  recover, force-master-failover: answered when the recovery ends,
 *           from its record; 503 with the leader's API URL on a follower;
 *           the topology operations (relocate, move-up, move-below, repoint,
 *           take-master, graceful-master-takeover, stop/start-slave|replica,
 *           set-read-only, set-writeable) likewise, when the operation ends:
 *           200 with its message, 500 when it failed; a refusal before it
 *           starts is 404 (unknown instance), 409 (the rules), 400;
 *   any     ack-recovery..., ack-all-recoveries (a comment is required, as in
 *           orchestrator; Details is the count acknowledged), the global
 *           switch, downtime, maintenance, candidates, cluster aliases.
 * Those answered later keep an api_pending (below): its done callback answers
 * if the client is still there and frees it in every case.
 */
#include "api.h"

#include "clock.h"
#include "log.h"
#include "render.h"
#include "sbuf.h"

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <mbedtls/sha256.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define API_MAX_URI         2048 /* longer request targets get 414 */
#define API_MAX_SEGS        8    /* more path segments than any route has: 404 */
#define API_MAX_AUTH        1024 /* longest Authorization header considered */
#define API_TIMEOUT_S       30   /* idle/slow connections are dropped */
#define API_AUDIT_PAGE      20   /* audit rows per page, as orchestrator's AuditPageSize */
#define API_MAX_PAGE        100000
#define API_DEFAULT_MAINT_S (10 * 60) /* orchestrator's MaintenanceExpireMinutes */
#define API_CANDIDATE_S     (60 * 60) /* orchestrator's CandidateDatabaseInstanceExpireMinutes */
#define API_MAX_DURATION_S  (10LL * 366 * 24 * 3600) /* store.c's bound: 10 years */

/* ---- state ------------------------------------------------------------------ */

typedef struct auth_state {
    coord_auth_mode mode;
    uint8_t user[32], password[32];       /* SHA-256 of each */
    uint8_t ro_user[32], ro_password[32]; /* SHA-256 of each */
} auth_state;

typedef struct api_stream api_stream;
typedef struct api_pending api_pending;
typedef struct api_forward api_forward;

struct api {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    uint16_t port;
    api_deps deps;
    size_t batch; /* instances per streamed chunk; longer lists are streamed */
    auth_state auth;
    api_stream *streams;    /* in flight */
    api_backend be;         /* recovery.c and store.c, or the tests' fakes */
    api_pending *pendings;  /* answers owed by the backend or a recovery */
    api_forward *forwards;  /* leader routes sent on to the leader, not answered yet */
    api_forward *reap;      /* forwards whose connection libevent left to us (see on_forwarded) */
    struct event *reaper;   /* frees them, outside libevent's callbacks */
    struct evdns_base *dns; /* resolves a leader's host name without blocking the loop */
};

typedef struct api_req api_req;
typedef void (*api_handler)(api_req *r);

enum {
    ROUTE_WRITES = 1u << 0, /* changes something: refused to the read-only user and to HEAD */
    ROUTE_LEADER = 1u << 1, /* the leader's: a follower forwards it (or answers 503) */
};

typedef struct api_route {
    const char *pattern; /* from the root, without the leading '/'; also the metrics label */
    api_handler fn;
    unsigned flags;
} api_route;

struct api_req {
    api *a;
    struct evhttp_request *req;
    const api_route *route;
    const char *path; /* as requested, still encoded (for messages) */
    int64_t start_us;
    bool head;
    bool replied;
    /* parameters */
    const char *hint;   /* :hint, :alias; :ph when it is not a page number */
    const char *search; /* :s */
    const char *code;   /* :code */
    const char *page;   /* :page; :ph when it is all digits */
    const char *uid;    /* :uid */
    const char *id;     /* :id */
    const char *owner, *reason, *duration, *rule; /* downtime, maintenance, candidates */
    bool has_key;
    orch_key key;
    char key_str[ORCH_KEY_STRLEN];
    bool has_cand; /* :chost/:cport (recover's candidate) */
    orch_key cand;
    char cand_str[ORCH_KEY_STRLEN];
    struct evkeyvalq query;
    bool has_query;
    render_ctx rc;
};

static void h_leader_check(api_req *r);
static void h_health(api_req *r);
static void h_lb_check(api_req *r);
static void h_clusters(api_req *r);
static void h_clusters_info(api_req *r);
static void h_cluster(api_req *r);
static void h_cluster_info(api_req *r);
static void h_instance(api_req *r);
static void h_instance_replicas(api_req *r);
static void h_master(api_req *r);
static void h_masters(api_req *r);
static void h_all_instances(api_req *r);
static void h_topology(api_req *r);
static void h_search(api_req *r);
static void h_problems(api_req *r);
static void h_metrics(api_req *r);
static void h_page(api_req *r);
static void h_analysis(api_req *r);
static void h_audit_recovery(api_req *r);
static void h_audit_steps(api_req *r);
static void h_audit_detection(api_req *r);
static void h_check_global(api_req *r);
static void h_blocked(api_req *r);
static void h_recover(api_req *r);
static void h_force_failover(api_req *r);
static void h_operation(api_req *r);
static void h_ack_cluster(api_req *r);
static void h_ack_instance(api_req *r);
static void h_ack_uid(api_req *r);
static void h_ack_all(api_req *r);
static void h_global(api_req *r);
static void h_begin_downtime(api_req *r);
static void h_end_downtime(api_req *r);
static void h_begin_maintenance(api_req *r);
static void h_end_maintenance(api_req *r);
static void h_register_candidate(api_req *r);
static void h_set_alias(api_req *r);
static void h_forget(api_req *r);

/*
 * The route table. Patterns are matched in order; parameters:
 *   :host/:port  an instance key (validated by orch_key_make)
 *   :hint        a cluster: its name, its alias, or any member's host[:port]
 *   :alias       same as :hint (orchestrator's /alias/ routes)
 *   :code        leader-check's status for "not leader"
 *   :s           a search string
 *   :chost/:cport  a second instance key (recover's candidate); the
 *                operations' :belowHost/:belowPort, :siblingHost/:siblingPort
 *                and :designatedHost/:designatedPort are the same
 *   :clusterHint same as :hint (graceful-master-takeover)
 *   :page        an audit page (0..100000); :ph a page if all digits, else a hint
 *   :uid, :id    a recovery's UID, a failure detection's id
 *   :owner, :reason, :duration, :rule  operator state
 * Write routes (ROUTE_WRITES) are refused to the read-only user and to HEAD;
 * ROUTE_LEADER ones are forwarded by a follower to the leader (503 when it
 * cannot be: no leader known, already forwarded once). The topology operations are all
 * served by h_operation, which tells them apart by the route's first segment.
 */
#define W ROUTE_WRITES
#define L (ROUTE_WRITES | ROUTE_LEADER)
static const api_route routes[] = {
    {"", h_page, 0},
    {"metrics", h_metrics, 0},
    {"api/leader-check", h_leader_check, 0},
    {"api/leader-check/:code", h_leader_check, 0},
    {"api/health", h_health, 0},
    {"api/status", h_health, 0},
    {"api/lb-check", h_lb_check, 0},
    {"api/_ping", h_lb_check, 0},
    {"api/clusters", h_clusters, 0},
    {"api/clusters-info", h_clusters_info, 0},
    {"api/cluster/alias/:alias", h_cluster, 0},
    {"api/cluster/instance/:host/:port", h_cluster, 0},
    {"api/cluster/:hint", h_cluster, 0},
    {"api/cluster-info/alias/:alias", h_cluster_info, 0},
    {"api/cluster-info/:hint", h_cluster_info, 0},
    {"api/instance/:host/:port", h_instance, 0},
    {"api/instance-replicas/:host/:port", h_instance_replicas, 0},
    {"api/master/:hint", h_master, 0},
    {"api/masters", h_masters, 0},
    {"api/all-instances", h_all_instances, 0},
    {"api/topology/:hint", h_topology, 0},
    {"api/topology/:host/:port", h_topology, 0},
    {"api/search", h_search, 0},
    {"api/search/:s", h_search, 0},
    {"api/problems", h_problems, 0},
    {"api/problems/:hint", h_problems, 0},
    /* failure analysis and recovery */
    {"api/replication-analysis", h_analysis, 0},
    {"api/replication-analysis/instance/:host/:port", h_analysis, 0},
    {"api/replication-analysis/:hint", h_analysis, 0},
    {"api/audit-recovery", h_audit_recovery, 0},
    {"api/audit-recovery/uid/:uid", h_audit_recovery, 0},
    {"api/audit-recovery/cluster/:hint", h_audit_recovery, 0},
    {"api/audit-recovery/cluster/:hint/:page", h_audit_recovery, 0},
    {"api/audit-recovery/alias/:alias", h_audit_recovery, 0},
    {"api/audit-recovery/:ph", h_audit_recovery, 0},
    {"api/audit-recovery-steps/:uid", h_audit_steps, 0},
    {"api/audit-failure-detection", h_audit_detection, 0},
    {"api/audit-failure-detection/id/:id", h_audit_detection, 0},
    {"api/audit-failure-detection/alias/:alias", h_audit_detection, 0},
    {"api/audit-failure-detection/:page", h_audit_detection, 0},
    {"api/check-global-recoveries", h_check_global, 0},
    {"api/blocked-recoveries", h_blocked, 0},
    {"api/blocked-recoveries/cluster/:hint", h_blocked, 0},
    {"api/recover/:host/:port", h_recover, L},
    {"api/recover/:host/:port/:chost/:cport", h_recover, L},
    {"api/force-master-failover/:host/:port", h_force_failover, L},
    {"api/force-master-failover/:hint", h_force_failover, L},
    {"api/force-master-takeover/:clusterHint/:designatedHost/:designatedPort", h_force_failover, L},
    /* topology operations (operations.c) */
    {"api/relocate/:host/:port/:belowHost/:belowPort", h_operation, L},
    {"api/relocate-replicas/:host/:port/:belowHost/:belowPort", h_operation, L},
    {"api/move-up/:host/:port", h_operation, L},
    {"api/move-up-replicas/:host/:port", h_operation, L},
    {"api/move-below/:host/:port/:siblingHost/:siblingPort", h_operation, L},
    {"api/repoint/:host/:port/:belowHost/:belowPort", h_operation, L},
    {"api/take-master/:host/:port", h_operation, L},
    {"api/graceful-master-takeover/:clusterHint/:designatedHost/:designatedPort", h_operation, L},
    {"api/graceful-master-takeover/:clusterHint", h_operation, L},
    {"api/graceful-master-takeover-auto/:clusterHint/:designatedHost/:designatedPort", h_operation,
     L},
    {"api/graceful-master-takeover-auto/:clusterHint", h_operation, L},
    {"api/stop-slave/:host/:port", h_operation, L},
    {"api/stop-replica/:host/:port", h_operation, L},
    {"api/start-slave/:host/:port", h_operation, L},
    {"api/start-replica/:host/:port", h_operation, L},
    {"api/restart-slave/:host/:port", h_operation, L},
    {"api/restart-replica/:host/:port", h_operation, L},
    {"api/set-read-only/:host/:port", h_operation, L},
    {"api/set-writeable/:host/:port", h_operation, L},
    {"api/ack-recovery/cluster/alias/:alias", h_ack_cluster, W},
    {"api/ack-recovery/cluster/:hint", h_ack_cluster, W},
    {"api/ack-recovery/instance/:host/:port", h_ack_instance, W},
    {"api/ack-recovery/uid/:uid", h_ack_uid, W},
    {"api/ack-recovery/:uid", h_ack_uid, W},
    {"api/ack-all-recoveries", h_ack_all, W},
    {"api/disable-global-recoveries", h_global, W},
    {"api/enable-global-recoveries", h_global, W},
    /* operator state */
    {"api/begin-downtime/:host/:port/:owner/:reason", h_begin_downtime, W},
    {"api/begin-downtime/:host/:port/:owner/:reason/:duration", h_begin_downtime, W},
    {"api/end-downtime/:host/:port", h_end_downtime, W},
    {"api/begin-maintenance/:host/:port/:owner/:reason", h_begin_maintenance, W},
    {"api/begin-maintenance/:host/:port/:owner/:reason/:duration", h_begin_maintenance, W},
    {"api/end-maintenance/:host/:port", h_end_maintenance, W},
    {"api/register-candidate/:host/:port/:rule", h_register_candidate, W},
    {"api/set-cluster-alias/:hint", h_set_alias, W},
    {"api/forget/:host/:port", h_forget, W},
};
#undef W
#undef L

/* ---- route matching ---------------------------------------------------------- */

/* True when segs match pattern: equal literals, a non-empty segment for each ":param". */
static bool route_match(const char *pattern, char *const *segs, size_t nsegs)
{
    const char *p = pattern;
    size_t k = 0;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (k >= nsegs)
            return false;
        if (p[0] == ':') {
            if (segs[k][0] == '\0')
                return false;
        } else if (strlen(segs[k]) != n || memcmp(segs[k], p, n) != 0) {
            return false;
        }
        k++;
        p += n;
        if (*p == '/')
            p++;
    }
    return k == nsegs;
}

static const api_route *route_lookup(char *const *segs, size_t nsegs)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (route_match(routes[i].pattern, segs, nsegs))
            return &routes[i];
    return NULL;
}

static void free_segs(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(segs[i]);
}

/*
 * Splits an encoded path ("/api/instance/db%2D1/3306") into decoded segments.
 * A trailing '/' is ignored. Returns false (with *toomany or *bad set) for
 * more than API_MAX_SEGS segments or a segment that decodes to a NUL byte;
 * NOMEM sets *bad too.
 */
static bool split_path(const char *path, char **segs, size_t *nsegs, bool *toomany, bool *bad)
{
    *nsegs = 0;
    *toomany = *bad = false;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (*nsegs == API_MAX_SEGS) {
            *toomany = true;
            goto fail;
        }
        char *raw = strndup(p, n);
        if (raw == NULL) {
            *bad = true;
            goto fail;
        }
        size_t dlen = 0;
        char *dec = evhttp_uridecode(raw, 0, &dlen);
        free(raw);
        if (dec == NULL || strlen(dec) != dlen) {
            free(dec);
            *bad = true;
            goto fail;
        }
        segs[(*nsegs)++] = dec;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
fail:
    free_segs(segs, *nsegs);
    *nsegs = 0;
    return false;
}

const char *api_route_find(const char *path, bool *writes)
{
    char *segs[API_MAX_SEGS];
    size_t n;
    bool toomany, bad;
    if (writes != NULL)
        *writes = false;
    if (path == NULL || !split_path(path, segs, &n, &toomany, &bad))
        return NULL;
    const api_route *rt = route_lookup(segs, n);
    free_segs(segs, n);
    if (rt == NULL)
        return NULL;
    if (writes != NULL)
        *writes = (rt->flags & ROUTE_WRITES) != 0;
    return rt->pattern;
}

/* ---- authentication ----------------------------------------------------------- */

static void sha256_str(const char *s, uint8_t out[32])
{
    if (s == NULL)
        s = "";
    if (mbedtls_sha256_ret((const unsigned char *)s, strlen(s), out, 0) != 0)
        memset(out, 0xff, 32); /* cannot happen with mbedtls' software SHA-256 */
}

/* Constant-time equality of two digests. */
static bool digest_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (size_t i = 0; i < 32; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 (padding optional) into out; returns length or -1. */
static long b64_decode(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    unsigned int acc = 0;
    int bits = 0;
    const char *p = in;
    for (; *p != '\0' && *p != '='; p++) {
        int v = b64_value((unsigned char)*p);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    while (*p == '=')
        p++;
    if (*p != '\0')
        return -1;
    out[o] = '\0';
    return (long)o;
}

static void auth_fill(auth_state *st, const api_auth *auth)
{
    memset(st, 0, sizeof(*st));
    st->mode = auth ? auth->mode : COORD_AUTH_NONE;
    if (auth == NULL)
        return;
    sha256_str(auth->user, st->user);
    sha256_str(auth->password, st->password);
    sha256_str(auth->readonly_user, st->ro_user);
    sha256_str(auth->readonly_password, st->ro_password);
}

orch_err api_set_auth(api *a, const api_auth *auth)
{
    auth_fill(&a->auth, auth);
    return ORCH_OK;
}

/*
 * The "user:password" of a Basic Authorization header into creds (the caller
 * wipes it), split at the colon (*colon); false when there is none or it is
 * malformed.
 */
static bool basic_creds(const char *authorization, char creds[API_MAX_AUTH], char **colon)
{
    if (authorization == NULL || strlen(authorization) > API_MAX_AUTH)
        return false;
    const char *p = authorization;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "Basic ", 6) != 0)
        return false;
    p += 6;
    while (*p == ' ')
        p++;
    long n = b64_decode(p, creds, API_MAX_AUTH);
    if (n < 0 || (size_t)n != strlen(creds) || (*colon = strchr(creds, ':')) == NULL) {
        memset(creds, 0, API_MAX_AUTH);
        return false;
    }
    **colon = '\0';
    return true;
}

api_auth_result api_auth_check(const api *a, const char *authorization, bool writes)
{
    const auth_state *st = &a->auth;
    if (st->mode == COORD_AUTH_NONE)
        return API_AUTH_OK;
    char creds[API_MAX_AUTH], *colon;
    if (!basic_creds(authorization, creds, &colon))
        return API_AUTH_MISSING;
    uint8_t user[32], password[32];
    sha256_str(creds, user);
    sha256_str(colon + 1, password);
    memset(creds, 0, sizeof(creds));
    /* Both users are compared every time, so timing says nothing about which matched. */
    /* '&', not '&&': both comparisons always run (constant time). */
    bool admin = (int)digest_equal(user, st->user) & (int)digest_equal(password, st->password);
    bool ro = (int)digest_equal(user, st->ro_user) & (int)digest_equal(password, st->ro_password);
    if (admin)
        return API_AUTH_OK;
    if (st->mode == COORD_AUTH_BASIC_READONLY && ro)
        return writes ? API_AUTH_READ_ONLY : API_AUTH_OK;
    return API_AUTH_WRONG;
}

/* ---- replies ---------------------------------------------------------------------- */

static const char *reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 414:
        return "URI Too Long";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return code < 400 ? "OK" : code < 500 ? "Client Error" : "Server Error";
    }
}

static void record_route(api *a, const api_route *route, int code, int64_t start_us)
{
    metrics *m = a->deps.m;
    if (m == NULL)
        return;
    const char *label = route ? route->pattern : "unmatched";
    if (*label == '\0')
        label = "/";
    char codestr[8];
    snprintf(codestr, sizeof(codestr), "%d", code);
    metric_inc(metrics_counter(m, "orch_api_requests_total",
                               "HTTP requests answered, by route pattern and status code.", "route",
                               label, "code", codestr, NULL));
    metric_observe(metrics_histogram(m, "orch_api_request_duration_seconds",
                                     "Time to answer an HTTP request, by route pattern.",
                                     metrics_buckets_latency_s, metrics_buckets_latency_s_n,
                                     "route", label, NULL),
                   (double)(orch_mono_us() - start_us) / 1e6);
}

static void record(api_req *r, int code)
{
    record_route(r->a, r->route, code, r->start_us);
}

static const char json_ctype[] = "application/json; charset=UTF-8";

/* Sends status with body (len bytes, borrowed) of content type ctype. */
static void reply_raw(api_req *r, int code, const char *ctype, const char *body, size_t len)
{
    if (r->replied)
        return;
    r->replied = true;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    struct evbuffer *buf = NULL;
    bool oom = false;
    if (r->head) {
        char cl[32];
        snprintf(cl, sizeof(cl), "%zu", len);
        evhttp_add_header(h, "Content-Length", cl);
    } else if ((buf = evbuffer_new()) == NULL || evbuffer_add(buf, body, len) != 0) {
        oom = true; /* the status still tells */
        code = 500;
    }
    evhttp_send_reply(r->req, code, reason(code), oom ? NULL : buf);
    if (buf != NULL)
        evbuffer_free(buf);
    record(r, code);
}

/* Sends j as JSON (takes the reference); NULL (out of memory) becomes a 500. */
static void reply_json(api_req *r, int code, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (s == NULL) {
        static const char oom[] =
            "{\"Code\":\"ERROR\",\"Message\":\"out of memory\",\"Details\":null}";
        reply_raw(r, 500, json_ctype, oom, sizeof(oom) - 1);
        return;
    }
    reply_raw(r, code, json_ctype, s, strlen(s));
    free(s);
}

static void reply_envelope(api_req *r, int code, bool ok, const char *message, json_t *details)
{
    reply_json(r, code, render_envelope(ok, message, details));
}

static void reply_error(api_req *r, int code, const char *fmt, ...) ORCH_PRINTF(3, 4);
static void reply_error(api_req *r, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_envelope(r, code, false, msg, NULL);
}

/* ---- streamed instance lists ------------------------------------------------------ */

/*
 * An instance renders in ~80 us (JSON built and dumped), so all-instances of
 * a 50,000-instance fleet would hold the loop for seconds. Lists longer than
 * a->batch are therefore streamed: the answer starts at once (chunked), and
 * each chunk of a->batch instances is rendered only after the previous one
 * was written to the socket, so the loop serves reports between chunks and a
 * slow reader costs no memory. Registry pointers do not survive a loop turn,
 * so the stream keeps keys and looks each instance up again when its chunk is
 * rendered (one dropped meanwhile is skipped; each instance is as fresh as
 * its chunk).
 *
 * The connection may go away mid-stream. libevent then either detaches the
 * request (EOF, timeout: evhttp_request_get_connection() turns NULL and the
 * request is ours to free with evhttp_send_reply_end), frees it with the
 * connection (evhttp_free from api_stop), or calls the request callback once
 * more for the same request (a cancel), which on_request hands back here.
 * The connection's close callback tells the first two apart.
 */
typedef struct stream_key {
    char *host;
    uint16_t port;
} stream_key;

struct api_stream {
    api *a;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *ev; /* runs the next step on the loop */
    const api_route *route;
    int64_t start_us;
    render_ctx rc;
    stream_key *keys;
    size_t n, next, sent;
    bool closed;  /* the connection is gone */
    bool own_req; /* ...and left the request to us */
    api_stream *prev, *nxt;
};

static void stream_free(api_stream *st)
{
    if (st->prev)
        st->prev->nxt = st->nxt;
    else
        st->a->streams = st->nxt;
    if (st->nxt)
        st->nxt->prev = st->prev;
    if (st->ev)
        event_free(st->ev);
    for (size_t k = 0; k < st->n; k++)
        free(st->keys[k].host);
    free(st->keys);
    free(st);
}

static void stream_finish(api_stream *st)
{
    if (!st->closed) {
        evhttp_connection_set_closecb(st->evcon, NULL, NULL);
        evhttp_send_reply_end(st->req);
    } else if (st->own_req) {
        evhttp_send_reply_end(st->req); /* detached: this frees it */
    }
    record_route(st->a, st->route, 200, st->start_us);
    stream_free(st);
}

static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
    api_stream *st = arg;
    (void)evcon;
    st->closed = true;
    st->own_req = evhttp_request_get_connection(st->req) == NULL;
    event_active(st->ev, EV_TIMEOUT, 1);
}

static void stream_written(struct evhttp_connection *evcon, void *arg)
{
    api_stream *st = arg;
    (void)evcon;
    event_active(st->ev, EV_TIMEOUT, 1);
}

/* Renders and sends the next chunk; ends the answer after the last. */
static void stream_step(evutil_socket_t fd, short what, void *arg)
{
    api_stream *st = arg;
    (void)fd;
    (void)what;
    if (st->closed) {
        stream_finish(st);
        return;
    }
    registry *reg = st->a->deps.reg;
    registry_refresh(reg);
    st->rc.now_ms = orch_mono_ms();
    st->rc.now_wall_ms = orch_wall_ms();
    struct evbuffer *buf = evbuffer_new();
    bool ok = buf != NULL;
    if (ok && st->next == 0)
        ok = evbuffer_add(buf, "[", 1) == 0;
    size_t end = st->next + st->a->batch < st->n ? st->next + st->a->batch : st->n;
    for (; ok && st->next < end; st->next++) {
        reg_instance *i = registry_find(reg, st->keys[st->next].host, st->keys[st->next].port);
        if (i == NULL)
            continue;
        json_t *j = render_instance(i, &st->rc);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        ok = s != NULL && (st->sent++ == 0 || evbuffer_add(buf, ",", 1) == 0) &&
             evbuffer_add(buf, s, strlen(s)) == 0;
        free(s);
    }
    if (!ok) {
        /* The status is long sent: all that is left is to cut the answer short. */
        orch_error(NULL, "HTTP API: out of memory streaming %s; answer cut short",
                   st->route->pattern);
        if (buf != NULL)
            evbuffer_free(buf);
        stream_finish(st);
        return;
    }
    bool last = st->next >= st->n;
    if (last && evbuffer_add(buf, "]", 1) != 0)
        orch_error(NULL, "HTTP API: out of memory ending %s", st->route->pattern);
    if (evbuffer_get_length(buf) == 0) {
        /* every instance of this chunk is gone: nothing to wait for */
        evbuffer_free(buf);
        if (last)
            stream_finish(st);
        else
            event_active(st->ev, EV_TIMEOUT, 1);
        return;
    }
    evhttp_send_reply_chunk_with_cb(st->req, buf, last ? NULL : stream_written, st);
    evbuffer_free(buf);
    if (last)
        stream_finish(st);
}

/* The request callback ran again for a request being streamed (a cancel). */
static bool stream_cancelled(api *a, struct evhttp_request *req)
{
    for (api_stream *st = a->streams; st != NULL; st = st->nxt) {
        if (st->req != req)
            continue;
        if (!st->closed) {
            st->closed = true;
            st->own_req = false;
            evhttp_connection_set_closecb(st->evcon, NULL, NULL);
            evhttp_send_reply_end(req); /* libevent frees it with the connection */
            event_active(st->ev, EV_TIMEOUT, 1);
        }
        return true;
    }
    return false;
}

/*
 * Answers with a JSON array of the instances: rendered at once when there are
 * at most a->batch of them, streamed otherwise (HEAD gets the headers only).
 */
static void reply_instances(api_req *r, reg_instance *const *v, size_t n)
{
    api *a = r->a;
    if (n <= a->batch) {
        reply_json(r, 200, render_instance_array(v, n, &r->rc));
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", json_ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (r->head) {
        r->replied = true;
        evhttp_send_reply(r->req, 200, "OK", NULL);
        record(r, 200);
        return;
    }
    api_stream *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->keys = calloc(n, sizeof(*st->keys))) == NULL)
        goto oom;
    st->a = a;
    st->req = r->req;
    st->evcon = evhttp_request_get_connection(r->req);
    st->route = r->route;
    st->start_us = r->start_us;
    st->rc = r->rc;
    st->rc.raw_report = false;
    for (; st->n < n; st->n++) {
        st->keys[st->n].host = strdup(v[st->n]->key.host);
        st->keys[st->n].port = v[st->n]->key.port;
        if (st->keys[st->n].host == NULL)
            goto oom;
    }
    st->ev = event_new(a->base, -1, 0, stream_step, st);
    if (st->ev == NULL || st->evcon == NULL)
        goto oom;
    st->nxt = a->streams;
    if (a->streams)
        a->streams->prev = st;
    a->streams = st;
    r->replied = true;
    evhttp_connection_set_closecb(st->evcon, stream_closed, st);
    evhttp_send_reply_start(r->req, 200, "OK");
    stream_step(-1, 0, st);
    return;
oom:
    if (st != NULL) {
        if (st->ev)
            event_free(st->ev);
        for (size_t k = 0; k < st->n; k++)
            free(st->keys[k].host);
        free(st->keys);
        free(st);
    }
    reply_json(r, 500, NULL);
}

/* ---- parameters ------------------------------------------------------------------- */

static bool param_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(p, name, n) == 0;
}

static bool all_digits(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* An instance key from its path segments; answers 400 and returns false when invalid. */
static bool key_param(api_req *r, const char *host, const char *port, orch_key *key, char *str,
                      size_t strlen_)
{
    char msg[256];
    if (!all_digits(port) || strlen(port) > 5) {
        reply_error(r, 400, "Invalid port: '%s' is not a number in 1..65535", port);
        return false;
    }
    errno = 0;
    long v = strtol(port, NULL, 10);
    if (errno != 0 || orch_key_make(host, v, key, msg, sizeof(msg)) != ORCH_OK) {
        reply_error(r, 400, "Invalid instance key %s:%s: %s", host, port,
                    errno ? strerror(errno) : msg);
        return false;
    }
    orch_key_format(key, str, strlen_);
    return true;
}

/*
 * Fills the request's parameters from the matched pattern and checks them.
 * Returns false after answering 400.
 */
static bool take_params(api_req *r, char *const *segs, size_t nsegs)
{
    const char *host = NULL, *port = NULL, *chost = NULL, *cport = NULL;
    const char *p = r->route->pattern;
    size_t k = 0;
    while (*p != '\0' && k < nsegs) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        const char *v = segs[k];
        if (p[0] == ':') {
            if (param_is(p, n, ":host"))
                host = v;
            else if (param_is(p, n, ":port"))
                port = v;
            else if (param_is(p, n, ":chost") || param_is(p, n, ":belowHost") ||
                     param_is(p, n, ":siblingHost") || param_is(p, n, ":designatedHost"))
                chost = v;
            else if (param_is(p, n, ":cport") || param_is(p, n, ":belowPort") ||
                     param_is(p, n, ":siblingPort") || param_is(p, n, ":designatedPort"))
                cport = v;
            else if (param_is(p, n, ":hint") || param_is(p, n, ":alias") ||
                     param_is(p, n, ":clusterHint"))
                r->hint = v;
            else if (param_is(p, n, ":s"))
                r->search = v;
            else if (param_is(p, n, ":code"))
                r->code = v;
            else if (param_is(p, n, ":page"))
                r->page = v;
            else if (param_is(p, n, ":ph")) {
                if (all_digits(v))
                    r->page = v;
                else
                    r->hint = v;
            } else if (param_is(p, n, ":uid"))
                r->uid = v;
            else if (param_is(p, n, ":id"))
                r->id = v;
            else if (param_is(p, n, ":owner"))
                r->owner = v;
            else if (param_is(p, n, ":reason"))
                r->reason = v;
            else if (param_is(p, n, ":duration"))
                r->duration = v;
            else if (param_is(p, n, ":rule"))
                r->rule = v;
        }
        k++;
        p += n;
        if (*p == '/')
            p++;
    }
    if (host != NULL && port != NULL) {
        if (!key_param(r, host, port, &r->key, r->key_str, sizeof(r->key_str)))
            return false;
        r->has_key = true;
    }
    if (chost != NULL && cport != NULL) {
        if (!key_param(r, chost, cport, &r->cand, r->cand_str, sizeof(r->cand_str)))
            return false;
        r->has_cand = true;
    }
    return true;
}

static const char *query_get(api_req *r, const char *name)
{
    return r->has_query ? evhttp_find_header(&r->query, name) : NULL;
}

/* ---- helpers over the registry -------------------------------------------------- */

static registry *reg_of(api_req *r)
{
    registry_refresh(r->a->deps.reg);
    return r->a->deps.reg;
}

static reg_instance *instance_of_request(api_req *r)
{
    reg_instance *i = registry_find(reg_of(r), r->key.host, r->key.port);
    if (i == NULL)
        reply_error(r, 404, "Cannot read instance: %s", r->key_str);
    return i;
}

/*
 * The cluster a request names: by instance key (…/:host/:port) or by hint.
 * Answers 404 with orchestrator's message when there is none.
 */
static reg_cluster *cluster_of_request(api_req *r)
{
    registry *reg = reg_of(r);
    reg_cluster *cl = NULL;
    const char *hint = r->hint;
    if (r->has_key) {
        reg_instance *i = registry_find(reg, r->key.host, r->key.port);
        cl = i ? i->cluster : NULL;
        hint = r->key_str;
    } else if (hint != NULL) {
        cl = registry_cluster_by_hint(reg, hint);
    }
    if (cl == NULL)
        reply_error(r, 404, "Unable to determine cluster name. clusterHint=%s", hint ? hint : "");
    return cl;
}

/*
 * orchestrator's ReadClusterMaster: a writable member at the top of the
 * cluster (depth 0, or a co-master). NULL when the top is read-only.
 */
static reg_instance *writable_master(const reg_cluster *cl)
{
    for (size_t k = 0; k < cl->nmembers; k++) {
        reg_instance *i = cl->members[k];
        const Orch__ServerStatus *sv = i->report->server;
        bool ro = sv != NULL && sv->has_read_only && sv->read_only;
        if ((i->depth == 0 || i->co_master) && !ro)
            return i;
    }
    return NULL;
}

static void get_leader(api_req *r, api_leader_info *li)
{
    memset(li, 0, sizeof(*li));
    if (r->a->deps.leader != NULL)
        r->a->deps.leader(r->a->deps.arg, li);
}

static void get_health(api_req *r, api_health_info *h)
{
    memset(h, 0, sizeof(*h));
    h->backend_rtt_us = -1;
    h->write_queue_depth = -1;
    if (r->a->deps.health != NULL)
        r->a->deps.health(r->a->deps.arg, h);
    else
        h->backend_ok = true;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- handlers ------------------------------------------------------------------- */

static void h_leader_check(api_req *r)
{
    api_leader_info li;
    get_leader(r, &li);
    if (li.is_leader) {
        reply_json(r, 200, json_string("OK"));
        return;
    }
    int code = 404;
    if (r->code != NULL) {
        char *end = NULL;
        errno = 0;
        long v = strtol(r->code, &end, 10);
        if (errno == 0 && end != r->code && *end == '\0' && v >= 200 && v <= 599)
            code = (int)v;
    }
    reply_json(r, code, json_string("Not leader"));
}

static json_t *node_json(const char *name, const char *version, int64_t seen_ms,
                         const char *api_url)
{
    char ts[32] = "";
    if (seen_ms > 0) {
        time_t t = (time_t)(seen_ms / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm) == 0)
            ts[0] = '\0';
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Hostname", nz(name), "Token",
                     "", "AppVersion", nz(version), "FirstSeenActive", "", "LastSeenActive", ts,
                     "ExtraInfo", nz(api_url), "Command", "", "DBBackend", "", "LastReported", ts);
}

/*
 * orchestrator's health report (process.HealthStatus) plus an "Orch" object.
 * Unhealthy, as in orchestrator, means the backend cannot be used.
 */
static void h_health(api_req *r)
{
    api_leader_info li;
    api_health_info h;
    get_leader(r, &li);
    get_health(r, &h);
    registry *reg = reg_of(r);
    size_t nclusters = 0;
    (void)registry_clusters(reg, &nclusters);

    const char *leader_version = NULL;
    json_t *nodes = json_array();
    for (size_t k = 0; nodes != NULL && k < li.nnodes; k++) {
        const api_node_info *n = &li.nodes[k];
        if (li.leader != NULL && n->node != NULL && strcmp(n->node, li.leader) == 0)
            leader_version = n->version;
        if (json_array_append_new(
                nodes, node_json(n->node, n->version, n->last_seen_wall_ms, n->api_url)) != 0) {
            json_decref(nodes);
            nodes = NULL;
        }
    }
    if (li.is_leader)
        leader_version = ORCH_VERSION;
    json_t *orch = json_pack(
        "{s:I, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:s}", "Epoch", (json_int_t)li.epoch, "LeaderAPI",
        nz(li.leader_api), "BackendOK", h.backend_ok, "BackendError", nz(h.backend_error),
        "BackendRTTMicroseconds", (json_int_t)h.backend_rtt_us, "WriteQueueDepth",
        (json_int_t)h.write_queue_depth, "Instances", (json_int_t)registry_count(reg), "Clusters",
        (json_int_t)nclusters, "Version", ORCH_VERSION);
    json_t *d =
        json_pack("{s:b, s:s, s:s, s:b, s:o, s:o, s:o, s:o}", "Healthy", h.backend_ok, "Hostname",
                  nz(li.node), "Token", "", "IsActiveNode", li.is_leader, "ActiveNode",
                  node_json(li.leader, leader_version, 0, li.leader_api), "Error",
                  h.backend_ok ? json_null() : json_string(nz(h.backend_error)), "AvailableNodes",
                  nodes ? nodes : json_array(), "Orch", orch ? orch : json_object());
    if (h.backend_ok) {
        reply_envelope(r, 200, true, "Application node is healthy", d);
    } else {
        char msg[512];
        snprintf(msg, sizeof(msg), "Application node is unhealthy: %s",
                 h.backend_error ? h.backend_error : "backend unavailable");
        reply_envelope(r, 500, false, msg, d);
    }
}

static void h_lb_check(api_req *r)
{
    reply_json(r, 200, json_string("OK"));
}

static void h_clusters(api_req *r)
{
    size_t n;
    reg_cluster *const *cl = registry_clusters(reg_of(r), &n);
    json_t *a = json_array();
    for (size_t k = 0; a != NULL && k < n; k++) {
        if (json_array_append_new(a, json_string(cl[k]->name)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    reply_json(r, 200, a);
}

static void h_clusters_info(api_req *r)
{
    size_t n;
    reg_cluster *const *cl = registry_clusters(reg_of(r), &n);
    json_t *a = json_array();
    for (size_t k = 0; a != NULL && k < n; k++) {
        if (json_array_append_new(a, render_cluster_info(cl[k], &r->rc)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    reply_json(r, 200, a);
}

static void h_cluster(api_req *r)
{
    reg_cluster *cl = cluster_of_request(r);
    if (cl != NULL)
        reply_instances(r, cl->members, cl->nmembers);
}

static void h_cluster_info(api_req *r)
{
    reg_cluster *cl = cluster_of_request(r);
    if (cl != NULL)
        reply_json(r, 200, render_cluster_info(cl, &r->rc));
}

static void h_instance(api_req *r)
{
    reg_instance *i = instance_of_request(r);
    if (i == NULL)
        return;
    r->rc.raw_report = true;
    reply_json(r, 200, render_instance(i, &r->rc));
}

static void h_instance_replicas(api_req *r)
{
    reg_instance *i = instance_of_request(r);
    if (i != NULL)
        reply_instances(r, i->replicas, i->nreplicas);
}

static void h_master(api_req *r)
{
    reg_cluster *cl = cluster_of_request(r);
    if (cl == NULL)
        return;
    reg_instance *m = writable_master(cl);
    if (m == NULL)
        reply_error(r, 404, "No masters found for %s", cl->name);
    else
        reply_json(r, 200, render_instance(m, &r->rc));
}

static void h_masters(api_req *r)
{
    size_t n;
    reg_cluster *const *cl = registry_clusters(reg_of(r), &n);
    reg_instance **v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL) {
        reply_json(r, 500, NULL);
        return;
    }
    size_t nv = 0;
    for (size_t k = 0; k < n; k++)
        if ((v[nv] = writable_master(cl[k])) != NULL)
            nv++;
    reply_instances(r, v, nv);
    free(v);
}

static void h_all_instances(api_req *r)
{
    size_t n;
    reg_instance *const *v = registry_instances(reg_of(r), &n);
    reply_instances(r, v, n);
}

static void h_topology(api_req *r)
{
    reg_cluster *cl = cluster_of_request(r);
    if (cl == NULL)
        return;
    char *text = render_topology(cl, &r->rc);
    if (text == NULL) {
        reply_error(r, 500, "out of memory");
        return;
    }
    char msg[ORCH_KEY_STRLEN + 64];
    snprintf(msg, sizeof(msg), "Topology for cluster %s", cl->name);
    reply_envelope(r, 200, true, msg, json_string(text));
    free(text);
}

static bool contains_ci(const char *hay, const char *needle)
{
    return hay != NULL && strcasestr(hay, needle) != NULL;
}

/*
 * Instances whose key, reported names and addresses, server hostname or
 * cluster name/alias contain s (case-insensitive); all of them for an empty
 * s, as orchestrator does.
 */
static bool search_match(const reg_instance *i, const char *s)
{
    if (*s == '\0' || contains_ci(i->name, s))
        return true;
    const Orch__InstanceReport *rep = i->report;
    for (size_t k = 0; k < rep->n_aliases; k++)
        if (contains_ci(rep->aliases[k], s))
            return true;
    if (rep->server != NULL &&
        (contains_ci(rep->server->hostname, s) || contains_ci(rep->server->report_host, s)))
        return true;
    return i->cluster != NULL &&
           (contains_ci(i->cluster->name, s) || contains_ci(i->cluster->alias, s));
}

static void h_search(api_req *r)
{
    const char *s = r->search ? r->search : query_get(r, "s");
    if (s == NULL)
        s = "";
    size_t n;
    reg_instance *const *all = registry_instances(reg_of(r), &n);
    reg_instance **v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL) {
        reply_json(r, 500, NULL);
        return;
    }
    size_t nv = 0;
    for (size_t k = 0; k < n; k++)
        if (search_match(all[k], s))
            v[nv++] = all[k];
    reply_instances(r, v, nv);
    free(v);
}

static void h_problems(api_req *r)
{
    reg_cluster *only = NULL;
    if (r->hint != NULL && (only = cluster_of_request(r)) == NULL)
        return;
    size_t n;
    reg_instance *const *all =
        only != NULL ? only->members : registry_instances(reg_of(r), &n); /* one cluster's */
    if (only != NULL)
        n = only->nmembers;
    reg_instance **v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL) {
        reply_json(r, 500, NULL);
        return;
    }
    size_t nv = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *p = render_problems(all[k], &r->rc);
        if (p != NULL && json_array_size(p) > 0)
            v[nv++] = all[k];
        json_decref(p);
    }
    reply_instances(r, v, nv);
    free(v);
}

static void h_metrics(api_req *r)
{
    static const char ctype[] = "text/plain; version=0.0.4; charset=utf-8";
    if (r->a->deps.m == NULL) {
        reply_raw(r, 200, ctype, "", 0);
        return;
    }
    size_t len = 0;
    char *text = metrics_render(r->a->deps.m, &len);
    if (text == NULL) {
        reply_error(r, 500, "out of memory");
        return;
    }
    reply_raw(r, 200, ctype, text, len);
    free(text);
}

static void h_page(api_req *r)
{
    api_leader_info li;
    api_health_info h;
    get_leader(r, &li);
    get_health(r, &h);
    size_t n;
    reg_cluster *const *cl = registry_clusters(reg_of(r), &n);
    render_page_info pi = {
        .node = li.node,
        .is_leader = li.is_leader,
        .epoch = li.epoch,
        .leader = li.leader,
        .version = ORCH_VERSION,
        .backend_ok = h.backend_ok,
        .backend_error = h.backend_error,
    };
    char *html = render_page(cl, n, &pi, &r->rc);
    if (html == NULL) {
        reply_error(r, 500, "out of memory");
        return;
    }
    reply_raw(r, 200, "text/html; charset=utf-8", html, strlen(html));
    free(html);
}

/* ---- answers owed by the backend or a recovery ---------------------------------------- */

/*
 * A request answered later, from a done callback on the loop: a backend read
 * or write (store thread) or a requested recovery. Like a stream (above), the
 * client may leave meanwhile. libevent does not read a connection that is
 * owed an answer, so it mostly learns of a client gone when the answer is
 * written, and copes then; when it does learn earlier, the connection's close
 * callback tells whether it detached the request (EOF, timeout: ours to free,
 * freed at once) or frees it with the connection (api_stop), and a request
 * it hands back to on_request (a cancel) is answered there. Either way p->req
 * turns NULL and the callback, when it comes, only frees p. api_stop unlinks
 * every pending (p->a NULL) and leaves it to its callback.
 */
struct api_pending {
    api *a;                     /* NULL once the api stopped */
    struct evhttp_request *req; /* NULL once the client is gone */
    struct evhttp_connection *evcon;
    const api_route *route;
    int64_t start_us;
    bool head;
    json_t *(*render_row)(const json_t *row); /* a read: renders each row */
    char ok_msg[640];   /* an acknowledgement, an operator write: the answer's Message */
    json_t *ok_details; /* an operator write: its Details (owned) */
    /* a requested recovery */
    bool force;
    orch_key failed;
    bool recovered;
    char rec_msg[1024];
    char uid[64];
    /* a requested operation */
    operation_kind op_kind;
    orch_key op_key, op_target;
    bool op_has_target;
    api_pending *prev, *next;
};

static void pending_closed(struct evhttp_connection *evcon, void *arg)
{
    api_pending *p = arg;
    (void)evcon;
    if (p->req != NULL && evhttp_request_get_connection(p->req) == NULL)
        evhttp_request_free(p->req); /* detached by libevent: ours */
    p->req = NULL;
    p->evcon = NULL;
}

/* Starts owing r an answer; NULL (nothing done) when out of memory. */
static api_pending *pending_new(api_req *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    api_pending *p = evcon != NULL ? calloc(1, sizeof(*p)) : NULL;
    if (p == NULL)
        return NULL;
    p->a = r->a;
    p->req = r->req;
    p->evcon = evcon;
    p->route = r->route;
    p->start_us = r->start_us;
    p->head = r->head;
    p->next = r->a->pendings;
    if (p->next != NULL)
        p->next->prev = p;
    r->a->pendings = p;
    r->replied = true;
    evhttp_connection_set_closecb(evcon, pending_closed, p);
    return p;
}

/* Answers (if the client is still there; takes j) and frees p. */
static void pending_reply(api_pending *p, int code, json_t *j)
{
    if (p->a != NULL && p->req != NULL) {
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
        api_req r = {
            .a = p->a, .req = p->req, .route = p->route, .start_us = p->start_us, .head = p->head};
        reply_json(&r, code, j);
    } else {
        json_decref(j);
    }
    if (p->a != NULL) {
        if (p->prev != NULL)
            p->prev->next = p->next;
        else
            p->a->pendings = p->next;
        if (p->next != NULL)
            p->next->prev = p->prev;
    }
    json_decref(p->ok_details);
    free(p);
}

static void pending_error(api_pending *p, int code, const char *fmt, ...) ORCH_PRINTF(3, 4);
static void pending_error(api_pending *p, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pending_reply(p, code, render_envelope(false, msg, NULL));
}

/* The request callback ran again for a request we owe an answer (a cancel). */
static bool pending_cancelled(api *a, struct evhttp_request *req)
{
    for (api_pending *p = a->pendings; p != NULL; p = p->next) {
        if (p->req != req)
            continue;
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
        p->req = NULL;
        p->evcon = NULL;
        /* libevent frees the connection once this reply is out */
        evhttp_send_reply(req, 500, "Internal Server Error", NULL);
        return true;
    }
    return false;
}

/* ---- the backend: recovery.c and store.c (api_backend defaults) --------------------- */

static const analysis_result *be_analysis(void *arg)
{
    api *a = arg;
    return a->deps.rec != NULL ? recovery_analysis(a->deps.rec) : NULL;
}

static orch_err be_recover(void *arg, const recovery_req *req, recovery_done_fn done,
                           void *done_arg, char *msg, size_t msglen)
{
    api *a = arg;
    if (a->deps.rec == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_CLOSED, "this coordinator runs no recoveries");
    return recovery_request(a->deps.rec, req, done, done_arg, msg, msglen);
}

static orch_err be_submit_op(void *arg, const store_op *op, store_done_fn done, void *done_arg,
                             char *msg, size_t msglen)
{
    api *a = arg;
    if (a->deps.st == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_CLOSED, "this coordinator has no backend");
    return store_submit_op(a->deps.st, op, done, done_arg, msg, msglen);
}

static orch_err be_submit_batch(void *arg, const char *what, char **stmts, size_t n,
                                store_rows_fn done, void *done_arg, char *msg, size_t msglen)
{
    api *a = arg;
    if (a->deps.st == NULL) {
        for (size_t i = 0; i < n; i++)
            free(stmts[i]);
        free(stmts);
        return orch_fail(msg, msglen, ORCH_ERR_CLOSED, "this coordinator has no backend");
    }
    return store_submit_batch(a->deps.st, what, stmts, n, done, done_arg, msg, msglen);
}

static bool be_get_setting(void *arg, const char *name, char *buf, size_t buflen)
{
    api *a = arg;
    return store_get_setting(a->deps.st, name, buf, buflen);
}

static orch_err be_operate(void *arg, const operation_req *req, operation_done_fn done,
                           void *done_arg, char *msg, size_t msglen)
{
    api *a = arg;
    if (a->deps.ops == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_CLOSED, "this coordinator runs no operations");
    return operation_request(a->deps.ops, req, done, done_arg, msg, msglen);
}

/* The HTTP status for a backend or recovery refusal. */
static int status_of(orch_err e)
{
    switch (e) {
    case ORCH_ERR_INVAL:
    case ORCH_ERR_RANGE:
    case ORCH_ERR_TOOBIG:
        return 400;
    case ORCH_ERR_NOTFOUND:
        return 404;
    case ORCH_ERR_REFUSED:
    case ORCH_ERR_STATE:
        return 409;
    case ORCH_ERR_CLOSED:
        return 503;
    default:
        return 500;
    }
}

/*
 * Submits one statement (taking it; NULL means out of memory) for p, whose
 * callback is done. On failure p is answered and freed here.
 */
static void pending_sql(api_pending *p, const char *what, char *stmt, store_rows_fn done)
{
    char **stmts = stmt != NULL ? calloc(1, sizeof(*stmts)) : NULL;
    if (stmts == NULL) {
        free(stmt);
        pending_error(p, 500, "out of memory");
        return;
    }
    stmts[0] = stmt;
    char msg[256];
    orch_err e = p->a->be.submit_batch(p->a->be.arg, what, stmts, 1, done, p, msg, sizeof(msg));
    if (e != ORCH_OK)
        pending_error(p, status_of(e), "Cannot use the backend: %s", msg);
}

/* ---- recovery and operator-state helpers ------------------------------------------------ */

/* The basic-auth user of the request, else "orch" (orchestrator's maintenance owner). */
static void request_user(api_req *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s", "orch");
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    char creds[API_MAX_AUTH], *colon;
    if (!basic_creds(h, creds, &colon))
        return;
    size_t ulen = (size_t)(colon - creds);
    if (ulen > 0 && ulen < len) { /* longer user names stay "orch" */
        memcpy(buf, creds, ulen);
        buf[ulen] = '\0';
    }
    memset(creds, 0, sizeof(creds));
}

/*
 * A leader-only route on a follower: 503 naming the leader's API, so that the
 * client (or orchctl, which asks leader-check first) goes there. Forwarding
 * the request to the leader is a later step.
 */
/* ---- forwarding to the leader -------------------------------------------------------- */

/*
 * A follower sends a leader route on to the leader's advertised API URL (plain
 * http) with the client's Authorization header and X-Orch-Forwarded-By naming
 * itself, and relays the leader's status and JSON body, adding
 * X-Orch-Forwarded-To. One hop only: a forwarded request that reaches another
 * follower (leadership moved meanwhile) is answered 503 there, never sent on.
 * The wait is bounded by API_FORWARD_TIMEOUT_S, longer than any operation.
 * A leader that cannot be reached gives 502 with the reason.
 */
#define API_FORWARD_TIMEOUT_S 600
#define API_FORWARDED_BY      "X-Orch-Forwarded-By"
#define API_FORWARDED_TO      "X-Orch-Forwarded-To"

struct api_forward {
    api *a;
    api_pending *p;
    struct evhttp_connection *evcon; /* freed by libevent once the answer is in */
    char leader[128];
    api_forward *prev, *next;
};

static void forward_unlink(api_forward *f)
{
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        f->a->forwards = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
}

/* The reaper: frees the connections libevent 2.1 does not free itself. */
static void reap_forwards(evutil_socket_t fd, short what, void *arg)
{
    api *a = arg;
    (void)fd;
    (void)what;
    while (a->reap != NULL) {
        api_forward *f = a->reap;
        a->reap = f->next;
        evhttp_connection_free(f->evcon);
        free(f);
    }
}

/*
 * The leader's answer, or the failure. libevent 2.1 frees a connection made
 * with free_on_completion after an answer (the request says Connection: close)
 * and after a failure once connected (resp NULL), but not after a refused
 * connect (resp without a connection): that one is freed by the reaper, not
 * here, inside libevent's callback.
 */
static void on_forwarded(struct evhttp_request *resp, void *arg)
{
    api_forward *f = arg;
    api_pending *p = f->p;
    forward_unlink(f);
    int code = resp != NULL ? evhttp_request_get_response_code(resp) : 0;
    if (code == 0) {
        orch_log(ORCH_LOG_WARN, "ORCH-API-FORWARD", NULL, "the leader %s did not answer %s",
                 f->leader, p->route->pattern);
        pending_error(p, 502,
                      "This coordinator is not the leader and the leader, %s, did not answer the "
                      "forwarded request (connection refused, reset or timed out): retry shortly",
                      f->leader);
        if (resp != NULL && evhttp_request_get_connection(resp) == NULL) {
            f->prev = NULL;
            f->next = f->a->reap;
            f->a->reap = f;
            event_active(f->a->reaper, EV_TIMEOUT, 0);
            return;
        }
        free(f);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(resp);
    size_t len = in != NULL ? evbuffer_get_length(in) : 0;
    const unsigned char *body = len > 0 ? evbuffer_pullup(in, -1) : NULL;
    json_error_t jerr;
    json_t *j = body != NULL ? json_loadb((const char *)body, len, JSON_DECODE_ANY, &jerr) : NULL;
    if (j == NULL) {
        pending_error(p, 502, "The leader %s answered %d to the forwarded request, not in JSON",
                      f->leader, code);
    } else {
        if (p->req != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(p->req), API_FORWARDED_TO,
                              f->leader);
        pending_reply(p, code, j);
    }
    free(f);
}

/* Sends r on to the leader; false (nothing done) when it cannot be, with why. */
static bool forward_to_leader(api_req *r, const api_leader_info *li, char *why, size_t whylen)
{
    struct evkeyvalq *hin = evhttp_request_get_input_headers(r->req);
    if (evhttp_find_header(hin, API_FORWARDED_BY) != NULL) {
        snprintf(why, whylen, "it was forwarded here by %s, and is not forwarded twice",
                 evhttp_find_header(hin, API_FORWARDED_BY));
        return false;
    }
    if (li->leader_api == NULL || li->leader_api[0] == '\0') {
        snprintf(why, whylen, "the leader's API address is unknown");
        return false;
    }
    struct evhttp_uri *u = evhttp_uri_parse(li->leader_api);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    if (u == NULL || host == NULL || host[0] == '\0' || scheme == NULL ||
        strcasecmp(scheme, "http") != 0) {
        snprintf(why, whylen,
                 "the leader's API address %s is not an http:// URL this node can "
                 "forward to",
                 li->leader_api);
        if (u != NULL)
            evhttp_uri_free(u);
        return false;
    }
    int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    const char *prefix = evhttp_uri_get_path(u);
    size_t pl = prefix != NULL ? strlen(prefix) : 0;
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    char target[API_MAX_URI + 512];
    int n = snprintf(target, sizeof(target), "%.*s%s", (int)pl, prefix ? prefix : "",
                     evhttp_request_get_uri(r->req));
    api_forward *f = calloc(1, sizeof(*f));
    struct evhttp_connection *evcon =
        f != NULL && n > 0 && (size_t)n < sizeof(target)
            ? evhttp_connection_base_new(r->a->base, r->a->dns, host, (unsigned short)port)
            : NULL;
    struct evhttp_request *out = evcon != NULL ? evhttp_request_new(on_forwarded, f) : NULL;
    api_pending *p = out != NULL ? pending_new(r) : NULL;
    if (p == NULL) {
        if (out != NULL)
            evhttp_request_free(out);
        if (evcon != NULL)
            evhttp_connection_free(evcon);
        free(f);
        evhttp_uri_free(u);
        snprintf(why, whylen, "out of memory");
        return false;
    }
    evhttp_connection_set_timeout(evcon, API_FORWARD_TIMEOUT_S);
    struct evkeyvalq *hout = evhttp_request_get_output_headers(out);
    char hosthdr[300];
    snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
    evhttp_add_header(hout, "Host", hosthdr);
    /* one request per connection: closed by the leader after its answer, so
     * that libevent frees it (free_on_completion frees only a closed one) */
    evhttp_add_header(hout, "Connection", "close");
    const char *auth = evhttp_find_header(hin, "Authorization");
    if (auth != NULL)
        evhttp_add_header(hout, "Authorization", auth);
    evhttp_add_header(hout, API_FORWARDED_BY, li->node && li->node[0] ? li->node : "a follower");
    *f = (api_forward){.a = r->a, .p = p, .evcon = evcon};
    snprintf(f->leader, sizeof(f->leader), "%s", li->leader ? li->leader : "?");
    evhttp_uri_free(u);
    if (evhttp_make_request(evcon, out, EVHTTP_REQ_GET, target) != 0) {
        /* libevent freed the request (or kept nothing of it) */
        evhttp_connection_free(evcon);
        pending_error(p, 502, "Cannot forward to the leader %s at %s", f->leader, li->leader_api);
        free(f);
        return true;
    }
    evhttp_connection_free_on_completion(evcon);
    f->next = r->a->forwards;
    if (f->next != NULL)
        f->next->prev = f;
    r->a->forwards = f;
    orch_log(ORCH_LOG_INFO, "ORCH-API-FORWARD", NULL, "%s sent on to the leader %s", r->path,
             f->leader);
    return true;
}

/*
 * True on the leader. A follower forwards the request to the leader (it is
 * answered from there) or answers 503 saying why it could not; false then.
 */
static bool leader_or_forward(api_req *r)
{
    api_leader_info li;
    get_leader(r, &li);
    if (li.is_leader)
        return true;
    bool known = li.leader != NULL && li.leader[0] != '\0';
    char why[600] = "", msg[1024];
    if (known && forward_to_leader(r, &li, why, sizeof(why)))
        return false;
    if (known)
        snprintf(msg, sizeof(msg),
                 "This coordinator (%s) is not the leader and did not forward %s to the leader, "
                 "%s, at %s: %s; send it there",
                 nz(li.node), r->path, li.leader, li.leader_api ? li.leader_api : "(API unknown)",
                 why);
    else
        snprintf(msg, sizeof(msg),
                 "This coordinator (%s) is not the leader and no leader is known (an election "
                 "may be running): retry %s shortly",
                 nz(li.node), r->path);
    json_t *d = json_pack("{s:s, s:s}", "Leader", known ? li.leader : "", "LeaderAPI",
                          known && li.leader_api ? li.leader_api : "");
    reply_envelope(r, 503, false, msg, d);
    return false;
}

/* Parses an audit page ("" or NULL: 0); answers 400 and returns false when invalid. */
static bool page_param(api_req *r, long *page)
{
    const char *s = r->page != NULL ? r->page : query_get(r, "page");
    *page = 0;
    if (s == NULL || *s == '\0')
        return true;
    if (!all_digits(s) || strlen(s) > 6 || (*page = strtol(s, NULL, 10)) > API_MAX_PAGE) {
        reply_error(r, 400, "Invalid page: '%s' is not a number in 0..%d", s, API_MAX_PAGE);
        return false;
    }
    return true;
}

/*
 * orchestrator's durations (golib's SimpleTimeToSeconds): seconds as plain
 * digits or with s, m, h, d; orch also takes w and sums like "1h30m".
 * "0" means the default. Returns seconds, or -1 with why in msg.
 */
static int64_t parse_duration(const char *s, char *msg, size_t msglen)
{
    if (s == NULL || *s == '\0') {
        snprintf(msg, msglen, "empty duration");
        return -1;
    }
    if (all_digits(s)) {
        if (strlen(s) > 12 || strtoll(s, NULL, 10) > API_MAX_DURATION_S)
            goto toolong;
        return strtoll(s, NULL, 10);
    }
    int64_t total = 0;
    const char *p = s;
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p)) {
            snprintf(msg, msglen,
                     "'%s' is not a duration (seconds, or a number with s, m, h, d or w: 90, "
                     "30m, 2h, 1h30m)",
                     s);
            return -1;
        }
        const char *start = p;
        while (isdigit((unsigned char)*p))
            p++;
        if (p - start > 9)
            goto toolong;
        int64_t v = strtoll(start, NULL, 10);
        int64_t unit = *p == 's'   ? 1
                       : *p == 'm' ? 60
                       : *p == 'h' ? 3600
                       : *p == 'd' ? 86400
                       : *p == 'w' ? 604800
                                   : 0;
        if (unit == 0) {
            snprintf(msg, msglen, "'%s': unknown unit '%c' (use s, m, h, d or w)", s, *p);
            return -1;
        }
        p++;
        total += v * unit;
        if (total > API_MAX_DURATION_S)
            goto toolong;
    }
    return total;
toolong:
    snprintf(msg, msglen, "'%s' is longer than 10 years", s);
    return -1;
}

/*
 * SQL matching a cluster's recoveries: by its name or alias as recorded, by
 * the hint as given (recoveries outlive clusters: an old cluster name is
 * still a name), and the recovery that promoted the cluster's master (its
 * record carries the cluster name of before).
 */
static void sql_cluster_match(orch_sbuf *b, const reg_cluster *cl, const char *hint,
                              bool recovery_table)
{
    orch_sbuf_str(b, "(cluster IN (");
    store_sql_string(b, hint);
    if (cl != NULL) {
        orch_sbuf_str(b, ", ");
        store_sql_string(b, cl->name);
    }
    orch_sbuf_str(b, ")");
    if (recovery_table) {
        orch_sbuf_str(b, " OR cluster_alias IN (");
        store_sql_string(b, hint);
        if (cl != NULL && cl->alias != NULL && cl->alias[0] != '\0') {
            orch_sbuf_str(b, ", ");
            store_sql_string(b, cl->alias);
        }
        orch_sbuf_str(b, ")");
        if (cl != NULL) { /* names write IPv6 hosts in brackets */
            orch_sbuf_str(b, " OR CONCAT(IF(LOCATE(':', successor_host) > 0, CONCAT('[', "
                             "successor_host, ']'), successor_host), ':', successor_port) = ");
            store_sql_string(b, cl->name);
        }
    }
    orch_sbuf_str(b, ")");
}

/* ---- rows from the backend ---------------------------------------------------------- */

static void on_rows(orch_err result, const char *message, json_t *rows, uint64_t affected,
                    void *arg)
{
    api_pending *p = arg;
    (void)affected;
    if (result != ORCH_OK) {
        json_decref(rows);
        pending_error(p, 500, "Cannot read from the backend: %s", message);
        return;
    }
    json_t *out = json_array();
    for (size_t k = 0; out != NULL && k < json_array_size(rows); k++) {
        if (json_array_append_new(out, p->render_row(json_array_get(rows, k))) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    json_decref(rows);
    pending_reply(p, 200, out);
}

/* Reads rows with stmt (taken) and answers them rendered by render_row. */
static void answer_rows(api_req *r, const char *what, char *stmt,
                        json_t *(*render_row)(const json_t *row))
{
    api_pending *p = pending_new(r);
    if (p == NULL) {
        free(stmt);
        reply_error(r, 500, "out of memory");
        return;
    }
    p->render_row = render_row;
    pending_sql(p, what, stmt, on_rows);
}

/* ---- handlers: failure analysis and recovery ------------------------------------------ */

/* The analysis cluster a hint names (by the registry's resolution, else as named). */
static const analysis_cluster *analysis_cluster_of(const analysis_result *res, const char *hint,
                                                   const reg_cluster *cl)
{
    for (size_t k = 0; res != NULL && k < res->nclusters; k++) {
        const analysis_cluster *ac = &res->clusters[k];
        if ((cl != NULL && strcmp(ac->name, cl->name) == 0) || strcmp(ac->name, hint) == 0 ||
            (ac->alias != NULL && strcmp(ac->alias, hint) == 0))
            return ac;
    }
    return NULL;
}

/*
 * orchestrator's replication-analysis: the newest analysis (this
 * coordinator's own; every coordinator runs it) in the envelope, entries with
 * something to say only (orchestrator's default: no NoProblem entries), the
 * downtimed included. What is not judged yet (the coordinator's or a
 * cluster's warm-up) is said in the Message and in each entry's Orch.
 */
static void h_analysis(api_req *r)
{
    registry *reg = reg_of(r);
    const analysis_result *res = r->a->be.analysis(r->a->be.arg);
    const analysis_cluster *only = NULL;
    if (r->hint != NULL) {
        reg_cluster *cl = registry_cluster_by_hint(reg, r->hint);
        only = analysis_cluster_of(res, r->hint, cl);
        if (only == NULL && cl == NULL) {
            reply_error(r, 404,
                        "Cannot get analysis: unable to determine cluster name. "
                        "clusterHint=%s",
                        r->hint);
            return;
        }
        if (only == NULL) { /* a cluster the newest analysis has not seen yet */
            reply_envelope(r, 200, true, "Analysis (the cluster is newer than the analysis)",
                           json_array());
            return;
        }
    }
    if (res == NULL) {
        reply_envelope(r, 200, true, "Analysis (not run yet on this coordinator)", json_array());
        return;
    }
    json_t *arr = json_array();
    orch_sbuf warm = {0};
    for (size_t c = 0; arr != NULL && c < res->nclusters; c++) {
        const analysis_cluster *ac = &res->clusters[c];
        if (only != NULL && ac != only)
            continue;
        if (ac->warming_up && !res->warming_up && warm.len < 512) {
            orch_sbuf_str(&warm, warm.len ? "; " : "");
            orch_sbuf_str(&warm, ac->name);
            if (ac->note != NULL) {
                orch_sbuf_str(&warm, ": ");
                orch_sbuf_str(&warm, ac->note);
            }
        }
        reg_cluster *cl = registry_cluster_by_hint(reg, ac->name);
        if (cl != NULL && strcmp(cl->name, ac->name) != 0)
            cl = NULL;
        for (size_t k = ac->first; arr != NULL && k < ac->first + ac->count; k++) {
            const analysis_entry *e = &res->entries[k];
            if (r->has_key && !orch_key_equal(&e->key, &r->key))
                continue;
            if (json_array_append_new(
                    arr, render_analysis_entry(res, e, cl, registry_get(reg, &e->key), &r->rc)) !=
                0) {
                json_decref(arr);
                arr = NULL;
            }
        }
    }
    char msg[800];
    if (res->warming_up)
        snprintf(msg, sizeof(msg),
                 "Analysis (this coordinator is warming up for %lld ms more: masters are not "
                 "judged yet)",
                 (long long)res->warmup_left_ms);
    else if (warm.len > 0 && !warm.oom)
        snprintf(msg, sizeof(msg), "Analysis (warming up: %s)", warm.p);
    else
        snprintf(msg, sizeof(msg), "Analysis");
    orch_sbuf_fini(&warm);
    if (arr == NULL)
        reply_error(r, 500, "out of memory");
    else
        reply_envelope(r, 200, true, msg, arr);
}

static void h_audit_recovery(api_req *r)
{
    long page;
    if (!page_param(r, &page))
        return;
    const char *unack = query_get(r, "unacknowledged");
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "SELECT " RENDER_RECOVERY_COLUMNS " FROM recovery r WHERE 1 = 1");
    if (r->uid != NULL) {
        orch_sbuf_str(&b, " AND r.uid = ");
        store_sql_string(&b, r->uid);
    }
    if (r->hint != NULL) {
        orch_sbuf_str(&b, " AND ");
        sql_cluster_match(&b, registry_cluster_by_hint(reg_of(r), r->hint), r->hint, true);
    }
    if (unack != NULL && strcmp(unack, "true") == 0)
        orch_sbuf_str(&b, " AND r.acknowledged = 0");
    orch_sbuf_fmt(&b, " ORDER BY r.started_at DESC, r.uid DESC LIMIT %d OFFSET %ld", API_AUDIT_PAGE,
                  page * API_AUDIT_PAGE);
    answer_rows(r, "audit-recovery", orch_sbuf_finish(&b), render_recovery_row);
}

/*
 * The recoveries that block the next automatic one of their cluster now: ended
 * less than recovery_block_seconds ago and not acknowledged (the rule of
 * recovery.c). orchestrator lists the recoveries that were blocked; orch
 * lists what blocks, in audit-recovery's shape, which says what to acknowledge.
 */
static void h_blocked(api_req *r)
{
    orch_sbuf b = {0};
    orch_sbuf_fmt(&b,
                  "SELECT " RENDER_RECOVERY_COLUMNS
                  " FROM recovery r WHERE r.acknowledged = 0 AND r.state IN ('succeeded', "
                  "'failed', 'refused') AND r.ended_at > NOW(6) - INTERVAL %lld SECOND",
                  (long long)r->a->deps.recovery_block_s);
    if (r->hint != NULL) {
        orch_sbuf_str(&b, " AND ");
        sql_cluster_match(&b, registry_cluster_by_hint(reg_of(r), r->hint), r->hint, true);
    }
    orch_sbuf_str(&b, " ORDER BY r.ended_at DESC, r.uid DESC LIMIT 100");
    answer_rows(r, "blocked-recoveries", orch_sbuf_finish(&b), render_recovery_row);
}

static void h_audit_steps(api_req *r)
{
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "SELECT " RENDER_RECOVERY_STEP_COLUMNS " FROM recovery_step WHERE uid = ");
    store_sql_string(&b, r->uid);
    orch_sbuf_str(&b, " ORDER BY seq");
    answer_rows(r, "audit-recovery-steps", orch_sbuf_finish(&b), render_recovery_step_row);
}

static void h_audit_detection(api_req *r)
{
    long page;
    if (!page_param(r, &page))
        return;
    orch_sbuf b = {0};
    orch_sbuf_str(&b,
                  "SELECT " RENDER_FAILURE_DETECTION_COLUMNS " FROM failure_detection WHERE 1 = 1");
    if (r->id != NULL) {
        if (!all_digits(r->id) || strlen(r->id) > 18) {
            orch_sbuf_fini(&b);
            reply_error(r, 400, "Invalid detection id: '%s'", r->id);
            return;
        }
        orch_sbuf_fmt(&b, " AND id = %s", r->id);
    }
    if (r->hint != NULL) {
        orch_sbuf_str(&b, " AND ");
        sql_cluster_match(&b, registry_cluster_by_hint(reg_of(r), r->hint), r->hint, false);
    }
    orch_sbuf_fmt(&b, " ORDER BY id DESC LIMIT %d OFFSET %ld", API_AUDIT_PAGE,
                  page * API_AUDIT_PAGE);
    answer_rows(r, "audit-failure-detection", orch_sbuf_finish(&b), render_failure_detection_row);
}

/* orchestrator: "enabled"/"disabled" in Details, from the operator snapshot. */
static void h_check_global(api_req *r)
{
    if (r->a->be.get_setting == NULL) {
        reply_error(r, 503, "This coordinator has no backend: the global switch is unknown");
        return;
    }
    char v[16];
    bool disabled = r->a->be.get_setting(r->a->be.arg, "recoveries_disabled", v, sizeof(v)) &&
                    strcmp(v, "1") == 0;
    const char *d = disabled ? "disabled" : "enabled";
    char msg[64];
    snprintf(msg, sizeof(msg), "Global recoveries %s", d);
    reply_envelope(r, 200, true, msg, json_string(d));
}

/* Answers a requested recovery from its outcome and record (rec: owned, may be NULL). */
static void recover_answer(api_pending *p, json_t *rec)
{
    char who[ORCH_KEY_STRLEN];
    orch_key_format(&p->failed, who, sizeof(who));
    json_t *succ = rec != NULL ? json_object_get(rec, "SuccessorKey") : NULL;
    char succ_str[ORCH_KEY_STRLEN + 8] = "";
    if (json_is_object(succ))
        snprintf(succ_str, sizeof(succ_str), "%s:%" JSON_INTEGER_FORMAT,
                 json_string_value(json_object_get(succ, "Hostname")),
                 json_integer_value(json_object_get(succ, "Port")));
    char msg[2048];
    json_t *details;
    if (p->force) {
        /* orchestrator: "Master failed over" with the TopologyRecovery */
        if (p->recovered)
            snprintf(msg, sizeof(msg), "Master failed over: %s%s%s (recovery %s)", who,
                     succ_str[0] ? " -> " : "", succ_str, p->uid);
        else
            snprintf(msg, sizeof(msg), "Master not failed over: %s (recovery %s)", p->rec_msg,
                     p->uid[0] ? p->uid : "not started");
        details = rec != NULL ? rec : json_null();
    } else {
        /* orchestrator: "Recovery executed on <key>" with the promoted key */
        if (p->recovered)
            snprintf(msg, sizeof(msg), "Recovery executed on %s%s%s (recovery %s)", who,
                     succ_str[0] ? ": promoted " : "", succ_str, p->uid);
        else
            snprintf(msg, sizeof(msg), "Recovery of %s failed: %s (recovery %s)", who, p->rec_msg,
                     p->uid[0] ? p->uid : "not started");
        details = p->recovered ? (json_is_object(succ) ? json_incref(succ) : json_null())
                               : render_key(&p->failed);
        json_decref(rec);
    }
    pending_reply(p, p->recovered ? 200 : 500, render_envelope(p->recovered, msg, details));
}

static void on_recovery_record(orch_err result, const char *message, json_t *rows,
                               uint64_t affected, void *arg)
{
    api_pending *p = arg;
    (void)affected;
    json_t *rec = NULL;
    if (result == ORCH_OK && json_array_size(rows) == 1)
        rec = render_recovery_row(json_array_get(rows, 0));
    else if (result != ORCH_OK && p->a != NULL)
        orch_warn(p->uid, "HTTP API: cannot read the record of recovery %s: %s", p->uid, message);
    json_decref(rows);
    recover_answer(p, rec);
}

static void on_recovered(void *arg, bool ok, const char *message, const char *uid)
{
    api_pending *p = arg;
    p->recovered = ok;
    snprintf(p->rec_msg, sizeof(p->rec_msg), "%s", message ? message : "");
    snprintf(p->uid, sizeof(p->uid), "%s", uid ? uid : "");
    if (p->a == NULL || p->req == NULL || p->uid[0] == '\0') {
        recover_answer(p, NULL); /* nobody to tell, or no record to read */
        return;
    }
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "SELECT " RENDER_RECOVERY_COLUMNS " FROM recovery r WHERE r.uid = ");
    store_sql_string(&b, p->uid);
    pending_sql(p, "recovery record", orch_sbuf_finish(&b), on_recovery_record);
}

/*
 * Starts the recovery of failed (force: force-master-failover, or with a
 * candidate force-master-takeover; candidate NULL: orch chooses) and answers
 * when it ends.
 */
static void request_recovery(api_req *r, const orch_key *failed, bool force,
                             const orch_key *candidate)
{
    char user[256], reason[512];
    request_user(r, user, sizeof(user));
    snprintf(reason, sizeof(reason), "%s requested through the API by %s",
             !force      ? "recover"
             : candidate ? "force-master-takeover"
                         : "force-master-failover",
             user);
    api_pending *p = pending_new(r);
    if (p == NULL) {
        reply_error(r, 500, "out of memory");
        return;
    }
    p->force = force;
    p->failed = *failed;
    recovery_req req = {
        .failed = *failed, .force = force, .has_candidate = candidate != NULL, .reason = reason};
    if (candidate != NULL)
        req.candidate = *candidate;
    char msg[512];
    orch_err e = r->a->be.recover(r->a->be.arg, &req, on_recovered, p, msg, sizeof(msg));
    if (e == ORCH_OK)
        return; /* p may already be answered and gone */
    int code = status_of(e);
    if (e == ORCH_ERR_STATE) {
        api_leader_info li;
        get_leader(r, &li);
        if (!li.is_leader)
            code = 503; /* lost the lead since the route's check */
    }
    char who[ORCH_KEY_STRLEN];
    orch_key_format(failed, who, sizeof(who));
    pending_error(p, code, "Recovery not attempted on %s: %s", who, msg);
}

/*
 * orchestrator's recover: the failed instance's recovery now (no anti-flap
 * block for a requested one). A candidate, a direct replica, is promoted if
 * eligible (after catching up from the most advanced); otherwise the recovery
 * refuses and says why.
 */
static void h_recover(api_req *r)
{
    reg_instance *i = instance_of_request(r);
    if (i == NULL)
        return;
    request_recovery(r, &i->key, false, r->has_cand ? &r->cand : NULL);
}

/*
 * orchestrator's force-master-failover (orch chooses) and force-master-takeover
 * (to the designated replica): the cluster's master fails over now, even if
 * healthy.
 */
static void h_force_failover(api_req *r)
{
    reg_cluster *cl = cluster_of_request(r);
    if (cl == NULL)
        return;
    if (cl->master == NULL) {
        reply_error(r, 404, "No masters found for %s", cl->name);
        return;
    }
    request_recovery(r, &cl->master->key, true, r->has_cand ? &r->cand : NULL);
}

/* ---- handlers: topology operations ------------------------------------------------------ */

/* The route's operation, from its first segment after "api/". */
static bool operation_of_route(const api_route *rt, operation_kind *kind)
{
    static const struct {
        const char *prefix;
        operation_kind kind;
    } ops[] = {
        {"api/relocate/", OPERATION_RELOCATE},
        {"api/relocate-replicas/", OPERATION_RELOCATE_REPLICAS},
        {"api/move-up/", OPERATION_MOVE_UP},
        {"api/move-up-replicas/", OPERATION_MOVE_UP_REPLICAS},
        {"api/move-below/", OPERATION_MOVE_BELOW},
        {"api/repoint/", OPERATION_REPOINT},
        {"api/take-master/", OPERATION_TAKE_MASTER},
        {"api/graceful-master-takeover/", OPERATION_GRACEFUL_TAKEOVER},
        {"api/graceful-master-takeover-auto/", OPERATION_GRACEFUL_TAKEOVER},
        {"api/stop-slave/", OPERATION_STOP_REPLICA},
        {"api/stop-replica/", OPERATION_STOP_REPLICA},
        {"api/start-slave/", OPERATION_START_REPLICA},
        {"api/start-replica/", OPERATION_START_REPLICA},
        {"api/restart-slave/", OPERATION_RESTART_REPLICA},
        {"api/restart-replica/", OPERATION_RESTART_REPLICA},
        {"api/set-read-only/", OPERATION_SET_READ_ONLY},
        {"api/set-writeable/", OPERATION_SET_WRITEABLE},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strncmp(rt->pattern, ops[i].prefix, strlen(ops[i].prefix)) == 0) {
            *kind = ops[i].kind;
            return true;
        }
    }
    return false;
}

/*
 * An operation ended: 200 with its message, 500 when it failed. Details as
 * orchctl reads them (orchestrator sends the whole moved instance or the
 * takeover's recovery): a move gives {"Key", "MasterKey"} (its new master,
 * when it succeeded), a takeover {"SuccessorKey"} (the new master, or the
 * designated replica when it failed), the others the instance's key.
 */
static void on_operated(void *arg, const operation_result *res)
{
    api_pending *p = arg;
    bool ok = res->ok;
    const char *message = res->message;
    json_t *details = NULL;
    switch (p->op_kind) {
    case OPERATION_RELOCATE_REPLICAS:
    case OPERATION_MOVE_UP_REPLICAS:
        details = json_array();
        for (size_t k = 0; details != NULL && k < res->nmoved; k++)
            json_array_append_new(details, json_pack("{s:o}", "Key", render_key(&res->moved[k])));
        break;
    case OPERATION_RELOCATE:
    case OPERATION_MOVE_UP:
    case OPERATION_MOVE_BELOW:
    case OPERATION_REPOINT:
    case OPERATION_TAKE_MASTER:
        details = json_object();
        if (details != NULL) {
            json_object_set_new(details, "Key", render_key(&p->op_key));
            if (res->master != NULL)
                json_object_set_new(details, "MasterKey", render_key(res->master));
        }
        break;
    case OPERATION_GRACEFUL_TAKEOVER:
        details = res->master != NULL ? json_pack("{s:o}", "SuccessorKey", render_key(res->master))
                  : p->op_has_target ? json_pack("{s:o}", "SuccessorKey", render_key(&p->op_target))
                                     : json_null();
        break;
    default:
        details = render_key(&p->op_key);
        break;
    }
    pending_reply(p, ok ? 200 : 500,
                  render_envelope(ok,
                                  message != NULL && message[0] ? message : (ok ? "OK" : "failed"),
                                  details));
}

/*
 * relocate, move-up, move-below, repoint, take-master, graceful-master-takeover,
 * stop/start-slave (and -replica), set-read-only, set-writeable: checked and
 * run by operations.c, answered when the operation ends. A refusal before it
 * starts: 404 unknown instance or cluster, 409 the rules, 400 a bad request;
 * 503 when this node lost the lead since the route's check.
 */
static void h_operation(api_req *r)
{
    operation_kind kind;
    if (!operation_of_route(r->route, &kind)) {
        reply_error(r, 500, "no operation for %s", r->route->pattern);
        return;
    }
    if (r->a->be.operate == NULL) {
        reply_error(r, 503, "This coordinator runs no operations");
        return;
    }
    char user[256], reason[512];
    request_user(r, user, sizeof(user));
    snprintf(reason, sizeof(reason), "%s requested through the API by %s",
             operation_kind_name(kind), user);
    operation_req req = {.kind = kind,
                         .instance = r->key,
                         .cluster = r->has_key ? NULL : r->hint,
                         .has_target = r->has_cand,
                         .target = r->cand,
                         .choose = strstr(r->route->pattern, "-auto/") != NULL,
                         .owner = user,
                         .reason = reason};
    api_pending *p = pending_new(r);
    if (p == NULL) {
        reply_error(r, 500, "out of memory");
        return;
    }
    p->op_kind = kind;
    p->op_key = r->key;
    p->op_has_target = r->has_cand;
    p->op_target = r->cand;
    char msg[1024];
    orch_err e = r->a->be.operate(r->a->be.arg, &req, on_operated, p, msg, sizeof(msg));
    if (e == ORCH_OK)
        return; /* answered from on_operated */
    int code = status_of(e);
    if (e == ORCH_ERR_STATE) {
        api_leader_info li;
        get_leader(r, &li);
        if (!li.is_leader)
            code = 503; /* lost the lead since the route's check */
    }
    pending_error(p, code, "%s refused: %s", operation_kind_name(kind), msg);
}

/* ---- handlers: acknowledgements ---------------------------------------------------------- */

static void on_ack(orch_err result, const char *message, json_t *rows, uint64_t affected, void *arg)
{
    api_pending *p = arg;
    json_decref(rows);
    if (result != ORCH_OK) {
        pending_error(p, 500, "Cannot acknowledge: %s", message);
        return;
    }
    char msg[800];
    snprintf(msg, sizeof(msg), "%s: %llu recover%s acknowledged", p->ok_msg,
             (unsigned long long)affected, affected == 1 ? "y" : "ies");
    pending_reply(p, 200, render_envelope(true, msg, json_integer((json_int_t)affected)));
}

/*
 * Acknowledges the unacknowledged recoveries matching where (SQL, taken over
 * from b), which lifts their anti-flap block; answers with the count.
 * orchestrator requires a comment.
 */
static void ack(api_req *r, orch_sbuf *where, const char *ok_msg)
{
    const char *comment = query_get(r, "comment");
    while (comment != NULL && isspace((unsigned char)*comment))
        comment++;
    if (comment == NULL || *comment == '\0') {
        orch_sbuf_fini(where);
        reply_error(r, 400, "No acknowledge comment given (add ?comment=...)");
        return;
    }
    char user[256];
    request_user(r, user, sizeof(user));
    orch_sbuf b = {0};
    orch_sbuf_str(&b, "UPDATE recovery SET acknowledged = 1, acknowledged_at = NOW(6), "
                      "acknowledged_by = ");
    store_sql_string(&b, user);
    orch_sbuf_str(&b, ", acknowledged_comment = ");
    store_sql_string(&b, comment);
    orch_sbuf_str(&b, " WHERE acknowledged = 0 AND state <> 'running' AND ");
    char *w = orch_sbuf_finish(where);
    orch_sbuf_str(&b, w != NULL ? w : "0 = 1");
    if (w == NULL)
        b.oom = true;
    free(w);
    api_pending *p = pending_new(r);
    if (p == NULL) {
        orch_sbuf_fini(&b);
        reply_error(r, 500, "out of memory");
        return;
    }
    snprintf(p->ok_msg, sizeof(p->ok_msg), "%s", ok_msg);
    pending_sql(p, "acknowledgement", orch_sbuf_finish(&b), on_ack);
}

static void h_ack_cluster(api_req *r)
{
    reg_cluster *cl = registry_cluster_by_hint(reg_of(r), r->hint);
    orch_sbuf w = {0};
    sql_cluster_match(&w, cl, r->hint, true);
    char msg[ORCH_KEY_STRLEN + 300];
    snprintf(msg, sizeof(msg), "Acknowledged cluster recoveries of %s", cl ? cl->name : r->hint);
    ack(r, &w, msg);
}

static void h_ack_instance(api_req *r)
{
    reg_instance *i = registry_find(reg_of(r), r->key.host, r->key.port);
    const orch_key *k = i != NULL ? &i->key : &r->key;
    orch_sbuf w = {0};
    orch_sbuf_str(&w, "failed_host = ");
    store_sql_string(&w, k->host);
    orch_sbuf_fmt(&w, " AND failed_port = %u", (unsigned)k->port);
    char name[ORCH_KEY_STRLEN], msg[ORCH_KEY_STRLEN + 64];
    orch_key_format(k, name, sizeof(name));
    snprintf(msg, sizeof(msg), "Acknowledged instance recoveries of %s", name);
    ack(r, &w, msg);
}

static void h_ack_uid(api_req *r)
{
    if (strlen(r->uid) > 64) {
        reply_error(r, 400, "Invalid recovery UID: longer than 64 characters");
        return;
    }
    orch_sbuf w = {0};
    orch_sbuf_str(&w, "uid = ");
    store_sql_string(&w, r->uid);
    char msg[128];
    snprintf(msg, sizeof(msg), "Acknowledged recovery %s", r->uid);
    ack(r, &w, msg);
}

static void h_ack_all(api_req *r)
{
    orch_sbuf w = {0};
    orch_sbuf_str(&w, "1 = 1");
    ack(r, &w, "Acknowledged all recoveries");
}

/* ---- handlers: operator state ---------------------------------------------------------- */

static void on_op(orch_err result, const char *message, void *arg)
{
    api_pending *p = arg;
    if (result != ORCH_OK) {
        pending_error(p, result == ORCH_ERR_MYSQL ? 503 : status_of(result), "%s", message);
        return;
    }
    char msg[800];
    snprintf(msg, sizeof(msg), "%s%s", p->ok_msg,
             message != NULL && strstr(message, "nothing to end") ? " (there was none)" : "");
    json_t *d = p->ok_details;
    p->ok_details = NULL;
    pending_reply(p, 200, render_envelope(true, msg, d));
}

/* Submits an operator write; answers with ok_msg and details (taken) once written. */
static void submit_op(api_req *r, const store_op *op, const char *ok_msg, json_t *details)
{
    api_pending *p = pending_new(r);
    if (p == NULL) {
        json_decref(details);
        reply_error(r, 500, "out of memory");
        return;
    }
    snprintf(p->ok_msg, sizeof(p->ok_msg), "%s", ok_msg);
    p->ok_details = details;
    char msg[512];
    orch_err e = r->a->be.submit_op(r->a->be.arg, op, on_op, p, msg, sizeof(msg));
    if (e != ORCH_OK)
        pending_error(p, status_of(e), "%s", msg);
}

/* disable-/enable-global-recoveries: the recoveries_disabled setting every node reads. */
static void h_global(api_req *r)
{
    bool disable = strstr(r->route->pattern, "disable") != NULL;
    store_op op = {.kind = STORE_OP_SET_GLOBAL_SETTING,
                   .name = "recoveries_disabled",
                   .value = disable ? "1" : NULL};
    submit_op(r, &op, disable ? "Globally disabled recoveries" : "Globally enabled recoveries",
              json_string(disable ? "disabled" : "enabled"));
}

/* begin-downtime and begin-maintenance: owner, reason, duration (default 10 minutes). */
static void begin_timed(api_req *r, store_op_kind kind, const char *what)
{
    reg_instance *i = instance_of_request(r);
    if (i == NULL)
        return;
    int64_t secs = API_DEFAULT_MAINT_S;
    if (r->duration != NULL) {
        char why[256];
        int64_t v = parse_duration(r->duration, why, sizeof(why));
        if (v < 0) {
            reply_error(r, 400, "Invalid duration: %s", why);
            return;
        }
        if (v > 0)
            secs = v;
    }
    store_op op = {.kind = kind,
                   .key = i->key,
                   .owner = r->owner,
                   .reason = r->reason,
                   .duration_ms = secs * 1000};
    char msg[ORCH_KEY_STRLEN + 96];
    snprintf(msg, sizeof(msg), "%s begun: %s for %lld s", what, i->name, (long long)secs);
    submit_op(r, &op, msg, render_key(&i->key));
}

static void end_timed(api_req *r, store_op_kind kind, const char *what)
{
    reg_instance *i = instance_of_request(r);
    if (i == NULL)
        return;
    store_op op = {.kind = kind, .key = i->key};
    char msg[ORCH_KEY_STRLEN + 64];
    snprintf(msg, sizeof(msg), "%s ended: %s", what, i->name);
    submit_op(r, &op, msg, render_key(&i->key));
}

/*
 * orchestrator's forget: every coordinator drops the instance from its picture
 * at its next operator-state refresh (about a second), and its stored row
 * goes; a report from its agent after that brings it back (rediscovery).
 */
static void h_forget(api_req *r)
{
    reg_instance *i = instance_of_request(r);
    if (i == NULL)
        return;
    store_op op = {.kind = STORE_OP_FORGET, .key = i->key};
    char msg[ORCH_KEY_STRLEN + 160];
    snprintf(msg, sizeof(msg),
             "Forgotten: %s (every coordinator drops it within a second; it returns if its agent "
             "reports again)",
             i->name);
    submit_op(r, &op, msg, render_key(&i->key));
}

static void h_begin_downtime(api_req *r)
{
    begin_timed(r, STORE_OP_BEGIN_DOWNTIME, "Downtime");
}

static void h_end_downtime(api_req *r)
{
    end_timed(r, STORE_OP_END_DOWNTIME, "Downtime");
}

static void h_begin_maintenance(api_req *r)
{
    begin_timed(r, STORE_OP_BEGIN_MAINTENANCE, "Maintenance");
}

static void h_end_maintenance(api_req *r)
{
    end_timed(r, STORE_OP_END_MAINTENANCE, "Maintenance");
}

/* orchestrator's register-candidate: a promotion rule for an hour (its
 * CandidateDatabaseInstanceExpireMinutes), overriding the agent's. */
static void h_register_candidate(api_req *r)
{
    static const char *const rules[] = {"prefer", "neutral", "prefer_not", "must_not"};
    bool known = false;
    for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]); k++)
        known = known || strcmp(r->rule, rules[k]) == 0;
    if (!known) {
        reply_error(r, 400,
                    "Invalid promotion rule '%s': use prefer, neutral, prefer_not or must_not",
                    r->rule);
        return;
    }
    reg_instance *i = instance_of_request(r);
    if (i == NULL)
        return;
    store_op op = {.kind = STORE_OP_REGISTER_CANDIDATE,
                   .key = i->key,
                   .rule = r->rule,
                   .duration_ms = (int64_t)API_CANDIDATE_S * 1000};
    char msg[ORCH_KEY_STRLEN + 64];
    snprintf(msg, sizeof(msg), "Registered candidate %s: %s", i->name, r->rule);
    submit_op(r, &op, msg, render_key(&i->key));
}

/* orchestrator's set-cluster-alias/:clusterName?alias= (an empty alias removes it). */
static void h_set_alias(api_req *r)
{
    reg_cluster *cl = cluster_of_request(r);
    if (cl == NULL)
        return;
    const char *alias = query_get(r, "alias");
    if (alias == NULL)
        alias = "";
    if (strlen(alias) > 255) {
        reply_error(r, 400, "Invalid alias: longer than 255 bytes");
        return;
    }
    store_op op = {.kind = STORE_OP_SET_CLUSTER_ALIAS, .cluster = cl->name, .alias = alias};
    char msg[ORCH_KEY_STRLEN + 300];
    snprintf(msg, sizeof(msg), "Cluster %s now has alias '%s'", cl->name, alias);
    submit_op(r, &op, msg, NULL);
}

/* ---- the request callback --------------------------------------------------------- */

/* ClusterInfo's HasAutomated...Recovery: the coordinator's recover_clusters. */
static bool recovers_cluster(const void *arg, const char *cluster, const char *alias)
{
    return recovery_cluster_selected(arg, cluster, alias);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    api *a = arg;
    api_req r = {.a = a, .req = req, .start_us = orch_mono_us()};
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    r.head = method == EVHTTP_REQ_HEAD;
    char *segs[API_MAX_SEGS];
    size_t nsegs = 0;

    if (stream_cancelled(a, req) || pending_cancelled(a, req))
        return;
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL) {
        /* libevent's call for a request it could not read (headers too large, ...) */
        reply_error(&r, 400, "Malformed request");
        return;
    }
    if (strlen(uri) > API_MAX_URI) {
        reply_error(&r, 414, "Request URI longer than %d bytes", API_MAX_URI);
        return;
    }
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    r.path = path && *path ? path : "/";
    const char *query = u ? evhttp_uri_get_query(u) : NULL;

    bool toomany = false, bad = false;
    bool split = split_path(r.path, segs, &nsegs, &toomany, &bad);
    r.route = split ? route_lookup(segs, nsegs) : NULL;

    api_auth_result ar = api_auth_check(
        a, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"),
        r.route && (r.route->flags & ROUTE_WRITES));
    if (ar == API_AUTH_MISSING || ar == API_AUTH_WRONG) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"orch\", charset=\"UTF-8\"");
        reply_error(&r, 401, "Unauthorized");
        goto out;
    }
    if (ar == API_AUTH_READ_ONLY) {
        reply_error(&r, 403, "Unauthorized: the read-only user cannot run %s", r.path);
        goto out;
    }
    if (!split && bad) {
        reply_error(&r, 400, "Malformed path: %s", r.path);
        goto out;
    }
    if (r.route == NULL) {
        reply_error(&r, 404, "Unknown route: %s", r.path);
        goto out;
    }
    bool writes = (r.route->flags & ROUTE_WRITES) != 0;
    if (method != EVHTTP_REQ_GET && (method != EVHTTP_REQ_HEAD || writes)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          writes ? "GET" : "GET, HEAD");
        reply_error(&r, 405, "Method not allowed on %s (use GET)", r.path);
        goto out;
    }
    if (query != NULL) {
        int rc = evhttp_parse_query_str(query, &r.query);
        r.has_query = true; /* cleared at the end, even when half parsed */
        if (rc != 0) {
            reply_error(&r, 400, "Malformed query string");
            goto out;
        }
    }
    if (!take_params(&r, segs, nsegs))
        goto out;
    if ((r.route->flags & ROUTE_LEADER) != 0 && !leader_or_forward(&r))
        goto out;
    r.rc = (render_ctx){
        .now_ms = orch_mono_ms(),
        .now_wall_ms = orch_wall_ms(),
        .stale_after_ms = a->deps.stale_after_ms,
        .reasonable_lag_s = a->deps.reasonable_lag_s > 0 ? a->deps.reasonable_lag_s : 10,
        .recover_master = a->deps.recover_master,
        .recover_intermediate_master = a->deps.recover_intermediate_master,
        .recovers = a->deps.rec != NULL ? recovers_cluster : NULL,
        .recovers_arg = a->deps.rec,
    };
    r.route->fn(&r);
    if (!r.replied)
        reply_error(&r, 500, "internal error: %s did not answer", r.route->pattern);
out:
    if (r.has_query)
        evhttp_clear_headers(&r.query);
    free_segs(segs, nsegs);
}

/* ---- lifecycle --------------------------------------------------------------------- */

/* Splits "host:port" / "[v6]:port" / ":port"; port may be 0. */
static orch_err parse_listen(const char *listen, char *host, size_t hostlen, uint16_t *port,
                             char *msg, size_t msglen)
{
    if (listen == NULL || *listen == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "empty listen address");
    const char *colon;
    const char *h = listen;
    size_t hl;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return orch_fail(msg, msglen, ORCH_ERR_CONFIG,
                             "listen address '%s' is not [address]:port", listen);
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_CONFIG,
                             "listen address '%s' has no port (expected host:port)", listen);
        hl = (size_t)(colon - listen);
    }
    if (hl >= hostlen)
        return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "listen host in '%s' is too long", listen);
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (hl == 0)
        snprintf(host, hostlen, "%s", "0.0.0.0");
    const char *p = colon + 1;
    bool digits = *p != '\0' && strlen(p) <= 5;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            digits = false;
    long v = digits ? strtol(p, NULL, 10) : -1;
    if (v < 0 || v > 65535)
        return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "listen port in '%s' is not 0..65535",
                         listen);
    *port = (uint16_t)v;
    return ORCH_OK;
}

api *api_start(struct event_base *base, const char *listen, const api_deps *deps,
               const api_auth *auth, char *msg, size_t msglen)
{
    char host[ORCH_HOST_MAX + 1];
    uint16_t port = 0;
    if (base == NULL || deps == NULL || deps->reg == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "api_start: missing event base or registry");
        return NULL;
    }
    if (parse_listen(listen, host, sizeof(host), &port, msg, msglen) != ORCH_OK)
        return NULL;
    api *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    a->base = base;
    a->deps = *deps;
    a->deps.backend = NULL; /* copied below: the caller's may not outlive us */
    if (deps->backend != NULL) {
        a->be = *deps->backend;
    } else {
        a->be = (api_backend){.analysis = be_analysis,
                              .recover = be_recover,
                              .submit_op = be_submit_op,
                              .submit_batch = be_submit_batch,
                              .get_setting = deps->st != NULL ? be_get_setting : NULL,
                              .operate = be_operate,
                              .arg = a};
    }
    a->batch = deps->stream_batch > 0 ? deps->stream_batch : 128;
    auth_fill(&a->auth, auth);
    a->http = evhttp_new(base);
    a->reaper = evtimer_new(base, reap_forwards, a);
    /* resolv.conf and /etc/hosts; an IP literal needs no lookup */
    a->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (a->http == NULL || a->reaper == NULL || a->dns == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "evhttp_new failed");
        goto error;
    }
    /* Every method reaches on_request, so that the answer is our 405, not evhttp's 501. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(a->http, API_TIMEOUT_S);
    evhttp_set_max_headers_size(a->http, 16 * 1024);
    evhttp_set_max_body_size(a->http, 64 * 1024);
    evhttp_set_gencb(a->http, on_request, a);
    a->sock = evhttp_bind_socket_with_handle(a->http, host, port);
    if (a->sock == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "cannot listen on %s: %s", listen, strerror(errno));
        goto error;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(a->sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "getsockname on %s: %s", listen, strerror(errno));
        goto error;
    }
    if (ss.ss_family == AF_INET6)
        a->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    orch_info(NULL, "HTTP API listening on %s (port %u, auth %s)", listen, (unsigned)a->port,
              a->auth.mode == COORD_AUTH_NONE    ? "none"
              : a->auth.mode == COORD_AUTH_BASIC ? "basic"
                                                 : "basic with read-only user");
    return a;
error:
    if (a->http != NULL)
        evhttp_free(a->http);
    if (a->reaper != NULL)
        event_free(a->reaper);
    if (a->dns != NULL)
        evdns_base_free(a->dns, 0);
    free(a);
    return NULL;
}

void api_stop(api *a)
{
    if (a == NULL)
        return;
    /* Forwards first: their connections to the leader are dropped (no
     * callback comes) and their clients answered while still attached. */
    reap_forwards(-1, 0, a);
    event_free(a->reaper);
    while (a->forwards != NULL) {
        api_forward *f = a->forwards;
        forward_unlink(f);
        evhttp_connection_free(f->evcon);
        pending_error(f->p, 503, "The coordinator is stopping: the leader's answer is lost");
        free(f);
    }
    /* Connections go next: their close callbacks mark the streams closed and
     * the requests still attached are freed with them. */
    evhttp_free(a->http);
    while (a->streams != NULL) {
        api_stream *st = a->streams;
        if (st->closed && st->own_req)
            evhttp_send_reply_end(st->req);
        stream_free(st);
    }
    /* Answers still owed: their connections are gone with evhttp_free (the
     * close callbacks let go of the requests); the contexts stay for the
     * callbacks, which free them. */
    while (a->pendings != NULL) {
        api_pending *p = a->pendings;
        a->pendings = p->next;
        p->a = NULL;
        p->req = NULL;
        p->evcon = NULL;
        p->prev = p->next = NULL;
    }
    evdns_base_free(a->dns, 0); /* the forwards' lookups went with their connections */
    memset(&a->auth, 0, sizeof(a->auth));
    free(a);
}

uint16_t api_port(const api *a)
{
    return a ? a->port : 0;
}
