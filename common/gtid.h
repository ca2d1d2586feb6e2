/*
 * gtid.h: GTID sets of MySQL and MariaDB: parse, print, compare, combine.
 *
 * The probe reads GTID state as text (MySQL gtid_executed / gtid_purged /
 * Retrieved_Gtid_Set, MariaDB gtid_current_pos / gtid_binlog_pos /
 * gtid_slave_pos / Gtid_IO_Pos); candidate choice and errant-transaction checks
 * compare those sets. A set carries its flavor, and the two flavors mean
 * different things:
 *
 * MariaDB ("0-1-100,1-2-5", domain-server-seq, uint32-uint32-uint64): a position.
 *   An entry stands for every transaction of its domain up to seq; within a
 *   domain only the highest seq counts (gtid_strict_mode keeps seq monotonic per
 *   domain), whichever server wrote it. The set keeps one entry per (domain,
 *   server), the highest seq seen, so gtid_binlog_pos round-trips. A domain absent
 *   from a set is behind every entry of that domain, even "d-s-0".
 *
 * MySQL ("uuid:1-5:7,uuid2:1-3", MySQL 8.4 tags "uuid:1-2:tag:3-4"): a true set
 *   of transaction numbers per (uuid, tag); numbers run 1..ORCH_GTID_MYSQL_GNO_MAX
 *   as on the server. Intervals are kept sorted and merged.
 *
 * Sets are immutable once built: every operation returns a new set or a value.
 * Set arguments must not be NULL unless a function says otherwise (asserted:
 * a NULL there is a caller bug).
 * Pure code, no globals: any thread may call anything here; a set shared between
 * threads needs no lock as long as nobody frees it.
 */
#ifndef ORCH_GTID_H
#define ORCH_GTID_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORCH_GTID_TEXT_MAX      (1024 * 1024) /* longest text orch_gtid_set_parse takes */
#define ORCH_GTID_MYSQL_GNO_MAX ((uint64_t)INT64_MAX - 1) /* MySQL's highest transaction number */
#define ORCH_GTID_TAG_MAX       32                        /* longest MySQL 8.4 tag */

typedef enum orch_gtid_flavor {
    ORCH_GTID_MYSQL = 1, /* MySQL and Percona */
    ORCH_GTID_MARIADB,
} orch_gtid_flavor;

/* How set a stands against set b (orch_gtid_set_compare). */
typedef enum orch_gtid_cmp {
    ORCH_GTID_EQUAL = 0, /* same transactions (MariaDB: same position in every domain) */
    ORCH_GTID_SUBSET,    /* a is strictly behind b: b has all of a and more */
    ORCH_GTID_SUPERSET,  /* a is strictly ahead of b */
    ORCH_GTID_DIVERGED,  /* each has something the other lacks, or the flavors differ */
} orch_gtid_cmp;

/* Opaque; see gtid.c for the representation. */
typedef struct orch_gtid_set orch_gtid_set;

/* "mysql", "mariadb"; "unknown" for anything else. Static strings. */
const char *orch_gtid_flavor_name(orch_gtid_flavor flavor);

/* "equal", "subset", "superset", "diverged"; "unknown" for anything else. */
const char *orch_gtid_cmp_name(orch_gtid_cmp cmp);

/* Returns a new empty set owned by the caller, or NULL when out of memory or flavor is invalid. */
orch_gtid_set *orch_gtid_set_new(orch_gtid_flavor flavor);

/* Frees set and everything it owns. NULL is a no-op. */
void orch_gtid_set_free(orch_gtid_set *set);

/* Returns a deep copy owned by the caller, or NULL when out of memory or set is NULL. */
orch_gtid_set *orch_gtid_set_clone(const orch_gtid_set *set);

orch_gtid_flavor orch_gtid_set_flavor(const orch_gtid_set *set);

/*
 * Parses text as printed by a server of the given flavor into a new set that
 * the caller owns (*out, set only on success). The empty string, or one of only
 * whitespace, is the empty set. Whitespace and newlines are tolerated around
 * entries (servers print ",\n" in long sets) and, in MySQL sets, around ':'.
 * Duplicate and overlapping entries are merged (MariaDB: highest seq per
 * (domain, server)). UUIDs and tags may be in any case; they are lower-cased.
 *
 * Errors, with msg saying what was wrong and at which byte offset:
 *   ORCH_ERR_PARSE  malformed text: empty entry, missing part, bad uuid or tag,
 *                   interval "5-3", a tag without intervals, trailing junk, the
 *                   other flavor's syntax;
 *   ORCH_ERR_RANGE  a number out of bounds: domain or server id above 2^32-1,
 *                   seq above 2^64-1, a MySQL transaction number 0 or above
 *                   ORCH_GTID_MYSQL_GNO_MAX;
 *   ORCH_ERR_TOOBIG text longer than ORCH_GTID_TEXT_MAX bytes;
 *   ORCH_ERR_INVAL  text or out NULL, or an unknown flavor;
 *   ORCH_ERR_NOMEM.
 * Does not block.
 */
orch_err orch_gtid_set_parse(orch_gtid_flavor flavor, const char *text, orch_gtid_set **out,
                             char *msg, size_t msglen) ORCH_MUST_CHECK;

/*
 * Writes set in canonical form into buf (if buflen > 0; always NUL-terminated,
 * truncated when too small) and returns the length of the full text, excluding
 * the NUL, like snprintf: a result >= buflen means it did not fit. Pass buf
 * NULL, buflen 0 to measure. Canonical form: MariaDB "0-1-100,1-2-5" ordered by
 * domain then server; MySQL "uuid:1-5:7:tag:9,uuid2:1-3" ordered by uuid, then
 * untagged before tags in ascending order. The empty set is "".
 */
size_t orch_gtid_set_format_to(const orch_gtid_set *set, char *buf, size_t buflen);

/* The canonical text of set (see orch_gtid_set_format_to) in a malloc'd string the caller frees;
 * NULL when out of memory. */
char *orch_gtid_set_format(const orch_gtid_set *set);

/*
 * *out = a new set (owned by the caller) holding everything in a or b.
 * MariaDB: per (domain, server) the highest seq of the two, all entries kept.
 * ORCH_ERR_INVAL when the flavors differ or an argument is NULL; ORCH_ERR_NOMEM.
 * *out is set only on success.
 */
orch_err orch_gtid_set_union(const orch_gtid_set *a, const orch_gtid_set *b,
                             orch_gtid_set **out) ORCH_MUST_CHECK;

/*
 * *out = a new set (owned by the caller) holding what a has and b lacks: the
 * errant transactions of a replica a against its master b. MySQL: set
 * difference, intervals split as needed. MariaDB: for each domain where a is
 * ahead of b, the entries of a in that domain beyond b's highest seq (all of
 * a's entries there when b lacks the domain). Errors as orch_gtid_set_union.
 */
orch_err orch_gtid_set_subtract(const orch_gtid_set *a, const orch_gtid_set *b,
                                orch_gtid_set **out) ORCH_MUST_CHECK;

/*
 * Compares a with b (see orch_gtid_cmp). Two empty sets are EQUAL. Sets of
 * different flavors are DIVERGED: neither can be shown to hold the other.
 */
orch_gtid_cmp orch_gtid_set_compare(const orch_gtid_set *a, const orch_gtid_set *b);

/* True when a holds everything in b (compare is EQUAL or SUPERSET). False when flavors differ. */
bool orch_gtid_set_contains(const orch_gtid_set *a, const orch_gtid_set *b);

/*
 * True when a and b hold the same transactions (compare is EQUAL). For MariaDB
 * that means the same highest seq in every domain: "0-1-5,0-2-9" equals "0-2-9".
 * False when flavors differ.
 */
bool orch_gtid_set_equal(const orch_gtid_set *a, const orch_gtid_set *b);

/* True when set has no entry at all. */
bool orch_gtid_set_is_empty(const orch_gtid_set *set);

/*
 * Number of transactions in set: MySQL, the numbers in all intervals; MariaDB,
 * the sum over domains of the highest seq. Saturates at UINT64_MAX.
 */
uint64_t orch_gtid_set_count(const orch_gtid_set *set);

/*
 * Number of transactions of a that b lacks: MySQL, the count of a - b; MariaDB,
 * the sum over domains of max(0, highest seq of a - highest seq of b), a domain
 * absent from b counting as 0. Saturates at UINT64_MAX. When the flavors
 * differ, b is taken to hold nothing of a: the result is orch_gtid_set_count(a).
 */
uint64_t orch_gtid_set_count_missing(const orch_gtid_set *a, const orch_gtid_set *b);

#endif
