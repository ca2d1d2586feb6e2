/*
 * orch-cmdtool: sends agent commands through the coordinator's commander
 * (coordinator/commander.c) from the command line, for system tests and for
 * operators checking that a coordinator could reach its agents. It runs the
 * commander on its own event loop, exactly as the coordinator does, and prints
 * one JSON line per answer, as the answer arrives.
 *
 *   orch-cmdtool --secret S --epoch 3 \
 *       --send host=db1,url=tcp://db1:3391,type=PING \
 *       --send host=db2,url=tcp://db2:3391,type=STOP_REPLICA,io_only=1
 *
 * Each --send is one command; all of them are submitted at once (a round),
 * and the round is repeated --count times. With --stdin, every input line is
 * a round of whitespace-separated specs, submitted when read, so one commander
 * (and its sockets) lives across a test's steps. After each round a line
 * {"round": N, "done": true, ...} follows its answers. SIGTERM/SIGINT stop the
 * commander at once: what is still pending is answered CLOSED.
 *
 * Exit status: 0 when every command was answered OK, 3 otherwise, 2 for usage
 * errors, 1 when the commander cannot start.
 */
#include "clock.h"
#include "commander.h"
#include "log.h"
#include "pbjson.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char usage[] =
    "Usage: orch-cmdtool (--secret S | --insecure) --epoch E [options] (--send SPEC ... | "
    "--stdin)\n"
    "Options:\n"
    "  --count N            repeat the round of --send commands N times (default 1)\n"
    "  --interval-ms MS     pause between rounds (default 0)\n"
    "  --timeout-ms MS      each command's deadline, from submission (default 5000)\n"
    "  --node NAME          the leader name sent in commands (default orch-cmdtool)\n"
    "  --idle-close-ms MS   close a target's socket after this idle time\n"
    "  --first-id N         first command id (default: from the clock)\n"
    "  --stats              print the commander's counters at the end\n"
    "  --stdin              read rounds from standard input, one line each\n"
    "  --tls-ca F --tls-cert F --tls-key F [--tls-server-name N | --tls-server-name-suffix S]\n"
    "SPEC: host=H,url=URL,type=T[,key=value...] with keys\n"
    "  epoch deadline_ms channel io_only master_host master_port gtid_mode (slave_pos,\n"
    "  current_pos, none) gtid_set timeout_ms read_only super_read_only semi_sync_master\n"
    "  semi_sync_slave kill_connections start master_log_file master_log_pos\n"
    "  (a gtid_set may hold commas: a piece without '=' continues the previous value)\n"
    "T: REPORT_NOW STOP_REPLICA START_REPLICA CHANGE_MASTER RESET_REPLICA WAIT_FOR_GTID\n"
    "   SET_READ_ONLY FENCE SET_SEMI_SYNC PING\n";

typedef struct spec {
    char *text; /* owned; host, url and string fields point into it */
    const char *host, *url;
    uint64_t epoch;
    bool has_epoch;
    int64_t deadline_ms;
    Orch__Command cmd;
} spec;

typedef struct tool tool;

typedef struct round_s {
    tool *t;
    long no;
    spec *specs;
    size_t n;
    size_t pending;
    int64_t t0_us;
    struct sent *sent;
    struct round_s *next; /* tool's list of rounds in progress */
} round_s;

typedef struct sent {
    round_s *r;
    size_t index;
} sent;

struct tool {
    struct event_base *base;
    commander *cmd;
    uint64_t epoch;
    int64_t timeout_ms;
    long count, rounds_done, rounds_started;
    int64_t interval_ms;
    spec *specs; /* --send */
    size_t nspecs;
    bool use_stdin, eof, stopping;
    char *inbuf;
    size_t inlen, incap;
    struct event *ev_stdin, *ev_next, *ev_term, *ev_int;
    round_s *active;
    bool all_ok;
};

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s != NULL) {
        puts(s);
        fflush(stdout);
        free(s);
    }
    json_decref(j);
}

/* ---- specs ----------------------------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0')
        return false;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, protobuf_c_boolean *has, protobuf_c_boolean *v)
{
    if (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0)
        *v = 1;
    else if (strcmp(s, "0") == 0 || strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0)
        *v = 0;
    else
        return false;
    *has = 1;
    return true;
}

static void spec_fini(spec *s)
{
    free(s->text);
    memset(s, 0, sizeof(*s));
}

/* Applies key=value to s; false with a message on stderr when it does not fit. */
static bool spec_set(spec *s, const char *k, char *v)
{
    Orch__Command *c = &s->cmd;
    uint64_t u;
    if (strcmp(k, "host") == 0) {
        s->host = v;
    } else if (strcmp(k, "url") == 0) {
        s->url = v;
    } else if (strcmp(k, "type") == 0) {
        if (commander_type_parse(v, &c->type) != ORCH_OK) {
            fprintf(stderr, "unknown command type '%s'\n", v);
            return false;
        }
    } else if (strcmp(k, "epoch") == 0) {
        if (!parse_u64(v, &s->epoch))
            goto bad;
        s->has_epoch = true;
    } else if (strcmp(k, "deadline_ms") == 0) {
        if (!parse_i64(v, &s->deadline_ms))
            goto bad;
    } else if (strcmp(k, "channel") == 0) {
        c->channel = v;
    } else if (strcmp(k, "io_only") == 0) {
        if (!parse_bool(v, &c->has_io_thread_only, &c->io_thread_only))
            goto bad;
    } else if (strcmp(k, "master_host") == 0) {
        c->master_host = v;
    } else if (strcmp(k, "master_port") == 0) {
        if (!parse_u64(v, &u) || u == 0 || u > 65535)
            goto bad;
        c->has_master_port = 1;
        c->master_port = (uint32_t)u;
    } else if (strcmp(k, "gtid_mode") == 0) {
        c->has_gtid_mode = 1;
        if (strcasecmp(v, "slave_pos") == 0)
            c->gtid_mode = ORCH__GTID_MODE__GTID_MODE_SLAVE_POS;
        else if (strcasecmp(v, "current_pos") == 0)
            c->gtid_mode = ORCH__GTID_MODE__GTID_MODE_CURRENT_POS;
        else if (strcasecmp(v, "none") == 0)
            c->gtid_mode = ORCH__GTID_MODE__GTID_MODE_NONE;
        else
            goto bad;
    } else if (strcmp(k, "gtid_set") == 0) {
        c->gtid_set = v;
    } else if (strcmp(k, "timeout_ms") == 0) {
        if (!parse_u64(v, &u) || u > UINT32_MAX)
            goto bad;
        c->has_timeout_ms = 1;
        c->timeout_ms = (uint32_t)u;
    } else if (strcmp(k, "read_only") == 0) {
        if (!parse_bool(v, &c->has_read_only, &c->read_only))
            goto bad;
    } else if (strcmp(k, "super_read_only") == 0) {
        if (!parse_bool(v, &c->has_super_read_only, &c->super_read_only))
            goto bad;
    } else if (strcmp(k, "semi_sync_master") == 0) {
        if (!parse_bool(v, &c->has_semi_sync_master, &c->semi_sync_master))
            goto bad;
    } else if (strcmp(k, "semi_sync_slave") == 0) {
        if (!parse_bool(v, &c->has_semi_sync_slave, &c->semi_sync_slave))
            goto bad;
    } else if (strcmp(k, "kill_connections") == 0) {
        if (!parse_bool(v, &c->has_kill_connections, &c->kill_connections))
            goto bad;
    } else if (strcmp(k, "start") == 0) {
        if (!parse_bool(v, &c->has_start_replica, &c->start_replica))
            goto bad;
    } else if (strcmp(k, "master_log_file") == 0) {
        c->master_log_file = v;
    } else if (strcmp(k, "master_log_pos") == 0) {
        if (!parse_u64(v, &u))
            goto bad;
        c->has_master_log_pos = 1;
        c->master_log_pos = u;
    } else {
        fprintf(stderr, "unknown key '%s' in a command spec\n", k);
        return false;
    }
    return true;
bad:
    fprintf(stderr, "bad value '%s' for %s\n", v, k);
    return false;
}

/*
 * Parses "host=H,url=U,type=T,k=v,..." into *s (which owns a copy of text).
 * A piece without '=' continues the previous value (GTID sets hold commas).
 */
static bool spec_parse(const char *text, spec *s)
{
    memset(s, 0, sizeof(*s));
    s->cmd = (Orch__Command)ORCH__COMMAND__INIT;
    s->cmd.type = 0;
    s->text = strdup(text);
    if (s->text == NULL)
        return false;
    /* Join continuation pieces: turn "k=v,piece" separators into NULs only
     * before a piece that has '=' in it. */
    char *p = s->text;
    char *starts[64];
    size_t n = 0;
    starts[n++] = p;
    for (char *q = p; *q; q++) {
        if (*q != ',')
            continue;
        char *nx = q + 1;
        size_t span = strcspn(nx, ",");
        if (memchr(nx, '=', span) == NULL)
            continue; /* continuation: keep the comma in the value */
        if (n == sizeof(starts) / sizeof(starts[0])) {
            fprintf(stderr, "too many keys in '%s'\n", text);
            goto fail;
        }
        *q = '\0';
        starts[n++] = nx;
    }
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(starts[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "'%s' is not key=value\n", starts[i]);
            goto fail;
        }
        *eq = '\0';
        if (!spec_set(s, starts[i], eq + 1))
            goto fail;
    }
    if (s->host == NULL || s->url == NULL || s->cmd.type == 0) {
        fprintf(stderr, "a command spec needs host=, url= and type=: '%s'\n", text);
        goto fail;
    }
    return true;
fail:
    spec_fini(s);
    return false;
}

/* ---- rounds ---------------------------------------------------------------------------- */

static void maybe_finish(tool *t);

static void round_free(round_s *r, bool own_specs)
{
    if (own_specs) {
        for (size_t i = 0; i < r->n; i++)
            spec_fini(&r->specs[i]);
        free(r->specs);
    }
    free(r->sent);
    free(r);
}

static void on_reply(commander_reply *rep, void *arg)
{
    sent *s = arg;
    round_s *r = s->r;
    tool *t = r->t;
    const spec *sp = &r->specs[s->index];
    json_t *o = json_object();
    json_object_set_new(o, "round", json_integer(r->no));
    json_object_set_new(o, "index", json_integer((json_int_t)s->index));
    json_object_set_new(o, "host", json_string(sp->host));
    json_object_set_new(o, "url", json_string(sp->url));
    json_object_set_new(o, "type", json_string(commander_type_name(rep->type)));
    json_object_set_new(o, "command_id", json_integer((json_int_t)rep->command_id));
    json_object_set_new(o, "epoch", json_integer((json_int_t)rep->epoch));
    json_object_set_new(o, "status", json_string(commander_status_name(rep->status)));
    json_object_set_new(o, "result",
                        rep->status == COMMANDER_REPLIED
                            ? json_string(commander_result_name(rep->result))
                            : json_null());
    json_object_set_new(o, "error", json_string(rep->error));
    json_object_set_new(o, "sent", json_boolean(rep->sent));
    if (rep->has_obeyed_epoch)
        json_object_set_new(o, "obeyed_epoch", json_integer((json_int_t)rep->obeyed_epoch));
    json_object_set_new(o, "queued_us", json_integer(rep->queued_us));
    json_object_set_new(o, "rtt_us", json_integer(rep->rtt_us));
    json_object_set_new(o, "agent_us", json_integer(rep->agent_us));
    json_object_set_new(o, "since_round_us", json_integer(orch_mono_us() - r->t0_us));
    if (rep->state != NULL)
        json_object_set_new(o, "state", orch_pb_to_json(&rep->state->base));
    print_json(o);
    if (rep->status != COMMANDER_REPLIED || rep->result != ORCH__COMMAND_RESULT__RESULT_OK)
        t->all_ok = false;

    if (--r->pending > 0)
        return;
    json_t *d = json_object();
    json_object_set_new(d, "round", json_integer(r->no));
    json_object_set_new(d, "done", json_true());
    json_object_set_new(d, "replies", json_integer((json_int_t)r->n));
    json_object_set_new(d, "elapsed_us", json_integer(orch_mono_us() - r->t0_us));
    print_json(d);
    for (round_s **pp = &t->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    round_free(r, r->specs != t->specs);
    t->rounds_done++;
    maybe_finish(t);
}

/* Submits one round. specs are owned by the round unless they are t->specs. */
static bool round_start(tool *t, spec *specs, size_t n)
{
    round_s *r = calloc(1, sizeof(*r));
    sent *ss = calloc(n ? n : 1, sizeof(*ss));
    if (r == NULL || ss == NULL) {
        free(r);
        free(ss);
        return false;
    }
    r->t = t;
    r->no = ++t->rounds_started;
    r->specs = specs;
    r->n = n;
    r->sent = ss;
    r->t0_us = orch_mono_us();
    r->next = t->active;
    t->active = r;
    r->pending = n;
    /* Count the round as pending while submitting, so that an early answer (from
     * commander_stop) cannot free it under us. */
    r->pending++;
    for (size_t i = 0; i < n; i++) {
        ss[i].r = r;
        ss[i].index = i;
        commander_cmd req = {.host = specs[i].host,
                             .url = specs[i].url,
                             .epoch = specs[i].has_epoch ? specs[i].epoch : t->epoch,
                             .cmd = &specs[i].cmd,
                             .timeout_ms =
                                 specs[i].deadline_ms > 0 ? specs[i].deadline_ms : t->timeout_ms,
                             .done = on_reply,
                             .arg = &ss[i]};
        char msg[300];
        if (commander_submit(t->cmd, &req, NULL, msg, sizeof(msg)) != ORCH_OK) {
            json_t *o = json_object();
            json_object_set_new(o, "round", json_integer(r->no));
            json_object_set_new(o, "index", json_integer((json_int_t)i));
            json_object_set_new(o, "status", json_string("NOT_SUBMITTED"));
            json_object_set_new(o, "result", json_null());
            json_object_set_new(o, "error", json_string(msg));
            print_json(o);
            t->all_ok = false;
            r->pending--;
        }
    }
    /* Drop the submission's own count; answers may all have come already. */
    if (--r->pending == 0) {
        json_t *d = json_object();
        json_object_set_new(d, "round", json_integer(r->no));
        json_object_set_new(d, "done", json_true());
        json_object_set_new(d, "replies", json_integer(0));
        json_object_set_new(d, "elapsed_us", json_integer(orch_mono_us() - r->t0_us));
        print_json(d);
        for (round_s **pp = &t->active; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == r) {
                *pp = r->next;
                break;
            }
        }
        round_free(r, specs != t->specs);
        t->rounds_done++;
        maybe_finish(t);
    }
    return true;
}

static void on_next_round(evutil_socket_t fd, short what, void *arg)
{
    tool *t = arg;
    if (!t->stopping)
        round_start(t, t->specs, t->nspecs);
}

/* After a round: the next one (--send), or the end. */
static void maybe_finish(tool *t)
{
    if (t->stopping)
        return;
    if (!t->use_stdin) {
        if (t->rounds_started < t->count) {
            if (t->active == NULL) {
                struct timeval tv = {.tv_sec = (time_t)(t->interval_ms / 1000),
                                     .tv_usec = (suseconds_t)(t->interval_ms % 1000) * 1000};
                evtimer_add(t->ev_next, &tv);
            }
            return;
        }
        if (t->active == NULL)
            event_base_loopbreak(t->base);
        return;
    }
    if (t->eof && t->active == NULL)
        event_base_loopbreak(t->base);
}

/* One input line: whitespace-separated specs, submitted as one round. */
static void handle_line(tool *t, char *line)
{
    spec *specs = NULL;
    size_t n = 0;
    char *save = NULL;
    if (strcmp(line, "quit") == 0) {
        t->eof = true;
        maybe_finish(t);
        return;
    }
    for (char *tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        spec *grown = realloc(specs, (n + 1) * sizeof(*specs));
        if (grown == NULL)
            break;
        specs = grown;
        if (!spec_parse(tok, &specs[n])) {
            json_t *o = json_object();
            json_object_set_new(o, "status", json_string("BAD_SPEC"));
            json_object_set_new(o, "error", json_string(tok));
            print_json(o);
            continue;
        }
        n++;
    }
    if (n == 0) {
        free(specs);
        return;
    }
    if (!round_start(t, specs, n)) {
        for (size_t i = 0; i < n; i++)
            spec_fini(&specs[i]);
        free(specs);
    }
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    tool *t = arg;
    if (t->incap - t->inlen < 4096) {
        size_t cap = t->incap ? t->incap * 2 : 8192;
        char *g = realloc(t->inbuf, cap);
        if (g == NULL)
            return;
        t->inbuf = g;
        t->incap = cap;
    }
    ssize_t r = read(fd, t->inbuf + t->inlen, t->incap - t->inlen - 1);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        event_del(t->ev_stdin);
        t->eof = true;
        maybe_finish(t);
        return;
    }
    t->inlen += (size_t)r;
    t->inbuf[t->inlen] = '\0';
    char *start = t->inbuf, *nl;
    while ((nl = memchr(start, '\n', t->inlen - (size_t)(start - t->inbuf))) != NULL) {
        *nl = '\0';
        handle_line(t, start);
        start = nl + 1;
    }
    t->inlen -= (size_t)(start - t->inbuf);
    memmove(t->inbuf, start, t->inlen);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    tool *t = arg;
    t->stopping = true;
    event_base_loopbreak(t->base);
}

static void print_stats(commander *c)
{
    commander_stats st;
    commander_stats_get(c, &st);
    json_t *o = json_object(), *bs = json_object(), *br = json_object(), *h = json_array();
    for (int i = 0; i < COMMANDER_STATUS__COUNT; i++)
        json_object_set_new(bs, commander_status_name((commander_status)i),
                            json_integer((json_int_t)st.by_status[i]));
    for (int i = 0; i <= COMMANDER_RESULT_OTHER; i++)
        json_object_set_new(
            br,
            i == COMMANDER_RESULT_OTHER ? "OTHER" : commander_result_name((Orch__CommandResult)i),
            json_integer((json_int_t)st.by_result[i]));
    for (int i = 0; i <= COMMANDER_RTT_BUCKETS; i++)
        json_array_append_new(h, json_integer((json_int_t)st.rtt_buckets[i]));
    json_object_set_new(o, "submitted", json_integer((json_int_t)st.submitted));
    json_object_set_new(o, "refused", json_integer((json_int_t)st.refused));
    json_object_set_new(o, "by_status", bs);
    json_object_set_new(o, "by_result", br);
    json_object_set_new(o, "pending", json_integer((json_int_t)st.pending));
    json_object_set_new(o, "in_flight", json_integer((json_int_t)st.in_flight));
    json_object_set_new(o, "sockets_open", json_integer((json_int_t)st.sockets_open));
    json_object_set_new(o, "sockets_opened", json_integer((json_int_t)st.sockets_opened));
    json_object_set_new(o, "sockets_closed_idle", json_integer((json_int_t)st.sockets_closed_idle));
    json_object_set_new(o, "sockets_closed_unreachable",
                        json_integer((json_int_t)st.sockets_closed_unreachable));
    json_object_set_new(o, "rtt_buckets", h);
    json_object_set_new(o, "rtt_count", json_integer((json_int_t)st.rtt_count));
    json_object_set_new(o, "rtt_sum_us", json_integer((json_int_t)st.rtt_sum_us));
    json_object_set_new(o, "rtt_max_us", json_integer(st.rtt_max_us));
    json_t *w = json_object();
    json_object_set_new(w, "stats", o);
    print_json(w);
}

static long long num(const char *s, const char *what)
{
    int64_t v;
    if (!parse_i64(s, &v)) {
        fprintf(stderr, "bad number for %s: '%s'\n", what, s);
        exit(ORCH_EXIT_USAGE);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"secret", 1, NULL, 's'},
        {"insecure", 0, NULL, 'I'},
        {"epoch", 1, NULL, 'e'},
        {"count", 1, NULL, 'n'},
        {"interval-ms", 1, NULL, 'i'},
        {"timeout-ms", 1, NULL, 'T'},
        {"node", 1, NULL, 'N'},
        {"idle-close-ms", 1, NULL, 'd'},
        {"first-id", 1, NULL, 'f'},
        {"stats", 0, NULL, 'S'},
        {"stdin", 0, NULL, '0'},
        {"send", 1, NULL, 'x'},
        {"tls-ca", 1, NULL, 'A'},
        {"tls-cert", 1, NULL, 'C'},
        {"tls-key", 1, NULL, 'K'},
        {"tls-server-name", 1, NULL, 'm'},
        {"tls-server-name-suffix", 1, NULL, 'u'},
        {"log-level", 1, NULL, 'L'},
        {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tool t = {.count = 1, .timeout_ms = 5000, .all_ok = true};
    commander_conf conf = {.node = "orch-cmdtool"};
    const char *secret = NULL;
    bool have_epoch = false, stats = false;
    int c, rc = ORCH_EXIT_USAGE;
    orch_log_level lvl = ORCH_LOG_WARN;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            secret = optarg;
            break;
        case 'I':
            conf.insecure = true;
            break;
        case 'e':
            t.epoch = (uint64_t)num(optarg, "--epoch");
            have_epoch = true;
            break;
        case 'n':
            t.count = (long)num(optarg, "--count");
            break;
        case 'i':
            t.interval_ms = num(optarg, "--interval-ms");
            break;
        case 'T':
            t.timeout_ms = num(optarg, "--timeout-ms");
            break;
        case 'N':
            conf.node = optarg;
            break;
        case 'd':
            conf.idle_close_ms = num(optarg, "--idle-close-ms");
            break;
        case 'f':
            conf.first_command_id = (uint64_t)num(optarg, "--first-id");
            break;
        case 'S':
            stats = true;
            break;
        case '0':
            t.use_stdin = true;
            break;
        case 'x': {
            spec *g = realloc(t.specs, (t.nspecs + 1) * sizeof(*g));
            if (g == NULL)
                return ORCH_EXIT_FAILURE;
            t.specs = g;
            if (!spec_parse(optarg, &t.specs[t.nspecs]))
                goto out;
            t.nspecs++;
            break;
        }
        case 'A':
            conf.tls_ca = optarg;
            break;
        case 'C':
            conf.tls_cert = optarg;
            break;
        case 'K':
            conf.tls_key = optarg;
            break;
        case 'm':
            conf.tls_server_name = optarg;
            break;
        case 'u':
            conf.tls_server_name_suffix = optarg;
            break;
        case 'L':
            if (orch_log_level_parse(optarg, &lvl) != ORCH_OK) {
                fprintf(stderr, "bad --log-level '%s'\n", optarg);
                goto out;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = ORCH_EXIT_OK;
            goto out;
        default:
            fputs(usage, stderr);
            goto out;
        }
    }
    if (!have_epoch || (secret == NULL && !conf.insecure) || (t.nspecs == 0 && !t.use_stdin) ||
        t.count < 1 || optind != argc) {
        fputs(usage, stderr);
        goto out;
    }
    if (secret != NULL) {
        conf.fleet_secret = secret;
        conf.fleet_secret_len = strlen(secret);
        conf.insecure = false;
    }
    orch_log_set_program("orch-cmdtool");
    orch_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);

    char msg[400];
    rc = ORCH_EXIT_FAILURE;
    t.base = event_base_new();
    if (t.base == NULL)
        goto out;
    t.cmd = commander_start(&conf, t.base, msg, sizeof(msg));
    if (t.cmd == NULL) {
        fprintf(stderr, "orch-cmdtool: %s\n", msg);
        goto out;
    }
    t.ev_next = evtimer_new(t.base, on_next_round, &t);
    t.ev_term = evsignal_new(t.base, SIGTERM, on_signal, &t);
    t.ev_int = evsignal_new(t.base, SIGINT, on_signal, &t);
    if (t.ev_next == NULL || t.ev_term == NULL || t.ev_int == NULL ||
        event_add(t.ev_term, NULL) != 0 || event_add(t.ev_int, NULL) != 0)
        goto out;
    if (t.use_stdin) {
        evutil_make_socket_nonblocking(0);
        t.ev_stdin = event_new(t.base, 0, EV_READ | EV_PERSIST, on_stdin, &t);
        if (t.ev_stdin == NULL || event_add(t.ev_stdin, NULL) != 0)
            goto out;
    }
    if (t.nspecs > 0)
        round_start(&t, t.specs, t.nspecs); /* with --stdin: a first round before its lines */
    if ((t.use_stdin && !t.eof) || t.active != NULL || (!t.use_stdin && t.rounds_started < t.count))
        event_base_dispatch(t.base);
    /* SIGTERM, or done: whatever is pending is answered CLOSED, here. */
    t.stopping = true;
    if (stats)
        print_stats(t.cmd);
    commander_stop(t.cmd);
    t.cmd = NULL;
    rc = t.all_ok && t.active == NULL ? ORCH_EXIT_OK : 3;
out:
    commander_stop(t.cmd);
    while (t.active != NULL) {
        round_s *r = t.active;
        t.active = r->next;
        round_free(r, r->specs != t.specs);
    }
    for (size_t i = 0; i < t.nspecs; i++)
        spec_fini(&t.specs[i]);
    free(t.specs);
    free(t.inbuf);
    if (t.ev_stdin)
        event_free(t.ev_stdin);
    if (t.ev_next)
        event_free(t.ev_next);
    if (t.ev_term)
        event_free(t.ev_term);
    if (t.ev_int)
        event_free(t.ev_int);
    if (t.base)
        event_base_free(t.base);
    return rc;
}
