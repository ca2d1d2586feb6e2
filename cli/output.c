/*
 * output.c: orchctl's renderers (see output.h).
 *
 * The shapes are orchestrator's: instances carry Key{Hostname,Port} and
 * MasterKey, envelopes {"Code","Message","Details"}. A renderer that meets
 * something else says so (exit 1) rather than print half an answer.
 */
#include "output.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BOLD   "\033[1m"
#define C_DIM    "\033[2m"
#define C_RESET  "\033[0m"

/* ---- helpers ------------------------------------------------------------------- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

static const char *str_of(const json_t *o, const char *k)
{
    return nz(json_string_value(json_object_get(o, k)));
}

static bool bool_of(const json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

/* "host:port" ("[v6]:port") of a {Hostname, Port} object; false when empty or malformed. */
static bool key_text(const json_t *key, char *buf, size_t buflen)
{
    const char *h = json_string_value(json_object_get(key, "Hostname"));
    json_t *p = json_object_get(key, "Port");
    if (h == NULL || *h == '\0' || !json_is_integer(p))
        return false;
    bool v6 = strchr(h, ':') != NULL;
    snprintf(buf, buflen, "%s%s%s:%" JSON_INTEGER_FORMAT, v6 ? "[" : "", h, v6 ? "]" : "",
             json_integer_value(p));
    return true;
}

/* The key of an instance ({"Key": {...}}) or of a bare key object. */
static bool instance_key_text(const json_t *o, char *buf, size_t buflen)
{
    const json_t *k = json_object_get(o, "Key");
    return key_text(k ? k : o, buf, buflen);
}

static int shape(char *msg, size_t msglen, const char *what)
{
    snprintf(msg, msglen, "unexpected answer from the API (expected %s)", what);
    return ORCH_EXIT_FAILURE;
}

/* orchestrator wraps some answers in the envelope: its Details, else the value itself. */
static const json_t *details_of(const json_t *root)
{
    if (json_is_object(root) && json_object_get(root, "Code") != NULL)
        return json_object_get(root, "Details");
    return root;
}

/* ---- topology text --------------------------------------------------------------- */

typedef enum health { H_OK, H_WARN, H_BAD } health;

static health token_health(const char *t, size_t n)
{
    static const char *const badv[] = {"invalid", "unchecked", "nonreplicating", "unknown",
                                       "null",    "fenced",    "self-fenced"};
    static const char *const warnv[] = {"lag", "downtimed", "maintenance"};
    static const char *const badp[] = {"agent:", "master:"};
    for (size_t k = 0; k < sizeof(badv) / sizeof(badv[0]); k++)
        if (strlen(badv[k]) == n && memcmp(t, badv[k], n) == 0)
            return H_BAD;
    for (size_t k = 0; k < sizeof(badp) / sizeof(badp[0]); k++)
        if (n > strlen(badp[k]) && memcmp(t, badp[k], strlen(badp[k])) == 0)
            return H_BAD;
    for (size_t k = 0; k < sizeof(warnv) / sizeof(warnv[0]); k++)
        if (strlen(warnv[k]) == n && memcmp(t, warnv[k], n) == 0)
            return H_WARN;
    if (n > 9 && memcmp(t, "problems:", 9) == 0)
        return H_WARN;
    return H_OK;
}

static const char *health_color(health h)
{
    return h == H_BAD ? C_RED : h == H_WARN ? C_YELLOW : C_GREEN;
}

/* Prints one topology line [s, e), coloured. */
static void topo_line(const char *s, const char *e, FILE *out)
{
    const char *lb = memchr(s, '[', (size_t)(e - s));
    const char *rb = e > s && e[-1] == ']' ? e - 1 : NULL;
    if (lb == NULL || rb == NULL || rb < lb) {
        fwrite(s, 1, (size_t)(e - s), out);
        return;
    }
    /* the worst token decides the colour of the key */
    health worst = H_OK;
    for (const char *t = lb + 1; t < rb;) {
        const char *c = memchr(t, ',', (size_t)(rb - t));
        const char *te = c ? c : rb;
        health h = token_health(t, (size_t)(te - t));
        if (h > worst)
            worst = h;
        t = te + 1;
    }
    const char *p = s;
    while (p < lb && *p == ' ')
        p++;
    fwrite(s, 1, (size_t)(p - s), out);
    if (p + 1 < lb && (p[0] == '+' || p[0] == '-') && p[1] == ' ') {
        if (p[0] == '-')
            fputs(C_RED "- " C_RESET, out);
        else
            fputs("+ ", out);
        p += 2;
    }
    const char *ke = p;
    while (ke < lb && *ke != ' ')
        ke++;
    fprintf(out, "%s%s%.*s%s", C_BOLD, health_color(worst), (int)(ke - p), p, C_RESET);
    fwrite(ke, 1, (size_t)(lb - ke), out);
    fputc('[', out);
    for (const char *t = lb + 1; t < rb;) {
        const char *c = memchr(t, ',', (size_t)(rb - t));
        const char *te = c ? c : rb;
        size_t n = (size_t)(te - t);
        health h = token_health(t, n);
        bool ok = n == 2 && memcmp(t, "ok", 2) == 0;
        if (h != H_OK || ok)
            fprintf(out, "%s%.*s%s", health_color(h), (int)n, t, C_RESET);
        else
            fwrite(t, 1, n, out);
        if (c != NULL)
            fputc(',', out);
        t = te + 1;
    }
    fputc(']', out);
}

void ctl_out_topology_text(const char *text, bool color, FILE *out)
{
    size_t len = strlen(text);
    if (!color) {
        fputs(text, out);
        if (len > 0 && text[len - 1] != '\n')
            fputc('\n', out);
        return;
    }
    const char *s = text;
    while (*s != '\0') {
        const char *nl = strchr(s, '\n');
        const char *e = nl ? nl : s + strlen(s);
        topo_line(s, e, out);
        fputc('\n', out);
        s = nl ? nl + 1 : e;
    }
}

/* ---- tabulated topology ------------------------------------------------------------ */

enum {
    COL_INSTANCE,
    COL_AGENT,
    COL_LAG,
    COL_VERSION,
    COL_MODE,
    COL_BINLOG,
    COL_GTID,
    COL_DOWNTIME,
    COL_PROBLEMS,
    NCOLS
};

static const char *const col_names[NCOLS] = {"INSTANCE", "AGENT", "LAG",      "VERSION", "MODE",
                                             "BINLOG",   "GTID",  "DOWNTIME", "PROBLEMS"};

typedef struct tab_row {
    char *cell[NCOLS];
    health h[NCOLS];
} tab_row;

typedef struct tab {
    const json_t *arr;
    size_t n;
    char (*keys)[300];
    bool *visited;
    tab_row *rows;
    size_t nrows;
    bool oom;
} tab;

static size_t find_key(const tab *t, const char *key)
{
    for (size_t k = 0; k < t->n; k++)
        if (strcmp(t->keys[k], key) == 0)
            return k;
    return (size_t)-1;
}

static char *dupf(tab *t, const char *fmt, ...) ORCH_PRINTF(2, 3);
static char *dupf(tab *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
        t->oom = true;
    }
    va_end(ap);
    return s;
}

static void tab_add(tab *t, size_t idx, int depth, bool orphan)
{
    const json_t *i = json_array_get(t->arr, idx);
    tab_row *r = &t->rows[t->nrows++];
    memset(r, 0, sizeof(*r));
    const json_t *orch = json_object_get(i, "Orch");
    bool replica =
        json_string_value(json_object_get(json_object_get(i, "MasterKey"), "Hostname")) != NULL &&
        *str_of(json_object_get(i, "MasterKey"), "Hostname") != '\0';
    bool running =
        bool_of(i, "ReplicationSQLThreadRuning") && bool_of(i, "ReplicationIOThreadRuning");
    bool fresh = bool_of(i, "IsLastCheckValid") && bool_of(i, "IsRecentlyChecked");

    const char *prefix = "";
    if (orphan)
        prefix = "? ";
    else if (depth > 0)
        prefix = replica && running && fresh ? "+ " : "- ";
    int indent = depth > 0 ? (depth - 1) * 2 : 0;
    if (indent > 64)
        indent = 64;
    r->cell[COL_INSTANCE] = dupf(t, "%*s%s%s%s", indent, "", prefix, t->keys[idx],
                                 bool_of(i, "IsCoMaster") ? " (co-master)" : "");
    if (depth > 0 && !(replica && running && fresh))
        r->h[COL_INSTANCE] = H_BAD;

    const char *state = str_of(orch, "AgentState");
    bool stale = bool_of(orch, "Stale");
    r->cell[COL_AGENT] = dupf(t, "%s%s", *state ? state : "?", stale ? ",stale" : "");
    r->h[COL_AGENT] = strcmp(state, "UP") == 0 && !stale ? H_OK : H_BAD;

    const json_t *lag = json_object_get(i, "SecondsBehindMaster");
    if (!replica)
        r->cell[COL_LAG] = dupf(t, "-");
    else if (json_is_true(json_object_get(lag, "Valid")))
        r->cell[COL_LAG] =
            dupf(t, "%" JSON_INTEGER_FORMAT "s", json_integer_value(json_object_get(lag, "Int64")));
    else
        r->cell[COL_LAG] = dupf(t, "null");
    if (replica && !running)
        r->h[COL_LAG] = H_BAD;

    r->cell[COL_VERSION] = dupf(t, "%s", *str_of(i, "Version") ? str_of(i, "Version") : "-");
    r->cell[COL_MODE] = dupf(t, "%s", bool_of(i, "ReadOnly") ? "ro" : "rw");
    if (bool_of(i, "LogBinEnabled"))
        r->cell[COL_BINLOG] = dupf(t, "%s%s", str_of(i, "Binlog_format"),
                                   bool_of(i, "LogSlaveUpdatesEnabled") ? ",>>" : "");
    else
        r->cell[COL_BINLOG] = dupf(t, "nobinlog");
    const char *gtid_mode = str_of(i, "GTIDMode");
    if (bool_of(i, "UsingMariaDBGTID") || bool_of(i, "UsingOracleGTID"))
        r->cell[COL_GTID] = dupf(t, "gtid");
    else if (replica)
        r->cell[COL_GTID] = dupf(t, "pos");
    else
        r->cell[COL_GTID] = dupf(t, "%s", *gtid_mode ? gtid_mode : "-");

    if (bool_of(i, "IsDowntimed")) {
        r->cell[COL_DOWNTIME] =
            dupf(t, "downtimed until %s (%s: %s)", str_of(i, "DowntimeEndTimestamp"),
                 str_of(i, "DowntimeOwner"), str_of(i, "DowntimeReason"));
        r->h[COL_DOWNTIME] = H_WARN;
    } else if (bool_of(orch, "InMaintenance")) {
        r->cell[COL_DOWNTIME] =
            dupf(t, "maintenance until %s (%s: %s)", str_of(orch, "MaintenanceEndTimestamp"),
                 str_of(orch, "MaintenanceOwner"), str_of(orch, "MaintenanceReason"));
        r->h[COL_DOWNTIME] = H_WARN;
    } else {
        r->cell[COL_DOWNTIME] = dupf(t, "-");
    }

    const json_t *probs = json_object_get(i, "Problems");
    size_t np = json_array_size(probs);
    if (np == 0) {
        r->cell[COL_PROBLEMS] = dupf(t, "-");
    } else {
        size_t need = 1;
        for (size_t k = 0; k < np; k++)
            need += strlen(nz(json_string_value(json_array_get(probs, k)))) + 1;
        char *s = malloc(need);
        if (s == NULL) {
            t->oom = true;
        } else {
            size_t used = 0;
            s[0] = '\0';
            for (size_t k = 0; k < np; k++)
                used += (size_t)snprintf(s + used, need - used, "%s%s", k > 0 ? "," : "",
                                         nz(json_string_value(json_array_get(probs, k))));
        }
        r->cell[COL_PROBLEMS] = s;
        r->h[COL_PROBLEMS] = H_BAD;
    }
}

/* Adds idx and, under it, its replicas in the order its "Replicas" lists them. */
static void tab_walk(tab *t, size_t idx, int depth)
{
    if (t->visited[idx] || depth > (int)t->n + 1)
        return;
    t->visited[idx] = true;
    tab_add(t, idx, depth, false);
    const json_t *reps = json_object_get(json_array_get(t->arr, idx), "Replicas");
    for (size_t k = 0; k < json_array_size(reps); k++) {
        char key[300];
        if (!key_text(json_array_get(reps, k), key, sizeof(key)))
            continue;
        size_t c = find_key(t, key);
        if (c == (size_t)-1 || bool_of(json_array_get(t->arr, c), "IsCoMaster"))
            continue;
        tab_walk(t, c, depth + 1);
    }
}

static int render_tabulated(const json_t *arr, const ctl_out_ctx *c, FILE *out, char *msg,
                            size_t msglen)
{
    if (!json_is_array(arr))
        return shape(msg, msglen, "a JSON array of instances");
    tab t = {.arr = arr, .n = json_array_size(arr)};
    size_t n = t.n ? t.n : 1;
    t.keys = calloc(n, sizeof(*t.keys));
    t.visited = calloc(n, sizeof(*t.visited));
    t.rows = calloc(n, sizeof(*t.rows));
    int rc = ORCH_EXIT_OK;
    if (t.keys == NULL || t.visited == NULL || t.rows == NULL) {
        snprintf(msg, msglen, "out of memory");
        rc = ORCH_EXIT_FAILURE;
        goto out;
    }
    for (size_t k = 0; k < t.n; k++)
        if (!instance_key_text(json_array_get(arr, k), t.keys[k], sizeof(t.keys[k]))) {
            rc = shape(msg, msglen, "instances with a Key");
            goto out;
        }
    /* roots: masters (no master in this cluster) and co-masters, in the API's order */
    for (size_t k = 0; k < t.n; k++) {
        const json_t *i = json_array_get(arr, k);
        char mk[300];
        bool has_master = key_text(json_object_get(i, "MasterKey"), mk, sizeof(mk)) &&
                          find_key(&t, mk) != (size_t)-1;
        if (!has_master || bool_of(i, "IsCoMaster"))
            tab_walk(&t, k, 0);
    }
    for (size_t k = 0; k < t.n; k++) /* in a cycle: shown, marked "?" */
        if (!t.visited[k]) {
            t.visited[k] = true;
            tab_add(&t, k, 0, true);
        }
    if (t.oom) {
        snprintf(msg, msglen, "out of memory");
        rc = ORCH_EXIT_FAILURE;
        goto out;
    }
    size_t w[NCOLS];
    for (int col = 0; col < NCOLS; col++) {
        w[col] = strlen(col_names[col]);
        for (size_t k = 0; k < t.nrows; k++)
            if (strlen(t.rows[k].cell[col]) > w[col])
                w[col] = strlen(t.rows[k].cell[col]);
    }
    for (int col = 0; col < NCOLS; col++)
        fprintf(out, "%s%-*s%s%s", c->color ? C_BOLD : "", col == NCOLS - 1 ? 0 : (int)w[col],
                col_names[col], c->color ? C_RESET : "", col == NCOLS - 1 ? "\n" : "  ");
    for (size_t k = 0; k < t.nrows; k++) {
        for (int col = 0; col < NCOLS; col++) {
            const char *v = t.rows[k].cell[col];
            bool last = col == NCOLS - 1;
            int pad = last ? 0 : (int)(w[col] - strlen(v));
            bool paint = c->color && (t.rows[k].h[col] != H_OK);
            fprintf(out, "%s%s%s%*s%s", paint ? health_color(t.rows[k].h[col]) : "", v,
                    paint ? C_RESET : "", pad, "", last ? "\n" : "  ");
        }
    }
out:
    for (size_t k = 0; t.rows != NULL && k < t.nrows; k++)
        for (int col = 0; col < NCOLS; col++)
            free(t.rows[k].cell[col]);
    free(t.rows);
    free(t.visited);
    free(t.keys);
    return rc;
}

/* ---- the rest --------------------------------------------------------------------- */

static int print_keys(const json_t *arr, bool broken_only, FILE *out, char *msg, size_t msglen)
{
    if (!json_is_array(arr))
        return shape(msg, msglen, "a JSON array of instances");
    size_t k;
    const json_t *i;
    json_array_foreach(arr, k, i)
    {
        if (broken_only) {
            bool stopped = !bool_of(i, "ReplicationSQLThreadRuning") ||
                           !bool_of(i, "ReplicationIOThreadRuning");
            bool error = *str_of(i, "LastSQLError") != '\0' || *str_of(i, "LastIOError") != '\0';
            if (!(stopped && error))
                continue;
        }
        char key[300];
        if (!instance_key_text(i, key, sizeof(key)))
            return shape(msg, msglen, "instances with a Key");
        fprintf(out, "%s\n", key);
    }
    return ORCH_EXIT_OK;
}

static int print_problems(const json_t *arr, FILE *out, char *msg, size_t msglen)
{
    if (!json_is_array(arr))
        return shape(msg, msglen, "a JSON array of instances");
    size_t k;
    const json_t *i;
    json_array_foreach(arr, k, i)
    {
        char key[300];
        if (!instance_key_text(i, key, sizeof(key)))
            return shape(msg, msglen, "instances with a Key");
        fprintf(out, "%s:", key);
        const json_t *probs = json_object_get(i, "Problems");
        for (size_t p = 0; p < json_array_size(probs); p++)
            fprintf(out, "%s%s", p ? "," : " ", nz(json_string_value(json_array_get(probs, p))));
        fputc('\n', out);
    }
    return ORCH_EXIT_OK;
}

static int print_analysis(const json_t *d, FILE *out, char *msg, size_t msglen)
{
    if (json_is_null(d))
        return ORCH_EXIT_OK;
    if (!json_is_array(d))
        return shape(msg, msglen, "a JSON array of analysis entries");
    size_t k;
    const json_t *a;
    json_array_foreach(d, k, a)
    {
        char key[300];
        if (!key_text(json_object_get(a, "AnalyzedInstanceKey"), key, sizeof(key)))
            snprintf(key, sizeof(key), "?");
        const char *what = str_of(a, "Analysis");
        const json_t *structure = json_object_get(a, "StructureAnalysis");
        if (strcmp(what, "NoProblem") == 0 && json_array_size(structure) > 0 &&
            json_is_string(json_array_get(structure, 0)))
            what = json_string_value(json_array_get(structure, 0));
        fprintf(out, "%s (cluster %s): %s\n", key,
                str_of(json_object_get(a, "ClusterDetails"), "ClusterName"), what);
    }
    return ORCH_EXIT_OK;
}

static int print_audit(const json_t *d, FILE *out, char *msg, size_t msglen)
{
    if (json_is_null(d))
        return ORCH_EXIT_OK;
    if (!json_is_array(d))
        return shape(msg, msglen, "a JSON array of recoveries");
    size_t k;
    const json_t *r;
    json_array_foreach(d, k, r)
    {
        const json_t *entry = json_object_get(r, "AnalysisEntry");
        char failed[300], successor[300];
        if (!key_text(json_object_get(entry, "AnalyzedInstanceKey"), failed, sizeof(failed)))
            snprintf(failed, sizeof(failed), "?");
        if (!key_text(json_object_get(r, "SuccessorKey"), successor, sizeof(successor)))
            snprintf(successor, sizeof(successor), "-");
        const json_t *id = json_object_get(r, "Id");
        fprintf(out, "%" JSON_INTEGER_FORMAT "  %s  %s  %s  %s -> %s  %s%s\n",
                json_integer_value(id),
                *str_of(r, "RecoveryStartTimestamp") ? str_of(r, "RecoveryStartTimestamp") : "-",
                *str_of(json_object_get(entry, "ClusterDetails"), "ClusterName")
                    ? str_of(json_object_get(entry, "ClusterDetails"), "ClusterName")
                    : "-",
                *str_of(entry, "Analysis") ? str_of(entry, "Analysis") : "-", failed, successor,
                bool_of(r, "IsSuccessful") ? "ok" : "failed",
                bool_of(r, "Acknowledged") ? " acked" : "");
    }
    return ORCH_EXIT_OK;
}

static int print_leader(const json_t *root, FILE *out, char *msg, size_t msglen)
{
    const json_t *d = details_of(root);
    if (!json_is_object(d))
        return shape(msg, msglen, "a health report");
    const json_t *active = json_object_get(d, "ActiveNode");
    const json_t *orch = json_object_get(d, "Orch");
    const char *name = str_of(active, "Hostname");
    const char *api = str_of(orch, "LeaderAPI");
    if (*api == '\0')
        api = str_of(active, "ExtraInfo");
    if (*name == '\0') {
        snprintf(msg, msglen, "no leader is known to coordinator %s (an election may be running)",
                 *str_of(d, "Hostname") ? str_of(d, "Hostname") : "?");
        return ORCH_EXIT_NOTFOUND;
    }
    fprintf(out, "%s", name);
    if (*api != '\0')
        fprintf(out, " %s", api);
    if (json_is_integer(json_object_get(orch, "Epoch")))
        fprintf(out, " epoch %" JSON_INTEGER_FORMAT,
                json_integer_value(json_object_get(orch, "Epoch")));
    fputc('\n', out);
    return ORCH_EXIT_OK;
}

static int print_details_text(const json_t *root, FILE *out)
{
    const json_t *d = details_of(root);
    if (json_is_string(d)) {
        fprintf(out, "%s\n", json_string_value(d));
    } else if (d == NULL || json_is_null(d)) {
        const char *m = str_of(root, "Message");
        if (*m)
            fprintf(out, "%s\n", m);
    } else {
        char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (s != NULL)
            fprintf(out, "%s\n", s);
        free(s);
    }
    return ORCH_EXIT_OK;
}

int ctl_out_render(ctl_out kind, const char *body, size_t len, const ctl_out_ctx *c, FILE *out,
                   char *msg, size_t msglen)
{
    if (kind == CTL_OUT_NONE)
        return ORCH_EXIT_OK;
    if (kind == CTL_OUT_RAW) {
        fwrite(body, 1, len, out);
        if (len > 0 && body[len - 1] != '\n')
            fputc('\n', out);
        return ORCH_EXIT_OK;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        snprintf(msg, msglen, "the API's answer is not JSON: %s (line %d)", jerr.text, jerr.line);
        return ORCH_EXIT_FAILURE;
    }
    int rc = ORCH_EXIT_OK;
    char key[300], master[300];
    const json_t *d = details_of(root);
    switch (kind) {
    case CTL_OUT_TOPOLOGY:
        if (!json_is_string(d)) {
            rc = shape(msg, msglen, "the topology text in Details");
            break;
        }
        ctl_out_topology_text(json_string_value(d), c->color, out);
        break;
    case CTL_OUT_TABULATED:
        rc = render_tabulated(root, c, out, msg, msglen);
        break;
    case CTL_OUT_KEY:
        if (!json_is_object(root) || !instance_key_text(root, key, sizeof(key)))
            rc = shape(msg, msglen, "an instance");
        else
            fprintf(out, "%s\n", key);
        break;
    case CTL_OUT_MASTER_KEY:
        if (!json_is_object(root) || !json_is_object(json_object_get(root, "MasterKey")))
            rc = shape(msg, msglen, "an instance");
        else if (key_text(json_object_get(root, "MasterKey"), key, sizeof(key)))
            fprintf(out, "%s\n", key);
        break;
    case CTL_OUT_KEYS:
        rc = print_keys(root, false, out, msg, msglen);
        break;
    case CTL_OUT_BROKEN_KEYS:
        rc = print_keys(root, true, out, msg, msglen);
        break;
    case CTL_OUT_CLUSTER_NAME:
    case CTL_OUT_CLUSTER_ALIAS: {
        const char *field = kind == CTL_OUT_CLUSTER_NAME ? "ClusterName" : "ClusterAlias";
        const char *v = json_string_value(json_object_get(root, field));
        if (v == NULL)
            rc = shape(msg, msglen, "cluster info");
        else
            fprintf(out, "%s\n", v);
        break;
    }
    case CTL_OUT_CLUSTERS:
    case CTL_OUT_CLUSTERS_ALIAS: {
        if (!json_is_array(root)) {
            rc = shape(msg, msglen, "a JSON array of clusters");
            break;
        }
        size_t k;
        const json_t *ci;
        json_array_foreach(root, k, ci)
        {
            const char *name = json_string_value(json_object_get(ci, "ClusterName"));
            if (name == NULL && json_is_string(ci))
                name = json_string_value(ci); /* /api/clusters: bare names */
            if (name == NULL) {
                rc = shape(msg, msglen, "cluster info");
                break;
            }
            if (kind == CTL_OUT_CLUSTERS)
                fprintf(out, "%s\n", name);
            else
                fprintf(out, "%s,%s\n", name,
                        *str_of(ci, "ClusterAlias") ? str_of(ci, "ClusterAlias") : name);
        }
        break;
    }
    case CTL_OUT_PROBLEMS:
        rc = print_problems(root, out, msg, msglen);
        break;
    case CTL_OUT_ANALYSIS:
        rc = print_analysis(d, out, msg, msglen);
        break;
    case CTL_OUT_AUDIT:
        rc = print_audit(d, out, msg, msglen);
        break;
    case CTL_OUT_LEADER:
        rc = print_leader(root, out, msg, msglen);
        break;
    case CTL_OUT_DETAILS_KEY:
        if (json_is_string(d))
            fprintf(out, "%s\n", json_string_value(d));
        else if (json_is_object(d) && instance_key_text(d, key, sizeof(key)))
            fprintf(out, "%s\n", key);
        else
            rc = print_details_text(root, out);
        break;
    case CTL_OUT_DETAILS_MOVED:
        if (!json_is_object(d) || !instance_key_text(d, key, sizeof(key)))
            rc = shape(msg, msglen, "the moved instance in Details");
        else if (key_text(json_object_get(d, "MasterKey"), master, sizeof(master)))
            fprintf(out, "%s<%s\n", key, master);
        else
            fprintf(out, "%s<\n", key);
        break;
    case CTL_OUT_DETAILS_KEYS:
        if (json_is_null(d))
            break;
        rc = print_keys(d, false, out, msg, msglen);
        break;
    case CTL_OUT_SUCCESSOR:
        if (json_is_object(d) && key_text(json_object_get(d, "SuccessorKey"), key, sizeof(key)))
            fprintf(out, "%s\n", key);
        else
            rc = print_details_text(root, out);
        break;
    case CTL_OUT_DETAILS_TEXT:
        rc = print_details_text(root, out);
        break;
    case CTL_OUT_NONE:
    case CTL_OUT_RAW:
        break;
    }
    json_decref(root);
    return rc;
}
