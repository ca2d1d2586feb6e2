/*
 * wakeup.h: a worker thread wakes the coordinator's loop to run a callback
 * there (an eventfd counter watched by a persistent read event). The
 * commander, the store and the hook runner hand their answers to the loop
 * this way.
 */
#ifndef ORCH_WAKEUP_H
#define ORCH_WAKEUP_H

#include "err.h"

#include <stddef.h>

struct event;
struct event_base;

typedef struct orch_wakeup {
    int fd;           /* -1 when not set up */
    struct event *ev; /* NULL when not set up */
    void (*fn)(void *arg);
    void *arg;
} orch_wakeup;

/* Not set up: notify does nothing, fini is safe. */
void orch_wakeup_clear(orch_wakeup *w);

/* fn(arg) runs on base's loop after each notify (several notifies may merge
 * into one call). On failure msg names who ("store: eventfd failed"). */
orch_err orch_wakeup_init(orch_wakeup *w, struct event_base *base, void (*fn)(void *arg), void *arg,
                          const char *who, char *msg, size_t msglen) ORCH_MUST_CHECK;

/* Any thread; never blocks. */
void orch_wakeup_notify(orch_wakeup *w);

/* Loop thread (or with the loop stopped); safe when cleared. */
void orch_wakeup_fini(orch_wakeup *w);

#endif
