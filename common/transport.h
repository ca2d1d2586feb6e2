/*
 * transport.h: nng sockets as orch uses them.
 *
 * URLs are tcp://host:port or tls+tcp://host:port. TLS is mutual: both sides
 * present a certificate signed by the configured CA; clients always set the
 * server name (mbedtls 2.28 matches DNS SANs only, not IP SANs). nng 1.5.2 does
 * not tell a server which certificate its peer presented, so identity lives in
 * the messages (wire.h), not in the link.
 *
 * Dialers reconnect by themselves; their reconnect times are jittered so that
 * a coordinator restart does not become a handshake storm (a TLS handshake
 * costs ~28 ms of CPU per side).
 *
 * Setup functions are called at start or on reload by the owning thread.
 */
#ifndef ORCH_TRANSPORT_H
#define ORCH_TRANSPORT_H

#include "err.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>

typedef struct orch_tls_files {
    const char *ca;          /* CA bundle (PEM) */
    const char *cert;        /* our certificate (PEM) */
    const char *key;         /* our private key (PEM) */
    const char *server_name; /* expected in the server's certificate (clients) */
} orch_tls_files;

/* True when url asks for TLS (tls+tcp://). */
bool orch_url_is_tls(const char *url);

/*
 * Builds a TLS config for a client (server == false) or a server, requiring
 * the peer's certificate. On success *out is owned by the caller
 * (nng_tls_config_free; nng keeps its own reference when it is set on a
 * dialer or listener).
 */
orch_err orch_tls_config_new(bool server, const orch_tls_files *files, nng_tls_config **out,
                             char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * Starts a non-blocking dialer on sock for url (TLS when the URL says so, then
 * tls must be non-NULL). It connects in the background and reconnects after
 * every loss, with jittered back-off between min_ms and max_ms. *out (may be
 * NULL) receives the dialer, to close it when the URL leaves the config.
 */
orch_err orch_dial(nng_socket sock, const char *url, nng_tls_config *tls, int min_ms, int max_ms,
                   nng_dialer *out, char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Starts a listener on sock for url (TLS when the URL says so). */
orch_err orch_listen(nng_socket sock, const char *url, nng_tls_config *tls, nng_listener *out,
                     char *msg, size_t msglen) ORCH_MUST_CHECK;

#endif
