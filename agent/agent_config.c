/* agent_config.c: the agent's configuration table and cross-field checks. */
#include "agent_config.h"

#include "log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const promotion_rules[] = {"neutral", "prefer", "prefer_not", "must_not", NULL};
static const char *const log_levels[] = {"debug", "info", "notice", "warn", "error", NULL};
static const char *const default_coordinators[] = {"tcp://127.0.0.1:3390", NULL};

#define F(member) offsetof(agent_config, member)
#define R         ORCH_CONFIG_RELOADABLE

static const orch_config_field fields[] = {
    {.name = "host",
     .type = ORCH_CONFIG_STRING,
     .offset = F(host),
     .help = "This host's identity H (default: the machine's host name); the coordinators "
             "accept its reports only under key(H)."},
    {.name = "host_key",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(host_key),
     .help = "key(H) as 64 hex digits (orchctl agent-key H); \"file:/path\" or \"env:NAME\" "
             "keep it out of this file."},
    {.name = "insecure",
     .type = ORCH_CONFIG_BOOL,
     .offset = F(insecure),
     .help = "Run without host_key (reports unauthenticated); only for sandboxes."},
    {.name = "aliases",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(aliases),
     .flags = R,
     .help = "More names and addresses this host answers to (its own are added)."},
    {.name = "mysql_socket",
     .type = ORCH_CONFIG_STRING,
     .offset = F(mysql_socket),
     .help = "Unix socket of the local server; when set, used instead of mysql_host."},
    {.name = "mysql_host",
     .type = ORCH_CONFIG_STRING,
     .offset = F(mysql_host),
     .def.s = "127.0.0.1",
     .help = "Address of the local server when no socket is set."},
    {.name = "mysql_port",
     .type = ORCH_CONFIG_INT,
     .offset = F(mysql_port),
     .def.i = 3306,
     .min = 1,
     .max = 65535,
     .help = "Port of the local server."},
    {.name = "mysql_user",
     .type = ORCH_CONFIG_STRING,
     .offset = F(mysql_user),
     .def.s = "orch_agent",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Local account the agent probes and acts with."},
    {.name = "mysql_password",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(mysql_password),
     .help = "Its password (inline, \"file:/path\" or \"env:NAME\")."},
    {.name = "replication_user",
     .type = ORCH_CONFIG_STRING,
     .offset = F(replication_user),
     .def.s = "repl",
     .help = "Account replicas use to connect to a new master (ChangeMaster)."},
    {.name = "replication_password",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(replication_password),
     .help = "Its password; never sent over the wire."},
    {.name = "coordinators",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(coordinators),
     .def.list = default_coordinators,
     .flags = R | ORCH_CONFIG_NONEMPTY,
     .help = "Report listeners of every coordinator (tcp://host:3390 or tls+tcp://...)."},
    {.name = "command_listen",
     .type = ORCH_CONFIG_STRING,
     .offset = F(command_listen),
     .def.s = "tcp://0.0.0.0:3391",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Where the agent takes commands from the leader."},
    {.name = "command_advertise",
     .type = ORCH_CONFIG_STRING,
     .offset = F(command_advertise),
     .help = "URL the leader dials (default: command_listen with this host's name)."},
    {.name = "command_workers",
     .type = ORCH_CONFIG_INT,
     .offset = F(command_workers),
     .def.i = 4,
     .min = 1,
     .max = 64,
     .help = "Commands executed at once."},
    {.name = "probe_interval_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(probe_interval_ms),
     .def.i = 500,
     .min = 50,
     .max = 60000,
     .flags = R,
     .help = "How often the local server is probed."},
    {.name = "probe_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(probe_timeout_ms),
     .def.i = 500,
     .min = 50,
     .max = 60000,
     .flags = R,
     .help = "A probe without an answer after this long reports the server UNRESPONSIVE."},
    {.name = "report_interval_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(report_interval_ms),
     .def.i = 1000,
     .min = 50,
     .max = 60000,
     .flags = R,
     .help = "Longest gap between two reports (heartbeat); changes go out at once."},
    {.name = "witness_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(witness_timeout_ms),
     .def.i = 500,
     .min = 20,
     .max = 60000,
     .flags = R,
     .help = "Deadline for the master's greeting in the witness check."},
    {.name = "promotion_rule",
     .type = ORCH_CONFIG_ENUM,
     .offset = F(promotion_rule),
     .values = promotion_rules,
     .def.s = "neutral",
     .flags = R,
     .help = "Preference for this server as a new master."},
    {.name = "data_center",
     .type = ORCH_CONFIG_STRING,
     .offset = F(data_center),
     .flags = R,
     .help = "Data center, used to prefer candidates near the old master."},
    {.name = "region",
     .type = ORCH_CONFIG_STRING,
     .offset = F(region),
     .flags = R,
     .help = "Region, the next preference after data center."},
    {.name = "environment",
     .type = ORCH_CONFIG_STRING,
     .offset = F(environment),
     .flags = R,
     .help = "Environment label (prod, staging, ...), shown by the API."},
    {.name = "state_file",
     .type = ORCH_CONFIG_STRING,
     .offset = F(state_file),
     .def.s = "/var/lib/orch/agent.state",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Crash-safe record of the highest leader epoch obeyed and of fencing."},
    {.name = "fence_when_isolated",
     .type = ORCH_CONFIG_BOOL,
     .offset = F(fence_when_isolated),
     .flags = R,
     .help = "Set a writable master read-only when no coordinator and no replica is heard."},
    {.name = "isolation_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(isolation_timeout_ms),
     .def.i = 10000,
     .min = 1000,
     .max = 3600000,
     .flags = R,
     .help = "How long isolation must last before self-fencing."},
    {.name = "tls_ca",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_ca),
     .help = "CA bundle (PEM) that signs coordinator certificates, for tls+tcp:// links."},
    {.name = "tls_cert",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_cert),
     .help = "This agent's certificate (PEM)."},
    {.name = "tls_key",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_key),
     .help = "This agent's private key (PEM)."},
    {.name = "tls_server_name",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_server_name),
     .help = "Name expected in coordinator certificates (DNS SAN; IP SANs do not match)."},
    {.name = "log_level",
     .type = ORCH_CONFIG_ENUM,
     .offset = F(log_level),
     .values = log_levels,
     .def.s = "info",
     .flags = R,
     .help = "debug, info, notice, warn or error."},
};

const orch_config_table agent_config_table = ORCH_CONFIG_TABLE(fields);

const char *agent_promotion_rule_name(int rule)
{
    if (rule < 0 || rule > AGENT_PROMOTION_MUST_NOT)
        return "unknown";
    return promotion_rules[rule];
}

static bool url_ok(const char *url)
{
    return strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tls+tcp://", 10) == 0;
}

static bool any_tls(const agent_config *cfg)
{
    if (strncmp(cfg->command_listen, "tls+tcp://", 10) == 0)
        return true;
    for (size_t i = 0; i < cfg->coordinators.n; i++) {
        if (strncmp(cfg->coordinators.v[i], "tls+tcp://", 10) == 0)
            return true;
    }
    return false;
}

orch_err agent_config_load(const char *path, agent_config *cfg, orch_hmac_key *key,
                           orch_config_errors *errs)
{
    agent_config c = {0};
    orch_err err = orch_config_load_file(&agent_config_table, &c, path, errs);
    if (err != ORCH_OK)
        return err;

    /* Cross-field checks, reported like the table's own, all at once. */
    size_t before = orch_config_errors_count(errs);
    char msg[200];
    if (c.host == NULL || c.host[0] == '\0') {
        char name[256];
        if (gethostname(name, sizeof(name)) != 0)
            snprintf(name, sizeof(name), "localhost");
        name[sizeof(name) - 1] = '\0';
        free(c.host);
        c.host = strdup(name);
    }
    if (c.host_key != NULL) {
        if (orch_wire_key_from_hex(c.host_key, key, msg, sizeof(msg)) != ORCH_OK)
            orch_config_errors_add(errs, path, "host_key", "%s", msg);
    } else if (!c.insecure) {
        orch_config_errors_add(errs, path, "host_key",
                               "missing; derive it with `orchctl agent-key %s` (or set "
                               "\"insecure\": true in a sandbox)",
                               c.host ? c.host : "HOST");
    } else {
        memset(key, 0, sizeof(*key));
    }
    for (size_t i = 0; i < c.coordinators.n; i++) {
        if (!url_ok(c.coordinators.v[i]))
            orch_config_errors_add(errs, path, "coordinators",
                                   "'%s' is not tcp://host:port or tls+tcp://host:port",
                                   c.coordinators.v[i]);
    }
    if (!url_ok(c.command_listen))
        orch_config_errors_add(errs, path, "command_listen",
                               "'%s' is not tcp://host:port or tls+tcp://host:port",
                               c.command_listen);
    if (any_tls(&c) && (c.tls_ca == NULL || c.tls_cert == NULL || c.tls_key == NULL))
        orch_config_errors_add(errs, path, "tls_ca",
                               "tls+tcp:// links need tls_ca, tls_cert and tls_key");
    if (c.host == NULL || orch_config_errors_count(errs) > before) {
        orch_err rc = c.host == NULL ? ORCH_ERR_NOMEM : ORCH_ERR_CONFIG;
        orch_config_fini(&agent_config_table, &c);
        return rc;
    }
    *cfg = c;
    return ORCH_OK;
}

void agent_config_fini(agent_config *cfg)
{
    orch_config_fini(&agent_config_table, cfg);
}
