/*
 * clock.h: monotonic and wall time helpers.
 *
 * Monotonic time measures intervals (leases, deadlines, freshness); wall time is
 * only for humans and for timestamps carried in messages. Any thread.
 */
#ifndef ORCH_CLOCK_H
#define ORCH_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in milliseconds / microseconds since an arbitrary origin. */
int64_t orch_mono_ms(void);
int64_t orch_mono_us(void);

/* Wall clock in milliseconds since the Unix epoch. */
int64_t orch_wall_ms(void);

/*
 * Formats wall time `ms` as UTC ISO 8601 with milliseconds
 * ("2026-11-22T21:48:00.123Z") into buf; returns buf. buflen >= 25 suffices.
 */
char *orch_time_iso8601(int64_t ms, char *buf, size_t buflen);

/* Sleeps for ms milliseconds, resuming after signals. For tests and tools only. */
void orch_sleep_ms(int64_t ms);

#endif
