/*
 * agent.c: orch-agent's threads, reports and command handling (see agent.h).
 *
 * Reports are whole snapshots: the loop publishes one whenever the server's
 * shape changes (state, roles, threads, errors, witness verdicts, fencing:
 * everything but counters such as positions and lag values), and at least every
 * report_interval_ms as a heartbeat. Losing one loses nothing.
 *
 * Commands follow one path: open and authenticate the envelope (our key, our
 * host), decode, apply the epoch rule under fence_mu (a new epoch is written to
 * the state file before anything is done), execute, wait briefly for a fresh
 * probe, and answer with the result and the instance's state afterwards.
 */
#include "agent.h"

#include "clock.h"
#include "commands.h"
#include "daemon.h"
#include "fence.h"
#include "log.h"
#include "probe.h"
#include "report.h"
#include "transport.h"
#include "version.h"
#include "witness.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define MAX_WORKERS      64
#define MAX_COORDINATORS 64
#define TICK_MS          50
#define REJECT_LOG_MS    60000

/* What goes into every report besides the probe: rebuilt at start and reload. */
typedef struct report_ident {
    char *host;
    char **aliases;
    size_t naliases;
    int promotion_rule;
    char *data_center, *region, *environment;
    char *command_advertise;
    uint32_t port;
} report_ident;

#define MAX_WITNESS 16

/* One master this server replicates from, and what the last check saw. */
typedef struct witness_entry {
    char host[256];
    uint16_t port;
    bool checked;
    orch_witness verdict;
    int elapsed_ms;
    char error[200];
    int64_t last_wanted_ms; /* the probe still sees this master (else forgotten) */
} witness_entry;

typedef struct worker {
    struct agent *a;
    pthread_t thread;
    bool started;
} worker;

struct agent {
    char *config_path;
    agent_config cfg; /* loop thread */
    orch_hmac_key key;
    uint8_t boot_id[ORCH_BOOT_ID_LEN];

    struct event_base *base;
    struct event *ev_tick, *ev_probe_done, *ev_hup, *ev_term, *ev_int;

    nng_socket pub, rep;
    bool pub_open, rep_open;
    nng_dialer dialers[MAX_COORDINATORS];
    char *dial_urls[MAX_COORDINATORS];
    size_t ndialers;
    nng_tls_config *tls_client, *tls_server;

    worker workers[MAX_WORKERS];
    size_t nworkers;
    pthread_t probe_thread;
    bool probe_started;

    /* Everything below up to fence_mu is guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t probe_cv, result_cv;
    bool stopping, probe_now;
    orch_probe_result latest;
    bool have_latest;
    uint64_t result_gen;
    bool in_flight;
    int64_t probe_started_ms;
    int64_t probe_interval_ms, probe_timeout_ms, witness_timeout_ms, isolation_timeout_ms;
    bool fence_when_isolated;
    bool self_fenced;
    report_ident ident;

    /* The fencing token and its file. */
    pthread_mutex_t fence_mu;
    fence_state fence;

    /* Witness verdicts by master "host:port", kept by the witness thread (under
     * witness_mu) and attached by the probe thread to each result, so that a
     * probe never waits for a hung master's greeting. */
    pthread_t witness_thread;
    bool witness_started;
    pthread_mutex_t witness_mu;
    pthread_cond_t witness_cv;
    witness_entry witnesses[MAX_WITNESS];
    size_t nwitness;

    /* Probe thread only. */
    bool fence_applied;
    uint64_t watched_generation;

    /* The probe connection's socket, dup'd and handed to the loop (under mu):
     * the loop watches it for the server closing it (EV_CLOSED) and probes at
     * once, so a crashed server is reported DOWN in milliseconds rather than at
     * the next probe. watch_fd_new is -1 for "stop watching", -2 for "no change". */
    int watch_fd_new;
    int watch_fd; /* loop thread: the fd being watched, -1 none */
    struct event *ev_watch, *ev_watch_change;

    orch_db_conf dbconf;        /* strings owned by cfg (not reloadable) */
    cmd_credentials cred;       /* likewise */
    atomic_llong last_heard_ms; /* last authenticated command from a coordinator */
    atomic_ullong seq;
    atomic_ullong obeyed_epoch;
    atomic_bool fenced;

    /* Loop thread only. */
    uint64_t last_fp;
    int64_t last_report_ms;
    Orch__ProbeState last_state;
    uint64_t reports_sent, reports_failed;

    /* Command counters (workers; atomics). */
    atomic_ullong cmd_ok, cmd_rejected;
    pthread_mutex_t reject_log_mu;
    orch_ratelimit reject_log;
};

/* ---- identity --------------------------------------------------------------- */

static void ident_fini(report_ident *id)
{
    free(id->host);
    for (size_t i = 0; i < id->naliases; i++)
        free(id->aliases[i]);
    free(id->aliases);
    free(id->data_center);
    free(id->region);
    free(id->environment);
    free(id->command_advertise);
    memset(id, 0, sizeof(*id));
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void add_alias(report_ident *id, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return;
    for (size_t i = 0; i < id->naliases; i++) {
        if (strcasecmp(id->aliases[i], name) == 0)
            return;
    }
    char **v = realloc(id->aliases, (id->naliases + 1) * sizeof(*v));
    if (v == NULL)
        return;
    id->aliases = v;
    if ((v[id->naliases] = strdup(name)) != NULL)
        id->naliases++;
}

/*
 * The names and addresses this host answers to: its identity, its host name,
 * every non-link-local interface address, and the configured aliases. Replicas
 * name their master by any of these in Master_Host; the coordinator resolves
 * them without DNS.
 */
static void collect_aliases(report_ident *id, const agent_config *cfg)
{
    char name[256];
    add_alias(id, cfg->host);
    if (gethostname(name, sizeof(name)) == 0) {
        name[sizeof(name) - 1] = '\0';
        add_alias(id, name);
    }
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
            char buf[INET6_ADDRSTRLEN];
            if (i->ifa_addr == NULL)
                continue;
            if (i->ifa_addr->sa_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
                          sizeof(buf));
                add_alias(id, buf);
            } else if (i->ifa_addr->sa_family == AF_INET6) {
                struct in6_addr *a6 = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
                if (IN6_IS_ADDR_LINKLOCAL(a6))
                    continue;
                inet_ntop(AF_INET6, a6, buf, sizeof(buf));
                add_alias(id, buf);
            }
        }
        freeifaddrs(ifs);
    }
    for (size_t i = 0; i < cfg->aliases.n; i++)
        add_alias(id, cfg->aliases.v[i]);
}

/* command_advertise, or command_listen with a wildcard host replaced by ours. */
static char *advertise_url(const agent_config *cfg)
{
    if (cfg->command_advertise != NULL)
        return strdup(cfg->command_advertise);
    const char *url = cfg->command_listen;
    const char *hostpart = strstr(url, "://");
    hostpart = hostpart ? hostpart + 3 : url;
    const char *colon = strrchr(hostpart, ':');
    size_t hostlen = colon ? (size_t)(colon - hostpart) : strlen(hostpart);
    bool wildcard = hostlen == 0 || (hostlen == 7 && strncmp(hostpart, "0.0.0.0", 7) == 0) ||
                    (hostlen == 4 && strncmp(hostpart, "[::]", 4) == 0) ||
                    (hostlen == 1 && hostpart[0] == '*');
    if (!wildcard)
        return strdup(url);
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(hostpart - url), url, cfg->host,
             colon ? colon : "");
    return strdup(buf);
}

static void ident_build(report_ident *id, const agent_config *cfg)
{
    memset(id, 0, sizeof(*id));
    id->host = dup_opt(cfg->host);
    collect_aliases(id, cfg);
    id->promotion_rule = cfg->promotion_rule;
    id->data_center = dup_opt(cfg->data_center);
    id->region = dup_opt(cfg->region);
    id->environment = dup_opt(cfg->environment);
    id->command_advertise = advertise_url(cfg);
    id->port = (uint32_t)cfg->mysql_port;
}

/* ---- reports ---------------------------------------------------------------- */

static Orch__PromotionRule promotion_of(int rule)
{
    switch (rule) {
    case AGENT_PROMOTION_PREFER:
        return ORCH__PROMOTION_RULE__PROMOTION_PREFER;
    case AGENT_PROMOTION_PREFER_NOT:
        return ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT;
    case AGENT_PROMOTION_MUST_NOT:
        return ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT;
    default:
        return ORCH__PROMOTION_RULE__PROMOTION_NEUTRAL;
    }
}

/* True when the probe thread has been at it longer than the deadline. Under mu. */
static bool probe_stuck_locked(const agent *a, int64_t now)
{
    return a->in_flight && now - a->probe_started_ms > a->probe_timeout_ms;
}

/*
 * Fills *r with the current report, borrowing everything (from the agent, the
 * latest probe result and stuck_msg, which must outlive r). Under mu. When the
 * probe is stuck the report says UNRESPONSIVE. Sequence and send time are set
 * by the caller just before packing.
 */
static void fill_report_locked(agent *a, Orch__InstanceReport *r, char *stuck_msg, size_t len)
{
    int64_t now = orch_mono_ms();
    bool stuck = probe_stuck_locked(a, now);
    const orch_probe_result *res = &a->latest;

    orch__instance_report__init(r);
    r->protocol_version = ORCH_PROTOCOL_VERSION;
    r->boot_id.data = a->boot_id;
    r->boot_id.len = sizeof(a->boot_id);
    r->host = a->ident.host;
    r->port = a->ident.port;
    r->aliases = a->ident.aliases;
    r->n_aliases = a->ident.naliases;
    r->has_promotion_rule = true;
    r->promotion_rule = promotion_of(a->ident.promotion_rule);
    r->data_center = a->ident.data_center;
    r->region = a->ident.region;
    r->environment = a->ident.environment;
    r->command_listen = a->ident.command_advertise;
    r->agent_version = (char *)ORCH_VERSION;
    r->has_obeyed_epoch = true;
    r->obeyed_epoch = atomic_load(&a->obeyed_epoch);
    r->has_fenced = true;
    r->fenced = atomic_load(&a->fenced);
    r->has_self_fenced = true;
    r->self_fenced = a->self_fenced;
    if (stuck) {
        r->state = ORCH__PROBE_STATE__PROBE_UNRESPONSIVE;
        /* stable text: the report's shape must not change while it stays stuck */
        snprintf(stuck_msg, len, "no answer from the local server within %lld ms",
                 (long long)a->probe_timeout_ms);
        r->probe_error = stuck_msg;
    } else if (!a->have_latest) {
        r->state = ORCH__PROBE_STATE__PROBE_UNKNOWN;
        r->probe_error = (char *)"first probe not finished";
    } else {
        r->state = res->state;
        r->probe_error = res->error[0] ? (char *)res->error : NULL;
        r->has_probe_us = true;
        r->probe_us = res->probe_us;
        r->server = res->server;
        r->channels = res->channels;
        r->n_channels = res->nchannels;
        r->replicas = res->replicas;
        r->n_replicas = res->nreplicas;
        r->problems = res->problems;
        r->n_problems = res->nproblems;
    }
}

/* Serializes the current report into a new buffer. Under mu. */
static orch_err pack_report_locked(agent *a, uint8_t **out, size_t *outlen)
{
    Orch__InstanceReport r;
    char stuck_msg[128];
    fill_report_locked(a, &r, stuck_msg, sizeof(stuck_msg));
    r.seq = atomic_fetch_add(&a->seq, 1) + 1;
    r.sent_at_ms = orch_wall_ms();
    return orch_wire_pack(&r.base, out, outlen);
}

/* Publishes the current report when it changed or a heartbeat is due. Loop thread. */
static void maybe_publish(agent *a, bool force)
{
    int64_t now = orch_mono_ms();
    uint8_t *body = NULL, *env = NULL;
    size_t body_len = 0, env_len = 0;

    pthread_mutex_lock(&a->mu);
    Orch__InstanceReport shape;
    char stuck_msg[128];
    fill_report_locked(a, &shape, stuck_msg, sizeof(stuck_msg));
    uint64_t fp = orch_report_fingerprint(&shape);
    bool due = now - a->last_report_ms >= a->cfg.report_interval_ms;
    Orch__ProbeState state = shape.state;
    char error[sizeof(a->latest.error)];
    snprintf(error, sizeof(error), "%s", shape.probe_error ? shape.probe_error : "");
    if (!force && !due && fp == a->last_fp) {
        pthread_mutex_unlock(&a->mu);
        return;
    }
    orch_err err = pack_report_locked(a, &body, &body_len);
    pthread_mutex_unlock(&a->mu);

    if (state != a->last_state) {
        char obj[300];
        snprintf(obj, sizeof(obj), "%s:%u", a->cfg.host, (unsigned)a->cfg.mysql_port);
        orch_log(state == ORCH__PROBE_STATE__PROBE_UP ? ORCH_LOG_NOTICE : ORCH_LOG_WARN,
                 "ORCH-SERVER-STATE", obj, "%s -> %s%s%s", orch_probe_state_name(a->last_state),
                 orch_probe_state_name(state), error[0] ? ": " : "", error);
        a->last_state = state;
    }
    if (err == ORCH_OK)
        err = orch_wire_seal(ORCH__ENVELOPE__KIND__REPORT, a->cfg.host, &a->key, body, body_len,
                             &env, &env_len);
    free(body);
    if (err != ORCH_OK) {
        a->reports_failed++;
        orch_error(NULL, "cannot build a report: %s", orch_strerror(err));
        return;
    }
    int rv = nng_send(a->pub, env, env_len, NNG_FLAG_NONBLOCK);
    free(env);
    if (rv != 0 && rv != NNG_EAGAIN) {
        a->reports_failed++;
        orch_warn(NULL, "report not sent: %s", nng_strerror(rv));
        return;
    }
    a->reports_sent++;
    a->last_fp = fp;
    a->last_report_ms = now;
}

/* ---- probe thread ----------------------------------------------------------- */

static void object_name(const agent *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%u", a->cfg.host, (unsigned)a->cfg.mysql_port);
}

/*
 * A recorded fence is applied whenever the server answers and has not been
 * fenced since it (re)appeared, or is seen writable again: an old primary that
 * resumes after SIGSTOP is fenced at its first answer. Self-fencing (opt-in)
 * sets a writable primary that nobody can reach read-only. Returns true when
 * something was changed (the caller probes again at once).
 */
static bool enforce_fences(agent *a, const orch_probe_result *res)
{
    char obj[300], msg[400];
    object_name(a, obj, sizeof(obj));
    if (res->state != ORCH__PROBE_STATE__PROBE_UP || res->server == NULL) {
        a->fence_applied = false;
        return false;
    }
    bool fenced = atomic_load(&a->fenced);
    bool writable = !res->server->read_only;
    pthread_mutex_lock(&a->mu);
    bool isolate = a->fence_when_isolated && !a->self_fenced;
    int64_t isolation_ms = a->isolation_timeout_ms;
    pthread_mutex_unlock(&a->mu);
    int64_t silent = orch_mono_ms() - atomic_load(&a->last_heard_ms);
    bool self_fence = !fenced && isolate && writable && res->nchannels == 0 &&
                      res->nreplicas == 0 && silent > isolation_ms;
    if (!(fenced && (!a->fence_applied || writable)) && !self_fence)
        return false;

    MYSQL *db = NULL;
    orch_db_failure failure;
    if (orch_db_connect(&a->dbconf, &db, &failure, msg, sizeof(msg)) != ORCH_OK) {
        orch_warn(obj, "cannot connect to apply a fence: %s", msg);
        return false;
    }
    bool changed = false;
    if (fenced) {
        int killed = 0;
        if (cmd_fence(db, &res->version, &killed, msg, sizeof(msg)) == ORCH_OK) {
            orch_log(ORCH_LOG_NOTICE, "ORCH-FENCED", obj,
                     "read_only set and %d client connections killed (fence of epoch %llu)", killed,
                     (unsigned long long)a->fence.fence_epoch);
            a->fence_applied = true;
            changed = true;
        } else {
            orch_log(ORCH_LOG_ERROR, "ORCH-FENCE-FAILED", obj,
                     "%s; will retry at the next probe (hint: check the agent account's "
                     "READ_ONLY ADMIN and CONNECTION ADMIN privileges)",
                     msg);
        }
    } else if (self_fence) {
        if (cmd_set_read_only(db, &res->version, true, true, msg, sizeof(msg)) == ORCH_OK) {
            pthread_mutex_lock(&a->mu);
            a->self_fenced = true;
            pthread_mutex_unlock(&a->mu);
            orch_log(ORCH_LOG_WARN, "ORCH-SELF-FENCED", obj,
                     "no coordinator heard for %lld ms and no replica connected: set read_only "
                     "(an orch leader clears it with set-writeable once reachable)",
                     (long long)silent);
            changed = true;
        } else {
            orch_log(ORCH_LOG_ERROR, "ORCH-FENCE-FAILED", obj, "self-fence failed: %s", msg);
        }
    }
    mysql_close(db);
    return changed;
}

static void timespec_at_mono(struct timespec *ts, int64_t mono_ms)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/*
 * Attaches the newest witness verdicts to res's channels and registers the
 * masters they name for the witness thread. Probe thread; never blocks on a
 * master.
 */
static void attach_witness(agent *a, orch_probe_result *res)
{
    int64_t now = orch_mono_ms();
    bool wake = false;
    pthread_mutex_lock(&a->witness_mu);
    for (size_t i = 0; i < res->nchannels; i++) {
        Orch__Channel *c = res->channels[i];
        if (c->master_host == NULL || c->master_host[0] == '\0' || !c->has_master_port)
            continue;
        witness_entry *w = NULL;
        for (size_t k = 0; k < a->nwitness && w == NULL; k++) {
            if (a->witnesses[k].port == c->master_port &&
                strcmp(a->witnesses[k].host, c->master_host) == 0)
                w = &a->witnesses[k];
        }
        if (w == NULL && a->nwitness < MAX_WITNESS) {
            w = &a->witnesses[a->nwitness++];
            memset(w, 0, sizeof(*w));
            snprintf(w->host, sizeof(w->host), "%s", c->master_host);
            w->port = (uint16_t)c->master_port;
            wake = true; /* a new master: check it now */
        }
        if (w == NULL)
            continue;
        w->last_wanted_ms = now;
        if (!w->checked)
            continue;
        c->has_witness = true;
        c->witness = (Orch__WitnessResult)w->verdict;
        c->has_witness_ms = true;
        c->witness_ms = (uint32_t)w->elapsed_ms;
        free(c->witness_error);
        c->witness_error = w->verdict == ORCH_WITNESS_GREETING ? NULL : strdup(w->error);
    }
    if (wake)
        pthread_cond_signal(&a->witness_cv);
    pthread_mutex_unlock(&a->witness_mu);
}

/*
 * The witness thread: checks every master a channel names, every probe
 * interval (each check bounded by witness_timeout_ms), and forgets masters no
 * channel has named for a while. A changed verdict asks for a probe at once, so
 * that it is reported without waiting for the next interval.
 */
static void *witness_main(void *arg)
{
    agent *a = arg;
    pthread_mutex_lock(&a->witness_mu);
    for (;;) {
        pthread_mutex_lock(&a->mu);
        bool stop = a->stopping;
        int64_t interval = a->probe_interval_ms, timeout = a->witness_timeout_ms;
        pthread_mutex_unlock(&a->mu);
        if (stop)
            break;
        int64_t now = orch_mono_ms();
        for (size_t k = 0; k < a->nwitness;) {
            if (now - a->witnesses[k].last_wanted_ms > 10 * interval + 5000)
                a->witnesses[k] = a->witnesses[--a->nwitness];
            else
                k++;
        }
        for (size_t k = 0; k < a->nwitness; k++) {
            witness_entry copy = a->witnesses[k];
            pthread_mutex_unlock(&a->witness_mu);
            char msg[200];
            int elapsed = 0;
            orch_witness v =
                orch_witness_check(copy.host, copy.port, (int)timeout, &elapsed, msg, sizeof(msg));
            pthread_mutex_lock(&a->witness_mu);
            for (size_t j = 0; j < a->nwitness; j++) { /* the table may have changed */
                witness_entry *w = &a->witnesses[j];
                if (w->port != copy.port || strcmp(w->host, copy.host) != 0)
                    continue;
                bool changed = !w->checked || w->verdict != v;
                w->checked = true;
                w->verdict = v;
                w->elapsed_ms = elapsed;
                snprintf(w->error, sizeof(w->error), "%s", msg);
                if (changed) {
                    pthread_mutex_lock(&a->mu);
                    a->probe_now = true;
                    pthread_cond_signal(&a->probe_cv);
                    pthread_mutex_unlock(&a->mu);
                }
            }
        }
        /* a stop broadcast while the checks ran (witness_mu released) is not
         * waited for again: look before sleeping */
        pthread_mutex_lock(&a->mu);
        stop = a->stopping;
        pthread_mutex_unlock(&a->mu);
        if (stop)
            break;
        struct timespec ts;
        timespec_at_mono(&ts, orch_mono_ms() + interval);
        pthread_cond_timedwait(&a->witness_cv, &a->witness_mu, &ts);
    }
    pthread_mutex_unlock(&a->witness_mu);
    return NULL;
}

static void *probe_main(void *arg)
{
    agent *a = arg;
    orch_probe *p = orch_probe_new(&a->dbconf);
    if (p == NULL) {
        orch_error(NULL, "probe: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&a->mu);
    while (!a->stopping) {
        int64_t started = orch_mono_ms();
        a->in_flight = true;
        a->probe_started_ms = started;
        pthread_mutex_unlock(&a->mu);

        orch_probe_result res;
        bool again = false;
        orch_err perr = orch_probe_run(p, &res);
        /* The deadline is the local server's: the witness checks that follow may
         * legitimately take witness_timeout_ms when the master is hung. */
        pthread_mutex_lock(&a->mu);
        a->in_flight = false;
        pthread_mutex_unlock(&a->mu);
        if (perr == ORCH_OK) {
            if (res.state == ORCH__PROBE_STATE__PROBE_UP)
                attach_witness(a, &res);
            again = enforce_fences(a, &res);
        } else {
            orch_probe_result_fini(&res); /* what the probe built before it ran out */
            res.state = ORCH__PROBE_STATE__PROBE_UNKNOWN;
            snprintf(res.error, sizeof(res.error), "probe failed: out of memory");
        }

        int fd;
        uint64_t gen;
        orch_probe_connection(p, &fd, &gen);
        int handoff = -2;
        if (fd < 0 && a->watched_generation != 0) {
            handoff = -1; /* disconnected: stop watching */
            a->watched_generation = 0;
        } else if (fd >= 0 && gen != a->watched_generation) {
            handoff = fcntl(fd, F_DUPFD_CLOEXEC, 0);
            a->watched_generation = handoff >= 0 ? gen : 0;
        }

        pthread_mutex_lock(&a->mu);
        if (handoff != -2) {
            if (a->watch_fd_new >= 0)
                close(a->watch_fd_new); /* the loop never took it */
            a->watch_fd_new = handoff;
            event_active(a->ev_watch_change, EV_READ, 0);
        }
        orch_probe_result_fini(&a->latest);
        a->latest = res;
        a->have_latest = true;
        a->result_gen++;
        pthread_cond_broadcast(&a->result_cv);
        event_active(a->ev_probe_done, EV_READ, 0);
        int64_t due = started + a->probe_interval_ms;
        while (!a->stopping && !a->probe_now && !again && orch_mono_ms() < due) {
            struct timespec ts;
            timespec_at_mono(&ts, due);
            pthread_cond_timedwait(&a->probe_cv, &a->mu, &ts);
        }
        a->probe_now = false;
    }
    pthread_mutex_unlock(&a->mu);
    orch_probe_free(p);
    mysql_thread_end();
    return NULL;
}

/* ---- commands --------------------------------------------------------------- */

static void log_rejected(agent *a, const char *why)
{
    atomic_fetch_add(&a->cmd_rejected, 1);
    uint64_t dropped = 0;
    pthread_mutex_lock(&a->reject_log_mu);
    bool ok = orch_ratelimit_allow(&a->reject_log, orch_mono_ms(), REJECT_LOG_MS, &dropped);
    pthread_mutex_unlock(&a->reject_log_mu);
    if (ok)
        orch_log(ORCH_LOG_WARN, "ORCH-CMD-REJECTED", NULL, "%s (%llu similar not logged)", why,
                 (unsigned long long)dropped);
}

/*
 * Triggers a probe and waits for one that started after the command ran; packs
 * its report. The wait covers a probe and the witness checks that follow it
 * (a hung master costs witness_timeout_ms). NULL when no fresh probe finished
 * in time: a leader must never mistake the state before a command for the
 * state after it (it reads received GTID sets from it).
 */
static Orch__InstanceReport *fresh_state(agent *a)
{
    uint8_t *body = NULL;
    size_t len = 0;
    pthread_mutex_lock(&a->mu);
    if (probe_stuck_locked(a, orch_mono_ms())) {
        /* the local server does not answer: that is the state, say it now */
        orch_err err = pack_report_locked(a, &body, &len);
        pthread_mutex_unlock(&a->mu);
        if (err != ORCH_OK)
            return NULL;
        Orch__InstanceReport *r = orch__instance_report__unpack(NULL, len, body);
        free(body);
        return r;
    }
    /* a probe already running may have started before the command: wait for the next */
    uint64_t want = a->result_gen + (a->in_flight ? 2 : 1);
    int64_t deadline = orch_mono_ms() + a->probe_timeout_ms + 200;
    a->probe_now = true;
    pthread_cond_signal(&a->probe_cv);
    while (!a->stopping && a->result_gen < want && orch_mono_ms() < deadline) {
        struct timespec ts;
        timespec_at_mono(&ts, deadline);
        pthread_cond_timedwait(&a->result_cv, &a->mu, &ts);
        if (a->result_gen + 1 == want && !a->in_flight) {
            a->probe_now = true; /* the one running finished; ask for ours */
            pthread_cond_signal(&a->probe_cv);
        }
    }
    bool fresh = a->result_gen >= want;
    orch_err err = fresh ? pack_report_locked(a, &body, &len) : ORCH_ERR_TIMEOUT;
    pthread_mutex_unlock(&a->mu);
    if (err != ORCH_OK)
        return NULL;
    Orch__InstanceReport *r = orch__instance_report__unpack(NULL, len, body);
    free(body);
    return r;
}

/* Worker connection: opened on demand, dropped after a connection-level error. */
typedef struct worker_db {
    MYSQL *db;
    orch_version version;
} worker_db;

static orch_err worker_connect(agent *a, worker_db *w, int rw_timeout_s, MYSQL **out, char *msg,
                               size_t msglen)
{
    orch_db_conf conf = a->dbconf;
    conf.rw_timeout_s = rw_timeout_s;
    orch_db_failure failure;
    MYSQL *db = NULL;
    orch_err err = orch_db_connect(&conf, &db, &failure, msg, msglen);
    if (err != ORCH_OK)
        return err;
    char version[128] = "", comment[128] = "";
    if (orch_db_query_value(db, "SELECT @@version", version, sizeof(version), NULL, NULL, msg,
                            msglen) != ORCH_OK ||
        orch_db_query_value(db, "SELECT @@version_comment", comment, sizeof(comment), NULL, NULL,
                            msg, msglen) != ORCH_OK ||
        orch_version_parse(version, comment, &w->version, msg, msglen) != ORCH_OK) {
        mysql_close(db);
        return ORCH_ERR_MYSQL;
    }
    *out = db;
    return ORCH_OK;
}

/* Persists and accepts per the epoch rule; fills reply on refusal. Returns true to run. */
static bool admit(agent *a, const Orch__Command *c, Orch__CommandReply *reply, char *err,
                  size_t errlen)
{
    char msg[400];
    bool ok = false;
    pthread_mutex_lock(&a->fence_mu);
    fence_verdict v = fence_check(&a->fence, c->epoch, c->command_id);
    switch (v) {
    case FENCE_STALE_EPOCH:
        reply->result = ORCH__COMMAND_RESULT__RESULT_STALE_EPOCH;
        snprintf(err, errlen,
                 "epoch %llu is below %llu, the highest this agent has obeyed: "
                 "the sender is no longer the leader",
                 (unsigned long long)c->epoch, (unsigned long long)a->fence.epoch);
        break;
    case FENCE_REPLAY:
        reply->result = ORCH__COMMAND_RESULT__RESULT_REPLAY;
        snprintf(err, errlen, "command %llu of epoch %llu was already executed",
                 (unsigned long long)c->command_id, (unsigned long long)c->epoch);
        break;
    case FENCE_ACCEPT_NEW_EPOCH: {
        /* The state file stores epochs as JSON integers (signed 64-bit); an epoch
         * beyond that could be obeyed once and never read back, locking every
         * later leader out. Epochs grow by one per leader change: refuse. */
        if (c->epoch > (uint64_t)INT64_MAX) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
            snprintf(err, errlen, "epoch %llu is beyond any real leader's",
                     (unsigned long long)c->epoch);
            break;
        }
        fence_state next = a->fence;
        next.epoch = c->epoch;
        if (fence_state_save(a->cfg.state_file, &next, msg, sizeof(msg)) != ORCH_OK) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_FAILED;
            snprintf(err, errlen, "cannot record epoch %llu: %s", (unsigned long long)c->epoch,
                     msg);
            break;
        }
        orch_log(ORCH_LOG_NOTICE, "ORCH-NEW-EPOCH", NULL, "obeying leader %s at epoch %llu",
                 c->leader ? c->leader : "?", (unsigned long long)c->epoch);
        fence_accept(&a->fence, c->epoch, c->command_id);
        atomic_store(&a->obeyed_epoch, a->fence.epoch);
        ok = true;
        break;
    }
    case FENCE_ACCEPT:
        fence_accept(&a->fence, c->epoch, c->command_id);
        ok = true;
        break;
    }
    reply->has_obeyed_epoch = true;
    reply->obeyed_epoch = a->fence.epoch;
    pthread_mutex_unlock(&a->fence_mu);
    return ok;
}

/* Records (fenced = on) or lifts the fence in the state file. */
static orch_err set_fenced(agent *a, bool on, uint64_t epoch, char *msg, size_t msglen)
{
    pthread_mutex_lock(&a->fence_mu);
    fence_state next = a->fence;
    if (!on && !next.fenced) {
        pthread_mutex_unlock(&a->fence_mu);
        return ORCH_OK;
    }
    next.fenced = on;
    next.fence_epoch = epoch;
    orch_err err = fence_state_save(a->cfg.state_file, &next, msg, msglen);
    if (err == ORCH_OK) {
        a->fence.fenced = on;
        a->fence.fence_epoch = epoch;
        atomic_store(&a->fenced, on);
    }
    pthread_mutex_unlock(&a->fence_mu);
    return err;
}

static void execute(agent *a, worker_db *w, const Orch__Command *c, Orch__CommandReply *reply,
                    char *err, size_t errlen)
{
    char msg[400];
    char obj[300];
    object_name(a, obj, sizeof(obj));
    reply->result = ORCH__COMMAND_RESULT__RESULT_OK;

    switch (c->type) {
    case ORCH__COMMAND_TYPE__CMD_PING:
    case ORCH__COMMAND_TYPE__CMD_REPORT_NOW:
        return;
    case ORCH__COMMAND_TYPE__CMD_FENCE: {
        if (set_fenced(a, true, c->epoch, msg, sizeof(msg)) != ORCH_OK) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_FAILED;
            snprintf(err, errlen, "cannot record the fence: %s", msg);
            return;
        }
        int killed = 0;
        pthread_mutex_lock(&a->mu);
        bool answers = !probe_stuck_locked(a, orch_mono_ms()) && a->have_latest &&
                       a->latest.state == ORCH__PROBE_STATE__PROBE_UP;
        pthread_mutex_unlock(&a->mu);
        if (!answers) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_DEFERRED;
            snprintf(err, errlen,
                     "fence recorded; the server does not answer, it will be "
                     "fenced the moment it does");
            orch_log(ORCH_LOG_NOTICE, "ORCH-FENCE-RECORDED", obj, "%s", err);
            return;
        }
        if (w->db == NULL && worker_connect(a, w, 10, &w->db, msg, sizeof(msg)) != ORCH_OK) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_DEFERRED;
            snprintf(err, errlen,
                     "fence recorded; the server does not answer (%s), it will be "
                     "fenced the moment it does",
                     msg);
            orch_log(ORCH_LOG_NOTICE, "ORCH-FENCE-RECORDED", obj, "%s", err);
            return;
        }
        if (cmd_fence(w->db, &w->version, &killed, msg, sizeof(msg)) != ORCH_OK) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_DEFERRED;
            snprintf(err, errlen,
                     "fence recorded; applying it failed (%s), retrying at every "
                     "probe",
                     msg);
            mysql_close(w->db);
            w->db = NULL;
            return;
        }
        orch_log(ORCH_LOG_NOTICE, "ORCH-FENCED", obj,
                 "read_only set and %d client connections killed (epoch %llu)", killed,
                 (unsigned long long)c->epoch);
        return;
    }
    default:
        break;
    }

    MYSQL *db = NULL;
    bool own = false;
    int rw = 10;
    if (c->type == ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID) {
        if (!c->has_timeout_ms || c->timeout_ms > 3600000) {
            reply->result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
            snprintf(err, errlen, "WaitForGtid needs timeout_ms <= 3600000");
            return;
        }
        rw = (int)(c->timeout_ms / 1000) + 5;
        own = true;
    }
    if (own) {
        if (worker_connect(a, w, rw, &db, msg, sizeof(msg)) != ORCH_OK)
            db = NULL;
    } else {
        /* The kept connection may have been killed meanwhile (a fence kills
         * every client but its own, this worker's included): check it first. */
        if (w->db != NULL && mysql_ping(w->db) != 0) {
            mysql_close(w->db);
            w->db = NULL;
        }
        if (w->db == NULL && worker_connect(a, w, rw, &w->db, msg, sizeof(msg)) != ORCH_OK)
            w->db = NULL;
        db = w->db;
    }
    if (db == NULL) {
        reply->result = ORCH__COMMAND_RESULT__RESULT_FAILED;
        snprintf(err, errlen, "cannot connect to the local server: %s", msg);
        return;
    }
    cmd_outcome out;
    cmd_execute(c, &w->version, &a->cred, db, &out);
    reply->result = out.result;
    snprintf(err, errlen, "%s", out.error);
    unsigned e = mysql_errno(db);
    if (own) {
        mysql_close(db);
    } else if (out.result == ORCH__COMMAND_RESULT__RESULT_FAILED && e >= 2000 && e < 3000) {
        mysql_close(w->db); /* connection-level error: reconnect next time */
        w->db = NULL;
    }
    if (out.result != ORCH__COMMAND_RESULT__RESULT_OK)
        return;
    /* A leader that makes this server a replica, or writable, lifts its fences. */
    bool lifts = c->type == ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER ||
                 (c->type == ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY && !c->read_only);
    if (lifts) {
        if (atomic_load(&a->fenced)) {
            if (set_fenced(a, false, c->epoch, msg, sizeof(msg)) == ORCH_OK)
                orch_log(ORCH_LOG_NOTICE, "ORCH-FENCE-LIFTED", obj, "by %s at epoch %llu",
                         cmd_type_name(c->type), (unsigned long long)c->epoch);
        }
        pthread_mutex_lock(&a->mu);
        a->self_fenced = false;
        pthread_mutex_unlock(&a->mu);
    }
}

/*
 * Handles one request; returns a sealed reply in *out (malloc'd) or NULL when
 * nothing sensible can be said.
 */
static void handle_request(agent *a, worker_db *w, const uint8_t *buf, size_t len, uint8_t **out,
                           size_t *outlen)
{
    char msg[400], err[600] = "";
    int64_t start = orch_mono_us();
    Orch__Envelope *env = NULL;
    Orch__Command *c = NULL;
    Orch__CommandReply reply = ORCH__COMMAND_REPLY__INIT;
    reply.protocol_version = ORCH_PROTOCOL_VERSION;
    reply.result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
    *out = NULL;

    if (orch_wire_open(buf, len, &env, msg, sizeof(msg)) != ORCH_OK) {
        snprintf(err, sizeof(err), "malformed command: %s", msg);
        log_rejected(a, err);
        goto reply;
    }
    if (env->kind != ORCH__ENVELOPE__KIND__COMMAND) {
        snprintf(err, sizeof(err), "envelope of kind %d is not a command", (int)env->kind);
        log_rejected(a, err);
        goto reply;
    }
    if (strcmp(env->host, a->cfg.host) != 0) {
        reply.result = ORCH__COMMAND_RESULT__RESULT_NOT_FOR_ME;
        snprintf(err, sizeof(err), "command signed for host '%.200s', this is '%.200s'", env->host,
                 a->cfg.host);
        log_rejected(a, err);
        goto reply;
    }
    if (orch_wire_verify(env, &a->key) != ORCH_OK) {
        snprintf(err, sizeof(err), "command authentication failed (wrong key for host '%.200s')",
                 a->cfg.host);
        log_rejected(a, err);
        goto reply;
    }
    c = orch__command__unpack(NULL, env->body.len, env->body.data);
    if (c == NULL || c->protocol_version != ORCH_PROTOCOL_VERSION) {
        snprintf(err, sizeof(err), c ? "command of protocol version %u" : "malformed command body",
                 c ? c->protocol_version : 0);
        log_rejected(a, err);
        goto reply;
    }
    reply.command_id = c->command_id;
    reply.epoch = c->epoch;
    if (strcmp(c->target_host, a->cfg.host) != 0) {
        reply.result = ORCH__COMMAND_RESULT__RESULT_NOT_FOR_ME;
        snprintf(err, sizeof(err), "command for '%.200s' reached '%.200s'", c->target_host,
                 a->cfg.host);
        log_rejected(a, err);
        goto reply;
    }
    if (!admit(a, c, &reply, err, sizeof(err))) {
        log_rejected(a, err);
        goto reply;
    }
    atomic_store(&a->last_heard_ms, orch_mono_ms());
    execute(a, w, c, &reply, err, sizeof(err));
    if (c->type != ORCH__COMMAND_TYPE__CMD_PING)
        reply.state = fresh_state(a);
    atomic_fetch_add(&a->cmd_ok, 1);
    {
        orch_log_level lvl =
            c->type == ORCH__COMMAND_TYPE__CMD_PING || c->type == ORCH__COMMAND_TYPE__CMD_REPORT_NOW
                ? ORCH_LOG_DEBUG
                : ORCH_LOG_INFO;
        char obj[300];
        object_name(a, obj, sizeof(obj));
        orch_log(lvl, "ORCH-CMD", obj, "%s epoch=%llu id=%llu from %s: %s%s%s",
                 cmd_type_name(c->type), (unsigned long long)c->epoch,
                 (unsigned long long)c->command_id, c->leader ? c->leader : "?",
                 cmd_result_name(reply.result), err[0] ? ": " : "", err);
    }
reply:
    reply.error = err[0] ? err : NULL;
    reply.has_duration_us = true;
    reply.duration_us = (uint32_t)(orch_mono_us() - start);
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (orch_wire_pack(&reply.base, &body, &body_len) == ORCH_OK &&
        orch_wire_seal(ORCH__ENVELOPE__KIND__REPLY, a->cfg.host, &a->key, body, body_len, out,
                       outlen) != ORCH_OK)
        *out = NULL;
    free(body);
    if (reply.state != NULL)
        orch__instance_report__free_unpacked(reply.state, NULL);
    if (c != NULL)
        orch__command__free_unpacked(c, NULL);
    if (env != NULL)
        orch__envelope__free_unpacked(env, NULL);
}

/*
 * nng 1.5.2 has no nng_ctx_recvmsg: each worker drives its context with one
 * aio, synchronously. Closing the socket completes a pending receive with
 * NNG_ECLOSED, which ends the worker.
 */
static void *worker_main(void *arg)
{
    worker *wk = arg;
    agent *a = wk->a;
    worker_db w = {0};
    nng_ctx ctx;
    nng_aio *aio = NULL;
    if (nng_ctx_open(&ctx, a->rep) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0) {
        orch_error(NULL, "command worker: cannot open an nng context");
        return NULL;
    }
    for (;;) {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        int rv = nng_aio_result(aio);
        if (rv == NNG_ECLOSED)
            break;
        if (rv != 0)
            continue;
        nng_msg *m = nng_aio_get_msg(aio);
        uint8_t *out = NULL;
        size_t outlen = 0;
        handle_request(a, &w, nng_msg_body(m), nng_msg_len(m), &out, &outlen);
        nng_msg_free(m);
        if (out == NULL)
            continue;
        nng_msg *r = NULL;
        if (nng_msg_alloc(&r, 0) == 0 && nng_msg_append(r, out, outlen) == 0) {
            nng_aio_set_msg(aio, r);
            nng_ctx_send(ctx, aio);
            nng_aio_wait(aio);
            if (nng_aio_result(aio) != 0)
                nng_msg_free(r);
        } else if (r != NULL) {
            nng_msg_free(r);
        }
        free(out);
    }
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    if (w.db != NULL)
        mysql_close(w.db);
    mysql_thread_end();
    return NULL;
}

/* ---- loop ------------------------------------------------------------------- */

static void on_probe_done(evutil_socket_t fd, short what, void *arg)
{
    maybe_publish(arg, false);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    maybe_publish(arg, false);
}

static void unwatch(agent *a)
{
    if (a->ev_watch != NULL) {
        event_free(a->ev_watch);
        a->ev_watch = NULL;
    }
    if (a->watch_fd >= 0) {
        close(a->watch_fd);
        a->watch_fd = -1;
    }
}

/* The server closed the probe connection: it died or restarted. Probe now. */
static void on_conn_closed(evutil_socket_t fd, short what, void *arg)
{
    agent *a = arg;
    orch_debug(NULL, "the local server closed the probe connection: probing now");
    unwatch(a);
    pthread_mutex_lock(&a->mu);
    a->probe_now = true;
    pthread_cond_signal(&a->probe_cv);
    pthread_mutex_unlock(&a->mu);
}

/* The probe thread handed over a new connection to watch (or none). */
static void on_watch_change(evutil_socket_t fd, short what, void *arg)
{
    agent *a = arg;
    pthread_mutex_lock(&a->mu);
    int nfd = a->watch_fd_new;
    a->watch_fd_new = -2;
    pthread_mutex_unlock(&a->mu);
    if (nfd == -2)
        return;
    unwatch(a);
    if (nfd < 0)
        return;
    a->watch_fd = nfd;
    a->ev_watch = event_new(a->base, nfd, EV_CLOSED | EV_PERSIST, on_conn_closed, a);
    if (a->ev_watch == NULL || event_add(a->ev_watch, NULL) != 0)
        unwatch(a); /* no early-close support: the probe interval still applies */
}

/* Dials every configured coordinator not dialed yet; closes the ones removed. */
static void sync_dialers(agent *a)
{
    char msg[300];
    for (size_t i = 0; i < a->ndialers;) {
        bool keep = false;
        for (size_t j = 0; j < a->cfg.coordinators.n; j++)
            keep = keep || strcmp(a->dial_urls[i], a->cfg.coordinators.v[j]) == 0;
        if (keep) {
            i++;
            continue;
        }
        orch_info(NULL, "no longer reporting to %s", a->dial_urls[i]);
        nng_dialer_close(a->dialers[i]);
        free(a->dial_urls[i]);
        a->dialers[i] = a->dialers[a->ndialers - 1];
        a->dial_urls[i] = a->dial_urls[a->ndialers - 1];
        a->ndialers--;
    }
    for (size_t j = 0; j < a->cfg.coordinators.n; j++) {
        const char *url = a->cfg.coordinators.v[j];
        bool have = false;
        for (size_t i = 0; i < a->ndialers; i++)
            have = have || strcmp(a->dial_urls[i], url) == 0;
        if (have)
            continue;
        if (a->ndialers == MAX_COORDINATORS) {
            orch_error(NULL, "more than %d coordinators; ignoring %s", MAX_COORDINATORS, url);
            continue;
        }
        nng_dialer d;
        if (orch_dial(a->pub, url, a->tls_client, 100, 3000, &d, msg, sizeof(msg)) != ORCH_OK) {
            orch_error(NULL, "%s", msg);
            continue;
        }
        a->dialers[a->ndialers] = d;
        a->dial_urls[a->ndialers] = strdup(url);
        a->ndialers++;
        orch_info(NULL, "reporting to %s", url);
    }
}

static void apply_runtime_config(agent *a)
{
    orch_log_set_level((orch_log_level)a->cfg.log_level);
    pthread_mutex_lock(&a->mu);
    a->probe_interval_ms = a->cfg.probe_interval_ms;
    a->probe_timeout_ms = a->cfg.probe_timeout_ms;
    a->witness_timeout_ms = a->cfg.witness_timeout_ms;
    a->isolation_timeout_ms = a->cfg.isolation_timeout_ms;
    a->fence_when_isolated = a->cfg.fence_when_isolated;
    ident_fini(&a->ident);
    ident_build(&a->ident, &a->cfg);
    pthread_cond_signal(&a->probe_cv);
    pthread_mutex_unlock(&a->mu);
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    agent *a = arg;
    agent_config fresh = {0};
    orch_hmac_key key;
    orch_config_errors errs = {0};
    orch_info(NULL, "SIGHUP: reloading %s", a->config_path);
    if (agent_config_load(a->config_path, &fresh, &key, &errs) != ORCH_OK) {
        orch_config_errors_log(&errs);
        orch_log(ORCH_LOG_ERROR, "ORCH-CONFIG", a->config_path,
                 "reload refused; the running configuration stays in effect");
        orch_config_errors_fini(&errs);
        return;
    }
    orch_config_errors_log(&errs);
    orch_config_errors_fini(&errs);
    orch_daemon_apply_reload(&agent_config_table, &a->cfg, &fresh, a->config_path);
    apply_runtime_config(a);
    sync_dialers(a);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    agent *a = arg;
    orch_info(NULL, "signal %d: stopping", (int)fd);
    event_base_loopbreak(a->base);
}

/* ---- lifecycle -------------------------------------------------------------- */

agent *agent_new(const char *config_path, agent_config *cfg, const orch_hmac_key *key, char *msg,
                 size_t msglen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    agent *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    a->key = *key;
    a->config_path = strdup(config_path);
    a->last_state = ORCH__PROBE_STATE__PROBE_UNKNOWN;
    a->watch_fd = -1;
    a->watch_fd_new = -2;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->fence_mu, NULL);
    pthread_mutex_init(&a->reject_log_mu, NULL);
    pthread_mutex_init(&a->witness_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->probe_cv, &ca);
    pthread_cond_init(&a->result_cv, &ca);
    pthread_cond_init(&a->witness_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (getrandom(a->boot_id, sizeof(a->boot_id), 0) != sizeof(a->boot_id)) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "getrandom failed");
        goto fail;
    }
    atomic_store(&a->last_heard_ms, orch_mono_ms());

    if (fence_state_load(a->cfg.state_file, &a->fence, msg, msglen) != ORCH_OK)
        goto fail;
    /* Refuse to run if the state cannot be written: the epoch rule depends on it. */
    if (fence_state_save(a->cfg.state_file, &a->fence, msg, msglen) != ORCH_OK)
        goto fail;
    atomic_store(&a->obeyed_epoch, a->fence.epoch);
    atomic_store(&a->fenced, a->fence.fenced);
    if (a->fence.fenced)
        orch_log(ORCH_LOG_NOTICE, "ORCH-FENCE-RECORDED", NULL,
                 "this server was fenced at epoch %llu; the fence is applied when it answers",
                 (unsigned long long)a->fence.fence_epoch);

    a->dbconf = (orch_db_conf){
        .socket = a->cfg.mysql_socket,
        .host = a->cfg.mysql_host,
        .port = (unsigned)a->cfg.mysql_port,
        .user = a->cfg.mysql_user,
        .password = a->cfg.mysql_password,
        .connect_timeout_s = 1,
        .rw_timeout_s = 1,
    };
    a->cred =
        (cmd_credentials){.user = a->cfg.replication_user, .password = a->cfg.replication_password};

    if (a->cfg.tls_ca != NULL) {
        orch_tls_files files = {.ca = a->cfg.tls_ca,
                                .cert = a->cfg.tls_cert,
                                .key = a->cfg.tls_key,
                                .server_name = a->cfg.tls_server_name};
        if (orch_tls_config_new(false, &files, &a->tls_client, msg, msglen) != ORCH_OK ||
            orch_tls_config_new(true, &files, &a->tls_server, msg, msglen) != ORCH_OK)
            goto fail;
    }
    int rv;
    if ((rv = nng_pub0_open(&a->pub)) != 0 || (rv = nng_rep0_open(&a->rep)) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "nng: %s", nng_strerror(rv));
        goto fail;
    }
    a->pub_open = a->rep_open = true;
    nng_socket_set_size(a->rep, NNG_OPT_RECVMAXSZ, ORCH_WIRE_MAX);
    if (orch_listen(a->rep, a->cfg.command_listen, a->tls_server, NULL, msg, msglen) != ORCH_OK)
        goto fail;

    a->base = event_base_new();
    if (a->base == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "event_base_new failed");
        goto fail;
    }
    struct timeval tick = {.tv_sec = 0, .tv_usec = TICK_MS * 1000};
    a->ev_tick = event_new(a->base, -1, EV_PERSIST, on_tick, a);
    a->ev_probe_done = event_new(a->base, -1, 0, on_probe_done, a);
    a->ev_watch_change = event_new(a->base, -1, 0, on_watch_change, a);
    a->ev_hup = evsignal_new(a->base, SIGHUP, on_hup, a);
    a->ev_term = evsignal_new(a->base, SIGTERM, on_stop, a);
    a->ev_int = evsignal_new(a->base, SIGINT, on_stop, a);
    if (!a->ev_tick || !a->ev_probe_done || !a->ev_watch_change || !a->ev_hup || !a->ev_term ||
        !a->ev_int || event_add(a->ev_tick, &tick) != 0 || event_add(a->ev_hup, NULL) != 0 ||
        event_add(a->ev_term, NULL) != 0 || event_add(a->ev_int, NULL) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot set up events");
        goto fail;
    }
    apply_runtime_config(a);
    sync_dialers(a);
    return a;
fail:
    agent_free(a);
    return NULL;
}

int agent_run(agent *a)
{
    a->last_report_ms = orch_mono_ms() - a->cfg.report_interval_ms;
    if (pthread_create(&a->probe_thread, NULL, probe_main, a) != 0) {
        orch_error(NULL, "cannot start the probe thread");
        return ORCH_EXIT_FAILURE;
    }
    a->probe_started = true;
    if (pthread_create(&a->witness_thread, NULL, witness_main, a) != 0) {
        orch_error(NULL, "cannot start the witness thread");
        return ORCH_EXIT_FAILURE;
    }
    a->witness_started = true;
    a->nworkers = (size_t)a->cfg.command_workers;
    for (size_t i = 0; i < a->nworkers; i++) {
        a->workers[i].a = a;
        if (pthread_create(&a->workers[i].thread, NULL, worker_main, &a->workers[i]) != 0) {
            orch_error(NULL, "cannot start command worker %zu", i);
            return ORCH_EXIT_FAILURE;
        }
        a->workers[i].started = true;
    }
    orch_log(ORCH_LOG_NOTICE, "ORCH-AGENT-START", NULL,
             "orch-agent %s: host %s, server %s:%u, commands on %s, reporting to %zu "
             "coordinator(s)%s",
             ORCH_VERSION, a->cfg.host,
             a->cfg.mysql_socket ? a->cfg.mysql_socket : a->cfg.mysql_host,
             (unsigned)a->cfg.mysql_port, a->cfg.command_listen, a->cfg.coordinators.n,
             a->cfg.host_key ? "" : " (INSECURE: no host key)");
    event_base_dispatch(a->base);
    return ORCH_EXIT_OK;
}

void agent_free(agent *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->probe_cv);
    pthread_cond_broadcast(&a->result_cv);
    pthread_mutex_unlock(&a->mu);
    /* Closing rep wakes every worker blocked in nng_ctx_recvmsg with NNG_ECLOSED. */
    if (a->rep_open)
        nng_close(a->rep);
    for (size_t i = 0; i < a->nworkers; i++) {
        if (a->workers[i].started)
            pthread_join(a->workers[i].thread, NULL);
    }
    if (a->probe_started)
        pthread_join(a->probe_thread, NULL);
    if (a->witness_started) {
        pthread_mutex_lock(&a->witness_mu);
        pthread_cond_broadcast(&a->witness_cv);
        pthread_mutex_unlock(&a->witness_mu);
        pthread_join(a->witness_thread, NULL);
    }
    /* Dialers first, then the socket (see the TLS close hazard in DESIGN.md). */
    for (size_t i = 0; i < a->ndialers; i++) {
        nng_dialer_close(a->dialers[i]);
        free(a->dial_urls[i]);
    }
    if (a->pub_open)
        nng_close(a->pub);
    if (a->tls_client)
        nng_tls_config_free(a->tls_client);
    if (a->tls_server)
        nng_tls_config_free(a->tls_server);
    if (a->ev_tick)
        event_free(a->ev_tick);
    if (a->ev_probe_done)
        event_free(a->ev_probe_done);
    unwatch(a);
    if (a->watch_fd_new >= 0)
        close(a->watch_fd_new);
    if (a->ev_watch_change)
        event_free(a->ev_watch_change);
    if (a->ev_hup)
        event_free(a->ev_hup);
    if (a->ev_term)
        event_free(a->ev_term);
    if (a->ev_int)
        event_free(a->ev_int);
    if (a->base)
        event_base_free(a->base);
    orch_probe_result_fini(&a->latest);
    ident_fini(&a->ident);
    agent_config_fini(&a->cfg);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->fence_mu);
    pthread_mutex_destroy(&a->reject_log_mu);
    pthread_mutex_destroy(&a->witness_mu);
    pthread_cond_destroy(&a->witness_cv);
    pthread_cond_destroy(&a->probe_cv);
    pthread_cond_destroy(&a->result_cv);
    free(a->config_path);
    free(a);
}
