/*
 * gtid.c: GTID sets of MySQL and MariaDB.
 *
 * Representation. A set holds one of two sorted arrays, chosen by its flavor:
 *
 *   MariaDB: mdb[], one {domain, server, seq} per (domain, server), sorted by
 *     domain then server, seq the highest seen. The entries of one domain are
 *     adjacent, so per-domain work (the highest seq is what counts) is a walk
 *     over runs of equal domain, two sets side by side (mdb_walk).
 *
 *   MySQL: sid[], one per (uuid, tag), sorted by the uuid's 16 bytes (the same
 *     order as its lower-case text) then tag ("" first). Each holds its
 *     transaction numbers as inclusive intervals, sorted, disjoint and not
 *     adjacent (1-3 and 4-5 are stored as 1-5), never empty. With that
 *     invariant, set algebra is a merge of sorted lists and equality is equality
 *     of arrays.
 *
 * Parsing appends entries in text order and sorts and merges once at the end,
 * so even a hostile 1 MiB text costs O(n log n). Union and subtract walk both
 * inputs in order and append to the result, which stays sorted by construction.
 */
#include "gtid.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mdb_gtid {
    uint32_t domain;
    uint32_t server;
    uint64_t seq;
} mdb_gtid;

typedef struct my_ival {
    uint64_t first, last; /* inclusive, 1 <= first <= last <= ORCH_GTID_MYSQL_GNO_MAX */
} my_ival;

typedef struct my_sid {
    uint8_t uuid[16];
    char tag[ORCH_GTID_TAG_MAX + 1]; /* lower case; "" when untagged */
    my_ival *iv;
    size_t n, cap;
} my_sid;

struct orch_gtid_set {
    orch_gtid_flavor flavor;
    mdb_gtid *mdb; /* MariaDB only */
    size_t n_mdb, cap_mdb;
    my_sid *sid; /* MySQL only */
    size_t n_sid, cap_sid;
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * Makes room for need elements of size bytes in arr (capacity *cap). Returns
 * the possibly moved array, or NULL (arr untouched) when out of memory.
 */
static void *grow(void *arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return arr;
    size_t ncap = *cap ? *cap : 4;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return NULL;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / size)
        return NULL;
    void *p = realloc(arr, ncap * size);
    if (p == NULL)
        return NULL;
    *cap = ncap;
    return p;
}

static bool valid_flavor(orch_gtid_flavor flavor)
{
    return flavor == ORCH_GTID_MYSQL || flavor == ORCH_GTID_MARIADB;
}

const char *orch_gtid_flavor_name(orch_gtid_flavor flavor)
{
    switch (flavor) {
    case ORCH_GTID_MYSQL:
        return "mysql";
    case ORCH_GTID_MARIADB:
        return "mariadb";
    }
    return "unknown";
}

const char *orch_gtid_cmp_name(orch_gtid_cmp cmp)
{
    switch (cmp) {
    case ORCH_GTID_EQUAL:
        return "equal";
    case ORCH_GTID_SUBSET:
        return "subset";
    case ORCH_GTID_SUPERSET:
        return "superset";
    case ORCH_GTID_DIVERGED:
        return "diverged";
    }
    return "unknown";
}

/* ---- construction -------------------------------------------------------- */

orch_gtid_set *orch_gtid_set_new(orch_gtid_flavor flavor)
{
    if (!valid_flavor(flavor))
        return NULL;
    orch_gtid_set *set = calloc(1, sizeof(*set));
    if (set == NULL)
        return NULL;
    set->flavor = flavor;
    return set;
}

void orch_gtid_set_free(orch_gtid_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n_sid; i++)
        free(set->sid[i].iv);
    free(set->sid);
    free(set->mdb);
    free(set);
}

orch_gtid_flavor orch_gtid_set_flavor(const orch_gtid_set *set)
{
    assert(set != NULL);
    return set->flavor;
}

/* Appends a MariaDB entry (no ordering or duplicate check). */
static bool mdb_append(orch_gtid_set *set, uint32_t domain, uint32_t server, uint64_t seq)
{
    mdb_gtid *p = grow(set->mdb, &set->cap_mdb, set->n_mdb + 1, sizeof(*p));
    if (p == NULL)
        return false;
    set->mdb = p;
    set->mdb[set->n_mdb++] = (mdb_gtid){domain, server, seq};
    return true;
}

/* Appends an empty sid for (uuid, tag) and returns it, or NULL when out of memory. */
static my_sid *sid_append(orch_gtid_set *set, const uint8_t uuid[16], const char *tag)
{
    my_sid *p = grow(set->sid, &set->cap_sid, set->n_sid + 1, sizeof(*p));
    if (p == NULL)
        return NULL;
    set->sid = p;
    my_sid *s = &set->sid[set->n_sid++];
    memset(s, 0, sizeof(*s));
    memcpy(s->uuid, uuid, sizeof(s->uuid));
    snprintf(s->tag, sizeof(s->tag), "%s", tag);
    return s;
}

/* Appends [first, last] to s without merging. */
static bool ival_append(my_sid *s, uint64_t first, uint64_t last)
{
    my_ival *p = grow(s->iv, &s->cap, s->n + 1, sizeof(*p));
    if (p == NULL)
        return false;
    s->iv = p;
    s->iv[s->n++] = (my_ival){first, last};
    return true;
}

/*
 * Adds [first, last] to s, whose intervals are normalized and whose last
 * interval starts at or before first: merges with that interval when they
 * overlap or touch, appends otherwise. Feeding intervals in order of first
 * builds a normalized list.
 */
static bool ival_push(my_sid *s, uint64_t first, uint64_t last)
{
    if (s->n > 0) {
        my_ival *tail = &s->iv[s->n - 1];
        /* tail->last <= ORCH_GTID_MYSQL_GNO_MAX, so + 1 cannot wrap. */
        if (first <= tail->last + 1) {
            if (last > tail->last)
                tail->last = last;
            return true;
        }
    }
    return ival_append(s, first, last);
}

static int sid_key_cmp(const my_sid *a, const my_sid *b)
{
    int c = memcmp(a->uuid, b->uuid, sizeof(a->uuid));
    return c != 0 ? c : strcmp(a->tag, b->tag);
}

static int mdb_cmp_qsort(const void *pa, const void *pb)
{
    const mdb_gtid *a = pa, *b = pb;
    if (a->domain != b->domain)
        return a->domain < b->domain ? -1 : 1;
    if (a->server != b->server)
        return a->server < b->server ? -1 : 1;
    return 0;
}

static int sid_cmp_qsort(const void *pa, const void *pb)
{
    return sid_key_cmp(pa, pb);
}

static int ival_cmp_qsort(const void *pa, const void *pb)
{
    const my_ival *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return 0;
}

/* Sorts a freshly parsed MariaDB set and keeps one entry per (domain, server), the highest seq. */
static void mdb_normalize(orch_gtid_set *set)
{
    if (set->n_mdb == 0)
        return;
    qsort(set->mdb, set->n_mdb, sizeof(set->mdb[0]), mdb_cmp_qsort);
    size_t w = 0;
    for (size_t r = 1; r < set->n_mdb; r++) {
        if (mdb_cmp_qsort(&set->mdb[w], &set->mdb[r]) == 0) {
            if (set->mdb[r].seq > set->mdb[w].seq)
                set->mdb[w].seq = set->mdb[r].seq;
        } else {
            set->mdb[++w] = set->mdb[r];
        }
    }
    set->n_mdb = w + 1;
}

/* Sorts and merges the intervals of s in place. */
static void ival_normalize(my_sid *s)
{
    if (s->n == 0)
        return;
    qsort(s->iv, s->n, sizeof(s->iv[0]), ival_cmp_qsort);
    size_t w = 0;
    for (size_t r = 1; r < s->n; r++) {
        if (s->iv[r].first <= s->iv[w].last + 1) {
            if (s->iv[r].last > s->iv[w].last)
                s->iv[w].last = s->iv[r].last;
        } else {
            s->iv[++w] = s->iv[r];
        }
    }
    s->n = w + 1;
}

/*
 * Sorts a freshly parsed MySQL set, merges sids of the same (uuid, tag) and
 * normalizes their intervals. On NOMEM the set stays freeable.
 */
static bool sid_normalize(orch_gtid_set *set)
{
    if (set->n_sid == 0)
        return true;
    /* qsort is not stable, but order among equal keys does not matter: intervals get sorted. */
    qsort(set->sid, set->n_sid, sizeof(set->sid[0]), sid_cmp_qsort);
    size_t w = 0;
    for (size_t r = 1; r < set->n_sid; r++) {
        my_sid *dst = &set->sid[w], *src = &set->sid[r];
        if (sid_key_cmp(dst, src) != 0) {
            set->sid[++w] = *src;
            continue;
        }
        my_ival *p = grow(dst->iv, &dst->cap, dst->n + src->n, sizeof(*p));
        if (p == NULL) {
            /* Keep every array owned exactly once: compact the rest after w. */
            memmove(&set->sid[w + 1], src, (set->n_sid - r) * sizeof(*src));
            set->n_sid = w + 1 + (set->n_sid - r);
            return false;
        }
        dst->iv = p;
        memcpy(dst->iv + dst->n, src->iv, src->n * sizeof(*p));
        dst->n += src->n;
        free(src->iv);
        src->iv = NULL;
    }
    set->n_sid = w + 1;
    for (size_t i = 0; i < set->n_sid; i++)
        ival_normalize(&set->sid[i]);
    return true;
}

orch_gtid_set *orch_gtid_set_clone(const orch_gtid_set *set)
{
    if (set == NULL)
        return NULL;
    orch_gtid_set *c = orch_gtid_set_new(set->flavor);
    if (c == NULL)
        return NULL;
    if (set->n_mdb > 0) {
        c->mdb = malloc(set->n_mdb * sizeof(c->mdb[0]));
        if (c->mdb == NULL)
            goto nomem;
        memcpy(c->mdb, set->mdb, set->n_mdb * sizeof(c->mdb[0]));
        c->n_mdb = c->cap_mdb = set->n_mdb;
    }
    for (size_t i = 0; i < set->n_sid; i++) {
        const my_sid *s = &set->sid[i];
        my_sid *d = sid_append(c, s->uuid, s->tag);
        if (d == NULL)
            goto nomem;
        d->iv = malloc(s->n * sizeof(d->iv[0]));
        if (d->iv == NULL)
            goto nomem;
        memcpy(d->iv, s->iv, s->n * sizeof(d->iv[0]));
        d->n = d->cap = s->n;
    }
    return c;
nomem:
    orch_gtid_set_free(c);
    return NULL;
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct parser {
    const char *text; /* start of the input, for offsets */
    const char *p;    /* cursor */
    char *msg;
    size_t msglen;
} parser;

#define QUOTE_MAX 40 /* longest excerpt of the input quoted in a message */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_tag_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_tag_char(char c)
{
    return is_tag_start(c) || is_digit(c);
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = to_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void skip_space(parser *ps)
{
    while (is_space(*ps->p))
        ps->p++;
}

static size_t offset_of(const parser *ps, const char *at)
{
    return (size_t)(at - ps->text);
}

/* Length of the excerpt quoted from at: printable characters up to ',' or whitespace, capped. */
static int quote_len(const char *at)
{
    int n = 0;
    while (n < QUOTE_MAX && at[n] > 0x20 && at[n] < 0x7f && at[n] != ',')
        n++;
    return n;
}

/* Describes the character at the cursor for messages: 'x', byte 0x07, end of text. */
static const char *char_desc(char c, char *buf, size_t len)
{
    if (c == '\0')
        return "end of text";
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, len, "'%c'", c);
    else
        snprintf(buf, len, "byte 0x%02x", (unsigned)(unsigned char)c);
    return buf;
}

/* Fails with "expected <what> at offset N, found <char>". */
static orch_err fail_expected(parser *ps, const char *what)
{
    char cbuf[16];
    return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE, "expected %s at offset %zu, found %s",
                     what, offset_of(ps, ps->p), char_desc(*ps->p, cbuf, sizeof(cbuf)));
}

/*
 * Reads the decimal number at the cursor into *out (no sign, no spaces). PARSE
 * when there is no digit; RANGE when it exceeds max (after reading all of it,
 * so the message quotes the whole number).
 */
static orch_err parse_number(parser *ps, uint64_t max, const char *what, uint64_t *out)
{
    const char *start = ps->p;
    if (!is_digit(*start))
        return fail_expected(ps, what);
    uint64_t v = 0;
    bool over = false;
    for (; is_digit(*ps->p); ps->p++) {
        unsigned d = (unsigned)(*ps->p - '0');
        if (over || v > (UINT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (over || v > max) {
        int len = (int)(ps->p - start) < QUOTE_MAX ? (int)(ps->p - start) : QUOTE_MAX;
        return orch_fail(ps->msg, ps->msglen, ORCH_ERR_RANGE,
                         "%s '%.*s%s' out of range (max %" PRIu64 ") at offset %zu", what, len,
                         start, len < ps->p - start ? "..." : "", max, offset_of(ps, start));
    }
    *out = v;
    return ORCH_OK;
}

/*
 * After an entry: skips whitespace and then accepts the end of the text (sets
 * *done) or a ',' (moves past it). Anything else is trailing junk.
 */
static orch_err end_of_entry(parser *ps, const char *entry, bool *done)
{
    skip_space(ps);
    if (*ps->p == '\0') {
        *done = true;
        return ORCH_OK;
    }
    if (*ps->p == ',') {
        ps->p++;
        *done = false;
        return ORCH_OK;
    }
    char cbuf[16];
    return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                     "unexpected %s at offset %zu after entry '%.*s' (offset %zu)",
                     char_desc(*ps->p, cbuf, sizeof(cbuf)), offset_of(ps, ps->p), quote_len(entry),
                     entry, offset_of(ps, entry));
}

/* Fails on an empty entry (",," or a leading or trailing ','). */
static orch_err fail_empty_entry(parser *ps)
{
    return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE, "empty entry at offset %zu",
                     offset_of(ps, ps->p));
}

/* True when the entry at s contains ':' before its end: MySQL syntax. */
static bool entry_has_colon(const char *s)
{
    for (; *s != '\0' && *s != ','; s++)
        if (*s == ':')
            return true;
    return false;
}

/* True when s starts with "digits-digits-digits" and then ends the entry: MariaDB syntax. */
static bool entry_is_mariadb(const char *s)
{
    for (int part = 0; part < 3; part++) {
        if (!is_digit(*s))
            return false;
        while (is_digit(*s))
            s++;
        if (part < 2 && *s++ != '-')
            return false;
    }
    return *s == '\0' || *s == ',' || is_space(*s);
}

static orch_err parse_mariadb(parser *ps, orch_gtid_set *set)
{
    orch_err err;
    skip_space(ps);
    if (*ps->p == '\0')
        return ORCH_OK;
    for (bool done = false; !done;) {
        skip_space(ps);
        const char *entry = ps->p;
        if (*entry == ',' || *entry == '\0')
            return fail_empty_entry(ps);
        if (entry_has_colon(entry))
            return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                             "MySQL-style entry '%.*s' in a MariaDB GTID set at offset %zu",
                             quote_len(entry), entry, offset_of(ps, entry));
        uint64_t domain, server, seq;
        if ((err = parse_number(ps, UINT32_MAX, "domain id", &domain)) != ORCH_OK)
            return err;
        if (*ps->p != '-')
            return fail_expected(ps, "'-' after the domain id");
        ps->p++;
        if ((err = parse_number(ps, UINT32_MAX, "server id", &server)) != ORCH_OK)
            return err;
        if (*ps->p != '-')
            return fail_expected(ps, "'-' after the server id");
        ps->p++;
        if ((err = parse_number(ps, UINT64_MAX, "sequence number", &seq)) != ORCH_OK)
            return err;
        if (!mdb_append(set, (uint32_t)domain, (uint32_t)server, seq))
            return orch_fail(ps->msg, ps->msglen, ORCH_ERR_NOMEM, "out of memory");
        if ((err = end_of_entry(ps, entry, &done)) != ORCH_OK)
            return err;
    }
    mdb_normalize(set);
    return ORCH_OK;
}

/* Reads an 8-4-4-4-12 hex uuid at the cursor, any case. */
static orch_err parse_uuid(parser *ps, uint8_t uuid[16])
{
    const char *start = ps->p;
    int nib = 0;
    /* Stops at the first wrong character, so never reads past the terminating NUL. */
    for (int i = 0; i < 36; i++) {
        char c = start[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        int h = dash ? -1 : hex_value(c);
        if ((dash && c != '-') || (!dash && h < 0)) {
            if (entry_is_mariadb(start))
                return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                                 "MariaDB-style entry '%.*s' in a MySQL GTID set at offset %zu",
                                 quote_len(start), start, offset_of(ps, start));
            return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE, "bad uuid '%.*s' at offset %zu",
                             quote_len(start), start, offset_of(ps, start));
        }
        if (dash)
            continue;
        if (nib % 2 == 0)
            uuid[nib / 2] = (uint8_t)(h << 4);
        else
            uuid[nib / 2] |= (uint8_t)h;
        nib++;
    }
    ps->p = start + 36;
    return ORCH_OK;
}

/* Reads a tag ([a-z_][a-z0-9_]{0,31}, any case) at the cursor into tag, lower-cased. */
static orch_err parse_tag(parser *ps, char tag[ORCH_GTID_TAG_MAX + 1])
{
    const char *start = ps->p;
    size_t n = 0;
    while (is_tag_char(start[n]))
        n++;
    if (n > ORCH_GTID_TAG_MAX)
        return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                         "tag '%.*s%s' longer than %d characters at offset %zu",
                         n < QUOTE_MAX ? (int)n : QUOTE_MAX, start, n > QUOTE_MAX ? "..." : "",
                         ORCH_GTID_TAG_MAX, offset_of(ps, start));
    for (size_t i = 0; i < n; i++)
        tag[i] = to_lower(start[i]);
    tag[n] = '\0';
    ps->p = start + n;
    return ORCH_OK;
}

/* Reads "N" or "N-M" at the cursor: 1 <= N <= M <= ORCH_GTID_MYSQL_GNO_MAX. */
static orch_err parse_interval(parser *ps, my_ival *out)
{
    orch_err err;
    const char *start = ps->p;
    uint64_t first, last;
    if ((err = parse_number(ps, ORCH_GTID_MYSQL_GNO_MAX, "transaction number", &first)) != ORCH_OK)
        return err;
    last = first;
    if (*ps->p == '-') {
        ps->p++;
        if ((err = parse_number(ps, ORCH_GTID_MYSQL_GNO_MAX, "end of interval", &last)) != ORCH_OK)
            return err;
    }
    int len = (int)(ps->p - start);
    if (first == 0)
        return orch_fail(ps->msg, ps->msglen, ORCH_ERR_RANGE,
                         "bad interval '%.*s' at offset %zu: transaction numbers start at 1", len,
                         start, offset_of(ps, start));
    if (first > last)
        return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                         "bad interval '%.*s' at offset %zu: start after end", len, start,
                         offset_of(ps, start));
    *out = (my_ival){first, last};
    return ORCH_OK;
}

/*
 * One MySQL entry: uuid, then ':'-separated parts, each an interval or a tag
 * that applies to the intervals after it. Every tag, and the uuid itself when no
 * tag follows it, needs at least one interval. Each (uuid, tag) group becomes a
 * sid appended to set; sid_normalize merges them afterwards.
 */
static orch_err parse_mysql_entry(parser *ps, orch_gtid_set *set)
{
    orch_err err;
    const char *entry = ps->p;
    uint8_t uuid[16];
    if ((err = parse_uuid(ps, uuid)) != ORCH_OK)
        return err;
    skip_space(ps);
    if (*ps->p != ':')
        return fail_expected(ps, "':' and intervals after the uuid");

    char tag[ORCH_GTID_TAG_MAX + 1] = "";
    const char *tag_at = NULL;
    my_sid *group = NULL; /* sid of the current (uuid, tag), once it has an interval */
    while (*ps->p == ':') {
        ps->p++;
        skip_space(ps);
        if (is_digit(*ps->p)) {
            my_ival iv = {0, 0};
            if ((err = parse_interval(ps, &iv)) != ORCH_OK)
                return err;
            if (group == NULL && (group = sid_append(set, uuid, tag)) == NULL)
                return orch_fail(ps->msg, ps->msglen, ORCH_ERR_NOMEM, "out of memory");
            if (!ival_append(group, iv.first, iv.last))
                return orch_fail(ps->msg, ps->msglen, ORCH_ERR_NOMEM, "out of memory");
        } else if (is_tag_start(*ps->p)) {
            if (tag_at != NULL && group == NULL)
                break; /* the previous tag has no interval: reported below */
            tag_at = ps->p;
            if ((err = parse_tag(ps, tag)) != ORCH_OK)
                return err;
            group = NULL;
        } else {
            return fail_expected(ps, "an interval or a tag");
        }
        skip_space(ps);
    }
    if (group == NULL) {
        if (tag_at != NULL)
            return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                             "tag '%s' without intervals at offset %zu", tag,
                             offset_of(ps, tag_at));
        return orch_fail(ps->msg, ps->msglen, ORCH_ERR_PARSE,
                         "uuid without intervals in '%.*s' at offset %zu", quote_len(entry), entry,
                         offset_of(ps, entry));
    }
    return ORCH_OK;
}

static orch_err parse_mysql(parser *ps, orch_gtid_set *set)
{
    orch_err err;
    skip_space(ps);
    if (*ps->p == '\0')
        return ORCH_OK;
    for (bool done = false; !done;) {
        skip_space(ps);
        const char *entry = ps->p;
        if (*entry == ',' || *entry == '\0')
            return fail_empty_entry(ps);
        if ((err = parse_mysql_entry(ps, set)) != ORCH_OK)
            return err;
        if ((err = end_of_entry(ps, entry, &done)) != ORCH_OK)
            return err;
    }
    if (!sid_normalize(set))
        return orch_fail(ps->msg, ps->msglen, ORCH_ERR_NOMEM, "out of memory");
    return ORCH_OK;
}

orch_err orch_gtid_set_parse(orch_gtid_flavor flavor, const char *text, orch_gtid_set **out,
                             char *msg, size_t msglen)
{
    if (text == NULL || out == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no GTID text");
    if (!valid_flavor(flavor))
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "unknown GTID flavor %d", (int)flavor);
    size_t len = strnlen(text, (size_t)ORCH_GTID_TEXT_MAX + 1);
    if (len > ORCH_GTID_TEXT_MAX)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "GTID text longer than %d bytes",
                         ORCH_GTID_TEXT_MAX);

    orch_gtid_set *set = orch_gtid_set_new(flavor);
    if (set == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
    parser ps = {.text = text, .p = text, .msg = msg, .msglen = msglen};
    orch_err err = flavor == ORCH_GTID_MARIADB ? parse_mariadb(&ps, set) : parse_mysql(&ps, set);
    if (err != ORCH_OK) {
        orch_gtid_set_free(set);
        return err;
    }
    *out = set;
    return ORCH_OK;
}

/* ---- formatting ---------------------------------------------------------- */

/* snprintf-style output: writes what fits, counts everything. */
typedef struct out_buf {
    char *buf;
    size_t cap;  /* bytes of buf, including room for the NUL */
    size_t need; /* length of the full text so far */
} out_buf;

static void out_printf(out_buf *o, const char *fmt, ...) ORCH_PRINTF(2, 3);

static void out_printf(out_buf *o, const char *fmt, ...)
{
    size_t room = o->need < o->cap ? o->cap - o->need : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room > 0 ? o->buf + o->need : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->need += (size_t)n;
}

static void out_uuid(out_buf *o, const uint8_t u[16])
{
    out_printf(o, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
               u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
               u[14], u[15]);
}

size_t orch_gtid_set_format_to(const orch_gtid_set *set, char *buf, size_t buflen)
{
    assert(set != NULL);
    out_buf o = {.buf = buf, .cap = buf != NULL ? buflen : 0, .need = 0};
    if (o.cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < set->n_mdb; i++) {
        const mdb_gtid *g = &set->mdb[i];
        out_printf(&o, "%s%" PRIu32 "-%" PRIu32 "-%" PRIu64, i > 0 ? "," : "", g->domain, g->server,
                   g->seq);
    }
    for (size_t i = 0; i < set->n_sid; i++) {
        const my_sid *s = &set->sid[i];
        if (i == 0 || memcmp(s->uuid, set->sid[i - 1].uuid, sizeof(s->uuid)) != 0) {
            if (i > 0)
                out_printf(&o, ",");
            out_uuid(&o, s->uuid);
        }
        if (s->tag[0] != '\0')
            out_printf(&o, ":%s", s->tag);
        for (size_t k = 0; k < s->n; k++) {
            if (s->iv[k].first == s->iv[k].last)
                out_printf(&o, ":%" PRIu64, s->iv[k].first);
            else
                out_printf(&o, ":%" PRIu64 "-%" PRIu64, s->iv[k].first, s->iv[k].last);
        }
    }
    return o.need;
}

char *orch_gtid_set_format(const orch_gtid_set *set)
{
    size_t need = orch_gtid_set_format_to(set, NULL, 0);
    char *s = malloc(need + 1);
    if (s == NULL)
        return NULL;
    orch_gtid_set_format_to(set, s, need + 1);
    return s;
}

/* ---- MariaDB: walking two positions domain by domain -------------------- */

/*
 * One step per domain present in a or b, in ascending order. For the current
 * domain: in_a/in_b say whether each set has it, [a_lo, a_hi) and [b_lo, b_hi)
 * are its entries, a_max/b_max the highest seq (0 when absent).
 */
typedef struct mdb_walk {
    const orch_gtid_set *a, *b;
    size_t a_lo, a_hi, b_lo, b_hi;
    bool in_a, in_b;
    uint64_t a_max, b_max;
} mdb_walk;

static void mdb_walk_init(mdb_walk *w, const orch_gtid_set *a, const orch_gtid_set *b)
{
    *w = (mdb_walk){.a = a, .b = b};
}

/* Finds the end of the domain starting at set->mdb[lo] and its highest seq. */
static size_t mdb_domain_end(const orch_gtid_set *set, size_t lo, uint64_t *max)
{
    size_t hi = lo;
    *max = 0;
    while (hi < set->n_mdb && set->mdb[hi].domain == set->mdb[lo].domain) {
        if (set->mdb[hi].seq > *max)
            *max = set->mdb[hi].seq;
        hi++;
    }
    return hi;
}

static bool mdb_walk_next(mdb_walk *w)
{
    size_t i = w->a_hi, j = w->b_hi;
    bool more_a = i < w->a->n_mdb, more_b = j < w->b->n_mdb;
    if (!more_a && !more_b)
        return false;
    uint32_t da = more_a ? w->a->mdb[i].domain : 0, db = more_b ? w->b->mdb[j].domain : 0;
    w->in_a = more_a && (!more_b || da <= db);
    w->in_b = more_b && (!more_a || db <= da);
    w->a_lo = w->a_hi = i;
    w->b_lo = w->b_hi = j;
    w->a_max = w->b_max = 0;
    if (w->in_a)
        w->a_hi = mdb_domain_end(w->a, i, &w->a_max);
    if (w->in_b)
        w->b_hi = mdb_domain_end(w->b, j, &w->b_max);
    return true;
}

/* ---- MySQL: interval lists ----------------------------------------------- */

static uint64_t ival_count(const my_sid *s)
{
    uint64_t n = 0;
    for (size_t k = 0; k < s->n; k++)
        n = sat_add(n, s->iv[k].last - s->iv[k].first + 1);
    return n;
}

/* True when every number of b's intervals is in a's (both normalized). */
static bool ival_contains(const my_sid *a, const my_sid *b)
{
    size_t i = 0;
    for (size_t j = 0; j < b->n; j++) {
        while (i < a->n && a->iv[i].last < b->iv[j].first)
            i++;
        /* a's intervals are disjoint and not adjacent: only a->iv[i] can cover b->iv[j]. */
        if (i == a->n || a->iv[i].first > b->iv[j].first || a->iv[i].last < b->iv[j].last)
            return false;
    }
    return true;
}

/* How many numbers a and b have in common. */
static uint64_t ival_overlap(const my_sid *a, const my_sid *b)
{
    uint64_t n = 0;
    size_t i = 0, j = 0;
    while (i < a->n && j < b->n) {
        uint64_t lo = a->iv[i].first > b->iv[j].first ? a->iv[i].first : b->iv[j].first;
        uint64_t hi = a->iv[i].last < b->iv[j].last ? a->iv[i].last : b->iv[j].last;
        if (lo <= hi)
            n = sat_add(n, hi - lo + 1);
        if (a->iv[i].last < b->iv[j].last)
            i++;
        else
            j++;
    }
    return n;
}

/* dst (empty) = a ∪ b. */
static bool ival_union(my_sid *dst, const my_sid *a, const my_sid *b)
{
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        const my_ival *next;
        if (j == b->n || (i < a->n && a->iv[i].first <= b->iv[j].first))
            next = &a->iv[i++];
        else
            next = &b->iv[j++];
        if (!ival_push(dst, next->first, next->last))
            return false;
    }
    return true;
}

/* dst (empty) = a - b. */
static bool ival_subtract(my_sid *dst, const my_sid *a, const my_sid *b)
{
    size_t j = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint64_t cur = a->iv[i].first, last = a->iv[i].last;
        while (j < b->n && b->iv[j].last < cur)
            j++;
        /* b->iv[k] for k >= j end at or after cur; walk those that start within a->iv[i]. */
        bool covered = false;
        for (size_t k = j; k < b->n && b->iv[k].first <= last; k++) {
            if (b->iv[k].first > cur && !ival_push(dst, cur, b->iv[k].first - 1))
                return false;
            if (b->iv[k].last >= last) {
                covered = true;
                break;
            }
            cur = b->iv[k].last + 1; /* cannot wrap: last <= ORCH_GTID_MYSQL_GNO_MAX */
        }
        if (!covered && !ival_push(dst, cur, last))
            return false;
    }
    return true;
}

/*
 * Walks the sids of a and b side by side by key. Returns, for the next key
 * present in either, the sid of each side or NULL.
 */
typedef struct sid_walk {
    const orch_gtid_set *a, *b;
    size_t i, j;
    const my_sid *sa, *sb;
} sid_walk;

static bool sid_walk_next(sid_walk *w)
{
    bool more_a = w->i < w->a->n_sid, more_b = w->j < w->b->n_sid;
    if (!more_a && !more_b)
        return false;
    int c = !more_a ? 1 : !more_b ? -1 : sid_key_cmp(&w->a->sid[w->i], &w->b->sid[w->j]);
    w->sa = c <= 0 ? &w->a->sid[w->i++] : NULL;
    w->sb = c >= 0 ? &w->b->sid[w->j++] : NULL;
    return true;
}

/* ---- algebra ------------------------------------------------------------- */

/* Appends a sid for key's (uuid, tag), or NULL when out of memory. */
static my_sid *sid_append_like(orch_gtid_set *set, const my_sid *key)
{
    return sid_append(set, key->uuid, key->tag);
}

static bool mdb_union(orch_gtid_set *r, const orch_gtid_set *a, const orch_gtid_set *b)
{
    size_t i = 0, j = 0;
    while (i < a->n_mdb || j < b->n_mdb) {
        int c = i == a->n_mdb ? 1 : j == b->n_mdb ? -1 : mdb_cmp_qsort(&a->mdb[i], &b->mdb[j]);
        const mdb_gtid *g = c <= 0 ? &a->mdb[i] : &b->mdb[j];
        uint64_t seq = g->seq;
        if (c == 0 && b->mdb[j].seq > seq)
            seq = b->mdb[j].seq;
        if (!mdb_append(r, g->domain, g->server, seq))
            return false;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
    }
    return true;
}

static bool sid_union(orch_gtid_set *r, const orch_gtid_set *a, const orch_gtid_set *b)
{
    static const my_sid none = {.n = 0};
    sid_walk w = {.a = a, .b = b};
    while (sid_walk_next(&w)) {
        const my_sid *key = w.sa != NULL ? w.sa : w.sb;
        my_sid *dst = sid_append_like(r, key);
        if (dst == NULL || !ival_union(dst, w.sa ? w.sa : &none, w.sb ? w.sb : &none))
            return false;
    }
    return true;
}

static bool mdb_subtract(orch_gtid_set *r, const orch_gtid_set *a, const orch_gtid_set *b)
{
    mdb_walk w;
    mdb_walk_init(&w, a, b);
    while (mdb_walk_next(&w)) {
        if (!w.in_a || (w.in_b && w.a_max <= w.b_max))
            continue;
        for (size_t k = w.a_lo; k < w.a_hi; k++) {
            const mdb_gtid *g = &a->mdb[k];
            if (w.in_b && g->seq <= w.b_max)
                continue;
            if (!mdb_append(r, g->domain, g->server, g->seq))
                return false;
        }
    }
    return true;
}

static bool sid_subtract(orch_gtid_set *r, const orch_gtid_set *a, const orch_gtid_set *b)
{
    sid_walk w = {.a = a, .b = b};
    while (sid_walk_next(&w)) {
        if (w.sa == NULL)
            continue;
        if (w.sb != NULL && ival_contains(w.sb, w.sa))
            continue; /* nothing left: no empty sid in the result */
        my_sid *dst = sid_append_like(r, w.sa);
        if (dst == NULL)
            return false;
        bool ok = w.sb != NULL ? ival_subtract(dst, w.sa, w.sb)
                               : ival_union(dst, w.sa, &(const my_sid){.n = 0});
        if (!ok)
            return false;
    }
    return true;
}

/* Shared frame of union and subtract: checks, allocation, cleanup. */
static orch_err combine(const orch_gtid_set *a, const orch_gtid_set *b, orch_gtid_set **out,
                        bool subtract)
{
    if (a == NULL || b == NULL || out == NULL || a->flavor != b->flavor)
        return ORCH_ERR_INVAL;
    orch_gtid_set *r = orch_gtid_set_new(a->flavor);
    if (r == NULL)
        return ORCH_ERR_NOMEM;
    bool ok;
    if (a->flavor == ORCH_GTID_MARIADB)
        ok = subtract ? mdb_subtract(r, a, b) : mdb_union(r, a, b);
    else
        ok = subtract ? sid_subtract(r, a, b) : sid_union(r, a, b);
    if (!ok) {
        orch_gtid_set_free(r);
        return ORCH_ERR_NOMEM;
    }
    *out = r;
    return ORCH_OK;
}

orch_err orch_gtid_set_union(const orch_gtid_set *a, const orch_gtid_set *b, orch_gtid_set **out)
{
    return combine(a, b, out, false);
}

orch_err orch_gtid_set_subtract(const orch_gtid_set *a, const orch_gtid_set *b, orch_gtid_set **out)
{
    return combine(a, b, out, true);
}

/* ---- comparison and counting --------------------------------------------- */

/* True when a holds all of b; same flavor assumed. */
static bool holds(const orch_gtid_set *a, const orch_gtid_set *b)
{
    if (a->flavor == ORCH_GTID_MARIADB) {
        mdb_walk w;
        mdb_walk_init(&w, a, b);
        while (mdb_walk_next(&w))
            if (w.in_b && (!w.in_a || w.a_max < w.b_max))
                return false;
        return true;
    }
    sid_walk w = {.a = a, .b = b};
    while (sid_walk_next(&w))
        if (w.sb != NULL && (w.sa == NULL || !ival_contains(w.sa, w.sb)))
            return false;
    return true;
}

orch_gtid_cmp orch_gtid_set_compare(const orch_gtid_set *a, const orch_gtid_set *b)
{
    assert(a != NULL && b != NULL);
    if (a->flavor != b->flavor)
        return ORCH_GTID_DIVERGED;
    bool a_has_b = holds(a, b), b_has_a = holds(b, a);
    if (a_has_b && b_has_a)
        return ORCH_GTID_EQUAL;
    if (a_has_b)
        return ORCH_GTID_SUPERSET;
    if (b_has_a)
        return ORCH_GTID_SUBSET;
    return ORCH_GTID_DIVERGED;
}

bool orch_gtid_set_contains(const orch_gtid_set *a, const orch_gtid_set *b)
{
    assert(a != NULL && b != NULL);
    return a->flavor == b->flavor && holds(a, b);
}

bool orch_gtid_set_equal(const orch_gtid_set *a, const orch_gtid_set *b)
{
    return orch_gtid_set_compare(a, b) == ORCH_GTID_EQUAL;
}

bool orch_gtid_set_is_empty(const orch_gtid_set *set)
{
    assert(set != NULL);
    return set->n_mdb == 0 && set->n_sid == 0;
}

uint64_t orch_gtid_set_count(const orch_gtid_set *set)
{
    assert(set != NULL);
    uint64_t n = 0;
    if (set->flavor == ORCH_GTID_MARIADB) {
        mdb_walk w;
        mdb_walk_init(&w, set, set);
        while (mdb_walk_next(&w))
            n = sat_add(n, w.a_max);
        return n;
    }
    for (size_t i = 0; i < set->n_sid; i++)
        n = sat_add(n, ival_count(&set->sid[i]));
    return n;
}

uint64_t orch_gtid_set_count_missing(const orch_gtid_set *a, const orch_gtid_set *b)
{
    assert(a != NULL && b != NULL);
    if (a->flavor != b->flavor)
        return orch_gtid_set_count(a);
    uint64_t n = 0;
    if (a->flavor == ORCH_GTID_MARIADB) {
        mdb_walk w;
        mdb_walk_init(&w, a, b);
        while (mdb_walk_next(&w))
            if (w.in_a && w.a_max > w.b_max)
                n = sat_add(n, w.a_max - w.b_max);
        return n;
    }
    sid_walk w = {.a = a, .b = b};
    while (sid_walk_next(&w)) {
        if (w.sa == NULL)
            continue;
        /* Per sid the overlap never exceeds a's count, which fits: no saturation inside. */
        uint64_t have = ival_count(w.sa);
        n = sat_add(n, have - (w.sb != NULL ? ival_overlap(w.sa, w.sb) : 0));
    }
    return n;
}
