/* report.c: the shape fingerprint of an InstanceReport (see report.h). */
#include "report.h"

#include <stdbool.h>
#include <string.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t fnv_s(uint64_t h, const char *s)
{
    return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "\x01", 1);
}

static uint64_t fnv_u(uint64_t h, uint64_t v)
{
    return fnv(h, &v, sizeof(v));
}

uint64_t orch_report_fingerprint(const Orch__InstanceReport *r)
{
    uint64_t h = 1469598103934665603ULL;
    h = fnv_u(h, (uint64_t)r->state);
    h = fnv_s(h, r->probe_error);
    h = fnv_u(h, (uint64_t)r->has_fenced << 1 | r->fenced);
    h = fnv_u(h, (uint64_t)r->self_fenced);
    h = fnv_u(h, r->obeyed_epoch);
    h = fnv_u(h, (uint64_t)r->promotion_rule);
    h = fnv_s(h, r->data_center);
    h = fnv_s(h, r->region);
    h = fnv_s(h, r->environment);
    h = fnv_s(h, r->command_listen);
    for (size_t i = 0; i < r->n_aliases; i++)
        h = fnv_s(h, r->aliases[i]);
    const Orch__ServerStatus *s = r->server;
    if (s != NULL) {
        const bool b[] = {s->read_only,
                          s->super_read_only,
                          s->log_bin,
                          s->log_slave_updates,
                          s->gtid_strict_mode,
                          s->semi_sync_master_enabled,
                          s->semi_sync_master_status,
                          s->semi_sync_slave_enabled,
                          s->semi_sync_slave_status};
        h = fnv(h, b, sizeof(b));
        h = fnv_u(h, s->server_id);
        h = fnv_u(h, s->semi_sync_master_clients);
        h = fnv_u(h, s->semi_sync_master_timeout_ms);
        h = fnv_s(h, s->version);
        h = fnv_s(h, s->binlog_format);
        h = fnv_s(h, s->gtid_mode);
    }
    for (size_t i = 0; i < r->n_channels; i++) {
        const Orch__Channel *c = r->channels[i];
        h = fnv_s(h, c->name);
        h = fnv_s(h, c->master_host);
        h = fnv_u(h, c->master_port);
        h = fnv_u(h, (uint64_t)c->io_thread << 8 | (uint64_t)c->sql_thread);
        h = fnv_u(h, (uint64_t)c->last_io_errno << 32 | c->last_sql_errno);
        h = fnv_u(h, c->has_seconds_behind_master);
        h = fnv_u(h, (uint64_t)c->witness);
        h = fnv_s(h, c->using_gtid);
        h = fnv_u(h, c->sql_delay);
    }
    for (size_t i = 0; i < r->n_replicas; i++) {
        h = fnv_s(h, r->replicas[i]->host);
        h = fnv_u(h, r->replicas[i]->port);
    }
    for (size_t i = 0; i < r->n_problems; i++)
        h = fnv_s(h, r->problems[i]);
    return h;
}
