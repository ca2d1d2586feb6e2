/*
 * orch-fleetsim: a simulated fleet of agents for benchmarks and tests. Sends
 * correctly signed InstanceReports for K synthetic hosts (clusters of one
 * primary and `replicas` replicas, host names sim-<cluster>-<member>) to a
 * coordinator's report listener, each host once per `interval`, spread evenly
 * over time. Each host has its own boot id and growing sequence numbers, so
 * the coordinator treats them as K real agents.
 *
 *   orch-fleetsim --url tcp://127.0.0.1:3390 --secret S --hosts 10000
 *                 [--replicas 3] [--interval-ms 1000] [--seconds 30] [--sockets 4]
 *                 [--prefix sim] [--boot-seed N]
 *
 * Prints one JSON line per second: reports sent, send failures, rate.
 */
#include "clock.h"
#include "wire.h"

#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sim_host {
    char name[64];
    char master[64];
    uint32_t port;
    orch_hmac_key key;
    uint8_t boot[ORCH_BOOT_ID_LEN];
    uint64_t seq;
    uint32_t server_id;
} sim_host;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long long num(const char *s, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "orch-fleetsim: bad number for %s: '%s'\n", what, s);
        exit(2);
    }
    return v;
}

/* Packs and seals one report for h into *out. */
static int build(sim_host *h, uint8_t **out, size_t *outlen)
{
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    Orch__ServerStatus s = ORCH__SERVER_STATUS__INIT;
    Orch__Channel ch = ORCH__CHANNEL__INIT;
    Orch__Channel *chans[1] = {&ch};
    char *aliases[1] = {h->name};
    r.protocol_version = ORCH_PROTOCOL_VERSION;
    r.boot_id.data = h->boot;
    r.boot_id.len = sizeof(h->boot);
    r.seq = ++h->seq;
    r.sent_at_ms = orch_wall_ms();
    r.host = h->name;
    r.port = h->port;
    r.aliases = aliases;
    r.n_aliases = 1;
    r.state = ORCH__PROBE_STATE__PROBE_UP;
    r.has_promotion_rule = true;
    r.server = &s;
    s.has_server_id = true;
    s.server_id = h->server_id;
    s.version = (char *)"10.11.19-MariaDB-log";
    s.has_read_only = true;
    s.read_only = h->master[0] != '\0';
    s.has_log_bin = s.has_log_slave_updates = true;
    s.log_bin = s.log_slave_updates = true;
    s.binlog_format = (char *)"ROW";
    s.gtid_current_pos = (char *)"0-1-1000";
    s.has_binlog_pos = true;
    s.binlog_pos = 1000 + h->seq;
    if (h->master[0] != '\0') {
        ch.master_host = h->master;
        ch.has_master_port = true;
        ch.master_port = 3306;
        ch.has_io_thread = ch.has_sql_thread = true;
        ch.io_thread = ch.sql_thread = ORCH__THREAD_STATE__THREAD_YES;
        ch.has_seconds_behind_master = true;
        ch.using_gtid = (char *)"Slave_Pos";
        ch.has_witness = true;
        ch.witness = ORCH__WITNESS_RESULT__WITNESS_GREETING;
        r.channels = chans;
        r.n_channels = 1;
    }
    uint8_t *body;
    size_t body_len;
    if (orch_wire_pack(&r.base, &body, &body_len) != ORCH_OK)
        return -1;
    orch_err err =
        orch_wire_seal(ORCH__ENVELOPE__KIND__REPORT, h->name, &h->key, body, body_len, out, outlen);
    free(body);
    return err == ORCH_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", 1, NULL, 'u'},      {"secret", 1, NULL, 's'},      {"hosts", 1, NULL, 'n'},
        {"replicas", 1, NULL, 'r'}, {"interval-ms", 1, NULL, 'i'}, {"seconds", 1, NULL, 'S'},
        {"sockets", 1, NULL, 'k'},  {"prefix", 1, NULL, 'p'},      {"boot-seed", 1, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *secret = NULL, *prefix = "sim";
    long long hosts = 1000, replicas = 3, interval = 1000, seconds = 30, nsock = 4, seed = -1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 's':
            secret = optarg;
            break;
        case 'n':
            hosts = num(optarg, "--hosts");
            break;
        case 'r':
            replicas = num(optarg, "--replicas");
            break;
        case 'i':
            interval = num(optarg, "--interval-ms");
            break;
        case 'S':
            seconds = num(optarg, "--seconds");
            break;
        case 'k':
            nsock = num(optarg, "--sockets");
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'b':
            seed = num(optarg, "--boot-seed");
            break;
        default:
            fprintf(stderr, "usage: orch-fleetsim --url URL [--secret S] --hosts K [--replicas R] "
                            "[--interval-ms MS] [--seconds T] [--sockets N] [--prefix P]\n");
            return 2;
        }
    }
    if (url == NULL || hosts < 1 || interval < 1 || nsock < 1 || nsock > 64) {
        fprintf(stderr, "orch-fleetsim: --url and --hosts >= 1 are required\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* A new boot id per host per run, unless --boot-seed replays the same boots
     * (whose sequence numbers then start again at 1: stale to a coordinator). */
    srand(seed >= 0 ? (unsigned)seed : (unsigned)(orch_wall_ms() ^ getpid()));
    sim_host *h = calloc((size_t)hosts, sizeof(*h));
    nng_socket socks[64];
    if (h == NULL)
        return 1;
    long long per = replicas + 1;
    for (long long i = 0; i < hosts; i++) {
        long long cl = i / per, member = i % per;
        snprintf(h[i].name, sizeof(h[i].name), "%s-%lld-%lld", prefix, cl, member);
        if (member > 0)
            snprintf(h[i].master, sizeof(h[i].master), "%s-%lld-0", prefix, cl);
        h[i].port = 3306;
        h[i].server_id = (uint32_t)i + 1;
        for (size_t b = 0; b < ORCH_BOOT_ID_LEN; b++)
            h[i].boot[b] = (uint8_t)rand();
        if (secret != NULL) {
            if (orch_wire_derive_key(secret, strlen(secret), h[i].name, &h[i].key) != ORCH_OK)
                return 1;
        }
    }
    for (long long k = 0; k < nsock; k++) {
        int rv;
        if ((rv = nng_pub0_open(&socks[k])) != 0 ||
            (rv = nng_dial(socks[k], url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
            fprintf(stderr, "orch-fleetsim: %s: %s\n", url, nng_strerror(rv));
            return 1;
        }
    }
    orch_sleep_ms(300); /* let the dialers connect */
    int64_t start = orch_mono_us(), end = start + seconds * 1000000;
    int64_t period_us = interval * 1000;
    long long next = 0, sent = 0, failed = 0, last_sent = 0;
    int64_t last_print = start;
    while (!stop && orch_mono_us() < end) {
        int64_t now = orch_mono_us();
        /* how many sends are due by now, spreading all hosts over each period */
        long long due = (long long)((now - start) * hosts / period_us);
        while (next < due && !stop) {
            sim_host *x = &h[next % hosts];
            uint8_t *buf;
            size_t len;
            if (build(x, &buf, &len) == 0) {
                if (nng_send(socks[next % nsock], buf, len, NNG_FLAG_NONBLOCK) == 0)
                    sent++;
                else
                    failed++;
                free(buf);
            }
            next++;
        }
        if (now - last_print >= 1000000) {
            printf("{\"t\":%.1f,\"sent\":%lld,\"failed\":%lld,\"rate\":%.0f}\n",
                   (now - start) / 1e6, sent, failed,
                   (sent - last_sent) * 1e6 / (now - last_print));
            fflush(stdout);
            last_print = now;
            last_sent = sent;
        }
        orch_sleep_ms(1);
    }
    orch_sleep_ms(200);
    for (long long k = 0; k < nsock; k++)
        nng_close(socks[k]);
    free(h);
    printf("{\"done\":true,\"sent\":%lld,\"failed\":%lld}\n", sent, failed);
    return 0;
}
