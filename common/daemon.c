/* daemon.c: the daemons' shared command line and reload logging (see daemon.h). */
#include "daemon.h"

#include "log.h"

#include <getopt.h>
#include <stdio.h>

int orch_daemon_parse_args(const orch_daemon_cli *cli, int argc, char **argv,
                           orch_daemon_mode *mode, const char **path)
{
    enum { OPT_CHECK = 256, OPT_PRINT, OPT_SAMPLE, OPT_CFGHELP };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"print-config", no_argument, NULL, OPT_PRINT},
        {"print-sample", no_argument, NULL, OPT_SAMPLE},
        {"config-help", no_argument, NULL, OPT_CFGHELP},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *mode = ORCH_DAEMON_RUN;
    *path = cli->default_config;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            *path = optarg;
            break;
        case 'h':
            fputs(cli->usage, stdout);
            return ORCH_EXIT_OK;
        case 'V':
            printf("%s %s\n", cli->name, ORCH_VERSION);
            return ORCH_EXIT_OK;
        case OPT_CHECK:
            *mode = ORCH_DAEMON_CHECK;
            break;
        case OPT_PRINT:
            *mode = ORCH_DAEMON_PRINT;
            break;
        case OPT_SAMPLE:
            return orch_config_print_sample(cli->table, stdout) == ORCH_OK ? ORCH_EXIT_OK
                                                                           : ORCH_EXIT_FAILURE;
        case OPT_CFGHELP:
            return orch_config_print_help(cli->table, stdout) == ORCH_OK ? ORCH_EXIT_OK
                                                                         : ORCH_EXIT_FAILURE;
        default:
            fputs(cli->usage, stderr);
            return ORCH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n\n%s", cli->name, argv[optind], cli->usage);
        return ORCH_EXIT_USAGE;
    }
    return -1;
}

void orch_daemon_apply_reload(const orch_config_table *table, void *cur, void *fresh,
                              const char *path)
{
    orch_config_changes ch = {0};
    if (orch_config_reload(table, cur, fresh, &ch) == ORCH_OK) {
        for (size_t i = 0; i < ch.nreloaded; i++)
            orch_info(path, "reloaded %s", ch.reloaded[i]);
        for (size_t i = 0; i < ch.nrestart; i++)
            orch_warn(path, "%s changed but needs a restart to take effect", ch.restart[i]);
        if (ch.nreloaded == 0 && ch.nrestart == 0)
            orch_info(path, "reloaded: nothing changed");
    } else {
        orch_error(path, "reload: out of memory; the running configuration stays in effect");
    }
    orch_config_changes_fini(&ch);
    orch_config_fini(table, fresh);
}
