/* transport.c: dialers and listeners with optional mutual TLS (see transport.h). */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

bool orch_url_is_tls(const char *url)
{
    return url != NULL && strncmp(url, "tls+tcp://", 10) == 0;
}

/* Reads a whole PEM file (at most 1 MiB) into a malloc'd string. */
static char *read_pem(const char *path, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 1024 * 1024, n;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

orch_err orch_tls_config_new(bool server, const orch_tls_files *files, nng_tls_config **out,
                             char *msg, size_t msglen)
{
    nng_tls_config *cfg = NULL;
    char *cert = NULL, *key = NULL;
    orch_err err = ORCH_ERR_CONFIG;
    int rv;

    if (files == NULL || files->ca == NULL || files->cert == NULL || files->key == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "TLS needs a CA, a certificate and a key");
    if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) != 0)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "TLS config: %s", nng_strerror(rv));
    if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
        (rv = nng_tls_config_ca_file(cfg, files->ca)) != 0) {
        orch_fail(msg, msglen, err, "TLS CA file %s: %s", files->ca, nng_strerror(rv));
        goto fail;
    }
    if ((cert = read_pem(files->cert, msg, msglen)) == NULL ||
        (key = read_pem(files->key, msg, msglen)) == NULL)
        goto fail;
    if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
        orch_fail(msg, msglen, err, "TLS certificate %s / key %s: %s", files->cert, files->key,
                  nng_strerror(rv));
        goto fail;
    }
    if (!server && files->server_name != NULL &&
        (rv = nng_tls_config_server_name(cfg, files->server_name)) != 0) {
        orch_fail(msg, msglen, err, "TLS server name: %s", nng_strerror(rv));
        goto fail;
    }
    free(cert);
    free(key);
    *out = cfg;
    return ORCH_OK;
fail:
    free(cert);
    free(key);
    nng_tls_config_free(cfg);
    return err;
}

static int jitter(int lo, int hi)
{
    unsigned r = 0;
    if (hi <= lo || getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
        return lo;
    return lo + (int)(r % (unsigned)(hi - lo));
}

orch_err orch_dial(nng_socket sock, const char *url, nng_tls_config *tls, int min_ms, int max_ms,
                   nng_dialer *out, char *msg, size_t msglen)
{
    nng_dialer d;
    int rv = nng_dialer_create(&d, sock, url);
    if (rv != 0)
        return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "dial %s: %s", url, nng_strerror(rv));
    /* Spread reconnects: the first retry lands anywhere in [min, 2*min). */
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, jitter(min_ms, 2 * min_ms));
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, jitter(max_ms, max_ms + max_ms / 2 + 1));
    nng_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
    nng_dialer_set_bool(d, NNG_OPT_TCP_KEEPALIVE, true);
    if (orch_url_is_tls(url)) {
        if (tls == NULL) {
            nng_dialer_close(d);
            return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "%s needs TLS settings", url);
        }
        if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) != 0) {
            nng_dialer_close(d);
            return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "dial %s: TLS: %s", url,
                             nng_strerror(rv));
        }
    }
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        return orch_fail(msg, msglen, ORCH_ERR_IO, "dial %s: %s", url, nng_strerror(rv));
    }
    if (out != NULL)
        *out = d;
    return ORCH_OK;
}

orch_err orch_listen(nng_socket sock, const char *url, nng_tls_config *tls, nng_listener *out,
                     char *msg, size_t msglen)
{
    nng_listener l;
    int rv = nng_listener_create(&l, sock, url);
    if (rv != 0)
        return orch_fail(msg, msglen, ORCH_ERR_CONFIG, "listen %s: %s", url, nng_strerror(rv));
    if (orch_url_is_tls(url)) {
        if (tls == NULL || (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls)) != 0) {
            nng_listener_close(l);
            return orch_fail(msg, msglen, ORCH_ERR_CONFIG,
                             "listen %s: TLS settings missing or "
                             "refused",
                             url);
        }
    }
    if ((rv = nng_listener_start(l, 0)) != 0) {
        nng_listener_close(l);
        return orch_fail(msg, msglen, ORCH_ERR_IO, "listen %s: %s", url, nng_strerror(rv));
    }
    if (out != NULL)
        *out = l;
    return ORCH_OK;
}
