/* err.c: names of orch_err values and the message-buffer helper. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_names[ORCH_ERR__COUNT] = {
    [ORCH_OK] = "success",
    [ORCH_ERR_NOMEM] = "out of memory",
    [ORCH_ERR_INVAL] = "invalid argument",
    [ORCH_ERR_PARSE] = "parse error",
    [ORCH_ERR_RANGE] = "value out of range",
    [ORCH_ERR_TOOBIG] = "too large",
    [ORCH_ERR_IO] = "I/O error",
    [ORCH_ERR_CONFIG] = "configuration error",
    [ORCH_ERR_NOTFOUND] = "not found",
    [ORCH_ERR_EXISTS] = "already exists",
    [ORCH_ERR_TIMEOUT] = "timed out",
    [ORCH_ERR_REFUSED] = "refused",
    [ORCH_ERR_AUTH] = "authentication failed",
    [ORCH_ERR_STALE] = "stale",
    [ORCH_ERR_PROTO] = "protocol error",
    [ORCH_ERR_MYSQL] = "MySQL error",
    [ORCH_ERR_CLOSED] = "closed",
    [ORCH_ERR_STATE] = "not allowed in this state",
};

const char *orch_strerror(orch_err err)
{
    if ((unsigned)err >= ORCH_ERR__COUNT || err_names[err] == NULL)
        return "unknown error";
    return err_names[err];
}

orch_err orch_fail(char *msg, size_t msglen, orch_err err, const char *fmt, ...)
{
    if (msg != NULL && msglen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return err;
}
