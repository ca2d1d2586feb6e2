/*
 * hmap.h: a hash map from strings to pointers.
 *
 * Open addressing with linear probing over a power-of-two table; each slot
 * keeps the key's 64-bit hash so that probes compare strings only on a hash
 * match. Deletions leave tombstones, swept by the next resize. Lookups, inserts
 * and deletions are O(1) amortized; the table grows when live entries plus
 * tombstones pass 70% of the slots, and is rebuilt at the same size when
 * tombstones alone crowd it.
 *
 * Keys are copied in (the map owns its copies); values are borrowed pointers,
 * never NULL (NULL is what a lookup of an absent key returns). The map never
 * frees values: walk it with orch_hmap_next before orch_hmap_fini if it holds
 * the only reference.
 *
 * No locking: one thread at a time per map. The struct is public only so that
 * it can be embedded; its fields are private.
 */
#ifndef ORCH_HMAP_H
#define ORCH_HMAP_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orch_hmap_slot {
    uint64_t hash;
    char *key; /* NULL: empty slot; a private sentinel: deleted */
    void *val;
} orch_hmap_slot;

typedef struct orch_hmap {
    orch_hmap_slot *slots;
    size_t cap;   /* slots; 0 or a power of two */
    size_t count; /* live entries */
    size_t used;  /* live entries + tombstones */
} orch_hmap;

/* Initializes an empty map (allocates nothing until the first insert). */
void orch_hmap_init(orch_hmap *m);

/* Frees the map's slots and key copies, not the values. Safe on NULL. */
void orch_hmap_fini(orch_hmap *m);

/* The value stored under key, or NULL. */
void *orch_hmap_get(const orch_hmap *m, const char *key);

/*
 * Stores val (non-NULL) under key, inserting or replacing. When old is
 * non-NULL it receives the value replaced, or NULL for a new key. On
 * ORCH_ERR_NOMEM the map is unchanged.
 */
orch_err orch_hmap_put(orch_hmap *m, const char *key, void *val, void **old) ORCH_MUST_CHECK;

/* Removes key; returns the value it held, or NULL if absent. Never allocates. */
void *orch_hmap_del(orch_hmap *m, const char *key);

/* Number of entries. */
size_t orch_hmap_count(const orch_hmap *m);

/*
 * Iteration in table order: start with *iter = 0; each call returning true sets
 * *key (the map's copy, borrowed) and *val (either may be NULL to skip). The
 * map must not be modified during a walk, except by orch_hmap_del of the entry
 * just returned.
 */
bool orch_hmap_next(const orch_hmap *m, size_t *iter, const char **key, void **val);

/* The hash the map uses (64-bit FNV-1a with a final mix), for callers' own tables. */
uint64_t orch_hmap_hash(const char *key);

#endif
