/* log.c: single-write log lines with levels, tags and objects. */
#include "log.h"

#include "clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *log_program = "orch";
static atomic_int log_level = ORCH_LOG_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"DEBUG", "INFO", "NOTICE", "WARN", "ERROR"};

void orch_log_set_program(const char *name)
{
    log_program = name ? name : "orch";
}

void orch_log_set_level(orch_log_level level)
{
    atomic_store(&log_level, (int)level);
}

void orch_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

bool orch_log_enabled(orch_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

const char *orch_log_level_name(orch_log_level level)
{
    if ((unsigned)level > ORCH_LOG_ERROR)
        return "?";
    return level_names[level];
}

orch_err orch_log_level_parse(const char *s, orch_log_level *out)
{
    static const struct {
        const char *name;
        orch_log_level level;
    } names[] = {
        {"debug", ORCH_LOG_DEBUG}, {"info", ORCH_LOG_INFO},    {"notice", ORCH_LOG_NOTICE},
        {"warn", ORCH_LOG_WARN},   {"warning", ORCH_LOG_WARN}, {"error", ORCH_LOG_ERROR},
    };
    if (s == NULL)
        return ORCH_ERR_INVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return ORCH_OK;
        }
    }
    return ORCH_ERR_PARSE;
}

void orch_log(orch_log_level level, const char *tag, const char *object, const char *fmt, ...)
{
    if (!orch_log_enabled(level))
        return;
    int saved_errno = errno;
    char line[4096 + 256];
    char ts[32];
    orch_time_iso8601(orch_wall_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "%s %s[%d] %s ", ts, log_program, (int)getpid(),
                     orch_log_level_name(level));
    if (tag != NULL && n >= 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s ", tag);
    if (object != NULL && n >= 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", object);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    size_t start = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + start, sizeof(line) - start - 1, fmt, ap);
    va_end(ap);
    size_t len = start;
    if (m > 0)
        len += (size_t)m < sizeof(line) - start - 1 ? (size_t)m : sizeof(line) - start - 2;
    /* One event, one line, and no terminal control sequences from what peers
     * sent us: newlines become spaces, other control bytes '?'. */
    for (size_t i = start; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch == '\n' || ch == '\r' || ch == '\t')
            line[i] = ' ';
        else if (ch < 0x20 || ch == 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    int fd = atomic_load(&log_fd);
    const char *p = line;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        len -= (size_t)w;
    }
    errno = saved_errno;
}

bool orch_ratelimit_allow(orch_ratelimit *rl, int64_t now_ms, int64_t interval_ms,
                          uint64_t *suppressed)
{
    if (rl->last_ms != 0 && now_ms - rl->last_ms < interval_ms) {
        rl->suppressed++;
        return false;
    }
    if (suppressed != NULL)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->last_ms = now_ms != 0 ? now_ms : 1;
    return true;
}
