/*
 * agent.h: the orch-agent daemon.
 *
 * Threads and what they own:
 *   - the loop thread (agent_run's caller): a libevent base with the signal
 *     handlers (SIGHUP reload, SIGTERM/SIGINT stop), a tick timer and the
 *     "probe done" event; it owns the configuration and the pub socket, builds
 *     and publishes reports;
 *   - the probe thread: probes the local server every probe_interval_ms,
 *     runs the witness checks, and applies a recorded fence whenever the server
 *     answers writable; it never touches the loop's state except through
 *     agent->mu and event_active();
 *   - command_workers threads: each holds an nng context on the rep socket and
 *     its own MySQL connection, checks authentication and the epoch rule, and
 *     executes leader commands; a long WaitForGtid never delays probing or
 *     reporting.
 * The loop's deadline, not the probe thread, decides UNRESPONSIVE: a probe
 * still running after probe_timeout_ms is reported as such.
 */
#ifndef ORCH_AGENT_H
#define ORCH_AGENT_H

#include "agent_config.h"
#include "err.h"

typedef struct agent agent;

/*
 * Creates the agent from a loaded configuration (takes ownership of *cfg, which
 * is zeroed) and the host key. Opens sockets and the state file; does not
 * start threads. On failure returns NULL with msg saying why.
 */
agent *agent_new(const char *config_path, agent_config *cfg, const orch_hmac_key *key, char *msg,
                 size_t msglen);

/* Runs until SIGTERM or SIGINT; returns an ORCH_EXIT_* code. Loop thread. */
int agent_run(agent *a);

/* Stops and joins every thread, closes sockets, frees. Safe on NULL. */
void agent_free(agent *a);

#endif
