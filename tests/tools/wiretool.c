/*
 * orch-wiretool: speaks orch's wire protocol from the command line, for system
 * tests and for operators debugging a link. It plays the coordinator's side
 * against real agents:
 *
 *   listen   a sub socket on a report URL; prints each message as one JSON line
 *            with its verification verdict (signature, version, decoding)
 *   command  signs one Command with key(host) and prints the agent's reply
 *   raw      sends arbitrary hex bytes as a request and prints the reply
 */
#include "clock.h"
#include "pbjson.h"
#include "transport.h"
#include "wire.h"

#include <getopt.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage:\n"
    "  orch-wiretool listen  --url URL (--secret S | --insecure) [--count N] [--seconds T]\n"
    "  orch-wiretool command --url URL --host H (--secret S | --key HEX | --insecure)\n"
    "                        --epoch E --id I --type TYPE [--master-host H --master-port P]\n"
    "                        [--gtid-set S] [--timeout-ms MS] [--read-only 0|1] [--io-only]\n"
    "                        [--start] [--target H] [--sign-host H] [--recv-timeout-ms MS]\n"
    "  orch-wiretool raw     --url URL --hex BYTES [--recv-timeout-ms MS]\n"
    "TLS (tls+tcp:// URLs): --tls-ca FILE --tls-cert FILE --tls-key FILE [--tls-server-name N]\n"
    "TYPE: REPORT_NOW STOP_REPLICA START_REPLICA CHANGE_MASTER RESET_REPLICA WAIT_FOR_GTID\n"
    "      SET_READ_ONLY FENCE SET_SEMI_SYNC PING\n";

typedef struct opts {
    const char *url, *secret, *key_hex, *host, *type, *master_host, *gtid_set, *target, *sign_host,
        *tls_ca, *tls_cert, *tls_key, *tls_server_name, *hex;
    bool insecure, io_only, start, have_read_only;
    long long epoch, id, count, seconds, master_port, timeout_ms, recv_timeout_ms;
    bool read_only;
} opts;

static bool key_for(const opts *o, const char *host, orch_hmac_key *k)
{
    if (o->key_hex)
        return orch_wire_key_from_hex(o->key_hex, k, NULL, 0) == ORCH_OK;
    if (o->secret)
        return orch_wire_derive_key(o->secret, strlen(o->secret), host, k) == ORCH_OK;
    memset(k, 0, sizeof(*k)); /* insecure: the all-zero key */
    return o->insecure;
}

/* A TLS config for this side when the URL asks for TLS; NULL otherwise (or on error). */
static nng_tls_config *tls_for(const opts *o, bool server, bool *failed)
{
    *failed = false;
    if (!orch_url_is_tls(o->url))
        return NULL;
    orch_tls_files files = {
        .ca = o->tls_ca, .cert = o->tls_cert, .key = o->tls_key, .server_name = o->tls_server_name};
    nng_tls_config *cfg = NULL;
    char msg[256];
    if (orch_tls_config_new(server, &files, &cfg, msg, sizeof(msg)) != ORCH_OK) {
        fprintf(stderr, "TLS: %s\n", msg);
        *failed = true;
        return NULL;
    }
    return cfg;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) {
        puts(s);
        fflush(stdout);
        free(s);
    }
    json_decref(j);
}

static int do_listen(const opts *o)
{
    nng_socket s;
    int rv;
    bool tls_failed;
    nng_tls_config *tls = tls_for(o, true, &tls_failed);
    char lmsg[256];
    if (tls_failed)
        return 1;
    if ((rv = nng_sub0_open(&s)) != 0 || (rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0)) ||
        (rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, 1024)) ||
        (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 200))) {
        fprintf(stderr, "listen %s: %s\n", o->url, nng_strerror(rv));
        return 1;
    }
    if (orch_listen(s, o->url, tls, NULL, lmsg, sizeof(lmsg)) != ORCH_OK) {
        fprintf(stderr, "%s\n", lmsg);
        nng_close(s);
        return 1;
    }
    if (tls)
        nng_tls_config_free(tls);
    int64_t end = o->seconds > 0 ? orch_mono_ms() + o->seconds * 1000 : INT64_MAX;
    long long n = 0;
    while ((o->count <= 0 || n < o->count) && orch_mono_ms() < end) {
        char *buf = NULL;
        size_t len = 0;
        rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        n++;
        json_t *out = json_object();
        char msg[256];
        Orch__Envelope *env = NULL;
        if (orch_wire_open((uint8_t *)buf, len, &env, msg, sizeof(msg)) != ORCH_OK) {
            json_object_set_new(out, "verified", json_false());
            json_object_set_new(out, "reason", json_string(msg));
        } else {
            orch_hmac_key k;
            bool ok = key_for(o, env->host, &k) && orch_wire_verify(env, &k) == ORCH_OK;
            json_object_set_new(out, "verified", json_boolean(ok));
            json_object_set_new(out, "envelope_host", json_string(env->host));
            if (!ok)
                json_object_set_new(out, "reason", json_string("bad signature"));
            Orch__InstanceReport *r =
                orch__instance_report__unpack(NULL, env->body.len, env->body.data);
            if (r != NULL) {
                json_object_set_new(out, "report", orch_pb_to_json(&r->base));
                orch__instance_report__free_unpacked(r, NULL);
            }
            orch__envelope__free_unpacked(env, NULL);
        }
        json_object_set_new(out, "received_ms", json_integer(orch_wall_ms()));
        print_json(out);
        nng_free(buf, len);
    }
    nng_close(s);
    return 0;
}

static const struct {
    const char *name;
    Orch__CommandType type;
} types[] = {
    {"REPORT_NOW", ORCH__COMMAND_TYPE__CMD_REPORT_NOW},
    {"STOP_REPLICA", ORCH__COMMAND_TYPE__CMD_STOP_REPLICA},
    {"START_REPLICA", ORCH__COMMAND_TYPE__CMD_START_REPLICA},
    {"CHANGE_MASTER", ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER},
    {"RESET_REPLICA", ORCH__COMMAND_TYPE__CMD_RESET_REPLICA},
    {"WAIT_FOR_GTID", ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID},
    {"SET_READ_ONLY", ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY},
    {"FENCE", ORCH__COMMAND_TYPE__CMD_FENCE},
    {"SET_SEMI_SYNC", ORCH__COMMAND_TYPE__CMD_SET_SEMI_SYNC},
    {"PING", ORCH__COMMAND_TYPE__CMD_PING},
};

/* Sends request bytes and prints the reply (verified under key(host)). */
static int request(const opts *o, const uint8_t *req, size_t req_len)
{
    nng_socket s;
    int rv;
    bool tls_failed;
    nng_tls_config *tls = tls_for(o, false, &tls_failed);
    char dmsg[256] = "";
    int ms = o->recv_timeout_ms > 0 ? (int)o->recv_timeout_ms : 5000;
    if (tls_failed)
        return 2;
    if ((rv = nng_req0_open(&s)) != 0 || (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms)) ||
        (rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, ms)) ||
        (rv = nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 0)) ||
        (rv = orch_dial(s, o->url, tls, 50, 200, NULL, dmsg, sizeof(dmsg)) != ORCH_OK
                  ? NNG_ECONNREFUSED
                  : 0)) {
        if (tls)
            nng_tls_config_free(tls);
        json_t *out = json_object();
        json_object_set_new(out, "result", json_string("UNREACHABLE"));
        json_object_set_new(out, "error", json_string(dmsg[0] ? dmsg : nng_strerror(rv)));
        print_json(out);
        nng_close(s);
        return 3;
    }
    if (tls)
        nng_tls_config_free(tls);
    int64_t t0 = orch_mono_us();
    char *buf = NULL;
    size_t len = 0;
    if ((rv = nng_send(s, (void *)req, req_len, 0)) != 0 ||
        (rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
        json_t *out = json_object();
        json_object_set_new(out, "result", json_string(rv == NNG_ETIMEDOUT ? "NO_REPLY" : "ERROR"));
        json_object_set_new(out, "error", json_string(nng_strerror(rv)));
        print_json(out);
        nng_close(s);
        return 3;
    }
    json_t *out = json_object();
    json_object_set_new(out, "rtt_us", json_integer(orch_mono_us() - t0));
    char msg[256];
    Orch__Envelope *env = NULL;
    if (orch_wire_open((uint8_t *)buf, len, &env, msg, sizeof(msg)) != ORCH_OK) {
        json_object_set_new(out, "result", json_string("MALFORMED_REPLY"));
        json_object_set_new(out, "error", json_string(msg));
    } else {
        orch_hmac_key k;
        bool ok = key_for(o, env->host, &k) && orch_wire_verify(env, &k) == ORCH_OK;
        json_object_set_new(out, "verified", json_boolean(ok));
        Orch__CommandReply *r = orch__command_reply__unpack(NULL, env->body.len, env->body.data);
        if (r != NULL) {
            const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&orch__command_result__descriptor, r->result);
            json_object_set_new(out, "result", json_string(v ? v->name + 7 : "?"));
            json_object_set_new(out, "error", json_string(r->error ? r->error : ""));
            json_object_set_new(out, "reply", orch_pb_to_json(&r->base));
            orch__command_reply__free_unpacked(r, NULL);
        }
        orch__envelope__free_unpacked(env, NULL);
    }
    print_json(out);
    nng_free(buf, len);
    nng_close(s);
    return 0;
}

static int do_command(const opts *o)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    bool found = false;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(o->type, types[i].name) == 0) {
            c.type = types[i].type;
            found = true;
        }
    }
    if (!found) {
        fprintf(stderr, "unknown command type '%s'\n%s", o->type, usage);
        return 2;
    }
    c.protocol_version = ORCH_PROTOCOL_VERSION;
    c.epoch = (uint64_t)o->epoch;
    c.command_id = (uint64_t)o->id;
    c.target_host = (char *)(o->target ? o->target : o->host);
    c.sent_at_ms = orch_wall_ms();
    c.leader = (char *)"orch-wiretool";
    if (o->master_host) {
        c.master_host = (char *)o->master_host;
        c.has_master_port = true;
        c.master_port = (uint32_t)o->master_port;
    }
    c.gtid_set = (char *)o->gtid_set;
    if (o->timeout_ms > 0) {
        c.has_timeout_ms = true;
        c.timeout_ms = (uint32_t)o->timeout_ms;
    }
    if (o->have_read_only) {
        c.has_read_only = true;
        c.read_only = o->read_only;
    }
    if (o->io_only) {
        c.has_io_thread_only = true;
        c.io_thread_only = true;
    }
    if (o->start) {
        c.has_start_replica = true;
        c.start_replica = true;
    }
    const char *signer = o->sign_host ? o->sign_host : o->host;
    orch_hmac_key k;
    if (!key_for(o, signer, &k)) {
        fprintf(stderr, "need --secret, --key or --insecure\n");
        return 2;
    }
    uint8_t *body, *env;
    size_t body_len, env_len;
    if (orch_wire_pack(&c.base, &body, &body_len) != ORCH_OK ||
        orch_wire_seal(ORCH__ENVELOPE__KIND__COMMAND, signer, &k, body, body_len, &env, &env_len) !=
            ORCH_OK) {
        fprintf(stderr, "cannot build the command\n");
        return 1;
    }
    free(body);
    int rc = request(o, env, env_len);
    free(env);
    return rc;
}

static int do_raw(const opts *o)
{
    size_t n = strlen(o->hex) / 2;
    uint8_t *buf = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(o->hex + 2 * i, "%2x", &v) != 1) {
            free(buf);
            fprintf(stderr, "bad hex\n");
            return 2;
        }
        buf[i] = (uint8_t)v;
    }
    int rc = request(o, buf, n);
    free(buf);
    return rc;
}

static long long num(const char *s, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "bad number for %s: '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", 1, NULL, 'u'},
        {"secret", 1, NULL, 's'},
        {"key", 1, NULL, 'k'},
        {"insecure", 0, NULL, 'I'},
        {"count", 1, NULL, 'n'},
        {"seconds", 1, NULL, 'S'},
        {"host", 1, NULL, 'H'},
        {"epoch", 1, NULL, 'e'},
        {"id", 1, NULL, 'i'},
        {"type", 1, NULL, 't'},
        {"master-host", 1, NULL, 'm'},
        {"master-port", 1, NULL, 'p'},
        {"gtid-set", 1, NULL, 'g'},
        {"timeout-ms", 1, NULL, 'T'},
        {"read-only", 1, NULL, 'r'},
        {"io-only", 0, NULL, 'o'},
        {"start", 0, NULL, 'a'},
        {"target", 1, NULL, 'x'},
        {"sign-host", 1, NULL, 'y'},
        {"tls-ca", 1, NULL, 'A'},
        {"tls-cert", 1, NULL, 'C'},
        {"tls-key", 1, NULL, 'K'},
        {"tls-server-name", 1, NULL, 'N'},
        {"hex", 1, NULL, 'z'},
        {"recv-timeout-ms", 1, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *mode = argv[1];
    opts o = {0};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o.url = optarg;
            break;
        case 's':
            o.secret = optarg;
            break;
        case 'k':
            o.key_hex = optarg;
            break;
        case 'I':
            o.insecure = true;
            break;
        case 'n':
            o.count = num(optarg, "--count");
            break;
        case 'S':
            o.seconds = num(optarg, "--seconds");
            break;
        case 'H':
            o.host = optarg;
            break;
        case 'e':
            o.epoch = num(optarg, "--epoch");
            break;
        case 'i':
            o.id = num(optarg, "--id");
            break;
        case 't':
            o.type = optarg;
            break;
        case 'm':
            o.master_host = optarg;
            break;
        case 'p':
            o.master_port = num(optarg, "--master-port");
            break;
        case 'g':
            o.gtid_set = optarg;
            break;
        case 'T':
            o.timeout_ms = num(optarg, "--timeout-ms");
            break;
        case 'r':
            o.have_read_only = true;
            o.read_only = num(optarg, "--read-only") != 0;
            break;
        case 'o':
            o.io_only = true;
            break;
        case 'a':
            o.start = true;
            break;
        case 'x':
            o.target = optarg;
            break;
        case 'y':
            o.sign_host = optarg;
            break;
        case 'z':
            o.hex = optarg;
            break;
        case 'A':
            o.tls_ca = optarg;
            break;
        case 'C':
            o.tls_cert = optarg;
            break;
        case 'K':
            o.tls_key = optarg;
            break;
        case 'N':
            o.tls_server_name = optarg;
            break;
        case 'R':
            o.recv_timeout_ms = num(optarg, "--recv-timeout-ms");
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (o.url == NULL) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(mode, "listen") == 0)
        return do_listen(&o);
    if (strcmp(mode, "command") == 0 && o.host && o.type)
        return do_command(&o);
    if (strcmp(mode, "raw") == 0 && o.hex)
        return do_raw(&o);
    fputs(usage, stderr);
    return 2;
}
