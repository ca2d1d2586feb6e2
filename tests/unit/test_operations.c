/*
 * Unit tests for operations.c's pure rule, operations_can_replicate_from:
 * a table of replica/target pairs (binary logs, versions, flavors, GTID modes,
 * cycles, the instance itself, stale and down agents) and the refusal each
 * must give, in words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "operations.h"

#include <stdio.h>
#include <string.h>

#define ARRAY(a) (sizeof(a) / sizeof((a)[0]))

/* Flags of one side. */
enum {
    NOBIN = 1 << 0,   /* log_bin off */
    NOLSU = 1 << 1,   /* log_slave_updates off */
    REPL = 1 << 2,    /* replicates from someone */
    STALE = 1 << 3,   /* agent stale */
    DOWN = 1 << 4,    /* server not answering */
    GTIDOFF = 1 << 5, /* MySQL gtid_mode OFF */
};

typedef struct row {
    const char *what;
    const char *rname, *rversion; /* "10.11.6-MariaDB", "8.0.36" */
    int rflags;
    const char *tname, *tversion;
    int tflags;
    const char *ancestors; /* target's masters, comma-separated, nearest first */
    const char *refusal;   /* NULL: allowed; else a fragment of the reason */
} row;

static const row rows[] = {
    {"same version, binlogs", "db4:3306", "10.11.6-MariaDB", REPL, "db3:3306", "10.11.6-MariaDB",
     REPL, "db1:3306", NULL},
    {"top master without log_slave_updates serves", "db4:3306", "10.11.6-MariaDB", REPL, "db1:3306",
     "10.11.6-MariaDB", NOLSU, "", NULL},
    {"no binary log", "127.0.0.1:23304", "10.11.6-MariaDB", REPL, "127.0.0.1:23303",
     "10.11.6-MariaDB", REPL | NOBIN, "127.0.0.1:23301",
     "127.0.0.1:23304 cannot replicate from 127.0.0.1:23303: it has no binary log"},
    {"replica without log_slave_updates", "db4:3306", "10.11.6-MariaDB", REPL, "db3:3306",
     "10.11.6-MariaDB", REPL | NOLSU, "db1:3306", "log_slave_updates is off"},
    {"older series target", "db4:3306", "10.11.6-MariaDB", REPL, "db3:3306", "10.6.16-MariaDB",
     REPL, "db1:3306", NULL},
    {"newer series target", "db4:3306", "10.6.16-MariaDB", REPL, "db3:3306", "10.11.6-MariaDB",
     REPL, "db1:3306", "its version 10.11 is newer than the replica's 10.6"},
    {"newer patch, same series", "db4:3306", "8.0.30", REPL, "db3:3306", "8.0.36", REPL, "db1:3306",
     NULL},
    {"8.4 above 8.0", "db4:3306", "8.0.36", REPL, "db3:3306", "8.4.0", REPL, "db1:3306",
     "newer than the replica's 8.0"},
    {"flavors differ", "db4:3306", "8.0.36", REPL, "db3:3306", "10.11.6-MariaDB", REPL, "db1:3306",
     "different flavors (mysql, mariadb)"},
    {"mysql gtid off", "db4:3306", "8.0.36", REPL, "db3:3306", "8.0.36", REPL | GTIDOFF, "db1:3306",
     "GTID modes differ or are off"},
    {"itself", "db4:3306", "10.11.6-MariaDB", REPL, "db4:3306", "10.11.6-MariaDB", REPL, "db1:3306",
     "it is the instance itself"},
    {"child: a cycle", "db2:3306", "10.11.6-MariaDB", REPL, "db3:3306", "10.11.6-MariaDB", REPL,
     "db2:3306,db1:3306", "through 1 level(s)) from db2:3306 itself: a cycle"},
    {"grandchild: a cycle", "db1:3306", "10.11.6-MariaDB", 0, "db4:3306", "10.11.6-MariaDB", REPL,
     "db3:3306,db1:3306", "through 2 level(s)) from db1:3306 itself: a cycle"},
    {"stale target", "db4:3306", "10.11.6-MariaDB", REPL, "db3:3306", "10.11.6-MariaDB",
     REPL | STALE, "db1:3306", "its agent is stale"},
    {"stale replica", "db4:3306", "10.11.6-MariaDB", REPL | STALE, "db3:3306", "10.11.6-MariaDB",
     REPL, "db1:3306", "the replica's agent is stale"},
    {"target down", "db4:3306", "10.11.6-MariaDB", REPL, "db3:3306", "10.11.6-MariaDB", REPL | DOWN,
     "db1:3306", "its server is not answering"},
    {"unknown version", "db4:3306", "", REPL, "db3:3306", "10.11.6-MariaDB", REPL, "db1:3306",
     "a version is unknown"},
};

static void node(operations_node *n, const char *name, const char *version, int flags)
{
    char msg[128];
    *n = (operations_node){.name = name,
                           .log_bin = !(flags & NOBIN),
                           .log_slave_updates = !(flags & NOLSU),
                           .gtid_mode = (flags & GTIDOFF) ? "OFF" : "ON",
                           .has_master = (flags & REPL) != 0,
                           .fresh = !(flags & STALE),
                           .up = !(flags & DOWN)};
    if (version[0] != '\0')
        assert_int_equal(orch_version_parse(version, NULL, &n->version, msg, sizeof(msg)), ORCH_OK);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY(rows); i++) {
        const row *r = &rows[i];
        operations_node a, b;
        node(&a, r->rname, r->rversion, r->rflags);
        node(&b, r->tname, r->tversion, r->tflags);
        char list[256], why[512] = "";
        const char *anc[8];
        size_t n = 0;
        snprintf(list, sizeof(list), "%s", r->ancestors);
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t != NULL && n < ARRAY(anc);
             t = strtok_r(NULL, ",", &save))
            anc[n++] = t;
        bool ok = operations_can_replicate_from(&a, &b, anc, n, why, sizeof(why));
        if (ok != (r->refusal == NULL) || (r->refusal != NULL && strstr(why, r->refusal) == NULL))
            fail_msg("row '%s': got %s (%s), expected %s", r->what, ok ? "allowed" : "refused", why,
                     r->refusal ? r->refusal : "allowed");
        if (!ok)
            assert_non_null(strstr(why, " cannot replicate from "));
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(operation_kind_name(OPERATION_GRACEFUL_TAKEOVER),
                        "graceful-master-takeover");
    assert_string_equal(operation_kind_name(OPERATION_MOVE_UP), "move-up");
    assert_string_equal(operation_kind_name(OPERATION__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
