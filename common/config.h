/*
 * config.h: configuration files driven by one descriptor table.
 *
 * orch-agent and orch-coordinator each describe their configuration as one static
 * array of orch_config_field (name, type, place in the daemon's struct, default,
 * bounds, flags, help). Everything else is derived from that table: defaults,
 * parsing and validation of the JSON file, --print-config, the sample files in
 * packaging/, and what a SIGHUP may change.
 *
 * A file is a flat JSON object, one key per field:
 *
 *   { "probe_interval_ms": 500, "log_level": "info", "peers": ["a:7000", "b:7000"],
 *     "mysql_password": "file:/etc/orch/mysql.pw" }
 *
 * Every error in a file is collected (up to ORCH_CONFIG_MAX_ERRORS) and reported
 * with its key and line, one per line:
 *
 *   /etc/orch/agent.json:12: key 'probe_interval_ms': 50 is below the minimum 100
 *
 * so the daemon can print them all and exit with ORCH_EXIT_CONFIG.
 *
 * Nothing here keeps global state; every function is reentrant. A config struct
 * belongs to whoever loaded it: the daemons load at startup and reload on their
 * loop thread, and other threads see it only through the daemon's own locking.
 */
#ifndef ORCH_CONFIG_H
#define ORCH_CONFIG_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Field types and what each one is stored as in the caller's struct:
 *
 *   BOOL     bool          JSON true/false
 *   INT      int64_t       JSON integer, within [min, max]
 *   STRING   char *        JSON string (malloc'd, owned by the struct), or null
 *   ENUM     int           JSON string naming one of `values`; stored as its index
 *   STRLIST  orch_strlist  JSON array of strings
 *   SECRET   char *        JSON string: "env:NAME" (the environment variable),
 *                          "file:/path" (the file's content minus one trailing
 *                          newline), anything else is the secret itself; or null.
 *                          Never printed.
 *
 * JSON null is accepted for STRING and SECRET fields only and means "no value"
 * (NULL), so that --print-config output and sample files load back; a REQUIRED
 * field may not be null. For every other type null is a type error.
 */
typedef enum orch_config_type {
    ORCH_CONFIG_BOOL = 1,
    ORCH_CONFIG_INT,
    ORCH_CONFIG_STRING,
    ORCH_CONFIG_ENUM,
    ORCH_CONFIG_STRLIST,
    ORCH_CONFIG_SECRET,
} orch_config_type;

/* Field flags. */
enum {
    ORCH_CONFIG_REQUIRED = 1u << 0,   /* the file must set it */
    ORCH_CONFIG_RELOADABLE = 1u << 1, /* a reload (SIGHUP) may change it in place */
    ORCH_CONFIG_NONEMPTY = 1u << 2,   /* STRING, SECRET: not ""; STRLIST: at least one
                                         element and no "" element */
};

/* Longest key name a table may use. */
#define ORCH_CONFIG_NAME_MAX 64
/* Errors stored per errors collection; later ones are only counted. */
#define ORCH_CONFIG_MAX_ERRORS 100
/* Largest configuration file and largest secret file read. */
#define ORCH_CONFIG_FILE_MAX   (1024 * 1024)
#define ORCH_CONFIG_SECRET_MAX (64 * 1024)

/*
 * Storage of a STRLIST field. Empty: v == NULL, n == 0. Otherwise v holds n
 * malloc'd strings followed by a NULL. Owned by the struct that holds it.
 */
typedef struct orch_strlist {
    char **v;
    size_t n;
} orch_strlist;

/*
 * One configuration key. Tables are static const arrays written with designated
 * initializers:
 *
 *   {.name = "probe_interval_ms", .type = ORCH_CONFIG_INT,
 *    .offset = offsetof(struct agent_config, probe_interval_ms),
 *    .def.i = 1000, .min = 100, .max = 60000, .flags = ORCH_CONFIG_RELOADABLE,
 *    .help = "How often the agent probes MySQL, in milliseconds."},
 *
 * The member at `offset` must have the type listed for `type` above.
 */
typedef struct orch_config_field {
    const char *name; /* the JSON key: [a-z0-9_], at most ORCH_CONFIG_NAME_MAX */
    orch_config_type type;
    size_t offset; /* offsetof() the member in the caller's struct */
    unsigned flags;
    union {
        bool b;                  /* BOOL */
        int64_t i;               /* INT */
        const char *s;           /* STRING, SECRET (taken literally), ENUM (a name;
                                    NULL = the first value); may be NULL */
        const char *const *list; /* STRLIST: NULL-terminated; NULL = empty */
    } def;
    int64_t min, max;          /* INT: inclusive bounds; both 0 = unbounded */
    const char *const *values; /* ENUM: allowed names, NULL-terminated */
    const char *help;          /* one line for operators */
} orch_config_field;

typedef struct orch_config_table {
    const orch_config_field *fields;
    size_t nfields;
} orch_config_table;

/* Builds an orch_config_table from a static array of fields. */
#define ORCH_CONFIG_TABLE(fields)                                                                  \
    {                                                                                              \
        (fields), sizeof(fields) / sizeof((fields)[0])                                             \
    }

/*
 * One problem found while loading. Strings are owned by the collection.
 */
typedef struct orch_config_error {
    char *key;     /* the key it is about (as written, made printable); NULL if none */
    int line;      /* 1-based line in the file; 0 when no line applies */
    bool warning;  /* a warning: reported, but the load still succeeds */
    char *message; /* what is wrong, without source, line or key */
    char *text;    /* the whole report line: "source:line: key 'k': message" */
} orch_config_error;

/*
 * The problems found by one or more loads, in the order found (file order, then
 * missing required keys). Zero-initialised is empty and ready; release with
 * orch_config_errors_fini(). Read it through the functions below.
 */
typedef struct orch_config_errors {
    orch_config_error *v;
    size_t n, cap;    /* entries stored in v (errors and warnings) */
    size_t nerrors;   /* errors found, including any not stored */
    size_t nwarnings; /* warnings found, including any not stored */
    size_t dropped;   /* entries not stored (past ORCH_CONFIG_MAX_ERRORS, or no memory) */
} orch_config_errors;

/*
 * Adds an error found by a daemon's own checks across fields (after a load that
 * succeeded field by field), reported like the table's own: "source: key 'k':
 * message". key may be NULL.
 */
void orch_config_errors_add(orch_config_errors *errs, const char *source, const char *key,
                            const char *fmt, ...) ORCH_PRINTF(4, 5);

/* Frees every entry and empties errs (ready for reuse). Safe on NULL. */
void orch_config_errors_fini(orch_config_errors *errs);

/* Number of errors (not warnings) found; nonzero means the load failed. */
size_t orch_config_errors_count(const orch_config_errors *errs);

/* Number of stored entries, errors and warnings; valid indexes for _get(). */
size_t orch_config_errors_len(const orch_config_errors *errs);

/* Entry i (borrowed, valid until errs changes), or NULL when i is out of range. */
const orch_config_error *orch_config_errors_get(const orch_config_errors *errs, size_t i);

/*
 * Writes every stored entry's text, one per line, and a last line counting any
 * entries not stored. Warnings read "... key 'k': warning: ...".
 */
void orch_config_errors_write(const orch_config_errors *errs, FILE *fp);

/* The same through orch_log: errors at ERROR, warnings at WARN, tag ORCH-CONFIG. */
void orch_config_errors_log(const orch_config_errors *errs);

/*
 * Checks a table for programming mistakes: empty, duplicate or overlong names,
 * unknown types, bad bounds or defaults, an ENUM without values. The daemons call
 * it from a unit test; the loaders assume a valid table.
 */
orch_err orch_config_table_check(const orch_config_table *table, char *msg,
                                 size_t msglen) ORCH_MUST_CHECK;

/*
 * Writes every field's default into cfg. The described members are overwritten
 * without being freed: cfg must own nothing (fresh, zeroed, or after
 * orch_config_fini()). On failure (ORCH_ERR_NOMEM; ORCH_ERR_INVAL for an ENUM
 * default that is not one of its values) the members are left zero and owning
 * nothing, and msg says why.
 */
orch_err orch_config_set_defaults(const orch_config_table *table, void *cfg, char *msg,
                                  size_t msglen) ORCH_MUST_CHECK;

/*
 * Loads the JSON file at path: defaults first, then the file's keys over them.
 * Secret references ("env:", "file:") are resolved now. Blocks on file I/O.
 *
 * On success returns ORCH_OK and fills every described member of cfg, which must
 * own nothing beforehand (see orch_config_set_defaults); warnings (an inline
 * secret in a file that group or others can read) may have been added to errs.
 *
 * On failure cfg is untouched and every problem found has been appended to errs:
 * returns ORCH_ERR_CONFIG (bad content, or the file cannot be read) or
 * ORCH_ERR_NOMEM. The caller prints errs and exits with ORCH_EXIT_CONFIG.
 *
 * Line numbers come from scanning the raw text for the object's top-level keys;
 * only the top level is scanned, as files are flat. An error about a value
 * carries the line of its key. When a key is given twice the last value counts:
 * it is the one validated, and each later occurrence is reported as a duplicate.
 */
orch_err orch_config_load_file(const orch_config_table *table, void *cfg, const char *path,
                               orch_config_errors *errs) ORCH_MUST_CHECK;

/*
 * The same from text (len bytes; need not be NUL-terminated), named `source` in
 * messages. There is no file mode, so no inline-secret warning. For tests, fuzzing
 * and configuration that does not come from a file.
 */
orch_err orch_config_load_string(const orch_config_table *table, void *cfg, const char *text,
                                 size_t len, const char *source,
                                 orch_config_errors *errs) ORCH_MUST_CHECK;

/* Frees what the described members own and zeroes them. Safe on NULL, and twice. */
void orch_config_fini(const orch_config_table *table, void *cfg);

/*
 * Writes cfg as one JSON object, keys in table order (--print-config). Set
 * secrets print as "<redacted>", unset ones as null. ORCH_ERR_NOMEM or
 * ORCH_ERR_IO (the write failed) on failure.
 */
orch_err orch_config_print(const orch_config_table *table, const void *cfg,
                           FILE *fp) ORCH_MUST_CHECK;

/*
 * Writes a sample file: every key with its default, in table order (secrets show
 * their default, which is not secret). Required keys without a default print as
 * null, which the loader rejects until an operator fills them in.
 */
orch_err orch_config_print_sample(const orch_config_table *table, FILE *fp) ORCH_MUST_CHECK;

/* Writes a plain-text reference: key, type, bounds or values, default, flags, help. */
orch_err orch_config_print_help(const orch_config_table *table, FILE *fp) ORCH_MUST_CHECK;

/*
 * What orch_config_reload() did. Names are borrowed from the table. Release with
 * orch_config_changes_fini() (safe on NULL, and on a zeroed struct).
 */
typedef struct orch_config_changes {
    const char **reloaded; /* changed and reloadable: now in effect */
    size_t nreloaded;
    const char **restart; /* changed but not reloadable: need a restart */
    size_t nrestart;
} orch_config_changes;

void orch_config_changes_fini(orch_config_changes *ch);

/*
 * Applies a freshly loaded configuration (SIGHUP). For each field whose value
 * differs between cur and fresh: a RELOADABLE one is swapped, so cur gets the new
 * value and fresh keeps the old one; any other is listed in ch->restart and cur
 * keeps its value. The caller then frees fresh with orch_config_fini(). Values are
 * compared, never printed, so secrets stay secret.
 *
 * ch is overwritten. ORCH_ERR_NOMEM leaves cur and fresh untouched and ch empty.
 * Runs on the thread that owns cur.
 */
orch_err orch_config_reload(const orch_config_table *table, void *cur, void *fresh,
                            orch_config_changes *ch) ORCH_MUST_CHECK;

#endif
