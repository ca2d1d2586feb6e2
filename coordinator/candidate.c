/*
 * candidate.c: the choice of a dead master's successor (DESIGN.md section 4,
 * "Decision rules", "Recovery" step 4 and "No acknowledged write may be lost").
 *
 * The choice runs in four passes over the frozen replicas:
 *
 *   1. refusals that leave nothing to rank: no replica, mixed flavors, nobody
 *      fresh;
 *   2. what the replicas received: each one's received set (less its known
 *      errant transactions), the union of them all (what the most advanced
 *      holds) and how far behind it each one is; diverged sets are noted;
 *   3. exclusions (must_not, binary logs, version series, errant, stale), then
 *      for every eligible replica the set it can reach, catching up from the
 *      best source if it lacks something, and the ranking;
 *   4. objections that protect data (diverged sets, unreachable transactions,
 *      semi-sync acknowledgements): each refuses unless forced. Then the
 *      follow plan: who is repointed, who is lost.
 *
 * Every rule is its own function below, with the reasoning and the safer
 * reading taken where the design is silent written above it. Work happens in
 * key order wherever order could show, so that the same replicas in any input
 * order give the same decision and the same texts.
 */
#include "candidate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SET_TEXT_MAX 96 /* GTID sets quoted in texts are cut to this, "..." marking the cut */

/* What the chooser knows about one replica; w[i] is about in[i]. */
typedef struct work {
    const candidate_input *in;
    size_t idx;
    orch_gtid_set *recv; /* fresh only: (received | executed) - errant; owned */
    bool errant;         /* the caller reported errant transactions */
    bool excluded;
    char excl[CANDIDATE_WHY_MAX]; /* exclusion reasons, "; "-separated */
    uint64_t behind;              /* transactions of `all` that recv lacks */
    int tier;                     /* eligible only: 0 normal, 1 prefer_not, 2 last resort */
    size_t source;                /* eligible only: catch-up source (input index) or NONE */
    orch_gtid_set *reach;         /* eligible only: what it holds after catch-up; owned */
    uint64_t reach_missing;       /* transactions of `all` that reach lacks */
    unsigned position;            /* rank among the eligible, 1-based; 0 = excluded */
} work;

typedef struct chooser {
    const candidate_input *in;
    size_t n;
    const candidate_params *p;
    work *w;
    const candidate_input **by_key; /* the input sorted by key */
    work **ranked;                  /* the eligible, best first */
    size_t n_ranked;
    orch_gtid_flavor flavor;
    orch_gtid_set *all;     /* union of every fresh replica's recv */
    bool any_most_advanced; /* some fresh replica holds `all` (false when sets diverged) */
    char objections[CANDIDATE_REASON_MAX];
} chooser;

static const candidate_params no_params;

/* ---- small helpers --------------------------------------------------------- */

static void appendf(char *buf, size_t size, const char *fmt, ...) ORCH_PRINTF(3, 4);

/* Appends to the NUL-terminated text in buf (size bytes), truncating safely. */
static void appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strnlen(buf, size);
    if (len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* Appends one reason to a "; "-separated list. */
static void add_reason(char *buf, size_t size, const char *fmt, ...) ORCH_PRINTF(3, 4);

static void add_reason(char *buf, size_t size, const char *fmt, ...)
{
    if (buf[0] != '\0')
        appendf(buf, size, "; ");
    size_t len = strnlen(buf, size);
    if (len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* The canonical text of s, cut to SET_TEXT_MAX - 1 bytes with "..." at the cut. */
static void set_text(const orch_gtid_set *s, char buf[SET_TEXT_MAX])
{
    size_t full = orch_gtid_set_format_to(s, buf, SET_TEXT_MAX);
    if (full >= SET_TEXT_MAX)
        memcpy(buf + SET_TEXT_MAX - 4, "...", 4);
}

/* "transaction" or "transactions", for counts in texts. */
static const char *tx(uint64_t n)
{
    return n == 1 ? "transaction" : "transactions";
}

static bool known_version(const orch_version *v)
{
    return v->major > 0;
}

static bool named(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Location names compare without regard to case; an unknown one matches nothing. */
static bool same_place(const char *a, const char *b)
{
    return named(a) && named(b) && strcasecmp(a, b) == 0;
}

static bool semi_sync(const candidate_input *r)
{
    return r->semi_sync_enabled || r->semi_sync_status;
}

static bool has_binlogs(const candidate_input *r)
{
    return r->log_bin && r->log_slave_updates;
}

/* Last resort: downtimed, held by an operation, or deliberately delayed. */
static bool last_resort(const candidate_input *r)
{
    return r->downtimed || r->maintenance || r->sql_delay_s > 0;
}

const char *candidate_rule_name(candidate_rule rule)
{
    switch (rule) {
    case CANDIDATE_PREFER:
        return "prefer";
    case CANDIDATE_NEUTRAL:
        return "neutral";
    case CANDIDATE_PREFER_NOT:
        return "prefer_not";
    case CANDIDATE_MUST_NOT:
        return "must_not";
    }
    return "unknown";
}

const char *candidate_follow_name(candidate_follow f)
{
    switch (f) {
    case CANDIDATE_FOLLOW_NONE:
        return "none";
    case CANDIDATE_FOLLOW_PROMOTED:
        return "promoted";
    case CANDIDATE_FOLLOW_OK:
        return "follows";
    case CANDIDATE_FOLLOW_LOST:
        return "lost";
    case CANDIDATE_FOLLOW_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

/* The GTID flavor a replica's server speaks: MySQL and Percona share one. 0 when unknown. */
static orch_gtid_flavor family_of(const candidate_input *r)
{
    switch (r->version.flavor) {
    case ORCH_FLAVOR_MARIADB:
        return ORCH_GTID_MARIADB;
    case ORCH_FLAVOR_MYSQL:
    case ORCH_FLAVOR_PERCONA:
        return ORCH_GTID_MYSQL;
    case ORCH_FLAVOR_UNKNOWN:
        break;
    }
    if (r->fresh && r->executed != NULL)
        return orch_gtid_set_flavor(r->executed);
    return (orch_gtid_flavor)0;
}

static int key_cmp(const void *pa, const void *pb)
{
    const candidate_input *a = *(const candidate_input *const *)pa;
    const candidate_input *b = *(const candidate_input *const *)pb;
    return strcmp(a->key, b->key);
}

/* ---- pass 1: input and refusals that leave nothing to rank ------------------- */

/* Caller bugs (ORCH_ERR_INVAL): see candidate_choose in the header. Sorts c->by_key. */
static orch_err validate(chooser *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const candidate_input *r = &c->in[i];
        if (r->key == NULL)
            return ORCH_ERR_INVAL;
        c->by_key[i] = r;
        if (!r->fresh)
            continue;
        if (r->executed == NULL)
            return ORCH_ERR_INVAL;
        orch_gtid_flavor f = orch_gtid_set_flavor(r->executed);
        if (r->received != NULL && orch_gtid_set_flavor(r->received) != f)
            return ORCH_ERR_INVAL;
        if (r->errant != NULL && orch_gtid_set_flavor(r->errant) != f)
            return ORCH_ERR_INVAL;
        if (family_of(r) != f)
            return ORCH_ERR_INVAL;
    }
    qsort(c->by_key, c->n, sizeof(c->by_key[0]), key_cmp);
    for (size_t i = 1; i < c->n; i++)
        if (strcmp(c->by_key[i - 1]->key, c->by_key[i]->key) == 0)
            return ORCH_ERR_INVAL;
    return ORCH_OK;
}

/*
 * Mixed flavors. A MariaDB replica cannot replicate from a MySQL master with
 * GTIDs nor the other way round, and the two GTID models (a position per
 * domain, a set per uuid) cannot be compared: no transaction count, no catch-up
 * plan would mean anything. The design is silent; the safer reading refuses
 * outright, and force does not override it (there is nothing sound to choose
 * by). Stale replicas count with their last known flavor: the cluster is mixed
 * whether or not a member answered. Returns true (reason written) when mixed.
 */
static bool rule_mixed_flavors(const chooser *c, char *reason, size_t len)
{
    const candidate_input *first = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const candidate_input *r = c->by_key[i];
        orch_gtid_flavor f = family_of(r);
        if (f == 0)
            continue;
        if (first == NULL) {
            first = r;
            continue;
        }
        if (f != family_of(first)) {
            snprintf(reason, len,
                     "the replicas mix flavors: %s is %s, %s is %s; leave it to a human",
                     first->key, orch_gtid_flavor_name(family_of(first)), r->key,
                     orch_gtid_flavor_name(f));
            return true;
        }
    }
    return false;
}

/* ---- pass 2: what the replicas received ---------------------------------------- */

/*
 * What a fresh replica received, less its known errant transactions. Received
 * is united with executed again (the caller may pass the raw Retrieved_Gtid_Set
 * or Gtid_IO_Pos; a replica restarted since may show an empty one). It is the
 * received set that counts, not the executed one (orchestrator #1312): relay
 * log content is on the replica and will be applied.
 *
 * Errant transactions were never the master's: they are not "received" and do
 * not make a replica more advanced. MySQL: exact set difference. MariaDB: a
 * position cannot forget transactions; the subtraction is exact when errant
 * writes sit in a domain of their own and otherwise leaves nothing of the
 * shared domain, so such a replica claims nothing there (it can neither be a
 * candidate nor serve a catch-up, see rule_errant and can_serve).
 */
static orch_err clean_received(const candidate_input *r, orch_gtid_set **out)
{
    orch_gtid_set *u = NULL;
    orch_err err =
        orch_gtid_set_union(r->received != NULL ? r->received : r->executed, r->executed, &u);
    if (err != ORCH_OK)
        return err;
    if (r->errant != NULL && !orch_gtid_set_is_empty(r->errant)) {
        orch_gtid_set *clean = NULL;
        err = orch_gtid_set_subtract(u, r->errant, &clean);
        orch_gtid_set_free(u);
        if (err != ORCH_OK)
            return err;
        u = clean;
    }
    *out = u;
    return ORCH_OK;
}

/*
 * Diverged sets. Replicas of one master receive one stream, so their received
 * sets are nested (each a prefix of the master's). When two fresh replicas each
 * hold transactions the other lacks, after their known errant transactions are
 * set aside, something unexplained happened: writes on a replica nobody
 * flagged, a replica that was once elsewhere, a split brain. No single replica
 * is then the most advanced, a catch-up would fail (MariaDB strict mode) or
 * copy the foreign writes (MySQL), and whatever is chosen loses one side. The
 * safer reading: treat it as errant, refuse unless forced, and name the pair.
 */
static void rule_diverged(chooser *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const work *a = &c->w[c->by_key[i] - c->in];
        if (a->recv == NULL)
            continue;
        for (size_t j = i + 1; j < c->n; j++) {
            const work *b = &c->w[c->by_key[j] - c->in];
            if (b->recv == NULL || orch_gtid_set_compare(a->recv, b->recv) != ORCH_GTID_DIVERGED)
                continue;
            uint64_t ab = orch_gtid_set_count_missing(a->recv, b->recv);
            uint64_t ba = orch_gtid_set_count_missing(b->recv, a->recv);
            add_reason(c->objections, sizeof(c->objections),
                       "received GTID sets diverge: %s has %llu %s %s lacks and %s has %llu %s "
                       "lacks (errant or split brain)",
                       a->in->key, (unsigned long long)ab, tx(ab), b->in->key, b->in->key,
                       (unsigned long long)ba, a->in->key);
            return;
        }
    }
}

/*
 * The most advanced: the union of every fresh replica's received set is what
 * the cluster still holds of the dead master's stream; a replica holding all
 * of it is the most advanced. Each replica's `behind` is what it lacks of it.
 * Stale replicas are unknown (design: a stale agent neither confirms nor
 * vetoes): they add nothing and are behind by 0.
 */
static orch_err most_advanced(chooser *c)
{
    c->all = orch_gtid_set_new(c->flavor);
    if (c->all == NULL)
        return ORCH_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++) {
        if (c->w[i].recv == NULL)
            continue;
        orch_gtid_set *u = NULL;
        orch_err err = orch_gtid_set_union(c->all, c->w[i].recv, &u);
        if (err != ORCH_OK)
            return err;
        orch_gtid_set_free(c->all);
        c->all = u;
    }
    for (size_t i = 0; i < c->n; i++) {
        work *w = &c->w[i];
        if (w->recv == NULL)
            continue;
        w->behind = orch_gtid_set_count_missing(c->all, w->recv);
        if (orch_gtid_set_contains(w->recv, c->all))
            c->any_most_advanced = true;
    }
    return ORCH_OK;
}

/* ---- pass 3: exclusions ------------------------------------------------------------ */

static void exclude(work *w, const char *fmt, ...) ORCH_PRINTF(2, 3);

static void exclude(work *w, const char *fmt, ...)
{
    w->excluded = true;
    if (w->excl[0] != '\0')
        appendf(w->excl, sizeof(w->excl), "; ");
    size_t len = strnlen(w->excl, sizeof(w->excl));
    if (len + 1 >= sizeof(w->excl))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->excl + len, sizeof(w->excl) - len, fmt, ap);
    va_end(ap);
}

/*
 * Stale: its agent did not answer the freeze. The design: a stale replica is
 * never a candidate. Nor is it a catch-up source: it was not frozen and its
 * sets are unknown.
 */
static bool rule_stale(work *w)
{
    if (w->in->fresh)
        return false;
    exclude(w, "stale (its agent did not answer the freeze)");
    return true;
}

/*
 * must_not: never promoted, whatever it holds (it may still serve a catch-up).
 * A rule value outside the enum is a caller bug we cannot rank: excluded too.
 */
static void rule_must_not(work *w)
{
    if (w->in->rule == CANDIDATE_MUST_NOT)
        exclude(w, "must_not");
    else if (w->in->rule < CANDIDATE_PREFER || w->in->rule > CANDIDATE_MUST_NOT)
        exclude(w, "unknown promotion rule %d", (int)w->in->rule);
}

/*
 * Binary logs. A new master without log_bin cannot serve anyone; one without
 * log_slave_updates has no binary log of what it replicated, so replicas
 * behind it cannot fetch those transactions by GTID (and a catch-up source
 * needs the same). The design says both "never one without binary logs if
 * another has them" and "no eligible replica with binary logs: refuse, leave
 * it to a human"; read together: such a replica is always excluded, and when
 * none has them the choice refuses (candidate_choose says so in the reason).
 */
static void rule_binlogs(work *w)
{
    if (!w->in->log_bin)
        exclude(w, "no binary log");
    else if (!w->in->log_slave_updates)
        exclude(w, "no log_slave_updates");
}

/*
 * Version series. Replication runs from an older or equal series to a newer
 * one, not back: an 8.4 master cannot serve 8.0 replicas (first two numbers:
 * 8.0 != 8.4; MariaDB 10.6 < 10.11). A candidate of a newer series than any
 * other fresh replica is excluded: the replicas it would serve are the other
 * fresh ones, all of them (even must_not or downtimed ones follow the new
 * master). With no other fresh replica it serves nobody ("unless it is the only
 * replica"). Stale replicas do not count (unknown; if one turns out older, the
 * follow plan reports it lost). A replica whose version is unknown cannot be
 * checked: excluded itself (the safer reading), and ignored as someone served.
 */
static void rule_newer_series(const chooser *c, work *w)
{
    if (!known_version(&w->in->version)) {
        exclude(w, "unknown server version");
        return;
    }
    const candidate_input *oldest = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const candidate_input *r = c->by_key[i];
        if (r == w->in || !r->fresh || !known_version(&r->version))
            continue;
        if (oldest == NULL || orch_version_compare_series(&r->version, &oldest->version) < 0)
            oldest = r;
    }
    if (oldest != NULL && orch_version_compare_series(&w->in->version, &oldest->version) > 0)
        exclude(w, "%d.%d serves %d.%d replicas (%s)", w->in->version.major, w->in->version.minor,
                oldest->version.major, oldest->version.minor, oldest->key);
}

/*
 * Errant GTIDs (the caller's finding, see candidate_input.errant). Promoting a
 * replica with errant transactions would hand writes the master never had to
 * every replica (MySQL) or break them (MariaDB strict mode): excluded, with the
 * set quoted for the audit log. It is also no catch-up source (can_serve).
 */
static void rule_errant(work *w)
{
    if (!w->errant)
        return;
    char text[SET_TEXT_MAX];
    set_text(w->in->errant, text);
    exclude(w, "errant GTIDs %s", text);
}

/*
 * Tiers among the eligible, applied after what a candidate can reach (see
 * rank_cmp). Design: "a downtimed or maintenance-locked replica is taken only
 * if no other is eligible" and "prefer_not is chosen only when nothing else
 * is eligible". Read literally each would wait for the other; the order taken
 * here: prefer/neutral, then prefer_not, then downtimed / maintenance /
 * delayed. A prefer_not is an operator's standing "not unless needed"; a
 * downtimed or locked replica may be mid-backup, mid-upgrade or held by an
 * operation, so it is the riskier one. A replica with an SQL delay (the design
 * is silent) is a deliberately lagging copy, often kept against mistakes, and
 * would have to apply hours of backlog: last resort too.
 */
static int rule_tier(const candidate_input *r)
{
    if (last_resort(r))
        return 2;
    return r->rule == CANDIDATE_PREFER_NOT ? 1 : 0;
}

/* ---- pass 3: catch-up and ranking --------------------------------------------------- */

/*
 * Whether s can serve a catch-up of cand; when not, why (for texts). Catching
 * up means cand replicates from s with GTID auto-positioning, so s must be
 * fresh (frozen, its sets known), have binary logs of what it replicated
 * (log_bin and log_slave_updates: its received transactions reach its binlog
 * once it has applied them), carry no errant transactions (cand would copy
 * them), and not be of a newer series than cand. Its promotion rule, downtime
 * or maintenance do not matter: it only serves, it is not promoted.
 */
static bool can_serve(const work *s, const work *cand, char *why, size_t len)
{
    const candidate_input *r = s->in;
    if (why != NULL && len > 0)
        why[0] = '\0';
    if (!r->fresh) {
        if (why != NULL)
            snprintf(why, len, "stale");
        return false;
    }
    if (!r->log_bin || !r->log_slave_updates) {
        if (why != NULL)
            snprintf(why, len, "%s", !r->log_bin ? "no binary log" : "no log_slave_updates");
        return false;
    }
    if (s->errant) {
        if (why != NULL)
            snprintf(why, len, "errant GTIDs");
        return false;
    }
    if (!known_version(&r->version) || !known_version(&cand->in->version)) {
        if (why != NULL)
            snprintf(why, len, "unknown server version");
        return false;
    }
    if (orch_version_compare_series(&r->version, &cand->in->version) > 0) {
        if (why != NULL)
            snprintf(why, len, "%d.%d cannot serve %d.%d", r->version.major, r->version.minor,
                     cand->in->version.major, cand->in->version.minor);
        return false;
    }
    return true;
}

/*
 * What an eligible replica can reach, and from whom. The design: "if a
 * preferred candidate is behind the most advanced replica, let it catch up
 * from that replica first"; so any eligible replica that lacks something picks
 * the source that brings it furthest: the most advanced when that one can
 * serve, even if it is excluded or ranked low itself (must_not, prefer_not,
 * downtimed, of a newer series than some replica but not than this
 * candidate). Ties go to the
 * source with the least unapplied relay log (it must apply before it serves),
 * then to key order. "Most received transactions", the first criterion, is
 * then measured on what a candidate reaches: the candidate that does not need
 * a catch-up only wins further down (rank_cmp).
 */
static orch_err catch_up_plan(const chooser *c, work *cand)
{
    cand->source = CANDIDATE_NONE;
    cand->reach = orch_gtid_set_clone(cand->recv);
    if (cand->reach == NULL)
        return ORCH_ERR_NOMEM;
    cand->reach_missing = cand->behind;
    if (cand->behind == 0)
        return ORCH_OK;
    uint64_t best_unapplied = 0;
    for (size_t i = 0; i < c->n; i++) {
        const work *s = &c->w[c->by_key[i] - c->in];
        if (s == cand || !can_serve(s, cand, NULL, 0))
            continue;
        orch_gtid_set *u = NULL;
        orch_err err = orch_gtid_set_union(cand->recv, s->recv, &u);
        if (err != ORCH_OK)
            return err;
        uint64_t missing = orch_gtid_set_count_missing(c->all, u);
        uint64_t unapplied = orch_gtid_set_count_missing(s->recv, s->in->executed);
        bool better = missing < cand->reach_missing ||
                      (cand->source != CANDIDATE_NONE && missing == cand->reach_missing &&
                       unapplied < best_unapplied);
        if (!better) {
            orch_gtid_set_free(u);
            continue;
        }
        orch_gtid_set_free(cand->reach);
        cand->reach = u;
        cand->reach_missing = missing;
        cand->source = s->idx;
        best_unapplied = unapplied;
    }
    return ORCH_OK;
}

static bool in_master_dc(const chooser *c, const candidate_input *r)
{
    return same_place(r->dc, c->p->master_dc);
}

static bool in_master_region(const chooser *c, const candidate_input *r)
{
    return same_place(r->region, c->p->master_region);
}

/* qsort passes no context: each item carries what the comparator needs from the params. */
typedef struct rank_item {
    work *w;
    bool same_dc, same_region;
} rank_item;

/*
 * The order among the eligible (design "Decision rules", with the readings of
 * catch_up_plan and rule_tier):
 *   1. most received transactions, as reached after catch-up (fewest missing);
 *      data comes before preference: a prefer_not or downtimed replica that
 *      keeps every transaction beats a neutral one that would lose some;
 *   2. tier: prefer/neutral, then prefer_not, then downtimed / maintenance /
 *      delayed;
 *   3. promotion rule: prefer > neutral > prefer_not;
 *   4. same data center as the old master, then same region;
 *   5. fewest transactions to catch up (its own received set): the design
 *      lists received first and lag last; with 1. measured after catch-up this
 *      is where a replica's own received set still counts, so the most
 *      advanced wins a tie without a catch-up step;
 *   6. lag: less first, unknown (NULL) last;
 *   7. key, so that the order is total and the input order never shows.
 */
static int rank_cmp(const void *pa, const void *pb)
{
    const rank_item *x = pa, *y = pb;
    const work *a = x->w, *b = y->w;
    if (a->reach_missing != b->reach_missing)
        return a->reach_missing < b->reach_missing ? -1 : 1;
    if (a->tier != b->tier)
        return a->tier < b->tier ? -1 : 1;
    if (a->in->rule != b->in->rule)
        return a->in->rule < b->in->rule ? -1 : 1;
    if (x->same_dc != y->same_dc)
        return x->same_dc ? -1 : 1;
    if (x->same_region != y->same_region)
        return x->same_region ? -1 : 1;
    if (a->behind != b->behind)
        return a->behind < b->behind ? -1 : 1;
    if (a->in->lag_known != b->in->lag_known)
        return a->in->lag_known ? -1 : 1;
    if (a->in->lag_known && a->in->lag_s != b->in->lag_s)
        return a->in->lag_s < b->in->lag_s ? -1 : 1;
    return strcmp(a->in->key, b->in->key);
}

static orch_err rank_sort(chooser *c)
{
    if (c->n_ranked == 0)
        return ORCH_OK;
    rank_item *items = calloc(c->n_ranked, sizeof(*items));
    if (items == NULL)
        return ORCH_ERR_NOMEM;
    for (size_t i = 0; i < c->n_ranked; i++) {
        items[i].w = c->ranked[i];
        items[i].same_dc = in_master_dc(c, c->ranked[i]->in);
        items[i].same_region = in_master_region(c, c->ranked[i]->in);
    }
    qsort(items, c->n_ranked, sizeof(*items), rank_cmp);
    for (size_t i = 0; i < c->n_ranked; i++) {
        c->ranked[i] = items[i].w;
        c->ranked[i]->position = (unsigned)(i + 1);
    }
    free(items);
    return ORCH_OK;
}

/* ---- pass 4: objections ---------------------------------------------------------------- */

/*
 * Unreachable transactions. When even the best candidate cannot reach
 * everything some fresh replica received (that replica cannot serve: no
 * binary logs, newer series, errant; or the sets diverged), promoting it loses
 * those transactions, and in the design they are the point of "most received
 * first". The design is silent on what then; the safer reading refuses unless
 * forced, naming the replica that holds them and why it cannot serve. (When
 * that replica is itself eligible it would have ranked first: reach is
 * measured before everything else.)
 */
static void rule_unreachable(chooser *c, const work *best)
{
    if (best->reach_missing == 0)
        return;
    for (size_t i = 0; i < c->n; i++) {
        const work *h = &c->w[c->by_key[i] - c->in];
        if (h->recv == NULL || h == best)
            continue;
        uint64_t m = orch_gtid_set_count_missing(h->recv, best->reach);
        if (m == 0)
            continue;
        char why[96];
        if (!can_serve(h, best, why, sizeof(why)))
            add_reason(c->objections, sizeof(c->objections),
                       "the best candidate %s cannot reach %llu %s %s received "
                       "(%s cannot serve them: %s)",
                       best->in->key, (unsigned long long)m, tx(m), h->in->key, h->in->key, why);
        else
            add_reason(c->objections, sizeof(c->objections),
                       "the best candidate %s cannot reach %llu %s %s received", best->in->key,
                       (unsigned long long)m, tx(m), h->in->key);
        return;
    }
}

/*
 * Semi-sync ("No acknowledged write may be lost"). A transaction a semi-sync
 * replica received may have been acknowledged to the client: after catch-up
 * the new master must hold everything every semi-sync replica received, or
 * the recovery refuses unless forced. A replica counts as semi-sync when the
 * plugin is enabled or its status was ON: the freeze stops the IO thread,
 * which turns the status OFF, so the variable is what still tells.
 *
 * A stale semi-sync replica (design silent): its agent is unknown, but its
 * server may hold an acknowledged transaction no fresh replica has (the
 * master's host and that replica's died together). Nothing proves the new
 * master holds what it acknowledged; the safer reading refuses unless forced.
 */
static void rule_semi_sync(chooser *c, const work *best)
{
    for (size_t i = 0; i < c->n; i++) {
        const work *r = &c->w[c->by_key[i] - c->in];
        if (!semi_sync(r->in) || r == best)
            continue;
        if (r->recv == NULL) {
            add_reason(c->objections, sizeof(c->objections),
                       "semi-sync replica %s did not answer the freeze: it may have "
                       "acknowledged transactions no fresh replica holds",
                       r->in->key);
            continue;
        }
        uint64_t m = orch_gtid_set_count_missing(r->recv, best->reach);
        if (m > 0)
            add_reason(c->objections, sizeof(c->objections),
                       "semi-sync replica %s received %llu %s the new master %s would lack "
                       "(they may have been acknowledged to clients)",
                       r->in->key, (unsigned long long)m, tx(m), best->in->key);
    }
}

/*
 * Who follows the new master (Recovery step 6: "a replica that cannot follow
 * is reported as lost and downtimed, never silently left"). A replica follows
 * by GTID auto-positioning from its executed set, so it can follow when the
 * new master holds everything it executed (target) and it is not of an older
 * series than the new master. Relay log content it received beyond that is
 * discarded on repointing and fetched again from the new master. A stale
 * replica is unknown, unless its last known version already rules it out.
 */
static orch_err follow_plan(const chooser *c, const work *chosen, const orch_gtid_set *target,
                            candidate_entry *e)
{
    const candidate_input *r = c->in + e->index;
    const orch_version *nv = &chosen->in->version;
    if (e->index == chosen->idx) {
        e->follow = CANDIDATE_FOLLOW_PROMOTED;
        return ORCH_OK;
    }
    if (known_version(&r->version) && known_version(nv) &&
        orch_version_compare_series(&r->version, nv) < 0) {
        e->follow = CANDIDATE_FOLLOW_LOST;
        snprintf(e->follow_why, sizeof(e->follow_why), "lost: %d.%d cannot replicate from %d.%d",
                 r->version.major, r->version.minor, nv->major, nv->minor);
        return ORCH_OK;
    }
    if (!r->fresh) {
        e->follow = CANDIDATE_FOLLOW_UNKNOWN;
        snprintf(e->follow_why, sizeof(e->follow_why),
                 "unknown: stale; repoint it when its agent is heard again");
        return ORCH_OK;
    }
    if (orch_gtid_set_contains(target, r->executed)) {
        e->follow = CANDIDATE_FOLLOW_OK;
        return ORCH_OK;
    }
    orch_gtid_set *extra = NULL;
    orch_err err = orch_gtid_set_subtract(r->executed, target, &extra);
    if (err != ORCH_OK)
        return err;
    char text[SET_TEXT_MAX];
    set_text(extra, text);
    e->follow = CANDIDATE_FOLLOW_LOST;
    uint64_t m = orch_gtid_set_count_missing(r->executed, target);
    snprintf(e->follow_why, sizeof(e->follow_why), "lost: has %llu %s the new master lacks: %s",
             (unsigned long long)m, tx(m), text);
    orch_gtid_set_free(extra);
    return ORCH_OK;
}

/* ---- the result ------------------------------------------------------------------------- */

static void refuse(candidate_result *out, bool forceable, const char *reason)
{
    out->refused = true;
    out->reason[0] = '\0';
    appendf(out->reason, sizeof(out->reason), "%s", reason);
    if (forceable)
        appendf(out->reason, sizeof(out->reason), " (force overrides)");
    out->chosen = CANDIDATE_NONE;
    out->catch_up_from = CANDIDATE_NONE;
}

/* The human text of an eligible replica's rank. */
static void describe_rank(const chooser *c, const work *w, bool chosen, char *buf, size_t len)
{
    const candidate_input *r = w->in;
    buf[0] = '\0';
    appendf(buf, len, "%u%s: %s", w->position, chosen ? " (chosen)" : "",
            candidate_rule_name(r->rule));
    if (in_master_dc(c, r))
        appendf(buf, len, ", same dc");
    else if (in_master_region(c, r))
        appendf(buf, len, ", same region");
    else if (named(c->p->master_dc) || named(c->p->master_region))
        appendf(buf, len, ", elsewhere");
    if (r->downtimed)
        appendf(buf, len, ", downtimed");
    if (r->maintenance)
        appendf(buf, len, ", in maintenance");
    if (r->sql_delay_s > 0)
        appendf(buf, len, ", delayed %us", (unsigned)r->sql_delay_s);
    if (w->tier == 2)
        appendf(buf, len, " (last resort)");
    if (w->behind == 0)
        appendf(buf, len, ", most advanced");
    else if (c->any_most_advanced)
        appendf(buf, len, ", behind the most advanced by %llu %s", (unsigned long long)w->behind,
                tx(w->behind));
    else
        appendf(buf, len, ", lacks %llu %s other replicas received", (unsigned long long)w->behind,
                tx(w->behind));
    if (w->source != CANDIDATE_NONE)
        appendf(buf, len, ", catches up from %s", c->in[w->source].key);
    if (w->reach_missing > 0)
        appendf(buf, len, ", would still lack %llu", (unsigned long long)w->reach_missing);
    if (r->lag_known)
        appendf(buf, len, ", lag %llds", (long long)r->lag_s);
    else
        appendf(buf, len, ", lag unknown");
}

/*
 * Fills out->ranking (eligible in rank order, then the rest by key) and, when
 * a replica was chosen, the follow plan and the lost list.
 */
static orch_err fill_ranking(const chooser *c, candidate_result *out, const work *chosen)
{
    out->ranking = calloc(c->n, sizeof(*out->ranking));
    out->lost = calloc(c->n, sizeof(*out->lost));
    if (out->ranking == NULL || out->lost == NULL)
        return ORCH_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < c->n_ranked; i++) {
        const work *w = c->ranked[i];
        candidate_entry *e = &out->ranking[k++];
        e->index = w->idx;
        e->position = w->position;
        e->eligible = true;
        e->behind = w->behind;
        e->catch_up_from = w->source;
        describe_rank(c, w, w == chosen, e->why, sizeof(e->why));
    }
    for (size_t i = 0; i < c->n; i++) {
        const work *w = &c->w[c->by_key[i] - c->in];
        if (!w->excluded)
            continue;
        candidate_entry *e = &out->ranking[k++];
        e->index = w->idx;
        e->behind = w->behind;
        e->catch_up_from = CANDIDATE_NONE;
        appendf(e->why, sizeof(e->why), "excluded: %s", w->excl);
        if (w->recv != NULL && w->behind == 0 && c->any_most_advanced)
            appendf(e->why, sizeof(e->why), " (most advanced)");
        else if (w->recv != NULL && w->behind > 0)
            appendf(e->why, sizeof(e->why), " (behind by %llu %s)", (unsigned long long)w->behind,
                    tx(w->behind));
        if (chosen != NULL && chosen->source == w->idx)
            appendf(e->why, sizeof(e->why), "; the new master catches up from it");
    }
    out->n_ranking = k;
    if (chosen == NULL)
        return ORCH_OK;
    bool *lost = calloc(c->n, sizeof(*lost));
    if (lost == NULL)
        return ORCH_ERR_NOMEM;
    for (size_t j = 0; j < out->n_ranking; j++) {
        candidate_entry *e = &out->ranking[j];
        orch_err err = follow_plan(c, chosen, out->target, e);
        if (err != ORCH_OK) {
            free(lost);
            return err;
        }
        lost[e->index] = e->follow == CANDIDATE_FOLLOW_LOST;
    }
    /* Lost replicas are listed in key order, whatever their rank. */
    for (size_t i = 0; i < c->n; i++) {
        size_t idx = (size_t)(c->by_key[i] - c->in);
        if (lost[idx])
            out->lost[out->n_lost++] = idx;
    }
    free(lost);
    return ORCH_OK;
}

void candidate_result_fini(candidate_result *out)
{
    if (out == NULL)
        return;
    orch_gtid_set_free(out->target);
    free(out->ranking);
    free(out->lost);
    memset(out, 0, sizeof(*out));
    out->chosen = CANDIDATE_NONE;
    out->catch_up_from = CANDIDATE_NONE;
}

static void chooser_fini(chooser *c)
{
    if (c->w != NULL)
        for (size_t i = 0; i < c->n; i++) {
            orch_gtid_set_free(c->w[i].recv);
            orch_gtid_set_free(c->w[i].reach);
        }
    free(c->w);
    free(c->by_key);
    free(c->ranked);
    orch_gtid_set_free(c->all);
}

/* Passes 2 to 4 for a cluster of one flavor with at least one fresh replica. */
static orch_err choose_among_fresh(chooser *c, candidate_result *out, const work **chosen)
{
    orch_err err;
    for (size_t i = 0; i < c->n; i++) {
        work *w = &c->w[i];
        if (!w->in->fresh)
            continue;
        if (c->flavor == 0)
            c->flavor = orch_gtid_set_flavor(w->in->executed);
        w->errant = w->in->errant != NULL && !orch_gtid_set_is_empty(w->in->errant);
        if ((err = clean_received(w->in, &w->recv)) != ORCH_OK)
            return err;
    }
    rule_diverged(c);
    if ((err = most_advanced(c)) != ORCH_OK)
        return err;

    bool any_binlogs = false;
    for (size_t i = 0; i < c->n; i++) {
        work *w = &c->w[i];
        if (rule_stale(w))
            continue;
        any_binlogs = any_binlogs || has_binlogs(w->in);
        rule_must_not(w);
        rule_binlogs(w);
        rule_newer_series(c, w);
        rule_errant(w);
        if (w->excluded)
            continue;
        w->tier = rule_tier(w->in);
        if ((err = catch_up_plan(c, w)) != ORCH_OK)
            return err;
        c->ranked[c->n_ranked++] = w;
    }
    if ((err = rank_sort(c)) != ORCH_OK)
        return err;
    if (c->n_ranked == 0) {
        refuse(out, false,
               any_binlogs ? "no eligible replica (every one is excluded, see the ranking); "
                             "leave it to a human"
                           : "no replica has binary logs (log_bin and log_slave_updates): "
                             "none can serve as master; leave it to a human");
        return ORCH_OK;
    }

    const work *best = c->ranked[0];
    const char *d = c->p->designated;
    if (d != NULL && d[0] != '\0') {
        best = NULL;
        for (size_t k = 0; k < c->n_ranked && best == NULL; k++)
            if (strcmp(c->ranked[k]->in->key, d) == 0)
                best = c->ranked[k];
        if (best == NULL) {
            const work *x = NULL;
            for (size_t i = 0; i < c->n && x == NULL; i++)
                if (strcmp(c->w[i].in->key, d) == 0)
                    x = &c->w[i];
            char why[CANDIDATE_REASON_MAX];
            snprintf(why, sizeof(why), "the designated replica %.300s %s%.600s", d,
                     x == NULL       ? "is not a replica of the failed master"
                     : !x->in->fresh ? "did not answer the freeze"
                                     : "is excluded: ",
                     x != NULL && x->in->fresh ? x->excl : "");
            refuse(out, false, why);
            return ORCH_OK;
        }
    }
    out->unreachable = best->reach_missing;
    rule_unreachable(c, best);
    rule_semi_sync(c, best);
    if (c->objections[0] != '\0') {
        if (!c->p->force) {
            refuse(out, true, c->objections);
            return ORCH_OK;
        }
        appendf(out->forced_past, sizeof(out->forced_past), "%s", c->objections);
    }
    out->chosen = best->idx;
    out->catch_up_from = best->source;
    out->target = orch_gtid_set_clone(best->reach);
    if (out->target == NULL)
        return ORCH_ERR_NOMEM;
    *chosen = best;
    return ORCH_OK;
}

orch_err candidate_choose(const candidate_input *in, size_t n, const candidate_params *p,
                          candidate_result *out)
{
    if (out == NULL)
        return ORCH_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->chosen = CANDIDATE_NONE;
    out->catch_up_from = CANDIDATE_NONE;
    if (n > 0 && in == NULL)
        return ORCH_ERR_INVAL;
    if (n > CANDIDATE_MAX_REPLICAS)
        return ORCH_ERR_TOOBIG;
    if (n == 0) {
        refuse(out, false, "no replicas: nothing to promote");
        return ORCH_OK;
    }

    chooser c = {.in = in, .n = n, .p = p != NULL ? p : &no_params};
    const work *chosen = NULL;
    char reason[CANDIDATE_REASON_MAX];
    orch_err err = ORCH_ERR_NOMEM;
    c.w = calloc(n, sizeof(*c.w));
    c.by_key = calloc(n, sizeof(*c.by_key));
    c.ranked = calloc(n, sizeof(*c.ranked));
    if (c.w == NULL || c.by_key == NULL || c.ranked == NULL)
        goto done;
    if ((err = validate(&c)) != ORCH_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        c.w[i].in = &in[i];
        c.w[i].idx = i;
        c.w[i].source = CANDIDATE_NONE;
    }

    size_t n_fresh = 0;
    for (size_t i = 0; i < n; i++)
        n_fresh += in[i].fresh ? 1 : 0;
    if (rule_mixed_flavors(&c, reason, sizeof(reason))) {
        for (size_t i = 0; i < n; i++)
            exclude(&c.w[i], "the cluster mixes flavors");
        refuse(out, false, reason);
    } else if (n_fresh == 0) {
        /* Design: "with no fresh replica at all there is no verdict"; nothing to choose. */
        for (size_t i = 0; i < n; i++)
            rule_stale(&c.w[i]);
        refuse(out, false, "no replica answered the freeze (all stale); leave it to a human");
    } else if ((err = choose_among_fresh(&c, out, &chosen)) != ORCH_OK) {
        goto done;
    }
    err = fill_ranking(&c, out, chosen);

done:
    chooser_fini(&c);
    if (err != ORCH_OK)
        candidate_result_fini(out);
    return err;
}

candidate_rule candidate_rule_of(Orch__PromotionRule r)
{
    switch (r) {
    case ORCH__PROMOTION_RULE__PROMOTION_PREFER:
        return CANDIDATE_PREFER;
    case ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT:
        return CANDIDATE_PREFER_NOT;
    case ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT:
        return CANDIDATE_MUST_NOT;
    default:
        return CANDIDATE_NEUTRAL;
    }
}
