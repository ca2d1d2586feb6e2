/*
 * wire.h: what crosses the network, sealed and checked.
 *
 * Every message travels in an orch.Envelope (proto/orch.proto) that names the
 * host identity H whose key signs it, key(H) = HMAC-SHA256(fleet_secret,
 * "orch-agent:" + H), and carries an HMAC-SHA256 under key(H) over a canonical
 * byte string (see wire.c). Coordinators hold the fleet secret and derive keys;
 * an agent holds only its own key.
 *
 * Also here: the freshness rule for reports (boot id, sequence, send time), a
 * pure function shared by everyone who receives reports.
 *
 * All functions are pure or allocate only what they return; any thread.
 */
#ifndef ORCH_WIRE_H
#define ORCH_WIRE_H

#include "err.h"
#include "orch.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Major protocol version; peers drop messages of any other major version. */
#define ORCH_PROTOCOL_VERSION 1

/* Largest envelope accepted or produced. Reports are ~0.3-1 KiB. */
#define ORCH_WIRE_MAX (256 * 1024)

#define ORCH_HMAC_LEN    32
#define ORCH_BOOT_ID_LEN 16

typedef struct orch_hmac_key {
    uint8_t b[ORCH_HMAC_LEN];
} orch_hmac_key;

/* key(H) = HMAC-SHA256(fleet_secret, "orch-agent:" + host). */
orch_err orch_wire_derive_key(const void *fleet_secret, size_t secret_len, const char *host,
                              orch_hmac_key *out) ORCH_MUST_CHECK;

/* Parses 64 hex digits (whitespace around them allowed) into a key. */
orch_err orch_wire_key_from_hex(const char *hex, orch_hmac_key *out, char *msg,
                                size_t msglen) ORCH_MUST_CHECK;

/* Writes the key as 64 lower-case hex digits + NUL; buflen must be >= 65. */
void orch_wire_key_to_hex(const orch_hmac_key *key, char *buf, size_t buflen);

/*
 * Packs body (a serialized InstanceReport, Command or CommandReply) into a
 * signed envelope. On success *out is a malloc'd buffer of *outlen bytes that
 * the caller frees.
 */
orch_err orch_wire_seal(Orch__Envelope__Kind kind, const char *host, const orch_hmac_key *key,
                        const uint8_t *body, size_t body_len, uint8_t **out,
                        size_t *outlen) ORCH_MUST_CHECK;

/*
 * Unpacks an envelope from untrusted bytes and checks its shape: size limit,
 * protocol version, known kind, non-empty host, HMAC length. Does NOT verify the
 * HMAC (the receiver must first find the key for env->host). On success
 * *env_out is owned by the caller: free with orch__envelope__free_unpacked(env,
 * NULL). msg says what was wrong.
 */
orch_err orch_wire_open(const uint8_t *buf, size_t len, Orch__Envelope **env_out, char *msg,
                        size_t msglen) ORCH_MUST_CHECK;

/* Verifies env's HMAC under key, in constant time. ORCH_OK or ORCH_ERR_AUTH. */
orch_err orch_wire_verify(const Orch__Envelope *env, const orch_hmac_key *key) ORCH_MUST_CHECK;

/*
 * Serializes a protobuf-c message into a new malloc'd buffer (*out, *outlen).
 * Fails with ORCH_ERR_TOOBIG beyond ORCH_WIRE_MAX.
 */
orch_err orch_wire_pack(const ProtobufCMessage *m, uint8_t **out, size_t *outlen) ORCH_MUST_CHECK;

/*
 * Report freshness, kept per agent identity by every receiver.
 *
 * Rules: within one boot, a report is fresh only if its sequence number is
 * higher than the newest accepted (a burst of old messages after a partition
 * heals is dropped). A report from another boot is fresh if it was sent later
 * than the newest accepted one, or if the previous boot has been silent for
 * longer than `boot_grace_ms` (covers a host clock stepped backwards across a
 * restart; a stale old-boot message cannot pass after a newer boot was
 * accepted because its send time is older).
 */
typedef struct orch_freshness {
    bool known;
    uint8_t boot_id[ORCH_BOOT_ID_LEN];
    uint64_t seq;
    int64_t sent_at_ms;
    int64_t accepted_mono_ms; /* receiver's monotonic time of the last accept */
} orch_freshness;

typedef enum orch_fresh_verdict {
    ORCH_FRESH_OK = 0,
    ORCH_FRESH_REPLAY,      /* same boot, sequence not higher */
    ORCH_FRESH_OLD_BOOT,    /* another boot, older send time, previous boot recent */
    ORCH_FRESH_BAD_BOOT_ID, /* boot id of the wrong length */
} orch_fresh_verdict;

/*
 * Applies the rules above; on ORCH_FRESH_OK updates *st to the new report.
 * now_mono_ms is the receiver's monotonic clock.
 */
orch_fresh_verdict orch_freshness_check(orch_freshness *st, const uint8_t *boot_id,
                                        size_t boot_id_len, uint64_t seq, int64_t sent_at_ms,
                                        int64_t now_mono_ms, int64_t boot_grace_ms);

const char *orch_fresh_verdict_name(orch_fresh_verdict v);

#endif
