/*
 * fuzz_command.h: what fuzz_command.c and its seed generator agree on.
 *
 * The first byte of every fuzz input selects what the rest is:
 *   even  (FUZZ_MODE_RAW)     a whole request as it arrives on the agent's rep
 *                             socket: an Envelope that must carry a valid HMAC
 *                             (random bytes almost never do);
 *   odd   (FUZZ_MODE_SEALED)  a Command body, which the target seals itself under
 *                             FUZZ_HOST and the fixed key, so that half of all
 *                             inputs reach decoding and validation. Bits 1-3 of
 *                             the byte pick the envelope: 0-5 a command for
 *                             FUZZ_HOST, 6 a REPORT envelope (wrong kind), 7 a
 *                             command signed for FUZZ_OTHER_HOST (not for us).
 */
#ifndef ORCH_FUZZ_COMMAND_H
#define ORCH_FUZZ_COMMAND_H

#include "wire.h"

#define FUZZ_HOST        "db1.fuzz"
#define FUZZ_OTHER_HOST  "db2.fuzz"
#define FUZZ_MODE_RAW    0x00
#define FUZZ_MODE_SEALED 0x01

/* The agent's host key in the target: bytes 0x01..0x20. */
static inline void fuzz_command_key(orch_hmac_key *key)
{
    for (int i = 0; i < ORCH_HMAC_LEN; i++)
        key->b[i] = (uint8_t)(i + 1);
}

#endif
