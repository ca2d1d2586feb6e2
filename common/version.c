/* version.c: server version strings to numbers and flavor. */
#include "version.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads one decimal component (0..99999) at *p and advances *p. */
static bool read_component(const char **p, int *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return false;
    long v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v > 99999)
            return false;
        s++;
    }
    *out = (int)v;
    *p = s;
    return true;
}

orch_err orch_version_parse(const char *version, const char *version_comment, orch_version *out,
                            char *msg, size_t msglen)
{
    if (version == NULL || *version == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty version string");
    const char *p = version;
    /* MariaDB advertises "5.5.5-10.11.6-MariaDB" to clients of the old protocol. */
    if (strncmp(p, "5.5.5-", 6) == 0 && strstr(p, "MariaDB") != NULL)
        p += 6;
    orch_version v = {0};
    if (!read_component(&p, &v.major) || *p++ != '.' || !read_component(&p, &v.minor))
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "version '%s' is not X.Y[.Z]", version);
    if (*p == '.') {
        p++;
        if (!read_component(&p, &v.patch))
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "version '%s' has a bad patch number",
                             version);
    }
    if (*p != '\0' && *p != '-' && *p != '+' && *p != '_')
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "unexpected '%c' in version '%s'", *p,
                         version);
    snprintf(v.suffix, sizeof(v.suffix), "%s", p);

    if (strcasestr(version, "mariadb") != NULL ||
        (version_comment != NULL && strcasestr(version_comment, "mariadb") != NULL))
        v.flavor = ORCH_FLAVOR_MARIADB;
    else if (strcasestr(version, "percona") != NULL ||
             (version_comment != NULL && strcasestr(version_comment, "percona") != NULL))
        v.flavor = ORCH_FLAVOR_PERCONA;
    else
        v.flavor = ORCH_FLAVOR_MYSQL;
    *out = v;
    return ORCH_OK;
}

static int cmp_int(int a, int b)
{
    return (a > b) - (a < b);
}

int orch_version_compare_series(const orch_version *a, const orch_version *b)
{
    int c = cmp_int(a->major, b->major);
    return c != 0 ? c : cmp_int(a->minor, b->minor);
}

int orch_version_compare(const orch_version *a, const orch_version *b)
{
    int c = orch_version_compare_series(a, b);
    return c != 0 ? c : cmp_int(a->patch, b->patch);
}

bool orch_version_same_series(const orch_version *a, const orch_version *b)
{
    return orch_version_compare_series(a, b) == 0;
}

const char *orch_flavor_name(orch_flavor flavor)
{
    switch (flavor) {
    case ORCH_FLAVOR_MYSQL:
        return "mysql";
    case ORCH_FLAVOR_MARIADB:
        return "mariadb";
    case ORCH_FLAVOR_PERCONA:
        return "percona";
    case ORCH_FLAVOR_UNKNOWN:
        break;
    }
    return "unknown";
}

/* MySQL (and Percona) at or after major.minor.patch. */
static bool mysql_at_least(const orch_version *v, int major, int minor, int patch)
{
    if (v->flavor == ORCH_FLAVOR_MARIADB || v->flavor == ORCH_FLAVOR_UNKNOWN)
        return false;
    orch_version want = {.major = major, .minor = minor, .patch = patch};
    return orch_version_compare(v, &want) >= 0;
}

bool orch_version_uses_replica_syntax(const orch_version *v)
{
    return mysql_at_least(v, 8, 0, 22);
}

bool orch_version_uses_binary_log_status(const orch_version *v)
{
    return mysql_at_least(v, 8, 2, 0);
}
