/*
 * coordinator.h: the orch-coordinator daemon, wiring its parts together.
 *
 * Threads:
 *   - the loop thread (coordinator_run's caller) owns the event base, the
 *     registry, intake, the HTTP API, metrics and the timers: topology refresh,
 *     operator-state pickup, and (leader only) write-behind to the store;
 *   - the election thread (election.c) keeps the leader lease;
 *   - the store thread (store.c) talks to the backend.
 * The loop never blocks on the backend: it hands the store batches and takes
 * snapshots; every leader action checks election_is_leader() by this node's
 * own monotonic clock.
 */
#ifndef ORCH_COORDINATOR_H
#define ORCH_COORDINATOR_H

#include "coord_config.h"

typedef struct coordinator coordinator;

/*
 * Builds the coordinator from a loaded configuration (takes ownership of *cfg,
 * which is zeroed): migrates the backend schema (blocking, at start only),
 * starts the store and election threads, listens for reports and HTTP. NULL
 * on failure with msg saying why.
 */
coordinator *coordinator_new(const char *config_path, coord_config *cfg, char *msg, size_t msglen);

/* Runs until SIGTERM or SIGINT; returns an ORCH_EXIT_* code. Loop thread. */
int coordinator_run(coordinator *c);

/* Stops every thread, closes every socket, frees. Safe on NULL. */
void coordinator_free(coordinator *c);

#endif
