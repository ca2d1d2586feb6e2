/*
 * registry.c: instances, aliases and cluster trees, built from agents' reports.
 *
 * Two speeds. registry_apply() runs for every report (tens of thousands a
 * second): it validates, checks freshness, fingerprints the shape and swaps the
 * report in, all through hash lookups; it touches the alias map only when a
 * host's alias list changed, and it only marks the topology dirty. The
 * O(n log n) work (resolving masters, finding cycles, building and sorting
 * clusters) happens in registry_refresh(), and only when something that bears
 * on topology changed: a new instance, a different alias claim, or a change in
 * a report's replication channels (name, master host, master port) or
 * read_only. Other shape changes (a stopped IO thread, a new problem) mark the
 * instance for the store but leave the topology alone.
 *
 * Aliases are claimed per host, not per instance: every agent on host H adds H
 * itself and each name it reports to the claims of H, counted, so that several
 * agents on one host (different ports) share their names and a name leaves the
 * map only when no agent of H reports it any more. A name claimed by several
 * hosts (a VIP that moved, a misconfiguration, 127.0.0.1) resolves only when
 * exactly one of those hosts has an instance on the port asked for.
 */
#include "registry.h"

#include "hmap.h"
#include "log.h"
#include "report.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One host's claim on an alias, counted over that host's instances. */
typedef struct claim {
    char *host;
    unsigned refs;
} claim;

/* Every host claiming one alias. */
typedef struct alias_ent {
    claim *v;
    size_t n, cap;
} alias_ent;

/* The registry's side of an instance; a reg_instance * is an inst *. */
typedef struct inst {
    reg_instance pub;
    /* What this instance adds to the alias map: its own host, then the report's
     * aliases, normalized (each counted once per occurrence). */
    char **aliases;
    size_t naliases;
    bool aliases_retry; /* the last alias update ran out of memory */
    uint64_t topo;      /* hash of what bears on topology (topo_hash) */
    /* registry_refresh scratch */
    struct inst *res_master;
    uint32_t mark;
    bool is_top, on_cycle;
} inst;

/* Operator state for one key (strings owned). */
typedef struct op_row {
    char name[ORCH_KEY_STRLEN];
    reg_operator op;
} op_row;

/* One cluster alias (strings owned). */
typedef struct calias {
    char *cluster, *alias;
} calias;

struct registry {
    int64_t started_ms;
    orch_hmap by_name; /* "host:port" -> inst */
    orch_hmap aliases; /* normalized name -> alias_ent */
    reg_instance **all;
    size_t n, cap;
    bool sorted;     /* all[] is in key order */
    bool topo_dirty; /* registry_refresh has work to do */

    reg_instance **dirty; /* store_dirty instances; capacity kept >= cap */
    size_t ndirty;

    /* Topology, rebuilt in place by registry_refresh; capacities grow to n. */
    reg_instance **replica_pool, **member_pool;
    reg_cluster *cluster_pool;
    reg_cluster **clusters; /* by name */
    size_t nclusters, topo_cap;

    /* Operator state (registry_set_operator_state). */
    op_row *ops;
    size_t nops;
    orch_hmap ops_by_name; /* "host:port" -> op_row */
    calias *caliases;
    size_t ncaliases;
    orch_hmap calias_by_cluster; /* cluster name -> calias */
    orch_hmap calias_by_alias;   /* alias -> calias */

    /* Instances forgotten since the last refresh: out of every map and list,
     * freed by the next successful registry_refresh (topology still points at
     * them until then). */
    inst **graveyard;
    size_t ngrave, capgrave;
};

static const reg_operator no_operator_state = {.promotion_override = -1};

static inst *inst_of(reg_instance *i)
{
    return (inst *)i;
}

/* ---- names ---------------------------------------------------------------- */

/*
 * Writes "host:port" (brackets around IPv6) for an already normalized host, as
 * orch_key_format does. By hand: it runs several times per report, and
 * snprintf was a tenth of registry_apply's time.
 */
static void fmt_name(const char *host, unsigned port, char *buf, size_t len)
{
    char digits[8];
    size_t nd = 0, hl = strlen(host), o = 0;
    bool v6 = memchr(host, ':', hl) != NULL;
    do {
        digits[nd++] = (char)('0' + port % 10);
        port /= 10;
    } while (port > 0 && nd < sizeof(digits));
    if (hl + nd + 4 > len) { /* cannot happen with ORCH_KEY_STRLEN buffers */
        snprintf(buf, len, "%s", "?");
        return;
    }
    if (v6)
        buf[o++] = '[';
    memcpy(buf + o, host, hl);
    o += hl;
    if (v6)
        buf[o++] = ']';
    buf[o++] = ':';
    while (nd > 0)
        buf[o++] = digits[--nd];
    buf[o] = '\0';
}

/*
 * Normalizes a host name or address as agents and Master_Host write them:
 * lower-cased, brackets around an IPv6 literal dropped, checked like key hosts.
 * False when it is not a valid host.
 */
static bool norm_host(const char *s, char out[ORCH_HOST_MAX + 1])
{
    char buf[ORCH_HOST_MAX + 1];
    orch_key k;
    size_t len = s ? strlen(s) : 0;
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        if (len - 2 > ORCH_HOST_MAX)
            return false;
        memcpy(buf, s + 1, len - 2);
        buf[len - 2] = '\0';
        s = buf;
    }
    if (orch_key_make(s, 1, &k, NULL, 0) != ORCH_OK)
        return false;
    memcpy(out, k.host, strlen(k.host) + 1);
    return true;
}

/* Names that always mean "this same host". */
static bool is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

/* ---- aliases -------------------------------------------------------------- */

static void alias_ent_free(alias_ent *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].host);
    free(e->v);
    free(e);
}

/* Adds one reference of host to alias. Marks the topology dirty on a new claim. */
static orch_err claim_add(registry *r, const char *alias, const char *host)
{
    alias_ent *e = orch_hmap_get(&r->aliases, alias);
    if (e != NULL) {
        for (size_t i = 0; i < e->n; i++) {
            if (strcmp(e->v[i].host, host) == 0) {
                e->v[i].refs++;
                return ORCH_OK;
            }
        }
    } else {
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return ORCH_ERR_NOMEM;
        if (orch_hmap_put(&r->aliases, alias, e, NULL) != ORCH_OK) {
            free(e);
            return ORCH_ERR_NOMEM;
        }
    }
    char *copy = NULL;
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 2;
        claim *v = realloc(e->v, cap * sizeof(*v));
        if (v != NULL) {
            e->v = v;
            e->cap = cap;
        }
    }
    if (e->n < e->cap)
        copy = strdup(host);
    if (copy == NULL) {
        if (e->n == 0)
            alias_ent_free(orch_hmap_del(&r->aliases, alias));
        return ORCH_ERR_NOMEM;
    }
    e->v[e->n++] = (claim){.host = copy, .refs = 1};
    r->topo_dirty = true;
    return ORCH_OK;
}

/* Drops one reference of host to alias (one that claim_add gave). */
static void claim_drop(registry *r, const char *alias, const char *host)
{
    alias_ent *e = orch_hmap_get(&r->aliases, alias);
    assert(e != NULL);
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->v[i].host, host) != 0)
            continue;
        if (--e->v[i].refs > 0)
            return;
        free(e->v[i].host);
        e->v[i] = e->v[--e->n];
        r->topo_dirty = true;
        if (e->n == 0)
            alias_ent_free(orch_hmap_del(&r->aliases, alias));
        return;
    }
    assert(!"claim_drop: no such claim");
}

static void names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The alias list an instance of host contributes for rep: host first, then the
 * report's valid aliases, normalized. NULL only when out of memory. */
static char **names_build(const char *host, const Orch__InstanceReport *rep, size_t *n)
{
    char **v = calloc(rep->n_aliases + 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    size_t k = 0;
    if ((v[k++] = strdup(host)) == NULL)
        goto nomem;
    for (size_t i = 0; i < rep->n_aliases; i++) {
        char h[ORCH_HOST_MAX + 1];
        if (!norm_host(rep->aliases[i], h))
            continue; /* not a name a replica could use: ignored */
        if ((v[k++] = strdup(h)) == NULL)
            goto nomem;
    }
    *n = k;
    return v;
nomem:
    names_free(v, k);
    return NULL;
}

static bool names_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return false;
    }
    return true;
}

/*
 * Makes the instance's claims match rep's aliases. All or nothing: when memory
 * runs out the old claims stay and the next report retries.
 */
static orch_err aliases_update(registry *r, inst *in, const Orch__InstanceReport *rep)
{
    size_t n = 0, added = 0;
    char **v = names_build(in->pub.key.host, rep, &n);
    if (v == NULL)
        goto nomem;
    if (names_equal(v, n, in->aliases, in->naliases)) {
        names_free(v, n);
        in->aliases_retry = false;
        return ORCH_OK;
    }
    for (; added < n; added++) {
        if (claim_add(r, v[added], in->pub.key.host) != ORCH_OK)
            goto nomem;
    }
    for (size_t i = 0; i < in->naliases; i++)
        claim_drop(r, in->aliases[i], in->pub.key.host);
    names_free(in->aliases, in->naliases);
    in->aliases = v;
    in->naliases = n;
    in->aliases_retry = false;
    return ORCH_OK;
nomem:
    while (added > 0)
        claim_drop(r, v[--added], in->pub.key.host);
    names_free(v, n);
    in->aliases_retry = true;
    return ORCH_ERR_NOMEM;
}

static bool raw_aliases_equal(const Orch__InstanceReport *a, const Orch__InstanceReport *b)
{
    if (a->n_aliases != b->n_aliases)
        return false;
    for (size_t i = 0; i < a->n_aliases; i++) {
        if (strcmp(a->aliases[i], b->aliases[i]) != 0)
            return false;
    }
    return true;
}

/*
 * Resolves host (normalized) and port to an instance: the exact key, else a
 * loopback name on the asking instance's own host (self_host, may be NULL),
 * else the hosts claiming host as an alias. Several claiming hosts with an
 * instance on port make it ambiguous: NULL with *ambiguous set.
 */
static inst *resolve(registry *r, const char *host, unsigned port, const char *self_host,
                     bool *ambiguous)
{
    char name[ORCH_KEY_STRLEN];
    *ambiguous = false;
    fmt_name(host, port, name, sizeof(name));
    inst *found = orch_hmap_get(&r->by_name, name);
    if (found != NULL)
        return found;
    if (self_host != NULL && is_loopback(host)) {
        fmt_name(self_host, port, name, sizeof(name));
        if ((found = orch_hmap_get(&r->by_name, name)) != NULL)
            return found;
    }
    const alias_ent *e = orch_hmap_get(&r->aliases, host);
    if (e == NULL)
        return NULL;
    for (size_t i = 0; i < e->n; i++) {
        fmt_name(e->v[i].host, port, name, sizeof(name));
        inst *x = orch_hmap_get(&r->by_name, name);
        if (x == NULL)
            continue;
        if (found != NULL) {
            *ambiguous = true;
            return NULL;
        }
        found = x;
    }
    return found;
}

/* ---- reports -------------------------------------------------------------- */

/* The channel that defines an instance's master: the unnamed one, else the first. */
const Orch__Channel *registry_defining_channel(const Orch__InstanceReport *rep)
{
    for (size_t i = 0; rep != NULL && i < rep->n_channels; i++) {
        const char *name = rep->channels[i]->name;
        if (name == NULL || name[0] == '\0')
            return rep->channels[i];
    }
    return rep != NULL && rep->n_channels > 0 ? rep->channels[0] : NULL;
}

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

/* A hash of what registry_refresh reads from a report (besides aliases). */
static uint64_t topo_hash(const Orch__InstanceReport *rep)
{
    uint64_t h = 1469598103934665603ULL;
    const Orch__ServerStatus *s = rep->server;
    uint8_t ro = s == NULL ? 0 : (uint8_t)(1 | s->has_read_only << 1 | s->read_only << 2);
    h = fnv(h, &ro, 1);
    for (size_t i = 0; i < rep->n_channels; i++) {
        const Orch__Channel *c = rep->channels[i];
        h = fnv_s(h, c->name);
        h = fnv_s(h, c->master_host);
        h = fnv(h, &c->master_port, sizeof(c->master_port));
    }
    return h;
}

/* Known to be writable: read_only reported and off. */
static bool is_writable(const inst *in)
{
    const Orch__ServerStatus *s = in->pub.report->server;
    return s != NULL && s->has_read_only && !s->read_only;
}

/* ---- lifecycle ------------------------------------------------------------- */

registry *registry_new(int64_t started_ms)
{
    registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->started_ms = started_ms;
    r->sorted = true;
    orch_hmap_init(&r->by_name);
    orch_hmap_init(&r->aliases);
    orch_hmap_init(&r->ops_by_name);
    orch_hmap_init(&r->calias_by_cluster);
    orch_hmap_init(&r->calias_by_alias);
    return r;
}

static void ops_free(op_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].op.downtime_owner);
        free(rows[i].op.downtime_reason);
        free(rows[i].op.maintenance_owner);
        free(rows[i].op.maintenance_reason);
    }
    free(rows);
}

static void caliases_free(calias *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].cluster);
        free(rows[i].alias);
    }
    free(rows);
}

static void inst_free(inst *in)
{
    orch__instance_report__free_unpacked(in->pub.report, NULL);
    names_free(in->aliases, in->naliases);
    free(in);
}

static void graveyard_empty(registry *r)
{
    for (size_t i = 0; i < r->ngrave; i++)
        inst_free(r->graveyard[i]);
    r->ngrave = 0;
}

void registry_free(registry *r)
{
    if (r == NULL)
        return;
    graveyard_empty(r);
    free(r->graveyard);
    for (size_t i = 0; i < r->n; i++)
        inst_free(inst_of(r->all[i]));
    free(r->all);
    orch_hmap_fini(&r->by_name);
    size_t it = 0;
    void *e;
    while (orch_hmap_next(&r->aliases, &it, NULL, &e))
        alias_ent_free(e);
    orch_hmap_fini(&r->aliases);
    free(r->dirty);
    free(r->replica_pool);
    free(r->member_pool);
    free(r->cluster_pool);
    free(r->clusters);
    ops_free(r->ops, r->nops);
    orch_hmap_fini(&r->ops_by_name);
    caliases_free(r->caliases, r->ncaliases);
    orch_hmap_fini(&r->calias_by_cluster);
    orch_hmap_fini(&r->calias_by_alias);
    free(r);
}

int64_t registry_started_ms(const registry *r)
{
    return r->started_ms;
}

size_t registry_count(const registry *r)
{
    return r->n;
}

const char *reg_verdict_name(reg_verdict v)
{
    switch (v) {
    case REG_ACCEPTED:
        return "accepted";
    case REG_REPLAY:
        return "replay";
    case REG_OLD_BOOT:
        return "old_boot";
    case REG_INVALID:
        return "invalid";
    }
    return "unknown";
}

/* ---- intake ------------------------------------------------------------------ */

/*
 * Takes an instance out of the maps, the alias claims and the lists; its
 * memory waits in the graveyard for the next refresh. Out of memory: it stays
 * (and the next snapshot tries again).
 */
static void forget_instance(registry *r, inst *in)
{
    if (r->ngrave == r->capgrave) {
        size_t cap = r->capgrave ? 2 * r->capgrave : 8;
        inst **g = realloc(r->graveyard, cap * sizeof(*g));
        if (g == NULL) {
            orch_error(in->pub.name, "registry: out of memory forgetting it; it stays");
            return;
        }
        r->graveyard = g;
        r->capgrave = cap;
    }
    orch_hmap_del(&r->by_name, in->pub.name);
    for (size_t k = 0; k < in->naliases; k++)
        claim_drop(r, in->aliases[k], in->pub.key.host);
    names_free(in->aliases, in->naliases);
    in->aliases = NULL;
    in->naliases = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->all[i] == &in->pub) {
            memmove(&r->all[i], &r->all[i + 1], (r->n - i - 1) * sizeof(r->all[0]));
            r->n--;
            break;
        }
    }
    for (size_t i = 0; in->pub.store_dirty && i < r->ndirty; i++) {
        if (r->dirty[i] == &in->pub) {
            memmove(&r->dirty[i], &r->dirty[i + 1], (r->ndirty - i - 1) * sizeof(r->dirty[0]));
            r->ndirty--;
            break;
        }
    }
    in->pub.store_dirty = false;
    r->graveyard[r->ngrave++] = in;
    r->topo_dirty = true;
    orch_log(ORCH_LOG_NOTICE, "ORCH-FORGOTTEN", in->pub.name,
             "forgotten by an operator: dropped until its agent reports again");
}

static void mark_store_dirty(registry *r, inst *in)
{
    if (in->pub.store_dirty)
        return;
    in->pub.store_dirty = true;
    assert(r->ndirty < r->cap); /* capacity kept >= instances */
    r->dirty[r->ndirty++] = &in->pub;
}

/* Grows all[] and dirty[] for one more instance. */
static orch_err reserve_instance(registry *r)
{
    if (r->n < r->cap)
        return ORCH_OK;
    size_t cap = r->cap ? 2 * r->cap : 64;
    reg_instance **all = realloc(r->all, cap * sizeof(*all));
    if (all == NULL)
        return ORCH_ERR_NOMEM;
    r->all = all;
    reg_instance **dirty = realloc(r->dirty, cap * sizeof(*dirty));
    if (dirty == NULL)
        return ORCH_ERR_NOMEM; /* all[] merely larger than needed */
    r->dirty = dirty;
    r->cap = cap;
    return ORCH_OK;
}

void registry_mark_dirty(registry *r, reg_instance *i)
{
    mark_store_dirty(r, inst_of(i));
}

/* First accepted report of an instance. Takes rep on success only. */
static reg_verdict add_instance(registry *r, Orch__InstanceReport *rep, const orch_key *key,
                                const char *name, int64_t now_ms, int64_t now_wall_ms,
                                int64_t boot_grace_ms, reg_instance **out, char *msg, size_t msglen)
{
    inst *in = NULL;
    if (reserve_instance(r) != ORCH_OK || (in = calloc(1, sizeof(*in))) == NULL)
        goto nomem;
    in->pub.key = *key;
    snprintf(in->pub.name, sizeof(in->pub.name), "%s", name);
    orch_fresh_verdict fv =
        orch_freshness_check(&in->pub.fresh, rep->boot_id.data, rep->boot_id.len, rep->seq,
                             rep->sent_at_ms, now_ms, boot_grace_ms);
    assert(fv == ORCH_FRESH_OK); /* nothing known yet, boot id checked */
    (void)fv;
    if (aliases_update(r, in, rep) != ORCH_OK)
        goto nomem;
    if (orch_hmap_put(&r->by_name, name, in, NULL) != ORCH_OK) {
        for (size_t i = 0; i < in->naliases; i++)
            claim_drop(r, in->aliases[i], key->host);
        names_free(in->aliases, in->naliases);
        goto nomem;
    }
    in->pub.report = rep;
    in->pub.shape = orch_report_fingerprint(rep);
    in->pub.shape_changed_ms = now_ms;
    in->pub.channel = registry_defining_channel(rep);
    in->pub.first_seen_ms = now_ms;
    in->pub.last_seen_ms = now_ms;
    in->pub.last_seen_wall_ms = now_wall_ms;
    in->pub.depth = 0;
    in->topo = topo_hash(rep);
    const op_row *o = orch_hmap_get(&r->ops_by_name, name);
    in->pub.op = o ? o->op : no_operator_state;
    r->all[r->n++] = &in->pub;
    r->sorted = r->n < 2 || (r->sorted && orch_key_compare(&r->all[r->n - 2]->key, key) < 0);
    r->topo_dirty = true;
    mark_store_dirty(r, in);
    if (out != NULL)
        *out = &in->pub;
    return REG_ACCEPTED;
nomem:
    free(in);
    orch__instance_report__free_unpacked(rep, NULL);
    orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory adding %s", name);
    return REG_INVALID;
}

/*
 * A server that does not answer (DOWN, UNRESPONSIVE, ...) is reported without
 * status or channels: its agent cannot read them. Its place in the topology and
 * its last known status must survive that report, or a dead intermediate master
 * would top a cluster of its own and be judged a dead master, and a dead
 * replica would leave its cluster. So a report without them inherits the
 * previous report's (moved, not copied: both came from the unpacker's
 * allocator). The API shows them with IsLastCheckValid false.
 */
static void carry_last_known(Orch__InstanceReport *old, Orch__InstanceReport *rep)
{
    if (old == NULL || rep->state == ORCH__PROBE_STATE__PROBE_UP)
        return;
    if (rep->n_channels == 0 && old->n_channels > 0) {
        rep->channels = old->channels;
        rep->n_channels = old->n_channels;
        old->channels = NULL;
        old->n_channels = 0;
    }
    if (rep->server == NULL && old->server != NULL) {
        rep->server = old->server;
        old->server = NULL;
    }
}

reg_verdict registry_apply(registry *r, Orch__InstanceReport *rep, int64_t now_ms,
                           int64_t now_wall_ms, int64_t boot_grace_ms, reg_instance **out,
                           char *msg, size_t msglen)
{
    char m[160], name[ORCH_KEY_STRLEN];
    orch_key key;

    if (rep == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "no report");
        return REG_INVALID;
    }
    if (rep->host == NULL || rep->host[0] == '\0') {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "report without a host");
        goto invalid;
    }
    if (orch_key_make(rep->host, (long)rep->port, &key, m, sizeof(m)) != ORCH_OK) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "report from '%.100s' port %u: %s", rep->host,
                  rep->port, m);
        goto invalid;
    }
    fmt_name(key.host, key.port, name, sizeof(name));
    if (rep->boot_id.data == NULL || rep->boot_id.len != ORCH_BOOT_ID_LEN) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "report from %s: boot id of %zu bytes, want %d",
                  name, rep->boot_id.len, ORCH_BOOT_ID_LEN);
        goto invalid;
    }

    inst *in = orch_hmap_get(&r->by_name, name);
    if (in == NULL)
        return add_instance(r, rep, &key, name, now_ms, now_wall_ms, boot_grace_ms, out, msg,
                            msglen);

    switch (orch_freshness_check(&in->pub.fresh, rep->boot_id.data, rep->boot_id.len, rep->seq,
                                 rep->sent_at_ms, now_ms, boot_grace_ms)) {
    case ORCH_FRESH_OK:
        break;
    case ORCH_FRESH_REPLAY:
        orch__instance_report__free_unpacked(rep, NULL);
        return REG_REPLAY;
    case ORCH_FRESH_OLD_BOOT:
        orch__instance_report__free_unpacked(rep, NULL);
        return REG_OLD_BOOT;
    case ORCH_FRESH_BAD_BOOT_ID:
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "report from %s: bad boot id", name);
        goto invalid;
    }

    carry_last_known(in->pub.report, rep);

    /*
     * The fast path: same shape, same alias list: a fingerprint, a few string
     * compares and the swap. A shape change is for the store; only a change in
     * what topology is built from dirties the topology.
     */
    uint64_t shape = orch_report_fingerprint(rep);
    if (shape != in->pub.shape) {
        in->pub.shape = shape;
        in->pub.shape_changed_ms = now_ms;
        mark_store_dirty(r, in);
        uint64_t topo = topo_hash(rep);
        if (topo != in->topo) {
            in->topo = topo;
            r->topo_dirty = true;
        }
    }
    if (in->aliases_retry || !raw_aliases_equal(in->pub.report, rep)) {
        if (aliases_update(r, in, rep) != ORCH_OK)
            orch_warn(name, "out of memory updating aliases; keeping the previous ones");
    }
    orch__instance_report__free_unpacked(in->pub.report, NULL);
    in->pub.report = rep;
    in->pub.channel = registry_defining_channel(rep);
    in->pub.last_seen_ms = now_ms;
    in->pub.last_seen_wall_ms = now_wall_ms;
    if (out != NULL)
        *out = &in->pub;
    return REG_ACCEPTED;

invalid:
    orch__instance_report__free_unpacked(rep, NULL);
    return REG_INVALID;
}

/* ---- lookups -------------------------------------------------------------- */

reg_instance *registry_get(registry *r, const orch_key *key)
{
    char name[ORCH_KEY_STRLEN];
    fmt_name(key->host, key->port, name, sizeof(name));
    inst *in = orch_hmap_get(&r->by_name, name);
    return in ? &in->pub : NULL;
}

reg_instance *registry_find(registry *r, const char *host, uint16_t port)
{
    char h[ORCH_HOST_MAX + 1];
    bool ambiguous;
    if (port == 0 || !norm_host(host, h))
        return NULL;
    inst *in = resolve(r, h, port, NULL, &ambiguous);
    return in ? &in->pub : NULL;
}

static int cmp_instance(const void *a, const void *b)
{
    const reg_instance *x = *(reg_instance *const *)a, *y = *(reg_instance *const *)b;
    return orch_key_compare(&x->key, &y->key);
}

static void sort_instances(registry *r)
{
    if (!r->sorted && r->n > 1)
        qsort(r->all, r->n, sizeof(*r->all), cmp_instance);
    r->sorted = true;
}

reg_instance *const *registry_instances(registry *r, size_t *n)
{
    sort_instances(r);
    *n = r->n;
    return r->all;
}

/* ---- topology ------------------------------------------------------------- */

static orch_err reserve_topology(registry *r)
{
    if (r->topo_cap >= r->n)
        return ORCH_OK;
    size_t cap = r->topo_cap ? r->topo_cap : 64;
    while (cap < r->n)
        cap *= 2;
    reg_instance **rp = realloc(r->replica_pool, cap * sizeof(*rp));
    if (rp == NULL)
        return ORCH_ERR_NOMEM;
    r->replica_pool = rp;
    reg_instance **mp = realloc(r->member_pool, cap * sizeof(*mp));
    if (mp == NULL)
        return ORCH_ERR_NOMEM;
    r->member_pool = mp;
    reg_cluster **cl = realloc(r->clusters, cap * sizeof(*cl));
    if (cl == NULL)
        return ORCH_ERR_NOMEM;
    r->clusters = cl;
    reg_cluster *cp = realloc(r->cluster_pool, cap * sizeof(*cp));
    if (cp == NULL)
        return ORCH_ERR_NOMEM;
    r->cluster_pool = cp;
    r->topo_cap = cap;
    return ORCH_OK;
}

/*
 * Resolves the master of one instance into its topology fields and
 * in->res_master. The defining channel names the master (Master_Host,
 * Master_Port, 3306 when absent); the name goes through resolve() above.
 * A name that matches no instance leaves the instance unresolved: it tops its
 * own cluster until the master's agent reports (warm-up) or forever if that
 * server is not managed. A name that is not a valid host is unresolved too
 * (master_key then has an empty host).
 */
static void resolve_master(registry *r, inst *in)
{
    reg_instance *p = &in->pub;
    const Orch__Channel *c = p->channel;
    p->has_master = false;
    p->master_unresolved = false;
    p->master_ambiguous = false;
    memset(&p->master_key, 0, sizeof(p->master_key));
    in->res_master = NULL;
    if (c == NULL || c->master_host == NULL || c->master_host[0] == '\0')
        return;
    p->has_master = true;
    unsigned port =
        c->master_port >= 1 && c->master_port <= 65535 ? c->master_port : ORCH_DEFAULT_MYSQL_PORT;
    p->master_key.port = (uint16_t)port;
    if (!norm_host(c->master_host, p->master_key.host)) {
        p->master_unresolved = true;
        return;
    }
    bool ambiguous;
    inst *m = resolve(r, p->master_key.host, port, p->key.host, &ambiguous);
    if (m == in) {
        /* Replicating from itself cannot work (same server id); never a tree edge. */
        p->master_unresolved = true;
        return;
    }
    if (m == NULL) {
        p->master_ambiguous = ambiguous;
        p->master_unresolved = !ambiguous;
        return;
    }
    p->master_key = m->pub.key;
    in->res_master = m;
}

/*
 * Finds the replication cycles (co-masters) and picks each one's top. Every
 * instance has at most one master, so each connected group of instances holds
 * at most one cycle, and following masters from any instance ends at a top
 * (no master) or runs into a cycle. Walks are stamped: meeting the current
 * stamp again closes a new cycle; meeting an older stamp or a top ends the walk.
 *
 * A cycle's top is its one writable member when exactly one is writable (the
 * active master of an active-passive pair); otherwise (none writable: mid
 * switchover; several: split brain) the smallest key, so that every
 * coordinator names the cluster the same way.
 */
static void find_cycles(registry *r)
{
    uint32_t stamp = 0;
    for (size_t i = 0; i < r->n; i++) {
        inst *x = inst_of(r->all[i]);
        if (x->mark != 0)
            continue;
        stamp++;
        inst *y = x;
        while (y != NULL && y->mark == 0 && !y->is_top) {
            y->mark = stamp;
            y = y->res_master;
        }
        if (y == NULL || y->is_top || y->mark != stamp)
            continue;
        inst *top = NULL, *smallest = y;
        int writable = 0;
        inst *z = y;
        do {
            z->on_cycle = true;
            if (is_writable(z)) {
                writable++;
                top = z;
            }
            if (orch_key_compare(&z->pub.key, &smallest->pub.key) < 0)
                smallest = z;
            z = z->res_master;
        } while (z != y);
        if (writable != 1)
            top = smallest;
        top->is_top = true;
    }
}

static int cmp_member(const void *a, const void *b)
{
    const reg_instance *x = *(reg_instance *const *)a, *y = *(reg_instance *const *)b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    return orch_key_compare(&x->key, &y->key);
}

static int cmp_cluster(const void *a, const void *b)
{
    const reg_cluster *x = *(reg_cluster *const *)a, *y = *(reg_cluster *const *)b;
    return strcmp(x->name, y->name);
}

static char *cluster_alias(registry *r, const char *name)
{
    const calias *a = orch_hmap_get(&r->calias_by_cluster, name);
    return a ? a->alias : NULL;
}

void registry_refresh(registry *r)
{
    if (!r->topo_dirty)
        return;
    if (reserve_topology(r) != ORCH_OK) {
        orch_error(NULL,
                   "registry: out of memory recomputing topology of %zu instances; "
                   "keeping the previous one",
                   r->n);
        return;
    }
    sort_instances(r);

    /* 1. Masters, and the tops of trees (no resolved master). */
    for (size_t i = 0; i < r->n; i++) {
        inst *in = inst_of(r->all[i]);
        resolve_master(r, in);
        in->mark = 0;
        in->on_cycle = false;
        in->is_top = in->res_master == NULL;
        in->pub.nreplicas = 0;
    }
    /* 2. Cycles, each given one top. */
    find_cycles(r);

    /* 3. Tree edges; replicas come out in key order since all[] is. */
    for (size_t i = 0; i < r->n; i++) {
        inst *in = inst_of(r->all[i]);
        reg_instance *p = &in->pub;
        p->master = in->res_master ? &in->res_master->pub : NULL;
        p->co_master = in->on_cycle;
        p->depth = -1;
        p->cluster = NULL;
        if (p->master != NULL)
            p->master->nreplicas++;
    }
    size_t off = 0;
    for (size_t i = 0; i < r->n; i++) {
        reg_instance *p = r->all[i];
        p->replicas = r->replica_pool + off;
        off += p->nreplicas;
        p->nreplicas = 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        reg_instance *p = r->all[i];
        if (p->master != NULL)
            p->master->replicas[p->master->nreplicas++] = p;
    }

    /* 4. Clusters: breadth-first from each top, the member slice serving as queue. */
    size_t ncl = 0;
    off = 0;
    for (size_t i = 0; i < r->n; i++) {
        inst *top = inst_of(r->all[i]);
        if (!top->is_top)
            continue;
        reg_cluster *c = &r->cluster_pool[ncl];
        r->clusters[ncl++] = c;
        snprintf(c->name, sizeof(c->name), "%s", top->pub.name);
        c->alias = cluster_alias(r, c->name);
        c->master = &top->pub;
        c->members = r->member_pool + off;
        c->nmembers = 0;
        top->pub.depth = 0;
        top->pub.cluster = c;
        c->members[c->nmembers++] = &top->pub;
        for (size_t q = 0; q < c->nmembers; q++) {
            reg_instance *p = c->members[q];
            for (size_t k = 0; k < p->nreplicas; k++) {
                reg_instance *rep = p->replicas[k];
                if (rep->depth >= 0)
                    continue; /* the top, reached again round a cycle */
                rep->depth = p->depth + 1;
                rep->cluster = c;
                c->members[c->nmembers++] = rep;
            }
        }
        if (c->nmembers > 2)
            qsort(c->members + 1, c->nmembers - 1, sizeof(*c->members), cmp_member);
        off += c->nmembers;
    }
    assert(off == r->n); /* every instance reaches a top */
    if (ncl > 1)
        qsort(r->clusters, ncl, sizeof(*r->clusters), cmp_cluster);
    r->nclusters = ncl;
    r->topo_dirty = false;
    graveyard_empty(r); /* nothing points at them any more */
}

reg_cluster *const *registry_clusters(registry *r, size_t *n)
{
    registry_refresh(r);
    *n = r->nclusters;
    return r->clusters;
}

static reg_cluster *cluster_by_name(registry *r, const char *name)
{
    size_t lo = 0, hi = r->nclusters;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->clusters[mid]->name, name);
        if (c == 0)
            return r->clusters[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

reg_cluster *registry_cluster_by_hint(registry *r, const char *hint)
{
    if (hint == NULL || hint[0] == '\0')
        return NULL;
    registry_refresh(r);
    reg_cluster *c = cluster_by_name(r, hint);
    if (c != NULL)
        return c;
    const calias *a = orch_hmap_get(&r->calias_by_alias, hint);
    if (a != NULL && (c = cluster_by_name(r, a->cluster)) != NULL)
        return c;
    orch_key k;
    if (orch_key_parse(hint, ORCH_DEFAULT_MYSQL_PORT, &k, NULL, 0) != ORCH_OK)
        return NULL;
    reg_instance *in = registry_find(r, k.host, k.port);
    return in ? in->cluster : NULL;
}

/* ---- per instance ------------------------------------------------------------ */

bool reg_instance_is_stale(const reg_instance *i, int64_t now_ms, int64_t stale_after_ms)
{
    return now_ms - i->last_seen_ms > stale_after_ms;
}

Orch__PromotionRule reg_instance_promotion_rule(const reg_instance *i)
{
    if (i->op.promotion_override >= 0)
        return (Orch__PromotionRule)i->op.promotion_override;
    if (i->report->has_promotion_rule)
        return i->report->promotion_rule;
    return ORCH__PROMOTION_RULE__PROMOTION_NEUTRAL;
}

reg_instance **registry_take_dirty(registry *r, size_t *n)
{
    *n = r->ndirty;
    if (r->ndirty == 0)
        return NULL;
    reg_instance **out = malloc(r->cap * sizeof(*out));
    if (out == NULL) {
        *n = 0; /* flags stay set: the store gets them next time */
        return NULL;
    }
    /* Hand over the list itself; the fresh buffer becomes the new list. */
    reg_instance **list = r->dirty;
    r->dirty = out;
    r->ndirty = 0;
    for (size_t i = 0; i < *n; i++)
        list[i]->store_dirty = false;
    return list;
}

/* ---- operator state ------------------------------------------------------ */

static bool dup_opt(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return s == NULL || *out != NULL;
}

orch_err registry_set_operator_state(registry *r, const reg_operator_row *rows, size_t nrows,
                                     const reg_alias_row *aliases, size_t naliases)
{
    op_row *ops = NULL;
    calias *cas = NULL;
    size_t nops = 0, ncas = 0;
    orch_hmap ops_by_name, by_cluster, by_alias;
    orch_hmap_init(&ops_by_name);
    orch_hmap_init(&by_cluster);
    orch_hmap_init(&by_alias);

    /* Build the new snapshot aside; the old one stays until it is complete. */
    if (nrows > 0 && (ops = calloc(nrows, sizeof(*ops))) == NULL)
        goto nomem;
    for (; nops < nrows; nops++) {
        const reg_operator *src = &rows[nops].op;
        op_row *o = &ops[nops];
        fmt_name(rows[nops].key.host, rows[nops].key.port, o->name, sizeof(o->name));
        o->op.downtime_until_ms = src->downtime_until_ms;
        o->op.maintenance_until_ms = src->maintenance_until_ms;
        o->op.promotion_override = src->promotion_override;
        o->op.forgotten_at_ms = src->forgotten_at_ms;
        if (!dup_opt(src->downtime_owner, &o->op.downtime_owner) ||
            !dup_opt(src->downtime_reason, &o->op.downtime_reason) ||
            !dup_opt(src->maintenance_owner, &o->op.maintenance_owner) ||
            !dup_opt(src->maintenance_reason, &o->op.maintenance_reason)) {
            nops++; /* frees what was copied */
            goto nomem;
        }
        if (orch_hmap_put(&ops_by_name, o->name, o, NULL) != ORCH_OK) {
            nops++;
            goto nomem;
        }
    }
    if (naliases > 0 && (cas = calloc(naliases, sizeof(*cas))) == NULL)
        goto nomem;
    for (size_t i = 0; i < naliases; i++) {
        const reg_alias_row *a = &aliases[i];
        if (a->cluster == NULL || a->alias == NULL || a->alias[0] == '\0')
            continue;
        calias *c = &cas[ncas++];
        /* Cluster names are keys: normalize "DB1:3306" as the registry writes it. */
        orch_key k;
        char name[ORCH_KEY_STRLEN];
        if (orch_key_parse(a->cluster, 0, &k, NULL, 0) == ORCH_OK)
            fmt_name(k.host, k.port, name, sizeof(name));
        else
            snprintf(name, sizeof(name), "%s", a->cluster);
        if ((c->cluster = strdup(name)) == NULL || (c->alias = strdup(a->alias)) == NULL ||
            orch_hmap_put(&by_cluster, c->cluster, c, NULL) != ORCH_OK ||
            orch_hmap_put(&by_alias, c->alias, c, NULL) != ORCH_OK)
            goto nomem;
    }

    /* Swap in, re-point everything that borrowed from the old snapshot, free it. */
    ops_free(r->ops, r->nops);
    caliases_free(r->caliases, r->ncaliases);
    orch_hmap_fini(&r->ops_by_name);
    orch_hmap_fini(&r->calias_by_cluster);
    orch_hmap_fini(&r->calias_by_alias);
    r->ops = ops;
    r->nops = nops;
    r->ops_by_name = ops_by_name;
    r->caliases = cas;
    r->ncaliases = ncas;
    r->calias_by_cluster = by_cluster;
    r->calias_by_alias = by_alias;
    for (size_t i = 0; i < r->n; i++) {
        reg_instance *p = r->all[i];
        const op_row *o = orch_hmap_get(&r->ops_by_name, p->name);
        p->op = o ? o->op : no_operator_state;
    }
    for (size_t i = 0; i < r->nclusters; i++)
        r->clusters[i]->alias = cluster_alias(r, r->clusters[i]->name);
    for (size_t i = 0; i < r->nops; i++) {
        inst *in =
            r->ops[i].op.forgotten_at_ms > 0 ? orch_hmap_get(&r->by_name, r->ops[i].name) : NULL;
        if (in != NULL && in->pub.last_seen_wall_ms <= r->ops[i].op.forgotten_at_ms)
            forget_instance(r, in);
    }
    return ORCH_OK;

nomem:
    ops_free(ops, nops);
    caliases_free(cas, ncas);
    orch_hmap_fini(&ops_by_name);
    orch_hmap_fini(&by_cluster);
    orch_hmap_fini(&by_alias);
    return ORCH_ERR_NOMEM;
}
