/*
 * cmd.h: orchctl's command table, command line, API paths and exit codes.
 *
 * Every command is one row of a table: its name (orchestrator-client's), what
 * it needs from the command line, the API path it GETs (a template), how its
 * answer is printed, and its help. Parsing, path building, help and the
 * mapping of answers to exit codes are pure functions over that table, so they
 * are unit-tested without a coordinator.
 *
 * Single-threaded; nothing here does I/O except ctl_cmd_help (writes to a FILE).
 */
#ifndef ORCHCTL_CMD_H
#define ORCHCTL_CMD_H

#include "err.h"
#include "key.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* What a command needs (ctl_cmd.needs) or accepts (ctl_cmd.takes). */
enum {
    CTL_A_INSTANCE = 1u << 0, /* -i host[:port] */
    CTL_A_DEST = 1u << 1,     /* -d host[:port] */
    CTL_A_CLUSTER = 1u << 2,  /* a cluster: -a alias, or -i host[:port] of a member */
    CTL_A_OWNER = 1u << 3,    /* --owner (default $USER) */
    CTL_A_REASON = 1u << 4,   /* --reason */
    CTL_A_DURATION = 1u << 5, /* --duration (needs: default 10m) */
    CTL_A_RULE = 1u << 6,     /* --promotion-rule */
    CTL_A_PATH = 1u << 7,     /* api: the path, positional or --path */
    CTL_A_HOST = 1u << 8,     /* agent-key: the host, positional */
    CTL_A_TOPIC = 1u << 9,    /* help: a command name, positional */
    CTL_A_SEARCH = 1u << 10,  /* search: -i as a free substring */
};

/* How an answer is printed (output.h). */
typedef enum ctl_out {
    CTL_OUT_NONE = 0,       /* local commands */
    CTL_OUT_RAW,            /* the body as it came (api) */
    CTL_OUT_TOPOLOGY,       /* Details of /api/topology, coloured on a terminal */
    CTL_OUT_TABULATED,      /* the cluster's instances as a tree with columns */
    CTL_OUT_KEY,            /* .Key */
    CTL_OUT_MASTER_KEY,     /* .MasterKey (nothing for a master) */
    CTL_OUT_KEYS,           /* .[].Key */
    CTL_OUT_BROKEN_KEYS,    /* .[] with a stopped thread and an error: .Key */
    CTL_OUT_CLUSTER_NAME,   /* .ClusterName */
    CTL_OUT_CLUSTER_ALIAS,  /* .ClusterAlias */
    CTL_OUT_CLUSTERS,       /* .[].ClusterName */
    CTL_OUT_CLUSTERS_ALIAS, /* .[] "ClusterName,ClusterAlias" */
    CTL_OUT_PROBLEMS,       /* .[] "key: problem,problem" */
    CTL_OUT_ANALYSIS,       /* replication-analysis Details */
    CTL_OUT_AUDIT,          /* audit-recovery: one line per recovery */
    CTL_OUT_LEADER,         /* /api/status: the leader's name, API and epoch */
    CTL_OUT_DETAILS_KEY,    /* .Details as a key (or .Details.Key) */
    CTL_OUT_DETAILS_MOVED,  /* .Details instance: "key<master" */
    CTL_OUT_DETAILS_KEYS,   /* .Details[] keys */
    CTL_OUT_SUCCESSOR,      /* .Details.SuccessorKey */
    CTL_OUT_DETAILS_TEXT,   /* .Details: strings bare, other JSON compact; else .Message */
} ctl_out;

enum {
    CTL_CMD_WRITE = 1u << 0, /* changes something: needs the leader; --dry-run applies */
    CTL_CMD_LOCAL = 1u << 1, /* never talks to a coordinator */
    CTL_CMD_NOREQ = 1u << 2, /* finds the API but sends nothing (which-api) */
};

typedef struct ctl_cmd {
    const char *name;
    const char *group;     /* heading in the command list */
    unsigned needs;        /* CTL_A_*: required */
    unsigned takes;        /* CTL_A_*: optional */
    const char *path;      /* API path template (below), NULL for local commands */
    const char *json_path; /* with --json, when it differs (topology: the instances) */
    ctl_out out;
    unsigned flags; /* CTL_CMD_* */
    const char *summary;
    const char *help;    /* more, or NULL */
    const char *example; /* one example line, or NULL */
} ctl_cmd;

/*
 * Path templates: literal text with placeholders, each value percent-encoded:
 *   {i} -i as "host/port"        {d} -d as "host/port"
 *   {c} the cluster: -a, else -i as "host:port"
 *   {owner} {reason} {rule} {s}  as given (s: -i of search, unparsed)
 *   {duration} as "<seconds>s"
 * "[...]" is kept only when every placeholder inside has a value
 * ("/api/graceful-master-takeover/{c}[/{d}]").
 */

/* The table, in help order; *n gets its length. */
const ctl_cmd *ctl_cmd_table(size_t *n);

/* The command named name (aliases included: which-instance, and "slave" for "replica"), or NULL. */
const ctl_cmd *ctl_cmd_find(const char *name);

#define CTL_COLOR_AUTO   (-1)
#define CTL_COLOR_NEVER  0
#define CTL_COLOR_ALWAYS 1

#define CTL_DEFAULT_TIMEOUT_MS      30000
#define CTL_LEADER_CHECK_TIMEOUT_MS 300
#define CTL_DEFAULT_DURATION_S      600

/* A parsed command line. Strings are borrowed from argv. */
typedef struct ctl_opts {
    const ctl_cmd *cmd;
    bool help;         /* --help / -h: print the command's help (or the general one) */
    bool has_instance; /* -i parsed into instance */
    orch_key instance;
    const char *instance_raw;
    bool has_dest;
    orch_key dest;
    const char *alias;
    const char *owner; /* NULL: $USER is filled in by the caller */
    const char *reason;
    bool has_duration;
    long duration_s;
    const char *promotion_rule;
    const char *api;   /* --api */
    const char *path;  /* api's path */
    const char *host;  /* agent-key's host */
    const char *topic; /* help's command */
    bool json;
    int color; /* CTL_COLOR_* */
    int timeout_ms;
    const char *auth_file;
    const char *fleet_secret_file;
    bool dry_run;
    uint16_t default_port;
} ctl_opts;

/*
 * Parses argv (argv[0] is the program) into *o: "orchctl [flags] COMMAND
 * [flags] [ARG]" or orchestrator-client's "orchctl -c COMMAND [flags]". Flags
 * may come anywhere, as "--flag value", "--flag=value", "-f value", "-fvalue"
 * or orchestrator-client's "-flag value". Checks what the command needs and
 * refuses flags it does not take. On failure returns ORCH_ERR_INVAL (a usage
 * error) with the reason in msg; *o may be partly filled.
 */
orch_err ctl_cmd_parse(int argc, char **argv, ctl_opts *o, char *msg,
                       size_t msglen) ORCH_MUST_CHECK;

/*
 * Parses a duration: "90" or "90s", "30m", "2h", "1d", "1w", "500ms" and sums
 * of them ("1h30m"). Result in milliseconds, > 0 and at most 400 days.
 */
orch_err ctl_cmd_duration_ms(const char *s, int64_t *ms, char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * Builds the command's API path (json: its --json path) into out. False when
 * out is too small or a required value is missing (msg says which).
 */
bool ctl_cmd_path(const ctl_cmd *cmd, const ctl_opts *o, bool json, char *out, size_t outlen,
                  char *msg, size_t msglen);

/*
 * The exit code for an answer: ORCH_EXIT_OK for 2xx without "Code":"ERROR";
 * otherwise the code for the failure, with a message for the operator in msg
 * (the API's Message when there is one):
 *   401, 403                   ORCH_EXIT_AUTH
 *   404 "Unknown route"/no JSON ORCH_EXIT_REFUSED (the coordinator lacks the route)
 *   404                        ORCH_EXIT_NOTFOUND
 *   400, 414                   ORCH_EXIT_USAGE
 *   409, 412, 422, 423         ORCH_EXIT_REFUSED
 *   502, 503, 504              ORCH_EXIT_UNREACHABLE
 *   other errors ("Code":"ERROR" included) ORCH_EXIT_REFUSED for a write, else ORCH_EXIT_FAILURE
 * *unsupported is set when the route is missing (may be NULL).
 */
int ctl_cmd_classify(int status, const char *body, size_t len, bool write, bool *unsupported,
                     char *msg, size_t msglen);

/* Writes the general help (cmd NULL) or one command's help to f. */
void ctl_cmd_help(FILE *f, const ctl_cmd *cmd);

/* One-line usage of a command: "orchctl relocate -i HOST[:PORT] -d HOST[:PORT]". */
void ctl_cmd_usage(const ctl_cmd *cmd, char *buf, size_t buflen);

#endif
