/*
 * Unit tests for registry.c: tables of topologies (stars, chains, trees,
 * co-masters, cycles, unresolved and ambiguous masters, aliases), freshness,
 * store-dirty tracking, operator state, cluster hints, and a 220,000-report run
 * that checks the intake path stays cheap (correctness asserted, time printed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define GRACE      30000

/* One report, described for the builder; zero fields take the defaults noted. */
typedef struct rs {
    const char *host;
    unsigned port;       /* 0: 3306 */
    const char *master;  /* "host:port" or "host" (no port); NULL: no channel */
    const char *chan;    /* the channel's name; NULL: unnamed */
    const char *master2; /* a second channel, named chan2 */
    const char *chan2;
    bool rw;             /* server writable; default read-only */
    bool no_server;      /* no ServerStatus at all */
    const char *aliases; /* space-separated */
    uint8_t boot;        /* boot id: 16 bytes of this value */
    uint64_t seq;        /* 0: the next of a global counter */
    int64_t sent;        /* 0: 1000 + seq */
    uint64_t pos;        /* a counter: binlog and exec positions */
    bool io_stopped;     /* IO thread not running (a shape change) */
    int promo;           /* 0 absent, else promotion rule + 1 */
    bool down;           /* the agent says DOWN: no status, no channels (as agents send) */
} rs;

static uint64_t auto_seq;
static int64_t now_ms = 1000000;

/* Packs a stack-built report and unpacks it: a correctly owned object. */
static Orch__InstanceReport *build(const rs *s)
{
    Orch__InstanceReport r = ORCH__INSTANCE_REPORT__INIT;
    Orch__ServerStatus srv = ORCH__SERVER_STATUS__INIT;
    Orch__Channel ch[2] = {ORCH__CHANNEL__INIT, ORCH__CHANNEL__INIT};
    Orch__Channel *chp[2] = {&ch[0], &ch[1]};
    char mh[2][64], abuf[512], *aliases[16];
    const char *masters[2] = {s->master, s->master2};
    const char *names[2] = {s->chan, s->chan2};
    uint8_t boot[ORCH_BOOT_ID_LEN];

    memset(boot, s->boot, sizeof(boot));
    r.protocol_version = ORCH_PROTOCOL_VERSION;
    r.boot_id.data = boot;
    r.boot_id.len = sizeof(boot);
    r.seq = s->seq ? s->seq : ++auto_seq;
    r.sent_at_ms = s->sent ? s->sent : 1000 + (int64_t)r.seq;
    r.host = (char *)s->host;
    r.port = s->port ? s->port : 3306;
    r.state = s->down ? ORCH__PROBE_STATE__PROBE_DOWN : ORCH__PROBE_STATE__PROBE_UP;
    if (s->promo > 0) {
        r.has_promotion_rule = true;
        r.promotion_rule = (Orch__PromotionRule)(s->promo - 1);
    }
    if (!s->no_server && !s->down) {
        srv.has_read_only = true;
        srv.read_only = !s->rw;
        srv.has_binlog_pos = true;
        srv.binlog_pos = s->pos;
        r.server = &srv;
    }
    for (int i = 0; i < 2 && masters[i] != NULL && !s->down; i++) {
        snprintf(mh[i], sizeof(mh[i]), "%s", masters[i]);
        char *colon = strrchr(mh[i], ':');
        if (colon != NULL) {
            *colon = '\0';
            ch[i].has_master_port = true;
            ch[i].master_port = (uint32_t)strtoul(colon + 1, NULL, 10);
        }
        ch[i].master_host = mh[i];
        ch[i].name = (char *)names[i];
        ch[i].has_io_thread = true;
        ch[i].io_thread =
            s->io_stopped ? ORCH__THREAD_STATE__THREAD_NO : ORCH__THREAD_STATE__THREAD_YES;
        ch[i].has_exec_master_log_pos = true;
        ch[i].exec_master_log_pos = s->pos;
        r.n_channels++;
    }
    r.channels = chp;
    if (s->aliases != NULL) {
        snprintf(abuf, sizeof(abuf), "%s", s->aliases);
        char *save = NULL;
        for (char *t = strtok_r(abuf, " ", &save); t && r.n_aliases < N_ELEMS(aliases);
             t = strtok_r(NULL, " ", &save))
            aliases[r.n_aliases++] = t;
        r.aliases = aliases;
    }
    size_t len = orch__instance_report__get_packed_size(&r);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(orch__instance_report__pack(&r, buf), len);
    Orch__InstanceReport *out = orch__instance_report__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static reg_verdict apply(registry *r, const rs *s, reg_instance **out, char *msg, size_t len)
{
    now_ms += 10;
    return registry_apply(r, build(s), now_ms, now_ms + 1700000000000, GRACE, out, msg, len);
}

#define put(r, ...) put_((r), &(rs){__VA_ARGS__}, __LINE__)

static reg_instance *put_(registry *r, const rs *s, int line)
{
    char msg[256] = "";
    reg_instance *out = NULL;
    reg_verdict v = apply(r, s, &out, msg, sizeof(msg));
    if (v != REG_ACCEPTED)
        fail_msg("line %d: report from %s:%u: %s (%s)", line, s->host, s->port, reg_verdict_name(v),
                 msg);
    assert_non_null(out);
    return out;
}

static reg_instance *get(registry *r, const char *name)
{
    orch_key k;
    assert_int_equal(orch_key_parse(name, 0, &k, NULL, 0), ORCH_OK);
    return registry_get(r, &k);
}

/*
 * "name m=<master_key or -> d=<depth> c=<cluster>" plus " unresolved",
 * " ambiguous", " co"; also checks the fields agree with each other.
 */
static void describe(const reg_instance *i, char *buf, size_t len)
{
    char mk[ORCH_KEY_STRLEN] = "-";
    if (i->has_master)
        orch_key_format(&i->master_key, mk, sizeof(mk));
    assert_non_null(i->cluster);
    snprintf(buf, len, "%s m=%s d=%d c=%s%s%s%s", i->name, mk, i->depth, i->cluster->name,
             i->master_unresolved ? " unresolved" : "", i->master_ambiguous ? " ambiguous" : "",
             i->co_master ? " co" : "");
    if (i->master != NULL) {
        assert_true(i->has_master);
        assert_false(i->master_unresolved || i->master_ambiguous);
        assert_string_equal(i->master->name, mk);
        bool listed = false;
        for (size_t k = 0; k < i->master->nreplicas; k++)
            listed = listed || i->master->replicas[k] == i;
        assert_true(listed);
    } else if (i->has_master) {
        assert_true(i->master_unresolved != i->master_ambiguous);
    }
    for (size_t k = 1; k < i->nreplicas; k++)
        assert_true(orch_key_compare(&i->replicas[k - 1]->key, &i->replicas[k]->key) < 0);
    assert_true(i->depth == 0 ? i->cluster->master == i : i->cluster->master != i);
}

/* "name: member member ..." */
static void describe_cluster(const reg_cluster *c, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "%s:", c->name);
    for (size_t k = 0; k < c->nmembers && off < len; k++) {
        off += (size_t)snprintf(buf + off, len - off, " %s", c->members[k]->name);
        assert_ptr_equal(c->members[k]->cluster, c);
        if (k > 0) {
            const reg_instance *a = c->members[k - 1], *b = c->members[k];
            assert_true(a->depth < b->depth ||
                        (a->depth == b->depth && orch_key_compare(&a->key, &b->key) < 0));
        }
    }
    assert_ptr_equal(c->members[0], c->master);
}

typedef struct topo_case {
    const char *title;
    rs reports[8];            /* until host NULL */
    const char *clusters[6];  /* sorted by name, until NULL */
    const char *instances[8]; /* sorted by key, until NULL */
} topo_case;

static const topo_case topo_cases[] = {
    {"1+3 star",
     {{.host = "db1", .rw = true},
      {.host = "db2", .master = "db1:3306"},
      {.host = "db3", .master = "db1:3306"},
      {.host = "db4", .master = "db1:3306"}},
     {"db1:3306: db1:3306 db2:3306 db3:3306 db4:3306"},
     {"db1:3306 m=- d=0 c=db1:3306", "db2:3306 m=db1:3306 d=1 c=db1:3306",
      "db3:3306 m=db1:3306 d=1 c=db1:3306", "db4:3306 m=db1:3306 d=1 c=db1:3306"}},
    {"chain of 4, reported bottom up",
     {{.host = "db4", .master = "db3:3306"},
      {.host = "db3", .master = "db2:3306"},
      {.host = "db2", .master = "db1:3306"},
      {.host = "db1", .rw = true}},
     {"db1:3306: db1:3306 db2:3306 db3:3306 db4:3306"},
     {"db1:3306 m=- d=0 c=db1:3306", "db2:3306 m=db1:3306 d=1 c=db1:3306",
      "db3:3306 m=db2:3306 d=2 c=db1:3306", "db4:3306 m=db3:3306 d=3 c=db1:3306"}},
    {"two-level tree: members by depth, then key",
     {{.host = "m", .rw = true},
      {.host = "z1", .master = "m:3306"},
      {.host = "a1", .master = "m:3306"},
      {.host = "b2", .master = "z1:3306"},
      {.host = "a2", .master = "a1:3306"},
      {.host = "c2", .master = "z1:3306"}},
     {"m:3306: m:3306 a1:3306 z1:3306 a2:3306 b2:3306 c2:3306"},
     {"a1:3306 m=m:3306 d=1 c=m:3306", "a2:3306 m=a1:3306 d=2 c=m:3306",
      "b2:3306 m=z1:3306 d=2 c=m:3306", "c2:3306 m=z1:3306 d=2 c=m:3306", "m:3306 m=- d=0 c=m:3306",
      "z1:3306 m=m:3306 d=1 c=m:3306"}},
    {"co-masters, one writable: it is the top",
     {{.host = "db1", .master = "db2:3306"},
      {.host = "db2", .master = "db1:3306", .rw = true},
      {.host = "db3", .master = "db1:3306"}},
     {"db2:3306: db2:3306 db1:3306 db3:3306"},
     {"db1:3306 m=db2:3306 d=1 c=db2:3306 co", "db2:3306 m=db1:3306 d=0 c=db2:3306 co",
      "db3:3306 m=db1:3306 d=2 c=db2:3306"}},
    {"co-masters, none writable: smallest key",
     {{.host = "db2", .master = "db1:3306"}, {.host = "db1", .master = "db2:3306"}},
     {"db1:3306: db1:3306 db2:3306"},
     {"db1:3306 m=db2:3306 d=0 c=db1:3306 co", "db2:3306 m=db1:3306 d=1 c=db1:3306 co"}},
    {"co-masters, both writable (split brain): smallest key",
     {{.host = "db2", .master = "db1:3306", .rw = true},
      {.host = "db1", .master = "db2:3306", .rw = true}},
     {"db1:3306: db1:3306 db2:3306"},
     {"db1:3306 m=db2:3306 d=0 c=db1:3306 co", "db2:3306 m=db1:3306 d=1 c=db1:3306 co"}},
    {"3-cycle with a tail",
     {{.host = "c", .master = "b:3306"},
      {.host = "a", .master = "c:3306"},
      {.host = "b", .master = "a:3306"},
      {.host = "d", .master = "c:3306"}},
     {"a:3306: a:3306 b:3306 c:3306 d:3306"},
     {"a:3306 m=c:3306 d=0 c=a:3306 co", "b:3306 m=a:3306 d=1 c=a:3306 co",
      "c:3306 m=b:3306 d=2 c=a:3306 co", "d:3306 m=c:3306 d=3 c=a:3306"}},
    {"unresolved master: own cluster, flagged; its replicas stay under it",
     {{.host = "db1", .rw = true},
      {.host = "db2", .master = "ghost.example.com:3306"},
      {.host = "db3", .master = "db2:3306"}},
     {"db1:3306: db1:3306", "db2:3306: db2:3306 db3:3306"},
     {"db1:3306 m=- d=0 c=db1:3306", "db2:3306 m=ghost.example.com:3306 d=0 c=db2:3306 unresolved",
      "db3:3306 m=db2:3306 d=1 c=db2:3306"}},
    {"master named by alias: IP, other-case hostname, bracketed IPv6, no port",
     {{.host = "db1", .rw = true, .aliases = "10.0.0.1 DB1.Example.COM fd00::1"},
      {.host = "db2", .master = "10.0.0.1:3306"},
      {.host = "db3", .master = "db1.example.com:3306"},
      {.host = "db4", .master = "[FD00::1]:3306"},
      {.host = "db5", .master = "10.0.0.1"}},
     {"db1:3306: db1:3306 db2:3306 db3:3306 db4:3306 db5:3306"},
     {"db1:3306 m=- d=0 c=db1:3306", "db2:3306 m=db1:3306 d=1 c=db1:3306",
      "db3:3306 m=db1:3306 d=1 c=db1:3306", "db4:3306 m=db1:3306 d=1 c=db1:3306",
      "db5:3306 m=db1:3306 d=1 c=db1:3306"}},
    {"alias claimed by two hosts: ambiguous only on the ports both have",
     {{.host = "h1", .rw = true, .aliases = "vip"},
      {.host = "h1", .port = 3307, .rw = true},
      {.host = "h2", .rw = true, .aliases = "vip"},
      {.host = "r1", .master = "vip:3306"},
      {.host = "r2", .master = "vip:3307"}},
     {"h1:3306: h1:3306", "h1:3307: h1:3307 r2:3306", "h2:3306: h2:3306", "r1:3306: r1:3306"},
     {"h1:3306 m=- d=0 c=h1:3306", "h1:3307 m=- d=0 c=h1:3307", "h2:3306 m=- d=0 c=h2:3306",
      "r1:3306 m=vip:3306 d=0 c=r1:3306 ambiguous", "r2:3306 m=h1:3307 d=1 c=h1:3307"}},
    {"loopback names the replica's own host first; agents sharing 127.0.0.1",
     {{.host = "h1", .rw = true, .aliases = "127.0.0.1"},
      {.host = "h2", .rw = true, .aliases = "127.0.0.1"},
      {.host = "h2", .port = 3307, .master = "127.0.0.1:3306", .aliases = "127.0.0.1"},
      {.host = "h1", .port = 3308, .master = "localhost:3306"}},
     {"h1:3306: h1:3306 h1:3308", "h2:3306: h2:3306 h2:3307"},
     {"h1:3306 m=- d=0 c=h1:3306", "h1:3308 m=h1:3306 d=1 c=h1:3306", "h2:3306 m=- d=0 c=h2:3306",
      "h2:3307 m=h2:3306 d=1 c=h2:3306"}},
    {"two independent clusters",
     {{.host = "b1", .rw = true},
      {.host = "a1", .rw = true},
      {.host = "a2", .master = "a1:3306"},
      {.host = "b2", .master = "b1:3306"},
      {.host = "b3", .master = "b2:3306"}},
     {"a1:3306: a1:3306 a2:3306", "b1:3306: b1:3306 b2:3306 b3:3306"},
     {"a1:3306 m=- d=0 c=a1:3306", "a2:3306 m=a1:3306 d=1 c=a1:3306", "b1:3306 m=- d=0 c=b1:3306",
      "b2:3306 m=b1:3306 d=1 c=b1:3306", "b3:3306 m=b2:3306 d=2 c=b1:3306"}},
    {"defining channel: the unnamed one, else the first; port 0 means 3306",
     {{.host = "m1", .rw = true},
      {.host = "m2", .rw = true},
      {.host = "r1", .master = "m2:3306", .chan = "x", .master2 = "m1:3306", .chan2 = ""},
      {.host = "r2", .master = "m2:0", .chan = "x", .master2 = "m1:3306", .chan2 = "y"},
      {.host = "r3", .master = "r3:3306"}},
     {"m1:3306: m1:3306 r1:3306", "m2:3306: m2:3306 r2:3306", "r3:3306: r3:3306"},
     {"m1:3306 m=- d=0 c=m1:3306", "m2:3306 m=- d=0 c=m2:3306", "r1:3306 m=m1:3306 d=1 c=m1:3306",
      "r2:3306 m=m2:3306 d=1 c=m2:3306", "r3:3306 m=r3:3306 d=0 c=r3:3306 unresolved"}},
    {"no channel and an empty master host: no master",
     {{.host = "a", .no_server = true}, {.host = "b", .master = ""}},
     {"a:3306: a:3306", "b:3306: b:3306"},
     {"a:3306 m=- d=0 c=a:3306", "b:3306 m=- d=0 c=b:3306"}},
};

static void check_topology(registry *r, const char *title, const char *const *clusters,
                           const char *const *instances)
{
    char got[1024];
    size_t n, k;
    registry_refresh(r);
    reg_cluster *const *cl = registry_clusters(r, &n);
    for (k = 0; k < n; k++) {
        describe_cluster(cl[k], got, sizeof(got));
        if (clusters[k] == NULL || strcmp(got, clusters[k]) != 0)
            fail_msg("%s: cluster %zu is '%s', want '%s'", title, k, got,
                     clusters[k] ? clusters[k] : "(none)");
    }
    if (clusters[k] != NULL)
        fail_msg("%s: missing cluster '%s'", title, clusters[k]);
    reg_instance *const *all = registry_instances(r, &n);
    for (k = 0; k < n; k++) {
        describe(all[k], got, sizeof(got));
        if (instances[k] == NULL || strcmp(got, instances[k]) != 0)
            fail_msg("%s: instance %zu is '%s', want '%s'", title, k, got,
                     instances[k] ? instances[k] : "(none)");
    }
    if (instances[k] != NULL)
        fail_msg("%s: missing instance '%s'", title, instances[k]);
}

static void test_topologies(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(topo_cases); c++) {
        const topo_case *tc = &topo_cases[c];
        registry *r = registry_new(now_ms);
        assert_non_null(r);
        for (size_t k = 0; k < N_ELEMS(tc->reports) && tc->reports[k].host; k++)
            put_(r, &tc->reports[k], __LINE__);
        check_topology(r, tc->title, tc->clusters, tc->instances);
        /* The same reports again (newer seq): nothing moves. */
        for (size_t k = 0; k < N_ELEMS(tc->reports) && tc->reports[k].host; k++)
            put_(r, &tc->reports[k], __LINE__);
        check_topology(r, tc->title, tc->clusters, tc->instances);
        registry_free(r);
    }
}

static void test_replica_moves(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    put(r, .host = "db1", .rw = true);
    put(r, .host = "db2", .master = "db1:3306");
    put(r, .host = "db3", .master = "db1:3306");
    check_topology(r, "before", (const char *[]){"db1:3306: db1:3306 db2:3306 db3:3306", NULL},
                   (const char *[]){"db1:3306 m=- d=0 c=db1:3306",
                                    "db2:3306 m=db1:3306 d=1 c=db1:3306",
                                    "db3:3306 m=db1:3306 d=1 c=db1:3306", NULL});
    reg_instance *db3 = put(r, .host = "db3", .master = "db2:3306");
    /* The channel follows the new report at once; topology after refresh. */
    assert_string_equal(db3->channel->master_host, "db2");
    check_topology(r, "after", (const char *[]){"db1:3306: db1:3306 db2:3306 db3:3306", NULL},
                   (const char *[]){"db1:3306 m=- d=0 c=db1:3306",
                                    "db2:3306 m=db1:3306 d=1 c=db1:3306",
                                    "db3:3306 m=db2:3306 d=2 c=db1:3306", NULL});
    /* Failover: db2 promoted, db1 gone from the tree (now a replica of db2). */
    put(r, .host = "db2", .rw = true);
    put(r, .host = "db1", .master = "db2:3306");
    check_topology(r, "failover", (const char *[]){"db2:3306: db2:3306 db1:3306 db3:3306", NULL},
                   (const char *[]){"db1:3306 m=db2:3306 d=1 c=db2:3306",
                                    "db2:3306 m=- d=0 c=db2:3306",
                                    "db3:3306 m=db2:3306 d=1 c=db2:3306", NULL});
    /* A replica whose unresolved master appears later joins it. */
    put(r, .host = "db4", .master = "db9:3306");
    registry_refresh(r);
    assert_true(get(r, "db4:3306")->master_unresolved);
    put(r, .host = "db9", .master = "db2:3306");
    registry_refresh(r);
    reg_instance *db4 = get(r, "db4:3306");
    assert_false(db4->master_unresolved);
    assert_int_equal(db4->depth, 2);
    assert_string_equal(db4->cluster->name, "db2:3306");
    registry_free(r);
}

/*
 * A server that stops answering is reported without status or channels; the
 * registry keeps its last known ones, so a dead intermediate master stays where
 * it was (and is judged as one), and a dead replica stays in its cluster.
 */
static void test_down_keeps_last_known(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    put(r, .host = "db1", .rw = true);
    put(r, .host = "db2", .master = "db1:3306");
    put(r, .host = "db3", .master = "db2:3306");
    put(r, .host = "db4", .master = "db1:3306");
    static const char *const clusters[] = {"db1:3306: db1:3306 db2:3306 db4:3306 db3:3306", NULL};
    static const char *const inst[] = {
        "db1:3306 m=- d=0 c=db1:3306", "db2:3306 m=db1:3306 d=1 c=db1:3306",
        "db3:3306 m=db2:3306 d=2 c=db1:3306", "db4:3306 m=db1:3306 d=1 c=db1:3306", NULL};
    check_topology(r, "before", clusters, inst);
    reg_instance *db2 = put(r, .host = "db2", .down = true);
    reg_instance *db4 = put(r, .host = "db4", .down = true);
    check_topology(r, "intermediate master and a replica down", clusters, inst);
    assert_int_equal(db2->report->state, ORCH__PROBE_STATE__PROBE_DOWN);
    assert_non_null(db2->report->server); /* last known status */
    assert_true(db2->report->server->read_only);
    assert_int_equal(db4->report->n_channels, 1);
    /* still down: carried again from report to report */
    put(r, .host = "db2", .down = true);
    check_topology(r, "still down", clusters, inst);
    /* back up, moved below db4: the new report rules */
    put(r, .host = "db2", .master = "db4:3306");
    registry_refresh(r);
    assert_string_equal(get(r, "db2:3306")->master->name, "db4:3306");
    registry_free(r);
}

static void test_alias_list_changes(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    put(r, .host = "db1", .rw = true, .aliases = "old-name 10.0.0.1");
    put(r, .host = "db1", .port = 3307, .rw = true, .aliases = "old-name");
    put(r, .host = "db2", .master = "old-name:3306");
    registry_refresh(r);
    assert_ptr_equal(get(r, "db2:3306")->master, get(r, "db1:3306"));
    assert_ptr_equal(registry_find(r, "OLD-NAME", 3307), get(r, "db1:3307"));

    /* db1:3306 drops old-name; db1:3307 still claims it for host db1. */
    put(r, .host = "db1", .rw = true, .aliases = "new-name 10.0.0.1");
    registry_refresh(r);
    assert_ptr_equal(get(r, "db2:3306")->master, get(r, "db1:3306"));
    assert_ptr_equal(registry_find(r, "new-name", 3307), get(r, "db1:3307"));

    /* Now nobody on db1 claims it: the stale alias is gone. */
    put(r, .host = "db1", .port = 3307, .rw = true);
    registry_refresh(r);
    assert_null(registry_find(r, "old-name", 3306));
    assert_true(get(r, "db2:3306")->master_unresolved);
    assert_ptr_equal(registry_find(r, "10.0.0.1", 3306), get(r, "db1:3306"));
    assert_ptr_equal(registry_find(r, "db1", 3307), get(r, "db1:3307"));
    assert_null(registry_find(r, "db1", 3310));
    assert_null(registry_find(r, "bad host!", 3306));
    assert_null(registry_find(r, "db1", 0));

    /* A VIP moving: both claim it (ambiguous), then the old holder drops it. */
    put(r, .host = "db3", .rw = true, .aliases = "vip");
    put(r, .host = "db4", .rw = true, .aliases = "vip");
    put(r, .host = "db5", .master = "vip:3306");
    registry_refresh(r);
    assert_true(get(r, "db5:3306")->master_ambiguous);
    assert_null(registry_find(r, "vip", 3306));
    put(r, .host = "db3", .rw = true);
    registry_refresh(r);
    assert_ptr_equal(get(r, "db5:3306")->master, get(r, "db4:3306"));
    registry_free(r);
}

static void test_cluster_by_hint(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    put(r, .host = "db1", .rw = true, .aliases = "10.0.0.1");
    put(r, .host = "db2", .master = "db1:3306");
    put(r, .host = "db3", .port = 3307, .rw = true, .aliases = "10.0.0.3");
    put(r, .host = "db4", .port = 3307, .master = "10.0.0.3:3307");
    reg_alias_row al[] = {{"DB1:3306", "main"}, {"db3:3307", "other"}, {"db9:3306", "gone"}};
    assert_int_equal(registry_set_operator_state(r, NULL, 0, al, N_ELEMS(al)), ORCH_OK);
    reg_cluster *c1 = registry_cluster_by_hint(r, "db1:3306");
    reg_cluster *c3 = registry_cluster_by_hint(r, "db3:3307");
    assert_non_null(c1);
    assert_non_null(c3);
    assert_ptr_not_equal(c1, c3);
    assert_string_equal(c1->alias, "main");
    assert_string_equal(c3->alias, "other");
    static const struct {
        const char *hint;
        int want; /* 1: c1, 3: c3, 0: none */
    } cases[] = {
        {"db1:3306", 1},
        {"main", 1},
        {"db2:3306", 1},
        {"db2", 1},
        {"DB2", 1},
        {"10.0.0.1", 1},
        {"db1", 1},
        {"other", 3},
        {"db4:3307", 3},
        {"10.0.0.3:3307", 3},
        {"db4", 0},
        {"db3", 0},
        {"gone", 0},
        {"nope", 0},
        {"", 0},
        {"db1:99999", 0},
        {"bad host!:3306", 0},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        reg_cluster *c = registry_cluster_by_hint(r, cases[i].hint);
        reg_cluster *want = cases[i].want == 1 ? c1 : cases[i].want == 3 ? c3 : NULL;
        if (c != want)
            fail_msg("hint '%s': got %s", cases[i].hint, c ? c->name : "none");
    }
    assert_null(registry_cluster_by_hint(r, NULL));
    /* Replaced aliases follow at once, without a refresh. */
    reg_alias_row al2[] = {{"db1:3306", "renamed"}};
    assert_int_equal(registry_set_operator_state(r, NULL, 0, al2, 1), ORCH_OK);
    assert_string_equal(c1->alias, "renamed");
    assert_null(c3->alias);
    assert_null(registry_cluster_by_hint(r, "main"));
    assert_ptr_equal(registry_cluster_by_hint(r, "renamed"), c1);
    registry_free(r);
}

static void test_freshness_and_invalid(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    char msg[256];
    reg_instance *out = NULL;
    put(r, .host = "db1", .boot = 1, .seq = 10, .sent = 5000);

    /* Same boot: a sequence not above the newest is a replay. */
    assert_int_equal(
        apply(r, &(rs){.host = "db1", .boot = 1, .seq = 10, .sent = 5000}, &out, msg, sizeof(msg)),
        REG_REPLAY);
    assert_int_equal(
        apply(r, &(rs){.host = "db1", .boot = 1, .seq = 3, .sent = 6000}, &out, msg, sizeof(msg)),
        REG_REPLAY);
    assert_null(out);
    put(r, .host = "db1", .boot = 1, .seq = 11, .sent = 5001);

    /* Another boot that sent earlier, while the current boot is fresh: old. */
    assert_int_equal(
        apply(r, &(rs){.host = "db1", .boot = 2, .seq = 500, .sent = 4000}, &out, msg, sizeof(msg)),
        REG_OLD_BOOT);
    assert_null(out);
    /* A new boot sending later is taken, and then the old boot is the old one. */
    put(r, .host = "db1", .boot = 3, .seq = 1, .sent = 7000);
    assert_int_equal(
        apply(r, &(rs){.host = "db1", .boot = 1, .seq = 12, .sent = 6999}, &out, msg, sizeof(msg)),
        REG_OLD_BOOT);
    /* Freshness is per instance key: db1:3307 has its own sequence. */
    put(r, .host = "db1", .port = 3307, .boot = 1, .seq = 1, .sent = 1);
    /* Keys are case-insensitive: DB1 is db1. */
    assert_int_equal(
        apply(r, &(rs){.host = "DB1", .boot = 3, .seq = 1, .sent = 7000}, &out, msg, sizeof(msg)),
        REG_REPLAY);
    assert_int_equal(registry_count(r), 2);

    /* Invalid reports, each with a message. */
    static const struct {
        const char *host;
        long port;    /* -1: leave 3306 */
        int boot_len; /* -1: leave 16 */
        bool null_host;
        const char *want;
    } bad[] = {
        {"", -1, -1, false, "without a host"},
        {NULL, -1, -1, true, "without a host"},
        {"db5", 0, -1, false, "port 0"},
        {"db5", 70000, -1, false, "70000"},
        {"db 5", -1, -1, false, "invalid character"},
        {"db5", -1, 3, false, "boot id of 3 bytes"},
        {"db5", -1, 0, false, "boot id of 0 bytes"},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        Orch__InstanceReport *rep = build(&(rs){.host = bad[i].host ? bad[i].host : "x"});
        if (bad[i].null_host) {
            free(rep->host);
            rep->host = NULL;
        }
        if (bad[i].port >= 0)
            rep->port = (uint32_t)bad[i].port;
        if (bad[i].boot_len >= 0)
            rep->boot_id.len = (size_t)bad[i].boot_len;
        msg[0] = '\0';
        out = NULL;
        assert_int_equal(registry_apply(r, rep, now_ms, now_ms, GRACE, &out, msg, sizeof(msg)),
                         REG_INVALID);
        assert_null(out);
        if (strstr(msg, bad[i].want) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", i, msg, bad[i].want);
    }
    assert_int_equal(registry_apply(r, NULL, now_ms, now_ms, GRACE, NULL, msg, sizeof(msg)),
                     REG_INVALID);
    assert_int_equal(registry_count(r), 2);
    assert_string_equal(reg_verdict_name(REG_OLD_BOOT), "old_boot");
    registry_free(r);
}

static void test_store_dirty(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    size_t n;
    reg_instance **d = registry_take_dirty(r, &n);
    assert_null(d);
    assert_int_equal(n, 0);

    reg_instance *db1 = put(r, .host = "db1", .rw = true, .pos = 100);
    reg_instance *db2 = put(r, .host = "db2", .master = "db1:3306", .pos = 100);
    assert_true(db1->store_dirty && db2->store_dirty);
    d = registry_take_dirty(r, &n);
    assert_int_equal(n, 2);
    assert_ptr_equal(d[0], db1);
    assert_ptr_equal(d[1], db2);
    free(d);
    assert_false(db1->store_dirty || db2->store_dirty);
    assert_null(registry_take_dirty(r, &n));
    assert_int_equal(n, 0);

    /* Counters move: the shape does not. */
    uint64_t shape = db2->shape;
    put(r, .host = "db1", .rw = true, .pos = 200);
    put(r, .host = "db2", .master = "db1:3306", .pos = 150);
    assert_false(db1->store_dirty || db2->store_dirty);
    assert_int_equal(db2->shape, shape);
    assert_null(registry_take_dirty(r, &n));

    /* The IO thread stops: a shape change (once, however many reports say so). */
    put(r, .host = "db2", .master = "db1:3306", .pos = 150, .io_stopped = true);
    put(r, .host = "db2", .master = "db1:3306", .pos = 151, .io_stopped = true);
    assert_true(db2->store_dirty);
    assert_int_not_equal(db2->shape, shape);
    d = registry_take_dirty(r, &n);
    assert_int_equal(n, 1);
    assert_ptr_equal(d[0], db2);
    free(d);
    assert_false(db2->store_dirty);
    /* Not a topology change: db2 is still db1's replica. */
    registry_refresh(r);
    assert_ptr_equal(db2->master, db1);

    /* Rejected reports change nothing. */
    char msg[64];
    assert_int_equal(apply(r, &(rs){.host = "db2", .seq = 1, .pos = 1}, NULL, msg, sizeof(msg)),
                     REG_REPLAY);
    assert_false(db2->store_dirty);

    /* A new leader marks everything: each instance once on the list, and a
     * shape change right after does not add it twice. */
    size_t nall;
    reg_instance *const *all = registry_instances(r, &nall);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < nall; i++)
            registry_mark_dirty(r, all[i]);
    put(r, .host = "db2", .master = "db1:3306", .io_stopped = true);
    d = registry_take_dirty(r, &n);
    assert_int_equal(n, nall);
    free(d);
    d = registry_take_dirty(r, &n);
    assert_int_equal(n, 0);
    assert_null(d);
    registry_free(r);
}

static void test_operator_state(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    reg_instance *db1 = put(r, .host = "db1", .rw = true);
    reg_instance *db2 = put(r, .host = "db2", .master = "db1:3306", .promo = 1 + 3);
    assert_int_equal(db1->op.promotion_override, -1);
    assert_int_equal(reg_instance_promotion_rule(db1), ORCH__PROMOTION_RULE__PROMOTION_NEUTRAL);
    assert_int_equal(reg_instance_promotion_rule(db2), ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT);

    char owner[16], reason[16];
    snprintf(owner, sizeof(owner), "alice");
    snprintf(reason, sizeof(reason), "disk swap");
    reg_operator_row rows[3] = {
        {.op = {.downtime_until_ms = 5000,
                .downtime_owner = owner,
                .downtime_reason = reason,
                .promotion_override = -1}},
        {.op = {.maintenance_until_ms = 6000,
                .maintenance_owner = owner,
                .promotion_override = ORCH__PROMOTION_RULE__PROMOTION_PREFER}},
        {.op = {.promotion_override = ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT}},
    };
    assert_int_equal(orch_key_parse("DB1:3306", 0, &rows[0].key, NULL, 0), ORCH_OK);
    assert_int_equal(orch_key_parse("db2:3306", 0, &rows[1].key, NULL, 0), ORCH_OK);
    assert_int_equal(orch_key_parse("db9:3306", 0, &rows[2].key, NULL, 0), ORCH_OK);
    assert_int_equal(registry_set_operator_state(r, rows, N_ELEMS(rows), NULL, 0), ORCH_OK);
    /* Copied in: the caller's strings may change. */
    snprintf(owner, sizeof(owner), "mallory");
    assert_int_equal(db1->op.downtime_until_ms, 5000);
    assert_string_equal(db1->op.downtime_owner, "alice");
    assert_string_equal(db1->op.downtime_reason, "disk swap");
    assert_null(db1->op.maintenance_owner);
    assert_int_equal(db2->op.maintenance_until_ms, 6000);
    assert_string_equal(db2->op.maintenance_owner, "alice");
    assert_int_equal(reg_instance_promotion_rule(db2), ORCH__PROMOTION_RULE__PROMOTION_PREFER);

    /* A row for a key nobody reports yet applies when it appears. */
    reg_instance *db9 = put(r, .host = "db9", .master = "db1:3306");
    assert_int_equal(reg_instance_promotion_rule(db9), ORCH__PROMOTION_RULE__PROMOTION_PREFER_NOT);
    /* Reports do not disturb operator state. */
    put(r, .host = "db1", .rw = true, .pos = 7);
    assert_int_equal(db1->op.downtime_until_ms, 5000);

    /* Replaced wholesale: keys not listed are cleared. */
    reg_operator_row rows2[] = {{.op = {.maintenance_until_ms = 9000, .promotion_override = -1}}};
    assert_int_equal(orch_key_parse("db9:3306", 0, &rows2[0].key, NULL, 0), ORCH_OK);
    assert_int_equal(registry_set_operator_state(r, rows2, 1, NULL, 0), ORCH_OK);
    assert_int_equal(db1->op.downtime_until_ms, 0);
    assert_null(db1->op.downtime_owner);
    assert_int_equal(db1->op.promotion_override, -1);
    assert_int_equal(reg_instance_promotion_rule(db2), ORCH__PROMOTION_RULE__PROMOTION_MUST_NOT);
    assert_int_equal(db9->op.maintenance_until_ms, 9000);
    assert_int_equal(reg_instance_promotion_rule(db9), ORCH__PROMOTION_RULE__PROMOTION_NEUTRAL);
    assert_int_equal(registry_set_operator_state(r, NULL, 0, NULL, 0), ORCH_OK);
    assert_int_equal(db9->op.maintenance_until_ms, 0);
    /* Set again, then freed with the registry. */
    assert_int_equal(registry_set_operator_state(r, rows, N_ELEMS(rows), NULL, 0), ORCH_OK);
    registry_free(r);
}

/*
 * forget: an instance reported before the forget leaves every map and cluster
 * (its memory stays valid until the next refresh); one reported after it stays;
 * a report after the forget brings a forgotten one back.
 */
static void test_forget(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    put(r, .host = "db1", .rw = true);
    reg_instance *db2 = put(r, .host = "db2", .master = "db1:3306", .aliases = "db2.example");
    put(r, .host = "db3", .master = "db1:3306");
    put(r, .host = "db4", .master = "db2:3306"); /* below the one forgotten */
    registry_refresh(r);
    int64_t wall_db2 = db2->last_seen_wall_ms;
    reg_instance *db3 = get(r, "db3:3306");

    reg_operator_row rows[2] = {{.op = {.promotion_override = -1, .forgotten_at_ms = wall_db2}},
                                {.op = {.promotion_override = -1, .forgotten_at_ms = 1}}};
    assert_int_equal(orch_key_parse("db2:3306", 0, &rows[0].key, NULL, 0), ORCH_OK);
    assert_int_equal(orch_key_parse("db3:3306", 0, &rows[1].key, NULL, 0), ORCH_OK);
    assert_int_equal(registry_set_operator_state(r, rows, N_ELEMS(rows), NULL, 0), ORCH_OK);
    /* db2 (last seen at the forget) goes; db3 (seen after time 1) stays */
    assert_int_equal(registry_count(r), 3);
    assert_null(get(r, "db2:3306"));
    assert_null(registry_find(r, "db2.example", 3306));
    assert_ptr_equal(get(r, "db3:3306"), db3);
    assert_string_equal(db2->name, "db2:3306"); /* still readable until the refresh */
    size_t n;
    reg_instance *const *all = registry_instances(r, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(all[i]->name, "db2:3306");
    reg_cluster *const *cl = registry_clusters(r, &n); /* refreshes: db4 now tops its own */
    assert_int_equal(n, 2);
    assert_int_equal(cl[0]->nmembers, 2); /* db1, db3 */
    assert_string_equal(cl[1]->name, "db4:3306");
    assert_true(get(r, "db4:3306")->master_unresolved);

    /* its agent reports again: back, and a new snapshot with the same row keeps it */
    db2 = put(r, .host = "db2", .master = "db1:3306", .aliases = "db2.example");
    assert_int_equal(registry_count(r), 4);
    assert_ptr_equal(registry_find(r, "db2.example", 3306), db2);
    assert_int_equal(registry_set_operator_state(r, rows, N_ELEMS(rows), NULL, 0), ORCH_OK);
    assert_ptr_equal(get(r, "db2:3306"), db2);
    registry_clusters(r, &n);
    assert_int_equal(n, 1);
    /* forgotten again, then freed with the registry before any refresh */
    rows[0].op.forgotten_at_ms = db2->last_seen_wall_ms + 1;
    assert_int_equal(registry_set_operator_state(r, rows, N_ELEMS(rows), NULL, 0), ORCH_OK);
    assert_int_equal(registry_count(r), 3);
    registry_free(r);
}

static void test_stale(void **state)
{
    (void)state;
    registry *r = registry_new(now_ms);
    assert_int_equal(registry_started_ms(r), now_ms);
    reg_instance *db1 = put(r, .host = "db1", .rw = true);
    int64_t seen = now_ms;
    assert_int_equal(db1->first_seen_ms, seen);
    assert_int_equal(db1->last_seen_ms, seen);
    assert_int_equal(db1->last_seen_wall_ms, seen + 1700000000000);
    assert_false(reg_instance_is_stale(db1, seen, 3000));
    assert_false(reg_instance_is_stale(db1, seen + 3000, 3000));
    assert_true(reg_instance_is_stale(db1, seen + 3001, 3000));
    put(r, .host = "db1", .rw = true);
    assert_int_equal(db1->first_seen_ms, seen);
    assert_true(db1->last_seen_ms > seen);
    assert_false(reg_instance_is_stale(db1, seen + 3001, 3000));
    /* A rejected report does not refresh. */
    char msg[64];
    int64_t last = db1->last_seen_ms;
    assert_int_equal(apply(r, &(rs){.host = "db1", .seq = 1}, NULL, msg, sizeof(msg)), REG_REPLAY);
    assert_int_equal(db1->last_seen_ms, last);
    registry_free(r);
}

static void test_empty(void **state)
{
    (void)state;
    registry *r = registry_new(0);
    size_t n = 99;
    registry_refresh(r);
    (void)registry_clusters(r, &n);
    assert_int_equal(n, 0);
    (void)registry_instances(r, &n);
    assert_int_equal(n, 0);
    assert_null(registry_cluster_by_hint(r, "db1"));
    orch_key k;
    assert_int_equal(orch_key_parse("db1:3306", 0, &k, NULL, 0), ORCH_OK);
    assert_null(registry_get(r, &k));
    registry_free(r);
    registry_free(NULL);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * 20,000 instances (2,000 masters with 9 replicas each), then 200,000
 * re-reports with moving counters and an unchanged shape, then one refresh.
 * Correctness is asserted; time is only printed (timing asserts flake).
 */
static void test_scale(void **state)
{
    (void)state;
    enum { MASTERS = 2000, PER = 10, N = MASTERS * PER, REREPORTS = 200000 };
    registry *r = registry_new(now_ms);
    char host[64], master[80], msg[128];
    double applying = 0;
    struct timespec t0, ta;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < N + REREPORTS; i++) {
        long k = i % N, m = k / PER * PER;
        snprintf(host, sizeof(host), "db%05ld.example.com", k);
        snprintf(master, sizeof(master), "db%05ld.example.com:3306", m);
        char alias[64];
        snprintf(alias, sizeof(alias), "10.%ld.%ld.%ld", k >> 16, (k >> 8) & 255, k & 255);
        Orch__InstanceReport *rep = build(&(rs){.host = host,
                                                .master = k == m ? NULL : master,
                                                .rw = k == m,
                                                .aliases = alias,
                                                .pos = (uint64_t)i});
        now_ms++;
        clock_gettime(CLOCK_MONOTONIC, &ta);
        reg_verdict v = registry_apply(r, rep, now_ms, now_ms, GRACE, NULL, msg, sizeof(msg));
        applying += seconds_since(&ta);
        if (v != REG_ACCEPTED)
            fail_msg("report %ld: %s %s", i, reg_verdict_name(v), msg);
    }
    clock_gettime(CLOCK_MONOTONIC, &ta);
    registry_refresh(r);
    double refreshing = seconds_since(&ta);
    double total = seconds_since(&t0);
    printf("registry: %d reports for %d instances + %d unchanged-shape re-reports: "
           "registry_apply %.3f s total (%.0f ns/report), one refresh %.3f s, "
           "including building reports %.3f s\n",
           N + REREPORTS, N, REREPORTS, applying, applying * 1e9 / (N + REREPORTS), refreshing,
           total);

    assert_int_equal(registry_count(r), N);
    size_t n;
    reg_cluster *const *cl = registry_clusters(r, &n);
    assert_int_equal(n, MASTERS);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cl[i]->nmembers, PER);
        assert_int_equal(cl[i]->master->nreplicas, PER - 1);
        for (size_t j = 1; j < cl[i]->nmembers; j++)
            assert_int_equal(cl[i]->members[j]->depth, 1);
        if (i > 0)
            assert_true(strcmp(cl[i - 1]->name, cl[i]->name) < 0);
    }
    reg_instance *const *all = registry_instances(r, &n);
    assert_int_equal(n, N);
    for (size_t i = 1; i < n; i++)
        assert_true(orch_key_compare(&all[i - 1]->key, &all[i]->key) < 0);
    /* Only the first report of each instance was a shape change. */
    reg_instance **d = registry_take_dirty(r, &n);
    assert_int_equal(n, N);
    free(d);
    /* 10.0.1.7 is db00263, the third replica of db00260. */
    reg_cluster *c = registry_cluster_by_hint(r, "db00260.example.com");
    assert_non_null(c);
    assert_ptr_equal(registry_find(r, "10.0.1.7", 3306), c->master->replicas[2]);
    registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topologies),
        cmocka_unit_test(test_replica_moves),
        cmocka_unit_test(test_down_keeps_last_known),
        cmocka_unit_test(test_alias_list_changes),
        cmocka_unit_test(test_cluster_by_hint),
        cmocka_unit_test(test_freshness_and_invalid),
        cmocka_unit_test(test_store_dirty),
        cmocka_unit_test(test_operator_state),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
