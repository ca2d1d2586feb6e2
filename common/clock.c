/* clock.c: thin wrappers over clock_gettime. */
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t orch_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

int64_t orch_mono_us(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000;
}

int64_t orch_wall_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000;
}

char *orch_time_iso8601(int64_t ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    struct tm tm;
    if (buflen == 0)
        return buf;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, buflen, "invalid-time");
        return buf;
    }
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

void orch_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
