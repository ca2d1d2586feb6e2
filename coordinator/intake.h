/*
 * intake.h: agents' reports in, registry updated.
 *
 * A sub socket listens on report_listen; its pollable receive fd
 * (NNG_OPT_RECVFD) is a level-triggered read event on the coordinator's loop,
 * drained without blocking, a bounded number of messages per wake-up. Each
 * message is opened (size, version, kind), authenticated under key(H) for the
 * host H it names (derived from the fleet secret), decoded, checked to be about
 * H, and applied to the registry, which drops replays and old boots. Anything
 * else is counted by reason and logged at most once per peer per minute; it
 * never crashes, blocks, or touches the registry.
 *
 * Peer addresses are read when a pipe is added (NNG_PIPE_EV_ADD_POST, on an
 * nng thread, into a locked table), never from a queued message's pipe later.
 *
 * Thread: the loop thread, except the pipe callback (nng's thread, which only
 * touches the peer table under its lock).
 */
#ifndef ORCH_INTAKE_H
#define ORCH_INTAKE_H

#include "err.h"
#include "registry.h"

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stddef.h>
#include <stdint.h>

typedef enum intake_reject {
    INTAKE_MALFORMED = 0, /* not an envelope, or a bad one */
    INTAKE_TOOBIG,
    INTAKE_VERSION,  /* another protocol major version */
    INTAKE_KIND,     /* not a report */
    INTAKE_AUTH,     /* HMAC does not verify under key(host) */
    INTAKE_DECODE,   /* body is not an InstanceReport */
    INTAKE_IMPOSTOR, /* report about another host than the one that signed */
    INTAKE_REPLAY,
    INTAKE_OLD_BOOT,
    INTAKE_INVALID,
    INTAKE_REJECT__COUNT
} intake_reject;

const char *intake_reject_name(intake_reject r);

typedef struct intake_counters {
    uint64_t received;
    uint64_t accepted;
    uint64_t rejected[INTAKE_REJECT__COUNT];
    uint64_t drains; /* loop wake-ups that drained messages */
} intake_counters;

typedef struct intake intake;

/* Called on the loop thread after a report was accepted. */
typedef void (*intake_accepted_fn)(void *arg, reg_instance *inst);

typedef struct intake_conf {
    const char *url;          /* tcp://... or tls+tcp://... */
    nng_tls_config *tls;      /* for tls+tcp:// (borrowed) */
    int recv_buffer;          /* NNG_OPT_RECVBUF */
    const char *fleet_secret; /* NULL: insecure (all-zero key) */
    int64_t boot_grace_ms;    /* see orch_freshness_check */
    registry *reg;            /* borrowed; loop-owned */
    intake_accepted_fn accepted;
    void *arg;
} intake_conf;

/* Listens and registers the read event on base. NULL on failure, msg says why. */
intake *intake_start(struct event_base *base, const intake_conf *conf, char *msg, size_t msglen);

/* Closes the socket and frees. Loop thread. Safe on NULL. */
void intake_stop(intake *in);

/* The counters (borrowed; valid until intake_stop). */
const intake_counters *intake_get_counters(const intake *in);

/*
 * Processes one message as if it had arrived (takes nothing; buf is
 * borrowed). Used by the receive path and by tests and benchmarks that feed
 * bytes directly. peer names the sender for logs (may be NULL).
 */
void intake_process(intake *in, const uint8_t *buf, size_t len, const char *peer);

#endif
