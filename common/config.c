/*
 * config.c: the table-driven configuration engine.
 *
 * A load goes: read the file; parse it with jansson; scan the raw text once more
 * for the top-level keys, which gives each key its line and catches duplicates
 * (jansson keeps only the last value and no positions); then walk those keys in
 * file order, validating each value into a scratch copy that started from the
 * defaults. Only when nothing was wrong are the values moved into the caller's
 * struct, so a failed load leaves it untouched and owns nothing new.
 */
#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REDACTED "<redacted>"

/* Any one field's storage, for swapping values of any type. */
typedef union field_value {
    bool b;
    int64_t i;
    int e;
    char *s;
    orch_strlist l;
} field_value;

static void *field_ptr(void *cfg, const orch_config_field *f)
{
    return (char *)cfg + f->offset;
}

static const void *field_cptr(const void *cfg, const orch_config_field *f)
{
    return (const char *)cfg + f->offset;
}

static size_t field_size(orch_config_type type)
{
    switch (type) {
    case ORCH_CONFIG_BOOL:
        return sizeof(bool);
    case ORCH_CONFIG_INT:
        return sizeof(int64_t);
    case ORCH_CONFIG_ENUM:
        return sizeof(int);
    case ORCH_CONFIG_STRLIST:
        return sizeof(orch_strlist);
    case ORCH_CONFIG_STRING:
    case ORCH_CONFIG_SECRET:
        return sizeof(char *);
    }
    return 0;
}

/* What a field expects, in "expected X, got Y" messages. */
static const char *type_expected(orch_config_type type)
{
    switch (type) {
    case ORCH_CONFIG_BOOL:
        return "boolean";
    case ORCH_CONFIG_INT:
        return "integer";
    case ORCH_CONFIG_STRLIST:
        return "array of strings";
    case ORCH_CONFIG_STRING:
    case ORCH_CONFIG_ENUM:
    case ORCH_CONFIG_SECRET:
        return "string";
    }
    return "?";
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static bool int_bounded(const orch_config_field *f)
{
    return !(f->min == 0 && f->max == 0);
}

/* Index of name among an ENUM's values, or -1. NULL names the first value. */
static int enum_index(const orch_config_field *f, const char *name)
{
    if (f->values == NULL)
        return -1;
    if (name == NULL)
        return f->values[0] != NULL ? 0 : -1;
    for (int i = 0; f->values[i] != NULL; i++) {
        if (strcmp(f->values[i], name) == 0)
            return i;
    }
    return -1;
}

static const char *enum_name(const orch_config_field *f, int idx)
{
    if (f->values == NULL || idx < 0)
        return NULL;
    for (int i = 0; f->values[i] != NULL; i++) {
        if (i == idx)
            return f->values[i];
    }
    return NULL;
}

/* Writes "a, b, c" (an ENUM's values) into buf. */
static void enum_list(const orch_config_field *f, char *buf, size_t buflen)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; f->values != NULL && f->values[i] != NULL; i++) {
        int n = snprintf(buf + used, buflen - used, "%s%s", i > 0 ? ", " : "", f->values[i]);
        if (n < 0 || (size_t)n >= buflen - used)
            return;
        used += (size_t)n;
    }
}

/* ---- strlist ----------------------------------------------------------- */

static void strlist_free(orch_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Copies n strings from src into out (which owns nothing yet). */
static orch_err strlist_copy(const char *const *src, size_t n, orch_strlist *out)
{
    out->v = NULL;
    out->n = 0;
    if (n == 0)
        return ORCH_OK;
    char **v = calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return ORCH_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(src[i]);
        if (v[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return ORCH_ERR_NOMEM;
        }
    }
    out->v = v;
    out->n = n;
    return ORCH_OK;
}

static bool strlist_equal(const orch_strlist *a, const orch_strlist *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    }
    return true;
}

static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* ---- errors ------------------------------------------------------------ */

/*
 * Copies s into buf for a message: control characters become '?', and long
 * text is cut (on a UTF-8 boundary) with "...". Keys and values in messages come
 * from the file, and one error must stay one line.
 */
static const char *printable(const char *s, char *buf, size_t buflen)
{
    size_t max = buflen - 4, o = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o == max) {
            /* Do not end on half a UTF-8 character. */
            if ((c & 0xC0) == 0x80) {
                while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
                    o--;
                if (o > 0)
                    o--;
            }
            memcpy(buf + o, "...", 4);
            return buf;
        }
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[o] = '\0';
    return buf;
}

static void errs_add(orch_config_errors *errs, const char *source, int line, const char *key,
                     bool warning, const char *fmt, ...) ORCH_PRINTF(6, 7);

static void errs_add(orch_config_errors *errs, const char *source, int line, const char *key,
                     bool warning, const char *fmt, ...)
{
    if (warning)
        errs->nwarnings++;
    else
        errs->nerrors++;
    if (errs->n >= ORCH_CONFIG_MAX_ERRORS) {
        errs->dropped++;
        return;
    }
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    char keybuf[ORCH_CONFIG_NAME_MAX * 2];
    const char *k = key != NULL ? printable(key, keybuf, sizeof(keybuf)) : NULL;
    const char *src = source != NULL ? source : "<config>";
    const char *warn = warning ? "warning: " : "";
    char where[64] = "";
    if (line > 0)
        snprintf(where, sizeof(where), ":%d", line);
    char text[1536];
    if (k != NULL)
        snprintf(text, sizeof(text), "%s%s: key '%s': %s%s", src, where, k, warn, message);
    else
        snprintf(text, sizeof(text), "%s%s: %s%s", src, where, warn, message);

    if (errs->n == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        orch_config_error *v = realloc(errs->v, cap * sizeof(*v));
        if (v == NULL) {
            errs->dropped++;
            return;
        }
        errs->v = v;
        errs->cap = cap;
    }
    orch_config_error *e = &errs->v[errs->n];
    e->line = line;
    e->warning = warning;
    e->key = k != NULL ? strdup(k) : NULL;
    e->message = strdup(message);
    e->text = strdup(text);
    if ((k != NULL && e->key == NULL) || e->message == NULL || e->text == NULL) {
        free(e->key);
        free(e->message);
        free(e->text);
        errs->dropped++;
        return;
    }
    errs->n++;
}

void orch_config_errors_add(orch_config_errors *errs, const char *source, const char *key,
                            const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    errs_add(errs, source, 0, key, false, "%s", message);
}

void orch_config_errors_fini(orch_config_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->v[i].key);
        free(errs->v[i].message);
        free(errs->v[i].text);
    }
    free(errs->v);
    memset(errs, 0, sizeof(*errs));
}

size_t orch_config_errors_count(const orch_config_errors *errs)
{
    return errs->nerrors;
}

size_t orch_config_errors_len(const orch_config_errors *errs)
{
    return errs->n;
}

const orch_config_error *orch_config_errors_get(const orch_config_errors *errs, size_t i)
{
    return i < errs->n ? &errs->v[i] : NULL;
}

void orch_config_errors_write(const orch_config_errors *errs, FILE *fp)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(fp, "%s\n", errs->v[i].text);
    if (errs->dropped > 0)
        fprintf(fp, "(%zu more configuration problems not shown)\n", errs->dropped);
}

void orch_config_errors_log(const orch_config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        const orch_config_error *e = &errs->v[i];
        orch_log(e->warning ? ORCH_LOG_WARN : ORCH_LOG_ERROR, "ORCH-CONFIG", NULL, "%s", e->text);
    }
    if (errs->dropped > 0)
        orch_log(ORCH_LOG_ERROR, "ORCH-CONFIG", NULL, "%zu more configuration problems not shown",
                 errs->dropped);
}

/* ---- table ------------------------------------------------------------- */

orch_err orch_config_table_check(const orch_config_table *table, char *msg, size_t msglen)
{
    if (table == NULL || (table->fields == NULL && table->nfields > 0))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no table");
    for (size_t i = 0; i < table->nfields; i++) {
        const orch_config_field *f = &table->fields[i];
        if (f->name == NULL || f->name[0] == '\0')
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field %zu has no name", i);
        size_t len = strlen(f->name);
        if (len > ORCH_CONFIG_NAME_MAX)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s': name longer than %d",
                             f->name, ORCH_CONFIG_NAME_MAX);
        for (size_t c = 0; c < len; c++) {
            char ch = f->name[c];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
                return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                 "field '%s': names use only a-z, 0-9 and '_'", f->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(table->fields[j].name, f->name) == 0)
                return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s' appears twice", f->name);
        }
        if (field_size(f->type) == 0)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s': unknown type %d", f->name,
                             (int)f->type);
        if (f->flags &
            ~(unsigned)(ORCH_CONFIG_REQUIRED | ORCH_CONFIG_RELOADABLE | ORCH_CONFIG_NONEMPTY))
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s': unknown flags", f->name);
        if (f->help == NULL || f->help[0] == '\0')
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s' has no help text", f->name);
        bool nonempty = (f->flags & ORCH_CONFIG_NONEMPTY) != 0;
        switch (f->type) {
        case ORCH_CONFIG_INT:
            if (f->min > f->max)
                return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s': min > max", f->name);
            if (int_bounded(f) && (f->def.i < f->min || f->def.i > f->max))
                return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                 "field '%s': default %" PRId64 " outside %" PRId64 "..%" PRId64,
                                 f->name, f->def.i, f->min, f->max);
            break;
        case ORCH_CONFIG_ENUM:
            if (enum_index(f, NULL) < 0)
                return orch_fail(msg, msglen, ORCH_ERR_INVAL, "field '%s': enum without values",
                                 f->name);
            if (enum_index(f, f->def.s) < 0)
                return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                 "field '%s': default '%s' is not one of its values", f->name,
                                 f->def.s);
            break;
        case ORCH_CONFIG_STRING:
        case ORCH_CONFIG_SECRET:
            if (nonempty && f->def.s != NULL && f->def.s[0] == '\0')
                return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                 "field '%s': non-empty field with default \"\"", f->name);
            break;
        case ORCH_CONFIG_STRLIST:
            for (size_t k = 0; nonempty && f->def.list != NULL && f->def.list[k] != NULL; k++) {
                if (f->def.list[k][0] == '\0')
                    return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                     "field '%s': non-empty field with \"\" in its default",
                                     f->name);
            }
            break;
        case ORCH_CONFIG_BOOL:
            break;
        }
        if (nonempty && f->type != ORCH_CONFIG_STRING && f->type != ORCH_CONFIG_SECRET &&
            f->type != ORCH_CONFIG_STRLIST)
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "field '%s': NONEMPTY applies to strings and lists only", f->name);
    }
    return ORCH_OK;
}

/* Bytes from the start of the caller's struct to the end of its last described member. */
static size_t table_extent(const orch_config_table *table)
{
    size_t end = 1;
    for (size_t i = 0; i < table->nfields; i++) {
        size_t e = table->fields[i].offset + field_size(table->fields[i].type);
        if (e > end)
            end = e;
    }
    return end;
}

static int field_find(const orch_config_table *table, const char *name)
{
    for (size_t i = 0; i < table->nfields; i++) {
        if (strcmp(table->fields[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- defaults and freeing ---------------------------------------------- */

static void field_fini(const orch_config_field *f, void *cfg)
{
    void *p = field_ptr(cfg, f);
    switch (f->type) {
    case ORCH_CONFIG_STRING:
    case ORCH_CONFIG_SECRET: {
        char **s = p;
        free(*s);
        *s = NULL;
        break;
    }
    case ORCH_CONFIG_STRLIST:
        strlist_free(p);
        break;
    case ORCH_CONFIG_BOOL:
    case ORCH_CONFIG_INT:
    case ORCH_CONFIG_ENUM:
        memset(p, 0, field_size(f->type));
        break;
    }
}

void orch_config_fini(const orch_config_table *table, void *cfg)
{
    if (table == NULL || cfg == NULL)
        return;
    for (size_t i = 0; i < table->nfields; i++)
        field_fini(&table->fields[i], cfg);
}

orch_err orch_config_set_defaults(const orch_config_table *table, void *cfg, char *msg,
                                  size_t msglen)
{
    /* Zero everything first so that a failure part-way can free what was set. */
    for (size_t i = 0; i < table->nfields; i++)
        memset(field_ptr(cfg, &table->fields[i]), 0, field_size(table->fields[i].type));

    orch_err err = ORCH_OK;
    for (size_t i = 0; i < table->nfields && err == ORCH_OK; i++) {
        const orch_config_field *f = &table->fields[i];
        void *p = field_ptr(cfg, f);
        switch (f->type) {
        case ORCH_CONFIG_BOOL:
            *(bool *)p = f->def.b;
            break;
        case ORCH_CONFIG_INT:
            *(int64_t *)p = f->def.i;
            break;
        case ORCH_CONFIG_ENUM: {
            int idx = enum_index(f, f->def.s);
            if (idx < 0)
                err = orch_fail(msg, msglen, ORCH_ERR_INVAL,
                                "key '%s': default is not one of its values", f->name);
            else
                *(int *)p = idx;
            break;
        }
        case ORCH_CONFIG_STRING:
        case ORCH_CONFIG_SECRET:
            if (f->def.s != NULL) {
                *(char **)p = strdup(f->def.s);
                if (*(char **)p == NULL)
                    err = orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
            }
            break;
        case ORCH_CONFIG_STRLIST: {
            size_t n = 0;
            while (f->def.list != NULL && f->def.list[n] != NULL)
                n++;
            if (strlist_copy(f->def.list, n, p) != ORCH_OK)
                err = orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
            break;
        }
        }
    }
    if (err != ORCH_OK)
        orch_config_fini(table, cfg);
    return err;
}

/* ---- files and secrets --------------------------------------------------- */

/*
 * Reads at most max bytes of path into a NUL-terminated malloc'd *buf. *mode gets
 * the file's mode. On failure msg says why, without naming the path.
 */
static orch_err read_file(const char *path, size_t max, char **buf, size_t *len, mode_t *mode,
                          char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return orch_fail(msg, msglen, ORCH_ERR_IO, "cannot open: %s", strerror(errno));
    orch_err err = ORCH_OK;
    char *data = NULL;
    size_t used = 0, cap = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = orch_fail(msg, msglen, ORCH_ERR_IO, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        err = orch_fail(msg, msglen, ORCH_ERR_IO, "is a directory");
        goto out;
    }
    for (;;) {
        if (cap - used < 2) {
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > max + 2)
                ncap = max + 2;
            if (ncap <= cap) {
                err = orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "larger than %zu bytes", max);
                goto out;
            }
            char *n = realloc(data, ncap);
            if (n == NULL) {
                err = orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
                goto out;
            }
            data = n;
            cap = ncap;
        }
        ssize_t r = read(fd, data + used, cap - used - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = orch_fail(msg, msglen, ORCH_ERR_IO, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        used += (size_t)r;
        if (used > max) {
            err = orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "larger than %zu bytes", max);
            goto out;
        }
    }
    if (data == NULL) {
        data = malloc(1);
        if (data == NULL) {
            err = orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    data[used] = '\0';
    *buf = data;
    *len = used;
    *mode = st.st_mode;
    data = NULL;
out:
    free(data);
    close(fd);
    return err;
}

static bool env_name_ok(const char *s)
{
    if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s != '\0'; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    }
    return true;
}

/*
 * Resolves a SECRET value: "env:NAME", "file:/path" or the secret itself. On
 * success *out is malloc'd and *is_inline says whether it was the secret itself.
 */
static orch_err resolve_secret(const char *v, char **out, bool *is_inline, char *msg, size_t msglen)
{
    char shown[96];
    *is_inline = false;
    if (strncmp(v, "env:", 4) == 0) {
        const char *name = v + 4;
        if (!env_name_ok(name))
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "bad secret reference '%s': expected env:NAME with NAME made of "
                             "letters, digits and '_'",
                             printable(v, shown, sizeof(shown)));
        const char *e = getenv(name);
        if (e == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_NOTFOUND,
                             "secret reference '%s': environment variable %s is not set", v, name);
        if (e[0] == '\0')
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "secret reference '%s': environment variable %s is empty", v, name);
        *out = strdup(e);
        return *out != NULL ? ORCH_OK : orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    }
    if (strncmp(v, "file:", 5) == 0) {
        const char *path = v + 5;
        if (path[0] == '\0')
            return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                             "bad secret reference 'file:': expected file:/path");
        char why[256];
        char *data = NULL;
        size_t len = 0;
        mode_t mode;
        printable(path, shown, sizeof(shown));
        orch_err err =
            read_file(path, ORCH_CONFIG_SECRET_MAX, &data, &len, &mode, why, sizeof(why));
        if (err != ORCH_OK)
            return orch_fail(msg, msglen, err, "secret file '%s': %s", shown, why);
        if (memchr(data, '\0', len) != NULL) {
            free(data);
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "secret file '%s' holds a NUL byte",
                             shown);
        }
        /* One trailing newline (as `echo` writes) is not part of the secret. */
        if (len > 0 && data[len - 1] == '\n') {
            data[--len] = '\0';
            if (len > 0 && data[len - 1] == '\r')
                data[--len] = '\0';
        }
        if (len == 0) {
            free(data);
            return orch_fail(msg, msglen, ORCH_ERR_INVAL, "secret file '%s' is empty", shown);
        }
        *out = data;
        return ORCH_OK;
    }
    *out = strdup(v);
    if (*out == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    *is_inline = true;
    return ORCH_OK;
}

/* ---- key scanning ------------------------------------------------------ */

typedef struct raw_key {
    char *name; /* decoded, as jansson has it */
    int line;
    size_t pos; /* offset of its opening quote */
} raw_key;

typedef struct key_list {
    raw_key *v;
    size_t n, cap;
    size_t closed; /* offset of the last '}' or ']' that closed the top level; SIZE_MAX: none */
} key_list;

static void key_list_fini(key_list *kl)
{
    for (size_t i = 0; i < kl->n; i++)
        free(kl->v[i].name);
    free(kl->v);
    memset(kl, 0, sizeof(*kl));
}

/* The key between the quotes, with JSON escapes decoded (by jansson). NULL: no memory. */
static char *decode_key(const char *raw, size_t len)
{
    if (memchr(raw, '\\', len) == NULL)
        return strndup(raw, len);
    char *quoted = malloc(len + 3);
    if (quoted == NULL)
        return NULL;
    quoted[0] = '"';
    memcpy(quoted + 1, raw, len);
    quoted[len + 1] = '"';
    quoted[len + 2] = '\0';
    json_error_t jerr;
    json_t *s = json_loadb(quoted, len + 2, JSON_DECODE_ANY, &jerr);
    free(quoted);
    char *out = json_is_string(s) ? strdup(json_string_value(s)) : strndup(raw, len);
    json_decref(s);
    return out;
}

/*
 * Lists the keys of the top-level object in text[0, stop) with their lines, in
 * file order. A key is a string at depth 1 followed by ':' (before stop). This is
 * a tokenizer only as far as strings and brackets go: after jansson accepted the
 * text that is exact, and on text jansson rejected (stop = the error's position)
 * it is a best effort.
 */
static orch_err scan_keys(const char *text, size_t stop, key_list *out)
{
    int depth = 0, line = 1;
    out->closed = SIZE_MAX;
    for (size_t i = 0; i < stop; i++) {
        char c = text[i];
        if (c == '\n') {
            line++;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                out->closed = i;
        } else if (c == '"') {
            size_t start = i + 1, end = start;
            int key_line = line;
            while (end < stop && text[end] != '"') {
                if (text[end] == '\\')
                    end++;
                else if (text[end] == '\n')
                    line++;
                end++;
            }
            if (end >= stop)
                break;
            i = end;
            if (depth != 1)
                continue;
            size_t j = end + 1;
            while (j < stop &&
                   (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
                j++;
            if (j >= stop || text[j] != ':')
                continue;
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 16;
                raw_key *v = realloc(out->v, cap * sizeof(*v));
                if (v == NULL)
                    return ORCH_ERR_NOMEM;
                out->v = v;
                out->cap = cap;
            }
            char *name = decode_key(text + start, end - start);
            if (name == NULL)
                return ORCH_ERR_NOMEM;
            out->v[out->n].name = name;
            out->v[out->n].line = key_line;
            out->v[out->n].pos = start - 1;
            out->n++;
        }
    }
    return ORCH_OK;
}

/* ---- did you mean ------------------------------------------------------ */

static char fold(char c)
{
    return c == '-' ? '_' : (char)tolower((unsigned char)c);
}

/*
 * Edit distance between a key from the file and a field name, counting an
 * insertion, deletion, substitution or swap of neighbours as one, ignoring case
 * and reading '-' as '_' (optimal string alignment distance). Field names are at
 * most ORCH_CONFIG_NAME_MAX long, so three rows over the name suffice.
 */
static size_t edit_distance(const char *key, const char *name)
{
    size_t rows[3][ORCH_CONFIG_NAME_MAX + 1];
    size_t m = strlen(name);
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    size_t i;
    for (i = 1; key[i - 1] != '\0'; i++) {
        cur[0] = i;
        char a = fold(key[i - 1]);
        for (size_t j = 1; j <= m; j++) {
            char b = fold(name[j - 1]);
            size_t best = prev[j - 1] + (a == b ? 0 : 1);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a == fold(name[j - 2]) && fold(key[i - 2]) == b &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

/* The known key closest to an unknown one, if close enough to be a likely typo. */
static const char *suggest(const orch_config_table *table, const char *key)
{
    size_t klen = strlen(key);
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < table->nfields; i++) {
        const char *name = table->fields[i].name;
        size_t len = strlen(name);
        size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
        size_t diff = klen > len ? klen - len : len - klen;
        if (diff > limit)
            continue;
        size_t d = edit_distance(key, name);
        if (d <= limit && d < best_d) {
            best = name;
            best_d = d;
        }
    }
    return best;
}

/* ---- loading ----------------------------------------------------------- */

typedef struct load_ctx {
    const orch_config_table *table;
    const char *source;
    orch_config_errors *errs;
    bool shared_file; /* the file can be read by group or others */
    mode_t mode;
    bool nomem;
} load_ctx;

#define ferr(lc, line, f, ...)                                                                     \
    errs_add((lc)->errs, (lc)->source, (line), (f)->name, false, __VA_ARGS__)

static void type_error(load_ctx *lc, int line, const orch_config_field *f, const json_t *v)
{
    if (f->type == ORCH_CONFIG_ENUM) {
        char allowed[512];
        enum_list(f, allowed, sizeof(allowed));
        ferr(lc, line, f, "expected string (one of: %s), got %s", allowed, json_kind(v));
        return;
    }
    ferr(lc, line, f, "expected %s, got %s", type_expected(f->type), json_kind(v));
}

/* Replaces a string member (freeing the old value) with a copy of s, or NULL. */
static void set_string(load_ctx *lc, void *p, const char *s)
{
    char *copy = NULL;
    if (s != NULL && (copy = strdup(s)) == NULL) {
        lc->nomem = true;
        return;
    }
    free(*(char **)p);
    *(char **)p = copy;
}

/* Validates value v of field f (whose key is on line) into the scratch struct tmp. */
static void parse_field(load_ctx *lc, const orch_config_field *f, const json_t *v, int line,
                        void *tmp)
{
    void *p = field_ptr(tmp, f);
    bool nonempty = (f->flags & ORCH_CONFIG_NONEMPTY) != 0;
    char shown[96];

    switch (f->type) {
    case ORCH_CONFIG_BOOL:
        if (!json_is_boolean(v)) {
            type_error(lc, line, f, v);
            return;
        }
        *(bool *)p = json_is_true(v);
        return;

    case ORCH_CONFIG_INT: {
        if (!json_is_integer(v)) {
            type_error(lc, line, f, v);
            return;
        }
        int64_t i = (int64_t)json_integer_value(v);
        if (int_bounded(f) && i < f->min) {
            ferr(lc, line, f, "%" PRId64 " is below the minimum %" PRId64, i, f->min);
            return;
        }
        if (int_bounded(f) && i > f->max) {
            ferr(lc, line, f, "%" PRId64 " is above the maximum %" PRId64, i, f->max);
            return;
        }
        *(int64_t *)p = i;
        return;
    }

    case ORCH_CONFIG_ENUM: {
        if (!json_is_string(v)) {
            type_error(lc, line, f, v);
            return;
        }
        int idx = enum_index(f, json_string_value(v));
        if (idx < 0) {
            char allowed[512];
            enum_list(f, allowed, sizeof(allowed));
            ferr(lc, line, f, "'%s' is not an allowed value (allowed: %s)",
                 printable(json_string_value(v), shown, sizeof(shown)), allowed);
            return;
        }
        *(int *)p = idx;
        return;
    }

    case ORCH_CONFIG_STRING:
    case ORCH_CONFIG_SECRET:
        if (json_is_null(v)) {
            if (f->flags & ORCH_CONFIG_REQUIRED)
                ferr(lc, line, f, "required, so it may not be null");
            else
                set_string(lc, p, NULL);
            return;
        }
        if (!json_is_string(v)) {
            type_error(lc, line, f, v);
            return;
        }
        if (nonempty && json_string_length(v) == 0) {
            ferr(lc, line, f, "must not be empty");
            return;
        }
        if (f->type == ORCH_CONFIG_STRING) {
            set_string(lc, p, json_string_value(v));
            return;
        }
        {
            char why[512];
            char *secret = NULL;
            bool is_inline = false;
            orch_err err =
                resolve_secret(json_string_value(v), &secret, &is_inline, why, sizeof(why));
            if (err == ORCH_ERR_NOMEM) {
                lc->nomem = true;
                return;
            }
            if (err != ORCH_OK) {
                ferr(lc, line, f, "%s", why);
                return;
            }
            free(*(char **)p);
            *(char **)p = secret;
            if (is_inline && lc->shared_file && secret[0] != '\0')
                errs_add(lc->errs, lc->source, line, f->name, true,
                         "secret given inline in a file that group or others can read "
                         "(mode %04o); chmod 600 the file, or use \"file:/path\" or "
                         "\"env:NAME\"",
                         (unsigned)(lc->mode & 07777));
        }
        return;

    case ORCH_CONFIG_STRLIST: {
        if (!json_is_array(v)) {
            type_error(lc, line, f, v);
            return;
        }
        size_t n = json_array_size(v);
        bool ok = true;
        if (nonempty && n == 0) {
            ferr(lc, line, f, "must not be empty");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            if (!json_is_string(e)) {
                ferr(lc, line, f, "element %zu: expected string, got %s", i + 1, json_kind(e));
                ok = false;
            } else if (nonempty && json_string_length(e) == 0) {
                ferr(lc, line, f, "element %zu must not be empty", i + 1);
                ok = false;
            }
        }
        if (!ok)
            return;
        const char **src = n > 0 ? calloc(n, sizeof(*src)) : NULL;
        if (n > 0 && src == NULL) {
            lc->nomem = true;
            return;
        }
        for (size_t i = 0; i < n; i++)
            src[i] = json_string_value(json_array_get(v, i));
        orch_strlist list;
        if (strlist_copy(src, n, &list) != ORCH_OK)
            lc->nomem = true;
        free(src);
        if (lc->nomem)
            return;
        strlist_free(p);
        *(orch_strlist *)p = list;
        return;
    }
    }
}

/*
 * Reports a JSON syntax error, naming the key whose value it is in when that is
 * clear: the last key before the error, on the error's line, with the top-level
 * object still open. jansson's position is just past the offending token.
 */
static void syntax_error(load_ctx *lc, const char *text, size_t len, const json_error_t *jerr)
{
    const char *key = NULL;
    key_list kl = {0};
    if (jerr->position > 0) {
        size_t stop = (size_t)jerr->position < len ? (size_t)jerr->position : len;
        if (scan_keys(text, stop, &kl) == ORCH_OK && kl.n > 0) {
            const raw_key *rk = &kl.v[kl.n - 1];
            bool open = kl.closed == SIZE_MAX || kl.closed < rk->pos || kl.closed + 1 >= stop;
            if (rk->line == jerr->line && open)
                key = rk->name;
        }
    }
    errs_add(lc->errs, lc->source, jerr->line > 0 ? jerr->line : 0, key, false,
             "JSON syntax error at column %d: %s", jerr->column, jerr->text);
    key_list_fini(&kl);
}

static orch_err load_text(load_ctx *lc, void *cfg, const char *text, size_t len)
{
    const orch_config_table *table = lc->table;
    size_t errors_before = lc->errs->nerrors;
    json_t *root = NULL;
    key_list kl = {0};
    void *tmp = NULL;
    int *first_line = NULL;
    size_t *last = NULL;
    orch_err err = ORCH_OK;

    size_t lead = 0;
    int lead_line = 1;
    while (lead < len && isspace((unsigned char)text[lead])) {
        if (text[lead] == '\n')
            lead_line++;
        lead++;
    }
    if (lead == len) {
        errs_add(lc->errs, lc->source, 0, NULL, false,
                 "the file is empty; it must hold a JSON object ({} for all defaults)");
        return ORCH_ERR_CONFIG;
    }

    json_error_t jerr;
    root = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        syntax_error(lc, text, len, &jerr);
        return ORCH_ERR_CONFIG;
    }
    if (!json_is_object(root)) {
        errs_add(lc->errs, lc->source, lead_line, NULL, false,
                 "the top level must be a JSON object, got %s", json_kind(root));
        err = ORCH_ERR_CONFIG;
        goto out;
    }

    tmp = calloc(1, table_extent(table));
    first_line = calloc(table->nfields + 1, sizeof(*first_line));
    last = calloc(table->nfields + 1, sizeof(*last));
    if (tmp == NULL || first_line == NULL || last == NULL || scan_keys(text, len, &kl) != ORCH_OK) {
        lc->nomem = true;
        goto out;
    }
    char msg[256];
    err = orch_config_set_defaults(table, tmp, msg, sizeof(msg));
    if (err == ORCH_ERR_NOMEM) {
        lc->nomem = true;
        goto out;
    }
    if (err != ORCH_OK) {
        errs_add(lc->errs, lc->source, 0, NULL, false, "%s", msg);
        err = ORCH_ERR_CONFIG;
        goto out;
    }

    /* Where each known key last appears: that is the value jansson kept. */
    for (size_t k = 0; k < kl.n; k++) {
        int idx = field_find(table, kl.v[k].name);
        if (idx >= 0)
            last[idx] = k;
    }
    for (size_t k = 0; k < kl.n && !lc->nomem; k++) {
        const raw_key *rk = &kl.v[k];
        int idx = field_find(table, rk->name);
        if (idx < 0) {
            const char *near =
                lc->errs->n < ORCH_CONFIG_MAX_ERRORS ? suggest(table, rk->name) : NULL;
            if (near != NULL)
                errs_add(lc->errs, lc->source, rk->line, rk->name, false,
                         "unknown key (did you mean '%s'?)", near);
            else
                errs_add(lc->errs, lc->source, rk->line, rk->name, false, "unknown key");
            continue;
        }
        const orch_config_field *f = &table->fields[idx];
        if (first_line[idx] != 0)
            ferr(lc, rk->line, f, "duplicate key (first given on line %d)", first_line[idx]);
        else
            first_line[idx] = rk->line;
        if (last[idx] == k) {
            const json_t *v = json_object_get(root, rk->name);
            if (v != NULL)
                parse_field(lc, f, v, rk->line, tmp);
        }
    }
    for (size_t i = 0; i < table->nfields && !lc->nomem; i++) {
        if ((table->fields[i].flags & ORCH_CONFIG_REQUIRED) && first_line[i] == 0)
            ferr(lc, 0, &table->fields[i], "required key is missing");
    }

out:
    if (lc->nomem) {
        errs_add(lc->errs, lc->source, 0, NULL, false, "out of memory while loading");
        err = ORCH_ERR_NOMEM;
    } else if (err == ORCH_OK && lc->errs->nerrors > errors_before) {
        err = ORCH_ERR_CONFIG;
    }
    if (err == ORCH_OK) {
        /* Move every value into the caller's struct; tmp gives up ownership. */
        for (size_t i = 0; i < table->nfields; i++) {
            const orch_config_field *f = &table->fields[i];
            memcpy(field_ptr(cfg, f), field_ptr(tmp, f), field_size(f->type));
        }
    } else if (tmp != NULL) {
        orch_config_fini(table, tmp);
    }
    free(tmp);
    free(first_line);
    free(last);
    key_list_fini(&kl);
    json_decref(root);
    return err;
}

orch_err orch_config_load_string(const orch_config_table *table, void *cfg, const char *text,
                                 size_t len, const char *source, orch_config_errors *errs)
{
    load_ctx lc = {.table = table, .source = source, .errs = errs};
    return load_text(&lc, cfg, text, len);
}

orch_err orch_config_load_file(const orch_config_table *table, void *cfg, const char *path,
                               orch_config_errors *errs)
{
    char *text = NULL;
    size_t len = 0;
    mode_t mode = 0;
    char why[256];
    orch_err err = read_file(path, ORCH_CONFIG_FILE_MAX, &text, &len, &mode, why, sizeof(why));
    if (err != ORCH_OK) {
        errs_add(errs, path, 0, NULL, false, "%s", why);
        return err == ORCH_ERR_NOMEM ? err : ORCH_ERR_CONFIG;
    }
    load_ctx lc = {
        .table = table,
        .source = path,
        .errs = errs,
        .shared_file = (mode & (S_IRGRP | S_IROTH)) != 0,
        .mode = mode,
    };
    err = load_text(&lc, cfg, text, len);
    free(text);
    return err;
}

/* ---- printing ---------------------------------------------------------- */

/* The JSON for one member's value; NULL when out of memory or not valid UTF-8. */
static json_t *field_json(const orch_config_field *f, const void *cfg, bool redact)
{
    const void *p = field_cptr(cfg, f);
    switch (f->type) {
    case ORCH_CONFIG_BOOL:
        return json_boolean(*(const bool *)p);
    case ORCH_CONFIG_INT:
        return json_integer((json_int_t)(*(const int64_t *)p));
    case ORCH_CONFIG_ENUM: {
        const char *name = enum_name(f, *(const int *)p);
        return name != NULL ? json_string(name) : json_null();
    }
    case ORCH_CONFIG_STRING:
    case ORCH_CONFIG_SECRET: {
        const char *s = *(char *const *)p;
        if (s == NULL)
            return json_null();
        return json_string(redact && f->type == ORCH_CONFIG_SECRET ? REDACTED : s);
    }
    case ORCH_CONFIG_STRLIST: {
        const orch_strlist *l = p;
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < l->n; i++) {
            if (json_array_append_new(a, json_string(l->v[i])) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    }
    return NULL;
}

static orch_err print_json(const orch_config_table *table, const void *cfg, bool redact, FILE *fp)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return ORCH_ERR_NOMEM;
    for (size_t i = 0; i < table->nfields; i++) {
        const orch_config_field *f = &table->fields[i];
        if (json_object_set_new(obj, f->name, field_json(f, cfg, redact)) != 0) {
            json_decref(obj);
            return ORCH_ERR_NOMEM;
        }
    }
    int rc = json_dumpf(obj, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (rc != 0 || fputc('\n', fp) == EOF || fflush(fp) != 0)
        return ORCH_ERR_IO;
    return ORCH_OK;
}

orch_err orch_config_print(const orch_config_table *table, const void *cfg, FILE *fp)
{
    return print_json(table, cfg, true, fp);
}

orch_err orch_config_print_sample(const orch_config_table *table, FILE *fp)
{
    void *tmp = calloc(1, table_extent(table));
    if (tmp == NULL)
        return ORCH_ERR_NOMEM;
    orch_err err = orch_config_set_defaults(table, tmp, NULL, 0);
    if (err == ORCH_OK)
        err = print_json(table, tmp, false, fp);
    orch_config_fini(table, tmp);
    free(tmp);
    return err;
}

orch_err orch_config_print_help(const orch_config_table *table, FILE *fp)
{
    for (size_t i = 0; i < table->nfields; i++) {
        const orch_config_field *f = &table->fields[i];
        char type[512], def[512];
        switch (f->type) {
        case ORCH_CONFIG_BOOL:
            snprintf(type, sizeof(type), "boolean");
            snprintf(def, sizeof(def), "%s", f->def.b ? "true" : "false");
            break;
        case ORCH_CONFIG_INT:
            if (int_bounded(f))
                snprintf(type, sizeof(type), "integer %" PRId64 "..%" PRId64, f->min, f->max);
            else
                snprintf(type, sizeof(type), "integer");
            snprintf(def, sizeof(def), "%" PRId64, f->def.i);
            break;
        case ORCH_CONFIG_ENUM: {
            char allowed[480];
            enum_list(f, allowed, sizeof(allowed));
            snprintf(type, sizeof(type), "one of: %s", allowed);
            const char *name = enum_name(f, enum_index(f, f->def.s));
            snprintf(def, sizeof(def), "%s", name != NULL ? name : "?");
            break;
        }
        case ORCH_CONFIG_STRING:
        case ORCH_CONFIG_SECRET:
            snprintf(type, sizeof(type), "%s",
                     f->type == ORCH_CONFIG_STRING
                         ? "string"
                         : "secret (\"env:NAME\", \"file:/path\" or the secret itself)");
            if (f->def.s != NULL)
                snprintf(def, sizeof(def), "\"%s\"", f->def.s);
            else
                snprintf(def, sizeof(def), "none");
            break;
        case ORCH_CONFIG_STRLIST: {
            snprintf(type, sizeof(type), "list of strings");
            size_t used = 0;
            def[0] = '\0';
            for (size_t k = 0; f->def.list != NULL && f->def.list[k] != NULL; k++) {
                int n = snprintf(def + used, sizeof(def) - used, "%s\"%s\"", k > 0 ? ", " : "",
                                 f->def.list[k]);
                if (n < 0 || (size_t)n >= sizeof(def) - used)
                    break;
                used += (size_t)n;
            }
            if (used == 0)
                snprintf(def, sizeof(def), "[]");
            break;
        }
        }
        fprintf(fp, "%s: %s; default %s%s%s%s\n    %s\n", f->name, type, def,
                (f->flags & ORCH_CONFIG_REQUIRED) ? "; required" : "",
                (f->flags & ORCH_CONFIG_NONEMPTY) ? "; not empty" : "",
                (f->flags & ORCH_CONFIG_RELOADABLE) ? "; reloadable" : "", f->help);
    }
    if (ferror(fp) || fflush(fp) != 0)
        return ORCH_ERR_IO;
    return ORCH_OK;
}

/* ---- reload ------------------------------------------------------------ */

static bool field_equal(const orch_config_field *f, const void *a, const void *b)
{
    const void *pa = field_cptr(a, f), *pb = field_cptr(b, f);
    switch (f->type) {
    case ORCH_CONFIG_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case ORCH_CONFIG_INT:
        return *(const int64_t *)pa == *(const int64_t *)pb;
    case ORCH_CONFIG_ENUM:
        return *(const int *)pa == *(const int *)pb;
    case ORCH_CONFIG_STRING:
    case ORCH_CONFIG_SECRET:
        return str_equal(*(char *const *)pa, *(char *const *)pb);
    case ORCH_CONFIG_STRLIST:
        return strlist_equal(pa, pb);
    }
    return true;
}

void orch_config_changes_fini(orch_config_changes *ch)
{
    if (ch == NULL)
        return;
    free(ch->reloaded);
    free(ch->restart);
    memset(ch, 0, sizeof(*ch));
}

orch_err orch_config_reload(const orch_config_table *table, void *cur, void *fresh,
                            orch_config_changes *ch)
{
    memset(ch, 0, sizeof(*ch));
    /* Allocate first, so that running out of memory changes nothing. */
    size_t n = table->nfields > 0 ? table->nfields : 1;
    ch->reloaded = calloc(n, sizeof(*ch->reloaded));
    ch->restart = calloc(n, sizeof(*ch->restart));
    if (ch->reloaded == NULL || ch->restart == NULL) {
        orch_config_changes_fini(ch);
        return ORCH_ERR_NOMEM;
    }
    for (size_t i = 0; i < table->nfields; i++) {
        const orch_config_field *f = &table->fields[i];
        if (field_equal(f, cur, fresh))
            continue;
        if (!(f->flags & ORCH_CONFIG_RELOADABLE)) {
            ch->restart[ch->nrestart++] = f->name;
            continue;
        }
        field_value t;
        size_t size = field_size(f->type);
        memcpy(&t, field_ptr(cur, f), size);
        memcpy(field_ptr(cur, f), field_ptr(fresh, f), size);
        memcpy(field_ptr(fresh, f), &t, size);
        ch->reloaded[ch->nreloaded++] = f->name;
    }
    return ORCH_OK;
}
