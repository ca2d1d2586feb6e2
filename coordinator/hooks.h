/*
 * hooks.h: operators' shell hooks around detections and recoveries.
 *
 * A hook is a shell command (run by /bin/sh -c) with orchestrator's
 * placeholders, e.g. "notify-pager {failureType} {failedHost}:{failedPort}":
 * {failureType}, {failureDescription}, {failedHost}, {failedPort},
 * {failureCluster}, {failureClusterAlias}, {successorHost}, {successorPort},
 * {successorAlias}, {lostReplicas}, {countReplicas}, {recoveryUID},
 * {isSuccessful}, {orchestratorHost}, {command}, {reason}. The same values are
 * exported as environment variables ORCH_FAILURE_TYPE, ORCH_FAILED_HOST, ...
 * (see hooks.c for the list). Substituted values are single-quoted for the
 * shell, so a host name cannot inject commands.
 *
 * Hooks of one event run in order on a worker thread, each with a timeout
 * after which its process group is killed; the result (all succeeded, or the
 * first failure with its exit status and output tail) comes back through a
 * callback on the loop thread. Any thread may call hooks_run.
 */
#ifndef ORCH_HOOKS_H
#define ORCH_HOOKS_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct hooks hooks;

/* The values placeholders and ORCH_* variables take (NULL: empty). */
typedef struct hook_vars {
    const char *failure_type, *failure_description;
    const char *failed_host;
    int failed_port;
    const char *cluster, *cluster_alias;
    const char *successor_host;
    int successor_port;
    const char *lost_replicas; /* comma-separated host:port */
    int count_replicas;
    const char *recovery_uid;
    bool is_successful;
    const char *orch_host; /* this coordinator's node name */
    const char *command;   /* "recover", "force-master-failover", "graceful-master-takeover" */
    const char *reason;
} hook_vars;

typedef struct hook_result {
    bool ok;         /* every hook exited 0 in time */
    size_t ran;      /* hooks run */
    char error[512]; /* the failing hook: command, exit status or timeout, output tail */
} hook_result;

typedef void (*hooks_done_fn)(const hook_result *r, void *arg);

/* Starts the worker thread; completions are delivered on base's thread. */
hooks *hooks_start(struct event_base *base, char *msg, size_t msglen);

/* Kills running hooks, joins the thread, answers queued runs (ok=false), frees.
 * Safe on NULL. */
void hooks_stop(hooks *h);

/* The first half of hooks_stop: the object stays (hooks_run refuses with
 * ORCH_ERR_CLOSED) until hooks_stop frees it. Safe on NULL and twice. */
void hooks_halt(hooks *h);

/*
 * Runs commands[0..n) in order with vars, each within timeout_ms, stopping at
 * the first failure; done (may be NULL) gets the result. n == 0 completes at
 * once (on the loop, never inside this call). event names the hook point in
 * logs ("pre_failover").
 */
orch_err hooks_run(hooks *h, const char *event, const char *const *commands, size_t n,
                   const hook_vars *vars, int64_t timeout_ms, hooks_done_fn done,
                   void *arg) ORCH_MUST_CHECK;

/*
 * Expands placeholders in command into a malloc'd string, each value
 * single-quoted for /bin/sh. Pure; exposed for tests. NULL when out of memory.
 */
char *hooks_expand(const char *command, const hook_vars *vars);

#endif
