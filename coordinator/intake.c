/* intake.c: authenticated reports from agents into the registry (see intake.h). */
#include "intake.h"

#include "clock.h"
#include "log.h"
#include "transport.h"
#include "wire.h"

#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_MAX    1024 /* messages per wake-up, so timers and HTTP stay served */
#define PEER_SLOTS   256  /* peers remembered for addresses and log rate limits */
#define LOG_EVERY_MS 60000

typedef struct peer_slot {
    uint32_t pipe_id;
    char addr[64];
    orch_ratelimit log;
} peer_slot;

struct intake {
    nng_socket sock;
    bool open;
    struct event *ev;
    intake_conf conf;
    char *secret;
    size_t secret_len;
    intake_counters counters;
    pthread_mutex_t peers_mu;
    peer_slot peers[PEER_SLOTS];
};

const char *intake_reject_name(intake_reject r)
{
    static const char *const names[INTAKE_REJECT__COUNT] = {
        [INTAKE_MALFORMED] = "malformed", [INTAKE_TOOBIG] = "too_big",
        [INTAKE_VERSION] = "version",     [INTAKE_KIND] = "kind",
        [INTAKE_AUTH] = "auth",           [INTAKE_DECODE] = "decode",
        [INTAKE_IMPOSTOR] = "impostor",   [INTAKE_REPLAY] = "replay",
        [INTAKE_OLD_BOOT] = "old_boot",   [INTAKE_INVALID] = "invalid",
    };
    return (unsigned)r < INTAKE_REJECT__COUNT ? names[r] : "unknown";
}

const intake_counters *intake_get_counters(const intake *in)
{
    return &in->counters;
}

/* nng thread: remember the remote address of each new pipe. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    intake *in = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    peer_slot *slot = &in->peers[id % PEER_SLOTS];
    if (ev != NNG_PIPE_EV_ADD_POST)
        return;
    nng_sockaddr sa;
    char addr[64] = "?";
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
        if (sa.s_family == NNG_AF_INET) {
            const uint8_t *b = (const uint8_t *)&sa.s_in.sa_addr;
            snprintf(addr, sizeof(addr), "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3],
                     (unsigned)((sa.s_in.sa_port & 0xff) << 8 | sa.s_in.sa_port >> 8));
        } else if (sa.s_family == NNG_AF_INET6) {
            snprintf(addr, sizeof(addr), "[ipv6]:%u",
                     (unsigned)((sa.s_in6.sa_port & 0xff) << 8 | sa.s_in6.sa_port >> 8));
        }
    }
    pthread_mutex_lock(&in->peers_mu);
    slot->pipe_id = id;
    snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
    pthread_mutex_unlock(&in->peers_mu);
}

/* Logs a rejection at most once per peer slot per minute. */
static void reject(intake *in, intake_reject why, const char *peer, const char *detail)
{
    in->counters.rejected[why]++;
    uint64_t dropped = 0;
    unsigned slot = 0;
    for (const char *p = peer ? peer : "?"; *p; p++)
        slot = slot * 31 + (unsigned char)*p;
    pthread_mutex_lock(&in->peers_mu);
    bool log = orch_ratelimit_allow(&in->peers[slot % PEER_SLOTS].log, orch_mono_ms(), LOG_EVERY_MS,
                                    &dropped);
    pthread_mutex_unlock(&in->peers_mu);
    if (log)
        orch_log(ORCH_LOG_WARN, "ORCH-REPORT-REJECTED", peer ? peer : "?",
                 "%s: %s (%llu similar from this peer not logged in the last minute)",
                 intake_reject_name(why), detail, (unsigned long long)dropped);
}

void intake_process(intake *in, const uint8_t *buf, size_t len, const char *peer)
{
    char msg[256];
    Orch__Envelope *env = NULL;
    in->counters.received++;
    orch_err err = orch_wire_open(buf, len, &env, msg, sizeof(msg));
    if (err != ORCH_OK) {
        intake_reject why = err == ORCH_ERR_TOOBIG ? INTAKE_TOOBIG : INTAKE_MALFORMED;
        if (strstr(msg, "protocol version") != NULL)
            why = INTAKE_VERSION;
        reject(in, why, peer, msg);
        return;
    }
    const char *who = peer ? peer : env->host;
    if (env->kind != ORCH__ENVELOPE__KIND__REPORT) {
        reject(in, INTAKE_KIND, who, "not a report");
        goto out;
    }
    orch_hmac_key key;
    if (in->secret != NULL) {
        if (orch_wire_derive_key(in->secret, in->secret_len, env->host, &key) != ORCH_OK) {
            reject(in, INTAKE_AUTH, who, "cannot derive a key for this host name");
            goto out;
        }
    } else {
        memset(&key, 0, sizeof(key));
    }
    if (orch_wire_verify(env, &key) != ORCH_OK) {
        snprintf(msg, sizeof(msg), "signature does not verify under key(%.100s)", env->host);
        reject(in, INTAKE_AUTH, who, msg);
        goto out;
    }
    Orch__InstanceReport *rep = orch__instance_report__unpack(NULL, env->body.len, env->body.data);
    if (rep == NULL) {
        reject(in, INTAKE_DECODE, who, "body is not an InstanceReport");
        goto out;
    }
    if (rep->protocol_version != ORCH_PROTOCOL_VERSION) {
        snprintf(msg, sizeof(msg), "report of protocol version %u", rep->protocol_version);
        orch__instance_report__free_unpacked(rep, NULL);
        reject(in, INTAKE_VERSION, who, msg);
        goto out;
    }
    if (rep->host == NULL || strcmp(rep->host, env->host) != 0) {
        snprintf(msg, sizeof(msg), "report about '%.100s' signed by '%.100s'",
                 rep->host ? rep->host : "", env->host);
        orch__instance_report__free_unpacked(rep, NULL);
        reject(in, INTAKE_IMPOSTOR, who, msg);
        goto out;
    }
    reg_instance *inst = NULL;
    reg_verdict v = registry_apply(in->conf.reg, rep, orch_mono_ms(), orch_wall_ms(),
                                   in->conf.boot_grace_ms, &inst, msg, sizeof(msg));
    switch (v) {
    case REG_ACCEPTED:
        in->counters.accepted++;
        if (in->conf.accepted != NULL)
            in->conf.accepted(in->conf.arg, inst);
        break;
    case REG_REPLAY:
        in->counters.rejected[INTAKE_REPLAY]++; /* normal after a partition heals: not logged */
        break;
    case REG_OLD_BOOT:
        in->counters.rejected[INTAKE_OLD_BOOT]++;
        break;
    case REG_INVALID:
        reject(in, INTAKE_INVALID, who, msg);
        break;
    }
out:
    orch__envelope__free_unpacked(env, NULL);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    intake *in = arg;
    in->counters.drains++;
    for (int i = 0; i < DRAIN_MAX; i++) {
        nng_msg *m = NULL;
        int rv = nng_recvmsg(in->sock, &m, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            break;
        char peer[64] = "";
        uint32_t id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(m));
        pthread_mutex_lock(&in->peers_mu);
        if (in->peers[id % PEER_SLOTS].pipe_id == id)
            snprintf(peer, sizeof(peer), "%s", in->peers[id % PEER_SLOTS].addr);
        pthread_mutex_unlock(&in->peers_mu);
        intake_process(in, nng_msg_body(m), nng_msg_len(m), peer[0] ? peer : NULL);
        nng_msg_free(m);
    }
}

intake *intake_start(struct event_base *base, const intake_conf *conf, char *msg, size_t msglen)
{
    intake *in = calloc(1, sizeof(*in));
    int rv, fd = -1;
    if (in == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    in->conf = *conf;
    pthread_mutex_init(&in->peers_mu, NULL);
    if (conf->fleet_secret != NULL) {
        in->secret = strdup(conf->fleet_secret);
        in->secret_len = strlen(conf->fleet_secret);
        if (in->secret == NULL) {
            orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    if ((rv = nng_sub0_open(&in->sock)) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "report socket: %s", nng_strerror(rv));
        goto fail;
    }
    in->open = true;
    if ((rv = nng_socket_set(in->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
        (rv = nng_socket_set_int(in->sock, NNG_OPT_RECVBUF, conf->recv_buffer)) != 0 ||
        (rv = nng_socket_set_size(in->sock, NNG_OPT_RECVMAXSZ, ORCH_WIRE_MAX)) != 0 ||
        (rv = nng_pipe_notify(in->sock, NNG_PIPE_EV_ADD_POST, on_pipe, in)) != 0 ||
        (rv = nng_socket_get_int(in->sock, NNG_OPT_RECVFD, &fd)) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "report socket options: %s", nng_strerror(rv));
        goto fail;
    }
    if (orch_listen(in->sock, conf->url, conf->tls, NULL, msg, msglen) != ORCH_OK)
        goto fail;
    in->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, in);
    if (in->ev == NULL || event_add(in->ev, NULL) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "cannot watch the report socket");
        goto fail;
    }
    return in;
fail:
    intake_stop(in);
    return NULL;
}

void intake_stop(intake *in)
{
    if (in == NULL)
        return;
    if (in->ev != NULL)
        event_free(in->ev);
    if (in->open)
        nng_close(in->sock);
    if (in->secret != NULL) {
        memset(in->secret, 0, in->secret_len);
        free(in->secret);
    }
    pthread_mutex_destroy(&in->peers_mu);
    free(in);
}
