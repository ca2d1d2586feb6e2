/*
 * wire.c: envelope sealing and checking, key derivation, report freshness.
 *
 * The HMAC covers a canonical byte string rather than the serialized envelope,
 * so that the signature does not depend on protobuf field order:
 *
 *   "orch-envelope" || u32be(protocol_version) || u8(kind)
 *                   || u32be(len(host)) || host || body
 */
#include "wire.h"

#include <mbedtls/md.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char envelope_tag[] = "orch-envelope";

static orch_err hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                            uint8_t out[ORCH_HMAC_LEN])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL || mbedtls_md_hmac(md, key, keylen, data, len, out) != 0)
        return ORCH_ERR_INVAL;
    return ORCH_OK;
}

orch_err orch_wire_derive_key(const void *fleet_secret, size_t secret_len, const char *host,
                              orch_hmac_key *out)
{
    static const char prefix[] = "orch-agent:";
    if (fleet_secret == NULL || secret_len == 0 || host == NULL || *host == '\0')
        return ORCH_ERR_INVAL;
    size_t hostlen = strlen(host);
    if (hostlen > 1024)
        return ORCH_ERR_TOOBIG;
    char data[sizeof(prefix) + 1024];
    memcpy(data, prefix, sizeof(prefix) - 1);
    memcpy(data + sizeof(prefix) - 1, host, hostlen);
    return hmac_sha256(fleet_secret, secret_len, data, sizeof(prefix) - 1 + hostlen, out->b);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

orch_err orch_wire_key_from_hex(const char *hex, orch_hmac_key *out, char *msg, size_t msglen)
{
    if (hex == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no key");
    while (isspace((unsigned char)*hex))
        hex++;
    size_t len = strlen(hex);
    while (len > 0 && isspace((unsigned char)hex[len - 1]))
        len--;
    if (len != 2 * ORCH_HMAC_LEN)
        return orch_fail(msg, msglen, ORCH_ERR_PARSE,
                         "a host key is %d hex digits, got %zu characters", 2 * ORCH_HMAC_LEN, len);
    orch_hmac_key k;
    for (size_t i = 0; i < ORCH_HMAC_LEN; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "non-hex character at offset %zu",
                             hi < 0 ? 2 * i : 2 * i + 1);
        k.b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = k;
    return ORCH_OK;
}

void orch_wire_key_to_hex(const orch_hmac_key *key, char *buf, size_t buflen)
{
    static const char digits[] = "0123456789abcdef";
    if (buflen < 2 * ORCH_HMAC_LEN + 1) {
        if (buflen > 0)
            buf[0] = '\0';
        return;
    }
    for (size_t i = 0; i < ORCH_HMAC_LEN; i++) {
        buf[2 * i] = digits[key->b[i] >> 4];
        buf[2 * i + 1] = digits[key->b[i] & 15];
    }
    buf[2 * ORCH_HMAC_LEN] = '\0';
}

/* Computes the envelope HMAC over the canonical string (see the file comment). */
static orch_err envelope_hmac(uint32_t version, uint32_t kind, const char *host,
                              const uint8_t *body, size_t body_len, const orch_hmac_key *key,
                              uint8_t out[ORCH_HMAC_LEN])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    size_t hostlen = strlen(host);
    uint8_t hdr[4 + 1 + 4] = {
        (uint8_t)(version >> 24),
        (uint8_t)(version >> 16),
        (uint8_t)(version >> 8),
        (uint8_t)version,
        (uint8_t)kind,
        (uint8_t)(hostlen >> 24),
        (uint8_t)(hostlen >> 16),
        (uint8_t)(hostlen >> 8),
        (uint8_t)hostlen,
    };
    orch_err err = ORCH_ERR_INVAL;

    if (md == NULL)
        return ORCH_ERR_INVAL;
    mbedtls_md_init(&ctx);
    if (mbedtls_md_setup(&ctx, md, 1) == 0 &&
        mbedtls_md_hmac_starts(&ctx, key->b, ORCH_HMAC_LEN) == 0 &&
        mbedtls_md_hmac_update(&ctx, (const uint8_t *)envelope_tag, sizeof(envelope_tag) - 1) ==
            0 &&
        mbedtls_md_hmac_update(&ctx, hdr, sizeof(hdr)) == 0 &&
        mbedtls_md_hmac_update(&ctx, (const uint8_t *)host, hostlen) == 0 &&
        mbedtls_md_hmac_update(&ctx, body, body_len) == 0 && mbedtls_md_hmac_finish(&ctx, out) == 0)
        err = ORCH_OK;
    mbedtls_md_free(&ctx);
    return err;
}

orch_err orch_wire_pack(const ProtobufCMessage *m, uint8_t **out, size_t *outlen)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > ORCH_WIRE_MAX)
        return ORCH_ERR_TOOBIG;
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return ORCH_ERR_NOMEM;
    protobuf_c_message_pack(m, buf);
    *out = buf;
    *outlen = len;
    return ORCH_OK;
}

orch_err orch_wire_seal(Orch__Envelope__Kind kind, const char *host, const orch_hmac_key *key,
                        const uint8_t *body, size_t body_len, uint8_t **out, size_t *outlen)
{
    uint8_t mac[ORCH_HMAC_LEN];
    if (host == NULL || *host == '\0' || (body == NULL && body_len > 0))
        return ORCH_ERR_INVAL;
    if (body_len > ORCH_WIRE_MAX)
        return ORCH_ERR_TOOBIG;
    orch_err err =
        envelope_hmac(ORCH_PROTOCOL_VERSION, (uint32_t)kind, host, body, body_len, key, mac);
    if (err != ORCH_OK)
        return err;
    Orch__Envelope env = ORCH__ENVELOPE__INIT;
    env.protocol_version = ORCH_PROTOCOL_VERSION;
    env.kind = kind;
    env.host = (char *)host;
    env.body.data = (uint8_t *)body;
    env.body.len = body_len;
    env.hmac.data = mac;
    env.hmac.len = sizeof(mac);
    return orch_wire_pack(&env.base, out, outlen);
}

orch_err orch_wire_open(const uint8_t *buf, size_t len, Orch__Envelope **env_out, char *msg,
                        size_t msglen)
{
    if (buf == NULL || len == 0)
        return orch_fail(msg, msglen, ORCH_ERR_PROTO, "empty message");
    if (len > ORCH_WIRE_MAX)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "message of %zu bytes exceeds %d", len,
                         ORCH_WIRE_MAX);
    Orch__Envelope *env = orch__envelope__unpack(NULL, len, buf);
    if (env == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_PROTO, "malformed envelope (%zu bytes)", len);
    orch_err err = ORCH_OK;
    if (env->protocol_version != ORCH_PROTOCOL_VERSION)
        err = orch_fail(msg, msglen, ORCH_ERR_PROTO, "protocol version %u, expected %d",
                        env->protocol_version, ORCH_PROTOCOL_VERSION);
    else if (env->kind != ORCH__ENVELOPE__KIND__REPORT &&
             env->kind != ORCH__ENVELOPE__KIND__COMMAND && env->kind != ORCH__ENVELOPE__KIND__REPLY)
        err = orch_fail(msg, msglen, ORCH_ERR_PROTO, "unknown envelope kind %d", (int)env->kind);
    else if (env->host == NULL || env->host[0] == '\0' || strlen(env->host) > 1024)
        err = orch_fail(msg, msglen, ORCH_ERR_PROTO, "envelope without a valid host identity");
    else if (env->hmac.len != ORCH_HMAC_LEN)
        err = orch_fail(msg, msglen, ORCH_ERR_PROTO, "HMAC of %zu bytes, expected %d",
                        env->hmac.len, ORCH_HMAC_LEN);
    if (err != ORCH_OK) {
        orch__envelope__free_unpacked(env, NULL);
        return err;
    }
    *env_out = env;
    return ORCH_OK;
}

orch_err orch_wire_verify(const Orch__Envelope *env, const orch_hmac_key *key)
{
    uint8_t mac[ORCH_HMAC_LEN];
    if (env->hmac.len != ORCH_HMAC_LEN)
        return ORCH_ERR_AUTH;
    if (envelope_hmac(env->protocol_version, (uint32_t)env->kind, env->host, env->body.data,
                      env->body.len, key, mac) != ORCH_OK)
        return ORCH_ERR_AUTH;
    uint8_t diff = 0;
    for (size_t i = 0; i < ORCH_HMAC_LEN; i++)
        diff |= (uint8_t)(mac[i] ^ env->hmac.data[i]);
    return diff == 0 ? ORCH_OK : ORCH_ERR_AUTH;
}

orch_fresh_verdict orch_freshness_check(orch_freshness *st, const uint8_t *boot_id,
                                        size_t boot_id_len, uint64_t seq, int64_t sent_at_ms,
                                        int64_t now_mono_ms, int64_t boot_grace_ms)
{
    if (boot_id == NULL || boot_id_len != ORCH_BOOT_ID_LEN)
        return ORCH_FRESH_BAD_BOOT_ID;
    if (st->known) {
        if (memcmp(st->boot_id, boot_id, ORCH_BOOT_ID_LEN) == 0) {
            if (seq <= st->seq)
                return ORCH_FRESH_REPLAY;
        } else if (sent_at_ms <= st->sent_at_ms &&
                   now_mono_ms - st->accepted_mono_ms <= boot_grace_ms) {
            return ORCH_FRESH_OLD_BOOT;
        }
    }
    st->known = true;
    memcpy(st->boot_id, boot_id, ORCH_BOOT_ID_LEN);
    st->seq = seq;
    st->sent_at_ms = sent_at_ms;
    st->accepted_mono_ms = now_mono_ms;
    return ORCH_FRESH_OK;
}

const char *orch_fresh_verdict_name(orch_fresh_verdict v)
{
    switch (v) {
    case ORCH_FRESH_OK:
        return "fresh";
    case ORCH_FRESH_REPLAY:
        return "replay";
    case ORCH_FRESH_OLD_BOOT:
        return "old_boot";
    case ORCH_FRESH_BAD_BOOT_ID:
        return "bad_boot_id";
    }
    return "unknown";
}
