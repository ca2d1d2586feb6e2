/*
 * cmd.c: orchctl's command table and everything derived from it: the command
 * line parser, API paths, help, and the exit code of an answer.
 *
 * Command names, flags and API paths are orchestrator-client's, so that an
 * operator's habits and scripts carry over: `orchctl -c relocate -i db3 -d db2`
 * works, and so does `orchctl relocate -i db3 -d db2`. The write commands are
 * in the table before the coordinator serves their routes; until it does, the
 * coordinator answers 404 "Unknown route" and orchctl says that plainly.
 */
#include "cmd.h"

#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the table ------------------------------------------------------------------ */

#define G_TOPO  "Clusters and topology"
#define G_INST  "Instances"
#define G_MOVE  "Topology changes"
#define G_RECO  "Failure analysis and recovery"
#define G_REPL  "Replication"
#define G_DOWN  "Downtime, maintenance and candidates"
#define G_COORD "Coordinators"
#define G_ORCH  "orch"

#define A_I CTL_A_INSTANCE
#define A_D CTL_A_DEST
#define A_C CTL_A_CLUSTER

static const ctl_cmd table[] = {
    /* clusters and topology */
    {"clusters", G_TOPO, 0, 0, "/api/clusters-info", NULL, CTL_OUT_CLUSTERS, 0,
     "List the clusters, one name per line.", NULL, "orchctl clusters"},
    {"clusters-alias", G_TOPO, 0, 0, "/api/clusters-info", NULL, CTL_OUT_CLUSTERS_ALIAS, 0,
     "List the clusters as \"name,alias\".", NULL, NULL},
    {"topology", G_TOPO, A_C, 0, "/api/topology/{c}", "/api/cluster/{c}", CTL_OUT_TOPOLOGY, 0,
     "Draw a cluster as an indented tree.",
     "One instance per line, replicas under their master, each followed by\n"
     "[lag,status,version,ro/rw,binlog format,>> (log_slave_updates),GTID,semi-sync,\n"
     "downtimed] and orch's own marks: agent:down/unresponsive/auth_error/unknown,\n"
     "agent:stale (the agent went silent), maintenance, fenced, self-fenced,\n"
     "master:unresolved, master:ambiguous, problems:N. \"+ \" marks a replica that\n"
     "replicates and is freshly reported, \"- \" one that does not. In colour on a\n"
     "terminal (NO_COLOR or --color never turns it off). With --json: the cluster's\n"
     "instances (/api/cluster/...).",
     "orchctl topology -a main"},
    {"topology-tabulated", G_TOPO, A_C, 0, "/api/cluster/{c}", NULL, CTL_OUT_TABULATED, 0,
     "Draw a cluster as a tree with aligned columns.",
     "Columns: instance (indented under its master), agent state, lag, version, ro/rw,\n"
     "binary log, GTID, downtime or maintenance, problems.",
     "orchctl topology-tabulated -i db1"},
    {"which-cluster", G_TOPO, A_C, 0, "/api/cluster-info/{c}", NULL, CTL_OUT_CLUSTER_NAME, 0,
     "Print the cluster of an instance or alias.", NULL, "orchctl which-cluster -i db2:3306"},
    {"which-cluster-alias", G_TOPO, A_C, 0, "/api/cluster-info/{c}", NULL, CTL_OUT_CLUSTER_ALIAS, 0,
     "Print the alias of a cluster.", NULL, NULL},
    {"which-cluster-master", G_TOPO, A_C, 0, "/api/master/{c}", NULL, CTL_OUT_KEY, 0,
     "Print the writable master of a cluster.", NULL, "orchctl which-cluster-master -a main"},
    {"which-cluster-instances", G_TOPO, A_C, 0, "/api/cluster/{c}", NULL, CTL_OUT_KEYS, 0,
     "List the instances of a cluster.", NULL, NULL},
    {"all-clusters-masters", G_TOPO, 0, 0, "/api/masters", NULL, CTL_OUT_KEYS, 0,
     "List the writable master of every cluster.", NULL, NULL},
    {"all-instances", G_TOPO, 0, 0, "/api/all-instances", NULL, CTL_OUT_KEYS, 0,
     "List every known instance.", NULL, NULL},

    /* instances */
    {"instance", G_INST, A_I, 0, "/api/instance/{i}", NULL, CTL_OUT_KEY, 0,
     "Print an instance's host:port if it is known.",
     "Exit 5 when the coordinators do not know it. With --json: the whole instance,\n"
     "including what its agent last reported.",
     "orchctl instance -i db2 --json"},
    {"which-master", G_INST, A_I, 0, "/api/instance/{i}", NULL, CTL_OUT_MASTER_KEY, 0,
     "Print the master of an instance.", "Prints nothing for a master.",
     "orchctl which-master -i db3:3306"},
    {"which-replicas", G_INST, A_I, 0, "/api/instance-replicas/{i}", NULL, CTL_OUT_KEYS, 0,
     "List the direct replicas of an instance.", NULL, NULL},
    {"which-broken-replicas", G_INST, A_I, 0, "/api/instance-replicas/{i}", NULL,
     CTL_OUT_BROKEN_KEYS, 0, "List the replicas stopped on an error.",
     "The direct replicas of -i with a stopped replication thread and an error.", NULL},
    {"search", G_INST, CTL_A_SEARCH, 0, "/api/search?s={s}", NULL, CTL_OUT_KEYS, 0,
     "List the instances matching the -i text.",
     "Instances whose name, reported names, cluster name or alias contain the text.",
     "orchctl search -i db"},
    {"problems", G_INST, 0, A_C, "/api/problems[/{c}]", NULL, CTL_OUT_PROBLEMS, 0,
     "List the instances with problems (orch).",
     "One line per instance: \"host:port: problem,problem\".", "orchctl problems -a main"},

    /* topology changes */
    {"relocate", G_MOVE, A_I | A_D, 0, "/api/relocate/{i}/{d}", NULL, CTL_OUT_DETAILS_MOVED,
     CTL_CMD_WRITE, "Move a replica below -d, by any method.", "Prints \"replica<new master\".",
     "orchctl relocate -i db3 -d db2"},
    {"relocate-replicas", G_MOVE, A_I | A_D, 0, "/api/relocate-replicas/{i}/{d}", NULL,
     CTL_OUT_DETAILS_KEYS, CTL_CMD_WRITE, "Move all replicas of -i below -d.",
     "Prints the replicas that moved.", NULL},
    {"move-up", G_MOVE, A_I, 0, "/api/move-up/{i}", NULL, CTL_OUT_DETAILS_MOVED, CTL_CMD_WRITE,
     "Move a replica one level up.", "The replica then replicates from its master's master.", NULL},
    {"move-up-replicas", G_MOVE, A_I, 0, "/api/move-up-replicas/{i}", NULL, CTL_OUT_DETAILS_KEYS,
     CTL_CMD_WRITE, "Move all replicas of -i one level up.",
     "They then replicate from -i's master, all or none. Prints the replicas that\nmoved.",
     "orchctl move-up-replicas -i db3"},
    {"move-below", G_MOVE, A_I | A_D, 0, "/api/move-below/{i}/{d}", NULL, CTL_OUT_DETAILS_MOVED,
     CTL_CMD_WRITE, "Move a replica below its sibling (-d).", NULL, NULL},
    {"repoint", G_MOVE, A_I | A_D, 0, "/api/repoint/{i}/{d}", NULL, CTL_OUT_DETAILS_MOVED,
     CTL_CMD_WRITE, "Point a replica at -d, coordinates unchanged.",
     "The replica replicates from -d without any change of its coordinates. Use with\n"
     "care.",
     NULL},
    {"take-master", G_MOVE, A_I, 0, "/api/take-master/{i}", NULL, CTL_OUT_DETAILS_MOVED,
     CTL_CMD_WRITE, "Swap a replica with its master.", "The replica becomes its master's master.",
     NULL},

    /* failure analysis and recovery */
    {"replication-analysis", G_RECO, 0, A_C, "/api/replication-analysis[/{c}]", NULL,
     CTL_OUT_ANALYSIS, 0, "Print the failure analysis of the clusters.",
     "One line per analysed instance: \"host:port (cluster NAME): Analysis\".", NULL},
    {"recover", G_RECO, A_I, A_D, "/api/recover/{i}[/{d}]", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "Recover a failed instance now.",
     "Runs the recovery even if one ran recently (no anti-flapping block). With -d,\n"
     "that direct replica is promoted (after catching up from the most advanced) or\n"
     "the recovery refuses and says why. Prints the promoted instance.",
     "orchctl recover -i db1 -d db3"},
    {"graceful-master-takeover", G_RECO, A_C, A_D, "/api/graceful-master-takeover/{c}[/{d}]", NULL,
     CTL_OUT_SUCCESSOR, CTL_CMD_WRITE, "Planned switchover to a replica.",
     "With -d the designated replica is promoted; without it the master must have a\n"
     "single direct replica. Prints the new master.",
     "orchctl graceful-master-takeover -a main -d db2"},
    {"graceful-master-takeover-auto", G_RECO, A_C, A_D,
     "/api/graceful-master-takeover-auto/{c}[/{d}]", NULL, CTL_OUT_SUCCESSOR, CTL_CMD_WRITE,
     "Planned switchover; orch picks the replica.",
     "The coordinator picks the replica to promote unless -d names one.",
     "orchctl graceful-master-takeover-auto -a main"},
    {"force-master-failover", G_RECO, A_C, 0, "/api/force-master-failover/{c}", NULL,
     CTL_OUT_SUCCESSOR, CTL_CMD_WRITE, "Fail the master over now; orch picks.",
     "Even though the master looks healthy. The coordinator picks the replica.", NULL},
    {"force-master-takeover", G_RECO, A_C | A_D, 0, "/api/force-master-takeover/{c}/{d}", NULL,
     CTL_OUT_SUCCESSOR, CTL_CMD_WRITE, "Fail the master over now, promoting -d.",
     "Even though the master looks healthy: -d, a direct replica of the master, is\n"
     "promoted and the old master fenced (read-only, its clients killed), left out of\n"
     "replication. Prints the new master.",
     "orchctl force-master-takeover -a main -d db2"},
    {"ack-cluster-recoveries", G_RECO, A_C | CTL_A_REASON, 0,
     "/api/ack-recovery/cluster/{c}?comment={reason}", NULL, CTL_OUT_DETAILS_TEXT, CTL_CMD_WRITE,
     "Acknowledge a cluster's recoveries.",
     "Acknowledging unblocks the next recoveries of the cluster.",
     "orchctl ack-cluster-recoveries -a main --reason 'checked, fine'"},
    {"ack-all-recoveries", G_RECO, CTL_A_REASON, 0, "/api/ack-all-recoveries?comment={reason}",
     NULL, CTL_OUT_DETAILS_TEXT, CTL_CMD_WRITE, "Acknowledge every recovery.", NULL, NULL},
    {"audit-recovery", G_RECO, 0, A_C, "/api/audit-recovery[/cluster/{c}]", NULL, CTL_OUT_AUDIT, 0,
     "List recent recoveries.", "Of one cluster with -a or -i.", NULL},
    {"disable-global-recoveries", G_RECO, 0, 0, "/api/disable-global-recoveries", NULL,
     CTL_OUT_DETAILS_TEXT, CTL_CMD_WRITE, "Stop automated recoveries everywhere.",
     "Detection goes on.", NULL},
    {"enable-global-recoveries", G_RECO, 0, 0, "/api/enable-global-recoveries", NULL,
     CTL_OUT_DETAILS_TEXT, CTL_CMD_WRITE, "Allow automated recoveries again.", NULL, NULL},
    {"check-global-recoveries", G_RECO, 0, 0, "/api/check-global-recoveries", NULL,
     CTL_OUT_DETAILS_TEXT, 0, "Say whether automated recoveries are enabled.", NULL, NULL},

    /* replication */
    {"stop-replica", G_REPL, A_I, 0, "/api/stop-replica/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "STOP SLAVE on an instance.", NULL, NULL},
    {"start-replica", G_REPL, A_I, 0, "/api/start-replica/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "START SLAVE on an instance.",
     "Answers once both replication threads run, or with the reason they do not (the\n"
     "IO thread's error, for one).",
     NULL},
    {"restart-replica", G_REPL, A_I, 0, "/api/restart-replica/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "STOP SLAVE, then START SLAVE on an instance.",
     "Answers once both replication threads run again, or with the reason they do\nnot.", NULL},
    {"set-read-only", G_REPL, A_I, 0, "/api/set-read-only/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "SET GLOBAL read_only = 1 on an instance.", NULL, NULL},
    {"set-writeable", G_REPL, A_I, 0, "/api/set-writeable/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "SET GLOBAL read_only = 0 on an instance.", NULL, NULL},

    /* downtime, maintenance, candidates */
    {"begin-downtime", G_DOWN, A_I | CTL_A_OWNER | CTL_A_REASON | CTL_A_DURATION, 0,
     "/api/begin-downtime/{i}/{owner}/{reason}/{duration}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "Downtime an instance: no recovery for it.",
     "No recovery runs for the instance until the downtime ends. --duration defaults\n"
     "to 10m; --owner to $USER.",
     "orchctl begin-downtime -i db3 --reason 'disk swap' --duration 2h"},
    {"end-downtime", G_DOWN, A_I, 0, "/api/end-downtime/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "End an instance's downtime.", NULL, NULL},
    {"begin-maintenance", G_DOWN, A_I | CTL_A_OWNER | CTL_A_REASON, CTL_A_DURATION,
     "/api/begin-maintenance/{i}/{owner}/{reason}[/{duration}]", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "Take a maintenance lock on an instance.",
     "No operation touches the instance while it is locked. --owner defaults to\n"
     "$USER; --duration bounds the lock.",
     NULL},
    {"end-maintenance", G_DOWN, A_I, 0, "/api/end-maintenance/{i}", NULL, CTL_OUT_DETAILS_KEY,
     CTL_CMD_WRITE, "Release an instance's maintenance lock.", NULL, NULL},
    {"register-candidate", G_DOWN, A_I | CTL_A_RULE, 0, "/api/register-candidate/{i}/{rule}", NULL,
     CTL_OUT_DETAILS_KEY, CTL_CMD_WRITE, "Set an instance's promotion rule.",
     "RULE is prefer, neutral, prefer_not or must_not.",
     "orchctl register-candidate -i db2 --promotion-rule prefer"},

    {"forget", G_DOWN, A_I, 0, "/api/forget/{i}", NULL, CTL_OUT_DETAILS_KEY, CTL_CMD_WRITE,
     "Forget an instance (a decommissioned host).",
     "Every coordinator drops it within a second and its stored row goes. If its agent\n"
     "still reports, it comes back: stop the agent first.",
     "orchctl forget -i db9"},

    /* coordinators */
    {"leader", G_COORD, 0, 0, "/api/status", NULL, CTL_OUT_LEADER, 0,
     "Print the leading coordinator.",
     "Its name, API URL and epoch, as the coordinator asked sees them.", NULL},
    {"which-api", G_COORD, 0, 0, NULL, NULL, CTL_OUT_NONE, CTL_CMD_NOREQ,
     "Print the API URL orchctl would use.",
     "The leader's when ORCH_API lists several coordinators.", NULL},
    {"api", G_COORD, CTL_A_PATH, 0, NULL, NULL, CTL_OUT_RAW, 0,
     "GET an API path and print the body.",
     "PATH starting with '/' is taken from the root (/metrics, /api/health); otherwise\n"
     "it is under /api/ (orchestrator-client's --path). The exit code follows the\n"
     "HTTP status.",
     "orchctl api clusters-info"},

    /* orch */
    {"agent-key", G_ORCH, CTL_A_HOST, 0, NULL, NULL, CTL_OUT_NONE, CTL_CMD_LOCAL,
     "Print the agent key of HOST.",
     "key(HOST) = HMAC-SHA256(fleet secret, \"orch-agent:\" + HOST).\n"
     "The fleet secret comes from --fleet-secret-file PATH (its content minus one\n"
     "trailing newline, as the coordinator reads file: secrets) or ORCH_FLEET_SECRET.\n"
     "Prints 64 hex digits: the agent's host_key (write them to a file and point\n"
     "host_key at it with \"file:/path\"). HOST is the agent's \"host\" setting.",
     "orchctl agent-key db3.example.com --fleet-secret-file /etc/orch/fleet.secret"},
    {"version", G_ORCH, 0, 0, NULL, NULL, CTL_OUT_NONE, CTL_CMD_LOCAL, "Print orchctl's version.",
     NULL, NULL},
    {"help", G_ORCH, 0, CTL_A_TOPIC, NULL, NULL, CTL_OUT_NONE, CTL_CMD_LOCAL,
     "Print this help, or a command's.", NULL, "orchctl help relocate"},
};

const ctl_cmd *ctl_cmd_table(size_t *n)
{
    *n = N_ELEMS(table);
    return table;
}

const ctl_cmd *ctl_cmd_find(const char *name)
{
    if (name == NULL)
        return NULL;
    if (strcmp(name, "which-instance") == 0)
        name = "instance";
    /* orchestrator-client accepts "slave" for "replica" */
    char fixed[64];
    const char *slave = strstr(name, "slave");
    if (slave != NULL && strlen(name) < sizeof(fixed) - 2) {
        snprintf(fixed, sizeof(fixed), "%.*sreplica%s", (int)(slave - name), name, slave + 5);
        name = fixed;
    }
    for (size_t k = 0; k < N_ELEMS(table); k++)
        if (strcmp(table[k].name, name) == 0)
            return &table[k];
    return NULL;
}

/* ---- flags ------------------------------------------------------------------------- */

typedef enum flag_id {
    F_COMMAND,
    F_INSTANCE,
    F_DEST,
    F_ALIAS,
    F_OWNER,
    F_REASON,
    F_DURATION,
    F_RULE,
    F_API,
    F_PATH,
    F_DEFAULT_PORT,
    F_JSON,
    F_TIMEOUT,
    F_AUTH_FILE,
    F_SECRET_FILE,
    F_DRY_RUN,
    F_COLOR,
    F_NO_COLOR,
    F_HELP,
    F_VERSION,
} flag_id;

typedef struct ctl_flag {
    const char *lng;
    char shrt;
    bool arg;
    flag_id id;
    const char *metavar;
    const char *help;
} ctl_flag;

static const ctl_flag flags[] = {
    {"command", 'c', true, F_COMMAND, "COMMAND", "the command (orchestrator-client style)"},
    {"instance", 'i', true, F_INSTANCE, "HOST[:PORT]",
     "the instance (port 3306 unless given); for cluster commands, any member"},
    {"destination", 'd', true, F_DEST, "HOST[:PORT]", "the destination instance"},
    {"sibling", 's', true, F_DEST, "HOST[:PORT]", NULL},
    {"alias", 'a', true, F_ALIAS, "CLUSTER", "the cluster: its alias or name"},
    {"owner", 'o', true, F_OWNER, "NAME", "owner of a downtime or maintenance (default $USER)"},
    {"reason", 'r', true, F_REASON, "TEXT", "reason of a downtime, maintenance or acknowledgement"},
    {"duration", 'u', true, F_DURATION, "DURATION",
     "90 (seconds), 90s, 30m, 2h, 1d, 1w, 1h30m (downtime default: 10m)"},
    {"promotion-rule", 'R', true, F_RULE, "RULE", "prefer, neutral, prefer_not or must_not"},
    {"api", 'U', true, F_API, "URL", "coordinator API URL(s), overrides ORCH_API"},
    {"path", 'P', true, F_PATH, "PATH", "the path for 'api'"},
    {"default-port", 'D', true, F_DEFAULT_PORT, "PORT", "port of -i/-d when not given (3306)"},
    {"json", 0, false, F_JSON, NULL, "print the API's JSON instead of text"},
    {"timeout", 0, true, F_TIMEOUT, "DURATION", "give up on the API after this long (30s)"},
    {"auth-file", 0, true, F_AUTH_FILE, "PATH",
     "basic-auth credentials, \"user:password\" on one line"},
    {"fleet-secret-file", 0, true, F_SECRET_FILE, "PATH", "the fleet secret, for agent-key"},
    {"dry-run", 0, false, F_DRY_RUN, NULL, "print the request a write command would send"},
    {"color", 0, true, F_COLOR, "WHEN", "auto (default: on a terminal), always or never"},
    {"no-color", 0, false, F_NO_COLOR, NULL, "same as --color never"},
    {"help", 'h', false, F_HELP, NULL, "this help, or the command's"},
    {"version", 0, false, F_VERSION, NULL, "print the version"},
};

static const ctl_flag *flag_long(const char *name, size_t len)
{
    for (size_t k = 0; k < N_ELEMS(flags); k++)
        if (strlen(flags[k].lng) == len && strncmp(flags[k].lng, name, len) == 0)
            return &flags[k];
    return NULL;
}

static const ctl_flag *flag_short(char c)
{
    for (size_t k = 0; k < N_ELEMS(flags); k++)
        if (flags[k].shrt == c && c != 0)
            return &flags[k];
    return NULL;
}

/* ---- durations ------------------------------------------------------------------- */

orch_err ctl_cmd_duration_ms(const char *s, int64_t *ms, char *msg, size_t msglen)
{
    static const int64_t max_ms = 400LL * 86400 * 1000;
    if (s == NULL || *s == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty duration");
    int64_t total = 0;
    const char *p = s;
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p))
            return orch_fail(msg, msglen, ORCH_ERR_PARSE,
                             "bad duration '%s' (e.g. 90, 90s, 30m, 2h, 1d, 1h30m, 500ms)", s);
        int64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p - '0');
            if (v > max_ms)
                return orch_fail(msg, msglen, ORCH_ERR_RANGE, "duration '%s' is too long", s);
            p++;
        }
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's' || *p == '\0') {
            unit = 1000;
            p += *p ? 1 : 0;
        } else if (*p == 'm') {
            unit = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            unit = 86400 * 1000;
            p++;
        } else if (*p == 'w') {
            unit = 7 * 86400 * 1000LL;
            p++;
        } else {
            return orch_fail(msg, msglen, ORCH_ERR_PARSE,
                             "bad unit in duration '%s' (ms, s, m, h, d or w)", s);
        }
        if (v > (max_ms - total) / unit)
            return orch_fail(msg, msglen, ORCH_ERR_RANGE, "duration '%s' is too long", s);
        total += v * unit;
    }
    if (total <= 0)
        return orch_fail(msg, msglen, ORCH_ERR_RANGE, "duration '%s' must be positive", s);
    *ms = total;
    return ORCH_OK;
}

/* ---- parsing ---------------------------------------------------------------------- */

/* What was given, before it is checked against the command. */
typedef struct raw_args {
    const char *command;
    const char *instance, *dest, *alias, *owner, *reason, *duration, *rule, *path;
    const char *default_port, *timeout, *color, *api, *auth_file, *secret_file;
    const char *pos[8];
    size_t npos;
    bool help, version, json, dry_run, no_color;
} raw_args;

static void set_flag(raw_args *ra, const ctl_flag *f, const char *v)
{
    switch (f->id) {
    case F_COMMAND:
        ra->command = v;
        break;
    case F_INSTANCE:
        ra->instance = v;
        break;
    case F_DEST:
        ra->dest = v;
        break;
    case F_ALIAS:
        ra->alias = v;
        break;
    case F_OWNER:
        ra->owner = v;
        break;
    case F_REASON:
        ra->reason = v;
        break;
    case F_DURATION:
        ra->duration = v;
        break;
    case F_RULE:
        ra->rule = v;
        break;
    case F_API:
        ra->api = v;
        break;
    case F_PATH:
        ra->path = v;
        break;
    case F_DEFAULT_PORT:
        ra->default_port = v;
        break;
    case F_JSON:
        ra->json = true;
        break;
    case F_TIMEOUT:
        ra->timeout = v;
        break;
    case F_AUTH_FILE:
        ra->auth_file = v;
        break;
    case F_SECRET_FILE:
        ra->secret_file = v;
        break;
    case F_DRY_RUN:
        ra->dry_run = true;
        break;
    case F_COLOR:
        ra->color = v;
        break;
    case F_NO_COLOR:
        ra->no_color = true;
        break;
    case F_HELP:
        ra->help = true;
        break;
    case F_VERSION:
        ra->version = true;
        break;
    }
}

/* The flags -i/-d/-a/... a command accepts. */
static unsigned allowed_of(const ctl_cmd *cmd)
{
    return cmd->needs | cmd->takes;
}

static orch_err check_given(const ctl_cmd *cmd, const raw_args *ra, char *msg, size_t msglen)
{
    unsigned a = allowed_of(cmd);
    struct {
        const char *given;
        unsigned ok;
        const char *flag;
    } checks[] = {
        {ra->instance, CTL_A_INSTANCE | CTL_A_CLUSTER | CTL_A_SEARCH, "-i"},
        {ra->dest, CTL_A_DEST, "-d"},
        {ra->alias, CTL_A_CLUSTER, "-a"},
        {ra->owner, CTL_A_OWNER, "--owner"},
        {ra->reason, CTL_A_REASON, "--reason"},
        {ra->duration, CTL_A_DURATION, "--duration"},
        {ra->rule, CTL_A_RULE, "--promotion-rule"},
        {ra->path, CTL_A_PATH, "--path"},
    };
    for (size_t k = 0; k < N_ELEMS(checks); k++)
        if (checks[k].given != NULL && (a & checks[k].ok) == 0)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s does not take %s", cmd->name,
                             checks[k].flag);
    if (ra->dry_run && (cmd->flags & CTL_CMD_WRITE) == 0)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "--dry-run is for commands that change something; %s only reads",
                         cmd->name);
    return ORCH_OK;
}

static orch_err parse_key(const char *flag, const char *s, uint16_t port, orch_key *k, char *msg,
                          size_t msglen)
{
    char why[200];
    if (orch_key_parse(s, port, k, why, sizeof(why)) != ORCH_OK)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "bad %s '%s': %s", flag, s, why);
    return ORCH_OK;
}

static bool rule_ok(const char *r)
{
    static const char *const rules[] = {"prefer", "neutral", "prefer_not", "must_not"};
    for (size_t k = 0; k < N_ELEMS(rules); k++)
        if (strcmp(r, rules[k]) == 0)
            return true;
    return false;
}

orch_err ctl_cmd_parse(int argc, char **argv, ctl_opts *o, char *msg, size_t msglen)
{
    raw_args ra;
    memset(&ra, 0, sizeof(ra));
    memset(o, 0, sizeof(*o));
    o->color = CTL_COLOR_AUTO;
    o->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
    o->default_port = ORCH_DEFAULT_MYSQL_PORT;

    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (ra.npos == N_ELEMS(ra.pos))
                return orch_fail(msg, msglen, ORCH_ERR_INVAL, "too many arguments");
            ra.pos[ra.npos++] = a;
            continue;
        }
        const ctl_flag *f = NULL;
        const char *value = NULL;
        bool attached = false;
        const char *name = a[1] == '-' ? a + 2 : a + 1;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (a[1] == '-' || nlen > 1)
            f = flag_long(name, nlen); /* "--alias", or orchestrator-client's "-alias" */
        if (f != NULL) {
            if (eq != NULL) {
                value = eq + 1;
                attached = true;
            }
        } else if (a[1] != '-') {
            f = flag_short(a[1]);
            if (f != NULL && a[2] != '\0') {
                if (!f->arg)
                    return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                     "unknown flag '%s' (-%c takes no value)", a, a[1]);
                value = a[2] == '=' ? a + 3 : a + 2;
                attached = true;
            }
        }
        if (f == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "unknown flag '%s'", a);
        if (f->arg && !attached) {
            if (i + 1 >= argc)
                return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs a value (%s)", a,
                                 f->metavar);
            value = argv[++i];
        } else if (!f->arg && attached) {
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "--%s takes no value", f->lng);
        }
        set_flag(&ra, f, value);
    }

    /* settings that do not depend on the command */
    o->api = ra.api;
    o->auth_file = ra.auth_file;
    o->fleet_secret_file = ra.secret_file;
    o->json = ra.json;
    o->dry_run = ra.dry_run;
    o->help = ra.help;
    if (ra.no_color)
        o->color = CTL_COLOR_NEVER;
    if (ra.color != NULL) {
        if (strcmp(ra.color, "auto") == 0)
            o->color = CTL_COLOR_AUTO;
        else if (strcmp(ra.color, "always") == 0)
            o->color = CTL_COLOR_ALWAYS;
        else if (strcmp(ra.color, "never") == 0)
            o->color = CTL_COLOR_NEVER;
        else
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "--color is auto, always or never, not '%s'", ra.color);
    }
    if (ra.timeout != NULL) {
        int64_t ms;
        if (ctl_cmd_duration_ms(ra.timeout, &ms, msg, msglen) != ORCH_OK)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "bad --timeout: %s", msg);
        o->timeout_ms = ms > INT_MAX ? INT_MAX : (int)ms;
    }
    if (ra.default_port != NULL) {
        char *end = NULL;
        errno = 0;
        long v = strtol(ra.default_port, &end, 10);
        if (errno != 0 || end == ra.default_port || *end != '\0' || v < 1 || v > 65535)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "bad --default-port '%s': not a number in 1..65535", ra.default_port);
        o->default_port = (uint16_t)v;
    }

    /* the command */
    const char *name = ra.command;
    size_t first_arg = 0;
    if (name == NULL && ra.npos > 0) {
        name = ra.pos[0];
        first_arg = 1;
    }
    if (name == NULL && ra.version)
        name = "version";
    if (name == NULL) {
        if (ra.help)
            return ORCH_OK; /* general help */
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "no command given (orchctl help lists the commands)");
    }
    o->cmd = ctl_cmd_find(name);
    if (o->cmd == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "unknown command '%s' (orchctl help lists the commands)", name);
    const ctl_cmd *cmd = o->cmd;
    if (ra.help)
        return ORCH_OK;

    /* positional arguments */
    size_t nargs = ra.npos - first_arg;
    const char *arg = nargs > 0 ? ra.pos[first_arg] : NULL;
    unsigned pos_kind = allowed_of(cmd) & (CTL_A_PATH | CTL_A_HOST | CTL_A_TOPIC);
    if (nargs > (pos_kind ? 1u : 0u))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s: unexpected argument '%s'", cmd->name,
                         ra.pos[first_arg + (pos_kind ? 1 : 0)]);
    if (arg != NULL && (pos_kind & CTL_A_PATH) && ra.path != NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "api: give the path once (argument or --path)");
    if (pos_kind & CTL_A_PATH)
        o->path = ra.path ? ra.path : arg;
    if (pos_kind & CTL_A_HOST)
        o->host = arg;
    if (pos_kind & CTL_A_TOPIC) {
        o->topic = arg;
        if (arg != NULL && ctl_cmd_find(arg) == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "unknown command '%s' (orchctl help lists the commands)", arg);
    }

    orch_err err = check_given(cmd, &ra, msg, msglen);
    if (err != ORCH_OK)
        return err;

    /* values */
    if (ra.instance != NULL) {
        o->instance_raw = ra.instance;
        if ((allowed_of(cmd) & CTL_A_SEARCH) == 0) {
            if (parse_key("-i", ra.instance, o->default_port, &o->instance, msg, msglen) != ORCH_OK)
                return ORCH_ERR_INVAL;
            o->has_instance = true;
        } else if (*ra.instance == '\0') {
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty -i");
        }
    }
    if (ra.dest != NULL) {
        if (parse_key("-d", ra.dest, o->default_port, &o->dest, msg, msglen) != ORCH_OK)
            return ORCH_ERR_INVAL;
        o->has_dest = true;
    }
    if (ra.alias != NULL && *ra.alias == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty -a");
    o->alias = ra.alias;
    if (ra.owner != NULL && *ra.owner == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty --owner");
    o->owner = ra.owner;
    if (ra.reason != NULL && *ra.reason == '\0')
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty --reason");
    o->reason = ra.reason;
    if (ra.duration != NULL) {
        int64_t ms;
        if (ctl_cmd_duration_ms(ra.duration, &ms, msg, msglen) != ORCH_OK)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "bad --duration: %s", msg);
        if (ms % 1000 != 0)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "bad --duration '%s': whole seconds only",
                             ra.duration);
        o->duration_s = (long)(ms / 1000);
        o->has_duration = true;
    }
    if (ra.rule != NULL) {
        if (!rule_ok(ra.rule))
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "bad --promotion-rule '%s': prefer, neutral, prefer_not or must_not",
                             ra.rule);
        o->promotion_rule = ra.rule;
    }

    /* what the command needs */
    unsigned need = cmd->needs;
    if ((need & CTL_A_INSTANCE) && !o->has_instance)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs -i HOST[:PORT]", cmd->name);
    if ((need & CTL_A_SEARCH) && o->instance_raw == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs -i TEXT", cmd->name);
    if ((need & CTL_A_CLUSTER) && o->alias == NULL && !o->has_instance)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "%s needs a cluster: -a ALIAS or -i HOST[:PORT] of a member", cmd->name);
    if ((need & CTL_A_DEST) && !o->has_dest)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs -d HOST[:PORT]", cmd->name);
    if ((need & CTL_A_REASON) && o->reason == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs --reason TEXT", cmd->name);
    if ((need & CTL_A_RULE) && o->promotion_rule == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "%s needs --promotion-rule (prefer, neutral, prefer_not, must_not)",
                         cmd->name);
    if ((need & CTL_A_PATH) && (o->path == NULL || *o->path == '\0'))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs a PATH (e.g. clusters, /metrics)",
                         cmd->name);
    if ((need & CTL_A_HOST) && (o->host == NULL || *o->host == '\0'))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s needs a HOST", cmd->name);
    if ((need & CTL_A_DURATION) && !o->has_duration) {
        o->duration_s = CTL_DEFAULT_DURATION_S;
        o->has_duration = true;
    }
    return ORCH_OK;
}

/* ---- paths ----------------------------------------------------------------------- */

/* The value of placeholder name (len bytes), or NULL when it has none. */
static const char *placeholder(const ctl_opts *o, const char *name, size_t len, char *tmp,
                               size_t tmplen)
{
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("i") || IS("d")) {
        bool dest = IS("d");
        if (dest ? !o->has_dest : !o->has_instance)
            return NULL;
        const orch_key *k = dest ? &o->dest : &o->instance;
        /* host and port are two path segments: encode the host, then "/port" */
        tmp[0] = '\0';
        if (!ctl_http_encode(k->host, tmp, tmplen))
            return NULL;
        size_t used = strlen(tmp);
        snprintf(tmp + used, tmplen - used, "/%u", (unsigned)k->port);
        return tmp;
    }
    if (IS("c")) {
        if (o->alias != NULL)
            return o->alias;
        if (!o->has_instance)
            return NULL;
        return orch_key_format(&o->instance, tmp, tmplen);
    }
    if (IS("owner"))
        return o->owner;
    if (IS("reason"))
        return o->reason;
    if (IS("rule"))
        return o->promotion_rule;
    if (IS("s"))
        return o->instance_raw;
    if (IS("duration")) {
        if (!o->has_duration)
            return NULL;
        snprintf(tmp, tmplen, "%lds", o->duration_s);
        return tmp;
    }
#undef IS
    return NULL;
}

/* Expands tpl[0, len) into out; *missing names the first placeholder without a value. */
static bool expand(const ctl_opts *o, const char *tpl, size_t len, char *out, size_t outlen,
                   const char **missing, size_t *missing_len)
{
    for (size_t k = 0; k < len;) {
        if (tpl[k] == '[') {
            const char *close = memchr(tpl + k, ']', len - k);
            size_t inner = close ? (size_t)(close - (tpl + k)) - 1 : len - k - 1;
            size_t save = strlen(out);
            const char *m = NULL;
            size_t ml = 0;
            if (!expand(o, tpl + k + 1, inner, out, outlen, &m, &ml)) {
                if (m == NULL)
                    return false; /* too small */
                out[save] = '\0'; /* optional part without its value: dropped */
            }
            k += inner + 2;
            continue;
        }
        if (tpl[k] == '{') {
            const char *close = memchr(tpl + k, '}', len - k);
            if (close == NULL)
                return false;
            const char *name = tpl + k + 1;
            size_t nlen = (size_t)(close - name);
            char tmp[ORCH_KEY_STRLEN * 3 + 16];
            const char *v = placeholder(o, name, nlen, tmp, sizeof(tmp));
            if (v == NULL) {
                *missing = name;
                *missing_len = nlen;
                return false;
            }
            bool raw = nlen == 1 && (name[0] == 'i' || name[0] == 'd'); /* already encoded */
            if (raw) {
                size_t used = strlen(out);
                if (used + strlen(v) >= outlen)
                    return false;
                memcpy(out + used, v, strlen(v) + 1);
            } else if (!ctl_http_encode(v, out, outlen)) {
                return false;
            }
            k = (size_t)(close - tpl) + 1;
            continue;
        }
        size_t used = strlen(out);
        if (used + 1 >= outlen)
            return false;
        out[used] = tpl[k++];
        out[used + 1] = '\0';
    }
    return true;
}

bool ctl_cmd_path(const ctl_cmd *cmd, const ctl_opts *o, bool json, char *out, size_t outlen,
                  char *msg, size_t msglen)
{
    if (outlen == 0)
        return false;
    out[0] = '\0';
    if (cmd->needs & CTL_A_PATH) {
        /* api: from the root when it starts with '/', else under /api/ */
        const char *p = o->path ? o->path : "";
        int n = snprintf(out, outlen, "%s%s", p[0] == '/' ? "" : "/api/", p);
        if (n < 0 || (size_t)n >= outlen) {
            orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "path too long");
            return false;
        }
        for (const char *q = out; *q; q++)
            if ((unsigned char)*q <= ' ' || *q == 0x7f) {
                orch_fail(msg, msglen, ORCH_ERR_INVAL,
                          "path holds a space or control character (percent-encode it)");
                return false;
            }
        return true;
    }
    const char *tpl = json && cmd->json_path ? cmd->json_path : cmd->path;
    if (tpl == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s sends no request", cmd->name);
        return false;
    }
    const char *missing = NULL;
    size_t mlen = 0;
    if (!expand(o, tpl, strlen(tpl), out, outlen, &missing, &mlen)) {
        if (missing != NULL)
            orch_fail(msg, msglen, ORCH_ERR_INVAL, "%s: no value for {%.*s}", cmd->name, (int)mlen,
                      missing);
        else
            orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "%s: request path too long", cmd->name);
        return false;
    }
    return true;
}

/* ---- exit codes -------------------------------------------------------------------- */

/* Copies the start of a text body into msg, on one line. */
static void body_excerpt(const char *body, size_t len, char *msg, size_t msglen)
{
    size_t o = 0;
    for (size_t k = 0; k < len && o + 1 < msglen && o < 200; k++) {
        unsigned char c = (unsigned char)body[k];
        msg[o++] = (char)(c < ' ' || c == 0x7f ? ' ' : c);
    }
    while (o > 0 && msg[o - 1] == ' ')
        o--;
    if (msglen > 0)
        msg[o] = '\0';
}

int ctl_cmd_classify(int status, const char *body, size_t len, bool write, bool *unsupported,
                     char *msg, size_t msglen)
{
    if (unsupported != NULL)
        *unsupported = false;
    bool code_error = false;
    bool is_json = false;
    char message[512] = "";
    json_t *j = body && len > 0 ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
    if (j != NULL) {
        is_json = true;
        if (json_is_object(j)) {
            const char *code = json_string_value(json_object_get(j, "Code"));
            const char *m = json_string_value(json_object_get(j, "Message"));
            code_error = code != NULL && strcmp(code, "ERROR") == 0;
            if (m != NULL)
                snprintf(message, sizeof(message), "%s", m);
        } else if (json_is_string(j)) {
            snprintf(message, sizeof(message), "%s", json_string_value(j));
        }
        json_decref(j);
    }
    if (status >= 200 && status < 300 && !code_error)
        return ORCH_EXIT_OK;
    if (message[0] == '\0') {
        if (!is_json && body != NULL && len > 0)
            body_excerpt(body, len, message, sizeof(message));
        if (message[0] == '\0')
            snprintf(message, sizeof(message), "HTTP status %d", status);
    }
    snprintf(msg, msglen, "%s", message);
    switch (status) {
    case 401:
    case 403:
        return ORCH_EXIT_AUTH;
    case 404:
        /* orch says "Unknown route"; orchestrator and proxies answer a text page */
        if (strncmp(message, "Unknown route", 13) == 0 || !is_json) {
            if (unsupported != NULL)
                *unsupported = true;
            return ORCH_EXIT_REFUSED;
        }
        return ORCH_EXIT_NOTFOUND;
    case 400:
    case 414:
        return ORCH_EXIT_USAGE;
    case 409:
    case 412:
    case 422:
    case 423:
        return ORCH_EXIT_REFUSED;
    case 502:
    case 503:
    case 504:
        return ORCH_EXIT_UNREACHABLE;
    default:
        return write ? ORCH_EXIT_REFUSED : ORCH_EXIT_FAILURE;
    }
}

/* ---- help ------------------------------------------------------------------------- */

static void add(char *buf, size_t buflen, const char *s)
{
    size_t used = strlen(buf);
    if (used < buflen)
        snprintf(buf + used, buflen - used, "%s", s);
}

void ctl_cmd_usage(const ctl_cmd *cmd, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    snprintf(buf, buflen, "orchctl %s", cmd->name);
    unsigned n = cmd->needs, t = cmd->takes;
    if (n & CTL_A_CLUSTER)
        add(buf, buflen, " (-a ALIAS | -i HOST[:PORT])");
    else if (t & CTL_A_CLUSTER)
        add(buf, buflen, " [-a ALIAS | -i HOST[:PORT]]");
    if (n & CTL_A_INSTANCE)
        add(buf, buflen, " -i HOST[:PORT]");
    if (n & CTL_A_SEARCH)
        add(buf, buflen, " -i TEXT");
    if (n & CTL_A_DEST)
        add(buf, buflen, " -d HOST[:PORT]");
    else if (t & CTL_A_DEST)
        add(buf, buflen, " [-d HOST[:PORT]]");
    if (n & CTL_A_REASON)
        add(buf, buflen, " --reason TEXT");
    if ((n | t) & CTL_A_OWNER)
        add(buf, buflen, " [--owner NAME]");
    if ((n | t) & CTL_A_DURATION)
        add(buf, buflen, " [--duration DURATION]");
    if (n & CTL_A_RULE)
        add(buf, buflen, " --promotion-rule RULE");
    if (n & CTL_A_PATH)
        add(buf, buflen, " PATH");
    if (n & CTL_A_HOST)
        add(buf, buflen, " HOST");
    if (t & CTL_A_TOPIC)
        add(buf, buflen, " [COMMAND]");
    if (cmd->flags & CTL_CMD_WRITE)
        add(buf, buflen, " [--dry-run]");
    if (cmd->out != CTL_OUT_NONE && cmd->out != CTL_OUT_RAW)
        add(buf, buflen, " [--json]");
}

static const char general_top[] =
    "orchctl: the operator's command line of orch (high availability for MySQL and\n"
    "MariaDB replication). It talks to the coordinators' HTTP API; command names and\n"
    "flags are orchestrator-client's.\n"
    "\n"
    "Usage:\n"
    "  orchctl COMMAND [flags]\n"
    "  orchctl -c COMMAND [flags]        (orchestrator-client style)\n"
    "  orchctl help COMMAND              (or orchctl COMMAND --help)\n";

static const char general_bottom[] =
    "\n"
    "Commands that change the topology go to the leader. Until a coordinator serves\n"
    "a command's route it answers 404 and orchctl says \"the coordinator does not\n"
    "support COMMAND yet\" (exit 6).\n"
    "\n"
    "Environment:\n"
    "  ORCH_API            coordinator API URL, or several separated by spaces:\n"
    "                      \"http://c1:3000 http://c2:3000 http://c3:3000\". With\n"
    "                      several, orchctl asks each /api/leader-check (300 ms, in\n"
    "                      parallel) and uses the leader; reads fall back to any\n"
    "                      node that answers. A trailing /api is accepted. A bare\n"
    "                      host means http://HOST:3000.\n"
    "                      Default: http://127.0.0.1:3000\n"
    "  ORCH_AUTH_USER, ORCH_AUTH_PASSWORD\n"
    "                      basic-auth credentials (--auth-file takes precedence)\n"
    "  ORCH_AUTH_FILE      same as --auth-file\n"
    "  ORCH_FLEET_SECRET   the fleet secret, for agent-key\n"
    "  NO_COLOR            no colour, whatever the terminal\n"
    "  USER                default --owner\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  failure (the coordinator failed the request, or its answer made no sense)\n"
    "  2  usage: bad command line, or the API refused the request as malformed (400)\n"
    "  4  no coordinator reachable (or none leads, for a command that changes things)\n"
    "  5  no such instance or cluster (404)\n"
    "  6  operation refused, or not supported by this coordinator (404 Unknown route)\n"
    "  7  credentials missing or refused (401), or not allowed for this user (403)\n"
    "\n"
    "Examples:\n"
    "  export ORCH_API=\"http://orch1:3000 http://orch2:3000 http://orch3:3000\"\n"
    "  orchctl clusters\n"
    "  orchctl topology -a main\n"
    "  orchctl -c which-master -i db2\n"
    "  orchctl which-replicas -i db1:3306 --json\n"
    "  orchctl begin-downtime -i db3 --reason 'kernel upgrade' --duration 2h\n"
    "  orchctl graceful-master-takeover -a main -d db2 --dry-run\n"
    "  orchctl api /metrics\n";

static void print_flags(FILE *f)
{
    fputs("\nFlags:\n", f);
    for (size_t k = 0; k < N_ELEMS(flags); k++) {
        const ctl_flag *fl = &flags[k];
        if (fl->help == NULL)
            continue;
        char left[64];
        if (fl->shrt)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", fl->shrt, fl->lng, fl->arg ? " " : "",
                     fl->arg ? fl->metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", fl->lng, fl->arg ? " " : "",
                     fl->arg ? fl->metavar : "");
        fprintf(f, "  %s\n        %s\n", left, fl->help);
    }
    fputs("  Long flags also work with one dash (-alias) and as --flag=value; -s is -d.\n", f);
}

void ctl_cmd_help(FILE *f, const ctl_cmd *cmd)
{
    if (cmd == NULL) {
        fputs(general_top, f);
        const char *group = NULL;
        for (size_t k = 0; k < N_ELEMS(table); k++) {
            const ctl_cmd *c = &table[k];
            if (group == NULL || strcmp(group, c->group) != 0) {
                group = c->group;
                fprintf(f, "\n%s:\n", group);
            }
            fprintf(f, "  %-30s %s\n", c->name, c->summary);
        }
        print_flags(f);
        fputs(general_bottom, f);
        return;
    }
    char usage[256];
    ctl_cmd_usage(cmd, usage, sizeof(usage));
    fputs("Usage: ", f);
    /* wrapped at 80 columns, only between whole options ("[--owner NAME]") */
    size_t col = 7, depth = 0, start = 0, len = strlen(usage);
    for (size_t k = 0; k <= len; k++) {
        char ch = usage[k];
        if (ch == '[' || ch == '(')
            depth++;
        else if ((ch == ']' || ch == ')') && depth > 0)
            depth--;
        if ((ch == ' ' && depth == 0) || ch == '\0') {
            size_t wl = k - start;
            if (start > 0 && col + 1 + wl > 80) {
                fputs("\n      ", f);
                col = 6;
            }
            fprintf(f, "%s%.*s", start > 0 ? " " : "", (int)wl, usage + start);
            col += wl + (start > 0 ? 1 : 0);
            start = k + 1;
        }
    }
    fprintf(f, "\n\n%s\n", cmd->summary);
    if (cmd->help != NULL)
        fprintf(f, "\n%s\n", cmd->help);
    if (cmd->needs & CTL_A_CLUSTER)
        fputs("\nThe cluster is named by -a (its alias or name) or by -i (any member; port 3306\n"
              "unless given).\n",
              f);
    if (cmd->path != NULL)
        fprintf(f, "\nAPI: GET %s\n", cmd->path);
    if (cmd->flags & CTL_CMD_WRITE)
        fputs("Changes things: sent to the leader (with several ORCH_API URLs); --dry-run\n"
              "prints the request instead of sending it.\n",
              f);
    if (cmd->example != NULL)
        fprintf(f, "\nExample:\n  %s\n", cmd->example);
    if ((cmd->flags & CTL_CMD_LOCAL) == 0)
        fputs("\nCommon flags: --api URL, --json, --timeout DURATION, --auth-file PATH\n"
              "(orchctl help lists them all, with the environment and exit codes).\n",
              f);
}
