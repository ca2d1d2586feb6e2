/*
 * key.h: instance keys, the `host:port` names of MySQL/MariaDB servers.
 *
 * Hostnames are compared case-insensitively and stored lower-cased; IPv6
 * literals are written in brackets ("[::1]:3306"). Pure functions; any thread.
 */
#ifndef ORCH_KEY_H
#define ORCH_KEY_H

#include "err.h"

#include <stdbool.h>
#include <stdint.h>

#define ORCH_HOST_MAX           255                             /* longest DNS name */
#define ORCH_KEY_STRLEN         (ORCH_HOST_MAX + 2 + 1 + 5 + 1) /* "[host]:port" + NUL */
#define ORCH_DEFAULT_MYSQL_PORT 3306

typedef struct orch_key {
    char host[ORCH_HOST_MAX + 1];
    uint16_t port;
} orch_key;

/*
 * Parses "host:port", "host" (port = default_port), "[v6]:port", "[v6]" or a
 * bare IPv6 literal ("::1", port = default_port). Hostnames may hold letters,
 * digits, '-', '_' and '.'; they are lower-cased. Port must be 1..65535; pass
 * default_port 0 to make the port required. On failure *out is untouched and
 * msg says what was wrong.
 */
orch_err orch_key_parse(const char *s, uint16_t default_port, orch_key *out, char *msg,
                        size_t msglen) ORCH_MUST_CHECK;

/* Builds a key from parts with the same checks as orch_key_parse. */
orch_err orch_key_make(const char *host, long port, orch_key *out, char *msg,
                       size_t msglen) ORCH_MUST_CHECK;

/* Writes "host:port" (brackets around IPv6) into buf; returns buf. */
char *orch_key_format(const orch_key *key, char *buf, size_t buflen);

bool orch_key_equal(const orch_key *a, const orch_key *b);

/* Total order: host, then port. */
int orch_key_compare(const orch_key *a, const orch_key *b);

/* True when host is an IPv6 literal (contains ':'). */
bool orch_host_is_ipv6(const char *host);

#endif
