/* coord_config.c: the coordinator's configuration table and cross-field checks. */
#include "coord_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const auth_modes[] = {"none", "basic", "basic_readonly", NULL};
static const char *const log_levels[] = {"debug", "info", "notice", "warn", "error", NULL};
static const char *const all_clusters[] = {"*", NULL};

#define F(member) offsetof(coord_config, member)
#define R         ORCH_CONFIG_RELOADABLE

static const orch_config_field fields[] = {
    {.name = "node",
     .type = ORCH_CONFIG_STRING,
     .offset = F(node),
     .help = "This coordinator's name in the node and leader tables (default: host name and "
             "API port)."},
    {.name = "fleet_secret",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(fleet_secret),
     .help = "The fleet secret: key(H) = HMAC(fleet_secret, \"orch-agent:\" + H) authenticates "
             "every agent. \"file:/path\" or \"env:NAME\" keep it out of this file."},
    {.name = "insecure",
     .type = ORCH_CONFIG_BOOL,
     .offset = F(insecure),
     .help = "Run without a fleet secret (reports unauthenticated); only for sandboxes."},
    {.name = "report_listen",
     .type = ORCH_CONFIG_STRING,
     .offset = F(report_listen),
     .def.s = "tcp://0.0.0.0:3390",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Where agents' reports arrive (tcp:// or tls+tcp://)."},
    {.name = "report_recv_buffer",
     .type = ORCH_CONFIG_INT,
     .offset = F(report_recv_buffer),
     .def.i = 8192,
     .min = 16,
     .max = 8192,
     .help = "Reports queued in nng before intake drains them (NNG_OPT_RECVBUF)."},
    {.name = "http_listen",
     .type = ORCH_CONFIG_STRING,
     .offset = F(http_listen),
     .def.s = "0.0.0.0:3000",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "HTTP API, web page and /metrics (address:port)."},
    {.name = "http_advertise",
     .type = ORCH_CONFIG_STRING,
     .offset = F(http_advertise),
     .help = "URL other coordinators forward leader routes to (http://ADDRESS:PORT; default: "
             "http_listen's, 127.0.0.1 for a wildcard)."},
    {.name = "auth_mode",
     .type = ORCH_CONFIG_ENUM,
     .offset = F(auth_mode),
     .values = auth_modes,
     .def.s = "none",
     .flags = R,
     .help = "none, basic (one user), or basic_readonly (plus a read-only user)."},
    {.name = "auth_user",
     .type = ORCH_CONFIG_STRING,
     .offset = F(auth_user),
     .flags = R,
     .help = "Basic-auth user with full access."},
    {.name = "auth_password",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(auth_password),
     .flags = R,
     .help = "Its password."},
    {.name = "auth_readonly_user",
     .type = ORCH_CONFIG_STRING,
     .offset = F(auth_readonly_user),
     .flags = R,
     .help = "Basic-auth user allowed GET requests that change nothing."},
    {.name = "auth_readonly_password",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(auth_readonly_password),
     .flags = R,
     .help = "Its password."},
    {.name = "backend_socket",
     .type = ORCH_CONFIG_STRING,
     .offset = F(backend_socket),
     .help = "Unix socket of the backend database (instead of host and port)."},
    {.name = "backend_host",
     .type = ORCH_CONFIG_STRING,
     .offset = F(backend_host),
     .def.s = "127.0.0.1",
     .help = "Backend database host (MySQL or MariaDB; Galera for HA)."},
    {.name = "backend_port",
     .type = ORCH_CONFIG_INT,
     .offset = F(backend_port),
     .def.i = 3306,
     .min = 1,
     .max = 65535,
     .help = "Backend database port."},
    {.name = "backend_user",
     .type = ORCH_CONFIG_STRING,
     .offset = F(backend_user),
     .def.s = "orch",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Backend account."},
    {.name = "backend_password",
     .type = ORCH_CONFIG_SECRET,
     .offset = F(backend_password),
     .help = "Its password."},
    {.name = "backend_database",
     .type = ORCH_CONFIG_STRING,
     .offset = F(backend_database),
     .def.s = "orch",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Schema holding orch's tables."},
    {.name = "election_interval_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(election_interval_ms),
     .def.i = 1000,
     .min = 100,
     .max = 60000,
     .help = "How often the leader lease is taken or renewed."},
    {.name = "lease_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(lease_ms),
     .def.i = 4000,
     .min = 300,
     .max = 600000,
     .help = "Leader lease, by the backend's clock; another node takes over after it lapses."},
    {.name = "lease_margin_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(lease_margin_ms),
     .def.i = 1000,
     .min = 50,
     .max = 60000,
     .help = "A leader that has not renewed within lease minus this margin steps down."},
    {.name = "write_interval_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(write_interval_ms),
     .def.i = 1000,
     .min = 50,
     .max = 60000,
     .flags = R,
     .help = "Leader: period of write-behind batches of changed instances."},
    {.name = "last_seen_interval_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(last_seen_interval_ms),
     .def.i = 10000,
     .min = 1000,
     .max = 3600000,
     .flags = R,
     .help = "Leader: period of the last-seen refresh of every instance."},
    {.name = "operator_refresh_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(operator_refresh_ms),
     .def.i = 1000,
     .min = 100,
     .max = 60000,
     .flags = R,
     .help = "How often operator state (downtime, maintenance, candidates, aliases) is re-read."},
    {.name = "stale_after_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(stale_after_ms),
     .def.i = 3000,
     .min = 200,
     .max = 600000,
     .flags = R,
     .help = "An agent not heard from for this long is stale: unknown, neither alive nor dead."},
    {.name = "warmup_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(warmup_ms),
     .def.i = 5000,
     .min = 0,
     .max = 600000,
     .flags = R,
     .help = "After start, instances not heard from yet are unknown, not dead."},
    {.name = "recover_clusters",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(recover_clusters),
     .def.list = all_clusters,
     .flags = R,
     .help = "Clusters (names or aliases) whose dead masters are recovered automatically; "
             "\"*\" for all, [] for none (detection only)."},
    {.name = "recovery_block_seconds",
     .type = ORCH_CONFIG_INT,
     .offset = F(recovery_block_seconds),
     .def.i = 3600,
     .min = 0,
     .max = 604800,
     .flags = R,
     .help = "Anti-flap: a cluster recovered within this many seconds is not recovered "
             "automatically again until the recovery is acknowledged."},
    {.name = "command_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(command_timeout_ms),
     .def.i = 2000,
     .min = 100,
     .max = 600000,
     .flags = R,
     .help = "Deadline of one command to an agent during recoveries and operations."},
    {.name = "direct_check_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(direct_check_timeout_ms),
     .def.i = 1000,
     .min = 50,
     .max = 60000,
     .flags = R,
     .help = "Deadline of the direct ReportNow sent to a silent master's agent."},
    {.name = "wait_gtid_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(wait_gtid_timeout_ms),
     .def.i = 30000,
     .min = 100,
     .max = 3600000,
     .flags = R,
     .help = "How long a candidate may take to apply its relay log before promotion."},
    {.name = "hook_timeout_ms",
     .type = ORCH_CONFIG_INT,
     .offset = F(hook_timeout_ms),
     .def.i = 30000,
     .min = 100,
     .max = 3600000,
     .flags = R,
     .help = "Deadline of each hook; its process group is killed after it."},
    {.name = "lost_downtime_seconds",
     .type = ORCH_CONFIG_INT,
     .offset = F(lost_downtime_seconds),
     .def.i = 86400,
     .min = 60,
     .max = 31536000,
     .flags = R,
     .help = "Downtime given to replicas a recovery could not repoint."},
    {.name = "reasonable_lag_seconds",
     .type = ORCH_CONFIG_INT,
     .offset = F(reasonable_lag_seconds),
     .def.i = 10,
     .min = 1,
     .max = 86400,
     .flags = R,
     .help = "Replication lag above this is a problem (replication_lag)."},
    {.name = "on_failure_detection",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(on_failure_detection),
     .flags = R,
     .help = "Hooks run on each new detection (placeholders {failureType}, {failedHost}, ...)."},
    {.name = "pre_failover",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(pre_failover),
     .flags = R,
     .help = "Hooks run before a recovery changes anything; a failing one aborts it."},
    {.name = "post_failover",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(post_failover),
     .flags = R,
     .help = "Hooks run after a successful recovery ({successorHost}, ...)."},
    {.name = "post_unsuccessful_failover",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(post_unsuccessful_failover),
     .flags = R,
     .help = "Hooks run after a recovery that failed or was refused."},
    {.name = "pre_graceful_takeover",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(pre_graceful_takeover),
     .flags = R,
     .help = "Hooks run before a graceful takeover changes anything; a failing one aborts it."},
    {.name = "post_graceful_takeover",
     .type = ORCH_CONFIG_STRLIST,
     .offset = F(post_graceful_takeover),
     .flags = R,
     .help = "Hooks run after a successful graceful takeover ({successorHost}, ...)."},
    {.name = "tls_ca",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_ca),
     .help = "CA bundle (PEM) for tls+tcp:// links with agents."},
    {.name = "tls_cert",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_cert),
     .help = "This coordinator's certificate (PEM)."},
    {.name = "tls_key",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_key),
     .help = "This coordinator's private key (PEM)."},
    {.name = "tls_server_name_suffix",
     .type = ORCH_CONFIG_STRING,
     .offset = F(tls_server_name_suffix),
     .help = "Agent certificates carry DNS names; the name checked is the agent host plus this "
             "suffix (empty: the host itself)."},
    {.name = "log_level",
     .type = ORCH_CONFIG_ENUM,
     .offset = F(log_level),
     .values = log_levels,
     .def.s = "info",
     .flags = R,
     .help = "debug, info, notice, warn or error."},
};

const orch_config_table coord_config_table = ORCH_CONFIG_TABLE(fields);

orch_err coord_config_load(const char *path, coord_config *cfg, orch_config_errors *errs)
{
    coord_config c = {0};
    orch_err err = orch_config_load_file(&coord_config_table, &c, path, errs);
    if (err != ORCH_OK)
        return err;
    size_t before = orch_config_errors_count(errs);
    if (c.fleet_secret == NULL && !c.insecure)
        orch_config_errors_add(errs, path, "fleet_secret",
                               "missing: without it reports cannot be authenticated; set it "
                               "(\"file:/etc/orch/fleet.secret\"), or \"insecure\": true in a "
                               "sandbox");
    if (c.auth_mode != COORD_AUTH_NONE && (c.auth_user == NULL || c.auth_password == NULL))
        orch_config_errors_add(errs, path, "auth_user",
                               "auth_mode %s needs auth_user and "
                               "auth_password",
                               c.auth_mode == COORD_AUTH_BASIC ? "basic" : "basic_readonly");
    if (c.auth_mode == COORD_AUTH_BASIC_READONLY &&
        (c.auth_readonly_user == NULL || c.auth_readonly_password == NULL))
        orch_config_errors_add(errs, path, "auth_readonly_user",
                               "auth_mode basic_readonly needs auth_readonly_user and "
                               "auth_readonly_password");
    if (c.lease_ms <= c.election_interval_ms + c.lease_margin_ms)
        orch_config_errors_add(errs, path, "lease_ms",
                               "%lld must exceed election_interval_ms + lease_margin_ms (%lld), "
                               "or a healthy leader would step down between renewals",
                               (long long)c.lease_ms,
                               (long long)(c.election_interval_ms + c.lease_margin_ms));
    if (strncmp(c.report_listen, "tcp://", 6) != 0 && strncmp(c.report_listen, "tls+tcp://", 10))
        orch_config_errors_add(errs, path, "report_listen", "'%s' is not tcp:// or tls+tcp://",
                               c.report_listen);
    if (strncmp(c.report_listen, "tls+tcp://", 10) == 0 &&
        (c.tls_ca == NULL || c.tls_cert == NULL || c.tls_key == NULL))
        orch_config_errors_add(errs, path, "tls_ca",
                               "tls+tcp:// needs tls_ca, tls_cert and tls_key");
    if (strrchr(c.http_listen, ':') == NULL)
        orch_config_errors_add(errs, path, "http_listen", "'%s' is not address:port",
                               c.http_listen);
    if (c.node == NULL && orch_config_errors_count(errs) == before) {
        char host[256], name[300];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(name, sizeof(name), "%s:%s", host, strrchr(c.http_listen, ':') + 1);
        c.node = strdup(name);
    }
    if (orch_config_errors_count(errs) > before || c.node == NULL) {
        orch_err rc = c.node == NULL && orch_config_errors_count(errs) == before ? ORCH_ERR_NOMEM
                                                                                 : ORCH_ERR_CONFIG;
        orch_config_fini(&coord_config_table, &c);
        return rc;
    }
    *cfg = c;
    return ORCH_OK;
}

void coord_config_fini(coord_config *cfg)
{
    orch_config_fini(&coord_config_table, cfg);
}
