/* wakeup.c: see wakeup.h. */
#include "wakeup.h"

#include <event2/event.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void orch_wakeup_clear(orch_wakeup *w)
{
    *w = (orch_wakeup){.fd = -1};
}

static void on_wakeup(evutil_socket_t fd, short what, void *arg)
{
    orch_wakeup *w = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v)); /* resets the counter */
    (void)r;
    (void)what;
    w->fn(w->arg);
}

orch_err orch_wakeup_init(orch_wakeup *w, struct event_base *base, void (*fn)(void *arg), void *arg,
                          const char *who, char *msg, size_t msglen)
{
    orch_wakeup_clear(w);
    w->fn = fn;
    w->arg = arg;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0)
        return orch_fail(msg, msglen, ORCH_ERR_IO, "%s: eventfd failed: %s", who, strerror(errno));
    w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, on_wakeup, w);
    if (w->ev == NULL || event_add(w->ev, NULL) != 0) {
        orch_wakeup_fini(w);
        return orch_fail(msg, msglen, ORCH_ERR_NOMEM, "%s: cannot set up its event", who);
    }
    return ORCH_OK;
}

void orch_wakeup_notify(orch_wakeup *w)
{
    if (w->fd < 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(w->fd, &one, sizeof(one));
    (void)r; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

void orch_wakeup_fini(orch_wakeup *w)
{
    if (w->ev != NULL)
        event_free(w->ev); /* event_free deletes it first */
    if (w->fd >= 0)
        close(w->fd);
    orch_wakeup_clear(w);
}
