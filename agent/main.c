/* main.c: orch-agent's command line. */
#include "agent.h"
#include "agent_config.h"
#include "daemon.h"
#include "log.h"

#include <mysql.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: orch-agent [options]\n"
    "\n"
    "orch's agent: probes the local MySQL/MariaDB server, reports its state to every\n"
    "coordinator, and executes the elected leader's commands (fenced by epoch).\n"
    "\n"
    "Options:\n"
    "  -c, --config PATH    configuration file (default /etc/orch/agent.json)\n"
    "      --check-config   load and check the configuration, print problems, exit\n"
    "      --print-config   print the effective configuration as JSON and exit\n"
    "      --print-sample   print a sample configuration with every default and exit\n"
    "      --config-help    describe every configuration key and exit\n"
    "  -h, --help           this text\n"
    "  -V, --version        print the version\n"
    "\n"
    "Signals: SIGHUP reloads the reloadable keys (promotion_rule, data_center, region,\n"
    "environment, intervals, coordinators, aliases, log_level); SIGTERM stops.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration.\n";

int main(int argc, char **argv)
{
    static const orch_daemon_cli cli = {.name = "orch-agent",
                                        .default_config = "/etc/orch/agent.json",
                                        .usage = usage,
                                        .table = &agent_config_table};
    orch_daemon_mode mode;
    const char *path;
    orch_log_set_program(cli.name);
    int rc0 = orch_daemon_parse_args(&cli, argc, argv, &mode, &path);
    if (rc0 >= 0)
        return rc0;
    agent_config cfg = {0};
    orch_hmac_key key;
    orch_config_errors errs = {0};
    orch_err err = agent_config_load(path, &cfg, &key, &errs);
    orch_config_errors_write(&errs, stderr);
    orch_config_errors_fini(&errs);
    if (err != ORCH_OK) {
        fprintf(stderr,
                "orch-agent: %s has errors (orch-agent --config-help describes every key)\n", path);
        return ORCH_EXIT_CONFIG;
    }
    if (mode == ORCH_DAEMON_CHECK) {
        printf("%s: OK\n", path);
        agent_config_fini(&cfg);
        return ORCH_EXIT_OK;
    }
    if (mode == ORCH_DAEMON_PRINT) {
        err = orch_config_print(&agent_config_table, &cfg, stdout);
        agent_config_fini(&cfg);
        return err == ORCH_OK ? ORCH_EXIT_OK : ORCH_EXIT_FAILURE;
    }
    if (cfg.insecure && cfg.host_key == NULL)
        orch_log(ORCH_LOG_WARN, "ORCH-INSECURE", path,
                 "running without a host key: reports and commands are not authenticated; "
                 "only for sandboxes");

    /* A peer that hangs up mid-write must cost an error, not the process. */
    signal(SIGPIPE, SIG_IGN);
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "orch-agent: cannot initialise the MySQL client library\n");
        agent_config_fini(&cfg);
        return ORCH_EXIT_FAILURE;
    }
    char msg[512];
    agent *a = agent_new(path, &cfg, &key, msg, sizeof(msg));
    if (a == NULL) {
        orch_log(ORCH_LOG_ERROR, "ORCH-AGENT-FAILED", NULL, "%s", msg);
        agent_config_fini(&cfg);
        mysql_library_end();
        return ORCH_EXIT_FAILURE;
    }
    int rc = agent_run(a);
    agent_free(a);
    mysql_library_end();
    orch_log(ORCH_LOG_NOTICE, "ORCH-AGENT-STOP", NULL, "stopped");
    return rc;
}
