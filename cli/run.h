/*
 * run.h: orchctl from argv to exit code: finds the API (the leader when
 * ORCH_API lists several coordinators), sends the command's one request, maps
 * the answer to an exit code and prints it.
 *
 * Single-threaded; blocks on the network for at most --timeout (plus the
 * leader checks' 300 ms).
 */
#ifndef ORCHCTL_RUN_H
#define ORCHCTL_RUN_H

#include "http.h"

#include <stdbool.h>
#include <stddef.h>

#define CTL_MAX_APIS 16 /* URLs in ORCH_API */

/* Runs orchctl; writes to stdout and stderr; returns the process exit code. */
int ctl_main(int argc, char **argv);

/*
 * Splits a space-separated list of API URLs (ORCH_API, --api) into urls (at
 * most max). Returns how many, or -1 with msg on a bad URL or too many.
 */
int ctl_run_split_apis(const char *list, ctl_url *urls, size_t max, char *msg, size_t msglen);

/*
 * Chooses the coordinator from the answers to /api/leader-check (checks[k]
 * went to URL k): the first that answered 200 (the leader); otherwise, unless
 * need_leader, the first that answered anything but 401/403/5xx, then the
 * first that answered at all. Returns the index, or -1 with the exit code in
 * *exit_code (ORCH_EXIT_AUTH when credentials were refused, else
 * ORCH_EXIT_UNREACHABLE) and what each node said in msg.
 */
int ctl_run_pick(const ctl_http_req *checks, size_t n, bool need_leader, int *exit_code, char *msg,
                 size_t msglen);

/* Whether to colour: --color always/never, else a terminal without NO_COLOR or TERM=dumb. */
bool ctl_run_want_color(int color_opt, bool isatty_out, const char *no_color, const char *term);

#endif
