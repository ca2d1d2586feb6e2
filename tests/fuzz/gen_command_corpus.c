/*
 * gen_command_corpus.c: writes the seed corpus of fuzz_command.c.
 *
 *   fuzz_gen_command_corpus OUT_DIR
 *
 * For every command type, one or more valid commands (epoch 7, target
 * FUZZ_HOST) in both input forms of fuzz_command.h: NAME.sealed (mode byte +
 * Command body) and NAME.raw (mode byte + Envelope sealed under the fixed key);
 * then damaged ones: truncated, bit-flipped, wrong kind, wrong signer, wrong
 * target, stale epoch, replayed id, other protocol version. The output is
 * deterministic (fixed send times), so regenerating changes nothing unless
 * this file or orch.proto changed. tests/fuzz/corpus/command/ is its output.
 */
#include "fuzz_command.h"

#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *out_dir;
static int written;

static void write_file(const char *name, uint8_t mode, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(&mode, 1, 1, f) != 1 || (len && fwrite(data, 1, len, f) != len) ||
        fclose(f) != 0) {
        fprintf(stderr, "gen_command_corpus: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    written++;
}

static Orch__Command base(Orch__CommandType type, uint64_t id)
{
    Orch__Command c = ORCH__COMMAND__INIT;
    c.protocol_version = ORCH_PROTOCOL_VERSION;
    c.epoch = 7;
    c.command_id = id;
    c.target_host = (char *)FUZZ_HOST;
    c.sent_at_ms = 1700000000000LL + (int64_t)id;
    c.leader = (char *)"coord1";
    c.type = type;
    return c;
}

static void pack(const Orch__Command *c, uint8_t **body, size_t *len)
{
    if (orch_wire_pack(&c->base, body, len) != ORCH_OK) {
        fprintf(stderr, "gen_command_corpus: cannot pack\n");
        exit(1);
    }
}

static void seal(Orch__Envelope__Kind kind, const char *host, const uint8_t *body, size_t len,
                 uint8_t **env, size_t *env_len)
{
    orch_hmac_key key;
    fuzz_command_key(&key);
    if (orch_wire_seal(kind, host, &key, body, len, env, env_len) != ORCH_OK) {
        fprintf(stderr, "gen_command_corpus: cannot seal\n");
        exit(1);
    }
}

/* NAME.sealed and NAME.raw for one command. */
static void emit(const char *name, const Orch__Command *c)
{
    uint8_t *body, *env;
    size_t len, env_len;
    char file[256];
    pack(c, &body, &len);
    seal(ORCH__ENVELOPE__KIND__COMMAND, FUZZ_HOST, body, len, &env, &env_len);
    snprintf(file, sizeof(file), "%s.sealed", name);
    write_file(file, FUZZ_MODE_SEALED, body, len);
    snprintf(file, sizeof(file), "%s.raw", name);
    write_file(file, FUZZ_MODE_RAW, env, env_len);
    free(body);
    free(env);
}

static void valid_commands(void)
{
    Orch__Command c;

    c = base(ORCH__COMMAND_TYPE__CMD_PING, 10);
    emit("ping", &c);
    c = base(ORCH__COMMAND_TYPE__CMD_REPORT_NOW, 11);
    emit("report_now", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_STOP_REPLICA, 12);
    emit("stop_replica", &c);
    c.has_io_thread_only = c.io_thread_only = true;
    c.channel = (char *)"east_1";
    emit("stop_replica-io-channel", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_START_REPLICA, 13);
    emit("start_replica", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER, 14);
    c.master_host = (char *)"db2.example.com";
    c.has_master_port = true;
    c.master_port = 3306;
    c.has_start_replica = c.start_replica = true;
    emit("change_master-gtid", &c);
    c.has_gtid_mode = true;
    c.gtid_mode = ORCH__GTID_MODE__GTID_MODE_CURRENT_POS;
    c.master_host = (char *)"::1";
    emit("change_master-current_pos-ipv6", &c);
    c.gtid_mode = ORCH__GTID_MODE__GTID_MODE_NONE;
    c.master_host = (char *)"10.0.0.2";
    c.master_log_file = (char *)"mysql-bin.000042";
    c.has_master_log_pos = true;
    c.master_log_pos = 4;
    c.channel = (char *)"c2";
    emit("change_master-coordinates", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_RESET_REPLICA, 15);
    emit("reset_replica", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_WAIT_FOR_GTID, 16);
    c.gtid_set = (char *)"0-101-1000,1-102-7";
    c.has_timeout_ms = true;
    c.timeout_ms = 5000;
    emit("wait_for_gtid-mariadb", &c);
    c.gtid_set = (char *)"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11,"
                         "3e11fa47-71ca-11e1-9e33-c80aa9429563:1-3:tag_a:4-9";
    emit("wait_for_gtid-mysql", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_SET_READ_ONLY, 17);
    c.has_read_only = c.read_only = true;
    c.has_super_read_only = c.super_read_only = true;
    emit("set_read_only-on", &c);
    c.read_only = c.super_read_only = false;
    emit("set_read_only-off", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_FENCE, 18);
    c.has_kill_connections = c.kill_connections = true;
    emit("fence", &c);

    c = base(ORCH__COMMAND_TYPE__CMD_SET_SEMI_SYNC, 19);
    c.has_semi_sync_master = c.semi_sync_master = true;
    c.has_semi_sync_slave = true;
    c.semi_sync_slave = false;
    emit("set_semi_sync", &c);
}

static void damaged_commands(void)
{
    Orch__Command c = base(ORCH__COMMAND_TYPE__CMD_CHANGE_MASTER, 30);
    c.master_host = (char *)"db3.example.com";
    c.has_master_port = true;
    c.master_port = 3307;
    uint8_t *body, *env;
    size_t len, env_len;
    pack(&c, &body, &len);
    seal(ORCH__ENVELOPE__KIND__COMMAND, FUZZ_HOST, body, len, &env, &env_len);

    write_file("damaged-truncated-half.raw", FUZZ_MODE_RAW, env, env_len / 2);
    write_file("damaged-truncated-last.raw", FUZZ_MODE_RAW, env, env_len - 1);
    write_file("damaged-truncated-half.sealed", FUZZ_MODE_SEALED, body, len / 2);
    env[env_len / 3] ^= 0x04; /* inside the body: the HMAC no longer matches */
    write_file("damaged-bitflip.raw", FUZZ_MODE_RAW, env, env_len);
    env[env_len / 3] ^= 0x04;
    env[env_len - 1] ^= 0x80; /* inside the HMAC */
    write_file("damaged-bad-hmac.raw", FUZZ_MODE_RAW, env, env_len);
    body[len / 2] ^= 0x10; /* body bit flip, sealed anyway */
    write_file("damaged-bitflip.sealed", FUZZ_MODE_SEALED, body, len);
    body[len / 2] ^= 0x10;
    free(env);

    seal(ORCH__ENVELOPE__KIND__REPORT, FUZZ_HOST, body, len, &env, &env_len);
    write_file("damaged-kind-report.raw", FUZZ_MODE_RAW, env, env_len);
    free(env);
    seal(ORCH__ENVELOPE__KIND__COMMAND, FUZZ_OTHER_HOST, body, len, &env, &env_len);
    write_file("damaged-other-signer.raw", FUZZ_MODE_RAW, env, env_len);
    free(env);
    write_file("damaged-kind-report.sealed", FUZZ_MODE_SEALED | (6 << 1), body, len);
    write_file("damaged-other-signer.sealed", FUZZ_MODE_SEALED | (7 << 1), body, len);
    free(body);

    c.target_host = (char *)FUZZ_OTHER_HOST;
    emit("damaged-other-target", &c);
    c.target_host = (char *)FUZZ_HOST;
    c.epoch = 3;
    emit("damaged-stale-epoch", &c);
    c.epoch = 5;
    c.command_id = 2;
    emit("damaged-replayed-id", &c);
    c.epoch = 7;
    c.protocol_version = ORCH_PROTOCOL_VERSION + 1;
    emit("damaged-protocol-version", &c);
    c.protocol_version = ORCH_PROTOCOL_VERSION;
    c.master_host = (char *)"db3'; DROP TABLE t; --";
    emit("damaged-host-injection", &c);
    c.master_host = (char *)"db3";
    c.channel = (char *)"c' OR '1";
    emit("damaged-channel-injection", &c);

    static const uint8_t garbage[] = {0x08, 0x01, 0x10, 0x02, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    write_file("damaged-garbage.raw", FUZZ_MODE_RAW, garbage, sizeof(garbage));
    write_file("damaged-empty.raw", FUZZ_MODE_RAW, NULL, 0);
    write_file("damaged-empty.sealed", FUZZ_MODE_SEALED, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    valid_commands();
    damaged_commands();
    printf("gen_command_corpus: wrote %d files to %s\n", written, out_dir);
    return 0;
}
