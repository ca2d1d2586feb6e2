/*
 * agent_config.h: orch-agent's configuration, described by one table.
 *
 * The table drives parsing of /etc/orch/agent.json, defaults, --print-config,
 * the sample in packaging/, and what SIGHUP reloads (promotion rule, data
 * center, intervals, coordinator list, log level). Loaded at start and reloaded
 * on the agent's loop thread; other threads read copies taken under the agent's
 * lock (agent.c).
 */
#ifndef ORCH_AGENT_CONFIG_H
#define ORCH_AGENT_CONFIG_H

#include "config.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum agent_promotion_rule {
    AGENT_PROMOTION_NEUTRAL = 0,
    AGENT_PROMOTION_PREFER,
    AGENT_PROMOTION_PREFER_NOT,
    AGENT_PROMOTION_MUST_NOT,
} agent_promotion_rule;

typedef struct agent_config {
    char *host;     /* identity H; default: the machine's host name */
    char *host_key; /* SECRET: key(H) as 64 hex digits */
    bool insecure;  /* allow running without host_key (sandbox only) */
    orch_strlist aliases;

    char *mysql_socket; /* preferred when set */
    char *mysql_host;
    int64_t mysql_port;
    char *mysql_user;
    char *mysql_password; /* SECRET */
    char *replication_user;
    char *replication_password; /* SECRET */

    orch_strlist coordinators; /* report URLs, e.g. tcp://10.0.0.5:3390 */
    char *command_listen;
    char *command_advertise; /* what the leader dials; default derived from listen */
    int64_t command_workers;

    int64_t probe_interval_ms;
    int64_t probe_timeout_ms;
    int64_t report_interval_ms;
    int64_t witness_timeout_ms;

    int promotion_rule; /* agent_promotion_rule */
    char *data_center;
    char *region;
    char *environment;

    char *state_file;
    bool fence_when_isolated;
    int64_t isolation_timeout_ms;

    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    char *tls_server_name;

    int log_level; /* orch_log_level */
} agent_config;

extern const orch_config_table agent_config_table;

/*
 * Loads path (defaults, then the file) and checks what the table cannot:
 * host_key parses (unless insecure), TLS files come as a set, URLs start with
 * tcp:// or tls+tcp://. Problems go to errs; returns ORCH_ERR_CONFIG when any.
 * On success *cfg owns its strings (agent_config_fini) and *key holds the key.
 */
orch_err agent_config_load(const char *path, agent_config *cfg, orch_hmac_key *key,
                           orch_config_errors *errs) ORCH_MUST_CHECK;

void agent_config_fini(agent_config *cfg);

/* "neutral", "prefer", "prefer_not", "must_not". */
const char *agent_promotion_rule_name(int rule);

#endif
