/*
 * output.h: how orchctl prints the API's answers.
 *
 * Each renderer takes the body of a successful answer (the caller already
 * mapped failures to exit codes, cmd.h) and writes text to a FILE: one
 * host:port per line for the which-* commands, as orchestrator-client prints
 * them, the topology tree, a tabulated tree, and so on. Pure functions of
 * their input apart from the writes; single-threaded.
 */
#ifndef ORCHCTL_OUTPUT_H
#define ORCHCTL_OUTPUT_H

#include "cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct ctl_out_ctx {
    bool color; /* ANSI colours (the caller decided: terminal, NO_COLOR, --color) */
} ctl_out_ctx;

/*
 * Prints body (len bytes, need not be NUL-terminated) as kind says. Returns
 * ORCH_EXIT_OK, or ORCH_EXIT_FAILURE with msg saying what was wrong with the
 * answer (not JSON, not the expected shape) or ORCH_EXIT_NOTFOUND when the
 * answer names nothing (no leader known).
 */
int ctl_out_render(ctl_out kind, const char *body, size_t len, const ctl_out_ctx *c, FILE *out,
                   char *msg, size_t msglen);

/*
 * Prints the coordinator's ASCII topology (the Details of /api/topology), in
 * colour when asked: red for instances in trouble (invalid, unchecked, not
 * replicating, agent down or stale, fenced, unresolved master), yellow for
 * lag, downtime, maintenance and reported problems, green for the healthy.
 * Lines that do not look like topology lines pass through unchanged.
 */
void ctl_out_topology_text(const char *text, bool color, FILE *out);

#endif
