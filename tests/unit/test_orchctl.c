/*
 * Unit tests for orchctl's pure parts: the command line, durations, instance
 * key defaults, API paths, exit codes from answers, URL and HTTP answer
 * parsing, leader choice, and the renderers over JSON captured from a real
 * coordinator (fixtures/orchctl/: a 1+3 sandbox with db2 downtimed, db3 in
 * maintenance with replication stopped, db4 broken on a duplicate key; and a
 * killed server, *-down.json).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmd.h"
#include "http.h"
#include "output.h"
#include "run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------------ */

/* Splits a command line on spaces ('^' stands for a space inside an argument). */
typedef struct argv_buf {
    char store[1024];
    char *argv[32];
    int argc;
} argv_buf;

static void split(argv_buf *b, const char *line)
{
    snprintf(b->store, sizeof(b->store), "orchctl %s", line);
    b->argc = 0;
    for (char *tok = strtok(b->store, " "); tok != NULL && b->argc < 31; tok = strtok(NULL, " ")) {
        for (char *p = tok; *p; p++)
            if (*p == '^')
                *p = ' ';
        b->argv[b->argc++] = tok;
    }
    b->argv[b->argc] = NULL;
}

/* ctl_opts borrows from argv: the buffer lives until the next call. */
static orch_err parse_line(const char *line, ctl_opts *o, char *msg, size_t msglen)
{
    static argv_buf b;
    split(&b, line);
    return ctl_cmd_parse(b.argc, b.argv, o, msg, msglen);
}

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "fixtures/orchctl/%s", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run from tests/unit)", path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Renders body with kind into a string (caller frees); *rc gets the exit code. */
static char *render(ctl_out kind, const char *body, size_t len, bool color, int *rc)
{
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    assert_non_null(f);
    ctl_out_ctx c = {.color = color};
    char msg[512] = "";
    *rc = ctl_out_render(kind, body, len, &c, f, msg, sizeof(msg));
    fclose(f);
    return out;
}

static char *render_fixture(ctl_out kind, const char *name, bool color, int *rc)
{
    size_t len;
    char *body = slurp(name, &len);
    char *out = render(kind, body, len, color, rc);
    free(body);
    return out;
}

/* ---- the command line ----------------------------------------------------------- */

static void test_parse_table(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        bool ok;
        const char *cmd;  /* expected command, NULL when none */
        const char *text; /* a part of the error message, or of the parsed -i */
    } cases[] = {
        /* valid */
        {"clusters", true, "clusters", NULL},
        {"topology -i db1", true, "topology", "db1"},
        {"-c topology -i db1", true, "topology", "db1"},
        {"--command=topology --alias=main", true, "topology", NULL},
        {"-c which-master -idb2:3307", true, "which-master", "db2"},
        {"which-master -i=db2", true, "which-master", "db2"},
        {"-command which-master -instance db2", true, "which-master", "db2"},
        {"which-slaves -i db1", true, "which-replicas", "db1"}, /* "slave" reads "replica" */
        {"which-replicas -i db1", true, "which-replicas", "db1"},
        {"stop-slave -i db1", true, "stop-replica", "db1"},
        {"which-instance -i db1", true, "instance", "db1"},
        {"relocate -i db3 -d db2", true, "relocate", "db3"},
        {"relocate -i db3 -s db2", true, "relocate", "db3"},
        {"begin-downtime -i db3 --reason maintenance^window --duration 2h", true, "begin-downtime",
         "db3"},
        {"register-candidate -i db2 --promotion-rule prefer", true, "register-candidate", NULL},
        {"graceful-master-takeover -a main", true, "graceful-master-takeover", NULL},
        {"graceful-master-takeover -a main -d db2", true, "graceful-master-takeover", NULL},
        {"api /metrics", true, "api", NULL},
        {"-c api --path clusters", true, "api", NULL},
        {"agent-key db1.example.com", true, "agent-key", NULL},
        {"help topology", true, "help", NULL},
        {"topology --help", true, "topology", NULL},
        {"--version", true, "version", NULL},
        {"--help", true, NULL, NULL},
        {"clusters --json --timeout 500ms --api http://c1:3000", true, "clusters", NULL},
        {"search -i db", true, "search", NULL},
        {"problems", true, "problems", NULL},
        {"recover -i db1 --dry-run", true, "recover", NULL},
        {"-- clusters", true, "clusters", NULL},
        /* invalid */
        {"", false, NULL, "no command given"},
        {"topology", false, NULL, "needs a cluster"},
        {"which-master", false, NULL, "needs -i"},
        {"relocate -i db3", false, NULL, "needs -d"},
        {"which-master -i db1:99999", false, NULL, "bad -i"},
        {"which-master -i db1:0", false, NULL, "bad -i"},
        {"which-master -i db1:x", false, NULL, "bad -i"},
        {"which-master -i :3306", false, NULL, "bad -i"},
        {"relocate -i db3 -d db2:70000", false, NULL, "bad -d"},
        {"frobnicate", false, NULL, "unknown command 'frobnicate'"},
        {"-c frobnicate", false, NULL, "unknown command"},
        {"clusters --frob", false, NULL, "unknown flag '--frob'"},
        {"clusters -q", false, NULL, "unknown flag"},
        {"which-master -i", false, NULL, "needs a value"},
        {"clusters -d db2", false, NULL, "clusters does not take -d"},
        {"which-master -i db1 -a main", false, NULL, "does not take -a"},
        {"clusters extra", false, NULL, "unexpected argument 'extra'"},
        {"begin-downtime -i db3", false, NULL, "needs --reason"},
        {"begin-downtime -i db3 --reason x --duration 5q", false, NULL, "bad --duration"},
        {"begin-downtime -i db3 --reason x --duration 1500ms", false, NULL, "whole seconds"},
        {"register-candidate -i db2 --promotion-rule best", false, NULL, "bad --promotion-rule"},
        {"register-candidate -i db2", false, NULL, "needs --promotion-rule"},
        {"api", false, NULL, "needs a PATH"},
        {"agent-key", false, NULL, "needs a HOST"},
        {"help frobnicate", false, NULL, "unknown command"},
        {"clusters --timeout 0", false, NULL, "bad --timeout"},
        {"clusters --color sometimes", false, NULL, "--color"},
        {"clusters --dry-run", false, NULL, "only reads"},
        {"clusters --json=yes", false, NULL, "takes no value"},
        {"which-master -i db1 --default-port 0", false, NULL, "--default-port"},
        {"ack-all-recoveries", false, NULL, "needs --reason"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        ctl_opts o;
        char msg[512] = "";
        orch_err err = parse_line(cases[k].line, &o, msg, sizeof(msg));
        if ((err == ORCH_OK) != cases[k].ok)
            fail_msg("'%s': expected %s, got '%s'", cases[k].line, cases[k].ok ? "ok" : "error",
                     msg);
        if (!cases[k].ok) {
            if (strstr(msg, cases[k].text) == NULL)
                fail_msg("'%s': message '%s' lacks '%s'", cases[k].line, msg, cases[k].text);
            continue;
        }
        if (cases[k].cmd == NULL)
            assert_null(o.cmd);
        else if (o.cmd == NULL || strcmp(o.cmd->name, cases[k].cmd) != 0)
            fail_msg("'%s': command %s, expected %s", cases[k].line, o.cmd ? o.cmd->name : "(none)",
                     cases[k].cmd);
        if (cases[k].text != NULL && !o.help)
            assert_string_equal(o.instance.host, cases[k].text);
    }
}

static void test_parse_values(void **state)
{
    (void)state;
    ctl_opts o;
    char msg[256];
    assert_int_equal(
        parse_line("begin-downtime -i db3 --reason a^b --owner ops", &o, msg, sizeof(msg)),
        ORCH_OK);
    assert_string_equal(o.reason, "a b");
    assert_string_equal(o.owner, "ops");
    assert_true(o.has_duration);
    assert_int_equal(o.duration_s, CTL_DEFAULT_DURATION_S); /* 10m, as orchestrator-client */

    assert_int_equal(parse_line("begin-maintenance -i db3 --reason r", &o, msg, sizeof(msg)),
                     ORCH_OK);
    assert_false(o.has_duration); /* optional there: no default */
    assert_null(o.owner);         /* $USER is the caller's business */

    assert_int_equal(parse_line("clusters", &o, msg, sizeof(msg)), ORCH_OK);
    assert_int_equal(o.timeout_ms, CTL_DEFAULT_TIMEOUT_MS);
    assert_int_equal(o.color, CTL_COLOR_AUTO);
    assert_false(o.json);

    assert_int_equal(parse_line("--timeout 2s --no-color clusters --json", &o, msg, sizeof(msg)),
                     ORCH_OK);
    assert_int_equal(o.timeout_ms, 2000);
    assert_int_equal(o.color, CTL_COLOR_NEVER);
    assert_true(o.json);

    assert_int_equal(parse_line("api --path=/metrics --api=http://x:1", &o, msg, sizeof(msg)),
                     ORCH_OK);
    assert_string_equal(o.path, "/metrics");
    assert_string_equal(o.api, "http://x:1");

    assert_int_equal(parse_line("agent-key --fleet-secret-file /s db9", &o, msg, sizeof(msg)),
                     ORCH_OK);
    assert_string_equal(o.host, "db9");
    assert_string_equal(o.fleet_secret_file, "/s");

    assert_int_equal(parse_line("search -i DB:1", &o, msg, sizeof(msg)), ORCH_OK);
    assert_string_equal(o.instance_raw, "DB:1"); /* free text, not a key */
    assert_false(o.has_instance);
}

static void test_key_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *host;
        unsigned port;
    } cases[] = {
        {"which-master -i db1", "db1", 3306},
        {"which-master -i DB1.Example.com", "db1.example.com", 3306},
        {"which-master -i db1:3307", "db1", 3307},
        {"which-master -i db1 -D 3310", "db1", 3310},
        {"-D 3310 which-master -i db1", "db1", 3310},
        {"which-master -i db1:3307 --default-port 3310", "db1", 3307},
        {"which-master -i 127.0.0.1", "127.0.0.1", 3306},
        {"which-master -i [::1]", "::1", 3306},
        {"which-master -i [::1]:3307", "::1", 3307},
        {"which-master -i ::1", "::1", 3306},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        ctl_opts o;
        char msg[256] = "";
        if (parse_line(cases[k].line, &o, msg, sizeof(msg)) != ORCH_OK)
            fail_msg("'%s': %s", cases[k].line, msg);
        assert_true(o.has_instance);
        assert_string_equal(o.instance.host, cases[k].host);
        assert_int_equal(o.instance.port, cases[k].port);
    }
    ctl_opts o;
    char msg[256];
    assert_int_equal(parse_line("relocate -i db3 -d db2", &o, msg, sizeof(msg)), ORCH_OK);
    assert_int_equal(o.dest.port, 3306);
}

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ok;
        int64_t ms;
    } cases[] = {
        {"90", true, 90000},    {"90s", true, 90000},
        {"30m", true, 1800000}, {"2h", true, 7200000},
        {"1d", true, 86400000}, {"1w", true, 604800000},
        {"500ms", true, 500},   {"1h30m", true, 5400000},
        {"1m30s", true, 90000}, {"400d", true, 400LL * 86400000},
        {"401d", false, 0},     {"99999999999999999999", false, 0},
        {"", false, 0},         {"0", false, 0},
        {"0s", false, 0},       {"-5m", false, 0},
        {"5x", false, 0},       {"m", false, 0},
        {"5 m", false, 0},      {"1.5h", false, 0},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        int64_t ms = -1;
        char msg[256] = "";
        orch_err err = ctl_cmd_duration_ms(cases[k].in, &ms, msg, sizeof(msg));
        if ((err == ORCH_OK) != cases[k].ok)
            fail_msg("duration '%s': expected %s (%s)", cases[k].in, cases[k].ok ? "ok" : "error",
                     msg);
        if (cases[k].ok)
            assert_int_equal(ms, cases[k].ms);
        else
            assert_int_equal(ms, -1); /* untouched */
    }
}

static void test_paths(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        bool json;
        const char *path;
    } cases[] = {
        {"clusters", false, "/api/clusters-info"},
        {"topology -a main", false, "/api/topology/main"},
        {"topology -a main", true, "/api/cluster/main"},
        {"topology -i db1", false, "/api/topology/db1%3A3306"},
        {"topology -i [::1]:3307", false, "/api/topology/%5B%3A%3A1%5D%3A3307"},
        {"topology-tabulated -i db1:3307", false, "/api/cluster/db1%3A3307"},
        {"which-master -i db2", false, "/api/instance/db2/3306"},
        {"which-replicas -i db1:3307", false, "/api/instance-replicas/db1/3307"},
        {"which-cluster-master -a main", false, "/api/master/main"},
        {"which-cluster -i db2", false, "/api/cluster-info/db2%3A3306"},
        {"search -i db^1", false, "/api/search?s=db%201"},
        {"problems", false, "/api/problems"},
        {"problems -a main", false, "/api/problems/main"},
        {"replication-analysis", false, "/api/replication-analysis"},
        {"relocate -i db3 -d db2:3307", false, "/api/relocate/db3/3306/db2/3307"},
        {"move-up -i db3", false, "/api/move-up/db3/3306"},
        {"graceful-master-takeover -a main", false, "/api/graceful-master-takeover/main"},
        {"graceful-master-takeover -a main -d db2", false,
         "/api/graceful-master-takeover/main/db2/3306"},
        {"graceful-master-takeover-auto -i db1", false,
         "/api/graceful-master-takeover-auto/db1%3A3306"},
        {"begin-downtime -i db3 --owner ops --reason disk/swap^now --duration 1h30m", false,
         "/api/begin-downtime/db3/3306/ops/disk%2Fswap%20now/5400s"},
        {"begin-maintenance -i db3 --owner ops --reason r", false,
         "/api/begin-maintenance/db3/3306/ops/r"},
        {"begin-maintenance -i db3 --owner ops --reason r --duration 2h", false,
         "/api/begin-maintenance/db3/3306/ops/r/7200s"},
        {"ack-cluster-recoveries -a main --reason ok&done", false,
         "/api/ack-recovery/cluster/main?comment=ok%26done"},
        {"ack-all-recoveries --reason fine", false, "/api/ack-all-recoveries?comment=fine"},
        {"register-candidate -i db2 --promotion-rule prefer_not", false,
         "/api/register-candidate/db2/3306/prefer_not"},
        {"audit-recovery", false, "/api/audit-recovery"},
        {"audit-recovery -a main", false, "/api/audit-recovery/cluster/main"},
        {"disable-global-recoveries", false, "/api/disable-global-recoveries"},
        {"api clusters", false, "/api/clusters"},
        {"api /metrics", false, "/metrics"},
        {"api instance/db1/3306", false, "/api/instance/db1/3306"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        ctl_opts o;
        char msg[256] = "", path[1024];
        if (parse_line(cases[k].line, &o, msg, sizeof(msg)) != ORCH_OK)
            fail_msg("'%s': %s", cases[k].line, msg);
        if (!ctl_cmd_path(o.cmd, &o, cases[k].json, path, sizeof(path), msg, sizeof(msg)))
            fail_msg("'%s': %s", cases[k].line, msg);
        if (strcmp(path, cases[k].path) != 0)
            fail_msg("'%s': path %s, expected %s", cases[k].line, path, cases[k].path);
    }
    /* too small a buffer fails cleanly */
    ctl_opts o;
    char msg[256], small[12];
    assert_int_equal(parse_line("relocate -i db3 -d db2", &o, msg, sizeof(msg)), ORCH_OK);
    assert_false(ctl_cmd_path(o.cmd, &o, false, small, sizeof(small), msg, sizeof(msg)));
    /* an api path with a space is refused */
    assert_int_equal(parse_line("api a^b", &o, msg, sizeof(msg)), ORCH_OK);
    char path[256];
    assert_false(ctl_cmd_path(o.cmd, &o, false, path, sizeof(path), msg, sizeof(msg)));
}

static void test_table(void **state)
{
    (void)state;
    size_t n;
    const ctl_cmd *t = ctl_cmd_table(&n);
    assert_true(n >= 40);
    for (size_t k = 0; k < n; k++) {
        for (size_t j = k + 1; j < n; j++)
            assert_string_not_equal(t[k].name, t[j].name);
        assert_ptr_equal(ctl_cmd_find(t[k].name), &t[k]);
        assert_non_null(t[k].summary);
        assert_true(strlen(t[k].name) <= 30);
        if (t[k].path != NULL)
            assert_memory_equal(t[k].path, "/api/", 5);
        bool local = (t[k].flags & (CTL_CMD_LOCAL | CTL_CMD_NOREQ)) != 0;
        if (!local && (t[k].needs & CTL_A_PATH) == 0 && t[k].path == NULL)
            fail_msg("%s has no API path", t[k].name);
        /* every command's help prints */
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        ctl_cmd_help(f, &t[k]);
        fclose(f);
        assert_non_null(strstr(out, "Usage: orchctl "));
        assert_non_null(strstr(out, t[k].name));
        free(out);
    }
    /* the general help lists every command, the flags, environment and exit codes */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ctl_cmd_help(f, NULL);
    fclose(f);
    for (size_t k = 0; k < n; k++)
        assert_non_null(strstr(out, t[k].name));
    assert_non_null(strstr(out, "ORCH_API"));
    assert_non_null(strstr(out, "Exit codes"));
    assert_non_null(strstr(out, "--auth-file"));
    free(out);
    /* write commands are marked so */
    assert_true(ctl_cmd_find("relocate")->flags & CTL_CMD_WRITE);
    assert_false(ctl_cmd_find("topology")->flags & CTL_CMD_WRITE);
    char usage[256];
    ctl_cmd_usage(ctl_cmd_find("relocate"), usage, sizeof(usage));
    assert_string_equal(usage, "orchctl relocate -i HOST[:PORT] -d HOST[:PORT] [--dry-run] "
                               "[--json]");
}

/* ---- exit codes ------------------------------------------------------------------ */

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *body; /* "@name" reads fixtures/orchctl/name */
        bool write;
        int exit;
        bool unsupported;
        const char *msg;
    } cases[] = {
        {200, "@clusters-info.json", false, ORCH_EXIT_OK, false, NULL},
        {200, "@topology.json", false, ORCH_EXIT_OK, false, NULL},
        {200, "\"OK\"", false, ORCH_EXIT_OK, false, NULL},
        {200, "", false, ORCH_EXIT_OK, false, NULL},
        {404, "@error-no-instance.json", false, ORCH_EXIT_NOTFOUND, false,
         "Cannot read instance: 127.0.0.1:29999"},
        {404, "@error-no-cluster.json", false, ORCH_EXIT_NOTFOUND, false,
         "Unable to determine cluster name"},
        {404, "@error-unknown-route.json", true, ORCH_EXIT_REFUSED, true, "Unknown route"},
        {404, "@error-unknown-route.json", false, ORCH_EXIT_REFUSED, true, "Unknown route"},
        {404, "404 page not found\n", true, ORCH_EXIT_REFUSED, true, "404 page not found"},
        {404, "\"Not leader\"", false, ORCH_EXIT_NOTFOUND, false, "Not leader"},
        {400, "@error-bad-port.json", false, ORCH_EXIT_USAGE, false, "Invalid instance key"},
        {401, "{\"Code\":\"ERROR\",\"Message\":\"Unauthorized\",\"Details\":null}", false,
         ORCH_EXIT_AUTH, false, "Unauthorized"},
        {403,
         "{\"Code\":\"ERROR\",\"Message\":\"Unauthorized: the read-only user cannot run "
         "/api/relocate\",\"Details\":null}",
         true, ORCH_EXIT_AUTH, false, "read-only user"},
        {414, "{\"Code\":\"ERROR\",\"Message\":\"Request URI longer\",\"Details\":null}", false,
         ORCH_EXIT_USAGE, false, "longer"},
        {500, "{\"Code\":\"ERROR\",\"Message\":\"Cannot relocate: no GTID\",\"Details\":null}",
         true, ORCH_EXIT_REFUSED, false, "no GTID"},
        {500, "{\"Code\":\"ERROR\",\"Message\":\"backend down\",\"Details\":null}", false,
         ORCH_EXIT_FAILURE, false, "backend down"},
        {200, "{\"Code\":\"ERROR\",\"Message\":\"refused\",\"Details\":null}", true,
         ORCH_EXIT_REFUSED, false, "refused"},
        {200, "{\"Code\":\"ERROR\",\"Message\":\"broken\",\"Details\":null}", false,
         ORCH_EXIT_FAILURE, false, "broken"},
        {409, "{\"Code\":\"ERROR\",\"Message\":\"busy\",\"Details\":null}", true, ORCH_EXIT_REFUSED,
         false, "busy"},
        {503, "<html>Service Unavailable</html>", false, ORCH_EXIT_UNREACHABLE, false,
         "Service Unavailable"},
        {502, "", false, ORCH_EXIT_UNREACHABLE, false, "HTTP status 502"},
        {405, "{\"Code\":\"ERROR\",\"Message\":\"Method not allowed\",\"Details\":null}", false,
         ORCH_EXIT_FAILURE, false, "Method"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        const char *body = cases[k].body;
        char *file = NULL;
        size_t len = strlen(body);
        if (body[0] == '@') {
            file = slurp(body + 1, &len);
            body = file;
        }
        char msg[512] = "";
        bool unsupported = !cases[k].unsupported;
        int rc = ctl_cmd_classify(cases[k].status, body, len, cases[k].write, &unsupported, msg,
                                  sizeof(msg));
        if (rc != cases[k].exit)
            fail_msg("case %zu (%d %s): exit %d, expected %d", k, cases[k].status, cases[k].body,
                     rc, cases[k].exit);
        assert_int_equal(unsupported, cases[k].unsupported);
        if (cases[k].msg != NULL && strstr(msg, cases[k].msg) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", k, msg, cases[k].msg);
        free(file);
    }
}

/* ---- URLs, HTTP answers, leader choice --------------------------------------------- */

static void test_url_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ok;
        const char *host;
        unsigned port;
        const char *prefix;
        const char *text;
    } cases[] = {
        {"http://127.0.0.1:3000", true, "127.0.0.1", 3000, "", "http://127.0.0.1:3000"},
        {"http://127.0.0.1:3000/", true, "127.0.0.1", 3000, "", "http://127.0.0.1:3000"},
        {"http://orch1:3000/api", true, "orch1", 3000, "", "http://orch1:3000"},
        {"http://orch1:3000/api/", true, "orch1", 3000, "", "http://orch1:3000"},
        {"http://proxy/orch/api", true, "proxy", 80, "/orch", "http://proxy:80/orch"},
        {"HTTP://Orch1:8080", true, "Orch1", 8080, "", "http://Orch1:8080"},
        {"orch1", true, "orch1", 3000, "", "http://orch1:3000"},
        {"orch1:3001", true, "orch1", 3001, "", "http://orch1:3001"},
        {"  http://[::1]:3000  ", true, "::1", 3000, "", "http://[::1]:3000"},
        {"[::1]", true, "::1", 3000, "", "http://[::1]:3000"},
        {"https://orch1:3000", false, NULL, 0, NULL, "https is not supported"},
        {"ftp://orch1", false, NULL, 0, NULL, "only http"},
        {"http://user:pw@orch1:3000", false, NULL, 0, NULL, "credentials in the URL"},
        {"http://orch1:3000/?x=1", false, NULL, 0, NULL, "query"},
        {"http://orch1:99999", false, NULL, 0, NULL, "port"},
        {"http://orch1:0", false, NULL, 0, NULL, "port"},
        {"http://orch1:", false, NULL, 0, NULL, "port"},
        {"http://:3000", false, NULL, 0, NULL, "no host"},
        {"http://::1:3000", false, NULL, 0, NULL, "brackets"},
        {"http://[::1:3000", false, NULL, 0, NULL, "']'"},
        {"http://or ch:3000", false, NULL, 0, NULL, "bad character"},
        {"", false, NULL, 0, NULL, "empty"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        ctl_url u;
        char msg[512] = "";
        orch_err err = ctl_url_parse(cases[k].in, &u, msg, sizeof(msg));
        if ((err == ORCH_OK) != cases[k].ok)
            fail_msg("url '%s': expected %s (%s)", cases[k].in, cases[k].ok ? "ok" : "error", msg);
        if (!cases[k].ok) {
            if (strstr(msg, cases[k].text) == NULL)
                fail_msg("url '%s': message '%s' lacks '%s'", cases[k].in, msg, cases[k].text);
            continue;
        }
        assert_string_equal(u.host, cases[k].host);
        assert_int_equal(u.port, cases[k].port);
        assert_string_equal(u.prefix, cases[k].prefix);
        assert_string_equal(u.text, cases[k].text);
    }
    ctl_url urls[4];
    char msg[512];
    assert_int_equal(
        ctl_run_split_apis(" http://a:1  http://b:2,http://c:3 ", urls, 4, msg, sizeof(msg)), 3);
    assert_string_equal(urls[2].host, "c");
    assert_int_equal(ctl_run_split_apis("a b c d e", urls, 4, msg, sizeof(msg)), -1);
    assert_int_equal(ctl_run_split_apis("   ", urls, 4, msg, sizeof(msg)), -1);
    assert_int_equal(ctl_run_split_apis("http://a:1 https://b", urls, 4, msg, sizeof(msg)), -1);
}

/* Feeds an answer to the parser in pieces of step bytes; returns the final state. */
static ctl_http_parse_state feed(const char *answer, size_t step, bool close_at_end,
                                 ctl_http_parser *p, char **body)
{
    size_t len = strlen(answer);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    memset(p, 0, sizeof(*p));
    ctl_http_parse_state st = CTL_HTTP_MORE;
    size_t have = 0;
    while (have < len) {
        size_t n = have + step < len ? step : len - have;
        memcpy(buf + have, answer + have, n);
        have += n;
        st = ctl_http_parse(p, buf, have, false);
        if (st != CTL_HTTP_MORE)
            break;
    }
    if (st == CTL_HTTP_MORE && close_at_end)
        st = ctl_http_parse(p, buf, have, true);
    *body = NULL;
    if (st == CTL_HTTP_DONE) {
        *body = malloc(p->body_len + 1);
        memcpy(*body, ctl_http_parser_body(p, buf), p->body_len);
        (*body)[p->body_len] = '\0';
    }
    free(buf);
    return st;
}

static void test_http_parse(void **state)
{
    (void)state;
    static const struct {
        const char *answer;
        bool close;
        ctl_http_parse_state st;
        int status;
        const char *body;
        const char *ctype_or_msg;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 6\r\n\r\n"
         "[\"x\"]\n",
         false, CTL_HTTP_DONE, 200, "[\"x\"]\n", "application/json"},
        {"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n\"Not leader\"", false, CTL_HTTP_DONE,
         404, "\"Not leader\"", ""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "4\r\n[1,2\r\n3;ext=1\r\n,3]\r\n0\r\n\r\n",
         false, CTL_HTTP_DONE, 200, "[1,2,3]", ""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
         false, CTL_HTTP_DONE, 200, "0123456789", ""},
        {"HTTP/1.0 200 OK\r\n\r\nuntil close", true, CTL_HTTP_DONE, 200, "until close", ""},
        {"HTTP/1.1 204 No Content\r\n\r\n", false, CTL_HTTP_DONE, 204, "", ""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, CTL_HTTP_BAD, 0, NULL,
         "before the answer was complete"},
        {"SSH-2.0-OpenSSH\r\n\r\n", false, CTL_HTTP_BAD, 0, NULL, "not an HTTP"},
        {"HTTP/1.1 2x0 OK\r\n\r\n", false, CTL_HTTP_BAD, 0, NULL, "status line"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, CTL_HTTP_BAD, 0, NULL,
         "Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, CTL_HTTP_BAD,
         0, NULL, "conflicting"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, CTL_HTTP_BAD, 0, NULL,
         "Transfer-Encoding"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", false, CTL_HTTP_BAD, 0,
         NULL, "chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", false, CTL_HTTP_BAD,
         0, NULL, "CRLF"},
        {"HTTP/1.1 100 Continue\r\n\r\n", false, CTL_HTTP_BAD, 0, NULL, "1xx"},
        {"HTTP/1.1 200 OK\r\nBroken header\r\n\r\n", false, CTL_HTTP_BAD, 0, NULL, "header line"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", true, CTL_HTTP_BAD, 0, NULL,
         "middle of the headers"},
        {"", true, CTL_HTTP_BAD, 0, NULL, "without an answer"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        /* whole, and a byte at a time: the parser keeps its place across reads */
        size_t steps[] = {100000, 1, 7};
        for (size_t s = 0; s < N_ELEMS(steps); s++) {
            ctl_http_parser p;
            char *body = NULL;
            ctl_http_parse_state st = feed(cases[k].answer, steps[s], cases[k].close, &p, &body);
            if (st != cases[k].st)
                fail_msg("case %zu step %zu: state %d, expected %d (%s)", k, steps[s], st,
                         cases[k].st, p.msg);
            if (st == CTL_HTTP_DONE) {
                assert_int_equal(p.status, cases[k].status);
                assert_string_equal(body, cases[k].body);
                assert_string_equal(p.ctype, cases[k].ctype_or_msg);
            } else if (strstr(p.msg, cases[k].ctype_or_msg) == NULL) {
                fail_msg("case %zu: message '%s' lacks '%s'", k, p.msg, cases[k].ctype_or_msg);
            }
            free(body);
            ctl_http_parser_fini(&p);
        }
    }
}

/* ---- ctl_http_run against a local server ---------------------------------------- */

typedef enum serve_mode { SERVE_ANSWER, SERVE_CLOSE, SERVE_SILENT } serve_mode;

/*
 * Forks a one-connection server on 127.0.0.1 that reads the request, then
 * writes answer in pieces of step bytes (SERVE_ANSWER), closes at once
 * (SERVE_CLOSE) or keeps quiet for a second (SERVE_SILENT). Returns its pid;
 * *port gets the port.
 */
static pid_t serve(serve_mode mode, const char *answer, size_t step, uint16_t *port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 4), 0);
    socklen_t sl = sizeof(a);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &sl), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(ls);
        return pid;
    }
    int c = accept(ls, NULL, NULL);
    if (c < 0)
        _exit(1);
    char req[4096];
    size_t got = 0;
    while (got < sizeof(req) - 1) { /* until the end of the request's headers */
        ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    if (mode == SERVE_SILENT)
        sleep(1);
    if (mode == SERVE_ANSWER) {
        size_t len = strlen(answer);
        for (size_t off = 0; off < len; off += step) {
            size_t n = len - off < step ? len - off : step;
            if (write(c, answer + off, n) != (ssize_t)n)
                _exit(1);
            usleep(200);
        }
    }
    close(c);
    _exit(0);
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_http_run_local(void **state)
{
    (void)state;
    /* a long chunked answer, in small writes: compacted as it comes, body handed over */
    size_t nchunks = 2000;
    size_t cap = nchunks * 32 + 256;
    char *answer = malloc(cap);
    assert_non_null(answer);
    size_t o = (size_t)snprintf(answer, cap,
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t k = 0; k < nchunks; k++)
        o += (size_t)snprintf(answer + o, cap - o, "5\r\n%05zu\r\n", k);
    o += (size_t)snprintf(answer + o, cap - o, "0\r\n\r\n");
    uint16_t port;
    pid_t pid = serve(SERVE_ANSWER, answer, 333, &port);
    char text[64];
    snprintf(text, sizeof(text), "http://127.0.0.1:%u/api", (unsigned)port);
    ctl_url u;
    char msg[256];
    assert_int_equal(ctl_url_parse(text, &u, msg, sizeof(msg)), ORCH_OK);
    ctl_http_req r = {.url = &u, .path = "/api/all-instances", .auth = "Basic dTpwdw=="};
    assert_int_equal(ctl_http_run(&r, 1, 5000, 0), ORCH_OK);
    reap(pid);
    assert_int_equal(r.err, ORCH_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, nchunks * 5);
    assert_int_equal(strlen(r.body), nchunks * 5);
    assert_memory_equal(r.body, "000000000100002", 15);
    assert_memory_equal(r.body + r.len - 5, "01999", 5);
    assert_string_equal(r.ctype, "application/json");
    ctl_http_req_fini(&r);
    ctl_http_req_fini(&r); /* twice is fine */
    free(answer);

    /* Content-Length, the body handed over with its NUL */
    static const char small[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\n"
                                "\"Not leader\"";
    pid = serve(SERVE_ANSWER, small, 5, &port);
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)port);
    assert_int_equal(ctl_url_parse(text, &u, msg, sizeof(msg)), ORCH_OK);
    ctl_http_req r2 = {.url = &u, .path = "/api/leader-check"};
    assert_int_equal(ctl_http_run(&r2, 1, 5000, 0), ORCH_OK);
    reap(pid);
    assert_int_equal(r2.err, ORCH_OK);
    assert_int_equal(r2.status, 404);
    assert_string_equal(r2.body, "\"Not leader\"");
    ctl_http_req_fini(&r2);

    /* closed without an answer; silent until the deadline */
    pid = serve(SERVE_CLOSE, NULL, 0, &port);
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)port);
    assert_int_equal(ctl_url_parse(text, &u, msg, sizeof(msg)), ORCH_OK);
    ctl_http_req r3 = {.url = &u, .path = "/api/clusters"};
    assert_int_equal(ctl_http_run(&r3, 1, 5000, 0), ORCH_OK);
    reap(pid);
    assert_int_equal(r3.err, ORCH_ERR_PROTO);
    assert_non_null(strstr(r3.msg, "without an answer"));
    ctl_http_req_fini(&r3);

    pid = serve(SERVE_SILENT, NULL, 0, &port);
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)port);
    assert_int_equal(ctl_url_parse(text, &u, msg, sizeof(msg)), ORCH_OK);
    ctl_http_req r4 = {.url = &u, .path = "/api/clusters"};
    assert_int_equal(ctl_http_run(&r4, 1, 150, 0), ORCH_OK);
    reap(pid);
    assert_int_equal(r4.err, ORCH_ERR_TIMEOUT);
    assert_non_null(strstr(r4.msg, "no answer within 150 ms"));
    assert_true(r4.elapsed_ms >= 140 && r4.elapsed_ms < 1000);
    ctl_http_req_fini(&r4);

    /* side by side: the first 200 ends the wait for the silent one */
    static const char ok200[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\"OK\"";
    uint16_t p1, p2;
    pid_t silent = serve(SERVE_SILENT, NULL, 0, &p1);
    pid_t leader = serve(SERVE_ANSWER, ok200, 64, &p2);
    ctl_url us[2];
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)p1);
    assert_int_equal(ctl_url_parse(text, &us[0], msg, sizeof(msg)), ORCH_OK);
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)p2);
    assert_int_equal(ctl_url_parse(text, &us[1], msg, sizeof(msg)), ORCH_OK);
    ctl_http_req two[2] = {{.url = &us[0], .path = "/api/leader-check"},
                           {.url = &us[1], .path = "/api/leader-check"}};
    assert_int_equal(ctl_http_run(two, 2, 3000, 200), ORCH_OK);
    reap(silent);
    reap(leader);
    assert_int_equal(two[1].err, ORCH_OK);
    assert_int_equal(two[1].status, 200);
    assert_int_equal(two[0].err, ORCH_ERR_CLOSED);
    assert_true(two[0].elapsed_ms < 900);
    ctl_http_req_fini(&two[0]);
    ctl_http_req_fini(&two[1]);

    /* nobody listening */
    assert_int_equal(ctl_url_parse("127.0.0.1:1", &u, msg, sizeof(msg)), ORCH_OK);
    ctl_http_req r5 = {.url = &u, .path = "/api/clusters"};
    assert_int_equal(ctl_http_run(&r5, 1, 1000, 0), ORCH_OK);
    assert_int_equal(r5.err, ORCH_ERR_IO);
    assert_non_null(strstr(r5.msg, "cannot connect to http://127.0.0.1:1"));
    ctl_http_req_fini(&r5);
}

static void test_encode_and_auth(void **state)
{
    (void)state;
    char out[64] = "";
    assert_true(ctl_http_encode("a b/c:d%e~f.g-h_i", out, sizeof(out)));
    assert_string_equal(out, "a%20b%2Fc%3Ad%25e~f.g-h_i");
    char small[6] = "";
    assert_false(ctl_http_encode("a b c", small, sizeof(small)));
    assert_string_equal(small, "a%20b"); /* a valid prefix */
    char hdr[128];
    assert_true(ctl_http_basic_auth("Aladdin", "open sesame", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_true(ctl_http_basic_auth("u", "pw", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "Basic dTpwdw==");
    assert_true(ctl_http_basic_auth("ab", "c", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "Basic YWI6Yw==");
    assert_false(ctl_http_basic_auth("user", "password", hdr, 10));
}

static void test_pick(void **state)
{
    (void)state;
    ctl_url u[3];
    char msg[1024];
    for (int k = 0; k < 3; k++) {
        char s[32];
        snprintf(s, sizeof(s), "http://c%d:3000", k + 1);
        assert_int_equal(ctl_url_parse(s, &u[k], msg, sizeof(msg)), ORCH_OK);
    }
    static const struct {
        orch_err err[3];
        int status[3];
        bool need_leader;
        int pick;
        int exit;
        const char *msg;
    } cases[] = {
        /* the leader wins wherever it is */
        {{ORCH_OK, ORCH_OK, ORCH_OK}, {404, 200, 404}, false, 1, 0, NULL},
        {{ORCH_ERR_IO, ORCH_OK, ORCH_ERR_CLOSED}, {0, 200, 0}, true, 1, 0, NULL},
        /* no leader: reads go to the first follower that answers */
        {{ORCH_ERR_IO, ORCH_OK, ORCH_OK}, {0, 404, 404}, false, 1, 0, NULL},
        {{ORCH_OK, ORCH_OK, ORCH_OK}, {500, 404, 404}, false, 1, 0, NULL},
        {{ORCH_OK, ORCH_ERR_IO, ORCH_ERR_IO}, {500, 0, 0}, false, 0, 0, NULL},
        /* ... writes do not */
        {{ORCH_ERR_IO, ORCH_OK, ORCH_OK},
         {0, 404, 404},
         true,
         -1,
         ORCH_EXIT_UNREACHABLE,
         "no coordinator says it is the leader"},
        /* nobody */
        {{ORCH_ERR_IO, ORCH_ERR_TIMEOUT, ORCH_ERR_IO},
         {0, 0, 0},
         false,
         -1,
         ORCH_EXIT_UNREACHABLE,
         "no coordinator reachable"},
        /* credentials */
        {{ORCH_OK, ORCH_OK, ORCH_ERR_IO},
         {401, 401, 0},
         false,
         -1,
         ORCH_EXIT_AUTH,
         "credentials refused"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        ctl_http_req r[3];
        memset(r, 0, sizeof(r));
        for (int j = 0; j < 3; j++) {
            r[j].url = &u[j];
            r[j].err = cases[k].err[j];
            r[j].status = cases[k].status[j];
            snprintf(r[j].msg, sizeof(r[j].msg), "%s: failed", u[j].text);
        }
        int exit_code = 0;
        msg[0] = '\0';
        int pick = ctl_run_pick(r, 3, cases[k].need_leader, &exit_code, msg, sizeof(msg));
        assert_int_equal(pick, cases[k].pick);
        if (pick < 0) {
            assert_int_equal(exit_code, cases[k].exit);
            if (strstr(msg, cases[k].msg) == NULL)
                fail_msg("case %zu: '%s' lacks '%s'", k, msg, cases[k].msg);
            assert_non_null(strstr(msg, "http://c1:3000"));
        }
    }
}

static void test_want_color(void **state)
{
    (void)state;
    assert_true(ctl_run_want_color(CTL_COLOR_AUTO, true, NULL, "xterm"));
    assert_false(ctl_run_want_color(CTL_COLOR_AUTO, false, NULL, "xterm"));
    assert_false(ctl_run_want_color(CTL_COLOR_AUTO, true, "1", "xterm"));
    assert_true(ctl_run_want_color(CTL_COLOR_AUTO, true, "", "xterm")); /* empty: not set */
    assert_false(ctl_run_want_color(CTL_COLOR_AUTO, true, NULL, "dumb"));
    assert_true(ctl_run_want_color(CTL_COLOR_ALWAYS, false, "1", "dumb"));
    assert_false(ctl_run_want_color(CTL_COLOR_NEVER, true, NULL, "xterm"));
}

/* ---- rendering ------------------------------------------------------------------- */

static void expect_render(ctl_out kind, const char *fixture, const char *want)
{
    int rc;
    char *out = render_fixture(kind, fixture, false, &rc);
    if (rc != ORCH_EXIT_OK || strcmp(out, want) != 0)
        fail_msg("%s as %d: rc %d, got\n%s\nexpected\n%s", fixture, (int)kind, rc, out, want);
    free(out);
}

static void test_render_lists(void **state)
{
    (void)state;
    expect_render(CTL_OUT_CLUSTERS, "clusters-info.json", "127.0.0.1:29801\n");
    expect_render(CTL_OUT_CLUSTERS, "clusters.json", "127.0.0.1:29801\n");
    expect_render(CTL_OUT_CLUSTERS_ALIAS, "clusters-info.json",
                  "127.0.0.1:29801,127.0.0.1:29801\n");
    expect_render(CTL_OUT_CLUSTER_NAME, "cluster-info.json", "127.0.0.1:29801\n");
    expect_render(CTL_OUT_CLUSTER_ALIAS, "cluster-info.json", "127.0.0.1:29801\n");
    expect_render(CTL_OUT_KEYS, "cluster.json",
                  "127.0.0.1:29801\n127.0.0.1:29802\n127.0.0.1:29803\n127.0.0.1:29804\n");
    expect_render(CTL_OUT_KEYS, "instance-replicas.json",
                  "127.0.0.1:29802\n127.0.0.1:29803\n127.0.0.1:29804\n");
    /* db3 stopped cleanly (not broken), db4 stopped on a duplicate key (broken) */
    expect_render(CTL_OUT_BROKEN_KEYS, "instance-replicas.json", "127.0.0.1:29804\n");
    expect_render(CTL_OUT_KEY, "instance-replica.json", "127.0.0.1:29802\n");
    expect_render(CTL_OUT_KEY, "master.json", "127.0.0.1:29801\n");
    expect_render(CTL_OUT_MASTER_KEY, "instance-replica.json", "127.0.0.1:29801\n");
    expect_render(CTL_OUT_MASTER_KEY, "instance-master.json", ""); /* a master has none */
    expect_render(CTL_OUT_PROBLEMS, "problems.json",
                  "127.0.0.1:29803: not_replicating\n127.0.0.1:29804: not_replicating\n");
    expect_render(CTL_OUT_LEADER, "status.json", "c1 http://127.0.0.1:29910 epoch 1\n");
    expect_render(CTL_OUT_LEADER, "status-follower.json", "c1 http://127.0.0.1:29910 epoch 1\n");
}

static void test_render_topology(void **state)
{
    (void)state;
    size_t len;
    char *body = slurp("topology.json", &len);
    int rc;
    char *plain = render(CTL_OUT_TOPOLOGY, body, len, false, &rc);
    assert_int_equal(rc, ORCH_EXIT_OK);
    assert_string_equal(
        plain,
        "127.0.0.1:29801   [0s,ok,10.11.19-MariaDB-0+deb12u1-log,rw,ROW,>>,GTID]\n"
        "+ 127.0.0.1:29802 [0s,ok,10.11.19-MariaDB-0+deb12u1-log,ro,ROW,>>,GTID,downtimed]\n"
        "- 127.0.0.1:29803 [null,nonreplicating,10.11.19-MariaDB-0+deb12u1-log,ro,ROW,>>,GTID,"
        "maintenance]\n"
        "- 127.0.0.1:29804 [null,nonreplicating,10.11.19-MariaDB-0+deb12u1-log,ro,ROW,>>,GTID]\n");
    char *color = render(CTL_OUT_TOPOLOGY, body, len, true, &rc);
    assert_int_equal(rc, ORCH_EXIT_OK);
    /* healthy master green; downtimed replica yellow; non-replicating ones red */
    assert_non_null(strstr(color, "\033[1m\033[32m127.0.0.1:29801\033[0m"));
    assert_non_null(strstr(color, "\033[1m\033[33m127.0.0.1:29802\033[0m"));
    assert_non_null(strstr(color, "\033[1m\033[31m127.0.0.1:29803\033[0m"));
    assert_non_null(strstr(color, "\033[31m- \033[0m"));
    assert_non_null(strstr(color, "\033[33mdowntimed\033[0m"));
    assert_non_null(strstr(color, "\033[31mnonreplicating\033[0m"));
    /* with the escapes taken out, the same text */
    char *strip = strdup(color);
    char *o = strip;
    for (const char *p = color; *p;) {
        if (*p == '\033') {
            p = strchr(p, 'm') + 1;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    assert_string_equal(strip, plain);
    free(strip);
    free(plain);
    free(color);
    free(body);

    int rc2;
    char *down = render_fixture(CTL_OUT_TOPOLOGY, "topology-down.json", true, &rc2);
    assert_non_null(strstr(down, "\033[31magent:down\033[0m"));
    assert_non_null(strstr(down, "\033[1m\033[31m127.0.0.1:29804"));
    free(down);
    /* topology needs the text: a bare array is the wrong shape */
    char *bad = render_fixture(CTL_OUT_TOPOLOGY, "cluster.json", false, &rc2);
    assert_int_equal(rc2, ORCH_EXIT_FAILURE);
    free(bad);
}

static void test_render_tabulated(void **state)
{
    (void)state;
    int rc;
    char *out = render_fixture(CTL_OUT_TABULATED, "cluster.json", false, &rc);
    assert_int_equal(rc, ORCH_EXIT_OK);
    const char *want =
        "INSTANCE           AGENT  LAG   VERSION                         MODE  BINLOG  GTID  "
        "DOWNTIME                                                PROBLEMS\n"
        "127.0.0.1:29801    UP     -     10.11.19-MariaDB-0+deb12u1-log  rw    ROW,>>  -     "
        "-                                                       -\n"
        "+ 127.0.0.1:29802  UP     0s    10.11.19-MariaDB-0+deb12u1-log  ro    ROW,>>  gtid  "
        "downtimed until 2026-11-23 01:03:50 (alice: disk swap)  -\n"
        "- 127.0.0.1:29803  UP     null  10.11.19-MariaDB-0+deb12u1-log  ro    ROW,>>  gtid  "
        "maintenance until 2026-11-23 00:03:50 (bob: kernel)     not_replicating\n"
        "- 127.0.0.1:29804  UP     null  10.11.19-MariaDB-0+deb12u1-log  ro    ROW,>>  gtid  "
        "-                                                       not_replicating\n";
    if (strcmp(out, want) != 0)
        fail_msg("got\n%s\nexpected\n%s", out, want);
    free(out);
    out = render_fixture(CTL_OUT_TABULATED, "cluster-down.json", false, &rc);
    assert_int_equal(rc, ORCH_EXIT_OK);
    assert_non_null(strstr(out, "127.0.0.1:29804  DOWN"));
    assert_non_null(strstr(out, "last_check_invalid"));
    free(out);

    /* a cycle the registry did not flag: every instance is still shown */
    static const char cycle[] =
        "[{\"Key\":{\"Hostname\":\"a\",\"Port\":1},\"MasterKey\":{\"Hostname\":\"b\",\"Port\":1},"
        "\"Replicas\":[{\"Hostname\":\"b\",\"Port\":1}]},"
        "{\"Key\":{\"Hostname\":\"b\",\"Port\":1},\"MasterKey\":{\"Hostname\":\"a\",\"Port\":1},"
        "\"Replicas\":[{\"Hostname\":\"a\",\"Port\":1}]}]";
    out = render(CTL_OUT_TABULATED, cycle, strlen(cycle), false, &rc);
    assert_int_equal(rc, ORCH_EXIT_OK);
    assert_non_null(strstr(out, "? a:1"));
    assert_non_null(strstr(out, "? b:1"));
    free(out);
}

static void test_render_operations(void **state)
{
    (void)state;
    /* orchestrator's answers to operations, as its API documents them */
    static const struct {
        ctl_out kind;
        const char *body;
        int rc;
        const char *want;
    } cases[] = {
        {CTL_OUT_DETAILS_MOVED,
         "{\"Code\":\"OK\",\"Message\":\"Instance relocated\",\"Details\":{\"Key\":{\"Hostname\":"
         "\"db3\",\"Port\":3306},\"MasterKey\":{\"Hostname\":\"db2\",\"Port\":3306}}}",
         0, "db3:3306<db2:3306\n"},
        {CTL_OUT_DETAILS_KEYS,
         "{\"Code\":\"OK\",\"Message\":\"moved\",\"Details\":[{\"Key\":{\"Hostname\":\"db3\","
         "\"Port\":3306}},{\"Key\":{\"Hostname\":\"db4\",\"Port\":3306}}]}",
         0, "db3:3306\ndb4:3306\n"},
        {CTL_OUT_DETAILS_KEY,
         "{\"Code\":\"OK\",\"Message\":\"downtimed\",\"Details\":{\"Hostname\":\"db3\","
         "\"Port\":3306}}",
         0, "db3:3306\n"},
        {CTL_OUT_DETAILS_KEY,
         "{\"Code\":\"OK\",\"Message\":\"stopped\",\"Details\":{\"Key\":{\"Hostname\":\"::1\","
         "\"Port\":3306}}}",
         0, "[::1]:3306\n"},
        {CTL_OUT_SUCCESSOR,
         "{\"Code\":\"OK\",\"Message\":\"promoted\",\"Details\":{\"SuccessorKey\":{\"Hostname\":"
         "\"db2\",\"Port\":3306}}}",
         0, "db2:3306\n"},
        {CTL_OUT_DETAILS_TEXT, "{\"Code\":\"OK\",\"Message\":\"m\",\"Details\":\"enabled\"}", 0,
         "enabled\n"},
        {CTL_OUT_DETAILS_TEXT, "{\"Code\":\"OK\",\"Message\":\"Acked 3\",\"Details\":null}", 0,
         "Acked 3\n"},
        {CTL_OUT_DETAILS_TEXT, "{\"Code\":\"OK\",\"Message\":\"m\",\"Details\":3}", 0, "3\n"},
        {CTL_OUT_ANALYSIS,
         "{\"Code\":\"OK\",\"Message\":\"Analysis\",\"Details\":[{\"AnalyzedInstanceKey\":"
         "{\"Hostname\":\"db1\",\"Port\":3306},\"ClusterDetails\":{\"ClusterName\":\"db1:3306\"},"
         "\"Analysis\":\"DeadMaster\"},{\"AnalyzedInstanceKey\":{\"Hostname\":\"db5\",\"Port\":"
         "3306},\"ClusterDetails\":{\"ClusterName\":\"db5:3306\"},\"Analysis\":\"NoProblem\","
         "\"StructureAnalysis\":[\"NoFailoverSupportStructureWarning\"]}]}",
         0,
         "db1:3306 (cluster db1:3306): DeadMaster\n"
         "db5:3306 (cluster db5:3306): NoFailoverSupportStructureWarning\n"},
        {CTL_OUT_AUDIT,
         "{\"Code\":\"OK\",\"Message\":\"\",\"Details\":[{\"Id\":7,\"AnalysisEntry\":"
         "{\"AnalyzedInstanceKey\":{\"Hostname\":\"db1\",\"Port\":3306},\"Analysis\":"
         "\"DeadMaster\",\"ClusterDetails\":{\"ClusterName\":\"db1:3306\"}},\"SuccessorKey\":"
         "{\"Hostname\":\"db2\",\"Port\":3306},\"IsSuccessful\":true,\"Acknowledged\":false,"
         "\"RecoveryStartTimestamp\":\"2026-01-02 03:04:05\"}]}",
         0, "7  2026-01-02 03:04:05  db1:3306  DeadMaster  db1:3306 -> db2:3306  ok\n"},
        {CTL_OUT_KEYS, "{\"not\":\"a list\"}", ORCH_EXIT_FAILURE, ""},
        {CTL_OUT_KEY, "[1,2]", ORCH_EXIT_FAILURE, ""},
        {CTL_OUT_KEYS, "not json", ORCH_EXIT_FAILURE, ""},
        {CTL_OUT_LEADER,
         "{\"Code\":\"OK\",\"Message\":\"\",\"Details\":{\"Hostname\":\"c2\",\"ActiveNode\":"
         "{\"Hostname\":\"\"},\"Orch\":{\"Epoch\":0}}}",
         ORCH_EXIT_NOTFOUND, ""},
        {CTL_OUT_RAW, "{\"raw\":1}", 0, "{\"raw\":1}\n"},
    };
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        int rc;
        char *out = render(cases[k].kind, cases[k].body, strlen(cases[k].body), false, &rc);
        if (rc != cases[k].rc || strcmp(out, cases[k].want) != 0)
            fail_msg("case %zu: rc %d (want %d), got '%s', expected '%s'", k, rc, cases[k].rc, out,
                     cases[k].want);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_key_defaults),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_http_parse),
        cmocka_unit_test(test_http_run_local),
        cmocka_unit_test(test_encode_and_auth),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_want_color),
        cmocka_unit_test(test_render_lists),
        cmocka_unit_test(test_render_topology),
        cmocka_unit_test(test_render_tabulated),
        cmocka_unit_test(test_render_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
