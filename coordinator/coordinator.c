/* coordinator.c: the coordinator's parts wired on one event loop (see coordinator.h). */
#include "coordinator.h"

#include "api.h"
#include "clock.h"
#include "commander.h"
#include "daemon.h"
#include "election.h"
#include "hooks.h"
#include "intake.h"
#include "log.h"
#include "metrics.h"
#include "operations.h"
#include "pbjson.h"
#include "recovery.h"
#include "registry.h"
#include "render.h"
#include "store.h"
#include "transport.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_MS  100
#define ANALYSIS_MS 500 /* the analysis beat; report shape changes also trigger it */

struct coordinator {
    char *config_path;
    coord_config cfg;
    int64_t started_ms;
    struct event_base *base;
    struct event *ev_refresh, *ev_notify, *ev_hup, *ev_term, *ev_int;
    registry *reg;
    metrics *m;
    intake *in;
    api *http;
    election *el;
    store *st;
    commander *cmd;
    hooks *hk;
    recovery_mgr *rec;
    operations *ops;
    int64_t next_analysis_ms;
    nng_tls_config *tls_server;

    bool was_leader;
    int64_t next_write_ms, next_last_seen_ms;

    /* Snapshots handed to the API (valid until the next call). */
    election_status es;
    api_node_info *nodes;
    store_status ss;
    char backend_error[256];
};

/* ---- API callbacks (loop thread) ------------------------------------------ */

static void api_leader_cb(void *arg, api_leader_info *out)
{
    coordinator *c = arg;
    election_status_fini(&c->es);
    free(c->nodes);
    c->nodes = NULL;
    election_status_get(c->el, &c->es);
    c->nodes = calloc(c->es.nnodes ? c->es.nnodes : 1, sizeof(*c->nodes));
    size_t n = 0;
    for (size_t i = 0; c->nodes != NULL && i < c->es.nnodes; i++, n++) {
        c->nodes[i].node = c->es.nodes[i].node;
        c->nodes[i].api_url = c->es.nodes[i].api_url;
        c->nodes[i].version = c->es.nodes[i].version;
        c->nodes[i].last_seen_wall_ms = orch_wall_ms() - c->es.nodes[i].last_seen_age_ms;
    }
    *out = (api_leader_info){
        .is_leader = election_is_leader(c->el, orch_mono_ms()),
        .epoch = c->es.epoch,
        .node = c->cfg.node,
        .leader = c->es.leader_node,
        .leader_api = c->es.leader_api_url[0] ? c->es.leader_api_url : NULL,
        .nodes = c->nodes,
        .nnodes = n,
    };
}

static void api_health_cb(void *arg, api_health_info *out)
{
    coordinator *c = arg;
    store_status_get(c->st, &c->ss);
    /* Its own snapshot: the API may hold pointers into c->es from the leader callback. */
    election_status es;
    election_status_get(c->el, &es);
    /* A hung backend fails nothing (the threads just wait): health also needs a
     * successful election round within the window that keeps a leader leading
     * (lease minus margin): a backend that could not hold a lease is unhealthy. */
    int64_t now = orch_mono_ms();
    bool recent =
        es.last_ok_ms != 0 && now - es.last_ok_ms <= c->cfg.lease_ms - c->cfg.lease_margin_ms;
    bool ok = c->ss.backend_ok && es.backend_ok && recent;
    if (!recent && es.last_ok_ms != 0)
        snprintf(c->backend_error, sizeof(c->backend_error),
                 "no answer from the backend for %lld ms", (long long)(now - es.last_ok_ms));
    else
        snprintf(c->backend_error, sizeof(c->backend_error), "%s",
                 es.last_error[0] ? es.last_error : c->ss.last_error);
    election_status_fini(&es);
    int64_t last_ok_ago = c->ss.last_refresh_ok_ms ? orch_mono_ms() - c->ss.last_refresh_ok_ms : -1;
    *out = (api_health_info){
        .backend_ok = ok,
        .backend_error = ok || !c->backend_error[0] ? NULL : c->backend_error,
        .backend_rtt_us = c->ss.last_rtt_us,
        .write_queue_depth = (int64_t)c->ss.queue_depth,
        .last_backend_ok_wall_ms = last_ok_ago < 0 ? 0 : orch_wall_ms() - last_ok_ago,
    };
}

/* ---- metrics (collector runs at every /metrics render) --------------------- */

static void collect(void *arg, metrics *m)
{
    coordinator *c = arg;
    const intake_counters *ic = intake_get_counters(c->in);
    metric *recv = metrics_counter(m, "orch_reports_received_total",
                                   "Reports received from agents (any outcome).", NULL);
    metric_add(recv, (double)ic->received - metric_value(recv));
    metric *acc = metrics_counter(m, "orch_reports_accepted_total",
                                  "Reports authenticated, fresh and applied.", NULL);
    metric_add(acc, (double)ic->accepted - metric_value(acc));
    for (int r = 0; r < INTAKE_REJECT__COUNT; r++) {
        metric *rej =
            metrics_counter(m, "orch_reports_rejected_total", "Reports dropped, by reason.",
                            "reason", intake_reject_name((intake_reject)r), NULL);
        metric_add(rej, (double)ic->rejected[r] - metric_value(rej));
    }
    /* instances by agent state, with stale ones apart */
    static const char *const states[] = {"UP",         "DOWN",    "UNRESPONSIVE",
                                         "AUTH_ERROR", "UNKNOWN", "STALE"};
    double count[6] = {0};
    size_t n;
    reg_instance *const *v = registry_instances(c->reg, &n);
    int64_t now = orch_mono_ms();
    for (size_t i = 0; i < n; i++) {
        if (reg_instance_is_stale(v[i], now, c->cfg.stale_after_ms)) {
            count[5]++;
            continue;
        }
        switch (v[i]->report->state) {
        case ORCH__PROBE_STATE__PROBE_UP:
            count[0]++;
            break;
        case ORCH__PROBE_STATE__PROBE_DOWN:
            count[1]++;
            break;
        case ORCH__PROBE_STATE__PROBE_UNRESPONSIVE:
            count[2]++;
            break;
        case ORCH__PROBE_STATE__PROBE_AUTH_ERROR:
            count[3]++;
            break;
        default:
            count[4]++;
            break;
        }
    }
    for (int s = 0; s < 6; s++)
        metric_set(metrics_gauge(m, "orch_instances",
                                 "Instances by agent state (STALE: not "
                                 "heard from within stale_after_ms).",
                                 "state", states[s], NULL),
                   count[s]);
    metric_set(metrics_gauge(m, "orch_leader", "1 when this node is the leader.", NULL),
               election_is_leader(c->el, now) ? 1 : 0);
    metric_set(metrics_gauge(m, "orch_leader_epoch", "The current leader's epoch.", NULL),
               (double)election_leader_epoch(c->el, now));
    store_status ss;
    store_status_get(c->st, &ss);
    api_health_info h;
    api_health_cb(c, &h);
    metric_set(metrics_gauge(m, "orch_backend_up",
                             "1 when the backend answered recently (as /api/health says).", NULL),
               h.backend_ok ? 1 : 0);
    metric_set(metrics_gauge(m, "orch_backend_rtt_seconds", "Last backend round trip.", NULL),
               ss.last_rtt_us / 1e6);
    metric_set(metrics_gauge(m, "orch_backend_write_queue",
                             "Instance rows waiting for the "
                             "backend.",
                             NULL),
               (double)ss.queue_depth);
    metric *w = metrics_counter(m, "orch_backend_rows_written_total", "Rows written.", NULL);
    metric_add(w, (double)ss.rows_written - metric_value(w));
    metric *d = metrics_counter(m, "orch_backend_rows_dropped_total",
                                "Rows dropped because the write queue was full.", NULL);
    metric_add(d, (double)ss.rows_dropped - metric_value(d));
}

/* ---- write-behind (leader only) -------------------------------------------- */

static bool write_gate(void *arg)
{
    coordinator *c = arg;
    return election_is_leader(c->el, orch_mono_ms());
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void fill_row(store_instance_row *row, const reg_instance *i)
{
    const Orch__InstanceReport *r = i->report;
    memset(row, 0, sizeof(*row));
    row->key = i->key;
    row->cluster = dup_or_null(i->cluster ? i->cluster->name : i->name);
    if (i->has_master) {
        row->master_host = strdup(i->master_key.host);
        row->master_port = i->master_key.port;
    }
    row->state = strdup(render_agent_state_name(r->state));
    row->read_only = r->server && r->server->read_only;
    row->server_id = r->server ? r->server->server_id : 0;
    row->version = dup_or_null(r->server ? r->server->version : NULL);
    row->data_center = dup_or_null(r->data_center);
    row->promotion_rule = strdup(render_promotion_rule_name(reg_instance_promotion_rule(i)));
    json_t *j = orch_pb_to_json(&r->base);
    row->report_json = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    row->last_seen_wall_ms = i->last_seen_wall_ms;
}

static void write_behind(coordinator *c, int64_t now)
{
    size_t n = 0;
    if (now >= c->next_write_ms) {
        c->next_write_ms = now + c->cfg.write_interval_ms;
        reg_instance **dirty = registry_take_dirty(c->reg, &n);
        if (n > 0) {
            store_instance_row *rows = calloc(n, sizeof(*rows));
            for (size_t i = 0; i < n; i++) {
                if (rows != NULL)
                    fill_row(&rows[i], dirty[i]);
                else
                    registry_mark_dirty(c->reg, dirty[i]); /* the next pass tries again */
            }
            if (rows != NULL)
                store_submit_instances(c->st, rows, n); /* takes ownership */
        }
        free(dirty);
    }
    if (now >= c->next_last_seen_ms) {
        c->next_last_seen_ms = now + c->cfg.last_seen_interval_ms;
        reg_instance *const *v = registry_instances(c->reg, &n);
        store_last_seen *seen = calloc(n ? n : 1, sizeof(*seen));
        size_t k = 0;
        for (size_t i = 0; seen != NULL && i < n; i++) {
            if (reg_instance_is_stale(v[i], now, c->cfg.stale_after_ms))
                continue;
            seen[k].key = v[i]->key;
            seen[k].wall_ms = v[i]->last_seen_wall_ms;
            k++;
        }
        if (k > 0)
            store_submit_last_seen(c->st, seen, k);
        free(seen);
    }
}

/* ---- loop events ------------------------------------------------------------ */

static void leadership(coordinator *c, int64_t now)
{
    bool leader = election_is_leader(c->el, now);
    if (leader == c->was_leader)
        return;
    c->was_leader = leader;
    recovery_leadership(c->rec, leader);
    if (leader) {
        /* A new leader writes everything it knows once, then what changes. */
        size_t n;
        reg_instance *const *v = registry_instances(c->reg, &n);
        for (size_t i = 0; i < n; i++)
            registry_mark_dirty(c->reg, v[i]);
        c->next_write_ms = now;
        c->next_last_seen_ms = now + c->cfg.last_seen_interval_ms;
        orch_log(ORCH_LOG_NOTICE, "ORCH-LEADER", c->cfg.node, "this node leads at epoch %llu",
                 (unsigned long long)election_leader_epoch(c->el, now));
    } else {
        orch_log(ORCH_LOG_NOTICE, "ORCH-FOLLOWER", c->cfg.node, "this node no longer leads");
    }
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    coordinator *c = arg;
    int64_t now = orch_mono_ms();
    registry_refresh(c->reg);
    reg_operator_row *rows;
    reg_alias_row *aliases;
    size_t n, na;
    if (store_take_operator_state(c->st, &rows, &n, &aliases, &na)) {
        if (registry_set_operator_state(c->reg, rows, n, aliases, na) != ORCH_OK)
            orch_error(NULL, "out of memory applying operator state");
        store_operator_state_free(rows, n, aliases, na);
        registry_refresh(c->reg);
    }
    leadership(c, now);
    if (c->was_leader)
        write_behind(c, now);
    if (now >= c->next_analysis_ms) {
        c->next_analysis_ms = now + ANALYSIS_MS;
        recovery_tick(c->rec, now);
    }
}

/* Intake: a report whose shape changed (a server died, a thread stopped) is
 * analysed at once rather than at the next beat. */
static void on_accepted(void *arg, reg_instance *inst)
{
    coordinator *c = arg;
    if (inst->shape_changed_ms == inst->last_seen_ms)
        recovery_poke(c->rec);
}

/* Commander: nothing is sent for an epoch this node does not lead. */
static bool command_gate(void *arg, uint64_t epoch)
{
    coordinator *c = arg;
    int64_t now = orch_mono_ms();
    return election_is_leader(c->el, now) && election_leader_epoch(c->el, now) == epoch;
}

static recovery_conf recovery_conf_of(const coord_config *cfg)
{
    recovery_conf rc = {
        .node = cfg->node,
        .recover_clusters = &cfg->recover_clusters,
        .block_seconds = cfg->recovery_block_seconds,
        .command_timeout_ms = cfg->command_timeout_ms,
        .direct_check_timeout_ms = cfg->direct_check_timeout_ms,
        .wait_gtid_timeout_ms = cfg->wait_gtid_timeout_ms,
        .hook_timeout_ms = cfg->hook_timeout_ms,
        .lost_downtime_s = cfg->lost_downtime_seconds,
        .on_failure_detection = &cfg->on_failure_detection,
        .pre_failover = &cfg->pre_failover,
        .post_failover = &cfg->post_failover,
        .post_unsuccessful_failover = &cfg->post_unsuccessful_failover,
    };
    analysis_config_init(&rc.analysis);
    rc.analysis.stale_after_ms = cfg->stale_after_ms;
    rc.analysis.warmup_ms = cfg->warmup_ms;
    rc.analysis.reasonable_lag_s = cfg->reasonable_lag_seconds;
    return rc;
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    coordinator *c = arg;
    leadership(c, orch_mono_ms());
}

/* Election thread: wake the loop to look at leadership now. */
static void notify_from_election(void *arg)
{
    coordinator *c = arg;
    event_active(c->ev_notify, EV_READ, 0);
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    coordinator *c = arg;
    coord_config fresh = {0};
    orch_config_errors errs = {0};
    orch_info(NULL, "SIGHUP: reloading %s", c->config_path);
    if (coord_config_load(c->config_path, &fresh, &errs) != ORCH_OK) {
        orch_config_errors_log(&errs);
        orch_log(ORCH_LOG_ERROR, "ORCH-CONFIG", c->config_path,
                 "reload refused; the running configuration stays in effect");
        orch_config_errors_fini(&errs);
        return;
    }
    orch_config_errors_log(&errs);
    orch_config_errors_fini(&errs);
    orch_daemon_apply_reload(&coord_config_table, &c->cfg, &fresh, c->config_path);
    recovery_conf rc = recovery_conf_of(&c->cfg);
    recovery_set_conf(c->rec, &rc);
    orch_log_set_level((orch_log_level)c->cfg.log_level);
    store_set_intervals(c->st, c->cfg.write_interval_ms, c->cfg.operator_refresh_ms);
    api_auth auth = {.mode = (coord_auth_mode)c->cfg.auth_mode,
                     .user = c->cfg.auth_user,
                     .password = c->cfg.auth_password,
                     .readonly_user = c->cfg.auth_readonly_user,
                     .readonly_password = c->cfg.auth_readonly_password};
    if (api_set_auth(c->http, &auth) != ORCH_OK)
        orch_error(NULL, "cannot apply the new authentication settings");
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    coordinator *c = arg;
    orch_info(NULL, "signal %d: stopping", (int)fd);
    event_base_loopbreak(c->base);
}

/* ---- lifecycle -------------------------------------------------------------- */

static orch_db_conf backend_conf(const coord_config *cfg)
{
    return (orch_db_conf){
        .socket = cfg->backend_socket,
        .host = cfg->backend_host,
        .port = (unsigned)cfg->backend_port,
        .user = cfg->backend_user,
        .password = cfg->backend_password,
        .database = cfg->backend_database,
        .connect_timeout_s = 2,
        .rw_timeout_s = 5,
    };
}

/* http://host:port from http_listen, unless http_advertise says otherwise. */
static void advertise_url(const coord_config *cfg, char *buf, size_t len)
{
    if (cfg->http_advertise != NULL) {
        snprintf(buf, len, "%s", cfg->http_advertise);
        return;
    }
    const char *colon = strrchr(cfg->http_listen, ':');
    size_t hostlen = (size_t)(colon - cfg->http_listen);
    const char *host = cfg->http_listen;
    if (hostlen == 0 || (hostlen == 7 && strncmp(host, "0.0.0.0", 7) == 0)) {
        orch_log(ORCH_LOG_WARN, "ORCH-CONFIG", cfg->node,
                 "http_listen %s listens on every address and http_advertise is not set: other "
                 "coordinators will forward leader routes to 127.0.0.1, which works only on one "
                 "host; set http_advertise to this node's http://ADDRESS:PORT",
                 cfg->http_listen);
        host = "127.0.0.1";
        hostlen = 9;
    }
    snprintf(buf, len, "http://%.*s%s", (int)hostlen, host, colon);
}

coordinator *coordinator_new(const char *config_path, coord_config *cfg, char *msg, size_t msglen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    coordinator *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    c->config_path = strdup(config_path);
    c->started_ms = orch_mono_ms();
    orch_log_set_level((orch_log_level)c->cfg.log_level);

    c->base = event_base_new();
    c->reg = registry_new(c->started_ms);
    c->m = metrics_new();
    if (c->base == NULL || c->reg == NULL || c->m == NULL ||
        metrics_add_collector(c->m, collect, c) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* Events exist before any thread that may activate them starts. */
    c->ev_refresh = event_new(c->base, -1, EV_PERSIST, on_refresh, c);
    c->ev_notify = event_new(c->base, -1, 0, on_notify, c);
    c->ev_hup = evsignal_new(c->base, SIGHUP, on_hup, c);
    c->ev_term = evsignal_new(c->base, SIGTERM, on_stop, c);
    c->ev_int = evsignal_new(c->base, SIGINT, on_stop, c);
    if (!c->ev_refresh || !c->ev_notify || !c->ev_hup || !c->ev_term || !c->ev_int) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot set up events");
        goto fail;
    }
    orch_db_conf db = backend_conf(&c->cfg);
    /* Blocking at start only: the schema must be ready before anything runs. */
    store_conf sc = {.db = db,
                     .node = c->cfg.node,
                     .write_interval_ms = c->cfg.write_interval_ms,
                     .operator_refresh_ms = c->cfg.operator_refresh_ms,
                     .write_gate = write_gate,
                     .write_gate_arg = c};
    if ((c->st = store_start(&sc, c->base, msg, msglen)) == NULL) {
        orch_log(ORCH_LOG_ERROR, "ORCH-BACKEND-DOWN", c->cfg.backend_host,
                 "cannot start on the backend: %s (hint: check backend_host/port/user and that "
                 "the account has ALL on the %s schema)",
                 msg, c->cfg.backend_database);
        goto fail;
    }
    char url[512];
    advertise_url(&c->cfg, url, sizeof(url));
    election_conf ec = {.db = db,
                        .node = c->cfg.node,
                        .api_url = url,
                        .interval_ms = c->cfg.election_interval_ms,
                        .lease_ms = c->cfg.lease_ms,
                        .margin_ms = c->cfg.lease_margin_ms};
    if ((c->el = election_start(&ec, notify_from_election, c, msg, msglen)) == NULL)
        goto fail;

    commander_conf cc = {.node = c->cfg.node,
                         .fleet_secret = c->cfg.fleet_secret,
                         .fleet_secret_len = c->cfg.fleet_secret ? strlen(c->cfg.fleet_secret) : 0,
                         .insecure = c->cfg.fleet_secret == NULL,
                         .tls_ca = c->cfg.tls_ca,
                         .tls_cert = c->cfg.tls_cert,
                         .tls_key = c->cfg.tls_key,
                         .tls_server_name_suffix = c->cfg.tls_server_name_suffix,
                         .gate = command_gate,
                         .gate_arg = c,
                         .default_timeout_ms = c->cfg.command_timeout_ms,
                         .metrics = c->m};
    if ((c->cmd = commander_start(&cc, c->base, msg, msglen)) == NULL)
        goto fail;
    if ((c->hk = hooks_start(c->base, msg, msglen)) == NULL)
        goto fail;
    recovery_deps rd = {.base = c->base,
                        .reg = c->reg,
                        .st = c->st,
                        .el = c->el,
                        .cmd = c->cmd,
                        .hk = c->hk,
                        .m = c->m};
    recovery_conf rc = recovery_conf_of(&c->cfg);
    if ((c->rec = recovery_new(&rd, &rc, msg, msglen)) == NULL)
        goto fail;
    if ((c->ops = operations_new(&rd, c->cfg.node, c->cfg.command_timeout_ms,
                                 c->cfg.wait_gtid_timeout_ms)) == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    operations_set_stale_after_ms(c->ops, c->cfg.stale_after_ms);
    operations_set_takeover_hooks(c->ops, &c->cfg.pre_graceful_takeover,
                                  &c->cfg.post_graceful_takeover, c->cfg.hook_timeout_ms);

    if (c->cfg.tls_ca != NULL) {
        orch_tls_files files = {
            .ca = c->cfg.tls_ca, .cert = c->cfg.tls_cert, .key = c->cfg.tls_key};
        if (orch_tls_config_new(true, &files, &c->tls_server, msg, msglen) != ORCH_OK)
            goto fail;
    }
    intake_conf ic = {.url = c->cfg.report_listen,
                      .tls = c->tls_server,
                      .recv_buffer = (int)c->cfg.report_recv_buffer,
                      .fleet_secret = c->cfg.fleet_secret,
                      .boot_grace_ms = 10000,
                      .reg = c->reg,
                      .accepted = on_accepted,
                      .arg = c};
    if ((c->in = intake_start(c->base, &ic, msg, msglen)) == NULL)
        goto fail;
    api_deps deps = {.reg = c->reg,
                     .m = c->m,
                     .leader = api_leader_cb,
                     .health = api_health_cb,
                     .arg = c,
                     .stale_after_ms = c->cfg.stale_after_ms,
                     .recovery_block_s = c->cfg.recovery_block_seconds,
                     .rec = c->rec,
                     .ops = c->ops,
                     .st = c->st};
    api_auth auth = {.mode = (coord_auth_mode)c->cfg.auth_mode,
                     .user = c->cfg.auth_user,
                     .password = c->cfg.auth_password,
                     .readonly_user = c->cfg.auth_readonly_user,
                     .readonly_password = c->cfg.auth_readonly_password};
    if ((c->http = api_start(c->base, c->cfg.http_listen, &deps, &auth, msg, msglen)) == NULL)
        goto fail;

    struct timeval tv = {.tv_sec = 0, .tv_usec = REFRESH_MS * 1000};
    if (event_add(c->ev_refresh, &tv) || event_add(c->ev_hup, NULL) ||
        event_add(c->ev_term, NULL) || event_add(c->ev_int, NULL)) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot set up events");
        goto fail;
    }
    return c;
fail:
    coordinator_free(c);
    return NULL;
}

int coordinator_run(coordinator *c)
{
    orch_log(ORCH_LOG_NOTICE, "ORCH-COORDINATOR-START", c->cfg.node,
             "orch-coordinator %s: reports on %s, API on %s (port %u), backend %s:%lld/%s%s",
             ORCH_VERSION, c->cfg.report_listen, c->cfg.http_listen, (unsigned)api_port(c->http),
             c->cfg.backend_socket ? c->cfg.backend_socket : c->cfg.backend_host,
             (long long)c->cfg.backend_port, c->cfg.backend_database,
             c->cfg.fleet_secret ? "" : " (INSECURE: no fleet secret)");
    event_base_dispatch(c->base);
    return ORCH_EXIT_OK;
}

void coordinator_free(coordinator *c)
{
    if (c == NULL)
        return;
    /* Stop the producers first: nothing may call back into a freed loop. */
    api_stop(c->http);
    intake_stop(c->in);
    /* Commands in flight are answered CLOSED, hooks as failed; the objects
     * stay until recoveries and operations are gone, since the callbacks
     * delivered below may still try them (and are refused). */
    commander_halt(c->cmd);
    hooks_halt(c->hk);
    election_stop(c->el); /* no leadership from here on: the store writes no more */
    store_stop(c->st);
    election_free(c->el); /* after the store, whose write gate still asks it */
    recovery_free(c->rec);
    operations_free(c->ops);
    commander_stop(c->cmd);
    hooks_stop(c->hk);
    if (c->tls_server)
        nng_tls_config_free(c->tls_server);
    struct event *evs[] = {c->ev_refresh, c->ev_notify, c->ev_hup, c->ev_term, c->ev_int};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i] != NULL)
            event_free(evs[i]);
    }
    registry_free(c->reg);
    metrics_free(c->m);
    if (c->base != NULL)
        event_base_free(c->base);
    election_status_fini(&c->es);
    free(c->nodes);
    coord_config_fini(&c->cfg);
    free(c->config_path);
    free(c);
}
