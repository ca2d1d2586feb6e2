/* key.c: parsing and formatting of `host:port` instance keys. */
#include "key.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool orch_host_is_ipv6(const char *host)
{
    return strchr(host, ':') != NULL;
}

/* Hostnames: letters, digits, '-', '_', '.'; IPv6 literals: hex digits, ':', '.'. */
static bool host_chars_ok(const char *host, bool ipv6)
{
    for (const char *p = host; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (ipv6 ? !(isxdigit(c) || c == ':' || c == '.')
                 : !(isalnum(c) || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

orch_err orch_key_make(const char *host, long port, orch_key *out, char *msg, size_t msglen)
{
    size_t len = host ? strlen(host) : 0;
    if (len == 0)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty host name");
    if (len > ORCH_HOST_MAX)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "host name longer than %d characters",
                         ORCH_HOST_MAX);
    bool ipv6 = orch_host_is_ipv6(host);
    if (!host_chars_ok(host, ipv6))
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "invalid character in host '%s'", host);
    if (port < 1 || port > 65535)
        return orch_fail(msg, msglen, ORCH_ERR_RANGE, "port %ld is not in 1..65535", port);
    for (size_t i = 0; i <= len; i++)
        out->host[i] = (char)tolower((unsigned char)host[i]);
    out->port = (uint16_t)port;
    return ORCH_OK;
}

static orch_err parse_port(const char *s, long *out, char *msg, size_t msglen)
{
    if (*s == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "empty port");
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "port '%s' is not a number", s);
    }
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno != 0 || v < 1 || v > 65535)
        return orch_fail(msg, msglen, ORCH_ERR_RANGE, "port %s is not in 1..65535", s);
    *out = v;
    return ORCH_OK;
}

orch_err orch_key_parse(const char *s, uint16_t default_port, orch_key *out, char *msg,
                        size_t msglen)
{
    char host[ORCH_HOST_MAX + 1];
    const char *port_str = NULL;
    size_t hostlen;

    if (s == NULL || *s == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty instance key");
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "missing ']' in '%s'", s);
        hostlen = (size_t)(close - s - 1);
        if (close[1] == ':')
            port_str = close + 2;
        else if (close[1] != '\0')
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "unexpected text after ']' in '%s'", s);
        s++;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            hostlen = strlen(s); /* bare IPv6 literal, no port */
        } else if (colon != NULL) {
            hostlen = (size_t)(colon - s);
            port_str = colon + 1;
        } else {
            hostlen = strlen(s);
        }
    }
    if (hostlen > ORCH_HOST_MAX)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "host name longer than %d characters",
                         ORCH_HOST_MAX);
    memcpy(host, s, hostlen);
    host[hostlen] = '\0';

    long port = default_port;
    if (port_str != NULL) {
        orch_err err = parse_port(port_str, &port, msg, msglen);
        if (err != ORCH_OK)
            return err;
    } else if (default_port == 0) {
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "missing port in '%s' (expected host:port)",
                         host);
    }
    return orch_key_make(host, port, out, msg, msglen);
}

char *orch_key_format(const orch_key *key, char *buf, size_t buflen)
{
    if (orch_host_is_ipv6(key->host))
        snprintf(buf, buflen, "[%s]:%u", key->host, (unsigned)key->port);
    else
        snprintf(buf, buflen, "%s:%u", key->host, (unsigned)key->port);
    return buf;
}

bool orch_key_equal(const orch_key *a, const orch_key *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

int orch_key_compare(const orch_key *a, const orch_key *b)
{
    int c = strcasecmp(a->host, b->host);
    if (c != 0)
        return c;
    return (int)a->port - (int)b->port;
}
