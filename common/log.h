/*
 * log.h: orch's log lines.
 *
 * One line per event, written with a single write(2) so lines from several
 * threads never interleave:
 *
 *   2026-11-22T21:48:00.123Z orch-agent[812] NOTICE ORCH-FENCED 127.0.0.1:3306: set read_only
 *
 * Events that operators or tests act on carry a stable upper-case tag
 * (ORCH-FAILOVER-START, ORCH-FENCED, ...); lines about one object name it
 * (`host:port`, a cluster, a peer). Any thread may log; configuration calls
 * (orch_log_set_*) belong to startup or to the owning loop.
 */
#ifndef ORCH_LOG_H
#define ORCH_LOG_H

#include "err.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum orch_log_level {
    ORCH_LOG_DEBUG = 0,
    ORCH_LOG_INFO,
    ORCH_LOG_NOTICE,
    ORCH_LOG_WARN,
    ORCH_LOG_ERROR,
} orch_log_level;

/* Sets the program name printed on each line (borrowed; must outlive logging). */
void orch_log_set_program(const char *name);

/* Lines below level are dropped. Default: INFO. */
void orch_log_set_level(orch_log_level level);

/* Writes to fd instead of stderr (fd 2). The caller keeps ownership of fd. */
void orch_log_set_fd(int fd);

bool orch_log_enabled(orch_log_level level);

/* "debug", "info", "notice", "warn", "error" (case-insensitive; "warning" too). */
orch_err orch_log_level_parse(const char *s, orch_log_level *out) ORCH_MUST_CHECK;
const char *orch_log_level_name(orch_log_level level);

/*
 * Logs one line. tag (stable event name) and object (what the line is about)
 * may be NULL. The message is truncated at 4 KiB; newlines and tabs in it are
 * replaced by spaces (one event stays one line) and other control bytes by '?'
 * (text from peers cannot inject terminal sequences).
 */
void orch_log(orch_log_level level, const char *tag, const char *object, const char *fmt, ...)
    ORCH_PRINTF(4, 5);

#define orch_debug(object, ...) orch_log(ORCH_LOG_DEBUG, NULL, (object), __VA_ARGS__)
#define orch_info(object, ...)  orch_log(ORCH_LOG_INFO, NULL, (object), __VA_ARGS__)
#define orch_warn(object, ...)  orch_log(ORCH_LOG_WARN, NULL, (object), __VA_ARGS__)
#define orch_error(object, ...) orch_log(ORCH_LOG_ERROR, NULL, (object), __VA_ARGS__)

/*
 * A rate limiter for noisy events ("logged once per peer per minute").
 * Embed one per (event, peer); zero-initialised is ready to use.
 */
typedef struct orch_ratelimit {
    int64_t last_ms;     /* when the last allowed event happened; 0 = never */
    uint64_t suppressed; /* events dropped since then */
} orch_ratelimit;

/*
 * Returns true when an event at now_ms may be logged (none allowed within the
 * last interval_ms). On true, *suppressed (if non-NULL) receives the number of
 * events dropped since the previous allowed one, and the counter restarts.
 */
bool orch_ratelimit_allow(orch_ratelimit *rl, int64_t now_ms, int64_t interval_ms,
                          uint64_t *suppressed);

#endif
