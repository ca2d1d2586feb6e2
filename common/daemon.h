/*
 * daemon.h: what orch-agent and orch-coordinator share on their command line
 * and around configuration reloads. Called from main() and from the loop
 * thread's SIGHUP handler.
 */
#ifndef ORCH_DAEMON_H
#define ORCH_DAEMON_H

#include "config.h"

typedef enum orch_daemon_mode {
    ORCH_DAEMON_RUN = 0,
    ORCH_DAEMON_CHECK, /* --check-config */
    ORCH_DAEMON_PRINT, /* --print-config */
} orch_daemon_mode;

typedef struct orch_daemon_cli {
    const char *name;           /* "orch-agent" */
    const char *default_config; /* "/etc/orch/agent.json" */
    const char *usage;          /* the whole --help text */
    const orch_config_table *table;
} orch_daemon_cli;

/*
 * Parses the daemon's options (-c/--config, --check-config, --print-config,
 * --print-sample, --config-help, --help, --version). Options that answer by
 * themselves (help, version, sample, config help) and usage errors are
 * handled here: the return value is then the exit code. Otherwise returns -1
 * with *mode and *path set.
 */
int orch_daemon_parse_args(const orch_daemon_cli *cli, int argc, char **argv,
                           orch_daemon_mode *mode, const char **path);

/*
 * After a successful load of `fresh` on SIGHUP: applies the reloadable keys to
 * cur (orch_config_reload), logs each one reloaded and each one that needs a
 * restart, then frees fresh. Loop thread.
 */
void orch_daemon_apply_reload(const orch_config_table *table, void *cur, void *fresh,
                              const char *path);

#endif
