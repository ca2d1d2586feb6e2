/* main.c: orch-coordinator's command line. */
#include "coord_config.h"
#include "coordinator.h"
#include "daemon.h"
#include "log.h"

#include <mysql.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "Usage: orch-coordinator [options]\n"
    "\n"
    "orch's coordinator: receives every agent's reports, keeps the topology of every\n"
    "cluster, elects a leader through the backend database, serves the HTTP API\n"
    "(orchestrator-compatible), the web page and /metrics.\n"
    "\n"
    "Options:\n"
    "  -c, --config PATH    configuration file (default /etc/orch/coordinator.json)\n"
    "      --check-config   load and check the configuration, print problems, exit\n"
    "      --print-config   print the effective configuration as JSON and exit\n"
    "      --print-sample   print a sample configuration with every default and exit\n"
    "      --config-help    describe every configuration key and exit\n"
    "  -h, --help           this text\n"
    "  -V, --version        print the version\n"
    "\n"
    "Signals: SIGHUP reloads the reloadable keys; SIGTERM stops (a leader hands the\n"
    "lease over at once).\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration.\n";

int main(int argc, char **argv)
{
    static const orch_daemon_cli cli = {.name = "orch-coordinator",
                                        .default_config = "/etc/orch/coordinator.json",
                                        .usage = usage,
                                        .table = &coord_config_table};
    orch_daemon_mode mode;
    const char *path;
    orch_log_set_program(cli.name);
    int rc0 = orch_daemon_parse_args(&cli, argc, argv, &mode, &path);
    if (rc0 >= 0)
        return rc0;
    coord_config cfg = {0};
    orch_config_errors errs = {0};
    orch_err err = coord_config_load(path, &cfg, &errs);
    orch_config_errors_write(&errs, stderr);
    orch_config_errors_fini(&errs);
    if (err != ORCH_OK) {
        fprintf(stderr,
                "orch-coordinator: %s has errors (orch-coordinator --config-help describes every "
                "key)\n",
                path);
        return ORCH_EXIT_CONFIG;
    }
    if (mode != ORCH_DAEMON_RUN) {
        if (mode == ORCH_DAEMON_CHECK)
            printf("%s: OK\n", path);
        else
            err = orch_config_print(&coord_config_table, &cfg, stdout);
        coord_config_fini(&cfg);
        return err == ORCH_OK ? ORCH_EXIT_OK : ORCH_EXIT_FAILURE;
    }
    if (cfg.fleet_secret == NULL)
        orch_log(ORCH_LOG_WARN, "ORCH-INSECURE", path,
                 "running without a fleet secret: any host can send reports for any instance; "
                 "only for sandboxes");
    /* A peer that hangs up mid-write must cost an error, not the process. */
    signal(SIGPIPE, SIG_IGN);
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "orch-coordinator: cannot initialise the MySQL client library\n");
        coord_config_fini(&cfg);
        return ORCH_EXIT_FAILURE;
    }
    char msg[512];
    coordinator *co = coordinator_new(path, &cfg, msg, sizeof(msg));
    if (co == NULL) {
        orch_log(ORCH_LOG_ERROR, "ORCH-COORDINATOR-FAILED", NULL, "%s", msg);
        coord_config_fini(&cfg);
        mysql_library_end();
        return ORCH_EXIT_FAILURE;
    }
    int rc = coordinator_run(co);
    coordinator_free(co);
    mysql_library_end();
    orch_log(ORCH_LOG_NOTICE, "ORCH-COORDINATOR-STOP", NULL, "stopped");
    return rc;
}
