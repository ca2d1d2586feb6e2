/*
 * report.h: facts about InstanceReports shared by agents and coordinators.
 *
 * The "shape" of a report is everything but counters (positions, GTID sets,
 * lag values, uptime, timings, sequence): state, error, roles and flags,
 * replication threads and errors, lag presence (NULL vs a number), witness
 * verdicts, connected replicas, problems, fencing, promotion rule and
 * location. An agent sends a report at once when its shape changes; a
 * coordinator rewrites an instance in the backend only when it does.
 *
 * Pure functions; any thread.
 */
#ifndef ORCH_REPORT_H
#define ORCH_REPORT_H

#include "orch.pb-c.h"

#include <stdint.h>

/* A 64-bit hash of the report's shape (FNV-1a). */
uint64_t orch_report_fingerprint(const Orch__InstanceReport *r);

#endif
