/*
 * witness.h: is a MySQL server alive, seen from here, without credentials?
 *
 * Connects over TCP and waits for the server's greeting (the initial handshake
 * packet, or an error packet such as "too many connections", which also proves
 * a live server), then closes. A replica's agent runs it against its master:
 * a SIGSTOPped or disk-stalled master accepts the TCP connection in the kernel
 * but never greets, while its replicas keep showing Slave_IO_Running=Yes.
 *
 * Blocks the calling thread for at most timeout_ms (plus name resolution when
 * host is not an IP literal). Any thread; call it off event loops.
 */
#ifndef ORCH_WITNESS_H
#define ORCH_WITNESS_H

#include "err.h"

#include <stdint.h>

typedef enum orch_witness {
    ORCH_WITNESS_NOT_CHECKED = 0,
    ORCH_WITNESS_GREETING, /* the server greeted in time */
    ORCH_WITNESS_REFUSED,  /* connection refused or reset: nothing listens */
    ORCH_WITNESS_TIMEOUT,  /* no connection or no greeting within the deadline */
    ORCH_WITNESS_ERROR,    /* anything else (bad name, unexpected bytes) */
} orch_witness;

/*
 * Checks host:port. Returns the verdict; *elapsed_ms (if non-NULL) gets the time
 * spent, msg the reason for anything but GREETING.
 */
orch_witness orch_witness_check(const char *host, uint16_t port, int timeout_ms, int *elapsed_ms,
                                char *msg, size_t msglen);

const char *orch_witness_name(orch_witness w);

#endif
