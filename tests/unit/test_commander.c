/*
 * Unit tests for coordinator/commander.c against fake agents: nng rep sockets
 * on loopback (threads in this process) that answer correctly, slowly, never,
 * or wrongly (bad HMAC, wrong command id or epoch, another host, garbage), and
 * check what the commander sends (signature, epoch, id, target, leader).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "commander.h"
#include "wire.h"

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "unit-test-secret"
#define HOST   "db-fake.example"

typedef enum fake_mode {
    FAKE_OK = 0,
    FAKE_SILENT,      /* never answers */
    FAKE_BAD_HMAC,    /* signs with another key */
    FAKE_WRONG_ID,    /* answers command_id + 1 */
    FAKE_WRONG_EPOCH, /* answers epoch + 1 */
    FAKE_GARBAGE,     /* bytes that are no envelope */
    FAKE_KIND,        /* an envelope of kind COMMAND */
    FAKE_OTHER_HOST,  /* a correct reply signed by another host under its own key */
    FAKE_BAD_BODY,    /* a signed envelope whose body is no CommandReply */
    FAKE_STATE_HOST,  /* the state in the reply is about another host */
    FAKE_OLD_VERSION, /* a reply of protocol version 99 */
} fake_mode;

typedef struct fake {
    nng_socket sock;
    int port;
    char url[64];
    const char *host;
    orch_hmac_key key;
    atomic_int mode;
    atomic_int delay_ms;
    atomic_bool stop;
    atomic_int received, auth_failed;
    pthread_t thread;
    pthread_mutex_t mu;
    Orch__Command last; /* copy of scalar fields of the last verified command */
    char last_target[128], last_leader[128];
    uint64_t ids[64];
    size_t nids;
} fake;

static void send_bytes(fake *f, const uint8_t *buf, size_t len)
{
    nng_send(f->sock, (void *)buf, len, 0);
}

static void answer(fake *f, const Orch__Command *c, fake_mode mode)
{
    Orch__CommandReply rep = ORCH__COMMAND_REPLY__INIT;
    Orch__InstanceReport st = ORCH__INSTANCE_REPORT__INIT;
    uint8_t boot[ORCH_BOOT_ID_LEN] = {7};
    uint8_t *body = NULL, *env = NULL;
    size_t body_len = 0, env_len = 0;

    if (mode == FAKE_GARBAGE) {
        static const uint8_t junk[] = {0xff, 0x01, 0x02, 'j', 'u', 'n', 'k'};
        send_bytes(f, junk, sizeof(junk));
        return;
    }
    rep.protocol_version = mode == FAKE_OLD_VERSION ? 99 : ORCH_PROTOCOL_VERSION;
    rep.command_id = c->command_id + (mode == FAKE_WRONG_ID ? 1 : 0);
    rep.epoch = c->epoch + (mode == FAKE_WRONG_EPOCH ? 1 : 0);
    rep.result = ORCH__COMMAND_RESULT__RESULT_OK;
    rep.has_obeyed_epoch = 1;
    rep.obeyed_epoch = c->epoch;
    rep.has_duration_us = 1;
    rep.duration_us = 42;
    if (c->type != ORCH__COMMAND_TYPE__CMD_PING) {
        st.protocol_version = ORCH_PROTOCOL_VERSION;
        st.boot_id.data = boot;
        st.boot_id.len = sizeof(boot);
        st.seq = 1;
        st.sent_at_ms = orch_wall_ms();
        st.host = (char *)(mode == FAKE_STATE_HOST ? "someone-else" : f->host);
        st.port = 3306;
        st.state = ORCH__PROBE_STATE__PROBE_UP;
        rep.state = &st;
    }
    assert_int_equal(orch_wire_pack(&rep.base, &body, &body_len), ORCH_OK);
    if (mode == FAKE_BAD_BODY) {
        memset(body, 0xff, body_len);
    }
    const char *signer = f->host;
    orch_hmac_key key = f->key;
    Orch__Envelope__Kind kind = ORCH__ENVELOPE__KIND__REPLY;
    if (mode == FAKE_BAD_HMAC)
        key.b[0] ^= 1;
    if (mode == FAKE_OTHER_HOST) {
        signer = "db-other.example";
        assert_int_equal(orch_wire_derive_key(SECRET, strlen(SECRET), signer, &key), ORCH_OK);
    }
    if (mode == FAKE_KIND)
        kind = ORCH__ENVELOPE__KIND__COMMAND;
    assert_int_equal(orch_wire_seal(kind, signer, &key, body, body_len, &env, &env_len), ORCH_OK);
    send_bytes(f, env, env_len);
    free(body);
    free(env);
}

/* Like the real agent: a command that does not verify is refused, signed with our key. */
static void refuse(fake *f)
{
    Orch__CommandReply rep = ORCH__COMMAND_REPLY__INIT;
    uint8_t *body = NULL, *env = NULL;
    size_t body_len = 0, env_len = 0;
    rep.protocol_version = ORCH_PROTOCOL_VERSION;
    rep.result = ORCH__COMMAND_RESULT__RESULT_BAD_REQUEST;
    rep.error = (char *)"command authentication failed (wrong key for host)";
    assert_int_equal(orch_wire_pack(&rep.base, &body, &body_len), ORCH_OK);
    assert_int_equal(orch_wire_seal(ORCH__ENVELOPE__KIND__REPLY, f->host, &f->key, body, body_len,
                                    &env, &env_len),
                     ORCH_OK);
    send_bytes(f, env, env_len);
    free(body);
    free(env);
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        char *buf = NULL;
        size_t len = 0;
        int rv = nng_recv(f->sock, &buf, &len, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        atomic_fetch_add(&f->received, 1);
        Orch__Envelope *env = NULL;
        char msg[200];
        Orch__Command *c = NULL;
        if (orch_wire_open((uint8_t *)buf, len, &env, msg, sizeof(msg)) != ORCH_OK ||
            env->kind != ORCH__ENVELOPE__KIND__COMMAND || strcmp(env->host, f->host) != 0 ||
            orch_wire_verify(env, &f->key) != ORCH_OK ||
            (c = orch__command__unpack(NULL, env->body.len, env->body.data)) == NULL) {
            atomic_fetch_add(&f->auth_failed, 1);
            refuse(f);
        } else {
            pthread_mutex_lock(&f->mu);
            f->last = *c;
            snprintf(f->last_target, sizeof(f->last_target), "%s", c->target_host);
            snprintf(f->last_leader, sizeof(f->last_leader), "%s", c->leader ? c->leader : "");
            if (f->nids < 64)
                f->ids[f->nids++] = c->command_id;
            pthread_mutex_unlock(&f->mu);
            int delay = atomic_load(&f->delay_ms);
            if (delay > 0)
                orch_sleep_ms(delay);
            fake_mode mode = (fake_mode)atomic_load(&f->mode);
            if (mode != FAKE_SILENT)
                answer(f, c, mode);
        }
        if (c != NULL)
            orch__command__free_unpacked(c, NULL);
        if (env != NULL)
            orch__envelope__free_unpacked(env, NULL);
        nng_free(buf, len);
    }
    return NULL;
}

static void fake_start_on(fake *f, const char *host, int port)
{
    char url[64];
    memset(f, 0, sizeof(*f));
    f->host = host;
    pthread_mutex_init(&f->mu, NULL);
    assert_int_equal(orch_wire_derive_key(SECRET, strlen(SECRET), host, &f->key), ORCH_OK);
    nng_listener l;
    assert_int_equal(nng_rep0_open(&f->sock), 0);
    assert_int_equal(nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, 50), 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    assert_int_equal(nng_listener_create(&l, f->sock, url), 0);
    assert_int_equal(nng_listener_start(l, 0), 0);
    assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &f->port), 0);
    snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d", f->port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_start(fake *f, const char *host)
{
    fake_start_on(f, host, 0);
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    nng_close(f->sock);
    pthread_mutex_destroy(&f->mu);
}

static commander *start(struct event_base *base, const char *secret, commander_gate_fn gate,
                        void *gate_arg, int64_t idle_ms)
{
    char msg[300];
    commander_conf conf = {
        .node = "unit-leader",
        .fleet_secret = secret,
        .fleet_secret_len = strlen(secret),
        .gate = gate,
        .gate_arg = gate_arg,
        .idle_close_ms = idle_ms,
        .first_command_id = 1000,
    };
    commander *c = commander_start(&conf, base, msg, sizeof(msg));
    if (c == NULL)
        fail_msg("commander_start: %s", msg);
    return c;
}

static commander_cmd ping_to(const fake *f, const Orch__Command *cmd, uint64_t epoch,
                             int64_t timeout_ms)
{
    return (commander_cmd){
        .host = f->host, .url = f->url, .epoch = epoch, .cmd = cmd, .timeout_ms = timeout_ms};
}

/* A correct exchange: what the agent sees, and what we get back. */
static void test_roundtrip(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    commander *c = start(NULL, SECRET, NULL, NULL, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_STOP_REPLICA;
    cmd.has_io_thread_only = 1;
    cmd.io_thread_only = 1;
    cmd.epoch = 999;                   /* ignored: the caller's epoch below counts */
    cmd.target_host = (char *)"bogus"; /* ignored */

    commander_reply r;
    commander_cmd req = ping_to(&f, &cmd, 7, 2000);
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_string_equal(commander_status_name(r.status), "REPLIED");
    assert_int_equal(r.result, ORCH__COMMAND_RESULT__RESULT_OK);
    assert_true(r.sent);
    assert_int_equal(r.epoch, 7);
    assert_int_equal(r.command_id, 1000);
    assert_true(r.has_obeyed_epoch);
    assert_int_equal(r.obeyed_epoch, 7);
    assert_int_equal(r.agent_us, 42);
    assert_non_null(r.state);
    assert_string_equal(r.state->host, HOST);
    assert_true(r.rtt_us > 0 && r.rtt_us < 1000000);
    commander_reply_fini(&r);

    pthread_mutex_lock(&f.mu);
    assert_int_equal(f.last.epoch, 7);
    assert_int_equal(f.last.command_id, 1000);
    assert_int_equal(f.last.protocol_version, ORCH_PROTOCOL_VERSION);
    assert_int_equal(f.last.type, ORCH__COMMAND_TYPE__CMD_STOP_REPLICA);
    assert_true(f.last.has_io_thread_only && f.last.io_thread_only);
    assert_string_equal(f.last_target, HOST);
    assert_string_equal(f.last_leader, "unit-leader");
    assert_true(llabs(f.last.sent_at_ms - orch_wall_ms()) < 5000);
    pthread_mutex_unlock(&f.mu);
    assert_int_equal(atomic_load(&f.auth_failed), 0);

    /* The next command reuses the socket and gets the next id. */
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_REPLIED);
    assert_int_equal(r.command_id, 1001);
    assert_null(r.state);
    commander_reply_fini(&r);
    commander_stats st;
    commander_stats_get(c, &st);
    assert_int_equal(st.sockets_opened, 1);
    assert_int_equal(st.by_status[COMMANDER_REPLIED], 2);
    assert_int_equal(st.by_result[ORCH__COMMAND_RESULT__RESULT_OK], 2);
    assert_int_equal(st.rtt_count, 2);
    assert_int_equal(st.pending, 0);
    commander_stop(c);
    fake_stop(&f);
}

/* Every kind of wrong reply is rejected with its own status and a message. */
static void test_bad_replies(void **state)
{
    (void)state;
    static const struct {
        fake_mode mode;
        commander_status want;
        const char *words;
    } cases[] = {
        {FAKE_BAD_HMAC, COMMANDER_BAD_SIGNATURE, "does not verify"},
        {FAKE_WRONG_ID, COMMANDER_MISMATCH, "answered command"},
        {FAKE_WRONG_EPOCH, COMMANDER_MISMATCH, "answered command"},
        {FAKE_GARBAGE, COMMANDER_MALFORMED, "malformed reply"},
        {FAKE_KIND, COMMANDER_MISMATCH, "not a reply"},
        {FAKE_OTHER_HOST, COMMANDER_MISMATCH, "answers as host 'db-other.example'"},
        {FAKE_BAD_BODY, COMMANDER_MALFORMED, "undecodable reply body"},
        {FAKE_STATE_HOST, COMMANDER_MISMATCH, "about host 'someone-else'"},
        {FAKE_OLD_VERSION, COMMANDER_MALFORMED, "protocol version 99"},
    };
    fake f;
    fake_start(&f, HOST);
    commander *c = start(NULL, SECRET, NULL, NULL, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_REPORT_NOW;
    commander_cmd req = ping_to(&f, &cmd, 3, 2000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        atomic_store(&f.mode, cases[i].mode);
        commander_reply r;
        assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
        if (r.status != cases[i].want || strstr(r.error, cases[i].words) == NULL)
            fail_msg("mode %d: got %s '%s', want %s '%s'", (int)cases[i].mode,
                     commander_status_name(r.status), r.error, commander_status_name(cases[i].want),
                     cases[i].words);
        assert_null(r.state);
        commander_reply_fini(&r);
    }
    /* After all that, a good reply still goes through on the same socket. */
    atomic_store(&f.mode, FAKE_OK);
    commander_reply r;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_REPLIED);
    commander_reply_fini(&r);
    commander_stats st;
    commander_stats_get(c, &st);
    assert_int_equal(st.by_status[COMMANDER_BAD_SIGNATURE], 1);
    assert_int_equal(st.by_status[COMMANDER_MISMATCH], 5); /* kind, id, epoch, host, state */
    assert_int_equal(st.by_status[COMMANDER_MALFORMED], 3);
    assert_int_equal(st.by_status[COMMANDER_REPLIED], 1);
    assert_int_equal(st.sockets_opened, 1);
    commander_stop(c);
    fake_stop(&f);
}

/* Wrong fleet secret: the agent refuses, and its (unverifiable) refusal is quoted. */
static void test_wrong_secret(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    commander *c = start(NULL, "not-the-secret", NULL, NULL, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    commander_cmd req = ping_to(&f, &cmd, 1, 2000);
    commander_reply r;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_BAD_SIGNATURE);
    assert_non_null(strstr(r.error, "unverified reply says: BAD_REQUEST"));
    assert_int_equal(atomic_load(&f.auth_failed), 1);
    commander_reply_fini(&r);
    commander_stop(c);
    fake_stop(&f);
}

/* A silent agent costs the timeout; a missing one too; neither blocks anything. */
static void test_timeout_and_unreachable(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    atomic_store(&f.mode, FAKE_SILENT);
    commander *c = start(NULL, SECRET, NULL, NULL, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    commander_cmd req = ping_to(&f, &cmd, 1, 300);
    commander_reply r;
    int64_t t0 = orch_mono_ms();
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    int64_t took = orch_mono_ms() - t0;
    assert_int_equal(r.status, COMMANDER_TIMEOUT);
    assert_true(r.sent);
    assert_true(took >= 280 && took < 800);
    commander_reply_fini(&r);

    /* nobody listening there */
    req.url = "tcp://127.0.0.1:1";
    t0 = orch_mono_ms();
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    took = orch_mono_ms() - t0;
    assert_int_equal(r.status, COMMANDER_UNREACHABLE);
    assert_false(r.sent);
    assert_true(took >= 280 && took < 800);
    commander_reply_fini(&r);

    /* the silent fake answers again: the abandoned request does not confuse the next */
    atomic_store(&f.mode, FAKE_OK);
    req.url = f.url;
    req.timeout_ms = 2000;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_REPLIED);
    commander_reply_fini(&r);
    commander_stop(c);
    fake_stop(&f);
}

typedef struct gate_state {
    atomic_int asked, asked98;
} gate_state;

/* "We lead at 99"; at 98 we lead only when first asked (lost while connecting). */
static bool gate_fn(void *arg, uint64_t epoch)
{
    gate_state *g = arg;
    atomic_fetch_add(&g->asked, 1);
    if (epoch == 98)
        return atomic_fetch_add(&g->asked98, 1) == 0;
    return epoch == 99;
}

/* A node that does not lead at the epoch never sends, even if it lost the lead while dialing. */
static void test_gate(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    gate_state g = {0};
    commander *c = start(NULL, SECRET, gate_fn, &g, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_FENCE;
    commander_cmd req = ping_to(&f, &cmd, 5, 2000);
    commander_reply r;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_NOT_LEADER);
    assert_false(r.sent);
    commander_reply_fini(&r);
    /* asked before dialing (yes), then once connected, right before sending (no) */
    req.epoch = 98;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_NOT_LEADER);
    assert_false(r.sent);
    assert_int_equal(atomic_load(&g.asked98), 2);
    commander_reply_fini(&r);
    assert_int_equal(atomic_load(&f.received), 0);
    req.epoch = 99;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_REPLIED);
    assert_int_equal(atomic_load(&f.received), 1);
    commander_reply_fini(&r);
    commander_stop(c);
    fake_stop(&f);
}

/* ---- asynchronous: the loop side ----------------------------------------------------------- */

typedef struct seen {
    struct event_base *base;
    int want, got;
    struct {
        int tag;
        commander_status status;
        uint64_t id;
        int64_t at_ms;
        bool on_loop_thread;
    } v[32];
    pthread_t loop_thread;
    int64_t t0;
} seen;

typedef struct tagged {
    seen *s;
    int tag;
} tagged;

static void on_done(commander_reply *r, void *arg)
{
    tagged *tg = arg;
    seen *s = tg->s;
    int i = s->got++;
    s->v[i].tag = tg->tag;
    s->v[i].status = r->status;
    s->v[i].id = r->command_id;
    s->v[i].at_ms = orch_mono_ms() - s->t0;
    s->v[i].on_loop_thread = pthread_equal(pthread_self(), s->loop_thread);
    if (s->got == s->want)
        event_base_loopbreak(s->base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void run_loop(struct event_base *base, int ms)
{
    struct event *ev = evtimer_new(base, on_deadline, base);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
    event_base_dispatch(base);
    event_free(ev);
}

/* A slow agent delays only its own commands, which keep their order. */
static void test_parallel_and_ordered(void **state)
{
    (void)state;
    fake slow, fast;
    fake_start(&slow, HOST);
    fake_start(&fast, "db-fast.example");
    atomic_store(&slow.delay_ms, 250);
    struct event_base *base = event_base_new();
    commander *c = start(base, SECRET, NULL, NULL, 0);
    seen s = {.base = base, .want = 4, .loop_thread = pthread_self(), .t0 = orch_mono_ms()};
    tagged tg[4] = {{&s, 0}, {&s, 1}, {&s, 2}, {&s, 3}};
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    uint64_t ids[4];
    for (int i = 0; i < 3; i++) {
        commander_cmd req = ping_to(&slow, &cmd, 1, 3000);
        req.done = on_done;
        req.arg = &tg[i];
        assert_int_equal(commander_submit(c, &req, &ids[i], NULL, 0), ORCH_OK);
    }
    commander_cmd req = ping_to(&fast, &cmd, 1, 3000);
    req.done = on_done;
    req.arg = &tg[3];
    assert_int_equal(commander_submit(c, &req, &ids[3], NULL, 0), ORCH_OK);
    run_loop(base, 5000);
    assert_int_equal(s.got, 4);
    /* the fast one first, long before the slow ones */
    assert_int_equal(s.v[0].tag, 3);
    assert_true(s.v[0].at_ms < 200);
    /* the slow ones in submission order, one after another */
    for (int i = 1; i < 4; i++) {
        assert_int_equal(s.v[i].tag, i - 1);
        assert_int_equal(s.v[i].id, ids[i - 1]);
        assert_int_equal(s.v[i].status, COMMANDER_REPLIED);
        assert_true(s.v[i].on_loop_thread);
    }
    assert_true(s.v[3].at_ms >= 3 * 250 - 20);
    pthread_mutex_lock(&slow.mu);
    assert_int_equal(slow.nids, 3);
    assert_true(slow.ids[0] < slow.ids[1] && slow.ids[1] < slow.ids[2]);
    pthread_mutex_unlock(&slow.mu);

    /* A command queued behind a stuck one runs out of time without being sent. */
    atomic_store(&slow.mode, FAKE_SILENT);
    atomic_store(&slow.delay_ms, 0);
    seen s2 = {.base = base, .want = 2, .loop_thread = pthread_self(), .t0 = orch_mono_ms()};
    tagged tg2[2] = {{&s2, 0}, {&s2, 1}};
    for (int i = 0; i < 2; i++) {
        commander_cmd rq = ping_to(&slow, &cmd, 1, 400);
        rq.done = on_done;
        rq.arg = &tg2[i];
        assert_int_equal(commander_submit(c, &rq, NULL, NULL, 0), ORCH_OK);
    }
    run_loop(base, 3000);
    assert_int_equal(s2.got, 2);
    assert_int_equal(s2.v[0].status, COMMANDER_TIMEOUT);
    assert_int_equal(s2.v[1].status, COMMANDER_TIMEOUT);
    assert_true(s2.v[1].at_ms < 700);
    commander_stop(c);
    event_base_free(base);
    fake_stop(&slow);
    fake_stop(&fast);
}

/* Stopping with commands on the wire and queued: all answered CLOSED, quickly. */
static void test_stop_in_flight(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    atomic_store(&f.mode, FAKE_SILENT);
    struct event_base *base = event_base_new();
    commander *c = start(base, SECRET, NULL, NULL, 0);
    seen s = {.base = base, .want = 3, .loop_thread = pthread_self(), .t0 = orch_mono_ms()};
    tagged tg[3] = {{&s, 0}, {&s, 1}, {&s, 2}};
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    for (int i = 0; i < 2; i++) {
        commander_cmd req = ping_to(&f, &cmd, 1, 30000);
        req.done = on_done;
        req.arg = &tg[i];
        assert_int_equal(commander_submit(c, &req, NULL, NULL, 0), ORCH_OK);
    }
    commander_cmd req = ping_to(&f, &cmd, 1, 30000);
    req.url = "tcp://127.0.0.1:1"; /* still connecting */
    req.done = on_done;
    req.arg = &tg[2];
    assert_int_equal(commander_submit(c, &req, NULL, NULL, 0), ORCH_OK);
    run_loop(base, 300);
    assert_int_equal(s.got, 0);
    int64_t t0 = orch_mono_ms();
    commander_stop(c);
    assert_true(orch_mono_ms() - t0 < 2000);
    assert_int_equal(s.got, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.v[i].status, COMMANDER_CLOSED);
        assert_true(s.v[i].on_loop_thread);
    }
    event_base_free(base);
    fake_stop(&f);
}

/*
 * The connection drops while a command waits for its reply: answered at once
 * (UNREACHABLE, sent), not at the timeout, and never resent to whoever
 * listens next on that address.
 */
static void test_connection_lost_after_sending(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    atomic_store(&f.mode, FAKE_SILENT);
    int port = f.port;
    struct event_base *base = event_base_new();
    commander *c = start(base, SECRET, NULL, NULL, 0);
    seen s = {.base = base, .want = 1, .loop_thread = pthread_self(), .t0 = orch_mono_ms()};
    tagged tg = {&s, 0};
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_STOP_REPLICA;
    commander_cmd req = ping_to(&f, &cmd, 1, 5000);
    req.done = on_done;
    req.arg = &tg;
    assert_int_equal(commander_submit(c, &req, NULL, NULL, 0), ORCH_OK);
    int64_t deadline = orch_mono_ms() + 3000;
    while (atomic_load(&f.received) == 0 && orch_mono_ms() < deadline)
        orch_sleep_ms(10);
    assert_int_equal(atomic_load(&f.received), 1);
    int64_t t_drop = orch_mono_ms() - s.t0;
    fake_stop(&f); /* the agent dies with the command in hand */
    fake f2;       /* and another comes up on the same address at once */
    fake_start_on(&f2, HOST, port);
    run_loop(base, 3000);
    assert_int_equal(s.got, 1);
    assert_int_equal(s.v[0].status, COMMANDER_UNREACHABLE);
    assert_true(s.v[0].at_ms - t_drop < 1000); /* not the 5 s timeout */
    orch_sleep_ms(500);
    assert_int_equal(atomic_load(&f2.received), 0); /* not resent */

    /* the next command reaches the new agent */
    seen s2 = {.base = base, .want = 1, .loop_thread = pthread_self(), .t0 = orch_mono_ms()};
    tagged tg2 = {&s2, 0};
    req.url = f2.url;
    req.arg = &tg2;
    assert_int_equal(commander_submit(c, &req, NULL, NULL, 0), ORCH_OK);
    run_loop(base, 3000);
    assert_int_equal(s2.got, 1);
    assert_int_equal(s2.v[0].status, COMMANDER_REPLIED);
    commander_stop(c);
    event_base_free(base);
    fake_stop(&f2);
}

/* A command waits (within its timeout) for an agent that is still starting. */
static void test_agent_comes_up_while_connecting(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST); /* only to find a free port */
    int port = f.port;
    char url[64];
    snprintf(url, sizeof(url), "%s", f.url);
    fake_stop(&f);
    struct event_base *base = event_base_new();
    commander *c = start(base, SECRET, NULL, NULL, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    commander_cmd req = {.host = HOST, .url = url, .epoch = 1, .cmd = &cmd, .timeout_ms = 300};

    /* nobody there: UNREACHABLE at the deadline, nothing sent */
    commander_reply r;
    int64_t t0 = orch_mono_ms();
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_UNREACHABLE);
    assert_false(r.sent);
    assert_true(orch_mono_ms() - t0 < 700);
    commander_reply_fini(&r);

    /* the agent starts 400 ms after the command was submitted */
    seen s = {.base = base, .want = 1, .loop_thread = pthread_self(), .t0 = orch_mono_ms()};
    tagged tg = {&s, 0};
    req.timeout_ms = 4000;
    req.done = on_done;
    req.arg = &tg;
    assert_int_equal(commander_submit(c, &req, NULL, NULL, 0), ORCH_OK);
    run_loop(base, 400);
    assert_int_equal(s.got, 0);
    fake late;
    fake_start_on(&late, HOST, port);
    run_loop(base, 4000);
    assert_int_equal(s.got, 1);
    assert_int_equal(s.v[0].status, COMMANDER_REPLIED);
    assert_true(s.v[0].at_ms >= 400 && s.v[0].at_ms < 3000);
    commander_stop(c);
    event_base_free(base);
    fake_stop(&late);
}

/* Idle sockets are closed, and reopened on demand. */
static void test_idle_close(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, HOST);
    commander *c = start(NULL, SECRET, NULL, NULL, 100);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    commander_cmd req = ping_to(&f, &cmd, 1, 2000);
    commander_reply r;
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_REPLIED);
    commander_reply_fini(&r);
    commander_stats st;
    int64_t deadline = orch_mono_ms() + 3000;
    do {
        orch_sleep_ms(50);
        commander_stats_get(c, &st);
    } while (st.sockets_closed_idle == 0 && orch_mono_ms() < deadline);
    assert_int_equal(st.sockets_closed_idle, 1);
    assert_int_equal(st.sockets_open, 0);
    assert_int_equal(commander_call(c, &req, &r), ORCH_OK);
    assert_int_equal(r.status, COMMANDER_REPLIED);
    commander_reply_fini(&r);
    commander_stats_get(c, &st);
    assert_int_equal(st.sockets_opened, 2);
    commander_stop(c);
    fake_stop(&f);
}

static void test_submit_checks(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    commander *c = start(base, SECRET, NULL, NULL, 0);
    Orch__Command cmd = ORCH__COMMAND__INIT;
    cmd.type = ORCH__COMMAND_TYPE__CMD_PING;
    char msg[200];
    commander_cmd req = {.host = "h", .url = "tcp://127.0.0.1:1", .cmd = &cmd, .timeout_ms = 10};
    req.host = NULL;
    assert_int_equal(commander_submit(c, &req, NULL, msg, sizeof(msg)), ORCH_ERR_INVAL);
    req.host = "h";
    req.url = "";
    assert_int_equal(commander_submit(c, &req, NULL, msg, sizeof(msg)), ORCH_ERR_INVAL);
    req.url = "tcp://127.0.0.1:1";
    req.timeout_ms = 24LL * 3600 * 1000;
    assert_int_equal(commander_submit(c, &req, NULL, msg, sizeof(msg)), ORCH_ERR_INVAL);
    req.timeout_ms = 10;
    Orch__Command bad = ORCH__COMMAND__INIT;
    bad.type = (Orch__CommandType)77;
    req.cmd = &bad;
    assert_int_equal(commander_submit(c, &req, NULL, msg, sizeof(msg)), ORCH_ERR_INVAL);
    commander_stats st;
    commander_stats_get(c, &st);
    assert_int_equal(st.refused, 4);
    assert_int_equal(st.submitted, 0);
    commander_stop(c);
    event_base_free(base);

    /* names */
    Orch__CommandType t;
    assert_int_equal(commander_type_parse("stop_replica", &t), ORCH_OK);
    assert_int_equal(t, ORCH__COMMAND_TYPE__CMD_STOP_REPLICA);
    assert_int_equal(commander_type_parse("CMD_PING", &t), ORCH_OK);
    assert_int_equal(t, ORCH__COMMAND_TYPE__CMD_PING);
    assert_int_equal(commander_type_parse("nope", &t), ORCH_ERR_PARSE);
    assert_string_equal(commander_type_name(ORCH__COMMAND_TYPE__CMD_REPORT_NOW), "REPORT_NOW");
    assert_string_equal(commander_result_name(ORCH__COMMAND_RESULT__RESULT_STALE_EPOCH),
                        "STALE_EPOCH");
    assert_string_equal(commander_status_name(COMMANDER_STATUS__COUNT), "UNKNOWN");

    /* no secret and not insecure: refused at start */
    commander_conf conf = {.node = "x"};
    assert_null(commander_start(&conf, NULL, msg, sizeof(msg)));
    /* TLS files that do not exist: refused at start */
    conf = (commander_conf){.insecure = true,
                            .tls_ca = "/nonexistent/ca.pem",
                            .tls_cert = "/nonexistent/c.pem",
                            .tls_key = "/nonexistent/k.pem"};
    assert_null(commander_start(&conf, NULL, msg, sizeof(msg)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_timeout_and_unreachable),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_parallel_and_ordered),
        cmocka_unit_test(test_stop_in_flight),
        cmocka_unit_test(test_connection_lost_after_sending),
        cmocka_unit_test(test_agent_comes_up_while_connecting),
        cmocka_unit_test(test_idle_close),
        cmocka_unit_test(test_submit_checks),
        /* one per line */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
