/*
 * coord_config.h: orch-coordinator's configuration, described by one table.
 *
 * Loaded at start and reloaded (SIGHUP) on the loop thread. Worker threads
 * (store, election) get copies of what they need when they start; the
 * reloadable keys they use are passed to them through their own locked
 * setters.
 */
#ifndef ORCH_COORD_CONFIG_H
#define ORCH_COORD_CONFIG_H

#include "config.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum coord_auth_mode {
    COORD_AUTH_NONE = 0,
    COORD_AUTH_BASIC,          /* one user, full access */
    COORD_AUTH_BASIC_READONLY, /* plus a read-only user */
} coord_auth_mode;

typedef struct coord_config {
    char *node;         /* this coordinator's name (default: host name + ":" + API port) */
    char *fleet_secret; /* SECRET: derives key(H) for every agent host */
    bool insecure;      /* run without a fleet secret (sandbox only; warns) */

    char *report_listen; /* sub socket, e.g. tcp://0.0.0.0:3390 */
    int64_t report_recv_buffer;

    char *http_listen;    /* e.g. 0.0.0.0:3000 */
    char *http_advertise; /* URL other nodes forward to (default http://node-host:port) */
    int auth_mode;        /* coord_auth_mode */
    char *auth_user;
    char *auth_password; /* SECRET */
    char *auth_readonly_user;
    char *auth_readonly_password; /* SECRET */

    char *backend_socket;
    char *backend_host;
    int64_t backend_port;
    char *backend_user;
    char *backend_password; /* SECRET */
    char *backend_database;

    int64_t election_interval_ms;
    int64_t lease_ms;
    int64_t lease_margin_ms;
    int64_t write_interval_ms;     /* write-behind batch period */
    int64_t last_seen_interval_ms; /* periodic last-seen refresh */
    int64_t operator_refresh_ms;   /* operator state re-read */

    int64_t stale_after_ms; /* an agent silent this long is stale (unknown) */
    int64_t warmup_ms;      /* after start / becoming leader: judge nobody unheard */

    /* Recovery */
    orch_strlist recover_clusters; /* clusters recovered automatically ("*": all) */
    int64_t recovery_block_seconds;
    int64_t command_timeout_ms;
    int64_t direct_check_timeout_ms;
    int64_t wait_gtid_timeout_ms;
    int64_t hook_timeout_ms;
    int64_t lost_downtime_seconds;
    int64_t reasonable_lag_seconds;
    orch_strlist on_failure_detection, pre_failover, post_failover, post_unsuccessful_failover;
    orch_strlist pre_graceful_takeover, post_graceful_takeover;

    char *tls_ca, *tls_cert, *tls_key; /* report listener (tls+tcp://) and command dialing */
    char *tls_server_name_suffix;      /* commands: agent certificate names */

    int log_level;
} coord_config;

extern const orch_config_table coord_config_table;

/*
 * Loads path and checks what the table cannot (a fleet secret unless insecure,
 * auth users when auth is on, TLS files as a set, lease > interval + margin).
 * Problems go to errs; ORCH_ERR_CONFIG when any. On success *cfg owns its strings.
 */
orch_err coord_config_load(const char *path, coord_config *cfg,
                           orch_config_errors *errs) ORCH_MUST_CHECK;

void coord_config_fini(coord_config *cfg);

#endif
