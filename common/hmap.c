/*
 * hmap.c: string-keyed hash map, open addressing with linear probing (see hmap.h).
 *
 * Why linear probing: the registry's maps are looked up tens of thousands of
 * times a second with short keys ("db12.example.com:3306"); one contiguous probe
 * run and a stored hash (compared before the string) keep that to about one cache
 * miss per lookup. The load limit of 70% (live entries and tombstones together)
 * keeps probe runs short.
 */
#include "hmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define HMAP_MIN_CAP 16

/* Marks a deleted slot; only its address matters. */
static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

uint64_t orch_hmap_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    /* FNV's low bits are weak for short keys; the table indexes by low bits. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void orch_hmap_init(orch_hmap *m)
{
    memset(m, 0, sizeof(*m));
}

void orch_hmap_fini(orch_hmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE)
            free(m->slots[i].key);
    }
    free(m->slots);
    orch_hmap_init(m);
}

/* The slot holding key, or SIZE_MAX. */
static size_t find(const orch_hmap *m, const char *key, uint64_t h)
{
    if (m->cap == 0)
        return SIZE_MAX;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const orch_hmap_slot *s = &m->slots[i];
        if (s->key == NULL)
            return SIZE_MAX;
        if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
            return i;
    }
}

void *orch_hmap_get(const orch_hmap *m, const char *key)
{
    size_t i = find(m, key, orch_hmap_hash(key));
    return i == SIZE_MAX ? NULL : m->slots[i].val;
}

/* Rehashes the live entries into a table of cap slots (dropping tombstones). */
static orch_err rehash(orch_hmap *m, size_t cap)
{
    orch_hmap_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return ORCH_ERR_NOMEM;
    size_t mask = cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        orch_hmap_slot *s = &m->slots[j];
        if (s->key == NULL || s->key == TOMBSTONE)
            continue;
        size_t i = s->hash & mask;
        while (slots[i].key != NULL)
            i = (i + 1) & mask;
        slots[i] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->count;
    return ORCH_OK;
}

orch_err orch_hmap_put(orch_hmap *m, const char *key, void *val, void **old)
{
    assert(val != NULL);
    uint64_t h = orch_hmap_hash(key);
    size_t i = find(m, key, h);
    if (i != SIZE_MAX) {
        if (old != NULL)
            *old = m->slots[i].val;
        m->slots[i].val = val;
        return ORCH_OK;
    }
    if ((m->used + 1) * 10 > m->cap * 7) {
        /* Grow when live entries need it; otherwise sweep the tombstones. */
        size_t cap = m->cap < HMAP_MIN_CAP ? HMAP_MIN_CAP : m->cap;
        while ((m->count + 1) * 10 > cap * 5)
            cap *= 2;
        orch_err err = rehash(m, cap);
        if (err != ORCH_OK)
            return err;
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return ORCH_ERR_NOMEM;
    size_t mask = m->cap - 1;
    for (i = h & mask; m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE; i = (i + 1) & mask)
        ;
    if (m->slots[i].key == NULL)
        m->used++;
    m->slots[i] = (orch_hmap_slot){.hash = h, .key = copy, .val = val};
    m->count++;
    if (old != NULL)
        *old = NULL;
    return ORCH_OK;
}

void *orch_hmap_del(orch_hmap *m, const char *key)
{
    size_t i = find(m, key, orch_hmap_hash(key));
    if (i == SIZE_MAX)
        return NULL;
    void *val = m->slots[i].val;
    free(m->slots[i].key);
    /* A slot followed by an empty one ends every probe run through it: empty it. */
    if (m->slots[(i + 1) & (m->cap - 1)].key == NULL) {
        m->slots[i] = (orch_hmap_slot){0};
        m->used--;
    } else {
        m->slots[i] = (orch_hmap_slot){.key = TOMBSTONE};
    }
    m->count--;
    return val;
}

size_t orch_hmap_count(const orch_hmap *m)
{
    return m->count;
}

bool orch_hmap_next(const orch_hmap *m, size_t *iter, const char **key, void **val)
{
    for (size_t i = *iter; i < m->cap; i++) {
        const orch_hmap_slot *s = &m->slots[i];
        if (s->key == NULL || s->key == TOMBSTONE)
            continue;
        if (key != NULL)
            *key = s->key;
        if (val != NULL)
            *val = s->val;
        *iter = i + 1;
        return true;
    }
    *iter = m->cap;
    return false;
}
