/*
 * metrics.c: a small metrics registry and its Prometheus text exposition.
 *
 * Families live in a list in registration order and are sorted by name when
 * rendered; series live in a list per family. Lookups are linear: the
 * coordinator has tens of families and at most a few hundred series, and the
 * hot paths keep their handles.
 *
 * Values are doubles stored as their bit patterns in 64-bit atomics, so that
 * any thread can update a handle without the registry's mutex; additions are
 * compare-and-swap loops. Histograms keep one atomic count per bucket
 * (non-cumulative) and cumulate when rendering. A render therefore sees each
 * value atomically but not a snapshot across values, which is what every
 * Prometheus client library does too.
 */
#include "metrics.h"

#include "sbuf.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_buckets_latency_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
const size_t metrics_buckets_latency_s_n =
    sizeof(metrics_buckets_latency_s) / sizeof(metrics_buckets_latency_s[0]);
const double metrics_buckets_recovery_s[] = {0.1, 0.25, 0.5, 1,  2,  3,   5,   10,
                                             15,  20,   30,  45, 60, 120, 300, 600};
const size_t metrics_buckets_recovery_s_n =
    sizeof(metrics_buckets_recovery_s) / sizeof(metrics_buckets_recovery_s[0]);

#define MAX_COLLECTORS 16

typedef struct family family;

struct metric {
    family *fam;
    char **values;             /* one per family label */
    char *sortkey;             /* label values joined by \x01, for ordering */
    _Atomic uint64_t v;        /* counter/gauge value, or histogram sum (double bits) */
    _Atomic uint64_t count;    /* histogram observations */
    _Atomic uint64_t *buckets; /* histogram, per bound, non-cumulative */
    struct metric *next;
};

struct family {
    char *name;
    char *help;
    metric_type type;
    size_t nlabels;
    char **label_names;
    double *bounds;
    size_t nbounds;
    metric *series, *series_tail;
    struct family *next;
};

struct metrics {
    pthread_mutex_t mu;
    family *families, *families_tail;
    size_t nfamilies;
    struct {
        metrics_collect_fn fn;
        void *arg;
    } collectors[MAX_COLLECTORS];
    size_t ncollectors;
};

/* ---- doubles in atomics ---------------------------------------------------- */

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* ---- names ------------------------------------------------------------------- */

static bool name_ok(const char *s, bool allow_colon)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (allow_colon && c == ':');
        bool digit = c >= '0' && c <= '9';
        if (!(alpha || (digit && p != s)))
            return false;
    }
    return true;
}

static bool label_name_ok(const char *s, metric_type type)
{
    if (!name_ok(s, false) || strncmp(s, "__", 2) == 0)
        return false;
    return !(type == METRIC_HISTOGRAM && strcmp(s, "le") == 0);
}

/* ---- registry ---------------------------------------------------------------- */

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void series_free(metric *s, size_t nlabels)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s->values != NULL && i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->sortkey);
    free(s->buckets);
    free(s);
}

static void family_free(family *f)
{
    if (f == NULL)
        return;
    metric *s = f->series;
    while (s != NULL) {
        metric *next = s->next;
        series_free(s, f->nlabels);
        s = next;
    }
    for (size_t i = 0; f->label_names != NULL && i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void metrics_free(metrics *m)
{
    if (m == NULL)
        return;
    family *f = m->families;
    while (f != NULL) {
        family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static family *family_find(metrics *m, const char *name)
{
    for (family *f = m->families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static family *family_create(const char *name, const char *help, metric_type type,
                             const double *bounds, size_t nbounds, const char *const *labels,
                             size_t nlabels)
{
    family *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->nlabels = nlabels;
    f->label_names = calloc(nlabels ? nlabels : 1, sizeof(char *));
    if (f->name == NULL || f->help == NULL || f->label_names == NULL)
        goto error;
    for (size_t i = 0; i < nlabels; i++) {
        f->label_names[i] = strdup(labels[2 * i]);
        if (f->label_names[i] == NULL)
            goto error;
    }
    if (type == METRIC_HISTOGRAM) {
        f->nbounds = nbounds;
        f->bounds = calloc(nbounds ? nbounds : 1, sizeof(double));
        if (f->bounds == NULL)
            goto error;
        if (nbounds > 0)
            memcpy(f->bounds, bounds, nbounds * sizeof(double));
    }
    return f;
error:
    family_free(f);
    return NULL;
}

static char *join_values(const char *const *labels, size_t nlabels)
{
    size_t len = 1;
    for (size_t i = 0; i < nlabels; i++)
        len += strlen(labels[2 * i + 1]) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    char *p = s;
    for (size_t i = 0; i < nlabels; i++) {
        size_t l = strlen(labels[2 * i + 1]);
        memcpy(p, labels[2 * i + 1], l);
        p += l;
        *p++ = '\x01';
    }
    *p = '\0';
    return s;
}

static metric *series_create(family *f, const char *const *labels, char *sortkey)
{
    metric *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        free(sortkey);
        return NULL;
    }
    s->fam = f;
    s->sortkey = sortkey;
    s->values = calloc(f->nlabels ? f->nlabels : 1, sizeof(char *));
    if (s->values == NULL)
        goto error;
    for (size_t i = 0; i < f->nlabels; i++) {
        s->values[i] = strdup(labels[2 * i + 1]);
        if (s->values[i] == NULL)
            goto error;
    }
    if (f->type == METRIC_HISTOGRAM) {
        s->buckets = calloc(f->nbounds ? f->nbounds : 1, sizeof(*s->buckets));
        if (s->buckets == NULL)
            goto error;
    }
    atomic_init(&s->v, d2u(0.0));
    atomic_init(&s->count, 0);
    for (size_t i = 0; f->type == METRIC_HISTOGRAM && i < f->nbounds; i++)
        atomic_init(&s->buckets[i], 0);
    return s;
error:
    series_free(s, f->nlabels);
    return NULL;
}

metric *metrics_get(metrics *m, metric_type type, const char *name, const char *help,
                    const double *bounds, size_t nbounds, const char *const *labels, size_t nlabels)
{
    if (m == NULL || !name_ok(name, true) || nlabels > METRICS_MAX_LABELS ||
        (nlabels > 0 && labels == NULL))
        return NULL;
    for (size_t i = 0; i < nlabels; i++) {
        if (!label_name_ok(labels[2 * i], type) || labels[2 * i + 1] == NULL)
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[2 * i], labels[2 * j]) == 0)
                return NULL;
    }
    if (type == METRIC_HISTOGRAM) {
        if (nbounds > METRICS_MAX_BUCKETS || (nbounds > 0 && bounds == NULL))
            return NULL;
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                return NULL;
    }
    char *sortkey = join_values(labels, nlabels);
    if (sortkey == NULL)
        return NULL;

    metric *found = NULL;
    pthread_mutex_lock(&m->mu);
    family *f = family_find(m, name);
    if (f == NULL) {
        f = family_create(name, help, type, bounds, nbounds, labels, nlabels);
        if (f == NULL)
            goto out;
        if (m->families_tail)
            m->families_tail->next = f;
        else
            m->families = f;
        m->families_tail = f;
        m->nfamilies++;
    } else {
        if (f->type != type || f->nlabels != nlabels)
            goto out;
        for (size_t i = 0; i < nlabels; i++)
            if (strcmp(f->label_names[i], labels[2 * i]) != 0)
                goto out;
    }
    for (metric *s = f->series; s != NULL; s = s->next) {
        if (strcmp(s->sortkey, sortkey) == 0) {
            found = s;
            goto out;
        }
    }
    found = series_create(f, labels, sortkey);
    sortkey = NULL; /* taken by series_create, even on failure */
    if (found != NULL) {
        if (f->series_tail)
            f->series_tail->next = found;
        else
            f->series = found;
        f->series_tail = found;
    }
out:
    pthread_mutex_unlock(&m->mu);
    free(sortkey);
    return found;
}

static metric *get_va(metrics *m, metric_type type, const char *name, const char *help,
                      const double *bounds, size_t nbounds, va_list ap)
{
    const char *labels[2 * METRICS_MAX_LABELS];
    size_t n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        if (n >= 2 * METRICS_MAX_LABELS || v == NULL)
            return NULL;
        labels[n++] = k;
        labels[n++] = v;
    }
    return metrics_get(m, type, name, help, bounds, nbounds, labels, n / 2);
}

metric *metrics_counter(metrics *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    metric *s = get_va(m, METRIC_COUNTER, name, help, NULL, 0, ap);
    va_end(ap);
    return s;
}

metric *metrics_gauge(metrics *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    metric *s = get_va(m, METRIC_GAUGE, name, help, NULL, 0, ap);
    va_end(ap);
    return s;
}

metric *metrics_histogram(metrics *m, const char *name, const char *help, const double *bounds,
                          size_t nbounds, ...)
{
    va_list ap;
    va_start(ap, nbounds);
    metric *s = get_va(m, METRIC_HISTOGRAM, name, help, bounds, nbounds, ap);
    va_end(ap);
    return s;
}

/* ---- updates ----------------------------------------------------------------- */

void metric_inc(metric *s)
{
    metric_add(s, 1.0);
}

void metric_add(metric *s, double v)
{
    if (s == NULL || s->fam->type == METRIC_HISTOGRAM)
        return;
    if (s->fam->type == METRIC_COUNTER && !(v >= 0))
        return;
    atomic_add_double(&s->v, v);
}

void metric_set(metric *s, double v)
{
    if (s == NULL || s->fam->type != METRIC_GAUGE)
        return;
    atomic_store_explicit(&s->v, d2u(v), memory_order_relaxed);
}

void metric_observe(metric *s, double v)
{
    if (s == NULL || s->fam->type != METRIC_HISTOGRAM || isnan(v))
        return;
    const family *f = s->fam;
    for (size_t i = 0; i < f->nbounds; i++) {
        if (v <= f->bounds[i]) {
            atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_add_double(&s->v, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

double metric_value(const metric *s)
{
    if (s == NULL || s->fam->type == METRIC_HISTOGRAM)
        return 0.0;
    return u2d(atomic_load_explicit(&((metric *)s)->v, memory_order_relaxed));
}

int metrics_add_collector(metrics *m, metrics_collect_fn fn, void *arg)
{
    if (m == NULL || fn == NULL)
        return -1;
    pthread_mutex_lock(&m->mu);
    int rc = -1;
    if (m->ncollectors < MAX_COLLECTORS) {
        m->collectors[m->ncollectors].fn = fn;
        m->collectors[m->ncollectors].arg = arg;
        m->ncollectors++;
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- rendering --------------------------------------------------------------- */

/* HELP text: backslash and newline escaped. Label values: also double quotes. */
static void sb_escaped(orch_sbuf *b, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            orch_sbuf_str(b, "\\\\");
        else if (*p == '\n')
            orch_sbuf_str(b, "\\n");
        else if (quote && *p == '"')
            orch_sbuf_str(b, "\\\"");
        else
            orch_sbuf_add(b, p, 1);
    }
}

/*
 * Numbers as Prometheus clients write them: integers without a fraction,
 * others in the shortest form that reads back as the same double, and
 * +Inf, -Inf, NaN.
 */
static void fmt_value(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void sb_value(orch_sbuf *b, double v)
{
    char buf[64];
    fmt_value(buf, sizeof(buf), v);
    orch_sbuf_str(b, buf);
}

/* "{a="x",b="y"}" plus an optional extra label (le), or nothing without labels. */
static void sb_labels(orch_sbuf *b, const metric *s, const char *extra_name,
                      const char *extra_value)
{
    const family *f = s->fam;
    if (f->nlabels == 0 && extra_name == NULL)
        return;
    orch_sbuf_str(b, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            orch_sbuf_str(b, ",");
        orch_sbuf_str(b, f->label_names[i]);
        orch_sbuf_str(b, "=\"");
        sb_escaped(b, s->values[i], true);
        orch_sbuf_str(b, "\"");
    }
    if (extra_name != NULL) {
        if (f->nlabels > 0)
            orch_sbuf_str(b, ",");
        orch_sbuf_str(b, extra_name);
        orch_sbuf_str(b, "=\"");
        orch_sbuf_str(b, extra_value);
        orch_sbuf_str(b, "\"");
    }
    orch_sbuf_str(b, "}");
}

static const char *type_name(metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static int cmp_family(const void *a, const void *b)
{
    return strcmp((*(family *const *)a)->name, (*(family *const *)b)->name);
}

static int cmp_series(const void *a, const void *b)
{
    return strcmp((*(metric *const *)a)->sortkey, (*(metric *const *)b)->sortkey);
}

static void render_histogram(orch_sbuf *b, const family *f, const metric *s)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < f->nbounds; i++) {
        cum += atomic_load_explicit(&((metric *)s)->buckets[i], memory_order_relaxed);
        char le[64];
        fmt_value(le, sizeof(le), f->bounds[i]);
        orch_sbuf_str(b, f->name);
        orch_sbuf_str(b, "_bucket");
        sb_labels(b, s, "le", le);
        orch_sbuf_str(b, " ");
        sb_value(b, (double)cum);
        orch_sbuf_str(b, "\n");
    }
    /* +Inf counts everything, so that it equals _count even mid-update. */
    uint64_t count = atomic_load_explicit(&((metric *)s)->count, memory_order_relaxed);
    if (count < cum)
        count = cum;
    orch_sbuf_str(b, f->name);
    orch_sbuf_str(b, "_bucket");
    sb_labels(b, s, "le", "+Inf");
    orch_sbuf_str(b, " ");
    sb_value(b, (double)count);
    orch_sbuf_str(b, "\n");
    orch_sbuf_str(b, f->name);
    orch_sbuf_str(b, "_sum");
    sb_labels(b, s, NULL, NULL);
    orch_sbuf_str(b, " ");
    sb_value(b, u2d(atomic_load_explicit(&((metric *)s)->v, memory_order_relaxed)));
    orch_sbuf_str(b, "\n");
    orch_sbuf_str(b, f->name);
    orch_sbuf_str(b, "_count");
    sb_labels(b, s, NULL, NULL);
    orch_sbuf_str(b, " ");
    sb_value(b, (double)count);
    orch_sbuf_str(b, "\n");
}

char *metrics_render(metrics *m, size_t *len)
{
    if (m == NULL)
        return NULL;
    /* Collectors first, without the lock: they register and update metrics. */
    metrics_collect_fn fns[MAX_COLLECTORS];
    void *args[MAX_COLLECTORS];
    pthread_mutex_lock(&m->mu);
    size_t ncol = m->ncollectors;
    for (size_t i = 0; i < ncol; i++) {
        fns[i] = m->collectors[i].fn;
        args[i] = m->collectors[i].arg;
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < ncol; i++)
        fns[i](args[i], m);

    orch_sbuf b = {0};
    orch_sbuf_str(&b, ""); /* an empty registry renders as "" rather than NULL */
    pthread_mutex_lock(&m->mu);
    family **fams = calloc(m->nfamilies ? m->nfamilies : 1, sizeof(*fams));
    if (fams == NULL) {
        b.oom = true;
        goto out;
    }
    size_t nf = 0;
    for (family *f = m->families; f != NULL; f = f->next)
        fams[nf++] = f;
    qsort(fams, nf, sizeof(*fams), cmp_family);
    for (size_t i = 0; i < nf && !b.oom; i++) {
        const family *f = fams[i];
        orch_sbuf_str(&b, "# HELP ");
        orch_sbuf_str(&b, f->name);
        orch_sbuf_str(&b, " ");
        sb_escaped(&b, f->help, false);
        orch_sbuf_str(&b, "\n# TYPE ");
        orch_sbuf_str(&b, f->name);
        orch_sbuf_str(&b, " ");
        orch_sbuf_str(&b, type_name(f->type));
        orch_sbuf_str(&b, "\n");
        size_t ns = 0;
        for (metric *s = f->series; s != NULL; s = s->next)
            ns++;
        metric **ser = calloc(ns ? ns : 1, sizeof(*ser));
        if (ser == NULL) {
            b.oom = true;
            break;
        }
        ns = 0;
        for (metric *s = f->series; s != NULL; s = s->next)
            ser[ns++] = s;
        qsort(ser, ns, sizeof(*ser), cmp_series);
        for (size_t k = 0; k < ns; k++) {
            if (f->type == METRIC_HISTOGRAM) {
                render_histogram(&b, f, ser[k]);
            } else {
                orch_sbuf_str(&b, f->name);
                sb_labels(&b, ser[k], NULL, NULL);
                orch_sbuf_str(&b, " ");
                sb_value(&b, metric_value(ser[k]));
                orch_sbuf_str(&b, "\n");
            }
        }
        free(ser);
    }
out:
    pthread_mutex_unlock(&m->mu);
    free(fams);
    size_t n = b.len;
    char *text = orch_sbuf_finish(&b);
    if (text != NULL && len != NULL)
        *len = n;
    return text;
}
