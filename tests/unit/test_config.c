/* Unit tests for config.c: the table-driven configuration engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURES "fixtures/config/"

/* A config struct with every type, and its table. */
typedef struct test_cfg {
    bool verbose;
    int64_t probe_interval_ms;
    int64_t offset;
    char *name;
    char *comment;
    int log_level;
    orch_strlist peers;
    orch_strlist tags;
    char *password;
    char *cluster;
    int64_t port;
} test_cfg;

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const default_peers[] = {"a:1", "b:2", NULL};

static const orch_config_field test_fields[] = {
    {.name = "verbose",
     .type = ORCH_CONFIG_BOOL,
     .offset = offsetof(test_cfg, verbose),
     .flags = ORCH_CONFIG_RELOADABLE,
     .help = "Log more."},
    {.name = "probe_interval_ms",
     .type = ORCH_CONFIG_INT,
     .offset = offsetof(test_cfg, probe_interval_ms),
     .def.i = 1000,
     .min = 100,
     .max = 60000,
     .flags = ORCH_CONFIG_RELOADABLE,
     .help = "How often to probe, in milliseconds."},
    {.name = "offset",
     .type = ORCH_CONFIG_INT,
     .offset = offsetof(test_cfg, offset),
     .def.i = -5,
     .help = "An unbounded integer."},
    {.name = "name",
     .type = ORCH_CONFIG_STRING,
     .offset = offsetof(test_cfg, name),
     .def.s = "orch",
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "This node's name."},
    {.name = "comment",
     .type = ORCH_CONFIG_STRING,
     .offset = offsetof(test_cfg, comment),
     .help = "Free text; may be empty."},
    {.name = "log_level",
     .type = ORCH_CONFIG_ENUM,
     .offset = offsetof(test_cfg, log_level),
     .def.s = "info",
     .values = levels,
     .flags = ORCH_CONFIG_RELOADABLE,
     .help = "Lowest level logged."},
    {.name = "peers",
     .type = ORCH_CONFIG_STRLIST,
     .offset = offsetof(test_cfg, peers),
     .def.list = default_peers,
     .flags = ORCH_CONFIG_NONEMPTY,
     .help = "Other nodes, host:port."},
    {.name = "tags",
     .type = ORCH_CONFIG_STRLIST,
     .offset = offsetof(test_cfg, tags),
     .flags = ORCH_CONFIG_RELOADABLE,
     .help = "Labels."},
    {.name = "password",
     .type = ORCH_CONFIG_SECRET,
     .offset = offsetof(test_cfg, password),
     .flags = ORCH_CONFIG_RELOADABLE,
     .help = "MySQL password."},
    {.name = "cluster",
     .type = ORCH_CONFIG_STRING,
     .offset = offsetof(test_cfg, cluster),
     .flags = ORCH_CONFIG_REQUIRED | ORCH_CONFIG_NONEMPTY,
     .help = "Cluster name."},
    {.name = "port",
     .type = ORCH_CONFIG_INT,
     .offset = offsetof(test_cfg, port),
     .def.i = 3306,
     .min = 1,
     .max = 65535,
     .help = "Port to listen on."},
};
static const orch_config_table test_table = ORCH_CONFIG_TABLE(test_fields);

/* Loads NUL-terminated text into *cfg; on failure checks that *cfg was not touched. */
static orch_err load(const char *text, test_cfg *cfg, orch_config_errors *errs)
{
    memset(cfg, 0xA5, sizeof(*cfg));
    test_cfg before;
    memcpy(&before, cfg, sizeof(before));
    orch_err err = orch_config_load_string(&test_table, cfg, text, strlen(text), "t.json", errs);
    if (err != ORCH_OK) {
        assert_memory_equal(cfg, &before, sizeof(before));
        memset(cfg, 0, sizeof(*cfg));
    }
    return err;
}

/* Reads everything written to a memstream-backed FILE. */
typedef struct membuf {
    char *data;
    size_t len;
    FILE *fp;
} membuf;

static void membuf_open(membuf *m)
{
    m->data = NULL;
    m->len = 0;
    m->fp = open_memstream(&m->data, &m->len);
    assert_non_null(m->fp);
}

static void membuf_close(membuf *m)
{
    assert_int_equal(fclose(m->fp), 0);
    m->fp = NULL;
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

/* A fresh path under /tmp; the caller unlinks it. */
static void temp_path(char *buf, size_t buflen, const char *tag)
{
    snprintf(buf, buflen, "/tmp/orch-test-config-%d-%s", (int)getpid(), tag);
}

static void test_table_check(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(orch_config_table_check(&test_table, msg, sizeof(msg)), ORCH_OK);

    static const struct {
        orch_config_field f[2];
        const char *fragment;
    } bad[] = {
        {{{.name = "a", .type = ORCH_CONFIG_BOOL, .help = "x"},
          {.name = "a", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "appears twice"},
        {{{.name = "Bad", .type = ORCH_CONFIG_BOOL, .help = "x"},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "a-z"},
        {{{.name = "a", .type = ORCH_CONFIG_INT, .def.i = 5, .min = 10, .max = 20, .help = "x"},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "default 5 outside 10..20"},
        {{{.name = "a", .type = ORCH_CONFIG_ENUM, .def.s = "x", .values = levels, .help = "x"},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "not one of its values"},
        {{{.name = "a", .type = ORCH_CONFIG_ENUM, .help = "x"},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "enum without values"},
        {{{.name = "a", .type = ORCH_CONFIG_BOOL, .flags = ORCH_CONFIG_NONEMPTY, .help = "x"},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "NONEMPTY"},
        {{{.name = "a", .type = ORCH_CONFIG_BOOL},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "no help"},
        {{{.name = "a", .type = (orch_config_type)99, .help = "x"},
          {.name = "b", .type = ORCH_CONFIG_BOOL, .help = "x"}},
         "unknown type"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        orch_config_table t = {bad[i].f, 2};
        msg[0] = '\0';
        assert_int_equal(orch_config_table_check(&t, msg, sizeof(msg)), ORCH_ERR_INVAL);
        if (strstr(msg, bad[i].fragment) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, msg, bad[i].fragment);
    }
}

static void test_set_defaults(void **state)
{
    (void)state;
    test_cfg cfg;
    memset(&cfg, 0xA5, sizeof(cfg));
    assert_int_equal(orch_config_set_defaults(&test_table, &cfg, NULL, 0), ORCH_OK);
    assert_false(cfg.verbose);
    assert_int_equal(cfg.probe_interval_ms, 1000);
    assert_int_equal(cfg.offset, -5);
    assert_string_equal(cfg.name, "orch");
    assert_null(cfg.comment);
    assert_int_equal(cfg.log_level, 1);
    assert_int_equal(cfg.peers.n, 2);
    assert_string_equal(cfg.peers.v[0], "a:1");
    assert_string_equal(cfg.peers.v[1], "b:2");
    assert_null(cfg.peers.v[2]);
    assert_int_equal(cfg.tags.n, 0);
    assert_null(cfg.tags.v);
    assert_null(cfg.password);
    assert_null(cfg.cluster);
    assert_int_equal(cfg.port, 3306);
    orch_config_fini(&test_table, &cfg);
    assert_null(cfg.name);
    assert_null(cfg.peers.v);
    orch_config_fini(&test_table, &cfg); /* twice is harmless */
    orch_config_fini(&test_table, NULL);
}

static void test_load_applies_defaults(void **state)
{
    (void)state;
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load("{\"cluster\": \"c1\"}", &cfg, &errs), ORCH_OK);
    assert_int_equal(orch_config_errors_count(&errs), 0);
    assert_int_equal(orch_config_errors_len(&errs), 0);
    assert_string_equal(cfg.cluster, "c1");
    assert_int_equal(cfg.probe_interval_ms, 1000);
    assert_string_equal(cfg.name, "orch");
    assert_int_equal(cfg.peers.n, 2);
    assert_int_equal(cfg.log_level, 1);
    orch_config_fini(&test_table, &cfg);
    orch_config_errors_fini(&errs);
}

static void test_load_every_type(void **state)
{
    (void)state;
    static const char text[] = "{\n"
                               "  \"verbose\": true,\n"
                               "  \"probe_interval_ms\": 100,\n"
                               "  \"offset\": -9223372036854775808,\n"
                               "  \"name\": \"n\\u00e9\",\n"
                               "  \"comment\": \"\",\n"
                               "  \"log_level\": \"error\",\n"
                               "  \"peers\": [\"x:1\"],\n"
                               "  \"tags\": [\"t1\", \"t2\", \"\"],\n"
                               "  \"password\": \"hunter2\",\n"
                               "  \"cluster\": \"c\",\n"
                               "  \"port\": 65535\n"
                               "}\n";
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load(text, &cfg, &errs), ORCH_OK);
    assert_int_equal(orch_config_errors_len(&errs), 0); /* no file mode: no warning */
    assert_true(cfg.verbose);
    assert_int_equal(cfg.probe_interval_ms, 100);
    assert_true(cfg.offset == INT64_MIN);
    assert_string_equal(cfg.name, "n\xc3\xa9");
    assert_string_equal(cfg.comment, "");
    assert_int_equal(cfg.log_level, 3);
    assert_int_equal(cfg.peers.n, 1);
    assert_string_equal(cfg.peers.v[0], "x:1");
    assert_int_equal(cfg.tags.n, 3);
    assert_string_equal(cfg.tags.v[2], "");
    assert_null(cfg.tags.v[3]);
    assert_string_equal(cfg.password, "hunter2");
    assert_string_equal(cfg.cluster, "c");
    assert_int_equal(cfg.port, 65535);
    orch_config_fini(&test_table, &cfg);
    orch_config_errors_fini(&errs);
}

static void test_null_means_unset_for_strings(void **state)
{
    (void)state;
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load("{\"cluster\": \"c\", \"name\": null, \"password\": null}", &cfg, &errs),
                     ORCH_OK);
    assert_null(cfg.name);
    assert_null(cfg.password);
    orch_config_fini(&test_table, &cfg);
    orch_config_errors_fini(&errs);
}

/*
 * One error per case. Each text sets "cluster" on line 1 so that the only problem
 * is the one under test; `line` 0 means the error carries no line, `key` NULL no key.
 */
static void test_each_error_kind(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *key;
        int line;
        const char *fragment;
    } cases[] = {
        /* JSON syntax */
        {"{\"cluster\": \"c\",\n \"port\": }", "port", 2, "JSON syntax error at column"},
        {"{\"cluster\": \"c\"\n \"port\": 1}", NULL, 2, "JSON syntax error"},
        {"{\"cluster\": \"c\",\n\n \"port\": 1,\n}", NULL, 4, "JSON syntax error"},
        {"{\"cluster\": \"c\"} x", NULL, 1, "JSON syntax error"},
        {"{\"cluster\": \"c\",\n \"port\": 99999999999999999999}", "port", 2, "too big integer"},
        {"{\"cluster\": \"c\",\n \"name\": \"a\\u0000b\"}", "name", 2, "JSON syntax error"},
        /* shape */
        {"\n[1, 2]", NULL, 2, "the top level must be a JSON object, got array"},
        {"\"cluster\"", NULL, 1, "must be a JSON object, got string"},
        {"42", NULL, 1, "got integer"},
        {"", NULL, 0, "the file is empty"},
        {" \n\t\n", NULL, 0, "the file is empty"},
        /* unknown keys */
        {"{\"cluster\": \"c\",\n \"probe_intervl_ms\": 5}", "probe_intervl_ms", 2,
         "unknown key (did you mean 'probe_interval_ms'?)"},
        {"{\"cluster\": \"c\",\n \"zzz\": 5}", "zzz", 2, "unknown key"},
        {"{\"cluster\": \"c\",\n \"a\\nb\": 5}", "a?b", 2, "unknown key"},
        /* types */
        {"{\"cluster\": \"c\",\n \"port\": \"3306\"}", "port", 2, "expected integer, got string"},
        {"{\"cluster\": \"c\",\n \"port\": 3306.0}", "port", 2, "expected integer, got real"},
        {"{\"cluster\": \"c\",\n \"port\": null}", "port", 2, "expected integer, got null"},
        {"{\"cluster\": \"c\",\n \"verbose\": \"yes\"}", "verbose", 2,
         "expected boolean, got string"},
        {"{\"cluster\": \"c\",\n \"verbose\": null}", "verbose", 2, "expected boolean, got null"},
        {"{\"cluster\": \"c\",\n \"name\": 5}", "name", 2, "expected string, got integer"},
        {"{\"cluster\": \"c\",\n \"peers\": \"a\"}", "peers", 2,
         "expected array of strings, got string"},
        {"{\"cluster\": \"c\",\n \"peers\": null}", "peers", 2,
         "expected array of strings, got null"},
        {"{\"cluster\": \"c\",\n \"peers\": [\"a\", 5]}", "peers", 2,
         "element 2: expected string, got integer"},
        {"{\"cluster\": \"c\",\n \"password\": {}}", "password", 2, "expected string, got object"},
        {"{\"cluster\": \"c\",\n \"log_level\": 3}", "log_level", 2,
         "expected string (one of: debug, info, warn, error), got integer"},
        /* bounds */
        {"{\"cluster\": \"c\",\n \"probe_interval_ms\": 50}", "probe_interval_ms", 2,
         "50 is below the minimum 100"},
        {"{\"cluster\": \"c\",\n \"probe_interval_ms\": 60001}", "probe_interval_ms", 2,
         "60001 is above the maximum 60000"},
        {"{\"cluster\": \"c\",\n \"port\": -1}", "port", 2, "-1 is below the minimum 1"},
        {"{\"cluster\": \"c\",\n \"port\": 9223372036854775807}", "port", 2,
         "9223372036854775807 is above the maximum 65535"},
        {"{\"cluster\": \"c\",\n \"port\": -9223372036854775808}", "port", 2,
         "-9223372036854775808 is below the minimum 1"},
        /* enum */
        {"{\"cluster\": \"c\",\n \"log_level\": \"loud\"}", "log_level", 2,
         "'loud' is not an allowed value (allowed: debug, info, warn, error)"},
        {"{\"cluster\": \"c\",\n \"log_level\": \"INFO\"}", "log_level", 2, "'INFO' is not"},
        /* required, empty */
        {"{}", "cluster", 0, "required key is missing"},
        {"{\"port\": 1}", "cluster", 0, "required key is missing"},
        {"{\"cluster\": null}", "cluster", 1, "required, so it may not be null"},
        {"{\"cluster\": \"\"}", "cluster", 1, "must not be empty"},
        {"{\"cluster\": \"c\",\n \"name\": \"\"}", "name", 2, "must not be empty"},
        {"{\"cluster\": \"c\",\n \"peers\": []}", "peers", 2, "must not be empty"},
        {"{\"cluster\": \"c\",\n \"peers\": [\"a\", \"\"]}", "peers", 2,
         "element 2 must not be empty"},
        /* duplicates: reported where repeated */
        {"{\"cluster\": \"c\",\n \"port\": 1,\n\n \"port\" :\n 2}", "port", 4,
         "duplicate key (first given on line 2)"},
        {"{\"cluster\": \"c\",\n \"cl\\u0075ster\": \"d\"}", "cluster", 2,
         "duplicate key (first given on line 1)"},
        /* secret references */
        {"{\"cluster\": \"c\",\n \"password\": \"env:\"}", "password", 2,
         "bad secret reference 'env:'"},
        {"{\"cluster\": \"c\",\n \"password\": \"env:A=B\"}", "password", 2,
         "bad secret reference 'env:A=B'"},
        {"{\"cluster\": \"c\",\n \"password\": \"env:ORCH_TEST_SURELY_UNSET\"}", "password", 2,
         "environment variable ORCH_TEST_SURELY_UNSET is not set"},
        {"{\"cluster\": \"c\",\n \"password\": \"file:\"}", "password", 2,
         "bad secret reference 'file:'"},
        {"{\"cluster\": \"c\",\n \"password\": \"file:/nonexistent/orch/pw\"}", "password", 2,
         "secret file '/nonexistent/orch/pw': cannot open: No such file or directory"},
        {"{\"cluster\": \"c\",\n \"password\": \"file:/\"}", "password", 2,
         "secret file '/': is a directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        test_cfg cfg;
        orch_config_errors errs = {0};
        assert_int_equal(load(cases[i].text, &cfg, &errs), ORCH_ERR_CONFIG);
        if (orch_config_errors_count(&errs) != 1 || orch_config_errors_len(&errs) != 1) {
            orch_config_errors_write(&errs, stderr);
            fail_msg("case %zu: %zu errors, want 1", i, orch_config_errors_count(&errs));
        }
        const orch_config_error *e = orch_config_errors_get(&errs, 0);
        assert_false(e->warning);
        if (e->line != cases[i].line || strstr(e->message, cases[i].fragment) == NULL ||
            (cases[i].key == NULL) != (e->key == NULL) ||
            (cases[i].key != NULL && strcmp(cases[i].key, e->key) != 0))
            fail_msg("case %zu: got '%s' (line %d)", i, e->text, e->line);
        /* the report line carries source, line and key */
        char want[256];
        char where[16] = "";
        if (cases[i].line > 0)
            snprintf(where, sizeof(where), ":%d", cases[i].line);
        if (cases[i].key != NULL)
            snprintf(want, sizeof(want), "t.json%s: key '%s': ", where, cases[i].key);
        else
            snprintf(want, sizeof(want), "t.json%s: ", where);
        if (strncmp(e->text, want, strlen(want)) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, e->text, want);
        if (strstr(cases[i].fragment, "did you mean") == NULL && strstr(e->text, "did you mean"))
            fail_msg("case %zu: unexpected suggestion in '%s'", i, e->text);
        assert_null(orch_config_errors_get(&errs, 1));
        orch_config_errors_fini(&errs);
    }
}

static void test_several_errors_in_file_order(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int line;
        const char *fragment;
    } want[] = {
        {"probe_interval_ms", 2, "50 is below the minimum 100"},
        {"log_level", 3, "'loud' is not an allowed value"},
        {"verbose", 4, "expected boolean, got string"},
        {"probe_intervall_ms", 5, "did you mean 'probe_interval_ms'?"},
        {"peers", 6, "element 2: expected string, got integer"},
        {"port", 8, "duplicate key (first given on line 7)"},
        {"port", 8, "70000 is above the maximum 65535"},
        {"password", 9, "bad secret reference 'env:'"},
        {"cluster", 0, "required key is missing"},
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    test_cfg cfg;
    memset(&cfg, 0x5A, sizeof(cfg));
    orch_config_errors errs = {0};
    const char *path = FIXTURES "several-errors.json";
    assert_int_equal(orch_config_load_file(&test_table, &cfg, path, &errs), ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), nwant);
    assert_int_equal(orch_config_errors_len(&errs), nwant);
    for (size_t i = 0; i < nwant; i++) {
        const orch_config_error *e = orch_config_errors_get(&errs, i);
        if (strcmp(e->key, want[i].key) != 0 || e->line != want[i].line ||
            strstr(e->message, want[i].fragment) == NULL)
            fail_msg("error %zu: got '%s'", i, e->text);
    }
    assert_string_equal(orch_config_errors_get(&errs, 0)->text,
                        FIXTURES "several-errors.json:2: key 'probe_interval_ms': 50 is below "
                                 "the minimum 100");
    assert_string_equal(orch_config_errors_get(&errs, nwant - 1)->text,
                        FIXTURES "several-errors.json: key 'cluster': required key is missing");

    /* written out: one line each, in the same order */
    membuf m;
    membuf_open(&m);
    orch_config_errors_write(&errs, m.fp);
    membuf_close(&m);
    const char *p = m.data;
    for (size_t i = 0; i < nwant; i++) {
        const char *text = orch_config_errors_get(&errs, i)->text;
        assert_int_equal(strncmp(p, text, strlen(text)), 0);
        p += strlen(text);
        assert_int_equal(*p, '\n');
        p++;
    }
    assert_int_equal(*p, '\0');
    free(m.data);

    /* and through orch_log, one ERROR line each with the ORCH-CONFIG tag */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    orch_log_set_fd(fds[1]);
    orch_config_errors_log(&errs);
    orch_log_set_fd(2);
    close(fds[1]);
    char buf[8192] = {0};
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    size_t lines = 0;
    for (const char *q = buf; (q = strstr(q, " ERROR ORCH-CONFIG ")) != NULL; q++)
        lines++;
    assert_int_equal(lines, nwant);
    assert_non_null(strstr(buf, "several-errors.json:3: key 'log_level': 'loud'"));
    orch_config_errors_fini(&errs);
}

static void test_load_file_fixture(void **state)
{
    (void)state;
    setenv("ORCH_TEST_FIXTURE_PW", "from-env", 1);
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(orch_config_load_file(&test_table, &cfg, FIXTURES "valid.json", &errs),
                     ORCH_OK);
    assert_int_equal(orch_config_errors_len(&errs), 0); /* env: is not inline: no warning */
    assert_string_equal(cfg.cluster, "main");
    assert_true(cfg.verbose);
    assert_int_equal(cfg.probe_interval_ms, 250);
    assert_int_equal(cfg.offset, -42);
    assert_string_equal(cfg.comment, "from a fixture");
    assert_int_equal(cfg.log_level, 0);
    assert_int_equal(cfg.peers.n, 2);
    assert_int_equal(cfg.tags.n, 0);
    assert_string_equal(cfg.password, "from-env");
    assert_int_equal(cfg.port, 3307);
    orch_config_fini(&test_table, &cfg);
    unsetenv("ORCH_TEST_FIXTURE_PW");
}

static void test_file_not_found(void **state)
{
    (void)state;
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(
        orch_config_load_file(&test_table, &cfg, "/nonexistent/orch/agent.json", &errs),
        ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), 1);
    assert_string_equal(orch_config_errors_get(&errs, 0)->text,
                        "/nonexistent/orch/agent.json: cannot open: No such file or directory");
    orch_config_errors_fini(&errs);
}

static void test_empty_file(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof(path), "empty.json");
    write_file(path, "", 0, 0600);
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(orch_config_load_file(&test_table, &cfg, path, &errs), ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), 1);
    const orch_config_error *e = orch_config_errors_get(&errs, 0);
    assert_int_equal(strncmp(e->text, path, strlen(path)), 0);
    assert_non_null(strstr(e->text, "the file is empty"));
    orch_config_errors_fini(&errs);
    unlink(path);
}

static void test_did_you_mean(void **state)
{
    (void)state;
    static const struct {
        const char *typo;
        const char *want; /* NULL: no suggestion */
    } cases[] = {
        {"probe_interval", "probe_interval_ms"},
        {"prob_interval_ms", "probe_interval_ms"},
        {"probe_interval_sm", "probe_interval_ms"},
        {"Probe-Interval-MS", "probe_interval_ms"},
        {"lgo_level", "log_level"},
        {"loglevel", "log_level"},
        {"prot", "port"},
        {"passwd", "password"},
        {"clusters", "cluster"},
        {"interval", NULL},
        {"p", NULL},
        {"zzzzzzzzzzzz", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"cluster\": \"c\", \"%s\": 1}", cases[i].typo);
        test_cfg cfg;
        orch_config_errors errs = {0};
        assert_int_equal(load(text, &cfg, &errs), ORCH_ERR_CONFIG);
        assert_int_equal(orch_config_errors_count(&errs), 1);
        const char *msg = orch_config_errors_get(&errs, 0)->message;
        char want[128];
        if (cases[i].want != NULL) {
            snprintf(want, sizeof(want), "unknown key (did you mean '%s'?)", cases[i].want);
            if (strcmp(msg, want) != 0)
                fail_msg("'%s': got '%s'", cases[i].typo, msg);
        } else if (strcmp(msg, "unknown key") != 0) {
            fail_msg("'%s': got '%s'", cases[i].typo, msg);
        }
        orch_config_errors_fini(&errs);
    }
}

static void test_long_key_is_cut_in_messages(void **state)
{
    (void)state;
    char text[1200];
    char key[1001];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"cluster\": \"c\", \"%s\": 1}", key);
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load(text, &cfg, &errs), ORCH_ERR_CONFIG);
    const orch_config_error *e = orch_config_errors_get(&errs, 0);
    assert_true(strlen(e->key) < 200);
    assert_non_null(strstr(e->key, "kkk..."));
    orch_config_errors_fini(&errs);
}

static void test_too_many_errors(void **state)
{
    (void)state;
    size_t nkeys = ORCH_CONFIG_MAX_ERRORS + 50;
    size_t cap = 32 + nkeys * 24;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, cap, "{\"cluster\": \"c\"");
    for (size_t i = 0; i < nkeys; i++)
        used += (size_t)snprintf(text + used, cap - used, ",\n\"unknown_%zu\": 1", i);
    snprintf(text + used, cap - used, "}");
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load(text, &cfg, &errs), ORCH_ERR_CONFIG);
    free(text);
    assert_int_equal(orch_config_errors_count(&errs), nkeys);
    assert_int_equal(orch_config_errors_len(&errs), ORCH_CONFIG_MAX_ERRORS);
    assert_int_equal(orch_config_errors_get(&errs, 99)->line, 101);
    membuf m;
    membuf_open(&m);
    orch_config_errors_write(&errs, m.fp);
    membuf_close(&m);
    assert_non_null(strstr(m.data, "(50 more configuration problems not shown)\n"));
    free(m.data);
    orch_config_errors_fini(&errs);
}

static void test_print_round_trip(void **state)
{
    (void)state;
    static const char text[] = "{\"cluster\": \"c\", \"verbose\": true, \"offset\": 7,"
                               " \"name\": \"say \\\"hi\\\"\\n\", \"log_level\": \"warn\","
                               " \"peers\": [\"p1\", \"p2\", \"p3\"], \"tags\": [\"x\"],"
                               " \"password\": \"hunter2\", \"port\": 1}";
    test_cfg a, b;
    orch_config_errors errs = {0};
    assert_int_equal(load(text, &a, &errs), ORCH_OK);

    membuf m;
    membuf_open(&m);
    assert_int_equal(orch_config_print(&test_table, &a, m.fp), ORCH_OK);
    membuf_close(&m);
    assert_null(strstr(m.data, "hunter2"));
    assert_non_null(strstr(m.data, "\"password\": \"<redacted>\""));
    assert_non_null(strstr(m.data, "\"comment\": null"));
    /* keys in table order */
    const char *prev = m.data;
    for (size_t i = 0; i < test_table.nfields; i++) {
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "\"%s\":", test_table.fields[i].name);
        const char *at = strstr(m.data, quoted);
        assert_non_null(at);
        assert_true(at >= prev);
        prev = at;
    }

    assert_int_equal(load(m.data, &b, &errs), ORCH_OK);
    free(m.data);
    assert_int_equal(orch_config_errors_len(&errs), 0);
    assert_int_equal(a.verbose, b.verbose);
    assert_int_equal(a.probe_interval_ms, b.probe_interval_ms);
    assert_int_equal(a.offset, b.offset);
    assert_string_equal(a.name, "say \"hi\"\n");
    assert_string_equal(a.name, b.name);
    assert_null(b.comment);
    assert_int_equal(a.log_level, b.log_level);
    assert_int_equal(b.peers.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(a.peers.v[i], b.peers.v[i]);
    assert_int_equal(b.tags.n, 1);
    assert_string_equal(b.tags.v[0], "x");
    assert_string_equal(b.password, "<redacted>");
    assert_string_equal(a.cluster, b.cluster);
    assert_int_equal(a.port, b.port);

    /* nothing differs but the redacted secret */
    orch_config_changes ch;
    assert_int_equal(orch_config_reload(&test_table, &a, &b, &ch), ORCH_OK);
    assert_int_equal(ch.nreloaded, 1);
    assert_string_equal(ch.reloaded[0], "password");
    assert_int_equal(ch.nrestart, 0);
    orch_config_changes_fini(&ch);
    orch_config_fini(&test_table, &a);
    orch_config_fini(&test_table, &b);
    orch_config_errors_fini(&errs);
}

static void test_print_sample(void **state)
{
    (void)state;
    membuf m;
    membuf_open(&m);
    assert_int_equal(orch_config_print_sample(&test_table, m.fp), ORCH_OK);
    membuf_close(&m);
    for (size_t i = 0; i < test_table.nfields; i++)
        assert_non_null(strstr(m.data, test_table.fields[i].name));
    assert_non_null(strstr(m.data, "\"probe_interval_ms\": 1000"));
    assert_non_null(strstr(m.data, "\"log_level\": \"info\""));
    assert_non_null(strstr(m.data, "\"cluster\": null"));

    /* it loads, except for the required key left for the operator */
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load(m.data, &cfg, &errs), ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), 1);
    assert_string_equal(orch_config_errors_get(&errs, 0)->key, "cluster");
    orch_config_errors_fini(&errs);

    /* with that key filled in, it gives the defaults */
    char *filled = strstr(m.data, "\"cluster\": null");
    memcpy(filled, "\"cluster\": \"x1\"", strlen("\"cluster\": null"));
    assert_int_equal(load(m.data, &cfg, &errs), ORCH_OK);
    free(m.data);
    test_cfg def;
    assert_int_equal(orch_config_set_defaults(&test_table, &def, NULL, 0), ORCH_OK);
    orch_config_changes ch;
    assert_int_equal(orch_config_reload(&test_table, &def, &cfg, &ch), ORCH_OK);
    assert_int_equal(ch.nreloaded, 0);
    assert_int_equal(ch.nrestart, 1);
    assert_string_equal(ch.restart[0], "cluster");
    orch_config_changes_fini(&ch);
    orch_config_fini(&test_table, &def);
    orch_config_fini(&test_table, &cfg);
}

static void test_print_help(void **state)
{
    (void)state;
    membuf m;
    membuf_open(&m);
    assert_int_equal(orch_config_print_help(&test_table, m.fp), ORCH_OK);
    membuf_close(&m);
    for (size_t i = 0; i < test_table.nfields; i++)
        assert_non_null(strstr(m.data, test_table.fields[i].help));
    assert_non_null(strstr(m.data, "probe_interval_ms: integer 100..60000; default 1000; "
                                   "reloadable\n    How often to probe"));
    assert_non_null(strstr(m.data, "log_level: one of: debug, info, warn, error; default info"));
    assert_non_null(strstr(m.data, "cluster: string; default none; required; not empty"));
    free(m.data);
}

static void test_secret_from_env(void **state)
{
    (void)state;
    test_cfg cfg;
    orch_config_errors errs = {0};
    setenv("ORCH_TEST_PW", "s3cret value", 1);
    assert_int_equal(load("{\"cluster\": \"c\", \"password\": \"env:ORCH_TEST_PW\"}", &cfg, &errs),
                     ORCH_OK);
    assert_string_equal(cfg.password, "s3cret value");
    orch_config_fini(&test_table, &cfg);

    setenv("ORCH_TEST_PW", "", 1);
    assert_int_equal(load("{\"cluster\": \"c\",\n\"password\": \"env:ORCH_TEST_PW\"}", &cfg, &errs),
                     ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), 1);
    const orch_config_error *e = orch_config_errors_get(&errs, 0);
    assert_int_equal(e->line, 2);
    assert_non_null(strstr(e->message, "environment variable ORCH_TEST_PW is empty"));
    unsetenv("ORCH_TEST_PW");
    orch_config_errors_fini(&errs);
}

static void test_secret_from_file(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof(path), "secret");
    static const struct {
        const char *content;
        size_t len;
        const char *want; /* NULL: an error containing `fragment` */
        const char *fragment;
    } cases[] = {
        {"s3cret\n", 7, "s3cret", NULL},   {"s3cret", 6, "s3cret", NULL},
        {"s3cret\r\n", 8, "s3cret", NULL}, {"two\nlines\n\n", 11, "two\nlines\n", NULL},
        {" spaced ", 8, " spaced ", NULL}, {"", 0, NULL, "is empty"},
        {"\n", 1, NULL, "is empty"},       {"a\0b", 3, NULL, "holds a NUL byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].content, cases[i].len, 0600);
        char text[256];
        snprintf(text, sizeof(text), "{\"cluster\": \"c\", \"password\": \"file:%s\"}", path);
        test_cfg cfg;
        orch_config_errors errs = {0};
        orch_err err = load(text, &cfg, &errs);
        if (cases[i].want != NULL) {
            assert_int_equal(err, ORCH_OK);
            assert_string_equal(cfg.password, cases[i].want);
            orch_config_fini(&test_table, &cfg);
        } else {
            assert_int_equal(err, ORCH_ERR_CONFIG);
            const char *msg = orch_config_errors_get(&errs, 0)->message;
            if (strstr(msg, cases[i].fragment) == NULL || strstr(msg, path) == NULL)
                fail_msg("case %zu: got '%s'", i, msg);
        }
        orch_config_errors_fini(&errs);
    }

    /* too large */
    size_t big = ORCH_CONFIG_SECRET_MAX + 1;
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, 'x', big);
    write_file(path, data, big, 0600);
    free(data);
    char text[256];
    snprintf(text, sizeof(text), "{\"cluster\": \"c\", \"password\": \"file:%s\"}", path);
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load(text, &cfg, &errs), ORCH_ERR_CONFIG);
    assert_non_null(strstr(orch_config_errors_get(&errs, 0)->message, "larger than"));
    orch_config_errors_fini(&errs);

    /* unreadable (root reads anything, so only checked as another user) */
    if (geteuid() != 0) {
        write_file(path, "pw", 2, 0000);
        assert_int_equal(load(text, &cfg, &errs), ORCH_ERR_CONFIG);
        assert_non_null(strstr(orch_config_errors_get(&errs, 0)->message, "Permission denied"));
        orch_config_errors_fini(&errs);
    }
    unlink(path);
}

static void test_inline_secret_warning(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof(path), "inline.json");
    static const char text[] = "{\n  \"cluster\": \"c\",\n  \"password\": \"hunter2\"\n}\n";
    test_cfg cfg;
    orch_config_errors errs = {0};

    write_file(path, text, strlen(text), 0640);
    assert_int_equal(orch_config_load_file(&test_table, &cfg, path, &errs), ORCH_OK);
    assert_string_equal(cfg.password, "hunter2");
    orch_config_fini(&test_table, &cfg);
    assert_int_equal(orch_config_errors_count(&errs), 0);
    assert_int_equal(orch_config_errors_len(&errs), 1);
    const orch_config_error *e = orch_config_errors_get(&errs, 0);
    assert_true(e->warning);
    assert_int_equal(e->line, 3);
    assert_string_equal(e->key, "password");
    assert_non_null(strstr(e->text, ":3: key 'password': warning: secret given inline"));
    assert_non_null(strstr(e->text, "(mode 0640)"));
    assert_null(strstr(e->text, "hunter2"));
    orch_config_errors_fini(&errs);

    /* private file: no warning */
    write_file(path, text, strlen(text), 0600);
    assert_int_equal(orch_config_load_file(&test_table, &cfg, path, &errs), ORCH_OK);
    orch_config_fini(&test_table, &cfg);
    assert_int_equal(orch_config_errors_len(&errs), 0);

    /* a reference in a readable file: no warning */
    static const char ref[] = "{\"cluster\": \"c\", \"password\": \"env:HOME\"}";
    write_file(path, ref, strlen(ref), 0644);
    assert_int_equal(orch_config_load_file(&test_table, &cfg, path, &errs), ORCH_OK);
    orch_config_fini(&test_table, &cfg);
    assert_int_equal(orch_config_errors_len(&errs), 0);

    /* a warning does not hide errors, and errors still fail the load */
    static const char both[] = "{\"cluster\": \"c\", \"password\": \"pw\",\n\"port\": 0}";
    write_file(path, both, strlen(both), 0644);
    assert_int_equal(orch_config_load_file(&test_table, &cfg, path, &errs), ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), 1);
    assert_int_equal(orch_config_errors_len(&errs), 2);
    assert_true(orch_config_errors_get(&errs, 0)->warning);
    assert_false(orch_config_errors_get(&errs, 1)->warning);
    orch_config_errors_fini(&errs);
    unlink(path);
}

static void test_reload(void **state)
{
    (void)state;
    static const char old_text[] = "{\"cluster\": \"c\", \"probe_interval_ms\": 500,"
                                   " \"log_level\": \"info\", \"tags\": [\"a\"],"
                                   " \"password\": \"old\", \"port\": 3306, \"name\": \"n\","
                                   " \"peers\": [\"p1\", \"p2\"]}";
    static const char new_text[] = "{\"cluster\": \"d\", \"probe_interval_ms\": 800,"
                                   " \"log_level\": \"debug\", \"tags\": [\"a\", \"b\"],"
                                   " \"password\": \"new\", \"port\": 3307, \"name\": \"n\","
                                   " \"peers\": [\"p1\", \"p3\"]}";
    test_cfg cur, fresh;
    orch_config_errors errs = {0};
    assert_int_equal(load(old_text, &cur, &errs), ORCH_OK);
    assert_int_equal(load(new_text, &fresh, &errs), ORCH_OK);

    orch_config_changes ch;
    assert_int_equal(orch_config_reload(&test_table, &cur, &fresh, &ch), ORCH_OK);
    /* in table order */
    static const char *const want_reloaded[] = {"probe_interval_ms", "log_level", "tags",
                                                "password"};
    static const char *const want_restart[] = {"peers", "cluster", "port"};
    assert_int_equal(ch.nreloaded, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(ch.reloaded[i], want_reloaded[i]);
    assert_int_equal(ch.nrestart, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(ch.restart[i], want_restart[i]);
    orch_config_changes_fini(&ch);
    orch_config_changes_fini(&ch); /* twice is harmless */

    /* reloadable fields took the new values; the others kept theirs */
    assert_int_equal(cur.probe_interval_ms, 800);
    assert_int_equal(cur.log_level, 0);
    assert_int_equal(cur.tags.n, 2);
    assert_string_equal(cur.tags.v[1], "b");
    assert_string_equal(cur.password, "new");
    assert_string_equal(cur.cluster, "c");
    assert_int_equal(cur.port, 3306);
    assert_string_equal(cur.peers.v[1], "p2");
    /* fresh holds the old values, to be freed */
    assert_string_equal(fresh.password, "old");
    orch_config_fini(&test_table, &fresh);

    /* reloading the same thing again changes nothing */
    assert_int_equal(load(new_text, &fresh, &errs), ORCH_OK);
    assert_int_equal(orch_config_reload(&test_table, &cur, &fresh, &ch), ORCH_OK);
    assert_int_equal(ch.nreloaded, 0);
    assert_int_equal(ch.nrestart, 3);
    orch_config_changes_fini(&ch);
    orch_config_fini(&test_table, &fresh);

    /* NULL against a value is a change */
    assert_int_equal(load("{\"cluster\": \"c\", \"probe_interval_ms\": 800,"
                          " \"log_level\": \"debug\", \"tags\": [\"a\", \"b\"],"
                          " \"password\": null, \"port\": 3306, \"name\": \"n\","
                          " \"peers\": [\"p1\", \"p2\"]}",
                          &fresh, &errs),
                     ORCH_OK);
    assert_int_equal(orch_config_reload(&test_table, &cur, &fresh, &ch), ORCH_OK);
    assert_int_equal(ch.nreloaded, 1);
    assert_string_equal(ch.reloaded[0], "password");
    assert_int_equal(ch.nrestart, 0);
    assert_null(cur.password);
    orch_config_changes_fini(&ch);
    orch_config_fini(&test_table, &fresh);
    orch_config_fini(&test_table, &cur);
    assert_int_equal(orch_config_errors_len(&errs), 0);
}

/* Errors from several loads accumulate in one collection. */
static void test_errors_accumulate(void **state)
{
    (void)state;
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(load("{\"cluster\": \"c\", \"port\": 0}", &cfg, &errs), ORCH_ERR_CONFIG);
    assert_int_equal(load("{\"port\": 1}", &cfg, &errs), ORCH_ERR_CONFIG);
    assert_int_equal(orch_config_errors_count(&errs), 2);
    assert_null(orch_config_errors_get(&errs, 2));
    orch_config_errors_fini(&errs);
    assert_int_equal(orch_config_errors_count(&errs), 0);
    orch_config_errors_fini(&errs);
    orch_config_errors_fini(NULL);
}

/* Text that is not NUL-terminated, and a NUL inside it. */
static void test_load_string_length(void **state)
{
    (void)state;
    static const char text[] = "{\"cluster\": \"c\"}GARBAGE";
    test_cfg cfg;
    orch_config_errors errs = {0};
    assert_int_equal(orch_config_load_string(&test_table, &cfg, text,
                                             strlen("{\"cluster\": \"c\"}"), "s", &errs),
                     ORCH_OK);
    orch_config_fini(&test_table, &cfg);
    static const char nul[] = "{\"cluster\": \"c\"}\0";
    assert_int_equal(orch_config_load_string(&test_table, &cfg, nul, sizeof(nul) - 1, "s", &errs),
                     ORCH_ERR_CONFIG);
    assert_non_null(strstr(orch_config_errors_get(&errs, 0)->text, "JSON syntax error"));
    orch_config_errors_fini(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_check),
        cmocka_unit_test(test_set_defaults),
        cmocka_unit_test(test_load_applies_defaults),
        cmocka_unit_test(test_load_every_type),
        cmocka_unit_test(test_null_means_unset_for_strings),
        cmocka_unit_test(test_each_error_kind),
        cmocka_unit_test(test_several_errors_in_file_order),
        cmocka_unit_test(test_load_file_fixture),
        cmocka_unit_test(test_file_not_found),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_long_key_is_cut_in_messages),
        cmocka_unit_test(test_too_many_errors),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_print_sample),
        cmocka_unit_test(test_print_help),
        cmocka_unit_test(test_secret_from_env),
        cmocka_unit_test(test_secret_from_file),
        cmocka_unit_test(test_inline_secret_warning),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_errors_accumulate),
        cmocka_unit_test(test_load_string_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
